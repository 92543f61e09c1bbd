//! Delivery guarantees of the notifier, against real local HTTP receivers:
//! - a flaky receiver (half of the answers 500, random delays) still gets every
//!   notification, at least once, in order per subscription;
//! - a black-holed endpoint (accepts TCP, never answers) does not hold up a
//!   healthy one;
//! - notifications still pending when the notifier stops are delivered by the
//!   next one over the same data directory;
//! - a notification that keeps failing becomes a dead letter, which can be
//!   retried and then arrives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use dosi_broker::Broker;
use dosi_bus::InProcessBus;
use dosi_jsonld::ActiveContext;
use dosi_ngsi::{Attribute, Entity, EntityId, Result, TenantId, Timestamp};
use dosi_notify::model::{StoredSubscription, Subscription};
use dosi_notify::{ContextResolver, Notifier, NotifierConfig};
use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};
use dosi_store::Store;
use parking_lot::Mutex;
use serde_json::{json, Value};

const T: &str = "https://example.org/Gauge";
const LEVEL: &str = "https://example.org/level";

struct CoreOnly;

#[async_trait]
impl ContextResolver for CoreOnly {
    async fn resolve(&self, _t: &TenantId, _c: Option<&Value>) -> Result<ActiveContext> {
        Ok(ActiveContext::core())
    }
}

/// What a receiver got: (subscription id, entity id, level) in arrival order,
/// and the notification ids.
#[derive(Default)]
struct Got {
    items: Vec<(String, String, i64)>,
    ids: Vec<String>,
    attempts: usize,
}

#[derive(Clone)]
struct Behaviour {
    fail_ratio: f64,
    max_delay_ms: u64,
    got: Arc<Mutex<Got>>,
}

async fn receive(State(b): State<Behaviour>, body: axum::body::Bytes) -> StatusCode {
    let (fail, delay) = {
        use rand::Rng;
        let mut r = rand::rng();
        (
            r.random_bool(b.fail_ratio),
            if b.max_delay_ms > 0 {
                r.random_range(0..b.max_delay_ms)
            } else {
                0
            },
        )
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    b.got.lock().attempts += 1;
    if fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    let mut g = b.got.lock();
    g.ids.push(v["id"].as_str().unwrap().to_string());
    for e in v["data"].as_array().unwrap() {
        g.items.push((
            v["subscriptionId"].as_str().unwrap().to_string(),
            e["id"].as_str().unwrap().to_string(),
            e[LEVEL]["value"].as_i64().unwrap_or(-1),
        ));
    }
    StatusCode::NO_CONTENT
}

async fn receiver(fail_ratio: f64, max_delay_ms: u64) -> (SocketAddr, Arc<Mutex<Got>>) {
    let got = Arc::new(Mutex::new(Got::default()));
    let app = Router::new()
        .route("/notify", post(receive))
        .with_state(Behaviour {
            fail_ratio,
            max_delay_ms,
            got: got.clone(),
        });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, got)
}

/// Accepts connections and never answers.
async fn black_hole() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

fn subscription(id: &str, uri: &str) -> (Subscription, StoredSubscription) {
    let now = Timestamp::now();
    let tenant = TenantId::default_tenant();
    let doc = json!({
        "id": id,
        "type": "Subscription",
        "entities": [{"type": T}],
        "notificationTrigger": ["entityCreated", "attributeUpdated"],
        "notification": {"endpoint": {"uri": uri, "accept": "application/json"}}
    });
    let sub = dosi_notify::parse::subscription(&doc, &ActiveContext::core(), &tenant, now).unwrap();
    let stored = StoredSubscription {
        tenant,
        doc,
        context: None,
        created_at: now,
        modified_at: now,
    };
    (sub, stored)
}

fn config(dir: &std::path::Path) -> NotifierConfig {
    let mut c = NotifierConfig::new(dir.join("outbox"));
    c.retry_base_ms = 5;
    c.retry_max_ms = 50;
    c.max_attempts = 1_000;
    c.breaker_failures = 1_000;
    c.timeout_ms = 300;
    c
}

struct City {
    broker: Arc<Broker>,
    notifier: Arc<Notifier>,
}

