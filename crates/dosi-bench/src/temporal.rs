//! `temporal`: entity history, written and read.
//!
//! Three modes, one per run:
//!
//! - `--ingest`: sustained history ingest through the normal write path —
//!   batch upserts (`POST /entityOperations/upsert?options=update`) of
//!   `AirQualitySensor` entities whose `--attrs` numeric Properties all carry
//!   an `observedAt`, for `--duration`. Each attribute change becomes one
//!   history instance, so instances/s = entities/s × attrs.
//! - `--seed-days D`: back-fill of history through `POST /temporal/entities`
//!   (create, or append when the entity exists): `--points-per-day`
//!   instances per attribute and day from `--from`, `--points-per-request` a
//!   request. The first request of every entity goes first (and is waited
//!   for), so the others are appends and never race a creation.
//! - `--query agg-one | agg-many | lastn`: a probe request (status 200 and
//!   the shape of the answer are checked), then `--requests` sequential
//!   requests on one connection for latency, then `--connections` for
//!   `--duration` for throughput.
//!
//! Preparing the query benchmarks (the entity numbers overlap; the windows
//! do not):
//!
//! ```text
//! dosi bench temporal --seed-days 30 --entities 1                                # 43,200 points from 2026-01-01
//! dosi bench temporal --seed-days 1 --entities 1000 --from 2026-02-01T00:00:00Z  # 1,000 × 1,440 points
//! dosi bench temporal --query agg-one                                             # 30 days of bench-0, PT1H buckets
//! dosi bench temporal --query agg-many --entities 1000 --from 2026-02-01T00:00:00Z --days 1
//! dosi bench temporal --query lastn
//! dosi bench temporal --ingest --connections 8 --duration 30
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HOST, LOCATION};
use http::{HeaderName, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::data::entity_id;
use crate::notify::parse_rfc3339_us;
use crate::target::{query_string, Target};
use crate::workload::{Req, Workload};
use crate::{BenchArgs, BenchError, Common, Report};

/// Attribute names of the generated sensors, in order; beyond them `m13`, `m14`, ….
const ATTR_NAMES: [&str; 12] = [
    "pm25",
    "pm10",
    "no2",
    "o3",
    "so2",
    "co",
    "temperature",
    "humidity",
    "pressure",
    "windSpeed",
    "noiseLevel",
    "rainfall",
];
/// Distinct pre-formatted attribute values.
const VALUE_POOL: usize = 1024;
/// Distinct entity URIs pre-built for `agg-one` and `lastn`.
const URI_POOL: u64 = 4096;
/// Upper bounds that keep a typo from turning into a huge run.
const MAX_ATTRS: u32 = 64;
const MAX_ENTITIES: u64 = 10_000_000;
const MAX_BATCH: u64 = 10_000;
const MAX_DAYS: u32 = 3660;
const MAX_POINTS_PER_DAY: u32 = 86_400;
const MAX_POINTS_PER_REQUEST: u32 = 100_000;
const MAX_REQUESTS: u64 = 1_000_000;
/// How much of a failed probe answer is shown.
const ERROR_BODY_SHOWN: usize = 300;
const DAY_US: i64 = 86_400_000_000;

static NGSILD_TENANT: HeaderName = HeaderName::from_static("ngsild-tenant");

/// Which temporal query `--query` measures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// `GET /temporal/entities/{id}?format=aggregatedValues…` over `--days` of one entity.
    AggOne,
    /// `GET /temporal/entities?type=T&format=aggregatedValues…&limit=N` over N entities.
    AggMany,
    /// `GET /temporal/entities/{id}?lastN=…&attrs=…`.
    Lastn,
}

impl QueryKind {
    fn name(self) -> &'static str {
        match self {
            QueryKind::AggOne => "agg-one",
            QueryKind::AggMany => "agg-many",
            QueryKind::Lastn => "lastn",
        }
    }
}

