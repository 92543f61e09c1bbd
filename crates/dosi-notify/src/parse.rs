//! From the subscription JSON a client sends (compact, with its `@context`)
//! to a validated [`Subscription`] (clauses 5.2.12, 5.2.14, 5.2.15, 5.8.1,
//! 5.8.2).
//!
//! Every violation is `BadRequestData` naming the member and the value, as
//! 5.8.1.4 and 5.8.2.4 ask when "the data types and restrictions are not
//! met", also where the query-language parsers on their own would say
//! `InvalidRequest`. Members the system sets (`status`, `createdAt`,
//! `notification.timesSent`, ...) are ignored when a client sends them
//! (Table 5.2.12-2), and so are members this version does not know.

use std::fmt;
use std::sync::Arc;

use dosi_broker::codec::decode::check_name;
use dosi_broker::codec::encode::Format;
use dosi_jsonld::ActiveContext;
use dosi_ngsi::ids::is_absolute_uri;
use dosi_ngsi::model::Iri;
use dosi_ngsi::query::{GeoQuery, ScopeQ, TypeExpr, Q};
use dosi_ngsi::{EntityId, NgsiError, Result, TenantId, Timestamp};
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::model::{
    BodyType, Endpoint, EntitySelector, Join, NotificationParams, Subscription, Trigger,
};
use crate::ContextResolver;

/// Upper bound on a compiled `idPattern`, so a hostile pattern cannot make
/// the broker allocate without limit.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Endpoint URI schemes notifications can be sent over.
const SCHEMES: [&str; 4] = ["http", "https", "mqtt", "mqtts"];

/// Headers a `receiverInfo` pair cannot set: the notifier sets them to
/// describe and frame the message it sends.
const NOTIFIER_HEADERS: [&str; 5] = [
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "content-type",
];

/// Parses and validates a whole subscription (`POST /subscriptions`) read
/// with `ctx`, created at `now`: an `expiresAt` not after `now` is
/// `BadRequestData`. Without an `id` one is generated
/// (`urn:ngsi-ld:Subscription:<uuid>`). The subscription's `active` context
/// is `ctx` until [`resolve_notification_context`] applies `jsonldContext`;
/// its `context` (the raw `@context`) is left for the caller to set.
pub fn subscription(
    doc: &Value,
    ctx: &ActiveContext,
    tenant: &TenantId,
    now: Timestamp,
) -> Result<Subscription> {
    let sub = build(doc, ctx, tenant, now)?;
    if let Some(at) = sub.expires_at {
        ensure_future(at, now)?;
    }
    Ok(sub)
}

/// A subscription changed by an update fragment: what to keep in the
/// registry and the document to persist.
#[derive(Debug, Clone)]
pub struct Updated {
    /// The subscription after the update (`createdAt` kept, `modifiedAt` = now).
    pub sub: Subscription,
    /// The merged subscription JSON (compact with the request's context, no
    /// `@context`): what [`subscription`] reads back on restart.
    pub doc: Value,
}

