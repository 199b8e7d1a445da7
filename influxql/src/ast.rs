//! The syntax tree of InfluxQL statements.
//!
//! It records what was written, not what it means: whether `host` is a tag or a field,
//! whether a call is an aggregate, what a string compared with `time` denotes — those are the
//! planner's to resolve against the catalog. It keeps parentheses ([`Expr::Paren`]) so that
//! printing a tree ([`crate::print`]) and parsing the text again gives the same tree.
//!
//! Invariants: names are stored unescaped; a regex is stored as the pattern between its
//! slashes with `\/` turned back into `/`; durations are whole nanoseconds.

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Box<Select>),
    Explain {
        analyze: bool,
        verbose: bool,
        select: Box<Select>,
    },
    Delete {
        from: Vec<Source>,
        condition: Option<Expr>,
    },
    DropSeries {
        from: Vec<Source>,
        condition: Option<Expr>,
    },
    DropMeasurement(String),
    DropShard(u64),
    CreateDatabase {
        name: String,
        policy: Option<PolicySpec>,
    },
    DropDatabase(String),
    CreateRetentionPolicy {
        name: String,
        database: String,
        duration: Duration,
        replication: u32,
        shard_duration: Option<Duration>,
        default: bool,
    },
    AlterRetentionPolicy {
        name: String,
        database: String,
        duration: Option<Duration>,
        replication: Option<u32>,
        shard_duration: Option<Duration>,
        default: bool,
    },
    DropRetentionPolicy {
        name: String,
        database: String,
    },
    Show(Show),
    KillQuery {
        id: u64,
        host: Option<String>,
    },
    CreateUser {
        name: String,
        password: String,
        admin: bool,
    },
    DropUser(String),
    SetPassword {
        user: String,
        password: String,
    },
    Grant {
        privilege: Privilege,
        /// `None`: `GRANT ALL PRIVILEGES TO user` (admin).
        database: Option<String>,
        user: String,
    },
    Revoke {
        privilege: Privilege,
        database: Option<String>,
        user: String,
    },
    CreateContinuousQuery {
        name: String,
        database: String,
        resample_every: Option<Duration>,
        resample_for: Option<Duration>,
        select: Box<Select>,
    },
    DropContinuousQuery {
        name: String,
        database: String,
    },
    CreateSubscription {
        name: String,
        database: String,
        policy: String,
        mode: SubscriptionMode,
        destinations: Vec<String>,
    },
    DropSubscription {
        name: String,
        database: String,
        policy: String,
    },
}

/// `WITH DURATION ... REPLICATION ... SHARD DURATION ... NAME ...` of `CREATE DATABASE`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicySpec {
    pub duration: Option<Duration>,
    pub replication: Option<u32>,
    pub shard_duration: Option<Duration>,
    pub name: Option<String>,
}

/// A retention period: nanoseconds, or `INF` (kept forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    Nanos(i64),
    Infinite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Read,
    Write,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionMode {
    All,
    Any,
}

/// The `SHOW` statements.
#[derive(Debug, Clone, PartialEq)]
pub enum Show {
    Databases,
    RetentionPolicies {
        on: Option<String>,
    },
    Measurements {
        on: Option<String>,
        with: Option<MeasurementMatch>,
        condition: Option<Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    TagKeys(SchemaQuery),
    TagValues {
        query: SchemaQuery,
        key: TagKeyMatch,
    },
    FieldKeys(SchemaQuery),
    Series(SchemaQuery),
    Cardinality {
        what: Cardinality,
        exact: bool,
        /// For tag values, the key it counts values of.
        key: Option<TagKeyMatch>,
        query: SchemaQuery,
        group_by: Vec<Dimension>,
    },
    Queries,
    Users,
    Grants(String),
    Shards,
    ShardGroups,
    Stats(Option<String>),
    Diagnostics(Option<String>),
    ContinuousQueries,
    Subscriptions,
}

/// What a `SHOW ... CARDINALITY` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    Measurement,
    Series,
    TagKey,
    TagValues,
    FieldKey,
}

