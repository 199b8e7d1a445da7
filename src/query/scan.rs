//! Turning one shard's [`TableSnapshot`] into record batches for the query engine.
//!
//! Invariants:
//! - Every row of the snapshot that passes the time range and the tag predicate is emitted
//!   exactly once (a selective read may leave out rows a field bound certainly rejects), and
//!   a point (series, time) written several times is emitted once, each field holding its
//!   last written non-null value (last-write-wins per field).
//! - A chunk that needs no row filtering is emitted without copying its field or time data:
//!   the arrays share the buffer's sealed chunks. Only tag columns are built per batch (string
//!   views gathered by dictionary code).
//! - Work is done one chunk at a time as the consumer pulls, so memory stays bounded by a
//!   few chunks, except for the rows of series that need merging (collected, sorted, merged).
//! - A selective snapshot (its chunks carry the offsets of the rows a tag predicate may pass)
//!   is read by gathering only those rows, across chunks, into batches of about [`CHUNK_LEN`]
//!   rows, in the snapshot's row order.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions,
    TimestampNanosecondArray, UInt32Array,
};
use arrow::compute::{interleave, take, FilterBuilder};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow_buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;
use shardline_shards::buffer::snapshot::{ChunkSnapshot, TableSnapshot, SERIES_KEEP, SERIES_MERGE};
use shardline_shards::buffer::CHUNK_LEN;

use super::prefilter::{Check, FieldBound};

/// Where an output column's values come from.
#[derive(Debug, Clone)]
pub enum OutputColumn {
    /// Index into the snapshot's tags.
    Tag(usize),
    /// Index into each chunk's fields, with the column's type (for all-null chunks).
    Field(usize, DataType),
    Time,
}

/// Rows merged per output batch.
const MERGE_BATCH_ROWS: usize = 8192;

/// Produces a snapshot's record batches one chunk at a time.
#[derive(Debug)]
pub struct SnapshotBatches {
    schema: SchemaRef,
    columns: Vec<OutputColumn>,
    snapshot: TableSnapshot,
    time_min: i64,
    time_max: i64,
    next_chunk: usize,
    /// (series, time, chunk position, row in chunk) of rows to merge.
    merge_rows: Vec<(u32, i64, u32, u32)>,
    /// Merged output, produced once every chunk has been read.
    merged: Option<std::vec::IntoIter<RecordBatch>>,
    /// Filters the plan pushed down at run time (a hash join's build-side bounds): read once,
    /// when the first batch is asked for, to narrow the time range.
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
    /// Whether any series of the snapshot needs merging.
    merging: bool,
    /// The chunks say which rows to read (see the module docs).
    selective: bool,
    /// Field comparisons a selective read checks before gathering a row's other columns.
    bounds: Vec<FieldBound>,
}

impl SnapshotBatches {
    pub fn new(
        schema: SchemaRef,
        columns: Vec<OutputColumn>,
        snapshot: TableSnapshot,
        time_min: i64,
        time_max: i64,
    ) -> Self {
        SnapshotBatches {
            schema,
            columns,
            time_min,
            time_max,
            next_chunk: 0,
            merge_rows: Vec::new(),
            merged: None,
            dynamic: Vec::new(),
            merging: snapshot.needs_merge(),
            // Snapshots select in every chunk or in none; checked here so the gather can rely
            // on it.
            selective: !snapshot.chunks.is_empty()
                && snapshot.chunks.iter().all(|c| c.selected.is_some()),
            snapshot,
            bounds: Vec::new(),
        }
    }

    /// Field comparisons of the plan's filters that rows must be able to pass (see
    /// [`super::prefilter`]); they only narrow a selective read.
    pub fn with_field_bounds(mut self, bounds: Vec<FieldBound>) -> Self {
        self.bounds = bounds;
        self
    }

