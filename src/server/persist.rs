//! A shard's side of persistence: when to snapshot, freezing the buffer without losing or
//! double-counting a write, handing the frozen buffer to a persistence thread, installing the
//! new manifest, and holding writes back while memory is over the limit.
//!
//! Invariants:
//! - The buffer is frozen only while no write is between its WAL append and its buffer
//!   update (`in_flight` is 0 behind a closed gate), and the WAL is rotated at that moment:
//!   so the frozen buffer holds exactly the rows of the segments up to the rotation's, which
//!   is what the manifest then says it covers.
//! - Queries see a frozen buffer until the manifest listing its files is installed, and the
//!   files from then on; both change in one step on the shard's thread, so no query sees
//!   the rows twice or not at all.
//! - One snapshot at a time per shard. A failed one keeps its frozen buffer (still queried)
//!   and is retried; writes are refused (503) only while the limit is reached and the
//!   snapshot that would make room keeps failing.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardline_shards::buffer::ShardBuffer;
use shardline_shards::persist::{
    persist_buffer, Manifest, ShardLayout, SnapshotCover, Storage, Tombstone,
};
use shardline_shards::wal::{DmaStore, Wal};

use super::layout::Absorption;
use crate::catalog::Catalog;
use crate::query::DeleteJob;

/// How often the snapshot task looks at the buffer's age (and retries a failed snapshot).
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// Wait after a failed snapshot before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Deletions a shard holds waiting for its snapshot task; more are refused (retry later).
pub const MAX_PENDING_DELETES: usize = 64;

/// Persistence settings shared by every shard.
#[derive(Debug, Clone)]
pub struct PersistConfig {
    pub storage: Storage,
    /// Buffer bytes per shard (active and frozen together).
    pub buffer_limit: usize,
    pub snapshot_interval: Duration,
    pub gen1_ns: i64,
    pub shard_count: usize,
    pub epoch: u64,
    /// Whether small files are merged.
    pub compaction: bool,
    /// How often files past retention or of deleted tables are looked for.
    pub retention_check_interval: Duration,
    /// How long files of deleted tables and databases are kept.
    pub delete_grace: Duration,
    /// How long a file no manifest lists stays in storage.
    pub file_delete_delay: Duration,
}

/// A write refused because memory is full and persisting is failing.
#[derive(Debug, thiserror::Error)]
#[error("the write buffer is full and persisting it fails ({0}); retry later")]
pub struct Unavailable(pub String);

/// One shard's persistence state.
pub struct PersistState {
    pub config: PersistConfig,
    pub wal_dir: PathBuf,
    /// The shard's durable manifest.
    pub manifest: RefCell<Arc<Manifest>>,
    /// Manifests of directories of a larger earlier shard count that this shard answers for,
    /// with their directory's shard index: their files stay queryable, and retention,
    /// deletion and garbage collection apply to them (no new files are added).
    pub adopted: RefCell<Vec<(usize, Arc<Manifest>)>>,
    /// The buffer being persisted, if a snapshot is running (or failed and will be retried).
    pub frozen: RefCell<Option<Frozen>>,
    running: Cell<bool>,
    /// Writes between their WAL append and their buffer update.
    in_flight: Cell<usize>,
    /// Closed while the buffer is being frozen.
    gate_closed: Cell<bool>,
    /// Signalled when `in_flight` drops, the gate opens, or a snapshot ends.
    changed: event_listener::Event,
    /// Wakes the snapshot task early (the buffer passed half the limit).
    wake: event_listener::Event,
    /// When the oldest row of the active buffer arrived.
    oldest_write: Cell<Option<Instant>>,
    /// Old-layout epochs this shard replayed and has not yet persisted.
    absorbing: RefCell<Vec<u64>>,
    absorption: Arc<Absorption>,
    last_error: RefCell<Option<String>>,
    /// The manifest version compaction last found nothing to do in.
    compaction_checked: Cell<Option<u64>>,
    /// Buffer bytes per row at the last snapshot: sizes compaction's memory budget.
    row_bytes: Cell<usize>,
    /// When files were last checked against retention and deletions.
    expiry_checked: Cell<Option<Instant>>,
    /// Deletions for the next snapshot to record (at most [`MAX_PENDING_DELETES`]).
    deletes: RefCell<Vec<DeleteJob>>,
    /// Tables (database id, table id) rows were deleted from since the shard's caches last
    /// looked: their caches are rebuilt (see `ShardCtx::sync_caches`).
    pub deleted_from: RefCell<Vec<(u32, u32)>>,
}

