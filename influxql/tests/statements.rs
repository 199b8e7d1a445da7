//! The statement table (`statements.txt`): each input with the tree it parses to, or the
//! error and position it fails with.
//!
//! A tree is written as the statement printed back with every operator and parenthesis made
//! explicit as a call — `a + b * 2` is `+(a, *(b, 2))`, `(a)` is `paren(a)` — so precedence,
//! literal kinds (`2` vs `2.0`), quoting and clause placement are all visible. Every input that
//! parses must also print to text that parses back to the same tree.
//!
//! `BLESS=1 cargo test -p shardline-influxql --test statements` rewrites the expected lines
//! from the parser; review the diff before committing it.

use shardline_influxql::ast::{Expr, Statement};
use shardline_influxql::parse;

fn explicit(stmts: &[Statement]) -> String {
    stmts
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.exprs_mut(&mut |top| {
                top.walk_mut(&mut |e| {
                    let replaced = match e {
                        Expr::Binary { op, lhs, rhs } => Some(Expr::Call {
                            name: op.as_str().to_string(),
                            args: vec![(**lhs).clone(), (**rhs).clone()],
                        }),
                        Expr::Paren(inner) => Some(Expr::Call {
                            name: "paren".into(),
                            args: vec![(**inner).clone()],
                        }),
                        _ => None,
                    };
                    if let Some(r) = replaced {
                        *e = r;
                    }
                })
            });
            s.to_string()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn outcome(input: &str) -> String {
    match parse(input) {
        Ok(stmts) => {
            let printed = stmts
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            let again = parse(&printed)
                .unwrap_or_else(|e| panic!("{input:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(
                again, stmts,
                "{input:?} printed as {printed:?} parses differently"
            );
            format!("= {}", explicit(&stmts))
        }
        Err(e) => format!("! {e}"),
    }
}

#[test]
fn statement_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/statements.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let bless = std::env::var_os("BLESS").is_some();
    let mut out = String::new();
    let mut failures = Vec::new();
    let mut count = 0;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        // An input may span lines: continuation lines start with `|`.
        let mut input = line.to_string();
        out.push_str(line);
        out.push('\n');
        while let Some(next) = lines.peek().filter(|l| l.starts_with('|')) {
            input.push('\n');
            input.push_str(&next[1..]);
            out.push_str(next);
            out.push('\n');
            lines.next();
        }
        let expected = match lines.peek() {
            Some(l) if l.starts_with("= ") || l.starts_with("! ") => lines.next().unwrap(),
            _ => "",
        };
        count += 1;
        let got = outcome(&input);
        if got != expected {
            failures.push(format!("{input}\n  expected {expected}\n  got      {got}"));
        }
        out.push_str(&got);
        out.push('\n');
    }
    if bless {
        std::fs::write(path, out).unwrap();
        return;
    }
    assert!(
        count >= 300,
        "the table has {count} statements, want at least 300"
    );
    assert!(
        failures.is_empty(),
        "{} of {count} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
