//! `mqtt`: the IoT gateway under device load over MQTT.
//!
//! What is simulated: `--devices` devices publishing FIWARE IoT Agent
//! UltraLight measures (`/{apikey}/d{i}/attrs`, `--measures` values each).
//! The broker has no per-device ACL yet, so a few connections
//! (`--connections`; 4 in docs/benchmarks.md) publish for all devices' topics in turn
//! instead of one connection per device: the broker and the gateway see the
//! same topics and payloads, not the same number of sockets. The MQTT client
//! is a minimal one written here (CONNECT, PUBLISH at QoS 0/1 with a window
//! of unacknowledged packets, PUBACK, PINGREQ, SUBSCRIBE), so the generator
//! costs little CPU on the machine it shares with the server.
//!
//! - `--target dosi` (default): devices are provisioned through the HTTP API
//!   ([`provision`]: a service group with autoprovision; each device's first
//!   message creates it, and one message per device is sent and awaited
//!   before the measured run). Ingested messages are read from the server's
//!   `dosi_iot_messages_total{transport="mqtt"}`. Meanwhile one more
//!   connection publishes a unique value for a sample device, waits for the
//!   broker's PUBACK and polls `GET /ngsi-ld/v1/entities/{id}` until the
//!   value shows: the accepted → visible latency.
//! - `--target mosquitto`: the same publish load against another broker
//!   (`--broker`, e.g. the machine's Mosquitto), relayed to one subscriber
//!   in this process that counts what arrives: the ceiling to compare with.
//! - `--idle`: opens `--devices` connections that only CONNECT and PINGREQ,
//!   spread over source addresses 127.0.0.2, 127.0.0.3, … (one address has
//!   about 28,000 ephemeral ports), and holds them for the duration, so the
//!   server's memory per idle device can be read (`ps -o rss`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1 as client;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use dosi_fleet::wire::{connect_packet, put_publish, read_packet, subscribe_packet, PINGREQ};

use crate::target::Target;
use crate::{BenchArgs, BenchError, Report};

/// Unacknowledged QoS 1 publishes per connection.
const WINDOW: usize = 256;
/// Publishes written with one system call at most.
const BURST: usize = 64;
/// Keep-alive of every connection, in seconds.
const KEEP_ALIVE_S: u16 = 60;
/// Connections from one source address in `--idle` mode.
const PER_SOURCE: usize = 20_000;
/// Connects under way at once in `--idle` mode.
const CONNECTING: usize = 256;
/// How long a sample may take to become visible before it counts as lost.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two latency samples.
const SAMPLE_GAP: Duration = Duration::from_millis(50);
/// How often a sample's entity is read while waiting for it.
const SAMPLE_POLL: Duration = Duration::from_millis(2);
/// Sample devices (`lat0`, `lat1`, …).
const SAMPLE_DEVICES: usize = 8;
/// The longest wait for what is still under way after the run.
const DRAIN: Duration = Duration::from_secs(30);

/// Options of `dosi bench mqtt`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct MqttArgs {
    /// The MQTT broker: dosi's embedded one (`dosi serve --mqtt`), or another.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub broker: String,
    /// `dosi` (provision, count ingested messages, latency) or `mosquitto`
    /// (any other broker: one subscriber here counts what it relays).
    #[arg(long, default_value = "dosi")]
    pub target: String,
    /// Simulated devices.
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Messages per second over all connections; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// QoS of the measures (0 or 1).
    #[arg(long, default_value_t = 1)]
    pub qos: u8,
    /// Measures per message.
    #[arg(long, default_value_t = 3)]
    pub measures: usize,
    /// Measured seconds (overrides --duration).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// The service group's API key (the first topic level).
    #[arg(long, default_value = "dosibench")]
    pub apikey: String,
    /// Device password, once the broker checks device credentials (sent as
    /// the MQTT password with the device id as user name).
    #[arg(long)]
    pub password: Option<String>,
    /// Open --devices idle connections and hold them (memory per device).
    #[arg(long)]
    pub idle: bool,
}

