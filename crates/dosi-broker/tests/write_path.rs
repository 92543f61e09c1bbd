//! The one write path: every committed change is published once, after the
//! commit, with its state before and after; a failed operation writes and
//! publishes nothing.

use std::sync::Arc;

use dosi_broker::codec::decode::{self, Mode};
use dosi_broker::codec::Identity;
use dosi_broker::Broker;
use dosi_bus::{Bus, ChangeKind, InProcessBus};
use dosi_ngsi::{EntityId, ErrorKind, TenantId, Timestamp};
use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};
use serde_json::json;

fn input(v: serde_json::Value) -> decode::EntityInput {
    decode::entity(&v, &Identity, Mode::Full, true, Timestamp::now()).unwrap()
}

#[tokio::test]
async fn changes_become_events_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    let bus = Arc::new(InProcessBus::new(64));
    let mut rx = bus.subscribe();
    let broker = Broker::new(store.clone(), bus);
    let t = TenantId::default_tenant();
    let id = EntityId::parse("urn:ngsi-ld:WaterObserved:1").unwrap();

    let e =
        json!({"id": id.as_str(), "type": "urn:T", "urn:level": {"type": "Property", "value": 1}});
    broker.create_entity(&t, input(e.clone())).await.unwrap();
    let ev = rx.recv().await.unwrap();
    assert_eq!((ev.kind, ev.id.clone()), (ChangeKind::Created, id.clone()));
    assert!(ev.before.is_none());
    // Published after the commit: the store already has it.
    assert!(broker.get(&t, &id).await.unwrap().is_some());

    // A failing operation (already exists) publishes nothing.
    let err = broker.create_entity(&t, input(e)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);

    let patch = decode::attributes(
        &json!({"urn:level": {"type": "Property", "value": 2}}),
        &Identity,
        Mode::Full,
        Timestamp::now(),
    )
    .unwrap();
    broker.update_attrs(&t, &id, patch).await.unwrap();
    let ev = rx.recv().await.unwrap();
    assert_eq!(ev.kind, ChangeKind::Updated);
    let value = |e: &Option<Arc<dosi_ngsi::Entity>>| {
        e.as_ref().unwrap().attr("urn:level").unwrap().value.clone()
    };
    assert_eq!((value(&ev.before), value(&ev.after)), (json!(1), json!(2)));

    broker.delete_entity(&t, &id).await.unwrap();
    let ev = rx.recv().await.unwrap();
    assert_eq!(ev.kind, ChangeKind::Deleted);
    assert!(ev.after.is_none() && ev.before.is_some());
    assert!(rx.try_recv().is_err(), "exactly one event per change");
}
