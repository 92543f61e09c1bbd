//! Behaviour of context processing, term expansion and IRI compaction through
//! the public API, table-driven.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dosi_jsonld::{
    core_context_document, process_sync_local, ActiveContext, ContextLoader, CORE_CONTEXT_URL,
};
use dosi_ngsi::{ErrorKind, NgsiError};
use serde_json::{json, Value};

const NGSI: &str = "https://uri.etsi.org/ngsi-ld/";
const DEFAULT: &str = "https://uri.etsi.org/ngsi-ld/default-context/";
const CORE_V1_9: &str = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld";
const TEST_SUITE: &str = "https://ngsi-ld-test-suite/context#";

/// A loader serving fixed documents and recording every URL asked for.
#[derive(Default)]
struct MapLoader {
    docs: HashMap<String, Value>,
    calls: Mutex<Vec<String>>,
}

impl MapLoader {
    fn new(docs: &[(&str, Value)]) -> Self {
        Self {
            docs: docs
                .iter()
                .map(|(url, doc)| (url.to_string(), doc.clone()))
                .collect(),
            calls: Mutex::default(),
        }
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("not poisoned").clone()
    }
}

#[async_trait::async_trait]
impl ContextLoader for MapLoader {
    async fn load(&self, url: &str) -> Result<Arc<Value>, NgsiError> {
        self.calls
            .lock()
            .expect("not poisoned")
            .push(url.to_owned());
        self.docs.get(url).cloned().map(Arc::new).ok_or_else(|| {
            NgsiError::new(
                ErrorKind::LdContextNotAvailable,
                format!("test loader: nothing at {url}"),
            )
        })
    }
}

fn ctx(local: Value) -> ActiveContext {
    process_sync_local(&local).unwrap_or_else(|e| panic!("{local} failed: {e}"))
}

fn check_expand(ctx: &ActiveContext, term: &str, want: &str) {
    assert_eq!(ctx.expand_term(term), want, "expand_term({term:?})");
}

fn check_compact(ctx: &ActiveContext, iri: &str, want: &str) {
    assert_eq!(ctx.compact_iri(iri), want, "compact_iri({iri:?})");
    // Whatever compaction produced must mean the same IRI again.
    if want != iri {
        assert_eq!(
            ctx.expand_term(want),
            iri,
            "expand_term(compact_iri({iri:?}))"
        );
    }
}

fn check_error(local: Value, kind: ErrorKind, mentions: &str) {
    let err = process_sync_local(&local).expect_err(&format!("{local} should fail"));
    assert_eq!(err.kind, kind, "{local}: {err}");
    assert!(
        err.detail.contains(mentions),
        "{local}: detail {:?} should mention {mentions:?}",
        err.detail
    );
}

async fn process(local: Value, loader: &MapLoader) -> Result<ActiveContext, NgsiError> {
    ActiveContext::process(&local, loader).await
}

fn ngsi(s: &str) -> String {
    format!("{NGSI}{s}")
}
fn default(s: &str) -> String {
    format!("{DEFAULT}{s}")
}
fn suite(s: &str) -> String {
    format!("{TEST_SUITE}{s}")
}

#[test]
fn core_terms_expand() {
    let core = ActiveContext::core();
    let cases: &[(&str, String)] = &[
        ("location", ngsi("location")),
        ("observedAt", ngsi("observedAt")),
        ("Property", ngsi("Property")),
        ("GeoProperty", ngsi("GeoProperty")),
        ("Relationship", ngsi("Relationship")),
        ("unitCode", ngsi("unitCode")),
        ("datasetId", ngsi("datasetId")),
        ("createdAt", ngsi("createdAt")),
        ("value", ngsi("hasValue")),
        ("object", ngsi("hasObject")),
        ("containedBy", ngsi("isContainedBy")),
        ("Point", "https://purl.org/geojson/vocab#Point".into()),
        ("description", "http://purl.org/dc/terms/description".into()),
        ("ngsi-ld", NGSI.into()),
        // 1.8 maps these two relative to the default vocabulary.
        ("attributeCount", default("attributeCount")),
        ("attributeDetails", default("attributeDetails")),
        ("id", "@id".into()),
        ("type", "@type".into()),
        ("@id", "@id".into()),
        ("@context", "@context".into()),
        ("@foo", "@foo".into()),
        ("temperature", default("temperature")),
        ("Vehicle", default("Vehicle")),
        ("", DEFAULT.into()),
        ("two words", default("two words")),
        ("ngsi-ld:foo", ngsi("foo")),
        ("ngsi-ld:", NGSI.into()),
        ("geojson:bar", "https://purl.org/geojson/vocab#bar".into()),
        ("http://example.org/x", "http://example.org/x".into()),
        ("urn:ngsi-ld:Vehicle:A", "urn:ngsi-ld:Vehicle:A".into()),
        ("_:b0", "_:b0".into()),
        // `langString` is a term but not a prefix: this is an IRI with that scheme.
        ("langString:x", "langString:x".into()),
        (":x", default(":x")),
        ("a b:c", default("a b:c")),
        ("ngsi-ld://x", "ngsi-ld://x".into()),
    ];
    for (term, want) in cases {
        check_expand(&core, term, want);
    }
    assert_eq!(core.try_expand_term("@foo"), None);
    assert_eq!(core.try_expand_term("location"), Some(ngsi("location")));
}

