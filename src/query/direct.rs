//! Cache lookups answered without a DataFusion plan.
//!
//! A lastpoint query (`SELECT * FROM last_cache('cpu') WHERE hostname IN (...)`) is a few
//! index lookups on the shards; planning it through DataFusion (session, analyzer, optimizer,
//! physical planner) costs several times more than answering it. So the coordinator first
//! tries to read the statement as the one shape it can answer directly:
//!
//! ```text
//! SELECT * | col [, col ...]
//! FROM last_cache('table' [, 'name']) | distinct_cache('table' [, 'name'])
//! [WHERE pred [AND pred ...]]      pred: col = 'v' | 'v' = col | col IN ('v', ...) | (pred)
//! ```
//!
//! with each `col` of a predicate a string key column of the cache, and values string
//! literals or `$name` parameters holding strings.
//!
//! Invariants:
//! - Anything else, including every statement that would fail (unknown table, cache or
//!   column), returns `None` and goes through DataFusion unchanged, so errors and every other
//!   query keep one behaviour. The AST is destructured exhaustively: a clause this module does
//!   not know (a new field after a sqlparser upgrade) stops the build, not the check.
//! - The answer equals DataFusion's: identifiers are normalized as DataFusion normalizes them
//!   (unquoted lower-cased), the rows come from the same [`CacheTable::answer`] the table
//!   function's scan uses, and the shards' lookups are exact for the predicates accepted here.

use arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, GroupByExpr, Ident, ObjectNamePart, Query,
    Select, SelectFlavor, SelectItem, SetExpr, Statement, TableFactor, TableFunctionArgs,
    TableWithJoins, Value, WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use shardline_shards::cache::{KeyFilter, KeyValue};
use shardline_shards::schema::DbSchema;
use std::sync::Arc;

use super::caches::{string_key, CacheTable};
use super::shards::{HereShard, ShardHandles};
use crate::catalog::CacheKind;

type Params = serde_json::Map<String, serde_json::Value>;

/// A statement of the direct shape, with names as written (normalized).
#[derive(Debug, PartialEq)]
struct CacheQuery {
    kind: CacheKind,
    table: String,
    cache: Option<String>,
    /// `None` for `*`.
    columns: Option<Vec<String>>,
    /// (column, values): the row's value must be one of them; all must hold.
    filters: Vec<(String, Vec<String>)>,
}

/// The answer to `sql` read from a cache, or `None` when `sql` is not of the direct shape or
/// does not resolve (DataFusion then plans it, and reports any error).
///
/// `here` is the shard the caller runs on, if any: it answers its own part in place.
pub async fn answer<H: HereShard>(
    sql: &str,
    params: Option<&Params>,
    db: &DbSchema,
    shards: &ShardHandles,
    here: Option<&H>,
) -> Option<Result<RecordBatch, DataFusionError>> {
    let query = recognize(sql, params)?;
    let table =
        CacheTable::resolve(query.kind, db, shards, &query.table, query.cache.as_deref()).ok()?;
    let schema = table.schema();
    let projection = match &query.columns {
        None => None,
        Some(names) => {
            let mut p = Vec::with_capacity(names.len());
            for n in names {
                let i = schema.index_of(n).ok()?;
                // DataFusion refuses a column named twice without aliases; let it say so.
                if p.contains(&i) {
                    return None;
                }
                p.push(i);
            }
            Some(p)
        }
    };
    let keys = table.keys();
    let mut filters = Vec::with_capacity(query.filters.len());
    for (column, values) in query.filters {
        let position = keys
            .iter()
            .position(|(n, ty)| **n == *column && string_key(*ty))?;
        filters.push(KeyFilter {
            position,
            values: values
                .into_iter()
                .map(|v| KeyValue::Str(Arc::from(v)))
                .collect(),
        });
    }
    Some(table.answer(filters, projection.as_ref(), here).await)
}

