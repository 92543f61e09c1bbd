//! The city simulator made live: runs a [`dosi_sim::Sim`] in real time
//! against a running dosi server, exactly as real devices would. It
//! provisions every sensor over HTTP (a service group per pack, each device
//! with its attribute mappings and its own access token), writes the city's
//! initial entities and its context entities through the NGSI-LD API, then
//! publishes each device's measures when it is due: over MQTT (one
//! connection per device, username = device id, password = token, IoT Agent
//! JSON at QoS 1) or, for a share of them, over HTTP with a Bearer token.
//! Scenarios can be started while it runs ([`Fleet::trigger`]).
//!
//! This crate is a client: it knows the server only through its public
//! HTTP and MQTT interfaces and depends on no server crate. The pure models
//! stay in `dosi-sim`.

mod counters;
mod mqtt;
mod provision;
pub mod wire;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dosi_sim::{Kind, Reporting, Scenario, ScenarioKind, Sim, SimTime};
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

pub use counters::Counters;

/// What can go wrong running a fleet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached.
    #[error("{what}: {source}")]
    Http {
        /// The request.
        what: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("{what}: the server answered {status}: {body}")]
    Refused {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The answer's body (a problem document).
        body: String,
    },
    /// A scenario or scale the simulator refuses.
    #[error(transparent)]
    Sim(#[from] dosi_sim::Error),
    /// A target given to a scenario that is not aimed at one entity.
    #[error("the {kind} scenario takes no target (it affects the whole city)")]
    NoTarget {
        /// The scenario kind.
        kind: &'static str,
    },
    /// Bad settings.
    #[error("{0}")]
    Config(String),
}

/// How a fleet runs.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Base URL of the server's HTTP API (`http://127.0.0.1:1026`).
    pub server: String,
    /// The server's MQTT broker; `None`: every device uses HTTP.
    pub mqtt: Option<SocketAddr>,
    /// Share of the sensors that publish over HTTP instead of MQTT, 0 to 1.
    pub http_share: f64,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated time when the fleet starts.
    pub start: SimTime,
    /// Real time between two publishing rounds.
    pub tick: Duration,
    /// Provisioning requests in flight at once.
    pub concurrency: usize,
    /// Build every message but send none (measures the generator alone).
    pub dry_run: bool,
}

impl FleetConfig {
    /// Defaults for `server`: MQTT off, 20 % HTTP, speed 1, starting now.
    pub fn new(server: impl Into<String>) -> FleetConfig {
        FleetConfig {
            server: server.into(),
            mqtt: None,
            http_share: 0.2,
            speed: 1.0,
            start: now_sim(),
            tick: Duration::from_millis(250),
            concurrency: 16,
            dry_run: false,
        }
    }
}

/// The current real time as a simulated instant.
pub fn now_sim() -> SimTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    SimTime(secs)
}

/// The transports a device can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Mqtt,
    Http,
    /// Context entity written through NGSI-LD.
    Ngsi,
}

/// Real time → simulated time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    origin: Instant,
    start: SimTime,
    speed: f64,
}

impl Clock {
    fn now(&self) -> SimTime {
        let dt = self.origin.elapsed().as_secs_f64() * self.speed;
        self.start.plus_secs(dt.floor() as i64)
    }
}

/// How long setting up the city took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup {
    /// Sensors provisioned as devices.
    pub devices: usize,
    /// Entities written.
    pub entities: usize,
    /// Seconds to provision the devices.
    pub provision_s: f64,
    /// Seconds to write the entities.
    pub entities_s: f64,
}

struct Inner {
    cfg: FleetConfig,
    sim: RwLock<Sim>,
    clock: Clock,
    transports: Vec<Transport>,
    tokens: Vec<Arc<str>>,
    senders: Mutex<Vec<Option<mpsc::Sender<Vec<u8>>>>>,
    mqtt: Arc<Counters>,
    http: Arc<Counters>,
    ngsi: Arc<Counters>,
    measures: std::sync::atomic::AtomicU64,
    pending: Mutex<Vec<usize>>,
    client: reqwest::Client,
    http_gate: Arc<Semaphore>,
    basemap: Arc<Vec<u8>>,
    setup: Setup,
    stopped: AtomicBool,
    stop: tokio::sync::Notify,
}

