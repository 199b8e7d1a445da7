//! Aggregate `SELECT`s over one series: its points cut into buckets (`GROUP BY time`, or one
//! bucket for the whole range), every call computed per bucket, `fill` applied to each
//! aggregate where a bucket has no points, transformations run over the filled results,
//! and the rows assembled.
//!
//! Invariants: buckets start at `floor((t - offset) / every) * every + offset`; a
//! transformation that needs earlier buckets (a derivative, a difference, a moving average)
//! reads that many buckets before the range and its rows before the range are dropped, as
//! 1.x does; a series none of whose read fields has a value in the range gives no rows,
//! whatever the fill; selectors answer their points' times where 1.x does (alone without
//! `GROUP BY time`, and always for `top`, `bottom`, `sample`).

use std::collections::BTreeMap;

use shardline_influxql::ast::{Expr, Fill};

use super::eval::{arith, constant, eval_point, is_const, join_by_time, read_index, SeriesData};
use super::fields::OutField;
use super::functions::{self, kind_of, Kind, Point};
use super::resolve::Column;
use super::time_range::TimeRange;
use super::values::V;
use super::InfluxQlError;

/// Most buckets one statement may compute (over all its series).
pub const MAX_BUCKETS: usize = 10_000_000;

/// `GROUP BY time(every, offset)`, in the `tz()` zone's local time when there is one (so
/// a day is a local day: 23 or 25 hours across a DST change).
#[derive(Debug, Clone, Copy)]
pub struct Interval {
    pub every: i64,
    pub offset: i64,
    pub tz: Option<chrono_tz::Tz>,
}

/// Seconds east of UTC of `tz` at instant `t`.
fn zone_offset(tz: chrono_tz::Tz, t: i64) -> i64 {
    use chrono::{Offset, TimeZone};
    let utc = chrono::DateTime::from_timestamp_nanos(t).naive_utc();
    tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64 * 1_000_000_000
}

impl Interval {
    fn floor(&self, t: i64) -> i64 {
        let rel = t as i128 - self.offset as i128;
        let b = rel.div_euclid(self.every as i128) * self.every as i128 + self.offset as i128;
        b.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// The start of the bucket `t` falls in.
    pub fn bucket(&self, t: i64) -> i64 {
        let Some(tz) = self.tz else {
            return self.floor(t);
        };
        // Floor in local time, then back to UTC with the offset at the bucket's start (which
        // differs from `t`'s when the bucket spans a DST change).
        let off = zone_offset(tz, t);
        let start = self.floor(t.saturating_add(off)).saturating_sub(off);
        let start_off = zone_offset(tz, start);
        if start_off == off {
            start
        } else {
            start.saturating_add(off - start_off)
        }
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(&self, start: i64) -> i64 {
        if self.tz.is_none() {
            return start.saturating_add(self.every);
        }
        let mut probe = start.saturating_add(self.every);
        loop {
            let b = self.bucket(probe);
            if b > start || probe == i64::MAX {
                return b;
            }
            // A local day of 25 hours: the same bucket an interval later.
            probe = probe.saturating_add(3_600_000_000_000);
        }
    }
}

/// One bucket: its start, and its points as a range of the series' rows.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: i64,
    from: usize,
    to: usize,
}

/// Per bucket, the points a field expression yields there (empty: no value).
type BucketColumn = Vec<Vec<Point>>;

/// How many buckets before the range the fields' transformations need.
pub fn lookback(fields: &[OutField]) -> i64 {
    let mut n = 0;
    for f in fields {
        f.expr.walk(&mut |e| {
            if let Expr::Call { name, args } = e {
                let need = match name.as_str() {
                    "derivative"
                    | "non_negative_derivative"
                    | "difference"
                    | "non_negative_difference"
                    | "elapsed" => 1,
                    "moving_average" => match args.get(1) {
                        Some(Expr::Integer(k)) if *k > 1 => k - 1,
                        _ => 0,
                    },
                    _ => 0,
                };
                if need > 0 && args.first().is_some_and(|a| matches!(a, Expr::Call { .. })) {
                    n = n.max(need);
                }
            }
        });
    }
    n
}

/// Everything an aggregate evaluation over one series reads.
#[derive(Debug)]
pub struct Series<'a> {
    pub data: &'a SeriesData,
    pub read: &'a [(String, Column)],
    pub interval: Option<Interval>,
    pub fill: Fill,
}

