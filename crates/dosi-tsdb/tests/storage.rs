//! Compression, retention and rollups, and concurrent use.

use std::sync::Arc;

use dosi_tsdb::{Bucket, Config, NewPoint, Order, Range, TimeField, Tsdb, Value};

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000;

/// A sensor: one point a minute, a random walk with one decimal.
fn sensor(n: usize, seed: u64) -> Vec<NewPoint> {
    let mut x = seed;
    let mut v: i64 = 215;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v += (x % 7) as i64 - 3;
            NewPoint {
                recorded: T0 + i as i64 * MINUTE,
                observed: (i % 2 == 0).then_some(T0 + i as i64 * MINUTE),
                tpl: 4,
                value: Value::Num(v as f64 / 10.0),
            }
        })
        .collect()
}

fn open(dir: &std::path::Path) -> Tsdb {
    let mut c = Config::new(dir);
    c.fsync = false;
    Tsdb::open(c).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_same(a: &[Bucket], b: &[Bucket]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.start, x.count, x.num, x.min, x.max),
            (y.start, y.count, y.num, y.min, y.max)
        );
        assert!(
            close(x.sum, y.sum) && close(x.sumsq, y.sumsq),
            "{x:?} {y:?}"
        );
    }
}

#[tokio::test]
async fn a_regular_sensor_series_takes_at_most_8_bytes_a_point() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let s = db.ensure_series(b"urn:ngsi-ld:Sensor:1/temperature");
    for p in sensor(43_200, 7) {
        db.append(s, p);
    }
    db.checkpoint().await.unwrap();
    let st = db.stats();
    assert_eq!(st.sealed_points, 43_200);
    let per_point = st.sealed_bytes as f64 / st.sealed_points as f64;
    println!(
        "sealed: {} bytes for {} points = {per_point:.2} bytes/point",
        st.sealed_bytes, st.sealed_points
    );
    assert!(per_point <= 8.0, "{per_point}");
    // The files hold what the stats say.
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "wal-0000000000000001.log")
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        on_disk <= st.sealed_bytes + 64,
        "{on_disk} vs {}",
        st.sealed_bytes
    );
    assert_eq!(st.wal_bytes, 0);
}

#[tokio::test]
async fn a_back_filled_series_takes_at_most_8_bytes_a_point() {
    // A back-fill (POST /temporal/entities): a day of one-minute readings
    // recorded in one go, so recorded is constant and observed advances.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let now = T0 + 300 * 86_400_000_000;
    for e in 0..20 {
        let s = db.ensure_series(format!("urn:ngsi-ld:Sensor:{e}/pm25").as_bytes());
        for (i, mut p) in sensor(1_440, e + 1).into_iter().enumerate() {
            p.observed = Some(T0 + i as i64 * MINUTE);
            p.recorded = now;
            db.append(s, p);
        }
    }
    db.checkpoint().await.unwrap();
    let st = db.stats();
    let per_point = st.sealed_bytes as f64 / st.sealed_points as f64;
    println!("back-fill: {per_point:.2} bytes/point");
    assert!(per_point <= 8.0, "{per_point}");
}

#[tokio::test]
async fn last_n_and_aggregates_over_sealed_and_head_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let s = db.ensure_series(b"s");
    let pts = sensor(43_200, 3);
    for p in &pts[..40_000] {
        db.append(s, p.clone());
    }
    db.checkpoint().await.unwrap();
    for p in &pts[40_000..] {
        db.append(s, p.clone());
    }
    let last = db.scan(s, &Range::ALL, Order::Desc, 3);
    assert_eq!(
        last.iter().map(|p| p.instance).collect::<Vec<_>>(),
        vec![43_200, 43_199, 43_198]
    );
    let first = db.scan(s, &Range::ALL, Order::Asc, 2);
    assert_eq!(
        first.iter().map(|p| p.instance).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let hours = db.aggregate(s, &Range::ALL, T0, HOUR);
    assert_eq!(hours.len(), 720);
    assert!(hours.iter().all(|b| b.count == 60 && b.distinct.is_some()));
    let fast = db.aggregate_with(s, &Range::ALL, T0, DAY, false);
    let slow = db.aggregate(s, &Range::ALL, T0, DAY);
    assert_same(&fast, &slow);
    let obs = Range {
        field: TimeField::Observed,
        from: Some(T0),
        to: Some(T0 + DAY),
    };
    assert_eq!(db.count(s, &obs), 720);
}

