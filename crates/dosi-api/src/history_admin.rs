//! The operator's API for the attribute history (`/api/v1/history`),
//! described in `/api/v1/openapi.json`.
//!
//! - `GET /api/v1/history/retention`: the retention policies in force.
//! - `PUT /api/v1/history/retention`: replaces them (kept across restarts,
//!   applied by the background task without a restart).
//! - `POST /api/v1/history/retention/apply`: applies them now; answers how
//!   many raw instances were dropped.
//! - `POST /api/v1/history/checkpoint`: seals the in-memory heads now.
//! - `GET /api/v1/history/stats`: sizes of the history storage.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dosi_history::{History, RetentionPolicy};
use dosi_ngsi::{ErrorKind, NgsiError, Timestamp};
use serde_json::json;

use crate::problem::ApiResult;
use crate::state::AppState;

fn history(st: &AppState) -> ApiResult<&std::sync::Arc<History>> {
    st.history.as_ref().ok_or_else(|| {
        NgsiError::new(ErrorKind::OperationNotSupported, "history is disabled").into()
    })
}

/// `GET /api/v1/history/retention`
pub async fn get_retention(State(st): State<AppState>) -> ApiResult<Response> {
    let h = history(&st)?;
    Ok(Json(h.retention_policies()).into_response())
}

/// `PUT /api/v1/history/retention`
pub async fn put_retention(State(st): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let h = history(&st)?;
    let policies: Vec<RetentionPolicy> = serde_json::from_slice(&body).map_err(|e| {
        NgsiError::bad_data(format!(
            "retention policies must be a JSON array of {{entityType?, attribute?, keepRawSecs, rollupSecs?}}: {e}"
        ))
    })?;
    h.set_retention_policies(policies).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/history/retention/apply`
pub async fn apply_retention(State(st): State<AppState>) -> ApiResult<Response> {
    let h = history(&st)?;
    let dropped = h.apply_retention(Timestamp::now()).await?;
    Ok(Json(json!({ "dropped": dropped })).into_response())
}

/// `POST /api/v1/history/checkpoint`: seals what is in memory now (e.g.
/// before a backup) and truncates the history's log.
pub async fn checkpoint(State(st): State<AppState>) -> ApiResult<Response> {
    let h = history(&st)?;
    h.engine().checkpoint().await.map_err(NgsiError::internal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/history/stats`
pub async fn stats(State(st): State<AppState>) -> ApiResult<Response> {
    let h = history(&st)?;
    let s = h.engine().stats();
    let per = if s.sealed_points > 0 {
        s.sealed_bytes as f64 / s.sealed_points as f64
    } else {
        0.0
    };
    Ok(Json(json!({
        "series": s.series,
        "points": s.points,
        "sealedBytes": s.sealed_bytes,
        "sealedPoints": s.sealed_points,
        "sealedBytesPerPoint": per,
        "walBytes": s.wal_bytes,
    }))
    .into_response())
}
