//! The IoT gateway's embedded MQTT broker (rumqttd, ADR 9): devices connect
//! to it and publish measures on the FIWARE IoT Agent topics; one task reads
//! them through the broker's in-process link and hands each payload to the
//! shared ingestion (`dosi_api::iot::ingest_payload`), as the HTTP paths do.
//!
//! Not yet: device authentication and topic ACLs, TLS, commands.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use dosi_api::AppState;
use rumqttd::local::LinkRx;
use rumqttd::{Broker, Config, ConnectionSettings, Notification, RouterConfig, ServerSettings};
use tracing::{info, warn};

use crate::gateway::{Gateway, FILTERS};

use crate::config::MqttConfig;

/// Starts the broker listening on `cfg.addr` and the task that ingests what
/// devices publish. Returns the task, to be aborted on shutdown.
pub fn start(cfg: &MqttConfig, st: AppState) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listen: SocketAddr = cfg
        .addr
        .parse()
        .with_context(|| format!("mqtt.addr '{}' is not an address", cfg.addr))?;
    // rumqttd binds on its own thread and only logs a failure: check first so
    // a taken port stops `dosi serve` with a clear error.
    drop(
        std::net::TcpListener::bind(listen)
            .with_context(|| format!("binding MQTT listener {listen}"))?,
    );
    let server = ServerSettings {
        name: "dosi-mqtt-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: cfg.max_payload_bytes,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: cfg.max_connections,
            max_outgoing_packet_count: 200,
            // The router keeps published messages in memory, per filter:
            // measures are consumed at once, so small logs suffice.
            max_segment_size: 1024 * 1024,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    let (mut tx, rx) = broker
        .link("dosi-iot-gateway")
        .context("linking the IoT gateway to the MQTT broker")?;
    for f in FILTERS {
        tx.subscribe(f)
            .with_context(|| format!("subscribing the IoT gateway to {f}"))?;
    }
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "the MQTT broker stopped");
            }
        })
        .context("starting the MQTT broker thread")?;
    info!(addr = %listen, "IoT gateway MQTT broker listening on mqtt://{listen}");
    // The link's sender must live as long as the subscriptions.
    Ok(tokio::spawn(async move {
        let _tx = tx;
        run(rx, st).await;
    }))
}

/// Ingests every forwarded publish, in arrival order, through the
/// [`Gateway`]; a refused payload never stops the loop.
async fn run(mut rx: LinkRx, st: AppState) {
    let gw = Gateway::new(st);
    loop {
        let n = match rx.next().await {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                warn!(error = %e, "the MQTT broker link closed; MQTT ingestion stops");
                return;
            }
        };
        let fwd = match n {
            Notification::Forward(fwd) => fwd,
            // The router paused the link (its buffer filled up) and waits
            // for it to say it is ready again, as rumqttd's network links do.
            Notification::Unschedule => {
                if let Err(e) = rx.wake().await {
                    warn!(error = %e, "the MQTT broker link closed; MQTT ingestion stops");
                    return;
                }
                continue;
            }
            _ => continue,
        };
        let topic = String::from_utf8_lossy(&fwd.publish.topic);
        // Refusals are counted and logged by the gateway.
        let _ = gw
            .handle_publish("mqtt", &topic, &fwd.publish.payload, None)
            .await;
    }
}
