//! A `SELECT` list made ready to evaluate against one measurement: wildcards and regexes
//! expanded, every call checked against 1.x's rules (with its messages), and every output
//! column named as 1.x names it (`mean`, `mean_1`, `max_usage`, `count_usage_user`).

use shardline_influxql::ast::{Expr, Field, Select, VarType};
use shardline_influxql::print::DurationLit;
use shardline_shards::schema::ColumnType;

use super::functions::{kind_of, Kind};
use super::resolve::{regex, Column, Measurement};
use super::InfluxQlError;

/// One output column.
#[derive(Debug, Clone)]
pub struct OutField {
    pub name: String,
    pub expr: Expr,
}

/// Whether a statement reads points as they are, or reduces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Raw,
    /// Calls of aggregates or selectors (possibly under transformations).
    Aggregate,
    /// Transformations of raw points, no aggregate.
    RawTransform,
}

/// The expanded fields of `fields` for `m` (tags named in `GROUP BY` are not repeated as
/// columns of `*`).
pub fn expand(
    fields: &[Field],
    m: &Measurement,
    group_tags: &[String],
) -> Result<Vec<OutField>, InfluxQlError> {
    let mut out: Vec<(Option<String>, Expr)> = Vec::new();
    for f in fields {
        match &f.expr {
            Expr::Wildcard(ty) => {
                let mut cols: Vec<(String, Expr)> = Vec::new();
                if *ty != Some(VarType::Tag) {
                    for (name, _) in &m.fields {
                        cols.push((name.clone(), Expr::var(name.clone())));
                    }
                }
                if *ty != Some(VarType::Field) {
                    for t in m.tags.iter().filter(|t| !group_tags.contains(t)) {
                        cols.push((
                            t.clone(),
                            Expr::Var {
                                name: t.clone(),
                                ty: Some(VarType::Tag),
                            },
                        ));
                    }
                }
                cols.sort_by(|a, b| a.0.cmp(&b.0));
                out.extend(cols.into_iter().map(|(_, e)| (None, e)));
            }
            Expr::Regex(p) => {
                let re = regex(p)?;
                for (name, _) in m.fields.iter().filter(|(n, _)| re.is_match(n)) {
                    out.push((None, Expr::var(name.clone())));
                }
            }
            Expr::Call { name, args }
                if matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))) =>
            {
                // `mean(*)`, `count(/re/)`: one call per (numeric, for numeric functions)
                // field, named `<function>_<field>`.
                let re = match &args[0] {
                    Expr::Regex(p) => Some(regex(p)?),
                    _ => None,
                };
                let any_type = matches!(
                    name.as_str(),
                    "count" | "first" | "last" | "distinct" | "mode"
                );
                // 1.x's `max(*)`/`min(*)` take booleans too.
                let booleans = matches!(name.as_str(), "max" | "min");
                for (field, ty) in &m.fields {
                    if re.as_ref().is_some_and(|re| !re.is_match(field)) {
                        continue;
                    }
                    let numeric =
                        matches!(ty, ColumnType::Float | ColumnType::Int | ColumnType::UInt);
                    let boolean = *ty == ColumnType::Bool;
                    if !(any_type || numeric || (booleans && boolean)) {
                        continue;
                    }
                    let mut call_args = args.clone();
                    call_args[0] = Expr::var(field.clone());
                    let alias = f.alias.clone().map(|a| format!("{a}_{field}"));
                    out.push((
                        Some(alias.unwrap_or(format!("{name}_{field}"))),
                        Expr::Call {
                            name: name.clone(),
                            args: call_args,
                        },
                    ));
                }
            }
            Expr::Call { name, args }
                if matches!(name.as_str(), "top" | "bottom") && args.len() > 2 =>
            {
                // `top(x, host, 3)` answers the tags it picks by beside the values.
                out.push((f.alias.clone(), f.expr.clone()));
                for t in &args[1..args.len() - 1] {
                    out.push((None, t.clone()));
                }
            }
            e => out.push((f.alias.clone(), e.clone())),
        }
    }
    let mut named: Vec<OutField> = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for (alias, expr) in out {
        if let Expr::Var { name, .. } = &expr {
            if name == "time" {
                continue;
            }
        }
        let base = alias.unwrap_or_else(|| default_name(&expr));
        let mut name = base.clone();
        let mut n = 1;
        while used.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        used.push(name.clone());
        named.push(OutField { name, expr });
    }
    Ok(named)
}

