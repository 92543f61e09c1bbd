//! The Subscriptions API through HTTP, in-process (clauses 5.8.1–5.8.5,
//! 6.10, 6.11): the create / retrieve / update / delete flow, errors as
//! problem details, pagination, tenants, and durability across a restart of
//! the notifier over the same store.

mod common;

use common::{App, Resp};
use serde_json::{json, Value};

const S: &str = "/ngsi-ld/v1/subscriptions";
const J: (&str, &str) = ("content-type", "application/json");
const LD: (&str, &str) = ("content-type", "application/ld+json");
const BAD_DATA: &str = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData";
const INVALID: &str = "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest";
const NOT_FOUND: &str = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound";
const EXISTS: &str = "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists";
const NO_TENANT: &str = "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant";

/// An inline context, so nothing has to be fetched.
fn context() -> Value {
    json!({"Building": "https://ex.org/Building", "name": "https://ex.org/name"})
}

fn sub(id: &str) -> Value {
    json!({
        "id": id,
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "watchedAttributes": ["name"],
        "notification": {"format": "keyValues", "endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}},
        "@context": context()
    })
}

fn id(n: u32) -> String {
    format!("urn:ngsi-ld:Subscription:{n}")
}

impl App {
    async fn post_sub(&self, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let mut h = vec![LD];
        h.extend_from_slice(headers);
        self.call("POST", S, &h, Some(&body.to_string())).await
    }
    async fn patch_sub(&self, id: &str, body: &Value) -> Resp {
        let uri = format!("{S}/{id}");
        self.call("PATCH", &uri, &[J], Some(&body.to_string()))
            .await
    }
    /// GET with the test context echoed (application/ld+json), so names come back compact.
    async fn get_ld(&self, uri: &str, headers: &[(&str, &str)]) -> Resp {
        let mut h = vec![("accept", "application/ld+json")];
        h.extend_from_slice(headers);
        self.call("GET", uri, &h, None).await
    }
}

fn problem(r: &Resp, status: u16, kind: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["type"], kind, "{}", r.text);
    assert!(r.body["title"].is_string() && r.body["detail"].is_string());
}

