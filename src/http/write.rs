//! The three write endpoints: `/api/v3/write_lp`, `/api/v2/write` and v1 `/write`.
//!
//! They share one pipeline (read body → plan → dispatch) and differ in their parameters and
//! error shapes: v3 answers `{"error", "data": [...]}` and may write partially; v1/v2 never
//! write partially and answer `{"code", "message", ...}` with the first bad line.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use shardline_shards::ingest::BatchHeader;
use shardline_shards::precision::Precision;
use shardline_shards::rows::ParsedRows;

use super::auth::Caller;
use super::body::{self, BodyError};
use super::errors::ErrorShape;
use super::params::{parse_bool, query_map};
use super::response::{empty, json, HttpResponse};
use crate::auth::Need;
use crate::metrics::WriteCounts;
use crate::server::shard::ShardCtx;
use crate::write::{self, Rejection, WritePlan};

/// Which write API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteApi {
    V3,
    V2,
    V1,
}

/// A write request's parameters, checked.
#[derive(Debug)]
pub(crate) struct WriteParams {
    pub(crate) database: String,
    precision: Precision,
    accept_partial: bool,
    durable: bool,
}

impl WriteApi {
    pub(crate) fn error(self, status: StatusCode, message: impl Into<String>) -> HttpResponse {
        self.shape().error(status, message)
    }

    /// The error shape of its API.
    pub(crate) fn shape(self) -> ErrorShape {
        match self {
            WriteApi::V3 => ErrorShape::V3,
            WriteApi::V1 | WriteApi::V2 => ErrorShape::Compat,
        }
    }

    pub(crate) fn params(self, query: &HashMap<String, String>) -> Result<WriteParams, String> {
        let database = match self {
            WriteApi::V2 => query.get("bucket").or_else(|| query.get("db")),
            WriteApi::V3 | WriteApi::V1 => query.get("db"),
        };
        let database = match database {
            // 1.x's `rp`: a policy other than the database's own is database `db/rp`.
            Some(d) if !d.is_empty() && self == WriteApi::V1 => {
                crate::catalog::v1_database(d, query.get("rp").map(String::as_str))
            }
            Some(d) if !d.is_empty() => d.clone(),
            _ => {
                return Err(match self {
                    WriteApi::V2 => "missing required query parameter 'bucket' (or 'db')".into(),
                    _ => "missing required query parameter 'db'".into(),
                })
            }
        };
        crate::catalog::validate_database_name(&database).map_err(|e| e.to_string())?;
        let precision = match query.get("precision").map(String::as_str) {
            None | Some("") => match self {
                WriteApi::V3 => Precision::Auto,
                _ => Precision::Nanosecond,
            },
            Some(p) => parse_precision(self, p)?,
        };
        let accept_partial = match self {
            WriteApi::V3 => parse_bool(query, "accept_partial", true)?,
            WriteApi::V1 | WriteApi::V2 => false,
        };
        let durable = match self {
            WriteApi::V3 => !parse_bool(query, "no_sync", false)?,
            WriteApi::V1 | WriteApi::V2 => true,
        };
        Ok(WriteParams {
            database,
            precision,
            accept_partial,
            durable,
        })
    }
}

fn parse_precision(api: WriteApi, p: &str) -> Result<Precision, String> {
    let v = match (api, p) {
        (WriteApi::V3, "auto") => Precision::Auto,
        (WriteApi::V3, "nanosecond") | (_, "ns") => Precision::Nanosecond,
        (WriteApi::V3, "microsecond") | (_, "us") => Precision::Microsecond,
        (WriteApi::V3, "millisecond") | (_, "ms") => Precision::Millisecond,
        (WriteApi::V3, "second") | (_, "s") => Precision::Second,
        (WriteApi::V1, "n") => Precision::Nanosecond,
        (WriteApi::V1, "u" | "µ") => Precision::Microsecond,
        (WriteApi::V1, "m") => Precision::Minute,
        (WriteApi::V1, "h") => Precision::Hour,
        _ => {
            let allowed = match api {
                WriteApi::V3 => "auto, nanosecond, microsecond, millisecond, second",
                WriteApi::V2 => "ns, us, ms, s",
                WriteApi::V1 => "n, ns, u, µ, us, ms, s, m, h",
            };
            return Err(format!("invalid precision '{p}'; use one of: {allowed}"));
        }
    };
    Ok(v)
}