/// Options of `dosi bench temporal`; exactly one of `--ingest`, `--seed-days`, `--query`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
#[command(group(
    clap::ArgGroup::new("mode")
        .required(true)
        .args(["ingest", "seed_days", "query"])
))]
pub struct TemporalArgs {
    /// Sustained history ingest: batch upserts (options=update) of observed attributes.
    #[arg(long)]
    pub ingest: bool,
    /// Back-fill D days of history per entity through POST /temporal/entities, then stop.
    #[arg(long, value_name = "D")]
    pub seed_days: Option<u32>,
    /// Measure one temporal query.
    #[arg(long, value_enum)]
    pub query: Option<QueryKind>,
    /// Entities, ids 0..N [default: ingest 10000, seed 1, agg-many 1000, agg-one and lastn 1].
    #[arg(long)]
    pub entities: Option<u64>,
    /// Entities per upsert request with --ingest.
    #[arg(long, default_value_t = 500)]
    pub batch: u64,
    /// Numeric attributes per entity, pm25 first [default: ingest 12, seed 1].
    #[arg(long)]
    pub attrs: Option<u32>,
    /// Instances per attribute and day with --seed-days (1440: one a minute).
    #[arg(long, default_value_t = 1440)]
    pub points_per_day: u32,
    /// Instances per attribute in one request with --seed-days.
    #[arg(long, default_value_t = 1440)]
    pub points_per_request: u32,
    /// Start of the seeded history and of the queried window (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub from: String,
    /// Days of the queried window [default: agg-one 30, agg-many 1].
    #[arg(long)]
    pub days: Option<u32>,
    /// Sequential requests on one connection measured for latency with --query.
    #[arg(long, default_value_t = 100)]
    pub requests: u64,
    /// aggrMethods of the aggregated queries.
    #[arg(long, default_value = "avg,min,max")]
    pub methods: String,
    /// aggrPeriodDuration of the aggregated queries.
    #[arg(long, default_value = "PT1H")]
    pub period: String,
    /// lastN of --query lastn.
    #[arg(long, default_value_t = 10)]
    pub last_n: u32,
    /// The attribute queried (attrs=…).
    #[arg(long, default_value = "pm25")]
    pub attr: String,
    /// Entity type.
    #[arg(long = "type", default_value = "AirQualitySensor")]
    pub entity_type: String,
}

impl TemporalArgs {
    /// The scenario name: `temporal-ingest`, `temporal-seed`, `temporal-agg-one`, ….
    pub fn name(&self) -> &'static str {
        match (self.ingest, self.seed_days, self.query) {
            (true, _, _) => "temporal-ingest",
            (_, Some(_), _) => "temporal-seed",
            (_, _, Some(QueryKind::AggOne)) => "temporal-agg-one",
            (_, _, Some(QueryKind::AggMany)) => "temporal-agg-many",
            (_, _, Some(QueryKind::Lastn)) => "temporal-lastn",
            _ => "temporal",
        }
    }

    /// Checks the options and fills in the mode's defaults.
    pub fn resolve(&self) -> Result<Mode, BenchError> {
        crate::workload::check_type(&self.entity_type)?;
        let chosen = [self.ingest, self.seed_days.is_some(), self.query.is_some()];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return invalid(
                "temporal",
                "give exactly one of --ingest, --seed-days, --query".into(),
            );
        }
        let from_us = parse_rfc3339_us(&self.from).ok_or_else(|| BenchError::InvalidArg {
            name: "--from",
            reason: format!("{:?} is not an RFC 3339 date-time", self.from),
        })?;
        if self.ingest {
            let entities = in_range("--entities", self.entities.unwrap_or(10_000), MAX_ENTITIES)?;
            return Ok(Mode::Ingest(Ingest {
                entities,
                batch: in_range("--batch", self.batch, MAX_BATCH)?.min(entities),
                attrs: in_range("--attrs", self.attrs.unwrap_or(12), MAX_ATTRS)?,
            }));
        }
        if let Some(days) = self.seed_days {
            return Ok(Mode::Seed(Seed {
                entities: in_range("--entities", self.entities.unwrap_or(1), MAX_ENTITIES)?,
                days: in_range("--seed-days", days, MAX_DAYS)?,
                points_per_day: in_range(
                    "--points-per-day",
                    self.points_per_day,
                    MAX_POINTS_PER_DAY,
                )?,
                points_per_request: in_range(
                    "--points-per-request",
                    self.points_per_request,
                    MAX_POINTS_PER_REQUEST,
                )?,
                attrs: in_range("--attrs", self.attrs.unwrap_or(1), MAX_ATTRS)?,
                from_us,
            }));
        }
        let kind = self.query.expect("one mode is chosen");
        let default_entities = if kind == QueryKind::AggMany { 1000 } else { 1 };
        let default_days = if kind == QueryKind::AggMany { 1 } else { 30 };
        if !self
            .attr
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || self.attr.is_empty()
        {
            return invalid(
                "--attr",
                format!("{:?} is not an attribute name", self.attr),
            );
        }
        Ok(Mode::Query(Query {
            kind,
            entities: in_range(
                "--entities",
                self.entities.unwrap_or(default_entities),
                MAX_ENTITIES,
            )?,
            from_us,
            days: in_range("--days", self.days.unwrap_or(default_days), MAX_DAYS)?,
            requests: in_range("--requests", self.requests, MAX_REQUESTS)?,
            methods: self.methods.clone(),
            period: self.period.clone(),
            last_n: in_range("--last-n", self.last_n, u32::MAX)?,
            attr: self.attr.clone(),
        }))
    }
}

