//! How the HTTP API answers what went wrong: the two error shapes (v3 `{"error"}`, v1/v2
//! `{"code", "message"}`), a refusal carried up from a handler's helpers, and the status
//! each catalog error calls for.
//!
//! Invariants: the status says who must act — 4xx the caller, 422/503 a limit or resource
//! (the message names it), 500 us (the message says it is a bug) — and every handler maps a
//! catalog error through [`catalog_status`], so the same error answers the same everywhere.

use hyper::StatusCode;

use super::response::{compat_error, v3_error, HttpResponse};
use crate::catalog::CatalogError;

/// The error body an endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error": "..."}`: the v3 API.
    V3,
    /// `{"code": "...", "message": "..."}`: the v1 and v2 compatibility APIs.
    Compat,
}

impl ErrorShape {
    pub fn error(self, status: StatusCode, message: impl Into<String>) -> HttpResponse {
        match self {
            ErrorShape::V3 => v3_error(status, message),
            ErrorShape::Compat => compat_error(status, message),
        }
    }
}

/// A request refused before it reaches the catalog, or by it.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<CatalogError> for Refusal {
    fn from(e: CatalogError) -> Self {
        Refusal {
            status: catalog_status(&e),
            message: e.to_string(),
        }
    }
}

/// The answer, or the refusal in the v3 shape.
pub(crate) fn respond(result: Result<HttpResponse, Refusal>) -> HttpResponse {
    result.unwrap_or_else(|r| v3_error(r.status, r.message))
}

/// The status a catalog error calls for.
pub(crate) fn catalog_status(e: &CatalogError) -> StatusCode {
    match e {
        CatalogError::DatabaseNotFound(_)
        | CatalogError::TableNotFound { .. }
        | CatalogError::CacheNotFound { .. }
        | CatalogError::TokenNotFound(_)
        | CatalogError::NoAdminToken => StatusCode::NOT_FOUND,
        CatalogError::DatabaseExists(_)
        | CatalogError::TableExists { .. }
        | CatalogError::CacheExists { .. }
        | CatalogError::TokenExists(_)
        | CatalogError::AdminTokenExists => StatusCode::CONFLICT,
        CatalogError::InvalidDatabaseName { .. }
        | CatalogError::InvalidTableName { .. }
        | CatalogError::InvalidColumn { .. }
        | CatalogError::InvalidCache { .. }
        | CatalogError::InvalidToken(_) => StatusCode::BAD_REQUEST,
        CatalogError::LimitReached { .. } | CatalogError::ChangeTooLarge { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        CatalogError::Read { .. }
        | CatalogError::Corrupt { .. }
        | CatalogError::Persist { .. }
        | CatalogError::WriterGone
        | CatalogError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
