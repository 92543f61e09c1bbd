//! Request plumbing shared by the NGSI-LD handlers: tenant, content
//! negotiation (clause 6.3), the request's JSON-LD context, and responses that
//! carry the context back (Link header or `@context` member).

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_jsonld::{ActiveContext, CORE_CONTEXT_URL};
use dosi_ngsi::{ErrorKind, NgsiError, Result, TenantId};
use serde_json::Value;

use crate::state::AppState;

/// The media types dosi answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// `application/json`: context in a Link header.
    Json,
    /// `application/ld+json`: context in the body.
    JsonLd,
    /// `application/geo+json`: GeoJSON features; `link` when the client
    /// sent `Prefer: body=json` (clause 6.3.6): the context goes in a Link
    /// header instead of the body.
    GeoJson {
        /// Context in a Link header rather than in the body.
        link: bool,
    },
}

impl Accept {
    /// True for `application/geo+json`.
    pub fn is_geo(self) -> bool {
        matches!(self, Accept::GeoJson { .. })
    }
}

const JSONLD_REL: &str = "http://www.w3.org/ns/json-ld#context";

/// The tenant of the request (`NGSILD-Tenant`), default if absent.
pub fn tenant(h: &HeaderMap) -> Result<TenantId> {
    match h.get("ngsild-tenant") {
        None => Ok(TenantId::default_tenant()),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| NgsiError::bad_data("NGSILD-Tenant is not valid text"))?;
            if s.is_empty() {
                Ok(TenantId::default_tenant())
            } else {
                TenantId::parse(s)
            }
        }
    }
}

/// Checks that a tenant named in a read exists: it holds entities or
/// subscriptions (one can subscribe before the first entity arrives).
pub async fn existing_tenant(st: &AppState, h: &HeaderMap) -> Result<TenantId> {
    let t = tenant(h)?;
    if !t.is_default() && !st.broker.tenant_exists(&t).await? && st.notifier.list(&t).is_empty() {
        return Err(NgsiError::new(
            ErrorKind::NonexistentTenant,
            format!("tenant {t} does not exist"),
        ));
    }
    Ok(t)
}

/// Chooses the response media type from `Accept` (clause 6.3.6, RFC 9110
/// 12.5.1): each representation dosi can produce gets the weight of the most
/// specific media range that matches it; the highest weight wins, and ties go
/// to dosi's order (JSON, JSON-LD, GeoJSON).
pub fn accept(h: &HeaderMap, geo_allowed: bool) -> Result<Accept> {
    let Some(raw) = h.get(header::ACCEPT) else {
        return Ok(Accept::Json);
    };
    let raw = raw
        .to_str()
        .map_err(|_| NgsiError::new(ErrorKind::NotAcceptable, "Accept is not valid text"))?;
    // (type, subtype, weight)
    let mut ranges: Vec<(String, String, f32)> = Vec::new();
    for part in raw.split(',') {
        let mut it = part.split(';');
        let mt = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let Some((ty, sub)) = mt.split_once('/') else {
            continue;
        };
        let mut q = 1.0f32;
        for p in it {
            if let Some(v) = p.trim().strip_prefix("q=") {
                // An unparseable weight does not decide anything: treat it as 1.
                q = v
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(1.0);
            }
        }
        ranges.push((ty.trim().to_string(), sub.trim().to_string(), q));
    }
    let mut offers = vec![("json", Accept::Json), ("ld+json", Accept::JsonLd)];
    if geo_allowed {
        let link = h
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("body=json"));
        offers.push(("geo+json", Accept::GeoJson { link }));
    }
    let weight = |sub: &str| -> Option<f32> {
        let mut best: Option<(u8, f32)> = None;
        for (t, s, q) in &ranges {
            let specificity = if t == "application" && s == sub {
                3
            } else if t == "application" && s == "*" {
                2
            } else if t == "*" && s == "*" {
                1
            } else {
                continue;
            };
            if best.is_none_or(|(sp, _)| specificity > sp) {
                best = Some((specificity, *q));
            }
        }
        best.map(|(_, q)| q)
    };
    let mut chosen: Option<(f32, Accept)> = None;
    for (sub, a) in offers {
        if let Some(q) = weight(sub).filter(|q| *q > 0.0) {
            if chosen.is_none_or(|(cq, _)| q > cq) {
                chosen = Some((q, a));
            }
        }
    }
    chosen.map(|(_, a)| a).ok_or_else(|| {
        NgsiError::new(
            ErrorKind::NotAcceptable,
            format!(
                "cannot answer with any of '{raw}'; use application/json or application/ld+json"
            ),
        )
    })
}

