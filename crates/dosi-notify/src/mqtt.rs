//! MQTT notifications (NGSI-LD API, clause 7 "MQTT notification binding").
//!
//! An endpoint `mqtt[s]://[user[:password]@]host[:port]/topic[/subtopic]*`
//! names the broker (ports 1883 and 8883 by default, TLS for `mqtts`) and the
//! topic: the URI path without its leading `/`, percent-decoded. Each
//! notification is published as one JSON object
//! `{"metadata": {…}, "body": <notification>}`: the headers an HTTP
//! notification would carry (`Content-Type`, `Link`, `NGSILD-Tenant`,
//! receiverInfo) become the `metadata` key/value pairs. `notifierInfo` chooses
//! the protocol (`MQTT-Version`: `mqtt3.1.1`, the default, or `mqtt5.0`) and
//! the quality of service (`MQTT-QoS`: `0`, the default, `1` or `2`).
//!
//! [`MqttTransport`] keeps one connection per (scheme, host, port, user,
//! password, version), each driven by its own task, so a broker that is down
//! or slow delays only its own sends. A connection is opened when something is
//! to be sent, re-opened after an error on the next send, and closed after
//! [`MqttConfig::idle_timeout`] without sends.
//!
//! A send succeeds when the broker has taken the message over: PUBACK (QoS 1)
//! or PUBCOMP (QoS 2); for QoS 0, when the PUBLISH is written to the
//! connection. The client crate (rumqttc) reports packet ids only in its
//! event stream, so each connection keeps the senders waiting in the order
//! their PUBLISH requests were queued; the event loop takes requests in that
//! order and reports `Outgoing::Publish(pkid)` for each, which pairs a sender
//! with its packet id, and the broker's acknowledgement for that id then
//! resolves it. Sessions are clean and the client's own retransmission after
//! a reconnect is switched off (pending requests are dropped): on a connection
//! error every waiting sender fails as transient and the delivery layer
//! retries, so that pairing never goes out of step.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use percent_encoding::percent_decode_str;
use rand::distr::{Alphanumeric, SampleString};
use tokio::sync::{oneshot, Notify};

use crate::deliver::{Outgoing, SendError, Transport};

/// Default port of `mqtt://`.
pub const MQTT_PORT: u16 = 1883;
/// Default port of `mqtts://`.
pub const MQTTS_PORT: u16 = 8883;

/// Largest MQTT packet "remaining length" (both protocol versions).
const MAX_REMAINING_LENGTH: usize = 268_435_455;
/// Longest MQTT UTF-8 string (topic, user name) in bytes.
const MAX_MQTT_STRING: usize = 65_535;
/// Largest packet the broker may send us; we receive only acknowledgements.
const MAX_INCOMING_PACKET: usize = 64 * 1024;
/// QoS 1/2 publishes in flight per connection (rumqttc's packet-id window;
/// an MQTT 5 broker may lower it with Receive Maximum).
const MAX_INFLIGHT: u16 = 100;

/// Settings of the MQTT transport.
#[derive(Clone)]
pub struct MqttConfig {
    /// A connection with nothing sent and nothing outstanding for this long is
    /// closed (checked at least every `keep_alive`).
    pub idle_timeout: Duration,
    /// MQTT keep-alive: the PINGREQ interval, whole seconds, at least 1 s.
    pub keep_alive: Duration,
    /// Time allowed for TCP, TLS and CONNECT/CONNACK, whole seconds, at least
    /// 1 s. A send still fails after its own timeout.
    pub connect_timeout: Duration,
    /// Publishes queued per connection and not yet written; a send beyond it
    /// fails at once as transient.
    pub queue_capacity: usize,
    /// TLS client settings for `mqtts`; `None` = the system's root
    /// certificates (honouring `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            queue_capacity: 1024,
            tls: None,
        }
    }
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("idle_timeout", &self.idle_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("connect_timeout", &self.connect_timeout)
            .field("queue_capacity", &self.queue_capacity)
            .field("tls", &self.tls.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Why an MQTT endpoint or its `notifierInfo` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidMqttEndpoint(pub String);

fn invalid(msg: impl Into<String>) -> InvalidMqttEndpoint {
    InvalidMqttEndpoint(msg.into())
}

/// A parsed `mqtt://` or `mqtts://` endpoint URI.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    /// `mqtts`: TLS.
    pub tls: bool,
    /// The broker's host name or address (IPv6 in brackets), lower case.
    pub host: String,
    /// The broker's port.
    pub port: u16,
    /// User name, percent-decoded.
    pub username: Option<String>,
    /// Password, percent-decoded.
    pub password: Option<String>,
    /// The topic: the path without its leading `/`, percent-decoded.
    pub topic: String,
}

impl fmt::Debug for MqttEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The endpoint without its password.
impl fmt::Display for MqttEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let user = self
            .username
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        write!(
            f,
            "{scheme}://{user}{}:{}/{}",
            self.host, self.port, self.topic
        )
    }
}

