//! MQTT notifications through `MqttTransport`.
//!
//! Against a real broker (Mosquitto) when `DOSI_TEST_MQTT_URL` is set (e.g.
//! `mqtt://127.0.0.1:1883`, anonymous access); those tests say they skipped
//! otherwise. The rest run against a small in-process fake broker on an
//! ephemeral port, which lets them count connections, refuse credentials,
//! stay silent or drop the connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dosi_notify::deliver::{Outgoing, SendError, Transport};
use dosi_notify::mqtt::{MqttConfig, MqttTransport};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

const LINK: &str = "<https://example.org/ctx.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";

/// One notification to `uri` with `notifierInfo` `info`; its body carries `seq`.
fn notification(uri: &str, info: &[(&str, &str)], seq: usize) -> Outgoing {
    let body = json!({
        "id": format!("urn:ngsi-ld:Notification:{seq}"),
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:mqtt-test",
        "notifiedAt": "2024-01-01T00:00:00.000Z",
        "data": [{
            "id": "urn:ngsi-ld:Building:b1",
            "type": "Building",
            "seq": {"type": "Property", "value": seq}
        }]
    });
    Outgoing {
        notification_id: format!("urn:ngsi-ld:Notification:{seq}"),
        subscription_id: "urn:ngsi-ld:Subscription:mqtt-test".into(),
        tenant: "t1".into(),
        uri: uri.into(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Link".into(), LINK.into()),
            ("NGSILD-Tenant".into(), "t1".into()),
            ("test-receiver-key".into(), "test-receiver-info".into()),
        ],
        notifier_info: info
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: Bytes::from(serde_json::to_vec(&body).expect("json")),
        timeout_ms: 5_000,
    }
}

/// Checks one received message: metadata from the headers, body the
/// notification, and returns its `seq`.
#[track_caller]
fn check_message(payload: &[u8]) -> u64 {
    let msg: Value = serde_json::from_slice(payload).expect("message is JSON");
    let obj = msg.as_object().expect("message is an object");
    assert_eq!(obj.len(), 2, "only metadata and body: {msg}");
    assert_eq!(
        msg["metadata"],
        json!({
            "Content-Type": "application/json",
            "Link": LINK,
            "NGSILD-Tenant": "t1",
            "test-receiver-key": "test-receiver-info"
        })
    );
    let body = &msg["body"];
    assert_eq!(body["type"], "Notification");
    assert_eq!(body["data"][0]["id"], "urn:ngsi-ld:Building:b1");
    assert_eq!(body["data"][0]["type"], "Building");
    body["data"][0]["seq"]["value"].as_u64().expect("seq")
}

fn is_transient(r: &Result<(), SendError>) -> bool {
    matches!(r, Err(SendError::Transient(_)))
}

fn is_permanent(r: &Result<(), SendError>) -> bool {
    matches!(r, Err(SendError::Permanent(_)))
}

/// A TCP port on 127.0.0.1 that nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

/// Polls `cond` until it holds or `within` has passed.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

// ---------------------------------------------------------------------------
// A fake broker: just enough MQTT 3.1.1/5.0 to accept connections and
// publishes, acknowledge them, and misbehave on request.

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Accept everything.
    Normal,
    /// Refuse every CONNECT as not authorized.
    RefuseAuth,
    /// Accept TCP connections and never answer.
    Silent,
    /// Close the connection after acknowledging the first publish.
    DropAfterPublish,
    /// MQTT 5: answer QoS 1 publishes with PUBACK "not authorized".
    RejectPublish,
    /// MQTT 5: refuse (PUBACK/PUBREC "not authorized") the notifications
    /// with an odd `seq`, accept the others.
    RejectOdd,
}

/// A PUBLISH the fake broker received: protocol level, topic, QoS, payload.
type Published = (u8, String, u8, Vec<u8>);

#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    disconnects: AtomicUsize,
    publishes: Mutex<Vec<Published>>,
    /// Protocol level and user name of each CONNECT.
    connects: Mutex<Vec<(u8, Option<String>)>>,
}

struct FakeBroker {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

impl FakeBroker {
    async fn start(behaviour: Behaviour) -> Self {
        Self::start_with(behaviour, None).await
    }

