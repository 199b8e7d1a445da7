//! Unescaping of line-protocol tokens, with InfluxDB 3 Core's rules.
//!
//! A backslash followed by a byte that the token kind escapes stands for that byte; any other
//! backslash is a literal backslash. The kinds differ only in which bytes they escape:
//! measurement `\\ \, \space`; keys and tag values `\\ \, \= \space`; string field values
//! `\\ \"`. (The Go decoder keeps `\\` as two backslashes in names and turns `\n`, `\r`, `\t`
//! into control characters inside strings; InfluxDB 3 Core does neither, and neither do we.)

/// What a token is, which decides its escapes and what ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Measurement,
    /// Tag keys and field keys: end at `=`.
    Key,
    /// Tag values: `=` is an ordinary byte.
    TagValue,
    /// A string field value, between its quotes.
    Str,
}

impl TokenKind {
    /// Whether `\` followed by `b` is an escape pair for this kind.
    #[inline(always)]
    pub fn escapes(self, b: u8) -> bool {
        match self {
            TokenKind::Measurement => matches!(b, b'\\' | b',' | b' '),
            TokenKind::Key | TokenKind::TagValue => matches!(b, b'\\' | b',' | b'=' | b' '),
            TokenKind::Str => matches!(b, b'\\' | b'"'),
        }
    }
}

/// Appends the unescaped form of `raw` to `out`.
pub fn unescape_into(raw: &str, kind: TokenKind, out: &mut String) {
    let b = raw.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', &b[i..]) {
        let at = i + off;
        if at + 1 < b.len() && kind.escapes(b[at + 1]) {
            out.push_str(&raw[run_start..at]);
            run_start = at + 1; // keep the escaped byte, drop the backslash
            i = at + 2;
        } else {
            i = at + 1;
        }
    }
    out.push_str(&raw[run_start..]);
}

/// The unescaped bytes of a token, produced lazily (for hashing and comparing without
/// allocating).
#[derive(Debug, Clone)]
pub(crate) struct UnescapedBytes<'a> {
    raw: &'a [u8],
    i: usize,
    kind: TokenKind,
}

impl<'a> UnescapedBytes<'a> {
    pub(crate) fn new(raw: &'a [u8], kind: TokenKind) -> Self {
        UnescapedBytes { raw, i: 0, kind }
    }
}

impl Iterator for UnescapedBytes<'_> {
    type Item = u8;
    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = *self.raw.get(self.i)?;
        if b == b'\\' && self.i + 1 < self.raw.len() && self.kind.escapes(self.raw[self.i + 1]) {
            self.i += 2;
            return Some(self.raw[self.i - 1]);
        }
        self.i += 1;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(raw: &str, kind: TokenKind) -> String {
        let mut s = String::new();
        unescape_into(raw, kind, &mut s);
        let lazy: Vec<u8> = UnescapedBytes::new(raw.as_bytes(), kind).collect();
        assert_eq!(
            lazy,
            s.as_bytes(),
            "lazy and eager unescaping disagree on {raw:?}"
        );
        s
    }

    #[test]
    fn core_rules() {
        assert_eq!(un(r"two\ words", TokenKind::Key), "two words");
        assert_eq!(un(r"a\,b\=c", TokenKind::Key), "a,b=c");
        assert_eq!(un(r"a\=b", TokenKind::Measurement), r"a\=b");
        assert_eq!(un(r"va\lue", TokenKind::Key), r"va\lue");
        assert_eq!(un(r"x\\\ y", TokenKind::Key), r"x\ y");
        assert_eq!(
            un(r#"say \"hi\" \t \\"#, TokenKind::Str),
            r#"say "hi" \t \"#
        );
        assert_eq!(un("no escapes", TokenKind::Str), "no escapes");
    }
}
