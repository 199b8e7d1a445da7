//! `DELETE` and `DROP SERIES` over v1 `/query`: the rows go from every query at once, from
//! the buffer and from Parquet files alike, stay gone after a crash and restart, and rows
//! written afterwards at the same times are seen; the files are later rewritten without them.

use crate::harness::{http, json, now_ns, respond_typed, Server};

fn v1(s: &Server, q: &str) -> (u16, String) {
    let (status, _, body) = respond_typed(
        http()
            .get(&s.url("/query"))
            .query("db", "d")
            .query("epoch", "s")
            .query("q", q)
            .call(),
    );
    (status, body)
}

/// `SELECT host, v FROM cpu` as "host@time=v" sorted.
fn cpu(s: &Server) -> Vec<String> {
    let (status, body) = v1(s, "SELECT host, v FROM cpu");
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    let mut out: Vec<String> = v["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| format!("{}@{}={}", r[1].as_str().unwrap(), r[0], r[2]))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn write(s: &Server, lines: &str) {
    let (status, body) = s.post("/write?db=d&precision=s", lines.as_bytes());
    assert_eq!(status, 204, "{body}");
}

fn parquet_files(s: &Server) -> i64 {
    let r = s.select("d", "SELECT count(*) AS n FROM system.parquet_files");
    r[0]["n"].as_i64().unwrap_or(0)
}

#[test]
fn deletes_hide_rows_everywhere_survive_a_crash_and_are_rewritten_away() {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--gen1-duration", "1m", "--snapshot-interval", "1ms"];
    let mut s = Server::start_in(tmp.path(), 2, &args);
    // Into Parquet files first, then more into the buffer.
    write(
        &s,
        "cpu,host=a v=1 1\ncpu,host=b v=2 2\ncpu,host=c v=3 3\nmem,host=a f=1 1\n",
    );
    s.wait_until("the first rows in Parquet", || {
        (parquet_files(&s) >= 2)
            .then_some(())
            .ok_or("no files yet".to_string())
    });
    write(&s, "cpu,host=a v=4 4\ncpu,host=b v=5 5\ncpu,host=c v=6 6\n");

    let ok = "{\"results\":[{\"statement_id\":0}]}\n";
    assert_eq!(
        v1(&s, "DELETE FROM cpu WHERE host = 'a' AND time < 4s"),
        (200, ok.to_string())
    );
    assert_eq!(
        cpu(&s),
        ["a@4=4", "b@2=2", "b@5=5", "c@3=3", "c@6=6"],
        "only host a before 4s went"
    );
    assert_eq!(
        v1(&s, "DROP SERIES FROM cpu WHERE host =~ /^b$/"),
        (200, ok.to_string())
    );
    assert_eq!(cpu(&s), ["a@4=4", "c@3=3", "c@6=6"]);
    let (_, series) = v1(&s, "SHOW SERIES FROM cpu");
    assert!(!series.contains("host=b"), "{series}");
    // Written after the deletion, at a deleted point: seen.
    write(&s, "cpu,host=a v=7 1\n");
    assert_eq!(cpu(&s), ["a@1=7", "a@4=4", "c@3=3", "c@6=6"]);
    // Other measurements are untouched.
    let (_, mem) = v1(&s, "SELECT f FROM mem");
    assert!(mem.contains("[1,1]"), "{mem}");

    // As 1.x refuses them.
    let (status, body) = v1(&s, "DELETE FROM cpu WHERE v = 1");
    assert_eq!(status, 200);
    assert!(
        body.contains("fields not supported in WHERE clause during deletion"),
        "{body}"
    );
    let (_, body) = v1(&s, "DROP SERIES FROM cpu WHERE time < 1s");
    assert!(
        body.contains("DROP SERIES doesn't support time in WHERE clause"),
        "{body}"
    );

    // Acknowledged deletions survive a crash.
    s.kill9();
    let s = Server::start_in(tmp.path(), 2, &args);
    assert_eq!(cpu(&s), ["a@1=7", "a@4=4", "c@3=3", "c@6=6"]);
    // In the background, files holding deleted rows are rewritten without them.
    s.wait_until("the files rewritten without the deleted rows", || {
        s.log_text()
            .contains("rewrote a file without its deleted rows")
            .then_some(())
            .ok_or("not yet".to_string())
    });
    assert_eq!(cpu(&s), ["a@1=7", "a@4=4", "c@3=3", "c@6=6"]);
    // Everything deleted: nothing left, and no error.
    assert_eq!(v1(&s, "DELETE WHERE time > 0"), (200, ok.to_string()));
    assert_eq!(cpu(&s), Vec::<String>::new());
    let (_, mem) = v1(&s, "SELECT f FROM mem");
    assert!(!mem.contains("series"), "{mem}");
}

/// The hosts `last_cache('cpu')` answers for, sorted.
fn cached(s: &Server) -> Vec<String> {
    let mut hosts: Vec<String> = s
        .select("d", "SELECT host FROM last_cache('cpu')")
        .iter()
        .map(|r| r["host"].as_str().unwrap().to_string())
        .collect();
    hosts.sort();
    hosts
}

#[test]
fn a_last_value_cache_forgets_a_dropped_series_and_keeps_the_rest() {
    let s = Server::start(2);
    let now = now_ns() / 1_000_000_000;
    write(
        &s,
        &format!("cpu,host=a v=1 {now}\ncpu,host=b v=2 {now}\ncpu,host=c v=3 {now}\n"),
    );
    let (status, body) = s.send(
        "POST",
        "/api/v3/configure/last_cache",
        Some(r#"{"db": "d", "table": "cpu"}"#),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(cached(&s), ["a", "b", "c"]);
    let (status, body) = v1(&s, "DROP SERIES FROM cpu WHERE host = 'b'");
    assert_eq!(
        (status, body.as_str()),
        (200, "{\"results\":[{\"statement_id\":0}]}\n")
    );
    // Rebuilt from what is left (now in Parquet, read back in the background): b never
    // comes back, a and c do.
    s.wait_until("the cache rebuilt without b", || {
        let hosts = cached(&s);
        assert!(!hosts.iter().any(|h| h == "b"), "{hosts:?}");
        (hosts == ["a", "c"])
            .then_some(())
            .ok_or(format!("{hosts:?}"))
    });
}
