//! Decoding and validating NGSI-LD JSON into the expanded model.
//!
//! Accepts the normalized form and, as clause 4.5.3 allows, the concise form
//! (attribute `type` inferred from its members). Every rule violation is a
//! `BadRequestData` naming the entity, attribute and member involved; nothing
//! here panics on any JSON.
//!
//! The rules enforced beyond the shape of each attribute type:
//! - names follow clause 4.6.2 and core non-reified terms are no attribute
//!   names (4.5.1); no attribute carries an embedded `@context` (5.5.7);
//! - each attribute type carries only its own value member, never the
//!   output-only `previous*` members, and only `ngsildproof` carries the
//!   sealed members (4.5.2.2, 4.5.3.2, 4.5.21, 4.5.24);
//! - DateTimes end in `Z` (4.6.3); geometries exclude GeometryCollection and
//!   may come as a JSON string (4.7.2); `location` is a GeoProperty (4.7.1);
//! - the NGSI-LD Null (`urn:ngsi-ld:null`) only appears where a partial update
//!   or merge deletes something, and inside compound values only in merges
//!   (5.2.1, 5.5.4).

use std::collections::BTreeMap;
use std::sync::Arc;

use dosi_ngsi::ids::is_absolute_uri;
use dosi_ngsi::model::{core_iri, Iri, NGSI_LD_BASE};
use dosi_ngsi::query::geo::geometry_from_json;
use dosi_ngsi::{AttrKind, Attribute, EntityId, NgsiError, Result, Timestamp};
use serde_json::{Map, Value};

use super::{Terms, ATTRIBUTE_MEMBERS, ENTITY_MEMBERS, NGSI_LD_NULL};

/// Expanded name of the data-integrity proof Property (clause 4.5.2.2).
pub const NGSILD_PROOF: &str = "https://uri.etsi.org/ngsi-ld/ngsildproof";
/// Expanded name under which `ngsildproof`'s non-reified `entityIdSealed` is
/// kept, as a sub-attribute whose value is the sealed id.
pub const ENTITY_ID_SEALED: &str = "https://uri.etsi.org/ngsi-ld/entityIdSealed";
/// Expanded name under which `ngsildproof`'s non-reified `entityTypeSealed` is
/// kept, as a sub-attribute whose value is the expanded sealed type.
pub const ENTITY_TYPE_SEALED: &str = "https://uri.etsi.org/ngsi-ld/entityTypeSealed";

/// What kind of request body is decoded: where the NGSI-LD Null may appear
/// and whether attributes may be partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A full entity or attribute (create, replace, append): every attribute
    /// needs its value member and the NGSI-LD Null is refused everywhere.
    Full,
    /// A merge-patch (clause 5.6.17, 5.5.12): values may be `urn:ngsi-ld:null`,
    /// also as keys inside compound Property values (RFC 7396 semantics), and
    /// an attribute may carry only some members.
    Merge,
    /// A partial attribute update (clause 5.6.4): like [`Mode::Merge`], but the
    /// NGSI-LD Null may only replace whole members, never keys inside a value.
    Partial,
}

