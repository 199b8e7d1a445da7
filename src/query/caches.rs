//! The SQL table functions `last_cache('table'[, 'name'])` and
//! `distinct_cache('table'[, 'name'])`: answered from the shards' caches, not from a scan.
//!
//! A query sends each shard one [`CacheJob`] carrying the predicates on key columns (lookups
//! in the shard's indexes) and the projection; the shard builds a record batch of just the
//! matching rows. The coordinator then merges:
//! - last-value: when the cache's keys are every tag of the table, a key lives on one shard
//!   only and the answers are simply concatenated; otherwise the same key may be on several
//!   shards, and only its `count` newest rows across them are kept;
//! - distinct-value: combinations are unioned and de-duplicated, at most `max_cardinality`
//!   (newest kept), sorted.
//!
//! Predicates are pushed as `Inexact`: DataFusion still applies them, so a predicate the
//! shards could not use never changes an answer.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, TimestampNanosecondArray};
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use shardline_shards::cache::distinct::{output_fields, LAST_SEEN_COLUMN};
use shardline_shards::cache::last::{output_columns, output_schema, Source};
use shardline_shards::cache::{DistinctCacheDef, KeyFilter, KeyValue, LastCacheDef};
use shardline_shards::schema::{ColumnType, DbSchema, TableSchema};

use super::shards::{CacheJob, HereShard, ShardHandles, OFF_SHARD};
use super::table::collect_tag_set;
use crate::catalog::CacheKind;

/// `last_cache(...)` or `distinct_cache(...)` for one database.
#[derive(Debug)]
pub struct CacheFunction {
    kind: CacheKind,
    db: Arc<DbSchema>,
    shards: ShardHandles,
}

impl CacheFunction {
    pub fn new(kind: CacheKind, db: Arc<DbSchema>, shards: ShardHandles) -> Self {
        CacheFunction { kind, db, shards }
    }

    fn function_name(&self) -> &'static str {
        match self.kind {
            CacheKind::Last => "last_cache",
            CacheKind::Distinct => "distinct_cache",
        }
    }
}

fn plan_err(msg: String) -> DataFusionError {
    DataFusionError::Plan(msg)
}

fn string_arg(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Some(s),
        _ => None,
    }
}

/// The one cache `name` picks among `names` (or the only one when no name is given).
fn pick<'d>(
    kind: CacheKind,
    table: &str,
    names: impl Iterator<Item = &'d str>,
    name: Option<&str>,
) -> Result<usize, DataFusionError> {
    let names: Vec<&str> = names.collect();
    match name {
        Some(n) => names
            .iter()
            .position(|c| *c == n)
            .ok_or_else(|| plan_err(format!("table '{table}' has no {kind} named '{n}'"))),
        None => match names.len() {
            0 => Err(plan_err(format!("table '{table}' has no {kind}"))),
            1 => Ok(0),
            n => Err(plan_err(format!(
                "table '{table}' has {n} {kind}s ({}); name the one to query as the second argument",
                names.join(", ")
            ))),
        },
    }
}

impl TableFunctionImpl for CacheFunction {
    fn call_with_args(
        &self,
        args: datafusion::catalog::TableFunctionArgs,
    ) -> Result<Arc<dyn TableProvider>, DataFusionError> {
        let f = self.function_name();
        let exprs = args.exprs();
        let usage = || plan_err(format!("usage: {f}('table' [, 'cache name'])"));
        if exprs.is_empty() || exprs.len() > 2 {
            return Err(usage());
        }
        let table_name = string_arg(&exprs[0]).ok_or_else(usage)?;
        let name = match exprs.get(1) {
            Some(e) => Some(string_arg(e).ok_or_else(usage)?),
            None => None,
        };
        Ok(Arc::new(CacheTable::resolve(
            self.kind,
            &self.db,
            &self.shards,
            table_name,
            name,
        )?))
    }
}

/// One cache of one table, ready to answer.
#[derive(Debug)]
pub enum CacheTable {
    Last(LastCacheTable),
    Distinct(DistinctCacheTable),
}

