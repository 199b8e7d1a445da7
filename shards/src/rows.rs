//! Rows parsed and resolved by the shard that received a write, kept until the WAL has them
//! and then applied to that same shard's buffer, so its own lines are parsed only once.
//!
//! Invariants: the rows borrow the request body (string field values are not copied);
//! everything is kept in four flat vectors, so a request costs a few allocations, not one
//! per line; rows are applied in the order they were pushed, which is body order.

use crate::buffer::{RowInput, ShardBuffer};
use crate::lp::{Field, FieldValue};
use crate::schema::DbSchema;

#[derive(Debug, Clone, Copy)]
struct RowMeta {
    table_id: u32,
    series_hash: u64,
    key: (u32, u32),
    tags: (u32, u32),
    fields: (u32, u32),
    time_ns: i64,
}

/// A request's rows for the local shard.
#[derive(Debug, Default)]
pub struct ParsedRows<'a> {
    rows: Vec<RowMeta>,
    keys: Vec<u8>,
    tag_columns: Vec<u32>,
    fields: Vec<(u32, FieldValue<'a>)>,
}

impl<'a> ParsedRows<'a> {
    pub fn clear(&mut self) {
        self.rows.clear();
        self.keys.clear();
        self.tag_columns.clear();
        self.fields.clear();
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Empties the rows and releases their borrow of the body, keeping the vectors' capacity
    /// for the next request. (An empty vector of borrowed values is rebuilt as one of
    /// `'static` values through an in-place `collect`, which reuses the allocation.)
    pub fn recycle(mut self) -> ParsedRows<'static> {
        self.clear();
        ParsedRows {
            rows: self.rows,
            keys: self.keys,
            tag_columns: self.tag_columns,
            fields: self
                .fields
                .into_iter()
                .map(|_| unreachable!("the vector is empty"))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Keeps one resolved line: `column_ids` holds its tags' ids then its fields' ids.
    #[inline]
    pub fn push(
        &mut self,
        table_id: u32,
        series_hash: u64,
        series_key: &[u8],
        column_ids: &[u32],
        fields: &[Field<'a>],
        time_ns: i64,
    ) {
        let ntags = column_ids.len() - fields.len();
        let k0 = self.keys.len() as u32;
        self.keys.extend_from_slice(series_key);
        let t0 = self.tag_columns.len() as u32;
        self.tag_columns.extend_from_slice(&column_ids[..ntags]);
        let f0 = self.fields.len() as u32;
        self.fields.extend(
            fields
                .iter()
                .zip(&column_ids[ntags..])
                .map(|(f, &c)| (c, f.value)),
        );
        self.rows.push(RowMeta {
            table_id,
            series_hash,
            key: (k0, self.keys.len() as u32),
            tags: (t0, self.tag_columns.len() as u32),
            fields: (f0, self.fields.len() as u32),
            time_ns,
        });
    }

    /// Appends every row to `buffer`; returns how many were applied.
    pub fn apply(&self, buffer: &mut ShardBuffer, db: &DbSchema) -> u64 {
        let mut applied = 0;
        for r in &self.rows {
            let Some(table) = db.tables.get(r.table_id as usize) else {
                tracing::error!(
                    table_id = r.table_id,
                    "parsed row for a table missing from the catalog; skipped"
                );
                continue;
            };
            buffer.table_mut(db.id, table.id).append(
                table,
                RowInput {
                    series_hash: r.series_hash,
                    series_key: &self.keys[r.key.0 as usize..r.key.1 as usize],
                    tag_columns: &self.tag_columns[r.tags.0 as usize..r.tags.1 as usize],
                    fields: self.fields[r.fields.0 as usize..r.fields.1 as usize]
                        .iter()
                        .copied(),
                    time_ns: r.time_ns,
                },
            );
            applied += 1;
        }
        applied
    }
}