    /// With `tls`, connections are TLS (the broker of an `mqtts` endpoint).
    async fn start_with(behaviour: Behaviour, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                match &tls {
                    None => drop(tokio::spawn(serve(sock, behaviour, s))),
                    Some(tls) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                        tokio::spawn(async move {
                            if let Ok(sock) = acceptor.accept(sock).await {
                                serve(sock, behaviour, s).await;
                            }
                        });
                    }
                }
            }
        });
        Self { addr, seen }
    }

    fn uri(&self, topic: &str) -> String {
        format!("mqtt://{}/{topic}", self.addr)
    }

    fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }
}

async fn read_packet<S: AsyncRead + Unpin>(sock: &mut S) -> Option<(u8, Vec<u8>)> {
    let first = sock.read_u8().await.ok()?;
    let mut len = 0usize;
    for i in 0..4 {
        let b = sock.read_u8().await.ok()?;
        len |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    sock.read_exact(&mut body).await.ok()?;
    Some((first, body))
}

fn varint(bytes: &[u8]) -> (usize, usize) {
    let mut v = 0;
    for (i, b) in bytes.iter().take(4).enumerate() {
        v |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (v, 4)
}

fn mqtt_string(bytes: &[u8], at: usize) -> (String, usize) {
    let n = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
    (
        String::from_utf8_lossy(&bytes[at + 2..at + 2 + n]).into_owned(),
        at + 2 + n,
    )
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    behaviour: Behaviour,
    seen: Arc<Seen>,
) {
    let mut level = 4;
    while let Some((first, body)) = read_packet(&mut sock).await {
        if behaviour == Behaviour::Silent {
            continue;
        }
        let reply: Vec<u8> = match first >> 4 {
            1 => {
                // CONNECT: protocol name, level, flags, keep-alive, [props], client id, [user]
                let (_, at) = mqtt_string(&body, 0);
                level = body[at];
                let flags = body[at + 1];
                let mut at = at + 4;
                if level == 5 {
                    let (n, w) = varint(&body[at..]);
                    at += w + n;
                }
                let (_, mut at) = mqtt_string(&body, at);
                if flags & 0x04 != 0 {
                    if level == 5 {
                        let (n, w) = varint(&body[at..]);
                        at += w + n;
                    }
                    at = mqtt_string(&body, at).1;
                    at = mqtt_string(&body, at).1;
                }
                let user = (flags & 0x80 != 0).then(|| mqtt_string(&body, at).0);
                seen.connects.lock().push((level, user));
                let refuse = behaviour == Behaviour::RefuseAuth;
                match (level, refuse) {
                    (5, false) => vec![0x20, 3, 0, 0, 0],
                    (5, true) => vec![0x20, 3, 0, 0x87, 0],
                    (_, false) => vec![0x20, 2, 0, 0],
                    (_, true) => vec![0x20, 2, 0, 5],
                }
            }
            3 => {
                // PUBLISH
                let qos = (first >> 1) & 3;
                let (topic, mut at) = mqtt_string(&body, 0);
                let mut pkid = [0, 0];
                if qos > 0 {
                    pkid = [body[at], body[at + 1]];
                    at += 2;
                }
                if level == 5 {
                    let (n, w) = varint(&body[at..]);
                    at += w + n;
                }
                let payload = body[at..].to_vec();
                let reject = match behaviour {
                    Behaviour::RejectPublish => true,
                    Behaviour::RejectOdd => check_message(&payload) % 2 == 1,
                    _ => false,
                };
                seen.publishes.lock().push((level, topic, qos, payload));
                match (qos, reject) {
                    (0, _) => vec![],
                    (1, true) => vec![0x40, 3, pkid[0], pkid[1], 0x87],
                    (1, false) => vec![0x40, 2, pkid[0], pkid[1]],
                    (_, true) => vec![0x50, 3, pkid[0], pkid[1], 0x87],
                    (_, false) => vec![0x50, 2, pkid[0], pkid[1]],
                }
            }
            6 => vec![0x70, 2, body[0], body[1]], // PUBREL -> PUBCOMP
            12 => vec![0xD0, 0],                  // PINGREQ -> PINGRESP
            14 => {
                seen.disconnects.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ => vec![],
        };
        if !reply.is_empty() && sock.write_all(&reply).await.is_err() {
            return;
        }
        if first >> 4 == 3 && behaviour == Behaviour::DropAfterPublish {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Without a broker.

#[tokio::test]
async fn bad_endpoints_and_settings_are_permanent() {
    let t = MqttTransport::new();
    let ok_uri = "mqtt://127.0.0.1:1/t";
    let cases: Vec<Outgoing> = vec![
        notification("mqtt://127.0.0.1:1", &[], 0),
        notification("mqtt://127.0.0.1:1/", &[], 0),
        notification("mqtt://127.0.0.1:1/a/+/b", &[], 0),
        notification("mqtt://127.0.0.1:1/a/#", &[], 0),
        notification("mqtt://127.0.0.1:1/a?b", &[], 0),
        notification("mqtt://127.0.0.1:1/a%00", &[], 0),
        notification("mqtt://:99999/a", &[], 0),
        notification("mqtt:///a", &[], 0),
        notification("http://127.0.0.1:1/a", &[], 0),
        notification("mqtt://:secret@127.0.0.1:1/a", &[], 0),
        notification(ok_uri, &[("MQTT-QoS", "3")], 0),
        notification(ok_uri, &[("MQTT-QoS", "one")], 0),
        notification(ok_uri, &[("MQTT-Version", "mqtt3.1")], 0),
        Outgoing {
            body: Bytes::from_static(b"{not json"),
            ..notification(ok_uri, &[], 0)
        },
    ];
    for n in cases {
        let r = t.send(&n).await;
        assert!(is_permanent(&r), "{} {:?}: {r:?}", n.uri, n.notifier_info);
        if let Err(e) = r {
            assert!(!e.to_string().contains("secret"), "password leaked: {e}");
        }
    }
    assert_eq!(t.open_connections(), 0, "no connection for refused input");
}

#[tokio::test]
async fn unreachable_broker_is_transient_before_the_timeout() {
    let t = MqttTransport::new();
    let uri = format!("mqtt://127.0.0.1:{}/t", closed_port().await);
    for info in [
        &[][..],
        &[("MQTT-Version", "mqtt5.0"), ("MQTT-QoS", "1")][..],
    ] {
        let mut n = notification(&uri, info, 0);
        n.timeout_ms = 30_000;
        let r = t.send(&n).await;
        assert!(is_transient(&r), "{r:?}");
        // The refusal is reported, not the per-attempt timeout running out.
        let msg = r.expect_err("failed").to_string();
        assert!(!msg.contains("within"), "{msg}");
    }
    // Timeouts of any size are fine.
    for timeout_ms in [0, u64::MAX] {
        let n = Outgoing {
            timeout_ms,
            ..notification(&uri, &[], 0)
        };
        assert!(is_transient(&t.send(&n).await));
    }
}

// ---------------------------------------------------------------------------
// Against the fake broker.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused_per_broker_user_and_version() {
    let fake = FakeBroker::start(Behaviour::Normal).await;
    let t = MqttTransport::new();
    let plain = fake.uri("a/b");
    for seq in 0..3 {
        t.send(&notification(&plain, &[("MQTT-QoS", "1")], seq))
            .await
            .expect("sent");
    }
    assert_eq!(fake.connections(), 1);
    let user = format!("mqtt://alice:pw@{}/a/b", fake.addr);
    t.send(&notification(&user, &[("MQTT-QoS", "1")], 3))
        .await
        .expect("sent");
    assert_eq!(fake.connections(), 2);
    let v5 = [("MQTT-Version", "mqtt5.0"), ("MQTT-QoS", "2")];
    t.send(&notification(&plain, &v5, 4)).await.expect("sent");
    t.send(&notification(&plain, &v5, 5)).await.expect("sent");
    t.send(&notification(&plain, &[("MQTT-QoS", "2")], 6))
        .await
        .expect("sent");
    assert_eq!(fake.connections(), 3);
    assert_eq!(t.open_connections(), 3);

    let connects = fake.seen.connects.lock().clone();
    assert_eq!(
        connects,
        vec![(4, None), (4, Some("alice".to_string())), (5, None)]
    );
    let publishes = fake.seen.publishes.lock().clone();
    let summary: Vec<(u8, &str, u8, u64)> = publishes
        .iter()
        .map(|(level, topic, qos, payload)| (*level, topic.as_str(), *qos, check_message(payload)))
        .collect();
    assert_eq!(
        summary,
        vec![
            (4, "a/b", 1, 0),
            (4, "a/b", 1, 1),
            (4, "a/b", 1, 2),
            (4, "a/b", 1, 3),
            (5, "a/b", 2, 4),
            (5, "a/b", 2, 5),
            (4, "a/b", 2, 6),
        ]
    );
}

#[tokio::test]
async fn refused_credentials_are_permanent() {
    let fake = FakeBroker::start(Behaviour::RefuseAuth).await;
    let t = MqttTransport::new();
    let uri = format!("mqtt://bob:wrong@{}/t", fake.addr);
    for info in [&[][..], &[("MQTT-Version", "mqtt5.0")][..]] {
        for qos in ["0", "1"] {
            let mut info = info.to_vec();
            info.push(("MQTT-QoS", qos));
            let r = t.send(&notification(&uri, &info, 0)).await;
            assert!(is_permanent(&r), "{info:?}: {r:?}");
            assert!(
                !format!("{r:?}").contains("wrong"),
                "password leaked: {r:?}"
            );
        }
    }
}

#[tokio::test]
async fn mqtt5_negative_puback_fails_the_send() {
    let fake = FakeBroker::start(Behaviour::RejectPublish).await;
    let t = MqttTransport::new();
    let info = [("MQTT-Version", "mqtt5.0"), ("MQTT-QoS", "1")];
    let r = t.send(&notification(&fake.uri("t"), &info, 0)).await;
    assert!(is_permanent(&r), "{r:?}");
    // The connection itself is fine and stays in use.
    let r = t.send(&notification(&fake.uri("t"), &info, 1)).await;
    assert!(is_permanent(&r), "{r:?}");
    assert_eq!(fake.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_get_their_own_acknowledgement() {
    let fake = FakeBroker::start(Behaviour::RejectOdd).await;
    let t = MqttTransport::new();
    let uri = fake.uri("t");
    let sends = (0..60).map(|seq| {
        let t = t.clone();
        let qos = if seq % 4 < 2 { "1" } else { "2" };
        let n = notification(&uri, &[("MQTT-Version", "mqtt5.0"), ("MQTT-QoS", qos)], seq);
        tokio::spawn(async move { (seq, t.send(&n).await) })
    });
    for send in sends.collect::<Vec<_>>() {
        let (seq, r) = send.await.expect("join");
        if seq % 2 == 1 {
            assert!(is_permanent(&r), "{seq}: {r:?}");
        } else {
            assert!(r.is_ok(), "{seq}: {r:?}");
        }
    }
    assert_eq!(fake.connections(), 1);
    assert_eq!(fake.seen.publishes.lock().len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_reopened_on_demand() {
    let fake = FakeBroker::start(Behaviour::Normal).await;
    let t = MqttTransport::with_config(MqttConfig {
        idle_timeout: Duration::from_secs(1),
        keep_alive: Duration::from_secs(1),
        ..MqttConfig::default()
    });
    let uri = fake.uri("t");
    t.send(&notification(&uri, &[("MQTT-QoS", "1")], 0))
        .await
        .expect("sent");
    assert_eq!(t.open_connections(), 1);
    assert!(
        eventually(Duration::from_secs(15), || t.open_connections() == 0).await,
        "idle connection not closed"
    );
    assert!(
        eventually(Duration::from_secs(5), || {
            fake.seen.disconnects.load(Ordering::SeqCst) == 1
        })
        .await,
        "no DISCONNECT sent"
    );
    t.send(&notification(&uri, &[("MQTT-QoS", "1")], 1))
        .await
        .expect("sent after idle close");
    assert_eq!(fake.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_drops_the_connection() {
    let fake = FakeBroker::start(Behaviour::DropAfterPublish).await;
    let t = MqttTransport::new();
    let uri = fake.uri("t");
    for version in ["mqtt3.1.1", "mqtt5.0"] {
        let before = fake.connections();
        let info = [("MQTT-Version", version), ("MQTT-QoS", "1")];
        t.send(&notification(&uri, &info, 0)).await.expect("first");
        // The drop may fail one send (transient) before the reconnect.
        let mut sent = false;
        for seq in 1..=5 {
            match t.send(&notification(&uri, &info, seq)).await {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(SendError::Transient(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(sent, "{version}: never reconnected");
        assert_eq!(fake.connections(), before + 2, "{version}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_times_out_without_delaying_another() {
    let silent = FakeBroker::start(Behaviour::Silent).await;
    let good = FakeBroker::start(Behaviour::Normal).await;
    // The send's own timeout, not the connect timeout, ends the wait.
    let t = MqttTransport::with_config(MqttConfig {
        connect_timeout: Duration::from_secs(30),
        ..MqttConfig::default()
    });
    let mut slow = notification(&silent.uri("t"), &[("MQTT-QoS", "1")], 0);
    slow.timeout_ms = 5_000;
    let slow = tokio::spawn({
        let t = t.clone();
        async move { t.send(&slow).await }
    });
    // Let the silent connection start before the other send.
    assert!(eventually(Duration::from_secs(5), || silent.connections() == 1).await);
    for seq in 0..3 {
        t.send(&notification(&good.uri("t"), &[("MQTT-QoS", "2")], seq))
            .await
            .expect("sent to the good broker");
    }
    assert!(!slow.is_finished(), "the silent broker's send ended early");
    let r = slow.await.expect("join");
    assert!(is_transient(&r), "{r:?}");
    assert!(format!("{r:?}").contains("within 5000 ms"), "{r:?}");
}

/// A certificate for `localhost`: the broker's TLS settings, and client
/// settings that trust it.
fn localhost_tls() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_publishes_over_tls() {
    let (server, client) = localhost_tls();
    let fake = FakeBroker::start_with(Behaviour::Normal, Some(server)).await;
    let t = MqttTransport::with_config(MqttConfig {
        tls: Some(client),
        ..MqttConfig::default()
    });
    let uri = format!("mqtts://localhost:{}/secure/topic", fake.addr.port());
    for (seq, version) in ["mqtt3.1.1", "mqtt5.0"].into_iter().enumerate() {
        let info = [("MQTT-Version", version), ("MQTT-QoS", "1")];
        t.send(&notification(&uri, &info, seq))
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
    }
    let publishes = fake.seen.publishes.lock().clone();
    let got: Vec<(&str, u64)> = publishes
        .iter()
        .map(|(_, topic, _, payload)| (topic.as_str(), check_message(payload)))
        .collect();
    assert_eq!(got, vec![("secure/topic", 0), ("secure/topic", 1)]);

    // A certificate the client does not trust (here: the system's roots do
    // not know it) fails the attempt, as transient.
    let t = MqttTransport::new();
    let r = t.send(&notification(&uri, &[("MQTT-QoS", "1")], 2)).await;
    assert!(is_transient(&r), "{r:?}");
    assert!(format!("{r:?}").contains("certificate"), "{r:?}");
    // A plain MQTT client on a TLS port fails too (no CONNACK ever comes).
    let plain = format!("mqtt://127.0.0.1:{}/t", fake.addr.port());
    let mut n = notification(&plain, &[], 3);
    n.timeout_ms = 500;
    assert!(is_transient(&t.send(&n).await));
}

// ---------------------------------------------------------------------------
// Against a real broker (DOSI_TEST_MQTT_URL).

/// `(host, port)` of the broker under test, or `None` (test skipped).
fn real_broker(test: &str) -> Option<(String, u16)> {
    let Ok(url) = std::env::var("DOSI_TEST_MQTT_URL") else {
        eprintln!("{test}: skipped (DOSI_TEST_MQTT_URL not set)");
        return None;
    };
    let url = url::Url::parse(&url).expect("DOSI_TEST_MQTT_URL is a URL");
    let host = url
        .host_str()
        .expect("DOSI_TEST_MQTT_URL has a host")
        .to_string();
    Some((host, url.port().unwrap_or(1883)))
}

/// A subscriber on `filter`: messages arrive as (topic, payload) once it
/// returns (SUBACK received).
async fn subscribe(
    host: &str,
    port: u16,
    filter: &str,
) -> mpsc::UnboundedReceiver<(String, Vec<u8>)> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let id = format!("dosi-test-{}", uuid::Uuid::new_v4().simple());
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(opts, 16);
    client
        .subscribe(filter, QoS::ExactlyOnce)
        .await
        .expect("subscribe queued");
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = subscribed_tx.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("test subscriber: {e}"),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
        .await
        .expect("SUBACK in time")
        .expect("subscriber alive");
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_receives_every_version_and_qos_in_order() {
    let Some((host, port)) = real_broker("real_broker_receives_every_version_and_qos_in_order")
    else {
        return;
    };
    let base = format!("dosi-test/{}", uuid::Uuid::new_v4().simple());
    let mut rx = subscribe(&host, port, &format!("{base}/#")).await;
    let t = MqttTransport::new();
    let versions = [None, Some("mqtt3.1.1"), Some("mqtt5.0")];
    let qoss = [None, Some("0"), Some("1"), Some("2")];
    const PER_TOPIC: usize = 5;
    let mut expected = Vec::new();
    for v in versions {
        for q in qoss {
            let topic = format!(
                "{base}/{}/{}",
                v.unwrap_or("default"),
                q.unwrap_or("default")
            );
            let mut info = Vec::new();
            if let Some(v) = v {
                info.push(("MQTT-Version", v));
            }
            if let Some(q) = q {
                info.push(("MQTT-QoS", q));
            }
            let uri = format!("mqtt://{host}:{port}/{topic}");
            for seq in 0..PER_TOPIC {
                t.send(&notification(&uri, &info, seq))
                    .await
                    .unwrap_or_else(|e| panic!("{uri} {info:?}: {e}"));
            }
            expected.push(topic);
        }
    }
    // One connection per version: QoS and topic do not open new ones.
    assert_eq!(t.open_connections(), 2);

    let mut got: std::collections::HashMap<String, Vec<u64>> = Default::default();
    let total = expected.len() * PER_TOPIC;
    for _ in 0..total {
        let (topic, payload) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("message in time")
            .expect("subscriber alive");
        got.entry(topic).or_default().push(check_message(&payload));
    }
    let in_order: Vec<u64> = (0..PER_TOPIC as u64).collect();
    for topic in expected {
        assert_eq!(got.get(&topic), Some(&in_order), "{topic}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_is_not_delayed_by_an_unreachable_or_silent_one() {
    let Some((host, port)) =
        real_broker("real_broker_is_not_delayed_by_an_unreachable_or_silent_one")
    else {
        return;
    };
    let topic = format!("dosi-test/{}", uuid::Uuid::new_v4().simple());
    let mut rx = subscribe(&host, port, &topic).await;
    let t = MqttTransport::new();
    let silent = FakeBroker::start(Behaviour::Silent).await;
    let closed = format!("mqtt://127.0.0.1:{}/t", closed_port().await);

    let mut slow = notification(&silent.uri("t"), &[("MQTT-QoS", "1")], 0);
    slow.timeout_ms = 5_000;
    let slow = tokio::spawn({
        let t = t.clone();
        async move { t.send(&slow).await }
    });
    let mut refused = notification(&closed, &[("MQTT-QoS", "1")], 0);
    refused.timeout_ms = 3_000;
    let refused = tokio::spawn({
        let t = t.clone();
        async move { t.send(&refused).await }
    });
    let real = format!("mqtt://{host}:{port}/{topic}");
    for (seq, info) in [[("MQTT-QoS", "1")], [("MQTT-Version", "mqtt5.0")]]
        .iter()
        .enumerate()
    {
        t.send(&notification(&real, info, seq))
            .await
            .expect("sent to the real broker");
    }
    assert!(!slow.is_finished(), "the silent broker's send ended early");

    let r = refused.await.expect("join");
    assert!(is_transient(&r), "{r:?}");
    assert!(
        !format!("{r:?}").contains("within"),
        "refusal, not timeout: {r:?}"
    );
    let r = slow.await.expect("join");
    assert!(is_transient(&r), "{r:?}");

    for seq in 0..2 {
        let (_, payload) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("message in time")
            .expect("subscriber alive");
        assert_eq!(check_message(&payload), seq);
    }
}
