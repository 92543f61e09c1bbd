//! Quick throughput and footprint figures for the embedded store.
//!
//! `cargo run --release -p dosi-store --example embedded_bench -- [entities] [dir]`
//!
//! Prints: single-entity commits/s from 64 concurrent tasks (group commit),
//! 100-entity batch commits/s, RSS after loading `entities` (default
//! 1,000,000) entities of 10 attributes, and the reopen time.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dosi_ngsi::model::{core_iri, AttrKind, Attribute, Iri};
use dosi_ngsi::query::EntityFilter;
use dosi_ngsi::{Entity, EntityId, TenantId, Timestamp};
use dosi_store::{Change, EmbeddedOptions, EmbeddedStore, Page, Store};
use serde_json::json;

/// An entity of 10 attributes: numbers, strings, a relationship, a location.
fn entity(i: usize) -> Arc<Entity> {
    let now = Timestamp(1_714_557_600_000_000 + i as i64);
    let ty = [
        "AirQualityObserved",
        "Vehicle",
        "ParkingSpot",
        "Streetlight",
        "Camera",
    ][i % 5];
    let mut e = Entity::new(
        EntityId::new_unchecked(&format!("urn:ngsi-ld:{ty}:{i:08}")),
        vec![Iri::from(format!(
            "https://smartdatamodels.org/dataModel/{ty}"
        ))],
        now,
    );
    let mut put = |name: &str, a: Attribute| {
        e.attrs.insert(
            Iri::from(format!("https://smartdatamodels.org/{name}")),
            vec![a],
        );
    };
    let mut temp = Attribute::property(json!(15.0 + (i % 200) as f64 / 10.0), now);
    temp.unit_code = Some("CEL".into());
    temp.observed_at = Some("2024-05-01T10:00:00Z".into());
    put("temperature", temp);
    put("humidity", Attribute::property(json!(40 + i % 50), now));
    put("pm10", Attribute::property(json!(i % 97), now));
    put("pm25", Attribute::property(json!(i % 53), now));
    put("status", Attribute::property(json!("working"), now));
    put(
        "name",
        Attribute::property(json!(format!("sensor {i}")), now),
    );
    put("battery", Attribute::property(json!(0.87), now));
    put(
        "address",
        Attribute::property(
            json!({"addressLocality": "Seoul", "streetAddress": "Teheran-ro"}),
            now,
        ),
    );
    put(
        "refDevice",
        Attribute::new(
            AttrKind::Relationship,
            json!(format!("urn:ngsi-ld:Device:{i}")),
            now,
        ),
    );
    let (lon, lat) = (
        126.8 + (i % 1000) as f64 * 0.0005,
        37.4 + (i / 1000 % 1000) as f64 * 0.0004,
    );
    e.attrs.insert(
        Iri::from(core_iri::LOCATION),
        vec![Attribute::new(
            AttrKind::GeoProperty,
            json!({"type": "Point", "coordinates": [lon, lat]}),
            now,
        )],
    );
    Arc::new(e)
}

fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn count(s: &EmbeddedStore) -> usize {
    let page = Page {
        offset: 0,
        limit: 0,
        count: true,
    };
    let r = s
        .query(&TenantId::default_tenant(), &EntityFilter::default(), page)
        .await
        .expect("query");
    r.total.unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "reopen") {
        let dir = args
            .nth(1)
            .ok_or_else(|| anyhow::anyhow!("reopen needs a directory"))?;
        return reopen(Path::new(&dir)).await;
    }
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| tmp.path().to_owned(), Into::into);
    let d = TenantId::default_tenant();

    // 1. Single-entity commits from 64 tasks.
    {
        let bench_dir = dir.join("commits");
        let store = EmbeddedStore::open(&bench_dir, EmbeddedOptions::default())?;
        let per_task = 300;
        let start = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let (store, d) = (store.clone(), d.clone());
                tokio::spawn(async move {
                    for j in 0..per_task {
                        let c = vec![Change::Put(entity(t * per_task + j))];
                        store.commit(&d, c).await.expect("commit");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "single-entity commits, 64 tasks, fsync: {:.0} commits/s ({} in {secs:.2} s)",
            (64 * per_task) as f64 / secs,
            64 * per_task
        );

        // 2. Batches of 100 from one task.
        let batches = 200;
        let start = Instant::now();
        for b in 0..batches {
            let c = (0..100)
                .map(|k| Change::Put(entity(1_000_000 + b * 100 + k)))
                .collect();
            store.commit(&d, c).await?;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "100-entity batch commits, 1 task, fsync: {:.0} batches/s = {:.0} entities/s",
            batches as f64 / secs,
            (batches * 100) as f64 / secs
        );
        drop(store);
        std::fs::remove_dir_all(&bench_dir)?;
    }

    // 3. Footprint of n entities.
    let (rss0, _) = rss_mib();
    let store_dir = dir.join("big");
    let store = EmbeddedStore::open(&store_dir, EmbeddedOptions::default())?;
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let c = (i..end).map(|k| Change::Put(entity(k))).collect();
        store.commit(&d, c).await?;
        i = end;
    }
    println!(
        "loaded {n} entities x 10 attributes in {:.1} s ({:.0} entities/s)",
        start.elapsed().as_secs_f64(),
        n as f64 / start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    store.flush().await?;
    println!(
        "flush (checkpoint) took {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let (rss, hwm) = rss_mib();
    println!(
        "RSS with {n} entities: {rss:.0} MiB (peak {hwm:.0} MiB, before loading {rss0:.0} MiB)"
    );

    // For comparison: what the same entities weigh decoded (as Arc<Entity>).
    let sample = n.min(100_000);
    let before = rss_mib().0;
    let mut decoded = Vec::with_capacity(sample);
    for k in 0..sample {
        let e = entity(k);
        decoded.push(store.get(&d, &e.id).await?.expect("present"));
    }
    let per = (rss_mib().0 - before) * 1024.0 * 1024.0 / sample as f64;
    println!(
        "decoded Arc<Entity> would take ~{per:.0} bytes each (~{:.0} MiB for {n})",
        per * n as f64 / 1048576.0
    );
    drop(decoded);

    // Read speed.
    let start = Instant::now();
    for k in 0..100_000 {
        let id = EntityId::new_unchecked(&format!(
            "urn:ngsi-ld:{}:{:08}",
            [
                "AirQualityObserved",
                "Vehicle",
                "ParkingSpot",
                "Streetlight",
                "Camera"
            ][k % 5],
            k
        ));
        std::hint::black_box(store.get(&d, &id).await?);
    }
    println!(
        "get: {:.0}/s (one task)",
        100_000.0 / start.elapsed().as_secs_f64()
    );
    drop(store);

    // 4. Reopen, in a fresh process so its RSS is its own.
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("reopen")
        .arg(&store_dir)
        .status()?;
    anyhow::ensure!(status.success(), "reopen failed");
    Ok(())
}

async fn reopen(dir: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    let store = EmbeddedStore::open(dir, EmbeddedOptions::default())?;
    let secs = start.elapsed().as_secs_f64();
    let (rss, hwm) = rss_mib();
    println!(
        "reopen with {} entities: {secs:.2} s, RSS {rss:.0} MiB (peak {hwm:.0} MiB)",
        count(&store).await
    );
    Ok(())
}
