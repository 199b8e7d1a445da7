//! Field columns in Arrow's memory layout: a values vector plus a validity bitmap (bit i set =
//! row i has a value, least significant bit first), and the dictionaries of tag values. Rows
//! are only ever appended; a field that a row does not mention gets a null.

use std::collections::HashMap;

use super::chunked::{Bitmap, ChunkedVec, StrChunks};

/// One column's values.
#[derive(Debug)]
pub enum ColumnData {
    F64(ChunkedVec<f64>),
    I64(ChunkedVec<i64>),
    U64(ChunkedVec<u64>),
    Bool(Bitmap),
    Str(StrChunks),
}

/// A column: values and validity, always of equal length.
#[derive(Debug)]
pub struct Column {
    pub data: ColumnData,
    pub valid: Bitmap,
}

/// A value read back from a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Tag(&'a str),
    F64(f64),
    I64(i64),
    U64(u64),
    Bool(bool),
    Str(&'a str),
}

impl Column {
    pub fn new(data: ColumnData) -> Self {
        Column {
            data,
            valid: Bitmap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.valid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }

    /// Appends nulls until the column has `rows` rows.
    #[inline]
    pub fn pad_to(&mut self, rows: usize) {
        while self.len() < rows {
            self.push_null();
        }
    }

    #[inline]
    pub fn push_null(&mut self) {
        match &mut self.data {
            ColumnData::F64(v) => v.push(0.0),
            ColumnData::I64(v) => v.push(0),
            ColumnData::U64(v) => v.push(0),
            ColumnData::Bool(b) => b.push(false),
            ColumnData::Str(s) => s.push_with(|_| {}),
        }
        self.valid.push(false);
    }

    pub fn get(&self, row: usize) -> Value<'_> {
        if !self.valid.get(row) {
            return Value::Null;
        }
        match &self.data {
            ColumnData::F64(v) => Value::F64(v.get(row)),
            ColumnData::I64(v) => Value::I64(v.get(row)),
            ColumnData::U64(v) => Value::U64(v.get(row)),
            ColumnData::Bool(b) => Value::Bool(b.get(row)),
            ColumnData::Str(s) => Value::Str(s.get(row)),
        }
    }

    /// Heap bytes held (capacity, not just length).
    pub fn bytes(&self) -> usize {
        self.valid.bytes()
            + match &self.data {
                ColumnData::F64(v) => v.bytes(),
                ColumnData::I64(v) => v.bytes(),
                ColumnData::U64(v) => v.bytes(),
                ColumnData::Bool(b) => b.bytes(),
                ColumnData::Str(s) => s.bytes(),
            }
    }
}

/// The distinct values of one tag column, each with a dense code.
#[derive(Debug, Default)]
pub struct Dictionary {
    codes: HashMap<Box<str>, u32>,
    values: Vec<Box<str>>,
    /// What [`Dictionary::bytes`] reports, kept as values are added: the buffer's size is
    /// asked for on every write, and a tag like a host name can hold 100,000 values.
    bytes: usize,
}

impl Dictionary {
    pub fn code(&mut self, v: &str) -> u32 {
        if let Some(&c) = self.codes.get(v) {
            return c;
        }
        let c = self.values.len() as u32;
        self.bytes += Self::value_bytes(v);
        self.values.push(v.into());
        self.codes.insert(v.into(), c);
        c
    }

    /// The code of `v`, if it was ever added.
    pub fn lookup(&self, v: &str) -> Option<u32> {
        self.codes.get(v).copied()
    }

    pub fn value(&self, code: u32) -> &str {
        &self.values[code as usize]
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Heap bytes held, approximately: each value twice (the list and the map's key) and
    /// the per-entry overhead of both.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn value_bytes(v: &str) -> usize {
        2 * v.len() + 40
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dictionarys_size_counts_each_distinct_value_once() {
        let mut d = Dictionary::default();
        assert_eq!(d.bytes(), 0);
        for v in ["host_1", "host_22", "host_1", "", "host_22"] {
            d.code(v);
        }
        let expected: usize = ["host_1", "host_22", ""]
            .iter()
            .map(|v| Dictionary::value_bytes(v))
            .sum();
        assert_eq!(d.bytes(), expected);
        assert_eq!(d.len(), 3);
    }
}
