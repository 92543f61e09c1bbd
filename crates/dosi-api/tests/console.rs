//! The console through HTTP: its page and files, the live stream, the map
//! snapshot and the console configuration.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dosi_api::sim::SimControl;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const LINK: &str = "<https://dosi.city/contexts/packs.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";

fn spot(id: &str, status: &str, lon: f64, lat: f64) -> Value {
    json!({
        "id": format!("urn:ngsi-ld:ParkingSpot:{id}"),
        "type": "ParkingSpot",
        "status": {"type": "Property", "value": status},
        "category": {"type": "Property", "value": ["onStreet"]},
        "refParkingSite": {"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:lot1"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
    })
}

async fn upsert(app: &common::App, entities: Value) {
    let r = app
        .call(
            "POST",
            "/ngsi-ld/v1/entityOperations/upsert",
            &[("content-type", "application/json"), ("link", LINK)],
            Some(&entities.to_string()),
        )
        .await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text);
}

#[tokio::test]
async fn page_is_self_contained_html() {
    let app = common::app().await;
    let r = app.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    assert!(r
        .text
        .contains("<script type=\"module\" src=\"/console/app.js\">"));
    for external in [
        "src=\"http://",
        "src=\"https://",
        "href=\"http://",
        "href=\"https://",
    ] {
        assert!(!r.text.contains(external), "the page loads {external}…");
    }
    assert!(r.headers.contains_key("etag"));
    assert!(r.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
}

#[tokio::test]
async fn files_have_their_media_types_and_revalidate() {
    let app = common::app().await;
    let cases = [
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/map.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ];
    for (path, ct) in cases {
        let r = app.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.headers["content-type"], ct, "{path}");
        assert_eq!(r.headers["cache-control"], "no-cache", "{path}");
        let etag = r.headers["etag"].to_str().unwrap().to_string();
        let again = app
            .call("GET", path, &[("if-none-match", &etag)], None)
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.text.is_empty());
    }
    let r = app.get("/console/nope.js").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.body["type"]
        .as_str()
        .unwrap()
        .contains("ResourceNotFound"));
    // Other paths still answer the API's 404.
    assert_eq!(app.get("/nothing-here").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn map_points_are_compact_arrays_with_status() {
    let app = common::app().await;
    upsert(
        &app,
        json!([
            spot("a", "free", 102.83, 16.43),
            spot("b", "occupied", 102.84, 16.44),
            {"id": "urn:ngsi-ld:Thing:nowhere", "type": "Thing", "name": {"type": "Property", "value": "x"}},
            {"id": "urn:ngsi-ld:EmergencyBell:b1", "type": "EmergencyBell",
             "pressed": {"type": "Property", "value": true},
             "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [102.8, 16.4]}}},
            {"id": "urn:ngsi-ld:Geofence:g1", "type": "Geofence",
             "fenceType": {"type": "Property", "value": "keepIn"},
             "location": {"type": "GeoProperty", "value": {"type": "Polygon",
                "coordinates": [[[102.0, 16.0], [102.2, 16.0], [102.2, 16.2], [102.0, 16.2], [102.0, 16.0]]]}}},
        ]),
    )
    .await;
    let r = app.get("/api/v1/map/points").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["count"], 4);
    let mut points = r.body["points"].as_array().unwrap().clone();
    points.sort_by_key(|p| p[0].as_str().unwrap().to_string());
    assert_eq!(
        Value::Array(points),
        json!([
            [
                "urn:ngsi-ld:EmergencyBell:b1",
                "EmergencyBell",
                102.8,
                16.4,
                "pressed"
            ],
            ["urn:ngsi-ld:Geofence:g1", "Geofence", 102.1, 16.1, ""],
            [
                "urn:ngsi-ld:ParkingSpot:a",
                "ParkingSpot",
                102.83,
                16.43,
                "free"
            ],
            [
                "urn:ngsi-ld:ParkingSpot:b",
                "ParkingSpot",
                102.84,
                16.44,
                "occupied"
            ],
        ])
    );
    assert!(r.body["at"].as_str().unwrap().ends_with('Z'));
    // Another tenant has none; bad parameters are problems.
    let r = app.get("/api/v1/map/points?tenant=other").await;
    assert_eq!(r.body["count"], 0);
    let r = app.get("/api/v1/map/points?bogus=1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains("bogus"));
    let r = app.get("/api/v1/events?tenant=bad%20tenant").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

/// Reads SSE frames until an event of `kind` arrives; its data as JSON.
async fn next_event(body: &mut Body, buf: &mut String, kind: &str) -> Value {
    let wait = async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut event = "";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if event == kind {
                    return serde_json::from_str(&data).unwrap();
                }
            }
            let frame = body.frame().await.expect("the stream ended").unwrap();
            if let Ok(bytes) = frame.into_data() {
                buf.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    };
    // A guard against hanging forever, not a latency assertion.
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no {kind} event"))
}

#[tokio::test]
async fn events_stream_a_patched_entity_in_short_terms() {
    let app = common::app().await;
    upsert(&app, json!([spot("s1", "free", 102.83, 16.43)])).await;
    let resp = app
        .router
        .clone()
        .oneshot(Request::get("/api/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut buf = String::new();
    let ready = next_event(&mut body, &mut buf, "ready").await;
    assert!(ready["at"].is_string());

    let r = app
        .call(
            "PATCH",
            "/ngsi-ld/v1/entities/urn:ngsi-ld:ParkingSpot:s1/attrs",
            &[("content-type", "application/json"), ("link", LINK)],
            Some(r#"{"status": {"type": "Property", "value": "occupied"}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let batch = next_event(&mut body, &mut buf, "changes").await;
    assert!(batch["seq"].as_u64().unwrap() > 0);
    let change = &batch["changes"][0];
    assert_eq!(change["id"], "urn:ngsi-ld:ParkingSpot:s1");
    assert_eq!(change["type"], "ParkingSpot");
    assert_eq!(change["kind"], "updated");
    assert_eq!(change["status"], "occupied");
    assert_eq!(change["loc"], json!([102.83, 16.43]));
    assert_eq!(change["attrs"], json!({"status": "occupied"}));

    // Several changes of one entity within the window arrive as one entry.
    for v in ["free", "occupied", "closed"] {
        let body = format!(r#"{{"status": {{"type": "Property", "value": "{v}"}}}}"#);
        app.call(
            "PATCH",
            "/ngsi-ld/v1/entities/urn:ngsi-ld:ParkingSpot:s1/attrs",
            &[("content-type", "application/json"), ("link", LINK)],
            Some(&body),
        )
        .await;
    }
    let r = app
        .call(
            "DELETE",
            "/ngsi-ld/v1/entities/urn:ngsi-ld:ParkingSpot:s1",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // However the windows fell, the last entry for s1 says it is gone.
    let mut last = Value::Null;
    while last["kind"] != "deleted" {
        let batch = next_event(&mut body, &mut buf, "changes").await;
        let mine: Vec<&Value> = batch["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"] == "urn:ngsi-ld:ParkingSpot:s1")
            .collect();
        assert!(mine.len() <= 1, "one entry per entity and batch: {batch}");
        if let Some(c) = mine.first() {
            last = (*c).clone();
        }
    }
}

struct TestSim;

impl SimControl for TestSim {
    fn status(&self) -> Value {
        json!({"simTime": "2027-02-15T01:00:00Z", "speed": 60, "devices": 0,
               "scenarios": ["flood", "bell"], "active": []})
    }
    fn trigger(&self, kind: &str, _target: Option<&str>) -> dosi_ngsi::Result<Value> {
        Ok(json!({ "kind": kind }))
    }
    fn basemap(&self) -> Option<Arc<Vec<u8>>> {
        None
    }
}

#[tokio::test]
async fn config_names_tiles_and_the_simulator() {
    let app = common::app().await;
    let r = app.get("/api/v1/console/config").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["tileUrl"], "");
    assert_eq!(r.body["sim"], false);
    assert_eq!(r.body["scenarios"], json!([]));

    let app = common::app_with(dosi_api::ApiConfig {
        console_tile_url: "https://tiles.example/{z}/{x}/{y}.png".into(),
        console_tile_attribution: "© Example".into(),
        ..Default::default()
    })
    .await;
    let _ = app.state.sim.set(Arc::new(TestSim));
    let r = app.get("/api/v1/console/config").await;
    assert_eq!(r.body["tileUrl"], "https://tiles.example/{z}/{x}/{y}.png");
    assert_eq!(r.body["tileAttribution"], "© Example");
    assert_eq!(r.body["sim"], true);
    assert_eq!(r.body["scenarios"], json!(["flood", "bell"]));
}

#[tokio::test]
async fn a_client_that_falls_behind_is_told_to_resync() {
    let app = common::app().await;
    let resp = app
        .router
        .clone()
        .oneshot(
            Request::get("/api/v1/events?tenant=")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut buf = String::new();
    next_event(&mut body, &mut buf, "ready").await;
    // More changes than the bus buffers (1,024 in the test app) while the
    // stream is not read.
    for batch in 0..12 {
        let spots: Vec<Value> = (0..100)
            .map(|k| spot(&format!("{batch}-{k}"), "free", 102.8, 16.4))
            .collect();
        upsert(&app, Value::Array(spots)).await;
    }
    let resync = next_event(&mut body, &mut buf, "resync").await;
    assert!(resync["missed"].as_u64().unwrap() > 0);
}
