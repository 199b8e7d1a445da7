//! The v1 `/query` API on the coordinator: runs every statement of a query in order and
//! answers as InfluxDB 1.x does — one result per statement, a failed statement's error in its
//! result (and the statements after it "not executed"), in JSON ([`json`]), CSV ([`csv`]),
//! MessagePack ([`msgpack`]) or, with `chunked`, one JSON object per line (CSV rows, for a
//! CSV `Accept`) split at `chunk_size` rows and at series boundaries.
//!
//! Invariants:
//! - The request was parsed and authorized by the shard that took it; here every statement
//!   runs, and the answer is 200 with one result per statement.
//! - A statement's answer is encoded and sent before the next statement runs, so memory holds
//!   one statement's answer at a time (the InfluxQL evaluator does not stream within one).
//! - Every request is in the query log once, with the rows it answered.

pub mod csv;
pub mod json;
pub mod msgpack;

use bytes::Bytes;
use shardline_influxql::ast::{Show, Source, Statement};

use super::influxql::values::V;
use super::influxql::{self, manage, select, show, stream, Answer, InfluxQlError, SeriesRows};
use super::running::Registration;
use super::{send_bytes, session, QueryEvent, Shared};

/// How times are written: RFC 3339 strings, or integers of a unit (`epoch=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epoch {
    Rfc3339,
    Nanosecond,
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
}

impl Epoch {
    /// The `epoch` parameter: `ns`, `u`/`µ`, `ms`, `s`, `m`, `h`; anything else, as in 1.x,
    /// is nanoseconds. Absent: RFC 3339.
    pub fn from_param(p: Option<&str>) -> Epoch {
        match p {
            None | Some("") => Epoch::Rfc3339,
            Some("u" | "µ") => Epoch::Microsecond,
            Some("ms") => Epoch::Millisecond,
            Some("s") => Epoch::Second,
            Some("m") => Epoch::Minute,
            Some("h") => Epoch::Hour,
            Some(_) => Epoch::Nanosecond,
        }
    }

    /// Nanoseconds per unit, or `None` for RFC 3339.
    pub fn divisor(self) -> Option<i64> {
        Some(match self {
            Epoch::Rfc3339 => return None,
            Epoch::Nanosecond => 1,
            Epoch::Microsecond => 1_000,
            Epoch::Millisecond => 1_000_000,
            Epoch::Second => 1_000_000_000,
            Epoch::Minute => 60_000_000_000,
            Epoch::Hour => 3_600_000_000_000,
        })
    }
}

/// The encodings of an answer (chosen by `Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Format {
    Json,
    /// CSV asked for as `application/csv`.
    Csv,
    /// CSV asked for as `text/csv`.
    TextCsv,
    Msgpack,
}

impl V1Format {
    /// The first of 1.x's encodings an `Accept` header takes, its media ranges tried in order
    /// of their `q` (wildcards allowed: `*/*` is JSON, `text/*` CSV); JSON when none fits.
    pub fn from_accept(accept: Option<&str>) -> V1Format {
        const OFFERED: [(&str, &str, V1Format); 4] = [
            ("application", "json", V1Format::Json),
            ("application", "csv", V1Format::Csv),
            ("text", "csv", V1Format::TextCsv),
            ("application", "x-msgpack", V1Format::Msgpack),
        ];
        let mut ranges: Vec<(f32, &str, &str)> = accept
            .unwrap_or("")
            .split(',')
            .filter_map(|part| {
                let mut params = part.split(';');
                let (kind, sub) = params.next()?.trim().split_once('/')?;
                let q = params
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((q, kind.trim(), sub.trim()))
            })
            .collect();
        // Stable: equal weights keep the header's order.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .iter()
            .find_map(|(_, kind, sub)| {
                OFFERED.iter().find_map(|(k, s, f)| {
                    let fits = (*kind == "*" || kind.eq_ignore_ascii_case(k))
                        && (*sub == "*" || sub.eq_ignore_ascii_case(s));
                    fits.then_some(*f)
                })
            })
            .unwrap_or(V1Format::Json)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            V1Format::Json => "application/json",
            // 1.6 answers `text/csv` to both CSV types.
            V1Format::Csv | V1Format::TextCsv => "text/csv",
            V1Format::Msgpack => "application/x-msgpack",
        }
    }

    fn is_csv(self) -> bool {
        matches!(self, V1Format::Csv | V1Format::TextCsv)
    }

    /// The body of a request refused as a whole: `{"error": ...}`, or CSV's `error` record.
    pub fn error_body(self, message: &str) -> Vec<u8> {
        match self {
            V1Format::Json => json::error_body(message),
            V1Format::Csv | V1Format::TextCsv => csv::error_body(message),
            V1Format::Msgpack => msgpack::error_body(message),
        }
    }
}