/// Applies an update fragment (`PATCH /subscriptions/{id}`, clause 5.8.2)
/// read with `ctx` to `current`: the current subscription is rendered with
/// `ctx`, each top-level member of the fragment replaces its namesake (`null`
/// removes it), and the result is validated as a whole subscription. An
/// `expiresAt` in the fragment must lie after `now`; one kept from before may
/// have passed (the subscription then stays expired). The id cannot change.
pub fn update(
    current: &Subscription,
    fragment: &Value,
    ctx: &ActiveContext,
    now: Timestamp,
) -> Result<Updated> {
    let frag = fragment.as_object().ok_or_else(|| {
        NgsiError::bad_data(format!(
            "an update fragment must be a JSON object, not {}",
            Show(fragment)
        ))
    })?;
    let changes: Vec<(&String, &Value)> = frag.iter().filter(|(k, _)| *k != "@context").collect();
    if changes.is_empty() {
        return Err(NgsiError::bad_data(
            "the update fragment has no member to change",
        ));
    }
    if let Some(id) = frag.get("id") {
        if id.as_str() != Some(current.id.as_str()) {
            return Err(NgsiError::bad_data(format!(
                "id: {} cannot replace the subscription's id {}",
                Show(id),
                current.id
            )));
        }
    }
    let mut doc = crate::render::document(current, ctx);
    for (k, v) in changes {
        if v.is_null() {
            doc.remove(k);
        } else {
            doc.insert(k.clone(), v.clone());
        }
    }
    let doc = Value::Object(doc);
    let mut sub = build(&doc, ctx, &current.tenant, now)?;
    if frag.get("expiresAt").is_some_and(|v| !v.is_null()) {
        if let Some(at) = sub.expires_at {
            ensure_future(at, now)?;
        }
    }
    sub.created_at = current.created_at;
    sub.modified_at = now;
    Ok(Updated { sub, doc })
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

fn ensure_future(at: Timestamp, now: Timestamp) -> Result<()> {
    if at <= now {
        return Err(NgsiError::bad_data(format!(
            "expiresAt: {} is not in the future",
            at.to_iso()
        )));
    }
    Ok(())
}

/// Validates everything but the relation of `expiresAt` to now.
fn build(
    doc: &Value,
    ctx: &ActiveContext,
    tenant: &TenantId,
    now: Timestamp,
) -> Result<Subscription> {
    let map = doc.as_object().ok_or_else(|| {
        NgsiError::bad_data(format!(
            "a subscription must be a JSON object, not {}",
            Show(doc)
        ))
    })?;
    let o = Obj::root(map);
    let id = match o.str("id")? {
        None => format!("urn:ngsi-ld:Subscription:{}", uuid::Uuid::new_v4()),
        Some(s) if is_absolute_uri(s) => s.to_owned(),
        Some(s) => return Err(o.bad("id", format!("'{s}' is not a URI"))),
    };
    match o.str("type")? {
        Some("Subscription") => {}
        Some(t) => return Err(o.bad("type", format!("must be \"Subscription\", not '{t}'"))),
        None => return Err(o.bad("type", "is missing: it must be \"Subscription\"")),
    }
    let entities = entities(&o, ctx)?;
    let watched = o.names("watchedAttributes", ctx)?;
    if entities.is_empty() && watched.is_none() {
        return Err(NgsiError::bad_data(
            "a subscription needs entities or watchedAttributes (or both)",
        ));
    }
    let time_interval = o.positive("timeInterval")?;
    let throttling = o.positive("throttling")?;
    if time_interval.is_some() {
        for other in ["watchedAttributes", "throttling"] {
            if o.get(other).is_some() {
                return Err(o.bad(
                    "timeInterval",
                    format!("a periodic subscription cannot have {other}"),
                ));
            }
        }
    }
    let (q, q_src) = query(&o, ctx)?;
    let (geo_q, geo_q_src) = geo_query(&o, ctx)?;
    let scope_q_src = o.str("scopeQ")?.map(String::from);
    let scope_q = scope_q_src
        .as_deref()
        .map(|s| ScopeQ::parse(s).map_err(|e| o.within("scopeQ", e)))
        .transpose()?;
    let csf = o.str("csf")?.map(String::from);
    if let Some(c) = &csf {
        Q::parse(c).map_err(|e| o.within("csf", e))?;
    }
    let expires_at = o
        .str("expiresAt")?
        .map(|s| Timestamp::parse(s).map_err(|e| o.within("expiresAt", e)))
        .transpose()?;
    let jsonld_context = match o.str("jsonldContext")? {
        Some(u) if is_absolute_uri(u) => Some(u.to_owned()),
        Some(u) => {
            return Err(o.bad(
                "jsonldContext",
                format!("'{u}' is not a dereferenceable URI"),
            ))
        }
        None => None,
    };
    let notification = o
        .object("notification")?
        .ok_or_else(|| o.bad("notification", "is missing"))?;
    Ok(Subscription {
        id,
        tenant: tenant.clone(),
        name: o.str("subscriptionName")?.map(String::from),
        description: o.str("description")?.map(String::from),
        entities,
        watched,
        triggers: triggers(&o)?,
        time_interval,
        q,
        q_src,
        geo_q,
        geo_q_src,
        scope_q,
        scope_q_src,
        lang: o.non_empty_str("lang")?.map(String::from),
        csf,
        dataset_ids: dataset_ids(&o)?,
        notification: notification_params(&notification, ctx)?,
        expires_at,
        throttling,
        is_active: o.bool("isActive")?.unwrap_or(true),
        jsonld_context,
        context: None,
        active: Arc::new(ctx.clone()),
        created_at: now,
        modified_at: now,
    })
}

fn entities(o: &Obj<'_>, ctx: &ActiveContext) -> Result<Vec<EntitySelector>> {
    let Some(items) = o.array("entities")? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{}entities[{i}]", o.prefix);
            let map = item.as_object().ok_or_else(|| {
                NgsiError::bad_data(format!("{path}: must be an object, not {}", Show(item)))
            })?;
            entity_selector(&Obj::nested(map, format!("{path}.")), ctx)
        })
        .collect()
}