    /// Adds filters to read when the scan starts (see `dynamic`).
    pub fn with_dynamic_filters(mut self, filters: Vec<Arc<dyn PhysicalExpr>>) -> Self {
        self.dynamic = filters;
        self
    }

    /// Narrows the time range by the current value of the dynamic filters.
    fn apply_dynamic_filters(&mut self) {
        let time_index = self
            .columns
            .iter()
            .position(|c| matches!(c, OutputColumn::Time));
        let Some(time_index) = time_index else {
            self.dynamic.clear();
            return;
        };
        for f in std::mem::take(&mut self.dynamic) {
            if let Ok(current) = snapshot_physical_expr(f) {
                narrow_time(&current, time_index, &mut self.time_min, &mut self.time_max);
            }
        }
    }

    /// The batch for chunk `pos`, or `None` when no row of it is selected.
    fn chunk_batch(&mut self, pos: usize) -> Result<Option<RecordBatch>, ArrowError> {
        let chunk = &self.snapshot.chunks[pos];
        if chunk.time_max < self.time_min || chunk.time_min > self.time_max {
            return Ok(None);
        }
        let time_cut = chunk.time_min < self.time_min || chunk.time_max > self.time_max;
        let state = self.snapshot.series_state.clone();
        if state.is_none() && !time_cut {
            return self.build(chunk, None, chunk.len).map(Some);
        }
        let (time_min, time_max) = (self.time_min, self.time_max);
        let (times, series) = (&chunk.time, &chunk.series);
        let mask = match &state {
            // Only the time range cuts rows.
            None => BooleanBuffer::collect_bool(chunk.len, |i| {
                let t = times[i];
                t >= time_min && t <= time_max
            }),
            // Branch-free unless a series needs merging, whose rows are set aside.
            Some(s) if !self.merging => BooleanBuffer::collect_bool(chunk.len, |i| {
                let t = times[i];
                (t >= time_min) & (t <= time_max) & (s[series[i] as usize] == SERIES_KEEP)
            }),
            Some(s) => {
                let merge_rows = &mut self.merge_rows;
                BooleanBuffer::collect_bool(chunk.len, |i| {
                    let t = times[i];
                    let in_range = t >= time_min && t <= time_max;
                    let sid = series[i];
                    let st = s[sid as usize];
                    if st == SERIES_MERGE && in_range {
                        merge_rows.push((sid, t, pos as u32, i as u32));
                    }
                    in_range && st == SERIES_KEEP
                })
            }
        };
        let selected = mask.count_set_bits();
        let mask = BooleanArray::new(mask, None);
        if selected == 0 {
            return Ok(None);
        }
        let chunk = &self.snapshot.chunks[pos];
        if selected == chunk.len {
            return self.build(chunk, None, chunk.len).map(Some);
        }
        self.build(chunk, Some(&mask), selected).map(Some)
    }

