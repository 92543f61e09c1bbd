//! The city simulator's pure core: Dosi City, a fictional mid-size city near
//! Khon Kaen, Thailand, generated from a seed (districts, roads, a river and
//! thousands of devices over the nine domain packs), device models with daily
//! patterns, and scenarios (flood, earthquake, crash, pollution episode,
//! emergency bell, SOS wander, camera offline) that change what the devices
//! report.
//!
//! [`City::generate`] builds the city; [`Sim`] holds it with its scenarios and
//! answers [`Sim::measures`] (a device's dynamic attributes at a simulated
//! time) and [`Sim::entity`] (the full normalized NGSI-LD entity, short terms,
//! valid for `dosi_packs::validate`).
//!
//! This crate does no IO and reads no clock: time is passed in, randomness
//! comes from the seed. It knows nothing of MQTT, HTTP or the broker; the
//! transports that publish through the gateway live elsewhere.

mod city;
mod device;
mod geo;
mod model;
mod scenario;
mod time;

pub use city::{
    City, District, DistrictKind, Junction, Lot, River, Road, RoadClass, Scale, Segment,
};
pub use device::{Device, DeviceId, Kind, LaneDirection, ParkingProfile, Reporting};
pub use geo::{in_polygon, LonLat, CITY_CENTRE};
pub use model::{
    air_quality_index, mmi_from_pga, parking_demand, solar, traffic_demand, Measure, Sim,
};
pub use scenario::{
    BellPressed, CameraOffline, Crash, Earthquake, Flood, Pollution, Scenario, ScenarioKind,
    SosWander,
};
pub use time::{SimTime, CITY_UTC_OFFSET_S};

/// What can go wrong setting up a simulation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The requested scale is below the minimum.
    #[error("a city of {requested} devices is too small: at least {minimum} are needed for every kind of device")]
    ScaleTooSmall {
        /// Devices asked for.
        requested: usize,
        /// The minimum.
        minimum: usize,
    },
    /// No scenario has this name.
    #[error("unknown scenario {name:?} (flood, earthquake, crash, pollution, bell, sos, camera-offline)")]
    UnknownScenario {
        /// The name given.
        name: String,
    },
    /// A scenario targets an entity the city does not have (or of another type).
    #[error("{scenario} scenario: {entity_id} is not a {expected} of this city")]
    UnknownTarget {
        /// The scenario kind.
        scenario: &'static str,
        /// The entity id given.
        entity_id: String,
        /// The entity type the scenario needs.
        expected: &'static str,
    },
}
