//! The built-in NGSI-LD core contexts: the documents served to clients
//! (generated once from [`crate::core_terms`]) and their processed term
//! tables, each built once per process.

use std::collections::HashMap;
use std::sync::OnceLock;

use dosi_ngsi::NgsiError;
use serde_json::{Map, Value};

use crate::context::Tables;
use crate::core_terms::{Spec, Versions, TERMS, VOCAB};
use crate::process::{Processor, State};
use crate::term::TermDefinition;

/// A core-context version dosi knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CoreVersion {
    /// GS CIM 009 v1.8, dosi's reference version.
    V1_8,
    /// GS CIM 009 v1.9.
    V1_9,
}

/// A processed core context.
#[derive(Debug)]
pub(crate) struct CoreTables {
    pub(crate) tables: Tables,
    pub(crate) vocab: Option<String>,
    /// Terms whose definition differs from (or is missing in) version 1.8,
    /// sorted by term: what applying this version adds on top of the 1.8 layer.
    pub(crate) delta_from_v1_8: Vec<(String, TermDefinition)>,
}

/// Builds `{"@context": {..}}` for `version` from the term table.
fn build_document(version: CoreVersion) -> Value {
    let mut context = Map::new();
    context.insert("@version".into(), serde_json::json!(1.1));
    context.insert("@protected".into(), Value::Bool(true));
    for &(term, versions, spec) in TERMS {
        let included = match versions {
            Versions::All => true,
            Versions::V1_8 => version == CoreVersion::V1_8,
            Versions::V1_9 => version == CoreVersion::V1_9,
        };
        if !included {
            continue;
        }
        let definition = match spec {
            Spec::Iri(iri) => Value::String(iri.into()),
            Spec::Full {
                id,
                type_,
                container,
                context: scoped,
            } => {
                let mut full = Map::new();
                full.insert("@id".into(), Value::String(id.into()));
                if let Some(ty) = type_ {
                    full.insert("@type".into(), Value::String(ty.into()));
                }
                if let Some(container) = container {
                    full.insert("@container".into(), Value::String(container.into()));
                }
                if let Some(scoped) = scoped {
                    let scoped = serde_json::from_str(scoped)
                        .expect("scoped contexts in core_terms are valid JSON (unit-tested)");
                    full.insert("@context".into(), scoped);
                }
                Value::Object(full)
            }
        };
        context.insert(term.into(), definition);
    }
    context.insert("@vocab".into(), Value::String(VOCAB.into()));
    let mut doc = Map::new();
    doc.insert("@context".into(), Value::Object(context));
    Value::Object(doc)
}

/// The core document of `version` as a JSON value.
pub(crate) fn document_value(version: CoreVersion) -> &'static Value {
    static V1_8: OnceLock<Value> = OnceLock::new();
    static V1_9: OnceLock<Value> = OnceLock::new();
    match version {
        CoreVersion::V1_8 => V1_8.get_or_init(|| build_document(version)),
        CoreVersion::V1_9 => V1_9.get_or_init(|| build_document(version)),
    }
}

/// The core document of `version` as served to clients.
pub(crate) fn document_text(version: CoreVersion) -> &'static str {
    static V1_8: OnceLock<String> = OnceLock::new();
    static V1_9: OnceLock<String> = OnceLock::new();
    let render = || {
        serde_json::to_string_pretty(document_value(version))
            .expect("a serde_json::Value always serializes")
    };
    match version {
        CoreVersion::V1_8 => V1_8.get_or_init(render),
        CoreVersion::V1_9 => V1_9.get_or_init(render),
    }
}

/// The processed tables of `version`.
pub(crate) fn tables(version: CoreVersion) -> &'static CoreTables {
    static V1_8: OnceLock<CoreTables> = OnceLock::new();
    static V1_9: OnceLock<CoreTables> = OnceLock::new();
    match version {
        CoreVersion::V1_8 => V1_8.get_or_init(|| build_tables(version)),
        CoreVersion::V1_9 => V1_9.get_or_init(|| build_tables(version)),
    }
}

fn build_tables(version: CoreVersion) -> CoreTables {
    let no_remote = |url: &str| -> Result<_, NgsiError> {
        Err(NgsiError::internal(format!(
            "the built-in core context references {url}"
        )))
    };
    let mut state = State::default();
    Processor::for_core(&no_remote)
        .process(
            &mut state,
            &document_value(version)["@context"],
            &mut Vec::new(),
            "built-in NGSI-LD core context",
        )
        .expect("the built-in core context is valid (unit-tested)");
    let terms: HashMap<String, TermDefinition> = state
        .overlay
        .into_iter()
        .filter_map(|(term, def)| Some((term, def?)))
        .collect();
    let delta_from_v1_8 = match version {
        CoreVersion::V1_8 => Vec::new(),
        CoreVersion::V1_9 => {
            let base = &tables(CoreVersion::V1_8).tables.terms;
            let mut delta: Vec<_> = terms
                .iter()
                .filter(|(term, def)| base.get(*term).is_none_or(|b| !b.same_meaning(def)))
                .map(|(term, def)| (term.clone(), def.clone()))
                .collect();
            delta.sort_by(|a, b| a.0.cmp(&b.0));
            delta
        }
    };
    CoreTables {
        tables: Tables::new(terms),
        vocab: state.vocab,
        delta_from_v1_8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_build_and_process() {
        for version in [CoreVersion::V1_8, CoreVersion::V1_9] {
            let text = document_text(version);
            let parsed: Value = serde_json::from_str(text).expect("valid JSON");
            assert_eq!(&parsed, document_value(version));
            let core = tables(version);
            assert_eq!(core.vocab.as_deref(), Some(VOCAB));
            assert!(core.tables.terms.len() > 150, "{version:?}");
            assert!(core
                .tables
                .terms
                .values()
                .all(|d| d.protected && d.from_core));
        }
        let delta: Vec<&str> = tables(CoreVersion::V1_9)
            .delta_from_v1_8
            .iter()
            .map(|(t, _)| t.as_str())
            .collect();
        for term in [
            "attributeCount",
            "entityMap",
            "jsonldContext",
            "ngsildproof",
        ] {
            assert!(delta.contains(&term), "{term} missing from the 1.9 delta");
        }
        assert!(!delta.contains(&"location"));
    }

    /// The generated documents equal the published ones (when the reference
    /// copies are around: they are not part of the repository).
    #[test]
    fn documents_match_reference_copies() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/ngsi-ld/contexts");
        for (file, version) in [
            ("ngsi-ld-core-context-v1.8.jsonld", CoreVersion::V1_8),
            ("ngsi-ld-core-context-v1.9.jsonld", CoreVersion::V1_9),
        ] {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                eprintln!("skipped: reference copy {file} not found");
                continue;
            };
            let reference: Value = serde_json::from_str(&text).expect("reference is JSON");
            assert_eq!(&reference, document_value(version), "{file}");
        }
    }
}
