//! One shard's last-value and distinct-value caches ([`last`], [`distinct`]), fed from the
//! rows it has committed.
//!
//! Invariants:
//! - A cache only sees rows that are in the shard's buffer. The shard feeds the caches right
//!   after it applies a batch, and it applies a batch only after the WAL has it, so an
//!   unacknowledged write is never served from a cache.
//! - Every buffered row of a cached table reaches each of its caches once: a table remembers
//!   the buffer it followed (by [`ShardBuffer::id`]) and how many of its rows it has fed. A
//!   frozen buffer has been fed whole before it was frozen, because feeding follows applying
//!   without an await in between.
//! - The set of caches follows the catalog snapshot: [`ShardCaches::sync`] creates the caches
//!   that appeared, backfilled from the rows the shard holds in memory, and drops the ones
//!   that went (with their table or database, too). It returns the new caches, for the
//!   caller to feed the shard's Parquet files to ([`ShardCaches::feed_file`], [`files`]).
//! - Time is always the caller's (`now_ns`), never read here, so tests drive expiry.
//! - With a memory limit, the caches' estimated size stays under it: past it, the entries
//!   whose newest value arrived longest ago go (across all of the shard's caches), down to
//!   seven eighths of the limit. Such an entry reads as if its values had expired. The size
//!   is measured at each sweep, whenever the entries added since the last measure could have
//!   crossed the limit at the last measured bytes per entry, and when the entries doubled
//!   (so the per-entry figure stays current and measuring stays amortized O(1) per entry).
//! - Age is measured from arrival in the cache, as InfluxDB 3 does, not from the row's
//!   timestamp: a row arrives at the `now_ns` of its feed. Rows a cache is built from (at
//!   creation, or from the WAL after a restart) arrive when it is built, so historical data
//!   is cached too, and a restart gives rebuilt values their full ttl again.

pub mod distinct;
mod entries;
pub mod files;
mod gather;
pub mod key;
pub mod last;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::DataType;

use crate::buffer::ShardBuffer;
use crate::schema::{CatalogSnapshot, ColumnType, TableSchema};
pub use distinct::DistinctCache;
pub use key::{KeyRef, KeyValue};
pub use last::LastCache;

/// Most values a last-value cache keeps per key.
pub const MAX_LAST_COUNT: usize = 10;

/// A last-value cache as the catalog defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCacheDef {
    /// Unique among every cache the catalog ever had: a cache deleted and created again
    /// under the same name is a new cache.
    pub id: u64,
    pub name: Arc<str>,
    /// Column ids, in key (hierarchy) order.
    pub key_columns: Vec<u32>,
    /// Column ids; `None`: every column that is not a key, including ones added later.
    /// `time` is always a value column, whether listed or not.
    pub value_columns: Option<Vec<u32>>,
    /// Values kept per key, 1 to [`MAX_LAST_COUNT`].
    pub count: usize,
    /// A value leaves the cache this long after it arrived.
    pub ttl_ns: i64,
}

impl LastCacheDef {
    /// The value columns other than `time`, in the order queries show them: as listed, or
    /// (when not listed) the table's non-key columns in its usual order.
    pub fn value_columns_of(&self, table: &TableSchema) -> Vec<u32> {
        match &self.value_columns {
            Some(cols) => cols
                .iter()
                .copied()
                .filter(|&c| table.columns[c as usize].ty != ColumnType::Time)
                .collect(),
            None => table
                .columns_in_order()
                .into_iter()
                .filter(|c| c.ty != ColumnType::Time && !self.key_columns.contains(&c.id))
                .map(|c| c.id)
                .collect(),
        }
    }
}

/// A distinct-value cache as the catalog defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctCacheDef {
    /// Unique among every cache the catalog ever had (see [`LastCacheDef::id`]).
    pub id: u64,
    pub name: Arc<str>,
    /// Tag or string columns, in hierarchy order.
    pub columns: Vec<u32>,
    /// Most distinct combinations kept.
    pub max_cardinality: usize,
    /// A combination not seen for this long leaves the cache.
    pub max_age_ns: i64,
}

