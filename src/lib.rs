//! Shardline: a thread-per-core time-series database, wire-compatible with InfluxDB 3 Core.
//!
//! This crate wires the process: the command line ([`cli`]), start-up and the shard runtimes
//! ([`server`]), the HTTP API ([`http`]), the write path that validates and routes a request's
//! lines ([`write`](mod@write)), the query coordinator ([`query`]), the global catalog
//! ([`catalog`]) and the command-line client ([`client`]). One core's engine (parser, WAL,
//! buffer) lives in the `shardline-shards` crate.

pub mod catalog;
pub mod cli;
pub mod client;
pub mod http;
pub mod query;
pub mod server;
pub mod write;

/// Shardline's version, as reported by `/ping` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from, when known.
pub const REVISION: &str = match option_env!("SHARDLINE_GIT_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// Wall-clock time in nanoseconds since the Unix epoch (0 before 1970, saturating in 2262):
/// the clock of default write timestamps, retention and deletion times.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}
