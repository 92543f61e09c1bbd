//! The IoT gateway as a client of an external MQTT broker (Mosquitto, EMQX,
//! …): devices publish there, dosi subscribes to the FIWARE IoT Agent topics
//! and hands each publish to the shared [`Gateway`], as the embedded broker
//! (`mqtt.rs`) does.
//!
//! - Subscriptions are shared (`$share/<group>/<filter>`, MQTT 5 and
//!   Mosquitto 2 on 3.1.1 too): nodes in one group split the measures.
//! - QoS 1 without loss: the session is persistent (clean session off) and a
//!   publish is acknowledged only once its write returned, so what was
//!   published while dosi was down, or was in flight when it stopped, is
//!   delivered (again) on reconnect. Delivery is at least once.
//! - A persistent session in a share group keeps its share while its client
//!   is away (Mosquitto queues it): a node that leaves for good should have
//!   its session expire on the broker (`persistent_client_expiration`).
//! - Publishes are written by a few workers, one per hash of the topic, so
//!   one device's measures stay in order while different devices' writes
//!   overlap (and share the store's group commits).
//! - The connection is re-opened forever, with back-off; each kind of failure
//!   is logged once until a connection succeeds again.
//!
//! The client also carries what dosi sends to devices ([`MqttOut`], QoS 1).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use dosi_api::iot::MqttOut;
use dosi_api::AppState;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, Publish, QoS,
    SubscribeFilter, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

use crate::config::MqttConfig;
use crate::gateway::{Gateway, FILTERS};

/// The `transport` label of what arrives this way.
pub const TRANSPORT: &str = "mqtt-external";
/// Writers in parallel (each takes the topics hashing to it, in order).
const WORKERS: usize = 8;
/// Publishes queued per writer before the connection stops being read.
const WORKER_QUEUE: usize = 256;
/// Requests (acks, subscriptions, downlink publishes) queued for the connection.
const REQUEST_QUEUE: usize = 4096;
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where an external broker is and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
}

/// Parses `mqtt[s]://[user[:password]@]host[:port][/]`.
fn parse_url(raw: &str) -> anyhow::Result<Target> {
    let url = url::Url::parse(raw).with_context(|| format!("mqtt.external_url '{raw}'"))?;
    let tls = match url.scheme() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        s => bail!("mqtt.external_url '{raw}': scheme '{s}' is not mqtt or mqtts"),
    };
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.trim_matches(['[', ']']).to_string(),
        _ => bail!("mqtt.external_url '{raw}' has no host"),
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        bail!("mqtt.external_url '{raw}': only scheme, credentials, host and port are used");
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Target {
        tls,
        port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
        host,
        username: Some(url.username()).filter(|u| !u.is_empty()).map(decode),
        password: url.password().map(decode),
    })
}

/// The client id when none is configured: "dosi-" and the first 18
/// characters of the node id's last part (23 bytes: what every MQTT 3.1.1
/// broker must accept).
fn default_client_id(node_id: &str) -> String {
    let tail = node_id.rsplit([':', '-']).next().unwrap_or(node_id);
    let tail: String = tail
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(18)
        .collect();
    format!("dosi-{tail}")
}

/// rustls with the ring provider and the system's root certificates.
fn system_tls() -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        bail!("mqtts: no trusted root certificates found on this system");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Downlink publishes through the external broker.
struct ExternalOut(AsyncClient);

impl MqttOut for ExternalOut {
    fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), String> {
        self.0
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .map_err(|e| format!("external MQTT broker: {e}"))
    }
}

