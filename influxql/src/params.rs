//! Bound parameters: `$name` in a query, a value given beside it (the `params` of
//! `/api/v3/query_influxql`, the `params` JSON of 1.x's `/query`).
//!
//! Invariant: after [`bind`] succeeds no [`Expr::Param`] is left in the statement, so the
//! planner never sees one; a parameter with no value is an error naming it.

use std::collections::HashMap;

use crate::ast::{Expr, Statement};

/// A parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("missing parameter: {0}")]
    Missing(String),
}

/// Replaces every `$name` in `stmt` with its value from `values`.
pub fn bind(stmt: &mut Statement, values: &HashMap<String, Value>) -> Result<(), BindError> {
    let mut missing = None;
    stmt.exprs_mut(&mut |top| {
        top.walk_mut(&mut |e| {
            if let Expr::Param(name) = e {
                match values.get(name.as_str()) {
                    Some(v) => *e = v.to_expr(),
                    None => {
                        missing.get_or_insert_with(|| name.clone());
                    }
                }
            }
        })
    });
    match missing {
        Some(name) => Err(BindError::Missing(name)),
        None => Ok(()),
    }
}

impl Value {
    fn to_expr(&self) -> Expr {
        match self {
            Value::Str(s) => Expr::Str(s.clone()),
            Value::Integer(i) => Expr::Integer(*i),
            Value::Float(f) => Expr::Float(*f),
            Value::Bool(b) => Expr::Bool(*b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_statement;

    #[test]
    fn binds_in_where_and_subqueries() {
        let mut s = parse_statement(
            "SELECT x FROM (SELECT y FROM m WHERE host = $h) WHERE v > $v AND r =~ $re",
        )
        .unwrap();
        let values = HashMap::from([
            ("h".to_string(), Value::Str("a".into())),
            ("v".to_string(), Value::Integer(3)),
            ("re".to_string(), Value::Str("x".into())),
        ]);
        bind(&mut s, &values).unwrap();
        assert_eq!(
            s.to_string(),
            "SELECT x FROM (SELECT y FROM m WHERE host = 'a') WHERE v > 3 AND r =~ 'x'"
        );
        let mut s = parse_statement("SELECT x FROM m WHERE a = $missing").unwrap();
        assert_eq!(
            bind(&mut s, &HashMap::new()),
            Err(BindError::Missing("missing".into()))
        );
    }
}