/// A frozen buffer and what persisting it covers.
#[derive(Debug, Clone)]
pub struct Frozen {
    pub buffer: Arc<ShardBuffer>,
    cover: SnapshotCover,
}

impl std::fmt::Debug for PersistState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistState")
            .field("files", &self.manifest.borrow().files.len())
            .field("frozen", &self.frozen.borrow().is_some())
            .finish()
    }
}

/// Marks a write as between its WAL append and its buffer update while alive.
#[derive(Debug)]
pub struct InFlight<'a>(&'a PersistState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
        self.0.changed.notify(usize::MAX);
    }
}

impl PersistState {
    pub fn new(
        config: PersistConfig,
        wal_dir: PathBuf,
        manifest: Manifest,
        adopted: Vec<(usize, Arc<Manifest>)>,
        absorbing: Vec<u64>,
        absorption: Arc<Absorption>,
        replayed_rows: bool,
    ) -> Self {
        PersistState {
            config,
            wal_dir,
            manifest: RefCell::new(Arc::new(manifest)),
            adopted: RefCell::new(adopted),
            frozen: RefCell::new(None),
            running: Cell::new(false),
            in_flight: Cell::new(0),
            gate_closed: Cell::new(false),
            changed: event_listener::Event::new(),
            wake: event_listener::Event::new(),
            oldest_write: Cell::new(replayed_rows.then(Instant::now)),
            absorbing: RefCell::new(absorbing),
            absorption,
            last_error: RefCell::new(None),
            compaction_checked: Cell::new(None),
            row_bytes: Cell::new(256),
            expiry_checked: Cell::new(None),
            deletes: RefCell::new(Vec::new()),
            deleted_from: RefCell::new(Vec::new()),
        }
    }

    fn layout(&self, index: usize) -> ShardLayout {
        ShardLayout {
            index,
            count: self.config.shard_count,
            epoch: self.config.epoch,
            gen1_ns: self.config.gen1_ns,
        }
    }

    fn frozen_bytes(&self) -> usize {
        self.frozen
            .borrow()
            .as_ref()
            .map_or(0, |f| f.buffer.bytes())
    }

    /// Waits until a write may enter the WAL: the gate is open and memory is under the limit
    /// (or nothing a snapshot could free is left). Refuses only when over the limit while
    /// snapshots fail.
    pub async fn admit(&self, active: &RefCell<ShardBuffer>) -> Result<InFlight<'_>, Unavailable> {
        loop {
            let listener = self.changed.listen();
            let over = active.borrow().bytes() + self.frozen_bytes() >= self.config.buffer_limit;
            if !self.gate_closed.get() && !over {
                break;
            }
            if over {
                if let Some(e) = self.last_error.borrow().clone() {
                    return Err(Unavailable(e));
                }
                if !self.running.get() && self.frozen.borrow().is_none() {
                    if active.borrow().is_empty() {
                        // Nothing to free: the limit is below what one buffer needs.
                        break;
                    }
                    self.wake.notify(1);
                }
            }
            listener.await;
        }
        self.in_flight.set(self.in_flight.get() + 1);
        Ok(InFlight(self))
    }

    /// After rows were added: note their age, start a snapshot at half the limit.
    pub fn after_write(&self, active_bytes: usize) {
        if self.oldest_write.get().is_none() {
            self.oldest_write.set(Some(Instant::now()));
        }
        if active_bytes >= self.config.buffer_limit / 2 && !self.running.get() {
            self.wake.notify(1);
        }
    }

    /// Queues a deletion for the snapshot task; hands it back when the queue is full.
    pub fn request_delete(&self, req: DeleteJob) -> Result<(), DeleteJob> {
        let mut q = self.deletes.borrow_mut();
        if q.len() >= MAX_PENDING_DELETES {
            return Err(req);
        }
        q.push(req);
        self.wake.notify(1);
        Ok(())
    }

    fn due(&self, active: &ShardBuffer) -> bool {
        if self.running.get() {
            return false;
        }
        if self.frozen.borrow().is_some() || !self.deletes.borrow().is_empty() {
            return true; // a failed snapshot to retry
        }
        if active.is_empty() {
            return false;
        }
        active.bytes() >= self.config.buffer_limit / 2
            || self
                .oldest_write
                .get()
                .is_some_and(|t| t.elapsed() >= self.config.snapshot_interval)
    }
}

