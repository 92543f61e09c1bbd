//! `dosi bench`: a load generator that drives a running NGSI-LD server over
//! HTTP/1.1 and prints throughput and latency percentiles.
//!
//! It shares a small machine with the server it measures, so it is built to
//! cost little CPU: raw hyper client connections (one task each, keep-alive),
//! request bodies prepared before the run, dedicated current-thread runtimes
//! (`--threads`, default 1) and an HDR histogram per connection. Each scenario
//! generates its own data ([`data`]); `load` writes it, the others read or
//! patch it. `notify` also runs notification receivers in this process
//! ([`notify`]); `temporal` writes and reads entity history ([`temporal`]);
//! `mqtt` publishes device measures to an MQTT broker ([`mqtt`]).
//! Only loopback targets are accepted unless `--allow-remote`.
//!
//! This crate knows nothing of the broker's internals: it speaks HTTP (and
//! MQTT to brokers) only.

pub mod ceiling;
pub mod data;
mod driver;
pub mod mqtt;
pub mod notify;
pub mod target;
pub mod temporal;
mod workload;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http::HeaderValue;
use serde::Serialize;

pub use ceiling::{serve_ceiling, serve_ceiling_on};

/// Longest a `load` run without `--random` may take before it stops anyway.
const POPULATE_LIMIT: Duration = Duration::from_secs(3600);
/// Time given to requests in flight at the end of the run before they are abandoned
/// (and counted as errors): the run's duration, within these bounds.
const MIN_GRACE: Duration = Duration::from_secs(1);
const MAX_GRACE: Duration = Duration::from_secs(5);
/// How long the pre-flight connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bounds that keep a typo from turning into an unbounded run.
const MAX_SECONDS: f64 = 86_400.0;
const MAX_CONNECTIONS: usize = 10_000;
const MAX_THREADS: usize = 64;

/// What went wrong before or while running a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `--url` is not a usable `http://host:port[/prefix]`.
    #[error("invalid --url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target is not on this machine and `--allow-remote` was not given.
    #[error("{host} is not a loopback address; pass --allow-remote to load another machine")]
    RemoteTarget {
        /// The host as given.
        host: String,
    },
    /// An option is out of range.
    #[error("invalid {name}: {reason}")]
    InvalidArg {
        /// The option.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The server does not accept connections.
    #[error("cannot connect to {target}: {source}")]
    Unreachable {
        /// `host:port`.
        target: String,
        /// The connect error.
        source: std::io::Error,
    },
    /// A load thread could not start or failed.
    #[error("load generator failure: {0}")]
    Worker(String),
    /// Preparing or cleaning up a scenario's server-side state failed.
    #[error("scenario setup failed: {0}")]
    Setup(String),
}

/// Options of `dosi bench`; the scenario comes first, common options anywhere.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// What to send.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Base URL of the server (loopback only unless --allow-remote).
    #[arg(long, global = true, default_value = "http://127.0.0.1:1026")]
    pub url: String,
    /// Concurrent keep-alive connections.
    #[arg(long, global = true, default_value_t = 64)]
    pub connections: usize,
    /// Measured time in seconds (after the warm-up); not used by `load` without --random.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub duration: f64,
    /// Warm-up time in seconds, excluded from the statistics.
    #[arg(long, global = true, default_value_t = 2.0)]
    pub warmup: f64,
    /// Threads of the load generator (each a single-threaded runtime).
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
    /// `NGSILD-Tenant` header sent with every request.
    #[arg(long, global = true)]
    pub tenant: Option<String>,
    /// Also print the report as one line of JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Accept a target that is not a loopback address.
    #[arg(long, global = true)]
    pub allow_remote: bool,
    /// Seed of the generated data and request choices.
    #[arg(long, global = true, default_value_t = 1)]
    pub seed: u64,
}

