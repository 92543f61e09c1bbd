//! Capture through the one write path: a real `Broker` over the embedded
//! store with the history as its commit hook. Every committed change
//! becomes instances, deletion markers, scope instances and catalog
//! entries, and all of it is there again after the history is reopened.

use std::sync::Arc;

use dosi_broker::codec::decode::{self, Mode};
use dosi_broker::codec::Identity;
use dosi_broker::Broker;
use dosi_bus::InProcessBus;
use dosi_history::{History, HistoryConfig, ReadSpec, TemporalEntity, TimeProp};
use dosi_ngsi::model::Iri;
use dosi_ngsi::{EntityId, TenantId, Timestamp};
use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};
use serde_json::{json, Value};

const TYPE: &str = "urn:T";
const TEMP: &str = "urn:temp";
const NAME: &str = "urn:name";
const SPEED: &str = "urn:speed";
const HUM: &str = "urn:hum";

fn input(v: Value) -> decode::EntityInput {
    decode::entity(&v, &Identity, Mode::Full, true, Timestamp::now()).unwrap()
}

fn attrs(v: Value) -> decode::EntityInput {
    decode::attributes(&v, &Identity, Mode::Full, Timestamp::now()).unwrap()
}

fn temp(v: i64, hour: u32) -> Value {
    json!({"type": "Property", "value": v, "observedAt": format!("2024-01-01T{hour:02}:00:00Z")})
}

struct Setup {
    broker: Arc<Broker>,
    history: Arc<History>,
}

fn open_history(dir: &std::path::Path, keep_on_delete: bool) -> Arc<History> {
    let mut cfg = HistoryConfig::new(dir.join("history"));
    cfg.keep_on_entity_delete = keep_on_delete;
    History::open(cfg).unwrap()
}

fn setup(dir: &std::path::Path, keep_on_delete: bool) -> Setup {
    let store = EmbeddedStore::open(
        &dir.join("store"),
        EmbeddedOptions {
            fsync: false,
            ..Default::default()
        },
    )
    .unwrap();
    let broker = Arc::new(Broker::new(store, Arc::new(InProcessBus::new(64))));
    let history = open_history(dir, keep_on_delete);
    broker.add_hook(history.hook());
    Setup { broker, history }
}

fn read(h: &History, id: &EntityId, prop: TimeProp) -> Option<TemporalEntity> {
    let spec = ReadSpec {
        timeprop: prop,
        ..ReadSpec::default()
    };
    h.read(&TenantId::default_tenant(), id, &spec, usize::MAX)
}

