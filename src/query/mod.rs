//! The query coordinator: a tokio runtime on its own threads running DataFusion.
//!
//! A shard hands a query over a channel ([`QueryRequest`]) and never blocks on it: the
//! coordinator plans and runs it, pulls record batches from the shards' snapshots
//! ([`table`], [`scan`]), encodes them ([`format`]) and sends the bytes back as they come
//! ([`QueryEvent`]), so a result is never held whole (except for `pretty`).
//!
//! Invariants:
//! - Every request gets exactly one `Start` or `Failed` first. After `Start`, the stream ends
//!   with `Done` (complete) or `Abort` (the client must see a broken response, not a short one).
//! - Errors found before the first byte of the result carry an HTTP status, split by who must
//!   act ([`error`]): unknown database 404, the SQL or its parameters 400, the memory limit or
//!   a shard shutting down 503, our bugs and unreadable storage 500.
//! - Running a query ([`run`]) and encoding its answer are apart: [`run::start`] yields Arrow
//!   batches, and the HTTP encoding here is one consumer of them.
//! - A query whose client went away stops at its next batch.

pub mod caches;
pub mod catalog;
pub mod direct;
pub mod error;
pub mod format;
pub mod influxql;
pub mod json_rows;
pub mod json_strings;
pub mod log;
pub mod parquet;
pub mod prefilter;
pub mod run;
pub mod running;
pub mod scan;
pub mod shards;
pub mod table;
pub mod timestamps;
pub mod v1;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use datafusion::common::ScalarValue;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use shardline_shards::schema::DbSchema;

use crate::catalog::{CacheKind, Catalog};
pub use error::QueryError;
pub use format::Format;
use log::QueryLog;
pub use run::{Language, Query, QueryStream};
pub use shards::{
    CacheJob, DeleteFailed, DeleteJob, FileSource, HereShard, ShardHandles, ShardJob, ShardStopped,
    ShardView, SnapshotJob, OFF_SHARD,
};

/// For the fast JSON encoders' tests: `array` as a one-column batch named `name`, written as
/// JSON lines by Arrow's writer, through `fast` when given, else with Arrow's own encoders.
#[cfg(test)]
pub(crate) fn json_lines_of(
    name: &str,
    array: arrow::array::ArrayRef,
    fast: Option<Arc<dyn arrow::json::writer::EncoderFactory>>,
) -> String {
    use arrow::datatypes::{Field, Schema};
    use arrow::json::writer::{LineDelimited, WriterBuilder};
    let field = Field::new(name, array.data_type().clone(), true);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array]).unwrap();
    let mut out = Vec::new();
    let mut builder = WriterBuilder::new();
    if let Some(factory) = fast {
        builder = builder.with_encoder_factory(factory);
    }
    let mut w = builder.build::<_, LineDelimited>(&mut out);
    w.write(&batch).unwrap();
    w.finish().unwrap();
    String::from_utf8(out).unwrap()
}

/// A query, as a shard hands it over.
#[derive(Debug)]
pub struct QueryRequest {
    pub database: String,
    pub language: Language,
    /// The query text, in `language`.
    pub sql: String,
    /// Values for `$name` placeholders.
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    pub format: Format,
    /// The caller's token: InfluxQL's `SHOW DATABASES` lists what it grants (`None`:
    /// authorization is off).
    pub token: Option<Arc<crate::auth::TokenEntry>>,
    pub reply: flume::Sender<QueryEvent>,
    /// The answer, already read from a cache by the shard ([`QueryPort::submit`]): the
    /// coordinator only encodes it.
    pub answered: Option<RecordBatch>,
}

/// What a shard hands the coordinator.
#[derive(Debug)]
enum Job {
    Query(QueryRequest),
    V1(v1::V1Request),
}

/// What the coordinator sends back, in order.
#[derive(Debug)]
pub enum QueryEvent {
    /// The query runs: answer 200 with this content type; chunks follow.
    Start {
        content_type: &'static str,
    },
    Chunk(Bytes),
    /// The result is complete.
    Done,
    /// The query failed before producing output.
    Failed {
        status: u16,
        message: String,
    },
    /// The query failed after output began.
    Abort(String),
}

