//! Rendering entities from the expanded model in the NGSI-LD output formats
//! (normalized, concise, simplified/keyValues, GeoJSON), compacting names with
//! the request's terms.

use std::collections::HashSet;

use dosi_ngsi::{AttrKind, Attribute, Entity};
use serde_json::{Map, Value};

use super::Terms;

/// The representation asked for with `format` / `options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Every attribute as an object with its `type`.
    #[default]
    Normalized,
    /// Lossless but with inferable members left out (clause 4.5.3).
    Concise,
    /// `keyValues`: attribute name to value only.
    Simplified,
}

/// How to render: format, projection and language.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// The format.
    pub format: Format,
    /// Include `createdAt` / `modifiedAt`.
    pub sys_attrs: bool,
    /// Only these attributes (expanded names); `None` = all.
    pub attrs: Option<HashSet<String>>,
    /// `pick`: only these members (`id`, `type`, `scope` or expanded attribute names).
    pub pick: Option<HashSet<String>>,
    /// `omit`: leave out these members.
    pub omit: Option<HashSet<String>>,
    /// `lang`: render LanguageProperties in this language (`*` = any).
    pub lang: Option<String>,
    /// `datasetId`: only these instances (`None` = the default instance).
    pub datasets: Option<Vec<Option<String>>>,
}

impl EncodeOptions {
    fn keep(&self, member: &str) -> bool {
        self.pick.as_ref().is_none_or(|p| p.contains(member))
            && self.omit.as_ref().is_none_or(|o| !o.contains(member))
    }
    fn keep_attr(&self, iri: &str) -> bool {
        self.attrs.as_ref().is_none_or(|a| a.contains(iri)) && self.keep(iri)
    }
    /// The instances of an attribute that `datasetId` selects.
    fn select<'a>(&self, instances: &'a [Attribute]) -> Vec<&'a Attribute> {
        match &self.datasets {
            None => instances.iter().collect(),
            Some(ds) => instances
                .iter()
                .filter(|a| ds.iter().any(|d| d.as_deref() == a.dataset()))
                .collect(),
        }
    }
}

/// Renders `e` as a JSON object.
pub fn entity(e: &Entity, terms: &dyn Terms, o: &EncodeOptions) -> Value {
    let mut m = Map::new();
    if o.keep("id") {
        m.insert("id".into(), Value::String(e.id.to_string()));
    }
    if o.keep("type") {
        m.insert("type".into(), types(&e.types, terms));
    }
    if !e.scope.is_empty() && o.keep("scope") {
        let s = if e.scope.len() == 1 {
            Value::String(e.scope[0].clone())
        } else {
            Value::Array(e.scope.iter().cloned().map(Value::String).collect())
        };
        m.insert("scope".into(), s);
    }
    if o.sys_attrs && o.format != Format::Simplified {
        m.insert("createdAt".into(), Value::String(e.created_at.to_iso()));
        m.insert("modifiedAt".into(), Value::String(e.modified_at.to_iso()));
    }
    for (name, instances) in &e.attrs {
        if !o.keep_attr(name) || instances.is_empty() {
            continue;
        }
        let instances = o.select(instances);
        if instances.is_empty() {
            continue;
        }
        let rendered: Vec<Value> = instances.iter().map(|a| attribute(a, terms, o)).collect();
        let v = if rendered.len() == 1 {
            rendered.into_iter().next().unwrap_or(Value::Null)
        } else if o.format == Format::Simplified {
            simplified_multi(&instances, rendered)
        } else {
            Value::Array(rendered)
        };
        m.insert(terms.compact(name), v);
    }
    Value::Object(m)
}

