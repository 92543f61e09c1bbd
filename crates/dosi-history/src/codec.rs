//! Attribute instances ↔ tsdb points.
//!
//! The fast path: a `Property` without sub-attributes whose value is a number
//! that survives the trip through `f64`, and whose `observedAt` is in one of
//! the usual UTC spellings, is stored as `Value::Num` plus a *template*
//! number naming its shape (unit code, the spelling of `observedAt`, integer
//! or float). Anything else is stored whole as a JSON document.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use dosi_ngsi::{AttrKind, Attribute, Timestamp};
use dosi_tsdb::{NewPoint, Point, Tsdb, Value};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// The shape of a fast-path instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// `unitCode`.
    pub unit: Option<String>,
    /// How `observedAt` was spelled: 0 absent, 1 seconds, 2 milliseconds, 3 microseconds.
    pub obs: u8,
    /// The value was written as a float (`1.0`), not an integer (`1`).
    pub float: bool,
}

const META_PREFIX: &[u8] = b"t\0";

/// The template table, persisted in the tsdb's meta space.
#[derive(Default)]
pub struct Templates {
    by_shape: RwLock<(HashMap<Shape, u32>, Vec<Shape>)>,
}

impl Templates {
    /// Loads the table.
    pub fn load(db: &Tsdb) -> Self {
        let mut map = HashMap::new();
        let mut list = Vec::new();
        for (k, v) in db.meta_by_prefix(META_PREFIX) {
            let Some(id) = k[META_PREFIX.len()..]
                .try_into()
                .ok()
                .map(u32::from_be_bytes)
            else {
                continue;
            };
            let Ok(shape) = serde_json::from_slice::<Shape>(&v) else {
                continue;
            };
            let idx = id as usize;
            if list.len() <= idx {
                list.resize(
                    idx + 1,
                    Shape {
                        unit: None,
                        obs: 0,
                        float: false,
                    },
                );
            }
            list[idx] = shape.clone();
            map.insert(shape, id);
        }
        Self {
            by_shape: RwLock::new((map, list)),
        }
    }

    /// The template of a shape, without allocating (a short list is
    /// scanned: a city has few distinct units).
    fn find(&self, unit: Option<&str>, obs: u8, float: bool) -> Option<u32> {
        let g = self.by_shape.read();
        if g.1.len() <= 32 {
            return g
                .1
                .iter()
                .position(|s| s.obs == obs && s.float == float && s.unit.as_deref() == unit)
                .map(|i| i as u32);
        }
        g.0.get(&Shape {
            unit: unit.map(String::from),
            obs,
            float,
        })
        .copied()
    }

    fn id(&self, db: &Tsdb, shape: Shape) -> u32 {
        if let Some(id) = self.by_shape.read().0.get(&shape) {
            return *id;
        }
        let mut g = self.by_shape.write();
        if let Some(id) = g.0.get(&shape) {
            return *id;
        }
        let id = g.1.len() as u32;
        let mut key = META_PREFIX.to_vec();
        key.extend_from_slice(&id.to_be_bytes());
        db.put_meta(&key, Some(&serde_json::to_vec(&shape).unwrap_or_default()));
        g.1.push(shape.clone());
        g.0.insert(shape, id);
        id
    }

    fn shape(&self, id: u32) -> Option<Shape> {
        self.by_shape.read().1.get(id as usize).cloned()
    }
}

/// Parses an `observedAt` and tells how it was spelled (see [`Shape::obs`]),
/// 0 when the spelling does not round-trip.
pub fn observed(s: &str) -> Option<(i64, u8)> {
    let t = Timestamp::parse(s).ok()?;
    // The usual spellings are told by their shape (`…:SSZ`, `….fffZ`,
    // `….ffffffZ`); anything else is checked by formatting it back.
    let b = s.as_bytes();
    let usual = b.len() >= 20 && b[10] == b'T' && b[b.len() - 1] == b'Z' && b[4] == b'-';
    let by_shape = match (usual, b.len()) {
        (true, 20) => Some(1),
        (true, 24) if b[19] == b'.' => Some(2),
        (true, 27) if b[19] == b'.' => Some(3),
        _ => None,
    };
    let spelled = by_shape
        .filter(|f| format_observed(t.0, *f).is_some())
        .or_else(|| {
            [1u8, 2, 3]
                .into_iter()
                .find(|f| format_observed(t.0, *f).as_deref() == Some(s))
        })
        .unwrap_or(0);
    Some((t.0, spelled))
}

/// The shortest of the usual spellings that is exact for `us`.
fn canonical_spelling(us: i64) -> u8 {
    if us % 1_000_000 == 0 {
        1
    } else if us % 1_000 == 0 {
        2
    } else {
        3
    }
}

