//! Newtypes for the identifiers that cross crate boundaries.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{NgsiError, Result};

/// An entity id: an absolute IRI (URN or URL), e.g. `urn:ngsi-ld:Vehicle:A4567`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityId(Arc<str>);

impl EntityId {
    /// Validates `s` as an NGSI-LD entity id (an absolute URI with a scheme).
    pub fn parse(s: &str) -> Result<Self> {
        if is_absolute_uri(s) {
            Ok(Self(Arc::from(s)))
        } else {
            Err(NgsiError::bad_data(format!(
                "entity id '{s}' is not a valid URI (it needs a scheme such as urn: or https:)"
            )))
        }
    }
    /// Wraps `s` without validation (ids read back from the store).
    pub fn new_unchecked(s: &str) -> Self {
        Self(Arc::from(s))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when `s` looks like an absolute URI: `scheme ":" rest`, with an RFC 3986
/// scheme, a non-empty rest and no whitespace or characters URIs never contain.
pub fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
        })
}

/// A tenant name (`NGSILD-Tenant`). The default tenant is the empty name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// The default tenant (no `NGSILD-Tenant` header).
    pub fn default_tenant() -> Self {
        Self(Arc::from(""))
    }
    /// Validates a tenant name: 1–64 characters of `[A-Za-z0-9_.:-]`.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        if ok {
            Ok(Self(Arc::from(s)))
        } else {
            Err(NgsiError::bad_data(format!(
                "tenant '{s}' is not valid: use 1-64 characters of letters, digits, '_', '-', '.', ':'"
            )))
        }
    }
    /// True for the default tenant.
    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }
    /// The tenant name as text ("" for the default tenant).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("<default>")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids() {
        for ok in ["urn:ngsi-ld:Vehicle:A1", "https://example.org/a", "x:y"] {
            assert!(EntityId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Vehicle", ":x", "urn:", "1a:b", "urn:a b", "urn:<x>"] {
            assert!(EntityId::parse(bad).is_err(), "{bad}");
        }
    }
}