/// Writes [`entity`]`(e, terms, o)` as JSON into `out` without building it:
/// the same bytes as `serde_json::to_vec(&entity(e, terms, o))` (tested;
/// decoding guarantees that no attribute is named like a member, the one
/// case where a map would keep only the last of two equal keys),
/// for the hot read paths, where building the tree of maps and serializing
/// it again was the largest cost of a GET after the kernel's.
pub fn write_entity(out: &mut Vec<u8>, e: &Entity, terms: &dyn Terms, o: &EncodeOptions) {
    let mut w = Obj::open(out);
    if o.keep("id") {
        w.key("id");
        write_str(w.out, e.id.as_str());
    }
    if o.keep("type") {
        w.key("type");
        if let [one] = e.types.as_slice() {
            write_str(w.out, &terms.compact(one));
        } else {
            w.out.push(b'[');
            for (i, t) in e.types.iter().enumerate() {
                if i > 0 {
                    w.out.push(b',');
                }
                write_str(w.out, &terms.compact(t));
            }
            w.out.push(b']');
        }
    }
    if !e.scope.is_empty() && o.keep("scope") {
        w.key("scope");
        if let [one] = e.scope.as_slice() {
            write_str(w.out, one);
        } else {
            w.out.push(b'[');
            for (i, s) in e.scope.iter().enumerate() {
                if i > 0 {
                    w.out.push(b',');
                }
                write_str(w.out, s);
            }
            w.out.push(b']');
        }
    }
    if o.sys_attrs && o.format != Format::Simplified {
        w.key("createdAt");
        write_str(w.out, &e.created_at.to_iso());
        w.key("modifiedAt");
        write_str(w.out, &e.modified_at.to_iso());
    }
    for (name, instances) in &e.attrs {
        if !o.keep_attr(name) || instances.is_empty() {
            continue;
        }
        match o.select(instances).as_slice() {
            [] => continue,
            [one] => {
                w.key(&terms.compact(name));
                write_attribute(w.out, one, terms, o);
            }
            many if o.format == Format::Simplified => {
                w.key(&terms.compact(name));
                let rendered = many.iter().map(|a| attribute(a, terms, o)).collect();
                write_json(w.out, &simplified_multi(many, rendered));
            }
            many => {
                w.key(&terms.compact(name));
                w.out.push(b'[');
                for (i, a) in many.iter().enumerate() {
                    if i > 0 {
                        w.out.push(b',');
                    }
                    write_attribute(w.out, a, terms, o);
                }
                w.out.push(b']');
            }
        }
    }
    w.close();
}

/// Writes [`attribute`]`(a, terms, o)` as JSON into `out`.
fn write_attribute(out: &mut Vec<u8>, a: &Attribute, terms: &dyn Terms, o: &EncodeOptions) {
    if o.format == Format::Simplified {
        write_json(out, &simple_value(a, terms, o.lang.as_deref()));
        return;
    }
    // The value member, borrowed unless `lang`, vocab compaction or the
    // object list change it.
    let owned;
    let (kind, key, value, lang) = match (a.kind, o.lang.as_deref()) {
        (AttrKind::LanguageProperty, Some(_))
        | (AttrKind::VocabProperty, _)
        | (AttrKind::ListRelationship, _) => {
            let (kind, key, v, lang) = localized(a, terms, o.lang.as_deref());
            owned = v;
            (kind, key, &owned, lang)
        }
        _ => (a.kind, a.kind.value_key(), &a.value, None),
    };
    let lang = lang.or_else(|| a.lang.clone());
    let concise = o.format == Format::Concise;
    if concise
        && kind == AttrKind::Property
        && lang.is_none()
        && a.object_type.is_none()
        && a.dataset_id.is_none()
        && a.observed_at.is_none()
        && a.unit_code.is_none()
        && !o.sys_attrs
        && a.sub.is_empty()
    {
        // A Property with nothing but its value is the bare value.
        write_json(out, value);
        return;
    }
    let mut w = Obj::open(out);
    if !concise {
        w.key("type");
        write_str(w.out, kind.name());
    }
    w.key(key);
    write_json(w.out, value);
    if let Some(l) = &lang {
        w.key("lang");
        write_str(w.out, l);
    }
    if let Some(t) = &a.object_type {
        w.key("objectType");
        write_json(w.out, &compact_vocab(t, terms));
    }
    if let Some(d) = &a.dataset_id {
        w.key("datasetId");
        write_str(w.out, d.as_ref());
    }
    if let Some(t) = &a.observed_at {
        w.key("observedAt");
        write_str(w.out, t);
    }
    if let Some(u) = &a.unit_code {
        w.key("unitCode");
        write_str(w.out, u);
    }
    if o.sys_attrs {
        w.key("createdAt");
        write_str(w.out, &a.created_at.to_iso());
        w.key("modifiedAt");
        write_str(w.out, &a.modified_at.to_iso());
    }
    for (name, sub) in &a.sub {
        w.key(&terms.compact(name));
        write_attribute(w.out, sub, terms, o);
    }
    w.close();
}

