//! The one place an error becomes an HTTP answer: status code from the
//! [`ErrorKind`] and an RFC 9457 problem-details body. Logged once here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_ngsi::{ErrorKind, NgsiError};
use serde_json::json;

/// An API error: wraps the domain error so handlers can use `?`.
#[derive(Debug)]
pub struct ApiError(pub NgsiError);

impl From<NgsiError> for ApiError {
    fn from(e: NgsiError) -> Self {
        Self(e)
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// The HTTP status of an error code.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::BadRequestData => StatusCode::BAD_REQUEST,
        ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::OperationNotSupported => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::ResourceNotFound | ErrorKind::NonexistentTenant => StatusCode::NOT_FOUND,
        ErrorKind::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::TooComplexQuery | ErrorKind::TooManyResults => StatusCode::FORBIDDEN,
        ErrorKind::LdContextNotAvailable => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::LengthRequired => StatusCode::LENGTH_REQUIRED,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
    }
}

/// The problem-details JSON of an error (also used inside batch answers).
pub fn body(e: &NgsiError) -> serde_json::Value {
    json!({
        "type": e.kind.type_uri(),
        "title": e.kind.title(),
        "status": status(e.kind).as_u16(),
        "detail": e.detail,
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let st = status(self.0.kind);
        if st.is_server_error() {
            tracing::error!(kind = ?self.0.kind, detail = %self.0.detail, "request failed");
        } else {
            tracing::debug!(kind = ?self.0.kind, detail = %self.0.detail, "request rejected");
        }
        metrics::counter!("dosi_api_errors_total", "kind" => self.0.kind.title()).increment(1);
        if self.0.kind == ErrorKind::LengthRequired {
            return st.into_response();
        }
        let bytes = serde_json::to_vec(&body(&self.0)).unwrap_or_default();
        let mut r = (st, bytes).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
}
