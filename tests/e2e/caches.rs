//! Last-value and distinct-value caches: the configure endpoints' statuses, `last_cache()`
//! and `distinct_cache()` over several shards, expiry on a moved clock, backfill, restart.

use serde_json::{json, Value};

use crate::harness::{http, json, now_ns, Server};

const LVC: &str = "/api/v3/configure/last_cache";
const DVC: &str = "/api/v3/configure/distinct_cache";

fn write(s: &Server, db: &str, lines: &str) {
    let (status, body) = s.post(
        &format!("/api/v3/write_lp?db={db}&precision=second"),
        lines.as_bytes(),
    );
    assert_eq!(status, 204, "{body}");
}

/// `hosts` hosts in two regions, `points` points each at seconds 1..=points, usage = time.
fn cpu_lines(hosts: usize, points: usize) -> String {
    let mut out = String::new();
    for t in 1..=points {
        for h in 0..hosts {
            let region = if h % 2 == 0 { "eu" } else { "us" };
            out.push_str(&format!(
                "cpu,host=h{h:03},region={region} usage={t},idle={}i {t}\n",
                100 - t
            ));
        }
    }
    out
}

fn post_json(s: &Server, path: &str, body: Value) -> (u16, String) {
    s.send("POST", path, Some(&body.to_string()))
}

/// Creates a cache, which must be new (201).
fn create(s: &Server, path: &str, body: Value) {
    let (status, text) = post_json(s, path, body);
    assert_eq!(status, 201, "{text}");
}

fn error_of(body: &str) -> String {
    json(body)["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn last_cache_statuses_create_repeat_conflict_delete() {
    let s = Server::start(1);
    write(&s, "c", &cpu_lines(2, 1));

    let (status, body) = post_json(&s, LVC, json!({"db": "c", "table": "cpu"}));
    assert_eq!(status, 201, "{body}");
    let created = json(&body);
    assert_eq!(created["name"], "cpu_host_region_last_cache");
    assert_eq!(created["key_columns"], json!(["host", "region"]));
    assert_eq!(created["value_columns"], Value::Null, "all non-key columns");
    assert_eq!(
        (created["count"].clone(), created["ttl"].clone()),
        (json!(1), json!(14400))
    );

    // The same settings again: nothing to do.
    let (status, body) = post_json(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "key_columns": ["host", "region"], "count": 1, "ttl": 14400}),
    );
    assert_eq!((status, body.as_str()), (204, ""));
    // The same name with other settings: a conflict.
    let (status, body) = post_json(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "name": "cpu_host_region_last_cache", "count": 2}),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        error_of(&body).contains("already exists with other settings"),
        "{body}"
    );

    let refusals = [
        (
            json!({"db": "nope", "table": "cpu"}),
            404,
            "database 'nope' not found",
        ),
        (
            json!({"db": "c", "table": "nope"}),
            404,
            "table 'nope' not found",
        ),
        (
            json!({"db": "c", "table": "cpu", "key_columns": ["zz"]}),
            400,
            "column 'zz' not found",
        ),
        (
            json!({"db": "c", "table": "cpu", "key_columns": ["usage"]}),
            400,
            "is a float column",
        ),
        (
            json!({"db": "c", "table": "cpu", "name": "x", "count": 11}),
            400,
            "count must be between 1 and 10",
        ),
        (
            json!({"db": "c", "table": "cpu", "name": "x", "ttl": 0}),
            400,
            "ttl must be at least",
        ),
        (
            json!({"db": "c", "table": "cpu", "key_columns": ["host"], "value_columns": ["host"]}),
            400,
            "is a key column",
        ),
        (json!({"table": "cpu"}), 400, "missing field `db`"),
    ];
    for (req, want, text) in refusals {
        let (status, body) = post_json(&s, LVC, req.clone());
        assert_eq!(status, want, "{req}: {body}");
        assert!(error_of(&body).contains(text), "{req}: {body}");
    }

    let listed = s.select("c", "SELECT * FROM system.last_caches");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["key_column_names"], json!(["host", "region"]));
    assert_eq!(listed[0]["ttl"], 14400);

    let del = |q: &str| s.send("DELETE", &format!("{LVC}?{q}"), None);
    assert_eq!(del("db=c&table=cpu&name=cpu_host_region_last_cache").0, 200);
    let (status, body) = del("db=c&table=cpu&name=cpu_host_region_last_cache");
    assert_eq!(status, 404, "{body}");
    assert!(error_of(&body).contains("last cache 'cpu_host_region_last_cache' not found"));
    assert_eq!(del("db=c&table=cpu").0, 400);
    assert_eq!(s.get(LVC).0, 405);
    assert!(s.select("c", "SELECT * FROM system.last_caches").is_empty());
    let (status, _, body) = s.query("c", "SELECT * FROM last_cache('cpu')", "json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("table 'cpu' has no last cache"), "{body}");
}

