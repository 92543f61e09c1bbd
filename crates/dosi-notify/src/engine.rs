//! The notifier: the subscription registry, the commit hook that turns
//! committed changes into durable notifications, and delivery.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use dosi_broker::codec::encode;
use dosi_broker::{Broker, CommitHook};
use dosi_bus::ChangeEvent;
use dosi_ngsi::model::Iri;
use dosi_ngsi::query::EntityFilter;
use dosi_ngsi::{AttrKind, Entity, EntityId, ErrorKind, NgsiError, Result, TenantId, Timestamp};
use dosi_store::Page;
use indexmap::IndexMap;
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};

use crate::deliver::{Dispatcher, HttpTransport, Observer, Outcome, Outgoing, Transport};
use crate::matcher;
use crate::model::{
    BodyType, DeliveryStats, Join, Status, StoredSubscription, Subscription, Trigger,
};
use crate::outbox::{DeadLetter, Outbox};
use crate::ContextResolver;

/// The store meta namespace subscriptions are kept in.
pub const META_NS: &str = "subscriptions";

/// Settings of the notifier.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Directory of the outbox journal (`<data-dir>/outbox`).
    pub outbox_dir: PathBuf,
    /// fsync the outbox before acknowledging a write (as the store does).
    pub fsync: bool,
    /// Attempts per notification before it becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with jitter.
    pub retry_base_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Timeout of one attempt when the endpoint sets none.
    pub timeout_ms: u64,
    /// Attempts in flight per endpoint key.
    pub endpoint_concurrency: usize,
    /// Notifications queued per endpoint key before new ones go straight to
    /// the dead letters (reason `queue full`).
    pub endpoint_queue_limit: usize,
    /// Consecutive failures that open an endpoint's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker waits before a probe.
    pub breaker_cooldown_ms: u64,
}

impl NotifierConfig {
    /// Defaults with the outbox in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            outbox_dir: dir.into(),
            fsync: true,
            max_attempts: 10,
            retry_base_ms: 500,
            retry_max_ms: 300_000,
            timeout_ms: 10_000,
            endpoint_concurrency: 64,
            endpoint_queue_limit: 100_000,
            breaker_failures: 5,
            breaker_cooldown_ms: 5_000,
        }
    }
}

/// A subscription with what the API shows of it.
#[derive(Debug, Clone)]
pub struct SubscriptionView {
    /// The parsed subscription.
    pub sub: Arc<Subscription>,
    /// What is persisted (the JSON the client sent, and its context).
    pub stored: StoredSubscription,
    /// Delivery statistics.
    pub stats: DeliveryStats,
}

struct Entry {
    sub: Arc<Subscription>,
    stored: StoredSubscription,
    stats: Arc<Mutex<DeliveryStats>>,
}

impl Entry {
    fn new(sub: Subscription, stored: StoredSubscription) -> Self {
        Self {
            sub: Arc::new(sub),
            stored,
            stats: Arc::default(),
        }
    }
}

/// The subscriptions of all tenants, in creation order per tenant, and the
/// per-tenant index the commit hook matches with.
#[derive(Default)]
struct Registry {
    tenants: HashMap<TenantId, IndexMap<String, Entry>>,
    index: HashMap<TenantId, Arc<TenantIndex>>,
}

/// Change-driven subscriptions of one tenant, by the entity types they
/// select (those whose every selector is a plain list of types), and the rest.
#[derive(Default)]
struct TenantIndex {
    /// Subscriptions whose every selector names an entity id, by those ids.
    by_id: HashMap<EntityId, Vec<Arc<Subscription>>>,
    /// Subscriptions whose every selector is a plain list of types, by type.
    by_type: HashMap<Iri, Vec<Arc<Subscription>>>,
    /// All others (id patterns, type expressions, no `entities`).
    other: Vec<Arc<Subscription>>,
}

