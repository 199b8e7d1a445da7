//! Which files retention and deletion take out of a manifest.
//!
//! A file goes when every row in it is past its table's retention period (its newest row is
//! older than `now - retention`), or when its table or database was deleted longer ago than
//! the grace period. Dropping such a file never changes an answer: its rows were already
//! hidden from queries (retention cuts every scan at `now - retention`, and deleted tables
//! are not found), and a row it shadowed last-write-wins has the same time, so is hidden too.
//!
//! Dropped files are listed as garbage, deleted from storage after a delay, like files
//! compaction replaced: a query planned before may still be reading them.

use crate::schema::CatalogSnapshot;

use super::manifest::{Garbage, Manifest};

/// Indices (into `manifest.files`) of the files to drop at `now_ns`.
pub fn expired_files(
    manifest: &Manifest,
    catalog: &CatalogSnapshot,
    now_ns: i64,
    delete_grace_ns: i64,
) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, f) in manifest.files.iter().enumerate() {
        // A file of a database or table the catalog does not know is left alone: the
        // catalog may be from before it (it never shrinks), so this is not proof of deletion.
        let Some(db) = catalog.database_by_id(f.database_id) else {
            continue;
        };
        let Some(table) = db.table_by_id(f.table_id) else {
            continue;
        };
        let deleted = db
            .deleted_at(table)
            .is_some_and(|at| at.saturating_add(delete_grace_ns) <= now_ns);
        if deleted || f.max_time < db.visible_from(table, now_ns) {
            out.push(i);
        }
    }
    out
}

/// Takes the files at `indices` out of `manifest` and lists them as garbage to delete after
/// `delete_after_ns`.
pub fn drop_files(manifest: &mut Manifest, indices: &[usize], delete_after_ns: i64) {
    let mut keep = Vec::with_capacity(manifest.files.len() - indices.len());
    for (i, f) in std::mem::take(&mut manifest.files).into_iter().enumerate() {
        if indices.contains(&i) {
            manifest.garbage.push(Garbage {
                path: f.path,
                delete_after_ns,
            });
        } else {
            keep.push(f);
        }
    }
    manifest.files = keep;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::persist::ParquetFile;
    use crate::schema::{ColumnType, DbSchema, TableSchema};

    const HOUR: i64 = 3_600_000_000_000;

    fn file(id: u64, db: u32, table: u32, min: i64, max: i64) -> ParquetFile {
        ParquetFile {
            id,
            path: format!("f{id}"),
            database_id: db,
            table_id: table,
            table_name: format!("t{table}"),
            size_bytes: 1,
            row_count: 1,
            min_time: min,
            max_time: max,
            shard_count: 1,
            shard_index: 0,
            epoch: 0,
            sort_id: None,
            wal_max: 0,
            deletes_applied: 0,
        }
    }

    fn table(id: u32, retention: Option<i64>, deleted: Option<i64>) -> Arc<TableSchema> {
        let mut t = TableSchema::with_columns(id, &format!("t{id}"), &[("time", ColumnType::Time)]);
        t.retention_ns = retention;
        t.deleted_at_ns = deleted;
        Arc::new(t)
    }

    fn db(
        id: u32,
        tables: Vec<Arc<TableSchema>>,
        retention: Option<i64>,
        deleted: Option<i64>,
    ) -> Arc<DbSchema> {
        let mut d = DbSchema::new(id, Arc::from(format!("db{id}")), tables);
        d.retention_ns = retention;
        d.deleted_at_ns = deleted;
        Arc::new(d)
    }

    #[test]
    fn retention_and_deletion_pick_files() {
        let now = 100 * HOUR;
        let catalog = CatalogSnapshot::new(
            1,
            vec![
                // db0: 10h retention; t1 overrides it with 1h; t2 deleted 2h ago.
                db(
                    0,
                    vec![
                        table(0, None, None),
                        table(1, Some(HOUR), None),
                        table(2, None, Some(now - 2 * HOUR)),
                    ],
                    Some(10 * HOUR),
                    None,
                ),
                // db1: no retention, deleted 30 minutes ago.
                db(1, vec![table(0, None, None)], None, Some(now - HOUR / 2)),
            ],
        );
        let m = Manifest {
            files: vec![
                file(0, 0, 0, now - 20 * HOUR, now - 11 * HOUR), // past db retention
                file(1, 0, 0, now - 20 * HOUR, now - 9 * HOUR),  // newest row still visible
                file(2, 0, 1, now - 3 * HOUR, now - 2 * HOUR),   // past the table's 1h
                file(3, 0, 1, now - 3 * HOUR, now),              // partly visible
                file(4, 0, 2, now, now),                         // table deleted 2h ago
                file(5, 1, 0, 0, 0),                             // db deleted 30m ago
                file(6, 7, 0, 0, 0),                             // unknown database
            ],
            ..Manifest::default()
        };
        assert_eq!(expired_files(&m, &catalog, now, HOUR), vec![0, 2, 4]);
        // With no grace, the database deleted 30 minutes ago goes too.
        assert_eq!(expired_files(&m, &catalog, now, 0), vec![0, 2, 4, 5]);

        let mut m2 = m.clone();
        drop_files(&mut m2, &[0, 2, 4], 42);
        let left: Vec<u64> = m2.files.iter().map(|f| f.id).collect();
        assert_eq!(left, vec![1, 3, 5, 6]);
        let gone: Vec<&str> = m2.garbage.iter().map(|g| g.path.as_str()).collect();
        assert_eq!(gone, vec!["f0", "f2", "f4"]);
        assert!(m2.garbage.iter().all(|g| g.delete_after_ns == 42));
    }
}
