//! Scenarios: disasters and incidents laid over the city's normal day.
//!
//! A scenario is data (kind, start, parameters); the device models read the
//! active scenarios when asked for a measure at some time, so a scenario
//! applies to every simulated instant after its start without any stepping.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::city::City;
use crate::device::{Kind, LaneDirection};
use crate::geo::LonLat;
use crate::time::SimTime;
use crate::Error;

/// A scenario and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Scenario {
    /// A rain burst over the catchment: rain gauges report it, river gauges rise
    /// with a lag (more downstream) over their warning and alert stages, then recede;
    /// air is washed out; soil gets wetter.
    Flood(Flood),
    /// An earthquake: each seismic station sees a PGA spike when the S wave arrives,
    /// decaying with distance from the epicentre and over about a minute.
    Earthquake(Earthquake),
    /// A crash on a road segment: the segment turns `limited`, its lanes in the
    /// crash direction crawl (speed down, occupancy up, flow down) and the queue
    /// spreads upstream segment by segment, then clears after the clearance time.
    Crash(Crash),
    /// A pollution episode (crop-burning smoke haze): PM2.5 and PM10 rise by a
    /// factor everywhere, O3 by half that in daylight; ramps in and out over an hour.
    Pollution(Pollution),
    /// Someone presses an emergency bell: `pressed` latches true until the reset.
    BellPressed(BellPressed),
    /// A tracker's wearer wanders away from home out of the geofence, then presses SOS.
    SosWander(SosWander),
    /// A camera goes offline: `status` offline and `dateLastValueReported` frozen.
    CameraOffline(CameraOffline),
}

/// Parameters of [`Scenario::Flood`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flood {
    /// When the burst starts.
    pub start: SimTime,
    /// Peak rain rate, mm/h.
    pub rain_mm_per_h: f64,
    /// How long it rains, minutes.
    pub duration_min: f64,
}

/// Parameters of [`Scenario::Earthquake`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Earthquake {
    /// Origin time.
    pub origin_time: SimTime,
    /// Epicentre.
    pub epicentre: LonLat,
    /// Moment magnitude.
    pub magnitude: f64,
    /// Hypocentre depth, km.
    pub depth_km: f64,
}

/// Parameters of [`Scenario::Crash`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Crash {
    /// When it happens.
    pub start: SimTime,
    /// The `RoadSegment` entity id.
    pub segment: String,
    /// The blocked direction.
    pub direction: LaneDirection,
    /// Minutes until the road is cleared.
    pub clearance_min: f64,
}

/// Parameters of [`Scenario::Pollution`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pollution {
    /// When the haze arrives.
    pub start: SimTime,
    /// How long it stays, hours.
    pub duration_h: f64,
    /// PM multiplier at full strength.
    pub factor: f64,
}

/// Parameters of [`Scenario::BellPressed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BellPressed {
    /// When it is pressed.
    pub at: SimTime,
    /// The `EmergencyBell` entity id.
    pub bell: String,
    /// Minutes until the control tower resets it (`None`: stays pressed).
    pub reset_after_min: Option<f64>,
}

/// Parameters of [`Scenario::SosWander`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SosWander {
    /// When the wearer starts walking away.
    pub start: SimTime,
    /// The `SosTracker` entity id.
    pub tracker: String,
    /// Walking speed, m/s.
    pub speed_m_per_s: f64,
    /// Minutes after the start when the SOS button is pressed.
    pub sos_after_min: f64,
}

/// Parameters of [`Scenario::CameraOffline`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraOffline {
    /// When it drops.
    pub start: SimTime,
    /// The `Camera` entity id.
    pub camera: String,
    /// Minutes until it is back (`None`: stays offline).
    pub duration_min: Option<f64>,
}

/// The scenario kinds, by name (`flood`, `earthquake`, `crash`, `pollution`,
/// `bell`, `sos`, `camera-offline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScenarioKind {
    /// [`Scenario::Flood`].
    Flood,
    /// [`Scenario::Earthquake`].
    Earthquake,
    /// [`Scenario::Crash`].
    Crash,
    /// [`Scenario::Pollution`].
    Pollution,
    /// [`Scenario::BellPressed`].
    Bell,
    /// [`Scenario::SosWander`].
    Sos,
    /// [`Scenario::CameraOffline`].
    CameraOffline,
}

impl ScenarioKind {
    /// Every kind.
    pub const ALL: [ScenarioKind; 7] = [
        ScenarioKind::Flood,
        ScenarioKind::Earthquake,
        ScenarioKind::Crash,
        ScenarioKind::Pollution,
        ScenarioKind::Bell,
        ScenarioKind::Sos,
        ScenarioKind::CameraOffline,
    ];

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Flood => "flood",
            ScenarioKind::Earthquake => "earthquake",
            ScenarioKind::Crash => "crash",
            ScenarioKind::Pollution => "pollution",
            ScenarioKind::Bell => "bell",
            ScenarioKind::Sos => "sos",
            ScenarioKind::CameraOffline => "camera-offline",
        }
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScenarioKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        ScenarioKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::UnknownScenario { name: s.to_owned() })
    }
}

