//! Decoding and validating NGSI-LD JSON into the expanded model.
//!
//! Accepts the normalized form and, as clause 4.5.3 allows, the concise form
//! (attribute `type` inferred from its members). Every rule violation is a
//! `BadRequestData` naming the entity, attribute and member involved; nothing
//! here panics on any JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use dosi_ngsi::ids::is_absolute_uri;
use dosi_ngsi::model::Iri;
use dosi_ngsi::query::geo::geometry_from_json;
use dosi_ngsi::{AttrKind, Attribute, EntityId, NgsiError, Result, Timestamp};
use serde_json::{Map, Value};

use super::{Terms, ATTRIBUTE_MEMBERS, ENTITY_MEMBERS, NGSI_LD_NULL};

/// What kind of request body is decoded: merges allow the `urn:ngsi-ld:null`
/// sentinel and partial attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A full entity or attribute: every attribute needs its value member.
    Full,
    /// A merge-patch or partial update: values may be `urn:ngsi-ld:null`, and
    /// an attribute may carry only some members.
    Merge,
}

/// A decoded entity fragment (for creation, replacement, merges, batch items).
#[derive(Debug, Clone)]
pub struct EntityInput {
    /// The entity id, if given.
    pub id: Option<EntityId>,
    /// Expanded types (may be empty in fragments).
    pub types: Vec<Iri>,
    /// Scopes, if the member was present (`Some(vec![])` when explicitly emptied).
    pub scope: Option<Vec<String>>,
    /// Attributes by expanded name, in body order of instances.
    pub attrs: BTreeMap<Iri, Vec<AttrInput>>,
}

/// A decoded attribute instance, or the instruction to delete it.
#[derive(Debug, Clone)]
pub enum AttrInput {
    /// Set (or merge) this instance.
    Set(Attribute),
    /// Delete the instance with this datasetId (merge with `urn:ngsi-ld:null`).
    Delete(Option<Iri>),
}

impl AttrInput {
    /// The datasetId this input addresses.
    pub fn dataset_id(&self) -> Option<&str> {
        match self {
            AttrInput::Set(a) => a.dataset(),
            AttrInput::Delete(d) => d.as_deref(),
        }
    }
}

/// Decodes an entity body. `require_id_type` is true for creations.
pub fn entity(
    v: &Value,
    terms: &dyn Terms,
    mode: Mode,
    require_id_type: bool,
    now: Timestamp,
) -> Result<EntityInput> {
    let obj = v
        .as_object()
        .ok_or_else(|| NgsiError::bad_data("an entity must be a JSON object"))?;
    let id = match obj.get("id").or_else(|| obj.get("@id")) {
        Some(Value::String(s)) => Some(EntityId::parse(s)?),
        Some(other) => {
            return Err(NgsiError::bad_data(format!(
                "entity id must be a string, got {other}"
            )))
        }
        None if require_id_type => return Err(NgsiError::bad_data("entity has no 'id'")),
        None => None,
    };
    let ctx = id.as_ref().map(|i| i.to_string()).unwrap_or_default();
    let types = match obj.get("type").or_else(|| obj.get("@type")) {
        Some(t) => types(t, terms, &ctx)?,
        None if require_id_type => {
            return Err(NgsiError::bad_data(format!("entity '{ctx}' has no 'type'")))
        }
        None => Vec::new(),
    };
    let scope = obj.get("scope").map(|s| scopes(s, &ctx)).transpose()?;
    let mut attrs = BTreeMap::new();
    for (name, value) in obj {
        if ENTITY_MEMBERS.contains(&name.as_str()) {
            continue;
        }
        check_name(name, &ctx)?;
        let iri: Iri = Arc::from(terms.expand(name));
        let list = attribute_instances(value, terms, mode, now, &format!("{ctx}/{name}"))?;
        attrs.insert(iri, list);
    }
    Ok(EntityInput {
        id,
        types,
        scope,
        attrs,
    })
}