#[test]
fn core_coercions_and_containers() {
    let core = ActiveContext::core();
    let types: &[(&str, Option<String>)] = &[
        ("observedAt", Some(ngsi("DateTime"))),
        ("modifiedAt", Some(ngsi("DateTime"))),
        ("datasetId", Some("@id".into())),
        ("object", Some("@id".into())),
        ("attributeList", Some("@vocab".into())),
        ("json", Some("@json".into())),
        ("location", None),
        ("unknownTerm", None),
    ];
    for (term, want) in types {
        assert_eq!(core.term_type(term), want.as_deref(), "term_type({term})");
    }
    let containers: &[(&str, &[&str])] = &[
        ("coordinates", &["@list"]),
        ("valueList", &["@list"]),
        ("languageMap", &["@language"]),
        ("features", &["@set"]),
        ("dataset", &["@index"]),
        ("location", &[]),
        ("unknownTerm", &[]),
    ];
    for (term, want) in containers {
        assert_eq!(core.term_container(term), *want, "term_container({term})");
    }
    let location = core.term("location").expect("core term");
    assert!(location.is_protected());
    assert!(!location.is_prefix());
    assert!(core.term("ngsi-ld").expect("core term").is_prefix());
    assert_eq!(core.vocab(), Some(DEFAULT));
}

#[test]
fn core_compaction() {
    let core = ActiveContext::core();
    let cases: &[(String, &str)] = &[
        (ngsi("location"), "location"),
        (ngsi("hasValue"), "value"),
        (ngsi("DateTime"), "DateTime"),
        ("https://purl.org/geojson/vocab#Point".into(), "Point"),
        ("@id".into(), "id"),
        ("@type".into(), "type"),
        (default("temperature"), "temperature"),
        (default("attributeCount"), "attributeCount"),
        (ngsi("brandNew"), "ngsi-ld:brandNew"),
        ("https://purl.org/geojson/vocab#zzz".into(), "geojson:zzz"),
        (NGSI.into(), "ngsi-ld"),
        // "location" is a term, so the vocab-relative form would be wrong.
        (default("location"), "ngsi-ld:default-context/location"),
        // The suffix "ngsi-ld:x" would expand through the prefix.
        (default("ngsi-ld:x"), "ngsi-ld:default-context/ngsi-ld:x"),
        (default("urn:x"), "ngsi-ld:default-context/urn:x"),
        (DEFAULT.into(), "ngsi-ld:default-context/"),
        ("http://example.org/x".into(), "http://example.org/x"),
        ("urn:ngsi-ld:Vehicle:A".into(), "urn:ngsi-ld:Vehicle:A"),
    ];
    for (iri, want) in cases {
        check_compact(&core, iri, want);
    }
}

#[test]
fn every_core_term_round_trips() {
    for url in [CORE_CONTEXT_URL, CORE_V1_9] {
        let doc: Value =
            serde_json::from_str(core_context_document(url).expect("core URL")).expect("JSON");
        let active = ctx(json!(url));
        let terms = doc["@context"].as_object().expect("object");
        let mut checked = 0;
        for term in terms.keys().filter(|t| !t.starts_with('@')) {
            let iri = active.expand_term(term);
            assert_eq!(active.compact_iri(&iri), *term, "{url}: {term} -> {iri}");
            checked += 1;
        }
        assert!(checked > 150, "{url}: only {checked} terms");
    }
}

