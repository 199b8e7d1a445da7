//! Rows parsed and resolved by the shard that received a write, kept until the WAL has them
//! and then applied to that same shard's buffer, so its own lines are parsed only once.
//!
//! Invariants: the rows borrow the request body (string field values are not copied);
//! everything is kept in four flat vectors, so a request costs a few allocations, not one
//! per line; rows are applied in the order they were pushed, which is body order.

use std::ops::Range;

use crate::buffer::{RowInput, ShardBuffer};
use crate::lp::{Field, FieldValue, Tag, Token};
use crate::schema::DbSchema;

#[derive(Debug, Clone, Copy)]
struct RowMeta {
    table_id: u32,
    series_hash: u64,
    key: (u32, u32),
    /// Start in `columns` of the tag ids, then the field ids.
    columns: u32,
    tag_count: u32,
    /// Range in `values`.
    values: (u32, u32),
    time_ns: i64,
}

/// A request's rows for the local shard.
#[derive(Debug, Default)]
pub struct ParsedRows<'a> {
    rows: Vec<RowMeta>,
    keys: Vec<u8>,
    /// Column ids of each row's tags, then of its fields.
    columns: Vec<u32>,
    /// Field values; kept apart from their column ids so each vector is filled by a straight
    /// copy (a vector of (id, value) pairs built each pair on the stack first, and reading it
    /// back stalled on store forwarding: a third of the planner's time).
    values: Vec<FieldValue<'a>>,
}

impl<'a> ParsedRows<'a> {
    pub fn clear(&mut self) {
        self.rows.clear();
        self.keys.clear();
        self.columns.clear();
        self.values.clear();
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
            columns: self.columns,
            values: self
                .values
                .into_iter()
                .map(|_| unreachable!("the vector is empty"))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Builds a line's canonical series key at the end of the key arena (where a kept row's
    /// key lives, so it is written once) and returns it. Follow with [`Self::keep_staged`] or
    /// [`Self::discard_staged`].
    #[inline]
    pub fn stage_key(&mut self, measurement: &Token<'_>, sorted_tags: &[Tag<'_>]) -> &[u8] {
        let start = self.key_end();
        self.keys.truncate(start);
        crate::series::append_series_key(&mut self.keys, measurement, sorted_tags);
        &self.keys[start..]
    }

    /// Drops the staged key (the line belongs to another shard).
    #[inline]
    pub fn discard_staged(&mut self) {
        self.keys.truncate(self.key_end());
    }

    /// Where the last kept row's key ends (a staged key starts there).
    fn key_end(&self) -> usize {
        self.rows.last().map_or(0, |r| r.key.1 as usize)
    }

    /// Keeps the line whose key was just staged: `column_ids` holds its tags' ids then its
    /// fields' ids.
    #[inline]
    pub fn keep_staged(
        &mut self,
        table_id: u32,
        series_hash: u64,
        column_ids: &[u32],
        fields: &[Field<'a>],
        time_ns: i64,
    ) {
        let k0 = self.key_end() as u32;
        self.push_row(k0, table_id, series_hash, column_ids, fields, time_ns);
    }

    #[inline]
    fn push_row(
        &mut self,
        k0: u32,
        table_id: u32,
        series_hash: u64,
        column_ids: &[u32],
        fields: &[Field<'a>],
        time_ns: i64,
    ) {
        let c0 = self.columns.len() as u32;
        self.columns.extend_from_slice(column_ids);
        let v0 = self.values.len() as u32;
        for f in fields {
            self.values.push(f.value);
        }
        self.rows.push(RowMeta {
            table_id,
            series_hash,
            key: (k0, self.keys.len() as u32),
            columns: c0,
            tag_count: (column_ids.len() - fields.len()) as u32,
            values: (v0, self.values.len() as u32),
            time_ns,
        });
    }

    /// Appends every row to `buffer`; returns how many were applied.
    pub fn apply(&self, buffer: &mut ShardBuffer, db: &DbSchema) -> u64 {
        self.apply_rows(buffer, db, 0..self.rows.len())
    }

    /// Appends rows `rows` (positions in the order they were kept) to `buffer`; returns how
    /// many were applied.
    pub fn apply_rows(&self, buffer: &mut ShardBuffer, db: &DbSchema, rows: Range<usize>) -> u64 {
        let mut applied = 0;
        for r in &self.rows[rows] {
            let Some(table) = db.tables.get(r.table_id as usize) else {
                tracing::error!(
                    table_id = r.table_id,
                    "parsed row for a table missing from the catalog; skipped"
                );
                continue;
            };
            let c0 = r.columns as usize;
            buffer.table_mut(db.id, table.id).append(
                table,
                RowInput {
                    series_hash: r.series_hash,
                    series_key: &self.keys[r.key.0 as usize..r.key.1 as usize],
                    tag_columns: &self.columns[c0..c0 + r.tag_count as usize],
                    fields: self.columns[c0 + r.tag_count as usize..]
                        .iter()
                        .copied()
                        .zip(
                            self.values[r.values.0 as usize..r.values.1 as usize]
                                .iter()
                                .copied(),
                        ),
                    time_ns: r.time_ns,
                },
            );
            applied += 1;
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lp::LineParser;
    use crate::schema::{ColumnType, TableSchema};
    use std::sync::Arc;

    #[test]
    fn staged_keys_are_kept_or_discarded_and_rows_apply_in_order() {
        let cols = [
            ("time", ColumnType::Time),
            ("host", ColumnType::Tag),
            ("v", ColumnType::Float),
        ];
        let table = Arc::new(TableSchema::with_columns(0, "m", &cols));
        let db = DbSchema::new(0, Arc::from("db"), vec![table]);
        let body = "m,host=a v=1 1\nm,host=b v=2 2\nm,host=c v=3 3\n";
        let mut parser = LineParser::new(body);
        let mut rows = ParsedRows::default();
        let mut t = 0;
        while let Some(Ok(line)) = parser.next_line() {
            t += 1;
            let key = rows.stage_key(&line.measurement, parser.tags()).to_vec();
            assert!(key.starts_with(b"m\0host\0"));
            if t == 2 {
                rows.discard_staged();
            } else {
                rows.keep_staged(0, t, &[1, 2], parser.fields(), t as i64);
            }
        }
        assert_eq!(rows.len(), 2);
        let mut buf = ShardBuffer::default();
        assert_eq!(rows.apply(&mut buf, &db), 2);
        let tb = buf.table(0, 0).unwrap();
        let host = &db.tables[0].columns[1];
        let got: Vec<_> = (0..2)
            .map(|r| (tb.value(r, host), tb.time().get(r)))
            .collect();
        assert_eq!(
            got,
            vec![
                (crate::buffer::Value::Tag("a"), 1),
                (crate::buffer::Value::Tag("c"), 3)
            ]
        );
        let recycled = rows.recycle();
        assert!(recycled.is_empty());
    }
}
