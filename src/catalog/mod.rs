//! The global catalog: databases, tables and typed columns, and the tables' caches
//! ([`caches`]).
//!
//! Invariants:
//! - One writer. Changes go to a dedicated thread, which applies them, persists the whole
//!   catalog, and only then publishes the new [`CatalogSnapshot`] and answers. A write that
//!   needed a change is therefore acknowledged only after the change is durable.
//! - Readers (every shard, on every request) load the current snapshot through `ArcSwap`:
//!   no lock on the ingest path.
//! - Ids are dense and never reused; a column's type never changes once created.
//! - Deleting a database or table is soft: it keeps its id and entry (with the time of
//!   deletion) so its rows and files can still be told apart and removed later, but it is
//!   no longer found by name, and the name may be taken by a new one. At most one live
//!   database per name, and one live table per name in a database.
//! - A change either applies whole or not at all: it is checked before anything moves.
//! - On disk: `catalog.json`, replaced atomically (write temp file, fsync, rename, fsync
//!   directory). Its first line is `shardline-catalog v1 crc32c=<hex>`, the checksum of the
//!   JSON that follows; a mismatch stops start-up rather than silently losing schema.

pub mod caches;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use shardline_shards::schema::{
    CatalogSnapshot, ColumnSchema, ColumnType, DbSchema, TableSchema, TIME_COLUMN,
};

pub use caches::{CacheKind, DistinctCacheRequest, LastCacheRequest};
use caches::{PDistinctCache, PLastCache};

const FILE_NAME: &str = "catalog.json";
const HEADER_PREFIX: &str = "shardline-catalog v1 crc32c=";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog file {path} is unreadable: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("catalog file {path} is damaged ({reason}); restore it from a backup or move it away to start with an empty catalog")]
    Corrupt { path: PathBuf, reason: String },
    #[error("could not persist the catalog to {path}: {source}")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid database name '{name}': {reason}")]
    InvalidDatabaseName { name: String, reason: &'static str },
    #[error("invalid table name '{name}': {reason}")]
    InvalidTableName { name: String, reason: &'static str },
    #[error("invalid column '{name}' in table '{table}': {reason}")]
    InvalidColumn {
        table: String,
        name: String,
        reason: &'static str,
    },
    #[error("database '{0}' already exists")]
    DatabaseExists(String),
    #[error("database '{0}' not found")]
    DatabaseNotFound(String),
    #[error("table '{table}' already exists in database '{database}'")]
    TableExists { database: String, table: String },
    #[error("table '{table}' not found in database '{database}'")]
    TableNotFound { database: String, table: String },
    #[error("invalid {kind}: {reason}")]
    InvalidCache { kind: CacheKind, reason: String },
    #[error("{}", cache_exists_message(*kind, name, *identical))]
    CacheExists {
        kind: CacheKind,
        name: String,
        /// The existing cache has the requested settings.
        identical: bool,
    },
    #[error("{kind} '{name}' not found on table '{table}' in database '{database}'")]
    CacheNotFound {
        kind: CacheKind,
        database: String,
        table: String,
        name: String,
    },
    #[error("the catalog writer has stopped")]
    WriterGone,
    #[error("an admin token already exists; regenerate it with POST /api/v3/configure/token/admin/regenerate (authorized by the current admin token)")]
    AdminTokenExists,
    #[error("there is no admin token yet; create one with POST /api/v3/configure/token/admin")]
    NoAdminToken,
    #[error("a token named '{0}' already exists")]
    TokenExists(String),
    #[error("no token with id {0}")]
    TokenNotFound(u64),
    #[error("invalid token request: {0}")]
    InvalidToken(String),
    #[error("{what} limit of {limit} reached; raise {flag} to allow more")]
    LimitReached {
        what: &'static str,
        limit: usize,
        flag: &'static str,
    },
}

/// Caps on the catalog's size (`--max-databases`, `--max-tables`, `--max-columns-per-table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogLimits {
    /// Live databases.
    pub databases: usize,
    /// Live tables across all live databases.
    pub tables: usize,
    /// Columns of one table, not counting `time`.
    pub columns_per_table: usize,
}

