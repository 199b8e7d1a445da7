//! The global catalog: databases, tables and typed columns, the tables' caches ([`caches`])
//! and the tokens ([`tokens`]).
//!
//! Invariants:
//! - One writer ([`writer`]). Changes go to a dedicated thread, which checks each against the
//!   state it would produce, appends the group to the catalog log and fsyncs it, and only then
//!   publishes the new [`CatalogSnapshot`] and answers. A write that needed a change is
//!   therefore acknowledged only after the change is durable; a refused change leaves the
//!   files as they were.
//! - Readers (every shard, on every request) load the current snapshot through `ArcSwap`:
//!   no lock on the ingest path.
//! - On disk ([`store`], [`log`]): a checkpoint of the whole state and the log of changes
//!   after it. Start-up loads the checkpoint, replays the records after it, and cuts off a
//!   torn last record with a warning; anything else damaged stops start-up rather than
//!   silently losing schema or tokens.
//!
//! The seams: [`names`] (what a name or setting may be), [`changes`] (what may be asked),
//! [`model`] (the state and how a change moves it), [`snapshot`] (the published form),
//! [`writer`] (ordering and durability), [`store`] and [`log`] (files and bytes).

mod arc_list;
pub mod caches;
pub mod changes;
mod log;
mod model;
pub mod names;
mod snapshot;
pub mod store;
pub mod tokens;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use shardline_shards::schema::CatalogSnapshot;

pub use caches::{CacheKind, DistinctCacheRequest, LastCacheRequest};
pub use changes::{Change, SchemaChange, TableChange};
pub use names::{
    format_retention, is_own_policy, parse_retention, v1_database, validate_database_name,
    validate_table_name,
};
pub use store::{CatalogStore, FileStore, SegmentFile};

pub(crate) use model::{PColumn, PTable};

/// The single-file catalog of earlier versions, read once and replaced by a checkpoint.
const LEGACY_FILE: &str = "catalog.json";
const LEGACY_HEADER: &str = "shardline-catalog v1 crc32c=";
/// The directory of the checkpoint and the log, under the data directory.
pub const DIR_NAME: &str = "catalog";

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
    #[error("the catalog writer has stopped; this is a bug, or the server is shutting down")]
    WriterGone,
    #[error("{0}")]
    Internal(String),
    #[error("a catalog change of {bytes} bytes is more than one catalog log record holds ({limit} bytes); split it (fewer new tables or columns per write)")]
    ChangeTooLarge { bytes: usize, limit: usize },
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

impl CatalogLimits {
    /// No caps (replaying the log: what was once let in is let in again).
    pub(crate) fn unlimited() -> Self {
        CatalogLimits {
            databases: usize::MAX,
            tables: usize::MAX,
            columns_per_table: usize::MAX,
        }
    }
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

/// How the catalog runs: its caps and how often it checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogOptions {
    pub limits: CatalogLimits,
    /// A checkpoint is started after this many log records…
    pub checkpoint_records: u64,
    /// …or once the log segment holds this many bytes.
    pub checkpoint_bytes: u64,
    /// Bytes of changes one log record holds at most (at most 64 MiB); changes that come
    /// together past it go in the next record, and one change larger than it is refused.
    pub record_bytes: usize,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            limits: CatalogLimits::default(),
            checkpoint_records: 1000,
            checkpoint_bytes: 16 << 20,
            record_bytes: writer::RECORD_BUDGET,
        }
    }
}

/// The catalog as shared by every shard.
pub struct Catalog {
    current: ArcSwap<CatalogSnapshot>,
    /// Published with `current`, after the same log append.
    tokens: ArcSwap<crate::auth::TokenSet>,
    requests: flume::Sender<writer::Request>,
    location: PathBuf,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("location", &self.location)
            .field("version", &self.current.load().version)
            .finish()
    }
}

impl Catalog {
    /// Loads the catalog under `<data_dir>/catalog/` (or starts empty) and starts the writer.
    pub fn open(data_dir: &Path) -> Result<Arc<Catalog>, CatalogError> {
        Self::open_with_limits(data_dir, CatalogLimits::default())
    }

    /// [`Catalog::open`] with caps on its size. Limits apply to new entries only: a catalog
    /// already past them (opened with lower ones) loads whole.
    pub fn open_with_limits(
        data_dir: &Path,
        limits: CatalogLimits,
    ) -> Result<Arc<Catalog>, CatalogError> {
        let options = CatalogOptions {
            limits,
            ..CatalogOptions::default()
        };
        Self::open_with_options(data_dir, options)
    }

