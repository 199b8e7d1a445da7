//! Crash injection for tests: with `SHARDLINE_FAULT=<point>` in the environment the process
//! exits at once, without cleanup, when it reaches that named point (as `kill -9` would).
//! Points: `after-parquet-write`, `after-manifest-write` (see `shardline_shards::persist`).

use std::sync::OnceLock;

fn armed() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT
        .get_or_init(|| std::env::var("SHARDLINE_FAULT").ok())
        .as_deref()
}

/// Exits the process if `point` is the armed fault.
pub(super) fn hit(point: &str) {
    if armed() == Some(point) {
        eprintln!("SHARDLINE_FAULT: crashing at {point}");
        // SAFETY: _exit ends the process at once; nothing after it runs, which is the point.
        unsafe { libc::_exit(86) };
    }
}
