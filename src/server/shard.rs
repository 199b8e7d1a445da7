//! One shard at run time: its WAL, its buffer, its end of the channel mesh, and how it
//! writes a request's lines — its own directly, other shards' through the mesh.
//!
//! Invariants:
//! - A batch is applied to the buffer only after the WAL has it (after fsync when durable),
//!   and acknowledged only after it is applied: acknowledged means durable and readable.
//! - The body travels between shards as one shared `Arc<String>` with byte ranges; no line is
//!   copied until the owner's WAL encodes it.
//! - Everything here is single-threaded (`Rc`, `RefCell`): no lock on the ingest path. A
//!   `RefCell` borrow is never held across an `.await`.
//! - A write enters the WAL only through [`super::persist::PersistState::admit`], and stays
//!   counted as in flight until its rows are in the buffer (see `persist` for why).
//! - Messages to other shards go through [`super::mesh::MeshDepths::send`], and a handler of a
//!   peer's message never sends on the mesh itself (see `mesh` for why that keeps the bounded
//!   channels free of deadlock).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use glommio::channels::channel_mesh::Senders;
use shardline_shards::buffer::{ShardBuffer, Value};
use shardline_shards::cache::{FileBackfill, ShardCaches};
use shardline_shards::ingest::{Applier, BatchHeader};
use shardline_shards::rows::ParsedRows;
use shardline_shards::schema::{CatalogSnapshot, ColumnType};
use shardline_shards::series::owner_shard;
use shardline_shards::wal::{encode_batch, DmaStore, Wal};

use super::mesh::MeshDepths;
use crate::catalog::Catalog;

/// Buffers of each kind kept per shard: one per request a shard usually has in flight.
const POOL_SIZE: usize = 8;

/// Rows a write applies before it lets other tasks run (if the executor's time slice is
/// up): a few tens of microseconds of work.
const APPLY_SLICE_ROWS: usize = 128;

/// One request's lines for one shard.
#[derive(Debug)]
pub struct WriteBatch {
    pub body: Arc<String>,
    pub spans: Vec<(usize, usize)>,
    pub header: BatchHeader,
    pub durable: bool,
}

/// Messages between shards.
#[derive(Debug)]
pub enum ShardMsg {
    Write {
        batch: WriteBatch,
        reply: flume::Sender<Result<(), WriteError>>,
    },
    /// Every buffered row of a database, as JSON objects (the test-facing read path).
    Dump {
        database: String,
        reply: flume::Sender<Vec<serde_json::Value>>,
    },
    /// The shard's metrics, for a scrape of `/metrics`.
    Metrics {
        reply: flume::Sender<crate::metrics::ShardSample>,
    },
}

/// Why a shard did not write a batch.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct WriteError {
    pub message: String,
    /// Memory is full and persisting fails: the client should retry later (503).
    pub unavailable: bool,
}

impl From<String> for WriteError {
    fn from(message: String) -> Self {
        WriteError {
            message,
            unavailable: false,
        }
    }
}

impl From<super::persist::Unavailable> for WriteError {
    fn from(e: super::persist::Unavailable) -> Self {
        WriteError {
            message: e.to_string(),
            unavailable: true,
        }
    }
}

/// Server-wide settings every shard reads.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    pub shards: usize,
    pub max_request_bytes: usize,
    /// Bytes each shard's caches may hold (estimated).
    pub cache_limit: usize,
    pub auth: crate::auth::AuthPolicy,
}

