//! `system.queries`: the recent queries of each database, newest last.
//!
//! Invariant: at most [`QUERIES_KEPT`] entries per database; the oldest are dropped first. The
//! lock is taken twice per query (start, end) and by readers of the table, never by writes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BooleanArray, DurationNanosecondArray, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Entries kept per database.
pub const QUERIES_KEPT: usize = 1000;

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

#[derive(Debug, Default)]
pub struct QueryLog {
    next_id: AtomicU64,
    databases: Mutex<HashMap<String, VecDeque<Entry>>>,
}

impl QueryLog {
    /// Records a query as running; returns its id.
    pub fn start(&self, database: &str, text: &str, params: Option<String>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let issue_time_ns = crate::now_ns();
        let entry = Entry {
            id,
            issue_time_ns,
            text: text.to_string(),
            params,
            started: Instant::now(),
            duration: None,
            rows: None,
            success: None,
            error: None,
        };
        let mut dbs = self.databases.lock().unwrap_or_else(|e| e.into_inner());
        let q = dbs.entry(database.to_string()).or_default();
        if q.len() == QUERIES_KEPT {
            q.pop_front();
        }
        q.push_back(entry);
        id
    }

    /// Records how a query ended.
    pub fn finish(&self, database: &str, id: u64, rows: u64, error: Option<String>) {
        let mut dbs = self.databases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = dbs
            .get_mut(database)
            .and_then(|q| q.iter_mut().rev().find(|e| e.id == id))
        {
            e.duration = Some(e.started.elapsed());
            e.rows = Some(rows);
            e.success = Some(error.is_none());
            e.error = error;
        }
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
            let dbs = self.databases.lock().unwrap_or_else(|e| e.into_inner());
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
    }
}