/// 1.x's name for an unaliased field: a reference's name, a call's function, the names of a
/// binary expression's sides joined by `_` (constants left out).
fn default_name(e: &Expr) -> String {
    match e {
        Expr::Var { name, .. } => name.clone(),
        Expr::Call { name, .. } => name.clone(),
        Expr::Distinct(_) => "distinct".into(),
        Expr::Paren(inner) => default_name(inner),
        Expr::Binary { lhs, rhs, .. } => {
            let parts: Vec<String> = [lhs, rhs]
                .into_iter()
                .filter(|s| !is_constant(s))
                .map(|s| default_name(s))
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                parts.join("_")
            }
        }
        _ => String::new(),
    }
}

fn is_constant(e: &Expr) -> bool {
    match e.unparen() {
        Expr::Integer(_)
        | Expr::Unsigned(_)
        | Expr::Float(_)
        | Expr::Str(_)
        | Expr::Bool(_)
        | Expr::Duration(_) => true,
        Expr::Binary { lhs, rhs, .. } => is_constant(lhs) && is_constant(rhs),
        _ => false,
    }
}

/// The shape of a statement with these fields, after checking them as 1.x does.
pub fn shape(
    fields: &[OutField],
    has_time_group: bool,
    fill_none: bool,
) -> Result<Shape, InfluxQlError> {
    let mut aggregates = 0;
    let mut transforms = 0;
    let mut bare = 0;
    for f in fields {
        check(
            &f.expr,
            false,
            &mut aggregates,
            &mut transforms,
            &mut bare,
            has_time_group,
        )?;
    }
    if fields.is_empty() {
        return Err(InfluxQlError::Invalid(
            "at least 1 non-time field must be queried".into(),
        ));
    }
    if aggregates > 0 && bare > 0 {
        // One selector may bring other columns of the point it selects (`max(x), host`).
        let selectors = fields
            .iter()
            .filter(|f| matches!(f.expr.unparen(), Expr::Call { name, .. } if kind_of(name) == Some(Kind::Selector)))
            .count();
        let others = fields
            .iter()
            .filter(|f| !matches!(f.expr.unparen(), Expr::Var { .. }))
            .count();
        if selectors == 0 || others > selectors {
            return Err(InfluxQlError::Invalid(
                "mixing aggregate and non-aggregate queries is not supported".into(),
            ));
        }
        if selectors > 1 {
            return Err(InfluxQlError::Invalid(
                "mixing multiple selector functions with tags or fields is not supported".into(),
            ));
        }
    }
    if aggregates > 0 {
        return Ok(Shape::Aggregate);
    }
    if fill_none && transforms == 0 {
        // 1.x checks this before the grouping: `fill(none)` on raw points names the fill.
        return Err(InfluxQlError::Invalid(
            "fill(none) must be used with a function".into(),
        ));
    }
    if has_time_group {
        return Err(InfluxQlError::Invalid(
            "GROUP BY requires at least one aggregate function".into(),
        ));
    }
    if transforms > 0 {
        if bare > 0 {
            return Err(InfluxQlError::Invalid(
                "mixing aggregate and non-aggregate queries is not supported".into(),
            ));
        }
        return Ok(Shape::RawTransform);
    }
    Ok(Shape::Raw)
}

fn arity(name: &str, args: usize) -> Result<(), InfluxQlError> {
    let (min, max) = match name {
        "percentile" | "sample" | "moving_average" | "pow" | "log" | "atan2" => (2, 2),
        "derivative" | "non_negative_derivative" | "elapsed" | "integral" => (1, 2),
        "top" | "bottom" => {
            if args < 2 {
                return Err(InfluxQlError::Invalid(format!(
                    "invalid number of arguments for {name}, expected at least 2, got {args}"
                )));
            }
            return Ok(());
        }
        _ => (1, 1),
    };
    if args < min || args > max {
        let msg = if min == max {
            format!("invalid number of arguments for {name}, expected {min}, got {args}")
        } else {
            format!(
                "invalid number of arguments for {name}, expected at least {min} but no more than {max}, got {args}"
            )
        };
        return Err(InfluxQlError::Invalid(msg));
    }
    Ok(())
}

