//! A reader's consistent, mostly zero-copy view of one table's buffered rows.
//!
//! A snapshot is taken on the shard's thread in one step and then read on any thread.
//! Invariants:
//! - It covers exactly the rows appended before it was taken: sealed chunks are shared by
//!   reference count, the tail chunk is copied up to the current row count. Rows appended
//!   later are never seen, so every column of a snapshot has the same length.
//! - Chunks whose time range misses the requested range are left out; rows inside kept
//!   chunks are not filtered by time here (the reader applies the exact predicate).
//! - `series_state` says per series whether its rows pass the tag predicate and whether
//!   they must go through last-write-wins merging (the series repeats a point).
//! - When the tag predicate passes few rows (at most one in [`SELECTIVE`] of the kept
//!   chunks'), every chunk carries the offsets of the rows of the passing series, found
//!   through each series' row index, and chunks with none are left out: the reader touches
//!   those rows only. Otherwise no chunk carries any, and the reader tests every row.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, LargeStringArray, StringViewArray,
    UInt64Array,
};
use arrow_buffer::ScalarBuffer;

use super::{ColumnData, TableBuffer, CHUNK_LEN};

/// What a reader wants from one table.
#[derive(Debug, Clone, Default)]
pub struct SnapshotRequest {
    /// Field column ids, in the order the reader wants them.
    pub fields: Vec<u32>,
    /// Tag column ids whose values the reader wants, in its order.
    pub tags: Vec<u32>,
    /// Inclusive time range in ns.
    pub time_min: i64,
    pub time_max: i64,
    /// Conjunction of "tag column is one of these values".
    pub tag_filters: Vec<(u32, Vec<String>)>,
}

/// A tag predicate is answered through the series' row index when the series it passes hold
/// at most one row in this many of the chunks the time range keeps. Testing a row's series
/// costs about a nanosecond; gathering a selected row's values from every column costs tens.
pub const SELECTIVE: usize = 16;

/// A series' rows are dropped (the tag predicate rejects them).
pub const SERIES_DROP: u8 = 0;
/// A series' rows are emitted as they are.
pub const SERIES_KEEP: u8 = 1;
/// A series' rows pass the tag predicate but may repeat points: they must be merged.
pub const SERIES_MERGE: u8 = 2;

/// One chunk of rows (at most [`super::CHUNK_LEN`]).
#[derive(Debug, Clone)]
pub struct ChunkSnapshot {
    pub len: usize,
    pub time_min: i64,
    pub time_max: i64,
    pub time: ScalarBuffer<i64>,
    pub series: ScalarBuffer<u32>,
    /// One per requested field; `None` when this shard holds no value of that column.
    pub fields: Vec<Option<ArrayRef>>,
    /// The offsets (ascending) of the only rows the tag predicate may pass, when it is
    /// selective (see the module docs); `None`: any row may pass.
    pub selected: Option<ScalarBuffer<u32>>,
}

impl ChunkSnapshot {
    /// The rows a reader looks at: the selected ones, or all.
    pub fn candidate_rows(&self) -> usize {
        self.selected.as_ref().map_or(self.len, |s| s.len())
    }
}

/// The values of one requested tag column.
#[derive(Debug, Clone)]
pub struct TagSnapshot {
    /// The dictionary code of this tag in each series, or -1 when the series lacks the tag.
    pub series_codes: Arc<[i32]>,
    /// The dictionary: value of each code, as string views (gathering views by code builds
    /// a tag column without copying any string).
    pub values: ArrayRef,
}

#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub chunks: Vec<ChunkSnapshot>,
    pub tags: Vec<TagSnapshot>,
    /// Per series: [`SERIES_DROP`], [`SERIES_KEEP`] or [`SERIES_MERGE`]; `None` when every
    /// series is [`SERIES_KEEP`].
    pub series_state: Option<Arc<[u8]>>,
    /// The chunks' rows, read in order, are in time order (non-decreasing).
    pub time_ordered: bool,
}

impl TableSnapshot {
    /// No rows: what a shard without the table answers.
    pub fn empty(requested_tags: usize) -> Self {
        TableSnapshot {
            chunks: Vec::new(),
            tags: (0..requested_tags)
                .map(|_| TagSnapshot {
                    series_codes: Arc::from(Vec::new()),
                    values: Arc::new(StringViewArray::from(Vec::<&str>::new())),
                })
                .collect(),
            series_state: Some(Arc::from(Vec::new())),
            time_ordered: true,
        }
    }

    /// Whether any series needs merging.
    pub fn needs_merge(&self) -> bool {
        self.series_state
            .as_ref()
            .is_some_and(|s| s.contains(&SERIES_MERGE))
    }
}

