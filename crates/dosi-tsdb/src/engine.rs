//! The engine: per series an in-memory head (sorted by recorded time) and
//! sealed, compressed chunks in segment files; a write-ahead log for what is
//! not sealed yet; a catalog that names the sealed state. See
//! `docs/adr/0007-history-storage.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::hash::BuildHasherDefault;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering as AtOrd};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::agg::Agg;
use crate::chunk::{self, ChunkMeta, ChunkView, Columns, Summary};
use crate::codec::{corrupt, put_bytes, put_ivarint, put_uvarint, Reader};
use crate::wal::{self, Rec, Wal};
use crate::{
    floor_to, rollup_applies, Bucket, Config, Error, Maintenance, NewPoint, Order, Point, Range,
    Result, SeriesId, Stats, TimeField, Value,
};

const SHARDS: usize = 16;
/// Chunks smaller than this count as small (see `MERGE_FANIN`).
const MERGE_BELOW: u32 = 4096;
/// How many small chunks of one partition are merged at once.
const MERGE_FANIN: usize = 8;
/// Largest chunk.
const MAX_CHUNK: usize = 8192;
/// A segment whose live chunks fill less than this share is rewritten.
const SPARSE_SHARE: f64 = 0.5;
const SEG_MAGIC: &[u8; 8] = b"DOSISEG1";
/// Catalog format 1: the sealed state at the log cut.
const CAT_MAGIC_V1: &[u8; 8] = b"DOSICAT1";
/// Catalog format 2: each series also names how much of the catalog's first
/// log file its state already reflects (see `Tsdb::checkpoint_blocking`).
const CAT_MAGIC: &[u8; 8] = b"DOSICAT2";
const CATALOG: &str = "catalog";
const CATALOG_TMP: &str = "catalog.tmp";

/// A file of sealed chunks, written once by a checkpoint.
struct Segment {
    id: u64,
    /// The bytes, until the file is written.
    pending: RwLock<Option<Arc<Vec<u8>>>>,
    file: OnceLock<File>,
    size: AtomicU64,
}

impl Segment {
    fn read(&self, off: u64, len: u32) -> Result<Vec<u8>> {
        if let Some(b) = self.pending.read().as_ref() {
            let r = usize::try_from(off)
                .ok()
                .and_then(|o| b.get(o..o + len as usize))
                .ok_or_else(|| corrupt(format!("chunk outside segment {}", self.id)))?;
            return Ok(r.to_vec());
        }
        let f = self
            .file
            .get()
            .ok_or_else(|| corrupt(format!("segment {} has no file", self.id)))?;
        let mut v = vec![0u8; len as usize];
        read_at(f, &mut v, off)?;
        Ok(v)
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut off: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(f, buf, off)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        off += n as u64;
    }
    Ok(())
}

/// A sealed chunk (immutable; shared with readers).
struct Chunk {
    id: u64,
    meta: ChunkMeta,
    seg: Arc<Segment>,
    off: u64,
    len: u32,
}

impl Chunk {
    fn bytes(&self) -> Result<Vec<u8>> {
        self.seg.read(self.off, self.len)
    }

    fn points(&self) -> Result<Vec<Point>> {
        ChunkView::parse(&self.bytes()?)?.points()
    }

    /// Bounds of the range's time in this chunk (None: no point has it).
    fn bounds(&self, field: TimeField) -> Option<(i64, i64)> {
        match field {
            TimeField::Recorded => Some((self.meta.min_rec, self.meta.max_rec)),
            TimeField::Observed => self.meta.obs,
        }
    }

    fn overlaps(&self, range: &Range) -> bool {
        self.bounds(range.field).is_some_and(|(lo, hi)| {
            range.from.is_none_or(|f| hi >= f) && range.to.is_none_or(|u| lo < u)
        })
    }

    /// Every point of the chunk is in the range (only known for the
    /// recorded time: some points may lack an observed one).
    fn inside(&self, range: &Range) -> bool {
        range.field == TimeField::Recorded
            && range.contains(self.meta.min_rec)
            && range.contains(self.meta.max_rec)
    }
}

/// A chunk as a series holds it, with the instances deleted or replaced
/// since it was sealed (sorted).
#[derive(Clone)]
struct Sealed {
    c: Arc<Chunk>,
    dead: Vec<u64>,
}

impl Sealed {
    fn is_dead(&self, inst: u64) -> bool {
        !self.dead.is_empty() && self.dead.binary_search(&inst).is_ok()
    }

    /// Live points.
    fn live_points(&self) -> Result<Vec<Point>> {
        let mut v = self.c.points()?;
        if !self.dead.is_empty() {
            v.retain(|p| !self.is_dead(p.instance));
        }
        Ok(v)
    }

    fn holds(&self, inst: u64) -> Result<bool> {
        if inst < self.c.meta.min_inst || inst > self.c.meta.max_inst || self.is_dead(inst) {
            return Ok(false);
        }
        let b = self.c.bytes()?;
        Ok(ChunkView::parse(&b)?.instances()?.contains(&inst))
    }
}

struct Series {
    /// Shared with the key indexes of [`Tsdb`] (one copy per series).
    key: Key,
    next: u64,
    /// Points not sealed yet, sorted by (recorded, instance).
    head: Vec<Point>,
    chunks: Vec<Sealed>,
    /// Rollups of dropped points: (width, start) → summary.
    rollups: BTreeMap<(i64, i64), Summary>,
}