impl Mode {
    /// The NGSI-LD Null may delete an attribute, sub-attribute or member.
    fn allows_null(self) -> bool {
        self != Mode::Full
    }
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
// Nearly every input is a `Set`; boxing it would add an allocation per
// attribute to save space only in the rare deletions.
#[allow(clippy::large_enum_variant)]
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
        Some(Value::String(s)) if s == NGSI_LD_NULL => {
            return Err(NgsiError::bad_data(
                "the NGSI-LD Null 'urn:ngsi-ld:null' is no entity id",
            ))
        }
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
    let d = Decoder { terms, mode, now };
    let mut attrs = BTreeMap::new();
    for (name, value) in obj {
        if ENTITY_MEMBERS.contains(&name.as_str()) {
            continue;
        }
        check_name(name, &ctx)?;
        let iri = terms.expand(name);
        check_not_reserved(name, &iri, &ctx)?;
        let list = d.instances(value, name, &iri, &format!("{ctx}/{name}"))?;
        attrs.insert(Arc::from(iri), list);
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

/// Decodes the instances given for one attribute: one object, or an array
/// of objects (several datasetIds), or a concise value. `at` is the attribute
/// name as the request gave it (e.g. from the path of a partial update).
pub fn attribute_instances(
    v: &Value,
    terms: &dyn Terms,
    mode: Mode,
    now: Timestamp,
    at: &str,
) -> Result<Vec<AttrInput>> {
    let iri = terms.expand(at);
    Decoder { terms, mode, now }.instances(v, at, &iri, at)
}

/// Decodes one attribute instance; `at` is the attribute name, as for
/// [`attribute_instances`].
pub fn attribute(
    v: &Value,
    terms: &dyn Terms,
    mode: Mode,
    now: Timestamp,
    at: &str,
) -> Result<AttrInput> {
    let role = Role::of(at, &terms.expand(at));
    Decoder { terms, mode, now }.attribute(v, role, at)
}

/// What an attribute's name implies about its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Any attribute without special rules.
    Plain,
    /// `location`, `observationSpace`, `operationSpace`: GeoProperties (4.7.1).
    Geo,
    /// `ngsildproof`: a Property with a proof object and the sealed members.
    Proof,
    /// A sub-attribute (no name-implied rules apply).
    Sub,
}

impl Role {
    fn of(name: &str, iri: &str) -> Self {
        let geo = [
            core_iri::LOCATION,
            core_iri::OBSERVATION_SPACE,
            core_iri::OPERATION_SPACE,
        ];
        if geo.contains(&iri) || ["location", "observationSpace", "operationSpace"].contains(&name)
        {
            Role::Geo
        } else if iri == NGSILD_PROOF || name == "ngsildproof" {
            Role::Proof
        } else {
            Role::Plain
        }
    }
}

/// The value members, one per attribute type.
const VALUE_MEMBERS: &[&str] = &[
    "value",
    "object",
    "languageMap",
    "vocab",
    "json",
    "valueList",
    "objectList",
];

/// Members only ever produced by the broker (showChanges in notifications).
const OUTPUT_ONLY_MEMBERS: &[&str] = &[
    "previousValue",
    "previousObject",
    "previousLanguageMap",
    "previousVocab",
    "previousJson",
    "previousValueList",
    "previousObjectList",
];

/// The members only `ngsildproof` may carry.
const SEALED_MEMBERS: &[&str] = &["entityIdSealed", "entityTypeSealed"];

/// Metadata members that make an object a partial attribute in merges even
/// without a type or value member.
const META_MEMBERS: &[&str] = &["observedAt", "unitCode", "datasetId", "objectType", "lang"];

/// Core terms defined as non-reified (members of attributes, not attributes
/// themselves), which clause 4.5.1 forbids as attribute names.
const RESERVED_TERMS: &[&str] = &[
    "datasetId",
    "instanceId",
    "observedAt",
    "unitCode",
    "value",
    "object",
    "languageMap",
    "vocab",
    "json",
    "valueList",
    "objectList",
    "objectType",
    "valueType",
    "lang",
    "previousValue",
    "previousObject",
    "previousLanguageMap",
    "previousVocab",
    "previousJson",
    "previousValueList",
    "previousObjectList",
    "entityIdSealed",
    "entityTypeSealed",
];

/// The same terms as the core context expands them (suffixes of the core base).
const RESERVED_IRI_SUFFIXES: &[&str] = &[
    "datasetId",
    "instanceId",
    "observedAt",
    "unitCode",
    "hasValue",
    "hasObject",
    "hasLanguageMap",
    "hasVocab",
    "hasJSON",
    "hasValueList",
    "hasObjectList",
    "hasObjectType",
    "hasValueType",
    "entityIdSealed",
    "entityTypeSealed",
];

fn check_not_reserved(name: &str, iri: &str, ctx: &str) -> Result<()> {
    let core = iri
        .strip_prefix(NGSI_LD_BASE)
        .is_some_and(|s| RESERVED_IRI_SUFFIXES.contains(&s));
    if core || RESERVED_TERMS.contains(&name) || iri.starts_with('@') {
        return Err(NgsiError::bad_data(format!(
            "entity '{ctx}': '{name}' is a reserved NGSI-LD term and cannot name an attribute"
        )));
    }
    Ok(())
}

/// One request's decoding settings.
struct Decoder<'a> {
    terms: &'a dyn Terms,
    mode: Mode,
    now: Timestamp,
}

