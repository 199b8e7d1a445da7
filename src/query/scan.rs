//! Turning one shard's [`TableSnapshot`] into record batches for the query engine.
//!
//! Invariants:
//! - Every row of the snapshot that passes the time range and the tag predicate is emitted
//!   exactly once, and a point (series, time) written several times is emitted once, each
//!   field holding its last written non-null value (last-write-wins per field).
//! - A chunk that needs no row filtering is emitted without copying its field or time data:
//!   the arrays share the buffer's sealed chunks. Only tag keys are built per batch.
//! - Work is done one chunk at a time as the consumer pulls, so memory stays bounded by a
//!   few chunks, except for the rows of series that need merging (collected, sorted, merged).

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, DictionaryArray, Int32Array, RecordBatch,
    RecordBatchOptions, TimestampNanosecondArray, UInt32Array,
};
use arrow::compute::{interleave, FilterBuilder};
use arrow::datatypes::{DataType, Int32Type, SchemaRef};
use arrow::error::ArrowError;
use arrow_buffer::{NullBuffer, ScalarBuffer};
use shardline_shards::buffer::snapshot::{ChunkSnapshot, TableSnapshot, SERIES_KEEP, SERIES_MERGE};

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
            snapshot,
            time_min,
            time_max,
            next_chunk: 0,
            merge_rows: Vec::new(),
            merged: None,
        }
    }

    /// The batch for chunk `pos`, or `None` when no row of it is selected.
    fn chunk_batch(&mut self, pos: usize) -> Result<Option<RecordBatch>, ArrowError> {
        let chunk = &self.snapshot.chunks[pos];
        let time_cut = chunk.time_min < self.time_min || chunk.time_max > self.time_max;
        let state = self.snapshot.series_state.clone();
        if state.is_none() && !time_cut {
            return self.build(chunk, None, chunk.len).map(Some);
        }
        let mut selected = 0;
        let mask: BooleanArray = (0..chunk.len)
            .map(|i| {
                let t = chunk.time[i];
                let in_range = t >= self.time_min && t <= self.time_max;
                let sid = chunk.series[i];
                let keep = match &state {
                    None => in_range,
                    Some(s) => {
                        let st = s[sid as usize];
                        if st == SERIES_MERGE && in_range {
                            self.merge_rows.push((sid, t, pos as u32, i as u32));
                        }
                        in_range && st == SERIES_KEEP
                    }
                };
                selected += usize::from(keep);
                Some(keep)
            })
            .collect();
        if selected == 0 {
            return Ok(None);
        }
        let chunk = &self.snapshot.chunks[pos];
        if selected == chunk.len {
            return self.build(chunk, None, chunk.len).map(Some);
        }
        self.build(chunk, Some(&mask), selected).map(Some)
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

    /// A dictionary-encoded tag column for rows of the given series.
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
        let keys = Int32Array::new(
            ScalarBuffer::from(keys.into_iter().map(|k| k.max(0)).collect::<Vec<_>>()),
            nulls,
        );
        if t.values.is_empty() {
            // Every key is null; an empty dictionary cannot be indexed, so give it one value.
            let values: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![""]));
            return Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
                keys, values,
            )?));
        }
        // SAFETY: every non-null key is a code the shard's dictionary handed out, and the
        // values array holds every code of that dictionary at the time of the snapshot.
        Ok(Arc::new(unsafe {
            DictionaryArray::<Int32Type>::new_unchecked(keys, t.values.clone())
        }))
    }

    /// Merges the collected rows of unordered series: one row per (series, time), each field
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
