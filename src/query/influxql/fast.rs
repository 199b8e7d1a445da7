//! Statements DataFusion can answer in InfluxQL's terms without handing every point to the
//! evaluator: aggregates of plain fields grouped by tags and `date_bin` buckets (the TSBS
//! shapes: `max`, `mean`, ... `GROUP BY time(1h), hostname`). The evaluator then only fills
//! buckets and assembles rows, so these cost about what the same SQL costs. (Raw statements
//! with `LIMIT` read only the rows they answer: see `select::fetch`.)
//!
//! Invariants: a fast path gives exactly the evaluator's answer (the golden tests run both
//! ways: `SHARDLINE_INFLUXQL_NO_FAST_PATH=1` turns fast paths off); anything it does not
//! cover (casts, `first`/`last`, selectors answering their point's time, transformations,
//! booleans, `tz()`)
//! goes to the evaluator.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{IntervalMonthDayNano, TimestampNanosecondType};
use datafusion::common::{ScalarValue, TableReference};
use datafusion::functions_aggregate::expr_fn::{avg, count, max, median, min, stddev, sum};
use datafusion::logical_expr::{lit, Expr as DfExpr};
use datafusion::optimizer::optimize_projections::OptimizeProjections;
use datafusion::optimizer::push_down_filter::PushDownFilter;
use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
use datafusion::optimizer::Optimizer;
use datafusion::prelude::SessionContext;
use shardline_influxql::ast::{Expr, Fill};
use shardline_shards::schema::ColumnType;

use super::aggregate::{self, Interval};
use super::condition::{self, column};
use super::fields::OutField;
use super::resolve::{Column, Measurement};
use super::time_range::{self, TimeRange};
use super::values::{value_at, V};
use super::InfluxQlError;

/// Whether fast paths are allowed (`SHARDLINE_INFLUXQL_NO_FAST_PATH=1` turns them off, so
/// tests can compare both ways).
pub fn enabled() -> bool {
    std::env::var_os("SHARDLINE_INFLUXQL_NO_FAST_PATH").is_none_or(|v| v != "1")
}

/// An aggregate DataFusion computes for one output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Count,
    Sum,
    Mean,
    Min,
    Max,
    Spread,
    Stddev,
    Median,
}

/// One output column: its function and field.
#[derive(Debug, Clone)]
pub struct Spec {
    func: Func,
    field: String,
}

/// The specs of `out` if every column is a plain aggregate DataFusion computes the way 1.x
/// does; `point_time` (a selector alone without `GROUP BY time`, answering its point's
/// time) is the evaluator's.
pub fn aggregate_specs(
    out: &[OutField],
    m: &Measurement,
    interval: Option<Interval>,
) -> Option<Vec<Spec>> {
    if interval.is_some_and(|iv| iv.tz.is_some()) {
        return None;
    }
    let mut specs = Vec::with_capacity(out.len());
    for f in out {
        let Expr::Call { name, args } = f.expr.unparen() else {
            return None;
        };
        let [Expr::Var {
            name: field,
            ty: None,
        }] = args.as_slice()
        else {
            return None;
        };
        let Column::Field(ty) = m.column(field, None) else {
            return None;
        };
        let numeric = matches!(ty, ColumnType::Float | ColumnType::Int | ColumnType::UInt);
        let func = match name.as_str() {
            "count" => Func::Count,
            "sum" if numeric => Func::Sum,
            "mean" if numeric => Func::Mean,
            "min" if numeric => Func::Min,
            "max" if numeric => Func::Max,
            "spread" if numeric => Func::Spread,
            "stddev" if numeric => Func::Stddev,
            "median" if ty == ColumnType::Float => Func::Median,
            _ => return None,
        };
        specs.push(Spec {
            func,
            field: field.clone(),
        });
    }
    let selectors = specs
        .iter()
        .filter(|s| matches!(s.func, Func::Min | Func::Max))
        .count();
    if interval.is_none() && specs.len() == 1 && selectors == 1 {
        return None;
    }
    Some(specs)
}

fn ts(t: i64) -> DfExpr {
    lit(ScalarValue::TimestampNanosecond(Some(t), None))
}

