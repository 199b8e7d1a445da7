//! `GET/POST /query`, InfluxDB 1.x's query endpoint: reads the request as 1.x does, parses
//! and authorizes its statements here on the shard, and hands them to the coordinator
//! ([`crate::query::v1`]), whose answer streams back.
//!
//! Parameters (`q`, `db`, `rp`, `epoch`, `chunked`, `chunk_size`, `pretty`, `params`) come from the
//! URL and, for POST, from an `application/x-www-form-urlencoded` or `multipart/form-data`
//! body, the body's values first (as Go's `FormValue` reads them). Errors that refuse the
//! whole request are `{"error": "..."}` in the `Accept`ed encoding: 400 for a missing `q`, a
//! parse error or bad parameters, 403 for a statement the token may not run.

use std::collections::HashMap;

use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use shardline_influxql::ast::{Show, Statement};

use super::auth::Caller;
use super::body;
use super::response::HttpResponse;
use crate::auth::Need;
use crate::query::v1::{self, Epoch, V1Format, V1Request};
use crate::query::{QueryEvent, Submitted};
use crate::server::shard::ShardCtx;

/// Largest POST body a query may have.
const MAX_QUERY_BODY: usize = 1 << 20;

pub async fn handle(ctx: &ShardCtx, req: Request<Incoming>, caller: &Caller) -> HttpResponse {
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let format = V1Format::from_accept(header(hyper::header::ACCEPT).as_deref());
    let content_type = header(hyper::header::CONTENT_TYPE).unwrap_or_default();
    let mut params = super::params::query_map(&req);
    if req.method() == Method::POST {
        let limit = MAX_QUERY_BODY.min(ctx.config.max_request_bytes);
        let (parts, mut incoming) = req.into_parts();
        let text =
            match body::read(&parts.headers, &mut incoming, limit, Vec::new(), Vec::new).await {
                Ok((text, _)) => text,
                Err(e) => return error(format, e.status(), &e.to_string()),
            };
        let from_body = match form_fields(&content_type, &text) {
            Ok(f) => f,
            Err(message) => return error(format, StatusCode::BAD_REQUEST, &message),
        };
        for (k, v) in from_body {
            params.insert(k, v);
        }
    }
    let param = |k: &str| params.get(k).map(String::as_str);
    let Some(q) = param("q").filter(|q| !q.trim().is_empty()) else {
        return error(
            format,
            StatusCode::BAD_REQUEST,
            "missing required parameter \"q\"",
        );
    };
    let mut statements = match shardline_influxql::parse(q.trim()) {
        Ok(s) => s,
        Err(e) => {
            return error(
                format,
                StatusCode::BAD_REQUEST,
                &format!("error parsing query: {e}"),
            )
        }
    };
    if let Some(text) = param("params").filter(|p| !p.is_empty()) {
        let bound = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
            .map_err(|e| format!("error parsing query parameters: {e}"))
            .and_then(|p| crate::query::influxql::bound_values(Some(&p)).map_err(|e| e.to_string()))
            .and_then(|values| {
                statements.iter_mut().try_for_each(|s| {
                    shardline_influxql::params::bind(s, &values)
                        .map_err(|e| format!("error parsing query: {e}"))
                })
            });
        if let Err(message) = bound {
            return error(format, StatusCode::BAD_REQUEST, &message);
        }
    }
    let database = param("db").filter(|d| !d.is_empty()).map(str::to_string);
    let policy = param("rp").filter(|p| !p.is_empty()).map(str::to_string);
    for stmt in &statements {
        if let Err(message) = authorize(caller, stmt, database.as_deref(), policy.as_deref()) {
            return error(
                format,
                StatusCode::FORBIDDEN,
                &format!("error authorizing query: {message}"),
            );
        }
    }
    let chunked = matches!(param("chunked"), Some("true" | "1"));
    let chunk_size = match param("chunk_size").filter(|s| !s.is_empty()) {
        None => v1::DEFAULT_CHUNK_SIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(0) => v1::DEFAULT_CHUNK_SIZE,
            Ok(n) => n,
            Err(_) => {
                return error(
                    format,
                    StatusCode::BAD_REQUEST,
                    &format!("chunk_size must be a whole number, not '{s}'"),
                )
            }
        },
    };
    let (tx, rx) = flume::bounded(4);
    let request = V1Request {
        database,
        policy,
        text: q.to_string(),
        statements,
        epoch: Epoch::from_param(param("epoch")),
        chunk_size: chunked.then_some(chunk_size),
        pretty: matches!(param("pretty"), Some("true" | "1")),
        format,
        token: caller.token(),
        reply: tx,
    };
    match ctx.queries.submit_v1(request).await {
        Submitted::Sent => {}
        _ => {
            return error(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "the query engine has stopped",
            )
        }
    }
    match rx.recv_async().await {
        Ok(QueryEvent::Start { content_type }) => super::query::stream_response(content_type, rx),
        Ok(QueryEvent::Failed { status, message }) => error(
            format,
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &message,
        ),
        Ok(other) => error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the query engine answered out of order (this is a bug): {other:?}"),
        ),
        Err(_) => error(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            "the query engine dropped the query (it is stopping)",
        ),
    }
}

/// What a statement needs of the token: reading its database, writing it (which is enough to
/// create it, as Telegraf does at start), or an admin token for everything else.
fn authorize(
    caller: &Caller,
    stmt: &Statement,
    default_db: Option<&str>,
    default_rp: Option<&str>,
) -> Result<(), String> {
    let target = v1::target_database(stmt, default_db, default_rp);
    let db = target.as_deref();
    let (allowed, needs) = match stmt {
        Statement::Show(Show::Databases) => (caller.allows(Need::Authenticated), String::new()),
        // Other queries' texts name other databases: an admin's.
        Statement::Show(Show::Queries) => (caller.allows(Need::Admin), "an admin token".into()),
        s if v1::reads_only(s) => match db {
            Some(db) => (caller.allows(Need::Read(db)), format!("READ on {db}")),
            // Fails as "database name required" when it runs.
            None => (true, String::new()),
        },
        Statement::CreateDatabase { name, .. } => (
            caller.allows(Need::Write(name)) || caller.allows(Need::Admin),
            format!("WRITE on {name}"),
        ),
        _ => (caller.allows(Need::Admin), "an admin token".to_string()),
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "the token may not run '{stmt}': it requires {needs}"
        ))
    }
}

/// The fields of a form body (`application/x-www-form-urlencoded` or `multipart/form-data`);
/// any other body carries no parameters.
fn form_fields(content_type: &str, body: &str) -> Result<HashMap<String, String>, String> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => Ok(form_urlencoded::parse(body.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()),
        "multipart/form-data" => super::multipart::fields(content_type, body),
        _ => Ok(HashMap::new()),
    }
}

fn error(format: V1Format, status: StatusCode, message: &str) -> HttpResponse {
    let mut r = Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, format.content_type());
    if let Ok(v) = hyper::header::HeaderValue::from_str(message) {
        r = r.header("X-Influxdb-Error", v);
    }
    r.body(Either::Left(Full::new(bytes::Bytes::from(
        format.error_body(message),
    ))))
    .expect("static response parts are valid")
}
