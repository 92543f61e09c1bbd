//! Acknowledged history survives `kill -9`: clients write attribute updates
//! through the normal API (PATCH and batch upsert) while a real `dosi serve`
//! is SIGKILLed; after a restart on the same data directory every
//! acknowledged value is in the attribute's history exactly once (writes in
//! flight at the kill may or may not be there). A temporal create
//! acknowledged before the kill is there too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dosi_ngsi::Timestamp;
use serde_json::{json, Value};
use tokio::sync::Mutex;

mod common;

const ENTITIES: i64 = 12;
const BASE: &str = "2026-02-01T00:00:00Z";
/// Acknowledged updates to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 1000;
/// A small instance page, so reading the history back follows 206 pages.
const PAGE: (&str, &str) = ("DOSI_HISTORY_PAGE_INSTANCES", "50");

fn id(k: i64) -> String {
    format!("urn:ngsi-ld:Thermo:{k}")
}

/// Every write carries a distinct value `n`, observed at BASE + n seconds.
fn temp(n: i64) -> Value {
    let at = Timestamp(Timestamp::parse(BASE).unwrap().0 + n * 1_000_000);
    json!({"type": "Property", "value": n, "observedAt": at.to_iso()})
}

/// All `temp` values in the history of `id`, following the instance pages
/// (206 + Content-Range) of clause 6.3.10, and the number of pages.
async fn history_values(client: &reqwest::Client, base: &str, id: &str) -> (Vec<i64>, usize) {
    let mut from = Timestamp(Timestamp::parse(BASE).unwrap().0 - 3_600_000_000);
    let end = "2099-01-01T00:00:00Z";
    let mut values = Vec::new();
    let mut pages = 0;
    loop {
        let r = client
            .get(format!("{base}/ngsi-ld/v1/temporal/entities/{id}"))
            .query(&[
                ("attrs", "temp"),
                ("timerel", "between"),
                ("timeAt", &from.to_iso()),
                ("endTimeAt", end),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status();
        let range = r
            .headers()
            .get("Content-Range")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{id}: {status} {body}");
        pages += 1;
        for i in body["temp"].as_array().into_iter().flatten() {
            values.push(i["value"].as_i64().expect("an integer value"));
        }
        if status != 206 {
            return (values, pages);
        }
        // date-time <start>-<end>/*: the end is the last 'Z'-terminated time.
        let range = range.expect("206 with Content-Range");
        let times = range.trim_start_matches("date-time ");
        let times = times.rsplit_once('/').unwrap().0;
        let (_, last) = times.split_once("Z-").expect("two times");
        from = Timestamp(Timestamp::parse(last).unwrap().0 + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_history_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = common::start_with(dir.path(), &[PAGE]);
    let base = server.base.clone();
    let client = reqwest::Client::new();

    // A temporal create, acknowledged before anything else happens.
    let archive = json!({"id": "urn:ngsi-ld:Archive:1", "type": "Archive", "level": [
        {"type": "Property", "value": 1, "observedAt": "2025-01-01T00:00:00Z"},
        {"type": "Property", "value": 2, "observedAt": "2025-01-01T00:01:00Z"},
        {"type": "Property", "value": 3, "observedAt": "2025-01-01T00:02:00Z"}]});
    let r = client
        .post(format!("{base}/ngsi-ld/v1/temporal/entities"))
        .json(&archive)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // value -> entity, for every acknowledged write.
    let acked: Arc<Mutex<HashMap<i64, i64>>> = Arc::default();
    let next = Arc::new(AtomicI64::new(0));
    for k in 0..ENTITIES {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let r = client
            .post(format!("{base}/ngsi-ld/v1/entities"))
            .json(&json!({"id": id(k), "type": "Thermo", "temp": temp(n)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        acked.lock().await.insert(n, k);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // Four clients PATCH one entity at a time.
    for w in 0..4i64 {
        let (client, base, acked, next, stop) = (
            client.clone(),
            base.clone(),
            acked.clone(),
            next.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut k = w;
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let r = client
                    .patch(format!("{base}/ngsi-ld/v1/entities/{}/attrs", id(k)))
                    .json(&json!({"temp": temp(n)}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 204 => {
                        acked.lock().await.insert(n, k);
                    }
                    _ => return,
                }
                k = (k + 4) % ENTITIES;
            }
        }));
    }
    // Two clients update four entities per batch upsert.
    for w in 0..2i64 {
        let (client, base, acked, next, stop) = (
            client.clone(),
            base.clone(),
            acked.clone(),
            next.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut first = w * 6;
            while !stop.load(Ordering::Relaxed) {
                let writes: Vec<(i64, i64)> = (0..4)
                    .map(|j| (next.fetch_add(1, Ordering::Relaxed), (first + j) % ENTITIES))
                    .collect();
                let body: Vec<Value> = writes
                    .iter()
                    .map(|(n, k)| json!({"id": id(*k), "type": "Thermo", "temp": temp(*n)}))
                    .collect();
                let r = client
                    .post(format!(
                        "{base}/ngsi-ld/v1/entityOperations/upsert?options=update"
                    ))
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 204 => {
                        acked.lock().await.extend(writes);
                    }
                    _ => return,
                }
                first = (first + 4) % ENTITIES;
            }
        }));
    }

    // Kill while the clients are busy.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().await.len() < ACKED_BEFORE_KILL && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL dosi");
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() >= ACKED_BEFORE_KILL,
        "only {} writes acknowledged before the deadline",
        acked.len()
    );

    let mut server = common::start_with(dir.path(), &[PAGE]);
    let base = server.base.clone();
    let mut by_entity: HashMap<i64, Vec<i64>> = HashMap::new();
    for (n, k) in &acked {
        by_entity.entry(*k).or_default().push(*n);
    }
    let mut pages = 0;
    for k in 0..ENTITIES {
        let (values, n) = history_values(&client, &base, &id(k)).await;
        pages += n;
        let mut count: HashMap<i64, usize> = HashMap::new();
        for v in &values {
            *count.entry(*v).or_default() += 1;
        }
        for (v, c) in &count {
            assert_eq!(*c, 1, "{}: value {v} is {c} times in the history", id(k));
        }
        for n in by_entity.get(&k).into_iter().flatten() {
            assert!(
                count.contains_key(n),
                "{}: acknowledged value {n} is missing from the history ({} instances)",
                id(k),
                values.len()
            );
        }
    }
    assert!(
        pages > ENTITIES as usize,
        "reading back should have followed instance pages"
    );

    let r = client
        .get(format!(
            "{base}/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Archive:1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let mut levels: Vec<i64> = v["level"]
        .as_array()
        .expect("level instances")
        .iter()
        .map(|i| i["value"].as_i64().unwrap())
        .collect();
    levels.sort_unstable();
    assert_eq!(levels, [1, 2, 3]);

    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
