//! The command line: `write`, `query`, `sink` and `cores`. Durations and sizes are read by
//! `shardline_units`, with the same rules as the server's flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shardline_units::{parse_duration, parse_size};

#[derive(Debug, Parser)]
#[command(
    name = "shardline-loadgen",
    version,
    about = "Load generator for Shardline and other line-protocol servers (InfluxDB 1.x/2.x/3.x, VictoriaMetrics)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write line protocol: a built-in data set or a --spec file, closed loop or at a --rate.
    Write(WriteArgs),
    /// Run a weighted mix of SQL or InfluxQL queries.
    Query(QueryArgs),
    /// Serve HTTP and discard every body (to measure the load generator's own ceiling).
    Sink(SinkArgs),
    /// Start Shardline with 1..N shards, drive each with the write mode, and write a table and a plot.
    Cores(crate::cores::CoresArgs),
}

/// Where to send and how hard: shared by `write` and `query`.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Server base URL (http only).
    #[arg(long, default_value = "http://127.0.0.1:8181")]
    pub url: String,
    /// Database (v2: bucket).
    #[arg(long, default_value = "loadgen")]
    pub db: String,
    /// Token, sent as `Authorization: Bearer` (v3) or `Token` (v1, v2).
    #[arg(long, env = "SHARDLINE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Sender threads, one io_uring runtime each.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin the load generator's threads to, e.g. `1` or `2-3`; sender thread i takes
    /// the i-th (round robin), generator threads share the list.
    #[arg(long)]
    pub cpus: Option<String>,
    /// Concurrent keep-alive connections, one request in flight each.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// How long to run (e.g. 30s, 5m). Default 10s, unless --lines/--count bound the run.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Progress line interval (e.g. 1s, 500ms); 0 turns it off.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub progress: Duration,
    /// Longest wait for one answer before the request counts as failed (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Also write the final report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataSet {
    /// TSBS cpu-only: 10 tags, 10 integer fields per host.
    Cpu,
    /// TSBS devops: nine measurements per host.
    Devops,
    /// Trucks: floats, strings, booleans, sparse fields, out-of-order timestamps.
    Iot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Endpoint {
    /// `/api/v3/write_lp` (Shardline, InfluxDB 3)
    V3,
    /// `/api/v2/write` (InfluxDB 2, and 3 / Shardline's compatibility endpoint)
    V2,
    /// `/write` (InfluxDB 1.x, VictoriaMetrics, and 3 / Shardline's compatibility endpoint)
    V1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    Ns,
    Us,
    Ms,
    S,
}

#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub target: Target,
    /// Built-in data set.
    #[arg(long, value_enum, default_value_t = DataSet::Cpu)]
    pub data: DataSet,
    /// A JSON data-set description instead of --data (measurement, tags with cardinalities,
    /// fields with types and counts, interval).
    #[arg(long, conflicts_with = "data")]
    pub spec: Option<PathBuf>,
    /// Series scale: hosts (cpu, devops) or trucks (iot).
    #[arg(long, default_value_t = 1000)]
    pub hosts: u64,
    /// Lines per request.
    #[arg(long, default_value_t = 5000)]
    pub batch_lines: u64,
    /// Send exactly this many distinct points (no two share series and timestamp), then stop.
    #[arg(long)]
    pub lines: Option<u64>,
    /// Open loop at this many lines per second; latency counts from each request's intended
    /// send time. Without it, closed loop as fast as the server answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Gzip the bodies (Content-Encoding: gzip).
    #[arg(long)]
    pub gzip: bool,
    #[arg(long, value_enum, default_value_t = Precision::Ns)]
    pub precision: Precision,
    #[arg(long, value_enum, default_value_t = Endpoint::V3)]
    pub endpoint: Endpoint,
    /// Organization for the v2 endpoint.
    #[arg(long, default_value = "")]
    pub org: String,
    /// v3: ask for `no_sync=true` (acknowledged before the WAL is durable).
    #[arg(long)]
    pub no_sync: bool,
    /// v1: send `CREATE DATABASE` first (InfluxDB 1.x needs it).
    #[arg(long)]
    pub create_db: bool,
    /// First timestamp: epoch seconds, epoch nanoseconds, or `now`.
    #[arg(long, default_value = "1700000000")]
    pub start: String,
    /// Seed for tag choices and field values.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Threads making request bodies ahead of the senders.
    #[arg(long, default_value_t = 1)]
    pub gen_threads: usize,
    /// Bytes of requests made before the clock starts (and the queue the generators keep
    /// full), e.g. 1GiB, 64MiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub pregen_mem: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryEndpoint {
    /// `/api/v3/query_sql` or `/api/v3/query_influxql`
    V3,
    /// `/query` (InfluxQL)
    V1,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, value_enum, default_value_t = crate::query::Lang::Sql)]
    pub lang: crate::query::Lang,
    #[arg(long, value_enum, default_value_t = QueryEndpoint::V3)]
    pub endpoint: QueryEndpoint,
    /// Built-in kinds with weights, e.g. `lastpoint=2,high-cpu-1=1`, or `all`.
    #[arg(long, default_value = crate::query::DEFAULT_MIX)]
    pub mix: String,
    /// A JSON file of `[{"name", "weight", "query"}]` instead of the built-in kinds.
    #[arg(long, conflicts_with = "mix")]
    pub queries: Option<PathBuf>,
    /// Hosts in the data (placeholders draw from host_0 .. host_{N-1}).
    #[arg(long, default_value_t = 1000)]
    pub hosts: u64,
    /// Start of the data: epoch seconds, epoch nanoseconds, or `now`.
    #[arg(long, default_value = "1700000000")]
    pub start: String,
    /// Time span the data covers from --start (the write mode's report prints it), e.g. 1h.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub span: Duration,
    /// Window of {start}..{end} in --queries files, e.g. 1h, 15m.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub window: Duration,
    /// Open loop at this many queries per second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop after this many queries.
    #[arg(long)]
    pub count: Option<u64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Result format asked of the v3 endpoints.
    #[arg(long, value_enum, default_value_t = ResultFormat::Json)]
    pub format: ResultFormat,
}

