//! The one thread that changes the catalog, and start-up's recovery of its state.
//!
//! A change goes: applied to the state (refused with nothing moved if it does not apply) →
//! the tables it touched rebuilt, which checks the resulting state (a change that would leave
//! a state start-up refuses is undone and reported as our bug) → one log record for the whole
//! group of changes that queued meanwhile, appended and fsynced → the new snapshot published
//! → each caller answered. A failed append undoes the group in memory and cuts the segment
//! back to its last whole record, so a refused change is neither visible nor replayed.
//!
//! Every `checkpoint_records` records (or once the segment passes `checkpoint_bytes`) the
//! writer starts a new segment and hands a copy of the state (cheap: shared entries) to the
//! checkpointer thread, which replaces the checkpoint and then deletes the segments it
//! covers. The writer never waits for it; a failed checkpoint leaves the log to replay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use shardline_shards::schema::CatalogSnapshot;

use super::changes::Change;
use super::log::{self, Record};
use super::model::{PCatalog, Touched};
use super::snapshot;
use super::store::{CatalogStore, SegmentFile};
use super::{Catalog, CatalogError, CatalogLimits, CatalogOptions};

/// Requests taken into one group commit at most: bounds the work (and the record) of one
/// turn, so callers queued behind a large group wait for one fsync, not for an unbounded one.
const MAX_GROUP: usize = 512;

/// Bytes of changes one record holds at most by default ([`CatalogOptions::record_bytes`]);
/// the rest of a group waits for the next record. Well under [`log::MAX_RECORD_BYTES`],
/// which reading a log trusts.
pub(super) const RECORD_BUDGET: usize = log::MAX_RECORD_BYTES / 4;

pub(super) type Reply = flume::Sender<Result<Arc<CatalogSnapshot>, CatalogError>>;

pub(super) struct Request {
    pub(super) change: Change,
    pub(super) reply: Reply,
}

/// The state found on disk, and where the log goes on.
pub(super) struct Recovered {
    pub(super) state: PCatalog,
    pub(super) snapshot: CatalogSnapshot,
    /// The last record's sequence number (the checkpoint's when no record follows it).
    seq: u64,
    /// The record the checkpoint covers up to.
    checkpoint_seq: u64,
    segment: Box<dyn SegmentFile>,
    segment_len: u64,
}

fn corrupt(store: &dyn CatalogStore, reason: String) -> CatalogError {
    CatalogError::Corrupt {
        path: store.location().to_path_buf(),
        reason,
    }
}

fn io_error(store: &dyn CatalogStore, source: std::io::Error) -> CatalogError {
    CatalogError::Persist {
        path: store.location().to_path_buf(),
        source,
    }
}

impl Recovered {
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }
}

