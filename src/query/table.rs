//! A table as DataFusion sees it: a [`TableProvider`] whose scan has one partition per shard,
//! each reading what that shard held when the query was planned: snapshots of its buffers
//! and the Parquet files its manifests list.
//!
//! Invariants:
//! - Column order is stable: tags sorted by name, then fields sorted by name, then `time`.
//! - Tags are `Utf8View` (built by gathering views of the shard's tag dictionary: no string
//!   is copied, and DataFusion groups and compares views fast), `time` is `Timestamp(Nanosecond)`, string fields are
//!   `LargeUtf8` (the buffer's chunks are shared as they are, with 64-bit offsets).
//! - Time comparisons against timestamps and tag equality/IN filters are pushed down
//!   `Exact` (buffers and files apply them row by row); any other filter is `Inexact` and only
//!   prunes, DataFusion still applies it.
//! - Sources that may hold the same point (overlapping time, possibly the same series) are
//!   read in one partition and merged last-write-wins; every other source is read as it is.
//! - The scan declares its partitions sorted by `time` only when each one reads nothing but
//!   buffers whose rows arrived in time order and need no merging, one after another without
//!   overlap; files (sorted by series) and merged groups never are.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::{Precision, Statistics};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column as ColumnExpr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions,
};
use shardline_shards::buffer::snapshot::{SnapshotRequest, TableSnapshot};
use shardline_shards::schema::{ColumnType, TableSchema};

use super::shards::FileSource;
use arrow::array::RecordBatch;
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;
use futures::StreamExt;
use object_store::ObjectStore;
use shardline_shards::persist::merge::{merge_last_write_wins, PointKey};

use super::parquet::{read_file, FileRead};
use super::prefilter::{self, FieldBound};
use super::scan::{narrow_time, OutputColumn, SnapshotBatches};
use super::shards::{overlap_groups, ShardHandles, ShardTableSnapshot, Span};

/// The Arrow type of a column in query results: as in Parquet files, except tags, which are
/// `Utf8View` (gathered from the shards' dictionaries without copying strings).
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Tag => DataType::Utf8View,
        ty => shardline_shards::persist::writer::file_type(ty),
    }
}

/// One table of one database, for one query.
#[derive(Debug)]
pub struct BufferTable {
    database_id: u32,
    table: Arc<TableSchema>,
    /// Rows older than this, relative to the time of the scan, are not read.
    retention_ns: Option<i64>,
    /// Column ids in output order.
    order: Vec<u32>,
    schema: SchemaRef,
    shards: ShardHandles,
    store: Arc<dyn ObjectStore>,
}

impl BufferTable {
    pub fn new(
        database_id: u32,
        table: Arc<TableSchema>,
        retention_ns: Option<i64>,
        shards: ShardHandles,
        store: Arc<dyn ObjectStore>,
    ) -> Self {
        let cols = table.columns_in_order();
        let fields: Vec<Field> = cols
            .iter()
            .map(|c| Field::new(c.name.as_ref(), arrow_type(c.ty), c.ty != ColumnType::Time))
            .collect();
        BufferTable {
            database_id,
            order: cols.iter().map(|c| c.id).collect(),
            schema: Arc::new(Schema::new(fields)),
            table,
            retention_ns,
            shards,
            store,
        }
    }
}

