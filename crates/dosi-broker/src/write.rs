//! The one write path.

use std::collections::HashMap;
use std::sync::Arc;

use dosi_bus::{Bus, ChangeEvent, ChangeKind};
use dosi_ngsi::query::EntityFilter;
use dosi_ngsi::{Entity, EntityId, NgsiError, Result, TenantId, Timestamp};
use dosi_store::{Change, Page, QueryResult, Store, StoreError};

use crate::locks::LockTable;

/// Work that must be durable before a write is acknowledged, done right
/// after the commit with the entity locks still held (so it sees the changes
/// of each entity in commit order). The notifier's outbox is one.
#[async_trait::async_trait]
pub trait CommitHook: Send + Sync {
    /// Called with the committed `events` (already sequenced). An error fails
    /// the write's answer; the commit itself stands.
    async fn committed(&self, events: &[ChangeEvent]) -> Result<()>;
}

/// The broker: store + bus + locks. Cheap to share (`Arc`).
pub struct Broker {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    locks: LockTable,
    hooks: parking_lot::RwLock<Vec<Arc<dyn CommitHook>>>,
}

/// The entities one write may read and change, loaded under their locks.
pub struct Txn {
    now: Timestamp,
    state: HashMap<EntityId, Option<Arc<Entity>>>,
    before: HashMap<EntityId, Option<Arc<Entity>>>,
    order: Vec<EntityId>,
}

impl Txn {
    /// The commit time of this write.
    pub fn now(&self) -> Timestamp {
        self.now
    }
    /// The current state of `id` in this write (including its own changes).
    pub fn get(&self, id: &EntityId) -> Option<&Arc<Entity>> {
        self.state.get(id).and_then(Option::as_ref)
    }
    /// Sets the new state of an entity this write locked.
    pub fn put(&mut self, e: Entity) -> Result<()> {
        let id = e.id.clone();
        self.touch(&id)?;
        self.state.insert(id, Some(Arc::new(e)));
        Ok(())
    }
    /// Deletes an entity this write locked.
    pub fn delete(&mut self, id: &EntityId) -> Result<()> {
        self.touch(id)?;
        self.state.insert(id.clone(), None);
        Ok(())
    }
    fn touch(&mut self, id: &EntityId) -> Result<()> {
        if !self.before.contains_key(id) {
            return Err(NgsiError::internal(format!(
                "write touched entity {id} it did not lock"
            )));
        }
        if !self.order.contains(id) {
            self.order.push(id.clone());
        }
        Ok(())
    }
}

fn store_err(e: StoreError) -> NgsiError {
    NgsiError::internal(e)
}

impl Broker {
    /// A broker over `store`, publishing on `bus`.
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>) -> Self {
        Self {
            store,
            bus,
            locks: LockTable::new(),
            hooks: parking_lot::RwLock::new(Vec::new()),
        }
    }

    /// Adds a hook run after every commit, before the write is acknowledged.
    pub fn add_hook(&self, hook: Arc<dyn CommitHook>) {
        self.hooks.write().push(hook);
    }

    /// The store (reads go straight to it).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The bus change events are published on.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// The one write path: locks `ids`, loads them, runs `f`, commits what `f`
    /// changed durably and atomically, runs the commit hooks (e.g. the
    /// notification outbox), then publishes the change events.
    /// If `f` fails nothing is written.
    pub async fn write<T>(
        &self,
        tenant: &TenantId,
        ids: &[EntityId],
        f: impl FnOnce(&mut Txn) -> Result<T>,
    ) -> Result<T> {
        let _guards = self.locks.lock(tenant, ids).await;
        let mut txn = Txn {
            now: Timestamp::now(),
            state: HashMap::with_capacity(ids.len()),
            before: HashMap::with_capacity(ids.len()),
            order: Vec::new(),
        };
        for id in ids {
            if txn.before.contains_key(id) {
                continue;
            }
            let cur = self.store.get(tenant, id).await.map_err(store_err)?;
            txn.before.insert(id.clone(), cur.clone());
            txn.state.insert(id.clone(), cur);
        }
        let out = f(&mut txn)?;
        let mut changes = Vec::with_capacity(txn.order.len());
        let mut events = Vec::with_capacity(txn.order.len());
        for id in &txn.order {
            let before = txn.before.get(id).cloned().flatten();
            let after = txn.state.get(id).cloned().flatten();
            let kind = match (&before, &after) {
                (None, None) => continue,
                (None, Some(_)) => ChangeKind::Created,
                (Some(_), Some(_)) => ChangeKind::Updated,
                (Some(_), None) => ChangeKind::Deleted,
            };
            changes.push(match &after {
                Some(e) => Change::Put(e.clone()),
                None => Change::Delete(id.clone()),
            });
            events.push(ChangeEvent {
                seq: 0,
                tenant: tenant.clone(),
                id: id.clone(),
                kind,
                before,
                after,
                at: txn.now,
            });
        }
        if changes.is_empty() {
            return Ok(out);
        }
        let n = changes.len() as u64;
        self.store
            .commit(tenant, changes)
            .await
            .map_err(store_err)?;
        for e in &mut events {
            e.seq = self.bus.next_seq();
        }
        metrics::counter!("dosi_broker_entity_changes_total").increment(n);
        let hooks = self.hooks.read().clone();
        let mut hooked = Ok(());
        for h in hooks {
            if let Err(e) = h.committed(&events).await {
                tracing::error!(error = %e.detail, "a commit hook failed after a durable commit");
                hooked = Err(e);
            }
        }
        self.bus.publish(events);
        hooked.map(|()| out)
    }

    /// Reads one entity.
    pub async fn get(&self, tenant: &TenantId, id: &EntityId) -> Result<Option<Arc<Entity>>> {
        self.store.get(tenant, id).await.map_err(store_err)
    }

    /// Queries entities.
    pub async fn query(
        &self,
        tenant: &TenantId,
        filter: &EntityFilter,
        page: Page,
    ) -> Result<QueryResult> {
        self.store
            .query(tenant, filter, page)
            .await
            .map_err(store_err)
    }

    /// True if the tenant exists.
    pub async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool> {
        self.store.tenant_exists(tenant).await.map_err(store_err)
    }
}