impl Series<'_> {
    /// The rows of `out` for this series. `range` is the statement's (with `now()` as its
    /// end when grouping by time); `first_time` the earliest point of the query, where a
    /// range without a start begins; `lookback` from [`lookback`].
    pub fn rows(
        &self,
        out: &[OutField],
        range: &TimeRange,
        first_time: Option<i64>,
        lookback: i64,
        budget: &mut usize,
    ) -> Result<Vec<(i64, Vec<V>)>, InfluxQlError> {
        let start = if range.has_min {
            range.min
        } else {
            first_time.unwrap_or(range.min)
        };
        if !self.has_points(start) {
            return Ok(Vec::new());
        }
        let bks = self.buckets(range, start, lookback, budget)?;
        let first_kept = match self.interval {
            Some(iv) => iv.bucket(start),
            None => i64::MIN,
        };
        let calls: usize = out.iter().map(|f| count_calls(&f.expr)).sum();
        let selector = out
            .iter()
            .position(|f| selector_at_top(&f.expr))
            .filter(|_| calls == 1);
        let point_time = self.interval.is_none() && selector.is_some();
        let aux = out
            .iter()
            .any(|f| matches!(f.expr.unparen(), Expr::Var { .. }));
        let with_point = selector.filter(|&sel| aux || top_with_tags(&out[sel].expr));
        let mut rows = if let Some(sel) = with_point {
            self.selector_rows(out, sel, &bks, point_time)?
        } else {
            let mut columns = Vec::with_capacity(out.len());
            for f in out {
                columns.push(self.eval(&f.expr, &bks, point_time)?);
            }
            let several = columns.iter().any(|c| c.iter().any(|b| b.len() > 1));
            let transformed = out.iter().any(|f| has_transform(&f.expr));
            if several || transformed || point_time {
                let mut cols: Vec<Vec<Point>> = columns
                    .into_iter()
                    .map(|c| c.into_iter().flatten().collect())
                    .collect();
                if cols.len() == 1 {
                    cols.remove(0)
                        .into_iter()
                        .map(|(t, v)| (t, vec![v]))
                        .collect()
                } else {
                    join_by_time(cols)
                }
            } else {
                let mut rows = Vec::with_capacity(bks.len());
                for (k, b) in bks.iter().enumerate() {
                    if self.fill == Fill::None && columns.iter().all(|c| c[k].is_empty()) {
                        continue;
                    }
                    let values = columns
                        .iter()
                        .map(|c| c[k].first().map_or(V::Null, |p| p.1.clone()))
                        .collect();
                    rows.push((b.start, values));
                }
                rows
            }
        };
        rows.retain(|(t, _)| *t >= first_kept);
        Ok(rows)
    }

    /// Whether any field read has a value at or after `start`.
    fn has_points(&self, start: i64) -> bool {
        let from = self.data.times.partition_point(|t| *t < start);
        self.read.iter().zip(&self.data.cols).any(|((_, c), vals)| {
            matches!(c, Column::Field(_)) && vals[from..].iter().any(|v| !v.is_null())
        })
    }

    fn buckets(
        &self,
        range: &TimeRange,
        start: i64,
        lookback: i64,
        budget: &mut usize,
    ) -> Result<Vec<Bucket>, InfluxQlError> {
        let times = &self.data.times;
        let Some(iv) = self.interval else {
            let t = if range.has_min { range.min } else { 0 };
            let from = times.partition_point(|x| *x < start);
            return Ok(vec![Bucket {
                start: t,
                from,
                to: times.len(),
            }]);
        };
        let first = iv.bucket(
            iv.bucket(start)
                .saturating_sub(lookback.saturating_mul(iv.every)),
        );
        let last = iv.bucket(range.max);
        // Local days are 23 to 25 hours long: count allowing for it.
        let count = ((last as i128 - first as i128) / iv.every as i128 + 2).max(0) as usize;
        if count > *budget {
            return Err(InfluxQlError::Invalid(format!(
                "max-select-buckets limit exceeded: ({count}/{MAX_BUCKETS}): narrow the time range or widen the GROUP BY time interval"
            )));
        }
        *budget -= count;
        let mut out = Vec::with_capacity(count);
        let mut i = times.partition_point(|x| *x < first);
        let mut start = first;
        while start <= last {
            let end = iv.next(start);
            let from = i;
            while i < times.len() && times[i] < end {
                i += 1;
            }
            out.push(Bucket { start, from, to: i });
            if end <= start {
                break;
            }
            start = end;
        }
        Ok(out)
    }

    /// The non-null points of `field` in a bucket; none for a tag (1.x aggregates fields).
    fn points(&self, field: &Expr, b: &Bucket) -> Vec<Point> {
        if let Expr::Var { name, .. } = field {
            if let Some(i) = read_index(self.read, name) {
                if self.read[i].1 == Column::Tag {
                    return Vec::new();
                }
            }
        }
        (b.from..b.to)
            .filter_map(|r| {
                let v = eval_point(field, self.data, r, self.read);
                (!v.is_null()).then_some((self.data.times[r], v))
            })
            .collect()
    }

    fn eval(
        &self,
        e: &Expr,
        bks: &[Bucket],
        point_time: bool,
    ) -> Result<BucketColumn, InfluxQlError> {
        match e {
            Expr::Paren(inner) => self.eval(inner, bks, point_time),
            Expr::Distinct(name) => {
                let call = Expr::Call {
                    name: "distinct".into(),
                    args: vec![Expr::var(name.clone())],
                };
                self.eval(&call, bks, point_time)
            }
            Expr::Call { name, args } => match kind_of(name) {
                Some(Kind::Aggregate | Kind::Selector) => {
                    let (field, distinct): (Expr, bool) = match &args[0] {
                        Expr::Call { args: inner, .. } => (inner[0].clone(), true),
                        Expr::Distinct(n) => (Expr::var(n.clone()), true),
                        other => (other.clone(), false),
                    };
                    let arg = args.get(1).map(constant);
                    if name == "integral" && self.interval.is_some() {
                        return Ok(self.windowed_integral(&field, bks, arg.as_ref()));
                    }
                    let several = matches!(name.as_str(), "top" | "bottom" | "sample");
                    let keep_time = point_time || several;
                    let mut col = Vec::with_capacity(bks.len());
                    for b in bks {
                        let mut points = self.points(&field, b);
                        if distinct {
                            points = functions::reduce("distinct", &points, None)?;
                        }
                        if points.is_empty() {
                            col.push(Vec::new());
                            continue;
                        }
                        let reduced = functions::reduce(name, &points, arg.as_ref())?;
                        col.push(
                            reduced
                                .into_iter()
                                .map(|(t, v)| (if keep_time { t } else { b.start }, v))
                                .collect(),
                        );
                    }
                    if !several && name != "distinct" {
                        // 1.x counts 0 in a time bucket without points (not without
                        // GROUP BY time: there a count of nothing is null).
                        let zero = name == "count" && self.interval.is_some();
                        fill_column(&mut col, bks, self.fill, zero);
                    }
                    Ok(col)
                }
                Some(Kind::Transform) => {
                    let inner = self.eval(&args[0], bks, point_time)?;
                    let points: Vec<Point> = inner
                        .into_iter()
                        .flatten()
                        .filter(|(_, v)| !v.is_null())
                        .collect();
                    let arg = match args.get(1) {
                        Some(a) => Some(constant(a)),
                        // Over buckets, a rate is per interval unless a unit is given.
                        None if matches!(
                            name.as_str(),
                            "derivative" | "non_negative_derivative"
                        ) =>
                        {
                            self.interval.map(|iv| V::I(iv.every))
                        }
                        None => None,
                    };
                    let transformed = functions::transform(name, &points, arg.as_ref())?;
                    Ok(distribute(transformed, bks))
                }
                Some(Kind::Math) => {
                    let inner = self.eval(&args[0], bks, point_time)?;
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
                None => Err(InfluxQlError::Invalid(format!(
                    "undefined function {name}()"
                ))),
            },
            Expr::Binary { op, lhs, rhs } => {
                let l = self.eval(lhs, bks, point_time)?;
                let r = self.eval(rhs, bks, point_time)?;
                let lc = is_const(lhs);
                Ok((0..bks.len())
                    .map(|k| {
                        let lv = l.get(k).and_then(|b| b.first());
                        let rv = r.get(k).and_then(|b| b.first());
                        match (lv, rv) {
                            (Some((lt, a)), Some((rt, b))) => {
                                let t = if lc { *rt } else { *lt };
                                vec![(t, arith(*op, a, b))]
                            }
                            _ => Vec::new(),
                        }
                    })
                    .collect())
            }
            other => Ok(bks
                .iter()
                .map(|b| vec![(b.start, constant(other))])
                .collect()),
        }
    }

    /// `integral()` per bucket, as 1.x computes it: the area under the line through the
    /// series' points, cut at the bucket boundaries (a segment crossing one is split there
    /// by linear interpolation), in `unit`s (1s by default).
    fn windowed_integral(&self, field: &Expr, bks: &[Bucket], unit: Option<&V>) -> BucketColumn {
        let unit = match unit {
            Some(V::I(d)) if *d > 0 => *d as f64,
            _ => 1e9,
        };
        let mut col: BucketColumn = vec![Vec::new(); bks.len()];
        let (Some(first), Some(last)) = (bks.first(), bks.last()) else {
            return col;
        };
        let all = Bucket {
            start: first.start,
            from: first.from,
            to: last.to,
        };
        let points = self.points(field, &all);
        let mut area = vec![0.0; bks.len()];
        let mut touched = vec![false; bks.len()];
        for (k, b) in bks.iter().enumerate() {
            touched[k] = b.from < b.to;
        }
        let at = |t: i64| bks.partition_point(|b| b.start <= t).saturating_sub(1);
        for w in points.windows(2) {
            let (t0, v0) = (w[0].0, w[0].1.as_f64().unwrap_or(0.0));
            let (t1, v1) = (w[1].0, w[1].1.as_f64().unwrap_or(0.0));
            let value = |t: i64| v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0).max(1) as f64;
            let (mut a, mut va) = (t0, v0);
            let mut k = at(t0);
            loop {
                let end = bks.get(k + 1).map_or(i64::MAX, |b| b.start);
                if t1 <= end {
                    area[k] += (va + v1) / 2.0 * (t1 - a) as f64 / unit;
                    break;
                }
                let vb = value(end);
                area[k] += (va + vb) / 2.0 * (end - a) as f64 / unit;
                a = end;
                va = vb;
                k += 1;
            }
        }
        for (k, b) in bks.iter().enumerate() {
            if touched[k] {
                col[k].push((b.start, V::F(area[k])));
            }
        }
        col
    }

    /// Rows of a selector with other columns beside it (`max(x), host`, `top(x, host, 3)`):
    /// each selected point with the other columns' values at that point.
    fn selector_rows(
        &self,
        out: &[OutField],
        sel: usize,
        bks: &[Bucket],
        point_time: bool,
    ) -> Result<Vec<(i64, Vec<V>)>, InfluxQlError> {
        let Expr::Call { name, args } = out[sel].expr.unparen() else {
            unreachable!("selector_at_top checked it is a call");
        };
        let field = args[0].clone();
        let tag_args: Vec<Expr> = if matches!(name.as_str(), "top" | "bottom") && args.len() > 2 {
            args[1..args.len() - 1].to_vec()
        } else {
            Vec::new()
        };
        let n = args.last().map(constant);
        let several = matches!(name.as_str(), "top" | "bottom" | "sample");
        let mut rows = Vec::new();
        for b in bks {
            let points = self.points(&field, b);
            if points.is_empty() {
                continue;
            }
            let chosen = if tag_args.is_empty() {
                let arg = args.get(1).map(constant);
                functions::reduce(name, &points, arg.as_ref())?
            } else {
                // The best point of each distinct tag combination, then the best of those.
                let mut best: BTreeMap<Vec<String>, Point> = BTreeMap::new();
                for p in &points {
                    let r = self.row_at(p.0);
                    let key: Vec<String> = tag_args
                        .iter()
                        .map(|t| match eval_point(t, self.data, r, self.read) {
                            V::S(s) => s.to_string(),
                            _ => String::new(),
                        })
                        .collect();
                    let better = |old: &Point| {
                        let ord = p.1.cmp_num(&old.1);
                        if name == "top" {
                            ord.is_gt()
                        } else {
                            ord.is_lt()
                        }
                    };
                    match best.get(&key) {
                        Some(old) if !better(old) => {}
                        _ => {
                            best.insert(key, p.clone());
                        }
                    }
                }
                let mut candidates: Vec<Point> = best.into_values().collect();
                candidates.sort_by_key(|p| p.0);
                functions::reduce(name, &candidates, n.as_ref())?
            };
            for (t, v) in chosen {
                let r = self.row_at(t);
                let values = out
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        if i == sel {
                            v.clone()
                        } else {
                            eval_point(&f.expr, self.data, r, self.read)
                        }
                    })
                    .collect();
                let time = if point_time || several { t } else { b.start };
                rows.push((time, values));
            }
        }
        Ok(rows)
    }

    /// The row of the point at time `t` (a series has one point per time).
    fn row_at(&self, t: i64) -> usize {
        let times = &self.data.times;
        let r = times.partition_point(|x| *x < t);
        r.min(times.len().saturating_sub(1))
    }
}

