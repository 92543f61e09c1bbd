//! The NGSI-LD query language `q` (ETSI GS CIM 009 clause 4.9). STUB: to be written.

use crate::error::{NgsiError, Result};
use crate::model::Entity;

/// A parsed `q` expression.
#[derive(Debug, Clone)]
pub struct Q {
    _src: String,
}

impl Q {
    /// Parses `s`.
    pub fn parse(s: &str) -> Result<Self> {
        Err(NgsiError::invalid(format!("q not supported yet: {s}")))
    }
    /// Maps every attribute (and sub-attribute) name through `f` (JSON-LD expansion).
    pub fn expand_names(&mut self, _f: &dyn Fn(&str) -> String) {}
    /// True if `e` satisfies the expression.
    pub fn matches(&self, _e: &Entity) -> bool {
        false
    }
}
