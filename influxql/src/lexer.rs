//! The lexer: turns the input into tokens on demand, as spans into the input.
//!
//! It never allocates: a token is a kind and a byte range, and a literal's value (unescaped
//! string, parsed number) is read off its text by the parser when it builds the AST.
//! Whitespace and comments (`-- ...` to the end of the line, `/* ... */`) are skipped.
//!
//! A `/` is division or the start of a regex depending on where it stands, which only the
//! parser knows; it asks with [`Lexer::regex_at`] when a regex may begin there.
//!
//! Invariants: spans are on `char` boundaries and within the input; the lexer makes progress
//! on every call (an unexpected character is one `Illegal` token); after `Eof` it keeps
//! answering `Eof`.

use crate::token::{lookup, Kind};

/// A token: what it is and where its text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text(self, input: &str) -> &str {
        &input[self.start..self.end]
    }
}

/// Why a token is `Illegal`, for the parser's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Illegal {
    UnexpectedChar,
    UnterminatedString,
    UnterminatedIdent,
    UnterminatedRegex,
    UnterminatedComment,
    /// A string or identifier with a backslash before a character that is not escapable.
    BadEscape,
    /// A `$` with no name after it.
    EmptyParam,
    /// A line break inside a string.
    NewlineInString,
}

#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    /// Why the last `Illegal` token was illegal.
    pub illegal: Illegal,
    /// Where its error points (1.x points at the bad character of a bad escape).
    pub illegal_at: usize,
}

