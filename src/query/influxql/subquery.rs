//! Subqueries: the inner statement's answer read as measurements of their own, whose tags
//! are the inner `GROUP BY` tags and whose fields are the inner columns, so the outer
//! statement is evaluated over them exactly as over a table.
//!
//! Invariants: the outer `WHERE` is applied here, to the inner rows (its time range and
//! its condition, with 1.x's tag semantics: a missing tag is ''); the outer series are the
//! inner rows regrouped by the outer `GROUP BY` tags, in time order (inner series merged).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use regex::Regex;
use shardline_influxql::ast::{BinaryOp, Expr};
use shardline_shards::schema::{ColumnType, TableSchema};

use super::eval::{constant, SeriesData};
use super::resolve::{self, Column, Measurement};
use super::time_range::TimeRange;
use super::values::V;
use super::{Answer, InfluxQlError};

/// One inner row: its time, its values of the measurement's tags and fields (in the order
/// of [`Measurement::tags`] and [`Measurement::fields`]).
#[derive(Debug, Clone)]
pub struct Row {
    time: i64,
    tags: Vec<Option<Arc<str>>>,
    fields: Vec<V>,
}

fn type_of(v: &V) -> Option<ColumnType> {
    Some(match v {
        V::F(_) => ColumnType::Float,
        V::I(_) => ColumnType::Int,
        V::U(_) => ColumnType::UInt,
        V::S(_) => ColumnType::String,
        V::B(_) => ColumnType::Bool,
        V::Null => return None,
    })
}

