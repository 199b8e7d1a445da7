//! Persistence: a shard's frozen buffer becomes Parquet files in an object store, listed by
//! the shard's manifest; files are merged by compaction and read back by queries.
//!
//! The order of a snapshot (see [`persist_buffer`]) is what makes it crash-safe: every file
//! is durable before the manifest that lists it, and the WAL segments the files cover are
//! deleted (by the caller) only after that manifest is durable.
//!
//! Everything here blocks: it runs on persistence threads, never on a shard's executor.

pub mod compact;
pub mod expire;
pub mod manifest;
pub mod merge;
pub mod storage;
pub mod sweep;
pub mod tombstone;
pub mod writer;

use object_store::path::Path;

use crate::buffer::ShardBuffer;
use crate::schema::CatalogSnapshot;

pub use manifest::{Manifest, ParquetFile};
pub use storage::Storage;
pub use tombstone::{TagPredicate, Tombstone};

/// Errors of persistence, phrased for an operator.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("object store: {0}")]
    Store(#[source] object_store::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("encoding Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("building record batches: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("manifest JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("manifest of shard {shard} is unreadable ({reason}); restore it or move the shard's manifests away to start without its files")]
    Manifest { shard: usize, reason: String },
}

/// Where and under which layout a shard persists, and how its files are cut in time.
#[derive(Debug, Clone)]
pub struct ShardLayout {
    pub index: usize,
    pub count: usize,
    pub epoch: u64,
    /// Time span of one snapshot file (`--gen1-duration`), in ns.
    pub gen1_ns: i64,
}

/// Named points of a snapshot where a test may crash the process.
pub const FAULT_AFTER_PARQUET: &str = "after-parquet-write";
pub const FAULT_AFTER_MANIFEST: &str = "after-manifest-write";

/// The object path of a file: `<db>/<table>/<YYYY-MM-DD>/<HH-MM>/shard-<i>-<id>.parquet`,
/// dated by its window's start (UTC). Names are percent-encoded where the store needs it.
pub fn file_path(db: &str, table: &str, window_start_ns: i64, shard: usize, id: u64) -> Path {
    let when = chrono::DateTime::from_timestamp_nanos(window_start_ns);
    Path::from_iter([
        db.to_string(),
        table.to_string(),
        when.format("%Y-%m-%d").to_string(),
        when.format("%H-%M").to_string(),
        format!("shard-{shard}-{id}.parquet"),
    ])
}

/// What a snapshot covers besides the buffer's rows.
#[derive(Debug, Clone)]
pub struct SnapshotCover {
    /// The shard's own WAL segments up to this one are in the buffer.
    pub wal_covered: u64,
    /// Old-layout WAL epochs whose lines (this shard's share) the buffer holds.
    pub absorbed_epochs: Vec<u64>,
}

/// Writes every table of `buffer` as Parquet files (one per table and `gen1` window), then
/// a new version of the manifest listing them; returns that manifest. `fault` is called at
/// each named point (tests crash the process there).
pub fn persist_buffer(
    storage: &Storage,
    buffer: &ShardBuffer,
    catalog: &CatalogSnapshot,
    mut manifest: Manifest,
    layout: &ShardLayout,
    cover: &SnapshotCover,
    fault: &dyn Fn(&str),
) -> Result<Manifest, PersistError> {
    let mut tables: Vec<_> = buffer.tables().collect();
    tables.sort_by_key(|(k, _)| **k);
    for (&(db_id, table_id), table) in tables {
        let Some(db) = catalog.database_by_id(db_id) else {
            tracing::error!(
                db_id,
                "buffered rows of a database missing from the catalog; not persisted"
            );
            continue;
        };
        let Some(schema) = db.table_by_id(table_id) else {
            tracing::error!(
                db_id,
                table_id,
                "buffered rows of a table missing from the catalog; not persisted"
            );
            continue;
        };
        if db.deleted_at(schema).is_some() {
            // Deleted: nobody can read these rows again, so they are not written.
            tracing::debug!(
                db_id,
                table_id,
                "rows of a deleted table dropped at snapshot"
            );
            continue;
        }
        writer::encode_table(table, schema, layout.gen1_ns, |f| {
            let id = manifest.next_file_id;
            manifest.next_file_id += 1;
            let path = file_path(&db.name, &schema.name, f.window_start, layout.index, id);
            let size_bytes = f.bytes.len() as u64;
            storage.put_durable(&path, f.bytes)?;
            manifest.files.push(ParquetFile {
                id,
                path: path.to_string(),
                database_id: db_id,
                table_id,
                table_name: schema.name.to_string(),
                size_bytes,
                row_count: f.rows,
                min_time: f.min_time,
                max_time: f.max_time,
                shard_count: layout.count as u32,
                shard_index: layout.index as u32,
                epoch: layout.epoch,
                sort_id: None,
                wal_max: cover.wal_covered,
                deletes_applied: 0,
            });
            Ok(())
        })?;
    }
    fault(FAULT_AFTER_PARQUET);
    manifest.wal_covered = manifest.wal_covered.max(cover.wal_covered);
    for e in &cover.absorbed_epochs {
        if !manifest.absorbed_epochs.contains(e) {
            manifest.absorbed_epochs.push(*e);
        }
    }
    let manifest = manifest.save_next(storage, layout.index)?;
    fault(FAULT_AFTER_MANIFEST);
    Ok(manifest)
}

#[cfg(test)]
mod tests;