/// The context named by a JSON-LD `Link` header, if any.
pub fn link_context(h: &HeaderMap) -> Result<Option<String>> {
    let Some(v) = h.get(header::LINK) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| NgsiError::bad_data("Link header is not valid text"))?;
    for link in s.split(',') {
        let link = link.trim();
        let Some(rest) = link.strip_prefix('<') else {
            continue;
        };
        let Some((url, params)) = rest.split_once('>') else {
            return Err(NgsiError::bad_data(format!("malformed Link header '{s}'")));
        };
        let is_ctx = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == format!("rel=\"{JSONLD_REL}\""));
        if is_ctx {
            if url.is_empty() || !dosi_ngsi::ids::is_absolute_uri(url) {
                return Err(NgsiError::bad_data(format!(
                    "the Link header context '{url}' is not a URL"
                )));
            }
            return Ok(Some(url.to_string()));
        }
    }
    Ok(None)
}

/// A parsed request body with the JSON-LD context that applies to it.
pub struct Body {
    /// The JSON body (with `@context` members still in it).
    pub json: Value,
    /// The context: the body's `@context` (ld+json) or the Link header URL.
    pub context: Option<Value>,
    /// True if the request used `application/ld+json`.
    pub ld: bool,
}

/// Which media types a write accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json` or `application/ld+json`.
    Json,
    /// Also `application/merge-patch+json` (PATCH merges).
    MergePatch,
    /// A JSON array (batch): @context rules are checked per item by the caller.
    Array,
}

/// Checks Content-Type / Content-Length and parses the JSON body (clause 6.3.4/6.3.5).
pub fn body(h: &HeaderMap, bytes: &Bytes, kind: BodyKind) -> Result<Body> {
    if h.get(header::CONTENT_LENGTH).is_none() {
        return Err(NgsiError::new(
            ErrorKind::LengthRequired,
            "a Content-Length is required",
        ));
    }
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let ld = match ct.as_str() {
        "application/json" => false,
        "application/ld+json" => true,
        "application/merge-patch+json" if kind == BodyKind::MergePatch => false,
        "" => {
            return Err(NgsiError::new(ErrorKind::UnsupportedMediaType, "Content-Type is missing"))
        }
        other => {
            return Err(NgsiError::new(
                ErrorKind::UnsupportedMediaType,
                format!("Content-Type {other} is not supported; use application/json or application/ld+json"),
            ))
        }
    };
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|e| NgsiError::invalid(format!("the body is not valid JSON: {e}")))?;
    if kind != BodyKind::Array && !json.is_object() {
        return Err(NgsiError::invalid("the body must be a JSON object"));
    }
    let link = link_context(h)?;
    let context = if ld {
        if link.is_some() {
            return Err(NgsiError::bad_data(
                "a Link header must not be used with application/ld+json: put the @context in the body",
            ));
        }
        let ctx = match &json {
            Value::Object(o) => o.get("@context").cloned(),
            Value::Array(items) => items.first().and_then(|i| i.get("@context")).cloned(),
            _ => None,
        };
        let has_all = match &json {
            Value::Array(items) => items.iter().all(|i| i.get("@context").is_some()),
            _ => ctx.is_some(),
        };
        if kind != BodyKind::Array && (ctx.is_none() || !has_all) {
            return Err(NgsiError::bad_data(
                "application/ld+json bodies must carry an @context member",
            ));
        }
        ctx
    } else {
        let has_ctx = kind != BodyKind::Array
            && match &json {
                Value::Object(o) => o.contains_key("@context"),
                Value::Array(items) => items.iter().any(|i| i.get("@context").is_some()),
                _ => false,
            };
        if has_ctx {
            return Err(NgsiError::bad_data(
                "application/json bodies must not carry an @context member: use a Link header or application/ld+json",
            ));
        }
        link.map(Value::String)
    };
    Ok(Body { json, context, ld })
}