/// Queries the shards may have handed over and the coordinator not yet started. Its loop
/// starts a query only with a permit of [`RUNNING_PER_THREAD`] × threads, so once that many
/// are being planned the queue fills, and then each shard's connections wait
/// here (`send_async`) rather than queueing more. 256 is far more than the shards'
/// connections hand over in one scheduling delay at ordinary loads, so at those nothing
/// waits.
const QUERY_QUEUE_CAPACITY: usize = 256;

/// Queries being planned and started at once per query thread. A permit is held until the
/// query's first batch is computed, not while its answer streams to a client that may read
/// slowly (the memory limit and the bounded reply channel bound those).
const RUNNING_PER_THREAD: usize = 32;

/// Settings of the coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub threads: usize,
    /// Memory all running queries may hold at once (sorts, joins, aggregations).
    pub memory_limit: usize,
    /// Where the shards' Parquet files are.
    pub store: Arc<dyn object_store::ObjectStore>,
}

/// State every query reads.
#[derive(Debug)]
struct Shared {
    catalog: Arc<Catalog>,
    shards: ShardHandles,
    store: Arc<dyn object_store::ObjectStore>,
    log: Arc<QueryLog>,
    runtime_env: Arc<RuntimeEnv>,
    /// The v1 queries running now (`SHOW QUERIES`, `KILL QUERY`).
    running: Arc<running::RunningQueries>,
    /// `--query-memory-limit`, for messages.
    memory_limit: usize,
    threads: usize,
}

/// The running coordinator; dropping it stops its threads.
#[derive(Debug)]
pub struct Coordinator {
    runtime: Option<tokio::runtime::Runtime>,
    requests: flume::Sender<Job>,
    shared: Arc<Shared>,
}

impl Coordinator {
    pub fn start(
        config: &CoordinatorConfig,
        catalog: Arc<Catalog>,
        shards: ShardHandles,
    ) -> std::io::Result<Self> {
        let threads = config.threads.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("query")
            .enable_all()
            .build()?;
        let runtime_env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(config.memory_limit)))
            .build_arc()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            catalog,
            shards,
            store: config.store.clone(),
            log: Arc::new(QueryLog::default()),
            runtime_env,
            running: Arc::default(),
            memory_limit: config.memory_limit,
            threads,
        });
        let (tx, rx) = flume::bounded::<Job>(QUERY_QUEUE_CAPACITY);
        let for_requests = shared.clone();
        let running = Arc::new(tokio::sync::Semaphore::new(threads * RUNNING_PER_THREAD));
        runtime.spawn(async move {
            loop {
                let Ok(permit) = running.clone().acquire_owned().await else {
                    break;
                };
                let Ok(job) = rx.recv_async().await else {
                    break;
                };
                let shared = for_requests.clone();
                match job {
                    Job::Query(req) => tokio::spawn(run(shared, req, permit)),
                    Job::V1(req) => tokio::spawn(async move {
                        v1::answer(&shared, req, permit).await;
                    }),
                };
            }
        });
        Ok(Coordinator {
            runtime: Some(runtime),
            requests: tx,
            shared,
        })
    }

    /// Where a shard sends queries.
    pub fn port(&self) -> QueryPort {
        QueryPort {
            requests: self.requests.clone(),
            catalog: self.shared.catalog.clone(),
            shards: self.shared.shards.clone(),
            log: self.shared.log.clone(),
            memory_limit: self.shared.memory_limit,
        }
    }

    /// The engine itself, for callers on the coordinator's runtime that consume batches
    /// rather than HTTP bytes.
    pub fn engine(&self) -> QueryEngine {
        QueryEngine {
            shared: self.shared.clone(),
        }
    }

    /// The coordinator's runtime, where [`QueryEngine::query`] runs.
    pub fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }
}

