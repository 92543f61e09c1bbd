//! Simulated time: seconds since the Unix epoch (UTC), passed in by the caller.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Local time offset of the demo city (Indochina Time, UTC+7), used for the
/// daily patterns (rush hours, night lows).
pub const CITY_UTC_OFFSET_S: i64 = 7 * 3600;

/// A simulated instant, whole seconds since 1970-01-01T00:00:00Z.
///
/// The simulator never reads a clock: every model takes the time it is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(pub i64);

impl SimTime {
    /// The instant at a UTC calendar date and time.
    pub fn from_utc(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Self {
        let days = days_from_civil(year, month, day);
        SimTime(days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
    }

    /// The instant at a calendar date and time in the city's local time (UTC+7).
    pub fn from_local(year: i64, month: u32, day: u32, hour: u32, minute: u32) -> Self {
        SimTime(Self::from_utc(year, month, day, hour, minute, 0).0 - CITY_UTC_OFFSET_S)
    }

    /// Seconds since the epoch.
    pub fn secs(self) -> i64 {
        self.0
    }

    /// This instant plus `s` seconds.
    pub fn plus_secs(self, s: i64) -> Self {
        SimTime(self.0 + s)
    }

    /// This instant plus `m` minutes.
    pub fn plus_mins(self, m: i64) -> Self {
        SimTime(self.0 + m * 60)
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn since(self, earlier: SimTime) -> i64 {
        self.0 - earlier.0
    }

    fn local_secs(self) -> i64 {
        self.0 + CITY_UTC_OFFSET_S
    }

    /// Local hour of day in the city, fractional (0.0 ≤ h < 24.0).
    pub fn local_hour(self) -> f64 {
        self.local_secs().rem_euclid(86_400) as f64 / 3600.0
    }

    /// Whether the local day is a Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        // 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
        let weekday = (self.local_secs().div_euclid(86_400) + 3).rem_euclid(7);
        weekday >= 5
    }

    /// Local day of the year, 0-based (0 = 1 January).
    pub fn day_of_year(self) -> u32 {
        let days = self.local_secs().div_euclid(86_400);
        let (y, _, _) = civil_from_days(days);
        (days - days_from_civil(y, 1, 1)) as u32
    }

    /// RFC 3339 in UTC with a `Z` suffix (`2026-11-22T09:30:00Z`).
    pub fn rfc3339(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_calendar() {
        let t = SimTime::from_utc(2026, 11, 22, 9, 30, 5);
        assert_eq!(t.rfc3339(), "2026-11-22T09:30:05Z");
        assert!(dosi_packs::is_date_time(&t.rfc3339()));
        assert_eq!(SimTime(0).rfc3339(), "1970-01-01T00:00:00Z");
        let local = SimTime::from_local(2026, 11, 23, 8, 0);
        assert_eq!(local.rfc3339(), "2026-11-23T01:00:00Z");
        assert!((local.local_hour() - 8.0).abs() < 1e-9);
        // 2026-11-22 is a Sunday, 2026-11-23 a Monday.
        assert!(SimTime::from_local(2026, 11, 22, 12, 0).is_weekend());
        assert!(!local.is_weekend());
        assert_eq!(SimTime::from_local(2026, 1, 1, 0, 0).day_of_year(), 0);
        assert_eq!(SimTime::from_local(2026, 12, 31, 23, 0).day_of_year(), 364);
    }
}