/// What a `mqtt` run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MqttReport {
    /// What was simulated and how.
    pub simulated: String,
    /// PUBLISH packets written.
    pub sent: u64,
    /// PUBACKs received (QoS 1).
    pub acked: u64,
    /// Connection failures and protocol errors.
    pub errors: u64,
    /// Messages sent per second in the measured window.
    pub sent_per_s: f64,
    /// Messages the server ingested (dosi) or relayed to the subscriber
    /// (another broker), counted until they stopped coming.
    pub delivered: u64,
    /// `delivered` per second, from the start of the run to the last one.
    pub delivered_per_s: f64,
    /// Latency samples that became visible.
    pub samples: u64,
    /// Samples not visible within 10 s.
    pub samples_lost: u64,
    /// Accepted (PUBACK) → visible (GET shows it), median, microseconds.
    pub visible_p50_us: u64,
    /// Same, 99th percentile.
    pub visible_p99_us: u64,
    /// Same, highest.
    pub visible_max_us: u64,
    /// `--idle`: connections open at the end.
    pub idle_connected: u64,
}

impl fmt::Display for MqttReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulated    {}", self.simulated)?;
        if self.idle_connected > 0 {
            return writeln!(f, "idle         {} connections held", self.idle_connected);
        }
        writeln!(
            f,
            "published    {} sent ({:.0}/s), {} acked, {} errors",
            self.sent, self.sent_per_s, self.acked, self.errors
        )?;
        writeln!(
            f,
            "delivered    {} ({:.0}/s)",
            self.delivered, self.delivered_per_s
        )?;
        if self.samples + self.samples_lost > 0 {
            writeln!(
                f,
                "visible      p50 {}   p99 {}   max {}   ({} samples, {} lost)",
                crate::ms(self.visible_p50_us),
                crate::ms(self.visible_p99_us),
                crate::ms(self.visible_max_us),
                self.samples,
                self.samples_lost
            )?;
        }
        Ok(())
    }
}

impl MqttArgs {
    fn check(&self) -> Result<(), BenchError> {
        let invalid = |name, reason: String| Err(BenchError::InvalidArg { name, reason });
        if self.devices == 0 || self.devices > 1_000_000 {
            return invalid("--devices", "must be 1..=1000000".into());
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return invalid("--rate", format!("{} is not a rate", self.rate));
        }
        if self.qos > 1 {
            return invalid("--qos", "must be 0 or 1".into());
        }
        if self.measures == 0 || self.measures > 100 {
            return invalid("--measures", "must be 1..=100".into());
        }
        if !matches!(self.target.as_str(), "dosi" | "mosquitto") {
            return invalid("--target", "must be dosi or mosquitto".into());
        }
        if self.apikey.is_empty() || self.apikey.contains(['/', '+', '#']) {
            return invalid("--apikey", "must be a topic level".into());
        }
        Ok(())
    }
}

/// Parses `mqtt://host:port` (loopback only unless `allow_remote`).
fn broker_addr(url: &str, allow_remote: bool) -> Result<SocketAddr, BenchError> {
    let invalid = |reason: &str| BenchError::InvalidArg {
        name: "--broker",
        reason: format!("{url:?}: {reason}"),
    };
    let rest = url
        .strip_prefix("mqtt://")
        .ok_or_else(|| invalid("expected mqtt://host:port"))?
        .trim_end_matches('/');
    let rest = if rest.contains(':') {
        rest.to_string()
    } else {
        format!("{rest}:1883")
    };
    let rest = rest.replace("localhost", "127.0.0.1");
    let addr: SocketAddr = rest
        .parse()
        .map_err(|_| invalid("expected an IP address and port"))?;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(BenchError::RemoteTarget {
            host: addr.ip().to_string(),
        });
    }
    Ok(addr)
}

// ---- MQTT 3.1.1 packets ---------------------------------------------------

// The packets: `dosi_fleet::wire`, shared with the city simulator's devices.

