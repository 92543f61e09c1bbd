//! Vendor JSON: payloads in a device maker's own shape, read with one
//! JSONPath (RFC 9535, `serde_json_path`) per attribute mapping.
//!
//! A mapping `{"name": "waterLevel", "json_path": "$.readings[0].lvl"}`
//! takes the value at that path as the measure `waterLevel` (its `object_id`
//! if it has one), which then maps like any measure (type, `unitCode`,
//! expression). A path matching nothing leaves the measure out; matching
//! several nodes gives their values as an array. `timestamp_path` (on the
//! service group) names the time the measures were taken (ISO 8601 text or
//! epoch milliseconds).

use serde_json::Value;
use serde_json_path::JsonPath;

use super::{text_of, Measure, MeasureGroup, MeasureValue, PayloadError};
use crate::model::AttrMapping;

/// Checks a JSONPath (at provisioning, so measures never meet a bad one).
pub fn check_path(path: &str) -> Result<(), String> {
    JsonPath::parse(path)
        .map(|_| ())
        .map_err(|e| format!("json_path '{path}' is not a JSONPath (RFC 9535): {e}"))
}

/// Whether any of `mappings` reads vendor JSON.
pub fn applies<'a>(mut mappings: impl Iterator<Item = &'a AttrMapping>) -> bool {
    mappings.any(|m| m.json_path.is_some())
}

/// Decodes a vendor JSON payload into one measure group: one measure per
/// mapping with a `json_path` that matches.
pub fn decode<'a>(
    payload: &[u8],
    mappings: impl Iterator<Item = &'a AttrMapping>,
    timestamp_path: Option<&str>,
) -> Result<Vec<MeasureGroup>, PayloadError> {
    let text = text_of(payload)?;
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| PayloadError::Syntax(format!("payload is not JSON: {e}")))?;
    let mut measures = Vec::new();
    for m in mappings {
        let Some(path) = &m.json_path else { continue };
        let Some(v) = query(&doc, path)? else {
            continue;
        };
        measures.push(Measure {
            name: m.object_id.clone().unwrap_or_else(|| m.name.clone()),
            value: MeasureValue::Json(v),
        });
    }
    if measures.is_empty() {
        return Err(PayloadError::Syntax(
            "no mapped json_path matches the payload".into(),
        ));
    }
    let timestamp = match timestamp_path {
        None => None,
        Some(p) => match query(&doc, p)? {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(epoch_millis(&n)?),
            Some(other) => {
                return Err(PayloadError::Syntax(format!(
                    "timestamp at '{p}' is neither text nor epoch milliseconds: {other}"
                )))
            }
        },
    };
    Ok(vec![MeasureGroup {
        timestamp,
        measures,
    }])
}

fn query(doc: &Value, path: &str) -> Result<Option<Value>, PayloadError> {
    let p = JsonPath::parse(path).map_err(|e| PayloadError::Syntax(format!("{path}: {e}")))?;
    let nodes = p.query(doc).all();
    Ok(match nodes.len() {
        0 => None,
        1 => Some(nodes[0].clone()),
        _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
    })
}

fn epoch_millis(n: &serde_json::Number) -> Result<String, PayloadError> {
    let ms = n
        .as_i64()
        .ok_or_else(|| PayloadError::Syntax(format!("epoch milliseconds {n} is not an integer")))?;
    let t = chrono::DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| PayloadError::Syntax(format!("epoch milliseconds {ms} is out of range")))?;
    Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}
