//! `DELETE` and `DROP SERIES`: a statement becomes one tombstone per measurement it names
//! (every measurement of the database without `FROM`), recorded by every shard; the
//! statement answers once every shard has them durable, and from then on no query sees the
//! rows (see `shardline_shards::persist::tombstone` for how they stay hidden and go).
//!
//! As 1.x: the condition may compare tags (`=`, `!=`, `=~`, `!~`, `AND`, `OR`) and, for
//! `DELETE` only, `time`; a field in it is refused; `DROP SERIES` takes every time.

use shardline_influxql::ast::{BinaryOp, Expr, MeasurementName, Source, Statement};
use shardline_shards::persist::{TagPredicate, Tombstone};
use shardline_shards::schema::{ColumnType, DbSchema, TableSchema};

use super::time_range;
use super::{Answer, InfluxQlError};
use crate::query::ShardHandles;

/// Runs a `DELETE` or `DROP SERIES` against `db`.
pub async fn run(
    shards: &ShardHandles,
    db: &DbSchema,
    stmt: &Statement,
    now: i64,
) -> Result<Answer, InfluxQlError> {
    let tombstones = tombstones(db, stmt, now)?;
    if !tombstones.is_empty() {
        shards.delete(tombstones).await.map_err(|e| {
            InfluxQlError::Engine(datafusion::error::DataFusionError::External(Box::new(e)))
        })?;
    }
    Ok(Answer::default())
}

/// The tombstones `stmt` makes in `db` (none when it matches no measurement or no time).
pub fn tombstones(
    db: &DbSchema,
    stmt: &Statement,
    now: i64,
) -> Result<Vec<Tombstone>, InfluxQlError> {
    let (from, condition, drop_series) = match stmt {
        Statement::Delete { from, condition } => (from, condition, false),
        Statement::DropSeries { from, condition } => (from, condition, true),
        _ => {
            return Err(InfluxQlError::Invalid(
                "not a DELETE or DROP SERIES statement (this is a bug)".into(),
            ))
        }
    };
    if drop_series && from.is_empty() && condition.is_none() {
        // 1.x's parser requires one of them.
        return Err(InfluxQlError::Invalid(
            "DROP SERIES requires a FROM or WHERE clause".into(),
        ));
    }
    let (range, rest) = time_range::split(condition.as_ref(), now, None)?;
    if drop_series && (range.has_min || range.has_max) {
        return Err(InfluxQlError::Invalid(
            "DROP SERIES doesn't support time in WHERE clause".into(),
        ));
    }
    let tables = measurements(db, from)?;
    let mut out = Vec::new();
    for table in tables {
        let predicate = match &rest {
            Some(e) => predicate(e, &table)?,
            None => TagPredicate::All,
        };
        if range.is_empty() {
            continue;
        }
        out.push(Tombstone {
            id: 0,
            database_id: db.id,
            table_id: table.id,
            min_time: range.min,
            max_time: range.max,
            predicate,
            epoch: 0,
            wal_covered: 0,
        });
    }
    Ok(out)
}

/// The live measurements `from` names (all of them when empty).
fn measurements(
    db: &DbSchema,
    from: &[Source],
) -> Result<Vec<std::sync::Arc<TableSchema>>, InfluxQlError> {
    if from.is_empty() {
        return Ok(db.live_tables().cloned().collect());
    }
    let mut out: Vec<std::sync::Arc<TableSchema>> = Vec::new();
    for src in from {
        let Source::Measurement(m) = src else {
            return Err(InfluxQlError::Invalid(
                "a subquery cannot be deleted from".into(),
            ));
        };
        match &m.name {
            MeasurementName::Name(n) => {
                if let Some(t) = db.table(n).filter(|t| db.deleted_at(t).is_none()) {
                    out.push(t.clone());
                }
            }
            MeasurementName::Regex(p) => {
                let re = super::resolve::regex(p)?;
                out.extend(db.live_tables().filter(|t| re.is_match(&t.name)).cloned());
            }
        }
    }
    out.sort_by_key(|t| t.id);
    out.dedup_by_key(|t| t.id);
    Ok(out)
}