#[async_trait]
impl TableProvider for BufferTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // A filter the shards apply row by row (time against a timestamp, tag against
        // strings) is `Exact`: DataFusion need not check it again. Others only prune.
        Ok(filters
            .iter()
            .map(|f| {
                let mut probe = Pruning::default();
                if probe.add(&self.table, f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.order.len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&indices)?);
        let mut request = SnapshotRequest::default();
        let mut columns = Vec::with_capacity(indices.len());
        for &i in &indices {
            let col = &self.table.columns[self.order[i] as usize];
            columns.push(match col.ty {
                ColumnType::Time => OutputColumn::Time,
                ColumnType::Tag => {
                    request.tags.push(col.id);
                    OutputColumn::Tag(request.tags.len() - 1)
                }
                ty => {
                    request.fields.push(col.id);
                    OutputColumn::Field(request.fields.len() - 1, arrow_type(ty))
                }
            });
        }
        let pruning = Pruning::from_filters(&self.table, filters);
        let bounds = prefilter::bounds(filters, &self.table, &request.fields);
        request.time_min = pruning.time_min;
        // Expired rows are hidden at once, whether or not their files are deleted yet.
        request.time_min = request.time_min.max(shardline_shards::schema::visible_from(
            self.retention_ns,
            crate::now_ns(),
        ));
        request.time_max = pruning.time_max;
        request.tag_filters = pruning.tags.into_iter().collect();
        // Snapshots are taken now, at planning: the plan's statistics come from them (row
        // counts, tag cardinalities, time bounds steer join order and aggregation), and every
        // partition reads what the shards held when the query was planned.
        let other_tags: Vec<u32> = self
            .order
            .iter()
            .copied()
            .filter(|&id| {
                self.table.columns[id as usize].ty == ColumnType::Tag && !request.tags.contains(&id)
            })
            .collect();
        let shards = self.shards.len();
        let take = |force: bool| {
            futures::future::try_join_all((0..shards).map(|shard| {
                self.shards.snapshot(
                    shard,
                    self.database_id,
                    self.table.id,
                    request.clone(),
                    other_tags.clone(),
                    force,
                )
            }))
        };
        let mut answers = take(false).await?;
        // Files of another shard layout may share series with any shard's sources: merging
        // them needs every source's tags, which only the shards can add.
        let foreign = answers
            .iter()
            .flat_map(|a| a.files.iter())
            .any(|f| f.file.shard_count as usize != shards);
        if foreign && answers.iter().any(|a| !a.all_tags) {
            answers = take(true).await?;
        }
        let partitions = plan_partitions(answers, request.time_min, request.time_max);
        // Declaring the order the partitions already have lets the plan drop a sort by time
        // (or merge the partitions' streams instead of sorting them): a streamed statement
        // then holds no spilled runs at all.
        let time_order = columns
            .iter()
            .position(|c| matches!(c, OutputColumn::Time))
            .filter(|_| partitions.iter().all(|p| in_time_order(p)))
            .map(|i| {
                PhysicalSortExpr::new(Arc::new(ColumnExpr::new("time", i)), SortOptions::default())
            });
        let properties = PlanProperties::new(
            EquivalenceProperties::new_with_orderings(schema.clone(), time_order.map(|e| [e])),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        let mut all_tags = request.tags.clone();
        all_tags.extend(&other_tags);
        let names = |ids: &[u32]| -> Vec<String> {
            ids.iter()
                .map(|&id| self.table.columns[id as usize].name.to_string())
                .collect()
        };
        Ok(Arc::new(BufferScanExec {
            table_name: self.table.name.to_string(),
            schema,
            columns,
            request: request.clone(),
            tag_names: names(&all_tags),
            field_names: names(&request.fields),
            tag_filters: request
                .tag_filters
                .iter()
                .map(|(id, v)| (self.table.columns[*id as usize].name.to_string(), v.clone()))
                .collect(),
            partitions: Arc::new(partitions),
            store: self.store.clone(),
            pushed: Vec::new(),
            bounds,
            properties: Arc::new(properties),
        }))
    }
}

/// One thing a partition reads.
#[derive(Debug, Clone)]
enum Unit {
    Buffer(TableSnapshot),
    File(FileSource),
    /// Sources that may share points, oldest first: read in full and merged.
    Merge(Vec<Unit>),
}

/// Splits the shards' sources into partitions: by default partition `i` reads shard `i`'s
/// sources; sources that may share points are merged, in the partition of the lowest shard
/// among them.
fn plan_partitions(
    answers: Vec<ShardTableSnapshot>,
    time_min: i64,
    time_max: i64,
) -> Vec<Vec<Unit>> {
    /// One source and where it sits in age and in time.
    struct Source {
        shard: usize,
        /// Files age by (epoch, id), then the frozen buffer, then the active one.
        age: (u8, u64, u64),
        unit: Unit,
        span: Span,
    }
    let n = answers.len();
    let mut sources: Vec<Option<Source>> = Vec::new();
    for a in answers {
        for f in a.files {
            let span = Span::of_file(&f.file, time_min, time_max);
            let (epoch, id) = f.file.order();
            sources.push(Some(Source {
                shard: a.shard,
                age: (0, epoch, id),
                unit: Unit::File(f),
                span,
            }));
        }
        for (k, b) in a.buffers.into_iter().enumerate() {
            // A buffer with nothing in range is left out.
            if let Some(span) = Span::of_buffer(&b, a.shard, a.shard_count, time_min, time_max) {
                sources.push(Some(Source {
                    shard: a.shard,
                    age: (1, k as u64, 0),
                    unit: Unit::Buffer(b),
                    span,
                }));
            }
        }
    }
    let spans: Vec<Span> = sources.iter().flatten().map(|s| s.span).collect();
    let mut partitions: Vec<Vec<Unit>> = vec![Vec::new(); n.max(1)];
    for group in overlap_groups(&spans) {
        let mut members: Vec<Source> = group
            .iter()
            .map(|&i| sources[i].take().expect("each source is in one group"))
            .collect();
        let home = members
            .iter()
            .map(|m| m.shard)
            .min()
            .expect("groups are not empty");
        if members.len() == 1 {
            partitions[home].push(members.pop().expect("one").unit);
        } else {
            members.sort_by_key(|m| (m.age, m.shard));
            partitions[home].push(Unit::Merge(members.into_iter().map(|m| m.unit).collect()));
        }
    }
    partitions
}

/// Whether reading `units` one after another yields rows in time order: only buffers whose
/// rows were appended in time order and need no merging (a merged series' rows come last),
/// each chunk starting no earlier than the one before it ends.
fn in_time_order(units: &[Unit]) -> bool {
    let mut last = i64::MIN;
    for u in units {
        let Unit::Buffer(s) = u else {
            return false;
        };
        if !s.time_ordered || s.needs_merge() {
            return false;
        }
        for c in &s.chunks {
            if c.time_min < last {
                return false;
            }
            last = c.time_max;
        }
    }
    true
}

/// What the filters allow, as far as the shards can prune.
#[derive(Debug)]
struct Pruning {
    time_min: i64,
    time_max: i64,
    tags: HashMap<u32, Vec<String>>,
}

impl Default for Pruning {
    fn default() -> Self {
        Pruning {
            time_min: i64::MIN,
            time_max: i64::MAX,
            tags: HashMap::new(),
        }
    }
}

impl Pruning {
    fn from_filters(table: &TableSchema, filters: &[Expr]) -> Self {
        let mut p = Pruning::default();
        for f in filters {
            p.add(table, f);
        }
        p
    }

    /// Narrows by `e`; returns whether `e` is captured whole, i.e. the shards' row
    /// selection alone applies it exactly.
    fn add(&mut self, table: &TableSchema, e: &Expr) -> bool {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::And => {
                let l = self.add(table, left);
                let r = self.add(table, right);
                l && r
            }
            Expr::BinaryExpr(BinaryExpr { op, .. }) if *op == Operator::Or => {
                self.add_tag_set(table, e)
            }
            Expr::BinaryExpr(cmp) => {
                let Some((col, lit, op)) = column_comparison(cmp) else {
                    return false;
                };
                let Some(column) = table.column(col.name) else {
                    return false;
                };
                match column.ty {
                    // A cast of `time` (to a coarser unit, say) changes which rows compare
                    // true, so only the bare column is used.
                    ColumnType::Time if !col.cast => match timestamp_ns(lit) {
                        Some(t) => self.add_time(op, t),
                        None => false,
                    },
                    ColumnType::Tag if op == Operator::Eq => match string_of(lit) {
                        Some(s) => {
                            self.restrict_tag(column.id, vec![s]);
                            true
                        }
                        None => false,
                    },
                    _ => false,
                }
            }
            Expr::Between(b) if !b.negated => {
                let is_time = column_of(&b.expr)
                    .filter(|c| !c.cast)
                    .and_then(|c| table.column(c.name))
                    .map(|c| c.ty)
                    == Some(ColumnType::Time);
                match (
                    is_time,
                    literal_of(&b.low).and_then(timestamp_ns),
                    literal_of(&b.high).and_then(timestamp_ns),
                ) {
                    (true, Some(lo), Some(hi)) => {
                        self.add_time(Operator::GtEq, lo);
                        self.add_time(Operator::LtEq, hi);
                        true
                    }
                    _ => false,
                }
            }
            Expr::InList(_) => self.add_tag_set(table, e),
            _ => false,
        }
    }

    /// `tag = a OR tag = b`, `tag IN (a, b)`: one tag allowed a set of values.
    fn add_tag_set(&mut self, table: &TableSchema, e: &Expr) -> bool {
        let mut col = None;
        let mut values = Vec::new();
        if !collect_tag_set(e, &mut col, &mut values) {
            return false;
        }
        match col.and_then(|c| table.column(c)) {
            Some(c) if c.ty == ColumnType::Tag => {
                self.restrict_tag(c.id, values);
                true
            }
            _ => false,
        }
    }

    fn restrict_tag(&mut self, id: u32, values: Vec<String>) {
        match self.tags.get_mut(&id) {
            Some(existing) => existing.retain(|v| values.contains(v)),
            None => {
                self.tags.insert(id, values);
            }
        }
    }

    /// Narrows the time range by `time <op> t`; false for operators it cannot use.
    fn add_time(&mut self, op: Operator, t: i64) -> bool {
        match op {
            Operator::Gt => self.time_min = self.time_min.max(t.saturating_add(1)),
            Operator::GtEq => self.time_min = self.time_min.max(t),
            Operator::Lt => self.time_max = self.time_max.min(t.saturating_sub(1)),
            Operator::LtEq => self.time_max = self.time_max.min(t),
            Operator::Eq => {
                self.time_min = self.time_min.max(t);
                self.time_max = self.time_max.min(t);
            }
            _ => return false,
        }
        true
    }
}

