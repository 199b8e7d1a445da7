//! The bundled load generator (`shardline loadgen`) against a real Shardline: what it says it
//! wrote is what the server holds.

use std::process::Command;

use serde_json::Value;

use crate::harness::{run, Server, PATIENCE};

/// Runs `shardline loadgen ARGS --json F` and returns its exit code and report. A run is
/// some tens of thousands of lines: allowed several times the usual patience, as a debug
/// build on a busy machine sends them slowly.
fn loadgen(args: &[&str]) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_shardline"))
            .arg("loadgen")
            .args(args)
            .args(["--progress", "0", "--json"])
            .arg(&json),
        5 * PATIENCE,
    );
    let report = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "no report; stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&report).unwrap(),
    )
}

#[test]
fn every_line_the_load_generator_reports_is_counted_by_the_server() {
    let server = Server::start(2);
    let url = server.url("");
    let cases: [(&str, &[&str]); 3] = [
        ("cpu", &["cpu"]),
        (
            "devops",
            &[
                "cpu",
                "diskio",
                "disk",
                "kernel",
                "mem",
                "net",
                "nginx",
                "postgresl",
                "redis",
            ],
        ),
        ("iot", &["readings", "diagnostics"]),
    ];
    for (data, tables) in cases {
        let db = format!("lg_{data}");
        let (code, report) = loadgen(&[
            "write",
            "--url",
            &url,
            "--db",
            &db,
            "--data",
            data,
            "--hosts",
            "37",
            "--lines",
            "23456",
            "--batch-lines",
            "1000",
            "--connections",
            "4",
        ]);
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["lines_accepted"], 23_456, "{report}");
        assert_eq!(report["status"]["204"], 24, "{report}");
        let held: i64 = tables.iter().map(|t| server.count(&db, t)).sum();
        assert_eq!(
            held, 23_456,
            "{data}: the server's count(*) over {tables:?}"
        );
    }
}

#[test]
fn gzip_v1_and_v2_writes_and_a_query_mix_over_them() {
    let server = Server::start(1);
    let url = server.url("");
    for (endpoint, db) in [("v1", "lg_v1"), ("v2", "lg_v2")] {
        let (code, report) = loadgen(&[
            "write",
            "--url",
            &url,
            "--db",
            db,
            "--endpoint",
            endpoint,
            "--gzip",
            "--precision",
            "s",
            "--lines",
            "5000",
            "--batch-lines",
            "700",
            "--hosts",
            "100",
        ]);
        assert_eq!(code, 0, "{report}");
        assert_eq!(server.count(db, "cpu"), 5000);
    }
    // 5000 lines of 100 hosts span 50 ticks of 10 s.
    let (code, report) = loadgen(&[
        "query", "--url", &url, "--db", "lg_v1", "--hosts", "100", "--span", "500s", "--count",
        "36", "--mix", "all",
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["requests"], 36);
    assert_eq!(report["failed_requests"], 0, "{report}");
    assert_eq!(report["status"]["200"], 36);
}

#[test]
fn refused_writes_are_reported_and_fail_the_run() {
    let server = Server::start(1);
    // A field whose type conflicts with the table's makes every line of the data set refused.
    assert_eq!(
        server
            .post("/api/v3/write_lp?db=lg_bad", b"cpu usage_user=\"text\" 1")
            .0,
        204
    );
    let (code, report) = loadgen(&[
        "write",
        "--url",
        &server.url(""),
        "--db",
        "lg_bad",
        "--lines",
        "2000",
        "--batch-lines",
        "1000",
    ]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["lines_accepted"], 0);
    assert_eq!(report["lines_rejected"], 2000);
    assert_eq!(report["status"]["400"], 2, "{report}");
    let sample = report["error_samples"][0].as_str().unwrap();
    assert!(
        sample.starts_with("HTTP 400") && sample.contains("usage_user"),
        "{sample}"
    );
}
