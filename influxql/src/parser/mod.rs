//! The parser: recursive descent over the lexer's tokens, one token of lookahead.
//!
//! [`parse`] reads a query — statements separated by `;` — and [`parse_expr`] one expression.
//! Errors name what was found and what was expected, with its position, as 1.x does.
//!
//! Invariants: the parser never panics on any input (a proptest feeds it random bytes and
//! random token sequences); it looks at most one token ahead, except to tell a regex from a
//! division, which it settles by asking the lexer to re-read a `/` as a regex.

mod admin;
mod expr;
mod select;
mod show;

use crate::ast::{Duration, Statement};
use crate::error::ParseError;
use crate::lexer::{Illegal, Lexer, Token};
use crate::token::{Keyword, Kind};

/// Parses a query: one or more statements separated by `;` (empty statements are skipped).
pub fn parse(input: &str) -> Result<Vec<Statement>, ParseError> {
    let mut p = Parser::new(input);
    let mut out = Vec::new();
    loop {
        let t = p.peek();
        match t.kind {
            Kind::Eof => return Ok(out),
            Kind::Semicolon => {
                p.bump();
                continue;
            }
            _ => {}
        }
        out.push(p.statement()?);
        let t = p.peek();
        match t.kind {
            Kind::Eof => return Ok(out),
            Kind::Semicolon => p.bump(),
            _ => return Err(p.unexpected(t, &[";"])),
        }
    }
}

/// Parses a single statement (a trailing `;` is allowed).
pub fn parse_statement(input: &str) -> Result<Statement, ParseError> {
    let mut all = parse(input)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(ParseError::found(input, input.len(), "EOF", &["statement"])),
        _ => Err(ParseError::new(input, 0, "expected a single statement")),
    }
}

/// Parses an expression (a `WHERE` condition, say) and nothing after it.
pub fn parse_expr(input: &str) -> Result<crate::ast::Expr, ParseError> {
    let mut p = Parser::new(input);
    let e = p.expr()?;
    let t = p.peek();
    if t.kind != Kind::Eof {
        return Err(p.unexpected(t, &["EOF"]));
    }
    Ok(e)
}

pub(crate) struct Parser<'a> {
    lx: Lexer<'a>,
    peeked: Option<Token>,
    /// The kind of the last token consumed, for where an error at the end is reported.
    prev: Kind,
    /// Whether the parser looked for a regex at the peeked token (1.x reports the end of
    /// input one character further then).
    probed_regex: bool,
    /// Nesting of parentheses and subqueries, bounded so deep input is an error, not a
    /// stack overflow.
    depth: usize,
}