/// Serves one write request.
pub async fn handle(
    ctx: &Rc<ShardCtx>,
    api: WriteApi,
    req: Request<Incoming>,
    caller: &Caller,
) -> HttpResponse {
    let query = query_map(&req);
    let params = match api.params(&query) {
        Ok(p) => p,
        Err(msg) => return api.error(StatusCode::BAD_REQUEST, msg),
    };
    if let Err(refused) = caller.require_in(api.shape(), Need::Write(&params.database)) {
        return *refused;
    }
    let (parts, mut incoming) = req.into_parts();
    let limit = ctx.config.max_request_bytes;
    let read = body::read(
        &parts.headers,
        &mut incoming,
        limit,
        ctx.take_buffer(),
        || ctx.take_buffer(),
    )
    .await;
    let body = match read {
        Ok((body, compressed)) => {
            if let Some(b) = compressed {
                ctx.give_buffer(b);
            }
            body
        }
        Err(e) => return body_error(api, &e, limit),
    };
    // A task of its own, detached: the write runs to its end even if the client hangs up
    // (and hyper drops this future) meanwhile. Once a batch is in the WAL, the buffer gets
    // all of it, never part. Its output is `None` only if the executor cancelled the task,
    // which it does only when it shuts down.
    let shard = Rc::clone(ctx);
    let write = glommio::spawn_local(async move {
        let mut rows = shard.take_rows();
        let response = write_body(&shard, api, &params, &body, &mut rows).await;
        shard.give_rows(rows);
        if let Ok(text) = Arc::try_unwrap(body) {
            shard.give_buffer(text.into_bytes());
        }
        response
    });
    write.detach().await.unwrap_or_else(|| {
        api.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down; the write may not have been applied",
        )
    })
}

/// Plans and writes a body that was read whole.
async fn write_body<'a>(
    ctx: &ShardCtx,
    api: WriteApi,
    params: &WriteParams,
    body: &'a Arc<String>,
    rows: &mut ParsedRows<'a>,
) -> HttpResponse {
    let default_time_ns = crate::now_ns();
    let local = write::LocalShard {
        id: ctx.id,
        default_time_ns,
        rows,
    };
    let planned = write::plan(
        &ctx.catalog,
        body,
        &params.database,
        params.precision,
        ctx.config.shards,
        local,
    )
    .await;
    let mut plan = match planned {
        Ok(p) => p,
        Err(write::PlanError::Catalog(e)) => {
            let status = super::errors::catalog_status(&e);
            if status.is_server_error() {
                tracing::error!(error = %e, "catalog update failed");
            }
            return api.error(status, e.to_string());
        }
    };
    let database_id = (plan.database_id != u32::MAX).then_some(plan.database_id);
    if plan.rejected_total > 0 && !params.accept_partial {
        ctx.metrics.record_write(
            database_id,
            WriteCounts {
                rejected: plan.rejected_total as u64,
                ..WriteCounts::default()
            },
        );
        return rejected_response(api, &plan, false, false);
    }
    if plan.accepted > 0 {
        let header = BatchHeader {
            database_id: plan.database_id,
            precision: params.precision,
            default_time_ns,
        };
        let per_owner = std::mem::take(&mut plan.per_owner);
        if let Err(e) = ctx
            .dispatch(per_owner, body.clone(), header, params.durable, rows)
            .await
        {
            tracing::error!(error = %e, "write failed");
            if e.unavailable {
                let mut r = api.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("write failed: {e}"),
                );
                r.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from_static("1"),
                );
                return r;
            }
            return api.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("write failed: {e}"),
            );
        }
    }
    ctx.metrics.record_write(
        database_id,
        WriteCounts {
            lines: plan.accepted as u64,
            bytes: plan.accepted_bytes as u64,
            rejected: plan.rejected_total as u64,
        },
    );
    if plan.rejected_total > 0 {
        return rejected_response(api, &plan, plan.accepted > 0, true);
    }
    empty(StatusCode::NO_CONTENT)
}

