//! Arrow arrays gathered straight from a cache's columns.
//!
//! An answer over every entry of a large cache builds millions of values; Arrow's builders
//! check capacity and set a validity bit value by value, which cost more than the values
//! themselves. These functions size each buffer once and fill it in a single pass.
//!
//! Invariant: the arrays equal what the builders would produce (the tests compare them).

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, PrimitiveArray, StringArray};
use arrow_buffer::{ArrowNativeType, BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};

use super::CacheError;

/// `values[i]` for each `i` in `picks`, null where `valid[i]` is false.
pub(crate) fn primitive<T>(values: &[T::Native], valid: &[bool], picks: &[usize]) -> ArrayRef
where
    T: arrow_array::types::ArrowPrimitiveType,
    T::Native: ArrowNativeType,
{
    let gathered: Vec<T::Native> = picks.iter().map(|&i| values[i]).collect();
    Arc::new(PrimitiveArray::<T>::new(
        ScalarBuffer::from(gathered),
        nulls(picks.iter().map(|&i| valid[i])),
    ))
}

/// As [`primitive`], for booleans.
pub(crate) fn boolean(values: &[bool], valid: &[bool], picks: &[usize]) -> ArrayRef {
    let bits: BooleanBuffer = picks.iter().map(|&i| values[i]).collect();
    Arc::new(BooleanArray::new(
        bits,
        nulls(picks.iter().map(|&i| valid[i])),
    ))
}

/// A validity buffer, or none when nothing is null. Cached values are nearly always valid,
/// so the iterator is first read to find a null, and the bitmap is built only if one exists
/// (building it bit by bit cost as much as gathering the values).
fn nulls(valid: impl Iterator<Item = bool> + Clone) -> Option<NullBuffer> {
    if valid.clone().all(|v| v) {
        return None;
    }
    let bits: BooleanBuffer = valid.collect();
    Some(NullBuffer::new(bits))
}

/// A string array of `values` (`None` is null). Iterates them twice: once to size the
/// buffers, once to fill them.
pub(crate) fn strings<'a, I>(values: I) -> Result<ArrayRef, CacheError>
where
    I: Iterator<Item = Option<&'a str>> + Clone,
{
    let (count, bytes) = values.clone().fold((0usize, 0usize), |(n, b), v| {
        (n + 1, b + v.map_or(0, str::len))
    });
    if i32::try_from(bytes).is_err() {
        return Err(CacheError::Arrow(format!(
            "the answer holds {bytes} bytes of text in one column, more than an Arrow string \
             column takes (2 GiB): filter on a key column to ask for fewer rows"
        )));
    }
    let mut data: Vec<u8> = Vec::with_capacity(bytes);
    let mut offsets: Vec<i32> = Vec::with_capacity(count + 1);
    offsets.push(0);
    for v in values.clone() {
        if let Some(s) = v {
            data.extend_from_slice(s.as_bytes());
        }
        // Cannot overflow: the total was checked to fit above.
        offsets.push(data.len() as i32);
    }
    let valid = nulls(values.map(|v| v.is_some()));
    // SAFETY: `offsets` starts at 0, never decreases and ends at `data.len()`; every span
    // between two offsets is one whole `&str`, so `data` is valid UTF-8 split only at
    // character boundaries; there is one offset per value plus one, as `valid` has a bit
    // per value.
    let array = unsafe {
        StringArray::new_unchecked(
            OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)),
            data.into(),
            valid,
        )
    };
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{BooleanBuilder, Float64Builder, StringBuilder};
    use arrow_array::types::Float64Type;
    use arrow_array::Array;

    #[test]
    fn gathered_arrays_equal_built_ones() {
        let values: Vec<f64> = (0..50).map(|i| i as f64 * 1.5).collect();
        let valid: Vec<bool> = (0..50).map(|i| i % 7 != 3).collect();
        let picks: Vec<usize> = (0..50).rev().step_by(3).chain([0, 0, 49]).collect();

        let mut f = Float64Builder::new();
        picks
            .iter()
            .for_each(|&i| f.append_option(valid[i].then_some(values[i])));
        assert_eq!(
            primitive::<Float64Type>(&values, &valid, &picks).to_data(),
            f.finish().to_data()
        );

        let bools: Vec<bool> = (0..50).map(|i| i % 2 == 0).collect();
        let mut b = BooleanBuilder::new();
        picks
            .iter()
            .for_each(|&i| b.append_option(valid[i].then_some(bools[i])));
        assert_eq!(
            boolean(&bools, &valid, &picks).to_data(),
            b.finish().to_data()
        );

        let words = ["", "host_1", "é東", "a longer value than the others"];
        let text: Vec<Option<&str>> = picks
            .iter()
            .map(|&i| valid[i].then_some(words[i % words.len()]))
            .collect();
        let mut s = StringBuilder::new();
        text.iter().for_each(|v| s.append_option(*v));
        assert_eq!(
            strings(text.iter().copied()).unwrap().to_data(),
            s.finish().to_data()
        );

        // All valid: no validity buffer at all, as the builders leave it.
        let all = vec![true; 50];
        assert!(primitive::<Float64Type>(&values, &all, &picks)
            .nulls()
            .is_none());
        assert!(strings(std::iter::empty()).unwrap().is_empty());
    }
}