impl MqttEndpoint {
    /// Parses `mqtt[s]://[user[:password]@]host[:port]/topic[/subtopic]*`.
    /// The topic must be a valid MQTT topic name (not empty, no wildcards, no
    /// NUL or control characters, at most 65535 bytes); a query or fragment
    /// is refused rather than silently dropped.
    pub fn parse(uri: &str) -> Result<Self, InvalidMqttEndpoint> {
        let url = url::Url::parse(uri).map_err(|e| invalid(format!("invalid URI {uri:?}: {e}")))?;
        let tls = match url.scheme() {
            "mqtt" => false,
            "mqtts" => true,
            other => return Err(invalid(format!("scheme {other:?} is not mqtt or mqtts"))),
        };
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
            _ => return Err(invalid(format!("no broker host in {uri:?}"))),
        };
        if host.contains('%') {
            return Err(invalid(format!("invalid broker host {host:?}")));
        }
        let port = url
            .port()
            .unwrap_or(if tls { MQTTS_PORT } else { MQTT_PORT });
        if port == 0 {
            return Err(invalid("port 0 is not a broker port"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(format!(
                "an MQTT endpoint has no query or fragment ({uri:?}); '#' and '?' in a topic are not allowed"
            )));
        }
        let decode = |s: &str, what: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| invalid(format!("{what} is not UTF-8 once percent-decoded")))
        };
        let username = match url.username() {
            "" => None,
            u => Some(decode(u, "the user name")?),
        };
        let password = url
            .password()
            .map(|p| decode(p, "the password"))
            .transpose()?;
        if let Some(u) = &username {
            check_mqtt_string(u, "user name")?;
        }
        if password.as_ref().is_some_and(|p| p.len() > MAX_MQTT_STRING) {
            return Err(invalid("the password is longer than 65535 bytes"));
        }
        let path = url.path();
        let topic = decode(path.strip_prefix('/').unwrap_or(path), "the topic")?;
        check_topic(&topic)?;
        Ok(Self {
            tls,
            host,
            port,
            username,
            password,
            topic,
        })
    }
}

fn check_mqtt_string(s: &str, what: &str) -> Result<(), InvalidMqttEndpoint> {
    if s.len() > MAX_MQTT_STRING {
        return Err(invalid(format!("the {what} is longer than 65535 bytes")));
    }
    // MQTT forbids U+0000 in strings and brokers (Mosquitto) drop the whole
    // connection on other control characters, which would fail every other
    // notification sharing it.
    if s.chars().any(char::is_control) {
        return Err(invalid(format!("the {what} contains control characters")));
    }
    Ok(())
}

fn check_topic(topic: &str) -> Result<(), InvalidMqttEndpoint> {
    if topic.is_empty() {
        return Err(invalid(
            "no topic: the endpoint URI needs a path (mqtt://host/topic)",
        ));
    }
    if topic.contains(['+', '#']) {
        return Err(invalid(format!(
            "topic {topic:?} contains a wildcard (+ or #)"
        )));
    }
    check_mqtt_string(topic, "topic")
}

/// The MQTT protocol version (`notifierInfo` `MQTT-Version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MqttVersion {
    /// `mqtt3.1.1` (the default).
    #[default]
    V311,
    /// `mqtt5.0`
    V5,
}

impl MqttVersion {
    /// The `notifierInfo` value.
    pub fn name(self) -> &'static str {
        match self {
            MqttVersion::V311 => "mqtt3.1.1",
            MqttVersion::V5 => "mqtt5.0",
        }
    }
}

/// What `notifierInfo` asks of the MQTT transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MqttSettings {
    /// `MQTT-Version`
    pub version: MqttVersion,
    /// `MQTT-QoS`: 0, 1 or 2.
    pub qos: u8,
}

impl MqttSettings {
    /// Reads `MQTT-Version` and `MQTT-QoS` (keys case-insensitive, values
    /// trimmed; other keys are ignored).
    pub fn from_notifier_info(info: &[(String, String)]) -> Result<Self, InvalidMqttEndpoint> {
        let get = |key: &str| {
            info.iter()
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
                .map(|(_, v)| v.trim())
        };
        let version = match get("MQTT-Version") {
            None => MqttVersion::default(),
            Some(v) if v.eq_ignore_ascii_case("mqtt3.1.1") => MqttVersion::V311,
            Some(v) if v.eq_ignore_ascii_case("mqtt5.0") => MqttVersion::V5,
            Some(v) => {
                return Err(invalid(format!(
                    "MQTT-Version {v:?} is not mqtt3.1.1 or mqtt5.0"
                )))
            }
        };
        let qos = match get("MQTT-QoS") {
            None => 0,
            Some("0") => 0,
            Some("1") => 1,
            Some("2") => 2,
            Some(v) => return Err(invalid(format!("MQTT-QoS {v:?} is not 0, 1 or 2"))),
        };
        Ok(Self { version, qos })
    }
}