/// A query's condition on one cached column: it must hold one of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFilter {
    /// The column's position among the cache's key columns (last-value) or columns
    /// (distinct-value).
    pub position: usize,
    pub values: Vec<KeyValue>,
}

/// New caches of one table, to be backfilled from the shard's Parquet files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBackfill {
    pub database: u32,
    pub table: u32,
    /// Cache ids.
    pub last: Vec<u64>,
    pub distinct: Vec<u64>,
    /// The columns any of them reads (ids, ascending; `time` is always read).
    pub columns: Vec<u32>,
    /// No row older than this can be wanted by any of them (see [`files`]).
    pub since_ns: i64,
}

/// Why a cache could not answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    #[error("cache {0} does not exist (any more) on this shard")]
    NotFound(u64),
    #[error("building the cache's answer failed: {0}")]
    Arrow(String),
}

/// The Arrow type a cache answers a column with.
pub fn output_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Tag | ColumnType::String => DataType::Utf8,
        ty => crate::persist::writer::file_type(ty),
    }
}

#[derive(Debug, Default)]
struct TableCaches {
    last: Vec<LastCache>,
    distinct: Vec<DistinctCache>,
    /// The buffer this table's caches follow, and how many of its rows they have seen.
    buffer_id: u64,
    fed_rows: usize,
}

/// Every cache of one shard.
#[derive(Debug, Default)]
pub struct ShardCaches {
    /// The catalog version the set of caches matches.
    version: Option<u64>,
    tables: HashMap<(u32, u32), TableCaches>,
    memory_limit: Option<usize>,
    /// The last measure of the caches' size, the average bytes of an entry then, and the
    /// entries added since.
    measured_bytes: usize,
    measured_entries: usize,
    bytes_per_entry: usize,
    added_since_measure: usize,
}

/// What enforcing the memory limit dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryShed {
    pub entries: usize,
    pub bytes_before: usize,
    pub bytes_after: usize,
    pub limit: usize,
}

/// The least an entry is taken to cost when deciding whether to measure.
const MIN_ENTRY_BYTES: usize = 64;
/// Entries added after which the size is measured again even when the estimate stays under
/// the limit (or once the entries have doubled): keeps the per-entry estimate current.
const REMEASURE_ENTRIES: usize = 1024;

impl ShardCaches {
    /// Caches whose estimated size is kept under `limit` bytes (`None`: unbounded).
    pub fn with_memory_limit(limit: Option<usize>) -> Self {
        ShardCaches {
            memory_limit: limit,
            bytes_per_entry: MIN_ENTRY_BYTES,
            ..ShardCaches::default()
        }
    }

    /// Estimated bytes held by all caches.
    pub fn memory_bytes(&self) -> usize {
        self.tables
            .values()
            .map(|tc| {
                tc.last.iter().map(LastCache::memory_bytes).sum::<usize>()
                    + tc.distinct
                        .iter()
                        .map(DistinctCache::memory_bytes)
                        .sum::<usize>()
            })
            .sum()
    }

    fn entry_count(&self) -> usize {
        self.tables
            .values()
            .map(|tc| {
                tc.last.iter().map(LastCache::entry_slots).sum::<usize>()
                    + tc.distinct.iter().map(DistinctCache::len).sum::<usize>()
            })
            .sum()
    }