/// Reads the checkpoint (or `legacy`, the single-file catalog of earlier versions, or
/// nothing) and replays the log after it. A torn last record (a crash mid-append) is cut off
/// with a warning; anything else that does not read stops start-up.
pub(super) fn recover(
    store: &dyn CatalogStore,
    legacy: Option<PCatalog>,
) -> Result<Recovered, CatalogError> {
    store.prepare().map_err(|e| io_error(store, e))?;
    let read_err = |source| CatalogError::Read {
        path: store.location().to_path_buf(),
        source,
    };
    let (mut state, checkpoint_seq) = match store.read_checkpoint().map_err(read_err)? {
        Some(bytes) => {
            let (seq, json) = log::decode_checkpoint(&bytes)
                .map_err(|r| corrupt(store, format!("checkpoint: {r}")))?;
            let state: PCatalog = serde_json::from_slice(json)
                .map_err(|e| corrupt(store, format!("checkpoint: invalid JSON: {e}")))?;
            (state, seq)
        }
        None => (legacy.unwrap_or_default(), 0),
    };
    state
        .reindex()
        .map_err(|r| corrupt(store, format!("checkpoint: {r}")))?;
    // Replay as the changes were first applied: the limits in force then let them in.
    let limits = state.limits;
    state.limits = CatalogLimits::unlimited();

    // Read every segment first: whether a damaged one is the last that matters depends on
    // what follows it, and empty segments left by a failed rotation do not count.
    let mut segments = Vec::new();
    for first in store.segments().map_err(read_err)? {
        segments.push((first, store.read_segment(first).map_err(read_err)?));
    }
    let mut seq = checkpoint_seq;
    let mut last: Option<(u64, u64)> = None;
    let mut kept = Vec::new();
    for (i, (first, bytes)) in segments.iter().enumerate() {
        let first = *first;
        let is_last = segments[i + 1..].iter().all(|(_, b)| b.is_empty());
        if bytes.is_empty() && first != seq + 1 {
            // Left by a new segment whose creation failed half-way; the writer went on in
            // the one before.
            if let Err(e) = store.remove_segment(first) {
                tracing::warn!(error = %e, "could not remove an empty, unused catalog log segment");
            }
            continue;
        }
        kept.push(first);
        if first > seq + 1 {
            return Err(corrupt(
                store,
                format!(
                    "{} starts at record {first} but the records before it end at {seq}",
                    super::store::segment_name(first)
                ),
            ));
        }
        let seg = log::decode_segment(bytes)
            .map_err(|r| corrupt(store, format!("{}: {r}", super::store::segment_name(first))))?;
        for (k, rec) in seg.records.iter().enumerate() {
            let expected = first + k as u64;
            if rec.seq != expected {
                return Err(corrupt(
                    store,
                    format!(
                        "{} holds record {} where {expected} belongs",
                        super::store::segment_name(first),
                        rec.seq
                    ),
                ));
            }
            if rec.seq <= seq {
                continue; // In the checkpoint already.
            }
            for change in &rec.changes {
                state.apply(change, rec.at_ns).map_err(|e| {
                    corrupt(
                        store,
                        format!(
                            "record {} does not apply again ({e}); this is a bug",
                            rec.seq
                        ),
                    )
                })?;
            }
            seq = rec.seq;
        }
        if let Some(t) = &seg.torn {
            if !is_last {
                return Err(corrupt(
                    store,
                    format!(
                        "{} is damaged at byte {} ({}) and later segments follow it",
                        super::store::segment_name(first),
                        t.valid_len,
                        t.reason
                    ),
                ));
            }
            tracing::warn!(
                segment = %store.location().join(super::store::segment_name(first)).display(),
                valid_bytes = t.valid_len,
                dropped_bytes = bytes.len() as u64 - t.valid_len,
                reason = %t.reason,
                "the catalog log ends in a torn record (a crash while it was written, before it was acknowledged); cutting it off"
            );
            // The log goes on here, after the cut: the empty segments after it were left by
            // rotations that failed, and writing into one of them would put records after
            // the torn tail.
            for (later, _) in &segments[i + 1..] {
                if let Err(e) = store.remove_segment(*later) {
                    tracing::warn!(error = %e, "could not remove an empty, unused catalog log segment");
                }
            }
            last = Some((first, seg.valid_len));
            break;
        }
        last = Some((first, seg.valid_len));
    }
    state.limits = limits;
    let snapshot = snapshot::full(&state).map_err(|r| corrupt(store, r))?;

    // Segments wholly inside the checkpoint are left over from a checkpoint that was
    // installed but not cleaned up after.
    for pair in kept.windows(2) {
        if pair[1] <= checkpoint_seq + 1 {
            if let Err(e) = store.remove_segment(pair[0]) {
                tracing::warn!(error = %e, "could not remove a catalog log segment the checkpoint covers");
            }
        }
    }
    let (first, len) = last.unwrap_or((seq + 1, 0));
    let segment = store
        .open_segment(first, len)
        .map_err(|e| io_error(store, e))?;
    Ok(Recovered {
        state,
        snapshot,
        seq,
        checkpoint_seq,
        segment,
        segment_len: len,
    })
}

struct Checkpoint {
    state: PCatalog,
    seq: u64,
}

struct Writer {
    state: PCatalog,
    store: Arc<dyn CatalogStore>,
    seq: u64,
    segment: Box<dyn SegmentFile>,
    segment_len: u64,
    /// Set after an append failed and cutting the segment back failed too: the length to cut
    /// back to before anything else is appended.
    repair_to: Option<u64>,
    options: CatalogOptions,
    /// The record the last checkpoint was started after.
    checkpoint_started: u64,
    checkpointer: flume::Sender<Checkpoint>,
    checkpointing: Arc<AtomicBool>,
    catalog: Weak<Catalog>,
}

