//! The IoT gateway as a client of an external MQTT broker (the machine's
//! Mosquitto, `DOSI_TEST_MQTT_URL`): measures published there by
//! `mosquitto_pub` and by an MQTT client reach the entity and its history,
//! measures published while dosi is down arrive once it is back (persistent
//! session), and two nodes in one share group split the messages.
//!
//! The broker is shared: every run uses its own API key, share group and
//! client ids, and removes its sessions at the end.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

const MOSQUITTO_PUB: &str = "/usr/bin/mosquitto_pub";

/// The broker URL, or `None` (and a note) when the test is off.
fn broker_url() -> Option<String> {
    match std::env::var("DOSI_TEST_MQTT_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            println!("skipped: DOSI_TEST_MQTT_URL not set");
            None
        }
    }
}

/// Host and port of an `mqtt://host:port` URL.
fn host_port(url: &str) -> (String, u16) {
    let rest = url.split("://").nth(1).unwrap_or(url).trim_end_matches('/');
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().expect("port")),
        None => (rest.to_string(), 1883),
    }
}

/// A name no other run uses.
fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Polls `f` until it returns `Some`, failing after a deadline.
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mosquitto_pub(url: &str, topic: &str, payload: &str) {
    let (host, port) = host_port(url);
    let st = Command::new(MOSQUITTO_PUB)
        .args(["-h", &host, "-p", &port.to_string(), "-q", "1", "-t", topic])
        .args(["-m", payload])
        .status()
        .expect("run mosquitto_pub");
    assert!(st.success(), "mosquitto_pub {topic} {payload}");
}

/// Starts dosi taking measures from the external broker.
fn start(dir: &std::path::Path, url: &str, group: &str, client_id: &str) -> common::Server {
    common::start_args(
        dir,
        &[],
        &[
            ("DOSI_MQTT_EXTERNAL_URL", url),
            ("DOSI_MQTT_EXTERNAL_SHARE_GROUP", group),
            ("DOSI_MQTT_EXTERNAL_CLIENT_ID", client_id),
        ],
    )
}

async fn post(http: &reqwest::Client, base: &str, path: &str, body: Value) {
    let r = http
        .post(format!("{base}{path}"))
        .header("fiware-servicepath", "/")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{path}: {}", r.text().await.unwrap());
}

async fn entity(http: &reqwest::Client, base: &str, id: &str) -> Option<Value> {
    let r = http
        .get(format!("{base}/ngsi-ld/v1/entities/{id}"))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// `dosi_iot_messages_total{transport="mqtt-external"}` of one node.
async fn messages(http: &reqwest::Client, base: &str) -> u64 {
    common::metric_sum(http, base, "dosi_iot_messages_total", "mqtt-external").await
}

/// Runs an MQTT client until its CONNACK; the client and its driver task.
async fn connect(url: &str, id: &str, clean: bool) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let (host, port) = host_port(url);
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(Duration::from_secs(10))
        .set_clean_session(clean);
    let (client, mut events) = AsyncClient::new(opts, 64);
    let (tx, connected) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), connected)
        .await
        .expect("connected to the test broker")
        .unwrap();
    (client, driver)
}

