//! `dosi bench temporal` against a fake temporal API on an ephemeral
//! loopback port: it records what seeding and ingest send, and answers the
//! queries with bodies of the shape the spec gives.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use dosi_bench::temporal::TemporalReport;
use dosi_bench::{measure, BenchArgs, BenchError, Report};

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// What the fake server saw.
#[derive(Debug, Default)]
struct Seen {
    /// (entity id, attribute) → observedAt of every instance written.
    instances: BTreeMap<(String, String), Vec<String>>,
    /// Appends that arrived before their entity was created.
    early_appends: u64,
    /// Entities upserted with options=update.
    upserted: u64,
}

type Shared = Arc<Mutex<Seen>>;

fn answer(seen: &Shared, method: &Method, uri: &http::Uri, body: &[u8]) -> (StatusCode, Value) {
    let path = uri.path();
    let query: BTreeMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            (k.to_owned(), v.into_owned())
        })
        .collect();
    let mut seen = seen.lock().expect("not poisoned");
    let bucket = json!([1.0, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"]);
    match (method, path) {
        (&Method::POST, "/ngsi-ld/v1/temporal/entities") => {
            let Ok(entity) = serde_json::from_slice::<Value>(body) else {
                return (StatusCode::BAD_REQUEST, json!({}));
            };
            let id = entity["id"].as_str().unwrap_or("?").to_owned();
            let exists = seen.instances.keys().any(|(e, _)| *e == id);
            let first = entity["pm25"][0]["observedAt"].as_str().unwrap_or("");
            if !exists && !first.ends_with("T00:00:00.000000Z") {
                seen.early_appends += 1;
                return (StatusCode::CONFLICT, json!({}));
            }
            for (name, instances) in entity.as_object().into_iter().flatten() {
                for i in instances.as_array().into_iter().flatten() {
                    let t = i["observedAt"].as_str().unwrap_or("?").to_owned();
                    seen.instances
                        .entry((id.clone(), name.clone()))
                        .or_default()
                        .push(t);
                }
            }
            let status = if exists {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::CREATED
            };
            (status, Value::Null)
        }
        (&Method::POST, "/ngsi-ld/v1/entityOperations/upsert") => {
            if query.get("options").map(String::as_str) != Some("update") {
                return (StatusCode::BAD_REQUEST, json!({}));
            }
            let n = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            seen.upserted += n as u64;
            (StatusCode::NO_CONTENT, Value::Null)
        }
        (&Method::GET, "/ngsi-ld/v1/temporal/entities") => {
            let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
            let buckets = vec![bucket; 24];
            let entity = json!({"id": "x", "type": "AirQualitySensor", "pm25": {"type": "Property", "avg": buckets}});
            (StatusCode::OK, Value::Array(vec![entity; limit]))
        }
        (&Method::GET, p) if p.starts_with("/ngsi-ld/v1/temporal/entities/") => {
            let id = p.rsplit('/').next().unwrap_or("?");
            if id.contains("missing") {
                return (StatusCode::NOT_FOUND, json!({"type": "ResourceNotFound"}));
            }
            if query.get("format").map(String::as_str) == Some("aggregatedValues") {
                let buckets = vec![bucket; 720];
                (
                    StatusCode::OK,
                    json!({"id": id, "pm25": {"type": "Property", "avg": buckets}}),
                )
            } else {
                let n: usize = query.get("lastN").and_then(|l| l.parse().ok()).unwrap_or(0);
                let instance =
                    json!({"type": "Property", "value": 1.0, "observedAt": "2026-01-01T00:00:00Z"});
                (StatusCode::OK, json!({"id": id, "pm25": vec![instance; n]}))
            }
        }
        _ => (StatusCode::NOT_FOUND, json!({"type": "ResourceNotFound"})),
    }
}

async fn fake_server() -> (String, Shared) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Shared::default();
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let (status, json) = answer(&seen, &parts.method, &parts.uri, &body);
                        let body = if json.is_null() {
                            Bytes::new()
                        } else {
                            Bytes::from(json.to_string())
                        };
                        let mut response = Response::new(Full::new(body));
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
    (url, seen)
}

