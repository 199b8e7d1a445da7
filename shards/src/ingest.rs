//! Applying validated lines to a shard's buffer: the step after the WAL, live and on replay.
//!
//! The lines arrive as a [`WalBatch`]'s text (each line as the client wrote it) and are parsed
//! again here; the receiving shard has already checked every one against the catalog. A line
//! that no longer fits (only possible if the catalog was lost or edited by hand) is counted and
//! skipped, never a panic.

use std::sync::Arc;

use crate::buffer::{RowInput, ShardBuffer};
use crate::lp::{LineParser, TokenKind};
use crate::resolve::Resolver;
use crate::schema::{CatalogSnapshot, DbSchema, TableSchema};
use crate::series::{series_hash, SeriesKeyBuf};
use crate::wal::WalBatch;

/// What applying a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyStats {
    pub applied: u64,
    /// Lines that belong to another shard (replay after a change of shard count).
    pub not_owned: u64,
    /// Lines that did not parse or fit the catalog (should be zero).
    pub skipped: u64,
}

impl std::ops::AddAssign for ApplyStats {
    fn add_assign(&mut self, o: Self) {
        self.applied += o.applied;
        self.not_owned += o.not_owned;
        self.skipped += o.skipped;
    }
}

/// What every line of a batch shares: its database, timestamp unit and default time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub database_id: u32,
    pub precision: crate::precision::Precision,
    /// The time given to lines that carry no timestamp.
    pub default_time_ns: i64,
}

/// Reusable state for applying lines (no allocation per line once warm).
#[derive(Debug, Default)]
pub struct Applier {
    resolver: Resolver,
    key: SeriesKeyBuf,
}

impl Applier {
    /// Applies the lines of `batch` whose series `owns` accepts.
    pub fn apply(
        &mut self,
        buffer: &mut ShardBuffer,
        catalog: &CatalogSnapshot,
        batch: &WalBatch<'_>,
        owns: impl FnMut(u64) -> bool,
    ) -> ApplyStats {
        let header = BatchHeader {
            database_id: batch.database_id,
            precision: batch.precision,
            default_time_ns: batch.default_time_ns,
        };
        self.apply_chunks(buffer, catalog, &header, std::iter::once(batch.lines), owns)
    }

    /// Applies lines given as several chunks of text (each holding whole lines). Used live,
    /// where a request's lines for this shard are spans of the request body.
    pub fn apply_chunks<'a>(
        &mut self,
        buffer: &mut ShardBuffer,
        catalog: &CatalogSnapshot,
        batch: &BatchHeader,
        chunks: impl IntoIterator<Item = &'a str>,
        mut owns: impl FnMut(u64) -> bool,
    ) -> ApplyStats {
        let mut stats = ApplyStats::default();
        let Some(db) = catalog.database_by_id(batch.database_id) else {
            tracing::error!(
                database_id = batch.database_id,
                "lines for a database missing from the catalog; skipped"
            );
            stats.skipped = chunks.into_iter().map(|c| c.lines().count() as u64).sum();
            return stats;
        };
        let db: &Arc<DbSchema> = db;
        let mut parser = LineParser::new("");
        let mut last_table: Option<(&str, &Arc<TableSchema>)> = None;
        for chunk in chunks {
            parser.reset(chunk);
            while let Some(line) = parser.next_line() {
                let Ok(line) = line else {
                    stats.skipped += 1;
                    continue;
                };
                let table = match last_table {
                    Some((raw, t)) if raw == line.measurement.raw => t,
                    _ => match db.table(&line.measurement.unescaped(TokenKind::Measurement)) {
                        Some(t) => {
                            last_table = Some((line.measurement.raw, t));
                            t
                        }
                        None => {
                            stats.skipped += 1;
                            continue;
                        }
                    },
                };
                let key = self.key.build(&line.measurement, parser.tags());
                let hash = series_hash(&db.name, key);
                if !owns(hash) {
                    stats.not_owned += 1;
                    continue;
                }
                let time_ns = match line.timestamp {
                    Some(ts) => match batch.precision.to_nanos(ts) {
                        Ok(t) => t,
                        Err(_) => {
                            stats.skipped += 1;
                            continue;
                        }
                    },
                    None => batch.default_time_ns,
                };
                let Ok(ids) = self
                    .resolver
                    .resolve(db.id, table, parser.tags(), parser.fields())
                else {
                    stats.skipped += 1;
                    continue;
                };
                let ntags = parser.tags().len();
                buffer.table_mut(db.id, table.id).append(
                    table,
                    RowInput {
                        series_hash: hash,
                        series_key: key,
                        tag_columns: &ids[..ntags],
                        fields: parser
                            .fields()
                            .iter()
                            .zip(&ids[ntags..])
                            .map(|(f, &c)| (c, f.value)),
                        time_ns,
                    },
                );
                stats.applied += 1;
            }
        }
        if stats.skipped > 0 {
            tracing::error!(database = %db.name, skipped = stats.skipped, "WAL lines did not fit the catalog and were skipped");
        }
        stats
    }
}
