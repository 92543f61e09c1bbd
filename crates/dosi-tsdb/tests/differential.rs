//! Differential tests: random operation sequences applied to the engine and
//! to the naive reference model must give the same answers.

use std::sync::Arc;

use dosi_tsdb::{reference, Bucket, Config, NewPoint, Order, Range, TimeField, Tsdb, Value};
use proptest::prelude::*;

const KEYS: [&[u8]; 4] = [b"a", b"ab", b"abc", b"b"];
const DOCS: [&[u8]; 3] = [b"{}", b"{\"x\":1}", b"a somewhat longer document"];
const WIDTHS: [i64; 3] = [10, 100, 1000];

#[derive(Debug, Clone)]
enum Op {
    Ensure(usize),
    Append(usize, NewPoint),
    /// Instance picked as `nth` among the instances appended so far.
    Delete(usize, usize),
    Replace(usize, usize, NewPoint),
    DeleteSeries(usize),
    DropBefore(usize, i64, Option<i64>),
    Meta(u8, Option<u8>),
    Checkpoint,
    Reopen,
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (-2000i64..2000).prop_map(|m| Value::Num(m as f64 / 10.0)),
        2 => (-1.0e6f64..1.0e6).prop_map(Value::Num),
        2 => (0..DOCS.len()).prop_map(|i| Value::Doc(Arc::from(DOCS[i]))),
        1 => Just(Value::Deleted),
    ]
}

