//! `dosi sim`: the city simulator's device fleet against a running server
//! (provisioning, MQTT and HTTP measures, scenarios); `dosi scenario`:
//! starts a scenario on a server that runs a simulator in-process
//! (`dosi demo`); `dosi demo`: the platform and the fleet in one process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dosi_api::sim::SimControl;
use dosi_fleet::{Fleet, FleetConfig};
use dosi_ngsi::NgsiError;
use dosi_sim::{City, Scale, Scenario, ScenarioKind, Sim, SimTime};
use serde_json::Value;

use crate::ServeArgs;

/// The city and its clock (shared by `dosi sim` and `dosi demo`).
#[derive(clap::Args, Debug, Clone)]
pub struct CityArgs {
    /// Devices in the city (at least 2,000) [default: 5,000].
    #[arg(long, conflicts_with = "scale")]
    pub devices: Option<usize>,
    /// City size: `default` (5,000 devices) or `large` (100,000).
    #[arg(long)]
    pub scale: Option<String>,
    /// Seed of the city (same seed, same city).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated seconds per real second [dosi sim: 1, dosi demo: 10].
    #[arg(long)]
    pub speed: Option<f64>,
    /// Simulated start time: `2027-02-15T08:00` (city time, UTC+7) or
    /// `2027-02-15T01:00:00Z` (UTC) [default: now].
    #[arg(long)]
    pub start: Option<String>,
}

impl CityArgs {
    fn scale(&self) -> anyhow::Result<Scale> {
        Ok(match (self.devices, self.scale.as_deref()) {
            (Some(n), _) => Scale::devices(n)?,
            (None, None | Some("default")) => Scale::DEFAULT,
            (None, Some("large")) => Scale::LARGE,
            (None, Some(other)) => bail!("--scale is `default` or `large`, not `{other}`"),
        })
    }

    fn start(&self) -> anyhow::Result<SimTime> {
        match &self.start {
            None => Ok(dosi_fleet::now_sim()),
            Some(s) => parse_time(s).with_context(|| {
                format!("--start `{s}`: expected 2027-02-15T08:00 or 2027-02-15T01:00:00Z")
            }),
        }
    }

    /// The city, generated off the async threads (100,000 devices take a moment).
    async fn city(&self) -> anyhow::Result<City> {
        let (seed, scale) = (self.seed, self.scale()?);
        Ok(tokio::task::spawn_blocking(move || City::generate(seed, scale)).await?)
    }
}

/// `YYYY-MM-DDTHH:MM[:SS]` (city time) or the same with `Z` (UTC).
fn parse_time(s: &str) -> anyhow::Result<SimTime> {
    let (body, utc) = match s.strip_suffix('Z') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let (date, time) = body
        .split_once('T')
        .context("no `T` between date and time")?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || !(2..=3).contains(&t.len()) {
        bail!("not a date and time");
    }
    let y: i64 = d[0].parse()?;
    let (mo, da): (u32, u32) = (d[1].parse()?, d[2].parse()?);
    let (h, mi): (u32, u32) = (t[0].parse()?, t[1].parse()?);
    let sec: u32 = t.get(2).map_or(Ok(0), |x| x.parse())?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || sec > 59 {
        bail!("a field is out of range");
    }
    let utc_t = SimTime::from_utc(y, mo, da, h, mi, sec);
    Ok(if utc {
        utc_t
    } else {
        utc_t.plus_secs(-dosi_sim::CITY_UTC_OFFSET_S)
    })
}

/// A duration like `90s`, `10m`, `2h` (seconds without a unit).
fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1.0),
        Some('m') => (&s[..s.len() - 1], 60.0),
        Some('h') => (&s[..s.len() - 1], 3600.0),
        _ => (s, 1.0),
    };
    let v: f64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a duration (90s, 10m, 2h)"))?;
    if !(v >= 0.0 && v.is_finite()) {
        bail!("`{s}` is not a duration (90s, 10m, 2h)");
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// `flood` or `flood@+10m` (simulated time after the start).
fn parse_scenario(s: &str) -> anyhow::Result<(ScenarioKind, i64)> {
    let (kind, at) = match s.split_once('@') {
        Some((k, a)) => (k, Some(a)),
        None => (s, None),
    };
    let kind: ScenarioKind = kind.parse()?;
    let offset = match at {
        None => 0,
        Some(a) => {
            let a = a.strip_prefix('+').unwrap_or(a);
            parse_duration(a)
                .with_context(|| format!("--scenario {s}: expected kind[@+10m]"))?
                .as_secs() as i64
        }
    };
    Ok((kind, offset))
}

/// Flags of `dosi sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Base URL of the server's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:1026")]
    pub server: String,
    /// The server's MQTT broker (host:port); "" for none (every device over HTTP).
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt: String,
    /// Share of the sensors that publish over HTTP instead of MQTT (0 to 1).
    #[arg(long, default_value_t = 0.2)]
    pub http_share: f64,
    /// Scenarios to run: `flood`, `earthquake@+10m`, … (simulated time after the start).
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// How long to run (`90s`, `10m`, `2h`) [default: until Ctrl-C].
    #[arg(long)]
    pub duration: Option<String>,
    /// Provisioning requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Build every message but send nothing (measures the generator alone).
    #[arg(long)]
    pub dry_run: bool,
    /// The city.
    #[command(flatten)]
    pub city: CityArgs,
}

