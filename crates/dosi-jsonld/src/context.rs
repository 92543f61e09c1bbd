//! [`ActiveContext`]: a processed context with the per-request operations the
//! broker needs (term expansion, IRI compaction, coercion look-ups).
//!
//! An active context is two layers: the core 1.8 tables, built once and shared
//! by every context, and the user's terms that the core does not define. The
//! core is looked up first, which is how "the core context is implicitly last"
//! holds without copying the core's ~180 terms into each request's context.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use dosi_ngsi::{ErrorKind, NgsiError};
use serde_json::Value;

use crate::core::{self, CoreTables, CoreVersion};
use crate::process::{Processor, Resolver, State};
use crate::term::{has_keyword_form, is_absolute_iri, is_keyword, split_compact, TermDefinition};
use crate::{core_version_of, ContextLoader, MAX_REMOTE_DEPTH, MAX_REMOTE_DOCUMENTS};

/// Term definitions with the indexes compaction needs.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub(crate) terms: HashMap<String, TermDefinition>,
    /// IRI → the term to compact it to: shortest, then lexicographically least.
    best_term: HashMap<String, String>,
    /// `(IRI, term)` of the terms usable as prefixes, longest IRI first.
    prefixes: Vec<(String, String)>,
}

/// Orders candidate compactions: shorter first, then lexicographically.
fn better(a: &str, b: &str) -> bool {
    (a.len(), a) < (b.len(), b)
}

impl Tables {
    pub(crate) fn new(terms: HashMap<String, TermDefinition>) -> Self {
        let mut best_term: HashMap<String, String> = HashMap::new();
        let mut prefixes = Vec::new();
        for (term, def) in &terms {
            let Some(iri) = def.iri.as_deref() else {
                continue;
            };
            if def.reverse {
                continue;
            }
            match best_term.get_mut(iri) {
                Some(current) if !better(term, current) => {}
                Some(current) => current.clone_from(term),
                None => {
                    best_term.insert(iri.to_owned(), term.clone());
                }
            }
            if def.prefix && !is_keyword(iri) {
                prefixes.push((iri.to_owned(), term.clone()));
            }
        }
        prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.cmp(b)));
        Self {
            terms,
            best_term,
            prefixes,
        }
    }
}

/// A processed JSON-LD context; cheap to clone.
#[derive(Clone)]
pub struct ActiveContext {
    inner: Arc<Inner>,
}

struct Inner {
    core: &'static CoreTables,
    /// Terms of the user's contexts that the core does not define.
    user: Tables,
    vocab: Option<String>,
    base: Option<String>,
    language: Option<String>,
    direction: Option<String>,
    /// IRIs compacted so far (the context never changes, so neither do
    /// they): responses compact the same few dozen names over and over.
    compacted: std::sync::RwLock<HashMap<Box<str>, Box<str>>>,
}

/// Most IRIs one context remembers the compaction of.
const COMPACT_MEMO: usize = 4096;

impl fmt::Debug for ActiveContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut user: Vec<&String> = self.inner.user.terms.keys().collect();
        user.sort();
        f.debug_struct("ActiveContext")
            .field("vocab", &self.inner.vocab)
            .field("base", &self.inner.base)
            .field("language", &self.inner.language)
            .field("direction", &self.inner.direction)
            .field("core_terms", &self.inner.core.tables.terms.len())
            .field("user_terms", &user)
            .finish()
    }
}

/// The processing origin named in errors about the request's own context.
const INLINE: &str = "inline @context";

impl ActiveContext {
    /// The built-in NGSI-LD core context (v1.8) alone, processed once.
    pub fn core() -> ActiveContext {
        static CORE: OnceLock<ActiveContext> = OnceLock::new();
        CORE.get_or_init(|| Self::build(State::on_core())).clone()
    }