fn invalid<T>(name: &'static str, reason: String) -> Result<T, BenchError> {
    Err(BenchError::InvalidArg { name, reason })
}

fn in_range<T>(name: &'static str, value: T, max: T) -> Result<T, BenchError>
where
    T: PartialOrd + From<u8> + fmt::Display + Copy,
{
    if value >= T::from(1) && value <= max {
        Ok(value)
    } else {
        invalid(name, format!("{value} is not in 1..={max}"))
    }
}

/// The checked settings of one run.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// `--ingest`
    Ingest(Ingest),
    /// `--seed-days`
    Seed(Seed),
    /// `--query`
    Query(Query),
}

/// Settings of `--ingest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingest {
    /// Ids are drawn from 0..entities.
    pub entities: u64,
    /// Entities per request.
    pub batch: u64,
    /// Observed attributes per entity.
    pub attrs: u32,
}

/// Settings of `--seed-days`.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    /// Entities 0..entities.
    pub entities: u64,
    /// Days of history each.
    pub days: u32,
    /// Instances per attribute and day.
    pub points_per_day: u32,
    /// Instances per attribute in one request.
    pub points_per_request: u32,
    /// Attributes per entity.
    pub attrs: u32,
    /// Time of the first instance, µs since the epoch.
    pub from_us: i64,
}

/// Settings of `--query`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which query.
    pub kind: QueryKind,
    /// Entities 0..entities (agg-many: the expected result size and `limit`).
    pub entities: u64,
    /// Start of the window, µs since the epoch.
    pub from_us: i64,
    /// Length of the window in days.
    pub days: u32,
    /// Sequential requests for latency.
    pub requests: u64,
    /// `aggrMethods`
    pub methods: String,
    /// `aggrPeriodDuration`
    pub period: String,
    /// `lastN`
    pub last_n: u32,
    /// `attrs`
    pub attr: String,
}

/// The attribute names of an entity with `attrs` attributes.
pub fn attr_names(attrs: u32) -> Vec<String> {
    (0..attrs as usize)
        .map(|i| match ATTR_NAMES.get(i) {
            Some(name) => (*name).to_owned(),
            None => format!("m{}", i + 1),
        })
        .collect()
}

/// Pre-formatted values (one decimal), plausible for air-quality readings.
fn value_pool(rng: &mut SmallRng) -> Vec<String> {
    (0..VALUE_POOL)
        .map(|_| format!("{:.1}", rng.random_range(0.0..200.0)))
        .collect()
}

// ---------------------------------------------------------------------------
// Timestamps.

/// `us` (µs since the epoch) as RFC 3339 UTC with microseconds, e.g.
/// `2026-01-01T00:01:00.000000Z`; the inverse of `notify::parse_rfc3339_us`.
pub fn format_rfc3339_us(us: i64) -> String {
    let days = us.div_euclid(DAY_US);
    let in_day = us.rem_euclid(DAY_US);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        in_day % 1_000_000
    )
}

/// The proleptic Gregorian date of a day number since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Seconds of a fixed ISO 8601 duration (`PnW`, `PnDTnHnMnS` without years or
/// months or fractions), for the expected number of buckets; `None` otherwise.
pub fn fixed_duration_s(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, t),
        Some(_) => return None,
        None => (rest, ""),
    };
    let mut total = 0u64;
    let mut any = false;
    for (part, units) in [
        (date, &[('W', 604_800u64), ('D', 86_400)][..]),
        (time, &[('H', 3600), ('M', 60), ('S', 1)][..]),
    ] {
        let mut rest = part;
        let mut next = 0;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            let n: u64 = rest[..end].parse().ok()?;
            let unit = rest[end..].chars().next()?;
            let pos = units[next..].iter().position(|(u, _)| *u == unit)? + next;
            total = total.checked_add(n.checked_mul(units[pos].1)?)?;
            any = true;
            next = pos + 1;
            rest = &rest[end + 1..];
        }
    }
    any.then_some(total)
}

