//! Shardline: a thread-per-core time-series database, wire-compatible with InfluxDB 3 Core.
//!
//! This crate wires the process: the command line ([`cli`]), start-up and the shard runtimes
//! ([`server`]), the HTTP API ([`http`]), the write path that validates and routes a request's
//! lines ([`write`](mod@write)), the query coordinator ([`query`]), the global catalog
//! ([`catalog`]) and the command-line client ([`client`]). One core's engine (parser, WAL,
//! buffer) lives in the `shardline-shards` crate.

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod http;
pub mod manage;
pub mod metrics;
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

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Added to the system clock: moved only through the test clock endpoint.
static CLOCK_OFFSET_NS: AtomicI64 = AtomicI64::new(0);
static TEST_CLOCK: AtomicBool = AtomicBool::new(false);

/// Wall-clock time in nanoseconds since the Unix epoch (0 before 1970, saturating in 2262):
/// the clock of default write timestamps, retention, deletion times and cache expiry.
pub fn now_ns() -> i64 {
    let system = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
    system.saturating_add(CLOCK_OFFSET_NS.load(Ordering::Relaxed))
}

/// Lets `POST /api/v3/debug/clock` move [`now_ns`] forward (tests of expiry, set by the
/// `SHARDLINE_TEST_CLOCK=1` environment variable; never on by default).
pub fn enable_test_clock() {
    TEST_CLOCK.store(true, Ordering::Relaxed);
}

pub fn test_clock_enabled() -> bool {
    TEST_CLOCK.load(Ordering::Relaxed)
}

/// Moves [`now_ns`] forward by `ns` (at most; the offset saturates).
pub fn advance_clock(ns: i64) {
    let _ = CLOCK_OFFSET_NS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
        Some(o.saturating_add(ns.max(0)))
    });
}
