//! Line-protocol parser: the body of a write request → points.
//!
//! Owns the grammar of `spec/line-protocol.ebnf`, with InfluxDB 3 Core's unescaping rules (see
//! `unescape`). Invariants it keeps:
//! - No allocation per line or per field: tags and fields of the current line live in two vectors
//!   owned by the [`LineParser`] and reused line after line; tokens borrow the body.
//! - A bad line is rejected on its own: parsing resumes at the next line, and every line (good or
//!   bad) reports its 1-based line number and its exact text, counted by the parser itself (blank
//!   lines, comments and newlines inside quoted strings included).
//! - The fast path ([`LineParser`]) and the plain reference ([`reference`](mod@reference)) accept the same
//!   language and produce the same points; a property test holds them to it.
//!
//! # How it is fast
//! Lines are found with `memchr` over `\n`. Then one of two paths parses the line:
//! - **Plain lines** (no quote, backslash or control byte: most metrics) take
//!   `parse_plain`: the line is classified 64 bytes at a time (SSE2, `scan`) into a bitmask
//!   of its spaces, commas and equals signs, and a small state machine cuts tokens at the set
//!   bits. It declines any line it does not fully accept, leaving it to the general path.
//! - **The general path** (`parse_point`) handles everything: tokens end at structural bytes
//!   found by one 16-byte SSE2 probe per token; quoted strings, which may be long and span
//!   lines, are scanned with `memchr2` over `"` and `\`, and the line end is found again after
//!   the string closes; errors are reported here.
//!
//! Escapes are rare: a token only records whether it holds a backslash, and unescaping is done
//! by whoever needs the value. Tags are sorted by an 8-byte key prefix, and a line whose tag
//! keys repeat the previous line's, in the same order, reuses its order.

pub mod reference;
mod scan;
mod unescape;

use scan::Stops;

pub use unescape::{unescape_into, TokenKind};

use std::cmp::Ordering;
use std::fmt;

/// A run of the body that forms one name or value, still escaped if `escaped` is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    /// The bytes exactly as in the body.
    pub raw: &'a str,
    /// Whether `raw` contains a backslash (so unescaping may change it).
    pub escaped: bool,
}

impl<'a> Token<'a> {
    /// A token whose scanner already knows whether it holds a backslash.
    #[inline(always)]
    fn with_escapes(raw: &'a str, escaped: bool) -> Self {
        debug_assert_eq!(escaped, raw.contains('\\'));
        Token { raw, escaped }
    }

    /// The unescaped text, borrowed when no escape is present.
    pub fn unescaped(&self, kind: TokenKind) -> std::borrow::Cow<'a, str> {
        if self.escaped {
            let mut s = String::with_capacity(self.raw.len());
            unescape_into(self.raw, kind, &mut s);
            std::borrow::Cow::Owned(s)
        } else {
            std::borrow::Cow::Borrowed(self.raw)
        }
    }

    /// The unescaped bytes, one at a time (no allocation).
    pub fn unescaped_bytes(&self, kind: TokenKind) -> impl Iterator<Item = u8> + 'a {
        unescape::UnescapedBytes::new(self.raw.as_bytes(), kind)
    }

    /// Compares the unescaped forms of two tokens of the same kind.
    #[inline]
    pub fn cmp_unescaped(&self, other: &Token<'_>, kind: TokenKind) -> Ordering {
        if !self.escaped && !other.escaped {
            // Keys usually differ in their first byte: decide that without a memcmp call.
            let (a, b) = (self.raw.as_bytes(), other.raw.as_bytes());
            match (a.first(), b.first()) {
                (Some(x), Some(y)) if x != y => x.cmp(y),
                _ => a.cmp(b),
            }
        } else {
            self.unescaped_bytes(kind).cmp(other.unescaped_bytes(kind))
        }
    }
}