/// Runs queries and hands back their batches.
#[derive(Debug, Clone)]
pub struct QueryEngine {
    shared: Arc<Shared>,
}

impl QueryEngine {
    /// Plans and starts `query`: its schema and batches, or why it cannot run. Call on the
    /// coordinator's runtime ([`Coordinator::runtime`]).
    pub async fn query(&self, query: &Query) -> Result<QueryStream, QueryError> {
        run::start(&self.shared, query, None).await
    }
}

/// Results at most this many rows long are encoded by the shard that read them: cheaper
/// than handing them to a coordinator thread, which may have to wait for the core.
const ENCODE_ON_SHARD_ROWS: usize = 1024;

/// A shard's way into the query engine. Cache lookups ([`direct`]) are answered right on
/// the shard, and small answers encoded there too: such a query never waits for a
/// coordinator thread, which on a busy core can take the scheduler's time slice (a few
/// milliseconds). Everything else goes to the coordinator.
#[derive(Debug, Clone)]
pub struct QueryPort {
    requests: flume::Sender<Job>,
    catalog: Arc<Catalog>,
    shards: ShardHandles,
    log: Arc<QueryLog>,
    memory_limit: usize,
}

/// How [`QueryPort::submit`] went.
#[derive(Debug)]
pub enum Submitted {
    /// Answered on the shard: the whole response body.
    Answered {
        content_type: &'static str,
        body: Bytes,
    },
    /// Failed on the shard.
    Failed { status: u16, message: String },
    /// With the coordinator, which answers on the request's `reply`.
    Sent,
    /// The coordinator has stopped.
    Stopped,
}

impl QueryPort {
    /// Answers `req` here if it is a cache lookup with a small answer, else sends it to the
    /// coordinator. `here` is the shard this runs on.
    pub async fn submit<H: HereShard>(&self, mut req: QueryRequest, here: &H) -> Submitted {
        let snapshot = self.catalog.snapshot();
        let sql = req.language == Language::Sql;
        if let Some(db) = snapshot.database(&req.database).filter(|_| sql) {
            let looked_up =
                direct::answer(&req.sql, req.params.as_ref(), db, &self.shards, Some(here)).await;
            match looked_up {
                Some(Ok(batch)) if batch.num_rows() <= ENCODE_ON_SHARD_ROWS => {
                    return self.encode_here(&req, &batch);
                }
                Some(Ok(batch)) => req.answered = Some(batch),
                Some(Err(e)) => {
                    let e = QueryError::from_engine(e, self.memory_limit);
                    let id = self.log.start(&req.database, &req.sql, params_text(&req));
                    self.log.finish(&req.database, id, 0, Some(e.to_string()));
                    return Submitted::Failed {
                        status: e.status(),
                        message: e.to_string(),
                    };
                }
                None => {}
            }
        }
        match self.requests.send_async(Job::Query(req)).await {
            Ok(()) => Submitted::Sent,
            Err(_) => Submitted::Stopped,
        }
    }

    /// Hands a v1 `/query` request to the coordinator, which answers on its `reply`.
    pub async fn submit_v1(&self, req: v1::V1Request) -> Submitted {
        match self.requests.send_async(Job::V1(req)).await {
            Ok(()) => Submitted::Sent,
            Err(_) => Submitted::Stopped,
        }
    }

    fn encode_here(&self, req: &QueryRequest, batch: &RecordBatch) -> Submitted {
        let id = self.log.start(&req.database, &req.sql, params_text(req));
        let encoded = (|| {
            let schema = batch.schema();
            let mut encoder = format::Encoder::new(req.format, &schema)?;
            let mut body = encoder.begin().to_vec();
            body.extend_from_slice(&encoder.batch(batch)?);
            body.extend_from_slice(&encoder.finish(&schema)?);
            Ok::<_, arrow::error::ArrowError>(body)
        })();
        match encoded {
            Ok(body) => {
                self.log
                    .finish(&req.database, id, batch.num_rows() as u64, None);
                Submitted::Answered {
                    content_type: req.format.content_type(),
                    body: Bytes::from(body),
                }
            }
            Err(e) => {
                let e = QueryError::from(e);
                self.log.finish(&req.database, id, 0, Some(e.to_string()));
                Submitted::Failed {
                    status: e.status(),
                    message: e.to_string(),
                }
            }
        }
    }
}

