//! Reading a request's parameters: the query string, booleans as the APIs spell them, and
//! small JSON bodies.
//!
//! Invariants: nothing here answers a request; errors come back as messages or
//! [`Refusal`]s for the handler to shape.

use std::collections::HashMap;

use hyper::body::Incoming;
use hyper::Request;

use super::body;
use super::errors::Refusal;
use crate::server::shard::ShardCtx;

/// Largest JSON body a management request may have.
const MAX_JSON_BODY: usize = 1 << 20;

/// The query string's parameters (the last of a repeated name wins).
pub(crate) fn query_map(req: &Request<Incoming>) -> HashMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A boolean parameter: `true`/`1`, `false`/`0` (any case); absent or empty is `default`.
pub(crate) fn parse_bool(
    query: &HashMap<String, String>,
    name: &str,
    default: bool,
) -> Result<bool, String> {
    match query.get(name).map(|s| s.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) if v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" => Ok(false),
        Some(v) => Err(format!(
            "invalid value '{v}' for '{name}': use true or false"
        )),
    }
}

/// A JSON request body of at most 1 MiB (and `--max-http-request-size`).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    ctx: &ShardCtx,
    req: Request<Incoming>,
) -> Result<T, Refusal> {
    let limit = MAX_JSON_BODY.min(ctx.config.max_request_bytes);
    let (parts, mut incoming) = req.into_parts();
    let (text, _) = body::read(&parts.headers, &mut incoming, limit, Vec::new(), Vec::new)
        .await
        .map_err(|e| Refusal {
            status: e.status(),
            message: e.to_string(),
        })?;
    serde_json::from_str(&text).map_err(|e| {
        Refusal::bad(format!(
            "the request body is not a valid request object: {e}"
        ))
    })
}
