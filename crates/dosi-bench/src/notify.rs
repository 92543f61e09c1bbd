//! `notify`: how fast, how completely and how soon subscription notifications
//! arrive.
//!
//! The bench process runs its own receivers (HTTP/1.1 keep-alive, 204 at
//! once) on one dedicated thread, subscribes them (subscription `i` watches
//! entity `i`, so every entity update makes exactly one notification), then
//! drives batch upserts of `level` through the common driver. Every update
//! carries a value unique to the run (`level` = update number), so after a
//! drain the receivers can tell which acknowledged updates were never
//! notified and which were notified twice. Latency is the receive time minus
//! the notified attribute's `modifiedAt` (`sysAttrs: true`): the broker takes
//! that time when the write starts, on the same clock, so it covers the
//! commit, the notifier and delivery.
//!
//! `--isolation` adds a black-holed endpoint (accepts, reads, never answers)
//! and one answering 500 to every other request, each subscribed to the
//! first `--bad-subscriptions` entities as well; the healthy receivers'
//! figures are reported alone, so they compare with a run without it.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::target::{query_string, Target};
use crate::workload::Req;
use crate::{BenchArgs, BenchError, Common, Report};

/// Subscription ids of this scenario start with this; leftovers are deleted by it.
pub const SUBSCRIPTION_PREFIX: &str = "urn:ngsi-ld:Subscription:dosi-bench-notify-";
/// Path the receivers are subscribed with.
const RECEIVER_PATH: &str = "/notify";
/// Connections used to create and delete entities and subscriptions.
const SETUP_CONNECTIONS: usize = 8;
/// Entities per upsert when creating them.
const SETUP_BATCH: u64 = 100;
/// Subscriptions per page when listing leftovers.
const LIST_PAGE: usize = 100;
/// How often the drain looks whether everything arrived.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// Upper bounds that keep a typo from turning into a huge setup.
const MAX_SUBSCRIPTIONS: u64 = 1_000_000;
const MAX_RECEIVERS: usize = 256;
/// Highest latency the histogram tracks exactly (an hour, in microseconds).
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// How much of a failed setup answer's body is shown.
const ERROR_BODY_SHOWN: usize = 300;

static NGSILD_TENANT: HeaderName = HeaderName::from_static("ngsild-tenant");
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Options of `dosi bench notify`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct NotifyArgs {
    /// Subscriptions to the healthy receivers: subscription i watches entity i (0..N).
    #[arg(long, default_value_t = 1000)]
    pub subscriptions: u64,
    /// Entity updates per upsert request (each update is one notification).
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Entity updates per second; omitted, as fast as the server acknowledges them.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Healthy receivers, each on its own port (the notifier queues per endpoint).
    #[arg(long, default_value_t = 1)]
    pub receivers: usize,
    /// Longest wait after the run for notifications still under way, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Also subscribe a black-holed endpoint and one answering 500 to every other request.
    #[arg(long)]
    pub isolation: bool,
    /// With --isolation: subscriptions of each misbehaving endpoint (to entities 0..K).
    #[arg(long, default_value_t = 10)]
    pub bad_subscriptions: u64,
    /// Entity type.
    #[arg(long = "type", default_value = "NotifySensor")]
    pub entity_type: String,
}

impl NotifyArgs {
    fn check(&self) -> Result<(), BenchError> {
        let invalid = |name, reason: String| Err(BenchError::InvalidArg { name, reason });
        if self.subscriptions == 0 || self.subscriptions > MAX_SUBSCRIPTIONS {
            return invalid(
                "--subscriptions",
                format!("must be 1..={MAX_SUBSCRIPTIONS}"),
            );
        }
        if self.batch == 0 || self.batch > self.subscriptions {
            return invalid(
                "--batch",
                "must be 1..=--subscriptions (the ids of one batch are distinct)".into(),
            );
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return invalid("--rate", format!("{rate} is not a positive number"));
            }
        }
        if self.receivers == 0 || self.receivers > MAX_RECEIVERS {
            return invalid("--receivers", format!("must be 1..={MAX_RECEIVERS}"));
        }
        crate::seconds("--drain", self.drain, true)?;
        if self.isolation
            && (self.bad_subscriptions == 0 || self.bad_subscriptions > self.subscriptions)
        {
            return invalid("--bad-subscriptions", "must be 1..=--subscriptions".into());
        }
        crate::workload::check_type(&self.entity_type)
    }

    /// `urn:ngsi-ld:<Type>:` — entity `n` is this followed by `n`.
    fn id_prefix(&self) -> String {
        format!("urn:ngsi-ld:{}:", self.entity_type)
    }
}

// ---------------------------------------------------------------------------
// The updates the driver sends.

/// The notify workload: batch upserts (`options=update`) of `level`, update
/// `v` (1, 2, …) setting entity `(v - 1) mod N` to `v`; remembers which
/// requests were acknowledged.
#[derive(Debug)]
pub struct Updates {
    uri: Uri,
    id_prefix: String,
    type_json: String,
    entities: u64,
    batch: u64,
    next_request: AtomicU64,
    pacer: Option<Pacer>,
    acked: Mutex<Vec<u64>>,
}

/// Slots at a fixed rate, from the first request on (open loop: a late
/// connection takes the slots it missed at once).
#[derive(Debug)]
struct Pacer {
    epoch: OnceLock<Instant>,
    interval: Duration,
    next: AtomicU64,
}

impl Updates {
    /// The workload of `args` against `target`.
    pub fn new(args: &NotifyArgs, target: &Target) -> Result<Updates, BenchError> {
        args.check()?;
        let path = format!(
            "{}{}",
            target.path("/ngsi-ld/v1/entityOperations/upsert"),
            query_string(&[("options", "update")])
        );
        let uri = Uri::try_from(path.as_str()).map_err(|e| BenchError::InvalidArg {
            name: "--url",
            reason: format!("{path:?} is not a valid request path: {e}"),
        })?;
        let pacer = args.rate.map(|rate| Pacer {
            epoch: OnceLock::new(),
            interval: Duration::from_secs_f64(args.batch as f64 / rate),
            next: AtomicU64::new(0),
        });
        Ok(Updates {
            uri,
            id_prefix: args.id_prefix(),
            type_json: serde_json::Value::String(args.entity_type.clone()).to_string(),
            entities: args.subscriptions,
            batch: args.batch,
            next_request: AtomicU64::new(0),
            pacer,
            acked: Mutex::new(Vec::new()),
        })
    }

