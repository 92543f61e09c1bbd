//! The "ceiling" server: plain hyper answering every request with the same
//! small JSON entity. Whatever a real server reaches on this machine, it
//! cannot beat this, so `raw` against it measures the generator and the
//! HTTP stack rather than the broker.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::net::TcpListener;

use crate::data;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(20);

/// The answer body: one benchmark entity, about the size of a real `GET /entities/{id}` answer.
pub fn ceiling_body() -> Bytes {
    let entity = data::sensor_entity("BenchSensor", 0, &mut SmallRng::seed_from_u64(0));
    Bytes::from(entity.to_string())
}

/// Serves the ceiling on `addr` until the task is dropped or accepting fails for good.
pub async fn serve_ceiling(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_ceiling_on(listener).await
}

/// Serves the ceiling on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn serve_ceiling_on(listener: TcpListener) -> anyhow::Result<()> {
    let body = ceiling_body();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually transient (EMFILE, a reset before accept): keep serving.
                eprintln!("ceiling: accept failed: {e}");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let body = body.clone();
                async move {
                    // Read the request body as a real server would; it also keeps the
                    // connection reusable after large uploads.
                    let _ = request.into_body().collect().await;
                    let mut response = Response::new(Full::new(body));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    Ok::<_, Infallible>(response)
                }
            });
            // A client going away mid-request is normal at the end of a run.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
