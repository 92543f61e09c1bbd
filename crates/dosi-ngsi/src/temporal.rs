//! The temporal query parameters of NGSI-LD (ETSI GS CIM 009 v1.8): the
//! temporal query language (clause 4.11: `timerel`, `timeAt`, `endTimeAt`,
//! `timeproperty`), `lastN`, and the aggregated temporal representation
//! (clause 4.5.19: `aggrMethods`, `aggrPeriodDuration`), in their query
//! string form (6.3.x) and their JSON form (`TemporalQuery`, 5.2.21, and
//! `AggregationParams`, 5.2.44).
//!
//! Pure: parsing, validation, ISO 8601 durations with calendar arithmetic,
//! and the value an aggregation method reports for a bucket. Every violation
//! is a `BadRequestData` whose detail names the parameter and the value.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Months, Utc};
use serde_json::Value;

use crate::error::{NgsiError, Result};
use crate::time::Timestamp;

#[cfg(test)]
mod tests;

/// A temporal relation with its instants (clause 4.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeRel {
    /// Instants strictly before the given one (exclusive bound).
    Before(Timestamp),
    /// Instants at or after the given one (inclusive bound).
    After(Timestamp),
    /// Instants in `[start, end)`: start inclusive, end exclusive; `start < end`.
    Between(Timestamp, Timestamp),
}

impl TimeRel {
    /// The window as `(inclusive lower bound, exclusive upper bound)`, `None`
    /// meaning unbounded: before `t` is `[None, t)`, after `t` is `[t, None)`,
    /// between `t1, t2` is `[t1, t2)`.
    pub fn bounds(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        match *self {
            Self::Before(t) => (None, Some(t)),
            Self::After(t) => (Some(t), None),
            Self::Between(start, end) => (Some(start), Some(end)),
        }
    }

    /// True if `t` falls inside the window.
    pub fn contains(&self, t: Timestamp) -> bool {
        let (lower, upper) = self.bounds();
        lower.is_none_or(|l| t >= l) && upper.is_none_or(|u| t < u)
    }

    /// The `timerel` keyword: `before`, `after` or `between`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Before(_) => "before",
            Self::After(_) => "after",
            Self::Between(..) => "between",
        }
    }
}

/// Which temporal property of an attribute instance the window applies to
/// (`timeproperty`, clause 4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimeProperty {
    /// `observedAt`, the default.
    #[default]
    ObservedAt,
    /// `createdAt`
    CreatedAt,
    /// `modifiedAt`
    ModifiedAt,
    /// `deletedAt`
    DeletedAt,
}

impl TimeProperty {
    /// Every value, in the order the spec lists them.
    pub const ALL: [Self; 4] = [
        Self::ObservedAt,
        Self::CreatedAt,
        Self::ModifiedAt,
        Self::DeletedAt,
    ];

    /// The member name, e.g. `observedAt`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ObservedAt => "observedAt",
            Self::CreatedAt => "createdAt",
            Self::ModifiedAt => "modifiedAt",
            Self::DeletedAt => "deletedAt",
        }
    }
}

impl FromStr for TimeProperty {
    type Err = NgsiError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            NgsiError::bad_data(format!(
                "timeproperty must be one of observedAt, createdAt, modifiedAt, deletedAt; got '{s}'"
            ))
        })
    }
}

impl fmt::Display for TimeProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An aggregation method of the aggregated temporal representation
/// (clause 4.5.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggrMethod {
    /// Number of instances in the period.
    TotalCount,
    /// Number of distinct values in the period.
    DistinctCount,
    /// Sum of the numeric values.
    Sum,
    /// Mean of the numeric values.
    Avg,
    /// Smallest numeric value.
    Min,
    /// Largest numeric value.
    Max,
    /// Sample standard deviation of the numeric values.
    Stddev,
    /// Sum of the squares of the numeric values.
    Sumsq,
}

impl AggrMethod {
    /// Every method, in the order the spec lists them.
    pub const ALL: [Self; 8] = [
        Self::TotalCount,
        Self::DistinctCount,
        Self::Sum,
        Self::Avg,
        Self::Min,
        Self::Max,
        Self::Stddev,
        Self::Sumsq,
    ];

    /// The name used in `aggrMethods` and as the member of the aggregated
    /// representation, e.g. `totalCount`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TotalCount => "totalCount",
            Self::DistinctCount => "distinctCount",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Stddev => "stddev",
            Self::Sumsq => "sumsq",
        }
    }
}

