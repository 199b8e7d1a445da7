//! The write buffer: one shard's not-yet-persisted rows, columnar, per table.
//!
//! Invariants:
//! - Every field column of a table has exactly `rows` rows once an append returns; a column
//!   that appears after rows exist is back-filled with nulls.
//! - A series (table + tag set) is interned once: its canonical key and its tags' dictionary
//!   codes are stored with a dense series id. A row stores only its series id, time and
//!   fields: its tag values are its series' (one hash-map probe per row, no per-tag work, and
//!   40 bytes less per row on ten tags). Readers build tag columns from the rows' series ids
//!   and the tag dictionaries.
//! - Rows are kept in arrival order; points repeated at the same series and time are all kept,
//!   and readers resolve them last-write-wins per field. Each series knows its rows and their
//!   times ([`series_rows`]), so only a series that really holds a point twice is merged, and
//!   a reader that wants a few series reads only their rows.

mod chunked;
mod column;
mod series_rows;
pub mod snapshot;

use series_rows::{Noted, SeriesRows};

pub use chunked::{Bitmap, ChunkedVec, StrChunks, CHUNK_LEN};
pub use column::{Column, ColumnData, Dictionary, Value};

use crate::schema::ColumnSchema;

use std::collections::HashMap;

use crate::lp::{FieldValue, TokenKind};
use crate::schema::{ColumnType, TableSchema};

/// Everything one shard holds in memory, keyed by (database id, table id).
#[derive(Debug)]
pub struct ShardBuffer {
    /// Unique in the process: tells readers that remember row positions (the caches) that
    /// the buffer they followed was replaced.
    id: u64,
    tables: HashMap<(u32, u32), TableBuffer>,
}

impl Default for ShardBuffer {
    fn default() -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        ShardBuffer {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            tables: HashMap::new(),
        }
    }
}

impl ShardBuffer {
    /// This buffer's process-unique id (never 0).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn table_mut(&mut self, db_id: u32, table_id: u32) -> &mut TableBuffer {
        self.tables.entry((db_id, table_id)).or_default()
    }

    pub fn table(&self, db_id: u32, table_id: u32) -> Option<&TableBuffer> {
        self.tables.get(&(db_id, table_id))
    }

    /// All tables, as ((database id, table id), buffer).
    pub fn tables(&self) -> impl Iterator<Item = (&(u32, u32), &TableBuffer)> {
        self.tables.iter()
    }

    pub fn rows(&self) -> usize {
        self.tables.values().map(|t| t.rows).sum()
    }

    /// Approximate heap bytes held (cheap: a few additions per column).
    pub fn bytes(&self) -> usize {
        self.tables.values().map(TableBuffer::bytes).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.values().all(|t| t.rows == 0)
    }

    /// Time range of every row held, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.tables
            .values()
            .filter_map(TableBuffer::time_range)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }
}

#[derive(Debug)]
enum SeriesSlot {
    One(u32),
    /// Different keys with the same 64-bit hash (never seen in practice, handled anyway).
    Many(Vec<u32>),
}

#[derive(Debug)]
struct Series {
    key: Box<[u8]>,
    /// (tag column id, dictionary code), one per tag.
    tag_codes: Box<[(u32, u32)]>,
    /// The series' rows, and whether it holds a point more than once, so that readers must
    /// merge it (see [`snapshot`]).
    rows: SeriesRows,
}

/// One row to append, already parsed and resolved.
#[derive(Debug, Clone)]
pub struct RowInput<'l, F> {
    pub series_hash: u64,
    /// Canonical series key ([`crate::series::SeriesKeyBuf`]): measurement, then each tag's
    /// key and value, sorted by key, each followed by a 0 byte.
    pub series_key: &'l [u8],
    /// The column id of each tag, in the key's order.
    pub tag_columns: &'l [u32],
    /// (column id, value) of each field.
    pub fields: F,
    pub time_ns: i64,
}