/// A benchmark scenario.
#[derive(clap::Subcommand, Debug, Clone, PartialEq)]
pub enum Scenario {
    /// Upsert entities in batches (POST /entityOperations/upsert); reports entities/s.
    Load {
        /// Entities: ids 0..N.
        #[arg(long, default_value_t = 100_000)]
        entities: u64,
        /// Entities per request.
        #[arg(long, default_value_t = 100)]
        batch: u64,
        /// Entity type.
        #[arg(long = "type", default_value = "BenchSensor")]
        entity_type: String,
        /// Upsert random ids in 0..N for the duration instead of writing 0..N once.
        #[arg(long)]
        random: bool,
    },
    /// GET /entities/{id} of random loaded entities.
    Get {
        /// Ids are drawn from 0..N.
        #[arg(long, default_value_t = 100_000)]
        entities: u64,
        /// Entity type.
        #[arg(long = "type", default_value = "BenchSensor")]
        entity_type: String,
    },
    /// PATCH /entities/{id}/attrs with a new temperature (204 expected).
    Patch {
        /// Ids are drawn from 0..N.
        #[arg(long, default_value_t = 100_000)]
        entities: u64,
        /// Entity type.
        #[arg(long = "type", default_value = "BenchSensor")]
        entity_type: String,
    },
    /// GET /entities?type=T&q=… (default: `band==k`, k random, 1 % of the entities each).
    Query {
        /// Entity type.
        #[arg(long = "type", default_value = "BenchSensor")]
        entity_type: String,
        /// NGSI-LD query; omitted, each request asks for one random band.
        #[arg(long)]
        q: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Ask for the total count too (count=true).
        #[arg(long)]
        count: bool,
    },
    /// GET /entities?type=T with georel=near;maxDistance around random points in the city.
    Geo {
        /// Entity type.
        #[arg(long = "type", default_value = "BenchSensor")]
        entity_type: String,
        /// Search radius in metres.
        #[arg(long, default_value_t = 500.0)]
        radius: f64,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Ask for the total count too (count=true).
        #[arg(long)]
        count: bool,
    },
    /// Plain GET of one path (e.g. against the ceiling server).
    Raw {
        /// Path under the base URL.
        #[arg(long, default_value = "/")]
        path: String,
    },
    /// Subscriptions to receivers in this process; upserts `level` and reports
    /// notifications/s, missing and duplicate ones, and commit-to-receipt latency.
    Notify(notify::NotifyArgs),
    /// Entity history: `--ingest` through batch upserts, `--seed-days` through
    /// POST /temporal/entities, or `--query agg-one|agg-many|lastn` latency and throughput.
    Temporal(Box<temporal::TemporalArgs>),
    /// IoT devices over MQTT: UltraLight measures to a broker (dosi's
    /// embedded one, or Mosquitto for the ceiling), ingestion rate and
    /// accepted → visible latency; `--idle` holds idle device connections.
    Mqtt(Box<mqtt::MqttArgs>),
}

