//! The domain packs' data models: for each smart-city service (parking,
//! traffic, air quality, flood, earthquake, security sensors, social safety,
//! smart farm, CCTV) the NGSI-LD entity types it uses, their attributes
//! (kind, value type, unit, geometry, relationship targets), a JSON-LD
//! `@context` per pack, and a validator for normalized entities.
//!
//! Where a FIWARE Smart Data Model exists the shape follows its attribute names;
//! otherwise it is a dosi shape under `https://dosi.city/ns/`. The packs are
//! JSON files embedded at build time (`packs/<name>.json`).
//!
//! This crate is pure data and does no IO: it depends on serde only, and knows
//! nothing of the broker, HTTP or storage. dosi serves the contexts it builds.

mod context;
pub mod docs;
mod model;
mod validate;

use std::sync::OnceLock;

use serde_json::Value;

pub use context::{merge_contexts, MergedContext, TermConflict, DOSI_VOCAB};
pub use model::{
    common_term_iri, AttributeKind, AttributeSpec, EntityTypeSpec, GeometryType, Pack, RuleSketch,
    ValueType,
};
pub use validate::{is_date_time, urn_type, ShapeError};

/// The embedded pack files, in documentation order.
const PACK_FILES: &[(&str, &str)] = &[
    ("parking", include_str!("../packs/parking.json")),
    ("traffic", include_str!("../packs/traffic.json")),
    ("air-quality", include_str!("../packs/air-quality.json")),
    ("flood", include_str!("../packs/flood.json")),
    ("earthquake", include_str!("../packs/earthquake.json")),
    ("security", include_str!("../packs/security.json")),
    ("social-safety", include_str!("../packs/social-safety.json")),
    ("smart-farm", include_str!("../packs/smart-farm.json")),
    ("cctv", include_str!("../packs/cctv.json")),
];

/// All packs, parsed once.
pub fn packs() -> &'static [Pack] {
    static PACKS: OnceLock<Vec<Pack>> = OnceLock::new();
    PACKS.get_or_init(|| {
        PACK_FILES
            .iter()
            .map(|(name, text)| {
                let pack: Pack = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("embedded pack {name}.json is invalid: {e}"));
                assert_eq!(&pack.name, name, "pack file name and pack name differ");
                pack
            })
            .collect()
    })
}

/// The pack named `name` (`parking`, `flood`, …).
pub fn pack(name: &str) -> Option<&'static Pack> {
    packs().iter().find(|p| p.name == name)
}

/// The shape of entity type `name` and the pack defining it.
pub fn entity_type(name: &str) -> Option<(&'static Pack, &'static EntityTypeSpec)> {
    packs().iter().find_map(|p| {
        p.entity_types
            .iter()
            .find(|t| t.name == name)
            .map(|t| (p, t))
    })
}

/// The `@context` document (`{"@context": {..}}`) merging every pack, with the
/// terms the packs define differently left out (see [`MergedContext`]).
pub fn all_packs_context() -> &'static MergedContext {
    static MERGED: OnceLock<MergedContext> = OnceLock::new();
    MERGED.get_or_init(|| merge_contexts(packs()))
}

/// Where the packs' contexts are named: `<base><pack>.jsonld` for one pack,
/// `<base>packs.jsonld` for all of them merged. dosi answers these URLs
/// itself (no network), like the NGSI-LD core context.
pub const CONTEXT_BASE_URL: &str = "https://dosi.city/contexts/";

/// The built-in context document named by `url` (see [`CONTEXT_BASE_URL`]).
pub fn context_document(url: &str) -> Option<Value> {
    let file = url
        .strip_prefix(CONTEXT_BASE_URL)?
        .strip_suffix(".jsonld")?;
    if file == "packs" {
        return Some(all_packs_context().document.clone());
    }
    pack(file).map(Pack::context)
}

/// Validates a normalized NGSI-LD entity with short attribute names (as
/// compacted with its pack's context) against the shape of its type.
///
/// Attributes the shape does not know are accepted (Smart Data Models are
/// open), unless they reuse an attribute name of some pack with another
/// NGSI-LD kind. With several types, the entity must fit every known one.
pub fn validate(entity: &Value) -> Result<(), Vec<ShapeError>> {
    let Some(obj) = entity.as_object() else {
        return Err(vec![ShapeError::NotAnObject]);
    };
    let mut errors = Vec::new();
    match obj.get("id") {
        Some(Value::String(id)) if id.contains(':') && !id.contains(char::is_whitespace) => {}
        other => errors.push(ShapeError::BadId {
            found: other.map_or_else(|| "(missing)".into(), Value::to_string),
        }),
    }
    let types: Vec<&str> = match obj.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) if !ts.is_empty() && ts.iter().all(Value::is_string) => {
            ts.iter().filter_map(Value::as_str).collect()
        }
        other => {
            errors.push(ShapeError::BadType {
                found: other.map_or_else(|| "(missing)".into(), Value::to_string),
            });
            return Err(errors);
        }
    };
    let shapes: Vec<&EntityTypeSpec> = types
        .iter()
        .filter_map(|t| entity_type(t).map(|(_, s)| s))
        .collect();
    if shapes.is_empty() {
        errors.push(ShapeError::UnknownType {
            entity_type: types.join(","),
        });
        return Err(errors);
    }
    for shape in shapes {
        errors.extend(validate::validate_shape(shape, obj, &known_kinds));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The kinds the packs give to attribute `name`, most common first.
fn known_kinds(name: &str) -> Vec<AttributeKind> {
    let mut kinds = Vec::new();
    for t in packs().iter().flat_map(|p| &p.entity_types) {
        if let Some(a) = t.attribute(name) {
            if !kinds.contains(&a.kind) {
                kinds.push(a.kind);
            }
        }
    }
    kinds
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn contexts_by_url() {
        let one = context_document("https://dosi.city/contexts/parking.jsonld").unwrap();
        assert!(one["@context"]["ParkingSpot"].is_string(), "{one}");
        let all = context_document("https://dosi.city/contexts/packs.jsonld").unwrap();
        assert!(all["@context"]["WaterObserved"].is_string(), "{all}");
        assert!(context_document("https://dosi.city/contexts/nope.jsonld").is_none());
        assert!(context_document("https://example.org/parking.jsonld").is_none());
    }
}
