use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::error::ErrorKind;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn parse(params: &[(&str, &str)], aggregated: bool) -> Result<TemporalQuery> {
    parse_temporal_query(
        |name| {
            params
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        },
        aggregated,
    )
}

fn ok(params: &[(&str, &str)], aggregated: bool) -> TemporalQuery {
    parse(params, aggregated).unwrap_or_else(|e| panic!("{params:?}: {e}"))
}

/// Asserts a `BadRequestData` whose detail contains every one of `needles`.
fn check_err(params: &[(&str, &str)], aggregated: bool, needles: &[&str]) {
    match parse(params, aggregated) {
        Ok(q) => panic!("{params:?}: expected an error, got {q:?}"),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::BadRequestData, "{params:?}: {e}");
            for needle in needles {
                assert!(
                    e.detail.contains(needle),
                    "{params:?}: '{}' lacks '{needle}'",
                    e.detail
                );
            }
        }
    }
}

#[test]
fn timerel_windows() {
    let t = ts("2020-08-01T12:05:00Z");
    let t2 = ts("2020-08-01T13:00:00Z");
    for (params, expected) in [
        (vec![], None),
        (
            vec![("timerel", "before"), ("timeAt", "2020-08-01T12:05:00Z")],
            Some(TimeRel::Before(t)),
        ),
        (
            vec![("timerel", "after"), ("timeAt", "2020-08-01T12:05:00Z")],
            Some(TimeRel::After(t)),
        ),
        (
            vec![
                ("timerel", "between"),
                ("timeAt", "2020-08-01T12:05:00Z"),
                ("endTimeAt", "2020-08-01T13:00:00Z"),
            ],
            Some(TimeRel::Between(t, t2)),
        ),
        // 021_26: the fraction spelling is the same instant.
        (
            vec![("timerel", "after"), ("timeAt", "2020-08-01T12:05:00.000Z")],
            Some(TimeRel::After(t)),
        ),
        (
            vec![
                ("timerel", "after"),
                ("timeAt", "2020-08-01T14:05:00+02:00"),
            ],
            Some(TimeRel::After(t)),
        ),
        // endTimeAt only matters for between.
        (
            vec![
                ("timerel", "before"),
                ("timeAt", "2020-08-01T12:05:00Z"),
                ("endTimeAt", "2020-08-01T10:00:00Z"),
            ],
            Some(TimeRel::Before(t)),
        ),
    ] {
        assert_eq!(ok(&params, false).timerel, expected, "{params:?}");
    }
}

#[test]
fn timerel_errors() {
    let at = ("timeAt", "2020-08-01T12:05:00Z");
    for (params, needles) in [
        (vec![("timerel", "during"), at], vec!["timerel", "'during'"]),
        (vec![("timerel", "Before"), at], vec!["timerel", "'Before'"]),
        (vec![("timerel", ""), at], vec!["timerel", "''"]),
        (vec![("timerel", "after")], vec!["timeAt", "timerel=after"]),
        (vec![at], vec!["timeAt", "timerel"]),
        (
            vec![("endTimeAt", "2020-08-01T12:05:00Z")],
            vec!["endTimeAt", "timerel=between"],
        ),
        (
            vec![("timerel", "between"), at],
            vec!["endTimeAt", "timerel=between"],
        ),
        (
            vec![
                ("timerel", "between"),
                at,
                ("endTimeAt", "2020-08-01T12:05:00.000Z"),
            ],
            vec!["endTimeAt", "'2020-08-01T12:05:00.000Z'", "after timeAt"],
        ),
        (
            vec![
                ("timerel", "between"),
                at,
                ("endTimeAt", "2020-08-01T12:00:00Z"),
            ],
            vec!["endTimeAt", "after timeAt"],
        ),
        // 021_26_09: a Date is not a DateTime.
        (
            vec![("timerel", "after"), ("timeAt", "2020-08-01")],
            vec!["timeAt", "'2020-08-01'"],
        ),
        (vec![("timerel", "after"), ("timeAt", "")], vec!["timeAt"]),
        (
            vec![("timerel", "after"), ("timeAt", "2020-08-01T12:05:00")],
            vec!["timeAt"],
        ),
        (
            vec![("timerel", "between"), at, ("endTimeAt", "tomorrow")],
            vec!["endTimeAt", "'tomorrow'"],
        ),
        (
            vec![("timerel", "after"), at, ("endTimeAt", "tomorrow")],
            vec!["endTimeAt", "'tomorrow'"],
        ),
    ] {
        check_err(&params, false, &needles);
    }
}

