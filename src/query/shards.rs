//! How the query engine reaches the shards: one channel per shard carrying snapshot jobs.
//!
//! The shard answers on its own thread between other tasks; it never waits on the engine.
//! Invariant: a job is always answered (a shard without the table answers an empty
//! snapshot) unless the shard has stopped, which the engine sees as an error.

use std::sync::Arc;

use datafusion::error::DataFusionError;
use futures::channel::oneshot;
use shardline_shards::buffer::snapshot::{SnapshotRequest, TableSnapshot};
use shardline_shards::buffer::ShardBuffer;

/// A shard could not answer: it is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("shard {0} is shutting down")]
pub struct ShardStopped(pub usize);

/// A request for one table's snapshot.
#[derive(Debug)]
pub struct SnapshotJob {
    pub database_id: u32,
    pub table_id: u32,
    pub request: SnapshotRequest,
    pub reply: oneshot::Sender<TableSnapshot>,
}

impl SnapshotJob {
    /// Answers the job from a shard's buffer.
    pub fn answer(self, buffer: &ShardBuffer) {
        let snapshot = match buffer.table(self.database_id, self.table_id) {
            Some(t) => t.snapshot(&self.request),
            None => TableSnapshot::empty(self.request.tags.len()),
        };
        let _ = self.reply.send(snapshot);
    }
}

/// The engine's end of every shard's snapshot channel.
#[derive(Debug, Clone)]
pub struct ShardHandles(Arc<[flume::Sender<SnapshotJob>]>);

impl ShardHandles {
    /// Handles for `n` shards, and each shard's receiving end.
    pub fn new(n: usize) -> (Self, Vec<flume::Receiver<SnapshotJob>>) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| flume::unbounded()).unzip();
        (ShardHandles(txs.into()), rxs)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A snapshot of one table from shard `shard`.
    pub async fn snapshot(
        &self,
        shard: usize,
        database_id: u32,
        table_id: u32,
        request: SnapshotRequest,
    ) -> Result<TableSnapshot, DataFusionError> {
        let stopped = || DataFusionError::External(Box::new(ShardStopped(shard)));
        let (tx, rx) = oneshot::channel();
        let job = SnapshotJob {
            database_id,
            table_id,
            request,
            reply: tx,
        };
        self.0[shard].send(job).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }
}