/// One table's rows in one shard.
#[derive(Debug, Default)]
pub struct TableBuffer {
    /// Field columns by column id; `None` for tags, `time`, and fields this shard has not seen.
    columns: Vec<Option<Column>>,
    /// Tag dictionaries by column id; `None` for other columns.
    dictionaries: Vec<Option<Dictionary>>,
    time: ChunkedVec<i64>,
    row_series: ChunkedVec<u32>,
    rows: usize,
    series_index: HashMap<u64, SeriesSlot, crate::bytes::PassThrough>,
    series: Vec<Series>,
    /// How many series repeat a point (see [`SeriesRows::repeats`]).
    repeating_series: usize,
    /// (min, max) time of each chunk of rows, for pruning by time.
    chunk_times: Vec<(i64, i64)>,
    /// Some row was appended with an earlier time than the row before it. While this is
    /// false, reading the rows in order reads them in time order, and a query need not sort.
    out_of_time_order: bool,
    /// Heap bytes of `series` and `series_index`, kept as series are added (summing them on
    /// every write would cost a pass over all series).
    series_bytes: usize,
}

impl TableBuffer {
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn time(&self) -> &ChunkedVec<i64> {
        &self.time
    }

    /// The series id of each row.
    pub fn row_series(&self) -> &ChunkedVec<u32> {
        &self.row_series
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The field column with this id, if this shard holds any value of it.
    pub fn column(&self, id: u32) -> Option<&Column> {
        self.columns.get(id as usize).and_then(Option::as_ref)
    }

    /// The dictionary of the tag column with this id, if this shard holds any value of it.
    pub fn dictionary(&self, id: u32) -> Option<&Dictionary> {
        self.dictionaries.get(id as usize).and_then(Option::as_ref)
    }

    /// The dictionary code of tag column `col` in series `series`, if the series has that tag.
    pub fn tag_code(&self, series: u32, col: u32) -> Option<u32> {
        self.series[series as usize]
            .tag_codes
            .iter()
            .find(|(c, _)| *c == col)
            .map(|&(_, code)| code)
    }

    /// The value of `column` in `row`.
    pub fn value(&self, row: usize, column: &ColumnSchema) -> Value<'_> {
        match column.ty {
            ColumnType::Tag => {
                let sid = self.row_series.get(row);
                match (self.tag_code(sid, column.id), self.dictionary(column.id)) {
                    (Some(code), Some(d)) => Value::Tag(d.value(code)),
                    _ => Value::Null,
                }
            }
            ColumnType::Time => Value::I64(self.time.get(row)),
            _ => self.column(column.id).map_or(Value::Null, |c| c.get(row)),
        }
    }

    pub fn bytes(&self) -> usize {
        self.columns
            .iter()
            .flatten()
            .map(Column::bytes)
            .sum::<usize>()
            + self
                .dictionaries
                .iter()
                .flatten()
                .map(Dictionary::bytes)
                .sum::<usize>()
            + self.time.bytes()
            + self.row_series.bytes()
            + self.series_bytes
            // Each series keeps its row ids (see `series_rows`), in vectors that grow by
            // doubling: four bytes a row and up to half as much again unused.
            + self.rows * 6
    }

    /// The canonical key of series `series`.
    pub fn series_key(&self, series: u32) -> &[u8] {
        &self.series[series as usize].key
    }

    /// Whether the rows, read in the order they were appended, are in time order.
    pub fn in_time_order(&self) -> bool {
        !self.out_of_time_order
    }

    /// Time range of the rows held, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.chunk_times
            .iter()
            .copied()
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    fn column_mut(&mut self, schema: &TableSchema, id: u32) -> &mut Column {
        let i = id as usize;
        if self.columns.len() <= i {
            self.columns.resize_with(i + 1, || None);
        }
        let rows = self.rows;
        self.columns[i].get_or_insert_with(|| {
            let data = match schema.columns[i].ty {
                ColumnType::Float => ColumnData::F64(ChunkedVec::default()),
                ColumnType::Int => ColumnData::I64(ChunkedVec::default()),
                ColumnType::UInt => ColumnData::U64(ChunkedVec::default()),
                ColumnType::Bool => ColumnData::Bool(Bitmap::default()),
                ColumnType::String => ColumnData::Str(StrChunks::default()),
                ColumnType::Tag | ColumnType::Time => {
                    unreachable!("only fields are stored as columns")
                }
            };
            let mut c = Column::new(data);
            c.pad_to(rows);
            c
        })
    }

    fn dictionary_mut(&mut self, id: u32) -> &mut Dictionary {
        let i = id as usize;
        if self.dictionaries.len() <= i {
            self.dictionaries.resize_with(i + 1, || None);
        }
        self.dictionaries[i].get_or_insert_with(Dictionary::default)
    }