/// A field's value as written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    F64(f64),
    I64(i64),
    U64(u64),
    Bool(bool),
    /// The string between the quotes, still escaped if the token says so.
    Str(Token<'a>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag<'a> {
    pub key: Token<'a>,
    pub value: Token<'a>,
    /// The key's first 8 bytes, big-endian and zero-padded: sorts like the key for keys that
    /// differ in those bytes, so most comparisons while sorting are one integer compare.
    sort_prefix: u64,
}

impl<'a> Tag<'a> {
    #[inline(always)]
    fn cmp_key(&self, other: &Tag<'_>) -> Ordering {
        if !self.key.escaped && !other.key.escaped && self.sort_prefix != other.sort_prefix {
            return self.sort_prefix.cmp(&other.sort_prefix);
        }
        self.key.cmp_unescaped(&other.key, TokenKind::Key)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field<'a> {
    pub key: Token<'a>,
    pub value: FieldValue<'a>,
}

/// Where a line sits in the body, whether it parsed or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineSpan {
    /// 1-based number of the line's first physical line in the body.
    pub line_number: u32,
    /// Byte offset of the line's first byte in the body.
    pub start: usize,
    /// Byte offset one past the line's last byte, excluding `\r\n` / `\n`.
    pub end: usize,
}

/// One parsed point; its tags and fields are [`LineParser::tags`] and [`LineParser::fields`].
/// Tags are sorted by unescaped key, fields are in the order written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    pub span: LineSpan,
    pub measurement: Token<'a>,
    /// The timestamp as written (not yet scaled by precision), if any.
    pub timestamp: Option<i64>,
}

/// Why a line was rejected. Messages are written for the person who sent the line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("invalid measurement name: {0}")]
    Measurement(&'static str),
    #[error("invalid tag set: {0}")]
    TagSet(&'static str),
    #[error("duplicate tag key '{0}'")]
    DuplicateTag(String),
    #[error("No fields were provided")]
    NoFields,
    #[error("invalid field key: {0}")]
    FieldKey(&'static str),
    #[error("invalid value for field '{key}': {reason}")]
    FieldValue { key: String, reason: &'static str },
    #[error("duplicate field key '{0}'")]
    DuplicateField(String),
    #[error("invalid timestamp: {0}")]
    Timestamp(&'static str),
    #[error("unterminated string value for field '{0}'")]
    UnterminatedString(String),
}

/// A rejected line: where it is and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedLine {
    pub span: LineSpan,
    pub error: LineError,
}

impl fmt::Display for RejectedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.span.line_number, self.error)
    }
}

/// Reads points out of one body, line by line. One parser per body; its two vectors are the
/// only allocations, made once and reused for every line.
#[derive(Debug)]
pub struct LineParser<'a> {
    body: &'a str,
    pos: usize,
    line_number: u32,
    tags: Vec<Tag<'a>>,
    fields: Vec<Field<'a>>,
    /// Lines from one writer repeat their tag keys in the same order: the previous line's
    /// keys (as written) and the order that sorts them, reused while the keys repeat.
    order_keys: Vec<(u64, &'a str)>,
    order: Vec<u32>,
    sorted: Vec<Tag<'a>>,
}

/// Result of one step of the parser.
pub type LineResult<'a> = Result<ParsedLine<'a>, RejectedLine>;

impl<'a> LineParser<'a> {
    pub fn new(body: &'a str) -> Self {
        LineParser {
            body,
            pos: 0,
            line_number: 0,
            tags: Vec::with_capacity(16),
            fields: Vec::with_capacity(16),
            order_keys: Vec::with_capacity(16),
            order: Vec::with_capacity(16),
            sorted: Vec::with_capacity(16),
        }
    }

    /// Starts over on another body of the same lifetime, keeping the vectors' capacity.
    pub fn reset(&mut self, body: &'a str) {
        self.body = body;
        self.pos = 0;
        self.line_number = 0;
    }

    /// Tags of the line last returned by [`Self::next_line`], sorted by unescaped key.
    pub fn tags(&self) -> &[Tag<'a>] {
        &self.tags
    }