/// Collects `col = 'v' OR col = 'w' OR col IN (...)` over one column; false if `e` is not that.
pub(crate) fn collect_tag_set<'e>(
    e: &'e Expr,
    col: &mut Option<&'e str>,
    values: &mut Vec<String>,
) -> bool {
    let mut same_column = |c: &'e str| match col {
        Some(prev) => *prev == c,
        None => {
            *col = Some(c);
            true
        }
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Or => {
            collect_tag_set(left, col, values) && collect_tag_set(right, col, values)
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Eq => {
            let pair = match (column_of(left), literal_of(right).and_then(string_of)) {
                (Some(c), Some(v)) => Some((c.name, v)),
                _ => column_of(right)
                    .map(|c| c.name)
                    .zip(literal_of(left).and_then(string_of)),
            };
            match pair {
                Some((c, v)) if same_column(c) => {
                    values.push(v);
                    true
                }
                _ => false,
            }
        }
        Expr::InList(l) if !l.negated => {
            let Some(c) = column_of(&l.expr).map(|c| c.name) else {
                return false;
            };
            if !same_column(c) {
                return false;
            }
            for item in &l.list {
                match literal_of(item).and_then(string_of) {
                    Some(v) => values.push(v),
                    None => return false,
                }
            }
            true
        }
        _ => false,
    }
}

