//! Token kinds and the reserved words of InfluxQL.
//!
//! Invariants: every keyword is reserved (an unquoted identifier never spells one, in any
//! letter case — quote it to use it as a name), and [`KEYWORDS`] lists every variant so
//! the lexer's lookup and the printer's quoting rule agree (a test checks both directions).

/// What a token is. Its text is a slice of the input, found from its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Eof,
    /// An unquoted identifier (`cpu`, `_x1`).
    Ident,
    /// A double-quoted identifier; its text includes the quotes and any escapes.
    QuotedIdent,
    /// A single-quoted string; its text includes the quotes and any escapes.
    Str,
    /// Digits only, no fraction and no unit.
    Integer,
    /// Digits with a fraction (`1.5`, `.5`).
    Number,
    /// Digits followed by a duration unit, possibly several terms (`1h30m`).
    Duration,
    /// `$name` or `$"name"`.
    BoundParam,
    /// `/.../`, only where the parser asks for one.
    Regex,
    True,
    False,
    Keyword(Keyword),
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    Eq,
    Neq,
    EqRegex,
    NeqRegex,
    Lt,
    Lte,
    Gt,
    Gte,
    LParen,
    RParen,
    Comma,
    Colon,
    DoubleColon,
    Semicolon,
    Dot,
    /// A character no token starts with, or an unterminated literal (the lexer's error says
    /// which).
    Illegal,
}

macro_rules! keywords {
    ($($name:ident),* $(,)?) => {
        /// A reserved word.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum Keyword { $($name),* }

        /// Every keyword.
        pub const KEYWORDS: &[Keyword] = &[$(Keyword::$name),*];

        impl Keyword {
            /// The word in upper case, as it is printed.
            pub fn as_str(self) -> &'static str {
                match self { $(Keyword::$name => stringify!($name)),* }
            }
        }
    };
}

keywords!(
    ALL,
    ALTER,
    ANALYZE,
    AND,
    ANY,
    AS,
    ASC,
    BEGIN,
    BY,
    CARDINALITY,
    CONTINUOUS,
    CREATE,
    DATABASE,
    DATABASES,
    DEFAULT,
    DELETE,
    DESC,
    DESTINATIONS,
    DIAGNOSTICS,
    DISTINCT,
    DROP,
    DURATION,
    END,
    EVERY,
    EXACT,
    EXPLAIN,
    FIELD,
    FOR,
    FROM,
    GRANT,
    GRANTS,
    GROUP,
    GROUPS,
    IN,
    INF,
    INSERT,
    INTO,
    KEY,
    KEYS,
    KILL,
    LIMIT,
    MEASUREMENT,
    MEASUREMENTS,
    NAME,
    OFFSET,
    ON,
    OR,
    ORDER,
    PASSWORD,
    POLICIES,
    POLICY,
    PRIVILEGES,
    QUERIES,
    QUERY,
    READ,
    REPLICATION,
    RESAMPLE,
    RETENTION,
    REVOKE,
    SELECT,
    SERIES,
    SET,
    SHOW,
    SHARD,
    SHARDS,
    SLIMIT,
    SOFFSET,
    STATS,
    SUBSCRIPTION,
    SUBSCRIPTIONS,
    TAG,
    TO,
    USER,
    USERS,
    VALUES,
    WHERE,
    WITH,
    WRITE,
);

/// The keyword (or `true`/`false`) an unquoted word spells, in any letter case.
pub(crate) fn lookup(word: &str) -> Option<Kind> {
    // Longest keyword is SUBSCRIPTIONS (13): anything longer is an identifier, and shorter
    // words are upper-cased into a stack buffer, so the lookup never allocates.
    const MAX: usize = 13;
    if word.len() > MAX || !word.is_ascii() {
        return None;
    }
    let mut buf = [0u8; MAX];
    let upper = &mut buf[..word.len()];
    upper.copy_from_slice(word.as_bytes());
    upper.make_ascii_uppercase();
    let upper = std::str::from_utf8(upper).ok()?;
    match upper {
        "TRUE" => return Some(Kind::True),
        "FALSE" => return Some(Kind::False),
        _ => {}
    }
    KEYWORDS
        .iter()
        .find(|k| k.as_str() == upper)
        .map(|&k| Kind::Keyword(k))
}

impl Kind {
    /// How an error names a token of this kind when it has no text of its own.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::Eof => "EOF",
            Kind::Ident | Kind::QuotedIdent => "identifier",
            Kind::Str => "string",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Duration => "duration",
            Kind::BoundParam => "bound parameter",
            Kind::Regex => "regex",
            Kind::True => "TRUE",
            Kind::False => "FALSE",
            Kind::Keyword(k) => k.as_str(),
            Kind::Add => "+",
            Kind::Sub => "-",
            Kind::Mul => "*",
            Kind::Div => "/",
            Kind::Mod => "%",
            Kind::BitAnd => "&",
            Kind::BitOr => "|",
            Kind::BitXor => "^",
            Kind::Eq => "=",
            Kind::Neq => "!=",
            Kind::EqRegex => "=~",
            Kind::NeqRegex => "!~",
            Kind::Lt => "<",
            Kind::Lte => "<=",
            Kind::Gt => ">",
            Kind::Gte => ">=",
            Kind::LParen => "(",
            Kind::RParen => ")",
            Kind::Comma => ",",
            Kind::Colon => ":",
            Kind::DoubleColon => "::",
            Kind::Semicolon => ";",
            Kind::Dot => ".",
            Kind::Illegal => "illegal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_found_in_any_case() {
        for &k in KEYWORDS {
            assert_eq!(lookup(k.as_str()), Some(Kind::Keyword(k)));
            assert_eq!(
                lookup(&k.as_str().to_ascii_lowercase()),
                Some(Kind::Keyword(k))
            );
        }
        assert_eq!(lookup("True"), Some(Kind::True));
        assert_eq!(lookup("cpu"), None);
        assert_eq!(lookup("selects"), None);
        assert_eq!(lookup("µs"), None);
    }
}
