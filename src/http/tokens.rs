//! The token endpoints: the admin token (create once, regenerate), named admin tokens,
//! resource tokens, listing and deleting.
//!
//! Invariant: a token's text appears in exactly one response, the one that created it; it is
//! hashed before it reaches the catalog and is never logged. With `--without-auth` every
//! token route answers 405.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::errors::{respond, Refusal};
use super::params::{query_map, read_json};
use super::response::{self, v3_error, HttpResponse};
use super::routes::Route;
use crate::auth::{generate_token, hash_token, to_hex, Grants, TokenEntry, ADMIN_TOKEN_NAME};
use crate::catalog::tokens::{NewToken, PermissionSpec, TokenChange};
use crate::catalog::Change;
use crate::server::shard::ShardCtx;

/// Longest expiry accepted (100 years): beyond it the nanosecond clock overflows.
const MAX_EXPIRY_SECS: u64 = 100 * 365 * 24 * 3600;

/// The body of `named_admin` (no `permissions`) and of a resource token (`ResourceTokenObject`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedTokenRequest {
    token_name: String,
    #[serde(default)]
    permissions: Option<Vec<PermissionSpec>>,
    #[serde(default)]
    expiry_secs: Option<u64>,
}

/// Serves every `/api/v3/configure/token...` path (and the Enterprise spelling of the resource
/// token path).
pub async fn handle(ctx: &ShardCtx, route: Route, req: Request<Incoming>) -> HttpResponse {
    if ctx.config.auth.disabled {
        return v3_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the server was started with --without-auth: tokens are neither needed nor issued",
        );
    }
    let method = req.method().clone();
    let result = match (route, &method) {
        (Route::AdminToken | Route::AdminTokenRegenerate, &Method::POST) => {
            let regenerate = route == Route::AdminTokenRegenerate;
            let change = move |hash| {
                if regenerate {
                    TokenChange::RegenerateAdmin { hash }
                } else {
                    TokenChange::CreateAdmin { hash }
                }
            };
            create(ctx, ADMIN_TOKEN_NAME, None, change, None).await
        }
        (Route::NamedAdminToken, &Method::POST) => create_named(ctx, req, true).await,
        (Route::Tokens, &Method::POST) => create_named(ctx, req, false).await,
        (Route::Tokens, &Method::GET) => Ok(list(ctx)),
        (Route::Tokens, &Method::DELETE) => delete(ctx, &req).await,
        _ => Ok(super::method_refused(route)),
    };
    respond(result)
}

fn expiry(secs: Option<u64>) -> Result<Option<i64>, Refusal> {
    match secs {
        None => Ok(None),
        Some(0) => Err(Refusal::bad(
            "'expiry_secs' must be at least 1 (leave it out for no expiry)",
        )),
        Some(s) if s > MAX_EXPIRY_SECS => Err(Refusal::bad(format!(
            "'expiry_secs' is at most {MAX_EXPIRY_SECS} (100 years)"
        ))),
        Some(s) => Ok(Some(crate::now_ns() + s as i64 * 1_000_000_000)),
    }
}

/// A named admin token (`admin`) or a resource token, from the request body.
async fn create_named(
    ctx: &ShardCtx,
    req: Request<Incoming>,
    admin: bool,
) -> Result<HttpResponse, Refusal> {
    let r: NamedTokenRequest = read_json(ctx, req).await?;
    let expiry_ns = expiry(r.expiry_secs)?;
    let permissions = match (admin, r.permissions) {
        (true, None) => None,
        (true, Some(_)) => {
            return Err(Refusal::bad(
                "an admin token takes no 'permissions': it may do everything",
            ))
        }
        (false, Some(p)) => Some(p),
        (false, None) => {
            return Err(Refusal::bad(
                "a resource token needs 'permissions', e.g. [{\"resource_type\": \"db\", \"resource_identifier\": [\"mydb\"], \"actions\": [\"read\"]}]",
            ))
        }
    };
    let shown = permissions.clone();
    let name = r.token_name;
    let change = |hash| {
        TokenChange::Create(NewToken {
            name: name.clone(),
            hash,
            expiry_ns,
            permissions,
        })
    };
    create(ctx, &name, expiry_ns, change, shown).await
}