    /// Processes `local` (the value of an `@context`: a URL, an object, an
    /// array of those, or null) on top of the core context, then re-applies
    /// the core so that core terms always win. Core-context URLs are never
    /// loaded; other URLs are fetched through `loader`. A user `@vocab` stays
    /// in effect unless a later core-context URL or null context resets it.
    /// Errors: the loader's own; `BadRequestData` for a document without
    /// `@context`, invalid context content (including a scoped context in
    /// `local` itself), cycles and limits ([`crate::MAX_REMOTE_DEPTH`],
    /// [`crate::MAX_REMOTE_DOCUMENTS`]).
    pub async fn process(
        local: &Value,
        loader: &dyn ContextLoader,
    ) -> Result<ActiveContext, NgsiError> {
        let docs = fetch_remote(local, loader).await?;
        let resolve = |url: &str| {
            docs.get(url).cloned().ok_or_else(|| {
                NgsiError::new(
                    ErrorKind::LdContextNotAvailable,
                    format!("the JSON-LD @context {url} could not be fetched"),
                )
            })
        };
        Self::run(local, &resolve)
    }

    /// Synchronous processing with the given resolver for remote documents.
    pub(crate) fn run(local: &Value, resolve: Resolver<'_>) -> Result<ActiveContext, NgsiError> {
        let mut state = State::on_core();
        Processor::new(resolve).process(&mut state, local, &mut Vec::new(), INLINE)?;
        Ok(Self::finish(state))
    }

    /// Re-applies the core and freezes the state.
    fn finish(state: State) -> ActiveContext {
        let core = core::tables(CoreVersion::V1_8);
        let trivial = state.vocab.is_none() || state.vocab == core.vocab;
        let trivial = trivial
            && state.base.is_none()
            && state.language.is_none()
            && state.direction.is_none()
            && state
                .overlay
                .iter()
                .all(|(term, def)| def.is_none() || core.tables.terms.contains_key(term));
        if trivial {
            // The most common request context ("just the core") shares one instance.
            return Self::core();
        }
        Self::build(state)
    }

