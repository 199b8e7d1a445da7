//! The authorization gate in front of every route: which endpoints are open, what the others
//! need, and the 400/401/403 answers.
//!
//! Invariants: with auth on, a request reaches its handler only with a [`Caller`] holding a
//! valid, unexpired token that grants what the path needs. Handlers that learn the database
//! from their parameters (the write endpoints, `/api/v3/query_sql`) check it themselves with
//! [`Caller::require`], so the parameters are parsed once. Answers never contain the
//! presented token.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::response::{v3_error, HttpResponse};
use super::write::WriteApi;
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
    pub fn allows(&self, need: Need<'_>) -> bool {
        match self {
            Caller::Unchecked => true,
            Caller::Token(t) => t.grants.allows(need),
        }
    }

    /// `Err` with the 403 answer when the token does not grant `need`.
    pub fn require(&self, need: Need<'_>) -> Result<(), Box<HttpResponse>> {
        self.require_in(None, need)
    }

    /// As [`Caller::require`], answering in a write API's error shape.
    pub(crate) fn require_in(
        &self,
        api: Option<WriteApi>,
        need: Need<'_>,
    ) -> Result<(), Box<HttpResponse>> {
        if self.allows(need) {
            Ok(())
        } else {
            Err(Box::new(forbidden(api, need)))
        }
    }
}

/// The write API a path belongs to, for answering in its error shape.
fn write_api(path: &str) -> Option<WriteApi> {
    match path {
        "/api/v3/write_lp" => Some(WriteApi::V3),
        "/api/v2/write" => Some(WriteApi::V2),
        "/write" => Some(WriteApi::V1),
        _ => None,
    }
}

/// Paths only an admin token may use (besides the open admin-token creation).
fn admin_path(path: &str) -> bool {
    path.starts_with("/api/v3/configure/")
        || path.starts_with("/api/v3/enterprise/configure/")
        || path.starts_with("/api/v3/debug/")
}

/// Lets the request through with its caller, or answers it.
pub fn gate(
    ctx: &ShardCtx,
    method: &Method,
    path: &str,
    req: &Request<Incoming>,
) -> Result<Caller, Box<HttpResponse>> {
    let policy = ctx.config.auth;
    if policy.disabled {
        return Ok(Caller::Unchecked);
    }
    let open = match path {
        // Creating the first admin token needs none (the handler refuses a second).
        "/api/v3/configure/token/admin" => *method == Method::POST,
        "/health" | "/api/v1/health" => policy.open_health,
        "/ping" => policy.open_ping,
        "/metrics" => policy.open_metrics,
        _ => false,
    };
    if open {
        return Ok(Caller::Unchecked);
    }
    let api = write_api(path);
    let v1_query = matches!(path, "/write" | "/query").then(|| req.uri().query().unwrap_or(""));
    let token = match credentials::presented(req.headers(), v1_query) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(Box::new(unauthorized(
                api,
                "missing credentials: send 'Authorization: Bearer <token>' (or Token / Basic)",
            )))
        }
        Err(e) => return Err(Box::new(error(api, StatusCode::BAD_REQUEST, e.to_string()))),
    };
    let entry = match ctx.catalog.tokens().find(&token, crate::now_ns()) {
        Ok(e) => e,
        Err(why) => return Err(Box::new(unauthorized(api, &why.to_string()))),
    };
    let caller = Caller::Token(entry);
    let need = match path {
        "/health" | "/api/v1/health" | "/ping" | "/metrics" => Need::System,
        // The write handlers check Write(db) once they have read their parameters, and the
        // query handler Read(db), since the database may be in the body.
        _ if api.is_some() => Need::Authenticated,
        "/api/v3/query_sql" => Need::Authenticated,
        p if admin_path(p) => Need::Admin,
        _ => Need::Authenticated,
    };
    if caller.allows(need) {
        Ok(caller)
    } else {
        Err(Box::new(forbidden(api, need)))
    }
}

fn error(api: Option<WriteApi>, status: StatusCode, message: impl Into<String>) -> HttpResponse {
    match api {
        Some(api) => api.error(status, message),
        None => v3_error(status, message),
    }
}

fn unauthorized(api: Option<WriteApi>, message: &str) -> HttpResponse {
    let mut r = error(api, StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer"),
    );
    r
}

fn forbidden(api: Option<WriteApi>, need: Need<'_>) -> HttpResponse {
    let what = match need {
        Need::Write(db) => format!("write to database '{db}'"),
        Need::Read(db) => format!("read database '{db}'"),
        Need::System => "read system information (health, ping, metrics)".to_string(),
        Need::Admin => "manage the server (an admin token is needed)".to_string(),
        Need::Authenticated => "make this request".to_string(),
    };
    error(
        api,
        StatusCode::FORBIDDEN,
        format!("the token does not grant permission to {what}"),
    )
}