/// Puts a transformation's points back into the buckets their times fall in.
fn distribute(points: Vec<Point>, bks: &[Bucket]) -> BucketColumn {
    let mut col: BucketColumn = vec![Vec::new(); bks.len()];
    for (t, v) in points {
        let k = bks.partition_point(|b| b.start <= t).saturating_sub(1);
        if let Some(b) = col.get_mut(k) {
            b.push((t, v));
        }
    }
    col
}

/// `fill` for one aggregate's column: buckets without points get the fill value, the
/// previous value, a linear interpolation, or (for `count`) 0; `none` and `null` leave them.
/// As in 1.x, a series with no point of the field at all counts null, not 0.
fn fill_column(col: &mut BucketColumn, bks: &[Bucket], fill: Fill, is_count: bool) {
    match fill {
        Fill::None => {}
        Fill::Null => {
            if is_count && col.iter().any(|b| !b.is_empty()) {
                for (k, b) in col.iter_mut().enumerate() {
                    if b.is_empty() {
                        b.push((bks[k].start, V::I(0)));
                    }
                }
            }
        }
        Fill::Integer(n) => fill_with(col, bks, V::I(n)),
        Fill::Float(x) => fill_with(col, bks, V::F(x)),
        Fill::Previous => {
            let mut prev: Option<V> = None;
            for (k, b) in col.iter_mut().enumerate() {
                match (b.first(), &prev) {
                    (Some(p), _) => prev = Some(p.1.clone()),
                    (None, Some(v)) => b.push((bks[k].start, v.clone())),
                    (None, None) => {}
                }
            }
        }
        Fill::Linear => {
            let known: Vec<usize> = (0..col.len()).filter(|&k| !col[k].is_empty()).collect();
            for w in known.windows(2) {
                let (a, b) = (w[0], w[1]);
                let (va, vb) = (col[a][0].1.clone(), col[b][0].1.clone());
                let (Some(fa), Some(fb)) = (va.as_f64(), vb.as_f64()) else {
                    continue;
                };
                let ints = matches!((&va, &vb), (V::I(_), V::I(_)));
                let (ta, tb) = (bks[a].start, bks[b].start);
                for (k, bucket) in bks.iter().enumerate().take(b).skip(a + 1) {
                    let t = bucket.start;
                    let v = fa + (fb - fa) * (t - ta) as f64 / (tb - ta) as f64;
                    col[k].push((t, if ints { V::I(v as i64) } else { V::F(v) }));
                }
            }
        }
    }
}

