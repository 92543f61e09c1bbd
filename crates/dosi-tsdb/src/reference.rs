//! A naive in-memory engine with the public API (no persistence). It is
//! the reference model the real engine is tested against, and the
//! executable statement of the semantics (including rollups: see
//! `rollup_applies` in the crate root).

use std::collections::{BTreeMap, HashMap, HashSet};

use parking_lot::RwLock;

use crate::{Bucket, Config, NewPoint, Order, Point, Range, Result, SeriesId, Stats, Value};

#[derive(Default)]
struct Series {
    key: Vec<u8>,
    next: u64,
    points: Vec<Point>,
    /// (width, start) → (count, num, sum, sumsq, min, max) of dropped points.
    rollups: BTreeMap<(i64, i64), Bucket>,
}

#[derive(Default)]
struct Inner {
    by_key: BTreeMap<Vec<u8>, SeriesId>,
    series: HashMap<SeriesId, Series>,
    next_id: SeriesId,
    meta: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The time-series database.
pub struct Tsdb {
    inner: RwLock<Inner>,
}

impl Tsdb {
    /// Opens (or creates) the database described by `cfg`, recovering what
    /// was synced before.
    pub fn open(cfg: Config) -> Result<Self> {
        let _ = cfg;
        Ok(Self {
            inner: RwLock::new(Inner {
                next_id: 1,
                ..Inner::default()
            }),
        })
    }

    /// The series named `key`, if it exists.
    pub fn series_id(&self, key: &[u8]) -> Option<SeriesId> {
        self.inner.read().by_key.get(key).copied()
    }

    /// The series named `key`, created if needed.
    pub fn ensure_series(&self, key: &[u8]) -> SeriesId {
        if let Some(id) = self.series_id(key) {
            return id;
        }
        let mut g = self.inner.write();
        if let Some(id) = g.by_key.get(key) {
            return *id;
        }
        let id = g.next_id;
        g.next_id += 1;
        g.by_key.insert(key.to_vec(), id);
        g.series.insert(
            id,
            Series {
                key: key.to_vec(),
                next: 1,
                points: Vec::new(),
                rollups: BTreeMap::new(),
            },
        );
        id
    }