/// The parts of a shard that persistence works on, lent by the shard
/// (`ShardCtx::persist_host`). Persistence sees these rather than the shard itself, which
/// holds a [`PersistState`]: this module then depends on nothing that depends on it.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    pub id: usize,
    pub persist: &'a PersistState,
    /// The active buffer (frozen into `persist.frozen` by a snapshot).
    pub buffer: &'a RefCell<ShardBuffer>,
    pub wal: &'a Wal<DmaStore>,
    pub catalog: &'a Catalog,
    /// Set, and `stop_event` notified, when the shard stops.
    pub stopping: &'a Cell<bool>,
    pub stop_event: &'a event_listener::Event,
}

/// The snapshot task of one shard: runs until the shard stops.
pub async fn snapshot_loop(ctx: Host<'_>) {
    let p = &ctx.persist;
    while !ctx.stopping.get() {
        let woken = p.wake.listen();
        let stop = ctx.stop_event.listen();
        if !p.due(&ctx.buffer.borrow()) {
            // Idle: tidy the files (one step at a time, so a due snapshot never waits long).
            match maintain(&ctx).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(shard = ctx.id, error = %e, "compaction or file cleanup failed; retried later")
                }
            }
            futures_lite::future::or(futures_lite::future::or(woken, stop), async {
                glommio::timer::sleep(CHECK_EVERY).await;
            })
            .await;
            continue;
        }
        if let Err(e) = snapshot(&ctx).await {
            tracing::error!(shard = ctx.id, error = %e, "snapshot failed; the buffer stays in memory (and queryable) and the snapshot is retried");
            *p.last_error.borrow_mut() = Some(e);
            p.changed.notify(usize::MAX);
            futures_lite::future::or(stop, async {
                glommio::timer::sleep(RETRY_AFTER).await;
            })
            .await;
        }
    }
}