/// Starts the writer on its own thread; it runs until every sender of `rx` is gone.
pub(super) fn spawn(
    recovered: Recovered,
    store: Arc<dyn CatalogStore>,
    options: CatalogOptions,
    rx: flume::Receiver<Request>,
    catalog: Weak<Catalog>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (ckpt_tx, ckpt_rx) = flume::bounded::<Checkpoint>(1);
    let checkpointing = Arc::new(AtomicBool::new(false));
    let writer = Writer {
        state: recovered.state,
        store: store.clone(),
        seq: recovered.seq,
        segment: recovered.segment,
        segment_len: recovered.segment_len,
        repair_to: None,
        options,
        checkpoint_started: recovered.checkpoint_seq,
        checkpointer: ckpt_tx,
        checkpointing: checkpointing.clone(),
        catalog,
    };
    let ckpt = std::thread::Builder::new()
        .name("catalog-checkpoint".into())
        .spawn(move || checkpoint_loop(store, ckpt_rx, checkpointing))?;
    std::thread::Builder::new()
        .name("catalog-writer".into())
        .spawn(move || {
            writer.run(rx);
            // The writer's sender is gone with it: the checkpointer finishes its job and stops.
            let _ = ckpt.join();
        })
}

enum Outcome {
    Refused(CatalogError),
    /// Applied, or already in effect: answered once the group is durable.
    Accepted,
}

impl Writer {
    fn run(mut self, rx: flume::Receiver<Request>) {
        let mut carried: Vec<Request> = Vec::new();
        loop {
            let mut group = std::mem::take(&mut carried);
            if group.is_empty() {
                match rx.recv() {
                    Ok(first) => group.push(first),
                    Err(_) => break,
                }
            }
            let room = MAX_GROUP.saturating_sub(group.len());
            group.extend(rx.try_iter().take(room));
            carried = self.commit(group);
        }
    }

    /// Commits a group as one record; returns the requests left for the next group (those
    /// past the record's byte budget).
    fn commit(&mut self, mut group: Vec<Request>) -> Vec<Request> {
        let before = self.state.clone();
        let now = crate::now_ns();
        let mut applied = Vec::new();
        let mut applied_bytes = 0usize;
        let mut touched = Touched::default();
        let mut built = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(group.len());
        let mut carried = Vec::new();
        for (i, r) in group.iter().enumerate() {
            let bytes = log::encoded_len(&r.change);
            let budget = self.options.record_bytes.min(RECORD_BUDGET);
            if bytes > budget {
                outcomes.push(Outcome::Refused(CatalogError::ChangeTooLarge {
                    bytes,
                    limit: budget,
                }));
                continue;
            }
            if applied_bytes + bytes > budget {
                carried = group.split_off(i);
                break;
            }
            let undo = self.state.clone();
            let outcome = match self.state.apply(&r.change, now) {
                Err(e) => {
                    // Refusals change nothing, but restoring costs nothing either and keeps a
                    // change that forgot to check first out of the state.
                    self.state = undo;
                    Outcome::Refused(e)
                }
                Ok(t) if t.is_empty() => Outcome::Accepted,
                Ok(t) => match snapshot::touched_tables(&self.state, &t) {
                    Ok(b) => {
                        applied.push(r.change.clone());
                        applied_bytes += bytes;
                        touched.merge(t);
                        built.extend(b);
                        Outcome::Accepted
                    }
                    Err(reason) => {
                        self.state = undo;
                        tracing::error!(change = ?r.change, %reason, "a catalog change would leave an invalid state; refused (this is a bug)");
                        Outcome::Refused(CatalogError::Internal(format!(
                            "the change would leave the catalog invalid ({reason}); this is a bug"
                        )))
                    }
                },
            };
            outcomes.push(outcome);
        }
        let durable = if applied.is_empty() {
            Ok(())
        } else {
            let record = Record {
                seq: self.seq + 1,
                at_ns: now,
                changes: applied,
            };
            self.append(&log::encode(&record))
        };
        let committed = durable.is_ok() && !touched.is_empty();
        let published = match durable {
            Ok(()) => {
                if !touched.is_empty() {
                    self.seq += 1;
                }
                self.publish(&touched, built)
            }
            Err(e) => {
                tracing::error!(path = %self.store.location().display(), error = %e, "appending to the catalog log failed; the changes are not applied");
                self.state = before;
                Err(e.to_string())
            }
        };
        for (r, outcome) in group.into_iter().zip(outcomes) {
            let reply = match (outcome, &published) {
                (Outcome::Refused(e), _) => Err(e),
                (Outcome::Accepted, Ok(snap)) => Ok(snap.clone()),
                (Outcome::Accepted, Err(msg)) => Err(CatalogError::Persist {
                    path: self.store.location().to_path_buf(),
                    source: std::io::Error::other(msg.clone()),
                }),
            };
            let _ = r.reply.send(reply);
        }
        if committed {
            self.maybe_checkpoint();
        }
        carried
    }

