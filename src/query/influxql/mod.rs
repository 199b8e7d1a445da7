//! InfluxQL queries: a statement parsed by `shardline-influxql`, planned against the catalog
//! and run on DataFusion over the same tables SQL reads ([`select`], [`show`]), answered as
//! one Arrow batch in the shape InfluxDB 3 Core gives `/api/v3/query_influxql`: a row per
//! point with its measurement (`iox::measurement`), `time`, the `GROUP BY` tags, and the
//! selected columns.
//!
//! Invariants: every row carries its measurement and series — the tag columns a series is
//! grouped by are marked in the schema ([`GROUP_TAG_KEY`] in their field metadata) — so the
//! v1 encoder can split rows into series without grouping again; errors a user caused are
//! 400 with 1.x's text; what is parsed but not run yet says so (501), never a wrong answer.

pub mod aggregate;
pub mod condition;
pub mod delete;
pub mod eval;
pub mod fast;
pub mod fields;
pub mod functions;
pub mod manage;
pub mod resolve;
pub mod select;
pub mod show;
pub mod stream;
pub mod subquery;
pub mod time_range;
pub mod values;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampNanosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use shardline_influxql::ast::Statement;
use shardline_influxql::params::{self, Value as ParamValue};
use shardline_influxql::ParseError;
use shardline_shards::schema::{CatalogSnapshot, DbSchema};

use values::V;

/// Field metadata marking a column as a tag the rows are grouped by (value `true`).
pub const GROUP_TAG_KEY: &str = "influxql::group_tag";
/// The column naming each row's measurement.
pub const MEASUREMENT_COLUMN: &str = "iox::measurement";

