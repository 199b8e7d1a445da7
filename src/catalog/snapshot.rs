//! From the writer's state to the immutable [`CatalogSnapshot`] every shard reads: built whole
//! at start-up, and after a change rebuilt only where the change touched it.
//!
//! Invariants: building a table's schema is also the check that the state is one the server
//! can run on (known column types, dense ids, caches naming columns they may use). The writer
//! runs it on every table a change touched before the change is logged, and start-up runs it
//! on every table, so a change that passes here never makes the next start-up fail.

use std::sync::Arc;

use shardline_shards::schema::{CatalogSnapshot, ColumnSchema, ColumnType, DbSchema, TableSchema};

use super::model::{PCatalog, PDatabase, PTable, Touched};

/// The published form of one table, or why the state is not one the server can run on.
pub(super) fn table(t: &PTable) -> Result<TableSchema, String> {
    let mut cols = Vec::with_capacity(t.columns.len());
    for (k, c) in t.columns.iter().enumerate() {
        let ty = ColumnType::from_name(&c.ty)
            .ok_or_else(|| format!("column '{}' has unknown type '{}'", c.name, c.ty))?;
        if c.id as usize != k {
            return Err(format!(
                "column '{}' of table '{}' has id {} at position {k}",
                c.name, t.name, c.id
            ));
        }
        cols.push(ColumnSchema {
            id: c.id,
            name: Arc::from(c.name.as_str()),
            ty,
        });
    }
    let mut table = TableSchema::new(t.id, Arc::from(t.name.as_str()), cols);
    table.retention_ns = t.retention_ns;
    table.deleted_at_ns = t.deleted_at_ns;
    table.last_caches = t.last_caches.iter().map(|c| Arc::new(c.def())).collect();
    table.distinct_caches = t
        .distinct_caches
        .iter()
        .map(|c| Arc::new(c.def()))
        .collect();
    let ok = |id: &u32, allowed: &dyn Fn(ColumnType) -> bool| {
        table
            .columns
            .get(*id as usize)
            .is_some_and(|c| allowed(c.ty))
    };
    for c in &table.last_caches {
        let bad_key = c
            .key_columns
            .iter()
            .any(|k| !ok(k, &|ty| !matches!(ty, ColumnType::Float | ColumnType::Time)));
        let bad_value = c.value_columns.iter().flatten().any(|v| !ok(v, &|_| true));
        if bad_key || bad_value {
            return Err(format!(
                "last cache '{}' of table '{}' names a column the table cannot key or hold",
                c.name, t.name
            ));
        }
    }
    for c in &table.distinct_caches {
        if c.columns
            .iter()
            .any(|k| !ok(k, &|ty| matches!(ty, ColumnType::Tag | ColumnType::String)))
        {
            return Err(format!(
                "distinct cache '{}' of table '{}' names a column that is not a tag or string",
                c.name, t.name
            ));
        }
    }
    Ok(table)
}

fn database(d: &PDatabase, tables: Vec<Arc<TableSchema>>) -> DbSchema {
    let mut db = DbSchema::new(d.id, Arc::from(d.name.as_str()), tables);
    db.retention_ns = d.retention_ns;
    db.deleted_at_ns = d.deleted_at_ns;
    db
}

/// The whole snapshot (start-up).
pub(super) fn full(state: &PCatalog) -> Result<CatalogSnapshot, String> {
    let mut dbs = Vec::with_capacity(state.databases.len());
    for d in &state.databases {
        let tables = d
            .tables
            .iter()
            .map(|t| table(t).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        dbs.push(Arc::new(database(d, tables)));
    }
    Ok(CatalogSnapshot::new(state.version, dbs))
}

/// The tables a change touched, built (and so checked) one by one.
pub(super) fn touched_tables(
    state: &PCatalog,
    touched: &Touched,
) -> Result<Vec<(u32, Arc<TableSchema>)>, String> {
    let mut out = Vec::new();
    for (&db, tables) in &touched.databases {
        let d = &state.databases[db as usize];
        for &t in tables {
            out.push((db, Arc::new(table(&d.tables[t as usize])?)));
        }
    }
    Ok(out)
}

/// `prev` moved to `state`, given what changed since and those tables already built.
pub(super) fn patch(
    prev: &CatalogSnapshot,
    state: &PCatalog,
    touched: &Touched,
    mut built: Vec<(u32, Arc<TableSchema>)>,
) -> CatalogSnapshot {
    // Later builds of a table replace earlier ones: keep the last per (db, table).
    built.reverse();
    let mut dbs = Vec::with_capacity(touched.databases.len());
    for &db in touched.databases.keys() {
        let d = &state.databases[db as usize];
        let mut tables: Vec<Arc<TableSchema>> = Vec::new();
        for (_, t) in built.iter().filter(|(b, _)| *b == db) {
            if !tables.iter().any(|x| x.id == t.id) {
                tables.push(t.clone());
            }
        }
        // Appends must come in id order.
        tables.sort_by_key(|t| t.id);
        let next = match prev.database_by_id(db) {
            Some(p) => p.with_tables(d.retention_ns, d.deleted_at_ns, tables),
            None => database(d, Vec::new()).with_tables(d.retention_ns, d.deleted_at_ns, tables),
        };
        dbs.push(Arc::new(next));
    }
    prev.with_databases(state.version, dbs)
}
