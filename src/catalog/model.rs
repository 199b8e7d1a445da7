//! The catalog's state as the writer holds it and the checkpoint stores it, and how one
//! [`Change`] moves it.
//!
//! Invariants:
//! - Ids are dense and never reused: a database's id is its position, a table's its position in
//!   its database, a column's its position in its table; a column's type never changes.
//! - At most one live database per name, one live table per name in a database. Deleting is
//!   soft: the entry keeps its id with the time of deletion.
//! - [`PCatalog::apply`] either applies a change whole and says what it touched, or refuses it
//!   and changes nothing. It is deterministic given the state, the change and the time, which
//!   is what lets the log be replayed.
//! - Entries sit behind `Arc`s, so cloning the state (to undo a batch) costs one reference
//!   count per database and token, and changing a table copies only that table and its
//!   database's list of table pointers: a change costs about the same at 100 and 100,000
//!   tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shardline_shards::schema::{ColumnType, TIME_COLUMN};

use super::caches::{self, PDistinctCache, PLastCache};
use super::changes::{Change, SchemaChange};
use super::names::{check_new_columns, validate_database_name, validate_table_name};
use super::tokens::PTokens;
use super::{CatalogError, CatalogLimits};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PColumn {
    pub(super) id: u32,
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) ty: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PTable {
    pub(super) id: u32,
    pub(super) name: String,
    pub(super) columns: Vec<PColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) retention_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) deleted_at_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) last_caches: Vec<PLastCache>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) distinct_caches: Vec<PDistinctCache>,
}

impl PTable {
    fn new(id: u32, name: &str) -> Self {
        PTable {
            id,
            name: name.to_string(),
            columns: vec![PColumn {
                id: 0,
                name: TIME_COLUMN.to_string(),
                ty: ColumnType::Time.name().to_string(),
            }],
            retention_ns: None,
            deleted_at_ns: None,
            last_caches: Vec::new(),
            distinct_caches: Vec::new(),
        }
    }

    pub(super) fn live(&self) -> bool {
        self.deleted_at_ns.is_none()
    }

    fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c.name == name)
    }

    fn add_column(&mut self, name: &str, ty: ColumnType) {
        let id = self.columns.len() as u32;
        self.columns.push(PColumn {
            id,
            name: name.to_string(),
            ty: ty.name().to_string(),
        });
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PDatabase {
    pub(super) id: u32,
    pub(super) name: String,
    /// Shared with earlier versions of the state: changing one table copies a path of the
    /// tree, not the list.
    #[serde(with = "super::arc_list")]
    pub(super) tables: imbl::Vector<Arc<PTable>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) retention_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) deleted_at_ns: Option<i64>,
    /// Live tables by name; rebuilt after loading ([`PCatalog::reindex`]).
    #[serde(skip)]
    table_index: imbl::HashMap<Arc<str>, u32>,
}

impl PDatabase {
    pub(super) fn live(&self) -> bool {
        self.deleted_at_ns.is_none()
    }

    fn live_table(&self, name: &str) -> Option<u32> {
        self.table_index.get(name).copied()
    }

    fn push_table(&mut self, table: PTable) -> u32 {
        let id = table.id;
        self.table_index.insert(Arc::from(table.name.as_str()), id);
        self.tables.push_back(Arc::new(table));
        id
    }
}

/// What an applied change touched, so the published snapshot is rebuilt only there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Touched {
    /// Databases whose own settings or table list changed, each with the tables (by id) whose
    /// definition changed.
    pub(crate) databases: BTreeMap<u32, BTreeSet<u32>>,
    pub(crate) tokens: bool,
}

impl Touched {
    pub(crate) fn is_empty(&self) -> bool {
        self.databases.is_empty() && !self.tokens
    }

    pub(crate) fn merge(&mut self, other: Touched) {
        for (db, tables) in other.databases {
            self.databases.entry(db).or_default().extend(tables);
        }
        self.tokens |= other.tokens;
    }

    fn database(db: u32) -> Touched {
        let mut t = Touched::default();
        t.databases.insert(db, BTreeSet::new());
        t
    }