/// Opens a connection from `source` (any when `None`) and waits for CONNACK.
async fn open(
    broker: SocketAddr,
    source: Option<IpAddr>,
    client_id: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let mut s = socket.connect(broker).await?;
    let _ = s.set_nodelay(true);
    s.write_all(&connect_packet(client_id, user, password, KEEP_ALIVE_S))
        .await?;
    let mut body = Vec::new();
    let kind = tokio::time::timeout(Duration::from_secs(30), read_packet(&mut s, &mut body))
        .await
        .map_err(|_| std::io::Error::other("no CONNACK within 30 s"))??;
    if kind >> 4 != 2 || body.get(1) != Some(&0) {
        return Err(std::io::Error::other(format!(
            "connection refused (CONNACK {body:?})"
        )));
    }
    Ok(s)
}

// ---- HTTP ----------------------------------------------------------------

/// A minimal HTTP/1.1 client of the dosi API.
#[derive(Clone)]
struct Http {
    addr: SocketAddr,
    target: Target,
}

impl Http {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(StatusCode, Bytes), BenchError> {
        let fail = |e: String| BenchError::Setup(format!("{method} {path}: {e}"));
        let stream =
            TcpStream::connect(self.addr)
                .await
                .map_err(|source| BenchError::Unreachable {
                    target: self.addr.to_string(),
                    source,
                })?;
        let (mut sender, conn) = client::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let mut req = Request::new(Full::new(body.clone().map(Bytes::from).unwrap_or_default()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = self
            .target
            .path(path)
            .parse()
            .map_err(|e: http::uri::InvalidUri| fail(e.to_string()))?;
        req.headers_mut().insert(
            HOST,
            self.target
                .authority
                .parse()
                .map_err(|_| fail("bad host".into()))?,
        );
        if body.is_some() {
            req.headers_mut().insert(
                CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
        }
        req.headers_mut()
            .insert("fiware-servicepath", http::HeaderValue::from_static("/"));
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        Ok((status, body))
    }

    /// `dosi_iot_messages_total` of the MQTT transports (embedded broker
    /// and external one).
    async fn ingested(&self) -> Result<u64, BenchError> {
        let (_, body) = self.call(Method::GET, "/metrics", None).await?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| l.starts_with("dosi_iot_messages_total{") && l.contains("transport=\"mqtt"))
            .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<f64>().ok())
            .sum::<f64>() as u64)
    }
}

/// Makes the simulated devices known to the server: today a service group
/// with autoprovision (the devices connect without credentials). Once the
/// embedded broker checks device credentials, this is where the devices
/// are created with `--password`.
async fn provision(http: &Http, args: &MqttArgs) -> Result<(), BenchError> {
    let body = serde_json::json!({"services": [{
        "apikey": args.apikey, "resource": "/iot/d", "entity_type": "BenchDevice",
        "autoprovision": true}]});
    let (status, answer) = http
        .call(Method::POST, "/iot/services", Some(body.to_string()))
        .await?;
    if status.is_success() || status == StatusCode::CONFLICT {
        return Ok(());
    }
    Err(BenchError::Setup(format!(
        "POST /iot/services: {status} {}",
        String::from_utf8_lossy(&answer)
    )))
}

// ---- Load ------------------------------------------------------------------

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    relayed: AtomicU64,
    last_relayed_us: AtomicU64,
}

