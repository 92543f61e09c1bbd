//! Checkpoints running while mutations go on: the cut, the per-series
//! sealing and the recovery from a catalog that reflects some mutations made
//! after the cut.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dosi_tsdb::{Config, NewPoint, Order, Range, Tsdb, Value};

fn pt(series: u64, i: u64, gen: u64) -> NewPoint {
    NewPoint {
        recorded: 1_700_000_000_000_000 + (i as i64) * 1_000_000 + (series as i64),
        observed: i
            .is_multiple_of(3)
            .then_some(1_700_000_000_000_000 + i as i64),
        tpl: (i % 2) as u32,
        value: Value::Num((series * 1_000_000 + i * 10 + gen) as f64),
    }
}

/// Copies the database directory as a crash at one instant would leave it,
/// while checkpoints keep running. A plain copy is not such an instant: it
/// could take an old catalog and miss the log files a newer checkpoint
/// deleted, or take a new catalog and miss the segment it names. A
/// checkpoint deletes files only after it has replaced the catalog, and the
/// catalog's content changes with every checkpoint (its log sequence only
/// grows), so a copy during which the catalog stayed the same is a state
/// some crash could have left, possibly in the middle of a checkpoint (new
/// segments and a rotated log but the old catalog).
fn crash_copy(from: &Path, to: &Path) {
    for _ in 0..10_000 {
        let before = std::fs::read(from.join("catalog")).ok();
        for e in std::fs::read_dir(to).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            // A file may vanish between listing and copying (a checkpoint
            // deleting old logs): the catalog check below catches it.
            let _ = std::fs::copy(e.path(), to.join(e.file_name()));
        }
        if std::fs::read(from.join("catalog")).ok() == before {
            return;
        }
    }
    panic!("no copy without a checkpoint completing in between");
}

