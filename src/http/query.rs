//! `GET/POST /api/v3/query_sql` and `/api/v3/query_influxql`: reads the query's parameters
//! (the same for both languages) and hands it to the query
//! engine, which answers a small cache lookup at once (a whole body) and anything else
//! through the coordinator, streamed back with chunked transfer encoding.
//!
//! GET takes `db`, `q`, `format`, `params` (a JSON object) from the query string. POST takes
//! a JSON body `{db|database, q|query_str, format, params}`; query-string values fill what
//! the body leaves out. `format` wins over `Accept`; without either the result is JSON.

use futures::StreamExt;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::body;
use super::response::{v3_error, HttpResponse};
use crate::query::{Format, Language, QueryEvent, QueryRequest, Submitted};
use crate::server::shard::ShardCtx;

/// Largest POST body a query may have.
const MAX_QUERY_BODY: usize = 1 << 20;

#[derive(Debug, Default, serde::Deserialize)]
struct QueryBody {
    db: Option<String>,
    database: Option<String>,
    q: Option<String>,
    query_str: Option<String>,
    format: Option<String>,
    params: Option<serde_json::Map<String, serde_json::Value>>,
}

pub async fn handle(
    ctx: &ShardCtx,
    req: Request<Incoming>,
    caller: &super::auth::Caller,
    language: Language,
) -> HttpResponse {
    let query = super::params::query_map(&req);
    let accept = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut params = QueryBody::default();
    if req.method() == Method::POST {
        let limit = MAX_QUERY_BODY.min(ctx.config.max_request_bytes);
        let (parts, mut incoming) = req.into_parts();
        let text =
            match body::read(&parts.headers, &mut incoming, limit, Vec::new(), Vec::new).await {
                Ok((text, _)) => text,
                Err(e) => return v3_error(e.status(), e.to_string()),
            };
        if !text.trim().is_empty() {
            params = match serde_json::from_str(&text) {
                Ok(p) => p,
                Err(e) => {
                    return v3_error(
                        StatusCode::BAD_REQUEST,
                        format!("the request body is not a valid query object: {e}"),
                    )
                }
            };
        }
    }
    let from_query = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
    let database = params
        .db
        .or(params.database)
        .or_else(|| from_query("db"))
        .or_else(|| from_query("database"));
    let Some(database) = database.filter(|d| !d.is_empty()) else {
        return v3_error(StatusCode::BAD_REQUEST, "missing required parameter 'db'");
    };
    if let Err(refused) = caller.require(crate::auth::Need::Read(&database)) {
        return *refused;
    }
    let sql = params
        .q
        .or(params.query_str)
        .or_else(|| from_query("q"))
        .or_else(|| from_query("query_str"));
    let Some(sql) = sql.filter(|q| !q.trim().is_empty()) else {
        return v3_error(StatusCode::BAD_REQUEST, "missing required parameter 'q'");
    };
    let format = match params.format.or_else(|| from_query("format")) {
        Some(f) => match Format::from_name(&f) {
            Some(f) => f,
            None => {
                return v3_error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown format '{f}': use json, jsonl, csv, parquet or pretty"),
                )
            }
        },
        None => accept
            .as_deref()
            .and_then(Format::from_accept)
            .unwrap_or(Format::Json),
    };
    let query_params = match params.params {
        Some(p) => Some(p),
        None => match from_query("params") {
            None => None,
            Some(text) => match serde_json::from_str(&text) {
                Ok(p) => Some(p),
                Err(e) => {
                    return v3_error(
                        StatusCode::BAD_REQUEST,
                        format!("'params' must be a JSON object: {e}"),
                    )
                }
            },
        },
    };
    let (tx, rx) = flume::bounded(4);
    let request = QueryRequest {
        database,
        language,
        sql,
        params: query_params,
        format,
        token: caller.token(),
        reply: tx,
        answered: None,
    };
    match ctx.queries.submit(request, ctx).await {
        Submitted::Sent => {}
        Submitted::Answered { content_type, body } => {
            return Response::builder()
                .status(StatusCode::OK)
                .header(hyper::header::CONTENT_TYPE, content_type)
                .body(Either::Left(Full::new(body)))
                .expect("static response parts are valid");
        }
        Submitted::Failed { status, message } => {
            return v3_error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                message,
            )
        }
        Submitted::Stopped => {
            return v3_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the query engine has stopped",
            )
        }
    }
    match rx.recv_async().await {
        Ok(QueryEvent::Start { content_type }) => stream_response(content_type, rx),
        Ok(QueryEvent::Failed { status, message }) => v3_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        ),
        Ok(other) => v3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the query engine answered out of order: {other:?}"),
        ),
        Err(_) => v3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the query engine dropped the query",
        ),
    }
}

/// A 200 response whose body is the coordinator's chunks. A stream that ends without
/// `Done` becomes a body error, so hyper breaks the connection instead of ending the
/// chunked body cleanly: a client never takes a cut-short result for a whole one.
pub(super) fn stream_response(
    content_type: &'static str,
    rx: flume::Receiver<QueryEvent>,
) -> HttpResponse {
    let frames = futures::stream::unfold(Some(rx), |rx| async move {
        let rx = rx?;
        let item = match rx.recv_async().await {
            Ok(QueryEvent::Chunk(b)) => Ok(Frame::data(b)),
            Ok(QueryEvent::Done) => return None,
            Ok(QueryEvent::Abort(msg)) => Err(std::io::Error::other(msg)),
            Ok(other) => Err(std::io::Error::other(format!("unexpected {other:?}"))),
            Err(_) => Err(std::io::Error::other("the query engine stopped mid-result")),
        };
        let next = item.is_ok().then_some(rx);
        Some((item, next))
    });
    let body = StreamBody::new(frames.boxed());
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Either::Right(body))
        .expect("static response parts are valid")
}
