//! HTTP behaviour: health and ping, methods, chunked bodies, 100-continue, keep-alive.

use std::io::Write;
use std::net::TcpStream;

use serde_json::json;

use crate::harness::{http, json, read_response, run, Server, PATIENCE};

#[test]
fn health_and_ping() {
    let s = Server::start(1);
    assert_eq!(s.get("/health"), (200, "OK".to_string()));
    assert_eq!(s.get("/api/v1/health"), (200, "OK".to_string()));
    let resp = http()
        .get(&s.url("/ping"))
        .set("Accept", "application/json")
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.header("X-Influxdb-Version").unwrap().starts_with("3."));
    assert_eq!(resp.header("X-Influxdb-Build"), Some("Shardline"));
    let v = json(&resp.into_string().unwrap());
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["revision"].is_string());
    let head = http().head(&s.url("/ping")).call().unwrap();
    assert_eq!(head.status(), 204);
    assert!(head.header("X-Influxdb-Version").is_some());
}

#[test]
fn wrong_method_and_unknown_path() {
    let s = Server::start(1);
    let r = http()
        .get(&s.url("/api/v3/write_lp?db=x"))
        .call()
        .unwrap_err();
    match r {
        ureq::Error::Status(405, resp) => assert_eq!(resp.header("Allow"), Some("POST")),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.post("/health", b"").0, 405);
    assert_eq!(s.get("/nope").0, 404);
}

#[test]
fn chunked_body_and_keep_alive() {
    let s = Server::start(1);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_write_timeout(Some(PATIENCE)).unwrap();
    let chunks = ["ck,h=a v=1 1\n", "ck,h=b v=2 2\nck,h=", "c v=3 3\n"];
    let mut req = String::from(
        "POST /api/v3/write_lp?db=chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for ch in chunks {
        req.push_str(&format!("{:x}\r\n{ch}\r\n", ch.len()));
    }
    req.push_str("0\r\n\r\n");
    c.write_all(req.as_bytes()).unwrap();
    let resp = read_response(&mut c);
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    // The same connection serves a second request.
    c.write_all(b"POST /api/v3/write_lp?db=chunk HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\nck,h=d v=4 4\n").unwrap();
    let resp = read_response(&mut c);
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    assert_eq!(
        s.select("chunk", "SELECT h FROM ck ORDER BY h"),
        ["a", "b", "c", "d"].map(|h| json!({ "h": h }))
    );
}

#[test]
fn expect_100_continue() {
    let s = Server::start_with(1, &["--max-http-request-size", "100"]);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_write_timeout(Some(PATIENCE)).unwrap();
    c.write_all(b"POST /api/v3/write_lp?db=cont HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nExpect: 100-continue\r\n\r\n").unwrap();
    let interim = read_response(&mut c);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    c.write_all(b"e v=1 1\n").unwrap();
    let resp = read_response(&mut c);
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    // Too large: refused before the body is sent, no 100.
    let resp = s.raw(b"POST /api/v3/write_lp?db=cont HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert_eq!(s.total_rows("cont"), 1);
    assert_eq!(s.count("cont", "e"), 1);
}

#[test]
fn too_little_locked_memory_fails_start_up_with_a_clear_message() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shardline"));
    cmd.args([
        "serve",
        "--shards",
        "2",
        "--http-bind",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir.path());
    // SAFETY: setrlimit is async-signal-safe; the closure touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64 << 10,
                rlim_max: 64 << 10,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(&mut cmd, PATIENCE);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RLIMIT_MEMLOCK") && err.contains("ulimit -l"),
        "{err}"
    );
}

#[test]
fn shutdown_finishes_a_request_in_flight() {
    let mut s = Server::start(2);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_write_timeout(Some(PATIENCE)).unwrap();
    let body = "sd,h=a v=1 1\nsd,h=b v=2 2\n";
    let head = format!(
        "POST /api/v3/write_lp?db=sd HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    // "100 Continue" means the handler is reading the body: the request is in flight.
    let interim = read_response(&mut c);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    // SAFETY: kill(2) on the server process this test started.
    unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
    c.write_all(body.as_bytes()).unwrap();
    let resp = read_response(&mut c);
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    s.wait_exit();
    // New connections are refused after shutdown, and the write survived.
    let s2 = Server::start_in(&s.data_dir, 1, &[]);
    assert_eq!(
        s2.select("sd", "SELECT h FROM sd ORDER BY h"),
        ["a", "b"].map(|h| json!({ "h": h }))
    );
}

#[test]
fn a_request_size_limit_beyond_one_wal_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        std::process::Command::new(env!("CARGO_BIN_EXE_shardline"))
            .args([
                "serve",
                "--shards",
                "1",
                "--http-bind",
                "127.0.0.1:0",
                "--max-http-request-size",
                "2GiB",
                "--data-dir",
            ])
            .arg(dir.path()),
        PATIENCE,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-http-request-size"));
}

#[test]
fn the_server_runs_without_transparent_huge_pages() {
    let s = Server::start(1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let thp = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .expect("the kernel reports THP_enabled");
    assert_eq!(thp.split_whitespace().nth(1), Some("0"), "{thp}");
}
