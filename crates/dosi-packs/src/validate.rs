//! Shape validation of normalized NGSI-LD entities against the packs' entity types.

use serde_json::{Map, Value};

use crate::model::{AttributeKind, AttributeSpec, EntityTypeSpec, GeometryType, ValueType};

/// Why an entity does not fit its shape. `path` is `Type.attribute` (with `[i]`
/// for array items and instances), so each message names what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShapeError {
    /// The entity is not a JSON object.
    #[error("entity is not a JSON object")]
    NotAnObject,
    /// `id` is missing or not a URI.
    #[error("entity id {found} is not a URI")]
    BadId {
        /// The `id` member as JSON (or `(missing)`).
        found: String,
    },
    /// `type` is missing or not a string.
    #[error("entity type {found} is not a type name")]
    BadType {
        /// The `type` member as JSON (or `(missing)`).
        found: String,
    },
    /// No pack defines the entity type.
    #[error("entity type {entity_type} is not defined by any pack")]
    UnknownType {
        /// The entity's type.
        entity_type: String,
    },
    /// A required attribute is absent.
    #[error("{path}: required attribute is missing")]
    MissingAttribute {
        /// `Type.attribute`.
        path: String,
    },
    /// The attribute is not a normalized NGSI-LD attribute object.
    #[error("{path}: {found} is not a normalized attribute (an object with a \"type\")")]
    NotNormalized {
        /// `Type.attribute`.
        path: String,
        /// The attribute as JSON, shortened.
        found: String,
    },
    /// The attribute's NGSI-LD kind is not the shape's.
    #[error("{path}: is a {found}, expected a {expected}")]
    WrongKind {
        /// `Type.attribute`.
        path: String,
        /// The shape's kind.
        expected: &'static str,
        /// The attribute's `type` member.
        found: String,
    },
    /// `value`, `object`, `languageMap`… is absent.
    #[error("{path}: has no \"{member}\" member")]
    MissingMember {
        /// `Type.attribute`.
        path: String,
        /// The absent member.
        member: &'static str,
    },
    /// The value has the wrong JSON type.
    #[error("{path}: {found} is not {expected}")]
    WrongValueType {
        /// `Type.attribute` (or item).
        path: String,
        /// What the shape wants.
        expected: String,
        /// The value as JSON, shortened.
        found: String,
    },
    /// A text value outside the shape's enumeration.
    #[error("{path}: {found} is not one of {allowed}")]
    NotInEnum {
        /// `Type.attribute` (or item).
        path: String,
        /// The value as JSON.
        found: String,
        /// The allowed values, comma separated.
        allowed: String,
    },
    /// A number outside the shape's range.
    #[error("{path}: {found} is {bound}")]
    OutOfRange {
        /// `Type.attribute` (or item).
        path: String,
        /// The number.
        found: String,
        /// `below the minimum 0`, `above the maximum 1`.
        bound: String,
    },
    /// A `unitCode` other than the shape's.
    #[error("{path}: unitCode {found} is not {expected}, the unit this shape fixes")]
    WrongUnit {
        /// `Type.attribute`.
        path: String,
        /// The shape's unit.
        expected: String,
        /// The attribute's `unitCode` as JSON.
        found: String,
    },
    /// A GeoProperty value that is not valid GeoJSON or not an allowed geometry type.
    #[error("{path}: {reason}")]
    BadGeometry {
        /// `Type.attribute`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A relationship object that is not an `urn:ngsi-ld:<Type>:<id>` URI.
    #[error("{path}: object {found} is not an urn:ngsi-ld:<Type>:<id> URI")]
    BadRelationshipObject {
        /// `Type.attribute`.
        path: String,
        /// The object as JSON.
        found: String,
    },
    /// A relationship to an entity type the shape does not allow.
    #[error("{path}: object {object} points at a {found}, expected one of {allowed}")]
    WrongTargetType {
        /// `Type.attribute`.
        path: String,
        /// The object URI.
        object: String,
        /// The type read from the URI.
        found: String,
        /// The allowed target types, comma separated.
        allowed: String,
    },
}

/// Entity members that are not attributes.
const ENTITY_MEMBERS: &[&str] = &[
    "id",
    "type",
    "@context",
    "scope",
    "createdAt",
    "modifiedAt",
    "deletedAt",
];

