//! Counters and latency histograms of a run, the live progress line and the final report.
//!
//! Each sender thread records into its own [`Stats`] behind a mutex that only the progress
//! reporter also takes, once per interval, so the lock is uncontended. Latencies are kept in
//! microseconds in hdrhistogram (1 µs to 1 h, 3 significant digits).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How many non-2xx bodies or transport errors the report quotes.
pub const ERROR_SAMPLES: usize = 5;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Debug)]
pub struct KindStats {
    pub name: String,
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub failed: u64,
}

/// One sender thread's counts.
#[derive(Debug)]
pub struct Stats {
    pub kinds: Vec<KindStats>,
    pub status: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub requests: u64,
    pub lines_accepted: u64,
    pub lines_rejected: u64,
    pub bytes_sent: u64,
    /// Open loop: requests that went out more than 1 ms after their intended time.
    pub late_sends: u64,
    /// Times a sender found no request ready and waited for the generators.
    pub generator_stalls: u64,
    pub generator_stall: Duration,
    pub error_samples: Vec<String>,
    // Since the last progress line:
    interval_latency: Histogram<u64>,
    interval_lines: u64,
    interval_errors: u64,
    interval_requests: u64,
}

pub type SharedStats = Arc<Mutex<Stats>>;

impl Stats {
    pub fn new(kinds: &[String]) -> Stats {
        Stats {
            kinds: kinds
                .iter()
                .map(|name| KindStats {
                    name: name.clone(),
                    latency: histogram(),
                    ok: 0,
                    failed: 0,
                })
                .collect(),
            status: BTreeMap::new(),
            transport_errors: 0,
            requests: 0,
            lines_accepted: 0,
            lines_rejected: 0,
            bytes_sent: 0,
            late_sends: 0,
            generator_stalls: 0,
            generator_stall: Duration::ZERO,
            error_samples: Vec::new(),
            interval_latency: histogram(),
            interval_lines: 0,
            interval_errors: 0,
            interval_requests: 0,
        }
    }

    /// Records one finished request. `error` is the failure's description, if it failed.
    pub fn record(
        &mut self,
        kind: u16,
        status: Option<u16>,
        lines: u32,
        bytes: usize,
        latency: Duration,
        error: Option<String>,
    ) {
        let micros = (latency.as_micros() as u64).clamp(1, 3_600_000_000);
        let k = &mut self.kinds[kind as usize];
        let _ = k.latency.record(micros);
        let _ = self.interval_latency.record(micros);
        self.requests += 1;
        self.interval_requests += 1;
        self.bytes_sent += bytes as u64;
        if let Some(status) = status {
            *self.status.entry(status).or_default() += 1;
        } else {
            self.transport_errors += 1;
        }
        match error {
            None => {
                k.ok += 1;
                self.lines_accepted += lines as u64;
                self.interval_lines += lines as u64;
            }
            Some(message) => {
                k.failed += 1;
                self.lines_rejected += lines as u64;
                self.interval_errors += 1;
                if self.error_samples.len() < ERROR_SAMPLES {
                    self.error_samples.push(message);
                }
            }
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.kinds.iter_mut().zip(&other.kinds) {
            let _ = a.latency.add(&b.latency);
            a.ok += b.ok;
            a.failed += b.failed;
        }
        for (s, n) in &other.status {
            *self.status.entry(*s).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.requests += other.requests;
        self.lines_accepted += other.lines_accepted;
        self.lines_rejected += other.lines_rejected;
        self.bytes_sent += other.bytes_sent;
        self.late_sends += other.late_sends;
        self.generator_stalls += other.generator_stalls;
        self.generator_stall += other.generator_stall;
        for e in &other.error_samples {
            if self.error_samples.len() < ERROR_SAMPLES {
                self.error_samples.push(e.clone());
            }
        }
    }
}

/// Prints one progress line per interval: a rewritten line on a terminal, plain lines otherwise.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    unit: &'static str,
}

impl Progress {
    pub fn new(unit: &'static str) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            unit,
        }
    }

    pub fn tick(&self, elapsed: Duration, interval: Duration, threads: &[SharedStats]) {
        let (mut lines, mut errors, mut requests) = (0, 0, 0);
        let mut latency = histogram();
        for t in threads {
            let mut s = t.lock().expect("stats lock");
            lines += std::mem::take(&mut s.interval_lines);
            errors += std::mem::take(&mut s.interval_errors);
            requests += std::mem::take(&mut s.interval_requests);
            let _ = latency.add(&s.interval_latency);
            s.interval_latency.reset();
        }
        let secs = interval.as_secs_f64().max(1e-9);
        let count = if self.unit == "lines" {
            lines
        } else {
            requests
        };
        let p99 = if latency.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2} ms", latency.value_at_quantile(0.99) as f64 / 1000.0)
        };
        let line = format!(
            "[{:>6.1}s] {:>12} {}/s  errors {}  p99 {}",
            elapsed.as_secs_f64(),
            thousands(count as f64 / secs),
            self.unit,
            errors,
            p99
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    pub fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |v: u64| v as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub name: String,
    pub ok: u64,
    pub failed: u64,
    pub latency_ms: Latency,
}

