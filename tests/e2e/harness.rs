//! Starting and stopping a real server, and small HTTP helpers.
#![allow(unreachable_pub)] // a test-binary module: `pub` here means "for the other test modules"

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Put in a server's extra arguments to start it with authentication on (the default of a
/// real server; the other tests run without it).
pub const AUTH_ON: &str = "<auth-on>";

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl Server {
    /// A server with a fresh data directory.
    pub fn start(shards: usize) -> Server {
        Server::start_with(shards, &[])
    }

    pub fn start_with(shards: usize, extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = Server::start_in(tmp.path(), shards, extra);
        s._tmp = Some(tmp);
        s
    }

    /// A server on an existing data directory (restarts).
    pub fn start_in(data_dir: &Path, shards: usize, extra: &[&str]) -> Server {
        Server::start_env(data_dir, shards, extra, &[])
    }

    /// As [`Server::start_in`], with extra environment variables. Authentication is off
    /// (`--without-auth`) unless `extra` asks for it with [`AUTH_ON`].
    pub fn start_env(
        data_dir: &Path,
        shards: usize,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let auth_on = extra.contains(&AUTH_ON);
        let extra: Vec<&str> = extra.iter().copied().filter(|a| *a != AUTH_ON).collect();
        let extra = &extra[..];
        let port_file = data_dir.join(format!("port-{}", std::process::id()));
        let _ = std::fs::remove_file(&port_file);
        let log = data_dir.join("server.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_shardline"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--shards",
                &shards.to_string(),
                "--wal-flush-interval",
                "1ms",
            ])
            // An ephemeral port unless the test names one.
            .args(if extra.contains(&"--http-bind") {
                &[][..]
            } else {
                &["--http-bind", "127.0.0.1:0"][..]
            })
            .arg("--port-file")
            .arg(&port_file)
            .args(if auth_on {
                &[][..]
            } else {
                &["--without-auth"][..]
            })
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn shardline");
        let mut server = Server {
            child: Some(child),
            addr: String::new(),
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(a) = std::fs::read_to_string(&port_file) {
                if !a.is_empty() {
                    server.addr = a;
                    break;
                }
            }
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "server exited during start-up ({status}):\n{}",
                    server.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "server did not start:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POST with optional extra headers; returns status and body.
    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = ureq::post(&self.url(path));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        respond(req.send_bytes(body))
    }

    /// Any method, with an optional JSON body; returns status and body.
    pub fn send(&self, method: &str, path: &str, json_body: Option<&str>) -> (u16, String) {
        let req = ureq::request(method, &self.url(path));
        match json_body {
            Some(b) => respond(req.set("Content-Type", "application/json").send_string(b)),
            None => respond(req.call()),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        respond(ureq::get(&self.url(path)).call())
    }

    /// A SQL query by GET; returns status, content type and body.
    pub fn query(&self, db: &str, sql: &str, format: &str) -> (u16, String, String) {
        let mut req = ureq::get(&self.url("/api/v3/query_sql"))
            .query("db", db)
            .query("q", sql);
        if !format.is_empty() {
            req = req.query("format", format);
        }
        respond_typed(req.call())
    }

    /// A SQL query's rows as JSON objects (panics unless it answers 200).
    pub fn select(&self, db: &str, sql: &str) -> Vec<Value> {
        let (status, _, body) = self.query(db, sql, "json");
        assert_eq!(status, 200, "{sql}: {body}");
        serde_json::from_str::<Value>(&body)
            .unwrap_or_else(|e| panic!("{sql}: not JSON ({e}): {body}"))
            .as_array()
            .unwrap()
            .clone()
    }

    /// `SELECT count(*)` of a table.
    pub fn count(&self, db: &str, table: &str) -> i64 {
        let rows = self.select(db, &format!("SELECT count(*) AS n FROM {table}"));
        rows[0]["n"].as_i64().unwrap()
    }

    /// Every buffered row of `db`.
    pub fn rows(&self, db: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v3/debug/buffer?db={db}"));
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the server to exit by itself (after a signal the test sent); it must exit 0.
    pub fn wait_exit(&mut self) {
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = c.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "server exited with {status}:\n{}",
                        self.log_text()
                    );
                    return;
                }
                assert!(Instant::now() < deadline, "server did not exit");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Waits for the server to exit by itself (a crash the test armed); returns its exit code.
    pub fn wait_crash(&mut self) -> Option<i32> {
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "server did not crash:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) {
        if self.child.is_some() {
            // SAFETY: kill(2) with a pid we spawned and own.
            unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
            self.wait_exit();
        }
    }

    /// A raw HTTP/1.1 exchange: sends `request` bytes, reads until the peer closes or a
    /// complete response with Content-Length arrives.
    pub fn raw(&self, request: &[u8]) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request).unwrap();
        read_response(&mut s)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn respond(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap_or_default()),
        Err(e) => panic!("transport error: {e}"),
    }
}

/// Status, content type and body of a response.
pub fn respond_typed(r: Result<ureq::Response, ureq::Error>) -> (u16, String, String) {
    let resp = match r {
        Ok(resp) => resp,
        Err(ureq::Error::Status(_, resp)) => resp,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let ct = resp.header("content-type").unwrap_or("").to_string();
    (status, ct, resp.into_string().unwrap_or_default())
}

/// Reads one HTTP response (headers, then a Content-Length body) from the stream.
pub fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => buf.push(byte[0]),
            Err(e) => panic!("reading response: {e}"),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Rows as sorted `table|tags|fields|time` strings, for order-free comparison.
pub fn row_keys(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}",
                r["table"].as_str().unwrap(),
                r["tags"],
                r["fields"],
                r["time"]
            )
        })
        .collect();
    v.sort();
    v
}
