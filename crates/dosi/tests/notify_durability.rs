//! Notifications are never lost: a real `dosi serve` with a subscription
//! whose receiver is down is SIGKILLed with notifications pending; after a
//! restart on the same data directory, with the receiver up, every change
//! acknowledged before the kill is notified (at least once, in order).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::Mutex;

mod common;

/// Retry quickly so the test does not wait on long back-offs.
fn start(dir: &std::path::Path) -> common::Server {
    common::start_with(
        dir,
        &[
            ("DOSI_NOTIFY_RETRY_BASE_MS", "20"),
            ("DOSI_NOTIFY_RETRY_MAX_MS", "200"),
            ("DOSI_NOTIFY_MAX_ATTEMPTS", "1000"),
            ("DOSI_NOTIFY_BREAKER_COOLDOWN_MS", "100"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_notifications_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // A port with no receiver yet: every attempt fails, notifications pile up.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);

    let mut server = start(dir.path());
    let client = reqwest::Client::new();
    let sub = json!({
        "id": "urn:ngsi-ld:Subscription:kill-test",
        "type": "Subscription",
        "entities": [{"type": "Gauge"}],
        "notification": {
            "endpoint": {"uri": format!("http://{addr}/notify"), "accept": "application/json"}
        }
    });
    let r = client
        .post(format!("{}/ngsi-ld/v1/subscriptions", server.base))
        .json(&sub)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // entity -> every acknowledged level, in order
    let mut acked: HashMap<String, Vec<i64>> = HashMap::new();
    for i in 0..10 {
        let id = format!("urn:ngsi-ld:Gauge:{i}");
        let r = client
            .post(format!("{}/ngsi-ld/v1/entities", server.base))
            .json(&json!({"id": id, "type": "Gauge", "level": {"type": "Property", "value": 0}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        acked.entry(id).or_default().push(0);
    }
    for n in 1..=5i64 {
        for i in 0..10 {
            let id = format!("urn:ngsi-ld:Gauge:{i}");
            let r = client
                .patch(format!("{}/ngsi-ld/v1/entities/{id}/attrs", server.base))
                .json(&json!({"level": {"type": "Property", "value": n}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
            acked.entry(id).or_default().push(n);
        }
    }
    server.child.kill().expect("SIGKILL dosi");
    server.child.wait().unwrap();

    // The receiver comes up; the restarted server delivers what was pending.
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let g = got.clone();
    let app = Router::new().route(
        "/notify",
        post(move |body: axum::Json<Value>| {
            let g = g.clone();
            async move {
                g.lock().await.push(body.0);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    let mut server = start(dir.path());

    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
        for n in got.lock().await.iter() {
            assert_eq!(n["subscriptionId"], "urn:ngsi-ld:Subscription:kill-test");
            for e in n["data"].as_array().unwrap() {
                let v = seen
                    .entry(e["id"].as_str().unwrap().to_string())
                    .or_default();
                let level = e["level"]["value"].as_i64().unwrap();
                // At least once: a repeated delivery shows the same level again.
                if v.last() != Some(&level) {
                    v.push(level);
                }
            }
        }
        if seen == acked || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server.child.kill().ok();
    server.child.wait().ok();
    assert_eq!(seen, acked, "every acknowledged change notified, in order");
}
