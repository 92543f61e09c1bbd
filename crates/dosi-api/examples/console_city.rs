//! A development server for the console: the dosi API over a fresh store in
//! a temporary directory, with Dosi City simulated in-process and written
//! through the API's own batch upsert, and a [`SimControl`] so the scenario
//! panel works. `dosi demo` is the product; this is what the console's
//! browser test (`e2e/`) and its benchmarks run against.
//!
//! ```text
//! cargo run -p dosi-api --example console_city -- [addr] [devices] [speed]
//! # defaults: 127.0.0.1:8085 5000 60; prints "listening on http://…"
//! ```

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use dosi_api::contexts::Contexts;
use dosi_api::sim::SimControl;
use dosi_api::{AllowAll, ApiConfig, AppState};
use dosi_broker::Broker;
use dosi_bus::InProcessBus;
use dosi_ngsi::{NgsiError, Result};
use dosi_notify::{Notifier, NotifierConfig};
use dosi_sim::{City, Scale, Scenario, ScenarioKind, Sim, SimTime};
use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};
use parking_lot::RwLock;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The allocator the `dosi` binary uses, so measurements match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct DevSim {
    sim: RwLock<Sim>,
    now: AtomicI64,
    speed: f64,
    basemap: Arc<Vec<u8>>,
}

impl SimControl for DevSim {
    fn status(&self) -> Value {
        let sim = self.sim.read();
        let active: Vec<Value> = sim
            .scenarios()
            .map(|s| json!({"kind": s.kind().as_str(), "target": s.target(), "start": s.start().rfc3339()}))
            .collect();
        json!({
            "simTime": SimTime(self.now.load(Ordering::Relaxed)).rfc3339(),
            "speed": self.speed,
            "devices": sim.city().devices().len(),
            "scenarios": ScenarioKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "active": active,
        })
    }

    fn trigger(&self, kind: &str, target: Option<&str>) -> Result<Value> {
        let kind: ScenarioKind = kind
            .parse()
            .map_err(|e: dosi_sim::Error| NgsiError::bad_data(e.to_string()))?;
        if target.is_some() {
            return Err(NgsiError::bad_data(
                "this development city starts scenarios at their demo targets only",
            ));
        }
        // Just after the last tick, so the next tick sees the change (a
        // change at the tick itself would look like the state before it).
        let at = SimTime(self.now.load(Ordering::Relaxed) + 1);
        let mut sim = self.sim.write();
        let scenario = Scenario::demo(kind, sim.city(), at);
        let out =
            json!({"kind": kind.as_str(), "target": scenario.target(), "start": at.rfc3339()});
        sim.add_scenario(scenario)
            .map_err(|e| NgsiError::bad_data(e.to_string()))?;
        Ok(out)
    }

    fn basemap(&self) -> Option<Arc<Vec<u8>>> {
        Some(self.basemap.clone())
    }
}

const LINK: &str = "<https://dosi.city/contexts/packs.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";

async fn upsert(router: &axum::Router, entities: Vec<Value>) {
    for chunk in entities.chunks(1000) {
        let body = serde_json::to_vec(chunk).expect("entities serialize");
        let req = Request::post("/ngsi-ld/v1/entityOperations/upsert")
            .header("content-type", "application/json")
            .header("link", LINK)
            .header("content-length", body.len())
            .body(Body::from(body))
            .expect("a valid request");
        match router.clone().oneshot(req).await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => eprintln!("upsert answered {}", r.status()),
            Err(e) => eprintln!("upsert failed: {e}"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8085".into());
    let devices: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5000);
    let speed: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(60.0);
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::open(
        dir.path(),
        EmbeddedOptions {
            fsync: false,
            ..Default::default()
        },
    )?;
    let broker = Arc::new(Broker::new(store, Arc::new(InProcessBus::new(65536))));
    let contexts = Arc::new(Contexts::new(
        format!("http://{addr}/ngsi-ld/v1/jsonldContexts"),
        Duration::from_secs(2),
    ));
    contexts.load_persisted(broker.store().clone()).await?;
    let notifier = Notifier::open(
        NotifierConfig::new(dir.path().join("outbox")),
        broker.clone(),
        contexts.clone(),
    )
    .await?;
    let history =
        dosi_history::History::open(dosi_history::HistoryConfig::new(dir.path().join("history")))?;
    broker.add_hook(history.hook());
    let state = AppState::new(dosi_api::state::Shared {
        broker: broker.clone(),
        contexts,
        notifier,
        history: Some(history),
        iot: None,
        mqtt_out: Default::default(),
        iot_run: Default::default(),
        sim: Default::default(),
        config: Arc::new(ApiConfig {
            console_tile_url: std::env::var("DOSI_TILE_URL").unwrap_or_default(),
            ..ApiConfig::default()
        }),
        metrics: None,
        ready: Arc::new(AtomicBool::new(true)),
        node: Arc::new(dosi_api::state::NodeInfo::new(
            "urn:ngsi-ld:ContextSource:console-city",
        )),
    });
    let city = City::generate(42, Scale::devices(devices.max(2000))?);
    let basemap = Arc::new(serde_json::to_vec(&city.geojson())?);
    let start = SimTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64,
    );
    let dev = Arc::new(DevSim {
        sim: RwLock::new(Sim::new(city)),
        now: AtomicI64::new(start.0),
        speed,
        basemap,
    });
    let _ = state.sim.set(dev.clone());
    let router = dosi_api::router(state, Arc::new(AllowAll));

    let t0 = std::time::Instant::now();
    let all: Vec<Value> = {
        let sim = dev.sim.read();
        (0..sim.city().devices().len())
            .map(|i| sim.entity(i, start))
            .collect()
    };
    let n = all.len();
    upsert(&router, all).await;
    eprintln!("seeded {n} entities in {:.1} s", t0.elapsed().as_secs_f64());

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let ticker = router.clone();
    tokio::spawn(async move {
        let mut prev = start;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let wall = std::time::Instant::now();
        loop {
            tick.tick().await;
            let now = SimTime(start.0 + (wall.elapsed().as_secs_f64() * dev.speed) as i64);
            dev.now.store(now.0, Ordering::Relaxed);
            let batch: Vec<Value> = {
                let sim = dev.sim.read();
                sim.due_between(prev, now)
                    .into_iter()
                    .map(|i| sim.entity(i, now))
                    .collect()
            };
            prev = now;
            upsert(&ticker, batch).await;
        }
    });
    axum::serve(listener, router).await?;
    Ok(())
}