impl TenantIndex {
    fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.by_type.is_empty() && self.other.is_empty()
    }
    /// The subscriptions that may select `e`, each once (the three maps
    /// hold disjoint subscriptions; only an entity with several types can
    /// meet one subscription twice).
    fn candidates(&self, e: &Entity) -> Vec<Arc<Subscription>> {
        let mut out: Vec<Arc<Subscription>> = Vec::new();
        if let Some(subs) = self.by_id.get(&e.id) {
            out.extend(subs.iter().cloned());
        }
        let before = out.len();
        for t in &e.types {
            if let Some(subs) = self.by_type.get(t) {
                out.extend(subs.iter().cloned());
            }
        }
        if e.types.len() > 1 {
            let mut seen = std::collections::HashSet::new();
            let mut i = 0;
            out.retain(|s| {
                i += 1;
                i <= before || seen.insert(Arc::as_ptr(s) as usize)
            });
        }
        out.extend(self.other.iter().cloned());
        out
    }
}

impl Registry {
    fn reindex(&mut self, tenant: &TenantId) {
        let mut idx = TenantIndex::default();
        for e in self
            .tenants
            .get(tenant)
            .into_iter()
            .flat_map(|m| m.values())
        {
            let sub = &e.sub;
            if sub.time_interval.is_some() {
                continue;
            }
            let ids: Option<Vec<&EntityId>> = if sub.entities.is_empty() {
                None
            } else {
                sub.entities.iter().map(|s| s.id.as_ref()).collect()
            };
            let simple: Option<Vec<&str>> = if sub.entities.is_empty() {
                None
            } else {
                sub.entities
                    .iter()
                    .map(|s| s.types.simple_any_of())
                    .collect::<Option<Vec<Vec<&str>>>>()
                    .map(|v| v.into_iter().flatten().collect())
            };
            if let Some(ids) = ids {
                let mut seen = std::collections::HashSet::new();
                for id in ids {
                    if seen.insert(id) {
                        idx.by_id.entry(id.clone()).or_default().push(sub.clone());
                    }
                }
                continue;
            }
            match simple {
                Some(types) => {
                    let mut seen = std::collections::HashSet::new();
                    for t in types {
                        if seen.insert(t) {
                            idx.by_type
                                .entry(Iri::from(t))
                                .or_default()
                                .push(sub.clone());
                        }
                    }
                }
                None => idx.other.push(sub.clone()),
            }
        }
        self.index.insert(tenant.clone(), Arc::new(idx));
    }
}

/// Subscriptions and their notifications. Share as `Arc`.
pub struct Notifier {
    broker: Arc<Broker>,
    registry: RwLock<Registry>,
    config: NotifierConfig,
    outbox: Arc<Outbox>,
    dispatcher: Arc<Dispatcher>,
    /// When each throttled subscription last notified.
    throttle: Mutex<HashMap<(TenantId, String), Instant>>,
    /// When each periodic subscription notifies next.
    periodic: Mutex<HashMap<(TenantId, String), Instant>>,
}

/// The notifier as the dispatcher sees it (weak: the notifier owns the dispatcher).
struct Stats(Weak<Notifier>);

impl Observer for Stats {
    fn alive(&self, tenant: &str, subscription: &str) -> bool {
        let Some(n) = self.0.upgrade() else {
            return true;
        };
        let Some(t) = tenant_of(tenant) else {
            return false;
        };
        let reg = n.registry.read();
        reg.tenants
            .get(&t)
            .is_some_and(|m| m.contains_key(subscription))
    }
    fn outcome(&self, tenant: &str, subscription: &str, outcome: &Outcome) {
        let Some(n) = self.0.upgrade() else { return };
        let Some(t) = tenant_of(tenant) else {
            return;
        };
        let stats = {
            let reg = n.registry.read();
            match reg.tenants.get(&t).and_then(|m| m.get(subscription)) {
                Some(e) => e.stats.clone(),
                None => return,
            }
        };
        let now = Timestamp::now();
        let mut s = stats.lock();
        match outcome {
            Outcome::Sent { .. } => {
                s.times_sent += 1;
                s.last_notification = Some(now);
                s.last_success = Some(now);
            }
            Outcome::Failed { .. } => {
                s.times_failed += 1;
                s.last_notification = Some(now);
                s.last_failure = Some(now);
            }
            Outcome::Dead { .. } => {}
        }
    }
}