fn format_observed(us: i64, spelling: u8) -> Option<String> {
    let d = DateTime::<Utc>::from_timestamp_micros(us)?;
    let f = match spelling {
        1 if us % 1_000_000 == 0 => SecondsFormat::Secs,
        2 if us % 1_000 == 0 => SecondsFormat::Millis,
        3 => SecondsFormat::Micros,
        _ => return None,
    };
    Some(d.to_rfc3339_opts(f, true))
}

/// The point for one instance recorded at `recorded`.
pub fn encode(tpls: &Templates, db: &Tsdb, a: &Attribute, recorded: i64) -> NewPoint {
    let obs = a.observed_at.as_deref().and_then(observed);
    if let Some(p) = fast(tpls, db, a, recorded, obs) {
        return p;
    }
    let mut doc = a.clone();
    doc.created_at = Timestamp(0);
    doc.modified_at = Timestamp(0);
    doc.dataset_id = None;
    // An `observedAt` the point's time and a spelling give back is left out
    // of the document (`tpl` = the spelling), so that equal values observed
    // at different times are equal documents (`distinctCount` compares
    // documents). Documents with `tpl` 0 keep it inside, as before.
    let mut tpl = 0;
    if let Some((_, s)) = obs.filter(|o| o.1 != 0) {
        doc.observed_at = None;
        tpl = u32::from(s);
    }
    NewPoint {
        recorded,
        observed: obs.map(|o| o.0),
        tpl,
        value: Value::Doc(Arc::from(serde_json::to_vec(&doc).unwrap_or_default())),
    }
}

fn fast(
    tpls: &Templates,
    db: &Tsdb,
    a: &Attribute,
    recorded: i64,
    obs: Option<(i64, u8)>,
) -> Option<NewPoint> {
    if a.kind != AttrKind::Property
        || !a.sub.is_empty()
        || a.lang.is_some()
        || a.object_type.is_some()
    {
        return None;
    }
    let serde_json::Value::Number(n) = &a.value else {
        return None;
    };
    let (x, float) = if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > (1 << 53) {
            return None;
        }
        (i as f64, false)
    } else {
        let x = n.as_f64()?;
        // Only floats that print back the same way stay on the fast path.
        if serde_json::Number::from_f64(x).map(|m| m.to_string()) != Some(n.to_string()) {
            return None;
        }
        (x, true)
    };
    let (observed, spelling) = match (a.observed_at.as_deref(), obs) {
        (None, _) => (None, 0),
        (Some(_), Some((t, s))) if s != 0 => (Some(t), s),
        // A valid but unusual spelling (`.5Z`, `.1234Z`) is given back in
        // the shortest usual one for the same instant: as a document the
        // number would drop out of sum, avg, min, max and stddev.
        (Some(_), Some((t, _))) => (Some(t), canonical_spelling(t)),
        _ => return None,
    };
    let tpl = match tpls.find(a.unit_code.as_deref(), spelling, float) {
        Some(t) => t,
        None => tpls.id(
            db,
            Shape {
                unit: a.unit_code.clone(),
                obs: spelling,
                float,
            },
        ),
    };
    Some(NewPoint {
        recorded,
        observed,
        tpl: tpl + 1,
        value: Value::Num(x),
    })
}

/// A deletion marker of an attribute of `kind` at `at`.
pub fn deletion(kind: AttrKind, at: i64) -> NewPoint {
    NewPoint {
        recorded: at,
        observed: None,
        tpl: kind_index(kind),
        value: Value::Deleted,
    }
}

fn kind_index(k: AttrKind) -> u32 {
    ALL_KINDS.iter().position(|x| *x == k).unwrap_or(0) as u32
}

const ALL_KINDS: [AttrKind; 8] = [
    AttrKind::Property,
    AttrKind::Relationship,
    AttrKind::GeoProperty,
    AttrKind::LanguageProperty,
    AttrKind::VocabProperty,
    AttrKind::JsonProperty,
    AttrKind::ListProperty,
    AttrKind::ListRelationship,
];

