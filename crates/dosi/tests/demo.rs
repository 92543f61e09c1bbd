//! `dosi demo` as a user runs it: the real binary on ephemeral ports with a
//! small city (2,000 devices) at 60× speed. Entities of every pack appear
//! through NGSI-LD, measures arrive over MQTT and HTTP, each of the seven
//! scenarios changes the data the way its description says, the control
//! surface answers, and a second run on the same data directory works
//! (devices exist: updated, tokens rotated). Every wait polls with a
//! deadline; nothing asserts on time.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Demo {
    child: Child,
    base: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dosi demo` over `dir` and waits for its console line.
fn start(dir: &std::path::Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dosi"))
        .args([
            "demo",
            "--http",
            "127.0.0.1:0",
            "--mqtt",
            "127.0.0.1:0",
            "--devices",
            "2000",
            "--speed",
            "60",
            "--start",
            "2027-02-15T09:00",
            "--data-dir",
        ])
        .arg(dir)
        .env("DOSI_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dosi demo");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("dosi demo exited before its console was ready")
            .expect("read stdout");
        eprintln!("{line}");
        if let Some(url) = line.strip_prefix("dosi demo: console at ") {
            break url.trim().trim_end_matches('/').to_string();
        }
    };
    // Keep draining stdout so the process never blocks on it.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Demo { child, base }
}

fn link(pack: &str) -> String {
    format!(
        "<https://dosi.city/contexts/{pack}.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
    )
}

/// GET `path` on the server with `pack`'s context; the JSON answer.
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    pack: &str,
    path: &str,
) -> T {
    let r = http
        .get(format!("{base}{path}"))
        .header("link", link(pack))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// GET `path` of the platform API (no @context): the JSON answer.
async fn api_get(http: &reqwest::Client, base: &str, path: &str) -> Value {
    let r = http.get(format!("{base}{path}")).send().await.unwrap();
    r.json().await.unwrap()
}

/// Entities of `ty` (keyValues, short names of `pack`'s context).
async fn entities(http: &reqwest::Client, base: &str, pack: &str, ty: &str) -> Vec<Value> {
    let path = format!("/ngsi-ld/v1/entities?type={ty}&limit=1000&options=keyValues");
    get_json(http, base, pack, &path).await
}

async fn entity(http: &reqwest::Client, base: &str, pack: &str, id: &str) -> Value {
    let path = format!("/ngsi-ld/v1/entities/{id}?options=keyValues");
    get_json(http, base, pack, &path).await
}

/// Temporal entities matching `query` (temporalValues, `pack`'s short names).
async fn history(http: &reqwest::Client, base: &str, pack: &str, query: &str) -> Vec<Value> {
    let path = format!("/ngsi-ld/v1/temporal/entities?{query}&options=temporalValues&limit=100");
    get_json(http, base, pack, &path).await
}

/// The values of `attr` in a temporalValues entity.
fn values(e: &Value, attr: &str) -> Vec<Value> {
    e[attr]["values"]
        .as_array()
        .map(|l| l.iter().map(|p| p[0].clone()).collect())
        .unwrap_or_default()
}

fn numbers(list: &[Value], attr: &str) -> Vec<f64> {
    list.iter().filter_map(|e| e[attr].as_f64()).collect()
}

fn max(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::MIN, f64::max)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Polls `check` until it answers `Some`, failing with `what` after `limit`.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn trigger(http: &reqwest::Client, base: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/v1/sim/scenarios"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

const TYPES: [(&str, &str); 16] = [
    ("parking", "ParkingSpot"),
    ("parking", "OffStreetParking"),
    ("traffic", "TrafficFlowObserved"),
    ("traffic", "RoadSegment"),
    ("air-quality", "AirQualityObserved"),
    ("flood", "WaterObserved"),
    ("flood", "WeatherObserved"),
    ("earthquake", "SeismicObserved"),
    ("security", "EmergencyBell"),
    ("security", "Device"),
    ("social-safety", "SosTracker"),
    ("social-safety", "Geofence"),
    ("smart-farm", "AgriParcel"),
    ("smart-farm", "AgriParcelRecord"),
    ("smart-farm", "AgriGreenhouse"),
    ("cctv", "Camera"),
];

const PATIENCE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_city_lives_scenarios_change_it_and_it_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let demo = start(dir.path());
    let base = demo.base.clone();

    // Entities of every pack, each type with the pack's shape.
    for (pack, ty) in TYPES {
        let list = entities(&http, &base, pack, ty).await;
        assert!(!list.is_empty(), "no {ty} entities");
        assert!(
            list[0]["location"].is_object(),
            "{ty} has a location: {}",
            list[0]
        );
    }

    // The control surface.
    let status: Value = api_get(&http, &base, "/api/v1/sim").await;
    assert_eq!(status["devices"], 2000, "{status}");
    assert_eq!(status["scenarios"].as_array().unwrap().len(), 7);
    let basemap: Value = api_get(&http, &base, "/api/v1/sim/basemap").await;
    assert_eq!(basemap["type"], "FeatureCollection");
    assert!(basemap["features"].as_array().unwrap().len() > 100);

    // Bad scenario requests are precise 400s.
    for bad in [
        json!({"kind": "tsunami"}),
        json!({"kind": "flood", "target": "urn:ngsi-ld:RoadSegment:x"}),
        json!({"kind": "bell", "target": "urn:ngsi-ld:EmergencyBell:nope"}),
        json!({"kind": "crash", "target": "urn:ngsi-ld:Camera:nope"}),
        json!({"what": "flood"}),
    ] {
        let (s, body) = trigger(&http, &base, bad.clone()).await;
        assert_eq!(s, 400, "{bad} → {body}");
        assert!(body["detail"].is_string(), "{body}");
    }

    // Measures over both transports.
    until("measures over MQTT and HTTP", PATIENCE, || async {
        let m = common::metric_sum(&http, &base, "dosi_iot_messages_total", "mqtt").await;
        let h = common::metric_sum(&http, &base, "dosi_iot_messages_total", "http").await;
        (m > 20 && h > 5).then_some(())
    })
    .await;

    // Baselines, then every scenario at once.
    let gauges = entities(&http, &base, "flood", "WaterObserved").await;
    let level0 = max(&numbers(&gauges, "height"));
    let seismic = entities(&http, &base, "earthquake", "SeismicObserved").await;
    let pga0 = max(&numbers(&seismic, "peakGroundAcceleration"));
    let air = entities(&http, &base, "air-quality", "AirQualityObserved").await;
    let pm0 = mean(&numbers(&air, "pm25"));
    assert!(level0 > 0.0 && pga0 > 0.0 && pm0 > 0.0);

    let mut started = std::collections::HashMap::new();
    // Everything but the flood (its rain would wash the haze out of the air).
    for kind in [
        "earthquake",
        "crash",
        "pollution",
        "bell",
        "sos",
        "camera-offline",
    ] {
        let (s, body) = trigger(&http, &base, json!({ "kind": kind })).await;
        assert_eq!(s, 201, "{kind}: {body}");
        assert_eq!(body["kind"], kind);
        started.insert(kind, body);
    }
    let target = |k: &str| started[k]["target"].as_str().unwrap().to_string();
    let status: Value = api_get(&http, &base, "/api/v1/sim").await;
    assert_eq!(status["active"].as_array().unwrap().len(), 6, "{status}");

    let since = |k: &str| started[k]["start"].as_str().unwrap().to_string();
    // Earthquake: the stations' peak ground acceleration jumps (a spike of
    // a simulated minute, so read from the history).
    let quake = since("earthquake");
    until("seismic PGA rises", PATIENCE, || async {
        let h = history(
            &http,
            &base,
            "earthquake",
            &format!(
                "type=SeismicObserved&attrs=peakGroundAcceleration&timerel=after&timeAt={quake}"
            ),
        )
        .await;
        let pga = max(&h
            .iter()
            .flat_map(|e| values(e, "peakGroundAcceleration"))
            .filter_map(|v| v.as_f64())
            .collect::<Vec<_>>());
        (pga > 10.0 * pga0 && pga > 0.1).then_some(())
    })
    .await;
    eprintln!("earthquake: PGA up");
    // Bell: pressed (reset after 30 simulated minutes, so from the history).
    // (Never pressed before: the whole history will do.)
    let bell = target("bell");
    until("the bell is pressed", PATIENCE, || async {
        let h = history(
            &http,
            &base,
            "security",
            &format!("id={bell}&attrs=pressed"),
        )
        .await;
        h.iter()
            .flat_map(|e| values(e, "pressed"))
            .any(|v| v == true)
            .then_some(())
    })
    .await;
    eprintln!("bell: pressed");
    // Crash: the segment is limited, its detectors crawl (cleared after a
    // simulated hour: from the history).
    let seg = target("crash");
    let at = since("crash");
    until("the crashed segment is limited", PATIENCE, || async {
        let h = history(&http, &base, "traffic", &format!("id={seg}&attrs=status")).await;
        h.iter()
            .flat_map(|e| values(e, "status"))
            .any(|v| v == "limited")
            .then_some(())
    })
    .await;
    eprintln!("crash: segment limited");
    let detectors: Vec<String> = entities(&http, &base, "traffic", "TrafficFlowObserved")
        .await
        .iter()
        .filter(|e| e["refRoadSegment"] == seg.as_str() && e["laneDirection"] == "forward")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !detectors.is_empty(),
        "the crashed segment {seg} has forward detectors"
    );
    until("traffic on the crashed segment slows", PATIENCE, || async {
        let h = history(
            &http,
            &base,
            "traffic",
            &format!(
                "id={}&attrs=averageVehicleSpeed&timerel=after&timeAt={at}",
                detectors.join(",")
            ),
        )
        .await;
        let slowest: Vec<f64> = h
            .iter()
            .map(|e| {
                let v: Vec<f64> = values(e, "averageVehicleSpeed")
                    .iter()
                    .filter_map(|v| v.as_f64())
                    .collect();
                v.iter().cloned().fold(f64::MAX, f64::min)
            })
            .collect();
        (slowest.len() == detectors.len() && slowest.iter().all(|&v| v < 20.0)).then_some(())
    })
    .await;
    eprintln!("crash: traffic crawls");
    // Camera offline: its status says so.
    let cam = target("camera-offline");
    until("the camera is offline", PATIENCE, || async {
        (entity(&http, &base, "cctv", &cam).await["status"] == "offline").then_some(())
    })
    .await;
    eprintln!("camera-offline: offline");
    // … and falls silent, so the gateway's liveness marks the device offline.
    until("the camera's device is offline", PATIENCE, || async {
        (entity(&http, &base, "cctv", &cam).await["deviceState"] == "offline").then_some(())
    })
    .await;
    eprintln!("camera-offline: liveness offline");
    // SOS: the wearer leaves home and presses SOS.
    let tracker = target("sos");
    until("the tracker raises SOS", PATIENCE, || async {
        (entity(&http, &base, "social-safety", &tracker).await["sos"] == true).then_some(())
    })
    .await;
    eprintln!("sos: raised");
    // Pollution: PM2.5 goes up across the city.
    until("PM2.5 rises", PATIENCE, || async {
        let a = entities(&http, &base, "air-quality", "AirQualityObserved").await;
        (mean(&numbers(&a, "pm25")) > 1.8 * pm0).then_some(())
    })
    .await;
    eprintln!("pollution: PM2.5 up");
    // Flood: the river rises.
    let (s, body) = trigger(&http, &base, json!({"kind": "flood"})).await;
    assert_eq!(s, 201, "flood: {body}");
    until("river levels rise", PATIENCE, || async {
        let g = entities(&http, &base, "flood", "WaterObserved").await;
        (max(&numbers(&g, "height")) > level0 + 1.0).then_some(())
    })
    .await;
    eprintln!("flood: river up");
    // The history has the tracker's walk (temporal API).
    let r: Value = http
        .get(format!(
            "{base}/ngsi-ld/v1/temporal/entities/{tracker}?attrs=sos&options=temporalValues"
        ))
        .header("link", link("social-safety"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sos = r["sos"]["values"].as_array().expect("sos history");
    assert!(
        sos.iter().any(|v| v[0] == false) && sos.iter().any(|v| v[0] == true),
        "{r}"
    );

    // A second run on the same data directory: devices exist, tokens rotate.
    let pid = demo.child.id().to_string();
    let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(ok.success());
    let mut demo = demo;
    let exit = demo.child.wait().unwrap();
    assert!(exit.success(), "graceful exit: {exit:?}");
    drop(demo);
    let demo = start(dir.path());
    let base = demo.base.clone();
    until(
        "measures over MQTT and HTTP after the restart",
        PATIENCE,
        || async {
            let m = common::metric_sum(&http, &base, "dosi_iot_messages_total", "mqtt").await;
            let h = common::metric_sum(&http, &base, "dosi_iot_messages_total", "http").await;
            (m > 20 && h > 5).then_some(())
        },
    )
    .await;
    let rejected = common::metric_sum(&http, &base, "dosi_iot_rejected_total", "mqtt").await
        + common::metric_sum(&http, &base, "dosi_iot_rejected_total", "http").await;
    assert_eq!(
        rejected, 0,
        "no measure refused after the tokens were rotated"
    );
    let status: Value = api_get(&http, &base, "/api/v1/sim").await;
    assert!(
        status["setup"]["devices"].as_u64().unwrap() > 1000,
        "{status}"
    );
}
