//! A subscription as the notifier uses it: validated, with attribute and type
//! names expanded to IRIs and its query languages parsed.
//!
//! [`Subscription`] is built by [`crate::parse::subscription`] from the JSON a
//! client sent (compact form plus its `@context`) and rendered back by
//! [`crate::render::subscription`]. What is persisted is that JSON and its
//! context ([`StoredSubscription`]); the parsed form is rebuilt from it on start.

use std::sync::Arc;

use dosi_broker::codec::encode::Format;
use dosi_jsonld::ActiveContext;
use dosi_ngsi::model::Iri;
use dosi_ngsi::query::{GeoQuery, ScopeQ, TypeExpr, Q};
use dosi_ngsi::{EntityId, TenantId, Timestamp};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a subscription watches for (`notificationTrigger`, clause 5.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger {
    /// `entityCreated`
    EntityCreated,
    /// `entityUpdated`
    EntityUpdated,
    /// `entityDeleted`
    EntityDeleted,
    /// `attributeCreated`
    AttributeCreated,
    /// `attributeUpdated`
    AttributeUpdated,
    /// `attributeDeleted`
    AttributeDeleted,
}

impl Trigger {
    /// Every trigger, in the spec's order.
    pub const ALL: [Trigger; 6] = [
        Trigger::EntityCreated,
        Trigger::EntityUpdated,
        Trigger::EntityDeleted,
        Trigger::AttributeCreated,
        Trigger::AttributeUpdated,
        Trigger::AttributeDeleted,
    ];
    /// The spec's name (also the notification's `triggerReason`).
    pub fn name(self) -> &'static str {
        match self {
            Trigger::EntityCreated => "entityCreated",
            Trigger::EntityUpdated => "entityUpdated",
            Trigger::EntityDeleted => "entityDeleted",
            Trigger::AttributeCreated => "attributeCreated",
            Trigger::AttributeUpdated => "attributeUpdated",
            Trigger::AttributeDeleted => "attributeDeleted",
        }
    }
    /// The trigger named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }
    /// The default when `notificationTrigger` is absent:
    /// `attributeCreated` and `attributeUpdated` (clause 5.2.12).
    pub fn defaults() -> Vec<Trigger> {
        vec![Trigger::AttributeCreated, Trigger::AttributeUpdated]
    }
}

/// One member of `entities`: which entities the subscription is about.
/// All given parts must hold (id and/or idPattern, and the type expression).
#[derive(Debug, Clone)]
pub struct EntitySelector {
    /// `id`
    pub id: Option<EntityId>,
    /// `idPattern`, anchored (it must match the whole id).
    pub id_pattern: Option<Regex>,
    /// `idPattern` as given.
    pub id_pattern_src: Option<String>,
    /// `type` (a type expression), names expanded.
    pub types: TypeExpr,
    /// `type` as given (compact).
    pub types_src: String,
}

/// Media type of the notification body (`endpoint.accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyType {
    /// `application/json`: `@context` in a Link header.
    #[default]
    Json,
    /// `application/ld+json`: `@context` in the body.
    JsonLd,
    /// `application/geo+json`: entities as GeoJSON features.
    GeoJson,
}

impl BodyType {
    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            BodyType::Json => "application/json",
            BodyType::JsonLd => "application/ld+json",
            BodyType::GeoJson => "application/geo+json",
        }
    }
}

/// Where and how notifications are sent (`notification.endpoint`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `uri`: `http`, `https`, `mqtt` or `mqtts`.
    pub uri: url::Url,
    /// `accept`
    pub accept: BodyType,
    /// `timeout` in milliseconds, if given.
    pub timeout_ms: Option<u64>,
    /// `cooldown` in milliseconds, if given.
    pub cooldown_ms: Option<u64>,
    /// `receiverInfo`: extra headers (HTTP) or metadata (MQTT) sent along.
    pub receiver_info: Vec<(String, String)>,
    /// `notifierInfo`: settings for the notifier (e.g. `MQTT-Version`, `MQTT-QoS`).
    pub notifier_info: Vec<(String, String)>,
}

impl Endpoint {
    /// A `notifierInfo` value by key.
    pub fn notifier(&self, key: &str) -> Option<&str> {
        self.notifier_info
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// The delivery queue this endpoint belongs to: scheme, host and port.
    /// Endpoints sharing it share a queue, a connection pool and a circuit
    /// breaker; different keys never wait for each other.
    pub fn key(&self) -> String {
        format!(
            "{}://{}:{}",
            self.uri.scheme(),
            self.uri.host_str().unwrap_or(""),
            self.uri.port_or_known_default().unwrap_or(0)
        )
    }
}

/// How linked entities are joined into notified ones (`notification.join`,
/// clause 4.5.23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// `flat`: linked entities appended to the notified ones.
    Flat,
    /// `inline`: linked entities nested in the relationships.
    Inline,
}

impl Join {
    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            Join::Flat => "flat",
            Join::Inline => "inline",
        }
    }
}

