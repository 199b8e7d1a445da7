//! The command line: `shardline serve` and its flags, and the client commands (`query`,
//! `write`, and the management commands of [`crate::manage`]). Durations and sizes are read by
//! `shardline_units`, the same rules as the load generator and the catalog.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use shardline_units::parse_duration;

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

    /// Catalog log records between checkpoints of the whole catalog (written in the
    /// background); fewer make start-up replay less, more make checkpoints rarer.
    #[arg(
        long,
        env = "SHARDLINE_CATALOG_CHECKPOINT_RECORDS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub catalog_checkpoint_records: u64,

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

pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A size flag (rules in `shardline_units`) as the `usize` the server sizes memory with.
fn parse_size(s: &str) -> Result<usize, String> {
    let bytes = shardline_units::parse_size(s).map_err(|e| e.to_string())?;
    usize::try_from(bytes).map_err(|_| {
        format!("'{s}' is more bytes than this machine can address: give a smaller size")
    })
}

/// A snapshot file spans 1, 5 or 10 minutes (however it is written: `300s` is `5m`).
fn parse_gen1(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    match d.as_secs() {
        60 | 300 | 600 if d.subsec_nanos() == 0 => Ok(d),
        _ => Err(format!(
            "'{}' is not a gen1 duration: use 1m, 5m or 10m",
            s.trim()
        )),
    }
}

/// Task slices outside 50µs–100ms are mistakes: shorter spends the core on timer syscalls,
/// longer lets one write hold every request on its shard for a visible time.
fn parse_task_slice(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if !(Duration::from_micros(50)..=Duration::from_millis(100)).contains(&d) {
        return Err(format!(
            "task slice '{}' is outside 50us..100ms: give one in that range, e.g. 250us",
            s.trim()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::CommandFactory;

    #[test]
    fn sizes_are_usize_bytes() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("ten").is_err());
    }

    #[test]
    fn gen1_takes_one_five_or_ten_minutes_however_written() {
        assert_eq!(parse_gen1("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_gen1("600s"), Ok(Duration::from_secs(600)));
        for bad in ["2m", "1m1ns", "10", "soon"] {
            assert!(parse_gen1(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_default_parses() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["shardline", "serve"]).map_err(|e| e.to_string());
        let Ok(Cli {
            command: Command::Serve(a),
        }) = cli
        else {
            panic!("{cli:?}")
        };
        assert_eq!(a.max_http_request_size, 10 << 20);
        assert_eq!(a.query_memory_limit, 4 << 30);
        assert_eq!(a.wal_flush_interval, Duration::from_millis(10));
        assert_eq!(a.task_slice, Duration::from_micros(250));
        assert_eq!(a.gen1_duration, Duration::from_secs(600));
        assert_eq!(a.snapshot_interval, Duration::from_secs(600));
        assert_eq!(a.retention_check_interval, Duration::from_secs(1_800));
        assert_eq!(a.delete_grace_period, Duration::from_secs(86_400));
        assert_eq!(a.file_delete_delay, Duration::from_secs(60));
    }

    #[test]
    fn a_bare_number_is_refused_with_the_fix() {
        let e = Cli::try_parse_from(["shardline", "serve", "--wal-flush-interval", "10"])
            .map(|_| ())
            .map_err(|e| e.to_string());
        let Err(msg) = e else {
            panic!("a bare 10 was accepted")
        };
        assert!(msg.contains("--wal-flush-interval"), "{msg}");
        assert!(msg.contains("10s or 10ms"), "{msg}");
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
