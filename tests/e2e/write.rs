//! The write endpoints: parameters, responses, schema, bodies.

use std::io::Write;

use serde_json::json;

use crate::harness::{http, json, now_ns, Server, PATIENCE};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn v3_write_round_trips_every_type_and_escape() {
    let s = Server::start(2);
    let body = "m\\ 1,t\\ k=v\\,1,host=a f=1.5,i=-3i,u=7u,b=true,s=\"q \\\"x\\\" \\\\ y\" 1700000000000000000\n";
    assert_eq!(
        s.post(
            "/api/v3/write_lp?db=types&precision=nanosecond",
            body.as_bytes()
        ),
        (204, String::new())
    );
    let rows = s.select(
        "types",
        r#"SELECT "t k", host, f, i, u, b, s, CAST(time AS BIGINT) AS time FROM "m 1""#,
    );
    assert_eq!(
        rows,
        vec![json!({
            "t k": "v,1", "host": "a",
            "f": 1.5, "i": -3, "u": 7, "b": true, "s": "q \"x\" \\ y",
            "time": 1_700_000_000_000_000_000i64
        })]
    );
    // Each value kept its line-protocol type.
    let types = s.select(
        "types",
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_name = 'm 1' ORDER BY column_name",
    );
    assert_eq!(
        types,
        [
            ("b", "Boolean"),
            ("f", "Float64"),
            ("host", "Utf8View"),
            ("i", "Int64"),
            ("s", "LargeUtf8"),
            ("t k", "Utf8View"),
            ("time", "Timestamp(ns)"),
            ("u", "UInt64"),
        ]
        .map(|(c, t)| json!({"column_name": c, "data_type": t}))
    );
}

#[test]
fn precision_per_endpoint() {
    let s = Server::start(1);
    let cases: &[(&str, &str, i64)] = &[
        (
            "/api/v3/write_lp?db=p&precision=auto",
            "a v=1 1700000000",
            1_700_000_000_000_000_000,
        ),
        (
            "/api/v3/write_lp?db=p",
            "b v=1 1700000000123",
            1_700_000_000_123_000_000,
        ),
        (
            "/api/v3/write_lp?db=p&precision=microsecond",
            "c v=1 1700000000123456",
            1_700_000_000_123_456_000,
        ),
        (
            "/api/v3/write_lp?db=p&precision=second",
            "d v=1 -5",
            -5_000_000_000,
        ),
        (
            "/api/v2/write?bucket=p&precision=ms",
            "e v=1 1700000000123",
            1_700_000_000_123_000_000,
        ),
        (
            "/api/v2/write?db=p&org=ignored",
            "f v=1 1700000000123456789",
            1_700_000_000_123_456_789,
        ),
        (
            "/write?db=p&rp=&precision=h&consistency=any&u=x&p=y",
            "g v=1 2",
            7_200_000_000_000,
        ),
        ("/write?db=p&precision=m", "h v=1 3", 180_000_000_000),
        ("/write?db=p&precision=u", "i v=1 4", 4_000),
        ("/write?db=p&precision=n", "j v=1 5", 5),
    ];
    for (path, line, _) in cases {
        assert_eq!(s.post(path, line.as_bytes()).0, 204, "{path} {line}");
    }
    for (path, line, want) in cases {
        let table = &line[..1];
        let rows = s.select(
            "p",
            &format!("SELECT CAST(time AS BIGINT) AS t FROM {table}"),
        );
        assert_eq!(rows, vec![json!({ "t": want })], "{path} {line}");
    }
    for bad in [
        "/api/v3/write_lp?db=p&precision=fortnight",
        "/api/v2/write?bucket=p&precision=h",
        "/write?db=p&precision=x",
    ] {
        assert_eq!(s.post(bad, b"z v=1").0, 400, "{bad}");
    }
}

#[test]
fn lines_without_timestamp_get_server_time() {
    let s = Server::start(1);
    let before = now_ns();
    assert_eq!(
        s.post("/api/v3/write_lp?db=now", b"m v=1\nm,x=y v=2\n").0,
        204
    );
    let after = now_ns();
    let rows = s.select("now", "SELECT CAST(time AS BIGINT) AS t FROM m");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in rows {
        let t = r["t"].as_i64().unwrap();
        assert!(
            before <= t && t <= after,
            "{t} not within [{before}, {after}]"
        );
    }
}

