//! IoT Agent JSON (the FIWARE IoT Agent JSON user manual's syntax).
//!
//! Measures: an object whose members are measures
//! (`{"h": "45%", "t": "23", "l": "1570"}`), or an array of such objects,
//! one measure group each. The member `TimeInstant` — the name the IoT
//! Agents use for the measure time — is not a measure: it becomes the
//! group's timestamp and must be a date-time string.
//!
//! Commands: `{"ping": {"data": 22}}` to the device, and
//! `{"ping": "1234567890"}` back (one member per command).

use serde_json::{Map, Value};

use super::{text_of, Measure, MeasureGroup, MeasureValue, PayloadError};
use crate::time::Timestamp;

/// The member holding a group's timestamp.
pub const TIME_INSTANT: &str = "TimeInstant";

/// Decodes an IoT Agent JSON measure payload (an object of measures, or an
/// array of such objects). All or nothing: one bad item fails the payload.
pub fn decode(payload: &[u8]) -> Result<Vec<MeasureGroup>, PayloadError> {
    match parse(payload)? {
        Value::Object(members) => Ok(vec![decode_group(None, members)?]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(syntax("the array of measure groups is empty".into()));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(members) => decode_group(Some(i + 1), members),
                    other => Err(syntax(format!(
                        "array item {} is {}, not an object of measures",
                        i + 1,
                        kind(&other)
                    ))),
                })
                .collect()
        }
        other => Err(syntax(format!(
            "the payload is {}, not an object of measures or an array of them",
            kind(&other)
        ))),
    }
}

fn parse(payload: &[u8]) -> Result<Value, PayloadError> {
    let text = text_of(payload)?;
    serde_json::from_str(text).map_err(|e| syntax(format!("invalid JSON: {e}")))
}

fn decode_group(
    item: Option<usize>,
    members: Map<String, Value>,
) -> Result<MeasureGroup, PayloadError> {
    let at = item
        .map(|i| format!("array item {i}: "))
        .unwrap_or_default();
    let mut group = MeasureGroup::default();
    for (name, value) in members {
        if name == TIME_INSTANT {
            match &value {
                Value::String(s) if Timestamp::parse(s.trim()).is_some() => {
                    group.timestamp = Some(s.trim().to_owned());
                }
                _ => {
                    return Err(syntax(format!(
                        "{at}`{TIME_INSTANT}` must be a date-time string (2016-06-13T00:35:30Z), got {value}"
                    )))
                }
            }
        } else if name.trim().is_empty() {
            return Err(syntax(format!("{at}a measure has an empty name")));
        } else {
            group.measures.push(Measure {
                name,
                value: MeasureValue::Json(value),
            });
        }
    }
    if group.measures.is_empty() {
        return Err(syntax(format!("{at}no measures")));
    }
    Ok(group)
}

fn syntax(what: String) -> PayloadError {
    PayloadError::Syntax(format!("IoT Agent JSON: {what}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Encodes a command for a device: `{"<command>": <params>}`.
pub fn encode_command(command: &str, params: &Value) -> Value {
    let mut members = Map::new();
    members.insert(command.to_owned(), params.clone());
    Value::Object(members)
}

/// Decodes a command result (`{"ping": "1234567890"}`) into
/// `(command, result)` pairs, in payload order. Several commands may answer
/// in one object.
pub fn decode_command_result(payload: &[u8]) -> Result<Vec<(String, Value)>, PayloadError> {
    match parse(payload)? {
        Value::Object(members) if members.is_empty() => {
            Err(syntax("the command result object is empty".into()))
        }
        Value::Object(members) => members
            .into_iter()
            .map(|(name, value)| {
                if name.trim().is_empty() {
                    Err(syntax("a command result has an empty command name".into()))
                } else {
                    Ok((name, value))
                }
            })
            .collect(),
        other => Err(syntax(format!(
            "a command result is {}, not an object (`{{\"command\": result}}`)",
            kind(&other)
        ))),
    }
}
