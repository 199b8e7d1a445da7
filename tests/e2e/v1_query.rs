//! The v1 `/query` API as InfluxDB 1.x answers it (the expected texts are 1.6's answers to
//! the same requests), `/ping` as 1.x clients need it, and influxdb-python driving both.

use crate::clients;
use crate::harness::{http, now_ns, respond_typed, run, Server, PATIENCE};

const DATA: &str = "cpu,host=a v=1,s=\"x\" 1000000000\ncpu,host=b v=2.5 2000000000\ncpu,host=a v=3 3000000000\nmem f=1i 1000\n";

fn v1(s: &Server, params: &[(&str, &str)]) -> (u16, String, String) {
    let mut req = http().get(&s.url("/query"));
    for (k, v) in params {
        req = req.query(k, v);
    }
    respond_typed(req.call())
}

fn loaded() -> Server {
    let s = Server::start(2);
    let (status, body) = s.post("/write?db=d1", DATA.as_bytes());
    assert_eq!(status, 204, "{body}");
    s
}

#[test]
fn answers_and_errors_as_1x() {
    let s = loaded();
    let (status, ct, body) = v1(
        &s,
        &[
            ("db", "d1"),
            ("q", "SELECT * FROM cpu; SELECT v FROM cpu GROUP BY host; SELECT * FROM nope; SELECT x FROM mem"),
        ],
    );
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    assert_eq!(
        body,
        concat!(
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","host","s","v"],"values":[["1970-01-01T00:00:01Z","a","x",1],["1970-01-01T00:00:02Z","b",null,2.5],["1970-01-01T00:00:03Z","a",null,3]]}]},"#,
            r#"{"statement_id":1,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","v"],"values":[["1970-01-01T00:00:01Z",1],["1970-01-01T00:00:03Z",3]]},{"name":"cpu","tags":{"host":"b"},"columns":["time","v"],"values":[["1970-01-01T00:00:02Z",2.5]]}]},"#,
            r#"{"statement_id":2},{"statement_id":3}]}"#,
            "\n"
        )
    );
    // Integers of the epoch unit.
    let (_, _, body) = v1(
        &s,
        &[
            ("db", "d1"),
            ("q", "SELECT v FROM cpu LIMIT 1"),
            ("epoch", "ms"),
        ],
    );
    assert_eq!(
        body,
        "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"cpu\",\"columns\":[\"time\",\"v\"],\"values\":[[1000,1]]}]}]}\n"
    );
    // Pretty: Go's MarshalIndent with four spaces.
    let (_, _, body) = v1(
        &s,
        &[("db", "d1"), ("q", "SHOW DATABASES"), ("pretty", "true")],
    );
    assert_eq!(
        body,
        "{\n    \"results\": [\n        {\n            \"statement_id\": 0,\n            \"series\": [\n                {\n                    \"name\": \"databases\",\n                    \"columns\": [\n                        \"name\"\n                    ],\n                    \"values\": [\n                        [\n                            \"d1\"\n                        ]\n                    ]\n                }\n            ]\n        }\n    ]\n}\n"
    );
    // Chunked: a line per series, SELECTs split at chunk_size, `partial` until the last.
    let (_, _, body) = v1(
        &s,
        &[
            ("db", "d1"),
            ("q", "SELECT * FROM cpu GROUP BY host"),
            ("chunked", "true"),
            ("chunk_size", "1"),
        ],
    );
    assert_eq!(
        body,
        concat!(
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","s","v"],"values":[["1970-01-01T00:00:01Z","x",1]],"partial":true}],"partial":true}]}"#,
            "\n",
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","s","v"],"values":[["1970-01-01T00:00:03Z",null,3]]}],"partial":true}]}"#,
            "\n",
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"b"},"columns":["time","s","v"],"values":[["1970-01-01T00:00:02Z",null,2.5]]}]}]}"#,
            "\n"
        )
    );
    // Statement errors are 200 with the statement's error; later statements do not run.
    let (status, _, body) = v1(&s, &[("q", "SELECT * FROM cpu")]);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "{\"results\":[{\"statement_id\":0,\"error\":\"database name required\"}]}\n"
    );
    let (_, _, body) = v1(
        &s,
        &[("db", "nodb"), ("q", "SELECT * FROM cpu; SHOW DATABASES")],
    );
    assert_eq!(
        body,
        "{\"results\":[{\"statement_id\":0,\"error\":\"database not found: nodb\"},{\"statement_id\":1,\"error\":\"not executed\"}]}\n"
    );
    // Whole-request errors.
    let (status, _, body) = v1(&s, &[("db", "d1")]);
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "{\"error\":\"missing required parameter \\\"q\\\"\"}\n"
        )
    );
    let (status, _, body) = v1(&s, &[("q", "SELEC")]);
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "{\"error\":\"error parsing query: found SELEC, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1\"}\n"
    );
    let (status, _, body) = v1(
        &s,
        &[
            ("db", "d1"),
            ("q", "SELECT v FROM cpu WHERE host = $h"),
            ("params", "{\"h\": 1"),
        ],
    );
    assert_eq!(status, 400, "{body}");
    // Bound parameters.
    let (_, _, body) = v1(
        &s,
        &[
            ("db", "d1"),
            ("q", "SELECT v FROM cpu WHERE host = $h AND v > $min"),
            ("params", r#"{"h":"a","min":2}"#),
            ("epoch", "s"),
        ],
    );
    assert!(body.contains("\"values\":[[3,3]]"), "{body}");
}