/// A condition on tags as a tombstone's predicate.
fn predicate(e: &Expr, table: &TableSchema) -> Result<TagPredicate, InfluxQlError> {
    let bad = || InfluxQlError::Invalid(format!("invalid expression in deletion condition: {e}"));
    let Expr::Binary { op, lhs, rhs } = e.unparen() else {
        return Err(bad());
    };
    match op {
        BinaryOp::And | BinaryOp::Or => {
            let (a, b) = (predicate(lhs, table)?, predicate(rhs, table)?);
            return Ok(match op {
                BinaryOp::And => TagPredicate::And(Box::new(a), Box::new(b)),
                _ => TagPredicate::Or(Box::new(a), Box::new(b)),
            });
        }
        _ => {}
    }
    // The tag may be on either side.
    let (tag, other) = match (lhs.unparen(), rhs.unparen()) {
        (Expr::Var { name, .. }, other) | (other, Expr::Var { name, .. }) => (name, other),
        _ => return Err(bad()),
    };
    if table
        .column(tag)
        .is_some_and(|c| !matches!(c.ty, ColumnType::Tag))
    {
        return Err(InfluxQlError::Invalid(
            "fields not supported in WHERE clause during deletion".into(),
        ));
    }
    let tag = tag.clone();
    Ok(match (op, other) {
        (BinaryOp::Eq | BinaryOp::NotEq, Expr::Str(value)) => TagPredicate::Equals {
            tag,
            value: value.clone(),
            negated: *op == BinaryOp::NotEq,
        },
        (BinaryOp::EqRegex | BinaryOp::NotEqRegex, Expr::Regex(pattern)) => {
            super::resolve::regex(pattern)?;
            TagPredicate::Matches {
                tag,
                pattern: pattern.clone(),
                negated: *op == BinaryOp::NotEqRegex,
            }
        }
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(q: &str) -> Statement {
        shardline_influxql::parse_statement(q).expect("parses")
    }

    fn db() -> DbSchema {
        use std::sync::Arc;
        let cpu = TableSchema::with_columns(
            0,
            "cpu",
            &[
                ("host", ColumnType::Tag),
                ("region", ColumnType::Tag),
                ("usage", ColumnType::Float),
                ("time", ColumnType::Time),
            ],
        );
        let mem = TableSchema::with_columns(
            1,
            "mem",
            &[("host", ColumnType::Tag), ("time", ColumnType::Time)],
        );
        DbSchema::new(0, Arc::from("db"), vec![Arc::new(cpu), Arc::new(mem)])
    }

    #[test]
    fn conditions_become_tag_predicates_and_time_ranges() {
        let db = db();
        let t = tombstones(
            &db,
            &stmt("DELETE FROM cpu WHERE host = 'a' AND (region =~ /^r/ OR region != 'x') AND time < 100"),
            0,
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].max_time, 99);
        assert_eq!(t[0].min_time, time_range::MIN_TIME);
        assert!(matches!(t[0].predicate, TagPredicate::And(..)));
        // Without FROM: every measurement.
        let all = tombstones(&db, &stmt("DELETE WHERE time > 5"), 0).unwrap();
        assert_eq!(all.len(), 2);
        let regex = tombstones(&db, &stmt("DROP SERIES FROM /^m/"), 0).unwrap();
        assert_eq!(regex.len(), 1);
        assert_eq!(regex[0].predicate, TagPredicate::All);
        assert!(tombstones(&db, &stmt("DELETE FROM nope"), 0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn fields_and_time_in_drop_series_are_refused_as_1x_does() {
        let db = db();
        let err = |q: &str| tombstones(&db, &stmt(q), 0).unwrap_err().to_string();
        assert_eq!(
            err("DELETE FROM cpu WHERE usage = 1"),
            "fields not supported in WHERE clause during deletion"
        );
        assert_eq!(
            err("DROP SERIES FROM cpu WHERE time < 10"),
            "DROP SERIES doesn't support time in WHERE clause"
        );
    }
}
