//! Per-entity locks: a write holds the lock of every entity it touches from
//! reading their state until their change is durable, so concurrent writes to
//! one entity are serialised while writes to different entities proceed (and
//! are group-committed) together.
//!
//! Locks are exact (one per entity id, created on demand and dropped when
//! unused), not striped: a striped table made unrelated batch upserts of 100
//! entities collide on stripes and wait for each other's fsync.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use dosi_ngsi::{EntityId, TenantId};
use parking_lot::Mutex;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

const SHARDS: usize = 64;

type Key = (TenantId, EntityId);
type Shard = Mutex<HashMap<Key, Arc<AsyncMutex<()>>>>;

/// The lock table.
pub(crate) struct LockTable {
    shards: Vec<Shard>,
}

/// The locks one write holds; released (and unused entries removed) on drop.
pub(crate) struct Held<'a> {
    table: &'a LockTable,
    guards: Vec<(Key, OwnedMutexGuard<()>)>,
}

impl LockTable {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &Key) -> &Shard {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// Locks every id of `ids` (deduplicated), in sorted order so two writes
    /// never wait for each other in a cycle.
    pub(crate) async fn lock(&self, tenant: &TenantId, ids: &[EntityId]) -> Held<'_> {
        let mut keys: Vec<Key> = ids.iter().map(|id| (tenant.clone(), id.clone())).collect();
        keys.sort();
        keys.dedup();
        let mut guards = Vec::with_capacity(keys.len());
        for key in keys {
            let m = self
                .shard(&key)
                .lock()
                .entry(key.clone())
                .or_insert_with(|| Arc::new(AsyncMutex::new(())))
                .clone();
            let g = m.lock_owned().await;
            guards.push((key, g));
        }
        Held {
            table: self,
            guards,
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for (key, guard) in self.guards.drain(..) {
            drop(guard);
            let mut shard = self.table.shard(&key).lock();
            // Only the table's own reference left: nobody holds or waits for it.
            if shard.get(&key).is_some_and(|m| Arc::strong_count(m) == 1) {
                shard.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn same_entity_serialises_and_entries_are_dropped() {
        let t = LockTable::new();
        let tenant = TenantId::default_tenant();
        let a = EntityId::parse("urn:a:1").unwrap();
        let b = EntityId::parse("urn:a:2").unwrap();
        let held = t.lock(&tenant, &[a.clone(), a.clone()]).await;
        // A different entity is not blocked.
        let other = t.lock(&tenant, std::slice::from_ref(&b)).await;
        drop(other);
        // The same entity is.
        assert!(t
            .lock(&tenant, std::slice::from_ref(&a))
            .now_or_never()
            .is_none());
        drop(held);
        let again = t.lock(&tenant, std::slice::from_ref(&a)).await;
        drop(again);
        assert!(t.shards.iter().all(|s| s.lock().is_empty()));
    }
}
