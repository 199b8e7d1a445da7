//! Field comparisons with a constant (`usage_user > 90`) that a selective buffer scan checks
//! before it gathers a row's other columns.
//!
//! A selective scan reads rows scattered over many chunks, so each column it gathers costs a
//! cache miss per row. When a field predicate keeps few of a series' rows (TSBS high-cpu:
//! one row in ten), checking it on the one field first and gathering the other columns only
//! for the rows that pass does a fraction of the reads.
//!
//! Invariants:
//! - A bound is a prefilter, never the filter: it drops only rows its comparison certainly
//!   rejects (false or null), and the filter it came from stays in the plan and decides. So
//!   float comparisons keep a row if either IEEE order or the total order Arrow's kernels use
//!   says it passes (they differ only at NaN and signed zero).
//! - Only a bare field column against a literal of exactly its type makes a bound: a cast or
//!   a conversion could round, and a rounded constant could drop a row that passes.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Operator};
use shardline_shards::schema::{ColumnType, TableSchema};

use super::table::column_comparison;

/// `field <op> value`, with `field` an index into the snapshot's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldBound {
    pub field: usize,
    op: Cmp,
    value: Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    LtEq,
    Gt,
    GtEq,
    Eq,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Constant {
    F64(f64),
    I64(i64),
    U64(u64),
}

impl Cmp {
    fn of(op: Operator) -> Option<Cmp> {
        Some(match op {
            Operator::Lt => Cmp::Lt,
            Operator::LtEq => Cmp::LtEq,
            Operator::Gt => Cmp::Gt,
            Operator::GtEq => Cmp::GtEq,
            Operator::Eq => Cmp::Eq,
            _ => return None,
        })
    }

    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cmp::Lt => o == Less,
            Cmp::LtEq => o != Greater,
            Cmp::Gt => o == Greater,
            Cmp::GtEq => o != Less,
            Cmp::Eq => o == Equal,
        }
    }
}

/// The bounds among `filters` (a plan's conjuncts) on `table`, whose fields the snapshot
/// reads in the order `fields` (column ids) gives.
pub fn bounds(filters: &[Expr], table: &TableSchema, fields: &[u32]) -> Vec<FieldBound> {
    let mut out = Vec::new();
    for f in filters {
        collect(f, table, fields, &mut out);
    }
    out
}

fn collect(e: &Expr, table: &TableSchema, fields: &[u32], out: &mut Vec<FieldBound>) {
    let Expr::BinaryExpr(binary) = e else {
        return;
    };
    if binary.op == Operator::And {
        collect(&binary.left, table, fields, out);
        collect(&binary.right, table, fields, out);
        return;
    }
    let Some((col, value, op)) = column_comparison(binary) else {
        return;
    };
    // A cast of the column could round: only the bare column makes a bound.
    if col.cast {
        return;
    }
    let name = col.name;
    let Some(cmp) = Cmp::of(op) else { return };
    let Some(column) = table.column(name) else {
        return;
    };
    let Some(field) = fields.iter().position(|&id| id == column.id) else {
        return;
    };
    let value = match (column.ty, value) {
        (ColumnType::Float, ScalarValue::Float64(Some(v))) => Constant::F64(*v),
        (ColumnType::Int, ScalarValue::Int64(Some(v))) => Constant::I64(*v),
        (ColumnType::UInt, ScalarValue::UInt64(Some(v))) => Constant::U64(*v),
        _ => return,
    };
    out.push(FieldBound {
        field,
        op: cmp,
        value,
    });
}

/// A bound read against one chunk's column.
#[derive(Debug)]
pub enum Check<'a> {
    /// The chunk lacks the column: every row's value is null.
    Never,
    F64(&'a arrow::array::Float64Array, Cmp, f64),
    I64(&'a arrow::array::Int64Array, Cmp, i64),
    U64(&'a arrow::array::UInt64Array, Cmp, u64),
    /// A column of another type than the bound's (cannot happen for one table; kept safe).
    Always,
}

impl FieldBound {
    /// This bound over a chunk's `column` (`None`: the chunk has no such column).
    pub fn check<'a>(&self, column: Option<&'a dyn Array>) -> Check<'a> {
        let Some(a) = column else {
            return Check::Never;
        };
        match (self.value, a.data_type()) {
            (Constant::F64(v), DataType::Float64) => {
                Check::F64(a.as_primitive::<Float64Type>(), self.op, v)
            }
            (Constant::I64(v), DataType::Int64) => {
                Check::I64(a.as_primitive::<Int64Type>(), self.op, v)
            }
            (Constant::U64(v), DataType::UInt64) => {
                Check::U64(a.as_primitive::<UInt64Type>(), self.op, v)
            }
            _ => Check::Always,
        }
    }
}

