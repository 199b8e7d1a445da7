//! A buffered table as DataFusion sees it: a [`TableProvider`] whose scan has one partition
//! per shard, each reading a snapshot of that shard's buffer taken when the query is planned.
//!
//! Invariants:
//! - Column order is stable: tags sorted by name, then fields sorted by name, then `time`.
//! - Tags are `Utf8View` (built by gathering views of the shard's tag dictionary: no string
//!   is copied, and DataFusion groups and compares views fast), `time` is `Timestamp(Nanosecond)`, string fields are
//!   `LargeUtf8` (the buffer's chunks are shared as they are, with 64-bit offsets).
//! - Pushed-down filters are `Inexact`: the shards prune by them, DataFusion still applies
//!   every filter, so a predicate this module does not understand only costs pruning.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
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
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
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

use super::scan::{OutputColumn, SnapshotBatches};
use super::shards::ShardHandles;

/// The Arrow type of a column.
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Tag => DataType::Utf8View,
        ColumnType::String => DataType::LargeUtf8,
        ColumnType::Float => DataType::Float64,
        ColumnType::Int => DataType::Int64,
        ColumnType::UInt => DataType::UInt64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Time => DataType::Timestamp(TimeUnit::Nanosecond, None),
    }
}

/// One table of one database, for one query.
#[derive(Debug)]
pub struct BufferTable {
    database_id: u32,
    table: Arc<TableSchema>,
    /// Column ids in output order.
    order: Vec<u32>,
    schema: SchemaRef,
    shards: ShardHandles,
}

impl BufferTable {
    pub fn new(database_id: u32, table: Arc<TableSchema>, shards: ShardHandles) -> Self {
        let rank = |t: ColumnType| match t {
            ColumnType::Tag => 0,
            ColumnType::Time => 2,
            _ => 1,
        };
        let mut cols: Vec<_> = table.columns.iter().collect();
        cols.sort_by(|a, b| (rank(a.ty), &a.name).cmp(&(rank(b.ty), &b.name)));
        let fields: Vec<Field> = cols
            .iter()
            .map(|c| Field::new(c.name.as_ref(), arrow_type(c.ty), c.ty != ColumnType::Time))
            .collect();
        BufferTable {
            database_id,
            order: cols.iter().map(|c| c.id).collect(),
            schema: Arc::new(Schema::new(fields)),
            table,
            shards,
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
        request.time_min = pruning.time_min;
        request.time_max = pruning.time_max;
        request.tag_filters = pruning.tags.into_iter().collect();
        // Snapshots are taken now, at planning: the plan's statistics come from them (row
        // counts, tag cardinalities, time bounds steer join order and aggregation), and every
        // partition reads what the shards held when the query was planned.
        let partitions = self.shards.len();
        let snapshots = futures::future::try_join_all((0..partitions).map(|shard| {
            self.shards
                .snapshot(shard, self.database_id, self.table.id, request.clone())
        }))
        .await?;
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Arc::new(BufferScanExec {
            table_name: self.table.name.to_string(),
            schema,
            columns,
            request,
            snapshots: Arc::new(snapshots),
            pushed: Vec::new(),
            properties: Arc::new(properties),
        }))
    }
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
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (col, lit, op) = match (column_of(left), literal_of(right)) {
                    (Some(c), Some(l)) => (c, l, *op),
                    _ => match (column_of(right), literal_of(left), op.swap()) {
                        (Some(c), Some(l), Some(op)) => (c, l, op),
                        _ => return false,
                    },
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
fn collect_tag_set<'e>(e: &'e Expr, col: &mut Option<&'e str>, values: &mut Vec<String>) -> bool {
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
struct ColumnRef<'e> {
    name: &'e str,
    cast: bool,
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

/// The physical scan: partition `i` reads shard `i`.
#[derive(Debug)]
pub struct BufferScanExec {
    table_name: String,
    schema: SchemaRef,
    columns: Vec<OutputColumn>,
    request: SnapshotRequest,
    /// One per shard (partition).
    snapshots: Arc<Vec<TableSnapshot>>,
    /// Filters pushed down by the physical plan (e.g. a hash join's dynamic filter), read
    /// when each partition starts.
    pushed: Vec<Arc<dyn PhysicalExpr>>,
    properties: Arc<PlanProperties>,
}

impl BufferScanExec {
    /// Estimates from the snapshots of the given partition (all when `None`).
    fn statistics(&self, partition: Option<usize>) -> Statistics {
        let snaps: Vec<&TableSnapshot> = match partition {
            Some(p) => self.snapshots.get(p).into_iter().collect(),
            None => self.snapshots.iter().collect(),
        };
        let rows: usize = snaps
            .iter()
            .flat_map(|s| s.chunks.iter())
            .map(|c| c.len)
            .sum();
        let time_min = snaps
            .iter()
            .flat_map(|s| s.chunks.iter())
            .map(|c| c.time_min)
            .min();
        let time_max = snaps
            .iter()
            .flat_map(|s| s.chunks.iter())
            .map(|c| c.time_max)
            .max();
        let mut stats = Statistics::new_unknown(&self.schema);
        stats.num_rows = Precision::Inexact(rows);
        for (col, out) in stats.column_statistics.iter_mut().zip(&self.columns) {
            match out {
                OutputColumn::Tag(i) => {
                    let distinct = snaps.iter().map(|s| s.tags[*i].values.len()).max();
                    if let Some(d) = distinct {
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
                    "BufferScanExec: table={}, shards={}",
                    self.table_name,
                    self.snapshots.len()
                )?;
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
            snapshots: self.snapshots.clone(),
            pushed,
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
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let snapshot = self.snapshots.get(partition).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!(
                "partition {partition} of a scan over {} shards",
                self.snapshots.len()
            ))
        })?;
        let batches = SnapshotBatches::new(
            self.schema.clone(),
            self.columns.clone(),
            snapshot,
            self.request.time_min,
            self.request.time_max,
        )
        .with_dynamic_filters(self.pushed.clone());
        let stream = futures::stream::iter(batches.map(|b| b.map_err(DataFusionError::from)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}