#[test]
fn distinct_cache_statuses_create_repeat_conflict_delete() {
    let s = Server::start(1);
    write(&s, "c", &cpu_lines(2, 1));
    let req = json!({"db": "c", "table": "cpu", "columns": ["region", "host"]});
    let (status, body) = post_json(&s, DVC, req.clone());
    assert_eq!(status, 201, "{body}");
    let created = json(&body);
    assert_eq!(created["name"], "cpu_region_host_distinct_cache");
    assert_eq!(created["max_cardinality"], 100_000);
    assert_eq!(created["max_age"], 86_400);
    assert_eq!(post_json(&s, DVC, req).0, 204);
    let other = json!({"db": "c", "table": "cpu", "columns": ["region", "host"], "max_age": 60});
    let (status, body) = post_json(&s, DVC, other);
    assert_eq!(
        status, 400,
        "the spec's status for a different configuration: {body}"
    );
    for (req, want) in [
        (json!({"db": "c", "table": "cpu", "columns": []}), 400),
        (
            json!({"db": "c", "table": "cpu", "columns": ["usage"]}),
            400,
        ),
        (json!({"db": "c", "table": "cpu"}), 400),
        (json!({"db": "c", "table": "zz", "columns": ["host"]}), 404),
    ] {
        assert_eq!(post_json(&s, DVC, req.clone()).0, want, "{req}");
    }
    let listed = s.select("c", "SELECT * FROM system.distinct_caches");
    assert_eq!(listed[0]["column_names"], json!(["region", "host"]));
    assert_eq!(listed[0]["max_age_seconds"], 86_400);
    let path = format!("{DVC}?db=c&table=cpu&name=cpu_region_host_distinct_cache");
    assert_eq!(s.send("DELETE", &path, None).0, 200);
    assert_eq!(s.send("DELETE", &path, None).0, 404);
}

