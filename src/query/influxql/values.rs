//! Values as InfluxQL computes with them: one point's field or tag, an aggregate's result.
//!
//! The engine reads Arrow columns into [`V`] per point it evaluates and writes the answer back
//! to Arrow ([`column_of`]), choosing each output column's type from the values it holds as
//! 1.x does (integers stay integers unless mixed with floats).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};

/// A series' group key: its values of the `GROUP BY` tags (`None`: it lacks the tag).
pub type SeriesKey = Vec<Option<Arc<str>>>;

/// Rows of one series: time and the columns' values.
pub type Rows = Vec<(i64, Vec<V>)>;

/// A value, or its absence.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    F(f64),
    I(i64),
    U(u64),
    S(Arc<str>),
    B(bool),
}

impl V {
    pub fn is_null(&self) -> bool {
        matches!(self, V::Null)
    }

    /// The value as a float, for arithmetic and numeric aggregates.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            V::F(f) => Some(*f),
            V::I(i) => Some(*i as f64),
            V::U(u) => Some(*u as f64),
            _ => None,
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, V::F(_) | V::I(_) | V::U(_))
    }

    /// Orders numbers by value, then strings, then booleans (for min/max/top/bottom, where
    /// only one kind is ever compared within a column).
    pub fn cmp_num(&self, other: &V) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (V::B(a), V::B(b)) => a.cmp(b),
            (V::I(a), V::I(b)) => a.cmp(b),
            (V::U(a), V::U(b)) => a.cmp(b),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                _ => Ordering::Equal,
            },
        }
    }
}

/// Row `i` of `array` as a value.
pub fn value_at(array: &dyn Array, i: usize) -> V {
    if array.is_null(i) {
        return V::Null;
    }
    match array.data_type() {
        DataType::Float64 => V::F(array.as_primitive::<Float64Type>().value(i)),
        DataType::Int64 => V::I(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt64 => V::U(array.as_primitive::<UInt64Type>().value(i)),
        DataType::Boolean => V::B(array.as_boolean().value(i)),
        DataType::Utf8 => V::S(array.as_string::<i32>().value(i).into()),
        DataType::LargeUtf8 => V::S(array.as_string::<i64>().value(i).into()),
        DataType::Utf8View => V::S(array.as_string_view().value(i).into()),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let key = dict.normalized_keys()[i];
            value_at(dict.values().as_ref(), key)
        }
        _ => V::Null,
    }
}

/// Slots of [`ValueReader`]'s cache of strings (a power of two).
const VIEW_SLOTS: usize = 64;

/// Reads one column's values as [`value_at`] does, but a string view column's rows that hold
/// the same view share one `Arc<str>`: tag columns are gathered from the shards' dictionaries,
/// so a batch repeats few views, and copying each row's string was most of the cost of
/// reading tags. Equal views in one array are equal strings (the same bytes inline, or the
/// same length, buffer and offset), so a cached string is always the row's own.
#[derive(Debug)]
pub struct ValueReader<'a> {
    array: &'a dyn Array,
    views: Option<&'a arrow::array::StringViewArray>,
    cache: Vec<Option<(u128, Arc<str>)>>,
}

impl<'a> ValueReader<'a> {
    pub fn new(array: &'a dyn Array) -> Self {
        let views = (array.data_type() == &DataType::Utf8View).then(|| array.as_string_view());
        ValueReader {
            array,
            views,
            cache: if views.is_some() {
                vec![None; VIEW_SLOTS]
            } else {
                Vec::new()
            },
        }
    }

    /// The value of row `i`, equal to `value_at(array, i)`.
    pub fn get(&mut self, i: usize) -> V {
        let Some(views) = self.views else {
            return value_at(self.array, i);
        };
        if views.is_null(i) {
            return V::Null;
        }
        let view = views.views()[i];
        let mixed = (view as u64 ^ (view >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = (mixed >> (64 - VIEW_SLOTS.trailing_zeros())) as usize;
        if let Some((cached, s)) = &self.cache[slot] {
            if *cached == view {
                return V::S(s.clone());
            }
        }
        let s: Arc<str> = views.value(i).into();
        self.cache[slot] = Some((view, s.clone()));
        V::S(s)
    }
}

/// The Arrow column for `values`: the widest type among them (float over integers), strings
/// and booleans as themselves; all-null gives a float column of nulls.
pub fn column_of(values: &[V]) -> ArrayRef {
    let (mut f, mut i, mut u, mut s, mut b) = (false, false, false, false, false);
    for v in values {
        match v {
            V::F(_) => f = true,
            V::I(_) => i = true,
            V::U(_) => u = true,
            V::S(_) => s = true,
            V::B(_) => b = true,
            V::Null => {}
        }
    }
    if s {
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * 8);
        for v in values {
            match v {
                V::S(x) => out.append_value(x),
                V::Null => out.append_null(),
                other => out.append_value(text_of(other)),
            }
        }
        return Arc::new(out.finish());
    }
    if b && !(f || i || u) {
        let mut out = BooleanBuilder::with_capacity(values.len());
        for v in values {
            match v {
                V::B(x) => out.append_value(*x),
                _ => out.append_null(),
            }
        }
        return Arc::new(out.finish());
    }
    if i && !f && !u {
        let mut out = Int64Builder::with_capacity(values.len());
        for v in values {
            match v {
                V::I(x) => out.append_value(*x),
                _ => out.append_null(),
            }
        }
        return Arc::new(out.finish());
    }
    if u && !f && !i {
        let mut out = UInt64Builder::with_capacity(values.len());
        for v in values {
            match v {
                V::U(x) => out.append_value(*x),
                _ => out.append_null(),
            }
        }
        return Arc::new(out.finish());
    }
    let mut out = Float64Builder::with_capacity(values.len());
    for v in values {
        match v.as_f64() {
            Some(x) if x.is_finite() => out.append_value(x),
            // 1.x answers NaN and infinities as null (JSON cannot hold them).
            _ => out.append_null(),
        }
    }
    Arc::new(out.finish())
}

fn text_of(v: &V) -> String {
    match v {
        V::Null => String::new(),
        V::F(x) => x.to_string(),
        V::I(x) => x.to_string(),
        V::U(x) => x.to_string(),
        V::S(x) => x.to_string(),
        V::B(x) => x.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringViewArray};

    #[test]
    fn the_caching_reader_reads_what_value_at_reads() {
        // Inline and out-of-line strings, repeats, nulls and more distinct views than slots.
        let mut strings: Vec<Option<String>> = Vec::new();
        for i in 0..2000 {
            strings.push(match i % 7 {
                0 => None,
                1 => Some(format!("h{}", i % 5)),
                2 => Some(format!("a long tag value past twelve bytes {}", i % 3)),
                3 => Some(String::new()),
                _ => Some(format!("distinct-{i}-value-beyond-inline")),
            });
        }
        let views = StringViewArray::from_iter(strings.iter().map(|s| s.as_deref()));
        // A gathered column, as the scan builds tags: views shared by many rows.
        let idx = arrow::array::UInt32Array::from_iter_values((0..4000u32).map(|i| i * 7 % 2000));
        let gathered = arrow::compute::take(&views, &idx, None).unwrap();
        let floats = Float64Array::from(vec![Some(1.5), None, Some(2.0)]);
        for array in [&views as &dyn Array, gathered.as_ref(), &floats] {
            let mut reader = ValueReader::new(array);
            for i in 0..array.len() {
                assert_eq!(reader.get(i), value_at(array, i), "row {i}");
            }
        }
    }
}
