//! How the query engine reaches the shards: one channel per shard carrying jobs.
//!
//! The shard answers on its own thread between other tasks; it never waits on the engine.
//! Invariants:
//! - A job is always answered (a shard without the table answers no sources) unless the
//!   shard has stopped, which the engine sees as an error.
//! - A table answer is taken in one step: the shard's buffers (frozen and active) and the
//!   Parquet files of its manifests, so every row is in exactly one of them.
//! - When any two of the answer's sources may hold the same point (overlapping time ranges
//!   and possibly the same series), or the engine asks for it, every buffer snapshot carries
//!   all of the table's tags, which merging needs to identify points.
//! - Each shard's channel holds at most [`SHARD_JOB_QUEUE_CAPACITY`] jobs; a sender finding it
//!   full waits (asynchronously: on a coordinator task, or on a shard's request task for a
//!   cache lookup). That cannot deadlock: a shard answers each job in one step, waiting on
//!   nothing (no channel, no other shard), so every channel keeps draining while its shard's
//!   executor runs — even when the waiting sender is a task of that same shard.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use futures::channel::oneshot;
use shardline_shards::buffer::snapshot::{SnapshotRequest, TableSnapshot};
use shardline_shards::cache::{CacheError, KeyFilter, ShardCaches};
use shardline_shards::schema::TableSchema;

use crate::catalog::CacheKind;
use shardline_shards::buffer::ShardBuffer;
use shardline_shards::persist::{Manifest, ParquetFile, Tombstone};

/// Why a deletion was not recorded everywhere. Shards that did record it keep it: the
/// deletion is then in effect on some shards only until it is repeated.
#[derive(Debug, thiserror::Error)]
pub enum DeleteFailed {
    #[error("shard {0} is shutting down")]
    Stopped(usize),
    #[error("shard {shard} could not record the deletion: {reason}")]
    Shard { shard: usize, reason: String },
}

/// A shard could not answer: it is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("shard {0} is shutting down")]
pub struct ShardStopped(pub usize);

/// What a shard holds, as a job sees it.
#[derive(Debug)]
pub struct ShardView<'a> {
    pub shard: usize,
    pub shard_count: usize,
    /// Being persisted: older than `active`.
    pub frozen: Option<&'a ShardBuffer>,
    pub active: &'a ShardBuffer,
    /// This shard's manifest and those it adopted from an earlier, larger shard count.
    pub manifests: Vec<&'a Manifest>,
}

/// A request for one table's sources.
#[derive(Debug)]
pub struct SnapshotJob {
    pub database_id: u32,
    pub table_id: u32,
    pub request: SnapshotRequest,
    /// The table's tags not in `request.tags` (snapshots that may need merging carry them
    /// after the requested ones).
    pub other_tags: Vec<u32>,
    /// Carry all tags even without an overlap inside this shard.
    pub force_all_tags: bool,
    pub reply: oneshot::Sender<ShardTableSnapshot>,
}

/// A Parquet file to read, and the deletions its rows are read through (usually none).
#[derive(Debug, Clone)]
pub struct FileSource {
    pub file: ParquetFile,
    pub deletes: Arc<[Tombstone]>,
}

/// One shard's sources of one table, oldest first within each kind.
#[derive(Debug, Clone)]
pub struct ShardTableSnapshot {
    pub shard: usize,
    pub shard_count: usize,
    /// Parquet files overlapping the requested time range, by (epoch, id).
    pub files: Vec<FileSource>,
    /// Frozen buffer (if it has the table), then the active buffer (if it has it).
    pub buffers: Vec<TableSnapshot>,
    /// Whether the buffer snapshots carry every tag (requested ones first).
    pub all_tags: bool,
}

/// The time span of a source and the layout it belongs to, for overlap checks.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub min: i64,
    pub max: i64,
    pub shard_count: u32,
    pub shard_index: u32,
}

impl Span {
    /// Whether two sources may hold the same point.
    pub fn may_overlap(&self, o: &Span) -> bool {
        (self.shard_count != o.shard_count || self.shard_index == o.shard_index)
            && self.min <= o.max
            && o.min <= self.max
    }

    pub fn of_file(f: &ParquetFile, lo: i64, hi: i64) -> Span {
        Span {
            min: f.min_time.max(lo),
            max: f.max_time.min(hi),
            shard_count: f.shard_count,
            shard_index: f.shard_index,
        }
    }