fn params_text(req: &QueryRequest) -> Option<String> {
    req.params
        .as_ref()
        .map(|p| serde_json::Value::Object(p.clone()).to_string())
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}

async fn run(shared: Arc<Shared>, req: QueryRequest, permit: tokio::sync::OwnedSemaphorePermit) {
    let query = Query {
        database: req.database.clone(),
        language: req.language,
        text: req.sql.clone(),
        params: req.params.clone(),
        token: req.token.clone(),
    };
    let started = run::start(&shared, &query, req.answered.clone()).await;
    drop(permit);
    match started {
        Ok(stream) => answer_http(stream, &req).await,
        Err(e) => {
            let _ = req.reply.send_async(failed(&e)).await;
        }
    }
}

fn failed(e: &QueryError) -> QueryEvent {
    QueryEvent::Failed {
        status: e.status(),
        message: e.to_string(),
    }
}

/// Most rows encoded into one chunk of the response.
const ENCODE_ROWS: usize = 8 * 1024;

/// Encodes a query's batches in the request's format and sends them to the shard that
/// answers the HTTP request, as they come.
async fn answer_http(mut stream: QueryStream, req: &QueryRequest) {
    let reply = &req.reply;
    let schema = stream.schema();
    let mut encoder = match format::Encoder::new(req.format, &schema) {
        Ok(e) => e,
        Err(e) => {
            let e = QueryError::from(e);
            let _ = reply.send_async(failed(&e)).await;
            return stream.fail(e.to_string());
        }
    };
    let start = QueryEvent::Start {
        content_type: req.format.content_type(),
    };
    if reply.send_async(start).await.is_err() || send_bytes(reply, encoder.begin()).await.is_err() {
        return; // The client went away: dropping the stream cancels the query.
    }
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                let _ = reply.send_async(QueryEvent::Abort(e.to_string())).await;
                return;
            }
        };
        // A large batch goes out in slices, so the connection sends one while the next is
        // encoded and no single buffer holds the whole result.
        let rows = batch.num_rows();
        let mut offset = 0;
        while offset < rows {
            let len = (rows - offset).min(ENCODE_ROWS);
            let slice = if offset == 0 && len == rows {
                batch.clone()
            } else {
                batch.slice(offset, len)
            };
            match encoder.batch(&slice) {
                Ok(bytes) => {
                    if send_bytes(reply, bytes).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let e = QueryError::from(e);
                    let _ = reply.send_async(QueryEvent::Abort(e.to_string())).await;
                    return stream.fail(e.to_string());
                }
            }
            offset += len;
        }
    }
    match encoder.finish(&schema) {
        Ok(tail) => {
            if send_bytes(reply, tail).await.is_ok() {
                let _ = reply.send_async(QueryEvent::Done).await;
            }
        }
        Err(e) => {
            let e = QueryError::from(e);
            let _ = reply.send_async(QueryEvent::Abort(e.to_string())).await;
            stream.fail(e.to_string());
        }
    }
}

async fn send_bytes(reply: &flume::Sender<QueryEvent>, b: Bytes) -> Result<(), ()> {
    if b.is_empty() {
        return Ok(());
    }
    reply.send_async(QueryEvent::Chunk(b)).await.map_err(|_| ())
}

/// A session whose default catalog is the database.
fn session(shared: &Shared, db: Arc<DbSchema>) -> SessionContext {
    let config =
        SessionConfig::new().with_target_partitions(shared.threads.max(shared.shards.len()));
    session_with(shared, db, config, shared.runtime_env.clone())
}