/// Validates `entity` against `shape`. `known_kinds` gives, for an attribute
/// name the shape does not declare, the kinds other shapes use it with: an
/// extra attribute is accepted unless it reuses such a name with another kind.
pub(crate) fn validate_shape(
    shape: &EntityTypeSpec,
    entity: &Map<String, Value>,
    known_kinds: &dyn Fn(&str) -> Vec<AttributeKind>,
) -> Vec<ShapeError> {
    let mut errors = Vec::new();
    let ty = &shape.name;
    for spec in &shape.attributes {
        let path = format!("{ty}.{}", spec.name);
        match entity.get(&spec.name) {
            None | Some(Value::Null) => {
                if spec.required {
                    errors.push(ShapeError::MissingAttribute { path });
                }
            }
            Some(Value::Array(instances)) => {
                // Multi-attribute: several instances told apart by datasetId.
                if instances.is_empty() && spec.required {
                    errors.push(ShapeError::MissingAttribute { path: path.clone() });
                }
                for (i, inst) in instances.iter().enumerate() {
                    check_attribute(&format!("{path}[{i}]"), spec, inst, &mut errors);
                }
            }
            Some(attr) => check_attribute(&path, spec, attr, &mut errors),
        }
    }
    for (name, attr) in entity {
        if ENTITY_MEMBERS.contains(&name.as_str()) || shape.attribute(name).is_some() {
            continue;
        }
        let kinds = known_kinds(name);
        if kinds.is_empty() {
            continue;
        }
        let instances: Vec<&Value> = match attr {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for inst in instances {
            let Some(found) = inst.get("type").and_then(Value::as_str) else {
                continue;
            };
            let found_kind = AttributeKind::parse(found);
            if found_kind.is_none_or(|k| !kinds.contains(&k)) {
                errors.push(ShapeError::WrongKind {
                    path: format!("{ty}.{name}"),
                    expected: kinds[0].as_str(),
                    found: found.to_owned(),
                });
            }
        }
    }
    errors
}

fn check_attribute(path: &str, spec: &AttributeSpec, attr: &Value, errors: &mut Vec<ShapeError>) {
    let Some(obj) = attr.as_object() else {
        errors.push(ShapeError::NotNormalized {
            path: path.to_owned(),
            found: short(attr),
        });
        return;
    };
    let Some(found) = obj.get("type").and_then(Value::as_str) else {
        errors.push(ShapeError::NotNormalized {
            path: path.to_owned(),
            found: short(attr),
        });
        return;
    };
    if AttributeKind::parse(found) != Some(spec.kind) {
        errors.push(ShapeError::WrongKind {
            path: path.to_owned(),
            expected: spec.kind.as_str(),
            found: found.to_owned(),
        });
        return;
    }
    match spec.kind {
        AttributeKind::Property | AttributeKind::VocabProperty | AttributeKind::JsonProperty => {
            let member = match spec.kind {
                AttributeKind::VocabProperty => "vocab",
                AttributeKind::JsonProperty => "json",
                _ => "value",
            };
            let Some(value) = obj.get(member) else {
                errors.push(ShapeError::MissingMember {
                    path: path.to_owned(),
                    member,
                });
                return;
            };
            if let Some(vt) = &spec.value {
                check_value(path, vt, value, errors);
                check_unit(path, vt, obj, errors);
            }
        }
        AttributeKind::ListProperty => {
            let Some(list) = obj.get("valueList") else {
                errors.push(ShapeError::MissingMember {
                    path: path.to_owned(),
                    member: "valueList",
                });
                return;
            };
            if let Some(vt) = &spec.value {
                check_value(path, vt, list, errors);
            }
        }
        AttributeKind::LanguageProperty => {
            let Some(map) = obj.get("languageMap") else {
                errors.push(ShapeError::MissingMember {
                    path: path.to_owned(),
                    member: "languageMap",
                });
                return;
            };
            let Some(map) = map.as_object() else {
                errors.push(ShapeError::WrongValueType {
                    path: path.to_owned(),
                    expected: "a language map (object of language tag to string)".into(),
                    found: short(map),
                });
                return;
            };
            for (lang, text) in map {
                if !text.is_string() {
                    errors.push(ShapeError::WrongValueType {
                        path: format!("{path}@{lang}"),
                        expected: "a string".into(),
                        found: short(text),
                    });
                }
            }
        }
        AttributeKind::GeoProperty => {
            let Some(value) = obj.get("value") else {
                errors.push(ShapeError::MissingMember {
                    path: path.to_owned(),
                    member: "value",
                });
                return;
            };
            if let Err(reason) = check_geometry(value, &spec.geometry) {
                errors.push(ShapeError::BadGeometry {
                    path: path.to_owned(),
                    reason,
                });
            }
        }
        AttributeKind::Relationship => {
            let Some(object) = obj.get("object") else {
                errors.push(ShapeError::MissingMember {
                    path: path.to_owned(),
                    member: "object",
                });
                return;
            };
            match object {
                Value::Array(items) if spec.multiple => {
                    if items.is_empty() {
                        errors.push(ShapeError::BadRelationshipObject {
                            path: path.to_owned(),
                            found: "[]".into(),
                        });
                    }
                    for item in items {
                        check_object(path, &spec.targets, item, errors);
                    }
                }
                other => check_object(path, &spec.targets, other, errors),
            }
        }
    }
}

fn check_unit(path: &str, vt: &ValueType, obj: &Map<String, Value>, errors: &mut Vec<ShapeError>) {
    let ValueType::Number {
        unit_code: Some(expected),
        ..
    } = vt
    else {
        return;
    };
    // An attribute without unitCode is read in the shape's unit.
    match obj.get("unitCode") {
        None => {}
        Some(Value::String(u)) if u == expected => {}
        Some(other) => errors.push(ShapeError::WrongUnit {
            path: path.to_owned(),
            expected: expected.clone(),
            found: short(other),
        }),
    }
}

fn check_value(path: &str, vt: &ValueType, value: &Value, errors: &mut Vec<ShapeError>) {
    let wrong = |expected: &str| ShapeError::WrongValueType {
        path: path.to_owned(),
        expected: expected.to_owned(),
        found: short(value),
    };
    match vt {
        ValueType::Number {
            minimum,
            maximum,
            integer,
            special,
            ..
        } => {
            let Some(n) = value.as_f64() else {
                errors.push(wrong(if *integer { "an integer" } else { "a number" }));
                return;
            };
            if *integer && n.fract() != 0.0 {
                errors.push(wrong("an integer"));
                return;
            }
            if special.contains(&n) {
                return;
            }
            if let Some(lo) = minimum {
                if n < *lo {
                    errors.push(ShapeError::OutOfRange {
                        path: path.to_owned(),
                        found: value.to_string(),
                        bound: format!("below the minimum {lo}"),
                    });
                }
            }
            if let Some(hi) = maximum {
                if n > *hi {
                    errors.push(ShapeError::OutOfRange {
                        path: path.to_owned(),
                        found: value.to_string(),
                        bound: format!("above the maximum {hi}"),
                    });
                }
            }
        }
        ValueType::Text { values } => {
            let Some(s) = value.as_str() else {
                errors.push(wrong("a string"));
                return;
            };
            if let Some(allowed) = values {
                if !allowed.iter().any(|a| a == s) {
                    errors.push(ShapeError::NotInEnum {
                        path: path.to_owned(),
                        found: short(value),
                        allowed: allowed.join(", "),
                    });
                }
            }
        }
        ValueType::Boolean => {
            if !value.is_boolean() {
                errors.push(wrong("a boolean"));
            }
        }
        ValueType::DateTime => {
            // Smart Data Models' normalized-LD examples wrap date-times as typed literals.
            let s = match value {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) if o.get("@type").and_then(Value::as_str) == Some("DateTime") => {
                    o.get("@value").and_then(Value::as_str)
                }
                _ => None,
            };
            if !s.is_some_and(is_date_time) {
                errors.push(wrong("a date-time (RFC 3339, e.g. 2026-11-22T09:30:00Z)"));
            }
        }
        ValueType::Uri => {
            if !value.as_str().is_some_and(is_uri) {
                errors.push(wrong("a URI"));
            }
        }
        ValueType::Array { items, min_items } => {
            let Some(arr) = value.as_array() else {
                errors.push(wrong("an array"));
                return;
            };
            if let Some(min) = min_items {
                if arr.len() < *min {
                    errors.push(ShapeError::WrongValueType {
                        path: path.to_owned(),
                        expected: format!("an array of at least {min} item(s)"),
                        found: short(value),
                    });
                }
            }
            for (i, item) in arr.iter().enumerate() {
                check_value(&format!("{path}[{i}]"), items, item, errors);
            }
        }
        ValueType::Object => {
            if !value.is_object() {
                errors.push(wrong("an object"));
            }
        }
    }
}