/// Reads `sql` as the direct shape.
fn recognize(sql: &str, params: Option<&Params>) -> Option<CacheQuery> {
    let mut statements = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    let Statement::Query(query) = statements.pop()? else {
        return None;
    };
    let select = plain_select(*query)?;
    let Select {
        select_token: _,
        optimizer_hints,
        distinct: None,
        select_modifiers: None,
        top: None,
        top_before_distinct: _,
        projection,
        exclude: None,
        into: None,
        mut from,
        lateral_views,
        prewhere: None,
        selection,
        connect_by,
        group_by: GroupByExpr::Expressions(group_by, group_by_modifiers),
        cluster_by,
        distribute_by,
        sort_by,
        having: None,
        named_window,
        qualify: None,
        window_before_qualify: _,
        value_table_mode: None,
        flavor: SelectFlavor::Standard,
    } = select
    else {
        return None;
    };
    let all_empty = optimizer_hints.is_empty()
        && lateral_views.is_empty()
        && connect_by.is_empty()
        && group_by.is_empty()
        && group_by_modifiers.is_empty()
        && cluster_by.is_empty()
        && distribute_by.is_empty()
        && sort_by.is_empty()
        && named_window.is_empty()
        && from.len() == 1;
    if !all_empty {
        return None;
    }
    let (kind, table, cache) = cache_function(from.pop()?)?;
    let columns = columns(projection)?;
    let mut filters = Vec::new();
    if let Some(e) = selection {
        conjuncts(e, params, &mut filters)?;
    }
    Some(CacheQuery {
        kind,
        table,
        cache,
        columns,
        filters,
    })
}

/// The body of a query without WITH, ORDER BY, LIMIT or anything else around it.
fn plain_select(query: Query) -> Option<Select> {
    let Query {
        with: None,
        body,
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks,
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators,
    } = query
    else {
        return None;
    };
    if !locks.is_empty() || !pipe_operators.is_empty() {
        return None;
    }
    match *body {
        SetExpr::Select(select) => Some(*select),
        _ => None,
    }
}

/// `last_cache('t' [, 'name'])` or `distinct_cache(...)`, unaliased.
fn cache_function(from: TableWithJoins) -> Option<(CacheKind, String, Option<String>)> {
    let TableWithJoins { relation, joins } = from;
    if !joins.is_empty() {
        return None;
    }
    let TableFactor::Table {
        name,
        alias: None,
        args: Some(TableFunctionArgs {
            args,
            settings: None,
        }),
        with_hints,
        version: None,
        with_ordinality: false,
        partitions,
        json_path: None,
        sample: None,
        index_hints,
    } = relation
    else {
        return None;
    };
    if !with_hints.is_empty() || !partitions.is_empty() || !index_hints.is_empty() {
        return None;
    }
    let [ObjectNamePart::Identifier(function)] = name.0.as_slice() else {
        return None;
    };
    // DataFusion looks table functions up by their name exactly as written.
    let kind = match (function.quote_style, function.value.as_str()) {
        (None, "last_cache") => CacheKind::Last,
        (None, "distinct_cache") => CacheKind::Distinct,
        _ => return None,
    };
    let mut strings = args.into_iter().map(|a| match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    });
    let table = strings.next()??;
    let cache = match strings.next() {
        None => None,
        Some(s) => Some(s?),
    };
    if strings.next().is_some() {
        return None;
    }
    Some((kind, table, cache))
}

/// The projected column names, or `None` inside for `*`.
fn columns(projection: Vec<SelectItem>) -> Option<Option<Vec<String>>> {
    if let [SelectItem::Wildcard(options)] = projection.as_slice() {
        let WildcardAdditionalOptions {
            wildcard_token: _,
            opt_ilike: None,
            opt_exclude: None,
            opt_except: None,
            opt_replace: None,
            opt_rename: None,
            opt_alias: None,
        } = options
        else {
            return None;
        };
        return Some(None);
    }
    let mut names = Vec::with_capacity(projection.len());
    for item in projection {
        match item {
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => names.push(normalize(&ident)),
            _ => return None,
        }
    }
    Some(Some(names))
}

/// Splits an AND of key predicates into (column, values).
fn conjuncts(e: Expr, params: Option<&Params>, out: &mut Vec<(String, Vec<String>)>) -> Option<()> {
    match e {
        Expr::Nested(inner) => conjuncts(*inner, params, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(*left, params, out)?;
            conjuncts(*right, params, out)
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let (column, value) = match (*left, *right) {
                (Expr::Identifier(c), v) | (v, Expr::Identifier(c)) => (c, v),
                _ => return None,
            };
            out.push((normalize(&column), vec![string_value(value, params)?]));
            Some(())
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } => {
            let Expr::Identifier(column) = *expr else {
                return None;
            };
            let values = list
                .into_iter()
                .map(|v| string_value(v, params))
                .collect::<Option<Vec<_>>>()?;
            out.push((normalize(&column), values));
            Some(())
        }
        _ => None,
    }
}