impl FromStr for AggrMethod {
    type Err = NgsiError;

    /// Case-sensitive, as in the spec.
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                NgsiError::bad_data(format!(
                    "aggrMethods: unknown aggregation method '{s}' (expected one of totalCount, \
                 distinctCount, sum, avg, min, max, stddev, sumsq)"
                ))
            })
    }
}

impl fmt::Display for AggrMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An ISO 8601 duration as NGSI-LD allows it: `P[n]Y[n]M[n]DT[n]H[n]M[n]S` or
/// `P[n]W`, only the seconds may carry a fraction (down to microseconds).
///
/// Components are kept as written (`PT60M` is not `PT1H`), so equality is
/// structural. Years and months have no fixed length: use [`Duration::add_to`]
/// for calendar-correct arithmetic, [`Duration::fixed_micros`] when there are
/// none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Duration {
    years: u32,
    months: u32,
    weeks: u32,
    days: u32,
    hours: u32,
    minutes: u32,
    seconds: u32,
    micros: u32,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

impl Duration {
    /// Parses an ISO 8601 duration, e.g. `PT1H`, `P1D`, `P1Y2M10DT2H30M`,
    /// `PT0.5S`, `P2W`. The error names the text but not the parameter; see
    /// [`parse_temporal_query`] for parameter-level messages.
    pub fn parse(s: &str) -> Result<Self> {
        parse_duration(s).map_err(|why| {
            NgsiError::bad_data(format!("'{s}' is not a valid ISO 8601 duration: {why}"))
        })
    }

    /// True if every component is zero (`PT0S`, `P0D`, …).
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// True if the duration has year or month components, whose length
    /// depends on where in the calendar it is applied.
    pub fn has_calendar_part(&self) -> bool {
        self.years != 0 || self.months != 0
    }

    /// The exact length in microseconds, or `None` if the duration has year
    /// or month components.
    pub fn fixed_micros(&self) -> Option<i64> {
        if self.has_calendar_part() {
            None
        } else {
            Some(self.time_micros())
        }
    }

    /// An approximate length in microseconds (a year counted as 365 days, a
    /// month as 30), saturating; for estimates such as the number of buckets
    /// in a range, never for bucket boundaries.
    pub fn approx_micros(&self) -> i64 {
        let calendar_days = i64::from(self.years) * 365 + i64::from(self.months) * 30;
        calendar_days
            .saturating_mul(MICROS_PER_DAY)
            .saturating_add(self.time_micros())
    }

    /// `t` plus this duration in the UTC calendar: years and months first
    /// (the day of month is clamped to the month's end, so Jan 31 + P1M is
    /// Feb 28 or 29), then the fixed part. `None` if out of range.
    pub fn add_to(&self, t: Timestamp) -> Option<Timestamp> {
        self.add_n_to(t, 1)
    }

    /// `t` plus `n` times this duration, computed from `t` in one step (so the
    /// boundaries of successive periods do not drift: Jan 31 + 2×P1M is
    /// Mar 31, not Mar 28). `None` if out of range.
    pub fn add_n_to(&self, t: Timestamp, n: u32) -> Option<Timestamp> {
        let months = (self.years.checked_mul(12)?.checked_add(self.months)?).checked_mul(n)?;
        let fixed = self.time_micros().checked_mul(i64::from(n))?;
        let base = if months == 0 {
            t.0
        } else {
            DateTime::<Utc>::from_timestamp_micros(t.0)?
                .checked_add_months(Months::new(months))?
                .timestamp_micros()
        };
        base.checked_add(fixed).map(Timestamp)
    }

    /// Weeks, days, hours, minutes and seconds in microseconds. `parse`
    /// guarantees this fits in an `i64`.
    fn time_micros(&self) -> i64 {
        i64::from(self.weeks) * 7 * MICROS_PER_DAY
            + i64::from(self.days) * MICROS_PER_DAY
            + i64::from(self.hours) * MICROS_PER_HOUR
            + i64::from(self.minutes) * MICROS_PER_MINUTE
            + i64::from(self.seconds) * MICROS_PER_SECOND
            + i64::from(self.micros)
    }
}

