//! Compaction: Parquet files of one table and day are merged into fewer, larger sorted ones,
//! so that queries read few files and never have to merge overlapping ones.
//!
//! Invariants:
//! - Files whose time ranges overlap may hold the same point; they are merged only all
//!   together (a whole connected group of overlapping files), so no file left out can share a
//!   point with the result, and last-write-wins order among the inputs is applied inside the
//!   merge. The result takes the order of its newest input.
//! - Files that overlap nothing are merged in runs adjacent in time (no other file between
//!   them), so the result overlaps nothing either.
//! - The merged file holds every point of its inputs once (last write wins per field),
//!   sorted by tags then time; it is durable before the manifest that swaps it in is
//!   written, and the inputs are only listed as garbage there, deleted after a grace period
//!   (queries planned before the swap may still read them).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{new_null_array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::schema::{ColumnType, TableSchema};

use super::manifest::{Garbage, Manifest, ParquetFile};
use super::merge::{merge_last_write_wins, PointKey};
use super::storage::Storage;
use super::tombstone::without_deleted;
use super::writer::{encode_batches, file_schema};
use super::{file_path, PersistError, ShardLayout};

/// Files with fewer rows than this are "small" and get merged.
pub const SMALL_FILE_ROWS: u64 = 1 << 20;
/// A merge reads at most this many rows (they are merged in memory); callers lower it to
/// fit their memory budget.
pub const MAX_MERGE_ROWS: u64 = 2 << 20;

const NS_PER_DAY: i64 = 86_400_000_000_000;

/// (database, table, UTC day, epoch, shard count, shard index): files that may be merged.
type GroupKey = (u32, u32, i64, u64, u32, u32);

/// Runs of files to merge, each as indices into `manifest.files` in last-write-wins order,
/// each of at most `max_rows` rows (and [`MAX_MERGE_ROWS`]). Groups of overlapping files come
/// first (they cost queries a merge); a group too large for the budget is left alone.
pub fn plan(manifest: &Manifest, layout: &ShardLayout, max_rows: u64) -> Vec<Vec<usize>> {
    use std::collections::BTreeMap;
    let max_rows = max_rows.min(MAX_MERGE_ROWS);
    let mut groups: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, f) in manifest.files.iter().enumerate() {
        // Only this shard's own series: files adopted from another layout are left alone.
        if f.shard_count as usize != layout.count || f.shard_index as usize != layout.index {
            continue;
        }
        let day = f.min_time.div_euclid(NS_PER_DAY);
        if f.max_time.div_euclid(NS_PER_DAY) != day {
            continue;
        }
        groups
            .entry((
                f.database_id,
                f.table_id,
                day,
                f.epoch,
                f.shard_count,
                f.shard_index,
            ))
            .or_default()
            .push(i);
    }
    let files = &manifest.files;
    let rows = |run: &[usize]| run.iter().map(|&i| files[i].row_count).sum::<u64>();
    let mut overlapping = Vec::new();
    let mut adjacent = Vec::new();
    for (_, mut group) in groups {
        // Connected groups of overlapping files, sweeping by start time.
        group.sort_by_key(|&i| (files[i].min_time, files[i].max_time));
        let mut components: Vec<Vec<usize>> = Vec::new();
        let mut reach = i64::MIN;
        for i in group {
            match components.last_mut() {
                Some(c) if files[i].min_time <= reach => c.push(i),
                _ => components.push(vec![i]),
            }
            reach = reach.max(files[i].max_time);
        }
        let mut run: Vec<usize> = Vec::new();
        for c in components {
            if c.len() > 1 {
                if rows(&c) <= max_rows {
                    overlapping.push(c);
                }
                if run.len() > 1 {
                    adjacent.push(std::mem::take(&mut run));
                }
                run.clear();
                continue;
            }
            let i = c[0];
            let small = files[i].row_count < SMALL_FILE_ROWS.min(max_rows / 2);
            if !small || rows(&run) + files[i].row_count > max_rows {
                if run.len() > 1 {
                    adjacent.push(std::mem::take(&mut run));
                }
                run.clear();
            }
            if small {
                run.push(i);
            }
        }
        if run.len() > 1 {
            adjacent.push(run);
        }
    }
    let mut runs = overlapping;
    runs.extend(adjacent);
    for r in &mut runs {
        r.sort_by_key(|&i| files[i].order());
    }
    runs
}