/// Memory a streamed statement's sort may hold before it spills to disk.
pub const STREAM_SORT_MEMORY: usize = 8 << 20;
/// Rows per batch of a streamed statement.
const STREAM_BATCH_ROWS: usize = 1024;

/// A session for a statement whose answer is streamed whatever its size: one partition and a
/// memory pool of its own of [`STREAM_SORT_MEMORY`], so its sort spills (to the OS temporary
/// directory) rather than grow.
fn spilling_session(shared: &Shared, db: Arc<DbSchema>) -> Result<SessionContext, QueryError> {
    let env = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(STREAM_SORT_MEMORY),
        ))
        .build_arc()
        .map_err(|e| QueryError::Internal(format!("a spilling query session: {e}")))?;
    // Small batches: the merge of the sort's spilled runs holds one batch per run.
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(STREAM_BATCH_ROWS)
        .with_extension(Arc::new(table::CompactBatches(STREAM_BATCH_ROWS)));
    config.options_mut().execution.sort_spill_reservation_bytes = STREAM_SORT_MEMORY / 8;
    config.options_mut().execution.sort_in_place_threshold_bytes = STREAM_SORT_MEMORY / 8;
    Ok(session_with(shared, db, config, env))
}

fn session_with(
    shared: &Shared,
    db: Arc<DbSchema>,
    config: SessionConfig,
    env: Arc<RuntimeEnv>,
) -> SessionContext {
    let config = config
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema(catalog::CATALOG_NAME, catalog::TABLE_SCHEMA)
        .with_information_schema(true);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(env)
        .with_default_features()
        .build();
    let ctx = SessionContext::new_with_state(state);
    for kind in [CacheKind::Last, CacheKind::Distinct] {
        let f = caches::CacheFunction::new(kind, db.clone(), shared.shards.clone());
        let name = match kind {
            CacheKind::Last => "last_cache",
            CacheKind::Distinct => "distinct_cache",
        };
        ctx.register_udtf(name, Arc::new(f));
    }
    ctx.register_catalog(
        catalog::CATALOG_NAME,
        Arc::new(catalog::DatabaseCatalog::new(
            db,
            shared.shards.clone(),
            shared.store.clone(),
            shared.log.clone(),
        )),
    );
    ctx
}

/// `params` as DataFusion placeholder values (`$name` takes `params.name`).
fn param_values(
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<HashMap<String, ScalarValue>, QueryError> {
    use serde_json::Value as J;
    params
        .iter()
        .map(|(k, v)| {
            let s = match v {
                J::Null => ScalarValue::Null,
                J::Bool(b) => ScalarValue::Boolean(Some(*b)),
                J::String(s) => ScalarValue::Utf8(Some(s.clone())),
                J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => ScalarValue::Int64(Some(i)),
                    (None, Some(u), _) => ScalarValue::UInt64(Some(u)),
                    (None, None, Some(f)) => ScalarValue::Float64(Some(f)),
                    _ => return Err(QueryError::Params(format!("'{k}' is not a usable number"))),
                },
                J::Array(_) | J::Object(_) => {
                    return Err(QueryError::Params(format!(
                        "'{k}' must be a string, number, boolean or null"
                    )))
                }
            };
            Ok((k.clone(), s))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_become_scalars() {
        let p =
            serde_json::json!({"s": "a", "i": -3, "u": u64::MAX, "f": 1.5, "b": true, "n": null});
        let v = param_values(p.as_object().unwrap()).unwrap();
        assert_eq!(v["s"], ScalarValue::Utf8(Some("a".into())));
        assert_eq!(v["i"], ScalarValue::Int64(Some(-3)));
        assert_eq!(v["u"], ScalarValue::UInt64(Some(u64::MAX)));
        assert_eq!(v["f"], ScalarValue::Float64(Some(1.5)));
        assert_eq!(v["b"], ScalarValue::Boolean(Some(true)));
        assert_eq!(v["n"], ScalarValue::Null);
        let nested = serde_json::json!({"a": [1]});
        assert!(param_values(nested.as_object().unwrap()).is_err());
    }
}
