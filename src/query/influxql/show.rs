//! The schema `SHOW` statements, over all the data the database holds (InfluxDB 3 Core looks
//! back only a day for tag values; we do not): names come from the catalog, tag values and
//! series from the tables themselves through DataFusion, with the statement's `WHERE`
//! pushed into the scan.
//!
//! Invariants: answers are sorted as 1.x sorts them (measurements, keys and values by name;
//! tag values by key, then value); a `WHERE` or `FROM` naming nothing that exists answers
//! nothing, not an error.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use shardline_influxql::ast::{
    Cardinality, Expr, MeasurementMatch, MeasurementName, SchemaQuery, Show, Source, TagKeyMatch,
};
use shardline_shards::schema::{CatalogSnapshot, ColumnType, DbSchema};

use super::condition::column;
use super::resolve::{self, Measurement};
use super::time_range;
use super::values::{value_at, V};
use super::{Answer, InfluxQlError, SeriesRows};

fn one_series(measurement: &str, columns: &[&str], rows: Vec<Vec<V>>) -> SeriesRows {
    SeriesRows {
        measurement: measurement.to_string(),
        tags: Vec::new(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: rows.into_iter().map(|r| (0, r)).collect(),
    }
}

fn s(v: &str) -> V {
    V::S(v.into())
}

fn limit<T>(items: Vec<T>, limit: Option<u64>, offset: Option<u64>) -> Vec<T> {
    let it = items.into_iter().skip(offset.unwrap_or(0) as usize);
    match limit.filter(|l| *l > 0) {
        Some(l) => it.take(l as usize).collect(),
        None => it.collect(),
    }
}

/// The measurements a schema query covers: its `FROM`, or all.
fn covered(db: &DbSchema, q: &SchemaQuery) -> Result<Vec<Measurement>, InfluxQlError> {
    if q.from.is_empty() {
        let all = Source::Measurement(shardline_influxql::ast::Measurement {
            database: None,
            policy: None,
            name: MeasurementName::Regex(String::new()),
        });
        return resolve::measurements(db, &db.name, &[all]);
    }
    resolve::measurements(db, &db.name, &q.from)
}

pub async fn run(
    ctx: &SessionContext,
    snapshot: &CatalogSnapshot,
    db: &Arc<DbSchema>,
    show: &Show,
    now: i64,
    listed: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Answer, InfluxQlError> {
    if let Some(on) = show_on(show).filter(|on| *on != &*db.name) {
        if snapshot.database(on).is_none() {
            // 1.x answers nothing for a database that does not exist.
            return Ok(Answer {
                no_time: true,
                ..Answer::default()
            });
        }
        return Err(InfluxQlError::NotYet(format!(
            "SHOW ... ON {on} for another database than the query's ({}) is not supported",
            db.name
        )));
    }
    let mut answer = Answer {
        no_time: true,
        ..Answer::default()
    };
    match show {
        Show::Databases => answer = databases(snapshot, listed),
        Show::RetentionPolicies { .. } => {
            let duration = match db.retention_ns {
                Some(ns) => go_duration(ns),
                None => "0s".to_string(),
            };
            let mut rows = vec![vec![
                s("autogen"),
                s(&duration),
                s("168h0m0s"),
                V::I(1),
                V::B(true),
            ]];
            // The database's other policies are the databases `db/rp`.
            for (retention, rp) in super::manage::policy_databases(snapshot, &db.name) {
                let duration = retention.map_or_else(|| "0s".to_string(), go_duration);
                rows.push(vec![
                    s(rp),
                    s(&duration),
                    s("168h0m0s"),
                    V::I(1),
                    V::B(false),
                ]);
            }
            answer.series.push(one_series(
                "",
                &[
                    "name",
                    "duration",
                    "shardGroupDuration",
                    "replicaN",
                    "default",
                ],
                rows,
            ));
        }
        Show::Measurements {
            with,
            condition,
            limit: l,
            offset,
            ..
        } => {
            let mut names = Vec::new();
            let q = SchemaQuery::default();
            for m in covered(db, &q)? {
                let keep = match with {
                    Some(MeasurementMatch::Eq(n)) => m.name() == n,
                    Some(MeasurementMatch::Regex(p)) => resolve::regex(p)?.is_match(m.name()),
                    None => true,
                };
                if keep && has_rows(ctx, &m, condition.as_ref(), now).await? {
                    names.push(m.name().to_string());
                }
            }
            let rows = limit(names, *l, *offset)
                .iter()
                .map(|n| vec![s(n)])
                .collect::<Vec<_>>();
            if !rows.is_empty() {
                answer
                    .series
                    .push(one_series("measurements", &["name"], rows));
            }
        }
        Show::TagKeys(q) => {
            for m in limit(covered(db, q)?, q.slimit, q.soffset) {
                if !has_rows(ctx, &m, q.condition.as_ref(), now).await? {
                    continue;
                }
                let rows: Vec<Vec<V>> = limit(m.tags.clone(), q.limit, q.offset)
                    .iter()
                    .map(|t| vec![s(t)])
                    .collect();
                if !rows.is_empty() {
                    answer.series.push(one_series(m.name(), &["tagKey"], rows));
                }
            }
        }
        Show::FieldKeys(q) => {
            for m in covered(db, q)? {
                let rows: Vec<Vec<V>> = limit(m.fields.clone(), q.limit, q.offset)
                    .iter()
                    .map(|(f, ty)| vec![s(f), s(field_type(*ty))])
                    .collect();
                if !rows.is_empty() {
                    answer
                        .series
                        .push(one_series(m.name(), &["fieldKey", "fieldType"], rows));
                }
            }
        }
        Show::TagValues { query, key } => {
            for m in covered(db, query)? {
                let pairs = tag_values(ctx, &m, key, query.condition.as_ref(), now).await?;
                let rows: Vec<Vec<V>> = limit(pairs, query.limit, query.offset)
                    .into_iter()
                    .map(|(k, v)| vec![s(&k), s(&v)])
                    .collect();
                if !rows.is_empty() {
                    answer
                        .series
                        .push(one_series(m.name(), &["key", "value"], rows));
                }
            }
        }
        Show::Series(q) => {
            let mut keys = Vec::new();
            for m in covered(db, q)? {
                keys.extend(series_keys(ctx, &m, q.condition.as_ref(), now).await?);
            }
            let rows: Vec<Vec<V>> = limit(keys, q.limit, q.offset)
                .iter()
                .map(|k| vec![s(k)])
                .collect();
            if !rows.is_empty() {
                answer.series.push(one_series("", &["key"], rows));
            }
        }
        Show::Cardinality {
            what,
            exact,
            key,
            query,
            group_by,
        } => {
            if !group_by.is_empty() {
                return Err(InfluxQlError::NotYet(
                    "SHOW ... CARDINALITY with GROUP BY is not supported yet".into(),
                ));
            }
            let ms = covered(db, query)?;
            match what {
                // 1.x estimates over the whole database; with FROM or WHERE it counts per
                // measurement, as the exact form does.
                Cardinality::Measurement | Cardinality::Series
                    if !exact && query.from.is_empty() && query.condition.is_none() =>
                {
                    let n = if *what == Cardinality::Measurement {
                        let mut n = 0;
                        for m in &ms {
                            n += has_rows(ctx, m, query.condition.as_ref(), now).await? as i64;
                        }
                        n
                    } else {
                        let mut n = 0;
                        for m in &ms {
                            n += series_keys(ctx, m, query.condition.as_ref(), now)
                                .await?
                                .len() as i64;
                        }
                        n
                    };
                    answer.series.push(one_series(
                        "",
                        &["cardinality estimation"],
                        vec![vec![V::I(n)]],
                    ));
                }
                Cardinality::Measurement => {
                    let mut n = 0;
                    for m in &ms {
                        n += has_rows(ctx, m, query.condition.as_ref(), now).await? as i64;
                    }
                    answer
                        .series
                        .push(one_series("", &["count"], vec![vec![V::I(n)]]));
                }
                _ => {
                    for m in &ms {
                        let n = match what {
                            Cardinality::Series => {
                                series_keys(ctx, m, query.condition.as_ref(), now)
                                    .await?
                                    .len()
                            }
                            Cardinality::TagKey => m.tags.len(),
                            Cardinality::FieldKey => m.fields.len(),
                            _ => {
                                let key = key.as_ref().ok_or_else(|| {
                                    InfluxQlError::Invalid("WITH KEY is required".into())
                                })?;
                                tag_values(ctx, m, key, query.condition.as_ref(), now)
                                    .await?
                                    .len()
                            }
                        };
                        if n > 0 {
                            answer.series.push(one_series(
                                m.name(),
                                &["count"],
                                vec![vec![V::I(n as i64)]],
                            ));
                        }
                    }
                }
            }
        }
        other => {
            return Err(InfluxQlError::NotYet(format!(
                "{other} is not run by /api/v3/query_influxql yet"
            )))
        }
    }
    Ok(answer)
}

/// `SHOW DATABASES`: every database not deleted that `listed` admits, by name.
pub fn databases(snapshot: &CatalogSnapshot, listed: &dyn Fn(&str) -> bool) -> Answer {
    // In the order they were made, as 1.x lists them (ids are given in that order). A
    // database `db/rp` of a live `db` is one of its retention policies, not a database.
    let live_name = |n: &str| {
        snapshot
            .database(n)
            .is_some_and(|d| d.deleted_at_ns.is_none())
    };
    let mut live: Vec<_> = snapshot
        .databases
        .iter()
        .filter(|d| d.deleted_at_ns.is_none())
        .filter(|d| !d.name.rsplit_once('/').is_some_and(|(db, _)| live_name(db)))
        .filter(|d| listed(&d.name))
        .map(|d| (d.id, d.name.to_string()))
        .collect();
    live.sort_unstable();
    let rows = live.iter().map(|(_, n)| vec![s(n)]).collect();
    Answer {
        series: vec![one_series("databases", &["name"], rows)],
        no_time: true,
    }
}

/// `SHOW QUERIES`: the running v1 queries as 1.x lists them, durations cut to their largest
/// unit (`3s`, `12ms`, `59µs`) as 1.x prints them.
pub fn queries(running: &[crate::query::running::RunningQuery]) -> Answer {
    let rows = running
        .iter()
        .map(|q| {
            let ns = q.elapsed.as_nanos().min(i64::MAX as u128) as i64;
            let unit = [1_000_000_000, 1_000_000, 1_000]
                .into_iter()
                .find(|u| ns >= *u)
                .unwrap_or(1);
            vec![
                V::I(q.id as i64),
                s(&q.text),
                s(&q.database),
                s(&go_duration_fine(ns - ns % unit)),
                s("running"),
            ]
        })
        .collect();
    Answer {
        series: vec![one_series(
            "",
            &["qid", "query", "database", "duration", "status"],
            rows,
        )],
        no_time: true,
    }
}

/// A duration as Go's `time.Duration.String` writes it, below a second too (`59µs`).
fn go_duration_fine(ns: i64) -> String {
    match ns {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", trim(n as f64 / 1e3)),
        n if n < 1_000_000_000 => format!("{}ms", trim(n as f64 / 1e6)),
        n if n < 60_000_000_000 => format!("{}s", trim(n as f64 / 1e9)),
        n if n < 3_600_000_000_000 => {
            let secs = n / 1_000_000_000;
            format!("{}m{}s", secs / 60, secs % 60)
        }
        n => go_duration(n),
    }
}

fn trim(x: f64) -> String {
    let t = format!("{x:.6}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The database a `SHOW ... ON db` names.
pub fn show_on(show: &Show) -> Option<&String> {
    match show {
        Show::RetentionPolicies { on } | Show::Measurements { on, .. } => on.as_ref(),
        Show::TagKeys(q) | Show::FieldKeys(q) | Show::Series(q) => q.on.as_ref(),
        Show::TagValues { query, .. } | Show::Cardinality { query, .. } => query.on.as_ref(),
        _ => None,
    }
}

/// 1.x's name for a field type.
pub fn field_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Float => "float",
        ColumnType::Int => "integer",
        ColumnType::UInt => "unsigned",
        ColumnType::String => "string",
        ColumnType::Bool => "boolean",
        ColumnType::Tag => "tag",
        ColumnType::Time => "time",
    }
}

/// A duration as Go prints it (`168h0m0s`), as 1.x shows retention periods.
fn go_duration(ns: i64) -> String {
    let secs = ns / 1_000_000_000;
    format!("{}h{}m{}s", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A `WHERE` of a `SHOW` statement as a filter over `m` (its time range included).
fn show_filter(
    m: &Measurement,
    cond: Option<&Expr>,
    now: i64,
) -> Result<Option<datafusion::logical_expr::Expr>, InfluxQlError> {
    let (range, rest) = time_range::split(cond, now, None)?;
    super::fast::predicate(m, &range, rest.as_ref(), &[])
}

async fn has_rows(
    ctx: &SessionContext,
    m: &Measurement,
    cond: Option<&Expr>,
    now: i64,
) -> Result<bool, InfluxQlError> {
    let Some(pred) = show_filter(m, cond, now)? else {
        return Ok(true);
    };
    let df = ctx
        .table(TableReference::bare(m.name()))
        .await?
        .filter(pred)?
        .select(vec![column("time")])?
        .limit(0, Some(1))?;
    Ok(df.collect().await?.iter().any(|b| b.num_rows() > 0))
}

/// `(key, value)` pairs of the tags `key` selects, sorted by key then value.
async fn tag_values(
    ctx: &SessionContext,
    m: &Measurement,
    key: &TagKeyMatch,
    cond: Option<&Expr>,
    now: i64,
) -> Result<Vec<(String, String)>, InfluxQlError> {
    let keys: Vec<String> = match key {
        TagKeyMatch::Eq(k) => m.tags.iter().filter(|t| *t == k).cloned().collect(),
        TagKeyMatch::NotEq(k) => m.tags.iter().filter(|t| *t != k).cloned().collect(),
        TagKeyMatch::Regex(p) => {
            let re = resolve::regex(p)?;
            m.tags.iter().filter(|t| re.is_match(t)).cloned().collect()
        }
        TagKeyMatch::NotRegex(p) => {
            let re = resolve::regex(p)?;
            m.tags.iter().filter(|t| !re.is_match(t)).cloned().collect()
        }
        TagKeyMatch::In(ks) => m.tags.iter().filter(|t| ks.contains(t)).cloned().collect(),
    };
    let pred = show_filter(m, cond, now)?;
    let mut out = Vec::new();
    for k in keys {
        let mut df = ctx.table(TableReference::bare(m.name())).await?;
        if let Some(p) = pred.clone() {
            df = df.filter(p)?;
        }
        let df = df
            .filter(column(&k).is_not_null())?
            .select(vec![column(&k)])?
            .distinct()?
            .sort(vec![column(&k).sort(true, true)])?;
        for b in df.collect().await? {
            let col = b.column(0);
            for i in 0..b.num_rows() {
                if let V::S(v) = value_at(col.as_ref(), i) {
                    out.push((k.clone(), v.to_string()));
                }
            }
        }
    }
    Ok(out)
}

/// The series keys of `m` (`cpu,host=a,region=us`, escaped as line protocol), sorted.
async fn series_keys(
    ctx: &SessionContext,
    m: &Measurement,
    cond: Option<&Expr>,
    now: i64,
) -> Result<Vec<String>, InfluxQlError> {
    let mut df = ctx.table(TableReference::bare(m.name())).await?;
    if let Some(p) = show_filter(m, cond, now)? {
        df = df.filter(p)?;
    }
    if m.tags.is_empty() {
        let any = df.limit(0, Some(1))?.collect().await?;
        let n: usize = any.iter().map(|b| b.num_rows()).sum();
        return Ok(if n > 0 {
            vec![escape_measurement(m.name())]
        } else {
            Vec::new()
        });
    }
    let cols: Vec<_> = m.tags.iter().map(|t| column(t)).collect();
    let df = df.select(cols)?.distinct()?;
    let mut keys = Vec::new();
    for b in df.collect().await? {
        for i in 0..b.num_rows() {
            let mut key = escape_measurement(m.name());
            for (c, t) in m.tags.iter().enumerate() {
                let col = b.column(c);
                if col.is_null(i) {
                    continue;
                }
                let v = col.as_string_view_opt().map(|a| a.value(i).to_string());
                let v = v.unwrap_or_else(|| match value_at(col.as_ref(), i) {
                    V::S(s) => s.to_string(),
                    _ => String::new(),
                });
                key.push(',');
                key.push_str(&escape_tag(t));
                key.push('=');
                key.push_str(&escape_tag(&v));
            }
            keys.push(key);
        }
    }
    keys.sort();
    Ok(keys)
}

fn escape_measurement(s: &str) -> String {
    s.replace(',', "\\,").replace(' ', "\\ ")
}

fn escape_tag(s: &str) -> String {
    s.replace(',', "\\,")
        .replace('=', "\\=")
        .replace(' ', "\\ ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_as_go_prints_them() {
        use super::go_duration_fine as d;
        assert_eq!(d(0), "0s");
        assert_eq!(d(59_000), "59µs");
        assert_eq!(d(12_000_000), "12ms");
        assert_eq!(d(3_000_000_000), "3s");
        assert_eq!(d(90_000_000_000), "1m30s");
        assert_eq!(d(7_200_000_000_000), "2h0m0s");
    }
}
