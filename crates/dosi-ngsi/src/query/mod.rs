//! The NGSI-LD query languages and the entity filter built from them.
//!
//! Each language has a parser that answers malformed input with a precise
//! `InvalidRequest`/`BadRequestData` error and never panics, and an evaluator
//! over [`Entity`] in expanded form. Attribute and type names in a parsed
//! query are compact terms until `expand_names` maps them to IRIs.

mod expr;
pub mod geo;
pub mod q;
pub mod scope;
#[cfg(test)]
mod test_support;
pub mod types;

use regex::Regex;

use crate::ids::EntityId;
use crate::model::{Entity, Iri};

pub use self::geo::{geometry_from_json, GeoQuery, GeoRel};
pub use self::q::Q;
pub use self::scope::ScopeQ;
pub use self::types::TypeExpr;

/// Which entities a query (or subscription, or purge) selects.
#[derive(Debug, Clone, Default)]
pub struct EntityFilter {
    /// Entity ids; empty means any id.
    pub ids: Vec<EntityId>,
    /// `idPattern`, anchored by the caller if wanted.
    pub id_pattern: Option<Regex>,
    /// `type` expression over expanded type IRIs.
    pub types: Option<TypeExpr>,
    /// `attrs`: when not empty, an entity must have at least one of them.
    pub attrs: Vec<Iri>,
    /// `q`
    pub q: Option<Q>,
    /// `scopeQ`
    pub scope_q: Option<ScopeQ>,
    /// `geoQ`
    pub geo_q: Option<GeoQuery>,
}

impl EntityFilter {
    /// True if `e` satisfies every part of the filter.
    pub fn matches(&self, e: &Entity) -> bool {
        (self.ids.is_empty() || self.ids.contains(&e.id))
            && self
                .id_pattern
                .as_ref()
                .is_none_or(|p| p.is_match(e.id.as_str()))
            && self.types.as_ref().is_none_or(|t| t.matches(&e.types))
            && (self.attrs.is_empty() || self.attrs.iter().any(|a| e.attrs.contains_key(a)))
            && self.q.as_ref().is_none_or(|q| q.matches(e))
            && self.scope_q.as_ref().is_none_or(|s| s.matches(&e.scope))
            && self.geo_q.as_ref().is_none_or(|g| g.matches(e))
    }
    /// True if the filter selects nothing more specific than "everything".
    pub fn is_unrestricted(&self) -> bool {
        self.ids.is_empty()
            && self.id_pattern.is_none()
            && self.types.is_none()
            && self.attrs.is_empty()
            && self.q.is_none()
            && self.scope_q.is_none()
            && self.geo_q.is_none()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::test_support::{entity, expand};
    use super::*;

    #[test]
    fn entity_filter_combines_the_languages() {
        let e = entity(json!({
            "@types": ["https://ex.org/Vehicle"],
            "@scope": ["/Seoul/Gangnam"],
            "speed": 80,
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [127.03, 37.5]}}
        }));
        let mut types = TypeExpr::parse("Vehicle,Bus").unwrap();
        types.expand_names(&expand);
        let mut q = Q::parse("speed>50").unwrap();
        q.expand_names(&expand);
        let mut filter = EntityFilter {
            types: Some(types),
            q: Some(q),
            scope_q: Some(ScopeQ::parse("/Seoul/#").unwrap()),
            geo_q: Some(
                GeoQuery::parse("near;maxDistance==1000", "Point", "[127.03,37.501]").unwrap(),
            ),
            ..EntityFilter::default()
        };
        assert!(filter.matches(&e));
        filter.scope_q = Some(ScopeQ::parse("/Busan/#").unwrap());
        assert!(!filter.matches(&e));
    }
}
