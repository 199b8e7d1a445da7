//! The plain reference parser: one byte at a time, owned output, written for obviousness.
//!
//! It is the scalar twin of the fast path in [`super::LineParser`]: the property tests in
//! `lp/tests.rs` feed both the same bodies and require the same points and the same rejected
//! line numbers. It shares no scanning code with the fast path.

use super::unescape::{unescape_into, TokenKind};

/// A field value with owned strings.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedValue {
    F64(f64),
    I64(i64),
    U64(u64),
    Bool(bool),
    Str(String),
}

/// A fully decoded point: unescaped names, tags sorted by key, fields in written order.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedPoint {
    pub line_number: u32,
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, OwnedValue)>,
    pub timestamp: Option<i64>,
}

impl OwnedPoint {
    /// The fast parser's current line as an owned, unescaped point.
    pub fn from_parser(line: &super::ParsedLine<'_>, parser: &super::LineParser<'_>) -> OwnedPoint {
        use super::FieldValue;
        OwnedPoint {
            line_number: line.span.line_number,
            measurement: line
                .measurement
                .unescaped(TokenKind::Measurement)
                .into_owned(),
            tags: parser
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key.unescaped(TokenKind::Key).into_owned(),
                        t.value.unescaped(TokenKind::TagValue).into_owned(),
                    )
                })
                .collect(),
            fields: parser
                .fields()
                .iter()
                .map(|f| {
                    let v = match f.value {
                        FieldValue::F64(v) => OwnedValue::F64(v),
                        FieldValue::I64(v) => OwnedValue::I64(v),
                        FieldValue::U64(v) => OwnedValue::U64(v),
                        FieldValue::Bool(v) => OwnedValue::Bool(v),
                        FieldValue::Str(t) => {
                            OwnedValue::Str(t.unescaped(TokenKind::Str).into_owned())
                        }
                    };
                    (f.key.unescaped(TokenKind::Key).into_owned(), v)
                })
                .collect(),
            timestamp: line.timestamp,
        }
    }
}

/// Parses a whole body. Each entry is a point, or the 1-based line number of a rejected line.
pub fn parse(body: &str) -> Vec<Result<OwnedPoint, u32>> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut line_no = 0u32;
    while pos < b.len() {
        line_no += 1;
        let mut r = Reader { b, pos };
        while r.peek() == Some(b' ') {
            r.pos += 1;
        }
        if r.at_line_end() || r.peek() == Some(b'#') {
            // blank line or comment: skip to after the newline
            while let Some(c) = r.peek() {
                r.pos += 1;
                if c == b'\n' {
                    break;
                }
            }
            pos = r.pos;
            continue;
        }
        let start = pos;
        match point(&mut r, body, line_no) {
            Ok(p) => {
                line_no += b[start..r.pos].iter().filter(|&&c| c == b'\n').count() as u32;
                // r.pos is at the line end; step over "\r\n" or "\n".
                if r.peek() == Some(b'\r') {
                    r.pos += 1;
                }
                if r.peek() == Some(b'\n') {
                    r.pos += 1;
                }
                pos = r.pos;
                out.push(Ok(p));
            }
            Err(()) => {
                let err_at = r.pos.min(b.len());
                out.push(Err(line_no));
                line_no += b[start..err_at].iter().filter(|&&c| c == b'\n').count() as u32;
                let mut q = err_at;
                while q < b.len() && b[q] != b'\n' {
                    q += 1;
                }
                pos = q + 1;
            }
        }
    }
    out
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.pos + k).copied()
    }
    /// At `\n`, `\r\n`, or the end of the body.
    fn at_line_end(&self) -> bool {
        match self.peek() {
            None | Some(b'\n') => true,
            Some(b'\r') => self.peek_at(1).is_none_or(|c| c == b'\n'),
            _ => false,
        }
    }
}

fn is_ctrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

/// Reads a name or tag value; stops before an unescaped terminator. Fails on control bytes
/// and on a trailing lone backslash.
fn name(r: &mut Reader<'_>, body: &str, kind: TokenKind) -> Result<String, ()> {
    let start = r.pos;
    loop {
        if r.at_line_end() {
            break;
        }
        let c = r.peek().ok_or(())?;
        let ends = match kind {
            TokenKind::Measurement | TokenKind::TagValue => c == b',' || c == b' ',
            TokenKind::Key => c == b',' || c == b' ' || c == b'=',
            TokenKind::Str => unreachable!("strings are read by string_value"),
        };
        if ends {
            break;
        }
        if is_ctrl(c) {
            return Err(());
        }
        if c == b'\\' {
            match r.peek_at(1) {
                Some(n) if kind.escapes(n) => r.pos += 2,
                _ => r.pos += 1,
            }
        } else {
            r.pos += 1;
        }
    }
    let raw = &body[start..r.pos];
    let trailing = raw.bytes().rev().take_while(|&c| c == b'\\').count();
    if trailing % 2 == 1 || raw.is_empty() {
        return Err(());
    }
    let mut s = String::new();
    unescape_into(raw, kind, &mut s);
    Ok(s)
}