impl Scenario {
    /// The scenario's kind.
    pub fn kind(&self) -> ScenarioKind {
        match self {
            Scenario::Flood(_) => ScenarioKind::Flood,
            Scenario::Earthquake(_) => ScenarioKind::Earthquake,
            Scenario::Crash(_) => ScenarioKind::Crash,
            Scenario::Pollution(_) => ScenarioKind::Pollution,
            Scenario::BellPressed(_) => ScenarioKind::Bell,
            Scenario::SosWander(_) => ScenarioKind::Sos,
            Scenario::CameraOffline(_) => ScenarioKind::CameraOffline,
        }
    }

    /// When it starts.
    pub fn start(&self) -> SimTime {
        match self {
            Scenario::Flood(s) => s.start,
            Scenario::Earthquake(s) => s.origin_time,
            Scenario::Crash(s) => s.start,
            Scenario::Pollution(s) => s.start,
            Scenario::BellPressed(s) => s.at,
            Scenario::SosWander(s) => s.start,
            Scenario::CameraOffline(s) => s.start,
        }
    }

    /// The entity the scenario targets, for scenarios aimed at one device.
    pub fn target(&self) -> Option<&str> {
        match self {
            Scenario::Crash(s) => Some(&s.segment),
            Scenario::BellPressed(s) => Some(&s.bell),
            Scenario::SosWander(s) => Some(&s.tracker),
            Scenario::CameraOffline(s) => Some(&s.camera),
            _ => None,
        }
    }

    /// A demo scenario of `kind` starting at `start`, aimed at a fitting part of
    /// `city`: a flood of 60 mm/h for 150 min; an M5.8 earthquake 10 km deep,
    /// 6 km south-west of the centre; a crash on a busy old-town arterial
    /// (forward lanes, cleared after 60 min); a threefold haze for 12 h; the
    /// first bell; the first tracker walking at 1.2 m/s, SOS after 10 min;
    /// the first camera offline.
    pub fn demo(kind: ScenarioKind, city: &City, start: SimTime) -> Scenario {
        let first = |ty: &str| {
            city.devices()
                .iter()
                .find(|d| d.entity_type == ty)
                .map(|d| d.entity_id.clone())
                .unwrap_or_default()
        };
        match kind {
            ScenarioKind::Flood => Scenario::Flood(Flood {
                start,
                rain_mm_per_h: 60.0,
                duration_min: 150.0,
            }),
            ScenarioKind::Earthquake => Scenario::Earthquake(Earthquake {
                origin_time: start,
                epicentre: crate::geo::CITY_CENTRE.offset(-4_200.0, -4_200.0),
                magnitude: 5.8,
                depth_km: 10.0,
            }),
            ScenarioKind::Crash => Scenario::Crash(Crash {
                start,
                segment: demo_crash_segment(city),
                direction: LaneDirection::Forward,
                clearance_min: 60.0,
            }),
            ScenarioKind::Pollution => Scenario::Pollution(Pollution {
                start,
                duration_h: 12.0,
                factor: 3.0,
            }),
            ScenarioKind::Bell => Scenario::BellPressed(BellPressed {
                at: start,
                bell: first("EmergencyBell"),
                reset_after_min: Some(30.0),
            }),
            ScenarioKind::Sos => Scenario::SosWander(SosWander {
                start,
                tracker: first("SosTracker"),
                speed_m_per_s: 1.2,
                sos_after_min: 10.0,
            }),
            ScenarioKind::CameraOffline => Scenario::CameraOffline(CameraOffline {
                start,
                camera: first("Camera"),
                duration_min: None,
            }),
        }
    }
}

/// An arterial segment watched by a forward detector, as are the two segments upstream.
fn demo_crash_segment(city: &City) -> String {
    let watched: Vec<usize> = city
        .devices()
        .iter()
        .filter_map(|d| match d.kind {
            Kind::TrafficDetector {
                segment,
                direction: LaneDirection::Forward,
                ..
            } => Some(segment),
            _ => None,
        })
        .collect();
    let seg = city
        .segments
        .iter()
        .enumerate()
        .find(|(i, s)| {
            s.class == crate::city::RoadClass::Arterial
                && watched.contains(i)
                && s.prev.is_some_and(|p| {
                    watched.contains(&p)
                        && city.segments[p]
                            .prev
                            .is_some_and(|pp| watched.contains(&pp))
                })
        })
        .or_else(|| {
            city.segments
                .iter()
                .enumerate()
                .find(|(i, _)| watched.contains(i))
        })
        .map_or(0, |(i, _)| i);
    format!("urn:ngsi-ld:RoadSegment:{}", city.segments[seg].id)
}

/// A scenario with its target resolved to a device index.
#[derive(Debug, Clone)]
pub(crate) struct Active {
    pub scenario: Scenario,
    pub target: Option<usize>,
}

pub(crate) fn resolve(city: &City, scenario: Scenario) -> Result<Active, Error> {
    let target = match scenario.target() {
        None => None,
        Some(id) => {
            let expected = match scenario.kind() {
                ScenarioKind::Crash => "RoadSegment",
                ScenarioKind::Bell => "EmergencyBell",
                ScenarioKind::Sos => "SosTracker",
                _ => "Camera",
            };
            match city.device_by_entity(id) {
                Some((i, d)) if d.entity_type == expected => Some(i),
                _ => {
                    return Err(Error::UnknownTarget {
                        scenario: scenario.kind().as_str(),
                        entity_id: id.to_owned(),
                        expected,
                    })
                }
            }
        }
    };
    Ok(Active { scenario, target })
}