fn fill_with(col: &mut BucketColumn, bks: &[Bucket], v: V) {
    for (k, b) in col.iter_mut().enumerate() {
        if b.is_empty() {
            b.push((bks[k].start, v.clone()));
        }
    }
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

fn top_with_tags(e: &Expr) -> bool {
    matches!(e.unparen(), Expr::Call { name, args } if matches!(name.as_str(), "top" | "bottom") && args.len() > 2)
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

/// The bucket starts from the one holding `start` to the one holding `end`.
pub fn bucket_starts(
    iv: Interval,
    start: i64,
    end: i64,
    budget: &mut usize,
) -> Result<Vec<i64>, InfluxQlError> {
    let first = iv.bucket(start);
    let last = iv.bucket(end);
    let count = ((last as i128 - first as i128) / iv.every as i128 + 2).max(0) as usize;
    if count > *budget {
        return Err(InfluxQlError::Invalid(format!(
            "max-select-buckets limit exceeded: ({count}/{MAX_BUCKETS}): narrow the time range or widen the GROUP BY time interval"
        )));
    }
    *budget -= count;
    let mut out = Vec::with_capacity(count);
    let mut s = first;
    while s <= last {
        out.push(s);
        let next = iv.next(s);
        if next <= s {
            break;
        }
        s = next;
    }
    Ok(out)
}

/// Rows from per-bucket aggregate values computed elsewhere (`None`: no value there), with
/// `fill` applied as the evaluator applies it.
pub fn assemble(
    starts: &[i64],
    columns: Vec<Vec<Option<V>>>,
    counts: &[bool],
    fill: Fill,
) -> Vec<(i64, Vec<V>)> {
    let bks: Vec<Bucket> = starts
        .iter()
        .map(|&start| Bucket {
            start,
            from: 0,
            to: 0,
        })
        .collect();
    let columns: Vec<BucketColumn> = columns
        .into_iter()
        .zip(counts)
        .map(|(c, &is_count)| {
            let mut col: BucketColumn = c
                .into_iter()
                .zip(starts)
                .map(|(v, &s)| v.map(|v| vec![(s, v)]).unwrap_or_default())
                .collect();
            fill_column(&mut col, &bks, fill, is_count);
            col
        })
        .collect();
    let mut rows = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        if fill == Fill::None && columns.iter().all(|c| c[k].is_empty()) {
            continue;
        }
        let values = columns
            .iter()
            .map(|c| c[k].first().map_or(V::Null, |p| p.1.clone()))
            .collect();
        rows.push((start, values));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;

    #[test]
    fn buckets_follow_local_days_across_dst() {
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let day = Interval {
            every: 24 * H,
            offset: 0,
            tz: Some(ny),
        };
        // 2024-03-10T12:00Z (08:00 EDT) is in the day starting at 05:00Z (midnight EST)...
        let t = 1_710_072_000_000_000_000;
        assert_eq!(day.bucket(t), 1_710_046_800_000_000_000);
        // ...which lasts 23 hours: the next starts at midnight EDT, 04:00Z.
        assert_eq!(day.next(day.bucket(t)), 1_710_129_600_000_000_000);
        let utc = Interval {
            every: 24 * H,
            offset: 2 * H,
            tz: None,
        };
        assert_eq!(utc.bucket(H), 2 * H - 24 * H);
        assert_eq!(utc.next(2 * H), 26 * H);
    }

    #[test]
    fn fill_policies() {
        let starts = [0, 10, 20, 30];
        let col = || vec![Some(V::I(1)), None, None, Some(V::I(7))];
        let rows = |fill, counts: bool| {
            assemble(&starts, vec![col()], &[counts], fill)
                .into_iter()
                .map(|(t, vs)| (t, vs[0].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rows(Fill::Null, false),
            vec![(0, V::I(1)), (10, V::Null), (20, V::Null), (30, V::I(7))]
        );
        assert_eq!(
            rows(Fill::Null, true),
            vec![(0, V::I(1)), (10, V::I(0)), (20, V::I(0)), (30, V::I(7))]
        );
        assert_eq!(rows(Fill::None, false), vec![(0, V::I(1)), (30, V::I(7))]);
        assert_eq!(
            rows(Fill::Previous, false),
            vec![(0, V::I(1)), (10, V::I(1)), (20, V::I(1)), (30, V::I(7))]
        );
        assert_eq!(
            rows(Fill::Linear, false),
            vec![(0, V::I(1)), (10, V::I(3)), (20, V::I(5)), (30, V::I(7))]
        );
        assert_eq!(
            rows(Fill::Float(2.5), false),
            vec![
                (0, V::I(1)),
                (10, V::F(2.5)),
                (20, V::F(2.5)),
                (30, V::I(7))
            ]
        );
    }
}