    /// Every series whose key starts with `prefix`, in key order.
    pub fn series_by_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, SeriesId)> {
        let g = self.inner.read();
        g.by_key
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Appends a point to series `s`; returns its instance number.
    /// Durable after the next [`Tsdb::sync`].
    pub fn append(&self, s: SeriesId, p: NewPoint) -> u64 {
        let mut g = self.inner.write();
        let Some(series) = g.series.get_mut(&s) else {
            return 0;
        };
        let instance = series.next;
        series.next += 1;
        series.points.push(Point {
            instance,
            recorded: p.recorded,
            observed: p.observed,
            tpl: p.tpl,
            value: p.value,
        });
        instance
    }

    /// Removes a series and all its points. False if it did not exist.
    pub fn delete_series(&self, s: SeriesId) -> bool {
        let mut g = self.inner.write();
        match g.series.remove(&s) {
            Some(series) => {
                g.by_key.remove(&series.key);
                true
            }
            None => false,
        }
    }

    /// Removes one point. False if there is no such point.
    pub fn delete_instance(&self, s: SeriesId, instance: u64) -> bool {
        let mut g = self.inner.write();
        let Some(series) = g.series.get_mut(&s) else {
            return false;
        };
        let before = series.points.len();
        series.points.retain(|p| p.instance != instance);
        series.points.len() != before
    }

    /// Replaces the content of one point, keeping its instance number.
    /// False if there is no such point.
    pub fn replace_instance(&self, s: SeriesId, instance: u64, p: NewPoint) -> bool {
        let mut g = self.inner.write();
        let Some(series) = g.series.get_mut(&s) else {
            return false;
        };
        match series.points.iter_mut().find(|q| q.instance == instance) {
            Some(q) => {
                *q = Point {
                    instance,
                    recorded: p.recorded,
                    observed: p.observed,
                    tpl: p.tpl,
                    value: p.value,
                };
                true
            }
            None => false,
        }
    }

    /// One point by instance number.
    pub fn get_instance(&self, s: SeriesId, instance: u64) -> Option<Point> {
        let g = self.inner.read();
        g.series
            .get(&s)?
            .points
            .iter()
            .find(|p| p.instance == instance)
            .cloned()
    }

    /// Sets (`Some`) or removes (`None`) a meta value.
    pub fn put_meta(&self, key: &[u8], value: Option<&[u8]>) {
        let mut g = self.inner.write();
        match value {
            Some(v) => {
                g.meta.insert(key.to_vec(), v.to_vec());
            }
            None => {
                g.meta.remove(key);
            }
        }
    }

    /// A meta value.
    pub fn get_meta(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.read().meta.get(key).cloned()
    }

    /// Meta entries whose key starts with `prefix`, in key order.
    pub fn meta_by_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let g = self.inner.read();
        g.meta
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Waits until every mutation made before the call is durable.
    pub async fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// Points of `s` in `range`, ordered by the range's time, at most `limit`.
    pub fn scan(&self, s: SeriesId, range: &Range, order: Order, limit: usize) -> Vec<Point> {
        let g = self.inner.read();
        let Some(series) = g.series.get(&s) else {
            return Vec::new();
        };
        let mut v: Vec<(i64, &Point)> = series
            .points
            .iter()
            .filter_map(|p| {
                range
                    .time_of(p)
                    .filter(|t| range.contains(*t))
                    .map(|t| (t, p))
            })
            .collect();
        v.sort_by_key(|(t, p)| (*t, p.instance));
        if order == Order::Desc {
            v.reverse();
        }
        v.into_iter().take(limit).map(|(_, p)| p.clone()).collect()
    }

    /// Number of points of `s` in `range`.
    pub fn count(&self, s: SeriesId, range: &Range) -> usize {
        self.scan(s, range, Order::Asc, usize::MAX).len()
    }

    /// Aggregates the points of `s` in `range` per period of `period` µs
    /// starting at `origin` (periods before `origin` are not produced); a
    /// `period` of 0 means one bucket for the whole range starting at
    /// `origin`. Only periods holding at least one point are returned.
    pub fn aggregate(&self, s: SeriesId, range: &Range, origin: i64, period: i64) -> Vec<Bucket> {
        self.aggregate_with(s, range, origin, period, true)
    }

    /// [`Tsdb::aggregate`]; without `need_distinct` every `distinct` is None.
    pub fn aggregate_with(
        &self,
        s: SeriesId,
        range: &Range,
        origin: i64,
        period: i64,
        need_distinct: bool,
    ) -> Vec<Bucket> {
        let points = self.scan(s, range, Order::Asc, usize::MAX);
        let mut out: BTreeMap<i64, (Bucket, HashSet<Vec<u8>>)> = BTreeMap::new();
        for p in &points {
            let t = range.time_of(p).unwrap_or_default();
            if t < origin || matches!(p.value, Value::Deleted) {
                continue;
            }
            let start = crate::period_start(t, origin, period);
            let (b, seen) = out.entry(start).or_insert_with(|| {
                (
                    Bucket {
                        start,
                        ..Bucket::default()
                    },
                    HashSet::new(),
                )
            });
            b.count += 1;
            match &p.value {
                Value::Num(x) => {
                    let mut k = vec![0u8];
                    k.extend_from_slice(&x.to_bits().to_le_bytes());
                    seen.insert(k);
                    b.num += 1;
                    b.sum += x;
                    b.sumsq += x * x;
                    b.min = Some(b.min.map_or(*x, |m| m.min(*x)));
                    b.max = Some(b.max.map_or(*x, |m| m.max(*x)));
                }
                Value::Doc(d) => {
                    let mut k = vec![1u8];
                    k.extend_from_slice(d);
                    seen.insert(k);
                }
                Value::Deleted => {}
            }
        }
        let mut rolled = HashSet::new();
        if let Some(series) = self.inner.read().series.get(&s) {
            for ((g, start), r) in &series.rollups {
                if !crate::rollup_applies(range, origin, period, *g, *start) {
                    continue;
                }
                let at = crate::period_start(*start, origin, period);
                rolled.insert(at);
                let (b, _) = out.entry(at).or_insert_with(|| {
                    (
                        Bucket {
                            start: at,
                            ..Bucket::default()
                        },
                        HashSet::new(),
                    )
                });
                b.count += r.count;
                b.num += r.num;
                b.sum += r.sum;
                b.sumsq += r.sumsq;
                b.min = match (b.min, r.min) {
                    (Some(a), Some(c)) => Some(a.min(c)),
                    (a, c) => a.or(c),
                };
                b.max = match (b.max, r.max) {
                    (Some(a), Some(c)) => Some(a.max(c)),
                    (a, c) => a.or(c),
                };
            }
        }
        out.into_values()
            .map(|(mut b, seen)| {
                b.distinct =
                    (need_distinct && !rolled.contains(&b.start)).then_some(seen.len() as u64);
                b
            })
            .collect()
    }

    /// Drops the raw points of `s` recorded before `t`. With `rollup` (a
    /// period in µs), keeps per-period aggregates of what was dropped, which
    /// [`Tsdb::aggregate`] uses for periods that are multiples of it.
    /// Returns how many points were dropped.
    pub async fn drop_before(&self, s: SeriesId, t: i64, rollup: Option<i64>) -> Result<u64> {
        let mut g = self.inner.write();
        let Some(series) = g.series.get_mut(&s) else {
            return Ok(0);
        };
        let before = series.points.len();
        if let Some(w) = rollup.filter(|w| *w > 0) {
            for p in series.points.iter().filter(|p| p.recorded < t) {
                let x = match p.value {
                    Value::Deleted => continue,
                    Value::Num(x) => Some(x),
                    Value::Doc(_) => None,
                };
                let start = crate::floor_to(p.recorded, w);
                let b = series.rollups.entry((w, start)).or_insert_with(|| Bucket {
                    start,
                    ..Bucket::default()
                });
                b.count += 1;
                if let Some(x) = x {
                    b.num += 1;
                    b.sum += x;
                    b.sumsq += x * x;
                    b.min = Some(b.min.map_or(x, |m| m.min(x)));
                    b.max = Some(b.max.map_or(x, |m| m.max(x)));
                }
            }
        }
        series.points.retain(|p| p.recorded >= t);
        Ok((before - series.points.len()) as u64)
    }

    /// Seals what is in memory into compressed partitions and truncates the
    /// log (also done in the background).
    pub async fn checkpoint(&self) -> Result<()> {
        Ok(())
    }

    /// Sizes.
    pub fn stats(&self) -> Stats {
        let g = self.inner.read();
        Stats {
            series: g.series.len() as u64,
            points: g.series.values().map(|s| s.points.len() as u64).sum(),
            ..Stats::default()
        }
    }
}
