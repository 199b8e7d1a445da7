//! The write path on the shard that receives a request: parse every line once, check it
//! against the catalog, have the catalog writer add what is new, and split the accepted lines
//! by the shard that owns their series.
//!
//! The steps are types, so they cannot run out of order: a body is [`plan`]ned into a
//! [`WritePlan`] only after every accepted line fits a catalog snapshot that is durable;
//! [`crate::server`] then dispatches the plan's per-owner spans (byte ranges of the shared
//! body, never copies of lines).
//!
//! Catalog changes are the slow path. A first pass checks lines against the current snapshot
//! and gathers the tables and columns that are missing (the first line to use a new column
//! decides its type; later lines that disagree are rejected). If anything is missing, the
//! catalog writer persists it, and a second pass re-checks the whole body against the new
//! snapshot, so lines are judged against exactly what was stored — including columns that a
//! concurrent write created first with another type.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use shardline_shards::lp::{Field, LineParser, Tag, TokenKind};
use shardline_shards::precision::Precision;
use shardline_shards::resolve::{Resolver, SchemaError};
use shardline_shards::rows::ParsedRows;
use shardline_shards::schema::{CatalogSnapshot, ColumnType, TableSchema, TIME_COLUMN};
use shardline_shards::series::{owner_shard, series_hash};

use crate::catalog::{Catalog, CatalogError, SchemaChange, TableChange};

/// At most this many rejected lines are described in an error response.
pub const MAX_REPORTED_REJECTIONS: usize = 100;
/// Longest `original_line` echoed back in an error response.
const MAX_ORIGINAL_LINE_BYTES: usize = 4096;

/// One rejected line, as the error responses show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    pub error_message: String,
    pub line_number: u32,
    pub original_line: String,
}

/// A body checked against a durable catalog: what to write where, and what was rejected.
#[derive(Debug)]
pub struct WritePlan {
    /// The database's id; meaningful only when `accepted > 0` (a database is created by its
    /// first accepted line, so a plan that accepts nothing may name none).
    pub database_id: u32,
    /// For each shard, the byte ranges of the body holding its lines.
    pub per_owner: Vec<Vec<(usize, usize)>>,
    pub accepted: usize,
    /// Bytes of line protocol in the accepted lines.
    pub accepted_bytes: usize,
    /// The first [`MAX_REPORTED_REJECTIONS`] rejected lines, in body order.
    pub rejected: Vec<Rejection>,
    pub rejected_total: usize,
}

