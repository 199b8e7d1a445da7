//! What a statement's names refer to: measurements (by name or regex) and, in each, which
//! names are tags and which are fields of which type.
//!
//! Invariants: measurements come out sorted by name without repeats; a name that is neither
//! a tag nor a field of a measurement resolves to [`Column::Missing`], which reads as null
//! (as 1.x treats it), never as an error.

use std::sync::Arc;

use regex::Regex;
use shardline_influxql::ast::{MeasurementName, Source, VarType};
use shardline_shards::schema::{ColumnType, DbSchema, TableSchema, TIME_COLUMN};

use super::InfluxQlError;

/// A measurement a statement reads.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub table: Arc<TableSchema>,
    /// Tag names, sorted.
    pub tags: Vec<String>,
    /// Field names and types, sorted by name.
    pub fields: Vec<(String, ColumnType)>,
}

/// What a name in a statement is, in one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Time,
    Tag,
    Field(ColumnType),
    Missing,
}

impl Measurement {
    pub fn of(table: &Arc<TableSchema>) -> Measurement {
        let mut tags = Vec::new();
        let mut fields = Vec::new();
        for c in table.columns_in_order() {
            match c.ty {
                ColumnType::Tag => tags.push(c.name.to_string()),
                ColumnType::Time => {}
                ty => fields.push((c.name.to_string(), ty)),
            }
        }
        Measurement {
            table: table.clone(),
            tags,
            fields,
        }
    }

    pub fn name(&self) -> &str {
        &self.table.name
    }

    /// What `name` (cast to `ty`, if written) is here.
    pub fn column(&self, name: &str, ty: Option<VarType>) -> Column {
        if name == TIME_COLUMN {
            return Column::Time;
        }
        let found = self.table.column(name).map(|c| c.ty);
        match (found, ty) {
            (Some(ColumnType::Tag), None | Some(VarType::Tag)) => Column::Tag,
            (Some(ColumnType::Tag), Some(_)) => Column::Missing,
            (Some(ColumnType::Time), _) => Column::Time,
            (Some(t), None | Some(VarType::Field)) => Column::Field(t),
            (Some(t), Some(cast)) if cast_fits(t, cast) => Column::Field(t),
            _ => Column::Missing,
        }
    }
}

/// Whether a field of type `t` may be read as `cast` (1.x answers null otherwise).
fn cast_fits(t: ColumnType, cast: VarType) -> bool {
    matches!(
        (t, cast),
        (ColumnType::Float, VarType::Float | VarType::Integer)
            | (ColumnType::Int, VarType::Integer | VarType::Float)
            | (
                ColumnType::UInt,
                VarType::Unsigned | VarType::Float | VarType::Integer
            )
            | (ColumnType::String, VarType::String)
            | (ColumnType::Bool, VarType::Boolean)
    )
}

/// A regex from a pattern the parser has checked; `(?s)` is not added: 1.x matches as Go
/// does, unanchored.
pub fn regex(pattern: &str) -> Result<Regex, InfluxQlError> {
    Regex::new(pattern).map_err(|e| InfluxQlError::Invalid(format!("invalid regex: {e}")))
}

/// The measurements `from` names in `db` (subqueries are the caller's).
pub fn measurements(
    db: &DbSchema,
    query_db: &str,
    from: &[Source],
) -> Result<Vec<Measurement>, InfluxQlError> {
    let mut out: Vec<Arc<TableSchema>> = Vec::new();
    for s in from {
        let Source::Measurement(m) = s else {
            return Err(InfluxQlError::NotYet(
                "subqueries in FROM are not supported yet".into(),
            ));
        };
        if let Some(other) = m.database.as_deref().filter(|d| *d != query_db) {
            return Err(InfluxQlError::NotYet(format!(
                "reading another database ({other}) than the query's ({query_db}) is not supported"
            )));
        }
        match &m.name {
            MeasurementName::Name(n) => {
                if let Some(t) = db.table(n) {
                    if t.deleted_at_ns.is_none() {
                        out.push(t.clone());
                    }
                }
            }
            MeasurementName::Regex(p) => {
                let re = regex(p)?;
                out.extend(db.live_tables().filter(|t| re.is_match(&t.name)).cloned());
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out.iter().map(Measurement::of).collect())
}
