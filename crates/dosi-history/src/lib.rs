//! Attribute history: the store behind the NGSI-LD temporal API.
//!
//! Every committed attribute change becomes an *attribute instance*: the
//! history is a [commit hook](dosi_broker::CommitHook) of the one write path,
//! so an acknowledged write is in the history as surely as in the current
//! state. The temporal API's own writes (`/temporal/entities`, which change
//! only the history, never the current state) come through [`History`]'s
//! provision methods.
//!
//! Instances live in the time-series engine `dosi-tsdb`, one series per
//! (tenant, entity, attribute, datasetId). A numeric Property whose shape
//! (kind, unit, sub-attributes…) repeats is stored as a bare number plus a
//! *template* number; anything else as a document (ADR 7).
//!
//! Reads ([`History::read`]) select instances by a time range on one of the
//! time properties, keep the `lastN`, and cut the whole answer to a page of
//! instances (the spec's temporal pagination); [`History::aggregate`] answers
//! the aggregated representation per period.

#![warn(missing_docs)]

mod capture;
mod codec;
mod history;
mod keys;
pub mod model;
pub mod retention;

pub use history::{History, HistoryConfig, NewInstance, INSTANCE_PREFIX};
pub use model::{
    AggSpec, AggregatedAttr, AggregatedEntity, DatasetSel, Instance, PageRange, ReadSpec,
    ScopeInstance, TemporalEntity, TimeProp,
};
pub use retention::RetentionPolicy;