#[test]
fn user_terms_override_default_but_not_core() {
    let c = ctx(json!({
        "Vehicle": "https://ex.org/Vehicle",
        "temperature": "https://ex.org/temperature",
        "location": "https://ex.org/location",
        "Property": "https://ex.org/Property",
        "ex": "https://ex.org/",
        "speed": {"@id": "ex:speed", "@type": "ex:Speed"},
        "tags": {"@id": "ex:tags", "@container": "@set"},
        "nothing": null,
    }));
    let expansions: &[(&str, String)] = &[
        ("Vehicle", "https://ex.org/Vehicle".into()),
        ("temperature", "https://ex.org/temperature".into()),
        ("location", ngsi("location")),
        ("Property", ngsi("Property")),
        ("ex:foo", "https://ex.org/foo".into()),
        ("speed", "https://ex.org/speed".into()),
        ("unknown", default("unknown")),
        ("nothing", "nothing".into()),
    ];
    for (term, want) in expansions {
        check_expand(&c, term, want);
    }
    assert_eq!(c.try_expand_term("nothing"), None);
    assert_eq!(c.term_type("speed"), Some("https://ex.org/Speed"));
    assert_eq!(c.term_container("tags"), ["@set"]);
    let compactions: &[(&str, &str)] = &[
        ("https://ex.org/Vehicle", "Vehicle"),
        ("https://ex.org/temperature", "temperature"),
        ("https://ex.org/speed", "speed"),
        ("https://ex.org/location", "ex:location"),
        ("https://ex.org/other", "ex:other"),
        ("https://ex.org/", "ex"),
        ("https://uri.etsi.org/ngsi-ld/location", "location"),
    ];
    for (iri, want) in compactions {
        check_compact(&c, iri, want);
    }
    // An unmapped term is never produced by compaction.
    check_compact(&c, &default("nothing"), "ngsi-ld:default-context/nothing");
}

#[test]
fn prefixes_follow_json_ld_1_1() {
    let c = ctx(json!({
        "slash": "http://a.org/ns/",
        "hash": "http://b.org/ns#",
        "plain": "http://c.org/ns",
        "expanded": {"@id": "http://d.org/ns/"},
        "forced": {"@id": "http://e.org/ns", "@prefix": true},
        "refused": {"@id": "http://f.org/ns/", "@prefix": false},
    }));
    let cases: &[(&str, &str)] = &[
        ("slash:x", "http://a.org/ns/x"),
        ("hash:x", "http://b.org/ns#x"),
        // Not ending in a gen-delim: an IRI with scheme "plain", not a compact IRI.
        ("plain:x", "plain:x"),
        // Expanded definitions are prefixes only with @prefix: true.
        ("expanded:x", "expanded:x"),
        ("forced:x", "http://e.org/nsx"),
        ("refused:x", "refused:x"),
        ("slash://x", "slash://x"),
    ];
    for (term, want) in cases {
        check_expand(&c, term, want);
    }
    let compactions: &[(&str, &str)] = &[
        ("http://a.org/ns/x", "slash:x"),
        ("http://b.org/ns#x", "hash:x"),
        ("http://c.org/nsx", "http://c.org/nsx"),
        ("http://d.org/ns/x", "http://d.org/ns/x"),
        ("http://e.org/nsx", "forced:x"),
        ("http://f.org/ns/x", "http://f.org/ns/x"),
    ];
    for (iri, want) in compactions {
        check_compact(&c, iri, want);
    }
}

#[test]
fn compaction_prefers_shortest_then_least() {
    let c = ctx(json!({
        "long": "http://x.org/a/",
        "lb": "http://x.org/a/b/",
        "zz": "http://x.org/same",
        "aa": "http://x.org/same",
        "aaa": "http://x.org/same",
        "loc": "https://uri.etsi.org/ngsi-ld/location",
    }));
    let cases: &[(&str, &str)] = &[
        ("http://x.org/a/b/c", "lb:c"),
        ("http://x.org/a/bc", "long:bc"),
        ("http://x.org/same", "aa"),
        // A user term shorter than the core term wins the compaction.
        ("https://uri.etsi.org/ngsi-ld/location", "loc"),
    ];
    for (iri, want) in cases {
        check_compact(&c, iri, want);
    }
}

