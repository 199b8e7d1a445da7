//! The command line: `shardline serve` and its flags (with size and duration parsing), and
//! the client commands `shardline query` and `shardline write`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "shardline",
    version,
    about = "Thread-per-core time-series database, wire-compatible with InfluxDB 3 Core"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run a SQL query against a server and print the result.
    Query(crate::client::QueryArgs),
    /// Write line protocol from a file or standard input to a server.
    Write(crate::client::WriteArgs),
    /// The bundled load generator (the same as the `shardline-loadgen` binary).
    Loadgen(LoadgenArgs),
    /// Create a database, table or token on a running server.
    #[command(subcommand)]
    Create(crate::manage::Create),
    /// Delete a database, table or token.
    #[command(subcommand)]
    Delete(crate::manage::Delete),
    /// List databases or tokens.
    #[command(subcommand)]
    Show(crate::manage::Show),
    /// Change a database's settings.
    #[command(subcommand)]
    Update(crate::manage::Update),
}

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    #[command(subcommand)]
    pub command: shardline_loadgen::cli::Command,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory for the catalog and the shards' write-ahead logs (created if missing).
    #[arg(long, env = "SHARDLINE_DATA_DIR", default_value = "shardline-data")]
    pub data_dir: PathBuf,

    /// Number of shards (one pinned thread each). Default: every CPU this process may run on.
    #[arg(long, env = "SHARDLINE_SHARDS")]
    pub shards: Option<usize>,

    /// Address every shard listens on (SO_REUSEPORT). Port 0 picks a free port; see --port-file.
    #[arg(long, env = "SHARDLINE_HTTP_BIND", default_value = "127.0.0.1:8181")]
    pub http_bind: SocketAddr,

    /// Largest request body accepted, on the wire and after gzip inflation (e.g. 10MiB).
    #[arg(long, env = "SHARDLINE_MAX_HTTP_REQUEST_SIZE", default_value = "10MiB", value_parser = parse_size)]
    pub max_http_request_size: usize,

    /// Longest a `no_sync=true` write waits before it is written to the WAL (durable writes
    /// are committed at once, in groups). E.g. 10ms, 1s.
    #[arg(long, env = "SHARDLINE_WAL_FLUSH_INTERVAL", default_value = "10ms", value_parser = parse_duration)]
    pub wal_flush_interval: Duration,

    /// Longest a shard runs tasks before it goes back to its rings for new requests and I/O
    /// completions (e.g. 250us, 1ms). Shorter keeps query and write latency low while a large
    /// write is being applied; longer spends less on re-arming the timer.
    #[arg(long, env = "SHARDLINE_TASK_SLICE", default_value = "250us", value_parser = parse_task_slice)]
    pub task_slice: Duration,

    /// Threads running queries (DataFusion). Default: the number of shards.
    #[arg(long, env = "SHARDLINE_QUERY_THREADS")]
    pub query_threads: Option<usize>,

    /// Memory all running queries may use at once for sorts, joins and aggregations (e.g.
    /// 4GiB). Beyond it DataFusion spills to the OS temporary directory where it can; other
    /// queries that need more fail with an error naming the limit.
    #[arg(long, env = "SHARDLINE_QUERY_MEMORY_LIMIT", default_value = "4GiB", value_parser = parse_size)]
    pub query_memory_limit: usize,

    /// Where Parquet files and manifests go: `file` (under <data-dir>/store) or `memory`
    /// (lost at exit; for tests).
    #[arg(
        long,
        env = "SHARDLINE_OBJECT_STORE",
        value_enum,
        default_value = "file"
    )]
    pub object_store: ObjectStoreKind,

    /// Time span of one Parquet file: 1m, 5m or 10m.
    #[arg(long, env = "SHARDLINE_GEN1_DURATION", default_value = "10m", value_parser = parse_gen1)]
    pub gen1_duration: Duration,

    /// Memory the write buffer of each shard may use (e.g. 512MiB). A snapshot to Parquet
    /// starts at half of it; at the limit writes wait for the snapshot. Default: half of the
    /// machine's memory divided by the shard count.
    #[arg(long, env = "SHARDLINE_BUFFER_MEM_LIMIT", value_parser = parse_size)]
    pub buffer_mem_limit: Option<usize>,

    /// Memory the last-value and distinct-value caches of each shard may use, estimated
    /// (e.g. 256MiB). Past it, the entries written to longest ago are dropped, as if they had
    /// expired. Default: an eighth of the machine's memory divided by the shard count.
    #[arg(long, env = "SHARDLINE_CACHE_MEM_LIMIT", value_parser = parse_size)]
    pub cache_mem_limit: Option<usize>,

    /// Longest unpersisted data waits before a snapshot writes it to Parquet (e.g. 10m, 30s).
    #[arg(long, env = "SHARDLINE_SNAPSHOT_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub snapshot_interval: Duration,

    /// Do not merge small Parquet files (for measuring queries over uncompacted files).
    #[arg(long, env = "SHARDLINE_NO_COMPACTION")]
    pub no_compaction: bool,

    /// How often each shard looks for Parquet files past their table's retention period or
    /// of deleted tables, and removes them (e.g. 30m, 1h). Expired rows are hidden from
    /// queries at once regardless.
    #[arg(long, env = "SHARDLINE_RETENTION_CHECK_INTERVAL", default_value = "30m", value_parser = parse_duration)]
    pub retention_check_interval: Duration,

    /// How long the files of a deleted database or table are kept before they are removed
    /// (e.g. 24h, 0s). The database or table is hidden at once; its name can be reused.
    #[arg(long, env = "SHARDLINE_DELETE_GRACE_PERIOD", default_value = "24h", value_parser = parse_duration)]
    pub delete_grace_period: Duration,

    /// How long a file stays in the object store after the manifest stops listing it
    /// (compacted, expired or deleted): queries planned before may still be reading it.
    #[arg(long, env = "SHARDLINE_FILE_DELETE_DELAY", default_value = "60s", value_parser = parse_duration)]
    pub file_delete_delay: Duration,

    /// Serve without authentication: every endpoint is open and the token endpoints answer
    /// 405. By default every request needs a token (see `shardline create token --admin`).
    #[arg(long, env = "SHARDLINE_WITHOUT_AUTH")]
    pub without_auth: bool,

    /// Endpoints that need no token, comma-separated: health, ping, metrics.
    #[arg(long, env = "SHARDLINE_DISABLE_AUTHZ", value_delimiter = ',')]
    pub disable_authz: Vec<String>,

    /// Start with this admin token (a file holding its text, or JSON with a `token` field);
    /// `_admin` is set to it, replacing any other. For automation.
    #[arg(long, env = "SHARDLINE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Most live databases; creating one more answers 422.
    #[arg(long, env = "SHARDLINE_MAX_DATABASES", default_value_t = 10_000)]
    pub max_databases: usize,

    /// Most live tables across all databases; creating one more answers 422.
    #[arg(long, env = "SHARDLINE_MAX_TABLES", default_value_t = 1_000_000)]
    pub max_tables: usize,

    /// Most columns in one table (besides `time`); a write or table needing more answers 422.
    #[arg(
        long,
        env = "SHARDLINE_MAX_COLUMNS_PER_TABLE",
        default_value_t = 10_000
    )]
    pub max_columns_per_table: usize,

    /// Write the bound address (`ip:port`) to this file once every shard is listening.
    #[arg(long)]
    pub port_file: Option<PathBuf>,

    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info`, `shardline=debug`. The
    /// default silences glommio's reactor, which logs a harmless failed io-poll probe as an error.
    #[arg(
        long,
        env = "SHARDLINE_LOG",
        default_value = "info,glommio::reactor=off"
    )]
    pub log_filter: String,
}

/// Where persisted files live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectStoreKind {
    File,
    Memory,
}

fn parse_gen1(s: &str) -> Result<Duration, String> {
    match s.trim() {
        "1m" | "5m" | "10m" => parse_duration(s),
        other => Err(format!(
            "'{other}' is not a gen1 duration: use 1m, 5m or 10m"
        )),
    }
}

pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Parses `1048576`, `64KiB`, `10MiB`, `1GiB`, `10MB` (decimal units too).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| {
        format!("'{s}' is not a size: expected a number with an optional unit like 10MiB")
    })?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use B, KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

/// Task slices outside 50µs–100ms are mistakes: shorter spends the core on timer syscalls,
/// longer lets one write hold every request on its shard for a visible time.
fn parse_task_slice(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if !(Duration::from_micros(50)..=Duration::from_millis(100)).contains(&d) {
        return Err(format!("task slice {s} is outside 50us..100ms"));
    }
    Ok(d)
}

/// Parses `250us`, `10ms`, `1s`, `2m`, `1h`, `7d`, `2w`, `1mo` (30 days), `1y` (365 days)
/// and sums like `1h30m`; a bare number is milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let invalid = || format!("'{s}' is not a duration: expected e.g. 10ms, 1s, 30m, 24h or 7d");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map(Duration::from_millis).map_err(|_| invalid());
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ns" => Some(Duration::from_nanos(n)),
            "us" | "µs" => Some(Duration::from_micros(n)),
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3_600).map(Duration::from_secs),
            "d" => n.checked_mul(86_400).map(Duration::from_secs),
            "w" => n.checked_mul(604_800).map(Duration::from_secs),
            "mo" => n.checked_mul(30 * 86_400).map(Duration::from_secs),
            "y" => n.checked_mul(365 * 86_400).map(Duration::from_secs),
            other => {
                return Err(format!(
                "unknown duration unit '{other}' in '{s}' (use ns, us, ms, s, m, h, d, w, mo or y)"
            ))
            }
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("duration '{s}' is too long"))?;
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it, largest units first (`1d12h`).
pub fn format_duration(d: Duration) -> String {
    let mut ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    const UNITS: [(&str, u128); 8] = [
        ("w", 604_800_000_000_000),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    for (unit, size) in UNITS {
        if ns >= size {
            out.push_str(&format!("{}{unit}", ns / size));
            ns %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("2kb"), Ok(2000));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("1XB").is_err());
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("1mo"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("1y"), Ok(Duration::from_secs(365 * 86_400)));
        for bad in ["", "h", "1x", "1.5h", "-1s", "1h 30m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("99999999999999999w").is_err());
        for text in ["1d12h", "30d", "1h30m", "250us", "0s", "2w3d"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text.replace("30d", "4w2d"), "{text}");
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn task_slice_bounds() {
        assert_eq!(parse_task_slice("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_task_slice("50us"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_task_slice("100ms"), Ok(Duration::from_millis(100)));
        for bad in ["49us", "101ms", "1s", "0s", "soon"] {
            assert!(parse_task_slice(bad).is_err(), "{bad}");
        }
    }
}