/// (datasetId, value, deleted) of the instances of `attr`, oldest first.
fn rows(e: &TemporalEntity, attr: &str) -> Vec<(Option<String>, Value, bool)> {
    e.attrs
        .get(attr)
        .map(|l| {
            l.iter()
                .map(|i| {
                    (
                        i.attr.dataset_id.as_deref().map(String::from),
                        i.attr.value.clone(),
                        i.deleted_at.is_some(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn null() -> Value {
    json!("urn:ngsi-ld:null")
}

#[tokio::test]
async fn committed_changes_become_history_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), true);
    let (b, h) = (&s.broker, &s.history);
    let t = TenantId::default_tenant();
    let id = EntityId::parse("urn:ngsi-ld:C:1").unwrap();
    let other = EntityId::parse("urn:ngsi-ld:C:2").unwrap();

    b.create_entity(
        &t,
        input(json!({
            "id": id.as_str(), "type": TYPE, "scope": "/city/a",
            TEMP: temp(1, 8),
            NAME: {"type": "Property", "value": "a"},
            SPEED: [
                {"type": "Property", "value": 10},
                {"type": "Property", "value": 11, "datasetId": "urn:ds:1"},
            ],
        })),
    )
    .await
    .unwrap();
    b.create_entity(
        &t,
        input(json!({"id": other.as_str(), "type": "urn:U", TEMP: temp(5, 8)})),
    )
    .await
    .unwrap();
    assert!(h.exists(&t, &id) && h.exists(&t, &other));

    b.update_attrs(&t, &id, attrs(json!({TEMP: temp(2, 9)})))
        .await
        .unwrap();
    b.append_attrs(
        &t,
        &id,
        attrs(json!({HUM: {"type": "Property", "value": 50}})),
        false,
    )
    .await
    .unwrap();
    b.delete_attr(&t, &id, &Iri::from(NAME), None, false)
        .await
        .unwrap();
    b.delete_attr(&t, &id, &Iri::from(SPEED), Some("urn:ds:1"), false)
        .await
        .unwrap();
    // Replacing the scope changes no attribute: no new attribute instance.
    b.merge_entity(
        &t,
        &id,
        decode::entity(
            &json!({"scope": ["/city/b", "/x"]}),
            &Identity,
            Mode::Full,
            false,
            Timestamp::now(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    b.delete_scope(&t, &id).await.unwrap();
    b.batch_upsert(
        &t,
        vec![input(
            json!({"id": id.as_str(), "type": TYPE, TEMP: temp(3, 10)}),
        )],
        true,
    )
    .await
    .unwrap();

    // Before the entity is deleted.
    let e = read(h, &id, TimeProp::CreatedAt).unwrap();
    assert_eq!(e.types, vec![Iri::from(TYPE)]);
    assert!(e.deleted_at.is_none());
    assert_eq!(
        rows(&e, TEMP),
        vec![
            (None, json!(1), false),
            (None, json!(2), false),
            (None, json!(3), false)
        ]
    );
    assert_eq!(
        rows(&e, NAME),
        vec![(None, json!("a"), false), (None, null(), true)]
    );
    assert_eq!(
        rows(&e, SPEED),
        vec![
            (None, json!(10), false),
            (Some("urn:ds:1".into()), json!(11), false),
            (Some("urn:ds:1".into()), null(), true),
        ]
    );
    assert_eq!(rows(&e, HUM), vec![(None, json!(50), false)]);
    let scopes: Vec<(Vec<String>, bool)> = e
        .scope
        .iter()
        .map(|s| (s.scope.clone(), s.deleted_at.is_some()))
        .collect();
    assert_eq!(
        scopes,
        vec![
            (vec!["/city/a".to_string()], false),
            (vec!["/city/b".to_string(), "/x".to_string()], false),
            (vec![], true),
        ]
    );
    // observedAt windows see the instances that have one.
    let e = read(h, &id, TimeProp::ObservedAt).unwrap();
    assert_eq!(rows(&e, TEMP).len(), 3);
    assert!(!e.attrs.contains_key(NAME) && !e.attrs.contains_key(HUM));

    b.delete_entity(&t, &id).await.unwrap();

    // The entity's history stays, with deletion markers for what it had.
    assert!(h.exists(&t, &id));
    let e = read(h, &id, TimeProp::DeletedAt).unwrap();
    assert!(e.deleted_at.is_some());
    assert_eq!(
        rows(&e, TEMP),
        vec![(None, null(), true)],
        "one marker for temp"
    );
    assert_eq!(
        rows(&e, SPEED),
        vec![
            // In time order: the datasetId was deleted first.
            (Some("urn:ds:1".into()), null(), true),
            (None, null(), true),
        ]
    );
    assert_eq!(rows(&e, NAME), vec![(None, null(), true)]);
    assert_eq!(rows(&e, HUM), vec![(None, null(), true)]);
    let all = read(h, &id, TimeProp::CreatedAt).unwrap();
    assert_eq!(rows(&all, TEMP).len(), 4);
    // The catalog: both entities, by type.
    let by_type = |ty: &'static str| {
        h.entities(&t, &move |_, types: &[String]| {
            types.iter().any(|x| x == ty)
        })
    };
    assert_eq!(by_type(TYPE), vec![id.clone()]);
    assert_eq!(by_type("urn:U"), vec![other.clone()]);
    assert!(h.tenant_exists(&t));

    // Reopen: the same answers.
    let snapshot = |h: &History| {
        (
            [
                TimeProp::CreatedAt,
                TimeProp::ObservedAt,
                TimeProp::DeletedAt,
            ]
            .map(|p| (read(h, &id, p), read(h, &other, p))),
            h.exists(&t, &id),
            h.exists(&t, &other),
            h.entities(&t, &|_, _| true),
            h.entities(&t, &|_, types: &[String]| types.iter().any(|x| x == TYPE)),
        )
    };
    let before = snapshot(h);
    drop(s);
    let h = open_history(dir.path(), true);
    let after = snapshot(&h);
    assert_eq!(after, before);

    // An entity created again after its deletion continues its history.
    drop(h);
    let s = setup(dir.path(), true);
    s.broker
        .create_entity(
            &t,
            input(json!({"id": id.as_str(), "type": TYPE, TEMP: temp(4, 11)})),
        )
        .await
        .unwrap();
    let e = read(&s.history, &id, TimeProp::CreatedAt).unwrap();
    assert!(e.deleted_at.is_none());
    let temps: Vec<Value> = rows(&e, TEMP).into_iter().map(|r| r.1).collect();
    assert_eq!(temps, vec![json!(1), json!(2), json!(3), null(), json!(4)]);
}

#[tokio::test]
async fn entity_delete_forgets_history_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), false);
    let t = TenantId::default_tenant();
    let id = EntityId::parse("urn:ngsi-ld:C:1").unwrap();
    s.broker
        .create_entity(
            &t,
            input(json!({"id": id.as_str(), "type": TYPE, TEMP: temp(1, 8)})),
        )
        .await
        .unwrap();
    assert!(s.history.exists(&t, &id));
    s.broker.delete_entity(&t, &id).await.unwrap();
    assert!(!s.history.exists(&t, &id));
    assert!(read(&s.history, &id, TimeProp::CreatedAt).is_none());
    drop(s);
    let h = open_history(dir.path(), false);
    assert!(!h.exists(&t, &id));
    assert!(h.entities(&t, &|_, _| true).is_empty());
}
