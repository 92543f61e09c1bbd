//! From a [`Subscription`] back to the JSON of the API, compacted with a
//! request's context (clause 5.2.12, 5.8.3).
//!
//! Rendering is faithful to parsing: [`crate::parse::subscription`] of
//! [`document`] (with the same or any other context) gives the same
//! subscription again. Defaults the client did not have to give (`format`,
//! `accept`, `notificationTrigger`) are shown; flags that are off
//! (`sysAttrs`, `showChanges`) and `isActive` while true are not. Delivery
//! statistics appear once a notification has been attempted.

use dosi_broker::codec::encode::Format;
use dosi_jsonld::ActiveContext;
use dosi_ngsi::Timestamp;
use serde_json::{json, Map, Value};

use crate::engine::SubscriptionView;
use crate::model::{DeliveryStats, Endpoint, EntitySelector, NotificationParams, Subscription};

/// What a rendering includes beyond the subscription's own members.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// `createdAt` and `modifiedAt` (`options=sysAttrs`).
    pub sys_attrs: bool,
    /// The instant `status` is computed for.
    pub now: Timestamp,
}

/// The subscription JSON of `GET /subscriptions[/{id}]`: its members
/// compacted with `ctx`, its `status`, delivery statistics in
/// `notification`, and with `opts.sys_attrs` its timestamps.
pub fn subscription(view: &SubscriptionView, ctx: &ActiveContext, opts: &RenderOptions) -> Value {
    let sub = &view.sub;
    let mut m = document(sub, ctx);
    m.insert("status".into(), json!(sub.status(opts.now).name()));
    if let Some(Value::Object(n)) = m.get_mut("notification") {
        add_stats(n, &view.stats);
    }
    if opts.sys_attrs {
        m.insert("createdAt".into(), json!(sub.created_at.to_iso()));
        m.insert("modifiedAt".into(), json!(sub.modified_at.to_iso()));
    }
    Value::Object(m)
}

/// The members a client sets, compacted with `ctx`: what an update fragment
/// is merged into, and the part of [`subscription`] that parses back.
pub fn document(sub: &Subscription, ctx: &ActiveContext) -> Map<String, Value> {
    let compact = |iri: &str| Value::String(ctx.compact_iri(iri));
    let mut m = Map::new();
    m.insert("id".into(), json!(sub.id));
    m.insert("type".into(), json!("Subscription"));
    put(
        &mut m,
        "subscriptionName",
        sub.name.as_ref().map(|s| json!(s)),
    );
    put(
        &mut m,
        "description",
        sub.description.as_ref().map(|s| json!(s)),
    );
    if !sub.entities.is_empty() {
        let items = sub.entities.iter().map(|e| selector(e, ctx)).collect();
        m.insert("entities".into(), Value::Array(items));
    }
    put(
        &mut m,
        "watchedAttributes",
        sub.watched
            .as_ref()
            .map(|w| w.iter().map(|a| compact(a)).collect()),
    );
    let triggers = sub.triggers.iter().map(|t| json!(t.name())).collect();
    m.insert("notificationTrigger".into(), Value::Array(triggers));
    put(&mut m, "timeInterval", sub.time_interval.map(number));
    put(
        &mut m,
        "q",
        sub.q.as_ref().map(|q| {
            let mut q = q.clone();
            q.expand_names(&|n| ctx.compact_iri(n));
            json!(q.to_string())
        }),
    );
    put(&mut m, "geoQ", geo_query(sub, ctx));
    put(&mut m, "scopeQ", sub.scope_q_src.as_ref().map(|s| json!(s)));
    put(&mut m, "csf", sub.csf.as_ref().map(|s| json!(s)));
    put(&mut m, "lang", sub.lang.as_ref().map(|s| json!(s)));
    put(
        &mut m,
        "datasetId",
        sub.dataset_ids.as_ref().map(|d| json!(d)),
    );
    if !sub.is_active {
        m.insert("isActive".into(), json!(false));
    }
    put(
        &mut m,
        "expiresAt",
        sub.expires_at.map(|t| json!(t.to_iso())),
    );
    put(&mut m, "throttling", sub.throttling.map(number));
    m.insert("notification".into(), notification(&sub.notification, ctx));
    put(
        &mut m,
        "jsonldContext",
        sub.jsonld_context.as_ref().map(|u| json!(u)),
    );
    m
}