#[test]
fn user_vocab() {
    let cases: &[(Value, &str, String)] = &[
        (
            json!({"@vocab": "https://vocab.org/"}),
            "foo",
            "https://vocab.org/foo".into(),
        ),
        (
            json!({"@vocab": "https://vocab.org/"}),
            "location",
            ngsi("location"),
        ),
        (
            json!([{"@vocab": "https://vocab.org/"}, CORE_CONTEXT_URL]),
            "foo",
            default("foo"),
        ),
        (
            json!([CORE_CONTEXT_URL, {"@vocab": "https://vocab.org/"}]),
            "foo",
            "https://vocab.org/foo".into(),
        ),
        (json!({"@vocab": null}), "foo", default("foo")),
        (
            json!([null, {"@vocab": "https://vocab.org/"}]),
            "foo",
            "https://vocab.org/foo".into(),
        ),
        (
            json!([{"ex": "https://ex.org/"}, {"@vocab": "ex:v/"}]),
            "foo",
            "https://ex.org/v/foo".into(),
        ),
        (
            json!([{"v": "https://ex.org/v#"}, {"@vocab": "v"}]),
            "foo",
            "https://ex.org/v#foo".into(),
        ),
        // A relative @vocab is appended to the current one.
        (json!({"@vocab": "sub/"}), "foo", default("sub/foo")),
        (
            json!({"@vocab": "https://vocab.org/", "t": {"@type": "@id"}}),
            "t",
            "https://vocab.org/t".into(),
        ),
    ];
    for (local, term, want) in cases {
        let c = ctx(local.clone());
        assert_eq!(c.expand_term(term), *want, "{local}: {term}");
    }
    let c = ctx(json!({"@vocab": "https://vocab.org/"}));
    check_compact(&c, "https://vocab.org/foo", "foo");
    check_compact(&c, &default("foo"), "ngsi-ld:default-context/foo");
}

#[test]
fn null_contexts() {
    let c =
        ctx(json!([{"Vehicle": "https://ex.org/Vehicle"}, null, {"Car": "https://ex.org/Car"}]));
    check_expand(&c, "Vehicle", &default("Vehicle"));
    check_expand(&c, "Car", "https://ex.org/Car");
    // The core is back after the null context.
    check_expand(&c, "location", &ngsi("location"));
    let c = ctx(json!(null));
    check_expand(&c, "location", &ngsi("location"));
    check_expand(&c, "foo", &default("foo"));
    // After a null context the core's prefixes are not visible until
    // processing ends: "ngsi-ld:a" is then an IRI with scheme "ngsi-ld".
    check_expand(&ctx(json!([null, {"a": "ngsi-ld:a"}])), "a", "ngsi-ld:a");
}

#[test]
fn protected_terms() {
    let ok: &[Value] = &[
        // Re-stating a protected term identically is allowed.
        json!([{"@protected": true, "P": "http://ex.org/p"}, {"P": "http://ex.org/p"}]),
        json!([{"@protected": true, "P": "http://ex.org/p"}, {"P": {"@id": "http://ex.org/p"}}]),
        // An unprotected term may be redefined.
        json!([{"P": "http://ex.org/p"}, {"P": "http://ex.org/q"}]),
        json!([{"@protected": true, "P": {"@id": "http://ex.org/p", "@protected": false}}, {"P": "http://ex.org/q"}]),
        // Core terms are protected, but the core is re-applied last anyway.
        json!({"location": "http://ex.org/location"}),
        json!([CORE_CONTEXT_URL, {"location": {"@id": "http://ex.org/location", "@type": "@id"}}]),
        // A null context without user-protected terms.
        json!([CORE_CONTEXT_URL, null]),
    ];
    for local in ok {
        ctx(local.clone());
    }
    let c = ctx(
        json!([CORE_CONTEXT_URL, {"location": {"@id": "http://ex.org/location", "@type": "@id"}}]),
    );
    check_expand(&c, "location", &ngsi("location"));
    assert_eq!(c.term_type("location"), None);

    let errors: &[(Value, &str)] = &[
        (
            json!([{"@protected": true, "P": "http://ex.org/p"}, {"P": "http://ex.org/q"}]),
            "\"P\": protected term redefinition",
        ),
        (
            json!([{"P": {"@id": "http://ex.org/p", "@protected": true}}, {"P": null}]),
            "\"P\": protected term redefinition",
        ),
        (
            json!([{"@protected": true, "P": "http://ex.org/p"}, {"P": {"@id": "http://ex.org/p", "@type": "@id"}}]),
            "protected term redefinition",
        ),
        (
            json!([{"@protected": true, "P": "http://ex.org/p"}, null]),
            "nullification",
        ),
    ];
    for (local, mentions) in errors {
        check_error(local.clone(), ErrorKind::BadRequestData, mentions);
    }
}

#[test]
fn term_definition_recursion() {
    let c = ctx(json!({
        "d": "c:d",
        "c": "b:c/",
        "b": "a:b/",
        "a": "http://a.org/",
        "self": {"@id": "self"},
        "rel/path": {"@type": "@id"},
        "a:explicit": {"@type": "@id"},
        "ex2:other": {"@type": "@id"},
        "typed": {"@id": "http://t.org/typed", "@type": "DateTime"},
        "alias": "type",
        "ࠀ": "http://x.org/wide",
    }));
    let cases: &[(&str, String)] = &[
        // Only simple terms ending in a gen-delim are prefixes: c maps to ".../b/c/".
        ("d", "http://a.org/b/c/d".into()),
        ("c", "http://a.org/b/c/".into()),
        ("self", default("self")),
        ("rel/path", default("rel/path")),
        ("a:explicit", "http://a.org/explicit".into()),
        ("ex2:other", "ex2:other".into()),
        ("alias", "@type".into()),
        // Multi-byte term names (a proptest once found a slicing bug here).
        ("ࠀ", "http://x.org/wide".into()),
    ];
    for (term, want) in cases {
        check_expand(&c, term, want);
    }
    assert_eq!(c.term_type("typed"), Some(ngsi("DateTime").as_str()));
    assert_eq!(c.term_type("rel/path"), Some("@id"));
}

