//! `/api/v3/configure/database` and `/api/v3/configure/table`: listing, creating, updating
//! (retention period) and soft-deleting databases and tables.
//!
//! Every change goes through the catalog's single writer and is durable before the answer.
//! Statuses follow the v3 API: 201 created, 200 updated or deleted, 400 for a request that
//! cannot be read, 404 for a database or table that does not exist, 409 for a name taken.
//! Errors have the v3 shape `{"error": "..."}`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use shardline_shards::schema::ColumnType;

use super::errors::{respond, Refusal};
use super::params::{query_map, read_json};
use super::response::{self, HttpResponse};
use super::routes::Route;
use crate::catalog::{format_retention, parse_retention, Change};
use crate::query::Format;
use crate::server::shard::ShardCtx;

#[derive(Debug, Deserialize)]
struct CreateDatabase {
    db: String,
    #[serde(default)]
    retention_period: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UpdateDatabase {
    #[serde(default)]
    db: Option<String>,
    /// Absent: nothing to change. `null` or `"none"`: keep data forever.
    #[serde(default, deserialize_with = "present")]
    retention_period: Option<Option<String>>,
}

#[derive(Debug, Deserialize)]
struct FieldSpec {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Debug, Deserialize)]
struct CreateTable {
    db: String,
    table: String,
    tags: Vec<String>,
    #[serde(default)]
    fields: Vec<FieldSpec>,
    #[serde(default)]
    retention_period: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UpdateTable {
    db: String,
    table: String,
    #[serde(default, deserialize_with = "present")]
    retention_period: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

const NOTHING_TO_UPDATE: &str =
    "nothing to update: give 'retention_period' (a duration like 30d, or \"none\")";

/// Serves `/api/v3/configure/database`.
pub async fn database(ctx: &ShardCtx, req: Request<Incoming>) -> HttpResponse {
    let query = query_map(&req);
    let result = match req.method().clone() {
        Method::GET => list_databases(ctx, &query),
        Method::POST => create_database(ctx, req).await,
        Method::PUT => update_database(ctx, req, &query).await,
        Method::DELETE => match query.get("db").filter(|d| !d.is_empty()).cloned() {
            Some(name) => answer(ctx, Change::DeleteDatabase { name }, StatusCode::OK).await,
            None => Err(Refusal::bad("missing required query parameter 'db'")),
        },
        _ => Ok(super::method_refused(Route::Database)),
    };
    respond(result)
}

async fn create_database(ctx: &ShardCtx, req: Request<Incoming>) -> Result<HttpResponse, Refusal> {
    let body: CreateDatabase = read_json(ctx, req).await?;
    let change = Change::CreateDatabase {
        name: body.db,
        retention_ns: retention(body.retention_period.as_deref())?,
    };
    answer(ctx, change, StatusCode::CREATED).await
}

async fn update_database(
    ctx: &ShardCtx,
    req: Request<Incoming>,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, Refusal> {
    let body: UpdateDatabase = read_json(ctx, req).await?;
    let name = body
        .db
        .or_else(|| query.get("db").cloned())
        .ok_or_else(|| Refusal::bad("missing required parameter 'db'"))?;
    let period = body
        .retention_period
        .ok_or_else(|| Refusal::bad(NOTHING_TO_UPDATE))?;
    let retention_ns = retention(Some(period.as_deref().unwrap_or("none")))?;
    let change = Change::SetDatabaseRetention { name, retention_ns };
    answer(ctx, change, StatusCode::OK).await
}

/// Serves `/api/v3/configure/table`.
pub async fn table(ctx: &ShardCtx, req: Request<Incoming>) -> HttpResponse {
    let query = query_map(&req);
    let result = match req.method().clone() {
        Method::POST => create_table(ctx, req).await,
        Method::PUT => update_table(ctx, req).await,
        Method::DELETE => {
            let param = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
            match (param("db"), param("table")) {
                (Some(database), Some(table)) => {
                    answer(ctx, Change::DeleteTable { database, table }, StatusCode::OK).await
                }
                _ => Err(Refusal::bad(
                    "missing required query parameters 'db' and 'table'",
                )),
            }
        }
        _ => Ok(super::method_refused(Route::Table)),
    };
    respond(result)
}

async fn create_table(ctx: &ShardCtx, req: Request<Incoming>) -> Result<HttpResponse, Refusal> {
    let body: CreateTable = read_json(ctx, req).await?;
    let retention_ns = retention(body.retention_period.as_deref())?;
    let mut columns: Vec<(String, ColumnType)> = body
        .tags
        .into_iter()
        .map(|t| (t, ColumnType::Tag))
        .collect();
    for f in body.fields {
        let ty = field_type(&f.ty).ok_or_else(|| {
            Refusal::bad(format!(
                "field '{}' has unknown type '{}': use utf8, int64, uint64, float64 or bool",
                f.name, f.ty
            ))
        })?;
        columns.push((f.name, ty));
    }
    let change = Change::CreateTable {
        database: body.db,
        table: body.table,
        columns,
        retention_ns,
    };
    answer(ctx, change, StatusCode::CREATED).await
}

async fn update_table(ctx: &ShardCtx, req: Request<Incoming>) -> Result<HttpResponse, Refusal> {
    let body: UpdateTable = read_json(ctx, req).await?;
    let period = body
        .retention_period
        .ok_or_else(|| Refusal::bad(NOTHING_TO_UPDATE))?;
    let change = Change::SetTableRetention {
        database: body.db,
        table: body.table,
        retention_ns: retention(Some(period.as_deref().unwrap_or("none")))?,
    };
    answer(ctx, change, StatusCode::OK).await
}

/// The column type a field type name of the API stands for.
fn field_type(name: &str) -> Option<ColumnType> {
    Some(match name {
        "utf8" => ColumnType::String,
        "int64" => ColumnType::Int,
        "uint64" => ColumnType::UInt,
        "float64" => ColumnType::Float,
        "bool" => ColumnType::Bool,
        _ => return None,
    })
}

fn retention(text: Option<&str>) -> Result<Option<i64>, Refusal> {
    match text {
        None => Ok(None),
        Some(t) => parse_retention(t).map_err(Refusal::bad),
    }
}

/// Applies a change and answers with `ok`, or with the status the catalog's error calls for.
async fn answer(ctx: &ShardCtx, change: Change, ok: StatusCode) -> Result<HttpResponse, Refusal> {
    ctx.catalog.change(change).await?;
    Ok(response::empty(ok))
}

/// `GET /api/v3/configure/database?format=json|jsonl|csv|pretty|parquet[&show_deleted=true]`:
/// one row per database with its name (`iox::database`), its retention period if it has one,
/// and with `show_deleted` the deleted ones too, marked.
fn list_databases(
    ctx: &ShardCtx,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, Refusal> {
    let format = match query.get("format").map(String::as_str) {
        None | Some("") => Format::Json,
        Some(f) => Format::from_name(f).ok_or_else(|| {
            Refusal::bad(format!(
                "unknown format '{f}': use json, jsonl, csv, parquet or pretty"
            ))
        })?,
    };
    let show_deleted = match query.get("show_deleted").map(String::as_str) {
        None | Some("false") => false,
        Some("true" | "") => true,
        Some(other) => {
            return Err(Refusal::bad(format!(
                "'show_deleted' must be true or false, not '{other}'"
            )))
        }
    };
    let snapshot = ctx.catalog.snapshot();
    let mut dbs: Vec<_> = snapshot
        .databases
        .iter()
        .filter(|d| show_deleted || d.deleted_at_ns.is_none())
        .collect();
    dbs.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
    let mut fields = vec![
        Field::new("iox::database", DataType::Utf8, false),
        Field::new("retention_period", DataType::Utf8, true),
    ];
    let mut columns: Vec<arrow::array::ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            dbs.iter().map(|d| d.name.as_ref()),
        )),
        Arc::new(StringArray::from_iter(
            dbs.iter().map(|d| d.retention_ns.map(format_retention)),
        )),
    ];
    if show_deleted {
        fields.push(Field::new("deleted", DataType::Boolean, false));
        columns.push(Arc::new(BooleanArray::from_iter(
            dbs.iter().map(|d| Some(d.deleted_at_ns.is_some())),
        )));
    }
    let schema = Arc::new(Schema::new(fields));
    let encoded = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| e.to_string())
        .and_then(|batch| {
            let mut enc =
                crate::query::format::Encoder::new(format, &schema).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            out.extend_from_slice(&enc.begin());
            out.extend_from_slice(&enc.batch(&batch).map_err(|e| e.to_string())?);
            out.extend_from_slice(&enc.finish(&schema).map_err(|e| e.to_string())?);
            Ok(out)
        });
    let out = encoded.map_err(|e| Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("listing databases failed: {e}"),
    })?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, format.content_type())
        .body(http_body_util::Either::Left(http_body_util::Full::new(
            Bytes::from(out),
        )))
        .expect("static response parts are valid"))
}
