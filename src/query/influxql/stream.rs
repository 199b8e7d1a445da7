//! A raw `SELECT` (no calls, one measurement) as a stream of series pieces, for answers too
//! large to hold: `/query?chunked=true` sends each piece as it comes. The rows are sorted by
//! DataFusion in a session whose memory pool is small, so the sort spills to disk instead of
//! growing; the stream itself holds one batch and at most one piece.
//!
//! Invariants:
//! - Pieces come in the order the whole answer has (series by key, then time; all reversed
//!   for `ORDER BY time DESC`) and carry every row of it once.
//! - A piece holds at most `max_rows` rows and one series; `series_continues` says the next
//!   piece carries more of the same series, `more` that any piece follows at all.
//! - Statements this cannot answer exactly as the evaluator does (calls, `LIMIT`, `OFFSET`,
//!   `SLIMIT`, several measurements, subqueries, `tz()`, `INTO`) are left to the evaluator:
//!   [`open`] answers `None`.

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use shardline_influxql::ast::{Fill, MeasurementName, Select, Source};
use shardline_shards::schema::DbSchema;

use super::eval::{self, SeriesData};
use super::fields::{self, OutField, Shape};
use super::resolve::{self, Column};
use super::select;
use super::values::V;
use super::{time_range, InfluxQlError, SeriesRows};

type Key = Vec<Option<Arc<str>>>;
type Row = (i64, Vec<V>);

/// One piece of the answer.
#[derive(Debug)]
pub struct StreamPiece {
    pub series: SeriesRows,
    /// The next piece carries more rows of this series.
    pub series_continues: bool,
    /// Another piece follows.
    pub more: bool,
}

/// A raw statement's rows, read as they are asked for.
pub struct RawStream {
    batches: SendableRecordBatchStream,
    measurement: String,
    tags: Vec<String>,
    out: Vec<OutField>,
    read: Vec<(String, Column)>,
    field_cols: Vec<bool>,
    max_rows: usize,
    /// The series being gathered and its rows so far.
    current: Option<(Key, Vec<Row>)>,
    /// Pieces complete and not yet taken (each followed by something).
    ready: VecDeque<(Key, Vec<Row>, bool)>,
    done: bool,
}

/// Opens `stmt` as a stream of pieces of at most `max_rows` rows, if it is a statement the
/// stream answers (see the invariants); `ctx` should be a session whose sorts spill.
pub async fn open(
    ctx: &SessionContext,
    db: &DbSchema,
    db_name: &str,
    stmt: &Select,
    now: i64,
    max_rows: usize,
) -> Result<Option<RawStream>, InfluxQlError> {
    let plain = stmt.into.is_none()
        && stmt.timezone.is_none()
        && stmt.limit.is_none_or(|l| l == 0)
        && stmt.offset.is_none_or(|o| o == 0)
        && stmt.slimit.is_none_or(|l| l == 0)
        && stmt.soffset.is_none_or(|o| o == 0)
        && !matches!(stmt.fill, Some(Fill::None))
        && stmt.from.len() == 1
        && matches!(&stmt.from[0], Source::Measurement(m) if matches!(m.name, MeasurementName::Name(_)));
    if !plain {
        return Ok(None);
    }
    fields::check_statement(stmt)?;
    select::check_sources(&stmt.from, db_name)?;
    let measurements = resolve::measurements(db, db_name, &stmt.from)?;
    let [m] = measurements.as_slice() else {
        return Ok(None);
    };
    let (range, rest) = time_range::split(stmt.condition.as_ref(), now, None)?;
    let grouping = select::grouping(&stmt.group_by, now, None)?;
    if grouping.interval.is_some() {
        return Ok(None);
    }
    let tags = select::group_tags(&grouping.dims, m)?;
    let out = fields::expand(&stmt.fields, m, &tags)?;
    if out.is_empty() || fields::shape(&out, false, false)? != Shape::Raw {
        return Ok(None);
    }
    eval::check_types(&out, m)?;
    let read = fields::columns_read(&out, m);
    if !read.iter().any(|(_, c)| matches!(c, Column::Field(_))) || range.is_empty() {
        return Ok(None);
    }
    let df = select::sorted_frame(
        ctx,
        m,
        &tags,
        &read,
        &range,
        rest.as_ref(),
        stmt,
        stmt.order_desc,
    )
    .await?;
    let field_cols = read
        .iter()
        .map(|(_, c)| matches!(c, Column::Field(_)))
        .collect();
    Ok(Some(RawStream {
        batches: df.execute_stream().await?,
        measurement: m.name().to_string(),
        tags,
        out,
        read,
        field_cols,
        max_rows: max_rows.max(1),
        current: None,
        ready: VecDeque::new(),
        done: false,
    }))
}

impl std::fmt::Debug for RawStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawStream")
            .field("measurement", &self.measurement)
            .field("tags", &self.tags)
            .field("max_rows", &self.max_rows)
            .field("ready", &self.ready.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl RawStream {
    /// The next piece, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<StreamPiece>, InfluxQlError> {
        loop {
            if let Some((key, rows, series_continues)) = self.ready.pop_front() {
                return Ok(Some(self.piece(key, rows, series_continues, true)));
            }
            if self.done {
                return Ok(self
                    .current
                    .take()
                    .map(|(key, rows)| self.piece(key, rows, false, false)));
            }
            match self.batches.next().await {
                None => self.done = true,
                Some(batch) => {
                    let batch = batch?;
                    let mut series: Vec<SeriesData> = Vec::new();
                    select::split_batch(&batch, self.tags.len(), self.read.len(), &mut series);
                    for s in series {
                        let rows = eval::raw_rows(&s, &self.out, &self.read, &self.field_cols);
                        self.feed(s.key, rows);
                    }
                }
            }
        }
    }

    /// Adds rows of series `key` (which may continue the current one), cutting pieces.
    fn feed(&mut self, key: Key, rows: Vec<Row>) {
        for row in rows {
            match &mut self.current {
                Some((k, buf)) if *k == key => {
                    if buf.len() == self.max_rows {
                        let full = std::mem::take(buf);
                        self.ready.push_back((key.clone(), full, true));
                    }
                    buf.push(row);
                }
                _ => {
                    if let Some((k, buf)) = self.current.take() {
                        self.ready.push_back((k, buf, false));
                    }
                    self.current = Some((key.clone(), vec![row]));
                }
            }
        }
    }

    fn piece(&self, key: Key, rows: Vec<Row>, series_continues: bool, more: bool) -> StreamPiece {
        StreamPiece {
            series: SeriesRows {
                measurement: self.measurement.clone(),
                tags: self.tags.iter().cloned().zip(key).collect(),
                columns: self.out.iter().map(|f| f.name.clone()).collect(),
                rows,
            },
            series_continues,
            more,
        }
    }
}