#[test]
fn timeproperty() {
    assert_eq!(ok(&[], false).timeproperty, TimeProperty::ObservedAt);
    for p in TimeProperty::ALL {
        assert_eq!(ok(&[("timeproperty", p.name())], false).timeproperty, p);
        assert_eq!(p.to_string().parse::<TimeProperty>().unwrap(), p);
    }
    for bad in ["expiresAt", "observedat", "", "observedAt,createdAt"] {
        check_err(
            &[("timeproperty", bad)],
            false,
            &["timeproperty", &format!("'{bad}'")],
        );
    }
}

#[test]
fn last_n() {
    for (text, n) in [("1", 1), ("20", 20), ("007", 7)] {
        assert_eq!(ok(&[("lastN", text)], false).last_n, Some(n));
    }
    assert_eq!(ok(&[], false).last_n, None);
    for bad in [
        "0", "00", "-1", "+1", "1.5", "2.0", "abc", "", " 1", "1e3", "٣",
    ] {
        check_err(&[("lastN", bad)], false, &["lastN", &format!("'{bad}'")]);
    }
    check_err(
        &[("lastN", "99999999999999999999999")],
        false,
        &["lastN", "too large"],
    );
}

#[test]
fn aggr_methods() {
    let all = "totalCount,distinctCount,sum,avg,min,max,stddev,sumsq";
    assert_eq!(
        ok(&[("aggrMethods", all)], true).aggr_methods,
        Some(AggrMethod::ALL.to_vec())
    );
    assert_eq!(
        ok(&[("aggrMethods", "max,avg,max")], true).aggr_methods,
        Some(vec![AggrMethod::Max, AggrMethod::Avg])
    );
    for m in AggrMethod::ALL {
        assert_eq!(m.name().parse::<AggrMethod>().unwrap(), m);
        assert_eq!(m.to_string(), m.name());
    }
    for (bad, needles) in [
        ("bogus", vec!["aggrMethods", "'bogus'"]),
        ("Avg", vec!["aggrMethods", "'Avg'"]),
        ("avg, max", vec!["aggrMethods", "' max'"]),
        ("avg,,max", vec!["aggrMethods", "empty entry"]),
        ("avg,", vec!["aggrMethods", "empty entry"]),
        ("", vec!["aggrMethods", "empty"]),
    ] {
        check_err(&[("aggrMethods", bad)], true, &needles);
    }
    check_err(
        &[("aggrPeriodDuration", "PT1H")],
        true,
        &["aggrMethods", "mandatory"],
    );
}

#[test]
fn aggregation_is_ignored_unless_aggregated() {
    let q = ok(
        &[("aggrMethods", "bogus"), ("aggrPeriodDuration", "bogus")],
        false,
    );
    assert_eq!((q.aggr_methods, q.aggr_period), (None, None));
    assert!(!ok(&[], false).is_aggregated());
}

#[test]
fn aggr_period_duration() {
    let q = ok(
        &[("aggrMethods", "avg"), ("aggrPeriodDuration", "PT1H")],
        true,
    );
    assert_eq!(
        q.aggr_period.and_then(|d| d.fixed_micros()),
        Some(3_600_000_000)
    );
    assert!(q.is_aggregated());
    for whole in ["PT0S", "P0D", "P0Y0M0DT0H0M0.0S"] {
        let q = ok(
            &[("aggrMethods", "avg"), ("aggrPeriodDuration", whole)],
            true,
        );
        assert_eq!(q.aggr_period, None, "{whole}");
    }
    assert_eq!(ok(&[("aggrMethods", "avg")], true).aggr_period, None);
    for bad in ["bogus", "", "PT", "1H", "PT-1H"] {
        check_err(
            &[("aggrMethods", "avg"), ("aggrPeriodDuration", bad)],
            true,
            &["aggrPeriodDuration", &format!("'{bad}'")],
        );
    }
}