fn point(r: &mut Reader<'_>, body: &str, line_number: u32) -> Result<OwnedPoint, ()> {
    let measurement = name(r, body, TokenKind::Measurement)?;
    let mut tags = Vec::new();
    while r.peek() == Some(b',') {
        r.pos += 1;
        let k = name(r, body, TokenKind::Key)?;
        if r.peek() != Some(b'=') {
            return Err(());
        }
        r.pos += 1;
        let v = name(r, body, TokenKind::TagValue)?;
        tags.push((k, v));
    }
    if r.peek() != Some(b' ') {
        return Err(());
    }
    while r.peek() == Some(b' ') {
        r.pos += 1;
    }
    let mut fields: Vec<(String, OwnedValue)> = Vec::new();
    loop {
        if r.at_line_end() {
            return Err(());
        }
        let k = name(r, body, TokenKind::Key)?;
        if r.peek() != Some(b'=') {
            return Err(());
        }
        r.pos += 1;
        let v = if r.peek() == Some(b'"') {
            string_value(r, body)?
        } else {
            let s = r.pos;
            while !r.at_line_end() && r.peek() != Some(b',') && r.peek() != Some(b' ') {
                r.pos += 1;
            }
            scalar(&body[s..r.pos])?
        };
        fields.push((k, v));
        match r.peek() {
            Some(b',') => r.pos += 1,
            _ => break,
        }
    }
    // The field set ends at the line's end or at whitespace before the timestamp.
    if !r.at_line_end() && r.peek() != Some(b' ') {
        return Err(());
    }
    while r.peek() == Some(b' ') {
        r.pos += 1;
    }
    let mut timestamp = None;
    if !r.at_line_end() {
        let s = r.pos;
        while !r.at_line_end() && r.peek() != Some(b' ') {
            r.pos += 1;
        }
        timestamp = Some(integer(&body[s..r.pos])?);
        while r.peek() == Some(b' ') {
            r.pos += 1;
        }
        if !r.at_line_end() {
            return Err(());
        }
    }
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    if tags.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(());
    }
    for i in 0..fields.len() {
        if fields[..i].iter().any(|f| f.0 == fields[i].0) {
            return Err(());
        }
    }
    Ok(OwnedPoint {
        line_number,
        measurement,
        tags,
        fields,
        timestamp,
    })
}

fn string_value(r: &mut Reader<'_>, body: &str) -> Result<OwnedValue, ()> {
    let quote = r.pos;
    r.pos += 1;
    let s = r.pos;
    loop {
        match r.peek() {
            None => {
                // Unterminated: the line is taken to end at the first newline after the quote.
                r.pos = quote;
                return Err(());
            }
            Some(b'"') => break,
            Some(b'\\') => r.pos += 2,
            Some(_) => r.pos += 1,
        }
    }
    let raw = body.get(s..r.pos).ok_or(())?;
    r.pos += 1; // closing quote
    let mut out = String::new();
    unescape_into(raw, TokenKind::Str, &mut out);
    Ok(OwnedValue::Str(out))
}

fn scalar(v: &str) -> Result<OwnedValue, ()> {
    match v {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(OwnedValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(OwnedValue::Bool(false)),
        _ => {}
    }
    if let Some(d) = v.strip_suffix('i') {
        return integer(d).map(OwnedValue::I64);
    }
    if let Some(d) = v.strip_suffix('u') {
        if d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit()) {
            return Err(());
        }
        return d.parse().map(OwnedValue::U64).map_err(|_| ());
    }
    // Float grammar: [-] then digits, '.', digits, exponent, checked by pieces.
    let body = v.strip_prefix('-').unwrap_or(v);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if !digits(int)
        || !frac.is_none_or(digits)
        || (int.is_empty() && frac.is_none_or(str::is_empty))
    {
        return Err(());
    }
    if let Some(e) = exp {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !digits(e) {
            return Err(());
        }
    }
    let f: f64 = v.parse().map_err(|_| ())?;
    if f.is_infinite() {
        return Err(());
    }
    Ok(OwnedValue::F64(f))
}

fn integer(d: &str) -> Result<i64, ()> {
    let digits = d.strip_prefix('-').unwrap_or(d);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(());
    }
    d.parse().map_err(|_| ())
}