impl Series {
    /// Removes point `inst`: from the head, or by marking it dead in its
    /// sealed chunk. False if the series has no such point.
    fn remove_point(&mut self, inst: u64) -> Result<bool> {
        if let Some(i) = self.head.iter().position(|p| p.instance == inst) {
            self.head.remove(i);
        } else if let Some(ci) = self.locate(inst)? {
            let dead = &mut self.chunks[ci].dead;
            let at = dead.partition_point(|d| *d < inst);
            dead.insert(at, inst);
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    fn new(key: Key) -> Self {
        Self {
            key,
            next: 1,
            head: Vec::new(),
            chunks: Vec::new(),
            rollups: BTreeMap::new(),
        }
    }

    fn insert_head(&mut self, p: Point) {
        let k = (p.recorded, p.instance);
        match self.head.last() {
            Some(l) if (l.recorded, l.instance) > k => {
                let i = self.head.partition_point(|q| (q.recorded, q.instance) < k);
                grow_exact(&mut self.head);
                self.head.insert(i, p);
            }
            _ => {
                grow_exact(&mut self.head);
                self.head.push(p);
            }
        }
    }

    /// Index range of head points whose recorded time is in `range`.
    fn head_span(&self, range: &Range) -> std::ops::Range<usize> {
        let lo = range
            .from
            .map_or(0, |f| self.head.partition_point(|p| p.recorded < f));
        let hi = range.to.map_or(self.head.len(), |u| {
            self.head.partition_point(|p| p.recorded < u)
        });
        lo..hi.max(lo)
    }

    /// Whether live point `inst` (recorded at `recorded` if in the head) is
    /// held.
    fn holds_point(&self, recorded: i64, inst: u64) -> bool {
        let k = (recorded, inst);
        self.head
            .binary_search_by(|q| (q.recorded, q.instance).cmp(&k))
            .is_ok()
            || self.locate(inst).ok().flatten().is_some()
    }

    /// The sealed chunk holding live `inst`.
    fn locate(&self, inst: u64) -> Result<Option<usize>> {
        for (i, s) in self.chunks.iter().enumerate() {
            if s.holds(inst)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// Checkpoint bookkeeping (one checkpoint at a time).
struct Ckpt {
    /// Sequence number of the log file being written.
    wal_seq: u64,
    next_seg: u64,
    next_chunk: u64,
    /// Segments whose file is not written yet (a failed checkpoint).
    unwritten: Vec<Arc<Segment>>,
    /// Segment files on disk.
    on_disk: HashSet<u64>,
    last: Instant,
}

/// The time-series database.
pub struct Tsdb {
    cfg: Config,
    /// Mutations hold it shared; a checkpoint holds it exclusively only
    /// while it rotates the log, so that every record is wholly in the old
    /// file or in the new one.
    gate: RwLock<()>,
    keys: RwLock<BTreeMap<Key, SeriesId>>,
    /// The same map hashed and sharded, for the point lookups of every
    /// append (the ordered map serves prefix scans).
    lookup: Vec<RwLock<KeyIndex>>,
    next_id: AtomicU64,
    shards: Vec<RwLock<HashMap<SeriesId, Series>>>,
    meta: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    wal: Wal,
    ckpt: Mutex<Ckpt>,
    /// Log bytes before the current log files (the lsn of the last cut).
    wal_base: AtomicU64,
    sealed_bytes: AtomicU64,
    /// Size of the catalog file last written or loaded.
    catalog_bytes: AtomicU64,
}

fn sync_dir(dir: &Path, fsync: bool) -> Result<()> {
    if fsync {
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn seg_name(id: u64) -> String {
    format!("seg-{id:016}.dat")
}

fn parse_seg_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".dat")?
        .parse()
        .ok()
}

/// What `open` reads from the catalog.
struct Loaded {
    next_id: u64,
    wal_seq: u64,
    next_seg: u64,
    next_chunk: u64,
    meta: BTreeMap<Vec<u8>, Vec<u8>>,
    series: Vec<(SeriesId, Series)>,
    /// Per series, the offset in log file `wal_seq` before which its records
    /// are already reflected by the catalog.
    applied: HashMap<SeriesId, u64>,
    segs: HashMap<u64, Arc<Segment>>,
    bytes: u64,
    catalog_bytes: u64,
}

impl Tsdb {
    /// Opens (or creates) the database described by `cfg`, recovering what
    /// was synced before.
    pub fn open(cfg: Config) -> Result<Self> {
        if cfg.partition <= 0 {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "partition width must be positive",
            )));
        }
        fs::create_dir_all(&cfg.dir)?;
        let loaded = load_catalog(&cfg.dir)?;

        // Leftovers of a checkpoint that did not finish, or of one that
        // finished but did not clean up.
        let mut wal_files = Vec::new();
        let mut on_disk = HashSet::new();
        for e in fs::read_dir(&cfg.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(seq) = wal::parse_name(&name) {
                if seq < loaded.wal_seq {
                    fs::remove_file(e.path())?;
                } else {
                    wal_files.push(seq);
                }
            } else if let Some(id) = parse_seg_name(&name) {
                if loaded.segs.contains_key(&id) {
                    on_disk.insert(id);
                } else {
                    fs::remove_file(e.path())?;
                }
            } else if name == CATALOG_TMP {
                fs::remove_file(e.path())?;
            }
        }
        wal_files.sort_unstable();
        let kept: u64 = wal_files
            .iter()
            .map(|s| fs::metadata(cfg.dir.join(wal::file_name(*s))).map_or(0, |m| m.len()))
            .sum();
        let seq = wal_files.last().map_or(loaded.wal_seq, |s| s + 1);
        let file = create_wal(&cfg.dir, seq, cfg.fsync)?;
        let wal = Wal::start(&cfg.dir, file, kept, cfg.fsync)?;

        // Sized up front and the ordered index built in one sorted pass:
        // with millions of series, rehashing and one-by-one B-tree inserts
        // were most of the time to open.
        let per_shard = loaded.series.len() / SHARDS + 1;
        let mut shards: Vec<HashMap<SeriesId, Series>> = (0..SHARDS)
            .map(|_| HashMap::with_capacity(per_shard))
            .collect();
        let mut lookup: Vec<KeyIndex> = (0..SHARDS)
            .map(|_| HashMap::with_capacity_and_hasher(per_shard, Default::default()))
            .collect();
        for (id, s) in loaded.series {
            let index = &mut lookup[lookup_shard(&s.key)];
            if let Some(&other) = index.get(&s.key) {
                // Two live series never share a key, and ids only grow: the
                // older one was deleted while the checkpoint that wrote this
                // catalog was sealing (its deletion is in the log too, unless
                // it was never synced).
                if other > id {
                    continue;
                }
                shards[(other % SHARDS as u64) as usize].remove(&other);
            }
            index.insert(s.key.clone(), id);
            shards[(id % SHARDS as u64) as usize].insert(id, s);
        }
        let keys: BTreeMap<Key, SeriesId> = lookup
            .iter()
            .flat_map(|index| index.iter().map(|(k, id)| (k.clone(), *id)))
            .collect();
        let db = Self {
            cfg,
            gate: RwLock::new(()),
            keys: RwLock::new(keys),
            lookup: lookup.into_iter().map(RwLock::new).collect(),
            next_id: AtomicU64::new(loaded.next_id),
            shards: shards.into_iter().map(RwLock::new).collect(),
            meta: RwLock::new(loaded.meta),
            wal,
            ckpt: Mutex::new(Ckpt {
                wal_seq: seq,
                next_seg: loaded.next_seg,
                next_chunk: loaded.next_chunk,
                unwritten: Vec::new(),
                on_disk,
                last: Instant::now(),
            }),
            wal_base: AtomicU64::new(0),
            sealed_bytes: AtomicU64::new(loaded.bytes),
            catalog_bytes: AtomicU64::new(loaded.catalog_bytes),
        };
        for s in wal_files {
            // Only the catalog's own first log file can hold records that the
            // catalog already reflects.
            let applied = (s == loaded.wal_seq).then_some(&loaded.applied);
            db.replay_file(&db.cfg.dir.join(wal::file_name(s)), applied)?;
        }
        Ok(db)
    }

    fn replay_file(&self, path: &Path, applied: Option<&HashMap<SeriesId, u64>>) -> Result<()> {
        let bytes = fs::read(path)?;
        let valid = wal::replay(&bytes, |off, rec| {
            let done = applied.is_some_and(|a| {
                rec_series(&rec).is_some_and(|s| a.get(&s).is_some_and(|upto| off < *upto))
            });
            if done {
                return Ok(());
            }
            self.apply(rec)
        })?;
        if valid < bytes.len() {
            tracing::warn!(
                file = %path.display(),
                valid,
                len = bytes.len(),
                "history log has a torn or corrupt tail; cutting it"
            );
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(valid as u64)?;
            if self.cfg.fsync {
                f.sync_all()?;
            }
        }
        Ok(())
    }

    /// Re-applies a logged mutation (recovery).
    fn apply(&self, rec: Rec) -> Result<()> {
        match rec {
            Rec::Create { id, key } => {
                self.create_series(&key, Some(id), false);
            }
            Rec::Append { s, inst, p } => {
                self.do_append(s, Some(inst), p, false);
            }
            Rec::Delete { s, inst } => {
                self.do_delete_instance(s, inst, false)?;
            }
            Rec::Replace { s, inst, p } => {
                self.do_replace_instance(s, inst, p, false)?;
            }
            Rec::DropSeries { s } => {
                self.do_delete_series(s, false);
            }
            Rec::Meta { key, value } => self.do_put_meta(&key, value.as_deref(), false),
            Rec::DropBefore { s, t, rollup } => {
                self.do_drop_before(s, t, rollup, false)?;
            }
        }
        Ok(())
    }

    fn shard(&self, s: SeriesId) -> &RwLock<HashMap<SeriesId, Series>> {
        &self.shards[(s % SHARDS as u64) as usize]
    }

    /// The series named `key`, if it exists.
    pub fn series_id(&self, key: &[u8]) -> Option<SeriesId> {
        self.lookup[lookup_shard(key)].read().get(key).copied()
    }

    /// The series named `key`, created if needed.
    pub fn ensure_series(&self, key: &[u8]) -> SeriesId {
        if let Some(id) = self.series_id(key) {
            return id;
        }
        self.create_series(key, None, true)
    }

    fn create_series(&self, key: &[u8], id: Option<SeriesId>, log: bool) -> SeriesId {
        let _g = self.gate.read();
        let mut keys = self.keys.write();
        if let Some(id) = keys.get(key) {
            return *id;
        }
        let id = match id {
            Some(id) => {
                self.next_id.fetch_max(id.saturating_add(1), AtOrd::Relaxed);
                id
            }
            None => self.next_id.fetch_add(1, AtOrd::Relaxed),
        };
        let key: Key = Arc::from(key);
        keys.insert(key.clone(), id);
        self.lookup[lookup_shard(&key)]
            .write()
            .insert(key.clone(), id);
        // On replay the series may exist already (a catalog written while a
        // same-key series was being replaced): keep it.
        self.shard(id)
            .write()
            .entry(id)
            .or_insert_with(|| Series::new(key.clone()));
        if log {
            let mut b = Vec::new();
            wal::frame_rec(
                &mut b,
                &Rec::Create {
                    id,
                    key: key.to_vec(),
                },
            );
            self.wal.log(&b);
        }
        id
    }

    /// Every series whose key starts with `prefix`, in key order.
    pub fn series_by_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, SeriesId)> {
        use std::ops::Bound;
        self.keys
            .read()
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_vec(), *v))
            .collect()
    }

    /// Appends a point to series `s`; returns its instance number (0 if the
    /// series does not exist). Durable after the next [`Tsdb::sync`].
    pub fn append(&self, s: SeriesId, p: NewPoint) -> u64 {
        self.do_append(s, None, p, true)
    }

    fn do_append(&self, s: SeriesId, inst: Option<u64>, p: NewPoint, log: bool) -> u64 {
        let _g = self.gate.read();
        let mut sh = self.shard(s).write();
        let Some(series) = sh.get_mut(&s) else {
            return 0;
        };
        let instance = match inst {
            Some(i) => {
                // Replay of a point the state already holds (never the case
                // when the catalog's per-series log offsets are right; a
                // guard, cheap since replayed instances are ≥ `next`).
                if !log && i < series.next && series.holds_point(p.recorded, i) {
                    return i;
                }
                series.next = series.next.max(i.saturating_add(1));
                i
            }
            None => {
                let i = series.next;
                series.next += 1;
                i
            }
        };
        if log {
            self.wal.log_with(|b| wal::frame_append(b, s, instance, &p));
        }
        series.insert_head(Point {
            instance,
            recorded: p.recorded,
            observed: p.observed,
            tpl: p.tpl,
            value: p.value,
        });
        instance
    }

    /// Removes a series and all its points. False if it did not exist.
    pub fn delete_series(&self, s: SeriesId) -> bool {
        self.do_delete_series(s, true)
    }

    fn do_delete_series(&self, s: SeriesId, log: bool) -> bool {
        let _g = self.gate.read();
        let mut keys = self.keys.write();
        let Some(series) = self.shard(s).write().remove(&s) else {
            return false;
        };
        // (On replay the key may already name a newer series.)
        if keys.get(&series.key) == Some(&s) {
            keys.remove(&series.key);
            self.lookup[lookup_shard(&series.key)]
                .write()
                .remove(&series.key);
        }
        if log {
            let mut b = Vec::new();
            wal::frame_rec(&mut b, &Rec::DropSeries { s });
            self.wal.log(&b);
        }
        true
    }

    /// Removes one point. False if there is no such point (or the data
    /// holding it cannot be read; that is logged).
    pub fn delete_instance(&self, s: SeriesId, instance: u64) -> bool {
        self.do_delete_instance(s, instance, true)
            .unwrap_or_else(|e| {
                tracing::error!(series = s, instance, error = %e, "history: delete failed");
                false
            })
    }

    fn do_delete_instance(&self, s: SeriesId, inst: u64, log: bool) -> Result<bool> {
        let _g = self.gate.read();
        let mut sh = self.shard(s).write();
        let Some(series) = sh.get_mut(&s) else {
            return Ok(false);
        };
        if !series.remove_point(inst)? {
            return Ok(false);
        }
        if log {
            let mut b = Vec::new();
            wal::frame_rec(&mut b, &Rec::Delete { s, inst });
            self.wal.log(&b);
        }
        Ok(true)
    }

    /// Replaces the content of one point, keeping its instance number.
    /// False if there is no such point.
    pub fn replace_instance(&self, s: SeriesId, instance: u64, p: NewPoint) -> bool {
        self.do_replace_instance(s, instance, p, true)
            .unwrap_or_else(|e| {
                tracing::error!(series = s, instance, error = %e, "history: replace failed");
                false
            })
    }

    fn do_replace_instance(&self, s: SeriesId, inst: u64, p: NewPoint, log: bool) -> Result<bool> {
        let _g = self.gate.read();
        let mut sh = self.shard(s).write();
        let Some(series) = sh.get_mut(&s) else {
            return Ok(false);
        };
        if !series.remove_point(inst)? {
            return Ok(false);
        }
        if log {
            self.wal.log_with(|b| {
                wal::frame_rec(
                    b,
                    &Rec::Replace {
                        s,
                        inst,
                        p: p.clone(),
                    },
                )
            });
        }
        series.insert_head(Point {
            instance: inst,
            recorded: p.recorded,
            observed: p.observed,
            tpl: p.tpl,
            value: p.value,
        });
        Ok(true)
    }

    /// One point by instance number.
    pub fn get_instance(&self, s: SeriesId, instance: u64) -> Option<Point> {
        let chunks = {
            let sh = self.shard(s).read();
            let series = sh.get(&s)?;
            if let Some(p) = series.head.iter().find(|p| p.instance == instance) {
                return Some(p.clone());
            }
            series
                .chunks
                .iter()
                .filter(|c| {
                    (c.c.meta.min_inst..=c.c.meta.max_inst).contains(&instance)
                        && !c.is_dead(instance)
                })
                .cloned()
                .collect::<Vec<_>>()
        };
        for c in chunks {
            match c.c.points() {
                Ok(pts) => {
                    if let Some(p) = pts.into_iter().find(|p| p.instance == instance) {
                        return Some(p);
                    }
                }
                Err(e) => tracing::error!(series = s, error = %e, "history: unreadable chunk"),
            }
        }
        None
    }

    /// Sets (`Some`) or removes (`None`) a meta value.
    pub fn put_meta(&self, key: &[u8], value: Option<&[u8]>) {
        self.do_put_meta(key, value, true);
    }

    fn do_put_meta(&self, key: &[u8], value: Option<&[u8]>, log: bool) {
        let _g = self.gate.read();
        let mut m = self.meta.write();
        match value {
            Some(v) => {
                m.insert(key.to_vec(), v.to_vec());
            }
            None => {
                m.remove(key);
            }
        }
        if log {
            let mut b = Vec::new();
            wal::frame_rec(
                &mut b,
                &Rec::Meta {
                    key: key.to_vec(),
                    value: value.map(<[u8]>::to_vec),
                },
            );
            self.wal.log(&b);
        }
    }

    /// A meta value.
    pub fn get_meta(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.meta.read().get(key).cloned()
    }

    /// Meta entries whose key starts with `prefix`, in key order.
    pub fn meta_by_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.meta
            .read()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Waits until every mutation made before the call is durable. The
    /// fsync happens on the log's own thread; concurrent callers share it.
    pub async fn sync(&self) -> Result<()> {
        let target = self.wal.lsn();
        self.wal.wait_durable(target).await
    }

    /// Head points in `range` and the chunks that may hold more, taken
    /// under the shard lock (which is released before any decoding).
    fn snapshot(
        &self,
        s: SeriesId,
        range: &Range,
        head_limit: Option<(Order, usize)>,
    ) -> Option<(Vec<Point>, Vec<Sealed>)> {
        let sh = self.shard(s).read();
        let series = sh.get(&s)?;
        let head: Vec<Point> = match range.field {
            TimeField::Recorded => {
                let span = series.head_span(range);
                let span = match head_limit {
                    Some((Order::Asc, n)) => span.start..span.end.min(span.start.saturating_add(n)),
                    Some((Order::Desc, n)) => span.start.max(span.end.saturating_sub(n))..span.end,
                    None => span,
                };
                series.head[span].to_vec()
            }
            TimeField::Observed => series
                .head
                .iter()
                .filter(|p| p.observed.is_some_and(|o| range.contains(o)))
                .cloned()
                .collect(),
        };
        let chunks = series
            .chunks
            .iter()
            .filter(|c| c.c.overlaps(range))
            .cloned()
            .collect();
        Some((head, chunks))
    }

    /// Points of `s` in `range`, ordered by the range's time, at most `limit`.
    pub fn scan(&self, s: SeriesId, range: &Range, order: Order, limit: usize) -> Vec<Point> {
        if limit == 0 {
            return Vec::new();
        }
        let Some((mut cand, mut chunks)) = self.snapshot(s, range, Some((order, limit))) else {
            return Vec::new();
        };
        let field = range.field;
        let key = move |p: &Point| {
            let t = match field {
                TimeField::Recorded => p.recorded,
                TimeField::Observed => p.observed.unwrap_or(i64::MIN),
            };
            (t, p.instance)
        };
        let sort = |v: &mut Vec<Point>| match order {
            Order::Asc => v.sort_by_key(key),
            Order::Desc => v.sort_by_key(|p| std::cmp::Reverse(key(p))),
        };
        match order {
            Order::Asc => chunks.sort_by_key(|c| c.c.bounds(field).map_or(i64::MAX, |b| b.0)),
            Order::Desc => chunks
                .sort_by_key(|c| std::cmp::Reverse(c.c.bounds(field).map_or(i64::MIN, |b| b.1))),
        }
        for c in chunks {
            if cand.len() >= limit {
                sort(&mut cand);
                cand.truncate(limit);
                let kth = key(&cand[limit - 1]).0;
                let (lo, hi) = c.c.bounds(field).unwrap_or((i64::MAX, i64::MIN));
                let beyond = match order {
                    Order::Asc => lo > kth,
                    Order::Desc => hi < kth,
                };
                if beyond {
                    break;
                }
            }
            match c.live_points() {
                Ok(pts) => cand.extend(
                    pts.into_iter()
                        .filter(|p| range.time_of(p).is_some_and(|t| range.contains(t))),
                ),
                Err(e) => tracing::error!(series = s, error = %e, "history: unreadable chunk"),
            }
        }
        sort(&mut cand);
        cand.truncate(limit);
        cand
    }

    /// Number of points of `s` in `range`.
    pub fn count(&self, s: SeriesId, range: &Range) -> usize {
        let (head, chunks) = {
            let sh = self.shard(s).read();
            let Some(series) = sh.get(&s) else {
                return 0;
            };
            let head = match range.field {
                TimeField::Recorded => series.head_span(range).len(),
                TimeField::Observed => series
                    .head
                    .iter()
                    .filter(|p| p.observed.is_some_and(|o| range.contains(o)))
                    .count(),
            };
            let chunks: Vec<Sealed> = series
                .chunks
                .iter()
                .filter(|c| c.c.overlaps(range))
                .cloned()
                .collect();
            (head, chunks)
        };
        let mut n = head;
        for c in chunks {
            if c.dead.is_empty() && c.c.inside(range) {
                n += c.c.meta.n as usize;
                continue;
            }
            let counted = (|| -> Result<usize> {
                let b = c.c.bytes()?;
                let v = ChunkView::parse(&b)?;
                let rec = v.recorded()?;
                let inst = if c.dead.is_empty() {
                    Vec::new()
                } else {
                    v.instances()?
                };
                let times: Vec<Option<i64>> = match range.field {
                    TimeField::Recorded => rec.iter().map(|t| Some(*t)).collect(),
                    TimeField::Observed => v.observed(&rec)?,
                };
                Ok(times
                    .iter()
                    .enumerate()
                    .filter(|(i, t)| {
                        t.is_some_and(|t| range.contains(t))
                            && (inst.is_empty() || !c.is_dead(inst[*i]))
                    })
                    .count())
            })();
            match counted {
                Ok(k) => n += k,
                Err(e) => tracing::error!(series = s, error = %e, "history: unreadable chunk"),
            }
        }
        n
    }

    /// Aggregates the points of `s` in `range` per period of `period` µs
    /// starting at `origin` (periods before `origin` are not produced); a
    /// `period` of 0 means one bucket for the whole range starting at
    /// `origin`. Only periods holding at least one point are returned.
    pub fn aggregate(&self, s: SeriesId, range: &Range, origin: i64, period: i64) -> Vec<Bucket> {
        self.aggregate_with(s, range, origin, period, true)
    }

    /// [`Tsdb::aggregate`]; without `need_distinct` every `distinct` is
    /// `None`, and whole chunks that fall in one period are answered from
    /// their precomputed summaries instead of being decoded.
    pub fn aggregate_with(
        &self,
        s: SeriesId,
        range: &Range,
        origin: i64,
        period: i64,
        need_distinct: bool,
    ) -> Vec<Bucket> {
        let mut agg = Agg::new(origin, period, need_distinct);
        // Head points go straight into the accumulators under the (shared)
        // shard lock; chunks and rollups are taken in the same critical
        // section so that a concurrent drop_before is seen whole or not at
        // all.
        let (chunks, rollups) = {
            let sh = self.shard(s).read();
            let Some(series) = sh.get(&s) else {
                return Vec::new();
            };
            let head: &[Point] = match range.field {
                TimeField::Recorded => &series.head[series.head_span(range)],
                TimeField::Observed => &series.head,
            };
            for p in head {
                let Some(t) = range.time_of(p).filter(|t| range.contains(*t)) else {
                    continue;
                };
                match &p.value {
                    Value::Num(x) => agg.add_num(t, *x),
                    Value::Doc(d) => agg.add_doc(t, d),
                    Value::Deleted => {}
                }
            }
            let chunks: Vec<Sealed> = series
                .chunks
                .iter()
                .filter(|c| c.c.overlaps(range))
                .cloned()
                .collect();
            let rollups: Vec<((i64, i64), Summary)> = series
                .rollups
                .iter()
                .filter(|((g, b), _)| rollup_applies(range, origin, period, *g, *b))
                .map(|(k, v)| (*k, *v))
                .collect();
            (chunks, rollups)
        };
        let mut cols = Columns::default();
        for c in &chunks {
            if !need_distinct
                && c.dead.is_empty()
                && range.field == TimeField::Recorded
                && c.c.inside(range)
                && c.c.meta.min_rec >= agg.origin()
                && agg.start_of(c.c.meta.min_rec) == agg.start_of(c.c.meta.max_rec)
            {
                agg.add_summary(c.c.meta.min_rec, &c.c.meta.summary, false);
                continue;
            }
            if let Err(e) = aggregate_chunk(&mut agg, c, range, &mut cols) {
                tracing::error!(series = s, error = %e, "history: unreadable chunk");
            }
        }
        for ((_, b), sm) in &rollups {
            agg.add_summary(*b, sm, true);
        }
        agg.finish()
    }

    /// Drops the raw points of `s` recorded before `t`. With `rollup` (a
    /// period in µs), keeps per-period aggregates of what was dropped, which
    /// [`Tsdb::aggregate`] uses for periods that are multiples of it.
    /// Returns how many points were dropped.
    pub async fn drop_before(&self, s: SeriesId, t: i64, rollup: Option<i64>) -> Result<u64> {
        self.do_drop_before(s, t, rollup, true)
    }

    fn do_drop_before(&self, s: SeriesId, t: i64, rollup: Option<i64>, log: bool) -> Result<u64> {
        let rollup = rollup.filter(|g| *g > 0);
        let _g = self.gate.read();
        let mut sh = self.shard(s).write();
        let Some(series) = sh.get_mut(&s) else {
            return Ok(0);
        };
        // Read everything first: nothing changes if a chunk cannot be read.
        enum Fate {
            Keep,
            /// Wholly before `t`, summarised by its index entry.
            Whole,
            /// Decoded (live points).
            Points(Vec<Point>),
        }
        let mut fates = Vec::with_capacity(series.chunks.len());
        for c in &series.chunks {
            let m = &c.c.meta;
            let fate = if m.min_rec >= t {
                Fate::Keep
            } else if m.max_rec < t
                && c.dead.is_empty()
                && rollup.is_none_or(|g| floor_to(m.min_rec, g) == floor_to(m.max_rec, g))
            {
                Fate::Whole
            } else {
                Fate::Points(c.live_points()?)
            };
            fates.push(fate);
        }
        if log {
            let mut b = Vec::new();
            wal::frame_rec(&mut b, &Rec::DropBefore { s, t, rollup });
            self.wal.log(&b);
        }
        let mut dropped = 0u64;
        let mut keep_chunks = Vec::with_capacity(series.chunks.len());
        let mut back_to_head = Vec::new();
        for (c, fate) in std::mem::take(&mut series.chunks).into_iter().zip(fates) {
            match fate {
                Fate::Keep => keep_chunks.push(c),
                Fate::Whole => {
                    dropped += u64::from(c.c.meta.n);
                    if let Some(g) = rollup {
                        let m = &c.c.meta;
                        if m.summary.count > 0 {
                            series
                                .rollups
                                .entry((g, floor_to(m.min_rec, g)))
                                .or_default()
                                .merge(&m.summary);
                        }
                    }
                }
                Fate::Points(pts) => {
                    for p in pts {
                        if p.recorded < t {
                            dropped += 1;
                            roll(&mut series.rollups, rollup, &p);
                        } else {
                            back_to_head.push(p);
                        }
                    }
                }
            }
        }
        series.chunks = keep_chunks;
        let cut = series.head.partition_point(|p| p.recorded < t);
        for p in series.head.drain(..cut) {
            dropped += 1;
            roll(&mut series.rollups, rollup, &p);
        }
        for p in back_to_head {
            series.insert_head(p);
        }
        Ok(dropped)
    }

    /// Seals what is in memory into compressed partitions and truncates the
    /// log (also done in the background, see [`Tsdb::spawn_maintenance`]).
    ///
    /// The file work happens on the calling thread; from a runtime with
    /// blocking-sensitive tasks prefer `spawn_blocking(checkpoint_blocking)`.
    pub async fn checkpoint(&self) -> Result<()> {
        self.checkpoint_blocking()
    }

    /// [`Tsdb::checkpoint`] for a blocking context.
    ///
    /// Mutations wait only for the log rotation (the gate). Then each series
    /// in turn is sealed and written into the catalog under its shard's
    /// lock, with the log position at that moment: the offset in the new log
    /// file before which the series' records are reflected by its catalog
    /// entry (a series' records are logged under its shard lock, so the
    /// split is exact). Recovery skips those records, so the catalog may
    /// reflect mutations made after the cut.
    pub fn checkpoint_blocking(&self) -> Result<()> {
        let mut ck = self.ckpt.lock();
        let dir = self.wal.dir().to_path_buf();
        if self.stats_wal_bytes() == 0 && ck.unwritten.is_empty() && dir.join(CATALOG).exists() {
            return Ok(());
        }
        let new_seq = ck.wal_seq + 1;
        let new_file = create_wal(&dir, new_seq, self.cfg.fsync)?;
        let cut_lsn = {
            let _g = self.gate.write();
            match self.wal.rotate(new_file) {
                Ok(l) => l,
                Err(e) => {
                    let _ = fs::remove_file(dir.join(wal::file_name(new_seq)));
                    return Err(e);
                }
            }
        };
        ck.wal_seq = new_seq;
        let seg_id = ck.next_seg;
        ck.next_seg += 1;
        // Readers see the segment's bytes as soon as a series holds a chunk
        // of it: each series' bytes are added before its shard is unlocked.
        let seg = Arc::new(Segment {
            id: seg_id,
            pending: RwLock::new(Some(Arc::new(SEG_MAGIC.to_vec()))),
            file: OnceLock::new(),
            size: AtomicU64::new(SEG_MAGIC.len() as u64),
        });
        let mut seg_len = SEG_MAGIC.len() as u64;
        let mut placed = 0usize;
        let sparse = self.sparse_segments();
        let mut next_chunk = ck.next_chunk;
        // The catalog is rewritten whole: size its buffer like the last one
        // instead of growing it by doubling (hundreds of MiB with millions
        // of series, each growth a copy and fresh pages).
        let mut body = Vec::with_capacity(self.catalog_bytes.load(AtOrd::Relaxed) as usize);
        let mut nseries = 0u64;
        let mut referenced: HashMap<u64, u64> = HashMap::new();
        let mut local = Vec::new();
        for shard in &self.shards {
            let mut ids: Vec<SeriesId> = shard.read().keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let mut sh = shard.write();
                let Some(series) = sh.get_mut(&id) else {
                    continue;
                };
                local.clear();
                placed +=
                    self.seal_series(series, &seg, seg_len, &mut local, &sparse, &mut next_chunk);
                if !local.is_empty() {
                    let mut p = seg.pending.write();
                    let bytes = p.get_or_insert_with(|| Arc::new(SEG_MAGIC.to_vec()));
                    Arc::make_mut(bytes).extend_from_slice(&local);
                    seg_len += local.len() as u64;
                    seg.size.store(seg_len, AtOrd::Relaxed);
                }
                let applied = self.wal.lsn().saturating_sub(cut_lsn);
                encode_series(&mut body, id, series, applied, &mut referenced);
                nseries += 1;
            }
        }
        ck.next_chunk = next_chunk;
        let seg = if placed == 0 {
            None
        } else {
            // Entries written early saw the segment's size so far.
            referenced.insert(seg.id, seg_len);
            Some(seg)
        };
        let header = self.encode_catalog(&ck, new_seq, &referenced, nseries);
        if let Some(seg) = &seg {
            ck.unwritten.push(seg.clone());
        }
        // Write what is not on disk yet (this checkpoint's segment, and any
        // left by a failed one), then the catalog that names it.
        let mut still = Vec::new();
        let mut err = None;
        for sg in std::mem::take(&mut ck.unwritten) {
            if err.is_some() {
                still.push(sg);
                continue;
            }
            match write_segment(&dir, &sg, self.cfg.fsync) {
                Ok(f) => {
                    let _ = sg.file.set(f);
                    *sg.pending.write() = None;
                    ck.on_disk.insert(sg.id);
                }
                Err(e) => {
                    err = Some(e);
                    still.push(sg);
                }
            }
        }
        ck.unwritten = still;
        if let Some(e) = err {
            return Err(e);
        }
        let catalog_len = write_catalog(&dir, &header, &body, self.cfg.fsync)?;
        drop(body);
        self.catalog_bytes.store(catalog_len, AtOrd::Relaxed);
        // The catalog covers everything logged before the cut.
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if wal::parse_name(&name).is_some_and(|s| s < new_seq) {
                fs::remove_file(e.path())?;
            }
        }
        let gone: Vec<u64> = ck
            .on_disk
            .iter()
            .copied()
            .filter(|id| !referenced.contains_key(id))
            .collect();
        for id in gone {
            match fs::remove_file(dir.join(seg_name(id))) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            ck.on_disk.remove(&id);
        }
        let seg_bytes: u64 = referenced.values().sum();
        self.sealed_bytes
            .store(seg_bytes + catalog_len, AtOrd::Relaxed);
        self.wal_base.store(cut_lsn, AtOrd::Relaxed);
        ck.last = Instant::now();
        Ok(())
    }

    /// Segments on disk whose live chunks fill less than [`SPARSE_SHARE`].
    fn sparse_segments(&self) -> HashSet<u64> {
        let mut live: HashMap<u64, (u64, u64)> = HashMap::new();
        for shard in &self.shards {
            for series in shard.read().values() {
                for c in &series.chunks {
                    let size = c.c.seg.size.load(AtOrd::Relaxed);
                    let e = live.entry(c.c.seg.id).or_insert((0, size));
                    e.0 += u64::from(c.c.len);
                }
            }
        }
        live.into_iter()
            .filter(|(_, (l, size))| (*l as f64) < (*size as f64) * SPARSE_SHARE)
            .map(|(id, _)| id)
            .collect()
    }

    /// Seals the head of `series` into chunks of `seg` (and moves its chunks
    /// out of sparse segments); their bytes go to `buf`, which will start at
    /// offset `base` of the segment. Returns how many chunks went to `seg`.
    fn seal_series(
        &self,
        series: &mut Series,
        seg: &Arc<Segment>,
        base: u64,
        buf: &mut Vec<u8>,
        sparse: &HashSet<u64>,
        next_chunk: &mut u64,
    ) -> usize {
        let mut placed = 0;
        // Move chunks out of sparse segments (bytes copied, not re-encoded).
        for c in &mut series.chunks {
            if !sparse.contains(&c.c.seg.id) {
                continue;
            }
            match c.c.bytes() {
                Ok(b) => {
                    let off = base + buf.len() as u64;
                    buf.extend_from_slice(&b);
                    let moved = Arc::new(Chunk {
                        id: c.c.id,
                        meta: c.c.meta.clone(),
                        seg: seg.clone(),
                        off,
                        len: c.c.len,
                    });
                    placed += 1;
                    c.c = moved;
                }
                Err(e) => tracing::error!(error = %e, "history: cannot move chunk"),
            }
        }
        if series.head.is_empty() {
            return placed;
        }
        let head = std::mem::take(&mut series.head);
        let width = self.cfg.partition;
        let mut rest = &head[..];
        while let Some(first) = rest.first() {
            let part = first.recorded.div_euclid(width);
            let n = rest.partition_point(|p| p.recorded.div_euclid(width) == part);
            let (group, tail) = rest.split_at(n);
            rest = tail;
            let mut pts: Vec<Point> = group.to_vec();
            // Tiered merging: small chunks of the partition accumulate and are
            // merged (with the new points) once there are MERGE_FANIN of
            // them, so each point is re-encoded a few times in all rather
            // than at every checkpoint (which, with many series, made each
            // checkpoint slower than the last).
            let small: Vec<usize> = series
                .chunks
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.c.meta.n < MERGE_BELOW
                        && c.c.meta.min_rec.div_euclid(width) == part
                        && c.c.meta.max_rec.div_euclid(width) == part
                })
                .map(|(i, _)| i)
                .collect();
            if small.len() + 1 >= MERGE_FANIN {
                for i in small.into_iter().rev() {
                    match series.chunks[i].live_points() {
                        Ok(old) => {
                            series.chunks.remove(i);
                            pts = merge_sorted(old, pts);
                        }
                        Err(e) => tracing::error!(error = %e, "history: cannot merge chunk"),
                    }
                }
            }
            for piece in pts.chunks(MAX_CHUNK) {
                let (bytes, meta) = chunk::encode(piece);
                let off = base + buf.len() as u64;
                buf.extend_from_slice(&bytes);
                let c = Arc::new(Chunk {
                    id: *next_chunk,
                    meta,
                    seg: seg.clone(),
                    off,
                    len: bytes.len() as u32,
                });
                *next_chunk += 1;
                placed += 1;
                grow_exact(&mut series.chunks);
                series.chunks.push(Sealed {
                    c,
                    dead: Vec::new(),
                });
            }
        }
        placed
    }

    /// The catalog: a header, the segments with their sizes, the meta space
    /// and the series entries (`encode_series`).
    fn encode_catalog(
        &self,
        ck: &Ckpt,
        wal_seq: u64,
        segs: &HashMap<u64, u64>,
        nseries: u64,
    ) -> Vec<u8> {
        let mut b = CAT_MAGIC.to_vec();
        put_uvarint(&mut b, self.next_id.load(AtOrd::Relaxed));
        put_uvarint(&mut b, wal_seq);
        put_uvarint(&mut b, ck.next_seg);
        put_uvarint(&mut b, ck.next_chunk);
        let mut ids: Vec<_> = segs.iter().collect();
        ids.sort_unstable();
        put_uvarint(&mut b, ids.len() as u64);
        for (id, size) in ids {
            put_uvarint(&mut b, *id);
            put_uvarint(&mut b, *size);
        }
        // Meta records are idempotent on replay (last write wins).
        let meta = self.meta.read();
        put_uvarint(&mut b, meta.len() as u64);
        for (k, v) in meta.iter() {
            put_bytes(&mut b, k);
            put_bytes(&mut b, v);
        }
        drop(meta);
        put_uvarint(&mut b, nseries);
        b
    }

    /// Starts the background checkpoint task with the default
    /// [`Maintenance`] (log ≥ 64 MiB and ≥ half the catalog, or five
    /// minutes old). It ends when the database is dropped.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.spawn_maintenance_with(Maintenance::default())
    }

    /// [`Tsdb::spawn_maintenance`] with explicit triggers. Checkpoints run
    /// on the blocking pool.
    pub fn spawn_maintenance_with(self: &Arc<Self>, m: Maintenance) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(m.check_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(db) = weak.upgrade() else { return };
                let wal = db.stats_wal_bytes();
                // A held lock means a checkpoint is running: not due.
                let since = db.ckpt.try_lock().map(|c| c.last.elapsed());
                // Every checkpoint rewrites the whole catalog, so with
                // millions of series a fixed log threshold would spend most
                // of the ingest in catalog writes: wait until the log holds
                // half the catalog's bytes too (recovery then replays at
                // most that much log).
                let threshold = m.wal_bytes.max(db.catalog_bytes.load(AtOrd::Relaxed) / 2);
                let due =
                    wal > 0 && since.is_some_and(|since| wal >= threshold || since >= m.interval);
                if !due {
                    continue;
                }
                let r = tokio::task::spawn_blocking(move || db.checkpoint_blocking()).await;
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "history checkpoint failed"),
                    Err(e) => tracing::error!(error = %e, "history checkpoint panicked"),
                }
            }
        })
    }

    fn stats_wal_bytes(&self) -> u64 {
        self.wal
            .lsn()
            .saturating_sub(self.wal_base.load(AtOrd::Relaxed))
    }

    /// Sizes.
    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        for shard in &self.shards {
            for s in shard.read().values() {
                st.series += 1;
                st.points += s.head.len() as u64;
                for c in &s.chunks {
                    let live = u64::from(c.c.meta.n).saturating_sub(c.dead.len() as u64);
                    st.points += live;
                    st.sealed_points += live;
                }
            }
        }
        st.sealed_bytes = self.sealed_bytes.load(AtOrd::Relaxed);
        st.wal_bytes = self.stats_wal_bytes();
        st
    }
}

