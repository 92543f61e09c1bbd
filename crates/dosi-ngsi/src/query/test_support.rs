//! Builders shared by the query-language tests: entities from compact,
//! JSON-literal descriptions and a toy JSON-LD expansion.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::ids::EntityId;
use crate::model::{AttrKind, Attribute, Entity, Iri};
use crate::time::Timestamp;

/// The vocabulary base the toy expansion uses.
pub(crate) const EX: &str = "https://ex.org/";

/// Expands a term: full IRIs stay, `location` is the core one, `ex:x` and
/// `x` become `https://ex.org/x`.
pub(crate) fn expand(n: &str) -> String {
    if n == "location" {
        crate::model::core_iri::LOCATION.to_owned()
    } else if n.contains("://") {
        n.to_owned()
    } else {
        format!("{EX}{}", n.strip_prefix("ex:").unwrap_or(n))
    }
}

/// The creation time of every test attribute unless it says otherwise.
pub(crate) fn t0() -> Timestamp {
    Timestamp::parse("2024-01-01T00:00:00Z").expect("valid literal")
}

/// An entity from `{"attr": value-or-normalized-attribute-or-array-of-instances, ...}`.
/// A bare value becomes a Property; an object with a `type` member is a
/// normalized attribute (nested `type`d objects are sub-attributes); an array
/// of normalized attributes lists instances. `"@types"` and `"@scope"` set
/// the entity's types and scopes.
pub(crate) fn entity(v: Value) -> Entity {
    let mut e = Entity::new(
        EntityId::new_unchecked("urn:ngsi-ld:T:1"),
        vec![Arc::from(expand("T").as_str())],
        t0(),
    );
    let Value::Object(map) = v else {
        panic!("entity literal must be an object")
    };
    for (k, v) in map {
        match k.as_str() {
            "@types" => {
                e.types = strings(&v).iter().map(|t| Iri::from(t.as_str())).collect();
            }
            "@scope" => e.scope = strings(&v),
            _ => {
                let instances = match v {
                    Value::Array(items) if items.iter().all(is_normalized) && !items.is_empty() => {
                        items.into_iter().map(attribute).collect()
                    }
                    v => vec![attribute(v)],
                };
                e.attrs.insert(Iri::from(expand(&k).as_str()), instances);
            }
        }
    }
    e
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("strings").to_owned())
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => panic!("expected strings"),
    }
}

fn is_normalized(v: &Value) -> bool {
    v.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| AttrKind::from_name(t).is_some())
}

/// One attribute from a bare value or a normalized object.
pub(crate) fn attribute(v: Value) -> Attribute {
    if !is_normalized(&v) {
        return Attribute::property(v, t0());
    }
    let Value::Object(mut map) = v else {
        unreachable!("normalized attributes are objects")
    };
    let kind = AttrKind::from_name(map["type"].as_str().expect("checked")).expect("checked");
    let value = map.remove(kind.value_key()).unwrap_or(Value::Null);
    let mut a = Attribute::new(kind, value, t0());
    let text =
        |map: &Map<String, Value>, k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
    a.observed_at = text(&map, "observedAt");
    a.unit_code = text(&map, "unitCode");
    a.dataset_id = text(&map, "datasetId").map(|d| Iri::from(d.as_str()));
    if let Some(c) = text(&map, "createdAt") {
        a.created_at = Timestamp::parse(&c).expect("valid createdAt");
    }
    if let Some(m) = text(&map, "modifiedAt") {
        a.modified_at = Timestamp::parse(&m).expect("valid modifiedAt");
    }
    for (k, v) in map {
        if is_normalized(&v) {
            a.sub.insert(Iri::from(expand(&k).as_str()), attribute(v));
        }
    }
    a
}
