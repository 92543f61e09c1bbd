//! Crash recovery: synced data survives a process that never shut down; a
//! torn log tail is cut; bad files are `Corrupt`, not a panic.

use std::path::Path;

use dosi_tsdb::{Config, Error, NewPoint, Order, Range, Tsdb, Value};

fn cfg(dir: &Path) -> Config {
    Config::new(dir)
}

fn pt(i: i64) -> NewPoint {
    NewPoint {
        recorded: 1_700_000_000_000_000 + i * 60_000_000,
        observed: (i % 3 == 0).then_some(1_700_000_000_000_000 + i),
        tpl: (i % 2) as u32,
        value: Value::Num(i as f64 / 10.0),
    }
}

/// A copy of the directory as a crash would leave it (whatever was written).
fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn wal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn synced_points_survive_a_crash_with_their_instance_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let s = db.ensure_series(b"urn:ngsi-ld:Sensor:1/temperature");
    let mut want = Vec::new();
    for i in 0..1000 {
        want.push((db.append(s, pt(i)), pt(i)));
    }
    db.put_meta(b"m", Some(b"v"));
    assert!(db.delete_instance(s, 5));
    db.sync().await.unwrap();

    // A crash: no shutdown, and the directory as it is now.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    std::mem::forget(db);

    let db = Tsdb::open(cfg(crashed.path())).unwrap();
    assert_eq!(db.series_id(b"urn:ngsi-ld:Sensor:1/temperature"), Some(s));
    assert_eq!(db.get_meta(b"m").as_deref(), Some(&b"v"[..]));
    let got = db.scan(s, &Range::ALL, Order::Asc, usize::MAX);
    assert_eq!(got.len(), 999);
    for (p, (inst, np)) in got.iter().zip(want.iter().filter(|(i, _)| *i != 5)) {
        assert_eq!(p.instance, *inst);
        assert_eq!(
            (p.recorded, p.observed, p.tpl, &p.value),
            (np.recorded, np.observed, np.tpl, &np.value)
        );
    }
    // New instances continue after the old ones.
    assert_eq!(db.append(s, pt(2000)), 1001);
}

#[tokio::test]
async fn a_crash_after_a_checkpoint_keeps_sealed_and_logged_points() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let s = db.ensure_series(b"s");
    for i in 0..3000 {
        db.append(s, pt(i));
    }
    db.checkpoint().await.unwrap();
    for i in 3000..3500 {
        db.append(s, pt(i));
    }
    assert!(db.delete_instance(s, 10)); // sealed
    assert!(db.replace_instance(s, 11, pt(-1))); // sealed, moves
    db.sync().await.unwrap();
    let before = db.scan(s, &Range::ALL, Order::Asc, usize::MAX);
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    std::mem::forget(db);

    let db = Tsdb::open(cfg(crashed.path())).unwrap();
    assert_eq!(db.scan(s, &Range::ALL, Order::Asc, usize::MAX), before);
    assert!(db.stats().sealed_points > 0);
}

#[tokio::test]
async fn a_torn_log_tail_is_cut_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Tsdb::open(cfg(dir.path())).unwrap();
        let s = db.ensure_series(b"s");
        for i in 0..100 {
            db.append(s, pt(i));
        }
        db.sync().await.unwrap();
    }
    let wal = wal_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);

    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let s = db.series_id(b"s").unwrap();
    let got = db.scan(s, &Range::ALL, Order::Asc, usize::MAX);
    assert_eq!(got.len(), 99);
    assert_eq!(got.last().unwrap().instance, 99);
    // The cut is permanent: more appends and another reopen are fine.
    db.append(s, pt(500));
    db.sync().await.unwrap();
    drop(db);
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    assert_eq!(db.count(s, &Range::ALL), 100);
}

#[tokio::test]
async fn a_flipped_byte_in_the_log_cuts_from_that_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Tsdb::open(cfg(dir.path())).unwrap();
        let s = db.ensure_series(b"s");
        for i in 0..100 {
            db.append(s, pt(i));
        }
        db.sync().await.unwrap();
    }
    let wal = wal_files(dir.path()).pop().unwrap();
    let mut b = std::fs::read(&wal).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x40;
    std::fs::write(&wal, &b).unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let s = db.series_id(b"s").unwrap();
    let n = db.count(s, &Range::ALL);
    assert!(n > 30 && n < 60, "{n}");
}

#[tokio::test]
async fn bad_catalog_or_segment_is_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Tsdb::open(cfg(dir.path())).unwrap();
        let s = db.ensure_series(b"s");
        for i in 0..100 {
            db.append(s, pt(i));
        }
        db.checkpoint().await.unwrap();
    }
    let cat = dir.path().join("catalog");
    let good = std::fs::read(&cat).unwrap();
    for cut in [0, 5, good.len() / 2, good.len() - 1] {
        std::fs::write(&cat, &good[..cut]).unwrap();
        assert!(
            matches!(Tsdb::open(cfg(dir.path())), Err(Error::Corrupt(_))),
            "cut {cut}"
        );
    }
    let mut bad = good.clone();
    bad[10] ^= 1;
    std::fs::write(&cat, &bad).unwrap();
    assert!(matches!(
        Tsdb::open(cfg(dir.path())),
        Err(Error::Corrupt(_))
    ));
    std::fs::write(&cat, &good).unwrap();

    // A damaged chunk: open works, reads skip it (and log), nothing panics.
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "dat"))
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let at = b.len() - 10;
    b[at] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let s = db.series_id(b"s").unwrap();
    assert!(db.scan(s, &Range::ALL, Order::Asc, 10).is_empty());
    assert!(db.aggregate(s, &Range::ALL, 0, 0).is_empty());

    // A missing segment is corrupt.
    std::fs::remove_file(&seg).unwrap();
    assert!(matches!(
        Tsdb::open(cfg(dir.path())),
        Err(Error::Corrupt(_))
    ));
}

#[tokio::test]
async fn concurrent_syncs_share_fsyncs_and_all_return() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Tsdb::open(cfg(dir.path())).unwrap());
    let s = db.ensure_series(b"s");
    let mut tasks = Vec::new();
    for t in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                db.append(s, pt(t * 1000 + i));
                db.sync().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(db.count(s, &Range::ALL), 400);
}

#[tokio::test]
async fn the_background_task_checkpoints_when_the_log_is_big() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Tsdb::open(cfg(dir.path())).unwrap());
    let task = db.spawn_maintenance_with(dosi_tsdb::Maintenance {
        wal_bytes: 10_000,
        interval: std::time::Duration::from_secs(3600),
        check_every: std::time::Duration::from_millis(10),
    });
    let s = db.ensure_series(b"s");
    for i in 0..1000 {
        db.append(s, pt(i));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while db.stats().sealed_points < 1000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint: {:?}",
            db.stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(db.stats().wal_bytes < 10_000);
    drop(db);
    // The task ends with the database.
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    assert_eq!(db.count(s, &Range::ALL), 1000);
}