/// One publishing connection: devices `first, first + step, …` in turn.
#[allow(clippy::too_many_arguments)]
async fn publisher(
    broker: SocketAddr,
    args: Arc<MqttArgs>,
    first: usize,
    step: usize,
    per_s: f64,
    stop: Instant,
    counters: Arc<Counters>,
    one_pass: bool,
) {
    let id = format!("bench-pub-{first}-{}", std::process::id());
    let s = match open(broker, None, &id, None, args.password.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("publisher {first}: {e}");
            counters.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let (r, mut w) = s.into_split();
    let window = Arc::new(Semaphore::new(WINDOW));
    let qos = args.qos;
    let reader = {
        let (window, counters) = (window.clone(), counters.clone());
        tokio::spawn(async move {
            let mut r = BufReader::with_capacity(64 * 1024, r);
            let mut body = Vec::new();
            while let Ok(kind) = read_packet(&mut r, &mut body).await {
                if kind >> 4 == 4 {
                    counters.acked.fetch_add(1, Ordering::Relaxed);
                    window.add_permits(1);
                }
            }
        })
    };
    let devices: Vec<String> = (first..args.devices)
        .step_by(step)
        .map(|i| format!("/{}/d{i}/attrs", args.apikey))
        .collect();
    if devices.is_empty() {
        return;
    }
    let started = Instant::now();
    let mut buf = Vec::with_capacity(BURST * 96);
    let mut payload = String::new();
    let (mut n, mut pkid) = (0u64, 0u16);
    let mut last_ping = Instant::now();
    while Instant::now() < stop && !(one_pass && n as usize >= devices.len()) {
        let mut burst = BURST;
        if per_s > 0.0 {
            let due = (started.elapsed().as_secs_f64() * per_s) as u64;
            if due <= n {
                tokio::time::sleep(
                    Duration::from_secs_f64(1.0 / per_s).min(Duration::from_millis(5)),
                )
                .await;
                continue;
            }
            burst = burst.min((due - n) as usize);
        }
        if one_pass {
            burst = burst.min(devices.len() - n as usize);
        }
        buf.clear();
        for _ in 0..burst {
            if qos > 0 {
                match window.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => return,
                }
                pkid = pkid.checked_add(1).unwrap_or(1);
            }
            payload.clear();
            for m in 0..args.measures {
                use std::fmt::Write as _;
                if m > 0 {
                    payload.push('|');
                }
                let _ = write!(payload, "m{m}|{}.{}", 20 + n % 10, n % 100);
            }
            let topic = &devices[n as usize % devices.len()];
            put_publish(&mut buf, topic, payload.as_bytes(), qos, pkid, false);
            n += 1;
        }
        if let Err(e) = w.write_all(&buf).await {
            eprintln!("publisher {first}: {e}");
            counters.errors.fetch_add(1, Ordering::Relaxed);
            break;
        }
        counters.sent.fetch_add(burst as u64, Ordering::Relaxed);
        if last_ping.elapsed() > Duration::from_secs(KEEP_ALIVE_S as u64 / 2) {
            let _ = w.write_all(&PINGREQ).await;
            last_ping = Instant::now();
        }
    }
    // Wait for the acknowledgements still under way, then hang up.
    if qos > 0 {
        let _ = tokio::time::timeout(DRAIN, window.acquire_many(WINDOW as u32)).await;
    }
    let _ = w.write_all(&[0xe0, 0]).await;
    reader.abort();
}