impl Default for CatalogLimits {
    fn default() -> Self {
        CatalogLimits {
            databases: 10_000,
            tables: 1_000_000,
            columns_per_table: 10_000,
        }
    }
}

fn cache_exists_message(kind: CacheKind, name: &str, identical: bool) -> String {
    if identical {
        format!("{kind} '{name}' already exists with these settings")
    } else {
        format!("{kind} '{name}' already exists with other settings; delete it first or choose another name")
    }
}

/// Reads a retention period as the API takes it: a duration with units (`30d`, `24h`,
/// `1h30m`), or `none` for keeping data forever.
pub fn parse_retention(text: &str) -> Result<Option<i64>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "retention period '{t}' needs a unit, e.g. 30d, 24h or 90m (or 'none')"
        ));
    }
    let d = crate::cli::parse_duration(t).map_err(|e| format!("invalid retention period: {e}"))?;
    if d.is_zero() {
        return Err(
            "a retention period must be longer than zero; use 'none' to keep data forever".into(),
        );
    }
    i64::try_from(d.as_nanos())
        .map(Some)
        .map_err(|_| format!("retention period '{t}' is too long"))
}

/// A retention period as [`parse_retention`] reads it.
pub fn format_retention(ns: i64) -> String {
    crate::cli::format_duration(std::time::Duration::from_nanos(ns.max(0) as u64))
}

/// Checks a table name given to the management API (writes name tables through line
/// protocol, whose escaping allows any measurement).
pub fn validate_table_name(name: &str) -> Result<(), CatalogError> {
    let bad = |reason| CatalogError::InvalidTableName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("a table name cannot be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("a table name cannot contain control characters"));
    }
    Ok(())
}

/// Checks a database name: 1 to 64 characters, a letter or digit first, then letters, digits,
/// `_` or `-`.
pub fn validate_database_name(name: &str) -> Result<(), CatalogError> {
    let bad = |reason| CatalogError::InvalidDatabaseName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("a database name cannot be empty"));
    }
    if name.len() > 64 {
        return Err(bad("a database name has at most 64 characters"));
    }
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err(bad("a database name must start with a letter or a digit"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(bad(
            "a database name may contain only letters, digits, '_' and '-'",
        ));
    }
    Ok(())
}

/// Columns to add to one table (created if missing), in the order to create them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableChange {
    pub name: String,
    pub columns: Vec<(String, ColumnType)>,
}

/// Everything one write needs added to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaChange {
    pub database: String,
    pub tables: Vec<TableChange>,
}

