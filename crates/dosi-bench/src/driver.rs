//! The hot loop: one task per keep-alive HTTP/1.1 connection, each driving
//! its hyper connection future itself (no extra task per connection), on a
//! few dedicated current-thread runtimes so that the generator's CPU cost is
//! bounded by `--threads` whatever runtime the caller uses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::net::TcpStream;

use crate::workload::{Req, Workload};
use crate::BenchError;

/// How many failed requests are described on stderr.
const ERRORS_SHOWN: usize = 5;
/// How much of a failed answer's body is shown.
const ERROR_BODY_SHOWN: usize = 300;
/// Pause before reconnecting after a failure, so a dead server is not hammered.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);
/// A connection gives up after this many failures in a row (about 5 s of a dead server).
const MAX_FAILURES_IN_ROW: u32 = 100;
/// Highest latency the histogram tracks exactly (an hour, in microseconds).
const MAX_LATENCY_US: u64 = 3_600_000_000;

static NGSILD_TENANT: HeaderName = HeaderName::from_static("ngsild-tenant");
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Everything the connections share for one run.
#[derive(Debug)]
pub struct Plan {
    /// Server address.
    pub addr: SocketAddr,
    /// `Host` header.
    pub host: HeaderValue,
    /// `NGSILD-Tenant` header, if any.
    pub tenant: Option<HeaderValue>,
    /// Request generator.
    pub workload: Workload,
    /// Answers to requests started before this are not counted (warm-up).
    pub measure_from: Instant,
    /// No request starts after this; answers after it are not counted.
    pub stop_at: Instant,
    /// Requests still in flight at this instant are abandoned.
    pub hard_stop: Instant,
    /// Seed of the per-connection random generators.
    pub seed: u64,
    /// Failures described on stderr so far.
    pub errors_shown: AtomicUsize,
}

/// Counters of one connection, thread or run.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Answered requests (any status) inside the measurement window.
    pub requests: u64,
    /// Non-2xx answers (and 207 for batches) plus transport failures, inside the window.
    pub errors: u64,
    /// Entities carried by successful requests inside the window.
    pub items: u64,
    /// Latency of answered requests inside the window, in microseconds.
    pub latency_us: Histogram<u64>,
    /// When the last request finished (for runs that end when the work is done).
    pub last_done: Option<Instant>,
}

impl Stats {
    /// Empty counters.
    pub fn new() -> Stats {
        Stats {
            requests: 0,
            errors: 0,
            items: 0,
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("1..1h with 3 significant digits are valid histogram bounds"),
            last_done: None,
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.items += other.items;
        // Both histograms have the same bounds and saturate at the top, so `add` cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        self.last_done = self.last_done.max(other.last_done);
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Plan {
    fn in_window(&self, started: Instant, done: Instant) -> bool {
        started >= self.measure_from && done <= self.stop_at
    }

    fn now_in_window(&self) -> bool {
        let now = Instant::now();
        self.in_window(now, now)
    }

    fn request(&self, req: Req) -> Request<Full<Bytes>> {
        let has_body = !req.body.is_empty();
        let mut request = Request::new(Full::new(req.body));
        *request.method_mut() = req.method;
        *request.uri_mut() = req.uri;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        if has_body {
            headers.insert(CONTENT_TYPE, APPLICATION_JSON.clone());
        }
        if let Some(tenant) = &self.tenant {
            headers.insert(NGSILD_TENANT.clone(), tenant.clone());
        }
        request
    }

    fn show_error(&self, what: impl FnOnce() -> String) {
        if self.errors_shown.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
            eprintln!("dosi bench: {}", what());
        }
    }
}

/// Runs `connections` connections on `threads` dedicated threads and returns their summed stats.
pub async fn drive(
    plan: Arc<Plan>,
    connections: usize,
    threads: usize,
) -> Result<Stats, BenchError> {
    let threads = threads.clamp(1, connections.max(1));
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let plan = plan.clone();
        let ids: Vec<u64> = (t..connections)
            .step_by(threads)
            .map(|c| c as u64)
            .collect();
        let handle = std::thread::Builder::new()
            .name(format!("dosi-bench-{t}"))
            .spawn(move || run_thread(plan, ids))
            .map_err(|e| BenchError::Worker(format!("cannot start a thread: {e}")))?;
        handles.push(handle);
    }
    let joined = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| BenchError::Worker("a load thread panicked".into()))?
            })
            .collect::<Result<Vec<Stats>, BenchError>>()
    })
    .await
    .map_err(|e| BenchError::Worker(e.to_string()))??;
    let mut total = Stats::new();
    for stats in &joined {
        total.merge(stats);
    }
    Ok(total)
}

