//! Result batches as JSON objects, written row by row without a per-value dispatch.
//!
//! Arrow's JSON writer reaches every value through a boxed encoder per column and a struct
//! encoder per row, and stages its output in a buffer of its own that it then copies out. In
//! a 100,000-host lastpoint (21 columns) that machinery cost more than the text itself. Here
//! the columns are matched on their type once per batch, each row is written straight into
//! the output, and column names are rendered (`"name":`) once per batch.
//!
//! Invariant: for every batch [`write_rows`] accepts, the bytes are those Arrow's writer
//! gives with this project's string and timestamp encoders (nulls left out, non-finite
//! floats as `null`, numbers through `lexical_core` as Arrow writes them). Any other column
//! type makes it decline, and the caller uses Arrow's writer. The tests hold the two equal.

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit,
    TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};

use super::json_strings::write_string;
use super::timestamps::write_timestamp;

/// What goes before each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSeparator {
    /// Rows of a JSON array, the first of which opens this batch: a comma between rows.
    ArrayFirst,
    /// Rows of a JSON array continued from an earlier batch: a comma before every row.
    ArrayNext,
    /// JSON lines: a newline after every row.
    Lines,
}

/// One column's values, by type.
enum Values<'a> {
    Str(&'a StringArray),
    Bool(&'a BooleanArray),
    I64(&'a [i64]),
    I32(&'a [i32]),
    I16(&'a [i16]),
    I8(&'a [i8]),
    U64(&'a [u64]),
    U32(&'a [u32]),
    U16(&'a [u16]),
    U8(&'a [u8]),
    F64(&'a [f64]),
    F32(&'a [f32]),
    /// Nanosecond timestamps without a timezone.
    Time(&'a [i64]),
}

struct Column<'a> {
    /// `"name":` as JSON text.
    name: Vec<u8>,
    nulls: Option<&'a NullBuffer>,
    values: Values<'a>,
}

impl<'a> Column<'a> {
    /// `None` for a type Arrow's writer is left to.
    fn of(name: &str, array: &'a dyn Array) -> Option<Self> {
        let values = match array.data_type() {
            DataType::Utf8 => Values::Str(array.as_string::<i32>()),
            DataType::Boolean => Values::Bool(array.as_boolean()),
            DataType::Int64 => Values::I64(array.as_primitive::<Int64Type>().values()),
            DataType::Int32 => Values::I32(array.as_primitive::<Int32Type>().values()),
            DataType::Int16 => Values::I16(array.as_primitive::<Int16Type>().values()),
            DataType::Int8 => Values::I8(array.as_primitive::<Int8Type>().values()),
            DataType::UInt64 => Values::U64(array.as_primitive::<UInt64Type>().values()),
            DataType::UInt32 => Values::U32(array.as_primitive::<UInt32Type>().values()),
            DataType::UInt16 => Values::U16(array.as_primitive::<UInt16Type>().values()),
            DataType::UInt8 => Values::U8(array.as_primitive::<UInt8Type>().values()),
            DataType::Float64 => Values::F64(array.as_primitive::<Float64Type>().values()),
            DataType::Float32 => Values::F32(array.as_primitive::<Float32Type>().values()),
            // Nanoseconds in an i64 span the years 1677 to 2262, all of which
            // `write_timestamp` writes.
            DataType::Timestamp(TimeUnit::Nanosecond, None) => {
                Values::Time(array.as_primitive::<TimestampNanosecondType>().values())
            }
            _ => return None,
        };
        let mut quoted = Vec::with_capacity(name.len() + 3);
        write_string(name, &mut quoted);
        quoted.push(b':');
        Some(Column {
            name: quoted,
            // For these types the logical nulls are the array's own.
            nulls: array.nulls().filter(|n| n.null_count() > 0),
            values,
        })
    }

    fn write_value(&self, row: usize, out: &mut Vec<u8>) {
        match &self.values {
            Values::Str(a) => write_string(a.value(row), out),
            Values::Bool(a) => out.extend_from_slice(match a.value(row) {
                true => b"true",
                false => b"false",
            }),
            Values::I64(v) => write_number(v[row], out),
            Values::I32(v) => write_number(v[row], out),
            Values::I16(v) => write_number(v[row], out),
            Values::I8(v) => write_number(v[row], out),
            Values::U64(v) => write_number(v[row], out),
            Values::U32(v) => write_number(v[row], out),
            Values::U16(v) => write_number(v[row], out),
            Values::U8(v) => write_number(v[row], out),
            Values::F64(v) => write_float(v[row], out),
            Values::F32(v) => write_float(v[row], out),
            Values::Time(v) => {
                out.push(b'"');
                write_timestamp(v[row], out);
                out.push(b'"');
            }
        }
    }
}

fn write_number<N: lexical_core::ToLexical>(n: N, out: &mut Vec<u8>) {
    let mut buf = [0u8; lexical_core::BUFFER_SIZE];
    out.extend_from_slice(lexical_core::write(n, &mut buf));
}

fn write_float<F: lexical_core::ToLexical + Into<f64> + Copy>(f: F, out: &mut Vec<u8>) {
    if f.into().is_finite() {
        write_number(f, out);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends every row of `batch` to `out` as JSON objects, each preceded or followed as
/// `separator` says. Returns `false`, having written nothing, when a column has a type this
/// does not write.
pub fn write_rows(batch: &RecordBatch, separator: RowSeparator, out: &mut Vec<u8>) -> bool {
    let schema = batch.schema();
    let columns: Option<Vec<Column<'_>>> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| Column::of(field.name(), array.as_ref()))
        .collect();
    let Some(columns) = columns else {
        return false;
    };
    for row in 0..batch.num_rows() {
        if separator == RowSeparator::ArrayNext
            || (separator == RowSeparator::ArrayFirst && row > 0)
        {
            out.push(b',');
        }
        out.push(b'{');
        let mut first = true;
        for c in &columns {
            if c.nulls.is_some_and(|n| n.is_null(row)) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&c.name);
            c.write_value(row, out);
        }
        out.push(b'}');
        if separator == RowSeparator::Lines {
            out.push(b'\n');
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array,
        TimestampNanosecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
    };
    use arrow::datatypes::{Field, Schema};
    use arrow::json::writer::{JsonArray, LineDelimited};

    /// A small xorshift generator, so the tests are the same on every run; `.1` says whether
    /// it makes nulls.
    struct Rng(u64, bool);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn null(&mut self) -> bool {
            self.next().is_multiple_of(5) && self.1
        }
    }

    /// `rows` values from `value`, about one in five of them null if `r` makes nulls.
    fn opts<T>(
        rows: usize,
        r: &mut Rng,
        mut value: impl FnMut(&mut Rng, usize) -> T,
    ) -> Vec<Option<T>> {
        (0..rows)
            .map(|i| (!r.null()).then(|| value(r, i)))
            .collect()
    }

    /// A batch with every type written here, nulls scattered through each column (or none,
    /// without `nulls`), and the edge values of each type.
    fn batch(rows: usize, seed: u64, nulls: bool) -> RecordBatch {
        let r = &mut Rng(seed, nulls);
        let floats = [
            0.0,
            -0.0,
            1.5,
            -2.25e-300,
            1e300,
            f64::NAN,
            f64::INFINITY,
            0.1,
            3.0,
        ];
        let words = [
            "",
            "host_1",
            "a\"b",
            "tab\t",
            "é東",
            "\\",
            "\u{1f}",
            "plain text",
        ];
        let float = |r: &mut Rng, i: usize| match i % 2 {
            0 => floats[i / 2 % floats.len()],
            _ => f64::from_bits(r.next()),
        };
        let arrays: Vec<(&str, ArrayRef)> = vec![
            (
                "s",
                Arc::new(StringArray::from(opts(rows, r, |r, i| {
                    words[(r.next() as usize + i) % words.len()]
                }))),
            ),
            (
                "b",
                Arc::new(BooleanArray::from(opts(rows, r, |r, _| r.next() % 2 == 0))),
            ),
            (
                "i64",
                Arc::new(Int64Array::from(opts(rows, r, |r, i| {
                    [i64::MIN, i64::MAX, 0, -1, r.next() as i64][i % 5]
                }))),
            ),
            (
                "i32",
                Arc::new(Int32Array::from(opts(rows, r, |r, _| r.next() as i32))),
            ),
            (
                "i16",
                Arc::new(Int16Array::from(opts(rows, r, |r, _| r.next() as i16))),
            ),
            (
                "i8",
                Arc::new(Int8Array::from(opts(rows, r, |r, _| r.next() as i8))),
            ),
            (
                "u64",
                Arc::new(UInt64Array::from(opts(rows, r, |r, i| {
                    [u64::MAX, 0, r.next()][i % 3]
                }))),
            ),
            (
                "u32",
                Arc::new(UInt32Array::from(opts(rows, r, |r, _| r.next() as u32))),
            ),
            (
                "u16",
                Arc::new(UInt16Array::from(opts(rows, r, |r, _| r.next() as u16))),
            ),
            (
                "u8",
                Arc::new(UInt8Array::from(opts(rows, r, |r, _| r.next() as u8))),
            ),
            ("f64", Arc::new(Float64Array::from(opts(rows, r, float)))),
            (
                "f32",
                Arc::new(Float32Array::from(opts(rows, r, |r, i| float(r, i) as f32))),
            ),
            // Any i64 of nanoseconds (the years 1677 to 2262), whole seconds to nanoseconds.
            (
                "time",
                Arc::new(TimestampNanosecondArray::from(opts(rows, r, |r, i| {
                    let unit = 10i64.pow(i as u32 % 10);
                    r.next() as i64 / unit * unit
                }))),
            ),
            (
                "quoted \"name\"",
                Arc::new(Int64Array::from(opts(rows, r, |r, _| r.next() as i64))),
            ),
        ];
        let fields: Vec<Field> = arrays
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            arrays.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap()
    }

    /// Arrow's writer, with the fast string and timestamp encoders the server uses.
    fn arrows<F: arrow::json::writer::JsonFormat>(batches: &[&RecordBatch]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = super::super::format::json_writer().build::<_, F>(&mut out);
        for b in batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
        out
    }

    #[test]
    fn rows_match_arrows_writer() {
        let cases = [(1, 1), (7, 2), (500, 3), (2_000, 0x2545_f491_4f6c_dd1d)];
        for ((rows, seed), nulls) in cases.into_iter().flat_map(|c| [(c, true), (c, false)]) {
            let one = batch(rows, seed, nulls);
            let two = batch(rows, seed ^ 0xdead_beef, nulls);

            let mut lines = Vec::new();
            assert!(write_rows(&one, RowSeparator::Lines, &mut lines));
            assert!(write_rows(&two, RowSeparator::Lines, &mut lines));
            assert_eq!(
                String::from_utf8(lines).unwrap(),
                String::from_utf8(arrows::<LineDelimited>(&[&one, &two])).unwrap()
            );

            let mut array = b"[".to_vec();
            assert!(write_rows(&one, RowSeparator::ArrayFirst, &mut array));
            assert!(write_rows(&two, RowSeparator::ArrayNext, &mut array));
            array.push(b']');
            assert_eq!(
                String::from_utf8(array).unwrap(),
                String::from_utf8(arrows::<JsonArray>(&[&one, &two])).unwrap()
            );
        }
    }

    #[test]
    fn a_row_of_nulls_is_an_empty_object() {
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![None, Some(3)]))],
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(write_rows(&b, RowSeparator::Lines, &mut out));
        assert_eq!(out, b"{}\n{\"x\":3}\n");
    }

    #[test]
    fn declines_types_it_does_not_write_and_writes_nothing() {
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("x", DataType::Int64, true),
                Field::new("d", DataType::Date32, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(arrow::array::Date32Array::from(vec![1])),
            ],
        )
        .unwrap();
        let mut out = b"[".to_vec();
        assert!(!write_rows(&b, RowSeparator::ArrayFirst, &mut out));
        assert_eq!(out, b"[");
    }
}