async fn city(dir: &std::path::Path, cfg: NotifierConfig) -> City {
    let store = EmbeddedStore::open(&dir.join("store"), EmbeddedOptions::default()).unwrap();
    let broker = Arc::new(Broker::new(store, Arc::new(InProcessBus::new(1024))));
    let notifier = Notifier::open(cfg, broker.clone(), Arc::new(CoreOnly))
        .await
        .unwrap();
    City { broker, notifier }
}

async fn set_level(b: &Broker, id: &str, level: i64) {
    let t = TenantId::default_tenant();
    let id = EntityId::parse(id).unwrap();
    b.write(&t, std::slice::from_ref(&id), |txn| {
        let now = txn.now();
        let mut e = match txn.get(&id) {
            Some(e) => (**e).clone(),
            None => Entity::new(id.clone(), vec![T.into()], now),
        };
        e.attrs
            .insert(LEVEL.into(), vec![Attribute::property(json!(level), now)]);
        e.modified_at = now;
        txn.put(e)
    })
    .await
    .unwrap();
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..1_500 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Every (subscription, entity) sequence of levels, de-duplicated, in arrival order.
fn per_lane(got: &Got) -> HashMap<(String, String), Vec<i64>> {
    let mut m: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for (s, e, l) in &got.items {
        let v = m.entry((s.clone(), e.clone())).or_default();
        if v.last() != Some(l) {
            v.push(*l);
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_receiver_gets_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, got) = receiver(0.5, 20).await;
    let c = city(dir.path(), config(dir.path())).await;
    for s in 0..3 {
        let (sub, st) = subscription(&format!("urn:sub:{s}"), &format!("http://{addr}/notify"));
        c.notifier.create(sub, st).await.unwrap();
    }
    const N: i64 = 40;
    for level in 0..N {
        for e in 0..2 {
            set_level(&c.broker, &format!("urn:gauge:{e}"), level).await;
        }
    }
    // 3 subscriptions × 2 entities × N changes.
    wait_for("every notification", || {
        let g = got.lock();
        let lanes = per_lane(&g);
        lanes.len() == 6 && lanes.values().all(|v| v.len() == N as usize)
    })
    .await;
    let g = got.lock();
    for (lane, levels) in per_lane(&g) {
        assert_eq!(levels, (0..N).collect::<Vec<_>>(), "order of {lane:?}");
    }
    assert!(
        g.attempts > g.ids.len(),
        "the receiver did fail some attempts"
    );
    let stats = c
        .notifier
        .get(&TenantId::default_tenant(), "urn:sub:0")
        .unwrap()
        .stats;
    assert!(stats.times_sent >= 2 * N as u64);
    assert!(stats.times_failed > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_endpoint_does_not_hold_up_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let (good, got) = receiver(0.0, 0).await;
    let hole = black_hole().await;
    let mut cfg = config(dir.path());
    cfg.timeout_ms = 60_000; // the black hole keeps every attempt hanging
    let c = city(dir.path(), cfg).await;
    let (bad, st) = subscription("urn:sub:hole", &format!("http://{hole}/notify"));
    c.notifier.create(bad, st).await.unwrap();
    let (ok, st) = subscription("urn:sub:good", &format!("http://{good}/notify"));
    c.notifier.create(ok, st).await.unwrap();
    const N: i64 = 200;
    for level in 0..N {
        set_level(&c.broker, &format!("urn:gauge:{}", level % 10), level).await;
    }
    // The healthy endpoint gets all of its notifications while every attempt
    // at the black hole is still hanging.
    wait_for("the healthy endpoint's notifications", || {
        got.lock().ids.len() == N as usize
    })
    .await;
    let hole_stats = c
        .notifier
        .get(&TenantId::default_tenant(), "urn:sub:hole")
        .unwrap()
        .stats;
    assert_eq!(hole_stats.times_sent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_notifications_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens here yet: every attempt fails and the notifications wait.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    {
        let c = city(dir.path(), config(dir.path())).await;
        let (sub, st) = subscription("urn:sub:later", &format!("http://{addr}/notify"));
        c.notifier.create(sub, st).await.unwrap();
        for level in 0..20 {
            set_level(&c.broker, "urn:gauge:1", level).await;
        }
        c.notifier.close().await;
        c.broker.store().flush().await.unwrap();
    }
    // The receiver comes up on that address; a new notifier over the same
    // data directory delivers what was pending.
    let got = Arc::new(Mutex::new(Got::default()));
    let app = Router::new()
        .route("/notify", post(receive))
        .with_state(Behaviour {
            fail_ratio: 0.0,
            max_delay_ms: 0,
            got: got.clone(),
        });
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    let _c = city(dir.path(), config(dir.path())).await;
    wait_for("the pending notifications", || {
        per_lane(&got.lock())
            .get(&("urn:sub:later".into(), "urn:gauge:1".into()))
            .is_some_and(|v| v.len() == 20)
    })
    .await;
    let lanes = per_lane(&got.lock());
    assert_eq!(
        lanes[&("urn:sub:later".to_string(), "urn:gauge:1".to_string())],
        (0..20).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut cfg = config(dir.path());
    cfg.max_attempts = 3;
    let c = city(dir.path(), cfg).await;
    let (sub, st) = subscription("urn:sub:dead", &format!("http://{addr}/notify"));
    c.notifier.create(sub, st).await.unwrap();
    set_level(&c.broker, "urn:gauge:1", 7).await;
    wait_for("a dead letter", || c.notifier.dead_letters().len() == 1).await;
    let d = c.notifier.dead_letters().remove(0);
    assert_eq!(d.attempts, 3);
    assert_eq!(d.outgoing.subscription_id, "urn:sub:dead");
    let got = Arc::new(Mutex::new(Got::default()));
    let app = Router::new()
        .route("/notify", post(receive))
        .with_state(Behaviour {
            fail_ratio: 0.0,
            max_delay_ms: 0,
            got: got.clone(),
        });
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    c.notifier.retry_dead_letter(d.nid).await.unwrap();
    wait_for("the retried notification", || got.lock().ids.len() == 1).await;
    assert_eq!(got.lock().ids[0], d.outgoing.notification_id);
    assert!(c.notifier.dead_letters().is_empty());
}

/// Fails with LdContextNotAvailable until `up` is set.
struct Unreachable {
    up: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl ContextResolver for Unreachable {
    async fn resolve(&self, _t: &TenantId, _c: Option<&Value>) -> Result<ActiveContext> {
        if self.up.load(std::sync::atomic::Ordering::Relaxed) {
            Ok(ActiveContext::core())
        } else {
            Err(dosi_ngsi::NgsiError::new(
                dosi_ngsi::ErrorKind::LdContextNotAvailable,
                "context server down",
            ))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_whose_context_is_unreachable_at_start_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    {
        let store = EmbeddedStore::open(&store_dir, EmbeddedOptions::default()).unwrap();
        let broker = Arc::new(Broker::new(store.clone(), Arc::new(InProcessBus::new(16))));
        let n = Notifier::open(config(dir.path()), broker, Arc::new(CoreOnly))
            .await
            .unwrap();
        // Stored as the API stores it: a parseable document and its context.
        let (sub, mut st) = subscription("urn:sub:ctx", "http://127.0.0.1:9/notify");
        st.doc = json!({
            "id": "urn:sub:ctx", "type": "Subscription",
            "entities": [{"type": T}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}
        });
        st.context = Some(json!("http://contexts.example/ctx.jsonld"));
        n.create(sub, st).await.unwrap();
        n.close().await;
        store.flush().await.unwrap();
    }
    let store = EmbeddedStore::open(&store_dir, EmbeddedOptions::default()).unwrap();
    let broker = Arc::new(Broker::new(store, Arc::new(InProcessBus::new(16))));
    let resolver = Arc::new(Unreachable {
        up: std::sync::atomic::AtomicBool::new(false),
    });
    let n = Notifier::open(config(dir.path()), broker, resolver.clone())
        .await
        .unwrap();
    let t = TenantId::default_tenant();
    assert!(n.get(&t, "urn:sub:ctx").is_none(), "not loadable yet");
    resolver
        .up
        .store(true, std::sync::atomic::Ordering::Relaxed);
    wait_for("the subscription to come back", || {
        n.get(&t, "urn:sub:ctx").is_some()
    })
    .await;
}