/// Decodes a body of attributes (`{ "name": {...}, ... }`) for append/update.
pub fn attributes(v: &Value, terms: &dyn Terms, mode: Mode, now: Timestamp) -> Result<EntityInput> {
    if !v.is_object() {
        return Err(NgsiError::bad_data(
            "the attributes body must be a JSON object",
        ));
    }
    entity(v, terms, mode, false, now)
}

/// Decodes the instances given for one attribute name: one object, or an
/// array of objects (several datasetIds), or a concise value.
pub fn attribute_instances(
    v: &Value,
    terms: &dyn Terms,
    mode: Mode,
    now: Timestamp,
    at: &str,
) -> Result<Vec<AttrInput>> {
    let list: Vec<AttrInput> = match v {
        Value::Array(items) if !items.is_empty() && items.iter().all(is_attribute_object) => items
            .iter()
            .map(|i| attribute(i, terms, mode, now, at))
            .collect::<Result<_>>()?,
        _ => vec![attribute(v, terms, mode, now, at)?],
    };
    let mut seen: Vec<Option<&str>> = Vec::new();
    for a in &list {
        let d = a.dataset_id();
        if seen.contains(&d) {
            return Err(NgsiError::bad_data(format!(
                "attribute '{at}' has two instances with the same datasetId {}",
                d.unwrap_or("(default)")
            )));
        }
        seen.push(d);
    }
    Ok(list)
}

fn is_attribute_object(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| AttrKind::from_name(t).is_some())
            || [
                "value",
                "object",
                "languageMap",
                "vocab",
                "json",
                "valueList",
                "objectList",
            ]
            .iter()
            .any(|k| o.contains_key(*k))
    })
}

/// Decodes one attribute instance.
pub fn attribute(
    v: &Value,
    terms: &dyn Terms,
    mode: Mode,
    now: Timestamp,
    at: &str,
) -> Result<AttrInput> {
    if mode == Mode::Merge && is_null_sentinel(v) {
        return Ok(AttrInput::Delete(None));
    }
    let Some(obj) = v.as_object() else {
        // Concise form: a bare value is a Property.
        if v.is_null() {
            return Err(NgsiError::bad_data(format!(
                "attribute '{at}' has a null value"
            )));
        }
        return Ok(AttrInput::Set(Attribute::property(v.clone(), now)));
    };
    let kind = infer_kind(obj, at)?;
    let Some(kind) = kind else {
        // A concise compound value (an object that is no attribute).
        return Ok(AttrInput::Set(Attribute::property(v.clone(), now)));
    };
    let dataset_id = match obj.get("datasetId") {
        None => None,
        Some(Value::String(s)) if is_absolute_uri(s) => Some(Arc::from(s.as_str())),
        Some(other) => {
            return Err(NgsiError::bad_data(format!(
                "attribute '{at}': datasetId {other} is not a URI"
            )))
        }
    };
    let key = kind.value_key();
    let bare_geometry = kind == AttrKind::GeoProperty && obj.contains_key("coordinates");
    if bare_geometry {
        return Ok(AttrInput::Set(Attribute::new(kind, v.clone(), now)));
    }
    let raw = obj.get(key);
    if mode == Mode::Merge && raw.is_some_and(is_null_sentinel) {
        return Ok(AttrInput::Delete(dataset_id));
    }
    let value = match raw {
        Some(v) => value(kind, v, terms, at)?,
        None if mode == Mode::Merge => Value::Null,
        None => {
            return Err(NgsiError::bad_data(format!(
                "attribute '{at}' of type {} has no '{key}'",
                kind.name()
            )))
        }
    };
    let mut a = Attribute::new(kind, value, now);
    a.dataset_id = dataset_id;
    if let Some(o) = obj.get("observedAt") {
        let s = o.as_str().ok_or_else(|| {
            NgsiError::bad_data(format!("attribute '{at}': observedAt must be a string"))
        })?;
        Timestamp::parse(s).map_err(|e| {
            NgsiError::bad_data(format!("attribute '{at}': observedAt {}", e.detail))
        })?;
        a.observed_at = Some(s.to_string());
    }
    if let Some(u) = obj.get("unitCode") {
        let s = u.as_str().ok_or_else(|| {
            NgsiError::bad_data(format!("attribute '{at}': unitCode must be a string"))
        })?;
        a.unit_code = Some(s.to_string());
    }
    if let Some(t) = obj.get("objectType") {
        if !matches!(kind, AttrKind::Relationship | AttrKind::ListRelationship) {
            return Err(NgsiError::bad_data(format!(
                "attribute '{at}': objectType is only for relationships"
            )));
        }
        a.object_type = Some(expand_vocab(t, terms));
    }
    if let Some(l) = obj.get("lang") {
        a.lang = Some(
            l.as_str()
                .ok_or_else(|| {
                    NgsiError::bad_data(format!("attribute '{at}': lang must be a string"))
                })?
                .to_string(),
        );
    }
    for (name, sv) in obj {
        if ATTRIBUTE_MEMBERS.contains(&name.as_str()) {
            continue;
        }
        check_name(name, at)?;
        let sub_at = format!("{at}.{name}");
        match attribute(sv, terms, mode, now, &sub_at)? {
            AttrInput::Set(s) => {
                a.sub.insert(Arc::from(terms.expand(name)), s);
            }
            AttrInput::Delete(_) => {
                // A null sub-attribute in a merge deletes it: kept as a marker
                // by an empty-typed Property with a Null value.
                let mut marker = Attribute::property(Value::Null, now);
                marker.value = Value::String(NGSI_LD_NULL.into());
                a.sub.insert(Arc::from(terms.expand(name)), marker);
            }
        }
    }
    Ok(AttrInput::Set(a))
}

