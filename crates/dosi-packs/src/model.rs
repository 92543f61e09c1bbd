//! The shape of a pack file (`packs/<name>.json`), parsed with serde.

use serde::Deserialize;
use serde_json::Value;

/// One smart-city service pack: its entity types and typical rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pack {
    /// Short machine name, also the file name (`parking`, `flood`, …).
    pub name: String,
    /// Human title ("Smart parking").
    pub title: String,
    /// What the pack models, one paragraph.
    pub description: String,
    /// The typical rules of the pack (from the design brief), as prose.
    #[serde(default)]
    pub rules: Vec<RuleSketch>,
    /// The entity types of the pack.
    pub entity_types: Vec<EntityTypeSpec>,
}

/// A typical rule of a pack, described for people (the rule engine owns the real ones).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSketch {
    /// Rule name ("lot full").
    pub name: String,
    /// The condition and the effect, in words.
    pub description: String,
}

/// The shape of one NGSI-LD entity type.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityTypeSpec {
    /// The entity type's short name (`ParkingSpot`).
    #[serde(rename = "type")]
    pub name: String,
    /// What one entity of the type stands for.
    pub description: String,
    /// The Smart Data Model followed (its specification URL); `None` for a dosi shape.
    pub model: Option<String>,
    /// IRI base for the type name and its attributes without an explicit IRI
    /// (`https://smartdatamodels.org/dataModel.Parking/`, `https://dosi.city/ns/`).
    pub vocab: String,
    /// The attributes the shape knows.
    pub attributes: Vec<AttributeSpec>,
    /// A valid example entity, normalized NGSI-LD with short terms.
    pub example: Value,
}

impl EntityTypeSpec {
    /// Whether the type is dosi's own shape (no Smart Data Model exists for it).
    pub fn is_dosi_shape(&self) -> bool {
        self.model.is_none()
    }

    /// The attribute named `name`, if the shape knows it.
    pub fn attribute(&self, name: &str) -> Option<&AttributeSpec> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The expanded IRI of the type name.
    pub fn iri(&self) -> String {
        format!("{}{}", self.vocab, self.name)
    }

    /// The expanded IRI of one of its attributes.
    pub fn attribute_iri(&self, attr: &AttributeSpec) -> String {
        if let Some(iri) = &attr.iri {
            return iri.clone();
        }
        if let Some(iri) = common_term_iri(&attr.name) {
            return iri.to_owned();
        }
        format!("{}{}", self.vocab, attr.name)
    }
}

/// Terms whose IRI is shared by every Smart Data Model domain (the GSMA and
/// location commons) or fixed by NGSI-LD; a type's `vocab` does not apply to them.
pub fn common_term_iri(term: &str) -> Option<&'static str> {
    Some(match term {
        "location" => "https://uri.etsi.org/ngsi-ld/location",
        "status" => "https://uri.etsi.org/ngsi-ld/status",
        "description" => "http://purl.org/dc/terms/description",
        "name" => "https://smartdatamodels.org/name",
        "address" => "https://smartdatamodels.org/address",
        "alternateName" => "https://smartdatamodels.org/alternateName",
        "areaServed" => "https://smartdatamodels.org/areaServed",
        "dataProvider" => "https://smartdatamodels.org/dataProvider",
        "dateCreated" => "https://smartdatamodels.org/dateCreated",
        "dateModified" => "https://smartdatamodels.org/dateModified",
        "dateObserved" => "https://smartdatamodels.org/dateObserved",
        "owner" => "https://smartdatamodels.org/owner",
        "seeAlso" => "https://smartdatamodels.org/seeAlso",
        "source" => "https://smartdatamodels.org/source",
        _ => return None,
    })
}

/// One attribute of a shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeSpec {
    /// Short name (`status`).
    pub name: String,
    /// NGSI-LD attribute kind.
    pub kind: AttributeKind,
    /// Whether every entity of the type must carry it.
    #[serde(default)]
    pub required: bool,
    /// What it means, with its unit in words where it has one.
    pub description: String,
    /// Value type, for Property, ListProperty and LanguageProperty (per language string).
    #[serde(default)]
    pub value: Option<ValueType>,
    /// Allowed GeoJSON geometry types, for GeoProperty (empty: any).
    #[serde(default)]
    pub geometry: Vec<GeometryType>,
    /// Allowed target entity types, for Relationship (empty: any).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Relationship: the object may be an array of URIs (NGSI-LD 1.8 multi-object).
    #[serde(default)]
    pub multiple: bool,
    /// Explicit IRI, when neither the common terms nor the type's `vocab` give it
    /// (a dosi shape reusing a Smart Data Models term, a dosi extension on an SDM type).
    #[serde(default)]
    pub iri: Option<String>,
}