fn dur(s: &str) -> Duration {
    Duration::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn durations() {
    const S: i64 = 1_000_000;
    for (text, canonical, fixed) in [
        ("PT1H", "PT1H", Some(3600 * S)),
        ("P1D", "P1D", Some(86_400 * S)),
        ("P1Y2M10DT2H30M", "P1Y2M10DT2H30M", None),
        ("P1M", "P1M", None),
        ("PT1M", "PT1M", Some(60 * S)),
        ("PT0.5S", "PT0.5S", Some(S / 2)),
        ("PT0,5S", "PT0.5S", Some(S / 2)),
        ("PT1.250000S", "PT1.25S", Some(S + S / 4)),
        ("PT0.000001S", "PT0.000001S", Some(1)),
        ("P2W", "P2W", Some(14 * 86_400 * S)),
        ("PT0S", "PT0S", Some(0)),
        ("P0D", "PT0S", Some(0)),
        ("PT90M", "PT90M", Some(90 * 60 * S)),
        ("P1DT0H", "P1D", Some(86_400 * S)),
        ("P3Y6M4DT12H30M5S", "P3Y6M4DT12H30M5S", None),
        ("PT36H", "PT36H", Some(36 * 3600 * S)),
    ] {
        let d = dur(text);
        assert_eq!(d.to_string(), canonical, "{text}");
        assert_eq!(d.fixed_micros(), fixed, "{text}");
        assert_eq!(d.has_calendar_part(), fixed.is_none(), "{text}");
    }
    assert_eq!(dur("P1Y").approx_micros(), 365 * 86_400 * S);
    assert_eq!(dur("P1MT1S").approx_micros(), 30 * 86_400 * S + S);
}

#[test]
fn duration_errors() {
    for (bad, why) in [
        ("", "start with 'P'"),
        ("1D", "start with 'P'"),
        ("p1d", "start with 'P'"),
        ("-P1D", "start with 'P'"),
        ("P", "no component"),
        ("PT", "no component after 'T'"),
        ("P1DT", "no component after 'T'"),
        ("P1", "no designator"),
        ("PT1", "no designator"),
        ("PD", "number before 'D'"),
        ("PT1.5H", "seconds"),
        ("P1.5D", "seconds"),
        ("PT1.5S2M", "seconds"),
        ("PT.5S", "whole part"),
        ("PT1.S", "no digits"),
        ("PT0.1234567S", "microsecond"),
        ("P1W2D", "weeks"),
        ("P1WT1H", "weeks"),
        ("PT1H1H", "repeated or out of order"),
        ("PT1M1H", "repeated or out of order"),
        ("P1D1Y", "repeated or out of order"),
        ("P1H", "not a date designator"),
        ("PT1D", "not a time designator"),
        ("PT1H ", "number before ' '"),
        ("P1DT1HT1M", "number before 'T'"),
        ("P99999999999D", "too large"),
        ("P4294967295W", "too large"),
        ("P400000000Y", "too large"),
        ("P1D\u{e9}", "number before '\u{e9}'"),
        ("P1\u{e9}", "not a date designator"),
    ] {
        match Duration::parse(bad) {
            Ok(d) => panic!("{bad:?}: expected an error, got {d:?}"),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::BadRequestData);
                assert!(
                    e.detail.contains(why),
                    "{bad:?}: '{}' lacks '{why}'",
                    e.detail
                );
                assert!(
                    e.detail.contains(&format!("'{bad}'")),
                    "{bad:?}: {}",
                    e.detail
                );
            }
        }
    }
}

