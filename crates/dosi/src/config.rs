//! Configuration: defaults, then the TOML file (`--config`), then `DOSI_*`
//! environment variables, then command-line flags.
//!
//! Every key `section.field` can be set by `DOSI_SECTION_FIELD`, e.g.
//! `http.addr` by `DOSI_HTTP_ADDR`, `store.fsync` by `DOSI_STORE_FSYNC`.
//! `DOSI_HTTP` and `DOSI_DATA_DIR` are the short forms of the two main flags.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The whole configuration (`dosi.toml`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP listener.
    pub http: HttpConfig,
    /// Where and how data is stored.
    pub store: StoreConfig,
    /// Logging.
    pub log: LogConfig,
    /// Subscription notifications.
    pub notify: NotifyConfig,
    /// Attribute history (the temporal API).
    pub history: HistoryConfig,
    /// The IoT gateway's embedded MQTT broker.
    pub mqtt: MqttConfig,
    /// The IoT gateway: commands and device liveness.
    pub iot: IotConfig,
    /// The operations console at `/`.
    pub console: ConsoleConfig,
}

/// `[console]`: the operations console served at `/`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// XYZ raster tiles under the map, a URL template with `{z}`, `{x}`,
    /// `{y}` (and optionally `{s}`); empty = no tiles, the console draws the
    /// simulated city's own geometry (works offline).
    pub tile_url: String,
    /// Attribution shown under the tiles (required by most tile providers).
    pub tile_attribution: String,
}

/// `[iot]`: commands to devices and device liveness.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IotConfig {
    /// How long a command waits for its device's answer before its status
    /// becomes EXPIRED, in seconds.
    pub command_timeout_secs: u64,
    /// Seconds of silence after which a device is marked offline
    /// (`deviceState`) when neither the device nor its group sets an
    /// interval; 0 = devices are not watched.
    pub offline_after_secs: u64,
}

impl Default for IotConfig {
    fn default() -> Self {
        Self {
            command_timeout_secs: 60,
            offline_after_secs: 0,
        }
    }
}

/// `[mqtt]`: the embedded MQTT broker devices publish measures to
/// (FIWARE IoT Agent topics `/{apikey}/{device_id}/attrs`,
/// `/ul/…/attrs`, `/json/…/attrs`) and receive commands from
/// (`/{apikey}/{device_id}/cmd`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Address of the MQTT 3.1.1/5 listener. Empty: no broker. When the
    /// default address cannot be bound (another broker holds 1883), dosi
    /// warns and runs without the broker; an address set in the file, the
    /// environment or `--mqtt` that cannot be bound is a startup error.
    pub addr: String,
    /// Address of the MQTT over TLS listener, e.g. "0.0.0.0:8883". Empty: none.
    pub tls_addr: String,
    /// PEM file with the TLS listener's certificate chain.
    pub tls_cert: String,
    /// PEM file with the TLS listener's private key.
    pub tls_key: String,
    /// Let clients connect without a username (their publishes are checked
    /// only by the gateway's topic rules, with no per-device ACL). Clients
    /// that send a username are always authenticated.
    pub allow_anonymous: bool,
    /// Largest MQTT packet a client may send, in bytes.
    pub max_payload_bytes: usize,
    /// Most concurrent MQTT connections.
    pub max_connections: usize,
    /// Whether `addr` was set explicitly (file, environment or flag) rather
    /// than left at its default.
    #[serde(skip)]
    pub addr_explicit: bool,
    /// An external MQTT broker (Mosquitto, EMQX, …) to take measures from, as
    /// a client: "mqtt://host:1883" or "mqtts://host:8883". Empty: none. Works
    /// alongside the embedded broker or instead of it.
    pub external_url: String,
    /// Client id on the external broker; its session is persistent, so keep it
    /// stable per node. Empty: "dosi-" and the start of the node id.
    pub external_client_id: String,
    /// User name on the external broker (wins over one in the URL). Empty: none.
    pub external_username: String,
    /// Password on the external broker (wins over one in the URL). Empty: none.
    pub external_password: String,
    /// Shared-subscription group: nodes in the same group split the measures
    /// (`$share/<group>/<topic filter>`).
    pub external_share_group: String,
}

