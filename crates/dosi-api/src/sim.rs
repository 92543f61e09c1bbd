//! The city simulator's control surface under `/api/v1/sim`, for the console's
//! scenario panel and `dosi scenario`. The simulator itself lives outside this
//! crate (it publishes through the gateway like any device); a process that
//! runs one in-process (`dosi demo`) installs it in [`AppState::sim`].
//!
//! - `GET /api/v1/sim`: what runs (simulated time, speed, devices, the
//!   scenarios that can be started and those started).
//! - `POST /api/v1/sim/scenarios` `{"kind": "flood", "target": "urn:…"?}`:
//!   starts a scenario now; 201 with what started.
//! - `GET /api/v1/sim/basemap`: the simulated city's geometry (districts,
//!   roads, river) as GeoJSON, the console's offline basemap.
//!
//! Without a simulator each answers 404 with a problem.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_ngsi::{NgsiError, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::problem::ApiResult;
use crate::state::AppState;

/// A simulator running beside the API.
pub trait SimControl: Send + Sync + 'static {
    /// Its state as JSON: `{simTime, speed, devices, scenarios: [names], active: [...]}`.
    fn status(&self) -> Value;
    /// Starts scenario `kind` at the current simulated time, aimed at
    /// `target` (an entity id) or a fitting default. Answers what started;
    /// an unknown kind or target is a `BadRequestData` error.
    fn trigger(&self, kind: &str, target: Option<&str>) -> Result<Value>;
    /// The city's geometry as a serialized GeoJSON FeatureCollection.
    fn basemap(&self) -> Option<Arc<Vec<u8>>>;
}

fn sim(st: &AppState) -> Result<&Arc<dyn SimControl>> {
    st.sim
        .get()
        .ok_or_else(|| NgsiError::not_found("no simulator runs in this process (see `dosi demo`)"))
}

/// `GET /api/v1/sim`
pub async fn status(State(st): State<AppState>) -> ApiResult<Response> {
    Ok(axum::Json(sim(&st)?.status()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Trigger {
    kind: String,
    target: Option<String>,
}

/// `POST /api/v1/sim/scenarios`
pub async fn trigger(State(st): State<AppState>, bytes: Bytes) -> ApiResult<Response> {
    let s = sim(&st)?;
    let t: Trigger = serde_json::from_slice(&bytes)
        .map_err(|e| NgsiError::bad_data(format!("a scenario is {{kind, target?}}: {e}")))?;
    let started = s.trigger(&t.kind, t.target.as_deref())?;
    Ok((StatusCode::CREATED, axum::Json(started)).into_response())
}

/// `GET /api/v1/sim/basemap`
pub async fn basemap(State(st): State<AppState>) -> ApiResult<Response> {
    let b = sim(&st)?
        .basemap()
        .ok_or_else(|| NgsiError::not_found("the simulator has no basemap"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/geo+json"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        b.as_ref().clone(),
    )
        .into_response())
}
