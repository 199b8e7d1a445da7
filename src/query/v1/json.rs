//! The v1 `/query` answer as InfluxDB 1.x writes it in JSON: `{"results":[...]}` with one
//! result object per statement (or per chunk), series as `{"name","tags","columns","values"}`.
//!
//! The text is byte for byte what 1.x's Go encoder gives: keys in 1.x's order, empty parts
//! left out, strings escaped as Go escapes them (`<`, `>`, `&`, U+2028/2029 as `\u` escapes),
//! floats in Go's shortest form (`1`, not `1.0`; exponents from 1e21 and below 1e-6), times
//! as RFC 3339 with trailing zeros of the fraction dropped or as integers of the `epoch` unit.
//! NaN and infinities, which 1.x cannot encode at all, are written as `null`. `pretty`
//! re-indents the compact text as Go's `MarshalIndent` with four spaces does.

use super::{Epoch, Piece};
use crate::query::influxql::values::V;

/// Appends `s` as a JSON string, escaped as Go's `encoding/json` escapes it.
pub fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            _ => None,
        };
        // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
        let line_sep = b == 0xE2
            && bytes.get(i + 1) == Some(&0x80)
            && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9));
        if escape.is_some() || b < 0x20 || matches!(b, b'<' | b'>' | b'&') || line_sep {
            out.extend_from_slice(&bytes[start..i]);
            match escape {
                Some(e) => out.extend_from_slice(e),
                None if line_sep => {
                    out.extend_from_slice(if bytes[i + 2] == 0xA8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 2;
                }
                None => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xF)]);
                }
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `f` as Go's `encoding/json` writes a float64; NaN and infinities as `null`.
pub fn float(out: &mut Vec<u8>, f: f64) {
    use std::io::Write;
    if !f.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // Rust's Display is the shortest round-trip text without an exponent, as Go's 'f'.
        let _ = write!(out, "{f}");
        return;
    }
    // Go's 'e' form: shortest mantissa, `e+NN` (at least two digits) or `e-N`.
    let text = format!("{f:e}");
    let (mantissa, exp) = text.split_once('e').expect("LowerExp writes an exponent");
    let exp: i32 = exp.parse().expect("LowerExp writes a decimal exponent");
    out.extend_from_slice(mantissa.as_bytes());
    if exp < 0 {
        let _ = write!(out, "e-{}", -exp);
    } else {
        let _ = write!(out, "e+{exp:02}");
    }
}

/// Appends a time: RFC 3339 in UTC with the fraction's trailing zeros dropped, or an integer.
pub fn time(out: &mut Vec<u8>, t: i64, epoch: Epoch) {
    match epoch.divisor() {
        Some(d) => out.extend_from_slice(itoa::Buffer::new().format(t / d).as_bytes()),
        None => {
            out.push(b'"');
            rfc3339(out, t);
            out.push(b'"');
        }
    }
}

/// `t` (ns since the epoch) as Go's `time.RFC3339Nano` in UTC.
pub fn rfc3339(out: &mut Vec<u8>, t: i64) {
    use std::io::Write;
    let dt = chrono::DateTime::from_timestamp_nanos(t);
    let _ = write!(out, "{}", dt.format("%Y-%m-%dT%H:%M:%S"));
    let nanos = t.rem_euclid(1_000_000_000);
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        out.push(b'.');
        out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
    }
    out.push(b'Z');
}

pub fn value(out: &mut Vec<u8>, v: &V) {
    match v {
        V::Null => out.extend_from_slice(b"null"),
        V::F(f) => float(out, *f),
        V::I(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        V::U(u) => out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        V::S(s) => string(out, s),
        V::B(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
    }
}

/// Appends one result object (a statement's, or a chunk of it).
pub fn result(out: &mut Vec<u8>, piece: &Piece<'_>, epoch: Epoch) {
    out.extend_from_slice(b"{\"statement_id\":");
    out.extend_from_slice(itoa::Buffer::new().format(piece.statement_id).as_bytes());
    if !piece.series.is_empty() {
        out.extend_from_slice(b",\"series\":[");
        for (i, s) in piece.series.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            let mut first = true;
            if !s.series.measurement.is_empty() {
                out.extend_from_slice(b"\"name\":");
                string(out, &s.series.measurement);
                first = false;
            }
            if !s.series.tags.is_empty() {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"tags\":{");
                for (j, (k, v)) in s.sorted_tags().into_iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    string(out, k);
                    out.push(b':');
                    string(out, v);
                }
                out.push(b'}');
                first = false;
            }
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"columns\":[");
            for (j, c) in s.columns().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                string(out, c);
            }
            out.push(b']');
            // 1.x leaves out `values` when there are none (`omitempty`).
            if !s.rows.is_empty() {
                out.extend_from_slice(b",\"values\":[");
            }
            for (j, (t, values)) in s.rows.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.push(b'[');
                if s.has_time {
                    time(out, *t, epoch);
                }
                for (k, v) in values.iter().enumerate() {
                    if k > 0 || s.has_time {
                        out.push(b',');
                    }
                    value(out, v);
                }
                out.push(b']');
            }
            if !s.rows.is_empty() {
                out.push(b']');
            }
            if s.partial {
                out.extend_from_slice(b",\"partial\":true");
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    if piece.partial {
        out.extend_from_slice(b",\"partial\":true");
    }
    if let Some(e) = piece.error {
        out.extend_from_slice(b",\"error\":");
        string(out, e);
    }
    out.push(b'}');
}

