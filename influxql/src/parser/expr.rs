//! Expressions: precedence climbing over binary operators (all left-associative), and the
//! unary forms — literals, references with casts, calls, `*`, regexes, parentheses, minus.

use super::{regex_pattern, unescape, Parser};
use crate::ast::{BinaryOp, Expr, VarType};
use crate::error::ParseError;
use crate::lexer::Token;
use crate::token::{Keyword, Kind};

fn binary_op(kind: Kind) -> Option<BinaryOp> {
    Some(match kind {
        Kind::Keyword(Keyword::OR) => BinaryOp::Or,
        Kind::Keyword(Keyword::AND) => BinaryOp::And,
        Kind::Eq => BinaryOp::Eq,
        Kind::Neq => BinaryOp::NotEq,
        Kind::EqRegex => BinaryOp::EqRegex,
        Kind::NeqRegex => BinaryOp::NotEqRegex,
        Kind::Lt => BinaryOp::Lt,
        Kind::Lte => BinaryOp::LtEq,
        Kind::Gt => BinaryOp::Gt,
        Kind::Gte => BinaryOp::GtEq,
        Kind::Add => BinaryOp::Add,
        Kind::Sub => BinaryOp::Sub,
        Kind::BitOr => BinaryOp::BitOr,
        Kind::BitXor => BinaryOp::BitXor,
        Kind::Mul => BinaryOp::Mul,
        Kind::Div => BinaryOp::Div,
        Kind::Mod => BinaryOp::Mod,
        Kind::BitAnd => BinaryOp::BitAnd,
        _ => return None,
    })
}

const UNARY_EXPECTED: &[&str] = &["identifier", "string", "number", "bool"];
const SIGNED_EXPECTED: &[&str] = &["identifier", "number", "duration", "("];