/// A column an expression reads, and whether through a cast.
#[derive(Debug, Clone, Copy)]
pub(super) struct ColumnRef<'e> {
    pub name: &'e str,
    pub cast: bool,
}

/// `column <op> literal` or `literal <op> column` (then read with the operator swapped, so the
/// column is always on the left).
pub(super) fn column_comparison(e: &BinaryExpr) -> Option<(ColumnRef<'_>, &ScalarValue, Operator)> {
    match (column_of(&e.left), literal_of(&e.right)) {
        (Some(c), Some(l)) => Some((c, l, e.op)),
        _ => match (column_of(&e.right), literal_of(&e.left), e.op.swap()) {
            (Some(c), Some(l), Some(op)) => Some((c, l, op)),
            _ => None,
        },
    }
}

/// The column an expression reads, looking through casts (and saying so).
fn column_of(e: &Expr) -> Option<ColumnRef<'_>> {
    match e {
        Expr::Column(c) => Some(ColumnRef {
            name: &c.name,
            cast: false,
        }),
        Expr::Cast(c) => column_of(&c.expr).map(|r| ColumnRef { cast: true, ..r }),
        Expr::TryCast(c) => column_of(&c.expr).map(|r| ColumnRef { cast: true, ..r }),
        _ => None,
    }
}

fn literal_of(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

fn string_of(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        ScalarValue::Dictionary(_, inner) => string_of(inner),
        _ => None,
    }
}