/// The final report, printed and written as JSON with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: String,
    pub url: String,
    pub db: String,
    pub endpoint: String,
    pub workload: String,
    pub threads: usize,
    pub connections: usize,
    pub cpus: Option<Vec<usize>>,
    pub target_rate: Option<f64>,
    pub elapsed_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub lines_accepted: u64,
    pub lines_rejected: u64,
    pub lines_per_s: f64,
    pub bytes_sent: u64,
    pub mib_per_s: f64,
    /// CPU seconds the load generator itself used while the clock ran.
    pub loadgen_cpu_s: f64,
    /// Lines accepted per CPU second of the load generator: its cost, whatever the core count.
    pub lines_per_loadgen_cpu_s: f64,
    pub status: BTreeMap<String, u64>,
    pub transport_errors: u64,
    pub failed_requests: u64,
    pub late_sends: u64,
    pub latency_ms: Latency,
    pub kinds: Vec<KindReport>,
    pub generator: Option<crate::body::GeneratorReport>,
    pub generator_stalls: u64,
    pub generator_stall_s: f64,
    pub error_samples: Vec<String>,
}

impl Report {
    pub fn print(&self) {
        let mut o = String::new();
        use std::fmt::Write as _;
        let _ = writeln!(
            o,
            "{} {} -> {} (endpoint {}, db {}), {} connection(s) on {} thread(s){}",
            self.mode,
            self.workload,
            self.url,
            self.endpoint,
            self.db,
            self.connections,
            self.threads,
            match &self.cpus {
                Some(c) => format!(" pinned to CPU(s) {c:?}"),
                None => " (not pinned)".into(),
            }
        );
        let _ = writeln!(o, "elapsed     {:.2} s", self.elapsed_s);
        if self.mode == "write" {
            let _ = writeln!(
                o,
                "lines       {} accepted, {} rejected",
                thousands(self.lines_accepted as f64),
                thousands(self.lines_rejected as f64)
            );
            let _ = writeln!(
                o,
                "throughput  {} lines/s, {} requests/s, {:.1} MiB/s sent",
                thousands(self.lines_per_s),
                thousands(self.requests_per_s),
                self.mib_per_s
            );
            let _ = writeln!(
                o,
                "loadgen CPU {:.2} s ({} lines per loadgen CPU second)",
                self.loadgen_cpu_s,
                thousands(self.lines_per_loadgen_cpu_s)
            );
        } else {
            let _ = writeln!(
                o,
                "queries     {} ({} failed), {} queries/s",
                thousands(self.requests as f64),
                self.failed_requests,
                format_rate(self.requests_per_s)
            );
        }
        if let Some(rate) = self.target_rate {
            let _ = writeln!(
                o,
                "open loop   target {}/s; {} request(s) left more than 1 ms late (latency counts from the intended send time)",
                format_rate(rate),
                self.late_sends
            );
        }
        let status: Vec<String> = self
            .status
            .iter()
            .map(|(s, n)| format!("{s} x {n}"))
            .collect();
        let _ = writeln!(
            o,
            "HTTP status {}{}",
            if status.is_empty() {
                "none".into()
            } else {
                status.join(", ")
            },
            if self.transport_errors > 0 {
                format!("; {} transport error(s)", self.transport_errors)
            } else {
                String::new()
            }
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            o,
            "latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
        if self.kinds.len() > 1 {
            for k in &self.kinds {
                let l = &k.latency_ms;
                let _ = writeln!(
                    o,
                    "  {:<24} n {:>7} failed {:>4}  p50 {:>9.3}  p90 {:>9.3}  p99 {:>9.3}  max {:>9.3}",
                    k.name, k.ok + k.failed, k.failed, l.p50, l.p90, l.p99, l.max
                );
            }
        }
        if let Some(g) = &self.generator {
            let _ = writeln!(
                o,
                "generator   {} thread(s); {} request(s) ({:.1} MiB) made in {:.2} s before the clock{}",
                g.threads,
                g.pregenerated_requests,
                g.pregenerated_mib,
                g.pregeneration_s,
                if g.whole_run_pregenerated { " (the whole run)" } else { "" }
            );
            if self.generator_stalls > 0 {
                let _ = writeln!(
                    o,
                    "            FELL BEHIND: senders waited for data {} time(s), {:.3} s summed over connections; raise --gen-threads or --pregen-mem",
                    self.generator_stalls, self.generator_stall_s
                );
            }
        }
        for e in &self.error_samples {
            let _ = writeln!(o, "error       {e}");
        }
        print!("{o}");
    }
}

pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn format_rate(v: f64) -> String {
    if v >= 100.0 {
        thousands(v)
    } else {
        format!("{v:.2}")
    }
}
