//! Reading one Parquet file of a table into the scan's column layout.
//!
//! Invariants:
//! - Only the columns the scan needs are read (projection pushed into the reader), and row
//!   groups whose `time` statistics miss the range are skipped.
//! - Rows outside the time range or failing the tag filters are removed here: the scan
//!   reports those filters `Exact`, as it does for the buffer. So are the rows the file's
//!   tombstones delete (their tags are read for that even when not asked for).
//! - A column the file lacks (added to the table after the file was written) reads as nulls;
//!   tags are read as `Utf8View`, like the buffer's.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::DataFusionError;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::ObjectStore;
// `ParquetObjectReader` is deprecated in favour of hand-written `AsyncFileReader`s; it is
// still the crate's own object-store reader and does what this needs (ranged gets).
#[allow(deprecated)]
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::arrow::ProjectionMask;
use parquet::file::statistics::Statistics as ParquetStatistics;
use shardline_shards::persist::tombstone::kept_rows;
use shardline_shards::persist::{ParquetFile, Tombstone};

/// Rows per batch read.
const READ_BATCH_ROWS: usize = 16 * 1024;

/// What to read from a file.
#[derive(Debug, Clone)]
pub struct FileRead {
    /// Output column names, in output order, with their output types.
    pub columns: Vec<(String, DataType)>,
    pub schema: SchemaRef,
    pub time_min: i64,
    pub time_max: i64,
    /// Tag name → allowed values (all must pass).
    pub tag_filters: Vec<(String, Vec<String>)>,
}

/// Streams the file's selected rows as batches of `read.schema`.
pub fn read_file(
    store: Arc<dyn ObjectStore>,
    file: &ParquetFile,
    read: Arc<FileRead>,
    deletes: Arc<[Tombstone]>,
) -> BoxStream<'static, Result<RecordBatch, DataFusionError>> {
    let path = file.location();
    let size = file.size_bytes;
    let fut = async move {
        #[allow(deprecated)]
        let reader = ParquetObjectReader::new(store, path).with_file_size(size);
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        let file_schema = builder.schema().clone();
        // Columns to read: the output's, plus those filters need.
        let mut wanted: Vec<&str> = read.columns.iter().map(|(n, _)| n.as_str()).collect();
        wanted.push("time");
        wanted.extend(read.tag_filters.iter().map(|(n, _)| n.as_str()));
        wanted.extend(deletes.iter().flat_map(|t| t.columns()));
        let mut roots: Vec<usize> = wanted
            .iter()
            .filter_map(|n| file_schema.index_of(n).ok())
            .collect();
        roots.sort_unstable();
        roots.dedup();
        let time_idx = file_schema.index_of("time").ok();
        let metadata = builder.metadata().clone();
        let row_groups: Vec<usize> = (0..metadata.num_row_groups())
            .filter(|&rg| {
                let Some(ti) = time_idx else { return true };
                match metadata.row_group(rg).column(ti).statistics() {
                    Some(ParquetStatistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                        (Some(&lo), Some(&hi)) => lo <= read.time_max && hi >= read.time_min,
                        _ => true,
                    },
                    _ => true,
                }
            })
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let stream = builder
            .with_projection(mask)
            .with_row_groups(row_groups)
            .with_batch_size(READ_BATCH_ROWS)
            .build()?;
        let read2 = read.clone();
        Ok::<_, parquet::errors::ParquetError>(
            stream
                .map_err(|e| DataFusionError::External(Box::new(e)))
                .and_then(move |b| {
                    let r = to_output(&b, &read2, &deletes).map_err(DataFusionError::from);
                    async move { r }
                })
                .try_filter(|b| futures::future::ready(b.num_rows() > 0)),
        )
    };
    futures::stream::once(fut)
        .map(|r| match r {
            Ok(s) => s.boxed(),
            Err(e) => {
                futures::stream::once(async move { Err(DataFusionError::External(Box::new(e))) })
                    .boxed()
            }
        })
        .flatten()
        .boxed()
}

/// Filters a file batch and shapes it as the output.
fn to_output(
    b: &RecordBatch,
    read: &FileRead,
    deletes: &[Tombstone],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut keep: Option<BooleanArray> = None;
    let mut and = |m: BooleanArray| {
        keep = Some(match keep.take() {
            Some(k) => arrow::compute::and(&k, &m).expect("equal lengths"),
            None => m,
        })
    };
    if let Some(t) = b.column_by_name("time") {
        let t = t
            .as_any()
            .downcast_ref::<arrow::array::TimestampNanosecondArray>()
            .ok_or_else(|| {
                arrow::error::ArrowError::SchemaError("time is not Timestamp(ns)".into())
            })?;
        if read.time_min != i64::MIN || read.time_max != i64::MAX {
            and(t
                .iter()
                .map(|v| v.map(|v| v >= read.time_min && v <= read.time_max))
                .collect());
        }
    }
    if let Some(kept) = kept_rows(deletes, b)? {
        and(kept);
    }
    for (name, values) in &read.tag_filters {
        let m: BooleanArray = match b.column_by_name(name) {
            Some(col) => {
                let col = cast(col, &DataType::Utf8)?;
                let s = col
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .expect("cast to Utf8");
                s.iter()
                    .map(|v| Some(v.is_some_and(|v| values.iter().any(|x| x == v))))
                    .collect()
            }
            // The file has no such tag: no row has a value for it.
            None => BooleanArray::from(vec![false; b.num_rows()]),
        };
        and(m);
    }
    let b = match keep {
        Some(k) => filter_record_batch(b, &k)?,
        None => b.clone(),
    };
    let columns: Vec<ArrayRef> = read
        .columns
        .iter()
        .map(|(name, ty)| match b.column_by_name(name) {
            Some(c) if c.data_type() == ty => Ok(c.clone()),
            Some(c) => cast(c, ty),
            None => Ok(new_null_array(ty, b.num_rows())),
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new_with_options(
        read.schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )
}
