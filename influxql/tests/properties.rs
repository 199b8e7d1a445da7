//! Properties of the parser over generated input:
//! - printing a generated tree and parsing the text gives the same tree;
//! - no input, random bytes or random token sequences, makes the parser panic, and an error
//!   always points inside the input.

use proptest::prelude::*;
use shardline_influxql::ast::*;
use shardline_influxql::parse;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_]{0,6}",
        1 => "[a-zA-Z0-9 ,=\"'\\\\.\\-]{0,6}",
        1 => Just("select".to_string()),
        1 => Just("time".to_string()),
    ]
}

fn plain_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}".prop_filter("a keyword", |s| {
        shardline_influxql::parse_expr(s).is_ok_and(|e| matches!(e, Expr::Var { .. }))
    })
}

fn pattern() -> impl Strategy<Value = String> {
    "([a-z/.^$|()]|\\\\d|\\\\\\\\){0,6}".prop_filter("not a regex", |p| {
        shardline_influxql::regex::check(p).is_ok()
    })
}

fn literal() -> impl Strategy<Value = Expr> {
    prop_oneof![
        any::<i64>().prop_map(Expr::Integer),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Expr::Unsigned),
        (-1e12f64..1e12).prop_map(Expr::Float),
        "[a-z '\\\\\n]{0,6}".prop_map(Expr::Str),
        any::<bool>().prop_map(Expr::Bool),
        (-1_000_000_000_000i64..1_000_000_000_000).prop_map(Expr::Duration),
        plain_name().prop_map(Expr::Param),
    ]
}

fn var() -> impl Strategy<Value = Expr> {
    (
        name(),
        proptest::option::of(prop_oneof![
            Just(VarType::Field),
            Just(VarType::Tag),
            Just(VarType::Integer),
            Just(VarType::Float),
            Just(VarType::String),
            Just(VarType::Boolean),
            Just(VarType::Unsigned),
        ]),
    )
        .prop_map(|(name, ty)| Expr::Var { name, ty })
}

const OPS: &[BinaryOp] = &[
    BinaryOp::Or,
    BinaryOp::And,
    BinaryOp::Eq,
    BinaryOp::NotEq,
    BinaryOp::Lt,
    BinaryOp::LtEq,
    BinaryOp::Gt,
    BinaryOp::GtEq,
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::BitOr,
    BinaryOp::BitXor,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Mod,
    BinaryOp::BitAnd,
];

/// A binary expression as the parser would build it: a child that binds no tighter than
/// its parent (looser on the left) is parenthesised, a negative literal never stands on
/// the right of a tighter operator's chain in a way that would re-associate.
fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    let prec = |e: &Expr| match e {
        Expr::Binary { op, .. } => op.precedence(),
        _ => u8::MAX,
    };
    let lhs = if prec(&lhs) < op.precedence() {
        Expr::Paren(Box::new(lhs))
    } else {
        lhs
    };
    let rhs = if prec(&rhs) <= op.precedence() {
        Expr::Paren(Box::new(rhs))
    } else {
        rhs
    };
    Expr::binary(op, lhs, rhs)
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![literal(), var()];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (0..OPS.len(), inner.clone(), inner.clone()).prop_map(|(i, l, r)| binary(OPS[i], l, r)),
            (inner.clone(), pattern())
                .prop_map(|(l, p)| { binary(BinaryOp::EqRegex, l, Expr::Regex(p)) }),
            inner.clone().prop_map(|e| Expr::Paren(Box::new(e))),
            (plain_name(), proptest::collection::vec(inner.clone(), 0..3))
                .prop_map(|(name, args)| Expr::Call { name, args }),
            inner.prop_map(|e| Expr::binary(
                BinaryOp::Mul,
                Expr::Integer(-1),
                paren_unless_leaf(e)
            )),
        ]
    })
}

/// `-1 * x` prints as `-1 * x` and reads back the same only if `x` binds tighter.
fn paren_unless_leaf(e: Expr) -> Expr {
    match e {
        Expr::Binary { .. } => Expr::Paren(Box::new(e)),
        e => e,
    }
}

fn measurement() -> impl Strategy<Value = Measurement> {
    (
        proptest::option::of(name()),
        proptest::option::of(name()),
        prop_oneof![
            3 => name().prop_map(MeasurementName::Name),
            1 => pattern().prop_map(MeasurementName::Regex),
        ],
    )
        .prop_map(|(database, policy, name)| Measurement {
            database: database.filter(|d| !d.is_empty()),
            policy: policy.filter(|p| !p.is_empty()),
            name,
        })
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(Fill::Null),
        Just(Fill::None),
        Just(Fill::Previous),
        Just(Fill::Linear),
        any::<i64>().prop_map(Fill::Integer),
        (-1e9f64..1e9).prop_map(Fill::Float),
    ]
}

/// A field: no comparison or logical operator anywhere (1.x refuses them in `SELECT`).
fn field_expr() -> impl Strategy<Value = Expr> {
    expr().prop_filter("WHERE operator in a field", |e| {
        let mut bad = false;
        e.walk(&mut |x| {
            if let Expr::Binary { op, .. } = x {
                bad |= op.precedence() <= 3;
            }
        });
        !bad
    })
}

