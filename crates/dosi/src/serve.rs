//! `dosi serve`: opens the store, wires broker, bus and API, and serves until
//! SIGTERM/SIGINT, then drains requests and flushes the store.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dosi_api::contexts::Contexts;
use dosi_api::state::NodeInfo;
use dosi_api::{AllowAll, ApiConfig, AppState};
use dosi_broker::Broker;
use dosi_bus::InProcessBus;
use dosi_notify::{Notifier, NotifierConfig};
use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};
use dosi_store::Store;
use tracing::info;

use crate::config::Config;
use crate::ServeArgs;

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOSI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    if cfg.log.format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// The configuration of `dosi serve` and `dosi demo`: the file, `DOSI_*`
/// variables, then the flags.
pub fn config_for(args: ServeArgs) -> anyhow::Result<Config> {
    let mut cfg = Config::load(args.config.as_deref())?;
    if let Some(h) = args.http {
        cfg.http.addr = h;
    }
    if let Some(d) = args.data_dir {
        cfg.store.data_dir = d;
    }
    if let Some(m) = args.mqtt {
        cfg.mqtt.addr = m;
        cfg.mqtt.addr_explicit = true;
    }
    Ok(cfg)
}

/// Runs the server until a shutdown signal.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let running = start(config_for(args)?).await?;
    // A line scripts and tests can wait for.
    println!("dosi listening on http://{}", running.http_addr);
    running.wait().await
}

/// A started platform: the listeners are bound and serving.
pub struct Running {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where the embedded MQTT broker listens (plain), if it runs.
    pub mqtt_addr: Option<SocketAddr>,
    /// The API's state (registry, broker, simulator slot, …).
    pub state: AppState,
    signal: tokio::sync::watch::Receiver<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    mqtt: Option<crate::mqtt::Mqtt>,
    mqtt_external: Option<tokio::task::JoinHandle<()>>,
    notifier: Arc<Notifier>,
    history: Option<Arc<dosi_history::History>>,
    store: Arc<dyn Store>,
}

impl Running {
    /// Resolves once a shutdown signal (SIGINT, SIGTERM) was received; the
    /// HTTP listener is then draining.
    pub async fn signalled(&self) {
        let mut s = self.signal.clone();
        let _ = s.wait_for(|v| *v).await;
    }

    /// Serves until a shutdown signal, then drains requests and flushes the
    /// outbox, the history and the store.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server.await??;
        if let Some(m) = self.mqtt {
            // A QoS 1 measure is acknowledged only once written: devices resend
            // what was in flight.
            m.stop();
        }
        if let Some(m) = self.mqtt_external {
            // Unacknowledged measures stay with the broker's session.
            m.abort();
        }
        info!("draining done; flushing the outbox and the store");
        if let Err(e) = dosi_api::iot::shutdown(&self.state).await {
            tracing::warn!(error = %e.detail, "cannot persist the devices' last-seen table");
        }
        self.notifier.close().await;
        if let Some(h) = &self.history {
            h.sync().await.context("flushing the history")?;
        }
        self.store.flush().await.context("flushing the store")?;
        info!("bye");
        Ok(())
    }
}

