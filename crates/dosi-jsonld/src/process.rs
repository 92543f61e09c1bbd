//! The JSON-LD 1.1 context processing algorithm (W3C JSON-LD 1.1 API §4.1 and
//! §4.2, with IRI expansion §5.2), restricted to what term handling needs.
//!
//! Processing is synchronous: remote documents are fetched beforehand (see
//! [`crate::context`]) and handed in through a resolver, so the recursion here
//! needs no async machinery. Deviations from the W3C algorithm, all on purpose:
//! - core-context URLs are never dereferenced; they apply the built-in tables;
//! - terms of the core context may be shadowed by user contexts without a
//!   "protected term redefinition" error (the broker re-applies the core last,
//!   so the core wins anyway); protection between user terms is enforced;
//! - scoped contexts (`@context` in a term definition) are refused in a context
//!   embedded in the request (NGSI-LD 5.5.7: a user @context shall not contain
//!   them) and recorded, not processed, in remote documents, which the user may
//!   not control;
//! - relative IRIs are not resolved against `@base` (the broker has no document URL).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use dosi_ngsi::NgsiError;
use serde_json::{Map, Value};

use crate::core::{self, CoreTables, CoreVersion};
use crate::term::{
    ends_with_gen_delim, has_keyword_form, is_absolute_iri, is_blank_node, is_keyword,
    split_compact, TermDefinition,
};
use crate::{core_version_of, MAX_REMOTE_DEPTH};

/// Deepest chain of term definitions that depend on each other; bounds the
/// recursion so that a hostile context cannot overflow the stack.
const MAX_TERM_DEPTH: usize = 128;

/// Hands out already-fetched remote context documents by URL.
pub(crate) type Resolver<'r> = &'r dyn Fn(&str) -> Result<Arc<Value>, NgsiError>;

/// The mutable active context while a local context is processed.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Terms defined (or removed: `None`) since the start, layered over `core`.
    pub(crate) overlay: HashMap<String, Option<TermDefinition>>,
    /// The core 1.8 term table, visible under the overlay until a null context.
    pub(crate) core: Option<&'static CoreTables>,
    pub(crate) vocab: Option<String>,
    pub(crate) base: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) direction: Option<String>,
}

impl State {
    /// The state on top of the core context: where user processing starts.
    pub(crate) fn on_core() -> State {
        let mut state = State::default();
        state.apply_core(CoreVersion::V1_8);
        state
    }

    /// The current definition of `term`, if any.
    pub(crate) fn get(&self, term: &str) -> Option<&TermDefinition> {
        match self.overlay.get(term) {
            Some(def) => def.as_ref(),
            None => self.core.and_then(|core| core.tables.terms.get(term)),
        }
    }

    /// Applies a built-in core context: its terms replace whatever the user
    /// defined under the same names, and its `@vocab` becomes current.
    pub(crate) fn apply_core(&mut self, version: CoreVersion) {
        let base = core::tables(CoreVersion::V1_8);
        self.overlay
            .retain(|term, _| !base.tables.terms.contains_key(term));
        let wanted = core::tables(version);
        for (term, def) in &wanted.delta_from_v1_8 {
            self.overlay.insert(term.clone(), Some(def.clone()));
        }
        self.core = Some(base);
        self.vocab.clone_from(&wanted.vocab);
    }

    /// True if a term defined by a user context is protected.
    fn has_user_protected(&self) -> bool {
        self.overlay
            .values()
            .flatten()
            .any(|def| def.protected && !def.from_core)
    }
}

/// Parameters of one local context object while its terms are defined.
struct TermScope<'a> {
    local: &'a Map<String, Value>,
    defined: HashMap<&'a str, bool>,
    protected: bool,
    in_core: bool,
    /// A context object embedded in the request itself (not from a remote document).
    inline: bool,
    origin: &'a str,
}

/// Runs context processing with remote documents from a resolver.
pub(crate) struct Processor<'r> {
    resolve: Resolver<'r>,
    /// Processing a built-in core document: its terms are marked as core.
    in_core: bool,
}

