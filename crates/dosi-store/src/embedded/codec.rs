//! A compact binary encoding of [`Entity`] (without its id) for the in-memory
//! state and the snapshots.
//!
//! Why not keep `Arc<Entity>` resident: an `Attribute` is ~280 bytes before its
//! value, so a million entities of ten attributes need ~3.5 GiB decoded, while
//! this encoding needs ~300 bytes per entity. IRIs that name things (types,
//! attribute and sub-attribute names) are written as indices into a shared,
//! append-only [`Names`] table, which also interns them: decoded entities share
//! one `Arc<str>` per name.
//!
//! Layout (all integers LEB128 varints, signed ones zigzag):
//! entity = types(n, name*) scope(n, str*) created modified attrs(n, (name, n, attribute*)*)
//! attribute = kind:u8 flags:u8 value [dataset] [observedAt] [unitCode] [objectType] [lang]
//!             created (modified - created) [sub(n, (name, attribute)*)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dosi_ngsi::model::{AttrKind, Attribute, Entity, Iri};
use dosi_ngsi::{EntityId, Timestamp};
use parking_lot::RwLock;
use serde_json::{Map, Number, Value};

/// Why a blob could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("entity encoding is invalid: {0}")]
pub struct CodecError(pub &'static str);

type CResult<T> = Result<T, CodecError>;

/// The append-only table of interned names; index = position.
#[derive(Default)]
pub struct Names {
    inner: RwLock<NamesInner>,
}

#[derive(Default)]
struct NamesInner {
    list: Vec<Iri>,
    index: HashMap<Iri, u32>,
}

impl Names {
    /// A table holding `list` in this order (from a snapshot).
    pub fn from_list(list: Vec<Iri>) -> Self {
        let index = list
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Self {
            inner: RwLock::new(NamesInner { list, index }),
        }
    }

    /// The index of `name`, adding it when new.
    pub fn intern(&self, name: &str) -> u32 {
        if let Some(&i) = self.inner.read().index.get(name) {
            return i;
        }
        let mut w = self.inner.write();
        if let Some(&i) = w.index.get(name) {
            return i;
        }
        let i = u32::try_from(w.list.len()).expect("fewer than 2^32 distinct names");
        let arc: Iri = Arc::from(name);
        w.list.push(arc.clone());
        w.index.insert(arc, i);
        i
    }

    /// The index of `name`, if it was ever interned.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.inner.read().index.get(name).copied()
    }

    /// All names, in index order.
    pub fn snapshot(&self) -> Vec<Iri> {
        self.inner.read().list.clone()
    }
}

/// Encodes `e` (its id excepted), interning names into `names`.
pub fn encode(e: &Entity, names: &Names) -> Vec<u8> {
    let mut w = Vec::with_capacity(64 + 40 * e.attrs.len());
    put_len(&mut w, e.types.len());
    for t in &e.types {
        put_var(&mut w, u64::from(names.intern(t)));
    }
    put_len(&mut w, e.scope.len());
    for s in &e.scope {
        put_str(&mut w, s);
    }
    put_ivar(&mut w, e.created_at.0);
    put_ivar(&mut w, e.modified_at.0.wrapping_sub(e.created_at.0));
    put_len(&mut w, e.attrs.len());
    for (name, list) in &e.attrs {
        put_var(&mut w, u64::from(names.intern(name)));
        put_len(&mut w, list.len());
        for a in list {
            encode_attr(&mut w, a, names);
        }
    }
    w
}

const F_DATASET: u8 = 1;
const F_OBSERVED: u8 = 2;
const F_UNIT: u8 = 4;
const F_OBJECT_TYPE: u8 = 8;
const F_LANG: u8 = 16;
const F_SUB: u8 = 32;

fn kind_code(k: AttrKind) -> u8 {
    match k {
        AttrKind::Property => 0,
        AttrKind::Relationship => 1,
        AttrKind::GeoProperty => 2,
        AttrKind::LanguageProperty => 3,
        AttrKind::VocabProperty => 4,
        AttrKind::JsonProperty => 5,
        AttrKind::ListProperty => 6,
        AttrKind::ListRelationship => 7,
    }
}

