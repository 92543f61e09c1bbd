//! dosi-tsdb: the embedded time-series engine behind the history.
//!
//! It knows nothing of NGSI-LD. It stores *series* (named by opaque byte keys,
//! addressed by a [`SeriesId`]) of [`Point`]s: a recorded time, an optional
//! observed time, a template number and a [`Value`] (a number, an opaque
//! document, or a deletion marker). Each point gets an *instance number*,
//! unique and increasing within its series. Beside the series there is a small
//! durable key/value space (`meta`) for the layer above.
//!
//! Mutations are applied in memory and logged at once; [`Tsdb::sync`] returns
//! when everything logged before the call is on disk (group commit). The
//! history layer calls it before a write is acknowledged.
//!
//! Reads: [`Tsdb::scan`] (a time range on the recorded or observed time, in
//! either order, with a limit) and [`Tsdb::aggregate`] (count, distinct count,
//! sum, sum of squares, min, max per period). Retention: [`Tsdb::drop_before`]
//! removes raw points older than a time, optionally keeping rollups that
//! [`Tsdb::aggregate`] still answers from.

#![warn(missing_docs)]

mod agg;
mod chunk;
mod codec;
mod engine;
#[cfg(any(test, feature = "reference"))]
pub mod reference;
mod wal;

pub use engine::Tsdb;

use std::path::PathBuf;
use std::sync::Arc;

/// A series handle, stable for the life of the database (survives restarts).
pub type SeriesId = u64;

/// The value of one point.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number (the fast, compressed path).
    Num(f64),
    /// An opaque document (the layer above encodes it).
    Doc(Arc<[u8]>),
    /// A deletion marker (the attribute was deleted at `recorded`).
    Deleted,
}

/// A point as stored, with its instance number.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Unique and increasing within the series; assigned by [`Tsdb::append`].
    pub instance: u64,
    /// When the point was recorded (µs since the epoch).
    pub recorded: i64,
    /// When it was observed, if known (µs since the epoch).
    pub observed: Option<i64>,
    /// A number the layer above uses to name the shape of the point (e.g.
    /// unit and sub-attributes of a numeric instance). Runs of equal
    /// templates cost nothing.
    pub tpl: u32,
    /// The value.
    pub value: Value,
}

/// A point to append (its instance number is assigned on append).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPoint {
    /// See [`Point::recorded`].
    pub recorded: i64,
    /// See [`Point::observed`].
    pub observed: Option<i64>,
    /// See [`Point::tpl`].
    pub tpl: u32,
    /// See [`Point::value`].
    pub value: Value,
}

/// Which time a range applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    /// [`Point::recorded`].
    Recorded,
    /// [`Point::observed`]; points without it are outside every range.
    Observed,
}

/// A half-open time range `[from, to)` on one of the times (None = unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Which time.
    pub field: TimeField,
    /// Inclusive lower bound.
    pub from: Option<i64>,
    /// Exclusive upper bound.
    pub to: Option<i64>,
}

impl Range {
    /// Everything, on the recorded time.
    pub const ALL: Range = Range {
        field: TimeField::Recorded,
        from: None,
        to: None,
    };
    /// True if time `t` is in the range.
    pub fn contains(&self, t: i64) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|u| t < u)
    }
    /// The time of `p` this range looks at, if it has one.
    pub fn time_of(&self, p: &Point) -> Option<i64> {
        match self.field {
            TimeField::Recorded => Some(p.recorded),
            TimeField::Observed => p.observed,
        }
    }
}

/// Scan order, by the range's time (ties by instance number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// Aggregates of the points of one period.
///
/// `count` counts every point that is not a deletion marker; `distinct` the
/// distinct values among them (numbers by bit pattern, documents by bytes);
/// `num`, `sum`, `sumsq`, `min` and `max` cover the numeric points only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bucket {
    /// Start of the period (µs).
    pub start: i64,
    /// Points (deletion markers excluded).
    pub count: u64,
    /// Distinct values; `None` when only rollups cover the period (the
    /// distinct count cannot be recovered from them).
    pub distinct: Option<u64>,
    /// Numeric points.
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

/// Sizes, for metrics and benchmarks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Series.
    pub series: u64,
    /// Raw points held.
    pub points: u64,
    /// Bytes of sealed, compressed data on disk.
    pub sealed_bytes: u64,
    /// Points in sealed data.
    pub sealed_points: u64,
    /// Bytes of the write-ahead log.
    pub wal_bytes: u64,
}

/// Settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the database (`<data-dir>/history`).
    pub dir: PathBuf,
    /// fsync on [`Tsdb::sync`] (tests may turn it off).
    pub fsync: bool,
    /// Width of a time partition (µs); sealed data is grouped by it.
    pub partition: i64,
}

impl Config {
    /// Defaults (one-day partitions, fsync on) in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: true,
            partition: 86_400_000_000,
        }
    }
}

/// When the background task of [`Tsdb::spawn_maintenance_with`] seals the
/// heads (a checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    /// Checkpoint when the write-ahead log holds this many bytes (and at
    /// least half as many as the catalog, which every checkpoint rewrites) …
    pub wal_bytes: u64,
    /// … or when the last checkpoint is this old (and the log not empty).
    pub interval: std::time::Duration,
    /// How often the task looks.
    pub check_every: std::time::Duration,
}

impl Default for Maintenance {
    fn default() -> Self {
        Self {
            wal_bytes: 64 << 20,
            interval: std::time::Duration::from_secs(300),
            check_every: std::time::Duration::from_secs(1),
        }
    }
}

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Disk trouble.
    #[error("history storage: {0}")]
    Io(#[from] std::io::Error),
    /// Data on disk that does not decode.
    #[error("history storage is corrupt: {0}")]
    Corrupt(String),
}

/// Result of the engine.
pub type Result<T> = std::result::Result<T, Error>;

/// Start of the `g`-wide period (aligned to the epoch) holding `t`.
pub(crate) fn floor_to(t: i64, g: i64) -> i64 {
    let b = i128::from(t).div_euclid(i128::from(g)) * i128::from(g);
    b.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Start of the aggregation period holding `t` (`t` ≥ `origin`).
pub(crate) fn period_start(t: i64, origin: i64, period: i64) -> i64 {
    if period <= 0 {
        return origin;
    }
    let d = (i128::from(t) - i128::from(origin)) / i128::from(period) * i128::from(period);
    (i128::from(origin) + d).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Whether the rollup bucket `[b, b + g)` answers part of an aggregate:
/// the range is on the recorded time, the period is a multiple of `g` (or
/// 0), `origin` is aligned to `g`, and the bucket lies wholly inside the
/// range and after `origin`.
pub(crate) fn rollup_applies(range: &Range, origin: i64, period: i64, g: i64, b: i64) -> bool {
    range.field == TimeField::Recorded
        && g > 0
        && (period <= 0 || period % g == 0)
        && origin.rem_euclid(g) == 0
        && b >= origin
        && range.from.is_none_or(|f| b >= f)
        && range
            .to
            .is_none_or(|u| i128::from(b) + i128::from(g) <= i128::from(u))
}
