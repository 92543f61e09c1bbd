//! The IoT gateway's embedded MQTT broker (rmqtt, ADR 9).
//!
//! Devices connect with their MQTT username and password (checked against
//! the IoT `Registry`), publish measures on their own FIWARE IoT Agent topics
//! and subscribe to their own command topics. Everything is decided in
//! rmqtt's hooks, which rmqtt awaits before it answers the client:
//! - CONNECT: `ClientAuthenticate` → `Registry::authenticate_mqtt`.
//! - SUBSCRIBE: `ClientSubscribeCheckAcl` → [`gateway::may_subscribe`].
//! - PUBLISH: `MessagePublishCheckAcl` → [`Gateway::handle_publish`] with the
//!   device's identity. The measure is written before the hook returns, so a
//!   PUBACK means "stored"; a refused publish gets PUBACK 0x87 (MQTT 5) or a
//!   disconnect (3.1.1, which has no negative PUBACK).
//!
//! Commands go the other way through [`Downlink`], the broker's
//! [`MqttOut`], set into `AppState::mqtt_out`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use async_trait::async_trait;
use dosi_api::iot::MqttOut;
use dosi_api::AppState;
use dosi_iot::DeviceIdentity;
use dosi_ngsi::ErrorKind;
use parking_lot::Mutex;
use rmqtt::codec::types::{Publish as CodecPublish, QoS, MQTT_LEVEL_5};
use rmqtt::codec::v5::{PublishAckReason, SubscribeAckReason};
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::{Builder, Listener};
use rmqtt::server::MqttServer;
use rmqtt::session::{Session, SessionState};
use rmqtt::types::{
    AuthResult, From, Id, Publish, PublishAclResult, PublishResult, SubscribeAclResult,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::MqttConfig;
use crate::gateway::{self, Gateway};

/// Commands waiting to be handed to the broker, at most.
const DOWNLINK_QUEUE: usize = 10_000;

/// The running broker.
pub struct Mqtt {
    /// The plain listener's address, when there is one.
    pub addr: Option<SocketAddr>,
    /// The TLS listener's address, when there is one.
    pub tls_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Mqtt {
    /// Stops the listeners and the downlink; connected clients are dropped.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Binds the listeners of `cfg`, hooks the broker to the gateway and starts
/// it; sets `st.mqtt_out`. `None` when no listener is configured, or when
/// the *default* plain address is taken (another broker holds 1883) and no
/// TLS listener is configured.
pub async fn start(cfg: &MqttConfig, st: AppState) -> anyhow::Result<Option<Mqtt>> {
    let Some(iot) = st.iot.clone() else {
        bail!("the MQTT broker needs the IoT device registry");
    };
    let plain = if cfg.addr.is_empty() {
        None
    } else {
        let laddr: SocketAddr = cfg
            .addr
            .parse()
            .with_context(|| format!("mqtt.addr '{}' is not an address", cfg.addr))?;
        match listener_builder(cfg, "dosi/mqtt", laddr).bind() {
            Ok(l) => Some(l.tcp()?),
            Err(e) if !cfg.addr_explicit && addr_in_use(&e) => {
                warn!(addr = %laddr, "the default MQTT address is taken (another broker?): \
                    running without the embedded MQTT broker; set mqtt.addr to use another one");
                None
            }
            Err(e) => return Err(e).with_context(|| format!("binding MQTT listener {laddr}")),
        }
    };
    let tls = if cfg.tls_addr.is_empty() {
        None
    } else {
        let laddr: SocketAddr = cfg
            .tls_addr
            .parse()
            .with_context(|| format!("mqtt.tls_addr '{}' is not an address", cfg.tls_addr))?;
        if cfg.tls_cert.is_empty() || cfg.tls_key.is_empty() {
            bail!("mqtt.tls_addr needs mqtt.tls_cert and mqtt.tls_key (PEM files)");
        }
        let l = listener_builder(cfg, "dosi/mqtts", laddr)
            .tls_cert(Some(cfg.tls_cert.clone()))
            .tls_key(Some(cfg.tls_key.clone()))
            .bind()
            .with_context(|| format!("binding MQTT TLS listener {laddr}"))?
            .tls()
            .with_context(|| {
                format!(
                    "loading the MQTT TLS certificate {} and key {}",
                    cfg.tls_cert, cfg.tls_key
                )
            })?;
        Some(l)
    };
    if plain.is_none() && tls.is_none() {
        return Ok(None);
    }
    let addr = plain.as_ref().map(Listener::local_addr).transpose()?;
    let tls_addr = tls.as_ref().map(Listener::local_addr).transpose()?;

    let scx = ServerContext::new()
        .mqtt_max_sessions(cfg.max_connections as isize)
        .build()
        .await;
    let hooks = Hooks(Arc::new(HooksInner {
        gw: Gateway::new(st.clone()),
        iot,
        identities: Mutex::new(HashMap::new()),
    }));
    let register = scx.extends.hook_mgr().register();
    for typ in [
        Type::ClientAuthenticate,
        Type::ClientSubscribeCheckAcl,
        Type::MessagePublishCheckAcl,
    ] {
        register.add(typ, Box::new(hooks.clone())).await;
    }
    register.start().await;

    let mut server = MqttServer::new(scx.clone());
    if let Some(l) = plain {
        server = server.listener_by_id(l, 1);
    }
    if let Some(l) = tls {
        server = server.listener_by_id(l, 2);
    }
    let server = server.build();
    let broker = tokio::spawn(async move {
        if let Err(e) = server.run().await {
            tracing::error!(error = %e, "the MQTT broker stopped");
        }
    });

    let (tx, rx) = mpsc::channel(DOWNLINK_QUEUE);
    let downlink = tokio::spawn(deliver(scx, rx));
    if st.mqtt_out.set(Arc::new(Downlink { tx })).is_err() {
        warn!(
            "another MQTT downlink is already set; commands do not go through the embedded broker"
        );
    }
    Ok(Some(Mqtt {
        addr,
        tls_addr,
        tasks: vec![broker, downlink],
    }))
}

fn listener_builder(cfg: &MqttConfig, name: &str, laddr: SocketAddr) -> Builder {
    Builder::new()
        .name(name)
        .laddr(laddr)
        .nodelay(true)
        .max_connections(cfg.max_connections)
        .max_packet_size(u32::try_from(cfg.max_payload_bytes).unwrap_or(u32::MAX))
        .allow_anonymous(cfg.allow_anonymous)
}

fn addr_in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

/// The broker's hooks: authentication and the per-device topic rules.
#[derive(Clone)]
struct Hooks(Arc<HooksInner>);

struct HooksInner {
    gw: Gateway,
    iot: Arc<dosi_iot::Registry>,
    /// Authenticated devices by MQTT username (unique across services).
    identities: Mutex<HashMap<String, DeviceIdentity>>,
}

/// Who is behind a session.
enum Client {
    /// Connected without a username (`mqtt.allow_anonymous`).
    Anonymous,
    /// An authenticated device.
    Device(DeviceIdentity),
    /// A username whose identity is no longer known: refused.
    Unknown,
}

#[async_trait]
impl Handler for Hooks {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(ci) => {
                // No username: rmqtt lets the client in only when anonymous
                // clients are allowed.
                let Some(user) = ci.username() else {
                    return (true, acc);
                };
                let res = self
                    .authenticate(user, ci.password().map(|p| p.to_vec()))
                    .await;
                (false, Some(HookResult::AuthResult(res)))
            }
            Parameter::ClientSubscribeCheckAcl(s, sub) => {
                let ok = match self.client(s) {
                    Client::Anonymous => true,
                    Client::Device(who) => gateway::may_subscribe(&who, &sub.topic_filter),
                    Client::Unknown => false,
                };
                let res = if ok {
                    SubscribeAclResult::new_success(sub.opts.qos(), None)
                } else {
                    metrics::counter!("dosi_iot_rejected_total", "transport" => "mqtt", "reason" => "forbidden")
                        .increment(1);
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(res)))
            }
            Parameter::MessagePublishCheckAcl(s, p) => {
                let v5 = s.protocol().await.is_ok_and(|v| v == MQTT_LEVEL_5);
                let res = self.publish(self.client(s), &p.topic, &p.payload, v5).await;
                (false, Some(HookResult::PublishAclResult(res)))
            }
            _ => (true, acc),
        }
    }
}

