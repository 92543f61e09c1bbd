//! From the subscription JSON a client sends (compact, with its `@context`)
//! to a validated [`Subscription`].

use dosi_jsonld::ActiveContext;
use dosi_ngsi::{NgsiError, Result, TenantId, Timestamp};
use serde_json::Value;

use crate::model::Subscription;
use crate::ContextResolver;

/// Parses and validates a whole subscription (`POST /subscriptions`) read
/// with `ctx`, created at `now`. The subscription's `active` context is `ctx`
/// until [`resolve_notification_context`] applies `jsonldContext`.
pub fn subscription(
    _doc: &Value,
    _ctx: &ActiveContext,
    _tenant: &TenantId,
    _now: Timestamp,
) -> Result<Subscription> {
    Err(NgsiError::internal("subscription parsing is being written"))
}

/// Sets `sub.active` from `sub.jsonld_context` when given (resolved through
/// `resolver`), else leaves it as parsed.
pub async fn resolve_notification_context(
    sub: &mut Subscription,
    resolver: &dyn ContextResolver,
) -> Result<()> {
    if let Some(url) = &sub.jsonld_context {
        let ctx = resolver
            .resolve(&sub.tenant, Some(&Value::String(url.clone())))
            .await?;
        sub.active = std::sync::Arc::new(ctx);
    }
    Ok(())
}
