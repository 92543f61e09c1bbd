//! The in-memory state of the embedded store: per tenant, the encoded
//! entities in creation order plus the id, type, location and value indexes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dosi_ngsi::model::{core_iri, Entity};
use dosi_ngsi::{EntityId, TenantId};
use parking_lot::RwLock;
use rstar::{RTree, RTreeObject, AABB};
use serde_json::Value;

use super::codec::{self, Names};
use super::values::{self, EntityKeys, ValueIndex};

/// A bounding box: min lon, min lat, max lon, max lat.
pub type BBox = [f64; 4];

/// One stored entity: its id and its encoded form (see [`codec`]).
#[derive(Clone)]
pub struct Row {
    /// The entity id.
    pub id: EntityId,
    /// The entity, encoded.
    pub blob: Arc<[u8]>,
}

/// A row as checkpoints hold it: creation sequence, row, location box.
pub type RowImage = (u64, Row, Option<BBox>);

/// A change ready to apply: encoded, with its index keys computed.
pub enum Prepared {
    /// Insert or replace.
    Put {
        /// The entity id.
        id: EntityId,
        /// The encoded entity.
        blob: Arc<[u8]>,
        /// Bounding box of its `location`, if any.
        bbox: Option<BBox>,
    },
    /// Remove.
    Delete(EntityId),
}

impl Prepared {
    /// Encodes `e` and computes its index keys.
    pub fn put(e: &Entity, names: &Names) -> Self {
        Prepared::Put {
            id: e.id.clone(),
            blob: Arc::from(codec::encode(e, names)),
            bbox: location_bbox(e),
        }
    }
}

/// An R-tree entry: the bounding box of an entity's location and its sequence.
#[derive(Debug, Clone, PartialEq)]
struct GeoEntry {
    env: AABB<[f64; 2]>,
    seq: u64,
}

impl RTreeObject for GeoEntry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

fn aabb(b: &BBox) -> AABB<[f64; 2]> {
    AABB::from_corners([b[0], b[1]], [b[2], b[3]])
}

/// R-tree entries left stale before the tree is rebuilt (when they also
/// outnumber the live ones).
const GEO_STALE_MIN: usize = 4096;

/// The entities of one tenant.
#[derive(Default)]
pub struct TenantState {
    by_id: HashMap<EntityId, u64>,
    rows: BTreeMap<u64, Row>,
    by_type: HashMap<u32, BTreeSet<u64>>,
    /// Location index. Removing from an `rstar` tree costs far more than a
    /// whole write otherwise does, so entries are never removed one by one:
    /// an entry is live only while `geo_boxes` holds the same box for its
    /// sequence, and the tree is rebuilt from `geo_boxes` once stale entries
    /// dominate.
    geo: RTree<GeoEntry>,
    /// The location box of each entity that has one: the truth `geo` follows.
    geo_boxes: HashMap<u64, BBox>,
    /// Entries of `geo` that are no longer live.
    geo_stale: usize,
    /// Value indexes by entity type, then attribute (name indices). Built
    /// on demand (see [`TenantState::start_value_index`]) and kept up to
    /// date by every change from then on.
    values: HashMap<u32, HashMap<u32, ValueIndex>>,
    /// Indexes of `values` still being filled with the entities that were
    /// there when they started, with the next sequence to add. Queries do
    /// not use them yet.
    backfilling: HashMap<(u32, u32), u64>,
    /// Entries in all of `values`.
    value_entries: usize,
    /// Entries in the value indexes of every tenant of the store.
    store_value_entries: Arc<AtomicUsize>,
}

impl TenantState {
    /// Number of entities.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The row of `id`.
    pub fn get(&self, id: &EntityId) -> Option<&Row> {
        self.rows.get(self.by_id.get(id)?)
    }

    /// The creation sequence of `id`.
    pub fn seq_of(&self, id: &EntityId) -> Option<u64> {
        self.by_id.get(id).copied()
    }

    /// The row with creation sequence `seq`.
    pub fn row(&self, seq: u64) -> Option<&Row> {
        self.rows.get(&seq)
    }

    /// Rows with sequence `>= from`, in creation order.
    pub fn rows_from(&self, from: u64) -> impl Iterator<Item = (u64, &Row)> {
        self.rows.range(from..).map(|(s, r)| (*s, r))
    }

