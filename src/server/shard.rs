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

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use glommio::channels::channel_mesh::Senders;
use shardline_shards::buffer::{ShardBuffer, Value};
use shardline_shards::ingest::{Applier, BatchHeader};
use shardline_shards::rows::ParsedRows;
use shardline_shards::schema::ColumnType;
use shardline_shards::series::owner_shard;
use shardline_shards::wal::{encode_batch, DmaStore, Wal};

use crate::catalog::Catalog;

/// Buffers of each kind kept per shard: one per request a shard usually has in flight.
const POOL_SIZE: usize = 8;

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
        reply: flume::Sender<Result<(), String>>,
    },
    /// Every buffered row of a database, as JSON objects (the test-facing read path).
    Dump {
        database: String,
        reply: flume::Sender<Vec<serde_json::Value>>,
    },
}

/// Server-wide settings every shard reads.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    pub shards: usize,
    pub max_request_bytes: usize,
}

/// A shard's state, shared by its tasks.
pub struct ShardCtx {
    pub id: usize,
    pub config: SharedConfig,
    pub catalog: Arc<Catalog>,
    pub wal: Rc<Wal<DmaStore>>,
    pub buffer: RefCell<ShardBuffer>,
    applier: RefCell<Applier>,
    pub senders: Senders<ShardMsg>,
    /// Where this shard hands queries to the coordinator.
    pub queries: flume::Sender<crate::query::QueryRequest>,
    /// Emptied per-request buffers, kept for the next request so steady ingest does not
    /// allocate (and fault in) megabytes per request.
    rows_pool: RefCell<Vec<ParsedRows<'static>>>,
    body_pool: RefCell<Vec<Vec<u8>>>,
    /// Open HTTP connections (drained on shutdown).
    pub connections: Cell<usize>,
    pub stopping: Cell<bool>,
    pub stop_event: event_listener::Event,
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
    pub fn new(
        id: usize,
        config: SharedConfig,
        catalog: Arc<Catalog>,
        wal: Rc<Wal<DmaStore>>,
        buffer: ShardBuffer,
        senders: Senders<ShardMsg>,
        queries: flume::Sender<crate::query::QueryRequest>,
    ) -> Self {
        ShardCtx {
            id,
            config,
            catalog,
            wal,
            buffer: RefCell::new(buffer),
            applier: RefCell::new(Applier::default()),
            rows_pool: RefCell::default(),
            body_pool: RefCell::default(),
            senders,
            queries,
            connections: Cell::new(0),
            stopping: Cell::new(false),
            stop_event: event_listener::Event::new(),
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
    async fn write_local(&self, batch: &WriteBatch, rows: &ParsedRows<'_>) -> Result<(), String> {
        self.log(batch).await?;
        let snapshot = self.catalog.snapshot();
        let id = batch.header.database_id;
        let db = snapshot
            .database_by_id(id)
            .ok_or_else(|| format!("database id {id} vanished from the catalog"))?;
        let applied = rows.apply(&mut self.buffer.borrow_mut(), db);
        debug_assert_eq!(applied as usize, batch.spans.len());
        Ok(())
    }

    /// Writes a batch forwarded by another shard: WAL, then parse and buffer.
    pub async fn write_owned(&self, batch: &WriteBatch) -> Result<(), String> {
        self.log(batch).await?;
        let snapshot = self.catalog.snapshot();
        let body = batch.body.as_str();
        let stats = self.applier.borrow_mut().apply_chunks(
            &mut self.buffer.borrow_mut(),
            &snapshot,
            &batch.header,
            batch.spans.iter().map(|&(s, e)| &body[s..e]),
            |_| true,
        );
        debug_assert_eq!(stats.skipped, 0, "lines were checked before dispatch");
        Ok(())
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
    ) -> Result<(), String> {
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
                self.senders
                    .send_to(owner, ShardMsg::Write { batch, reply: tx })
                    .await
                    .map_err(|_| {
                        format!("shard {owner} is not accepting writes (shutting down)")
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
                .unwrap_or_else(|_| Err(format!("shard {owner} stopped before answering")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Answers the coordinator's snapshot requests until the coordinator goes away.
    pub async fn serve_snapshots(&self, jobs: flume::Receiver<crate::query::SnapshotJob>) {
        while let Ok(job) = jobs.recv_async().await {
            job.answer(&self.buffer.borrow());
        }
    }

    /// Handles a message from another shard.
    pub async fn handle(&self, msg: ShardMsg) {
        match msg {
            ShardMsg::Write { batch, reply } => {
                let r = self.write_owned(&batch).await;
                let _ = reply.send_async(r).await;
            }
            ShardMsg::Dump { database, reply } => {
                let _ = reply.send_async(self.dump(&database)).await;
            }
        }
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
        for table in &db.tables {
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
        for peer in 0..self.config.shards {
            if peer == self.id {
                continue;
            }
            let (tx, rx) = flume::bounded(1);
            let msg = ShardMsg::Dump {
                database: database.to_string(),
                reply: tx,
            };
            if self.senders.send_to(peer, msg).await.is_ok() {
                if let Ok(mut r) = rx.recv_async().await {
                    rows.append(&mut r);
                }
            }
        }
        rows
    }
}

/// Replays every WAL directory into a fresh buffer, keeping the lines this shard owns under
/// the current shard count. A shard truncates damaged tails only in the directories it is
/// responsible for (its own, and orphans left by a larger shard count), so no two shards cut
/// the same file.
pub fn replay(
    id: usize,
    shards: usize,
    wal_dirs: &[(usize, std::path::PathBuf)],
    catalog: &Catalog,
) -> Result<(ShardBuffer, u64), shardline_shards::wal::WalError> {
    let snapshot = catalog.snapshot();
    let mut buffer = ShardBuffer::default();
    let mut applier = Applier::default();
    let mut own_next_segment = 1;
    let mut stats = shardline_shards::ingest::ApplyStats::default();
    let started = std::time::Instant::now();
    for (dir_idx, dir) in wal_dirs {
        let responsible = dir_idx % shards == id;
        for (seq, path) in shardline_shards::wal::list_segments(dir)? {
            if *dir_idx == id {
                own_next_segment = own_next_segment.max(seq + 1);
            }
            shardline_shards::wal::replay_segment_with(&path, responsible, |batch| {
                stats += applier.apply(&mut buffer, &snapshot, &batch, |h| {
                    owner_shard(h, shards) == id
                });
            })?;
        }
    }
    tracing::info!(
        shard = id,
        lines = stats.applied,
        skipped = stats.skipped,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "replayed WAL"
    );
    Ok((buffer, own_next_segment))
}
