//! Entities and attributes in expanded form.
//!
//! Attribute names and entity types are full IRIs (already expanded with the
//! request's JSON-LD context); values are kept as the client sent them. The
//! store keeps exactly this shape, and every output format is rendered from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::EntityId;
use crate::time::Timestamp;

/// An expanded IRI (attribute name, type, or other term), shared cheaply.
pub type Iri = Arc<str>;

/// The kind of an attribute (its NGSI-LD `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttrKind {
    /// `Property` with `value`.
    Property,
    /// `Relationship` with `object`.
    Relationship,
    /// `GeoProperty` with a GeoJSON geometry `value`.
    GeoProperty,
    /// `LanguageProperty` with `languageMap`.
    LanguageProperty,
    /// `VocabProperty` with `vocab` (IRIs, expanded).
    VocabProperty,
    /// `JsonProperty` with `json` (kept verbatim, never expanded).
    JsonProperty,
    /// `ListProperty` with `valueList`.
    ListProperty,
    /// `ListRelationship` with `objectList`.
    ListRelationship,
}

impl AttrKind {
    /// The NGSI-LD type name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Property => "Property",
            Self::Relationship => "Relationship",
            Self::GeoProperty => "GeoProperty",
            Self::LanguageProperty => "LanguageProperty",
            Self::VocabProperty => "VocabProperty",
            Self::JsonProperty => "JsonProperty",
            Self::ListProperty => "ListProperty",
            Self::ListRelationship => "ListRelationship",
        }
    }
    /// The kind for an NGSI-LD type name (compact or expanded core IRI).
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.strip_prefix("https://uri.etsi.org/ngsi-ld/").unwrap_or(s);
        Some(match s {
            "Property" => Self::Property,
            "Relationship" => Self::Relationship,
            "GeoProperty" => Self::GeoProperty,
            "LanguageProperty" => Self::LanguageProperty,
            "VocabProperty" => Self::VocabProperty,
            "JsonProperty" => Self::JsonProperty,
            "ListProperty" => Self::ListProperty,
            "ListRelationship" => Self::ListRelationship,
            _ => return None,
        })
    }
    /// The member that carries the value in normalized form.
    pub fn value_key(self) -> &'static str {
        match self {
            Self::Property | Self::GeoProperty => "value",
            Self::Relationship => "object",
            Self::LanguageProperty => "languageMap",
            Self::VocabProperty => "vocab",
            Self::JsonProperty => "json",
            Self::ListProperty => "valueList",
            Self::ListRelationship => "objectList",
        }
    }
}

/// One attribute instance (or a sub-attribute).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// Property, Relationship, ...
    pub kind: AttrKind,
    /// The member named by [`AttrKind::value_key`], as sent (vocab values expanded).
    pub value: Value,
    /// `datasetId`; `None` is the default instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<Iri>,
    /// `observedAt`, kept as the client wrote it (validated as a DateTime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    /// `unitCode` (UN/CEFACT code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_code: Option<String>,
    /// `objectType` of a (List)Relationship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<Value>,
    /// `lang` of a Property whose value is a plain string with a language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// System attribute `createdAt`.
    pub created_at: Timestamp,
    /// System attribute `modifiedAt`.
    pub modified_at: Timestamp,
    /// Sub-attributes by expanded name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sub: BTreeMap<Iri, Attribute>,
}

impl Attribute {
    /// A plain Property with `value`, created now.
    pub fn property(value: Value, now: Timestamp) -> Self {
        Self::new(AttrKind::Property, value, now)
    }
    /// An attribute of `kind` holding `value`, created at `now`.
    pub fn new(kind: AttrKind, value: Value, now: Timestamp) -> Self {
        Self {
            kind,
            value,
            dataset_id: None,
            observed_at: None,
            unit_code: None,
            object_type: None,
            lang: None,
            created_at: now,
            modified_at: now,
            sub: BTreeMap::new(),
        }
    }
    /// The datasetId as text, if any.
    pub fn dataset(&self) -> Option<&str> {
        self.dataset_id.as_deref()
    }
}

/// An entity: id, types, scopes, system timestamps and attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// The entity id (an absolute URI).
    pub id: EntityId,
    /// Expanded type IRIs; at least one.
    pub types: Vec<Iri>,
    /// `scope` values (hierarchical paths such as `/Seoul/Gangnam`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    /// System attribute `createdAt`.
    pub created_at: Timestamp,
    /// System attribute `modifiedAt`.
    pub modified_at: Timestamp,
    /// Attributes by expanded name; each holds its instances, at most one per
    /// `datasetId` (the default instance has none).
    #[serde(default)]
    pub attrs: BTreeMap<Iri, Vec<Attribute>>,
}

impl Entity {
    /// An entity without attributes, created at `now`.
    pub fn new(id: EntityId, types: Vec<Iri>, now: Timestamp) -> Self {
        Self {
            id,
            types,
            scope: Vec::new(),
            created_at: now,
            modified_at: now,
            attrs: BTreeMap::new(),
        }
    }
    /// The instance of `name` with `dataset_id` (None = default instance).
    pub fn instance(&self, name: &str, dataset_id: Option<&str>) -> Option<&Attribute> {
        self.attrs
            .get(name)?
            .iter()
            .find(|a| a.dataset() == dataset_id)
    }
    /// The default instance of `name`, or else its first instance.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        let list = self.attrs.get(name)?;
        list.iter()
            .find(|a| a.dataset_id.is_none())
            .or(list.first())
    }
    /// True if the entity has `ty` among its types.
    pub fn has_type(&self, ty: &str) -> bool {
        self.types.iter().any(|t| &**t == ty)
    }
}

/// The NGSI-LD core vocabulary base.
pub const NGSI_LD_BASE: &str = "https://uri.etsi.org/ngsi-ld/";

/// Expanded IRIs of the core members that may appear where attributes do.
pub mod core_iri {
    /// `location`
    pub const LOCATION: &str = "https://uri.etsi.org/ngsi-ld/location";
    /// `observationSpace`
    pub const OBSERVATION_SPACE: &str = "https://uri.etsi.org/ngsi-ld/observationSpace";
    /// `operationSpace`
    pub const OPERATION_SPACE: &str = "https://uri.etsi.org/ngsi-ld/operationSpace";
    /// `createdAt`
    pub const CREATED_AT: &str = "https://uri.etsi.org/ngsi-ld/createdAt";
    /// `modifiedAt`
    pub const MODIFIED_AT: &str = "https://uri.etsi.org/ngsi-ld/modifiedAt";
    /// `observedAt`
    pub const OBSERVED_AT: &str = "https://uri.etsi.org/ngsi-ld/observedAt";
    /// `datasetId`
    pub const DATASET_ID: &str = "https://uri.etsi.org/ngsi-ld/datasetId";
    /// `unitCode`
    pub const UNIT_CODE: &str = "https://uri.etsi.org/ngsi-ld/unitCode";
    /// `scope`
    pub const SCOPE: &str = "https://uri.etsi.org/ngsi-ld/scope";
}