/// Makes a token, stores its hash through `change`, and answers 201 with the text (the only
/// time it is shown).
async fn create(
    ctx: &ShardCtx,
    name: &str,
    expiry_ns: Option<i64>,
    change: impl FnOnce(String) -> TokenChange,
    permissions: Option<Vec<PermissionSpec>>,
) -> Result<HttpResponse, Refusal> {
    let token = generate_token().map_err(|e| Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("the OS random source failed: {e}"),
    })?;
    let hash = to_hex(&hash_token(&token));
    ctx.catalog
        .change(Change::Token(change(hash.clone())))
        .await?;
    let entry = ctx
        .catalog
        .token_list()
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Refusal {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the token was stored but is not listed; retry".into(),
        })?;
    let mut body = json!({
        "id": entry.id,
        "name": entry.name,
        "token": token,
        "hash": hash,
        "created_at": rfc3339(entry.created_at_ns),
        "expiry": expiry_ns.map(rfc3339),
    });
    if let Some(p) = permissions {
        body["permissions"] = json!(p);
    }
    Ok(response::json(StatusCode::CREATED, &body))
}

/// `GET`: every token's id, name, dates and grants; never a hash or a text.
fn list(ctx: &ShardCtx) -> HttpResponse {
    let now = crate::now_ns();
    let tokens: Vec<_> = ctx
        .catalog
        .token_list()
        .iter()
        .map(|e| describe(e, now))
        .collect();
    response::json(StatusCode::OK, &json!(tokens))
}

fn describe(e: &TokenEntry, now_ns: i64) -> serde_json::Value {
    let permissions = match &e.grants {
        Grants::Admin => json!("*"),
        Grants::Resources(perms) => json!(perms
            .iter()
            .map(|p| {
                let (ty, ids) = match &p.resource {
                    crate::auth::Resource::Databases(None) => ("db", vec!["*".to_string()]),
                    crate::auth::Resource::Databases(Some(n)) => ("db", n.clone()),
                    crate::auth::Resource::System => ("system", vec!["*".to_string()]),
                };
                let actions: Vec<&str> = [(p.read, "read"), (p.write, "write")]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, a)| *a)
                    .collect();
                json!({"resource_type": ty, "resource_identifier": ids, "actions": actions})
            })
            .collect::<Vec<_>>()),
    };
    json!({
        "id": e.id,
        "name": e.name,
        "admin": matches!(e.grants, Grants::Admin),
        "created_at": rfc3339(e.created_at_ns),
        "expiry": e.expiry_ns.map(rfc3339),
        "expired": e.expiry_ns.is_some_and(|at| at <= now_ns),
        "permissions": permissions,
    })
}

/// `DELETE ?id=N` (or `?token_name=`): 204, or 404 when there is no such token.
async fn delete(ctx: &ShardCtx, req: &Request<Incoming>) -> Result<HttpResponse, Refusal> {
    let q = query_map(req);
    let id = match (q.get("id"), q.get("token_name")) {
        (Some(id), _) => id.parse::<u64>().map_err(|_| {
            Refusal::bad(format!(
                "'id' must be a token id (a whole number), not '{id}'"
            ))
        })?,
        (None, Some(name)) => ctx
            .catalog
            .token_list()
            .iter()
            .find(|e| &e.name == name)
            .map(|e| e.id)
            .ok_or_else(|| Refusal {
                status: StatusCode::NOT_FOUND,
                message: format!("no token named '{name}'"),
            })?,
        (None, None) => return Err(Refusal::bad("give the token's 'id' (or 'token_name')")),
    };
    ctx.catalog
        .change(Change::Token(TokenChange::Delete { id }))
        .await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn rfc3339(ns: i64) -> String {
    let mut out = Vec::with_capacity(32);
    crate::query::timestamps::write_timestamp(ns, &mut out);
    out.push(b'Z');
    String::from_utf8(out).unwrap_or_default()
}
