//! Timestamps: UTC instants with microsecond precision, rendered as ISO 8601.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{NgsiError, Result};

/// A UTC instant, microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }
    /// Parses an NGSI-LD DateTime (RFC 3339 / ISO 8601 with a zone, e.g.
    /// `2024-05-01T10:00:00Z` or `2024-05-01T10:00:00.123+09:00`).
    pub fn parse(s: &str) -> Result<Self> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| Self(d.with_timezone(&Utc).timestamp_micros()))
            .map_err(|e| NgsiError::bad_data(format!("'{s}' is not a valid DateTime: {e}")))
    }
    /// ISO 8601 in UTC with milliseconds when non-zero sub-second part, e.g.
    /// `2024-05-01T10:00:00.123Z`.
    pub fn to_iso(self) -> String {
        let d = DateTime::<Utc>::from_timestamp_micros(self.0).unwrap_or_default();
        let fmt = if self.0 % 1000 != 0 {
            SecondsFormat::Micros
        } else {
            SecondsFormat::Millis
        };
        d.to_rfc3339_opts(fmt, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Timestamp::parse("2024-05-01T10:00:00.123Z").unwrap();
        assert_eq!(t.to_iso(), "2024-05-01T10:00:00.123Z");
        let t = Timestamp::parse("2024-05-01T19:00:00+09:00").unwrap();
        assert_eq!(t.to_iso(), "2024-05-01T10:00:00.000Z");
        assert!(Timestamp::parse("2024-05-01").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