impl CacheTable {
    /// The cache `name` of `table_name` (the table's only one of `kind` when unnamed).
    pub fn resolve(
        kind: CacheKind,
        db: &DbSchema,
        shards: &ShardHandles,
        table_name: &str,
        name: Option<&str>,
    ) -> Result<Self, DataFusionError> {
        let table = db.table(table_name).cloned().ok_or_else(|| {
            plan_err(format!(
                "table '{table_name}' not found in database '{}'",
                db.name
            ))
        })?;
        Ok(match kind {
            CacheKind::Last => {
                let names = table.last_caches.iter().map(|c| &*c.name);
                let def = table.last_caches[pick(kind, table_name, names, name)?].clone();
                CacheTable::Last(LastCacheTable::new(db.id, table, def, shards.clone()))
            }
            CacheKind::Distinct => {
                let names = table.distinct_caches.iter().map(|c| &*c.name);
                let def = table.distinct_caches[pick(kind, table_name, names, name)?].clone();
                CacheTable::Distinct(DistinctCacheTable::new(db.id, table, def, shards.clone()))
            }
        })
    }

    /// The columns a query of this cache sees.
    pub fn schema(&self) -> &SchemaRef {
        match self {
            CacheTable::Last(t) => &t.schema,
            CacheTable::Distinct(t) => &t.schema,
        }
    }

    /// The columns whose equality predicates are lookups: (name, type), indexed by
    /// [`KeyFilter::position`].
    pub fn keys(&self) -> &[(Arc<str>, ColumnType)] {
        match self {
            CacheTable::Last(t) => &t.keys,
            CacheTable::Distinct(t) => &t.columns,
        }
    }

    /// The rows whose keys pass every filter (exactly: a row is in the answer if and only if
    /// it passes), with the columns of `projection` (indexes into [`Self::schema`], not
    /// empty) or all.
    /// `here` is the shard the caller runs on, if any (see [`HereShard`]).
    pub async fn answer<H: HereShard>(
        &self,
        filters: Vec<KeyFilter>,
        projection: Option<&Vec<usize>>,
        here: Option<&H>,
    ) -> Result<RecordBatch, DataFusionError> {
        match self {
            CacheTable::Last(t) => t.answer(filters, projection, here).await,
            CacheTable::Distinct(t) => {
                let all: Vec<usize> = (0..t.columns.len()).collect();
                t.answer(filters, projection.cloned().unwrap_or(all), here)
                    .await
            }
        }
    }
}

/// The table `last_cache(...)` and `distinct_cache(...)` give DataFusion.
#[async_trait]
impl TableProvider for CacheTable {
    fn schema(&self) -> SchemaRef {
        CacheTable::schema(self).clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        Ok(pushdown(filters, self.keys()))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let filters = key_filters(filters, self.keys());
        // With no column projected (`count(*)`), the rows are answered with every column
        // (a distinct-value cache's rows are distinct over all of them) and only counted.
        let count_only = projection.is_some_and(|p| p.is_empty());
        let columns = projection.filter(|p| !p.is_empty());
        let out = self.answer(filters, columns, OFF_SHARD).await?;
        if count_only {
            let options = RecordBatchOptions::new().with_row_count(Some(out.num_rows()));
            let empty = Arc::new(Schema::empty());
            return memory_exec(RecordBatch::try_new_with_options(empty, vec![], &options)?);
        }
        memory_exec(out)
    }
}

/// Whether a key column of type `ty` can take string lookups.
pub fn string_key(ty: ColumnType) -> bool {
    matches!(ty, ColumnType::Tag | ColumnType::String)
}

/// The filters a cache can use as lookups: `col = 'v'`, `col IN (...)` and ORs of those on
/// one of `columns` (name, type), as (position, values).
fn key_filters(filters: &[Expr], columns: &[(Arc<str>, ColumnType)]) -> Vec<KeyFilter> {
    filters
        .iter()
        .filter_map(|f| key_filter(f, columns))
        .collect()
}

fn key_filter(f: &Expr, columns: &[(Arc<str>, ColumnType)]) -> Option<KeyFilter> {
    let mut col = None;
    let mut values = Vec::new();
    if !collect_tag_set(f, &mut col, &mut values) {
        return None;
    }
    let position = columns
        .iter()
        .position(|(n, ty)| Some(n.as_ref()) == col && string_key(*ty))?;
    Some(KeyFilter {
        position,
        values: values
            .into_iter()
            .map(|v| KeyValue::Str(Arc::from(v)))
            .collect(),
    })
}