// ---------------------------------------------------------------------------
// Request generators.

/// The workloads of this scenario.
#[derive(Debug)]
pub enum Work {
    /// `--ingest`: endless batch upserts.
    Ingest(IngestWriter),
    /// `--seed-days`: temporal creates/appends with request numbers in a range.
    Seed(SeedWriter),
    /// `--query`, latency stage: `remaining` GETs of the pool, then done.
    Sequential {
        /// The request URIs.
        uris: Vec<Uri>,
        /// Requests still to send.
        remaining: AtomicU64,
    },
}

impl Work {
    /// The next request, or `None` once a finite stage is done.
    pub fn next(&self, rng: &mut SmallRng) -> Option<Req> {
        match self {
            Work::Ingest(w) => Some(w.next(rng, wall_us())),
            Work::Seed(w) => w.next(),
            Work::Sequential { uris, remaining } => {
                remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .ok()?;
                Some(get(uris[rng.random_range(0..uris.len())].clone()))
            }
        }
    }

    /// True when a 207 answer means partial failure.
    pub fn is_batch(&self) -> bool {
        matches!(self, Work::Ingest(_))
    }

    /// True when the stage ends once its requests are sent.
    pub fn is_finite(&self) -> bool {
        !matches!(self, Work::Ingest(_))
    }
}

/// Batch upserts of observed attributes, built by splicing pre-formatted pieces.
#[derive(Debug)]
pub struct IngestWriter {
    uri: Uri,
    /// `{"id":"urn:ngsi-ld:<T>:bench-`
    id_prefix: String,
    /// `","type":"<T>"`
    after_id: String,
    /// `,"<name>":{"type":"Property","value":` per attribute.
    attr_heads: Vec<String>,
    values: Vec<String>,
    entities: u64,
    batch: u64,
}

impl IngestWriter {
    fn new(
        s: &Ingest,
        entity_type: &str,
        target: &Target,
        rng: &mut SmallRng,
    ) -> Result<Self, BenchError> {
        let path = format!(
            "{}{}",
            target.path("/ngsi-ld/v1/entityOperations/upsert"),
            query_string(&[("options", "update")])
        );
        let (id_prefix, after_id) = id_pieces(entity_type);
        Ok(IngestWriter {
            uri: uri(path)?,
            id_prefix,
            after_id,
            attr_heads: attr_names(s.attrs)
                .iter()
                .map(|name| format!(",\"{name}\":{{\"type\":\"Property\",\"value\":"))
                .collect(),
            values: value_pool(rng),
            entities: s.entities,
            batch: s.batch,
        })
    }

    /// A batch of `batch` distinct entities spread over the id space, every
    /// attribute observed at `now_us`.
    pub fn next(&self, rng: &mut SmallRng, now_us: i64) -> Req {
        let observed = format_rfc3339_us(now_us);
        let start = rng.random_range(0..self.entities);
        let stride = (self.entities / self.batch).max(1);
        let shift = rng.random_range(0..self.values.len());
        let per_entity = self.id_prefix.len() + 40 + self.attr_heads.len() * 80;
        let mut out = Vec::with_capacity(per_entity * self.batch as usize + 2);
        out.push(b'[');
        for k in 0..self.batch {
            let n = (start + k * stride) % self.entities;
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.id_prefix.as_bytes());
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(self.after_id.as_bytes());
            for (i, head) in self.attr_heads.iter().enumerate() {
                let v = &self.values[(n as usize * 31 + i * 7 + shift) % self.values.len()];
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b",\"observedAt\":\"");
                out.extend_from_slice(observed.as_bytes());
                out.extend_from_slice(b"\"}");
            }
            out.push(b'}');
        }
        out.push(b']');
        Req {
            method: Method::POST,
            uri: self.uri.clone(),
            body: Bytes::from(out),
            items: self.batch,
            tag: 0,
        }
    }
}

/// `{"id":"urn:ngsi-ld:<T>:bench-` and `","type":"<T>"` (the number goes between).
fn id_pieces(entity_type: &str) -> (String, String) {
    let id_json = Value::String(entity_id(entity_type, 0)).to_string();
    let id_prefix = format!(
        "{{\"id\":{}",
        id_json
            .strip_suffix("0\"")
            .expect("the serialized id ends with the number 0 and a quote")
    );
    let after_id = format!("\",\"type\":{}", Value::String(entity_type.to_owned()));
    (id_prefix, after_id)
}