/// `BadRequestData` naming where in which context the problem is.
fn invalid(origin: &str, what: impl std::fmt::Display) -> NgsiError {
    NgsiError::bad_data(format!("invalid JSON-LD @context ({origin}): {what}"))
}

fn invalid_term(origin: &str, term: &str, what: impl std::fmt::Display) -> NgsiError {
    invalid(origin, format!("term \"{term}\": {what}"))
}

/// A short description of a JSON value's kind for error messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Context-level keys; every other key of a context object defines a term.
const CONTEXT_KEYS: &[&str] = &[
    "@base",
    "@direction",
    "@import",
    "@language",
    "@propagate",
    "@protected",
    "@version",
    "@vocab",
];

/// Keys allowed in an expanded term definition.
const TERM_KEYS: &[&str] = &[
    "@id",
    "@reverse",
    "@container",
    "@context",
    "@direction",
    "@index",
    "@language",
    "@nest",
    "@prefix",
    "@protected",
    "@type",
];

impl<'r> Processor<'r> {
    /// A processor for user contexts.
    pub(crate) fn new(resolve: Resolver<'r>) -> Self {
        Self {
            resolve,
            in_core: false,
        }
    }

    /// A processor for the built-in core documents.
    pub(crate) fn for_core(resolve: Resolver<'r>) -> Self {
        Self {
            resolve,
            in_core: true,
        }
    }

