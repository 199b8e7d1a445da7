//! The last-value cache of one table on one shard: for each distinct combination of key
//! column values (an entry), the `count` newest rows' value columns.
//!
//! Layout: entries are dense ids ([`super::entries`]), with an index per key column, so a
//! predicate on any key column is a lookup. Values sit in slots, `count` per entry (`entry * count + i`), newest first by
//! the row's time, stored per column like the buffer (so building Arrow arrays is a gather).
//!
//! Invariants:
//! - Within an entry, slots `0..len` hold distinct times in descending order.
//! - Feeding a row allocates only for a new entry (its key) and for string values that
//!   differ from the ones they replace.
//! - Entries emptied by expiry stay (a later row refills them) until they are more than half
//!   of all entries, when the cache is rebuilt without them.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions, TimestampNanosecondArray};
use arrow_schema::{Field, Schema, SchemaRef};

use super::entries::Entries;
use super::files::FileRows;
use super::gather;
use super::{output_type, CacheError, KeyFilter, LastCacheDef};
use crate::buffer::{TableBuffer, Value};
use crate::schema::{ColumnType, TableSchema};

/// Emptied entries are compacted away only past this many (small caches never bother).
const COMPACT_MIN_EMPTY: usize = 1024;

/// One column of an answer: where it comes from, its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    pub source: Source,
    pub name: Arc<str>,
    pub ty: ColumnType,
}

/// Where an answer's column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The key column at this position.
    Key(usize),
    /// The value column with this column id.
    Value(u32),
    Time,
}

/// The columns a last-value cache answers with, in order: its key columns, its value
/// columns, then `time`. The coordinator and the shards both derive them from the
/// definition and the table, so their schemas agree.
pub fn output_columns(def: &LastCacheDef, table: &TableSchema) -> Vec<OutputColumn> {
    let col = |id: u32| &table.columns[id as usize];
    let mut out: Vec<OutputColumn> = def
        .key_columns
        .iter()
        .enumerate()
        .map(|(i, &id)| OutputColumn {
            source: Source::Key(i),
            name: col(id).name.clone(),
            ty: col(id).ty,
        })
        .collect();
    out.extend(
        def.value_columns_of(table)
            .into_iter()
            .map(|id| OutputColumn {
                source: Source::Value(id),
                name: col(id).name.clone(),
                ty: col(id).ty,
            }),
    );
    out.push(OutputColumn {
        source: Source::Time,
        name: Arc::from(crate::schema::TIME_COLUMN),
        ty: ColumnType::Time,
    });
    out
}

/// The Arrow schema of [`output_columns`].
pub fn output_schema(columns: &[OutputColumn]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name.as_ref(), output_type(c.ty), c.ty != ColumnType::Time))
            .collect::<Vec<_>>(),
    ))
}

#[derive(Debug)]
enum Slots {
    F64(Vec<f64>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    Str(Vec<Option<Arc<str>>>),
}

/// One value column's slots.
#[derive(Debug)]
struct ValueColumn {
    id: u32,
    valid: Vec<bool>,
    slots: Slots,
}

impl ValueColumn {
    fn new(id: u32, ty: ColumnType, len: usize) -> Self {
        let slots = match ty {
            ColumnType::Float => Slots::F64(vec![0.0; len]),
            ColumnType::Int => Slots::I64(vec![0; len]),
            ColumnType::UInt => Slots::U64(vec![0; len]),
            ColumnType::Bool => Slots::Bool(vec![false; len]),
            ColumnType::Tag | ColumnType::String => Slots::Str(vec![None; len]),
            ColumnType::Time => unreachable!("time is kept apart from the value columns"),
        };
        ValueColumn {
            id,
            valid: vec![false; len],
            slots,
        }
    }

    fn grow(&mut self, n: usize) {
        let len = self.valid.len() + n;
        self.valid.resize(len, false);
        match &mut self.slots {
            Slots::F64(v) => v.resize(len, 0.0),
            Slots::I64(v) => v.resize(len, 0),
            Slots::U64(v) => v.resize(len, 0),
            Slots::Bool(v) => v.resize(len, false),
            Slots::Str(v) => v.resize(len, None),
        }
    }

    /// Stores `v` in slot `i` (a value of another type than the column's reads as null).
    fn set(&mut self, i: usize, v: Value<'_>) {
        let ok = match (&mut self.slots, v) {
            (Slots::F64(s), Value::F64(x)) => {
                s[i] = x;
                true
            }
            (Slots::I64(s), Value::I64(x)) => {
                s[i] = x;
                true
            }
            (Slots::U64(s), Value::U64(x)) => {
                s[i] = x;
                true
            }
            (Slots::Bool(s), Value::Bool(x)) => {
                s[i] = x;
                true
            }
            (Slots::Str(s), Value::Str(x) | Value::Tag(x)) => {
                if s[i].as_deref() != Some(x) {
                    s[i] = Some(Arc::from(x));
                }
                true
            }
            _ => false,
        };
        self.valid[i] = ok;
    }