impl Decoder<'_> {
    fn instances(&self, v: &Value, name: &str, iri: &str, at: &str) -> Result<Vec<AttrInput>> {
        let role = Role::of(name, iri);
        let list: Vec<AttrInput> = match v {
            Value::Array(items) if !items.is_empty() && items.iter().all(is_attribute_object) => {
                items
                    .iter()
                    .map(|i| self.attribute(i, role, at))
                    .collect::<Result<_>>()?
            }
            _ => vec![self.attribute(v, role, at)?],
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

    fn attribute(&self, v: &Value, role: Role, at: &str) -> Result<AttrInput> {
        let bad = |what: &str| Err(NgsiError::bad_data(format!("attribute '{at}': {what}")));
        if is_null_sentinel(v) {
            if self.mode.allows_null() {
                return Ok(AttrInput::Delete(None));
            }
            return bad(NULL_REFUSED);
        }
        let Some(obj) = v.as_object() else {
            // Concise form: a bare value is a Property (or, for a geo name, a
            // geometry encoded as a JSON string).
            if v.is_null() {
                return bad("a null value");
            }
            if role == Role::Geo {
                let g = self.geometry(v, at)?;
                return Ok(AttrInput::Set(Attribute::new(
                    AttrKind::GeoProperty,
                    g,
                    self.now,
                )));
            }
            self.check_compound_nulls(v, at)?;
            return Ok(AttrInput::Set(Attribute::property(v.clone(), self.now)));
        };
        if obj.contains_key("@context") {
            return bad("an attribute cannot embed an @context (clause 5.5.7)");
        }
        let Some(kind) = self.infer_kind(obj, at)? else {
            // A concise compound value (an object that is no attribute).
            if role == Role::Geo {
                return bad("must be a GeoProperty with a GeoJSON geometry");
            }
            self.check_compound_nulls(v, at)?;
            return Ok(AttrInput::Set(Attribute::property(v.clone(), self.now)));
        };
        if kind == AttrKind::GeoProperty && obj.contains_key("coordinates") {
            // A bare GeoJSON geometry in concise form (infer_kind vetted it).
            return Ok(AttrInput::Set(Attribute::new(kind, v.clone(), self.now)));
        }
        // A geo name's concise value is a geometry, possibly string-encoded.
        let kind = if role == Role::Geo && !obj.contains_key("type") && obj.contains_key("value") {
            AttrKind::GeoProperty
        } else {
            kind
        };
        check_members(kind, obj, role, at)?;
        let dataset_id = match obj.get("datasetId") {
            None => None,
            // Clause 4.5.5.1: "@none" names the default instance.
            Some(Value::String(s)) if s == "@none" => None,
            Some(Value::String(s)) if is_absolute_uri(s) => Some(Arc::from(s.as_str())),
            Some(other) => return bad(&format!("datasetId {other} is not a URI")),
        };
        let key = kind.value_key();
        let raw = obj.get(key);
        // A LanguageProperty is deleted with `"languageMap": {"@none": "urn:ngsi-ld:null"}`.
        let null_language_map = kind == AttrKind::LanguageProperty
            && raw
                .and_then(Value::as_object)
                .is_some_and(|m| m.len() == 1 && m.get("@none").is_some_and(is_null_sentinel));
        if raw.is_some_and(is_null_sentinel) || null_language_map {
            if self.mode.allows_null() {
                return Ok(AttrInput::Delete(dataset_id));
            }
            return bad(NULL_REFUSED);
        }
        let value = match raw {
            Some(v) => self.value(kind, v, role, at)?,
            None if self.mode.allows_null() => Value::Null,
            None => return bad(&format!("type {} has no '{key}'", kind.name())),
        };
        if role == Role::Geo
            && kind != AttrKind::GeoProperty
            && (obj.contains_key("type") || !value.is_null())
        {
            return bad(&format!("must be a GeoProperty, not a {}", kind.name()));
        }
        if role == Role::Proof && kind != AttrKind::Property {
            return bad("ngsildproof must be a Property");
        }
        let mut a = Attribute::new(kind, value, self.now);
        a.dataset_id = dataset_id;
        if let Some(o) = obj.get("observedAt") {
            a.observed_at = Some(observed_at(o, at)?);
        }
        if let Some(u) = obj.get("unitCode") {
            let s = u.as_str().ok_or_else(|| {
                NgsiError::bad_data(format!("attribute '{at}': unitCode must be a string"))
            })?;
            a.unit_code = Some(s.to_string());
        }
        if let Some(t) = obj.get("objectType") {
            if !matches!(kind, AttrKind::Relationship | AttrKind::ListRelationship) {
                return bad("objectType is only for relationships");
            }
            a.object_type = Some(expand_vocab(t, self.terms));
        }
        if let Some(l) = obj.get("lang") {
            let s = l.as_str().ok_or_else(|| {
                NgsiError::bad_data(format!("attribute '{at}': lang must be a string"))
            })?;
            a.lang = Some(s.to_string());
        }
        if role == Role::Proof {
            self.sealed_members(obj, &mut a, at)?;
        }
        for (name, sv) in obj {
            if ATTRIBUTE_MEMBERS.contains(&name.as_str()) || SEALED_MEMBERS.contains(&name.as_str())
            {
                continue;
            }
            check_name(name, at)?;
            let sub_at = format!("{at}.{name}");
            let iri: Iri = Arc::from(self.terms.expand(name));
            match self.attribute(sv, Role::Sub, &sub_at)? {
                AttrInput::Set(s) => {
                    a.sub.insert(iri, s);
                }
                AttrInput::Delete(_) => {
                    // A null sub-attribute in a merge deletes it: kept as a
                    // marker, a Property whose value is the null sentinel.
                    let marker = Attribute::property(Value::String(NGSI_LD_NULL.into()), self.now);
                    a.sub.insert(iri, marker);
                }
            }
        }
        Ok(AttrInput::Set(a))
    }

    /// The attribute type named by `type` or implied by the members present.
    fn infer_kind(&self, obj: &Map<String, Value>, at: &str) -> Result<Option<AttrKind>> {
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
            if v.is_object() && geometry_from_json(v).is_ok() {
                AttrKind::GeoProperty
            } else {
                AttrKind::Property
            }
        } else if self.mode == Mode::Partial
            || self.mode.allows_null() && META_MEMBERS.iter().any(|m| obj.contains_key(*m))
        {
            // In a partial update an object without a value member is a
            // fragment (sub-attributes, metadata); in merges one with metadata is.
            // A merge fragment that only changes metadata (e.g. observedAt):
            // its kind is unknown and its value absent (Null), which the
            // merge leaves untouched.
            AttrKind::Property
        } else {
            return Ok(None);
        };
        Ok(Some(kind))
    }

    /// Validates and normalizes the value member of an attribute of `kind`.
    fn value(&self, kind: AttrKind, v: &Value, role: Role, at: &str) -> Result<Value> {
        let bad = |what: &str| Err(NgsiError::bad_data(format!("attribute '{at}': {what}")));
        match kind {
            AttrKind::Property => {
                if v.is_null() {
                    return bad("a Property value cannot be null");
                }
                if role == Role::Proof && !v.is_object() {
                    return bad("the ngsildproof value must be a proof object");
                }
                self.check_compound_nulls(v, at)?;
                Ok(v.clone())
            }
            AttrKind::GeoProperty => self.geometry(v, at),
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
                self.check_compound_nulls(v, at)?;
                Ok(v.clone())
            }
            AttrKind::LanguageProperty => {
                let Some(m) = v.as_object() else {
                    return bad("languageMap must be an object of language tags to strings");
                };
                for (lang, s) in m {
                    let ok = s.is_string()
                        || s.as_array().is_some_and(|a| a.iter().all(Value::is_string));
                    if !ok || lang.is_empty() {
                        return bad(&format!("languageMap entry '{lang}' must be a string"));
                    }
                    // {"@none": "urn:ngsi-ld:null"} deletes in patches only (4.6.5).
                    if !self.mode.allows_null() && is_null_sentinel(s) {
                        return bad(NULL_REFUSED);
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
                self.check_compound_nulls(v, at)?;
                Ok(expand_vocab(v, self.terms))
            }
            AttrKind::JsonProperty => {
                // Raw JSON, never interpreted: no null scan either.
                if !(v.is_object() || v.is_array()) {
                    return bad("json must be a JSON object or array");
                }
                Ok(v.clone())
            }
            AttrKind::ListProperty => {
                let Some(items) = v.as_array() else {
                    return bad("valueList must be an array");
                };
                self.check_compound_nulls(v, at)?;
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
                        Some(s) if s == NGSI_LD_NULL => return bad(NULL_REFUSED),
                        Some(s) if is_absolute_uri(s) => out.push(Value::String(s.to_string())),
                        _ => return bad("objectList items must be URIs or {\"object\": URI}"),
                    }
                }
                Ok(Value::Array(out))
            }
        }
    }

    /// A GeoProperty value: a GeoJSON geometry other than GeometryCollection
    /// (clause 4.6.3), given as an object or as a JSON string encoding one
    /// (clause 4.7.2), returned as the object.
    fn geometry(&self, v: &Value, at: &str) -> Result<Value> {
        let bad = |what: &str| Err(NgsiError::bad_data(format!("attribute '{at}': {what}")));
        let g = match v {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(g @ Value::Object(_)) => g,
                _ => return bad("a GeoProperty string must encode a GeoJSON geometry object"),
            },
            other => other.clone(),
        };
        if g.get("type").and_then(Value::as_str) == Some("GeometryCollection") {
            return bad("a GeometryCollection is not a supported GeoProperty value");
        }
        if let Err(e) = geometry_from_json(&g) {
            return bad(&format!("invalid GeoJSON geometry: {}", e.detail));
        }
        Ok(g)
    }

    /// Refuses the NGSI-LD Null nested in a compound value, except in merges,
    /// where it removes that key (clause 5.5.4 and 5.5.12).
    fn check_compound_nulls(&self, v: &Value, at: &str) -> Result<()> {
        if self.mode == Mode::Merge || !contains_null_sentinel(v) {
            return Ok(());
        }
        Err(NgsiError::bad_data(format!(
            "attribute '{at}': {NULL_REFUSED} (inside a value it is only allowed in merges)"
        )))
    }

    /// Keeps `ngsildproof`'s non-reified sealed members as sub-attributes.
    fn sealed_members(&self, obj: &Map<String, Value>, a: &mut Attribute, at: &str) -> Result<()> {
        for (member, iri) in [
            ("entityIdSealed", ENTITY_ID_SEALED),
            ("entityTypeSealed", ENTITY_TYPE_SEALED),
        ] {
            let Some(v) = obj.get(member) else { continue };
            let Some(s) = v.as_str() else {
                return Err(NgsiError::bad_data(format!(
                    "attribute '{at}': {member} must be a string"
                )));
            };
            let sealed = if member == "entityTypeSealed" {
                self.terms.expand(s)
            } else {
                s.to_string()
            };
            a.sub.insert(
                Arc::from(iri),
                Attribute::property(Value::String(sealed), self.now),
            );
        }
        Ok(())
    }
}

