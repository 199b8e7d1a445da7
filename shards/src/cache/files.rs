//! Rows read back from the shard's Parquet files, for caches that need more than the buffer
//! holds: a cache created over a table whose rows were already persisted, and every cache
//! rebuilt at a restart (the WAL replays only what the last snapshot did not persist).
//!
//! Invariants:
//! - Rows from files are older writes than any the buffer holds, so they never replace a
//!   value a cache already has for the same point; they only fill the fields it lacks. The
//!   caller feeds files newest first (last-write-wins order), so the same holds between
//!   files.
//! - A file's row stands in for a value that arrived when the row was written, which a file
//!   does not record: its time is taken for it. A row older than a cache's `ttl`
//!   (last-value) or `max_age` (distinct-value) is therefore left out, as it would have
//!   expired had the server kept running; the rest arrive at the backfill's `now_ns`.
//! - Batches come in [`read_schema`]'s shape (the reader casts to it), so reading a value
//!   is a match on the column's type and an array read.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType, UInt64Type};
use arrow_array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_array::{TimestampNanosecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::{output_type, CacheError};
use crate::buffer::Value;
use crate::schema::{ColumnType, TableSchema};

/// The shape to read a table's files in for caches over `columns` (ids, `time` left out):
/// those columns, by name, in their answer types, then `time`.
pub fn read_schema(table: &TableSchema, columns: &[u32]) -> SchemaRef {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|&id| &table.columns[id as usize])
        .filter(|c| c.ty != ColumnType::Time)
        .map(|c| Field::new(c.name.as_ref(), output_type(c.ty), true))
        .collect();
    fields.push(Field::new(
        "time",
        DataType::Timestamp(TimeUnit::Nanosecond, None),
        false,
    ));
    Arc::new(Schema::new(fields))
}

enum FileColumn<'a> {
    Tag(&'a StringArray),
    Str(&'a StringArray),
    F64(&'a Float64Array),
    I64(&'a Int64Array),
    U64(&'a UInt64Array),
    Bool(&'a BooleanArray),
}

/// A batch read for caches, readable as buffered rows are: a value per (row, column id).
pub(crate) struct FileRows<'a> {
    times: &'a TimestampNanosecondArray,
    /// By column id; `None` for columns not read.
    columns: Vec<Option<FileColumn<'a>>>,
}

impl<'a> FileRows<'a> {
    /// `batch` must be in [`read_schema`]'s shape for some columns of `table`.
    pub(crate) fn new(table: &TableSchema, batch: &'a RecordBatch) -> Result<Self, CacheError> {
        let wrong = |what: &str| CacheError::Arrow(format!("a file batch for the caches: {what}"));
        let times = batch
            .column_by_name("time")
            .and_then(|t| t.as_primitive_opt::<TimestampNanosecondType>())
            .ok_or_else(|| wrong("no Timestamp(ns) time column"))?;
        let mut columns: Vec<Option<FileColumn<'a>>> =
            (0..table.columns.len()).map(|_| None).collect();
        for (field, array) in batch.schema_ref().fields().iter().zip(batch.columns()) {
            let Some(c) = table.column(field.name()) else {
                continue;
            };
            let array: &'a dyn Array = array.as_ref();
            let column = match c.ty {
                ColumnType::Time => continue,
                ColumnType::Tag => array.as_string_opt::<i32>().map(FileColumn::Tag),
                ColumnType::String => array.as_string_opt::<i32>().map(FileColumn::Str),
                ColumnType::Float => array.as_primitive_opt::<Float64Type>().map(FileColumn::F64),
                ColumnType::Int => array.as_primitive_opt::<Int64Type>().map(FileColumn::I64),
                ColumnType::UInt => array.as_primitive_opt::<UInt64Type>().map(FileColumn::U64),
                ColumnType::Bool => array.as_boolean_opt().map(FileColumn::Bool),
            };
            columns[c.id as usize] =
                Some(column.ok_or_else(|| wrong(&format!("column {} of another type", c.name)))?);
        }
        Ok(FileRows { times, columns })
    }

    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    pub(crate) fn time(&self, row: usize) -> i64 {
        self.times.value(row)
    }

    /// Row `row`'s value of column `id` (null for a column not read).
    pub(crate) fn value(&self, row: usize, id: u32) -> Value<'a> {
        let Some(Some(c)) = self.columns.get(id as usize) else {
            return Value::Null;
        };
        let valid = |a: &dyn Array| a.is_valid(row);
        match c {
            FileColumn::Tag(a) if valid(*a) => Value::Tag(a.value(row)),
            FileColumn::Str(a) if valid(*a) => Value::Str(a.value(row)),
            FileColumn::F64(a) if valid(*a) => Value::F64(a.value(row)),
            FileColumn::I64(a) if valid(*a) => Value::I64(a.value(row)),
            FileColumn::U64(a) if valid(*a) => Value::U64(a.value(row)),
            FileColumn::Bool(a) if valid(*a) => Value::Bool(a.value(row)),
            _ => Value::Null,
        }
    }
}