#[test]
fn post_forms_and_statements_that_change_things() {
    let s = loaded();
    // URL-encoded form, with `db` in the URL.
    let (status, body) = s.post_with(
        "/query?db=d1",
        b"q=CREATE+DATABASE+d2%3B+CREATE+DATABASE+d2%3B+SHOW+DATABASES",
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "{\"results\":[{\"statement_id\":0},{\"statement_id\":1},{\"statement_id\":2,\"series\":[{\"name\":\"databases\",\"columns\":[\"name\"],\"values\":[[\"d1\"],[\"d2\"]]}]}]}\n"
    );
    // Multipart, as `curl -F` sends it.
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nSHOW RETENTION POLICIES; DROP DATABASE d2; DROP DATABASE d2; SHOW DATABASES\r\n--XyZ\r\nContent-Disposition: form-data; name=\"db\"\r\n\r\nd1\r\n--XyZ--\r\n";
    let (status, body) = s.post_with(
        "/query",
        multipart.as_bytes(),
        &[("Content-Type", "multipart/form-data; boundary=XyZ")],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        concat!(
            r#"{"results":[{"statement_id":0,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","0s","168h0m0s",1,true]]}]},"#,
            r#"{"statement_id":1},{"statement_id":2},{"statement_id":3,"series":[{"name":"databases","columns":["name"],"values":[["d1"]]}]}]}"#,
            "\n"
        )
    );
    // Retention: the autogen policy is the database's retention period.
    let q = |q: &str| v1(&s, &[("db", "d1"), ("q", q)]).2;
    assert_eq!(
        q("CREATE DATABASE d3 WITH DURATION 30m"),
        "{\"results\":[{\"statement_id\":0,\"error\":\"retention policy duration must be at least 1h0m0s\"}]}\n"
    );
    assert_eq!(
        q("CREATE DATABASE d1 WITH DURATION 2d"),
        "{\"results\":[{\"statement_id\":0,\"error\":\"retention policy conflicts with an existing policy\"}]}\n"
    );
    assert_eq!(
        q("ALTER RETENTION POLICY autogen ON d1 DURATION 3d"),
        "{\"results\":[{\"statement_id\":0}]}\n"
    );
    assert!(q("SHOW RETENTION POLICIES").contains("[\"autogen\",\"72h0m0s\","));
    assert_eq!(
        q("ALTER RETENTION POLICY nope ON d1 DURATION 1d"),
        "{\"results\":[{\"statement_id\":0,\"error\":\"retention policy not found: nope\"}]}\n"
    );
    // DROP MEASUREMENT: gone from every answer.
    assert_eq!(q("DROP MEASUREMENT mem; SHOW MEASUREMENTS"), "{\"results\":[{\"statement_id\":0},{\"statement_id\":1,\"series\":[{\"name\":\"measurements\",\"columns\":[\"name\"],\"values\":[[\"cpu\"]]}]}]}\n");
    assert_eq!(
        q("SELECT * FROM mem"),
        "{\"results\":[{\"statement_id\":0}]}\n"
    );
}

#[test]
fn ping_as_each_client_expects() {
    let s = Server::start(1);
    // influxdb-python and the influx shell require 204 and read the version header.
    let r = http().get(&s.url("/ping")).call().unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.header("X-Influxdb-Version").is_some());
    // InfluxDB 3 Core's answer for whoever asks for JSON (or, as 1.x, `verbose`).
    for r in [
        http()
            .get(&s.url("/ping"))
            .set("Accept", "application/json")
            .call()
            .unwrap(),
        http().get(&s.url("/ping?verbose=true")).call().unwrap(),
    ] {
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    }
}