impl Check<'_> {
    /// Whether row `i` may pass (false only when the comparison is certainly false or null).
    #[inline]
    pub fn may_pass(&self, i: usize) -> bool {
        match self {
            Check::Never => false,
            Check::Always => true,
            Check::F64(a, op, v) => {
                if a.is_null(i) {
                    return false;
                }
                let x = a.value(i);
                let ieee = x.partial_cmp(v).is_some_and(|o| op.holds(o));
                ieee || op.holds(x.total_cmp(v))
            }
            Check::I64(a, op, v) => a.is_valid(i) && op.holds(a.value(i).cmp(v)),
            Check::U64(a, op, v) => a.is_valid(i) && op.holds(a.value(i).cmp(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};
    use arrow::compute::kernels::cmp;
    use datafusion::logical_expr::{cast, col, lit};

    #[test]
    fn only_bare_fields_against_literals_of_their_type_make_bounds() {
        let t = TableSchema::with_columns(
            0,
            "cpu",
            &[
                ("host", ColumnType::Tag),
                ("u", ColumnType::Float),
                ("n", ColumnType::Int),
                ("time", ColumnType::Time),
            ],
        );
        // The snapshot reads `n` then `u`.
        let fields = [2, 1];
        let filters = vec![
            col("u").gt(lit(90.0)).and(lit(3i64).lt_eq(col("n"))),
            col("u").gt(lit(90i64)),
            col("host").eq(lit("a")),
            col("u").not_eq(lit(1.0)),
            col("u").gt(lit(1.0)).or(col("n").lt(lit(2i64))),
            col("time").gt(lit(1i64)),
            cast(col("n"), DataType::Float64).gt(lit(1.0)),
        ];
        let b = bounds(&filters, &t, &fields);
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(
            (b[0].field, b[0].op, b[0].value),
            (1, Cmp::Gt, Constant::F64(90.0))
        );
        assert_eq!(
            (b[1].field, b[1].op, b[1].value),
            (0, Cmp::GtEq, Constant::I64(3))
        );
    }

    /// A bound never drops a row Arrow's comparison kernel (which the filter uses) keeps.
    #[test]
    fn float_bounds_keep_every_row_the_kernel_keeps() {
        let values = [
            Some(-0.0),
            Some(0.0),
            Some(f64::NAN),
            Some(-f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(90.0),
            Some(89.999),
            None,
        ];
        let a = Float64Array::from(values.to_vec());
        for c in [-0.0, 0.0, 90.0, f64::NAN, f64::INFINITY] {
            let scalar = Float64Array::new_scalar(c);
            for (op, kernel) in [
                (Cmp::Lt, cmp::lt(&a, &scalar).unwrap()),
                (Cmp::LtEq, cmp::lt_eq(&a, &scalar).unwrap()),
                (Cmp::Gt, cmp::gt(&a, &scalar).unwrap()),
                (Cmp::GtEq, cmp::gt_eq(&a, &scalar).unwrap()),
                (Cmp::Eq, cmp::eq(&a, &scalar).unwrap()),
            ] {
                let b = FieldBound {
                    field: 0,
                    op,
                    value: Constant::F64(c),
                };
                let check = b.check(Some(&a));
                for (i, v) in values.iter().enumerate() {
                    if kernel.is_valid(i) && kernel.value(i) {
                        assert!(check.may_pass(i), "{op:?} {c} dropped {v:?}");
                    }
                    if v.is_none() {
                        assert!(!check.may_pass(i));
                    }
                }
            }
        }
    }

    #[test]
    fn integer_bounds_are_exact_and_a_missing_column_passes_nothing() {
        let a = Int64Array::from(vec![Some(1), Some(5), None, Some(-3)]);
        let b = FieldBound {
            field: 0,
            op: Cmp::GtEq,
            value: Constant::I64(1),
        };
        let c = b.check(Some(&a));
        let got: Vec<bool> = (0..4).map(|i| c.may_pass(i)).collect();
        assert_eq!(got, [true, true, false, false]);
        assert!(!b.check(None).may_pass(0));
    }
}
