//! `/api/v3/configure/last_cache` and `/api/v3/configure/distinct_cache`: creating and
//! deleting a table's caches.
//!
//! Statuses follow the v3 API: 201 with the cache's definition when created; 204 when a cache
//! of that name already exists with the same settings (so a retry is harmless); for a name
//! taken with other settings, 409 (last cache) or 400 (distinct cache), as the spec gives
//! each; 200 when deleted; 404 for a database, table or cache that does not exist; 400 for a
//! request that cannot be read or names unusable columns. Errors are `{"error": "..."}`.
//! The cache is in the catalog, durably, before the answer; each shard builds its share
//! from the rows it holds the first time a write or query reaches it.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use shardline_shards::schema::{CatalogSnapshot, TableSchema};

use super::errors::{catalog_status, respond, Refusal};
use super::params::{query_map, read_json};
use super::response::{self, HttpResponse};
use crate::catalog::{CacheKind, CatalogError, Change, DistinctCacheRequest, LastCacheRequest};
use crate::server::shard::ShardCtx;

#[derive(Debug, Deserialize)]
struct CreateLast {
    db: String,
    table: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    key_columns: Option<Vec<String>>,
    #[serde(default)]
    value_columns: Option<Vec<String>>,
    #[serde(default)]
    count: Option<u64>,
    /// Seconds.
    #[serde(default)]
    ttl: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CreateDistinct {
    db: String,
    table: String,
    #[serde(default)]
    name: Option<String>,
    columns: Vec<String>,
    #[serde(default)]
    max_cardinality: Option<u64>,
    /// Seconds.
    #[serde(default)]
    max_age: Option<u64>,
}

/// Serves both endpoints.
pub async fn handle(ctx: &ShardCtx, kind: CacheKind, req: Request<Incoming>) -> HttpResponse {
    let query = query_map(&req);
    let result = match req.method().clone() {
        Method::POST => create(ctx, kind, req).await,
        Method::DELETE => {
            let param = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
            match (param("db"), param("table"), param("name")) {
                (Some(database), Some(table), Some(name)) => {
                    let change = Change::DeleteCache {
                        kind,
                        database,
                        table,
                        name,
                    };
                    match ctx.catalog.change(change).await {
                        Ok(_) => Ok(response::empty(StatusCode::OK)),
                        Err(e) => Err(Refusal::from(e)),
                    }
                }
                _ => Err(Refusal::bad(
                    "missing required query parameters 'db', 'table' and 'name'",
                )),
            }
        }
        _ => Ok(super::method_refused(match kind {
            CacheKind::Last => super::Route::LastCache,
            CacheKind::Distinct => super::Route::DistinctCache,
        })),
    };
    respond(result)
}

async fn create(
    ctx: &ShardCtx,
    kind: CacheKind,
    req: Request<Incoming>,
) -> Result<HttpResponse, Refusal> {
    let (change, database, table) = match kind {
        CacheKind::Last => {
            let b: CreateLast = read_json(ctx, req).await?;
            let r = LastCacheRequest {
                database: b.db,
                table: b.table,
                name: b.name,
                key_columns: b.key_columns,
                value_columns: b.value_columns,
                count: b.count,
                ttl_secs: b.ttl,
            };
            let (d, t) = (r.database.clone(), r.table.clone());
            (Change::CreateLastCache(r), d, t)
        }
        CacheKind::Distinct => {
            let b: CreateDistinct = read_json(ctx, req).await?;
            let r = DistinctCacheRequest {
                database: b.db,
                table: b.table,
                name: b.name,
                columns: b.columns,
                max_cardinality: b.max_cardinality,
                max_age_secs: b.max_age,
            };
            let (d, t) = (r.database.clone(), r.table.clone());
            (Change::CreateDistinctCache(r), d, t)
        }
    };
    let before = ctx.catalog.snapshot();
    match ctx.catalog.change(change).await {
        Ok(snapshot) => {
            let body = created(&snapshot, &before, kind, &database, &table);
            Ok(response::json(StatusCode::CREATED, &body))
        }
        Err(CatalogError::CacheExists {
            identical: true, ..
        }) => Ok(response::empty(StatusCode::NO_CONTENT)),
        Err(e @ CatalogError::CacheExists { .. }) if kind == CacheKind::Distinct => {
            Err(Refusal::bad(e.to_string()))
        }
        Err(e) => Err(Refusal {
            status: catalog_status(&e),
            message: e.to_string(),
        }),
    }
}

/// The definition of the cache a create added: the one `after` has and `before` had not.
fn created(
    after: &CatalogSnapshot,
    before: &CatalogSnapshot,
    kind: CacheKind,
    database: &str,
    table: &str,
) -> serde_json::Value {
    let Some(t) = after.database(database).and_then(|d| d.table(table)) else {
        return json!({});
    };
    let old: Vec<u64> = before
        .database(database)
        .and_then(|d| d.table(table))
        .map(|t| match kind {
            CacheKind::Last => t.last_caches.iter().map(|c| c.id).collect(),
            CacheKind::Distinct => t.distinct_caches.iter().map(|c| c.id).collect(),
        })
        .unwrap_or_default();
    match kind {
        CacheKind::Last => t
            .last_caches
            .iter()
            .find(|c| !old.contains(&c.id))
            .map_or(json!({}), |c| last_json(database, t, c)),
        CacheKind::Distinct => t
            .distinct_caches
            .iter()
            .find(|c| !old.contains(&c.id))
            .map_or(json!({}), |c| distinct_json(database, t, c)),
    }
}

fn names(t: &TableSchema, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&i| t.columns[i as usize].name.to_string())
        .collect()
}

fn last_json(
    db: &str,
    t: &TableSchema,
    c: &shardline_shards::cache::LastCacheDef,
) -> serde_json::Value {
    json!({
        "db": db,
        "table": &*t.name,
        "name": &*c.name,
        "key_columns": names(t, &c.key_columns),
        "value_columns": c.value_columns.as_ref().map(|v| {
            let mut v = names(t, v);
            v.push(shardline_shards::schema::TIME_COLUMN.to_string());
            v
        }),
        "count": c.count,
        "ttl": c.ttl_ns / 1_000_000_000,
    })
}

fn distinct_json(
    db: &str,
    t: &TableSchema,
    c: &shardline_shards::cache::DistinctCacheDef,
) -> serde_json::Value {
    json!({
        "db": db,
        "table": &*t.name,
        "name": &*c.name,
        "columns": names(t, &c.columns),
        "max_cardinality": c.max_cardinality,
        "max_age": c.max_age_ns / 1_000_000_000,
    })
}
