//! The notifier: the subscription registry, the commit hook that turns
//! committed changes into durable notifications, and delivery.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use dosi_broker::{Broker, CommitHook};
use dosi_bus::ChangeEvent;
use dosi_ngsi::{ErrorKind, NgsiError, Result, TenantId, Timestamp};
use indexmap::IndexMap;
use parking_lot::RwLock;

use crate::model::{DeliveryStats, StoredSubscription, Subscription};
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
            endpoint_concurrency: 16,
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
    stats: DeliveryStats,
}

/// The subscriptions of all tenants, in creation order per tenant.
#[derive(Default)]
struct Registry {
    tenants: HashMap<TenantId, IndexMap<String, Entry>>,
}

/// Subscriptions and their notifications. Share as `Arc`.
pub struct Notifier {
    broker: Arc<Broker>,
    registry: RwLock<Registry>,
    #[allow(dead_code)]
    config: NotifierConfig,
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
                                stats: DeliveryStats::default(),
                            },
                        );
                }
                Err(e) => {
                    tracing::error!(key, error = %e.detail, "skipping a stored subscription that no longer parses")
                }
            }
        }
        for subs in registry.tenants.values_mut() {
            subs.sort_by(|_, a, _, b| a.stored.created_at.cmp(&b.stored.created_at));
        }
        let n = Arc::new(Notifier {
            broker: broker.clone(),
            registry: RwLock::new(registry),
            config,
        });
        broker.add_hook(n.clone());
        Ok(n)
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
        let mut reg = self.registry.write();
        reg.tenants.entry(sub.tenant.clone()).or_default().insert(
            sub.id.clone(),
            Entry {
                sub: Arc::new(sub),
                stored,
                stats: DeliveryStats::default(),
            },
        );
        Ok(())
    }

    /// Replaces an existing subscription (after an update); `ResourceNotFound`
    /// if there is none with that id. Delivery statistics are kept.
    pub async fn update(&self, sub: Subscription, stored: StoredSubscription) -> Result<()> {
        if self.get(&sub.tenant, &sub.id).is_none() {
            return Err(not_found(&sub.id));
        }
        self.persist(&sub.tenant, &sub.id, Some(&stored)).await?;
        let mut reg = self.registry.write();
        let subs = reg.tenants.entry(sub.tenant.clone()).or_default();
        match subs.get_mut(&sub.id) {
            Some(e) => {
                e.sub = Arc::new(sub);
                e.stored = stored;
            }
            None => {
                subs.insert(
                    sub.id.clone(),
                    Entry {
                        sub: Arc::new(sub),
                        stored,
                        stats: DeliveryStats::default(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Deletes a subscription; `ResourceNotFound` if absent. Its pending
    /// notifications are dropped.
    pub async fn delete(&self, tenant: &TenantId, id: &str) -> Result<()> {
        if self.get(tenant, id).is_none() {
            return Err(not_found(id));
        }
        self.persist(tenant, id, None).await?;
        if let Some(subs) = self.registry.write().tenants.get_mut(tenant) {
            subs.shift_remove(id);
        }
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
        stats: e.stats.clone(),
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
    crate::parse::resolve_notification_context(&mut sub, resolver).await?;
    Ok(sub)
}

#[async_trait]
impl CommitHook for Notifier {
    async fn committed(&self, _events: &[ChangeEvent]) -> Result<()> {
        let _ = Timestamp::now();
        Ok(())
    }
}