    /// Fields of the line last returned by [`Self::next_line`], in written order.
    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }

    /// The next point or rejected line; `None` at the end of the body. Blank lines and
    /// comments are skipped.
    pub fn next_line(&mut self) -> Option<LineResult<'a>> {
        let bytes = self.body.as_bytes();
        loop {
            if self.pos >= bytes.len() {
                return None;
            }
            self.line_number += 1;
            let start = self.pos;
            // Leading spaces are allowed before a point or a comment.
            let mut p = start;
            while p < bytes.len() && bytes[p] == b' ' {
                p += 1;
            }
            let nl = memchr::memchr(b'\n', &bytes[p..]).map_or(bytes.len(), |i| p + i);
            let content_end = if nl > p && bytes[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            if p == content_end || bytes[p] == b'#' {
                self.pos = nl + 1;
                continue;
            }
            self.tags.clear();
            self.fields.clear();
            let first_line = self.line_number;
            let parsed = match self.parse_plain(start, p, nl) {
                Some(ok) => Ok(ok),
                None => {
                    self.tags.clear();
                    self.fields.clear();
                    self.parse_point(start, p, nl)
                }
            };
            return Some(match parsed {
                Ok((line, next)) => {
                    self.pos = next;
                    Ok(line)
                }
                Err((error, err_at)) => {
                    // The bad line ends at the first newline at or after the error.
                    let from = err_at.max(p).min(bytes.len());
                    let nl =
                        memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |i| from + i);
                    self.line_number += count_newlines(&bytes[start..from.min(nl)]);
                    self.pos = nl + 1;
                    let end = if nl > start && bytes[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    Err(RejectedLine {
                        span: LineSpan {
                            line_number: first_line,
                            start,
                            end,
                        },
                        error,
                    })
                }
            });
        }
    }

    /// The fast path, for plain lines: no quote, backslash or control byte. The line is
    /// classified 64 bytes at a time into a mask of its spaces, commas and equals signs, and
    /// tokens are cut at the set bits by a small state machine. Any line it does not fully
    /// accept (a special byte, an empty token, a bad value, a duplicate key, stray spaces)
    /// returns `None` with nothing to undo but the tag and field vectors, and the general path
    /// parses it from its first byte, so errors and edge cases behave exactly as there.
    #[inline]
    fn parse_plain(
        &mut self,
        start: usize,
        p: usize,
        nl: usize,
    ) -> Option<(ParsedLine<'a>, usize)> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum S {
            Measurement,
            TagKey,
            TagValue,
            FieldKey,
            FieldValue,
            /// After the field set: `tok` is where the timestamp starts.
            Timestamp,
            /// After the timestamp (`ts_start..ts_end`): only spaces may follow; `tok` is where
            /// the next must be.
            Trailing,
        }
        let body = self.body;
        let bytes = body.as_bytes();
        let cend = if nl > p && bytes[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let mut state = S::Measurement;
        let mut tok = p;
        let mut key_end = p;
        let mut m_end = p;
        let (mut ts_start, mut ts_end) = (cend, cend);
        let mut base = p;
        while base < cend {
            let masks = scan::classify64(bytes, base, cend);
            if masks.special != 0 {
                return None;
            }
            let mut m = masks.structural;
            while m != 0 {
                let pos = base + m.trailing_zeros() as usize;
                m &= m - 1;
                match (state, bytes[pos]) {
                    (S::Measurement, b',') if pos > p => {
                        m_end = pos;
                        state = S::TagKey;
                        tok = pos + 1;
                    }
                    (S::Measurement, b' ') if pos > p => {
                        m_end = pos;
                        state = S::FieldKey;
                        tok = pos + 1;
                    }
                    (S::Measurement | S::TagValue, b'=') => {}
                    (S::TagKey, b'=') if pos > tok => {
                        key_end = pos;
                        state = S::TagValue;
                    }
                    (S::TagValue, c @ (b',' | b' ')) if pos > key_end + 1 => {
                        self.tags.push(Tag {
                            key: Token::with_escapes(cut(body, tok, key_end), false),
                            value: Token::with_escapes(cut(body, key_end + 1, pos), false),
                            sort_prefix: key_prefix(bytes, tok, key_end),
                        });
                        tok = pos + 1;
                        state = if c == b',' { S::TagKey } else { S::FieldKey };
                    }
                    (S::FieldKey, b'=') if pos > tok => {
                        key_end = pos;
                        state = S::FieldValue;
                    }
                    (S::FieldValue, c @ (b',' | b' ')) => {
                        let value = parse_scalar(&bytes[key_end + 1..pos]).ok()?;
                        self.fields.push(Field {
                            key: Token::with_escapes(cut(body, tok, key_end), false),
                            value,
                        });
                        tok = pos + 1;
                        state = if c == b',' { S::FieldKey } else { S::Timestamp };
                    }
                    (S::Timestamp, b' ') if pos > tok => {
                        (ts_start, ts_end) = (tok, pos);
                        tok = pos + 1;
                        state = S::Trailing;
                    }
                    (S::Trailing, b' ') if pos == tok => tok = pos + 1,
                    _ => return None,
                }
            }
            base += 64;
        }
        // The line's end closes the last token.
        let timestamp = match state {
            S::FieldValue => {
                let value = parse_scalar(&bytes[key_end + 1..cend]).ok()?;
                self.fields.push(Field {
                    key: Token::with_escapes(cut(body, tok, key_end), false),
                    value,
                });
                None
            }
            S::Timestamp if tok < cend => Some(parse_timestamp(&bytes[tok..cend]).ok()?),
            S::Trailing if tok == cend => Some(parse_timestamp(&bytes[ts_start..ts_end]).ok()?),
            _ => return None,
        };
        let known_distinct = self.sort_tags();
        if check_duplicates(&self.tags, &self.fields, known_distinct).is_err() {
            // The remembered key order must only vouch for lines that passed this check.
            self.order_keys.clear();
            return None;
        }
        let line = ParsedLine {
            span: LineSpan {
                line_number: self.line_number,
                start,
                end: cend,
            },
            measurement: Token::with_escapes(cut(body, p, m_end), false),
            timestamp,
        };
        Some((line, nl + 1))
    }

    /// Parses the point starting at `p` (after leading spaces). `nl` is the first newline at or
    /// after `p`, or the body's end. Returns the line and where the next line starts, or the
    /// error and the byte offset where it was found.
    #[inline]
    fn parse_point(
        &mut self,
        start: usize,
        p: usize,
        mut nl: usize,
    ) -> Result<(ParsedLine<'a>, usize), (LineError, usize)> {
        let body = self.body;
        let bytes = body.as_bytes();
        let first_line = self.line_number;
        let mut multiline = false;

        // Measurement: up to an unescaped ',' or ' '.
        let (m_end, stop, m_esc) = scan_token(bytes, p, nl, TokenKind::Measurement);
        check_token_end(bytes, p, m_end, stop).map_err(|e| (LineError::Measurement(e), m_end))?;
        if m_end == p {
            return Err((LineError::Measurement("empty measurement name"), p));
        }
        let measurement = Token::with_escapes(cut(body, p, m_end), m_esc);
        let mut q = m_end;

        // Tag set.
        if stop == Stop::Comma {
            loop {
                q += 1; // past ','
                let (k_end, kstop, k_esc) = scan_token(bytes, q, nl, TokenKind::Key);
                if kstop != Stop::Equals {
                    return Err((LineError::TagSet(tag_key_problem(kstop, k_end == q)), k_end));
                }
                check_token_end(bytes, q, k_end, kstop)
                    .map_err(|e| (LineError::TagSet(e), k_end))?;
                if k_end == q {
                    return Err((LineError::TagSet("empty tag key"), q));
                }
                let key = Token::with_escapes(cut(body, q, k_end), k_esc);
                let v_start = k_end + 1;
                let (v_end, vstop, v_esc) = scan_token(bytes, v_start, nl, TokenKind::TagValue);
                if v_end == v_start {
                    return Err((LineError::TagSet("missing tag value"), v_start));
                }
                match vstop {
                    Stop::Comma | Stop::Space => {}
                    Stop::Ctrl | Stop::Equals => {
                        return Err((LineError::TagSet("invalid character in tag value"), v_end))
                    }
                    Stop::End => return Err((LineError::NoFields, v_end)),
                }
                check_token_end(bytes, v_start, v_end, vstop)
                    .map_err(|e| (LineError::TagSet(e), v_end))?;
                let value = Token::with_escapes(cut(body, v_start, v_end), v_esc);
                self.tags.push(Tag {
                    key,
                    value,
                    sort_prefix: key_prefix(bytes, q, k_end),
                });
                q = v_end;
                if vstop == Stop::Space {
                    break;
                }
            }
        } else if stop != Stop::Space {
            return Err(match stop {
                Stop::End => (LineError::NoFields, m_end),
                _ => (
                    LineError::Measurement("invalid character in measurement name"),
                    m_end,
                ),
            });
        }

        // One or more spaces, then the field set.
        while q < nl && bytes[q] == b' ' {
            q += 1;
        }
        let content_end = |nl: usize| {
            if nl > 0 && nl <= bytes.len() && bytes[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            }
        };
        if q >= content_end(nl) {
            return Err((LineError::NoFields, q));
        }
        loop {
            let (k_end, kstop, k_esc) = scan_token(bytes, q, nl, TokenKind::Key);
            if kstop != Stop::Equals {
                let reason = match kstop {
                    Stop::End if k_end == q => return Err((LineError::NoFields, q)),
                    Stop::Ctrl => "invalid character in field key",
                    _ => "expected '=' after field key",
                };
                return Err((LineError::FieldKey(reason), k_end));
            }
            check_token_end(bytes, q, k_end, kstop).map_err(|e| (LineError::FieldKey(e), k_end))?;
            if k_end == q {
                return Err((LineError::FieldKey("empty field key"), q));
            }
            let key = Token::with_escapes(cut(body, q, k_end), k_esc);
            let v_start = k_end + 1;
            let (value, v_end) = if bytes.get(v_start) == Some(&b'"') {
                let (close, s_esc) = find_string_end(bytes, v_start + 1).ok_or_else(|| {
                    (
                        LineError::UnterminatedString(key.unescaped(TokenKind::Key).into_owned()),
                        v_start,
                    )
                })?;
                if close >= nl {
                    // The string spans newlines: the line ends at the first newline after it.
                    nl = memchr::memchr(b'\n', &bytes[close..]).map_or(bytes.len(), |i| close + i);
                    multiline = true;
                }
                (
                    FieldValue::Str(Token::with_escapes(cut(body, v_start + 1, close), s_esc)),
                    close + 1,
                )
            } else {
                let e = scan::find(bytes, v_start, nl, Stops::FieldValue);
                let e_trim = if e == nl { content_end(nl) } else { e };
                let v = parse_scalar(&bytes[v_start..e_trim]).map_err(|reason| {
                    (
                        LineError::FieldValue {
                            key: key.unescaped(TokenKind::Key).into_owned(),
                            reason,
                        },
                        v_start,
                    )
                })?;
                (v, e_trim)
            };
            self.fields.push(Field { key, value });
            q = v_end;
            let cend = content_end(nl);
            if q >= cend {
                q = cend;
                break;
            }
            match bytes[q] {
                b',' => q += 1,
                b' ' => break,
                _ => {
                    return Err((
                        LineError::FieldValue {
                            key: key.unescaped(TokenKind::Key).into_owned(),
                            reason: "unexpected character after value",
                        },
                        q,
                    ))
                }
            }
        }

        // Optional timestamp, then only spaces.
        let cend = content_end(nl);
        while q < cend && bytes[q] == b' ' {
            q += 1;
        }
        let timestamp = if q < cend {
            let mut e = q;
            while e < cend && bytes[e] != b' ' {
                e += 1;
            }
            let ts = parse_timestamp(&bytes[q..e]).map_err(|r| (LineError::Timestamp(r), q))?;
            let mut t = e;
            while t < cend && bytes[t] == b' ' {
                t += 1;
            }
            if t != cend {
                return Err((
                    LineError::Timestamp("unexpected text after the timestamp"),
                    t,
                ));
            }
            Some(ts)
        } else {
            None
        };

        let known_distinct = self.sort_tags();
        if let Err(e) = check_duplicates(&self.tags, &self.fields, known_distinct) {
            self.order_keys.clear();
            return Err((e, p));
        }
        if multiline {
            self.line_number = first_line + count_newlines(&bytes[start..cend]);
        }
        Ok((
            ParsedLine {
                span: LineSpan {
                    line_number: first_line,
                    start,
                    end: cend,
                },
                measurement,
                timestamp,
            },
            nl + 1,
        ))
    }
}

