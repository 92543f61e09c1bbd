//! The authentication / authorization hook. Every NGSI-LD request passes
//! through [`Authorizer::authorize`] before its handler runs. Today dosi ships
//! [`AllowAll`]; API keys, OIDC bearer tokens and per-agency policies plug in
//! here without touching the handlers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dosi_ngsi::NgsiError;

use crate::problem::ApiError;

/// Decides whether a request may proceed.
pub trait Authorizer: Send + Sync + 'static {
    /// `Ok` lets the request through; an error is answered as a problem.
    fn authorize(&self, parts: &axum::http::request::Parts) -> Result<(), NgsiError>;
}

/// Lets every request through (the default until authentication lands).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _parts: &axum::http::request::Parts) -> Result<(), NgsiError> {
        Ok(())
    }
}

pub(crate) async fn layer(
    State(auth): State<Arc<dyn Authorizer>>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(e) = auth.authorize(&parts) {
        return ApiError(e).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
