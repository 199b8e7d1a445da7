//! The v1 `/query` answer in CSV (`Accept: application/csv` or `text/csv`), as InfluxDB 1.x
//! writes it: a header `name,tags,<columns>` for each statement, a row per point with the
//! series' name and its tags as `k=v,k2=v2` (sorted, `,` `=` and space escaped with `\`), a
//! blank line before each later statement and before a series whose columns differ from the
//! header above it. Times are integers: nanoseconds without `epoch`, else in its unit.
//!
//! 1.x leaves out results with no series, errors included (only a request refused as a whole
//! is written, as `error` and the message); this keeps that, since CSV readers written against
//! 1.x expect nothing else there. Fields are quoted as Go's `encoding/csv` quotes them.
//!
//! Invariant: one [`CsvState`] lives for a whole answer, chunks included, so a statement split
//! over chunks has one header.

use super::{Epoch, Piece};
use crate::query::influxql::values::V;

/// What the answer has written so far: the statement and the columns of the last header.
#[derive(Debug, Default)]
pub struct CsvState {
    statement: Option<usize>,
    header: Vec<String>,
}

/// Appends `field` as Go's `csv.Writer` does: quoted when it holds `,` `"` CR or LF, starts
/// with white space, or is `\.`; quotes inside doubled.
fn field(out: &mut Vec<u8>, field: &str) {
    let needs_quotes = !field.is_empty()
        && (field == "\\."
            || field.contains([',', '"', '\r', '\n'])
            || field.chars().next().is_some_and(char::is_whitespace));
    if !needs_quotes {
        out.extend_from_slice(field.as_bytes());
        return;
    }
    out.push(b'"');
    for part in field.split_inclusive('"') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

fn record<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        field(out, f);
    }
    out.push(b'\n');
}

/// `k=v,k2=v2` (tags with values only) with the line-protocol escapes of tag keys and values, as 1.x's series key.
fn tags_text(tags: &[(&str, &str)]) -> String {
    let mut s = String::new();
    // 1.x's series key has no tag whose value is empty.
    for (k, v) in tags.iter().filter(|(_, v)| !v.is_empty()) {
        if !s.is_empty() {
            s.push(',');
        }
        escape_tag(&mut s, k);
        s.push('=');
        escape_tag(&mut s, v);
    }
    s
}

fn escape_tag(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn value_text(v: &V) -> String {
    match v {
        V::Null => String::new(),
        // Go's 'f' with the shortest precision: never an exponent, as Rust's Display.
        V::F(f) if f.is_finite() => format!("{f}"),
        V::F(f) if f.is_nan() => "NaN".into(),
        V::F(f) if *f > 0.0 => "+Inf".into(),
        V::F(_) => "-Inf".into(),
        V::I(i) => i.to_string(),
        V::U(u) => u.to_string(),
        V::S(s) => s.to_string(),
        V::B(b) => b.to_string(),
    }
}

/// Appends one result (a statement's, or one chunk of it).
pub fn result(out: &mut Vec<u8>, state: &mut CsvState, piece: &Piece<'_>, epoch: Epoch) {
    let Some(first) = piece.series.first() else {
        return;
    };
    let columns = |s: &super::SeriesPiece<'_>| -> Vec<String> {
        ["name", "tags"]
            .into_iter()
            .chain(s.columns())
            .map(str::to_string)
            .collect()
    };
    if state.statement != Some(piece.statement_id) {
        if state.statement.is_some() {
            out.push(b'\n');
        }
        state.statement = Some(piece.statement_id);
        state.header = columns(first);
        record(out, state.header.iter().map(String::as_str));
    }
    let divisor = epoch.divisor().unwrap_or(1);
    let mut row = Vec::new();
    for s in piece.series {
        let wanted = columns(s);
        if wanted != state.header {
            out.push(b'\n');
            state.header = wanted;
            record(out, state.header.iter().map(String::as_str));
        }
        let tags = tags_text(&s.sorted_tags());
        for (t, values) in s.rows {
            row.clear();
            row.push(s.series.measurement.clone());
            row.push(tags.clone());
            if s.has_time {
                row.push((t / divisor).to_string());
            }
            row.extend(values.iter().map(value_text));
            record(out, row.iter().map(String::as_str));
        }
    }
}

/// `error` and the message, for a request refused as a whole.
pub fn error_body(message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    record(&mut out, ["error"]);
    record(&mut out, [message]);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::query::influxql::SeriesRows;
    use crate::query::v1::SeriesPiece;

    fn series(name: &str, tags: &[(&str, &str)], columns: &[&str]) -> SeriesRows {
        SeriesRows {
            measurement: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), Some(Arc::from(*v))))
                .collect(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    #[test]
    fn quotes_as_go_csv() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            (" lead", "\" lead\""),
            ("line\nbreak", "\"line\nbreak\""),
            ("\\.", "\"\\.\""),
            ("tail ", "tail "),
        ];
        for (raw, want) in cases {
            let mut out = Vec::new();
            field(&mut out, raw);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{raw:?}");
        }
    }

    #[test]
    fn statements_and_column_changes_get_headers() {
        let mut cpu = series("cpu", &[("host", "a b"), ("dc", "x,y")], &["v"]);
        cpu.rows = vec![
            (1_000_000_000, vec![V::F(2.0)]),
            (2_000_000_000, vec![V::Null]),
        ];
        let mut mem = series("mem", &[], &["free", "ok"]);
        mem.rows = vec![(3_000_000_000, vec![V::I(7), V::B(true)])];
        let pieces = [&cpu, &mem].map(|s| SeriesPiece {
            series: s,
            rows: &s.rows,
            partial: false,
            has_time: true,
        });
        let mut state = CsvState::default();
        let mut out = Vec::new();
        let piece = Piece {
            statement_id: 0,
            series: &pieces,
            partial: false,
            error: None,
        };
        result(&mut out, &mut state, &piece, Epoch::Rfc3339);
        let empty = Piece {
            statement_id: 1,
            series: &[],
            partial: false,
            error: Some("database not found: x"),
        };
        result(&mut out, &mut state, &empty, Epoch::Rfc3339);
        let again = Piece {
            statement_id: 2,
            series: &pieces[1..],
            partial: false,
            error: None,
        };
        result(&mut out, &mut state, &again, Epoch::Millisecond);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                "name,tags,time,v\n",
                "cpu,\"dc=x\\,y,host=a\\ b\",1000000000,2\n",
                "cpu,\"dc=x\\,y,host=a\\ b\",2000000000,\n",
                "\n",
                "name,tags,time,free,ok\n",
                "mem,,3000000000,7,true\n",
                "\n",
                "name,tags,time,free,ok\n",
                "mem,,3000,7,true\n",
            )
        );
    }

    #[test]
    fn floats_without_exponents() {
        assert_eq!(value_text(&V::F(1e21)), "1000000000000000000000");
        assert_eq!(value_text(&V::F(1.5e-7)), "0.00000015");
        assert_eq!(value_text(&V::F(f64::NEG_INFINITY)), "-Inf");
    }

    #[test]
    fn refused_request() {
        assert_eq!(
            String::from_utf8(error_body("error parsing query: found y, expected FROM")).unwrap(),
            "error\n\"error parsing query: found y, expected FROM\"\n"
        );
    }
}
