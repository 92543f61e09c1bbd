//! An in-process dosi API over a fresh embedded store, driven with `oneshot`.

#![allow(dead_code)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use dosi_api::contexts::Contexts;
use dosi_api::{AllowAll, ApiConfig, AppState};
use dosi_broker::Broker;
use dosi_bus::InProcessBus;
use dosi_notify::{Notifier, NotifierConfig};
use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct App {
    pub router: Router,
    pub state: AppState,
    pub broker: Arc<Broker>,
    _dir: Option<tempfile::TempDir>,
}

/// An app over a fresh store in a temporary directory.
pub async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_on(dir.path()).await;
    app._dir = Some(dir);
    app
}

/// An app over a fresh store in a temporary directory, with `config`.
pub async fn app_with(config: ApiConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_on_with(dir.path(), config).await;
    app._dir = Some(dir);
    app
}

/// An app over the store in `dir` (kept by the caller), loading the
/// subscriptions it holds.
pub async fn app_on(dir: &std::path::Path) -> App {
    app_on_with(
        dir,
        ApiConfig {
            max_body_bytes: 64 * 1024,
            ..ApiConfig::default()
        },
    )
    .await
}

/// [`app_on`] with `config`.
pub async fn app_on_with(dir: &std::path::Path, config: ApiConfig) -> App {
    let store = EmbeddedStore::open(
        dir,
        EmbeddedOptions {
            fsync: false,
            ..Default::default()
        },
    )
    .unwrap();
    let broker = Arc::new(Broker::new(store, Arc::new(InProcessBus::new(1024))));
    let contexts = Arc::new(Contexts::new(
        "http://127.0.0.1:1/ngsi-ld/v1/jsonldContexts".into(),
        Duration::from_millis(200),
    ));
    contexts
        .load_persisted(broker.store().clone())
        .await
        .unwrap();
    let notifier = Notifier::open(
        NotifierConfig::new(dir.join("outbox")),
        broker.clone(),
        contexts.clone(),
    )
    .await
    .unwrap();
    let history =
        dosi_history::History::open(dosi_history::HistoryConfig::new(dir.join("history"))).unwrap();
    broker.add_hook(history.hook());
    let state = AppState::new(dosi_api::state::Shared {
        broker: broker.clone(),
        contexts,
        notifier,
        history: Some(history),
        iot: Some(
            dosi_iot::Registry::open(broker.store().clone())
                .await
                .unwrap(),
        ),
        mqtt_out: Default::default(),
        iot_run: Default::default(),
        sim: Default::default(),
        config: Arc::new(config),
        metrics: None,
        ready: Arc::new(AtomicBool::new(true)),
        node: Arc::new(dosi_api::state::NodeInfo::new(
            "urn:ngsi-ld:ContextSource:test",
        )),
    });
    dosi_api::iot::start(&state);
    App {
        router: dosi_api::router(state.clone(), Arc::new(AllowAll)),
        state,
        broker,
        _dir: None,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl App {
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(encode_uri(uri));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(s) => b
                .header("content-length", s.len().to_string())
                .body(Body::from(s.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }
    pub async fn post_json(&self, uri: &str, body: &str) -> Resp {
        self.call(
            "POST",
            uri,
            &[("content-type", "application/json")],
            Some(body),
        )
        .await
    }
    pub async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, &[], None).await
    }
}

/// Percent-encodes the characters `http::Uri` refuses (brackets, quotes, spaces).
pub fn encode_uri(uri: &str) -> String {
    uri.chars()
        .map(|c| match c {
            '[' | ']' | '"' | ' ' | '<' | '>' | '{' | '}' | '|' | '^' | '`' | '\\' => {
                format!("%{:02X}", c as u32)
            }
            c => c.to_string(),
        })
        .collect()
}
