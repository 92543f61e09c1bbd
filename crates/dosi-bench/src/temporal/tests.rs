use std::collections::{BTreeMap, BTreeSet};

use clap::Parser;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::Scenario;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn parse(line: &str) -> Result<TemporalArgs, String> {
    let cli = Cli::try_parse_from(
        ["bench", "temporal"]
            .into_iter()
            .chain(line.split_whitespace()),
    )
    .map_err(|e| e.to_string())?;
    match cli.bench.scenario {
        Scenario::Temporal(t) => Ok(*t),
        other => Err(format!("not temporal: {other:?}")),
    }
}

fn mode(line: &str) -> Mode {
    parse(line)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .resolve()
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn target() -> Target {
    Target::parse("http://127.0.0.1:1026/pre", false).expect("valid")
}

const JAN_1: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

#[test]
fn modes_and_their_defaults() {
    assert_eq!(
        mode("--ingest"),
        Mode::Ingest(Ingest {
            entities: 10_000,
            batch: 500,
            attrs: 12
        })
    );
    assert_eq!(
        mode("--ingest --entities 100 --batch 500 --attrs 3"),
        Mode::Ingest(Ingest {
            entities: 100,
            batch: 100,
            attrs: 3
        })
    );
    assert_eq!(
        mode("--seed-days 30"),
        Mode::Seed(Seed {
            entities: 1,
            days: 30,
            points_per_day: 1440,
            points_per_request: 1440,
            attrs: 1,
            from_us: JAN_1,
        })
    );
    let Mode::Query(q) = mode("--query agg-one") else {
        panic!("a query")
    };
    assert_eq!(
        (q.kind, q.entities, q.days, q.requests),
        (QueryKind::AggOne, 1, 30, 100)
    );
    assert_eq!(
        (q.methods.as_str(), q.period.as_str(), q.attr.as_str()),
        ("avg,min,max", "PT1H", "pm25")
    );
    let Mode::Query(q) = mode("--query agg-many --from 2026-02-01T00:00:00Z") else {
        panic!("a query")
    };
    assert_eq!((q.kind, q.entities, q.days), (QueryKind::AggMany, 1000, 1));
    assert_eq!(q.from_us, JAN_1 + 31 * DAY_US);
    let Mode::Query(q) = mode("--query lastn --last-n 5") else {
        panic!("a query")
    };
    assert_eq!((q.kind, q.entities, q.last_n), (QueryKind::Lastn, 1, 5));
}

#[test]
fn scenario_names() {
    for (line, name) in [
        ("--ingest", "temporal-ingest"),
        ("--seed-days 1", "temporal-seed"),
        ("--query agg-one", "temporal-agg-one"),
        ("--query agg-many", "temporal-agg-many"),
        ("--query lastn", "temporal-lastn"),
    ] {
        assert_eq!(parse(line).expect("parses").name(), name);
    }
}

#[test]
fn bad_options() {
    // clap: one mode, and a known query.
    for line in [
        "",
        "--ingest --query lastn",
        "--seed-days 1 --ingest",
        "--query sum",
    ] {
        assert!(parse(line).is_err(), "{line}");
    }
    for (line, fragment) in [
        ("--ingest --entities 0", "--entities"),
        ("--ingest --batch 0", "--batch"),
        ("--ingest --attrs 65", "--attrs"),
        ("--seed-days 0", "--seed-days"),
        ("--seed-days 1 --points-per-day 0", "--points-per-day"),
        (
            "--seed-days 1 --points-per-request 0",
            "--points-per-request",
        ),
        ("--seed-days 1 --from 2026-01-01", "--from"),
        ("--query lastn --last-n 0", "--last-n"),
        ("--query agg-one --days 0", "--days"),
        ("--query agg-one --requests 0", "--requests"),
        ("--query agg-one --attr a&b", "--attr"),
        ("--query agg-one --type A/B", "--type"),
    ] {
        let err = parse(line).expect("parses").resolve().expect_err(line);
        assert!(err.to_string().contains(fragment), "{line}: {err}");
    }
}

#[test]
fn timestamps() {
    for (us, text) in [
        (0, "1970-01-01T00:00:00.000000Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (JAN_1, "2026-01-01T00:00:00.000000Z"),
        (JAN_1 + 60_000_123, "2026-01-01T00:01:00.000123Z"),
        (1_709_164_800_000_000, "2024-02-29T00:00:00.000000Z"),
        (951_868_800_000_000, "2000-03-01T00:00:00.000000Z"),
    ] {
        assert_eq!(format_rfc3339_us(us), text);
        assert_eq!(parse_rfc3339_us(text), Some(us));
    }
}

#[test]
fn fixed_durations() {
    for (text, seconds) in [
        ("PT1H", Some(3600)),
        ("PT15M", Some(900)),
        ("PT30S", Some(30)),
        ("P1D", Some(86_400)),
        ("P1DT12H", Some(129_600)),
        ("P2W", Some(1_209_600)),
        ("PT0S", Some(0)),
        ("P1M", None),
        ("P1Y", None),
        ("PT0.5S", None),
        ("PT", None),
        ("P", None),
        ("1H", None),
        ("PT1H1H", None),
        ("PT1M1H", None),
    ] {
        assert_eq!(fixed_duration_s(text), seconds, "{text}");
    }
}

fn ingest_writer(entities: u64, batch: u64, attrs: u32) -> IngestWriter {
    let s = Ingest {
        entities,
        batch,
        attrs,
    };
    IngestWriter::new(
        &s,
        "AirQualitySensor",
        &target(),
        &mut SmallRng::seed_from_u64(1),
    )
    .expect("valid")
}

#[test]
fn ingest_payload() {
    let w = ingest_writer(1000, 500, 12);
    let now = JAN_1 + 123_456;
    let req = w.next(&mut SmallRng::seed_from_u64(9), now);
    assert_eq!(req.method, Method::POST);
    assert_eq!(
        req.uri,
        "/pre/ngsi-ld/v1/entityOperations/upsert?options=update"
    );
    assert_eq!(req.items, 500);
    let body: Value = serde_json::from_slice(&req.body).expect("JSON");
    let entities = body.as_array().expect("an array");
    assert_eq!(entities.len(), 500);
    let ids: BTreeSet<&str> = entities
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 500, "distinct ids");
    for e in entities {
        let id = e["id"].as_str().expect("id");
        let n: u64 = id
            .strip_prefix("urn:ngsi-ld:AirQualitySensor:bench-")
            .and_then(|n| n.parse().ok())
            .expect("a bench id");
        assert!(n < 1000);
        assert_eq!(e["type"], "AirQualitySensor");
        let object = e.as_object().expect("object");
        assert_eq!(object.len(), 2 + 12, "id, type and 12 attributes");
        for name in attr_names(12) {
            let a = &e[&name];
            assert_eq!(a["type"], "Property", "{name}");
            assert!(a["value"].is_f64(), "{name}: {a}");
            assert_eq!(a["observedAt"], "2026-01-01T00:00:00.123456Z");
        }
    }
    assert_eq!(attr_names(14)[..2], ["pm25", "pm10"]);
    assert_eq!(attr_names(14)[12..], ["m13", "m14"]);
}

#[test]
fn ingest_batches_never_repeat_an_id() {
    for (entities, batch) in [(10, 10), (7, 7), (1, 1), (1001, 500)] {
        let w = ingest_writer(entities, batch, 1);
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..20 {
            let req = w.next(&mut rng, 0);
            let body: Value = serde_json::from_slice(&req.body).expect("JSON");
            let ids: BTreeSet<String> = body
                .as_array()
                .expect("array")
                .iter()
                .map(|e| e["id"].to_string())
                .collect();
            assert_eq!(ids.len() as u64, batch);
        }
    }
}

fn seed(entities: u64, days: u32, per_request: u32, attrs: u32) -> Seed {
    Seed {
        entities,
        days,
        points_per_day: 1440,
        points_per_request: per_request,
        attrs,
        from_us: JAN_1,
    }
}

/// Every request of `s`, in order, as parsed JSON with its item count.
fn seed_requests(s: &Seed, requests: std::ops::Range<u64>) -> Vec<(Value, u64)> {
    let w = SeedWriter::new(
        s,
        "AirQualitySensor",
        &target(),
        &mut SmallRng::seed_from_u64(1),
        requests,
    )
    .expect("valid");
    std::iter::from_fn(|| w.next())
        .map(|req| {
            assert_eq!(req.method, Method::POST);
            assert_eq!(req.uri, "/pre/ngsi-ld/v1/temporal/entities");
            (serde_json::from_slice(&req.body).expect("JSON"), req.items)
        })
        .collect()
}

#[test]
fn seed_payload_covers_the_range_once() {
    let s = seed(3, 2, 1000, 2);
    assert_eq!(
        (s.chunks(), s.requests(), s.instances()),
        (3, 9, 3 * 2880 * 2)
    );
    let all = seed_requests(&s, 0..s.requests());
    assert_eq!(all.len(), 9);
    // The first request of every entity comes first.
    let first_ids: Vec<&str> = all[..3]
        .iter()
        .map(|(b, _)| b["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        first_ids,
        [0, 1, 2].map(|n| format!("urn:ngsi-ld:AirQualitySensor:bench-{n}"))
    );
    let mut times: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    let mut items = 0;
    for (body, n) in &all {
        assert_eq!(body["type"], "AirQualitySensor");
        let object = body.as_object().expect("object");
        assert_eq!(object.len(), 4, "id, type, pm25, pm10: {object:?}");
        let mut in_body = 0;
        for attr in ["pm25", "pm10"] {
            for instance in body[attr].as_array().expect("instances") {
                assert_eq!(instance["type"], "Property");
                assert!(instance["value"].is_f64());
                let t = parse_rfc3339_us(instance["observedAt"].as_str().expect("observedAt"))
                    .expect("RFC 3339");
                times
                    .entry((body["id"].to_string(), attr.to_owned()))
                    .or_default()
                    .push(t);
                in_body += 1;
            }
        }
        assert_eq!(*n, in_body);
        items += n;
    }
    assert_eq!(items, s.instances());
    assert_eq!(times.len(), 6);
    let expected: Vec<i64> = (0..2880).map(|j| JAN_1 + j * 60_000_000).collect();
    for (key, mut t) in times {
        t.sort_unstable();
        assert_eq!(t, expected, "{key:?}: every minute of two days, once");
    }
    // The creating stage and the rest split the requests.
    assert_eq!(seed_requests(&s, 0..3).len(), 3);
    assert_eq!(seed_requests(&s, 3..9).len(), 6);
}

#[test]
fn seed_times_divide_the_day() {
    let mut s = seed(1, 2, 10, 1);
    s.points_per_day = 7;
    let times: Vec<i64> = (0..14).map(|j| s.time_of(j) - JAN_1).collect();
    assert_eq!(times[7], DAY_US);
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(times[1], DAY_US / 7);
}

fn query(line: &str) -> Query {
    match mode(line) {
        Mode::Query(q) => q,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn query_paths() {
    let t = target();
    assert_eq!(
        query("--query agg-one").path(&t, "AirQualitySensor", 0),
        "/pre/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualitySensor:bench-0\
         ?format=aggregatedValues&aggrMethods=avg%2Cmin%2Cmax&aggrPeriodDuration=PT1H\
         &timerel=between&timeAt=2026-01-01T00%3A00%3A00.000000Z\
         &endTimeAt=2026-01-31T00%3A00%3A00.000000Z&attrs=pm25"
    );
    assert_eq!(
        query("--query agg-many --from 2026-02-01T00:00:00Z").path(&t, "AirQualitySensor", 7),
        "/pre/ngsi-ld/v1/temporal/entities?type=AirQualitySensor\
         &format=aggregatedValues&aggrMethods=avg%2Cmin%2Cmax&aggrPeriodDuration=PT1H\
         &timerel=between&timeAt=2026-02-01T00%3A00%3A00.000000Z\
         &endTimeAt=2026-02-02T00%3A00%3A00.000000Z&attrs=pm25&limit=1000"
    );
    assert_eq!(
        query("--query lastn").path(&t, "AirQualitySensor", 3),
        "/pre/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualitySensor:bench-3?lastN=10&attrs=pm25"
    );
    assert_eq!(
        query("--query lastn --entities 5")
            .uris(&t, "S")
            .expect("valid")
            .len(),
        5
    );
    assert_eq!(
        query("--query agg-many")
            .uris(&t, "S")
            .expect("valid")
            .len(),
        1
    );
    assert_eq!(
        query("--query agg-one --entities 100000")
            .uris(&t, "S")
            .expect("valid")
            .len() as u64,
        URI_POOL
    );
}

#[test]
fn expected_answers() {
    assert_eq!(query("--query agg-one").expected(), (1, Some(720)));
    assert_eq!(query("--query agg-many").expected(), (1000, Some(24_000)));
    assert_eq!(
        query("--query agg-one --period P1D").expected(),
        (1, Some(30))
    );
    assert_eq!(
        query("--query agg-one --period PT0S").expected(),
        (1, Some(1))
    );
    assert_eq!(query("--query agg-one --period P1M").expected(), (1, None));
    assert_eq!(query("--query lastn").expected(), (1, Some(10)));
}

#[test]
fn answers_are_counted() {
    let bucket = |v: f64| json!([v, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"]);
    let one = json!({
        "id": "urn:ngsi-ld:AirQualitySensor:bench-0",
        "type": "AirQualitySensor",
        "pm25": {"type": "Property", "avg": [bucket(1.0), bucket(2.0)], "min": [bucket(0.5)]}
    });
    assert_eq!(
        count_answer(QueryKind::AggOne, "pm25", "avg,min", &one),
        (1, 2)
    );
    let many = json!([one, one, {"id": "x", "type": "AirQualitySensor"}]);
    assert_eq!(
        count_answer(QueryKind::AggMany, "pm25", "avg", &many),
        (3, 4)
    );
    // Several datasetIds: an array of aggregated attributes.
    let datasets = json!({"id": "y", "pm25": [{"avg": [bucket(1.0)]}, {"avg": [bucket(2.0)]}]});
    assert_eq!(
        count_answer(QueryKind::AggOne, "pm25", "avg", &datasets),
        (1, 2)
    );
    let instance = json!({"type": "Property", "value": 1.0, "observedAt": "2026-01-01T00:00:00Z"});
    let lastn = json!({"id": "z", "pm25": [instance, instance, instance]});
    assert_eq!(count_answer(QueryKind::Lastn, "pm25", "", &lastn), (1, 3));
    let single = json!({"id": "z", "pm25": instance});
    assert_eq!(count_answer(QueryKind::Lastn, "pm25", "", &single), (1, 1));
    assert_eq!(
        count_answer(QueryKind::Lastn, "pm25", "", &json!("nope")),
        (0, 0)
    );
}

#[test]
fn sequential_stage_sends_exactly_n() {
    let q = query("--query lastn --entities 3");
    let work = Work::Sequential {
        uris: q.uris(&target(), "S").expect("valid"),
        remaining: AtomicU64::new(25),
    };
    let mut rng = SmallRng::seed_from_u64(1);
    let sent: Vec<Req> = std::iter::from_fn(|| work.next(&mut rng)).collect();
    assert_eq!(sent.len(), 25);
    assert!(sent.iter().all(|r| r.method == Method::GET));
    assert!(work.is_finite() && !work.is_batch());
}

#[test]
fn report_serializes_with_its_mode() {
    let r = TemporalReport::Ingest {
        entities: 10,
        batch: 5,
        attrs: 12,
        instances: 120,
        instances_per_s: 60.0,
    };
    let json = serde_json::to_value(&r).expect("serializable");
    assert_eq!(json["mode"], "ingest");
    assert_eq!(json["instances_per_s"], 60.0);
    assert!(r
        .to_string()
        .contains("120 instances (60.0/s) = entities × 12"));
}

proptest! {
    #[test]
    fn timestamps_round_trip(us in -62_135_596_800_000_000i64..253_402_300_799_999_999) {
        let text = format_rfc3339_us(us);
        prop_assert_eq!(parse_rfc3339_us(&text), Some(us), "{}", text);
        let chrono_text = chrono::DateTime::from_timestamp_micros(us)
            .expect("in range")
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        prop_assert_eq!(text, chrono_text);
    }

    #[test]
    fn fixed_duration_never_panics(s in "\\PC{0,16}") {
        let _ = fixed_duration_s(&s);
    }
}