    pub fn of_buffer(
        s: &TableSnapshot,
        shard: usize,
        count: usize,
        lo: i64,
        hi: i64,
    ) -> Option<Span> {
        let min = s.chunks.iter().map(|c| c.time_min).min()?;
        let max = s.chunks.iter().map(|c| c.time_max).max()?;
        Some(Span {
            min: min.max(lo),
            max: max.min(hi),
            shard_count: count as u32,
            shard_index: shard as u32,
        })
    }
}

/// Groups of sources that may share points (connected components of `may_overlap`), each
/// sorted; sources alone in their group need no merging.
pub fn overlap_groups(spans: &[Span]) -> Vec<Vec<usize>> {
    let n = spans.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut by_min: Vec<usize> = (0..n).collect();
    by_min.sort_by_key(|&i| spans[i].min);
    // Sweep by start time: only sources still open when another starts can overlap it.
    let mut open: Vec<usize> = Vec::new();
    for &i in &by_min {
        open.retain(|&j| spans[j].max >= spans[i].min);
        for &j in &open {
            if spans[i].may_overlap(&spans[j]) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
        open.push(i);
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups.into_values().collect()
}

impl SnapshotJob {
    /// Answers the job from a shard's holdings.
    pub fn answer(self, view: &ShardView<'_>) {
        let req = &self.request;
        // Shared by the files no deletion covers (nearly all): no allocation per file.
        let none: Arc<[Tombstone]> = Arc::from([]);
        let mut files: Vec<FileSource> = view
            .manifests
            .iter()
            .enumerate()
            .flat_map(|(k, m)| m.files.iter().map(move |f| (k, m, f)))
            .filter(|(_, _, f)| {
                f.database_id == self.database_id
                    && f.table_id == self.table_id
                    && f.overlaps(req.time_min, req.time_max)
            })
            .map(|(k, m, f)| {
                // A file answers to its own manifest's tombstones and, in an adopted
                // manifest, to this shard's too (the deletions it recorded since).
                let mut deletes = m.covering(f, true);
                if k > 0 {
                    deletes.extend(view.manifests[0].covering(f, false));
                }
                FileSource {
                    file: f.clone(),
                    deletes: if deletes.is_empty() {
                        none.clone()
                    } else {
                        deletes.into()
                    },
                }
            })
            .collect();
        files.sort_by_key(|f| f.file.order());
        let tables: Vec<_> = [view.frozen, Some(view.active)]
            .into_iter()
            .flatten()
            .filter_map(|b| b.table(self.database_id, self.table_id))
            .collect();
        let mut spans: Vec<Span> = files
            .iter()
            .map(|f| Span::of_file(&f.file, req.time_min, req.time_max))
            .collect();
        for t in &tables {
            if let Some((lo, hi)) = t.time_range() {
                if lo <= req.time_max && hi >= req.time_min {
                    spans.push(Span {
                        min: lo.max(req.time_min),
                        max: hi.min(req.time_max),
                        shard_count: view.shard_count as u32,
                        shard_index: view.shard as u32,
                    });
                }
            }
        }
        let overlap = overlap_groups(&spans).iter().any(|g| g.len() > 1);
        let all_tags = self.force_all_tags || overlap;
        let full;
        let request = if all_tags {
            let mut r = req.clone();
            r.tags.extend(&self.other_tags);
            full = r;
            &full
        } else {
            req
        };
        let buffers = tables.iter().map(|t| t.snapshot(request)).collect();
        let _ = self.reply.send(ShardTableSnapshot {
            shard: view.shard,
            shard_count: view.shard_count,
            files,
            buffers,
            all_tags,
        });
    }
}

/// Deletions for one shard to record: each shard gets the same tombstones and stamps them
/// with its own WAL position (see `shardline_shards::persist::tombstone`).
#[derive(Debug)]
pub struct DeleteJob {
    pub tombstones: Vec<Tombstone>,
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// A query of one cache's share on a shard.
#[derive(Debug)]
pub struct CacheJob {
    pub kind: CacheKind,
    pub database_id: u32,
    /// The table as the query saw it, so that every shard answers with the same columns.
    pub table: Arc<TableSchema>,
    pub cache_id: u64,
    pub filters: Vec<KeyFilter>,
    pub projection: Option<Vec<usize>>,
    pub now_ns: i64,
    pub reply: oneshot::Sender<Result<RecordBatch, CacheError>>,
}

impl CacheJob {
    /// Answers from the shard's caches (already synced with the catalog).
    pub fn answer(self, caches: &ShardCaches) {
        let (db, t, id) = (self.database_id, self.table.id, self.cache_id);
        let projection = self.projection.as_deref();
        let result = match self.kind {
            CacheKind::Last => caches
                .last_cache(db, t, id)
                .and_then(|c| c.query(&self.table, &self.filters, projection, self.now_ns)),
            CacheKind::Distinct => caches
                .distinct_cache(db, t, id)
                .and_then(|c| c.query(&self.table, &self.filters, projection, self.now_ns)),
        };
        let _ = self.reply.send(result);
    }
}

/// The shard a query is answered on. It answers its own part of a cache job in place: sent
/// through its job channel instead, the part would wait behind the shard's other runnable
/// tasks (a write's slices) once to be read and once more for the reply to be picked up.
pub trait HereShard {
    /// This shard's index.
    fn index(&self) -> usize;
    /// Answers `job` from this shard's caches before returning.
    fn answer_cache(&self, job: CacheJob);
}

/// The caller is on no shard (a coordinator thread). Uninhabited: only `None` of it exists,
/// and unlike a shard's context it is `Send`, as the query engine's futures must be.
#[derive(Debug)]
pub enum OffShard {}

impl HereShard for OffShard {
    fn index(&self) -> usize {
        match *self {}
    }
    fn answer_cache(&self, _: CacheJob) {
        match *self {}
    }
}

/// `here` for callers on no shard.
pub const OFF_SHARD: Option<&OffShard> = None;

/// Work for a shard.
#[derive(Debug)]
pub enum ShardJob {
    Snapshot(SnapshotJob),
    /// Answered by the shard itself, from its caches (see [`CacheJob::answer`]).
    Cache(CacheJob),
    /// A deletion to record: answered by the shard's snapshot task, once durable.
    Delete(DeleteJob),
    /// Every Parquet file of a database this shard lists.
    Files {
        database_id: u32,
        reply: oneshot::Sender<Vec<ParquetFile>>,
    },
}

impl ShardJob {
    pub fn answer(self, view: &ShardView<'_>) {
        match self {
            ShardJob::Snapshot(j) => j.answer(view),
            ShardJob::Files { database_id, reply } => {
                let files = view
                    .manifests
                    .iter()
                    .flat_map(|m| m.files.iter())
                    .filter(|f| f.database_id == database_id)
                    .cloned()
                    .collect();
                let _ = reply.send(files);
            }
            ShardJob::Cache(j) => {
                let id = j.cache_id;
                let _ = j.reply.send(Err(CacheError::NotFound(id)));
            }
            ShardJob::Delete(j) => {
                let _ = j.reply.send(Err(
                    "a deletion reached a shard view instead of its snapshot task (this is a bug)"
                        .into(),
                ));
            }
        }
    }
}

/// Jobs that may wait for one shard. A running query has at most one job per shard per table
/// it scans (and one per cache lookup) waiting at a time, and a shard answers a job in
/// microseconds to a few milliseconds; 256 is more than the coordinator's threads and the
/// shards' connections put in flight together at ordinary loads, so a sender waits only when
/// a shard really is behind — which then slows the queries down instead of growing the queue.
pub const SHARD_JOB_QUEUE_CAPACITY: usize = 256;

/// The engine's end of every shard's job channel.
#[derive(Debug, Clone)]
pub struct ShardHandles(Arc<[flume::Sender<ShardJob>]>);

impl ShardHandles {
    /// Handles for `n` shards, and each shard's receiving end.
    pub fn new(n: usize) -> (Self, Vec<flume::Receiver<ShardJob>>) {
        Self::with_capacity(n, SHARD_JOB_QUEUE_CAPACITY)
    }

    fn with_capacity(n: usize, capacity: usize) -> (Self, Vec<flume::Receiver<ShardJob>>) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| flume::bounded(capacity)).unzip();
        (ShardHandles(txs.into()), rxs)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One table's sources from shard `shard`.
    pub async fn snapshot(
        &self,
        shard: usize,
        database_id: u32,
        table_id: u32,
        request: SnapshotRequest,
        other_tags: Vec<u32>,
        force_all_tags: bool,
    ) -> Result<ShardTableSnapshot, DataFusionError> {
        let stopped = || DataFusionError::External(Box::new(ShardStopped(shard)));
        let (tx, rx) = oneshot::channel();
        let job = SnapshotJob {
            database_id,
            table_id,
            request,
            other_tags,
            force_all_tags,
            reply: tx,
        };
        self.0[shard]
            .send_async(ShardJob::Snapshot(job))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Every shard's share of a cache query, in shard order.
    /// Every shard's answer to the cache job `make` builds, in shard order. The part of
    /// `here` (the shard the caller runs on, if any) is answered in place, after the other
    /// shards have theirs to work on.
    pub async fn cache<H: HereShard>(
        &self,
        make: impl Fn(oneshot::Sender<Result<RecordBatch, CacheError>>) -> CacheJob,
        here: Option<&H>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        let mut pending = Vec::with_capacity(self.len());
        let mut local = None;
        for shard in 0..self.len() {
            let (tx, rx) = oneshot::channel();
            let job = make(tx);
            match here {
                Some(h) if h.index() == shard => local = Some((h, job)),
                _ => self.0[shard]
                    .send_async(ShardJob::Cache(job))
                    .await
                    .map_err(|_| DataFusionError::External(Box::new(ShardStopped(shard))))?,
            }
            pending.push((shard, rx));
        }
        if let Some((h, job)) = local {
            h.answer_cache(job);
        }
        let mut out = Vec::with_capacity(pending.len());
        for (shard, rx) in pending {
            let answer = rx
                .await
                .map_err(|_| DataFusionError::External(Box::new(ShardStopped(shard))))?;
            out.push(answer.map_err(|e| DataFusionError::External(Box::new(e)))?);
        }
        Ok(out)
    }

    /// Records `tombstones` on every shard: returns once each has them durable, from when on
    /// no query sees the rows they delete.
    pub async fn delete(&self, tombstones: Vec<Tombstone>) -> Result<(), DeleteFailed> {
        let mut pending = Vec::with_capacity(self.len());
        for shard in 0..self.len() {
            let (tx, rx) = oneshot::channel();
            let job = DeleteJob {
                tombstones: tombstones.clone(),
                reply: tx,
            };
            self.0[shard]
                .send_async(ShardJob::Delete(job))
                .await
                .map_err(|_| DeleteFailed::Stopped(shard))?;
            pending.push((shard, rx));
        }
        for (shard, rx) in pending {
            rx.await
                .map_err(|_| DeleteFailed::Stopped(shard))?
                .map_err(|reason| DeleteFailed::Shard { shard, reason })?;
        }
        Ok(())
    }

    /// Every Parquet file of a database, from all shards.
    pub async fn files(&self, database_id: u32) -> Result<Vec<ParquetFile>, DataFusionError> {
        let mut out = Vec::new();
        for shard in 0..self.len() {
            let (tx, rx) = oneshot::channel();
            let stopped = || DataFusionError::External(Box::new(ShardStopped(shard)));
            self.0[shard]
                .send_async(ShardJob::Files {
                    database_id,
                    reply: tx,
                })
                .await
                .map_err(|_| stopped())?;
            out.extend(rx.await.map_err(|_| stopped())?);
        }
        Ok(out)
    }
}

impl super::QueryPort {
    /// How full the coordinator's queues are, for `/metrics`.
    pub fn queue_sample(&self) -> crate::metrics::CoordinatorQueues {
        crate::metrics::CoordinatorQueues {
            query_queue_depth: self.requests.len() as u64,
            query_log_queue_depth: self.log.queue_depth() as u64,
            query_log_dropped: self.log.dropped(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(min: i64, max: i64, count: u32, index: u32) -> Span {
        Span {
            min,
            max,
            shard_count: count,
            shard_index: index,
        }
    }

    #[test]
    fn groups_join_only_sources_that_may_share_points() {
        let spans = [
            span(0, 10, 2, 0),  // 0
            span(10, 20, 2, 0), // 1: touches 0 at 10
            span(0, 20, 2, 1),  // 2: other shard of the same layout
            span(30, 40, 2, 1), // 3: alone
            span(15, 35, 3, 0), // 4: older layout, joins 1, 2 and 3
            span(50, 60, 2, 0), // 5
        ];
        let g = overlap_groups(&spans);
        assert_eq!(g, vec![vec![0, 1, 2, 3, 4], vec![5]]);
        let g = overlap_groups(&spans[..4]);
        assert_eq!(g, vec![vec![0, 1], vec![2], vec![3]]);
    }

    /// A shard that answers with one row holding its index, and counts its answers.
    struct Answering {
        index: usize,
        answered: std::cell::Cell<usize>,
    }

    fn answer_as(shard: usize, job: CacheJob) {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("shard", arrow::datatypes::DataType::UInt64, false),
        ]));
        let column = Arc::new(arrow::array::UInt64Array::from(vec![shard as u64]));
        let _ = job
            .reply
            .send(Ok(RecordBatch::try_new(schema, vec![column]).unwrap()));
    }

    impl HereShard for Answering {
        fn index(&self) -> usize {
            self.index
        }
        fn answer_cache(&self, job: CacheJob) {
            self.answered.set(self.answered.get() + 1);
            answer_as(self.index, job);
        }
    }

    /// Answers the next job on `rx` as shard `i`, on a thread of its own.
    fn serve_one(rx: &flume::Receiver<ShardJob>, i: usize) -> std::thread::JoinHandle<()> {
        let rx = rx.clone();
        std::thread::spawn(move || match rx.recv() {
            Ok(ShardJob::Cache(job)) => answer_as(i, job),
            other => panic!("shard {i} got {other:?}"),
        })
    }

    fn shard_column(batches: &[RecordBatch]) -> Vec<u64> {
        batches
            .iter()
            .map(|b| {
                let c = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::UInt64Array>();
                c.unwrap().value(0)
            })
            .collect()
    }

    #[test]
    fn the_callers_shard_answers_its_part_in_place_and_the_rest_through_their_channels() {
        let (handles, receivers) = ShardHandles::new(3);
        let table = Arc::new(TableSchema::new(0, Arc::from("cpu"), Vec::new()));
        let make = |reply| CacheJob {
            kind: CacheKind::Last,
            database_id: 0,
            table: table.clone(),
            cache_id: 7,
            filters: Vec::new(),
            projection: None,
            now_ns: 0,
            reply,
        };
        let here = Answering {
            index: 1,
            answered: Default::default(),
        };
        let peers = [serve_one(&receivers[0], 0), serve_one(&receivers[2], 2)];
        let batches = futures::executor::block_on(handles.cache(make, Some(&here)));
        peers.into_iter().for_each(|p| p.join().unwrap());
        assert_eq!(shard_column(&batches.expect("all answer")), [0, 1, 2]);
        assert_eq!(here.answered.get(), 1);
        assert!(
            receivers[1].is_empty(),
            "nothing was queued for the caller's shard"
        );

        // Off every shard, every part goes through its shard's channel.
        let all: Vec<_> = (0..3).map(|i| serve_one(&receivers[i], i)).collect();
        let batches = futures::executor::block_on(handles.cache(make, OFF_SHARD));
        all.into_iter().for_each(|p| p.join().unwrap());
        assert_eq!(shard_column(&batches.expect("all answer")), [0, 1, 2]);
    }

    #[test]
    fn a_full_job_channel_makes_the_sender_wait_and_loses_no_job() {
        use futures::FutureExt;
        let (handles, receivers) = ShardHandles::with_capacity(1, 2);
        let ask = || {
            let h = handles.clone();
            async move { h.files(0).await }
        };
        // Nobody answers yet: two jobs fill the channel, the third sender waits for room.
        let mut asks: Vec<_> = (0..3).map(|_| Box::pin(ask())).collect();
        for a in &mut asks {
            assert!(a.as_mut().now_or_never().is_none());
        }
        assert_eq!(receivers[0].len(), 2, "the channel stops at its bound");
        // The shard answers; every asker gets its answer, the waiting one included.
        let rx = receivers[0].clone();
        let shard = std::thread::spawn(move || {
            for _ in 0..3 {
                match rx.recv() {
                    Ok(ShardJob::Files { reply, .. }) => {
                        let _ = reply.send(Vec::new());
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        });
        for a in asks {
            assert!(futures::executor::block_on(a).expect("answered").is_empty());
        }
        shard.join().unwrap();
    }
}
