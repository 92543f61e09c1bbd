//! Timestamps as devices send them: RFC 3339 / ISO 8601 date-times, with or
//! without a zone.

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// A parsed device timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Timestamp {
    /// With a zone (`Z` or an offset).
    Zoned(DateTime<FixedOffset>),
    /// Without one (`2016-06-13T00:35:30`): the device's zone applies.
    Local(NaiveDateTime),
}

impl Timestamp {
    /// Parses `2016-06-13T00:35:30Z`, `…+02:00`, `…+0200`, `…` with fractional
    /// seconds, and the same without a zone. The date and time must be
    /// separated by `T` (or `t`), as RFC 3339 and the IoT Agents write them.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        // Cheap pre-check: every accepted form starts `YYYY-MM-DDT`. It keeps
        // measure names like `t` from going through chrono's parsers.
        let b = s.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
            return None;
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::Zoned(t));
        }
        if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
            return Some(Self::Zoned(t));
        }
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(Self::Local)
    }

    /// The instant in UTC, `Z` form (`2016-06-13T00:35:30Z`, fractional
    /// seconds kept). A zone-less timestamp is read in `zone` if that is a
    /// fixed offset (`+09:00`, `-0530`, `Z`, `UTC`), else as UTC.
    pub(crate) fn to_utc_string(self, zone: Option<&str>) -> String {
        let utc = match self {
            Self::Zoned(t) => t.with_timezone(&Utc),
            Self::Local(t) => match zone.and_then(fixed_offset) {
                Some(offset) => match offset.from_local_datetime(&t).single() {
                    Some(t) => t.with_timezone(&Utc),
                    None => Utc.from_utc_datetime(&t),
                },
                None => Utc.from_utc_datetime(&t),
            },
        };
        utc.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

/// A fixed UTC offset written as `+09:00`, `-0530`, `Z` or `UTC`; `None` for
/// anything else (IANA names such as `Europe/Madrid` included).
fn fixed_offset(zone: &str) -> Option<FixedOffset> {
    let zone = zone.trim();
    if zone.eq_ignore_ascii_case("z") || zone.eq_ignore_ascii_case("utc") {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => return None,
    };
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, zone: Option<&str>, expected: Option<&str>) {
        let got = Timestamp::parse(input).map(|t| t.to_utc_string(zone));
        assert_eq!(got.as_deref(), expected, "{input} in {zone:?}");
    }

    #[test]
    fn timestamps() {
        check("2016-06-13T00:35:30Z", None, Some("2016-06-13T00:35:30Z"));
        check(
            "2016-06-13T02:35:30+02:00",
            None,
            Some("2016-06-13T00:35:30Z"),
        );
        check(
            "2016-06-13T02:35:30+0200",
            None,
            Some("2016-06-13T00:35:30Z"),
        );
        check(
            "2016-06-13T00:35:30.123Z",
            None,
            Some("2016-06-13T00:35:30.123Z"),
        );
        check(
            "2016-06-13T09:35:30",
            Some("+09:00"),
            Some("2016-06-13T00:35:30Z"),
        );
        check(
            "2016-06-13T09:35:30",
            Some("+0900"),
            Some("2016-06-13T00:35:30Z"),
        );
        check(
            "2016-06-13T00:35:30",
            Some("UTC"),
            Some("2016-06-13T00:35:30Z"),
        );
        check(
            "2016-06-13T00:35:30",
            Some("Europe/Madrid"),
            Some("2016-06-13T00:35:30Z"),
        );
        check("2016-06-13T00:35:30", None, Some("2016-06-13T00:35:30Z"));
        // A zone in the timestamp wins over the device's.
        check(
            "2016-06-13T00:35:30Z",
            Some("+09:00"),
            Some("2016-06-13T00:35:30Z"),
        );
        check("2016-06-13", None, None);
        check("2016-13-13T00:35:30Z", None, None);
        check("t", None, None);
        check("lle", None, None);
        check("2016-06-13 00:35:30Z", None, None);
    }
}