#[test]
fn lastpoint_over_two_shards_matches_the_table_and_uses_key_lookups() {
    let s = Server::start(2);
    // Written before the cache exists: the cache backfills them.
    write(&s, "c", &cpu_lines(40, 3));
    let (status, body) = post_json(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "key_columns": ["host"]}),
    );
    assert_eq!(status, 201, "{body}");
    // Newer points for some hosts after creation, an older one that must not win.
    write(
        &s,
        "c",
        "cpu,host=h005,region=us usage=50 50\ncpu,host=h006,region=eu usage=60 60\n",
    );
    write(&s, "c", "cpu,host=h006,region=eu usage=2 2\n");

    let cached = s.select(
        "c",
        "SELECT host, region, usage, idle, time FROM last_cache('cpu') ORDER BY host",
    );
    let table = s.select(
        "c",
        "SELECT host, region, usage, idle, time FROM cpu c WHERE time = \
         (SELECT max(time) FROM cpu d WHERE d.host = c.host) ORDER BY host",
    );
    assert_eq!(cached.len(), 40);
    assert_eq!(cached, table, "the cache answers as the table does");
    let h6 = &cached[6];
    assert_eq!(
        (h6["usage"].as_f64(), h6["time"].as_str()),
        (Some(60.0), Some("1970-01-01T00:01:00"))
    );
    assert!(
        h6.get("idle").is_none(),
        "the newest row has no idle: null, not an older value"
    );

    let some = s.select(
        "c",
        "SELECT host, usage FROM last_cache('cpu') WHERE host IN ('h001', 'h006', 'nope') ORDER BY host",
    );
    assert_eq!(
        some,
        vec![
            json!({"host": "h001", "usage": 3.0}),
            json!({"host": "h006", "usage": 60.0})
        ]
    );
    let one = s.select(
        "c",
        "SELECT usage FROM last_cache('cpu', 'cpu_host_last_cache') WHERE host = 'h005'",
    );
    assert_eq!(one, vec![json!({"usage": 50.0})]);
    // Other predicates still apply (DataFusion filters what the cache cannot look up).
    let n = s.select(
        "c",
        "SELECT count(*) AS n FROM last_cache('cpu') WHERE region = 'eu' AND usage > 2.5",
    );
    assert_eq!(n[0]["n"], 20);
    let (_, _, plan) = s.query(
        "c",
        "EXPLAIN SELECT * FROM last_cache('cpu') WHERE host = 'h001'",
        "json",
    );
    assert!(!plan.contains("BufferScan"), "no scan of the table: {plan}");
}

#[test]
fn count_keeps_the_newest_values_newest_first_and_keys_may_span_shards() {
    let s = Server::start(2);
    let (status, body) = post_json(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "key_columns": ["host"], "count": 3}),
    );
    assert_eq!(status, 404, "no table yet: {body}");
    write(&s, "c", "cpu,host=a,region=eu usage=0 1\n");
    let (status, body) = post_json(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "name": "three", "key_columns": ["host"], "value_columns": ["usage"], "count": 3}),
    );
    assert_eq!(status, 201, "{body}");
    write(&s, "c", "cpu,host=a,region=eu usage=5 5\ncpu,host=a,region=eu usage=3 3\ncpu,host=b,region=us usage=9 9\n");
    write(
        &s,
        "c",
        "cpu,host=a,region=eu usage=4 4\ncpu,host=a,region=eu usage=2 2\n",
    );
    let rows = s.select(
        "c",
        "SELECT * FROM last_cache('cpu', 'three') WHERE host = 'a'",
    );
    let times: Vec<&str> = rows.iter().map(|r| r["time"].as_str().unwrap()).collect();
    assert_eq!(
        times,
        [
            "1970-01-01T00:00:05",
            "1970-01-01T00:00:04",
            "1970-01-01T00:00:03"
        ]
    );
    let (_, _, csv) = s.query("c", "SELECT * FROM last_cache('cpu', 'three')", "csv");
    assert_eq!(
        csv.lines().next(),
        Some("host,usage,time"),
        "keys, values, time"
    );

    // Keyed by region only: hosts of one region live on different shards, and the
    // coordinator keeps each region's newest rows across them.
    let hosts: String = (0..20)
        .map(|h| format!("cpu,host=r{h},region=north usage={h} {}\n", 100 + h))
        .collect();
    write(&s, "c", &hosts);
    let (status, body) = post_json(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "name": "by_region", "key_columns": ["region"], "value_columns": ["host", "usage"], "count": 2}),
    );
    assert_eq!(status, 201, "{body}");
    let rows = s.select(
        "c",
        "SELECT region, host, time FROM last_cache('cpu', 'by_region') ORDER BY region, time DESC",
    );
    let north: Vec<&str> = rows
        .iter()
        .filter(|r| r["region"] == "north")
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(north, ["r19", "r18"], "{rows:?}");
    assert_eq!(
        rows.len(),
        2 + 2 + 1,
        "north 2, eu 2 (a at 5 and 4), us 1: {rows:?}"
    );
    let (status, _, body) = s.query("c", "SELECT * FROM last_cache('cpu')", "json");
    assert_eq!(status, 400);
    assert!(
        body.contains("has 2 last caches (three, by_region); name the one"),
        "{body}"
    );
}

