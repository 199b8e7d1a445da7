//! The schema a shard checks writes against: an immutable snapshot of the catalog.
//!
//! The server's catalog builds a new [`CatalogSnapshot`] for every change and publishes it
//! whole; shards only read snapshots, so they never lock. Invariants: column ids within a table
//! are dense (`0..columns.len()`) and never reused; a column's type never changes; every table
//! has the `time` column. A deleted database or table keeps its id (its rows and files still
//! name it) but is no longer found by name: its name may be taken by a new one.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::cache::{DistinctCacheDef, LastCacheDef};

/// The name of the time column every table has.
pub const TIME_COLUMN: &str = "time";

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Tag,
    String,
    Float,
    Int,
    UInt,
    Bool,
    Time,
}

impl ColumnType {
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Tag => "tag",
            ColumnType::String => "string",
            ColumnType::Float => "float",
            ColumnType::Int => "int",
            ColumnType::UInt => "uint",
            ColumnType::Bool => "bool",
            ColumnType::Time => "time",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "tag" => ColumnType::Tag,
            "string" => ColumnType::String,
            "float" => ColumnType::Float,
            "int" => ColumnType::Int,
            "uint" => ColumnType::UInt,
            "bool" => ColumnType::Bool,
            "time" => ColumnType::Time,
            _ => return None,
        })
    }

    /// The column type a field value of this kind needs.
    pub fn of_field(v: &crate::lp::FieldValue<'_>) -> Self {
        use crate::lp::FieldValue as V;
        match v {
            V::F64(_) => ColumnType::Float,
            V::I64(_) => ColumnType::Int,
            V::U64(_) => ColumnType::UInt,
            V::Bool(_) => ColumnType::Bool,
            V::Str(_) => ColumnType::String,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSchema {
    pub id: u32,
    pub name: Arc<str>,
    pub ty: ColumnType,
}

#[derive(Clone, Debug)]
pub struct TableSchema {
    pub id: u32,
    pub name: Arc<str>,
    /// Indexed by column id.
    pub columns: Vec<ColumnSchema>,
    /// Rows older than this (ns, relative to now) are hidden and their files deleted; `None`
    /// falls back to the database's.
    pub retention_ns: Option<i64>,
    /// When the table was deleted (ns since the epoch), if it was.
    pub deleted_at_ns: Option<i64>,
    pub last_caches: Vec<Arc<LastCacheDef>>,
    pub distinct_caches: Vec<Arc<DistinctCacheDef>>,
    by_name: HashMap<Arc<str>, u32>,
}

impl TableSchema {
    pub fn new(id: u32, name: Arc<str>, columns: Vec<ColumnSchema>) -> Self {
        debug_assert!(columns.iter().enumerate().all(|(i, c)| c.id as usize == i));
        let by_name = columns.iter().map(|c| (c.name.clone(), c.id)).collect();
        TableSchema {
            id,
            name,
            columns,
            retention_ns: None,
            deleted_at_ns: None,
            last_caches: Vec::new(),
            distinct_caches: Vec::new(),
            by_name,
        }
    }

    /// A table whose columns are `columns` in order, with ids 0, 1, 2, … (tests and tools).
    pub fn with_columns(id: u32, name: &str, columns: &[(&str, ColumnType)]) -> Self {
        let columns = columns
            .iter()
            .enumerate()
            .map(|(i, (n, t))| ColumnSchema {
                id: i as u32,
                name: Arc::from(*n),
                ty: *t,
            })
            .collect();
        TableSchema::new(id, Arc::from(name), columns)
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.by_name.get(name).map(|&i| &self.columns[i as usize])
    }

    /// The columns in the order queries and Parquet files show them: tags sorted by name,
    /// then fields sorted by name, then `time`.
    pub fn columns_in_order(&self) -> Vec<&ColumnSchema> {
        let rank = |t: ColumnType| match t {
            ColumnType::Tag => 0,
            ColumnType::Time => 2,
            _ => 1,
        };
        let mut cols: Vec<_> = self.columns.iter().collect();
        cols.sort_by(|a, b| (rank(a.ty), &a.name).cmp(&(rank(b.ty), &b.name)));
        cols
    }
}

#[derive(Clone, Debug)]
pub struct DbSchema {
    pub id: u32,
    pub name: Arc<str>,
    /// Indexed by table id; deleted tables included. Shared with earlier versions of the
    /// catalog (a new table or a changed one copies a path of the tree, not the list).
    pub tables: imbl::Vector<Arc<TableSchema>>,
    /// Rows older than this (ns, relative to now) are hidden and their files deleted.
    pub retention_ns: Option<i64>,
    /// When the database was deleted (ns since the epoch), if it was.
    pub deleted_at_ns: Option<i64>,
    /// Live tables only; shared with earlier versions as `tables` is.
    by_name: imbl::HashMap<Arc<str>, u32>,
}

impl DbSchema {
    pub fn new(id: u32, name: Arc<str>, tables: Vec<Arc<TableSchema>>) -> Self {
        let by_name = tables
            .iter()
            .filter(|t| t.deleted_at_ns.is_none())
            .map(|t| (t.name.clone(), t.id))
            .collect();
        DbSchema {
            id,
            name,
            tables: tables.into_iter().collect(),
            retention_ns: None,
            deleted_at_ns: None,
            by_name,
        }
    }

    /// This database with new settings and `tables` put in place by id (replacing a table
    /// or appending the next one). Both the table list and the name index are shared with
    /// `self`, so the cost does not grow with the number of tables.
    pub fn with_tables(
        &self,
        retention_ns: Option<i64>,
        deleted_at_ns: Option<i64>,
        tables: impl IntoIterator<Item = Arc<TableSchema>>,
    ) -> DbSchema {
        let mut db = self.clone();
        db.retention_ns = retention_ns;
        db.deleted_at_ns = deleted_at_ns;
        for t in tables {
            let id = t.id as usize;
            if db.by_name.get(&t.name) == Some(&t.id) && t.deleted_at_ns.is_some() {
                db.by_name.remove(&t.name);
            } else if t.deleted_at_ns.is_none() {
                db.by_name.insert(t.name.clone(), t.id);
            }
            match id.cmp(&db.tables.len()) {
                std::cmp::Ordering::Less => {
                    db.tables.set(id, t);
                }
                std::cmp::Ordering::Equal => db.tables.push_back(t),
                std::cmp::Ordering::Greater => {
                    panic!("table id {id} skips ids: the catalog hands out dense ids")
                }
            }
        }
        db
    }

    /// The live table of that name.
    pub fn table(&self, name: &str) -> Option<&Arc<TableSchema>> {
        self.by_name.get(name).map(|&i| &self.tables[i as usize])
    }

    /// The table with that id, deleted or not.
    pub fn table_by_id(&self, id: u32) -> Option<&Arc<TableSchema>> {
        self.tables.get(id as usize)
    }

    /// Tables not deleted, in id order.
    pub fn live_tables(&self) -> impl Iterator<Item = &Arc<TableSchema>> {
        self.tables.iter().filter(|t| t.deleted_at_ns.is_none())
    }

    /// The retention period that applies to `table`: its own, else the database's.
    pub fn retention_for(&self, table: &TableSchema) -> Option<i64> {
        table.retention_ns.or(self.retention_ns)
    }

    /// The oldest time still visible in `table` at `now_ns` (`i64::MIN` without retention).
    pub fn visible_from(&self, table: &TableSchema, now_ns: i64) -> i64 {
        visible_from(self.retention_for(table), now_ns)
    }

    /// When the table stopped being visible through deletion (its own or the database's).
    pub fn deleted_at(&self, table: &TableSchema) -> Option<i64> {
        match (self.deleted_at_ns, table.deleted_at_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The oldest time a retention period (ns) leaves visible at `now_ns`: the one rule that
/// queries (which hide older rows) and file expiry (which deletes them) share.
pub fn visible_from(retention_ns: Option<i64>, now_ns: i64) -> i64 {
    retention_ns.map_or(i64::MIN, |r| now_ns.saturating_sub(r))
}

/// One immutable version of the whole catalog.
#[derive(Clone, Debug, Default)]
pub struct CatalogSnapshot {
    pub version: u64,
    /// Indexed by database id.
    pub databases: Vec<Arc<DbSchema>>,
    /// Live databases only.
    by_name: HashMap<Arc<str>, u32>,
}

impl CatalogSnapshot {
    pub fn new(version: u64, databases: Vec<Arc<DbSchema>>) -> Self {
        let by_name = databases
            .iter()
            .filter(|d| d.deleted_at_ns.is_none())
            .map(|d| (d.name.clone(), d.id))
            .collect();
        CatalogSnapshot {
            version,
            databases,
            by_name,
        }
    }

    /// This snapshot at `version` with `databases` put in place by id (replacing one or
    /// appending the next); the name index is updated rather than rebuilt.
    pub fn with_databases(
        &self,
        version: u64,
        databases: impl IntoIterator<Item = Arc<DbSchema>>,
    ) -> CatalogSnapshot {
        let mut snap = self.clone();
        snap.version = version;
        for d in databases {
            let id = d.id as usize;
            if d.deleted_at_ns.is_some() {
                if snap.by_name.get(&d.name) == Some(&d.id) {
                    snap.by_name.remove(&d.name);
                }
            } else {
                snap.by_name.insert(d.name.clone(), d.id);
            }
            match id.cmp(&snap.databases.len()) {
                std::cmp::Ordering::Less => snap.databases[id] = d,
                std::cmp::Ordering::Equal => snap.databases.push(d),
                std::cmp::Ordering::Greater => {
                    panic!("database id {id} skips ids: the catalog hands out dense ids")
                }
            }
        }
        snap
    }

    /// The live database of that name.
    pub fn database(&self, name: &str) -> Option<&Arc<DbSchema>> {
        self.by_name.get(name).map(|&i| &self.databases[i as usize])
    }

    /// The database with that id, deleted or not.
    pub fn database_by_id(&self, id: u32) -> Option<&Arc<DbSchema>> {
        self.databases.get(id as usize)
    }
}