impl<'a> LineParser<'a> {
    /// Sorts the current line's tags by unescaped key. Insertion sort over indices by the
    /// keys' 8-byte prefixes (lines hold few tags); when the keys repeat the previous line's,
    /// in the same order, the previous order is reused without comparing.
    /// Returns whether the keys repeat the previous sorted line's (which had no duplicate).
    #[inline]
    fn sort_tags(&mut self) -> bool {
        let n = self.tags.len();
        if n < 2 {
            return false;
        }
        // Equal length and prefix decide keys of up to 8 bytes without a memcmp call.
        let same = n == self.order_keys.len()
            && self
                .tags
                .iter()
                .zip(&self.order_keys)
                .all(|(t, (prefix, k))| {
                    t.sort_prefix == *prefix
                        && t.key.raw.len() == k.len()
                        && (k.len() <= 8
                            || crate::bytes::short_eq(
                                &t.key.raw.as_bytes()[8..],
                                &k.as_bytes()[8..],
                            ))
                });
        if !same {
            self.order.clear();
            self.order.extend(0..n as u32);
            for i in 1..n {
                let mut j = i;
                while j > 0
                    && self.tags[self.order[j - 1] as usize]
                        .cmp_key(&self.tags[self.order[j] as usize])
                        == Ordering::Greater
                {
                    self.order.swap(j - 1, j);
                    j -= 1;
                }
            }
            self.order_keys.clear();
            self.order_keys
                .extend(self.tags.iter().map(|t| (t.sort_prefix, t.key.raw)));
        }
        if !self.order.iter().enumerate().all(|(i, &o)| i as u32 == o) {
            self.sorted.clear();
            self.sorted
                .extend(self.order.iter().map(|&i| self.tags[i as usize]));
            std::mem::swap(&mut self.tags, &mut self.sorted);
        }
        same
    }
}