#[test]
fn calendar_arithmetic() {
    for (start, duration, n, expected) in [
        ("2024-01-31T00:00:00Z", "P1M", 1, "2024-02-29T00:00:00Z"),
        ("2023-01-31T00:00:00Z", "P1M", 1, "2023-02-28T00:00:00Z"),
        // n periods in one step: no drift through February.
        ("2024-01-31T00:00:00Z", "P1M", 2, "2024-03-31T00:00:00Z"),
        ("2024-02-29T12:00:00Z", "P1Y", 1, "2025-02-28T12:00:00Z"),
        ("2024-02-29T12:00:00Z", "P1Y", 4, "2028-02-29T12:00:00Z"),
        ("2024-01-31T00:00:00Z", "P1M1D", 1, "2024-03-01T00:00:00Z"),
        ("2024-05-01T10:00:00Z", "PT1H", 3, "2024-05-01T13:00:00Z"),
        (
            "2024-05-01T10:00:00Z",
            "P1DT0.5S",
            2,
            "2024-05-03T10:00:01Z",
        ),
        ("2024-12-31T23:00:00Z", "P2W", 1, "2025-01-14T23:00:00Z"),
        ("2024-05-01T10:00:00Z", "PT0S", 5, "2024-05-01T10:00:00Z"),
        ("2024-05-01T10:00:00Z", "PT1H", 0, "2024-05-01T10:00:00Z"),
    ] {
        let got = dur(duration).add_n_to(ts(start), n);
        assert_eq!(got, Some(ts(expected)), "{start} + {n} × {duration}");
    }
    assert_eq!(
        dur("P1M").add_to(ts("2024-01-31T00:00:00Z")),
        Some(ts("2024-02-29T00:00:00Z"))
    );
    assert_eq!(dur("P300000Y").add_to(ts("2024-01-01T00:00:00Z")), None);
    assert_eq!(dur("P1D").add_n_to(Timestamp(i64::MAX - 1), 1), None);
    assert_eq!(dur("P1M").add_to(Timestamp(i64::MAX)), None);
    let many = i64::from(u32::MAX);
    assert_eq!(
        dur("PT1S").add_n_to(Timestamp(0), u32::MAX),
        Some(Timestamp(1_000_000 * many))
    );
    assert_eq!(dur("PT1H").add_n_to(Timestamp(0), u32::MAX), None);
    assert_eq!(dur("P10000W").add_n_to(Timestamp(0), u32::MAX), None);
}

fn json_query(body: serde_json::Value) -> Result<TemporalQuery> {
    parse_temporal_query_json(body.get("temporalQ"), body.get("aggrParams"), false)
}

#[test]
fn json_form() {
    let after = |extra: serde_json::Value| {
        let mut q = json!({ "timerel": "after", "timeAt": "2020-08-01T12:00:00Z" });
        q.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "type": "Query", "temporalQ": q })
    };
    let q = json_query(after(json!({ "lastN": 1 }))).unwrap();
    assert_eq!(q.last_n, Some(1));
    assert_eq!(q.timerel, Some(TimeRel::After(ts("2020-08-01T12:00:00Z"))));
    assert!(!q.is_aggregated());

    // aggrMethods in temporalQ asks for the aggregated representation.
    let q = json_query(after(json!({ "aggrMethods": ["avg"] }))).unwrap();
    assert_eq!(q.aggr_methods, Some(vec![AggrMethod::Avg]));
    let q = json_query(after(
        json!({ "aggrMethods": "avg,max", "aggrPeriodDuration": "PT1H" }),
    ))
    .unwrap();
    assert_eq!(q.aggr_methods, Some(vec![AggrMethod::Avg, AggrMethod::Max]));
    assert_eq!(q.aggr_period, Some(dur("PT1H")));

    // aggrParams (5.2.44), which wins over temporalQ's members.
    let body = json!({
        "temporalQ": { "timerel": "after", "timeAt": "2020-08-01T12:00:00Z", "aggrMethods": "sum" },
        "aggrParams": { "aggrMethods": ["avg"], "aggrPeriodDuration": "PT0S" }
    });
    let q = json_query(body).unwrap();
    assert_eq!(
        (q.aggr_methods, q.aggr_period),
        (Some(vec![AggrMethod::Avg]), None)
    );

    // Nothing temporal at all.
    assert_eq!(
        json_query(json!({ "type": "Query" })).unwrap(),
        TemporalQuery::default()
    );
    // format=aggregatedValues without aggrMethods.
    let e = parse_temporal_query_json(None, None, true).unwrap_err();
    assert!(e.detail.contains("aggrMethods"), "{e}");

    for (body, needles) in [
        (after(json!({ "lastN": 0 })), vec!["lastN", "'0'"]),
        (after(json!({ "lastN": 2.5 })), vec!["lastN", "2.5"]),
        (after(json!({ "lastN": -3 })), vec!["lastN", "-3"]),
        (after(json!({ "lastN": "5" })), vec!["lastN", "\"5\""]),
        (
            json!({ "temporalQ": { "timerel": "during", "timeAt": "2020-08-01T12:00:00Z" } }),
            vec!["timerel", "'during'"],
        ),
        (
            json!({ "temporalQ": { "timerel": "between", "timeAt": "2020-08-01T12:00:00Z" } }),
            vec!["endTimeAt"],
        ),
        (
            json!({ "temporalQ": { "timerel": 1, "timeAt": "2020-08-01T12:00:00Z" } }),
            vec!["timerel", "string"],
        ),
        (
            after(json!({ "timeproperty": "expiresAt" })),
            vec!["timeproperty", "'expiresAt'"],
        ),
        (
            after(json!({ "aggrMethods": ["avg"], "aggrPeriodDuration": "bogus" })),
            vec!["aggrPeriodDuration", "'bogus'"],
        ),
        (
            after(json!({ "aggrMethods": [] })),
            vec!["aggrMethods", "empty"],
        ),
        (
            after(json!({ "aggrMethods": ["avg", 3] })),
            vec!["aggrMethods", "3"],
        ),
        (
            after(json!({ "aggrMethods": ["avg,max"] })),
            vec!["aggrMethods", "avg,max"],
        ),
        (
            json!({ "temporalQ": { "timerel": "after", "timeAt": "2020-08-01T12:00:00Z" },
                    "aggrParams": { "aggrMethods": ["bogus"] } }),
            vec!["aggrMethods", "'bogus'"],
        ),
        (json!({ "temporalQ": "after" }), vec!["temporalQ", "object"]),
        (json!({ "aggrParams": [] }), vec!["aggrParams", "object"]),
    ] {
        match json_query(body.clone()) {
            Ok(q) => panic!("{body}: expected an error, got {q:?}"),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::BadRequestData, "{body}: {e}");
                for needle in needles {
                    assert!(
                        e.detail.contains(needle),
                        "{body}: '{}' lacks '{needle}'",
                        e.detail
                    );
                }
            }
        }
    }
}