fn kind_of(c: u8) -> CResult<AttrKind> {
    Ok(match c {
        0 => AttrKind::Property,
        1 => AttrKind::Relationship,
        2 => AttrKind::GeoProperty,
        3 => AttrKind::LanguageProperty,
        4 => AttrKind::VocabProperty,
        5 => AttrKind::JsonProperty,
        6 => AttrKind::ListProperty,
        7 => AttrKind::ListRelationship,
        _ => return Err(CodecError("unknown attribute kind")),
    })
}

fn encode_attr(w: &mut Vec<u8>, a: &Attribute, names: &Names) {
    let mut flags = 0u8;
    for (present, f) in [
        (a.dataset_id.is_some(), F_DATASET),
        (a.observed_at.is_some(), F_OBSERVED),
        (a.unit_code.is_some(), F_UNIT),
        (a.object_type.is_some(), F_OBJECT_TYPE),
        (a.lang.is_some(), F_LANG),
        (!a.sub.is_empty(), F_SUB),
    ] {
        if present {
            flags |= f;
        }
    }
    w.push(kind_code(a.kind));
    w.push(flags);
    encode_value(w, &a.value);
    if let Some(d) = &a.dataset_id {
        put_str(w, d);
    }
    if let Some(s) = &a.observed_at {
        put_str(w, s);
    }
    if let Some(s) = &a.unit_code {
        put_str(w, s);
    }
    if let Some(v) = &a.object_type {
        encode_value(w, v);
    }
    if let Some(s) = &a.lang {
        put_str(w, s);
    }
    put_ivar(w, a.created_at.0);
    put_ivar(w, a.modified_at.0.wrapping_sub(a.created_at.0));
    if !a.sub.is_empty() {
        put_len(w, a.sub.len());
        for (name, sub) in &a.sub {
            put_var(w, u64::from(names.intern(name)));
            encode_attr(w, sub, names);
        }
    }
}

const V_NULL: u8 = 0;
const V_FALSE: u8 = 1;
const V_TRUE: u8 = 2;
const V_UINT: u8 = 3;
const V_NINT: u8 = 4;
const V_FLOAT: u8 = 5;
const V_STR: u8 = 6;
const V_ARRAY: u8 = 7;
const V_OBJECT: u8 = 8;

fn encode_value(w: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => w.push(V_NULL),
        Value::Bool(false) => w.push(V_FALSE),
        Value::Bool(true) => w.push(V_TRUE),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                w.push(V_UINT);
                put_var(w, u);
            } else if let Some(i) = n.as_i64() {
                w.push(V_NINT);
                put_ivar(w, i);
            } else {
                w.push(V_FLOAT);
                // A serde_json Number is always one of u64, i64, f64.
                w.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(s) => {
            w.push(V_STR);
            put_str(w, s);
        }
        Value::Array(a) => {
            w.push(V_ARRAY);
            put_len(w, a.len());
            for x in a {
                encode_value(w, x);
            }
        }
        Value::Object(o) => {
            w.push(V_OBJECT);
            put_len(w, o.len());
            for (k, x) in o {
                put_str(w, k);
                encode_value(w, x);
            }
        }
    }
}

/// Decodes a blob written by [`encode`] for the entity `id`.
pub fn decode(id: &EntityId, blob: &[u8], names: &Names) -> CResult<Entity> {
    decode_with(id, blob, names, None)
}

/// Decodes the entity with only the attributes named by `keep` (name
/// indices): the others are skipped without building their values. Queries
/// use it to evaluate a filter that looks at a few attributes before paying
/// for a full decode of the entities that match.
pub fn decode_only(id: &EntityId, blob: &[u8], names: &Names, keep: &[u32]) -> CResult<Entity> {
    decode_with(id, blob, names, Some(keep))
}