/// What a writer task expects of its series: instance → value.
type Expect = BTreeMap<u64, NewPoint>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_during_checkpoints_survive_a_crash() {
    for round in 0..6u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::new(dir.path());
        // Small partitions: several chunks per series, merges of small ones.
        cfg.partition = 20_000_000;
        cfg.fsync = false;
        let db = Arc::new(Tsdb::open(cfg).unwrap());
        let stop = Arc::new(AtomicBool::new(false));

        let ck = {
            let db = db.clone();
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    db.checkpoint_blocking().unwrap();
                    n += 1;
                }
                n
            })
        };

        let mut writers = Vec::new();
        for w in 0..4u64 {
            let db = db.clone();
            writers.push(tokio::task::spawn_blocking(move || {
                let mut expect: BTreeMap<Vec<u8>, (u64, Expect)> = BTreeMap::new();
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ ((w + 1) * (round + 7));
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for step in 0..10_000u64 {
                    let k = format!("w{w}/s{}", next() % 40).into_bytes();
                    let s = db.ensure_series(&k);
                    let e = &mut expect.entry(k.clone()).or_insert((s, Expect::new())).1;
                    match next() % 100 {
                        97 => {
                            assert!(db.delete_series(s));
                            expect.remove(&k);
                        }
                        98 | 99 => {
                            let t = pt(s, next() % 40, 0).recorded;
                            let rollup = next().is_multiple_of(2).then_some(60_000_000);
                            let h = tokio::runtime::Handle::current();
                            let n = h.block_on(db.drop_before(s, t, rollup)).unwrap();
                            let before = e.len();
                            e.retain(|_, p| p.recorded >= t);
                            assert_eq!(n as usize, before - e.len(), "drop_before {s}");
                        }
                        x if x % 10 == 0 && !e.is_empty() => {
                            let inst = *e.keys().nth((next() % e.len() as u64) as usize).unwrap();
                            assert!(db.delete_instance(s, inst), "delete {s}/{inst}");
                            e.remove(&inst);
                        }
                        x if x % 10 < 3 && !e.is_empty() => {
                            let inst = *e.keys().nth((next() % e.len() as u64) as usize).unwrap();
                            let p = pt(s, inst, 1 + step % 5);
                            assert!(
                                db.replace_instance(s, inst, p.clone()),
                                "replace {s}/{inst}"
                            );
                            e.insert(inst, p);
                        }
                        _ => {
                            let i = next() % 200;
                            let p = pt(s, i, 0);
                            let inst = db.append(s, p.clone());
                            assert!(inst > 0);
                            assert!(e.insert(inst, p).is_none());
                        }
                    }
                }
                expect
            }));
        }
        let mut expect = BTreeMap::new();
        for w in writers {
            expect.extend(w.await.unwrap());
        }
        db.sync().await.unwrap();
        // A crash while the checkpoints still run (some mid-way).
        let crashed = tempfile::tempdir().unwrap();
        crash_copy(dir.path(), crashed.path());
        stop.store(true, Ordering::Relaxed);
        let n = ck.await.unwrap();
        println!("round {round}: {n} checkpoints");
        assert!(n > 0);

        let check = |db: &Tsdb, what: &str| {
            for (k, (s, e)) in &expect {
                assert_eq!(db.series_id(k), Some(*s), "{what}: key");
                let got = db.scan(*s, &Range::ALL, Order::Asc, usize::MAX);
                let got: BTreeMap<u64, NewPoint> = got
                    .into_iter()
                    .map(|p| {
                        (
                            p.instance,
                            NewPoint {
                                recorded: p.recorded,
                                observed: p.observed,
                                tpl: p.tpl,
                                value: p.value,
                            },
                        )
                    })
                    .collect();
                assert_eq!(got.len(), db.count(*s, &Range::ALL), "{what}: count");
                assert_eq!(&got, e, "{what}: series {s}");
                for (inst, p) in e.iter().take(5) {
                    assert_eq!(
                        db.get_instance(*s, *inst).map(|q| q.value),
                        Some(p.value.clone())
                    );
                }
            }
        };
        check(&db, "live");
        let db2 = Tsdb::open(Config {
            partition: 20_000_000,
            fsync: false,
            ..Config::new(crashed.path())
        })
        .unwrap();
        check(&db2, "after crash");
        // And once more after a checkpoint of the recovered state.
        db2.checkpoint_blocking().unwrap();
        drop(db2);
        let db3 = Tsdb::open(Config {
            partition: 20_000_000,
            fsync: false,
            ..Config::new(crashed.path())
        })
        .unwrap();
        check(&db3, "after recovery checkpoint");
        // New appends continue the instance numbers.
        for (s, e) in expect.values() {
            let inst = db3.append(*s, pt(*s, 1, 0));
            assert!(e.keys().all(|i| *i < inst));
        }
        std::mem::forget(db);
    }
}

/// `cargo test --release -p dosi-tsdb --test checkpoint_concurrency -- --ignored --nocapture`
#[test]
#[ignore]
fn append_latency_during_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Tsdb::open(Config::new(dir.path())).unwrap());
    let n_series = 100_000u64;
    let ids: Vec<u64> = (0..n_series)
        .map(|i| db.ensure_series(format!("urn:ngsi-ld:S:{i}/temperature").as_bytes()))
        .collect();
    for round in 0..3 {
        for i in 0..20u64 {
            for s in &ids {
                db.append(*s, pt(*s, round * 20 + i, 0));
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let w = {
            let db = db.clone();
            let stop = stop.clone();
            let ids = ids.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let s = ids[(i * 7919 % n_series) as usize];
                    let t = Instant::now();
                    db.append(s, pt(s, 1_000_000 + i, 0));
                    lat.push(t.elapsed());
                    i += 1;
                    if i.is_multiple_of(64) {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
                lat
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        db.checkpoint_blocking().unwrap();
        let ck = t.elapsed();
        std::thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::Relaxed);
        let mut lat = w.join().unwrap();
        lat.sort();
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
        println!(
            "round {round}: checkpoint of {n_series} series x 20 points: {ck:?}; \
             {} appends meanwhile: p50 {:?} p99 {:?} p99.9 {:?} max {:?}",
            lat.len(),
            p(0.5),
            p(0.99),
            p(0.999),
            lat.last().unwrap()
        );
    }
}
