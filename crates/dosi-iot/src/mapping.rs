//! From decoded measures to NGSI-LD attributes (normalized form), following
//! the device's and its service group's `attributes[]`.
//!
//! - A measure's mapping is found by `object_id` (or `name` when there is no
//!   `object_id`), in the device's `attributes` first, then the group's.
//! - An unmapped measure keeps its name and becomes a `Property` with the value
//!   as sent (text for UltraLight, JSON for IoT Agent JSON) — unless
//!   `explicitAttrs` is set (the device's setting wins over the group's), in
//!   which case it is dropped.
//! - The mapping `type` converts the value: `Number`/`Integer`/`Float`,
//!   `Boolean` (`true`/`false`/`1`/`0`), `Text`/`String`, `geo:point`
//!   (`"lat, lon"` → GeoProperty Point `[lon, lat]`), `geo:json`
//!   (a GeoJSON geometry), `DateTime`, `Relationship`; any other type keeps
//!   the value as sent. Type names match case-insensitively.
//! - `observedAt` is the group's timestamp in UTC `Z` form. A timestamp
//!   without a zone is read in the device's `timezone` when that is a fixed
//!   offset (`+09:00`); any other `timezone` (IANA names such as
//!   `Europe/Madrid`, which need a zone database) is treated as UTC.
//! - `expression` transforms the raw value before the type conversion
//!   (ADR 10, `evalexpr`): arithmetic, comparisons, string and math
//!   functions over `value` (this measure) and the other measures of the
//!   group by name; the IoT Agents' legacy form `${@value * 10}` is accepted
//!   (the `${…}` wrapper and `@` prefixes are dropped). An expression that
//!   fails is an error of that measure.
//! - Static attributes (the device's, then the group's) are appended to each
//!   group's list without `observedAt`; a measure attribute of the same name
//!   wins.
//!
//! Conversion is all or nothing: every failing measure is collected into one
//! [`MappingError`], and no attribute list is returned.

use serde_json::{json, Map, Value};

use crate::model::{AttrMapping, Device, ServiceGroup};
use crate::payload::{MeasureGroup, MeasureValue};
use crate::time::Timestamp;

/// One measure that does not convert to its attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureError {
    /// The measure group (1-based, in payload order).
    pub group: usize,
    /// The measure name as sent (`TimeInstant` for a bad group timestamp,
    /// the attribute name for a bad static attribute).
    pub measure: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for MeasureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "group {} measure `{}`: {}",
            self.group, self.measure, self.reason
        )
    }
}

/// Measures that do not map to attributes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// Some measures do not convert to their mapped type.
    #[error("device {device_id}: {}", join(.errors))]
    InvalidMeasures {
        /// The device that sent them.
        device_id: String,
        /// Every failing measure.
        errors: Vec<MeasureError>,
    },
}

