//! `GET /metrics`: what Prometheus scrapes, added up over every shard.

use std::collections::HashMap;

use crate::harness::{http, respond_typed, Server};

/// The samples of an OpenMetrics text, by their full name with labels as written.
fn scrape(s: &Server) -> (String, HashMap<String, f64>) {
    let (status, content_type, body) = respond_typed(http().get(&s.url("/metrics")).call());
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert_eq!(body.lines().last(), Some("# EOF"), "{body}");
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (name.to_string(), value.parse::<f64>().unwrap())
        })
        .collect();
    (body, samples)
}

fn value(samples: &HashMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no sample {name} among {:?}", samples.keys()))
}

/// The sum of every sample of a metric (over its labels).
fn total(samples: &HashMap<String, f64>, metric: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(metric))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn metrics_count_every_shards_writes_requests_and_buffers() {
    let s = Server::start(2);
    // Many series so both shards own some; several requests so both shards receive some.
    let mut written = 0;
    let mut bytes = 0;
    for r in 0..8 {
        let body: String = (0..50)
            .map(|i| format!("cpu,host=h{r}-{i} usage=1.5 {}\n", 1_000 + i))
            .collect();
        written += 50;
        bytes += body.len() - 50; // the lines without their newlines
        assert_eq!(s.post("/api/v3/write_lp?db=a", body.as_bytes()).0, 204);
    }
    // A partial write: one good line, two bad ones.
    let (st, body) = s.post(
        "/api/v3/write_lp?db=a",
        b"cpu,host=x usage=2 5\ncpu,host=y usage=\"text\" 5\nnot line protocol\n",
    );
    assert_eq!(st, 400, "{body}");
    written += 1;
    bytes += "cpu,host=x usage=2 5".len();
    // An all-or-nothing write that fails writes nothing and counts its bad line.
    assert_eq!(s.post("/write?db=a", b"cpu usage=1 1\ncpu usage=\n").0, 400);
    assert_eq!(s.post("/api/v3/write_lp?db=b", b"m v=1i 1\n").0, 204);
    assert_eq!(s.get("/no/such/endpoint").0, 404);
    assert_eq!(s.get("/health").0, 200);

    let (text, m) = scrape(&s);
    assert_eq!(
        value(&m, r#"influxdb3_write_lines_total{db="a"}"#),
        f64::from(written),
        "{text}"
    );
    assert_eq!(
        value(&m, r#"influxdb3_write_bytes_total{db="a"}"#),
        bytes as f64
    );
    assert_eq!(
        value(&m, r#"influxdb3_write_lines_rejected_total{db="a"}"#),
        3.0
    );
    assert_eq!(value(&m, r#"influxdb3_write_lines_total{db="b"}"#), 1.0);
    assert_eq!(
        value(
            &m,
            r#"http_requests_total{path="/api/v3/write_lp",status="204"}"#
        ),
        9.0
    );
    assert_eq!(
        value(
            &m,
            r#"http_requests_total{path="/api/v3/write_lp",status="400"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&m, r#"http_requests_total{path="/write",status="400"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"http_requests_total{path="other",status="404"}"#),
        1.0
    );
    assert!(!text.contains("/no/such/endpoint"), "{text}");
    assert_eq!(
        value(
            &m,
            r#"http_request_duration_seconds_count{path="/api/v3/write_lp"}"#
        ),
        10.0
    );
    assert_eq!(
        value(
            &m,
            r#"http_request_duration_seconds_bucket{le="+Inf",path="/api/v3/write_lp"}"#
        ),
        10.0
    );
    // Every shard answers for its own buffer; together they hold every row written.
    assert!(
        m.contains_key(r#"shardline_buffer_rows{shard="0"}"#),
        "{text}"
    );
    assert!(
        m.contains_key(r#"shardline_buffer_rows{shard="1"}"#),
        "{text}"
    );
    assert_eq!(total(&m, "shardline_buffer_rows"), f64::from(written + 1));
    assert!(total(&m, "shardline_wal_group_commits_total") >= 1.0);
    assert_eq!(value(&m, "shardline_catalog_databases"), 2.0);
    assert_eq!(value(&m, "shardline_catalog_tables"), 2.0);
    assert!(value(&m, "process_resident_memory_bytes") > 0.0);
    assert!(value(&m, "process_cpu_seconds_total") > 0.0);

    // A deleted database leaves the listing at once.
    assert_eq!(
        s.send("DELETE", "/api/v3/configure/database?db=b", None).0,
        200
    );
    let (text, m) = scrape(&s);
    assert!(!text.contains(r#"db="b""#), "{text}");
    assert_eq!(value(&m, "shardline_catalog_databases"), 1.0);
    // The scrapes themselves are counted too.
    assert!(value(&m, r#"http_requests_total{path="/metrics",status="200"}"#) >= 1.0);
    assert_eq!(s.send("POST", "/metrics", None).0, 405);
}
