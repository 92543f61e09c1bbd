//! The HTTP edge of dosi: the NGSI-LD API under `/ngsi-ld/v1`, the platform
//! API under `/api/v1` (OpenAPI at `/api/v1/openapi.json`), `/health`,
//! `/metrics`, and the operations console at `/` (its files embedded by
//! `dosi-console`, its live stream and map snapshot in [`live`]).
//!
//! Invariant: this is the only crate that knows HTTP. Handlers parse and
//! negotiate, resolve the request's JSON-LD context, decode with
//! `dosi_broker::codec`, call the broker, and encode the answer; every error
//! becomes a problem-details answer in [`problem`] and nowhere else.

mod admin;
pub mod auth;
mod batch;
mod commands;
mod console;
mod context_api;
pub mod contexts;
mod devices;
mod discovery;
mod entities;
mod history_admin;
mod ingest_batch;
pub mod iot;
mod live;
mod liveness;
mod params;
pub mod problem;
mod req;
pub mod sim;
pub mod state;
mod subscriptions;
mod temporal;

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use dosi_ngsi::{ErrorKind, NgsiError};

pub use auth::{AllowAll, Authorizer};
pub use state::{ApiConfig, AppState};

use crate::problem::ApiError;

/// The whole HTTP application.
pub fn router(state: AppState, authorizer: std::sync::Arc<dyn Authorizer>) -> Router {
    let routes: Vec<(&str, MethodRouter<AppState>)> = vec![
        (
            "/entities",
            get(entities::query)
                .post(entities::create)
                .delete(entities::purge)
                .put(entities::missing_id)
                .patch(entities::missing_id),
        ),
        (
            "/entities/{id}",
            get(entities::retrieve)
                .delete(entities::delete)
                .put(entities::replace)
                .patch(entities::merge),
        ),
        (
            "/entities/{id}/attrs",
            post(entities::append).patch(entities::update),
        ),
        (
            "/entities/{id}/attrs/{attr}",
            axum::routing::patch(entities::partial_update)
                .put(entities::replace_attr)
                .delete(entities::delete_attr),
        ),
        ("/entityOperations/create", post(batch::create)),
        ("/entityOperations/upsert", post(batch::upsert)),
        ("/entityOperations/update", post(batch::update)),
        ("/entityOperations/delete", post(batch::delete)),
        ("/entityOperations/merge", post(batch::merge)),
        ("/entityOperations/query", post(batch::query)),
        ("/types", get(discovery::types)),
        ("/types/{type}", get(discovery::type_info)),
        ("/attributes", get(discovery::attributes)),
        ("/attributes/{attr}", get(discovery::attribute_info)),
        (
            "/subscriptions",
            get(subscriptions::query).post(subscriptions::create),
        ),
        (
            "/subscriptions/{id}",
            get(subscriptions::retrieve)
                .patch(subscriptions::update)
                .delete(subscriptions::delete),
        ),
        (
            "/temporal/entities",
            get(temporal::query).post(temporal::create),
        ),
        (
            "/temporal/entities/{id}",
            get(temporal::retrieve).delete(temporal::delete),
        ),
        ("/temporal/entities/{id}/attrs", post(temporal::add_attrs)),
        (
            "/temporal/entities/{id}/attrs/{attr}",
            axum::routing::delete(temporal::delete_attr),
        ),
        (
            "/temporal/entities/{id}/attrs/{attr}/{instance}",
            axum::routing::patch(temporal::modify_instance).delete(temporal::delete_instance),
        ),
        (
            "/temporal/entityOperations/query",
            post(temporal::post_query),
        ),
        ("/info/sourceIdentity", get(source_identity)),
        (
            "/jsonldContexts",
            get(context_api::list).post(context_api::add),
        ),
        (
            "/jsonldContexts/{id}",
            get(context_api::serve).delete(context_api::delete),
        ),
    ];
    let mut ngsi = Router::new();
    for (path, mr) in routes {
        // Clients (and the ETSI suite) also use a trailing slash.
        // Full paths rather than a nested router: nesting strips the prefix
        // from every request, a cost on the hottest routes.
        ngsi = ngsi
            .route(&format!("/ngsi-ld/v1{path}"), mr.clone())
            .route(&format!("/ngsi-ld/v1{path}/"), mr);
    }
    let ngsi = ngsi.layer(middleware::from_fn_with_state(
        authorizer.clone(),
        auth::layer,
    ));
    let api = Router::new()
        .route("/api/v1/openapi.json", get(admin::openapi))
        .route(
            "/api/v1/history/retention",
            get(history_admin::get_retention).put(history_admin::put_retention),
        )
        .route(
            "/api/v1/history/retention/apply",
            post(history_admin::apply_retention),
        )
        .route("/api/v1/history/stats", get(history_admin::stats))
        .route("/api/v1/devices", get(devices::list).post(devices::create))
        .route(
            "/api/v1/devices/{id}",
            get(devices::get_one)
                .patch(devices::patch)
                .delete(devices::delete),
        )
        .route("/api/v1/devices/{id}/credentials", post(devices::rotate))
        .route("/api/v1/sim", get(sim::status))
        .route("/api/v1/sim/scenarios", post(sim::trigger))
        .route("/api/v1/sim/basemap", get(sim::basemap))
        .route("/api/v1/events", get(live::events))
        .route("/api/v1/map/points", get(live::points))
        .route("/api/v1/console/config", get(console::config))
        .route(
            "/api/v1/history/checkpoint",
            post(history_admin::checkpoint),
        )
        .route("/api/v1/notifications/dead-letters", get(admin::list))
        .route(
            "/api/v1/notifications/dead-letters/retry",
            post(admin::retry_all),
        )
        .route(
            "/api/v1/notifications/dead-letters/{id}",
            get(admin::get_one).delete(admin::discard),
        )
        .route(
            "/api/v1/notifications/dead-letters/{id}/retry",
            post(admin::retry),
        )
        .layer(middleware::from_fn_with_state(authorizer, auth::layer));
    let max_body = state.config.max_body_bytes;
    Router::new()
        .merge(ngsi)
        .merge(api)
        .route(
            "/iot/services",
            get(iot::list_groups)
                .post(iot::add_groups)
                .put(iot::update_group)
                .delete(iot::delete_group),
        )
        .route(
            "/iot/devices",
            get(iot::list_devices).post(iot::add_devices),
        )
        .route("/api/v1/devices/{id}/measures", post(devices::measures))
        .route("/iot/d", post(iot::ingest_ul))
        .route("/iot/json", post(iot::ingest_json))
        .route("/iot/d/commands", post(iot::command_result_ul))
        .route("/iot/json/commands", post(iot::command_result_json))
        .route(
            "/iot/devices/{id}",
            get(iot::get_device)
                .put(iot::update_device)
                .delete(iot::delete_device),
        )
        .route("/contexts/{file}", get(context_api::pack_context))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/", get(console::index))
        .route("/console/{file}", get(console::file))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError(NgsiError::not_found(format!(
        "no resource at {}",
        req.uri().path()
    )))
}