/// Reads a file's rows shaped as `schema` (columns matched by name; missing ones null).
fn read_shaped(
    storage: &Storage,
    f: &ParquetFile,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, PersistError> {
    let mut out = Vec::new();
    read_each(storage, f, schema, i64::MIN, |b| {
        out.push(b);
        true
    })?;
    Ok(out)
}

/// Reads the rows of a file whose time is at least `since_ns`, shaped as `schema` (columns
/// matched by name and cast to its types, missing ones null; only those columns are
/// decoded), and hands them to `each` a batch at a time until it returns `false`.
pub fn read_each(
    storage: &Storage,
    f: &ParquetFile,
    schema: &SchemaRef,
    since_ns: i64,
    each: impl FnMut(RecordBatch) -> bool,
) -> Result<(), PersistError> {
    // A local file is read in place, so only the wanted columns' pages leave the disk.
    match storage.local_file(&f.location()) {
        Some(path) => {
            let file = std::fs::File::open(&path).map_err(|source| PersistError::Io {
                what: format!("opening {}", path.display()),
                source,
            })?;
            read_each_from(
                ParquetRecordBatchReaderBuilder::try_new(file)?,
                schema,
                since_ns,
                each,
            )
        }
        None => {
            let bytes = storage.get(&f.location())?;
            read_each_from(
                ParquetRecordBatchReaderBuilder::try_new(bytes)?,
                schema,
                since_ns,
                each,
            )
        }
    }
}

/// [`read_each`] from an opened file.
fn read_each_from<T: parquet::file::reader::ChunkReader + 'static>(
    builder: ParquetRecordBatchReaderBuilder<T>,
    schema: &SchemaRef,
    since_ns: i64,
    mut each: impl FnMut(RecordBatch) -> bool,
) -> Result<(), PersistError> {
    let builder = builder.with_batch_size(64 * 1024);
    let file_schema = builder.schema().clone();
    let roots: Vec<usize> = schema
        .fields()
        .iter()
        .filter_map(|field| file_schema.index_of(field.name()).ok())
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).build()?;
    for b in reader {
        let mut b = b?;
        if since_ns != i64::MIN {
            if let Some(t) = b
                .column_by_name("time")
                .and_then(|t| t.as_primitive_opt::<TimestampNanosecondType>())
            {
                let recent: BooleanArray = t
                    .iter()
                    .map(|v| Some(v.is_some_and(|v| v >= since_ns)))
                    .collect();
                b = arrow_select::filter::filter_record_batch(&b, &recent)?;
            }
        }
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|field| match b.column_by_name(field.name()) {
                Some(c) if c.data_type() == field.data_type() => Ok(c.clone()),
                Some(c) => arrow_cast::cast(c, field.data_type()),
                None => Ok(new_null_array(field.data_type(), b.num_rows())),
            })
            .collect::<Result<_, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
        if !each(RecordBatch::try_new_with_options(
            schema.clone(),
            cols,
            &options,
        )?) {
            break;
        }
    }
    Ok(())
}

/// Merges one run of files (indices into `manifest.files`) into a new file, leaving out the
/// rows the manifest's tombstones delete, and returns the manifest that swaps it in (not yet
/// saved; without a new file if no row is left). A run of one file rewrites it without its
/// deleted rows. `delete_after_ns` is when the inputs may go.
pub fn compact_run(
    storage: &Storage,
    mut manifest: Manifest,
    run: &[usize],
    table: &TableSchema,
    database: &str,
    layout: &ShardLayout,
    delete_after_ns: i64,
) -> Result<Manifest, PersistError> {
    let schema = file_schema(table);
    let inputs: Vec<ParquetFile> = run.iter().map(|&i| manifest.files[i].clone()).collect();
    let mut batches = Vec::new();
    for f in &inputs {
        // Rows deletions hide are left out here: the result is no longer covered by them.
        let deletes = manifest.covering(f, true);
        for b in read_shaped(storage, f, &schema)? {
            batches.push(without_deleted(&deletes, b)?);
        }
    }
    let columns = table.columns_in_order();
    let key = PointKey {
        tags: (0..columns.iter().filter(|c| c.ty == ColumnType::Tag).count()).collect(),
        time: columns.len() - 1,
    };
    let merged = merge_last_write_wins(&batches, &key, 64 * 1024)?;
    drop(batches);
    let rows: u64 = merged.iter().map(|b| b.num_rows() as u64).sum();
    let min_time = inputs.iter().map(|f| f.min_time).min().unwrap_or(0);
    let max_time = inputs.iter().map(|f| f.max_time).max().unwrap_or(0);
    let newest = inputs
        .iter()
        .max_by_key(|f| f.order())
        .expect("runs are not empty")
        .clone();
    let gone: Vec<u64> = inputs.iter().map(|f| f.id).collect();
    manifest.files.retain(|f| !gone.contains(&f.id));
    manifest.garbage.extend(inputs.iter().map(|f| Garbage {
        path: f.path.clone(),
        delete_after_ns,
    }));
    if rows == 0 {
        // Every row was deleted: nothing to write.
        return Ok(manifest);
    }
    let bytes = encode_batches(Arc::clone(&schema), &merged)?;
    let id = manifest.next_file_id;
    manifest.next_file_id += 1;
    let path = file_path(database, &table.name, min_time, layout.index, id);
    let size_bytes = bytes.len() as u64;
    storage.put_durable(&path, bytes)?;
    let out = ParquetFile {
        id,
        path: path.to_string(),
        database_id: newest.database_id,
        table_id: newest.table_id,
        table_name: table.name.to_string(),
        size_bytes,
        row_count: rows,
        min_time,
        max_time,
        shard_count: newest.shard_count,
        shard_index: newest.shard_index,
        epoch: newest.epoch,
        sort_id: Some(newest.order().1),
        // Inputs share one layout epoch (see `plan`): the result holds their newest segment.
        wal_max: inputs.iter().map(|f| f.wal_max).max().unwrap_or(0),
        // Every tombstone recorded so far either covered an input and was applied above,
        // or covered none of them, so none can cover the result.
        deletes_applied: manifest.last_tombstone_id,
    };
    manifest.files.push(out);
    Ok(manifest)
}
