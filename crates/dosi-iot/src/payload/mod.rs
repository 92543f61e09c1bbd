//! Device payloads: decoded into groups of named measures, before mapping.

pub mod json;
pub mod ul;
pub mod vendor;

/// The largest payload a decoder accepts, in bytes (64 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// The checks every decoder starts with: size, UTF-8, not blank. Returns the
/// payload with surrounding whitespace (newlines included) trimmed.
fn text_of(payload: &[u8]) -> Result<&str, PayloadError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge(payload.len(), MAX_PAYLOAD_BYTES));
    }
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotUtf8)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(PayloadError::Empty);
    }
    Ok(text)
}

/// A measure's raw value.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasureValue {
    /// Text as sent (UltraLight values are always text).
    Text(String),
    /// A JSON value (IoT Agent JSON).
    Json(serde_json::Value),
}

/// One named measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// The measure name (`object_id`) as sent.
    pub name: String,
    /// Its value.
    pub value: MeasureValue,
}

/// Measures taken together, optionally with the time they were taken
/// (UltraLight `TimeInstant` group prefix, JSON `TimeInstant` member).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeasureGroup {
    /// The timestamp as sent, if any.
    pub timestamp: Option<String>,
    /// The measures, in payload order.
    pub measures: Vec<Measure>,
}

/// A payload that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not valid UTF-8.
    #[error("payload is not valid UTF-8")]
    NotUtf8,
    /// Empty payload.
    #[error("payload is empty")]
    Empty,
    /// A syntax error, with where and what.
    #[error("{0}")]
    Syntax(String),
    /// Too large (bytes, limit).
    #[error("payload of {0} bytes exceeds the limit of {1}")]
    TooLarge(usize, usize),
}
