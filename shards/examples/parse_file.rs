//! Parses a line-protocol file N times and prints the line count: a fixed workload for
//! instruction-counting profilers, whose counts (unlike timings) do not move with machine noise.
//!
//!     cargo build --release -p shardline-shards --example parse_file
//!     valgrind --tool=callgrind target/release/examples/parse_file FILE 3

use shardline_shards::lp::LineParser;
use shardline_shards::series::SeriesKeyBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), times) = (
        args.next(),
        args.next()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(1),
    ) else {
        eprintln!("usage: parse_file FILE [TIMES]");
        std::process::exit(2);
    };
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut key = SeriesKeyBuf::default();
    let (mut lines, mut bad, mut acc) = (0u64, 0u64, 0u64);
    for _ in 0..times {
        let mut p = LineParser::new(&body);
        while let Some(l) = p.next_line() {
            match l {
                Ok(l) => {
                    lines += 1;
                    acc = acc.wrapping_add(
                        key.build(&l.measurement, p.tags()).len() as u64 + p.fields().len() as u64,
                    );
                }
                Err(_) => bad += 1,
            }
        }
    }
    println!("{lines} lines parsed, {bad} rejected ({acc})");
}
