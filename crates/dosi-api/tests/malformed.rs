//! A corpus of malformed requests: each is answered 4xx with an RFC 9457
//! problem body, changes nothing, and nothing panics.

mod common;

use dosi_ngsi::query::EntityFilter;
use dosi_ngsi::TenantId;
use dosi_store::Page;

const E: &str = "/ngsi-ld/v1/entities";
const J: (&str, &str) = ("content-type", "application/json");
const LD: (&str, &str) = ("content-type", "application/ld+json");

/// (method, uri, headers, body, expected status)
type Case = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    Option<String>,
    u16,
);

fn corpus() -> Vec<Case> {
    let huge = format!(
        "{{\"id\":\"urn:x:1\",\"type\":\"T\",\"a\":\"{}\"}}",
        "x".repeat(100_000)
    );
    let mut c = vec![
        ("POST", E.into(), vec![J], Some("{".into()), 400),
        ("POST", E.into(), vec![J], Some("[1,2]".into()), 400),
        ("POST", E.into(), vec![J], Some("\"text\"".into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"type":"T"}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"not a uri","type":"T"}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1"}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":42,"type":"T"}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":7}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","a":{"type":"Property"}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","a":{"type":"Relationship","object":"nope"}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","a":{"type":"Bogus","value":1}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[200,100]}}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","location":{"type":"GeoProperty","value":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1]]]}}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","location":{"type":"GeoProperty","value":"here"}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","a":{"type":"Property","value":1,"observedAt":"yesterday"}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","a b":{"type":"Property","value":1}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","a":[{"type":"Property","value":1},{"type":"Property","value":2}]}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","a":{"type":"LanguageProperty","languageMap":"en"}}"#.into()), 400),
        ("POST", E.into(), vec![J], Some(r#"{"id":"urn:x:1","type":"T","@context":"https://example.org/c.jsonld"}"#.into()), 400),
        ("POST", E.into(), vec![LD], Some(r#"{"id":"urn:x:1","type":"T"}"#.into()), 400),
        ("POST", E.into(), vec![("content-type", "text/plain")], Some(r#"{"id":"urn:x:1","type":"T"}"#.into()), 415),
        ("POST", E.into(), vec![], Some(r#"{"id":"urn:x:1","type":"T"}"#.into()), 415),
        ("POST", E.into(), vec![J], Some(huge), 413),
        ("GET", format!("{E}/urn:x:1"), vec![("accept", "text/html")], None, 406),
        ("GET", format!("{E}/not-a-uri"), vec![], None, 400),
        ("GET", format!("{E}?type=T&q=a>>1"), vec![], None, 400),
        ("GET", format!("{E}?type=T&q=(a==1"), vec![], None, 400),
        ("GET", format!("{E}?type=T&scopeQ=nope"), vec![], None, 400),
        ("GET", format!("{E}?type=T&georel=near;maxDistance==10&geometry=Point&coordinates=[1]"), vec![], None, 400),
        ("GET", format!("{E}?type=T&georel=within&geometry=Polygon&coordinates=[[[0,0],[1,0]]]"), vec![], None, 400),
        ("GET", format!("{E}?type=T&georel=sideways&geometry=Point&coordinates=[1,2]"), vec![], None, 400),
        ("GET", format!("{E}?type=T&limit=-1"), vec![], None, 400),
        ("GET", format!("{E}?type=T&limit=100000"), vec![], None, 403),
        ("GET", format!("{E}?type=(T"), vec![], None, 400),
        ("GET", format!("{E}?type=T&idPattern=(["), vec![], None, 400),
        ("GET", format!("{E}?id=urn:x:1"), vec![], None, 400),
        ("GET", format!("{E}?type=T&options=bogus"), vec![], None, 400),
        ("PATCH", format!("{E}/urn:x:1/attrs"), vec![J], Some("{".into()), 400),
        ("POST", "/ngsi-ld/v1/entityOperations/create".into(), vec![J], Some("{}".into()), 400),
        ("POST", "/ngsi-ld/v1/entityOperations/create".into(), vec![J], Some("[]".into()), 400),
        ("POST", "/ngsi-ld/v1/entityOperations/delete".into(), vec![J], Some("[1]".into()), 400),
        ("DELETE", E.into(), vec![], None, 400),
        ("PUT", E.into(), vec![J], Some("{}".into()), 400),
        ("POST", format!("{E}/urn:x:1"), vec![J], Some("{}".into()), 405),
        ("GET", format!("{E}/urn:x:1"), vec![("ngsild-tenant", "no such tenant!")], None, 400),
        ("GET", format!("{E}/urn:x:1"), vec![("ngsild-tenant", "ghost")], None, 404),
        ("GET", format!("{E}/urn:x:1"), vec![("link", "<not a url>; rel=\"http://www.w3.org/ns/json-ld#context\"")], None, 400),
    ];
    // Deep nesting must not overflow the stack.
    c.push((
        "POST",
        E.into(),
        vec![J],
        Some(format!("{}{}", "[".repeat(30_000), "]".repeat(30_000))),
        400,
    ));
    c
}

#[tokio::test]
async fn malformed_requests_get_problems_and_change_nothing() {
    let app = common::app().await;
    // One valid entity so "no state change" is observable.
    let r = app
        .post_json(
            E,
            r#"{"id":"urn:x:keep","type":"T","a":{"type":"Property","value":1}}"#,
        )
        .await;
    assert_eq!(r.status, 201);
    let before = app
        .broker
        .query(
            &TenantId::default_tenant(),
            &EntityFilter::default(),
            Page::ALL,
        )
        .await
        .unwrap()
        .entities;
    for (method, uri, headers, body, want) in corpus() {
        let r = app.call(method, &uri, &headers, body.as_deref()).await;
        let shown = body.as_deref().map(|b| &b[..b.len().min(80)]).unwrap_or("");
        assert_eq!(
            r.status.as_u16(),
            want,
            "{method} {uri} {shown}: {}",
            r.text
        );
        assert!(
            r.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://uri.etsi.org/ngsi-ld/errors/")),
            "{method} {uri}: no problem type in {}",
            r.text
        );
        assert!(
            r.body["title"].is_string() && r.body["detail"].is_string(),
            "{method} {uri}: {}",
            r.text
        );
        assert_eq!(
            r.body["status"].as_u64(),
            Some(want as u64),
            "{method} {uri}"
        );
    }
    let after = app
        .broker
        .query(
            &TenantId::default_tenant(),
            &EntityFilter::default(),
            Page::ALL,
        )
        .await
        .unwrap()
        .entities;
    assert_eq!(before, after, "a malformed request changed state");
}
