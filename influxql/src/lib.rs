//! `shardline-influxql`: InfluxQL, the query language of InfluxDB 1.x, as text and as a tree.
//!
//! [`parse`] turns a query into [`ast::Statement`]s; printing a statement (`Display`) gives
//! text that parses back to the same tree. Errors carry the line and character where parsing
//! stopped and read as 1.x's do (`found FROM, expected identifier at line 1, char 8`).
//! [`params::bind`] replaces `$name` parameters with values before planning.
//!
//! This crate is pure: no I/O, no query engine, no knowledge of the catalog. Whether a name
//! is a tag or a field, whether a call is an aggregate, and what a string compared with `time`
//! means are for the planner (in the server, `src/query/influxql/`).
//!
//! Invariants: the lexer allocates nothing (tokens are spans of the input); the parser never
//! panics, whatever the input, and bounds nesting at [`parser::MAX_DEPTH`]; every reserved
//! word is in [`token::Keyword`] and nowhere else.

pub mod ast;
pub mod error;
pub mod lexer;
pub mod params;
pub mod parser;
pub mod print;
pub mod regex;
pub mod token;

pub use error::ParseError;
pub use parser::{parse, parse_duration, parse_expr, parse_statement};