fn check_object(path: &str, targets: &[String], object: &Value, errors: &mut Vec<ShapeError>) {
    let Some(uri) = object.as_str() else {
        errors.push(ShapeError::BadRelationshipObject {
            path: path.to_owned(),
            found: short(object),
        });
        return;
    };
    let Some(found) = urn_type(uri) else {
        errors.push(ShapeError::BadRelationshipObject {
            path: path.to_owned(),
            found: short(object),
        });
        return;
    };
    if !targets.is_empty() && !targets.iter().any(|t| t == found) {
        errors.push(ShapeError::WrongTargetType {
            path: path.to_owned(),
            object: uri.to_owned(),
            found: found.to_owned(),
            allowed: targets.join(", "),
        });
    }
}

/// The `<Type>` of an `urn:ngsi-ld:<Type>:<id>` URI.
pub fn urn_type(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("urn:ngsi-ld:")?;
    let (ty, id) = rest.split_once(':')?;
    let valid_type = !ty.is_empty()
        && ty
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (valid_type && !id.is_empty() && !id.chars().any(char::is_whitespace)).then_some(ty)
}

fn check_geometry(value: &Value, allowed: &[GeometryType]) -> Result<(), String> {
    let Some(obj) = value.as_object() else {
        return Err(format!("{} is not a GeoJSON geometry", short(value)));
    };
    let Some(name) = obj.get("type").and_then(Value::as_str) else {
        return Err("GeoJSON geometry has no \"type\"".into());
    };
    let Some(geom) = GeometryType::parse(name) else {
        return Err(format!("{name:?} is not a GeoJSON geometry type"));
    };
    if !allowed.is_empty() && !allowed.contains(&geom) {
        let names: Vec<&str> = allowed.iter().map(|g| g.as_str()).collect();
        return Err(format!(
            "geometry {name} is not one of {}",
            names.join(", ")
        ));
    }
    let Some(coords) = obj.get("coordinates") else {
        return Err(format!("{name} has no \"coordinates\""));
    };
    let ok = match geom {
        GeometryType::Point => position(coords),
        GeometryType::MultiPoint => positions(coords, 1),
        GeometryType::LineString => positions(coords, 2),
        GeometryType::MultiLineString => all(coords, |l| positions(l, 2)),
        GeometryType::Polygon => polygon(coords),
        GeometryType::MultiPolygon => all(coords, polygon),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name} coordinates {} are not valid (longitude -180..180, latitude -90..90; rings closed with ≥ 4 positions)",
            short(coords)
        ))
    }
}