/// The context of a request without a body (from its Link header).
pub fn get_context(h: &HeaderMap) -> Result<Option<Value>> {
    Ok(link_context(h)?.map(Value::String))
}

/// Resolves a request context into an active context.
pub async fn active(
    st: &AppState,
    tenant: &TenantId,
    ctx: Option<&Value>,
) -> Result<ActiveContext> {
    st.contexts.resolve(tenant, ctx).await
}

/// `Content-Type` and the context's `Link` of a plain JSON answer.
fn json_headers(headers: &mut HeaderMap, ctx: Option<&Value>) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let link = match ctx {
        Some(Value::String(url)) => HeaderValue::from_str(&format!(
            "<{url}>; rel=\"{JSONLD_REL}\"; type=\"application/ld+json\""
        ))
        .ok(),
        _ => {
            static CORE_LINK: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
            Some(
                CORE_LINK
                    .get_or_init(|| {
                        HeaderValue::from_str(&format!(
                            "<{CORE_CONTEXT_URL}>; rel=\"{JSONLD_REL}\"; type=\"application/ld+json\""
                        ))
                        .expect("the core context link is a valid header")
                    })
                    .clone(),
            )
        }
    };
    if let Some(v) = link {
        headers.insert(header::LINK, v);
    }
}

/// The member JSON-LD answers add to each entity object (`"@context":…`,
/// as `add_context` does); `None` for the other media types.
pub fn context_member(accept: Accept, ctx: Option<&Value>) -> Option<Vec<u8>> {
    if accept != Accept::JsonLd {
        return None;
    }
    let mut m = b"\"@context\":".to_vec();
    let core = Value::String(CORE_CONTEXT_URL.into());
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut m, ctx.unwrap_or(&core));
    Some(m)
}

/// Adds `member` (`"key":value`) as the last member of the JSON object that
/// ends `out`.
pub fn append_member(out: &mut Vec<u8>, member: &[u8]) {
    if out.last() != Some(&b'}') {
        return;
    }
    out.pop();
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    out.extend_from_slice(member);
    out.push(b'}');
}

/// [`reply`] for one entity already written as a JSON object (by
/// `encode::write_entity`): the same answer without a `Value` in between.
pub fn reply_object(
    status: StatusCode,
    mut body: Vec<u8>,
    accept: Accept,
    ctx: Option<&Value>,
) -> Response {
    if let Some(m) = context_member(accept, ctx) {
        append_member(&mut body, &m);
    }
    reply_written(status, body, accept, ctx)
}

/// A JSON (or JSON-LD) answer whose body is already complete, contexts
/// included: only the headers [`reply`] would set are added. Not for
/// GeoJSON, whose context placement [`reply`] decides.
pub fn reply_written(
    status: StatusCode,
    body: Vec<u8>,
    accept: Accept,
    ctx: Option<&Value>,
) -> Response {
    let mut headers = HeaderMap::new();
    match accept {
        Accept::Json => json_headers(&mut headers, ctx),
        Accept::JsonLd => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/ld+json"),
            );
        }
        Accept::GeoJson { .. } => {
            let tree = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return reply(status, tree, accept, ctx);
        }
    }
    (status, headers, body).into_response()
}

/// A JSON answer carrying the request's context as the media type demands.
pub fn reply(status: StatusCode, mut body: Value, accept: Accept, ctx: Option<&Value>) -> Response {
    let mut headers = HeaderMap::new();
    match accept {
        Accept::JsonLd => {
            let c = ctx
                .cloned()
                .unwrap_or_else(|| Value::String(CORE_CONTEXT_URL.into()));
            add_context(&mut body, &c);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/ld+json"),
            );
        }
        Accept::Json => json_headers(&mut headers, ctx),
        Accept::GeoJson { link } => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/geo+json"),
            );
            let c = ctx
                .cloned()
                .unwrap_or_else(|| Value::String(CORE_CONTEXT_URL.into()));
            match (&c, link) {
                // A context that is one URL can go in a Link header.
                (Value::String(url), true) => {
                    if let Ok(v) = HeaderValue::from_str(&format!(
                        "<{url}>; rel=\"{JSONLD_REL}\"; type=\"application/ld+json\""
                    )) {
                        headers.insert(header::LINK, v);
                    }
                    headers.insert("preference-applied", HeaderValue::from_static("body=json"));
                }
                _ => add_context(&mut body, &c),
            }
        }
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (status, headers, bytes).into_response()
}

