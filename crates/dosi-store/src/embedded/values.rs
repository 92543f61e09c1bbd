//! The value index: for one (entity type, attribute) pair, the entities
//! ordered by the attribute's number, string and boolean values, so that a
//! query whose `q` has a conjunct such as `band==5`, `band==1..3` or
//! `temp>30` reads its candidates from here instead of scanning the type.
//!
//! The index only narrows: the store still evaluates the whole filter on
//! every candidate. What it must never do is leave out an entity the
//! conjunct matches, so it mirrors how `q` evaluates a plain attribute
//! path (`dosi_ngsi::query::q`):
//! - every instance counts (any `datasetId`), as in `q`;
//! - a `Property` offers its value when it is a number, string or boolean,
//!   and the number, string and boolean elements of an array value (`q`
//!   flattens one level); objects, `null` and nested arrays never compare
//!   equal or ordered to a literal, so they offer nothing;
//! - an instance of any other kind (Relationship, LanguageProperty, ...) has
//!   rules of its own, so its entity is *opaque*: always a candidate.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use dosi_ngsi::model::AttrKind;
use dosi_ngsi::query::q::{Scalar, ValueTest};

use super::codec::{self, ValueRef};

/// A number as the index orders it: `q` compares numbers as `f64`
/// (`partial_cmp`), so `-0.0` is stored as `0.0` and NaN (which neither
/// JSON nor `q` can produce) is refused; on what remains `total_cmp` agrees
/// with `partial_cmp`.
#[derive(Debug, Clone, Copy)]
pub struct Num(f64);

impl Num {
    /// The key of `v`, `None` for NaN.
    pub fn new(v: f64) -> Option<Self> {
        if v.is_nan() {
            None
        } else if v == 0.0 {
            Some(Self(0.0))
        } else {
            Some(Self(v))
        }
    }
}

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Num {}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Num {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One indexed value, borrowed from the entity's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key<'a> {
    /// `false` or `true`.
    Bool(bool),
    /// A number.
    Num(Num),
    /// A string.
    Str(&'a str),
}

/// A key, owned: what a plan that reads one key's entities holds on to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedKey {
    /// `false` or `true`.
    Bool(bool),
    /// A number.
    Num(Num),
    /// A string.
    Str(Box<str>),
}

/// What one entity offers the index of one attribute: its distinct keys
/// (sorted) and whether it is opaque (always a candidate).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EntityKeys<'a> {
    keys: Vec<Key<'a>>,
    opaque: bool,
}

impl<'a> EntityKeys<'a> {
    /// An entity that is always a candidate (its attribute could not be read).
    pub fn opaque() -> Self {
        Self {
            keys: Vec::new(),
            opaque: true,
        }
    }

    /// Adds one instance of the attribute.
    pub fn add_instance(&mut self, kind: AttrKind, value: ValueRef<'a>) {
        if kind != AttrKind::Property {
            self.opaque = true;
            return;
        }
        match value {
            ValueRef::Array(items) => {
                for item in items {
                    self.add_scalar(item);
                }
            }
            v => self.add_scalar(v),
        }
    }

    fn add_scalar(&mut self, v: ValueRef<'a>) {
        let key = match v {
            ValueRef::Bool(b) => Key::Bool(b),
            ValueRef::Num(n) => match Num::new(n) {
                Some(n) => Key::Num(n),
                None => return,
            },
            ValueRef::Str(s) => Key::Str(s),
            ValueRef::Array(_) | ValueRef::Other => return,
        };
        self.keys.push(key);
    }

    /// Sorts and deduplicates the keys; call once all instances are in.
    pub fn finish(&mut self) {
        self.keys.sort_unstable();
        self.keys.dedup();
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty() && !self.opaque
    }
}

/// The keys of the attributes `attrs` (name indices) of the encoded entity
/// `blob`, one [`EntityKeys`] per attribute in the order of `attrs`.
pub fn keys_of<'a>(blob: &'a [u8], attrs: &[u32]) -> Vec<EntityKeys<'a>> {
    let mut out = vec![EntityKeys::default(); attrs.len()];
    let read = codec::instance_values(blob, attrs, &mut |attr, kind, value| {
        if let Some(i) = attrs.iter().position(|&a| a == attr) {
            out[i].add_instance(kind, value);
        }
    });
    if read.is_err() {
        // Our own encoder wrote the blob, so this does not happen; if it
        // did, the entity stays findable (the same blob fails the same way
        // when it is removed).
        return vec![EntityKeys::opaque(); attrs.len()];
    }
    for k in &mut out {
        k.finish();
    }
    out
}

