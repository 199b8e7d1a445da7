//! The authorization gate in front of every route: what each endpoint needs (from the route
//! table), and the 400/401/403 answers in the endpoint's error shape.
//!
//! Invariants: with auth on, a request reaches its handler only with a [`Caller`] holding a
//! valid, unexpired token that grants what the path needs. Handlers that learn the database
//! from their parameters (the write endpoints, `/api/v3/query_sql`) check it themselves with
//! [`Caller::require`], so the parameters are parsed once. Answers never contain the
//! presented token.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::errors::ErrorShape;
use super::response::HttpResponse;
use super::routes::{Access, Route};
use crate::auth::{credentials, Need, TokenEntry};
use crate::server::shard::ShardCtx;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// `--without-auth`, or an endpoint `--disable-authz` opened.
    Unchecked,
    Token(Arc<TokenEntry>),
}

impl Caller {
    /// The caller's token (`None`: authorization is off for this request).
    pub fn token(&self) -> Option<Arc<TokenEntry>> {
        match self {
            Caller::Unchecked => None,
            Caller::Token(t) => Some(t.clone()),
        }
    }

    pub fn allows(&self, need: Need<'_>) -> bool {
        match self {
            Caller::Unchecked => true,
            Caller::Token(t) => t.grants.allows(need),
        }
    }

    /// `Err` with the 403 answer (in the v3 error shape) when the token does not grant
    /// `need`.
    pub fn require(&self, need: Need<'_>) -> Result<(), Box<HttpResponse>> {
        self.require_in(ErrorShape::V3, need)
    }

    /// As [`Caller::require`], answering in `shape`.
    pub(crate) fn require_in(
        &self,
        shape: ErrorShape,
        need: Need<'_>,
    ) -> Result<(), Box<HttpResponse>> {
        if self.allows(need) {
            Ok(())
        } else {
            Err(Box::new(forbidden(shape, need)))
        }
    }
}

/// Lets the request through with its caller, or answers it (in the route's error shape).
/// `route` is `None` for a path no endpoint serves: it still needs a valid token, so the 404
/// tells nothing to a caller without one.
pub fn gate(
    ctx: &ShardCtx,
    route: Option<Route>,
    req: &Request<Incoming>,
) -> Result<Caller, Box<HttpResponse>> {
    let policy = ctx.config.auth;
    if policy.disabled {
        return Ok(Caller::Unchecked);
    }
    let spec = route.map(Route::spec);
    let shape = spec.map_or(ErrorShape::V3, |s| s.errors);
    let open = match spec.map(|s| s.access) {
        Some(Access::Open) => true,
        Some(Access::System(name)) => policy.opens(name),
        _ => false,
    };
    if open {
        return Ok(Caller::Unchecked);
    }
    let v1_query = spec
        .is_some_and(|s| s.token_in_query)
        .then(|| req.uri().query().unwrap_or(""));
    let token = match credentials::presented(req.headers(), v1_query) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(Box::new(unauthorized(
                shape,
                "missing credentials: send 'Authorization: Bearer <token>' (or Token / Basic)",
            )))
        }
        Err(e) => {
            return Err(Box::new(
                shape.error(StatusCode::BAD_REQUEST, e.to_string()),
            ))
        }
    };
    let entry = match ctx.catalog.tokens().find(&token, crate::now_ns()) {
        Ok(e) => e,
        Err(why) => return Err(Box::new(unauthorized(shape, &why.to_string()))),
    };
    let caller = Caller::Token(entry);
    let need = match spec.map(|s| s.access) {
        Some(Access::System(_)) => Need::System,
        Some(Access::Admin) => Need::Admin,
        Some(Access::Open | Access::Database) | None => Need::Authenticated,
    };
    if caller.allows(need) {
        Ok(caller)
    } else {
        Err(Box::new(forbidden(shape, need)))
    }
}

fn unauthorized(shape: ErrorShape, message: &str) -> HttpResponse {
    let mut r = shape.error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer"),
    );
    r
}

fn forbidden(shape: ErrorShape, need: Need<'_>) -> HttpResponse {
    let what = match need {
        Need::Write(db) => format!("write to database '{db}'"),
        Need::Read(db) => format!("read database '{db}'"),
        Need::System => "read system information (health, ping, metrics)".to_string(),
        Need::Admin => "manage the server (an admin token is needed)".to_string(),
        Need::Authenticated => "make this request".to_string(),
    };
    shape.error(
        StatusCode::FORBIDDEN,
        format!("the token does not grant permission to {what}"),
    )
}