fn entity_selector(o: &Obj<'_>, ctx: &ActiveContext) -> Result<EntitySelector> {
    let id = o
        .str("id")?
        .map(|s| EntityId::parse(s).map_err(|_| o.bad("id", format!("'{s}' is not a URI"))))
        .transpose()?;
    let id_pattern_src = o.str("idPattern")?.map(String::from);
    let id_pattern = id_pattern_src
        .as_deref()
        .map(|p| anchored_regex(p).map_err(|e| o.bad("idPattern", e)))
        .transpose()?;
    let types_src = o
        .str("type")?
        .ok_or_else(|| o.bad("type", "is missing (an entity type or type expression)"))?
        .to_owned();
    let mut types = TypeExpr::parse(&types_src).map_err(|e| o.within("type", e))?;
    types.expand_names(&|n| ctx.expand_term(n));
    Ok(EntitySelector {
        id,
        id_pattern,
        id_pattern_src,
        types,
        types_src,
    })
}

/// `pat` as a regular expression that must match a whole id.
fn anchored_regex(pat: &str) -> std::result::Result<Regex, String> {
    let build = |p: &str| {
        RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("'{pat}' is not a valid regular expression: {e}"))
    };
    // Compiled alone first: wrapped, `a)|(b` would compile as something else.
    build(pat)?;
    build(&format!("^(?:{pat})$"))
}