const NULL_REFUSED: &str =
    "the NGSI-LD Null 'urn:ngsi-ld:null' is only allowed in partial updates and merges";

/// Checks the members an attribute of `kind` must never carry.
fn check_members(kind: AttrKind, obj: &Map<String, Value>, role: Role, at: &str) -> Result<()> {
    let bad = |what: String| Err(NgsiError::bad_data(format!("attribute '{at}': {what}")));
    let own = kind.value_key();
    if let Some(m) = VALUE_MEMBERS
        .iter()
        .find(|m| **m != own && obj.contains_key(**m))
    {
        return bad(format!("a {} cannot have '{m}'", kind.name()));
    }
    if let Some(m) = OUTPUT_ONLY_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
        return bad(format!("'{m}' is output-only"));
    }
    if role != Role::Proof {
        if let Some(m) = SEALED_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return bad(format!("'{m}' is only allowed in ngsildproof"));
        }
    }
    let unitless = matches!(
        kind,
        AttrKind::Relationship | AttrKind::ListRelationship | AttrKind::JsonProperty
    );
    if unitless && obj.contains_key("unitCode") {
        return bad(format!("a {} cannot have a unitCode", kind.name()));
    }
    if let Some(vt) = obj.get("valueType") {
        let Some(s) = vt.as_str() else {
            return bad("valueType must be a string".into());
        };
        let lang_string = matches!(
            s,
            "langString"
                | "rdf:langString"
                | "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
        );
        if kind == AttrKind::LanguageProperty && !lang_string {
            return bad(format!(
                "the valueType of a LanguageProperty must be langString, not '{s}'"
            ));
        }
    }
    Ok(())
}

