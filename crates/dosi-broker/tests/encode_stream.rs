//! The streaming entity writer (`encode::write_entity`) against the tree
//! builder (`encode::entity`): the same bytes for random entities in every
//! format and option combination.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use dosi_broker::codec::encode::{self, EncodeOptions, Format};
use dosi_broker::codec::Terms;
use dosi_ngsi::{AttrKind, Attribute, Entity, EntityId, Timestamp};
use proptest::prelude::*;
use serde_json::{json, Value};

const EX: &str = "https://example.org/";

/// Compacts the example vocabulary; everything else stays expanded.
struct Vocab;

impl Terms for Vocab {
    fn expand(&self, term: &str) -> String {
        format!("{EX}{term}")
    }
    fn compact(&self, iri: &str) -> String {
        iri.strip_prefix(EX).unwrap_or(iri).into()
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "[a-z\"\\\\\u{1}é한 ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Attribute and sub-attribute names: never a member name (decoding treats
/// those as members, so no stored entity has such an attribute).
fn name() -> impl Strategy<Value = String> {
    "[a-z]{1,6}".prop_filter("member names are not attributes", |n| {
        !dosi_broker::codec::ENTITY_MEMBERS.contains(&n.as_str())
            && !["value", "object", "vocab", "json", "lang", "entity"].contains(&n.as_str())
    })
}

fn kind() -> impl Strategy<Value = AttrKind> {
    prop_oneof![
        Just(AttrKind::Property),
        Just(AttrKind::Relationship),
        Just(AttrKind::GeoProperty),
        Just(AttrKind::LanguageProperty),
        Just(AttrKind::VocabProperty),
        Just(AttrKind::JsonProperty),
        Just(AttrKind::ListProperty),
        Just(AttrKind::ListRelationship),
    ]
}

/// A value of the shape each kind holds.
fn value_for(kind: AttrKind) -> BoxedStrategy<Value> {
    match kind {
        AttrKind::LanguageProperty => prop::collection::btree_map(
            prop_oneof!["en", "ko", "th", "en-GB", "@none"],
            "[a-z ]{0,8}",
            1..4,
        )
        .prop_map(|m| {
            Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v)))
                    .collect(),
            )
        })
        .boxed(),
        AttrKind::VocabProperty => prop_oneof![
            "[a-z]{1,6}".prop_map(|t| Value::String(format!("{EX}{t}"))),
            prop::collection::vec("[a-z]{1,6}", 1..3).prop_map(|ts| {
                Value::Array(
                    ts.into_iter()
                        .map(|t| Value::String(format!("{EX}{t}")))
                        .collect(),
                )
            }),
        ]
        .boxed(),
        AttrKind::Relationship => "[a-z]{1,6}"
            .prop_map(|t| Value::String(format!("urn:ngsi-ld:T:{t}")))
            .boxed(),
        AttrKind::ListRelationship => prop::collection::vec("[a-z]{1,6}", 0..3)
            .prop_map(|ts| {
                Value::Array(
                    ts.into_iter()
                        .map(|t| Value::String(format!("urn:ngsi-ld:T:{t}")))
                        .collect(),
                )
            })
            .boxed(),
        _ => json_value().boxed(),
    }
}

fn attribute(depth: u32) -> BoxedStrategy<Attribute> {
    let sub = if depth == 0 {
        Just(BTreeMap::new()).boxed()
    } else {
        prop::collection::btree_map(name(), attribute(depth - 1), 0..3)
            .prop_map(|m| {
                m.into_iter()
                    .map(|(k, v)| (Arc::from(format!("{EX}{k}")), v))
                    .collect()
            })
            .boxed()
    };
    kind()
        .prop_flat_map(move |k| {
            (
                Just(k),
                value_for(k),
                prop::option::of("[a-z]{1,4}"),
                prop::option::of(Just("2026-11-23T01:02:03.456Z".to_string())),
                prop::option::of(prop_oneof!["CEL", "GQ"]),
                prop::option::of("[a-z]{1,4}"),
                prop::option::of(prop_oneof!["en", "ko"]),
                sub.clone(),
                0i64..1_000_000,
            )
        })
        .prop_map(|(k, v, ds, obs, unit, ot, lang, sub, t)| {
            let mut a = Attribute::new(k, v, Timestamp(1_700_000_000_000_000 + t));
            a.dataset_id = ds.map(|d| Arc::from(format!("urn:ngsi-ld:Dataset:{d}")));
            a.observed_at = obs;
            a.unit_code = unit.map(|u| u.to_string());
            a.object_type = ot.map(|t| Value::String(format!("{EX}{t}")));
            a.lang = lang.map(|l| l.to_string());
            a.sub = sub;
            a
        })
        .boxed()
}

fn entity() -> impl Strategy<Value = Entity> {
    (
        prop::collection::vec("[A-Z][a-z]{0,5}", 1..3),
        prop::collection::vec("/[a-z]{1,5}", 0..3),
        prop::collection::btree_map(
            "[a-z]{1,6}",
            prop::collection::vec(attribute(1), 0..3),
            0..6,
        ),
    )
        .prop_map(|(types, scope, attrs)| {
            let types = types
                .into_iter()
                .map(|t| Arc::from(format!("{EX}{t}")))
                .collect();
            let mut e = Entity::new(
                EntityId::new_unchecked("urn:ngsi-ld:T:e1"),
                types,
                Timestamp(1_700_000_000_000_000),
            );
            e.scope = scope;
            e.attrs = attrs
                .into_iter()
                .map(|(k, v)| (Arc::from(format!("{EX}{k}")), v))
                .collect();
            e
        })
}

fn options(e: &Entity) -> Vec<EncodeOptions> {
    let first_attr = e.attrs.keys().next().map(|k| k.to_string());
    let mut all = Vec::new();
    for format in [Format::Normalized, Format::Concise, Format::Simplified] {
        for sys_attrs in [false, true] {
            for lang in [
                None,
                Some("ko".to_string()),
                Some("fr;q=0.5,en".to_string()),
                Some("*".to_string()),
            ] {
                all.push(EncodeOptions {
                    format,
                    sys_attrs,
                    lang,
                    ..EncodeOptions::default()
                });
            }
            let mut datasets = EncodeOptions {
                format,
                sys_attrs,
                ..EncodeOptions::default()
            };
            datasets.datasets = Some(vec![None, Some("urn:ngsi-ld:Dataset:a".into())]);
            all.push(datasets);
            if let Some(a) = &first_attr {
                all.push(EncodeOptions {
                    format,
                    attrs: Some(HashSet::from([a.clone()])),
                    ..EncodeOptions::default()
                });
                all.push(EncodeOptions {
                    format,
                    pick: Some(HashSet::from(["id".to_string(), a.clone()])),
                    ..EncodeOptions::default()
                });
                all.push(EncodeOptions {
                    format,
                    omit: Some(HashSet::from(["type".to_string(), a.clone()])),
                    ..EncodeOptions::default()
                });
            }
        }
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn streaming_writer_matches_the_tree(e in entity()) {
        for o in options(&e) {
            let tree = serde_json::to_vec(&encode::entity(&e, &Vocab, &o)).unwrap();
            let mut streamed = Vec::new();
            encode::write_entity(&mut streamed, &e, &Vocab, &o);
            prop_assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&tree),
                "options {:?}",
                o
            );
        }
    }
}
