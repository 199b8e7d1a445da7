//! A `WHERE` condition (without its time range) as a DataFusion filter over one
//! measurement's table, so the scan's pushdown sees it.
//!
//! Tag semantics are 1.x's: a series without the tag has it as the empty string, so
//! `region = ''` matches the series that lack `region`, `region != 'x'` matches them too, and
//! a regex is matched against `''` for them. A name that is neither tag nor field is such a
//! missing tag. A field comparison holds only where the field has a value.

use datafusion::common::{Column as DfColumn, ScalarValue};
use datafusion::logical_expr::{lit, BinaryExpr, Expr as DfExpr, Operator};
use datafusion::prelude::coalesce;
use shardline_influxql::ast::{BinaryOp, Expr};

use super::resolve::{Column, Measurement};
use super::InfluxQlError;

pub fn column(name: &str) -> DfExpr {
    DfExpr::Column(DfColumn::new_unqualified(name))
}

fn binary(l: DfExpr, op: Operator, r: DfExpr) -> DfExpr {
    DfExpr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)))
}

/// What one side of a comparison is.
enum Side {
    Tag(DfExpr),
    Value(DfExpr),
    Regex(String),
    Str(String),
}

/// `cond` as a filter over `m`'s rows.
pub fn filter(cond: &Expr, m: &Measurement) -> Result<DfExpr, InfluxQlError> {
    match cond {
        Expr::Paren(inner) => filter(inner, m),
        Expr::Binary { op, lhs, rhs } => match op {
            BinaryOp::And => Ok(filter(lhs, m)?.and(filter(rhs, m)?)),
            BinaryOp::Or => Ok(filter(lhs, m)?.or(filter(rhs, m)?)),
            op if op.is_comparison() => comparison(*op, lhs, rhs, m),
            _ => Err(InfluxQlError::Invalid(format!(
                "invalid condition expression: {cond}"
            ))),
        },
        Expr::Bool(b) => Ok(lit(*b)),
        Expr::Var { name, ty } => match m.column(name, *ty) {
            Column::Field(shardline_shards::schema::ColumnType::Bool) => Ok(column(name)),
            _ => Err(InfluxQlError::Invalid(format!(
                "invalid condition expression: {cond}"
            ))),
        },
        other => Err(InfluxQlError::Invalid(format!(
            "invalid condition expression: {other}"
        ))),
    }
}

fn side(e: &Expr, m: &Measurement) -> Result<Side, InfluxQlError> {
    Ok(match e {
        Expr::Paren(inner) => return side(inner, m),
        Expr::Var { name, ty } => match m.column(name, *ty) {
            Column::Tag => Side::Tag(column(name)),
            Column::Missing => Side::Tag(lit(ScalarValue::Utf8(None))),
            Column::Field(_) | Column::Time => Side::Value(column(name)),
        },
        Expr::Regex(p) => Side::Regex(p.clone()),
        Expr::Str(s) => Side::Str(s.clone()),
        other => Side::Value(value(other, m)?),
    })
}

/// An arithmetic expression over fields and constants.
fn value(e: &Expr, m: &Measurement) -> Result<DfExpr, InfluxQlError> {
    Ok(match e {
        Expr::Paren(inner) => value(inner, m)?,
        Expr::Integer(i) => lit(*i),
        Expr::Unsigned(u) => lit(*u),
        Expr::Float(f) => lit(*f),
        Expr::Bool(b) => lit(*b),
        Expr::Str(s) => lit(s.clone()),
        Expr::Duration(d) => lit(*d),
        Expr::Var { name, ty } => match m.column(name, *ty) {
            Column::Missing => lit(ScalarValue::Null),
            _ => column(name),
        },
        Expr::Binary { op, lhs, rhs } => {
            let op = match op {
                BinaryOp::Add => Operator::Plus,
                BinaryOp::Sub => Operator::Minus,
                BinaryOp::Mul => Operator::Multiply,
                BinaryOp::Div => Operator::Divide,
                BinaryOp::Mod => Operator::Modulo,
                BinaryOp::BitAnd => Operator::BitwiseAnd,
                BinaryOp::BitOr => Operator::BitwiseOr,
                BinaryOp::BitXor => Operator::BitwiseXor,
                _ => {
                    return Err(InfluxQlError::Invalid(format!(
                        "invalid condition expression: {e}"
                    )))
                }
            };
            binary(value(lhs, m)?, op, value(rhs, m)?)
        }
        Expr::Call { .. } => {
            return Err(InfluxQlError::Invalid(format!(
                "invalid function call in condition: {e}"
            )))
        }
        other => {
            return Err(InfluxQlError::Invalid(format!(
                "invalid condition expression: {other}"
            )))
        }
    })
}

fn comparison(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    m: &Measurement,
) -> Result<DfExpr, InfluxQlError> {
    let (l, r) = (side(lhs, m)?, side(rhs, m)?);
    // A tag read as 1.x reads it: absent is ''.
    let tag_text = |t: DfExpr| coalesce(vec![t, lit("")]);
    let df_op = |op: BinaryOp| match op {
        BinaryOp::Eq => Operator::Eq,
        BinaryOp::NotEq => Operator::NotEq,
        BinaryOp::Lt => Operator::Lt,
        BinaryOp::LtEq => Operator::LtEq,
        BinaryOp::Gt => Operator::Gt,
        BinaryOp::GtEq => Operator::GtEq,
        BinaryOp::EqRegex => Operator::RegexMatch,
        _ => Operator::RegexNotMatch,
    };
    Ok(match (l, r) {
        (Side::Tag(t), Side::Regex(p)) | (Side::Regex(p), Side::Tag(t)) => {
            binary(tag_text(t), df_op(op), lit(p))
        }
        (Side::Tag(t), Side::Str(s)) | (Side::Str(s), Side::Tag(t)) => {
            let op = if matches!(rhs.unparen(), Expr::Var { .. }) {
                mirror(op)
            } else {
                op
            };
            // `coalesce(t, '') = 'x'` and `t = 'x'` agree when 'x' is not empty (a missing
            // tag is NULL, which a filter drops as it drops false, and InfluxQL has no NOT);
            // the plain form is the one the table scan turns into a series set.
            if op == BinaryOp::Eq && !s.is_empty() {
                binary(t, Operator::Eq, lit(s))
            } else {
                binary(tag_text(t), df_op(op), lit(s))
            }
        }
        (Side::Tag(a), Side::Tag(b)) => binary(tag_text(a), df_op(op), tag_text(b)),
        (Side::Value(v), Side::Regex(p)) | (Side::Regex(p), Side::Value(v)) => {
            binary(v, df_op(op), lit(p))
        }
        (Side::Value(v), Side::Str(s)) => binary(v, df_op(op), lit(s)),
        (Side::Str(s), Side::Value(v)) => binary(lit(s), df_op(op), v),
        (Side::Value(a), Side::Value(b)) => binary(a, df_op(op), b),
        // A tag compared with a number never holds in 1.x.
        (Side::Tag(_), Side::Value(_)) | (Side::Value(_), Side::Tag(_)) => lit(false),
        (Side::Str(a), Side::Str(b)) => binary(lit(a), df_op(op), lit(b)),
        (Side::Regex(_), _) | (_, Side::Regex(_)) => {
            return Err(InfluxQlError::Invalid(format!(
                "invalid condition expression: {lhs} {} {rhs}",
                op.as_str()
            )))
        }
    })
}

fn mirror(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        other => other,
    }
}
