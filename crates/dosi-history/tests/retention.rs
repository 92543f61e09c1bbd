//! Retention: `apply_retention(now)` drops exactly the raw instances of
//! the matching series recorded before `now − keepRaw`, and with a rollup
//! the aggregates over the dropped range stay what they were.

use std::sync::Arc;

use dosi_history::{
    AggSpec, History, HistoryConfig, NewInstance, ReadSpec, RetentionPolicy, TimeProp,
};
use dosi_ngsi::model::Iri;
use dosi_ngsi::{Attribute, EntityId, TenantId, Timestamp};
use serde_json::json;

/// 2024-01-01T00:00:00Z in µs (a multiple of every rollup used here).
const BASE: i64 = 1_704_067_200_000_000;
const SEC: i64 = 1_000_000;
const TYPE_A: &str = "urn:type:A";
const TYPE_B: &str = "urn:type:B";
const TEMP: &str = "urn:attr:temp";
const HUM: &str = "urn:attr:hum";

fn open(dir: &std::path::Path) -> Arc<History> {
    let mut cfg = HistoryConfig::new(dir);
    cfg.fsync = false;
    History::open(cfg).unwrap()
}

fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap()
}

/// Records one instance of each attribute of `attrs` at `recorded` (also
/// its observedAt), with value `v`.
async fn put(h: &History, e: &EntityId, ty: &str, attrs: &[&str], recorded: i64, v: f64) {
    let list = attrs
        .iter()
        .map(|a| {
            let mut attr = Attribute::property(json!(v), Timestamp(recorded));
            attr.observed_at = Some(Timestamp(recorded).to_iso());
            NewInstance {
                name: Iri::from(*a),
                attr,
                deleted: false,
            }
        })
        .collect();
    h.upsert_at(
        &TenantId::default_tenant(),
        e,
        &[Iri::from(ty)],
        None,
        list,
        Timestamp(recorded),
    )
    .await
    .unwrap();
}