/// The series a record mutates the points of (None: not such a record).
fn rec_series(rec: &Rec) -> Option<SeriesId> {
    match rec {
        Rec::Append { s, .. }
        | Rec::Delete { s, .. }
        | Rec::Replace { s, .. }
        | Rec::DropBefore { s, .. } => Some(*s),
        Rec::Create { .. } | Rec::DropSeries { .. } | Rec::Meta { .. } => None,
    }
}

/// One series' catalog entry; `applied` is the offset in the catalog's first
/// log file before which the entry reflects the series' records. Notes the
/// segments (and their sizes) it references.
fn encode_series(
    body: &mut Vec<u8>,
    id: SeriesId,
    s: &Series,
    applied: u64,
    segs: &mut HashMap<u64, u64>,
) {
    put_uvarint(body, id);
    put_bytes(body, &s.key);
    put_uvarint(body, s.next);
    put_uvarint(body, applied);
    put_uvarint(body, s.chunks.len() as u64);
    for c in &s.chunks {
        segs.insert(c.c.seg.id, c.c.seg.size.load(AtOrd::Relaxed));
        put_uvarint(body, c.c.id);
        put_uvarint(body, c.c.seg.id);
        put_uvarint(body, c.c.off);
        put_uvarint(body, u64::from(c.c.len));
        c.c.meta.encode(body);
        put_uvarint(body, c.dead.len() as u64);
        let mut prev = 0;
        for d in &c.dead {
            put_uvarint(body, d - prev);
            prev = *d;
        }
    }
    put_uvarint(body, s.rollups.len() as u64);
    for ((g, st), sm) in &s.rollups {
        put_ivarint(body, *g);
        put_ivarint(body, *st);
        sm.encode(body);
    }
}