fn resolve_addr(a: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    a.to_socket_addrs()
        .with_context(|| format!("--mqtt `{a}` is not host:port"))?
        .next()
        .with_context(|| format!("--mqtt `{a}` resolves to no address"))
}

/// `dosi sim`
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    init_logging();
    let start = args.city.start()?;
    let city = args.city.city().await?;
    let mut scenarios = Vec::new();
    for s in &args.scenarios {
        let (kind, offset) = parse_scenario(s)?;
        scenarios.push(Scenario::demo(kind, &city, start.plus_secs(offset)));
    }
    let sim = Sim::with_scenarios(city, scenarios)?;
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    let cfg = FleetConfig {
        mqtt: if args.mqtt.is_empty() {
            None
        } else {
            Some(resolve_addr(&args.mqtt)?)
        },
        http_share: args.http_share,
        speed: args.city.speed.unwrap_or(1.0),
        start,
        concurrency: args.concurrency,
        dry_run: args.dry_run,
        ..FleetConfig::new(args.server.clone())
    };
    let began = Instant::now();
    let devices = sim.city().devices().len();
    let fleet = Fleet::start(cfg, sim).await?;
    let s = fleet.setup();
    println!(
        "dosi sim: {devices} devices ({} provisioned in {:.1} s, {} entities written in {:.1} s); publishing",
        s.devices, s.provision_s, s.entities, s.entities_s
    );
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut last = (Instant::now(), totals(&fleet));
    loop {
        let tick = tokio::time::sleep(Duration::from_secs(10));
        tokio::select! {
            _ = tick => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = sleep_until_opt(deadline) => break,
        }
        let now = (Instant::now(), totals(&fleet));
        let dt = now.0.duration_since(last.0).as_secs_f64();
        println!(
            "{}  sim {}  msgs/s {:.0} (acked {:.0})  measures/s {:.0}  {}",
            fmt_elapsed(began.elapsed()),
            fleet.sim_time().rfc3339(),
            (now.1 .0 - last.1 .0) as f64 / dt,
            (now.1 .1 - last.1 .1) as f64 / dt,
            (now.1 .2 - last.1 .2) as f64 / dt,
            counters_line(&fleet)
        );
        last = now;
    }
    fleet.stop().await;
    println!("{}", serde_json::to_string_pretty(&fleet.status())?);
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOSI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// (messages published, acknowledged, measures) over every transport.
fn totals(f: &Fleet) -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let (mut p, mut a) = (0, 0);
    for (_, c) in f.counters() {
        p += c.published.load(Relaxed);
        a += c.acked.load(Relaxed);
    }
    (p, a, f.measures())
}

fn counters_line(f: &Fleet) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    f.counters()
        .iter()
        .map(|(n, c)| {
            format!(
                "{n} {}/{}/{}",
                c.published.load(Relaxed),
                c.acked.load(Relaxed),
                c.failed.load(Relaxed)
            )
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// Flags of `dosi scenario`.
#[derive(clap::Args, Debug)]
pub struct ScenarioArgs {
    /// flood, earthquake, crash, pollution, bell, sos or camera-offline.
    pub kind: String,
    /// The entity it is aimed at (crash: a RoadSegment; bell: an
    /// EmergencyBell; sos: an SosTracker; camera-offline: a Camera).
    #[arg(long)]
    pub target: Option<String>,
    /// Base URL of the server running the simulator (`dosi demo`).
    #[arg(long, default_value = "http://127.0.0.1:1026")]
    pub server: String,
}

/// `dosi scenario`
pub async fn scenario(args: ScenarioArgs) -> anyhow::Result<()> {
    let mut body = serde_json::json!({"kind": args.kind});
    if let Some(t) = &args.target {
        body["target"] = Value::String(t.clone());
    }
    let url = format!("{}/api/v1/sim/scenarios", args.server.trim_end_matches('/'));
    let r = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
        Err(_) => println!("{text}"),
    }
    Ok(())
}

/// Flags of `dosi demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The platform (as `dosi serve`; demo defaults: HTTP 127.0.0.1:1026,
    /// data in ./dosi-demo-data, MQTT on 127.0.0.1:1883 or a free port).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Share of the sensors that publish over HTTP instead of MQTT (0 to 1).
    #[arg(long, default_value_t = 0.2)]
    pub http_share: f64,
    /// The city.
    #[command(flatten)]
    pub city: CityArgs,
}