    /// Processes `local` (the value of an `@context`) into `state`.
    /// `remote` is the chain of remote documents being processed, `origin`
    /// names the context for error messages.
    pub(crate) fn process(
        &self,
        state: &mut State,
        local: &Value,
        remote: &mut Vec<String>,
        origin: &str,
    ) -> Result<(), NgsiError> {
        let items = match local {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        for item in items {
            match item {
                Value::Null => {
                    if state.has_user_protected() {
                        return Err(invalid(
                            origin,
                            "invalid context nullification: a null context would clear protected terms",
                        ));
                    }
                    *state = State::default();
                }
                Value::String(url) => self.process_remote(state, url, remote)?,
                Value::Object(map) => self.process_object(state, map, remote, origin)?,
                other => {
                    return Err(invalid(
                        origin,
                        format!(
                            "invalid local context: expected an IRI, an object or null, got {}",
                            kind_of(other)
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    fn process_remote(
        &self,
        state: &mut State,
        url: &str,
        remote: &mut Vec<String>,
    ) -> Result<(), NgsiError> {
        if let Some(version) = core_version_of(url) {
            state.apply_core(version);
            return Ok(());
        }
        if remote.iter().any(|seen| seen == url) {
            return Err(NgsiError::bad_data(format!(
                "recursive JSON-LD @context inclusion: {} -> {url}",
                remote.join(" -> ")
            )));
        }
        if remote.len() >= MAX_REMOTE_DEPTH {
            return Err(NgsiError::bad_data(format!(
                "JSON-LD @context overflow: more than {MAX_REMOTE_DEPTH} nested remote contexts at {url}"
            )));
        }
        let doc = (self.resolve)(url)?;
        let context = remote_context_member(&doc, url)?;
        remote.push(url.to_owned());
        let outcome = self.process(state, context, remote, url);
        remote.pop();
        outcome
    }

    fn process_object(
        &self,
        state: &mut State,
        map: &Map<String, Value>,
        remote: &[String],
        origin: &str,
    ) -> Result<(), NgsiError> {
        if let Some(version) = map.get("@version") {
            if version.as_f64() != Some(1.1) {
                return Err(invalid(
                    origin,
                    format!("invalid @version value {version}: only 1.1 is supported"),
                ));
            }
        }
        let map = match map.get("@import") {
            None => Cow::Borrowed(map),
            Some(import) => Cow::Owned(self.merge_import(map, import, origin)?),
        };
        if let Some(base) = map.get("@base") {
            // Only a context embedded in the request may set @base; in remote
            // documents JSON-LD ignores it.
            if remote.is_empty() {
                state.base = match base {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => {
                        return Err(invalid(
                            origin,
                            format!("invalid base IRI: {} instead of a string", kind_of(other)),
                        ))
                    }
                };
            }
        }
        if let Some(vocab) = map.get("@vocab") {
            state.vocab = match vocab {
                Value::Null => None,
                Value::String(s) => {
                    let expanded = expand_iri(state, None, s, 0)?;
                    match expanded {
                        Some(iri) if is_absolute_iri(&iri) || is_blank_node(&iri) => Some(iri),
                        _ => {
                            return Err(invalid(
                                origin,
                                format!("invalid vocab mapping \"{s}\": not an absolute IRI"),
                            ))
                        }
                    }
                }
                other => {
                    return Err(invalid(
                        origin,
                        format!(
                            "invalid vocab mapping: {} instead of a string",
                            kind_of(other)
                        ),
                    ))
                }
            };
        }
        if let Some(language) = map.get("@language") {
            state.language = match language {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => {
                    return Err(invalid(
                        origin,
                        format!("invalid default language: {}", kind_of(other)),
                    ))
                }
            };
        }
        if let Some(direction) = map.get("@direction") {
            state.direction = match direction {
                Value::Null => None,
                Value::String(s) if s == "ltr" || s == "rtl" => Some(s.clone()),
                other => {
                    return Err(invalid(
                        origin,
                        format!(
                            "invalid base direction {other}: expected \"ltr\", \"rtl\" or null"
                        ),
                    ))
                }
            };
        }
        if let Some(propagate) = map.get("@propagate") {
            if !propagate.is_boolean() {
                return Err(invalid(
                    origin,
                    format!("invalid @propagate value {propagate}: expected a boolean"),
                ));
            }
        }
        let protected = match map.get("@protected") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(invalid(
                    origin,
                    format!("invalid @protected value {other}: expected a boolean"),
                ))
            }
        };
        let mut scope = TermScope {
            local: &map,
            defined: HashMap::new(),
            protected,
            in_core: self.in_core,
            inline: remote.is_empty() && !self.in_core,
            origin,
        };
        for term in map.keys() {
            if !CONTEXT_KEYS.contains(&term.as_str()) {
                create_term_definition(state, &mut scope, term, 0)?;
            }
        }
        Ok(())
    }

    /// `@import`: the imported context object with the local entries on top.
    fn merge_import(
        &self,
        map: &Map<String, Value>,
        import: &Value,
        origin: &str,
    ) -> Result<Map<String, Value>, NgsiError> {
        let Value::String(url) = import else {
            return Err(invalid(
                origin,
                format!(
                    "invalid @import value: {} instead of an IRI",
                    kind_of(import)
                ),
            ));
        };
        let doc = match core_version_of(url) {
            Some(version) => Arc::new(core::document_value(version).clone()),
            None => (self.resolve)(url)?,
        };
        let Value::Object(imported) = remote_context_member(&doc, url)? else {
            return Err(invalid(
                url,
                "invalid remote context: an imported @context must be a single object",
            ));
        };
        if imported.contains_key("@import") {
            return Err(invalid(
                url,
                "invalid context entry: an imported context must not contain @import",
            ));
        }
        let mut merged = imported.clone();
        for (key, value) in map {
            if key != "@import" {
                merged.insert(key.clone(), value.clone());
            }
        }
        Ok(merged)
    }
}

/// The `@context` member of a remote document. A document that was retrieved
/// but is no JSON-LD context is invalid (`BadRequestData`, NGSI-LD 5.5.6), not
/// unavailable.
fn remote_context_member<'d>(doc: &'d Value, url: &str) -> Result<&'d Value, NgsiError> {
    doc.get("@context").ok_or_else(|| {
        NgsiError::bad_data(format!(
            "the document at {url} is not a JSON-LD context: it has no @context member"
        ))
    })
}

/// JSON-LD 1.1 "Create Term Definition" (§4.2.2) for `term` of `scope.local`.
fn create_term_definition<'a>(
    state: &mut State,
    scope: &mut TermScope<'a>,
    term: &str,
    depth: usize,
) -> Result<(), NgsiError> {
    let origin = scope.origin;
    match scope.defined.get(term) {
        Some(true) => return Ok(()),
        Some(false) => {
            return Err(invalid_term(
                origin,
                term,
                "cyclic IRI mapping (the term's definition depends on itself)",
            ))
        }
        None => {}
    }
    if depth > MAX_TERM_DEPTH {
        return Err(invalid_term(
            origin,
            term,
            format!("term definitions depend on each other more than {MAX_TERM_DEPTH} levels deep"),
        ));
    }
    if term.is_empty() {
        return Err(invalid(
            origin,
            "invalid term definition: the empty string is not a term",
        ));
    }
    let local: &'a Map<String, Value> = scope.local;
    let Some((key, value)) = local.get_key_value(term) else {
        return Ok(());
    };
    let key = key.as_str();
    scope.defined.insert(key, false);

    if term == "@type" {
        // JSON-LD 1.1 allows only `{"@container": "@set", "@protected": ..}` here;
        // it changes nothing for term handling.
        let ok = value.as_object().is_some_and(|m| {
            !m.is_empty()
                && m.iter().all(|(k, v)| match k.as_str() {
                    "@container" => v == "@set",
                    "@protected" => v.is_boolean(),
                    _ => false,
                })
        });
        if !ok {
            return Err(invalid_term(origin, term, "keyword redefinition"));
        }
        scope.defined.insert(key, true);
        return Ok(());
    }
    if is_keyword(term) {
        return Err(invalid_term(origin, term, "keyword redefinition"));
    }
    if has_keyword_form(term) {
        // Reserved for future keywords: JSON-LD ignores the term.
        scope.defined.insert(key, true);
        return Ok(());
    }

    let previous = state.get(term).cloned();
    state.overlay.insert(term.to_owned(), None);

    let (entries, simple) = match value {
        Value::Null => (None, true),
        Value::String(_) => (None, true),
        Value::Object(m) => (Some(m), false),
        other => {
            return Err(invalid_term(
                origin,
                term,
                format!(
                    "invalid term definition: {} instead of an IRI, an object or null",
                    kind_of(other)
                ),
            ))
        }
    };
    let empty = Map::new();
    let entries = entries.unwrap_or(&empty);
    // For simple definitions the value itself is the @id.
    let id_value = if simple {
        Some(value)
    } else {
        entries.get("@id")
    };

    let mut def = TermDefinition {
        protected: match entries.get("@protected") {
            None => scope.protected,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(invalid_term(
                    origin,
                    term,
                    format!("invalid @protected value {other}"),
                ))
            }
        },
        from_core: scope.in_core,
        ..TermDefinition::default()
    };

    if let Some(ty) = entries.get("@type") {
        let Value::String(ty) = ty else {
            return Err(invalid_term(
                origin,
                term,
                format!("invalid type mapping: {} instead of a string", kind_of(ty)),
            ));
        };
        let expanded = expand_iri(state, Some(scope), ty, depth + 1)?;
        match expanded {
            Some(t)
                if matches!(t.as_str(), "@id" | "@json" | "@none" | "@vocab")
                    || is_absolute_iri(&t) =>
            {
                def.type_mapping = Some(t)
            }
            _ => {
                return Err(invalid_term(
                    origin,
                    term,
                    format!("invalid type mapping \"{ty}\""),
                ))
            }
        }
    }

    if let Some(reverse) = entries.get("@reverse") {
        if entries.contains_key("@id") || entries.contains_key("@nest") {
            return Err(invalid_term(
                origin,
                term,
                "invalid reverse property: @reverse cannot be combined with @id or @nest",
            ));
        }
        let Value::String(reverse) = reverse else {
            return Err(invalid_term(
                origin,
                term,
                format!("invalid IRI mapping: @reverse is {}", kind_of(reverse)),
            ));
        };
        if has_keyword_form(reverse) {
            scope.defined.insert(key, true);
            return Ok(());
        }
        match expand_iri(state, Some(scope), reverse, depth + 1)? {
            Some(iri) if is_absolute_iri(&iri) || is_blank_node(&iri) => def.iri = Some(iri),
            _ => {
                return Err(invalid_term(
                    origin,
                    term,
                    format!("invalid IRI mapping: @reverse \"{reverse}\" is not an IRI"),
                ))
            }
        }
        match entries.get("@container") {
            None | Some(Value::Null) => {}
            Some(Value::String(c)) if c == "@set" || c == "@index" => {
                def.container = vec![c.clone()]
            }
            Some(other) => {
                return Err(invalid_term(
                    origin,
                    term,
                    format!("invalid reverse property: container {other} (only @set or @index)"),
                ))
            }
        }
        def.reverse = true;
        return finish(state, scope, term, def, previous);
    }

    match id_value {
        Some(id) if id.as_str() != Some(term) => match id {
            Value::Null => def.iri = None,
            Value::String(id) => {
                if !is_keyword(id) && has_keyword_form(id) {
                    // A reserved keyword-like IRI: JSON-LD ignores the term.
                    scope.defined.insert(key, true);
                    return Ok(());
                }
                let iri = expand_iri(state, Some(scope), id, depth + 1)?;
                let iri = match iri {
                    Some(iri)
                        if is_keyword(&iri) || is_absolute_iri(&iri) || is_blank_node(&iri) =>
                    {
                        iri
                    }
                    _ => {
                        return Err(invalid_term(
                            origin,
                            term,
                            format!(
                                "invalid IRI mapping: \"{id}\" does not expand to an absolute IRI"
                            ),
                        ))
                    }
                };
                if iri == "@context" {
                    return Err(invalid_term(
                        origin,
                        term,
                        "invalid keyword alias of @context",
                    ));
                }
                // A colon that is neither the first nor the last character
                // (bytes are fine: ':' is never part of a multi-byte char).
                let bytes = term.as_bytes();
                let inner_colon = bytes.len() > 2 && bytes[1..bytes.len() - 1].contains(&b':');
                if inner_colon || term.contains('/') {
                    // A term that looks like a (compact) IRI must mean that IRI,
                    // otherwise expansion and compaction would disagree.
                    scope.defined.insert(key, true);
                    let own = expand_iri(state, Some(scope), term, depth + 1)?;
                    if own.as_deref() != Some(iri.as_str()) {
                        return Err(invalid_term(
                            origin,
                            term,
                            format!(
                                "invalid IRI mapping: the term looks like an IRI that expands to \"{}\", not to \"{iri}\"",
                                own.unwrap_or_default()
                            ),
                        ));
                    }
                }
                if !term.contains(':')
                    && !term.contains('/')
                    && simple
                    && (ends_with_gen_delim(&iri) || is_blank_node(&iri))
                {
                    def.prefix = true;
                }
                def.iri = Some(iri);
            }
            other => {
                return Err(invalid_term(
                    origin,
                    term,
                    format!(
                        "invalid IRI mapping: {} instead of a string",
                        kind_of(other)
                    ),
                ))
            }
        },
        _ => {
            if let Some((prefix, suffix)) = split_compact(term) {
                if scope.local.contains_key(prefix) {
                    create_term_definition(state, scope, prefix, depth + 1)?;
                }
                def.iri = Some(match state.get(prefix).and_then(|d| d.iri.as_deref()) {
                    Some(prefix_iri) => format!("{prefix_iri}{suffix}"),
                    None => term.to_owned(),
                });
            } else if term.contains('/') {
                match expand_iri(state, None, term, depth + 1)? {
                    Some(iri) if is_absolute_iri(&iri) => def.iri = Some(iri),
                    _ => {
                        return Err(invalid_term(
                            origin,
                            term,
                            "invalid IRI mapping: relative IRI term without @vocab",
                        ))
                    }
                }
            } else if let Some(vocab) = &state.vocab {
                def.iri = Some(format!("{vocab}{term}"));
            } else {
                return Err(invalid_term(
                    origin,
                    term,
                    "invalid IRI mapping: no @id and no @vocab to derive one from",
                ));
            }
        }
    }

    if let Some(container) = entries.get("@container") {
        def.container = parse_container(container).ok_or_else(|| {
            invalid_term(
                origin,
                term,
                format!("invalid container mapping {container}"),
            )
        })?;
        if def.container.iter().any(|c| c == "@type") {
            match def.type_mapping.as_deref() {
                None => def.type_mapping = Some("@id".to_owned()),
                Some("@id" | "@vocab") => {}
                Some(other) => {
                    return Err(invalid_term(
                        origin,
                        term,
                        format!("invalid type mapping \"{other}\" for a @type container"),
                    ))
                }
            }
        }
    }

    if let Some(index) = entries.get("@index") {
        if !def.container.iter().any(|c| c == "@index") {
            return Err(invalid_term(
                origin,
                term,
                "invalid term definition: @index needs an @index container",
            ));
        }
        let Value::String(index) = index else {
            return Err(invalid_term(
                origin,
                term,
                "invalid term definition: @index is not a string",
            ));
        };
        let expanded = expand_iri(state, Some(scope), index, depth + 1)?;
        if is_keyword(index) || !expanded.as_deref().is_some_and(is_absolute_iri) {
            return Err(invalid_term(
                origin,
                term,
                format!("invalid term definition: @index \"{index}\" is not an IRI"),
            ));
        }
        def.index = Some(index.clone());
    }

    if let Some(scoped) = entries.get("@context") {
        if scope.inline {
            return Err(invalid_term(
                origin,
                term,
                "scoped contexts (@context inside a term definition) are not allowed in a user @context",
            ));
        }
        def.scoped_context = Some(scoped.clone());
    }

    if !entries.contains_key("@type") {
        if let Some(language) = entries.get("@language") {
            def.language = Some(match language {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => {
                    return Err(invalid_term(
                        origin,
                        term,
                        format!("invalid language mapping {other}"),
                    ))
                }
            });
        }
        if let Some(direction) = entries.get("@direction") {
            def.direction = Some(match direction {
                Value::Null => None,
                Value::String(s) if s == "ltr" || s == "rtl" => Some(s.clone()),
                other => {
                    return Err(invalid_term(
                        origin,
                        term,
                        format!("invalid base direction {other}"),
                    ))
                }
            });
        }
    }

    if let Some(nest) = entries.get("@nest") {
        match nest {
            Value::String(n) if n == "@nest" || !is_keyword(n) => def.nest = Some(n.clone()),
            other => {
                return Err(invalid_term(
                    origin,
                    term,
                    format!("invalid @nest value {other}"),
                ))
            }
        }
    }

    if let Some(prefix) = entries.get("@prefix") {
        if term.contains(':') || term.contains('/') {
            return Err(invalid_term(
                origin,
                term,
                "invalid term definition: a term with ':' or '/' cannot set @prefix",
            ));
        }
        let Value::Bool(prefix) = prefix else {
            return Err(invalid_term(
                origin,
                term,
                format!("invalid @prefix value {prefix}"),
            ));
        };
        if *prefix && def.iri.as_deref().is_some_and(is_keyword) {
            return Err(invalid_term(
                origin,
                term,
                "invalid term definition: a keyword alias cannot be a prefix",
            ));
        }
        def.prefix = *prefix;
    }

    if let Some(unknown) = entries.keys().find(|k| !TERM_KEYS.contains(&k.as_str())) {
        return Err(invalid_term(
            origin,
            term,
            format!("invalid term definition: unexpected entry \"{unknown}\""),
        ));
    }

    finish(state, scope, term, def, previous)
}

/// Protected-term check, then stores the definition.
fn finish(
    state: &mut State,
    scope: &mut TermScope<'_>,
    term: &str,
    mut def: TermDefinition,
    previous: Option<TermDefinition>,
) -> Result<(), NgsiError> {
    if let Some(previous) = previous {
        if previous.protected && !previous.from_core {
            if !def.same_meaning(&previous) {
                return Err(invalid_term(
                    scope.origin,
                    term,
                    "protected term redefinition",
                ));
            }
            def = previous;
        }
    }
    if let Some((key, _)) = scope.local.get_key_value(term) {
        scope.defined.insert(key.as_str(), true);
    }
    state.overlay.insert(term.to_owned(), Some(def));
    Ok(())
}

/// The container keywords of an `@container` value, sorted, if valid.
fn parse_container(value: &Value) -> Option<Vec<String>> {
    let mut list: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    list.sort();
    list.dedup();
    const ALLOWED: &[&str] = &[
        "@graph",
        "@id",
        "@index",
        "@language",
        "@list",
        "@set",
        "@type",
    ];
    if list.is_empty() || !list.iter().all(|c| ALLOWED.contains(&c.as_str())) {
        return None;
    }
    let has = |k: &str| list.iter().any(|c| c == k);
    let valid = if has("@list") {
        list.len() == 1
    } else if has("@graph") {
        // @graph with at most one of @id / @index, optionally @set.
        list.iter()
            .all(|c| matches!(c.as_str(), "@graph" | "@id" | "@index" | "@set"))
            && !(has("@id") && has("@index"))
    } else {
        list.len() <= if has("@set") { 2 } else { 1 }
    };
    valid.then_some(list)
}

/// JSON-LD 1.1 IRI expansion (§5.2.2), vocab-relative and never
/// document-relative, against the state, defining terms of the current local
/// context on demand. `None` means the value expands to null.
fn expand_iri(
    state: &mut State,
    mut scope: Option<&mut TermScope<'_>>,
    value: &str,
    depth: usize,
) -> Result<Option<String>, NgsiError> {
    if is_keyword(value) {
        return Ok(Some(value.to_owned()));
    }
    if has_keyword_form(value) {
        return Ok(None);
    }
    if let Some(scope) = scope.as_deref_mut() {
        if scope.local.contains_key(value) && scope.defined.get(value) != Some(&true) {
            create_term_definition(state, scope, value, depth + 1)?;
        }
    }
    if let Some(def) = state.get(value) {
        return Ok(def.iri.clone());
    }
    if let Some((prefix, suffix)) = split_compact(value) {
        if prefix == "_" || suffix.starts_with("//") {
            return Ok(Some(value.to_owned()));
        }
        if let Some(scope) = scope {
            if scope.local.contains_key(prefix) && scope.defined.get(prefix) != Some(&true) {
                create_term_definition(state, scope, prefix, depth + 1)?;
            }
        }
        if let Some(def) = state.get(prefix) {
            if let (Some(iri), true) = (&def.iri, def.prefix) {
                return Ok(Some(format!("{iri}{suffix}")));
            }
        }
        if is_absolute_iri(value) {
            return Ok(Some(value.to_owned()));
        }
    }
    if let Some(v) = &state.vocab {
        return Ok(Some(format!("{v}{value}")));
    }
    // Resolving document-relative IRIs against @base is not supported (see
    // the module doc): such a value stays as written.
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers() {
        let cases: &[(Value, Option<&[&str]>)] = &[
            (json!("@list"), Some(&["@list"])),
            (json!(["@set", "@index"]), Some(&["@index", "@set"])),
            (
                json!(["@graph", "@id", "@set"]),
                Some(&["@graph", "@id", "@set"]),
            ),
            (json!(["@graph", "@id", "@index"]), None),
            (json!(["@list", "@set"]), None),
            (json!(["@index", "@language"]), None),
            (json!(["@index", "@language", "@set"]), None),
            (json!("@foo"), None),
            (json!([]), None),
            (json!(3), None),
            (json!(null), None),
        ];
        for (value, want) in cases {
            let got = parse_container(value);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{value}");
        }
    }
}
