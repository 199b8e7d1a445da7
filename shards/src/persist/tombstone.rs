//! Deletions of persisted rows (`DELETE`, `DROP SERIES`): tombstones in a shard's manifest
//! that hide the rows they match from the files written before them, until those files are
//! rewritten without the rows.
//!
//! A deletion reaches a shard as a snapshot: the shard freezes its buffer (rotating the WAL)
//! and persists it with a manifest that also lists the tombstone, stamped with the WAL
//! segment the freeze covered. So every row written before the deletion is in a file that
//! the tombstone covers, and every row written after it is in the buffer or in a later file,
//! which it does not. Invariants:
//! - A tombstone covers a file of its database and table overlapping its time range that
//!   was written before it: of an earlier layout epoch, or of its epoch holding no WAL
//!   segment newer than the one it was stamped with — and that has not had it applied.
//! - Files written from the shard's own manifest record the newest tombstone applied to
//!   their rows (`deletes_applied`); ids of tombstones only grow within a manifest, so a
//!   rewritten file is no longer covered, and a tombstone covering no file can go.
//! - A row is deleted when its time is in the tombstone's range and its tags match the
//!   predicate, a missing tag reading as the empty string (as InfluxQL compares tags).

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{ArrowError, DataType};
use serde::{Deserialize, Serialize};

use super::manifest::{Manifest, ParquetFile};

/// One deletion, as a shard keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Unique and increasing within a manifest (assigned when the shard records it).
    pub id: u64,
    pub database_id: u32,
    pub table_id: u32,
    /// Inclusive bounds of the times deleted.
    pub min_time: i64,
    pub max_time: i64,
    pub predicate: TagPredicate,
    /// The layout epoch and the shard's newest WAL segment when it was recorded.
    pub epoch: u64,
    pub wal_covered: u64,
}

/// Which series a deletion takes: a condition on tags only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagPredicate {
    /// Every series.
    All,
    /// `tag = value` (or `!=` when negated).
    Equals {
        tag: String,
        value: String,
        negated: bool,
    },
    /// `tag =~ /pattern/` (or `!~` when negated); `regex` crate syntax.
    Matches {
        tag: String,
        pattern: String,
        negated: bool,
    },
    And(Box<TagPredicate>, Box<TagPredicate>),
    Or(Box<TagPredicate>, Box<TagPredicate>),
}

impl TagPredicate {
    /// The tags it reads, each once.
    pub fn tags(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_tags(&mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    fn collect_tags<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            TagPredicate::All => {}
            TagPredicate::Equals { tag, .. } | TagPredicate::Matches { tag, .. } => out.push(tag),
            TagPredicate::And(a, b) | TagPredicate::Or(a, b) => {
                a.collect_tags(out);
                b.collect_tags(out);
            }
        }
    }

    /// A pattern that does not compile (only possible in a hand-edited manifest: deletions
    /// are checked before they are recorded).
    pub fn check(&self) -> Result<(), String> {
        match self {
            TagPredicate::Matches { pattern, .. } => regex::Regex::new(pattern)
                .map(|_| ())
                .map_err(|e| format!("invalid regular expression {pattern:?}: {e}")),
            TagPredicate::And(a, b) | TagPredicate::Or(a, b) => {
                a.check()?;
                b.check()
            }
            _ => Ok(()),
        }
    }

    /// Whether each row of `batch` matches, tags read from its columns by name.
    fn eval(&self, batch: &RecordBatch) -> Result<Vec<bool>, ArrowError> {
        let rows = batch.num_rows();
        Ok(match self {
            TagPredicate::All => vec![true; rows],
            TagPredicate::Equals {
                tag,
                value,
                negated,
            } => tag_values(batch, tag, |v| (v == value) != *negated)?,
            TagPredicate::Matches {
                tag,
                pattern,
                negated,
            } => {
                let re = regex::Regex::new(pattern)
                    .map_err(|e| ArrowError::InvalidArgumentError(e.to_string()))?;
                tag_values(batch, tag, |v| re.is_match(v) != *negated)?
            }
            TagPredicate::And(a, b) => {
                let (a, b) = (a.eval(batch)?, b.eval(batch)?);
                a.iter().zip(b).map(|(x, y)| *x && y).collect()
            }
            TagPredicate::Or(a, b) => {
                let (a, b) = (a.eval(batch)?, b.eval(batch)?);
                a.iter().zip(b).map(|(x, y)| *x || y).collect()
            }
        })
    }
}