/// Rows per chunk when `chunked=true` gives no (or a zero) `chunk_size`, as in 1.x.
pub const DEFAULT_CHUNK_SIZE: usize = 10_000;

/// A v1 query, parsed and authorized by the shard.
#[derive(Debug)]
pub struct V1Request {
    /// `db`: the database statements without their own read.
    pub database: Option<String>,
    /// `rp`: the retention policy `SELECT`s without their own read.
    pub policy: Option<String>,
    /// The query text, for the query log.
    pub text: String,
    /// The statements, parameters already bound.
    pub statements: Vec<Statement>,
    pub epoch: Epoch,
    /// `chunked=true`: rows per chunk.
    pub chunk_size: Option<usize>,
    pub pretty: bool,
    pub format: V1Format,
    /// The caller's token, which `SHOW DATABASES` lists for (`None`: authorization is off).
    pub token: Option<std::sync::Arc<crate::auth::TokenEntry>>,
    pub reply: flume::Sender<QueryEvent>,
}

/// One series of a result, or the part of it one chunk carries.
#[derive(Debug)]
pub struct SeriesPiece<'a> {
    pub series: &'a SeriesRows,
    pub rows: &'a [(i64, Vec<V>)],
    /// More of this series follows in the next chunk.
    pub partial: bool,
    /// Rows start with their time (everything but `SHOW` answers).
    pub has_time: bool,
}

impl SeriesPiece<'_> {
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        let time = self.has_time.then_some("time");
        time.into_iter()
            .chain(self.series.columns.iter().map(String::as_str))
    }

    /// The series' tags by key, a missing tag as `""` (1.x's maps are sorted on output).
    pub fn sorted_tags(&self) -> Vec<(&str, &str)> {
        let mut tags: Vec<(&str, &str)> = self
            .series
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or("")))
            .collect();
        tags.sort_unstable();
        tags
    }
}

/// One result: a statement's whole answer or one chunk of it.
#[derive(Debug)]
pub struct Piece<'a> {
    pub statement_id: usize,
    pub series: &'a [SeriesPiece<'a>],
    /// More of this statement's answer follows in the next chunk.
    pub partial: bool,
    pub error: Option<&'a str>,
}