/// A shard's state, shared by its tasks.
pub struct ShardCtx {
    pub id: usize,
    pub config: SharedConfig,
    pub catalog: Arc<Catalog>,
    pub wal: Rc<Wal<DmaStore>>,
    pub buffer: RefCell<ShardBuffer>,
    pub persist: super::persist::PersistState,
    /// Last-value and distinct-value caches, fed right after the buffer.
    pub caches: RefCell<ShardCaches>,
    /// New caches still to be backfilled from the shard's files, and the signal that there
    /// are some (see [`super::cache_backfill`]).
    pub cache_backfills: RefCell<Vec<FileBackfill>>,
    pub cache_backfill_wake: event_listener::Event,
    applier: RefCell<Applier>,
    /// Writes apply to the buffer in WAL order.
    turns: super::turns::Turns,
    pub senders: Senders<ShardMsg>,
    /// Messages on their way to each shard over the mesh (shared by all shards).
    pub mesh_depths: Arc<MeshDepths>,
    /// Messages from other shards being handled now.
    mesh_handling: Cell<usize>,
    /// Where this shard hands queries to the coordinator.
    pub queries: crate::query::QueryPort,
    /// The coordinator's jobs for this shard (bounded; see `query::shards`).
    jobs: flume::Receiver<crate::query::ShardJob>,
    /// Emptied per-request buffers, kept for the next request so steady ingest does not
    /// allocate (and fault in) megabytes per request.
    rows_pool: RefCell<Vec<ParsedRows<'static>>>,
    body_pool: RefCell<Vec<Vec<u8>>>,
    /// Request and write counters for `/metrics`.
    pub metrics: crate::metrics::ShardMetrics,
    /// Open HTTP connections (drained on shutdown).
    pub connections: Cell<usize>,
    pub stopping: Cell<bool>,
    pub stop_event: event_listener::Event,
}

/// What a shard is made of at start-up.
#[derive(Debug)]
pub struct ShardParts {
    pub id: usize,
    pub config: SharedConfig,
    pub catalog: Arc<Catalog>,
    pub wal: Rc<Wal<DmaStore>>,
    pub buffer: ShardBuffer,
    pub persist: super::persist::PersistState,
    pub senders: Senders<ShardMsg>,
    pub mesh_depths: Arc<MeshDepths>,
    pub queries: crate::query::QueryPort,
    pub jobs: flume::Receiver<crate::query::ShardJob>,
}

impl crate::query::HereShard for ShardCtx {
    fn index(&self) -> usize {
        self.id
    }

    /// A cache defined since the last write is backfilled first, so it answers at once.
    fn answer_cache(&self, job: crate::query::CacheJob) {
        self.sync_caches(&self.catalog.snapshot());
        job.answer(&self.caches.borrow());
    }
}

impl std::fmt::Debug for ShardCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardCtx")
            .field("id", &self.id)
            .field("connections", &self.connections.get())
            .finish()
    }
}

impl ShardCtx {
    pub fn new(p: ShardParts) -> Self {
        ShardCtx {
            id: p.id,
            config: p.config.clone(),
            catalog: p.catalog,
            wal: p.wal,
            buffer: RefCell::new(p.buffer),
            persist: p.persist,
            caches: RefCell::new(ShardCaches::with_memory_limit(Some(p.config.cache_limit))),
            cache_backfills: RefCell::default(),
            cache_backfill_wake: event_listener::Event::new(),
            applier: RefCell::new(Applier::default()),
            turns: super::turns::Turns::default(),
            rows_pool: RefCell::default(),
            body_pool: RefCell::default(),
            senders: p.senders,
            mesh_depths: p.mesh_depths,
            mesh_handling: Cell::new(0),
            queries: p.queries,
            jobs: p.jobs,
            metrics: crate::metrics::ShardMetrics::default(),
            connections: Cell::new(0),
            stopping: Cell::new(false),
            stop_event: event_listener::Event::new(),
        }
    }

