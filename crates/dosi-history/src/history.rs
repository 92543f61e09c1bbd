//! The history: catalog of entities, provision, reads, aggregation, retention.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dosi_broker::CommitHook;
use dosi_ngsi::model::Iri;
use dosi_ngsi::{AttrKind, Attribute, EntityId, NgsiError, Result, TenantId, Timestamp};
use dosi_tsdb::{Order, Point, Range, SeriesId, TimeField, Tsdb, Value};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Templates};
use crate::keys;
use crate::model::{
    AggSpec, AggregatedAttr, AggregatedEntity, DatasetSel, Instance, PageRange, ReadSpec,
    ScopeInstance, TemporalEntity, TimeProp,
};
use crate::retention::RetentionPolicy;

/// Settings of the history.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// Directory of the time-series data (`<data-dir>/history`).
    pub dir: PathBuf,
    /// fsync before a write is acknowledged.
    pub fsync: bool,
    /// Most instances in one answer (the temporal pagination of 6.3.10).
    pub page_instances: usize,
    /// Keep an entity's history when it is deleted through the core API
    /// (its attributes get deletion markers); otherwise it is removed.
    pub keep_on_entity_delete: bool,
    /// Retention policies used until others are set at run time.
    pub retention: Vec<RetentionPolicy>,
    /// How often retention runs.
    pub retention_interval: Duration,
}

impl HistoryConfig {
    /// Defaults with the data in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: true,
            page_instances: 10_000,
            keep_on_entity_delete: true,
            retention: Vec::new(),
            retention_interval: Duration::from_secs(3600),
        }
    }
}

/// What the catalog keeps of an entity.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    types: Vec<String>,
    created: i64,
    #[serde(default)]
    modified: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted: Option<i64>,
}

const POLICIES_KEY: &[u8] = b"r\0policies";

/// The attribute history.
pub struct History {
    db: Arc<Tsdb>,
    tpls: Templates,
    cfg: HistoryConfig,
    catalog: RwLock<HashMap<TenantId, BTreeMap<EntityId, Entry>>>,
}

/// An attribute instance to record.
pub struct NewInstance {
    /// Expanded attribute name.
    pub name: Iri,
    /// The instance.
    pub attr: Attribute,
    /// A deletion marker (the attribute was deleted at its `observedAt`).
    pub deleted: bool,
}

