//! The embedded backend: nothing to install, durable, fast.
//!
//! All current state lives in memory (see `state`), entities in a compact
//! encoding (see `codec`) so a million of them fit in well under 1.5 GiB.
//! Durability comes from a write-ahead log (`wal`) written by one writer
//! thread with group commit: it drains every queued commit, writes them with
//! one `write_all`, syncs once, then applies them to memory in queue order
//! and answers the callers. Readers therefore only see durable state.
//! Checkpoints (`snapshot`) bound the log: the writer rotates to a new
//! segment, captures the state (cheap `Arc` clones), and a checkpoint thread
//! writes the snapshot and deletes the segments it covers.

mod codec;
mod snapshot;
mod state;
mod values;
mod wal;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use dosi_ngsi::model::core_iri;
use dosi_ngsi::query::{EntityFilter, Q};
use dosi_ngsi::{Entity, EntityId, TenantId};
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;

use self::codec::Names;
use self::snapshot::Image;
use self::state::{BBox, Prepared, Row, State, TenantState};
use self::values::OwnedKey;
use self::wal::{io_err, sync_dir, RecordIn, RecordOut};
use crate::{Change, Page, QueryResult, Result, Store, StoreError};

/// Settings of the embedded store.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Sync the WAL to disk before acknowledging a commit. Turning this off
    /// keeps data safe from a process crash but not from a power loss.
    pub fsync: bool,
    /// WAL bytes written since the last checkpoint that trigger a new one.
    pub snapshot_after_bytes: u64,
    /// The most commits written and synced together.
    pub group_commit_max_batch: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            fsync: true,
            snapshot_after_bytes: 256 << 20,
            group_commit_max_batch: 1024,
        }
    }
}