/// One change to the catalog. Retention periods are nanoseconds; `None` keeps data forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// What a write needs: created if missing, left alone where present.
    Schema(SchemaChange),
    CreateDatabase {
        name: String,
        retention_ns: Option<i64>,
    },
    SetDatabaseRetention {
        name: String,
        retention_ns: Option<i64>,
    },
    DeleteDatabase {
        name: String,
    },
    /// A table with its tags and fields, ahead of any write.
    CreateTable {
        database: String,
        table: String,
        columns: Vec<(String, ColumnType)>,
        retention_ns: Option<i64>,
    },
    SetTableRetention {
        database: String,
        table: String,
        retention_ns: Option<i64>,
    },
    DeleteTable {
        database: String,
        table: String,
    },
    CreateLastCache(LastCacheRequest),
    CreateDistinctCache(DistinctCacheRequest),
    DeleteCache {
        kind: CacheKind,
        database: String,
        table: String,
        name: String,
    },
    Token(tokens::TokenChange),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PColumn {
    id: u32,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PTable {
    id: u32,
    name: String,
    columns: Vec<PColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retention_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    last_caches: Vec<PLastCache>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    distinct_caches: Vec<PDistinctCache>,
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

    fn live(&self) -> bool {
        self.deleted_at_ns.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PDatabase {
    id: u32,
    name: String,
    tables: Vec<PTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retention_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at_ns: Option<i64>,
}

impl PDatabase {
    fn live(&self) -> bool {
        self.deleted_at_ns.is_none()
    }

    fn live_table(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.live() && t.name == name)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PCatalog {
    version: u64,
    databases: Vec<PDatabase>,
    /// The id the next cache gets.
    #[serde(default)]
    next_cache_id: u64,
    #[serde(default)]
    tokens: tokens::PTokens,
    #[serde(skip)]
    limits: CatalogLimits,
}

impl PCatalog {
    fn snapshot(&self) -> Result<CatalogSnapshot, String> {
        let mut dbs = Vec::with_capacity(self.databases.len());
        for (i, d) in self.databases.iter().enumerate() {
            if d.id as usize != i {
                return Err(format!(
                    "database '{}' has id {} at position {i}",
                    d.name, d.id
                ));
            }
            let mut tables = Vec::with_capacity(d.tables.len());
            for (j, t) in d.tables.iter().enumerate() {
                if t.id as usize != j {
                    return Err(format!(
                        "table '{}' has id {} at position {j}",
                        t.name, t.id
                    ));
                }
                let mut cols = Vec::with_capacity(t.columns.len());
                for (k, c) in t.columns.iter().enumerate() {
                    let ty = ColumnType::from_name(&c.ty).ok_or_else(|| {
                        format!("column '{}' has unknown type '{}'", c.name, c.ty)
                    })?;
                    if c.id as usize != k {
                        return Err(format!(
                            "column '{}' has id {} at position {k}",
                            c.name, c.id
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
                for c in &t.last_caches {
                    let d = c.def();
                    let bad_key = d
                        .key_columns
                        .iter()
                        .any(|k| !ok(k, &|ty| !matches!(ty, ColumnType::Float | ColumnType::Time)));
                    let bad_value = d.value_columns.iter().flatten().any(|v| !ok(v, &|_| true));
                    if bad_key || bad_value {
                        return Err(format!(
                            "last cache '{}' of table '{}' names a column the table cannot key or hold",
                            c.name(),
                            t.name
                        ));
                    }
                }
                for c in &t.distinct_caches {
                    let d = c.def();
                    if d.columns
                        .iter()
                        .any(|k| !ok(k, &|ty| matches!(ty, ColumnType::Tag | ColumnType::String)))
                    {
                        return Err(format!(
                            "distinct cache '{}' of table '{}' names a column that is not a tag or string",
                            c.name(),
                            t.name
                        ));
                    }
                }
                tables.push(Arc::new(table));
            }
            let mut db = DbSchema::new(d.id, Arc::from(d.name.as_str()), tables);
            db.retention_ns = d.retention_ns;
            db.deleted_at_ns = d.deleted_at_ns;
            dbs.push(Arc::new(db));
        }
        Ok(CatalogSnapshot::new(self.version, dbs))
    }

    fn live_database(&self, name: &str) -> Option<usize> {
        self.databases
            .iter()
            .position(|d| d.live() && d.name == name)
    }

    fn database_mut(&mut self, name: &str) -> Result<&mut PDatabase, CatalogError> {
        match self.live_database(name) {
            Some(i) => Ok(&mut self.databases[i]),
            None => Err(CatalogError::DatabaseNotFound(name.to_string())),
        }
    }

    fn live_tables(&self) -> usize {
        self.databases
            .iter()
            .filter(|d| d.live())
            .map(|d| d.tables.iter().filter(|t| t.live()).count())
            .sum()
    }

    fn check_database_limit(&self) -> Result<(), CatalogError> {
        let live = self.databases.iter().filter(|d| d.live()).count();
        if live >= self.limits.databases {
            return Err(CatalogError::LimitReached {
                what: "database",
                limit: self.limits.databases,
                flag: "--max-databases",
            });
        }
        Ok(())
    }

    fn check_table_limit(&self, adding: usize) -> Result<(), CatalogError> {
        if self.live_tables() + adding > self.limits.tables {
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

    fn new_database(&mut self, name: &str) -> &mut PDatabase {
        let id = self.databases.len() as u32;
        self.databases.push(PDatabase {
            id,
            name: name.to_string(),
            tables: Vec::new(),
            retention_ns: None,
            deleted_at_ns: None,
        });
        self.databases.last_mut().expect("just pushed")
    }

    /// Applies one change at `now_ns`; returns whether anything changed. On an error nothing
    /// changed.
    fn apply(&mut self, change: &Change, now_ns: i64) -> Result<bool, CatalogError> {
        let changed = match change {
            Change::Schema(c) => self.apply_schema(c)?,
            Change::CreateDatabase { name, retention_ns } => {
                validate_database_name(name)?;
                if self.live_database(name).is_some() {
                    return Err(CatalogError::DatabaseExists(name.clone()));
                }
                self.check_database_limit()?;
                self.new_database(name).retention_ns = *retention_ns;
                true
            }
            Change::SetDatabaseRetention { name, retention_ns } => {
                let db = self.database_mut(name)?;
                let changed = db.retention_ns != *retention_ns;
                db.retention_ns = *retention_ns;
                changed
            }
            Change::DeleteDatabase { name } => {
                self.database_mut(name)?.deleted_at_ns = Some(now_ns);
                true
            }
            Change::CreateTable {
                database,
                table,
                columns,
                retention_ns,
            } => {
                validate_table_name(table)?;
                check_new_columns(table, columns)?;
                self.database_mut(database)?;
                self.check_table_limit(1)?;
                self.check_column_limit(columns.len() + 1)?;
                let db = self.database_mut(database)?;
                if db.live_table(table).is_some() {
                    return Err(CatalogError::TableExists {
                        database: database.clone(),
                        table: table.clone(),
                    });
                }
                let mut t = PTable::new(db.tables.len() as u32, table);
                t.retention_ns = *retention_ns;
                for (name, ty) in columns {
                    t.columns.push(PColumn {
                        id: t.columns.len() as u32,
                        name: name.clone(),
                        ty: ty.name().to_string(),
                    });
                }
                db.tables.push(t);
                true
            }
            Change::SetTableRetention {
                database,
                table,
                retention_ns,
            } => {
                let t = self.table_mut(database, table)?;
                let changed = t.retention_ns != *retention_ns;
                t.retention_ns = *retention_ns;
                changed
            }
            Change::DeleteTable { database, table } => {
                self.table_mut(database, table)?.deleted_at_ns = Some(now_ns);
                true
            }
            Change::CreateLastCache(req) => {
                let mut next = self.next_cache_id;
                caches::create_last(self.table_mut(&req.database, &req.table)?, req, &mut next)?;
                self.next_cache_id = next;
                true
            }
            Change::CreateDistinctCache(req) => {
                let mut next = self.next_cache_id;
                let t = self.table_mut(&req.database, &req.table)?;
                caches::create_distinct(t, req, &mut next)?;
                self.next_cache_id = next;
                true
            }
            Change::DeleteCache {
                kind,
                database,
                table,
                name,
            } => {
                caches::delete(self.table_mut(database, table)?, database, *kind, name)?;
                true
            }
            Change::Token(t) => {
                self.tokens.apply(t, now_ns)?;
                true
            }
        };
        if changed {
            self.version += 1;
        }
        Ok(changed)
    }

    fn table_mut(&mut self, database: &str, table: &str) -> Result<&mut PTable, CatalogError> {
        let db = self.database_mut(database)?;
        match db.live_table(table) {
            Some(i) => Ok(&mut db.tables[i]),
            None => Err(CatalogError::TableNotFound {
                database: database.to_string(),
                table: table.to_string(),
            }),
        }
    }

    /// Adds what a write needs. Columns that exist with another type are left alone (the
    /// write path then rejects the lines that wanted them). Limits are checked before
    /// anything changes, so a write past one adds nothing.
    fn apply_schema(&mut self, change: &SchemaChange) -> Result<bool, CatalogError> {
        let existing = self.live_database(&change.database);
        if existing.is_none() {
            self.check_database_limit()?;
        }
        let db = existing.map(|p| &self.databases[p]);
        let mut new_tables = 0;
        for tc in &change.tables {
            let table = db.and_then(|d| d.live_table(&tc.name).map(|t| &d.tables[t]));
            let have = table.map_or(1, |t| t.columns.len());
            let adding = tc
                .columns
                .iter()
                .filter(|(n, _)| !table.is_some_and(|t| t.columns.iter().any(|c| &c.name == n)))
                .count();
            if table.is_none() {
                new_tables += 1;
            }
            if adding > 0 {
                self.check_column_limit(have + adding)?;
            }
        }
        if new_tables > 0 {
            self.check_table_limit(new_tables)?;
        }
        let mut changed = false;
        let db_pos = match existing {
            Some(p) => p,
            None => {
                changed = true;
                self.new_database(&change.database).id as usize
            }
        };
        let db = &mut self.databases[db_pos];
        for tc in &change.tables {
            let t_pos = match db.live_table(&tc.name) {
                Some(p) => p,
                None => {
                    let id = db.tables.len() as u32;
                    db.tables.push(PTable::new(id, &tc.name));
                    changed = true;
                    id as usize
                }
            };
            let table = &mut db.tables[t_pos];
            for (name, ty) in &tc.columns {
                if !table.columns.iter().any(|c| &c.name == name) {
                    let id = table.columns.len() as u32;
                    table.columns.push(PColumn {
                        id,
                        name: name.clone(),
                        ty: ty.name().to_string(),
                    });
                    changed = true;
                }
            }
        }
        Ok(changed)
    }
}

/// The columns of a table created through the API: named, distinct, not `time`.
fn check_new_columns(table: &str, columns: &[(String, ColumnType)]) -> Result<(), CatalogError> {
    for (i, (name, ty)) in columns.iter().enumerate() {
        let bad = |reason| CatalogError::InvalidColumn {
            table: table.to_string(),
            name: name.clone(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("a column name cannot be empty"));
        }
        if name == TIME_COLUMN {
            return Err(bad(
                "every table has a 'time' column; it cannot be declared",
            ));
        }
        if *ty == ColumnType::Time {
            return Err(bad("only the 'time' column holds timestamps"));
        }
        if columns[..i].iter().any(|(n, _)| n == name) {
            return Err(bad(
                "the name is given twice (a tag and a field cannot share it)",
            ));
        }
    }
    Ok(())
}

type Reply = flume::Sender<Result<Arc<CatalogSnapshot>, CatalogError>>;

struct Request {
    change: Change,
    reply: Reply,
}

/// The catalog as shared by every shard.
pub struct Catalog {
    current: ArcSwap<CatalogSnapshot>,
    /// Published with `current`, after the same persist.
    tokens: ArcSwap<crate::auth::TokenSet>,
    requests: flume::Sender<Request>,
    path: PathBuf,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("path", &self.path)
            .field("version", &self.current.load().version)
            .finish()
    }
}

impl Catalog {
    /// Loads `<data_dir>/catalog.json` (or starts empty) and starts the writer thread.
    pub fn open(data_dir: &Path) -> Result<Arc<Catalog>, CatalogError> {
        Self::open_with_limits(data_dir, CatalogLimits::default())
    }

    /// [`Catalog::open`] with caps on its size. Limits apply to new entries only: a catalog
    /// already past them (opened with lower ones) loads whole.
    pub fn open_with_limits(
        data_dir: &Path,
        limits: CatalogLimits,
    ) -> Result<Arc<Catalog>, CatalogError> {
        let path = data_dir.join(FILE_NAME);
        let mut persisted = load(&path)?;
        persisted.limits = limits;
        let snapshot = persisted
            .snapshot()
            .map_err(|reason| CatalogError::Corrupt {
                path: path.clone(),
                reason,
            })?;
        let (tx, rx) = flume::bounded::<Request>(1024);
        let catalog = Arc::new(Catalog {
            current: ArcSwap::from_pointee(snapshot),
            tokens: ArcSwap::from_pointee(persisted.tokens.token_set()),
            requests: tx,
            path: path.clone(),
        });
        let weak = Arc::downgrade(&catalog);
        std::thread::Builder::new()
            .name("catalog-writer".into())
            .spawn(move || writer_loop(persisted, path, rx, weak))
            .map_err(|source| CatalogError::Persist {
                path: data_dir.to_path_buf(),
                source,
            })?;
        Ok(catalog)
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        self.current.load_full()
    }

    /// The current tokens (lock-free).
    pub fn tokens(&self) -> arc_swap::Guard<Arc<crate::auth::TokenSet>> {
        self.tokens.load()
    }

    /// Every token as listed by the API: no hashes, no texts.
    pub fn token_list(&self) -> Vec<Arc<crate::auth::TokenEntry>> {
        let mut all = self.tokens.load().entries();
        all.sort_by_key(|e| e.id);
        all
    }

    /// Adds what a write needs, durably; resolves with the snapshot that includes it.
    pub async fn apply(&self, change: SchemaChange) -> Result<Arc<CatalogSnapshot>, CatalogError> {
        self.change(Change::Schema(change)).await
    }

    /// Applies a change durably; resolves with the snapshot that includes it.
    pub async fn change(&self, change: Change) -> Result<Arc<CatalogSnapshot>, CatalogError> {
        let (tx, rx) = flume::bounded(1);
        self.requests
            .send_async(Request { change, reply: tx })
            .await
            .map_err(|_| CatalogError::WriterGone)?;
        rx.recv_async()
            .await
            .map_err(|_| CatalogError::WriterGone)?
    }
}

fn writer_loop(
    mut state: PCatalog,
    path: PathBuf,
    rx: flume::Receiver<Request>,
    catalog: std::sync::Weak<Catalog>,
) {
    while let Ok(first) = rx.recv() {
        // Take every queued request: one persist covers them all.
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let before = state.clone();
        let now = crate::now_ns();
        let mut changed = false;
        let outcomes: Vec<Result<(), CatalogError>> = batch
            .iter()
            .map(|r| {
                let c = state.apply(&r.change, now)?;
                changed |= c;
                Ok(())
            })
            .collect();
        let result = if changed {
            match persist(&path, &state)
                .and_then(|_| state.snapshot().map_err(std::io::Error::other))
            {
                Ok(snap) => {
                    let snap = Arc::new(snap);
                    if let Some(c) = catalog.upgrade() {
                        c.tokens.store(Arc::new(state.tokens.token_set()));
                        c.current.store(snap.clone());
                    }
                    Ok(snap)
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "persisting the catalog failed; the change is not applied");
                    state = before;
                    Err(e.to_string())
                }
            }
        } else {
            match catalog.upgrade() {
                Some(c) => Ok(c.current.load_full()),
                None => return,
            }
        };
        for (r, outcome) in batch.into_iter().zip(outcomes) {
            let reply = match (outcome, &result) {
                (Err(e), _) => Err(e),
                (Ok(()), Ok(snap)) => Ok(snap.clone()),
                (Ok(()), Err(msg)) => Err(CatalogError::Persist {
                    path: path.clone(),
                    source: std::io::Error::other(msg.clone()),
                }),
            };
            let _ = r.reply.send(reply);
        }
    }
}

fn load(path: &Path) -> Result<PCatalog, CatalogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PCatalog::default()),
        Err(source) => {
            return Err(CatalogError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let corrupt = |reason: String| CatalogError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let (header, json) = text
        .split_once('\n')
        .ok_or_else(|| corrupt("no header line".into()))?;
    let stored = header
        .strip_prefix(HEADER_PREFIX)
        .and_then(|h| u32::from_str_radix(h.trim(), 16).ok())
        .ok_or_else(|| corrupt(format!("unexpected header '{header}'")))?;
    let computed = crc32c::crc32c(json.as_bytes());
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch: stored {stored:08x}, computed {computed:08x}"
        )));
    }
    serde_json::from_str(json).map_err(|e| corrupt(format!("invalid JSON: {e}")))
}

fn persist(path: &Path, state: &PCatalog) -> std::io::Result<()> {
    use std::io::Write;
    let json = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{HEADER_PREFIX}{:08x}", crc32c::crc32c(json.as_bytes()))?;
        f.write_all(json.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(db: &str, table: &str, cols: &[(&str, ColumnType)]) -> SchemaChange {
        SchemaChange {
            database: db.into(),
            tables: vec![TableChange {
                name: table.into(),
                columns: cols.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
            }],
        }
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        futures_lite::future::block_on(f)
    }

    #[test]
    fn changes_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Catalog::open(dir.path()).unwrap();
            let s = block_on(c.apply(change(
                "db",
                "cpu",
                &[("host", ColumnType::Tag), ("v", ColumnType::Float)],
            )))
            .unwrap();
            let t = s.database("db").unwrap().table("cpu").unwrap();
            assert_eq!(t.column("time").unwrap().ty, ColumnType::Time);
            assert_eq!(t.column("v").unwrap().ty, ColumnType::Float);
            // Same column with another type: left as it was.
            let s = block_on(c.apply(change("db", "cpu", &[("v", ColumnType::Int)]))).unwrap();
            assert_eq!(
                s.database("db")
                    .unwrap()
                    .table("cpu")
                    .unwrap()
                    .column("v")
                    .unwrap()
                    .ty,
                ColumnType::Float
            );
            assert_eq!(c.snapshot().version, s.version);
        }
        let c = Catalog::open(dir.path()).unwrap();
        let s = c.snapshot();
        assert_eq!(
            s.database("db")
                .unwrap()
                .table("cpu")
                .unwrap()
                .columns
                .len(),
            3
        );
    }

    #[test]
    fn damaged_file_stops_startup() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Catalog::open(dir.path()).unwrap();
            block_on(c.apply(change("db", "t", &[("v", ColumnType::Float)]))).unwrap();
        }
        let p = dir.path().join(FILE_NAME);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("\"t\"", "\"u\"");
        std::fs::write(&p, text).unwrap();
        let e = Catalog::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
    }

    #[test]
    fn management_changes_and_soft_delete() {
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400_000_000_000;
        {
            let c = Catalog::open(dir.path()).unwrap();
            let create = |name: &str, r| Change::CreateDatabase {
                name: name.into(),
                retention_ns: r,
            };
            block_on(c.change(create("a", Some(day)))).unwrap();
            let e = block_on(c.change(create("a", None))).unwrap_err();
            assert!(matches!(e, CatalogError::DatabaseExists(_)), "{e}");
            let e = block_on(c.change(create("_bad", None))).unwrap_err();
            assert!(matches!(e, CatalogError::InvalidDatabaseName { .. }), "{e}");
            let table = Change::CreateTable {
                database: "a".into(),
                table: "cpu".into(),
                columns: vec![
                    ("host".into(), ColumnType::Tag),
                    ("usage".into(), ColumnType::Float),
                ],
                retention_ns: Some(day / 24),
            };
            let s = block_on(c.change(table.clone())).unwrap();
            let db = s.database("a").unwrap();
            assert_eq!(db.retention_ns, Some(day));
            let t = db.table("cpu").unwrap();
            assert_eq!(t.retention_ns, Some(day / 24));
            assert_eq!(db.retention_for(t), Some(day / 24));
            assert_eq!(t.column("usage").unwrap().ty, ColumnType::Float);
            let e = block_on(c.change(table)).unwrap_err();
            assert!(matches!(e, CatalogError::TableExists { .. }), "{e}");
            let new_table =
                |db: &str, name: &str, columns: Vec<(String, ColumnType)>| Change::CreateTable {
                    database: db.into(),
                    table: name.into(),
                    columns,
                    retention_ns: None,
                };
            let e = block_on(c.change(new_table("nope", "cpu", vec![]))).unwrap_err();
            assert!(matches!(e, CatalogError::DatabaseNotFound(_)), "{e}");
            let twice = vec![("x".into(), ColumnType::Tag), ("x".into(), ColumnType::Int)];
            let e = block_on(c.change(new_table("a", "mem", twice))).unwrap_err();
            assert!(matches!(e, CatalogError::InvalidColumn { .. }), "{e}");
            let time = vec![("time".into(), ColumnType::Float)];
            let e = block_on(c.change(new_table("a", "mem", time))).unwrap_err();
            assert!(matches!(e, CatalogError::InvalidColumn { .. }), "{e}");

            // Retention updates; clearing the table's falls back to the database's.
            block_on(c.change(Change::SetTableRetention {
                database: "a".into(),
                table: "cpu".into(),
                retention_ns: None,
            }))
            .unwrap();
            let s = c.snapshot();
            let db = s.database("a").unwrap();
            assert_eq!(db.retention_for(db.table("cpu").unwrap()), Some(day));

            // Deleting the table hides it; the name is free again, under a new id.
            block_on(c.change(Change::DeleteTable {
                database: "a".into(),
                table: "cpu".into(),
            }))
            .unwrap();
            let e = block_on(c.change(Change::DeleteTable {
                database: "a".into(),
                table: "cpu".into(),
            }))
            .unwrap_err();
            assert!(matches!(e, CatalogError::TableNotFound { .. }), "{e}");
            let s = block_on(c.apply(change("a", "cpu", &[("v", ColumnType::Int)]))).unwrap();
            let db = s.database("a").unwrap();
            assert_eq!(db.table("cpu").unwrap().id, 1);
            assert!(db.table_by_id(0).unwrap().deleted_at_ns.is_some());
            assert_eq!(db.live_tables().count(), 1);

            // Deleting the database; a write recreates the name as a new database.
            block_on(c.change(Change::DeleteDatabase { name: "a".into() })).unwrap();
            assert!(c.snapshot().database("a").is_none());
            let s = block_on(c.apply(change("a", "cpu", &[("v", ColumnType::Float)]))).unwrap();
            let db = s.database("a").unwrap();
            assert_eq!(db.id, 1);
            assert_eq!(db.retention_ns, None);
            assert_eq!(
                db.table("cpu").unwrap().column("v").unwrap().ty,
                ColumnType::Float
            );
        }
        // All of it survives a restart.
        let c = Catalog::open(dir.path()).unwrap();
        let s = c.snapshot();
        assert_eq!(s.databases.len(), 2);
        assert!(s.databases[0].deleted_at_ns.is_some());
        assert_eq!(s.databases[0].retention_ns, Some(day));
        assert_eq!(s.database("a").unwrap().id, 1);
        let live = s.databases.iter().filter(|d| d.deleted_at_ns.is_none());
        assert_eq!(live.count(), 1);
    }

    #[test]
    fn retention_periods() {
        let h = 3_600_000_000_000;
        assert_eq!(parse_retention("none"), Ok(None));
        assert_eq!(parse_retention("1h"), Ok(Some(h)));
        assert_eq!(parse_retention("7d"), Ok(Some(7 * 24 * h)));
        assert_eq!(parse_retention("1h30m"), Ok(Some(h + h / 2)));
        for bad in ["", "30", "0d", "1x", "-1h", "99999999w"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
        assert_eq!(format_retention(7 * 24 * h), "1w");
        assert_eq!(format_retention(36 * h), "1d12h");
    }

    #[test]
    fn database_names() {
        for ok in ["a", "db_1", "9-x", &"a".repeat(64)] {
            assert!(validate_database_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_a", "-a", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(validate_database_name(bad).is_err(), "{bad}");
        }
    }
}
