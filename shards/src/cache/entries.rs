//! The keyed entries both caches are made of: each distinct combination of values of the
//! cache's key columns gets a dense entry id. Owns the lookup of a buffered row's entry and
//! the per-column indexes queries use.
//!
//! Invariants:
//! - `keys[k][e]` is entry `e`'s value of key column `k`; `index[k]` lists, for each value of
//!   column `k`, the entries holding it, in ascending id order.
//! - When every key column is a tag, a row's entry is found through its series id (one
//!   array read), remembered per buffer; otherwise through a hash of its values. Neither
//!   allocates unless the entry is new.

use std::collections::HashMap;

use arrow_array::builder::{BooleanBuilder, Int64Builder, UInt64Builder};
use arrow_array::ArrayRef;
use hashbrown::HashTable;
use std::sync::Arc;

use super::key::{hash_keys, KeyRef, KeyValue};
use super::{CacheError, KeyFilter};
use crate::buffer::{TableBuffer, Value};
use crate::schema::{ColumnType, TableSchema};

const NO_ENTRY: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Entries {
    /// Key column ids, in order.
    columns: Vec<u32>,
    types: Vec<ColumnType>,
    keys_are_tags: bool,
    /// The buffer `series_entry` describes, and its series ids' entries.
    series_buffer: u64,
    series_entry: Vec<u32>,
    store: Store,
}

/// The entries themselves, apart from how rows find them.
#[derive(Debug)]
struct Store {
    table: HashTable<u32>,
    hashes: Vec<u64>,
    keys: Vec<Vec<KeyValue>>,
    index: Vec<HashMap<KeyValue, Vec<u32>>>,
}

impl Entries {
    pub(crate) fn new(columns: Vec<u32>, table: &TableSchema) -> Self {
        let types: Vec<ColumnType> = columns
            .iter()
            .map(|&c| table.columns[c as usize].ty)
            .collect();
        let n = columns.len();
        Entries {
            keys_are_tags: types.iter().all(|&t| t == ColumnType::Tag),
            types,
            columns,
            series_buffer: 0,
            series_entry: Vec::new(),
            store: Store {
                table: HashTable::new(),
                hashes: Vec::new(),
                keys: vec![Vec::new(); n],
                index: vec![HashMap::new(); n],
            },
        }
    }

    /// Row `row`'s entry in a table buffer (the buffer with id `buffer_id`), and whether it
    /// is new.
    pub(crate) fn entry_of(
        &mut self,
        table: &TableSchema,
        tb: &TableBuffer,
        buffer_id: u64,
        row: usize,
    ) -> (u32, bool) {
        let columns = &self.columns;
        let key_at = |k: usize| KeyRef::of(tb.value(row, &table.columns[columns[k] as usize]));
        if !self.keys_are_tags {
            return self.store.find_or_insert(key_at);
        }
        if self.series_buffer != buffer_id {
            self.series_buffer = buffer_id;
            self.series_entry.clear();
        }
        let sid = tb.row_series().get(row) as usize;
        if let Some(&e) = self.series_entry.get(sid) {
            if e != NO_ENTRY {
                return (e, false);
            }
        }
        let found = self.store.find_or_insert(key_at);
        if self.series_entry.len() <= sid {
            self.series_entry.resize(sid + 1, NO_ENTRY);
        }
        self.series_entry[sid] = found.0;
        found
    }

