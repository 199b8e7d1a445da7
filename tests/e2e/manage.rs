//! The management API (`/api/v3/configure/database|table`), retention periods and soft
//! deletes: statuses and bodies, what queries see at once, and files removed later.

use std::path::Path;

use serde_json::Value;

use crate::harness::{http, json, now_ns, Server};

const HOUR_NS: i64 = 3_600_000_000_000;

fn write(s: &Server, db: &str, body: &str) {
    let (status, resp) = s.post(&format!("/api/v3/write_lp?db={db}"), body.as_bytes());
    assert_eq!(status, 204, "{resp}");
}

/// `n` points of `table` at `at_ns`, `at_ns + 1s`, …
fn points(table: &str, at_ns: i64, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{table},host=h{} v={i}i {}\n",
                i % 10,
                at_ns + i as i64 * 1_000_000_000
            )
        })
        .collect()
}

fn error_of(body: &str) -> String {
    json(body)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"))
        .to_string()
}

/// The files `system.parquet_files` lists for `db`: (table, path, max_time).
fn files(s: &Server, db: &str) -> Vec<(String, String, i64)> {
    s.select(
        db,
        "SELECT table_name, path, max_time FROM system.parquet_files",
    )
    .iter()
    .map(|r| {
        (
            r["table_name"].as_str().unwrap().to_string(),
            r["path"].as_str().unwrap().to_string(),
            r["max_time"].as_i64().unwrap(),
        )
    })
    .collect()
}

fn on_disk(data: &Path, path: &str) -> bool {
    data.join("store").join(path).exists()
}

/// A probe for [`Server::wait_until`]: done once none of `paths` is on disk.
fn all_deleted(data: &Path, paths: &[String]) -> Result<(), String> {
    let left: Vec<&String> = paths.iter().filter(|p| on_disk(data, p)).collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("still on disk: {left:?}"))
    }
}