/// Runs and answers `req` (on the coordinator's runtime).
pub(super) async fn answer(
    shared: &Shared,
    req: V1Request,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let log_db = req.database.clone().unwrap_or_default();
    let id = shared.log.start(&log_db, &req.text, None);
    let mut rows = 0u64;
    let start = QueryEvent::Start {
        content_type: if req.chunk_size.is_some() && req.format == V1Format::Msgpack {
            // Chunks are JSON lines for a MessagePack `Accept`: concatenated MessagePack
            // objects, which 1.x sends, are more than influxdb-python's reader can decode.
            V1Format::Json.content_type()
        } else {
            req.format.content_type()
        },
    };
    if req.reply.send_async(start).await.is_err() {
        return shared.log.finish(&log_db, id, 0, Some(GONE.into()));
    }
    let registration = shared.running.register(id, &log_db, &req.text);
    let mut permit = Some(permit);
    let mut failed = false;
    let mut body = Vec::new();
    let mut csv = csv::CsvState::default();
    match (req.chunk_size, req.format) {
        (Some(_), _) | (None, V1Format::Csv | V1Format::TextCsv) => {}
        (None, V1Format::Json) => body.extend_from_slice(b"{\"results\":["),
        (None, V1Format::Msgpack) => msgpack::begin(&mut body, req.statements.len()),
    }
    let now = crate::now_ns();
    for (i, stmt) in req.statements.iter().enumerate() {
        let mut refused = None;
        if let (false, Some(size), Statement::Select(select)) = (failed, req.chunk_size, stmt) {
            match open_stream(shared, &req, select, now, size).await {
                Ok(Some(stream)) => {
                    drop(permit.take());
                    match send_stream(&req, &mut csv, i, stream, &registration).await {
                        Ok(n) => rows += n,
                        Err(StreamEnd::Gone) => {
                            return shared.log.finish(&log_db, id, rows, Some(GONE.into()))
                        }
                        Err(StreamEnd::Failed(e)) => {
                            failed = true;
                            let piece = Piece {
                                statement_id: i,
                                series: &[],
                                partial: false,
                                error: Some(&e),
                            };
                            let text = line(&piece, &req, &mut csv);
                            if send_bytes(&req.reply, Bytes::from(text)).await.is_err() {
                                return shared.log.finish(&log_db, id, rows, Some(GONE.into()));
                            }
                        }
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => refused = Some(e),
            }
        }
        let outcome = if failed {
            Err("not executed".to_string())
        } else if let Some(e) = refused {
            Err(e)
        } else {
            tokio::select! {
                done = execute(shared, &req, stmt, now) => done.map_err(|e| e.to_string()),
                () = registration.until_killed() => Err(KILLED.to_string()),
            }
        };
        drop(permit.take());
        failed |= outcome.is_err();
        if let Ok(a) = &outcome {
            rows += a.series.iter().map(|s| s.rows.len() as u64).sum::<u64>();
        }
        let select = matches!(stmt, Statement::Select(_));
        let sent = match req.chunk_size {
            Some(size) => send_chunks(&req, &mut csv, i, &outcome, select.then_some(size)).await,
            None => {
                if i > 0 && req.format == V1Format::Json {
                    body.push(b',');
                }
                encode_whole(&mut body, &mut csv, &req, i, &outcome);
                // Pretty text is indented as a whole; anything else goes out per statement.
                if req.pretty && req.format == V1Format::Json {
                    Ok(())
                } else {
                    send_bytes(&req.reply, Bytes::from(std::mem::take(&mut body))).await
                }
            }
        };
        if sent.is_err() {
            return shared.log.finish(&log_db, id, rows, Some(GONE.into()));
        }
    }
    if req.chunk_size.is_none() && req.format == V1Format::Json {
        body.extend_from_slice(b"]}");
        body = if req.pretty {
            json::pretty(&body)
        } else {
            body.push(b'\n');
            body
        };
    }
    if send_bytes(&req.reply, Bytes::from(body)).await.is_ok() {
        let _ = req.reply.send_async(QueryEvent::Done).await;
    }
    shared.log.finish(&log_db, id, rows, None);
}

const GONE: &str = "cancelled before its end (the client went away, or the server stopped)";
/// A statement's error when `KILL QUERY` stopped it.
const KILLED: &str = "query killed";

fn pieces_of(answer: &Answer) -> Vec<SeriesPiece<'_>> {
    answer
        .series
        .iter()
        .map(|s| SeriesPiece {
            series: s,
            rows: &s.rows,
            partial: false,
            has_time: !answer.no_time,
        })
        .collect()
}

/// Appends a statement's whole result to `body`.
fn encode_whole(
    body: &mut Vec<u8>,
    csv: &mut csv::CsvState,
    req: &V1Request,
    statement_id: usize,
    outcome: &Result<Answer, String>,
) {
    let series = match outcome {
        Ok(a) => pieces_of(a),
        Err(_) => Vec::new(),
    };
    let piece = Piece {
        statement_id,
        series: &series,
        partial: false,
        error: outcome.as_ref().err().map(String::as_str),
    };
    match req.format {
        V1Format::Json => json::result(body, &piece, req.epoch),
        V1Format::Csv | V1Format::TextCsv => csv::result(body, csv, &piece, req.epoch),
        V1Format::Msgpack => msgpack::result(body, &piece, req.epoch),
    }
}

/// Sends a statement's result in chunks: a JSON line (or CSV rows) per series, a `SELECT`'s
/// series split every `split` rows, `partial` on every line but the statement's last.
async fn send_chunks(
    req: &V1Request,
    csv: &mut csv::CsvState,
    statement_id: usize,
    outcome: &Result<Answer, String>,
    split: Option<usize>,
) -> Result<(), ()> {
    let answer = match outcome {
        Ok(a) if !a.series.is_empty() => a,
        _ => {
            let piece = Piece {
                statement_id,
                series: &[],
                partial: false,
                error: outcome.as_ref().err().map(String::as_str),
            };
            return send_bytes(&req.reply, Bytes::from(line(&piece, req, csv))).await;
        }
    };
    let count = answer.series.len();
    for (n, s) in answer.series.iter().enumerate() {
        let size = split.unwrap_or(usize::MAX).max(1);
        let mut at: usize = 0;
        loop {
            let end = s.rows.len().min(at.saturating_add(size));
            let more_here = end < s.rows.len();
            let one = [SeriesPiece {
                series: s,
                rows: &s.rows[at..end],
                partial: more_here,
                has_time: !answer.no_time,
            }];
            let piece = Piece {
                statement_id,
                series: &one,
                // 1.x marks the series after this one only in a `SELECT`'s chunks.
                partial: more_here || (split.is_some() && n + 1 < count),
                error: None,
            };
            send_bytes(&req.reply, Bytes::from(line(&piece, req, csv))).await?;
            if !more_here {
                break;
            }
            at = end;
        }
    }
    Ok(())
}

/// How a streamed statement ended early.
enum StreamEnd {
    /// The client went away.
    Gone,
    /// Reading failed; the message is the statement's error.
    Failed(String),
}

/// `select` as a stream of pieces of at most `size` rows, if it is one the stream answers
/// (else, or if its database is missing, the evaluator answers it, errors included).
async fn open_stream(
    shared: &Shared,
    req: &V1Request,
    select: &shardline_influxql::ast::Select,
    now: i64,
    size: usize,
) -> Result<Option<stream::RawStream>, String> {
    let (default_db, default_rp) = (req.database.as_deref(), req.policy.as_deref());
    // The same database the statement would run against unstreamed.
    let Some(name) = target_database(
        &Statement::Select(Box::new(select.clone())),
        default_db,
        default_rp,
    ) else {
        return Ok(None);
    };
    let Some(db) = shared.catalog.snapshot().database(&name).cloned() else {
        return Ok(None);
    };
    let select = within(select, &name, default_db, default_rp);
    let ctx = super::spilling_session(shared, db.clone()).map_err(|e| e.to_string())?;
    stream::open(&ctx, &db, &db.name, &select, now, size)
        .await
        .map_err(|e| e.to_string())
}

/// Sends a streamed statement's pieces as they come, one chunk each; the rows sent.
async fn send_stream(
    req: &V1Request,
    csv: &mut csv::CsvState,
    statement_id: usize,
    mut rows: stream::RawStream,
    registration: &Registration,
) -> Result<u64, StreamEnd> {
    let mut sent = 0u64;
    loop {
        if registration.killed() {
            return Err(StreamEnd::Failed(KILLED.into()));
        }
        let next = tokio::select! {
            next = rows.next() => next,
            () = registration.until_killed() => return Err(StreamEnd::Failed(KILLED.into())),
        };
        let piece = match next {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(StreamEnd::Failed(e.to_string())),
        };
        let one = [SeriesPiece {
            series: &piece.series,
            rows: &piece.series.rows,
            partial: piece.series_continues,
            has_time: true,
        }];
        let chunk = Piece {
            statement_id,
            series: &one,
            partial: piece.more,
            error: None,
        };
        let text = line(&chunk, req, csv);
        send_bytes(&req.reply, Bytes::from(text))
            .await
            .map_err(|_| StreamEnd::Gone)?;
        sent += piece.series.rows.len() as u64;
    }
    if sent == 0 {
        let empty = Piece {
            statement_id,
            series: &[],
            partial: false,
            error: None,
        };
        let text = line(&empty, req, csv);
        send_bytes(&req.reply, Bytes::from(text))
            .await
            .map_err(|_| StreamEnd::Gone)?;
    }
    Ok(sent)
}

/// `{"results":[piece]}` and a newline, or the piece's CSV rows.
fn line(piece: &Piece<'_>, req: &V1Request, csv: &mut csv::CsvState) -> Vec<u8> {
    if req.format.is_csv() {
        let mut out = Vec::new();
        csv::result(&mut out, csv, piece, req.epoch);
        return out;
    }
    let mut out = b"{\"results\":[".to_vec();
    json::result(&mut out, piece, req.epoch);
    out.extend_from_slice(b"]}");
    let mut out = if req.pretty { json::pretty(&out) } else { out };
    if !req.pretty {
        out.push(b'\n');
    }
    out
}

/// The database a statement reads or changes on its own (`FROM "db".."m"`, `ON db`).
pub fn own_database(stmt: &Statement) -> Option<&str> {
    match stmt {
        Statement::Select(s) | Statement::Explain { select: s, .. } => {
            s.from.iter().find_map(|src| match src {
                Source::Measurement(m) => m.database.as_deref(),
                Source::Subquery(_) => None,
            })
        }
        Statement::Show(s) => show::show_on(s).map(String::as_str),
        Statement::CreateDatabase { name, .. } | Statement::DropDatabase(name) => Some(name),
        Statement::CreateRetentionPolicy { database, .. }
        | Statement::AlterRetentionPolicy { database, .. }
        | Statement::DropRetentionPolicy { database, .. } => Some(database),
        Statement::Delete { from, .. } | Statement::DropSeries { from, .. } => {
            from.iter().find_map(|src| match src {
                Source::Measurement(m) => m.database.as_deref(),
                Source::Subquery(_) => None,
            })
        }
        _ => None,
    }
}

/// The database a statement reads or changes: its own (`FROM "db"."rp"."m"`, `ON db`) or the
/// request's `db`; for a `SELECT`, its retention policy (its own or the request's `rp`) names
/// the database as [`crate::catalog::v1_database`] maps them.
pub fn target_database(
    stmt: &Statement,
    default_db: Option<&str>,
    default_rp: Option<&str>,
) -> Option<String> {
    let db = own_database(stmt)
        .or(default_db)
        .filter(|d| !d.is_empty())?;
    match stmt {
        Statement::Select(s) | Statement::Explain { select: s, .. } => {
            let rp = s
                .from
                .iter()
                .find_map(|src| match src {
                    Source::Measurement(m) => m.policy.as_deref(),
                    Source::Subquery(_) => None,
                })
                .or(default_rp);
            Some(crate::catalog::v1_database(db, rp))
        }
        _ => Some(db.to_string()),
    }
}

/// `select` with the database and policy left out of every source that names `target`, so
/// it reads as a statement of that database (sources naming another one are kept, and refused
/// when it runs).
fn within(
    select: &shardline_influxql::ast::Select,
    target: &str,
    default_db: Option<&str>,
    default_rp: Option<&str>,
) -> shardline_influxql::ast::Select {
    let mut select = select.clone();
    for src in &mut select.from {
        if let Source::Measurement(m) = src {
            let db = m.database.as_deref().or(default_db).unwrap_or_default();
            let rp = m.policy.as_deref().or(default_rp);
            if crate::catalog::v1_database(db, rp) == target {
                m.database = None;
                m.policy = None;
            }
        }
    }
    select
}

/// Runs one statement of `req` against the database it reads or changes.
async fn execute(
    shared: &Shared,
    req: &V1Request,
    stmt: &Statement,
    now: i64,
) -> Result<Answer, InfluxQlError> {
    let default_db = req.database.as_deref();
    let default_rp = req.policy.as_deref();
    let snapshot = shared.catalog.snapshot();
    match stmt {
        Statement::Show(Show::Databases) => {
            let granted = |db: &str| crate::auth::shows_database(req.token.as_deref(), db);
            return Ok(show::databases(&snapshot, &granted));
        }
        Statement::Show(Show::Queries) => return Ok(show::queries(&shared.running.list())),
        Statement::KillQuery { id, .. } => {
            return if shared.running.kill(*id) {
                Ok(Answer::default())
            } else {
                Err(InfluxQlError::Invalid(format!("no such query id: {id}")))
            }
        }
        _ => {}
    }
    if manage::changes_catalog(stmt) {
        return manage::run(&shared.catalog, stmt, default_db).await;
    }
    let name = target_database(stmt, default_db, default_rp)
        .ok_or_else(|| InfluxQlError::Invalid("database name required".into()))?;
    let Some(db) = snapshot.database(&name).cloned() else {
        if let Statement::Show(s) = stmt {
            if !matches!(s, Show::RetentionPolicies { .. }) {
                // 1.x answers schema questions about a missing database with nothing.
                return Ok(Answer {
                    no_time: true,
                    ..Answer::default()
                });
            }
        }
        // `db/rp` of a database that exists: the policy is what is missing.
        if let Some((parent, rp)) = name.rsplit_once('/') {
            if snapshot.database(parent).is_some() {
                return Err(InfluxQlError::Invalid(format!(
                    "retention policy not found: {rp}"
                )));
            }
        }
        return Err(InfluxQlError::Invalid(format!(
            "database not found: {name}"
        )));
    };
    let ctx = session(shared, db.clone());
    match stmt {
        Statement::Select(s) => {
            let s = within(s, &name, default_db, default_rp);
            select::run(&ctx, &db, &db.name, &s, now).await
        }
        Statement::Show(s) => {
            let granted = |name: &str| crate::auth::shows_database(req.token.as_deref(), name);
            show::run(&ctx, &snapshot, &db, s, now, &granted).await
        }
        Statement::Delete { .. } | Statement::DropSeries { .. } => {
            influxql::delete::run(&shared.shards, &db, stmt, now).await
        }
        other => Err(InfluxQlError::NotYet(format!(
            "{} is not run by this server yet",
            influxql::statement_kind(other)
        ))),
    }
}

/// For tests and the shard: whether `stmt` only reads.
pub fn reads_only(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::Select(_) | Statement::Explain { .. } | Statement::Show(_)
    )
}

#[cfg(test)]
mod tests {
    use super::V1Format;

    #[test]
    fn accept_picks_as_1x() {
        let cases = [
            (None, V1Format::Json),
            (Some(""), V1Format::Json),
            (Some("*/*"), V1Format::Json),
            (Some("application/x-msgpack"), V1Format::Msgpack),
            (Some("text/csv"), V1Format::TextCsv),
            (Some("text/*"), V1Format::TextCsv),
            (Some("application/csv, application/json"), V1Format::Csv),
            (
                Some("application/csv;q=0.5, application/json"),
                V1Format::Json,
            ),
            (Some("image/png"), V1Format::Json),
            (
                Some("text/html, application/x-msgpack;q=0.9"),
                V1Format::Msgpack,
            ),
        ];
        for (accept, want) in cases {
            assert_eq!(V1Format::from_accept(accept), want, "{accept:?}");
        }
    }
}
