//! The operations console: its page at `/`, its files at `/console/*`
//! (embedded by `dosi-console`), and `GET /api/v1/console/config`.
//!
//! Files are answered with a strong `ETag` and `Cache-Control: no-cache`, so
//! a browser revalidates (a `304` without body) and never runs a stale
//! console after an upgrade.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_console::Asset;
use dosi_ngsi::NgsiError;
use serde_json::{json, Value};

use crate::problem::ApiResult;
use crate::state::AppState;

/// `GET /`: the console's page.
pub async fn index(h: HeaderMap) -> Response {
    serve(dosi_console::index(), &h)
}

/// `GET /console/{file}`
pub async fn file(Path(name): Path<String>, h: HeaderMap) -> ApiResult<Response> {
    let a = dosi_console::asset(&name)
        .ok_or_else(|| NgsiError::not_found(format!("the console has no file {name}")))?;
    Ok(serve(a, &h))
}

fn serve(a: &'static Asset, h: &HeaderMap) -> Response {
    let etag = HeaderValue::from_str(&a.etag).expect("a hex tag is a valid header value");
    let fresh = h
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == a.etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            )],
            a.body,
        )
            .into_response()
    };
    let hs = resp.headers_mut();
    hs.insert(header::ETAG, etag);
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    hs.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if a.content_type.starts_with("text/html") {
        // Everything the console loads comes from this server.
        hs.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: blob: https: http:; style-src 'self'; connect-src 'self'",
            ),
        );
    }
    resp
}

/// `GET /api/v1/console/config`: what the console needs before it draws:
/// the raster tile source (empty: the offline basemap only), whether a
/// simulator runs here and its scenarios.
pub async fn config(State(st): State<AppState>) -> ApiResult<Response> {
    let sim = st.sim.get();
    let scenarios = sim
        .map(|s| s.status().get("scenarios").cloned().unwrap_or(Value::Null))
        .filter(Value::is_array)
        .unwrap_or_else(|| json!([]));
    Ok(axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "tileUrl": st.config.console_tile_url,
        "tileAttribution": st.config.console_tile_attribution,
        "sim": sim.is_some(),
        "scenarios": scenarios,
        "contextUrl": format!("{}packs.jsonld", dosi_packs::CONTEXT_BASE_URL),
        "liveWindowMs": st.config.live_window.as_millis() as u64,
    }))
    .into_response())
}