#[test]
fn values_expire_on_the_servers_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start_env(tmp.path(), 2, &[], &[("SHARDLINE_TEST_CLOCK", "1")]);
    write(&s, "c", &cpu_lines(6, 1));
    let (status, body) = post_json(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "key_columns": ["host"], "ttl": 60}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_json(
        &s,
        DVC,
        json!({"db": "c", "table": "cpu", "columns": ["host"], "max_age": 120}),
    );
    assert_eq!(status, 201, "{body}");
    // Points timestamped now: written after creation, they arrive now.
    let now = now_ns() / 1_000_000_000;
    let fresh: String = (0..6)
        .map(|h| format!("cpu,host=h{h:03} usage=7 {now}\n"))
        .collect();
    write(&s, "c", &fresh);
    let lvc =
        |s: &Server| s.select("c", "SELECT count(*) AS n FROM last_cache('cpu')")[0]["n"].clone();
    let dvc = |s: &Server| {
        s.select("c", "SELECT count(*) AS n FROM distinct_cache('cpu')")[0]["n"].clone()
    };
    assert_eq!((lvc(&s), dvc(&s)), (json!(6), json!(6)));
    let advance = |secs: u32| {
        let (status, body) = s.post(&format!("/api/v3/debug/clock?advance_secs={secs}"), b"");
        assert_eq!(status, 200, "{body}");
    };
    advance(61);
    assert_eq!(
        (lvc(&s), dvc(&s)),
        (json!(0), json!(6)),
        "ttl 60 s passed, max_age 120 s not"
    );
    write(&s, "c", "cpu,host=h001 usage=8 5\n");
    assert_eq!(
        lvc(&s),
        json!(1),
        "a new value arrives now, whatever its timestamp"
    );
    advance(59);
    assert_eq!(
        (lvc(&s), dvc(&s)),
        (json!(1), json!(1)),
        "only h001 was seen in the last 120 s"
    );
    // Without the variable the endpoint does not exist.
    let plain = Server::start(1);
    assert_eq!(plain.post("/api/v3/debug/clock?advance_secs=1", b"").0, 404);
}

#[test]
fn distinct_values_are_unioned_across_shards_and_filtered() {
    let s = Server::start(2);
    write(&s, "c", &cpu_lines(30, 2));
    write(&s, "c", "cpu,host=x,region=mars,os=linux usage=1 1\n");
    let (status, body) = post_json(
        &s,
        DVC,
        json!({"db": "c", "table": "cpu", "columns": ["region", "host"]}),
    );
    assert_eq!(status, 201, "{body}");
    let regions = s.select("c", "SELECT region FROM distinct_cache('cpu')");
    assert_eq!(
        regions,
        vec![
            json!({"region": "eu"}),
            json!({"region": "mars"}),
            json!({"region": "us"})
        ]
    );
    let n = s.select("c", "SELECT count(*) AS n FROM distinct_cache('cpu')");
    assert_eq!(n[0]["n"], 31);
    let us = s.select(
        "c",
        "SELECT host FROM distinct_cache('cpu') WHERE region = 'us' AND host < 'h005'",
    );
    assert_eq!(us, vec![json!({"host": "h001"}), json!({"host": "h003"})]);
    // Backfilled, then fed: a new combination shows up.
    write(&s, "c", "cpu,host=y,region=venus usage=1 1\n");
    let n = s.select(
        "c",
        "SELECT count(*) AS n FROM distinct_cache('cpu', 'cpu_region_host_distinct_cache')",
    );
    assert_eq!(n[0]["n"], 32);
}