    /// Measures the caches and, past the limit, drops the entries that were fed longest ago
    /// until they are at seven eighths of it.
    pub fn enforce_memory_limit(&mut self) -> Option<MemoryShed> {
        let bytes_before = self.memory_bytes();
        self.measure(bytes_before);
        let limit = self.memory_limit?;
        if bytes_before <= limit {
            return None;
        }
        let excess = bytes_before - (limit - limit / 8);
        // Every entry's newest arrival, with its cache's average entry size.
        let mut all: Vec<(i64, u32, u32)> = Vec::new();
        let mut sizes: Vec<usize> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        for tc in self.tables.values() {
            let caches = tc
                .last
                .iter()
                .map(|c| {
                    (
                        c.memory_bytes(),
                        c.entry_slots(),
                        c.newest_arrivals().collect(),
                    )
                })
                .chain(tc.distinct.iter().map(|c| {
                    (
                        c.memory_bytes(),
                        c.len(),
                        c.newest_arrivals().collect::<Vec<_>>(),
                    )
                }));
            for (bytes, n, arrivals) in caches {
                let cache = sizes.len() as u32;
                sizes.push(bytes / n.max(1));
                counts.push(n);
                all.extend(
                    arrivals
                        .into_iter()
                        .enumerate()
                        .map(|(e, t)| (t, cache, e as u32)),
                );
            }
        }
        all.sort_unstable();
        let mut drop: Vec<Vec<bool>> = counts.iter().map(|&n| vec![false; n]).collect();
        let mut freed = 0;
        let mut entries = 0;
        for &(_, cache, e) in &all {
            if freed >= excess {
                break;
            }
            drop[cache as usize][e as usize] = true;
            freed += sizes[cache as usize];
            entries += 1;
        }
        let mut drops = drop.into_iter();
        for tc in self.tables.values_mut() {
            for c in &mut tc.last {
                c.drop_entries(&drops.next().expect("one mask per cache"));
            }
            for c in &mut tc.distinct {
                c.drop_entries(&drops.next().expect("one mask per cache"));
            }
        }
        let bytes_after = self.memory_bytes();
        self.measure(bytes_after);
        Some(MemoryShed {
            entries,
            bytes_before,
            bytes_after,
            limit,
        })
    }

    fn measure(&mut self, bytes: usize) {
        self.measured_bytes = bytes;
        self.measured_entries = self.entry_count();
        self.bytes_per_entry = (bytes / self.measured_entries.max(1)).max(MIN_ENTRY_BYTES);
        self.added_since_measure = 0;
    }

    /// Drops the caches of a table (rows of it were deleted): the next [`Self::sync`] builds
    /// them again from what the shard still holds.
    pub fn forget_table(&mut self, db_id: u32, table_id: u32) {
        if self.tables.remove(&(db_id, table_id)).is_some() {
            self.version = None;
        }
    }

    /// Whether the set of caches matches `snapshot`'s.
    pub fn synced_with(&self, snapshot: &CatalogSnapshot) -> bool {
        self.version == Some(snapshot.version)
    }