fn decode_with(id: &EntityId, blob: &[u8], names: &Names, keep: Option<&[u32]>) -> CResult<Entity> {
    let table = names.inner.read();
    let mut r = Reader {
        buf: blob,
        names: &table.list,
    };
    let n = r.len()?;
    let mut types = Vec::with_capacity(n);
    for _ in 0..n {
        types.push(r.name()?);
    }
    let n = r.len()?;
    let mut scope = Vec::with_capacity(n);
    for _ in 0..n {
        scope.push(r.string()?);
    }
    let created_at = r.ivar()?;
    let modified_at = created_at.wrapping_add(r.ivar()?);
    let n = r.len()?;
    let mut attrs = BTreeMap::new();
    for _ in 0..n {
        let index = r.name_index()?;
        if keep.is_some_and(|keep| !keep.contains(&index)) {
            let k = r.len()?;
            for _ in 0..k {
                r.skip_attr(0)?;
            }
            continue;
        }
        let name = r.name_at(index)?;
        let k = r.len()?;
        let mut list = Vec::with_capacity(k);
        for _ in 0..k {
            list.push(r.attr(0)?);
        }
        attrs.insert(name, list);
    }
    if !r.buf.is_empty() {
        return Err(CodecError("trailing bytes"));
    }
    Ok(Entity {
        id: id.clone(),
        types,
        scope,
        created_at: Timestamp(created_at),
        modified_at: Timestamp(modified_at),
        attrs,
    })
}

/// The name indices of the entity's types (they lead the blob, so this is cheap).
pub fn decode_type_indices(blob: &[u8]) -> CResult<Vec<u32>> {
    let mut r = Reader {
        buf: blob,
        names: &[],
    };
    let n = r.len()?;
    (0..n).map(|_| r.name_index()).collect()
}

/// A value as [`instance_values`] offers it, borrowed from the blob: the
/// numbers, strings and booleans a value index keeps, and the elements of a
/// top-level array; anything else is `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueRef<'a> {
    /// `true` or `false`.
    Bool(bool),
    /// A number, as `serde_json::Number::as_f64` gives it.
    Num(f64),
    /// A string.
    Str(&'a str),
    /// A top-level array; its elements are never arrays (nested ones are `Other`).
    Array(Vec<ValueRef<'a>>),
    /// `null`, an object or a nested array.
    Other,
}

/// Calls `f(name, kind, value)` for every instance of the attributes in
/// `keep` (name indices), without decoding anything else. The value index
/// reads entities this way on every write, so it builds no `Value`s.
pub fn instance_values<'a>(
    blob: &'a [u8],
    keep: &[u32],
    f: &mut dyn FnMut(u32, AttrKind, ValueRef<'a>),
) -> CResult<()> {
    let mut r = Reader {
        buf: blob,
        names: &[],
    };
    let n = r.len()?;
    for _ in 0..n {
        r.name_index()?;
    }
    let n = r.len()?;
    for _ in 0..n {
        r.skip_str()?;
    }
    r.ivar()?;
    r.ivar()?;
    let n = r.len()?;
    let mut found = 0;
    for _ in 0..n {
        if found == keep.len() {
            break;
        }
        let index = r.name_index()?;
        let k = r.len()?;
        if !keep.contains(&index) {
            for _ in 0..k {
                r.skip_attr(0)?;
            }
            continue;
        }
        found += 1;
        for _ in 0..k {
            let kind = kind_of(r.byte()?)?;
            let flags = r.byte()?;
            let value = r.value_ref(false)?;
            r.skip_attr_tail(flags, 0)?;
            f(index, kind, value);
        }
    }
    Ok(())
}

/// Bounds nesting so a corrupt blob cannot overflow the stack.
const MAX_DEPTH: usize = 128;

struct Reader<'a> {
    buf: &'a [u8],
    names: &'a [Iri],
}