/// `notification`: what is sent and where.
#[derive(Debug, Clone)]
pub struct NotificationParams {
    /// `attributes` (expanded); `None` = all.
    pub attributes: Option<Vec<Iri>>,
    /// `pick`: only these members (`id`, `type`, `scope` or expanded
    /// attribute names); never together with `attributes` or `omit`.
    pub pick: Option<Vec<String>>,
    /// `omit`: all but these members (as `pick`).
    pub omit: Option<Vec<String>>,
    /// `join`; `None` = no join (also `@none`).
    pub join: Option<Join>,
    /// `joinLevel`: how many relationship hops a join follows.
    pub join_level: Option<u32>,
    /// `format`
    pub format: Format,
    /// `sysAttrs`
    pub sys_attrs: bool,
    /// `showChanges`: include `previousValue` etc.
    pub show_changes: bool,
    /// `endpoint`
    pub endpoint: Endpoint,
}

/// `status` of a subscription (clause 5.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Notifications are sent.
    Active,
    /// `isActive` is false.
    Paused,
    /// `expiresAt` has passed.
    Expired,
}

impl Status {
    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Paused => "paused",
            Status::Expired => "expired",
        }
    }
}

/// A validated subscription (names expanded, queries parsed).
#[derive(Debug, Clone)]
pub struct Subscription {
    /// `id` (an absolute URI).
    pub id: String,
    /// The tenant it belongs to; it only sees that tenant's changes.
    pub tenant: TenantId,
    /// `subscriptionName`
    pub name: Option<String>,
    /// `description`
    pub description: Option<String>,
    /// `entities`; empty = any entity (then `watchedAttributes` is given).
    pub entities: Vec<EntitySelector>,
    /// `watchedAttributes` (expanded); `None` = any attribute.
    pub watched: Option<Vec<Iri>>,
    /// `notificationTrigger`
    pub triggers: Vec<Trigger>,
    /// `timeInterval` in seconds: periodic instead of change-driven.
    pub time_interval: Option<f64>,
    /// `q`, names expanded.
    pub q: Option<Q>,
    /// `q` as given.
    pub q_src: Option<String>,
    /// `geoQ`, geoproperty expanded.
    pub geo_q: Option<GeoQuery>,
    /// `geoQ` as given (compact JSON).
    pub geo_q_src: Option<Value>,
    /// `scopeQ`
    pub scope_q: Option<ScopeQ>,
    /// `scopeQ` as given.
    pub scope_q_src: Option<String>,
    /// `lang`
    pub lang: Option<String>,
    /// `csf` as given: validated, kept and shown, not used (no context sources yet).
    pub csf: Option<String>,
    /// `datasetId`: only attribute instances with these datasetIds (`@none`
    /// = the default instance); `None` = all.
    pub dataset_ids: Option<Vec<String>>,
    /// `notification`
    pub notification: NotificationParams,
    /// `expiresAt`
    pub expires_at: Option<Timestamp>,
    /// `throttling` in seconds.
    pub throttling: Option<f64>,
    /// `isActive`
    pub is_active: bool,
    /// `jsonldContext`: the URL of the @context notifications carry, if given.
    pub jsonld_context: Option<String>,
    /// The `@context` the subscription was created with (`None` = core only);
    /// notifications are compacted with `jsonld_context` if given, else this.
    pub context: Option<Value>,
    /// The active context notifications are compacted with.
    pub active: Arc<ActiveContext>,
    /// `createdAt`
    pub created_at: Timestamp,
    /// `modifiedAt`
    pub modified_at: Timestamp,
}

impl Subscription {
    /// The status at `now`.
    pub fn status(&self, now: Timestamp) -> Status {
        if self.expires_at.is_some_and(|e| e <= now) {
            Status::Expired
        } else if !self.is_active {
            Status::Paused
        } else {
            Status::Active
        }
    }
    /// True if `trigger` is one this subscription notifies on.
    pub fn wants(&self, trigger: Trigger) -> bool {
        self.triggers.contains(&trigger)
    }
}

/// What is persisted of a subscription: the JSON the client sent (compact,
/// updates merged in, `@context` removed) and the context it is read with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSubscription {
    /// The tenant.
    pub tenant: TenantId,
    /// The subscription JSON (compact form, no `@context`).
    pub doc: Value,
    /// The `@context` to read `doc` with (`None` = core only).
    pub context: Option<Value>,
    /// `createdAt`
    pub created_at: Timestamp,
    /// `modifiedAt`
    pub modified_at: Timestamp,
}

/// Delivery statistics of a subscription (rendered in its `notification`
/// member as `timesSent`, `timesFailed`, `lastNotification`, `lastSuccess`,
/// `lastFailure`, and `status` ok/failed).
#[derive(Debug, Clone, Default)]
pub struct DeliveryStats {
    /// Notifications delivered.
    pub times_sent: u64,
    /// Delivery attempts that failed.
    pub times_failed: u64,
    /// When the last notification was attempted.
    pub last_notification: Option<Timestamp>,
    /// When a notification last succeeded.
    pub last_success: Option<Timestamp>,
    /// When a notification last failed.
    pub last_failure: Option<Timestamp>,
}

impl DeliveryStats {
    /// `notification.status`: `ok` unless the last attempt failed.
    pub fn status(&self) -> &'static str {
        match (self.last_success, self.last_failure) {
            (_, None) => "ok",
            (None, Some(_)) => "failed",
            (Some(s), Some(f)) => {
                if f > s {
                    "failed"
                } else {
                    "ok"
                }
            }
        }
    }
}