    fn build(state: State) -> ActiveContext {
        let core = core::tables(CoreVersion::V1_8);
        let user: HashMap<String, TermDefinition> = state
            .overlay
            .into_iter()
            .filter_map(|(term, def)| Some((term, def?)))
            .filter(|(term, _)| !core.tables.terms.contains_key(term))
            .collect();
        ActiveContext {
            inner: Arc::new(Inner {
                core,
                user: Tables::new(user),
                // The user's own @vocab is kept; without one (or after a null
                // context) the core's applies again.
                vocab: state.vocab.or_else(|| core.vocab.clone()),
                base: state.base,
                language: state.language,
                direction: state.direction,
                compacted: std::sync::RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The definition of `term`, if the context defines it.
    pub fn term(&self, term: &str) -> Option<&TermDefinition> {
        let inner = &*self.inner;
        inner
            .core
            .tables
            .terms
            .get(term)
            .or_else(|| inner.user.terms.get(term))
    }

    /// The vocabulary mapping (`@vocab`).
    pub fn vocab(&self) -> Option<&str> {
        self.inner.vocab.as_deref()
    }

    /// The recorded `@base` of the request's context.
    pub fn base(&self) -> Option<&str> {
        self.inner.base.as_deref()
    }

    /// The default `@language` of the request's context.
    pub fn default_language(&self) -> Option<&str> {
        self.inner.language.as_deref()
    }

    /// The default `@direction` of the request's context.
    pub fn default_direction(&self) -> Option<&str> {
        self.inner.direction.as_deref()
    }

    /// Expands a term used as a property name or type (vocab-relative IRI
    /// expansion). A term that expands to nothing (explicitly unmapped with
    /// `"term": null`, or keyword-like such as `@foo`) is returned unchanged;
    /// use [`Self::try_expand_term`] to tell.
    pub fn expand_term(&self, term: &str) -> String {
        match self.expand_ref(term) {
            Some(iri) => iri.into_owned(),
            None => term.to_owned(),
        }
    }

    /// Like [`Self::expand_term`], but `None` when JSON-LD would drop the term.
    pub fn try_expand_term(&self, term: &str) -> Option<String> {
        self.expand_ref(term).map(Cow::into_owned)
    }

    /// Vocab-relative IRI expansion, borrowing when nothing changes.
    fn expand_ref<'t>(&'t self, term: &'t str) -> Option<Cow<'t, str>> {
        if is_keyword(term) {
            return Some(Cow::Borrowed(term));
        }
        if has_keyword_form(term) {
            return None;
        }
        if let Some(def) = self.term(term) {
            return def.iri.as_deref().map(Cow::Borrowed);
        }
        if let Some((prefix, suffix)) = split_compact(term) {
            if prefix == "_" || suffix.starts_with("//") {
                return Some(Cow::Borrowed(term));
            }
            if let Some(def) = self.term(prefix) {
                if let (Some(iri), true) = (def.iri.as_deref(), def.prefix) {
                    return Some(Cow::Owned(format!("{iri}{suffix}")));
                }
            }
            if is_absolute_iri(term) {
                return Some(Cow::Borrowed(term));
            }
        }
        match self.vocab() {
            Some(vocab) => Some(Cow::Owned(format!("{vocab}{term}"))),
            None => Some(Cow::Borrowed(term)),
        }
    }

    /// True if `candidate` expands back to exactly `iri`.
    fn expands_to(&self, candidate: &str, iri: &str) -> bool {
        self.expand_ref(candidate).as_deref() == Some(iri)
    }

    /// Compacts an IRI for output (vocab-relative IRI compaction): a term
    /// mapping to exactly this IRI (shortest, then lexicographically least),
    /// else the suffix after `@vocab` if no term claims it, else the shortest
    /// compact IRI `prefix:suffix`, else the IRI itself. Every result other
    /// than the IRI itself expands back to `iri` with [`Self::expand_term`].
    pub fn compact_iri(&self, iri: &str) -> String {
        let memo = &self.inner.compacted;
        if let Some(term) = memo
            .read()
            .ok()
            .and_then(|m| m.get(iri).map(|t| t.to_string()))
        {
            return term;
        }
        let term = self.compact_iri_uncached(iri);
        if let Ok(mut m) = memo.write() {
            if m.len() < COMPACT_MEMO {
                m.insert(iri.into(), term.as_str().into());
            }
        }
        term
    }

    fn compact_iri_uncached(&self, iri: &str) -> String {
        let inner = &*self.inner;
        let core_term = inner.core.tables.best_term.get(iri);
        let user_term = inner.user.best_term.get(iri);
        let mut terms = [core_term, user_term];
        if let [Some(a), Some(b)] = terms {
            if better(b, a) {
                terms.swap(0, 1);
            }
        }
        for term in terms.into_iter().flatten() {
            if self.expands_to(term, iri) {
                return term.clone();
            }
        }

        if let Some(suffix) = self.vocab().and_then(|vocab| iri.strip_prefix(vocab)) {
            if !suffix.is_empty() && self.term(suffix).is_none() && self.expands_to(suffix, iri) {
                return suffix.to_owned();
            }
        }

        let mut best: Option<String> = None;
        for prefixes in [&inner.core.tables.prefixes, &inner.user.prefixes] {
            for (prefix_iri, term) in prefixes {
                let Some(suffix) = iri.strip_prefix(prefix_iri.as_str()) else {
                    continue;
                };
                // Prefixes come longest IRI first, so suffixes only grow from
                // here; stop once no candidate can beat the best one.
                let shortest_possible = suffix.len() + 2;
                if best.as_ref().is_some_and(|b| b.len() < shortest_possible) {
                    break;
                }
                if suffix.is_empty() {
                    continue;
                }
                let candidate = format!("{term}:{suffix}");
                if best.as_deref().is_none_or(|b| better(&candidate, b))
                    && self.expands_to(&candidate, iri)
                {
                    best = Some(candidate);
                }
            }
        }
        best.unwrap_or_else(|| iri.to_owned())
    }

    /// The `@type` coercion of `term` (`@id`, `@vocab`, `@json`, or an IRI such as
    /// `https://uri.etsi.org/ngsi-ld/DateTime`).
    pub fn term_type(&self, term: &str) -> Option<&str> {
        self.term(term)?.type_mapping.as_deref()
    }

    /// The `@container` keywords of `term` (`@list`, `@set`, `@language`, …), sorted; empty if none.
    pub fn term_container(&self, term: &str) -> &[String] {
        self.term(term).map_or(&[], |def| def.container.as_slice())
    }
}

/// Processes an `@context` value that references no remote document except
/// the core context; any other URL fails with `LdContextNotAvailable`.
pub fn process_sync_local(local: &Value) -> Result<ActiveContext, NgsiError> {
    let refuse = |url: &str| {
        Err(NgsiError::new(
            ErrorKind::LdContextNotAvailable,
            format!("the JSON-LD @context {url} is remote and cannot be loaded here"),
        ))
    };
    ActiveContext::run(local, &refuse)
}

/// A remote document referenced by a context value.
struct Reference {
    url: String,
    /// Its own `@context` may reference further documents (false for `@import`,
    /// whose target must be a plain context object).
    scan: bool,
}

/// The remote documents a context value references directly, in order.
fn references(context: &Value) -> Vec<Reference> {
    let items = match context {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    let mut refs = Vec::new();
    for item in items {
        match item {
            Value::String(url) => refs.push(Reference {
                url: url.clone(),
                scan: true,
            }),
            Value::Object(map) => {
                if let Some(Value::String(url)) = map.get("@import") {
                    refs.push(Reference {
                        url: url.clone(),
                        scan: false,
                    });
                }
            }
            _ => {}
        }
    }
    refs
}

/// Fetches every remote document `local` needs, depth first in document order
/// (the order processing will use them), so that processing itself can be
/// synchronous. Loader errors propagate unchanged.
async fn fetch_remote(
    local: &Value,
    loader: &dyn ContextLoader,
) -> Result<HashMap<String, Arc<Value>>, NgsiError> {
    let mut docs: HashMap<String, Arc<Value>> = HashMap::new();
    // URL → shallowest depth at which its references were queued, so that a
    // document met again higher up gets its references fetched for that depth.
    let mut scanned: HashMap<String, usize> = HashMap::new();
    let mut stack = vec![(references(local).into_iter(), 0usize)];
    while let Some((refs, depth)) = stack.last_mut() {
        let depth = *depth;
        let Some(reference) = refs.next() else {
            stack.pop();
            continue;
        };
        if core_version_of(&reference.url).is_some() {
            continue;
        }
        // Beyond the nesting limit processing fails before it needs the document.
        if reference.scan && depth >= MAX_REMOTE_DEPTH {
            continue;
        }
        let doc = match docs.get(&reference.url) {
            Some(doc) => doc.clone(),
            None => {
                if docs.len() >= MAX_REMOTE_DOCUMENTS {
                    return Err(NgsiError::bad_data(format!(
                        "the JSON-LD @context references more than {MAX_REMOTE_DOCUMENTS} remote documents (at {})",
                        reference.url
                    )));
                }
                let doc = loader.load(&reference.url).await?;
                docs.insert(reference.url.clone(), doc.clone());
                doc
            }
        };
        if reference.scan && scanned.get(&reference.url).is_none_or(|&d| depth < d) {
            scanned.insert(reference.url, depth);
            if let Some(context) = doc.get("@context") {
                stack.push((references(context).into_iter(), depth + 1));
            }
        }
    }
    Ok(docs)
}
