//! Last-write-wins merging of record batches that may hold the same point more than once.
//!
//! Used wherever rows from several sources meet without a shard's series ids to tell them
//! apart: Parquet files whose time ranges overlap each other or the buffer (query time), and
//! compaction. A point is identified by its tag values (all of the table's tags) and time.
//!
//! Invariants:
//! - The input batches are given oldest first; within a batch, later rows are newer. A point
//!   held several times comes out once, each field holding the newest non-null value (null
//!   only if every copy is null), as InfluxDB resolves repeated writes.
//! - The output is sorted by (tags, time); tag columns compare by value, a missing tag (null)
//!   first.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampNanosecondArray, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::ArrowError;

/// Where the identity of a point lives in the batches' schema.
#[derive(Debug, Clone)]
pub struct PointKey {
    /// Tag column indices (all of the table's tags).
    pub tags: Vec<usize>,
    /// The time column's index.
    pub time: usize,
}

/// Merges `batches` (oldest first, one schema) into deduplicated batches of at most
/// `batch_rows` rows each.
pub fn merge_last_write_wins(
    batches: &[RecordBatch],
    key: &PointKey,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, ArrowError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema();
    let all = arrow_select::concat::concat_batches(&schema, batches)?;
    let n = all.num_rows();
    if n == 0 {
        return Ok(Vec::new());
    }
    let times = all
        .column(key.time)
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .ok_or_else(|| ArrowError::InvalidArgumentError("time column is not Timestamp(ns)".into()))?
        .values()
        .clone();
    let tag_rows = if key.tags.is_empty() {
        None
    } else {
        let converter = RowConverter::new(
            key.tags
                .iter()
                .map(|&i| SortField::new(schema.field(i).data_type().clone()))
                .collect(),
        )?;
        let cols: Vec<ArrayRef> = key.tags.iter().map(|&i| all.column(i).clone()).collect();
        Some(converter.convert_columns(&cols)?)
    };
    let mut order: Vec<u32> = (0..n as u32).collect();
    // Stable on the row index: equal points stay oldest first.
    order.sort_by(|&a, &b| {
        let by_tags = match &tag_rows {
            Some(r) => r.row(a as usize).cmp(&r.row(b as usize)),
            None => std::cmp::Ordering::Equal,
        };
        by_tags
            .then(times[a as usize].cmp(&times[b as usize]))
            .then(a.cmp(&b))
    });
    let same = |a: u32, b: u32| {
        times[a as usize] == times[b as usize]
            && tag_rows
                .as_ref()
                .is_none_or(|r| r.row(a as usize) == r.row(b as usize))
    };
    // Groups of equal points: [start, end) in `order`.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || !same(order[i - 1], order[i]) {
            groups.push((start, i));
            start = i;
        }
    }
    let mut out = Vec::with_capacity(groups.len().div_ceil(batch_rows.max(1)));
    for part in groups.chunks(batch_rows.max(1)) {
        let newest: UInt32Array = part.iter().map(|&(_, e)| order[e - 1]).collect();
        let mut columns = Vec::with_capacity(all.num_columns());
        for (i, col) in all.columns().iter().enumerate() {
            let is_key = i == key.time || key.tags.contains(&i);
            let indices = if is_key || col.null_count() == 0 {
                newest.clone()
            } else {
                // Per field: the newest copy that holds a value.
                part.iter()
                    .map(|&(s, e)| {
                        order[s..e]
                            .iter()
                            .rev()
                            .copied()
                            .find(|&r| col.is_valid(r as usize))
                            .unwrap_or(order[e - 1])
                    })
                    .collect()
            };
            columns.push(arrow_select::take::take(col.as_ref(), &indices, None)?);
        }
        out.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    fn batch(
        host: &[Option<&str>],
        t: &[i64],
        a: &[Option<f64>],
        b: &[Option<i64>],
    ) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8, true),
            Field::new("a", DataType::Float64, true),
            Field::new("b", DataType::Int64, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(host.to_vec())),
                Arc::new(Float64Array::from(a.to_vec())),
                Arc::new(Int64Array::from(b.to_vec())),
                Arc::new(TimestampNanosecondArray::from(t.to_vec())),
            ],
        )
        .unwrap()
    }

    fn key() -> PointKey {
        PointKey {
            tags: vec![0],
            time: 3,
        }
    }

    #[test]
    fn newest_non_null_per_field_wins() {
        let old = batch(
            &[Some("a"), Some("b"), None],
            &[1, 1, 5],
            &[Some(1.0), Some(2.0), Some(9.0)],
            &[Some(10), None, None],
        );
        let new = batch(
            &[Some("a"), Some("a"), None],
            &[1, 2, 5],
            &[None, Some(3.0), Some(8.0)],
            &[Some(11), None, Some(7)],
        );
        let out = merge_last_write_wins(&[old, new], &key(), 100).unwrap();
        assert_eq!(out.len(), 1);
        let b = &out[0];
        assert_eq!(b.num_rows(), 4);
        let hosts = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let a = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        let bb = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        let t = b
            .column(3)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        // Sorted by (host, time), missing host first.
        assert!(hosts.is_null(0));
        assert_eq!((t.value(0), a.value(0), bb.value(0)), (5, 8.0, 7));
        assert_eq!((hosts.value(1), t.value(1)), ("a", 1));
        // a: the newer copy is null, so the older value stays; b: the newer value wins.
        assert_eq!((a.value(1), bb.value(1)), (1.0, 11));
        assert_eq!((hosts.value(2), t.value(2), a.value(2)), ("a", 2, 3.0));
        assert!(bb.is_null(2));
        assert_eq!((hosts.value(3), a.value(3)), ("b", 2.0));
        assert!(bb.is_null(3));
    }

    #[test]
    fn repeats_inside_one_batch_and_output_batching() {
        let one = batch(
            &[Some("x"), Some("x"), Some("y"), Some("x")],
            &[7, 7, 1, 3],
            &[Some(1.0), Some(2.0), Some(3.0), Some(4.0)],
            &[None, None, None, None],
        );
        let out = merge_last_write_wins(&[one], &key(), 2).unwrap();
        let rows: usize = out.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 3);
        assert_eq!(out.len(), 2);
        let a = out[0]
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!((a.value(0), a.value(1)), (4.0, 2.0));
    }
}