/// Freezes the active buffer (unless a failed snapshot's frozen buffer is waiting) and
/// persists it. A fresh freeze also records the deletions waiting: their tombstones go into
/// the manifest listing the frozen rows' files, stamped with the WAL segment the freeze
/// covered, so they hide exactly the rows written before them (see `persist::tombstone`).
async fn snapshot(ctx: &Host<'_>) -> Result<(), String> {
    let p = &ctx.persist;
    p.running.set(true);
    let retry = p.frozen.borrow().clone();
    let deletes = match retry {
        Some(_) => Vec::new(),
        None => std::mem::take(&mut *p.deletes.borrow_mut()),
    };
    let result = async {
        let frozen = match retry {
            Some(f) => f,
            None => freeze(ctx).await?,
        };
        let started = Instant::now();
        let storage = p.config.storage.clone();
        let catalog = ctx.catalog.snapshot();
        let mut manifest = Manifest::clone(&p.manifest.borrow());
        let tombstones: Vec<Tombstone> = deletes
            .iter()
            .flat_map(|d| d.tombstones.iter().cloned())
            .collect();
        manifest.add_tombstones(tombstones, p.config.epoch, frozen.cover.wal_covered);
        let layout = p.layout(ctx.id);
        let wal_dir = p.wal_dir.clone();
        let job = frozen.clone();
        let manifest = on_thread(format!("persist-{}", ctx.id), move || {
            let m = persist_buffer(
                &storage,
                &job.buffer,
                &catalog,
                manifest,
                &layout,
                &job.cover,
                &super::fault::hit,
            )
            .map_err(|e| e.to_string())?;
            // The manifest is durable: the segments it covers can go.
            if let Err(e) =
                shardline_shards::wal::delete_segments_through(&wal_dir, job.cover.wal_covered)
            {
                tracing::warn!(error = %e, "deleting covered WAL segments failed; they are skipped at replay and deleted by the next snapshot");
            }
            Ok(m)
        })
        .await?;
        let files = manifest.files.len();
        if frozen.buffer.rows() > 0 {
            p.row_bytes
                .set((frozen.buffer.bytes() / frozen.buffer.rows()).max(16));
        }
        // One step: the files become visible as the frozen buffer goes.
        *p.manifest.borrow_mut() = Arc::new(manifest);
        *p.frozen.borrow_mut() = None;
        *p.last_error.borrow_mut() = None;
        p.absorption.absorbed(ctx.id, &frozen.cover.absorbed_epochs);
        p.deleted_from.borrow_mut().extend(
            deletes
                .iter()
                .flat_map(|d| d.tombstones.iter().map(|t| (t.database_id, t.table_id))),
        );
        tracing::info!(
            shard = ctx.id,
            rows = frozen.buffer.rows(),
            files,
            wal_covered = frozen.cover.wal_covered,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot persisted"
        );
        Ok(())
    }
    .await;
    p.running.set(false);
    p.changed.notify(usize::MAX);
    for d in deletes {
        let _ = d.reply.send(result.clone());
    }
    result
}

/// Closes the gate, waits for writes in flight, rotates the WAL and swaps in an empty buffer.
async fn freeze(ctx: &Host<'_>) -> Result<Frozen, String> {
    let p = &ctx.persist;
    p.gate_closed.set(true);
    let result = async {
        while p.in_flight.get() > 0 {
            let l = p.changed.listen();
            if p.in_flight.get() == 0 {
                break;
            }
            l.await;
        }
        let covered = ctx.wal.rotate().await.map_err(|e| e.to_string())?;
        let buffer = std::mem::take(&mut *ctx.buffer.borrow_mut());
        let frozen = Frozen {
            buffer: Arc::new(buffer),
            cover: SnapshotCover {
                wal_covered: covered,
                absorbed_epochs: std::mem::take(&mut *p.absorbing.borrow_mut()),
            },
        };
        *p.frozen.borrow_mut() = Some(frozen.clone());
        p.oldest_write.set(None);
        Ok(frozen)
    }
    .await;
    p.gate_closed.set(false);
    p.changed.notify(usize::MAX);
    result
}

/// Runs `job` on a persistence thread and waits for it without blocking the shard.
async fn on_thread<T: Send + 'static>(
    name: String,
    job: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = flume::bounded(1);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _ = tx.send(job());
        })
        .map_err(|e| format!("starting a persistence thread: {e}"))?;
    rx.recv_async()
        .await
        .map_err(|_| "the persistence thread died".to_string())?
}

