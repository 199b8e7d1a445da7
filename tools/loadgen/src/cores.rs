//! The core-count benchmark: starts Shardline with each shard count in turn, drives it with
//! the write mode (closed loop), and writes a Markdown table and a PNG plot of lines/s, p99
//! latency and server CPU time per line against shards.
//!
//! Runs alternate between shard counts (1, 2, .., 1, 2, ..) so machine noise spreads over all
//! of them, and the table reports medians. The server is confined to CPUs 0..n-1 and the load
//! generator to `--loadgen-cpus` (default: the last CPU); when they overlap, the output says so,
//! because on a small machine the load generator then competes with the shards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use clap::Args;

use crate::cli::{DataSet, Endpoint, Precision, Target, WriteArgs};
use crate::LoadgenError;

#[derive(Debug, Clone, Args)]
pub struct CoresArgs {
    /// The Shardline binary (default: `shardline` beside this program, or this program itself
    /// when run as `shardline loadgen`).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Shard counts to try, e.g. `1-4` or `1,2,4` (default: 1 to the number of CPUs).
    #[arg(long)]
    pub shards: Option<String>,
    /// Length of each run, e.g. 20s, 1m.
    #[arg(long, default_value = "20s", value_parser = shardline_units::parse_duration)]
    pub duration: Duration,
    /// Runs per shard count (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    #[arg(long, default_value_t = 5000)]
    pub batch_lines: u64,
    #[arg(long, default_value_t = 1000)]
    pub hosts: u64,
    #[arg(long, value_enum, default_value_t = DataSet::Cpu)]
    pub data: DataSet,
    /// CPUs for the load generator (default: the last CPU).
    #[arg(long)]
    pub loadgen_cpus: Option<String>,
    /// Output path without extension: writes `<out>.md` and `<out>.png`.
    #[arg(long, default_value = "bench/cores")]
    pub out: PathBuf,
    /// A TrueType font for the plot's text (default: DejaVu Sans or Liberation Sans from the
    /// usual system locations).
    #[arg(long)]
    pub font: Option<PathBuf>,
    /// Extra arguments for `shardline serve` (repeatable), e.g. `--server-arg=--buffer-mem-limit=2GiB`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
}

#[derive(Debug, Clone)]
struct Sample {
    lines_per_s: f64,
    p99_ms: f64,
    cpu_ns_per_line: f64,
    failed: u64,
}

