//! NGSI-LD behaviour through the HTTP API, in-process: one line of data per case
//! where possible.

mod common;

use serde_json::{json, Value};

const E: &str = "/ngsi-ld/v1/entities";
const J: (&str, &str) = ("content-type", "application/json");

fn gauge(id: &str, level: f64) -> String {
    json!({
        "id": id, "type": "WaterObserved",
        "level": {"type": "Property", "value": level, "unitCode": "MTR", "observedAt": "2026-07-01T09:00:00Z"},
        "name": {"type": "LanguageProperty", "languageMap": {"en": "Gauge", "ko": "수위계"}},
        "refRiver": {"type": "Relationship", "object": "urn:ngsi-ld:River:mun"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [102.83, 16.43]}}
    })
    .to_string()
}

#[tokio::test]
async fn create_retrieve_in_every_format() {
    let app = common::app().await;
    assert_eq!(
        app.post_json(E, &gauge("urn:ngsi-ld:W:1", 2.5))
            .await
            .status,
        201
    );
    assert_eq!(
        app.post_json(E, &gauge("urn:ngsi-ld:W:1", 2.5))
            .await
            .status,
        409
    );

    let r = app.get(&format!("{E}/urn:ngsi-ld:W:1")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["level"],
        json!({"type": "Property", "value": 2.5, "unitCode": "MTR", "observedAt": "2026-07-01T09:00:00Z"})
    );
    assert!(r.headers["link"]
        .to_str()
        .unwrap()
        .contains("ngsi-ld-core-context"));

    let r = app
        .get(&format!("{E}/urn:ngsi-ld:W:1?options=keyValues"))
        .await;
    assert_eq!(r.body["level"], json!(2.5));
    assert_eq!(r.body["refRiver"], json!("urn:ngsi-ld:River:mun"));

    let r = app
        .get(&format!("{E}/urn:ngsi-ld:W:1?format=concise"))
        .await;
    assert_eq!(
        r.body["refRiver"],
        json!({"object": "urn:ngsi-ld:River:mun"})
    );

    let r = app.get(&format!("{E}/urn:ngsi-ld:W:1?lang=ko")).await;
    assert_eq!(
        r.body["name"],
        json!({"type": "Property", "value": "수위계", "lang": "ko"})
    );

    let r = app
        .call(
            "GET",
            &format!("{E}/urn:ngsi-ld:W:1"),
            &[("accept", "application/ld+json")],
            None,
        )
        .await;
    assert_eq!(r.headers["content-type"], "application/ld+json");
    assert!(r.body["@context"].is_string());

    let r = app
        .call(
            "GET",
            &format!("{E}/urn:ngsi-ld:W:1"),
            &[("accept", "application/geo+json")],
            None,
        )
        .await;
    assert_eq!(r.body["type"], "Feature");
    assert_eq!(r.body["geometry"]["type"], "Point");

    let r = app
        .get(&format!("{E}/urn:ngsi-ld:W:1?options=sysAttrs"))
        .await;
    assert!(r.body["createdAt"].is_string() && r.body["level"]["modifiedAt"].is_string());
}

/// (query string, ids expected, in order)
fn query_cases() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("type=WaterObserved&q=level>2", vec!["urn:ngsi-ld:W:3", "urn:ngsi-ld:W:5"]),
        ("type=WaterObserved&q=level>2;level<4", vec!["urn:ngsi-ld:W:3"]),
        ("type=WaterObserved&q=level<1|level>4", vec!["urn:ngsi-ld:W:0", "urn:ngsi-ld:W:5"]),
        ("type=WaterObserved&q=level==1..4", vec!["urn:ngsi-ld:W:1", "urn:ngsi-ld:W:3"]),
        ("type=WaterObserved&q=refRiver==\"urn:ngsi-ld:River:mun\"&limit=1", vec!["urn:ngsi-ld:W:0"]),
        ("type=WaterObserved&q=level>2&orderBy=level;desc", vec!["urn:ngsi-ld:W:5", "urn:ngsi-ld:W:3"]),
        ("type=WaterObserved&idPattern=W:[01]$", vec!["urn:ngsi-ld:W:0", "urn:ngsi-ld:W:1"]),
        ("type=WaterObserved&georel=near;maxDistance==100&geometry=Point&coordinates=[102.83,16.43]", vec!["urn:ngsi-ld:W:0", "urn:ngsi-ld:W:1", "urn:ngsi-ld:W:3", "urn:ngsi-ld:W:5"]),
        ("type=WaterObserved&georel=within&geometry=Polygon&coordinates=[[[0,0],[1,0],[1,1],[0,1],[0,0]]]", vec![]),
        ("type=River", vec![]),
    ]
}