/// A string literal, or a `$name` parameter whose value is a string.
fn string_value(e: Expr, params: Option<&Params>) -> Option<String> {
    let Expr::Value(v) = e else {
        return None;
    };
    match v.value {
        Value::SingleQuotedString(s) => Some(s),
        Value::Placeholder(p) => match params?.get(p.strip_prefix('$')?)? {
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// An identifier as DataFusion resolves it: unquoted ones are lower-cased (ASCII).
fn normalize(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(sql: &str) -> Option<CacheQuery> {
        let params = serde_json::json!({"h": "host_3", "n": 3});
        recognize(sql, params.as_object())
    }

    #[test]
    fn lastpoint_shapes_are_recognized() {
        let got =
            q("SELECT * FROM last_cache('cpu') WHERE hostname IN ('a', 'b') AND (region = 'eu')")
                .unwrap();
        assert_eq!(
            got,
            CacheQuery {
                kind: CacheKind::Last,
                table: "cpu".into(),
                cache: None,
                columns: None,
                filters: vec![
                    ("hostname".into(), vec!["a".into(), "b".into()]),
                    ("region".into(), vec!["eu".into()]),
                ],
            }
        );
        let got = q("select HostName, \"Usage\" from last_cache('cpu', 'c1') where 'x' = hostname and hostname = $h")
            .unwrap();
        assert_eq!(got.cache.as_deref(), Some("c1"));
        assert_eq!(got.columns, Some(vec!["hostname".into(), "Usage".into()]));
        assert_eq!(
            got.filters,
            vec![
                ("hostname".into(), vec!["x".into()]),
                ("hostname".into(), vec!["host_3".into()]),
            ]
        );
        let got = q("SELECT region FROM distinct_cache('cpu')").unwrap();
        assert_eq!(got.kind, CacheKind::Distinct);
        assert!(got.filters.is_empty());
    }

    #[test]
    fn everything_else_goes_to_datafusion() {
        for sql in [
            "SELECT * FROM cpu",
            "SELECT * FROM last_cache('cpu') ORDER BY time",
            "SELECT * FROM last_cache('cpu') LIMIT 1",
            "SELECT * FROM last_cache('cpu') WHERE hostname = 'a' OR hostname = 'b'",
            "SELECT * FROM last_cache('cpu') WHERE hostname <> 'a'",
            "SELECT * FROM last_cache('cpu') WHERE hostname NOT IN ('a')",
            "SELECT * FROM last_cache('cpu') WHERE usage_user = 3",
            "SELECT * FROM last_cache('cpu') WHERE hostname = $n",
            "SELECT * FROM last_cache('cpu') WHERE hostname = $missing",
            "SELECT * FROM last_cache('cpu') c",
            "SELECT c.hostname FROM last_cache('cpu') c",
            "SELECT hostname AS h FROM last_cache('cpu')",
            "SELECT count(*) FROM last_cache('cpu')",
            "SELECT DISTINCT hostname FROM last_cache('cpu')",
            "SELECT * EXCLUDE (time) FROM last_cache('cpu')",
            "SELECT * FROM last_cache('cpu') GROUP BY hostname",
            "SELECT * FROM last_cache('cpu'), last_cache('mem')",
            "SELECT * FROM last_cache('cpu') JOIN cpu ON true",
            "SELECT * FROM last_cache(cpu)",
            "SELECT * FROM last_cache('cpu', 'a', 'b')",
            "SELECT * FROM other_cache('cpu')",
            "SELECT * FROM LAST_CACHE('cpu')",
            "SELECT * FROM \"last_cache\"('cpu')",
            "WITH x AS (SELECT 1) SELECT * FROM last_cache('cpu')",
            "SELECT * FROM last_cache('cpu') UNION ALL SELECT * FROM last_cache('cpu')",
            "SELECT * FROM last_cache('cpu'); SELECT 1",
            "EXPLAIN SELECT * FROM last_cache('cpu')",
            "SELEC * FROM last_cache('cpu')",
        ] {
            assert_eq!(q(sql), None, "{sql}");
        }
    }
}