    fn copy(&mut self, from: usize, to: usize) {
        self.valid[to] = self.valid[from];
        match &mut self.slots {
            Slots::F64(s) => s[to] = s[from],
            Slots::I64(s) => s[to] = s[from],
            Slots::U64(s) => s[to] = s[from],
            Slots::Bool(s) => s[to] = s[from],
            Slots::Str(s) => s[to] = s[from].clone(),
        }
    }

    /// Keeps only the slots in `slots`, in that order.
    fn keep(&mut self, slots: &[usize]) {
        self.valid = slots.iter().map(|&i| self.valid[i]).collect();
        match &mut self.slots {
            Slots::F64(s) => *s = slots.iter().map(|&i| s[i]).collect(),
            Slots::I64(s) => *s = slots.iter().map(|&i| s[i]).collect(),
            Slots::U64(s) => *s = slots.iter().map(|&i| s[i]).collect(),
            Slots::Bool(s) => *s = slots.iter().map(|&i| s[i]).collect(),
            Slots::Str(s) => *s = slots.iter().map(|&i| s[i].clone()).collect(),
        }
    }

    /// Estimated bytes held: live slots (not spare capacity), strings counted per slot.
    fn memory_bytes(&self) -> usize {
        let slots = match &self.slots {
            Slots::F64(v) => v.len() * 8,
            Slots::I64(v) => v.len() * 8,
            Slots::U64(v) => v.len() * 8,
            Slots::Bool(v) => v.len(),
            Slots::Str(v) => {
                v.len() * size_of::<Option<Arc<str>>>()
                    + v.iter()
                        .flatten()
                        .map(|s| s.len() + 2 * size_of::<usize>())
                        .sum::<usize>()
            }
        };
        self.valid.len() + slots
    }

    fn array(&self, picks: &[usize]) -> Result<ArrayRef, CacheError> {
        let valid = &self.valid;
        Ok(match &self.slots {
            Slots::F64(s) => gather::primitive::<Float64Type>(s, valid, picks),
            Slots::I64(s) => gather::primitive::<Int64Type>(s, valid, picks),
            Slots::U64(s) => gather::primitive::<UInt64Type>(s, valid, picks),
            Slots::Bool(s) => gather::boolean(s, valid, picks),
            Slots::Str(s) => {
                gather::strings(picks.iter().map(|&i| s[i].as_deref().filter(|_| valid[i])))?
            }
        })
    }
}

/// What a row does to the values of a row of the same time that an entry already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SamePoint {
    /// A newer write: the fields it has replace the held ones.
    Overwrite,
    /// An older write (from a file): it only fills fields the held row lacks.
    FillIn,
}

/// See the module documentation.
#[derive(Debug)]
pub struct LastCache {
    def: Arc<LastCacheDef>,
    entries: Entries,
    /// Per entry: how many of its slots hold values.
    lens: Vec<u8>,
    empty_entries: usize,
    times: Vec<i64>,
    arrived: Vec<i64>,
    values: Vec<ValueColumn>,
    /// How many columns the table had when value columns were last added.
    columns_seen: usize,
}

impl LastCache {
    pub fn new(def: Arc<LastCacheDef>, table: &TableSchema) -> Self {
        let mut c = LastCache {
            entries: Entries::new(def.key_columns.clone(), table),
            def,
            lens: Vec::new(),
            empty_entries: 0,
            times: Vec::new(),
            arrived: Vec::new(),
            values: Vec::new(),
            columns_seen: 0,
        };
        c.add_columns(table);
        c
    }

    pub fn def(&self) -> &Arc<LastCacheDef> {
        &self.def
    }

    /// Entries holding at least one value (expired or not).
    pub fn entries(&self) -> usize {
        self.lens.len() - self.empty_entries
    }

    /// Entries, empty ones included (what [`Self::memory_bytes`] is spread over).
    pub(crate) fn entry_slots(&self) -> usize {
        self.lens.len()
    }