/// The clauses the schema `SHOW` statements share.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaQuery {
    pub on: Option<String>,
    pub from: Vec<Source>,
    pub condition: Option<Expr>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub slimit: Option<u64>,
    pub soffset: Option<u64>,
}

/// `WITH MEASUREMENT = name` or `=~ /re/`.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasurementMatch {
    Eq(String),
    Regex(String),
}

/// `WITH KEY = k`, `!= k`, `=~ /re/`, `!~ /re/`, `IN (k, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub enum TagKeyMatch {
    Eq(String),
    NotEq(String),
    Regex(String),
    NotRegex(String),
    In(Vec<String>),
}

/// A `SELECT` statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Select {
    pub fields: Vec<Field>,
    pub into: Option<IntoTarget>,
    pub from: Vec<Source>,
    pub condition: Option<Expr>,
    pub group_by: Vec<Dimension>,
    pub fill: Option<Fill>,
    /// `true`: `ORDER BY time DESC`.
    pub order_desc: bool,
    /// Whether `ORDER BY` was written at all (so `ORDER BY time ASC` prints back).
    pub order_written: bool,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub slimit: Option<u64>,
    pub soffset: Option<u64>,
    pub timezone: Option<String>,
}

/// One item of the `SELECT` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// `INTO` target.
#[derive(Debug, Clone, PartialEq)]
pub struct IntoTarget {
    pub database: Option<String>,
    pub policy: Option<String>,
    /// `None`: `:MEASUREMENT`, the source's own name.
    pub measurement: Option<String>,
}

/// Something rows are read from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Measurement(Measurement),
    Subquery(Box<Select>),
}

/// `"db"."rp"."name"`, `"db".."name"`, `"rp"."name"`, `name` or `/re/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub database: Option<String>,
    pub policy: Option<String>,
    pub name: MeasurementName,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MeasurementName {
    Name(String),
    Regex(String),
}

/// A `GROUP BY` item: `time(...)`, a tag, `*`, `/re/` (kept as expressions; the planner
/// checks which are allowed).
pub type Dimension = Expr;

/// `fill(...)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    Null,
    None,
    Previous,
    Linear,
    Integer(i64),
    Float(f64),
}

/// The type a reference is cast to with `::`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    Field,
    Tag,
    Integer,
    Float,
    String,
    Boolean,
    Unsigned,
}

impl VarType {
    pub fn as_str(self) -> &'static str {
        match self {
            VarType::Field => "field",
            VarType::Tag => "tag",
            VarType::Integer => "integer",
            VarType::Float => "float",
            VarType::String => "string",
            VarType::Boolean => "boolean",
            VarType::Unsigned => "unsigned",
        }
    }

    pub fn from_name(s: &str) -> Option<VarType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "field" => VarType::Field,
            "tag" => VarType::Tag,
            "integer" => VarType::Integer,
            "float" => VarType::Float,
            "string" => VarType::String,
            "boolean" => VarType::Boolean,
            "unsigned" => VarType::Unsigned,
            _ => return None,
        })
    }
}

/// Binary operators, by precedence from loosest: `OR`; `AND`; comparisons; `+ - | ^`;
/// `* / % &`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    NotEq,
    EqRegex,
    NotEqRegex,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    BitOr,
    BitXor,
    Mul,
    Div,
    Mod,
    BitAnd,
}