impl Scenario {
    /// The scenario's command name.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Load { random: false, .. } => "load",
            Scenario::Load { random: true, .. } => "load-random",
            Scenario::Get { .. } => "get",
            Scenario::Patch { .. } => "patch",
            Scenario::Query { .. } => "query",
            Scenario::Geo { .. } => "geo",
            Scenario::Raw { .. } => "raw",
            Scenario::Notify(n) if n.isolation => "notify-isolation",
            Scenario::Notify(_) => "notify",
            Scenario::Temporal(t) => t.name(),
            Scenario::Mqtt(m) if m.idle => "mqtt-idle",
            Scenario::Mqtt(_) => "mqtt",
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name (`load`, `load-random`, `get`, …).
    pub scenario: String,
    /// Connections used.
    pub connections: usize,
    /// Answered requests in the measured window (errors included).
    pub requests: u64,
    /// Failed requests: non-2xx answers (207 for batches), broken connections, and
    /// requests still unanswered when the run ends (these are not in `requests`).
    pub errors: u64,
    /// Entities carried by successful requests.
    pub items: u64,
    /// Length of the measured window in seconds.
    pub duration_s: f64,
    /// Answered requests per second.
    pub rps: f64,
    /// Entities per second, for batch scenarios.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_per_s: Option<f64>,
    /// Median latency in microseconds.
    pub p50_us: u64,
    /// 90th percentile latency in microseconds.
    pub p90_us: u64,
    /// 99th percentile latency in microseconds.
    pub p99_us: u64,
    /// 99.9th percentile latency in microseconds.
    pub p999_us: u64,
    /// Highest latency in microseconds.
    pub max_us: u64,
    /// Notification delivery, for `notify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<notify::NotifyReport>,
    /// History ingest, seeding or query figures, for `temporal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporal: Option<temporal::TemporalReport>,
    /// Publish, ingestion and visibility figures, for `mqtt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<mqtt::MqttReport>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario     {} ({} connections, {:.1} s measured)",
            self.scenario, self.connections, self.duration_s
        )?;
        writeln!(f, "requests     {}   errors {}", self.requests, self.errors)?;
        writeln!(f, "throughput   {:.1} req/s", self.rps)?;
        if let Some(items) = self.items_per_s {
            writeln!(f, "entities     {} ({items:.1}/s)", self.items)?;
        }
        writeln!(
            f,
            "latency      p50 {}   p90 {}   p99 {}   p99.9 {}   max {}",
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us)
        )?;
        if let Some(n) = &self.notify {
            write!(f, "{n}")?;
        }
        if let Some(t) = &self.temporal {
            write!(f, "{t}")?;
        }
        if let Some(m) = &self.mqtt {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

pub(crate) fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// Runs the benchmark described by `args`, prints the report (and JSON with `--json`).
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let report = measure(&args).await?;
    print!("{report}");
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(report)
}

/// Runs the benchmark without printing the report.
pub async fn measure(args: &BenchArgs) -> Result<Report, BenchError> {
    // MQTT speaks to a broker; it checks its own options and HTTP target.
    if let Scenario::Mqtt(opts) = &args.scenario {
        return mqtt::measure(args, opts).await;
    }
    let common = Common::check(args).await?;
    let workload = workload::Workload::new(&args.scenario, &common.target, args.seed)?;

    // Fail fast with a clear message rather than count a run of connection errors.
    let unreachable = |source| BenchError::Unreachable {
        target: common.addr.to_string(),
        source,
    };
    tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(common.addr))
        .await
        .map_err(|_| unreachable(std::io::ErrorKind::TimedOut.into()))?
        .map_err(unreachable)?;

    match &args.scenario {
        Scenario::Notify(opts) => return notify::measure(args, opts, &common, workload).await,
        Scenario::Temporal(opts) => return temporal::measure(args, opts, &common, workload).await,
        _ => {}
    }
    drive(args, &common, workload)
        .await
        .map(|(report, _)| report)
}

/// The checked options every scenario shares, and the resolved target.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    duration: Duration,
    warmup: Duration,
    pub(crate) tenant: Option<HeaderValue>,
    pub(crate) target: target::Target,
    pub(crate) addr: SocketAddr,
    pub(crate) host: HeaderValue,
}

impl Common {
    async fn check(args: &BenchArgs) -> Result<Common, BenchError> {
        let duration = seconds("--duration", args.duration, false)?;
        let warmup = seconds("--warmup", args.warmup, true)?;
        if args.connections == 0 || args.connections > MAX_CONNECTIONS {
            return Err(BenchError::InvalidArg {
                name: "--connections",
                reason: format!("must be 1..={MAX_CONNECTIONS}"),
            });
        }
        if args.threads == 0 || args.threads > MAX_THREADS {
            return Err(BenchError::InvalidArg {
                name: "--threads",
                reason: format!("must be 1..={MAX_THREADS}"),
            });
        }
        let tenant = args
            .tenant
            .as_deref()
            .map(|t| {
                HeaderValue::from_str(t).map_err(|_| BenchError::InvalidArg {
                    name: "--tenant",
                    reason: format!("{t:?} is not a valid header value"),
                })
            })
            .transpose()?;

        let target = target::Target::parse(&args.url, args.allow_remote)?;
        let addr = target.resolve(args.allow_remote).await?;
        let host =
            HeaderValue::from_str(&target.authority).map_err(|_| BenchError::InvalidUrl {
                url: args.url.clone(),
                reason: "the host is not a valid Host header".into(),
            })?;
        Ok(Common {
            duration,
            warmup,
            tenant,
            target,
            addr,
            host,
        })
    }
}

