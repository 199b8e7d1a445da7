//! Running a query: one function plans and starts it and yields its schema and a stream of
//! Arrow batches ([`QueryStream`]). Every way of answering consumes that stream: the HTTP
//! encoders (v3 formats), and later Flight, the v1 encoders and the processing engine.
//!
//! Invariants:
//! - Planning happens under the coordinator's memory limit; the first batch is computed
//!   before [`start`] returns, so an error in most of the work still comes back as an error
//!   (with its status) rather than as a broken stream.
//! - Every started query reaches the query log exactly once, when its stream is dropped (or
//!   fails): complete (with its rows), failed (with the error, the engine's or the consumer's
//!   through [`QueryStream::fail`]), or cancelled because its stream was dropped before the end. Dropping the stream stops the query: DataFusion cancels its tasks on drop.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SQLOptions;
use futures::{Stream, StreamExt};

use super::error::QueryError;
use super::log::QueryLog;
use super::{direct, param_values, session, Shared, OFF_SHARD};

/// The language a query is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    Sql,
    InfluxQl,
}

/// One query to run.
#[derive(Debug, Clone)]
pub struct Query {
    pub database: String,
    pub language: Language,
    /// The query, in `language`.
    pub text: String,
    /// Values for `$name` placeholders.
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    /// The caller's token, for InfluxQL's `SHOW DATABASES` (`None`: authorization is off).
    pub token: Option<Arc<crate::auth::TokenEntry>>,
}

impl Query {
    /// The parameters as the query log shows them.
    pub(crate) fn params_text(&self) -> Option<String> {
        self.params
            .as_ref()
            .map(|p| serde_json::Value::Object(p.clone()).to_string())
    }
}

/// A started query's answer. Dropping it before its end cancels the query.
pub struct QueryStream {
    schema: SchemaRef,
    first: Option<RecordBatch>,
    rest: SendableRecordBatchStream,
    memory_limit: usize,
    entry: LogEntry,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .field("rows", &self.entry.rows)
            .finish()
    }
}

/// The query's line in the log, closed once.
#[derive(Debug)]
struct LogEntry {
    log: Arc<QueryLog>,
    database: String,
    id: u64,
    rows: u64,
    /// Every batch was handed out: success, unless the consumer says otherwise before it
    /// drops the stream.
    ended: bool,
    closed: bool,
}

impl LogEntry {
    fn close(&mut self, error: Option<String>) {
        if !self.closed {
            self.closed = true;
            self.log.finish(&self.database, self.id, self.rows, error);
        }
    }
}

impl Drop for LogEntry {
    fn drop(&mut self) {
        let outcome = if self.ended {
            None
        } else {
            Some("cancelled before its end (the client went away, or the server stopped)".into())
        };
        self.close(outcome);
    }
}

impl QueryStream {
    /// The answer's schema (known before any batch).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows handed out so far.
    pub fn rows(&self) -> u64 {
        self.entry.rows
    }

    /// Records in the query log that the consumer failed after the stream had started (an
    /// encoding error, a broken connection), and ends the query.
    pub fn fail(mut self, error: impl Into<String>) {
        self.entry.close(Some(error.into()));
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch, QueryError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.entry.closed || this.entry.ended {
            return Poll::Ready(None);
        }
        let next = match this.first.take() {
            Some(b) => Some(Ok(b)),
            None => match this.rest.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(n) => n,
            },
        };
        Poll::Ready(match next {
            Some(Ok(b)) => {
                this.entry.rows += b.num_rows() as u64;
                Some(Ok(b))
            }
            Some(Err(e)) => {
                let e = QueryError::from_engine(e, this.memory_limit);
                this.entry.close(Some(e.to_string()));
                Some(Err(e))
            }
            None => {
                this.entry.ended = true;
                None
            }
        })
    }
}

/// A stream of just `batch` (an answer already read from a cache).
fn single(batch: RecordBatch) -> (SendableRecordBatchStream, Option<RecordBatch>) {
    let stream = Box::pin(RecordBatchStreamAdapter::new(
        batch.schema(),
        futures::stream::empty(),
    ));
    (stream, Some(batch))
}

/// Plans and starts `query`, logging it. `answered` is its answer when a shard already read it
/// from a cache. Must run on the coordinator's runtime.
pub(super) async fn start(
    shared: &Shared,
    query: &Query,
    answered: Option<RecordBatch>,
) -> Result<QueryStream, QueryError> {
    let snapshot = shared.catalog.snapshot();
    let Some(db) = snapshot.database(&query.database).cloned() else {
        return Err(QueryError::DatabaseNotFound(query.database.clone()));
    };
    let id = shared
        .log
        .start(&query.database, &query.text, query.params_text());
    let mut entry = LogEntry {
        log: shared.log.clone(),
        database: query.database.clone(),
        id,
        rows: 0,
        ended: false,
        closed: false,
    };
    let memory_limit = shared.memory_limit;
    let engine = |e| QueryError::from_engine(e, memory_limit);
    let planned = async {
        if let Some(batch) = answered {
            return Ok(single(batch));
        }
        if query.language == Language::InfluxQl {
            let ctx = session(shared, db.clone());
            let token = query.token.clone();
            let granted = move |name: &str| crate::auth::shows_database(token.as_deref(), name);
            let batch = super::influxql::run(
                &ctx,
                &snapshot,
                &db,
                &query.text,
                query.params.as_ref(),
                crate::now_ns(),
                &granted,
            )
            .await
            .map_err(|e| QueryError::from_influxql(e, memory_limit))?;
            return Ok(single(batch));
        }
        let looked_up = direct::answer(
            &query.text,
            query.params.as_ref(),
            &db,
            &shared.shards,
            OFF_SHARD,
        )
        .await;
        if let Some(answer) = looked_up {
            return Ok(single(answer.map_err(engine)?));
        }
        let ctx = session(shared, db);
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let mut df = ctx
            .sql_with_options(&query.text, options)
            .await
            .map_err(engine)?;
        if let Some(p) = &query.params {
            df = df.with_param_values(param_values(p)?).map_err(engine)?;
        }
        let mut stream = df.execute_stream().await.map_err(engine)?;
        // The first batch runs most of a query; an error there still gets a status code.
        let first = stream.next().await.transpose().map_err(engine)?;
        Ok::<_, QueryError>((stream, first))
    };
    match planned.await {
        Ok((rest, first)) => Ok(QueryStream {
            schema: rest.schema(),
            first,
            rest,
            memory_limit,
            entry,
        }),
        Err(e) => {
            if e.is_ours() {
                tracing::error!(database = %query.database, query = %query.text, error = %e, "query failed");
            }
            entry.close(Some(e.to_string()));
            Err(e)
        }
    }
}