/// influxdb-python 5.3.2, the 1.x client, installed from PyPI by the test itself.
#[test]
fn influxdb_python_client() {
    let python = clients::python("requirements-v1.txt");
    let s = Server::start(2);
    let (host, port) = s.addr.rsplit_once(':').unwrap();
    let out = run(
        std::process::Command::new(python)
            .arg(clients::script("influxdb_python.py"))
            .args([host, port]),
        PATIENCE,
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "influxdb-python against the server failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
}

/// The series of a chunked answer put back together: consecutive lines of one statement and
/// series are one series; the `partial` flags say where one continues.
fn reassembled(chunked: &str) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = Vec::new();
    let mut continues = false;
    for line in chunked.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let result = &doc["results"][0];
        for s in result["series"].as_array().into_iter().flatten() {
            let mut s = s.clone();
            let partial = s
                .as_object_mut()
                .unwrap()
                .remove("partial")
                .is_some_and(|p| p == true);
            if continues {
                let last = out.last_mut().unwrap();
                let more = s["values"].as_array().unwrap().clone();
                last["values"].as_array_mut().unwrap().extend(more);
            } else {
                out.push(s);
            }
            continues = partial;
        }
    }
    out
}

#[test]
fn chunked_raw_answers_are_the_whole_answer_in_pieces() {
    let s = Server::start(2);
    let mut lines = String::new();
    for i in 0..300i64 {
        let host = ["a", "b", "c"][(i % 3) as usize];
        let extra = if i % 7 == 0 { ",note=\"x\"" } else { "" };
        lines.push_str(&format!(
            "cpu,host={host},dc=d{} v={i}{extra} {}\n",
            i % 2,
            1_000_000_000 + i * 1_000_000
        ));
    }
    lines.push_str("cpu v=-1 5000000000\n");
    let (status, body) = s.post("/write?db=d1", lines.as_bytes());
    assert_eq!(status, 204, "{body}");
    let queries = [
        "SELECT * FROM cpu",
        "SELECT v, host FROM cpu WHERE v > 100",
        "SELECT v FROM cpu GROUP BY host",
        "SELECT * FROM cpu GROUP BY * ORDER BY time DESC",
        "SELECT note, v * 2 FROM cpu GROUP BY dc",
        "SELECT v FROM cpu WHERE host = 'nope'",
    ];
    for q in queries {
        let (_, _, whole) = v1(&s, &[("db", "d1"), ("q", q), ("epoch", "ns")]);
        let whole: serde_json::Value = serde_json::from_str(&whole).unwrap();
        let want = whole["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for size in ["1", "7", "100", "100000"] {
            let (status, _, chunked) = v1(
                &s,
                &[
                    ("db", "d1"),
                    ("q", q),
                    ("epoch", "ns"),
                    ("chunked", "true"),
                    ("chunk_size", size),
                ],
            );
            assert_eq!(status, 200, "{q}: {chunked}");
            let n: usize = size.parse().unwrap();
            for line in chunked.lines() {
                let doc: serde_json::Value = serde_json::from_str(line).unwrap();
                for s in doc["results"][0]["series"].as_array().into_iter().flatten() {
                    assert!(s["values"].as_array().unwrap().len() <= n, "{q} by {size}");
                }
            }
            assert_eq!(
                reassembled(&chunked),
                want,
                "{q} in chunks of {size}:\n{chunked}"
            );
            let last: serde_json::Value =
                serde_json::from_str(chunked.lines().last().unwrap()).unwrap();
            assert!(
                last["results"][0].get("partial").is_none(),
                "{q}: the last chunk is not partial"
            );
        }
    }
}