fn timestamp_ns(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampNanosecond(Some(t), _) => Some(*t),
        ScalarValue::TimestampMicrosecond(Some(t), _) => t.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(t), _) => t.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(t), _) => t.checked_mul(1_000_000_000),
        _ => None,
    }
}

/// The physical scan: partition `i` reads shard `i`'s buffers and files (and any group of
/// sources that must be merged whose lowest shard is `i`).
#[derive(Debug)]
pub struct BufferScanExec {
    table_name: String,
    schema: SchemaRef,
    columns: Vec<OutputColumn>,
    request: SnapshotRequest,
    /// Every tag's name: the requested ones first (as in `request.tags`), then the others.
    tag_names: Vec<String>,
    /// Names of `request.fields`.
    field_names: Vec<String>,
    /// `request.tag_filters` by tag name.
    tag_filters: Vec<(String, Vec<String>)>,
    partitions: Arc<Vec<Vec<Unit>>>,
    store: Arc<dyn ObjectStore>,
    /// Filters pushed down by the physical plan (e.g. a hash join's dynamic filter), read
    /// when each partition starts.
    pushed: Vec<Arc<dyn PhysicalExpr>>,
    /// Field comparisons among the filters, which selective buffer reads check first.
    bounds: Vec<FieldBound>,
    properties: Arc<PlanProperties>,
}

fn unit_stats(
    u: &Unit,
    rows: &mut usize,
    min: &mut Option<i64>,
    max: &mut Option<i64>,
    tags: &mut Vec<usize>,
) {
    let mut time = |lo: i64, hi: i64| {
        *min = Some(min.map_or(lo, |m| m.min(lo)));
        *max = Some(max.map_or(hi, |m| m.max(hi)));
    };
    match u {
        Unit::Buffer(s) => {
            for c in &s.chunks {
                *rows += c.candidate_rows();
                time(c.time_min, c.time_max);
            }
            for (i, t) in s.tags.iter().enumerate() {
                if let Some(d) = tags.get_mut(i) {
                    *d = (*d).max(t.values.len());
                }
            }
        }
        Unit::File(FileSource { file: f, .. }) => {
            *rows += f.row_count as usize;
            time(f.min_time, f.max_time);
        }
        Unit::Merge(m) => {
            for u in m {
                unit_stats(u, rows, min, max, tags);
            }
        }
    }
}

impl BufferScanExec {
    /// Estimates from the partition's sources (all partitions when `None`).
    fn statistics(&self, partition: Option<usize>) -> Statistics {
        let parts: Vec<&Vec<Unit>> = match partition {
            Some(p) => self.partitions.get(p).into_iter().collect(),
            None => self.partitions.iter().collect(),
        };
        let (mut rows, mut time_min, mut time_max) = (0, None, None);
        let mut distinct = vec![0usize; self.request.tags.len()];
        for u in parts.into_iter().flatten() {
            unit_stats(u, &mut rows, &mut time_min, &mut time_max, &mut distinct);
        }
        let mut stats = Statistics::new_unknown(&self.schema);
        stats.num_rows = Precision::Inexact(rows);
        for (col, out) in stats.column_statistics.iter_mut().zip(&self.columns) {
            match out {
                OutputColumn::Tag(i) => {
                    if let Some(&d) = distinct.get(*i) {
                        col.distinct_count = Precision::Inexact(d);
                    }
                }
                OutputColumn::Time => {
                    let ts = |t: Option<i64>| {
                        t.map_or(Precision::Absent, |t| {
                            Precision::Inexact(ScalarValue::TimestampNanosecond(Some(t), None))
                        })
                    };
                    col.min_value = ts(time_min);
                    col.max_value = ts(time_max);
                    col.null_count = Precision::Exact(0);
                }
                OutputColumn::Field(..) => {}
            }
        }
        stats
    }
}

