//! The per-shard write-ahead log: segment files of checksummed frames, group commit, replay.
//!
//! Invariants:
//! - A durable append resolves only after its bytes are written and `fdatasync` has returned;
//!   one write and one sync cover every append that arrived while the previous sync ran
//!   (group commit). Appends that do not ask for durability (`no_sync`) ride along with the
//!   next group, or are written at most `flush_interval` after they arrive.
//! - Segments are append-only and never reopened for writing: a new process starts a new
//!   segment (`<seq>.wal`, seq one past the highest present), so replay of old segments can
//!   truncate a torn tail without racing a writer.
//! - After a failed write or sync the log refuses further appends: the state of the file is
//!   unknown, and acknowledging anything more could lose it. A restart replays what is intact.
//! - A group is a run of whole frames of at most `max_group_bytes` (a single larger frame is a
//!   group of its own), and ends at the first rotation asked for: frames past either limit
//!   wait for the next group. Callers wait in [`Wal::room`] while the next group is full, so
//!   the bytes waiting to be written stay near two groups' worth however fast appends come.
//!
//! The log is generic over [`SegmentStore`] so tests can inject short writes, torn writes and
//! sync failures; the server uses [`DmaStore`] (O_DIRECT files through io_uring).

mod frame;
mod store;

pub use frame::{
    decode_batch, encode_batch, read_frames, FrameError, Tail, WalBatch, FRAME_HEADER_BYTES,
    MAX_FRAME_PAYLOAD_BYTES,
};
pub use store::{DmaStore, SegmentFile, SegmentStore, DMA_MEMORY_BYTES};

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;

/// Errors of the write-ahead log, phrased for an operator.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL write to segment {segment} failed: {source}")]
    Write {
        segment: u64,
        source: std::io::Error,
    },
    #[error("WAL fdatasync of segment {segment} failed: {source}")]
    Sync {
        segment: u64,
        source: std::io::Error,
    },
    #[error("WAL could not create segment {segment}: {source}")]
    Create {
        segment: u64,
        source: std::io::Error,
    },
    #[error("WAL is stopped after an earlier failure ({0}); restart the server to replay it")]
    Failed(String),
    #[error("WAL is shutting down")]
    Closed,
    #[error("reading WAL segment {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Tuning of one shard's log.
#[derive(Clone, Debug)]
pub struct WalConfig {
    /// A segment is closed and a new one started once it holds this many bytes.
    pub segment_bytes: u64,
    /// The longest a `no_sync` append waits before it is written.
    pub flush_interval: Duration,
    /// One group write carries at most this many bytes of frames (a single larger frame goes
    /// alone); more waits for the next group.
    pub max_group_bytes: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 64 << 20,
            flush_interval: Duration::from_millis(10),
            max_group_bytes: 16 << 20,
        }
    }
}

struct State<F> {
    /// Frames appended but not yet handed to a write.
    pending: Vec<u8>,
    /// Where `pending` starts in the log's byte stream (bytes appended since start-up, of
    /// which the first `base` have gone to writes). Positions below are in this stream, so
    /// cutting a group off the front of `pending` moves no bookkeeping.
    base: u64,
    /// The end of every frame in `pending`, in order: the places a group may be cut.
    frame_ends: VecDeque<u64>,
    /// The previous group's buffer, emptied, to become `pending` again (no regrowth).
    spare: Vec<u8>,
    /// Durable appends waiting for the sync that covers their frame, by the frame's end.
    waiters: VecDeque<(u64, oneshot::Sender<Result<(), String>>)>,
    /// Rotations waiting for the segment they close (see [`Wal::rotate`]), by the position
    /// they were asked for at: the group that reaches it ends there.
    rotations: VecDeque<(u64, oneshot::Sender<Result<u64, String>>)>,
    /// Callers of [`Wal::room`] waiting for the next group to have room.
    room_waiters: Vec<oneshot::Sender<()>>,
    file: Option<F>,
    segment: u64,
    /// Logical size of the current segment.
    file_len: u64,
    /// The bytes of the current segment's last, partly filled block (O_DIRECT writes whole
    /// blocks, so this block is written again, extended, by the next group).
    tail_block: Vec<u8>,
    failed: Option<String>,
    closed: bool,
}