/// `body[start..end]` without `str` indexing's char-boundary checks (two per token, ~6% of
/// parse time on TSBS lines).
///
/// Every cut the parser makes starts just after, or ends at, an ASCII byte (space, comma,
/// equals sign, quote, `\r`, `\n`) or an end of the body; an ASCII byte is never inside a
/// multi-byte UTF-8 sequence, so both ends are char boundaries. Debug builds (and so the
/// property tests) check it.
#[inline(always)]
fn cut(body: &str, start: usize, end: usize) -> &str {
    debug_assert!(start <= end && end <= body.len());
    debug_assert!(body.is_char_boundary(start) && body.is_char_boundary(end));
    // SAFETY: start <= end <= body.len(), and both are char boundaries (see above).
    unsafe { body.get_unchecked(start..end) }
}

/// The first 8 bytes of `bytes[start..end]`, big-endian, zero-padded (see `Tag::sort_prefix`),
/// read with one load where the body allows.
#[inline(always)]
fn key_prefix(bytes: &[u8], start: usize, end: usize) -> u64 {
    let len = end - start;
    if let Some(b) = bytes.get(start..start + 8) {
        let w = u64::from_be_bytes(b.try_into().expect("8 bytes"));
        if len >= 8 {
            w
        } else {
            // Keep the key's own `len` leading bytes (len >= 1: empty keys are rejected).
            w & !(u64::MAX >> (len * 8))
        }
    } else {
        let mut p = [0u8; 8];
        let n = len.min(8);
        p[..n].copy_from_slice(&bytes[start..start + n]);
        u64::from_be_bytes(p)
    }
}