    /// All rows with their sequence and location box, in creation order.
    pub fn export(&self) -> Vec<RowImage> {
        self.rows
            .iter()
            .map(|(s, r)| (*s, r.clone(), self.geo_boxes.get(s).copied()))
            .collect()
    }

    /// Sequences of entities having one of `types` (name indices), sorted.
    pub fn seqs_of_types(&self, types: &[u32]) -> Vec<u64> {
        let mut out: Vec<u64> = types
            .iter()
            .filter_map(|t| self.by_type.get(t))
            .flatten()
            .copied()
            .collect();
        if types.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    /// Number of entities having one of `types` (name indices); an upper
    /// bound when an entity has several of them.
    pub fn count_of_types(&self, types: &[u32]) -> usize {
        types
            .iter()
            .filter_map(|t| self.by_type.get(t))
            .map(BTreeSet::len)
            .sum()
    }

    /// Up to `n` sequences `>= from` of entities of type `ty` (a name index), in order.
    pub fn seqs_of_type_from(&self, ty: u32, from: u64, n: usize) -> Vec<u64> {
        self.by_type
            .get(&ty)
            .map(|set| set.range(from..).take(n).copied().collect())
            .unwrap_or_default()
    }

    /// The value index of attribute `attr` over the entities of type `ty`
    /// (name indices), if built completely.
    pub fn value_index(&self, ty: u32, attr: u32) -> Option<&ValueIndex> {
        if self.backfilling.contains_key(&(ty, attr)) {
            return None;
        }
        self.values.get(&ty)?.get(&attr)
    }

    /// True if the value index of (`ty`, `attr`) exists, complete or not.
    pub fn has_value_index(&self, ty: u32, attr: u32) -> bool {
        self.values.get(&ty).is_some_and(|m| m.contains_key(&attr))
    }

    /// Starts the value index of `attr` over the entities of type `ty`
    /// (name indices): empty, kept up to date by every change from now on,
    /// unused by queries until [`TenantState::backfill_value_index`] has
    /// added the entities already there. False if it exists already.
    pub fn start_value_index(&mut self, ty: u32, attr: u32) -> bool {
        if self.has_value_index(ty, attr) {
            return false;
        }
        self.values
            .entry(ty)
            .or_default()
            .insert(attr, ValueIndex::default());
        self.backfilling.insert((ty, attr), 0);
        true
    }

    /// Adds up to `n` of the entities not yet in an index being started;
    /// true once it is complete (or was not being built). An entity changed
    /// since the start is in it already; adding its current keys again
    /// changes nothing.
    pub fn backfill_value_index(&mut self, ty: u32, attr: u32, n: usize) -> bool {
        let Some(&from) = self.backfilling.get(&(ty, attr)) else {
            return true;
        };
        let seqs = self.seqs_of_type_from(ty, from, n);
        let mut delta = 0;
        if let Some(idx) = self.values.get_mut(&ty).and_then(|m| m.get_mut(&attr)) {
            for &seq in &seqs {
                if let Some(row) = self.rows.get(&seq) {
                    let keys = values::keys_of(&row.blob, &[attr]);
                    delta += idx.add(seq, &keys[0]);
                }
            }
        }
        self.add_value_entries(delta);
        match seqs.last() {
            Some(&last) if seqs.len() == n => {
                self.backfilling.insert((ty, attr), last + 1);
                false
            }
            _ => {
                self.backfilling.remove(&(ty, attr));
                true
            }
        }
    }

    /// Entries in all value indexes of the tenant.
    pub fn value_entries(&self) -> usize {
        self.value_entries
    }

    /// Entries in all value indexes of every tenant of the store.
    pub fn store_value_entries(&self) -> usize {
        self.store_value_entries.load(Ordering::Relaxed)
    }

    fn add_value_entries(&mut self, delta: isize) {
        self.value_entries = self.value_entries.saturating_add_signed(delta);
        if delta >= 0 {
            self.store_value_entries
                .fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.store_value_entries
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// A value index of `attr` over the current entities of type `ty`, built
    /// in one go (tests compare the maintained ones with it).
    #[cfg(test)]
    pub fn build_value_index(&self, ty: u32, attr: u32) -> ValueIndex {
        let mut idx = ValueIndex::default();
        for &seq in self.by_type.get(&ty).into_iter().flatten() {
            if let Some(row) = self.rows.get(&seq) {
                let keys = values::keys_of(&row.blob, &[attr]);
                idx.add(seq, &keys[0]);
            }
        }
        idx
    }

    /// Installs an index made by [`TenantState::build_value_index`], unless
    /// there is one already.
    #[cfg(test)]
    pub fn install_value_index(&mut self, ty: u32, attr: u32, idx: ValueIndex) {
        let slot = self.values.entry(ty).or_default().entry(attr);
        if let std::collections::hash_map::Entry::Vacant(v) = slot {
            let added = idx.entries();
            v.insert(idx);
            self.add_value_entries(added.try_into().unwrap_or(isize::MAX));
        }
    }

    /// Like [`TenantState::seqs_in_bbox`], but `None` as soon as there are
    /// `bound` or more: the caller has a cheaper candidate set.
    pub fn seqs_in_bbox_below(&self, b: &BBox, bound: usize) -> Option<Vec<u64>> {
        let mut out: Vec<u64> = self
            .geo
            .locate_in_envelope_intersecting(&aabb(b))
            .filter(|g| self.geo_live(g))
            .take(bound)
            .map(|g| g.seq)
            .collect();
        if out.len() >= bound {
            return None;
        }
        out.sort_unstable();
        // An entity that moved away and back has two live entries.
        out.dedup();
        Some(out)
    }

    /// Sequences of entities whose location box intersects `b`, sorted.
    #[cfg(test)]
    pub fn seqs_in_bbox(&self, b: &BBox) -> Vec<u64> {
        self.seqs_in_bbox_below(b, usize::MAX).unwrap_or_default()
    }

    fn geo_live(&self, g: &GeoEntry) -> bool {
        // Without stale entries every entry is live: skip the lookup.
        self.geo_stale == 0 || self.geo_boxes.get(&g.seq).is_some_and(|b| aabb(b) == g.env)
    }

    /// Applies one change; `next_seq` numbers newly created entities.
    pub fn apply(&mut self, change: Prepared, next_seq: &mut u64) {
        match change {
            Prepared::Put { id, blob, bbox } => match self.by_id.get(&id) {
                Some(&seq) => self.replace_row(seq, Row { id, blob }, bbox),
                None => {
                    let seq = *next_seq;
                    *next_seq += 1;
                    self.by_id.insert(id.clone(), seq);
                    self.insert_row(seq, Row { id, blob }, bbox);
                }
            },
            Prepared::Delete(id) => {
                if let Some(seq) = self.by_id.remove(&id) {
                    if let Some(blob) = self.rows.get(&seq).map(|r| r.blob.clone()) {
                        let types = codec::decode_type_indices(&blob).unwrap_or_default();
                        self.index_values(seq, Some(&blob), None, &types, &[]);
                    }
                    self.unindex(seq);
                    self.rows.remove(&seq);
                }
            }
        }
    }

    /// Inserts a row loaded from a snapshot (sequence already assigned).
    pub fn load(&mut self, seq: u64, row: Row, bbox: Option<BBox>) {
        self.by_id.insert(row.id.clone(), seq);
        self.insert_row(seq, row, bbox);
    }

    fn insert_row(&mut self, seq: u64, row: Row, bbox: Option<BBox>) {
        // The blob was produced by our encoder, so its type list decodes.
        let types = codec::decode_type_indices(&row.blob).unwrap_or_default();
        for &t in &types {
            self.by_type.entry(t).or_default().insert(seq);
        }
        self.index_values(seq, None, Some(&row.blob), &[], &types);
        if let Some(b) = bbox {
            self.geo_insert(seq, b);
        }
        self.rows.insert(seq, row);
    }

    /// Replaces the row of an existing entity, touching only the index
    /// entries that change: most updates keep the types and the location.
    fn replace_row(&mut self, seq: u64, row: Row, bbox: Option<BBox>) {
        let old_blob = self.rows.get(&seq).map(|r| r.blob.clone());
        let old_types = old_blob
            .as_ref()
            .map(|b| codec::decode_type_indices(b).unwrap_or_default())
            .unwrap_or_default();
        let new_types = codec::decode_type_indices(&row.blob).unwrap_or_default();
        self.index_values(
            seq,
            old_blob.as_deref(),
            Some(&row.blob),
            &old_types,
            &new_types,
        );
        if old_types != new_types {
            self.unindex_types(seq);
            for t in new_types {
                self.by_type.entry(t).or_default().insert(seq);
            }
        }
        if self.geo_boxes.get(&seq) != bbox.as_ref() {
            self.geo_remove(seq);
            if let Some(b) = bbox {
                self.geo_insert(seq, b);
            }
        }
        self.rows.insert(seq, row);
    }

    /// Removes `seq` from the type and location indexes.
    fn unindex(&mut self, seq: u64) {
        self.unindex_types(seq);
        self.geo_remove(seq);
    }

    fn unindex_types(&mut self, seq: u64) {
        if let Some(row) = self.rows.get(&seq) {
            for t in codec::decode_type_indices(&row.blob).unwrap_or_default() {
                if let Some(set) = self.by_type.get_mut(&t) {
                    set.remove(&seq);
                    if set.is_empty() {
                        self.by_type.remove(&t);
                    }
                }
            }
        }
    }

    /// Moves entity `seq` in the value indexes of its types from what the
    /// encoding `old` (of types `old_types`) holds to what `new` (of types
    /// `new_types`) holds; `None` for no entity.
    fn index_values(
        &mut self,
        seq: u64,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
        old_types: &[u32],
        new_types: &[u32],
    ) {
        if self.values.is_empty() {
            return;
        }
        let mut types: Vec<u32> = Vec::new();
        let mut attrs: Vec<u32> = Vec::new();
        for t in old_types.iter().chain(new_types) {
            if let Some(by_attr) = self.values.get(t) {
                if !types.contains(t) {
                    types.push(*t);
                }
                for a in by_attr.keys() {
                    if !attrs.contains(a) {
                        attrs.push(*a);
                    }
                }
            }
        }
        if attrs.is_empty() {
            return;
        }
        let none_for_each = || vec![EntityKeys::default(); attrs.len()];
        let old_keys = old.map_or_else(none_for_each, |b| values::keys_of(b, &attrs));
        let new_keys = new.map_or_else(none_for_each, |b| values::keys_of(b, &attrs));
        let none = EntityKeys::default();
        let mut delta = 0isize;
        for t in types {
            let (in_old, in_new) = (old_types.contains(&t), new_types.contains(&t));
            let Some(by_attr) = self.values.get_mut(&t) else {
                continue;
            };
            for (a, idx) in by_attr.iter_mut() {
                let Some(i) = attrs.iter().position(|x| x == a) else {
                    continue;
                };
                let o = if in_old { &old_keys[i] } else { &none };
                let n = if in_new { &new_keys[i] } else { &none };
                if o != n {
                    delta += idx.update(seq, o, n);
                }
            }
        }
        self.add_value_entries(delta);
    }

    fn geo_insert(&mut self, seq: u64, b: BBox) {
        self.geo.insert(GeoEntry { env: aabb(&b), seq });
        self.geo_boxes.insert(seq, b);
    }

    /// Forgets the location of `seq`; its R-tree entry turns stale.
    fn geo_remove(&mut self, seq: u64) {
        if self.geo_boxes.remove(&seq).is_none() {
            return;
        }
        self.geo_stale += 1;
        if self.geo_stale >= GEO_STALE_MIN && self.geo_stale > self.geo_boxes.len() {
            let live = self
                .geo_boxes
                .iter()
                .map(|(&seq, b)| GeoEntry { env: aabb(b), seq })
                .collect();
            self.geo = RTree::bulk_load(live);
            self.geo_stale = 0;
        }
    }
}

/// Every tenant and the metadata.
#[derive(Default)]
pub struct State {
    /// Interned names, shared by all tenants.
    pub names: Names,
    /// Tenants by id; the default tenant is always present.
    pub tenants: RwLock<HashMap<TenantId, Arc<RwLock<TenantState>>>>,
    /// Metadata: namespace → key → value.
    pub meta: RwLock<BTreeMap<String, BTreeMap<String, Vec<u8>>>>,
    /// Entries in the value indexes of all tenants (each tenant shares it).
    value_entries: Arc<AtomicUsize>,
}

impl State {
    /// An empty state with the default tenant (and `names`).
    pub fn new(names: Names) -> Self {
        let s = Self {
            names,
            ..Self::default()
        };
        s.tenant_or_create(&TenantId::default_tenant());
        s
    }

    /// The tenant, if it exists.
    pub fn tenant(&self, t: &TenantId) -> Option<Arc<RwLock<TenantState>>> {
        self.tenants.read().get(t).cloned()
    }

    /// The tenant, created empty when new.
    pub fn tenant_or_create(&self, t: &TenantId) -> Arc<RwLock<TenantState>> {
        if let Some(ts) = self.tenant(t) {
            return ts;
        }
        self.tenants
            .write()
            .entry(t.clone())
            .or_insert_with(|| {
                Arc::new(RwLock::new(TenantState {
                    store_value_entries: self.value_entries.clone(),
                    ..TenantState::default()
                }))
            })
            .clone()
    }

    /// Stores or removes one metadata key.
    pub fn apply_meta(&self, ns: String, key: String, value: Option<Vec<u8>>) {
        let mut meta = self.meta.write();
        match value {
            Some(v) => {
                meta.entry(ns).or_default().insert(key, v);
            }
            None => {
                if let Some(m) = meta.get_mut(&ns) {
                    m.remove(&key);
                    if m.is_empty() {
                        meta.remove(&ns);
                    }
                }
            }
        }
    }
}

/// The bounding box of all instances of the entity's `location`, computed
/// from the GeoJSON coordinates; `None` without a usable geometry.
pub fn location_bbox(e: &Entity) -> Option<BBox> {
    let mut b: Option<BBox> = None;
    for a in e.attrs.get(core_iri::LOCATION)? {
        geometry_bbox(&a.value, &mut b, 0);
    }
    b
}

/// Widens `b` by every position in the GeoJSON geometry `v`.
fn geometry_bbox(v: &Value, b: &mut Option<BBox>, depth: usize) {
    // Bounded so a hostile deeply nested value cannot exhaust the stack.
    if depth > 32 {
        return;
    }
    if let Some(c) = v.get("coordinates") {
        coords_bbox(c, b, depth);
    }
    if let Some(Value::Array(gs)) = v.get("geometries") {
        for g in gs {
            geometry_bbox(g, b, depth + 1);
        }
    }
}

fn coords_bbox(v: &Value, b: &mut Option<BBox>, depth: usize) {
    let Value::Array(items) = v else { return };
    if depth > 32 {
        return;
    }
    if let [x, y, ..] = items.as_slice() {
        if let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) {
            if x.is_finite() && y.is_finite() {
                let nb = b.get_or_insert([x, y, x, y]);
                *nb = [nb[0].min(x), nb[1].min(y), nb[2].max(x), nb[3].max(y)];
            }
            return;
        }
    }
    for i in items {
        coords_bbox(i, b, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dosi_ngsi::model::{AttrKind, Attribute, Iri};
    use dosi_ngsi::Timestamp;
    use proptest::prelude::*;
    use serde_json::json;

    fn bbox_of(geometry: Value) -> Option<BBox> {
        let mut e = Entity::new(EntityId::new_unchecked("urn:a"), vec![], Timestamp(0));
        e.attrs.insert(
            Iri::from(core_iri::LOCATION),
            vec![Attribute::new(
                AttrKind::GeoProperty,
                geometry,
                Timestamp(0),
            )],
        );
        location_bbox(&e)
    }

    fn check(geometry: Value, expected: Option<BBox>) {
        assert_eq!(bbox_of(geometry.clone()), expected, "{geometry}");
    }

    #[test]
    fn bboxes() {
        check(
            json!({"type":"Point","coordinates":[1.0,2.0]}),
            Some([1.0, 2.0, 1.0, 2.0]),
        );
        check(
            json!({"type":"Point","coordinates":[1,2,30]}),
            Some([1.0, 2.0, 1.0, 2.0]),
        );
        check(
            json!({"type":"LineString","coordinates":[[1,5],[-3,2]]}),
            Some([-3.0, 2.0, 1.0, 5.0]),
        );
        check(
            json!({"type":"Polygon","coordinates":[[[0,0],[4,0],[4,3],[0,0]]]}),
            Some([0.0, 0.0, 4.0, 3.0]),
        );
        check(
            json!({"type":"GeometryCollection","geometries":[
                {"type":"Point","coordinates":[9,9]},
                {"type":"MultiPoint","coordinates":[[-1,-1]]}]}),
            Some([-1.0, -1.0, 9.0, 9.0]),
        );
        check(json!({"type":"Point","coordinates":"x"}), None);
        check(json!({"type":"Point"}), None);
        check(json!("POINT(1 2)"), None);
    }

    #[test]
    fn moving_entities_leave_bounded_stale_entries() {
        let names = Names::default();
        let mut t = TenantState::default();
        let mut seq = 0;
        let put = |id: &str, x: f64| {
            let mut e = Entity::new(EntityId::new_unchecked(id), vec![], Timestamp(0));
            e.attrs.insert(
                Iri::from(core_iri::LOCATION),
                vec![Attribute::new(
                    AttrKind::GeoProperty,
                    json!({"type":"Point","coordinates":[x, 0.0]}),
                    Timestamp(0),
                )],
            );
            Prepared::put(&e, &names)
        };
        // Entity a moves back and forth between x = 0 and x = 1; b stays at 5.
        t.apply(put("urn:b", 5.0), &mut seq);
        for i in 0..3 * GEO_STALE_MIN {
            t.apply(put("urn:a", (i % 2) as f64), &mut seq);
        }
        let last = ((3 * GEO_STALE_MIN - 1) % 2) as f64;
        assert_eq!(t.seqs_in_bbox(&[last, -1.0, last, 1.0]), vec![1]);
        assert_eq!(
            t.seqs_in_bbox(&[1.0 - last, -1.0, 1.0 - last, 1.0]),
            Vec::<u64>::new()
        );
        assert_eq!(t.seqs_in_bbox(&[-9.0, -9.0, 9.0, 9.0]), vec![0, 1]);
        assert!(t.geo.size() <= 2 * GEO_STALE_MIN + 2, "{}", t.geo.size());
        // Unchanged locations add no entry.
        let before = t.geo.size();
        t.apply(put("urn:b", 5.0), &mut seq);
        assert_eq!(t.geo.size(), before);
    }

    /// A change for the value-index property test: put entity `id` of
    /// type T1 or T2 (or both) with `band` holding `value` (as 1 or 2
    /// instances), or delete it.
    #[derive(Debug, Clone)]
    enum VOp {
        Put {
            id: u8,
            ty: u8,
            value: Value,
            two: bool,
        },
        Delete(u8),
        /// Starts the index of (T2, band) if it does not exist yet.
        Start,
        /// Adds up to this many entities to the index of (T2, band) while
        /// it is being built.
        Backfill(usize),
    }

    fn arb_vop() -> impl Strategy<Value = VOp> {
        let value = prop_oneof![
            (0i64..4).prop_map(|k| json!(k)),
            (0i64..4).prop_map(|k| json!(k as f64)),
            prop::sample::select(vec!["a", "b"]).prop_map(|s| json!(s)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(json!([1, "a", [2]])),
            Just(json!({"x": 1})),
        ];
        prop_oneof![
            6 => (0u8..40, 0u8..4, value, any::<bool>())
                .prop_map(|(id, ty, value, two)| VOp::Put { id, ty, value, two }),
            2 => (0u8..40).prop_map(VOp::Delete),
            1 => Just(VOp::Start),
            1 => (1usize..6).prop_map(VOp::Backfill),
        ]
    }

    proptest! {
        /// Value indexes kept up to date by changes hold what one built
        /// afresh from the final state holds.
        #[test]
        fn value_indexes_follow_changes(ops in prop::collection::vec(arb_vop(), 1..200)) {
            let names = Names::default();
            let (t1, t2, band) = (names.intern("urn:T1"), names.intern("urn:T2"), names.intern("urn:band"));
            let mut t = TenantState::default();
            let idx = t.build_value_index(t1, band);
            t.install_value_index(t1, band, idx);
            let mut seq = 0;
            for op in ops {
                match op {
                    VOp::Put { id, ty, value, two } => {
                        let types = match ty {
                            0 => vec![Iri::from("urn:T1")],
                            1 => vec![Iri::from("urn:T2")],
                            2 => vec![Iri::from("urn:T1"), Iri::from("urn:T2")],
                            _ => vec![],
                        };
                        let mut e = Entity::new(EntityId::new_unchecked(&format!("urn:e{id}")), types, Timestamp(0));
                        let mut list = vec![Attribute::property(value.clone(), Timestamp(0))];
                        if two {
                            let mut other = Attribute::new(
                                if id % 3 == 0 { AttrKind::Relationship } else { AttrKind::Property },
                                json!("urn:x"),
                                Timestamp(0),
                            );
                            other.dataset_id = Some(Iri::from("urn:ds"));
                            list.push(other);
                        }
                        if id % 5 != 0 {
                            e.attrs.insert(Iri::from("urn:band"), list);
                        }
                        t.apply(Prepared::put(&e, &names), &mut seq);
                    }
                    VOp::Delete(id) => t.apply(Prepared::Delete(EntityId::new_unchecked(&format!("urn:e{id}"))), &mut seq),
                    VOp::Start => {
                        t.start_value_index(t2, band);
                    }
                    VOp::Backfill(n) => {
                        let done = t.backfill_value_index(t2, band, n);
                        prop_assert_eq!(done, t.value_index(t2, band).is_some() || !t.has_value_index(t2, band));
                    }
                }
            }
            while !t.backfill_value_index(t2, band, 7) {}
            let mut total = 0;
            for ty in [t1, t2] {
                if let Some(kept) = t.value_index(ty, band) {
                    let fresh = t.build_value_index(ty, band);
                    prop_assert_eq!(kept.dump(), fresh.dump());
                    prop_assert_eq!(kept.entries(), fresh.entries());
                    total += kept.entries();
                }
            }
            prop_assert_eq!(t.value_entries(), total);
            prop_assert_eq!(t.store_value_entries(), total);
        }
    }

    #[test]
    fn indexes_follow_updates_and_deletes() {
        let names = Names::default();
        let mut t = TenantState::default();
        let mut seq = 0;
        let mk = |id: &str, ty: &str, at: Option<[f64; 2]>| {
            let mut e = Entity::new(
                EntityId::new_unchecked(id),
                vec![Iri::from(ty)],
                Timestamp(0),
            );
            if let Some([x, y]) = at {
                e.attrs.insert(
                    Iri::from(core_iri::LOCATION),
                    vec![Attribute::new(
                        AttrKind::GeoProperty,
                        json!({"type":"Point","coordinates":[x,y]}),
                        Timestamp(0),
                    )],
                );
            }
            Prepared::put(&e, &names)
        };
        t.apply(mk("urn:a", "urn:T1", Some([1.0, 1.0])), &mut seq);
        t.apply(mk("urn:b", "urn:T2", Some([5.0, 5.0])), &mut seq);
        let t1 = names.intern("urn:T1");
        let t2 = names.intern("urn:T2");
        assert_eq!(t.seqs_of_types(&[t1]), vec![0]);
        assert_eq!(t.seqs_of_types(&[t1, t2]), vec![0, 1]);
        assert_eq!(t.count_of_types(&[t1, t2]), 2);
        assert_eq!(t.seqs_of_type_from(t2, 0, 9), vec![1]);
        assert_eq!(t.seqs_of_type_from(t2, 2, 9), Vec::<u64>::new());
        assert_eq!(
            t.seqs_in_bbox_below(&[0.0, 0.0, 9.0, 9.0], 3),
            Some(vec![0, 1])
        );
        assert_eq!(t.seqs_in_bbox_below(&[0.0, 0.0, 9.0, 9.0], 2), None);
        assert_eq!(t.seqs_in_bbox(&[0.0, 0.0, 2.0, 2.0]), vec![0]);
        // Update a: new type and location, same sequence.
        t.apply(mk("urn:a", "urn:T2", Some([6.0, 6.0])), &mut seq);
        assert_eq!(t.seqs_of_types(&[t1]), Vec::<u64>::new());
        assert_eq!(t.seqs_of_types(&[t2]), vec![0, 1]);
        assert_eq!(t.seqs_in_bbox(&[0.0, 0.0, 2.0, 2.0]), Vec::<u64>::new());
        assert_eq!(t.seqs_in_bbox(&[4.0, 4.0, 7.0, 7.0]), vec![0, 1]);
        t.apply(Prepared::Delete(EntityId::new_unchecked("urn:b")), &mut seq);
        assert_eq!(t.seqs_of_types(&[t2]), vec![0]);
        assert_eq!(t.seqs_in_bbox(&[4.0, 4.0, 7.0, 7.0]), vec![0]);
        assert_eq!(t.len(), 1);
        // Re-created entities go to the end.
        assert_eq!(t.geo_stale, 2);
        t.apply(mk("urn:b", "urn:T2", None), &mut seq);
        assert_eq!(t.seq_of(&EntityId::new_unchecked("urn:b")), Some(2));
    }
}