impl FromStr for Duration {
    type Err = NgsiError;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Duration {
    /// The canonical text: zero components left out, `PT0S` for zero, the
    /// seconds' fraction without trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("PT0S");
        }
        f.write_str("P")?;
        for (n, unit) in [
            (self.years, 'Y'),
            (self.months, 'M'),
            (self.weeks, 'W'),
            (self.days, 'D'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        if self.hours != 0 || self.minutes != 0 || self.seconds != 0 || self.micros != 0 {
            f.write_str("T")?;
            if self.hours != 0 {
                write!(f, "{}H", self.hours)?;
            }
            if self.minutes != 0 {
                write!(f, "{}M", self.minutes)?;
            }
            if self.seconds != 0 || self.micros != 0 {
                write!(f, "{}", self.seconds)?;
                if self.micros != 0 {
                    let frac = format!("{:06}", self.micros);
                    write!(f, ".{}", frac.trim_end_matches('0'))?;
                }
                f.write_str("S")?;
            }
        }
        Ok(())
    }
}

/// The grammar of [`Duration`]; the error says what is wrong, the caller
/// adds which text it was.
fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let rest = s
        .strip_prefix('P')
        .ok_or("it must start with 'P' (e.g. PT1H, P1D, P2W)")?;
    if rest.is_empty() {
        return Err("it has no component after 'P'".into());
    }
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return Err("it has no component after 'T'".into()),
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut d = Duration::default();
    // Designators in the order they must appear, each at most once.
    let date_units: [(char, &mut u32); 4] = [
        ('Y', &mut d.years),
        ('M', &mut d.months),
        ('W', &mut d.weeks),
        ('D', &mut d.days),
    ];
    let date_seen = parse_components(date, date_units, "date")?;
    let mut seconds_fraction = None;
    let mut time_seen = Vec::new();
    if let Some(time) = time {
        let (whole, fraction) = split_seconds_fraction(time)?;
        seconds_fraction = fraction;
        let time_units: [(char, &mut u32); 3] = [
            ('H', &mut d.hours),
            ('M', &mut d.minutes),
            ('S', &mut d.seconds),
        ];
        time_seen = parse_components(&whole, time_units, "time")?;
    }
    if date_seen.contains(&'W') && (date_seen.len() > 1 || !time_seen.is_empty()) {
        return Err("weeks (W) cannot be combined with other components".into());
    }
    if let Some(fraction) = seconds_fraction {
        d.micros = fraction;
    }
    // Bounds: the fixed part must fit in i64 microseconds and the calendar
    // part in u32 months, so arithmetic on a parsed duration cannot overflow.
    let fixed = [
        (d.weeks, 7 * MICROS_PER_DAY),
        (d.days, MICROS_PER_DAY),
        (d.hours, MICROS_PER_HOUR),
        (d.minutes, MICROS_PER_MINUTE),
        (d.seconds, MICROS_PER_SECOND),
    ]
    .into_iter()
    .try_fold(i64::from(d.micros), |acc, (n, unit)| {
        i64::from(n).checked_mul(unit)?.checked_add(acc)
    });
    let months = d
        .years
        .checked_mul(12)
        .and_then(|m| m.checked_add(d.months));
    if fixed.is_none() || months.is_none() {
        return Err("it is too large".into());
    }
    Ok(d)
}

/// Splits `"30M5.25S"` into `("30M5S", Some(250000))`: only the seconds may
/// carry a fraction, written with `.` or `,`, at most six digits.
fn split_seconds_fraction(time: &str) -> std::result::Result<(String, Option<u32>), String> {
    let Some(pos) = time.find(['.', ',']) else {
        return Ok((time.to_owned(), None));
    };
    let after = &time[pos + 1..];
    let digits_end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let (digits, tail) = after.split_at(digits_end);
    if tail != "S" {
        return Err("only the seconds (S) may have a fraction, as the last component".into());
    }
    if digits.is_empty() {
        return Err("the seconds' fraction has no digits".into());
    }
    if digits.len() > 6 {
        return Err("the seconds' fraction is finer than a microsecond".into());
    }
    let before = &time[..pos];
    if before.is_empty() || !before.ends_with(|c: char| c.is_ascii_digit()) {
        return Err("the seconds' fraction has no whole part".into());
    }
    let micros = format!("{digits:0<6}")
        .parse()
        .map_err(|_| "the seconds' fraction is not a number".to_owned())?;
    Ok((format!("{before}S"), Some(micros)))
}