impl<F> State<F> {
    /// The stream position of the end of `pending`.
    fn end(&self) -> u64 {
        self.base + self.pending.len() as u64
    }

    /// Where the next group ends: after the most whole frames that fit in `max_bytes` (at
    /// least one, so a frame larger than a group still goes), and no later than the first
    /// rotation waiting.
    fn group_end(&self, max_bytes: usize) -> u64 {
        let limit = self.base + max_bytes as u64;
        let fitting = self.frame_ends.partition_point(|&e| e <= limit);
        let by_size = match fitting {
            0 => self.frame_ends.front().copied().unwrap_or(self.base),
            n => self.frame_ends[n - 1],
        };
        match self.rotations.front() {
            Some(&(at, _)) => by_size.min(at),
            None => by_size,
        }
    }

    fn wake_room_waiters(&mut self) {
        for w in self.room_waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// One shard's write-ahead log. Single-threaded: it lives on its shard's executor.
pub struct Wal<S: SegmentStore> {
    store: S,
    config: WalConfig,
    state: RefCell<State<S::File>>,
    /// Wakes the committer; capacity 1, a full channel already means "wake".
    wake: glommio::channels::local_channel::LocalSender<()>,
    wake_rx: RefCell<Option<glommio::channels::local_channel::LocalReceiver<()>>>,
    stats_groups: Cell<u64>,
    /// Callers now waiting in [`Wal::room`].
    stats_room_waiting: Cell<usize>,
}

impl<S: SegmentStore> std::fmt::Debug for Wal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("Wal")
            .field("segment", &st.segment)
            .field("file_len", &st.file_len)
            .field("pending_bytes", &st.pending.len())
            .field("failed", &st.failed)
            .finish()
    }
}