impl TableBuffer {
    /// Takes a snapshot for `req` (see the module docs).
    pub fn snapshot(&self, req: &SnapshotRequest) -> TableSnapshot {
        let kept: Vec<usize> = (0..self.chunk_times.len())
            .filter(|&c| {
                let (lo, hi) = self.chunk_times[c];
                hi >= req.time_min && lo <= req.time_max
            })
            .collect();
        let series_state = self.series_state(&req.tag_filters);
        let mut selection = match &series_state {
            Some(state) if !req.tag_filters.is_empty() => self.selection(&kept, state),
            _ => None,
        };
        let mut chunks = Vec::with_capacity(kept.len());
        for (k, &c) in kept.iter().enumerate() {
            let (lo, hi) = self.chunk_times[c];
            let selected = match &mut selection {
                Some(rows) if rows[k].is_empty() => continue,
                Some(rows) => Some(ScalarBuffer::from(std::mem::take(&mut rows[k]))),
                None => None,
            };
            let time = self.time.share(c);
            let len = time.len();
            let fields = req
                .fields
                .iter()
                .map(|&id| self.share_field(id, c))
                .collect();
            chunks.push(ChunkSnapshot {
                len,
                time_min: lo,
                time_max: hi,
                time,
                series: self.row_series.share(c),
                fields,
                selected,
            });
        }
        let tags = req.tags.iter().map(|&id| self.share_tag(id)).collect();
        TableSnapshot {
            chunks,
            tags,
            series_state,
            time_ordered: self.in_time_order(),
        }
    }

    /// Per chunk of `kept`, the offsets of the rows of the series `state` passes, ascending;
    /// `None` when those series hold too many rows for the index to be worth reading.
    fn selection(&self, kept: &[usize], state: &[u8]) -> Option<Vec<Vec<u32>>> {
        let passing: Vec<&super::Series> = self
            .series
            .iter()
            .zip(state)
            .filter(|(_, &st)| st != SERIES_DROP)
            .map(|(s, _)| s)
            .collect();
        let selected: usize = passing.iter().map(|s| s.rows.len()).sum();
        let kept_rows: usize = kept.iter().map(|&c| self.time.chunk(c).len()).sum();
        if selected.saturating_mul(SELECTIVE) > kept_rows {
            return None;
        }
        let mut out = vec![Vec::new(); kept.len()];
        // Each stretch of consecutive kept chunks is one range of row ids, searched once per
        // series.
        let mut start = 0;
        while start < kept.len() {
            let mut end = start + 1;
            while end < kept.len() && kept[end] == kept[end - 1] + 1 {
                end += 1;
            }
            let lo = kept[start] * CHUNK_LEN;
            let hi = ((kept[end - 1] + 1) * CHUNK_LEN).min(self.rows);
            for s in &passing {
                s.rows.rows_between(lo as u32, hi as u32, |r| {
                    let r = r as usize;
                    out[start + (r / CHUNK_LEN - kept[start])].push((r % CHUNK_LEN) as u32);
                });
            }
            start = end;
        }
        // Several series, or a series kept as several runs, interleave: rows go back into
        // arrival order (the order last-write-wins and time-ordered reads rely on).
        for rows in &mut out {
            rows.sort_unstable();
        }
        Some(out)
    }

    /// Chunk `c` of field column `id` as an Arrow array (shared, not copied, once sealed).
    pub(crate) fn share_field(&self, id: u32, c: usize) -> Option<ArrayRef> {
        let col = self.column(id)?;
        let nulls = col.valid.share_validity(c);
        Some(match &col.data {
            ColumnData::F64(v) => Arc::new(Float64Array::new(v.share(c), nulls)),
            ColumnData::I64(v) => Arc::new(Int64Array::new(v.share(c), nulls)),
            ColumnData::U64(v) => Arc::new(UInt64Array::new(v.share(c), nulls)),
            ColumnData::Bool(b) => Arc::new(BooleanArray::new(b.share(c).0, nulls)),
            ColumnData::Str(s) => {
                let (offsets, data) = s.share(c);
                // SAFETY: the offsets are monotonic from 0 to the data's length and every
                // value appended was valid UTF-8 (see `StrChunks`); `nulls` has one bit per
                // value because all of a column's parts grow together.
                Arc::new(unsafe { LargeStringArray::new_unchecked(offsets, data, nulls) })
            }
        })
    }

    fn share_tag(&self, id: u32) -> TagSnapshot {
        let series_codes: Vec<i32> = self
            .series
            .iter()
            .map(|s| {
                s.tag_codes
                    .iter()
                    .find(|(col, _)| *col == id)
                    .map_or(-1, |&(_, code)| code as i32)
            })
            .collect();
        let values = match self.dictionary(id) {
            Some(d) => StringViewArray::from_iter_values((0..d.len() as u32).map(|c| d.value(c))),
            None => StringViewArray::from(Vec::<&str>::new()),
        };
        TagSnapshot {
            series_codes: series_codes.into(),
            values: Arc::new(values),
        }
    }

    fn series_state(&self, filters: &[(u32, Vec<String>)]) -> Option<Arc<[u8]>> {
        if filters.is_empty() && self.repeating_series == 0 {
            return None;
        }
        // Per filter: the allowed dictionary codes (values never seen have no code).
        let allowed: Vec<(u32, Vec<u32>)> = filters
            .iter()
            .map(|(col, values)| {
                let codes = self.dictionary(*col).map_or_else(Vec::new, |d| {
                    values.iter().filter_map(|v| d.lookup(v)).collect()
                });
                (*col, codes)
            })
            .collect();
        let state: Vec<u8> = self
            .series
            .iter()
            .map(|s| {
                let pass = allowed.iter().all(|(col, codes)| {
                    s.tag_codes
                        .iter()
                        .find(|(c, _)| c == col)
                        .is_some_and(|(_, code)| codes.contains(code))
                });
                match (pass, s.rows.repeats()) {
                    (false, _) => SERIES_DROP,
                    (true, false) => SERIES_KEEP,
                    (true, true) => SERIES_MERGE,
                }
            })
            .collect();
        Some(state.into())
    }
}