    /// [`Catalog::open`] with every option.
    pub fn open_with_options(
        data_dir: &Path,
        options: CatalogOptions,
    ) -> Result<Arc<Catalog>, CatalogError> {
        let store = Arc::new(FileStore::new(data_dir.join(DIR_NAME)));
        Self::open_store(store, Some(data_dir), options)
    }

    /// Opens the catalog kept in `store`. `legacy_dir`, if given, is where an earlier
    /// version's single `catalog.json` may be: it is taken as the starting state when the
    /// store has no checkpoint, checkpointed, and then removed.
    pub fn open_store(
        store: Arc<dyn CatalogStore>,
        legacy_dir: Option<&Path>,
        options: CatalogOptions,
    ) -> Result<Arc<Catalog>, CatalogError> {
        let legacy_path = legacy_dir.map(|d| d.join(LEGACY_FILE));
        let has_checkpoint = store
            .read_checkpoint()
            .map_err(|source| CatalogError::Read {
                path: store.location().to_path_buf(),
                source,
            })?
            .is_some();
        let legacy = match (&legacy_path, has_checkpoint) {
            (Some(p), false) => load_legacy(p)?,
            (Some(p), true) => {
                // Converted already; only its removal was cut short.
                if p.exists() {
                    tracing::info!(path = %p.display(), "removing the catalog file of an earlier version, converted already");
                    let _ = std::fs::remove_file(p);
                }
                None
            }
            (None, _) => None,
        };
        let migrating = legacy.is_some();
        let mut recovered = writer::recover(&*store, legacy)?;
        recovered.state.limits = options.limits;
        if migrating {
            migrate(&*store, &recovered)?;
            if let Some(p) = &legacy_path {
                let _ = std::fs::remove_file(p);
            }
        }
        let (tx, rx) = flume::bounded::<writer::Request>(1024);
        let catalog = Arc::new(Catalog {
            current: ArcSwap::from_pointee(recovered.snapshot.clone()),
            tokens: ArcSwap::from_pointee(recovered.state.tokens.token_set()),
            requests: tx,
            location: store.location().to_path_buf(),
            writer: Mutex::new(None),
        });
        let handle = writer::spawn(
            recovered,
            store.clone(),
            options,
            rx,
            Arc::downgrade(&catalog),
        )
        .map_err(|source| CatalogError::Persist {
            path: store.location().to_path_buf(),
            source,
        })?;
        *catalog.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(catalog)
    }

    /// Changes waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.requests.len()
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
            .send_async(writer::Request { change, reply: tx })
            .await
            .map_err(|_| CatalogError::WriterGone)?;
        rx.recv_async()
            .await
            .map_err(|_| CatalogError::WriterGone)?
    }
}

impl Drop for Catalog {
    /// Waits for the writer (and its checkpointer) to finish, so that whoever opens the
    /// catalog next reads files nobody is writing.
    fn drop(&mut self) {
        let (closed, _) = flume::bounded(0);
        drop(std::mem::replace(&mut self.requests, closed));
        let handle = self
            .writer
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            // The writer briefly holds the catalog to publish; if that was the last holder,
            // this runs on the writer itself, which ends right after.
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

/// Reads an earlier version's `catalog.json`, if there is one.
fn load_legacy(path: &Path) -> Result<Option<model::PCatalog>, CatalogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
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
        .strip_prefix(LEGACY_HEADER)
        .and_then(|h| u32::from_str_radix(h.trim(), 16).ok())
        .ok_or_else(|| corrupt(format!("unexpected header '{header}'")))?;
    let computed = crc32c::crc32c(json.as_bytes());
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch: stored {stored:08x}, computed {computed:08x}"
        )));
    }
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| corrupt(format!("invalid JSON: {e}")))
}

/// Writes the state taken from a legacy file as the first checkpoint, so the legacy file can
/// go.
fn migrate(store: &dyn CatalogStore, recovered: &writer::Recovered) -> Result<(), CatalogError> {
    let json =
        serde_json::to_vec(&recovered.state).map_err(|e| CatalogError::Internal(e.to_string()))?;
    store
        .write_checkpoint(&log::encode_checkpoint(recovered.seq(), &json))
        .map_err(|source| CatalogError::Persist {
            path: store.location().to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests;
