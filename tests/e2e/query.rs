//! `/api/v3/query_sql`: formats, parameters, errors, metadata, shards, and reads racing
//! writes and crashes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::harness::{http, json, respond_typed, run, Server, PATIENCE};

/// Three points: every field type, a null in every field column, a tag value with an escaped
/// space, a string with escaped quotes, and a tag only some series have.
const FIXTURE: &str =
    "m,host=a,region=us\\ west f=1.5,i=-3i,u=7u,s=\"hi \\\"x\\\"\",b=true 1000000000\n\
m,host=b f=2.5,s=\"two\" 2000000000\n\
m,host=a,region=us\\ west i=5i 3000000000\n";

fn fixture_server(shards: usize) -> Server {
    let s = Server::start(shards);
    let (status, body) = s.post(
        "/api/v3/write_lp?db=q&precision=nanosecond",
        FIXTURE.as_bytes(),
    );
    assert_eq!(status, 204, "{body}");
    s
}

const ALL: &str = "SELECT * FROM m ORDER BY time";

#[test]
fn json_is_an_array_of_row_objects_without_nulls() {
    let s = fixture_server(1);
    let (status, ct, body) = s.query("q", ALL, "json");
    assert_eq!((status, ct.as_str()), (200, "application/json"), "{body}");
    assert_eq!(
        body,
        r#"[{"host":"a","region":"us west","b":true,"f":1.5,"i":-3,"s":"hi \"x\"","u":7,"time":"1970-01-01T00:00:01"},{"host":"b","f":2.5,"s":"two","time":"1970-01-01T00:00:02"},{"host":"a","region":"us west","i":5,"time":"1970-01-01T00:00:03"}]"#
    );
    let (_, _, empty) = s.query("q", "SELECT * FROM m WHERE host = 'none'", "json");
    assert_eq!(empty, "[]");
}

#[test]
fn jsonl_is_one_object_per_line() {
    let s = fixture_server(1);
    let (status, ct, body) = s.query("q", ALL, "jsonl");
    assert_eq!((status, ct.as_str()), (200, "application/jsonl"), "{body}");
    assert_eq!(
        body,
        "{\"host\":\"a\",\"region\":\"us west\",\"b\":true,\"f\":1.5,\"i\":-3,\"s\":\"hi \\\"x\\\"\",\"u\":7,\"time\":\"1970-01-01T00:00:01\"}\n\
         {\"host\":\"b\",\"f\":2.5,\"s\":\"two\",\"time\":\"1970-01-01T00:00:02\"}\n\
         {\"host\":\"a\",\"region\":\"us west\",\"i\":5,\"time\":\"1970-01-01T00:00:03\"}\n"
    );
}

#[test]
fn csv_has_a_header_and_quotes_where_needed() {
    let s = fixture_server(1);
    let (status, ct, body) = s.query("q", ALL, "csv");
    assert_eq!((status, ct.as_str()), (200, "text/csv"), "{body}");
    assert_eq!(
        body,
        "host,region,b,f,i,s,u,time\n\
         a,us west,true,1.5,-3,\"hi \"\"x\"\"\",7,1970-01-01T00:00:01\n\
         b,,,2.5,,two,,1970-01-01T00:00:02\n\
         a,us west,,,5,,,1970-01-01T00:00:03\n"
    );
    let (_, _, empty) = s.query("q", "SELECT host, time FROM m WHERE host = 'none'", "csv");
    assert_eq!(empty, "host,time\n");
}

#[test]
fn pretty_is_a_table() {
    let s = fixture_server(1);
    let (status, ct, body) = s.query("q", "SELECT host, f, time FROM m ORDER BY time", "pretty");
    assert_eq!(
        (status, ct.as_str()),
        (200, "text/plain; charset=utf-8"),
        "{body}"
    );
    assert_eq!(
        body,
        "+------+-----+---------------------+\n\
         | host | f   | time                |\n\
         +------+-----+---------------------+\n\
         | a    | 1.5 | 1970-01-01T00:00:01 |\n\
         | b    | 2.5 | 1970-01-01T00:00:02 |\n\
         | a    |     | 1970-01-01T00:00:03 |\n\
         +------+-----+---------------------+\n"
    );
}

#[test]
fn parquet_reads_back_with_the_same_rows() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let s = fixture_server(1);
    let resp = http()
        .get(&s.url("/api/v3/query_sql"))
        .query("db", "q")
        .query("q", ALL)
        .query("format", "parquet")
        .call()
        .unwrap();
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.apache.parquet")
    );
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);
    let names: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["host", "region", "b", "f", "i", "s", "u", "time"]);
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("hi \"x\""), "{text}");
    assert!(text.contains("us west"), "{text}");
}