/// Temporal creates/appends: request `r` carries chunk `r / entities` of
/// entity `r % entities`, so the first `entities` requests create them.
#[derive(Debug)]
pub struct SeedWriter {
    uri: Uri,
    id_prefix: String,
    after_id: String,
    attr_names: Vec<String>,
    values: Vec<String>,
    settings: Seed,
    next: AtomicU64,
    end: u64,
}

impl SeedWriter {
    fn new(
        s: &Seed,
        entity_type: &str,
        target: &Target,
        rng: &mut SmallRng,
        requests: std::ops::Range<u64>,
    ) -> Result<Self, BenchError> {
        let (id_prefix, after_id) = id_pieces(entity_type);
        Ok(SeedWriter {
            uri: uri(target.path("/ngsi-ld/v1/temporal/entities"))?,
            id_prefix,
            after_id,
            attr_names: attr_names(s.attrs),
            values: value_pool(rng),
            settings: s.clone(),
            next: AtomicU64::new(requests.start),
            end: requests.end,
        })
    }

    /// The next request of the range, or `None` when it is done.
    pub fn next(&self) -> Option<Req> {
        let r = self.next.fetch_add(1, Ordering::Relaxed);
        if r >= self.end {
            return None;
        }
        let s = &self.settings;
        let (entity, chunk) = (r % s.entities, r / s.entities);
        let total = s.total_points();
        let first = chunk * u64::from(s.points_per_request);
        let last = (first + u64::from(s.points_per_request)).min(total);
        let mut out =
            Vec::with_capacity(self.attr_names.len() * (last - first) as usize * 80 + 128);
        out.extend_from_slice(self.id_prefix.as_bytes());
        out.extend_from_slice(entity.to_string().as_bytes());
        out.extend_from_slice(self.after_id.as_bytes());
        let times: Vec<String> = (first..last)
            .map(|j| format_rfc3339_us(s.time_of(j)))
            .collect();
        for (i, name) in self.attr_names.iter().enumerate() {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":[");
            for (k, j) in (first..last).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                let v = &self.values[mix(entity, j, i as u64) as usize % self.values.len()];
                out.extend_from_slice(b"{\"type\":\"Property\",\"value\":");
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b",\"observedAt\":\"");
                out.extend_from_slice(times[k].as_bytes());
                out.extend_from_slice(b"\"}");
            }
            out.push(b']');
        }
        out.push(b'}');
        Some(Req {
            method: Method::POST,
            uri: self.uri.clone(),
            body: Bytes::from(out),
            items: (last - first) * self.attr_names.len() as u64,
            tag: r,
        })
    }
}

impl Seed {
    /// Instances per attribute of one entity.
    pub fn total_points(&self) -> u64 {
        u64::from(self.days) * u64::from(self.points_per_day)
    }

    /// Requests per entity.
    pub fn chunks(&self) -> u64 {
        self.total_points()
            .div_ceil(u64::from(self.points_per_request))
    }

    /// Requests in all.
    pub fn requests(&self) -> u64 {
        self.chunks() * self.entities
    }

    /// Instances written in all.
    pub fn instances(&self) -> u64 {
        self.total_points() * self.entities * u64::from(self.attrs)
    }

    /// When instance `j` (0-based, per attribute) was observed, µs since the epoch.
    pub fn time_of(&self, j: u64) -> i64 {
        let ppd = u64::from(self.points_per_day);
        let (day, k) = (j / ppd, j % ppd);
        let in_day = i128::from(k) * i128::from(DAY_US) / i128::from(ppd);
        self.from_us + day as i64 * DAY_US + in_day as i64
    }
}