/// The inner answers as measurements with their rows.
pub fn measurements(inner: Vec<Answer>) -> Vec<(Measurement, Vec<Row>)> {
    let mut by_name: BTreeMap<String, Vec<super::SeriesRows>> = BTreeMap::new();
    for a in inner {
        for s in a.series {
            by_name.entry(s.measurement.clone()).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for (name, series) in by_name {
        let mut tags: Vec<String> = series
            .iter()
            .flat_map(|s| s.tags.iter().map(|(t, _)| t.clone()))
            .collect();
        tags.sort();
        tags.dedup();
        let mut fields: Vec<(String, ColumnType)> = Vec::new();
        for s in &series {
            for (i, c) in s.columns.iter().enumerate() {
                if tags.contains(c) || fields.iter().any(|(f, _)| f == c) {
                    continue;
                }
                let ty = s
                    .rows
                    .iter()
                    .find_map(|(_, vs)| type_of(&vs[i]))
                    .unwrap_or(ColumnType::Float);
                fields.push((c.clone(), ty));
            }
        }
        let mut cols: Vec<(&str, ColumnType)> =
            tags.iter().map(|t| (t.as_str(), ColumnType::Tag)).collect();
        cols.extend(fields.iter().map(|(f, ty)| (f.as_str(), *ty)));
        cols.push(("time", ColumnType::Time));
        let table = Arc::new(TableSchema::with_columns(0, &name, &cols));
        let m = Measurement::of(&table);
        let mut rows = Vec::new();
        for s in &series {
            let tag_values: Vec<Option<Arc<str>>> = m
                .tags
                .iter()
                .map(|t| {
                    s.tags
                        .iter()
                        .find(|(n, _)| n == t)
                        .and_then(|(_, v)| v.clone())
                })
                .collect();
            let at: Vec<Option<usize>> = m
                .fields
                .iter()
                .map(|(f, _)| s.columns.iter().position(|c| c == f))
                .collect();
            for (t, vs) in &s.rows {
                rows.push(Row {
                    time: *t,
                    tags: tag_values.clone(),
                    fields: at
                        .iter()
                        .map(|i| i.map_or(V::Null, |i| vs[i].clone()))
                        .collect(),
                });
            }
        }
        out.push((m, rows));
    }
    out
}

/// The rows in `range` matching `cond`, grouped into series by `group` tags, each in time
/// order, with the values of the `read` columns.
pub fn series(
    rows: &[Row],
    m: &Measurement,
    group: &[String],
    read: &[(String, Column)],
    range: &TimeRange,
    cond: Option<&Expr>,
) -> Result<Vec<SeriesData>, InfluxQlError> {
    let mut regexes = HashMap::new();
    if let Some(c) = cond {
        compile(c, &mut regexes)?;
    }
    let tag_index = |t: &str| m.tags.iter().position(|x| x == t);
    let field_index = |f: &str| m.fields.iter().position(|(x, _)| x == f);
    let mut groups: BTreeMap<super::values::SeriesKey, super::values::Rows> = BTreeMap::new();
    for r in rows {
        if r.time < range.min || r.time > range.max {
            continue;
        }
        if let Some(c) = cond {
            if !holds(c, m, r, &regexes) {
                continue;
            }
        }
        let key: Vec<Option<Arc<str>>> = group
            .iter()
            .map(|g| tag_index(g).and_then(|i| r.tags[i].clone()))
            .collect();
        let values: Vec<V> = read
            .iter()
            .map(|(name, col)| match col {
                Column::Tag => tag_index(name)
                    .and_then(|i| r.tags[i].clone())
                    .map_or(V::Null, V::S),
                _ => field_index(name).map_or(V::Null, |i| r.fields[i].clone()),
            })
            .collect();
        groups.entry(key).or_default().push((r.time, values));
    }
    Ok(groups
        .into_iter()
        .map(|(key, mut points)| {
            points.sort_by_key(|(t, _)| *t);
            let mut cols = vec![Vec::with_capacity(points.len()); read.len()];
            let mut times = Vec::with_capacity(points.len());
            for (t, vs) in points {
                times.push(t);
                for (c, v) in cols.iter_mut().zip(vs) {
                    c.push(v);
                }
            }
            SeriesData { key, times, cols }
        })
        .collect())
}

fn compile(e: &Expr, out: &mut HashMap<String, Regex>) -> Result<(), InfluxQlError> {
    let mut err = None;
    e.walk(&mut |x| {
        if let Expr::Regex(p) = x {
            if !out.contains_key(p) {
                match resolve::regex(p) {
                    Ok(re) => {
                        out.insert(p.clone(), re);
                    }
                    Err(e) => err = Some(e),
                }
            }
        }
    });
    err.map_or(Ok(()), Err)
}

/// The value of one side of a comparison at row `r` (a missing tag reads as '').
fn side(e: &Expr, m: &Measurement, r: &Row) -> V {
    match e.unparen() {
        Expr::Var { name, ty } => match m.column(name, *ty) {
            Column::Tag => {
                let i = m
                    .tags
                    .iter()
                    .position(|t| t == name)
                    .expect("column() found it");
                V::S(r.tags[i].clone().unwrap_or_else(|| "".into()))
            }
            Column::Field(_) => {
                let i = m
                    .fields
                    .iter()
                    .position(|(f, _)| f == name)
                    .expect("column() found it");
                r.fields[i].clone()
            }
            Column::Missing => V::S("".into()),
            Column::Time => V::I(r.time),
        },
        other => constant(other),
    }
}

/// Whether the outer condition holds for an inner row.
fn holds(e: &Expr, m: &Measurement, r: &Row, regexes: &HashMap<String, Regex>) -> bool {
    match e {
        Expr::Paren(inner) => holds(inner, m, r, regexes),
        Expr::Bool(b) => *b,
        Expr::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => holds(lhs, m, r, regexes) && holds(rhs, m, r, regexes),
        Expr::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => holds(lhs, m, r, regexes) || holds(rhs, m, r, regexes),
        Expr::Binary { op, lhs, rhs } if op.is_comparison() => {
            if let Expr::Regex(p) = rhs.unparen() {
                let V::S(s) = side(lhs, m, r) else {
                    return false;
                };
                let matched = regexes.get(p).is_some_and(|re| re.is_match(&s));
                return matched == (*op == BinaryOp::EqRegex);
            }
            let (a, b) = (side(lhs, m, r), side(rhs, m, r));
            let ord = match (&a, &b) {
                (V::S(x), V::S(y)) => x.cmp(y),
                (V::B(x), V::B(y)) => x.cmp(y),
                (x, y) if x.is_numeric() && y.is_numeric() => x.cmp_num(y),
                _ => return false,
            };
            match op {
                BinaryOp::Eq => ord.is_eq(),
                BinaryOp::NotEq => ord.is_ne(),
                BinaryOp::Lt => ord.is_lt(),
                BinaryOp::LtEq => ord.is_le(),
                BinaryOp::Gt => ord.is_gt(),
                BinaryOp::GtEq => ord.is_ge(),
                _ => false,
            }
        }
        _ => false,
    }
}
