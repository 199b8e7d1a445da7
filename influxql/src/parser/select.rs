//! `SELECT` and the clauses other statements borrow from it (`FROM` sources, `WHERE`,
//! `LIMIT`/`OFFSET`).

use super::Parser;
use crate::ast::{Expr, Field, Fill, IntoTarget, Measurement, MeasurementName, Select, Source};
use crate::error::ParseError;
use crate::token::{Keyword, Kind};

impl Parser<'_> {
    pub(crate) fn select(&mut self) -> Result<Select, ParseError> {
        self.expect_keyword(Keyword::SELECT)?;
        let mut s = Select {
            fields: self.fields()?,
            ..Select::default()
        };
        if self.eat_keyword(Keyword::INTO) {
            s.into = Some(self.target()?);
        }
        self.expect_keyword(Keyword::FROM)?;
        s.from = self.sources_of(true)?;
        s.condition = self.condition()?;
        if self.eat_keyword(Keyword::GROUP) {
            self.expect_keyword(Keyword::BY)?;
            s.group_by = self.dimensions()?;
        }
        s.fill = self.fill()?;
        if self.eat_keyword(Keyword::ORDER) {
            self.expect_keyword(Keyword::BY)?;
            s.order_written = true;
            s.order_desc = self.order_by()?;
        }
        s.limit = self.keyword_uint(Keyword::LIMIT)?;
        s.offset = self.keyword_uint(Keyword::OFFSET)?;
        s.slimit = self.keyword_uint(Keyword::SLIMIT)?;
        s.soffset = self.keyword_uint(Keyword::SOFFSET)?;
        s.timezone = self.timezone()?;
        Ok(s)
    }

    fn fields(&mut self) -> Result<Vec<Field>, ParseError> {
        let mut out = Vec::new();
        loop {
            let start = self.peek_regex_position();
            let expr = self.expr_or_regex()?;
            if let Some(op) = where_operator(&expr) {
                let (line, char) = crate::lexer::line_char(self.input(), start.start);
                return Err(ParseError::bare(
                    self.input(),
                    start.start,
                    format!(
                        "invalid operator {} in SELECT clause at line {line}, char {char}; \
                         operator is intended for WHERE clause",
                        op.as_str()
                    ),
                ));
            }
            let alias = if self.eat_keyword(Keyword::AS) {
                Some(self.ident()?)
            } else {
                None
            };
            out.push(Field { expr, alias });
            if !self.eat(Kind::Comma) {
                return Ok(out);
            }
        }
    }

    /// `INTO [db.][rp.]name` where name may be `:MEASUREMENT`.
    fn target(&mut self) -> Result<IntoTarget, ParseError> {
        let mut parts: Vec<Option<String>> = Vec::new();
        loop {
            if self.eat(Kind::Colon) {
                self.expect_keyword(Keyword::MEASUREMENT)?;
                parts.push(None);
                break;
            }
            if self.peek().kind == Kind::Dot && !parts.is_empty() {
                // `"db"..name`: the policy is left out.
                parts.push(Some(String::new()));
                self.bump();
                continue;
            }
            parts.push(Some(self.ident()?));
            if parts.len() == 3 || !self.eat(Kind::Dot) {
                break;
            }
        }
        let measurement = parts.pop().flatten();
        let (database, policy) = match parts.len() {
            0 => (None, None),
            1 => (None, parts.pop().flatten()),
            _ => {
                let policy = parts.pop().flatten().filter(|p| !p.is_empty());
                (parts.pop().flatten(), policy)
            }
        };
        Ok(IntoTarget {
            database,
            policy,
            measurement,
        })
    }

    /// A `FROM` list; subqueries only where `subqueries` (in `SELECT`).
    pub(crate) fn sources_of(&mut self, subqueries: bool) -> Result<Vec<Source>, ParseError> {
        let mut out = Vec::new();
        loop {
            let t = self.peek_regex_position();
            if t.kind == Kind::LParen && subqueries {
                self.bump();
                self.enter(t)?;
                let sub = self.select();
                self.leave();
                let sub = sub?;
                self.expect(Kind::RParen)?;
                out.push(Source::Subquery(Box::new(sub)));
            } else {
                out.push(Source::Measurement(self.measurement()?));
            }
            if !self.eat(Kind::Comma) {
                return Ok(out);
            }
        }
    }

    /// A `FROM` list without subqueries (`SHOW`, `DELETE`, `DROP SERIES`).
    pub(crate) fn sources(&mut self) -> Result<Vec<Source>, ParseError> {
        self.sources_of(false)
    }

    /// `name`, `/re/`, `rp.name`, `db.rp.name`, `db..name` (the last part may be a regex).
    pub(crate) fn measurement(&mut self) -> Result<Measurement, ParseError> {
        let mut parts: Vec<String> = Vec::new();
        loop {
            let t = self.peek_regex_position();
            match t.kind {
                Kind::Div => {
                    let re = self.regex_from(t)?;
                    return Ok(measurement_of(parts, MeasurementName::Regex(re)));
                }
                Kind::Dot if !parts.is_empty() && parts.len() < 2 => {
                    // `db..name`
                    parts.push(String::new());
                    self.bump();
                    continue;
                }
                Kind::Ident | Kind::QuotedIdent => {
                    let name = self.ident()?;
                    if self.eat(Kind::Dot) {
                        parts.push(name);
                        if parts.len() == 3 {
                            return Err(self.too_many_segments(parts));
                        }
                        continue;
                    }
                    return Ok(measurement_of(parts, MeasurementName::Name(name)));
                }
                _ => return Err(self.unexpected(t, &["identifier"])),
            }
        }
    }

    pub(crate) fn condition(&mut self) -> Result<Option<Expr>, ParseError> {
        if self.eat_keyword(Keyword::WHERE) {
            Ok(Some(self.expr()?))
        } else {
            Ok(None)
        }
    }

    pub(crate) fn dimensions(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut out = Vec::new();
        loop {
            out.push(self.expr_or_regex()?);
            if !self.eat(Kind::Comma) {
                return Ok(out);
            }
        }
    }

    /// `fill(null|none|previous|linear|<number>)`, with 1.x's messages (which carry no
    /// position).
    fn fill(&mut self) -> Result<Option<Fill>, ParseError> {
        let t = self.peek();
        if t.kind != Kind::Ident || !self.text(t).eq_ignore_ascii_case("fill") {
            return Ok(None);
        }
        self.bump();
        let bare = |p: &Self, at: usize, msg: &str| ParseError::bare(p.input(), at, msg);
        if !self.eat(Kind::LParen) {
            return Err(bare(self, t.start, "fill must be a function call"));
        }
        let arg = self.peek();
        if arg.kind == Kind::RParen {
            return Err(bare(
                self,
                arg.start,
                "fill requires an argument, e.g.: 0, null, none, previous, linear",
            ));
        }
        let expr = self.expr()?;
        // The option words are case-sensitive in 1.x; anything else must be a number.
        let fill = match &expr {
            Expr::Var { name, ty: None } => match name.as_str() {
                "null" => Fill::Null,
                "none" => Fill::None,
                "previous" => Fill::Previous,
                "linear" => Fill::Linear,
                _ => return Err(bare(self, arg.start, "expected number argument in fill()")),
            },
            Expr::Integer(v) => Fill::Integer(*v),
            Expr::Float(v) => Fill::Float(*v),
            _ => return Err(bare(self, arg.start, "expected number argument in fill()")),
        };
        if !self.eat(Kind::RParen) {
            return Err(bare(
                self,
                arg.start,
                "fill requires an argument, e.g.: 0, null, none, previous, linear",
            ));
        }
        Ok(Some(fill))
    }

    /// `ORDER BY time [ASC|DESC]` or `ORDER BY ASC|DESC`: true when descending.
    pub(crate) fn order_by(&mut self) -> Result<bool, ParseError> {
        let t = self.next();
        let only_time = |p: &Self, at: usize| {
            ParseError::bare(p.input(), at, "only ORDER BY time supported at this time")
        };
        let desc = match t.kind {
            Kind::Keyword(Keyword::ASC) => false,
            Kind::Keyword(Keyword::DESC) => true,
            Kind::Ident | Kind::QuotedIdent => {
                let name = if t.kind == Kind::Ident {
                    self.text(t).to_string()
                } else {
                    super::unescape(self.text(t))
                };
                if name != "time" {
                    return Err(only_time(self, t.start));
                }
                if self.eat_keyword(Keyword::DESC) {
                    true
                } else {
                    self.eat_keyword(Keyword::ASC);
                    false
                }
            }
            _ => return Err(self.unexpected(t, &["identifier", "ASC", "DESC"])),
        };
        let next = self.peek();
        if next.kind == Kind::Comma {
            return Err(only_time(self, next.start));
        }
        Ok(desc)
    }

    pub(crate) fn keyword_uint(&mut self, k: Keyword) -> Result<Option<u64>, ParseError> {
        if self.eat_keyword(k) {
            Ok(Some(self.uint()?))
        } else {
            Ok(None)
        }
    }

    /// `tz('Zone')`, with 1.x's messages (which carry no position).
    fn timezone(&mut self) -> Result<Option<String>, ParseError> {
        let t = self.peek();
        if t.kind != Kind::Ident || !self.text(t).eq_ignore_ascii_case("tz") {
            return Ok(None);
        }
        self.bump();
        let bare = |p: &Self, msg: &str| ParseError::bare(p.input(), t.start, msg);
        if !self.eat(Kind::LParen) {
            return Err(bare(self, "tz must be a function call"));
        }
        if self.peek().kind == Kind::RParen {
            return Err(bare(self, "tz requires exactly one argument"));
        }
        let zone = match self.expr()? {
            Expr::Str(z) => z,
            _ => return Err(bare(self, "expected string argument in tz()")),
        };
        if !self.eat(Kind::RParen) {
            return Err(bare(self, "tz requires exactly one argument"));
        }
        Ok(Some(zone))
    }
}

