//! End-to-end tests: the real `shardline` binary on an ephemeral port, spoken to over real
//! HTTP. One test binary; each test starts its own server in its own temporary data directory.

mod auth;
mod caches;
mod catalog;
mod clients;
mod durability;
mod harness;
mod influxql;
mod loadgen;
mod manage;
mod metrics;
mod persist;
mod protocol;
mod query;
mod queues;
mod v1_delete;
mod v1_golden;
mod v1_query;
mod v1_replays;
mod write;