#[test]
fn partial_writes_report_each_bad_line() {
    let s = Server::start(2);
    let body = "cpu,host=a v=1 1\n\ncpu,host=b v=oops 2\n# comment\ncpu v=1,v=2 3\ncpu,host=c v=3 4\ncpu,host=d 5\n";
    let (status, resp) = s.post("/api/v3/write_lp?db=part", body.as_bytes());
    assert_eq!(status, 400);
    let v = json(&resp);
    assert_eq!(v["error"], "partial write of line protocol occurred");
    let data = v["data"].as_array().unwrap();
    let got: Vec<(i64, &str)> = data
        .iter()
        .map(|d| {
            (
                d["line_number"].as_i64().unwrap(),
                d["original_line"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "cpu,host=b v=oops 2"),
            (5, "cpu v=1,v=2 3"),
            (7, "cpu,host=d 5")
        ]
    );
    assert!(data[1]["error_message"]
        .as_str()
        .unwrap()
        .contains("duplicate field"));
    assert!(
        data[2]["error_message"].as_str().unwrap().contains("field"),
        "{resp}"
    );
    assert_eq!(
        s.select("part", "SELECT host FROM cpu ORDER BY host"),
        vec![json!({"host": "a"}), json!({"host": "c"})],
        "the good lines are written"
    );
    assert_eq!(s.total_rows("part"), 2);
}

#[test]
fn partial_write_lists_at_most_100_lines() {
    let s = Server::start(1);
    let body: String = (0..250).map(|i| format!("bad{i}\n")).collect::<String>() + "ok v=1\n";
    let (status, resp) = s.post("/api/v3/write_lp?db=many", body.as_bytes());
    assert_eq!(status, 400);
    let v = json(&resp);
    assert_eq!(v["data"].as_array().unwrap().len(), 100);
    assert_eq!(v["data"][99]["line_number"], 100);
    assert_eq!(s.total_rows("many"), 1);
    assert_eq!(s.count("many", "ok"), 1);
}

#[test]
fn accept_partial_false_writes_nothing() {
    let s = Server::start(2);
    let body = b"cpu,host=a v=1 1\ncpu,host=b v=x 2\ncpu,host=c v=3 3\n";
    let (status, resp) = s.post("/api/v3/write_lp?db=strict&accept_partial=false", body);
    assert_eq!(status, 400);
    let v = json(&resp);
    assert_eq!(v["error"], "write of line protocol failed");
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["line_number"], 2);
    assert_eq!(s.total_rows("strict"), 0);
}

#[test]
fn v1_and_v2_reject_whole_batches_with_compat_errors() {
    let s = Server::start(1);
    for path in ["/write?db=compat", "/api/v2/write?bucket=compat"] {
        let (status, resp) = s.post(path, b"m v=1 1\nm v= 2\n");
        assert_eq!(status, 400, "{path}");
        let v = json(&resp);
        assert_eq!(v["code"], "invalid", "{path}");
        assert_eq!(v["line"], 2);
        assert!(v["message"].as_str().unwrap().contains("line 2"), "{resp}");
        assert!(v["op"].is_string() && v["err"].is_string());
    }
    assert_eq!(s.total_rows("compat"), 0);
    let (status, resp) = s.post("/write", b"m v=1");
    assert_eq!(status, 400);
    assert_eq!(json(&resp)["code"], "invalid");
    let (status, resp) = s.post("/api/v2/write", b"m v=1");
    assert_eq!(status, 400);
    assert!(json(&resp)["message"].as_str().unwrap().contains("bucket"));
}

#[test]
fn type_conflicts_name_the_column_and_both_types() {
    let s = Server::start(2);
    assert_eq!(
        s.post("/api/v3/write_lp?db=ty", b"cpu,host=a usage=1.5 1\n")
            .0,
        204
    );
    let (status, resp) = s.post(
        "/api/v3/write_lp?db=ty",
        b"cpu,host=a usage=2i 2\ncpu,usage=x v=1 3\ncpu host=\"s\" 4\n",
    );
    assert_eq!(status, 400);
    let v = json(&resp);
    assert_eq!(v["error"], "write of line protocol failed");
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        3,
        "every rejected line is listed: {resp}"
    );
    let msgs: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["error_message"].as_str().unwrap())
        .collect();
    assert!(
        msgs[0].contains("'usage'") && msgs[0].contains("float") && msgs[0].contains("int"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].contains("'usage'") && msgs[1].contains("float") && msgs[1].contains("tag"),
        "{msgs:?}"
    );
    assert!(
        msgs[2].contains("'host'") && msgs[2].contains("tag") && msgs[2].contains("string"),
        "{msgs:?}"
    );
    // The catalog is persisted: the type still holds after a restart.
    let dir = s.data_dir.clone();
    let mut s = s;
    s.stop();
    let s2 = Server::start_in(&dir, 1, &[]);
    let (status, _) = s2.post("/api/v3/write_lp?db=ty", b"cpu usage=\"str\" 5\n");
    assert_eq!(status, 400);
    assert_eq!(s2.total_rows("ty"), 1);
}

