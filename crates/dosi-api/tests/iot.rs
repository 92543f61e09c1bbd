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

/// Measures arriving together share commits (`ingest_batch`), yet every
/// measure of a device stays an instance of its history, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_measures_keep_every_instance() {
    let app = common::app().await;
    let group = json!({"services": [{"apikey": "burst", "resource": "/iot/d", "entity_type": "Gauge",
        "attributes": [{"object_id": "h", "name": "height", "type": "Number"}]}]});
    let r = call(&app, "POST", "/iot/services", "", Some(&group.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let calls = (0..60).map(|n| {
        let uri = format!("/iot/d?k=burst&i=g{}", n % 4);
        // Each device's measures in order of n; two groups in some payloads.
        let body = if n % 10 == 0 {
            format!(
                "2026-11-22T10:00:{:02}Z|h|{n}#2026-11-22T10:00:{:02}.5Z|h|{n}.5",
                n, n
            )
        } else {
            format!("2026-11-22T10:00:{n:02}Z|h|{n}")
        };
        let app = &app;
        async move { app.call("POST", &uri, &[], Some(&body)).await }
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for d in 0..4 {
        let h = app
            .get(&format!(
                "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Gauge:g{d}?attrs=height&options=temporalValues"
            ))
            .await;
        assert_eq!(h.status, 200, "{}", h.text);
        let values = h.body["height"]["values"].as_array().unwrap().clone();
        let expected: Vec<f64> = (0..60)
            .filter(|n| n % 4 == d)
            .flat_map(|n| {
                let n = n as f64;
                if n as i64 % 10 == 0 {
                    vec![n, n + 0.5]
                } else {
                    vec![n]
                }
            })
            .collect();
        let got: Vec<f64> = values.iter().map(|v| v[0].as_f64().unwrap()).collect();
        assert_eq!(got, expected, "{}", h.text);
    }
}

/// A maker's own JSON shape, read with the group's JSONPaths; a bad path is
/// refused at provisioning.
#[tokio::test]
async fn vendor_json_is_read_with_json_paths() {
    let app = common::app().await;
    let group = json!({"services": [{"apikey": "acme", "resource": "/iot/json",
    "entity_type": "WaterObserved", "timestamp_path": "$.meta.ts",
    "attributes": [
        {"name": "height", "type": "Number", "unitCode": "MTR", "json_path": "$.readings[0].lvl"},
        {"name": "flow", "type": "Number", "json_path": "$.readings[?@.kind == 'flow'].v"}
    ]}]});
    let r = call(&app, "POST", "/iot/services", "", Some(&group.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let body = json!({"meta": {"ts": "2026-11-22T10:00:00Z"},
        "readings": [{"lvl": 2.75}, {"kind": "flow", "v": 12.5}]});
    let r = app
        .call(
            "POST",
            "/iot/json?k=acme&i=river3",
            &[("content-type", "application/json")],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let e = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river3")
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.body["height"]["value"], json!(2.75));
    assert_eq!(e.body["height"]["unitCode"], json!("MTR"));
    assert_eq!(
        e.body["height"]["observedAt"],
        json!("2026-11-22T10:00:00Z")
    );
    assert_eq!(e.body["flow"]["value"], json!(12.5));
    // Nothing mapped matches: refused, nothing written.
    let r = app
        .call(
            "POST",
            "/iot/json?k=acme&i=river4",
            &[("content-type", "application/json")],
            Some(r#"{"other": 1}"#),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let bad = json!({"services": [{"apikey": "acme2", "resource": "/iot/json",
        "attributes": [{"name": "h", "type": "Number", "json_path": "$.readings[0"}]}]});
    let r = call(&app, "POST", "/iot/services", "", Some(&bad.to_string())).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("not a JSONPath"), "{}", r.text);
}

// ----- Native device API (`/api/v1/devices`) -----

const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0r6Vvxy1mjJ8Kz+zoCz4qp0jv7n8nXNwJ6u9j7cKx5g";

/// Create, read, change, rotate and delete a device with credentials; the
/// generated token is shown once and opens the native measures endpoint.
#[tokio::test]
async fn native_devices_with_credentials() {
    let app = common::app().await;
    let fp = "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";
    let dev = json!({"id": "gauge-7", "service": "city", "servicePath": "/",
        "entityId": "urn:ngsi-ld:WaterLevelSensor:gauge-7", "entityType": "WaterLevelSensor",
        "protocol": "JSON", "transport": "HTTP",
        "attributes": [{"object_id": "h", "name": "height", "type": "Number"}],
        "credentials": {"token": true, "mqtt": {"username": "gauge-7", "password": "pw-7"}, "certFingerprint": fp},
        "liveness": {"intervalSeconds": 300}});
    let r = app.post_json("/api/v1/devices", &dev.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(r.headers["location"], "/api/v1/devices/gauge-7");
    assert_eq!(r.body["credentials"]["token"], true);
    assert_eq!(r.body["credentials"]["mqtt"]["username"], "gauge-7");
    assert_eq!(r.body["credentials"]["mqtt"]["password"], true);
    assert_eq!(r.body["credentials"]["certFingerprint"], fp);
    assert_eq!(r.body["liveness"]["intervalSeconds"], 300);

    let g = app.get("/api/v1/devices/gauge-7").await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert!(g.body.get("token").is_none(), "shown once: {}", g.text);
    assert!(
        !g.text.contains(&token) && !g.text.contains("argon2"),
        "{}",
        g.text
    );
    assert_eq!(g.body["lastSeen"], serde_json::Value::Null);
    // The same registry device as the IoT Agent API's.
    let iota = call(&app, "GET", "/iot/devices/gauge-7", "city", None).await;
    assert_eq!(iota.status, 200, "{}", iota.text);
    assert_eq!(
        iota.body["entity_name"],
        "urn:ngsi-ld:WaterLevelSensor:gauge-7"
    );
    let l = app.get("/api/v1/devices?service=city").await;
    assert_eq!(l.headers["x-total-count"], "1");

    let bearer = format!("Bearer {token}");
    let m = app
        .call(
            "POST",
            "/api/v1/devices/gauge-7/measures",
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            Some(r#"[{"h": 1.5, "TimeInstant": "2026-07-01T09:00:00Z"}, {"h": 1.7}]"#),
        )
        .await;
    assert_eq!(m.status, 204, "{}", m.text);
    let e = app
        .call(
            "GET",
            "/ngsi-ld/v1/entities/urn:ngsi-ld:WaterLevelSensor:gauge-7",
            &[("ngsild-tenant", "city")],
            None,
        )
        .await;
    assert_eq!(e.body["height"]["value"], json!(1.7), "{}", e.text);
    let g = app.get("/api/v1/devices/gauge-7").await;
    assert!(g.body["lastSeen"].is_string(), "{}", g.text);
    assert_eq!(g.body["online"], true);

    // 401 without or with a wrong token, 403 for another device's token.
    let other = json!({"id": "gauge-8", "service": "city", "credentials": {"token": "a-given-token-of-gauge-8"}});
    let r = app.post_json("/api/v1/devices", &other.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body.get("token").is_none(), "a given token is not echoed");
    for (auth, status) in [
        (None, 401),
        (Some("Bearer nope"), 401),
        (Some("Basic Zm9vOmJhcg=="), 401),
        (Some("Bearer a-given-token-of-gauge-8"), 403),
    ] {
        let mut h = vec![("content-type", "application/json")];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        let r = app
            .call(
                "POST",
                "/api/v1/devices/gauge-7/measures",
                &h,
                Some(r#"{"h": 9}"#),
            )
            .await;
        assert_eq!(r.status, status, "{auth:?}: {}", r.text);
        assert!(r.body["detail"].is_string(), "{}", r.text);
    }
    let bad = app
        .call(
            "POST",
            "/api/v1/devices/gauge-7/measures",
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            Some("{nope"),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);

    // Change fields; credentials only through their own resource.
    let p = app
        .call(
            "PATCH",
            "/api/v1/devices/gauge-7",
            &[("content-type", "application/json")],
            Some(r#"{"timezone": "Asia/Seoul", "liveness": {"intervalSeconds": 60}}"#),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["timezone"], "Asia/Seoul");
    assert_eq!(p.body["liveness"]["intervalSeconds"], 60);
    for body in [
        r#"{"credentials": {}}"#,
        r#"{"id": "x"}"#,
        r#"[1]"#,
        r#"{"commands": [{"name": "a", "type": "Text"}]}"#,
    ] {
        let p = app
            .call(
                "PATCH",
                "/api/v1/devices/gauge-7",
                &[("content-type", "application/json")],
                Some(body),
            )
            .await;
        assert_eq!(p.status, 400, "{body}: {}", p.text);
    }

    // Rotation: the old token stops working, the new one works.
    let rot = app
        .post_json(
            "/api/v1/devices/gauge-7/credentials",
            r#"{"token": true, "mqtt": {"username": "gauge-7", "passwordHash": "HASH"}}"#
                .replace("HASH", HASH)
                .as_str(),
        )
        .await;
    assert_eq!(rot.status, 200, "{}", rot.text);
    let new = rot.body["token"].as_str().unwrap().to_string();
    assert_ne!(new, token);
    assert_eq!(
        rot.body["credentials"]["certFingerprint"],
        serde_json::Value::Null
    );
    let old = app
        .call(
            "POST",
            "/api/v1/devices/gauge-7/measures",
            &[("authorization", &bearer)],
            Some(r#"{"h": 2}"#),
        )
        .await;
    assert_eq!(old.status, 401);
    let nb = format!("Bearer {new}");
    let ok = app
        .call(
            "POST",
            "/api/v1/devices/gauge-7/measures",
            &[("authorization", &nb)],
            Some(r#"{"h": 2}"#),
        )
        .await;
    assert_eq!(ok.status, 204, "{}", ok.text);

    let d = app
        .call("DELETE", "/api/v1/devices/gauge-7", &[], None)
        .await;
    assert_eq!(d.status, 204);
    let g = app.get("/api/v1/devices/gauge-7").await;
    assert_eq!(g.status, 404);
    let ok = app
        .call(
            "POST",
            "/api/v1/devices/gauge-7/measures",
            &[("authorization", &nb)],
            Some(r#"{"h": 2}"#),
        )
        .await;
    assert_eq!(ok.status, 401, "credentials went with the device");
}

#[tokio::test]
async fn bad_native_devices_are_problems_and_change_nothing() {
    let app = common::app().await;
    let taken = json!({"id": "a1", "credentials": {"mqtt": {"username": "u1", "password": "p"}}});
    assert_eq!(
        app.post_json("/api/v1/devices", &taken.to_string())
            .await
            .status,
        201
    );
    for body in [
        "not json".to_string(),
        json!({}).to_string(),
        json!({"id": "a b"}).to_string(),
        json!({"id": "x", "colour": "red"}).to_string(),
        json!({"id": "x", "service": "Bad Service!"}).to_string(),
        json!({"id": "x", "servicePath": "nope"}).to_string(),
        json!({"id": "x", "entityId": "not a uri"}).to_string(),
        json!({"id": "x", "commands": [{"name": "ping", "type": "Text"}]}).to_string(),
        json!({"id": "x", "credentials": {"token": "short"}}).to_string(),
        json!({"id": "x", "credentials": {"mqtt": {"username": "u"}}}).to_string(),
        json!({"id": "x", "credentials": {"mqtt": {"username": "u", "password": "p", "passwordHash": HASH}}}).to_string(),
        json!({"id": "x", "credentials": {"mqtt": {"username": "u", "passwordHash": "plain"}}}).to_string(),
        json!({"id": "x", "credentials": {"certFingerprint": "zz"}}).to_string(),
        json!({"id": "x", "credentials": {"mqtt": {"username": "u1", "password": "p"}}}).to_string(),
        json!({"id": "a1"}).to_string(),
        json!({"id": "x", "liveness": {"intervalSeconds": -1}}).to_string(),
    ] {
        let r = app.post_json("/api/v1/devices", &body).await;
        assert!(
            matches!(r.status.as_u16(), 400 | 409),
            "{body}: {} {}",
            r.status,
            r.text
        );
        assert!(r.body["type"].as_str().is_some_and(|t| t.starts_with("https://")), "{body}: {}", r.text);
    }
    let l = app.get("/api/v1/devices").await;
    assert_eq!(l.headers["x-total-count"], "1", "{}", l.text);
    for (method, uri, status) in [
        ("GET", "/api/v1/devices/nobody", 404),
        ("DELETE", "/api/v1/devices/nobody", 404),
        ("GET", "/api/v1/devices?limit=x", 400),
        ("GET", "/api/v1/devices/a1?colour=red", 400),
        ("POST", "/api/v1/devices/nobody/credentials", 404),
    ] {
        let r = app
            .call(
                method,
                uri,
                &[("content-type", "application/json")],
                (method == "POST").then_some("{}"),
            )
            .await;
        assert_eq!(r.status, status, "{method} {uri}: {}", r.text);
    }
    // The same id in two services needs ?service=.
    assert_eq!(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": "a1", "service": "other"}).to_string()
        )
        .await
        .status,
        201
    );
    assert_eq!(app.get("/api/v1/devices/a1").await.status, 400);
    assert_eq!(
        app.get("/api/v1/devices/a1?service=other").await.status,
        200
    );
}

// ----- Commands and liveness -----

/// GETs `uri` until `ok` holds for the answer (or fails after 10 s).
async fn until(
    app: &common::App,
    uri: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> common::Resp {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = app.get(uri).await;
        if ok(&r.body) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting on {uri}: {}",
            r.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn patch_attrs(app: &common::App, id: &str, body: serde_json::Value) {
    let r = app
        .call(
            "PATCH",
            &format!("/ngsi-ld/v1/entities/{id}/attrs"),
            &[("content-type", "application/json")],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

/// A device server on an ephemeral port: records what it is sent and
/// answers UltraLight commands as a device does (`dev@cmd|result`), or 500
/// when the parameters say `fail`.
async fn device_server() -> (String, std::sync::Arc<parking_lot::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let rec = seen.clone();
    let app = axum::Router::new().route(
        "/cmd",
        axum::routing::post(move |body: String| {
            let rec = rec.clone();
            async move {
                rec.lock().push(body.clone());
                if body.contains("fail") {
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "broken".to_string(),
                    );
                }
                let (head, params) = body.split_once('|').unwrap_or((&body, ""));
                (axum::http::StatusCode::OK, format!("{head}|done {params}"))
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/cmd"), seen)
}

/// A command written through the NGSI-LD API is POSTed to an HTTP device;
/// its answer becomes `<cmd>_status` OK and `<cmd>_info`; an error answer
/// becomes ERROR. Status writes never send the command again.
#[tokio::test]
async fn http_command_round_trip() {
    let app = common::app().await;
    let (url, seen) = device_server().await;
    let dev = json!({"id": "valve-1", "entityType": "Valve", "transport": "HTTP", "protocol": "UL",
        "endpoint": url, "commands": [{"name": "open", "type": "command"}]});
    let r = app.post_json("/api/v1/devices", &dev.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let uri = "/ngsi-ld/v1/entities/urn:ngsi-ld:Valve:valve-1";
    let e = app.get(uri).await;
    assert_eq!(e.status, 200, "the command attributes exist: {}", e.text);
    assert_eq!(e.body["open_status"]["value"], "UNKNOWN", "{}", e.text);

    patch_attrs(
        &app,
        "urn:ngsi-ld:Valve:valve-1",
        json!({"open": {"type": "Property", "value": {"percent": 40}}}),
    )
    .await;
    let e = until(&app, uri, |b| b["open_status"]["value"] == "OK").await;
    assert_eq!(
        e.body["open_info"]["value"], "done percent=40",
        "{}",
        e.text
    );
    assert_eq!(
        seen.lock().clone(),
        vec!["valve-1@open|percent=40".to_string()]
    );

    patch_attrs(
        &app,
        "urn:ngsi-ld:Valve:valve-1",
        json!({"open": {"type": "Property", "value": "fail"}}),
    )
    .await;
    let e = until(&app, uri, |b| b["open_status"]["value"] == "ERROR").await;
    assert!(
        e.body["open_info"]["value"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{}",
        e.text
    );
    // Measures and status writes to the entity do not send it again.
    patch_attrs(
        &app,
        "urn:ngsi-ld:Valve:valve-1",
        json!({"open_info": {"type": "Property", "value": "x"}}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(seen.lock().len(), 2, "{:?}", seen.lock());
}

#[derive(Default)]
struct Capture {
    sent: parking_lot::Mutex<Vec<(String, String)>>,
}

impl dosi_api::iot::MqttOut for Capture {
    fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), String> {
        self.sent.lock().push((
            topic.to_string(),
            String::from_utf8_lossy(&payload).into_owned(),
        ));
        Ok(())
    }
}

/// Commands to MQTT devices go to `/{apikey}/{device}/cmd` (UL and JSON);
/// the device's answer on `…/cmdexe` (here: `command_result` called as the
/// gateway does) sets OK and the result.
#[tokio::test]
async fn mqtt_command_round_trip() {
    use dosi_api::iot::Format;
    let app = common::app().await;
    let out = std::sync::Arc::new(Capture::default());
    assert!(app.state.mqtt_out.set(out.clone()).is_ok());
    let group =
        json!({"services": [{"apikey": "k9", "resource": "/iot/d", "entity_type": "Pump"}]});
    assert_eq!(
        call(&app, "POST", "/iot/services", "", Some(&group.to_string()))
            .await
            .status,
        201
    );
    // One through the IoT Agent API (UL, apikey from its group), one native (JSON).
    let iota = json!({"devices": [{"device_id": "pump-1", "protocol": "PDI-IoTA-UltraLight", "transport": "MQTT",
        "commands": [{"name": "start", "type": "command"}]}]});
    let r = call(&app, "POST", "/iot/devices", "", Some(&iota.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let native = json!({"id": "pump-2", "apikey": "k9", "entityType": "Pump", "protocol": "JSON", "transport": "MQTT",
        "commands": [{"name": "start", "type": "command"}]});
    assert_eq!(
        app.post_json("/api/v1/devices", &native.to_string())
            .await
            .status,
        201
    );

    patch_attrs(
        &app,
        "urn:ngsi-ld:Pump:pump-1",
        json!({"start": {"type": "Property", "value": 22}}),
    )
    .await;
    let e = until(&app, "/ngsi-ld/v1/entities/urn:ngsi-ld:Pump:pump-1", |b| {
        b["start_status"]["value"] == "DELIVERED"
    })
    .await;
    assert_eq!(e.body["start"]["value"], 22);
    assert_eq!(
        out.sent.lock()[0],
        ("/k9/pump-1/cmd".to_string(), "pump-1@start|22".to_string())
    );
    let n = dosi_api::iot::command_result(
        &app.state,
        "k9",
        "pump-1",
        b"pump-1@start|started",
        Format::Ul,
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    let e = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:Pump:pump-1")
        .await;
    assert_eq!(e.body["start_status"]["value"], "OK", "{}", e.text);
    assert_eq!(e.body["start_info"]["value"], "started");

    patch_attrs(
        &app,
        "urn:ngsi-ld:Pump:pump-2",
        json!({"start": {"type": "Property", "value": {"speed": 3}}}),
    )
    .await;
    until(&app, "/ngsi-ld/v1/entities/urn:ngsi-ld:Pump:pump-2", |b| {
        b["start_status"]["value"] == "DELIVERED"
    })
    .await;
    assert_eq!(
        out.sent.lock()[1],
        (
            "/k9/pump-2/cmd".to_string(),
            r#"{"start":{"speed":3}}"#.to_string()
        )
    );
    // Over HTTP, as a polling device would answer.
    let r = app
        .call(
            "POST",
            "/iot/json/commands?k=k9&i=pump-2",
            &[("content-type", "application/json")],
            Some(r#"{"start": {"rpm": 1200}}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let e = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:Pump:pump-2")
        .await;
    assert_eq!(e.body["start_status"]["value"], "OK", "{}", e.text);
    assert_eq!(e.body["start_info"]["value"], json!({"rpm": 1200}));

    // Bad answers are refused and change nothing.
    for (k, i, payload, fmt) in [
        ("k9", "pump-1", "pump-2@start|x", Format::Ul),
        ("k9", "pump-1", "pump-1@stop|x", Format::Ul),
        ("k9", "pump-1", "garbage", Format::Ul),
        ("k9", "pump-2", "[1]", Format::Json),
        ("zz", "pump-1", "pump-1@start|x", Format::Ul),
        ("k9", "nobody", "nobody@start|x", Format::Ul),
    ] {
        let r = dosi_api::iot::command_result(&app.state, k, i, payload.as_bytes(), fmt).await;
        assert!(r.is_err(), "{k} {i} {payload}");
    }
    assert_eq!(out.sent.lock().len(), 2, "status writes send nothing");
}

/// A command without an answer expires after the configured timeout.
#[tokio::test]
async fn unanswered_command_expires() {
    let app = common::app_with(dosi_api::ApiConfig {
        command_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let out = std::sync::Arc::new(Capture::default());
    assert!(app.state.mqtt_out.set(out.clone()).is_ok());
    let dev = json!({"id": "lamp-1", "apikey": "k1", "entityType": "Lamp", "transport": "MQTT",
        "commands": [{"name": "on", "type": "command"}]});
    assert_eq!(
        app.post_json("/api/v1/devices", &dev.to_string())
            .await
            .status,
        201
    );
    // Every write of the command attribute is a command, even with the same
    // value; a newer one supersedes the unanswered one.
    patch_attrs(
        &app,
        "urn:ngsi-ld:Lamp:lamp-1",
        json!({"on": {"type": "Property", "value": "now"}}),
    )
    .await;
    patch_attrs(
        &app,
        "urn:ngsi-ld:Lamp:lamp-1",
        json!({"on": {"type": "Property", "value": "now"}}),
    )
    .await;
    let e = until(&app, "/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:lamp-1", |b| {
        b["on_status"]["value"] == "EXPIRED"
    })
    .await;
    assert!(
        e.body["on_info"]["value"]
            .as_str()
            .unwrap()
            .contains("no answer"),
        "{}",
        e.text
    );
    assert_eq!(out.sent.lock().len(), 2);
}

/// A device silent for longer than its interval is marked offline on its
/// entity (`deviceState`), and online again by its next measure.
#[tokio::test]
async fn silent_device_goes_offline_and_back() {
    let app = common::app_with(dosi_api::ApiConfig {
        liveness_check: std::time::Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let dev = json!({"id": "beacon-1", "entityType": "Beacon", "credentials": {"token": "token-of-beacon-1-xyz"},
        "liveness": {"intervalSeconds": 1}});
    assert_eq!(
        app.post_json("/api/v1/devices", &dev.to_string())
            .await
            .status,
        201
    );
    let send = || async {
        let r = app
            .call(
                "POST",
                "/api/v1/devices/beacon-1/measures",
                &[("authorization", "Bearer token-of-beacon-1-xyz")],
                Some(r#"{"rssi": -70}"#),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    };
    send().await;
    let uri = "/ngsi-ld/v1/entities/urn:ngsi-ld:Beacon:beacon-1";
    let e = until(&app, uri, |b| b["deviceState"]["value"] == "online").await;
    assert!(e.body["dateLastValueReported"].is_object(), "{}", e.text);
    until(&app, uri, |b| b["deviceState"]["value"] == "offline").await;
    let d = app.get("/api/v1/devices/beacon-1").await;
    assert_eq!(d.body["online"], false, "{}", d.text);
    send().await;
    until(&app, uri, |b| b["deviceState"]["value"] == "online").await;
    let d = app.get("/api/v1/devices/beacon-1").await;
    assert_eq!(d.body["online"], true, "{}", d.text);
}
