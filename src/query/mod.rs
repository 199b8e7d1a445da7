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
//! - Errors found before the first byte of the result carry an HTTP status: unknown database
//!   404, anything the SQL or its parameters cause 400, a shard shutting down 503.
//! - A query whose client went away stops at its next batch.

pub mod caches;
pub mod catalog;
pub mod direct;
pub mod format;
pub mod json_rows;
pub mod json_strings;
pub mod log;
pub mod parquet;
pub mod scan;
pub mod shards;
pub mod table;
pub mod timestamps;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use shardline_shards::schema::DbSchema;

use crate::catalog::{CacheKind, Catalog};
pub use format::Format;
use log::QueryLog;
pub use shards::{
    CacheJob, HereShard, ShardHandles, ShardJob, ShardStopped, ShardView, SnapshotJob, OFF_SHARD,
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
    pub sql: String,
    /// Values for `$name` placeholders.
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    pub format: Format,
    pub reply: flume::Sender<QueryEvent>,
    /// The answer, already read from a cache by the shard ([`QueryPort::submit`]): the
    /// coordinator only encodes it.
    pub answered: Option<RecordBatch>,
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

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    #[error("{0}")]
    Sql(#[from] DataFusionError),
    #[error("invalid params: {0}")]
    Params(String),
    #[error("encoding the result failed: {0}")]
    Encode(#[from] arrow::error::ArrowError),
}

impl QueryError {
    pub fn status(&self) -> u16 {
        match self {
            QueryError::DatabaseNotFound(_) => 404,
            // The server is stopping: the query was fine, ask again later.
            QueryError::Sql(e) if caused_by_stopping_shard(e) => 503,
            QueryError::Sql(_) | QueryError::Params(_) => 400,
            QueryError::Encode(_) => 500,
        }
    }
}

/// Whether a shard shutting down is somewhere in the error's chain of causes.
fn caused_by_stopping_shard(e: &DataFusionError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<ShardStopped>().is_some() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Queries the shards may have handed over and the coordinator not yet taken. Its loop only
/// takes a request and starts it, so the queue fills only while every query thread is busy;
/// then each shard's connections wait here (`send_async`) rather than queueing more. 256 is
/// far more than the shards' connections hand over in one scheduling delay at ordinary
/// loads, so at those nothing waits.
const QUERY_QUEUE_CAPACITY: usize = 256;

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
    threads: usize,
}

/// The running coordinator; dropping it stops its threads.
#[derive(Debug)]
pub struct Coordinator {
    runtime: Option<tokio::runtime::Runtime>,
    requests: flume::Sender<QueryRequest>,
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
            threads,
        });
        let (tx, rx) = flume::bounded::<QueryRequest>(QUERY_QUEUE_CAPACITY);
        let for_requests = shared.clone();
        runtime.spawn(async move {
            while let Ok(req) = rx.recv_async().await {
                tokio::spawn(run(for_requests.clone(), req));
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
        }
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
    requests: flume::Sender<QueryRequest>,
    catalog: Arc<Catalog>,
    shards: ShardHandles,
    log: Arc<QueryLog>,
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
        if let Some(db) = snapshot.database(&req.database) {
            let looked_up =
                direct::answer(&req.sql, req.params.as_ref(), db, &self.shards, Some(here)).await;
            match looked_up {
                Some(Ok(batch)) if batch.num_rows() <= ENCODE_ON_SHARD_ROWS => {
                    return self.encode_here(&req, &batch);
                }
                Some(Ok(batch)) => req.answered = Some(batch),
                Some(Err(e)) => {
                    let e = QueryError::from(e);
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
        match self.requests.send_async(req).await {
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

async fn run(shared: Arc<Shared>, req: QueryRequest) {
    let snapshot = shared.catalog.snapshot();
    let Some(db) = snapshot.database(&req.database).cloned() else {
        let e = QueryError::DatabaseNotFound(req.database.clone());
        let _ = req.reply.send_async(failed(&e)).await;
        return;
    };
    let id = shared.log.start(&req.database, &req.sql, params_text(&req));
    let (rows, error) = match execute(&shared, db, &req).await {
        Ok(rows) => (rows, None),
        Err((rows, e)) => (rows, Some(e)),
    };
    shared.log.finish(&req.database, id, rows, error);
}

fn failed(e: &QueryError) -> QueryEvent {
    QueryEvent::Failed {
        status: e.status(),
        message: e.to_string(),
    }
}

/// Most rows encoded into one chunk of the response.
const ENCODE_ROWS: usize = 8 * 1024;

/// Runs one query, streaming its result. Returns the rows sent, or how it failed.
async fn execute(
    shared: &Shared,
    db: Arc<DbSchema>,
    req: &QueryRequest,
) -> Result<u64, (u64, String)> {
    let reply = &req.reply;
    let prepared = async {
        if let Some(batch) = &req.answered {
            let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
                batch.schema(),
                futures::stream::empty(),
            ));
            return Ok((stream, Some(batch.clone())));
        }
        if let Some(answer) = direct::answer(
            &req.sql,
            req.params.as_ref(),
            &db,
            &shared.shards,
            OFF_SHARD,
        )
        .await
        {
            let batch = answer?;
            let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
                batch.schema(),
                futures::stream::empty(),
            ));
            return Ok((stream, Some(batch)));
        }
        let ctx = session(shared, db)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let mut df = ctx.sql_with_options(&req.sql, options).await?;
        if let Some(p) = &req.params {
            df = df.with_param_values(param_values(p)?)?;
        }
        let mut stream = df.execute_stream().await?;
        // The first batch runs most of a query; an error there still gets a status code.
        let first = stream.next().await.transpose()?;
        Ok::<_, QueryError>((stream, first))
    };
    let (mut stream, first) = match prepared.await {
        Ok(s) => s,
        Err(e) => {
            let _ = reply.send_async(failed(&e)).await;
            return Err((0, e.to_string()));
        }
    };
    let schema = stream.schema();
    let mut encoder = match format::Encoder::new(req.format, &schema) {
        Ok(e) => e,
        Err(e) => {
            let e = QueryError::from(e);
            let _ = reply.send_async(failed(&e)).await;
            return Err((0, e.to_string()));
        }
    };
    let start = QueryEvent::Start {
        content_type: req.format.content_type(),
    };
    let gone = |rows| (rows, "the client went away".to_string());
    if reply.send_async(start).await.is_err() {
        return Err(gone(0));
    }
    send_bytes(reply, encoder.begin())
        .await
        .map_err(|_| gone(0))?;
    let mut next = first.map(Ok);
    loop {
        let batch = match next.take() {
            Some(b) => b,
            None => match stream.next().await {
                Some(b) => b,
                None => break,
            },
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                let e = QueryError::from(e);
                let _ = reply.send_async(QueryEvent::Abort(e.to_string())).await;
                return Err((encoder.rows(), e.to_string()));
            }
        };
        // A large batch goes out in slices, so the connection sends one while the next is
        // encoded and no single buffer holds the whole result.
        let rows = batch.num_rows();
        let mut offset = 0;
        loop {
            let len = (rows - offset).min(ENCODE_ROWS);
            let slice = if offset == 0 && len == rows {
                batch.clone()
            } else {
                batch.slice(offset, len)
            };
            match encoder.batch(&slice) {
                Ok(bytes) => send_bytes(reply, bytes)
                    .await
                    .map_err(|_| gone(encoder.rows()))?,
                Err(e) => {
                    let e = QueryError::from(e);
                    let _ = reply.send_async(QueryEvent::Abort(e.to_string())).await;
                    return Err((encoder.rows(), e.to_string()));
                }
            }
            offset += len;
            if offset >= rows {
                break;
            }
        }
    }
    let rows = encoder.rows();
    match encoder.finish(&schema) {
        Ok(tail) => {
            send_bytes(reply, tail).await.map_err(|_| gone(rows))?;
            reply
                .send_async(QueryEvent::Done)
                .await
                .map_err(|_| gone(rows))?;
            Ok(rows)
        }
        Err(e) => {
            let _ = reply.send_async(QueryEvent::Abort(e.to_string())).await;
            Err((rows, e.to_string()))
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
fn session(shared: &Shared, db: Arc<DbSchema>) -> Result<SessionContext, QueryError> {
    let config = SessionConfig::new()
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema(catalog::CATALOG_NAME, catalog::TABLE_SCHEMA)
        .with_information_schema(true)
        .with_target_partitions(shared.threads.max(shared.shards.len()));
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(shared.runtime_env.clone())
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
    Ok(ctx)
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
    fn statuses() {
        let stopped = DataFusionError::External(Box::new(ShardStopped(1)));
        assert_eq!(QueryError::Sql(stopped).status(), 503);
        let wrapped =
            DataFusionError::External(Box::new(ShardStopped(0))).context("while scanning");
        assert_eq!(QueryError::Sql(wrapped).status(), 503);
        let plan = DataFusionError::Plan("no such column".into());
        assert_eq!(QueryError::Sql(plan).status(), 400);
        assert_eq!(QueryError::DatabaseNotFound("x".into()).status(), 404);
        assert_eq!(QueryError::Params("bad".into()).status(), 400);
    }

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
