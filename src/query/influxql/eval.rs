//! Evaluating field expressions over raw points: one point at a time ([`eval_point`]: casts,
//! arithmetic, math functions), a whole series for transformations of raw values
//! ([`series_column`]), and the rows of a raw `SELECT` ([`raw_rows`]).
//!
//! Invariants: arithmetic follows 1.x (integers stay integers except in division; a string
//! or boolean in arithmetic is a type error found before any row is read, see
//! [`check_types`]); a cast that does not fit a value gives null.

use std::collections::BTreeMap;

use shardline_influxql::ast::{BinaryOp, Expr, VarType};

use super::fields::OutField;
use super::functions::{self, kind_of, Kind, Point};
use super::resolve::{Column, Measurement};
use super::values::V;
use super::InfluxQlError;

/// One series' points: the group key, times, and the values of the columns read.
#[derive(Debug)]
pub struct SeriesData {
    pub key: Vec<Option<std::sync::Arc<str>>>,
    pub times: Vec<i64>,
    pub cols: Vec<Vec<V>>,
}

pub fn read_index(read: &[(String, Column)], name: &str) -> Option<usize> {
    read.iter().position(|(n, _)| n == name)
}

/// The value of a field expression at one point.
pub fn eval_point(e: &Expr, s: &SeriesData, row: usize, read: &[(String, Column)]) -> V {
    match e {
        Expr::Var { name, ty } => match read_index(read, name) {
            Some(i) => cast(&s.cols[i][row], *ty),
            None => V::Null,
        },
        Expr::Paren(inner) => eval_point(inner, s, row, read),
        Expr::Binary { op, lhs, rhs } => arith(
            *op,
            &eval_point(lhs, s, row, read),
            &eval_point(rhs, s, row, read),
        ),
        Expr::Call { name, args } if kind_of(name) == Some(Kind::Math) => {
            let x = eval_point(&args[0], s, row, read);
            let y = args.get(1).map(|a| eval_point(a, s, row, read));
            functions::math(name, &x, y.as_ref())
        }
        other => constant(other),
    }
}

pub fn constant(e: &Expr) -> V {
    match e {
        Expr::Integer(i) => V::I(*i),
        Expr::Unsigned(u) => V::U(*u),
        Expr::Float(f) => V::F(*f),
        Expr::Str(s) => V::S(s.as_str().into()),
        Expr::Bool(b) => V::B(*b),
        Expr::Duration(d) => V::I(*d),
        _ => V::Null,
    }
}

/// Arithmetic as 1.x does it: integers stay integers (division makes a float), anything
/// with a float is a float, non-numbers give null.
pub fn arith(op: BinaryOp, a: &V, b: &V) -> V {
    use BinaryOp as Op;
    match (a, b) {
        (V::I(x), V::I(y)) => match op {
            Op::Add => V::I(x.wrapping_add(*y)),
            Op::Sub => V::I(x.wrapping_sub(*y)),
            Op::Mul => V::I(x.wrapping_mul(*y)),
            Op::Div => {
                if *y == 0 {
                    V::F(0.0)
                } else {
                    V::F(*x as f64 / *y as f64)
                }
            }
            Op::Mod => {
                if *y == 0 {
                    V::Null
                } else {
                    V::I(x.wrapping_rem(*y))
                }
            }
            Op::BitAnd => V::I(x & y),
            Op::BitOr => V::I(x | y),
            Op::BitXor => V::I(x ^ y),
            _ => V::Null,
        },
        (V::B(x), V::B(y)) => match op {
            Op::BitAnd => V::B(x & y),
            Op::BitOr => V::B(x | y),
            Op::BitXor => V::B(x ^ y),
            _ => V::Null,
        },
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => match op {
                Op::Add => V::F(x + y),
                Op::Sub => V::F(x - y),
                Op::Mul => V::F(x * y),
                Op::Div => {
                    if y == 0.0 {
                        V::F(0.0)
                    } else {
                        V::F(x / y)
                    }
                }
                Op::Mod => V::F(x % y),
                _ => V::Null,
            },
            _ => V::Null,
        },
    }
}

