//! `/jsonldContexts` (clause 6.29–6.31): add, list, serve and delete contexts.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_jsonld::{core_context_document, is_core_context_url, CORE_CONTEXT_URL};
use dosi_ngsi::{NgsiError, Timestamp};
use serde_json::{json, Value};

use crate::contexts::ContextKind;
use crate::params::Params;
use crate::problem::ApiResult;
use crate::req::{self, BodyKind};
use crate::state::AppState;

fn json_reply(status: StatusCode, v: &Value, ct: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, ct)],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

/// POST /jsonldContexts
pub async fn add(State(st): State<AppState>, h: HeaderMap, bytes: Bytes) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    // The body is a JSON-LD document; both JSON media types are accepted and
    // the @context inside it is the payload, not a request context.
    let mut hh = h.clone();
    hh.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    hh.remove(header::LINK);
    let json: Value = match req::body(&hh, &bytes, BodyKind::Json) {
        Ok(b) => b.json,
        Err(e) if e.kind == dosi_ngsi::ErrorKind::BadRequestData => serde_json::from_slice(&bytes)
            .map_err(|e| NgsiError::invalid(format!("the body is not valid JSON: {e}")))?,
        Err(e) => return Err(e.into()),
    };
    if !json.is_object() {
        return Err(
            NgsiError::bad_data("the body must be a JSON object with an @context member").into(),
        );
    }
    let entry = st.contexts.add_hosted(&tenant, json).await?;
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&entry.url) {
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
        Some(k) => Some(
            ContextKind::parse(k)
                .ok_or_else(|| NgsiError::bad_data(format!("unknown kind '{k}'")))?,
        ),
    };
    let mut entries = st.contexts.list(&tenant, kind);
    let core = kind.is_none() || kind == Some(ContextKind::Cached);
    let body = if details {
        let mut v: Vec<Value> = entries.drain(..).map(|e| e.details()).collect();
        if core {
            v.insert(0, json!({"URL": CORE_CONTEXT_URL, "localId": "ngsi-ld-core-context", "kind": "Cached", "timestamp": Timestamp(0).to_iso(), "lastUsage": Timestamp::now().to_iso(), "numberOfHits": 0}));
        }
        Value::Array(v)
    } else {
        let mut v: Vec<Value> = entries.drain(..).map(|e| Value::String(e.url)).collect();
        if core {
            v.insert(0, Value::String(CORE_CONTEXT_URL.into()));
        }
        Value::Array(v)
    };
    Ok(json_reply(StatusCode::OK, &body, "application/json"))
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
    if is_core_context_url(&id) || id == "ngsi-ld-core-context" {
        if details {
            let v = json!({"URL": CORE_CONTEXT_URL, "localId": "ngsi-ld-core-context", "kind": "Cached", "timestamp": Timestamp(0).to_iso(), "lastUsage": Timestamp::now().to_iso(), "numberOfHits": 0});
            return Ok(json_reply(StatusCode::OK, &v, "application/json"));
        }
        let doc = core_context_document(&id)
            .unwrap_or_else(|| core_context_document(CORE_CONTEXT_URL).unwrap_or("{}"));
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/ld+json")],
            doc.to_string(),
        )
            .into_response());
    }
    let e = st
        .contexts
        .find(&tenant, &id)
        .ok_or_else(|| NgsiError::not_found(format!("no @context with id {id}")))?;
    if details {
        return Ok(json_reply(StatusCode::OK, &e.details(), "application/json"));
    }
    if e.kind != ContextKind::Hosted
        && e.kind != ContextKind::ImplicitlyCreated
        && p.get("details").is_some()
    {
        // details=false on a Cached context is served like any other.
    }
    Ok(json_reply(
        StatusCode::OK,
        &e.document,
        "application/ld+json",
    ))
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