/// Opens the store, wires broker, bus, history, notifier, IoT gateway and
/// API, and starts serving; [`Running::wait`] runs it to the end.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    init_logging(&cfg);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();

    let listener = tokio::net::TcpListener::bind(&cfg.http.addr)
        .await
        .with_context(|| format!("binding HTTP listener {}", cfg.http.addr))?;
    let local = listener.local_addr()?;

    if cfg.store.kind != "embedded" {
        anyhow::bail!(
            "store.type '{}' is not available; use \"embedded\"",
            cfg.store.kind
        );
    }
    let started = std::time::Instant::now();
    let dir = cfg.store.data_dir.clone();
    let opts = EmbeddedOptions {
        fsync: cfg.store.fsync,
        snapshot_after_bytes: cfg.store.snapshot_after_bytes,
        ..EmbeddedOptions::default()
    };
    // The history opens on another thread while the store does: with
    // millions of series its catalog takes about as long to load as the
    // entities, and restart-to-ready is the longer of the two, not the sum.
    let history_open = cfg.history.enabled.then(|| {
        let h = &cfg.history;
        let hc = dosi_history::HistoryConfig {
            fsync: cfg.store.fsync,
            page_instances: h.page_instances,
            keep_on_entity_delete: h.keep_on_entity_delete,
            retention: h.retention.clone(),
            retention_interval: Duration::from_secs(h.retention_interval_secs.max(1)),
            ..dosi_history::HistoryConfig::new(cfg.store.data_dir.join("history"))
        };
        tokio::task::spawn_blocking(move || dosi_history::History::open(hc))
    });
    let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir, opts))
        .await?
        .with_context(|| format!("opening the store in {}", cfg.store.data_dir.display()))?;
    info!(dir = %cfg.store.data_dir.display(), elapsed_ms = started.elapsed().as_millis() as u64, "store open");
    let store: Arc<dyn Store> = store;

    let bus = Arc::new(InProcessBus::new(65_536));
    let broker = Arc::new(Broker::new(store.clone(), bus));
    let public = if cfg.http.public_url.is_empty() {
        format!("http://{local}")
    } else {
        cfg.http.public_url.trim_end_matches('/').to_string()
    };
    let contexts = Arc::new(Contexts::new(
        format!("{public}/ngsi-ld/v1/jsonldContexts"),
        Duration::from_millis(cfg.http.context_fetch_timeout_ms),
    ));
    contexts
        .load_persisted(store.clone())
        .await
        .context("loading the stored JSON-LD @contexts")?;
    let n = &cfg.notify;
    let notify_config = NotifierConfig {
        fsync: cfg.store.fsync,
        max_attempts: n.max_attempts,
        retry_base_ms: n.retry_base_ms,
        retry_max_ms: n.retry_max_ms,
        timeout_ms: n.timeout_ms,
        endpoint_concurrency: n.endpoint_concurrency,
        endpoint_queue_limit: n.endpoint_queue_limit,
        breaker_failures: n.breaker_failures,
        breaker_cooldown_ms: n.breaker_cooldown_ms,
        ..NotifierConfig::new(cfg.store.data_dir.join("outbox"))
    };
    let notifier = Notifier::open(notify_config, broker.clone(), contexts.clone())
        .await
        .context("opening the subscriptions and their outbox")?;
    let history = match history_open {
        Some(open) => {
            let hist = open.await?.context("opening the history")?;
            info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "history open"
            );
            broker.add_hook(hist.hook());
            hist.spawn_maintenance();
            Some(hist)
        }
        None => None,
    };
    let ready = Arc::new(AtomicBool::new(true));
    let state = AppState::new(dosi_api::state::Shared {
        broker,
        contexts,
        notifier: notifier.clone(),
        history: history.clone(),
        iot: Some(
            dosi_iot::Registry::open(store.clone())
                .await
                .context("loading the IoT device registry")?,
        ),
        mqtt_out: Default::default(),
        iot_run: Default::default(),
        sim: Default::default(),
        config: Arc::new(ApiConfig {
            max_body_bytes: cfg.http.max_body_bytes,
            max_limit: cfg.http.max_query_limit,
            temporal_page: cfg.history.page_instances,
            command_timeout: Duration::from_secs(cfg.iot.command_timeout_secs.max(1)),
            offline_after_secs: cfg.iot.offline_after_secs,
            console_tile_url: cfg.console.tile_url.clone(),
            console_tile_attribution: cfg.console.tile_attribution.clone(),
            ..ApiConfig::default()
        }),
        metrics,
        ready: ready.clone(),
        node: Arc::new(NodeInfo::new(node_id(&store).await?)),
    });
    let mqtt = crate::mqtt::start(&cfg.mqtt, state.clone()).await?;
    if let Some(m) = &mqtt {
        for (scheme, a) in [("mqtt", m.addr), ("mqtts", m.tls_addr)] {
            if let Some(a) = a {
                info!(addr = %a, "IoT gateway MQTT broker listening on {scheme}://{a}");
            }
        }
    }
    let mqtt_external = if cfg.mqtt.external_url.is_empty() {
        None
    } else {
        let node = state.node.id.clone();
        Some(crate::mqtt_external::start(
            &cfg.mqtt,
            state.clone(),
            &node,
        )?)
    };
    dosi_api::iot::start(&state);
    let app = dosi_api::router(state.clone(), Arc::new(AllowAll));
    info!(addr = %local, "dosi serving NGSI-LD at http://{local}/ngsi-ld/v1");
    let (tx, signal) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal(ready).await;
                let _ = tx.send(true);
            })
            .await
    });
    Ok(Running {
        http_addr: local,
        mqtt_addr: mqtt.as_ref().and_then(|m| m.addr),
        state,
        signal,
        server,
        mqtt,
        mqtt_external,
        notifier,
        history,
        store,
    })
}

/// This node's stable identity: generated on first start, kept in the store.
async fn node_id(store: &Arc<dyn Store>) -> anyhow::Result<String> {
    const NS: &str = "node";
    if let Some((_, v)) = store
        .list_meta(NS)
        .await?
        .into_iter()
        .find(|(k, _)| k == "id")
    {
        return Ok(String::from_utf8_lossy(&v).into_owned());
    }
    let id = format!(
        "urn:ngsi-ld:ContextSource:dosi-{}",
        uuid::Uuid::new_v4().simple()
    );
    store
        .put_meta(NS, "id", Some(id.clone().into_bytes()))
        .await?;
    Ok(id)
}

async fn shutdown_signal(ready: Arc<AtomicBool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    ready.store(false, Ordering::Relaxed);
    info!("shutdown signal received");
}