/// Raw points: one row per point where at least one field read has a value.
pub fn raw_rows(
    s: &SeriesData,
    out: &[OutField],
    read: &[(String, Column)],
    field_cols: &[bool],
) -> Vec<(i64, Vec<V>)> {
    // A plain column is found once, not by name per row.
    let direct: Vec<Option<(usize, Option<VarType>)>> = out
        .iter()
        .map(|f| {
            let mut e = &f.expr;
            while let Expr::Paren(inner) = e {
                e = inner;
            }
            match e {
                Expr::Var { name, ty } => read_index(read, name).map(|i| (i, *ty)),
                _ => None,
            }
        })
        .collect();
    let mut rows = Vec::with_capacity(s.times.len());
    for row in 0..s.times.len() {
        let any_field = s
            .cols
            .iter()
            .zip(field_cols)
            .any(|(c, is_field)| *is_field && !c[row].is_null());
        if !any_field {
            continue;
        }
        let values: Vec<V> = out
            .iter()
            .zip(&direct)
            .map(|(f, d)| match d {
                Some((i, ty)) => cast(&s.cols[*i][row], *ty),
                None => eval_point(&f.expr, s, row, read),
            })
            .collect();
        rows.push((s.times[row], values));
    }
    rows
}

/// A field expression over a whole series of raw points (for transformations of raw
/// values): its points, nulls left out.
pub fn series_column(
    e: &Expr,
    s: &SeriesData,
    read: &[(String, Column)],
) -> Result<Vec<Point>, InfluxQlError> {
    Ok(match e {
        Expr::Var { .. } => (0..s.times.len())
            .filter_map(|r| {
                let v = eval_point(e, s, r, read);
                (!v.is_null()).then_some((s.times[r], v))
            })
            .collect(),
        Expr::Paren(inner) => series_column(inner, s, read)?,
        Expr::Call { name, args } if kind_of(name) == Some(Kind::Transform) => {
            let inner = series_column(&args[0], s, read)?;
            let arg = args.get(1).map(constant);
            functions::transform(name, &inner, arg.as_ref())?
        }
        Expr::Call { name, args } if kind_of(name) == Some(Kind::Math) => {
            let inner = series_column(&args[0], s, read)?;
            let y = args.get(1).map(constant);
            inner
                .into_iter()
                .map(|(t, v)| (t, functions::math(name, &v, y.as_ref())))
                .collect()
        }
        Expr::Binary { op, lhs, rhs } => {
            let l = series_column(lhs, s, read)?;
            let r = series_column(rhs, s, read)?;
            combine(*op, lhs, rhs, l, r)
        }
        other => vec![(0, constant(other))],
    })
}

/// Joins two columns of a binary expression by time (a constant side applies to every
/// point).
fn combine(op: BinaryOp, lhs: &Expr, rhs: &Expr, l: Vec<Point>, r: Vec<Point>) -> Vec<Point> {
    let lconst = is_const(lhs);
    let rconst = is_const(rhs);
    match (lconst, rconst) {
        (true, true) => vec![(0, arith(op, &l[0].1, &r[0].1))],
        (true, false) => r
            .into_iter()
            .map(|(t, v)| (t, arith(op, &l[0].1, &v)))
            .collect(),
        (false, true) => l
            .into_iter()
            .map(|(t, v)| (t, arith(op, &v, &r[0].1)))
            .collect(),
        (false, false) => {
            let rights: BTreeMap<i64, V> = r.into_iter().collect();
            l.into_iter()
                .map(|(t, v)| {
                    let other = rights.get(&t).cloned().unwrap_or(V::Null);
                    (t, arith(op, &v, &other))
                })
                .collect()
        }
    }
}