#[test]
fn bounds_and_contains() {
    let (t1, t2) = (Timestamp(10), Timestamp(20));
    for (rel, bounds, inside, outside) in [
        (
            TimeRel::Before(t1),
            (None, Some(t1)),
            vec![9, i64::MIN],
            vec![10, 11],
        ),
        (
            TimeRel::After(t1),
            (Some(t1), None),
            vec![10, i64::MAX],
            vec![9],
        ),
        (
            TimeRel::Between(t1, t2),
            (Some(t1), Some(t2)),
            vec![10, 19],
            vec![9, 20],
        ),
    ] {
        assert_eq!(rel.bounds(), bounds, "{rel:?}");
        for t in inside {
            assert!(rel.contains(Timestamp(t)), "{rel:?} ∌ {t}");
        }
        for t in outside {
            assert!(!rel.contains(Timestamp(t)), "{rel:?} ∋ {t}");
        }
    }
    assert_eq!(TemporalQuery::default().bounds(), (None, None));
}

#[test]
fn aggregate_values() {
    let mut acc = AggrAccumulator::default();
    for v in [1.0, 2.0, 3.0, 4.0] {
        acc.push_number(v);
    }
    acc.push_other();
    for (method, expected) in [
        (AggrMethod::TotalCount, Some(5.0)),
        (AggrMethod::DistinctCount, Some(4.0)),
        (AggrMethod::Sum, Some(10.0)),
        (AggrMethod::Avg, Some(2.5)),
        (AggrMethod::Min, Some(1.0)),
        (AggrMethod::Max, Some(4.0)),
        (AggrMethod::Sumsq, Some(30.0)),
        (AggrMethod::Stddev, Some((5.0f64 / 3.0).sqrt())),
    ] {
        assert_eq!(acc.value(method, Some(4)), expected, "{method}");
    }

    // Not defined without (enough) numbers.
    let mut text_only = AggrAccumulator::default();
    text_only.push_other();
    for method in [
        AggrMethod::Sum,
        AggrMethod::Avg,
        AggrMethod::Min,
        AggrMethod::Max,
    ] {
        assert_eq!(text_only.value(method, None), None, "{method}");
    }
    assert_eq!(text_only.value(AggrMethod::Sumsq, None), None);
    assert_eq!(text_only.value(AggrMethod::Stddev, None), None);
    assert_eq!(text_only.value(AggrMethod::TotalCount, None), Some(1.0));
    assert_eq!(text_only.value(AggrMethod::DistinctCount, None), None);
    let mut one = AggrAccumulator::default();
    one.push_number(7.0);
    assert_eq!(one.value(AggrMethod::Stddev, None), None);
    assert_eq!(one.value(AggrMethod::Avg, None), Some(7.0));

    // Rounding below zero is clamped: identical values have no spread.
    let mut same = AggrAccumulator::default();
    for _ in 0..3 {
        same.push_number(0.1);
    }
    assert_eq!(same.value(AggrMethod::Stddev, None), Some(0.0));
}