#[test]
fn invalid_contexts() {
    use ErrorKind::BadRequestData as Bad;
    let cases: &[(Value, &str)] = &[
        (json!({"foo": 5}), "\"foo\""),
        (json!({"foo": true}), "\"foo\""),
        (json!({"foo": ["http://x.org/"]}), "\"foo\""),
        (json!({"@version": 1.0}), "@version"),
        (json!({"@version": "1.1"}), "@version"),
        (json!({"a": "b:x", "b": "a:y"}), "cyclic IRI mapping"),
        (json!({"a": "a:x"}), "\"a\": cyclic"),
        (
            json!({"@context": {}}),
            "\"@context\": keyword redefinition",
        ),
        (
            json!({"@id": "http://x.org/"}),
            "\"@id\": keyword redefinition",
        ),
        (
            json!({"@type": "http://x.org/"}),
            "\"@type\": keyword redefinition",
        ),
        (json!({"id2": "@context"}), "\"id2\": invalid keyword alias"),
        (
            json!({"t": {"@type": "@list"}}),
            "\"t\": invalid type mapping",
        ),
        (json!({"t": {"@type": 5}}), "\"t\": invalid type mapping"),
        (
            json!({"t": {"@container": "@foo"}}),
            "\"t\": invalid container",
        ),
        (
            json!({"t": {"@container": ["@list", "@set"]}}),
            "\"t\": invalid container",
        ),
        (
            json!({"t": {"@container": "@type", "@type": "@json"}}),
            "\"t\": invalid type mapping",
        ),
        (
            json!({"t": {"@id": "http://x.org/", "@foo": 1}}),
            "unexpected entry \"@foo\"",
        ),
        (json!({"t": {"@id": 5}}), "\"t\": invalid IRI mapping"),
        (
            json!({"t": {"@id": "http://x.org/", "@prefix": "yes"}}),
            "\"t\": invalid @prefix",
        ),
        (
            json!({"ex:t": {"@id": "http://x.org/", "@prefix": true}}),
            "\"ex:t\"",
        ),
        (json!({"t": {"@id": "@type", "@prefix": true}}), "\"t\""),
        (
            json!({"ex": "http://ex.org/", "ex:foo": "http://other.org/foo"}),
            "\"ex:foo\": invalid IRI mapping",
        ),
        (
            json!({"t": {"@id": "http://x.org/", "@protected": "yes"}}),
            "\"t\": invalid @protected",
        ),
        (
            json!({"t": {"@reverse": "http://x.org/", "@id": "http://y.org/"}}),
            "\"t\": invalid reverse",
        ),
        (
            json!({"t": {"@reverse": "http://x.org/", "@container": "@list"}}),
            "\"t\": invalid reverse",
        ),
        (json!({"t": {"@reverse": 5}}), "\"t\": invalid IRI mapping"),
        (
            json!({"t": {"@id": "http://x.org/", "@index": "x"}}),
            "\"t\": invalid term definition",
        ),
        (
            json!({"t": {"@id": "http://x.org/", "@language": 5}}),
            "\"t\": invalid language",
        ),
        (
            json!({"t": {"@id": "http://x.org/", "@direction": "up"}}),
            "\"t\"",
        ),
        (
            json!({"t": {"@id": "http://x.org/", "@nest": "@id"}}),
            "\"t\": invalid @nest",
        ),
        (json!({"": "http://x.org/"}), "empty string"),
        // "ࠀ" is no prefix (no trailing gen-delim), so "ࠀ:ࠀ" already means a default-context IRI.
        (
            json!({"ࠀ": "http://x.org/wide", "ࠀ:ࠀ": "http://x.org/wide2"}),
            "\"ࠀ:ࠀ\": invalid IRI mapping",
        ),
        (json!({"@vocab": 5}), "vocab"),
        (
            json!([null, {"@vocab": "relative"}]),
            "vocab mapping \"relative\"",
        ),
        (
            json!([null, {"foo": {"@type": "@id"}}]),
            "\"foo\": invalid IRI mapping",
        ),
        (
            json!([null, {"foo": "bar"}]),
            "\"foo\": invalid IRI mapping",
        ),
        (json!({"@propagate": "yes"}), "@propagate"),
        (json!({"@protected": "yes"}), "@protected"),
        (json!({"@direction": "up"}), "direction"),
        (json!({"@language": 5}), "language"),
        (json!({"@base": 5}), "base"),
        (json!({"@import": 5}), "@import"),
        (json!(42), "invalid local context"),
        (json!([[]]), "invalid local context"),
        (json!([true]), "invalid local context"),
        (
            json!({"b": "nothing:x", "nothing": null, "c": {"@id": "nothing"}}),
            "\"c\": invalid IRI mapping",
        ),
    ];
    for (local, mentions) in cases {
        check_error(local.clone(), Bad, mentions);
    }
}