/// A v3 query result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultFormat {
    Json,
    Jsonl,
    Csv,
    Parquet,
    Pretty,
}

impl ResultFormat {
    pub fn name(self) -> &'static str {
        match self {
            ResultFormat::Json => "json",
            ResultFormat::Jsonl => "jsonl",
            ResultFormat::Csv => "csv",
            ResultFormat::Parquet => "parquet",
            ResultFormat::Pretty => "pretty",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    #[arg(long, default_value = "127.0.0.1:8181")]
    pub bind: String,
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long)]
    pub cpus: Option<String>,
    /// Write the bound address here once listening.
    #[arg(long)]
    pub port_file: Option<PathBuf>,
}

/// A timestamp for `--start`: `now`, or an integer: seconds since the epoch when it has 10
/// digits or fewer, nanoseconds otherwise. RFC 3339 is not read (no date crate here).
pub fn parse_start(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t == "now" {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| {
                format!("the system clock is before 1970 ({e}): fix it, or give --start as epoch seconds")
            })?;
        return i64::try_from(now.as_nanos()).map_err(|_| {
            "the system clock is past the year 2262: fix it, or give --start as epoch seconds"
                .to_string()
        });
    }
    let v: i64 = t.parse().map_err(|_| {
        format!("invalid --start '{text}': give epoch seconds (e.g. 1700000000), epoch nanoseconds or 'now'")
    })?;
    if t.trim_start_matches(['-', '+']).len() > 10 {
        return Ok(v);
    }
    v.checked_mul(1_000_000_000).ok_or_else(|| {
        format!("--start '{text}' (seconds) is past the year 2262, the last nanosecond timestamp: give an earlier one")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::CommandFactory;

    #[test]
    fn start_is_seconds_or_nanoseconds() {
        assert_eq!(parse_start("1700000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(
            parse_start("1700000000000000000"),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_start("-1"), Ok(-1_000_000_000));
        assert!(parse_start("now").is_ok_and(|ns| ns > 1_700_000_000_000_000_000));
        for bad in ["9999999999", "yesterday", "", "1.5"] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
    }

    fn parse(argv: &[&str]) -> Result<Command, String> {
        Cli::try_parse_from(argv)
            .map(|c| c.command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_default_parses() {
        Cli::command().debug_assert();
        let Ok(Command::Write(w)) = parse(&["shardline-loadgen", "write"]) else {
            panic!("write defaults")
        };
        assert_eq!(w.target.progress, Duration::from_secs(1));
        assert_eq!(w.target.timeout, Duration::from_secs(60));
        assert_eq!(w.target.duration, None);
        assert_eq!(w.pregen_mem, 1 << 30);
        let Ok(Command::Query(q)) = parse(&["shardline-loadgen", "query"]) else {
            panic!("query defaults")
        };
        assert_eq!(
            (q.span, q.window),
            (Duration::from_secs(3_600), Duration::from_secs(3_600))
        );
        let Ok(Command::Cores(c)) = parse(&["shardline-loadgen", "cores"]) else {
            panic!("cores defaults")
        };
        assert_eq!(c.duration, Duration::from_secs(20));
    }

    #[test]
    fn units_mean_what_the_server_means() {
        let Ok(Command::Write(w)) = parse(&[
            "shardline-loadgen",
            "write",
            "--progress",
            "0",
            "--duration",
            "1m30s",
            "--pregen-mem",
            "64MB",
        ]) else {
            panic!("write")
        };
        assert_eq!(w.target.progress, Duration::ZERO);
        assert_eq!(w.target.duration, Some(Duration::from_secs(90)));
        assert_eq!(w.pregen_mem, 64_000_000);
        // A bare number was seconds here once, and milliseconds to the server: now neither.
        let Err(msg) = parse(&["shardline-loadgen", "write", "--duration", "30"]) else {
            panic!("a bare 30 was accepted")
        };
        assert!(
            msg.contains("--duration") && msg.contains("30s or 30ms"),
            "{msg}"
        );
    }
}