#[test]
fn retention_policies_are_databases_db_slash_rp() {
    let s = Server::start(2);
    let ok = |params: &[(&str, &str)]| {
        let (status, _, body) = v1(&s, params);
        assert_eq!(status, 200, "{params:?}: {body}");
        body
    };
    let body = ok(&[(
        "q",
        "CREATE DATABASE d; CREATE RETENTION POLICY week ON d DURATION 7d REPLICATION 1",
    )]);
    assert_eq!(
        body,
        "{\"results\":[{\"statement_id\":0},{\"statement_id\":1}]}\n"
    );
    let now = now_ns();
    let (st, b) = s.post("/write?db=d&rp=week", format!("m v=1 {now}").as_bytes());
    assert_eq!(st, 204, "{b}");
    let (st, b) = s.post("/write?db=d&rp=autogen", format!("m v=2 {now}").as_bytes());
    assert_eq!(st, 204, "{b}");
    let values = |params: &[(&str, &str)]| {
        let body = ok(params);
        let doc = crate::harness::json(&body);
        doc["results"][0]["series"][0]["values"].to_string()
    };
    let q = "SELECT v FROM m";
    assert!(values(&[("db", "d"), ("q", q)]).ends_with(",2]]"));
    assert!(values(&[("db", "d"), ("rp", "week"), ("q", q)]).ends_with(",1]]"));
    assert!(values(&[("db", "d"), ("q", "SELECT v FROM \"d\".\"week\".\"m\"")]).ends_with(",1]]"));
    assert!(values(&[("db", "d"), ("q", "SELECT v FROM d.autogen.m")]).ends_with(",2]]"));
    assert!(
        values(&[("q", "SELECT v FROM \"d\".\"week\".m"), ("chunked", "true")]).ends_with(",1]]")
    );
    // The policy's database is Core's `d/week`, there for the v3 API too.
    assert_eq!(s.count("d/week", "m"), 1);

    let policies = ok(&[("q", "SHOW RETENTION POLICIES ON d")]);
    assert!(
        policies.contains(
            r#"["autogen","0s","168h0m0s",1,true],["week","168h0m0s","168h0m0s",1,false]"#
        ),
        "{policies}"
    );
    assert_eq!(
        ok(&[("q", "SHOW DATABASES")]),
        "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"databases\",\"columns\":[\"name\"],\"values\":[[\"d\"]]}]}]}\n"
    );
    ok(&[("q", "ALTER RETENTION POLICY week ON d DURATION 14d")]);
    assert!(ok(&[("q", "SHOW RETENTION POLICIES ON d")]).contains(r#"["week","336h0m0s""#));
    let body = ok(&[("db", "d"), ("rp", "nope"), ("q", q)]);
    assert!(body.contains("retention policy not found: nope"), "{body}");
    let body = ok(&[("q", "ALTER RETENTION POLICY nope ON d DURATION 14d")]);
    assert!(body.contains("retention policy not found: nope"), "{body}");
    let body = ok(&[(
        "q",
        "CREATE RETENTION POLICY week ON d DURATION 1d REPLICATION 1",
    )]);
    assert!(body.contains("retention policy already exists"), "{body}");

    ok(&[("q", "DROP RETENTION POLICY week ON d")]);
    assert!(!ok(&[("q", "SHOW RETENTION POLICIES ON d")]).contains("week"));
    let body = ok(&[("db", "d"), ("rp", "week"), ("q", q)]);
    assert!(body.contains("retention policy not found: week"), "{body}");

    ok(&[(
        "q",
        "CREATE RETENTION POLICY month ON d DURATION 30d REPLICATION 1",
    )]);
    ok(&[("q", "DROP DATABASE d")]);
    assert_eq!(
        ok(&[("q", "SHOW DATABASES")]),
        "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"databases\",\"columns\":[\"name\"]}]}]}\n"
    );
    let body = ok(&[("db", "d"), ("rp", "month"), ("q", q)]);
    assert!(body.contains("database not found: d/month"), "{body}");
}

#[test]
fn show_queries_and_kill_query() {
    use std::io::{Read, Write};
    let s = Server::start(1);
    for batch in 0..8i64 {
        let mut lines = String::new();
        for i in batch * 50_000..(batch + 1) * 50_000 {
            lines.push_str(&format!(
                "cpu,host=h{} v={i},w=\"{}\" {}\n",
                i % 10,
                "x".repeat(40),
                i + 1
            ));
        }
        let (st, b) = s.post("/write?db=d", lines.as_bytes());
        assert_eq!(st, 204, "{b}");
    }
    // A chunked answer its client does not read (400,000 rows, ~30 MB: more than loopback's
    // socket buffers hold): the query waits, running, for room.
    let mut slow = std::net::TcpStream::connect(&s.addr).unwrap();
    write!(
        slow,
        "GET /query?db=d&chunked=true&chunk_size=5&q=SELECT%20%2A%20FROM%20cpu HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let qid = s.wait_until("the query in SHOW QUERIES", || {
        let (_, _, body) = v1(&s, &[("q", "SHOW QUERIES")]);
        let doc = crate::harness::json(&body);
        let rows = doc["results"][0]["series"][0]["values"].clone();
        rows.as_array()
            .into_iter()
            .flatten()
            .find(|r| r[1] == "SELECT * FROM cpu")
            .map(|r| {
                assert_eq!((r[2].as_str(), r[4].as_str()), (Some("d"), Some("running")));
                r[0].as_i64().unwrap()
            })
            .ok_or(body)
    });
    let (_, _, body) = v1(&s, &[("q", &format!("KILL QUERY {qid}"))]);
    assert_eq!(body, "{\"results\":[{\"statement_id\":0}]}\n");
    // Reading again lets it see the kill: its answer ends with the statement's error.
    slow.set_read_timeout(Some(crate::harness::PATIENCE))
        .unwrap();
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let last_line = answer
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_default();
    assert_eq!(
        last_line,
        "{\"results\":[{\"statement_id\":0,\"error\":\"query killed\"}]}"
    );
    s.wait_until("the query gone from SHOW QUERIES", || {
        let (_, _, body) = v1(&s, &[("q", "SHOW QUERIES")]);
        if body.contains("SELECT * FROM cpu") {
            Err(body)
        } else {
            Ok(())
        }
    });
    let (_, _, body) = v1(&s, &[("q", "KILL QUERY 99999999")]);
    assert!(body.contains("no such query id: 99999999"), "{body}");
}

#[test]
fn show_databases_lists_the_databases_the_token_may_read() {
    use crate::auth::{admin, resource};
    let s = Server::start_with(1, &[crate::harness::AUTH_ON]);
    let adm = admin(&s);
    let ask = |token: &str, q: &str| -> (u16, String) {
        let r = http()
            .get(&s.url("/query"))
            .set("Authorization", &format!("Token {token}"))
            .query("q", q)
            .call();
        match r {
            Ok(resp) => (resp.status(), resp.into_string().unwrap()),
            Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
            Err(e) => panic!("transport error: {e}"),
        }
    };
    for db in ["a", "b", "c"] {
        let (st, body) = ask(&adm, &format!("CREATE DATABASE {db}"));
        assert_eq!(st, 200, "{body}");
    }
    let perm = |dbs: &[&str], actions: &[&str]| serde_json::json!([{"resource_type": "db", "resource_identifier": dbs, "actions": actions}]);
    let (read_a, _) = resource(&s, &adm, "read-a", perm(&["a"], &["read"]), None);
    let (write_b, _) = resource(&s, &adm, "write-b", perm(&["b"], &["write"]), None);
    let (read_all, _) = resource(&s, &adm, "read-all", perm(&["*"], &["read"]), None);
    let listed = |token: &str| {
        let (st, body) = ask(token, "SHOW DATABASES");
        assert_eq!(st, 200, "{body}");
        let doc = crate::harness::json(&body);
        doc["results"][0]["series"][0]["values"].to_string()
    };
    assert_eq!(listed(&adm), r#"[["a"],["b"],["c"]]"#);
    assert_eq!(listed(&read_all), r#"[["a"],["b"],["c"]]"#);
    assert_eq!(listed(&read_a), r#"[["a"]]"#);
    // As 1.x, a database the token may write is listed too.
    assert_eq!(listed(&write_b), r#"[["b"]]"#);
    let (none, _) = resource(&s, &adm, "write-z", perm(&["z"], &["write"]), None);
    assert_eq!(listed(&none), "null");
    // The v3 InfluxQL endpoint lists the same way.
    let v3 = |token: &str| {
        let r = http()
            .get(&s.url("/api/v3/query_influxql"))
            .set("Authorization", &format!("Bearer {token}"))
            .query("db", "a")
            .query("q", "SHOW DATABASES")
            .query("format", "jsonl")
            .call()
            .unwrap();
        r.into_string().unwrap()
    };
    let names = |body: String| -> Vec<String> {
        body.lines()
            .map(|l| {
                crate::harness::json(l)["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(names(v3(&read_a)), ["a"]);
    assert_eq!(names(v3(&read_all)), ["a", "b", "c"]);
    // influxdb-python, the token as its password (sent as `p`), lists the same.
    let python = clients::python("requirements-v1.txt");
    let (host, port) = s.addr.rsplit_once(':').unwrap();
    for (token, want) in [
        (&read_a, vec!["a"]),
        (&write_b, vec!["b"]),
        (&adm, vec!["a", "b", "c"]),
    ] {
        let out = run(
            std::process::Command::new(&python)
                .arg(clients::script("influxdb_python_databases.py"))
                .args([host, port, token.as_str()])
                .args(&want),
            PATIENCE,
        );
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "influxdb-python listing {want:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }
}