fn tenant_of(s: &str) -> Option<TenantId> {
    if s.is_empty() {
        Some(TenantId::default_tenant())
    } else {
        TenantId::parse(s).ok()
    }
}

fn meta_key(tenant: &TenantId, id: &str) -> String {
    format!("{}\u{1}{id}", tenant.as_str())
}

impl Notifier {
    /// Opens the notifier: loads the persisted subscriptions (parsing them
    /// with contexts from `resolver`), opens the outbox, starts delivering
    /// what is pending, and registers as `broker`'s commit hook.
    pub async fn open(
        config: NotifierConfig,
        broker: Arc<Broker>,
        resolver: Arc<dyn ContextResolver>,
    ) -> Result<Arc<Notifier>> {
        let mut registry = Registry::default();
        let stored = broker
            .store()
            .list_meta(META_NS)
            .await
            .map_err(NgsiError::internal)?;
        let mut unresolved: Vec<StoredSubscription> = Vec::new();
        for (key, bytes) in stored {
            let st: StoredSubscription = match serde_json::from_slice(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(key, error = %e, "skipping an unreadable stored subscription");
                    continue;
                }
            };
            match load_one(&st, resolver.as_ref()).await {
                Ok(sub) => {
                    registry
                        .tenants
                        .entry(st.tenant.clone())
                        .or_default()
                        .insert(
                            sub.id.clone(),
                            Entry {
                                sub: Arc::new(sub),
                                stored: st,
                                stats: Arc::default(),
                            },
                        );
                }
                Err(e) if e.kind == ErrorKind::LdContextNotAvailable => {
                    tracing::warn!(key, error = %e.detail, "a stored subscription's @context is unreachable; retrying in the background");
                    unresolved.push(st);
                }
                Err(e) => {
                    tracing::error!(key, error = %e.detail, "skipping a stored subscription that no longer parses")
                }
            }
        }
        let tenants: Vec<TenantId> = registry.tenants.keys().cloned().collect();
        for t in &tenants {
            if let Some(subs) = registry.tenants.get_mut(t) {
                subs.sort_by(|_, a, _, b| a.stored.created_at.cmp(&b.stored.created_at));
            }
            registry.reindex(t);
        }
        let dir = config.outbox_dir.clone();
        let fsync = config.fsync;
        let (outbox, recovered) = tokio::task::spawn_blocking(move || Outbox::open(&dir, fsync))
            .await
            .map_err(NgsiError::internal)?
            .map_err(NgsiError::internal)?;
        let outbox = Arc::new(outbox);
        let pending = recovered.pending;
        let dead = recovered.dead;
        metrics::gauge!("dosi_notifications_dead_letters").set(dead.len() as f64);
        let n = Arc::new_cyclic(|me: &Weak<Notifier>| {
            let http: Arc<dyn Transport> = Arc::new(HttpTransport::new());
            let mqtt: Arc<dyn Transport> = Arc::new(crate::mqtt::MqttTransport::new());
            let transports = HashMap::from([
                ("http", http.clone()),
                ("https", http),
                ("mqtt", mqtt.clone()),
                ("mqtts", mqtt),
            ]);
            let dispatcher = Dispatcher::new(
                transports,
                outbox.clone(),
                Arc::new(Stats(me.clone())),
                config.clone(),
                dead,
            );
            Notifier {
                broker: broker.clone(),
                registry: RwLock::new(registry),
                config,
                outbox,
                dispatcher,
                throttle: Mutex::new(HashMap::new()),
                periodic: Mutex::new(HashMap::new()),
            }
        });
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len(),
                "delivering notifications pending from before the restart"
            );
        }
        n.dispatcher.enqueue(pending);
        broker.add_hook(n.clone());
        let weak = Arc::downgrade(&n);
        tokio::spawn(periodic_loop(weak));
        if !unresolved.is_empty() {
            tokio::spawn(resolve_later(Arc::downgrade(&n), resolver, unresolved));
        }
        Ok(n)
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dispatcher.dead_letters()
    }

    /// Sends dead letter `nid` again; `None` if there is no such dead letter.
    pub async fn retry_dead_letter(&self, nid: u64) -> Option<()> {
        self.dispatcher.retry_dead(nid).await
    }

    /// Drops dead letter `nid`; `None` if there is no such dead letter.
    pub fn discard_dead_letter(&self, nid: u64) -> Option<DeadLetter> {
        self.dispatcher.discard_dead(nid)
    }

    /// Stops delivery, makes the outbox durable and stops its writer
    /// (graceful shutdown); what is undelivered is sent after the next start.
    pub async fn close(&self) {
        self.dispatcher.close();
        self.outbox.close().await;
    }

    /// Adds a new subscription; `AlreadyExists` if its id is taken in its tenant.
    pub async fn create(&self, sub: Subscription, stored: StoredSubscription) -> Result<()> {
        if self.get(&sub.tenant, &sub.id).is_some() {
            return Err(NgsiError::new(
                ErrorKind::AlreadyExists,
                format!("subscription {} already exists", sub.id),
            ));
        }
        self.persist(&sub.tenant, &sub.id, Some(&stored)).await?;
        let tenant = sub.tenant.clone();
        let mut reg = self.registry.write();
        reg.tenants
            .entry(tenant.clone())
            .or_default()
            .insert(sub.id.clone(), Entry::new(sub, stored));
        reg.reindex(&tenant);
        Ok(())
    }

    /// Replaces an existing subscription (after an update); `ResourceNotFound`
    /// if there is none with that id. Delivery statistics are kept.
    pub async fn update(&self, sub: Subscription, stored: StoredSubscription) -> Result<()> {
        if self.get(&sub.tenant, &sub.id).is_none() {
            return Err(not_found(&sub.id));
        }
        self.persist(&sub.tenant, &sub.id, Some(&stored)).await?;
        let tenant = sub.tenant.clone();
        self.periodic
            .lock()
            .remove(&(tenant.clone(), sub.id.clone()));
        let mut reg = self.registry.write();
        let subs = reg.tenants.entry(tenant.clone()).or_default();
        match subs.get_mut(&sub.id) {
            Some(e) => {
                e.sub = Arc::new(sub);
                e.stored = stored;
            }
            None => {
                subs.insert(sub.id.clone(), Entry::new(sub, stored));
            }
        }
        reg.reindex(&tenant);
        Ok(())
    }

    /// Deletes a subscription; `ResourceNotFound` if absent. Its pending
    /// notifications are dropped.
    pub async fn delete(&self, tenant: &TenantId, id: &str) -> Result<()> {
        if self.get(tenant, id).is_none() {
            return Err(not_found(id));
        }
        self.persist(tenant, id, None).await?;
        let mut reg = self.registry.write();
        if let Some(subs) = reg.tenants.get_mut(tenant) {
            subs.shift_remove(id);
        }
        reg.reindex(tenant);
        let key = (tenant.clone(), id.to_string());
        self.throttle.lock().remove(&key);
        self.periodic.lock().remove(&key);
        Ok(())
    }

    /// One subscription of `tenant`.
    pub fn get(&self, tenant: &TenantId, id: &str) -> Option<SubscriptionView> {
        let reg = self.registry.read();
        reg.tenants.get(tenant)?.get(id).map(view)
    }

    /// All subscriptions of `tenant`, in creation order.
    pub fn list(&self, tenant: &TenantId) -> Vec<SubscriptionView> {
        let reg = self.registry.read();
        reg.tenants
            .get(tenant)
            .map(|s| s.values().map(view).collect())
            .unwrap_or_default()
    }

    /// The broker this notifier serves.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    async fn persist(
        &self,
        tenant: &TenantId,
        id: &str,
        stored: Option<&StoredSubscription>,
    ) -> Result<()> {
        let value = stored
            .map(serde_json::to_vec)
            .transpose()
            .map_err(NgsiError::internal)?;
        self.broker
            .store()
            .put_meta(META_NS, &meta_key(tenant, id), value)
            .await
            .map_err(NgsiError::internal)
    }
}