/// The filter of a fetch: the time range, the condition, and at least one of `fields`
/// having a value (a point without any says nothing to an aggregate or a raw row).
pub fn predicate(
    m: &Measurement,
    range: &TimeRange,
    rest: Option<&Expr>,
    fields: &[&str],
) -> Result<Option<DfExpr>, InfluxQlError> {
    let mut pred: Option<DfExpr> = None;
    let mut and = |e: DfExpr| {
        pred = Some(match pred.take() {
            Some(p) => p.and(e),
            None => e,
        })
    };
    if range.has_min || range.min > time_range::MIN_TIME {
        and(column("time").gt_eq(ts(range.min)));
    }
    if range.has_max || range.max < time_range::MAX_TIME {
        and(column("time").lt_eq(ts(range.max)));
    }
    if let Some(rest) = rest {
        and(condition::filter(rest, m)?);
    }
    let any = fields
        .iter()
        .map(|f| column(f).is_not_null())
        .reduce(|a, b| a.or(b));
    if let Some(any) = any {
        and(any);
    }
    Ok(pred)
}

/// The logical rules a fast-path plan (a scan, a filter, an aggregate, as [`aggregate`]
/// builds it) gains from: folding the coerced constants, moving the filter into the scan
/// (where tag and time predicates select rows), and reading only the projected columns.
/// DataFusion's full list (about 30 rules, run to a fixpoint) costs more than the rest of a
/// one-series query, and its other rules (joins, subqueries, unions, limits) find nothing in
/// such a plan. Every rule preserves meaning, so fewer of them change only speed.
fn lean_optimizer() -> &'static Optimizer {
    static LEAN: std::sync::OnceLock<Optimizer> = std::sync::OnceLock::new();
    LEAN.get_or_init(|| {
        Optimizer::with_rules(vec![
            Arc::new(SimplifyExpressions::new()),
            Arc::new(PushDownFilter::new()),
            Arc::new(OptimizeProjections::new()),
        ])
    })
}

/// Runs `df` as `collect` would, but through [`lean_optimizer`]; the analyzer (type coercion)
/// and the physical planner and optimizer are the session's own.
async fn collect_lean(
    df: datafusion::dataframe::DataFrame,
) -> Result<Vec<arrow::array::RecordBatch>, InfluxQlError> {
    let (state, plan) = df.into_parts();
    let analyzed = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})?;
    let optimized = lean_optimizer().optimize(analyzed, &state, |_, _| {})?;
    let physical = state
        .query_planner()
        .create_physical_plan(&optimized, &state)
        .await?;
    Ok(datafusion::physical_plan::collect(physical, state.task_ctx()).await?)
}

/// Per series (group key), per bucket start, the columns' values (`None`: the bucket has no
/// value for that column).
pub type Aggregated = BTreeMap<Vec<Option<Arc<str>>>, BTreeMap<i64, Vec<Option<V>>>>;