#[tokio::test]
async fn queries() {
    let app = common::app().await;
    for (i, level) in [(0, 0.5), (1, 1.5), (3, 3.5), (5, 4.5)] {
        assert_eq!(
            app.post_json(E, &gauge(&format!("urn:ngsi-ld:W:{i}"), level))
                .await
                .status,
            201
        );
    }
    for (q, want) in query_cases() {
        let r = app.get(&format!("{E}?{q}")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        let got: Vec<&str> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(got, want, "{q}");
    }
    let r = app
        .get(&format!("{E}?type=WaterObserved&count=true&limit=1"))
        .await;
    assert_eq!(r.headers["ngsild-results-count"], "4");
    assert!(r
        .headers
        .get_all("link")
        .iter()
        .any(|l| l.to_str().unwrap().contains("rel=\"next\"")));
}

#[tokio::test]
async fn attribute_operations() {
    let app = common::app().await;
    let id = "urn:ngsi-ld:W:9";
    app.post_json(E, &gauge(id, 1.0)).await;
    let patch = |body: Value| body.to_string();
    // update: existing attribute -> 204; unknown one -> 207
    let r = app
        .call(
            "PATCH",
            &format!("{E}/{id}/attrs"),
            &[J],
            Some(&patch(json!({"level": {"type": "Property", "value": 2.0}}))),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .call(
            "PATCH",
            &format!("{E}/{id}/attrs"),
            &[J],
            Some(&patch(json!({"added": {"type": "Property", "value": 1}}))),
        )
        .await;
    // An attribute the entity does not have yet is added (ETSI 011_01_03).
    assert_eq!(r.status, 204);
    // append with noOverwrite keeps the old value
    let r = app
        .call(
            "POST",
            &format!("{E}/{id}/attrs?options=noOverwrite"),
            &[J],
            Some(&patch(json!({"level": {"type": "Property", "value": 9}}))),
        )
        .await;
    assert_eq!(r.status, 207);
    assert_eq!(
        app.get(&format!("{E}/{id}")).await.body["level"]["value"],
        json!(2.0)
    );
    // a second instance by datasetId, then delete just it
    let r = app.call("POST", &format!("{E}/{id}/attrs"), &[J], Some(&patch(json!({"level": {"type": "Property", "value": 7, "datasetId": "urn:ngsi-ld:Dataset:radar"}})))).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        app.get(&format!("{E}/{id}")).await.body["level"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = app
        .call(
            "DELETE",
            &format!("{E}/{id}/attrs/level?datasetId=urn:ngsi-ld:Dataset:radar"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(app.get(&format!("{E}/{id}")).await.body["level"].is_object());
    // merge-patch deletes with urn:ngsi-ld:null
    let r = app
        .call(
            "PATCH",
            &format!("{E}/{id}"),
            &[("content-type", "application/merge-patch+json")],
            Some(&patch(json!({"refRiver": "urn:ngsi-ld:null"}))),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(app
        .get(&format!("{E}/{id}"))
        .await
        .body
        .get("refRiver")
        .is_none());
    assert_eq!(
        app.call("DELETE", &format!("{E}/{id}"), &[], None)
            .await
            .status,
        204
    );
    assert_eq!(app.get(&format!("{E}/{id}")).await.status, 404);
}

#[tokio::test]
async fn batches_answer_201_204_207() {
    let app = common::app().await;
    let batch = |ids: &[&str]| {
        Value::Array(
            ids.iter()
                .map(|i| serde_json::from_str(&gauge(i, 1.0)).unwrap())
                .collect(),
        )
        .to_string()
    };
    let r = app
        .post_json(
            "/ngsi-ld/v1/entityOperations/create",
            &batch(&["urn:x:1", "urn:x:2"]),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = app
        .post_json(
            "/ngsi-ld/v1/entityOperations/create",
            &batch(&["urn:x:2", "urn:x:3"]),
        )
        .await;
    assert_eq!(r.status, 207);
    assert_eq!(r.body["success"], json!(["urn:x:3"]));
    assert_eq!(r.body["errors"][0]["entityId"], "urn:x:2");
    let r = app
        .post_json(
            "/ngsi-ld/v1/entityOperations/upsert",
            &batch(&["urn:x:1", "urn:x:2"]),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .post_json(
            "/ngsi-ld/v1/entityOperations/delete",
            r#"["urn:x:1","urn:x:404"]"#,
        )
        .await;
    assert_eq!(r.status, 207);
}

#[tokio::test]
async fn tenants_are_isolated() {
    let app = common::app().await;
    let t = [
        ("content-type", "application/json"),
        ("ngsild-tenant", "seoul"),
    ];
    assert_eq!(
        app.call("POST", E, &t, Some(&gauge("urn:x:t", 1.0)))
            .await
            .status,
        201
    );
    assert_eq!(
        app.call("GET", &format!("{E}/urn:x:t"), &t[1..], None)
            .await
            .status,
        200
    );
    assert_eq!(app.get(&format!("{E}/urn:x:t")).await.status, 404);
    let r = app
        .call(
            "GET",
            &format!("{E}/urn:x:t"),
            &[("ngsild-tenant", "busan")],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["type"],
        "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant"
    );
}

#[tokio::test]
async fn user_contexts_expand_and_compact() {
    let app = common::app().await;
    let body = json!({
        "id": "urn:x:c", "type": "Sensor",
        "@context": [{"ex": "https://example.org/", "Sensor": "ex:Sensor", "pm25": "ex:pm25"}, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"],
        "pm25": {"type": "Property", "value": 12}
    });
    let r = app
        .call(
            "POST",
            E,
            &[("content-type", "application/ld+json")],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Without the context the full IRIs come back.
    let r = app.get(&format!("{E}/urn:x:c")).await;
    assert_eq!(r.body["type"], "https://example.org/Sensor");
    assert_eq!(r.body["https://example.org/pm25"]["value"], 12);
    let r = app
        .get(&format!(
            "{E}?type=https://example.org/Sensor&q=https://example.org/pm25>10"
        ))
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{}", r.text);
    let r = app.get("/ngsi-ld/v1/types").await;
    assert_eq!(r.body["typeList"], json!(["https://example.org/Sensor"]));
}

#[tokio::test]
async fn geojson_with_prefer_body_json_links_the_context() {
    let app = common::app().await;
    let e = json!({"id": "urn:ngsi-ld:Gauge:g1", "type": "Gauge",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1.0, 2.0]}}});
    let r = app.call("POST", E, &[J], Some(&e.to_string())).await;
    assert_eq!(r.status, 201);
    let geo = ("accept", "application/geo+json");
    let r = app
        .call("GET", &format!("{E}?type=Gauge"), &[geo], None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("@context").is_some(), "embedded by default");
    let r = app
        .call(
            "GET",
            &format!("{E}?type=Gauge"),
            &[geo, ("prefer", "body=json")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("@context").is_none(), "{}", r.text);
    assert!(r.headers.get("link").is_some());
    assert_eq!(r.body["type"], "FeatureCollection");
}
