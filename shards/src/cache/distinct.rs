//! The distinct-value cache of one table on one shard: every distinct combination of its
//! columns' values seen within `max_age`, at most `max_cardinality` of them.
//!
//! Invariants:
//! - A combination is an entry ([`super::entries`]) with the time it was last seen.
//! - Past `max_cardinality` (plus an eighth, so pruning is not paid per row) the least
//!   recently seen combinations go, down to `max_cardinality`; a query never returns more
//!   than `max_cardinality`, newest kept.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::entries::Entries;
use super::files::FileRows;
use super::{output_type, CacheError, DistinctCacheDef, KeyFilter};
use crate::buffer::TableBuffer;
use crate::schema::TableSchema;

/// The name of the column a shard's answer carries each combination's last-seen time in
/// (the coordinator uses it to keep the newest when it merges shards; users never see it).
pub const LAST_SEEN_COLUMN: &str = "__last_seen";

/// The columns of a distinct-value cache's answer, names and types, in hierarchy order.
pub fn output_fields(def: &DistinctCacheDef, table: &TableSchema) -> Vec<Field> {
    def.columns
        .iter()
        .map(|&id| {
            let c = &table.columns[id as usize];
            Field::new(c.name.as_ref(), output_type(c.ty), true)
        })
        .collect()
}

/// See the module documentation.
#[derive(Debug)]
pub struct DistinctCache {
    def: Arc<DistinctCacheDef>,
    entries: Entries,
    last_seen: Vec<i64>,
}

impl DistinctCache {
    pub fn new(def: Arc<DistinctCacheDef>, table: &TableSchema) -> Self {
        DistinctCache {
            entries: Entries::new(def.columns.clone(), table),
            def,
            last_seen: Vec::new(),
        }
    }

    pub fn def(&self) -> &Arc<DistinctCacheDef> {
        &self.def
    }

    /// Combinations held (expired or not).
    pub fn len(&self) -> usize {
        self.last_seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_seen.is_empty()
    }

    /// Feeds rows `rows` of a table's buffer (the buffer with id `buffer_id`).
    pub(crate) fn feed(
        &mut self,
        table: &TableSchema,
        tb: &TableBuffer,
        buffer_id: u64,
        rows: Range<usize>,
        arrived: i64,
    ) {
        for row in rows {
            let entry = self.entries.entry_of(table, tb, buffer_id, row);
            self.seen(entry, arrived);
        }
        self.prune();
    }

    /// Feeds rows `rows` of a file's batch, leaving out those older than `max_age` (see
    /// [`super::files`]).
    pub(crate) fn feed_file(&mut self, file: &FileRows<'_>, rows: Range<usize>, arrived: i64) {
        let cutoff = arrived.saturating_sub(self.def.max_age_ns);
        for row in rows {
            if file.time(row) <= cutoff {
                continue;
            }
            let entry = self.entries.entry_of_values(|id| file.value(row, id));
            self.seen(entry, arrived);
        }
        self.prune();
    }

    /// Records that a combination (with whether it is new, as the entry lookup says) was
    /// seen at `at`.
    fn seen(&mut self, (entry, new): (u32, bool), at: i64) {
        if new {
            self.last_seen.push(at);
        } else {
            let s = &mut self.last_seen[entry as usize];
            *s = (*s).max(at);
        }
    }

    /// Keeps to `max_cardinality` (with an eighth's slack, so pruning is not paid per row).
    fn prune(&mut self) {
        let max = self.def.max_cardinality;
        if self.last_seen.len() > max + max / 8 {
            self.keep_newest(max);
        }
    }

    /// Keeps the `n` most recently seen combinations.
    fn keep_newest(&mut self, n: usize) {
        let mut order: Vec<usize> = (0..self.last_seen.len()).collect();
        order.sort_unstable_by_key(|&e| std::cmp::Reverse(self.last_seen[e]));
        order.truncate(n);
        order.sort_unstable();
        self.retain(&order);
    }

    fn retain(&mut self, keep: &[usize]) {
        self.entries.retain(keep);
        self.last_seen = keep.iter().map(|&e| self.last_seen[e]).collect();
    }

    /// Estimated bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.entries.memory_bytes() + self.last_seen.len() * size_of::<i64>()
    }

    /// When each combination was last seen.
    pub(crate) fn newest_arrivals(&self) -> impl Iterator<Item = i64> + '_ {
        self.last_seen.iter().copied()
    }

    /// Drops the combinations `drop` marks.
    pub(crate) fn drop_entries(&mut self, drop: &[bool]) {
        let keep: Vec<usize> = (0..self.last_seen.len()).filter(|&e| !drop[e]).collect();
        self.retain(&keep);
    }

    /// Drops combinations not seen within `max_age` before `now_ns`.
    pub(crate) fn evict(&mut self, now_ns: i64) {
        let cutoff = now_ns.saturating_sub(self.def.max_age_ns);
        if self.last_seen.iter().all(|&s| s > cutoff) {
            return;
        }
        let keep: Vec<usize> = (0..self.last_seen.len())
            .filter(|&e| self.last_seen[e] > cutoff)
            .collect();
        self.retain(&keep);
    }

    /// The combinations matching `filters` and seen within `max_age` before `now_ns`, at
    /// most `max_cardinality` (the newest), as the columns of [`output_fields`] (those in
    /// `projection`, all without one) followed by [`LAST_SEEN_COLUMN`]. A projection may
    /// repeat combinations; the coordinator de-duplicates.
    pub fn query(
        &self,
        table: &TableSchema,
        filters: &[KeyFilter],
        projection: Option<&[usize]>,
        now_ns: i64,
    ) -> Result<RecordBatch, CacheError> {
        let cutoff = now_ns.saturating_sub(self.def.max_age_ns);
        let mut picked: Vec<u32> = self
            .entries
            .matching(filters)
            .unwrap_or_else(|| (0..self.last_seen.len() as u32).collect());
        picked.retain(|&e| self.last_seen[e as usize] > cutoff);
        if picked.len() > self.def.max_cardinality {
            picked.sort_unstable_by_key(|&e| std::cmp::Reverse(self.last_seen[e as usize]));
            picked.truncate(self.def.max_cardinality);
            picked.sort_unstable();
        }
        let fields = output_fields(&self.def, table);
        let positions: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..fields.len()).collect(),
        };
        let mut out_fields: Vec<Field> = positions.iter().map(|&i| fields[i].clone()).collect();
        let mut arrays = positions
            .iter()
            .map(|&k| self.entries.array(k, &picked))
            .collect::<Result<Vec<ArrayRef>, CacheError>>()?;
        out_fields.push(Field::new(
            LAST_SEEN_COLUMN,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ));
        arrays.push(Arc::new(TimestampNanosecondArray::from_iter_values(
            picked.iter().map(|&e| self.last_seen[e as usize]),
        )));
        let schema: SchemaRef = Arc::new(Schema::new(out_fields));
        let options = RecordBatchOptions::new().with_row_count(Some(picked.len()));
        RecordBatch::try_new_with_options(schema, arrays, &options)
            .map_err(|e| CacheError::Arrow(e.to_string()))
    }
}
