//! Backfilling a shard's new caches from its Parquet files.
//!
//! A cache created, or rebuilt at start-up, is filled at once from the rows the shard holds
//! in memory (`ShardCaches::sync`). The rows earlier snapshots persisted are read back here,
//! on a thread of their own, and fed to the cache on the shard a slice at a time, so writes
//! and queries go on meanwhile; until the backfill ends the cache answers from what it has.
//!
//! Invariants:
//! - Only files this shard wrote under the current shard count are read: their series are
//!   this shard's. Files of an earlier layout are left out, since their rows may belong to
//!   other shards now, and a series must have its cache entry on one shard only.
//! - The file list is taken when the backfill starts, after the buffers were fed. A snapshot
//!   in between only adds files holding rows already fed, and feeding those again changes
//!   nothing (file rows never replace values a cache holds).
//! - Files are read newest first (see `shardline_shards::cache::files` for why).
//! - A backfill whose caches have all gone stops, and its reading thread with it.

use std::rc::Rc;
use std::time::Instant;

use arrow::array::RecordBatch;
use shardline_shards::cache::files::read_schema;
use shardline_shards::cache::FileBackfill;
use shardline_shards::persist::compact::read_each;
use shardline_shards::persist::tombstone::without_deleted;
use shardline_shards::persist::{ParquetFile, Tombstone};

use super::shard::ShardCtx;

/// File rows fed per step on the shard, between chances for other tasks to run.
const FEED_SLICE_ROWS: usize = 1024;

/// Runs the shard's cache backfills one after the other until the shard stops.
pub async fn run(ctx: Rc<ShardCtx>) {
    // Make the catalog's caches now, from the replayed WAL, so that after a restart their
    // files are read at once rather than at the first write or query.
    ctx.sync_caches(&ctx.catalog.snapshot());
    while !ctx.stopping.get() {
        let woken = ctx.cache_backfill_wake.listen();
        let stop = ctx.stop_event.listen();
        let next = {
            let mut queue = ctx.cache_backfills.borrow_mut();
            (!queue.is_empty()).then(|| queue.remove(0))
        };
        match next {
            Some(job) => backfill(&ctx, job).await,
            None => futures_lite::future::or(woken, stop).await,
        }
    }
}

/// This shard's files of the job's table that may hold rows it wants, newest first, each
/// with the tombstones whose rows it must leave out.
fn files_for(ctx: &ShardCtx, job: &FileBackfill) -> Vec<(ParquetFile, Vec<Tombstone>)> {
    let manifest = ctx.persist.manifest.borrow();
    let mut files: Vec<(ParquetFile, Vec<Tombstone>)> = manifest
        .files
        .iter()
        .filter(|f| {
            f.database_id == job.database
                && f.table_id == job.table
                && f.shard_count as usize == ctx.persist.config.shard_count
                && f.shard_index as usize == ctx.id
                && f.max_time >= job.since_ns
        })
        .map(|f| (f.clone(), manifest.covering(f, true)))
        .collect();
    files.sort_by_key(|(f, _)| std::cmp::Reverse(f.order()));
    files
}

async fn backfill(ctx: &Rc<ShardCtx>, job: FileBackfill) {
    let files = files_for(ctx, &job);
    if files.is_empty() {
        return;
    }
    let snapshot = ctx.catalog.snapshot();
    let Some(table) = snapshot
        .database_by_id(job.database)
        .and_then(|d| d.table_by_id(job.table))
    else {
        return;
    };
    let started = Instant::now();
    let schema = read_schema(table, &job.columns);
    let storage = ctx.persist.config.storage.clone();
    let since_ns = job.since_ns;
    let file_count = files.len();
    // Two batches in flight bound the memory a backfill holds, whatever the files' size.
    let (tx, rx) = flume::bounded::<Result<RecordBatch, String>>(2);
    let reader = std::thread::Builder::new()
        .name(format!("cache-backfill-{}", ctx.id))
        .spawn(move || {
            for (f, deletes) in &files {
                let mut open = true;
                // Read with the tags deletions test, then shaped back as the caches want.
                let wide = with_columns_of(&schema, deletes);
                let read = read_each(&storage, f, &wide, since_ns, |b| {
                    let b = without_deleted(deletes, b)
                        .and_then(|b| b.project(&(0..schema.fields().len()).collect::<Vec<_>>()));
                    open = tx.send(b.map_err(|e| e.to_string())).is_ok();
                    open
                });
                if let Err(e) = read {
                    open = tx.send(Err(format!("{}: {e}", f.path))).is_ok();
                }
                if !open {
                    return;
                }
            }
        });
    if let Err(e) = reader {
        tracing::warn!(shard = ctx.id, error = %e, "could not start a thread to backfill caches from files; they hold only rows written since the last snapshot");
        return;
    }
    let mut rows = 0usize;
    while let Ok(read) = rx.recv_async().await {
        let batch = match read {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(shard = ctx.id, error = %e, "reading a file to backfill caches failed; its rows stay out of the caches");
                continue;
            }
        };
        let mut start = 0;
        while start < batch.num_rows() {
            if ctx.stopping.get() {
                return;
            }
            let end = (start + FEED_SLICE_ROWS).min(batch.num_rows());
            let fed = ctx.caches.borrow_mut().feed_file(
                &ctx.catalog.snapshot(),
                &job,
                &batch,
                start..end,
                crate::now_ns(),
            );
            match fed {
                Ok((true, shed)) => ctx.report_cache_shed(shed),
                // The caches went: dropping `rx` stops the reader at its next batch.
                Ok((false, _)) => return,
                Err(e) => {
                    tracing::warn!(shard = ctx.id, error = %e, "backfilling caches from files failed; they hold what was fed so far");
                    return;
                }
            }
            rows += end - start;
            start = end;
            glommio::yield_if_needed().await;
        }
    }
    tracing::info!(
        shard = ctx.id,
        database = job.database,
        table = job.table,
        files = file_count,
        rows,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "caches backfilled from files"
    );
}

/// `schema` followed by the tag columns `deletes` test that it lacks (as strings).
fn with_columns_of(
    schema: &arrow::datatypes::SchemaRef,
    deletes: &[Tombstone],
) -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for t in deletes {
        for name in t.predicate.tags() {
            if !fields.iter().any(|f| f.name() == name) {
                fields.push(Field::new(name, DataType::Utf8, true));
            }
        }
    }
    std::sync::Arc::new(Schema::new(fields))
}