/// `test` of each row's value of tag `name` ('' where missing or the column is absent).
fn tag_values(
    batch: &RecordBatch,
    name: &str,
    test: impl Fn(&str) -> bool,
) -> Result<Vec<bool>, ArrowError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(vec![test(""); batch.num_rows()]);
    };
    let col = arrow_cast::cast(col, &DataType::Utf8View)?;
    let strings = col.as_string_view();
    Ok((0..strings.len())
        .map(|i| {
            test(if strings.is_null(i) {
                ""
            } else {
                strings.value(i)
            })
        })
        .collect())
}

impl Tombstone {
    /// Whether it hides rows of `file`. `same_manifest`: the file is listed by the manifest
    /// holding this tombstone, so its `deletes_applied` counts in this tombstone's ids.
    pub fn covers(&self, file: &ParquetFile, same_manifest: bool) -> bool {
        let applied = if same_manifest {
            file.deletes_applied
        } else {
            0
        };
        file.database_id == self.database_id
            && file.table_id == self.table_id
            && file.overlaps(self.min_time, self.max_time)
            && applied < self.id
            && (file.epoch < self.epoch
                || (file.epoch == self.epoch && file.wal_max <= self.wal_covered))
    }

    /// The columns deciding whether a row goes: `time` and the predicate's tags.
    pub fn columns(&self) -> Vec<&str> {
        let mut c = self.predicate.tags();
        c.push("time");
        c
    }
}

/// Indices of `manifest`'s files that a tombstone of its own covers: the ones for the
/// background to rewrite without their deleted rows.
pub fn covered_files(manifest: &Manifest) -> impl Iterator<Item = usize> + '_ {
    manifest
        .files
        .iter()
        .enumerate()
        .filter(|(_, f)| manifest.tombstones.iter().any(|t| t.covers(f, true)))
        .map(|(i, _)| i)
}

/// For each row of `batch` (with a `time` column and the tombstones' tags), whether it is
/// kept: `None` when every row is.
pub fn kept_rows(
    tombstones: &[Tombstone],
    batch: &RecordBatch,
) -> Result<Option<BooleanArray>, ArrowError> {
    if tombstones.is_empty() || batch.num_rows() == 0 {
        return Ok(None);
    }
    let time = batch
        .column_by_name("time")
        .ok_or_else(|| ArrowError::SchemaError("a batch to delete from has no time".into()))?;
    let time = arrow_cast::cast(
        time,
        &DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None),
    )?;
    let time = time.as_primitive::<arrow_array::types::TimestampNanosecondType>();
    let mut keep = vec![true; batch.num_rows()];
    for t in tombstones {
        let in_range: Vec<bool> = (0..time.len())
            .map(|i| !time.is_null(i) && (t.min_time..=t.max_time).contains(&time.value(i)))
            .collect();
        if !in_range.contains(&true) {
            continue;
        }
        let matched = t.predicate.eval(batch)?;
        for (k, (r, m)) in keep.iter_mut().zip(in_range.iter().zip(matched)) {
            if *r && m {
                *k = false;
            }
        }
    }
    Ok(if keep.iter().all(|&k| k) {
        None
    } else {
        Some(BooleanArray::from(keep))
    })
}

