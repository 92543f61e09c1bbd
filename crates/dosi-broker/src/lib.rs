//! The context broker core of dosi: the one write path and the NGSI-LD
//! operation semantics on top of it.
//!
//! Every change — from the NGSI-LD API, the IoT gateway or rules — goes through
//! [`Broker::write`]: it locks the entities involved, lets the operation compute
//! their new state, commits durably through the [`dosi_store::Store`] and only
//! then publishes one [`dosi_bus::ChangeEvent`] per entity. Nothing writes
//! around it.
//!
//! This crate does no IO of its own and knows nothing of HTTP or JSON-LD
//! processing: it sees storage and the bus through their traits and JSON-LD
//! terms through [`codec::Terms`].

pub mod codec;
mod locks;
pub mod ops;
mod write;

pub use ops::{BatchOutcome, Purge, UpdateOutcome};
pub use write::{Broker, CommitHook, Txn};