/// A running fleet of simulated devices.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Whether device `index` of a city seeded `seed` publishes over HTTP.
fn uses_http(seed: u64, index: usize, share: f64) -> bool {
    // splitmix64: a fixed, well-spread choice per device.
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z as f64 / u64::MAX as f64) < share
}

/// The source address of device `index`'s MQTT connection: on loopback,
/// spread over 127.0.0.x, 20,000 devices each (one address has only about
/// 28,000 ephemeral ports).
fn source_for(broker: SocketAddr, index: usize, devices: usize) -> Option<IpAddr> {
    match broker.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && devices > 20_000 => {
            let n = 2 + (index / 20_000) as u8;
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        }
        _ => None,
    }
}

impl Fleet {
    /// Provisions the city of `sim` on the server (service groups, devices
    /// with tokens, the initial entities at `cfg.start`), opens the MQTT
    /// sessions (each connects on its first message) and starts publishing
    /// in real time.
    pub async fn start(cfg: FleetConfig, sim: Sim) -> Result<Fleet, Error> {
        if !(cfg.speed > 0.0 && cfg.speed.is_finite()) {
            return Err(Error::Config(format!(
                "speed must be a positive number, not {}",
                cfg.speed
            )));
        }
        if !(0.0..=1.0).contains(&cfg.http_share) {
            return Err(Error::Config(format!(
                "the HTTP share must be between 0 and 1, not {}",
                cfg.http_share
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(128)
            .build()
            .map_err(|e| Error::Http {
                what: "building the HTTP client".into(),
                source: e,
            })?;
        let city = sim.city();
        let seed = city.seed;
        let n = city.devices().len();
        let transports: Vec<Transport> = city
            .devices()
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if !d.is_sensor() {
                    Transport::Ngsi
                } else if cfg.mqtt.is_none() || uses_http(seed, i, cfg.http_share) {
                    Transport::Http
                } else {
                    Transport::Mqtt
                }
            })
            .collect();
        let tokens: Vec<Arc<str>> = (0..n).map(|_| Arc::from(new_token())).collect();
        let basemap = Arc::new(serde_json::to_vec(&city.geojson()).unwrap_or_default());
        let mut setup = Setup::default();
        if !cfg.dry_run {
            let p = provision::Provisioner {
                client: &client,
                server: cfg.server.trim_end_matches('/'),
                concurrency: cfg.concurrency.max(1),
                speed: cfg.speed,
            };
            let t = Instant::now();
            setup.devices = p.devices(&sim, &transports, &tokens).await?;
            setup.provision_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            setup.entities = p.entities(&sim, cfg.start).await?;
            setup.entities_s = t.elapsed().as_secs_f64();
        }
        let mqtt = Arc::new(Counters::default());
        let mut senders = Vec::with_capacity(n);
        let mut tasks = Vec::new();
        let gate = Arc::new(Semaphore::new(64));
        for (i, t) in transports.iter().enumerate() {
            match (t, cfg.mqtt) {
                (Transport::Mqtt, Some(broker)) if !cfg.dry_run => {
                    let (tx, rx) = mpsc::channel(4);
                    let d = &sim.city().devices()[i];
                    let ep = mqtt::Endpoint {
                        broker,
                        source: source_for(broker, i, n),
                    };
                    tasks.push(tokio::spawn(mqtt::device_session(
                        ep,
                        d.id.0.clone(),
                        tokens[i].clone(),
                        format!("/json/{}/{}/attrs", provision::apikey(d.pack), d.id),
                        rx,
                        mqtt.clone(),
                        gate.clone(),
                    )));
                    senders.push(Some(tx));
                }
                _ => senders.push(None),
            }
        }
        let inner = Arc::new(Inner {
            clock: Clock {
                origin: Instant::now(),
                start: cfg.start,
                speed: cfg.speed,
            },
            cfg,
            sim: RwLock::new(sim),
            transports,
            tokens,
            senders: Mutex::new(senders),
            mqtt,
            http: Arc::default(),
            ngsi: Arc::default(),
            measures: Default::default(),
            pending: Mutex::new(Vec::new()),
            client,
            http_gate: Arc::new(Semaphore::new(64)),
            basemap,
            setup,
            stopped: AtomicBool::new(false),
            stop: tokio::sync::Notify::new(),
        });
        tasks.push(tokio::spawn(run(inner.clone())));
        Ok(Fleet {
            inner,
            tasks: Arc::new(Mutex::new(tasks)),
        })
    }

    /// How long setting up took.
    pub fn setup(&self) -> Setup {
        self.inner.setup
    }

    /// The current simulated time.
    pub fn sim_time(&self) -> SimTime {
        self.inner.clock.now()
    }

    /// Counters of the MQTT, HTTP and NGSI-LD (context entities) transports.
    pub fn counters(&self) -> [(&'static str, &Counters); 3] {
        [
            ("mqtt", &self.inner.mqtt),
            ("http", &self.inner.http),
            ("ngsi", &self.inner.ngsi),
        ]
    }

    /// Measures (attribute values) generated so far.
    pub fn measures(&self) -> u64 {
        self.inner.measures.load(Ordering::Relaxed)
    }

    /// The city's geometry as serialized GeoJSON (the console's basemap).
    pub fn basemap(&self) -> Arc<Vec<u8>> {
        self.inner.basemap.clone()
    }

    /// Starts scenario `kind` (`flood`, `earthquake`, `crash`, `pollution`,
    /// `bell`, `sos`, `camera-offline`) at the current simulated time, aimed
    /// at `target` (an entity id) or the demo's default, and has the
    /// affected devices publish in the next round. Answers what started.
    pub fn trigger(&self, kind: &str, target: Option<&str>) -> Result<Value, Error> {
        let kind: ScenarioKind = kind.parse()?;
        let now = self.inner.clock.now();
        let mut sim = self.inner.sim.write();
        let mut scenario = Scenario::demo(kind, sim.city(), now);
        if let Some(t) = target {
            let t = t.to_owned();
            match &mut scenario {
                Scenario::Crash(c) => c.segment = t,
                Scenario::BellPressed(b) => b.bell = t,
                Scenario::SosWander(s) => s.tracker = t,
                Scenario::CameraOffline(c) => c.camera = t,
                _ => {
                    return Err(Error::NoTarget {
                        kind: kind.as_str(),
                    })
                }
            }
        }
        sim.add_scenario(scenario.clone())?;
        let affected = affected(&sim, &scenario);
        drop(sim);
        let n = affected.len();
        self.inner.pending.lock().extend(affected);
        self.inner.stop.notify_waiters();
        Ok(json!({
            "kind": kind.as_str(),
            "start": now.rfc3339(),
            "target": scenario.target(),
            "scenario": scenario,
            "devices": n,
        }))
    }

    /// The fleet's state: simulated time, speed, devices, counters per
    /// transport, the scenario kinds and the scenarios started.
    pub fn status(&self) -> Value {
        let i = &self.inner;
        let sim = i.sim.read();
        let count = |t: Transport| i.transports.iter().filter(|&&x| x == t).count();
        let s = &i.setup;
        json!({
            "simTime": i.clock.now().rfc3339(),
            "start": i.cfg.start.rfc3339(),
            "speed": i.cfg.speed,
            "elapsedSecs": i.clock.origin.elapsed().as_secs_f64(),
            "devices": sim.city().devices().len(),
            "seed": sim.city().seed,
            "byTransport": {
                "mqtt": count(Transport::Mqtt),
                "http": count(Transport::Http),
                "ngsi": count(Transport::Ngsi),
            },
            "transports": {
                "mqtt": i.mqtt.to_json(),
                "http": i.http.to_json(),
                "ngsi": i.ngsi.to_json(),
            },
            "measures": i.measures.load(Ordering::Relaxed),
            "setup": {
                "devices": s.devices,
                "entities": s.entities,
                "provisionSecs": s.provision_s,
                "entitiesSecs": s.entities_s,
            },
            "scenarios": ScenarioKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            // `kind` as the trigger names it (`bell`, not the parameters' `bellPressed`).
            "active": sim.scenarios().map(|s| json!({
                "kind": s.kind().as_str(),
                "target": s.target(),
                "start": s.start().rfc3339(),
                "parameters": s,
            })).collect::<Vec<_>>(),
        })
    }

    /// Stops publishing and closes the MQTT sessions (waiting up to 5 s for
    /// messages in flight).
    pub async fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.stop.notify_waiters();
        self.inner.senders.lock().iter_mut().for_each(|s| *s = None);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        let _ =
            tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(tasks)).await;
    }
}

/// The devices a scenario changes, which publish at once when it starts.
fn affected(sim: &Sim, s: &Scenario) -> Vec<usize> {
    let devs = sim.city().devices();
    let of_type = |types: &[&str]| -> Vec<usize> {
        devs.iter()
            .enumerate()
            .filter(|(_, d)| types.contains(&d.entity_type))
            .map(|(i, _)| i)
            .collect()
    };
    match s {
        Scenario::Flood(_) => of_type(&["WaterObserved", "WeatherObserved"]),
        Scenario::Earthquake(_) => of_type(&["SeismicObserved"]),
        Scenario::Pollution(_) => of_type(&["AirQualityObserved"]),
        Scenario::Crash(c) => {
            let seg = sim
                .city()
                .device_by_entity(&c.segment)
                .and_then(|(_, d)| match d.kind {
                    Kind::RoadSegment { segment } => Some(segment),
                    _ => None,
                });
            devs.iter()
                .enumerate()
                .filter(|(_, d)| match d.kind {
                    Kind::RoadSegment { segment } => Some(segment) == seg,
                    Kind::TrafficDetector { .. } => true,
                    _ => false,
                })
                .map(|(i, _)| i)
                .collect()
        }
        other => other
            .target()
            .and_then(|t| sim.city().device_by_entity(t))
            .map(|(i, _)| vec![i])
            .unwrap_or_default(),
    }
}

/// A random access token, 40 alphanumeric characters.
fn new_token() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

/// When a due device's reading is taken: its last sampling tick in
/// `(prev, now]`, or `now` (an earthquake's arrival, a triggered scenario).
fn observed_at(reporting: Reporting, phase_s: u32, prev: SimTime, now: SimTime) -> SimTime {
    let every = match reporting {
        Reporting::Periodic { every_s } => every_s,
        Reporting::OnChange { check_s, .. } => check_s,
        Reporting::Static => return now,
    };
    let every = i64::from(every.max(1));
    let t = now.0 - (now.0 - i64::from(phase_s)).rem_euclid(every);
    if t > prev.0 {
        SimTime(t)
    } else {
        now
    }
}

/// A device's IoT Agent JSON payload at `t`: one measure group per
/// observation time (`TimeInstant`), oldest first.
pub fn payload(sim: &Sim, index: usize, t: SimTime) -> (Vec<u8>, usize) {
    let mut rng = sim.rng_for(index, t);
    let ms = sim.measures(index, t, &mut rng);
    let n = ms.len();
    let mut groups: BTreeMap<SimTime, Map<String, Value>> = BTreeMap::new();
    for m in ms {
        groups
            .entry(m.since.unwrap_or(t))
            .or_default()
            .insert(m.attr.to_owned(), m.value);
    }
    let mut list: Vec<Value> = groups
        .into_iter()
        .map(|(at, mut g)| {
            g.insert("TimeInstant".into(), Value::String(at.rfc3339()));
            Value::Object(g)
        })
        .collect();
    let v = if list.len() == 1 {
        list.pop().unwrap_or_default()
    } else {
        Value::Array(list)
    };
    (serde_json::to_vec(&v).unwrap_or_default(), n)
}

/// One publishing round's messages.
#[derive(Default)]
struct Round {
    mqtt: Vec<(usize, Vec<u8>)>,
    http: Vec<(usize, String, Vec<u8>)>,
    ngsi: Vec<Value>,
    measures: u64,
}

fn build_round(inner: &Inner, prev: SimTime, now: SimTime, urgent: Vec<usize>) -> Round {
    let sim = inner.sim.read();
    let mut due = if now > prev {
        sim.due_between(prev, now)
    } else {
        Vec::new()
    };
    let mut urgent = urgent;
    urgent.sort_unstable();
    urgent.dedup();
    if !urgent.is_empty() {
        due.extend(&urgent);
        due.sort_unstable();
        due.dedup();
    }
    let devs = sim.city().devices();
    let mut r = Round::default();
    for i in due {
        let d = &devs[i];
        let t = observed_at(d.reporting, d.phase_s, prev, now);
        match inner.transports[i] {
            Transport::Ngsi => {
                r.ngsi.push(sim.entity(i, now));
                r.measures += 1;
            }
            tr => {
                if d.kind == Kind::Camera
                    && urgent.binary_search(&i).is_err()
                    && camera_offline(&sim, i, prev)
                {
                    // An offline camera is silent once it has said so
                    // (liveness then marks it offline).
                    continue;
                }
                let (p, n) = payload(&sim, i, t);
                r.measures += n as u64;
                if tr == Transport::Mqtt {
                    r.mqtt.push((i, p));
                } else {
                    r.http.push((i, d.id.0.clone(), p));
                }
            }
        }
    }
    r
}

fn camera_offline(sim: &Sim, index: usize, t: SimTime) -> bool {
    let mut rng = sim.rng_for(index, t);
    sim.measures(index, t, &mut rng)
        .iter()
        .any(|m| m.attr == "status" && m.value == "offline")
}

async fn run(inner: Arc<Inner>) {
    let mut prev = inner.cfg.start;
    let mut iv = tokio::time::interval(inner.cfg.tick);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = iv.tick() => {}
            _ = inner.stop.notified() => {}
        }
        if inner.stopped.load(Ordering::SeqCst) {
            return;
        }
        let now = inner.clock.now();
        let urgent = std::mem::take(&mut *inner.pending.lock());
        if now <= prev && urgent.is_empty() {
            continue;
        }
        let i2 = inner.clone();
        let round =
            match tokio::task::spawn_blocking(move || build_round(&i2, prev, now, urgent)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "building a publishing round failed");
                    continue;
                }
            };
        prev = prev.max(now);
        dispatch(&inner, round);
    }
}