/// Deeper nesting than this is refused.
pub const MAX_DEPTH: usize = 100;

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            lx: Lexer::new(input),
            peeked: None,
            prev: Kind::Eof,
            probed_regex: false,
            depth: 0,
        }
    }

    fn input(&self) -> &'a str {
        self.lx.input()
    }

    fn peek(&mut self) -> Token {
        if let Some(t) = self.peeked {
            return t;
        }
        let t = self.lx.next_token();
        self.peeked = Some(t);
        t
    }

    fn bump(&mut self) {
        self.next();
    }

    /// The next token, consumed.
    fn next(&mut self) -> Token {
        let t = self.peek();
        self.peeked = None;
        if t.kind != Kind::Eof {
            self.prev = t.kind;
            self.probed_regex = false;
        }
        t
    }

    /// Peeks where a regex may start (a field, a source, a dimension, a call argument).
    fn peek_regex_position(&mut self) -> Token {
        let t = self.peek();
        self.probed_regex = true;
        t
    }

    fn text(&self, t: Token) -> &'a str {
        t.text(self.lx.input())
    }

    fn enter(&mut self, at: Token) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                self.input(),
                at.start,
                format!("query nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// The error for an unexpected token, worded and placed as 1.x does: `found X, expected
    /// ...` where X is the token's text (unquoted for strings and identifiers, the keyword in
    /// upper case, `EOF` at the end).
    fn unexpected(&self, t: Token, expected: &[&str]) -> ParseError {
        let input = self.input();
        let text = t.text(input);
        let (found, at) = match t.kind {
            Kind::Eof => return self.unexpected_end(expected),
            Kind::Keyword(k) => (k.as_str().to_string(), t.start),
            Kind::Str | Kind::QuotedIdent => {
                let v = unescape(text);
                let shown = match (v.is_empty(), t.kind) {
                    (false, _) => v,
                    (true, Kind::Str) => "STRING".to_string(),
                    (true, _) => "IDENT".to_string(),
                };
                (shown, t.start)
            }
            Kind::Illegal => match self.lx.illegal {
                Illegal::UnexpectedChar => (text.to_string(), t.start),
                // 1.x shows what it read of an unterminated string or identifier.
                Illegal::UnterminatedString
                | Illegal::UnterminatedIdent
                | Illegal::NewlineInString => {
                    let body = text.get(1..).unwrap_or("").trim_end_matches('\n');
                    // 1.x places an unterminated identifier one character before its quote.
                    let at = if text.starts_with('"') {
                        t.start.saturating_sub(1)
                    } else {
                        t.start
                    };
                    (body.to_string(), at)
                }
                Illegal::BadEscape => {
                    let at = self.lx.illegal_at;
                    let c = input[at..].chars().next().map_or(0, char::len_utf8);
                    (format!("\\{}", &input[at..at + c]), at)
                }
                Illegal::UnterminatedRegex => {
                    return ParseError::new(input, t.start, "bad regex: ");
                }
                Illegal::UnterminatedComment => ("ILLEGAL".to_string(), t.start),
                Illegal::EmptyParam => {
                    return ParseError::bare(input, t.start, "empty bound parameter");
                }
            },
            _ => (text.to_string(), t.start),
        };
        ParseError::found(input, at, &found, expected)
    }

    /// `found EOF, expected ...`. 1.x's reader places the end one character further when it
    /// has already read past it once: after a word, after trailing space, or when it looked
    /// for a regex there.
    fn unexpected_end(&self, expected: &[&str]) -> ParseError {
        let input = self.input();
        let mut e = ParseError::found(input, input.len(), "EOF", expected);
        let after_word = matches!(
            self.prev,
            Kind::Ident | Kind::Keyword(_) | Kind::True | Kind::False
        );
        let trailing_space = input.ends_with([' ', '\t', '\n', '\r']);
        if !input.is_empty() && (after_word || trailing_space || self.probed_regex) {
            e.char += 1;
        }
        e
    }

    fn is_keyword(&mut self, k: Keyword) -> bool {
        self.peek().kind == Kind::Keyword(k)
    }

    /// Consumes keyword `k` if it is next.
    fn eat_keyword(&mut self, k: Keyword) -> bool {
        if self.is_keyword(k) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, k: Keyword) -> Result<Token, ParseError> {
        let t = self.next();
        if t.kind == Kind::Keyword(k) {
            Ok(t)
        } else {
            Err(self.unexpected(t, &[k.as_str()]))
        }
    }

    /// Expects `kinds` in turn (keywords, say `RETENTION POLICY`).
    fn expect_keywords(&mut self, ks: &[Keyword]) -> Result<(), ParseError> {
        for &k in ks {
            self.expect_keyword(k)?;
        }
        Ok(())
    }

    fn eat(&mut self, kind: Kind) -> bool {
        if self.peek().kind == kind {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kind: Kind) -> Result<Token, ParseError> {
        let t = self.next();
        if t.kind == kind {
            Ok(t)
        } else {
            Err(self.unexpected(t, &[kind.describe()]))
        }
    }

    /// An identifier, quoted or not, unescaped.
    fn ident(&mut self) -> Result<String, ParseError> {
        let t = self.next();
        match t.kind {
            Kind::Ident => Ok(self.text(t).to_string()),
            Kind::QuotedIdent => Ok(unescape(self.text(t))),
            _ => Err(self.unexpected(t, &["identifier"])),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let t = self.next();
        match t.kind {
            Kind::Str => Ok(unescape(self.text(t))),
            _ => Err(self.unexpected(t, &["string"])),
        }
    }

    /// A non-negative integer (`LIMIT 10`).
    fn uint(&mut self) -> Result<u64, ParseError> {
        let t = self.next();
        if t.kind != Kind::Integer {
            return Err(self.unexpected(t, &["integer"]));
        }
        self.text(t).parse().map_err(|_| {
            ParseError::new(
                self.input(),
                t.start,
                format!("unable to parse integer {}", self.text(t)),
            )
        })
    }

    /// A duration literal, or `INF` where `infinite` is allowed.
    fn duration(&mut self, infinite: bool) -> Result<Duration, ParseError> {
        let t = self.next();
        match t.kind {
            Kind::Duration => match self.duration_value(t) {
                Ok(ns) => Ok(Duration::Nanos(ns)),
                Err(mut e) => {
                    e.positioned = true;
                    Err(e)
                }
            },
            Kind::Keyword(Keyword::INF) if infinite => Ok(Duration::Infinite),
            _ => Err(self.unexpected(t, &["duration"])),
        }
    }

    /// The nanoseconds of a duration token; an error says `invalid duration` (bare inside
    /// an expression, placed in a statement's `DURATION` clause, as 1.x does).
    fn duration_value(&self, t: Token) -> Result<i64, ParseError> {
        let text = self.text(t);
        match parse_duration(text) {
            Ok(ns) => Ok(ns),
            Err(DurationError::Invalid) => {
                Err(ParseError::bare(self.input(), t.start, "invalid duration"))
            }
            Err(DurationError::Overflow) => Err(ParseError::new(
                self.input(),
                t.start,
                format!("overflowed duration {text}: choose a smaller duration or INF"),
            )),
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let t = self.peek();
        match t.kind {
            Kind::Keyword(Keyword::SELECT) => Ok(Statement::Select(Box::new(self.select()?))),
            Kind::Keyword(Keyword::SHOW) => self.show(),
            Kind::Keyword(Keyword::CREATE) => self.create(),
            Kind::Keyword(Keyword::DROP) => self.drop_statement(),
            Kind::Keyword(Keyword::ALTER) => self.alter(),
            Kind::Keyword(Keyword::DELETE) => self.delete(),
            Kind::Keyword(Keyword::EXPLAIN) => self.explain(),
            Kind::Keyword(Keyword::KILL) => self.kill(),
            Kind::Keyword(Keyword::GRANT) => self.grant(),
            Kind::Keyword(Keyword::REVOKE) => self.revoke(),
            Kind::Keyword(Keyword::SET) => self.set_password(),
            _ => Err(self.unexpected(
                t,
                &[
                    "SELECT", "DELETE", "SHOW", "CREATE", "DROP", "EXPLAIN", "GRANT", "REVOKE",
                    "ALTER", "SET", "KILL",
                ],
            )),
        }
    }
}

/// The value of a quoted string or identifier's text (quotes included): `\n` is a line
/// break, `\\`, `\'` and `\"` are the character. The lexer has checked the escapes.
pub(crate) fn unescape(quoted: &str) -> String {
    let body = &quoted[1..quoted.len() - 1];
    if !body.contains('\\') {
        return body.to_string();
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(c) => out.push(c),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The pattern of a regex literal's text (slashes included): `\/` becomes `/`, every other
/// escape is kept for the regex engine.
pub(crate) fn regex_pattern(text: &str) -> String {
    let body = &text[1..text.len() - 1];
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('/') => out.push('/'),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Why a duration literal has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// A unit that is not one of `ns u µ us µs ms s m h d w`, or a term without digits.
    Invalid,
    /// More nanoseconds than an `i64` holds.
    Overflow,
}

/// Nanoseconds of a duration literal (`1h30m`, `10µs`, `3u`).
pub fn parse_duration(s: &str) -> Result<i64, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::Invalid);
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        rest = &rest[digits..];
        let letters = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let scale: i64 = match &rest[..letters] {
            "ns" => 1,
            "u" | "µ" | "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "w" => 604_800_000_000_000,
            _ => return Err(DurationError::Invalid),
        };
        rest = &rest[letters..];
        total = n
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or(DurationError::Overflow)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("10µs"), Ok(10_000));
        assert_eq!(parse_duration("3u"), Ok(3_000));
        assert_eq!(parse_duration("1ns"), Ok(1));
        assert_eq!(parse_duration("2w"), Ok(1_209_600_000_000_000));
        assert_eq!(
            parse_duration("100000000000w"),
            Err(DurationError::Overflow)
        );
        assert_eq!(parse_duration("10mb"), Err(DurationError::Invalid));
        assert_eq!(parse_duration("1y"), Err(DurationError::Invalid));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r#""a\"b""#), "a\"b");
        assert_eq!(unescape(r"'a\nb\\'"), "a\nb\\");
        assert_eq!(regex_pattern(r"/a\/b\d/"), r"a/b\d");
    }
}
