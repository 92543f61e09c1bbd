//! The NGSI-LD information model of dosi: entities and attributes in their
//! *expanded* form (attribute names and types are full IRIs), the closed error
//! catalogue, the NGSI-LD query languages (`q`, `scopeQ`, `geoQ`, type
//! expressions) and the temporal query parameters (`temporal`).
//!
//! This crate does no IO and knows nothing of HTTP, JSON-LD context loading,
//! storage or the bus. JSON-LD term expansion happens before data reaches it
//! (see `dosi-jsonld`); rendering back to compact form happens after.

pub mod error;
pub mod ids;
pub mod model;
pub mod query;
pub mod temporal;
pub mod time;

pub use error::{ErrorKind, NgsiError, Result};
pub use ids::{EntityId, TenantId};
pub use model::{AttrKind, Attribute, Entity};
pub use time::Timestamp;