    /// The next upsert; its tag is the request number.
    pub fn next(&self) -> Req {
        let r = self.next_request.fetch_add(1, Ordering::Relaxed);
        let first = r * self.batch + 1;
        let values = first..first + self.batch;
        Req {
            method: Method::POST,
            uri: self.uri.clone(),
            body: Bytes::from(self.body(values, (first - 1) % self.entities)),
            items: self.batch,
            tag: r,
        }
    }

    /// A batch setting `level` of entity `(v - 1) mod N` to `v` for each `v` of `values`;
    /// `first_entity` is that of the first value. Value 0 (creation) is the
    /// entities' starting value.
    fn body(&self, values: std::ops::Range<u64>, first_entity: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(100 * (values.end - values.start) as usize);
        out.push(b'[');
        let mut entity = first_entity;
        for (i, v) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":\"");
            out.extend_from_slice(self.id_prefix.as_bytes());
            out.extend_from_slice(entity.to_string().as_bytes());
            out.extend_from_slice(b"\",\"type\":");
            out.extend_from_slice(self.type_json.as_bytes());
            out.extend_from_slice(b",\"level\":{\"type\":\"Property\",\"value\":");
            out.extend_from_slice(v.to_string().as_bytes());
            out.extend_from_slice(b"}}");
            entity = (entity + 1) % self.entities;
        }
        out.push(b']');
        out
    }

    /// Records that request `tag` was acknowledged (2xx, not 207).
    pub fn acknowledged(&self, tag: u64) {
        self.acked.lock().expect("not poisoned").push(tag);
    }

    /// When the next request may start, with `--rate`.
    pub fn slot(&self) -> Option<Instant> {
        let p = self.pacer.as_ref()?;
        let epoch = *p.epoch.get_or_init(Instant::now);
        let k = p.next.fetch_add(1, Ordering::Relaxed);
        Some(epoch + p.interval.mul_f64(k as f64))
    }

    /// What was sent and acknowledged so far.
    fn ledger(&self) -> Ledger {
        Ledger {
            batch: self.batch,
            entities: self.entities,
            issued: self.next_request.load(Ordering::Relaxed),
            acked: self
                .acked
                .lock()
                .expect("not poisoned")
                .iter()
                .copied()
                .collect(),
        }
    }
}

/// Which updates exist and which were acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Updates per request.
    pub batch: u64,
    /// Entities (update `v` is for entity `(v - 1) mod entities`).
    pub entities: u64,
    /// Requests drawn (values `1..=issued * batch` exist).
    pub issued: u64,
    /// Numbers of the acknowledged requests.
    pub acked: HashSet<u64>,
}

impl Ledger {
    fn is_acked(&self, value: u64) -> bool {
        value >= 1 && self.acked.contains(&((value - 1) / self.batch))
    }

    /// True if `value` was sent to `entity` in this run.
    fn is_ours(&self, value: u64, entity: Option<u64>) -> bool {
        value >= 1
            && value <= self.issued.saturating_mul(self.batch)
            && entity == Some((value - 1) % self.entities.max(1))
    }

    fn acked_values(&self) -> impl Iterator<Item = u64> + '_ {
        self.acked
            .iter()
            .flat_map(|r| (r * self.batch + 1)..=(r + 1) * self.batch)
    }

    fn acked_updates(&self) -> u64 {
        self.acked.len() as u64 * self.batch
    }
}

// ---------------------------------------------------------------------------
// Timestamps.

/// Microseconds since the Unix epoch of an RFC 3339 date-time such as
/// `2026-11-22T15:04:05.123456Z` or `2026-11-22T22:04:05.123+07:00`
/// (fractions beyond microseconds are truncated).
pub fn parse_rfc3339_us(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..6 {
            micros *= 10;
        }
    }
    let offset_s = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1_000_000 + micros)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Now, in microseconds since the Unix epoch (the clock `modifiedAt` is taken from).
fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The wall-clock time of `at`, in microseconds since the Unix epoch.
fn wall_of(at: Instant) -> i64 {
    let (now, wall) = (Instant::now(), wall_us());
    let us = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    if at <= now {
        wall - us(now - at)
    } else {
        wall + us(at - now)
    }
}

// ---------------------------------------------------------------------------
// Receivers and their accounting.

/// One notified entity as a healthy receiver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The notified `level` (the update number).
    pub value: u64,
    /// The entity number from its id, if it has the scenario's prefix.
    pub entity: Option<u64>,
    /// `level.modifiedAt`, µs since the epoch.
    pub modified_us: i64,
    /// When the notification was read, µs since the epoch.
    pub received_us: i64,
}

/// What the healthy receivers got.
#[derive(Debug, Default)]
pub struct Tally {
    samples: Vec<Sample>,
    /// Notifications per update number.
    counts: HashMap<u64, u32>,
    /// Bodies or entities that are not a notification of `level` with `modifiedAt`.
    malformed: u64,
}

#[derive(Deserialize)]
struct NotificationBody<'a> {
    #[serde(borrow)]
    data: Vec<NotifiedEntity<'a>>,
}

#[derive(Deserialize)]
struct NotifiedEntity<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    level: Option<NotifiedLevel<'a>>,
}

#[derive(Deserialize)]
struct NotifiedLevel<'a> {
    value: serde_json::Value,
    #[serde(rename = "modifiedAt", borrow)]
    modified_at: Option<std::borrow::Cow<'a, str>>,
}