    fn table(db: u32, table: u32) -> Touched {
        let mut t = Touched::default();
        t.databases.entry(db).or_default().insert(table);
        t
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PCatalog {
    /// Counts changes that changed something; published snapshots carry it.
    pub(super) version: u64,
    #[serde(with = "super::arc_list")]
    pub(super) databases: Vec<Arc<PDatabase>>,
    /// The id the next cache gets.
    #[serde(default)]
    pub(super) next_cache_id: u64,
    #[serde(default)]
    pub(super) tokens: PTokens,
    #[serde(skip)]
    pub(super) limits: CatalogLimits,
    /// Live databases by name.
    #[serde(skip)]
    database_index: HashMap<Arc<str>, u32>,
    #[serde(skip)]
    live_tables: usize,
}

impl PCatalog {
    /// Rebuilds what is derived from the entries (name indexes, counts) after loading them.
    /// Fails on a state no sequence of changes could have produced.
    pub(super) fn reindex(&mut self) -> Result<(), String> {
        self.tokens.reindex();
        self.database_index.clear();
        self.live_tables = 0;
        for (i, db) in self.databases.iter_mut().enumerate() {
            if db.id as usize != i {
                return Err(format!(
                    "database '{}' has id {} at position {i}",
                    db.name, db.id
                ));
            }
            let db = Arc::make_mut(db);
            db.table_index.clear();
            for (j, t) in db.tables.iter().enumerate() {
                if t.id as usize != j {
                    return Err(format!(
                        "table '{}' has id {} at position {j}",
                        t.name, t.id
                    ));
                }
                if t.live()
                    && db
                        .table_index
                        .insert(Arc::from(t.name.as_str()), t.id)
                        .is_some()
                {
                    return Err(format!(
                        "database '{}' has two live tables named '{}'",
                        db.name, t.name
                    ));
                }
            }
            if db.live() {
                self.live_tables += db.table_index.len();
                if self
                    .database_index
                    .insert(Arc::from(db.name.as_str()), db.id)
                    .is_some()
                {
                    return Err(format!("two live databases are named '{}'", db.name));
                }
            }
        }
        Ok(())
    }

    fn live_database(&self, name: &str) -> Option<u32> {
        self.database_index.get(name).copied()
    }

    fn database_id(&self, name: &str) -> Result<u32, CatalogError> {
        self.live_database(name)
            .ok_or_else(|| CatalogError::DatabaseNotFound(name.to_string()))
    }

    fn database_mut(&mut self, id: u32) -> &mut PDatabase {
        Arc::make_mut(&mut self.databases[id as usize])
    }

    fn table_id(&self, database: &str, table: &str) -> Result<(u32, u32), CatalogError> {
        let db = self.database_id(database)?;
        match self.databases[db as usize].live_table(table) {
            Some(t) => Ok((db, t)),
            None => Err(CatalogError::TableNotFound {
                database: database.to_string(),
                table: table.to_string(),
            }),
        }
    }

    fn table_mut(&mut self, (db, table): (u32, u32)) -> &mut PTable {
        let tables = &mut self.database_mut(db).tables;
        Arc::make_mut(&mut tables[table as usize])
    }

    fn check_database_limit(&self) -> Result<(), CatalogError> {
        if self.database_index.len() >= self.limits.databases {
            return Err(CatalogError::LimitReached {
                what: "database",
                limit: self.limits.databases,
                flag: "--max-databases",
            });
        }
        Ok(())
    }

    fn check_table_limit(&self, adding: usize) -> Result<(), CatalogError> {
        if self.live_tables + adding > self.limits.tables {
            return Err(CatalogError::LimitReached {
                what: "table",
                limit: self.limits.tables,
                flag: "--max-tables",
            });
        }
        Ok(())
    }

    /// `columns`: the table's columns after the change, `time` included.
    fn check_column_limit(&self, columns: usize) -> Result<(), CatalogError> {
        if columns.saturating_sub(1) > self.limits.columns_per_table {
            return Err(CatalogError::LimitReached {
                what: "columns-per-table",
                limit: self.limits.columns_per_table,
                flag: "--max-columns-per-table",
            });
        }
        Ok(())
    }

    fn new_database(&mut self, name: &str, retention_ns: Option<i64>) -> u32 {
        let id = self.databases.len() as u32;
        self.databases.push(Arc::new(PDatabase {
            id,
            name: name.to_string(),
            tables: imbl::Vector::new(),
            retention_ns,
            deleted_at_ns: None,
            table_index: imbl::HashMap::new(),
        }));
        self.database_index.insert(Arc::from(name), id);
        id
    }

    fn new_table(&mut self, db: u32, table: PTable) -> u32 {
        self.live_tables += 1;
        self.database_mut(db).push_table(table)
    }

    /// Applies one change at `now_ns` and says what it touched (nothing: the change was
    /// already in effect). On an error nothing changed.
    pub(super) fn apply(&mut self, change: &Change, now_ns: i64) -> Result<Touched, CatalogError> {
        let touched = match change {
            Change::Schema(c) => self.apply_schema(c)?,
            Change::CreateDatabase { name, retention_ns } => {
                validate_database_name(name)?;
                if self.live_database(name).is_some() {
                    return Err(CatalogError::DatabaseExists(name.clone()));
                }
                self.check_database_limit()?;
                Touched::database(self.new_database(name, *retention_ns))
            }
            Change::SetDatabaseRetention { name, retention_ns } => {
                let id = self.database_id(name)?;
                if self.databases[id as usize].retention_ns == *retention_ns {
                    Touched::default()
                } else {
                    self.database_mut(id).retention_ns = *retention_ns;
                    Touched::database(id)
                }
            }
            Change::DeleteDatabase { name } => {
                let id = self.database_id(name)?;
                let db = self.database_mut(id);
                db.deleted_at_ns = Some(now_ns);
                let tables = db.table_index.len();
                self.live_tables -= tables;
                self.database_index.remove(name.as_str());
                Touched::database(id)
            }
            Change::CreateTable {
                database,
                table,
                columns,
                retention_ns,
            } => {
                validate_table_name(table)?;
                check_new_columns(table, columns)?;
                let db = self.database_id(database)?;
                self.check_table_limit(1)?;
                self.check_column_limit(columns.len() + 1)?;
                let d = &self.databases[db as usize];
                if d.live_table(table).is_some() {
                    return Err(CatalogError::TableExists {
                        database: database.clone(),
                        table: table.clone(),
                    });
                }
                let mut t = PTable::new(d.tables.len() as u32, table);
                t.retention_ns = *retention_ns;
                for (name, ty) in columns {
                    t.add_column(name, *ty);
                }
                Touched::table(db, self.new_table(db, t))
            }
            Change::SetTableRetention {
                database,
                table,
                retention_ns,
            } => {
                let id = self.table_id(database, table)?;
                let current = &self.databases[id.0 as usize].tables[id.1 as usize];
                if current.retention_ns == *retention_ns {
                    Touched::default()
                } else {
                    self.table_mut(id).retention_ns = *retention_ns;
                    Touched::table(id.0, id.1)
                }
            }
            Change::DeleteTable { database, table } => {
                let id = self.table_id(database, table)?;
                self.table_mut(id).deleted_at_ns = Some(now_ns);
                self.database_mut(id.0).table_index.remove(table.as_str());
                self.live_tables -= 1;
                Touched::table(id.0, id.1)
            }
            Change::CreateLastCache(req) => {
                let id = self.table_id(&req.database, &req.table)?;
                let mut next = self.next_cache_id;
                // Checked on a copy: a refused request leaves the table as it was.
                let mut t = (*self.databases[id.0 as usize].tables[id.1 as usize]).clone();
                caches::create_last(&mut t, req, &mut next)?;
                *self.table_mut(id) = t;
                self.next_cache_id = next;
                Touched::table(id.0, id.1)
            }
            Change::CreateDistinctCache(req) => {
                let id = self.table_id(&req.database, &req.table)?;
                let mut next = self.next_cache_id;
                let mut t = (*self.databases[id.0 as usize].tables[id.1 as usize]).clone();
                caches::create_distinct(&mut t, req, &mut next)?;
                *self.table_mut(id) = t;
                self.next_cache_id = next;
                Touched::table(id.0, id.1)
            }
            Change::DeleteCache {
                kind,
                database,
                table,
                name,
            } => {
                let id = self.table_id(database, table)?;
                let mut t = (*self.databases[id.0 as usize].tables[id.1 as usize]).clone();
                caches::delete(&mut t, database, *kind, name)?;
                *self.table_mut(id) = t;
                Touched::table(id.0, id.1)
            }
            Change::Token(t) => {
                if self.tokens.apply(t, now_ns)? {
                    Touched {
                        tokens: true,
                        ..Touched::default()
                    }
                } else {
                    Touched::default()
                }
            }
        };
        if !touched.is_empty() {
            self.version += 1;
        }
        Ok(touched)
    }

    /// Adds what a write needs. Columns that exist with another type are left alone (the
    /// write path then rejects the lines that wanted them). Limits are checked before
    /// anything changes, so a write past one adds nothing.
    fn apply_schema(&mut self, change: &SchemaChange) -> Result<Touched, CatalogError> {
        let existing = self.live_database(&change.database);
        if existing.is_none() {
            self.check_database_limit()?;
        }
        let mut new_tables = 0;
        {
            let db = existing.map(|id| &self.databases[id as usize]);
            for tc in &change.tables {
                let table = db.and_then(|d| d.live_table(&tc.name).map(|t| &d.tables[t as usize]));
                if table.is_none() {
                    new_tables += 1;
                }
                let have = table.map_or(1, |t| t.columns.len());
                let adding = tc
                    .columns
                    .iter()
                    .filter(|(n, _)| !table.is_some_and(|t| t.has_column(n)))
                    .count();
                if adding > 0 {
                    self.check_column_limit(have + adding)?;
                }
            }
        }
        if new_tables > 0 {
            self.check_table_limit(new_tables)?;
        }
        let mut touched = Touched::default();
        let db = match existing {
            Some(id) => id,
            None => {
                let id = self.new_database(&change.database, None);
                touched.merge(Touched::database(id));
                id
            }
        };
        for tc in &change.tables {
            let t = match self.databases[db as usize].live_table(&tc.name) {
                Some(t) => t,
                None => {
                    let id = self.databases[db as usize].tables.len() as u32;
                    touched.merge(Touched::table(db, id));
                    self.new_table(db, PTable::new(id, &tc.name))
                }
            };
            let current = &self.databases[db as usize].tables[t as usize];
            if tc.columns.iter().all(|(n, _)| current.has_column(n)) {
                continue;
            }
            let table = self.table_mut((db, t));
            for (name, ty) in &tc.columns {
                if !table.has_column(name) {
                    table.add_column(name, *ty);
                }
            }
            touched.merge(Touched::table(db, t));
        }
        Ok(touched)
    }
}