#[test]
fn caches_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(tmp.path(), 2, &[]);
    write(&s, "c", &cpu_lines(10, 2));
    create(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "key_columns": ["host"], "count": 2}),
    );
    create(
        &s,
        DVC,
        json!({"db": "c", "table": "cpu", "columns": ["region"]}),
    );
    write(&s, "c", "cpu,host=h001,region=us usage=30 30\n");
    let lvc_sql = "SELECT host, usage, time FROM last_cache('cpu') ORDER BY host, time DESC";
    let dvc_sql = "SELECT * FROM distinct_cache('cpu')";
    let before = (s.select("c", lvc_sql), s.select("c", dvc_sql));
    assert_eq!(before.0.len(), 20);
    s.kill9();
    let s = Server::start_in(tmp.path(), 2, &[]);
    assert_eq!((s.select("c", lvc_sql), s.select("c", dvc_sql)), before);
    assert_eq!(
        s.select("c", "SELECT name FROM system.last_caches"),
        vec![json!({"name": "cpu_host_last_cache"})]
    );
    // A recreated cache of a deleted name is a new, empty-then-backfilled cache.
    let path = format!("{LVC}?db=c&table=cpu&name=cpu_host_last_cache");
    assert_eq!(s.send("DELETE", &path, None).0, 200);
    create(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "key_columns": ["host"]}),
    );
    assert_eq!(s.select("c", lvc_sql).len(), 10);
}

/// Polls `sql` until it returns `want` (the caches fill from files in the background).
fn wait_for_rows(s: &Server, sql: &str, want: &[Value]) {
    s.wait_until(&format!("{sql} to return {want:?}"), || {
        let got = s.select("f", sql);
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });
}

#[test]
fn caches_backfill_from_persisted_files_when_created_and_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--snapshot-interval", "1ms", "--gen1-duration", "1m"];
    let mut s = Server::start_in(tmp.path(), 2, &args);
    let now = now_ns() / 1_000_000_000;
    let mut lines = String::new();
    for h in 0..20 {
        let region = ["eu", "us", "ap"][h % 3];
        for (k, ago) in [30, 20, 10].into_iter().enumerate() {
            lines.push_str(&format!(
                "cpu,host=h{h:02},region={region} usage={k},idle={h}i {}\n",
                now - ago
            ));
        }
    }
    // Older than a last-value cache's default ttl (4 hours): not wanted from a file.
    lines.push_str(&format!(
        "cpu,host=old,region=old usage=9 {}\n",
        now - 5 * 3600
    ));
    write(&s, "f", &lines);
    // Every row persisted, so the buffer holds none of them.
    let persisted = "SELECT sum(row_count) AS n FROM system.parquet_files WHERE table_name = 'cpu'";
    wait_for_rows(&s, persisted, &[json!({"n": 61})]);

    create(
        &s,
        LVC,
        json!({"db": "f", "table": "cpu", "key_columns": ["host"], "count": 2}),
    );
    create(
        &s,
        DVC,
        json!({"db": "f", "table": "cpu", "columns": ["region"]}),
    );
    let lvc_sql = "SELECT host, usage, idle FROM last_cache('cpu') ORDER BY host, time DESC";
    let want: Vec<Value> = (0..20)
        .flat_map(|h| {
            [2, 1]
                .map(|usage| json!({"host": format!("h{h:02}"), "usage": usage as f64, "idle": h}))
        })
        .collect();
    let dvc_sql = "SELECT region FROM distinct_cache('cpu') ORDER BY region";
    // The old row is within a distinct-value cache's default max age (1 day).
    let regions = ["ap", "eu", "old", "us"].map(|r| json!({ "region": r }));
    wait_for_rows(&s, lvc_sql, &want);
    wait_for_rows(&s, dvc_sql, &regions);
    // A shard logs its backfill after feeding the last rows, so the line may trail them.
    s.wait_until("the backfill's log line", || {
        if s.log_text().contains("caches backfilled from files") {
            Ok(())
        } else {
            Err("not logged yet".to_string())
        }
    });

    // After a restart the WAL holds none of these rows: the caches come back from the files.
    s.kill9();
    let s = Server::start_in(tmp.path(), 2, &args);
    wait_for_rows(&s, lvc_sql, &want);
    wait_for_rows(&s, dvc_sql, &regions);
}