#[derive(Debug)]
struct Row {
    shards: usize,
    lines_per_s: f64,
    p99_ms: f64,
    cpu_ns_per_line: f64,
    runs: usize,
    failed: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn default_server_bin() -> Result<PathBuf, LoadgenError> {
    let me = std::env::current_exe().map_err(crate::io_err("cannot find this program"))?;
    if me.file_stem().is_some_and(|s| s == "shardline") {
        return Ok(me);
    }
    let beside = me.with_file_name("shardline");
    if beside.exists() {
        return Ok(beside);
    }
    Err(LoadgenError::Usage(format!(
        "no shardline binary beside {}; pass --server-bin (build it with cargo build --release)",
        me.display()
    )))
}

/// Server CPU time (user + system) of `pid`, from /proc.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

struct Server {
    child: Child,
    url: String,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; SIGTERM asks it to shut down cleanly.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bin: &Path, shards: usize, extra: &[String]) -> Result<Server, LoadgenError> {
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(format!(
        "shardline-cores-{}-{shards}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(crate::io_err(format!("cannot create {}", dir.display())))?;
    let dir = TempDir(dir);
    let port_file = dir.0.join("port");
    let cpus: Vec<usize> = (0..shards).map(|i| i % cpu_count()).collect();
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.0.join("data"))
        .arg("--shards")
        .arg(shards.to_string())
        .args([
            "--http-bind",
            "127.0.0.1:0",
            "--without-auth",
            "--log-filter",
            "warn,glommio::reactor=off",
        ])
        .arg("--port-file")
        .arg(&port_file)
        .args(extra)
        .stdout(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only calls
    // sched_setaffinity (through pin_current_thread), which is async-signal-safe; it allocates
    // nothing because the CPU list was built before the fork.
    unsafe {
        cmd.pre_exec(move || crate::cpus::pin_current_thread(&cpus));
    }
    let child = cmd
        .spawn()
        .map_err(crate::io_err(format!("cannot start {}", bin.display())))?;
    let mut server = Server {
        child,
        url: String::new(),
        _dir: dir,
    };
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(addr) = std::fs::read_to_string(&port_file) {
            if !addr.trim().is_empty() {
                server.url = format!("http://{}", addr.trim());
                return Ok(server);
            }
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(LoadgenError::Usage(format!(
                "shardline exited at start-up ({status})"
            )));
        }
        if Instant::now() > until {
            return Err(LoadgenError::Usage(
                "shardline did not start listening within 120 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn run(a: &CoresArgs) -> Result<(), LoadgenError> {
    let bin = match &a.server_bin {
        Some(b) => b.clone(),
        None => default_server_bin()?,
    };
    let shard_counts = match &a.shards {
        Some(s) => crate::cpus::parse_cpus(s)?,
        None => (1..=cpu_count()).collect(),
    };
    if shard_counts.contains(&0) {
        return Err(LoadgenError::Usage("--shards: counts start at 1".into()));
    }
    let loadgen_cpus = match &a.loadgen_cpus {
        Some(c) => crate::cpus::parse_cpus(c)?,
        None => vec![cpu_count() - 1],
    };
    let font = load_font(a.font.as_deref())?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); shard_counts.len()];
    for run in 0..a.runs.max(1) {
        for (i, &shards) in shard_counts.iter().enumerate() {
            let server = start_server(&bin, shards, &a.server_args)?;
            let pid = server.child.id();
            let write = WriteArgs {
                target: Target {
                    url: server.url.clone(),
                    db: "cores".into(),
                    token: None,
                    threads: 1,
                    cpus: Some(
                        loadgen_cpus
                            .iter()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    connections: a.connections,
                    duration: Some(a.duration),
                    progress: Duration::ZERO,
                    timeout: Duration::from_secs(60),
                    json: None,
                },
                data: a.data,
                spec: None,
                hosts: a.hosts,
                batch_lines: a.batch_lines,
                lines: None,
                rate: None,
                gzip: false,
                precision: Precision::Ns,
                endpoint: Endpoint::V3,
                org: String::new(),
                no_sync: false,
                create_db: false,
                start: "1700000000".into(),
                seed: 42,
                gen_threads: 1,
                pregen_mem: 1 << 30,
            };
            let (mut c0, mut c1) = (None, None);
            let report = crate::write_with(&write, &mut || c0 = cpu_time(pid), &mut || {
                c1 = cpu_time(pid)
            })?;
            drop(server);
            let cpu = match (c0, c1) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => Duration::ZERO,
            };
            let sample = Sample {
                lines_per_s: report.lines_per_s,
                p99_ms: report.latency_ms.p99,
                cpu_ns_per_line: cpu.as_nanos() as f64 / report.lines_accepted.max(1) as f64,
                failed: report.failed_requests,
            };
            eprintln!(
                "cores: run {} shards {}: {:.0} lines/s, p99 {:.2} ms, {:.0} server CPU ns/line",
                run + 1,
                shards,
                sample.lines_per_s,
                sample.p99_ms,
                sample.cpu_ns_per_line
            );
            samples[i].push(sample);
        }
    }
    let rows: Vec<Row> = shard_counts
        .iter()
        .zip(&samples)
        .map(|(&shards, s)| Row {
            shards,
            lines_per_s: median(s.iter().map(|x| x.lines_per_s).collect()),
            p99_ms: median(s.iter().map(|x| x.p99_ms).collect()),
            cpu_ns_per_line: median(s.iter().map(|x| x.cpu_ns_per_line).collect()),
            runs: s.len(),
            failed: s.iter().map(|x| x.failed).sum(),
        })
        .collect();
    let md = table(a, &rows, &loadgen_cpus);
    let md_path = a.out.with_extension("md");
    let png_path = a.out.with_extension("png");
    std::fs::write(&md_path, &md)
        .map_err(crate::io_err(format!("cannot write {}", md_path.display())))?;
    plot(&png_path, &rows, font)
        .map_err(|e| LoadgenError::Usage(format!("cannot draw {}: {e}", png_path.display())))?;
    print!("{md}");
    eprintln!("wrote {} and {}", md_path.display(), png_path.display());
    Ok(())
}

fn table(a: &CoresArgs, rows: &[Row], loadgen_cpus: &[usize]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let cpus = cpu_count();
    let _ = writeln!(o, "# Lines per second against shards\n");
    let _ = writeln!(
        o,
        "`shardline-loadgen cores --duration {} --runs {} --connections {} --batch-lines {} --hosts {}` (`{}` data set, \
         closed loop, durable writes to `/api/v3/write_lp`), {} CPU(s). Medians of {} run(s) per shard count, \
         run alternately. Shard i runs on CPU i; the load generator is pinned to CPU(s) {:?}.\n",
        shardline_units::format_duration(a.duration),
        a.runs,
        a.connections,
        a.batch_lines,
        a.hosts,
        format!("{:?}", a.data).to_lowercase(),
        cpus,
        a.runs,
        loadgen_cpus
    );
    let shared: Vec<usize> = rows
        .iter()
        .filter(|r| loadgen_cpus.iter().any(|c| *c < r.shards))
        .map(|r| r.shards)
        .collect();
    if !shared.is_empty() {
        let _ = writeln!(
            o,
            "**With {shared:?} shard(s) the load generator shares a CPU with a shard**: those rows measure the server \
             and the load generator competing for the same cores, not the server alone.\n"
        );
    }
    let _ = writeln!(
        o,
        "| shards | lines/s | p99 latency (ms) | server CPU ns/line | runs | failed requests |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            o,
            "| {} | {} | {:.2} | {:.0} | {} | {} |",
            r.shards,
            crate::stats::thousands(r.lines_per_s),
            r.p99_ms,
            r.cpu_ns_per_line,
            r.runs,
            r.failed
        );
    }
    o
}

fn load_font(path: Option<&Path>) -> Result<&'static [u8], LoadgenError> {
    const CANDIDATES: [&str; 4] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let paths: Vec<PathBuf> = match path {
        Some(p) => vec![p.to_path_buf()],
        None => CANDIDATES.iter().map(PathBuf::from).collect(),
    };
    for p in &paths {
        if let Ok(bytes) = std::fs::read(p) {
            // The plot library keeps fonts for the life of the process.
            return Ok(Box::leak(bytes.into_boxed_slice()));
        }
    }
    Err(LoadgenError::Usage(format!(
        "no TrueType font for the plot (looked for {}); pass --font or install fonts-dejavu-core",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn plot(path: &Path, rows: &[Row], font: &'static [u8]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| "the font file is not a TrueType font")?;
    let root = BitMapBackend::new(path, (1500, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let max_shards = rows.iter().map(|r| r.shards).max().unwrap_or(1) as f64;
    type Panel<'a> = (&'a str, &'a str, Vec<(f64, f64)>, RGBColor);
    let series: [Panel; 3] = [
        (
            "Throughput",
            "lines/s",
            rows.iter()
                .map(|r| (r.shards as f64, r.lines_per_s))
                .collect(),
            RGBColor(31, 119, 180),
        ),
        (
            "p99 write latency",
            "ms",
            rows.iter().map(|r| (r.shards as f64, r.p99_ms)).collect(),
            RGBColor(214, 39, 40),
        ),
        (
            "Server CPU per line",
            "ns/line",
            rows.iter()
                .map(|r| (r.shards as f64, r.cpu_ns_per_line))
                .collect(),
            RGBColor(44, 160, 44),
        ),
    ];
    for (panel, (title, unit, points, color)) in panels.iter().zip(series) {
        let top = points
            .iter()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.2;
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.5..max_shards + 0.5, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("shards")
            .y_desc(unit)
            .x_labels(max_shards as usize + 2)
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-6 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| {
                if *y >= 10_000.0 {
                    format!("{:.0}k", y / 1000.0)
                } else {
                    format!("{y:.1}")
                }
            })
            .draw()?;
        chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_proc_cpu_time() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(cpu_time(std::process::id()).is_some());
    }
}