impl WritePlan {
    pub fn first_rejection(&self) -> Option<&Rejection> {
        self.rejected.first()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Where the plan is made, and what it keeps for that shard.
#[derive(Debug)]
pub struct LocalShard<'r, 'a> {
    pub id: usize,
    /// The time of lines without a timestamp.
    pub default_time_ns: i64,
    /// Receives the lines this shard owns, parsed and resolved, so they are not parsed again.
    pub rows: &'r mut ParsedRows<'a>,
}

/// Lines checked between looks at whether the shard's other tasks are due.
const CHECK_SLICE_LINES: u32 = 64;

/// Parses and checks `body`, adding new databases, tables and columns to the catalog.
pub async fn plan<'a>(
    catalog: &Catalog,
    body: &'a str,
    database: &str,
    precision: Precision,
    shards: usize,
    mut local: LocalShard<'_, 'a>,
) -> Result<WritePlan, PlanError> {
    let snapshot = catalog.snapshot();
    match check(
        body, &snapshot, database, precision, shards, true, &mut local,
    )
    .await
    {
        Checked::Done(p) => Ok(p),
        Checked::NeedsChange(change) => {
            let snapshot = catalog.apply(change).await?;
            match check(
                body, &snapshot, database, precision, shards, false, &mut local,
            )
            .await
            {
                Checked::Done(p) => Ok(p),
                Checked::NeedsChange(_) => unreachable!("second pass never asks for changes"),
            }
        }
    }
}

enum Checked {
    Done(WritePlan),
    NeedsChange(SchemaChange),
}

#[allow(clippy::too_many_arguments)] // one private function, called twice by `plan`
async fn check<'a>(
    body: &'a str,
    snapshot: &CatalogSnapshot,
    database: &str,
    precision: Precision,
    shards: usize,
    may_change: bool,
    local: &mut LocalShard<'_, 'a>,
) -> Checked {
    local.rows.clear();
    let db = snapshot.database(database);
    let mut plan = WritePlan {
        database_id: db.map_or(u32::MAX, |d| d.id),
        per_owner: vec![Vec::new(); shards],
        accepted: 0,
        accepted_bytes: 0,
        rejected: Vec::new(),
        rejected_total: 0,
    };
    let reject = |plan: &mut WritePlan, start: usize, end: usize, line_number: u32, msg: String| {
        plan.rejected_total += 1;
        if plan.rejected.len() < MAX_REPORTED_REJECTIONS {
            plan.rejected.push(Rejection {
                error_message: msg,
                line_number,
                original_line: truncate_line(&body[start..end]).to_string(),
            });
        }
    };
    let mut parser = LineParser::new(body);
    let mut resolver = Resolver::default();
    let mut overlay = Overlay::default();
    let mut last_table: Option<(&str, Option<&Arc<TableSchema>>)> = None;

    let mut lines_since_yield = 0;
    while let Some(line) = parser.next_line() {
        lines_since_yield += 1;
        if lines_since_yield == CHECK_SLICE_LINES {
            // Lets a query run if this task's time slice is up (a no-op off a shard).
            lines_since_yield = 0;
            glommio::yield_if_needed().await;
        }
        let line = match line {
            Ok(l) => l,
            Err(r) => {
                reject(
                    &mut plan,
                    r.span.start,
                    r.span.end,
                    r.span.line_number,
                    r.error.to_string(),
                );
                continue;
            }
        };
        let span = line.span;
        let time_ns = match line.timestamp.map(|ts| precision.to_nanos(ts)) {
            None => local.default_time_ns,
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                let msg = format!("invalid timestamp: {e}");
                reject(&mut plan, span.start, span.end, span.line_number, msg);
                continue;
            }
        };
        let table = match last_table {
            Some((raw, t))
                if shardline_shards::bytes::short_eq(
                    raw.as_bytes(),
                    line.measurement.raw.as_bytes(),
                ) =>
            {
                t
            }
            _ => {
                let t =
                    db.and_then(|d| d.table(&line.measurement.unescaped(TokenKind::Measurement)));
                last_table = Some((line.measurement.raw, t));
                t
            }
        };
        let resolved = match (db, table) {
            (Some(d), Some(t)) => resolver
                .resolve(d.id, t, parser.tags(), parser.fields())
                .map(|ids| (t.id, ids)),
            _ => Err(SchemaError::Missing {
                name: String::new(),
                ty: ColumnType::Tag,
            }),
        };
        match resolved {
            Ok((table_id, ids)) => {
                let key = local.rows.stage_key(&line.measurement, parser.tags());
                let hash = series_hash(database, key);
                let owner = owner_shard(hash, shards);
                plan.per_owner[owner].push((span.start, span.end));
                plan.accepted += 1;
                plan.accepted_bytes += span.end - span.start;
                if owner == local.id {
                    local
                        .rows
                        .keep_staged(table_id, hash, ids, parser.fields(), time_ns);
                } else {
                    local.rows.discard_staged();
                }
            }
            Err(SchemaError::Missing { name, ty }) => {
                // Judge the line by the same rules in both passes; only the first may ask the
                // catalog for what is missing.
                let m = line.measurement.unescaped(TokenKind::Measurement);
                let added = overlay.add_line(
                    m.clone(),
                    table.map(|t| &**t),
                    parser.tags(),
                    parser.fields(),
                );
                match added {
                    Err(msg) => reject(&mut plan, span.start, span.end, span.line_number, msg),
                    Ok(()) if may_change => {}
                    Ok(()) => {
                        let what = match table {
                            None => format!("table '{m}'"),
                            Some(_) => format!("column '{name}' ({ty})"),
                        };
                        let msg = format!("{what} could not be added to the catalog");
                        reject(&mut plan, span.start, span.end, span.line_number, msg);
                    }
                }
            }
            Err(e) => reject(
                &mut plan,
                span.start,
                span.end,
                span.line_number,
                e.to_string(),
            ),
        }
    }
    if may_change && overlay.pending_lines > 0 {
        return Checked::NeedsChange(overlay.into_change(database));
    }
    Checked::Done(plan)
}