/// Lines of `body` sorted, so answers whose row order is unspecified compare.
fn sorted_lines(body: &str) -> Vec<String> {
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn lookups_answered_without_a_plan_equal_the_planned_answers() {
    let s = Server::start(2);
    write(&s, "c", &cpu_lines(40, 3));
    write(&s, "c", "cpu,host=h007,region=us,os=linux usage=7 9\n");
    for body in [
        json!({"db": "c", "table": "cpu", "key_columns": ["host", "region"]}),
        json!({"db": "c", "table": "cpu", "name": "by_region", "key_columns": ["region"], "count": 3}),
    ] {
        let (status, text) = post_json(&s, LVC, body);
        assert_eq!(status, 201, "{text}");
    }
    let (status, text) = post_json(
        &s,
        DVC,
        json!({"db": "c", "table": "cpu", "columns": ["region", "host"]}),
    );
    assert_eq!(status, 201, "{text}");
    let (status, text) = post_json(
        &s,
        DVC,
        json!({"db": "c", "table": "cpu", "name": "os", "columns": ["os"]}),
    );
    assert_eq!(status, 201, "{text}");
    let lvc = "last_cache('cpu', 'cpu_host_region_last_cache')";
    let queries = [
        format!("SELECT * FROM {lvc}"),
        format!("SELECT * FROM {lvc} WHERE host IN ('h001', 'h007', 'nope')"),
        format!("SELECT usage, HOST FROM {lvc} WHERE host = 'h005' AND (region = 'us')"),
        format!("SELECT * FROM {lvc} WHERE 'h006' = host AND region = 'eu'"),
        format!("SELECT \"os\", time FROM {lvc} WHERE host IN ('h007') AND host = 'h007'"),
        "SELECT * FROM last_cache('cpu', 'by_region')".to_string(),
        "SELECT host, time FROM last_cache('cpu', 'by_region') WHERE region = 'eu'".to_string(),
        "SELECT * FROM distinct_cache('cpu', 'cpu_region_host_distinct_cache')".to_string(),
        "SELECT region FROM distinct_cache('cpu', 'cpu_region_host_distinct_cache')".to_string(),
        "SELECT host FROM distinct_cache('cpu', 'cpu_region_host_distinct_cache') WHERE region IN ('us', 'mars')".to_string(),
        "SELECT * FROM distinct_cache('cpu', 'os')".to_string(),
    ];
    for q in &queries {
        // The same query inside a subquery is planned by DataFusion.
        let planned = format!("SELECT * FROM ({q}) AS planned");
        for format in ["json", "csv", "jsonl"] {
            let (status, _, direct) = s.query("c", q, format);
            assert_eq!(status, 200, "{q}: {direct}");
            let (status, _, reference) = s.query("c", &planned, format);
            assert_eq!(status, 200, "{planned}: {reference}");
            match format {
                "json" => {
                    let mut a: Vec<String> = json(&direct)
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(Value::to_string)
                        .collect();
                    let mut b: Vec<String> = json(&reference)
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(Value::to_string)
                        .collect();
                    a.sort();
                    b.sort();
                    assert!(!a.is_empty() || q.contains("nope"), "{q}");
                    assert_eq!(a, b, "{q}");
                }
                _ => assert_eq!(
                    sorted_lines(&direct),
                    sorted_lines(&reference),
                    "{q} {format}"
                ),
            }
        }
    }
    // Parameters fill lookups as they fill planned queries.
    let (status, text) = s.send(
        "POST",
        "/api/v3/query_sql",
        Some(
            &json!({"db": "c", "q": format!("SELECT host, usage FROM {lvc} WHERE host = $h"), "params": {"h": "h003"}})
                .to_string(),
        ),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text), json!([{"host": "h003", "usage": 3.0}]));
    // Errors are DataFusion's, whichever path would have answered.
    for (q, message) in [
        ("SELECT nope FROM last_cache('cpu', 'by_region')", "nope"),
        ("SELECT * FROM last_cache('mem')", "table 'mem' not found"),
        (
            "SELECT * FROM last_cache('cpu', 'missing')",
            "no last cache named 'missing'",
        ),
        ("SELECT * FROM LAST_CACHE('cpu', 'by_region')", "LAST_CACHE"),
    ] {
        let (status, _, body) = s.query("c", q, "json");
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.contains(message), "{q}: {body}");
    }
}