impl Reader<'_> {
    fn byte(&mut self) -> CResult<u8> {
        let (&b, rest) = self.buf.split_first().ok_or(CodecError("truncated"))?;
        self.buf = rest;
        Ok(b)
    }
    fn var(&mut self) -> CResult<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(CodecError("varint too long"))
    }
    fn ivar(&mut self) -> CResult<i64> {
        let u = self.var()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    /// A count; never more than the bytes left, so corrupt input cannot make
    /// us allocate much.
    fn len(&mut self) -> CResult<usize> {
        let n = usize::try_from(self.var()?).map_err(|_| CodecError("length overflow"))?;
        if n > self.buf.len() {
            return Err(CodecError("length beyond end"));
        }
        Ok(n)
    }
    fn bytes(&mut self, n: usize) -> CResult<&[u8]> {
        if n > self.buf.len() {
            return Err(CodecError("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn string(&mut self) -> CResult<String> {
        let n = self.len()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| CodecError("invalid UTF-8"))
    }
    fn name_index(&mut self) -> CResult<u32> {
        u32::try_from(self.var()?).map_err(|_| CodecError("name index overflow"))
    }
    fn name(&mut self) -> CResult<Iri> {
        let i = self.name_index()?;
        self.name_at(i)
    }
    fn name_at(&self, i: u32) -> CResult<Iri> {
        self.names
            .get(i as usize)
            .cloned()
            .ok_or(CodecError("unknown name index"))
    }
    fn skip_str(&mut self) -> CResult<()> {
        let n = self.len()?;
        self.bytes(n).map(drop)
    }
    /// Moves past one attribute as [`Reader::attr`] would read it, building nothing.
    fn skip_attr(&mut self, depth: usize) -> CResult<()> {
        if depth > MAX_DEPTH {
            return Err(CodecError("nesting too deep"));
        }
        kind_of(self.byte()?)?;
        let flags = self.byte()?;
        self.skip_value(0)?;
        self.skip_attr_tail(flags, depth)
    }
    /// Moves past what follows an attribute's value (read up to and including it).
    fn skip_attr_tail(&mut self, flags: u8, depth: usize) -> CResult<()> {
        for f in [F_DATASET, F_OBSERVED, F_UNIT] {
            if flags & f != 0 {
                self.skip_str()?;
            }
        }
        if flags & F_OBJECT_TYPE != 0 {
            self.skip_value(0)?;
        }
        if flags & F_LANG != 0 {
            self.skip_str()?;
        }
        self.var()?;
        self.var()?;
        if flags & F_SUB != 0 {
            let n = self.len()?;
            for _ in 0..n {
                self.name_index()?;
                self.skip_attr(depth + 1)?;
            }
        }
        Ok(())
    }
    /// Moves past one value as [`Reader::value`] would read it, building nothing.
    fn skip_value(&mut self, depth: usize) -> CResult<()> {
        if depth > MAX_DEPTH {
            return Err(CodecError("nesting too deep"));
        }
        match self.byte()? {
            V_NULL | V_FALSE | V_TRUE => {}
            V_UINT | V_NINT => {
                self.var()?;
            }
            V_FLOAT => {
                self.bytes(8)?;
            }
            V_STR => self.skip_str()?,
            V_ARRAY => {
                let n = self.len()?;
                for _ in 0..n {
                    self.skip_value(depth + 1)?;
                }
            }
            V_OBJECT => {
                let n = self.len()?;
                for _ in 0..n {
                    self.skip_str()?;
                    self.skip_value(depth + 1)?;
                }
            }
            _ => return Err(CodecError("unknown value tag")),
        }
        Ok(())
    }
    fn attr(&mut self, depth: usize) -> CResult<Attribute> {
        if depth > MAX_DEPTH {
            return Err(CodecError("nesting too deep"));
        }
        let kind = kind_of(self.byte()?)?;
        let flags = self.byte()?;
        let value = self.value(0)?;
        let dataset_id = if flags & F_DATASET != 0 {
            Some(Iri::from(self.string()?))
        } else {
            None
        };
        let observed_at = self.opt_string(flags, F_OBSERVED)?;
        let unit_code = self.opt_string(flags, F_UNIT)?;
        let object_type = if flags & F_OBJECT_TYPE != 0 {
            Some(self.value(0)?)
        } else {
            None
        };
        let lang = self.opt_string(flags, F_LANG)?;
        let created_at = self.ivar()?;
        let modified_at = created_at.wrapping_add(self.ivar()?);
        let mut sub = BTreeMap::new();
        if flags & F_SUB != 0 {
            let n = self.len()?;
            for _ in 0..n {
                let name = self.name()?;
                sub.insert(name, self.attr(depth + 1)?);
            }
        }
        Ok(Attribute {
            kind,
            value,
            dataset_id,
            observed_at,
            unit_code,
            object_type,
            lang,
            created_at: Timestamp(created_at),
            modified_at: Timestamp(modified_at),
            sub,
        })
    }
    fn opt_string(&mut self, flags: u8, f: u8) -> CResult<Option<String>> {
        if flags & f != 0 {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }
    fn value(&mut self, depth: usize) -> CResult<Value> {
        if depth > MAX_DEPTH {
            return Err(CodecError("nesting too deep"));
        }
        Ok(match self.byte()? {
            V_NULL => Value::Null,
            V_FALSE => Value::Bool(false),
            V_TRUE => Value::Bool(true),
            V_UINT => Value::Number(self.var()?.into()),
            V_NINT => Value::Number(self.ivar()?.into()),
            V_FLOAT => {
                let b: [u8; 8] = self
                    .bytes(8)?
                    .try_into()
                    .map_err(|_| CodecError("truncated"))?;
                Value::Number(
                    Number::from_f64(f64::from_le_bytes(b))
                        .ok_or(CodecError("non-finite number"))?,
                )
            }
            V_STR => Value::String(self.string()?),
            V_ARRAY => {
                let n = self.len()?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            V_OBJECT => {
                let n = self.len()?;
                let mut o = Map::with_capacity(n);
                for _ in 0..n {
                    let k = self.string()?;
                    o.insert(k, self.value(depth + 1)?);
                }
                Value::Object(o)
            }
            _ => return Err(CodecError("unknown value tag")),
        })
    }
}

impl<'a> Reader<'a> {
    /// A string borrowed from the blob.
    fn str_ref(&mut self) -> CResult<&'a str> {
        let n = self.len()?;
        let buf: &'a [u8] = self.buf;
        let (head, rest) = buf.split_at(n);
        self.buf = rest;
        std::str::from_utf8(head).map_err(|_| CodecError("invalid UTF-8"))
    }
    /// A value as [`ValueRef`]; `nested` inside a top-level array.
    fn value_ref(&mut self, nested: bool) -> CResult<ValueRef<'a>> {
        Ok(match self.byte()? {
            V_NULL => ValueRef::Other,
            V_FALSE => ValueRef::Bool(false),
            V_TRUE => ValueRef::Bool(true),
            V_UINT => ValueRef::Num(self.var()? as f64),
            V_NINT => ValueRef::Num(self.ivar()? as f64),
            V_FLOAT => {
                let b: [u8; 8] = self
                    .bytes(8)?
                    .try_into()
                    .map_err(|_| CodecError("truncated"))?;
                let v = f64::from_le_bytes(b);
                if !v.is_finite() {
                    return Err(CodecError("non-finite number"));
                }
                ValueRef::Num(v)
            }
            V_STR => ValueRef::Str(self.str_ref()?),
            V_ARRAY if !nested => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value_ref(true)?);
                }
                ValueRef::Array(items)
            }
            V_ARRAY => {
                let n = self.len()?;
                for _ in 0..n {
                    self.skip_value(1)?;
                }
                ValueRef::Other
            }
            V_OBJECT => {
                let n = self.len()?;
                for _ in 0..n {
                    self.skip_str()?;
                    self.skip_value(1)?;
                }
                ValueRef::Other
            }
            _ => return Err(CodecError("unknown value tag")),
        })
    }
}