fn check(
    e: &Expr,
    inside_call: bool,
    aggregates: &mut usize,
    transforms: &mut usize,
    bare: &mut usize,
    has_time_group: bool,
) -> Result<(), InfluxQlError> {
    match e {
        Expr::Var { .. } if !inside_call => *bare += 1,
        Expr::Distinct(_) => *aggregates += 1,
        Expr::Call { name, args } => {
            let Some(kind) = kind_of(name) else {
                return Err(InfluxQlError::Invalid(format!(
                    "undefined function {name}()"
                )));
            };
            arity(name, args.len())?;
            match kind {
                Kind::Aggregate | Kind::Selector => {
                    *aggregates += 1;
                    match &args[0] {
                        Expr::Var { .. } => {}
                        Expr::Call {
                            name: inner,
                            args: inner_args,
                        } if inner == "distinct" && name == "count" => {
                            arity(inner, inner_args.len())?;
                        }
                        Expr::Distinct(_) if name == "count" => {}
                        _ => {
                            return Err(InfluxQlError::Invalid(format!(
                                "expected field argument in {name}()"
                            )))
                        }
                    }
                }
                Kind::Transform => {
                    *transforms += 1;
                    match &args[0] {
                        Expr::Call { .. } => {
                            let before = *aggregates;
                            check(&args[0], true, aggregates, transforms, bare, has_time_group)?;
                            if *aggregates == before {
                                return Err(InfluxQlError::Invalid(format!(
                                    "aggregate function required inside the call to {name}"
                                )));
                            }
                        }
                        Expr::Var { .. } if has_time_group => {
                            return Err(InfluxQlError::Invalid(format!(
                                "aggregate function required inside the call to {name}"
                            )))
                        }
                        Expr::Var { .. } => {}
                        other => {
                            return Err(InfluxQlError::Invalid(format!(
                                "expected field argument in {name}(), found {other}"
                            )))
                        }
                    }
                }
                Kind::Math => {
                    for a in args {
                        check(a, inside_call, aggregates, transforms, bare, has_time_group)?;
                    }
                }
            }
        }
        Expr::Binary { lhs, rhs, .. } => {
            check(
                lhs,
                inside_call,
                aggregates,
                transforms,
                bare,
                has_time_group,
            )?;
            check(
                rhs,
                inside_call,
                aggregates,
                transforms,
                bare,
                has_time_group,
            )?;
        }
        Expr::Paren(inner) => check(
            inner,
            inside_call,
            aggregates,
            transforms,
            bare,
            has_time_group,
        )?,
        Expr::Wildcard(_) | Expr::Regex(_) => {
            return Err(InfluxQlError::Invalid(
                "unable to use wildcard in a binary expression".into(),
            ))
        }
        _ => {}
    }
    Ok(())
}

/// Every field and tag the expressions read from `m`, in first-use order.
pub fn columns_read(fields: &[OutField], m: &Measurement) -> Vec<(String, Column)> {
    let mut out: Vec<(String, Column)> = Vec::new();
    for f in fields {
        f.expr.walk(&mut |e| {
            let name = match e {
                Expr::Var { name, ty } => Some((name, m.column(name, *ty))),
                Expr::Distinct(name) => Some((name, m.column(name, None))),
                _ => None,
            };
            if let Some((name, col)) = name {
                if matches!(col, Column::Tag | Column::Field(_))
                    && !out.iter().any(|(n, _)| n == name)
                {
                    out.push((name.clone(), col));
                }
            }
        });
    }
    out
}

/// The checks 1.x makes of a statement's calls before it reads anything, with its messages:
/// argument kinds and values, selectors combined with other calls, wildcards in
/// expressions, fields without a variable.
pub fn check_statement(stmt: &Select) -> Result<(), InfluxQlError> {
    let invalid = |m: String| Err(InfluxQlError::Invalid(m));
    let calls: usize = stmt
        .fields
        .iter()
        .map(|f| {
            let mut n = 0;
            f.expr.walk(&mut |e| {
                if matches!(e, Expr::Call { name, .. } if kind_of(name).is_some_and(|k| k != Kind::Math)) {
                    n += 1;
                }
            });
            // `count(distinct(x))` is one call.
            f.expr.walk(&mut |e| {
                if let Expr::Call { name, args } = e {
                    if name == "count" && matches!(args.first(), Some(Expr::Call { name, .. }) if name == "distinct") {
                        n -= 1;
                    }
                }
            });
            n
        })
        .sum();
    for f in &stmt.fields {
        let mut arity_error = None;
        f.expr.walk(&mut |e| {
            if let Expr::Call { name, args } = e {
                if kind_of(name).is_some() && arity_error.is_none() {
                    arity_error = arity(name, args.len()).err();
                }
            }
        });
        if let Some(e) = arity_error {
            return Err(e);
        }
        let mut vars = 0;
        let mut wildcard_in_binary = None;
        f.expr.walk(&mut |e| {
            if matches!(
                e,
                Expr::Var { .. } | Expr::Wildcard(_) | Expr::Regex(_) | Expr::Distinct(_)
            ) {
                vars += 1;
            }
            if let Expr::Binary { lhs, rhs, .. } = e {
                for side in [lhs, rhs] {
                    if let Expr::Call { name, args } = side.unparen() {
                        if matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))) {
                            wildcard_in_binary.get_or_insert(name.clone());
                        }
                    }
                }
            }
        });
        if let Some(name) = wildcard_in_binary {
            return invalid(format!("unsupported expression with wildcard: {name}()"));
        }
        if vars == 0 {
            return invalid("field must contain at least one variable".into());
        }
        let mut result = Ok(());
        f.expr.walk(&mut |e| {
            if result.is_err() {
                return;
            }
            if let Expr::Call { name, args } = e {
                result = check_arguments(name, args, calls);
            }
        });
        result?;
    }
    Ok(())
}