impl Parser<'_> {
    pub(crate) fn expr(&mut self) -> Result<Expr, ParseError> {
        self.expr_above(0)
    }

    /// An item where a regex may stand for the whole item: a `SELECT` field, a `GROUP BY`
    /// dimension, a call argument.
    pub(crate) fn expr_or_regex(&mut self) -> Result<Expr, ParseError> {
        let t = self.peek_regex_position();
        if t.kind == Kind::Div {
            return Ok(Expr::Regex(self.regex_from(t)?));
        }
        self.expr()
    }

    /// An expression whose operators all bind tighter than `min` (precedence climbing).
    fn expr_above(&mut self, min: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let Some(op) = binary_op(self.peek().kind) else {
                return Ok(lhs);
            };
            if op.precedence() <= min {
                return Ok(lhs);
            }
            self.bump();
            let rhs = if matches!(op, BinaryOp::EqRegex | BinaryOp::NotEqRegex) {
                self.regex_operand()?
            } else {
                self.expr_above(op.precedence())?
            };
            lhs = Expr::binary(op, lhs, rhs);
        }
    }

    /// The right side of `=~`/`!~`: a regex or a bound parameter.
    fn regex_operand(&mut self) -> Result<Expr, ParseError> {
        let t = self.peek_regex_position();
        match t.kind {
            Kind::Div => Ok(Expr::Regex(self.regex_from(t)?)),
            Kind::BoundParam => {
                self.bump();
                Ok(Expr::Param(param_name(self.text(t))))
            }
            _ => Err(self.unexpected(t, &["regex"])),
        }
    }

    /// Re-reads the peeked `/` token `t` as a regex literal and returns its pattern.
    pub(crate) fn regex_from(&mut self, t: Token) -> Result<String, ParseError> {
        self.peeked = None;
        let re = self.lx.regex_at(t.start);
        if re.kind != Kind::Regex {
            return Err(self.unexpected(re, &["regex"]));
        }
        self.prev = Kind::Regex;
        self.probed_regex = false;
        let pattern = regex_pattern(self.text(re));
        // 1.x compiles the pattern while parsing and reports it one character before the
        // opening slash.
        crate::regex::check(&pattern)
            .map_err(|msg| ParseError::new(self.input(), t.start.saturating_sub(1), msg))?;
        Ok(pattern)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let t = self.next();
        let e = match t.kind {
            Kind::LParen => {
                self.enter(t)?;
                let inner = self.expr()?;
                self.leave();
                self.expect(Kind::RParen)?;
                Expr::Paren(Box::new(inner))
            }
            Kind::Ident | Kind::QuotedIdent => {
                if t.kind == Kind::Ident && self.peek().kind == Kind::LParen {
                    let name = self.text(t).to_ascii_lowercase();
                    return self.call(name, t);
                }
                let name = self.dotted_name(t);
                let ty = self.cast()?;
                Expr::Var { name, ty }
            }
            Kind::Keyword(Keyword::DISTINCT) => {
                let next = self.next();
                match next.kind {
                    Kind::LParen => {
                        self.peeked = Some(next);
                        return self.call("distinct".to_string(), t);
                    }
                    Kind::Ident => Expr::Distinct(self.text(next).to_string()),
                    Kind::QuotedIdent => Expr::Distinct(unescape(self.text(next))),
                    _ => return Err(self.unexpected(next, &["(", "identifier"])),
                }
            }
            Kind::Mul => {
                let ty = self.cast()?;
                match ty {
                    None | Some(VarType::Field) | Some(VarType::Tag) => Expr::Wildcard(ty),
                    Some(_) => {
                        return Err(ParseError::found(
                            self.input(),
                            t.end,
                            "::",
                            &["field", "tag"],
                        ))
                    }
                }
            }
            Kind::Str => Expr::Str(unescape(self.text(t))),
            Kind::Integer => integer(self.text(t)).ok_or_else(|| self.bad_integer(t))?,
            Kind::Number => Expr::Float(self.text(t).parse().map_err(|_| self.bad_number(t))?),
            Kind::Duration => Expr::Duration(self.duration_value(t)?),
            Kind::True => Expr::Bool(true),
            Kind::False => Expr::Bool(false),
            Kind::BoundParam => Expr::Param(param_name(self.text(t))),
            Kind::Sub | Kind::Add => return self.signed(t),
            _ => return Err(self.unexpected(t, UNARY_EXPECTED)),
        };
        Ok(e)
    }

    /// A sign before a literal is part of it (`-5`); before anything else it multiplies
    /// (`-x` is `-1 * x`, `+x` is `1 * x`), as in 1.x.
    fn signed(&mut self, sign: Token) -> Result<Expr, ParseError> {
        let neg = sign.kind == Kind::Sub;
        let t = self.peek();
        match t.kind {
            Kind::Integer => {
                self.bump();
                let text = self.text(t);
                match text.parse::<i64>() {
                    Ok(v) => Ok(Expr::Integer(if neg { -v } else { v })),
                    // -9223372036854775808 is the one integer whose magnitude is not an i64.
                    Err(_) if neg && text.parse::<u64>() == Ok(1 << 63) => {
                        Ok(Expr::Integer(i64::MIN))
                    }
                    Err(_) if !neg => integer(text).ok_or_else(|| self.bad_integer(t)),
                    Err(_) => Err(ParseError::bare(
                        self.input(),
                        t.start,
                        format!("constant -{text} underflows int64"),
                    )),
                }
            }
            Kind::Number => {
                self.bump();
                let v: f64 = self.text(t).parse().map_err(|_| self.bad_number(t))?;
                Ok(Expr::Float(if neg { -v } else { v }))
            }
            Kind::Duration => {
                self.bump();
                let v = self.duration_value(t)?;
                Ok(Expr::Duration(if neg { -v } else { v }))
            }
            Kind::Ident | Kind::QuotedIdent | Kind::LParen => {
                self.enter(sign)?;
                let operand = self.unary();
                self.leave();
                let factor = Expr::Integer(if neg { -1 } else { 1 });
                Ok(Expr::binary(BinaryOp::Mul, factor, operand?))
            }
            _ => Err(self.unexpected(t, SIGNED_EXPECTED)),
        }
    }

    /// A reference's name: segments joined by `.` when written without spaces (`a.b` is
    /// the field named `a.b`, as 1.x reads it).
    fn dotted_name(&mut self, first: Token) -> String {
        let mut name = if first.kind == Kind::Ident {
            self.text(first).to_string()
        } else {
            unescape(self.text(first))
        };
        let mut end = first.end;
        loop {
            let dot = self.peek();
            if dot.kind != Kind::Dot || dot.start != end {
                return name;
            }
            let save = self.lx.clone();
            self.peeked = None;
            let seg = self.lx.next_token();
            if !matches!(seg.kind, Kind::Ident | Kind::QuotedIdent) || seg.start != dot.end {
                // Not a segment: leave the `.` for the caller to refuse.
                self.lx = save;
                self.peeked = Some(dot);
                return name;
            }
            name.push('.');
            if seg.kind == Kind::Ident {
                name.push_str(self.text(seg));
            } else {
                name.push_str(&unescape(self.text(seg)));
            }
            self.prev = seg.kind;
            end = seg.end;
        }
    }

    fn bad_integer(&self, t: Token) -> ParseError {
        ParseError::new(
            self.input(),
            t.start,
            format!("unable to parse integer {}", self.text(t)),
        )
    }

    fn bad_number(&self, t: Token) -> ParseError {
        ParseError::new(
            self.input(),
            t.start,
            format!("unable to parse number {}", self.text(t)),
        )
    }

    /// An optional `::type` after a reference.
    fn cast(&mut self) -> Result<Option<VarType>, ParseError> {
        if !self.eat(Kind::DoubleColon) {
            return Ok(None);
        }
        let t = self.next();
        let ty = match t.kind {
            Kind::Ident | Kind::Keyword(Keyword::FIELD | Keyword::TAG) => {
                VarType::from_name(self.text(t))
            }
            _ => None,
        };
        ty.map(Some).ok_or_else(|| {
            self.unexpected(
                t,
                &[
                    "float", "integer", "unsigned", "string", "boolean", "field", "tag",
                ],
            )
        })
    }

    /// `name(args)`; the `(` is next.
    fn call(&mut self, name: String, at: Token) -> Result<Expr, ParseError> {
        self.bump();
        self.enter(at)?;
        let mut args = Vec::new();
        if self.peek_regex_position().kind == Kind::RParen {
            self.bump();
        } else {
            loop {
                args.push(self.expr_or_regex()?);
                let t = self.next();
                match t.kind {
                    Kind::Comma => continue,
                    Kind::RParen => break,
                    _ => {
                        self.leave();
                        return Err(self.unexpected(t, &[")"]));
                    }
                }
            }
        }
        self.leave();
        Ok(Expr::Call { name, args })
    }
}

/// An integer literal: an `i64`, or a `u64` when larger.
fn integer(text: &str) -> Option<Expr> {
    match text.parse::<i64>() {
        Ok(v) => Some(Expr::Integer(v)),
        Err(_) => text.parse::<u64>().ok().map(Expr::Unsigned),
    }
}

/// The name of `$name` or `$"name"`.
fn param_name(text: &str) -> String {
    let name = &text[1..];
    if name.starts_with('"') {
        unescape(name)
    } else {
        name.to_string()
    }
}