    /// Whether there is any cache at all (the write path skips feeding when not).
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Brings the set of caches to `snapshot`'s: new ones are backfilled from `buffers`
    /// (oldest first, the active one last), removed ones dropped. Cheap when the catalog
    /// has not changed.
    /// Returns, per table, the new caches, which the shard's files should backfill too
    /// ([`ShardCaches::feed_file`]).
    pub fn sync(
        &mut self,
        snapshot: &CatalogSnapshot,
        buffers: &[&ShardBuffer],
        now_ns: i64,
    ) -> Vec<FileBackfill> {
        let mut backfills = Vec::new();
        if self.version == Some(snapshot.version) {
            return backfills;
        }
        // Catch up first, so that new and old caches of a table stand at the same row.
        // Keeping to the memory limit may shed here too; that shed goes unreported.
        if let Some(active) = buffers.last() {
            let _ = self.feed(snapshot, active, now_ns);
        }
        let mut backfilled = 0;
        let mut wanted: HashMap<(u32, u32), (Vec<u64>, Vec<u64>)> = HashMap::new();
        for db in snapshot
            .databases
            .iter()
            .filter(|d| d.deleted_at_ns.is_none())
        {
            for t in db.live_tables() {
                if t.last_caches.is_empty() && t.distinct_caches.is_empty() {
                    continue;
                }
                let entry = self.tables.entry((db.id, t.id)).or_default();
                let mut backfill = FileBackfill {
                    database: db.id,
                    table: t.id,
                    last: Vec::new(),
                    distinct: Vec::new(),
                    columns: Vec::new(),
                    since_ns: now_ns,
                };
                let mut fresh_last = Vec::new();
                for def in &t.last_caches {
                    if !entry.last.iter().any(|c| c.def().id == def.id) {
                        let mut c = LastCache::new(def.clone(), t);
                        for b in buffers {
                            if let Some(tb) = b.table(db.id, t.id) {
                                c.feed(t, tb, b.id(), 0..tb.rows(), now_ns);
                            }
                        }
                        backfilled += c.entry_slots();
                        backfill.last.push(def.id);
                        backfill.columns.extend(&def.key_columns);
                        backfill.columns.extend(def.value_columns_of(t));
                        backfill.since_ns =
                            backfill.since_ns.min(now_ns.saturating_sub(def.ttl_ns));
                        fresh_last.push(c);
                    }
                }
                entry.last.extend(fresh_last);
                for def in &t.distinct_caches {
                    if !entry.distinct.iter().any(|c| c.def().id == def.id) {
                        let mut c = DistinctCache::new(def.clone(), t);
                        for b in buffers {
                            if let Some(tb) = b.table(db.id, t.id) {
                                c.feed(t, tb, b.id(), 0..tb.rows(), now_ns);
                            }
                        }
                        backfilled += c.len();
                        backfill.distinct.push(def.id);
                        backfill.columns.extend(&def.columns);
                        backfill.since_ns =
                            backfill.since_ns.min(now_ns.saturating_sub(def.max_age_ns));
                        entry.distinct.push(c);
                    }
                }
                if let Some(active) = buffers.last() {
                    if entry.buffer_id != active.id() {
                        entry.buffer_id = active.id();
                        entry.fed_rows = active.table(db.id, t.id).map_or(0, |tb| tb.rows());
                    }
                }
                if !backfill.last.is_empty() || !backfill.distinct.is_empty() {
                    backfill.columns.sort_unstable();
                    backfill.columns.dedup();
                    backfills.push(backfill);
                }
                wanted.insert(
                    (db.id, t.id),
                    (
                        t.last_caches.iter().map(|d| d.id).collect(),
                        t.distinct_caches.iter().map(|d| d.id).collect(),
                    ),
                );
            }
        }
        self.tables.retain(|k, tc| match wanted.get(k) {
            None => false,
            Some((last, distinct)) => {
                tc.last.retain(|c| last.contains(&c.def().id));
                tc.distinct.retain(|c| distinct.contains(&c.def().id));
                true
            }
        });
        self.version = Some(snapshot.version);
        self.added_since_measure += backfilled;
        backfills
    }

    /// Feeds rows `rows` of `batch`, read from one of the shard's Parquet files in
    /// [`files::read_schema`]'s shape, to the caches `backfill` names (see [`files`] for how
    /// such rows are treated). Returns `Ok(false)` when none of those caches exists any more
    /// (the rest of the backfill can be dropped), and what keeping to the memory limit
    /// dropped.
    pub fn feed_file(
        &mut self,
        snapshot: &CatalogSnapshot,
        backfill: &FileBackfill,
        batch: &RecordBatch,
        rows: Range<usize>,
        now_ns: i64,
    ) -> Result<(bool, Option<MemoryShed>), CacheError> {
        let table = snapshot
            .database_by_id(backfill.database)
            .filter(|d| d.deleted_at_ns.is_none())
            .and_then(|d| d.table_by_id(backfill.table));
        let (Some(table), Some(tc)) = (
            table,
            self.tables.get_mut(&(backfill.database, backfill.table)),
        ) else {
            return Ok((false, None));
        };
        let file_rows = files::FileRows::new(table, batch)?;
        let rows = rows.start.min(file_rows.len())..rows.end.min(file_rows.len());
        let mut any = false;
        for c in tc
            .last
            .iter_mut()
            .filter(|c| backfill.last.contains(&c.def().id))
        {
            let before = c.entry_slots();
            c.feed_file(table, &file_rows, rows.clone(), now_ns);
            self.added_since_measure += c.entry_slots().saturating_sub(before);
            any = true;
        }
        for c in tc
            .distinct
            .iter_mut()
            .filter(|c| backfill.distinct.contains(&c.def().id))
        {
            let before = c.len();
            c.feed_file(&file_rows, rows.clone(), now_ns);
            self.added_since_measure += c.len().saturating_sub(before);
            any = true;
        }
        Ok((any, self.keep_to_limit()))
    }