#[test]
fn lookups_answered_on_a_shard_or_by_the_coordinator_agree_and_are_logged() {
    // Small answers are encoded by the shard that took the request, long ones by the
    // coordinator (from the batch the shard read); both must match a planned query.
    let s = Server::start(2);
    write(&s, "c", &cpu_lines(1500, 2));
    let (status, text) = post_json(
        &s,
        LVC,
        json!({"db": "c", "table": "cpu", "key_columns": ["host"]}),
    );
    assert_eq!(status, 201, "{text}");
    let all = "SELECT host, usage, idle, time FROM last_cache('cpu')";
    let one = "SELECT host, usage, idle, time FROM last_cache('cpu') WHERE host = 'h1234'";
    for (q, rows) in [(all, 1500), (one, 1)] {
        let planned = format!("SELECT * FROM ({q}) AS planned");
        // Parquet bytes depend on row order: compare the rows the two files say they hold.
        assert_eq!(parquet_rows(&s, q), rows, "{q}");
        assert_eq!(parquet_rows(&s, &planned), rows, "{planned}");
        for format in ["json", "csv", "jsonl"] {
            let (status, _, direct) = s.query("c", q, format);
            assert_eq!(status, 200, "{q} {format}: {direct}");
            let (status, _, reference) = s.query("c", &planned, format);
            assert_eq!(status, 200, "{planned} {format}: {reference}");
            match format {
                "json" => {
                    let mut a = json(&direct).as_array().unwrap().clone();
                    let mut b = json(&reference).as_array().unwrap().clone();
                    a.sort_by_key(Value::to_string);
                    b.sort_by_key(Value::to_string);
                    assert_eq!(a.len(), rows, "{q}");
                    assert_eq!(a, b, "{q}");
                }
                _ => assert_eq!(sorted_lines(&direct), sorted_lines(&reference), "{q}"),
            }
        }
    }
    let logged = s.select(
        "c",
        "SELECT query_text, success, rows FROM system.queries \
         WHERE NOT running AND query_text NOT LIKE '%planned%' ORDER BY id",
    );
    let expected: Vec<Value> = [(all, 1500), (one, 1)]
        .iter()
        .flat_map(|&(q, rows)| {
            std::iter::repeat_n(json!({"query_text": q, "success": true, "rows": rows}), 4)
        })
        .collect();
    assert_eq!(logged, expected);
}

/// The row count a `format=parquet` answer's footer gives.
fn parquet_rows(s: &Server, q: &str) -> usize {
    let resp = http()
        .get(&s.url("/api/v3/query_sql"))
        .query("db", "c")
        .query("q", q)
        .query("format", "parquet")
        .call()
        .expect("parquet query");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    let reader =
        parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(body))
            .expect("a parquet file");
    parquet::file::reader::FileReader::metadata(&reader)
        .file_metadata()
        .num_rows() as usize
}