impl DisplayAs for BufferScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "BufferScanExec: table={}, partitions={}",
                    self.table_name,
                    self.partitions.len()
                )?;
                let files: usize = self
                    .partitions
                    .iter()
                    .flatten()
                    .map(|u| match u {
                        Unit::File(_) => 1,
                        Unit::Merge(m) => m.iter().filter(|u| matches!(u, Unit::File(_))).count(),
                        Unit::Buffer(_) => 0,
                    })
                    .sum();
                if files > 0 {
                    write!(f, ", files={files}")?;
                }
                let merges = self
                    .partitions
                    .iter()
                    .flatten()
                    .filter(|u| matches!(u, Unit::Merge(_)))
                    .count();
                if merges > 0 {
                    write!(f, ", merged_groups={merges}")?;
                }
                if self.request.time_min != i64::MIN || self.request.time_max != i64::MAX {
                    write!(
                        f,
                        ", time=[{}, {}]",
                        self.request.time_min, self.request.time_max
                    )?;
                }
                for p in &self.pushed {
                    write!(f, ", pushed=[{p}]")?;
                }
                if !self.request.tag_filters.is_empty() {
                    write!(f, ", tag_filters={}", self.request.tag_filters.len())?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => write!(f, "table={}", self.table_name),
        }
    }
}