fn run_thread(plan: Arc<Plan>, ids: Vec<u64>) -> Result<Stats, BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Worker(format!("cannot build a runtime: {e}")))?;
    runtime.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for id in ids {
            set.spawn(connection(plan.clone(), id));
        }
        let mut total = Stats::new();
        while let Some(joined) = set.join_next().await {
            let stats = joined.map_err(|e| BenchError::Worker(e.to_string()))?;
            total.merge(&stats);
        }
        Ok(total)
    })
}

/// What became of one request.
enum Outcome {
    /// The server answered (body drained, or kept when the answer is a failure).
    Answer(StatusCode, Bytes),
    /// The connection broke while the request was under way.
    Broken(hyper::Error),
}

/// One keep-alive connection sending requests back to back until the plan says stop.
async fn connection(plan: Arc<Plan>, id: u64) -> Stats {
    let mut stats = Stats::new();
    let mut rng = SmallRng::seed_from_u64(plan.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let hard = tokio::time::sleep_until(plan.hard_stop.into());
    tokio::pin!(hard);
    let batch = plan.workload.is_batch();
    // Connection-level failures since the last answer: they slow down, then stop, reconnecting.
    let mut failures_in_row = 0u32;

    'connect: while Instant::now() < plan.stop_at {
        if failures_in_row >= MAX_FAILURES_IN_ROW {
            plan.show_error(|| {
                format!("connection {id} gives up after {failures_in_row} failures in a row")
            });
            break 'connect;
        }
        if failures_in_row > 0 {
            tokio::select! {
                _ = tokio::time::sleep(RECONNECT_PAUSE) => {}
                _ = &mut hard => break 'connect,
            }
        }
        let stream = tokio::select! {
            s = TcpStream::connect(plan.addr) => s,
            _ = &mut hard => break 'connect,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                failures_in_row += 1;
                if plan.now_in_window() {
                    stats.errors += 1;
                }
                plan.show_error(|| format!("connect to {}: {e}", plan.addr));
                continue 'connect;
            }
        };
        // Small requests and answers: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = match http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => {
                failures_in_row += 1;
                if plan.now_in_window() {
                    stats.errors += 1;
                }
                plan.show_error(|| format!("HTTP handshake: {e}"));
                continue 'connect;
            }
        };
        tokio::pin!(conn);
        let mut conn_done = false;
        let mut answered = false;

        loop {
            let ready = tokio::select! {
                biased;
                r = sender.ready() => r.is_ok(),
                _ = &mut conn, if !conn_done => { conn_done = true; false }
                _ = &mut hard => break 'connect,
            };
            if !ready {
                // A server closing an idle keep-alive connection is normal; closing one
                // before answering anything on it is a failure.
                if !answered {
                    failures_in_row += 1;
                    if plan.now_in_window() {
                        stats.errors += 1;
                    }
                    plan.show_error(|| "connection closed before any answer".to_owned());
                }
                continue 'connect;
            }
            // A paced workload waits for its slot.
            if let Some(slot) = plan.workload.slot() {
                tokio::select! {
                    _ = tokio::time::sleep_until(slot.into()) => {}
                    _ = &mut hard => break 'connect,
                }
            }
            let started = Instant::now();
            if started >= plan.stop_at {
                break 'connect;
            }
            // Drawn only once the connection is ready, so a connection closing between
            // requests loses no batch of a populate run.
            let Some(req) = plan.workload.next(&mut rng) else {
                break 'connect;
            };
            let (items, tag) = (req.items, req.tag);
            let exchange = exchange(&mut sender, plan.request(req), batch);
            tokio::pin!(exchange);
            let outcome = loop {
                tokio::select! {
                    biased;
                    outcome = &mut exchange => break outcome,
                    // The connection future does the socket IO; once it ends, the
                    // exchange fails promptly (or the hard stop ends the wait).
                    _ = &mut conn, if !conn_done => conn_done = true,
                    _ = &mut hard => {
                        // Stuck through the whole measured window, whenever it started.
                        stats.errors += 1;
                        plan.show_error(|| "no answer before the end of the run (counted as an error)".to_owned());
                        break 'connect;
                    }
                }
            };
            let done = Instant::now();
            stats.last_done = Some(done);
            let counted = plan.in_window(started, done);
            match outcome {
                Outcome::Answer(status, body) => {
                    answered = true;
                    failures_in_row = 0;
                    let ok = is_ok(status, batch);
                    if ok {
                        plan.workload.acknowledged(tag);
                    }
                    if counted {
                        stats.requests += 1;
                        let us = u64::try_from(done.duration_since(started).as_micros())
                            .unwrap_or(u64::MAX);
                        stats.latency_us.saturating_record(us);
                        if ok {
                            stats.items += items;
                        } else {
                            stats.errors += 1;
                        }
                    }
                    if !ok {
                        plan.show_error(|| {
                            let text = String::from_utf8_lossy(&body);
                            let shown: String = text.chars().take(ERROR_BODY_SHOWN).collect();
                            format!("{status}: {shown}")
                        });
                    }
                }
                Outcome::Broken(e) => {
                    failures_in_row += 1;
                    if counted {
                        stats.errors += 1;
                    }
                    plan.show_error(|| format!("request failed: {e}"));
                    continue 'connect;
                }
            }
            if conn_done {
                continue 'connect;
            }
        }
    }
    stats
}