/// `/api/v1/sim` on the fleet.
struct Control(Fleet);

impl SimControl for Control {
    fn status(&self) -> Value {
        self.0.status()
    }

    fn trigger(&self, kind: &str, target: Option<&str>) -> dosi_ngsi::Result<Value> {
        self.0
            .trigger(kind, target)
            .map_err(|e| NgsiError::bad_data(e.to_string()))
    }

    fn basemap(&self) -> Option<Arc<Vec<u8>>> {
        Some(self.0.basemap())
    }
}

/// The address clients reach a listener on (0.0.0.0 → 127.0.0.1).
fn reachable(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), a.port())
    } else {
        a
    }
}

/// `dosi demo`
pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let began = Instant::now();
    let mut serve = args.serve.clone();
    serve.http.get_or_insert_with(|| "127.0.0.1:1026".into());
    serve
        .data_dir
        .get_or_insert_with(|| "./dosi-demo-data".into());
    if serve.mqtt.is_none() {
        // The usual port, unless another broker has it: then any free one.
        let usual = "127.0.0.1:1883";
        serve.mqtt = Some(match std::net::TcpListener::bind(usual) {
            Ok(_) => usual.into(),
            Err(_) => "127.0.0.1:0".into(),
        });
    }
    let mut cfg = crate::serve::config_for(serve)?;
    if cfg.iot.offline_after_secs == 0 {
        // Liveness on, so a camera that goes offline shows (each simulated
        // device also gets an interval fitted to its reporting and the speed).
        cfg.iot.offline_after_secs = 900;
    }
    let start = args.city.start()?;
    let speed = args.city.speed.unwrap_or(10.0);
    let city = args.city.city().await?;
    let running = crate::serve::start(cfg).await?;
    let http = reachable(running.http_addr);
    println!("dosi listening on http://{http}");
    let mqtt = running.mqtt_addr.map(reachable);
    if let Some(m) = mqtt {
        println!("dosi demo: MQTT broker on {m}");
    }
    let devices = city.devices().len();
    println!("dosi demo: provisioning Dosi City ({devices} devices) at speed {speed}…");
    let fcfg = FleetConfig {
        mqtt,
        http_share: args.http_share,
        speed,
        start,
        ..FleetConfig::new(format!("http://{http}"))
    };
    let fleet = tokio::select! {
        f = Fleet::start(fcfg, Sim::new(city)) => Some(f.context("setting up the simulated city")?),
        _ = running.signalled() => None,
    };
    let Some(fleet) = fleet else {
        return running.wait().await;
    };
    let _ = running.state.sim.set(Arc::new(Control(fleet.clone())));
    let s = fleet.setup();
    println!(
        "dosi demo: {} devices provisioned in {:.1} s, {} entities written in {:.1} s ({:.1} s since start)",
        s.devices,
        s.provision_s,
        s.entities,
        s.entities_s,
        began.elapsed().as_secs_f64()
    );
    println!("dosi demo: console at http://{http}/");
    running.signalled().await;
    fleet.stop().await;
    running.wait().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_durations_scenarios() {
        assert_eq!(
            parse_time("2027-02-15T08:00").unwrap(),
            SimTime::from_local(2027, 2, 15, 8, 0)
        );
        assert_eq!(
            parse_time("2027-02-15T01:00:30Z").unwrap(),
            SimTime::from_utc(2027, 2, 15, 1, 0, 30)
        );
        assert!(parse_time("2027-13-15T01:00").is_err());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("-1m").is_err());
        assert_eq!(
            parse_scenario("flood@+10m").unwrap(),
            (ScenarioKind::Flood, 600)
        );
        assert_eq!(
            parse_scenario("camera-offline").unwrap(),
            (ScenarioKind::CameraOffline, 0)
        );
        assert!(parse_scenario("tsunami").is_err());
    }
}