/// Entity sequences of one key, sorted. Most keys of a selective attribute
/// hold a few entities: those stay in a vector.
#[derive(Debug, Clone)]
enum Postings {
    Small(Vec<u64>),
    Large(BTreeSet<u64>),
}

/// Postings longer than this move to a `BTreeSet`, so that moving an
/// entity between two common values stays cheap.
const SMALL_MAX: usize = 32;

impl Default for Postings {
    fn default() -> Self {
        Self::Small(Vec::new())
    }
}

impl Postings {
    fn insert(&mut self, seq: u64) -> bool {
        match self {
            Self::Small(v) => match v.binary_search(&seq) {
                Ok(_) => false,
                Err(i) => {
                    if v.len() < SMALL_MAX {
                        v.insert(i, seq);
                    } else {
                        let mut set: BTreeSet<u64> = v.drain(..).collect();
                        set.insert(seq);
                        *self = Self::Large(set);
                    }
                    true
                }
            },
            Self::Large(s) => s.insert(seq),
        }
    }

    fn remove(&mut self, seq: u64) -> bool {
        match self {
            Self::Small(v) => match v.binary_search(&seq) {
                Ok(i) => {
                    v.remove(i);
                    true
                }
                Err(_) => false,
            },
            Self::Large(s) => s.remove(&seq),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Small(v) => v.len(),
            Self::Large(s) => s.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `n` entities from sequence `from` on, in order.
    fn seqs_from(&self, from: u64, n: usize) -> Vec<u64> {
        match self {
            Self::Small(v) => {
                let i = v.partition_point(|&s| s < from);
                v[i..].iter().take(n).copied().collect()
            }
            Self::Large(s) => s.range(from..).take(n).copied().collect(),
        }
    }

    fn extend_into(&self, out: &mut Vec<u64>) {
        match self {
            Self::Small(v) => out.extend_from_slice(v),
            Self::Large(s) => out.extend(s.iter().copied()),
        }
    }
}

/// Too many candidates: the caller has a cheaper plan.
#[derive(Debug, PartialEq, Eq)]
pub struct TooMany;

/// The index of one (entity type, attribute) pair.
#[derive(Debug, Default)]
pub struct ValueIndex {
    nums: BTreeMap<Num, Postings>,
    strs: BTreeMap<Box<str>, Postings>,
    bools: [Postings; 2],
    opaque: Postings,
    /// Number of (key, entity) entries, opaque entities included.
    entries: usize,
}

impl ValueIndex {
    /// Number of (key, entity) entries, opaque entities included.
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Every key with its entities, in key order (for tests).
    #[cfg(test)]
    pub fn dump(&self) -> Vec<(String, Vec<u64>)> {
        let seqs = |p: &Postings| {
            let mut v = Vec::new();
            p.extend_into(&mut v);
            v
        };
        let bools = [false, true]
            .into_iter()
            .map(|b| (format!("{b}"), seqs(&self.bools[usize::from(b)])));
        let nums = self.nums.iter().map(|(n, p)| (format!("{}", n.0), seqs(p)));
        let strs = self.strs.iter().map(|(k, p)| (format!("{k:?}"), seqs(p)));
        bools
            .chain(nums)
            .chain(strs)
            .chain([("opaque".to_owned(), seqs(&self.opaque))])
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// Moves entity `seq` from `old` keys to `new` keys; returns the change
    /// in [`ValueIndex::entries`].
    pub fn update(&mut self, seq: u64, old: &EntityKeys<'_>, new: &EntityKeys<'_>) -> isize {
        let before = self.entries;
        for k in &old.keys {
            if !new.keys.contains(k) {
                self.remove_key(*k, seq);
            }
        }
        for k in &new.keys {
            if !old.keys.contains(k) {
                self.insert_key(*k, seq);
            }
        }
        if old.opaque && !new.opaque && self.opaque.remove(seq) {
            self.entries -= 1;
        }
        if new.opaque && !old.opaque && self.opaque.insert(seq) {
            self.entries += 1;
        }
        self.entries as isize - before as isize
    }

    /// Adds entity `seq` (not yet present) with `keys`.
    pub fn add(&mut self, seq: u64, keys: &EntityKeys<'_>) -> isize {
        if keys.is_empty() {
            return 0;
        }
        self.update(seq, &EntityKeys::default(), keys)
    }

    fn postings_mut(&mut self, k: Key<'_>) -> &mut Postings {
        match k {
            Key::Bool(b) => &mut self.bools[usize::from(b)],
            Key::Num(n) => self.nums.entry(n).or_default(),
            Key::Str(s) => {
                if !self.strs.contains_key(s) {
                    self.strs.insert(Box::from(s), Postings::default());
                }
                self.strs.get_mut(s).expect("inserted just above")
            }
        }
    }

    fn insert_key(&mut self, k: Key<'_>, seq: u64) {
        if self.postings_mut(k).insert(seq) {
            self.entries += 1;
        }
    }

    fn remove_key(&mut self, k: Key<'_>, seq: u64) {
        let (removed, empty) = match k {
            Key::Bool(b) => {
                let p = &mut self.bools[usize::from(b)];
                (p.remove(seq), false)
            }
            Key::Num(n) => match self.nums.get_mut(&n) {
                Some(p) => (p.remove(seq), p.is_empty()),
                None => (false, false),
            },
            Key::Str(s) => match self.strs.get_mut(s) {
                Some(p) => (p.remove(seq), p.is_empty()),
                None => (false, false),
            },
        };
        if removed {
            self.entries -= 1;
        }
        if empty {
            match k {
                Key::Num(n) => {
                    self.nums.remove(&n);
                }
                Key::Str(s) => {
                    self.strs.remove(s);
                }
                Key::Bool(_) => {}
            }
        }
    }

    /// When `test` is equality with one value and no entity is opaque, so
    /// that one key's entities are exactly the candidates: that key and
    /// their number.
    pub fn single_key(&self, test: &ValueTest<'_>) -> Option<(OwnedKey, usize)> {
        let ValueTest::AnyOf(list) = test else {
            return None;
        };
        let [one] = list.as_slice() else {
            return None;
        };
        if !self.opaque.is_empty() {
            return None;
        }
        let key = match *one {
            Scalar::Bool(b) => OwnedKey::Bool(b),
            Scalar::Num(v) => OwnedKey::Num(Num::new(v)?),
            Scalar::Str(s) => OwnedKey::Str(Box::from(s)),
        };
        let len = self.postings(&key).map_or(0, Postings::len);
        Some((key, len))
    }

    /// Up to `n` entities having `key`, from sequence `from` on, in order.
    pub fn seqs_from(&self, key: &OwnedKey, from: u64, n: usize) -> Vec<u64> {
        self.postings(key)
            .map(|p| p.seqs_from(from, n))
            .unwrap_or_default()
    }

    fn postings(&self, key: &OwnedKey) -> Option<&Postings> {
        match key {
            OwnedKey::Bool(b) => Some(&self.bools[usize::from(*b)]),
            OwnedKey::Num(n) => self.nums.get(n),
            OwnedKey::Str(s) => self.strs.get(&**s),
        }
    }

    /// Appends to `out` every entity that may satisfy `test`: those with a
    /// key passing it and the opaque ones (unsorted, possibly repeated).
    /// `Ok(false)` when the index cannot answer `test`; [`TooMany`] once
    /// `out` would exceed `bound`.
    pub fn candidates(
        &self,
        test: &ValueTest<'_>,
        out: &mut Vec<u64>,
        bound: usize,
    ) -> Result<bool, TooMany> {
        let add = |p: &Postings, out: &mut Vec<u64>| {
            if out.len() + p.len() > bound {
                return Err(TooMany);
            }
            p.extend_into(out);
            Ok(())
        };
        match test {
            ValueTest::AnyOf(list) => {
                for s in list {
                    match *s {
                        Scalar::Bool(b) => add(&self.bools[usize::from(b)], out)?,
                        Scalar::Num(v) => {
                            if let Some(p) = Num::new(v).and_then(|n| self.nums.get(&n)) {
                                add(p, out)?;
                            }
                        }
                        Scalar::Str(s) => {
                            if let Some(p) = self.strs.get(s) {
                                add(p, out)?;
                            }
                        }
                    }
                }
            }
            ValueTest::Range(lo, hi) => {
                let (lo, hi) = (Bound::Included(*lo), Bound::Included(*hi));
                if !self.range(lo, hi, &mut |p| add(p, out))? {
                    return Ok(false);
                }
            }
            ValueTest::Above {
                bound: b,
                inclusive,
            } => {
                let lo = if *inclusive {
                    Bound::Included(*b)
                } else {
                    Bound::Excluded(*b)
                };
                if !self.range(lo, Bound::Unbounded, &mut |p| add(p, out))? {
                    return Ok(false);
                }
            }
            ValueTest::Below {
                bound: b,
                inclusive,
            } => {
                let hi = if *inclusive {
                    Bound::Included(*b)
                } else {
                    Bound::Excluded(*b)
                };
                if !self.range(Bound::Unbounded, hi, &mut |p| add(p, out))? {
                    return Ok(false);
                }
            }
        }
        add(&self.opaque, out)?;
        Ok(true)
    }

    /// Calls `f` on the postings of every key between `lo` and `hi` (bounds
    /// of one kind, numbers or strings); `Ok(false)` for other bounds.
    fn range(
        &self,
        lo: Bound<Scalar<'_>>,
        hi: Bound<Scalar<'_>>,
        f: &mut dyn FnMut(&Postings) -> Result<(), TooMany>,
    ) -> Result<bool, TooMany> {
        fn num(b: Bound<Scalar<'_>>) -> Option<Bound<Num>> {
            Some(match b {
                Bound::Included(Scalar::Num(v)) => Bound::Included(Num::new(v)?),
                Bound::Excluded(Scalar::Num(v)) => Bound::Excluded(Num::new(v)?),
                Bound::Unbounded => Bound::Unbounded,
                _ => return None,
            })
        }
        fn text(b: Bound<Scalar<'_>>) -> Option<Bound<&str>> {
            Some(match b {
                Bound::Included(Scalar::Str(s)) => Bound::Included(s),
                Bound::Excluded(Scalar::Str(s)) => Bound::Excluded(s),
                Bound::Unbounded => Bound::Unbounded,
                _ => return None,
            })
        }
        if let (Some(l), Some(h)) = (num(lo), num(hi)) {
            if !empty_range(&l, &h) {
                for p in self.nums.range((l, h)).map(|(_, p)| p) {
                    f(p)?;
                }
            }
            return Ok(true);
        }
        if let (Some(l), Some(h)) = (text(lo), text(hi)) {
            if !empty_range(&l, &h) {
                for p in self.strs.range::<str, _>((l, h)).map(|(_, p)| p) {
                    f(p)?;
                }
            }
            return Ok(true);
        }
        Ok(false)
    }
}

/// True when no value lies between the bounds (`BTreeMap::range` panics on
/// a start after its end, or equal bounds that are both excluded).
fn empty_range<T: Ord>(lo: &Bound<T>, hi: &Bound<T>) -> bool {
    match (lo, hi) {
        (Bound::Included(l), Bound::Included(h)) => l > h,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Included(h) | Bound::Excluded(h)) => {
            l >= h
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[Key<'static>], opaque: bool) -> EntityKeys<'static> {
        let mut k = EntityKeys {
            keys: list.to_vec(),
            opaque,
        };
        k.finish();
        k
    }

    fn num(v: f64) -> Key<'static> {
        Key::Num(Num::new(v).expect("not NaN"))
    }

    fn cands(idx: &ValueIndex, test: ValueTest<'_>) -> Option<Vec<u64>> {
        let mut out = Vec::new();
        match idx.candidates(&test, &mut out, usize::MAX) {
            Ok(true) => {
                out.sort_unstable();
                out.dedup();
                Some(out)
            }
            Ok(false) => None,
            Err(TooMany) => panic!("unbounded"),
        }
    }

    #[test]
    fn numbers_compare_as_numbers() {
        assert_eq!(Num::new(-0.0), Num::new(0.0));
        assert!(Num::new(f64::NAN).is_none());
        assert!(Num::new(-1.0) < Num::new(-0.0));
        assert!(Num::new(0.0) < Num::new(f64::MIN_POSITIVE));
        let mut idx = ValueIndex::default();
        idx.add(1, &keys(&[num(5.0)], false));
        idx.add(2, &keys(&[num(-0.0), Key::Str("5")], false));
        idx.add(3, &keys(&[num(7.5), Key::Bool(true)], false));
        idx.add(4, &keys(&[], true));
        let any = |s: Vec<Scalar<'static>>| ValueTest::AnyOf(s);
        assert_eq!(cands(&idx, any(vec![Scalar::Num(5.0)])), Some(vec![1, 4]));
        assert_eq!(cands(&idx, any(vec![Scalar::Num(0.0)])), Some(vec![2, 4]));
        assert_eq!(cands(&idx, any(vec![Scalar::Str("5")])), Some(vec![2, 4]));
        assert_eq!(cands(&idx, any(vec![Scalar::Bool(true)])), Some(vec![3, 4]));
        assert_eq!(cands(&idx, any(vec![Scalar::Bool(false)])), Some(vec![4]));
        assert_eq!(
            cands(&idx, ValueTest::Range(Scalar::Num(0.0), Scalar::Num(5.0))),
            Some(vec![1, 2, 4])
        );
        assert_eq!(
            cands(&idx, ValueTest::Range(Scalar::Num(6.0), Scalar::Num(5.0))),
            Some(vec![4])
        );
        assert_eq!(
            cands(&idx, ValueTest::Range(Scalar::Str("0"), Scalar::Str("9"))),
            Some(vec![2, 4])
        );
        let above = |v, inclusive| ValueTest::Above {
            bound: Scalar::Num(v),
            inclusive,
        };
        let below = |v, inclusive| ValueTest::Below {
            bound: Scalar::Num(v),
            inclusive,
        };
        assert_eq!(cands(&idx, above(5.0, false)), Some(vec![3, 4]));
        assert_eq!(cands(&idx, above(5.0, true)), Some(vec![1, 3, 4]));
        assert_eq!(cands(&idx, below(5.0, false)), Some(vec![2, 4]));
        assert_eq!(cands(&idx, below(-0.0, true)), Some(vec![2, 4]));
        assert_eq!(cands(&idx, below(0.0, false)), Some(vec![4]));
        // Booleans have no order.
        assert_eq!(
            cands(
                &idx,
                ValueTest::Range(Scalar::Bool(false), Scalar::Bool(true))
            ),
            None
        );
        assert_eq!(idx.entries(), 6);
        let mut out = Vec::new();
        assert_eq!(idx.candidates(&above(0.0, true), &mut out, 2), Err(TooMany));
    }

    #[test]
    fn updates_move_entities_and_count_entries() {
        let mut idx = ValueIndex::default();
        // Enough entities on one value to leave the small representation.
        for seq in 0..100 {
            assert_eq!(idx.add(seq, &keys(&[num(1.0)], false)), 1);
        }
        let one = ValueTest::AnyOf(vec![Scalar::Num(1.0)]);
        let two = ValueTest::AnyOf(vec![Scalar::Num(2.0)]);
        assert_eq!(cands(&idx, one.clone()).map(|v| v.len()), Some(100));
        let k1 = keys(&[num(1.0)], false);
        let k2 = keys(&[num(2.0), Key::Str("x")], false);
        for seq in (0..100).step_by(2) {
            assert_eq!(idx.update(seq, &k1, &k2), 1);
        }
        assert_eq!(cands(&idx, one.clone()).map(|v| v.len()), Some(50));
        let (key, len) = idx.single_key(&one).expect("one key");
        assert_eq!(len, 50);
        assert_eq!(idx.seqs_from(&key, 10, 3), vec![11, 13, 15]);
        assert_eq!(idx.seqs_from(&key, 11, 2), vec![11, 13]);
        let (two_key, _) = idx.single_key(&two).expect("one key");
        assert_eq!(idx.seqs_from(&two_key, 95, 9), vec![96, 98]);
        assert_eq!(
            idx.single_key(&ValueTest::AnyOf(vec![Scalar::Num(1.0), Scalar::Num(2.0)])),
            None
        );
        assert_eq!(
            cands(&idx, two.clone()).map(|v| v[..3].to_vec()),
            Some(vec![0, 2, 4])
        );
        assert_eq!(idx.entries(), 150);
        // To opaque and back.
        assert_eq!(idx.update(1, &k1, &EntityKeys::opaque()), 0);
        assert_eq!(cands(&idx, two.clone()).map(|v| v.contains(&1)), Some(true));
        assert_eq!(idx.update(1, &EntityKeys::opaque(), &k1), 0);
        assert_eq!(
            cands(&idx, two.clone()).map(|v| v.contains(&1)),
            Some(false)
        );
        // Removing everything leaves nothing behind.
        for seq in 0..100 {
            let old = if seq % 2 == 0 { &k2 } else { &k1 };
            idx.update(seq, old, &EntityKeys::default());
        }
        assert_eq!(idx.entries(), 0);
        assert!(idx.nums.is_empty() && idx.strs.is_empty());
    }
}
