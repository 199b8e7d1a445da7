//! Printing a tree back as InfluxQL text.
//!
//! Invariant: for every tree the parser produces, parsing the printed text gives the same
//! tree (a property test checks it over generated trees). So names are quoted when they would
//! not read back as the same identifier (a keyword, a leading digit, any other character),
//! floats always carry a `.`, and parentheses come from [`Expr::Paren`] nodes, never added.

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::*;
use crate::lexer::{is_ident_char, is_ident_start};
use crate::token::lookup;

/// An identifier as it must be written to read back as itself.
#[derive(Debug)]
pub struct Ident<'a>(pub &'a str);

impl Display for Ident<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let plain = s.chars().next().is_some_and(is_ident_start)
            && s.chars().all(is_ident_char)
            && lookup(s).is_none();
        if plain {
            return f.write_str(s);
        }
        quoted(f, s, '"')
    }
}

fn quoted(f: &mut Formatter<'_>, s: &str, quote: char) -> fmt::Result {
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            c if c == quote => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

/// A string literal.
#[derive(Debug)]
pub struct Str<'a>(pub &'a str);

impl Display for Str<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        quoted(f, self.0, '\'')
    }
}

/// A regex literal.
#[derive(Debug)]
pub struct Regex<'a>(pub &'a str);

impl Display for Regex<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('/')?;
        // Patterns hold escapes as pairs (`\d`, `\\`), so a `/` here is never escaped
        // already; the pair scan keeps `\\` from swallowing the slash after it.
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            match c {
                '/' => f.write_str("\\/")?,
                '\\' => {
                    f.write_char('\\')?;
                    if let Some(n) = chars.next() {
                        f.write_char(n)?;
                    }
                }
                c => f.write_char(c)?,
            }
        }
        f.write_char('/')
    }
}

/// A float, always with a `.` so it reads back as a float.
#[derive(Debug)]
pub struct Float(pub f64);

impl Display for Float {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut s = self.0.to_string();
        if !s.contains('.') && self.0.is_finite() {
            s.push_str(".0");
        }
        f.write_str(&s)
    }
}

/// A duration in its largest exact unit (`90m` is `90m`, `2h` is `2h`).
#[derive(Debug)]
pub struct DurationLit(pub i64);

impl Display for DurationLit {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return f.write_str("0s");
        }
        const UNITS: &[(i64, &str)] = &[
            (604_800_000_000_000, "w"),
            (86_400_000_000_000, "d"),
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "u"),
        ];
        for &(scale, unit) in UNITS {
            if ns % scale == 0 {
                return write!(f, "{}{unit}", ns / scale);
            }
        }
        write!(f, "{ns}ns")
    }
}

impl Display for Duration {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Duration::Nanos(ns) => DurationLit(*ns).fmt(f),
            Duration::Infinite => f.write_str("INF"),
        }
    }
}

fn list<T>(
    f: &mut Formatter<'_>,
    items: &[T],
    each: impl Fn(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        each(f, item)?;
    }
    Ok(())
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Var { name, ty } => {
                Ident(name).fmt(f)?;
                if let Some(ty) = ty {
                    write!(f, "::{}", ty.as_str())?;
                }
                Ok(())
            }
            Expr::Wildcard(ty) => {
                f.write_char('*')?;
                if let Some(ty) = ty {
                    write!(f, "::{}", ty.as_str())?;
                }
                Ok(())
            }
            Expr::Regex(re) => Regex(re).fmt(f),
            Expr::Call { name, args } => {
                f.write_str(name)?;
                f.write_char('(')?;
                list(f, args, |f, a| a.fmt(f))?;
                f.write_char(')')
            }
            Expr::Distinct(name) => write!(f, "DISTINCT {}", Ident(name)),
            Expr::Binary { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.as_str()),
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Integer(v) => write!(f, "{v}"),
            Expr::Unsigned(v) => write!(f, "{v}"),
            Expr::Float(v) => Float(*v).fmt(f),
            Expr::Str(s) => Str(s).fmt(f),
            Expr::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Expr::Duration(ns) => DurationLit(*ns).fmt(f),
            Expr::Param(name) => {
                f.write_char('$')?;
                let plain = name.chars().all(is_ident_char) && !name.is_empty();
                if plain {
                    f.write_str(name)
                } else {
                    quoted(f, name, '"')
                }
            }
        }
    }
}

impl Display for Measurement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.database, &self.policy) {
            (Some(db), Some(rp)) => write!(f, "{}.{}.", Ident(db), Ident(rp))?,
            (Some(db), None) => write!(f, "{}..", Ident(db))?,
            (None, Some(rp)) => write!(f, "{}.", Ident(rp))?,
            (None, None) => {}
        }
        match &self.name {
            MeasurementName::Name(n) => Ident(n).fmt(f),
            MeasurementName::Regex(re) => Regex(re).fmt(f),
        }
    }
}