/// Runs the aggregates on DataFusion, grouped by `tags` and (with an interval) buckets.
pub async fn aggregate(
    ctx: &SessionContext,
    m: &Measurement,
    tags: &[String],
    specs: &[Spec],
    range: &TimeRange,
    rest: Option<&Expr>,
    interval: Option<Interval>,
) -> Result<Aggregated, InfluxQlError> {
    let mut df = ctx.table(TableReference::bare(m.name())).await?;
    // No "some field has a value" filter: a group whose rows have none counts no points in
    // any column and is dropped below, so testing every row for it would only cost time.
    if let Some(p) = predicate(m, range, rest, &[])? {
        df = df.filter(p)?;
    }
    let mut groups = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let e = if m.tags.contains(t) {
            column(t)
        } else {
            lit(ScalarValue::Utf8(None))
        };
        groups.push(e.alias(format!("__group_{i}")));
    }
    if let Some(iv) = interval {
        let stride = lit(ScalarValue::IntervalMonthDayNano(Some(
            IntervalMonthDayNano::new(0, 0, iv.every),
        )));
        let bucket =
            datafusion::functions::expr_fn::date_bin(stride, column("time"), ts(iv.offset));
        groups.push(bucket.alias("__bucket"));
    }
    let mut aggs = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let c = column(&s.field);
        let name = |k: &str| format!("__agg_{i}_{k}");
        match s.func {
            Func::Count => aggs.push(count(c).alias(name("v"))),
            Func::Sum => aggs.push(sum(c).alias(name("v"))),
            Func::Mean => aggs.push(avg(c).alias(name("v"))),
            Func::Min => aggs.push(min(c).alias(name("v"))),
            Func::Max => aggs.push(max(c).alias(name("v"))),
            Func::Median => aggs.push(median(c).alias(name("v"))),
            Func::Stddev => aggs.push(stddev(c).alias(name("v"))),
            Func::Spread => {
                aggs.push(max(c.clone()).alias(name("max")));
                aggs.push(min(c).alias(name("min")));
            }
        }
        // Every other aggregate is null exactly when the bucket has no point with the field;
        // a sample standard deviation is also null for one point, so it needs the count to
        // tell an empty bucket from a one-point one.
        if s.func == Func::Stddev {
            aggs.push(count(column(&s.field)).alias(name("n")));
        }
    }
    let batches = collect_lean(df.aggregate(groups, aggs)?).await?;
    let mut out: Aggregated = BTreeMap::new();
    for b in &batches {
        let ntags = tags.len();
        let bucket_col = interval.map(|_| {
            b.column(ntags)
                .as_primitive::<TimestampNanosecondType>()
                .clone()
        });
        let first_agg = ntags + usize::from(interval.is_some());
        for row in 0..b.num_rows() {
            let key: Vec<Option<Arc<str>>> = (0..ntags)
                .map(|i| match value_at(b.column(i).as_ref(), row) {
                    V::S(s) => Some(s),
                    _ => None,
                })
                .collect();
            let start = match &bucket_col {
                Some(c) => c.value(row),
                None => 0,
            };
            let mut at = first_agg;
            let mut any = false;
            let mut values = Vec::with_capacity(specs.len());
            for s in specs {
                let v = if s.func == Func::Spread {
                    let hi = value_at(b.column(at).as_ref(), row);
                    let lo = value_at(b.column(at + 1).as_ref(), row);
                    at += 2;
                    match (&hi, &lo) {
                        (V::I(a), V::I(b)) => V::I(a - b),
                        (V::U(a), V::U(b)) => V::U(a - b),
                        _ => match (hi.as_f64(), lo.as_f64()) {
                            (Some(a), Some(b)) => V::F(a - b),
                            _ => V::Null,
                        },
                    }
                } else {
                    at += 1;
                    value_at(b.column(at - 1).as_ref(), row)
                };
                let has_points = match s.func {
                    Func::Stddev => {
                        let n = value_at(b.column(at).as_ref(), row);
                        at += 1;
                        matches!(n, V::I(n) if n > 0)
                    }
                    Func::Count => matches!(v, V::I(n) if n > 0),
                    _ => !v.is_null(),
                };
                any |= has_points;
                values.push(if has_points {
                    // A sample standard deviation of one point is null, not a value.
                    Some(v).filter(|v| !v.is_null())
                } else {
                    None
                });
            }
            // Without GROUP BY, an aggregate over no rows still answers one row: not a series.
            if any {
                out.entry(key).or_default().insert(start, values);
            }
        }
    }
    Ok(out)
}

/// The rows of one series from its aggregated buckets: every bucket of the range (filled),
/// as the evaluator gives them.
pub fn rows(
    buckets: &BTreeMap<i64, Vec<Option<V>>>,
    out: &[OutField],
    range: &TimeRange,
    interval: Option<Interval>,
    first_time: Option<i64>,
    fill: Fill,
    budget: &mut usize,
) -> Result<Vec<(i64, Vec<V>)>, InfluxQlError> {
    let Some(iv) = interval else {
        let t = if range.has_min { range.min } else { 0 };
        return Ok(buckets
            .values()
            .map(|vs| {
                let values = vs
                    .iter()
                    .map(|v| match v {
                        // Without GROUP BY time, 1.x's count of no points is null, as every
                        // other aggregate's (the row is there for the other calls).
                        Some(v) => v.clone(),
                        None => V::Null,
                    })
                    .collect();
                (t, values)
            })
            .collect());
    };
    let start = if range.has_min {
        range.min
    } else {
        first_time.unwrap_or(range.min)
    };
    let starts = aggregate::bucket_starts(iv, start, range.max, budget)?;
    let columns: Vec<Vec<Option<V>>> = (0..out.len())
        .map(|c| {
            starts
                .iter()
                .map(|s| buckets.get(s).and_then(|vs| vs[c].clone()))
                .collect()
        })
        .collect();
    let counts: Vec<bool> = out.iter().map(is_count).collect();
    Ok(aggregate::assemble(&starts, columns, &counts, fill))
}

fn is_count(f: &OutField) -> bool {
    matches!(f.expr.unparen(), Expr::Call { name, .. } if name == "count")
}