impl<S: SegmentStore + 'static> Wal<S> {
    /// Opens a log that will write segments starting at `first_segment`.
    pub fn new(store: S, config: WalConfig, first_segment: u64) -> Rc<Self> {
        let (wake, wake_rx) = glommio::channels::local_channel::new_bounded(1);
        Rc::new(Wal {
            store,
            config,
            state: RefCell::new(State {
                pending: Vec::with_capacity(1 << 20),
                base: 0,
                frame_ends: VecDeque::new(),
                spare: Vec::with_capacity(1 << 20),
                waiters: VecDeque::new(),
                rotations: VecDeque::new(),
                room_waiters: Vec::new(),
                file: None,
                segment: first_segment,
                file_len: 0,
                tail_block: Vec::new(),
                failed: None,
                closed: false,
            }),
            wake,
            wake_rx: RefCell::new(Some(wake_rx)),
            stats_groups: Cell::new(0),
            stats_room_waiting: Cell::new(0),
        })
    }

    /// How many group writes the log has made.
    pub fn groups_committed(&self) -> u64 {
        self.stats_groups.get()
    }

    /// Bytes appended and not yet handed to a write (the next groups).
    pub fn pending_bytes(&self) -> usize {
        self.state.borrow().pending.len()
    }

    /// Callers waiting in [`Self::room`] for the next group to have room.
    pub fn appends_waiting(&self) -> usize {
        self.stats_room_waiting.get()
    }

    /// Waits until the next group has room: fewer than `max_group_bytes` are pending (or the
    /// log has failed or is closing, so that the append fails at once). Called right before
    /// [`Self::append`], with no `.await` between, it keeps what waits to be written near one
    /// group while a write is under way: a full group slows the writers down rather than the
    /// buffer growing. The frame appended then may take the pending bytes past the limit;
    /// the group still stops at it, and that frame goes in the next.
    pub async fn room(&self) {
        struct Waiting<'a>(&'a Cell<usize>);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        let mut waiting = None;
        loop {
            let rx = {
                let mut st = self.state.borrow_mut();
                if st.pending.len() < self.config.max_group_bytes
                    || st.failed.is_some()
                    || st.closed
                {
                    return;
                }
                let (tx, rx) = oneshot::channel();
                st.room_waiters.push(tx);
                rx
            };
            if waiting.is_none() {
                self.stats_room_waiting
                    .set(self.stats_room_waiting.get() + 1);
                waiting = Some(Waiting(&self.stats_room_waiting));
            }
            // Woken when the committer takes a group (or on failure or close); look again.
            let _ = rx.await;
        }
    }

    /// Runs `queue` on the state unless the log has failed or is closing, then wakes the
    /// committer. Everything but the wait happens now, synchronously, so work enters the log
    /// in the order it is asked for.
    fn enqueue<T>(&self, queue: impl FnOnce(&mut State<S::File>) -> T) -> Result<T, WalError> {
        let queued = {
            let mut st = self.state.borrow_mut();
            if let Some(f) = &st.failed {
                Err(WalError::Failed(f.clone()))
            } else if st.closed {
                Err(WalError::Closed)
            } else {
                Ok(queue(&mut st))
            }
        };
        if queued.is_ok() {
            let _ = self.wake.try_send(());
        }
        queued
    }

    /// Appends one frame, built by `encode` into the pending buffer. With `durable`, the
    /// returned future resolves once the frame is on disk; without, it resolves at once.
    pub fn append(
        &self,
        durable: bool,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> impl std::future::Future<Output = Result<(), WalError>> {
        let queued = self.enqueue(|st| {
            encode(&mut st.pending);
            let end = st.end();
            st.frame_ends.push_back(end);
            durable.then(|| {
                let (tx, rx) = oneshot::channel();
                st.waiters.push_back((end, tx));
                rx
            })
        });
        async move {
            match queued? {
                None => Ok(()),
                Some(rx) => committed(rx).await,
            }
        }
    }

    /// Ends the current segment: everything appended before this call is written, synced
    /// and in segments up to the returned one; everything appended after goes to later
    /// segments. A snapshot covering the buffer as of this call covers those segments.
    pub fn rotate(&self) -> impl std::future::Future<Output = Result<u64, WalError>> {
        let queued = self.enqueue(|st| {
            let (tx, rx) = oneshot::channel();
            let at = st.end();
            st.rotations.push_back((at, tx));
            rx
        });
        async move { committed(queued?).await }
    }

    /// The committer: run once per log, on the shard's executor. Returns after [`Self::close`]
    /// once everything appended has been written and synced.
    pub async fn run_committer(self: Rc<Self>) {
        let rx = self
            .wake_rx
            .borrow_mut()
            .take()
            .expect("run_committer is started once");
        let full = |st: &State<S::File>| st.pending.len() >= self.config.max_group_bytes;
        loop {
            let (has_waiters, has_pending, closed) = {
                let st = self.state.borrow();
                (
                    // A full group goes at once too: appends are waiting for room.
                    !st.waiters.is_empty() || !st.rotations.is_empty() || full(&st),
                    !st.pending.is_empty() || !st.rotations.is_empty(),
                    st.closed,
                )
            };
            if !has_pending {
                if closed {
                    return;
                }
                if rx.recv().await.is_none() {
                    return;
                }
                continue;
            }
            if !has_waiters && !closed {
                // Only no_sync data is pending: gather it for up to flush_interval, unless a
                // durable append or shutdown needs a commit sooner.
                let deadline = std::time::Instant::now() + self.config.flush_interval;
                loop {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let woken =
                        futures_lite::future::or(async { rx.recv().await.is_some() }, async {
                            glommio::timer::sleep(left).await;
                            false
                        })
                        .await;
                    let st = self.state.borrow();
                    if !woken
                        || !st.waiters.is_empty()
                        || !st.rotations.is_empty()
                        || st.closed
                        || full(&st)
                    {
                        break;
                    }
                }
            }
            self.commit_group().await;
        }
    }

    /// Writes and syncs the next group (see [`State::group_end`]), then resolves the waiters
    /// it covers. Frames past the group stay pending, for the next.
    async fn commit_group(&self) {
        let (data, mut waiters, mut rotations, segment) = {
            let mut st = self.state.borrow_mut();
            let end = st.group_end(self.config.max_group_bytes);
            let cut = (end - st.base) as usize;
            let mut next = std::mem::take(&mut st.spare);
            next.extend_from_slice(&st.pending[cut..]);
            let mut data = std::mem::replace(&mut st.pending, next);
            data.truncate(cut);
            st.base = end;
            let frames = st.frame_ends.partition_point(|&e| e <= end);
            st.frame_ends.drain(..frames);
            let covered = st.waiters.partition_point(|&(e, _)| e <= end);
            let waiters: Vec<_> = st.waiters.drain(..covered).map(|(_, w)| w).collect();
            let closing = st.rotations.partition_point(|&(at, _)| at <= end);
            let rotations: Vec<_> = st.rotations.drain(..closing).map(|(_, r)| r).collect();
            // The next group starts filling now, while this one is written.
            st.wake_room_waiters();
            (data, waiters, rotations, st.segment)
        };
        let mut result = self.write_and_sync(&data).await;
        let mut closed_segment = 0;
        if result.is_ok() && !rotations.is_empty() {
            match self.end_segment().await {
                Ok(seg) => closed_segment = seg,
                Err(e) => result = Err(e),
            }
        }
        self.stats_groups.set(self.stats_groups.get() + 1);
        let mut data = data;
        data.clear();
        self.state.borrow_mut().spare = data;
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(segment, error = %msg, "WAL write failed; refusing further writes until restart");
                let mut st = self.state.borrow_mut();
                st.failed = Some(msg.clone());
                st.wake_room_waiters();
                // Frames left for later groups are never written: the file's state is
                // unknown. Their appends fail with this group's error.
                st.pending.clear();
                st.frame_ends.clear();
                waiters.extend(st.waiters.drain(..).map(|(_, w)| w));
                rotations.extend(st.rotations.drain(..).map(|(_, r)| r));
                Err(msg)
            }
        };
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
        for r in rotations {
            let _ = r.send(outcome.clone().map(|()| closed_segment));
        }
    }

    /// Closes the open segment, if any; returns the last segment that may hold data.
    async fn end_segment(&self) -> Result<u64, WalError> {
        let file = {
            let mut st = self.state.borrow_mut();
            let Some(file) = st.file.take() else {
                // Nothing written since the last rotation: earlier segments hold everything.
                return Ok(st.segment.saturating_sub(1));
            };
            st.segment += 1;
            st.file_len = 0;
            st.tail_block.clear();
            (file, st.segment - 1)
        };
        if let Err(e) = file.0.close().await {
            tracing::warn!(segment = file.1, error = %e, "closing a WAL segment failed (it was synced)");
        }
        Ok(file.1)
    }

    async fn write_and_sync(&self, data: &[u8]) -> Result<(), WalError> {
        if data.is_empty() {
            return Ok(());
        }
        // Open the segment if none is open (first group, or after a rotation).
        let need_file = self.state.borrow().file.is_none();
        if need_file {
            let seg = self.state.borrow().segment;
            let f = self
                .store
                .create(seg)
                .await
                .map_err(|source| WalError::Create {
                    segment: seg,
                    source,
                })?;
            let mut st = self.state.borrow_mut();
            st.file = Some(f);
            st.file_len = 0;
            st.tail_block.clear();
        }
        let (file, seg, write_at, tail) = {
            let mut st = self.state.borrow_mut();
            let file = st.file.take().expect("opened above");
            let align = file.alignment() as u64;
            let write_at = st.file_len - st.file_len % align;
            (
                file,
                st.segment,
                write_at,
                std::mem::take(&mut st.tail_block),
            )
        };
        let align = file.alignment();
        let res = async {
            file.write_at(&[&tail, data], write_at)
                .await
                .map_err(|source| WalError::Write {
                    segment: seg,
                    source,
                })?;
            file.sync().await.map_err(|source| WalError::Sync {
                segment: seg,
                source,
            })
        }
        .await;
        // Returns the file when the segment is full and must be closed (outside the borrow).
        let full = {
            let mut st = self.state.borrow_mut();
            if let Err(e) = res {
                st.file = Some(file);
                return Err(e);
            }
            // New logical length and the partial block the next group must rewrite.
            let total = tail.len() + data.len();
            st.file_len = write_at + total as u64;
            let keep = total % align;
            let mut new_tail = Vec::with_capacity(align);
            if keep > 0 {
                if data.len() >= keep {
                    new_tail.extend_from_slice(&data[data.len() - keep..]);
                } else {
                    new_tail.extend_from_slice(&tail[tail.len() - (keep - data.len())..]);
                    new_tail.extend_from_slice(data);
                }
            }
            st.tail_block = new_tail;
            if st.file_len >= self.config.segment_bytes {
                st.segment += 1;
                st.file_len = 0;
                st.tail_block.clear();
                Some(file)
            } else {
                st.file = Some(file);
                None
            }
        };
        if let Some(file) = full {
            if let Err(e) = file.close().await {
                tracing::warn!(segment = seg, error = %e, "closing a full WAL segment failed");
            }
        }
        Ok(())
    }

    /// Stops accepting appends; the committer writes what is pending, then returns.
    pub fn close(&self) {
        let mut st = self.state.borrow_mut();
        st.closed = true;
        st.wake_room_waiters();
        drop(st);
        let _ = self.wake.try_send(());
    }
}

