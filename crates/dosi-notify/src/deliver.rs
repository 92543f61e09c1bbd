//! Delivery: one queue per endpoint key (scheme, host, port), transports,
//! retries with exponential back-off and jitter, a circuit breaker per
//! endpoint, and dead letters.
//!
//! Isolation: every endpoint key has its own task, its own bounded queue and
//! at most `endpoint_concurrency` attempts in flight, so a slow, failing or
//! black-holed endpoint only ever occupies its own slots. Order: the
//! notifications of one subscription are sent one after the other, in
//! outbox order (a retry holds back the later ones of the same
//! subscription); different subscriptions proceed in parallel.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use dosi_ngsi::Timestamp;
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::mpsc;

use crate::engine::NotifierConfig;
use crate::outbox::{DeadLetter, Outbox, Pending};

/// One notification ready to send, self-contained (it survives restarts and
/// the deletion of its subscription).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The notification's stable id (`urn:ngsi-ld:Notification:…`); the same
    /// on every attempt, so receivers can de-duplicate.
    pub notification_id: String,
    /// The subscription it belongs to.
    pub subscription_id: String,
    /// The tenant of the subscription.
    pub tenant: String,
    /// The endpoint URI (`http`, `https`, `mqtt`, `mqtts`).
    pub uri: String,
    /// Headers to send: `Content-Type`, `Link`, `NGSILD-Tenant`, receiverInfo.
    /// For MQTT they become the message's `metadata`.
    pub headers: Vec<(String, String)>,
    /// `notifierInfo` of the endpoint (e.g. `MQTT-Version`, `MQTT-QoS`).
    pub notifier_info: Vec<(String, String)>,
    /// The notification JSON.
    pub body: Bytes,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
}

impl Outgoing {
    /// A `notifierInfo` value by key.
    pub fn notifier(&self, key: &str) -> Option<&str> {
        self.notifier_info
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: connection refused/reset, timeout, 5xx, 429, 408.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (e.g. 4xx other than 408/429, bad URI): the
    /// notification goes to the dead letters at once.
    #[error("{0}")]
    Permanent(String),
}

/// Sends one notification over one protocol.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `n` once; `Ok` when the receiver accepted it (HTTP 2xx, MQTT
    /// PUBACK for QoS 1, handed to the socket for QoS 0).
    async fn send(&self, n: &Outgoing) -> Result<(), SendError>;
}

/// What happened to one attempt or notification; the notifier keeps the
/// subscription statistics from these.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Delivered after `latency` since it was enqueued.
    Sent {
        /// Enqueue to acknowledgement.
        latency: Duration,
    },
    /// One attempt failed (it may be retried).
    Failed {
        /// The error.
        reason: String,
    },
    /// It became a dead letter.
    Dead {
        /// The last error.
        reason: String,
    },
}

/// Told about deliveries; answers whether a subscription still exists.
pub trait Observer: Send + Sync {
    /// False once the subscription was deleted: its notifications are dropped.
    fn alive(&self, tenant: &str, subscription: &str) -> bool;
    /// An outcome for a notification of `subscription`.
    fn outcome(&self, tenant: &str, subscription: &str, outcome: &Outcome);
}

/// HTTP(S) notifications: `POST` of the body with its headers.
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A transport with its own connection pool.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            // Header names as they are written in the spec (`Link`,
            // `NGSILD-Tenant`); some receivers compare them case-sensitively.
            .http1_title_case_headers()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self { client }
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, n: &Outgoing) -> Result<(), SendError> {
        let mut req = self
            .client
            .post(&n.uri)
            .timeout(n.timeout())
            .body(n.body.clone());
        for (k, v) in &n.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send().await {
            Ok(resp) => {
                let s = resp.status();
                if s.is_success() {
                    Ok(())
                } else if s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429 {
                    Err(SendError::Transient(format!("HTTP {s}")))
                } else {
                    Err(SendError::Permanent(format!("HTTP {s}")))
                }
            }
            Err(e) if e.is_builder() => Err(SendError::Permanent(format!("bad request: {e}"))),
            Err(e) if e.is_timeout() => Err(SendError::Transient(format!(
                "no answer within {} ms",
                n.timeout_ms
            ))),
            Err(e) => Err(SendError::Transient(format!("{e}"))),
        }
    }
}

/// Routes notifications to their endpoint queues.
pub struct Dispatcher {
    queues: Mutex<HashMap<String, Arc<EndpointQueue>>>,
    transports: HashMap<&'static str, Arc<dyn Transport>>,
    outbox: Arc<Outbox>,
    observer: Arc<dyn Observer>,
    config: NotifierConfig,
    dead: Mutex<std::collections::BTreeMap<u64, DeadLetter>>,
    /// Set at shutdown: no further attempts; what is pending stays in the outbox.
    closed: std::sync::atomic::AtomicBool,
}

struct EndpointQueue {
    tx: mpsc::UnboundedSender<Pending>,
    queued: AtomicUsize,
}

