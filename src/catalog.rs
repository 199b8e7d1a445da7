//! The global catalog: databases, tables and typed columns.
//!
//! Invariants:
//! - One writer. Changes go to a dedicated thread, which applies them, persists the whole
//!   catalog, and only then publishes the new [`CatalogSnapshot`] and answers. A write that
//!   needed a change is therefore acknowledged only after the change is durable.
//! - Readers (every shard, on every request) load the current snapshot through `ArcSwap`:
//!   no lock on the ingest path.
//! - Ids are dense and never reused; a column's type never changes once created.
//! - On disk: `catalog.json`, replaced atomically (write temp file, fsync, rename, fsync
//!   directory). Its first line is `shardline-catalog v1 crc32c=<hex>`, the checksum of the
//!   JSON that follows; a mismatch stops start-up rather than silently losing schema.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use shardline_shards::schema::{
    CatalogSnapshot, ColumnSchema, ColumnType, DbSchema, TableSchema, TIME_COLUMN,
};

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
    #[error("the catalog writer has stopped")]
    WriterGone,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PColumn {
    id: u32,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PTable {
    id: u32,
    name: String,
    columns: Vec<PColumn>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PDatabase {
    id: u32,
    name: String,
    tables: Vec<PTable>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PCatalog {
    version: u64,
    databases: Vec<PDatabase>,
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
                tables.push(Arc::new(TableSchema::new(
                    t.id,
                    Arc::from(t.name.as_str()),
                    cols,
                )));
            }
            dbs.push(Arc::new(DbSchema::new(
                d.id,
                Arc::from(d.name.as_str()),
                tables,
            )));
        }
        Ok(CatalogSnapshot::new(self.version, dbs))
    }

    /// Applies a change; returns whether anything was added. Columns that exist with another
    /// type are left alone (the write path then rejects the lines that wanted them).
    fn apply(&mut self, change: &SchemaChange) -> bool {
        let mut changed = false;
        let db_pos = match self
            .databases
            .iter()
            .position(|d| d.name == change.database)
        {
            Some(p) => p,
            None => {
                let id = self.databases.len() as u32;
                self.databases.push(PDatabase {
                    id,
                    name: change.database.clone(),
                    tables: Vec::new(),
                });
                changed = true;
                id as usize
            }
        };
        let db = &mut self.databases[db_pos];
        for tc in &change.tables {
            let t_pos = match db.tables.iter().position(|t| t.name == tc.name) {
                Some(p) => p,
                None => {
                    let id = db.tables.len() as u32;
                    db.tables.push(PTable {
                        id,
                        name: tc.name.clone(),
                        columns: vec![PColumn {
                            id: 0,
                            name: TIME_COLUMN.to_string(),
                            ty: ColumnType::Time.name().to_string(),
                        }],
                    });
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
        if changed {
            self.version += 1;
        }
        changed
    }
}

type Reply = flume::Sender<Result<Arc<CatalogSnapshot>, String>>;

struct Request {
    change: SchemaChange,
    reply: Reply,
}

/// The catalog as shared by every shard.
pub struct Catalog {
    current: ArcSwap<CatalogSnapshot>,
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
        let path = data_dir.join(FILE_NAME);
        let persisted = load(&path)?;
        let snapshot = persisted
            .snapshot()
            .map_err(|reason| CatalogError::Corrupt {
                path: path.clone(),
                reason,
            })?;
        let (tx, rx) = flume::bounded::<Request>(1024);
        let catalog = Arc::new(Catalog {
            current: ArcSwap::from_pointee(snapshot),
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

    /// Applies a change durably; resolves with the snapshot that includes it.
    pub async fn apply(&self, change: SchemaChange) -> Result<Arc<CatalogSnapshot>, CatalogError> {
        let (tx, rx) = flume::bounded(1);
        self.requests
            .send_async(Request { change, reply: tx })
            .await
            .map_err(|_| CatalogError::WriterGone)?;
        match rx.recv_async().await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(msg)) => Err(CatalogError::Persist {
                path: self.path.clone(),
                source: std::io::Error::other(msg),
            }),
            Err(_) => Err(CatalogError::WriterGone),
        }
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
        let mut changed = false;
        for r in &batch {
            changed |= state.apply(&r.change);
        }
        let result = if changed {
            match persist(&path, &state)
                .and_then(|_| state.snapshot().map_err(std::io::Error::other))
            {
                Ok(snap) => {
                    let snap = Arc::new(snap);
                    if let Some(c) = catalog.upgrade() {
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
        for r in batch {
            let _ = r.reply.send(result.clone());
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
    fn database_names() {
        for ok in ["a", "db_1", "9-x", &"a".repeat(64)] {
            assert!(validate_database_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_a", "-a", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(validate_database_name(bad).is_err(), "{bad}");
        }
    }
}
