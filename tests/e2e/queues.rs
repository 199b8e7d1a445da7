//! Bounded queues: many writers and readers at once across shards lose nothing, every queue
//! drains once the load stops, and `/metrics` shows each queue's depth.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::Server;

/// The samples of a scrape, by name with labels as written.
fn scrape(s: &Server) -> HashMap<String, f64> {
    let (status, body) = s.get("/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(name, v)| Some((name.to_string(), v.parse::<f64>().ok()?)))
        .collect()
}

/// The per-shard queue series and the coordinator's.
const SHARD_QUEUES: [&str; 5] = [
    "shardline_mesh_queue_depth",
    "shardline_mesh_handlers",
    "shardline_shard_job_queue_depth",
    "shardline_wal_queue_bytes",
    "shardline_wal_queue_depth",
];
const COORDINATOR_QUEUES: [&str; 3] = [
    "shardline_query_queue_depth",
    "shardline_query_log_queue_depth",
    "shardline_query_log_dropped_total",
];

/// Whether every queue is empty. A peer answering the scrape is itself handling one mesh
/// message (the scrape's), so one handler per shard is allowed.
fn drained(m: &HashMap<String, f64>, shards: usize) -> bool {
    (0..shards).all(|i| {
        SHARD_QUEUES.iter().all(|q| {
            let limit = if *q == "shardline_mesh_handlers" {
                1.0
            } else {
                0.0
            };
            m.get(&format!("{q}{{shard=\"{i}\"}}"))
                .is_some_and(|v| *v <= limit)
        })
    }) && COORDINATOR_QUEUES
        .iter()
        .all(|q| m.get(*q).is_some_and(|v| *v == 0.0))
}

#[test]
fn concurrent_writes_and_queries_across_shards_lose_nothing_and_every_queue_drains() {
    const SHARDS: usize = 3;
    const WRITERS: usize = 24;
    const REQUESTS: usize = 8;
    const LINES: usize = 150;
    const READERS: usize = 6;
    const QUERIES: usize = 15;
    let s = Server::start(SHARDS);
    // Every queue is exported, for every shard, before any load.
    let m = scrape(&s);
    for i in 0..SHARDS {
        for q in SHARD_QUEUES {
            let name = format!("{q}{{shard=\"{i}\"}}");
            assert!(m.contains_key(&name), "no {name} among {:?}", m.keys());
        }
    }
    for q in COORDINATOR_QUEUES {
        assert!(m.contains_key(q), "no {q}");
    }
    assert_eq!(
        s.post("/api/v3/write_lp?db=q", b"cpu,host=seed v=0i 1\n").0,
        204
    );

    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let s = &s;
            scope.spawn(move || {
                for r in 0..REQUESTS {
                    // Distinct series, so every request has lines for every shard.
                    let body: String = (0..LINES)
                        .map(|i| format!("cpu,host=w{w}-r{r}-{i} v={i}i {}\n", 1_000 + i))
                        .collect();
                    // Half durable, half acknowledged once buffered.
                    let path = if r % 2 == 0 {
                        "/api/v3/write_lp?db=q"
                    } else {
                        "/api/v3/write_lp?db=q&no_sync=true"
                    };
                    let (status, text) = s.post(path, body.as_bytes());
                    assert_eq!(status, 204, "writer {w} request {r}: {text}");
                }
            });
        }
        for _ in 0..READERS {
            let s = &s;
            scope.spawn(move || {
                for _ in 0..QUERIES {
                    let rows = s.select("q", "SELECT count(*) AS n FROM cpu");
                    assert!(rows[0]["n"].as_i64().is_some_and(|n| n >= 1));
                }
            });
        }
    });

    let expected = (WRITERS * REQUESTS * LINES + 1) as i64;
    assert_eq!(
        s.count("q", "cpu"),
        expected,
        "every acknowledged line is there"
    );
    // The readers' queries (and the count) are all in the query log: none was dropped.
    let logged = s.select(
        "q",
        "SELECT count(*) AS n FROM system.queries WHERE query_text = 'SELECT count(*) AS n FROM cpu'",
    );
    assert_eq!(
        logged[0]["n"].as_i64(),
        Some((READERS * QUERIES + 1) as i64)
    );

    // Nothing stays queued once the load is over (no_sync data waits at most a flush
    // interval, the query log's keeper at most its period).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut m = scrape(&s);
    while !drained(&m, SHARDS) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        m = scrape(&s);
    }
    let mut depths: Vec<_> = m
        .iter()
        .filter(|(k, _)| k.contains("queue") || k.contains("mesh_handlers"))
        .collect();
    depths.sort_by(|a, b| a.0.cmp(b.0));
    assert!(drained(&m, SHARDS), "queues left non-empty: {depths:?}");
}
