//! Change events and the bus that carries them.
//!
//! Every committed change becomes one [`ChangeEvent`] per entity, published
//! after the commit is durable. Consumers (subscriptions, history, the console's
//! live stream, rules) subscribe to the bus. In one process the bus is a
//! broadcast channel ([`InProcessBus`]); across nodes it will be NATS JetStream
//! behind the same [`Bus`] trait.
//!
//! This crate knows nothing of HTTP, storage or JSON-LD.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dosi_ngsi::{Entity, EntityId, TenantId, Timestamp};
use tokio::sync::broadcast;

/// What happened to an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The entity did not exist before.
    Created,
    /// The entity existed and still exists.
    Updated,
    /// The entity existed and was removed.
    Deleted,
}

/// One committed change of one entity, with its state before and after.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// Position in this node's event sequence (strictly increasing).
    pub seq: u64,
    /// The tenant the entity belongs to.
    pub tenant: TenantId,
    /// The entity id.
    pub id: EntityId,
    /// Created, updated or deleted.
    pub kind: ChangeKind,
    /// The state before the change (None when created).
    pub before: Option<Arc<Entity>>,
    /// The state after the change (None when deleted).
    pub after: Option<Arc<Entity>>,
    /// When the change was committed.
    pub at: Timestamp,
}

/// Publishes committed changes and hands out subscriptions to them.
pub trait Bus: Send + Sync + 'static {
    /// Publishes `events` in order. Never blocks; never fails for lack of consumers.
    fn publish(&self, events: Vec<ChangeEvent>);
    /// A receiver of every event published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeEvent>>;
    /// The next sequence number to stamp on an event.
    fn next_seq(&self) -> u64;
}

/// The single-process bus: a bounded broadcast channel. A consumer that falls
/// more than `capacity` events behind is told how many it missed
/// (`RecvError::Lagged`) and must resynchronise from the store.
#[derive(Debug)]
pub struct InProcessBus {
    tx: broadcast::Sender<Arc<ChangeEvent>>,
    seq: AtomicU64,
}

impl InProcessBus {
    /// A bus that buffers up to `capacity` events per slow consumer.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self {
            tx,
            seq: AtomicU64::new(1),
        }
    }
}

impl Bus for InProcessBus {
    fn publish(&self, events: Vec<ChangeEvent>) {
        for e in events {
            // No receivers is fine: nobody is listening yet.
            let _ = self.tx.send(Arc::new(e));
        }
    }
    fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeEvent>> {
        self.tx.subscribe()
    }
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order() {
        let bus = InProcessBus::new(16);
        let mut rx = bus.subscribe();
        let id = EntityId::parse("urn:a:1").unwrap();
        let ev = |kind| ChangeEvent {
            seq: bus.next_seq(),
            tenant: TenantId::default_tenant(),
            id: id.clone(),
            kind,
            before: None,
            after: None,
            at: Timestamp(0),
        };
        bus.publish(vec![ev(ChangeKind::Created), ev(ChangeKind::Deleted)]);
        assert_eq!(rx.recv().await.unwrap().kind, ChangeKind::Created);
        assert_eq!(rx.recv().await.unwrap().kind, ChangeKind::Deleted);
    }
}