/// `batch` without the rows `tombstones` delete.
pub fn without_deleted(
    tombstones: &[Tombstone],
    batch: RecordBatch,
) -> Result<RecordBatch, ArrowError> {
    match kept_rows(tombstones, &batch)? {
        Some(keep) => arrow_select::filter::filter_record_batch(&batch, &keep),
        None => Ok(batch),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, StringArray, TimestampNanosecondArray};
    use arrow_schema::{Field, Schema, TimeUnit};

    use super::*;

    fn batch() -> RecordBatch {
        let host: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            Some("b"),
            None,
            Some("a"),
        ]));
        let time: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1, 2, 3, 40]));
        let schema = Schema::new(vec![
            Field::new("host", DataType::Utf8, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![host, time]).unwrap()
    }

    fn stone(min: i64, max: i64, predicate: TagPredicate) -> Tombstone {
        Tombstone {
            id: 1,
            database_id: 0,
            table_id: 0,
            min_time: min,
            max_time: max,
            predicate,
            epoch: 0,
            wal_covered: 5,
        }
    }

    fn kept(stones: &[Tombstone]) -> Vec<bool> {
        match kept_rows(stones, &batch()).unwrap() {
            Some(k) => k.iter().map(|v| v.unwrap()).collect(),
            None => vec![true; 4],
        }
    }

    fn eq(tag: &str, value: &str, negated: bool) -> TagPredicate {
        TagPredicate::Equals {
            tag: tag.into(),
            value: value.into(),
            negated,
        }
    }

    #[test]
    fn rows_go_when_time_and_tags_match() {
        assert_eq!(
            kept(&[stone(0, 10, eq("host", "a", false))]),
            [false, true, true, true]
        );
        assert_eq!(
            kept(&[stone(i64::MIN, i64::MAX, TagPredicate::All)]),
            [false; 4]
        );
        // A missing tag reads as '': `host = ''` takes it, `host != 'a'` too.
        assert_eq!(
            kept(&[stone(0, 100, eq("host", "", false))]),
            [true, true, false, true]
        );
        assert_eq!(
            kept(&[stone(0, 100, eq("host", "a", true))]),
            [true, false, false, true]
        );
        // A tag the batch lacks is '' on every row.
        assert_eq!(kept(&[stone(0, 100, eq("region", "x", false))]), [true; 4]);
        let re = TagPredicate::Matches {
            tag: "host".into(),
            pattern: "^(a|b)$".into(),
            negated: false,
        };
        let or = TagPredicate::Or(Box::new(re.clone()), Box::new(eq("host", "", false)));
        assert_eq!(kept(&[stone(2, 100, or)]), [true, false, false, false]);
        let and = TagPredicate::And(Box::new(re), Box::new(eq("host", "b", true)));
        assert_eq!(kept(&[stone(0, 100, and)]), [false, true, true, false]);
        // Several tombstones: a row goes when any takes it.
        assert_eq!(
            kept(&[
                stone(0, 1, TagPredicate::All),
                stone(40, 40, TagPredicate::All)
            ]),
            [false, true, true, false]
        );
    }

    fn file(epoch: u64, wal_max: u64, applied: u64) -> ParquetFile {
        ParquetFile {
            id: 1,
            path: "p".into(),
            database_id: 0,
            table_id: 0,
            table_name: "m".into(),
            size_bytes: 1,
            row_count: 1,
            min_time: 0,
            max_time: 10,
            shard_count: 1,
            shard_index: 0,
            epoch,
            sort_id: None,
            wal_max,
            deletes_applied: applied,
        }
    }

    #[test]
    fn a_tombstone_covers_only_files_written_before_it_and_not_yet_rewritten() {
        let mut t = stone(0, 10, TagPredicate::All);
        t.epoch = 2;
        assert!(t.covers(&file(2, 5, 0), true));
        assert!(!t.covers(&file(2, 6, 0), true), "holds later writes");
        assert!(t.covers(&file(1, 99, 0), true), "an earlier layout");
        assert!(!t.covers(&file(3, 0, 0), true), "a later layout");
        assert!(!t.covers(&file(2, 5, 1), true), "already applied");
        assert!(
            t.covers(&file(2, 5, 1), false),
            "another manifest's ids say nothing of this one's"
        );
        let mut other_table = file(2, 5, 0);
        other_table.table_id = 9;
        assert!(!t.covers(&other_table, true));
        t.min_time = 11;
        t.max_time = 20;
        assert!(!t.covers(&file(2, 5, 0), true), "outside its time range");
    }
}