/// The reference: each method computed directly over the values.
fn naive(method: AggrMethod, values: &[f64]) -> Option<f64> {
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    match method {
        AggrMethod::TotalCount => Some(n),
        AggrMethod::DistinctCount => unreachable!("counted by the caller"),
        AggrMethod::Sum => (!values.is_empty()).then_some(sum),
        AggrMethod::Sumsq => (!values.is_empty()).then(|| values.iter().map(|v| v * v).sum()),
        AggrMethod::Avg => (!values.is_empty()).then(|| sum / n),
        AggrMethod::Min => values.iter().copied().reduce(f64::min),
        AggrMethod::Max => values.iter().copied().reduce(f64::max),
        AggrMethod::Stddev => (values.len() > 1).then(|| {
            let mean = sum / n;
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        }),
    }
}

fn close(a: Option<f64>, b: Option<f64>, abs: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= abs + 1e-9 * b.abs(),
        (a, b) => a == b,
    }
}

fn arb_duration() -> impl Strategy<Value = Duration> {
    let weeks = (1u32..10_000).prop_map(|weeks| Duration {
        weeks,
        ..Duration::default()
    });
    let general = (
        (0u32..3000, 0u32..100, 0u32..100_000),
        (0u32..100_000, 0u32..100_000, 0u32..100_000, 0u32..1_000_000),
    )
        .prop_map(
            |((years, months, days), (hours, minutes, seconds, micros))| Duration {
                years,
                months,
                weeks: 0,
                days,
                hours,
                minutes,
                seconds,
                micros,
            },
        );
    prop_oneof![weeks, general]
}

const PARAMS: [&str; 7] = [
    "timerel",
    "timeAt",
    "endTimeAt",
    "timeproperty",
    "lastN",
    "aggrMethods",
    "aggrPeriodDuration",
];