fn position(v: &Value) -> bool {
    let Some(a) = v.as_array() else { return false };
    if !(2..=3).contains(&a.len()) {
        return false;
    }
    let nums: Option<Vec<f64>> = a.iter().map(Value::as_f64).collect();
    nums.is_some_and(|n| (-180.0..=180.0).contains(&n[0]) && (-90.0..=90.0).contains(&n[1]))
}

fn positions(v: &Value, min: usize) -> bool {
    v.as_array()
        .is_some_and(|a| a.len() >= min && a.iter().all(position))
}

fn all(v: &Value, f: impl Fn(&Value) -> bool) -> bool {
    v.as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(f))
}

fn polygon(v: &Value) -> bool {
    all(v, |ring| {
        positions(ring, 4) && ring.as_array().is_some_and(|r| r.first() == r.last())
    })
}

/// RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| -> u32 {
        s.get(r).and_then(|x| x.parse().ok()).unwrap_or(u32::MAX)
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] => {
            b.len() == i + 6
                && digits(i + 1..i + 3)
                && b[i + 3] == b':'
                && digits(i + 4..i + 6)
                && num(i + 1..i + 3) <= 23
                && num(i + 4..i + 6) <= 59
        }
        _ => false,
    }
}

fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(char::is_whitespace)
}

/// A value as JSON, cut to stay readable in a message.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        s
    } else {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    }
}