impl Hooks {
    async fn authenticate(&self, user: &str, password: Option<Vec<u8>>) -> AuthResult {
        let Some(password) = password else {
            return AuthResult::BadUsernameOrPassword;
        };
        let iot = self.0.iot.clone();
        let username = user.to_string();
        // Argon2 takes tens of milliseconds: off the async workers.
        let who = tokio::task::spawn_blocking(move || iot.authenticate_mqtt(&username, &password))
            .await
            .ok()
            .flatten();
        match who {
            Some(who) => {
                self.0.identities.lock().insert(user.to_string(), who);
                AuthResult::Allow(false, None)
            }
            None => {
                metrics::counter!("dosi_iot_auth_failures_total", "transport" => "mqtt")
                    .increment(1);
                AuthResult::BadUsernameOrPassword
            }
        }
    }

    fn client(&self, s: &Session) -> Client {
        match &s.id.username {
            None => Client::Anonymous,
            Some(u) => match self.0.identities.lock().get(&**u) {
                Some(who) => Client::Device(who.clone()),
                None => Client::Unknown,
            },
        }
    }

    /// Checks and ingests one publish; the answer the client gets.
    async fn publish(
        &self,
        client: Client,
        topic: &str,
        payload: &[u8],
        v5: bool,
    ) -> PublishAclResult {
        let who = match client {
            Client::Anonymous => None,
            Client::Device(who) => Some(who),
            Client::Unknown => return forbidden(v5, "unknown client"),
        };
        if gateway::parse_command_topic(topic).is_some() {
            return forbidden(v5, "only dosi publishes commands");
        }
        if gateway::parse_topic(topic).is_none() {
            // Anonymous clients may use the broker for anything else;
            // devices only for their own topics.
            return match who {
                None => PublishAclResult::allow(),
                Some(_) => forbidden(v5, "a device publishes only on its own topics"),
            };
        }
        match self
            .0
            .gw
            .handle_publish("mqtt", topic, payload, who.as_ref())
            .await
        {
            Ok(_) => PublishAclResult::allow(),
            Err(e) => {
                let detail = e.detail.clone();
                match e.kind {
                    // Counted and logged by the gateway.
                    ErrorKind::Forbidden | ErrorKind::Unauthorized => refuse(v5, &detail),
                    // The payload is at fault: resending will not help. MQTT
                    // 3.1.1 cannot say so, the gateway counted and logged it.
                    ErrorKind::BadRequestData
                    | ErrorKind::ResourceNotFound
                    | ErrorKind::OperationNotSupported
                    | ErrorKind::InvalidRequest => {
                        if v5 {
                            answer(PublishAckReason::PayloadFormatInvalid, &detail, false)
                        } else {
                            PublishAclResult::allow()
                        }
                    }
                    // Not written (the store failed): no PUBACK, so the
                    // device sends it again.
                    _ => answer(PublishAckReason::ImplementationSpecificError, &detail, !v5),
                }
            }
        }
    }
}

