//! Term definitions and the lexical predicates of JSON-LD 1.1 that context
//! processing, expansion and compaction share (keywords, absolute IRIs,
//! gen-delims).

use serde_json::Value;

/// The JSON-LD 1.1 keywords (framing keywords excluded: dosi does no framing).
const KEYWORDS: &[&str] = &[
    "@base",
    "@container",
    "@context",
    "@direction",
    "@graph",
    "@id",
    "@import",
    "@included",
    "@index",
    "@json",
    "@language",
    "@list",
    "@nest",
    "@none",
    "@prefix",
    "@propagate",
    "@protected",
    "@reverse",
    "@set",
    "@type",
    "@value",
    "@version",
    "@vocab",
];

/// True for a JSON-LD keyword such as `@id`.
pub(crate) fn is_keyword(s: &str) -> bool {
    s.starts_with('@') && KEYWORDS.contains(&s)
}

/// True for `@` followed by ASCII letters only: reserved for future keywords,
/// so JSON-LD ignores such terms and such IRIs expand to nothing.
pub(crate) fn has_keyword_form(s: &str) -> bool {
    s.len() > 1 && s.starts_with('@') && s[1..].bytes().all(|b| b.is_ascii_alphabetic())
}

/// True if `s` starts with an IRI scheme (`ALPHA *(ALPHA / DIGIT / "+" / "-" / ".") ":"`),
/// i.e. it is an absolute IRI rather than a term or relative reference.
pub(crate) fn is_absolute_iri(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() => {}
        _ => return false,
    }
    for b in bytes {
        match b {
            b':' => return true,
            b if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') => {}
            _ => return false,
        }
    }
    false
}

/// True for a blank node identifier (`_:name`).
pub(crate) fn is_blank_node(s: &str) -> bool {
    s.starts_with("_:")
}

/// True if the IRI ends with a URI gen-delim character, which makes a simple
/// term usable as a prefix (JSON-LD 1.1, create term definition 14.2.5).
pub(crate) fn ends_with_gen_delim(s: &str) -> bool {
    matches!(
        s.as_bytes().last(),
        Some(b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@')
    )
}

/// Splits `prefix:suffix` at the first colon when the value contains a colon
/// after its first character (the JSON-LD test for "may be a compact IRI").
pub(crate) fn split_compact(s: &str) -> Option<(&str, &str)> {
    // Byte search is safe: ':' never occurs inside a multi-byte UTF-8 sequence.
    if !s.bytes().skip(1).any(|b| b == b':') {
        return None;
    }
    s.split_once(':')
}

/// One processed term definition of an active context.
#[derive(Clone, Debug, Default)]
pub struct TermDefinition {
    pub(crate) iri: Option<String>,
    pub(crate) prefix: bool,
    pub(crate) protected: bool,
    pub(crate) reverse: bool,
    pub(crate) type_mapping: Option<String>,
    pub(crate) container: Vec<String>,
    pub(crate) language: Option<Option<String>>,
    pub(crate) direction: Option<Option<String>>,
    pub(crate) index: Option<String>,
    pub(crate) nest: Option<String>,
    pub(crate) scoped_context: Option<Value>,
    /// Defined by a built-in core context: a user context may shadow it
    /// without a protected-term error, because the core is re-applied last.
    pub(crate) from_core: bool,
}

impl TermDefinition {
    /// The IRI (or keyword) the term maps to; `None` for an explicitly unmapped term (`"term": null`).
    pub fn iri(&self) -> Option<&str> {
        self.iri.as_deref()
    }
    /// True if the term may be used as the prefix of a compact IRI.
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }
    /// True if the term is protected against redefinition.
    pub fn is_protected(&self) -> bool {
        self.protected
    }
    /// True for a reverse property (`@reverse`).
    pub fn is_reverse(&self) -> bool {
        self.reverse
    }
    /// The expanded `@type` coercion (`@id`, `@vocab`, `@json`, `@none` or an IRI).
    pub fn type_mapping(&self) -> Option<&str> {
        self.type_mapping.as_deref()
    }
    /// The `@container` keywords, sorted.
    pub fn container(&self) -> &[String] {
        &self.container
    }
    /// The `@language` mapping: `Some(None)` when explicitly null.
    pub fn language(&self) -> Option<Option<&str>> {
        self.language.as_ref().map(Option::as_deref)
    }
    /// The `@direction` mapping: `Some(None)` when explicitly null.
    pub fn direction(&self) -> Option<Option<&str>> {
        self.direction.as_ref().map(Option::as_deref)
    }
    /// The `@index` mapping.
    pub fn index(&self) -> Option<&str> {
        self.index.as_deref()
    }
    /// The `@nest` mapping.
    pub fn nest(&self) -> Option<&str> {
        self.nest.as_deref()
    }
    /// The scoped `@context`, recorded unprocessed.
    pub fn scoped_context(&self) -> Option<&Value> {
        self.scoped_context.as_ref()
    }

    /// Equal apart from the protected flag (and origin): the test JSON-LD uses
    /// to allow re-stating a protected term identically.
    pub(crate) fn same_meaning(&self, other: &TermDefinition) -> bool {
        self.iri == other.iri
            && self.prefix == other.prefix
            && self.reverse == other.reverse
            && self.type_mapping == other.type_mapping
            && self.container == other.container
            && self.language == other.language
            && self.direction == other.direction
            && self.index == other.index
            && self.nest == other.nest
            && self.scoped_context == other.scoped_context
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_predicates() {
        let cases: &[(&str, bool, bool, bool)] = &[
            // (input, keyword, keyword form, absolute IRI)
            ("@id", true, true, false),
            ("@foo", false, true, false),
            ("@", false, false, false),
            ("@foo1", false, false, false),
            ("https://x/y", false, false, true),
            ("urn:ngsi-ld:x", false, false, true),
            ("a+b.c-d:e", false, false, true),
            ("1a:b", false, false, false),
            ("ab", false, false, false),
            (":ab", false, false, false),
            ("a b:c", false, false, false),
            ("é:x", false, false, false),
        ];
        for &(s, kw, form, abs) in cases {
            assert_eq!(is_keyword(s), kw, "is_keyword({s})");
            assert_eq!(has_keyword_form(s), form, "has_keyword_form({s})");
            assert_eq!(is_absolute_iri(s), abs, "is_absolute_iri({s})");
        }
    }

    #[test]
    fn compact_split() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("ex:foo", Some(("ex", "foo"))),
            ("ex:", Some(("ex", ""))),
            (":foo", None),
            ("::foo", Some(("", ":foo"))),
            ("foo", None),
            ("é:x", Some(("é", "x"))),
            ("http://a:b", Some(("http", "//a:b"))),
        ];
        for &(s, want) in cases {
            assert_eq!(split_compact(s), want, "split_compact({s})");
        }
    }

    #[test]
    fn gen_delims() {
        for (s, want) in [
            ("http://x/", true),
            ("http://x#", true),
            ("urn:x:", true),
            ("http://x/y", false),
            ("", false),
        ] {
            assert_eq!(ends_with_gen_delim(s), want, "{s}");
        }
    }
}