fn select() -> impl Strategy<Value = Select> {
    (
        proptest::collection::vec(
            (field_expr(), proptest::option::of(name()))
                .prop_map(|(expr, alias)| Field { expr, alias }),
            1..3,
        ),
        proptest::collection::vec(measurement().prop_map(Source::Measurement), 1..3),
        proptest::option::of(expr()),
        proptest::collection::vec(prop_oneof![var(), Just(Expr::Wildcard(None))], 0..3),
        proptest::option::of(fill()),
        any::<(bool, bool)>(),
        proptest::array::uniform4(proptest::option::of(0u64..1000)),
        proptest::option::of("[A-Za-z/_]{1,12}"),
    )
        .prop_map(
            |(fields, from, condition, group_by, fill, (desc, written), limits, timezone)| Select {
                fields,
                into: None,
                from,
                condition,
                group_by,
                fill,
                order_desc: desc,
                order_written: written || desc,
                limit: limits[0],
                offset: limits[1],
                slimit: limits[2],
                soffset: limits[3],
                timezone,
            },
        )
}

/// Cases per property: 2,000 in CI; `INFLUXQL_PROPTEST_CASES` raises it for long runs.
fn cases() -> u32 {
    std::env::var("INFLUXQL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn printed_selects_parse_back(s in select()) {
        let stmt = Statement::Select(Box::new(s));
        let text = stmt.to_string();
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed, vec![stmt], "{}", text);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse(&text) {
            prop_assert!(e.offset <= text.len());
        }
    }

    #[test]
    fn random_token_sequences_never_panic(
        words in proptest::collection::vec(prop_oneof![
            Just("SELECT"), Just("FROM"), Just("WHERE"), Just("GROUP"), Just("BY"), Just("SHOW"),
            Just("TAG"), Just("KEYS"), Just("VALUES"), Just("WITH"), Just("KEY"), Just("CREATE"),
            Just("DATABASE"), Just("DROP"), Just("SERIES"), Just("INTO"), Just(":"), Just("::"),
            Just("MEASUREMENT"), Just("ON"), Just("LIMIT"), Just("fill"), Just("tz"), Just("time"),
            Just("("), Just(")"), Just(","), Just(";"), Just("."), Just("*"), Just("/"), Just("/re/"),
            Just("=~"), Just("="), Just("-"), Just("+"), Just("AND"), Just("OR"), Just("1"),
            Just("1.5"), Just("10m"), Just("'s'"), Just("\"q\""), Just("$p"), Just("x"),
            Just("mean"), Just("DISTINCT"), Just("ORDER"), Just("DESC"), Just("CARDINALITY"),
            Just("EXACT"), Just("RETENTION"), Just("POLICY"), Just("DURATION"), Just("INF"),
            Just("--"), Just("/*"), Just("*/"), Just("'"), Just("\""), Just("\\"),
        ], 0..24)
    ) {
        let text = words.join(" ");
        if let Ok(stmts) = parse(&text) {
            // Whatever parses prints to something that parses to the same tree.
            let printed = stmts.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; ");
            prop_assert_eq!(parse(&printed).ok(), Some(stmts), "{} printed as {}", text, printed);
        } else if let Err(e) = parse(&text) {
            prop_assert!(e.offset <= text.len());
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "SELECT {}a{} FROM m",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let err = parse(&deep).unwrap_err();
    assert!(err.message.contains("nested too deeply"), "{err}");
    let minus = format!("SELECT {}a FROM m", "-".repeat(10_000));
    assert!(parse(&minus).is_err());
    let subs = format!(
        "SELECT a FROM {}m{}",
        "(SELECT a FROM ".repeat(5_000),
        ")".repeat(5_000)
    );
    assert!(parse(&subs).is_err());
}

/// A long fuzzing run: random byte strings and token sequences (and generated trees for the
/// round trip) for `INFLUXQL_FUZZ_SECS` seconds, reporting how many inputs it tried. Ignored
/// in CI; run with
/// `INFLUXQL_FUZZ_SECS=3600 cargo test --release -p shardline-influxql --test properties -- --ignored fuzz --nocapture`.
#[test]
#[ignore]
fn fuzz_for_a_while() {
    use proptest::test_runner::{Config, TestRunner};
    let secs: u64 = std::env::var("INFLUXQL_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut rounds = 0u64;
    let mut inputs = 0u64;
    while std::time::Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            cases: 10_000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&proptest::collection::vec(any::<u8>(), 0..256), |bytes| {
                let text = String::from_utf8_lossy(&bytes);
                if let Err(e) = parse(&text) {
                    prop_assert!(e.offset <= text.len());
                }
                Ok(())
            })
            .unwrap();
        runner
            .run(&select(), |s| {
                let stmt = Statement::Select(Box::new(s));
                let text = stmt.to_string();
                prop_assert_eq!(parse(&text).ok(), Some(vec![stmt]), "{}", text);
                Ok(())
            })
            .unwrap();
        rounds += 1;
        inputs += 20_000;
    }
    println!("fuzzed {inputs} inputs in {rounds} rounds over {secs} s: no panic, no failure");
}