fn pushdown(
    filters: &[&Expr],
    columns: &[(Arc<str>, ColumnType)],
) -> Vec<TableProviderFilterPushDown> {
    filters
        .iter()
        .map(|f| match key_filter(f, columns) {
            Some(_) => TableProviderFilterPushDown::Inexact,
            None => TableProviderFilterPushDown::Unsupported,
        })
        .collect()
}

fn memory_exec(batch: RecordBatch) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
    let schema = batch.schema();
    Ok(MemorySourceConfig::try_new_exec(
        &[vec![batch]],
        schema,
        None,
    )?)
}

/// Keeps, per group of equal `keys` columns, the first `k` rows in order of `order`
/// descending; the result is sorted by the keys.
fn first_per_group(
    batch: &RecordBatch,
    keys: &[usize],
    order: usize,
    k: usize,
) -> Result<RecordBatch, DataFusionError> {
    if batch.num_rows() == 0 {
        return Ok(batch.clone());
    }
    let mut sort: Vec<SortColumn> = keys
        .iter()
        .map(|&i| SortColumn {
            values: batch.column(i).clone(),
            options: None,
        })
        .collect();
    sort.push(SortColumn {
        values: batch.column(order).clone(),
        options: Some(arrow::compute::SortOptions {
            descending: true,
            nulls_first: false,
        }),
    });
    let sorted = take_record_batch(batch, &lexsort_to_indices(&sort, None)?)?;
    let converter = RowConverter::new(
        keys.iter()
            .map(|&i| SortField::new(sorted.schema().field(i).data_type().clone()))
            .collect(),
    )?;
    let key_columns: Vec<ArrayRef> = keys.iter().map(|&i| sorted.column(i).clone()).collect();
    let rows = converter.convert_columns(&key_columns)?;
    let mut keep: Vec<u32> = Vec::with_capacity(sorted.num_rows());
    let mut run = 0;
    for i in 0..sorted.num_rows() {
        run = if i > 0 && rows.row(i) == rows.row(i - 1) {
            run + 1
        } else {
            0
        };
        if run < k {
            keep.push(i as u32);
        }
    }
    Ok(take_record_batch(
        &sorted,
        &arrow::array::UInt32Array::from(keep),
    )?)
}

/// `last_cache(...)` of one table.
#[derive(Debug)]
pub struct LastCacheTable {
    database_id: u32,
    table: Arc<TableSchema>,
    def: Arc<LastCacheDef>,
    shards: ShardHandles,
    schema: SchemaRef,
    keys: Vec<(Arc<str>, ColumnType)>,
}

impl LastCacheTable {
    fn new(
        database_id: u32,
        table: Arc<TableSchema>,
        def: Arc<LastCacheDef>,
        shards: ShardHandles,
    ) -> Self {
        let columns = output_columns(&def, &table);
        let keys = columns
            .iter()
            .filter(|c| matches!(c.source, Source::Key(_)))
            .map(|c| (c.name.clone(), c.ty))
            .collect();
        LastCacheTable {
            schema: output_schema(&columns),
            keys,
            database_id,
            table,
            def,
            shards,
        }
    }

    /// Whether one key can be on several shards: its columns do not pin down the series.
    fn keys_span_shards(&self) -> bool {
        let tags = self
            .table
            .columns
            .iter()
            .filter(|c| c.ty == ColumnType::Tag);
        let all_tags_keyed = tags.clone().all(|c| self.def.key_columns.contains(&c.id));
        let only_tags = self.keys.iter().all(|(_, ty)| *ty == ColumnType::Tag);
        !(all_tags_keyed && only_tags) && self.shards.len() > 1
    }
}

