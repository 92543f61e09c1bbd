//! Aggregation: points (or whole-chunk summaries, or rollups) are folded
//! straight into per-period accumulators.

use std::collections::HashMap;
use std::sync::Arc;

use crate::chunk::Summary;
use crate::{period_start, Bucket};

struct Acc {
    start: i64,
    s: Summary,
    nums: Vec<u64>,
    docs: Vec<Arc<[u8]>>,
    /// Some of it came from rollups or summaries: distinct is unknown.
    rolled: bool,
}

/// Per-period accumulators with a one-entry cache for the current period
/// (points mostly arrive in time order, so most lookups are a compare).
pub(crate) struct Agg {
    origin: i64,
    period: i64,
    pub(crate) need_distinct: bool,
    accs: Vec<Acc>,
    index: HashMap<i64, usize>,
    cur_lo: i64,
    cur_hi: i64,
    cur: usize,
}

impl Agg {
    pub(crate) fn new(origin: i64, period: i64, need_distinct: bool) -> Self {
        Self {
            origin,
            period: period.max(0),
            need_distinct,
            accs: Vec::new(),
            index: HashMap::new(),
            cur_lo: 1,
            cur_hi: 0,
            cur: 0,
        }
    }

    /// The accumulator for time `t` (which must be ≥ origin).
    #[inline]
    fn slot(&mut self, t: i64) -> usize {
        if t >= self.cur_lo && t < self.cur_hi {
            return self.cur;
        }
        self.slot_slow(t)
    }

    fn slot_slow(&mut self, t: i64) -> usize {
        let start = period_start(t, self.origin, self.period);
        let hi = if self.period == 0 {
            i64::MAX
        } else {
            start.saturating_add(self.period)
        };
        let accs = &mut self.accs;
        let need_distinct = self.need_distinct;
        let i = *self.index.entry(start).or_insert_with(|| {
            accs.push(Acc {
                start,
                s: Summary::default(),
                nums: Vec::with_capacity(if need_distinct { 64 } else { 0 }),
                docs: Vec::new(),
                rolled: false,
            });
            accs.len() - 1
        });
        self.cur_lo = start;
        self.cur_hi = hi;
        self.cur = i;
        i
    }

    /// Period start of `t` (for callers checking whether a chunk fits one).
    pub(crate) fn start_of(&self, t: i64) -> i64 {
        period_start(t, self.origin, self.period)
    }

    pub(crate) fn origin(&self) -> i64 {
        self.origin
    }

    #[inline]
    pub(crate) fn add_num(&mut self, t: i64, x: f64) {
        if t < self.origin {
            return;
        }
        let i = self.slot(t);
        let a = &mut self.accs[i];
        a.s.add_num(x);
        if self.need_distinct {
            a.nums.push(x.to_bits());
        }
    }

    #[inline]
    pub(crate) fn add_doc(&mut self, t: i64, d: &Arc<[u8]>) {
        if t < self.origin {
            return;
        }
        let i = self.slot(t);
        let a = &mut self.accs[i];
        a.s.count += 1;
        if self.need_distinct {
            a.docs.push(d.clone());
        }
    }

    /// Adds a summary of points that all fall in the period of `t`.
    pub(crate) fn add_summary(&mut self, t: i64, s: &Summary, rolled: bool) {
        if t < self.origin || s.count == 0 {
            return;
        }
        let i = self.slot(t);
        let a = &mut self.accs[i];
        a.s.merge(s);
        a.rolled |= rolled;
    }

    pub(crate) fn finish(self) -> Vec<Bucket> {
        let need_distinct = self.need_distinct;
        let mut out: Vec<Bucket> = self
            .accs
            .into_iter()
            .map(|mut a| {
                let distinct = if a.rolled || !need_distinct {
                    None
                } else {
                    a.nums.sort_unstable();
                    a.nums.dedup();
                    a.docs.sort_unstable();
                    a.docs.dedup();
                    Some((a.nums.len() + a.docs.len()) as u64)
                };
                let has = a.s.num > 0;
                Bucket {
                    start: a.start,
                    count: a.s.count,
                    distinct,
                    num: a.s.num,
                    sum: a.s.sum,
                    sumsq: a.s.sumsq,
                    min: has.then_some(a.s.min),
                    max: has.then_some(a.s.max),
                }
            })
            .collect();
        out.sort_by_key(|b| b.start);
        out
    }
}
