//! InfluxQL answers against InfluxDB 1.6's: the golden files in `tests/influxql/golden/`
//! (1.6's answers to the queries of `tests/influxql/queries.txt` over `data.lp`, written by
//! `tests/influxql/regen.py` against a real 1.6), replayed against Shardline through
//! `/api/v3/query_influxql`.
//!
//! The data goes to two shards, half of it persisted to Parquet before a restart and half
//! left in the write buffer after it, so every query reads both. An answer must equal 1.6's:
//! the same rows (measurement, group-by tags, time, values) in the same order, or the same
//! error text. A query whose block carries a `diff:` line is one where we differ on purpose
//! or do not yet do what 1.6 does; the line says which and why, and such a query is not
//! compared (or is compared with its `expect:` line when it has one). Floats compare to a
//! relative 1e-9: summation order differs between engines.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::harness::{http, Server};

/// One golden block.
#[derive(Debug)]
struct Case {
    file: String,
    query: String,
    status: u16,
    results: Vec<Value>,
    diff: Option<String>,
    expect: Option<Value>,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/influxql")
}

fn cases() -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(golden_dir().join("golden"))
        .expect("tests/influxql/golden")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "golden"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        for block in text.split("\n\n") {
            let mut case = Case {
                file: name.clone(),
                query: String::new(),
                status: 200,
                results: Vec::new(),
                diff: None,
                expect: None,
            };
            for line in block.lines() {
                if let Some(q) = line.strip_prefix("query: ") {
                    case.query = q.to_string();
                } else if let Some(s) = line.strip_prefix("status: ") {
                    case.status = s.parse().unwrap();
                } else if let Some(r) = line.strip_prefix("result: ") {
                    case.results.push(serde_json::from_str(r).unwrap());
                } else if let Some(d) = line.strip_prefix("diff: ") {
                    case.diff = Some(d.to_string());
                } else if let Some(e) = line.strip_prefix("expect: ") {
                    case.expect = Some(serde_json::from_str(e).unwrap());
                }
            }
            if !case.query.is_empty() {
                out.push(case);
            }
        }
    }
    out
}

/// An answer as comparable rows, or an error.
#[derive(Debug, PartialEq)]
enum Answer {
    Rows(Vec<Map<String, Value>>),
    Error(String),
}

/// 1.6's result for one statement as rows: each value row of each series, with the series'
/// measurement and tags; nulls and empty tag values left out (our rows leave them out too).
fn expected_rows(result: &Value) -> Answer {
    if let Some(e) = result.get("error").and_then(Value::as_str) {
        return Answer::Error(e.to_string());
    }
    let mut rows = Vec::new();
    for s in result["series"].as_array().into_iter().flatten() {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        let columns: Vec<&str> = s["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for values in s["values"].as_array().into_iter().flatten() {
            let mut row = Map::new();
            row.insert("iox::measurement".into(), Value::from(name));
            if let Some(tags) = s.get("tags").and_then(Value::as_object) {
                for (k, v) in tags {
                    if v.as_str().is_some_and(|v| !v.is_empty()) {
                        row.insert(k.clone(), v.clone());
                    }
                }
            }
            for (c, v) in columns.iter().zip(values.as_array().unwrap()) {
                if !v.is_null() {
                    row.insert(c.to_string(), v.clone());
                }
            }
            rows.push(row);
        }
    }
    Answer::Rows(rows)
}

/// Our answer (JSON lines) as rows, `time` as epoch nanoseconds.
fn our_rows(status: u16, body: &str) -> Answer {
    if status != 200 {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let msg = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or(body)
            .to_string();
        return Answer::Error(msg);
    }
    let mut rows = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let mut row: Map<String, Value> = serde_json::from_str(line).unwrap();
        if let Some(t) = row.get("time").and_then(Value::as_str) {
            let ns = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
                .unwrap_or_else(|e| panic!("time {t}: {e}"))
                .and_utc()
                .timestamp_nanos_opt()
                .unwrap();
            row.insert("time".into(), Value::from(ns));
        }
        row.retain(|_, v| !v.is_null());
        rows.push(row);
    }
    Answer::Rows(rows)
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return x == y;
            }
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