pub(crate) fn put_var(w: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        w.push((v as u8) | 0x80);
        v >>= 7;
    }
    w.push(v as u8);
}

fn put_ivar(w: &mut Vec<u8>, v: i64) {
    put_var(w, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_len(w: &mut Vec<u8>, n: usize) {
    put_var(w, n as u64);
}

pub(crate) fn put_str(w: &mut Vec<u8>, s: &str) {
    put_len(w, s.len());
    w.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn sample() -> Entity {
        let mut e = Entity::new(
            EntityId::new_unchecked("urn:ngsi-ld:Vehicle:A1"),
            vec![Iri::from("https://example.org/Vehicle")],
            Timestamp(1_714_557_600_000_000),
        );
        e.scope = vec!["/Seoul/Gangnam".into()];
        e.modified_at = Timestamp(1_714_557_600_000_123);
        let mut a = Attribute::property(json!(21.5), Timestamp(5));
        a.unit_code = Some("CEL".into());
        a.observed_at = Some("2024-05-01T10:00:00Z".into());
        a.sub.insert(
            Iri::from("https://example.org/accuracy"),
            Attribute::property(json!(-3), Timestamp(-7)),
        );
        let mut b = Attribute::new(AttrKind::Relationship, json!("urn:x:1"), Timestamp(9));
        b.dataset_id = Some(Iri::from("urn:ds:1"));
        b.object_type = Some(json!(["https://example.org/Thing"]));
        b.lang = Some("ko".into());
        let geo = Attribute::new(
            AttrKind::GeoProperty,
            json!({"type": "Point", "coordinates": [127.0, 37.5], "big": u64::MAX, "n": null, "t": true}),
            Timestamp(0),
        );
        e.attrs
            .insert(Iri::from("https://example.org/temp"), vec![a]);
        e.attrs
            .insert(Iri::from("https://example.org/owner"), vec![b.clone(), b]);
        e.attrs
            .insert(Iri::from(dosi_ngsi::model::core_iri::LOCATION), vec![geo]);
        e
    }

    #[test]
    fn round_trip_and_interning() {
        let names = Names::default();
        let e = sample();
        let blob = encode(&e, &names);
        let back = decode(&e.id, &blob, &names).unwrap();
        assert_eq!(back, e);
        let again = decode(&e.id, &blob, &names).unwrap();
        assert!(Arc::ptr_eq(&back.types[0], &again.types[0]));
        assert_eq!(
            decode_type_indices(&blob).unwrap(),
            vec![names.intern("https://example.org/Vehicle")]
        );
        // Names survive a snapshot of the table.
        let copy = Names::from_list(names.snapshot());
        assert_eq!(decode(&e.id, &blob, &copy).unwrap(), e);
    }

    /// `decode_only` keeps exactly the named attributes and everything else.
    fn check_only(keep: &[&str]) {
        let names = Names::default();
        let e = sample();
        let blob = encode(&e, &names);
        let idx: Vec<u32> = keep.iter().map(|n| names.intern(n)).collect();
        let mut expected = e.clone();
        expected.attrs.retain(|k, _| keep.contains(&k.as_ref()));
        assert_eq!(
            decode_only(&e.id, &blob, &names, &idx).unwrap(),
            expected,
            "{keep:?}"
        );
    }

    #[test]
    fn partial_decodes() {
        check_only(&[]);
        check_only(&["https://example.org/temp"]);
        check_only(&["https://example.org/owner"]);
        check_only(&[dosi_ngsi::model::core_iri::LOCATION]);
        check_only(&[
            "https://example.org/owner",
            dosi_ngsi::model::core_iri::LOCATION,
        ]);
        check_only(&["urn:not-an-attribute"]);
    }

    #[test]
    fn truncated_blobs_are_errors() {
        let names = Names::default();
        let e = sample();
        let blob = encode(&e, &names);
        for cut in 0..blob.len() {
            assert!(decode(&e.id, &blob[..cut], &names).is_err(), "cut {cut}");
            assert!(
                decode_only(&e.id, &blob[..cut], &names, &[]).is_err(),
                "cut {cut}"
            );
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-z]{0,4}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn values_round_trip(v in arb_value(), t in any::<i64>(), m in any::<i64>()) {
            let names = Names::default();
            let mut e = sample();
            e.created_at = Timestamp(t);
            e.modified_at = Timestamp(m);
            e.attrs.insert(Iri::from("urn:v"), vec![Attribute::property(v, Timestamp(m))]);
            let blob = encode(&e, &names);
            prop_assert_eq!(decode(&e.id, &blob, &names).unwrap(), e.clone());
            // Skipping an attribute reads exactly its bytes.
            let v = names.intern("urn:v");
            let only = decode_only(&e.id, &blob, &names, &[v]).unwrap();
            prop_assert_eq!(only.attrs.len(), 1);
            prop_assert_eq!(&only.attrs["urn:v"], &e.attrs["urn:v"]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..256)) {
            let names = Names::default();
            names.intern("urn:a");
            let _ = decode(&EntityId::new_unchecked("urn:x"), &b, &names);
            let _ = decode_only(&EntityId::new_unchecked("urn:x"), &b, &names, &[0]);
            let _ = decode_type_indices(&b);
        }
    }
}