#[test]
fn database_names_are_validated() {
    let s = Server::start(1);
    for bad in ["_x", "a%20b", "/a", "a.b", &"x".repeat(65)] {
        let (status, resp) = s.post(&format!("/api/v3/write_lp?db={bad}"), b"m v=1");
        assert_eq!(status, 400, "{bad}");
        assert!(
            json(&resp)["error"]
                .as_str()
                .unwrap()
                .contains("database name"),
            "{resp}"
        );
    }
    assert_eq!(s.post("/api/v3/write_lp", b"m v=1").0, 400);
    assert_eq!(s.post("/api/v3/write_lp?db=ok_name-1", b"m v=1").0, 204);
}

#[test]
fn gzip_bodies_single_and_multi_member() {
    let s = Server::start(1);
    let single = gzip(b"g,k=1 v=1 1\ng,k=2 v=2 2\n");
    assert_eq!(
        s.post_with(
            "/api/v3/write_lp?db=gz",
            &single,
            &[("Content-Encoding", "gzip")]
        )
        .0,
        204
    );
    let mut multi = gzip(b"g,k=3 v=3 3\n");
    multi.extend(gzip(b"g,k=4 v=4 4\n"));
    assert_eq!(
        s.post_with(
            "/api/v2/write?bucket=gz",
            &multi,
            &[("Content-Encoding", "gzip")]
        )
        .0,
        204
    );
    assert_eq!(
        s.select("gz", "SELECT k, v FROM g ORDER BY k"),
        (1..=4)
            .map(|k| json!({"k": k.to_string(), "v": f64::from(k)}))
            .collect::<Vec<_>>()
    );
    assert_eq!(s.total_rows("gz"), 4);
    let (status, resp) = s.post_with(
        "/write?db=gz",
        b"not gzip at all",
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 400);
    assert!(json(&resp)["message"].as_str().unwrap().contains("gzip"));
    assert_eq!(
        s.post_with(
            "/api/v3/write_lp?db=gz",
            b"g v=1",
            &[("Content-Encoding", "br")]
        )
        .0,
        415
    );
}

#[test]
fn oversized_bodies_get_413_on_the_wire_and_after_inflation() {
    let s = Server::start_with(1, &["--max-http-request-size", "1KiB"]);
    let big = "m v=1\n".repeat(200); // 1200 bytes
    for path in [
        "/api/v3/write_lp?db=big",
        "/api/v2/write?bucket=big",
        "/write?db=big",
    ] {
        let (status, resp) = s.post(path, big.as_bytes());
        assert_eq!(status, 413, "{path}");
        let v = json(&resp);
        assert_eq!(v["code"], "invalid");
        assert_eq!(v["maxLength"], 1024);
    }
    // Small on the wire, too large inflated.
    let bomb = gzip(big.as_bytes());
    assert!(bomb.len() < 1024);
    let (status, resp) = s.post_with(
        "/api/v3/write_lp?db=big",
        &bomb,
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 413);
    assert!(json(&resp)["error"]
        .as_str()
        .unwrap()
        .contains("decompression"));
    assert_eq!(s.post("/api/v3/write_lp?db=big", b"m v=1\n").0, 204);
    assert_eq!(s.total_rows("big"), 1);
}

#[test]
fn non_utf8_bodies_are_rejected() {
    let s = Server::start(1);
    let (status, resp) = s.post("/api/v3/write_lp?db=u8", b"m v=\"\xff\xfe\"\n");
    assert_eq!(status, 400);
    assert!(json(&resp)["error"].as_str().unwrap().contains("UTF-8"));
}

#[test]
fn no_sync_writes_are_acknowledged_and_visible() {
    let s = Server::start(2);
    let body: String = (0..50).map(|i| format!("ns,h=h{i} v={i} {i}\n")).collect();
    assert_eq!(
        s.post("/api/v3/write_lp?db=ns&no_sync=true", body.as_bytes())
            .0,
        204
    );
    assert_eq!(s.total_rows("ns"), 50);
}