/// Recorded times of the instances of `attr` of `e`.
fn recorded(h: &History, e: &EntityId, attr: &str) -> Vec<i64> {
    let spec = ReadSpec {
        attrs: Some(vec![Iri::from(attr)]),
        timeprop: TimeProp::CreatedAt,
        ..ReadSpec::default()
    };
    h.read(&TenantId::default_tenant(), e, &spec, usize::MAX)
        .map(|t| {
            t.attrs
                .values()
                .flatten()
                .map(|i| i.time.unwrap().0)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn retention_drops_exactly_the_old_instances_of_matching_series() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let (e1, e2) = (id("urn:ngsi-ld:A:1"), id("urn:ngsi-ld:B:1"));
    // Every 10 minutes for two hours.
    let times: Vec<i64> = (0..12).map(|k| BASE + k * 600 * SEC).collect();
    for (k, t) in times.iter().enumerate() {
        put(&h, &e1, TYPE_A, &[TEMP, HUM], *t, k as f64).await;
        put(&h, &e2, TYPE_B, &[TEMP], *t, k as f64).await;
    }
    h.set_retention_policies(vec![
        // Matches e1.temp only.
        RetentionPolicy {
            entity_type: Some(TYPE_A.into()),
            attribute: Some(TEMP.into()),
            keep_raw_secs: 3600,
            rollup_secs: None,
        },
        // Matches e1.hum, keeps everything recorded in the last 3 hours.
        RetentionPolicy {
            entity_type: None,
            attribute: Some(HUM.into()),
            keep_raw_secs: 3 * 3600,
            rollup_secs: None,
        },
        // Matches nothing.
        RetentionPolicy {
            entity_type: Some("urn:type:C".into()),
            attribute: None,
            keep_raw_secs: 1,
            rollup_secs: None,
        },
    ])
    .await
    .unwrap();
    let now = Timestamp(BASE + 2 * 3600 * SEC);
    let dropped = h.apply_retention(now).await.unwrap();
    // Cut at BASE + 1h: instances 0..=5 go, the one at the cut stays.
    assert_eq!(dropped, 6);
    assert_eq!(recorded(&h, &e1, TEMP), times[6..].to_vec());
    assert_eq!(recorded(&h, &e1, HUM), times);
    assert_eq!(recorded(&h, &e2, TEMP), times);
    // Idempotent.
    assert_eq!(h.apply_retention(now).await.unwrap(), 0);
    // Policies survive a reopen, and so does the effect.
    drop(h);
    let h = open(dir.path());
    assert_eq!(h.retention_policies().len(), 3);
    assert_eq!(recorded(&h, &e1, TEMP), times[6..].to_vec());
    assert_eq!(recorded(&h, &e2, TEMP), times);
    // Later, more goes.
    let dropped = h
        .apply_retention(Timestamp(now.0 + 1800 * SEC))
        .await
        .unwrap();
    assert_eq!(dropped, 3);
    assert_eq!(recorded(&h, &e1, TEMP), times[9..].to_vec());
}

/// (start, count, sum, min, max) per bucket.
type Row = (i64, u64, f64, Option<f64>, Option<f64>);

fn agg(h: &History, e: &EntityId, from: i64, to: i64, period: Option<i64>) -> Vec<Row> {
    let spec = AggSpec {
        attrs: Some(vec![Iri::from(TEMP)]),
        timeprop: TimeProp::CreatedAt,
        from: Some(Timestamp(from)),
        to: Some(Timestamp(to)),
        period,
        ..AggSpec::default()
    };
    let a = h.aggregate(&TenantId::default_tenant(), e, &spec).unwrap();
    a.attrs[TEMP]
        .iter()
        .flat_map(|x| x.buckets.iter())
        .map(|b| (b.start, b.count, b.sum, b.min, b.max))
        .collect()
}

#[tokio::test]
async fn rollups_keep_aggregates_of_what_retention_drops() {
    for checkpoint in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        let e = id("urn:ngsi-ld:A:1");
        // Every 150 s for two hours, values that are not all integers.
        for k in 0..48i64 {
            let v = (k as f64) * 1.5 - 20.0 + if k % 7 == 0 { 0.25 } else { 0.0 };
            put(&h, &e, TYPE_A, &[TEMP], BASE + k * 150 * SEC, v).await;
        }
        if checkpoint {
            h.engine().checkpoint().await.unwrap();
        }
        let end = BASE + 2 * 3600 * SEC;
        let cut = BASE + 3600 * SEC;
        // Periods that are multiples of the 10-minute rollup, over the
        // dropped range, over everything, and as one period.
        let queries = [
            (BASE, cut, Some(600 * SEC)),
            (BASE, cut, Some(1800 * SEC)),
            (BASE, end, Some(3600 * SEC)),
            (BASE, end, None),
            (BASE, cut, None),
        ];
        let before: Vec<Vec<Row>> = queries
            .iter()
            .map(|(f, t, p)| agg(&h, &e, *f, *t, *p))
            .collect();
        h.set_retention_policies(vec![RetentionPolicy {
            entity_type: None,
            attribute: Some(TEMP.into()),
            keep_raw_secs: 3600,
            rollup_secs: Some(600),
        }])
        .await
        .unwrap();
        let dropped = h.apply_retention(Timestamp(end)).await.unwrap();
        assert_eq!(dropped, 24, "checkpoint {checkpoint}");
        assert_eq!(
            recorded(&h, &e, TEMP),
            (24..48).map(|k| BASE + k * 150 * SEC).collect::<Vec<_>>()
        );
        for (q, want) in queries.iter().zip(&before) {
            let got = agg(&h, &e, q.0, q.1, q.2);
            assert_eq!(got.len(), want.len(), "{q:?} checkpoint {checkpoint}");
            for (g, w) in got.iter().zip(want) {
                assert_eq!((g.0, g.1, g.3, g.4), (w.0, w.1, w.3, w.4), "{q:?}");
                assert!((g.2 - w.2).abs() < 1e-9, "{q:?}: {g:?} vs {w:?}");
            }
        }
        // The rollups survive a reopen.
        drop(h);
        let h = open(dir.path());
        for (q, want) in queries.iter().zip(&before) {
            let got = agg(&h, &e, q.0, q.1, q.2);
            assert_eq!(
                got.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(),
                want.iter().map(|w| (w.0, w.1)).collect::<Vec<_>>(),
                "after reopen {q:?} checkpoint {checkpoint}"
            );
        }
    }
}
