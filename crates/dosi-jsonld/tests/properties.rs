//! Property tests: arbitrary input never panics, and compaction never
//! changes meaning (`expand_term(compact_iri(iri)) == iri`).

use std::collections::HashMap;
use std::sync::Arc;

use dosi_jsonld::{process_sync_local, ActiveContext, ContextLoader, CORE_CONTEXT_URL};
use dosi_ngsi::{ErrorKind, NgsiError};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Keys that hit the interesting branches of context processing, plus noise.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "@id", "@type", "@vocab", "@context", "@container", "@protected", "@prefix",
            "@version", "@import", "@base", "@language", "@reverse", "@nest", "@index",
            "@direction", "@propagate", "@list", "@set", "@foo", "ex", "a", "b", "ex:a",
            "a:b", "a/b", "location", "type", "id", "ngsi-ld", "_", "_:b", "",
        ])
        .prop_map(String::from),
        1 => ".{0,8}",
    ]
}

/// Leaf values likely to be meaningful in a context, plus noise.
fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => prop::sample::select(vec![json!(1.1), json!(1.0), json!(5), json!(-0.5)]),
        3 => prop::sample::select(vec![
            "http://ex.org/", "http://ex.org/x", "ex:x", "a", "b:c", "a:", "@id", "@vocab",
            "@list", "@set", "@index", "@type", "@json", "@none", "@context", "@foo",
            "ngsi-ld:x", "_:b", "rel/x", "https://remote/x", "https://remote/y",
            CORE_CONTEXT_URL,
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        1 => ".{0,12}".prop_map(Value::String),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Contexts the IRI invariants are checked against.
fn contexts() -> Vec<ActiveContext> {
    let user = json!({
        "ex": "http://example.org/",
        "exv": {"@id": "http://example.org/v#", "@prefix": true},
        "short": "http://example.org/very/long/path/",
        "s": "http://example.org/very/",
        "Vehicle": "http://example.org/Vehicle",
        "V": "http://example.org/Vehicle",
        "nothing": null,
        "kw": "@type",
        "ex:odd": "http://example.org/odd",
        "@vocab": "http://vocab.org/",
    });
    vec![
        ActiveContext::core(),
        process_sync_local(&user).expect("valid"),
        process_sync_local(&json!([user, CORE_CONTEXT_URL])).expect("valid"),
    ]
}

const BASES: &[&str] = &[
    "https://uri.etsi.org/ngsi-ld/",
    "https://uri.etsi.org/ngsi-ld/default-context/",
    "https://purl.org/geojson/vocab#",
    "http://example.org/",
    "http://example.org/v#",
    "http://example.org/very/",
    "http://example.org/very/long/path/",
    "http://vocab.org/",
    "urn:ngsi-ld:",
    "https://other.org/",
];

struct DocLoader(HashMap<String, Value>);

#[async_trait::async_trait]
impl ContextLoader for DocLoader {
    async fn load(&self, url: &str) -> Result<Arc<Value>, NgsiError> {
        self.0.get(url).cloned().map(Arc::new).ok_or_else(|| {
            NgsiError::new(
                ErrorKind::LdContextNotAvailable,
                format!("nothing at {url}"),
            )
        })
    }
}

proptest! {
    #[test]
    fn arbitrary_terms_never_panic(term in ".{0,24}") {
        for ctx in contexts() {
            let _ = ctx.expand_term(&term);
            let _ = ctx.try_expand_term(&term);
            let _ = ctx.compact_iri(&term);
            let _ = ctx.term_type(&term);
            let _ = ctx.term_container(&term);
        }
    }

    #[test]
    fn arbitrary_contexts_never_panic(local in arb_json()) {
        if let Ok(ctx) = process_sync_local(&local) {
            // Whatever was defined, compaction keeps meaning.
            if let Value::Object(map) = &local {
                for key in map.keys() {
                    if let Some(iri) = ctx.try_expand_term(key) {
                        prop_assert_eq!(ctx.expand_term(&ctx.compact_iri(&iri)), iri);
                    }
                }
            }
        }
    }

    #[test]
    fn arbitrary_remote_documents_never_panic(
        local in arb_json(),
        x in arb_json(),
        y in arb_json(),
    ) {
        let loader = DocLoader(HashMap::from([
            ("https://remote/x".to_owned(), json!({"@context": x})),
            ("https://remote/y".to_owned(), y),
        ]));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let _ = runtime.block_on(ActiveContext::process(&local, &loader));
    }

    #[test]
    fn compaction_preserves_meaning(base in prop::sample::select(BASES), suffix in ".{0,16}") {
        let iri = format!("{base}{suffix}");
        for ctx in contexts() {
            // Absolute IRIs whose scheme is a prefix term cannot be written
            // unambiguously at all (JSON-LD: "IRI confused with prefix").
            let confused = iri
                .split_once(':')
                .and_then(|(scheme, rest)| ctx.term(scheme).filter(|_| !rest.starts_with("//")))
                .is_some_and(|def| def.is_prefix());
            if confused {
                continue;
            }
            let compacted = ctx.compact_iri(&iri);
            prop_assert_eq!(ctx.expand_term(&compacted), iri.clone(), "via {:?}", compacted);
        }
    }

    #[test]
    fn expansion_then_compaction_is_stable(term in ".{0,16}") {
        for ctx in contexts() {
            if let Some(iri) = ctx.try_expand_term(&term) {
                let compacted = ctx.compact_iri(&iri);
                prop_assert_eq!(ctx.expand_term(&compacted), iri, "{:?} via {:?}", term, compacted);
            }
        }
    }

    #[test]
    fn defined_terms_round_trip(names in prop::collection::btree_set("[a-zA-Z][a-zA-Z0-9_]{0,8}", 1..8)) {
        let core = ActiveContext::core();
        let local: serde_json::Map<String, Value> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), json!(format!("http://example.org/t{i}"))))
            .collect();
        let ctx = process_sync_local(&Value::Object(local)).expect("valid");
        for name in &names {
            let iri = ctx.expand_term(name);
            if core.term(name).is_some() {
                // Core terms win over the user's definition.
                prop_assert_eq!(iri, core.expand_term(name));
            } else {
                prop_assert_eq!(ctx.compact_iri(&iri), name.clone());
            }
        }
    }
}