impl<'a> Iterator for LineParser<'a> {
    type Item = LineResult<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_line()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Space,
    Comma,
    Equals,
    Ctrl,
    End,
}

/// Scans a measurement, key or tag value from `p`; stops at an unescaped structural byte,
/// a control byte, or `end`. `\` followed by a byte the token kind escapes is a pair.
/// Returns where it stopped, why, and whether the token holds a backslash.
#[inline(always)]
fn scan_token(bytes: &[u8], mut p: usize, end: usize, kind: TokenKind) -> (usize, Stop, bool) {
    let stops = match kind {
        TokenKind::Key => Stops::Key,
        _ => Stops::NameOrTagValue,
    };
    let mut escaped = false;
    loop {
        p = scan::find(bytes, p, end, stops);
        if p >= end {
            return (end, Stop::End, escaped);
        }
        match bytes[p] {
            b' ' => return (p, Stop::Space, escaped),
            b',' => return (p, Stop::Comma, escaped),
            b'=' => return (p, Stop::Equals, escaped),
            b'\\' => {
                escaped = true;
                p += if p + 1 < end && kind.escapes(bytes[p + 1]) {
                    2
                } else {
                    1
                };
            }
            // A `\r` directly before the newline ends the line, not the token.
            b'\r' if p + 1 == end => return (p, Stop::End, escaped),
            _ => return (p, Stop::Ctrl, escaped),
        }
    }
}