    /// What persistence works on (see [`super::persist::Host`]).
    pub fn persist_host(&self) -> super::persist::Host<'_> {
        super::persist::Host {
            id: self.id,
            persist: &self.persist,
            buffer: &self.buffer,
            wal: &self.wal,
            catalog: &self.catalog,
            stopping: &self.stopping,
            stop_event: &self.stop_event,
        }
    }

    /// An empty parsed-rows arena, from the pool when one is free.
    pub fn take_rows(&self) -> ParsedRows<'static> {
        self.rows_pool.borrow_mut().pop().unwrap_or_default()
    }

    pub fn give_rows(&self, rows: ParsedRows<'_>) {
        let mut pool = self.rows_pool.borrow_mut();
        if pool.len() < POOL_SIZE {
            pool.push(rows.recycle());
        }
    }

    /// An empty byte buffer, from the pool when one is free.
    pub fn take_buffer(&self) -> Vec<u8> {
        self.body_pool.borrow_mut().pop().unwrap_or_default()
    }

    pub fn give_buffer(&self, mut buf: Vec<u8>) {
        let mut pool = self.body_pool.borrow_mut();
        if pool.len() < POOL_SIZE && buf.capacity() <= 2 * self.config.max_request_bytes {
            buf.clear();
            pool.push(buf);
        }
    }

    /// Appends a batch to this shard's WAL and waits for it (for the fsync when durable).
    async fn log(&self, batch: &WriteBatch) -> Result<(), String> {
        let committed = self.wal.append(batch.durable, |out| {
            let h = &batch.header;
            encode_batch(
                out,
                h.database_id,
                h.precision,
                h.default_time_ns,
                &batch.body,
                batch.spans.iter().copied(),
            )
        });
        committed.await.map_err(|e| e.to_string())
    }

    /// Writes a batch whose lines this shard received itself and already parsed: WAL, then
    /// the buffer from the parsed rows.
    async fn write_local(
        &self,
        batch: &WriteBatch,
        rows: &ParsedRows<'_>,
    ) -> Result<(), WriteError> {
        let _in_flight = self.persist.admit(&self.buffer).await?;
        // A full WAL group makes the write wait here, before it takes its place.
        self.wal.room().await;
        // Taken in the same step as the WAL append (nothing awaits in between).
        let turn = self.turns.take();
        self.log(batch).await?;
        turn.wait().await;
        let mut applied = 0;
        let mut start = 0;
        while start < rows.len() {
            // A slice at a time, with a yield point between slices (it yields only once the
            // executor's slice, glommio's default 100 ms, is up). The catalog is read again
            // for each: a cache defined meanwhile is synced before it is fed.
            let end = (start + APPLY_SLICE_ROWS).min(rows.len());
            let snapshot = self.catalog.snapshot();
            let id = batch.header.database_id;
            let db = snapshot
                .database_by_id(id)
                .ok_or_else(|| format!("database id {id} vanished from the catalog"))?;
            self.sync_caches(&snapshot);
            applied += rows.apply_rows(&mut self.buffer.borrow_mut(), db, start..end);
            self.feed_caches(&snapshot);
            start = end;
            glommio::yield_if_needed().await;
        }
        debug_assert_eq!(applied as usize, batch.spans.len());
        self.persist.after_write(self.buffer.borrow().bytes());
        Ok(())
    }

    /// Writes a batch forwarded by another shard: WAL, then parse and buffer.
    pub async fn write_owned(&self, batch: &WriteBatch) -> Result<(), WriteError> {
        let _in_flight = self.persist.admit(&self.buffer).await?;
        // A full WAL group makes the write wait here, before it takes its place.
        self.wal.room().await;
        // Taken in the same step as the WAL append (nothing awaits in between).
        let turn = self.turns.take();
        self.log(batch).await?;
        turn.wait().await;
        let body = batch.body.as_str();
        for spans in batch.spans.chunks(APPLY_SLICE_ROWS) {
            // As in `write_local`: a slice at a time, the catalog read again for each.
            let snapshot = self.catalog.snapshot();
            self.sync_caches(&snapshot);
            let stats = self.applier.borrow_mut().apply_chunks(
                &mut self.buffer.borrow_mut(),
                &snapshot,
                &batch.header,
                spans.iter().map(|&(s, e)| &body[s..e]),
                |_| true,
            );
            debug_assert_eq!(stats.skipped, 0, "lines were checked before dispatch");
            self.feed_caches(&snapshot);
            glommio::yield_if_needed().await;
        }
        self.persist.after_write(self.buffer.borrow().bytes());
        Ok(())
    }

    /// Brings the caches to the catalog's set (backfilling new ones from the frozen and
    /// active buffers, and queueing them for the shard's files). Cheap when the catalog has
    /// not changed.
    pub fn sync_caches(&self, snapshot: &CatalogSnapshot) {
        let mut caches = self.caches.borrow_mut();
        // Caches may hold values of deleted rows: rebuilt from what is left.
        for (db, table) in self.persist.deleted_from.borrow_mut().drain(..) {
            caches.forget_table(db, table);
        }
        if caches.synced_with(snapshot) {
            return;
        }
        let frozen = self.persist.frozen.borrow();
        let active = self.buffer.borrow();
        let mut buffers: Vec<&ShardBuffer> = Vec::with_capacity(2);
        if let Some(f) = frozen.as_ref() {
            buffers.push(&f.buffer);
        }
        buffers.push(&active);
        let backfills = caches.sync(snapshot, &buffers, crate::now_ns());
        if !backfills.is_empty() {
            self.cache_backfills.borrow_mut().extend(backfills);
            self.cache_backfill_wake.notify(usize::MAX);
        }
    }

    /// Feeds the caches the rows just applied (must follow the apply with no await between).
    fn feed_caches(&self, snapshot: &CatalogSnapshot) {
        let mut caches = self.caches.borrow_mut();
        if !caches.is_empty() {
            let shed = caches.feed(snapshot, &self.buffer.borrow(), crate::now_ns());
            self.report_cache_shed(shed);
        }
    }

    pub(super) fn report_cache_shed(&self, shed: Option<shardline_shards::cache::MemoryShed>) {
        if let Some(s) = shed {
            tracing::warn!(
                shard = self.id,
                entries = s.entries,
                bytes_before = s.bytes_before,
                bytes_after = s.bytes_after,
                limit = s.limit,
                "caches reached --cache-mem-limit: dropped the entries written to longest ago"
            );
        }
    }

    /// Drops aged-out cache values every `interval`, until the shard stops.
    pub async fn evict_caches(&self, interval: std::time::Duration) {
        while !self.stopping.get() {
            glommio::timer::sleep(interval).await;
            let shed = self.caches.borrow_mut().evict(crate::now_ns());
            self.report_cache_shed(shed);
        }
    }

    /// Writes every owner's share of a request and waits for all of them.
    /// `local_rows` are this shard's lines, parsed by the planner.
    pub async fn dispatch(
        &self,
        per_owner: Vec<Vec<(usize, usize)>>,
        body: Arc<String>,
        header: BatchHeader,
        durable: bool,
        local_rows: &ParsedRows<'_>,
    ) -> Result<(), WriteError> {
        let mut local = None;
        let mut remote = Vec::new();
        for (owner, spans) in per_owner.into_iter().enumerate() {
            if spans.is_empty() {
                continue;
            }
            let batch = WriteBatch {
                body: body.clone(),
                spans,
                header,
                durable,
            };
            if owner == self.id {
                local = Some(batch);
            } else {
                let (tx, rx) = flume::bounded(1);
                self.mesh_depths
                    .send(&self.senders, owner, ShardMsg::Write { batch, reply: tx })
                    .await
                    .map_err(|_| {
                        WriteError::from(format!(
                            "shard {owner} is not accepting writes (shutting down)"
                        ))
                    })?;
                remote.push((owner, rx));
            }
        }
        let mut result = Ok(());
        if let Some(b) = local {
            result = self.write_local(&b, local_rows).await;
        }
        for (owner, rx) in remote {
            let r = rx
                .recv_async()
                .await
                .unwrap_or_else(|_| Err(format!("shard {owner} stopped before answering").into()));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Answers the coordinator's jobs until the coordinator goes away. A job is answered in
    /// one step, waiting on nothing, so the job channels always drain (see `query::shards`).
    pub async fn serve_snapshots(&self) {
        while let Ok(job) = self.jobs.recv_async().await {
            let job = match job {
                crate::query::ShardJob::Cache(c) => {
                    crate::query::HereShard::answer_cache(self, c);
                    continue;
                }
                crate::query::ShardJob::Delete(d) => {
                    if let Err(d) = self.persist.request_delete(d) {
                        let _ = d.reply.send(Err(format!(
                            "{} deletions are already waiting on this shard; retry later",
                            super::persist::MAX_PENDING_DELETES
                        )));
                    }
                    continue;
                }
                other => other,
            };
            let active = self.buffer.borrow();
            let frozen = self.persist.frozen.borrow();
            let manifest = self.persist.manifest.borrow();
            let adopted = self.persist.adopted.borrow();
            let mut manifests = vec![&**manifest];
            manifests.extend(adopted.iter().map(|(_, m)| &**m));
            job.answer(&crate::query::ShardView {
                shard: self.id,
                shard_count: self.config.shards,
                frozen: frozen.as_ref().map(|f| &*f.buffer),
                active: &active,
                manifests,
            });
        }
    }

    /// Handles a message from another shard. Sends nothing on the mesh (see `mesh`).
    pub async fn handle(&self, msg: ShardMsg) {
        self.mesh_handling.set(self.mesh_handling.get() + 1);
        match msg {
            ShardMsg::Write { batch, reply } => {
                let r = self.write_owned(&batch).await;
                let _ = reply.send_async(r).await;
            }
            ShardMsg::Dump { database, reply } => {
                let _ = reply.send_async(self.dump(&database)).await;
            }
            ShardMsg::Metrics { reply } => {
                let _ = reply.send_async(self.metrics_sample()).await;
            }
        }
        self.mesh_handling.set(self.mesh_handling.get() - 1);
    }

    /// This shard's counters and the gauges of its buffer, WAL, files and caches.
    pub fn metrics_sample(&self) -> crate::metrics::ShardSample {
        let (mut rows, mut bytes) = {
            let b = self.buffer.borrow();
            (b.rows() as u64, b.bytes() as u64)
        };
        if let Some(frozen) = self.persist.frozen.borrow().as_ref() {
            rows += frozen.buffer.rows() as u64;
            bytes += frozen.buffer.bytes() as u64;
        }
        let (parquet_files, parquet_bytes) = {
            let own = self.persist.manifest.borrow().clone();
            let adopted = self.persist.adopted.borrow();
            std::iter::once(&own)
                .chain(adopted.iter().map(|(_, m)| m))
                .flat_map(|m| m.files.iter())
                .fold((0u64, 0u64), |(n, b), f| (n + 1, b + f.size_bytes))
        };
        let gauges = crate::metrics::ShardGauges {
            buffer_rows: rows,
            buffer_bytes: bytes,
            wal_group_commits: self.wal.groups_committed(),
            parquet_files,
            parquet_bytes,
            cache_bytes: self.caches.borrow().memory_bytes() as u64,
            http_connections: self.connections.get() as u64,
            mesh_queue_depth: self.mesh_depths.depth(self.id) as u64,
            mesh_handlers: self.mesh_handling.get() as u64,
            job_queue_depth: self.jobs.len() as u64,
            wal_queue_bytes: self.wal.pending_bytes() as u64,
            wal_queue_depth: self.wal.appends_waiting() as u64,
        };
        self.metrics.sample(self.id, gauges)
    }

    /// Every shard's metrics sample, this one's first (with the coordinator's queues).
    pub async fn metrics_all(&self) -> Vec<crate::metrics::ShardSample> {
        let mut here = self.metrics_sample();
        here.coordinator = Some(self.queries.queue_sample());
        let mut samples = vec![here];
        samples.extend(self.ask_peers(|reply| ShardMsg::Metrics { reply }).await);
        samples
    }

    /// Sends every other shard the message `ask` builds around a reply channel, one at a
    /// time, and collects the replies (a shard that is stopping and does not answer is left
    /// out).
    async fn ask_peers<T>(&self, ask: impl Fn(flume::Sender<T>) -> ShardMsg) -> Vec<T> {
        let mut replies = Vec::with_capacity(self.config.shards.saturating_sub(1));
        for peer in (0..self.config.shards).filter(|&p| p != self.id) {
            let (tx, rx) = flume::bounded(1);
            if self
                .mesh_depths
                .send(&self.senders, peer, ask(tx))
                .await
                .is_ok()
            {
                if let Ok(r) = rx.recv_async().await {
                    replies.push(r);
                }
            }
        }
        replies
    }

    /// This shard's rows of a database as JSON objects:
    /// `{"table", "time", "tags": {..}, "fields": {..}}`.
    pub fn dump(&self, database: &str) -> Vec<serde_json::Value> {
        let snapshot = self.catalog.snapshot();
        let Some(db) = snapshot.database(database) else {
            return Vec::new();
        };
        let buffer = self.buffer.borrow();
        let mut out = Vec::new();
        for table in db.live_tables() {
            let Some(t) = buffer.table(db.id, table.id) else {
                continue;
            };
            for row in 0..t.rows() {
                let mut tags = serde_json::Map::new();
                let mut fields = serde_json::Map::new();
                for col in &table.columns {
                    if col.ty == ColumnType::Time {
                        continue;
                    }
                    let v = match t.value(row, col) {
                        Value::Null => continue,
                        Value::Tag(s) | Value::Str(s) => serde_json::Value::from(s),
                        Value::F64(x) => serde_json::Value::from(x),
                        Value::I64(x) => serde_json::Value::from(x),
                        Value::U64(x) => serde_json::Value::from(x),
                        Value::Bool(x) => serde_json::Value::from(x),
                    };
                    if col.ty == ColumnType::Tag {
                        tags.insert(col.name.to_string(), v);
                    } else {
                        fields.insert(col.name.to_string(), v);
                    }
                }
                out.push(serde_json::json!({
                    "table": &*table.name,
                    "time": t.time().get(row),
                    "tags": tags,
                    "fields": fields,
                }));
            }
        }
        out
    }

    /// Collects every shard's rows of a database.
    pub async fn dump_all(&self, database: &str) -> Vec<serde_json::Value> {
        let mut rows = self.dump(database);
        let peers = self
            .ask_peers(|reply| ShardMsg::Dump {
                database: database.to_string(),
                reply,
            })
            .await;
        rows.extend(peers.into_iter().flatten());
        rows
    }
}

/// What a shard replays at start-up.
#[derive(Debug)]
pub struct ReplayPlan<'a> {
    pub id: usize,
    pub shards: usize,
    /// This shard's WAL directory and the last segment its manifest says is in Parquet.
    pub own_dir: &'a std::path::Path,
    pub covered: u64,
    /// WAL directories of earlier layouts whose lines this shard has not persisted yet:
    /// (directory's shard index, directory).
    pub old_dirs: &'a [(usize, std::path::PathBuf)],
}