fn is_null_sentinel(v: &Value) -> bool {
    match v {
        Value::String(s) => s == NGSI_LD_NULL,
        Value::Array(a) => a.len() == 1 && a[0].as_str() == Some(NGSI_LD_NULL),
        _ => false,
    }
}

fn infer_kind(obj: &Map<String, Value>, at: &str) -> Result<Option<AttrKind>> {
    if let Some(t) = obj.get("type") {
        let Some(name) = t.as_str() else {
            return Err(NgsiError::bad_data(format!(
                "attribute '{at}': type must be a string"
            )));
        };
        if let Some(k) = AttrKind::from_name(name) {
            return Ok(Some(k));
        }
        // A bare GeoJSON geometry is a GeoProperty in concise form.
        if obj.contains_key("coordinates")
            && geometry_from_json(&Value::Object(obj.clone())).is_ok()
        {
            return Ok(Some(AttrKind::GeoProperty));
        }
        return Err(NgsiError::bad_data(format!(
            "attribute '{at}': unknown attribute type '{name}'"
        )));
    }
    let kind = if obj.contains_key("object") {
        AttrKind::Relationship
    } else if obj.contains_key("languageMap") {
        AttrKind::LanguageProperty
    } else if obj.contains_key("vocab") {
        AttrKind::VocabProperty
    } else if obj.contains_key("json") {
        AttrKind::JsonProperty
    } else if obj.contains_key("valueList") {
        AttrKind::ListProperty
    } else if obj.contains_key("objectList") {
        AttrKind::ListRelationship
    } else if let Some(v) = obj.get("value") {
        if geometry_from_json(v).is_ok() {
            AttrKind::GeoProperty
        } else {
            AttrKind::Property
        }
    } else {
        return Ok(None);
    };
    Ok(Some(kind))
}

