//! dosi-iot: the IoT gateway's device model, payload decoders and the
//! mapping from device measures to NGSI-LD attributes.
//!
//! Devices and service groups follow the FIWARE IoT Agent provisioning API
//! (`/iot/services`, `/iot/devices`) field for field, so FIWARE users keep
//! their provisioning scripts. Payloads: UltraLight 2.0 (`t|23|h|45`, groups
//! separated by `#`) and IoT Agent JSON. Every decoder answers malformed input
//! with a [`PayloadError`], never a panic, and never decodes part of a
//! payload. [`mapping::to_attributes`] turns decoded measures into NGSI-LD
//! attributes (normalized form) by the device's and its group's mappings.
//!
//! The [`Registry`] of service groups and devices persists through the
//! store's meta space (the only IO here); the transports (HTTP, MQTT) and the
//! write path live elsewhere.

#![warn(missing_docs)]

pub mod credentials;
pub mod liveness;
pub mod mapping;
pub mod model;
pub mod payload;
pub mod registry;
mod time;

pub use credentials::{DeviceCredentials, DeviceIdentity};
pub use mapping::{to_attributes, MappingError, MeasureError};
pub use model::{AttrMapping, Device, ServiceGroup, StaticAttr};
pub use payload::{Measure, MeasureGroup, MeasureValue, PayloadError};
pub use registry::{entity_of, Registry};
