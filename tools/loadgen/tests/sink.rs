//! The load generator against its own body-discarding sink, over real sockets: exact counts,
//! the open loop's rate, and the query mode's plumbing.

use std::sync::atomic::Ordering;

use clap::Parser;
use shardline_loadgen::cli::{Cli, Command};

fn sink() -> shardline_loadgen::sink::Sink {
    shardline_loadgen::sink::spawn("127.0.0.1:0".parse().unwrap(), 1, None).unwrap()
}

fn write_args(url: &str, extra: &[&str]) -> shardline_loadgen::cli::WriteArgs {
    let mut argv = vec![
        "shardline-loadgen",
        "write",
        "--url",
        url,
        "--progress",
        "0",
    ];
    argv.extend_from_slice(extra);
    match Cli::parse_from(argv).command {
        Command::Write(a) => a,
        _ => unreachable!(),
    }
}

#[test]
fn a_bounded_run_sends_exactly_the_lines_asked_for() {
    let s = sink();
    let url = format!("http://{}", s.addr);
    for data in ["cpu", "devops", "iot"] {
        let before = s.counters.requests.load(Ordering::SeqCst);
        let a = write_args(
            &url,
            &[
                "--data",
                data,
                "--lines",
                "12345",
                "--batch-lines",
                "1000",
                "--connections",
                "3",
            ],
        );
        let r = shardline_loadgen::write(&a).unwrap();
        assert_eq!(r.lines_accepted, 12_345, "{data}");
        assert_eq!(r.requests, 13, "{data}");
        assert_eq!(r.failed_requests, 0);
        assert_eq!(r.status.get("204"), Some(&13));
        assert_eq!(s.counters.requests.load(Ordering::SeqCst) - before, 13);
    }
}

#[test]
fn gzip_and_every_endpoint_reach_the_server() {
    let s = sink();
    let url = format!("http://{}", s.addr);
    for endpoint in ["v1", "v2", "v3"] {
        let a = write_args(
            &url,
            &[
                "--endpoint",
                endpoint,
                "--gzip",
                "--lines",
                "3000",
                "--batch-lines",
                "500",
                "--precision",
                "s",
            ],
        );
        let r = shardline_loadgen::write(&a).unwrap();
        assert_eq!(
            (r.lines_accepted, r.failed_requests),
            (3000, 0),
            "{endpoint}"
        );
    }
}

#[test]
fn the_open_loop_holds_its_rate_within_five_percent() {
    let s = sink();
    let url = format!("http://{}", s.addr);
    let a = write_args(
        &url,
        &[
            "--rate",
            "20000",
            "--batch-lines",
            "200",
            "--connections",
            "4",
            "--duration",
            "2s",
        ],
    );
    let r = shardline_loadgen::write(&a).unwrap();
    let achieved = r.lines_accepted as f64 / r.elapsed_s;
    assert!(
        (achieved - 20_000.0).abs() / 20_000.0 < 0.05,
        "achieved {achieved:.0} lines/s against 20,000"
    );
    assert_eq!(
        r.lines_accepted, 40_000,
        "200 requests of 200 lines are due in 2 s"
    );
}

#[test]
fn the_query_mode_runs_its_count_and_reports_each_kind() {
    let s = sink();
    let argv = [
        "shardline-loadgen",
        "query",
        "--url",
        &format!("http://{}", s.addr),
        "--progress",
        "0",
        "--count",
        "60",
        "--mix",
        "all",
    ];
    let Command::Query(a) = Cli::parse_from(argv).command else {
        unreachable!()
    };
    let r = shardline_loadgen::query(&a).unwrap();
    assert_eq!(r.requests, 60);
    assert_eq!(r.failed_requests, 0);
    assert_eq!(r.kinds.len(), 12);
    assert_eq!(r.kinds.iter().map(|k| k.ok).sum::<u64>(), 60);
}

#[test]
fn a_refused_connection_is_counted_not_hidden() {
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = write_args(
        &format!("http://127.0.0.1:{port}"),
        &[
            "--lines",
            "2000",
            "--batch-lines",
            "1000",
            "--connections",
            "1",
        ],
    );
    let r = shardline_loadgen::write(&a).unwrap();
    assert_eq!(r.lines_accepted, 0);
    assert_eq!(r.lines_rejected, 2000);
    assert_eq!(r.transport_errors, 2);
    assert!(
        r.error_samples[0].contains("transport"),
        "{:?}",
        r.error_samples
    );
}