impl LastCacheTable {
    async fn answer<H: HereShard>(
        &self,
        filters: Vec<KeyFilter>,
        projection: Option<&Vec<usize>>,
        here: Option<&H>,
    ) -> Result<RecordBatch, DataFusionError> {
        let merge = self.keys_span_shards();
        // Merging needs the keys and times, so it asks the shards for every column.
        let shard_projection = if merge { None } else { projection.cloned() };
        let now_ns = crate::now_ns();
        let batches = self
            .shards
            .cache(
                |reply| CacheJob {
                    kind: CacheKind::Last,
                    database_id: self.database_id,
                    table: self.table.clone(),
                    cache_id: self.def.id,
                    filters: filters.clone(),
                    projection: shard_projection.clone(),
                    now_ns,
                    reply,
                },
                here,
            )
            .await?;
        let schema = match &shard_projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let batch = concat_batches(&schema, &batches)?;
        if !merge {
            return Ok(batch);
        }
        let keys: Vec<usize> = (0..self.keys.len()).collect();
        let time = self.schema.fields().len() - 1;
        let merged = first_per_group(&batch, &keys, time, self.def.count)?;
        Ok(match projection {
            Some(p) => merged.project(p)?,
            None => merged,
        })
    }
}

/// `distinct_cache(...)` of one table.
#[derive(Debug)]
pub struct DistinctCacheTable {
    database_id: u32,
    table: Arc<TableSchema>,
    def: Arc<DistinctCacheDef>,
    shards: ShardHandles,
    schema: SchemaRef,
    columns: Vec<(Arc<str>, ColumnType)>,
}

impl DistinctCacheTable {
    fn new(
        database_id: u32,
        table: Arc<TableSchema>,
        def: Arc<DistinctCacheDef>,
        shards: ShardHandles,
    ) -> Self {
        let columns = def
            .columns
            .iter()
            .map(|&id| {
                let c = &table.columns[id as usize];
                (c.name.clone(), c.ty)
            })
            .collect();
        DistinctCacheTable {
            schema: Arc::new(Schema::new(output_fields(&def, &table))),
            columns,
            database_id,
            table,
            def,
            shards,
        }
    }
}

impl DistinctCacheTable {
    /// The distinct combinations of the columns at `positions` (not empty).
    async fn answer<H: HereShard>(
        &self,
        filters: Vec<KeyFilter>,
        positions: Vec<usize>,
        here: Option<&H>,
    ) -> Result<RecordBatch, DataFusionError> {
        let now_ns = crate::now_ns();
        let batches = self
            .shards
            .cache(
                |reply| CacheJob {
                    kind: CacheKind::Distinct,
                    database_id: self.database_id,
                    table: self.table.clone(),
                    cache_id: self.def.id,
                    filters: filters.clone(),
                    projection: Some(positions.clone()),
                    now_ns,
                    reply,
                },
                here,
            )
            .await?;
        let mut fields: Vec<_> = positions
            .iter()
            .map(|&i| self.schema.field(i).clone())
            .collect();
        fields.push(arrow::datatypes::Field::new(
            LAST_SEEN_COLUMN,
            arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None),
            false,
        ));
        let with_seen = Arc::new(Schema::new(fields));
        let batch = concat_batches(&with_seen, &batches)?;
        let keys: Vec<usize> = (0..positions.len()).collect();
        let seen = positions.len();
        let mut distinct = first_per_group(&batch, &keys, seen, 1)?;
        if distinct.num_rows() > self.def.max_cardinality {
            let newest = newest_first(&distinct, seen, self.def.max_cardinality)?;
            distinct = first_per_group(&newest, &keys, seen, 1)?;
        }
        let out_schema = Arc::new(self.schema.project(&positions)?);
        let columns: Vec<ArrayRef> = keys.iter().map(|&i| distinct.column(i).clone()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(distinct.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            out_schema, columns, &options,
        )?)
    }
}

/// The `n` rows with the greatest `seen` column.
fn newest_first(
    batch: &RecordBatch,
    seen: usize,
    n: usize,
) -> Result<RecordBatch, DataFusionError> {
    let times = batch
        .column(seen)
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .ok_or_else(|| DataFusionError::Internal("last-seen column has another type".into()))?;
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_unstable_by_key(|&i| std::cmp::Reverse(times.value(i as usize)));
    order.truncate(n);
    Ok(take_record_batch(
        batch,
        &arrow::array::UInt32Array::from(order),
    )?)
}