#[test]
fn the_accept_header_chooses_the_format_and_format_wins_over_it() {
    let s = fixture_server(1);
    let get = |accept: &str, format: Option<&str>| {
        let mut req = http()
            .get(&s.url("/api/v3/query_sql"))
            .query("db", "q")
            .query("q", "SELECT host FROM m ORDER BY time LIMIT 1")
            .set("Accept", accept);
        if let Some(f) = format {
            req = req.query("format", f);
        }
        respond_typed(req.call())
    };
    assert_eq!(get("text/csv", None).2, "host\na\n");
    assert_eq!(get("application/jsonl", None).2, "{\"host\":\"a\"}\n");
    assert_eq!(get("*/*", None).2, "[{\"host\":\"a\"}]");
    assert_eq!(get("text/csv", Some("json")).2, "[{\"host\":\"a\"}]");
}

#[test]
fn post_takes_a_json_body_with_either_spelling() {
    let s = fixture_server(1);
    for body in [
        json!({"db": "q", "q": "SELECT count(*) AS n FROM m", "format": "jsonl"}),
        json!({"database": "q", "query_str": "SELECT count(*) AS n FROM m", "format": "jsonl"}),
    ] {
        let (status, body) = s.post_with(
            "/api/v3/query_sql",
            body.to_string().as_bytes(),
            &[("Content-Type", "application/json")],
        );
        assert_eq!((status, body.as_str()), (200, "{\"n\":3}\n"));
    }
}

#[test]
fn params_fill_named_placeholders() {
    let s = fixture_server(1);
    let body = json!({
        "db": "q",
        "q": "SELECT i FROM m WHERE host = $host AND i > $min ORDER BY time",
        "params": {"host": "a", "min": 0},
    });
    let (status, text) = s.post_with(
        "/api/v3/query_sql",
        body.to_string().as_bytes(),
        &[("Content-Type", "application/json")],
    );
    assert_eq!((status, text.as_str()), (200, "[{\"i\":5}]"));
    let (status, _, text) = respond_typed(
        http()
            .get(&s.url("/api/v3/query_sql"))
            .query("db", "q")
            .query("q", "SELECT f FROM m WHERE host = $h")
            .query("params", r#"{"h":"b"}"#)
            .call(),
    );
    assert_eq!((status, text.as_str()), (200, "[{\"f\":2.5}]"));
    // A placeholder without a value is the client's error.
    let (status, _, text) = s.query("q", "SELECT f FROM m WHERE host = $nope", "json");
    assert_eq!(status, 400, "{text}");
}

#[test]
fn errors_have_the_v3_shape_and_status() {
    let s = fixture_server(1);
    let (status, _, body) = s.query("missing", "SELECT 1", "json");
    assert_eq!(status, 404, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("missing"));

    let (status, _, body) = s.query("q", "SELEKT * FROM m", "json");
    assert_eq!(status, 400, "{body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("SELEKT"),
        "{body}"
    );

    let (status, _, body) = s.query("q", "SELECT * FROM nope", "json");
    assert_eq!(status, 400, "{body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("nope"),
        "{body}"
    );

    let (status, _, body) = s.query("q", "SELECT nope FROM m", "json");
    assert_eq!(status, 400, "{body}");

    let (status, _, body) = s.query("q", "CREATE TABLE x (a INT)", "json");
    assert_eq!(status, 400, "DDL is refused: {body}");

    let (status, _, body) = s.query("q", "SELECT 1", "xml");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown format"), "{body}");

    let (status, body) = s.get("/api/v3/query_sql?q=SELECT%201");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("'db'"), "{body}");
    let (status, body) = s.get("/api/v3/query_sql?db=q");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("'q'"), "{body}");

    let (status, body) = s.post_with(
        "/api/v3/query_sql",
        b"{not json",
        &[("Content-Type", "application/json")],
    );
    assert_eq!(status, 400, "{body}");

    let resp = http().put(&s.url("/api/v3/query_sql")).call();
    let (status, _, _) = respond_typed(resp);
    assert_eq!(status, 405);
}

