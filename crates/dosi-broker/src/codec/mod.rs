//! Between NGSI-LD JSON (compact, with a JSON-LD context) and the expanded
//! model: [`decode`] validates and expands what clients send, [`encode`]
//! renders entities in the requested format and compacts them again.
//!
//! Term handling goes through [`Terms`], implemented over the JSON-LD active
//! context by the API layer, so this module stays free of JSON-LD processing.

pub mod decode;
pub mod encode;

/// Term expansion and IRI compaction for one request's JSON-LD context.
pub trait Terms: Send + Sync {
    /// Expands an attribute name, entity type or vocab value to an IRI.
    fn expand(&self, term: &str) -> String;
    /// Compacts an IRI to the shortest term that expands back to it.
    fn compact(&self, iri: &str) -> String;
}

/// Terms that leave everything as it is (tests; already expanded data).
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl Terms for Identity {
    fn expand(&self, term: &str) -> String {
        term.to_string()
    }
    fn compact(&self, iri: &str) -> String {
        iri.to_string()
    }
}

/// Members of an attribute object that are not sub-attributes.
pub(crate) const ATTRIBUTE_MEMBERS: &[&str] = &[
    "type",
    "value",
    "object",
    "languageMap",
    "vocab",
    "json",
    "valueList",
    "objectList",
    "observedAt",
    "unitCode",
    "datasetId",
    "createdAt",
    "modifiedAt",
    "deletedAt",
    "objectType",
    "lang",
    "instanceId",
    "previousValue",
    "previousObject",
    "previousLanguageMap",
    "previousVocab",
    "previousJson",
    "previousValueList",
    "previousObjectList",
    "entity",
    "@context",
];

/// Members of an entity object that are not attributes.
pub const ENTITY_MEMBERS: &[&str] = &[
    "id",
    "@id",
    "type",
    "@type",
    "scope",
    "createdAt",
    "modifiedAt",
    "deletedAt",
    "@context",
];

/// The sentinel that, in a merge, deletes what it is assigned to (clause 4.5.0).
pub const NGSI_LD_NULL: &str = "urn:ngsi-ld:null";