#[test]
fn ignored_and_recorded_entries() {
    let c = ctx(json!({
        "@base": "http://base.org/",
        "@language": "en",
        "@direction": "ltr",
        "@propagate": true,
        "@version": 1.1,
        "@reserved": "http://x.org/",
        "kw": "@reserved",
        "@type": {"@container": "@set"},
        "myLang": {"@id": "http://x.org/lang", "@language": null, "@direction": "rtl"},
        "rev": {"@reverse": "http://x.org/parent"},
        "idx": {"@id": "http://x.org/idx", "@container": "@index", "@index": "http://x.org/key"},
        "nested": {"@id": "http://x.org/nested", "@nest": "@nest"},
    }));
    assert_eq!(c.base(), Some("http://base.org/"));
    assert_eq!(c.default_language(), Some("en"));
    assert_eq!(c.default_direction(), Some("ltr"));
    assert!(c.term("@reserved").is_none());
    assert!(c.term("kw").is_none());
    let lang = c.term("myLang").expect("defined");
    assert_eq!(lang.language(), Some(None));
    assert_eq!(lang.direction(), Some(Some("rtl")));
    let rev = c.term("rev").expect("defined");
    assert!(rev.is_reverse());
    // Reverse properties are not used for compaction.
    check_compact(&c, "http://x.org/parent", "http://x.org/parent");
    assert_eq!(
        c.term("idx").and_then(|d| d.index()),
        Some("http://x.org/key")
    );
    assert_eq!(c.term("nested").and_then(|d| d.nest()), Some("@nest"));
}

#[test]
fn v1_9_core_context() {
    let c = ctx(json!(CORE_V1_9));
    check_expand(&c, "jsonldContext", &ngsi("jsonldContext"));
    check_expand(&c, "location", &ngsi("location"));
    // 1.8 is re-applied last and wins where the versions differ.
    check_expand(&c, "attributeCount", &default("attributeCount"));
    assert!(c.term_container("entityMap").is_empty());
    assert!(c
        .term("ngsildproof")
        .and_then(|d| d.scoped_context())
        .is_some());
    // Without the 1.9 URL its new terms are unknown.
    check_expand(
        &ActiveContext::core(),
        "jsonldContext",
        &default("jsonldContext"),
    );
}

#[test]
fn core_urls_and_sync_refusal() {
    for url in [
        CORE_CONTEXT_URL,
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        "http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld",
    ] {
        let c = ctx(json!([url, {"Vehicle": "https://ex.org/Vehicle"}]));
        check_expand(&c, "Vehicle", "https://ex.org/Vehicle");
        check_expand(&c, "observedAt", &ngsi("observedAt"));
    }
    check_error(
        json!(["https://example.org/ctx.jsonld"]),
        ErrorKind::LdContextNotAvailable,
        "https://example.org/ctx.jsonld",
    );
    check_error(
        json!({"@import": "https://example.org/imp.jsonld"}),
        ErrorKind::LdContextNotAvailable,
        "https://example.org/imp.jsonld",
    );
}

fn etsi_loader() -> MapLoader {
    MapLoader::new(&[
        (
            "https://example/ctx.jsonld",
            json!({"@context": {
                "Building": suite("Building"),
                "Vehicle": suite("Vehicle"),
                "OffStreetParking": suite("OffStreetParking"),
                "brandName": suite("brandName"),
                "speed": suite("speed"),
                "name": suite("name"),
            }}),
        ),
        (
            "https://example/compound.jsonld",
            json!({"@context": ["https://example/ctx.jsonld", CORE_CONTEXT_URL]}),
        ),
    ])
}