impl Display for Source {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Source::Measurement(m) => m.fmt(f),
            Source::Subquery(s) => write!(f, "({s})"),
        }
    }
}

impl Display for Fill {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Fill::Null => f.write_str("fill(null)"),
            Fill::None => f.write_str("fill(none)"),
            Fill::Previous => f.write_str("fill(previous)"),
            Fill::Linear => f.write_str("fill(linear)"),
            Fill::Integer(v) => write!(f, "fill({v})"),
            Fill::Float(v) => write!(f, "fill({})", Float(*v)),
        }
    }
}

impl Display for IntoTarget {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.database, &self.policy) {
            (Some(db), Some(rp)) => write!(f, "{}.{}.", Ident(db), Ident(rp))?,
            (Some(db), None) => write!(f, "{}..", Ident(db))?,
            (None, Some(rp)) => write!(f, "{}.", Ident(rp))?,
            (None, None) => {}
        }
        match &self.measurement {
            Some(m) => Ident(m).fmt(f),
            None => f.write_str(":MEASUREMENT"),
        }
    }
}

fn sources(f: &mut Formatter<'_>, from: &[Source]) -> fmt::Result {
    list(f, from, |f, s| s.fmt(f))
}

fn opt_kw(f: &mut Formatter<'_>, kw: &str, v: Option<u64>) -> fmt::Result {
    match v {
        Some(v) => write!(f, " {kw} {v}"),
        None => Ok(()),
    }
}

impl Display for Select {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        list(f, &self.fields, |f, field| {
            field.expr.fmt(f)?;
            if let Some(a) = &field.alias {
                write!(f, " AS {}", Ident(a))?;
            }
            Ok(())
        })?;
        if let Some(into) = &self.into {
            write!(f, " INTO {into}")?;
        }
        f.write_str(" FROM ")?;
        sources(f, &self.from)?;
        if let Some(c) = &self.condition {
            write!(f, " WHERE {c}")?;
        }
        if !self.group_by.is_empty() {
            f.write_str(" GROUP BY ")?;
            list(f, &self.group_by, |f, d| d.fmt(f))?;
        }
        if let Some(fill) = &self.fill {
            write!(f, " {fill}")?;
        }
        if self.order_written || self.order_desc {
            let dir = if self.order_desc { "DESC" } else { "ASC" };
            write!(f, " ORDER BY time {dir}")?;
        }
        opt_kw(f, "LIMIT", self.limit)?;
        opt_kw(f, "OFFSET", self.offset)?;
        opt_kw(f, "SLIMIT", self.slimit)?;
        opt_kw(f, "SOFFSET", self.soffset)?;
        if let Some(tz) = &self.timezone {
            write!(f, " tz({})", Str(tz))?;
        }
        Ok(())
    }
}

impl SchemaQuery {
    fn fmt_head(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(db) = &self.on {
            write!(f, " ON {}", Ident(db))?;
        }
        if !self.from.is_empty() {
            f.write_str(" FROM ")?;
            sources(f, &self.from)?;
        }
        Ok(())
    }

    fn fmt_tail(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.condition {
            write!(f, " WHERE {c}")?;
        }
        self.fmt_limits(f)
    }

    fn fmt_limits(&self, f: &mut Formatter<'_>) -> fmt::Result {
        opt_kw(f, "LIMIT", self.limit)?;
        opt_kw(f, "OFFSET", self.offset)?;
        opt_kw(f, "SLIMIT", self.slimit)?;
        opt_kw(f, "SOFFSET", self.soffset)
    }
}

impl Display for TagKeyMatch {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(" WITH KEY ")?;
        match self {
            TagKeyMatch::Eq(k) => write!(f, "= {}", Ident(k)),
            TagKeyMatch::NotEq(k) => write!(f, "!= {}", Ident(k)),
            TagKeyMatch::Regex(re) => write!(f, "=~ {}", Regex(re)),
            TagKeyMatch::NotRegex(re) => write!(f, "!~ {}", Regex(re)),
            TagKeyMatch::In(keys) => {
                f.write_str("IN (")?;
                list(f, keys, |f, k| Ident(k).fmt(f))?;
                f.write_char(')')
            }
        }
    }
}

