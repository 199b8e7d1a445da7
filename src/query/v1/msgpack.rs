//! The v1 `/query` answer in MessagePack (`Accept: application/x-msgpack`), the format
//! influxdb-python asks for by default: maps shaped as the JSON answer, with 1.x's
//! differences — every result has `series` (empty when there is none), a failed statement is
//! `{"error"}` alone, floats are always float64, and times without `epoch` are extension
//! type 5 (seconds as a big-endian u64, then nanoseconds as a big-endian u32), which
//! influxdb-python turns back into RFC 3339 strings.
//!
//! Writes go to a `Vec`, which cannot fail, so the encoder's I/O results are dropped.

use rmp::encode;

use super::{Epoch, Piece};
use crate::query::influxql::values::V;

fn str(out: &mut Vec<u8>, s: &str) {
    let _ = encode::write_str(out, s);
}

fn value(out: &mut Vec<u8>, v: &V) {
    let _ = match v {
        V::Null => encode::write_nil(out).map_err(|_| ()),
        V::F(f) => encode::write_f64(out, *f).map_err(|_| ()),
        V::I(i) => encode::write_sint(out, *i).map(|_| ()).map_err(|_| ()),
        V::U(u) => encode::write_uint(out, *u).map(|_| ()).map_err(|_| ()),
        V::S(s) => encode::write_str(out, s).map_err(|_| ()),
        V::B(b) => encode::write_bool(out, *b).map_err(|_| ()),
    };
}

fn time(out: &mut Vec<u8>, t: i64, epoch: Epoch) {
    match epoch.divisor() {
        Some(d) => {
            let _ = encode::write_sint(out, t / d);
        }
        None => {
            let _ = encode::write_ext_meta(out, 12, 5);
            out.extend_from_slice(&(t.div_euclid(1_000_000_000) as u64).to_be_bytes());
            out.extend_from_slice(&(t.rem_euclid(1_000_000_000) as u32).to_be_bytes());
        }
    }
}

/// The start of the answer: a map with `results`, an array of `results` results.
pub fn begin(out: &mut Vec<u8>, results: usize) {
    let _ = encode::write_map_len(out, 1);
    str(out, "results");
    let _ = encode::write_array_len(out, results as u32);
}

/// Appends one result.
pub fn result(out: &mut Vec<u8>, piece: &Piece<'_>, epoch: Epoch) {
    if let Some(e) = piece.error {
        let _ = encode::write_map_len(out, 1);
        str(out, "error");
        str(out, e);
        return;
    }
    let _ = encode::write_map_len(out, 2 + u32::from(piece.partial));
    str(out, "statement_id");
    let _ = encode::write_uint(out, piece.statement_id as u64);
    str(out, "series");
    let _ = encode::write_array_len(out, piece.series.len() as u32);
    for s in piece.series {
        let named = !s.series.measurement.is_empty();
        let tagged = !s.series.tags.is_empty();
        let len = 2 + u32::from(named) + u32::from(tagged) + u32::from(s.partial);
        let _ = encode::write_map_len(out, len);
        if named {
            str(out, "name");
            str(out, &s.series.measurement);
        }
        if tagged {
            str(out, "tags");
            let tags = s.sorted_tags();
            let _ = encode::write_map_len(out, tags.len() as u32);
            for (k, v) in tags {
                str(out, k);
                str(out, v);
            }
        }
        str(out, "columns");
        let columns: Vec<&str> = s.columns().collect();
        let _ = encode::write_array_len(out, columns.len() as u32);
        for c in columns {
            str(out, c);
        }
        str(out, "values");
        let _ = encode::write_array_len(out, s.rows.len() as u32);
        for (t, values) in s.rows {
            let _ = encode::write_array_len(out, (values.len() + usize::from(s.has_time)) as u32);
            if s.has_time {
                time(out, *t, epoch);
            }
            for v in values {
                value(out, v);
            }
        }
        if s.partial {
            str(out, "partial");
            let _ = encode::write_bool(out, true);
        }
    }
    if piece.partial {
        str(out, "partial");
        let _ = encode::write_bool(out, true);
    }
}

/// `{"error": message}` for a request refused as a whole.
pub fn error_body(message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = encode::write_map_len(&mut out, 1);
    str(&mut out, "error");
    str(&mut out, message);
    out
}