fn check_arguments(name: &str, args: &[Expr], calls: usize) -> Result<(), InfluxQlError> {
    let invalid = |m: String| Err(InfluxQlError::Invalid(m));
    let last = args.last();
    match name {
        "top" | "bottom" => {
            if calls > 1 {
                return invalid(format!(
                    "selector function {name}() cannot be combined with other functions"
                ));
            }
            if args.len() < 2 {
                return Ok(()); // The arity check words it.
            }
            match last {
                Some(Expr::Integer(n)) if *n < 1 => {
                    return invalid(format!("limit ({n}) in {name} function must be at least 1"))
                }
                Some(Expr::Integer(_)) => {}
                Some(other) => {
                    return invalid(format!(
                        "expected integer as last argument in {name}(), found {other}"
                    ))
                }
                None => {}
            }
            for t in &args[1..args.len() - 1] {
                if !matches!(t, Expr::Var { .. }) {
                    return invalid(format!(
                        "only fields or tags are allowed in {name}(), found {t}"
                    ));
                }
            }
        }
        "distinct" if calls > 1 => {
            return invalid(
                "aggregate function distinct() cannot be combined with other functions or fields"
                    .into(),
            )
        }
        "distinct" if matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))) => {
            return invalid("expected field argument in distinct()".into())
        }
        "percentile" => match args.get(1) {
            Some(Expr::Integer(_) | Expr::Float(_)) | None => {}
            Some(_) => return invalid("expected float argument in percentile()".into()),
        },
        "sample" => match args.get(1) {
            Some(Expr::Integer(n)) if *n <= 1 => {
                return invalid(format!("sample window must be greater than 1, got {n}"))
            }
            Some(Expr::Integer(_)) | None => {}
            Some(_) => return invalid("expected integer argument in sample()".into()),
        },
        "moving_average" => match args.get(1) {
            Some(Expr::Integer(n)) if *n <= 1 => {
                return invalid(format!(
                    "moving_average window must be greater than 1, got {n}"
                ))
            }
            Some(Expr::Integer(_)) | None => {}
            Some(other) => {
                return invalid(format!(
                    "second argument for moving_average must be an integer, got {}",
                    go_type(other)
                ))
            }
        },
        "derivative" | "non_negative_derivative" | "elapsed" | "integral" => match args.get(1) {
            Some(Expr::Duration(d)) if *d <= 0 => {
                return invalid(format!(
                    "duration argument must be positive, got {}",
                    DurationLit(*d)
                ))
            }
            Some(Expr::Duration(_)) | None => {}
            Some(other) => {
                return invalid(format!(
                    "second argument to {name} must be a duration, got {}",
                    go_type(other)
                ))
            }
        },
        _ => {}
    }
    Ok(())
}

/// How 1.x names a literal's type in its messages (its Go type).
fn go_type(e: &Expr) -> &'static str {
    match e {
        Expr::Str(_) => "*influxql.StringLiteral",
        Expr::Integer(_) => "*influxql.IntegerLiteral",
        Expr::Float(_) => "*influxql.NumberLiteral",
        Expr::Bool(_) => "*influxql.BooleanLiteral",
        Expr::Duration(_) => "*influxql.DurationLiteral",
        Expr::Var { .. } => "*influxql.VarRef",
        Expr::Regex(_) => "*influxql.RegexLiteral",
        _ => "*influxql.BinaryExpr",
    }
}