fn add_context(body: &mut Value, ctx: &Value) {
    match body {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("FeatureCollection") {
                if let Some(Value::Array(fs)) = m.get_mut("features") {
                    for f in fs {
                        add_context(f, ctx);
                    }
                }
                m.insert("@context".into(), ctx.clone());
            } else {
                m.insert("@context".into(), ctx.clone());
            }
        }
        Value::Array(items) => {
            for i in items {
                add_context(i, ctx);
            }
        }
        _ => {}
    }
}

/// Adds the pagination links of a page (clause 5.5.9) to `resp`: `prev`
/// when not at the start, `next` when `more` results follow. The links repeat
/// the request's parameters (`p`) with another `offset`.
pub fn page_links(
    resp: &mut Response,
    path: &str,
    p: &crate::params::Params,
    page: &dosi_store::Page,
    more: bool,
    accept: Accept,
) {
    if page.limit == 0 {
        return;
    }
    let ct = if accept == Accept::JsonLd {
        "application/ld+json"
    } else {
        "application/json"
    };
    let mut links = Vec::new();
    if page.offset > 0 {
        let prev = page.offset.saturating_sub(page.limit);
        links.push((prev, "prev"));
    }
    if more {
        links.push((page.offset + page.limit, "next"));
    }
    for (offset, rel) in links {
        let link = format!(
            "<{path}?{}>; rel=\"{rel}\";type=\"{ct}\"",
            p.with_offset(offset)
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().append(header::LINK, v);
        }
    }
}

/// The NGSI-LD version a client prefers (`Prefer: ngsi-ld=1.N`, clause
/// 6.3.6), read as RFC 7240 has it: a comma-separated list of preferences,
/// names case-insensitive, values tokens or quoted strings, parameters after
/// `;` that do not change which preference it is.
pub fn preferred_version(h: &HeaderMap) -> Option<String> {
    h.get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|pref| {
            let head = pref.split(';').next().unwrap_or("");
            let (name, value) = head.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("ngsi-ld") {
                return None;
            }
            let value = value.trim().trim_matches('"');
            let (major, minor) = value.split_once('.')?;
            let known = major == "1" && minor.parse::<u8>().is_ok_and(|m| m <= 9);
            known.then(|| value.to_string())
        })
}

/// Answers a version preference that changes nothing (resources without
/// version fallbacks, clause 4.3.6.8): `Preference-Applied` names it.
pub fn apply_version_preference(h: &HeaderMap, resp: &mut Response) {
    if let Some(v) = preferred_version(h) {
        if let Ok(v) = HeaderValue::from_str(&format!("ngsi-ld={v}")) {
            resp.headers_mut().insert("preference-applied", v);
        }
    }
}

/// An empty answer with a status.
pub fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// What every read needs, checked in the order the spec's errors take
/// precedence: the answer's media type, an existing tenant, only known query
/// parameters, and the request's JSON-LD context.
pub struct Read {
    /// The media type to answer with.
    pub accept: Accept,
    /// The (existing) tenant.
    pub tenant: TenantId,
    /// The query parameters.
    pub params: crate::params::Params,
    /// The Link-header context, echoed in the answer.
    pub link: Option<Value>,
    /// The processed context.
    pub ctx: ActiveContext,
}

impl Read {
    /// Parses and checks a read request; `allowed` lists its query parameters.
    pub async fn new(
        st: &AppState,
        h: &HeaderMap,
        query: Option<&str>,
        allowed: &[&str],
    ) -> Result<Self> {
        let accept = accept(h, false)?;
        let tenant = existing_tenant(st, h).await?;
        let params = crate::params::Params::parse(query)?;
        params.allow(allowed)?;
        let link = get_context(h)?;
        let ctx = active(st, &tenant, link.as_ref()).await?;
        Ok(Self {
            accept,
            tenant,
            params,
            link,
            ctx,
        })
    }

    /// A 200 answer carrying the request's context.
    pub fn reply(&self, body: Value) -> Response {
        reply(StatusCode::OK, body, self.accept, self.link.as_ref())
    }
}
