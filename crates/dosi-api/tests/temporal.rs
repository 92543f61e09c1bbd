//! The temporal API (`/ngsi-ld/v1/temporal/entities…`) driven in-process:
//! provision and reads, capture of core writes, aggregation, temporal
//! pagination, and malformed temporal requests.

mod common;

use common::{App, Resp};
use dosi_api::ApiConfig;
use serde_json::{json, Value};

const T: &str = "/ngsi-ld/v1/temporal/entities";
const E: &str = "/ngsi-ld/v1/entities";
const ID: &str = "urn:ngsi-ld:T:1";
const INSTANCE_PREFIX: &str = "urn:ngsi-ld:attribute:instance:";

/// `2024-01-01T<hh>:<mm>:00Z`.
fn at(h: u32, m: u32) -> String {
    format!("2024-01-01T{h:02}:{m:02}:00Z")
}

fn inst(v: Value, h: u32, m: u32) -> Value {
    json!({"type": "Property", "value": v, "observedAt": at(h, m)})
}

async fn patch_json(app: &App, uri: &str, body: &str) -> Resp {
    app.call(
        "PATCH",
        uri,
        &[("content-type", "application/json")],
        Some(body),
    )
    .await
}

async fn delete(app: &App, uri: &str) -> Resp {
    app.call("DELETE", uri, &[], None).await
}

/// GET that must answer 200; the body.
async fn get_ok(app: &App, uri: &str) -> Value {
    let r = app.get(uri).await;
    assert_eq!(r.status, 200, "GET {uri}: {}", r.text);
    r.body
}