#[test]
fn metadata_tables_and_show_commands() {
    let s = fixture_server(1);
    let (status, body) = s.post("/api/v3/write_lp?db=q", b"other v=1\n");
    assert_eq!(status, 204, "{body}");
    let tables = s.select(
        "q",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox' ORDER BY table_name",
    );
    assert_eq!(
        tables,
        vec![json!({"table_name": "m"}), json!({"table_name": "other"})]
    );

    let (status, _, body) = s.query("q", "SHOW TABLES", "json");
    assert_eq!(status, 200, "{body}");
    let names: BTreeSet<(String, String)> = json(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["table_schema"].as_str().unwrap().to_string(),
                r["table_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(names.contains(&("iox".into(), "m".into())), "{body}");
    assert!(
        names.contains(&("system".into(), "queries".into())),
        "{body}"
    );

    let cols = s.select(
        "q",
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'm' ORDER BY ordinal_position",
    );
    let cols: Vec<(String, String)> = cols
        .iter()
        .map(|c| {
            (
                c["column_name"].as_str().unwrap().into(),
                c["data_type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        cols,
        [
            ("host", "Utf8View"),
            ("region", "Utf8View"),
            ("b", "Boolean"),
            ("f", "Float64"),
            ("i", "Int64"),
            ("s", "LargeUtf8"),
            ("u", "UInt64"),
            ("time", "Timestamp(ns)"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    let (status, _, body) = s.query("q", "SHOW COLUMNS FROM m", "json");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body).as_array().unwrap().len(), 8, "{body}");
}

#[test]
fn system_queries_lists_recent_queries_per_database() {
    let s = fixture_server(1);
    let (status, body) = s.post("/api/v3/write_lp?db=other", b"x v=1\n");
    assert_eq!(status, 204, "{body}");
    s.select("q", "SELECT count(*) FROM m");
    let (status, _, _) = s.query("q", "SELECT broken FROM m", "json");
    assert_eq!(status, 400);
    s.select("other", "SELECT * FROM x");
    let rows = s.select(
        "q",
        "SELECT query_text, success, running, rows, end2end_duration IS NOT NULL AS timed \
         FROM system.queries WHERE NOT running ORDER BY id",
    );
    assert_eq!(
        rows,
        vec![
            json!({"query_text": "SELECT count(*) FROM m", "success": true, "running": false, "rows": 1, "timed": true}),
            json!({"query_text": "SELECT broken FROM m", "success": false, "running": false, "rows": 0, "timed": true}),
        ]
    );
}

#[test]
fn repeated_points_merge_last_write_wins_per_field() {
    let s = Server::start(2);
    let writes = [
        "cpu,host=a x=1,y=1 100\ncpu,host=b x=9 100\n",
        "cpu,host=a y=2 100\n",
        "cpu,host=a z=3 100\ncpu,host=a x=5 200\n",
    ];
    for w in writes {
        let (status, body) = s.post("/api/v3/write_lp?db=d&precision=nanosecond", w.as_bytes());
        assert_eq!(status, 204, "{body}");
    }
    let rows = s.select(
        "d",
        "SELECT host, x, y, z, CAST(time AS BIGINT) AS t FROM cpu ORDER BY host, t",
    );
    assert_eq!(
        rows,
        vec![
            json!({"host": "a", "x": 1.0, "y": 2.0, "z": 3.0, "t": 100}),
            json!({"host": "a", "x": 5.0, "t": 200}),
            json!({"host": "b", "x": 9.0, "t": 100}),
        ]
    );
    assert_eq!(s.count("d", "cpu"), 3);
    // Filters on merged rows see the merged values.
    let rows = s.select("d", "SELECT x FROM cpu WHERE host = 'a' AND y = 2");
    assert_eq!(rows, vec![json!({"x": 1.0})]);
}

#[test]
fn rows_spread_over_two_shards_come_back_once_each() {
    let s = Server::start(2);
    let lines: String = (0..2000)
        .map(|i| format!("t,host=h{} v={i}i {}\n", i % 200, 1_000 + i))
        .collect();
    let (status, body) = s.post(
        "/api/v3/write_lp?db=d&precision=nanosecond",
        lines.as_bytes(),
    );
    assert_eq!(status, 204, "{body}");
    // Both shards hold some of the series.
    let per_shard = buffered_rows_per_shard(&s);
    assert_eq!(per_shard.len(), 2, "{per_shard:?}");
    assert!(per_shard.iter().all(|&n| n > 0), "{per_shard:?}");
    assert_eq!(per_shard.iter().sum::<u64>(), 2000, "{per_shard:?}");
    // Several connections, so queries land on both shards.
    for _ in 0..6 {
        let rows = s.select("d", "SELECT v FROM t");
        let got: BTreeSet<i64> = rows.iter().map(|r| r["v"].as_i64().unwrap()).collect();
        assert_eq!(rows.len(), 2000);
        assert_eq!(got, (0..2000).collect());
    }
    let by_host = s.select(
        "d",
        "SELECT host, count(*) AS n FROM t GROUP BY host ORDER BY host",
    );
    assert_eq!(by_host.len(), 200);
    assert!(by_host.iter().all(|r| r["n"] == 10));
    // Pushed-down predicates prune without losing rows.
    let rows = s.select(
        "d",
        "SELECT v FROM t WHERE host IN ('h1', 'h2') AND time >= to_timestamp_nanos(1100) AND time < to_timestamp_nanos(1500) ORDER BY v",
    );
    let want: Vec<Value> = (100..500)
        .filter(|i| i % 200 == 1 || i % 200 == 2)
        .map(|i| json!({"v": i}))
        .collect();
    assert_eq!(rows, want);
    // The TSBS lastpoint shape: a join whose build side narrows the probe scan at run time.
    let last = s.select(
        "d",
        "SELECT c.host, c.v FROM t c JOIN (SELECT host, max(time) AS m FROM t GROUP BY host) l \
         ON c.host = l.host AND c.time = l.m ORDER BY c.v",
    );
    let want: Vec<Value> = (1800..2000)
        .map(|i| json!({"host": format!("h{}", i % 200), "v": i}))
        .collect();
    assert_eq!(last, want);
    // The scans' statistics (200 hosts against 2,000 rows) make the aggregate the join's
    // build side, and its dynamic filter reaches the probe side's scan.
    let (status, _, plan) = s.query(
        "d",
        "EXPLAIN SELECT c.* FROM t c JOIN (SELECT host, max(time) AS m FROM t GROUP BY host) l \
         ON c.host = l.host AND c.time = l.m",
        "jsonl",
    );
    assert_eq!(status, 200, "{plan}");
    assert!(plan.contains("mode=CollectLeft"), "{plan}");
    assert!(plan.contains("pushed=[DynamicFilter"), "{plan}");
}

#[test]
fn a_sort_by_time_is_left_out_while_the_buffers_hold_rows_in_time_order() {
    let s = Server::start(2);
    let write = |lines: String| {
        let (status, body) = s.post(
            "/api/v3/write_lp?db=d&precision=nanosecond",
            lines.as_bytes(),
        );
        assert_eq!(status, 204, "{body}");
    };
    let in_order = |rows: &[Value]| {
        let times: Vec<&str> = rows.iter().map(|r| r["time"].as_str().unwrap()).collect();
        times.windows(2).all(|w| w[0] <= w[1])
    };
    let plan = |sql: &str| {
        let (status, _, plan) = s.query("d", &format!("EXPLAIN {sql}"), "jsonl");
        assert_eq!(status, 200, "{plan}");
        plan
    };
    // Several series per shard, times rising (ties included).
    write(
        (0..3000)
            .map(|i| format!("t,host=h{} v={i}i {}\n", i % 50, 1_000 + i / 3))
            .collect(),
    );
    let sql = "SELECT time, v FROM t ORDER BY time";
    let p = plan(sql);
    assert!(!p.contains("SortExec"), "{p}");
    assert!(p.contains("SortPreservingMergeExec"), "{p}");
    let rows = s.select("d", sql);
    assert_eq!(rows.len(), 3000);
    assert!(in_order(&rows));
    // A descending order still sorts.
    assert!(plan("SELECT time, v FROM t ORDER BY time DESC").contains("SortExec"));
    // One row earlier than the ones before it: that shard's rows are no longer in order.
    write("t,host=h7 v=-1i 5\n".to_string());
    let p = plan(sql);
    assert!(p.contains("SortExec"), "{p}");
    let rows = s.select("d", sql);
    assert_eq!(rows.len(), 3001);
    assert!(in_order(&rows));
    assert_eq!(rows[0]["v"], -1);
}

/// Rows each shard's buffer holds, by shard index, as `/metrics` reports them (SQL answers
/// for the whole server and cannot say which shard holds what).
fn buffered_rows_per_shard(s: &Server) -> Vec<u64> {
    let (status, text) = s.get("/metrics");
    assert_eq!(status, 200, "{text}");
    let mut per_shard: Vec<(usize, u64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("shardline_buffer_rows{shard=\"")?;
            let (shard, value) = rest.split_once("\"} ")?;
            Some((shard.parse().unwrap(), value.parse::<f64>().unwrap() as u64))
        })
        .collect();
    per_shard.sort();
    per_shard.into_iter().map(|(_, n)| n).collect()
}

#[test]
fn large_results_stream_in_chunks() {
    let s = Server::start(1);
    let lines: String = (0..50_000)
        .map(|i| format!("big,k=a v={i}i {}\n", i + 1))
        .collect();
    let (status, body) = s.post(
        "/api/v3/write_lp?db=d&precision=nanosecond",
        lines.as_bytes(),
    );
    assert_eq!(status, 204, "{body}");
    let resp = http()
        .get(&s.url("/api/v3/query_sql"))
        .query("db", "d")
        .query("q", "SELECT v FROM big")
        .query("format", "jsonl")
        .call()
        .unwrap();
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    let text = resp.into_string().unwrap();
    assert_eq!(text.lines().count(), 50_000);
}

#[test]
fn queries_during_concurrent_writes_see_every_acknowledged_line() {
    let s = Arc::new(Server::start(2));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (s, acked, stop) = (s.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut batch = 0u64;
            while !stop.load(Ordering::Relaxed) && batch < 400 {
                let lines: String = (0..100)
                    .map(|i| format!("w,host=h{i} v={batch}i {}\n", batch * 1000 + 1))
                    .collect();
                let (status, body) = s.post(
                    "/api/v3/write_lp?db=d&precision=nanosecond",
                    lines.as_bytes(),
                );
                assert_eq!(status, 204, "{body}");
                batch += 1;
                acked.store(batch * 100, Ordering::SeqCst);
            }
        })
    };
    let mut last = 0;
    for _ in 0..40 {
        let before = acked.load(Ordering::SeqCst) as i64;
        let (status, _, body) = s.query("d", "SELECT count(*) AS n FROM w", "json");
        let after = acked.load(Ordering::SeqCst) as i64;
        if status != 200 && before == 0 {
            continue; // the table may not exist before the first write
        }
        assert_eq!(status, 200, "{body}");
        let n = json(&body)[0]["n"].as_i64().unwrap();
        assert!(n >= before, "acknowledged {before} lines, query saw {n}");
        assert!(n <= after + 100, "saw {n} lines, only {after} acknowledged");
        assert!(n >= last, "counts never go back: {last} then {n}");
        last = n;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(s.count("d", "w") as u64, acked.load(Ordering::SeqCst));
}

#[test]
fn after_kill_9_during_ingest_every_acknowledged_line_is_returned_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(dir.path(), 2, &[]);
    let url = s.url("/api/v3/write_lp?db=d&precision=nanosecond");
    // A writer sends each batch twice (a client retrying), so the log holds repeated points,
    // and keeps writing until the server dies under it.
    let acked = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let writer = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            for batch in 0u64.. {
                let lines: String = (0..50)
                    .map(|i| format!("k,host=h{i} v={batch}i {}\n", batch * 100 + 1))
                    .collect();
                for _ in 0..2 {
                    match http().post(&url).send_string(&lines) {
                        Ok(r) if r.status() == 204 => {}
                        _ => return,
                    }
                }
                let mut a = acked.lock().unwrap();
                for i in 0..50 {
                    a.insert((format!("h{i}"), batch * 100 + 1));
                }
            }
        })
    };
    s.wait_until("40 acknowledged batches", || {
        let n = acked.lock().unwrap().len();
        if n >= 50 * 40 {
            Ok(())
        } else if writer.is_finished() {
            panic!("the writer stopped after {n} acknowledged lines, before any kill")
        } else {
            Err(format!("{n} lines acknowledged"))
        }
    });
    s.kill9();
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let s = Server::start_in(dir.path(), 2, &[]);
    let rows = s.select("d", "SELECT host, CAST(time AS BIGINT) AS t FROM k");
    let got: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().to_string(),
                r["t"].as_u64().unwrap(),
            )
        })
        .collect();
    let distinct: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got.len(), distinct.len(), "no point is returned twice");
    let lost: Vec<_> = acked.difference(&distinct).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert_eq!(s.count("d", "k") as usize, distinct.len());
}

