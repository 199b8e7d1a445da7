//! Catalog scale: what one change costs at 100 and at 100,000 tables (and at 100 and 10,000
//! tokens), and how long opening a catalog of 100,000 tables and 10,000 tokens takes. Each
//! change is one durable catalog change (log append and fsync), made one after another as an
//! operator's script would; the percentiles are over 1,000 of them. The catalog lives in a
//! temporary directory under `CATALOG_BENCH_DIR` (default: the current directory), so the
//! figures are for the disk the data directory would be on.
//!
//!     cargo bench --bench catalog_scale

use std::sync::Arc;
use std::time::{Duration, Instant};

use shardline::catalog::tokens::{NewToken, PermissionSpec, TokenChange};
use shardline::catalog::{Catalog, Change, SchemaChange, TableChange};
use shardline_shards::schema::ColumnType;

const MEASURED: usize = 1000;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    futures::executor::block_on(f)
}

fn columns() -> Vec<(String, ColumnType)> {
    let mut c: Vec<(String, ColumnType)> = (0..4)
        .map(|i| (format!("tag{i}"), ColumnType::Tag))
        .collect();
    c.extend((0..6).map(|i| (format!("field{i}"), ColumnType::Float)));
    c
}

/// Adds tables `from..to` to `db`, 1,000 per change (setting up, not measured).
fn fill_tables(c: &Catalog, db: &str, from: usize, to: usize) {
    let mut at = from;
    while at < to {
        let end = (at + 1000).min(to);
        let tables = (at..end)
            .map(|i| TableChange {
                name: format!("t{i:06}"),
                columns: columns(),
            })
            .collect();
        block_on(c.apply(SchemaChange {
            database: db.into(),
            tables,
        }))
        .expect("filling tables");
        at = end;
    }
}

/// A token's hash as the server stores it (SHA-512 of a token text, in hex).
fn hash_of(i: usize) -> String {
    shardline::auth::to_hex(&shardline::auth::hash_token(&format!("bench-token-{i}")))
}

fn token(i: usize) -> Change {
    Change::Token(TokenChange::Create(NewToken {
        name: format!("token-{i:06}"),
        hash: hash_of(i + 1),
        expiry_ns: None,
        permissions: Some(vec![PermissionSpec {
            resource_type: "db".into(),
            resource_identifier: vec!["bench".into()],
            actions: vec!["read".into(), "write".into()],
        }]),
    }))
}

/// Adds tokens `from..to`, several requests in flight so the writer groups them (setting up).
fn fill_tokens(c: &Arc<Catalog>, from: usize, to: usize) {
    let mut at = from;
    while at < to {
        let end = (at + 100).min(to);
        let pending: Vec<_> = (at..end).map(|i| c.change(token(i))).collect();
        block_on(futures::future::join_all(pending))
            .into_iter()
            .for_each(|r| {
                r.expect("filling tokens");
            });
        at = end;
    }
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (at(0.50), at(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Times `MEASURED` table creates, one after another, starting at table number `first`.
fn time_table_creates(c: &Catalog, db: &str, first: usize) -> (Duration, Duration) {
    let times = (first..first + MEASURED)
        .map(|i| {
            let change = Change::CreateTable {
                database: db.into(),
                table: format!("t{i:06}"),
                columns: columns(),
                retention_ns: None,
            };
            let t = Instant::now();
            block_on(c.change(change)).expect("create table");
            t.elapsed()
        })
        .collect();
    percentiles(times)
}

fn time_token_creates(c: &Catalog, first: usize) -> (Duration, Duration) {
    let times = (first..first + MEASURED)
        .map(|i| {
            let t = Instant::now();
            block_on(c.change(token(i))).expect("create token");
            t.elapsed()
        })
        .collect();
    percentiles(times)
}

fn main() {
    let base = std::env::var_os("CATALOG_BENCH_DIR").unwrap_or_else(|| ".".into());
    let dir = tempfile::Builder::new()
        .prefix("catalog-bench-")
        .tempdir_in(base)
        .expect("a temporary directory");
    let c = Catalog::open(dir.path()).expect("open");
    block_on(c.change(Change::CreateDatabase {
        name: "bench".into(),
        retention_ns: None,
    }))
    .expect("create database");

    // Tables: the 101st.. at 100, then the 100,001st.. at 100,000, all in one database (the
    // worst case: one database's table list is what a change copies).
    fill_tables(&c, "bench", 0, 100);
    let (small50, small99) = time_table_creates(&c, "bench", 100);
    fill_tables(&c, "bench", 100 + MEASURED, 100_000);
    let (large50, large99) = time_table_creates(&c, "bench", 100_000);
    println!(
        "table create at 100 tables:     p50 {}  p99 {}",
        ms(small50),
        ms(small99)
    );
    println!(
        "table create at 100,000 tables: p50 {}  p99 {}  (p50 ratio {:.2})",
        ms(large50),
        ms(large99),
        large50.as_secs_f64() / small50.as_secs_f64()
    );

    fill_tokens(&c, 0, 100);
    let (small50, small99) = time_token_creates(&c, 100);
    fill_tokens(&c, 100 + MEASURED, 10_000);
    let (large50, large99) = time_token_creates(&c, 10_000);
    println!(
        "token create at 100 tokens:     p50 {}  p99 {}",
        ms(small50),
        ms(small99)
    );
    println!(
        "token create at 10,000 tokens:  p50 {}  p99 {}  (p50 ratio {:.2})",
        ms(large50),
        ms(large99),
        large50.as_secs_f64() / small50.as_secs_f64()
    );
    let snap = c.snapshot();
    let tables = snap
        .database("bench")
        .map_or(0, |d| d.live_tables().count());
    let tokens = c.token_list().len();
    // Dropping waits for the writer and any checkpoint in progress.
    drop(c);

    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let c = Catalog::open(dir.path()).expect("reopen");
        opens.push(t.elapsed());
        assert_eq!(c.token_list().len(), tokens);
    }
    let (open50, _) = percentiles(opens.clone());
    println!(
        "open with {tables} tables and {tokens} tokens: median {} (of {:?})",
        ms(open50),
        opens.iter().map(|d| ms(*d)).collect::<Vec<_>>()
    );
    let size: u64 = std::fs::read_dir(dir.path().join(shardline::catalog::DIR_NAME))
        .expect("catalog dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("catalog files: {:.1} MB", size as f64 / 1e6);
}
