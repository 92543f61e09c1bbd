//! Simulated devices: what each one is, where, and how often it reports.

use std::fmt;

use serde_json::Value;

use crate::geo::LonLat;

/// A simulated device's id, unique in its city (`lot07-s0012`, `tfo-0042-f1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub String);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporting {
    /// Every `every_s` seconds, offset by the device's phase.
    Periodic {
        /// Interval, seconds.
        every_s: u32,
    },
    /// When its state changes (checked every `check_s`), and at least every `heartbeat_s`.
    OnChange {
        /// How often the device samples its state, seconds.
        check_s: u32,
        /// Keep-alive interval, seconds.
        heartbeat_s: u32,
    },
    /// Context that does not report (a road segment, a geofence, a parcel):
    /// published once, and again when a scenario changes it.
    Static,
}

impl Reporting {
    /// The sampling interval (periodic interval, on-change check), `None` for static context.
    pub fn interval_s(self) -> Option<u32> {
        match self {
            Reporting::Periodic { every_s } => Some(every_s),
            Reporting::OnChange { check_s, .. } => Some(check_s),
            Reporting::Static => None,
        }
    }

    /// Whether a sampling tick (`k · interval + phase_s`) falls in `(prev, now]`.
    pub fn ticks(self, phase_s: u32, prev: i64, now: i64) -> bool {
        let Some(every) = self.interval_s() else {
            return false;
        };
        let every = i64::from(every.max(1));
        let shift = |t: i64| (t - i64::from(phase_s)).div_euclid(every);
        shift(now) > shift(prev)
    }
}

/// A road lane direction relative to the segment's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LaneDirection {
    /// Along the geometry.
    Forward,
    /// Against it.
    Backward,
}

impl LaneDirection {
    /// The `laneDirection` value.
    pub fn as_str(self) -> &'static str {
        match self {
            LaneDirection::Forward => "forward",
            LaneDirection::Backward => "backward",
        }
    }
}

/// Who parks in a lot, which shapes its day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkingProfile {
    /// Shops and markets: busy 10:00–20:00, a night-market bump.
    Commercial,
    /// Offices, campus, government: full in working hours, empty at night.
    Office,
    /// Housing: full at night, half empty by day.
    Residential,
    /// Hospital: busy all day, never empty.
    Hospital,
}

impl ParkingProfile {
    /// Short name.
    pub fn as_str(self) -> &'static str {
        match self {
            ParkingProfile::Commercial => "commercial",
            ParkingProfile::Office => "office",
            ParkingProfile::Residential => "residential",
            ParkingProfile::Hospital => "hospital",
        }
    }
}

/// What a device is, with the parameters its model needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// An occupancy sensor on one spot (`ParkingSpot`).
    ParkingSpot {
        /// Index of the lot in [`crate::City::lots`], `None` for on-street spots.
        lot: Option<usize>,
        /// Whose day the spot follows.
        profile: ParkingProfile,
        /// Typical stay, minutes (the spot's status holds at least this long).
        stay_min: u32,
    },
    /// A car park's counter (`OffStreetParking`).
    ParkingLot {
        /// Index of the lot in [`crate::City::lots`].
        lot: usize,
    },
    /// A road segment (`RoadSegment`, static context whose status scenarios change).
    RoadSegment {
        /// Index in [`crate::City::segments`].
        segment: usize,
    },
    /// A lane detector (`TrafficFlowObserved`).
    TrafficDetector {
        /// Index in [`crate::City::segments`].
        segment: usize,
        /// The lane's direction.
        direction: LaneDirection,
        /// Lane number, 1 for the outermost.
        lane: u32,
    },
    /// An air-quality station (`AirQualityObserved`).
    AirQuality {
        /// How much road traffic reaches it, 0 (park) to 1 (kerbside of an arterial).
        traffic_exposure: f64,
    },
    /// A river level gauge (`WaterObserved`).
    RiverGauge {
        /// Position along the river, 0 (upstream edge of the city) to 1.
        chainage: f64,
        /// Dry-weather level above the gauge datum, metres.
        base_m: f64,
        /// Warning stage, metres.
        warning_m: f64,
        /// Alert stage, metres.
        alert_m: f64,
    },
    /// A rain gauge (`WeatherObserved`).
    RainGauge {
        /// Local rainfall multiplier (showers are patchy).
        local_factor: f64,
    },
    /// A strong-motion accelerometer (`SeismicObserved`).
    Seismic {
        /// Site amplification (soft soil > 1).
        site_amp: f64,
    },
    /// A public emergency bell (`EmergencyBell`).
    EmergencyBell,
    /// An intrusion sensor on a public building (`Device`).
    Intrusion {
        /// `motion` or `contact`.
        sensing: &'static str,
    },
    /// A wearable SOS tracker (`SosTracker`).
    Tracker {
        /// The wearer's home.
        home: LonLat,
        /// Radius of the home geofence, metres.
        fence_radius_m: f64,
        /// Index of the tracker's `Geofence` device.
        geofence: usize,
    },
    /// A home geofence (`Geofence`, static).
    Geofence {
        /// Index of the tracker it belongs to.
        tracker: usize,
        /// The fence ring.
        ring: Vec<LonLat>,
    },
    /// A farm parcel (`AgriParcel`, static).
    Parcel {
        /// The parcel boundary.
        ring: Vec<LonLat>,
    },
    /// A soil probe on a parcel (`AgriParcelRecord`).
    SoilProbe {
        /// Index of the parcel device.
        parcel: usize,
        /// Irrigation cycle of the parcel, hours.
        cycle_h: f64,
        /// Offset of the cycle, hours.
        cycle_phase_h: f64,
    },
    /// An irrigation valve (`Device`, category actuator).
    Valve {
        /// Index of the parcel device.
        parcel: usize,
        /// Irrigation cycle of the parcel, hours.
        cycle_h: f64,
        /// Offset of the cycle, hours.
        cycle_phase_h: f64,
    },
    /// A greenhouse climate station (`AgriGreenhouse`).
    Greenhouse,
    /// A camera (`Camera`).
    Camera,
}

/// One simulated device (or static context entity) of the city.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Unique id in the city.
    pub id: DeviceId,
    /// The domain pack (`parking`, `traffic`, …).
    pub pack: &'static str,
    /// The NGSI-LD entity type it publishes.
    pub entity_type: &'static str,
    /// `urn:ngsi-ld:<Type>:<id>`.
    pub entity_id: String,
    /// Where it is (a representative point for lines and areas; a tracker's home).
    pub location: LonLat,
    /// The entity's `location` when it is not the point (LineString, Polygon).
    pub geometry: Option<Value>,
    /// Attributes that do not change (name, category, relationships, …), as plain values.
    pub static_attrs: Vec<(&'static str, Value)>,
    /// What it is, for its model.
    pub kind: Kind,
    /// How often it reports.
    pub reporting: Reporting,
    /// Offset of its reporting ticks, seconds (spreads devices over the interval).
    pub phase_s: u32,
}

impl Device {
    /// Whether it reports measurements (not static context).
    pub fn is_sensor(&self) -> bool {
        self.reporting != Reporting::Static
    }

    /// The location as a GeoJSON geometry.
    pub fn location_geometry(&self) -> Value {
        self.geometry
            .clone()
            .unwrap_or_else(|| crate::geo::point(self.location))
    }
}