impl Dispatcher {
    /// A dispatcher sending through `transports` (by URI scheme).
    pub fn new(
        transports: HashMap<&'static str, Arc<dyn Transport>>,
        outbox: Arc<Outbox>,
        observer: Arc<dyn Observer>,
        config: NotifierConfig,
        dead: Vec<DeadLetter>,
    ) -> Arc<Self> {
        Arc::new(Self {
            queues: Mutex::new(HashMap::new()),
            transports,
            outbox,
            observer,
            config,
            dead: Mutex::new(dead.into_iter().map(|d| (d.nid, d)).collect()),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Stops delivering (shutdown): attempts in progress finish, no new ones
    /// start; undelivered notifications stay pending in the outbox.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Queues durable notifications for delivery.
    pub fn enqueue(self: &Arc<Self>, items: Vec<Pending>) {
        for p in items {
            let key = endpoint_key(&p.outgoing.uri);
            let q = self.queue(&key);
            if q.queued.load(Ordering::Relaxed) >= self.config.endpoint_queue_limit {
                self.bury(p, 0, format!("the queue of endpoint {key} is full"));
                continue;
            }
            let n = q.queued.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::gauge!("dosi_notifications_queued", "endpoint" => key.clone()).set(n as f64);
            if q.tx.send(p).is_err() {
                tracing::error!(endpoint = %key, "endpoint queue closed");
            }
        }
    }

    fn queue(self: &Arc<Self>, key: &str) -> Arc<EndpointQueue> {
        let mut qs = self.queues.lock();
        if let Some(q) = qs.get(key) {
            return q.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let q = Arc::new(EndpointQueue {
            tx,
            queued: AtomicUsize::new(0),
        });
        qs.insert(key.to_string(), q.clone());
        let me = self.clone();
        let key = key.to_string();
        let q2 = q.clone();
        tokio::spawn(async move { me.run_endpoint(key, q2, rx).await });
        q
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().values().cloned().collect()
    }

    /// Sends dead letter `nid` again (its attempts start over).
    pub async fn retry_dead(self: &Arc<Self>, nid: u64) -> Option<()> {
        let d = self.dead.lock().get(&nid).cloned()?;
        self.outbox.revive(nid).await.ok()?;
        self.dead.lock().remove(&nid);
        metrics::gauge!("dosi_notifications_dead_letters").decrement(1.0);
        self.enqueue(vec![Pending {
            nid,
            outgoing: d.outgoing,
            since: Instant::now(),
        }]);
        Some(())
    }

    /// Drops dead letter `nid` for good.
    pub fn discard_dead(&self, nid: u64) -> Option<DeadLetter> {
        let d = self.dead.lock().remove(&nid)?;
        self.outbox.done(nid);
        metrics::gauge!("dosi_notifications_dead_letters").decrement(1.0);
        Some(d)
    }

    fn bury(&self, p: Pending, attempts: u32, reason: String) {
        let o = &p.outgoing;
        tracing::warn!(subscription = %o.subscription_id, notification = %o.notification_id, attempts, reason = %reason, "notification moved to the dead letters");
        self.observer.outcome(
            &o.tenant,
            &o.subscription_id,
            &Outcome::Dead {
                reason: reason.clone(),
            },
        );
        metrics::counter!("dosi_notifications_dead_lettered_total", "subscription" => o.subscription_id.clone()).increment(1);
        metrics::gauge!("dosi_notifications_dead_letters").increment(1.0);
        let d = DeadLetter {
            nid: p.nid,
            outgoing: p.outgoing,
            attempts,
            at: Timestamp::now(),
            reason,
        };
        self.outbox.dead(&d);
        self.dead.lock().insert(d.nid, d);
    }

    async fn run_endpoint(
        self: Arc<Self>,
        key: String,
        q: Arc<EndpointQueue>,
        mut rx: mpsc::UnboundedReceiver<Pending>,
    ) {
        let breaker = Arc::new(Breaker::new(&self.config));
        // Per subscription: its waiting notifications, and whether one is in flight.
        let mut lanes: HashMap<String, VecDeque<Pending>> = HashMap::new();
        let mut busy: std::collections::HashSet<String> = Default::default();
        let mut ready: VecDeque<String> = VecDeque::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let limit = self.config.endpoint_concurrency.max(1);
        loop {
            // Start as many lanes as the concurrency allows.
            while busy.len() < limit {
                let Some(lane) = ready.pop_front() else { break };
                let Some(p) = lanes.get_mut(&lane).and_then(VecDeque::pop_front) else {
                    continue;
                };
                busy.insert(lane.clone());
                let me = self.clone();
                let done = done_tx.clone();
                let br = breaker.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    me.deliver(&key, p, &br).await;
                    let _ = done.send(lane);
                });
            }
            tokio::select! {
                p = rx.recv() => {
                    let Some(p) = p else { break };
                    let lane = lane_of(&p);
                    let l = lanes.entry(lane.clone()).or_default();
                    l.push_back(p);
                    if l.len() == 1 && !busy.contains(&lane) {
                        ready.push_back(lane);
                    }
                }
                Some(lane) = done_rx.recv() => {
                    let n = q.queued.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
                    metrics::gauge!("dosi_notifications_queued", "endpoint" => key.clone()).set(n as f64);
                    busy.remove(&lane);
                    match lanes.get(&lane) {
                        Some(l) if !l.is_empty() => ready.push_back(lane),
                        _ => { lanes.remove(&lane); }
                    }
                }
            }
        }
    }

    /// Delivers one notification: attempts with back-off until it is sent,
    /// dead, or its subscription is gone.
    async fn deliver(&self, key: &str, p: Pending, breaker: &Breaker) {
        let o = p.outgoing.clone();
        let scheme = o.uri.split(':').next().unwrap_or("").to_ascii_lowercase();
        let Some(transport) = self.transports.get(scheme.as_str()).cloned() else {
            return self.bury(p, 0, format!("no transport for scheme '{scheme}'"));
        };
        let mut attempts = 0u32;
        loop {
            if self.closed.load(Ordering::Relaxed) {
                return;
            }
            if !self.observer.alive(&o.tenant, &o.subscription_id) {
                self.outbox.done(p.nid);
                return;
            }
            if let Some(wait) = breaker.wait() {
                tokio::time::sleep(wait).await;
                continue;
            }
            attempts += 1;
            let r = match tokio::time::timeout(o.timeout(), transport.send(&o)).await {
                Ok(r) => r,
                Err(_) => Err(SendError::Transient(format!(
                    "no answer within {} ms",
                    o.timeout_ms
                ))),
            };
            match r {
                Ok(()) => {
                    breaker.success();
                    self.outbox.done(p.nid);
                    let latency = p.since.elapsed();
                    metrics::counter!("dosi_notifications_sent_total", "subscription" => o.subscription_id.clone()).increment(1);
                    metrics::histogram!("dosi_notification_delivery_seconds")
                        .record(latency.as_secs_f64());
                    self.observer.outcome(
                        &o.tenant,
                        &o.subscription_id,
                        &Outcome::Sent { latency },
                    );
                    return;
                }
                Err(e) => {
                    breaker.failure();
                    let reason = format!("{key}: {e}");
                    metrics::counter!("dosi_notifications_failed_total", "subscription" => o.subscription_id.clone()).increment(1);
                    self.observer.outcome(
                        &o.tenant,
                        &o.subscription_id,
                        &Outcome::Failed {
                            reason: reason.clone(),
                        },
                    );
                    let permanent = matches!(e, SendError::Permanent(_));
                    if permanent || attempts >= self.config.max_attempts.max(1) {
                        return self.bury(p, attempts, reason);
                    }
                    metrics::counter!("dosi_notifications_retried_total", "subscription" => o.subscription_id.clone()).increment(1);
                    tokio::time::sleep(backoff(&self.config, attempts)).await;
                }
            }
        }
    }
}

fn lane_of(p: &Pending) -> String {
    format!("{}\u{1}{}", p.outgoing.tenant, p.outgoing.subscription_id)
}

/// The queue a URI belongs to: scheme, host and port.
pub fn endpoint_key(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => uri.to_string(),
    }
}

/// The delay before attempt `attempts + 1`: `base * 2^(attempts-1)`, capped,
/// with "equal jitter" (half fixed, half random) so that retries of many
/// notifications do not arrive in lockstep.
pub fn backoff(cfg: &NotifierConfig, attempts: u32) -> Duration {
    let exp = cfg
        .retry_base_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
        .min(cfg.retry_max_ms)
        .max(1);
    let half = exp / 2;
    let jitter = rand::rng().random_range(0..=exp - half);
    Duration::from_millis(half + jitter)
}

/// Per-endpoint circuit breaker: after `breaker_failures` consecutive
/// failures it opens for `breaker_cooldown_ms` (doubling while probes keep
/// failing, up to `retry_max_ms`); then one probe at a time is let through
/// until one succeeds.
struct Breaker {
    threshold: u32,
    base: Duration,
    max: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
    probing: bool,
}

impl Breaker {
    fn new(cfg: &NotifierConfig) -> Self {
        Self {
            threshold: cfg.breaker_failures.max(1),
            base: Duration::from_millis(cfg.breaker_cooldown_ms.max(1)),
            max: Duration::from_millis(cfg.retry_max_ms.max(cfg.breaker_cooldown_ms).max(1)),
            state: Mutex::new(BreakerState::default()),
        }
    }
    /// `None` = go ahead; `Some(d)` = the breaker is open, look again after `d`.
    fn wait(&self) -> Option<Duration> {
        let mut s = self.state.lock();
        let until = s.open_until?;
        let now = Instant::now();
        if now < until {
            return Some(until - now);
        }
        if s.probing {
            return Some(Duration::from_millis(50).min(s.cooldown));
        }
        s.probing = true;
        None
    }
    fn success(&self) {
        let mut s = self.state.lock();
        *s = BreakerState::default();
    }
    fn failure(&self) {
        let mut s = self.state.lock();
        s.failures += 1;
        let was_probe = s.probing;
        s.probing = false;
        if was_probe || s.failures >= self.threshold {
            s.cooldown = if was_probe {
                (s.cooldown * 2).min(self.max)
            } else {
                self.base
            };
            s.open_until = Some(Instant::now() + s.cooldown);
        }
    }
}
