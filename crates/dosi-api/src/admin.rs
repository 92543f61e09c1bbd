//! The operator's API for notifications that could not be delivered
//! (`/api/v1/notifications/dead-letters`), described in `/api/v1/openapi.json`.
//!
//! - `GET    /api/v1/notifications/dead-letters[?subscriptionId=&limit=&offset=]`
//! - `GET    /api/v1/notifications/dead-letters/{id}`
//! - `POST   /api/v1/notifications/dead-letters/{id}/retry` (202)
//! - `DELETE /api/v1/notifications/dead-letters/{id}` (204)
//! - `POST   /api/v1/notifications/dead-letters/retry[?subscriptionId=]` (202, all)

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dosi_ngsi::NgsiError;
use dosi_notify::outbox::DeadLetter;
use serde_json::{json, Value};

use crate::problem::ApiResult;
use crate::state::AppState;

/// The OpenAPI document of `/api/v1`.
const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn render(d: &DeadLetter) -> Value {
    let o = &d.outgoing;
    let body: Value = serde_json::from_slice(&o.body).unwrap_or(Value::Null);
    json!({
        "id": d.nid,
        "notificationId": o.notification_id,
        "subscriptionId": o.subscription_id,
        "tenant": o.tenant,
        "endpoint": o.uri,
        "attempts": d.attempts,
        "deadSince": d.at.to_iso(),
        "reason": d.reason,
        "notification": body,
    })
}

fn parse_id(id: &str) -> ApiResult<u64> {
    id.parse::<u64>()
        .map_err(|_| NgsiError::bad_data(format!("dead letter id '{id}' is not a number")).into())
}

fn not_found(id: u64) -> NgsiError {
    NgsiError::not_found(format!("no dead letter with id {id}"))
}

fn number(q: &HashMap<String, String>, name: &str, default: usize) -> ApiResult<usize> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            NgsiError::bad_data(format!("{name} must be a non-negative integer, not '{v}'")).into()
        }),
    }
}

/// `GET /api/v1/notifications/dead-letters`
pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    for k in q.keys() {
        if !matches!(k.as_str(), "subscriptionId" | "limit" | "offset") {
            return Err(NgsiError::bad_data(format!("unknown query parameter '{k}'")).into());
        }
    }
    let limit = number(&q, "limit", 100)?.min(1000);
    let offset = number(&q, "offset", 0)?;
    let sub = q.get("subscriptionId");
    let all: Vec<DeadLetter> = st
        .notifier
        .dead_letters()
        .into_iter()
        .filter(|d| sub.is_none_or(|s| *s == d.outgoing.subscription_id))
        .collect();
    let total = all.len();
    let page: Vec<Value> = all.iter().skip(offset).take(limit).map(render).collect();
    Ok((
        [("X-Total-Count", total.to_string())],
        Json(Value::Array(page)),
    )
        .into_response())
}

/// `GET /api/v1/notifications/dead-letters/{id}`
pub async fn get_one(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let d = st
        .notifier
        .dead_letters()
        .into_iter()
        .find(|d| d.nid == id)
        .ok_or_else(|| not_found(id))?;
    Ok(Json(render(&d)).into_response())
}

/// `POST /api/v1/notifications/dead-letters/{id}/retry`
pub async fn retry(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    st.notifier
        .retry_dead_letter(id)
        .await
        .ok_or_else(|| not_found(id))?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /api/v1/notifications/dead-letters/retry`: retries all (of one subscription).
pub async fn retry_all(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    for k in q.keys() {
        if k != "subscriptionId" {
            return Err(NgsiError::bad_data(format!("unknown query parameter '{k}'")).into());
        }
    }
    let sub = q.get("subscriptionId");
    let mut n = 0;
    for d in st.notifier.dead_letters() {
        if sub.is_none_or(|s| *s == d.outgoing.subscription_id)
            && st.notifier.retry_dead_letter(d.nid).await.is_some()
        {
            n += 1;
        }
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "retried": n }))).into_response())
}

/// `DELETE /api/v1/notifications/dead-letters/{id}`
pub async fn discard(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    st.notifier
        .discard_dead_letter(id)
        .ok_or_else(|| not_found(id))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