fn join(errors: &[MeasureError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One NGSI-LD attribute: its name and its normalized form.
pub type Attribute = (String, Value);

/// Maps decoded measure groups to NGSI-LD attributes: one list per measure
/// group, in payload order (the IoT Agents send one update per group). See
/// the module documentation for the rules.
pub fn to_attributes(
    groups: &[MeasureGroup],
    device: &Device,
    group: Option<&ServiceGroup>,
) -> Result<Vec<Vec<Attribute>>, MappingError> {
    let explicit = device
        .explicit_attrs
        .unwrap_or_else(|| group.is_some_and(|g| g.explicit_attrs));
    let group_mappings: &[AttrMapping] = group.map(|g| g.attributes.as_slice()).unwrap_or_default();
    let statics = device
        .static_attributes
        .iter()
        .chain(group.into_iter().flat_map(|g| g.static_attributes.iter()));

    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(groups.len());
    for (gi, mg) in groups.iter().enumerate() {
        let gn = gi + 1;
        let observed_at = match &mg.timestamp {
            None => None,
            Some(ts) => match Timestamp::parse(ts.trim()) {
                Some(t) => Some(t.to_utc_string(device.timezone.as_deref())),
                None => {
                    errors.push(MeasureError {
                        group: gn,
                        measure: "TimeInstant".into(),
                        reason: format!("`{ts}` is not a date-time"),
                    });
                    None
                }
            },
        };
        let mut attrs: Vec<Attribute> = Vec::new();
        for m in &mg.measures {
            let mapping = device
                .attributes
                .iter()
                .chain(group_mappings)
                .find(|a| a.object_id.as_deref().unwrap_or(&a.name) == m.name);
            if mapping.is_none() && explicit {
                continue;
            }
            let (name, kind) = match mapping {
                Some(a) => (a.name.as_str(), a.kind.as_str()),
                None => (m.name.as_str(), "Property"),
            };
            let transformed;
            let raw = match mapping.and_then(|a| a.expression.as_deref()) {
                Some(expr) => match evaluate(expr, &m.value, &mg.measures) {
                    Ok(v) => {
                        transformed = MeasureValue::Json(v);
                        &transformed
                    }
                    Err(reason) => {
                        errors.push(MeasureError {
                            group: gn,
                            measure: m.name.clone(),
                            reason,
                        });
                        continue;
                    }
                },
                None => &m.value,
            };
            match convert(kind, raw) {
                Ok(mut attr) => {
                    if let Some(a) = mapping {
                        decorate(&mut attr, a);
                    }
                    if let Some(t) = &observed_at {
                        attr.insert("observedAt".into(), Value::String(t.clone()));
                    }
                    upsert(&mut attrs, name, Value::Object(attr));
                }
                Err(reason) => errors.push(MeasureError {
                    group: gn,
                    measure: m.name.clone(),
                    reason,
                }),
            }
        }
        for s in statics.clone() {
            if attrs.iter().any(|(n, _)| *n == s.name) {
                continue;
            }
            match convert(&s.kind, &MeasureValue::Json(s.value.clone())) {
                Ok(attr) => attrs.push((s.name.clone(), Value::Object(attr))),
                Err(reason) => errors.push(MeasureError {
                    group: gn,
                    measure: s.name.clone(),
                    reason: format!("static attribute: {reason}"),
                }),
            }
        }
        out.push(attrs);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(MappingError::InvalidMeasures {
            device_id: device.device_id.clone(),
            errors,
        })
    }
}

/// Two measures mapped to one attribute in a group: the later value wins, at
/// the earlier position.
fn upsert(attrs: &mut Vec<Attribute>, name: &str, value: Value) {
    match attrs.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => attrs.push((name.to_owned(), value)),
    }
}

/// Adds `unitCode` (Properties only) and the mapping's metadata as
/// sub-properties (`{"name": {"type": …, "value": v}}` or a bare value).
fn decorate(attr: &mut Map<String, Value>, mapping: &AttrMapping) {
    let is_property = attr.get("type").and_then(Value::as_str) == Some("Property");
    if let (Some(unit), true) = (&mapping.unit_code, is_property) {
        attr.insert("unitCode".into(), Value::String(unit.clone()));
    }
    if let Some(Value::Object(meta)) = &mapping.metadata {
        for (k, v) in meta {
            if matches!(
                k.as_str(),
                "type" | "value" | "object" | "unitCode" | "observedAt"
            ) {
                continue;
            }
            let value = v.get("value").cloned().unwrap_or_else(|| v.clone());
            attr.insert(k.clone(), json!({"type": "Property", "value": value}));
        }
    }
}

/// Converts a raw value by the mapping type into a normalized attribute.
/// A measure value as an expression variable: a number (always a float, so
/// `value / total` divides as a sensor reading should) when it reads as one.
fn variable(v: &MeasureValue) -> evalexpr::Value {
    let text = match v {
        MeasureValue::Json(Value::Number(n)) => {
            return evalexpr::Value::Float(n.as_f64().unwrap_or(f64::NAN))
        }
        MeasureValue::Json(Value::Bool(b)) => return evalexpr::Value::Boolean(*b),
        MeasureValue::Json(Value::String(s)) | MeasureValue::Text(s) => s.trim(),
        MeasureValue::Json(other) => return evalexpr::Value::String(other.to_string()),
    };
    if let Ok(f) = text.parse::<f64>() {
        evalexpr::Value::Float(f)
    } else {
        evalexpr::Value::String(text.to_string())
    }
}

/// Evaluates a mapping's `expression` for one measure.
fn evaluate(
    expr: &str,
    value: &MeasureValue,
    group: &[crate::payload::Measure],
) -> Result<Value, String> {
    use evalexpr::ContextWithMutableVariables;
    let body = expr
        .trim()
        .strip_prefix("${")
        .and_then(|e| e.strip_suffix('}'))
        .unwrap_or(expr)
        .replace('@', "");
    let mut ctx = evalexpr::HashMapContext::<evalexpr::DefaultNumericTypes>::new();
    for m in group {
        // A name that is not an identifier simply cannot be referenced.
        let _ = ctx.set_value(m.name.clone(), variable(&m.value));
    }
    ctx.set_value("value".into(), variable(value))
        .map_err(|e| format!("expression `{expr}`: {e}"))?;
    let out = evalexpr::eval_with_context(&body, &ctx)
        .map_err(|e| format!("expression `{expr}`: {e}"))?;
    match out {
        evalexpr::Value::Int(i) => Ok(Value::from(i)),
        // A whole result is written as an integer (`2 * 10` → `20`).
        evalexpr::Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Ok(Value::from(f as i64))
        }
        evalexpr::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("expression `{expr}` gave {f}, not a finite number")),
        evalexpr::Value::Boolean(b) => Ok(Value::Bool(b)),
        evalexpr::Value::String(s) => Ok(Value::String(s)),
        other => Err(format!("expression `{expr}` gave {other}, not a value")),
    }
}