/// The attribute a point holds (`created_at` = `modified_at` = recorded);
/// `None` for a point that does not decode.
pub fn decode(tpls: &Templates, p: &Point) -> Option<Attribute> {
    let at = Timestamp(p.recorded);
    match &p.value {
        Value::Num(x) => {
            let shape = tpls.shape(p.tpl.checked_sub(1)?)?;
            let value = if !shape.float && x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
                serde_json::Value::from(*x as i64)
            } else {
                serde_json::Number::from_f64(*x).map(serde_json::Value::Number)?
            };
            let mut a = Attribute::new(AttrKind::Property, value, at);
            a.unit_code = shape.unit;
            a.observed_at = p.observed.and_then(|o| format_observed(o, shape.obs));
            Some(a)
        }
        Value::Doc(bytes) => {
            let mut a: Attribute = serde_json::from_slice(bytes).ok()?;
            a.created_at = at;
            a.modified_at = at;
            if p.tpl != 0 && a.observed_at.is_none() {
                a.observed_at = p
                    .observed
                    .and_then(|o| format_observed(o, u8::try_from(p.tpl).ok()?));
            }
            Some(a)
        }
        Value::Deleted => {
            let kind = ALL_KINDS
                .get(p.tpl as usize)
                .copied()
                .unwrap_or(AttrKind::Property);
            let null = serde_json::Value::String("urn:ngsi-ld:null".into());
            let value = match kind {
                AttrKind::LanguageProperty => {
                    let mut m = serde_json::Map::new();
                    m.insert("@none".into(), null);
                    serde_json::Value::Object(m)
                }
                _ => null,
            };
            Some(Attribute::new(kind, value, at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn observed_slow(s: &str) -> Option<(i64, u8)> {
        let t = Timestamp::parse(s).ok()?;
        let spelled = [1u8, 2, 3]
            .into_iter()
            .find(|f| format_observed(t.0, *f).as_deref() == Some(s))
            .unwrap_or(0);
        Some((t.0, spelled))
    }

    proptest! {
        #[test]
        fn fast_observed_parser_agrees_with_chrono(us in -2_000_000_000_000_000i64..250_000_000_000_000_000i64, spelling in 1u8..=3) {
            let us = match spelling { 1 => us - us.rem_euclid(1_000_000), 2 => us - us.rem_euclid(1_000), _ => us };
            if let Some(text) = format_observed(us, spelling) {
                prop_assert_eq!(observed(&text), observed_slow(&text), "{}", text);
            }
        }

        #[test]
        fn fast_observed_parser_never_accepts_what_chrono_refuses(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,7})?Z?") {
            prop_assert_eq!(observed(&s), observed_slow(&s), "{}", s);
        }
    }
    use serde_json::json;

    fn round_trip(a: &Attribute) -> Attribute {
        let db = Tsdb::open(dosi_tsdb::Config::new("/nonexistent-mem")).unwrap();
        let t = Templates::default();
        let p = encode(&t, &db, a, 5);
        let s = db.ensure_series(b"k");
        let i = db.append(s, p);
        decode(&t, &db.get_instance(s, i).unwrap()).unwrap()
    }

    #[test]
    fn numbers_and_spellings_round_trip() {
        for (v, obs) in [
            (json!(120), Some("2020-08-01T12:03:00Z")),
            (json!(12.5), Some("2020-08-01T12:03:00.120Z")),
            (json!(1.0), None),
            (json!(-3), Some("2020-08-01T12:03:00.000001Z")),
            (json!(9007199254740993u64), None),
        ] {
            let mut a = Attribute::property(v.clone(), Timestamp(5));
            a.observed_at = obs.map(String::from);
            a.unit_code = Some("CEL".into());
            let b = round_trip(&a);
            assert_eq!(b.value.to_string(), v.to_string());
            assert_eq!(b.observed_at, a.observed_at);
            assert_eq!(b.unit_code, a.unit_code);
        }
    }

    #[test]
    fn equal_documents_observed_at_different_times_are_equal_bytes() {
        let db = Tsdb::open(dosi_tsdb::Config::new("/nonexistent-mem")).unwrap();
        let t = Templates::default();
        let doc = |obs: &str| {
            let mut a = Attribute::property(json!("high"), Timestamp(5));
            a.observed_at = Some(obs.into());
            let p = encode(&t, &db, &a, 5);
            let s = db.ensure_series(b"k");
            let i = db.append(s, p.clone());
            assert_eq!(decode(&t, &db.get_instance(s, i).unwrap()).unwrap(), a);
            p.value
        };
        assert_eq!(doc("2020-08-01T12:03:00Z"), doc("2020-08-01T12:04:00.123Z"));
    }

    #[test]
    fn numbers_with_unusual_observed_at_spellings_stay_numbers() {
        let db = Tsdb::open(dosi_tsdb::Config::new("/nonexistent-mem")).unwrap();
        let t = Templates::default();
        for (obs, back) in [
            ("2020-08-01T12:03:00.5Z", "2020-08-01T12:03:00.500Z"),
            ("2020-08-01T12:03:00.1234Z", "2020-08-01T12:03:00.123400Z"),
            ("2020-08-01T12:03:00.000Z", "2020-08-01T12:03:00.000Z"),
        ] {
            let mut a = Attribute::property(json!(7), Timestamp(5));
            a.observed_at = Some(obs.into());
            let p = encode(&t, &db, &a, 5);
            assert_eq!(p.value, Value::Num(7.0), "{obs}");
            let s = db.ensure_series(b"k");
            let i = db.append(s, p);
            let b = decode(&t, &db.get_instance(s, i).unwrap()).unwrap();
            assert_eq!(b.observed_at.as_deref(), Some(back));
        }
    }

    #[test]
    fn other_values_are_documents() {
        let mut a = Attribute::new(AttrKind::Relationship, json!("urn:x:1"), Timestamp(5));
        a.observed_at = Some("2020-08-01T12:03:00+03:00".into());
        let b = round_trip(&a);
        assert_eq!(b, a);
    }
}
