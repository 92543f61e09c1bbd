//! Runs every scenario for a moment against servers on ephemeral loopback
//! ports: the ceiling server, a server that always fails, and a recording
//! server that checks what a populate run actually sends.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use clap::Parser;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use dosi_bench::{measure, serve_ceiling_on, BenchArgs, Report};

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

async fn ephemeral() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

async fn bench(url: &str, line: &str) -> Report {
    let args = format!("bench --url {url} --connections 4 --duration 0.3 --warmup 0.1 {line}");
    let cli = Cli::try_parse_from(args.split_whitespace()).expect("valid arguments");
    measure(&cli.bench).await.expect("benchmark runs")
}

#[tokio::test]
async fn every_scenario_runs_against_the_ceiling() {
    let (listener, url) = ephemeral().await;
    let server = tokio::spawn(serve_ceiling_on(listener));
    for line in [
        "raw",
        "raw --path /ngsi-ld/v1/entities/x",
        "get --entities 1000",
        "patch --entities 1000 --tenant city",
        "query",
        "query --q temperature>30 --count",
        "geo --radius 500",
        "load --entities 2000 --batch 100 --random",
    ] {
        let report = bench(&url, line).await;
        assert!(report.requests > 0, "{line}: {report:?}");
        assert_eq!(report.errors, 0, "{line}: {report:?}");
        assert!(report.p50_us <= report.max_us, "{line}");
    }
    server.abort();
}

#[tokio::test]
async fn populate_counts_items_and_reports_json() {
    let (listener, url) = ephemeral().await;
    let server = tokio::spawn(serve_ceiling_on(listener));
    let report = bench(&url, "load --entities 1050 --batch 100").await;
    assert_eq!(
        (report.requests, report.errors, report.items),
        (11, 0, 1050)
    );
    assert!(report.items_per_s.is_some());
    let json = serde_json::to_value(&report).expect("serializable");
    assert_eq!(json["scenario"], "load");
    server.abort();
}

/// Serves connections from `listener`, answering each request with `answer(method, uri, body)`.
fn serve<F>(listener: TcpListener, answer: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(&http::Method, &http::Uri, &http::HeaderMap, Bytes) -> StatusCode + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let answer = answer.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let status = answer(&parts.method, &parts.uri, &parts.headers, body);
                        let mut response =
                            Response::new(Full::new(Bytes::from_static(b"{\"title\":\"nope\"}")));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

#[tokio::test]
async fn failures_are_counted_as_errors() {
    let (listener, url) = ephemeral().await;
    let server = serve(listener, |_, _, _, _| StatusCode::SERVICE_UNAVAILABLE);
    let report = bench(&url, "get --entities 10").await;
    assert!(report.requests > 0);
    assert_eq!(report.errors, report.requests);
    server.abort();
}

#[tokio::test]
async fn partial_batch_failure_is_an_error() {
    let (listener, url) = ephemeral().await;
    let server = serve(listener, |_, _, _, _| StatusCode::MULTI_STATUS);
    let report = bench(&url, "load --entities 300 --batch 100").await;
    assert_eq!((report.requests, report.errors, report.items), (3, 3, 0));
    server.abort();
}

#[tokio::test]
async fn populate_sends_every_entity_once_with_headers() {
    let (listener, url) = ephemeral().await;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let server = serve(listener, move |method, uri, headers, body| {
        let fine = method == http::Method::POST
            && uri.path() == "/ngsi-ld/v1/entityOperations/upsert"
            && headers.get("content-type").map(|v| v.as_bytes()) == Some(b"application/json")
            && headers.get("ngsild-tenant").map(|v| v.as_bytes()) == Some(b"city");
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let ids = parsed.as_array().cloned().unwrap_or_default();
        let mut seen = record.lock().expect("not poisoned");
        for entity in &ids {
            seen.push(entity["id"].as_str().unwrap_or("?").to_owned());
        }
        if fine && !ids.is_empty() {
            StatusCode::CREATED
        } else {
            StatusCode::BAD_REQUEST
        }
    });
    let report = bench(
        &url,
        "load --entities 777 --batch 50 --type Parking --tenant city",
    )
    .await;
    assert_eq!((report.errors, report.items), (0, 777));
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 777, "no duplicates, no losses");
    let expected: BTreeSet<String> = (0..777)
        .map(|n| format!("urn:ngsi-ld:Parking:bench-{n}"))
        .collect();
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
    server.abort();
}

#[tokio::test]
async fn refuses_remote_and_dead_targets() {
    let cli =
        Cli::try_parse_from(["bench", "--url", "http://10.0.0.1:1026", "raw"]).expect("parses");
    let err = measure(&cli.bench).await.expect_err("remote refused");
    assert!(err.to_string().contains("not a loopback"), "{err}");

    // Bind then drop to get a loopback port that nothing listens on.
    let (listener, url) = ephemeral().await;
    drop(listener);
    let cli = Cli::try_parse_from(["bench", "--url", url.as_str(), "raw"]).expect("parses");
    let err = measure(&cli.bench).await.expect_err("nothing listens");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

#[tokio::test]
async fn a_server_that_hangs_up_gives_errors_not_a_hang() {
    let (listener, url) = ephemeral().await;
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let report = bench(&url, "raw").await;
    assert_eq!(report.requests, 0);
    assert!(report.errors > 0, "{report:?}");
    server.abort();
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_errors() {
    let (listener, url) = ephemeral().await;
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let report = bench(&url, "get --entities 10").await;
    assert_eq!(report.requests, 0);
    assert_eq!(
        report.errors, 4,
        "one abandoned request per connection: {report:?}"
    );
    server.abort();
}