/// Waits for the committer's answer to one queued item.
async fn committed<T>(rx: oneshot::Receiver<Result<T, String>>) -> Result<T, WalError> {
    match rx.await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(WalError::Failed(e)),
        Err(_) => Err(WalError::Closed),
    }
}

/// The segment files in a shard's WAL directory, oldest first, as (seq, path).
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(WalError::Read {
                path: dir.to_owned(),
                source,
            })
        }
    };
    let mut segs = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| WalError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            segs.push((seq, entry.path()));
        }
    }
    segs.sort();
    Ok(segs)
}

/// Deletes the segments of `dir` numbered `through` or lower (they are in Parquet), and
/// makes the deletions durable. Returns how many were deleted.
pub fn delete_segments_through(dir: &Path, through: u64) -> Result<usize, WalError> {
    let mut n = 0;
    for (seq, path) in list_segments(dir)? {
        if seq > through {
            break;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(WalError::Read { path, source }),
        }
    }
    if n > 0 {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| WalError::Read {
                path: dir.to_owned(),
                source,
            })?;
    }
    Ok(n)
}

/// The file name of segment `seq`.
pub fn segment_file_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// What replaying one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReplay {
    pub frames: u64,
    pub good_bytes: u64,
    /// Set when a damaged tail was cut off (the file was truncated to `good_bytes`).
    pub truncated: Option<String>,
}

