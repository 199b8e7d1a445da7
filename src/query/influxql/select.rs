//! `SELECT`: for each measurement, DataFusion reads the rows the statement needs (its time
//! range and condition pushed into the scan, only the columns it reads, ordered by series
//! and time); the rows are split into series by the `GROUP BY` tags, and each series is
//! evaluated as 1.x does — raw points, buckets of `GROUP BY time` with `fill`, selectors with
//! their points' times, transformations over the result — then cut by `LIMIT`/`OFFSET`
//! (per series) and `SLIMIT`/`SOFFSET` (series).
//!
//! Invariants: series come out ordered by measurement, then tag values (a missing tag is the
//! empty string, so it sorts first), rows by time (reversed for `ORDER BY time DESC`); a
//! series with no points in range does not appear, whatever the fill; the number of buckets
//! is bounded ([`MAX_BUCKETS`]) so a tiny interval over a wide range is refused, not computed.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampNanosecondType;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::logical_expr::{lit, Expr as DfExpr};
use datafusion::prelude::SessionContext;
use shardline_influxql::ast::{Expr, Fill, Select};
use shardline_shards::schema::DbSchema;

use super::condition::{self, column};
use super::fields::{self, OutField, Shape};
use super::functions::{self, kind_of, Kind, Point};
use super::resolve::{self, Column, Measurement};
use super::time_range::{self, TimeRange};
use super::values::{value_at, V};
use super::{Answer, InfluxQlError, SeriesRows};

/// Most buckets one statement may compute (over all its series).
pub const MAX_BUCKETS: usize = 10_000_000;

/// `GROUP BY time(every, offset)`.
#[derive(Debug, Clone, Copy)]
struct Interval {
    every: i64,
    offset: i64,
}

