//! Acknowledged writes survive `kill -9`: a real `dosi serve` process is
//! SIGKILLed while clients are writing, restarted on the same data directory,
//! and every acknowledged create and update must be there.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Mutex;

mod common;

fn start(dir: &std::path::Path) -> common::Server {
    common::start_with(dir, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = reqwest::Client::new();
    // entity index -> last acknowledged counter value (0 = created)
    let acked: Arc<Mutex<HashMap<usize, i64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let (client, base, acked, stop) = (
            client.clone(),
            server.base.clone(),
            acked.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = format!("urn:ngsi-ld:Gauge:{i}");
                let body =
                    json!({"id": id, "type": "Gauge", "level": {"type": "Property", "value": 0}});
                let r = client
                    .post(format!("{base}/ngsi-ld/v1/entities"))
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        acked.lock().await.insert(i, 0);
                    }
                    _ => return,
                }
                for n in 1..=3i64 {
                    let r = client
                        .patch(format!("{base}/ngsi-ld/v1/entities/{id}/attrs"))
                        .json(&json!({"level": {"type": "Property", "value": n}}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 204 => {
                            acked.lock().await.insert(i, n);
                        }
                        _ => return,
                    }
                }
                i += 8;
            }
        }));
    }
    // Kill once enough writes were acknowledged, while writers are still busy.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().await.len() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL dosi");
    server.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() >= 200,
        "only {} entities acknowledged before the deadline",
        acked.len()
    );

    let mut server = start(dir.path());
    for (i, n) in &acked {
        let id = format!("urn:ngsi-ld:Gauge:{i}");
        let r = client
            .get(format!("{}/ngsi-ld/v1/entities/{id}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged entity {id} lost");
        let v: Value = r.json().await.unwrap();
        let level = v["level"]["value"].as_i64().unwrap();
        // The newest acknowledged value or a later one (committed, not yet acknowledged).
        assert!(
            level >= *n,
            "{id}: level {level} is older than the acknowledged {n}"
        );
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_flushes_and_restart_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = reqwest::Client::new();
    let batch: Vec<Value> = (0..500)
        .map(|i| json!({"id": format!("urn:ngsi-ld:Spot:{i}"), "type": "ParkingSpot", "status": {"type": "Property", "value": "free"}}))
        .collect();
    let r = client
        .post(format!(
            "{}/ngsi-ld/v1/entityOperations/upsert",
            server.base
        ))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // SIGTERM: graceful shutdown.
    let pid = server.child.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "dosi exited with {status}");
    let mut server = start(dir.path());
    let r = client
        .get(format!(
            "{}/ngsi-ld/v1/entities?type=ParkingSpot&count=true&limit=1",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["NGSILD-Results-Count"], "500");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