/// Parses `<digits><designator>…` against `units` (in their required
/// order), storing each number; returns the designators seen.
fn parse_components<const N: usize>(
    text: &str,
    units: [(char, &mut u32); N],
    part: &str,
) -> std::result::Result<Vec<char>, String> {
    let mut seen = Vec::new();
    let mut next_unit = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("the number '{rest}' has no designator"))?;
        if digits_end == 0 {
            let c = rest.chars().next().unwrap_or_default();
            return Err(format!("expected a number before '{c}'"));
        }
        let (digits, after) = rest.split_at(digits_end);
        let designator = after.chars().next().unwrap_or_default();
        if matches!(designator, '.' | ',') {
            return Err("only the seconds (S) may have a fraction".into());
        }
        let Some(offset) = units[next_unit..]
            .iter()
            .position(|(u, _)| *u == designator)
        else {
            let allowed: String = units.iter().map(|(u, _)| *u).collect();
            return Err(if units.iter().any(|(u, _)| *u == designator) {
                format!("'{designator}' is repeated or out of order in the {part} part")
            } else {
                format!("'{designator}' is not a {part} designator (one of {allowed})")
            });
        };
        let index = next_unit + offset;
        *units[index].1 = digits
            .parse()
            .map_err(|_| format!("the number {digits} is too large"))?;
        seen.push(designator);
        next_unit = index + 1;
        rest = &after[designator.len_utf8()..];
    }
    Ok(seen)
}

/// The temporal part of a request: window, `lastN` and aggregation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemporalQuery {
    /// The window; `None` when the request has no `timerel`.
    pub timerel: Option<TimeRel>,
    /// Which temporal property the window applies to.
    pub timeproperty: TimeProperty,
    /// Only the last n instances per attribute (per entity) in the window.
    pub last_n: Option<usize>,
    /// The aggregation methods, without duplicates, in request order; `Some`
    /// exactly when the aggregated representation applies.
    pub aggr_methods: Option<Vec<AggrMethod>>,
    /// The length of each aggregation period; `None` (also for a zero
    /// duration such as `PT0S`) means one period over the whole window.
    pub aggr_period: Option<Duration>,
}

impl TemporalQuery {
    /// The window as `(inclusive lower, exclusive upper)`, unbounded when
    /// there is no `timerel`.
    pub fn bounds(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        self.timerel.map_or((None, None), |r| r.bounds())
    }

    /// True if the aggregated representation was asked.
    pub fn is_aggregated(&self) -> bool {
        self.aggr_methods.is_some()
    }
}

/// Parses the temporal query parameters of a GET request (clause 6.3.x):
/// `timerel`, `timeAt`, `endTimeAt`, `timeproperty`, `lastN`, `aggrMethods`,
/// `aggrPeriodDuration`. `get(name)` returns a parameter's percent-decoded
/// value. `aggregated` says whether the aggregated representation was asked
/// (`format` / `options`); when it is false `aggrMethods` and
/// `aggrPeriodDuration` are ignored, when it is true `aggrMethods` is
/// mandatory. Every violation is `BadRequestData` naming the parameter.
pub fn parse_temporal_query(
    get: impl Fn(&str) -> Option<String>,
    aggregated: bool,
) -> Result<TemporalQuery> {
    let timerel = parse_timerel(
        get("timerel").as_deref(),
        get("timeAt").as_deref(),
        get("endTimeAt").as_deref(),
    )?;
    let timeproperty = match get("timeproperty") {
        Some(p) => p.parse()?,
        None => TimeProperty::default(),
    };
    let last_n = get("lastN").map(|n| parse_last_n(&n)).transpose()?;
    let (aggr_methods, aggr_period) = if aggregated {
        let methods = get("aggrMethods").ok_or_else(|| {
            NgsiError::bad_data(
                "aggrMethods is mandatory for the aggregated temporal representation",
            )
        })?;
        (
            Some(parse_aggr_methods(&methods)?),
            get("aggrPeriodDuration")
                .map(|d| parse_aggr_period(&d))
                .transpose()?
                .flatten(),
        )
    } else {
        (None, None)
    };
    Ok(TemporalQuery {
        timerel,
        timeproperty,
        last_n,
        aggr_methods,
        aggr_period,
    })
}