    fn series_id<F>(&mut self, schema: &TableSchema, row: &RowInput<'_, F>) -> u32 {
        let found = match self.series_index.get(&row.series_hash) {
            Some(SeriesSlot::One(id)) if *self.series[*id as usize].key == *row.series_key => {
                Some(*id)
            }
            Some(SeriesSlot::Many(ids)) => ids
                .iter()
                .copied()
                .find(|&id| *self.series[id as usize].key == *row.series_key),
            _ => None,
        };
        if let Some(id) = found {
            return id;
        }
        // A new series: its tag values come from the canonical key, already unescaped.
        let mut tag_codes = Vec::with_capacity(row.tag_columns.len());
        let mut parts = row.series_key.split(|&b| b == 0).skip(1);
        for &col in row.tag_columns {
            let _key = parts.next();
            let value = parts.next().unwrap_or_default();
            let value = std::str::from_utf8(value).unwrap_or_default();
            debug_assert_eq!(schema.columns[col as usize].ty, ColumnType::Tag);
            let code = self.dictionary_mut(col).code(value);
            tag_codes.push((col, code));
        }
        let id = self.series.len() as u32;
        // Key, tag codes, the series record and its index entry; times grow a little more.
        self.series_bytes += row.series_key.len() + tag_codes.len() * 8 + 96;
        self.series.push(Series {
            key: row.series_key.into(),
            tag_codes: tag_codes.into(),
            rows: SeriesRows::default(),
        });
        match self.series_index.get_mut(&row.series_hash) {
            None => {
                self.series_index
                    .insert(row.series_hash, SeriesSlot::One(id));
            }
            Some(slot) => {
                let mut ids = match slot {
                    SeriesSlot::One(x) => vec![*x],
                    SeriesSlot::Many(v) => std::mem::take(v),
                };
                ids.push(id);
                *slot = SeriesSlot::Many(ids);
            }
        }
        id
    }

    /// Appends one row.
    #[inline]
    pub fn append<'a, F>(&mut self, schema: &TableSchema, row: RowInput<'_, F>)
    where
        F: Iterator<Item = (u32, FieldValue<'a>)>,
    {
        let sid = self.series_id(schema, &row);
        for (col, value) in row.fields {
            let c = self.column_mut(schema, col);
            match (&mut c.data, &value) {
                (ColumnData::F64(v), FieldValue::F64(x)) => v.push(*x),
                (ColumnData::I64(v), FieldValue::I64(x)) => v.push(*x),
                (ColumnData::U64(v), FieldValue::U64(x)) => v.push(*x),
                (ColumnData::Bool(v), FieldValue::Bool(x)) => v.push(*x),
                (ColumnData::Str(s), FieldValue::Str(t)) => s.push_with(|data| {
                    if t.escaped {
                        data.extend(t.unescaped_bytes(TokenKind::Str));
                    } else {
                        data.extend_from_slice(t.raw.as_bytes());
                    }
                }),
                _ => unreachable!("resolver checked the field's type against its column"),
            }
            c.valid.push(true);
        }
        let t = row.time_ns;
        let series = &mut self.series[sid as usize];
        let repeated_before = series.rows.repeats();
        // Row ids fit in 32 bits: a buffer is persisted long before it holds 2^32 rows.
        if series.rows.push(self.rows as u32, t, &self.time) == Noted::Repeated && !repeated_before
        {
            self.repeating_series += 1;
        }
        // While the rows are in time order, the last chunk's maximum is the last row's time.
        if let Some(&(_, last)) = self.chunk_times.last() {
            self.out_of_time_order |= t < last;
        }
        if self.rows.is_multiple_of(CHUNK_LEN) {
            self.chunk_times.push((t, t));
        } else {
            let range = self
                .chunk_times
                .last_mut()
                .expect("pushed at the chunk's first row");
            range.0 = range.0.min(t);
            range.1 = range.1.max(t);
        }
        self.time.push(t);
        self.row_series.push(sid);
        self.rows += 1;
        let rows = self.rows;
        for c in self.columns.iter_mut().flatten() {
            if c.len() < rows {
                c.push_null();
            }
        }
    }
}

#[cfg(test)]
mod tests;