/// Rejects a token that ends in a lone backslash (as InfluxDB 3 Core does), or that stopped
/// at a control byte.
#[inline(always)]
fn check_token_end(bytes: &[u8], start: usize, end: usize, stop: Stop) -> Result<(), &'static str> {
    if stop == Stop::Ctrl {
        return Err("contains a nonprintable character");
    }
    if end > start && bytes[end - 1] == b'\\' {
        // Count the trailing backslashes: an odd run that the scanner did not pair ends alone.
        let run = bytes[start..end]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if run % 2 == 1 {
            return Err("ends with a backslash");
        }
    }
    Ok(())
}

fn tag_key_problem(stop: Stop, empty: bool) -> &'static str {
    match stop {
        Stop::Space if empty => "expected a tag key after ','",
        Stop::Ctrl => "invalid character in tag key",
        _ => "expected '=' after tag key",
    }
}

/// Finds the closing quote of a string value that opened just before `p`, and whether the
/// string holds a backslash.
#[inline]
fn find_string_end(bytes: &[u8], mut p: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        let i = memchr::memchr2(b'"', b'\\', &bytes[p..])?;
        let at = p + i;
        if bytes[at] == b'"' {
            return Some((at, escaped));
        }
        escaped = true;
        // A backslash escapes whatever byte follows it (for scanning; see unescape for values).
        p = at + 2;
        if p > bytes.len() {
            return None;
        }
    }
}

fn count_newlines(b: &[u8]) -> u32 {
    memchr::memchr_iter(b'\n', b).count() as u32
}