    /// Feeds every cache the rows `buffer` gained since the last feed. `buffer` is the
    /// shard's active buffer. Returns what keeping to the memory limit dropped, if it had to.
    pub fn feed(
        &mut self,
        snapshot: &CatalogSnapshot,
        buffer: &ShardBuffer,
        now_ns: i64,
    ) -> Option<MemoryShed> {
        for (&(db_id, table_id), tc) in self.tables.iter_mut() {
            if tc.buffer_id != buffer.id() {
                tc.buffer_id = buffer.id();
                tc.fed_rows = 0;
            }
            let Some(tb) = buffer.table(db_id, table_id) else {
                continue;
            };
            let rows = tb.rows();
            if rows <= tc.fed_rows {
                continue;
            }
            let Some(table) = snapshot
                .database_by_id(db_id)
                .and_then(|d| d.table_by_id(table_id))
            else {
                continue;
            };
            let range = tc.fed_rows..rows;
            for c in &mut tc.last {
                let before = c.entry_slots();
                c.feed(table, tb, buffer.id(), range.clone(), now_ns);
                self.added_since_measure += c.entry_slots().saturating_sub(before);
            }
            for c in &mut tc.distinct {
                let before = c.len();
                c.feed(table, tb, buffer.id(), range.clone(), now_ns);
                self.added_since_measure += c.len().saturating_sub(before);
            }
            tc.fed_rows = rows;
        }
        self.keep_to_limit()
    }

    /// Measures the caches, and sheds entries past the limit, when the entries added since
    /// the last measure could have crossed it (or have made the estimate stale).
    fn keep_to_limit(&mut self) -> Option<MemoryShed> {
        let limit = self.memory_limit?;
        let grown = self.added_since_measure * self.bytes_per_entry;
        let stale = self.added_since_measure > self.measured_entries.max(REMEASURE_ENTRIES);
        if self.measured_bytes + grown > limit || stale {
            return self.enforce_memory_limit();
        }
        None
    }

    /// Drops what has aged out (ttl, max age), compacts what eviction left sparse, and
    /// keeps to the memory limit.
    pub fn evict(&mut self, now_ns: i64) -> Option<MemoryShed> {
        for tc in self.tables.values_mut() {
            for c in &mut tc.last {
                c.evict(now_ns);
            }
            for c in &mut tc.distinct {
                c.evict(now_ns);
            }
        }
        self.enforce_memory_limit()
    }

    pub fn last_cache(&self, db_id: u32, table_id: u32, id: u64) -> Result<&LastCache, CacheError> {
        self.tables
            .get(&(db_id, table_id))
            .and_then(|t| t.last.iter().find(|c| c.def().id == id))
            .ok_or(CacheError::NotFound(id))
    }

    pub fn distinct_cache(
        &self,
        db_id: u32,
        table_id: u32,
        id: u64,
    ) -> Result<&DistinctCache, CacheError> {
        self.tables
            .get(&(db_id, table_id))
            .and_then(|t| t.distinct.iter().find(|c| c.def().id == id))
            .ok_or(CacheError::NotFound(id))
    }
}

#[cfg(test)]
mod tests;