/// Parses the JSON form of a query body (`POST /temporal/entityOperations/query`):
/// `temporal_q` is the `temporalQ` member (a `TemporalQuery`, clause 5.2.21)
/// and `aggr_params` the `aggrParams` member (`AggregationParams`, 5.2.44),
/// whose `aggrMethods`/`aggrPeriodDuration` take precedence over those of
/// `temporalQ`. Members have their JSON types: `lastN` a positive integer
/// number, `aggrMethods` a comma separated string or an array of strings,
/// the others strings.
///
/// In this form the presence of `aggrMethods` asks for the aggregated
/// representation (the ETSI suite expects aggregated values for a
/// `temporalQ` carrying `aggrMethods`); `aggregated` (from `format` /
/// `options`) asks for it too and then makes `aggrMethods` mandatory.
pub fn parse_temporal_query_json(
    temporal_q: Option<&Value>,
    aggr_params: Option<&Value>,
    aggregated: bool,
) -> Result<TemporalQuery> {
    let temporal_q = json_object(temporal_q, "temporalQ")?;
    let aggr_params = json_object(aggr_params, "aggrParams")?;
    let member = |name: &str| -> Result<Option<String>> {
        let from_params = if matches!(name, "aggrMethods" | "aggrPeriodDuration") {
            aggr_params.and_then(|p| p.get(name))
        } else {
            None
        };
        match from_params.or_else(|| temporal_q.and_then(|q| q.get(name))) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => json_member_text(name, v).map(Some),
        }
    };
    let mut params = Vec::new();
    for name in [
        "timerel",
        "timeAt",
        "endTimeAt",
        "timeproperty",
        "lastN",
        "aggrMethods",
        "aggrPeriodDuration",
    ] {
        if let Some(text) = member(name)? {
            params.push((name, text));
        }
    }
    let has_methods = params.iter().any(|(n, _)| *n == "aggrMethods");
    parse_temporal_query(
        |name| {
            params
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        },
        aggregated || has_methods,
    )
}

/// `Some(object)` for a JSON object, `None` when absent or null.
fn json_object<'a>(
    v: Option<&'a Value>,
    name: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(NgsiError::bad_data(format!(
            "{name} must be a JSON object, got {other}"
        ))),
    }
}

/// A JSON member as the text its query parameter would carry, checking
/// its JSON type.
fn json_member_text(name: &str, v: &Value) -> Result<String> {
    match (name, v) {
        ("lastN", Value::Number(n)) => match n.as_u64() {
            Some(n) => Ok(n.to_string()),
            None => Err(NgsiError::bad_data(format!(
                "lastN must be a positive integer, got {n}"
            ))),
        },
        ("lastN", other) => Err(NgsiError::bad_data(format!(
            "lastN must be a positive integer number, got {other}"
        ))),
        ("aggrMethods", Value::Array(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) if !s.contains(',') => names.push(s),
                    _ => {
                        return Err(NgsiError::bad_data(format!(
                            "aggrMethods: each entry must be an aggregation method name, got {item}"
                        )))
                    }
                }
            }
            if names.is_empty() {
                return Err(NgsiError::bad_data("aggrMethods is an empty array"));
            }
            Ok(names.join(","))
        }
        (_, Value::String(s)) => Ok(s.clone()),
        (_, other) => Err(NgsiError::bad_data(format!(
            "{name} must be a string, got {other}"
        ))),
    }
}

fn parse_time(param: &str, text: &str) -> Result<Timestamp> {
    Timestamp::parse(text).map_err(|e| NgsiError::bad_data(format!("{param}: {}", e.detail)))
}

fn parse_timerel(
    timerel: Option<&str>,
    time_at: Option<&str>,
    end_time_at: Option<&str>,
) -> Result<Option<TimeRel>> {
    let Some(rel) = timerel else {
        if let Some(t) = time_at {
            return Err(NgsiError::bad_data(format!(
                "timeAt ('{t}') needs timerel (before, after or between)"
            )));
        }
        if let Some(t) = end_time_at {
            return Err(NgsiError::bad_data(format!(
                "endTimeAt ('{t}') needs timerel=between and timeAt"
            )));
        }
        return Ok(None);
    };
    if !matches!(rel, "before" | "after" | "between") {
        return Err(NgsiError::bad_data(format!(
            "timerel must be one of before, after, between; got '{rel}'"
        )));
    }
    let time_at = time_at.ok_or_else(|| {
        NgsiError::bad_data(format!("timerel={rel} needs timeAt, which is missing"))
    })?;
    let start = parse_time("timeAt", time_at)?;
    Ok(Some(match rel {
        "before" | "after" => {
            // endTimeAt only means something for between; it is ignored
            // otherwise, but a malformed one is still an error.
            if let Some(end) = end_time_at {
                parse_time("endTimeAt", end)?;
            }
            if rel == "before" {
                TimeRel::Before(start)
            } else {
                TimeRel::After(start)
            }
        }
        _ => {
            let end_text = end_time_at.ok_or_else(|| {
                NgsiError::bad_data("timerel=between needs endTimeAt, which is missing")
            })?;
            let end = parse_time("endTimeAt", end_text)?;
            if end <= start {
                return Err(NgsiError::bad_data(format!(
                    "endTimeAt ('{end_text}') must be after timeAt ('{time_at}')"
                )));
            }
            TimeRel::Between(start, end)
        }
    }))
}

