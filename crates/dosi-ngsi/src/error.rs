//! The closed catalogue of error codes. It mirrors the NGSI-LD problem types
//! (ETSI GS CIM 009 clause 5.5.2) plus the few HTTP-level failures the API can
//! answer. Exactly one place (`dosi-api`'s problem module) maps a code to an
//! HTTP status and an RFC 9457 body.

use std::fmt;

/// What kind of failure happened; the stable, client-visible code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is syntactically wrong (bad JSON, bad parameters).
    InvalidRequest,
    /// The request is well formed but its data are not acceptable.
    BadRequestData,
    /// The entity, subscription or context already exists.
    AlreadyExists,
    /// The operation is not supported (e.g. on this kind of resource).
    OperationNotSupported,
    /// The addressed resource does not exist.
    ResourceNotFound,
    /// Something failed inside dosi.
    InternalError,
    /// The query is too complex to be answered.
    TooComplexQuery,
    /// The query would return too many results.
    TooManyResults,
    /// A JSON-LD @context could not be retrieved or processed.
    LdContextNotAvailable,
    /// The tenant addressed by `NGSILD-Tenant` does not exist.
    NonexistentTenant,
    /// The `Accept` header names no media type dosi can produce.
    NotAcceptable,
    /// The `Content-Type` is not one dosi accepts for this operation.
    UnsupportedMediaType,
    /// The request needs a `Content-Length`.
    LengthRequired,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// The HTTP method is not allowed on this path.
    MethodNotAllowed,
    /// The operation conflicts with the resource's current state.
    Conflict,
    /// No or wrong credentials (HTTP 401; no NGSI-LD problem type: `about:blank`).
    Unauthorized,
    /// Authenticated, but not allowed (HTTP 403; `about:blank`).
    Forbidden,
}

impl ErrorKind {
    /// The problem `type` URI for this code.
    pub fn type_uri(self) -> &'static str {
        match self {
            Self::InvalidRequest => "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest",
            Self::BadRequestData => "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
            Self::AlreadyExists => "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists",
            Self::OperationNotSupported => {
                "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported"
            }
            Self::ResourceNotFound => "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound",
            Self::InternalError => "https://uri.etsi.org/ngsi-ld/errors/InternalError",
            Self::TooComplexQuery => "https://uri.etsi.org/ngsi-ld/errors/TooComplexQuery",
            Self::TooManyResults => "https://uri.etsi.org/ngsi-ld/errors/TooManyResults",
            Self::LdContextNotAvailable => {
                "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"
            }
            Self::NonexistentTenant => "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant",
            Self::NotAcceptable => "https://uri.etsi.org/ngsi-ld/errors/NotAcceptable",
            Self::UnsupportedMediaType => {
                "https://uri.etsi.org/ngsi-ld/errors/UnsupportedMediaType"
            }
            Self::LengthRequired => "https://uri.etsi.org/ngsi-ld/errors/LengthRequired",
            Self::PayloadTooLarge => "https://uri.etsi.org/ngsi-ld/errors/PayloadTooLarge",
            Self::MethodNotAllowed => "https://uri.etsi.org/ngsi-ld/errors/MethodNotAllowed",
            Self::Conflict => "https://uri.etsi.org/ngsi-ld/errors/Conflict",
            Self::Unauthorized | Self::Forbidden => "about:blank",
        }
    }

    /// A short human title for the problem body.
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "Invalid request",
            Self::BadRequestData => "Bad request data",
            Self::AlreadyExists => "Already exists",
            Self::OperationNotSupported => "Operation not supported",
            Self::ResourceNotFound => "Resource not found",
            Self::InternalError => "Internal error",
            Self::TooComplexQuery => "Too complex query",
            Self::TooManyResults => "Too many results",
            Self::LdContextNotAvailable => "JSON-LD context not available",
            Self::NonexistentTenant => "Nonexistent tenant",
            Self::NotAcceptable => "Not acceptable",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::LengthRequired => "Length required",
            Self::PayloadTooLarge => "Payload too large",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
        }
    }
}

/// An error with its code and a precise, human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct NgsiError {
    /// The stable code.
    pub kind: ErrorKind,
    /// What exactly was wrong, naming the offending id, parameter or value.
    pub detail: String,
}

impl NgsiError {
    /// Builds an error of `kind` with `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
    /// `InvalidRequest` with `detail`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, detail)
    }
    /// `BadRequestData` with `detail`.
    pub fn bad_data(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequestData, detail)
    }
    /// `ResourceNotFound` with `detail`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFound, detail)
    }
    /// `InternalError` with `detail`.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::new(ErrorKind::InternalError, detail.to_string())
    }
}

/// Result with [`NgsiError`].
pub type Result<T, E = NgsiError> = std::result::Result<T, E>;