/// The MQTT notification message: `{"metadata": {headers…}, "body": <body>}`.
/// `body` must be JSON; it is copied as it is. A header given twice keeps its
/// first position and its last value.
pub fn message(headers: &[(String, String)], body: &[u8]) -> Result<Vec<u8>, InvalidMqttEndpoint> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map_err(|e| invalid(format!("the notification body is not JSON: {e}")))?;
    let mut metadata = serde_json::Map::new();
    for (k, v) in headers {
        metadata.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    let metadata = serde_json::to_vec(&metadata).map_err(|e| invalid(e.to_string()))?;
    let mut out = Vec::with_capacity(metadata.len() + body.len() + 24);
    out.extend_from_slice(b"{\"metadata\":");
    out.extend_from_slice(&metadata);
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(body);
    out.push(b'}');
    Ok(out)
}

/// Publishes notifications to MQTT brokers, one reused connection per broker,
/// credentials and protocol version.
#[derive(Clone, Default)]
pub struct MqttTransport {
    pool: Arc<Pool>,
}

impl fmt::Debug for MqttTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttTransport")
            .field("config", &self.pool.config)
            .field("connections", &self.open_connections())
            .finish()
    }
}

#[derive(Default)]
struct Pool {
    config: MqttConfig,
    conns: Mutex<HashMap<ConnKey, Arc<Conn>>>,
    default_tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl MqttTransport {
    /// A transport with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A transport with `config`.
    pub fn with_config(mut config: MqttConfig) -> Self {
        // A connection must live long enough for the send that opened it.
        config.idle_timeout = config.idle_timeout.max(Duration::from_millis(100));
        Self {
            pool: Arc::new(Pool {
                config,
                conns: Mutex::new(HashMap::new()),
                default_tls: OnceLock::new(),
            }),
        }
    }

    /// Broker connections currently kept (open, opening or waiting for a
    /// send to reconnect).
    pub fn open_connections(&self) -> usize {
        self.pool.conns.lock().len()
    }
}

#[async_trait]
impl Transport for MqttTransport {
    async fn send(&self, n: &Outgoing) -> Result<(), SendError> {
        // Far enough for any real timeout, near enough not to overflow.
        let timeout = n.timeout().min(Duration::from_secs(86_400));
        let deadline = tokio::time::Instant::now() + timeout;
        let permanent = |e: InvalidMqttEndpoint| SendError::Permanent(e.0);
        let endpoint = MqttEndpoint::parse(&n.uri).map_err(permanent)?;
        let settings = MqttSettings::from_notifier_info(&n.notifier_info).map_err(permanent)?;
        if settings.version == MqttVersion::V311
            && endpoint.password.is_some()
            && endpoint.username.is_none()
        {
            return Err(SendError::Permanent(format!(
                "{endpoint}: MQTT 3.1.1 allows a password only with a user name"
            )));
        }
        let payload = message(&n.headers, &n.body).map_err(permanent)?;
        let size = payload_packet_size(&endpoint.topic, settings, payload.len());
        if size > MAX_REMAINING_LENGTH {
            return Err(SendError::Permanent(format!(
                "{endpoint}: the message ({} bytes) exceeds the MQTT packet limit",
                payload.len()
            )));
        }
        let key = ConnKey {
            tls: endpoint.tls,
            host: endpoint.host.clone(),
            port: endpoint.port,
            username: endpoint.username.clone(),
            password: endpoint.password.clone(),
            version: settings.version,
        };
        let rx = self
            .pool
            .enqueue(&key, &endpoint, settings, payload, size)?;
        let ack = match settings.qos {
            0 => "write",
            1 => "PUBACK",
            _ => "PUBCOMP",
        };
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(SendError::Transient(format!(
                "{endpoint}: the connection closed before the {ack}"
            ))),
            Err(_) => Err(SendError::Transient(format!(
                "{endpoint}: no {ack} within {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

/// Remaining length of the PUBLISH we send (v5: with our properties).
fn payload_packet_size(topic: &str, settings: MqttSettings, payload: usize) -> usize {
    let pkid = if settings.qos > 0 { 2 } else { 0 };
    let props = match settings.version {
        MqttVersion::V311 => 0,
        // length (1) + payload format indicator (2) + content type (3 + 16)
        MqttVersion::V5 => 1 + 2 + 3 + CONTENT_TYPE.len(),
    };
    2 + topic.len() + pkid + props + payload
}

const CONTENT_TYPE: &str = "application/json";

/// What identifies a connection. No `Debug`: it holds the password, which
/// its `Display` leaves out.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ConnKey {
    tls: bool,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    version: MqttVersion,
}

impl fmt::Display for ConnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let user = self
            .username
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        write!(
            f,
            "{scheme}://{user}{}:{} ({})",
            self.host,
            self.port,
            self.version.name()
        )
    }
}

/// A sender waiting for its message to be written or acknowledged.
struct Waiter {
    qos: u8,
    tx: oneshot::Sender<Result<(), SendError>>,
}

/// One broker connection: the client handle that queues requests, and the
/// senders waiting on them. Its event loop runs in [`run`].
struct Conn {
    key: ConnKey,
    client: Client,
    state: Mutex<ConnState>,
    wake: Notify,
}

struct ConnState {
    /// No more sends: the task has ended or is ending.
    closed: bool,
    /// Publishes queued to the event loop and not yet written, in order.
    queued: VecDeque<Waiter>,
    /// Written QoS 1/2 publishes awaiting PUBACK/PUBCOMP, by packet id.
    inflight: HashMap<u16, VecDeque<Waiter>>,
    /// The last send (or the connection's creation).
    last_used: Instant,
    /// The broker's Maximum Packet Size (MQTT 5 CONNACK).
    max_packet: Option<u32>,
}

impl ConnState {
    fn has_demand(&self) -> bool {
        !self.queued.is_empty() || !self.inflight.is_empty()
    }

    fn handle(&mut self, key: &ConnKey, ev: Ev) {
        match ev {
            Ev::Connected { max_packet } => self.max_packet = max_packet,
            Ev::Written(pkid) => match self.queued.pop_front() {
                Some(w) if w.qos == 0 => {
                    let _ = w.tx.send(Ok(()));
                }
                Some(w) => self.inflight.entry(pkid).or_default().push_back(w),
                None => tracing::warn!(%key, pkid, "MQTT publish written with no sender waiting"),
            },
            Ev::Acked { pkid, qos, result } => {
                let Some(waiters) = self.inflight.get_mut(&pkid) else {
                    return;
                };
                if let Some(i) = waiters.iter().position(|w| w.qos == qos) {
                    if let Some(w) = waiters.remove(i) {
                        let _ = w.tx.send(result.map_err(|e| with_key(e, key)));
                    }
                }
                if waiters.is_empty() {
                    self.inflight.remove(&pkid);
                }
            }
            Ev::Disconnected | Ev::Other => {}
        }
    }

    fn fail_all(&mut self, err: &SendError) {
        for w in self.queued.drain(..) {
            let _ = w.tx.send(Err(err.clone()));
        }
        for (_, ws) in self.inflight.drain() {
            for w in ws {
                let _ = w.tx.send(Err(err.clone()));
            }
        }
    }
}

fn with_key(e: SendError, key: &ConnKey) -> SendError {
    match e {
        SendError::Transient(m) => SendError::Transient(format!("{key}: {m}")),
        SendError::Permanent(m) => SendError::Permanent(format!("{key}: {m}")),
    }
}

impl Pool {
    /// Queues one publish on the connection for `key` (created if needed) and
    /// returns where its outcome will arrive.
    fn enqueue(
        self: &Arc<Self>,
        key: &ConnKey,
        endpoint: &MqttEndpoint,
        settings: MqttSettings,
        payload: Vec<u8>,
        size: usize,
    ) -> Result<oneshot::Receiver<Result<(), SendError>>, SendError> {
        let mut payload = Some(payload);
        // A connection found closed is replaced; twice is plenty (it can only
        // be closed by its own idle timer or by its task ending).
        for _ in 0..3 {
            let conn = self.get_or_create(key)?;
            let mut st = conn.state.lock();
            if st.closed {
                drop(st);
                self.forget(&conn);
                continue;
            }
            if st.max_packet.is_some_and(|max| size + 5 > max as usize) {
                return Err(SendError::Permanent(format!(
                    "{endpoint}: the message is larger than the broker's maximum packet size ({} bytes)",
                    st.max_packet.unwrap_or_default()
                )));
            }
            let (tx, rx) = oneshot::channel();
            st.queued.push_back(Waiter {
                qos: settings.qos,
                tx,
            });
            let body = payload.take().unwrap_or_default();
            if let Err(e) = conn.client.try_publish(&endpoint.topic, settings.qos, body) {
                st.queued.pop_back();
                return Err(SendError::Transient(format!("{endpoint}: {e}")));
            }
            st.last_used = Instant::now();
            drop(st);
            conn.wake.notify_one();
            return Ok(rx);
        }
        Err(SendError::Transient(format!(
            "{endpoint}: the connection keeps closing"
        )))
    }

    fn get_or_create(self: &Arc<Self>, key: &ConnKey) -> Result<Arc<Conn>, SendError> {
        if let Some(c) = self.conns.lock().get(key) {
            return Ok(c.clone());
        }
        // Built outside the pool lock: loading the system's root certificates
        // reads files, and other brokers' sends must not wait for that.
        let tls = if key.tls { Some(self.tls()?) } else { None };
        let mut conns = self.conns.lock();
        if let Some(c) = conns.get(key) {
            return Ok(c.clone());
        }
        let (client, event_loop) = open(key, &self.config, tls);
        let conn = Arc::new(Conn {
            key: key.clone(),
            client,
            state: Mutex::new(ConnState {
                closed: false,
                queued: VecDeque::new(),
                inflight: HashMap::new(),
                last_used: Instant::now(),
                max_packet: None,
            }),
            wake: Notify::new(),
        });
        conns.insert(key.clone(), conn.clone());
        tokio::spawn(run(
            conn.clone(),
            event_loop,
            Arc::downgrade(self),
            self.config.idle_timeout,
        ));
        tracing::debug!(key = %conn.key, "MQTT connection created");
        Ok(conn)
    }

    /// Removes `conn` from the pool if it is still the one there.
    fn forget(&self, conn: &Arc<Conn>) {
        let mut conns = self.conns.lock();
        if conns.get(&conn.key).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            conns.remove(&conn.key);
        }
    }

    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, SendError> {
        if let Some(tls) = &self.config.tls {
            return Ok(tls.clone());
        }
        self.default_tls
            .get_or_init(system_tls)
            .clone()
            .map_err(SendError::Transient)
    }
}

/// rustls with the ring provider and the system's root certificates.
fn system_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "mqtts: no trusted root certificates found on this system ({} errors while loading)",
            found.errors.len()
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("mqtts: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The client handle of either protocol version.
enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

impl Client {
    fn try_publish(&self, topic: &str, qos: u8, payload: Vec<u8>) -> Result<(), String> {
        const BUSY: &str = "the connection's send queue is full";
        match self {
            Client::V4(c) => c
                .try_publish(topic, qos_v4(qos), false, payload)
                .map_err(|_| BUSY.to_string()),
            Client::V5(c) => {
                let props = rumqttc::v5::mqttbytes::v5::PublishProperties {
                    payload_format_indicator: Some(1),
                    content_type: Some(CONTENT_TYPE.to_string()),
                    ..Default::default()
                };
                c.try_publish_with_properties(topic, qos_v5(qos), false, payload, props)
                    .map_err(|_| BUSY.to_string())
            }
        }
    }

    fn try_disconnect(&self) {
        // Failing only means the queue is full or the loop is gone; the
        // connection is dropped right after either way.
        match self {
            Client::V4(c) => drop(c.try_disconnect()),
            Client::V5(c) => drop(c.try_disconnect()),
        }
    }
}

fn qos_v4(qos: u8) -> rumqttc::QoS {
    match qos {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos_v5(qos: u8) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS;
    match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The event loop of either protocol version.
enum EventLoop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// What [`run`] needs to know of an event.
enum Ev {
    /// CONNACK accepted.
    Connected {
        max_packet: Option<u32>,
    },
    /// A PUBLISH was written (packet id 0 for QoS 0).
    Written(u16),
    /// The broker's final answer to a QoS `qos` publish.
    Acked {
        pkid: u16,
        qos: u8,
        result: Result<(), SendError>,
    },
    /// Our DISCONNECT was written.
    Disconnected,
    Other,
}

fn open(
    key: &ConnKey,
    config: &MqttConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> (Client, EventLoop) {
    // Unique per connection: a broker drops the older of two connections
    // with the same client id.
    let client_id = format!("dosi-{}", Alphanumeric.sample_string(&mut rand::rng(), 16));
    let keep_alive = Duration::from_secs(config.keep_alive.as_secs().clamp(1, 65_535));
    let connect_timeout = config.connect_timeout.as_secs().max(1);
    let capacity = config.queue_capacity.max(1);
    let transport = match tls {
        Some(tls) => rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls)),
        None => rumqttc::Transport::Tcp,
    };
    let credentials = match (&key.username, &key.password) {
        (None, None) => None,
        (u, p) => Some((u.clone().unwrap_or_default(), p.clone().unwrap_or_default())),
    };
    let mut network = rumqttc::NetworkOptions::new();
    network.set_connection_timeout(connect_timeout);
    network.set_tcp_nodelay(true);
    match key.version {
        MqttVersion::V311 => {
            let mut o = rumqttc::MqttOptions::new(client_id, key.host.clone(), key.port);
            o.set_keep_alive(keep_alive)
                .set_clean_session(true)
                .set_max_packet_size(MAX_INCOMING_PACKET, MAX_REMAINING_LENGTH)
                .set_request_channel_capacity(capacity)
                .set_inflight(MAX_INFLIGHT)
                .set_transport(transport);
            if let Some((u, p)) = credentials {
                o.set_credentials(u, p);
            }
            let (client, mut el) = rumqttc::AsyncClient::new(o, capacity);
            el.set_network_options(network);
            (Client::V4(client), EventLoop::V4(Box::new(el)))
        }
        MqttVersion::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(client_id, key.host.clone(), key.port);
            o.set_keep_alive(keep_alive)
                .set_clean_start(true)
                .set_connection_timeout(connect_timeout)
                .set_request_channel_capacity(capacity)
                .set_outgoing_inflight_upper_limit(MAX_INFLIGHT)
                .set_transport(transport)
                .set_network_options(network);
            if let Some((u, p)) = credentials {
                o.set_credentials(u, p);
            }
            let (client, el) = rumqttc::v5::AsyncClient::new(o, capacity);
            (Client::V5(client), EventLoop::V5(Box::new(el)))
        }
    }
}

impl EventLoop {
    async fn poll(&mut self) -> Result<Ev, SendError> {
        match self {
            EventLoop::V4(el) => el.poll().await.map(ev_v4).map_err(|e| classify_v4(&e)),
            EventLoop::V5(el) => el.poll().await.map(ev_v5).map_err(|e| classify_v5(&e)),
        }
    }

    /// Events the loop produced but had not yet returned when it failed.
    fn take_buffered(&mut self) -> Vec<Ev> {
        match self {
            EventLoop::V4(el) => el.state.events.drain(..).map(ev_v4).collect(),
            EventLoop::V5(el) => el.state.events.drain(..).map(ev_v5).collect(),
        }
    }

    /// Forgets everything queued or in flight (their senders have been
    /// failed): nothing is retransmitted on the next connection.
    fn reset(&mut self) {
        match self {
            EventLoop::V4(el) => {
                el.clean();
                el.pending.clear();
                el.state.events.clear();
            }
            EventLoop::V5(el) => {
                el.clean();
                el.pending.clear();
                el.state.events.clear();
            }
        }
    }
}

fn ev_v4(ev: rumqttc::Event) -> Ev {
    use rumqttc::{Event, Outgoing, Packet};
    match ev {
        Event::Incoming(Packet::ConnAck(_)) => Ev::Connected { max_packet: None },
        Event::Outgoing(Outgoing::Publish(pkid)) => Ev::Written(pkid),
        Event::Outgoing(Outgoing::Disconnect) => Ev::Disconnected,
        Event::Incoming(Packet::PubAck(a)) => Ev::Acked {
            pkid: a.pkid,
            qos: 1,
            result: Ok(()),
        },
        Event::Incoming(Packet::PubComp(c)) => Ev::Acked {
            pkid: c.pkid,
            qos: 2,
            result: Ok(()),
        },
        _ => Ev::Other,
    }
}

fn ev_v5(ev: rumqttc::v5::Event) -> Ev {
    use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PubCompReason, PubRecReason};
    use rumqttc::v5::Event;
    use rumqttc::Outgoing;
    match ev {
        Event::Incoming(Packet::ConnAck(c)) => Ev::Connected {
            max_packet: c.properties.and_then(|p| p.max_packet_size),
        },
        Event::Outgoing(Outgoing::Publish(pkid)) => Ev::Written(pkid),
        Event::Outgoing(Outgoing::Disconnect) => Ev::Disconnected,
        Event::Incoming(Packet::PubAck(a)) => Ev::Acked {
            pkid: a.pkid,
            qos: 1,
            result: match a.reason {
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                PubAckReason::NotAuthorized
                | PubAckReason::TopicNameInvalid
                | PubAckReason::PayloadFormatInvalid => {
                    Err(SendError::Permanent(format!("PUBACK {:?}", a.reason)))
                }
                r => Err(SendError::Transient(format!("PUBACK {r:?}"))),
            },
        },
        // A failed PUBREC ends the exchange; a successful one leads to PUBCOMP.
        Event::Incoming(Packet::PubRec(r)) => match r.reason {
            PubRecReason::Success | PubRecReason::NoMatchingSubscribers => Ev::Other,
            PubRecReason::NotAuthorized
            | PubRecReason::TopicNameInvalid
            | PubRecReason::PayloadFormatInvalid => Ev::Acked {
                pkid: r.pkid,
                qos: 2,
                result: Err(SendError::Permanent(format!("PUBREC {:?}", r.reason))),
            },
            reason => Ev::Acked {
                pkid: r.pkid,
                qos: 2,
                result: Err(SendError::Transient(format!("PUBREC {reason:?}"))),
            },
        },
        Event::Incoming(Packet::PubComp(c)) => Ev::Acked {
            pkid: c.pkid,
            qos: 2,
            result: match c.reason {
                PubCompReason::Success => Ok(()),
                r => Err(SendError::Transient(format!("PUBCOMP {r:?}"))),
            },
        },
        _ => Ev::Other,
    }
}

/// Refused credentials and an unsupported protocol version will not get
/// better by retrying; everything else about a connection (refused, reset,
/// unreachable, timeouts, TLS, server busy, protocol trouble) may.
fn classify_v4(e: &rumqttc::ConnectionError) -> SendError {
    use rumqttc::{ConnectReturnCode as C, ConnectionError as E};
    match e {
        E::ConnectionRefused(code @ (C::BadUserNamePassword | C::NotAuthorized)) => {
            SendError::Permanent(format!("broker refused the connection: {code:?}"))
        }
        E::ConnectionRefused(C::RefusedProtocolVersion) => {
            SendError::Permanent("broker does not support MQTT 3.1.1".to_string())
        }
        e => SendError::Transient(e.to_string()),
    }
}

fn classify_v5(e: &rumqttc::v5::ConnectionError) -> SendError {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as C;
    use rumqttc::v5::ConnectionError as E;
    match e {
        E::ConnectionRefused(
            code @ (C::BadUserNamePassword
            | C::NotAuthorized
            | C::Banned
            | C::BadAuthenticationMethod),
        ) => SendError::Permanent(format!("broker refused the connection: {code:?}")),
        E::ConnectionRefused(C::UnsupportedProtocolVersion | C::RefusedProtocolVersion) => {
            SendError::Permanent("broker does not support MQTT 5.0".to_string())
        }
        e => SendError::Transient(e.to_string()),
    }
}

/// Marks the connection closed however its task ends (even by a panic in
/// the client), so sends open a new one instead of queueing into a dead one.
struct CloseOnDrop<'a> {
    conn: &'a Arc<Conn>,
    pool: Weak<Pool>,
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        let err = SendError::Transient(format!("{}: connection closed", self.conn.key));
        {
            let mut st = self.conn.state.lock();
            st.closed = true;
            st.fail_all(&err);
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.forget(self.conn);
        }
    }
}

