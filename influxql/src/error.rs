//! Parse errors: what was found, what was expected, and where (line and character from 1),
//! worded as InfluxDB 1.x words them so clients that match on the text keep working.
//!
//! Most messages end in ` at line L, char C`; a few 1.x prints bare (`invalid duration`,
//! `empty bound parameter`, the `fill()`/`tz()` and `ORDER BY` rules), and so do we, though
//! the position is still recorded for callers that want it.

use std::fmt;

use crate::lexer::line_char;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// Byte offset into the input.
    pub offset: usize,
    pub line: usize,
    pub char: usize,
    /// Whether the text ends with the position, as most 1.x messages do.
    pub positioned: bool,
}

impl std::error::Error for ParseError {}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.positioned {
            write!(
                f,
                "{} at line {}, char {}",
                self.message, self.line, self.char
            )
        } else {
            f.write_str(&self.message)
        }
    }
}

impl ParseError {
    pub(crate) fn new(input: &str, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, char) = line_char(input, offset);
        ParseError {
            message: message.into(),
            offset,
            line,
            char,
            positioned: true,
        }
    }

    /// A message 1.x prints without a position.
    pub(crate) fn bare(input: &str, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            positioned: false,
            ..ParseError::new(input, offset, message)
        }
    }

    /// `found X, expected A, B`.
    pub(crate) fn found(input: &str, offset: usize, found: &str, expected: &[&str]) -> Self {
        ParseError::new(
            input,
            offset,
            format!("found {found}, expected {}", expected.join(", ")),
        )
    }
}