impl Display for Show {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SHOW ")?;
        match self {
            Show::Databases => f.write_str("DATABASES"),
            Show::RetentionPolicies { on } => {
                f.write_str("RETENTION POLICIES")?;
                if let Some(db) = on {
                    write!(f, " ON {}", Ident(db))?;
                }
                Ok(())
            }
            Show::Measurements {
                on,
                with,
                condition,
                limit,
                offset,
            } => {
                f.write_str("MEASUREMENTS")?;
                if let Some(db) = on {
                    write!(f, " ON {}", Ident(db))?;
                }
                match with {
                    Some(MeasurementMatch::Eq(m)) => write!(f, " WITH MEASUREMENT = {}", Ident(m))?,
                    Some(MeasurementMatch::Regex(re)) => {
                        write!(f, " WITH MEASUREMENT =~ {}", Regex(re))?
                    }
                    None => {}
                }
                if let Some(c) = condition {
                    write!(f, " WHERE {c}")?;
                }
                opt_kw(f, "LIMIT", *limit)?;
                opt_kw(f, "OFFSET", *offset)
            }
            Show::TagKeys(q) => {
                f.write_str("TAG KEYS")?;
                q.fmt_head(f)?;
                q.fmt_tail(f)
            }
            Show::TagValues { query, key } => {
                f.write_str("TAG VALUES")?;
                query.fmt_head(f)?;
                key.fmt(f)?;
                query.fmt_tail(f)
            }
            Show::FieldKeys(q) => {
                f.write_str("FIELD KEYS")?;
                q.fmt_head(f)?;
                q.fmt_tail(f)
            }
            Show::Series(q) => {
                f.write_str("SERIES")?;
                q.fmt_head(f)?;
                q.fmt_tail(f)
            }
            Show::Cardinality {
                what,
                exact,
                key,
                query,
                group_by,
            } => {
                f.write_str(match what {
                    Cardinality::Measurement => "MEASUREMENT",
                    Cardinality::Series => "SERIES",
                    Cardinality::TagKey => "TAG KEY",
                    Cardinality::TagValues => "TAG VALUES",
                    Cardinality::FieldKey => "FIELD KEY",
                })?;
                if *exact {
                    f.write_str(" EXACT")?;
                }
                f.write_str(" CARDINALITY")?;
                query.fmt_head(f)?;
                if let Some(k) = key {
                    k.fmt(f)?;
                }
                if let Some(c) = &query.condition {
                    write!(f, " WHERE {c}")?;
                }
                if !group_by.is_empty() {
                    f.write_str(" GROUP BY ")?;
                    list(f, group_by, |f, d| d.fmt(f))?;
                }
                query.fmt_limits(f)
            }
            Show::Queries => f.write_str("QUERIES"),
            Show::Users => f.write_str("USERS"),
            Show::Grants(u) => write!(f, "GRANTS FOR {}", Ident(u)),
            Show::Shards => f.write_str("SHARDS"),
            Show::ShardGroups => f.write_str("SHARD GROUPS"),
            Show::Stats(m) => {
                f.write_str("STATS")?;
                if let Some(m) = m {
                    write!(f, " FOR {}", Str(m))?;
                }
                Ok(())
            }
            Show::Diagnostics(m) => {
                f.write_str("DIAGNOSTICS")?;
                if let Some(m) = m {
                    write!(f, " FOR {}", Str(m))?;
                }
                Ok(())
            }
            Show::ContinuousQueries => f.write_str("CONTINUOUS QUERIES"),
            Show::Subscriptions => f.write_str("SUBSCRIPTIONS"),
        }
    }
}

fn privilege(p: Privilege) -> &'static str {
    match p {
        Privilege::Read => "READ",
        Privilege::Write => "WRITE",
        Privilege::All => "ALL PRIVILEGES",
    }
}

