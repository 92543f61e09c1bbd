//! `dosi bench notify` against a small fake broker that keeps subscriptions
//! in memory and notifies on every `options=update` upsert: setup, clean-up
//! of leftovers, accounting and the isolation endpoints, end to end.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use dosi_bench::{measure, BenchArgs, Report};

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// Subscription id → (watched entity id, endpoint URI).
type Subscriptions = Arc<Mutex<BTreeMap<String, (String, String)>>>;

const FOREIGN: &str = "urn:ngsi-ld:Subscription:someone-else";
const LEFTOVER: &str = "urn:ngsi-ld:Subscription:dosi-bench-notify-ok-999";

/// A fake broker on an ephemeral port; `skip_every`: notifications whose value is a
/// multiple of it are not sent (0: all are).
async fn fake_broker(skip_every: u64) -> (String, Subscriptions) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let subs: Subscriptions = Arc::default();
    {
        let mut s = subs.lock().expect("not poisoned");
        s.insert(
            FOREIGN.into(),
            ("urn:x".into(), "http://127.0.0.1:9/".into()),
        );
        s.insert(
            LEFTOVER.into(),
            ("urn:y".into(), "http://127.0.0.1:9/".into()),
        );
    }
    let state = subs.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let state = state.clone();
                    async move {
                        let (status, body) = answer(request, &state, skip_every).await;
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, subs)
}