proptest! {
    #[test]
    fn duration_display_parse_round_trip(d in arb_duration()) {
        let text = d.to_string();
        prop_assert_eq!(Duration::parse(&text).unwrap(), d, "{}", text);
    }

    #[test]
    fn duration_parse_never_panics(s in "\\PC*") {
        let _ = Duration::parse(&s);
    }

    #[test]
    fn duration_like_text_round_trips_when_valid(s in "P[0-9YMWDTHS.,]{0,14}") {
        if let Ok(d) = Duration::parse(&s) {
            let canonical = d.to_string();
            let again = Duration::parse(&canonical).unwrap();
            prop_assert_eq!(again, d);
            prop_assert_eq!(again.to_string(), canonical);
            prop_assert_eq!(d.fixed_micros().is_some(), !d.has_calendar_part());
        }
    }

    #[test]
    fn parser_never_panics(
        values in proptest::collection::vec(proptest::option::of("\\PC{0,30}"), 7),
        aggregated: bool,
    ) {
        let _ = parse_temporal_query(
            |name| PARAMS.iter().position(|p| *p == name).and_then(|i| values[i].clone()),
            aggregated,
        );
    }

    #[test]
    fn parser_never_panics_on_plausible_values(
        rel in prop_oneof![
            Just("before".to_owned()),
            Just("after".to_owned()),
            Just("between".to_owned()),
            "[a-z]{0,8}",
        ],
        at in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?",
        end in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
        last_n in "[-+]?[0-9]{0,25}",
        methods in "[a-zA-Z,]{0,40}",
        period in "P[0-9YMWDTHS.]{0,12}",
    ) {
        let params = [
            ("timerel", rel),
            ("timeAt", at),
            ("endTimeAt", end),
            ("lastN", last_n),
            ("aggrMethods", methods),
            ("aggrPeriodDuration", period),
        ];
        let get = |name: &str| params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        if let Ok(q) = parse_temporal_query(get, true) {
            let (lower, upper) = q.bounds();
            if let (Some(l), Some(u)) = (lower, upper) {
                prop_assert!(l < u);
            }
            prop_assert!(q.last_n.is_none_or(|n| n >= 1));
            prop_assert!(q.aggr_period.is_none_or(|d| !d.is_zero()));
        }
    }

    #[test]
    fn json_parser_never_panics(lastn in any::<f64>(), s in "\\PC{0,20}", aggregated: bool) {
        let body = json!({ "timerel": s, "timeAt": s, "lastN": lastn, "aggrMethods": [s] });
        let _ = parse_temporal_query_json(Some(&body), Some(&json!({ "aggrPeriodDuration": s })), aggregated);
    }

    #[test]
    fn bounds_are_ordered(a: i64, b: i64, t: i64) {
        for rel in [TimeRel::Before(Timestamp(a)), TimeRel::After(Timestamp(a))] {
            let (lower, upper) = rel.bounds();
            prop_assert!(lower.is_none() != upper.is_none());
        }
        if a < b {
            let rel = TimeRel::Between(Timestamp(a), Timestamp(b));
            let (lower, upper) = rel.bounds();
            prop_assert!(lower.unwrap() < upper.unwrap());
            prop_assert_eq!(rel.contains(Timestamp(t)), a <= t && t < b);
        }
        // before t and after t partition the time line.
        let split = Timestamp(a);
        prop_assert_ne!(
            TimeRel::Before(split).contains(Timestamp(t)),
            TimeRel::After(split).contains(Timestamp(t))
        );
    }

    #[test]
    fn between_from_text_is_ordered(a in 0i64..4_000_000_000_000_000, b in 0i64..4_000_000_000_000_000) {
        let (at, end) = (Timestamp(a).to_iso(), Timestamp(b).to_iso());
        let params = [("timerel", "between"), ("timeAt", at.as_str()), ("endTimeAt", end.as_str())];
        match parse(&params, false) {
            Ok(q) => {
                prop_assert!(a < b);
                prop_assert_eq!(q.bounds(), (Some(Timestamp(a)), Some(Timestamp(b))));
            }
            Err(e) => {
                prop_assert!(a >= b, "{}", e);
                prop_assert_eq!(e.kind, ErrorKind::BadRequestData);
            }
        }
    }

    #[test]
    fn aggregate_matches_direct_computation(
        values in proptest::collection::vec(-1000.0f64..1000.0, 0..60),
        others in 0u64..5,
        split in any::<prop::sample::Index>(),
    ) {
        let mut acc = AggrAccumulator::default();
        for v in &values {
            acc.push_number(*v);
        }
        for _ in 0..others {
            acc.push_other();
        }
        for method in AggrMethod::ALL {
            if method == AggrMethod::DistinctCount {
                continue;
            }
            let expected = if method == AggrMethod::TotalCount {
                Some((values.len() as u64 + others) as f64)
            } else {
                naive(method, &values)
            };
            let tolerance = if method == AggrMethod::Stddev { 1e-4 } else { 1e-7 };
            let got = acc.value(method, None);
            prop_assert!(close(got, expected, tolerance), "{}: {:?} vs {:?}", method, got, expected);
        }

        // Merging two halves gives the accumulators of the whole.
        let cut = if values.is_empty() { 0 } else { split.index(values.len() + 1) };
        let (mut left, mut right) = (AggrAccumulator::default(), AggrAccumulator::default());
        values[..cut].iter().for_each(|v| left.push_number(*v));
        values[cut..].iter().for_each(|v| right.push_number(*v));
        left.merge(&right);
        prop_assert_eq!(left.count, values.len() as u64);
        prop_assert_eq!(left.min, acc.min);
        prop_assert_eq!(left.max, acc.max);
        prop_assert!(close(Some(left.sum), Some(acc.sum), 1e-7));
    }
}
