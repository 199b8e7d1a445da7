//! Field columns in Arrow's memory layout: a values vector plus a validity bitmap (bit i set =
//! row i has a value, least significant bit first), and the dictionaries of tag values. Rows
//! are only ever appended; a field that a row does not mention gets a null.

use std::collections::HashMap;

use super::chunked::ChunkedVec;

/// Validity bits, Arrow layout.
#[derive(Debug, Default, Clone)]
pub struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    #[inline]
    pub fn push(&mut self, valid: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        if valid {
            *self.words.last_mut().expect("pushed above") |= 1 << (self.len % 64);
        }
        self.len += 1;
    }

    #[inline]
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

/// One column's values.
#[derive(Debug)]
pub enum ColumnData {
    F64(ChunkedVec<f64>),
    I64(ChunkedVec<i64>),
    U64(ChunkedVec<u64>),
    Bool(Bitmap),
    /// Arrow string layout: value i is `data[offsets[i]..offsets[i + 1]]`.
    Str {
        offsets: ChunkedVec<u64>,
        data: Vec<u8>,
    },
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
        let mut c = Column {
            data,
            valid: Bitmap::default(),
        };
        if let ColumnData::Str { offsets, .. } = &mut c.data {
            offsets.push(0);
        }
        c
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
            ColumnData::Str { offsets, data } => offsets.push(data.len() as u64),
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
            ColumnData::Str { offsets, data } => {
                let (s, e) = (offsets.get(row) as usize, offsets.get(row + 1) as usize);
                Value::Str(std::str::from_utf8(&data[s..e]).expect("only UTF-8 is ever appended"))
            }
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
                ColumnData::Str { offsets, data } => offsets.bytes() + data.capacity(),
            }
    }
}

/// The distinct values of one tag column, each with a dense code.
#[derive(Debug, Default)]
pub struct Dictionary {
    codes: HashMap<Box<str>, u32>,
    values: Vec<Box<str>>,
}

impl Dictionary {
    pub fn code(&mut self, v: &str) -> u32 {
        if let Some(&c) = self.codes.get(v) {
            return c;
        }
        let c = self.values.len() as u32;
        self.values.push(v.into());
        self.codes.insert(v.into(), c);
        c
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

    pub(crate) fn bytes(&self) -> usize {
        self.values.iter().map(|v| 2 * v.len() + 40).sum()
    }
}