fn point() -> impl Strategy<Value = NewPoint> {
    (
        -200i64..3000,
        prop_oneof![
            Just(None),
            (-20i64..20).prop_map(Some),
            (0i64..3000).prop_map(|o| Some(o + 1_000_000))
        ],
        prop_oneof![3 => Just(0u32), 1 => 0u32..3],
        value(),
    )
        .prop_map(|(recorded, obs, tpl, value)| NewPoint {
            recorded,
            observed: obs.map(|o| {
                if o > 100_000 {
                    o - 1_000_000
                } else {
                    recorded + o
                }
            }),
            tpl,
            value,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS.len();
    prop_oneof![
        2 => k.clone().prop_map(Op::Ensure),
        12 => (k.clone(), point()).prop_map(|(s, p)| Op::Append(s, p)),
        2 => (k.clone(), 0usize..64).prop_map(|(s, i)| Op::Delete(s, i)),
        2 => (k.clone(), 0usize..64, point()).prop_map(|(s, i, p)| Op::Replace(s, i, p)),
        1 => k.clone().prop_map(Op::DeleteSeries),
        1 => (k.clone(), -100i64..3000, prop_oneof![Just(None), (0..WIDTHS.len()).prop_map(|i| Some(WIDTHS[i]))])
            .prop_map(|(s, t, g)| Op::DropBefore(s, t, g)),
        1 => (0u8..4, prop_oneof![Just(None), (0u8..4).prop_map(Some)]).prop_map(|(k, v)| Op::Meta(k, v)),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same_buckets(a: &[Bucket], b: &[Bucket]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.start == y.start
                && x.count == y.count
                && x.distinct == y.distinct
                && x.num == y.num
                && close(x.sum, y.sum)
                && close(x.sumsq, y.sumsq)
                && x.min == y.min
                && x.max == y.max
        })
}

fn ranges() -> Vec<Range> {
    let mut v = vec![Range::ALL];
    for field in [TimeField::Recorded, TimeField::Observed] {
        for (from, to) in [
            (None, None),
            (Some(0), Some(1000)),
            (Some(-50), None),
            (None, Some(2500)),
            (Some(1000), Some(1000)),
            (Some(90), Some(2010)),
        ] {
            v.push(Range { field, from, to });
        }
    }
    v
}

fn check(db: &Tsdb, r: &reference::Tsdb, instances: &[Vec<u64>]) -> Result<(), TestCaseError> {
    prop_assert_eq!(db.series_by_prefix(b""), r.series_by_prefix(b""));
    prop_assert_eq!(db.series_by_prefix(b"ab"), r.series_by_prefix(b"ab"));
    prop_assert_eq!(db.meta_by_prefix(b""), r.meta_by_prefix(b""));
    prop_assert_eq!(db.meta_by_prefix(b"m1"), r.meta_by_prefix(b"m1"));
    prop_assert_eq!(db.stats().series, r.stats().series);
    prop_assert_eq!(db.stats().points, r.stats().points);
    for (k, insts) in KEYS.iter().zip(instances) {
        let (Some(s), rs) = (db.series_id(k), r.series_id(k)) else {
            prop_assert_eq!(None, r.series_id(k));
            continue;
        };
        prop_assert_eq!(Some(s), rs);
        for i in insts.iter().copied().chain([0, 1000]) {
            prop_assert_eq!(
                db.get_instance(s, i),
                r.get_instance(s, i),
                "instance {}",
                i
            );
        }
        for range in ranges() {
            prop_assert_eq!(db.count(s, &range), r.count(s, &range), "count {:?}", range);
            for order in [Order::Asc, Order::Desc] {
                for limit in [1usize, 3, 50, usize::MAX] {
                    prop_assert_eq!(
                        db.scan(s, &range, order, limit),
                        r.scan(s, &range, order, limit),
                        "scan {:?} {:?} {}",
                        range,
                        order,
                        limit
                    );
                }
            }
            for (origin, period) in [
                (0, 0),
                (0, 100),
                (-1000, 1000),
                (7, 37),
                (0, 10),
                (100, 200),
            ] {
                for need in [true, false] {
                    let a = db.aggregate_with(s, &range, origin, period, need);
                    let b = r.aggregate_with(s, &range, origin, period, need);
                    prop_assert!(
                        same_buckets(&a, &b),
                        "aggregate {:?} {} {} {}\n{:?}\n{:?}",
                        range,
                        origin,
                        period,
                        need,
                        a,
                        b
                    );
                }
            }
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = || {
        let mut c = Config::new(dir.path());
        c.fsync = false;
        c.partition = 100;
        c
    };
    rt.block_on(async {
        let mut db = Tsdb::open(cfg()).unwrap();
        let r = reference::Tsdb::open(cfg()).unwrap();
        let mut instances: Vec<Vec<u64>> = vec![Vec::new(); KEYS.len()];
        for op in ops {
            match op {
                Op::Ensure(k) => {
                    prop_assert_eq!(db.ensure_series(KEYS[k]), r.ensure_series(KEYS[k]));
                }
                Op::Append(k, p) => {
                    let s = r.series_id(KEYS[k]).unwrap_or(999);
                    let i = r.append(s, p.clone());
                    prop_assert_eq!(db.append(s, p), i);
                    if i > 0 {
                        instances[k].push(i);
                    }
                }
                Op::Delete(k, n) => {
                    let s = r.series_id(KEYS[k]).unwrap_or(999);
                    let i = instances[k].get(n).copied().unwrap_or(n as u64);
                    prop_assert_eq!(db.delete_instance(s, i), r.delete_instance(s, i));
                }
                Op::Replace(k, n, p) => {
                    let s = r.series_id(KEYS[k]).unwrap_or(999);
                    let i = instances[k].get(n).copied().unwrap_or(n as u64);
                    prop_assert_eq!(
                        db.replace_instance(s, i, p.clone()),
                        r.replace_instance(s, i, p)
                    );
                }
                Op::DeleteSeries(k) => {
                    let s = r.series_id(KEYS[k]).unwrap_or(999);
                    prop_assert_eq!(db.delete_series(s), r.delete_series(s));
                }
                Op::DropBefore(k, t, g) => {
                    let s = r.series_id(KEYS[k]).unwrap_or(999);
                    prop_assert_eq!(
                        db.drop_before(s, t, g).await.unwrap(),
                        r.drop_before(s, t, g).await.unwrap()
                    );
                }
                Op::Meta(k, v) => {
                    let key = [b'm', b'0' + k];
                    let val = v.map(|v| vec![v; v as usize]);
                    db.put_meta(&key, val.as_deref());
                    r.put_meta(&key, val.as_deref());
                }
                Op::Checkpoint => db.checkpoint().await.unwrap(),
                Op::Reopen => {
                    db.sync().await.unwrap();
                    drop(db);
                    db = Tsdb::open(cfg()).unwrap();
                }
            }
        }
        check(&db, &r, &instances)?;
        // And once more after a final reopen.
        db.sync().await.unwrap();
        drop(db);
        let db = Tsdb::open(cfg()).unwrap();
        check(&db, &r, &instances)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_reference(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops)?;
    }
}
