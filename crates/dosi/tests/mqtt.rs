//! The IoT gateway's embedded MQTT broker: a real `dosi serve --mqtt` with
//! anonymous clients allowed, a device provisioned over HTTP, measures
//! published with an MQTT client on the FIWARE IoT Agent topics, read back
//! through the NGSI-LD API. Authentication, ACLs, downlink and TLS are tested
//! in-process (`src/mqtt.rs`), where the test can give a device credentials.

mod common;

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

const ID: &str = "urn:ngsi-ld:WaterLevelSensor:gauge1";

/// A free local port: bound, then released (never 1883).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
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

async fn entity(http: &reqwest::Client, base: &str) -> Option<Value> {
    let r = http
        .get(format!("{base}/ngsi-ld/v1/entities/{ID}"))
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

async fn rejected(http: &reqwest::Client, base: &str) -> u64 {
    // dosi_iot_rejected_total{transport="mqtt",reason="…"}, summed over reasons.
    common::metric_sum(http, base, "dosi_iot_rejected_total", "mqtt").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_measures_update_the_entity_and_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // Devices without credentials: the broker lets them in anonymously, the
    // gateway checks their topics (credentials are tested in `src/mqtt.rs`).
    let server = common::start_args(
        dir.path(),
        &["--mqtt", &addr],
        &[("DOSI_MQTT_ALLOW_ANONYMOUS", "true")],
    );
    let base = server.base.clone();
    let http = reqwest::Client::new();

    let group = json!({"services": [{"apikey": "k1", "resource": "/iot/d",
        "entity_type": "WaterLevelSensor", "autoprovision": false,
        "attributes": [{"object_id": "h", "name": "height", "type": "Number", "unitCode": "MTR"}]}]});
    let dev = json!({"devices": [{"device_id": "gauge1", "apikey": "k1", "entity_name": ID,
        "entity_type": "WaterLevelSensor", "protocol": "PDI-IoTA-UltraLight", "transport": "MQTT"}]});
    for (path, body) in [("/iot/services", group), ("/iot/devices", dev)] {
        let r = http
            .post(format!("{base}{path}"))
            .header("fiware-servicepath", "/")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{path}: {}", r.text().await.unwrap());
    }

    let mut opts = MqttOptions::new("gauge1", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(10));
    let (client, mut events) = AsyncClient::new(opts, 16);
    let (connected_tx, connected) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(async move {
        let mut connected_tx = Some(connected_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(tx) = connected_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("MQTT connection failed: {e}"),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), connected)
        .await
        .expect("connected to the embedded broker")
        .unwrap();

    // UltraLight on /{apikey}/{device_id}/attrs.
    client
        .publish("/k1/gauge1/attrs", QoS::AtLeastOnce, false, "h|2.4")
        .await
        .unwrap();
    let e = until("h|2.4", || async {
        entity(&http, &base)
            .await
            .filter(|e| e["height"]["value"] == json!(2.4))
    })
    .await;
    assert_eq!(e["height"]["unitCode"], "MTR", "{e}");
    assert_eq!(e["type"], "WaterLevelSensor", "{e}");

    // JSON on /json/{apikey}/{device_id}/attrs.
    client
        .publish(
            "/json/k1/gauge1/attrs",
            QoS::AtLeastOnce,
            false,
            r#"{"h":2.6}"#,
        )
        .await
        .unwrap();
    until("{\"h\":2.6}", || async {
        entity(&http, &base)
            .await
            .filter(|e| e["height"]["value"] == json!(2.6))
    })
    .await;

    // Measures without a timestamp carry no observedAt: their history is
    // found by modifiedAt.
    let url = format!("{base}/ngsi-ld/v1/temporal/entities/{ID}?attrs=height&options=temporalValues&timeproperty=modifiedAt");
    let values = until("the history of height", || async {
        let h: Value = http.get(&url).send().await.ok()?.json().await.ok()?;
        let values: Vec<Value> = h["height"]["values"]
            .as_array()?
            .iter()
            .map(|v| v[0].clone())
            .collect();
        (values.len() >= 2).then_some(values)
    })
    .await;
    assert_eq!(values, vec![json!(2.4), json!(2.6)]);

    // Refused payloads are counted and change nothing; the task goes on.
    for (topic, payload) in [
        ("/k1/gauge1/attrs", "h|abc"),
        ("/json/k1/gauge1/attrs", "{not json"),
        ("/ul/nokey/gauge1/attrs", "h|1"),
        ("/k1/stranger/attrs", "h|1"),
    ] {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    until("4 rejections", || async {
        (rejected(&http, &base).await >= 4).then_some(())
    })
    .await;
    let e = entity(&http, &base).await.unwrap();
    assert_eq!(e["height"]["value"], json!(2.6), "unchanged: {e}");

    // /ul/{apikey}/{device_id}/attrs still works after the refusals.
    client
        .publish("/ul/k1/gauge1/attrs", QoS::AtLeastOnce, false, "h|2.8")
        .await
        .unwrap();
    until("h|2.8", || async {
        entity(&http, &base)
            .await
            .filter(|e| e["height"]["value"] == json!(2.8))
    })
    .await;
    driver.abort();
}