fn put(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(key.into(), v);
    }
}

/// Whole numbers without a fraction, so `5` stays `5`.
fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() < EXACT {
        json!(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn selector(e: &EntitySelector, ctx: &ActiveContext) -> Value {
    let mut m = Map::new();
    put(&mut m, "id", e.id.as_ref().map(|i| json!(i.as_str())));
    put(
        &mut m,
        "idPattern",
        e.id_pattern_src.as_ref().map(|p| json!(p)),
    );
    let mut types = e.types.clone();
    types.expand_names(&|n| ctx.compact_iri(n));
    m.insert("type".into(), json!(types.to_string()));
    Value::Object(m)
}

/// `geoQ` as given, its `geoproperty` compacted with `ctx`.
fn geo_query(sub: &Subscription, ctx: &ActiveContext) -> Option<Value> {
    let mut v = sub.geo_q_src.clone()?;
    if let (Some(g), Value::Object(m)) = (&sub.geo_q, &mut v) {
        if m.contains_key("geoproperty") {
            m.insert("geoproperty".into(), json!(ctx.compact_iri(&g.geoproperty)));
        }
    }
    Some(v)
}

fn notification(n: &NotificationParams, ctx: &ActiveContext) -> Value {
    let compact_all = |names: &[String]| -> Value {
        names
            .iter()
            .map(|a| match a.as_str() {
                "id" | "type" | "scope" => json!(a),
                _ => json!(ctx.compact_iri(a)),
            })
            .collect()
    };
    let mut m = Map::new();
    put(
        &mut m,
        "attributes",
        n.attributes
            .as_ref()
            .map(|a| a.iter().map(|a| json!(ctx.compact_iri(a))).collect()),
    );
    put(&mut m, "pick", n.pick.as_deref().map(compact_all));
    put(&mut m, "omit", n.omit.as_deref().map(compact_all));
    let format = match n.format {
        Format::Normalized => "normalized",
        Format::Concise => "concise",
        Format::Simplified => "keyValues",
    };
    m.insert("format".into(), json!(format));
    if n.sys_attrs {
        m.insert("sysAttrs".into(), json!(true));
    }
    if n.show_changes {
        m.insert("showChanges".into(), json!(true));
    }
    put(&mut m, "join", n.join.map(|j| json!(j.name())));
    put(&mut m, "joinLevel", n.join_level.map(|l| json!(l)));
    m.insert("endpoint".into(), endpoint(&n.endpoint));
    Value::Object(m)
}

fn endpoint(e: &Endpoint) -> Value {
    let pairs = |kv: &[(String, String)]| -> Option<Value> {
        (!kv.is_empty()).then(|| {
            kv.iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()
        })
    };
    let mut m = Map::new();
    m.insert("uri".into(), json!(e.uri.as_str()));
    m.insert("accept".into(), json!(e.accept.media_type()));
    put(&mut m, "timeout", e.timeout_ms.map(|t| json!(t)));
    put(&mut m, "cooldown", e.cooldown_ms.map(|t| json!(t)));
    put(&mut m, "receiverInfo", pairs(&e.receiver_info));
    put(&mut m, "notifierInfo", pairs(&e.notifier_info));
    Value::Object(m)
}

/// `timesSent`, `timesFailed`, `lastNotification`, `lastSuccess`,
/// `lastFailure` and `status` (ok / failed), once anything was attempted.
fn add_stats(n: &mut Map<String, Value>, s: &DeliveryStats) {
    let attempted = s.times_sent > 0 || s.times_failed > 0 || s.last_notification.is_some();
    if !attempted {
        return;
    }
    n.insert("timesSent".into(), json!(s.times_sent));
    n.insert("timesFailed".into(), json!(s.times_failed));
    let at = |t: Option<Timestamp>| t.map(|t| json!(t.to_iso()));
    put(n, "lastNotification", at(s.last_notification));
    put(n, "lastSuccess", at(s.last_success));
    put(n, "lastFailure", at(s.last_failure));
    n.insert("status".into(), json!(s.status()));
}
