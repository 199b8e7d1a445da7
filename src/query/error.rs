//! Why a query failed, split by who must act: the user (a query or parameter the engine
//! cannot run: 400 with the planner's message), resources (the memory limit: 503 naming the
//! flag to raise; a shard stopping: 503), or us (500, saying it is a bug or that stored data
//! could not be read, and logged with the query).
//!
//! Invariants: the split looks at the innermost DataFusion error, so wrapping an error in
//! context (as DataFusion does on the way up) never changes its status; anything not known to
//! be the user's doing is ours.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

use super::shards::ShardStopped;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    /// The query cannot run as written: the message is the planner's.
    #[error("{0}")]
    Invalid(DataFusionError),
    #[error("invalid params: {0}")]
    Params(String),
    /// The query needed more memory than the limit leaves it.
    #[error("the query needs more memory than --query-memory-limit ({limit_bytes} bytes, shared by all running queries) leaves it; raise the flag, or narrow the query (time range, columns, GROUP BY): {source}")]
    MemoryLimit {
        limit_bytes: usize,
        source: DataFusionError,
    },
    /// A shard is stopping (the server shuts down): the query was fine, ask again later.
    #[error("the server is shutting down: {0}")]
    Stopping(DataFusionError),
    /// Stored data could not be read (disk or object store).
    #[error("reading stored data failed: {0}")]
    Storage(DataFusionError),
    /// An InfluxQL statement that cannot run as written (400), or is parsed but not run by
    /// this server yet (501); the message is 1.x's where it has one.
    #[error("{message}")]
    InfluxQl { status: u16, message: String },
    /// Our bug.
    #[error("the query failed inside the engine; this is a bug: {0}")]
    Internal(String),
}

impl QueryError {
    /// Sorts an engine error by who must act. `memory_limit` is `--query-memory-limit`, for
    /// the message.
    pub fn from_engine(e: DataFusionError, memory_limit: usize) -> Self {
        match Cause::of(&e) {
            Cause::User => QueryError::Invalid(e),
            Cause::Memory => QueryError::MemoryLimit {
                limit_bytes: memory_limit,
                source: e,
            },
            Cause::Stopping => QueryError::Stopping(e),
            Cause::Storage => QueryError::Storage(e),
            Cause::Bug => QueryError::Internal(e.to_string()),
        }
    }

    /// Sorts an InfluxQL planner error by who must act.
    pub fn from_influxql(e: super::influxql::InfluxQlError, memory_limit: usize) -> Self {
        use super::influxql::InfluxQlError as E;
        match e {
            E::Engine(e) => QueryError::from_engine(e, memory_limit),
            E::NotYet(message) => QueryError::InfluxQl {
                status: 501,
                message,
            },
            E::TooLarge(message) => QueryError::InfluxQl {
                status: 503,
                message,
            },
            e @ (E::Parse(_) | E::Invalid(_)) => QueryError::InfluxQl {
                status: 400,
                message: e.to_string(),
            },
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            QueryError::InfluxQl { status, .. } => *status,
            QueryError::DatabaseNotFound(_) => 404,
            QueryError::Invalid(_) | QueryError::Params(_) => 400,
            QueryError::MemoryLimit { .. } | QueryError::Stopping(_) => 503,
            QueryError::Storage(_) | QueryError::Internal(_) => 500,
        }
    }

    /// Whether the server, not the query, is at fault (logged as an error).
    pub fn is_ours(&self) -> bool {
        matches!(self, QueryError::Storage(_) | QueryError::Internal(_))
    }
}

impl From<ArrowError> for QueryError {
    /// An encoding failure: the result was computed, writing it out failed.
    fn from(e: ArrowError) -> Self {
        QueryError::Internal(format!("encoding the result failed: {e}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    User,
    Memory,
    Stopping,
    Storage,
    Bug,
}

impl Cause {
    fn of(e: &DataFusionError) -> Cause {
        if caused_by_stopping_shard(e) {
            return Cause::Stopping;
        }
        if caused_by_storage(e) {
            return Cause::Storage;
        }
        match e.find_root() {
            DataFusionError::Plan(_)
            | DataFusionError::SQL(..)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_)
            | DataFusionError::Execution(_) => Cause::User,
            DataFusionError::ResourcesExhausted(_) => Cause::Memory,
            DataFusionError::ArrowError(a, _) => match **a {
                // Casts, arithmetic and parsing of values the query asked for.
                ArrowError::CastError(_)
                | ArrowError::ComputeError(_)
                | ArrowError::DivideByZero
                | ArrowError::ArithmeticOverflow(_)
                | ArrowError::ParseError(_)
                | ArrowError::InvalidArgumentError(_) => Cause::User,
                ArrowError::MemoryError(_) => Cause::Memory,
                ArrowError::IoError(..) => Cause::Storage,
                _ => Cause::Bug,
            },
            DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => Cause::Storage,
            _ => Cause::Bug,
        }
    }
}

/// Whether reading files failed somewhere in the error's chain of causes (our table providers
/// wrap Parquet and object store errors as external errors, which `find_root` stops at).
fn caused_by_storage(e: &DataFusionError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<parquet::errors::ParquetError>()
            || c.is::<object_store::Error>()
            || c.is::<std::io::Error>()
        {
            return true;
        }
        cause = c.source();
    }
    false
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: DataFusionError) -> u16 {
        QueryError::from_engine(e, 1 << 30).status()
    }

    #[test]
    fn statuses_follow_who_must_act_through_any_wrapping() {
        let stopped = DataFusionError::External(Box::new(ShardStopped(1)));
        assert_eq!(status(stopped), 503);
        let wrapped =
            DataFusionError::External(Box::new(ShardStopped(0))).context("while scanning");
        assert_eq!(status(wrapped), 503);
        assert_eq!(status(DataFusionError::Plan("no such column".into())), 400);
        assert_eq!(
            status(DataFusionError::Plan("no such column".into()).context("planning")),
            400
        );
        let memory = DataFusionError::ResourcesExhausted("sort needs 10 MB".into());
        let e = QueryError::from_engine(memory.context("sorting"), 4096);
        assert_eq!(e.status(), 503);
        assert!(
            e.to_string().contains("--query-memory-limit (4096 bytes"),
            "{e}"
        );
        let bug = DataFusionError::Internal("unexpected plan".into());
        let e = QueryError::from_engine(bug, 1);
        assert_eq!(e.status(), 500);
        assert!(e.to_string().contains("this is a bug"), "{e}");
        assert!(e.is_ours());
        let io = DataFusionError::IoError(std::io::Error::other("disk"));
        assert_eq!(status(io), 500);
        let missing = object_store::Error::NotFound {
            path: "a.parquet".into(),
            source: "gone".into(),
        };
        let e = QueryError::from_engine(DataFusionError::External(Box::new(missing)), 1);
        assert!(matches!(e, QueryError::Storage(_)), "{e:?}");
        let cast = DataFusionError::ArrowError(
            Box::new(ArrowError::CastError("'x' is not a number".into())),
            None,
        );
        assert_eq!(status(cast), 400);
        assert_eq!(QueryError::DatabaseNotFound("x".into()).status(), 404);
        assert_eq!(QueryError::Params("bad".into()).status(), 400);
    }
}