/// Replays into a fresh buffer: this shard's segments not yet in Parquet (deleting the
/// covered ones a crash left behind), and its share of earlier layouts' WAL. A shard
/// truncates damaged tails only in directories it is responsible for (its own, and old ones
/// whose index maps to it), so no two shards cut the same file. Returns the buffer and the
/// next segment number to write.
pub fn replay(
    plan: &ReplayPlan<'_>,
    catalog: &Catalog,
) -> Result<(ShardBuffer, u64), shardline_shards::wal::WalError> {
    use shardline_shards::wal::{delete_segments_through, list_segments, replay_segment_with};
    let snapshot = catalog.snapshot();
    let mut buffer = ShardBuffer::default();
    let mut applier = Applier::default();
    let mut stats = shardline_shards::ingest::ApplyStats::default();
    let started = std::time::Instant::now();
    let deleted = delete_segments_through(plan.own_dir, plan.covered)?;
    let mut next_segment = plan.covered + 1;
    for (seq, path) in list_segments(plan.own_dir)? {
        next_segment = next_segment.max(seq + 1);
        replay_segment_with(&path, true, |batch| {
            stats += applier.apply(&mut buffer, &snapshot, &batch, |_| true);
        })?;
    }
    for (dir_idx, dir) in plan.old_dirs {
        let responsible = dir_idx % plan.shards == plan.id;
        for (_, path) in list_segments(dir)? {
            replay_segment_with(&path, responsible, |batch| {
                stats += applier.apply(&mut buffer, &snapshot, &batch, |h| {
                    owner_shard(h, plan.shards) == plan.id
                });
            })?;
        }
    }
    tracing::info!(
        shard = plan.id,
        lines = stats.applied,
        skipped = stats.skipped,
        covered_segments_deleted = deleted,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "replayed WAL"
    );
    Ok((buffer, next_segment))
}