/// The subscriber of `--target mosquitto`: counts what the broker relays.
async fn subscriber(
    broker: SocketAddr,
    args: Arc<MqttArgs>,
    counters: Arc<Counters>,
    t0: Instant,
) -> Result<tokio::task::JoinHandle<()>, BenchError> {
    let id = format!("bench-sub-{}", std::process::id());
    let mut s = open(broker, None, &id, None, None)
        .await
        .map_err(|e| BenchError::Setup(format!("subscriber: {e}")))?;
    s.write_all(&subscribe_packet(
        &format!("/{}/+/attrs", args.apikey),
        args.qos,
    ))
    .await
    .map_err(|e| BenchError::Setup(format!("subscriber: {e}")))?;
    let mut body = Vec::new();
    let kind = read_packet(&mut s, &mut body)
        .await
        .map_err(|e| BenchError::Setup(format!("subscriber: {e}")))?;
    if kind >> 4 != 9 || body.get(2).is_none_or(|c| *c > 1) {
        return Err(BenchError::Setup(format!("subscription refused: {body:?}")));
    }
    Ok(tokio::spawn(async move {
        let (r, mut w) = s.into_split();
        let mut r = BufReader::with_capacity(256 * 1024, r);
        let mut acks = Vec::with_capacity(4096);
        let mut last_ping = Instant::now();
        loop {
            let kind = match read_packet(&mut r, &mut body).await {
                Ok(k) => k,
                Err(_) => return,
            };
            if kind >> 4 == 3 {
                counters.relayed.fetch_add(1, Ordering::Relaxed);
                counters
                    .last_relayed_us
                    .store(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                if (kind >> 1) & 3 == 1 {
                    let tl = u16::from_be_bytes([body[0], body[1]]) as usize;
                    acks.extend_from_slice(&[0x40, 2, body[2 + tl], body[3 + tl]]);
                }
            }
            // Acknowledge in batches: whenever nothing more is buffered.
            if !acks.is_empty() && (r.buffer().is_empty() || acks.len() >= 4096) {
                if w.write_all(&acks).await.is_err() {
                    return;
                }
                acks.clear();
            }
            if last_ping.elapsed() > Duration::from_secs(KEEP_ALIVE_S as u64 / 2) {
                let _ = w.write_all(&PINGREQ).await;
                last_ping = Instant::now();
            }
        }
    }))
}

/// Latency samples: publish a unique value for a sample device, wait for
/// the PUBACK, poll its entity until the value shows.
async fn sampler(
    broker: SocketAddr,
    http: Http,
    args: Arc<MqttArgs>,
    stop: Instant,
) -> (Histogram<u64>, u64) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut lost = 0u64;
    let id = format!("bench-lat-{}", std::process::id());
    let Ok(mut s) = open(broker, None, &id, None, args.password.as_deref()).await else {
        return (hist, 0);
    };
    let nonce = std::process::id() as u64 % 1000 + 1000;
    let mut body = Vec::new();
    let mut buf = Vec::new();
    let mut k = 0u64;
    while Instant::now() < stop {
        k += 1;
        let dev = format!("lat{}", k % SAMPLE_DEVICES as u64);
        // A text value, so the entity shows it exactly as sent.
        let token = format!("s{nonce}x{k}");
        buf.clear();
        put_publish(
            &mut buf,
            &format!("/{}/{dev}/attrs", args.apikey),
            format!("v|{token}").as_bytes(),
            1,
            (k % 60_000 + 1) as u16,
            false,
        );
        if s.write_all(&buf).await.is_err() {
            return (hist, lost);
        }
        // Only PUBACKs come back on this connection.
        if read_packet(&mut s, &mut body).await.is_err() {
            return (hist, lost);
        }
        let accepted = Instant::now();
        let path = format!("/ngsi-ld/v1/entities/urn:ngsi-ld:BenchDevice:{dev}");
        loop {
            if let Ok((StatusCode::OK, b)) = http.call(Method::GET, &path, None).await {
                if String::from_utf8_lossy(&b).contains(&token) {
                    let _ = hist.record(accepted.elapsed().as_micros().max(1) as u64);
                    break;
                }
            }
            if accepted.elapsed() > SAMPLE_TIMEOUT {
                lost += 1;
                break;
            }
            tokio::time::sleep(SAMPLE_POLL).await;
        }
        tokio::time::sleep(SAMPLE_GAP).await;
    }
    (hist, lost)
}

/// Waits until `count` stops growing (1 s without change) or the drain ends;
/// returns the last value and when it was first seen.
async fn settle<F, Fut>(mut count: F, want: u64) -> (u64, Instant)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let deadline = Instant::now() + DRAIN;
    let (mut last, mut at) = (count().await, Instant::now());
    while Instant::now() < deadline && last < want {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = count().await;
        if now != last {
            (last, at) = (now, Instant::now());
        } else if at.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    (last, at)
}

// ---- Idle -------------------------------------------------------------------

