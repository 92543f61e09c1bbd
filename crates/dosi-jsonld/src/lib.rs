//! JSON-LD 1.1 context processing for the NGSI-LD broker: turning a request's
//! `@context` into an [`ActiveContext`], expanding attribute names and entity
//! types to IRIs ([`ActiveContext::expand_term`]) and compacting stored IRIs
//! back for output ([`ActiveContext::compact_iri`]). Only term and IRI
//! handling: the broker never expands values inside Properties, so full
//! document expansion and compaction are out of scope.
//!
//! The NGSI-LD core context is built in ([`core_context_document`]) and is
//! implicitly applied last, so its terms cannot be overridden.
//!
//! This crate does no IO: remote contexts come through [`ContextLoader`], which
//! the caller implements (with its HTTP client, cache and context store).

mod context;
mod core;
mod core_terms;
mod process;
mod term;

use std::sync::Arc;

use dosi_ngsi::NgsiError;

pub use context::{process_sync_local, ActiveContext};
pub use term::TermDefinition;

use crate::core::CoreVersion;

/// The canonical core context URL dosi uses in Link headers.
pub const CORE_CONTEXT_URL: &str =
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld";

/// Deepest nesting of remote contexts (a remote context whose `@context`
/// references another, and so on).
pub const MAX_REMOTE_DEPTH: usize = 32;

/// Most distinct remote documents one `@context` may pull in.
pub const MAX_REMOTE_DOCUMENTS: usize = 64;

/// Loads remote context documents (the whole JSON document; its `@context` member is used).
#[async_trait::async_trait]
pub trait ContextLoader: Send + Sync {
    /// Fetches the document at `url`; errors are passed on to the caller unchanged.
    async fn load(&self, url: &str) -> Result<Arc<serde_json::Value>, NgsiError>;
}

/// The core-context version a URL names, if it is a core-context URL.
pub(crate) fn core_version_of(url: &str) -> Option<CoreVersion> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?
        .strip_prefix("uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context")?
        .strip_suffix(".jsonld")?;
    if rest.is_empty() {
        return Some(CoreVersion::V1_8);
    }
    let minor = rest.strip_prefix("-v1.")?;
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Versions newer than the newest one built in get the newest one.
    match minor.parse::<u32>() {
        Ok(n) if n < 9 => Some(CoreVersion::V1_8),
        _ => Some(CoreVersion::V1_9),
    }
}

/// True for `https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld` and every
/// versioned `…/ngsi-ld-core-context-v1.N.jsonld` (also with `http://`).
pub fn is_core_context_url(url: &str) -> bool {
    core_version_of(url).is_some()
}

/// The core context document served for a core-context URL: the 1.9 document
/// for 1.9 (and newer) URLs, the 1.8 document otherwise; `None` for other URLs.
pub fn core_context_document(url: &str) -> Option<&'static str> {
    core_version_of(url).map(core::document_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_urls() {
        let cases: &[(&str, Option<CoreVersion>)] = &[
            (CORE_CONTEXT_URL, Some(CoreVersion::V1_8)),
            (
                "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
                Some(CoreVersion::V1_8),
            ),
            (
                "http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
                Some(CoreVersion::V1_8),
            ),
            (
                "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld",
                Some(CoreVersion::V1_8),
            ),
            (
                "http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.7.jsonld",
                Some(CoreVersion::V1_8),
            ),
            (
                "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld",
                Some(CoreVersion::V1_9),
            ),
            (
                "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.10.jsonld",
                Some(CoreVersion::V1_9),
            ),
            (
                "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1..jsonld",
                None,
            ),
            (
                "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.x.jsonld",
                None,
            ),
            (
                "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v2.1.jsonld",
                None,
            ),
            (
                "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.json",
                None,
            ),
            (
                "ftp://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
                None,
            ),
            ("https://example.org/ngsi-ld-core-context.jsonld", None),
            ("", None),
        ];
        for &(url, want) in cases {
            assert_eq!(core_version_of(url), want, "{url}");
            assert_eq!(is_core_context_url(url), want.is_some(), "{url}");
            assert_eq!(
                core_context_document(url).is_some(),
                want.is_some(),
                "{url}"
            );
        }
        let v18 = core_context_document(CORE_CONTEXT_URL).expect("core URL");
        let v19 = core_context_document(
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld",
        )
        .expect("core URL");
        assert!(!v18.contains("jsonldContext"));
        assert!(v19.contains("jsonldContext"));
        assert!(v18.contains("https://uri.etsi.org/ngsi-ld/default-context/"));
    }
}