impl Tally {
    /// Records notification `body` received at `received_us`; entity ids start with `id_prefix`.
    pub fn record(&mut self, body: &[u8], received_us: i64, id_prefix: &str) {
        let Ok(n) = serde_json::from_slice::<NotificationBody>(body) else {
            self.malformed += 1;
            return;
        };
        if n.data.is_empty() {
            self.malformed += 1;
        }
        for e in n.data {
            let level = e.level.and_then(|l| {
                let modified = parse_rfc3339_us(l.modified_at.as_deref()?)?;
                Some((l.value.as_u64()?, modified))
            });
            let Some((value, modified_us)) = level else {
                self.malformed += 1;
                continue;
            };
            let entity =
                e.id.strip_prefix(id_prefix)
                    .and_then(|n| n.parse::<u64>().ok());
            *self.counts.entry(value).or_insert(0) += 1;
            self.samples.push(Sample {
                value,
                entity,
                modified_us,
                received_us,
            });
        }
    }

    /// True when every acknowledged update of `ledger` was notified at least once.
    fn complete(&self, ledger: &Ledger) -> bool {
        // Cheap test first: there cannot be enough distinct values yet.
        self.counts.len() as u64 >= ledger.acked_updates()
            && ledger.acked_values().all(|v| self.counts.contains_key(&v))
    }
}

/// The healthy receivers' figures for one run.
#[derive(Debug, Clone)]
pub struct Accounting {
    /// Notified entities that belong to the run (duplicates included).
    pub received: u64,
    /// Of those, received inside the window.
    pub in_window: u64,
    /// Acknowledged updates never notified.
    pub missing: u64,
    /// Notifications beyond the first of an update.
    pub duplicates: u64,
    /// Updates notified but not acknowledged (their request failed or was abandoned).
    pub unacknowledged: u64,
    /// Notifications that are not of this run's updates, or not readable.
    pub stray: u64,
    /// `modifiedAt` to receipt, µs, for updates made inside the window.
    pub latency_us: Histogram<u64>,
}

/// Checks `tally` against `ledger`; the window is `[from_us, to_us)` of wall-clock time.
pub fn account(tally: &Tally, ledger: &Ledger, from_us: i64, to_us: i64) -> Accounting {
    let mut a = Accounting {
        received: 0,
        in_window: 0,
        missing: 0,
        duplicates: 0,
        unacknowledged: 0,
        stray: tally.malformed,
        latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("1..1h with 3 significant digits are valid histogram bounds"),
    };
    let window = from_us..to_us;
    let mut counts: HashMap<u64, u64> = HashMap::with_capacity(tally.counts.len());
    for s in &tally.samples {
        if !ledger.is_ours(s.value, s.entity) {
            a.stray += 1;
            continue;
        }
        a.received += 1;
        *counts.entry(s.value).or_insert(0) += 1;
        if window.contains(&s.received_us) {
            a.in_window += 1;
        }
        if window.contains(&s.modified_us) {
            let us = u64::try_from(s.received_us - s.modified_us).unwrap_or(0);
            a.latency_us.saturating_record(us);
        }
    }
    for (value, n) in &counts {
        a.duplicates += n - 1;
        if !ledger.is_acked(*value) {
            a.unacknowledged += 1;
        }
    }
    a.missing = ledger
        .acked_values()
        .filter(|v| !counts.contains_key(v))
        .count() as u64;
    a
}

/// Answers of the endpoint that fails half the time.
#[derive(Debug, Default)]
struct Flaky {
    requests: AtomicU64,
    failed: AtomicU64,
}

/// The black-holed endpoint's counters.
#[derive(Debug, Default)]
struct BlackHole {
    connections: AtomicU64,
    bytes: AtomicU64,
}

/// The receivers, served by one dedicated thread.
struct Receivers {
    healthy: Vec<SocketAddr>,
    flaky_addr: Option<SocketAddr>,
    black_hole_addr: Option<SocketAddr>,
    tally: Arc<Mutex<Tally>>,
    flaky: Arc<Flaky>,
    black_hole: Arc<BlackHole>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn bind_loopback() -> Result<std::net::TcpListener, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| BenchError::Setup(format!("cannot bind a receiver on 127.0.0.1: {e}")))?;
    Ok(listener)
}

fn local_addr(l: &std::net::TcpListener) -> Result<SocketAddr, BenchError> {
    l.local_addr()
        .map_err(|e| BenchError::Setup(format!("receiver address: {e}")))
}

impl Receivers {
    /// Binds and starts `healthy` receivers, plus the misbehaving ones with `isolation`.
    fn start(healthy: usize, isolation: bool, id_prefix: String) -> Result<Receivers, BenchError> {
        let healthy_listeners = (0..healthy)
            .map(|_| bind_loopback())
            .collect::<Result<Vec<_>, _>>()?;
        let (flaky_listener, hole_listener) = if isolation {
            (Some(bind_loopback()?), Some(bind_loopback()?))
        } else {
            (None, None)
        };
        let mut me = Receivers {
            healthy: healthy_listeners
                .iter()
                .map(local_addr)
                .collect::<Result<_, _>>()?,
            flaky_addr: flaky_listener.as_ref().map(local_addr).transpose()?,
            black_hole_addr: hole_listener.as_ref().map(local_addr).transpose()?,
            tally: Arc::default(),
            flaky: Arc::default(),
            black_hole: Arc::default(),
            shutdown: None,
            thread: None,
        };
        let (tx, rx) = oneshot::channel::<()>();
        let (tally, flaky, hole) = (me.tally.clone(), me.flaky.clone(), me.black_hole.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BenchError::Worker(format!("cannot build a runtime: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("dosi-bench-receivers".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let prefix: Arc<str> = id_prefix.into();
                    for l in healthy_listeners {
                        let (tally, prefix) = (tally.clone(), prefix.clone());
                        tokio::spawn(accept_loop(l, move |request| {
                            let (tally, prefix) = (tally.clone(), prefix.clone());
                            async move {
                                if let Ok(body) = request.into_body().collect().await {
                                    let received = wall_us();
                                    let body = body.to_bytes();
                                    let mut t = tally.lock().expect("not poisoned");
                                    t.record(&body, received, &prefix);
                                }
                                StatusCode::NO_CONTENT
                            }
                        }));
                    }
                    if let Some(l) = flaky_listener {
                        tokio::spawn(accept_loop(l, move |request| {
                            let flaky = flaky.clone();
                            async move {
                                let _ = request.into_body().collect().await;
                                if flaky.requests.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                                    flaky.failed.fetch_add(1, Ordering::Relaxed);
                                    StatusCode::INTERNAL_SERVER_ERROR
                                } else {
                                    StatusCode::NO_CONTENT
                                }
                            }
                        }));
                    }
                    if let Some(l) = hole_listener {
                        tokio::spawn(black_hole(l, hole));
                    }
                    // Dropping the runtime afterwards ends every connection task.
                    let _ = rx.await;
                });
            })
            .map_err(|e| BenchError::Worker(format!("cannot start the receiver thread: {e}")))?;
        me.shutdown = Some(tx);
        me.thread = Some(thread);
        Ok(me)
    }

    /// The notification URI of healthy receiver `i`.
    fn healthy_uri(&self, i: usize) -> String {
        receiver_uri(self.healthy[i % self.healthy.len()])
    }

    /// Stops the receivers and waits for their thread.
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn receiver_uri(addr: SocketAddr) -> String {
    format!("http://{addr}{RECEIVER_PATH}")
}