impl Interval {
    fn bucket(&self, t: i64) -> i64 {
        let rel = t as i128 - self.offset as i128;
        let b = rel.div_euclid(self.every as i128) * self.every as i128 + self.offset as i128;
        b.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

/// The `GROUP BY` of a statement.
#[derive(Debug, Clone)]
struct Grouping {
    interval: Option<Interval>,
    /// Tags named; `*` and regexes are expanded per measurement.
    dims: Vec<Expr>,
}

fn grouping(dims: &[Expr], now: i64) -> Result<Grouping, InfluxQlError> {
    let mut g = Grouping {
        interval: None,
        dims: Vec::new(),
    };
    for d in dims {
        match d.unparen() {
            Expr::Call { name, args } if name == "time" => {
                if g.interval.is_some() {
                    return Err(InfluxQlError::Invalid(
                        "multiple time dimensions not allowed".into(),
                    ));
                }
                let every = match args.first() {
                    Some(Expr::Duration(d)) => *d,
                    None => {
                        return Err(InfluxQlError::Invalid(
                            "time dimension expected 1 or 2 arguments".into(),
                        ))
                    }
                    Some(_) => {
                        return Err(InfluxQlError::Invalid(
                            "time dimension must have duration argument".into(),
                        ))
                    }
                };
                if args.len() > 2 {
                    return Err(InfluxQlError::Invalid(
                        "time dimension expected 1 or 2 arguments".into(),
                    ));
                }
                let offset = match args.get(1) {
                    None => 0,
                    Some(Expr::Duration(o)) => *o,
                    Some(Expr::Call { name, args }) if name == "now" && args.is_empty() => now,
                    Some(Expr::Call { .. }) => {
                        return Err(InfluxQlError::Invalid(
                            "time dimension offset function must be now()".into(),
                        ))
                    }
                    Some(_) => {
                        return Err(InfluxQlError::Invalid(
                            "time dimension offset must be duration or now()".into(),
                        ))
                    }
                };
                if every <= 0 {
                    // `time(0s)` groups nothing by time, as in 1.x.
                    continue;
                }
                g.interval = Some(Interval {
                    every,
                    offset: offset.rem_euclid(every),
                });
            }
            Expr::Var { name, .. } if name == "time" => {
                return Err(InfluxQlError::Invalid(
                    "time() is a function and expects at least one argument".into(),
                ))
            }
            Expr::Var { .. } | Expr::Wildcard(_) | Expr::Regex(_) => g.dims.push(d.clone()),
            Expr::Call { .. } => {
                return Err(InfluxQlError::Invalid(
                    "only time() calls allowed in dimensions".into(),
                ))
            }
            _ => {
                return Err(InfluxQlError::Invalid(
                    "only time and tag dimensions allowed".into(),
                ))
            }
        }
    }
    Ok(g)
}

/// The tags `dims` name in `m`, in order, without repeats.
fn group_tags(dims: &[Expr], m: &Measurement) -> Result<Vec<String>, InfluxQlError> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: &str| {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    };
    for d in dims {
        match d.unparen() {
            Expr::Var { name, .. } => push(name),
            Expr::Wildcard(_) => m.tags.iter().for_each(|t| push(t)),
            Expr::Regex(p) => {
                let re = resolve::regex(p)?;
                m.tags.iter().filter(|t| re.is_match(t)).for_each(|t| push(t));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One series' points: the group key, times, and the values of the columns read.
struct SeriesData {
    key: Vec<Option<Arc<str>>>,
    times: Vec<i64>,
    cols: Vec<Vec<V>>,
}

/// Runs `stmt` over `db`.
pub async fn run(
    ctx: &SessionContext,
    db: &DbSchema,
    db_name: &str,
    stmt: &Select,
    now: i64,
) -> Result<Answer, InfluxQlError> {
    if stmt.into.is_some() {
        return Err(InfluxQlError::NotYet(
            "SELECT ... INTO is not supported yet".into(),
        ));
    }
    if stmt.timezone.is_some() {
        return Err(InfluxQlError::NotYet("tz() is not supported yet".into()));
    }
    let measurements = resolve::measurements(db, db_name, &stmt.from)?;
    let (mut range, rest) = time_range::split(stmt.condition.as_ref(), now)?;
    let grouping = grouping(&stmt.group_by, now)?;
    if grouping.interval.is_some() && !range.has_max {
        range.max = now;
    }
    let mut answer = Answer::default();
    let mut buckets_left = MAX_BUCKETS;
    for m in &measurements {
        let tags = group_tags(&grouping.dims, m)?;
        let out = fields::expand(&stmt.fields, m, &tags)?;
        let shape = fields::shape(&out, grouping.interval.is_some())?;
        if out.iter().all(|f| fields::columns_read(std::slice::from_ref(f), m).is_empty()) {
            // Nothing this measurement holds is asked for (tags only, or unknown names).
            continue;
        }
        let read = fields::columns_read(&out, m);
        if range.is_empty() {
            continue;
        }
        let series = fetch(ctx, m, &tags, &read, &range, rest.as_ref()).await?;
        let mut rows_out = Vec::new();
        let field_cols: Vec<bool> = read
            .iter()
            .map(|(_, c)| matches!(c, Column::Field(_)))
            .collect();
        let first_time = series.iter().filter_map(|s| s.times.first()).min().copied();
        for s in series {
            let rows = match shape {
                Shape::Raw => raw_rows(&s, &out, &read, &field_cols),
                Shape::RawTransform => {
                    let columns = out
                        .iter()
                        .map(|f| series_column(&f.expr, &s, &read))
                        .collect::<Result<Vec<_>, _>>()?;
                    join_by_time(columns)
                }
                Shape::Aggregate => aggregate_rows(
                    &s,
                    &out,
                    &read,
                    &range,
                    grouping.interval,
                    first_time,
                    stmt.fill.unwrap_or(Fill::Null),
                    &mut buckets_left,
                )?,
            };
            if rows.is_empty() {
                continue;
            }
            let mut rows = rows;
            if stmt.order_desc {
                rows.reverse();
            }
            let offset = stmt.offset.unwrap_or(0) as usize;
            let rows: Vec<_> = match stmt.limit.filter(|l| *l > 0) {
                Some(l) => rows.into_iter().skip(offset).take(l as usize).collect(),
                None => rows.into_iter().skip(offset).collect(),
            };
            if rows.is_empty() {
                continue;
            }
            rows_out.push(SeriesRows {
                measurement: m.name().to_string(),
                tags: tags.iter().cloned().zip(s.key).collect(),
                columns: out.iter().map(|f| f.name.clone()).collect(),
                rows,
            });
        }
        answer.series.extend(rows_out);
    }
    let soffset = stmt.soffset.unwrap_or(0) as usize;
    let series = std::mem::take(&mut answer.series).into_iter().skip(soffset);
    answer.series = match stmt.slimit.filter(|l| *l > 0) {
        Some(l) => series.take(l as usize).collect(),
        None => series.collect(),
    };
    Ok(answer)
}

fn ts(t: i64) -> DfExpr {
    lit(ScalarValue::TimestampNanosecond(Some(t), None))
}

/// Reads `m`'s rows in `range` matching `rest`, as series ordered by `tags` then time.
async fn fetch(
    ctx: &SessionContext,
    m: &Measurement,
    tags: &[String],
    read: &[(String, Column)],
    range: &TimeRange,
    rest: Option<&Expr>,
) -> Result<Vec<SeriesData>, InfluxQlError> {
    let df = ctx.table(TableReference::bare(m.name())).await?;
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
    let df = match pred {
        Some(p) => df.filter(p)?,
        None => df,
    };
    let mut select = vec![column("time")];
    let mut key_cols = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let alias = format!("__group_{i}");
        let e = if m.tags.contains(t) {
            column(t)
        } else {
            lit(ScalarValue::Utf8(None))
        };
        select.push(e.alias(&alias));
        key_cols.push(alias);
    }
    for (i, (name, _)) in read.iter().enumerate() {
        select.push(column(name).alias(format!("__read_{i}")));
    }
    let mut sort: Vec<_> = key_cols
        .iter()
        .map(|k| column(k).sort(true, true))
        .collect();
    sort.push(column("time").sort(true, true));
    let df = df.select(select)?.sort(sort)?;
    let batches = df.collect().await?;
    let mut out: Vec<SeriesData> = Vec::new();
    for b in &batches {
        split_batch(b, tags.len(), read.len(), &mut out);
    }
    Ok(out)
}

fn split_batch(b: &RecordBatch, ntags: usize, nread: usize, out: &mut Vec<SeriesData>) {
    let times = b.column(0).as_primitive::<TimestampNanosecondType>();
    let keys: Vec<&dyn Array> = (0..ntags).map(|i| b.column(1 + i).as_ref()).collect();
    let reads: Vec<&dyn Array> = (0..nread).map(|i| b.column(1 + ntags + i).as_ref()).collect();
    for row in 0..b.num_rows() {
        let key: Vec<Option<Arc<str>>> = keys
            .iter()
            .map(|k| match value_at(*k, row) {
                V::S(s) => Some(s),
                _ => None,
            })
            .collect();
        let same = out.last().is_some_and(|s| s.key == key);
        if !same {
            out.push(SeriesData {
                key,
                times: Vec::new(),
                cols: vec![Vec::new(); nread],
            });
        }
        let s = out.last_mut().expect("pushed above");
        s.times.push(times.value(row));
        for (c, col) in reads.iter().enumerate() {
            s.cols[c].push(value_at(*col, row));
        }
    }
}

fn read_index(read: &[(String, Column)], name: &str) -> Option<usize> {
    read.iter().position(|(n, _)| n == name)
}

/// The value of a field expression at one point.
fn eval_point(e: &Expr, s: &SeriesData, row: usize, read: &[(String, Column)]) -> V {
    match e {
        Expr::Var { name, .. } => match read_index(read, name) {
            Some(i) => s.cols[i][row].clone(),
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

fn constant(e: &Expr) -> V {
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
fn arith(op: shardline_influxql::ast::BinaryOp, a: &V, b: &V) -> V {
    use shardline_influxql::ast::BinaryOp as Op;
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
fn raw_rows(
    s: &SeriesData,
    out: &[OutField],
    read: &[(String, Column)],
    field_cols: &[bool],
) -> Vec<(i64, Vec<V>)> {
    let mut rows = Vec::new();
    for row in 0..s.times.len() {
        let any_field = s
            .cols
            .iter()
            .zip(field_cols)
            .any(|(c, is_field)| *is_field && !c[row].is_null());
        if !any_field {
            continue;
        }
        let values: Vec<V> = out.iter().map(|f| eval_point(&f.expr, s, row, read)).collect();
        rows.push((s.times[row], values));
    }
    rows
}

/// A field expression over a whole series of raw points (for transformations of raw
/// values): its points, nulls left out.
fn series_column(
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
fn combine(
    op: shardline_influxql::ast::BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    l: Vec<Point>,
    r: Vec<Point>,
) -> Vec<Point> {
    let lconst = is_const(lhs);
    let rconst = is_const(rhs);
    match (lconst, rconst) {
        (true, true) => vec![(0, arith(op, &l[0].1, &r[0].1))],
        (true, false) => r.into_iter().map(|(t, v)| (t, arith(op, &l[0].1, &v))).collect(),
        (false, true) => l.into_iter().map(|(t, v)| (t, arith(op, &v, &r[0].1))).collect(),
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

fn is_const(e: &Expr) -> bool {
    !matches!(constant(e.unparen()), V::Null) || matches!(e.unparen(), Expr::Binary { lhs, rhs, .. } if is_const(lhs) && is_const(rhs))
}

/// Rows from per-field columns of points: one per time any field has, ascending.
fn join_by_time(columns: Vec<Vec<Point>>) -> Vec<(i64, Vec<V>)> {
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

/// Buckets of one series: `(start, end)` as indices into its points.
fn buckets(
    s: &SeriesData,
    range: &TimeRange,
    interval: Option<Interval>,
    first_time: Option<i64>,
    budget: &mut usize,
) -> Result<Vec<(i64, usize, usize)>, InfluxQlError> {
    let Some(iv) = interval else {
        let t = if range.has_min { range.min } else { 0 };
        return Ok(vec![(t, 0, s.times.len())]);
    };
    let lo = if range.has_min {
        range.min
    } else {
        first_time.unwrap_or(range.min)
    };
    let first = iv.bucket(lo);
    let last = iv.bucket(range.max);
    let count = ((last as i128 - first as i128) / iv.every as i128 + 1).max(0) as usize;
    if count > *budget {
        return Err(InfluxQlError::Invalid(format!(
            "max-select-buckets limit exceeded: ({count}/{MAX_BUCKETS}): narrow the time range or widen the GROUP BY time interval"
        )));
    }
    *budget -= count;
    let mut out = Vec::with_capacity(count);
    let mut i = 0;
    for k in 0..count {
        let start = first + k as i64 * iv.every;
        let end = start.saturating_add(iv.every);
        while i < s.times.len() && s.times[i] < start {
            i += 1;
        }
        let from = i;
        while i < s.times.len() && s.times[i] < end {
            i += 1;
        }
        out.push((start, from, i));
    }
    Ok(out)
}

/// The result of one aggregate field over the buckets: per bucket, its points (empty for a
/// bucket with no value).
type BucketColumn = Vec<Vec<Point>>;

#[allow(clippy::too_many_arguments)]
fn aggregate_rows(
    s: &SeriesData,
    out: &[OutField],
    read: &[(String, Column)],
    range: &TimeRange,
    interval: Option<Interval>,
    first_time: Option<i64>,
    fill: Fill,
    budget: &mut usize,
) -> Result<Vec<(i64, Vec<V>)>, InfluxQlError> {
    let bks = buckets(s, range, interval, first_time, budget)?;
    // A selector alone, without GROUP BY time, answers its point's time.
    let calls: usize = out.iter().map(|f| count_calls(&f.expr)).sum();
    let point_time = interval.is_none() && calls == 1 && out.len() == 1 && selector_at_top(&out[0].expr);
    let mut columns = Vec::with_capacity(out.len());
    for f in out {
        columns.push(eval_buckets(&f.expr, s, read, &bks, point_time)?);
    }
    // Fields whose calls are transformations change the row set: join those by time.
    let transformed = out.iter().any(|f| has_transform(&f.expr));
    let multi = columns.iter().any(|c| c.iter().any(|b| b.len() > 1));
    if transformed || multi || point_time {
        let cols: Vec<Vec<Point>> = columns
            .into_iter()
            .map(|c| c.into_iter().flatten().collect())
            .collect();
        return Ok(join_by_time(cols));
    }
    let mut rows: Vec<(i64, Vec<V>)> = bks
        .iter()
        .enumerate()
        .map(|(k, (start, _, _))| {
            let values = columns
                .iter()
                .map(|c| c[k].first().map(|p| p.1.clone()).unwrap_or(V::Null))
                .collect();
            (*start, values)
        })
        .collect();
    let empty: Vec<bool> = bks.iter().map(|(_, a, b)| a == b).collect();
    apply_fill(&mut rows, &empty, out, fill);
    if fill == Fill::None {
        rows.retain(|(_, vs)| vs.iter().any(|v| !v.is_null()));
    }
    Ok(rows)
}

fn count_calls(e: &Expr) -> usize {
    let mut n = 0;
    e.walk(&mut |x| {
        if let Expr::Call { name, .. } = x {
            if matches!(kind_of(name), Some(Kind::Aggregate | Kind::Selector)) {
                n += 1;
            }
        }
    });
    n
}

fn selector_at_top(e: &Expr) -> bool {
    match e.unparen() {
        Expr::Call { name, .. } => kind_of(name) == Some(Kind::Selector),
        _ => false,
    }
}

fn has_transform(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        if let Expr::Call { name, .. } = x {
            found |= kind_of(name) == Some(Kind::Transform);
        }
    });
    found
}

fn eval_buckets(
    e: &Expr,
    s: &SeriesData,
    read: &[(String, Column)],
    bks: &[(i64, usize, usize)],
    point_time: bool,
) -> Result<BucketColumn, InfluxQlError> {
    match e {
        Expr::Paren(inner) => eval_buckets(inner, s, read, bks, point_time),
        Expr::Distinct(name) => {
            let call = Expr::Call {
                name: "distinct".into(),
                args: vec![Expr::var(name.clone())],
            };
            eval_buckets(&call, s, read, bks, point_time)
        }
        Expr::Call { name, args } => match kind_of(name) {
            Some(Kind::Aggregate | Kind::Selector) => {
                let (field, distinct): (Expr, bool) = match &args[0] {
                    Expr::Call { args: inner, .. } => (inner[0].clone(), true),
                    Expr::Distinct(n) => (Expr::var(n.clone()), true),
                    other => (other.clone(), false),
                };
                let arg = args.get(1).map(constant);
                let mut out = Vec::with_capacity(bks.len());
                for &(start, from, to) in bks {
                    let points: Vec<Point> = (from..to)
                        .filter_map(|r| {
                            let v = eval_point(&field, s, r, read);
                            (!v.is_null()).then_some((s.times[r], v))
                        })
                        .collect();
                    let points = if distinct {
                        functions::reduce("distinct", &points, None)?
                    } else {
                        points
                    };
                    if points.is_empty() {
                        // An empty bucket: `fill` decides (and an empty count is 0).
                        out.push(Vec::new());
                        continue;
                    }
                    let reduced = functions::reduce(name, &points, arg.as_ref())?;
                    // Selectors answer their points' times when alone without GROUP BY
                    // time; those answering several points (top, bottom, sample) always.
                    let several = matches!(name.as_str(), "top" | "bottom" | "sample");
                    let keep_time = point_time || several;
                    out.push(
                        reduced
                            .into_iter()
                            .map(|(t, v)| (if keep_time { t } else { start }, v))
                            .collect(),
                    );
                }
                Ok(out)
            }
            Some(Kind::Transform) => {
                let inner = eval_buckets(&args[0], s, read, bks, point_time)?;
                let points: Vec<Point> = inner.into_iter().flatten().filter(|(_, v)| !v.is_null()).collect();
                let arg = args.get(1).map(constant);
                let transformed = functions::transform(name, &points, arg.as_ref())?;
                Ok(vec![transformed])
            }
            Some(Kind::Math) => {
                let inner = eval_buckets(&args[0], s, read, bks, point_time)?;
                let y = args.get(1).map(constant);
                Ok(inner
                    .into_iter()
                    .map(|b| {
                        b.into_iter()
                            .map(|(t, v)| (t, functions::math(name, &v, y.as_ref())))
                            .collect()
                    })
                    .collect())
            }
            None => Err(InfluxQlError::Invalid(format!("undefined function {name}()"))),
        },
        Expr::Binary { op, lhs, rhs } => {
            let l = eval_buckets(lhs, s, read, bks, point_time)?;
            let r = eval_buckets(rhs, s, read, bks, point_time)?;
            let lconst = is_const(lhs);
            let rconst = is_const(rhs);
            Ok((0..bks.len())
                .map(|k| {
                    let lv = if lconst { l[0].first() } else { l.get(k).and_then(|b| b.first()) };
                    let rv = if rconst { r[0].first() } else { r.get(k).and_then(|b| b.first()) };
                    match (lv, rv) {
                        (Some((t, a)), Some((_, b))) => {
                            let t = if lconst { bks[k].0 } else { *t };
                            vec![(t, arith(*op, a, b))]
                        }
                        _ => Vec::new(),
                    }
                })
                .collect())
        }
        other => Ok(bks.iter().map(|(t, _, _)| vec![(*t, constant(other))]).collect()),
    }
}

/// Fills empty buckets: `count` is 0 (or the fill number) where no point fell; other
/// fields per `fill`.
fn apply_fill(rows: &mut [(i64, Vec<V>)], empty: &[bool], out: &[OutField], fill: Fill) {
    for (c, f) in out.iter().enumerate() {
        let is_count = matches!(f.expr.unparen(), Expr::Call { name, .. } if name == "count");
        for (k, (_, vs)) in rows.iter_mut().enumerate() {
            if !vs[c].is_null() {
                continue;
            }
            match fill {
                Fill::Integer(n) => vs[c] = V::I(n),
                Fill::Float(x) => vs[c] = V::F(x),
                _ if is_count && empty[k] => vs[c] = V::I(0),
                _ => {}
            }
        }
        match fill {
            Fill::Previous => {
                let mut prev = V::Null;
                for (_, vs) in rows.iter_mut() {
                    if vs[c].is_null() {
                        vs[c] = prev.clone();
                    } else {
                        prev = vs[c].clone();
                    }
                }
            }
            Fill::Linear => {
                let known: Vec<usize> = (0..rows.len()).filter(|&k| !rows[k].1[c].is_null()).collect();
                for w in known.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    let (ta, tb) = (rows[a].0, rows[b].0);
                    let (Some(va), Some(vb)) = (rows[a].1[c].as_f64(), rows[b].1[c].as_f64()) else {
                        continue;
                    };
                    let ints = matches!((&rows[a].1[c], &rows[b].1[c]), (V::I(_), V::I(_)));
                    for k in a + 1..b {
                        let t = rows[k].0;
                        let v = va + (vb - va) * (t - ta) as f64 / (tb - ta) as f64;
                        rows[k].1[c] = if ints { V::I(v as i64) } else { V::F(v) };
                    }
                }
            }
            _ => {}
        }
    }
}