/// A publish refused before the gateway saw it: counted, then [`refuse`].
fn forbidden(v5: bool, why: &str) -> PublishAclResult {
    metrics::counter!("dosi_iot_rejected_total", "transport" => "mqtt", "reason" => "forbidden")
        .increment(1);
    refuse(v5, why)
}

/// A refused publish: PUBACK 0x87 on MQTT 5; MQTT 3.1.1 has no negative
/// acknowledgement, so the client is disconnected rather than told "stored".
fn refuse(v5: bool, why: &str) -> PublishAclResult {
    answer(PublishAckReason::NotAuthorized, why, !v5)
}

fn answer(reason: PublishAckReason, why: &str, disconnect: bool) -> PublishAclResult {
    PublishAclResult(PublishResult::reason_code(
        reason,
        Some(why.to_string().into()),
        disconnect,
    ))
}

/// [`MqttOut`] of the embedded broker: queues commands for [`deliver`].
struct Downlink {
    tx: mpsc::Sender<(String, Vec<u8>)>,
}

impl MqttOut for Downlink {
    fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), String> {
        self.tx
            .try_send((topic.to_string(), payload))
            .map_err(|e| format!("the MQTT downlink queue refused the message: {e}"))
    }
}

/// Hands queued commands to the broker in order, at QoS 1, as if published
/// by a system client (so no ACL hook runs for them).
async fn deliver(scx: ServerContext, mut rx: mpsc::Receiver<(String, Vec<u8>)>) {
    let id = Id::new(scx.node.id(), 0, None, None, "dosi".into(), None);
    while let Some((topic, payload)) = rx.recv().await {
        let p = CodecPublish {
            dup: false,
            retain: false,
            qos: QoS::AtLeastOnce,
            topic: topic.clone().into(),
            packet_id: None,
            payload: payload.into(),
            properties: None,
        };
        let from = From::from_system(id.clone());
        if let Err(e) = SessionState::forwards(&scx, from, Publish::from(p), false, None).await {
            warn!(%topic, error = %e, "an MQTT command could not be handed to the broker");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use dosi_api::contexts::Contexts;
    use dosi_api::{AllowAll, ApiConfig};
    use dosi_iot::credentials::{hash_password, DeviceCredentials};
    use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};
    use dosi_store::Store;
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
    use serde_json::{json, Value};

    use super::*;

    const GAUGE: &str = "urn:ngsi-ld:WaterLevelSensor:gauge1";
    const D2: &str = "urn:ngsi-ld:WaterLevelSensor:d2";

    /// dosi in-process: the API on an ephemeral port, the broker on another,
    /// devices gauge1 (gauge-1/pw1), d1 (d1-user/pw-d1) and d2 provisioned.
    struct Bed {
        state: AppState,
        base: String,
        http: reqwest::Client,
        mqtt: Mqtt,
        _api: JoinHandle<()>,
        _dir: tempfile::TempDir,
    }

    impl Drop for Bed {
        fn drop(&mut self) {
            for t in &self.mqtt.tasks {
                t.abort();
            }
            self._api.abort();
        }
    }

    async fn bed(tune: impl FnOnce(&mut MqttConfig)) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let opts = EmbeddedOptions {
            fsync: false,
            ..Default::default()
        };
        let store: Arc<dyn Store> = EmbeddedStore::open(dir.path(), opts).unwrap();
        let broker = Arc::new(dosi_broker::Broker::new(
            store.clone(),
            Arc::new(dosi_bus::InProcessBus::new(1024)),
        ));
        let contexts = Arc::new(Contexts::new(
            "http://127.0.0.1:1/ngsi-ld/v1/jsonldContexts".into(),
            Duration::from_millis(200),
        ));
        let notifier = dosi_notify::Notifier::open(
            dosi_notify::NotifierConfig::new(dir.path().join("outbox")),
            broker.clone(),
            contexts.clone(),
        )
        .await
        .unwrap();
        let history = dosi_history::History::open(dosi_history::HistoryConfig::new(
            dir.path().join("history"),
        ))
        .unwrap();
        broker.add_hook(history.hook());
        let state = AppState::new(dosi_api::state::Shared {
            broker,
            contexts,
            notifier,
            history: Some(history),
            iot: Some(dosi_iot::Registry::open(store).await.unwrap()),
            mqtt_out: Default::default(),
            iot_run: Default::default(),
            sim: Default::default(),
            config: Arc::new(ApiConfig::default()),
            metrics: None,
            ready: Arc::new(AtomicBool::new(true)),
            node: Arc::new(dosi_api::state::NodeInfo::new(
                "urn:ngsi-ld:ContextSource:test",
            )),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = dosi_api::router(state.clone(), Arc::new(AllowAll));
        let api = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let http = reqwest::Client::new();
        let group = json!({"services": [{"apikey": "k1", "resource": "/iot/d",
            "entity_type": "WaterLevelSensor", "autoprovision": false,
            "attributes": [{"object_id": "h", "name": "height", "type": "Number"}]}]});
        let devices: Vec<Value> = ["gauge1", "d1", "d2"]
            .iter()
            .map(|d| {
                json!({"device_id": d, "apikey": "k1",
                    "entity_name": format!("urn:ngsi-ld:WaterLevelSensor:{d}"),
                    "entity_type": "WaterLevelSensor", "transport": "MQTT"})
            })
            .collect();
        let devices = json!({ "devices": devices });
        for (path, body) in [("/iot/services", group), ("/iot/devices", devices)] {
            let r = http
                .post(format!("{base}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{path}: {}", r.text().await.unwrap());
        }
        let iot = state.iot.clone().unwrap();
        for (device, user, pw) in [("gauge1", "gauge-1", "pw1"), ("d1", "d1-user", "pw-d1")] {
            let c = DeviceCredentials {
                mqtt_username: Some(user.into()),
                mqtt_password_hash: Some(hash_password(pw).unwrap()),
                ..Default::default()
            };
            iot.set_credentials("", device, c).await.unwrap();
        }

        let mut cfg = MqttConfig {
            addr: "127.0.0.1:0".into(),
            addr_explicit: true,
            ..MqttConfig::default()
        };
        tune(&mut cfg);
        let mqtt = start(&cfg, state.clone()).await.unwrap().unwrap();
        Bed {
            state,
            base,
            http,
            mqtt,
            _api: api,
            _dir: dir,
        }
    }

    impl Bed {
        fn port(&self) -> u16 {
            self.mqtt.addr.unwrap().port()
        }

        async fn entity(&self, id: &str) -> Option<Value> {
            let r = self
                .http
                .get(format!("{}/ngsi-ld/v1/entities/{id}", self.base))
                .send()
                .await
                .unwrap();
            (r.status() == 200).then_some(r.json().await.unwrap())
        }

        async fn height(&self) -> Option<Value> {
            Some(self.entity(GAUGE).await?["height"]["value"].clone())
        }
    }

    fn opts(id: &str, host: &str, port: u16, login: Option<(&str, &str)>) -> MqttOptions {
        let mut o = MqttOptions::new(id, host, port);
        o.set_keep_alive(Duration::from_secs(10));
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        o
    }

    type Incoming = tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>;

    /// An MQTT 3.1.1 client whose incoming packets (or its connection
    /// error, after which it stops) arrive on the receiver.
    fn client(o: MqttOptions) -> (AsyncClient, Incoming, JoinHandle<()>) {
        let (client, mut events) = AsyncClient::new(o, 16);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(p)) => {
                        let _ = tx.send(Ok(p));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:?}")));
                        return;
                    }
                }
            }
        });
        (client, rx, task)
    }

    /// The first item of `rx` that `f` accepts, skipping the others.
    async fn next<I, T>(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<I>,
        what: &str,
        mut f: impl FnMut(I) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let item = tokio::time::timeout(left, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("the client stopped before {what}"));
            if let Some(v) = f(item) {
                return v;
            }
        }
    }

    async fn connected(rx: &mut Incoming) {
        next(rx, "CONNACK", |p| match p {
            Ok(Packet::ConnAck(_)) => Some(()),
            Ok(_) => None,
            Err(e) => panic!("connection failed: {e}"),
        })
        .await
    }

    async fn acked(rx: &mut Incoming) {
        next(rx, "PUBACK", |p| match p {
            Ok(Packet::PubAck(_)) => Some(()),
            Ok(_) => None,
            Err(e) => panic!("connection failed: {e}"),
        })
        .await
    }

    /// Waits for the connection's error (refusal or disconnect).
    async fn failed(rx: &mut Incoming) -> String {
        next(rx, "the connection to fail", |p| p.err()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_publishes_with_its_credentials_and_the_ack_means_written() {
        let t = bed(|_| {}).await;
        let (c, mut rx, _task) = client(opts(
            "gauge1",
            "127.0.0.1",
            t.port(),
            Some(("gauge-1", "pw1")),
        ));
        connected(&mut rx).await;

        c.publish("/k1/gauge1/attrs", QoS::AtLeastOnce, false, "h|2.4")
            .await
            .unwrap();
        acked(&mut rx).await;
        // Acknowledged means written: read at once, no polling.
        assert_eq!(t.height().await, Some(json!(2.4)));

        c.publish(
            "/json/k1/gauge1/attrs",
            QoS::AtLeastOnce,
            false,
            r#"{"h":2.6}"#,
        )
        .await
        .unwrap();
        acked(&mut rx).await;
        assert_eq!(t.height().await, Some(json!(2.6)));

        let url = format!(
            "{}/ngsi-ld/v1/temporal/entities/{GAUGE}?attrs=height&options=temporalValues&timeproperty=modifiedAt",
            t.base
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let h: Value = t.http.get(&url).send().await.unwrap().json().await.unwrap();
            let values: Vec<Value> = h["height"]["values"]
                .as_array()
                .map(|a| a.iter().map(|v| v[0].clone()).collect())
                .unwrap_or_default();
            if values == vec![json!(2.4), json!(2.6)] {
                break;
            }
            assert!(Instant::now() < deadline, "history: {h}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_or_missing_credentials_are_refused() {
        let t = bed(|_| {}).await;
        for login in [Some(("gauge-1", "wrong")), Some(("nobody", "pw1")), None] {
            let (c, mut rx, _task) = client(opts("gauge1", "127.0.0.1", t.port(), login));
            let _ = c
                .publish("/k1/gauge1/attrs", QoS::AtLeastOnce, false, "h|9")
                .await;
            let e = failed(&mut rx).await;
            assert!(e.contains("ConnectionRefused"), "{login:?}: {e}");
        }
        assert_eq!(t.entity(GAUGE).await, None, "nothing written");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_cannot_use_another_devices_topics() {
        use rumqttc::v5::mqttbytes::v5::{Packet as P5, PubAckReason, SubscribeReasonCode};
        use rumqttc::v5::mqttbytes::QoS as Q5;
        use rumqttc::v5::{AsyncClient as C5, Event as E5, MqttOptions as O5};

        let t = bed(|_| {}).await;
        // MQTT 5: a negative PUBACK and SUBACK.
        let mut o = O5::new("d1", "127.0.0.1", t.port());
        o.set_credentials("d1-user", "pw-d1");
        let (c, mut events) = C5::new(o, 16);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _task = tokio::spawn(async move {
            while let Ok(e) = events.poll().await {
                if let E5::Incoming(p) = e {
                    let _ = tx.send(p);
                }
            }
        });
        next(&mut rx, "CONNACK", |p| {
            matches!(p, P5::ConnAck(_)).then_some(())
        })
        .await;
        c.publish("/k1/d2/attrs", Q5::AtLeastOnce, false, "h|1")
            .await
            .unwrap();
        let reason = next(&mut rx, "PUBACK", |p| match p {
            P5::PubAck(a) => Some(a.reason),
            _ => None,
        })
        .await;
        assert_eq!(reason, PubAckReason::NotAuthorized);
        // Nor may it fake a command for another device.
        c.publish("/k1/d2/cmd", Q5::AtLeastOnce, false, "d2@open")
            .await
            .unwrap();
        let reason = next(&mut rx, "PUBACK", |p| match p {
            P5::PubAck(a) => Some(a.reason),
            _ => None,
        })
        .await;
        assert_eq!(reason, PubAckReason::NotAuthorized);
        for (filter, ok) in [
            ("/k1/d2/cmd", false),
            ("/k1/+/cmd", false),
            ("/k1/d1/cmd", true),
        ] {
            c.subscribe(filter, Q5::AtLeastOnce).await.unwrap();
            let code = next(&mut rx, "SUBACK", |p| match p {
                P5::SubAck(a) => Some(a.return_codes[0]),
                _ => None,
            })
            .await;
            let granted = matches!(code, SubscribeReasonCode::Success(_));
            assert_eq!(granted, ok, "{filter}: {code:?}");
        }
        // d1's own topic works on the same connection.
        c.publish("/k1/d1/attrs", Q5::AtLeastOnce, false, "h|1.5")
            .await
            .unwrap();
        let reason = next(&mut rx, "PUBACK", |p| match p {
            P5::PubAck(a) => Some(a.reason),
            _ => None,
        })
        .await;
        assert_eq!(reason, PubAckReason::Success);

        // MQTT 3.1.1 has no negative PUBACK: the client is disconnected.
        let (c, mut rx, _task) = client(opts(
            "d1-v3",
            "127.0.0.1",
            t.port(),
            Some(("d1-user", "pw-d1")),
        ));
        connected(&mut rx).await;
        c.publish("/k1/d2/attrs", QoS::AtLeastOnce, false, "h|1")
            .await
            .unwrap();
        failed(&mut rx).await;

        assert_eq!(t.entity(D2).await, None, "d2 was never written");
        let d1 = t.entity("urn:ngsi-ld:WaterLevelSensor:d1").await.unwrap();
        assert_eq!(d1["height"]["value"], json!(1.5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mosquitto_pub_publishes_with_a_password() {
        let bin = "/usr/bin/mosquitto_pub";
        if !std::path::Path::new(bin).exists() {
            eprintln!("skipped: {bin} is not installed");
            return;
        }
        let t = bed(|_| {}).await;
        let port = t.port().to_string();
        let run = |topic: &'static str, msg: &'static str, pw: &'static str| {
            let port = port.clone();
            async move {
                tokio::process::Command::new(bin)
                    .args(["-h", "127.0.0.1", "-p", &port, "-i", "gauge1-mosquitto"])
                    .args(["-u", "gauge-1", "-P", pw, "-q", "1", "-t", topic, "-m", msg])
                    .status()
                    .await
                    .unwrap()
            }
        };
        assert!(run("/k1/gauge1/attrs", "h|3.1", "pw1").await.success());
        assert_eq!(t.height().await, Some(json!(3.1)));
        assert!(run("/json/k1/gauge1/attrs", r#"{"h":3.3}"#, "pw1")
            .await
            .success());
        assert_eq!(t.height().await, Some(json!(3.3)));
        assert!(!run("/k1/gauge1/attrs", "h|9", "wrong").await.success());
        assert_eq!(t.height().await, Some(json!(3.3)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_reach_the_device_subscribed_to_its_cmd_topic() {
        let t = bed(|_| {}).await;
        let (c, mut rx, _task) = client(opts(
            "gauge1",
            "127.0.0.1",
            t.port(),
            Some(("gauge-1", "pw1")),
        ));
        connected(&mut rx).await;
        c.subscribe("/k1/gauge1/cmd", QoS::AtLeastOnce)
            .await
            .unwrap();
        next(&mut rx, "SUBACK", |p| {
            matches!(p, Ok(Packet::SubAck(_))).then_some(())
        })
        .await;
        let out = t.state.mqtt_out.get().expect("the broker sets mqtt_out");
        out.publish("/k1/gauge1/cmd", b"gauge1@ping|1".to_vec())
            .unwrap();
        let p = next(&mut rx, "the command", |p| match p {
            Ok(Packet::Publish(p)) => Some(p),
            _ => None,
        })
        .await;
        assert_eq!(p.topic, "/k1/gauge1/cmd");
        assert_eq!(&p.payload[..], b"gauge1@ping|1");
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }

    /// The IoT Agents' command round trip over the real broker: an NGSI-LD
    /// write of the command attribute → the device receives it on its cmd
    /// topic → answers on cmdexe → `<cmd>_status` OK with the result in
    /// `<cmd>_info`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn command_round_trip_over_mqtt() {
        let t = bed(|_| {}).await;
        dosi_api::iot::start(&t.state);
        let r = t
            .http
            .put(format!("{}/iot/devices/gauge1", t.base))
            .json(&json!({"commands": [{"name": "reset", "type": "command"}]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let (c, mut rx, _task) = client(opts(
            "gauge1",
            "127.0.0.1",
            t.port(),
            Some(("gauge-1", "pw1")),
        ));
        connected(&mut rx).await;
        c.publish("/k1/gauge1/attrs", QoS::AtLeastOnce, false, "h|1.0")
            .await
            .unwrap();
        acked(&mut rx).await;
        c.subscribe("/k1/gauge1/cmd", QoS::AtLeastOnce)
            .await
            .unwrap();
        next(&mut rx, "SUBACK", |p| {
            matches!(p, Ok(Packet::SubAck(_))).then_some(())
        })
        .await;

        let r = t
            .http
            .post(format!("{}/ngsi-ld/v1/entities/{GAUGE}/attrs", t.base))
            .json(&json!({"reset": {"type": "Property", "value": "now"}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let p = next(&mut rx, "the command", |p| match p {
            Ok(Packet::Publish(p)) => Some(p),
            _ => None,
        })
        .await;
        assert_eq!(p.topic, "/k1/gauge1/cmd");
        assert_eq!(&p.payload[..], b"gauge1@reset|now");

        c.publish(
            "/k1/gauge1/cmdexe",
            QoS::AtLeastOnce,
            false,
            "gauge1@reset|done",
        )
        .await
        .unwrap();
        acked(&mut rx).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let e = t.entity(GAUGE).await.unwrap();
            if e["reset_status"]["value"] == json!("OK") {
                assert_eq!(e["reset_info"]["value"], json!("done"), "{e}");
                break;
            }
            assert!(Instant::now() < deadline, "status never became OK: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_publishes_over_tls() {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let pem = tempfile::tempdir().unwrap();
        let (cert, key) = (pem.path().join("cert.pem"), pem.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let t = bed(|c| {
            c.addr = String::new();
            c.tls_addr = "127.0.0.1:0".into();
            c.tls_cert = cert.display().to_string();
            c.tls_key = key.display().to_string();
        })
        .await;
        assert_eq!(t.mqtt.addr, None);
        let port = t.mqtt.tls_addr.unwrap().port();

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut o = opts("gauge1", "localhost", port, Some(("gauge-1", "pw1")));
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
        let (c, mut rx, _task) = client(o);
        connected(&mut rx).await;
        c.publish("/k1/gauge1/attrs", QoS::AtLeastOnce, false, "h|4.2")
            .await
            .unwrap();
        acked(&mut rx).await;
        assert_eq!(t.height().await, Some(json!(4.2)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_taken_default_address_is_skipped_but_a_configured_one_is_an_error() {
        let t = bed(|_| {}).await;
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut cfg = MqttConfig {
            addr: taken.local_addr().unwrap().to_string(),
            addr_explicit: false,
            ..MqttConfig::default()
        };
        assert!(start(&cfg, t.state.clone()).await.unwrap().is_none());
        cfg.addr_explicit = true;
        let e = start(&cfg, t.state.clone()).await.err().expect("an error");
        assert!(format!("{e:#}").contains("binding MQTT listener"), "{e:#}");
    }
}
