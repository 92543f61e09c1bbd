//! Retention and downsampling policies.
//!
//! A policy drops the raw instances of the matching series once they are
//! older than `keep_raw`; with `rollup` it keeps per-period aggregates of
//! what it drops (count, sum, sum of squares, min, max), which aggregated
//! queries with a period that is a multiple of the rollup still answer from.
//! Policies are applied by a background task while the server runs, and can
//! be replaced at run time (they are kept in the history's meta space).

use serde::{Deserialize, Serialize};

/// One policy. A series matches when both selectors match (an absent selector
/// matches everything); the first matching policy wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Expanded entity type the policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// Expanded attribute name the policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Keep raw instances this many seconds.
    pub keep_raw_secs: u64,
    /// Keep rollups with this period (seconds) of what is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup_secs: Option<u64>,
}

impl RetentionPolicy {
    /// True if the policy covers `attr` of an entity with `types`.
    pub fn matches(&self, types: &[impl AsRef<str>], attr: &str) -> bool {
        self.entity_type
            .as_deref()
            .is_none_or(|t| types.iter().any(|x| x.as_ref() == t))
            && self.attribute.as_deref().is_none_or(|a| a == attr)
    }
    /// Checks the numbers make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.keep_raw_secs == 0 {
            return Err("keepRawSecs must be positive".into());
        }
        if self.rollup_secs == Some(0) {
            return Err("rollupSecs must be positive".into());
        }
        Ok(())
    }
}