fn same(a: &Answer, b: &Answer) -> bool {
    match (a, b) {
        (Answer::Error(x), Answer::Error(y)) => x == y,
        (Answer::Rows(x), Answer::Rows(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(r, s)| {
                    r.len() == s.len()
                        && r.iter()
                            .all(|(k, v)| s.get(k).is_some_and(|w| same_value(v, w)))
                })
        }
        _ => false,
    }
}

fn load(s: &Server, lines: &[&str]) {
    for chunk in lines.chunks(500) {
        let body = chunk.join("\n");
        let (status, resp) = s.post(
            "/api/v3/write_lp?db=golden&precision=nanosecond",
            body.as_bytes(),
        );
        assert!(status == 204 || status == 200, "{status} {resp}");
    }
}

#[test]
fn answers_match_influxdb_1_6() {
    let data = std::fs::read_to_string(golden_dir().join("data.lp")).unwrap();
    let lines: Vec<&str> = data.lines().filter(|l| !l.trim().is_empty()).collect();
    let (files, buffer): (Vec<_>, Vec<_>) = lines.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let files: Vec<&str> = files.into_iter().map(|(_, l)| *l).collect();
    let buffer: Vec<&str> = buffer.into_iter().map(|(_, l)| *l).collect();

    let tmp = tempfile::tempdir().unwrap();
    // Half the points into Parquet files...
    let mut s = Server::start_in(tmp.path(), 2, &["--snapshot-interval", "100ms"]);
    load(&s, &files);
    s.wait_until("the first half persisted", || {
        let rows = s.select("golden", "SELECT count(*) AS n FROM system.parquet_files");
        let n = rows[0]["n"].as_i64().unwrap_or(0);
        let buffered = s.buffered_rows("golden").len();
        if n > 0 && buffered == 0 {
            Ok(())
        } else {
            Err(format!("{n} files, {buffered} rows still buffered"))
        }
    });
    s.stop();
    // ... and half left in the buffer after a restart.
    let mut s = Server::start_in(tmp.path(), 2, &[]);
    load(&s, &buffer);
    let cases = cases();
    assert!(cases.len() >= 200, "{} golden queries", cases.len());
    let fast = compare(&s, &cases);
    s.stop();
    // The same answers without the fast paths (everything through the evaluator).
    let s = Server::start_env(
        tmp.path(),
        2,
        &[],
        &[("SHARDLINE_INFLUXQL_NO_FAST_PATH", "1")],
    );
    let slow = compare(&s, &cases);
    for (label, (compared, failures)) in [("with fast paths", fast), ("evaluator only", slow)] {
        assert!(compared >= 200, "only {compared} golden queries compared");
        assert!(
            failures.is_empty(),
            "{label}: {} of {compared} answers differ from InfluxDB 1.6 (add a `diff:` line with the reason to a block only for a deliberate difference):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Runs every comparable case against `s`: how many were compared, and the differences.
fn compare(s: &Server, cases: &[Case]) -> (usize, Vec<String>) {
    let (mut compared, mut failures) = (0, Vec::new());
    for case in cases {
        if case.diff.is_some() && case.expect.is_none() {
            continue;
        }
        // Several statements in one query are the v1 `/query` API's; this endpoint runs one.
        if shardline_influxql::parse(case.query.trim()).is_ok_and(|s| s.len() > 1) {
            continue;
        }
        let expected = match &case.expect {
            Some(e) => expected_rows(e),
            None if case.status != 200 => {
                let e = case.results[0]["error"].as_str().unwrap_or("").to_string();
                Answer::Error(e)
            }
            None => match case.results.as_slice() {
                [one] => expected_rows(one),
                _ => continue,
            },
        };
        let url = s.url(&format!(
            "/api/v3/query_influxql?db=golden&format=jsonl&q={}",
            urlencode(&case.query)
        ));
        let (status, body) = match http().get(&url).call() {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{}: {e}", case.query),
        };
        let got = our_rows(status, &body);
        compared += 1;
        if !same(&expected, &got) {
            failures.push(format!(
                "{}: {}\n  1.6:  {}\n  ours: {}",
                case.file,
                case.query,
                short(&format!("{expected:?}")),
                short(&format!("{got:?}"))
            ));
        }
    }
    (compared, failures)
}

fn short(s: &str) -> String {
    if s.len() > 600 {
        format!("{}…", &s[..s.floor_char_boundary(600)])
    } else {
        s.to_string()
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The endpoint's own behaviour beyond 1.6's answers: POST bodies, bound parameters, the
/// error shapes and statuses, one statement per query, and the client's `--language`.
#[test]
fn endpoint_parameters_errors_and_the_client() {
    let s = Server::start(2);
    let body =
        "m,host=a v=1,s=\"x\" 1000000000\nm,host=b v=2 2000000000\nm,host=a v=3 3000000000\n";
    let (status, resp) = s.post(
        "/api/v3/write_lp?db=e&precision=nanosecond",
        body.as_bytes(),
    );
    assert_eq!(status, 204, "{resp}");

    // POST with a JSON body and a bound parameter.
    let (status, resp) = s.send(
        "POST",
        "/api/v3/query_influxql",
        Some(r#"{"db":"e","q":"SELECT sum(v) FROM m WHERE host = $h","params":{"h":"a"},"format":"jsonl"}"#),
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp.trim(),
        r#"{"iox::measurement":"m","time":"1970-01-01T00:00:00","sum":4.0}"#
    );
    // GROUP BY marks the tag column and orders series by it.
    let (status, resp) = s.get(
        "/api/v3/query_influxql?db=e&format=csv&q=SELECT%20count(v)%20FROM%20m%20GROUP%20BY%20host",
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp,
        "iox::measurement,time,host,count\nm,1970-01-01T00:00:00,a,2\nm,1970-01-01T00:00:00,b,1\n"
    );
    let err = |q: &str| {
        let (status, resp) = s.get(&format!("/api/v3/query_influxql?db=e&q={}", urlencode(q)));
        let v: Value = serde_json::from_str(&resp).unwrap_or_else(|_| panic!("{status} {resp}"));
        (status, v["error"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        err("SELECT FROM m"),
        (
            400,
            "error parsing query: found FROM, expected identifier, string, number, bool at line 1, char 8".into()
        )
    );
    assert_eq!(
        err("SELECT mean(s) FROM m"),
        (
            400,
            "unsupported mean iterator type: *query.stringInterruptIterator".into()
        )
    );
    assert_eq!(
        err("SELECT v FROM m WHERE host = $missing"),
        (400, "missing parameter: missing".into())
    );
    let (status, msg) = err("SELECT v FROM m; SELECT v FROM m");
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("one statement"), "{msg}");
    let (status, msg) = err("CREATE DATABASE x");
    assert_eq!(status, 501, "{msg}");
    assert!(msg.contains("CREATE DATABASE"), "{msg}");
    let (status, _) = s.get("/api/v3/query_influxql?db=nope&q=SELECT%20v%20FROM%20m");
    assert_eq!(status, 404);
    let (status, _) = s.get("/api/v3/query_influxql?db=e");
    assert_eq!(status, 400);

    // The client.
    let out = crate::harness::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_shardline")).args([
            "query",
            "--host",
            &s.url(""),
            "--database",
            "e",
            "--language",
            "influxql",
            "--format",
            "csv",
            "SHOW TAG VALUES WITH KEY = host",
        ]),
        std::time::Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "iox::measurement,key,value\nm,host,a\nm,host,b\n"
    );
}

/// A tag filter that keeps one series of many is read through the buffer's row index, and a
/// field comparison beside it is checked before the other columns are gathered. Both in SQL
/// and InfluxQL the answer must be exactly the points the data holds, including points
/// written twice (merged last-write-wins per field, so the prefilter must not judge them by
/// one write's values) and points lacking the compared field.
#[test]
fn selective_reads_with_field_comparisons_answer_every_passing_point() {
    let s = Server::start(2);
    let hosts = 96;
    let points = 120;
    let t0 = 1_700_000_000_000_000_000i64;
    // (host, i) -> (u, n) as finally written.
    let mut truth = std::collections::BTreeMap::new();
    let mut lines = Vec::new();
    for i in 0..points {
        for h in 0..hosts {
            let t = t0 + i as i64 * 10_000_000_000;
            let u = ((h * 31 + i * 17) % 100) as f64 + 0.5;
            let n = ((h + i * 13) % 50) as i64;
            if i % 7 == 3 {
                lines.push(format!("cpu,host=h{h} n={n}i {t}"));
                truth.insert((h, i), (None, n));
            } else {
                lines.push(format!("cpu,host=h{h} u={u},n={n}i {t}"));
                truth.insert((h, i), (Some(u), n));
            }
        }
    }
    // Host h5 writes some points again: a second write without `u` keeps the first `u`; one
    // that lowers `u` below the bound takes the point out of the answer.
    for i in (0..points).step_by(5) {
        let t = t0 + i as i64 * 10_000_000_000;
        let (u, _) = truth[&(5, i)];
        if i % 10 == 0 {
            lines.push(format!("cpu,host=h5 n=49i {t}"));
            truth.insert((5, i), (u, 49));
        } else {
            lines.push(format!("cpu,host=h5 u=1.5 {t}"));
            let n = truth[&(5, i)].1;
            truth.insert((5, i), (Some(1.5), n));
        }
    }
    for chunk in lines.chunks(2000) {
        let (status, resp) = s.post(
            "/api/v3/write_lp?db=sel&precision=nanosecond",
            chunk.join("\n").as_bytes(),
        );
        assert_eq!(status, 204, "{resp}");
    }
    for h in [0, 5, 17, 95] {
        type Keep = fn(Option<f64>, i64) -> bool;
        let conditions: [(&str, Keep); 4] = [
            ("u > 50", |u, _| u.is_some_and(|u| u > 50.0)),
            ("u <= 20.5", |u, _| u.is_some_and(|u| u <= 20.5)),
            ("n >= 40", |_, n| n >= 40),
            ("n = 7", |_, n| n == 7),
        ];
        for (cond, keep) in conditions {
            let want: Vec<(i64, Option<f64>, i64)> = (0..points)
                .filter_map(|i| {
                    let (u, n) = truth[&(h, i)];
                    keep(u, n).then_some((t0 + i as i64 * 10_000_000_000, u, n))
                })
                .collect();
            assert!(
                !want.is_empty(),
                "h{h} {cond}: the data should have answers"
            );
            let sql = format!(
                "SELECT CAST(time AS BIGINT) AS t, u, n FROM cpu WHERE host = 'h{h}' AND {cond} ORDER BY time"
            );
            let got: Vec<(i64, Option<f64>, i64)> = s
                .select("sel", &sql)
                .iter()
                .map(|r| {
                    (
                        r["t"].as_i64().unwrap(),
                        r["u"].as_f64(),
                        r["n"].as_i64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{sql}");
            let q = format!("SELECT u, n FROM cpu WHERE host = 'h{h}' AND {cond}");
            let (status, body) = s.get(&format!(
                "/api/v3/query_influxql?db=sel&format=jsonl&q={}",
                urlencode(&q)
            ));
            assert_eq!(status, 200, "{q}: {body}");
            let got: Vec<(Option<f64>, i64)> = body
                .lines()
                .map(|l| {
                    let r: Value = serde_json::from_str(l).unwrap();
                    (r["u"].as_f64(), r["n"].as_i64().unwrap())
                })
                .collect();
            let want: Vec<(Option<f64>, i64)> = want.iter().map(|&(_, u, n)| (u, n)).collect();
            assert_eq!(got, want, "{q}");
        }
    }
}