#[tokio::test]
async fn retention_drops_exactly_the_old_points_and_rollups_keep_the_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let s = db.ensure_series(b"s");
    let mut pts = sensor(10 * 1440, 11);
    // A few documents and deletion markers among the numbers.
    for (i, p) in pts.iter_mut().enumerate() {
        if i % 97 == 0 {
            p.value = Value::Doc(Arc::from(&b"{\"status\":\"ok\"}"[..]));
        } else if i % 101 == 0 {
            p.value = Value::Deleted;
        }
    }
    for p in &pts[..7000] {
        db.append(s, p.clone());
    }
    db.checkpoint().await.unwrap();
    for p in &pts[7000..] {
        db.append(s, p.clone());
    }
    let cut = T0 + 6 * DAY + 5 * HOUR + 17 * MINUTE; // not aligned: straddles a chunk and an hour
    let before_hours = db.aggregate(s, &Range::ALL, T0, HOUR);
    let before_days = db.aggregate(s, &Range::ALL, T0, DAY);
    let before_all = db.scan(s, &Range::ALL, Order::Asc, usize::MAX);

    let dropped = db.drop_before(s, cut, Some(HOUR)).await.unwrap();
    let want_dropped = pts.iter().filter(|p| p.recorded < cut).count() as u64;
    assert_eq!(dropped, want_dropped);
    let after_all = db.scan(s, &Range::ALL, Order::Asc, usize::MAX);
    let kept: Vec<_> = before_all
        .iter()
        .filter(|p| p.recorded >= cut)
        .cloned()
        .collect();
    assert_eq!(after_all, kept);

    for (db, label) in [(&db, "live")] {
        let hours = db.aggregate(s, &Range::ALL, T0, HOUR);
        let days = db.aggregate(s, &Range::ALL, T0, DAY);
        assert_same(&hours, &before_hours);
        assert_same(&days, &before_days);
        // Distinct is unknown where rollups answered, known elsewhere.
        for b in &hours {
            assert_eq!(b.distinct.is_none(), b.start < cut, "{label} {b:?}");
        }
    }
    // Periods that are not multiples of the rollup width see raw data only.
    let odd = db.aggregate(s, &Range::ALL, T0, 7 * MINUTE);
    assert!(odd.iter().all(|b| b.start + 7 * MINUTE > cut));

    // Rollups persist: across a reopen (log replay) and a checkpoint.
    db.sync().await.unwrap();
    drop(db);
    let db = open(dir.path());
    assert_same(&db.aggregate(s, &Range::ALL, T0, HOUR), &before_hours);
    db.checkpoint().await.unwrap();
    drop(db);
    let db = open(dir.path());
    assert_same(&db.aggregate(s, &Range::ALL, T0, DAY), &before_days);
    assert_eq!(db.scan(s, &Range::ALL, Order::Asc, usize::MAX), kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_append_while_others_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    let series: Vec<_> = (0..32)
        .map(|i| db.ensure_series(format!("s{i}").as_bytes()))
        .collect();
    let mut tasks = Vec::new();
    for (w, s) in series.iter().copied().enumerate() {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for (i, p) in sensor(2000, w as u64 + 1).into_iter().enumerate() {
                assert_eq!(db.append(s, p), i as u64 + 1);
                if i % 500 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let reader = {
        let db = db.clone();
        let series = series.clone();
        tokio::spawn(async move {
            for round in 0..50 {
                for s in &series {
                    let last = db.scan(*s, &Range::ALL, Order::Desc, 1);
                    let n = db.count(*s, &Range::ALL);
                    assert!(last.first().is_none_or(|p| p.instance as usize <= n));
                }
                if round % 10 == 0 {
                    db.checkpoint().await.unwrap();
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    reader.await.unwrap();
    for s in &series {
        assert_eq!(db.count(*s, &Range::ALL), 2000);
    }
}