#[test]
fn the_cli_writes_and_queries() {
    let s = Server::start(1);
    let host = format!("http://{}", s.addr);
    let bin = env!("CARGO_BIN_EXE_shardline");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.lp");
    std::fs::write(&file, "cli,host=a v=1 1\ncli,host=b v=2 2\n").unwrap();
    let out = run(
        std::process::Command::new(bin)
            .args([
                "write",
                "--host",
                &host,
                "--database",
                "c",
                "--precision",
                "second",
            ])
            .arg(&file),
        PATIENCE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        std::process::Command::new(bin)
            .args([
                "query",
                "--host",
                &host,
                "--database",
                "c",
                "--format",
                "csv",
            ])
            .arg("SELECT host, v FROM cli ORDER BY host"),
        PATIENCE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "host,v\na,1.0\nb,2.0\n"
    );
    let out = run(
        std::process::Command::new(bin).args([
            "query",
            "--host",
            &host,
            "--database",
            "nope",
            "SELECT 1",
        ]),
        PATIENCE,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
}

#[test]
fn pushed_down_time_and_tag_filters_select_exactly() {
    let s = fixture_server(2);
    let cases = [
        ("time > to_timestamp_nanos(1000000000)", 2),
        ("time >= to_timestamp_nanos(1000000000)", 3),
        ("time < to_timestamp_nanos(3000000000)", 2),
        ("time <= to_timestamp_nanos(3000000000)", 3),
        ("time = to_timestamp_nanos(2000000000)", 1),
        ("to_timestamp_nanos(2000000000) <= time", 2),
        (
            "time BETWEEN to_timestamp_nanos(2000000000) AND to_timestamp_nanos(3000000000)",
            2,
        ),
        ("time > '1970-01-01T00:00:01.5Z'", 2),
        ("host = 'a' OR host = 'b'", 3),
        ("host IN ('b', 'nope')", 1),
        ("host = 'zzz'", 0),
        ("host <> 'a'", 1),
        ("host = 'a' OR region = 'us west'", 2),
        (
            "region = 'us west' AND time > to_timestamp_nanos(1000000000)",
            1,
        ),
        ("CAST(time AS BIGINT) <= 2000000000", 2),
        (
            "arrow_cast(time, 'Timestamp(Second, None)') <= to_timestamp_seconds(1)",
            1,
        ),
    ];
    for (filter, want) in cases {
        let rows = s.select("q", &format!("SELECT count(*) AS n FROM m WHERE {filter}"));
        assert_eq!(rows[0]["n"], want, "{filter}");
    }
}

/// `n` rows of table `big` in database `q`: one series per row, so a sort has work to do.
fn write_big(s: &Server, n: usize) {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!("big,h=h{i} v={i}i,s=\"row {i}\" {i}\n"));
    }
    let (status, text) = s.post("/api/v3/write_lp?db=q&precision=second", body.as_bytes());
    assert_eq!(status, 204, "{text}");
}