fn dispatch(inner: &Arc<Inner>, round: Round) {
    inner.measures.fetch_add(round.measures, Ordering::Relaxed);
    if inner.cfg.dry_run {
        for (c, n) in [
            (&inner.mqtt, round.mqtt.len()),
            (&inner.http, round.http.len()),
            (&inner.ngsi, round.ngsi.len()),
        ] {
            c.published.fetch_add(n as u64, Ordering::Relaxed);
            c.acked.fetch_add(n as u64, Ordering::Relaxed);
        }
        return;
    }
    {
        let senders = inner.senders.lock();
        for (i, p) in round.mqtt {
            let ok = senders[i].as_ref().is_some_and(|tx| tx.try_send(p).is_ok());
            if !ok {
                // The device is still busy with earlier messages (or stopped).
                inner.mqtt.published.fetch_add(1, Ordering::Relaxed);
                inner.mqtt.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let server = inner.cfg.server.trim_end_matches('/').to_owned();
    for (i, id, p) in round.http {
        let c = inner.http.clone();
        c.published.fetch_add(1, Ordering::Relaxed);
        let backlog = c.published.load(Ordering::Relaxed)
            - c.acked.load(Ordering::Relaxed)
            - c.failed.load(Ordering::Relaxed);
        if backlog > 50_000 {
            c.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let gate = inner.http_gate.clone();
        let client = inner.client.clone();
        let token = inner.tokens[i].clone();
        let url = format!("{server}/api/v1/devices/{id}/measures");
        tokio::spawn(async move {
            let Ok(_permit) = gate.acquire().await else {
                return;
            };
            let out = client
                .post(&url)
                .bearer_auth(&*token)
                .header("content-type", "application/json")
                .body(p)
                .send()
                .await;
            match out {
                Ok(r) if r.status().is_success() => {
                    c.acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    tracing::debug!(device = %id, %status, %body, "HTTP measure refused");
                    c.failed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(device = %id, error = %e, "HTTP measure failed");
                    c.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    if !round.ngsi.is_empty() {
        let client = inner.client.clone();
        let c = inner.ngsi.clone();
        let entities = round.ngsi;
        tokio::spawn(async move {
            let n = entities.len() as u64;
            c.published.fetch_add(n, Ordering::Relaxed);
            let p = provision::Provisioner {
                client: &client,
                server: &server,
                concurrency: 4,
                speed: 1.0,
            };
            match p.upsert(entities).await {
                Ok(_) => c.acked.fetch_add(n, Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!(error = %e, "writing context entities failed");
                    c.failed.fetch_add(n, Ordering::Relaxed)
                }
            };
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dosi_sim::{City, Scale};

    #[test]
    fn payloads_carry_their_observation_time() {
        let city = City::generate(7, Scale::DEFAULT);
        let sim = Sim::new(city);
        let t = SimTime::from_local(2027, 2, 15, 8, 0);
        let spot = sim
            .city()
            .devices()
            .iter()
            .position(|d| d.entity_type == "ParkingSpot")
            .unwrap();
        let (p, n) = payload(&sim, spot, t);
        assert_eq!(n, 1);
        let v: Value = serde_json::from_slice(&p).unwrap();
        assert!(
            v["status"].is_string() && v["TimeInstant"].is_string(),
            "{v}"
        );
        let aq = sim
            .city()
            .devices()
            .iter()
            .position(|d| d.entity_type == "AirQualityObserved")
            .unwrap();
        let (p, n) = payload(&sim, aq, t);
        let v: Value = serde_json::from_slice(&p).unwrap();
        assert_eq!(v["TimeInstant"], t.rfc3339());
        assert!(v["pm25"].is_number() && n > 5, "{v}");
    }

    #[test]
    fn observation_times_fall_on_ticks() {
        let r = Reporting::Periodic { every_s: 60 };
        assert_eq!(observed_at(r, 7, SimTime(100), SimTime(130)), SimTime(127));
        assert_eq!(observed_at(r, 7, SimTime(128), SimTime(130)), SimTime(130));
        assert_eq!(
            observed_at(Reporting::Static, 0, SimTime(1), SimTime(9)),
            SimTime(9)
        );
    }

    #[test]
    fn http_share_is_about_right() {
        let n = (0..10_000).filter(|&i| uses_http(42, i, 0.2)).count();
        assert!((1_700..2_300).contains(&n), "{n}");
        assert_eq!((0..1000).filter(|&i| uses_http(1, i, 0.0)).count(), 0);
        assert_eq!((0..1000).filter(|&i| uses_http(1, i, 1.0)).count(), 1000);
    }

    #[test]
    fn scenarios_affect_their_devices() {
        let sim = Sim::new(City::generate(3, Scale::DEFAULT));
        let t = SimTime::from_local(2027, 2, 15, 8, 0);
        for k in ScenarioKind::ALL {
            let s = Scenario::demo(k, sim.city(), t);
            assert!(!affected(&sim, &s).is_empty(), "{k}");
        }
    }
}