/// Opens `devices` idle connections and holds them until `stop`.
async fn idle(broker: SocketAddr, args: &MqttArgs, stop: Instant) -> (u64, u64) {
    let open_now = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let pid = std::process::id();
    let started = Instant::now();
    for i in 0..args.devices {
        let permit = gate.clone().acquire_owned().await.expect("never closed");
        let n = (i / PER_SOURCE) as u32 + 2;
        let source = IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + n));
        let (open_now, errors) = (open_now.clone(), errors.clone());
        let password = args.password.clone();
        tokio::spawn(async move {
            let id = format!("idle{i}-{pid}");
            let user = password.as_ref().map(|_| format!("d{i}"));
            let s = open(
                broker,
                Some(source),
                &id,
                user.as_deref(),
                password.as_deref(),
            )
            .await;
            drop(permit);
            let mut s = match s {
                Ok(s) => s,
                Err(e) => {
                    if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("idle connection {i}: {e}");
                    }
                    return;
                }
            };
            open_now.fetch_add(1, Ordering::Relaxed);
            let mut body = Vec::new();
            loop {
                let ping = tokio::time::sleep(Duration::from_secs(KEEP_ALIVE_S as u64 - 5));
                tokio::select! {
                    _ = ping => if s.write_all(&PINGREQ).await.is_err() { break },
                    r = read_packet(&mut s, &mut body) => if r.is_err() { break },
                    _ = tokio::time::sleep_until(stop.into()) => break,
                }
            }
            open_now.fetch_sub(1, Ordering::Relaxed);
        });
        if (i + 1) % 10_000 == 0 {
            eprintln!(
                "{} connections opened in {:.1} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Every connect has finished once all permits are back.
    let _ = gate.acquire_many(CONNECTING as u32).await;
    let held = open_now.load(Ordering::Relaxed);
    eprintln!(
        "{held} idle connections open after {:.1} s ({} failed); holding until the end of the run",
        started.elapsed().as_secs_f64(),
        errors.load(Ordering::Relaxed)
    );
    tokio::time::sleep_until(stop.into()).await;
    (held, errors.load(Ordering::Relaxed))
}

// ---- The scenario -----------------------------------------------------------

/// Runs `dosi bench mqtt`.
pub(crate) async fn measure(args: &BenchArgs, opts: &MqttArgs) -> Result<Report, BenchError> {
    opts.check()?;
    let seconds = crate::seconds("--seconds", opts.seconds.unwrap_or(args.duration), false)?;
    let broker = broker_addr(&opts.broker, args.allow_remote)?;
    let connections = args.connections.clamp(1, 1024);
    let opts = Arc::new(opts.clone());
    let mut report = MqttReport {
        simulated: String::new(),
        sent: 0,
        acked: 0,
        errors: 0,
        sent_per_s: 0.0,
        delivered: 0,
        delivered_per_s: 0.0,
        samples: 0,
        samples_lost: 0,
        visible_p50_us: 0,
        visible_p99_us: 0,
        visible_max_us: 0,
        idle_connected: 0,
    };
    if opts.idle {
        report.simulated = format!(
            "{} idle devices: one MQTT connection each (CONNECT, PINGREQ every {} s), from 127.0.0.2…",
            opts.devices,
            KEEP_ALIVE_S - 5
        );
        let (held, errors) = idle(broker, &opts, Instant::now() + seconds).await;
        report.idle_connected = held;
        report.errors = errors;
        return Ok(wrap("mqtt-idle", opts.devices, report, seconds));
    }
    let dosi = opts.target == "dosi";
    let http = if dosi {
        let target = Target::parse(&args.url, args.allow_remote)?;
        let addr = target.resolve(args.allow_remote).await?;
        let http = Http { addr, target };
        provision(&http, &opts).await?;
        Some(http)
    } else {
        None
    };
    let connections = connections.min(opts.devices);
    let per_conn = opts.rate / connections as f64;
    let counters = Arc::new(Counters::default());
    report.simulated = format!(
        "{} devices publishing UltraLight ({} measures) at QoS {} on /{}/d<i>/attrs over {} connections{}",
        opts.devices,
        opts.measures,
        opts.qos,
        opts.apikey,
        connections,
        if opts.rate > 0.0 {
            format!(", {} msg/s", opts.rate)
        } else {
            ", as fast as acknowledged".into()
        }
    );

    // Each device's first message provisions it: send one per device, and
    // wait until they are all ingested, before measuring.
    if let Some(http) = &http {
        let before = http.ingested().await?;
        let first = Arc::new(Counters::default());
        let far = Instant::now() + DRAIN;
        let mut set = tokio::task::JoinSet::new();
        for c in 0..connections {
            set.spawn(publisher(
                broker,
                opts.clone(),
                c,
                connections,
                0.0,
                far,
                first.clone(),
                true,
            ));
        }
        while set.join_next().await.is_some() {}
        let want = before + first.sent.load(Ordering::Relaxed);
        let (got, _) = settle(|| async { http.ingested().await.unwrap_or(0) }, want).await;
        eprintln!(
            "{} devices provisioned by their first message ({} of {} ingested)",
            opts.devices,
            got - before,
            want - before
        );
    }

    let t0 = Instant::now();
    let stop = t0 + seconds;
    let sub = if dosi {
        None
    } else {
        Some(subscriber(broker, opts.clone(), counters.clone(), t0).await?)
    };
    let before = match &http {
        Some(h) => h.ingested().await?,
        None => 0,
    };
    let samples = http
        .clone()
        .map(|h| tokio::spawn(sampler(broker, h, opts.clone(), stop)));
    let mut set = tokio::task::JoinSet::new();
    for c in 0..connections {
        set.spawn(publisher(
            broker,
            opts.clone(),
            c,
            connections,
            per_conn,
            stop,
            counters.clone(),
            false,
        ));
    }
    while set.join_next().await.is_some() {}
    let sent = counters.sent.load(Ordering::Relaxed);
    report.sent = sent;
    report.acked = counters.acked.load(Ordering::Relaxed);
    report.errors = counters.errors.load(Ordering::Relaxed);
    report.sent_per_s = sent as f64 / seconds.as_secs_f64();
    if let Some(http) = &http {
        let (got, at) = settle(
            || async { http.ingested().await.unwrap_or(0) },
            before + sent,
        )
        .await;
        report.delivered = got - before;
        report.delivered_per_s = report.delivered as f64 / at.duration_since(t0).as_secs_f64();
    } else {
        let c = counters.clone();
        let (got, _) = settle(|| async { c.relayed.load(Ordering::Relaxed) }, sent).await;
        report.delivered = got;
        let last = Duration::from_micros(counters.last_relayed_us.load(Ordering::Relaxed));
        report.delivered_per_s = got as f64 / last.as_secs_f64().max(1e-9);
    }
    if let Some(s) = sub {
        s.abort();
    }
    if let Some(s) = samples {
        let (hist, lost) = s.await.map_err(|e| BenchError::Worker(e.to_string()))?;
        report.samples = hist.len();
        report.samples_lost = lost;
        if !hist.is_empty() {
            report.visible_p50_us = hist.value_at_quantile(0.5);
            report.visible_p99_us = hist.value_at_quantile(0.99);
            report.visible_max_us = hist.max();
        }
    }
    Ok(wrap("mqtt", connections, report, seconds))
}

fn wrap(scenario: &str, connections: usize, m: MqttReport, window: Duration) -> Report {
    let duration_s = window.as_secs_f64();
    Report {
        scenario: scenario.into(),
        connections,
        requests: m.sent,
        errors: m.errors,
        items: m.delivered,
        duration_s,
        rps: m.sent_per_s,
        items_per_s: None,
        p50_us: m.visible_p50_us,
        p90_us: 0,
        p99_us: m.visible_p99_us,
        p999_us: 0,
        max_us: m.visible_max_us,
        notify: None,
        temporal: None,
        mqtt: Some(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dosi_fleet::wire::put_len;

    #[test]
    fn remaining_lengths() {
        for (n, want) in [
            (0, vec![0]),
            (127, vec![0x7f]),
            (128, vec![0x80, 1]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 1]),
        ] {
            let mut b = Vec::new();
            put_len(&mut b, n);
            assert_eq!(b, want, "{n}");
        }
    }

    #[tokio::test]
    async fn packets_read_back() {
        let mut buf = Vec::new();
        put_publish(&mut buf, "/k/d1/attrs", b"t|1", 1, 7, false);
        let mut r = &buf[..];
        let mut body = Vec::new();
        let kind = read_packet(&mut r, &mut body).await.unwrap();
        assert_eq!(kind, 0x32);
        assert_eq!(&body[..2], &[0, 11]);
        assert_eq!(&body[13..15], &[0, 7]);
        assert_eq!(&body[15..], b"t|1");
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            broker_addr("mqtt://127.0.0.1:1884", false).unwrap(),
            "127.0.0.1:1884".parse().unwrap()
        );
        assert_eq!(broker_addr("mqtt://localhost", false).unwrap().port(), 1883);
        assert!(broker_addr("mqtt://10.1.2.3:1883", false).is_err());
        assert!(broker_addr("http://127.0.0.1:1", false).is_err());
    }
}