/// Drops the files of `manifest` (stored as shard `dir`'s) past retention or of deleted
/// tables when `expire` is set, and deletes its garbage whose delay is over; returns the new
/// manifest if anything changed.
async fn tidy(
    ctx: &Host<'_>,
    dir: usize,
    manifest: Manifest,
    expire: bool,
) -> Result<Option<Manifest>, String> {
    use shardline_shards::persist::expire;
    let p = &ctx.persist;
    let now = crate::now_ns();
    let expired = if expire {
        let grace = p.config.delete_grace.as_nanos().min(i64::MAX as u128) as i64;
        expire::expired_files(&manifest, &ctx.catalog.snapshot(), now, grace)
    } else {
        Vec::new()
    };
    if expired.is_empty() && !manifest.garbage.iter().any(|g| g.delete_after_ns <= now) {
        return Ok(None);
    }
    let storage = p.config.storage.clone();
    let delete_after = now.saturating_add(p.config.file_delete_delay.as_nanos() as i64);
    let id = ctx.id;
    on_thread(format!("persist-{id}"), move || {
        let mut m = manifest;
        if !expired.is_empty() {
            expire::drop_files(&mut m, &expired, delete_after);
            tracing::info!(
                shard = id,
                manifest = dir,
                files = expired.len(),
                "dropped files past their retention period or of deleted tables"
            );
        }
        let (due, keep): (Vec<_>, Vec<_>) =
            m.garbage.drain(..).partition(|g| g.delete_after_ns <= now);
        m.garbage = keep;
        // Deleted before the manifest stops listing them: if saving it fails, they are
        // deleted again next time (deleting a missing file succeeds).
        for g in &due {
            storage
                .delete(&shardline_shards::persist::manifest::location(&g.path))
                .map_err(|e| e.to_string())?;
        }
        if !due.is_empty() {
            tracing::info!(
                shard = id,
                manifest = dir,
                files = due.len(),
                "deleted unlisted files"
            );
        }
        m.save_next(&storage, dir)
            .map(Some)
            .map_err(|e| e.to_string())
    })
    .await
}

/// One step of upkeep: drops files past retention or of deleted tables and deletes garbage
/// whose delay is over (in this shard's manifest and those it adopted), or else merges one
/// run of small files. Returns whether it did anything.
async fn maintain(ctx: &Host<'_>) -> Result<bool, String> {
    let p = &ctx.persist;
    let expiry_due = match p.expiry_checked.get() {
        None => true,
        Some(t) => t.elapsed() >= p.config.retention_check_interval,
    };
    let mut tidied = false;
    // This shard's manifest (slot `None`), then the adopted ones.
    let adopted: Vec<usize> = (0..p.adopted.borrow().len()).collect();
    for slot in std::iter::once(None).chain(adopted.into_iter().map(Some)) {
        let (dir, manifest) = match slot {
            None => (ctx.id, Manifest::clone(&p.manifest.borrow())),
            Some(k) => {
                let (dir, m) = &p.adopted.borrow()[k];
                (*dir, Manifest::clone(m))
            }
        };
        // An error returns before the check is marked done: the next step retries it.
        if let Some(next) = tidy(ctx, dir, manifest, expiry_due).await? {
            let next = Arc::new(next);
            match slot {
                None => *p.manifest.borrow_mut() = next,
                Some(k) => p.adopted.borrow_mut()[k].1 = next,
            }
            tidied = true;
        }
    }
    if expiry_due {
        p.expiry_checked.set(Some(Instant::now()));
    }
    if tidied {
        return Ok(true);
    }
    if rewrite_once(ctx).await? {
        return Ok(true);
    }
    compact_once(ctx).await
}

/// Rewrites one file of this shard's manifest that a tombstone covers, without the rows it
/// deletes; with none left, drops the tombstones that cover no file any more. Returns
/// whether it did anything.
async fn rewrite_once(ctx: &Host<'_>) -> Result<bool, String> {
    use shardline_shards::persist::tombstone;
    let p = &ctx.persist;
    let mut manifest = Manifest::clone(&p.manifest.borrow());
    if manifest.tombstones.is_empty() {
        return Ok(false);
    }
    let catalog = ctx.catalog.snapshot();
    let target = tombstone::covered_files(&manifest).find_map(|i| {
        let f = &manifest.files[i];
        let db = catalog.database_by_id(f.database_id)?;
        let table = db.table_by_id(f.table_id)?;
        // A deleted table's files only wait for removal (see `tidy`).
        db.deleted_at(table)
            .is_none()
            .then(|| (i, db.name.to_string(), table.clone()))
    });
    let storage = p.config.storage.clone();
    let id = ctx.id;
    let Some((i, db_name, table)) = target else {
        let adopted: Vec<Arc<Manifest>> =
            p.adopted.borrow().iter().map(|(_, m)| m.clone()).collect();
        let others: Vec<&Manifest> = adopted.iter().map(|m| &**m).collect();
        if manifest.drop_spent_tombstones(&others) == 0 {
            return Ok(false);
        }
        let next = on_thread(format!("persist-{id}"), move || {
            manifest.save_next(&storage, id).map_err(|e| e.to_string())
        })
        .await?;
        *p.manifest.borrow_mut() = Arc::new(next);
        return Ok(true);
    };
    let path = manifest.files[i].path.clone();
    merge_and_install(ctx, "rewrite", manifest, vec![i], table, db_name).await?;
    tracing::info!(shard = id, file = %path, "rewrote a file without its deleted rows");
    Ok(true)
}