/// A JSON object being written: `{`, then members separated by commas.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }
    /// Starts a member: its key and the colon; the caller writes the value.
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, k);
        self.out.push(b':');
    }
    fn close(self) {
        self.out.push(b'}');
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_json(out: &mut Vec<u8>, v: &Value) {
    // Writing into a Vec cannot fail, and values hold no non-finite numbers.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// keyValues of a multi-instance attribute: `{ "dataset": { datasetId: value } }`
/// is the 1.8 form; the default instance goes under `@none`.
fn simplified_multi(instances: &[&Attribute], rendered: Vec<Value>) -> Value {
    let mut m = Map::new();
    for (a, v) in instances.iter().zip(rendered) {
        m.insert(a.dataset().unwrap_or("@none").to_string(), v);
    }
    let mut outer = Map::new();
    outer.insert("dataset".into(), Value::Object(m));
    Value::Object(outer)
}

/// Renders entity types: a string for one, an array for several.
pub fn types(types: &[dosi_ngsi::model::Iri], terms: &dyn Terms) -> Value {
    if types.len() == 1 {
        Value::String(terms.compact(&types[0]))
    } else {
        Value::Array(
            types
                .iter()
                .map(|t| Value::String(terms.compact(t)))
                .collect(),
        )
    }
}

/// Renders one attribute instance.
pub fn attribute(a: &Attribute, terms: &dyn Terms, o: &EncodeOptions) -> Value {
    if o.format == Format::Simplified {
        return simple_value(a, terms, o.lang.as_deref());
    }
    let mut m = Map::new();
    let (kind, key, value, lang) = localized(a, terms, o.lang.as_deref());
    let concise = o.format == Format::Concise;
    if !concise {
        m.insert("type".into(), Value::String(kind.name().into()));
    }
    m.insert(key.into(), value);
    if let Some(l) = lang.or_else(|| a.lang.clone()) {
        m.insert("lang".into(), Value::String(l));
    }
    if let Some(t) = &a.object_type {
        m.insert("objectType".into(), compact_vocab(t, terms));
    }
    if let Some(d) = &a.dataset_id {
        m.insert("datasetId".into(), Value::String(d.to_string()));
    }
    if let Some(t) = &a.observed_at {
        m.insert("observedAt".into(), Value::String(t.clone()));
    }
    if let Some(u) = &a.unit_code {
        m.insert("unitCode".into(), Value::String(u.clone()));
    }
    if o.sys_attrs {
        m.insert("createdAt".into(), Value::String(a.created_at.to_iso()));
        m.insert("modifiedAt".into(), Value::String(a.modified_at.to_iso()));
    }
    for (name, sub) in &a.sub {
        m.insert(terms.compact(name), attribute(sub, terms, o));
    }
    if concise && kind == AttrKind::Property && m.len() == 1 {
        // A Property with nothing but its value is the bare value.
        return m.remove("value").unwrap_or(Value::Null);
    }
    Value::Object(m)
}

/// The value member of an attribute after `lang` selection: a LanguageProperty
/// asked in one language becomes a Property with `lang` (clause 4.15).
fn localized(
    a: &Attribute,
    terms: &dyn Terms,
    lang: Option<&str>,
) -> (AttrKind, &'static str, Value, Option<String>) {
    match (a.kind, lang) {
        (AttrKind::LanguageProperty, Some(l)) => {
            let (tag, text) = pick_language(&a.value, l);
            (AttrKind::Property, "value", text, tag)
        }
        (AttrKind::VocabProperty, _) => (a.kind, "vocab", compact_vocab(&a.value, terms), None),
        (AttrKind::ListRelationship, _) => {
            let list = a
                .value
                .as_array()
                .map(|l| {
                    l.iter()
                        .map(|o| {
                            let mut m = Map::new();
                            m.insert("object".into(), o.clone());
                            Value::Object(m)
                        })
                        .collect()
                })
                .unwrap_or_default();
            (a.kind, "objectList", Value::Array(list), None)
        }
        _ => (a.kind, a.kind.value_key(), a.value.clone(), None),
    }
}

/// The best text for `lang` (a list like `fr;q=0.5,nl` or `*`) from a language
/// map: by descending weight, the exact tag, then one with the same primary
/// language; then `@none`; then any entry.
fn pick_language(map: &Value, lang: &str) -> (Option<String>, Value) {
    let Some(m) = map.as_object() else {
        return (None, map.clone());
    };
    let mut wanted: Vec<(f32, usize, &str)> = lang
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            (q > 0.0 && !tag.is_empty()).then_some((q, i, tag))
        })
        .collect();
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, w) in &wanted {
        if *w == "*" {
            break;
        }
        if let Some(v) = m.get(*w) {
            return (Some((*w).to_string()), v.clone());
        }
        let primary = w.split('-').next().unwrap_or(w);
        if let Some((k, v)) = m.iter().find(|(k, _)| k.split('-').next() == Some(primary)) {
            return (Some(k.clone()), v.clone());
        }
    }
    if let Some(v) = m.get("@none") {
        return (None, v.clone());
    }
    match m.iter().next() {
        Some((k, v)) => (Some(k.clone()), v.clone()),
        None => (None, Value::Null),
    }
}