/// Unquoted identifiers are ASCII, as in 1.x: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(crate) fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// 1.x's whitespace: space, tab, line feed and carriage return; anything else is illegal.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Self {
        Lexer {
            input,
            pos: 0,
            illegal: Illegal::UnexpectedChar,
            illegal_at: 0,
        }
    }

    pub fn input(&self) -> &'a str {
        self.input
    }

    fn peek_char(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn peek_char2(&self) -> Option<char> {
        let mut it = self.input[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek_char() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Skips whitespace and comments. An unterminated block comment ends the input as an
    /// `Illegal` token, reported by [`Lexer::next`].
    fn skip_trivia(&mut self) -> Result<(), usize> {
        loop {
            let rest = &self.input[self.pos..];
            if let Some(c) = rest.chars().next().filter(|&c| is_space(c)) {
                self.pos += c.len_utf8();
            } else if rest.starts_with("--") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(body) = rest.strip_prefix("/*") {
                match body.find("*/") {
                    Some(i) => self.pos += i + 4,
                    None => return Err(self.pos),
                }
            } else {
                return Ok(());
            }
        }
    }

    /// The next token.
    pub fn next_token(&mut self) -> Token {
        if let Err(start) = self.skip_trivia() {
            self.pos = self.input.len();
            self.illegal = Illegal::UnterminatedComment;
            return self.token(Kind::Illegal, start);
        }
        let start = self.pos;
        let Some(c) = self.bump() else {
            return self.token(Kind::Eof, start);
        };
        let kind = match c {
            '+' => Kind::Add,
            '-' => Kind::Sub,
            '*' => Kind::Mul,
            '/' => Kind::Div,
            '%' => Kind::Mod,
            '&' => Kind::BitAnd,
            '|' => Kind::BitOr,
            '^' => Kind::BitXor,
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            ',' => Kind::Comma,
            ';' => Kind::Semicolon,
            ':' => {
                if self.eat(':') {
                    Kind::DoubleColon
                } else {
                    Kind::Colon
                }
            }
            '=' => {
                if self.eat('~') {
                    Kind::EqRegex
                } else {
                    Kind::Eq
                }
            }
            '!' => {
                if self.eat('=') {
                    Kind::Neq
                } else if self.eat('~') {
                    Kind::NeqRegex
                } else {
                    self.illegal = Illegal::UnexpectedChar;
                    Kind::Illegal
                }
            }
            '<' => {
                if self.eat('=') {
                    Kind::Lte
                } else if self.eat('>') {
                    Kind::Neq
                } else {
                    Kind::Lt
                }
            }
            '>' => {
                if self.eat('=') {
                    Kind::Gte
                } else {
                    Kind::Gt
                }
            }
            '.' => {
                if self.peek_char().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos = start;
                    self.number()
                } else {
                    Kind::Dot
                }
            }
            '"' => self.quoted('"', Illegal::UnterminatedIdent, Kind::QuotedIdent),
            '\'' => self.quoted('\'', Illegal::UnterminatedString, Kind::Str),
            '$' => self.bound_param(),
            c if c.is_ascii_digit() => {
                self.pos = start;
                self.number()
            }
            c if is_ident_start(c) => {
                while self.peek_char().is_some_and(is_ident_char) {
                    self.bump();
                }
                lookup(&self.input[start..self.pos]).unwrap_or(Kind::Ident)
            }
            _ => {
                self.illegal = Illegal::UnexpectedChar;
                Kind::Illegal
            }
        };
        self.token(kind, start)
    }

    fn token(&self, kind: Kind, start: usize) -> Token {
        Token {
            kind,
            start,
            end: self.pos,
        }
    }

    /// A quoted string or identifier; the opening quote is consumed. Escapes are checked
    /// here (so the parser's unescaping cannot fail) but not applied.
    fn quoted(&mut self, quote: char, unterminated: Illegal, kind: Kind) -> Kind {
        loop {
            match self.bump() {
                None => {
                    self.illegal = unterminated;
                    return Kind::Illegal;
                }
                Some('\n') if kind == Kind::Str => {
                    self.illegal = Illegal::NewlineInString;
                    return Kind::Illegal;
                }
                Some('\\') => match self.bump() {
                    Some('n' | '\\' | '\'' | '"') => {}
                    None => {
                        self.illegal = unterminated;
                        return Kind::Illegal;
                    }
                    Some(c) => {
                        self.illegal = Illegal::BadEscape;
                        self.illegal_at = self.pos - c.len_utf8();
                        return Kind::Illegal;
                    }
                },
                Some(c) if c == quote => return kind,
                Some(_) => {}
            }
        }
    }

    fn bound_param(&mut self) -> Kind {
        if self.eat('"') {
            let kind = self.quoted('"', Illegal::UnterminatedIdent, Kind::BoundParam);
            return kind;
        }
        let name_start = self.pos;
        while self.peek_char().is_some_and(is_ident_char) {
            self.bump();
        }
        if self.pos == name_start {
            self.illegal = Illegal::EmptyParam;
            return Kind::Illegal;
        }
        Kind::BoundParam
    }

    /// A number, integer or duration starting at `self.pos`. As in 1.x, digits followed by
    /// a letter (or `µ`) take every letter, digit and `µ` after them as one duration token
    /// (`1h30m`, but also `10mb`); the parser checks its units.
    fn number(&mut self) -> Kind {
        let digits = |lx: &mut Self| {
            let s = lx.pos;
            while lx.peek_char().is_some_and(|c| c.is_ascii_digit()) {
                lx.pos += 1;
            }
            lx.pos > s
        };
        let whole = digits(self);
        if self.peek_char() == Some('.') {
            // `1.5`, `.5` and `100.` are numbers; `1..` is not (`db..m` never starts with a digit).
            let frac = self.peek_char2().is_some_and(|c| c.is_ascii_digit());
            if frac || (whole && self.peek_char2() != Some('.')) {
                self.pos += 1;
                digits(self);
                return Kind::Number;
            }
        }
        let unit_char = |c: char| c.is_ascii_alphabetic() || c == 'µ';
        if self.peek_char().is_some_and(unit_char) {
            while self
                .peek_char()
                .is_some_and(|c| unit_char(c) || c.is_ascii_digit())
            {
                self.bump();
            }
            return Kind::Duration;
        }
        Kind::Integer
    }

    /// Re-reads the input from `start` (where a `/` stands) as a regex literal `/.../`, in
    /// which `\/` is an escaped slash. Returns an `Illegal` token if it does not end.
    pub fn regex_at(&mut self, start: usize) -> Token {
        debug_assert_eq!(self.input.as_bytes().get(start), Some(&b'/'));
        self.pos = start + 1;
        loop {
            match self.bump() {
                None | Some('\n') => {
                    self.illegal = Illegal::UnterminatedRegex;
                    return self.token(Kind::Illegal, start);
                }
                // An escape is a pair: `\/` is a slash in the pattern, and `\\` must
                // not let the slash after it escape.
                Some('\\') => {
                    if self.peek_char().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                Some('/') => return self.token(Kind::Regex, start),
                Some(_) => {}
            }
        }
    }

    /// Moves the lexer to `pos` (a token boundary it returned before).
    pub fn reset(&mut self, pos: usize) {
        self.pos = pos;
    }
}

/// Line and character (both from 1, characters counted as `char`s) of a byte offset.
pub fn line_char(input: &str, offset: usize) -> (usize, usize) {
    let before = &input[..offset.min(input.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Keyword;

    fn kinds(s: &str) -> Vec<(Kind, &str)> {
        let mut lx = Lexer::new(s);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token();
            if t.kind == Kind::Eof {
                return out;
            }
            out.push((t.kind, t.text(s)));
        }
    }

    #[test]
    fn tokens_of_a_select() {
        assert_eq!(
            kinds("SELECT mean(\"x y\")::field FROM cpu WHERE time >= now() - 1h30m; "),
            vec![
                (Kind::Keyword(Keyword::SELECT), "SELECT"),
                (Kind::Ident, "mean"),
                (Kind::LParen, "("),
                (Kind::QuotedIdent, "\"x y\""),
                (Kind::RParen, ")"),
                (Kind::DoubleColon, "::"),
                (Kind::Keyword(Keyword::FIELD), "field"),
                (Kind::Keyword(Keyword::FROM), "FROM"),
                (Kind::Ident, "cpu"),
                (Kind::Keyword(Keyword::WHERE), "WHERE"),
                (Kind::Ident, "time"),
                (Kind::Gte, ">="),
                (Kind::Ident, "now"),
                (Kind::LParen, "("),
                (Kind::RParen, ")"),
                (Kind::Sub, "-"),
                (Kind::Duration, "1h30m"),
                (Kind::Semicolon, ";"),
            ]
        );
    }

    #[test]
    fn numbers_durations_and_params() {
        assert_eq!(
            kinds("1 1.5 .5 10ms 5µs 3u 2w $x $\"a b\" 10mb 100."),
            vec![
                (Kind::Integer, "1"),
                (Kind::Number, "1.5"),
                (Kind::Number, ".5"),
                (Kind::Duration, "10ms"),
                (Kind::Duration, "5µs"),
                (Kind::Duration, "3u"),
                (Kind::Duration, "2w"),
                (Kind::BoundParam, "$x"),
                (Kind::BoundParam, "$\"a b\""),
                (Kind::Duration, "10mb"),
                (Kind::Number, "100."),
            ]
        );
    }

    #[test]
    fn comments_and_operators() {
        assert_eq!(
            kinds("a -- note\n/* block */ =~ !~ != <> <= >= :: : . %"),
            vec![
                (Kind::Ident, "a"),
                (Kind::EqRegex, "=~"),
                (Kind::NeqRegex, "!~"),
                (Kind::Neq, "!="),
                (Kind::Neq, "<>"),
                (Kind::Lte, "<="),
                (Kind::Gte, ">="),
                (Kind::DoubleColon, "::"),
                (Kind::Colon, ":"),
                (Kind::Dot, "."),
                (Kind::Mod, "%"),
            ]
        );
    }

    #[test]
    fn strings_and_their_errors() {
        assert_eq!(kinds(r"'it\'s'"), vec![(Kind::Str, r"'it\'s'")]);
        let mut lx = Lexer::new("'open");
        assert_eq!(lx.next_token().kind, Kind::Illegal);
        assert_eq!(lx.illegal, Illegal::UnterminatedString);
        let mut lx = Lexer::new(r"'bad \q'");
        assert_eq!(lx.next_token().kind, Kind::Illegal);
        assert_eq!(lx.illegal, Illegal::BadEscape);
        let mut lx = Lexer::new("/* open");
        assert_eq!(lx.next_token().kind, Kind::Illegal);
        assert_eq!(lx.illegal, Illegal::UnterminatedComment);
        assert_eq!(lx.next_token().kind, Kind::Eof);
    }

    #[test]
    fn regex_on_request() {
        let s = r"/^a\/b$/ x";
        let mut lx = Lexer::new(s);
        let div = lx.next_token();
        assert_eq!(div.kind, Kind::Div);
        let re = lx.regex_at(div.start);
        assert_eq!((re.kind, re.text(s)), (Kind::Regex, r"/^a\/b$/"));
        assert_eq!(lx.next_token().kind, Kind::Ident);
        let mut lx = Lexer::new("/open");
        assert_eq!(lx.regex_at(0).kind, Kind::Illegal);
    }

    #[test]
    fn positions() {
        assert_eq!(line_char("ab\ncd", 4), (2, 2));
        assert_eq!(line_char("µx", 2), (1, 2));
        assert_eq!(line_char("", 0), (1, 1));
    }
}