/// Merges the files `run` of `manifest` (this shard's) into one on a persistence thread
/// (see `compact::compact_run`), saves the manifest that swaps it in, and installs it.
async fn merge_and_install(
    ctx: &Host<'_>,
    thread: &str,
    manifest: Manifest,
    run: Vec<usize>,
    table: Arc<shardline_shards::schema::TableSchema>,
    db_name: String,
) -> Result<(), String> {
    let p = &ctx.persist;
    let storage = p.config.storage.clone();
    let id = ctx.id;
    let layout = p.layout(id);
    let delete_after = crate::now_ns().saturating_add(p.config.file_delete_delay.as_nanos() as i64);
    p.running.set(true);
    let result = on_thread(format!("{thread}-{id}"), move || {
        shardline_shards::persist::compact::compact_run(
            &storage,
            manifest,
            &run,
            &table,
            &db_name,
            &layout,
            delete_after,
        )
        .and_then(|m| m.save_next(&storage, id))
        .map_err(|e| e.to_string())
    })
    .await;
    p.running.set(false);
    p.changed.notify(usize::MAX);
    *p.manifest.borrow_mut() = Arc::new(result?);
    Ok(())
}

/// Merges one run of small files of this shard's manifest, if compaction finds one.
async fn compact_once(ctx: &Host<'_>) -> Result<bool, String> {
    use shardline_shards::persist::compact;
    let p = &ctx.persist;
    let manifest = Manifest::clone(&p.manifest.borrow());
    if !p.config.compaction || p.compaction_checked.get() == Some(manifest.version) {
        return Ok(false);
    }
    // A merge holds its rows about three times over (decoded inputs, their concatenation,
    // the output); it runs when no frozen buffer exists, so it may use the half of the
    // buffer limit a frozen buffer would.
    let budget = p.config.buffer_limit / 2 / (3 * p.row_bytes.get());
    let catalog = ctx.catalog.snapshot();
    // Files of deleted tables only wait for removal: not worth merging.
    let live = |run: &Vec<usize>| {
        let f = &manifest.files[run[0]];
        catalog.database_by_id(f.database_id).is_some_and(|db| {
            db.table_by_id(f.table_id)
                .is_some_and(|t| db.deleted_at(t).is_none())
        })
    };
    let layout = p.layout(ctx.id);
    let runs = compact::plan(&manifest, &layout, budget as u64);
    let Some(run) = runs.into_iter().find(live) else {
        p.compaction_checked.set(Some(manifest.version));
        return Ok(false);
    };
    let first = &manifest.files[run[0]];
    let db = catalog
        .database_by_id(first.database_id)
        .ok_or("compacting files of a database missing from the catalog")?
        .clone();
    let table = db
        .table_by_id(first.table_id)
        .ok_or("compacting files of a table missing from the catalog")?
        .clone();
    let started = Instant::now();
    let files = run.len();
    merge_and_install(ctx, "compact", manifest, run, table, db.name.to_string()).await?;
    tracing::info!(
        shard = ctx.id,
        files,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compacted files"
    );
    Ok(true)
}