/// The default MQTT listener address.
pub const DEFAULT_MQTT_ADDR: &str = "0.0.0.0:1883";

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_MQTT_ADDR.into(),
            tls_addr: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            allow_anonymous: false,
            max_payload_bytes: 65_536,
            max_connections: 10_000,
            addr_explicit: false,
            external_url: String::new(),
            external_client_id: String::new(),
            external_username: String::new(),
            external_password: String::new(),
            external_share_group: "dosi".into(),
        }
    }
}

/// `[history]`: attribute history behind the temporal API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Record every attribute change and serve `/temporal`.
    pub enabled: bool,
    /// Most attribute instances in one temporal answer (the rest is paged, clause 6.3.10).
    pub page_instances: usize,
    /// Keep an entity's history when the entity is deleted (its attributes get deletion marks).
    pub keep_on_entity_delete: bool,
    /// How often retention policies run, in seconds.
    pub retention_interval_secs: u64,
    /// Retention policies (first match wins); replaceable at run time through
    /// `PUT /api/v1/history/retention`.
    pub retention: Vec<dosi_history::RetentionPolicy>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        let d = dosi_history::HistoryConfig::new("");
        Self {
            enabled: true,
            page_instances: 10_000,
            keep_on_entity_delete: d.keep_on_entity_delete,
            retention_interval_secs: d.retention_interval.as_secs(),
            retention: d.retention,
        }
    }
}

/// `[notify]`: delivery of subscription notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Attempts per notification before it becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubled per attempt, with jitter.
    pub retry_base_ms: u64,
    /// Longest retry delay in milliseconds.
    pub retry_max_ms: u64,
    /// Timeout of one attempt when the subscription's endpoint sets none, in milliseconds.
    pub timeout_ms: u64,
    /// Attempts in flight per endpoint (scheme, host, port).
    pub endpoint_concurrency: usize,
    /// Notifications queued per endpoint before new ones become dead letters.
    pub endpoint_queue_limit: usize,
    /// Consecutive failures that open an endpoint's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open circuit breaker waits before a probe, in milliseconds.
    pub breaker_cooldown_ms: u64,
}