async fn answer(
    request: Request<Incoming>,
    subs: &Subscriptions,
    skip_every: u64,
) -> (StatusCode, String) {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    const SUBS: &str = "/ngsi-ld/v1/subscriptions";
    match (&parts.method, path) {
        (&Method::GET, SUBS) => {
            let param = |name: &str| -> usize {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let (limit, offset) = (param("limit"), param("offset"));
            let page: Vec<Value> = subs
                .lock()
                .expect("not poisoned")
                .keys()
                .skip(offset)
                .take(limit)
                .map(|id| json!({"id": id, "type": "Subscription"}))
                .collect();
            (StatusCode::OK, Value::Array(page).to_string())
        }
        (&Method::POST, SUBS) => {
            let doc: Value = serde_json::from_slice(&body).unwrap_or_default();
            let n = &doc["notification"];
            let well_formed = doc["type"] == "Subscription"
                && n["sysAttrs"] == true
                && n["attributes"] == json!(["level"])
                && n["endpoint"]["accept"] == "application/json"
                && parts.headers.get("content-type").map(|v| v.as_bytes())
                    == Some(b"application/json");
            let (Some(id), Some(entity), Some(uri), true) = (
                doc["id"].as_str(),
                doc["entities"][0]["id"].as_str(),
                n["endpoint"]["uri"].as_str(),
                well_formed,
            ) else {
                return (StatusCode::BAD_REQUEST, "{}".into());
            };
            let mut s = subs.lock().expect("not poisoned");
            if s.contains_key(id) {
                return (StatusCode::CONFLICT, "{}".into());
            }
            s.insert(id.into(), (entity.into(), uri.into()));
            (StatusCode::CREATED, String::new())
        }
        (&Method::DELETE, p) if p.starts_with(SUBS) => {
            let id = p[SUBS.len()..].trim_start_matches('/');
            match subs.lock().expect("not poisoned").remove(id) {
                Some(_) => (StatusCode::NO_CONTENT, String::new()),
                None => (StatusCode::NOT_FOUND, "{}".into()),
            }
        }
        (&Method::POST, "/ngsi-ld/v1/entityOperations/upsert") => {
            let entities: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
            if query == "options=update" {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                for e in entities {
                    let value = e["level"]["value"].as_u64().unwrap_or(0);
                    if skip_every > 0 && value % skip_every == 0 {
                        continue;
                    }
                    let targets: Vec<(String, String)> = subs
                        .lock()
                        .expect("not poisoned")
                        .iter()
                        .filter(|(_, (entity, _))| Some(entity.as_str()) == e["id"].as_str())
                        .map(|(id, (_, uri))| (id.clone(), uri.clone()))
                        .collect();
                    for (id, uri) in targets {
                        let note = json!({
                            "id": "urn:ngsi-ld:Notification:x", "type": "Notification",
                            "subscriptionId": id, "notifiedAt": now,
                            "data": [{"id": e["id"], "type": e["type"], "modifiedAt": now,
                                      "level": {"type": "Property", "value": value, "modifiedAt": now}}],
                        });
                        tokio::spawn(notify(uri, note.to_string()));
                    }
                }
            }
            (StatusCode::NO_CONTENT, String::new())
        }
        _ => (StatusCode::NOT_FOUND, "{}".into()),
    }
}

/// POSTs `body` to `uri` on a new connection, giving up after a moment (black hole).
async fn notify(uri: String, body: String) {
    let uri: http::Uri = uri.parse().expect("endpoint URI");
    let authority = uri.authority().expect("authority").to_string();
    let send = async {
        let stream = TcpStream::connect(&authority).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(conn);
        let request = Request::post(uri.path())
            .header("host", authority.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .ok()?;
        sender.send_request(request).await.ok()
    };
    let _ = tokio::time::timeout(Duration::from_millis(300), send).await;
}

async fn bench(url: &str, line: &str) -> Report {
    let args =
        format!("bench --url {url} --connections 2 --duration 0.5 --warmup 0.1 notify {line}");
    let cli = Cli::try_parse_from(args.split_whitespace()).expect("valid arguments");
    measure(&cli.bench).await.expect("benchmark runs")
}

fn remaining(subs: &Subscriptions) -> Vec<String> {
    subs.lock().expect("not poisoned").keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_update_is_accounted_for() {
    let (url, subs) = fake_broker(0).await;
    let report = bench(
        &url,
        "--subscriptions 20 --batch 5 --rate 2000 --receivers 2 --drain 5",
    )
    .await;
    let n = report.notify.clone().expect("notify report");
    assert_eq!(report.scenario, "notify");
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(n.updates_acked > 0, "{n:?}");
    assert_eq!(
        (n.missing, n.duplicates, n.stray, n.unacknowledged),
        (0, 0, 0, 0),
        "{n:?}"
    );
    assert_eq!(n.notifications, n.updates_acked);
    assert!(
        n.notifications_in_window > 0 && n.p50_us <= n.max_us,
        "{n:?}"
    );
    // About 2,000 updates/s for 0.5 s.
    assert!((500..=1_500).contains(&n.notifications_in_window), "{n:?}");
    assert!(n.isolation.is_none());
    assert_eq!(
        remaining(&subs),
        [FOREIGN],
        "leftover and own subscriptions deleted"
    );
    let json = serde_json::to_value(&report).expect("serializable");
    assert_eq!(json["notify"]["missing"], 0);
    assert!(
        report.to_string().contains("missing 0, duplicates 0"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_notifications_are_reported_missing() {
    let (url, subs) = fake_broker(7).await;
    let report = bench(
        &url,
        "--subscriptions 10 --batch 10 --rate 1000 --drain 0.3",
    )
    .await;
    let n = report.notify.expect("notify report");
    assert!(n.updates_acked >= 70, "{n:?}");
    assert_eq!(n.missing, n.updates_acked / 7, "{n:?}");
    assert_eq!(n.notifications + n.missing, n.updates_acked, "{n:?}");
    assert!(n.drain_s >= 0.3, "gave up only after the drain: {n:?}");
    assert_eq!(remaining(&subs), [FOREIGN]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_feeds_the_black_hole_and_the_flaky_endpoint() {
    let (url, subs) = fake_broker(0).await;
    let report = bench(
        &url,
        "--subscriptions 10 --batch 10 --rate 1000 --isolation --bad-subscriptions 3 --drain 5",
    )
    .await;
    assert_eq!(report.scenario, "notify-isolation");
    let n = report.notify.expect("notify report");
    assert_eq!((n.missing, n.stray), (0, 0), "{n:?}");
    let i = n.isolation.expect("isolation report");
    assert_eq!(i.bad_subscriptions, 3);
    assert!(
        i.black_hole_connections > 0 && i.black_hole_bytes > 0,
        "{i:?}"
    );
    assert!(i.flaky_requests > 0, "{i:?}");
    assert_eq!(i.flaky_failed, i.flaky_requests.div_ceil(2), "{i:?}");
    assert_eq!(remaining(&subs), [FOREIGN]);
}

#[tokio::test]
async fn a_server_without_the_subscription_api_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(dosi_bench::serve_ceiling_on(listener));
    // The ceiling answers every GET with an entity object, not a list.
    let args = format!("bench --url {url} --duration 0.2 notify --subscriptions 2 --batch 1");
    let cli = Cli::try_parse_from(args.split_whitespace()).expect("valid arguments");
    let err = measure(&cli.bench).await.expect_err("no subscription API");
    assert!(err.to_string().contains("subscriptions"), "{err}");
    server.abort();
}
