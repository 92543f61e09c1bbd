//! Property tests: whatever instances are recorded through
//! [`History::upsert`], [`History::aggregate`] (every method, any window and
//! period) and [`History::read`] (any window, `lastN`) answer what a
//! straightforward computation over the same inputs gives.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use dosi_history::{AggSpec, History, HistoryConfig, NewInstance, ReadSpec, TimeProp};
use dosi_ngsi::model::Iri;
use dosi_ngsi::temporal::{aggregate_value, AggrMethod};
use dosi_ngsi::{Attribute, EntityId, TenantId, Timestamp};
use proptest::prelude::*;
use serde_json::{json, Value};

const ATTRS: [&str; 3] = ["urn:a", "urn:b", "urn:c"];
const DATASETS: [Option<&str>; 2] = [None, Some("urn:ds:1")];
/// 2024-01-01T00:00:00Z in µs.
const BASE: i64 = 1_704_067_200_000_000;
const SEC: i64 = 1_000_000;
const SPAN: i64 = 3 * 86_400 * SEC;

#[derive(Debug, Clone, PartialEq)]
enum V {
    Int(i64),
    Float(f64),
    Str(&'static str),
}

impl V {
    fn json(&self) -> Value {
        match self {
            V::Int(i) => json!(i),
            V::Float(x) => json!(x),
            V::Str(s) => json!(s),
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            V::Int(i) => Some(*i as f64),
            V::Float(x) => Some(*x),
            V::Str(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
struct In {
    attr: usize,
    ds: usize,
    /// observedAt, µs.
    t: i64,
    v: V,
}

fn value() -> impl Strategy<Value = V> {
    prop_oneof![
        4 => (-1000i64..1000).prop_map(V::Int),
        // Hundredths, so that the printed float reads back the same.
        4 => (-100_000i64..100_000).prop_map(|x| V::Float(x as f64 / 100.0)),
        // Few distinct values, so that equal values repeat.
        1 => (-3i64..3).prop_map(V::Int),
        2 => prop::sample::select(vec!["low", "high", "unknown"]).prop_map(V::Str),
    ]
}

fn instance() -> impl Strategy<Value = In> {
    (
        0..ATTRS.len(),
        0..DATASETS.len(),
        0..SPAN / SEC,
        prop_oneof![3 => Just(0i64), 1 => 0i64..1000],
        value(),
    )
        .prop_map(|(attr, ds, s, ms, v)| In {
            attr,
            ds,
            t: BASE + s * SEC + ms * 1000,
            v,
        })
}

fn spell(t: i64) -> String {
    let d = DateTime::<Utc>::from_timestamp_micros(t).unwrap();
    let f = if t % SEC == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Millis
    };
    d.to_rfc3339_opts(f, true)
}

/// A window inside (or slightly around) the data: `(from, to)`, µs.
fn window() -> impl Strategy<Value = (Option<i64>, Option<i64>)> {
    let t = || prop::option::weighted(0.7, -SPAN / 10..SPAN + SPAN / 10);
    (t(), t()).prop_map(|(a, b)| match (a, b) {
        (Some(a), Some(b)) if a == b => (Some(BASE + a), None),
        (Some(a), Some(b)) => (Some(BASE + a.min(b)), Some(BASE + a.max(b))),
        (a, b) => (a.map(|x| BASE + x), b.map(|x| BASE + x)),
    })
}

/// Periods from PT1M to P1D, or none (the whole window).
fn period() -> impl Strategy<Value = Option<i64>> {
    prop::option::weighted(
        0.8,
        prop::sample::select(vec![60, 300, 3600, 6 * 3600, 86_400]).prop_map(|s| s * SEC),
    )
}

/// The series as recorded: per (attr, dataset), observedAt → value; a later
/// instance with the same observedAt replaces the earlier one.
type Model = BTreeMap<(usize, usize), BTreeMap<i64, V>>;

fn model(batches: &[Vec<In>]) -> Model {
    let mut m = Model::new();
    for i in batches.iter().flatten() {
        m.entry((i.attr, i.ds))
            .or_default()
            .insert(i.t, i.v.clone());
    }
    m
}

fn in_window(t: i64, from: Option<i64>, to: Option<i64>) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|u| t < u)
}

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(1.0)
}

/// Reference values of one bucket, per method.
fn reference(values: &[&V], method: AggrMethod) -> Option<f64> {
    let nums: Vec<f64> = values.iter().filter_map(|v| v.num()).collect();
    let n = nums.len() as f64;
    let sum: f64 = nums.iter().sum();
    match method {
        AggrMethod::TotalCount => Some(values.len() as f64),
        AggrMethod::DistinctCount => {
            let distinct: HashSet<String> = values
                .iter()
                .map(|v| match v.num() {
                    Some(x) => format!("n{}", x.to_bits()),
                    None => format!("s{}", v.json()),
                })
                .collect();
            Some(distinct.len() as f64)
        }
        _ if nums.is_empty() => None,
        AggrMethod::Sum => Some(sum),
        AggrMethod::Avg => Some(sum / n),
        AggrMethod::Min => nums.iter().copied().reduce(f64::min),
        AggrMethod::Max => nums.iter().copied().reduce(f64::max),
        AggrMethod::Sumsq => Some(nums.iter().map(|x| x * x).sum()),
        // Sample standard deviation (n − 1), as aggregate_value computes it.
        AggrMethod::Stddev if nums.len() < 2 => None,
        AggrMethod::Stddev => {
            let mean = sum / n;
            let var = nums.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
            Some(var.sqrt())
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    h: std::sync::Arc<History>,
    tenant: TenantId,
    id: EntityId,
}

async fn record(batches: &[Vec<In>], checkpoints: &[bool]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = HistoryConfig::new(dir.path());
    cfg.fsync = false;
    let h = History::open(cfg).unwrap();
    let tenant = TenantId::default_tenant();
    let id = EntityId::parse("urn:ngsi-ld:T:1").unwrap();
    for (n, batch) in batches.iter().enumerate() {
        let list = batch
            .iter()
            .map(|i| {
                let mut a = Attribute::property(i.v.json(), Timestamp::now());
                a.observed_at = Some(spell(i.t));
                a.dataset_id = DATASETS[i.ds].map(Iri::from);
                NewInstance {
                    name: Iri::from(ATTRS[i.attr]),
                    attr: a,
                    deleted: false,
                }
            })
            .collect();
        h.upsert(&tenant, &id, &[Iri::from("urn:T")], None, list)
            .await
            .unwrap();
        if checkpoints.get(n).copied().unwrap_or(false) {
            h.engine().checkpoint().await.unwrap();
        }
    }
    Fixture {
        _dir: dir,
        h,
        tenant,
        id,
    }
}

#[derive(Debug, Clone)]
struct AggQuery {
    window: (Option<i64>, Option<i64>),
    period: Option<i64>,
    attrs: Option<Vec<usize>>,
    distinct: bool,
}

fn agg_query() -> impl Strategy<Value = AggQuery> {
    (
        window(),
        period(),
        prop::option::weighted(0.3, prop::sample::subsequence(vec![0usize, 1, 2], 1..=2)),
        prop::bool::weighted(0.7),
    )
        .prop_map(|(window, period, attrs, distinct)| AggQuery {
            window,
            period,
            attrs,
            distinct,
        })
}

fn check_aggregate(f: &Fixture, m: &Model, q: &AggQuery) -> Result<(), TestCaseError> {
    let (from, to) = q.window;
    let chosen = |a: usize| q.attrs.as_ref().is_none_or(|l| l.contains(&a));
    let spec = AggSpec {
        attrs: q
            .attrs
            .as_ref()
            .map(|l| l.iter().map(|a| Iri::from(ATTRS[*a])).collect()),
        datasets: None,
        timeprop: TimeProp::ObservedAt,
        from: from.map(Timestamp),
        to: to.map(Timestamp),
        period: q.period,
        distinct: q.distinct,
    };
    let got = f.h.aggregate(&f.tenant, &f.id, &spec).unwrap();
    // Periods start at `from`, else at the first instance in the window
    // among the attributes asked for.
    let origin = from.or_else(|| {
        m.iter()
            .filter(|((a, _), _)| chosen(*a))
            .flat_map(|(_, s)| s.keys().copied().filter(|t| in_window(*t, from, to)))
            .min()
    });
    for ((a, ds), series) in m.iter().filter(|((a, _), _)| chosen(*a)) {
        let list = got
            .attrs
            .get(ATTRS[*a])
            .ok_or_else(|| TestCaseError::fail(format!("{} missing", ATTRS[*a])))?;
        let agg = list
            .iter()
            .find(|x| x.dataset_id.as_deref() == DATASETS[*ds])
            .ok_or_else(|| {
                TestCaseError::fail(format!("{} {:?} missing", ATTRS[*a], DATASETS[*ds]))
            })?;
        let mut want: BTreeMap<i64, Vec<&V>> = BTreeMap::new();
        for (t, v) in series.iter().filter(|(t, _)| in_window(**t, from, to)) {
            let o = origin.expect("an instance in the window sets the origin");
            let start = match q.period {
                Some(p) => o + (t - o).div_euclid(p) * p,
                None => o,
            };
            want.entry(start).or_default().push(v);
        }
        let starts: Vec<i64> = agg.buckets.iter().map(|b| b.start).collect();
        prop_assert_eq!(
            &starts,
            &want.keys().copied().collect::<Vec<_>>(),
            "bucket starts of {} {:?}",
            ATTRS[*a],
            DATASETS[*ds]
        );
        if let Some(p) = q.period {
            prop_assert_eq!(agg.period, p);
        }
        for (b, (_, values)) in agg.buckets.iter().zip(&want) {
            let scale: f64 = values.iter().filter_map(|v| v.num()).map(f64::abs).sum();
            for m in AggrMethod::ALL {
                if m == AggrMethod::DistinctCount && !q.distinct {
                    prop_assert_eq!(b.distinct, None);
                    continue;
                }
                let g =
                    aggregate_value(m, b.count, b.distinct, b.num, b.sum, b.sumsq, b.min, b.max);
                let w = reference(values, m);
                let ok = match (g, w) {
                    (Some(g), Some(w)) if m == AggrMethod::Stddev => {
                        // Compared as variances: aggregate_value works from
                        // the sum of squares, which loses digits.
                        close(g * g, w * w, scale * scale)
                    }
                    (Some(g), Some(w)) if m == AggrMethod::Sumsq => close(g, w, scale * scale),
                    (Some(g), Some(w)) => close(g, w, scale),
                    (g, w) => g == w,
                };
                prop_assert!(
                    ok,
                    "{} of {} {:?} in bucket {}: got {:?}, want {:?} (values {:?}, query {:?})",
                    m.name(),
                    ATTRS[*a],
                    DATASETS[*ds],
                    b.start,
                    g,
                    w,
                    values,
                    q
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct ReadQuery {
    window: (Option<i64>, Option<i64>),
    last_n: Option<usize>,
}

fn read_query() -> impl Strategy<Value = ReadQuery> {
    (window(), prop::option::weighted(0.4, 1usize..6))
        .prop_map(|(window, last_n)| ReadQuery { window, last_n })
}

fn check_read(f: &Fixture, m: &Model, q: &ReadQuery) -> Result<(), TestCaseError> {
    let (from, to) = q.window;
    let spec = ReadSpec {
        from: from.map(Timestamp),
        to: to.map(Timestamp),
        last_n: q.last_n,
        ..ReadSpec::default()
    };
    let got = f.h.read(&f.tenant, &f.id, &spec, usize::MAX).unwrap();
    // (dataset, observedAt, value) per attribute.
    type Row = (Option<String>, String, Value);
    let mut want: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for ((a, ds), series) in m {
        let mut rows: Vec<(&i64, &V)> = series
            .iter()
            .filter(|(t, _)| in_window(**t, from, to))
            .collect();
        if let Some(n) = q.last_n {
            rows = rows.split_off(rows.len().saturating_sub(n));
        }
        for (t, v) in rows {
            want.entry(ATTRS[*a].to_string()).or_default().push((
                DATASETS[*ds].map(String::from),
                spell(*t),
                v.json(),
            ));
        }
    }
    let mut have: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (name, list) in &got.attrs {
        let times: Vec<_> = list.iter().map(|i| i.time).collect();
        prop_assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{} not in time order: {:?}",
            name,
            times
        );
        for i in list {
            prop_assert!(i.deleted_at.is_none());
            have.entry(name.to_string()).or_default().push((
                i.attr.dataset_id.as_deref().map(String::from),
                i.attr.observed_at.clone().unwrap_or_default(),
                i.attr.value.clone(),
            ));
        }
    }
    let norm = |m: &mut BTreeMap<String, Vec<Row>>| {
        for rows in m.values_mut() {
            for r in rows.iter_mut() {
                // 2.0 and 2 are the same number.
                if let Some(x) = r.2.as_f64() {
                    r.2 = json!(x);
                }
            }
            rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        }
    };
    norm(&mut want);
    norm(&mut have);
    prop_assert_eq!(have, want, "query {:?}", q);
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn aggregate_and_read_match_reference(
        batches in prop::collection::vec(prop::collection::vec(instance(), 0..60), 1..4),
        checkpoints in prop::collection::vec(any::<bool>(), 3),
        aggs in prop::collection::vec(agg_query(), 6),
        reads in prop::collection::vec(read_query(), 6),
    ) {
        let rt = runtime();
        let f = rt.block_on(record(&batches, &checkpoints));
        let m = model(&batches);
        for q in &aggs {
            check_aggregate(&f, &m, q)?;
        }
        for q in &reads {
            check_read(&f, &m, q)?;
        }
    }
}