/// Serves every connection of `listener` with keep-alive HTTP/1.1, answering `answer(request)`.
async fn accept_loop<F, Fut>(listener: std::net::TcpListener, answer: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = StatusCode> + Send + 'static,
{
    let Ok(listener) = TcpListener::from_std(listener) else {
        eprintln!("dosi bench: a receiver cannot listen");
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Usually transient (EMFILE): keep accepting.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let answer = answer.clone();
                async move {
                    let status = answer(request).await;
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = server::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Accepts connections and reads what they send, never answering.
async fn black_hole(listener: std::net::TcpListener, counters: Arc<BlackHole>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        eprintln!("dosi bench: the black-holed receiver cannot listen");
        return;
    };
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let counters = counters.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            // Until the notifier gives up on the connection.
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
    }
}

// ---------------------------------------------------------------------------
// Setting up and cleaning up over HTTP.

/// A few keep-alive connections to the server for setup and clean-up.
#[derive(Debug, Clone)]
struct Api {
    addr: SocketAddr,
    host: HeaderValue,
    tenant: Option<HeaderValue>,
    target: Target,
}

/// One setup request: method, path under the base URL, JSON body.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    body: Option<String>,
}

type Sender = client::SendRequest<Full<Bytes>>;

impl Api {
    async fn connect(&self) -> Result<Sender, BenchError> {
        let stream =
            TcpStream::connect(self.addr)
                .await
                .map_err(|source| BenchError::Unreachable {
                    target: self.addr.to_string(),
                    source,
                })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = client::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| BenchError::Setup(format!("HTTP handshake with {}: {e}", self.addr)))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// Sends `call` on `sender`, reconnecting once if the connection was closed.
    async fn send(
        &self,
        sender: &mut Sender,
        call: &Call,
    ) -> Result<(StatusCode, Bytes), BenchError> {
        let mut reconnected = false;
        loop {
            let attempt = async {
                sender.ready().await?;
                let response = sender.send_request(self.request(call)?).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, SetupFailure>((status, body))
            };
            match attempt.await {
                Ok(answer) => return Ok(answer),
                Err(SetupFailure::Http(_)) if !reconnected => {
                    reconnected = true;
                    *sender = self.connect().await?;
                }
                Err(e) => {
                    return Err(BenchError::Setup(format!(
                        "{} {}: {e}",
                        call.method, call.path
                    )))
                }
            }
        }
    }

    fn request(&self, call: &Call) -> Result<Request<Full<Bytes>>, SetupFailure> {
        let path = self.target.path(&call.path);
        let mut request = Request::new(Full::new(
            call.body.clone().map(Bytes::from).unwrap_or_default(),
        ));
        *request.method_mut() = call.method.clone();
        *request.uri_mut() = Uri::try_from(path.as_str())
            .map_err(|e| SetupFailure::Path(format!("{path:?}: {e}")))?;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        if call.body.is_some() {
            headers.insert(CONTENT_TYPE, APPLICATION_JSON.clone());
        }
        if let Some(tenant) = &self.tenant {
            headers.insert(NGSILD_TENANT.clone(), tenant.clone());
        }
        Ok(request)
    }

    /// Sends every call over a few connections; each answer must pass `ok`.
    async fn all(&self, calls: Vec<Call>, ok: fn(StatusCode) -> bool) -> Result<(), BenchError> {
        let queue = Arc::new(Mutex::new(calls));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..SETUP_CONNECTIONS {
            let (api, queue) = (self.clone(), queue.clone());
            set.spawn(async move {
                let mut sender = None;
                loop {
                    let Some(call) = queue.lock().expect("not poisoned").pop() else {
                        return Ok(());
                    };
                    let s = match &mut sender {
                        Some(s) => s,
                        None => sender.insert(api.connect().await?),
                    };
                    let (status, body) = api.send(s, &call).await?;
                    if !ok(status) {
                        return Err(unexpected(&call, status, &body));
                    }
                }
            });
        }
        let mut result = Ok(());
        while let Some(joined) = set.join_next().await {
            let r = joined
                .map_err(|e| BenchError::Worker(e.to_string()))
                .and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// The ids of subscriptions left behind by an earlier run.
    async fn leftovers(&self) -> Result<Vec<String>, BenchError> {
        let mut sender = self.connect().await?;
        let mut seen = HashSet::new();
        let mut ours = Vec::new();
        for page in 0.. {
            let limit = LIST_PAGE.to_string();
            let offset = (page * LIST_PAGE).to_string();
            let call = Call {
                method: Method::GET,
                path: format!(
                    "/ngsi-ld/v1/subscriptions{}",
                    query_string(&[("limit", &limit), ("offset", &offset)])
                ),
                body: None,
            };
            let (status, body) = self.send(&mut sender, &call).await?;
            if !status.is_success() {
                return Err(unexpected(&call, status, &body));
            }
            let list: Vec<serde_json::Value> = serde_json::from_slice(&body).map_err(|e| {
                BenchError::Setup(format!("GET {}: not a JSON array: {e}", call.path))
            })?;
            let mut new = 0;
            for id in list.iter().filter_map(|s| s.get("id")?.as_str()) {
                if seen.insert(id.to_owned()) {
                    new += 1;
                    if id.starts_with(SUBSCRIPTION_PREFIX) {
                        ours.push(id.to_owned());
                    }
                }
            }
            // A server that ignores `offset` repeats the first page: stop there too.
            if list.len() < LIST_PAGE || new == 0 {
                break;
            }
        }
        Ok(ours)
    }
}

/// Why one setup exchange failed.
#[derive(Debug, thiserror::Error)]
enum SetupFailure {
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("invalid path {0}")]
    Path(String),
}

fn unexpected(call: &Call, status: StatusCode, body: &[u8]) -> BenchError {
    let text = String::from_utf8_lossy(body);
    let shown: String = text.chars().take(ERROR_BODY_SHOWN).collect();
    let hint = if call.path.starts_with("/ngsi-ld/v1/subscriptions")
        && matches!(status.as_u16(), 404 | 405)
    {
        " (does the server have the subscription API?)"
    } else {
        ""
    };
    BenchError::Setup(format!(
        "{} {} answered {status}{hint}: {shown}",
        call.method, call.path
    ))
}

fn delete_subscription(id: &str) -> Call {
    Call {
        method: Method::DELETE,
        path: format!("/ngsi-ld/v1/subscriptions/{id}"),
        body: None,
    }
}

/// One subscription of the scenario.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    id: String,
    entity: u64,
    uri: String,
}

/// Healthy subscription `i` watches entity `i` and goes to receiver `i mod R`; with
/// isolation the black hole and the flaky endpoint watch entities `0..K` too.
fn planned(args: &NotifyArgs, r: &Receivers) -> Vec<Planned> {
    let mut out: Vec<Planned> = (0..args.subscriptions)
        .map(|i| Planned {
            id: format!("{SUBSCRIPTION_PREFIX}ok-{i}"),
            entity: i,
            uri: r.healthy_uri(i as usize),
        })
        .collect();
    for (kind, addr) in [("blackhole", r.black_hole_addr), ("flaky", r.flaky_addr)] {
        let Some(addr) = addr else { continue };
        out.extend((0..args.bad_subscriptions).map(|j| Planned {
            id: format!("{SUBSCRIPTION_PREFIX}{kind}-{j}"),
            entity: j,
            uri: receiver_uri(addr),
        }));
    }
    out
}

fn subscription_body(args: &NotifyArgs, p: &Planned) -> String {
    serde_json::json!({
        "id": p.id,
        "type": "Subscription",
        "entities": [{"id": format!("{}{}", args.id_prefix(), p.entity), "type": args.entity_type}],
        "notification": {
            "endpoint": {"uri": p.uri, "accept": "application/json"},
            "sysAttrs": true,
            "attributes": ["level"],
        },
    })
    .to_string()
}

/// Upserts creating (or resetting) the entities with `level` 0.
fn entity_calls(args: &NotifyArgs) -> Vec<Call> {
    let prefix = args.id_prefix();
    (0..args.subscriptions)
        .step_by(SETUP_BATCH as usize)
        .map(|first| {
            let last = (first + SETUP_BATCH).min(args.subscriptions);
            let entities: Vec<serde_json::Value> = (first..last)
                .map(|n| {
                    serde_json::json!({
                        "id": format!("{prefix}{n}"),
                        "type": args.entity_type,
                        "level": {"type": "Property", "value": 0},
                    })
                })
                .collect();
            Call {
                method: Method::POST,
                path: "/ngsi-ld/v1/entityOperations/upsert".into(),
                body: Some(serde_json::Value::Array(entities).to_string()),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The run.

/// Sets up, drives the updates, drains, checks and cleans up.
pub(crate) async fn measure(
    args: &BenchArgs,
    opts: &NotifyArgs,
    common: &Common,
    workload: crate::workload::Workload,
) -> Result<Report, BenchError> {
    let drain = crate::seconds("--drain", opts.drain, true)?;
    let api = Api {
        addr: common.addr,
        host: common.host.clone(),
        tenant: common.tenant.clone(),
        target: common.target.clone(),
    };
    let receivers = Receivers::start(opts.receivers, opts.isolation, opts.id_prefix())?;
    let plan = planned(opts, &receivers);
    // Set once subscriptions may exist on the server, so they are deleted again.
    let mut subscribing = false;
    let result = async {
        // Leftovers would notify receivers that are gone, and fail our creations.
        let leftovers = api.leftovers().await?;
        if !leftovers.is_empty() {
            eprintln!(
                "dosi bench: deleting {} subscriptions left by an earlier run",
                leftovers.len()
            );
        }
        let deletes = leftovers.iter().map(|id| delete_subscription(id)).collect();
        api.all(deletes, gone).await?;
        api.all(entity_calls(opts), batch_ok).await?;
        let creates = plan
            .iter()
            .map(|p| Call {
                method: Method::POST,
                path: "/ngsi-ld/v1/subscriptions".into(),
                body: Some(subscription_body(opts, p)),
            })
            .collect();
        subscribing = true;
        api.all(creates, |s| s.is_success()).await?;
        run(args, opts, common, workload, &receivers, drain).await
    }
    .await;
    let cleaned = if subscribing {
        let deletes = plan.iter().map(|p| delete_subscription(&p.id)).collect();
        api.all(deletes, gone).await
    } else {
        Ok(())
    };
    receivers.stop().await;
    let report = result?;
    cleaned.map_err(|e| BenchError::Setup(format!("deleting the subscriptions: {e}")))?;
    Ok(report)
}

fn gone(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::NOT_FOUND
}

fn batch_ok(status: StatusCode) -> bool {
    status.is_success() && status != StatusCode::MULTI_STATUS
}

async fn run(
    args: &BenchArgs,
    opts: &NotifyArgs,
    common: &Common,
    workload: crate::workload::Workload,
    receivers: &Receivers,
    drain: Duration,
) -> Result<Report, BenchError> {
    let (mut report, plan) = crate::drive(args, common, workload).await?;
    let updates = plan
        .workload
        .updates()
        .ok_or_else(|| BenchError::Worker("the notify workload is missing".into()))?;
    let ledger = updates.ledger();
    let drained_from = Instant::now();
    let deadline = drained_from + drain;
    while !receivers
        .tally
        .lock()
        .expect("not poisoned")
        .complete(&ledger)
        && Instant::now() < deadline
    {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let drain_s = drained_from.elapsed().as_secs_f64();
    let a = {
        let tally = receivers.tally.lock().expect("not poisoned");
        account(
            &tally,
            &ledger,
            wall_of(plan.measure_from),
            wall_of(plan.stop_at),
        )
    };
    let [p50_us, p90_us, p99_us, p999_us, max_us] = crate::percentiles(&a.latency_us);
    report.notify = Some(NotifyReport {
        subscriptions: opts.subscriptions,
        receivers: opts.receivers,
        rate: opts.rate,
        updates_acked: ledger.acked_updates(),
        notifications: a.received,
        notifications_in_window: a.in_window,
        notifications_per_s: a.in_window as f64 / report.duration_s,
        missing: a.missing,
        duplicates: a.duplicates,
        unacknowledged: a.unacknowledged,
        stray: a.stray,
        drain_s,
        p50_us,
        p90_us,
        p99_us,
        p999_us,
        max_us,
        isolation: opts.isolation.then(|| IsolationReport {
            bad_subscriptions: opts.bad_subscriptions,
            black_hole_connections: receivers.black_hole.connections.load(Ordering::Relaxed),
            black_hole_bytes: receivers.black_hole.bytes.load(Ordering::Relaxed),
            flaky_requests: receivers.flaky.requests.load(Ordering::Relaxed),
            flaky_failed: receivers.flaky.failed.load(Ordering::Relaxed),
        }),
    });
    Ok(report)
}

/// What `notify` adds to the report; latency and counts are the healthy receivers'.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotifyReport {
    /// Subscriptions to the healthy receivers.
    pub subscriptions: u64,
    /// Healthy receivers.
    pub receivers: usize,
    /// `--rate` (updates/s), if the updates were paced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Updates acknowledged over the whole run (warm-up and tail included).
    pub updates_acked: u64,
    /// Notifications of this run's updates received in all.
    pub notifications: u64,
    /// Of those, received inside the measured window.
    pub notifications_in_window: u64,
    /// Notifications received per second of the measured window.
    pub notifications_per_s: f64,
    /// Acknowledged updates never notified (after the drain).
    pub missing: u64,
    /// Notifications beyond the first of an update.
    pub duplicates: u64,
    /// Updates notified whose request was not acknowledged.
    pub unacknowledged: u64,
    /// Notifications that are not of this run's updates or cannot be read.
    pub stray: u64,
    /// Seconds waited after the run until every acknowledged update was notified (or gave up).
    pub drain_s: f64,
    /// Median `modifiedAt`-to-receipt latency in microseconds (updates inside the window).
    pub p50_us: u64,
    /// 90th percentile in microseconds.
    pub p90_us: u64,
    /// 99th percentile in microseconds.
    pub p99_us: u64,
    /// 99.9th percentile in microseconds.
    pub p999_us: u64,
    /// Highest in microseconds.
    pub max_us: u64,
    /// The misbehaving endpoints, with `--isolation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<IsolationReport>,
}

/// What the misbehaving endpoints of `--isolation` saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IsolationReport {
    /// Subscriptions of each misbehaving endpoint.
    pub bad_subscriptions: u64,
    /// Connections the black hole accepted.
    pub black_hole_connections: u64,
    /// Bytes it read (and never answered).
    pub black_hole_bytes: u64,
    /// Requests to the flaky endpoint.
    pub flaky_requests: u64,
    /// Of those, answered 500.
    pub flaky_failed: u64,
}

impl fmt::Display for NotifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self
            .rate
            .map_or_else(|| "flat out".to_owned(), |r| format!("{r} updates/s"));
        writeln!(
            f,
            "notify       {} subscriptions, {} receiver(s), updates {rate}",
            self.subscriptions, self.receivers
        )?;
        writeln!(
            f,
            "notified     {} in window ({:.1}/s), {} in all",
            self.notifications_in_window, self.notifications_per_s, self.notifications
        )?;
        writeln!(
            f,
            "accounting   {} updates acked; missing {}, duplicates {}, unacked but notified {}, stray {} (drain {:.2} s)",
            self.updates_acked, self.missing, self.duplicates, self.unacknowledged, self.stray, self.drain_s
        )?;
        writeln!(
            f,
            "delivery     p50 {}   p90 {}   p99 {}   p99.9 {}   max {}   (modifiedAt to receipt)",
            crate::ms(self.p50_us),
            crate::ms(self.p90_us),
            crate::ms(self.p99_us),
            crate::ms(self.p999_us),
            crate::ms(self.max_us)
        )?;
        if let Some(i) = &self.isolation {
            writeln!(
                f,
                "isolation    {} subscriptions each; black hole: {} connections, {} bytes unanswered; flaky: {} requests, {} answered 500",
                i.bad_subscriptions, i.black_hole_connections, i.black_hole_bytes, i.flaky_requests, i.flaky_failed
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `parse_rfc3339_us(s)` is `expected` (µs since the epoch).
    fn check(s: &str, expected: Option<i64>) {
        assert_eq!(parse_rfc3339_us(s), expected, "{s}");
    }

    #[test]
    fn rfc3339() {
        check("1970-01-01T00:00:00Z", Some(0));
        check("1970-01-01T00:00:00.000001Z", Some(1));
        check("1969-12-31T23:59:59.999999Z", Some(-1));
        check("2026-11-22T15:04:05.123456Z", Some(1_795_359_845_123_456));
        check("2026-11-22T15:04:05.123Z", Some(1_795_359_845_123_000));
        check("2026-11-22T15:04:05Z", Some(1_795_359_845_000_000));
        check("2026-11-22t15:04:05.1z", Some(1_795_359_845_100_000));
        check("2026-11-22 15:04:05.5Z", Some(1_795_359_845_500_000));
        // Beyond microseconds: truncated.
        check("2026-11-22T15:04:05.1234569Z", Some(1_795_359_845_123_456));
        check(
            "2026-11-22T22:04:05.123456+07:00",
            Some(1_795_359_845_123_456),
        );
        check(
            "2026-11-22T14:34:05.123456-00:30",
            Some(1_795_359_845_123_456),
        );
        check("2024-02-29T00:00:00Z", Some(1_709_164_800_000_000));
        check("2000-03-01T00:00:00Z", Some(951_868_800_000_000));
        check("2023-02-29T00:00:00Z", None);
        check("1900-02-29T00:00:00Z", None);
        check("2026-13-01T00:00:00Z", None);
        check("2026-04-31T00:00:00Z", None);
        check("2026-11-22T24:00:00Z", None);
        check("2026-11-22T15:60:00Z", None);
        check("2026-11-22T15:04:05.Z", None);
        check("2026-11-22T15:04:05", None);
        check("2026-11-22T15:04:05+0700", None);
        check("2026-11-22T15:04:05+24:00", None);
        check("2026-11-22T15:04:05Zjunk", None);
        check("2026-11-22", None);
        check("", None);
        check("yesterday, about noon", None);
        check("2026-11-22T15:04:0x.1Z", None);
        check("+026-11-22T15:04:05Z", None);
    }

    proptest! {
        #[test]
        fn rfc3339_agrees_with_chrono(us in -62_135_596_800_000_000i64..253_402_300_799_999_999i64, micros in any::<bool>(), offset_min in -1439i32..1440) {
            let t = chrono::DateTime::from_timestamp_micros(us).expect("in range");
            let offset = chrono::FixedOffset::east_opt(offset_min * 60).expect("valid offset");
            let local = t.with_timezone(&offset);
            let format = if micros { chrono::SecondsFormat::Micros } else { chrono::SecondsFormat::Millis };
            let text = local.to_rfc3339_opts(format, true);
            let expected = if micros { us } else { us.div_euclid(1000) * 1000 };
            // Years before 0001 or after 9999 after the offset are not four digits.
            if (1..=9999).contains(&chrono::Datelike::year(&local)) {
                prop_assert_eq!(parse_rfc3339_us(&text), Some(expected), "{}", text);
            }
        }

        #[test]
        fn rfc3339_never_panics(s in ".*") {
            let _ = parse_rfc3339_us(&s);
        }
    }

    fn ledger(batch: u64, entities: u64, issued: u64, acked: &[u64]) -> Ledger {
        Ledger {
            batch,
            entities,
            issued,
            acked: acked.iter().copied().collect(),
        }
    }

    /// A notification body for `(entity id, level value, modifiedAt)`.
    fn body(items: &[(&str, u64, &str)]) -> Vec<u8> {
        let data: Vec<serde_json::Value> = items
            .iter()
            .map(|(id, v, at)| {
                serde_json::json!({
                    "id": id, "type": "NotifySensor",
                    "createdAt": "2026-01-01T00:00:00Z", "modifiedAt": at,
                    "level": {"type": "Property", "value": v, "createdAt": "2026-01-01T00:00:00Z", "modifiedAt": at},
                })
            })
            .collect();
        serde_json::json!({
            "id": "urn:ngsi-ld:Notification:1", "type": "Notification",
            "subscriptionId": "urn:s", "notifiedAt": "2026-01-01T00:00:00Z",
            "data": data,
        })
        .to_string()
        .into_bytes()
    }

    const P: &str = "urn:ngsi-ld:NotifySensor:";
    const T0: &str = "1970-01-01T00:00:01Z"; // 1_000_000 µs

    #[test]
    fn receiver_parses_notifications() {
        let mut t = Tally::default();
        t.record(&body(&[(&format!("{P}3"), 4, T0)]), 1_000_250, P);
        assert_eq!(
            t.samples,
            [Sample {
                value: 4,
                entity: Some(3),
                modified_us: 1_000_000,
                received_us: 1_000_250
            }]
        );
        // Two entities in one notification; an id of another type.
        t.record(
            &body(&[(&format!("{P}0"), 1, T0), ("urn:ngsi-ld:Other:0", 1, T0)]),
            1_000_300,
            P,
        );
        assert_eq!(t.samples.len(), 3);
        assert_eq!(t.samples[2].entity, None);
        assert_eq!(t.counts.get(&1), Some(&2));
        for bad in [
            &b"not json"[..],
            br#"{"data":[]}"#,
            br#"{"data":[{"id":"x"}]}"#,
            br#"{"data":[{"id":"x","level":{"value":1}}]}"#,
            br#"{"data":[{"id":"x","level":{"value":1,"modifiedAt":"soon"}}]}"#,
            br#"{"data":[{"id":"x","level":{"value":-1,"modifiedAt":"1970-01-01T00:00:00Z"}}]}"#,
        ] {
            let before = t.malformed;
            t.record(bad, 0, P);
            assert_eq!(t.malformed, before + 1, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(t.samples.len(), 3);
    }

    /// Records `(value, entity, modified, received)` samples.
    fn tally(samples: &[(u64, u64, i64, i64)]) -> Tally {
        let mut t = Tally::default();
        for &(value, entity, modified_us, received_us) in samples {
            *t.counts.entry(value).or_insert(0) += 1;
            t.samples.push(Sample {
                value,
                entity: Some(entity),
                modified_us,
                received_us,
            });
        }
        t
    }

    #[test]
    fn accounting_finds_missing_duplicates_and_strays() {
        // batch 2, 3 entities: request r sets values 2r+1, 2r+2 on entities (v-1) mod 3.
        // Requests 0..4 issued; 0, 1 and 3 acknowledged: values 1-4 and 7-8.
        let l = ledger(2, 3, 4, &[0, 1, 3]);
        let t = tally(&[
            (1, 0, 100, 150),  // before the window
            (2, 1, 200, 1200), // updated before, received inside
            (3, 2, 1000, 1100),
            (3, 2, 1000, 1900), // duplicate
            (5, 1, 1500, 1600), // request 2 not acknowledged
            (7, 0, 1800, 2500), // received after the window
            (8, 0, 1800, 1900), // value 8 is entity 1: stray
            (9, 2, 1900, 1950), // never issued: stray
            (0, 0, 10, 20),     // the starting value: stray
        ]);
        let a = account(&t, &l, 1000, 2000);
        assert_eq!(
            (
                a.received,
                a.in_window,
                a.missing,
                a.duplicates,
                a.unacknowledged,
                a.stray
            ),
            (6, 4, 2, 1, 1, 3)
        );
        // Latency of updates made inside the window: 100, 900, 100, 700.
        assert_eq!(a.latency_us.len(), 4);
        assert_eq!(a.latency_us.max(), 900);
        assert_eq!(a.latency_us.min(), 100);
        assert!(!t.complete(&l), "values 4 and 8 are missing");
    }

    #[test]
    fn complete_once_every_acknowledged_update_arrived() {
        let l = ledger(2, 5, 3, &[0, 2]);
        let mut t = tally(&[(1, 0, 0, 1), (2, 1, 0, 1), (5, 4, 0, 1)]);
        assert!(!t.complete(&l));
        t.counts.insert(6, 1);
        assert!(t.complete(&l));
        let a = account(&tally(&[]), &ledger(2, 5, 0, &[]), 0, 1);
        assert_eq!((a.received, a.missing, a.stray), (0, 0, 0));
        assert!(tally(&[]).complete(&ledger(2, 5, 0, &[])));
    }

    fn args(line: &str) -> NotifyArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            n: NotifyArgs,
        }
        <Cli as clap::Parser>::try_parse_from(
            std::iter::once("notify").chain(line.split_whitespace()),
        )
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .n
    }

    fn target() -> Target {
        Target::parse("http://127.0.0.1:1026/pre", false).expect("valid")
    }

    #[test]
    fn updates_number_values_and_cycle_over_entities() {
        let u = Updates::new(&args("--subscriptions 5 --batch 3"), &target()).expect("valid");
        assert_eq!(
            u.uri,
            "/pre/ngsi-ld/v1/entityOperations/upsert?options=update"
        );
        let pairs = |req: &Req| -> Vec<(String, u64)> {
            let v: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON");
            v.as_array()
                .expect("array")
                .iter()
                .map(|e| {
                    assert_eq!(e["type"], "NotifySensor");
                    assert_eq!(e["level"]["type"], "Property");
                    (
                        e["id"].as_str().unwrap_or("").replace(P, ""),
                        e["level"]["value"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        };
        let r0 = u.next();
        let r1 = u.next();
        assert_eq!((r0.tag, r1.tag, r0.items), (0, 1, 3));
        let expect = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(e, n)| (e.to_string(), *n)).collect()
        };
        assert_eq!(pairs(&r0), expect(&[("0", 1), ("1", 2), ("2", 3)]));
        assert_eq!(pairs(&r1), expect(&[("3", 4), ("4", 5), ("0", 6)]));
        u.acknowledged(1);
        let l = u.ledger();
        assert_eq!((l.issued, l.acked_updates()), (2, 3));
        assert_eq!(l.acked_values().collect::<Vec<_>>(), [4, 5, 6]);
        assert!(l.is_ours(6, Some(0)) && !l.is_ours(6, Some(1)) && !l.is_ours(7, Some(1)));
        assert!(u.slot().is_none(), "unpaced");
    }

    #[test]
    fn paced_slots_follow_the_rate() {
        let u = Updates::new(
            &args("--subscriptions 10 --batch 10 --rate 1000"),
            &target(),
        )
        .expect("valid");
        let first = u.slot().expect("paced");
        let third = u.slot().and_then(|_| u.slot()).expect("paced");
        assert_eq!(third - first, Duration::from_millis(20));
    }

    /// `line` is refused, naming `fragment`.
    fn check_invalid(line: &str, fragment: &str) {
        let err = Updates::new(&args(line), &target()).expect_err(line);
        assert!(err.to_string().contains(fragment), "{line}: {err}");
    }

    #[test]
    fn invalid_options() {
        check_invalid("--subscriptions 0", "--subscriptions");
        check_invalid("--subscriptions 10 --batch 11", "--batch");
        check_invalid("--batch 0", "--batch");
        check_invalid("--rate 0", "--rate");
        check_invalid("--rate=-5", "--rate");
        check_invalid("--receivers 0", "--receivers");
        check_invalid("--drain=-1", "--drain");
        check_invalid(
            "--isolation --subscriptions 5 --batch 5 --bad-subscriptions 6",
            "--bad-subscriptions",
        );
        check_invalid("--type a/b", "--type");
        assert!(Updates::new(&args("--bad-subscriptions 0"), &target()).is_ok());
    }

    #[test]
    fn subscriptions_spread_over_receivers_and_isolation_adds_bad_ones() {
        let r = Receivers::start(2, true, P.into()).expect("receivers");
        let a = args("--subscriptions 4 --receivers 2 --isolation --bad-subscriptions 2");
        let plan = planned(&a, &r);
        let ids: Vec<&str> = plan
            .iter()
            .map(|p| p.id.trim_start_matches(SUBSCRIPTION_PREFIX))
            .collect();
        assert_eq!(
            ids,
            [
                "ok-0",
                "ok-1",
                "ok-2",
                "ok-3",
                "blackhole-0",
                "blackhole-1",
                "flaky-0",
                "flaky-1"
            ]
        );
        assert_eq!(plan[0].uri, plan[2].uri);
        assert_ne!(plan[0].uri, plan[1].uri);
        assert_eq!(plan[5].entity, 1);
        let hole = r.black_hole_addr.expect("isolation");
        assert_eq!(plan[4].uri, format!("http://{hole}/notify"));
        let doc: serde_json::Value =
            serde_json::from_str(&subscription_body(&a, &plan[1])).expect("JSON");
        assert_eq!(doc["entities"][0]["id"], format!("{P}1"));
        assert_eq!(doc["notification"]["sysAttrs"], true);
        assert_eq!(
            doc["notification"]["attributes"],
            serde_json::json!(["level"])
        );
        assert_eq!(doc["notification"]["endpoint"]["uri"], plan[1].uri);
        drop(r);
    }
}