pub fn is_const(e: &Expr) -> bool {
    !matches!(constant(e.unparen()), V::Null)
        || matches!(e.unparen(), Expr::Binary { lhs, rhs, .. } if is_const(lhs) && is_const(rhs))
}

/// Rows from per-field columns of points: one per time any field has, ascending.
pub fn join_by_time(columns: Vec<Vec<Point>>) -> Vec<(i64, Vec<V>)> {
    let mut rows: BTreeMap<i64, Vec<V>> = BTreeMap::new();
    let n = columns.len();
    for (i, col) in columns.into_iter().enumerate() {
        for (t, v) in col {
            rows.entry(t).or_insert_with(|| vec![V::Null; n])[i] = v;
        }
    }
    rows.into_iter()
        .filter(|(_, vs)| vs.iter().any(|v| !v.is_null()))
        .collect()
}

/// A value read as `ty` (`::integer` truncates a float, `::float` widens an integer); null
/// where the cast does not fit.
pub fn cast(v: &V, ty: Option<VarType>) -> V {
    match (ty, v) {
        (None | Some(VarType::Field) | Some(VarType::Tag), v) => v.clone(),
        (_, V::Null) => V::Null,
        (Some(VarType::Integer), V::F(f)) => V::I(*f as i64),
        (Some(VarType::Integer), V::U(u)) => V::I(*u as i64),
        (Some(VarType::Integer), V::I(_)) => v.clone(),
        (Some(VarType::Float), V::I(i)) => V::F(*i as f64),
        (Some(VarType::Float), V::U(u)) => V::F(*u as f64),
        (Some(VarType::Float), V::F(_)) => v.clone(),
        (Some(VarType::Unsigned), V::U(_)) => v.clone(),
        (Some(VarType::Unsigned), V::I(i)) if *i >= 0 => V::U(*i as u64),
        (Some(VarType::String), V::S(_)) => v.clone(),
        (Some(VarType::Boolean), V::B(_)) => v.clone(),
        _ => V::Null,
    }
}

/// The type an expression has in `m`, if it is known before reading (a field or constant).
fn static_type(e: &Expr, m: &Measurement) -> Option<&'static str> {
    match e.unparen() {
        Expr::Var { name, ty } => match m.column(name, *ty) {
            Column::Field(t) => Some(super::show::field_type(t)),
            _ => None,
        },
        Expr::Integer(_) => Some("integer"),
        Expr::Unsigned(_) => Some("unsigned"),
        Expr::Float(_) => Some("float"),
        Expr::Str(_) => Some("string"),
        Expr::Bool(_) => Some("boolean"),
        _ => None,
    }
}

/// Refuses arithmetic on strings, and on booleans with numbers, as 1.x does
/// (`type error: governor::string + 1: incompatible types: string and integer`).
pub fn check_types(fields: &[OutField], m: &Measurement) -> Result<(), InfluxQlError> {
    let mut err = None;
    for f in fields {
        f.expr.walk(&mut |e| {
            if err.is_some() {
                return;
            }
            let Expr::Binary { op, lhs, rhs } = e else {
                return;
            };
            let (Some(l), Some(r)) = (static_type(lhs, m), static_type(rhs, m)) else {
                return;
            };
            let numeric = |t: &str| matches!(t, "float" | "integer" | "unsigned");
            let ok = (numeric(l) && numeric(r))
                || (l == "boolean"
                    && r == "boolean"
                    && matches!(op, BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor));
            if !ok {
                let show = |x: &Expr, t: &str| match x.unparen() {
                    Expr::Var { name, .. } => format!("{name}::{t}"),
                    other => other.to_string(),
                };
                err = Some(InfluxQlError::Invalid(format!(
                    "type error: {} {} {}: incompatible types: {l} and {r}",
                    show(lhs, l),
                    op.as_str(),
                    show(rhs, r)
                )));
            }
        });
    }
    err.map_or(Ok(()), Err)
}