impl History {
    /// Opens the history in `cfg.dir`.
    pub fn open(cfg: HistoryConfig) -> Result<Arc<Self>> {
        let mut tcfg = dosi_tsdb::Config::new(&cfg.dir);
        tcfg.fsync = cfg.fsync;
        let db = Tsdb::open(tcfg).map_err(NgsiError::internal)?;
        let tpls = Templates::load(&db);
        let mut catalog: HashMap<TenantId, BTreeMap<EntityId, Entry>> = HashMap::new();
        for (k, v) in db.meta_by_prefix(b"e\0") {
            // key: "e\0" tenant "\0" id "\0"
            let Some(rest) = std::str::from_utf8(&k[2..]).ok() else {
                continue;
            };
            let mut parts = rest.split('\0');
            let (Some(tenant), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            let tenant = if tenant.is_empty() {
                TenantId::default_tenant()
            } else {
                match TenantId::parse(tenant) {
                    Ok(t) => t,
                    Err(_) => continue,
                }
            };
            let Ok(entry) = serde_json::from_slice::<Entry>(&v) else {
                continue;
            };
            catalog
                .entry(tenant)
                .or_default()
                .insert(EntityId::new_unchecked(id), entry);
        }
        Ok(Arc::new(Self {
            db: Arc::new(db),
            tpls,
            cfg,
            catalog: RwLock::new(catalog),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &HistoryConfig {
        &self.cfg
    }

    /// The engine (for statistics and export).
    pub fn engine(&self) -> &Arc<Tsdb> {
        &self.db
    }

    /// The commit hook that records every committed change.
    pub fn hook(self: &Arc<Self>) -> Arc<dyn CommitHook> {
        Arc::new(crate::capture::Capture(self.clone()))
    }

    /// Starts the background work: retention (and the engine's maintenance).
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.db.spawn_maintenance();
        let me = Arc::downgrade(self);
        let every = self.cfg.retention_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(h) = me.upgrade() else { return };
                if let Err(e) = h.apply_retention(Timestamp::now()).await {
                    tracing::warn!(error = %e, "history retention failed");
                }
            }
        })
    }

    /// Waits until everything recorded so far is durable.
    pub async fn sync(&self) -> Result<()> {
        self.db.sync().await.map_err(NgsiError::internal)
    }

    // ----- recording -----

    /// Records one instance into the series named `key`.
    pub(crate) fn record_key(&self, key: &[u8], a: &Attribute, recorded: Timestamp) -> u64 {
        let s = self.db.ensure_series(key);
        let p = codec::encode(&self.tpls, &self.db, a, recorded.0);
        self.db.append(s, p)
    }

    pub(crate) fn record_deletion(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &str,
        dataset: Option<&str>,
        kind: AttrKind,
        at: Timestamp,
    ) {
        let s = self
            .db
            .ensure_series(&keys::series(tenant, id, name, dataset));
        self.db.append(s, codec::deletion(kind, at.0));
    }

    pub(crate) fn record_scope(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        scope: &[String],
        at: Timestamp,
        observed: Option<Timestamp>,
    ) {
        let s = self
            .db
            .ensure_series(&keys::series(tenant, id, keys::SCOPE, None));
        let p = if scope.is_empty() {
            codec::deletion(AttrKind::Property, at.0)
        } else {
            dosi_tsdb::NewPoint {
                recorded: at.0,
                observed: observed.map(|t| t.0),
                tpl: 0,
                value: Value::Doc(Arc::from(serde_json::to_vec(scope).unwrap_or_default())),
            }
        };
        self.db.append(s, p);
    }

    /// Notes an entity in the catalog (types replaced when `replace_types`,
    /// merged otherwise); persisted when something but `modified` changes.
    pub(crate) fn touch(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        types: &[Iri],
        replace_types: bool,
        created: Timestamp,
        at: Timestamp,
    ) {
        // Fast path (nearly every write): a known, live entity whose types
        // did not change needs nothing (its modifiedAt is derived on read).
        {
            let g = self.catalog.read();
            if let Some(e) = g.get(tenant).and_then(|m| m.get(id)) {
                let covered = if replace_types {
                    e.types.len() == types.len()
                        && e.types.iter().zip(types).all(|(a, b)| a.as_str() == &**b)
                } else {
                    types
                        .iter()
                        .all(|t| e.types.iter().any(|x| x.as_str() == &**t))
                };
                if e.deleted.is_none() && covered {
                    return;
                }
            }
        }
        let mut g = self.catalog.write();
        let entities = g.entry(tenant.clone()).or_default();
        let mut changed = false;
        let e = entities.entry(id.clone()).or_insert_with(|| {
            changed = true;
            Entry {
                types: Vec::new(),
                created: created.0,
                modified: at.0,
                deleted: None,
            }
        });
        if e.deleted.take().is_some() {
            changed = true;
            e.created = created.0;
        }
        e.modified = e.modified.max(at.0);
        let same = e.types.len() == types.len()
            && e.types.iter().zip(types).all(|(a, b)| a.as_str() == &**b);
        if replace_types {
            if !same {
                e.types = types.iter().map(|t| t.to_string()).collect();
                changed = true;
            }
        } else if !same {
            for t in types {
                if !e.types.iter().any(|x| x.as_str() == &**t) {
                    e.types.push(t.to_string());
                    changed = true;
                }
            }
        }
        if changed {
            let v = serde_json::to_vec(&*e).unwrap_or_default();
            self.db.put_meta(&keys::entity_meta(tenant, id), Some(&v));
        }
    }

    pub(crate) fn mark_deleted(&self, tenant: &TenantId, id: &EntityId, at: Timestamp) {
        let mut g = self.catalog.write();
        if let Some(e) = g.get_mut(tenant).and_then(|m| m.get_mut(id)) {
            e.deleted = Some(at.0);
            e.modified = at.0;
            let v = serde_json::to_vec(&*e).unwrap_or_default();
            self.db.put_meta(&keys::entity_meta(tenant, id), Some(&v));
        }
    }

    pub(crate) fn forget(&self, tenant: &TenantId, id: &EntityId) -> bool {
        let mut any = false;
        for (_, s) in self.db.series_by_prefix(&keys::entity_prefix(tenant, id)) {
            any |= self.db.delete_series(s);
        }
        let known = self
            .catalog
            .write()
            .get_mut(tenant)
            .and_then(|m| m.remove(id))
            .is_some();
        if known {
            self.db.put_meta(&keys::entity_meta(tenant, id), None);
        }
        any || known
    }

    // ----- temporal provision -----

    /// Creates or extends the temporal representation of an entity
    /// (`POST /temporal/entities`). Returns true if the entity was new.
    pub async fn upsert(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        types: &[Iri],
        scope: Option<&[String]>,
        instances: Vec<NewInstance>,
    ) -> Result<bool> {
        self.upsert_at(tenant, id, types, scope, instances, Timestamp::now())
            .await
    }

    /// [`History::upsert`] as if it happened at `recorded`: the instances'
    /// `createdAt`/`modifiedAt` and the time retention policies look at.
    /// For importing history recorded elsewhere, and for tests of retention.
    pub async fn upsert_at(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        types: &[Iri],
        scope: Option<&[String]>,
        instances: Vec<NewInstance>,
        recorded: Timestamp,
    ) -> Result<bool> {
        let now = recorded;
        let created = !self.exists(tenant, id);
        self.touch(tenant, id, types, false, now, now);
        if let Some(scope) = scope {
            self.record_scope(tenant, id, scope, now, None);
        }
        let mut max_seen = HashMap::new();
        for i in &instances {
            self.provide(tenant, id, i, now, &mut max_seen);
        }
        self.sync().await?;
        Ok(created)
    }

    /// Adds instances to an existing temporal entity
    /// (`POST /temporal/entities/{id}/attrs`).
    pub async fn add_instances(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        instances: Vec<NewInstance>,
    ) -> Result<()> {
        if !self.exists(tenant, id) {
            return Err(not_found(id));
        }
        let now = Timestamp::now();
        self.touch(tenant, id, &[], false, now, now);
        let mut max_seen = HashMap::new();
        for i in &instances {
            self.provide(tenant, id, i, now, &mut max_seen);
        }
        self.sync().await
    }

    /// Records a provided instance: one with the same `observedAt` as a
    /// recorded one replaces it (an upsert of the same history is idempotent).
    ///
    /// `max_seen` caches, per series, the latest `observedAt` recorded (for
    /// one request): an instance later than it cannot replace anything, so
    /// back-fills in time order never search for duplicates.
    fn provide(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        i: &NewInstance,
        now: Timestamp,
        max_seen: &mut HashMap<SeriesId, i64>,
    ) {
        let s = self
            .db
            .ensure_series(&keys::series(tenant, id, &i.name, i.attr.dataset()));
        let observed = i.attr.observed_at.as_deref().and_then(codec::observed);
        let p = if i.deleted {
            let at = observed.map_or(now.0, |o| o.0);
            let mut p = codec::deletion(i.attr.kind, at);
            p.observed = observed.map(|o| o.0);
            p
        } else {
            codec::encode(&self.tpls, &self.db, &i.attr, now.0)
        };
        if let Some((t, _)) = observed {
            let max = *max_seen.entry(s).or_insert_with(|| {
                let all = Range {
                    field: TimeField::Observed,
                    from: None,
                    to: None,
                };
                self.db
                    .scan(s, &all, Order::Desc, 1)
                    .first()
                    .and_then(|p| p.observed)
                    .unwrap_or(i64::MIN)
            });
            if t <= max {
                let same = Range {
                    field: TimeField::Observed,
                    from: Some(t),
                    to: Some(t + 1),
                };
                if let Some(old) = self.db.scan(s, &same, Order::Asc, 1).first() {
                    self.db.replace_instance(s, old.instance, p);
                    return;
                }
            } else {
                max_seen.insert(s, t);
            }
        }
        metrics::counter!("dosi_history_instances_recorded_total").increment(1);
        self.db.append(s, p);
    }

    /// Records scope instances given in a temporal body (each with the time
    /// it became valid).
    pub fn provide_scope(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        list: &[(Vec<String>, Timestamp)],
    ) {
        for (scope, at) in list {
            self.record_scope(tenant, id, scope, *at, Some(*at));
        }
    }

    /// True if the entity has at least one instance in the spec's window.
    pub fn has_instances(&self, tenant: &TenantId, id: &EntityId, spec: &ReadSpec) -> bool {
        let range = Self::range(spec.timeprop, spec.from, spec.to);
        self.series_of(tenant, id, spec.attrs.as_deref(), spec.datasets.as_deref())
            .into_iter()
            .any(|(_, _, s)| {
                if spec.timeprop == TimeProp::DeletedAt {
                    self.db
                        .scan(s, &range, Order::Asc, usize::MAX)
                        .iter()
                        .any(|p| p.value == Value::Deleted)
                } else {
                    // `count` answers whole chunks from their index.
                    self.db.count(s, &range) > 0
                }
            })
    }

    /// Deletes the whole temporal representation of an entity.
    pub async fn delete_entity(&self, tenant: &TenantId, id: &EntityId) -> Result<()> {
        if !self.exists(tenant, id) {
            return Err(not_found(id));
        }
        self.forget(tenant, id);
        self.sync().await
    }

    /// Deletes the instances of an attribute (one datasetId, or all).
    pub async fn delete_attribute(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &str,
        sel: &DatasetSel,
    ) -> Result<()> {
        if !self.exists(tenant, id) {
            return Err(not_found(id));
        }
        let mut any = false;
        for (key, s) in self
            .db
            .series_by_prefix(&keys::attr_prefix(tenant, id, name))
        {
            let ds = keys::split(&key).and_then(|k| k.3);
            let hit = match sel {
                DatasetSel::All => true,
                DatasetSel::Default => ds.is_none(),
                DatasetSel::Id(d) => ds == Some(d.as_str()),
            };
            if hit {
                any |= self.db.delete_series(s);
            }
        }
        if !any {
            return Err(NgsiError::not_found(format!(
                "entity '{id}' has no attribute '{name}' in its temporal representation"
            )));
        }
        self.sync().await
    }

    /// Parses an instanceId into (series, instance).
    fn parse_instance(instance_id: &str) -> Option<(SeriesId, u64)> {
        let rest = instance_id.strip_prefix(INSTANCE_PREFIX)?;
        let (s, i) = rest.split_once('-')?;
        Some((s.parse().ok()?, i.parse().ok()?))
    }

    /// Finds an instance of attribute `name` of an entity.
    fn find_instance(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &str,
        instance_id: &str,
    ) -> Result<(SeriesId, Point, Option<String>)> {
        if !self.exists(tenant, id) {
            return Err(not_found(id));
        }
        let missing = || {
            NgsiError::not_found(format!(
                "attribute '{name}' of entity '{id}' has no instance '{instance_id}'"
            ))
        };
        let (s, n) = Self::parse_instance(instance_id).ok_or_else(missing)?;
        let series = self
            .db
            .series_by_prefix(&keys::attr_prefix(tenant, id, name));
        let (key, _) = series.iter().find(|(_, x)| *x == s).ok_or_else(missing)?;
        let ds = keys::split(key).and_then(|k| k.3).map(String::from);
        let p = self.db.get_instance(s, n).ok_or_else(missing)?;
        Ok((s, p, ds))
    }

    /// One instance of an attribute, as stored.
    pub fn instance(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &str,
        instance_id: &str,
    ) -> Result<Attribute> {
        let (_, p, ds) = self.find_instance(tenant, id, name, instance_id)?;
        let mut a = codec::decode(&self.tpls, &p)
            .ok_or_else(|| NgsiError::internal("undecodable instance"))?;
        a.dataset_id = ds.map(Iri::from);
        Ok(a)
    }

    /// Replaces one instance (`PATCH …/attrs/{attr}/{instanceId}`): the caller
    /// merges the fragment into [`History::instance`]'s answer.
    pub async fn replace_instance(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &str,
        instance_id: &str,
        new: &Attribute,
    ) -> Result<()> {
        let (s, p, _) = self.find_instance(tenant, id, name, instance_id)?;
        let np = codec::encode(&self.tpls, &self.db, new, p.recorded);
        self.db.replace_instance(s, p.instance, np);
        self.sync().await
    }

    /// Deletes one instance.
    pub async fn delete_instance(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &str,
        instance_id: &str,
    ) -> Result<()> {
        let (s, p, _) = self.find_instance(tenant, id, name, instance_id)?;
        self.db.delete_instance(s, p.instance);
        self.sync().await
    }

    // ----- reads -----

    /// True if the tenant has a temporal representation of `id`.
    pub fn exists(&self, tenant: &TenantId, id: &EntityId) -> bool {
        self.catalog
            .read()
            .get(tenant)
            .is_some_and(|m| m.contains_key(id))
    }

    /// True if the tenant has any history.
    pub fn tenant_exists(&self, tenant: &TenantId) -> bool {
        self.catalog
            .read()
            .get(tenant)
            .is_some_and(|m| !m.is_empty())
    }

    /// The ids (in order) of the tenant's entities whose types satisfy `keep`.
    pub fn entities(
        &self,
        tenant: &TenantId,
        keep: &dyn Fn(&EntityId, &[String]) -> bool,
    ) -> Vec<EntityId> {
        let g = self.catalog.read();
        let Some(m) = g.get(tenant) else {
            return Vec::new();
        };
        m.iter()
            .filter(|(id, e)| keep(id, &e.types))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The series of an entity chosen by `attrs`/`datasets`, with their names.
    fn series_of(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        attrs: Option<&[Iri]>,
        datasets: Option<&[Option<String>]>,
    ) -> Vec<(Iri, Option<String>, SeriesId)> {
        let mut out = Vec::new();
        for (key, s) in self.db.series_by_prefix(&keys::entity_prefix(tenant, id)) {
            let Some((_, _, name, ds)) = keys::split(&key) else {
                continue;
            };
            if name.starts_with('@') {
                continue;
            }
            if attrs.is_some_and(|a| !a.iter().any(|x| &**x == name)) {
                continue;
            }
            let ds = ds.map(String::from);
            if datasets.is_some_and(|d| !d.contains(&ds)) {
                continue;
            }
            out.push((Iri::from(name), ds, s));
        }
        out
    }

    fn range(prop: TimeProp, from: Option<Timestamp>, to: Option<Timestamp>) -> Range {
        Range {
            field: match prop {
                TimeProp::ObservedAt => TimeField::Observed,
                _ => TimeField::Recorded,
            },
            from: from.map(|t| t.0),
            to: to.map(|t| t.0),
        }
    }

    /// The temporal representation of an entity: per attribute, the
    /// instances in the spec's range (the last `n` with `lastN`), at most
    /// `cap` per attribute. `None` if the entity has no history.
    pub fn read(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        spec: &ReadSpec,
        cap: usize,
    ) -> Option<TemporalEntity> {
        let entry = self.catalog.read().get(tenant)?.get(id)?.clone();
        let range = Self::range(spec.timeprop, spec.from, spec.to);
        let mut attrs: BTreeMap<Iri, Vec<Instance>> = BTreeMap::new();
        for (name, ds, s) in
            self.series_of(tenant, id, spec.attrs.as_deref(), spec.datasets.as_deref())
        {
            let (order, limit) = match spec.last_n {
                Some(n) => (Order::Desc, n.min(cap)),
                None => (Order::Asc, cap),
            };
            let points = if spec.timeprop == TimeProp::DeletedAt {
                let mut v: Vec<Point> = self
                    .db
                    .scan(s, &range, order, usize::MAX)
                    .into_iter()
                    .filter(|p| p.value == Value::Deleted)
                    .collect();
                v.truncate(limit);
                v
            } else {
                self.db.scan(s, &range, order, limit)
            };
            if points.is_empty() {
                continue;
            }
            let list = attrs.entry(name).or_default();
            for p in points {
                let Some(mut a) = codec::decode(&self.tpls, &p) else {
                    continue;
                };
                a.dataset_id = ds.as_deref().map(Iri::from);
                let deleted_at = (p.value == Value::Deleted).then_some(Timestamp(p.recorded));
                list.push(Instance {
                    id: format!("{INSTANCE_PREFIX}{s}-{}", p.instance),
                    time: range.time_of(&p).map(Timestamp),
                    attr: a,
                    deleted_at,
                });
            }
        }
        for list in attrs.values_mut() {
            list.sort_by_key(|i| i.time);
        }
        let scope = self.scope_history(tenant, id, spec);
        Some(TemporalEntity {
            id: id.clone(),
            types: entry.types.iter().map(|t| Iri::from(t.as_str())).collect(),
            scope,
            created_at: Timestamp(entry.created),
            modified_at: Timestamp(
                attrs
                    .values()
                    .flatten()
                    .map(|i| i.attr.modified_at.0)
                    .fold(entry.modified.max(entry.created), i64::max),
            ),
            deleted_at: entry.deleted.map(Timestamp),
            attrs,
        })
    }

    fn scope_history(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        spec: &ReadSpec,
    ) -> Vec<ScopeInstance> {
        let Some(s) = self
            .db
            .series_id(&keys::series(tenant, id, keys::SCOPE, None))
        else {
            return Vec::new();
        };
        let range = match spec.timeprop {
            TimeProp::ObservedAt => Range::ALL,
            p => Self::range(p, spec.from, spec.to),
        };
        self.db
            .scan(s, &range, Order::Asc, usize::MAX)
            .into_iter()
            .filter(|p| spec.timeprop != TimeProp::DeletedAt || p.value == Value::Deleted)
            .map(|p| ScopeInstance {
                scope: match &p.value {
                    Value::Doc(d) => serde_json::from_slice(d).unwrap_or_default(),
                    _ => Vec::new(),
                },
                at: Timestamp(p.observed.unwrap_or(p.recorded)),
                deleted_at: (p.value == Value::Deleted).then_some(Timestamp(p.recorded)),
                id: format!("{INSTANCE_PREFIX}{s}-{}", p.instance),
            })
            .collect()
    }

    /// The current (latest) attribute instances of an entity in the window,
    /// for evaluating `q` on the temporal API: per attribute, every
    /// instance in the range (bounded by `cap`).
    pub fn window(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        spec: &ReadSpec,
        cap: usize,
    ) -> Option<TemporalEntity> {
        let mut s = spec.clone();
        s.attrs = None;
        s.last_n = None;
        self.read(tenant, id, &s, cap)
    }

    /// Cuts `entities` to at most `limit` instances in all (the temporal
    /// pagination of 6.3.10). Returns the range covered when something was
    /// cut, or when `lastN` is asked and some attribute had more.
    pub fn paginate(
        entities: &mut [TemporalEntity],
        spec: &ReadSpec,
        limit: usize,
    ) -> Option<PageRange> {
        let desc = spec.last_n.is_some();
        let mut times: Vec<i64> = entities
            .iter()
            .flat_map(|e| e.attrs.values().flatten())
            .filter_map(|i| i.time.map(|t| t.0))
            .collect();
        if times.is_empty() {
            return None;
        }
        times.sort_unstable();
        if times.len() <= limit || limit == 0 {
            return None;
        }
        let cut = if desc {
            times[times.len() - limit]
        } else {
            times[limit - 1]
        };
        for e in entities.iter_mut() {
            for list in e.attrs.values_mut() {
                list.retain(|i| {
                    i.time
                        .is_some_and(|t| if desc { t.0 >= cut } else { t.0 <= cut })
                });
            }
        }
        let first = if desc {
            times[times.len() - 1]
        } else {
            times[0]
        };
        let start = if desc {
            spec.to.map(|t| t.0).unwrap_or(first)
        } else {
            spec.from.map(|t| t.0).unwrap_or(first)
        };
        Some(PageRange {
            start: Timestamp(start),
            end: Timestamp(cut),
            size: spec.last_n,
        })
    }

    /// The aggregated representation of an entity.
    pub fn aggregate(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        spec: &AggSpec,
    ) -> Option<AggregatedEntity> {
        let entry = self.catalog.read().get(tenant)?.get(id)?.clone();
        let range = Self::range(spec.timeprop, spec.from, spec.to);
        let series = self.series_of(tenant, id, spec.attrs.as_deref(), spec.datasets.as_deref());
        let first = |s: SeriesId| {
            self.db
                .scan(s, &range, Order::Asc, 1)
                .first()
                .and_then(|p| range.time_of(p))
        };
        let origin = spec
            .from
            .map(|t| t.0)
            .or_else(|| series.iter().filter_map(|(_, _, s)| first(*s)).min());
        let mut attrs: BTreeMap<Iri, Vec<AggregatedAttr>> = BTreeMap::new();
        if let Some(names) = &spec.attrs {
            for n in names {
                attrs.entry(n.clone()).or_default();
            }
        }
        for (name, ds, s) in series {
            let buckets = match origin {
                Some(o) => {
                    self.db
                        .aggregate_with(s, &range, o, spec.period.unwrap_or(0), spec.distinct)
                }
                None => Vec::new(),
            };
            let period = spec.period.unwrap_or_else(|| {
                let end = spec.to.map(|t| t.0).unwrap_or_else(|| {
                    self.db
                        .scan(s, &range, Order::Desc, 1)
                        .first()
                        .and_then(|p| range.time_of(p))
                        .unwrap_or(0)
                });
                (end - origin.unwrap_or(end)).max(0)
            });
            // Numbers are only stored for Properties: decode the latest
            // instance only when there are none.
            let kind = if buckets.iter().any(|b| b.num > 0) {
                AttrKind::Property
            } else {
                self.db
                    .scan(s, &Range::ALL, Order::Desc, 1)
                    .first()
                    .and_then(|p| codec::decode(&self.tpls, p))
                    .map_or(AttrKind::Property, |a| a.kind)
            };
            attrs.entry(name).or_default().push(AggregatedAttr {
                kind,
                dataset_id: ds.map(|d| Iri::from(d.as_str())),
                buckets,
                period,
            });
        }
        Some(AggregatedEntity {
            id: id.clone(),
            types: entry.types.iter().map(|t| Iri::from(t.as_str())).collect(),
            attrs,
        })
    }

    // ----- retention -----

    /// The retention policies in force.
    pub fn retention_policies(&self) -> Vec<RetentionPolicy> {
        self.db
            .get_meta(POLICIES_KEY)
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_else(|| self.cfg.retention.clone())
    }

    /// Replaces the retention policies (kept across restarts).
    pub async fn set_retention_policies(&self, policies: Vec<RetentionPolicy>) -> Result<()> {
        for p in &policies {
            p.validate().map_err(NgsiError::bad_data)?;
        }
        let v = serde_json::to_vec(&policies).map_err(NgsiError::internal)?;
        self.db.put_meta(POLICIES_KEY, Some(&v));
        self.sync().await
    }

    /// Applies the retention policies as of `now`; returns the instances dropped.
    pub async fn apply_retention(&self, now: Timestamp) -> Result<u64> {
        let policies = self.retention_policies();
        if policies.is_empty() {
            return Ok(0);
        }
        let work: Vec<(TenantId, EntityId, Vec<String>)> = {
            let g = self.catalog.read();
            g.iter()
                .flat_map(|(t, m)| {
                    m.iter()
                        .map(|(id, e)| (t.clone(), id.clone(), e.types.clone()))
                })
                .collect()
        };
        let mut dropped = 0;
        for (tenant, id, types) in work {
            for (name, _, s) in self.series_of(&tenant, &id, None, None) {
                let Some(p) = policies.iter().find(|p| p.matches(&types, &name)) else {
                    continue;
                };
                let before = now.0 - (p.keep_raw_secs as i64).saturating_mul(1_000_000);
                let rollup = p.rollup_secs.map(|r| r as i64 * 1_000_000);
                let n = self
                    .db
                    .drop_before(s, before, rollup)
                    .await
                    .map_err(NgsiError::internal)?;
                dropped += n;
                metrics::counter!("dosi_history_instances_dropped_total").increment(n);
            }
        }
        self.sync().await?;
        Ok(dropped)
    }
}

/// The prefix of every instanceId.
pub const INSTANCE_PREFIX: &str = "urn:ngsi-ld:attribute:instance:";

fn not_found(id: &EntityId) -> NgsiError {
    NgsiError::not_found(format!("entity '{id}' has no temporal representation"))
}