#[tokio::test]
async fn etsi_style_contexts() {
    let loader = etsi_loader();
    for local in [
        json!(["https://example/ctx.jsonld", CORE_CONTEXT_URL]),
        json!("https://example/compound.jsonld"),
        json!(["https://example/compound.jsonld"]),
    ] {
        let c = process(local.clone(), &loader).await.expect("processes");
        let cases: &[(&str, String)] = &[
            ("Vehicle", suite("Vehicle")),
            ("brandName", suite("brandName")),
            ("speed", suite("speed")),
            ("location", ngsi("location")),
            ("unknownAttr", default("unknownAttr")),
        ];
        for (term, iri) in cases {
            check_expand(&c, term, iri);
            check_compact(&c, iri, term);
        }
    }
    // The core URL is never fetched.
    assert!(loader
        .calls()
        .iter()
        .all(|url| !url.contains("uri.etsi.org")));
}

#[tokio::test]
async fn remote_documents_are_fetched_once_each() {
    let loader = MapLoader::new(&[
        (
            "https://ex.org/a",
            json!({"@context": ["https://ex.org/b", {"a": "http://x.org/a"}]}),
        ),
        (
            "https://ex.org/b",
            json!({"@context": {"b": "http://x.org/b"}}),
        ),
    ]);
    let local = json!(["https://ex.org/a", "https://ex.org/b", "https://ex.org/a"]);
    let c = process(local, &loader).await.expect("processes");
    check_expand(&c, "a", "http://x.org/a");
    check_expand(&c, "b", "http://x.org/b");
    assert_eq!(loader.calls(), ["https://ex.org/a", "https://ex.org/b"]);
}

#[tokio::test]
async fn remote_failures() {
    let mut docs: Vec<(String, Value)> = vec![
        (
            "https://ex.org/cycle-a".into(),
            json!({"@context": ["https://ex.org/cycle-b"]}),
        ),
        (
            "https://ex.org/cycle-b".into(),
            json!({"@context": [{"x": "http://x.org/x"}, "https://ex.org/cycle-a"]}),
        ),
        (
            "https://ex.org/self".into(),
            json!({"@context": "https://ex.org/self"}),
        ),
        (
            "https://ex.org/no-context".into(),
            json!({"hello": "world"}),
        ),
        ("https://ex.org/not-object".into(), json!([1, 2])),
        (
            "https://ex.org/bad-content".into(),
            json!({"@context": {"broken": 5}}),
        ),
        (
            "https://ex.org/via-bad".into(),
            json!({"@context": ["https://ex.org/bad-content"]}),
        ),
        (
            "https://ex.org/missing-child".into(),
            json!({"@context": ["https://ex.org/nowhere"]}),
        ),
        (
            "https://ex.org/protect".into(),
            json!({"@context": {"@protected": true, "P": "http://x.org/p"}}),
        ),
        (
            "https://ex.org/redefine".into(),
            json!({"@context": {"P": "http://x.org/q"}}),
        ),
        (
            "https://ex.org/import-array".into(),
            json!({"@context": [{"a": "http://x.org/a"}]}),
        ),
        (
            "https://ex.org/import-import".into(),
            json!({"@context": {"@import": "https://ex.org/b"}}),
        ),
    ];
    // A chain deeper than the nesting limit.
    for i in 0..40 {
        docs.push((
            format!("https://ex.org/deep/{i}"),
            json!({"@context": format!("https://ex.org/deep/{}", i + 1)}),
        ));
    }
    docs.push(("https://ex.org/deep/40".into(), json!({"@context": {}})));
    for i in 0..70 {
        docs.push((format!("https://ex.org/flat/{i}"), json!({"@context": {}})));
    }
    let docs: Vec<(&str, Value)> = docs.iter().map(|(u, d)| (u.as_str(), d.clone())).collect();
    let loader = MapLoader::new(&docs);
    let many: Vec<Value> = (0..70)
        .map(|i| json!(format!("https://ex.org/flat/{i}")))
        .collect();

    let cases: Vec<(Value, ErrorKind, &str)> = vec![
        (
            json!("https://ex.org/cycle-a"),
            ErrorKind::BadRequestData,
            "https://ex.org/cycle-a -> https://ex.org/cycle-b -> https://ex.org/cycle-a",
        ),
        (
            json!("https://ex.org/self"),
            ErrorKind::BadRequestData,
            "recursive",
        ),
        (
            json!(["https://ex.org/missing"]),
            ErrorKind::LdContextNotAvailable,
            "test loader: nothing at https://ex.org/missing",
        ),
        (
            json!("https://ex.org/missing-child"),
            ErrorKind::LdContextNotAvailable,
            "test loader: nothing at https://ex.org/nowhere",
        ),
        (
            json!("https://ex.org/no-context"),
            ErrorKind::BadRequestData,
            "https://ex.org/no-context",
        ),
        (
            json!("https://ex.org/not-object"),
            ErrorKind::BadRequestData,
            "https://ex.org/not-object",
        ),
        (
            json!("https://ex.org/bad-content"),
            ErrorKind::BadRequestData,
            "(https://ex.org/bad-content): term \"broken\"",
        ),
        (
            json!("https://ex.org/via-bad"),
            ErrorKind::BadRequestData,
            "https://ex.org/bad-content",
        ),
        (
            json!(["https://ex.org/protect", "https://ex.org/redefine"]),
            ErrorKind::BadRequestData,
            "(https://ex.org/redefine): term \"P\": protected term redefinition",
        ),
        (
            json!("https://ex.org/deep/0"),
            ErrorKind::BadRequestData,
            "overflow",
        ),
        (
            json!(many),
            ErrorKind::BadRequestData,
            "more than 64 remote documents",
        ),
        (
            json!({"@import": "https://ex.org/import-array"}),
            ErrorKind::BadRequestData,
            "https://ex.org/import-array",
        ),
        (
            json!({"@import": "https://ex.org/import-import"}),
            ErrorKind::BadRequestData,
            "must not contain @import",
        ),
        (
            json!({"@import": "https://ex.org/gone"}),
            ErrorKind::LdContextNotAvailable,
            "https://ex.org/gone",
        ),
    ];
    for (local, kind, mentions) in cases {
        let err = process(local.clone(), &loader)
            .await
            .expect_err(&format!("{local} should fail"));
        assert_eq!(err.kind, kind, "{local}: {err}");
        assert!(
            err.detail.contains(mentions),
            "{local}: {:?} should mention {mentions:?}",
            err.detail
        );
    }
}

