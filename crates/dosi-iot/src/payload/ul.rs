//! UltraLight 2.0 (the FIWARE IoT Agent UL user manual's syntax).
//!
//! Measures: `key|value|key|value`, all values text; several groups in one
//! payload separated by `#` (`gps|1.2/3.4#t|10`); a group may start with a
//! timestamp (`2016-06-13T00:35:30Z|lle|100`). A group is read as
//! timestamped when it has an odd number of fields and the first is a
//! date-time; an odd number of fields otherwise is an error. Whitespace
//! (newlines included) around the payload, each group, each key and each
//! value is trimmed, so a trailing newline from a shell `echo` is harmless.
//!
//! Commands: `device@command|p1=v1|p2=v2` to the device, and
//! `device@command|result` back.

use super::{text_of, Measure, MeasureGroup, MeasureValue, PayloadError};
use crate::time::Timestamp;

/// Decodes an UltraLight 2.0 measure payload (`t|23|h|45`, groups separated
/// by `#`, an optional leading timestamp per group). All or nothing: one bad
/// group fails the whole payload.
pub fn decode(payload: &[u8]) -> Result<Vec<MeasureGroup>, PayloadError> {
    let text = text_of(payload)?;
    text.split('#')
        .enumerate()
        .map(|(i, group)| decode_group(i + 1, group.trim()))
        .collect()
}

fn decode_group(n: usize, group: &str) -> Result<MeasureGroup, PayloadError> {
    if group.is_empty() {
        return Err(syntax(n, "is empty (two `#` in a row, or one at an end)"));
    }
    let fields: Vec<&str> = group.split('|').map(str::trim).collect();
    let (timestamp, pairs) = if fields.len() % 2 == 1 {
        match Timestamp::parse(fields[0]) {
            Some(_) => (Some(fields[0].to_owned()), &fields[1..]),
            None => {
                return Err(syntax(
                    n,
                    &format!(
                        "has an odd number of fields ({}) and its first, `{}`, is not a timestamp",
                        fields.len(),
                        clip(fields[0])
                    ),
                ))
            }
        }
    } else {
        (None, &fields[..])
    };
    if pairs.is_empty() {
        return Err(syntax(n, "has a timestamp but no measures"));
    }
    let measures = pairs
        .chunks_exact(2)
        .enumerate()
        .map(|(k, pair)| {
            if pair[0].is_empty() {
                return Err(syntax(n, &format!("measure {} has an empty name", k + 1)));
            }
            Ok(Measure {
                name: pair[0].to_owned(),
                value: MeasureValue::Text(pair[1].to_owned()),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(MeasureGroup {
        timestamp,
        measures,
    })
}

fn syntax(group: usize, what: &str) -> PayloadError {
    PayloadError::Syntax(format!("UltraLight: measure group {group} {what}"))
}

/// The first 40 characters of a field, for an error message.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Encodes measure groups as UltraLight 2.0 (what a device would send; used
/// by simulators and tests). JSON values are written as their JSON text.
/// Names and values are written as given: a `|` or `#` in them, or
/// surrounding whitespace, does not survive [`decode`].
pub fn encode(groups: &[MeasureGroup]) -> String {
    let mut out = String::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.push('#');
        }
        let mut first = true;
        if let Some(ts) = &group.timestamp {
            out.push_str(ts);
            first = false;
        }
        for m in &group.measures {
            if !first {
                out.push('|');
            }
            first = false;
            out.push_str(&m.name);
            out.push('|');
            match &m.value {
                MeasureValue::Text(t) => out.push_str(t),
                MeasureValue::Json(v) => out.push_str(&json_text(v)),
            }
        }
    }
    out
}

/// A JSON value as UL text: strings bare, everything else as JSON.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Encodes a command for `device_id` (`weatherStation167@ping|param1=1|param2=2`).
///
/// `params`: an object gives one `name=value` field per member (strings bare,
/// other values as JSON); `null` or an empty object gives no fields
/// (`dev@cmd`); any other value gives one bare field (`dev@cmd|22`).
pub fn encode_command(device_id: &str, command: &str, params: &serde_json::Value) -> String {
    let mut out = format!("{device_id}@{command}");
    match params {
        serde_json::Value::Null => {}
        serde_json::Value::Object(members) => {
            for (name, value) in members {
                out.push('|');
                out.push_str(name);
                out.push('=');
                out.push_str(&json_text(value));
            }
        }
        other => {
            out.push('|');
            out.push_str(&json_text(other));
        }
    }
    out
}

/// Decodes a command result (`weatherStation167@ping|Ping ok`) into
/// `(device, command, result)`. The result is everything after the first
/// `|`, trimmed; it may itself contain `|`.
pub fn decode_command_result(payload: &[u8]) -> Result<(String, String, String), PayloadError> {
    let text = text_of(payload)?;
    let err = |what: &str| PayloadError::Syntax(format!("UltraLight command result: {what}"));
    let (device, rest) = text
        .split_once('@')
        .ok_or_else(|| err("no `@` between device and command (`device@command|result`)"))?;
    let (command, result) = rest
        .split_once('|')
        .ok_or_else(|| err("no `|` between command and result (`device@command|result`)"))?;
    let (device, command) = (device.trim(), command.trim());
    if device.is_empty() {
        return Err(err("the device name is empty"));
    }
    if command.is_empty() {
        return Err(err("the command name is empty"));
    }
    Ok((
        device.to_owned(),
        command.to_owned(),
        result.trim().to_owned(),
    ))
}
