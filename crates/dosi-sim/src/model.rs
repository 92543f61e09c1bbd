//! The device models: what each device measures at a simulated time, given the
//! city's weather, daily rhythms and the active scenarios.
//!
//! Models are functions of time, not steppers: slow state (a parking stay, a
//! shower, the river's response to rain) is derived from the seed and the time
//! (hashes, convolutions over the recent past), and the `rng` passed in only adds
//! measurement noise. So any device can be asked about any instant, in any order,
//! and the same seed gives the same answers.

use std::f64::consts::{PI, TAU};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::city::{hash, unit, City};
use crate::device::{Device, Kind, LaneDirection, ParkingProfile, Reporting};
use crate::geo::{self, LonLat};
use crate::scenario::{resolve, Active, Scenario};
use crate::time::SimTime;
use crate::Error;

/// One measured attribute: its short name and plain value (the entity builder
/// adds the NGSI-LD kind, `unitCode` and `observedAt`).
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Attribute short name (`averageVehicleSpeed`).
    pub attr: &'static str,
    /// Plain JSON value (number, text, boolean, GeoJSON geometry, URN).
    pub value: Value,
    /// When the value took effect, if earlier than the time asked about (a spot
    /// occupied since 09:12, a bell pressed at 21:00); `observedAt` carries it.
    pub since: Option<SimTime>,
}

fn m(attr: &'static str, value: Value) -> Measure {
    Measure {
        attr,
        value,
        since: None,
    }
}

/// The city with its scenarios: asks devices what they measure at a given time.
#[derive(Debug, Clone)]
pub struct Sim {
    city: City,
    active: Vec<Active>,
}

const RAIN_SALT: u64 = 0x5241_494E;
const PARK_SALT: u64 = 0x5041_524B;

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