#[tokio::test]
async fn create_retrieve_update_delete() {
    let app = common::app().await;
    let r = app.post_sub(&sub(&id(1)), &[]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.headers["location"], format!("{S}/{}", id(1)).as_str());
    problem(&app.post_sub(&sub(&id(1)), &[]).await, 409, EXISTS);

    // Read with no context: names are expanded.
    let r = app.get(&format!("{S}/{}", id(1))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["entities"],
        json!([{"type": "https://ex.org/Building"}])
    );
    assert_eq!(r.body["watchedAttributes"], json!(["https://ex.org/name"]));
    assert_eq!(r.body["status"], "active");
    assert_eq!(
        r.body["notificationTrigger"],
        json!(["attributeCreated", "attributeUpdated"])
    );
    assert_eq!(
        r.body["notification"],
        json!({"format": "keyValues", "endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}})
    );
    assert!(r.body.get("isActive").is_none() && r.body.get("createdAt").is_none());
    // The inline @context became an ImplicitlyCreated one for notifications.
    let url = r.body["jsonldContext"]
        .as_str()
        .expect("jsonldContext")
        .to_string();
    let local = url.rsplit('/').next().unwrap_or_default();
    let d = app
        .get(&format!("/ngsi-ld/v1/jsonldContexts/{local}?details=true"))
        .await;
    assert_eq!(d.body["kind"], "ImplicitlyCreated", "{}", d.text);

    // Update: members replaced, null removes, modifiedAt moves on.
    let before = app
        .get(&format!("{S}/{}?options=sysAttrs", id(1)))
        .await
        .body;
    let r = app
        .patch_sub(
            &id(1),
            &json!({"isActive": false, "watchedAttributes": null, "subscriptionName": "rivers"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    let after = app
        .get(&format!("{S}/{}?options=sysAttrs", id(1)))
        .await
        .body;
    assert_eq!(after["status"], "paused");
    assert_eq!(after["isActive"], false);
    assert_eq!(after["subscriptionName"], "rivers");
    assert!(after.get("watchedAttributes").is_none());
    assert_eq!(
        after["jsonldContext"],
        url.as_str(),
        "the notification context stays"
    );
    assert_eq!(after["createdAt"], before["createdAt"]);
    assert!(after["modifiedAt"].as_str() > before["modifiedAt"].as_str());

    let r = app
        .call("DELETE", &format!("{S}/{}", id(1)), &[], None)
        .await;
    assert_eq!(r.status, 204);
    problem(&app.get(&format!("{S}/{}", id(1))).await, 404, NOT_FOUND);
    problem(
        &app.call("DELETE", &format!("{S}/{}", id(1)), &[], None)
            .await,
        404,
        NOT_FOUND,
    );
    problem(
        &app.patch_sub(&id(1), &json!({"isActive": true})).await,
        404,
        NOT_FOUND,
    );
}

#[tokio::test]
async fn compacted_with_the_request_context() {
    let app = common::app().await;
    assert_eq!(app.post_sub(&sub(&id(1)), &[]).await.status, 201);
    // An update through application/ld+json with its own context...
    let fragment =
        json!({"entities": [{"type": "B2"}], "@context": {"B2": "https://ex.org/Building2"}});
    let r = app
        .call(
            "PATCH",
            &format!("{S}/{}", id(1)),
            &[LD],
            Some(&fragment.to_string()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app.get_ld(&format!("{S}/{}", id(1)), &[]).await;
    assert_eq!(r.headers["content-type"], "application/ld+json");
    assert_eq!(
        r.body["entities"],
        json!([{"type": "https://ex.org/Building2"}])
    );
    // ...keeps what it did not name.
    assert_eq!(r.body["watchedAttributes"], json!(["https://ex.org/name"]));
    assert!(r.body["@context"].is_string(), "{}", r.text);
}

#[tokio::test]
async fn created_without_id_or_context() {
    let app = common::app().await;
    let body = json!({"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}});
    let r = app.post_json(&format!("{S}/"), &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let location = r.headers["location"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    let generated = location.rsplit('/').next().unwrap_or_default();
    assert!(
        generated.starts_with("urn:ngsi-ld:Subscription:"),
        "{location}"
    );
    let r = app.get(&format!("{S}/{generated}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], generated);
    assert!(
        r.body.get("jsonldContext").is_none(),
        "core context only: {}",
        r.text
    );
}

/// Method, headers, body, expected status and problem type.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    u16,
    &'static str,
);

#[tokio::test]
async fn invalid_requests_are_problems() {
    let app = common::app().await;
    let cases: &[Case] = &[
        ("POST", &[J], "{\"id\": ,}", 400, INVALID),
        ("POST", &[LD], "{}", 400, BAD_DATA),
        ("POST", &[J], "{}", 400, BAD_DATA),
        (
            "POST",
            &[J],
            r#"{"type": "Subscription", "entities": [{"type": "B"}], "notification": {"endpoint": {"uri": "http://h/n"}}, "throttling": -30}"#,
            400,
            BAD_DATA,
        ),
        (
            "POST",
            &[J],
            r#"{"type": "Subscription", "entities": [{"type": "B"}], "timeInterval": 10, "throttling": 30, "notification": {"endpoint": {"uri": "http://h/n"}}}"#,
            400,
            BAD_DATA,
        ),
        (
            "POST",
            &[J],
            r#"{"type": "Subscription", "entities": [{"type": "B"}], "expiresAt": "2000-01-01T00:00:00Z", "notification": {"endpoint": {"uri": "http://h/n"}}}"#,
            400,
            BAD_DATA,
        ),
        (
            "POST",
            &[J],
            r#"{"id": "invalidId", "type": "Subscription", "entities": [{"type": "B"}], "notification": {"endpoint": {"uri": "http://h/n"}}}"#,
            400,
            BAD_DATA,
        ),
        (
            "POST",
            &[J],
            r#"{"id": "", "type": "Subscription", "entities": [{"type": "B"}], "notification": {"endpoint": {"uri": "http://h/n"}}}"#,
            400,
            BAD_DATA,
        ),
        (
            "POST",
            &[J],
            r#"{"type": "Subscription", "entities": [{"type": "B"}], "jsonldContext": "unknownContext", "notification": {"endpoint": {"uri": "http://h/n"}}}"#,
            400,
            BAD_DATA,
        ),
        ("GET", &[], "", 400, BAD_DATA),
        ("PATCH", &[J], r#"{"isActive": true}"#, 400, BAD_DATA),
        ("DELETE", &[], "", 400, BAD_DATA),
    ];
    for (method, headers, body, status, kind) in cases {
        let uri = if *method == "POST" {
            S.to_string()
        } else {
            format!("{S}/InvalidUri")
        };
        let body = (*method != "GET" && *method != "DELETE").then_some(*body);
        let r = app.call(method, &uri, headers, body).await;
        assert_eq!(r.status, *status, "{method} {body:?}: {}", r.text);
        assert_eq!(r.body["type"], *kind, "{method} {body:?}: {}", r.text);
    }
    // No id at all: the collection has no PATCH or DELETE.
    assert_eq!(
        app.call("DELETE", &format!("{S}/"), &[], None).await.status,
        405
    );
    assert_eq!(
        app.call("PATCH", &format!("{S}/"), &[J], Some("{}"))
            .await
            .status,
        405
    );
    // Nothing was created along the way.
    assert_eq!(app.get(S).await.body, json!([]));
}

#[tokio::test]
async fn an_invalid_fragment_changes_nothing() {
    let app = common::app().await;
    assert_eq!(app.post_sub(&sub(&id(1)), &[]).await.status, 201);
    let before = app.get(&format!("{S}/{}", id(1))).await.body;
    for fragment in [
        json!({"notification": {"format": "keyValues"}}),
        json!({"notification": {"format": "keyValues", "endpoint": null}}),
        json!({"expiresAt": "2020-08-01T22:07:00Z"}),
        json!({"timeInterval": 5}),
        json!({"id": id(2)}),
        json!({}),
    ] {
        problem(&app.patch_sub(&id(1), &fragment).await, 400, BAD_DATA);
    }
    assert_eq!(app.get(&format!("{S}/{}", id(1))).await.body, before);
    let r = app
        .patch_sub(
            &id(1),
            &json!({"expiresAt": "2030-08-01T22:07:00Z", "isActive": true}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

#[tokio::test]
async fn pagination() {
    let app = common::app().await;
    for n in 1..=3 {
        assert_eq!(app.post_sub(&sub(&id(n)), &[]).await.status, 201);
    }
    let page = |q: &str| {
        let app = &app;
        let uri = format!("{S}?{q}");
        async move { app.get_ld(&uri, &[]).await }
    };
    let links = |r: &Resp| -> Vec<String> {
        r.headers
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|l| !l.contains("json-ld#context"))
            .map(|l| l.replace(' ', ""))
            .collect()
    };
    let ids = |r: &Resp| -> Vec<String> {
        r.body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["id"].as_str().map(String::from))
            .collect()
    };

    let r = page("limit=1&offset=1").await;
    assert_eq!(ids(&r), [id(2)], "creation order");
    assert_eq!(
        links(&r),
        [
            format!("<{S}?limit=1&offset=0>;rel=\"prev\";type=\"application/ld+json\""),
            format!("<{S}?limit=1&offset=2>;rel=\"next\";type=\"application/ld+json\""),
        ]
    );
    let r = page("limit=1&offset=2").await;
    assert_eq!(ids(&r), [id(3)]);
    assert_eq!(
        links(&r),
        [format!(
            "<{S}?limit=1&offset=1>;rel=\"prev\";type=\"application/ld+json\""
        )]
    );
    let r = page("limit=15&offset=0").await;
    assert_eq!(ids(&r), [id(1), id(2), id(3)]);
    assert!(links(&r).is_empty());
    assert!(r.headers.get("ngsild-results-count").is_none());
    // Each item carries the context as an application/ld+json answer must.
    assert!(r.body[0]["@context"].is_string());

    let r = page("count=true&limit=0").await;
    assert_eq!((r.status.as_u16(), r.body.clone()), (200, json!([])));
    assert_eq!(r.headers["ngsild-results-count"], "3");
    let r = page("count=true&limit=2&offset=2").await;
    assert_eq!(
        (ids(&r), r.headers["ngsild-results-count"].clone()),
        (vec![id(3)], "3".parse().unwrap())
    );

    problem(&page("limit=0").await, 400, BAD_DATA);
    problem(
        &page("limit=100000").await,
        403,
        "https://uri.etsi.org/ngsi-ld/errors/TooManyResults",
    );
    problem(&page("offset=-1").await, 400, BAD_DATA);
    problem(&page("georel=near").await, 400, INVALID);
}

#[tokio::test]
async fn tenants_are_separate() {
    let app = common::app().await;
    let t1 = [("ngsild-tenant", "t1")];
    // A tenant holding only a subscription exists for reads.
    assert_eq!(app.post_sub(&sub(&id(1)), &t1).await.status, 201);
    assert_eq!(app.post_sub(&sub(&id(2)), &[]).await.status, 201);
    // The same id may be used in another tenant.
    assert_eq!(app.post_sub(&sub(&id(2)), &t1).await.status, 201);

    let r = app.call("GET", S, &t1, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [id(1), id(2)]);
    let r = app.get(S).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    problem(&app.get(&format!("{S}/{}", id(1))).await, 404, NOT_FOUND);
    problem(
        &app.call("GET", S, &[("ngsild-tenant", "nobody")], None)
            .await,
        404,
        NO_TENANT,
    );
    problem(
        &app.call("DELETE", &format!("{S}/{}", id(1)), &[], None)
            .await,
        404,
        NOT_FOUND,
    );
    let r = app
        .call("DELETE", &format!("{S}/{}", id(1)), &t1, None)
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn version_preference_is_acknowledged() {
    let app = common::app().await;
    assert_eq!(app.post_sub(&sub(&id(1)), &[]).await.status, 201);
    let uri = format!("{S}/{}", id(1));
    for (prefer, applied) in [
        ("ngsi-ld=1.0", Some("ngsi-ld=1.0")),
        ("NGSI-LD=1.0", Some("ngsi-ld=1.0")),
        ("ngsi-ld=\"1.6\"", Some("ngsi-ld=1.6")),
        ("ngsi-ld=1.0;q=0.1", Some("ngsi-ld=1.0")),
        ("respond-async, Ngsi-Ld=1.3", Some("ngsi-ld=1.3")),
        ("respond-async", None),
        ("ngsi-ld=banana", None),
    ] {
        let r = app.call("GET", &uri, &[("prefer", prefer)], None).await;
        assert_eq!(r.status, 200);
        let got = r
            .headers
            .get("preference-applied")
            .and_then(|v| v.to_str().ok());
        assert_eq!(got, applied, "Prefer: {prefer}");
    }
}

#[tokio::test]
async fn subscriptions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, implicit_url) = {
        let app = common::app_on(dir.path()).await;
        assert_eq!(app.post_sub(&sub(&id(1)), &[]).await.status, 201);
        let mut paused = sub(&id(2));
        paused["isActive"] = json!(false);
        paused["q"] = json!("name==\"Eiffel Tower\"");
        assert_eq!(
            app.post_sub(&paused, &[("ngsild-tenant", "t1")])
                .await
                .status,
            201
        );
        assert_eq!(app.post_sub(&sub(&id(3)), &[]).await.status, 201);
        let r = app
            .patch_sub(&id(3), &json!({"subscriptionName": "third"}))
            .await;
        assert_eq!(r.status, 204);
        assert_eq!(
            app.call("DELETE", &format!("{S}/{}", id(1)), &[], None)
                .await
                .status,
            204
        );
        let first = app
            .get(&format!("{S}/{}?options=sysAttrs", id(3)))
            .await
            .body;
        app.broker.store().flush().await.expect("flushes");
        let url = first["jsonldContext"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (first, url)
    };
    let app = common::app_on(dir.path()).await;
    let again = app.get(&format!("{S}/{}?options=sysAttrs", id(3))).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, first);
    assert_eq!(again.body["subscriptionName"], "third");
    assert_eq!(again.body["jsonldContext"], implicit_url.as_str());
    problem(&app.get(&format!("{S}/{}", id(1))).await, 404, NOT_FOUND);
    let r = app
        .call(
            "GET",
            &format!("{S}/{}", id(2)),
            &[("ngsild-tenant", "t1")],
            None,
        )
        .await;
    assert_eq!(
        (r.body["status"].clone(), r.body["q"].clone()),
        (
            json!("paused"),
            json!("https://ex.org/name==\"Eiffel Tower\"")
        )
    );
    // Still a registry: ids stay taken, the order of creation is kept.
    problem(&app.post_sub(&sub(&id(3)), &[]).await, 409, EXISTS);
    assert_eq!(app.post_sub(&sub(&id(1)), &[]).await.status, 201);
    let ids: Vec<String> = app
        .get(S)
        .await
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(String::from))
        .collect();
    assert_eq!(ids, [id(3), id(1)]);
}