/// Drives one connection: connects when there is something to send, pairs
/// written publishes and acknowledgements with their senders, fails them all
/// on a connection error, and ends after `idle` without use.
async fn run(conn: Arc<Conn>, mut event_loop: EventLoop, pool: Weak<Pool>, idle: Duration) {
    let _close = CloseOnDrop {
        conn: &conn,
        pool: pool.clone(),
    };
    let mut connected = false;
    loop {
        if !connected {
            // Not connected: wait for a send (or the idle timer) before
            // trying, so a broker that is down costs nothing while unused.
            loop {
                let wait = {
                    let mut st = conn.state.lock();
                    if st.has_demand() {
                        break;
                    }
                    let unused = st.last_used.elapsed();
                    if unused >= idle || pool.strong_count() == 0 {
                        st.closed = true;
                        return;
                    }
                    idle - unused
                };
                let _ = tokio::time::timeout(wait, conn.wake.notified()).await;
            }
        }
        match event_loop.poll().await {
            Ok(ev) => {
                if matches!(ev, Ev::Connected { .. }) {
                    connected = true;
                    tracing::debug!(key = %conn.key, "MQTT connected");
                }
                conn.state.lock().handle(&conn.key, ev);
            }
            Err(err) => {
                if connected {
                    tracing::debug!(key = %conn.key, error = %err, "MQTT connection lost");
                } else {
                    tracing::debug!(key = %conn.key, error = %err, "MQTT connection failed");
                }
                connected = false;
                let err = with_key(err, &conn.key);
                let mut st = conn.state.lock();
                for ev in event_loop.take_buffered() {
                    st.handle(&conn.key, ev);
                }
                st.fail_all(&err);
                event_loop.reset();
            }
        }
        if connected {
            let close = {
                let mut st = conn.state.lock();
                let unused = !st.has_demand() && st.last_used.elapsed() >= idle;
                if unused || pool.strong_count() == 0 {
                    st.closed = true;
                }
                st.closed
            };
            if close {
                disconnect(&conn, &mut event_loop).await;
                return;
            }
        }
    }
}

