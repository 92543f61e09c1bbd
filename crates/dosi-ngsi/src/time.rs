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
        if let Some(t) = parse_utc_fast(s) {
            return Ok(Self(t));
        }
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
    /// ISO 8601 in UTC without a fraction when there is none, e.g.
    /// `2024-05-01T10:00:00Z` (milliseconds or microseconds otherwise).
    pub fn to_iso_compact(self) -> String {
        if self.0 % 1_000_000 == 0 {
            let d = DateTime::<Utc>::from_timestamp_micros(self.0).unwrap_or_default();
            d.to_rfc3339_opts(SecondsFormat::Secs, true)
        } else {
            self.to_iso()
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, the spelling nearly every client uses,
/// without chrono (telemetry parses one per attribute); `None` for anything
/// else, which chrono then handles. Sub-microsecond digits are truncated, as
/// chrono's `timestamp_micros` does.
fn parse_utc_fast(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
        || !matches!(b[b.len() - 1], b'Z' | b'z')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if d < 1 || d > dim || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let frac = match b.len() {
        20 => 0,
        n if (22..=30).contains(&n) && b[19] == b'.' => {
            let digits = &b[20..n - 1];
            let mut us = 0i64;
            for (i, c) in digits.iter().enumerate() {
                if !c.is_ascii_digit() {
                    return None;
                }
                if i < 6 {
                    us = us * 10 + i64::from(c - b'0');
                }
            }
            us * 10i64.pow(6u32.saturating_sub(digits.len() as u32))
        }
        _ => return None,
    };
    // Days since 1970-01-01 (H. Hinnant's days_from_civil).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + h * 3_600 + mi * 60 + se) * 1_000_000 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_parse(s: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc).timestamp_micros())
    }

    proptest::proptest! {
        #[test]
        fn fast_parse_agrees_with_chrono(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,10})?[Zz]?") {
            if let Some(fast) = parse_utc_fast(&s) {
                proptest::prop_assert_eq!(Some(fast), chrono_parse(&s), "{}", s);
            }
        }

        #[test]
        fn fast_parse_covers_every_instant(us in -62_135_596_800_000_000i64..253_402_300_799_000_000i64) {
            let d = DateTime::<Utc>::from_timestamp_micros(us).unwrap();
            for f in [SecondsFormat::Secs, SecondsFormat::Millis, SecondsFormat::Micros, SecondsFormat::Nanos] {
                let text = d.to_rfc3339_opts(f, true);
                proptest::prop_assert_eq!(parse_utc_fast(&text), chrono_parse(&text), "{}", text);
            }
        }
    }

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
