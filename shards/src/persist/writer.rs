//! Turning one table of a frozen buffer into Parquet files, one per time window.
//!
//! Invariants:
//! - A file holds the rows of one `gen1` window, sorted by series key then time, each point
//!   once (last write wins per field, as readers resolve it); so a file never needs merging
//!   with itself, and two files of one shard and window overlap only where their points do.
//! - Columns: tags (sorted by name, `Utf8`), fields (sorted by name), `time`; the whole table
//!   schema as of the snapshot, a column this shard never saw is all null.
//! - Memory beyond the buffer: one sort entry (16 bytes) per row and one window's file.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{
    new_null_array, Array, ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::buffer::{TableBuffer, CHUNK_LEN};
use crate::schema::{ColumnType, TableSchema};

use super::PersistError;

/// Rows per record batch handed to the Parquet writer.
const WRITE_BATCH_ROWS: usize = 64 * 1024;
/// Rows per row group: large enough for scans to stream, small enough that min/max
/// statistics prune within big files.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// The Arrow type a column has in Parquet files.
pub fn file_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Tag => DataType::Utf8,
        ColumnType::String => DataType::LargeUtf8,
        ColumnType::Float => DataType::Float64,
        ColumnType::Int => DataType::Int64,
        ColumnType::UInt => DataType::UInt64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Time => DataType::Timestamp(TimeUnit::Nanosecond, None),
    }
}

pub fn file_schema(schema: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .columns_in_order()
            .iter()
            .map(|c| Field::new(c.name.as_ref(), file_type(c.ty), c.ty != ColumnType::Time))
            .collect::<Vec<_>>(),
    ))
}

pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build()
}

/// One window's encoded file.
#[derive(Debug)]
pub struct WindowFile {
    pub window_start: i64,
    pub bytes: Bytes,
    pub rows: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// Encodes batches into one Parquet file.
pub fn encode_batches(schema: SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, PersistError> {
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(writer_properties()))?;
    for b in batches {
        w.write(b)?;
    }
    Ok(w.into_inner()?.into())
}

/// Encodes `buffer`'s rows, one file per `gen1_ns` window, oldest window first, handing each
/// to `emit` before the next is built.
pub fn encode_table(
    buffer: &TableBuffer,
    schema: &TableSchema,
    gen1_ns: i64,
    mut emit: impl FnMut(WindowFile) -> Result<(), PersistError>,
) -> Result<(), PersistError> {
    let rows = buffer.rows();
    if rows == 0 {
        return Ok(());
    }
    // Series ranked by their canonical key.
    let mut by_key: Vec<u32> = (0..buffer.series_count() as u32).collect();
    by_key.sort_unstable_by(|&a, &b| buffer.series_key(a).cmp(buffer.series_key(b)));
    let mut rank = vec![0u32; by_key.len()];
    for (r, &s) in by_key.iter().enumerate() {
        rank[s as usize] = r as u32;
    }
    let mut windows: BTreeMap<i64, Vec<(u32, i64, u32)>> = BTreeMap::new();
    for row in 0..rows {
        let t = buffer.time().get(row);
        let s = buffer.row_series().get(row);
        windows
            .entry(t.div_euclid(gen1_ns))
            .or_default()
            .push((rank[s as usize], t, row as u32));
    }

    let columns = schema.columns_in_order();
    let file_schema = file_schema(schema);
    let chunks = rows.div_ceil(CHUNK_LEN);
    // Per column: what to read values from.
    enum Source {
        Tag {
            values: ArrayRef,
            series_codes: Vec<Option<u32>>,
        },
        Field {
            id: u32,
            chunks: Vec<ArrayRef>,
        },
        Missing(DataType),
        Time,
    }
    let sources: Vec<Source> = columns
        .iter()
        .map(|c| match c.ty {
            ColumnType::Time => Source::Time,
            ColumnType::Tag => match buffer.dictionary(c.id) {
                Some(d) => Source::Tag {
                    values: Arc::new(StringArray::from_iter_values(
                        (0..d.len() as u32).map(|code| d.value(code)),
                    )),
                    series_codes: (0..buffer.series_count() as u32)
                        .map(|s| buffer.tag_code(s, c.id))
                        .collect(),
                },
                None => Source::Missing(DataType::Utf8),
            },
            ty => match buffer.column(c.id) {
                Some(_) => Source::Field {
                    id: c.id,
                    chunks: (0..chunks)
                        .map(|k| buffer.share_field(c.id, k).expect("column exists"))
                        .collect(),
                },
                None => Source::Missing(file_type(ty)),
            },
        })
        .collect();

    for (window, mut entries) in windows {
        entries.sort_unstable();
        // Groups of one point: [start, end) in `entries`.
        let mut groups = Vec::with_capacity(entries.len());
        let mut start = 0;
        for i in 1..=entries.len() {
            if i == entries.len()
                || entries[i].0 != entries[i - 1].0
                || entries[i].1 != entries[i - 1].1
            {
                groups.push((start, i));
                start = i;
            }
        }
        let mut writer =
            ArrowWriter::try_new(Vec::new(), file_schema.clone(), Some(writer_properties()))?;
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        for part in groups.chunks(WRITE_BATCH_ROWS) {
            let newest: Vec<u32> = part.iter().map(|&(_, e)| entries[e - 1].2).collect();
            let mut arrays: Vec<ArrayRef> = Vec::with_capacity(sources.len());
            for src in &sources {
                arrays.push(match src {
                    Source::Time => {
                        let t: TimestampNanosecondArray =
                            part.iter().map(|&(s, _)| Some(entries[s].1)).collect();
                        Arc::new(t)
                    }
                    Source::Missing(ty) => new_null_array(ty, part.len()),
                    Source::Tag {
                        values,
                        series_codes,
                    } => {
                        let codes: UInt32Array = newest
                            .iter()
                            .map(|&r| series_codes[buffer.row_series().get(r as usize) as usize])
                            .collect();
                        arrow_select::take::take(values.as_ref(), &codes, None)?
                    }
                    Source::Field { id, chunks } => {
                        let col = buffer.column(*id).expect("column exists");
                        let picks: Vec<(usize, usize)> = part
                            .iter()
                            .map(|&(s, e)| {
                                // The newest copy holding a value, else the newest (null).
                                let row = entries[s..e]
                                    .iter()
                                    .rev()
                                    .map(|x| x.2 as usize)
                                    .find(|&r| col.valid.get(r))
                                    .unwrap_or(entries[e - 1].2 as usize);
                                (row / CHUNK_LEN, row % CHUNK_LEN)
                            })
                            .collect();
                        let refs: Vec<&dyn Array> = chunks.iter().map(|a| a.as_ref()).collect();
                        arrow_select::interleave::interleave(&refs, &picks)?
                    }
                });
            }
            min_time = min_time.min(entries[part[0].0].1);
            for &(s, _) in part {
                max_time = max_time.max(entries[s].1);
                min_time = min_time.min(entries[s].1);
            }
            writer.write(&RecordBatch::try_new(file_schema.clone(), arrays)?)?;
        }
        let rows = groups.len() as u64;
        let bytes: Bytes = writer.into_inner()?.into();
        emit(WindowFile {
            window_start: window * gen1_ns,
            bytes,
            rows,
            min_time,
            max_time,
        })?;
    }
    Ok(())
}