/// The embedded store; see the module documentation.
pub struct EmbeddedStore {
    state: Arc<State>,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Work for the writer thread.
enum Msg {
    Write(Pending),
    Checkpoint(oneshot::Sender<Result<()>>),
    Shutdown,
}

/// One WAL record waiting for its group commit.
struct Pending {
    frame: Vec<u8>,
    op: Op,
    done: oneshot::Sender<Result<()>>,
}

/// What a record does to the in-memory state once durable.
enum Op {
    Commit {
        tenant: TenantId,
        changes: Vec<Prepared>,
    },
    Meta {
        ns: String,
        key: String,
        value: Option<Vec<u8>>,
    },
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`: loads the latest snapshot,
    /// replays the WAL after it, and starts the writer thread.
    pub fn open(dir: &Path, opts: EmbeddedOptions) -> Result<Arc<Self>> {
        let wal_dir = dir.join("wal");
        let snap_dir = dir.join("snapshot");
        for d in [&wal_dir, &snap_dir] {
            std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
        }
        remove_temp_files(&snap_dir)?;

        let snaps = snapshot::list_snapshots(&snap_dir)?;
        let (base, image) = match snaps.last() {
            Some(&n) => (n, snapshot::read(&snapshot::snapshot_path(&snap_dir, n))?),
            None => (0, Image::default()),
        };
        for &old in snaps.iter().filter(|&&n| n < base) {
            remove(&snapshot::snapshot_path(&snap_dir, old))?;
        }
        let state = Arc::new(State::new(Names::from_list(image.names)));
        for (ns, key, value) in image.meta {
            state.apply_meta(ns, key, Some(value));
        }
        for (tenant, rows) in image.tenants {
            let t = state.tenant_or_create(&tenant);
            let mut t = t.write();
            for (seq, row, bbox) in rows {
                t.load(seq, row, bbox);
            }
        }
        let mut next_seq = image.next_seq;

        let segments = wal::list_segments(&wal_dir)?;
        let mut wal_bytes = 0;
        let live: Vec<u64> = segments.iter().copied().filter(|&s| s >= base).collect();
        for &s in segments.iter().filter(|&&s| s < base) {
            // Covered by the snapshot; a crash interrupted its cleanup.
            remove(&wal::segment_path(&wal_dir, s))?;
        }
        for (i, &s) in live.iter().enumerate() {
            let path = wal::segment_path(&wal_dir, s);
            wal_bytes += wal::replay_segment(&path, i + 1 == live.len(), |rec| {
                replay(&state, rec, &mut next_seq);
                Ok(())
            })?;
        }
        let segment = live.last().map_or(base, |&s| s + 1).max(base);
        let file = create_segment(&wal_dir, segment)?;

        let (tx, rx) = mpsc::channel();
        let (ckpt_tx, ckpt_rx) = mpsc::channel::<Job>();
        let busy = Arc::new(AtomicBool::new(false));
        let ckpt = {
            let (wal_dir, busy) = (wal_dir.clone(), busy.clone());
            std::thread::Builder::new()
                .name("dosi-store-checkpoint".into())
                .spawn(move || checkpointer(ckpt_rx, snap_dir, wal_dir, busy))
                .map_err(|e| io_err(dir, e))?
        };
        let writer = Writer {
            state: state.clone(),
            opts,
            wal_dir,
            file,
            segment,
            wal_bytes,
            next_seq,
            failed: None,
            ckpt_tx: Some(ckpt_tx),
            ckpt_thread: Some(ckpt),
            ckpt_busy: busy,
        };
        let writer = std::thread::Builder::new()
            .name("dosi-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io_err(dir, e))?;
        Ok(Arc::new(Self {
            state,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// Stops the writer after it has written what was queued; later writes
    /// fail with [`StoreError::Unavailable`]. Dropping the store does this too.
    pub fn close(&self) {
        if let Some(tx) = self.tx.lock().take() {
            // A send error means the writer is gone already.
            let _ = tx.send(Msg::Shutdown);
        }
        if let Some(h) = self.writer.lock().take() {
            if h.join().is_err() {
                tracing::error!("the store writer thread panicked");
            }
        }
    }

    /// Number of entities of `tenant`.
    pub fn len(&self, tenant: &TenantId) -> usize {
        self.state.tenant(tenant).map_or(0, |t| t.read().len())
    }

    /// True if `tenant` holds no entity.
    pub fn is_empty(&self, tenant: &TenantId) -> bool {
        self.len(tenant) == 0
    }

    /// Sends `msg` to the writer and waits for its answer.
    async fn submit(&self, msg: Msg, rx: oneshot::Receiver<Result<()>>) -> Result<()> {
        {
            let tx = self.tx.lock();
            let tx = tx.as_ref().ok_or_else(closed)?;
            tx.send(msg).map_err(|_| closed())?;
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("the store writer stopped".into()))?
    }

    fn decode(&self, row: &Row) -> Result<Arc<Entity>> {
        codec::decode(&row.id, &row.blob, &self.state.names)
            .map(Arc::new)
            .map_err(|e| StoreError::Corrupt(format!("entity {}: {e}", row.id)))
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

/// Which entities a query looks at before applying its filter.
enum Plan {
    /// These creation sequences (sorted). `dense` when most of them are
    /// expected to match (ids, a value index): a candidate that would be
    /// returned is then decoded whole at once rather than first in part.
    Seqs { seqs: Vec<u64>, dense: bool },
    /// The entities of one type (a name index), read from the type index a
    /// chunk at a time: a query that stops after one page never copies the
    /// whole set.
    Type(u32),
    /// The entities of one key of the value index of (type, attribute)
    /// (name indices), read a chunk at a time: `attr==value` on one type
    /// copies only what the page needs.
    Posting { ty: u32, attr: u32, key: OwnedKey },
    /// Every entity.
    All,
}

/// Rows a query copies out per read-lock acquisition, at most, so a long
/// scan never holds the lock (and so the writer) for long.
const CHUNK: usize = 512;

/// The most value-index entries (entity, value) the store builds, over all
/// tenants; beyond it, queries on pairs not indexed yet scan. About 21
/// bytes each: 8M take ~170 MiB (see `docs/storage.md`).
const VALUE_INDEX_MAX_ENTRIES: usize = 8 << 20;

/// The outcome of planning.
enum Planned {
    /// Run this plan.
    Ready(Plan),
    /// Build these value indexes ((type, attribute) name indices) first,
    /// then plan again.
    Build(Vec<(u32, u32)>),
}

/// Picks the smallest candidate set the indexes offer. `may_build` lets it
/// ask for value indexes that do not exist yet.
fn plan(t: &TenantState, filter: &EntityFilter, names: &Names, may_build: bool) -> Planned {
    if !filter.ids.is_empty() {
        let mut seqs: Vec<u64> = filter.ids.iter().filter_map(|id| t.seq_of(id)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        return Planned::Ready(Plan::Seqs { seqs, dense: true });
    }
    // A name never interned is a type no entity has.
    let types: Option<Vec<u32>> =
        type_candidates(filter).map(|types| types.iter().filter_map(|n| names.lookup(n)).collect());
    // With several indexes usable, scan the smallest candidate set; the
    // filter checks the other conditions on each candidate.
    let mut bound = types
        .as_ref()
        .map_or(usize::MAX, |idx| t.count_of_types(idx));
    let mut best = None;
    if let Some(b) = geo_candidates(filter) {
        if let Some(seqs) = t.seqs_in_bbox_below(&b, bound) {
            bound = seqs.len();
            best = Some((seqs, false));
        }
    }
    if let (Some(types), Some(q)) = (&types, &filter.q) {
        match value_candidates(t, types, q, names, bound, may_build) {
            Ok(Some(plan)) => return Planned::Ready(plan),
            Ok(None) => {}
            Err(missing) => return Planned::Build(missing),
        }
    }
    if let Some((seqs, dense)) = best {
        return Planned::Ready(Plan::Seqs { seqs, dense });
    }
    Planned::Ready(match types {
        Some(idx) if idx.len() == 1 => Plan::Type(idx[0]),
        Some(idx) => Plan::Seqs {
            seqs: t.seqs_of_types(&idx),
            dense: false,
        },
        None => Plan::All,
    })
}

/// A plan over the candidates the value indexes of `types` give for the
/// most selective top-level comparison in `q`, when fewer than `bound`.
/// `Err` names the indexes to build first, when `may_build` and they fit
/// the budget.
fn value_candidates(
    t: &TenantState,
    types: &[u32],
    q: &Q,
    names: &Names,
    mut bound: usize,
    may_build: bool,
) -> Result<Option<Plan>, Vec<(u32, u32)>> {
    let conjuncts = q.value_conjuncts();
    if conjuncts.is_empty() || types.is_empty() {
        return Ok(None);
    }
    let mut usable = Vec::new();
    let mut missing = Vec::new();
    let mut budget = VALUE_INDEX_MAX_ENTRIES.saturating_sub(t.store_value_entries());
    for c in &conjuncts {
        let Some(attr) = names.lookup(c.attr) else {
            // No entity ever had the attribute, so none satisfies the conjunct.
            return Ok(Some(Plan::Seqs {
                seqs: Vec::new(),
                dense: true,
            }));
        };
        if types.iter().all(|&ty| t.value_index(ty, attr).is_some()) {
            usable.push((attr, &c.test));
            continue;
        }
        // Being built by another query: scan meanwhile.
        let absent: Vec<u32> = types
            .iter()
            .copied()
            .filter(|&ty| !t.has_value_index(ty, attr))
            .collect();
        if absent.is_empty() {
            continue;
        }
        // An index holds about one entry per entity of its type.
        let cost = t.count_of_types(&absent);
        if may_build && cost <= budget {
            budget -= cost;
            missing.extend(absent.into_iter().map(|ty| (ty, attr)));
        }
    }
    if !missing.is_empty() {
        missing.sort_unstable();
        missing.dedup();
        return Err(missing);
    }
    let mut best = None;
    for (attr, test) in usable {
        if bound == 0 {
            break;
        }
        // One key of one type: read its entities as the page needs them.
        if let [ty] = types {
            let single = t
                .value_index(*ty, attr)
                .and_then(|idx| idx.single_key(test));
            if let Some((key, len)) = single {
                if len < bound {
                    bound = len;
                    best = Some(Plan::Posting { ty: *ty, attr, key });
                }
                continue;
            }
        }
        // Strictly fewer than the best so far.
        let limit = bound - 1;
        let mut out = Vec::new();
        let mut answered = true;
        for &ty in types {
            let Some(idx) = t.value_index(ty, attr) else {
                answered = false;
                break;
            };
            if !matches!(idx.candidates(test, &mut out, limit), Ok(true)) {
                answered = false;
                break;
            }
        }
        if answered {
            out.sort_unstable();
            out.dedup();
            bound = out.len();
            best = Some(Plan::Seqs {
                seqs: out,
                dense: true,
            });
        }
    }
    Ok(best)
}

/// Entities a value index being built adds per write-lock acquisition, so
/// that writers wait milliseconds, not the whole build.
const BACKFILL_CHUNK: usize = 2048;

/// Builds the value indexes `pairs` ((type, attribute) name indices) that
/// do not exist yet and waits for them. The build runs as a task of its
/// own, so a caller that gives up waiting leaves no index half built.
async fn build_value_indexes(t: &Arc<RwLock<TenantState>>, pairs: &[(u32, u32)]) {
    let started: Vec<(u32, u32)> = {
        let mut w = t.write();
        pairs
            .iter()
            .copied()
            .filter(|&(ty, attr)| w.start_value_index(ty, attr))
            .collect()
    };
    if started.is_empty() {
        return;
    }
    let build = backfill(t.clone(), started);
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            if let Err(e) = rt.spawn(build).await {
                tracing::error!(error = %e, "building a value index failed");
            }
        }
        // Polled outside a Tokio runtime: build here.
        Err(_) => build.await,
    }
}

/// Fills the started value indexes `pairs`, a chunk per write lock.
async fn backfill(t: Arc<RwLock<TenantState>>, pairs: Vec<(u32, u32)>) {
    let begun = std::time::Instant::now();
    for &(ty, attr) in &pairs {
        while !t.write().backfill_value_index(ty, attr, BACKFILL_CHUNK) {
            tokio::task::yield_now().await;
        }
    }
    let g = t.read();
    tracing::debug!(
        ?pairs,
        elapsed_ms = begun.elapsed().as_millis() as u64,
        tenant_entries = g.value_entries(),
        store_entries = g.store_value_entries(),
        "value indexes built"
    );
}

/// Name indices of the attributes the filter reads (`q`, `attrs`, the geo
/// property). Testing a row needs only these decoded: the other parts of the
/// filter look at the id, types and scope, which are always decoded. A name
/// never interned is an attribute no entity has, so leaving it out changes
/// no answer.
fn filter_attrs(filter: &EntityFilter, names: &Names) -> Vec<u32> {
    let mut out = Vec::new();
    let mut add = |name: &str| {
        if let Some(i) = names.lookup(name) {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    };
    if let Some(q) = &filter.q {
        for name in q.attribute_names() {
            add(&name);
        }
    }
    for name in &filter.attrs {
        add(name);
    }
    if let Some(g) = &filter.geo_q {
        add(&g.geoproperty);
    }
    out
}

/// The types whose index answers the filter's type expression, if it is a
/// plain list of alternatives.
fn type_candidates(filter: &EntityFilter) -> Option<Vec<&str>> {
    filter.types.as_ref()?.simple_any_of()
}

/// A box every match of the filter's geo-query intersects, when it queries
/// `location` (the only property the R-tree indexes).
fn geo_candidates(filter: &EntityFilter) -> Option<BBox> {
    let g = filter.geo_q.as_ref()?;
    if g.geoproperty != core_iri::LOCATION && g.geoproperty != "location" {
        return None;
    }
    g.candidate_bbox()
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, tenant: &TenantId, id: &EntityId) -> Result<Option<Arc<Entity>>> {
        let Some(t) = self.state.tenant(tenant) else {
            return Ok(None);
        };
        let row = t.read().get(id).cloned();
        row.map(|r| self.decode(&r)).transpose()
    }

    async fn commit(&self, tenant: &TenantId, changes: Vec<Change>) -> Result<()> {
        let frame = wal::frame_commit(tenant, &changes)?;
        let names = &self.state.names;
        let changes = changes
            .into_iter()
            .map(|c| match c {
                Change::Put(e) => Prepared::put(&e, names),
                Change::Delete(id) => Prepared::Delete(id),
            })
            .collect();
        let (done, rx) = oneshot::channel();
        let op = Op::Commit {
            tenant: tenant.clone(),
            changes,
        };
        self.submit(Msg::Write(Pending { frame, op, done }), rx)
            .await
    }

    async fn query(
        &self,
        tenant: &TenantId,
        filter: &EntityFilter,
        page: Page,
    ) -> Result<QueryResult> {
        let Some(t) = self.state.tenant(tenant) else {
            return Ok(QueryResult {
                entities: Vec::new(),
                total: page.count.then_some(0),
            });
        };
        if filter.is_unrestricted() {
            let (rows, total) = {
                let g = t.read();
                let rows: Vec<Row> = g
                    .rows_from(0)
                    .skip(page.offset)
                    .take(page.limit)
                    .map(|(_, r)| r.clone())
                    .collect();
                (rows, g.len())
            };
            let entities = rows.iter().map(|r| self.decode(r)).collect::<Result<_>>()?;
            return Ok(QueryResult {
                entities,
                total: page.count.then_some(total),
            });
        }
        let mut may_build = true;
        let plan = loop {
            // The read guard must be gone before building takes the lock.
            let planned = plan(&t.read(), filter, &self.state.names, may_build);
            match planned {
                Planned::Ready(p) => break p,
                Planned::Build(pairs) => {
                    build_value_indexes(&t, &pairs).await;
                    may_build = false;
                }
            }
        };
        let keep = filter_attrs(filter, &self.state.names);
        let dense = matches!(plan, Plan::Seqs { dense: true, .. } | Plan::Posting { .. });
        let (mut pos, mut cursor) = (0usize, 0u64);
        let (mut matched, mut entities) = (0usize, Vec::new());
        // Copying a row out costs about as much as testing it: a page that
        // is done after a few candidates (an index plan, say) should copy
        // only those. Start at the page's end and double up to CHUNK.
        let mut chunk_len = if page.count {
            CHUNK
        } else {
            page.offset.saturating_add(page.limit).clamp(1, CHUNK)
        };
        let mut chunk = Vec::with_capacity(chunk_len);
        'scan: loop {
            chunk.clear();
            {
                let g = t.read();
                match &plan {
                    Plan::Seqs { seqs, .. } => {
                        let end = (pos + chunk_len).min(seqs.len());
                        // Entities deleted since planning are skipped.
                        chunk.extend(seqs[pos..end].iter().filter_map(|s| g.row(*s).cloned()));
                        if pos == end {
                            break 'scan;
                        }
                        pos = end;
                    }
                    Plan::Posting { ty, attr, key } => {
                        let seqs = g
                            .value_index(*ty, *attr)
                            .map(|idx| idx.seqs_from(key, cursor, chunk_len))
                            .unwrap_or_default();
                        let Some(&last) = seqs.last() else {
                            break 'scan;
                        };
                        cursor = last + 1;
                        chunk.extend(seqs.iter().filter_map(|s| g.row(*s).cloned()));
                    }
                    Plan::Type(ty) => {
                        let seqs = g.seqs_of_type_from(*ty, cursor, chunk_len);
                        let Some(&last) = seqs.last() else {
                            break 'scan;
                        };
                        cursor = last + 1;
                        chunk.extend(seqs.iter().filter_map(|s| g.row(*s).cloned()));
                    }
                    Plan::All => {
                        for (seq, row) in g.rows_from(cursor).take(chunk_len) {
                            chunk.push(row.clone());
                            cursor = seq + 1;
                        }
                        if chunk.is_empty() {
                            break 'scan;
                        }
                    }
                }
            }
            for row in &chunk {
                if entities.len() >= page.limit && !page.count {
                    break 'scan;
                }
                if dense && matched >= page.offset && entities.len() < page.limit {
                    // A match here is returned: decode it once, whole.
                    let e = self.decode(row)?;
                    if filter.matches(&e) {
                        matched += 1;
                        entities.push(e);
                    }
                    continue;
                }
                // Test the row with only the attributes the filter reads
                // decoded; decode it whole only when it is returned.
                let probe = codec::decode_only(&row.id, &row.blob, &self.state.names, &keep)
                    .map_err(|e| StoreError::Corrupt(format!("entity {}: {e}", row.id)))?;
                if !filter.matches(&probe) {
                    continue;
                }
                matched += 1;
                if matched > page.offset && entities.len() < page.limit {
                    entities.push(self.decode(row)?);
                }
            }
            if entities.len() >= page.limit && !page.count {
                break;
            }
            // Long scans decode on this task; let others run between chunks.
            tokio::task::yield_now().await;
            chunk_len = (chunk_len * 2).min(CHUNK);
        }
        Ok(QueryResult {
            entities,
            total: page.count.then_some(matched),
        })
    }

    async fn project_all(&self, tenant: &TenantId, attrs: &[&str]) -> Result<Vec<Arc<Entity>>> {
        let Some(t) = self.state.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let keep: Vec<u32> = attrs
            .iter()
            .filter_map(|a| self.state.names.lookup(a))
            .collect();
        let rows: Vec<Row> = t.read().rows_from(0).map(|(_, r)| r.clone()).collect();
        let mut out = Vec::with_capacity(rows.len());
        for (k, row) in rows.iter().enumerate() {
            let e = codec::decode_only(&row.id, &row.blob, &self.state.names, &keep)
                .map_err(|e| StoreError::Corrupt(format!("entity {}: {e}", row.id)))?;
            out.push(Arc::new(e));
            if k % CHUNK == CHUNK - 1 {
                // Long scans decode on this task; let others run between chunks.
                tokio::task::yield_now().await;
            }
        }
        Ok(out)
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool> {
        Ok(self.state.tenants.read().contains_key(tenant))
    }

    async fn tenants(&self) -> Result<Vec<TenantId>> {
        let mut out: Vec<TenantId> = self.state.tenants.read().keys().cloned().collect();
        out.sort();
        Ok(out)
    }

    async fn put_meta(&self, ns: &str, key: &str, value: Option<Vec<u8>>) -> Result<()> {
        let frame = wal::frame(&RecordOut::Meta {
            ns,
            key,
            value: value.as_deref(),
        })?;
        let (done, rx) = oneshot::channel();
        let op = Op::Meta {
            ns: ns.to_owned(),
            key: key.to_owned(),
            value,
        };
        self.submit(Msg::Write(Pending { frame, op, done }), rx)
            .await
    }

    async fn list_meta(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self
            .state
            .meta
            .read()
            .get(ns)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn flush(&self) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.submit(Msg::Checkpoint(done), rx).await
    }
}

/// Applies a replayed WAL record.
fn replay(state: &State, rec: RecordIn, next_seq: &mut u64) {
    match rec {
        RecordIn::Commit { tenant, changes } => {
            let t = state.tenant_or_create(&tenant);
            let mut t = t.write();
            for c in changes {
                let p = match c {
                    wal::ChangeIn::Put(e) => Prepared::put(&e, &state.names),
                    wal::ChangeIn::Delete(id) => Prepared::Delete(id),
                };
                t.apply(p, next_seq);
            }
        }
        RecordIn::Meta { ns, key, value } => state.apply_meta(ns, key, value),
    }
}

/// The writer thread's state.
struct Writer {
    state: Arc<State>,
    opts: EmbeddedOptions,
    wal_dir: PathBuf,
    file: File,
    segment: u64,
    wal_bytes: u64,
    next_seq: u64,
    /// Set after a failed WAL write: the segment may end in a partial
    /// record, so nothing more may be appended or acknowledged.
    failed: Option<String>,
    ckpt_tx: Option<mpsc::Sender<Job>>,
    ckpt_thread: Option<JoinHandle<()>>,
    ckpt_busy: Arc<AtomicBool>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut batch: Vec<Pending> = Vec::new();
        'outer: while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Write(p) => batch.push(p),
                    Msg::Checkpoint(done) => {
                        // Writes queued before the request belong in it.
                        self.commit_batch(&mut batch);
                        self.checkpoint(Some(done));
                    }
                    Msg::Shutdown => {
                        self.commit_batch(&mut batch);
                        break 'outer;
                    }
                }
                if batch.len() < self.opts.group_commit_max_batch.max(1) {
                    next = rx.try_recv().ok();
                }
            }
            self.commit_batch(&mut batch);
        }
        // Let a running checkpoint finish before the store is gone.
        drop(self.ckpt_tx.take());
        if let Some(h) = self.ckpt_thread.take() {
            if h.join().is_err() {
                tracing::error!("the store checkpoint thread panicked");
            }
        }
    }

    fn commit_batch(&mut self, batch: &mut Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.write_batch(batch) {
            let why = e.to_string();
            if self.failed.is_none() {
                tracing::error!(error = %why, "WAL write failed; the store refuses further writes");
                self.failed = Some(why.clone());
            }
            for p in batch.drain(..) {
                let _ = p.done.send(Err(StoreError::Unavailable(format!(
                    "WAL write failed: {why}"
                ))));
            }
            return;
        }
        for p in batch.drain(..) {
            self.apply(p.op);
            // The caller may have given up waiting; the commit stands anyway.
            let _ = p.done.send(Ok(()));
        }
        if self.wal_bytes > self.opts.snapshot_after_bytes
            && !self.ckpt_busy.load(Ordering::Acquire)
        {
            self.checkpoint(None);
        }
    }

    fn write_batch(&mut self, batch: &[Pending]) -> Result<()> {
        if let Some(why) = &self.failed {
            return Err(StoreError::Unavailable(format!(
                "an earlier WAL write failed: {why}"
            )));
        }
        let path = wal::segment_path(&self.wal_dir, self.segment);
        let written = if let [one] = batch {
            self.file.write_all(&one.frame).map(|()| one.frame.len())
        } else {
            let buf = batch
                .iter()
                .map(|p| p.frame.as_slice())
                .collect::<Vec<_>>()
                .concat();
            self.file.write_all(&buf).map(|()| buf.len())
        }
        .map_err(|e| io_err(&path, e))?;
        if self.opts.fsync {
            self.file.sync_data().map_err(|e| io_err(&path, e))?;
        }
        self.wal_bytes += written as u64;
        Ok(())
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Commit { tenant, changes } => {
                let t = self.state.tenant_or_create(&tenant);
                let mut t = t.write();
                for c in changes {
                    t.apply(c, &mut self.next_seq);
                }
            }
            Op::Meta { ns, key, value } => self.state.apply_meta(ns, key, value),
        }
    }

    /// Rotates the WAL, captures the state and hands it to the checkpoint
    /// thread; `done` hears when the snapshot is durable.
    fn checkpoint(&mut self, done: Option<oneshot::Sender<Result<()>>>) {
        let reply = |done: Option<oneshot::Sender<Result<()>>>, r| {
            if let Some(d) = done {
                let _ = d.send(r);
            }
        };
        if let Some(why) = &self.failed {
            let why = why.clone();
            return reply(
                done,
                Err(StoreError::Unavailable(format!("WAL write failed: {why}"))),
            );
        }
        let next = self.segment + 1;
        match create_segment(&self.wal_dir, next) {
            Ok(f) => {
                self.file = f;
                self.segment = next;
                self.wal_bytes = 0;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a new WAL segment; checkpoint skipped");
                return reply(done, Err(e));
            }
        }
        let image = self.capture();
        self.ckpt_busy.store(true, Ordering::Release);
        let job = Job {
            covers_below: next,
            image,
            done,
        };
        if let Some(tx) = &self.ckpt_tx {
            if let Err(mpsc::SendError(job)) = tx.send(job) {
                self.ckpt_busy.store(false, Ordering::Release);
                reply(
                    job.done,
                    Err(StoreError::Unavailable("checkpoint thread stopped".into())),
                );
            }
        }
    }

    /// A consistent image of the state: the writer is its only mutator, so
    /// between batches nothing changes while we copy (`Arc` clones only).
    fn capture(&self) -> Image {
        let mut tenants: Vec<(TenantId, Arc<RwLock<TenantState>>)> = self
            .state
            .tenants
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tenants.sort_by(|a, b| a.0.cmp(&b.0));
        let tenants = tenants
            .into_iter()
            .map(|(id, t)| {
                let rows = t.read().export();
                (id, rows)
            })
            .collect();
        let meta = self
            .state
            .meta
            .read()
            .iter()
            .flat_map(|(ns, m)| {
                m.iter()
                    .map(move |(k, v)| (ns.clone(), k.clone(), v.clone()))
            })
            .collect();
        Image {
            next_seq: self.next_seq,
            // Taken after the rows: the table only grows, so it names all they use.
            names: self.state.names.snapshot(),
            meta,
            tenants,
        }
    }
}

/// A snapshot to write.
struct Job {
    covers_below: u64,
    image: Image,
    done: Option<oneshot::Sender<Result<()>>>,
}

fn checkpointer(
    rx: mpsc::Receiver<Job>,
    snap_dir: PathBuf,
    wal_dir: PathBuf,
    busy: Arc<AtomicBool>,
) {
    for job in rx {
        let r = write_checkpoint(&snap_dir, &wal_dir, &job);
        if let Err(e) = &r {
            // The WAL still holds everything; the next checkpoint retries.
            tracing::error!(error = %e, "checkpoint failed");
        }
        drop(job.image);
        busy.store(false, Ordering::Release);
        if let Some(d) = job.done {
            let _ = d.send(r);
        }
    }
}

fn write_checkpoint(snap_dir: &Path, wal_dir: &Path, job: &Job) -> Result<()> {
    let n = job.covers_below;
    snapshot::write(snap_dir, n, &job.image)?;
    for old in snapshot::list_snapshots(snap_dir)?
        .into_iter()
        .filter(|&s| s < n)
    {
        remove(&snapshot::snapshot_path(snap_dir, old))?;
    }
    for seg in wal::list_segments(wal_dir)?.into_iter().filter(|&s| s < n) {
        remove(&wal::segment_path(wal_dir, seg))?;
    }
    sync_dir(wal_dir)
}

fn create_segment(wal_dir: &Path, n: u64) -> Result<File> {
    let path = wal::segment_path(wal_dir, n);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    // The new file's directory entry must survive a crash, or its records do not.
    sync_dir(wal_dir)?;
    Ok(f)
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path, e)),
        _ => Ok(()),
    }
}

fn remove_temp_files(dir: &Path) -> Result<()> {
    for ent in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let ent = ent.map_err(|e| io_err(dir, e))?;
        if ent
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".tmp"))
        {
            remove(&ent.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dosi_ngsi::model::{Attribute, Iri};
    use dosi_ngsi::query::TypeExpr;
    use dosi_ngsi::Timestamp;
    use serde_json::json;

    use super::*;

    /// What the planner makes of `type=T&q=…` over 1,000 entities of type T
    /// whose `band` is `i % 100` (and 1,000 of type U): `Some(n)` for a plan
    /// of `n` candidates, `None` for a scan of the type.
    async fn planned(store: &EmbeddedStore, q: &str) -> Option<usize> {
        let mut types = TypeExpr::parse("T").expect("type");
        types.expand_names(&|n| format!("urn:{n}"));
        let mut q = Q::parse(q).expect("q");
        q.expand_names(&|n| format!("urn:{n}"));
        let filter = EntityFilter {
            types: Some(types),
            q: Some(q),
            ..EntityFilter::default()
        };
        let t = store
            .state
            .tenant(&TenantId::default_tenant())
            .expect("default tenant");
        let mut may_build = true;
        loop {
            let planned = plan(&t.read(), &filter, &store.state.names, may_build);
            match planned {
                Planned::Ready(Plan::Seqs { seqs, .. }) => return Some(seqs.len()),
                Planned::Ready(Plan::Posting { ty, attr, key }) => {
                    let g = t.read();
                    let idx = g.value_index(ty, attr).expect("planned from it");
                    return Some(idx.seqs_from(&key, 0, usize::MAX).len());
                }
                Planned::Ready(_) => return None,
                Planned::Build(pairs) => {
                    build_value_indexes(&t, &pairs).await;
                    may_build = false;
                }
            }
        }
    }

    #[tokio::test]
    async fn value_conjuncts_plan_from_the_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let d = TenantId::default_tenant();
        let changes = (0..2000)
            .map(|i| {
                let ty = if i < 1000 { "urn:T" } else { "urn:U" };
                let mut e = Entity::new(
                    EntityId::new_unchecked(&format!("urn:e:{i}")),
                    vec![Iri::from(ty)],
                    Timestamp(0),
                );
                e.attrs.insert(
                    Iri::from("urn:band"),
                    vec![Attribute::property(json!(i % 100), Timestamp(0))],
                );
                Change::Put(Arc::new(e))
            })
            .collect();
        store.commit(&d, changes).await.expect("commit");
        let cases: &[(&str, Option<usize>)] = &[
            ("band==5", Some(10)),
            ("band==5.0", Some(10)),
            ("band==5,6,7", Some(30)),
            ("band==10..19", Some(100)),
            ("band<3", Some(30)),
            ("band>=97", Some(30)),
            ("band==\"5\"", Some(0)),
            ("band==5;band<50", Some(10)),
            ("band<50;band==5", Some(10)),
            ("nothing==1;band==5", Some(0)),
            // Not answerable from the index, or not more selective than the type.
            ("band==5|band==6", None),
            ("band!=5", None),
            ("band>=0", None),
            ("band==2024-01-01", None),
        ];
        for (q, want) in cases {
            assert_eq!(planned(&store, q).await, *want, "{q}");
        }
        let t = store.state.tenant(&d).expect("tenant");
        assert_eq!(t.read().value_entries(), 1000, "only (T, band) is indexed");
        // The budget counts the indexes of every tenant.
        let other = TenantId::parse("other").expect("tenant");
        let one = Entity::new(
            EntityId::new_unchecked("urn:e:x"),
            vec![Iri::from("urn:T")],
            Timestamp(0),
        );
        let mut with_band = one.clone();
        with_band.attrs.insert(
            Iri::from("urn:band"),
            vec![Attribute::property(json!(1), Timestamp(0))],
        );
        store
            .commit(&other, vec![Change::Put(Arc::new(with_band))])
            .await
            .expect("commit");
        let o = store.state.tenant(&other).expect("tenant");
        let (ty, band) = (
            store.state.names.lookup("urn:T").expect("interned"),
            store.state.names.lookup("urn:band").expect("interned"),
        );
        let idx = o.read().build_value_index(ty, band);
        o.write().install_value_index(ty, band, idx);
        assert_eq!(o.read().value_entries(), 1);
        assert_eq!(t.read().store_value_entries(), 1001);
        store
            .commit(&other, vec![Change::Put(Arc::new(one))])
            .await
            .expect("commit");
        assert_eq!(o.read().value_entries(), 0);
        assert_eq!(o.read().store_value_entries(), 1000);
    }
}
