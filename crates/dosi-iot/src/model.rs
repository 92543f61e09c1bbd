//! Service groups and devices, in the FIWARE IoT Agent provisioning shape
//! (JSON field names as the IoT Agents use them).

use serde::{Deserialize, Serialize};

/// How one device measure becomes an NGSI-LD attribute (`attributes[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct AttrMapping {
    /// The measure's name in the payload (`t`); defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// The attribute name (`temperature`).
    pub name: String,
    /// The attribute type as the IoT Agents write it: `Number`, `Text`,
    /// `Boolean`, `geo:point`, `geo:json`, `DateTime`, `Relationship`,
    /// `Property`, …
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    /// `unitCode` of the attribute (a UN/CEFACT code).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "unitCode")]
    pub unit_code: Option<String>,
    /// Where the value is in a vendor JSON payload: a JSONPath (RFC 9535),
    /// e.g. `$.readings[0].lvl` (a dosi extension, see `payload::vendor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// A transform of the raw value (`expression` in the IoT Agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Extra attribute metadata (sub-attributes), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

fn default_type() -> String {
    "Property".into()
}

/// An attribute with a fixed value added to every update (`static_attributes[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticAttr {
    /// The attribute name.
    pub name: String,
    /// The attribute type (see [`AttrMapping::kind`]).
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    /// The value.
    pub value: serde_json::Value,
}

/// A service group (`/iot/services`): the API key devices authenticate with
/// and the defaults of its devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ServiceGroup {
    /// The API key (`k` on HTTP, first topic level on MQTT).
    pub apikey: String,
    /// The HTTP resource (`/iot/d`, `/iot/json`).
    #[serde(default)]
    pub resource: String,
    /// Entity type of its devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// `fiware-service` (maps to the NGSI-LD tenant).
    #[serde(default)]
    pub service: String,
    /// `fiware-servicepath` (maps to the entity scope).
    #[serde(default)]
    pub subservice: String,
    /// Measure mappings shared by its devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttrMapping>,
    /// Attributes with fixed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_attributes: Vec<StaticAttr>,
    /// Only mapped measures are written (others are dropped).
    #[serde(default, rename = "explicitAttrs")]
    pub explicit_attrs: bool,
    /// An unknown device id is provisioned on its first measure.
    #[serde(default = "yes")]
    pub autoprovision: bool,
    /// For vendor JSON (mappings with `json_path`): the JSONPath of the
    /// time the measures were taken (a dosi extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_path: Option<String>,
    /// Default of its devices' `liveness_interval_secs` (a dosi extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_interval_secs: Option<u64>,
}

fn yes() -> bool {
    true
}

/// A device (`/iot/devices`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Device {
    /// The device id (second topic level, `i` on HTTP).
    pub device_id: String,
    /// The NGSI-LD entity id it writes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_name: Option<String>,
    /// The entity type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// The API key of its service group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apikey: Option<String>,
    /// `fiware-service`.
    #[serde(default)]
    pub service: String,
    /// `fiware-servicepath`.
    #[serde(default)]
    pub service_path: String,
    /// Measure mappings (`attributes[]`), on top of its group's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttrMapping>,
    /// Lazy attributes (read on demand; kept for compatibility).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lazy: Vec<AttrMapping>,
    /// Commands the device accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<AttrMapping>,
    /// Attributes with fixed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_attributes: Vec<StaticAttr>,
    /// `UL` / `JSON` (IoTA names: `PDI-IoTA-UltraLight`, `IoTA-JSON`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `MQTT` / `HTTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// IANA time zone of timestamps without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// HTTP endpoint for commands (HTTP transport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Only mapped measures are written.
    #[serde(
        default,
        rename = "explicitAttrs",
        skip_serializing_if = "Option::is_none"
    )]
    pub explicit_attrs: Option<bool>,
    /// A device silent for longer than this many seconds is marked offline
    /// (`deviceState`); 0 switches it off; unset: its group's, then the
    /// server's default. A dosi extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_interval_secs: Option<u64>,
}

fn check_paths<'a>(mappings: impl Iterator<Item = &'a AttrMapping>) -> Result<(), String> {
    for m in mappings {
        if let Some(p) = &m.json_path {
            crate::payload::vendor::check_path(p)?;
        }
    }
    Ok(())
}

impl ServiceGroup {
    /// Checks what provisioning cannot leave to the first measure (JSONPaths).
    pub fn check(&self) -> Result<(), String> {
        check_paths(self.attributes.iter())?;
        if let Some(p) = &self.timestamp_path {
            crate::payload::vendor::check_path(p)?;
        }
        Ok(())
    }
}

impl Device {
    /// Checks what provisioning cannot leave to the first measure (JSONPaths).
    pub fn check(&self) -> Result<(), String> {
        check_paths(self.attributes.iter())
    }
}
