//! The JSON-LD context store through `/jsonldContexts` (clause 5.13) and its
//! use by requests: Hosted contexts (validation, tenant privacy, durability),
//! Cached remote contexts (fetch errors, reload), the core context, usage
//! counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use dosi_api::contexts::{ContextKind, Contexts};
use dosi_api::{AllowAll, ApiConfig, AppState};
use dosi_broker::Broker;
use dosi_bus::InProcessBus;
use dosi_ngsi::TenantId;
use dosi_notify::{Notifier, NotifierConfig};
use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};
use dosi_store::Store;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const C: &str = "/ngsi-ld/v1/jsonldContexts";
const BASE: &str = "http://dosi.test/ngsi-ld/v1/jsonldContexts";
const BAD_DATA: &str = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData";
const INVALID: &str = "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest";
const NOT_FOUND: &str = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound";
const NOT_AVAILABLE: &str = "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable";

struct App {
    router: Router,
    contexts: Arc<Contexts>,
    store: Arc<dyn Store>,
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

fn open_store(dir: &std::path::Path) -> Arc<dyn Store> {
    let opts = EmbeddedOptions {
        fsync: false,
        ..Default::default()
    };
    EmbeddedStore::open(dir, opts).expect("store opens")
}

/// An API over the store in `dir`, with the durable contexts loaded from it.
async fn app_on(dir: &std::path::Path) -> App {
    let store = open_store(dir);
    let broker = Arc::new(Broker::new(
        store.clone(),
        Arc::new(InProcessBus::new(1024)),
    ));
    let contexts = Arc::new(Contexts::new(BASE.into(), Duration::from_secs(5)));
    contexts
        .load_persisted(store.clone())
        .await
        .expect("contexts load");
    let notifier = Notifier::open(
        NotifierConfig::new(dir.join("outbox")),
        broker.clone(),
        contexts.clone(),
    )
    .await
    .expect("notifier opens");
    let state = AppState::new(dosi_api::state::Shared {
        broker,
        contexts: contexts.clone(),
        notifier,
        history: None,
        iot: None,
        mqtt_out: Default::default(),
        iot_run: Default::default(),
        sim: Default::default(),
        config: Arc::new(ApiConfig::default()),
        metrics: None,
        ready: Arc::new(AtomicBool::new(true)),
        node: Arc::new(dosi_api::state::NodeInfo::new(
            "urn:ngsi-ld:ContextSource:test",
        )),
    });
    App {
        router: dosi_api::router(state, Arc::new(AllowAll)),
        contexts,
        store,
    }
}

impl App {
    async fn call(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .header("content-length", body.len().to_string())
            .body(Body::from(body.to_string()))
            .expect("request builds");
        let resp = self.router.clone().oneshot(req).await.expect("answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, &[], "").await
    }

    async fn delete(&self, uri: &str) -> Resp {
        self.call("DELETE", uri, &[], "").await
    }

    /// Adds `doc` as a Hosted context; returns its local id.
    async fn host(&self, tenant: Option<&str>, doc: &Value) -> String {
        let mut h = vec![("content-type", "application/json")];
        if let Some(t) = tenant {
            h.push(("ngsild-tenant", t));
        }
        let r = self.call("POST", C, &h, &doc.to_string()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let loc = r.headers["location"].to_str().expect("text").to_string();
        let id = loc
            .strip_prefix(&format!("{C}/"))
            .expect("a relative Location");
        id.to_string()
    }

    /// Creates an entity with `@context` = `ctx`; returns the status and problem type.
    async fn create_entity(&self, id: &str, ctx: Value) -> (StatusCode, Value) {
        let body = json!({"id": id, "type": "Vehicle", "@context": ctx});
        let h = [("content-type", "application/ld+json")];
        let r = self
            .call("POST", "/ngsi-ld/v1/entities", &h, &body.to_string())
            .await;
        (r.status, r.body["type"].clone())
    }

    async fn details(&self, id: &str) -> Value {
        let r = self.get(&format!("{C}/{}?details=true", enc(id))).await;
        assert_eq!(r.status, StatusCode::OK, "{id}: {}", r.body);
        r.body
    }
}

/// Percent-encodes a context id or URL as one path segment.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn minimal() -> Value {
    json!({"@context": {"A1": "urn:ngsi-ld:attributes:A1", "A2": "urn:ngsi-ld:attributes:A2"}})
}

/// A context server on loopback. `/ctx.jsonld` answers 503 while `down` is set.
async fn context_server(down: Arc<AtomicBool>) -> String {
    let ctx = move || {
        let down = down.clone();
        async move {
            if down.load(Ordering::SeqCst) {
                return (StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
            let doc = json!({"@context": {"speed": "https://ex.org/speed"}});
            (StatusCode::OK, doc.to_string())
        }
    };
    let app = Router::new()
        .route("/ctx.jsonld", get(ctx))
        .route(
            "/no-context.jsonld",
            get(|| async { r#"{"note": "no context member here"}"# }),
        )
        .route("/not-json.jsonld", get(|| async { "this is { not json" }))
        .route(
            "/gone.jsonld",
            get(|| async { (StatusCode::NOT_FOUND, "gone") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A port nothing listens on.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("bound");
    drop(listener);
    format!("http://{addr}/ctx.jsonld")
}

#[tokio::test]
async fn hosted_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let id = app.host(None, &minimal()).await;

    let r = app.get(&format!("{C}/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body, minimal());
    let r = app.get(&format!("{C}/{id}?details=false")).await;
    assert_eq!(r.body, minimal());

    let d = app.details(&id).await;
    assert_eq!(d["kind"], "Hosted");
    assert_eq!(d["localId"], json!(id));
    assert_eq!(d["URL"], json!(format!("{BASE}/{id}")));
    assert_eq!(d["numberOfHits"], 0);
    assert!(d["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    let keys: Vec<&String> = d.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 5, "{d}");

    for (query, listed) in [
        ("", true),
        ("?kind=Hosted", true),
        ("?details=false&kind=Hosted", true),
        ("?kind=Cached", false),
        ("?kind=ImplicitlyCreated", false),
    ] {
        let r = app.get(&format!("{C}{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}");
        let urls = r.body.as_array().expect("array").clone();
        assert_eq!(
            urls.contains(&json!(format!("{BASE}/{id}"))),
            listed,
            "{query}"
        );
    }
    let r = app.get(&format!("{C}?details=true&kind=Hosted")).await;
    assert_eq!(r.body, json!([d]));

    assert_eq!(
        app.delete(&format!("{C}/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let r = app.get(&format!("{C}/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["type"], NOT_FOUND);
}

#[tokio::test]
async fn add_validation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let check =
        |content_type: &'static str, body: &'static str, status: u16, problem: &'static str| {
            let app = &app;
            async move {
                let h = [("content-type", content_type)];
                let r = app.call("POST", C, &h, body).await;
                assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
                assert_eq!(r.body["type"], problem, "{body}");
                assert!(r.headers.get("location").is_none(), "{body}");
            }
        };
    let j = "application/json";
    check(j, r#"{"A1": "urn:a:A1"}"#, 400, INVALID).await;
    check(j, r#"{"A1": "urn:a:A1" "A2": "urn:a:A2"}"#, 400, INVALID).await;
    check(j, r#"["not", "an object"]"#, 400, INVALID).await;
    check(j, r#"{"@context": 5}"#, 400, BAD_DATA).await;
    check(j, r#"{"@context": true}"#, 400, BAD_DATA).await;
    check(j, r#"{"@context": ["urn:a", 3]}"#, 400, BAD_DATA).await;
    check(j, r#"{"@context": {"A": 5}}"#, 400, BAD_DATA).await;
    check(j, r#"{"@context": {"@vocab": 1}}"#, 400, BAD_DATA).await;
    check(
        j,
        r#"{"@context": {"V": {"@id": "urn:V", "@context": {"s": "urn:s"}}}}"#,
        400,
        BAD_DATA,
    )
    .await;
    check(
        "text/plain",
        r#"{"@context": {}}"#,
        415,
        "https://uri.etsi.org/ngsi-ld/errors/UnsupportedMediaType",
    )
    .await;
    // Both JSON media types are fine; nothing was stored by the failures.
    let h = [("content-type", "application/ld+json")];
    let r = app.call("POST", C, &h, &minimal().to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app.get(&format!("{C}?kind=Hosted")).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn hosted_contexts_are_private_to_their_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let id = app.host(Some("tenant-a"), &minimal()).await;
    let as_tenant = |t: &'static str| [("ngsild-tenant", t)];
    for (tenant, status) in [("tenant-b", 404), ("tenant-a", 200)] {
        for q in ["", "?details=true"] {
            let r = app
                .call("GET", &format!("{C}/{id}{q}"), &as_tenant(tenant), "")
                .await;
            assert_eq!(r.status.as_u16(), status, "{tenant}{q}");
        }
        let r = app
            .call("GET", &format!("{C}?details=true"), &as_tenant(tenant), "")
            .await;
        assert_eq!(r.body.to_string().contains(&id), status == 200, "{tenant}");
    }
    // Without a tenant header it is the default tenant's view.
    assert_eq!(
        app.get(&format!("{C}/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .call("DELETE", &format!("{C}/{id}"), &as_tenant("tenant-b"), "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call("DELETE", &format!("{C}/{id}"), &as_tenant("tenant-a"), "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn hosted_context_used_by_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let id = app
        .host(
            None,
            &json!({"@context": {"Vehicle": "https://ex.org/Vehicle"}}),
        )
        .await;
    // Serving a Hosted context is not a use of it.
    app.get(&format!("{C}/{id}")).await;
    assert_eq!(app.details(&id).await["numberOfHits"], 0);
    // Its URL, host-relative or under any host name dosi is reached by.
    let urls = [
        format!("{BASE}/{id}"),
        format!("{C}/{id}"),
        format!("http://localhost:9090{C}/{id}"),
    ];
    for (n, url) in urls.iter().enumerate() {
        let (status, _) = app
            .create_entity(&format!("urn:ngsi-ld:Vehicle:{n}"), json!(url))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{url}");
        let d = app.details(&id).await;
        assert_eq!(d["numberOfHits"], n + 1, "{url}");
        assert!(d["lastUsage"].is_string());
    }
    let r = app
        .get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:0?options=keyValues")
        .await;
    assert_eq!(r.body["type"], "https://ex.org/Vehicle");
    // Another tenant cannot use it, and dosi does not ask itself over HTTP.
    let h = [
        ("content-type", "application/ld+json"),
        ("ngsild-tenant", "other"),
    ];
    let body = json!({"id": "urn:ngsi-ld:Vehicle:x", "type": "Vehicle", "@context": format!("{BASE}/{id}")});
    let r = app
        .call("POST", "/ngsi-ld/v1/entities", &h, &body.to_string())
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn remote_context_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let server = context_server(Arc::default()).await;
    let closed = closed_port_url().await;
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{server}/no-context.jsonld"), 400, BAD_DATA),
        (format!("{server}/not-json.jsonld"), 400, BAD_DATA),
        (format!("{server}/gone.jsonld"), 504, NOT_AVAILABLE),
        (closed, 504, NOT_AVAILABLE),
        ("/not/absolute.jsonld".into(), 400, BAD_DATA),
        ("ftp://ex.org/ctx.jsonld".into(), 400, BAD_DATA),
    ];
    for (n, (url, status, problem)) in cases.into_iter().enumerate() {
        let id = format!("urn:ngsi-ld:Vehicle:{n}");
        for ctx in [json!(url), json!([url, {"x": "urn:x"}])] {
            let (got, ty) = app.create_entity(&id, ctx.clone()).await;
            assert_eq!(
                (got.as_u16(), ty.as_str()),
                (status, Some(problem)),
                "{ctx}"
            );
        }
        let r = app.get(&format!("/ngsi-ld/v1/entities/{id}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{url}");
    }
    // None of them was Cached.
    let r = app.get(&format!("{C}?kind=Cached")).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{}", r.body);
}

#[tokio::test]
async fn scoped_context_in_request_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let ctx = json!([{"Vehicle": {"@id": "https://ex.org/Vehicle", "@context": {"speed": "https://ex.org/s"}}}]);
    let (status, ty) = app.create_entity("urn:ngsi-ld:Vehicle:s", ctx).await;
    assert_eq!((status, ty), (StatusCode::BAD_REQUEST, json!(BAD_DATA)));
    let r = app.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:s").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cached_context_hits_reload_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let down = Arc::new(AtomicBool::new(false));
    let url = format!("{}/ctx.jsonld", context_server(down.clone()).await);

    let (status, _) = app.create_entity("urn:ngsi-ld:Vehicle:1", json!(url)).await;
    assert_eq!(status, StatusCode::CREATED);
    let d = app.details(&url).await;
    assert_eq!(d["kind"], "Cached");
    assert_eq!(d["URL"], json!(url));
    // The request that fetched it used it once; serving it counts as a use
    // (after the answer is taken), and so does every later request.
    assert_eq!(d["numberOfHits"], 1);
    app.create_entity("urn:ngsi-ld:Vehicle:2", json!(url)).await;
    assert_eq!(app.details(&url).await["numberOfHits"], 3);
    let local_id = d["localId"].as_str().expect("localId").to_string();
    let r = app.get(&format!("{C}/{local_id}")).await;
    assert_eq!(
        r.body,
        json!({"@context": {"speed": "https://ex.org/speed"}})
    );

    let r = app.get(&format!("{C}?details=true&kind=Cached")).await;
    let listed: Vec<&str> = r
        .body
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["URL"].as_str())
        .collect();
    assert!(listed.contains(&url.as_str()), "{listed:?}");

    let reload = format!("{C}/{}?reload=true", enc(&url));
    assert_eq!(app.delete(&reload).await.status, StatusCode::NO_CONTENT);
    // A failed reload is LdContextNotAvailable and keeps the Cached copy.
    down.store(true, Ordering::SeqCst);
    let r = app.delete(&reload).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.body["type"], NOT_AVAILABLE);
    assert_eq!(app.details(&url).await["kind"], "Cached");
    // Entities still resolve it from the copy.
    let (status, _) = app.create_entity("urn:ngsi-ld:Vehicle:3", json!(url)).await;
    assert_eq!(status, StatusCode::CREATED);

    assert_eq!(
        app.delete(&format!("{C}/{}", enc(&url))).await.status,
        StatusCode::NO_CONTENT
    );
    let r = app.get(&format!("{C}/{}?details=true", enc(&url))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Gone from the store, it must be fetched again: now it cannot be.
    let (status, _) = app.create_entity("urn:ngsi-ld:Vehicle:4", json!(url)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn hosting_caches_what_it_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let url = format!("{}/ctx.jsonld", context_server(Arc::default()).await);
    let closed = closed_port_url().await;
    // A reference that cannot be retrieved now does not prevent hosting.
    app.host(None, &json!({"@context": [url, closed]})).await;
    assert_eq!(app.details(&url).await["kind"], "Cached");
    let r = app.get(&format!("{C}/{}?details=true", enc(&closed))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // An invalid one does.
    let bad = url.replace("ctx.jsonld", "no-context.jsonld");
    let r = app
        .call(
            "POST",
            C,
            &[("content-type", "application/json")],
            &json!({"@context": [bad]}).to_string(),
        )
        .await;
    assert_eq!(
        (r.status, r.body["type"].clone()),
        (StatusCode::BAD_REQUEST, json!(BAD_DATA))
    );
}

#[tokio::test]
async fn delete_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let id = app.host(None, &minimal()).await;
    let core = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld";
    let cases: Vec<(String, &str, u16, &str)> = vec![
        ("wrong_id_context".into(), "?reload=true", 400, BAD_DATA),
        ("wrong_id_context".into(), "?reload=false", 404, NOT_FOUND),
        ("wrong_id_context".into(), "", 404, NOT_FOUND),
        ("wrong_id_context".into(), "?reload=xxx", 400, BAD_DATA),
        (id.clone(), "?reload=true", 400, BAD_DATA),
        (enc(core), "", 400, BAD_DATA),
        (enc(core), "?reload=false", 400, BAD_DATA),
        ("ngsi-ld-core-context".into(), "", 400, BAD_DATA),
    ];
    for (target, query, status, problem) in cases {
        let r = app.delete(&format!("{C}/{target}{query}")).await;
        assert_eq!(r.status.as_u16(), status, "{target}{query}: {}", r.body);
        assert_eq!(r.body["type"], problem, "{target}{query}");
    }
    // Still there after all of that.
    assert_eq!(app.get(&format!("{C}/{id}")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn core_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let core = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld";
    let r = app.get(&format!("{C}/{}?details=true", enc(core))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["kind"], "Cached");
    // "Reloading" the built-in core context is accepted; it stays served.
    let r = app.delete(&format!("{C}/{}?reload=true", enc(core))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.get(&format!("{C}/{}", enc(core))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["@context"].is_object() || r.body["@context"].is_array());
    for (query, with_core) in [
        ("", true),
        ("?kind=Cached", true),
        ("?kind=Hosted", false),
        ("?kind=ImplicitlyCreated", false),
    ] {
        let r = app.get(&format!("{C}{query}")).await;
        let has = r.body.as_array().expect("array").iter().any(|u| {
            u.as_str()
                .is_some_and(|u| u.contains("ngsi-ld-core-context"))
        });
        assert_eq!(has, with_core, "{query}");
    }
    for query in ["?kind=other", "?details=other", "?details=true&kind=other"] {
        let r = app.get(&format!("{C}{query}")).await;
        assert_eq!(
            (r.status, r.body["type"].clone()),
            (StatusCode::BAD_REQUEST, json!(BAD_DATA)),
            "{query}"
        );
    }
}

#[tokio::test]
async fn implicit_contexts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_on(dir.path()).await;
    let tenant = TenantId::default_tenant();
    let local = json!(["https://ex.org/a.jsonld", {"x": "urn:x"}]);
    let a = app
        .contexts
        .implicit(&tenant, &local)
        .await
        .expect("created");
    let b = app.contexts.implicit(&tenant, &local).await.expect("found");
    assert_eq!(a.local_id, b.local_id);
    assert_eq!(a.kind, ContextKind::ImplicitlyCreated);
    // Served like the others, and using it counts.
    let r = app.get(&format!("{C}/{}", a.local_id)).await;
    assert_eq!(r.body, json!({"@context": local}));
    let d = app.details(&a.local_id).await;
    assert_eq!(
        (d["kind"].clone(), d["numberOfHits"].clone()),
        (json!("ImplicitlyCreated"), json!(1))
    );
    let r = app.get(&format!("{C}?kind=ImplicitlyCreated")).await;
    assert_eq!(r.body, json!([a.url]));
    // Reloading is for Cached contexts only.
    let r = app.delete(&format!("{C}/{}?reload=true", a.local_id)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.delete(&format!("{C}/{}", a.local_id)).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn hosted_and_implicit_contexts_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kept, deleted, implicit) = {
        let app = app_on(dir.path()).await;
        let kept = app.host(Some("t1"), &minimal()).await;
        let deleted = app.host(None, &minimal()).await;
        let r = app.delete(&format!("{C}/{deleted}")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let implicit = app
            .contexts
            .implicit(&TenantId::default_tenant(), &json!({"y": "urn:y"}))
            .await
            .expect("created")
            .local_id;
        app.store.flush().await.expect("flushes");
        (kept, deleted, implicit)
    };
    let app = app_on(dir.path()).await;
    let t1 = [("ngsild-tenant", "t1")];
    let r = app.call("GET", &format!("{C}/{kept}"), &t1, "").await;
    assert_eq!((r.status, r.body), (StatusCode::OK, minimal()));
    let r = app
        .call("GET", &format!("{C}/{kept}?details=true"), &t1, "")
        .await;
    assert_eq!(r.body["kind"], "Hosted");
    // Still private to its tenant.
    assert_eq!(
        app.get(&format!("{C}/{kept}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{C}/{deleted}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.details(&implicit).await["kind"], "ImplicitlyCreated");
    // Loading twice does not duplicate them.
    let n = app
        .contexts
        .load_persisted(app.store.clone())
        .await
        .expect("loads");
    assert_eq!(n, 0);
}