#[test]
fn database_endpoints_answer_with_the_spec_statuses() {
    let s = Server::start(2);
    let db = "/api/v3/configure/database";
    let (st, body) = s.send(
        "POST",
        db,
        Some(r#"{"db":"mydb","retention_period":"30d"}"#),
    );
    assert_eq!(st, 201, "{body}");
    let (st, body) = s.send("POST", db, Some(r#"{"db":"mydb"}"#));
    assert_eq!(st, 409, "{body}");
    assert!(error_of(&body).contains("already exists"), "{body}");
    let (st, body) = s.send("POST", db, Some(r#"{"db":"_bad"}"#));
    assert_eq!(st, 400, "{body}");
    assert!(
        error_of(&body).contains("start with a letter or a digit"),
        "{body}"
    );
    // '_' and '-' after the first character, as Core accepts; at most 64 characters.
    let (st, body) = s.send("POST", db, Some(r#"{"db":"9fleet_a-1"}"#));
    assert_eq!(st, 201, "{body}");
    let longest = "a".repeat(64);
    let (st, body) = s.send("POST", db, Some(&format!(r#"{{"db":"{longest}"}}"#)));
    assert_eq!(st, 201, "{body}");
    let (st, body) = s.send("POST", db, Some(&format!(r#"{{"db":"{longest}b"}}"#)));
    assert_eq!(st, 400, "{body}");
    assert!(error_of(&body).contains("at most 64 characters"), "{body}");
    let (st, body) = s.send("POST", db, Some(r#"{"db":"has space"}"#));
    assert_eq!(st, 400, "{body}");
    assert!(error_of(&body).contains("only letters, digits"), "{body}");
    for name in ["9fleet_a-1", longest.as_str()] {
        let (st, body) = s.send("DELETE", &format!("{db}?db={name}"), None);
        assert_eq!(st, 200, "{body}");
    }
    let (st, body) = s.send(
        "POST",
        db,
        Some(r#"{"db":"x","retention_period":"forever"}"#),
    );
    assert_eq!(st, 400, "{body}");
    assert!(error_of(&body).contains("retention period"), "{body}");
    let (st, body) = s.send("POST", db, Some("{not json"));
    assert_eq!(st, 400, "{body}");
    let (st, body) = s.send("POST", db, Some(r#"{"retention_period":"1d"}"#));
    assert_eq!(st, 400, "{body}");
    assert!(error_of(&body).contains("db"), "{body}");

    // Listing, in every format; writes create databases too.
    write(&s, "other", "m v=1i\n");
    let (st, body) = s.get(&format!("{db}?format=json"));
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        json(&body),
        serde_json::json!([
            {"iox::database": "mydb", "retention_period": "4w2d"},
            {"iox::database": "other"}
        ])
    );
    let (st, body) = s.get(&format!("{db}?format=csv"));
    assert_eq!(st, 200);
    assert_eq!(body, "iox::database,retention_period\nmydb,4w2d\nother,\n");
    let (st, body) = s.get(&format!("{db}?format=jsonl"));
    assert_eq!(st, 200);
    assert_eq!(body.lines().count(), 2, "{body}");
    let (st, body) = s.get(&format!("{db}?format=pretty"));
    assert_eq!(st, 200);
    assert!(body.contains("| mydb "), "{body}");
    let resp = http()
        .get(&s.url(&format!("{db}?format=parquet")))
        .call()
        .unwrap();
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.apache.parquet")
    );
    let mut parquet = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut parquet).unwrap();
    assert!(
        parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"),
        "not Parquet"
    );
    let (st, body) = s.get(&format!("{db}?format=xml"));
    assert_eq!(st, 400, "{body}");

    // Updating the retention period.
    let (st, body) = s.send(
        "PUT",
        db,
        Some(r#"{"db":"mydb","retention_period":"none"}"#),
    );
    assert_eq!(st, 200, "{body}");
    let (_, body) = s.get(db);
    assert_eq!(json(&body)[0], serde_json::json!({"iox::database": "mydb"}));
    let (st, _) = s.send(
        "PUT",
        &format!("{db}?db=mydb"),
        Some(r#"{"retention_period":"12h"}"#),
    );
    assert_eq!(st, 200);
    let (_, body) = s.get(db);
    assert_eq!(json(&body)[0]["retention_period"], "12h");
    let (st, body) = s.send("PUT", db, Some(r#"{"db":"nope","retention_period":"1d"}"#));
    assert_eq!(st, 404, "{body}");
    let (st, body) = s.send("PUT", db, Some(r#"{"db":"mydb"}"#));
    assert_eq!(st, 400, "{body}");

    // Deleting: gone from listings and queries at once; shown with show_deleted.
    let (st, body) = s.send("DELETE", &format!("{db}?db=other"), None);
    assert_eq!(st, 200, "{body}");
    let (st, body) = s.send("DELETE", &format!("{db}?db=other"), None);
    assert_eq!(st, 404, "{body}");
    let (st, body) = s.send("DELETE", db, None);
    assert_eq!(st, 400, "{body}");
    let (_, body) = s.get(db);
    assert_eq!(json(&body).as_array().unwrap().len(), 1, "{body}");
    let (_, body) = s.get(&format!("{db}?show_deleted=true"));
    let listed = json(&body);
    let deleted_of = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["iox::database"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))["deleted"]
            .clone()
    };
    assert_eq!(deleted_of("other"), true);
    assert_eq!(deleted_of("9fleet_a-1"), true);
    assert_eq!(deleted_of("mydb"), false);
    let (st, _, body) = s.query("other", "SELECT * FROM m", "json");
    assert_eq!(st, 404, "{body}");
    // The name can be used again, by a new, empty database.
    let (st, body) = s.send("POST", db, Some(r#"{"db":"other"}"#));
    assert_eq!(st, 201, "{body}");
    let (st, _, body) = s.query("other", "SHOW TABLES", "json");
    assert_eq!(st, 200, "{body}");
    assert!(!body.contains(r#""table_name":"m""#), "{body}");
    let (st, body) = s.send("DELETE", &format!("{db}?db=other"), None);
    assert_eq!(st, 200, "{body}");

    let (st, body) = s.send("PATCH", db, None);
    assert_eq!(st, 405, "{body}");
}

#[test]
fn table_endpoints_create_schemas_ahead_of_writes_and_delete_softly() {
    let s = Server::start(2);
    let t = "/api/v3/configure/table";
    let create = r#"{"db":"tdb","table":"cpu","tags":["host","region"],
        "fields":[{"name":"usage","type":"float64"},{"name":"count","type":"uint64"},
                  {"name":"note","type":"utf8"},{"name":"ok","type":"bool"},{"name":"n","type":"int64"}]}"#;
    let (st, body) = s.send("POST", t, Some(create));
    assert_eq!(st, 404, "the database must exist: {body}");
    let (st, _) = s.send(
        "POST",
        "/api/v3/configure/database",
        Some(r#"{"db":"tdb"}"#),
    );
    assert_eq!(st, 201);
    let (st, body) = s.send("POST", t, Some(create));
    assert_eq!(st, 201, "{body}");
    let (st, body) = s.send("POST", t, Some(create));
    assert_eq!(st, 409, "{body}");
    let bad_type = r#"{"db":"tdb","table":"x","tags":[],"fields":[{"name":"f","type":"decimal"}]}"#;
    let (st, body) = s.send("POST", t, Some(bad_type));
    assert_eq!(st, 400, "{body}");
    assert!(error_of(&body).contains("decimal"), "{body}");
    let (st, body) = s.send("POST", t, Some(r#"{"db":"tdb","table":"x"}"#));
    assert_eq!(st, 400, "tags are required: {body}");
    let (st, body) = s.send(
        "POST",
        t,
        Some(r#"{"db":"tdb","table":"x","tags":["time"]}"#),
    );
    assert_eq!(st, 400, "{body}");

    // The schema is there before any write, with the declared types.
    let cols = s.select(
        "tdb",
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_name = 'cpu' ORDER BY column_name",
    );
    let names: Vec<&str> = cols
        .iter()
        .map(|c| c["column_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["count", "host", "n", "note", "ok", "region", "time", "usage"]
    );
    assert_eq!(s.count("tdb", "cpu"), 0);
    // A write of the wrong type is refused; of the right type, accepted.
    let (st, body) = s.post("/api/v3/write_lp?db=tdb", b"cpu,host=a usage=1i\n");
    assert_eq!(st, 400, "{body}");
    write(&s, "tdb", "cpu,host=a usage=1.5\nmem,host=a used=3i\n");
    assert_eq!(s.count("tdb", "cpu"), 1);

    // Deleting the table hides it at once; the other table stays; the name is reusable.
    let (st, body) = s.send("DELETE", &format!("{t}?db=tdb&table=cpu"), None);
    assert_eq!(st, 200, "{body}");
    let (st, body) = s.send("DELETE", &format!("{t}?db=tdb&table=cpu"), None);
    assert_eq!(st, 404, "{body}");
    let (st, body) = s.send("DELETE", &format!("{t}?db=tdb"), None);
    assert_eq!(st, 400, "{body}");
    let (st, _, body) = s.query("tdb", "SELECT * FROM cpu", "json");
    assert_ne!(st, 200, "{body}");
    assert!(body.contains("cpu"), "{body}");
    let tables = s.select(
        "tdb",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox'",
    );
    assert_eq!(tables, vec![serde_json::json!({"table_name": "mem"})]);
    assert_eq!(s.count("tdb", "mem"), 1);
    // A new table of the old name starts empty, with the types its first write gives.
    write(&s, "tdb", "cpu,host=b usage=7i\n");
    let rows = s.select("tdb", "SELECT host, usage FROM cpu");
    assert_eq!(rows, vec![serde_json::json!({"host": "b", "usage": 7})]);

    // Table retention can be updated, and must name an existing table.
    let (st, body) = s.send(
        "PUT",
        t,
        Some(r#"{"db":"tdb","table":"cpu","retention_period":"1h"}"#),
    );
    assert_eq!(st, 200, "{body}");
    let (st, body) = s.send(
        "PUT",
        t,
        Some(r#"{"db":"tdb","table":"nope","retention_period":"1h"}"#),
    );
    assert_eq!(st, 404, "{body}");
}

#[test]
fn retention_hides_old_rows_at_once_and_later_deletes_their_files() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--snapshot-interval",
        "1ms",
        "--gen1-duration",
        "1m",
        "--retention-check-interval",
        "50ms",
        "--file-delete-delay",
        "0s",
        // Compaction would merge the old and new files of one day into one that is not
        // past retention as a whole; this test is about the files retention drops.
        "--no-compaction",
    ];
    // Three shards first, two after a restart: the third shard's files are then adopted by
    // another shard, and retention must reach them too.
    let mut s = Server::start_in(tmp.path(), 3, &args);
    let now = now_ns();
    let old = now - 3 * HOUR_NS;
    write(&s, "rdb", &points("m", old, 10));
    write(&s, "rdb", &points("m", now - 60_000_000_000, 10));
    write(&s, "rdb", &points("n", old, 5));
    s.wait_until("old and new rows in files", || {
        let f = files(&s, "rdb");
        if f.iter().any(|(t, _, max)| t == "m" && *max > now - HOUR_NS)
            && f.iter().any(|(t, _, max)| t == "m" && *max < now - HOUR_NS)
            && f.iter().any(|(t, _, _)| t == "n")
        {
            Ok(())
        } else {
            Err(format!("files {f:?}"))
        }
    });
    assert_eq!(s.count("rdb", "m"), 20);
    let old_files: Vec<String> = files(&s, "rdb")
        .into_iter()
        .filter(|(_, _, max)| *max < now - HOUR_NS)
        .map(|(_, p, _)| p)
        .collect();
    assert!(old_files.iter().all(|p| on_disk(tmp.path(), p)));
    assert!(
        old_files.iter().any(|p| p.contains("/shard-2-")),
        "{old_files:?}"
    );
    s.stop();
    let mut s = Server::start_in(tmp.path(), 2, &args);
    assert_eq!(s.count("rdb", "m"), 20);

    // A retention period hides what is older at once…
    let (st, body) = s.send(
        "PUT",
        "/api/v3/configure/database",
        Some(r#"{"db":"rdb","retention_period":"1h"}"#),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(s.count("rdb", "m"), 10);
    assert_eq!(s.count("rdb", "n"), 0);
    let rows = s.select("rdb", "SELECT min(time) AS t FROM m");
    assert_eq!(rows.len(), 1);
    // …and its files are dropped from the manifest, then deleted. With no delete delay a
    // shard deletes them in the same step that drops them, and its listing changes a moment
    // after the files go: wait for both.
    s.wait_until("the expired files unlisted and deleted", || {
        let listed = files(&s, "rdb");
        if listed.iter().any(|(_, _, max)| *max < now - HOUR_NS) {
            return Err(format!("expired files still listed: {listed:?}"));
        }
        all_deleted(tmp.path(), &old_files)
    });
    assert_eq!(s.count("rdb", "m"), 10);

    // Table retention overrides the database's, both ways.
    let (st, body) = s.send(
        "POST",
        "/api/v3/configure/table",
        Some(r#"{"db":"rdb","table":"t","tags":["host"],"retention_period":"30d"}"#),
    );
    assert_eq!(st, 201, "{body}");
    write(&s, "rdb", &points("t", old, 4));
    write(&s, "rdb", &points("t", now, 4));
    assert_eq!(s.count("rdb", "t"), 8);
    let (st, _) = s.send(
        "PUT",
        "/api/v3/configure/table",
        Some(r#"{"db":"rdb","table":"t","retention_period":"2h"}"#),
    );
    assert_eq!(st, 200);
    assert_eq!(s.count("rdb", "t"), 4);

    // The settings survive a restart.
    s.stop();
    let s = Server::start_in(tmp.path(), 2, &args);
    assert_eq!(s.count("rdb", "m"), 10);
    assert_eq!(s.count("rdb", "t"), 4);
    let (_, body) = s.get("/api/v3/configure/database");
    assert_eq!(
        json(&body),
        serde_json::json!([{"iox::database": "rdb", "retention_period": "1h"}])
    );
}

#[test]
fn deleted_tables_and_databases_vanish_at_once_and_their_files_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--snapshot-interval",
        "1ms",
        "--retention-check-interval",
        "50ms",
        "--delete-grace-period",
        "0s",
        "--file-delete-delay",
        "0s",
    ];
    let mut s = Server::start_in(tmp.path(), 2, &args);
    let now = now_ns();
    write(&s, "ddb", &points("a", now, 6));
    write(&s, "ddb", &points("b", now, 6));
    s.wait_until("both tables in files", || {
        let f = files(&s, "ddb");
        if f.iter().any(|(t, _, _)| t == "a") && f.iter().any(|(t, _, _)| t == "b") {
            Ok(())
        } else {
            Err(format!("files {f:?}"))
        }
    });
    let a_files: Vec<String> = files(&s, "ddb")
        .into_iter()
        .filter(|(t, _, _)| t == "a")
        .map(|(_, p, _)| p)
        .collect();

    let (st, body) = s.send("DELETE", "/api/v3/configure/table?db=ddb&table=a", None);
    assert_eq!(st, 200, "{body}");
    assert!(files(&s, "ddb").iter().all(|(t, _, _)| t == "b"));
    assert_eq!(s.count("ddb", "b"), 6);
    s.wait_until("the deleted table's files' removal", || {
        all_deleted(tmp.path(), &a_files)
    });
    // The name is free: a new table of it holds only what is written from now on.
    write(&s, "ddb", &points("a", now, 2));
    assert_eq!(s.count("ddb", "a"), 2);

    let b_files: Vec<String> = files(&s, "ddb").into_iter().map(|(_, p, _)| p).collect();
    let (st, body) = s.send("DELETE", "/api/v3/configure/database?db=ddb", None);
    assert_eq!(st, 200, "{body}");
    let (st, _, body) = s.query("ddb", "SELECT * FROM b", "json");
    assert_eq!(st, 404, "{body}");
    s.wait_until("the deleted database's files' removal", || {
        all_deleted(tmp.path(), &b_files)
    });
    write(&s, "ddb", &points("b", now, 1));
    assert_eq!(s.count("ddb", "b"), 1);
    let tables: Vec<Value> = s.select(
        "ddb",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox'",
    );
    assert_eq!(tables, vec![serde_json::json!({"table_name": "b"})]);

    // After a restart (WAL replay included) the deleted data stays gone.
    s.kill9();
    let s = Server::start_in(tmp.path(), 2, &args);
    assert_eq!(s.count("ddb", "b"), 1);
    let (st, _, _) = s.query("ddb", "SELECT * FROM a", "json");
    assert_ne!(st, 200);
}