impl Default for NotifyConfig {
    /// The notifier's own defaults (one source: `NotifierConfig::new`).
    fn default() -> Self {
        let d = dosi_notify::NotifierConfig::new("");
        Self {
            max_attempts: d.max_attempts,
            retry_base_ms: d.retry_base_ms,
            retry_max_ms: d.retry_max_ms,
            timeout_ms: d.timeout_ms,
            endpoint_concurrency: d.endpoint_concurrency,
            endpoint_queue_limit: d.endpoint_queue_limit,
            breaker_failures: d.breaker_failures,
            breaker_cooldown_ms: d.breaker_cooldown_ms,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on for the HTTP API, console, /metrics and /health.
    pub addr: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest `limit` an entity query may ask for.
    pub max_query_limit: usize,
    /// Timeout for fetching a remote JSON-LD @context, in milliseconds.
    pub context_fetch_timeout_ms: u64,
    /// Public base URL of this server (used in links to hosted contexts).
    /// Empty: derived from `addr`.
    pub public_url: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: "0.0.0.0:1026".into(),
            max_body_bytes: 8 * 1024 * 1024,
            max_query_limit: 1000,
            context_fetch_timeout_ms: 5000,
            public_url: String::new(),
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Backend: "embedded" (the only one today; "postgres" comes later).
    #[serde(rename = "type")]
    pub kind: String,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// fsync every group commit (acknowledged writes survive power loss).
    pub fsync: bool,
    /// WAL size after which a snapshot is written, in bytes.
    pub snapshot_after_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: "embedded".into(),
            data_dir: PathBuf::from("./dosi-data"),
            fsync: true,
            snapshot_after_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Filter in `tracing` env-filter syntax, e.g. "info" or "dosi_api=debug".
    pub level: String,
    /// "text" or "json".
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl Config {
    /// Loads the configuration: file (if any), then environment.
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut table: toml::Table = toml::Table::try_from(Config::default())?;
        let mut mqtt_addr_explicit = std::env::var_os("DOSI_MQTT_ADDR").is_some();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            let user: toml::Table = toml::from_str(&text)
                .with_context(|| format!("parsing config {}", path.display()))?;
            // Validate the file alone first so unknown keys are reported precisely.
            let _: Config = toml::Value::Table(user.clone())
                .try_into()
                .with_context(|| format!("invalid config {}", path.display()))?;
            mqtt_addr_explicit |= user
                .get("mqtt")
                .and_then(|m| m.as_table())
                .is_some_and(|m| m.contains_key("addr"));
            merge(&mut table, user);
        }
        apply_env(&mut table, std::env::vars())?;
        let mut cfg: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        cfg.mqtt.addr_explicit = mqtt_addr_explicit;
        Ok(cfg)
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Overlays `DOSI_SECTION_FIELD` variables onto the table, typed like the defaults.
fn apply_env(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    let vars: Vec<(String, String)> = vars.filter(|(k, _)| k.starts_with("DOSI_")).collect();
    let aliases = [
        ("DOSI_HTTP", "http", "addr"),
        ("DOSI_DATA_DIR", "store", "data_dir"),
    ];
    for (section, fields) in table.iter_mut() {
        let toml::Value::Table(fields) = fields else {
            continue;
        };
        for (field, value) in fields.iter_mut() {
            let name = format!("DOSI_{}_{}", section.to_uppercase(), field.to_uppercase());
            let alias = aliases
                .iter()
                .find(|(_, s, f)| s == section && f == field)
                .map(|(a, _, _)| *a);
            let found = vars
                .iter()
                .find(|(k, _)| *k == name)
                .or_else(|| alias.and_then(|a| vars.iter().find(|(k, _)| k == a)));
            if let Some((k, raw)) = found {
                *value = match value {
                    toml::Value::Boolean(_) => toml::Value::Boolean(match raw.as_str() {
                        "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => bail!("{k}={raw}: expected true or false"),
                    }),
                    toml::Value::Integer(_) => toml::Value::Integer(
                        raw.parse()
                            .with_context(|| format!("{k}={raw}: expected an integer"))?,
                    ),
                    _ => toml::Value::String(raw.clone()),
                };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults() {
        let mut t = toml::Table::try_from(Config::default()).unwrap();
        let vars = vec![
            ("DOSI_HTTP".to_string(), "127.0.0.1:9".to_string()),
            ("DOSI_STORE_FSYNC".to_string(), "false".to_string()),
            ("DOSI_HTTP_MAX_BODY_BYTES".to_string(), "10".to_string()),
        ];
        apply_env(&mut t, vars.into_iter()).unwrap();
        let c: Config = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(c.http.addr, "127.0.0.1:9");
        assert!(!c.store.fsync);
        assert_eq!(c.http.max_body_bytes, 10);
    }

    #[test]
    fn bad_env_values_are_errors() {
        let mut t = toml::Table::try_from(Config::default()).unwrap();
        let vars = vec![("DOSI_STORE_FSYNC".to_string(), "maybe".to_string())];
        assert!(apply_env(&mut t, vars.into_iter()).is_err());
    }

    #[test]
    fn an_mqtt_address_in_the_file_is_explicit() {
        if std::env::var_os("DOSI_MQTT_ADDR").is_some() {
            eprintln!("skipped: DOSI_MQTT_ADDR is set");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (text, explicit) in [
            ("[mqtt]\naddr = \"0.0.0.0:1883\"\n", true),
            ("[mqtt]\nallow_anonymous = true\n", false),
            ("", false),
        ] {
            let path = dir.path().join("dosi.toml");
            std::fs::write(&path, text).unwrap();
            let c = Config::load(Some(&path)).unwrap();
            assert_eq!(c.mqtt.addr_explicit, explicit, "{text}");
            assert_eq!(c.mqtt.addr, DEFAULT_MQTT_ADDR);
        }
    }

    #[test]
    fn example_config_matches_the_structs() {
        let text = include_str!("../../../dosi.example.toml");
        let c: Config = toml::from_str(text).expect("dosi.example.toml must parse");
        let d = Config::default();
        assert_eq!(c.http.addr, d.http.addr);
        assert_eq!(
            toml::to_string(&c).unwrap(),
            toml::to_string(&d).unwrap(),
            "dosi.example.toml must list the defaults"
        );
    }
}