fn convert(kind: &str, raw: &MeasureValue) -> Result<Map<String, Value>, String> {
    let k = kind.to_ascii_lowercase();
    let value = match k.as_str() {
        "number" | "integer" | "float" | "double" => property(number(raw)?),
        "boolean" | "bool" => property(Value::Bool(boolean(raw)?)),
        "text" | "string" => property(Value::String(text(raw))),
        "geo:point" => geo(point(raw)?),
        "geo:json" | "geojson" | "geoproperty" => geo(geojson(raw)?),
        "datetime" | "date-time" | "date" => {
            let s = text(raw);
            let t = Timestamp::parse(s.trim())
                .ok_or_else(|| format!("`{s}` is not a date-time ({kind})"))?;
            property(json!({"@type": "DateTime", "@value": t.to_utc_string(None)}))
        }
        "relationship" => {
            let s = text(raw);
            let s = s.trim();
            if s.is_empty() || !s.contains(':') {
                return Err(format!("`{s}` is not a URI (Relationship)"));
            }
            attribute("Relationship", "object", Value::String(s.to_owned()))
        }
        _ => property(match raw {
            MeasureValue::Text(t) => Value::String(t.clone()),
            MeasureValue::Json(Value::Null) => return Err("null is not a value".into()),
            MeasureValue::Json(v) => v.clone(),
        }),
    };
    Ok(value)
}

fn attribute(kind: &str, member: &str, value: Value) -> Map<String, Value> {
    let mut attr = Map::new();
    attr.insert("type".into(), Value::String(kind.into()));
    attr.insert(member.into(), value);
    attr
}

fn property(value: Value) -> Map<String, Value> {
    attribute("Property", "value", value)
}

fn geo(value: Value) -> Map<String, Value> {
    attribute("GeoProperty", "value", value)
}

/// The value as text: UL text as is, JSON strings bare, other JSON as JSON.
fn text(raw: &MeasureValue) -> String {
    match raw {
        MeasureValue::Text(t) => t.clone(),
        MeasureValue::Json(Value::String(s)) => s.clone(),
        MeasureValue::Json(v) => v.to_string(),
    }
}

fn number(raw: &MeasureValue) -> Result<Value, String> {
    let s = match raw {
        MeasureValue::Json(Value::Number(n)) => return Ok(Value::Number(n.clone())),
        MeasureValue::Text(t) => t.trim(),
        MeasureValue::Json(Value::String(s)) => s.trim(),
        MeasureValue::Json(v) => return Err(format!("{v} is not a number")),
    };
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::from(i));
    }
    s.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("`{s}` is not a number"))
}

fn boolean(raw: &MeasureValue) -> Result<bool, String> {
    match raw {
        MeasureValue::Json(Value::Bool(b)) => Ok(*b),
        MeasureValue::Json(Value::Number(n)) if n.as_u64() == Some(1) => Ok(true),
        MeasureValue::Json(Value::Number(n)) if n.as_u64() == Some(0) => Ok(false),
        other => {
            let s = text(other);
            match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(format!("`{s}` is not a boolean (true/false/1/0)")),
            }
        }
    }
}

/// `"lat, lon"` (the IoT Agents' `geo:point`) → GeoJSON Point `[lon, lat]`.
fn point(raw: &MeasureValue) -> Result<Value, String> {
    let s = text(raw);
    let bad = || format!("`{s}` is not a `latitude, longitude` point");
    let (lat, lon) = s.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "`{s}` is out of range (latitude ±90, longitude ±180)"
        ));
    }
    Ok(json!({"type": "Point", "coordinates": [lon, lat]}))
}

/// A GeoJSON geometry, given as JSON or as JSON text.
fn geojson(raw: &MeasureValue) -> Result<Value, String> {
    let v = match raw {
        MeasureValue::Json(Value::String(s)) | MeasureValue::Text(s) => {
            serde_json::from_str(s).map_err(|e| format!("not GeoJSON: {e}"))?
        }
        MeasureValue::Json(v) => v.clone(),
    };
    const TYPES: [&str; 7] = [
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    ];
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
    if !TYPES.contains(&ty) {
        return Err(format!("not a GeoJSON geometry (type `{ty}`)"));
    }
    let member = if ty == "GeometryCollection" {
        "geometries"
    } else {
        "coordinates"
    };
    if !v.get(member).is_some_and(Value::is_array) {
        return Err(format!("GeoJSON {ty} without a `{member}` array"));
    }
    Ok(v)
}
