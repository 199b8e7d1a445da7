//! `system.queries`: the recent queries of each database, newest last.
//!
//! A query's start and end are recorded wherever it runs — on the shard that answered it from
//! a cache, or on a coordinator thread — as records pushed onto a bounded lock-free queue: a
//! shard's thread never takes a lock or waits for the log. A keeper thread moves the records
//! into the per-database lists, and a reader of the table moves what is left first, so it sees
//! every query recorded before it began. A record that finds the queue full is dropped and
//! counted ([`QueryLog::dropped`]): under overload the log loses entries, never the shard time.
//!
//! Invariants:
//! - At most [`QUERIES_KEPT`] entries per database; the oldest are dropped first.
//! - At most [`INBOX_CAPACITY`] records wait in the queue.
//! - Only the keeper and readers (never a shard) lock the lists, and records are taken off
//!   the queue only under that lock, so they are applied in the order they were pushed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BooleanArray, DurationNanosecondArray, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use crossbeam_queue::ArrayQueue;

/// Entries kept per database.
pub const QUERIES_KEPT: usize = 1000;

/// Records that may wait for the keeper: 2,048 queries' starts and ends. The keeper is woken
/// when half are used, so the other half is the headroom for its wake-up and for a reader that
/// holds the lists while it copies them (a thousand entries, well under a millisecond): far
/// more than shards answering cache lookups push in that time.
pub const INBOX_CAPACITY: usize = 4096;

/// How often the keeper looks at the queue when nothing wakes it.
const KEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    issue_time_ns: i64,
    text: String,
    params: Option<String>,
    started: Instant,
    duration: Option<Duration>,
    rows: Option<u64>,
    success: Option<bool>,
    error: Option<String>,
}

/// What a query's start or end pushes onto the queue.
#[derive(Debug)]
enum Record {
    Start {
        database: String,
        entry: Entry,
    },
    Finish {
        database: String,
        id: u64,
        ended: Instant,
        rows: u64,
        error: Option<String>,
    },
}

type Lists = HashMap<String, VecDeque<Entry>>;

/// The queue and the lists, shared with the keeper thread.
#[derive(Debug)]
struct Inner {
    inbox: ArrayQueue<Record>,
    dropped: AtomicU64,
    lists: Mutex<Lists>,
    stop: AtomicBool,
}

impl Inner {
    /// Moves the queued records into the lists (at most one queue's worth, so a steady stream
    /// of records cannot keep the lists locked); returns the lists, locked.
    fn drain(&self) -> std::sync::MutexGuard<'_, Lists> {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..INBOX_CAPACITY {
            let Some(record) = self.inbox.pop() else {
                break;
            };
            apply(&mut lists, record);
        }
        lists
    }
}

fn apply(lists: &mut Lists, record: Record) {
    match record {
        Record::Start { database, entry } => {
            let q = lists.entry(database).or_default();
            if q.len() == QUERIES_KEPT {
                q.pop_front();
            }
            q.push_back(entry);
        }
        Record::Finish {
            database,
            id,
            ended,
            rows,
            error,
        } => {
            // Not found: the start was dropped, or the entry has aged out.
            if let Some(e) = lists
                .get_mut(&database)
                .and_then(|q| q.iter_mut().rev().find(|e| e.id == id))
            {
                e.duration = Some(ended.saturating_duration_since(e.started));
                e.rows = Some(rows);
                e.success = Some(error.is_none());
                e.error = error;
            }
        }
    }
}

#[derive(Debug)]
pub struct QueryLog {
    next_id: AtomicU64,
    inner: Arc<Inner>,
    /// The keeper, to wake it early; `None` if it could not be started (readers then move the
    /// records, and a full queue drops them).
    keeper: Option<std::thread::Thread>,
}

impl Default for QueryLog {
    /// A log with its keeper thread running (it ends when the log is dropped).
    fn default() -> Self {
        let mut log = QueryLog::without_keeper();
        let inner = log.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("query-log".into())
            .spawn(move || {
                while !inner.stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(KEEP_EVERY);
                    drop(inner.drain());
                }
            });
        match spawned {
            Ok(handle) => log.keeper = Some(handle.thread().clone()),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the query log's keeper thread; system.queries may miss queries under load")
            }
        }
        log
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        if let Some(k) = &self.keeper {
            k.unpark();
        }
    }
}

impl QueryLog {
    fn without_keeper() -> Self {
        QueryLog {
            next_id: AtomicU64::new(0),
            inner: Arc::new(Inner {
                inbox: ArrayQueue::new(INBOX_CAPACITY),
                dropped: AtomicU64::new(0),
                lists: Mutex::default(),
                stop: AtomicBool::new(false),
            }),
            keeper: None,
        }
    }