fn smoothstep(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Wet-season strength, 0 (February) to 1 (late August).
fn wetness(t: SimTime) -> f64 {
    0.5 + 0.5 * (TAU * (f64::from(t.day_of_year()) - 240.0) / 365.0).cos()
}

/// Sunlight, 0 at night to 1 at solar noon (about 12:15 local).
pub fn solar(t: SimTime) -> f64 {
    let h = t.local_hour();
    ((PI * (h - 6.0) / 12.5).sin()).max(0.0)
}

/// Road traffic demand relative to capacity, by local time: about 0.1 at night,
/// 0.95 in the weekday peaks (07:00–09:00, 16:30–18:30), 0.6 at midday; weekends
/// have one broad early-afternoon hump.
pub fn traffic_demand(t: SimTime) -> f64 {
    let h = t.local_hour();
    let gauss = |mu: f64, sigma: f64| (-(h - mu).powi(2) / (2.0 * sigma * sigma)).exp();
    let day = smoothstep((h - 6.0) * 2.0) * smoothstep((21.5 - h) * 1.5);
    if t.is_weekend() {
        0.08 + 0.4 * day + 0.25 * gauss(13.5, 2.5)
    } else {
        0.08 + 0.5 * day + 0.42 * gauss(7.75, 0.8) + 0.45 * gauss(17.5, 1.0)
    }
}

/// Share of a lot's spots taken at time `t`, by who parks there.
pub fn parking_demand(profile: ParkingProfile, t: SimTime) -> f64 {
    let h = t.local_hour();
    let up = |a: f64, b: f64| smoothstep((h - a) * 2.0) * smoothstep((b - h) * 2.0);
    let gauss = |mu: f64, sigma: f64| (-(h - mu).powi(2) / (2.0 * sigma * sigma)).exp();
    let weekend = t.is_weekend();
    let v = match profile {
        ParkingProfile::Commercial => {
            0.08 + 0.72 * up(9.5, 21.0) + 0.12 * gauss(12.5, 1.0) + 0.1 * gauss(19.0, 1.2)
                - if weekend { -0.05 } else { 0.0 }
        }
        ParkingProfile::Office => {
            let work = if weekend { 0.2 } else { 0.85 };
            0.05 + work * up(7.8, 17.3)
        }
        ParkingProfile::Residential => {
            let away = if weekend { 0.2 } else { 0.45 };
            0.88 - away * up(7.5, 17.8)
        }
        ParkingProfile::Hospital => 0.45 + 0.45 * up(7.0, 19.0),
    };
    v.clamp(0.0, 0.98)
}

/// US EPA AQI from PM2.5 and PM10 (24 h breakpoints applied to the current
/// values), and its level name as the air-quality pack spells it.
pub fn air_quality_index(pm25: f64, pm10: f64) -> (u32, &'static str) {
    fn sub(c: f64, bp: &[(f64, f64)]) -> f64 {
        const IDX: [(f64, f64); 6] = [
            (0.0, 50.0),
            (51.0, 100.0),
            (101.0, 150.0),
            (151.0, 200.0),
            (201.0, 300.0),
            (301.0, 500.0),
        ];
        for (i, &(lo, hi)) in bp.iter().enumerate() {
            if c <= hi || i == bp.len() - 1 {
                let (ilo, ihi) = IDX[i];
                let c = c.min(hi);
                return ilo + (ihi - ilo) * (c - lo).max(0.0) / (hi - lo);
            }
        }
        500.0
    }
    const PM25: [(f64, f64); 6] = [
        (0.0, 9.0),
        (9.1, 35.4),
        (35.5, 55.4),
        (55.5, 125.4),
        (125.5, 225.4),
        (225.5, 325.4),
    ];
    const PM10: [(f64, f64); 6] = [
        (0.0, 54.0),
        (55.0, 154.0),
        (155.0, 254.0),
        (255.0, 354.0),
        (355.0, 424.0),
        (425.0, 604.0),
    ];
    let aqi = sub(pm25, &PM25).max(sub(pm10, &PM10)).round() as u32;
    let level = match aqi {
        0..=50 => "good",
        51..=100 => "moderate",
        101..=150 => "unhealthyForSensitiveGroups",
        151..=200 => "unhealthy",
        201..=300 => "veryUnhealthy",
        _ => "hazardous",
    };
    (aqi, level)
}

/// Modified Mercalli intensity from PGA (m/s²), Wald et al. (1999), 1 to 12.
pub fn mmi_from_pga(pga: f64) -> f64 {
    let cm = (pga * 100.0).max(0.01);
    let mmi = 3.66 * cm.log10() - 1.66;
    let mmi = if mmi < 5.0 {
        2.20 * cm.log10() + 1.0
    } else {
        mmi
    };
    mmi.clamp(1.0, 12.0)
}

impl Sim {
    /// The city on an ordinary day, no scenario.
    pub fn new(city: City) -> Sim {
        Sim {
            city,
            active: Vec::new(),
        }
    }

    /// The city with `scenarios`; fails when a scenario targets an entity the city lacks.
    pub fn with_scenarios(city: City, scenarios: Vec<Scenario>) -> Result<Sim, Error> {
        let mut sim = Sim::new(city);
        for s in scenarios {
            sim.add_scenario(s)?;
        }
        Ok(sim)
    }

    /// Adds a scenario.
    pub fn add_scenario(&mut self, scenario: Scenario) -> Result<(), Error> {
        let active = resolve(&self.city, scenario)?;
        self.active.push(active);
        Ok(())
    }

    /// The city.
    pub fn city(&self) -> &City {
        &self.city
    }

    /// The scenarios, in the order added.
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        self.active.iter().map(|a| &a.scenario)
    }

    /// The noise source [`Sim::entity`] uses for device `index` at `t`: seeded from
    /// the city seed, the device and the time, so answers do not depend on call order.
    pub fn rng_for(&self, index: usize, t: SimTime) -> StdRng {
        StdRng::seed_from_u64(hash(hash(self.city.seed, index as u64), t.0 as u64))
    }

    /// The full normalized NGSI-LD entity of device `index` at `t` (short terms,
    /// as the dosi-packs shapes expect), with noise from [`Sim::rng_for`].
    pub fn entity(&self, index: usize, t: SimTime) -> Value {
        let mut rng = self.rng_for(index, t);
        self.entity_with(index, t, &mut rng)
    }

    /// The full normalized entity with noise from `rng`.
    pub fn entity_with<R: Rng + ?Sized>(&self, index: usize, t: SimTime, rng: &mut R) -> Value {
        let d = &self.city.devices()[index];
        let mut obj = Map::new();
        obj.insert("id".into(), json!(d.entity_id));
        obj.insert("type".into(), json!(d.entity_type));
        obj.insert(
            "location".into(),
            json!({"type": "GeoProperty", "value": d.location_geometry()}),
        );
        for (attr, value) in &d.static_attrs {
            obj.insert(
                (*attr).into(),
                normalized(d.entity_type, attr, value.clone(), None),
            );
        }
        for meas in self.measures(index, t, rng) {
            let observed = meas.since.unwrap_or(t).rfc3339();
            obj.insert(
                meas.attr.into(),
                normalized(d.entity_type, meas.attr, meas.value, Some(&observed)),
            );
        }
        Value::Object(obj)
    }

    /// What device `index` reports at `t` (its dynamic attributes), `rng` adding noise.
    /// Static context (a parcel, a geofence) measures nothing; a road segment reports its status.
    pub fn measures<R: Rng + ?Sized>(&self, index: usize, t: SimTime, rng: &mut R) -> Vec<Measure> {
        let d = &self.city.devices()[index];
        let now = || json!(t.rfc3339());
        let mut noise = |rel: f64| 1.0 + rel * (2.0 * rng.random::<f64>() - 1.0);
        match &d.kind {
            Kind::ParkingSpot { .. } => {
                let (occupied, since) = self.spot_state(index, t);
                let status = if occupied { "occupied" } else { "free" };
                vec![Measure {
                    since: Some(since),
                    ..m("status", json!(status))
                }]
            }
            Kind::ParkingLot { lot } => {
                let spots = self.city.lots[*lot].spots.clone();
                let total = spots.len();
                let taken = spots.filter(|&s| self.spot_occupied(s, t)).count();
                let occ = if total == 0 {
                    0.0
                } else {
                    taken as f64 / total as f64
                };
                vec![
                    m("availableSpotNumber", json!(total - taken)),
                    m("occupiedSpotNumber", json!(taken)),
                    m("occupancy", json!(round(occ, 3))),
                ]
            }
            Kind::RoadSegment { segment } => {
                let blocked = self.crash_on(*segment, t);
                let mut out = vec![m("status", json!(if blocked { "limited" } else { "open" }))];
                if blocked {
                    out.push(m(
                        "statusDescription",
                        json!("Crash: lanes blocked, emergency services on site"),
                    ));
                }
                out
            }
            Kind::TrafficDetector {
                segment,
                direction,
                lane,
            } => {
                let seg = &self.city.segments[*segment];
                let vf = seg.speed_limit_kmh * (0.95 + 0.1 * unit(hash(index as u64, 3)));
                let capacity = if seg.lanes_per_direction == 1 {
                    900.0
                } else {
                    1_800.0
                };
                // Mornings load inbound lanes more (forward on even segments).
                let inbound = (*segment % 2 == 0) == (*direction == LaneDirection::Forward);
                let h = t.local_hour();
                let tidal = if (h < 12.0) == inbound { 1.05 } else { 0.92 };
                let lane_share = if *lane == 1 { 0.9 } else { 1.05 };
                let x = (traffic_demand(t) * seg.demand_factor * tidal * lane_share * noise(0.05))
                    .max(0.0);
                let mut q = capacity * x.min(1.0);
                let mut v = vf / (1.0 + 0.8 * x.powi(5));
                let length = 4.6 + 0.6 * unit(hash(index as u64, 4));
                let mut occ = (q * (length + 2.0) / 1000.0 / v.max(3.0)).min(0.95);
                let sev = self.crash_severity(*segment, *direction, t);
                if sev > 0.0 {
                    v = v * (1.0 - sev) + 6.0 * sev;
                    occ = occ * (1.0 - sev) + 0.82 * sev;
                    q *= 1.0 - 0.7 * sev;
                }
                v *= noise(0.04);
                let count = (q / 60.0 * noise(0.15)).round().max(0.0);
                let headway = if count > 0.0 { 60.0 / count } else { 60.0 };
                vec![
                    m("dateObserved", now()),
                    m("dateObservedFrom", json!(t.plus_secs(-60).rfc3339())),
                    m("dateObservedTo", now()),
                    m("intensity", json!(count as u64)),
                    m("occupancy", json!(round(occ.clamp(0.0, 1.0), 3))),
                    m("averageVehicleSpeed", json!(round(v.max(0.0), 1))),
                    m("averageVehicleLength", json!(round(length, 1))),
                    m("averageHeadwayTime", json!(round(headway, 1))),
                    m("congested", json!(v < 0.45 * vf || occ > 0.35)),
                ]
            }
            Kind::AirQuality { traffic_exposure } => {
                let doy = f64::from(t.day_of_year());
                // Dry-season haze peaks in February, the monsoon washes the air in August.
                let base = 24.0 + 14.0 * (TAU * (doy - 45.0) / 365.0).cos();
                let h = t.local_hour();
                let boundary = 1.05 + 0.3 * (TAU * (h - 6.5) / 24.0).cos();
                let traffic = traffic_exposure * traffic_demand(t);
                let washout = 1.0 / (1.0 + self.rain_mm(t.plus_secs(-3 * 3600), t, 900) / 4.0);
                let episode = self.pollution_factor(t);
                let pm25 =
                    ((base * boundary + 18.0 * traffic) * washout * episode * noise(0.08)).max(1.0);
                let pm10 = pm25 * 1.7 + 6.0 * noise(0.5);
                let sun = solar(t);
                let o3 = (20.0 + 95.0 * sun.powf(1.5) * (1.0 + 0.2 * (episode - 1.0).min(2.0))
                    - 12.0 * traffic)
                    .max(2.0)
                    * noise(0.06);
                let no2 = (10.0 + 45.0 * traffic) * noise(0.1);
                let co = (0.3 + 0.9 * traffic) * noise(0.1);
                let (aqi, level) = air_quality_index(pm25, pm10);
                vec![
                    m("dateObserved", now()),
                    m("pm25", json!(round(pm25, 1))),
                    m("pm10", json!(round(pm10, 1))),
                    m("o3", json!(round(o3, 1))),
                    m("no2", json!(round(no2, 1))),
                    m("co", json!(round(co, 2))),
                    m("airQualityIndex", json!(aqi)),
                    m("airQualityLevel", json!(level)),
                    m("reliability", json!(0.9)),
                    m("temperature", json!(round(self.temperature(t), 1))),
                    m("relativeHumidity", json!(round(self.humidity(t), 2))),
                ]
            }
            Kind::RiverGauge { .. } => {
                let height = self.river_height(index, t) + 0.01 * (noise(1.0) - 1.0);
                let height = height.max(0.0);
                vec![
                    m("dateObserved", now()),
                    m("height", json!(round(height, 2))),
                    m("flow", json!(round(12.0 * height.powf(1.8), 1))),
                ]
            }
            Kind::RainGauge { local_factor } => {
                let mm = self.rain_mm(t.plus_secs(-300), t, 60) * local_factor;
                vec![
                    m("dateObserved", now()),
                    m("precipitation", json!(round(mm, 1))),
                    m("temperature", json!(round(self.temperature(t), 1))),
                    m("relativeHumidity", json!(round(self.humidity(t), 2))),
                ]
            }
            Kind::Seismic { site_amp } => {
                let background = (0.003 + 0.005 * traffic_demand(t)) * site_amp * noise(0.4);
                let pga = background.max(self.quake_pga(d, *site_amp, t));
                vec![
                    m("dateObserved", now()),
                    m("peakGroundAcceleration", json!(round(pga, 4))),
                    m("peakGroundVelocity", json!(round(pga / (TAU * 2.0), 5))),
                    m("seismicIntensity", json!(round(mmi_from_pga(pga), 1))),
                ]
            }
            Kind::EmergencyBell => {
                let (pressed, since) = self.bell_state(index, t);
                vec![
                    Measure {
                        since,
                        ..m("pressed", json!(pressed))
                    },
                    m("deviceState", json!("ok")),
                    m("batteryLevel", json!(self.battery(index, t))),
                ]
            }
            Kind::Intrusion { .. } => vec![
                m("alarm", json!(false)),
                m("value", json!("idle")),
                m("deviceState", json!("ok")),
                m("batteryLevel", json!(self.battery(index, t))),
                m("dateLastValueReported", now()),
            ],
            Kind::Tracker { .. } => {
                let (pos, sos_at) = self.tracker_position(index, t);
                let h = t.local_hour();
                let since_charge = (h - 21.0).rem_euclid(24.0) / 24.0;
                let battery = (0.98 - 0.55 * since_charge - 0.1 * unit(hash(index as u64, 9)))
                    .clamp(0.05, 1.0);
                let mut out = vec![
                    m("location", geo::point(pos)),
                    m("sos", json!(sos_at.is_some())),
                    m("batteryLevel", json!(round(battery, 2))),
                    m("positionAccuracy", json!(round(8.0 * noise(0.5), 0))),
                    m("fallDetected", json!(false)),
                ];
                if let Some(at) = sos_at {
                    out.push(m("sosActivatedAt", json!(at.rfc3339())));
                }
                out
            }
            Kind::Geofence { .. } | Kind::Parcel { .. } => Vec::new(),
            Kind::SoilProbe {
                cycle_h,
                cycle_phase_h,
                ..
            } => {
                let (vwc, _) = self.soil(t, *cycle_h, *cycle_phase_h);
                let h = t.local_hour();
                let soil_t = 27.0 + 4.0 * (TAU * (h - 11.0) / 24.0).sin();
                vec![
                    m("soilMoistureVwc", json!(round(vwc * noise(0.02), 3))),
                    m("soilTemperature", json!(round(soil_t * noise(0.01), 1))),
                    m("soilMoistureEc", json!(round(0.08 + 0.2 * vwc, 3))),
                    m("relativeHumidity", json!(round(self.humidity(t), 2))),
                    m(
                        "atmosphericPressure",
                        json!(round(1008.0 * noise(0.002), 1)),
                    ),
                    m(
                        "solarRadiation",
                        json!(round(
                            1.0 * solar(t) * if self.rain_rate(t) > 0.5 { 0.3 } else { 1.0 },
                            3
                        )),
                    ),
                ]
            }
            Kind::Valve {
                cycle_h,
                cycle_phase_h,
                ..
            } => {
                let (_, open) = self.soil(t, *cycle_h, *cycle_phase_h);
                vec![
                    m("value", json!(if open { "open" } else { "closed" })),
                    m("deviceState", json!("ok")),
                    m("batteryLevel", json!(-1)),
                    m("dateLastValueReported", now()),
                ]
            }
            Kind::Greenhouse => {
                let sun = solar(t);
                let h = t.local_hour();
                let light_so_far = if h > 6.0 {
                    // Integral of the solar curve since dawn, scaled to about 25 mol/m²/day.
                    let x = ((h - 6.0) / 12.5).min(1.0);
                    25.0 * (1.0 - (PI * x).cos()) / 2.0
                } else {
                    0.0
                };
                vec![
                    m(
                        "relativeHumidity",
                        json!(round((0.88 - 0.25 * sun) * noise(0.03), 2).min(1.0)),
                    ),
                    m(
                        "co2",
                        json!(round((420.0 + 380.0 * (1.0 - sun)) * noise(0.05), 0)),
                    ),
                    m(
                        "leafTemperature",
                        json!(round((self.temperature(t) + 3.0 * sun) * noise(0.02), 1)),
                    ),
                    m("dailyLight", json!(round(light_so_far, 1))),
                ]
            }
            Kind::Camera => {
                let offline_since = self.camera_offline_since(index, t);
                let last = offline_since.unwrap_or(t);
                vec![
                    m("on", json!(true)),
                    m(
                        "status",
                        json!(if offline_since.is_some() {
                            "offline"
                        } else {
                            "online"
                        }),
                    ),
                    m("dateLastValueReported", json!(last.rfc3339())),
                    m("tamperDetected", json!(false)),
                ]
            }
        }
    }

    /// Whether device `index` should publish in `(prev, now]`: periodic devices on
    /// their ticks; on-change devices when their state changed or a heartbeat is due;
    /// static context when a scenario changes it.
    pub fn due(&self, index: usize, prev: SimTime, now: SimTime) -> bool {
        let d = &self.city.devices()[index];
        match d.reporting {
            Reporting::Periodic { .. } => {
                d.reporting.ticks(d.phase_s, prev.0, now.0) || self.quake_arrives(d, prev, now)
            }
            Reporting::OnChange { heartbeat_s, .. } => {
                let hb = Reporting::Periodic {
                    every_s: heartbeat_s,
                };
                hb.ticks(d.phase_s, prev.0, now.0)
                    || (d.reporting.ticks(d.phase_s, prev.0, now.0)
                        && self.state(index, prev) != self.state(index, now))
            }
            Reporting::Static => self.state(index, prev) != self.state(index, now),
        }
    }

    /// The devices that publish in `(prev, now]`, in device order (see [`Sim::due`]).
    pub fn due_between(&self, prev: SimTime, now: SimTime) -> Vec<usize> {
        (0..self.city.devices().len())
            .filter(|&i| self.due(i, prev, now))
            .collect()
    }

    fn state(&self, index: usize, t: SimTime) -> Option<Value> {
        let d = &self.city.devices()[index];
        let key = match d.kind {
            Kind::ParkingSpot { .. } | Kind::RoadSegment { .. } => "status",
            Kind::EmergencyBell => "pressed",
            Kind::Intrusion { .. } => "alarm",
            Kind::Valve { .. } => "value",
            _ => return None,
        };
        let mut rng = self.rng_for(index, t);
        self.measures(index, t, &mut rng)
            .into_iter()
            .find(|m| m.attr == key)
            .map(|m| m.value)
    }

    // ---- weather ----

    /// City-wide rain rate at `t`, mm/h: afternoon showers (more in the wet
    /// season), plus any flood scenario's burst.
    pub fn rain_rate(&self, t: SimTime) -> f64 {
        let block = t.0.div_euclid(3 * 3600);
        let h = hash(self.city.seed ^ RAIN_SALT, block as u64);
        let block_start = SimTime(block * 3 * 3600);
        let afternoon = (12.0..18.0).contains(&block_start.local_hour());
        let p = 0.03 + 0.2 * wetness(t) * if afternoon { 1.6 } else { 1.0 };
        let mut rate = 0.0;
        if unit(h) < p {
            let start = block_start.0 + (unit(hash(h, 1)) * 90.0 * 60.0) as i64;
            let dur = (30.0 + 60.0 * unit(hash(h, 2))) as i64 * 60;
            if t.0 >= start && t.0 < start + dur {
                rate = 2.0 + 16.0 * unit(hash(h, 3)).powi(2);
            }
        }
        for a in &self.active {
            if let Scenario::Flood(f) = &a.scenario {
                let e = t.since(f.start) as f64 / 60.0;
                if e >= 0.0 && e < f.duration_min {
                    let ramp = (e / 10.0).min((f.duration_min - e) / 10.0).min(1.0);
                    rate += f.rain_mm_per_h * ramp.max(0.2);
                }
            }
        }
        rate
    }

    /// Rain fallen in `(from, to]`, mm, sampled every `step_s`.
    pub fn rain_mm(&self, from: SimTime, to: SimTime, step_s: i64) -> f64 {
        let mut total = 0.0;
        let mut s = from.0;
        while s < to.0 {
            let dt = step_s.min(to.0 - s);
            total += self.rain_rate(SimTime(s + dt / 2)) * dt as f64 / 3600.0;
            s += dt;
        }
        total
    }

    /// Air temperature, °C: 23–33 °C daily swing, hottest in April, cooler under rain.
    pub fn temperature(&self, t: SimTime) -> f64 {
        let doy = f64::from(t.day_of_year());
        let seasonal = (TAU * (doy - 105.0) / 365.0).cos();
        let h = t.local_hour();
        let rain = if self.rain_rate(t) > 1.0 { 3.0 } else { 0.0 };
        27.5 + 3.0 * seasonal + 4.5 * (TAU * (h - 9.0) / 24.0).sin() - rain
    }

    /// Relative humidity, 0 to 1.
    pub fn humidity(&self, t: SimTime) -> f64 {
        let h = t.local_hour();
        let rain = if self.rain_rate(t) > 1.0 { 0.2 } else { 0.0 };
        (0.62 + 0.15 * wetness(t) - 0.18 * (TAU * (h - 9.0) / 24.0).sin() + rain).clamp(0.2, 0.99)
    }

    // ---- per-kind state ----

    fn spot_occupied(&self, index: usize, t: SimTime) -> bool {
        self.spot_state(index, t).0
    }

    /// Whether a spot is occupied at `t`, and since when (looking back at most 48 stays).
    ///
    /// Time is cut into stays of the spot's typical length; each stay is taken or
    /// not, with the probability its profile gives for the stay's middle.
    fn spot_state(&self, index: usize, t: SimTime) -> (bool, SimTime) {
        let d = &self.city.devices()[index];
        let Kind::ParkingSpot {
            profile, stay_min, ..
        } = d.kind
        else {
            return (false, t);
        };
        let slot_s = i64::from(stay_min.max(10)) * 60;
        let offset = (hash(index as u64, PARK_SALT) % slot_s as u64) as i64;
        let key = hash(self.city.seed ^ PARK_SALT, index as u64);
        let taken = |slot: i64| {
            let mid = SimTime(slot * slot_s - offset + slot_s / 2);
            unit(hash(key, slot as u64)) < parking_demand(profile, mid)
        };
        let slot = (t.0 + offset).div_euclid(slot_s);
        let now = taken(slot);
        let mut first = slot;
        while slot - first < 48 && taken(first - 1) == now {
            first -= 1;
        }
        (now, SimTime(first * slot_s - offset))
    }

    /// River level at gauge `index`: the dry-weather base, a wet-season rise, and the
    /// response to the rain of the last 12 h (peaking about an hour after the rain,
    /// later downstream).
    pub fn river_height(&self, index: usize, t: SimTime) -> f64 {
        let Kind::RiverGauge {
            chainage, base_m, ..
        } = self.city.devices()[index].kind
        else {
            return 0.0;
        };
        let lag_min = 20.0 + 60.0 * chainage;
        let l = 60.0;
        let mut acc = 0.0;
        for k in 0..144 {
            let age_min = k as f64 * 5.0 + 2.5;
            let s = age_min - lag_min;
            if s <= 0.0 {
                continue;
            }
            let r = self.rain_rate(SimTime(t.0 - (age_min * 60.0) as i64));
            if r > 0.0 {
                acc += r * 5.0 / 60.0 * (s / l) * (1.0 - s / l).exp();
            }
        }
        base_m + 0.8 * wetness(t) + 0.045 * acc
    }

    fn pollution_factor(&self, t: SimTime) -> f64 {
        let mut f = 1.0;
        for a in &self.active {
            if let Scenario::Pollution(p) = &a.scenario {
                let e = t.since(p.start) as f64 / 3600.0;
                let ramp = e.min(p.duration_h + 1.0 - e).clamp(0.0, 1.0);
                f *= 1.0 + (p.factor - 1.0) * ramp;
            }
        }
        f
    }

    /// Whether an earthquake's S wave reaches seismic station `d` in `(prev, now]`
    /// (a triggered station reports at once).
    fn quake_arrives(&self, d: &Device, prev: SimTime, now: SimTime) -> bool {
        matches!(d.kind, Kind::Seismic { .. })
            && self.active.iter().any(|a| match &a.scenario {
                Scenario::Earthquake(q) => {
                    let arrival = s_wave_arrival(d.location, q);
                    arrival > prev.0 as f64 && arrival <= now.0 as f64
                }
                _ => false,
            })
    }

    fn quake_pga(&self, d: &Device, site_amp: f64, t: SimTime) -> f64 {
        let mut pga: f64 = 0.0;
        for a in &self.active {
            if let Scenario::Earthquake(q) = &a.scenario {
                let r = hypocentral_km(d.location, q);
                let arrival = s_wave_arrival(d.location, q);
                let now = t.0 as f64;
                if now < arrival {
                    continue;
                }
                // The reported value is the peak of the last minute.
                let since = (now - 60.0).max(arrival) - arrival;
                let envelope = (-since / 20.0).exp();
                let g = 10f64.powf(-1.4 + 0.5 * q.magnitude - 1.6 * (r + 5.0).log10());
                pga = pga.max(g * 9.81 * site_amp * envelope);
            }
        }
        pga
    }

    fn crash_on(&self, segment: usize, t: SimTime) -> bool {
        self.active.iter().any(|a| match (&a.scenario, a.target) {
            (Scenario::Crash(c), Some(dev)) => {
                self.city.devices()[dev].kind == Kind::RoadSegment { segment }
                    && t >= c.start
                    && (t.since(c.start) as f64) < c.clearance_min * 60.0
            }
            _ => false,
        })
    }

    /// How much a crash slows lanes of `segment` in `dir` at `t`, 0 (not at all) to 1 (standstill).
    fn crash_severity(&self, segment: usize, dir: LaneDirection, t: SimTime) -> f64 {
        let mut sev: f64 = 0.0;
        for a in &self.active {
            let (Scenario::Crash(c), Some(dev)) = (&a.scenario, a.target) else {
                continue;
            };
            let Kind::RoadSegment { segment: cs } = self.city.devices()[dev].kind else {
                continue;
            };
            let e = t.since(c.start) as f64 / 60.0;
            if e < 0.0 {
                continue;
            }
            let blocked = e < c.clearance_min;
            // The queue grows 150 m a minute while blocked, then drains at 300 m a minute.
            let queue = if blocked {
                (150.0 * e).min(3_000.0)
            } else {
                ((150.0 * c.clearance_min).min(3_000.0) - 300.0 * (e - c.clearance_min)).max(0.0)
            };
            if dir != c.direction {
                if segment == cs && blocked {
                    sev = sev.max(0.25); // drivers slow down to look
                }
                continue;
            }
            if segment == cs {
                sev = sev.max(if blocked {
                    1.0
                } else if queue > 0.0 {
                    0.6
                } else {
                    0.0
                });
                continue;
            }
            // The crash is mid-segment: the queue fills the rest of it first.
            let mut dist = self.city.segments[cs].length_m / 2.0;
            let mut cur = cs;
            for _ in 0..30 {
                let up = match dir {
                    LaneDirection::Forward => self.city.segments[cur].prev,
                    LaneDirection::Backward => self.city.segments[cur].next,
                };
                let Some(u) = up else { break };
                if u == cs || dist >= queue {
                    break;
                }
                if u == segment {
                    sev = sev.max(0.1 + 0.8 * (1.0 - dist / queue));
                    break;
                }
                dist += self.city.segments[u].length_m;
                cur = u;
            }
        }
        sev
    }

    /// Whether a bell is pressed at `t`, and since when it is in that state
    /// (`None`: idle since before any scenario).
    fn bell_state(&self, index: usize, t: SimTime) -> (bool, Option<SimTime>) {
        let mut since = None;
        for a in &self.active {
            let (Scenario::BellPressed(b), Some(dev)) = (&a.scenario, a.target) else {
                continue;
            };
            if dev != index || t < b.at {
                continue;
            }
            let reset = b.reset_after_min.map(|r| b.at.plus_secs((r * 60.0) as i64));
            match reset {
                Some(r) if t >= r => since = since.max(Some(r)),
                _ => return (true, Some(b.at)),
            }
        }
        (false, since)
    }

    fn camera_offline_since(&self, index: usize, t: SimTime) -> Option<SimTime> {
        self.active
            .iter()
            .find_map(|a| match (&a.scenario, a.target) {
                (Scenario::CameraOffline(c), Some(dev))
                    if dev == index
                        && t >= c.start
                        && c.duration_min
                            .is_none_or(|d| (t.since(c.start) as f64) < d * 60.0) =>
                {
                    Some(c.start)
                }
                _ => None,
            })
    }

    fn battery(&self, index: usize, t: SimTime) -> f64 {
        // Batteries last about a year and were changed on different days.
        let age_days = (t.0 as f64 / 86_400.0 + 365.0 * unit(hash(index as u64, 11))) % 365.0;
        round(1.0 - 0.9 * age_days / 365.0, 2)
    }

    /// Where a tracker is at `t`, and when its SOS started (if active).
    fn tracker_position(&self, index: usize, t: SimTime) -> (LonLat, Option<SimTime>) {
        let Kind::Tracker {
            home,
            fence_radius_m,
            ..
        } = self.city.devices()[index].kind
        else {
            return (self.city.devices()[index].location, None);
        };
        let roam = |t: SimTime| {
            let h = t.local_hour();
            // At home at night, out and about by day, always inside the fence.
            let active = smoothstep((h - 7.0) * 2.0) * smoothstep((20.0 - h) * 2.0);
            let amp = fence_radius_m * (0.05 + 0.55 * active);
            let k = hash(self.city.seed, index as u64);
            let ph = |i: u64| unit(hash(k, i)) * TAU;
            let s = t.0 as f64;
            let x = amp
                * (0.6 * (TAU * s / 2_820.0 + ph(1)).sin()
                    + 0.4 * (TAU * s / 11_580.0 + ph(2)).sin());
            let y = amp
                * (0.6 * (TAU * s / 3_300.0 + ph(3)).sin()
                    + 0.4 * (TAU * s / 9_960.0 + ph(4)).sin());
            home.offset(x, y)
        };
        for a in &self.active {
            if let (Scenario::SosWander(w), Some(dev)) = (&a.scenario, a.target) {
                if dev != index || t < w.start {
                    continue;
                }
                let from = roam(w.start);
                let e = t.since(w.start) as f64;
                let dist = (w.speed_m_per_s * e).min(5_000.0);
                let bearing = unit(hash(self.city.seed ^ 0x505, index as u64)) * TAU;
                let pos = from.offset(dist * bearing.cos(), dist * bearing.sin());
                let sos_at = w.start.plus_secs((w.sos_after_min * 60.0) as i64);
                return (pos, (t >= sos_at).then_some(sos_at));
            }
        }
        (roam(t), None)
    }

    /// Soil moisture (volumetric, 0–1) and whether the valve is open: a drying
    /// curve between irrigations (faster by day is folded into the rate), an
    /// irrigation of 90 min each cycle, rain of the last day on top.
    fn soil(&self, t: SimTime, cycle_h: f64, phase_h: f64) -> (f64, bool) {
        const FIELD: f64 = 0.36;
        const WILT: f64 = 0.08;
        const THRESHOLD: f64 = 0.15;
        const IRRIGATE_H: f64 = 1.5;
        let pos = (t.0 as f64 / 3600.0 + phase_h).rem_euclid(cycle_h);
        let tau = (cycle_h - IRRIGATE_H) / ((FIELD - WILT) / (THRESHOLD - WILT)).ln();
        let end = WILT + (FIELD - WILT) * (-(cycle_h - IRRIGATE_H) / tau).exp();
        let (vwc, open) = if pos < IRRIGATE_H {
            (end + (FIELD - end) * pos / IRRIGATE_H, true)
        } else {
            (
                WILT + (FIELD - WILT) * (-(pos - IRRIGATE_H) / tau).exp(),
                false,
            )
        };
        let rain = self.rain_mm(t.plus_secs(-86_400), t, 1800);
        ((vwc + (0.003 * rain).min(0.15)).min(0.45), open)
    }

    /// Whether the tracker `index` is inside its home geofence at `t`.
    pub fn tracker_inside_fence(&self, index: usize, t: SimTime) -> Option<bool> {
        let Kind::Tracker { geofence, .. } = self.city.devices()[index].kind else {
            return None;
        };
        let Kind::Geofence { ring, .. } = &self.city.devices()[geofence].kind else {
            return None;
        };
        Some(geo::in_polygon(self.tracker_position(index, t).0, ring))
    }
}

