//! The NGSI-LD scope query language `scopeQ` (clause 4.19). STUB: to be written.

use crate::error::{NgsiError, Result};

/// A parsed `scopeQ` expression.
#[derive(Debug, Clone)]
pub struct ScopeQ {
    _src: String,
}

impl ScopeQ {
    /// Parses `s`.
    pub fn parse(s: &str) -> Result<Self> {
        Err(NgsiError::invalid(format!("scopeQ not supported yet: {s}")))
    }
    /// True if any of the entity's `scopes` satisfies the expression.
    pub fn matches(&self, _scopes: &[String]) -> bool {
        false
    }
}
