//! NGSI-LD subscriptions and notifications that are never lost.
//!
//! - [`model`]: a subscription in expanded, parsed form;
//! - [`parse`] / [`render`]: between the subscription JSON of the API and the model;
//! - [`Notifier`] ([`engine`]): the registry of subscriptions (persisted in the
//!   store's meta space), the commit hook that matches every committed change
//!   against them and appends the notifications to the durable [`outbox`]
//!   before the write is acknowledged, and the delivery workers;
//! - [`deliver`]: one queue per endpoint (scheme, host, port) with bounded
//!   concurrency, retries with exponential back-off and jitter, a circuit
//!   breaker, and dead letters after the last attempt; transports for HTTP(S)
//!   and MQTT ([`mqtt`]).
//!
//! Knows no HTTP server and no JSON-LD IO: contexts come resolved through
//! [`ContextResolver`].

pub mod deliver;
pub mod engine;
pub mod matcher;
pub mod model;
pub mod mqtt;
pub mod outbox;
pub mod parse;
pub mod render;

use async_trait::async_trait;
use dosi_jsonld::ActiveContext;
use dosi_ngsi::{Result, TenantId};
use serde_json::Value;

pub use engine::{Notifier, NotifierConfig};
pub use model::{StoredSubscription, Subscription};

/// Resolves a subscription's `@context` (as a request gives it) to an active
/// context; implemented by the API layer's context store.
#[async_trait]
pub trait ContextResolver: Send + Sync {
    /// The active context for `ctx` (`None` = the core context only).
    async fn resolve(&self, tenant: &TenantId, ctx: Option<&Value>) -> Result<ActiveContext>;
}