    /// Queues a record without waiting: dropped (and counted) if the queue is full.
    fn push(&self, record: Record) {
        let inbox = &self.inner.inbox;
        if inbox.push(record).is_err() {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if inbox.len() >= INBOX_CAPACITY / 2 {
            if let Some(k) = &self.keeper {
                k.unpark();
            }
        }
    }

    /// Records a query as running; returns its id.
    pub fn start(&self, database: &str, text: &str, params: Option<String>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.push(Record::Start {
            database: database.to_string(),
            entry: Entry {
                id,
                issue_time_ns: crate::now_ns(),
                text: text.to_string(),
                params,
                started: Instant::now(),
                duration: None,
                rows: None,
                success: None,
                error: None,
            },
        });
        id
    }

    /// Records how a query ended.
    pub fn finish(&self, database: &str, id: u64, rows: u64, error: Option<String>) {
        self.push(Record::Finish {
            database: database.to_string(),
            id,
            ended: Instant::now(),
            rows,
            error,
        });
    }

    /// Records waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.inner.inbox.len()
    }

    /// Records dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    pub fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "issue_time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("query_type", DataType::Utf8, false),
            Field::new("query_text", DataType::Utf8, false),
            Field::new("params", DataType::Utf8, true),
            Field::new(
                "end2end_duration",
                DataType::Duration(TimeUnit::Nanosecond),
                true,
            ),
            Field::new("rows", DataType::UInt64, true),
            Field::new("success", DataType::Boolean, false),
            Field::new("running", DataType::Boolean, false),
            Field::new("error", DataType::Utf8, true),
        ]))
    }

    /// One database's entries as a record batch.
    pub fn batch(&self, database: &str) -> RecordBatch {
        let entries: Vec<Entry> = {
            let dbs = self.inner.drain();
            dbs.get(database)
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default()
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|e| e.id as i64),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                entries.iter().map(|e| e.issue_time_ns),
            )),
            Arc::new(StringArray::from_iter_values(entries.iter().map(|_| "sql"))),
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| &e.text),
            )),
            Arc::new(StringArray::from_iter(
                entries.iter().map(|e| e.params.as_deref()),
            )),
            Arc::new(DurationNanosecondArray::from_iter(
                entries
                    .iter()
                    .map(|e| e.duration.map(|d| d.as_nanos() as i64)),
            )),
            Arc::new(UInt64Array::from_iter(entries.iter().map(|e| e.rows))),
            Arc::new(BooleanArray::from_iter(
                entries.iter().map(|e| Some(e.success.unwrap_or(false))),
            )),
            Arc::new(BooleanArray::from_iter(
                entries.iter().map(|e| Some(e.success.is_none())),
            )),
            Arc::new(StringArray::from_iter(
                entries.iter().map(|e| e.error.as_deref()),
            )),
        ];
        RecordBatch::try_new(Self::schema(), columns).expect("columns match the schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_per_database() {
        let log = QueryLog::default();
        for i in 0..QUERIES_KEPT + 5 {
            let id = log.start("a", &format!("SELECT {i}"), None);
            log.finish("a", id, 1, None);
        }
        let running = log.start("b", "SELECT 1", None);
        let a = log.batch("a");
        assert_eq!(a.num_rows(), QUERIES_KEPT);
        let b = log.batch("b");
        assert_eq!(b.num_rows(), 1);
        let running_col = b.column(8).as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(running_col.value(0));
        log.finish("b", running, 0, Some("boom".into()));
        let b = log.batch("b");
        let success = b.column(7).as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(!success.value(0));
        assert_eq!(log.batch("none").num_rows(), 0);
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn a_full_queue_drops_records_counts_them_and_never_blocks() {
        // No keeper: nothing empties the queue until the read.
        let log = QueryLog::without_keeper();
        for i in 0..INBOX_CAPACITY + 10 {
            log.start("a", &format!("SELECT {i}"), None);
        }
        assert_eq!(
            log.queue_depth(),
            INBOX_CAPACITY,
            "the queue stops at its bound"
        );
        assert_eq!(log.dropped(), 10, "the records past it are counted");
        // A read takes what was queued.
        assert_eq!(log.batch("a").num_rows(), QUERIES_KEPT);
        assert_eq!(log.queue_depth(), 0);
        log.start("a", "SELECT again", None);
        assert_eq!(log.dropped(), 10);
    }

    #[test]
    fn the_keeper_empties_the_queue_without_a_reader() {
        let log = QueryLog::default();
        // Past half the queue (which wakes the keeper), short of all of it (so none can drop).
        for i in 0..INBOX_CAPACITY / 4 + 1 {
            let id = log.start("a", &format!("SELECT {i}"), None);
            log.finish("a", id, 0, None);
        }
        // Woken past half, the keeper moves them (bounded wait: it runs on its own thread).
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.queue_depth() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(log.queue_depth(), 0);
        assert_eq!(log.dropped(), 0);
        let a = log.batch("a");
        assert_eq!(a.num_rows(), QUERIES_KEPT);
        let running = a.column(8).as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(
            (0..a.num_rows()).all(|r| !running.value(r)),
            "every end found its start"
        );
    }
}