fn roll(rollups: &mut BTreeMap<(i64, i64), Summary>, g: Option<i64>, p: &Point) {
    if let Some(g) = g {
        if !matches!(p.value, Value::Deleted) {
            rollups
                .entry((g, floor_to(p.recorded, g)))
                .or_default()
                .add(&p.value);
        }
    }
}

fn merge_sorted(a: Vec<Point>, b: Vec<Point>) -> Vec<Point> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => (x.recorded, x.instance) <= (y.recorded, y.instance),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        let next = if take_a { a.next() } else { b.next() };
        out.extend(next);
    }
}

fn aggregate_chunk(agg: &mut Agg, c: &Sealed, range: &Range, cols: &mut Columns) -> Result<()> {
    let bytes = c.c.bytes()?;
    let v = ChunkView::parse(&bytes)?;
    let rec = v.recorded()?;
    let times: Vec<Option<i64>> = match range.field {
        TimeField::Recorded => Vec::new(),
        TimeField::Observed => v.observed(&rec)?,
    };
    let inst = if c.dead.is_empty() {
        Vec::new()
    } else {
        v.instances()?
    };
    v.values_into(cols, agg.need_distinct)?;
    let whole = range.field == TimeField::Recorded && c.c.inside(range) && inst.is_empty();
    let (mut ni, mut di) = (0usize, 0usize);
    for (i, k) in cols.kinds.iter().enumerate() {
        let t = match range.field {
            TimeField::Recorded => Some(rec[i]),
            TimeField::Observed => times[i],
        };
        let keep = whole
            || (t.is_some_and(|t| range.contains(t)) && (inst.is_empty() || !c.is_dead(inst[i])));
        match *k {
            chunk::kind::NUM => {
                let x = *cols.nums.get(ni).ok_or_else(|| corrupt("missing number"))?;
                ni += 1;
                if keep {
                    agg.add_num(t.unwrap_or_default(), x);
                }
            }
            chunk::kind::DOC => {
                di += 1;
                if keep {
                    if agg.need_distinct {
                        let d = cols
                            .docs
                            .get(di - 1)
                            .ok_or_else(|| corrupt("missing document"))?;
                        agg.add_doc(t.unwrap_or_default(), d);
                    } else {
                        agg.add_summary(
                            t.unwrap_or_default(),
                            &Summary {
                                count: 1,
                                ..Summary::default()
                            },
                            false,
                        );
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn create_wal(dir: &Path, seq: u64, fsync: bool) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(wal::file_name(seq)))?;
    sync_dir(dir, fsync)?;
    Ok(f)
}

fn write_segment(dir: &Path, seg: &Segment, fsync: bool) -> Result<File> {
    let bytes = seg
        .pending
        .read()
        .clone()
        .ok_or_else(|| corrupt("segment without bytes"))?;
    let path = dir.join(seg_name(seg.id));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    f.write_all(&bytes)?;
    if fsync {
        f.sync_all()?;
    }
    Ok(f)
}

/// Writes the catalog (`header`, `body`, then the CRC of both) under a
/// temporary name and renames it into place; returns its size. The parts
/// are written as they are, not copied into one buffer first.
fn write_catalog(dir: &Path, header: &[u8], body: &[u8], fsync: bool) -> Result<u64> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(header);
    crc.update(body);
    let crc = crc.finalize().to_le_bytes();
    let tmp = dir.join(CATALOG_TMP);
    let mut f = File::create(&tmp)?;
    f.write_all(header)?;
    f.write_all(body)?;
    f.write_all(&crc)?;
    if fsync {
        f.sync_all()?;
    }
    drop(f);
    fs::rename(&tmp, dir.join(CATALOG))?;
    sync_dir(dir, fsync)?;
    Ok((header.len() + body.len() + crc.len()) as u64)
}

fn load_catalog(dir: &Path) -> Result<Loaded> {
    let mut l = Loaded {
        next_id: 1,
        wal_seq: 0,
        next_seg: 0,
        next_chunk: 0,
        meta: BTreeMap::new(),
        series: Vec::new(),
        applied: HashMap::new(),
        segs: HashMap::new(),
        bytes: 0,
        catalog_bytes: 0,
    };
    let bytes = match fs::read(dir.join(CATALOG)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(l),
        Err(e) => return Err(e.into()),
    };
    if bytes.len() < 12 {
        return Err(corrupt("catalog: bad header"));
    }
    let v2 = match &bytes[..8] {
        m if m == CAT_MAGIC => true,
        m if m == CAT_MAGIC_V1 => false,
        _ => return Err(corrupt("catalog: bad header")),
    };
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(corrupt("catalog: checksum mismatch"));
    }
    let mut r = Reader::new(&body[8..]);
    l.next_id = r.uvarint()?;
    l.wal_seq = r.uvarint()?;
    l.next_seg = r.uvarint()?;
    l.next_chunk = r.uvarint()?;
    for _ in 0..r.len(2)? {
        let id = r.uvarint()?;
        let size = r.uvarint()?;
        let path = dir.join(seg_name(id));
        let file = OpenOptions::new()
            .read(true)
            .open(&path)
            .map_err(|e| corrupt(format!("segment {id} missing: {e}")))?;
        let len = file.metadata()?.len();
        if len < size {
            return Err(corrupt(format!("segment {id} is short ({len} < {size})")));
        }
        let mut magic = [0u8; 8];
        read_at(&file, &mut magic, 0).map_err(|_| corrupt(format!("segment {id}: no header")))?;
        if &magic != SEG_MAGIC {
            return Err(corrupt(format!("segment {id}: bad header")));
        }
        let seg = Segment {
            id,
            pending: RwLock::new(None),
            file: OnceLock::new(),
            size: AtomicU64::new(size),
        };
        let _ = seg.file.set(file);
        l.bytes += size;
        l.segs.insert(id, Arc::new(seg));
    }
    for _ in 0..r.len(2)? {
        let k = r.lbytes()?.to_vec();
        let v = r.lbytes()?.to_vec();
        l.meta.insert(k, v);
    }
    for _ in 0..r.len(3)? {
        let id = r.uvarint()?;
        let mut s = Series::new(Arc::from(r.lbytes()?));
        s.next = r.uvarint()?;
        if v2 {
            let applied = r.uvarint()?;
            if applied > 0 {
                l.applied.insert(id, applied);
            }
        }
        for _ in 0..r.len(8)? {
            let cid = r.uvarint()?;
            let sid = r.uvarint()?;
            let off = r.uvarint()?;
            let len = u32::try_from(r.uvarint()?).map_err(|_| corrupt("catalog: chunk length"))?;
            let meta = ChunkMeta::decode(&mut r)?;
            let seg = l
                .segs
                .get(&sid)
                .ok_or_else(|| corrupt(format!("catalog: unknown segment {sid}")))?
                .clone();
            if off
                .checked_add(u64::from(len))
                .is_none_or(|e| e > seg.size.load(AtOrd::Relaxed))
            {
                return Err(corrupt(format!(
                    "catalog: chunk {cid} outside segment {sid}"
                )));
            }
            let mut dead = Vec::new();
            let mut prev = 0u64;
            for _ in 0..r.len(1)? {
                prev = prev.wrapping_add(r.uvarint()?);
                dead.push(prev);
            }
            grow_exact(&mut s.chunks);
            s.chunks.push(Sealed {
                c: Arc::new(Chunk {
                    id: cid,
                    meta,
                    seg,
                    off,
                    len,
                }),
                dead,
            });
        }
        for _ in 0..r.len(3)? {
            let g = r.ivarint()?;
            let b = r.ivarint()?;
            s.rollups.insert((g, b), Summary::decode(&mut r)?);
        }
        l.series.push((id, s));
    }
    if !r.is_empty() {
        return Err(corrupt("catalog: trailing bytes"));
    }
    l.bytes += bytes.len() as u64;
    l.catalog_bytes = bytes.len() as u64;
    Ok(l)
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("dir", &self.cfg.dir)
            .finish_non_exhaustive()
    }
}

/// Series keys to ids, hashed (one shard of the lookup).
type KeyIndex = HashMap<Key, SeriesId, BuildHasherDefault<Fnv>>;

/// A series key, stored once and shared by the ordered index, the hashed
/// index and the series itself (with 13 million series, three owned copies
/// of ~100-byte keys were a third of the resident memory).
type Key = Arc<[u8]>;

/// Grows `v` by one slot without over-allocating while it is small: most
/// series hold one or two head points and chunks between checkpoints, and
/// `Vec`'s first allocation of four would be most of their memory.
fn grow_exact<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len().clamp(1, 64));
    }
}

/// FNV-1a, 64 bits: a fast hash for the series-key lookup (keys are not
/// attacker-chosen in a way that matters: a collision only costs a compare).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

fn lookup_shard(key: &[u8]) -> usize {
    use std::hash::Hasher;
    let mut h = Fnv::default();
    h.write(key);
    (h.finish() >> 59) as usize % SHARDS
}