/// `{"error": message}`, the body of a request refused as a whole.
pub fn error_body(message: &str) -> Vec<u8> {
    let mut out = b"{\"error\":".to_vec();
    string(&mut out, message);
    out.extend_from_slice(b"}\n");
    out
}

/// Re-indents compact JSON (as written above) as Go's `json.MarshalIndent(v, "", "    ")`:
/// one member or element per line, `": "` after keys, empty arrays and objects as `[]`/`{}`.
pub fn pretty(compact: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', depth * 4));
    };
    let mut i = 0;
    while i < compact.len() {
        let b = compact[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
            }
            b'{' | b'[' => {
                let close = if b == b'{' { b'}' } else { b']' };
                if compact.get(i + 1) == Some(&close) {
                    out.push(b);
                    out.push(close);
                    i += 2;
                    continue;
                }
                out.push(b);
                depth += 1;
                newline(&mut out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            b'\n' => {}
            _ => out.push(b),
        }
        i += 1;
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut out = Vec::new();
        float(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    fn s(x: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_as_go_writes_them() {
        assert_eq!(f(1.0), "1");
        assert_eq!(f(2.5), "2.5");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1e-6), "0.000001");
        assert_eq!(f(1.5e-7), "1.5e-7");
        assert_eq!(f(1e-10), "1e-10");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(-1.2345e100), "-1.2345e+100");
        assert_eq!(f(f64::NAN), "null");
        assert_eq!(f(f64::INFINITY), "null");
        assert_eq!(f(123456.789), "123456.789");
    }

    #[test]
    fn strings_escaped_as_go_escapes_them() {
        // The text 1.6 answered for this value.
        assert_eq!(
            s("a<b>&c\"\u{2028}\u{1}\t"),
            r#""a\u003cb\u003e\u0026c\"\u2028\u0001\t""#
        );
        assert_eq!(s("é\\\u{2029}x"), "\"é\\\\\\u2029x\"");
    }

    #[test]
    fn times_in_rfc3339_or_epoch_units() {
        let t = |ns: i64, e: Epoch| {
            let mut out = Vec::new();
            time(&mut out, ns, e);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(t(1_000_000_000, Epoch::Rfc3339), "\"1970-01-01T00:00:01Z\"");
        assert_eq!(
            t(1_500_000_000, Epoch::Rfc3339),
            "\"1970-01-01T00:00:01.5Z\""
        );
        assert_eq!(t(-1, Epoch::Rfc3339), "\"1969-12-31T23:59:59.999999999Z\"");
        assert_eq!(t(1_500_000_000, Epoch::Millisecond), "1500");
        assert_eq!(t(1_500_000_000, Epoch::Hour), "0");
        assert_eq!(t(7_200_000_000_000, Epoch::Hour), "2");
    }

    #[test]
    fn pretty_as_marshal_indent() {
        let compact = br#"{"results":[{"statement_id":0,"series":[{"name":"a,b:c","columns":["x"],"values":[]}]}]}"#;
        let want = "{\n    \"results\": [\n        {\n            \"statement_id\": 0,\n            \"series\": [\n                {\n                    \"name\": \"a,b:c\",\n                    \"columns\": [\n                        \"x\"\n                    ],\n                    \"values\": []\n                }\n            ]\n        }\n    ]\n}\n";
        assert_eq!(String::from_utf8(pretty(compact)).unwrap(), want);
    }
}