/// Drives `workload` with the connections and threads of `args`; the plan is
/// returned for scenarios that look at their workload afterwards.
pub(crate) async fn drive(
    args: &BenchArgs,
    common: &Common,
    workload: workload::Workload,
) -> Result<(Report, Arc<driver::Plan>), BenchError> {
    let run = run_workload(common, workload, args.connections, args.threads, args.seed).await?;
    let report = Report::from_run(args.scenario.name(), args.connections, &run);
    Ok((report, run.plan))
}

/// What one driven workload gave.
pub(crate) struct Run {
    /// The summed counters of the connections.
    pub(crate) stats: driver::Stats,
    /// The measured window: the duration, or until the last answer of a finite workload.
    pub(crate) window: Duration,
    /// The plan, with its workload.
    pub(crate) plan: Arc<driver::Plan>,
}

/// Drives `workload` over `connections` connections on `threads` threads: a
/// finite workload until it is done, any other for the warm-up and duration.
pub(crate) async fn run_workload(
    common: &Common,
    workload: workload::Workload,
    connections: usize,
    threads: usize,
    seed: u64,
) -> Result<Run, BenchError> {
    let duration = common.duration;
    let finite = workload.is_finite();
    let start = Instant::now();
    let (measure_from, stop_at) = if finite {
        (start, start + POPULATE_LIMIT)
    } else {
        (start + common.warmup, start + common.warmup + duration)
    };
    let plan = Arc::new(driver::Plan {
        addr: common.addr,
        host: common.host.clone(),
        tenant: common.tenant.clone(),
        workload,
        measure_from,
        stop_at,
        hard_stop: stop_at + duration.clamp(MIN_GRACE, MAX_GRACE),
        seed,
        errors_shown: AtomicUsize::new(0),
    });
    let stats = driver::drive(plan.clone(), connections, threads).await?;
    let window = if finite {
        stats
            .last_done
            .map_or(Duration::ZERO, |d| d.duration_since(start))
    } else {
        duration
    };
    Ok(Run {
        stats,
        window,
        plan,
    })
}

impl Report {
    /// The report of `run` of `scenario` over `connections` connections.
    pub(crate) fn from_run(scenario: &str, connections: usize, run: &Run) -> Report {
        let stats = &run.stats;
        let duration_s = run.window.as_secs_f64().max(1e-9);
        let [p50_us, p90_us, p99_us, p999_us, max_us] = percentiles(&stats.latency_us);
        Report {
            scenario: scenario.to_owned(),
            connections,
            requests: stats.requests,
            errors: stats.errors,
            items: stats.items,
            duration_s,
            rps: stats.requests as f64 / duration_s,
            items_per_s: run
                .plan
                .workload
                .is_batch()
                .then(|| stats.items as f64 / duration_s),
            p50_us,
            p90_us,
            p99_us,
            p999_us,
            max_us,
            notify: None,
            temporal: None,
            mqtt: None,
        }
    }
}

/// p50, p90, p99, p99.9 and max of `h` (zeros when it is empty).
pub(crate) fn percentiles(h: &Histogram<u64>) -> [u64; 5] {
    if h.is_empty() {
        return [0; 5];
    }
    [
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
    ]
}