/// The DateTime of an `observedAt` member, which must be in UTC with a
/// trailing `Z` (clause 4.6.3: no offsets).
fn observed_at(v: &Value, at: &str) -> Result<String> {
    let s = v.as_str().ok_or_else(|| {
        NgsiError::bad_data(format!("attribute '{at}': observedAt must be a string"))
    })?;
    Timestamp::parse(s)
        .map_err(|e| NgsiError::bad_data(format!("attribute '{at}': observedAt {}", e.detail)))?;
    if !s.ends_with('Z') {
        return Err(NgsiError::bad_data(format!(
            "attribute '{at}': observedAt '{s}' must be in UTC ending in 'Z', without an offset"
        )));
    }
    Ok(s.to_string())
}

fn is_attribute_object(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| AttrKind::from_name(t).is_some())
            || VALUE_MEMBERS.iter().any(|k| o.contains_key(*k))
    })
}

fn is_null_sentinel(v: &Value) -> bool {
    match v {
        Value::String(s) => s == NGSI_LD_NULL,
        Value::Array(a) => a.len() == 1 && a[0].as_str() == Some(NGSI_LD_NULL),
        _ => false,
    }
}

/// True if the NGSI-LD Null appears anywhere inside `v`.
fn contains_null_sentinel(v: &Value) -> bool {
    match v {
        Value::String(s) => s == NGSI_LD_NULL,
        Value::Array(a) => a.iter().any(contains_null_sentinel),
        Value::Object(m) => m.values().any(contains_null_sentinel),
        _ => false,
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
        let iri = terms.expand(n);
        // A type that expands to a JSON-LD keyword (e.g. "type" to "@type")
        // names no class.
        if iri.starts_with('@') || n == "type" || n == "id" {
            return Err(NgsiError::bad_data(format!(
                "entity '{ctx}': '{n}' is a reserved term and cannot be an entity type"
            )));
        }
        let iri: Iri = Arc::from(iri);
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

/// Checks an attribute or type name (clause 4.6.2). A plain name is a
/// letter followed by letters, digits or `_`; a name with a `:` is a compact
/// or absolute IRI and only has to avoid characters that break URLs, the
/// query languages or readability.
pub fn check_name(name: &str, ctx: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && if name.contains(':') {
            !name.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || dosi_ngsi::ids::is_invisible(c)
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
            })
        } else {
            let mut chars = name.chars();
            chars.next().is_some_and(char::is_alphabetic)
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        };
    if ok {
        Ok(())
    } else {
        Err(NgsiError::bad_data(format!(
            "'{name}' in '{ctx}' is not a valid name (clause 4.6.2: a letter, then letters, digits or '_', or an IRI)"
        )))
    }
}