/// GET /info/sourceIdentity (clause 5.15.1): who this context source is.
async fn source_identity(
    State(st): State<AppState>,
    h: axum::http::HeaderMap,
) -> problem::ApiResult<Response> {
    let accept = req::accept(&h, false)?;
    let tenant = req::tenant(&h)?;
    // The alias names the tenant within this node, so peers can tell tenants apart.
    let short = st.node.id.rsplit(':').next().unwrap_or("dosi");
    let alias = if tenant.is_default() {
        short.to_string()
    } else {
        format!("{short}/{}", tenant.as_str())
    };
    let body = serde_json::json!({
        "id": st.node.id,
        "type": "ContextSourceIdentity",
        "contextSourceExtras": {"product": "dosi", "version": env!("CARGO_PKG_VERSION")},
        "contextSourceUptime": iso_duration(st.node.started.elapsed()),
        "contextSourceTimeAt": dosi_ngsi::Timestamp::now().to_iso(),
        "contextSourceAlias": alias,
    });
    Ok(req::reply(StatusCode::OK, body, accept, None))
}

/// An ISO 8601 duration such as `PT1H2M3.500S`.
fn iso_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("PT{h}H{m}M{s}.{:03}S", d.subsec_millis())
}

/// Liveness and readiness.
async fn health(State(st): State<AppState>) -> Response {
    let ready = st.ready.load(Ordering::Relaxed);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "status": if ready { "ok" } else { "starting" }, "live": true, "ready": ready });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Prometheus text exposition.
async fn metrics_text(State(st): State<AppState>) -> Response {
    let text = st.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

/// Request metrics, and problem details for the bare errors the framework
/// answers itself (405, 413, 411 without body, extractor rejections).
async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let tenant = req.headers().get("ngsild-tenant").cloned();
    let chunked_without_length = req.headers().get(header::CONTENT_LENGTH).is_none()
        && req
            .headers()
            .get(header::TRANSFER_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("chunked"));
    let resp = if chunked_without_length {
        StatusCode::LENGTH_REQUIRED.into_response()
    } else {
        next.run(req).await
    };
    let mut resp = resp;
    if let Some(t) = tenant {
        resp.headers_mut().insert("NGSILD-Tenant", t);
    }
    let status = resp.status();
    metrics::histogram!("dosi_http_request_duration_seconds", "method" => method.to_string())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("dosi_http_requests_total", "method" => method.to_string(), "status" => status.as_u16().to_string()).increment(1);
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/"));
    if status.is_client_error()
        && !is_json
        && status != StatusCode::LENGTH_REQUIRED
        && status != StatusCode::NOT_FOUND
    {
        let kind = match status {
            StatusCode::METHOD_NOT_ALLOWED => ErrorKind::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorKind::UnsupportedMediaType,
            _ => ErrorKind::BadRequestData,
        };
        let detail = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let mut r = ApiError(NgsiError::new(kind, detail)).into_response();
        if let Some(allow) = resp.headers().get(header::ALLOW) {
            r.headers_mut().insert(header::ALLOW, allow.clone());
        }
        *r.status_mut() = status;
        return r;
    }
    resp
}
