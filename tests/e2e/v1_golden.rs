//! The v1 API against InfluxDB 1.6's own answers: `tests/v1/encodings.golden` (the JSON,
//! pretty, CSV, MessagePack and chunked answers to `tests/v1/requests.txt` over
//! `tests/v1/data.lp`) and `tests/v1/shell.golden` (what the 1.6 `influx` shell printed for
//! each run of `tests/v1/shell.txt`), both written by `tests/v1/regen.py` against a real 1.6.
//! Text is compared byte for byte; MessagePack value for value (1.x writes tag maps in Go's
//! random map order).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::clients;
use crate::harness::{http, run, Server, PATIENCE};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v1")
}

/// The blocks of a golden file: each a list of lines, the header block left out.
fn blocks(name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    text.split("\n\n")
        .filter(|b| !b.starts_with('#') && !b.trim().is_empty())
        .map(|b| b.lines().map(str::to_string).collect())
        .collect()
}

fn field<'a>(block: &'a [String], key: &str) -> &'a str {
    block
        .iter()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
        .unwrap_or_else(|| panic!("golden block without {key}: {block:?}"))
}

/// A text body as the golden file writes it: `| ` lines, and a note if the last lacks `\n`.
fn body_lines(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let complete = text.ends_with('\n');
    let text = if complete {
        &text[..text.len() - 1]
    } else {
        &text[..]
    };
    let mut out: Vec<String> = text
        .split('\n')
        .map(|l| {
            if l.is_empty() {
                "|".into()
            } else {
                format!("| {l}")
            }
        })
        .collect();
    if !complete {
        out.push("no newline at end".into());
    }
    out
}

/// One MessagePack value as regen.py's reader renders it (extension values as
/// `{"ext": type, "hex": payload}`), and the bytes after it.
fn unpack(data: &[u8]) -> (Value, &[u8]) {
    fn be(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
    }
    fn seq(n: usize, mut rest: &[u8]) -> (Value, &[u8]) {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let (v, r) = unpack(rest);
            out.push(v);
            rest = r;
        }
        (Value::Array(out), rest)
    }
    fn map(n: usize, mut rest: &[u8]) -> (Value, &[u8]) {
        let mut out = serde_json::Map::new();
        for _ in 0..n {
            let (k, r) = unpack(rest);
            let (v, r) = unpack(r);
            out.insert(k.as_str().expect("a string map key").to_string(), v);
            rest = r;
        }
        (Value::Object(out), rest)
    }
    fn text(n: usize, rest: &[u8]) -> (Value, &[u8]) {
        let (s, r) = rest.split_at(n);
        (Value::from(std::str::from_utf8(s).unwrap()), r)
    }
    fn ext(n: usize, rest: &[u8]) -> (Value, &[u8]) {
        let kind = rest[0] as i8;
        let payload: String = rest[1..1 + n].iter().map(|b| format!("{b:02x}")).collect();
        (
            serde_json::json!({"ext": kind, "hex": payload}),
            &rest[1 + n..],
        )
    }
    fn sized(width: usize, rest: &[u8]) -> (usize, &[u8]) {
        (be(&rest[..width]) as usize, &rest[width..])
    }
    let (b, rest) = data.split_first().expect("MessagePack value cut short");
    let b = *b;
    match b {
        0x00..=0x7f => (Value::from(b), rest),
        0x80..=0x8f => map(usize::from(b & 0x0f), rest),
        0x90..=0x9f => seq(usize::from(b & 0x0f), rest),
        0xa0..=0xbf => text(usize::from(b & 0x1f), rest),
        0xe0..=0xff => (Value::from(i64::from(b as i8)), rest),
        0xc0 => (Value::Null, rest),
        0xc2 => (Value::Bool(false), rest),
        0xc3 => (Value::Bool(true), rest),
        0xca => (
            Value::from(f64::from(f32::from_bits(be(&rest[..4]) as u32))),
            &rest[4..],
        ),
        0xcb => (Value::from(f64::from_bits(be(&rest[..8]))), &rest[8..]),
        0xcc..=0xcf => {
            let w = 1 << (b - 0xcc);
            (Value::from(be(&rest[..w])), &rest[w..])
        }
        0xd0..=0xd3 => {
            let w = 1 << (b - 0xd0);
            let shift = 64 - 8 * w as u32;
            (
                Value::from(((be(&rest[..w]) << shift) as i64) >> shift),
                &rest[w..],
            )
        }
        0xd4..=0xd8 => ext(1 << (b - 0xd4), rest),
        0xc7..=0xc9 => {
            let (n, r) = sized(1 << (b - 0xc7), rest);
            ext(n, r)
        }
        0xd9..=0xdb => {
            let (n, r) = sized(1 << (b - 0xd9), rest);
            text(n, r)
        }
        0xdc | 0xdd => {
            let (n, r) = sized(2 << (b - 0xdc), rest);
            seq(n, r)
        }
        0xde | 0xdf => {
            let (n, r) = sized(2 << (b - 0xde), rest);
            map(n, r)
        }
        other => panic!("MessagePack byte {other:#x} is not a value 1.x writes"),
    }
}

