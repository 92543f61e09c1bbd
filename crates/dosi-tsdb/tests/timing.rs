//! Timings, printed, never asserted. Run with
//! `cargo test --release -p dosi-tsdb --test timing -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use dosi_tsdb::{Config, NewPoint, Order, Range, Tsdb, Value};

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const T0: i64 = 1_767_225_600_000_000;

fn sensor(n: usize) -> Vec<NewPoint> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut v: i64 = 215;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v += (x % 7) as i64 - 3;
            NewPoint {
                recorded: T0 + i as i64 * MINUTE,
                observed: None,
                tpl: 4,
                value: Value::Num(v as f64 / 10.0),
            }
        })
        .collect()
}

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[runs / 2]
}

fn open(dir: &std::path::Path) -> Tsdb {
    let mut c = Config::new(dir);
    c.fsync = false;
    Tsdb::open(c).unwrap()
}

#[tokio::test]
#[ignore]
async fn read_timings_for_30_days_of_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let s = db.ensure_series(b"s");
    for p in sensor(43_200) {
        db.append(s, p);
    }
    let head_hourly = median(
        || assert_eq!(db.aggregate(s, &Range::ALL, T0, HOUR).len(), 720),
        21,
    );
    let t = Instant::now();
    db.checkpoint().await.unwrap();
    let ckpt = t.elapsed();
    let hourly = median(
        || assert_eq!(db.aggregate(s, &Range::ALL, T0, HOUR).len(), 720),
        21,
    );
    let hourly_nd = median(
        || {
            assert_eq!(
                db.aggregate_with(s, &Range::ALL, T0, HOUR, false).len(),
                720
            )
        },
        21,
    );
    let daily_nd = median(
        || {
            assert_eq!(
                db.aggregate_with(s, &Range::ALL, T0, 24 * HOUR, false)
                    .len(),
                30
            )
        },
        21,
    );
    let last1 = median(
        || assert_eq!(db.scan(s, &Range::ALL, Order::Desc, 1).len(), 1),
        101,
    );
    let last100 = median(
        || assert_eq!(db.scan(s, &Range::ALL, Order::Desc, 100).len(), 100),
        101,
    );
    let all = median(
        || {
            assert_eq!(
                db.scan(s, &Range::ALL, Order::Asc, usize::MAX).len(),
                43_200
            )
        },
        11,
    );
    let st = db.stats();
    println!("43,200 points (30 days, 1/min):");
    println!("  checkpoint (encode + write)          {ckpt:?}");
    println!(
        "  sealed                               {:.2} bytes/point",
        st.sealed_bytes as f64 / st.sealed_points as f64
    );
    println!("  hourly aggregate, head (in memory)   {head_hourly:?}");
    println!("  hourly aggregate, sealed             {hourly:?}");
    println!("  hourly aggregate, sealed, no distinct {hourly_nd:?}");
    println!("  daily aggregate, sealed, no distinct (chunk summaries) {daily_nd:?}");
    println!("  lastN=1 (Desc, limit 1)              {last1:?}");
    println!("  lastN=100                            {last100:?}");
    println!("  full scan                            {all:?}");
}

#[test]
#[ignore]
fn append_throughput_one_thread() {
    for nseries in [1usize, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let ids: Vec<_> = (0..nseries)
            .map(|i| db.ensure_series(format!("s{i}").as_bytes()))
            .collect();
        let n = 2_000_000usize;
        let pts = sensor(n / nseries + 1);
        let t = Instant::now();
        let mut k = 0;
        'outer: for p in &pts {
            for s in &ids {
                db.append(*s, p.clone());
                k += 1;
                if k == n {
                    break 'outer;
                }
            }
        }
        let el = t.elapsed();
        let st = db.stats();
        println!(
            "{n} appends over {nseries} series: {el:?} = {:.2} M appends/s, {:.1} WAL bytes/append",
            n as f64 / el.as_secs_f64() / 1e6,
            st.wal_bytes as f64 / n as f64
        );
        let t = Instant::now();
        futures_lite_block(db.checkpoint()).unwrap();
        println!("  checkpoint of {n} points: {:?}", t.elapsed());
    }
}

fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}