    /// Estimated bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.entries.memory_bytes()
            + self.lens.len()
            + (self.times.len() + self.arrived.len()) * size_of::<i64>()
            + self
                .values
                .iter()
                .map(ValueColumn::memory_bytes)
                .sum::<usize>()
    }

    /// When each entry's newest value arrived (`i64::MIN` for an empty entry).
    pub(crate) fn newest_arrivals(&self) -> impl Iterator<Item = i64> + '_ {
        let count = self.def.count;
        self.lens.iter().enumerate().map(move |(e, &len)| {
            self.arrived[e * count..][..len as usize]
                .iter()
                .copied()
                .max()
                .unwrap_or(i64::MIN)
        })
    }

    /// Drops the entries `drop` marks, then compacts.
    pub(crate) fn drop_entries(&mut self, drop: &[bool]) {
        for (e, _) in drop.iter().enumerate().filter(|(_, &d)| d) {
            if self.lens[e] > 0 {
                self.lens[e] = 0;
                self.empty_entries += 1;
            }
        }
        self.compact();
    }

    /// Adds the value columns the table gained since (all of them the first time).
    fn add_columns(&mut self, table: &TableSchema) {
        let slots = self.times.len();
        for id in self.def.value_columns_of(table) {
            if !self.values.iter().any(|v| v.id == id) {
                let ty = table.columns[id as usize].ty;
                self.values.push(ValueColumn::new(id, ty, slots));
            }
        }
        self.columns_seen = table.columns.len();
    }

    /// Feeds rows `rows` of a table's buffer (the buffer with id `buffer_id`).
    pub(crate) fn feed(
        &mut self,
        table: &TableSchema,
        tb: &TableBuffer,
        buffer_id: u64,
        rows: Range<usize>,
        arrived: i64,
    ) {
        self.follow_columns(table);
        for row in rows {
            let entry = self.entries.entry_of(table, tb, buffer_id, row);
            self.insert(
                entry,
                tb.time().get(row),
                arrived,
                SamePoint::Overwrite,
                |id| tb.value(row, &table.columns[id as usize]),
            );
        }
    }

    /// Feeds rows `rows` of a file's batch: older writes than any fed before, so they only
    /// fill what is missing, and left out when older than `ttl` (see [`super::files`]).
    pub(crate) fn feed_file(
        &mut self,
        table: &TableSchema,
        file: &FileRows<'_>,
        rows: Range<usize>,
        arrived: i64,
    ) {
        self.follow_columns(table);
        let cutoff = arrived.saturating_sub(self.def.ttl_ns);
        for row in rows {
            let time = file.time(row);
            if time <= cutoff {
                continue;
            }
            let entry = self.entries.entry_of_values(|id| file.value(row, id));
            self.insert(entry, time, arrived, SamePoint::FillIn, |id| {
                file.value(row, id)
            });
        }
    }

    /// Adds the value columns `table` gained since they were last looked at.
    fn follow_columns(&mut self, table: &TableSchema) {
        if table.columns.len() > self.columns_seen {
            self.add_columns(table);
        }
    }

    /// Makes room for a new entry's slots.
    fn add_entry(&mut self) {
        self.lens.push(0);
        self.empty_entries += 1;
        let count = self.def.count;
        self.times.resize(self.times.len() + count, i64::MIN);
        self.arrived.resize(self.arrived.len() + count, i64::MIN);
        for v in &mut self.values {
            v.grow(count);
        }
    }

    /// Puts a row's values (read through `value_of(column id)`) into an entry (with whether
    /// it is new, as the entry lookup says), if it is among the entry's `count` newest;
    /// `same_point` says what it does to a row of the same time already there.
    fn insert<'v>(
        &mut self,
        (entry, new): (u32, bool),
        time: i64,
        arrived: i64,
        same_point: SamePoint,
        value_of: impl Fn(u32) -> Value<'v>,
    ) {
        if new {
            self.add_entry();
        }
        // Expired values make room: a new row never loses to one the cache no longer serves.
        let oldest = self.arrived[entry as usize * self.def.count..]
            [..self.lens[entry as usize] as usize]
            .iter()
            .min()
            .copied();
        let cutoff = arrived.saturating_sub(self.def.ttl_ns);
        if oldest.is_some_and(|o| o <= cutoff) {
            self.trim(entry as usize, cutoff);
        }
        let count = self.def.count;
        let base = entry as usize * count;
        let len = self.lens[entry as usize] as usize;
        let mut p = 0;
        while p < len && self.times[base + p] > time {
            p += 1;
        }
        if p < len && self.times[base + p] == time {
            // The same point again: a newer write's fields win, the others stay; an older
            // write's fill only the fields the point lacks.
            let slot = base + p;
            self.arrived[slot] = self.arrived[slot].max(arrived);
            for v in &mut self.values {
                let x = value_of(v.id);
                let wanted = match same_point {
                    SamePoint::Overwrite => true,
                    SamePoint::FillIn => !v.valid[slot],
                };
                if x != Value::Null && wanted {
                    v.set(slot, x);
                }
            }
            return;
        }
        if p >= count {
            return;
        }
        let new_len = (len + 1).min(count);
        for i in (p + 1..new_len).rev() {
            self.times[base + i] = self.times[base + i - 1];
            self.arrived[base + i] = self.arrived[base + i - 1];
            for v in &mut self.values {
                v.copy(base + i - 1, base + i);
            }
        }
        let slot = base + p;
        self.times[slot] = time;
        self.arrived[slot] = arrived;
        for v in &mut self.values {
            v.set(slot, value_of(v.id));
        }
        if len == 0 {
            self.empty_entries -= 1;
        }
        self.lens[entry as usize] = new_len as u8;
    }

    /// Drops values that arrived `ttl` or longer before `now_ns`.
    pub(crate) fn evict(&mut self, now_ns: i64) {
        let cutoff = now_ns.saturating_sub(self.def.ttl_ns);
        for e in 0..self.lens.len() {
            self.trim(e, cutoff);
        }
        if self.empty_entries >= COMPACT_MIN_EMPTY && self.empty_entries * 2 > self.lens.len() {
            self.compact();
        }
    }

    /// Drops entry `e`'s values that arrived at or before `cutoff`.
    fn trim(&mut self, e: usize, cutoff: i64) {
        let len = self.lens[e] as usize;
        let base = e * self.def.count;
        let mut kept = 0;
        for i in 0..len {
            if self.arrived[base + i] > cutoff {
                if kept != i {
                    self.times[base + kept] = self.times[base + i];
                    self.arrived[base + kept] = self.arrived[base + i];
                    for v in &mut self.values {
                        v.copy(base + i, base + kept);
                    }
                }
                kept += 1;
            }
        }
        if kept == 0 && len > 0 {
            self.empty_entries += 1;
        }
        self.lens[e] = kept as u8;
    }

    /// Rebuilds the cache without its empty entries.
    fn compact(&mut self) {
        let count = self.def.count;
        let keep: Vec<usize> = (0..self.lens.len()).filter(|&e| self.lens[e] > 0).collect();
        self.entries.retain(&keep);
        let slots: Vec<usize> = keep
            .iter()
            .flat_map(|&e| e * count..(e + 1) * count)
            .collect();
        self.lens = keep.iter().map(|&e| self.lens[e]).collect();
        self.times = slots.iter().map(|&i| self.times[i]).collect();
        self.arrived = slots.iter().map(|&i| self.arrived[i]).collect();
        for v in &mut self.values {
            v.keep(&slots);
        }
        self.empty_entries = 0;
    }

    /// The cache's rows for a query: entries matching `filters`, values that arrived within
    /// the ttl before `now_ns`, newest first within an entry; columns `projection` of
    /// [`output_columns`] (all without one).
    pub fn query(
        &self,
        table: &TableSchema,
        filters: &[KeyFilter],
        projection: Option<&[usize]>,
        now_ns: i64,
    ) -> Result<RecordBatch, CacheError> {
        let columns = output_columns(&self.def, table);
        let picked: Vec<OutputColumn> = match projection {
            Some(p) => p.iter().map(|&i| columns[i].clone()).collect(),
            None => columns,
        };
        let cutoff = now_ns.saturating_sub(self.def.ttl_ns);
        let count = self.def.count;
        let mut rows: Vec<(u32, usize)> = Vec::new();
        let entries = self
            .entries
            .matching(filters)
            .unwrap_or_else(|| (0..self.lens.len() as u32).collect());
        for e in entries {
            let base = e as usize * count;
            for i in 0..self.lens[e as usize] as usize {
                if self.arrived[base + i] > cutoff {
                    rows.push((e, base + i));
                }
            }
        }
        let slots: Vec<usize> = rows.iter().map(|&(_, s)| s).collect();
        let row_entries: Vec<u32> = rows.iter().map(|&(e, _)| e).collect();
        let arrays = picked
            .iter()
            .map(|c| match c.source {
                Source::Key(k) => self.entries.array(k, &row_entries),
                Source::Time => Ok(Arc::new(TimestampNanosecondArray::from_iter_values(
                    slots.iter().map(|&s| self.times[s]),
                )) as ArrayRef),
                Source::Value(id) => match self.values.iter().find(|v| v.id == id) {
                    Some(v) => v.array(&slots),
                    None => Ok(arrow_array::new_null_array(&output_type(c.ty), rows.len())),
                },
            })
            .collect::<Result<Vec<ArrayRef>, CacheError>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        RecordBatch::try_new_with_options(output_schema(&picked), arrays, &options)
            .map_err(|e| CacheError::Arrow(e.to_string()))
    }
}
