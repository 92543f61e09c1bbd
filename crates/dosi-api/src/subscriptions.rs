//! `/subscriptions` (clauses 6.10, 6.11; operations 5.8.1–5.8.5): create,
//! query, retrieve, update and delete subscriptions. What a subscription may
//! hold and how it reads back is `dosi_notify::{parse, render}`; the registry
//! is the [`dosi_notify::Notifier`].

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_ngsi::ids::is_absolute_uri;
use dosi_ngsi::{ErrorKind, NgsiError, Result, TenantId, Timestamp};
use dosi_notify::render::{self, RenderOptions};
use dosi_notify::{parse, StoredSubscription, Subscription};
use serde_json::{Map, Value};

use crate::params::{self, Params};
use crate::problem::ApiResult;
use crate::req::{self, BodyKind, Read};
use crate::state::AppState;

/// Where subscriptions are served.
const PATH: &str = "/ngsi-ld/v1/subscriptions";

/// A subscription id from the path: an absolute URI (5.8.2–5.8.5).
fn subscription_id(raw: &str) -> Result<&str> {
    if is_absolute_uri(raw) {
        Ok(raw)
    } else {
        Err(NgsiError::bad_data(format!(
            "subscription id '{raw}' is not a URI"
        )))
    }
}

fn not_found(id: &str) -> NgsiError {
    NgsiError::not_found(format!("no subscription with id {id}"))
}

/// `options=sysAttrs` (createdAt, modifiedAt) is the one option here.
fn render_options(p: &Params) -> Result<RenderOptions> {
    let mut sys_attrs = false;
    for o in p.list("options").unwrap_or_default() {
        match o.as_str() {
            "sysAttrs" => sys_attrs = true,
            other => {
                return Err(NgsiError::invalid(format!(
                    "unknown option '{other}' (subscriptions know sysAttrs)"
                )))
            }
        }
    }
    Ok(RenderOptions {
        sys_attrs,
        now: Timestamp::now(),
    })
}

/// POST /subscriptions
pub async fn create(State(st): State<AppState>, h: HeaderMap, bytes: Bytes) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let b = req::body(&h, &bytes, BodyKind::Json)?;
    let ctx = req::active(&st, &tenant, b.context.as_ref()).await?;
    let now = Timestamp::now();
    let mut sub = parse::subscription(&b.json, &ctx, &tenant, now)?;
    if st.notifier.get(&tenant, &sub.id).is_some() {
        return Err(already_exists(&sub.id).into());
    }
    let Value::Object(mut doc) = b.json else {
        return Err(NgsiError::bad_data("a subscription must be a JSON object").into());
    };
    doc.remove("@context");
    // A generated id has to be read back after a restart as well.
    doc.insert("id".into(), Value::String(sub.id.clone()));
    fix_notification_context(&st, &tenant, &mut sub, &mut doc, b.context.as_ref()).await?;
    let id = sub.id.clone();
    let stored = StoredSubscription {
        tenant,
        doc: Value::Object(doc),
        context: b.context,
        created_at: now,
        modified_at: now,
    };
    st.notifier.create(sub, stored).await?;
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{PATH}/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

fn already_exists(id: &str) -> NgsiError {
    NgsiError::new(
        ErrorKind::AlreadyExists,
        format!("subscription {id} already exists"),
    )
}

/// Fixes the `@context` notifications are compacted with and name in their
/// `Link` header: `jsonldContext` when given, else the request's context —
/// its URL when it is a single one, else an ImplicitlyCreated copy of it
/// (clause 5.13), since a notification sent as `application/json` needs a
/// URL. Written into the document as `jsonldContext` (the member the spec
/// lets the broker fill in), so it stays the same through updates made with
/// other contexts and across restarts. Then checks the context can be had.
async fn fix_notification_context(
    st: &AppState,
    tenant: &TenantId,
    sub: &mut Subscription,
    doc: &mut Map<String, Value>,
    request_ctx: Option<&Value>,
) -> Result<()> {
    sub.context = request_ctx.cloned();
    if sub.jsonld_context.is_none() {
        let url = match request_ctx {
            None => None,
            Some(Value::String(u)) => Some(u.clone()),
            Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
                items[0].as_str().map(String::from)
            }
            Some(inline) => Some(st.contexts.implicit(tenant, inline).await?.url),
        };
        if let Some(url) = url {
            doc.insert("jsonldContext".into(), Value::String(url.clone()));
            sub.jsonld_context = Some(url);
        }
    }
    parse::resolve_notification_context(sub, st.contexts.as_ref()).await
}

/// GET /subscriptions
pub async fn query(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let r = Read::new(
        &st,
        &h,
        q.as_deref(),
        &["limit", "offset", "count", "options"],
    )
    .await?;
    let opts = render_options(&r.params)?;
    let page = params::page(&r.params, st.config.default_limit, st.config.max_limit)?;
    let all = st.notifier.list(&r.tenant);
    let total = all.len();
    let items: Vec<Value> = all
        .iter()
        .skip(page.offset)
        .take(page.limit)
        .map(|v| render::subscription(v, &r.ctx, &opts))
        .collect();
    let more = page.offset.saturating_add(items.len()) < total;
    let mut resp = r.reply(Value::Array(items));
    if page.count {
        resp.headers_mut()
            .insert("NGSILD-Results-Count", HeaderValue::from(total));
    }
    req::page_links(&mut resp, PATH, &r.params, &page, more, r.accept);
    req::apply_version_preference(&h, &mut resp);
    Ok(resp)
}

/// GET /subscriptions/{id}
pub async fn retrieve(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let r = Read::new(&st, &h, q.as_deref(), &["options"]).await?;
    let id = subscription_id(&id)?;
    let opts = render_options(&r.params)?;
    let view = st
        .notifier
        .get(&r.tenant, id)
        .ok_or_else(|| not_found(id))?;
    let mut resp = r.reply(render::subscription(&view, &r.ctx, &opts));
    req::apply_version_preference(&h, &mut resp);
    Ok(resp)
}

/// PATCH /subscriptions/{id}
pub async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let id = subscription_id(&id)?;
    let b = req::body(&h, &bytes, BodyKind::MergePatch)?;
    let current = st.notifier.get(&tenant, id).ok_or_else(|| not_found(id))?;
    let ctx = req::active(&st, &tenant, b.context.as_ref()).await?;
    let now = Timestamp::now();
    let parse::Updated { mut sub, doc } = parse::update(&current.sub, &b.json, &ctx, now)?;
    let Value::Object(mut doc) = doc else {
        return Err(NgsiError::internal("a merged subscription is not an object").into());
    };
    fix_notification_context(&st, &tenant, &mut sub, &mut doc, b.context.as_ref()).await?;
    let stored = StoredSubscription {
        tenant,
        doc: Value::Object(doc),
        context: b.context,
        created_at: sub.created_at,
        modified_at: sub.modified_at,
    };
    st.notifier.update(sub, stored).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE /subscriptions/{id}
pub async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let id = subscription_id(&id)?;
    st.notifier.delete(&tenant, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