fn hypocentral_km(p: LonLat, q: &crate::scenario::Earthquake) -> f64 {
    (p.distance_m(q.epicentre) / 1000.0).hypot(q.depth_km)
}

/// When the S wave (3.5 km/s) reaches `p`, seconds since the epoch.
fn s_wave_arrival(p: LonLat, q: &crate::scenario::Earthquake) -> f64 {
    q.origin_time.0 as f64 + hypocentral_km(p, q) / 3.5
}

/// A normalized attribute for `value`, its NGSI-LD kind and `unitCode` taken
/// from the pack shape of `entity_type`.
fn normalized(entity_type: &str, attr: &str, value: Value, observed_at: Option<&str>) -> Value {
    use dosi_packs::{AttributeKind, ValueType};
    let spec = dosi_packs::entity_type(entity_type).and_then(|(_, s)| s.attribute(attr));
    let kind = spec.map_or(AttributeKind::Property, |a| a.kind);
    let mut obj = Map::new();
    obj.insert("type".into(), json!(kind.as_str()));
    match kind {
        AttributeKind::Relationship => {
            obj.insert("object".into(), value);
        }
        _ => {
            obj.insert("value".into(), value);
        }
    }
    if let Some(ValueType::Number {
        unit_code: Some(u), ..
    }) = spec.and_then(|a| a.value.as_ref())
    {
        obj.insert("unitCode".into(), json!(u));
    }
    if let Some(at) = observed_at {
        obj.insert("observedAt".into(), json!(at));
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn air_quality_index_bands() {
        let check = |pm25: f64, pm10: f64, aqi: u32, level: &str| {
            assert_eq!(
                air_quality_index(pm25, pm10),
                (aqi, level),
                "pm25 {pm25} pm10 {pm10}"
            );
        };
        check(0.0, 0.0, 0, "good");
        check(9.0, 20.0, 50, "good");
        check(35.4, 20.0, 100, "moderate");
        check(45.0, 60.0, 124, "unhealthyForSensitiveGroups");
        check(10.0, 200.0, 123, "unhealthyForSensitiveGroups");
        check(100.0, 150.0, 182, "unhealthy");
        check(180.0, 300.0, 255, "veryUnhealthy");
        check(400.0, 700.0, 500, "hazardous");
    }

    #[test]
    fn intensity_from_pga() {
        let check = |pga: f64, lo: f64, hi: f64| {
            let mmi = mmi_from_pga(pga);
            assert!((lo..=hi).contains(&mmi), "PGA {pga} m/s² gave MMI {mmi}");
        };
        check(0.0, 1.0, 1.0);
        check(0.01, 1.0, 2.5);
        check(0.3, 4.0, 5.0);
        check(1.0, 5.5, 6.5);
        check(4.0, 7.5, 8.5);
        check(100.0, 12.0, 12.0);
    }

    #[test]
    fn demand_curves_stay_in_range() {
        let day = SimTime::from_local(2027, 2, 15, 0, 0);
        for k in 0..(7 * 24 * 4) {
            let t = day.plus_mins(k * 15);
            let d = traffic_demand(t);
            assert!((0.0..=1.2).contains(&d), "traffic demand {d} at {t}");
            for p in [
                ParkingProfile::Commercial,
                ParkingProfile::Office,
                ParkingProfile::Residential,
                ParkingProfile::Hospital,
            ] {
                let v = parking_demand(p, t);
                assert!((0.0..=0.98).contains(&v), "{p:?} {v} at {t}");
            }
        }
    }
}