fn from_where(f: &mut Formatter<'_>, from: &[Source], condition: &Option<Expr>) -> fmt::Result {
    if !from.is_empty() {
        f.write_str(" FROM ")?;
        sources(f, from)?;
    }
    if let Some(c) = condition {
        write!(f, " WHERE {c}")?;
    }
    Ok(())
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Select(s) => s.fmt(f),
            Statement::Explain {
                analyze,
                verbose,
                select,
            } => {
                f.write_str("EXPLAIN ")?;
                if *analyze {
                    f.write_str("ANALYZE ")?;
                }
                if *verbose {
                    f.write_str("VERBOSE ")?;
                }
                select.fmt(f)
            }
            Statement::Delete { from, condition } => {
                f.write_str("DELETE")?;
                from_where(f, from, condition)
            }
            Statement::DropSeries { from, condition } => {
                f.write_str("DROP SERIES")?;
                from_where(f, from, condition)
            }
            Statement::DropMeasurement(m) => write!(f, "DROP MEASUREMENT {}", Ident(m)),
            Statement::DropShard(id) => write!(f, "DROP SHARD {id}"),
            Statement::CreateDatabase { name, policy } => {
                write!(f, "CREATE DATABASE {}", Ident(name))?;
                if let Some(p) = policy {
                    f.write_str(" WITH")?;
                    if let Some(d) = p.duration {
                        write!(f, " DURATION {d}")?;
                    }
                    if let Some(r) = p.replication {
                        write!(f, " REPLICATION {r}")?;
                    }
                    if let Some(d) = p.shard_duration {
                        write!(f, " SHARD DURATION {d}")?;
                    }
                    if let Some(n) = &p.name {
                        write!(f, " NAME {}", Ident(n))?;
                    }
                }
                Ok(())
            }
            Statement::DropDatabase(n) => write!(f, "DROP DATABASE {}", Ident(n)),
            Statement::CreateRetentionPolicy {
                name,
                database,
                duration,
                replication,
                shard_duration,
                default,
            } => {
                write!(
                    f,
                    "CREATE RETENTION POLICY {} ON {} DURATION {duration} REPLICATION {replication}",
                    Ident(name),
                    Ident(database)
                )?;
                if let Some(d) = shard_duration {
                    write!(f, " SHARD DURATION {d}")?;
                }
                if *default {
                    f.write_str(" DEFAULT")?;
                }
                Ok(())
            }
            Statement::AlterRetentionPolicy {
                name,
                database,
                duration,
                replication,
                shard_duration,
                default,
            } => {
                write!(
                    f,
                    "ALTER RETENTION POLICY {} ON {}",
                    Ident(name),
                    Ident(database)
                )?;
                if let Some(d) = duration {
                    write!(f, " DURATION {d}")?;
                }
                if let Some(r) = replication {
                    write!(f, " REPLICATION {r}")?;
                }
                if let Some(d) = shard_duration {
                    write!(f, " SHARD DURATION {d}")?;
                }
                if *default {
                    f.write_str(" DEFAULT")?;
                }
                Ok(())
            }
            Statement::DropRetentionPolicy { name, database } => write!(
                f,
                "DROP RETENTION POLICY {} ON {}",
                Ident(name),
                Ident(database)
            ),
            Statement::Show(s) => s.fmt(f),
            Statement::KillQuery { id, host } => {
                write!(f, "KILL QUERY {id}")?;
                if let Some(h) = host {
                    write!(f, " ON {}", Ident(h))?;
                }
                Ok(())
            }
            Statement::CreateUser {
                name,
                password,
                admin,
            } => {
                write!(
                    f,
                    "CREATE USER {} WITH PASSWORD {}",
                    Ident(name),
                    Str(password)
                )?;
                if *admin {
                    f.write_str(" WITH ALL PRIVILEGES")?;
                }
                Ok(())
            }
            Statement::DropUser(u) => write!(f, "DROP USER {}", Ident(u)),
            Statement::SetPassword { user, password } => {
                write!(f, "SET PASSWORD FOR {} = {}", Ident(user), Str(password))
            }
            Statement::Grant {
                privilege: p,
                database,
                user,
            } => {
                write!(f, "GRANT {}", privilege(*p))?;
                if let Some(db) = database {
                    write!(f, " ON {}", Ident(db))?;
                }
                write!(f, " TO {}", Ident(user))
            }
            Statement::Revoke {
                privilege: p,
                database,
                user,
            } => {
                write!(f, "REVOKE {}", privilege(*p))?;
                if let Some(db) = database {
                    write!(f, " ON {}", Ident(db))?;
                }
                write!(f, " FROM {}", Ident(user))
            }
            Statement::CreateContinuousQuery {
                name,
                database,
                resample_every,
                resample_for,
                select,
            } => {
                write!(
                    f,
                    "CREATE CONTINUOUS QUERY {} ON {}",
                    Ident(name),
                    Ident(database)
                )?;
                if resample_every.is_some() || resample_for.is_some() {
                    f.write_str(" RESAMPLE")?;
                    if let Some(d) = resample_every {
                        write!(f, " EVERY {d}")?;
                    }
                    if let Some(d) = resample_for {
                        write!(f, " FOR {d}")?;
                    }
                }
                write!(f, " BEGIN {select} END")
            }
            Statement::DropContinuousQuery { name, database } => write!(
                f,
                "DROP CONTINUOUS QUERY {} ON {}",
                Ident(name),
                Ident(database)
            ),
            Statement::CreateSubscription {
                name,
                database,
                policy,
                mode,
                destinations,
            } => {
                write!(
                    f,
                    "CREATE SUBSCRIPTION {} ON {}.{} DESTINATIONS {} ",
                    Ident(name),
                    Ident(database),
                    Ident(policy),
                    match mode {
                        SubscriptionMode::All => "ALL",
                        SubscriptionMode::Any => "ANY",
                    }
                )?;
                list(f, destinations, |f, d| Str(d).fmt(f))
            }
            Statement::DropSubscription {
                name,
                database,
                policy,
            } => write!(
                f,
                "DROP SUBSCRIPTION {} ON {}.{}",
                Ident(name),
                Ident(database),
                Ident(policy)
            ),
        }
    }
}