/// The instances of `attr` in a normalized temporal entity (a missing
/// attribute has none).
fn instances(e: &Value, attr: &str) -> Vec<Value> {
    match &e[attr] {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The values of `attr`'s instances, in the order answered.
fn values(e: &Value, attr: &str) -> Vec<Value> {
    instances(e, attr)
        .iter()
        .map(|i| i["value"].clone())
        .collect()
}

/// The `observedAt` of `attr`'s instances, in the order answered.
fn observed(e: &Value, attr: &str) -> Vec<String> {
    instances(e, attr)
        .iter()
        .map(|i| i["observedAt"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn nums(v: &[i64]) -> Vec<Value> {
    v.iter().map(|x| json!(x)).collect()
}

/// Creates the entity of most tests: `temp` observed at 08:00–10:00 with
/// values 1–3 (given out of order), `humidity` at 08:30, `speed` with a
/// default instance and two of dataset `urn:ds:a`.
async fn provision(app: &App) {
    let body = json!({
        "id": ID,
        "type": "T",
        "temp": [inst(json!(3), 10, 0), inst(json!(1), 8, 0), inst(json!(2), 9, 0)],
        "humidity": [inst(json!(50), 8, 30)],
        "speed": [
            inst(json!(7), 8, 0),
            {"type": "Property", "value": 70, "observedAt": at(8, 0), "datasetId": "urn:ds:a"},
            {"type": "Property", "value": 71, "observedAt": at(9, 0), "datasetId": "urn:ds:a"},
        ],
    });
    let r = app.post_json(T, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/ngsi-ld/v1/temporal/entities/{ID}").as_str())
    );
}

#[tokio::test]
async fn provision_and_read_round_trip() {
    let app = common::app().await;
    provision(&app).await;
    // A second POST of the same entity is an upsert: 204, and the known
    // instances are not duplicated.
    let body =
        json!({"id": ID, "type": "T", "temp": [inst(json!(4), 11, 0), inst(json!(3), 10, 0)]});
    let r = app.post_json(T, &body.to_string()).await;
    assert_eq!(r.status, 204, "{}", r.text);

    // Normalized: sorted by observedAt, every instance with an instanceId.
    let e = get_ok(&app, &format!("{T}/{ID}")).await;
    assert_eq!(e["id"], ID);
    assert_eq!(e["type"], "T");
    assert_eq!(values(&e, "temp"), nums(&[1, 2, 3, 4]));
    assert_eq!(
        observed(&e, "temp"),
        [at(8, 0), at(9, 0), at(10, 0), at(11, 0)]
    );
    let mut ids = std::collections::HashSet::new();
    for i in instances(&e, "temp") {
        let id = i["instanceId"].as_str().expect("instanceId");
        assert!(id.starts_with(INSTANCE_PREFIX), "{id}");
        assert!(ids.insert(id.to_string()), "duplicate instanceId {id}");
        assert_eq!(i["type"], "Property");
    }
    assert_eq!(values(&e, "humidity"), nums(&[50]));

    // Simplified: [[value, time], …].
    let e = get_ok(&app, &format!("{T}/{ID}?options=temporalValues&attrs=temp")).await;
    assert_eq!(
        e["temp"],
        json!({"type": "Property", "values": [
            [1, at(8, 0)], [2, at(9, 0)], [3, at(10, 0)], [4, at(11, 0)]
        ]})
    );
    assert!(e.get("humidity").is_none());

    // lastN: the newest n, still oldest first.
    let e = get_ok(&app, &format!("{T}/{ID}?lastN=2&attrs=temp")).await;
    assert_eq!(values(&e, "temp"), nums(&[3, 4]));

    // timerel bounds: after inclusive, before exclusive, between [a, b).
    for (q, want) in [
        (format!("timerel=after&timeAt={}", at(9, 0)), vec![2, 3, 4]),
        (format!("timerel=before&timeAt={}", at(9, 0)), vec![1]),
        (
            format!(
                "timerel=between&timeAt={}&endTimeAt={}",
                at(9, 0),
                at(11, 0)
            ),
            vec![2, 3],
        ),
        (
            format!("timerel=between&timeAt={}&endTimeAt={}", at(8, 0), at(8, 1)),
            vec![1],
        ),
    ] {
        let e = get_ok(&app, &format!("{T}/{ID}?attrs=temp&{q}")).await;
        assert_eq!(values(&e, "temp"), nums(&want), "{q}");
    }

    // attrs selects attributes.
    let e = get_ok(&app, &format!("{T}/{ID}?attrs=humidity")).await;
    assert_eq!(values(&e, "humidity"), nums(&[50]));
    assert!(e.get("temp").is_none() && e.get("speed").is_none());

    // datasetId selects instances of one dataset (`@none` = the default).
    let e = get_ok(&app, &format!("{T}/{ID}?attrs=speed&datasetId=urn:ds:a")).await;
    assert_eq!(values(&e, "speed"), nums(&[70, 71]));
    for i in instances(&e, "speed") {
        assert_eq!(i["datasetId"], "urn:ds:a");
    }
    let e = get_ok(&app, &format!("{T}/{ID}?attrs=speed&datasetId=@none")).await;
    assert_eq!(values(&e, "speed"), nums(&[7]));
    let e = get_ok(&app, &format!("{T}/{ID}?attrs=speed")).await;
    assert_eq!(instances(&e, "speed").len(), 3);

    // timeproperty=createdAt: the window applies to when instances were
    // recorded (now), not to observedAt (2024).
    let e = get_ok(
        &app,
        &format!(
            "{T}/{ID}?attrs=temp&timeproperty=createdAt&timerel=after&timeAt=2025-01-01T00:00:00Z"
        ),
    )
    .await;
    assert_eq!(instances(&e, "temp").len(), 4);
    for i in instances(&e, "temp") {
        assert!(i["createdAt"].is_string(), "{i}");
    }
    let r = app
        .get(&format!(
            "{T}/{ID}?attrs=temp&timeproperty=createdAt&timerel=before&timeAt=2025-01-01T00:00:00Z"
        ))
        .await;
    assert!(
        r.status == 404 || values(&r.body, "temp").is_empty(),
        "{} {}",
        r.status,
        r.text
    );
}

#[tokio::test]
async fn add_delete_and_modify() {
    let app = common::app().await;
    provision(&app).await;

    // Add attributes.
    let r = app
        .post_json(
            &format!("{T}/{ID}/attrs"),
            &json!({"pressure": [inst(json!(1000), 8, 0), inst(json!(1001), 9, 0)]}).to_string(),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let e = get_ok(&app, &format!("{T}/{ID}")).await;
    assert_eq!(values(&e, "pressure"), nums(&[1000, 1001]));
    let r = app
        .post_json(
            &format!("{T}/urn:ngsi-ld:T:unknown/attrs"),
            &json!({"pressure": [inst(json!(1), 8, 0)]}).to_string(),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(app.get(&format!("{T}/urn:ngsi-ld:T:unknown")).await.status == 404);

    // Delete an attribute.
    let r = delete(&app, &format!("{T}/{ID}/attrs/pressure")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let e = get_ok(&app, &format!("{T}/{ID}")).await;
    assert!(e.get("pressure").is_none(), "{e}");
    let r = delete(&app, &format!("{T}/{ID}/attrs/pressure")).await;
    assert_eq!(r.status, 404, "{}", r.text);

    // Modify an instance.
    let e = get_ok(&app, &format!("{T}/{ID}?attrs=temp")).await;
    let second = instances(&e, "temp")[1]["instanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = patch_json(
        &app,
        &format!("{T}/{ID}/attrs/temp/{second}"),
        &json!({"value": 42}).to_string(),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let e = get_ok(&app, &format!("{T}/{ID}?attrs=temp")).await;
    assert_eq!(values(&e, "temp"), nums(&[1, 42, 3]));
    assert_eq!(instances(&e, "temp")[1]["instanceId"], second.as_str());
    assert_eq!(observed(&e, "temp")[1], at(9, 0));

    // Delete an instance.
    let r = delete(&app, &format!("{T}/{ID}/attrs/temp/{second}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let e = get_ok(&app, &format!("{T}/{ID}?attrs=temp")).await;
    assert_eq!(values(&e, "temp"), nums(&[1, 3]));
    let r = delete(&app, &format!("{T}/{ID}/attrs/temp/{second}")).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = patch_json(
        &app,
        &format!("{T}/{ID}/attrs/temp/{second}"),
        &json!({"value": 1}).to_string(),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // Delete the entity.
    let r = delete(&app, &format!("{T}/{ID}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(app.get(&format!("{T}/{ID}")).await.status, 404);
    assert_eq!(delete(&app, &format!("{T}/{ID}")).await.status, 404);
}

#[tokio::test]
async fn core_writes_are_captured() {
    let app = common::app().await;
    let id = "urn:ngsi-ld:C:1";
    let r = app
        .post_json(
            E,
            &json!({"id": id, "type": "C", "temp": inst(json!(1), 8, 0), "name": {"type": "Property", "value": "a"}})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = patch_json(
        &app,
        &format!("{E}/{id}/attrs"),
        &json!({"temp": inst(json!(2), 9, 0)}).to_string(),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app
        .post_json(
            "/ngsi-ld/v1/entityOperations/upsert?options=update",
            &json!([{"id": id, "type": "C", "temp": inst(json!(3), 10, 0)}]).to_string(),
        )
        .await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text);

    let e = get_ok(&app, &format!("{T}/{id}")).await;
    assert_eq!(e["type"], "C");
    assert_eq!(values(&e, "temp"), nums(&[1, 2, 3]));
    assert_eq!(observed(&e, "temp"), [at(8, 0), at(9, 0), at(10, 0)]);
    // `name` has no observedAt: it is outside every observedAt window but
    // there with createdAt.
    let e = get_ok(&app, &format!("{T}/{id}?attrs=name&timeproperty=createdAt")).await;
    assert_eq!(values(&e, "name"), vec![json!("a")]);

    // Deleting an attribute through the core API leaves a deletion instance.
    let r = delete(&app, &format!("{E}/{id}/attrs/temp")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let e = get_ok(&app, &format!("{T}/{id}?timeproperty=deletedAt")).await;
    let del = instances(&e, "temp");
    assert_eq!(del.len(), 1, "{e}");
    assert!(del[0]["deletedAt"].is_string(), "{e}");
    assert!(e.get("name").is_none(), "{e}");
    // The earlier instances are still there.
    let e = get_ok(&app, &format!("{T}/{id}?attrs=temp")).await;
    assert_eq!(values(&e, "temp"), nums(&[1, 2, 3]));
}

/// One row of an aggregated method: `[value, start, end]`.
type AggRow = (f64, String, String);

/// The aggregated members of `attr` as `method -> [[value, start, end], …]`.
fn agg(e: &Value, attr: &str, method: &str) -> Vec<AggRow> {
    e[attr][method]
        .as_array()
        .unwrap_or_else(|| panic!("no {attr}.{method} in {e}"))
        .iter()
        .map(|row| {
            (
                row[0].as_f64().unwrap(),
                row[1].as_str().unwrap().to_string(),
                row[2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_rows(got: &[AggRow], want: &[AggRow], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.0 - w.0).abs() <= 1e-9 * w.0.abs().max(1.0),
            "{what}: {got:?} vs {want:?}"
        );
        assert_eq!((&g.1, &g.2), (&w.1, &w.2), "{what}");
    }
}

#[tokio::test]
async fn aggregation_matches_hand_computed_values() {
    let app = common::app().await;
    let body = json!({
        "id": ID,
        "type": "T",
        "temp": [
            inst(json!(1), 8, 0), inst(json!(2), 8, 20), inst(json!(2), 8, 40),
            inst(json!(10), 9, 10), inst(json!(-4), 9, 50),
            inst(json!(7), 10, 30), inst(json!("x"), 10, 45),
        ],
    });
    let r = app.post_json(T, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let methods = "totalCount,distinctCount,sum,avg,min,max,stddev,sumsq";
    let row = |v: f64, h: u32| (v, at(h, 0), at(h + 1, 0));
    // Periods [08,09), [09,10), [10,11): {1,2,2}, {10,-4}, {7,"x"}.
    let want: Vec<(&str, Vec<AggRow>)> = vec![
        ("totalCount", vec![row(3.0, 8), row(2.0, 9), row(2.0, 10)]),
        (
            "distinctCount",
            vec![row(2.0, 8), row(2.0, 9), row(2.0, 10)],
        ),
        ("sum", vec![row(5.0, 8), row(6.0, 9), row(7.0, 10)]),
        ("avg", vec![row(5.0 / 3.0, 8), row(3.0, 9), row(7.0, 10)]),
        ("min", vec![row(1.0, 8), row(-4.0, 9), row(7.0, 10)]),
        ("max", vec![row(2.0, 8), row(10.0, 9), row(7.0, 10)]),
        // Sample standard deviation; undefined for a single number.
        (
            "stddev",
            vec![row((1.0f64 / 3.0).sqrt(), 8), row(98f64.sqrt(), 9)],
        ),
        ("sumsq", vec![row(9.0, 8), row(116.0, 9), row(49.0, 10)]),
    ];
    // Without timerel the periods start at the first instance; with
    // timerel=after at timeAt (here the same instant).
    for q in [
        String::new(),
        format!("&timerel=after&timeAt={}", at(8, 0)),
        format!(
            "&timerel=between&timeAt={}&endTimeAt={}",
            at(8, 0),
            at(11, 0)
        ),
    ] {
        let e = get_ok(
            &app,
            &format!(
                "{T}/{ID}?format=aggregatedValues&aggrMethods={methods}&aggrPeriodDuration=PT1H{q}"
            ),
        )
        .await;
        assert_eq!(e["temp"]["type"], "Property", "{e}");
        for (m, rows) in &want {
            assert_rows(&agg(&e, "temp", m), rows, &format!("{m} {q}"));
        }
    }
    // Periods start at timeAt: [07:30, 08:30) holds 1 and 2, …
    let e = get_ok(
        &app,
        &format!(
            "{T}/{ID}?format=aggregatedValues&aggrMethods=totalCount,sum&aggrPeriodDuration=PT1H&timerel=after&timeAt={}",
            at(7, 30)
        ),
    )
    .await;
    let half = |v: f64, h: u32| (v, at(h, 30), at(h + 1, 30));
    assert_rows(
        &agg(&e, "temp", "totalCount"),
        &[half(2.0, 7), half(2.0, 8), half(1.0, 9), half(2.0, 10)],
        "totalCount from 07:30",
    );
    assert_rows(
        &agg(&e, "temp", "sum"),
        &[half(3.0, 7), half(12.0, 8), half(-4.0, 9), half(7.0, 10)],
        "sum from 07:30",
    );
    // One period over the whole window.
    let e = get_ok(
        &app,
        &format!(
            "{T}/{ID}?format=aggregatedValues&aggrMethods=totalCount,sum,max&timerel=between&timeAt={}&endTimeAt={}",
            at(8, 0),
            at(12, 0)
        ),
    )
    .await;
    assert_rows(
        &agg(&e, "temp", "totalCount"),
        &[(7.0, at(8, 0), at(12, 0))],
        "whole totalCount",
    );
    assert_rows(
        &agg(&e, "temp", "sum"),
        &[(18.0, at(8, 0), at(12, 0))],
        "whole sum",
    );
    assert_rows(
        &agg(&e, "temp", "max"),
        &[(10.0, at(8, 0), at(12, 0))],
        "whole max",
    );
}

/// Every instance's observedAt per attribute.
fn times_by_attr(e: &Value, attrs: &[&str]) -> Vec<(String, Vec<String>)> {
    attrs
        .iter()
        .map(|a| (a.to_string(), observed(e, a)))
        .collect()
}

#[tokio::test]
async fn temporal_pagination_cuts_consistently() {
    let app = common::app_with(ApiConfig {
        temporal_page: 3,
        ..ApiConfig::default()
    })
    .await;
    // a at 01, 03, 05, 07; b at 02, 04, 06: seven instances, pages of three.
    let body = json!({
        "id": ID,
        "type": "T",
        "a": [inst(json!(1), 1, 0), inst(json!(3), 3, 0), inst(json!(5), 5, 0), inst(json!(7), 7, 0)],
        "b": [inst(json!(2), 2, 0), inst(json!(4), 4, 0), inst(json!(6), 6, 0)],
    });
    let r = app.post_json(T, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);

    for uri in [format!("{T}/{ID}"), format!("{T}?type=T")] {
        let r = app.get(&uri).await;
        assert_eq!(r.status, 206, "{uri}: {}", r.text);
        let range = r.headers["content-range"].to_str().unwrap();
        assert_eq!(
            range, "date-time 2024-01-01T01:00:00.000Z-2024-01-01T03:00:00.000Z/*",
            "{uri}"
        );
        let e = if r.body.is_array() {
            r.body[0].clone()
        } else {
            r.body.clone()
        };
        // The oldest three, across both attributes.
        assert_eq!(
            times_by_attr(&e, &["a", "b"]),
            vec![
                ("a".to_string(), vec![at(1, 0), at(3, 0)]),
                ("b".to_string(), vec![at(2, 0)]),
            ],
            "{uri}"
        );
    }

    // The next page starts after the end of the previous one.
    let r = app
        .get(&format!(
            "{T}/{ID}?timerel=after&timeAt=2024-01-01T03:00:00.000001Z"
        ))
        .await;
    assert_eq!(r.status, 206, "{}", r.text);
    assert_eq!(
        times_by_attr(&r.body, &["a", "b"]),
        vec![
            ("a".to_string(), vec![at(5, 0)]),
            ("b".to_string(), vec![at(4, 0), at(6, 0)]),
        ]
    );
    let r = app
        .get(&format!(
            "{T}/{ID}?timerel=after&timeAt=2024-01-01T06:00:00.000001Z"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers.get("content-range").is_none());
    assert_eq!(observed(&r.body, "a"), [at(7, 0)]);

    // With lastN the newest are kept: last 2 per attribute = {05, 07} and
    // {04, 06}, four > three, so the page keeps 05, 06, 07.
    let r = app.get(&format!("{T}/{ID}?lastN=2")).await;
    assert_eq!(r.status, 206, "{}", r.text);
    let range = r.headers["content-range"].to_str().unwrap();
    assert_eq!(
        range,
        "date-time 2024-01-01T07:00:00.000Z-2024-01-01T05:00:00.000Z/2"
    );
    assert_eq!(
        times_by_attr(&r.body, &["a", "b"]),
        vec![
            ("a".to_string(), vec![at(5, 0), at(7, 0)]),
            ("b".to_string(), vec![at(6, 0)]),
        ]
    );

    // Small enough: no pagination.
    let r = app.get(&format!("{T}/{ID}?attrs=b")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers.get("content-range").is_none());
}

// ----- malformed temporal requests -----

/// Everything observable about the state: the temporal and the current
/// representation of the entities the cases touch.
async fn state(app: &App) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for uri in [
        format!("{T}/{ID}"),
        format!("{T}/{ID}?timeproperty=createdAt"),
        format!("{T}?type=T&timeproperty=createdAt"),
        format!("{T}/urn:ngsi-ld:T:bad"),
        format!("{E}/{ID}"),
        format!("{E}/urn:ngsi-ld:T:bad"),
        format!("{E}?type=T"),
    ] {
        let r = app.get(&uri).await;
        out.push((r.status.as_u16(), r.text));
    }
    out
}

/// One malformed request: a GET query string (applied to both the retrieve
/// and the query endpoint unless it is a whole URI), or a POST body; and a
/// word the problem's detail must contain.
enum Bad {
    /// Query parameters, for `/temporal/entities/{ID}` and `?type=T`.
    Params(&'static str),
    /// A whole GET URI.
    Uri(String),
    /// A body for POST /temporal/entities.
    Create(String),
    /// A body for POST /temporal/entities/{ID}/attrs.
    AddAttrs(String),
}

fn malformed_cases() -> Vec<(Bad, &'static str)> {
    use Bad::*;
    let t = "2024-01-01T08:00:00Z";
    let bad_inst =
        |attr: &str, v: Value| json!({"id": "urn:ngsi-ld:T:bad", "type": "T", attr: v}).to_string();
    vec![
        (Params("timerel=before"), "timeAt"),
        (Params("timeAt=2024-01-01T08:00:00Z"), "timerel"),
        (Params("timerel=during&timeAt=2024-01-01T08:00:00Z"), "timerel"),
        (Params("timerel=between&timeAt=2024-01-01T08:00:00Z"), "endTimeAt"),
        (
            Params("timerel=between&timeAt=2024-01-01T08:00:00Z&endTimeAt=2024-01-01T07:00:00Z"),
            "endTimeAt",
        ),
        (
            Params("timerel=between&timeAt=2024-01-01T08:00:00Z&endTimeAt=2024-01-01T08:00:00Z"),
            "endTimeAt",
        ),
        (Params("timerel=after&timeAt=yesterday"), "timeAt"),
        (Params("timerel=after&timeAt=2024-13-01T08:00:00Z"), "timeAt"),
        (
            Params("timerel=between&timeAt=2024-01-01T08:00:00Z&endTimeAt=later"),
            "endTimeAt",
        ),
        (Params("lastN=0"), "lastN"),
        (Params("lastN=-1"), "lastN"),
        (Params("lastN=abc"), "lastN"),
        (Params("lastN="), "lastN"),
        (Params("timeproperty=observedat"), "timeproperty"),
        (Params("timeproperty=bogus"), "timeproperty"),
        (Params("format=aggregatedValues&aggrMethods=bogus"), "aggrMethods"),
        (Params("format=aggregatedValues&aggrMethods=sum,,avg"), "aggrMethods"),
        (Params("format=aggregatedValues&aggrMethods=sum,"), "aggrMethods"),
        (Params("format=aggregatedValues&aggrMethods="), "aggrMethods"),
        (Params("format=aggregatedValues"), "aggrMethods"),
        (Params("options=aggregatedValues"), "aggrMethods"),
        (
            Params("format=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=1H"),
            "aggrPeriodDuration",
        ),
        (
            Params("format=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=PT"),
            "aggrPeriodDuration",
        ),
        (
            Params("format=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=P1Q"),
            "aggrPeriodDuration",
        ),
        (Params("pick=temp&omit=humidity"), "omit"),
        (Params("pick=temp&attrs=temp"), "pick"),
        (Uri(T.to_string()), "type"),
        (Uri(format!("{T}?timerel=after&timeAt={t}")), "type"),
        (Uri(format!("{T}?type=T&orderBy=name")), "orderBy"),
        (Uri(format!("{T}?type=T&orderBy=id,name")), "orderBy"),
        (Uri(format!("{T}/not-a-uri")), "not-a-uri"),
        (Uri(format!("{T}/not-a-uri?lastN=1")), "not-a-uri"),
        (Create("[1]".into()), "object"),
        (Create("\"text\"".into()), "object"),
        (Create("{".into()), "JSON"),
        (Create(json!({"type": "T"}).to_string()), "id"),
        (Create(json!({"id": "not a uri", "type": "T"}).to_string()), "not a uri"),
        (Create(json!({"id": "urn:ngsi-ld:T:bad"}).to_string()), "type"),
        (Create(bad_inst("temp", json!([]))), "temp"),
        (
            Create(bad_inst(
                "temp",
                json!([{"type": "Property", "value": 1, "observedAt": "2024-01-01T08:00:00+03:00"}]),
            )),
            "observedAt",
        ),
        (
            Create(bad_inst(
                "temp",
                json!([{"type": "Property", "value": 1, "observedAt": "yesterday"}]),
            )),
            "observedAt",
        ),
        (
            Create(bad_inst("temp", json!([{"type": "Property"}]))),
            "temp",
        ),
        (AddAttrs("[1]".into()), "object"),
        (AddAttrs(json!({"temp": []}).to_string()), "temp"),
        (
            AddAttrs(
                json!({"temp": [{"type": "Property", "value": 1, "observedAt": "2024-01-01T08:00:00+03:00"}]})
                    .to_string(),
            ),
            "observedAt",
        ),
    ]
}

/// A problem-details answer (400, type/title/detail) whose detail names `word`.
fn check_problem(what: &str, r: &Resp, word: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text);
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/problem+json") || ct.starts_with("application/json"),
        "{what}: content-type {ct}"
    );
    for k in ["type", "title", "detail"] {
        assert!(r.body[k].is_string(), "{what}: no '{k}' in {}", r.text);
    }
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.to_lowercase().contains(&word.to_lowercase()),
        "{what}: detail '{detail}' does not name '{word}'"
    );
}

#[tokio::test]
async fn malformed_temporal_requests_are_rejected_without_change() {
    let app = common::app().await;
    provision(&app).await;
    let before = state(&app).await;
    for (case, word) in malformed_cases() {
        match case {
            Bad::Params(q) => {
                for uri in [format!("{T}/{ID}?{q}"), format!("{T}?type=T&{q}")] {
                    let r = app.get(&uri).await;
                    check_problem(&format!("GET {uri}"), &r, word);
                }
            }
            Bad::Uri(uri) => {
                let r = app.get(&uri).await;
                check_problem(&format!("GET {uri}"), &r, word);
            }
            Bad::Create(body) => {
                let r = app.post_json(T, &body).await;
                check_problem(&format!("POST {body}"), &r, word);
            }
            Bad::AddAttrs(body) => {
                let r = app.post_json(&format!("{T}/{ID}/attrs"), &body).await;
                check_problem(&format!("POST attrs {body}"), &r, word);
            }
        }
    }
    assert_eq!(
        state(&app).await,
        before,
        "a malformed request changed the state"
    );
}

#[tokio::test]
async fn aggregation_counts_numbers_whatever_the_spelling_of_observed_at() {
    let app = common::app().await;
    // `.5Z` is a valid DateTime but none of the usual spellings.
    let body = json!({
        "id": ID,
        "type": "T",
        "temp": [
            {"type": "Property", "value": 5, "observedAt": "2024-01-01T08:00:00.5Z"},
            {"type": "Property", "value": 7, "observedAt": "2024-01-01T08:10:00Z"},
            {"type": "Property", "value": 9, "observedAt": "2024-01-01T08:20:00.1234Z"},
        ],
    });
    let r = app.post_json(T, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let e = get_ok(
        &app,
        &format!(
            "{T}/{ID}?format=aggregatedValues&aggrMethods=totalCount,sum,min,max&timerel=between&timeAt={}&endTimeAt={}",
            at(8, 0),
            at(9, 0)
        ),
    )
    .await;
    let whole = |v: f64| vec![(v, at(8, 0), at(9, 0))];
    assert_rows(&agg(&e, "temp", "totalCount"), &whole(3.0), "totalCount");
    assert_rows(&agg(&e, "temp", "sum"), &whole(21.0), "sum");
    assert_rows(&agg(&e, "temp", "min"), &whole(5.0), "min");
    assert_rows(&agg(&e, "temp", "max"), &whole(9.0), "max");
    // The instances keep their instants (and values).
    let e = get_ok(&app, &format!("{T}/{ID}")).await;
    assert_eq!(values(&e, "temp"), nums(&[5, 7, 9]));
    let instants: Vec<String> = observed(&e, "temp")
        .iter()
        .map(|t| dosi_ngsi::Timestamp::parse(t).unwrap().0.to_string())
        .collect();
    assert_eq!(
        instants,
        ["1704096000500000", "1704096600000000", "1704097200123400"]
    );
}

/// scopeQ on a temporal query works per scope validity interval (C.5.16):
/// a scope instance is valid from its time to the next one; only instances
/// inside an interval where the scope matched qualify and are returned.
#[tokio::test]
async fn scope_q_follows_the_scope_validity_intervals() {
    let app = common::app().await;
    let body = json!({
        "id": "urn:ngsi-ld:T:scoped", "type": "T",
        "scope": [
            {"type": "Property", "value": "/R", "observedAt": at(8, 0)},
            {"type": "Property", "value": "/S", "observedAt": at(10, 0)},
        ],
        "speed": [inst(json!(1), 9, 0), inst(json!(2), 11, 0)],
    });
    let r = app.post_json(T, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let window = format!(
        "timerel=between&timeAt={}&endTimeAt={}",
        at(7, 0),
        at(12, 0)
    );
    let old = get_ok(&app, &format!("{T}?type=T&scopeQ=/R&{window}")).await;
    assert_eq!(values(&old[0], "speed"), nums(&[1]), "{old}");
    let new = get_ok(&app, &format!("{T}?type=T&scopeQ=/S&{window}")).await;
    assert_eq!(values(&new[0], "speed"), nums(&[2]), "{new}");
    // A window in which /S was never valid does not select the entity.
    let early = format!(
        "timerel=between&timeAt={}&endTimeAt={}",
        at(7, 0),
        at(9, 30)
    );
    let none = get_ok(&app, &format!("{T}?type=T&scopeQ=/S&{early}")).await;
    assert_eq!(none, json!([]));
}