/// Sends DISCONNECT and waits briefly for it to be written.
async fn disconnect(conn: &Conn, event_loop: &mut EventLoop) {
    conn.client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match event_loop.poll().await {
                Ok(Ev::Disconnected) | Err(_) => break,
                Ok(ev) => conn.state.lock().handle(&conn.key, ev),
            }
        }
    })
    .await;
    tracing::debug!(key = %conn.key, "MQTT connection closed (idle)");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(uri: &str) -> Result<MqttEndpoint, String> {
        MqttEndpoint::parse(uri).map_err(|e| e.0)
    }

    #[track_caller]
    fn check(uri: &str, expected: (bool, &str, u16, Option<&str>, Option<&str>, &str)) {
        let e = endpoint(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        let got = (
            e.tls,
            e.host.as_str(),
            e.port,
            e.username.as_deref(),
            e.password.as_deref(),
            e.topic.as_str(),
        );
        assert_eq!(got, expected, "{uri}");
    }

    #[test]
    fn parses_endpoints() {
        check("mqtt://broker/t", (false, "broker", 1883, None, None, "t"));
        check("mqtts://broker/t", (true, "broker", 8883, None, None, "t"));
        check(
            "mqtt://Broker:8085/a/b/c",
            (false, "broker", 8085, None, None, "a/b/c"),
        );
        check(
            "mqtt://user@h/t",
            (false, "h", 1883, Some("user"), None, "t"),
        );
        check(
            "mqtt://u:p@h:1/t",
            (false, "h", 1, Some("u"), Some("p"), "t"),
        );
        check(
            "mqtt://u%40x:p%3Aw@h/t",
            (false, "h", 1883, Some("u@x"), Some("p:w"), "t"),
        );
        check("mqtt://:pw@h/t", (false, "h", 1883, None, Some("pw"), "t"));
        check(
            "mqtt://[::1]:1884/t",
            (false, "[::1]", 1884, None, None, "t"),
        );
        check(
            "mqtt://h/my%20topic/x",
            (false, "h", 1883, None, None, "my topic/x"),
        );
        check("mqtt://h/a//b/", (false, "h", 1883, None, None, "a//b/"));
        check("mqtt://h//lead", (false, "h", 1883, None, None, "/lead"));
        check(
            "mqtt://h/ngsi%2Dld",
            (false, "h", 1883, None, None, "ngsi-ld"),
        );
    }

    #[test]
    fn refuses_bad_endpoints() {
        for uri in [
            "",
            "not a uri",
            "http://h/t",
            "mqtt://h",
            "mqtt://h/",
            "mqtt:///t",
            "mqtt:/t",
            "mqtt://h:0/t",
            "mqtt://h:70000/t",
            "mqtt://h/a/+/b",
            "mqtt://h/a/%23",
            "mqtt://h/a/#",
            "mqtt://h/a#frag",
            "mqtt://h/a?x=1",
            "mqtt://h/a%00b",
            "mqtt://h/a%0Ab",
            "mqtt://h/%FF",
            "mqtt://%FF@h/t",
        ] {
            assert!(endpoint(uri).is_err(), "{uri:?} should be refused");
        }
        let long = format!("mqtt://h/{}", "a".repeat(70_000));
        assert!(endpoint(&long).is_err());
    }

    #[test]
    fn reads_notifier_info() {
        let info = |pairs: &[(&str, &str)]| {
            let v: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            MqttSettings::from_notifier_info(&v).map_err(|e| e.0)
        };
        let s = |version, qos| Ok(MqttSettings { version, qos });
        assert_eq!(info(&[]), s(MqttVersion::V311, 0));
        assert_eq!(info(&[("MQTT-QoS", "1")]), s(MqttVersion::V311, 1));
        assert_eq!(info(&[("MQTT-QoS", "2")]), s(MqttVersion::V311, 2));
        assert_eq!(info(&[("MQTT-Version", "mqtt5.0")]), s(MqttVersion::V5, 0));
        assert_eq!(
            info(&[("mqtt-version", "MQTT3.1.1"), ("mqtt-qos", " 2 ")]),
            s(MqttVersion::V311, 2)
        );
        assert_eq!(info(&[("other", "x")]), s(MqttVersion::V311, 0));
        assert!(info(&[("MQTT-QoS", "3")]).is_err());
        assert!(info(&[("MQTT-QoS", "")]).is_err());
        assert!(info(&[("MQTT-Version", "mqtt3.1")]).is_err());
        assert!(info(&[("MQTT-Version", "5")]).is_err());
    }

    #[test]
    fn builds_the_message() {
        let headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Link".to_string(), "<http://ctx>; rel=\"x\"".to_string()),
            ("k".to_string(), "1".to_string()),
            ("k".to_string(), "2".to_string()),
        ];
        let body = br#"{"id":"urn:n:1","type":"Notification","data":[]}"#;
        let msg = message(&headers, body).expect("valid");
        let v: serde_json::Value = serde_json::from_slice(&msg).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "metadata": {
                    "Content-Type": "application/json",
                    "Link": "<http://ctx>; rel=\"x\"",
                    "k": "2"
                },
                "body": {"id": "urn:n:1", "type": "Notification", "data": []}
            })
        );
        assert!(message(&headers, b"").is_err());
        assert!(message(&headers, b"{\"a\":").is_err());
        assert!(message(&headers, b"{} {}").is_err());
        assert!(message(&[], b" [1] ").is_ok());
    }

    #[test]
    fn endpoint_display_hides_the_password() {
        let e = MqttEndpoint::parse("mqtt://u:secret@h/t").expect("valid");
        assert!(!format!("{e} {e:?}").contains("secret"));
    }
}