    /// The next batch of a selective snapshot: the selected rows of the next chunks that pass
    /// the time range, gathered until there are at least [`CHUNK_LEN`] or no chunks are left.
    /// Selected rows of series that need merging are set aside for [`Self::merge`].
    fn gather_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let (time_min, time_max) = (self.time_min, self.time_max);
        // (index into `involved`, row in that chunk) of each output row.
        let mut picks: Vec<(usize, usize)> = Vec::new();
        let mut involved: Vec<usize> = Vec::new();
        while self.next_chunk < self.snapshot.chunks.len() && picks.len() < CHUNK_LEN {
            let pos = self.next_chunk;
            self.next_chunk += 1;
            let chunk = &self.snapshot.chunks[pos];
            if chunk.time_max < time_min || chunk.time_min > time_max {
                continue;
            }
            let selected = chunk
                .selected
                .as_ref()
                .expect("`selective` is set only when every chunk selects");
            let state = self.snapshot.series_state.as_deref();
            let checks: Vec<Check<'_>> = self
                .bounds
                .iter()
                .map(|b| b.check(chunk.fields.get(b.field).and_then(|f| f.as_deref())))
                .collect();
            let k = involved.len();
            let before = picks.len();
            for &i in selected.iter() {
                let i = i as usize;
                let t = chunk.time[i];
                if t < time_min || t > time_max {
                    continue;
                }
                let sid = chunk.series[i];
                match state.map_or(SERIES_KEEP, |s| s[sid as usize]) {
                    // A merged point's fields may come from other writes: only rows read
                    // as they are can be judged by their own values.
                    SERIES_KEEP if checks.iter().all(|c| c.may_pass(i)) => picks.push((k, i)),
                    SERIES_KEEP => {}
                    SERIES_MERGE => self.merge_rows.push((sid, t, pos as u32, i as u32)),
                    _ => {}
                }
            }
            if picks.len() > before {
                involved.push(pos);
            }
        }
        if picks.is_empty() {
            return Ok(None);
        }
        self.gather(&involved, &picks).map(Some)
    }

    /// The output columns of the rows `picks` names: (index into `involved`, row in that
    /// chunk), where `involved` are chunk positions.
    fn gather(
        &self,
        involved: &[usize],
        picks: &[(usize, usize)],
    ) -> Result<RecordBatch, ArrowError> {
        let chunks: Vec<&ChunkSnapshot> =
            involved.iter().map(|&p| &self.snapshot.chunks[p]).collect();
        let rows = picks.len();
        let mut arrays = Vec::with_capacity(self.columns.len());
        for col in &self.columns {
            let a: ArrayRef = match col {
                OutputColumn::Time => Arc::new(TimestampNanosecondArray::from_iter_values(
                    picks.iter().map(|&(k, i)| chunks[k].time[i]),
                )),
                OutputColumn::Tag(t) => {
                    self.tag_array(*t, picks.iter().map(|&(k, i)| chunks[k].series[i]))?
                }
                OutputColumn::Field(f, ty) => {
                    if chunks.iter().all(|c| c.fields[*f].is_none()) {
                        new_null_array(ty, rows)
                    } else {
                        // A chunk without the column reads its one null instead.
                        let null = new_null_array(ty, 1);
                        let sources: Vec<&dyn Array> = chunks
                            .iter()
                            .map(|c| c.fields[*f].as_deref().unwrap_or(null.as_ref()))
                            .collect();
                        let at: Vec<(usize, usize)> = picks
                            .iter()
                            .map(|&(k, i)| match chunks[k].fields[*f] {
                                Some(_) => (k, i),
                                None => (k, 0),
                            })
                            .collect();
                        interleave(&sources, &at)?
                    }
                }
            };
            arrays.push(a);
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
    }

    /// Builds the output columns of `chunk`, keeping the rows `mask` selects (all if none).
    fn build(
        &self,
        chunk: &ChunkSnapshot,
        mask: Option<&BooleanArray>,
        rows: usize,
    ) -> Result<RecordBatch, ArrowError> {
        let filter = mask.map(|m| FilterBuilder::new(m).optimize().build());
        let pick = |a: ArrayRef| -> Result<ArrayRef, ArrowError> {
            match &filter {
                Some(f) => f.filter(&a),
                None => Ok(a),
            }
        };
        let series = match &filter {
            Some(_)
                if self
                    .columns
                    .iter()
                    .any(|c| matches!(c, OutputColumn::Tag(_))) =>
            {
                let s = pick(Arc::new(UInt32Array::new(chunk.series.clone(), None)))?;
                let s = s
                    .as_any()
                    .downcast_ref::<UInt32Array>()
                    .expect("filtering keeps the type")
                    .values()
                    .clone();
                Some(s)
            }
            Some(_) => None,
            None => Some(chunk.series.clone()),
        };
        let mut arrays = Vec::with_capacity(self.columns.len());
        for col in &self.columns {
            let a: ArrayRef = match col {
                OutputColumn::Time => pick(Arc::new(TimestampNanosecondArray::new(
                    chunk.time.clone(),
                    None,
                )))?,
                OutputColumn::Field(i, ty) => match &chunk.fields[*i] {
                    Some(a) => pick(a.clone())?,
                    None => new_null_array(ty, rows),
                },
                OutputColumn::Tag(i) => {
                    let series = series.as_ref().expect("computed when a tag is projected");
                    self.tag_array(*i, series.iter().copied())?
                }
            };
            arrays.push(a);
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
    }

    /// A tag column for rows of the given series: string views gathered from the tag's
    /// dictionary (strings of up to 12 bytes live in the view itself; longer ones stay in
    /// the dictionary's buffer, shared).
    fn tag_array(
        &self,
        tag: usize,
        series: impl ExactSizeIterator<Item = u32>,
    ) -> Result<ArrayRef, ArrowError> {
        let t = &self.snapshot.tags[tag];
        let codes = &t.series_codes;
        let keys: Vec<i32> = series.map(|s| codes[s as usize]).collect();
        let nulls = keys
            .contains(&-1)
            .then(|| NullBuffer::from_iter(keys.iter().map(|&k| k >= 0)));
        if t.values.is_empty() {
            // No series has this tag here: every row is null.
            return Ok(new_null_array(&DataType::Utf8View, keys.len()));
        }
        let keys = UInt32Array::new(
            ScalarBuffer::from(
                keys.into_iter()
                    .map(|k| k.max(0) as u32)
                    .collect::<Vec<_>>(),
            ),
            nulls,
        );
        take(t.values.as_ref(), &keys, None)
    }

    /// Merges the collected rows of series that repeat a point: one row per (series, time), each field
    /// taking its value from the latest row that has one.
    fn merge(&mut self) -> Result<Vec<RecordBatch>, ArrowError> {
        let mut rows = std::mem::take(&mut self.merge_rows);
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // Arrival order within a point is the order of (chunk, row): chunks are in row order.
        rows.sort_unstable();
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        for i in 1..=rows.len() {
            if i == rows.len() || rows[i].0 != rows[start].0 || rows[i].1 != rows[start].1 {
                groups.push((start, i));
                start = i;
            }
        }
        let chunks = &self.snapshot.chunks;
        let mut out = Vec::new();
        for part in groups.chunks(MERGE_BATCH_ROWS) {
            let mut arrays = Vec::with_capacity(self.columns.len());
            for col in &self.columns {
                let a: ArrayRef = match col {
                    OutputColumn::Time => Arc::new(TimestampNanosecondArray::from_iter_values(
                        part.iter().map(|&(s, _)| rows[s].1),
                    )),
                    OutputColumn::Tag(i) => {
                        self.tag_array(*i, part.iter().map(|&(s, _)| rows[s].0))?
                    }
                    OutputColumn::Field(f, ty) => {
                        let sources: Vec<ArrayRef> = chunks
                            .iter()
                            .map(|c| {
                                c.fields[*f]
                                    .clone()
                                    .unwrap_or_else(|| new_null_array(ty, c.len))
                            })
                            .collect();
                        let picks: Vec<(usize, usize)> = part
                            .iter()
                            .map(|&(s, e)| {
                                let latest = rows[s..e]
                                    .iter()
                                    .rev()
                                    .find(|r| sources[r.2 as usize].is_valid(r.3 as usize))
                                    .unwrap_or(&rows[e - 1]);
                                (latest.2 as usize, latest.3 as usize)
                            })
                            .collect();
                        let refs: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
                        interleave(&refs, &picks)?
                    }
                };
                arrays.push(a);
            }
            out.push(RecordBatch::try_new_with_options(
                self.schema.clone(),
                arrays,
                &RecordBatchOptions::new().with_row_count(Some(part.len())),
            )?);
        }
        Ok(out)
    }
}

impl Iterator for SnapshotBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.dynamic.is_empty() {
            self.apply_dynamic_filters();
        }
        while self.selective && self.next_chunk < self.snapshot.chunks.len() {
            match self.gather_batch() {
                Ok(Some(b)) => return Some(Ok(b)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
        while self.next_chunk < self.snapshot.chunks.len() {
            let pos = self.next_chunk;
            self.next_chunk += 1;
            match self.chunk_batch(pos) {
                Ok(Some(b)) => return Some(Ok(b)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
        if self.merged.is_none() {
            match self.merge() {
                Ok(batches) => self.merged = Some(batches.into_iter()),
                Err(e) => {
                    self.merged = Some(Vec::new().into_iter());
                    return Some(Err(e));
                }
            }
        }
        self.merged.as_mut().and_then(Iterator::next).map(Ok)
    }
}

/// Narrows `[min, max]` by the conjuncts of `e` that compare column `time_index` with a
/// timestamp literal. Anything else is left to the filters above the scan.
pub(crate) fn narrow_time(
    e: &Arc<dyn PhysicalExpr>,
    time_index: usize,
    min: &mut i64,
    max: &mut i64,
) {
    let Some(b) = e.downcast_ref::<BinaryExpr>() else {
        return;
    };
    if *b.op() == Operator::And {
        narrow_time(b.left(), time_index, min, max);
        narrow_time(b.right(), time_index, min, max);
        return;
    }
    let is_time = |x: &Arc<dyn PhysicalExpr>| {
        x.downcast_ref::<Column>()
            .is_some_and(|c| c.index() == time_index)
    };
    let literal = |x: &Arc<dyn PhysicalExpr>| match x.downcast_ref::<Literal>()?.value() {
        ScalarValue::TimestampNanosecond(Some(t), _) => Some(*t),
        _ => None,
    };
    let (op, t) = if is_time(b.left()) {
        match literal(b.right()) {
            Some(t) => (*b.op(), t),
            None => return,
        }
    } else if is_time(b.right()) {
        match (literal(b.left()), b.op().swap()) {
            (Some(t), Some(op)) => (op, t),
            _ => return,
        }
    } else {
        return;
    };
    match op {
        Operator::Gt => *min = (*min).max(t.saturating_add(1)),
        Operator::GtEq => *min = (*min).max(t),
        Operator::Lt => *max = (*max).min(t.saturating_sub(1)),
        Operator::LtEq => *max = (*max).min(t),
        Operator::Eq => {
            *min = (*min).max(t);
            *max = (*max).min(t);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use shardline_shards::buffer::snapshot::SnapshotRequest;
    use shardline_shards::buffer::{ShardBuffer, CHUNK_LEN};
    use shardline_shards::ingest::Applier;
    use shardline_shards::precision::Precision;
    use shardline_shards::schema::{CatalogSnapshot, ColumnType, DbSchema, TableSchema};
    use shardline_shards::wal::WalBatch;

    fn catalog() -> CatalogSnapshot {
        let cols = [
            ("host", ColumnType::Tag),
            ("time", ColumnType::Time),
            ("x", ColumnType::Float),
            ("n", ColumnType::Int),
        ];
        let table = Arc::new(TableSchema::with_columns(0, "t", &cols));
        CatalogSnapshot::new(
            1,
            vec![Arc::new(DbSchema::new(0, Arc::from("db"), vec![table]))],
        )
    }

    fn load(lines: &str) -> ShardBuffer {
        let mut buf = ShardBuffer::default();
        let batch = WalBatch {
            database_id: 0,
            precision: Precision::Nanosecond,
            default_time_ns: 0,
            line_count: lines.lines().count() as u32,
            lines,
        };
        let stats = Applier::default().apply(&mut buf, &catalog(), &batch, |_| true);
        assert_eq!(stats.skipped, 0);
        buf
    }

    /// (host, time, x, n) of one row.
    type Row = (Option<String>, i64, Option<f64>, Option<i64>);

    /// Every row the scan yields, sorted.
    fn scan(buf: &ShardBuffer, time: (i64, i64), tags: Vec<(u32, Vec<String>)>) -> Vec<Row> {
        let req = SnapshotRequest {
            fields: vec![2, 3],
            tags: vec![0],
            time_min: time.0,
            time_max: time.1,
            tag_filters: tags,
        };
        let snap = buf.table(0, 0).unwrap().snapshot(&req);
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8View, true),
            Field::new("x", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        ]));
        let columns = vec![
            OutputColumn::Tag(0),
            OutputColumn::Field(0, DataType::Float64),
            OutputColumn::Field(1, DataType::Int64),
            OutputColumn::Time,
        ];
        let mut out = Vec::new();
        for b in SnapshotBatches::new(schema, columns, snap, time.0, time.1) {
            let b = b.unwrap();
            let host = arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
            let host = host
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            let x = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
            let n = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
            let t = b
                .column(3)
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .unwrap();
            for i in 0..b.num_rows() {
                out.push((
                    host.is_valid(i).then(|| host.value(i).to_string()),
                    t.value(i),
                    x.is_valid(i).then(|| x.value(i)),
                    n.is_valid(i).then(|| n.value(i)),
                ));
            }
        }
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    }

    const ALL: (i64, i64) = (i64::MIN, i64::MAX);

    #[test]
    fn repeated_points_merge_per_field_even_across_chunks() {
        // Host a's point at t=5 is written at the start, then again after a chunk boundary.
        let mut lines = String::from("t,host=a x=1,n=1i 5\nt,host=b x=7 5\n");
        for i in 0..CHUNK_LEN {
            lines.push_str(&format!("t,host=c n={i}i {}\n", 100 + i));
        }
        lines.push_str("t,host=a x=2 5\nt,host=a n=3i 6\nt,host=a n=4i 5\n");
        let buf = load(&lines);
        let rows = scan(&buf, ALL, Vec::new());
        assert_eq!(rows.len(), CHUNK_LEN + 3);
        let a: Vec<_> = rows
            .iter()
            .filter(|r| r.0.as_deref() == Some("a"))
            .collect();
        assert_eq!(
            a,
            [
                &(Some("a".into()), 5, Some(2.0), Some(4)),
                &(Some("a".into()), 6, None, Some(3))
            ]
        );
        assert!(rows.contains(&(Some("b".into()), 5, Some(7.0), None)));
    }

    #[test]
    fn time_range_and_tag_filters_select_exactly() {
        let lines: String = (0..3 * CHUNK_LEN)
            .map(|i| format!("t,host=h{} n={i}i {i}\n", i % 3))
            .collect();
        let buf = load(&lines);
        let lo = CHUNK_LEN as i64 - 10;
        let hi = CHUNK_LEN as i64 + 10;
        let rows = scan(&buf, (lo, hi), Vec::new());
        assert_eq!(rows.len(), 21);
        assert_eq!(rows.iter().map(|r| r.1).min(), Some(lo));
        assert_eq!(rows.iter().map(|r| r.1).max(), Some(hi));
        let rows = scan(&buf, (lo, hi), vec![(0, vec!["h1".into()])]);
        assert!(rows
            .iter()
            .all(|r| r.0.as_deref() == Some("h1") && r.1 % 3 == 1));
        assert_eq!(rows.len(), (lo..=hi).filter(|t| t % 3 == 1).count());
        assert_eq!(scan(&buf, ALL, Vec::new()).len(), 3 * CHUNK_LEN);
        assert!(scan(&buf, (-5, -1), Vec::new()).is_empty());
    }

    #[test]
    fn dynamic_filters_narrow_the_time_range_when_the_scan_starts() {
        use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
        let lines: String = (0..2 * CHUNK_LEN)
            .map(|i| format!("t,host=h n={i}i {i}\n"))
            .collect();
        let buf = load(&lines);
        let req = SnapshotRequest {
            fields: vec![3],
            tags: vec![],
            time_min: i64::MIN,
            time_max: i64::MAX,
            tag_filters: Vec::new(),
        };
        let snap = buf.table(0, 0).unwrap().snapshot(&req);
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        ]));
        let columns = vec![OutputColumn::Field(0, DataType::Int64), OutputColumn::Time];
        let bound = |op, t: i64| -> Arc<dyn PhysicalExpr> {
            Arc::new(BinaryExpr::new(
                Arc::new(Column::new("time", 1)),
                op,
                Arc::new(Literal::new(ScalarValue::TimestampNanosecond(
                    Some(t),
                    None,
                ))),
            ))
        };
        let from = CHUNK_LEN as i64 + 7;
        // `time >= from AND time <= from + 2`, plus a conjunct on another column (ignored).
        let filter: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(BinaryExpr::new(
                bound(Operator::GtEq, from),
                Operator::And,
                bound(Operator::LtEq, from + 2),
            )),
            Operator::And,
            Arc::new(BinaryExpr::new(
                Arc::new(Column::new("n", 0)),
                Operator::Gt,
                Arc::new(Literal::new(ScalarValue::Int64(Some(0)))),
            )),
        ));
        let batches: Vec<RecordBatch> =
            SnapshotBatches::new(schema, columns, snap, i64::MIN, i64::MAX)
                .with_dynamic_filters(vec![filter])
                .map(Result::unwrap)
                .collect();
        let times: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let t = b
                    .column(1)
                    .as_any()
                    .downcast_ref::<TimestampNanosecondArray>();
                t.unwrap().values().to_vec()
            })
            .collect();
        assert_eq!(times, vec![from, from + 1, from + 2]);
    }

    #[test]
    fn a_selective_scan_reads_what_a_full_scan_reads() {
        // 50 hosts over three chunks; h3 arrives out of order once, h7 repeats two points.
        let mut lines: String = (0..3 * CHUNK_LEN)
            .map(|i| format!("t,host=h{} n={i}i {i}\n", i % 50))
            .collect();
        lines.push_str("t,host=h7 x=1.5 7\nt,host=h3 x=2.5 4\nt,host=h7 n=-1i 57\n");
        let buf = load(&lines);
        let hosts = vec!["h3".to_string(), "h7".to_string(), "nope".to_string()];
        for range in [ALL, (4, 2 * CHUNK_LEN as i64 + 10)] {
            let req = SnapshotRequest {
                fields: vec![2, 3],
                tags: vec![0],
                time_min: range.0,
                time_max: range.1,
                tag_filters: vec![(0, hosts.clone())],
            };
            let snap = buf.table(0, 0).unwrap().snapshot(&req);
            assert!(
                snap.chunks.iter().all(|c| c.selected.is_some()),
                "two hosts of fifty are read through the index"
            );
            let want: Vec<Row> = scan(&buf, range, Vec::new())
                .into_iter()
                .filter(|r| r.0.as_deref().is_some_and(|h| hosts.iter().any(|x| x == h)))
                .collect();
            let got = scan(&buf, range, vec![(0, hosts.clone())]);
            assert_eq!(got.len(), want.len());
            assert_eq!(got, want);
            assert!(got.contains(&(Some("h7".into()), 7, Some(1.5), Some(7))));
            assert!(got.contains(&(Some("h7".into()), 57, None, Some(-1))));
            assert!(got.contains(&(Some("h3".into()), 4, Some(2.5), None)));
        }
    }

    #[test]
    fn a_missing_tag_is_null() {
        let buf = load("t n=1i 1\nt,host=a n=2i 2\n");
        let rows = scan(&buf, ALL, Vec::new());
        assert_eq!(
            rows,
            [
                (None, 1, None, Some(1)),
                (Some("a".into()), 2, None, Some(2))
            ]
        );
    }
}