/// Reads one segment, calling `f` with each intact batch. A torn or corrupt tail is logged,
/// cut off the file, and reported; it is never an error.
pub fn replay_segment(path: &Path, f: impl FnMut(WalBatch<'_>)) -> Result<SegmentReplay, WalError> {
    replay_segment_with(path, true, f)
}

/// As [`replay_segment`]; with `truncate` false the file is only read (for shards that replay
/// another shard's log after a change of shard count, while its own shard truncates it).
pub fn replay_segment_with(
    path: &Path,
    truncate: bool,
    mut f: impl FnMut(WalBatch<'_>),
) -> Result<SegmentReplay, WalError> {
    let data = std::fs::read(path).map_err(|source| WalError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut frames = 0;
    let mut bad_batch = None;
    let (good, tail) = read_frames(&data, |payload| match decode_batch(payload) {
        Ok(b) => {
            frames += 1;
            f(b)
        }
        Err(e) => bad_batch = Some(e),
    });
    if let Some(e) = bad_batch {
        tracing::warn!(path = %path.display(), error = %e, "skipped a WAL record with a valid checksum but an unreadable batch");
    }
    let truncated = match tail {
        Tail::Clean => None,
        Tail::Damaged { error, .. } if !truncate => Some(error.to_string()),
        Tail::Damaged { offset, error } => {
            tracing::warn!(
                path = %path.display(),
                offset,
                dropped_bytes = data.len() - offset,
                error = %error,
                "WAL segment has a damaged tail (torn write or corruption); truncating it, all records before it are kept"
            );
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|source| WalError::Read {
                    path: path.to_owned(),
                    source,
                })?;
            file.set_len(offset as u64)
                .and_then(|_| file.sync_all())
                .map_err(|source| WalError::Read {
                    path: path.to_owned(),
                    source,
                })?;
            Some(error.to_string())
        }
    };
    Ok(SegmentReplay {
        frames,
        good_bytes: good as u64,
        truncated,
    })
}

#[cfg(test)]
mod tests;
