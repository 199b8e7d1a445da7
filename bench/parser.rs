//! Parser throughput: Shardline's line-protocol parser against the `influxdb-line-protocol`
//! crate (InfluxDB 3 Core's parser) on the same TSBS cpu-only bodies.
//!
//! The bodies come from `shared/peers/gen_cpu.py` (run once into `$BENCH_LP_DIR`, default
//! `/tmp/shardline-bench-cpu`), so the data is the peers' yardstick data.
//!
//!     cargo bench --bench parser

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardline_shards::lp::{FieldValue, LineParser};
use shardline_shards::series::{series_hash, SeriesKeyBuf};

fn bodies() -> String {
    let dir = PathBuf::from(
        std::env::var("BENCH_LP_DIR").unwrap_or_else(|_| "/tmp/shardline-bench-cpu".into()),
    );
    if !dir.join("body_003.lp").exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/gen_cpu.py");
        let ok = std::process::Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .args(["--hosts", "1000", "--bodies", "4"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not run {} to generate the bench data",
            script.display()
        );
    }
    (0..4)
        .map(|i| std::fs::read_to_string(dir.join(format!("body_{i:03}.lp"))).expect("bench body"))
        .collect()
}

/// Parse every line and look at every value, as the write path does.
fn shardline_parse(body: &str) -> u64 {
    let mut p = LineParser::new(body);
    let mut acc = 0u64;
    while let Some(line) = p.next_line() {
        let line = line.expect("bench data is valid");
        acc = acc.wrapping_add(line.timestamp.unwrap_or(0) as u64);
        acc = acc.wrapping_add(p.tags().len() as u64);
        for f in p.fields() {
            if let FieldValue::I64(v) = f.value {
                acc = acc.wrapping_add(v as u64);
            }
        }
    }
    acc
}

/// Parse plus the series key and routing hash: the receiving shard's per-line work.
fn shardline_parse_and_route(body: &str) -> u64 {
    let mut p = LineParser::new(body);
    let mut key = SeriesKeyBuf::default();
    let mut acc = 0u64;
    while let Some(line) = p.next_line() {
        let line = line.expect("bench data is valid");
        let k = key.build(&line.measurement, p.tags());
        acc = acc.wrapping_add(series_hash("bench", k));
    }
    acc
}

fn core_crate_parse(body: &str) -> u64 {
    let mut acc = 0u64;
    for line in influxdb_line_protocol::parse_lines(body) {
        let line = line.expect("bench data is valid");
        acc = acc.wrapping_add(line.timestamp.unwrap_or(0) as u64);
        acc = acc.wrapping_add(line.series.tag_set.as_ref().map_or(0, |t| t.len()) as u64);
        for (_, v) in &line.field_set {
            if let influxdb_line_protocol::FieldValue::I64(v) = v {
                acc = acc.wrapping_add(*v as u64);
            }
        }
    }
    acc
}

fn parser(c: &mut Criterion) {
    let body = bodies();
    assert_eq!(
        shardline_parse(&body),
        core_crate_parse(&body),
        "both parsers read the same values"
    );
    let mut g = c.benchmark_group("parse_tsbs_cpu");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.sample_size(20);
    g.bench_function("shardline", |b| {
        b.iter(|| shardline_parse(black_box(&body)))
    });
    g.bench_function("shardline_with_series_hash", |b| {
        b.iter(|| shardline_parse_and_route(black_box(&body)))
    });
    g.bench_function("influxdb_line_protocol_crate", |b| {
        b.iter(|| core_crate_parse(black_box(&body)))
    });
    g.finish();
}

criterion_group!(benches, parser);
criterion_main!(benches);
