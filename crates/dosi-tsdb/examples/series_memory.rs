//! Resident memory per series: `cargo run --release -p dosi-tsdb --example series_memory -- 1000000`
use dosi_tsdb::{Config, NewPoint, Tsdb, Value};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let base = rss_kib();
    let t = std::time::Instant::now();
    let db = Tsdb::open(Config::new(dir.path())).unwrap();
    let attrs = 13u64;
    let ids: Vec<u64> = (0..n)
        .map(|i| {
            let k = format!(
                "\0urn:ngsi-ld:BenchSensor:bench-{:07}\0https://uri.etsi.org/ngsi-ld/default-context/attr{}\0",
                i / attrs,
                i % attrs
            );
            db.ensure_series(k.as_bytes())
        })
        .collect();
    let r1 = rss_kib();
    println!(
        "{n} series created: {:.0} B/series ({:?})",
        (r1 - base) as f64 * 1024.0 / n as f64,
        t.elapsed()
    );
    for (i, s) in ids.iter().enumerate() {
        db.append(
            *s,
            NewPoint {
                recorded: 1_700_000_000_000_000 + i as i64,
                observed: None,
                tpl: 0,
                value: Value::Num(i as f64),
            },
        );
    }
    let r2 = rss_kib();
    println!(
        "one point each: {:.0} B/series ({:?})",
        (r2 - base) as f64 * 1024.0 / n as f64,
        t.elapsed()
    );
    db.checkpoint_blocking().unwrap();
    let r3 = rss_kib();
    println!(
        "after checkpoint: {:.0} B/series ({:?})",
        (r3 - base) as f64 * 1024.0 / n as f64,
        t.elapsed()
    );
    for (i, s) in ids.iter().enumerate() {
        db.append(
            *s,
            NewPoint {
                recorded: 1_700_000_100_000_000 + i as i64,
                observed: None,
                tpl: 0,
                value: Value::Num(i as f64),
            },
        );
    }
    db.checkpoint_blocking().unwrap();
    let r4 = rss_kib();
    println!(
        "second point + checkpoint: {:.0} B/series ({:?})",
        (r4 - base) as f64 * 1024.0 / n as f64,
        t.elapsed()
    );
    drop(db);
    let t = std::time::Instant::now();
    let db = Tsdb::open(Config::new(dir.path())).unwrap();
    let r5 = rss_kib();
    println!(
        "reopened: {:.0} B/series, open took {:?}",
        (r5 - base) as f64 * 1024.0 / n as f64,
        t.elapsed()
    );
    drop(db);
}