    /// Appends one record durably, or leaves the segment as it was.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(len) = self.repair_to {
            self.segment.truncate(len)?;
            self.repair_to = None;
        }
        match self.segment.append(bytes) {
            Ok(()) => {
                self.segment_len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Part of the record (or all of it, unsynced) may be in the file: cut it off
                // so that no later record follows it and a restart does not replay it.
                let cut = self
                    .segment
                    .truncate(self.segment_len)
                    .or_else(|_| self.segment.truncate(self.segment_len));
                match cut {
                    Ok(()) => Err(e),
                    Err(cut) => {
                        tracing::error!(error = %cut, "cutting the catalog log back after a failed append failed; retrying before the next append");
                        self.repair_to = Some(self.segment_len);
                        Err(std::io::Error::other(format!(
                            "{e}; the log could not be cut back either ({cut}), so the change may reappear after a restart"
                        )))
                    }
                }
            }
        }
    }

    fn publish(
        &mut self,
        touched: &Touched,
        built: Vec<(u32, Arc<shardline_shards::schema::TableSchema>)>,
    ) -> Result<Arc<CatalogSnapshot>, String> {
        let Some(catalog) = self.catalog.upgrade() else {
            return Err("the catalog is shutting down".into());
        };
        if touched.is_empty() {
            return Ok(catalog.current.load_full());
        }
        let snap = Arc::new(snapshot::patch(
            &catalog.current.load(),
            &self.state,
            touched,
            built,
        ));
        if touched.tokens {
            catalog
                .tokens
                .store(Arc::new(self.state.tokens.token_set()));
        }
        catalog.current.store(snap.clone());
        Ok(snap)
    }

    fn maybe_checkpoint(&mut self) {
        let due = self.seq - self.checkpoint_started >= self.options.checkpoint_records
            || self.segment_len >= self.options.checkpoint_bytes;
        if !due || self.checkpointing.load(Ordering::Acquire) {
            return;
        }
        // The records so far stay in the old segments; the checkpoint will cover them.
        let next = match self.store.open_segment(self.seq + 1, 0) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not start a new catalog log segment; checkpoint postponed");
                // Recovery skips an empty segment left here too; removing it keeps things tidy.
                let _ = self.store.remove_segment(self.seq + 1);
                self.checkpoint_started = self.seq;
                return;
            }
        };
        self.segment = next;
        self.segment_len = 0;
        self.repair_to = None;
        self.checkpoint_started = self.seq;
        self.checkpointing.store(true, Ordering::Release);
        let job = Checkpoint {
            state: self.state.clone(),
            seq: self.seq,
        };
        if self.checkpointer.try_send(job).is_err() {
            self.checkpointing.store(false, Ordering::Release);
        }
    }
}

fn checkpoint_loop(
    store: Arc<dyn CatalogStore>,
    rx: flume::Receiver<Checkpoint>,
    busy: Arc<AtomicBool>,
) {
    while let Ok(job) = rx.recv() {
        if let Err(e) = write_checkpoint(&*store, &job) {
            tracing::error!(path = %store.location().display(), error = %e, "writing a catalog checkpoint failed; the log is kept and replayed instead");
        }
        busy.store(false, Ordering::Release);
    }
}

/// Replaces the checkpoint with `job`'s state, then removes the segments it makes redundant:
/// those followed by a segment that starts at or before the record after the checkpoint.
fn write_checkpoint(store: &dyn CatalogStore, job: &Checkpoint) -> std::io::Result<()> {
    let json = serde_json::to_vec(&job.state).map_err(std::io::Error::other)?;
    store.write_checkpoint(&log::encode_checkpoint(job.seq, &json))?;
    let segments = store.segments()?;
    for pair in segments.windows(2) {
        if pair[1] <= job.seq + 1 {
            store.remove_segment(pair[0])?;
        }
    }
    Ok(())
}