#[tokio::test]
async fn scoped_contexts_refused_inline_recorded_remote() {
    let scoped = json!({"Vehicle": {"@id": "https://ex.org/Vehicle", "@context": {"inner": "http://x.org/inner"}}});
    // 5.5.7: the request's own @context shall not contain scoped contexts,
    // however deep in an array it is.
    for local in [scoped.clone(), json!([CORE_CONTEXT_URL, scoped.clone()])] {
        check_error(local, ErrorKind::BadRequestData, "scoped contexts");
    }
    // A remote document may: its scoped context is recorded, not applied.
    let loader = MapLoader::new(&[("https://ex.org/scoped", json!({"@context": scoped}))]);
    let c = process(json!("https://ex.org/scoped"), &loader)
        .await
        .expect("processes");
    check_expand(&c, "Vehicle", "https://ex.org/Vehicle");
    assert_eq!(
        c.term("Vehicle").and_then(|d| d.scoped_context()),
        Some(&json!({"inner": "http://x.org/inner"}))
    );
    check_expand(&c, "inner", &default("inner"));
}

#[tokio::test]
async fn import_merges_under_local_entries() {
    let loader = MapLoader::new(&[(
        "https://ex.org/imp",
        json!({"@context": {"x": "http://a.org/x", "y": "http://a.org/y", "@vocab": "http://a.org/v/"}}),
    )]);
    let local = json!({"@import": "https://ex.org/imp", "x": "http://b.org/x"});
    let c = process(local, &loader).await.expect("processes");
    check_expand(&c, "x", "http://b.org/x");
    check_expand(&c, "y", "http://a.org/y");
    check_expand(&c, "z", "http://a.org/v/z");
    // Importing the core context works without the loader.
    let c = process(
        json!({"@import": CORE_CONTEXT_URL, "a": "ngsi-ld:a"}),
        &loader,
    )
    .await
    .expect("processes");
    check_expand(&c, "a", &ngsi("a"));
}

#[tokio::test]
async fn core_context_alone_is_shared() {
    let loader = MapLoader::default();
    for local in [
        json!(CORE_CONTEXT_URL),
        json!(null),
        json!([]),
        json!({}),
        json!([CORE_CONTEXT_URL, {"location": "http://x.org/"}]),
    ] {
        let c = process(local.clone(), &loader).await.expect("processes");
        assert!(
            format!("{c:?}").contains("user_terms: []"),
            "{local}: {c:?}"
        );
    }
    assert!(loader.calls().is_empty());
}

#[test]
fn types_are_thread_safe() {
    fn send_sync_clone<T: Send + Sync + Clone + std::fmt::Debug>() {}
    send_sync_clone::<ActiveContext>();
    fn send<T: Send>(_: &T) {}
    let loader = MapLoader::default();
    let local = json!(null);
    let fut = ActiveContext::process(&local, &loader);
    send(&fut);
}