/// A cheap, well-mixed hash of an instance's coordinates (splitmix64).
fn mix(entity: u64, j: u64, attr: u64) -> u64 {
    let mut z = entity
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(j.wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add(attr);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Query {
    /// Exclusive end of the window, µs since the epoch.
    fn end_us(&self) -> i64 {
        self.from_us + i64::from(self.days) * DAY_US
    }

    /// The request path of the query for entity `n` (`agg-many` ignores `n`).
    pub fn path(&self, target: &Target, entity_type: &str, n: u64) -> String {
        let (from, to) = (
            format_rfc3339_us(self.from_us),
            format_rfc3339_us(self.end_us()),
        );
        let aggregated = [
            ("format", "aggregatedValues"),
            ("aggrMethods", self.methods.as_str()),
            ("aggrPeriodDuration", self.period.as_str()),
            ("timerel", "between"),
            ("timeAt", from.as_str()),
            ("endTimeAt", to.as_str()),
            ("attrs", self.attr.as_str()),
        ];
        let one = |n| {
            target.path(&format!(
                "/ngsi-ld/v1/temporal/entities/{}",
                entity_id(entity_type, n)
            ))
        };
        match self.kind {
            QueryKind::AggOne => format!("{}{}", one(n), query_string(&aggregated)),
            QueryKind::AggMany => {
                let limit = self.entities.to_string();
                let mut pairs = vec![("type", entity_type)];
                pairs.extend_from_slice(&aggregated);
                pairs.push(("limit", &limit));
                format!(
                    "{}{}",
                    target.path("/ngsi-ld/v1/temporal/entities"),
                    query_string(&pairs)
                )
            }
            QueryKind::Lastn => {
                let last_n = self.last_n.to_string();
                format!(
                    "{}{}",
                    one(n),
                    query_string(&[("lastN", &last_n), ("attrs", &self.attr)])
                )
            }
        }
    }

    /// The pool of request URIs: one per entity (at most [`URI_POOL`]), one for `agg-many`.
    pub fn uris(&self, target: &Target, entity_type: &str) -> Result<Vec<Uri>, BenchError> {
        let distinct = match self.kind {
            QueryKind::AggMany => 1,
            _ => self.entities.min(URI_POOL),
        };
        (0..distinct)
            .map(|n| uri(self.path(target, entity_type, n)))
            .collect()
    }

    /// What a full answer holds: entities, and values (buckets of the first
    /// method per entity, or instances for `lastn`); `None` when unknown.
    pub fn expected(&self) -> (u64, Option<u64>) {
        match self.kind {
            QueryKind::Lastn => (1, Some(u64::from(self.last_n))),
            kind => {
                let window_s = u64::from(self.days) * 86_400;
                let buckets = fixed_duration_s(&self.period).map(|p| {
                    if p == 0 {
                        1
                    } else {
                        window_s.div_ceil(p)
                    }
                });
                let entities = if kind == QueryKind::AggMany {
                    self.entities
                } else {
                    1
                };
                (entities, buckets.map(|b| b * entities))
            }
        }
    }
}

/// Counts the entities and values of a query answer (see [`Query::expected`]).
pub fn count_answer(kind: QueryKind, attr: &str, methods: &str, body: &Value) -> (u64, u64) {
    let entities: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![body],
        _ => Vec::new(),
    };
    let first_method = methods.split(',').next().unwrap_or_default();
    let values = entities
        .iter()
        .map(|e| {
            let a = &e[attr];
            // An attribute with one instance may be an object rather than an array.
            let as_len = |v: &Value| match v {
                Value::Array(items) => items.len() as u64,
                Value::Object(_) => 1,
                _ => 0,
            };
            match kind {
                QueryKind::Lastn => as_len(a),
                _ => match a {
                    Value::Array(datasets) => {
                        datasets.iter().map(|d| as_len(&d[first_method])).sum()
                    }
                    _ => as_len(&a[first_method]),
                },
            }
        })
        .sum();
    (entities.len() as u64, values)
}

/// The scenario's main workload: the ingest, the seeding after the first
/// request of each entity, or the concurrent query run.
pub(crate) fn workload(
    args: &TemporalArgs,
    target: &Target,
    seed: u64,
) -> Result<Workload, BenchError> {
    let mut rng = SmallRng::seed_from_u64(seed);
    Ok(match args.resolve()? {
        Mode::Ingest(s) => Workload::Temporal(Work::Ingest(IngestWriter::new(
            &s,
            &args.entity_type,
            target,
            &mut rng,
        )?)),
        Mode::Seed(s) => {
            let requests = s.entities..s.requests();
            Workload::Temporal(Work::Seed(SeedWriter::new(
                &s,
                &args.entity_type,
                target,
                &mut rng,
                requests,
            )?))
        }
        Mode::Query(q) => Workload::Uris(q.uris(target, &args.entity_type)?),
    })
}

fn get(uri: Uri) -> Req {
    Req {
        method: Method::GET,
        uri,
        body: Bytes::new(),
        items: 1,
        tag: 0,
    }
}

fn uri(path: String) -> Result<Uri, BenchError> {
    Uri::try_from(path.as_str()).map_err(|e| BenchError::InvalidArg {
        name: "path",
        reason: format!("{path:?} is not a valid request path: {e}"),
    })
}

// ---------------------------------------------------------------------------
// The run.

/// Runs the mode of `opts`; `workload` is its main stage (see [`workload`]).
pub(crate) async fn measure(
    args: &BenchArgs,
    opts: &TemporalArgs,
    common: &Common,
    workload: Workload,
) -> Result<Report, BenchError> {
    match opts.resolve()? {
        Mode::Ingest(s) => {
            let (mut report, _) = crate::drive(args, common, workload).await?;
            let attrs = u64::from(s.attrs);
            report.temporal = Some(TemporalReport::Ingest {
                entities: s.entities,
                batch: s.batch,
                attrs: s.attrs,
                instances: report.items * attrs,
                instances_per_s: report.items_per_s.unwrap_or(0.0) * attrs as f64,
            });
            Ok(report)
        }
        Mode::Seed(s) => {
            // Creations first, all acknowledged before any append.
            let mut rng = SmallRng::seed_from_u64(args.seed);
            let creates = SeedWriter::new(
                &s,
                &opts.entity_type,
                &common.target,
                &mut rng,
                0..s.entities,
            )?;
            let first = crate::run_workload(
                common,
                Workload::Temporal(Work::Seed(creates)),
                args.connections,
                args.threads,
                args.seed,
            )
            .await?;
            if first.stats.items == 0 {
                return Err(BenchError::Setup(format!(
                    "none of the {} temporal entities could be created (answers above); \
                     does the server have POST /ngsi-ld/v1/temporal/entities?",
                    s.entities
                )));
            }
            let mut rest =
                crate::run_workload(common, workload, args.connections, args.threads, args.seed)
                    .await?;
            rest.stats.merge(&first.stats);
            rest.window += first.window;
            let mut report = crate::Report::from_run(args.scenario.name(), args.connections, &rest);
            report.temporal = Some(TemporalReport::Seed {
                entities: s.entities,
                days: s.days,
                points_per_day: s.points_per_day,
                attrs: s.attrs,
                requests: s.requests(),
                instances: report.items,
                instances_expected: s.instances(),
                instances_per_s: report.items as f64 / report.duration_s,
                from: format_rfc3339_us(s.from_us),
                to: format_rfc3339_us(s.from_us + i64::from(s.days) * DAY_US),
            });
            Ok(report)
        }
        Mode::Query(q) => {
            let probe_path = q.path(&common.target, &opts.entity_type, 0);
            let check = probe(common, &q, &probe_path).await?;
            if check.entities != check.expected_entities
                || check.expected_values.is_some_and(|v| v != check.values)
            {
                eprintln!("dosi bench: the probe's answer is not what the seeded data should give: {check}");
            }
            let sequential = Work::Sequential {
                uris: q.uris(&common.target, &opts.entity_type)?,
                remaining: AtomicU64::new(q.requests),
            };
            let seq = crate::run_workload(common, Workload::Temporal(sequential), 1, 1, args.seed)
                .await?;
            let [p50_us, p90_us, p99_us, _, max_us] = crate::percentiles(&seq.stats.latency_us);
            let (mut report, _) = crate::drive(args, common, workload).await?;
            report.temporal = Some(TemporalReport::Query {
                query: q.kind.name().to_owned(),
                probe: probe_path,
                check,
                sequential: Sequential {
                    requests: seq.stats.requests,
                    errors: seq.stats.errors,
                    p50_us,
                    p90_us,
                    p99_us,
                    max_us,
                },
            });
            Ok(report)
        }
    }
}

/// One GET of `path`: must answer 200 with JSON; its entities and values are counted.
async fn probe(common: &Common, q: &Query, path: &str) -> Result<Check, BenchError> {
    let setup = |what: String| BenchError::Setup(format!("probe GET {path}: {what}"));
    let stream =
        TcpStream::connect(common.addr)
            .await
            .map_err(|source| BenchError::Unreachable {
                target: common.addr.to_string(),
                source,
            })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| setup(format!("HTTP handshake: {e}")))?;
    let conn = tokio::spawn(conn);
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = uri(path.to_owned())?;
    request.headers_mut().insert(HOST, common.host.clone());
    if let Some(tenant) = &common.tenant {
        request
            .headers_mut()
            .insert(NGSILD_TENANT.clone(), tenant.clone());
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| setup(e.to_string()))?;
    let status = response.status();
    let redirected = response.headers().contains_key(LOCATION);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| setup(e.to_string()))?
        .to_bytes();
    conn.abort();
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(&body);
        let shown: String = text.chars().take(ERROR_BODY_SHOWN).collect();
        let hint = match status.as_u16() {
            404 if shown.contains("ResourceNotFound") => {
                " (was the history seeded? see --seed-days)"
            }
            404 | 405 => " (does the server have the temporal API?)",
            _ if redirected => " (redirected)",
            _ => "",
        };
        return Err(setup(format!("answered {status}{hint}: {shown}")));
    }
    let json: Value =
        serde_json::from_slice(&body).map_err(|e| setup(format!("the answer is not JSON: {e}")))?;
    let (entities, values) = count_answer(q.kind, &q.attr, &q.methods, &json);
    let (expected_entities, expected_values) = q.expected();
    Ok(Check {
        bytes: body.len() as u64,
        entities,
        expected_entities,
        values,
        expected_values,
    })
}