fn value(kind: AttrKind, v: &Value, terms: &dyn Terms, at: &str) -> Result<Value> {
    let bad = |what: &str| Err(NgsiError::bad_data(format!("attribute '{at}': {what}")));
    match kind {
        AttrKind::Property => {
            if v.is_null() {
                return bad("a Property value cannot be null");
            }
            Ok(v.clone())
        }
        AttrKind::GeoProperty => {
            if let Err(e) = geometry_from_json(v) {
                return bad(&format!("invalid GeoJSON geometry: {}", e.detail));
            }
            Ok(v.clone())
        }
        AttrKind::Relationship => {
            let ok = match v {
                Value::String(s) => is_absolute_uri(s),
                Value::Array(a) => {
                    !a.is_empty() && a.iter().all(|x| x.as_str().is_some_and(is_absolute_uri))
                }
                _ => false,
            };
            if !ok {
                return bad("a Relationship object must be a URI or a list of URIs");
            }
            Ok(v.clone())
        }
        AttrKind::LanguageProperty => {
            let Some(m) = v.as_object() else {
                return bad("languageMap must be an object of language tags to strings");
            };
            for (lang, s) in m {
                let ok =
                    s.is_string() || s.as_array().is_some_and(|a| a.iter().all(Value::is_string));
                if !ok || lang.is_empty() {
                    return bad(&format!("languageMap entry '{lang}' must be a string"));
                }
            }
            Ok(v.clone())
        }
        AttrKind::VocabProperty => {
            let ok = v.is_string()
                || v.as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string));
            if !ok {
                return bad("vocab must be a string or a list of strings");
            }
            Ok(expand_vocab(v, terms))
        }
        AttrKind::JsonProperty => {
            if !(v.is_object() || v.is_array()) {
                return bad("json must be a JSON object or array");
            }
            Ok(v.clone())
        }
        AttrKind::ListProperty => {
            let Some(items) = v.as_array() else {
                return bad("valueList must be an array");
            };
            Ok(Value::Array(items.clone()))
        }
        AttrKind::ListRelationship => {
            let Some(items) = v.as_array() else {
                return bad("objectList must be an array");
            };
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                let uri = i.get("object").unwrap_or(i);
                match uri.as_str() {
                    Some(s) if is_absolute_uri(s) => out.push(Value::String(s.to_string())),
                    _ => return bad("objectList items must be URIs or {\"object\": URI}"),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

fn expand_vocab(v: &Value, terms: &dyn Terms) -> Value {
    match v {
        Value::String(s) => Value::String(terms.expand(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| expand_vocab(x, terms)).collect()),
        other => other.clone(),
    }
}

fn types(v: &Value, terms: &dyn Terms, ctx: &str) -> Result<Vec<Iri>> {
    let names: Vec<&str> = match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|t| {
                t.as_str().ok_or_else(|| {
                    NgsiError::bad_data(format!("entity '{ctx}': types must be strings"))
                })
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(NgsiError::bad_data(format!(
                "entity '{ctx}': type must be a string or a non-empty list of strings"
            )))
        }
    };
    let mut out: Vec<Iri> = Vec::with_capacity(names.len());
    for n in names {
        check_name(n, ctx)?;
        let iri: Iri = Arc::from(terms.expand(n));
        if !out.contains(&iri) {
            out.push(iri);
        }
    }
    Ok(out)
}

fn scopes(v: &Value, ctx: &str) -> Result<Vec<String>> {
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    list.into_iter()
        .map(|s| match s.as_str() {
            Some(p) if valid_scope(p) => Ok(p.to_string()),
            _ => Err(NgsiError::bad_data(format!(
                "entity '{ctx}': scope {s} is not a path like /City/District"
            ))),
        })
        .collect()
}

fn valid_scope(p: &str) -> bool {
    p.starts_with('/')
        && (p == "/"
            || p[1..]
                .split('/')
                .all(|seg| !seg.is_empty() && !seg.contains(['#', '+', ' '])))
}

/// Checks an attribute or type name (clause 4.6.2: no characters that break
/// URLs or the query languages).
pub fn check_name(name: &str, ctx: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 512
        || name.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>'
                        | '"'
                        | '\''
                        | '='
                        | ';'
                        | '('
                        | ')'
                        | '\\'
                        | '{'
                        | '}'
                        | '|'
                        | '^'
                        | '`'
                )
        });
    if bad {
        Err(NgsiError::bad_data(format!(
            "'{name}' in '{ctx}' is not a valid name"
        )))
    } else {
        Ok(())
    }
}