#[test]
fn series_spread_over_shards_are_all_kept() {
    let s = Server::start(2);
    let body: String = (0..400)
        .map(|i| format!("spread,host=h{i} v={i}i {i}\n"))
        .collect();
    assert_eq!(
        s.post(
            "/api/v3/write_lp?db=spread&precision=second",
            body.as_bytes()
        )
        .0,
        204
    );
    let rows = s.select(
        "spread",
        "SELECT host, v, CAST(time AS BIGINT) AS t FROM spread ORDER BY v",
    );
    let want: Vec<serde_json::Value> = (0..400)
        .map(|i| json!({"host": format!("h{i}"), "v": i, "t": i * 1_000_000_000i64}))
        .collect();
    assert_eq!(rows, want);
    assert_eq!(s.total_rows("spread"), 400);
}

#[test]
fn racing_writers_cannot_give_a_new_column_two_types() {
    let s = Server::start(2);
    let addr = s.addr.clone();
    // Each round, two writers race to create column `v{round}` on a fresh table: one as int,
    // one as string. Whatever the interleaving, the column gets one type; the loser's line is
    // rejected naming both types, and no stored row has the other type.
    let writers: Vec<_> = [("1i", "int"), ("\"s\"", "string")]
        .into_iter()
        .map(|(value, kind)| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut outcomes = Vec::new();
                for round in 0..20 {
                    let body = format!("race{round},w={kind} v={value} 1\n");
                    let url = format!("http://{addr}/api/v3/write_lp?db=race");
                    let (status, resp) = match http().post(&url).send_string(&body) {
                        Ok(r) => (r.status(), String::new()),
                        Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
                        Err(e) => panic!("{e}"),
                    };
                    outcomes.push((round, kind, status, resp));
                }
                outcomes
            })
        })
        .collect();
    let results: Vec<_> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    for round in 0..20 {
        let stored = s.select("race", &format!("SELECT w, v FROM race{round}"));
        assert_eq!(
            stored.len(),
            1,
            "exactly one writer wins round {round}: {stored:?}"
        );
        let winner = stored[0]["w"].as_str().unwrap();
        let winner_is_int = stored[0]["v"].is_i64();
        assert_eq!(
            winner_is_int,
            winner == "int",
            "round {round}: the stored value has its writer's type: {stored:?}"
        );
        for (r, kind, status, resp) in results.iter().filter(|(r, ..)| *r == round) {
            if *status == 400 {
                let v = json(resp);
                let msg = v["data"][0]["error_message"].as_str().unwrap();
                assert!(
                    msg.contains("'v'") && msg.contains("int") && msg.contains("string"),
                    "round {r}: {msg}"
                );
            } else {
                assert_eq!(*status, 204);
                assert_eq!(*kind, winner, "round {r}: the acknowledged write is stored");
            }
        }
        let accepted = results
            .iter()
            .filter(|(r, _, status, _)| *r == round && *status == 204)
            .count();
        assert_eq!(
            accepted, 1,
            "round {round}: one 204 (winner int: {winner_is_int})"
        );
    }
}

/// A client that sends a whole write and hangs up without waiting for the answer: the write
/// is applied whole (not cut off between its WAL append and the end of its apply).
#[test]
fn a_write_whose_client_hangs_up_is_applied_whole() {
    let s = Server::start(1);
    let lines = 50_000;
    let body: String = (0..lines)
        .map(|i| {
            format!(
                "hangup,host=h{} v={i}i {}\n",
                i % 997,
                1_700_000_000_000_000_000i64 + i
            )
        })
        .collect();
    let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
    c.set_write_timeout(Some(PATIENCE)).unwrap();
    write!(
        c,
        "POST /api/v3/write_lp?db=gone&precision=nanosecond HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(body.as_bytes()).unwrap();
    // Every byte of the request precedes the end of the stream, so the server reads it all.
    c.shutdown(std::net::Shutdown::Write).unwrap();
    drop(c);
    // The write's end is not observable from here; wait for the rows.
    s.wait_until(&format!("all {lines} rows of the abandoned write"), || {
        let (status, _, text) = s.query("gone", "SELECT count(*) AS n FROM hangup", "json");
        let n = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v[0]["n"].as_i64());
        match (status, n) {
            (200, Some(n)) if n == lines => Ok(()),
            (200, Some(n)) if n > lines => panic!("{n} rows of a {lines}-line write"),
            _ => Err(format!("{status} {text}")),
        }
    });
}
