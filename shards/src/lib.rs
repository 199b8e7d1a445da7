//! `shardline-shards`: one core's engine.
//!
//! Everything a shard does without HTTP or query planning: the line-protocol parser ([`lp`]),
//! timestamp precision ([`precision`]), the schema types a shard checks writes against
//! ([`schema`]), series keys and their routing hash ([`series`]), the write-ahead log ([`wal`]), the
//! columnar write buffer ([`buffer`]), the last-value and distinct-value caches ([`cache`]) and its persistence to Parquet ([`persist`]). Nothing here depends on the server crate; what a shard
//! needs from outside (catalog snapshot, clock, configuration) is passed in.

pub mod buffer;
pub mod bytes;
pub mod cache;
pub mod ingest;
pub mod lp;
pub mod persist;
pub mod precision;
pub mod resolve;
pub mod rows;
pub mod schema;
pub mod series;
pub mod wal;