// ---------------------------------------------------------------------------
// The report.

/// What `temporal` adds to the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum TemporalReport {
    /// `--ingest`
    Ingest {
        /// Ids drawn from 0..entities.
        entities: u64,
        /// Entities per request.
        batch: u64,
        /// Observed attributes per entity.
        attrs: u32,
        /// History instances written in the window (entities × attrs).
        instances: u64,
        /// Instances per second.
        instances_per_s: f64,
    },
    /// `--seed-days`
    Seed {
        /// Entities seeded.
        entities: u64,
        /// Days of history each.
        days: u32,
        /// Instances per attribute and day.
        points_per_day: u32,
        /// Attributes per entity.
        attrs: u32,
        /// Requests planned.
        requests: u64,
        /// Instances acknowledged.
        instances: u64,
        /// Instances planned.
        instances_expected: u64,
        /// Instances acknowledged per second.
        instances_per_s: f64,
        /// First instant seeded.
        from: String,
        /// End of the seeded range (exclusive).
        to: String,
    },
    /// `--query`
    Query {
        /// `agg-one`, `agg-many` or `lastn`.
        query: String,
        /// The path of the probe request.
        probe: String,
        /// What the probe's answer held.
        check: Check,
        /// Latency of the sequential requests.
        sequential: Sequential,
    },
}