fn view(e: &Entry) -> SubscriptionView {
    SubscriptionView {
        sub: e.sub.clone(),
        stored: e.stored.clone(),
        stats: e.stats.lock().clone(),
    }
}

fn not_found(id: &str) -> NgsiError {
    NgsiError::not_found(format!("no subscription with id {id}"))
}

async fn load_one(st: &StoredSubscription, resolver: &dyn ContextResolver) -> Result<Subscription> {
    let ctx = resolver.resolve(&st.tenant, st.context.as_ref()).await?;
    let mut sub = crate::parse::subscription(&st.doc, &ctx, &st.tenant, st.created_at)?;
    sub.created_at = st.created_at;
    sub.modified_at = st.modified_at;
    sub.context = st.context.clone();
    crate::parse::resolve_notification_context(&mut sub, resolver).await?;
    Ok(sub)
}

#[async_trait]
impl CommitHook for Notifier {
    /// Matches the committed changes against the tenant's subscriptions and
    /// makes the notifications durable in the outbox before the write is
    /// acknowledged; then hands them to delivery.
    async fn committed(&self, events: &[ChangeEvent]) -> Result<()> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let index = self.registry.read().index.get(&first.tenant).cloned();
        let Some(index) = index else { return Ok(()) };
        if index.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now();
        let mut out = Vec::new();
        for ev in events {
            let Some(subject) = ev.after.as_deref().or(ev.before.as_deref()) else {
                continue;
            };
            for sub in &index.candidates(subject) {
                if sub.status(now) != Status::Active {
                    continue;
                }
                let Some((trigger, changes)) = matcher::trigger(sub, ev) else {
                    continue;
                };
                if !self.throttle_passes(sub) {
                    metrics::counter!("dosi_notifications_throttled_total").increment(1);
                    continue;
                }
                let data = matcher::render(sub, ev, trigger, &changes, now);
                let data = match (&ev.after, sub.notification.join) {
                    (Some(after), Some(_)) => self.with_joins(sub, after, data).await,
                    _ => vec![data],
                };
                out.push(outgoing(sub, data, Some(trigger), now, &self.config));
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        let n = out.len();
        let pending = self.outbox.append(out).await.map_err(NgsiError::internal)?;
        metrics::counter!("dosi_notifications_enqueued_total").increment(n as u64);
        self.dispatcher.enqueue(pending);
        Ok(())
    }
}

impl Notifier {
    /// `notification.join` (clause 4.5.23): the entities the notified one
    /// links to, appended after it (`flat`) or nested in its relationships
    /// as `entity` (`inline`), following `joinLevel` hops (default 1).
    async fn with_joins(&self, sub: &Subscription, e: &Entity, rendered: Value) -> Vec<Value> {
        let Some(join) = sub.notification.join else {
            return vec![rendered];
        };
        let level = sub.notification.join_level.unwrap_or(1).clamp(1, 5);
        let mut o = matcher::encode_options(sub);
        // Linked entities are shown whole; the projection is the notified entity's.
        o.attrs = None;
        o.pick = None;
        o.omit = None;
        match join {
            Join::Flat => {
                let mut out = vec![rendered.clone()];
                let mut seen = std::collections::HashSet::from([e.id.clone()]);
                let mut frontier = vec![(Arc::new(e.clone()), rendered)];
                for _ in 0..level {
                    let mut next = Vec::new();
                    for (ent, shown) in &frontier {
                        for target in self.linked(sub, ent, shown).await {
                            if seen.insert(target.id.clone()) {
                                let v =
                                    encode::entity(&target, &matcher::SubTerms(&sub.active), &o);
                                out.push(v.clone());
                                next.push((target, v));
                            }
                        }
                    }
                    frontier = next;
                }
                out
            }
            Join::Inline => vec![self.inline(sub, e, rendered, &o, level).await],
        }
    }