impl BinaryOp {
    pub fn precedence(self) -> u8 {
        use BinaryOp::*;
        match self {
            Or => 1,
            And => 2,
            Eq | NotEq | EqRegex | NotEqRegex | Lt | LtEq | Gt | GtEq => 3,
            Add | Sub | BitOr | BitXor => 4,
            Mul | Div | Mod | BitAnd => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Or => "OR",
            And => "AND",
            Eq => "=",
            NotEq => "!=",
            EqRegex => "=~",
            NotEqRegex => "!~",
            Lt => "<",
            LtEq => "<=",
            Gt => ">",
            GtEq => ">=",
            Add => "+",
            Sub => "-",
            BitOr => "|",
            BitXor => "^",
            Mul => "*",
            Div => "/",
            Mod => "%",
            BitAnd => "&",
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A field, tag or `time`, optionally cast.
    Var {
        name: String,
        ty: Option<VarType>,
    },
    /// `*`, `*::field`, `*::tag`.
    Wildcard(Option<VarType>),
    /// `/re/` as a field list item, a `GROUP BY` item or the right side of `=~`/`!~`.
    Regex(String),
    Call {
        name: String,
        args: Vec<Expr>,
    },
    /// `DISTINCT x`, the keyword form of `distinct(x)`.
    Distinct(String),
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Paren(Box<Expr>),
    Integer(i64),
    /// An integer literal too large for `i64`.
    Unsigned(u64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    /// `$name`: replaced by its value before planning ([`crate::params`]).
    Param(String),
}

impl Expr {
    pub fn var(name: impl Into<String>) -> Expr {
        Expr::Var {
            name: name.into(),
            ty: None,
        }
    }

    pub fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    /// The expression inside any parentheses.
    pub fn unparen(&self) -> &Expr {
        let mut e = self;
        while let Expr::Paren(inner) = e {
            e = inner;
        }
        e
    }
}

impl Expr {
    /// Calls `f` on this expression and every expression inside it, parents first.
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        f(self);
        match self {
            Expr::Call { args, .. } => args.iter_mut().for_each(|a| a.walk_mut(f)),
            Expr::Binary { lhs, rhs, .. } => {
                lhs.walk_mut(f);
                rhs.walk_mut(f);
            }
            Expr::Paren(inner) => inner.walk_mut(f),
            _ => {}
        }
    }

    /// Calls `f` on this expression and every expression inside it, parents first.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Call { args, .. } => args.iter().for_each(|a| a.walk(f)),
            Expr::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            Expr::Paren(inner) => inner.walk(f),
            _ => {}
        }
    }
}

impl Select {
    /// Calls `f` on every top-level expression of the statement and its subqueries (fields,
    /// conditions, dimensions); use [`Expr::walk_mut`] inside `f` to reach nested ones.
    pub fn exprs_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        self.fields.iter_mut().for_each(|x| f(&mut x.expr));
        sources_exprs_mut(&mut self.from, f);
        if let Some(c) = &mut self.condition {
            f(c);
        }
        self.group_by.iter_mut().for_each(&mut *f);
    }
}

fn sources_exprs_mut(from: &mut [Source], f: &mut dyn FnMut(&mut Expr)) {
    for s in from {
        if let Source::Subquery(sub) = s {
            sub.exprs_mut(f);
        }
    }
}

fn schema_exprs_mut(q: &mut SchemaQuery, f: &mut dyn FnMut(&mut Expr)) {
    sources_exprs_mut(&mut q.from, f);
    if let Some(c) = &mut q.condition {
        f(c);
    }
}

impl Statement {
    /// Calls `f` on every top-level expression of the statement (see [`Select::exprs_mut`]).
    pub fn exprs_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        match self {
            Statement::Select(s) => s.exprs_mut(f),
            Statement::Explain { select, .. } => select.exprs_mut(f),
            Statement::CreateContinuousQuery { select, .. } => select.exprs_mut(f),
            Statement::Delete { from, condition } | Statement::DropSeries { from, condition } => {
                sources_exprs_mut(from, f);
                if let Some(c) = condition {
                    f(c);
                }
            }
            Statement::Show(show) => match show {
                Show::Measurements {
                    condition: Some(c), ..
                } => f(c),
                Show::TagKeys(q) | Show::FieldKeys(q) | Show::Series(q) => schema_exprs_mut(q, f),
                Show::TagValues { query, .. } => schema_exprs_mut(query, f),
                Show::Cardinality {
                    query, group_by, ..
                } => {
                    schema_exprs_mut(query, f);
                    group_by.iter_mut().for_each(&mut *f);
                }
                _ => {}
            },
            _ => {}
        }
    }
}