/// Removes a persistent session from the shared broker: a clean connect.
async fn forget_session(url: &str, id: &str) {
    let (client, driver) = connect(url, id, true).await;
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_broker_measures_reach_entities_and_history() {
    let Some(url) = broker_url() else { return };
    let run = unique();
    let (key, group, node) = (format!("k{run}"), format!("g{run}"), format!("dosi-t{run}"));
    let id = format!("urn:ngsi-ld:Thermometer:{run}");
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &url, &group, &node);
    let base = server.base.clone();
    let http = reqwest::Client::new();

    post(
        &http,
        &base,
        "/iot/services",
        json!({"services": [{"apikey": key, "resource": "/iot/d", "entity_type": "Thermometer",
            "autoprovision": false,
            "attributes": [{"object_id": "t", "name": "temperature", "type": "Number"}]}]}),
    )
    .await;
    post(
        &http,
        &base,
        "/iot/devices",
        json!({"devices": [{"device_id": "th1", "apikey": key, "entity_name": id,
            "entity_type": "Thermometer", "protocol": "PDI-IoTA-UltraLight", "transport": "MQTT"}]}),
    )
    .await;

    // UltraLight from mosquitto_pub. The subscription may not be in place
    // yet: publish until the value shows.
    let topic = format!("/{key}/th1/attrs");
    until("t|21.5 over the external broker", || async {
        mosquitto_pub(&url, &topic, "t|21.5");
        tokio::time::sleep(Duration::from_millis(200)).await;
        entity(&http, &base, &id)
            .await
            .filter(|e| e["temperature"]["value"] == json!(21.5))
    })
    .await;

    // JSON from an MQTT client (QoS 1).
    let (client, driver) = connect(&url, &format!("dev-t{run}"), true).await;
    client
        .publish(
            format!("/json/{key}/th1/attrs"),
            QoS::AtLeastOnce,
            false,
            r#"{"t":22.5}"#,
        )
        .await
        .unwrap();
    until("{\"t\":22.5}", || async {
        entity(&http, &base, &id)
            .await
            .filter(|e| e["temperature"]["value"] == json!(22.5))
    })
    .await;

    // Measures published while dosi is down are delivered when it is back.
    drop(server);
    mosquitto_pub(&url, &topic, "t|23.5");
    let server = start(dir.path(), &url, &group, &node);
    let base = server.base.clone();
    until("t|23.5, published while dosi was down", || async {
        entity(&http, &base, &id)
            .await
            .filter(|e| e["temperature"]["value"] == json!(23.5))
    })
    .await;

    let hist = format!(
        "{base}/ngsi-ld/v1/temporal/entities/{id}?attrs=temperature&options=temporalValues&timeproperty=modifiedAt"
    );
    let mut values = until("the history of temperature", || async {
        let h: Value = http.get(&hist).send().await.ok()?.json().await.ok()?;
        let values: Vec<Value> = h["temperature"]["values"]
            .as_array()?
            .iter()
            .map(|v| v[0].clone())
            .collect();
        values.contains(&json!(23.5)).then_some(values)
    })
    .await;
    // At least once: a measure may be written again after a restart.
    values.dedup();
    assert!(
        values.ends_with(&[json!(21.5), json!(22.5), json!(23.5)]),
        "{values:?}"
    );

    drop(server);
    driver.abort();
    forget_session(&url, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_in_one_share_group_split_the_messages() {
    let Some(url) = broker_url() else { return };
    let run = unique();
    let (key, group) = (format!("k{run}"), format!("g{run}"));
    let (node_a, node_b) = (format!("dosi-a{run}"), format!("dosi-b{run}"));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(dir_a.path(), &url, &group, &node_a);
    let b = start(dir_b.path(), &url, &group, &node_b);
    let http = reqwest::Client::new();
    let group_body = json!({"services": [{"apikey": key, "resource": "/iot/d",
        "entity_type": "Thing", "autoprovision": true}]});
    for s in [&a, &b] {
        post(&http, &s.base, "/iot/services", group_body.clone()).await;
    }

    let (client, driver) = connect(&url, &format!("dev-s{run}"), true).await;
    // Until both nodes have taken a message, both are subscribed; what went
    // out before either was is not delivered to anyone (and not counted).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        client
            .publish(
                format!("/{key}/probe/attrs"),
                QoS::AtLeastOnce,
                false,
                "n|0",
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (na, nb) = (
            messages(&http, &a.base).await,
            messages(&http, &b.base).await,
        );
        if na > 0 && nb > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "both nodes subscribed");
    }
    // Let the last probe land, then count from there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = messages(&http, &a.base).await + messages(&http, &b.base).await;
    const N: u64 = 200;
    for i in 0..N {
        client
            .publish(
                format!("/{key}/d{}/attrs", i % 20),
                QoS::AtLeastOnce,
                false,
                format!("n|{i}"),
            )
            .await
            .unwrap();
    }
    let sent = sent + N;
    let (na, nb) = until("every message ingested once", || async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (na, nb) = (
            messages(&http, &a.base).await,
            messages(&http, &b.base).await,
        );
        assert!(
            na + nb <= sent,
            "{na} + {nb} > {sent}: a message was ingested twice"
        );
        (na + nb == sent).then_some((na, nb))
    })
    .await;
    assert!(na > 0 && nb > 0, "split {na}/{nb}");

    drop((a, b));
    driver.abort();
    forget_session(&url, &node_a).await;
    forget_session(&url, &node_b).await;
}