#[derive(Debug, thiserror::Error)]
pub enum InfluxQlError {
    #[error("error parsing query: {0}")]
    Parse(#[from] ParseError),
    /// The statement cannot run as written (1.x's message where it has one).
    #[error("{0}")]
    Invalid(String),
    /// Parsed, but not run by this server yet.
    #[error("{0}")]
    NotYet(String),
    /// Past one of the evaluator's limits (the message names it).
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Engine(#[from] DataFusionError),
}

/// One series of an answer.
#[derive(Debug, Clone)]
pub struct SeriesRows {
    pub measurement: String,
    /// The `GROUP BY` tags and this series' values of them (`None`: the series lacks it).
    pub tags: Vec<(String, Option<Arc<str>>)>,
    pub columns: Vec<String>,
    pub rows: Vec<(i64, Vec<V>)>,
}

/// A statement's answer.
#[derive(Debug, Default)]
pub struct Answer {
    pub series: Vec<SeriesRows>,
    /// `SHOW` answers have no time column.
    pub no_time: bool,
}

/// The query's `params` as bound parameter values.
pub fn bound_values(
    params: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<HashMap<String, ParamValue>, InfluxQlError> {
    use serde_json::Value as J;
    let mut out = HashMap::new();
    for (k, v) in params.into_iter().flatten() {
        let value = match v {
            J::String(s) => ParamValue::Str(s.clone()),
            J::Bool(b) => ParamValue::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => ParamValue::Integer(i),
                None => ParamValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            _ => {
                return Err(InfluxQlError::Invalid(format!(
                    "invalid params: '{k}' must be a string, number or boolean"
                )))
            }
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// Parses, plans and runs `text` against database `db`; `now` is the query's `now()`, and
/// `SHOW DATABASES` lists the databases `listed` admits.
pub async fn run(
    ctx: &SessionContext,
    snapshot: &CatalogSnapshot,
    db: &Arc<DbSchema>,
    text: &str,
    params: Option<&serde_json::Map<String, serde_json::Value>>,
    now: i64,
    listed: &(dyn Fn(&str) -> bool + Sync),
) -> Result<RecordBatch, InfluxQlError> {
    let mut statements = shardline_influxql::parse(text.trim())?;
    let mut stmt = match statements.len() {
        1 => statements.remove(0),
        0 => return Err(InfluxQlError::Invalid("the query has no statement".into())),
        n => {
            return Err(InfluxQlError::Invalid(format!(
                "this endpoint runs one statement per query, and the query has {n}"
            )))
        }
    };
    params::bind(&mut stmt, &bound_values(params)?)
        .map_err(|e| InfluxQlError::Invalid(e.to_string()))?;
    let answer = match &stmt {
        Statement::Select(s) => select::run(ctx, db, &db.name, s, now).await?,
        Statement::Show(s) => show::run(ctx, snapshot, db, s, now, listed).await?,
        other => {
            return Err(InfluxQlError::NotYet(format!(
                "{} is not run by /api/v3/query_influxql yet",
                statement_kind(other)
            )))
        }
    };
    Ok(to_batch(&answer))
}

pub fn statement_kind(s: &Statement) -> &'static str {
    match s {
        Statement::Select(_) => "SELECT",
        Statement::Explain { .. } => "EXPLAIN",
        Statement::Delete { .. } => "DELETE",
        Statement::DropSeries { .. } => "DROP SERIES",
        Statement::DropMeasurement(_) => "DROP MEASUREMENT",
        Statement::DropShard(_) => "DROP SHARD",
        Statement::CreateDatabase { .. } => "CREATE DATABASE",
        Statement::DropDatabase(_) => "DROP DATABASE",
        Statement::CreateRetentionPolicy { .. } => "CREATE RETENTION POLICY",
        Statement::AlterRetentionPolicy { .. } => "ALTER RETENTION POLICY",
        Statement::DropRetentionPolicy { .. } => "DROP RETENTION POLICY",
        Statement::Show(_) => "SHOW",
        Statement::KillQuery { .. } => "KILL QUERY",
        Statement::CreateUser { .. } => "CREATE USER",
        Statement::DropUser(_) => "DROP USER",
        Statement::SetPassword { .. } => "SET PASSWORD",
        Statement::Grant { .. } => "GRANT",
        Statement::Revoke { .. } => "REVOKE",
        Statement::CreateContinuousQuery { .. } => "CREATE CONTINUOUS QUERY",
        Statement::DropContinuousQuery { .. } => "DROP CONTINUOUS QUERY",
        Statement::CreateSubscription { .. } => "CREATE SUBSCRIPTION",
        Statement::DropSubscription { .. } => "DROP SUBSCRIPTION",
    }
}

/// The answer as one batch: `iox::measurement`, `time` (unless `SHOW`), the group tags, then
/// the columns, each in the order they first appear across series.
pub fn to_batch(answer: &Answer) -> RecordBatch {
    let mut tag_names: Vec<String> = Vec::new();
    let mut col_names: Vec<String> = Vec::new();
    for s in &answer.series {
        for (t, _) in &s.tags {
            if !tag_names.contains(t) {
                tag_names.push(t.clone());
            }
        }
        for c in &s.columns {
            if !col_names.contains(c) && !tag_names.contains(c) {
                col_names.push(c.clone());
            }
        }
    }
    let rows: usize = answer.series.iter().map(|s| s.rows.len()).sum();
    let mut measurement = StringBuilder::with_capacity(rows, rows * 8);
    let mut time = TimestampNanosecondBuilder::with_capacity(rows);
    let mut tags: Vec<StringBuilder> = tag_names.iter().map(|_| StringBuilder::new()).collect();
    let mut cols: Vec<Vec<V>> = col_names.iter().map(|_| Vec::with_capacity(rows)).collect();
    for s in &answer.series {
        let tag_at: Vec<Option<&Option<Arc<str>>>> = tag_names
            .iter()
            .map(|t| s.tags.iter().find(|(n, _)| n == t).map(|(_, v)| v))
            .collect();
        let col_at: Vec<Option<usize>> = col_names
            .iter()
            .map(|c| s.columns.iter().position(|n| n == c))
            .collect();
        for (t, values) in &s.rows {
            measurement.append_value(&s.measurement);
            time.append_value(*t);
            for (b, v) in tags.iter_mut().zip(&tag_at) {
                match v {
                    Some(Some(v)) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            for (c, at) in cols.iter_mut().zip(&col_at) {
                c.push(at.map_or(V::Null, |i| values[i].clone()));
            }
        }
    }
    let mut fields = vec![Field::new(MEASUREMENT_COLUMN, DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(measurement.finish())];
    if !answer.no_time {
        fields.push(Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ));
        arrays.push(Arc::new(time.finish()));
    }
    for (name, mut b) in tag_names.iter().zip(tags) {
        let meta = HashMap::from([(GROUP_TAG_KEY.to_string(), "true".to_string())]);
        fields.push(Field::new(name, DataType::Utf8, true).with_metadata(meta));
        arrays.push(Arc::new(b.finish()));
    }
    for (name, values) in col_names.iter().zip(cols) {
        let array = values::column_of(&values);
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .expect("columns are built to the schema's types and lengths")
}