/// The simplified (keyValues) value of an attribute.
pub fn simple_value(a: &Attribute, terms: &dyn Terms, lang: Option<&str>) -> Value {
    match a.kind {
        AttrKind::LanguageProperty => match lang {
            Some(l) => pick_language(&a.value, l).1,
            _ => {
                let mut m = Map::new();
                m.insert("languageMap".into(), a.value.clone());
                Value::Object(m)
            }
        },
        AttrKind::VocabProperty => {
            let mut m = Map::new();
            m.insert("vocab".into(), compact_vocab(&a.value, terms));
            Value::Object(m)
        }
        AttrKind::JsonProperty => {
            let mut m = Map::new();
            m.insert("json".into(), a.value.clone());
            Value::Object(m)
        }
        _ => a.value.clone(),
    }
}

fn compact_vocab(v: &Value, terms: &dyn Terms) -> Value {
    match v {
        Value::String(s) => Value::String(terms.compact(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| compact_vocab(x, terms)).collect()),
        other => other.clone(),
    }
}

/// Renders `e` as a GeoJSON Feature (clause 4.5.16): geometry from
/// `geoproperty` (expanded name), properties = the entity in the chosen format.
pub fn feature(e: &Entity, terms: &dyn Terms, o: &EncodeOptions, geoproperty: &str) -> Value {
    let geometry = e
        .attr(geoproperty)
        .filter(|a| a.kind == AttrKind::GeoProperty)
        .map(|a| a.value.clone())
        .unwrap_or(Value::Null);
    let mut props = match entity(e, terms, o) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    props.remove("id");
    let mut m = Map::new();
    m.insert("id".into(), Value::String(e.id.to_string()));
    m.insert("type".into(), Value::String("Feature".into()));
    m.insert("geometry".into(), geometry);
    m.insert("properties".into(), Value::Object(props));
    Value::Object(m)
}

/// Wraps features into a FeatureCollection.
pub fn feature_collection(features: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::String("FeatureCollection".into()));
    m.insert("features".into(), Value::Array(features));
    Value::Object(m)
}