fn get(s: &Server, request: &Value) -> (u16, String, Vec<u8>) {
    let mut req = http().get(&s.url("/query"));
    for (k, v) in request["params"].as_object().unwrap() {
        req = req.query(k, v.as_str().unwrap());
    }
    if let Some(accept) = request.get("accept").and_then(Value::as_str) {
        req = req.set("Accept", accept);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET /query: {e}"),
    };
    let status = resp.status();
    let ctype = resp.header("Content-Type").unwrap_or("").to_string();
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    (status, ctype, body)
}

#[test]
fn encodings_match_influxdb_1_6() {
    let s = Server::start(2);
    let data = std::fs::read(dir().join("data.lp")).unwrap();
    let (status, body) = s.post("/write?db=v1&precision=ns", &data);
    assert_eq!(status, 204, "{body}");
    let golden = blocks("encodings.golden");
    assert!(golden.len() >= 25, "{} golden requests", golden.len());
    let mut wrong = Vec::new();
    for block in &golden {
        let line = field(block, "request");
        let request: Value = serde_json::from_str(line).unwrap();
        let (status, ctype, body) = get(&s, &request);
        let mut got = vec![
            format!("request: {line}"),
            format!("status: {status}"),
            format!("content-type: {ctype}"),
        ];
        let same = if ctype == "application/x-msgpack" {
            let (value, rest) = unpack(&body);
            assert!(
                rest.is_empty(),
                "{line}: bytes after the MessagePack answer"
            );
            let want: Value = serde_json::from_str(field(block, "decoded")).unwrap();
            got.push(format!("decoded: {value}"));
            block[..3] == got[..3] && value == want
        } else {
            got.extend(body_lines(&body));
            *block == got
        };
        if !same {
            wrong.push(format!(
                "want:\n{}\ngot:\n{}",
                block.join("\n"),
                got.join("\n")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} answers differ from 1.6's:\n\n{}",
        wrong.len(),
        golden.len(),
        wrong.join("\n\n")
    );
}

/// `YYYY/MM/DD HH:MM:SS ` that Go's log puts before a line.
fn without_log_date(line: &str) -> &str {
    let b = line.as_bytes();
    let dated = b.len() >= 20
        && b[..20].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'/',
            10 | 19 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if dated {
        &line[20..]
    } else {
        line
    }
}

#[test]
fn influx_shell_prints_as_against_influxdb_1_6() {
    let influx = clients::influx_shell();
    let s = Server::start(2);
    let port = s.addr.rsplit_once(':').unwrap().1.to_string();
    let golden = blocks("shell.golden");
    assert!(golden.len() >= 15, "{} golden runs", golden.len());
    let mut wrong = Vec::new();
    for block in &golden {
        let line = field(block, "args");
        let args: Vec<String> = serde_json::from_str::<Vec<String>>(line)
            .unwrap()
            .into_iter()
            .map(|a| match a.strip_prefix('@') {
                Some(file) => dir().join(file).display().to_string(),
                None => a,
            })
            .collect();
        let out = run(
            Command::new(&influx)
                .args(["-host", "127.0.0.1", "-port", &port])
                .args(&args),
            PATIENCE,
        );
        let mut got = vec![
            format!("args: {line}"),
            format!("exit: {}", out.status.code().unwrap_or(-1)),
        ];
        for (prefix, stream) in [("| ", &out.stdout), ("! ", &out.stderr)] {
            for l in String::from_utf8_lossy(stream).lines() {
                let l = without_log_date(l);
                got.push(if l.is_empty() {
                    prefix.trim_end().to_string()
                } else {
                    format!("{prefix}{l}")
                });
            }
        }
        if *block != got {
            wrong.push(format!(
                "want:\n{}\ngot:\n{}",
                block.join("\n"),
                got.join("\n")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} shell runs differ from 1.6's:\n\n{}",
        wrong.len(),
        golden.len(),
        wrong.join("\n\n")
    );
}

#[test]
fn msgpack_reader_reads_what_it_must() {
    // The reader the comparison rests on, on values of every width it decodes.
    let bytes = [
        0x83, 0xa1, b'a', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, // "a": 1.5
        0xa1, b'b', 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, // "b": -2
        0xa1, b'c', 0xc7, 12, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, // "c": ext 5
    ];
    let (v, rest) = unpack(&bytes);
    assert!(rest.is_empty());
    let want: BTreeMap<&str, Value> = [
        ("a", Value::from(1.5)),
        ("b", Value::from(-2)),
        (
            "c",
            serde_json::json!({"ext": 5, "hex": "000000000000000100000002"}),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(v, serde_json::to_value(want).unwrap());
}
