//! The FIWARE IoT Agent provisioning API (`/iot/services`, `/iot/devices`).

mod common;

use serde_json::json;

async fn call(
    app: &common::App,
    method: &str,
    uri: &str,
    svc: &str,
    body: Option<&str>,
) -> common::Resp {
    let mut h = vec![("fiware-service", svc), ("fiware-servicepath", "/gangnam")];
    if body.is_some() {
        h.push(("content-type", "application/json"));
    }
    app.call(method, uri, &h, body).await
}

#[tokio::test]
async fn provisioning_round_trip() {
    let app = common::app().await;
    let groups = json!({"services": [{"apikey": "k1", "resource": "/iot/d", "entity_type": "WaterLevelSensor",
        "attributes": [{"object_id": "h", "name": "height", "type": "Number", "unitCode": "MTR"}]}]});
    let r = call(
        &app,
        "POST",
        "/iot/services",
        "seoul",
        Some(&groups.to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = call(
        &app,
        "POST",
        "/iot/services",
        "seoul",
        Some(&groups.to_string()),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("DUPLICATE_GROUP"), "{}", r.text);
    let r = call(&app, "GET", "/iot/services", "seoul", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["services"][0]["subservice"], "/gangnam");
    let r = call(&app, "GET", "/iot/services", "busan", None).await;
    assert_eq!(r.body["count"], 0, "services are separate");

    let devices = json!({"devices": [
        {"device_id": "gauge1", "entity_name": "urn:ngsi-ld:WaterLevelSensor:gauge1", "entity_type": "WaterLevelSensor",
         "protocol": "PDI-IoTA-UltraLight", "transport": "MQTT",
         "attributes": [{"object_id": "h", "name": "height", "type": "Number"}],
         "commands": [{"name": "reset", "type": "command"}]},
        {"device_id": "gauge2"}]});
    let r = call(
        &app,
        "POST",
        "/iot/devices",
        "seoul",
        Some(&devices.to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = call(&app, "GET", "/iot/devices?limit=1", "seoul", None).await;
    assert_eq!(r.body["count"], 2);
    assert_eq!(r.body["devices"].as_array().unwrap().len(), 1);
    let r = call(&app, "GET", "/iot/devices/gauge1", "seoul", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["attributes"][0]["object_id"], "h");
    assert_eq!(r.body["service_path"], "/gangnam");
    let r = call(
        &app,
        "PUT",
        "/iot/devices/gauge1",
        "seoul",
        Some(r#"{"timezone": "Asia/Seoul"}"#),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = call(&app, "GET", "/iot/devices/gauge1", "seoul", None).await;
    assert_eq!(r.body["timezone"], "Asia/Seoul");
    let r = call(&app, "DELETE", "/iot/devices/gauge2", "seoul", None).await;
    assert_eq!(r.status, 204);
    let r = call(&app, "GET", "/iot/devices/gauge2", "seoul", None).await;
    assert_eq!(r.status, 404);
    let r = call(
        &app,
        "DELETE",
        "/iot/services?apikey=k1&resource=/iot/d",
        "seoul",
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = call(&app, "GET", "/iot/services", "seoul", None).await;
    assert_eq!(r.body["count"], 0);
}

#[tokio::test]
async fn bad_provisioning_is_a_problem_and_changes_nothing() {
    let app = common::app().await;
    for (method, uri, body) in [
        ("POST", "/iot/devices", "not json"),
        ("POST", "/iot/devices", r#"{"devices": []}"#),
        (
            "POST",
            "/iot/devices",
            r#"{"device": [{"device_id": "x"}]}"#,
        ),
        (
            "POST",
            "/iot/devices",
            r#"{"devices": [{"device_id": "a b"}]}"#,
        ),
        (
            "POST",
            "/iot/devices",
            r#"{"devices": [{"device_id": "x", "entity_name": "no uri"}]}"#,
        ),
        (
            "POST",
            "/iot/devices",
            r#"{"devices": [{"device_id": "x"}, {"device_id": "x"}]}"#,
        ),
        (
            "POST",
            "/iot/devices",
            r#"{"devices": [{"entity_name": "urn:x:1"}]}"#,
        ),
        (
            "POST",
            "/iot/services",
            r#"{"services": [{"resource": "/iot/d"}]}"#,
        ),
        ("PUT", "/iot/services?apikey=k1", "{}"),
        ("DELETE", "/iot/services", ""),
        ("GET", "/iot/devices?limit=abc", ""),
        ("GET", "/iot/devices?bogus=1", ""),
    ] {
        let b = (!body.is_empty()).then_some(body);
        let r = call(&app, method, uri, "seoul", b).await;
        assert!(
            r.status == 400 || r.status == 409,
            "{method} {uri} {body}: {} {}",
            r.status,
            r.text
        );
        assert!(r.body.get("detail").is_some(), "{method} {uri}: {}", r.text);
    }
    let r = call(&app, "GET", "/iot/devices", "seoul", None).await;
    assert_eq!(r.body["count"], 0, "nothing was written: {}", r.text);
    let r = call(&app, "GET", "/iot/devices", "Bad Service!", None).await;
    assert_eq!(r.status, 400);
}

/// Measures over HTTP (`/iot/d` UltraLight, `/iot/json`) go through the
/// write path: the entity and its history change; bad payloads, unknown
/// keys and unknown devices write nothing.
#[tokio::test]
async fn http_measures_update_the_entity_and_its_history() {
    let app = common::app().await;
    let group = json!({"services": [{"apikey": "k1", "resource": "/iot/d", "entity_type": "WaterLevelSensor",
        "autoprovision": false,
        "attributes": [{"object_id": "h", "name": "height", "type": "Number", "unitCode": "MTR"},
                       {"object_id": "r", "name": "rain", "type": "Number"}]}]});
    let r = call(&app, "POST", "/iot/services", "", Some(&group.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let dev = json!({"devices": [{"device_id": "gauge1", "apikey": "k1",
        "entity_name": "urn:ngsi-ld:WaterLevelSensor:gauge1", "entity_type": "WaterLevelSensor"}]});
    let r = call(&app, "POST", "/iot/devices", "", Some(&dev.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let ul = app
        .call(
            "POST",
            "/iot/d?k=k1&i=gauge1",
            &[("content-type", "text/plain")],
            Some("2026-07-01T09:00:00Z|h|2.4|r|10#2026-07-01T09:01:00Z|h|2.6"),
        )
        .await;
    assert_eq!(ul.status, 200, "{}", ul.text);
    let e = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterLevelSensor:gauge1")
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.body["height"]["value"], json!(2.6), "{}", e.text);
    assert_eq!(e.body["height"]["unitCode"], "MTR");
    assert_eq!(e.body["height"]["observedAt"], "2026-07-01T09:01:00Z");
    assert_eq!(e.body["rain"]["value"], json!(10));
    let h = app
        .get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WaterLevelSensor:gauge1?attrs=height&options=temporalValues")
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(
        h.body["height"]["values"],
        json!([[2.4, "2026-07-01T09:00:00Z"], [2.6, "2026-07-01T09:01:00Z"]]),
        "{}",
        h.text
    );

    let js = app
        .call(
            "POST",
            "/iot/json?k=k1&i=gauge1",
            &[("content-type", "application/json")],
            Some(r#"{"h": 2.9, "TimeInstant": "2026-07-01T09:02:00Z"}"#),
        )
        .await;
    assert_eq!(js.status, 200, "{}", js.text);
    let e = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterLevelSensor:gauge1")
        .await;
    assert_eq!(e.body["height"]["value"], json!(2.9));

    // Nothing is written by what is refused.
    for (uri, body, status) in [
        ("/iot/d?k=k1&i=gauge1", "h|abc", 400),
        ("/iot/d?k=k1&i=gauge1", "h|1|r", 400),
        ("/iot/d?k=k1&i=gauge1", "", 400),
        ("/iot/json?k=k1&i=gauge1", "{not json", 400),
        ("/iot/d?k=nokey&i=gauge1", "h|1", 404),
        ("/iot/d?k=k1&i=stranger", "h|1", 404),
        ("/iot/d?i=gauge1", "h|1", 400),
    ] {
        let r = app
            .call("POST", uri, &[("content-type", "text/plain")], Some(body))
            .await;
        assert_eq!(r.status, status, "{uri} {body}: {}", r.text);
        assert!(r.body.get("detail").is_some(), "{}", r.text);
    }
    let e = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterLevelSensor:gauge1")
        .await;
    assert_eq!(
        e.body["height"]["value"],
        json!(2.9),
        "unchanged: {}",
        e.text
    );
    let none = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterLevelSensor:stranger")
        .await;
    assert_eq!(none.status, 404);
}

/// An unknown device of a group with autoprovision is provisioned by its
/// first measure.
#[tokio::test]
async fn autoprovision_on_first_measure() {
    let app = common::app().await;
    let group = json!({"services": [{"apikey": "farm", "resource": "/iot/json", "entity_type": "SoilSensor"}]});
    let r = call(&app, "POST", "/iot/services", "", Some(&group.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .call(
            "POST",
            "/iot/json?k=farm&i=soil7",
            &[("content-type", "application/json")],
            Some(r#"{"moisture": 31.5}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = call(&app, "GET", "/iot/devices/soil7", "", None).await;
    assert_eq!(d.status, 200, "{}", d.text);
    let e = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:SoilSensor:soil7")
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.body["moisture"]["value"], json!(31.5));
}