async fn bench(url: &str, line: &str) -> Result<Report, BenchError> {
    let args =
        format!("bench --url {url} --connections 4 --duration 0.3 --warmup 0.1 temporal {line}");
    let cli = Cli::try_parse_from(args.split_whitespace()).expect("valid arguments");
    measure(&cli.bench).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_writes_every_instance_once_creations_first() {
    let (url, seen) = fake_server().await;
    let report = bench(
        &url,
        "--seed-days 2 --entities 5 --points-per-request 500 --attrs 2",
    )
    .await
    .expect("runs");
    assert_eq!(report.scenario, "temporal-seed");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.requests, 5 * 6);
    assert_eq!(report.items, 5 * 2880 * 2);
    let Some(TemporalReport::Seed {
        instances,
        instances_expected,
        ..
    }) = report.temporal
    else {
        panic!("a seed report: {report:?}");
    };
    assert_eq!(instances, instances_expected);
    let seen = seen.lock().expect("not poisoned");
    assert_eq!(seen.early_appends, 0);
    assert_eq!(seen.instances.len(), 10, "5 entities × 2 attributes");
    for (key, times) in &seen.instances {
        let distinct: BTreeSet<&String> = times.iter().collect();
        assert_eq!((times.len(), distinct.len()), (2880, 2880), "{key:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reports_instances() {
    let (url, seen) = fake_server().await;
    let report = bench(&url, "--ingest --entities 100 --batch 10 --attrs 3")
        .await
        .expect("runs");
    assert_eq!(report.scenario, "temporal-ingest");
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.items > 0);
    let Some(TemporalReport::Ingest {
        instances,
        instances_per_s,
        ..
    }) = report.temporal
    else {
        panic!("an ingest report: {report:?}");
    };
    assert_eq!(instances, report.items * 3);
    let per_s = report.items_per_s.expect("entities/s") * 3.0;
    assert!((instances_per_s - per_s).abs() < 1e-6);
    assert!(seen.lock().expect("not poisoned").upserted >= report.items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_checked_and_measured() {
    let (url, _) = fake_server().await;
    for (line, entities, values) in [
        ("--query agg-one --requests 20", 1, 720),
        ("--query agg-many --entities 5 --requests 20", 5, 120),
        ("--query lastn --last-n 7 --requests 20", 1, 7),
    ] {
        let report = bench(&url, line).await.expect("runs");
        assert_eq!(report.errors, 0, "{line}: {report:?}");
        assert!(report.requests > 0, "{line}");
        let Some(TemporalReport::Query {
            check, sequential, ..
        }) = report.temporal
        else {
            panic!("{line}: a query report: {report:?}");
        };
        assert_eq!(
            (check.entities, check.expected_entities),
            (entities, entities),
            "{line}"
        );
        assert_eq!(check.values, values, "{line}");
        assert_eq!(check.expected_values, Some(values), "{line}");
        assert_eq!((sequential.requests, sequential.errors), (20, 0), "{line}");
        assert!(sequential.p50_us <= sequential.max_us);
    }
}

#[tokio::test]
async fn a_failing_probe_is_named() {
    let (url, _) = fake_server().await;
    let err = bench(&url, "--query agg-one --type missing")
        .await
        .expect_err("the probe fails");
    let text = err.to_string();
    assert!(text.contains("probe") && text.contains("404"), "{text}");
    assert!(text.contains("--seed-days"), "{text}");
}

#[tokio::test]
async fn seeding_without_the_temporal_api_stops_after_the_creations() {
    let (url, seen) = fake_server().await;
    // Under a base path the fake does not serve, everything is 404.
    let err = bench(&format!("{url}/elsewhere"), "--seed-days 3 --entities 2")
        .await
        .expect_err("nothing can be created");
    assert!(err.to_string().contains("could be created"), "{err}");
    assert!(seen.lock().expect("not poisoned").instances.is_empty());
}
