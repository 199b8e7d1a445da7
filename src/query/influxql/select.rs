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

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampNanosecondType;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::logical_expr::lit;
use datafusion::logical_expr::{Expr as DfExpr, JoinType};
use datafusion::prelude::SessionContext;
use shardline_influxql::ast::{Expr, Fill, Select, Source};
use shardline_shards::schema::{ColumnType, DbSchema};

use super::aggregate::{self, Interval, Series, MAX_BUCKETS};
use super::condition::column;
use super::eval::{self, SeriesData};
use super::fast;
use super::fields::{self, Shape};
use super::resolve::{self, Column, Measurement};
use super::time_range::{self, TimeRange};
use super::values::{ValueReader, V};
use super::{Answer, InfluxQlError, SeriesRows};

/// The `GROUP BY` of a statement.
#[derive(Debug, Clone)]
pub(super) struct Grouping {
    pub(super) interval: Option<Interval>,
    /// Tags named; `*` and regexes are expanded per measurement.
    pub(super) dims: Vec<Expr>,
}

/// The tag names and the fields (the first type seen of each) of several measurements,
/// sorted as one measurement's are.
pub(super) fn union_of<'a>(
    measurements: impl Iterator<Item = &'a Measurement>,
) -> (Vec<String>, Vec<(String, ColumnType)>) {
    let mut tags = std::collections::BTreeSet::new();
    let mut fields = std::collections::BTreeMap::new();
    for m in measurements {
        tags.extend(m.tags.iter().cloned());
        for (name, ty) in &m.fields {
            fields.entry(name.clone()).or_insert(*ty);
        }
    }
    (tags.into_iter().collect(), fields.into_iter().collect())
}

