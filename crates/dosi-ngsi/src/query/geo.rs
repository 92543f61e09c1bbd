//! Geo-queries `geoQ` (clause 4.10). STUB: to be written.

use crate::error::{NgsiError, Result};
use crate::model::Entity;

/// A parsed geo-query.
#[derive(Debug, Clone)]
pub struct GeoQuery {
    _src: String,
}

impl GeoQuery {
    /// Parses the parameters of a geo-query.
    pub fn parse(georel: &str, _geometry: &str, _coordinates: &str) -> Result<Self> {
        Err(NgsiError::invalid(format!("geoQ not supported yet: {georel}")))
    }
    /// True if `e` satisfies the query.
    pub fn matches(&self, _e: &Entity) -> bool {
        false
    }
}