    /// The entities `e`'s relationships shown in `shown` point to (that exist).
    async fn linked(&self, sub: &Subscription, e: &Entity, shown: &Value) -> Vec<Arc<Entity>> {
        let terms = matcher::SubTerms(&sub.active);
        let mut out = Vec::new();
        for (name, instances) in &e.attrs {
            if shown
                .get(dosi_broker::codec::Terms::compact(&terms, name))
                .is_none()
            {
                continue;
            }
            for a in instances {
                let ids: Vec<&str> = match a.kind {
                    AttrKind::Relationship => a.value.as_str().into_iter().collect(),
                    AttrKind::ListRelationship => a
                        .value
                        .as_array()
                        .map(|l| l.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default(),
                    _ => continue,
                };
                for id in ids {
                    let Ok(id) = EntityId::parse(id) else {
                        continue;
                    };
                    if let Ok(Some(t)) = self.broker.get(&sub.tenant, &id).await {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// Nests the linked entities into `rendered`'s relationships.
    fn inline<'a>(
        &'a self,
        sub: &'a Subscription,
        e: &'a Entity,
        mut rendered: Value,
        o: &'a encode::EncodeOptions,
        level: u32,
    ) -> futures::future::BoxFuture<'a, Value> {
        Box::pin(async move {
            if level == 0 {
                return rendered;
            }
            let terms = matcher::SubTerms(&sub.active);
            for (name, instances) in &e.attrs {
                let key = dosi_broker::codec::Terms::compact(&terms, name);
                let Some(a) = instances.first() else { continue };
                if a.kind != AttrKind::Relationship {
                    continue;
                }
                let Some(id) = a.value.as_str().and_then(|s| EntityId::parse(s).ok()) else {
                    continue;
                };
                if rendered.get(&key).is_none() {
                    continue;
                }
                let Ok(Some(target)) = self.broker.get(&sub.tenant, &id).await else {
                    continue;
                };
                let shown = encode::entity(&target, &terms, o);
                let shown = self.inline(sub, &target, shown, o, level - 1).await;
                let Some(slot) = rendered.get_mut(&key) else {
                    continue;
                };
                match slot {
                    Value::Object(m) if o.format != encode::Format::Simplified => {
                        m.insert("entity".into(), shown);
                    }
                    other => *other = shown,
                }
            }
            rendered
        })
    }

    /// True if `sub` may notify now (no `throttling`, or the last
    /// notification is at least `throttling` seconds old); records it.
    fn throttle_passes(&self, sub: &Subscription) -> bool {
        let Some(secs) = sub.throttling else {
            return true;
        };
        let key = (sub.tenant.clone(), sub.id.clone());
        let mut t = self.throttle.lock();
        let now = Instant::now();
        match t.get(&key) {
            Some(last) if now.duration_since(*last) < Duration::from_secs_f64(secs) => false,
            _ => {
                t.insert(key, now);
                true
            }
        }
    }

    /// Sends the periodic notifications that are due.
    async fn tick_periodic(&self) {
        let now_i = Instant::now();
        let subs: Vec<Arc<Subscription>> = {
            let reg = self.registry.read();
            reg.tenants
                .values()
                .flat_map(|m| m.values())
                .filter(|e| e.sub.time_interval.is_some())
                .map(|e| e.sub.clone())
                .collect()
        };
        let now = Timestamp::now();
        for sub in subs {
            let Some(secs) = sub.time_interval else {
                continue;
            };
            let key = (sub.tenant.clone(), sub.id.clone());
            {
                let mut due = self.periodic.lock();
                let next = due.entry(key.clone()).or_insert(now_i);
                if *next > now_i {
                    continue;
                }
                *next = now_i + Duration::from_secs_f64(secs.max(0.001));
            }
            if sub.status(now) != Status::Active {
                continue;
            }
            match self.current_entities(&sub).await {
                Ok(data) if !data.is_empty() => {
                    let o = outgoing(&sub, data, None, now, &self.config);
                    match self.outbox.append(vec![o]).await {
                        Ok(p) => self.dispatcher.enqueue(p),
                        Err(e) => {
                            tracing::error!(subscription = %sub.id, error = %e, "periodic notification not queued")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(subscription = %sub.id, error = %e.detail, "periodic query failed")
                }
            }
        }
    }

    /// The entities a periodic subscription reports, rendered.
    async fn current_entities(&self, sub: &Subscription) -> Result<Vec<Value>> {
        let selectors: Vec<EntityFilter> = if sub.entities.is_empty() {
            vec![EntityFilter::default()]
        } else {
            sub.entities
                .iter()
                .map(|s| EntityFilter {
                    ids: s.id.iter().cloned().collect(),
                    id_pattern: s.id_pattern.clone(),
                    types: Some(s.types.clone()),
                    ..EntityFilter::default()
                })
                .collect()
        };
        let terms = matcher::SubTerms(&sub.active);
        let o = matcher::encode_options(sub);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for mut f in selectors {
            f.q = sub.q.clone();
            f.scope_q = sub.scope_q.clone();
            f.geo_q = sub.geo_q.clone();
            let r = self
                .broker
                .query(
                    &sub.tenant,
                    &f,
                    Page {
                        offset: 0,
                        limit: 10_000,
                        count: false,
                    },
                )
                .await?;
            for e in r.entities {
                if seen.insert(e.id.clone()) {
                    out.push(encode::entity(&e, &terms, &o));
                }
            }
        }
        Ok(out)
    }
}

/// Keeps trying to load stored subscriptions whose @context could not be
/// fetched at start (e.g. its server was down), so that they come back as soon
/// as it is reachable instead of at the next restart.
async fn resolve_later(
    me: Weak<Notifier>,
    resolver: Arc<dyn ContextResolver>,
    mut waiting: Vec<StoredSubscription>,
) {
    let mut delay = Duration::from_secs(2);
    while !waiting.is_empty() {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
        let Some(n) = me.upgrade() else { return };
        let mut still = Vec::new();
        for st in waiting {
            match load_one(&st, resolver.as_ref()).await {
                Ok(sub) => {
                    tracing::info!(subscription = %sub.id, "stored subscription loaded after its @context became reachable");
                    let tenant = st.tenant.clone();
                    let mut reg = n.registry.write();
                    let subs = reg.tenants.entry(tenant.clone()).or_default();
                    if !subs.contains_key(&sub.id) {
                        subs.insert(sub.id.clone(), Entry::new(sub, st));
                        subs.sort_by(|_, a, _, b| a.stored.created_at.cmp(&b.stored.created_at));
                    }
                    reg.reindex(&tenant);
                }
                Err(e) if e.kind == ErrorKind::LdContextNotAvailable => still.push(st),
                Err(e) => {
                    tracing::error!(error = %e.detail, "skipping a stored subscription that no longer parses")
                }
            }
        }
        waiting = still;
    }
}

async fn periodic_loop(me: Weak<Notifier>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(n) = me.upgrade() else { return };
        n.tick_periodic().await;
    }
}

/// The link to a subscription's @context for the `Link` header (and the
/// `@context` member of JSON-LD bodies).
fn context_ref(sub: &Subscription) -> Value {
    if let Some(u) = &sub.jsonld_context {
        return Value::String(u.clone());
    }
    match &sub.context {
        Some(c) => c.clone(),
        None => Value::String(dosi_jsonld::CORE_CONTEXT_URL.to_string()),
    }
}

/// Builds a notification of `sub` carrying `data`.
fn outgoing(
    sub: &Subscription,
    data: Vec<Value>,
    trigger: Option<Trigger>,
    now: Timestamp,
    cfg: &NotifierConfig,
) -> Outgoing {
    let ep = &sub.notification.endpoint;
    let id = format!("urn:ngsi-ld:Notification:{}", uuid::Uuid::new_v4());
    let mut body = Map::new();
    body.insert("id".into(), Value::String(id.clone()));
    body.insert("type".into(), Value::String("Notification".into()));
    body.insert("subscriptionId".into(), Value::String(sub.id.clone()));
    body.insert("notifiedAt".into(), Value::String(now.to_iso()));
    let ctx = context_ref(sub);
    let data = match ep.accept {
        BodyType::GeoJson => geojson(sub, data),
        _ => Value::Array(data),
    };
    body.insert("data".into(), data);
    if let Some(t) = trigger {
        body.insert("triggerReason".into(), Value::String(t.name().into()));
    }
    let mut headers = vec![(
        "Content-Type".to_string(),
        ep.accept.media_type().to_string(),
    )];
    match ep.accept {
        BodyType::JsonLd => {
            // Every notified entity carries its @context, as JSON-LD
            // entity bodies do; so does the notification itself.
            if let Some(Value::Array(items)) = body.get_mut("data") {
                for item in items {
                    if let Value::Object(m) = item {
                        m.insert("@context".into(), ctx.clone());
                    }
                }
            }
            body.insert("@context".into(), ctx);
        }
        _ => {
            let url = match &ctx {
                Value::String(u) => u.clone(),
                _ => dosi_jsonld::CORE_CONTEXT_URL.to_string(),
            };
            headers.push((
                "Link".into(),
                format!(
                    "<{url}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
                ),
            ));
        }
    }
    if !sub.tenant.is_default() {
        headers.push(("NGSILD-Tenant".into(), sub.tenant.as_str().to_string()));
    }
    headers.extend(ep.receiver_info.iter().cloned());
    let body = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    Outgoing {
        notification_id: id,
        subscription_id: sub.id.clone(),
        tenant: sub.tenant.as_str().to_string(),
        uri: ep.uri.to_string(),
        headers,
        notifier_info: ep.notifier_info.clone(),
        body: Bytes::from(body),
        timeout_ms: ep.timeout_ms.unwrap_or(cfg.timeout_ms),
    }
}

/// `data` as a GeoJSON FeatureCollection (accept `application/geo+json`),
/// geometry from `location`.
fn geojson(sub: &Subscription, data: Vec<Value>) -> Value {
    let terms = matcher::SubTerms(&sub.active);
    let loc = dosi_broker::codec::Terms::compact(&terms, dosi_ngsi::model::core_iri::LOCATION);
    let features = data
        .into_iter()
        .map(|mut e| {
            let id = e.get("id").cloned().unwrap_or(Value::Null);
            let geometry = match e.get(&loc) {
                Some(Value::Object(a)) if a.contains_key("value") => a["value"].clone(),
                Some(v @ Value::Object(_)) => v.clone(),
                _ => Value::Null,
            };
            if let Value::Object(m) = &mut e {
                m.remove("id");
            }
            let mut f = Map::new();
            f.insert("id".into(), id);
            f.insert("type".into(), Value::String("Feature".into()));
            f.insert("geometry".into(), geometry);
            f.insert("properties".into(), e);
            Value::Object(f)
        })
        .collect();
    encode::feature_collection(features)
}