pub(super) fn grouping(
    dims: &[Expr],
    now: i64,
    tz: Option<chrono_tz::Tz>,
) -> Result<Grouping, InfluxQlError> {
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
                    tz,
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

/// The tags `dims` name in `m`, sorted (1.x orders series by tag key, whatever order
/// `GROUP BY` names them in), without repeats.
pub(super) fn group_tags(dims: &[Expr], m: &Measurement) -> Result<Vec<String>, InfluxQlError> {
    let mut out: Vec<String> = Vec::new();
    for d in dims {
        match d.unparen() {
            Expr::Var { name, .. } => out.push(name.clone()),
            Expr::Wildcard(_) => out.extend(m.tags.iter().cloned()),
            Expr::Regex(p) => {
                let re = resolve::regex(p)?;
                out.extend(m.tags.iter().filter(|t| re.is_match(t)).cloned());
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Refuses sources naming a database or retention policy that does not exist, as 1.x does.
pub(super) fn check_sources(from: &[Source], db_name: &str) -> Result<(), InfluxQlError> {
    for s in from {
        if let Source::Measurement(m) = s {
            if let Some(db) = m.database.as_deref().filter(|d| *d != db_name) {
                return Err(InfluxQlError::Invalid(format!("database not found: {db}")));
            }
            if let Some(rp) = m.policy.as_deref().filter(|rp| *rp != "autogen") {
                return Err(InfluxQlError::Invalid(format!(
                    "retention policy not found: {rp}"
                )));
            }
        }
    }
    Ok(())
}

/// Runs `stmt` over `db` (boxed: a subquery runs it again, inside).
pub fn run<'a>(
    ctx: &'a SessionContext,
    db: &'a DbSchema,
    db_name: &'a str,
    stmt: &'a Select,
    now: i64,
) -> futures::future::BoxFuture<'a, Result<Answer, InfluxQlError>> {
    Box::pin(run_select(ctx, db, db_name, stmt, now))
}

/// Where a measurement's rows come from.
enum Rows {
    /// Its table, through DataFusion.
    Table,
    /// A subquery's answer.
    Subquery(Vec<super::subquery::Row>),
}

async fn run_select(
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
    let tz = match &stmt.timezone {
        None => None,
        Some(name) => Some(name.parse::<chrono_tz::Tz>().map_err(|_| {
            InfluxQlError::Invalid(format!(
                "error parsing query: unable to find time zone {name}"
            ))
        })?),
    };
    fields::check_statement(stmt)?;
    check_sources(&stmt.from, db_name)?;
    let sources: Vec<(Measurement, Rows)> =
        if stmt.from.iter().any(|s| matches!(s, Source::Subquery(_))) {
            let mut inner = Vec::new();
            for s in &stmt.from {
                let Source::Subquery(sub) = s else {
                    return Err(InfluxQlError::NotYet(
                        "a FROM mixing measurements and subqueries is not supported yet".into(),
                    ));
                };
                // As in 1.x, the outer statement's tag dimensions are the inner one's too,
                // so the inner rows keep the tags the outer groups by.
                let mut sub = (**sub).clone();
                for d in &stmt.group_by {
                    let is_time = matches!(d.unparen(), Expr::Call { name, .. } if name == "time");
                    if !is_time && !sub.group_by.contains(d) {
                        sub.group_by.push(d.clone());
                    }
                }
                inner.push(run(ctx, db, db_name, &sub, now).await?);
            }
            super::subquery::measurements(inner)
                .into_iter()
                .map(|(m, rows)| (m, Rows::Subquery(rows)))
                .collect()
        } else {
            resolve::measurements(db, db_name, &stmt.from)?
                .into_iter()
                .map(|m| (m, Rows::Table))
                .collect()
        };
    let (mut range, rest) = time_range::split(stmt.condition.as_ref(), now, tz)?;
    let grouping = grouping(&stmt.group_by, now, tz)?;
    if grouping.interval.is_some() && !range.has_max {
        range.max = now;
    }
    let mut answer = Answer::default();
    let mut budget = MAX_BUCKETS;
    // As in 1.x, wildcards and regexes over several measurements expand to the names of all
    // of them: every series has the same columns, null where its measurement lacks one.
    let names = (sources.len() > 1).then(|| union_of(sources.iter().map(|(m, _)| m)));
    for (m, rows) in &sources {
        let named = names.as_ref().map(|(tags, fields)| Measurement {
            table: m.table.clone(),
            tags: tags.clone(),
            fields: fields.clone(),
        });
        let tags = group_tags(&grouping.dims, named.as_ref().unwrap_or(m))?;
        let out = fields::expand(&stmt.fields, named.as_ref().unwrap_or(m), &tags)?;
        if out.is_empty() {
            // Wildcards or regexes that match nothing here.
            continue;
        }
        let fill_none = matches!(stmt.fill, Some(Fill::None));
        let shape = fields::shape(&out, grouping.interval.is_some(), fill_none)?;
        eval::check_types(&out, m)?;
        let read = fields::columns_read(&out, m);
        if !read.iter().any(|(_, c)| matches!(c, Column::Field(_))) || range.is_empty() {
            // Nothing this measurement holds is asked for (tags only, or unknown names).
            continue;
        }
        let lookback = aggregate::lookback(&out);
        let mut fetch_range = range;
        if let (Some(iv), true) = (grouping.interval, lookback > 0 && range.has_min) {
            fetch_range.min = iv.bucket(range.min).saturating_sub(lookback * iv.every);
        }
        let fill = stmt.fill.unwrap_or(Fill::Null);
        let fast_specs = match (shape, rows) {
            (Shape::Aggregate, Rows::Table) if lookback == 0 && fast::enabled() => {
                fast::aggregate_specs(&out, m, grouping.interval)
            }
            _ => None,
        };
        let mut per_series: Vec<(super::values::SeriesKey, super::values::Rows)> = Vec::new();
        if let Some(specs) = fast_specs {
            let agg = fast::aggregate(
                ctx,
                m,
                &tags,
                &specs,
                &range,
                rest.as_ref(),
                grouping.interval,
            )
            .await?;
            let first_time = agg.values().filter_map(|b| b.keys().next()).min().copied();
            for (key, buckets) in &agg {
                let rows = fast::rows(
                    buckets,
                    &out,
                    &range,
                    grouping.interval,
                    first_time,
                    fill,
                    &mut budget,
                )?;
                per_series.push((key.clone(), rows));
            }
        } else {
            let series = match rows {
                Rows::Table => {
                    fetch(ctx, m, &tags, &read, &fetch_range, rest.as_ref(), stmt).await?
                }
                Rows::Subquery(rows) => {
                    super::subquery::series(rows, m, &tags, &read, &fetch_range, rest.as_ref())?
                }
            };
            let field_cols: Vec<bool> = read
                .iter()
                .map(|(_, c)| matches!(c, Column::Field(_)))
                .collect();
            let first_time = series.iter().filter_map(|s| s.times.first()).min().copied();
            for s in series {
                let rows = match shape {
                    Shape::Raw => eval::raw_rows(&s, &out, &read, &field_cols),
                    Shape::RawTransform => {
                        let columns = out
                            .iter()
                            .map(|f| eval::series_column(&f.expr, &s, &read))
                            .collect::<Result<Vec<_>, _>>()?;
                        eval::join_by_time(columns)
                    }
                    Shape::Aggregate => Series {
                        data: &s,
                        read: &read,
                        interval: grouping.interval,
                        fill,
                    }
                    .rows(&out, &range, first_time, lookback, &mut budget)?,
                };
                per_series.push((s.key, rows));
            }
        }
        let mut found = Vec::new();
        for (key, rows) in per_series {
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
            found.push(SeriesRows {
                measurement: m.name().to_string(),
                tags: tags.iter().cloned().zip(key).collect(),
                columns: out.iter().map(|f| f.name.clone()).collect(),
                rows,
            });
        }
        if stmt.order_desc {
            found.reverse();
        }
        answer.series.extend(found);
    }
    let soffset = stmt.soffset.unwrap_or(0) as usize;
    let series = std::mem::take(&mut answer.series).into_iter().skip(soffset);
    answer.series = match stmt.slimit.filter(|l| *l > 0) {
        Some(l) => series.take(l as usize).collect(),
        None => series.collect(),
    };
    Ok(answer)
}

/// Reads `m`'s rows in `range` matching `rest`, as series ordered by `tags` then time.
/// Most values (points × columns) the evaluator holds for one statement; DataFusion's own
/// work is bounded by `--query-memory-limit`, and this bounds what is handed to the evaluator.
pub const MAX_EVALUATED_VALUES: usize = 50_000_000;

/// Reads `m`'s rows in `range` matching `rest` that have a value in a field read, as
/// series ordered by `tags` then time. A raw statement with `LIMIT` reads only the rows it
/// may answer (numbered per series by a window function).
async fn fetch(
    ctx: &SessionContext,
    m: &Measurement,
    tags: &[String],
    read: &[(String, Column)],
    range: &TimeRange,
    rest: Option<&Expr>,
    stmt: &Select,
) -> Result<Vec<SeriesData>, InfluxQlError> {
    let df = sorted_frame(ctx, m, tags, read, range, rest, stmt, false).await?;
    let batches = df.collect().await?;
    let values: usize = batches
        .iter()
        .map(|b| b.num_rows() * (read.len() + 1))
        .sum();
    if values > MAX_EVALUATED_VALUES {
        return Err(InfluxQlError::TooLarge(format!(
            "the statement reads {values} values from {}, more than the {MAX_EVALUATED_VALUES} the InfluxQL evaluator holds at once; narrow its time range, select fewer fields, aggregate with GROUP BY time, or ask /query with chunked=true, which streams raw points",
            m.name()
        )));
    }
    let mut out: Vec<SeriesData> = Vec::new();
    for b in &batches {
        split_batch(b, tags.len(), read.len(), &mut out);
    }
    Ok(out)
}

/// The plan of [`fetch`]: columns `time`, the group tags, the columns read, sorted by the
/// group tags then time (all descending if `descending`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn sorted_frame(
    ctx: &SessionContext,
    m: &Measurement,
    tags: &[String],
    read: &[(String, Column)],
    range: &TimeRange,
    rest: Option<&Expr>,
    stmt: &Select,
    descending: bool,
) -> Result<datafusion::dataframe::DataFrame, InfluxQlError> {
    let fields: Vec<&str> = read
        .iter()
        .filter(|(_, c)| matches!(c, Column::Field(_)))
        .map(|(n, _)| n.as_str())
        .collect();
    let predicate = fast::predicate(m, range, rest, &fields)?;
    let filtered = || async {
        let df = ctx.table(TableReference::bare(m.name())).await?;
        match &predicate {
            Some(p) => df.filter(p.clone()),
            None => Ok(df),
        }
    };
    let group_expr = |t: &String| {
        if m.tags.contains(t) {
            column(t)
        } else {
            lit(ScalarValue::Utf8(None))
        }
    };
    let mut select = vec![column("time")];
    let mut key_cols = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let alias = format!("__group_{i}");
        select.push(group_expr(t).alias(&alias));
        key_cols.push(alias);
    }
    for (i, (name, _)) in read.iter().enumerate() {
        select.push(column(name).alias(format!("__read_{i}")));
    }
    let output: Vec<_> = select
        .iter()
        .map(|e| column(&e.schema_name().to_string()))
        .collect();
    let mut df = filtered().await?.select(select)?;
    let raw = stmt.fields.iter().all(|f| {
        let mut calls = false;
        f.expr
            .walk(&mut |e| calls |= matches!(e, Expr::Call { .. } | Expr::Distinct(_)));
        !calls
    });
    if let (true, Some(limit)) = (raw, stmt.limit.filter(|l| *l > 0)) {
        let keep = limit.saturating_add(stmt.offset.unwrap_or(0));
        if keep == 1 {
            // The first (or last) row of each series: its time by an aggregate, then the
            // rows at that time by a join, instead of numbering every row the range holds.
            // The small side (one row per series) builds the join's table; keys compare
            // NULL as equal, for series that lack a group tag.
            use datafusion::functions_aggregate::expr_fn::{max, min};
            let edge = if stmt.order_desc {
                max(column("time"))
            } else {
                min(column("time"))
            };
            let mut group = Vec::new();
            let not_distinct = |a: DfExpr, b: DfExpr| {
                DfExpr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
                    Box::new(a),
                    datafusion::logical_expr::Operator::IsNotDistinctFrom,
                    Box::new(b),
                ))
            };
            let mut on = vec![not_distinct(column("__edge"), column("time"))];
            for (i, t) in tags.iter().enumerate() {
                let key = format!("__edge_key_{i}");
                group.push(group_expr(t).alias(&key));
                on.push(not_distinct(column(&key), column(&key_cols[i])));
            }
            let edges = filtered()
                .await?
                .aggregate(group, vec![edge.alias("__edge")])?;
            df = edges.join_on(df, JoinType::Inner, on)?.select(output)?;
        } else {
            use datafusion::logical_expr::ExprFunctionExt;
            let rn = datafusion::functions_window::expr_fn::row_number()
                .partition_by(key_cols.iter().map(|k| column(k)).collect())
                .order_by(vec![column("time").sort(!stmt.order_desc, true)])
                .build()?
                .alias("__rn");
            df = df
                .window(vec![rn])?
                .filter(column("__rn").lt_eq(lit(keep as i64)))?
                .select(output)?;
        }
    }
    // Descending is the exact reverse of ascending with nulls first.
    let mut sort: Vec<_> = key_cols
        .iter()
        .map(|k| column(k).sort(!descending, !descending))
        .collect();
    sort.push(column("time").sort(!descending, !descending));
    Ok(df.sort(sort)?)
}

pub(super) fn split_batch(b: &RecordBatch, ntags: usize, nread: usize, out: &mut Vec<SeriesData>) {
    let times = b.column(0).as_primitive::<TimestampNanosecondType>();
    let mut keys: Vec<ValueReader> = (0..ntags)
        .map(|i| ValueReader::new(b.column(1 + i).as_ref()))
        .collect();
    let mut reads: Vec<ValueReader> = (0..nread)
        .map(|i| ValueReader::new(b.column(1 + ntags + i).as_ref()))
        .collect();
    for row in 0..b.num_rows() {
        let key: Vec<Option<Arc<str>>> = keys
            .iter_mut()
            .map(|k| match k.get(row) {
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
        for (c, col) in reads.iter_mut().enumerate() {
            s.cols[c].push(col.get(row));
        }
    }
}