fn truncate_line(s: &str) -> &str {
    if s.len() <= MAX_ORIGINAL_LINE_BYTES {
        return s;
    }
    let mut end = MAX_ORIGINAL_LINE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Tables and columns that lines of this body need and the catalog lacks.
#[derive(Default)]
struct Overlay {
    tables: Vec<TableChange>,
    index: HashMap<String, usize>,
    /// (table, column) → type, for the columns in `tables`.
    types: HashMap<(String, String), ColumnType>,
    pending_lines: usize,
}

impl Overlay {
    /// Adds the columns a line needs, or explains why the line cannot be written.
    fn add_line(
        &mut self,
        table: Cow<'_, str>,
        existing: Option<&TableSchema>,
        tags: &[Tag<'_>],
        fields: &[Field<'_>],
    ) -> Result<(), String> {
        let mut wanted: Vec<(String, ColumnType)> = Vec::with_capacity(tags.len() + fields.len());
        let columns = tags
            .iter()
            .map(|t| (t.key.unescaped(TokenKind::Key), ColumnType::Tag))
            .chain(fields.iter().map(|f| {
                (
                    f.key.unescaped(TokenKind::Key),
                    ColumnType::of_field(&f.value),
                )
            }));
        for (name, ty) in columns {
            if name == TIME_COLUMN {
                return Err(format!(
                    "column name '{TIME_COLUMN}' is reserved for the timestamp"
                ));
            }
            if let Some(c) = existing.and_then(|t| t.column(&name)) {
                if c.ty != ty {
                    return Err(format!(
                        "invalid column type for column '{name}', expected {}, got {ty}",
                        c.ty
                    ));
                }
                continue;
            }
            if let Some(&prev) = self.types.get(&(table.to_string(), name.to_string())) {
                if prev != ty {
                    return Err(format!(
                        "invalid column type for column '{name}', expected {prev} (as an earlier line in this write defined it), got {ty}"
                    ));
                }
                continue;
            }
            if let Some((_, prev)) = wanted.iter().find(|(n, _)| *n == *name) {
                return Err(format!(
                    "column '{name}' is used as both {prev} and {ty} in one line"
                ));
            }
            wanted.push((name.into_owned(), ty));
        }
        let idx = match self.index.get(table.as_ref()) {
            Some(&i) => i,
            None => {
                self.tables.push(TableChange {
                    name: table.to_string(),
                    columns: Vec::new(),
                });
                self.index.insert(table.to_string(), self.tables.len() - 1);
                self.tables.len() - 1
            }
        };
        for (name, ty) in wanted {
            self.types.insert((table.to_string(), name.clone()), ty);
            self.tables[idx].columns.push((name, ty));
        }
        self.pending_lines += 1;
        Ok(())
    }

    fn into_change(self, database: &str) -> SchemaChange {
        SchemaChange {
            database: database.to_string(),
            tables: self.tables,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(catalog: &Catalog, body: &str, shards: usize) -> WritePlan {
        let mut rows = ParsedRows::default();
        let local = LocalShard {
            id: 0,
            default_time_ns: 0,
            rows: &mut rows,
        };
        let p = futures_lite::future::block_on(plan(
            catalog,
            body,
            "db",
            Precision::Nanosecond,
            shards,
            local,
        ))
        .unwrap();
        assert_eq!(
            rows.len(),
            p.per_owner[0].len(),
            "shard 0 keeps exactly its own lines, parsed"
        );
        p
    }

    #[test]
    fn new_schema_is_created_and_conflicts_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        let p = run(
            &catalog,
            "cpu,host=a v=1\ncpu,host=b v=2i\ncpu v=3,host=\"x\"\nmem,time=x v=1\n",
            2,
        );
        assert_eq!(p.accepted, 1);
        let msgs: Vec<_> = p
            .rejected
            .iter()
            .map(|r| (r.line_number, r.error_message.clone()))
            .collect();
        assert_eq!(msgs[0].0, 2);
        assert!(
            msgs[0].1.contains("'v'") && msgs[0].1.contains("float") && msgs[0].1.contains("int"),
            "{msgs:?}"
        );
        assert_eq!(msgs[1].0, 3);
        assert!(
            msgs[1].1.contains("'host'")
                && msgs[1].1.contains("tag")
                && msgs[1].1.contains("string"),
            "{msgs:?}"
        );
        assert!(msgs[2].1.contains("reserved"), "{msgs:?}");
        // The stored type now rejects lines of later writes too.
        let p = run(&catalog, "cpu v=\"s\"\n", 2);
        assert_eq!((p.accepted, p.rejected_total), (0, 1));
        assert!(p.rejected[0]
            .error_message
            .contains("expected float, got string"));
    }

    #[test]
    fn lines_are_split_by_owner_without_copies() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        let body: String = (0..100).map(|i| format!("cpu,host=h{i} v={i}\n")).collect();
        let p = run(&catalog, &body, 4);
        assert_eq!(p.accepted, 100);
        assert_eq!(p.per_owner.iter().map(Vec::len).sum::<usize>(), 100);
        assert!(p.per_owner.iter().all(|o| !o.is_empty()));
        for (s, e) in p.per_owner.iter().flatten() {
            assert!(body[*s..*e].starts_with("cpu,host=h"));
        }
    }
}
