//! JSON-LD `@context` documents built from the packs' term IRIs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::model::{EntityTypeSpec, Pack};

/// IRI base of dosi's own shapes and extension attributes.
pub const DOSI_VOCAB: &str = "https://dosi.city/ns/";

/// Terms every NGSI-LD context already has (the core context is applied last
/// and cannot be overridden), so pack contexts leave them out.
const CORE_TERMS: &[&str] = &["location"];

/// A term that two packs (or two types of one pack) map to different IRIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermConflict {
    /// The short term (`category`).
    pub term: String,
    /// Each IRI with the `Type.attribute` paths using it.
    pub definitions: Vec<(String, Vec<String>)>,
}

/// A merged `@context`: every term with one IRI across the merged packs, plus a
/// prefix per vocabulary so a conflicting term stays reachable as a compact IRI
/// (`sdm-parking:occupancy`, `sdm-transportation:occupancy`).
#[derive(Debug, Clone)]
pub struct MergedContext {
    /// `{"@context": {term: IRI, ..}}`.
    pub document: Value,
    /// The terms left out because their definitions differ.
    pub conflicts: Vec<TermConflict>,
}

impl MergedContext {
    /// The `@context` object itself (term → IRI).
    pub fn terms(&self) -> &Map<String, Value> {
        self.document["@context"]
            .as_object()
            .expect("merge_contexts always builds an object under @context")
    }
}

/// Term → IRI → users, over some entity types.
fn collect<'a>(
    types: impl IntoIterator<Item = &'a EntityTypeSpec>,
) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut terms: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for t in types {
        terms
            .entry(t.name.clone())
            .or_default()
            .entry(t.iri())
            .or_default()
            .push(t.name.clone());
        for a in &t.attributes {
            if CORE_TERMS.contains(&a.name.as_str()) {
                continue;
            }
            terms
                .entry(a.name.clone())
                .or_default()
                .entry(t.attribute_iri(a))
                .or_default()
                .push(format!("{}.{}", t.name, a.name));
        }
    }
    terms
}

/// The prefix name for a vocabulary IRI base (`sdm-parking`, `dosi`).
fn prefix_name(vocab: &str) -> Option<String> {
    if vocab == DOSI_VOCAB {
        return Some("dosi".into());
    }
    let domain = vocab
        .strip_prefix("https://smartdatamodels.org/dataModel.")?
        .strip_suffix('/')?;
    Some(format!("sdm-{}", domain.to_ascii_lowercase()))
}

/// Merges the contexts of `packs`: terms with one IRI are kept, terms with
/// several are reported in [`MergedContext::conflicts`] and left out.
pub fn merge_contexts<'a>(packs: impl IntoIterator<Item = &'a Pack>) -> MergedContext {
    let packs: Vec<&Pack> = packs.into_iter().collect();
    let types = packs.iter().flat_map(|p| &p.entity_types);
    let mut context = Map::new();
    let mut prefixes = BTreeMap::new();
    for t in types.clone() {
        if let Some(p) = prefix_name(&t.vocab) {
            prefixes.insert(p, t.vocab.clone());
        }
    }
    for (p, iri) in prefixes {
        context.insert(p, Value::String(iri));
    }
    let mut conflicts = Vec::new();
    for (term, iris) in collect(types) {
        if iris.len() == 1 {
            let iri = iris.into_keys().next().expect("one entry");
            context.insert(term, Value::String(iri));
        } else {
            conflicts.push(TermConflict {
                term,
                definitions: iris.into_iter().collect(),
            });
        }
    }
    let mut doc = Map::new();
    doc.insert("@context".into(), Value::Object(context));
    MergedContext {
        document: Value::Object(doc),
        conflicts,
    }
}

impl Pack {
    /// The pack's `@context` document, `{"@context": {term: IRI, ..}}`: every
    /// entity type and attribute term of the pack (NGSI-LD core terms aside).
    pub fn context(&self) -> Value {
        merge_contexts([self]).document
    }

    /// Terms the pack's own types define differently (always empty for the
    /// shipped packs: a test holds them to it).
    pub fn context_conflicts(&self) -> Vec<TermConflict> {
        merge_contexts([self]).conflicts
    }
}
