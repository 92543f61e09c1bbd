//! `/jsonldContexts` (clause 6.29–6.31): add, list, serve and delete contexts.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_jsonld::{core_context_document, is_core_context_url, CORE_CONTEXT_URL};
use dosi_ngsi::{ErrorKind, NgsiError, Result};
use serde_json::Value;

use crate::contexts::{ContextKind, CORE_LOCAL_ID};
use crate::params::Params;
use crate::problem::ApiResult;
use crate::req;
use crate::state::AppState;

/// The path a Hosted context is served at, relative to the host (as the
/// `Location` of the other resources dosi creates).
const SERVE_PATH: &str = "/ngsi-ld/v1/jsonldContexts";

fn json_reply(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn value_reply(v: &Value) -> Response {
    json_reply(StatusCode::OK, serde_json::to_vec(v).unwrap_or_default())
}

/// The `@context` document posted to `/jsonldContexts`: a JSON body, whatever
/// the JSON media type; its `@context` is the payload, not a request context.
fn posted_document(h: &HeaderMap, bytes: &Bytes) -> Result<Value> {
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
    if !matches!(ct.as_str(), "application/json" | "application/ld+json") {
        return Err(NgsiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "Content-Type '{ct}' is not supported; use application/json or application/ld+json"
            ),
        ));
    }
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| NgsiError::invalid(format!("the body is not valid JSON: {e}")))?;
    if !doc.is_object() {
        return Err(NgsiError::invalid(
            "the body must be a JSON object with an @context member",
        ));
    }
    Ok(doc)
}

/// POST /jsonldContexts
pub async fn add(State(st): State<AppState>, h: HeaderMap, bytes: Bytes) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let doc = posted_document(&h, &bytes)?;
    let entry = st.contexts.add_hosted(&tenant, doc).await?;
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{SERVE_PATH}/{}", entry.local_id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// GET /jsonldContexts
pub async fn list(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let p = Params::parse(q.as_deref())?;
    let details = p.flag("details")?;
    let kind = match p.get("kind") {
        None => None,
        Some(k) => Some(ContextKind::parse(k).ok_or_else(|| {
            NgsiError::bad_data(format!(
                "unknown kind '{k}': use Hosted, Cached or ImplicitlyCreated"
            ))
        })?),
    };
    // The built-in core context is always there, as a Cached one.
    let with_core = kind.is_none_or(|k| k == ContextKind::Cached);
    let entries = st.contexts.list(&tenant, kind);
    let items: Vec<Value> = if details {
        let core = with_core.then(|| st.contexts.core_details());
        core.into_iter()
            .chain(entries.iter().map(|e| e.details()))
            .collect()
    } else {
        let core = with_core.then(|| Value::String(CORE_CONTEXT_URL.into()));
        core.into_iter()
            .chain(entries.into_iter().map(|e| Value::String(e.url)))
            .collect()
    };
    Ok(value_reply(&Value::Array(items)))
}

/// GET /jsonldContexts/{id}
pub async fn serve(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let p = Params::parse(q.as_deref())?;
    let details = p.flag("details")?;
    if is_core_context_url(&id) || id == CORE_LOCAL_ID {
        if details {
            return Ok(value_reply(&st.contexts.core_details()));
        }
        let doc = core_context_document(&id)
            .or_else(|| core_context_document(CORE_CONTEXT_URL))
            .unwrap_or("{}");
        return Ok(json_reply(StatusCode::OK, doc.as_bytes().to_vec()));
    }
    if let Some(doc) = dosi_packs::context_document(&id) {
        return Ok(value_reply(&doc));
    }
    let e = st
        .contexts
        .serve(&tenant, &id)
        .ok_or_else(|| NgsiError::not_found(format!("no @context {id}")))?;
    if details {
        return Ok(value_reply(&e.details()));
    }
    Ok(value_reply(&e.document))
}

/// GET /contexts/{file}: the domain packs' `@context`s (`parking.jsonld`, …,
/// `packs.jsonld` for all of them), served by dosi itself so any client can
/// use them from here rather than from `https://dosi.city/contexts/…` (which
/// dosi resolves without network anyway).
pub async fn pack_context(Path(file): Path<String>) -> ApiResult<Response> {
    let doc = dosi_packs::context_document(&format!("{}{file}", dosi_packs::CONTEXT_BASE_URL))
        .ok_or_else(|| {
            NgsiError::not_found(format!(
                "no pack @context {file}: one of {} or packs.jsonld",
                dosi_packs::packs()
                    .iter()
                    .map(|p| format!("{}.jsonld", p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let mut r = value_reply(&doc);
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("max-age=86400"),
    );
    Ok(r)
}

/// DELETE /jsonldContexts/{id}
pub async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let p = Params::parse(q.as_deref())?;
    let reload = p.flag("reload")?;
    st.contexts.delete(&tenant, &id, reload).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
