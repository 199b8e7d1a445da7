//! Starting and stopping a real server, waits that end (every wait here has a deadline and
//! fails saying what it saw), bounded child processes, and small HTTP helpers.
#![allow(unreachable_pub)] // a test-binary module: `pub` here means "for the other test modules"

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for anything (a server to start or exit, data to show up, a
/// response, a command to finish) before it fails. Far beyond what a slow, shared machine
/// needs: reaching it means something hangs, not that the machine is slow.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How often [`poll_until`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `probe` until it returns `Ok`, and returns that value; `Err` carries what the probe
/// saw instead. If `deadline` passes first, the answer is a failure saying what was awaited
/// and what was seen last, for the caller to panic with once it has cleaned up (a child to
/// kill, a log to add). Tests wait through [`Server::wait_until`]; a probe may panic itself
/// when waiting longer cannot help.
fn poll_until<T>(
    what: &str,
    deadline: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let started = Instant::now();
    loop {
        let seen = match probe() {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        if started.elapsed() >= deadline {
            return Err(format!("waited {deadline:?} for {what}; last saw: {seen}"));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The HTTP client every test uses: a request fails if the server is silent for
/// [`PATIENCE`] (ureq's own default waits forever for an answer).
/// The wall clock in nanoseconds since the Unix epoch, as the server stamps lines without a time.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as i64
}

pub fn http() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout_connect(PATIENCE)
            .timeout_read(PATIENCE)
            .timeout_write(PATIENCE)
            .build()
    })
}

/// Runs `cmd` to its end with stdin closed and its output captured, as
/// [`Command::output`] does, but bounded by `deadline`: a command still running then is
/// killed with every process it started, and the test fails with what it had printed.
pub fn run(cmd: &mut Command, deadline: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        // Its own process group, so that a kill reaches whatever it started too (and the
        // pipes those hold close).
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    // Drained on their own threads, so a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let exited = poll_until(&format!("{cmd:?} to exit"), deadline, || {
        match child.try_wait().expect("try_wait") {
            Some(status) => Ok(status),
            None => Err("still running".to_string()),
        }
    });
    if exited.is_err() {
        // SAFETY: kill(2) on the process group of a child this function spawned (its id is
        // the group's, from `process_group(0)`) and has not yet reaped.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
    }
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    match exited {
        Ok(status) => Output {
            status,
            stdout,
            stderr,
        },
        Err(failure) => panic!(
            "{failure}; killed it. stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

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
        let child = server.child.as_mut().expect("just spawned");
        let started = poll_until("the server to write its port file", PATIENCE, || {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Ok(Err(status));
            }
            match std::fs::read_to_string(&port_file) {
                Ok(a) if !a.is_empty() => Ok(Ok(a)),
                Ok(_) => Err(format!("{} is empty", port_file.display())),
                Err(e) => Err(format!("{}: {e}", port_file.display())),
            }
        });
        match started {
            Ok(Ok(addr)) => server.addr = addr,
            Ok(Err(status)) => panic!(
                "server exited during start-up ({status}):\n{}",
                server.log_text()
            ),
            Err(failure) => panic!("{failure}\nserver log:\n{}", server.log_text()),
        }
        server
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `probe` returns `Ok` (polling it every few milliseconds) and returns its
    /// value. After [`PATIENCE`] the test fails with `what`, the last `Err` the probe gave
    /// (what it saw), and this server's log.
    pub fn wait_until<T>(&self, what: &str, probe: impl FnMut() -> Result<T, String>) -> T {
        poll_until(what, PATIENCE, probe)
            .unwrap_or_else(|failure| panic!("{failure}\nserver log:\n{}", self.log_text()))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POST with optional extra headers; returns status and body.
    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = http().post(&self.url(path));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        respond(req.send_bytes(body))
    }

    /// Any method, with an optional JSON body; returns status and body.
    pub fn send(&self, method: &str, path: &str, json_body: Option<&str>) -> (u16, String) {
        let req = http().request(method, &self.url(path));
        match json_body {
            Some(b) => respond(req.set("Content-Type", "application/json").send_string(b)),
            None => respond(req.call()),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        respond(http().get(&self.url(path)).call())
    }

    /// A SQL query by GET; returns status, content type and body.
    pub fn query(&self, db: &str, sql: &str, format: &str) -> (u16, String, String) {
        let mut req = http()
            .get(&self.url("/api/v3/query_sql"))
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

    /// Rows in every table of `db` (0 if there is no such database), through SQL.
    pub fn total_rows(&self, db: &str) -> i64 {
        let (status, _, body) = self.query(
            db,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox'",
            "json",
        );
        if status == 404 {
            return 0;
        }
        assert_eq!(status, 200, "tables of {db}: {body}");
        json(&body)
            .as_array()
            .expect("an array of rows")
            .iter()
            .map(|t| {
                let table = t["table_name"].as_str().expect("a table name");
                self.count(db, &format!("\"{}\"", table.replace('"', "\"\"")))
            })
            .sum()
    }

    /// Every row the buffers of `db` hold, unmerged, from `/api/v3/debug/buffer`. Only for
    /// what SQL cannot show: a point stored twice (same series and time) reads back from SQL
    /// as one merged row, but is two rows here. Everything else reads data through SQL.
    pub fn buffered_rows(&self, db: &str) -> Vec<Value> {
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
        if self.child.is_some() {
            let status = self.wait_for_exit("the server to exit", PATIENCE);
            assert!(
                status.success(),
                "server exited with {status}:\n{}",
                self.log_text()
            );
        }
    }

    /// Waits for the server to exit by itself (a crash the test armed); returns its exit code.
    pub fn wait_crash(&mut self) -> Option<i32> {
        self.wait_for_exit("the armed crash", 2 * PATIENCE).code()
    }

    /// Waits up to `deadline` for the server process to end; past it, kills the process (so
    /// no server outlives its test) and fails.
    fn wait_for_exit(&mut self, what: &str, deadline: Duration) -> std::process::ExitStatus {
        let c = self.child.as_mut().expect("running");
        let exited = poll_until(what, deadline, || {
            c.try_wait()
                .expect("try_wait")
                .ok_or_else(|| "still running".to_string())
        });
        match exited {
            Ok(status) => {
                self.child = None;
                status
            }
            Err(failure) => {
                self.kill9();
                panic!("{failure}\nserver log:\n{}", self.log_text())
            }
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
        s.set_write_timeout(Some(PATIENCE)).unwrap();
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

/// Reads one HTTP response (headers, then a Content-Length body) from the stream; a read
/// that waits longer than [`PATIENCE`] fails the test.
pub fn read_response(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
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
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    if chunked {
        // Chunk sizes in hex, each chunk followed by CRLF, ended by a zero-size chunk.
        let mut body = Vec::new();
        loop {
            let mut size_line = Vec::new();
            while !size_line.ends_with(b"\r\n") {
                s.read_exact(&mut byte)
                    .unwrap_or_else(|e| panic!("reading a chunk size after {head:?}: {e}"));
                size_line.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&size_line[..size_line.len() - 2]).to_string();
            let size = usize::from_str_radix(text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|e| panic!("chunk size {text:?}: {e}"));
            let mut chunk = vec![0u8; size + 2];
            s.read_exact(&mut chunk)
                .unwrap_or_else(|e| panic!("reading a {size}-byte chunk: {e}"));
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        return head + &String::from_utf8_lossy(&body);
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .unwrap_or_else(|e| panic!("reading a {len}-byte body after {head:?}: {e}"));
    head + &String::from_utf8_lossy(&body)
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