/// Connects to the external broker of `cfg.external_url` and starts the
/// tasks that ingest what devices publish there. Sets `st.mqtt_out` unless
/// the embedded broker did. Returns the connection task, to be aborted on
/// shutdown (the writers end with it).
pub fn start(cfg: &MqttConfig, st: AppState, node_id: &str) -> anyhow::Result<JoinHandle<()>> {
    let target = parse_url(&cfg.external_url)?;
    let group = cfg.external_share_group.trim();
    if group.is_empty() || group.contains(['/', '+', '#']) {
        bail!(
            "mqtt.external_share_group '{group}' must be a non-empty name without '/', '+' or '#'"
        );
    }
    let client_id = if cfg.external_client_id.is_empty() {
        default_client_id(node_id)
    } else {
        cfg.external_client_id.clone()
    };
    let mut opts = MqttOptions::new(client_id.clone(), target.host.clone(), target.port);
    opts.set_keep_alive(KEEP_ALIVE)
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(cfg.max_payload_bytes.saturating_add(1024), 64 * 1024);
    let username = Some(cfg.external_username.clone())
        .filter(|u| !u.is_empty())
        .or(target.username.clone());
    let password = Some(cfg.external_password.clone())
        .filter(|p| !p.is_empty())
        .or(target.password.clone());
    if let Some(u) = username {
        opts.set_credentials(u, password.unwrap_or_default());
    } else if password.is_some() {
        bail!("mqtt.external_password is set without a user name");
    }
    if target.tls {
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            system_tls()?,
        )));
    }
    let (client, events) = AsyncClient::new(opts, REQUEST_QUEUE);
    let out: Arc<dyn MqttOut> = Arc::new(ExternalOut(client.clone()));
    // The embedded broker, when there is one, keeps the downlink.
    let _ = st.mqtt_out.set(out);

    let gw = Arc::new(Gateway::new(st));
    // Owned by the connection task: aborting it aborts the writers too, so
    // nothing is written once `serve` flushes the store.
    let mut writers = JoinSet::new();
    let workers: Vec<mpsc::Sender<Publish>> = (0..WORKERS)
        .map(|_| {
            let (tx, rx) = mpsc::channel(WORKER_QUEUE);
            writers.spawn(write_loop(rx, gw.clone(), client.clone()));
            tx
        })
        .collect();
    let filters: Vec<SubscribeFilter> = FILTERS
        .iter()
        .map(|f| SubscribeFilter::new(format!("$share/{group}/{f}"), QoS::AtLeastOnce))
        .collect();
    let shown = format!(
        "{}://{}:{}",
        if target.tls { "mqtts" } else { "mqtt" },
        target.host,
        target.port
    );
    info!(broker = %shown, client_id = %client_id, group = %group, "IoT gateway connecting to the external MQTT broker");
    Ok(tokio::spawn(async move {
        let _writers = writers;
        connection_loop(events, client, filters, workers, shown).await;
    }))
}

/// Drives the connection: (re)connects with back-off, subscribes after each
/// CONNACK and passes publishes to the writers.
async fn connection_loop(
    mut events: EventLoop,
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    workers: Vec<mpsc::Sender<Publish>>,
    broker: String,
) {
    let mut backoff = BACKOFF_FIRST;
    let mut last_failure: Option<String> = None;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if last_failure.take().is_some() {
                    info!(broker = %broker, "connected to the external MQTT broker again");
                } else {
                    info!(broker = %broker, session_present = ack.session_present, "connected to the external MQTT broker");
                }
                backoff = BACKOFF_FIRST;
                // A resumed session keeps its subscriptions; subscribing again
                // is harmless and covers a broker that lost them.
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
                    warn!(error = %e, "could not queue the subscriptions to the external MQTT broker");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    .count();
                if refused > 0 {
                    warn!(broker = %broker, refused, "the external MQTT broker refused subscriptions (ACL? shared subscriptions?)");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let i = shard(&p.topic);
                if workers[i].send(p).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let kind = failure_kind(&e);
                if last_failure.as_deref() != Some(kind.as_str()) {
                    warn!(broker = %broker, error = %e, "external MQTT broker connection failed; retrying with back-off");
                    last_failure = Some(kind);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Writes one worker's publishes in order, acknowledging each after its
/// write returned (refused payloads too: they would be refused again).
async fn write_loop(mut rx: mpsc::Receiver<Publish>, gw: Arc<Gateway>, client: AsyncClient) {
    while let Some(p) = rx.recv().await {
        // Refusals are counted and logged by the gateway.
        let _ = gw
            .handle_publish(TRANSPORT, &p.topic, &p.payload, None)
            .await;
        if client.ack(&p).await.is_err() {
            return;
        }
    }
}

fn shard(topic: &str) -> usize {
    let mut h = DefaultHasher::new();
    topic.hash(&mut h);
    (h.finish() % WORKERS as u64) as usize
}

/// What is logged once: the failure without its varying details.
fn failure_kind(e: &ConnectionError) -> String {
    match e {
        ConnectionError::Io(io) => format!("io:{:?}", io.kind()),
        ConnectionError::ConnectionRefused(code) => format!("refused:{code:?}"),
        other => {
            let s = other.to_string();
            s.split(':').next().unwrap_or(&s).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 1884));
        let t = parse_url("mqtts://u%40x:p%3Aw@broker.example/").unwrap();
        assert_eq!((t.tls, t.port), (true, 8883));
        assert_eq!(t.username.as_deref(), Some("u@x"));
        assert_eq!(t.password.as_deref(), Some("p:w"));
        assert_eq!(parse_url("mqtt://h").unwrap().port, 1883);
        assert_eq!(parse_url("mqtt://[::1]:9").unwrap().host, "::1");
        for bad in ["http://h", "mqtt://h/topic", "127.0.0.1:1883", "mqtt://"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids() {
        assert_eq!(
            default_client_id("urn:ngsi-ld:ContextSource:dosi-0123456789abcdef0123456789abcdef"),
            "dosi-0123456789abcdef01"
        );
        assert!(default_client_id("x").len() <= 23);
    }
}
