//! Striped entity locks: a write holds the stripes of every entity it touches
//! from reading their state until their change is durable, so concurrent
//! writes to one entity are serialised while different entities proceed (and
//! are group-committed) together.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use dosi_ngsi::{EntityId, TenantId};
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 4096;

/// A fixed table of mutexes indexed by a hash of (tenant, entity id).
pub(crate) struct LockTable {
    stripes: Vec<Mutex<()>>,
}

impl LockTable {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Locks the stripes of `ids`, in ascending stripe order (no deadlocks).
    pub(crate) async fn lock(
        &self,
        tenant: &TenantId,
        ids: &[EntityId],
    ) -> Vec<MutexGuard<'_, ()>> {
        let mut idx: Vec<usize> = ids
            .iter()
            .map(|id| {
                let mut h = DefaultHasher::new();
                tenant.hash(&mut h);
                id.hash(&mut h);
                (h.finish() as usize) % STRIPES
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].lock().await);
        }
        guards
    }
}