pub(crate) fn seconds(
    name: &'static str,
    value: f64,
    zero_ok: bool,
) -> Result<Duration, BenchError> {
    let in_range =
        value.is_finite() && value <= MAX_SECONDS && (value > 0.0 || (zero_ok && value == 0.0));
    if in_range {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(BenchError::InvalidArg {
            name,
            reason: format!(
                "{value} is not a number of seconds in {}..={MAX_SECONDS}",
                if zero_ok { "0" } else { "(0" }
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(line: &str) -> BenchArgs {
        Cli::try_parse_from(std::iter::once("bench").chain(line.split_whitespace()))
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .bench
    }

    /// `line` parses to `scenario`.
    fn check(line: &str, scenario: Scenario) {
        assert_eq!(parse(line).scenario, scenario, "{line}");
    }

    #[test]
    fn scenarios_parse() {
        let ty = || "BenchSensor".to_string();
        check(
            "load",
            Scenario::Load {
                entities: 100_000,
                batch: 100,
                entity_type: ty(),
                random: false,
            },
        );
        check(
            "load --entities 5 --batch 2 --type T --random",
            Scenario::Load {
                entities: 5,
                batch: 2,
                entity_type: "T".into(),
                random: true,
            },
        );
        check(
            "get --entities 1000",
            Scenario::Get {
                entities: 1000,
                entity_type: ty(),
            },
        );
        check(
            "patch",
            Scenario::Patch {
                entities: 100_000,
                entity_type: ty(),
            },
        );
        check(
            "query --q temperature>30 --count",
            Scenario::Query {
                entity_type: ty(),
                q: Some("temperature>30".into()),
                limit: 20,
                count: true,
            },
        );
        check(
            "geo --radius 250 --limit 5",
            Scenario::Geo {
                entity_type: ty(),
                radius: 250.0,
                limit: 5,
                count: false,
            },
        );
        check(
            "raw --path /health",
            Scenario::Raw {
                path: "/health".into(),
            },
        );
        check(
            "notify --subscriptions 50 --batch 10 --rate 5000 --receivers 2 --isolation",
            Scenario::Notify(notify::NotifyArgs {
                subscriptions: 50,
                batch: 10,
                rate: Some(5000.0),
                receivers: 2,
                drain: 10.0,
                isolation: true,
                bad_subscriptions: 10,
                entity_type: "NotifySensor".into(),
            }),
        );
        assert_eq!(parse("notify").scenario.name(), "notify");
        assert_eq!(
            parse("notify --isolation").scenario.name(),
            "notify-isolation"
        );
    }

    #[test]
    fn common_options_default_and_go_anywhere() {
        let a = parse("get");
        assert_eq!(
            (
                a.url.as_str(),
                a.connections,
                a.duration,
                a.warmup,
                a.threads
            ),
            ("http://127.0.0.1:1026", 64, 10.0, 2.0, 1)
        );
        assert_eq!((a.tenant, a.json, a.allow_remote), (None, false, false));
        let a = parse("--connections 8 get --duration 1.5 --tenant city --json");
        assert_eq!(
            (a.connections, a.duration, a.tenant.as_deref(), a.json),
            (8, 1.5, Some("city"), true)
        );
    }

    /// `seconds(value, zero_ok)` is accepted or not.
    fn check_seconds(value: f64, zero_ok: bool, accepted: bool) {
        assert_eq!(
            seconds("--x", value, zero_ok).is_ok(),
            accepted,
            "{value} {zero_ok}"
        );
    }

    #[test]
    fn second_ranges() {
        check_seconds(1.0, false, true);
        check_seconds(0.25, false, true);
        check_seconds(0.0, false, false);
        check_seconds(0.0, true, true);
        check_seconds(-1.0, true, false);
        check_seconds(f64::NAN, true, false);
        check_seconds(f64::INFINITY, true, false);
        check_seconds(1e9, true, false);
    }

    #[test]
    fn report_serializes_with_items_only_for_batches() {
        let mut report = Report {
            scenario: "get".into(),
            connections: 1,
            requests: 10,
            errors: 0,
            items: 10,
            duration_s: 1.0,
            rps: 10.0,
            items_per_s: None,
            p50_us: 1,
            p90_us: 2,
            p99_us: 3,
            p999_us: 4,
            max_us: 5,
            notify: None,
            temporal: None,
            mqtt: None,
        };
        let json = serde_json::to_value(&report).expect("serializable");
        assert!(json.get("items_per_s").is_none());
        assert_eq!(json["p999_us"], 4);
        report.items_per_s = Some(1000.0);
        assert_eq!(
            serde_json::to_value(&report).expect("serializable")["items_per_s"],
            1000.0
        );
        assert!(report.to_string().contains("p99.9 0.00 ms"));
    }
}