fn is_ok(status: StatusCode, batch: bool) -> bool {
    status.is_success() && !(batch && status == StatusCode::MULTI_STATUS)
}

/// Sends `request` and reads the whole answer; the body is kept only for failures.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    batch: bool,
) -> Outcome {
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(e) => return Outcome::Broken(e),
    };
    let status = response.status();
    let mut body = response.into_body();
    if is_ok(status, batch) {
        // Drain without copying: the answer's content is not checked.
        while let Some(frame) = body.frame().await {
            if let Err(e) = frame {
                return Outcome::Broken(e);
            }
        }
        Outcome::Answer(status, Bytes::new())
    } else {
        match body.collect().await {
            Ok(collected) => Outcome::Answer(status, collected.to_bytes()),
            Err(e) => Outcome::Broken(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_ok(status, batch)` is `expected`.
    fn check(status: u16, batch: bool, expected: bool) {
        let status = StatusCode::from_u16(status).expect("valid status");
        assert_eq!(is_ok(status, batch), expected, "{status} batch={batch}");
    }

    #[test]
    fn success_statuses() {
        check(200, false, true);
        check(201, true, true);
        check(204, false, true);
        check(204, true, true);
        check(207, false, true);
        check(207, true, false);
        check(301, false, false);
        check(400, true, false);
        check(404, false, false);
        check(500, false, false);
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Stats::new();
        a.requests = 2;
        a.latency_us.saturating_record(100);
        a.latency_us.saturating_record(200);
        let mut b = Stats::new();
        b.requests = 1;
        b.errors = 1;
        b.items = 5;
        b.latency_us.saturating_record(u64::MAX);
        a.merge(&b);
        assert_eq!((a.requests, a.errors, a.items), (3, 1, 5));
        assert_eq!(a.latency_us.len(), 3);
        assert!(a.latency_us.max() >= MAX_LATENCY_US);
    }
}