    /// The entry of a row whose values are read through `value_of(column id)` (a row of a
    /// file, say), and whether it is new. Always found through the hash of its values.
    pub(crate) fn entry_of_values<'a>(
        &mut self,
        value_of: impl Fn(u32) -> Value<'a>,
    ) -> (u32, bool) {
        let columns = &self.columns;
        self.store
            .find_or_insert(|k| KeyRef::of(value_of(columns[k])))
    }

    /// Estimated bytes held: keys (each distinct string once), per-column indexes, lookup tables.
    pub(crate) fn memory_bytes(&self) -> usize {
        let s = &self.store;
        let n = s.hashes.len();
        // Hash, hash-table slot and control byte per entry.
        let mut bytes = n * (size_of::<u64>() + size_of::<u32>() + 1)
            + self.series_entry.len() * size_of::<u32>();
        for k in 0..s.keys.len() {
            // Entries holding the same value share its string: counted once, through the index.
            bytes += s.keys[k].len() * size_of::<KeyValue>()
                + s.index[k].keys().map(KeyValue::heap_bytes).sum::<usize>();
            // The index shares the key strings; it adds its own slots and entry lists.
            bytes += s.index[k].len() * (size_of::<KeyValue>() + size_of::<Vec<u32>>() + 8)
                + n * size_of::<u32>();
        }
        bytes
    }

    /// Keeps only the entries in `keep` (ascending): entry `keep[i]` becomes entry `i`.
    pub(crate) fn retain(&mut self, keep: &[usize]) {
        let old = &self.store;
        let n = old.keys.len();
        let mut keys: Vec<Vec<KeyValue>> = vec![Vec::with_capacity(keep.len()); n];
        let mut index: Vec<HashMap<KeyValue, Vec<u32>>> = vec![HashMap::new(); n];
        let mut hashes = Vec::with_capacity(keep.len());
        for (new, &e) in keep.iter().enumerate() {
            for k in 0..n {
                let v = old.keys[k][e].clone();
                index[k].entry(v.clone()).or_default().push(new as u32);
                keys[k].push(v);
            }
            hashes.push(old.hashes[e]);
        }
        let mut table = HashTable::with_capacity(keep.len());
        for (e, &h) in hashes.iter().enumerate() {
            table.insert_unique(h, e as u32, |&x: &u32| hashes[x as usize]);
        }
        self.store = Store {
            table,
            hashes,
            keys,
            index,
        };
        // Entry ids moved: the series map is rebuilt as rows come.
        self.series_buffer = 0;
        self.series_entry.clear();
    }

    /// The entries whose keys pass every filter, ascending; `None` without filters (all).
    pub(crate) fn matching(&self, filters: &[KeyFilter]) -> Option<Vec<u32>> {
        let size = |f: &KeyFilter| -> usize {
            f.values
                .iter()
                .map(|v| self.store.index[f.position].get(v).map_or(0, Vec::len))
                .sum()
        };
        // Look up the most selective filter; check the others on its entries.
        let narrowest = filters.iter().min_by_key(|f| size(f))?;
        let mut values = narrowest.values.clone();
        values.sort();
        values.dedup();
        let mut out: Vec<u32> = values
            .iter()
            .filter_map(|v| self.store.index[narrowest.position].get(v))
            .flatten()
            .copied()
            .filter(|&e| {
                filters
                    .iter()
                    .all(|f| f.values.contains(&self.store.keys[f.position][e as usize]))
            })
            .collect();
        out.sort_unstable();
        Some(out)
    }

    /// Key column `k`'s values of `entries`, as an Arrow array of the column's answer type.
    pub(crate) fn array(&self, k: usize, entries: &[u32]) -> Result<ArrayRef, CacheError> {
        let keys = &self.store.keys[k];
        let n = entries.len();
        Ok(match self.types[k] {
            ColumnType::Int => {
                let mut b = Int64Builder::with_capacity(n);
                for &e in entries {
                    b.append_option(match &keys[e as usize] {
                        KeyValue::I64(x) => Some(*x),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            ColumnType::UInt => {
                let mut b = UInt64Builder::with_capacity(n);
                for &e in entries {
                    b.append_option(match &keys[e as usize] {
                        KeyValue::U64(x) => Some(*x),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            ColumnType::Bool => {
                let mut b = BooleanBuilder::with_capacity(n);
                for &e in entries {
                    b.append_option(match &keys[e as usize] {
                        KeyValue::Bool(x) => Some(*x),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            // Tags and strings: the usual keys, and the bulk of a large answer.
            _ => super::gather::strings(entries.iter().map(|&e| match &keys[e as usize] {
                KeyValue::Str(s) => Some(&**s),
                _ => None,
            }))?,
        })
    }
}

impl Store {
    fn find_or_insert<'a>(&mut self, key_at: impl Fn(usize) -> KeyRef<'a>) -> (u32, bool) {
        let n = self.keys.len();
        let hash = hash_keys((0..n).map(&key_at));
        let keys = &self.keys;
        if let Some(&e) = self.table.find(hash, |&e| {
            (0..n).all(|k| keys[k][e as usize].as_key_ref() == key_at(k))
        }) {
            return (e, false);
        }
        let e = self.hashes.len() as u32;
        for k in 0..n {
            // A value other entries hold is shared, not copied: low-cardinality columns then
            // keep a handful of strings, which stay in cache when answers are built.
            let owned = key_at(k).to_owned_key();
            let v = match self.index[k].get_key_value(&owned) {
                Some((shared, _)) => shared.clone(),
                None => owned,
            };
            self.index[k].entry(v.clone()).or_default().push(e);
            self.keys[k].push(v);
        }
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.table.insert_unique(hash, e, |&x| hashes[x as usize]);
        (e, true)
    }
}