#[test]
fn a_query_past_the_memory_limit_answers_503_naming_the_flag() {
    let s = Server::start_with(1, &["--query-memory-limit", "16KiB"]);
    write_big(&s, 20_000);
    let (status, _, body) = s.query("q", "SELECT h, s, v FROM big ORDER BY s DESC, v", "json");
    assert_eq!(status, 503, "{body}");
    let error = json(&body)["error"].as_str().unwrap().to_string();
    assert!(error.contains("--query-memory-limit"), "{error}");
    // A query within the limit still runs.
    assert_eq!(s.count("q", "big"), 20_000);
}

#[test]
fn a_query_whose_client_hangs_up_is_cancelled_and_logged_so() {
    use std::io::{Read, Write};
    let s = Server::start(1);
    write_big(&s, 5_000);
    // 25 million rows: far more than any socket buffer holds, so the query is still
    // running when the client goes.
    let sql = "SELECT a.h, b.v FROM big a CROSS JOIN big b";
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    conn.set_read_timeout(Some(crate::harness::PATIENCE))
        .unwrap();
    let target = format!(
        "/api/v3/query_sql?db=q&format=jsonl&q={}",
        sql.replace(' ', "%20")
    );
    write!(conn, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = vec![0u8; 64 * 1024];
    conn.read_exact(&mut got).unwrap();
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got[..200])
    );
    drop(conn);
    let row = s.wait_until("the cancelled query in system.queries", || {
        let rows = s.select(
            "q",
            "SELECT success, error FROM system.queries \
             WHERE query_text LIKE '%CROSS JOIN%' AND NOT running",
        );
        rows.into_iter()
            .next()
            .ok_or_else(|| "still running (or not logged)".to_string())
    });
    assert_eq!(row["success"], json!(false), "{row}");
    let error = row["error"].as_str().unwrap_or_default();
    assert!(error.contains("cancelled"), "{row}");
}