/// NGSI-LD attribute kinds (the `type` member of a normalized attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AttributeKind {
    /// `Property`.
    Property,
    /// `GeoProperty`.
    GeoProperty,
    /// `Relationship`.
    Relationship,
    /// `LanguageProperty`.
    LanguageProperty,
    /// `VocabProperty`.
    VocabProperty,
    /// `ListProperty`.
    ListProperty,
    /// `JsonProperty`.
    JsonProperty,
}

impl AttributeKind {
    /// The name used in NGSI-LD payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Property => "Property",
            Self::GeoProperty => "GeoProperty",
            Self::Relationship => "Relationship",
            Self::LanguageProperty => "LanguageProperty",
            Self::VocabProperty => "VocabProperty",
            Self::ListProperty => "ListProperty",
            Self::JsonProperty => "JsonProperty",
        }
    }

    /// Parses the `type` member of a normalized attribute.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Property" => Self::Property,
            "GeoProperty" => Self::GeoProperty,
            "Relationship" => Self::Relationship,
            "LanguageProperty" => Self::LanguageProperty,
            "VocabProperty" => Self::VocabProperty,
            "ListProperty" => Self::ListProperty,
            "JsonProperty" => Self::JsonProperty,
            _ => return None,
        })
    }
}

/// GeoJSON geometry types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum GeometryType {
    /// `Point`.
    Point,
    /// `LineString`.
    LineString,
    /// `Polygon`.
    Polygon,
    /// `MultiPoint`.
    MultiPoint,
    /// `MultiLineString`.
    MultiLineString,
    /// `MultiPolygon`.
    MultiPolygon,
}

impl GeometryType {
    /// The GeoJSON `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Point => "Point",
            Self::LineString => "LineString",
            Self::Polygon => "Polygon",
            Self::MultiPoint => "MultiPoint",
            Self::MultiLineString => "MultiLineString",
            Self::MultiPolygon => "MultiPolygon",
        }
    }

    /// Parses a GeoJSON geometry `type`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Point" => Self::Point,
            "LineString" => Self::LineString,
            "Polygon" => Self::Polygon,
            "MultiPoint" => Self::MultiPoint,
            "MultiLineString" => Self::MultiLineString,
            "MultiPolygon" => Self::MultiPolygon,
            _ => return None,
        })
    }
}

/// The value type of a Property.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ValueType {
    /// A JSON number.
    #[serde(rename_all = "camelCase")]
    Number {
        /// Inclusive lower bound.
        #[serde(default)]
        minimum: Option<f64>,
        /// Inclusive upper bound.
        #[serde(default)]
        maximum: Option<f64>,
        /// Whether the number must be integral (a count).
        #[serde(default)]
        integer: bool,
        /// The UN/CEFACT common code of the unit the shape fixes (`MTR`, `CEL`, `C62`).
        #[serde(default)]
        unit_code: Option<String>,
        /// Sentinel values allowed outside the range (`Device.batteryLevel`: -1, unknown).
        #[serde(default)]
        special: Vec<f64>,
    },
    /// A string, optionally one of fixed values.
    Text {
        /// The allowed values, in documentation order.
        #[serde(default, rename = "enum")]
        values: Option<Vec<String>>,
    },
    /// `true` or `false`.
    Boolean,
    /// An RFC 3339 date-time string (or `{"@type": "DateTime", "@value": …}`).
    DateTime,
    /// An absolute URI string (`rtsp://…`, `https://…`).
    Uri,
    /// A JSON array of values of one type.
    #[serde(rename_all = "camelCase")]
    Array {
        /// Type of each item.
        items: Box<ValueType>,
        /// Minimum number of items.
        #[serde(default)]
        min_items: Option<usize>,
    },
    /// Any JSON object (a structured value).
    Object,
}

impl ValueType {
    /// A short human description for docs and messages (`number ≥ 0 [MTR]`).
    pub fn describe(&self) -> String {
        match self {
            Self::Number {
                minimum,
                maximum,
                integer,
                unit_code,
                special,
            } => {
                let mut s = String::from(if *integer { "integer" } else { "number" });
                match (minimum, maximum) {
                    (Some(lo), Some(hi)) => s.push_str(&format!(" {lo}..{hi}")),
                    (Some(lo), None) => s.push_str(&format!(" ≥ {lo}")),
                    (None, Some(hi)) => s.push_str(&format!(" ≤ {hi}")),
                    (None, None) => {}
                }
                if let Some(u) = unit_code {
                    s.push_str(&format!(" [{u}]"));
                }
                for v in special {
                    s.push_str(&format!(" or {v}"));
                }
                s
            }
            Self::Text { values: Some(v) } => format!("one of {}", v.join(", ")),
            Self::Text { values: None } => "text".into(),
            Self::Boolean => "boolean".into(),
            Self::DateTime => "date-time".into(),
            Self::Uri => "URI".into(),
            Self::Array { items, min_items } => match min_items {
                Some(n) => format!("array (≥ {n}) of {}", items.describe()),
                None => format!("array of {}", items.describe()),
            },
            Self::Object => "object".into(),
        }
    }
}