/// The first operator in a `SELECT` field that belongs in `WHERE` (a comparison, `AND`,
/// `OR`), anywhere inside it.
fn where_operator(e: &Expr) -> Option<crate::ast::BinaryOp> {
    let mut found = None;
    e.walk(&mut |x| {
        if let Expr::Binary { op, .. } = x {
            if found.is_none() && (op.is_comparison() || op.precedence() < 3) {
                found = Some(*op);
            }
        }
    });
    found
}

impl Parser<'_> {
    /// `too many segments in "a"."b"."c".d`, as 1.x words it (at the start of the input).
    fn too_many_segments(&mut self, parts: Vec<String>) -> ParseError {
        use crate::print::Ident;
        let mut text: String = parts
            .iter()
            .map(|p| format!("\"{}\".", p.replace('"', "\\\"")))
            .collect();
        let t = self.peek();
        if matches!(t.kind, Kind::Ident | Kind::QuotedIdent) {
            let last = if t.kind == Kind::Ident {
                self.text(t).to_string()
            } else {
                super::unescape(self.text(t))
            };
            text.push_str(&Ident(&last).to_string());
        }
        ParseError::new(self.input(), 0, format!("too many segments in {text}"))
    }
}

fn measurement_of(mut parts: Vec<String>, name: MeasurementName) -> Measurement {
    let empty_none = |s: String| if s.is_empty() { None } else { Some(s) };
    let (database, policy) = match parts.len() {
        0 => (None, None),
        1 => (None, parts.pop().and_then(empty_none)),
        _ => {
            let policy = parts.pop().and_then(empty_none);
            (parts.pop().and_then(empty_none), policy)
        }
    };
    Measurement {
        database,
        policy,
        name,
    }
}