fn triggers(o: &Obj<'_>) -> Result<Vec<Trigger>> {
    let Some(names) = o.strings("notificationTrigger")? else {
        return Ok(Trigger::defaults());
    };
    let mut out = Vec::new();
    for n in names {
        let t = Trigger::parse(n).ok_or_else(|| {
            let valid: Vec<&str> = Trigger::ALL.iter().map(|t| t.name()).collect();
            o.bad(
                "notificationTrigger",
                format!("unknown trigger '{n}' (valid: {})", valid.join(", ")),
            )
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn query(o: &Obj<'_>, ctx: &ActiveContext) -> Result<(Option<Q>, Option<String>)> {
    let Some(src) = o.str("q")? else {
        return Ok((None, None));
    };
    let mut q = Q::parse(src).map_err(|e| o.within("q", e))?;
    q.expand_names(&|n| ctx.expand_term(n));
    Ok((Some(q), Some(src.to_owned())))
}

fn geo_query(o: &Obj<'_>, ctx: &ActiveContext) -> Result<(Option<GeoQuery>, Option<Value>)> {
    let Some(v) = o.get("geoQ") else {
        return Ok((None, None));
    };
    let mut g = GeoQuery::from_json(v).map_err(|e| o.within("geoQ", e))?;
    if let Some(gp) = v.get("geoproperty").and_then(Value::as_str) {
        check_name(gp, "geoQ.geoproperty").map_err(|e| o.within("geoQ", e))?;
    }
    g.expand_names(&|n| ctx.expand_term(n));
    Ok((Some(g), Some(v.clone())))
}

fn dataset_ids(o: &Obj<'_>) -> Result<Option<Vec<String>>> {
    let ids: Vec<&str> = match o.get("datasetId") {
        None => return Ok(None),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(_) => o.strings("datasetId")?.unwrap_or_default(),
    };
    ids.into_iter()
        .map(|d| {
            if d == "@none" || is_absolute_uri(d) {
                Ok(d.to_owned())
            } else {
                Err(o.bad("datasetId", format!("'{d}' is not a URI (nor @none)")))
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn notification_params(o: &Obj<'_>, ctx: &ActiveContext) -> Result<NotificationParams> {
    let attributes = o.names("attributes", ctx)?;
    let format = match o.str("format")? {
        None | Some("normalized") => Format::Normalized,
        Some("concise") => Format::Concise,
        Some("keyValues" | "simplified") => Format::Simplified,
        Some(f) => {
            return Err(o.bad(
                "format",
                format!("unknown format '{f}' (use normalized, concise, keyValues or simplified)"),
            ))
        }
    };
    let show_changes = o.bool("showChanges")?.unwrap_or(false);
    if show_changes && format == Format::Simplified {
        return Err(o.bad("showChanges", "cannot be true with the keyValues format"));
    }
    let pick = o.members("pick", ctx)?;
    let omit = o.members("omit", ctx)?;
    if pick.is_some() && omit.is_some() {
        return Err(o.bad("pick", "cannot be combined with omit"));
    }
    if attributes.is_some() {
        for (name, given) in [("pick", pick.is_some()), ("omit", omit.is_some())] {
            if given {
                return Err(o.bad(name, "cannot be combined with attributes"));
            }
        }
    }
    let join = match o.str("join")? {
        None | Some("@none") => None,
        Some("flat") => Some(Join::Flat),
        Some("inline") => Some(Join::Inline),
        Some(j) => return Err(o.bad("join", format!("must be flat, inline or @none, not '{j}'"))),
    };
    let join_level = o
        .integer("joinLevel")?
        .map(|l| u32::try_from(l).map_err(|_| o.bad("joinLevel", format!("{l} is too large"))))
        .transpose()?;
    let endpoint = o
        .object("endpoint")?
        .ok_or_else(|| o.bad("endpoint", "is missing"))?;
    Ok(NotificationParams {
        attributes,
        pick,
        omit,
        join,
        join_level,
        format,
        sys_attrs: o.bool("sysAttrs")?.unwrap_or(false),
        show_changes,
        endpoint: endpoint_params(&endpoint)?,
    })
}

fn endpoint_params(o: &Obj<'_>) -> Result<Endpoint> {
    let raw = o.str("uri")?.ok_or_else(|| o.bad("uri", "is missing"))?;
    let uri =
        url::Url::parse(raw).map_err(|e| o.bad("uri", format!("'{raw}' is not a URI: {e}")))?;
    if !SCHEMES.contains(&uri.scheme()) {
        return Err(o.bad(
            "uri",
            format!(
                "scheme '{}' of '{raw}' is not supported (use {})",
                uri.scheme(),
                SCHEMES.join(", ")
            ),
        ));
    }
    if uri.host_str().is_none_or(str::is_empty) {
        return Err(o.bad("uri", format!("'{raw}' names no host")));
    }
    if uri.scheme().starts_with("mqtt") && uri.path().trim_start_matches('/').is_empty() {
        return Err(o.bad("uri", format!("'{raw}' names no MQTT topic (its path)")));
    }
    let accept = match o.str("accept")? {
        None | Some("application/json") => BodyType::Json,
        Some("application/ld+json") => BodyType::JsonLd,
        Some("application/geo+json") => BodyType::GeoJson,
        Some(a) => {
            let known =
                [BodyType::Json, BodyType::JsonLd, BodyType::GeoJson].map(BodyType::media_type);
            return Err(o.bad(
                "accept",
                format!("'{a}' is not one of {}", known.join(", ")),
            ));
        }
    };
    Ok(Endpoint {
        uri,
        accept,
        timeout_ms: o.integer("timeout")?,
        cooldown_ms: o.integer("cooldown")?,
        receiver_info: key_values(o, "receiverInfo", check_receiver_info)?,
        notifier_info: key_values(o, "notifierInfo", check_notifier_info)?,
    })
}

/// An array of `{"key": String, "value": String}` (KeyValuePair, clause 5.2.22).
fn key_values(
    o: &Obj<'_>,
    key: &str,
    check: fn(&str, &str) -> std::result::Result<(), String>,
) -> Result<Vec<(String, String)>> {
    let Some(items) = o.array(key)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let member = format!("{key}[{i}]");
            let pair = item.as_object().ok_or_else(|| {
                o.bad(
                    &member,
                    format!("must be a {{key, value}} object, not {}", Show(item)),
                )
            })?;
            let text = |name: &str| match pair.get(name) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(o.bad(
                    &member,
                    format!("{name} must be a string, not {}", Show(other)),
                )),
                None => Err(o.bad(&member, format!("{name} is missing"))),
            };
            let (k, v) = (text("key")?, text("value")?);
            check(&k, &v).map_err(|why| o.bad(&member, why))?;
            Ok((k, v))
        })
        .collect()
}

/// `receiverInfo` pairs become headers (HTTP) or metadata (MQTT): a key is an
/// HTTP field name (RFC 9110 token), a value holds no control characters.
fn check_receiver_info(key: &str, value: &str) -> std::result::Result<(), String> {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if key.is_empty() || !key.chars().all(tchar) {
        return Err(format!("key '{key}' is not a valid header name"));
    }
    if NOTIFIER_HEADERS.contains(&key.to_ascii_lowercase().as_str()) {
        return Err(format!("key '{key}' is a header the notifier sets itself"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!("the value of '{key}' contains control characters"));
    }
    Ok(())
}

/// `notifierInfo` settings; the MQTT ones (clause 7.2) take fixed values.
fn check_notifier_info(key: &str, value: &str) -> std::result::Result<(), String> {
    let allowed: &[&str] = match key {
        "" => return Err("key must not be empty".into()),
        "MQTT-Version" => &["mqtt3.1.1", "mqtt5.0"],
        "MQTT-QoS" => &["0", "1", "2"],
        _ => return Ok(()),
    };
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{key} must be one of {}, not '{value}'",
            allowed.join(", ")
        ))
    }
}

/// Typed access to the members of one JSON object, with errors naming the
/// member by its path (`notification.endpoint.uri`). `null` counts as absent.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Obj<'a> {
    fn root(map: &'a Map<String, Value>) -> Self {
        Self::nested(map, String::new())
    }

    fn nested(map: &'a Map<String, Value>, prefix: String) -> Self {
        Self { map, prefix }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// `BadRequestData` about member `key`.
    fn bad(&self, key: &str, why: impl fmt::Display) -> NgsiError {
        NgsiError::bad_data(format!("{}{key}: {why}", self.prefix))
    }

    /// A parser's error about member `key`, as `BadRequestData` naming it.
    fn within(&self, key: &str, e: NgsiError) -> NgsiError {
        let detail = e
            .detail
            .strip_prefix(&format!("{key}: "))
            .unwrap_or(&e.detail);
        self.bad(key, detail)
    }

    fn wrong(&self, key: &str, want: &str, v: &Value) -> NgsiError {
        self.bad(key, format!("must be {want}, not {}", Show(v)))
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    fn non_empty_str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.str(key)? {
            Some("") => Err(self.bad(key, "must not be empty")),
            other => Ok(other),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "true or false", v)),
        }
    }

    /// A number greater than 0.
    fn positive(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(n) if n > 0.0 && n.is_finite() => Ok(Some(n)),
                _ => Err(self.wrong(key, "a number greater than 0", v)),
            },
        }
    }

    /// An integer greater than 0.
    fn integer(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(self.wrong(key, "an integer greater than 0", v)),
            },
        }
    }

    /// A non-empty array.
    fn array(&self, key: &str) -> Result<Option<&'a [Value]>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) if a.is_empty() => Err(self.bad(key, "must not be empty")),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.wrong(key, "an array", v)),
        }
    }

    /// A non-empty array of strings.
    fn strings(&self, key: &str) -> Result<Option<Vec<&'a str>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| self.wrong(key, "an array of strings", i))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn object(&self, key: &str) -> Result<Option<Obj<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj::nested(m, format!("{}{key}.", self.prefix)))),
            Some(v) => Err(self.wrong(key, "an object", v)),
        }
    }

    /// A non-empty array of attribute names, expanded.
    fn names(&self, key: &str, ctx: &ActiveContext) -> Result<Option<Vec<Iri>>> {
        let Some(names) = self.strings(key)? else {
            return Ok(None);
        };
        let mut out: Vec<Iri> = Vec::new();
        for n in names {
            self.check_attr_name(key, n)?;
            let iri: Iri = Arc::from(ctx.expand_term(n));
            if !out.contains(&iri) {
                out.push(iri);
            }
        }
        Ok(Some(out))
    }

    /// `pick` / `omit`: `id`, `type`, `scope` or attribute names (expanded).
    fn members(&self, key: &str, ctx: &ActiveContext) -> Result<Option<Vec<String>>> {
        let Some(names) = self.strings(key)? else {
            return Ok(None);
        };
        let mut out: Vec<String> = Vec::new();
        for n in names {
            let m = match n {
                "id" | "type" | "scope" => n.to_owned(),
                _ => {
                    self.check_attr_name(key, n)?;
                    ctx.expand_term(n)
                }
            };
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Ok(Some(out))
    }

    fn check_attr_name(&self, key: &str, name: &str) -> Result<()> {
        if name.starts_with('@') {
            return Err(self.bad(
                key,
                format!("'{name}' is a JSON-LD keyword, not an attribute name"),
            ));
        }
        check_name(name, key)
            .map_err(|e| NgsiError::bad_data(format!("{}{}", self.prefix, e.detail)))
    }
}

/// A JSON value in an error message, shortened.
struct Show<'a>(&'a Value);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        match text.char_indices().nth(60) {
            Some((cut, _)) => write!(f, "{}…", &text[..cut]),
            None => f.write_str(&text),
        }
    }
}