impl ExecutionPlan for BufferScanExec {
    fn name(&self) -> &'static str {
        "BufferScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        // Visiting the pushed filters is how a hash join learns its dynamic filter is read
        // (it only computes the filter then).
        for p in &self.pushed {
            if f(p)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let filters: Vec<Arc<dyn PhysicalExpr>> = child_pushdown_result
            .parent_filters
            .into_iter()
            .map(|f| f.filter)
            .collect();
        if filters.is_empty() {
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(
                Vec::new(),
            ));
        }
        // The scan only prunes by them; whoever pushed them still applies them.
        let answers = vec![PushedDown::No; filters.len()];
        let mut pushed = self.pushed.clone();
        pushed.extend(filters);
        let node = BufferScanExec {
            table_name: self.table_name.clone(),
            schema: self.schema.clone(),
            columns: self.columns.clone(),
            request: self.request.clone(),
            tag_names: self.tag_names.clone(),
            field_names: self.field_names.clone(),
            tag_filters: self.tag_filters.clone(),
            partitions: self.partitions.clone(),
            store: self.store.clone(),
            pushed,
            bounds: self.bounds.clone(),
            properties: self.properties.clone(),
        };
        Ok(
            FilterPushdownPropagation::with_parent_pushdown_result(answers)
                .with_updated_node(Arc::new(node) as Arc<dyn ExecutionPlan>),
        )
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        Ok(Arc::new(self.statistics(args.partition())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let compact = context
            .session_config()
            .get_extension::<CompactBatches>()
            .map(|c| c.0.max(1));
        let units = self.partitions.get(partition).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!(
                "partition {partition} of a scan with {} partitions",
                self.partitions.len()
            ))
        })?;
        let reader = Arc::new(PartitionReader {
            schema: self.schema.clone(),
            columns: self.columns.clone(),
            tag_names: self.tag_names.clone(),
            field_names: self.field_names.clone(),
            field_types: self
                .columns
                .iter()
                .filter_map(|c| match c {
                    OutputColumn::Field(i, ty) => Some((*i, ty.clone())),
                    _ => None,
                })
                .collect(),
            tag_filters: self.tag_filters.clone(),
            store: self.store.clone(),
            time_min: self.request.time_min,
            time_max: self.request.time_max,
            bounds: self.bounds.clone(),
        });
        let pushed = self.pushed.clone();
        // Built when first polled: a hash join's dynamic filter is known by then.
        let stream = futures::stream::once(async move {
            let (lo, hi) = reader.narrowed(&pushed);
            let streams: Vec<_> = units
                .into_iter()
                .map(|u| reader.clone().unit_stream(u, lo, hi, pushed.clone()))
                .collect();
            futures::stream::iter(streams).flatten()
        })
        .flatten();
        let stream: BatchStream = match compact {
            None => stream.boxed(),
            Some(rows) => stream
                .flat_map(move |batch| futures::stream::iter(compacted(batch, rows)))
                .boxed(),
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// A session extension: scans copy their batches into batches of at most this many rows
/// (see [`compacted`]). A streamed statement's sort sets it: the sort counts each batch
/// at the size of the buffers it holds, and a zero-copy batch of the write buffer holds a whole
/// chunk's, so without copying a small pool fits one chunk per spilled run (hundreds of runs,
/// each merged with a chunk-sized batch).
#[derive(Debug, Clone, Copy)]
pub struct CompactBatches(pub usize);

/// `batch` as batches of at most `rows` rows whose values, offsets and views are their own (a
/// string view column still points into the tag dictionary's bytes, which are small and shared).
fn compacted(batch: DfResult<RecordBatch>, rows: usize) -> Vec<DfResult<RecordBatch>> {
    let batch = match batch {
        Ok(b) => b,
        Err(e) => return vec![Err(e)],
    };
    let n = batch.num_rows();
    (0..n)
        .step_by(rows)
        .map(|at| {
            let len = rows.min(n - at);
            let indices = arrow::array::UInt32Array::from_iter_values(at as u32..(at + len) as u32);
            arrow::compute::take_record_batch(&batch, &indices).map_err(DataFusionError::from)
        })
        .collect()
}

/// Everything a partition needs to read its units.
#[derive(Debug)]
struct PartitionReader {
    schema: SchemaRef,
    columns: Vec<OutputColumn>,
    tag_names: Vec<String>,
    field_names: Vec<String>,
    /// (index in `field_names`, type) of each projected field.
    field_types: Vec<(usize, DataType)>,
    tag_filters: Vec<(String, Vec<String>)>,
    store: Arc<dyn ObjectStore>,
    time_min: i64,
    time_max: i64,
    bounds: Vec<FieldBound>,
}

type BatchStream = futures::stream::BoxStream<'static, DfResult<RecordBatch>>;

impl PartitionReader {
    /// The time range narrowed by the dynamic filters' current values.
    fn narrowed(&self, pushed: &[Arc<dyn PhysicalExpr>]) -> (i64, i64) {
        let (mut lo, mut hi) = (self.time_min, self.time_max);
        if let Some(t) = self
            .columns
            .iter()
            .position(|c| matches!(c, OutputColumn::Time))
        {
            for f in pushed {
                if let Ok(current) = snapshot_physical_expr(f.clone()) {
                    narrow_time(&current, t, &mut lo, &mut hi);
                }
            }
        }
        (lo, hi)
    }

    fn field_type(&self, i: usize) -> DataType {
        self.field_types
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, t)| t.clone())
            .unwrap_or(DataType::Null)
    }

    /// The layout merging reads: every tag, the requested fields, time.
    fn full_layout(&self) -> (SchemaRef, Vec<OutputColumn>, Vec<(String, DataType)>) {
        let mut fields = Vec::new();
        let mut cols = Vec::new();
        let mut read = Vec::new();
        for (i, n) in self.tag_names.iter().enumerate() {
            fields.push(Field::new(n, DataType::Utf8View, true));
            cols.push(OutputColumn::Tag(i));
            read.push((n.clone(), DataType::Utf8View));
        }
        for (i, n) in self.field_names.iter().enumerate() {
            let ty = self.field_type(i);
            fields.push(Field::new(n, ty.clone(), true));
            cols.push(OutputColumn::Field(i, ty.clone()));
            read.push((n.clone(), ty));
        }
        let time = arrow_type(ColumnType::Time);
        fields.push(Field::new("time", time.clone(), false));
        cols.push(OutputColumn::Time);
        read.push(("time".into(), time));
        (Arc::new(Schema::new(fields)), cols, read)
    }

    fn file_read(
        &self,
        schema: SchemaRef,
        columns: Vec<(String, DataType)>,
        lo: i64,
        hi: i64,
    ) -> Arc<FileRead> {
        Arc::new(FileRead {
            columns,
            schema,
            time_min: lo,
            time_max: hi,
            tag_filters: self.tag_filters.clone(),
        })
    }

    /// Output columns by name and type, for files.
    fn output_read(&self) -> Vec<(String, DataType)> {
        self.columns
            .iter()
            .zip(self.schema.fields())
            .map(|(_, f)| (f.name().clone(), f.data_type().clone()))
            .collect()
    }

    fn unit_stream(
        self: Arc<Self>,
        unit: Unit,
        lo: i64,
        hi: i64,
        pushed: Vec<Arc<dyn PhysicalExpr>>,
    ) -> BatchStream {
        match unit {
            Unit::Buffer(snapshot) => {
                let batches = SnapshotBatches::new(
                    self.schema.clone(),
                    self.columns.clone(),
                    snapshot,
                    self.time_min,
                    self.time_max,
                )
                .with_dynamic_filters(pushed)
                .with_field_bounds(self.bounds.clone());
                futures::stream::iter(batches.map(|b| b.map_err(DataFusionError::from))).boxed()
            }
            Unit::File(f) if !f.file.overlaps(lo, hi) => futures::stream::empty().boxed(),
            Unit::File(f) => {
                let read = self.file_read(self.schema.clone(), self.output_read(), lo, hi);
                read_file(self.store.clone(), &f.file, read, f.deletes)
            }
            Unit::Merge(members) => futures::stream::once(async move {
                match self.merge(members, lo, hi, pushed).await {
                    Ok(batches) => futures::stream::iter(batches.into_iter().map(Ok)).boxed(),
                    Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
                }
            })
            .flatten()
            .boxed(),
        }
    }

    /// Reads every member in full, merges them last-write-wins, and shapes the output.
    async fn merge(
        &self,
        members: Vec<Unit>,
        lo: i64,
        hi: i64,
        pushed: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Vec<RecordBatch>> {
        let (full_schema, full_cols, full_read) = self.full_layout();
        let ntags = self.tag_names.len();
        let mut inputs = Vec::new();
        for m in members {
            match m {
                Unit::Buffer(snapshot) => {
                    if snapshot.tags.len() < ntags {
                        return Err(DataFusionError::Internal(
                            "a buffer to merge was snapshot without all of its tags".into(),
                        ));
                    }
                    let batches = SnapshotBatches::new(
                        full_schema.clone(),
                        full_cols.clone(),
                        snapshot,
                        self.time_min,
                        self.time_max,
                    )
                    .with_dynamic_filters(pushed.clone());
                    for b in batches {
                        inputs.push(b?);
                    }
                }
                Unit::File(f) => {
                    if !f.file.overlaps(lo, hi) {
                        continue;
                    }
                    let read = self.file_read(full_schema.clone(), full_read.clone(), lo, hi);
                    let mut s = read_file(self.store.clone(), &f.file, read, f.deletes);
                    while let Some(b) = s.next().await {
                        inputs.push(b?);
                    }
                }
                Unit::Merge(_) => {
                    return Err(DataFusionError::Internal("nested merge groups".into()));
                }
            }
        }
        let key = PointKey {
            tags: (0..ntags).collect(),
            time: full_cols.len() - 1,
        };
        let merged = merge_last_write_wins(&inputs, &key, 8192)?;
        // Output column i comes from full column `pick[i]`.
        let pick: Vec<usize> = self
            .columns
            .iter()
            .map(|c| match c {
                OutputColumn::Tag(i) => *i,
                OutputColumn::Field(i, _) => ntags + i,
                OutputColumn::Time => full_cols.len() - 1,
            })
            .collect();
        merged
            .into_iter()
            .map(|b| {
                let cols = pick.iter().map(|&i| b.column(i).clone()).collect();
                RecordBatch::try_new_with_options(
                    self.schema.clone(),
                    cols,
                    &arrow::array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
                )
                .map_err(DataFusionError::from)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringViewArray};

    #[test]
    fn compacted_batches_keep_every_row_in_order_and_own_their_buffers() {
        let n = 10_000;
        let values = Int64Array::from_iter_values(0..n as i64);
        let names = StringViewArray::from_iter_values(
            (0..n).map(|i| format!("a longer tag value {}", i % 7)),
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("t", DataType::Utf8View, false),
        ]));
        let whole = RecordBatch::try_new(schema, vec![Arc::new(values), Arc::new(names)]).unwrap();
        // A zero-copy slice, as the write buffer's chunks are: it holds the whole buffers.
        let slice = whole.slice(100, 2_500);
        let parts: Vec<RecordBatch> = compacted(Ok(slice.clone()), 1_024)
            .into_iter()
            .collect::<DfResult<_>>()
            .unwrap();
        assert_eq!(
            parts.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
            [1_024, 1_024, 452]
        );
        let joined = arrow::compute::concat_batches(&slice.schema(), &parts).unwrap();
        assert_eq!(joined, slice);
        let values_of = |b: &RecordBatch| b.column(0).get_buffer_memory_size();
        assert!(values_of(&parts[0]) < values_of(&slice) / 4);
        let failed = compacted(Err(DataFusionError::Internal("x".into())), 1_024);
        assert!(matches!(failed.as_slice(), [Err(_)]));
    }
}