/// `written`: whether some lines were written; `list_all`: report every rejected line (up to
/// the limit) rather than only the first, as `accept_partial=true` does.
fn rejected_response(
    api: WriteApi,
    plan: &WritePlan,
    written: bool,
    list_all: bool,
) -> HttpResponse {
    match api {
        WriteApi::V3 => {
            let error = if written {
                "partial write of line protocol occurred"
            } else {
                "write of line protocol failed"
            };
            let data: &[Rejection] = if list_all {
                &plan.rejected
            } else {
                &plan.rejected[..1]
            };
            json(
                StatusCode::BAD_REQUEST,
                &json!({ "error": error, "data": data }),
            )
        }
        WriteApi::V1 | WriteApi::V2 => {
            let first = plan.first_rejection().expect("called with rejections");
            let message = format!(
                "failed to parse line protocol: line {}: {} (no points were written; {} line(s) rejected)",
                first.line_number, first.error_message, plan.rejected_total
            );
            json(
                StatusCode::BAD_REQUEST,
                &json!({
                    "code": "invalid",
                    "message": message,
                    "op": "writing line protocol",
                    "err": first.error_message,
                    "line": first.line_number,
                }),
            )
        }
    }
}

fn body_error(api: WriteApi, e: &BodyError, limit: usize) -> HttpResponse {
    if e.is_too_large() {
        // The v1 document's LineProtocolLengthError; v3 gets its "error" field as well.
        let mut v = json!({ "code": "invalid", "message": e.to_string(), "maxLength": limit });
        if api == WriteApi::V3 {
            v["error"] = json!(e.to_string());
        }
        return json(StatusCode::PAYLOAD_TOO_LARGE, &v);
    }
    api.error(e.status(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parameters_per_api() {
        let p = WriteApi::V3.params(&q(&[("db", "x")])).unwrap();
        assert_eq!(
            (p.precision, p.accept_partial, p.durable),
            (Precision::Auto, true, true)
        );
        let p = WriteApi::V3
            .params(&q(&[
                ("db", "x"),
                ("accept_partial", "false"),
                ("no_sync", "true"),
                ("precision", "second"),
            ]))
            .unwrap();
        assert_eq!(
            (p.precision, p.accept_partial, p.durable),
            (Precision::Second, false, false)
        );
        let p = WriteApi::V2
            .params(&q(&[
                ("bucket", "b"),
                ("org", "ignored"),
                ("precision", "ms"),
            ]))
            .unwrap();
        assert_eq!(
            (p.database.as_str(), p.precision, p.accept_partial),
            ("b", Precision::Millisecond, false)
        );
        let p = WriteApi::V1
            .params(&q(&[
                ("db", "d"),
                ("rp", ""),
                ("precision", "h"),
                ("consistency", "any"),
            ]))
            .unwrap();
        assert_eq!(p.precision, Precision::Hour);
        assert_eq!(p.database, "d");
        for (rp, db) in [("autogen", "d"), ("default", "d"), ("week", "d/week")] {
            let p = WriteApi::V1.params(&q(&[("db", "d"), ("rp", rp)])).unwrap();
            assert_eq!(p.database, db, "rp={rp}");
        }
        // v2 and v3 have no retention policies.
        let p = WriteApi::V3
            .params(&q(&[("db", "d"), ("rp", "week")]))
            .unwrap();
        assert_eq!(p.database, "d");
        assert!(WriteApi::V2
            .params(&q(&[("bucket", "b"), ("precision", "h")]))
            .is_err());
        assert!(WriteApi::V3
            .params(&q(&[("db", "x"), ("precision", "ns")]))
            .is_ok());
        assert!(WriteApi::V3
            .params(&q(&[("db", "x"), ("precision", "fortnight")]))
            .is_err());
        assert!(WriteApi::V3.params(&q(&[])).is_err());
        assert!(WriteApi::V3.params(&q(&[("db", "bad name")])).is_err());
        assert!(WriteApi::V3
            .params(&q(&[("db", "x"), ("no_sync", "maybe")]))
            .is_err());
    }
}