fn parse_last_n(text: &str) -> Result<usize> {
    let bad = || NgsiError::bad_data(format!("lastN must be a positive integer, got '{text}'"));
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<usize>() {
        Ok(0) => Err(bad()),
        Ok(n) => Ok(n),
        Err(_) => Err(NgsiError::bad_data(format!("lastN '{text}' is too large"))),
    }
}

fn parse_aggr_methods(text: &str) -> Result<Vec<AggrMethod>> {
    if text.is_empty() {
        return Err(NgsiError::bad_data("aggrMethods is empty"));
    }
    let mut methods = Vec::new();
    for entry in text.split(',') {
        if entry.is_empty() {
            return Err(NgsiError::bad_data(format!(
                "aggrMethods '{text}' has an empty entry"
            )));
        }
        let m: AggrMethod = entry.parse()?;
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    Ok(methods)
}

/// `None` for a zero duration: one period over the whole window.
fn parse_aggr_period(text: &str) -> Result<Option<Duration>> {
    let d = parse_duration(text).map_err(|why| {
        NgsiError::bad_data(format!(
            "aggrPeriodDuration '{text}' is not a valid ISO 8601 duration: {why}"
        ))
    })?;
    Ok((!d.is_zero()).then_some(d))
}

/// The accumulators of one aggregation period of one attribute, from which
/// every method's value follows (see [`aggregate_value`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AggrAccumulator {
    /// Instances in the period, numeric or not.
    pub count: u64,
    /// Numeric values in the period.
    pub num: u64,
    /// Sum of the numeric values.
    pub sum: f64,
    /// Sum of their squares.
    pub sumsq: f64,
    /// Smallest numeric value.
    pub min: Option<f64>,
    /// Largest numeric value.
    pub max: Option<f64>,
}

impl AggrAccumulator {
    /// Adds a numeric value.
    pub fn push_number(&mut self, v: f64) {
        self.count += 1;
        self.num += 1;
        self.sum += v;
        self.sumsq += v * v;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }

    /// Adds a non-numeric value (counted by `totalCount` only).
    pub fn push_other(&mut self) {
        self.count += 1;
    }

    /// Merges another period's accumulators into this one.
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.num += other.num;
        self.sum += other.sum;
        self.sumsq += other.sumsq;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// The value `method` reports; `distinct` is the number of distinct
    /// values, which the caller counts (it needs the values themselves).
    pub fn value(&self, method: AggrMethod, distinct: Option<u64>) -> Option<f64> {
        aggregate_value(
            method, self.count, distinct, self.num, self.sum, self.sumsq, self.min, self.max,
        )
    }
}

/// The value an aggregation method reports for one period, from its
/// accumulators: `count` instances, `distinct` distinct values, and `num`
/// numeric values with their `sum`, sum of squares `sumsq`, `min` and `max`.
/// `None` when the method is not defined there (e.g. `avg` of no numbers).
///
/// `stddev` is the *sample* standard deviation (n − 1 in the denominator,
/// `None` below two values), as PostgreSQL's `stddev` and other NGSI-LD
/// brokers compute it; the spec only says "standard deviation". It is
/// computed from `sumsq`, so for values far from zero with a small spread
/// it loses precision; it is clamped at 0.
#[allow(clippy::too_many_arguments)] // one argument per accumulator, as the history engine keeps them
pub fn aggregate_value(
    method: AggrMethod,
    count: u64,
    distinct: Option<u64>,
    num: u64,
    sum: f64,
    sumsq: f64,
    min: Option<f64>,
    max: Option<f64>,
) -> Option<f64> {
    let n = num as f64;
    match method {
        AggrMethod::TotalCount => Some(count as f64),
        AggrMethod::DistinctCount => distinct.map(|d| d as f64),
        AggrMethod::Sum => (num > 0).then_some(sum),
        AggrMethod::Sumsq => (num > 0).then_some(sumsq),
        AggrMethod::Avg => (num > 0).then(|| sum / n),
        AggrMethod::Min => min.filter(|_| num > 0),
        AggrMethod::Max => max.filter(|_| num > 0),
        AggrMethod::Stddev => {
            (num > 1).then(|| ((sumsq - sum * sum / n) / (n - 1.0)).max(0.0).sqrt())
        }
    }
}
