//! Checking a regex literal's pattern when it is parsed, as 1.x does, with Go's wording for
//! the common mistakes (`error parsing regexp: missing closing ]: `[a``), so a client that
//! shows 1.x's messages shows ours the same.

use regex_syntax::ast::ErrorKind;

/// `Err(message)` if `pattern` is not a valid regex.
pub fn check(pattern: &str) -> Result<(), String> {
    let err = match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Ok(ast) => match regex_syntax::hir::translate::Translator::new().translate(pattern, &ast) {
            Ok(_) => return Ok(()),
            Err(e) => return Err(format!("error parsing regexp: {}", e.kind())),
        },
        Err(e) => e,
    };
    let span = err.span();
    let (code, from_start_to_end) = match err.kind() {
        ErrorKind::ClassUnclosed => ("missing closing ]", true),
        ErrorKind::GroupUnclosed => ("missing closing )", false),
        ErrorKind::GroupUnopened => ("unexpected )", false),
        ErrorKind::RepetitionMissing => ("missing argument to repetition operator", false),
        ErrorKind::EscapeUnrecognized | ErrorKind::EscapeHexInvalid => {
            ("invalid escape sequence", false)
        }
        ErrorKind::EscapeUnexpectedEof => ("trailing backslash at end of expression", false),
        ErrorKind::RepetitionCountInvalid | ErrorKind::RepetitionCountDecimalEmpty => {
            ("invalid repeat count", false)
        }
        ErrorKind::ClassRangeInvalid => ("invalid character class range", false),
        ErrorKind::GroupNameInvalid | ErrorKind::GroupNameDuplicate { .. } => {
            ("invalid named capture", false)
        }
        ErrorKind::FlagUnrecognized | ErrorKind::FlagDanglingNegation => {
            ("invalid or unsupported Perl syntax", false)
        }
        other => return Err(format!("error parsing regexp: {other}")),
    };
    // Go quotes the whole expression for an unclosed group, the rest of it from the `[` for
    // an unclosed class, and the offending piece otherwise.
    let piece = if code == "missing closing )" {
        pattern
    } else if from_start_to_end {
        &pattern[span.start.offset..]
    } else {
        &pattern[span.start.offset..span.end.offset.max(span.start.offset)]
    };
    Err(format!("error parsing regexp: {code}: `{piece}`"))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn good_and_bad_patterns() {
        assert_eq!(check("^cpu(?i)[a-z]+$"), Ok(()));
        assert_eq!(check("a\\/b"), Ok(()));
        assert_eq!(
            check("["),
            Err("error parsing regexp: missing closing ]: `[`".into())
        );
        assert_eq!(
            check("a[b"),
            Err("error parsing regexp: missing closing ]: `[b`".into())
        );
        assert!(check("(a").unwrap_err().contains("missing closing )"));
        assert!(check("a)").unwrap_err().contains("unexpected )"));
        assert!(check("*a")
            .unwrap_err()
            .contains("missing argument to repetition operator"));
    }
}
