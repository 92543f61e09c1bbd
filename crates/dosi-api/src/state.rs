//! Shared state of the HTTP handlers.

use std::sync::Arc;

use dosi_broker::codec::Terms;
use dosi_broker::Broker;
use dosi_jsonld::ActiveContext;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::contexts::Contexts;

/// Settings of the API layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest `limit` a query may ask for.
    pub max_limit: usize,
    /// `limit` when none is given.
    pub default_limit: usize,
    /// Most attribute instances in one temporal answer (clause 6.3.10).
    pub temporal_page: usize,
    /// How long a command may wait for its device's answer before its
    /// status becomes `EXPIRED`.
    pub command_timeout: std::time::Duration,
    /// Seconds of silence after which a device is marked offline when
    /// neither it nor its group sets an interval; 0: not watched.
    pub offline_after_secs: u64,
    /// How often silent devices are looked for (also the most a device's
    /// `online` may lag behind its first measure after silence).
    pub liveness_check: std::time::Duration,
    /// How often the last-seen table is persisted (and at shutdown).
    pub liveness_persist: std::time::Duration,
    /// The console's raster tiles, an XYZ URL template
    /// (`https://tile.example/{z}/{x}/{y}.png`); empty: the offline basemap only.
    pub console_tile_url: String,
    /// Attribution shown under the tiles.
    pub console_tile_attribution: String,
    /// How long the live stream gathers changes per entity before sending them.
    pub live_window: std::time::Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_limit: 1000,
            default_limit: 20,
            temporal_page: 10_000,
            command_timeout: std::time::Duration::from_secs(60),
            offline_after_secs: 0,
            liveness_check: std::time::Duration::from_secs(1),
            liveness_persist: std::time::Duration::from_secs(30),
            console_tile_url: String::new(),
            console_tile_attribution: String::new(),
            live_window: std::time::Duration::from_millis(150),
        }
    }
}

/// Everything a handler needs, cloned per request: one reference count,
/// not one per part (the per-request clone and drop of a dozen `Arc`s were
/// a few percent of a GET).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// State over `parts`.
    pub fn new(parts: Shared) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The broker (write path and reads).
    pub broker: Arc<Broker>,
    /// The JSON-LD context store.
    pub contexts: Arc<Contexts>,
    /// Subscriptions and their notifications.
    pub notifier: Arc<dosi_notify::Notifier>,
    /// Attribute history (the temporal API); `None` when disabled.
    pub history: Option<Arc<dosi_history::History>>,
    /// The IoT gateway's registry of service groups and devices; `None` when disabled.
    pub iot: Option<Arc<dosi_iot::Registry>>,
    /// Where messages to devices go over MQTT (commands): set once the
    /// embedded broker or the external-broker client is up.
    pub mqtt_out: Arc<std::sync::OnceLock<Arc<dyn crate::iot::MqttOut>>>,
    /// The IoT gateway's running state: commands waiting for their
    /// devices, the liveness watcher's wake-up (see [`crate::iot::start`]).
    pub iot_run: Arc<crate::iot::IotRuntime>,
    /// The city simulator running in this process (`dosi demo`), if any:
    /// `/api/v1/sim` controls it.
    pub sim: Arc<std::sync::OnceLock<Arc<dyn crate::sim::SimControl>>>,
    /// API settings.
    pub config: Arc<ApiConfig>,
    /// Prometheus rendering, when a recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// Readiness: false until the store is open and while shutting down.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// Who this node is (context source identity, clause 5.15.1).
    pub node: Arc<NodeInfo>,
}

/// The identity of this dosi node as a context source.
#[derive(Debug)]
pub struct NodeInfo {
    /// A stable URN naming this node.
    pub id: String,
    /// When the process started.
    pub started: std::time::Instant,
}

impl NodeInfo {
    /// A node named `id`, started now.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            started: std::time::Instant::now(),
        }
    }
}

/// [`Terms`] over a JSON-LD active context.
pub struct Ctx<'a>(pub &'a ActiveContext);

impl Terms for Ctx<'_> {
    fn expand(&self, term: &str) -> String {
        self.0.expand_term(term)
    }
    fn compact(&self, iri: &str) -> String {
        self.0.compact_iri(iri)
    }
}