/// The shape of the probe's answer against what the seeded data should give.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Size of the answer body.
    pub bytes: u64,
    /// Entities in the answer.
    pub entities: u64,
    /// Entities expected.
    pub expected_entities: u64,
    /// Buckets of the first method (aggregated) or instances (`lastn`), over all entities.
    pub values: u64,
    /// Values expected, when the period is a fixed duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_values: Option<u64>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entities (expected {}), {} values (expected {}), {} bytes",
            self.entities,
            self.expected_entities,
            self.values,
            self.expected_values
                .map_or_else(|| "?".to_owned(), |v| v.to_string()),
            self.bytes
        )
    }
}

/// Latency of the sequential stage of a query run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sequential {
    /// Answered requests.
    pub requests: u64,
    /// Failed ones.
    pub errors: u64,
    /// Median latency in microseconds.
    pub p50_us: u64,
    /// 90th percentile in microseconds.
    pub p90_us: u64,
    /// 99th percentile in microseconds.
    pub p99_us: u64,
    /// Highest in microseconds.
    pub max_us: u64,
}

impl fmt::Display for TemporalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemporalReport::Ingest {
                entities,
                batch,
                attrs,
                instances,
                instances_per_s,
            } => writeln!(
                f,
                "history      {instances} instances ({instances_per_s:.1}/s) = entities × {attrs} observed attributes; batches of {batch} over {entities} ids"
            ),
            TemporalReport::Seed {
                entities,
                days,
                points_per_day,
                attrs,
                requests,
                instances,
                instances_expected,
                instances_per_s,
                from,
                to,
            } => {
                writeln!(
                    f,
                    "seeded       {instances} of {instances_expected} instances ({instances_per_s:.1}/s) in {requests} requests"
                )?;
                writeln!(
                    f,
                    "history      {entities} entities × {attrs} attributes × {days} days × {points_per_day}/day, [{from}, {to})"
                )
            }
            TemporalReport::Query {
                query,
                probe,
                check,
                sequential: s,
            } => {
                writeln!(f, "query        {query}: {probe}")?;
                writeln!(f, "answer       {check}")?;
                writeln!(
                    f,
                    "sequential   {} requests, {} errors: p50 {}   p90 {}   p99 {}   max {}   (1 connection)",
                    s.requests,
                    s.errors,
                    crate::ms(s.p50_us),
                    crate::ms(s.p90_us),
                    crate::ms(s.p99_us),
                    crate::ms(s.max_us)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
