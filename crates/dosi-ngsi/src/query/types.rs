//! Entity type selection expressions (clause 4.17). STUB: to be written.

use crate::error::{NgsiError, Result};
use crate::model::Iri;

/// A parsed type expression.
#[derive(Debug, Clone)]
pub struct TypeExpr {
    _src: String,
}

impl TypeExpr {
    /// Parses `s`.
    pub fn parse(s: &str) -> Result<Self> {
        Err(NgsiError::invalid(format!("type expressions not supported yet: {s}")))
    }
    /// Maps every type name through `f` (JSON-LD expansion).
    pub fn expand_names(&mut self, _f: &dyn Fn(&str) -> String) {}
    /// True if an entity with `types` matches.
    pub fn matches(&self, _types: &[Iri]) -> bool {
        false
    }
}