/// Sorts tags by unescaped key (insertion sort: lines usually hold few tags, often sorted
/// already) and rejects duplicate tag or field keys.
#[inline]
/// Rejects duplicate tag keys (tags are sorted, so duplicates are neighbours; skipped when
/// `tags_known_distinct`) and duplicate field keys.
fn check_duplicates(
    tags: &[Tag<'_>],
    fields: &[Field<'_>],
    tags_known_distinct: bool,
) -> Result<(), LineError> {
    for w in tags.windows(2).filter(|_| !tags_known_distinct) {
        if w[0].cmp_key(&w[1]) == Ordering::Equal {
            return Err(LineError::DuplicateTag(
                w[0].key.unescaped(TokenKind::Key).into_owned(),
            ));
        }
    }
    // Most lines have no duplicate: a 64-bit mask of (length, first byte, last byte) of the
    // keys seen so far rules that out in one pass; only a hit in the mask compares keys.
    // Escaped keys can be equal unescaped while their raw bytes differ, so they take the
    // full comparison.
    let mut seen = 0u64;
    for (i, f) in fields.iter().enumerate() {
        let k = f.key.raw.as_bytes();
        let bit = if f.key.escaped {
            u64::MAX
        } else {
            1u64 << ((k.len() as u64 * 7 + k[0] as u64 * 3 + k[k.len() - 1] as u64) & 63)
        };
        if seen & bit != 0 || f.key.escaped {
            for prev in &fields[..i] {
                if prev.key.cmp_unescaped(&f.key, TokenKind::Key) == Ordering::Equal {
                    return Err(LineError::DuplicateField(
                        f.key.unescaped(TokenKind::Key).into_owned(),
                    ));
                }
            }
        }
        seen |= bit;
    }
    Ok(())
}

/// Parses a non-string field value: bool, `…i` int, `…u` uint, or float per the grammar.
#[inline]
pub(crate) fn parse_scalar<'v>(v: &[u8]) -> Result<FieldValue<'v>, &'static str> {
    let Some(&last) = v.last() else {
        return Err("missing field value");
    };
    match last {
        b'i' => parse_int(&v[..v.len() - 1]).map(FieldValue::I64),
        b'u' => parse_uint(&v[..v.len() - 1]).map(FieldValue::U64),
        b'0'..=b'9' | b'.' => parse_float(v).map(FieldValue::F64),
        _ => match v {
            b"t" | b"T" | b"true" | b"True" | b"TRUE" => Ok(FieldValue::Bool(true)),
            b"f" | b"F" | b"false" | b"False" | b"FALSE" => Ok(FieldValue::Bool(false)),
            _ => Err("not a valid float, integer, unsigned integer, boolean or string"),
        },
    }
}

#[inline]
fn parse_int(v: &[u8]) -> Result<i64, &'static str> {
    let (neg, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() {
        return Err("not a valid integer");
    }
    if digits.len() <= 18 {
        // At most 18 digits cannot overflow an i64: no checks per digit.
        let mut acc: i64 = 0;
        for &d in digits {
            let d = d.wrapping_sub(b'0');
            if d > 9 {
                return Err("not a valid integer");
            }
            acc = acc * 10 + d as i64;
        }
        return Ok(if neg { -acc } else { acc });
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err("not a valid integer");
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut acc: i64 = 0;
    for &d in digits {
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub((d - b'0') as i64))
            .ok_or("integer out of range")?;
    }
    if neg {
        Ok(acc)
    } else {
        acc.checked_neg().ok_or("integer out of range")
    }
}

#[inline]
fn parse_uint(v: &[u8]) -> Result<u64, &'static str> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err("not a valid unsigned integer");
    }
    let mut acc: u64 = 0;
    for &d in v {
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_add((d - b'0') as u64))
            .ok_or("unsigned integer out of range")?;
    }
    Ok(acc)
}

/// Checks the float grammar of the EBNF (`[-] digits [. [digits]] [exp] | [-] . digits [exp]`),
/// then converts. Values that round to infinity are rejected.
#[inline]
fn parse_float(v: &[u8]) -> Result<f64, &'static str> {
    const BAD: &str = "not a valid float";
    let mut i = usize::from(v.first() == Some(&b'-'));
    let int_start = i;
    while i < v.len() && v[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < v.len() && v[i] == b'.' {
        i += 1;
        let s = i;
        while i < v.len() && v[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits == 0 && frac_digits == 0 {
        return Err(BAD);
    }
    if i < v.len() && (v[i] == b'e' || v[i] == b'E') {
        i += 1;
        if i < v.len() && (v[i] == b'+' || v[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < v.len() && v[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return Err(BAD);
        }
    }
    if i != v.len() {
        return Err(BAD);
    }
    // Fast path for plain integers that f64 holds exactly.
    if frac_digits == 0 && int_digits > 0 && int_digits <= 15 && i == int_start + int_digits {
        let mut acc: i64 = 0;
        for &d in &v[int_start..i] {
            acc = acc * 10 + (d - b'0') as i64;
        }
        let f = acc as f64;
        return Ok(if int_start == 1 { -f } else { f });
    }
    // The bytes are ASCII by construction.
    let s = std::str::from_utf8(v).map_err(|_| BAD)?;
    let f: f64 = s.parse().map_err(|_| BAD)?;
    if f.is_infinite() {
        return Err("float out of range");
    }
    Ok(f)
}

#[inline]
fn parse_timestamp(v: &[u8]) -> Result<i64, &'static str> {
    parse_int(v).map_err(|e| match e {
        "integer out of range" => "out of range for a 64-bit timestamp",
        _ => "not an integer",
    })
}

#[cfg(test)]
mod tests;
