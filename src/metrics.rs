//! Server metrics for `GET /metrics`, in the OpenMetrics text format Prometheus scrapes.
//!
//! Each shard counts into its own [`ShardMetrics`], made of `Cell`s: the shard's thread is
//! the only writer, so a request pays a few plain adds and no atomic, lock or allocation
//! (maps are keyed by what a request already knows and stop growing once every endpoint,
//! status and database has been seen). A scrape asks every shard for a [`ShardSample`] over
//! the shard channels, adds them up in [`Gathered`], and encodes that with
//! `prometheus-client`. Label values come from small closed sets (endpoint paths, status
//! codes, shard indices, database names), never from request text, so an unknown path cannot
//! grow the output.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use shardline_shards::schema::CatalogSnapshot;

use crate::http::routes::{Route, OTHER_LABEL};

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which endpoint a request went to: the `path` label of the HTTP metrics. Requests to no
/// endpoint share one label, whatever their path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint(pub Option<Route>);

impl Endpoint {
    /// Every route, and the one label of unknown paths.
    const COUNT: usize = Route::ALL.len() + 1;

    fn all() -> impl Iterator<Item = Endpoint> {
        Route::ALL
            .into_iter()
            .map(|r| Endpoint(Some(r)))
            .chain([Endpoint(None)])
    }

    /// The `path` label.
    pub fn label(self) -> &'static str {
        self.0.map_or(OTHER_LABEL, Route::label)
    }

    fn index(self) -> usize {
        self.0.map_or(Route::ALL.len(), Route::index)
    }
}

/// Upper bounds of the request-duration buckets, in nanoseconds: 100 µs to 10 s, dense
/// around the millisecond a durable write acknowledgement takes.
const BUCKET_BOUNDS_NS: [u64; 14] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];
/// One bucket per bound plus `+Inf`.
const BUCKETS: usize = BUCKET_BOUNDS_NS.len() + 1;

/// A latency histogram one thread writes.
#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket, not cumulative (the encoder accumulates).
    counts: [Cell<u64>; BUCKETS],
    sum_ns: Cell<u64>,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_NS.partition_point(|&bound| bound < ns);
        let c = &self.counts[bucket];
        c.set(c.get() + 1);
        self.sum_ns.set(self.sum_ns.get().saturating_add(ns));
    }

    fn sample(&self) -> HistogramSample {
        HistogramSample {
            counts: std::array::from_fn(|i| self.counts[i].get()),
            sum_ns: self.sum_ns.get(),
        }
    }
}

/// A histogram's values at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramSample {
    pub counts: [u64; BUCKETS],
    pub sum_ns: u64,
}

impl HistogramSample {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn add(&mut self, other: &HistogramSample) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }
}

/// What one database's writes through one shard came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Lines written (acknowledged).
    pub lines: u64,
    /// Bytes of line protocol in those lines.
    pub bytes: u64,
    /// Lines refused (bad syntax, schema conflicts, limits), whether or not the rest of
    /// their request was written.
    pub rejected: u64,
}

impl WriteCounts {
    fn add(&mut self, o: &WriteCounts) {
        self.lines += o.lines;
        self.bytes += o.bytes;
        self.rejected += o.rejected;
    }
}

/// One shard's counters, owned by its context and written only on its thread.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// Requests answered, by endpoint and status code.
    requests: RefCell<HashMap<(Endpoint, u16), u64>>,
    /// Time from routing a request to having its answer, by endpoint.
    durations: [Histogram; Endpoint::COUNT],
    /// Write outcomes, by database id (names are looked up when scraped, so a rename or a
    /// soft delete shows at once).
    writes: RefCell<HashMap<u32, WriteCounts>>,
}

impl ShardMetrics {
    pub fn record_request(&self, route: Option<Route>, status: u16, elapsed: Duration) {
        let endpoint = Endpoint(route);
        *self
            .requests
            .borrow_mut()
            .entry((endpoint, status))
            .or_insert(0) += 1;
        self.durations[endpoint.index()].observe(elapsed);
    }

    /// Adds one write request's outcome to its database's counts. `database_id` is `None`
    /// when the request's database does not exist (every line was rejected before one was
    /// created); those rejections are reported under `db=""`.
    pub fn record_write(&self, database_id: Option<u32>, counts: WriteCounts) {
        let key = database_id.unwrap_or(u32::MAX);
        self.writes
            .borrow_mut()
            .entry(key)
            .or_default()
            .add(&counts);
    }

    /// This shard's counters now, with the gauges its caller read.
    pub fn sample(&self, shard: usize, gauges: ShardGauges) -> ShardSample {
        ShardSample {
            shard,
            requests: self
                .requests
                .borrow()
                .iter()
                .map(|(&(e, s), &n)| (e, s, n))
                .collect(),
            durations: Endpoint::all()
                .map(|e| (e, self.durations[e.index()].sample()))
                .filter(|(_, h)| h.count() > 0)
                .collect(),
            writes: self
                .writes
                .borrow()
                .iter()
                .map(|(&db, &c)| (db, c))
                .collect(),
            gauges,
            coordinator: None,
        }
    }
}

/// Point-in-time values of one shard's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardGauges {
    /// Rows held in memory and not yet in Parquet files (active and persisting buffers).
    pub buffer_rows: u64,
    pub buffer_bytes: u64,
    /// WAL group commits (fsyncs) since start.
    pub wal_group_commits: u64,
    /// Parquet files the shard's manifest lists, and their bytes.
    pub parquet_files: u64,
    pub parquet_bytes: u64,
    pub cache_bytes: u64,
    pub http_connections: u64,
    /// Messages from other shards on their way into this shard's mesh channels (queued, or
    /// their sender waiting for room), and those being handled.
    pub mesh_queue_depth: u64,
    pub mesh_handlers: u64,
    /// The coordinator's jobs (table snapshots, cache lookups, file lists) waiting for the shard.
    pub job_queue_depth: u64,
    /// Bytes appended to the WAL and not yet handed to a group write, and the writes waiting
    /// for room in the next group.
    pub wal_queue_bytes: u64,
    pub wal_queue_depth: u64,
}

/// The queues of the process-wide query coordinator, read by the shard answering a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoordinatorQueues {
    /// Queries handed over by the shards and not yet taken by the coordinator.
    pub query_queue_depth: u64,
    /// Query log records (a query's start or end) waiting to enter `system.queries`.
    pub query_log_queue_depth: u64,
    /// Query log records dropped because that queue was full.
    pub query_log_dropped: u64,
}

/// A per-shard series of the scrape: one sample per shard, labelled `shard`.
struct ShardSeries {
    name: &'static str,
    help: &'static str,
    /// In bytes (the name gets `_bytes`).
    bytes: bool,
    /// A counter (the name gets `_total`) rather than a gauge.
    counter: bool,
    value: fn(&ShardGauges) -> u64,
}

const SHARD_SERIES: [ShardSeries; 12] = [
    ShardSeries {
        name: "shardline_buffer_rows",
        help: "Rows in memory not yet persisted to Parquet, by shard",
        bytes: false,
        counter: false,
        value: |g| g.buffer_rows,
    },
    ShardSeries {
        name: "shardline_buffer",
        help: "Estimated memory of the rows not yet persisted, by shard",
        bytes: true,
        counter: false,
        value: |g| g.buffer_bytes,
    },
    ShardSeries {
        name: "shardline_wal_group_commits",
        help: "WAL group commits (one fsync each), by shard",
        bytes: false,
        counter: true,
        value: |g| g.wal_group_commits,
    },
    ShardSeries {
        name: "shardline_parquet_files",
        help: "Parquet files the shard's manifest lists",
        bytes: false,
        counter: false,
        value: |g| g.parquet_files,
    },
    ShardSeries {
        name: "shardline_parquet",
        help: "Size of the Parquet files the shard's manifest lists",
        bytes: true,
        counter: false,
        value: |g| g.parquet_bytes,
    },
    ShardSeries {
        name: "shardline_cache",
        help: "Estimated memory of the last-value and distinct-value caches, by shard",
        bytes: true,
        counter: false,
        value: |g| g.cache_bytes,
    },
    ShardSeries {
        name: "shardline_http_connections",
        help: "Open HTTP connections, by shard",
        bytes: false,
        counter: false,
        value: |g| g.http_connections,
    },
    ShardSeries {
        name: "shardline_mesh_queue_depth",
        help: "Messages from other shards waiting in this shard's mesh channels (or for room \
               in them), by shard",
        bytes: false,
        counter: false,
        value: |g| g.mesh_queue_depth,
    },
    ShardSeries {
        name: "shardline_mesh_handlers",
        help: "Messages from other shards being handled, by shard",
        bytes: false,
        counter: false,
        value: |g| g.mesh_handlers,
    },
    ShardSeries {
        name: "shardline_shard_job_queue_depth",
        help: "Query jobs (table snapshots, cache lookups, file lists) waiting for the shard, \
               by shard",
        bytes: false,
        counter: false,
        value: |g| g.job_queue_depth,
    },
    ShardSeries {
        name: "shardline_wal_queue",
        help: "WAL bytes appended and not yet handed to a group write, by shard",
        bytes: true,
        counter: false,
        value: |g| g.wal_queue_bytes,
    },
    ShardSeries {
        name: "shardline_wal_queue_depth",
        help: "Writes waiting for room in the next WAL group, by shard",
        bytes: false,
        counter: false,
        value: |g| g.wal_queue_depth,
    },
];

/// One shard's metrics, sent to the shard answering a scrape.
#[derive(Debug, Clone, Default)]
pub struct ShardSample {
    pub shard: usize,
    pub requests: Vec<(Endpoint, u16, u64)>,
    pub durations: Vec<(Endpoint, HistogramSample)>,
    pub writes: Vec<(u32, WriteCounts)>,
    pub gauges: ShardGauges,
    /// Set on the sample of the shard answering the scrape only: the coordinator is one for
    /// the whole process.
    pub coordinator: Option<CoordinatorQueues>,
}

/// Process-wide figures read from `/proc/self` at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSample {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
    pub start_time_seconds: f64,
}

impl ProcessSample {
    /// Reads `/proc/self`; figures it cannot read stay zero (the scrape still answers).
    pub fn read() -> ProcessSample {
        let mut p = ProcessSample::default();
        // SAFETY: sysconf only reads its argument.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name, which may itself hold spaces.
            if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
                let f: Vec<&str> = rest.split(' ').collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                // Field numbers from proc(5), minus the three before `rest`.
                p.cpu_seconds = (num(11) + num(12)) as f64 / ticks;
                p.threads = num(17);
                p.virtual_bytes = num(20);
                p.resident_bytes = num(21) * page;
                let boot = boot_time_seconds();
                if boot > 0 {
                    p.start_time_seconds = boot as f64 + num(19) as f64 / ticks;
                }
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            p.open_fds = dir.count() as u64;
        }
        p
    }
}

fn boot_time_seconds() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Every shard's samples added up, with the catalog's figures: what a scrape encodes.
#[derive(Debug, Default)]
pub struct Gathered {
    requests: BTreeMap<(Endpoint, u16), u64>,
    durations: BTreeMap<Endpoint, HistogramSample>,
    /// By database name; rows of deleted or unknown databases are dropped.
    writes: BTreeMap<String, WriteCounts>,
    /// Lines rejected before any database existed for them.
    rejected_without_database: u64,
    shards: Vec<(usize, ShardGauges)>,
    coordinator: CoordinatorQueues,
    databases: u64,
    tables: u64,
    tokens: u64,
    /// Changes waiting for the catalog writer.
    catalog_queue: u64,
    process: ProcessSample,
}

impl Gathered {
    /// With the depth of the catalog writer's queue.
    pub fn with_catalog_queue(mut self, depth: usize) -> Gathered {
        self.catalog_queue = depth as u64;
        self
    }

    pub fn new(
        samples: &[ShardSample],
        catalog: &CatalogSnapshot,
        tokens: usize,
        process: ProcessSample,
    ) -> Gathered {
        let mut g = Gathered {
            process,
            tokens: tokens as u64,
            ..Gathered::default()
        };
        let live = catalog
            .databases
            .iter()
            .filter(|d| d.deleted_at_ns.is_none());
        for db in live {
            g.databases += 1;
            g.tables += db.live_tables().count() as u64;
        }
        for s in samples {
            for &(e, status, n) in &s.requests {
                *g.requests.entry((e, status)).or_insert(0) += n;
            }
            for (e, h) in &s.durations {
                g.durations.entry(*e).or_default().add(h);
            }
            for (db, counts) in &s.writes {
                match catalog
                    .database_by_id(*db)
                    .filter(|d| d.deleted_at_ns.is_none())
                {
                    Some(d) => g.writes.entry(d.name.to_string()).or_default().add(counts),
                    None if *db == u32::MAX => g.rejected_without_database += counts.rejected,
                    None => {}
                }
            }
            g.shards.push((s.shard, s.gauges));
            if let Some(c) = s.coordinator {
                g.coordinator = c;
            }
        }
        g.shards.sort_by_key(|(shard, _)| *shard);
        g
    }

    /// The OpenMetrics text of these figures, ending in `# EOF`.
    pub fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Vec<(&'static str, String)>, u64)>,
) -> std::fmt::Result {
    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A metric with one value and no labels.
fn single<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: M,
) -> std::fmt::Result {
    let m = encoder.encode_descriptor(name, help, unit, metric.metric_type())?;
    metric.encode(m)
}

impl prometheus_client::collector::Collector for Gathered {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        counter(
            &mut e,
            "http_requests",
            "HTTP requests answered, by endpoint and status code",
            self.requests.iter().map(|(&(ep, status), &n)| {
                (
                    vec![
                        ("path", ep.label().to_string()),
                        ("status", status.to_string()),
                    ],
                    n,
                )
            }),
        )?;
        {
            let mut m = e.encode_descriptor(
                "http_request_duration",
                "Time from receiving a request's head to having its answer, by endpoint",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (ep, h) in &self.durations {
                let mut buckets: Vec<(f64, u64)> = BUCKET_BOUNDS_NS
                    .iter()
                    .zip(h.counts)
                    .map(|(&bound, n)| (bound as f64 / 1e9, n))
                    .collect();
                buckets.push((f64::INFINITY, h.counts[BUCKETS - 1]));
                let labels = [("path", ep.label())];
                m.encode_family(&labels)?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        h.sum_ns as f64 / 1e9,
                        h.count(),
                        &buckets,
                        None,
                    )?;
            }
        }
        let by_db = |f: fn(&WriteCounts) -> u64| {
            self.writes
                .iter()
                .map(move |(db, c)| (vec![("db", db.clone())], f(c)))
        };
        counter(
            &mut e,
            "influxdb3_write_lines",
            "Lines written and acknowledged, by database",
            by_db(|c| c.lines),
        )?;
        counter(
            &mut e,
            "influxdb3_write_bytes",
            "Bytes of line protocol in lines written, by database",
            by_db(|c| c.bytes),
        )?;
        counter(
            &mut e,
            "influxdb3_write_lines_rejected",
            "Lines refused (syntax, schema conflict, limit), by database; db=\"\" for lines \
             refused before any database existed for them",
            by_db(|c| c.rejected).chain(
                (self.rejected_without_database > 0)
                    .then(|| (vec![("db", String::new())], self.rejected_without_database)),
            ),
        )?;
        for series in &SHARD_SERIES {
            let unit = series.bytes.then_some(&Unit::Bytes);
            let kind = if series.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut m = e.encode_descriptor(series.name, series.help, unit, kind)?;
            for (shard, g) in &self.shards {
                let labels = [("shard", shard.to_string())];
                let value = (series.value)(g);
                let family = m.encode_family(&labels)?;
                if series.counter {
                    ConstCounter::new(value).encode(family)?;
                } else {
                    ConstGauge::new(value).encode(family)?;
                }
            }
        }
        let g = ConstGauge::<u64>::new;
        let c = &self.coordinator;
        single(
            &mut e,
            "shardline_query_queue_depth",
            "Queries handed over by the shards and not yet taken by the coordinator",
            None,
            g(c.query_queue_depth),
        )?;
        single(
            &mut e,
            "shardline_query_log_queue_depth",
            "Query log records waiting to enter system.queries",
            None,
            g(c.query_log_queue_depth),
        )?;
        single(
            &mut e,
            "shardline_query_log_dropped",
            "Query log records (a query's start or end) dropped because the log's queue was full",
            None,
            ConstCounter::new(c.query_log_dropped),
        )?;
        single(
            &mut e,
            "shardline_catalog_databases",
            "Databases (not deleted)",
            None,
            g(self.databases),
        )?;
        single(
            &mut e,
            "shardline_catalog_tables",
            "Tables of databases not deleted",
            None,
            g(self.tables),
        )?;
        single(
            &mut e,
            "shardline_tokens",
            "Tokens in the catalog, expired ones included",
            None,
            g(self.tokens),
        )?;
        single(
            &mut e,
            "shardline_catalog_queue_depth",
            "Catalog changes waiting for the catalog writer (at most 1024; then writers wait)",
            None,
            g(self.catalog_queue),
        )?;
        let p = &self.process;
        single(
            &mut e,
            "process_cpu",
            "User and system CPU time the server has used",
            Some(&Unit::Seconds),
            ConstCounter::new(p.cpu_seconds),
        )?;
        single(
            &mut e,
            "process_resident_memory",
            "Resident memory",
            Some(&Unit::Bytes),
            g(p.resident_bytes),
        )?;
        single(
            &mut e,
            "process_virtual_memory",
            "Virtual memory",
            Some(&Unit::Bytes),
            g(p.virtual_bytes),
        )?;
        single(
            &mut e,
            "process_open_fds",
            "Open file descriptors",
            None,
            g(p.open_fds),
        )?;
        single(&mut e, "process_threads", "OS threads", None, g(p.threads))?;
        single(
            &mut e,
            "process_start_time",
            "When the process started, in seconds since the Unix epoch",
            Some(&Unit::Seconds),
            ConstGauge::new(p.start_time_seconds),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_first_bucket_whose_bound_holds_them() {
        let h = Histogram::default();
        h.observe(Duration::from_nanos(100_000)); // on a bound: that bucket
        h.observe(Duration::from_nanos(100_001)); // just past it: the next
        h.observe(Duration::from_secs(60)); // past every bound: +Inf
        h.observe(Duration::ZERO);
        let s = h.sample();
        assert_eq!(s.counts[0], 2);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[BUCKETS - 1], 1);
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_ns, 100_000 + 100_001 + 60_000_000_000);
    }

    #[test]
    fn every_endpoint_has_its_own_slot_and_unknown_paths_share_one_label() {
        let all: Vec<_> = Endpoint::all().collect();
        assert_eq!(all.len(), Endpoint::COUNT);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.index(), i, "{e:?}");
        }
        assert_eq!(Endpoint(None).label(), "other");
        assert_eq!(Endpoint(Some(Route::Health)).label(), "/health");
    }

    fn snapshot() -> CatalogSnapshot {
        use shardline_shards::schema::DbSchema;
        use std::sync::Arc;
        let a = DbSchema::new(0, Arc::from("alpha"), Vec::new());
        let mut gone = DbSchema::new(1, Arc::from("gone"), Vec::new());
        gone.deleted_at_ns = Some(1);
        CatalogSnapshot::new(1, vec![Arc::new(a), Arc::new(gone)])
    }

    #[test]
    fn shards_add_up_and_deleted_databases_drop_out() {
        let m0 = ShardMetrics::default();
        let m1 = ShardMetrics::default();
        m0.record_request(Some(Route::WriteLp), 204, Duration::from_micros(800));
        m1.record_request(Some(Route::WriteLp), 204, Duration::from_micros(900));
        m1.record_request(None, 404, Duration::from_micros(5));
        let w = |lines, bytes, rejected| WriteCounts {
            lines,
            bytes,
            rejected,
        };
        m0.record_write(Some(0), w(10, 300, 1));
        m1.record_write(Some(0), w(5, 150, 0));
        m1.record_write(Some(1), w(7, 70, 0));
        m1.record_write(None, w(0, 0, 3));
        let g = ShardGauges {
            buffer_rows: 12,
            mesh_queue_depth: 3,
            wal_queue_bytes: 512,
            wal_queue_depth: 1,
            ..ShardGauges::default()
        };
        let mut here = m1.sample(1, g);
        here.coordinator = Some(CoordinatorQueues {
            query_queue_depth: 4,
            query_log_queue_depth: 9,
            query_log_dropped: 2,
        });
        let samples = [here, m0.sample(0, ShardGauges::default())];
        let text = Gathered::new(&samples, &snapshot(), 2, ProcessSample::default())
            .with_catalog_queue(3)
            .encode();
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            )
        };
        has(r#"http_requests_total{path="/api/v3/write_lp",status="204"} 2"#);
        has(r#"http_requests_total{path="other",status="404"} 1"#);
        has(r#"http_request_duration_seconds_count{path="/api/v3/write_lp"} 2"#);
        has(r#"http_request_duration_seconds_bucket{le="0.001",path="/api/v3/write_lp"} 2"#);
        has(r#"http_request_duration_seconds_bucket{le="0.0005",path="/api/v3/write_lp"} 0"#);
        has(r#"influxdb3_write_lines_total{db="alpha"} 15"#);
        has(r#"influxdb3_write_bytes_total{db="alpha"} 450"#);
        has(r#"influxdb3_write_lines_rejected_total{db="alpha"} 1"#);
        has(r#"influxdb3_write_lines_rejected_total{db=""} 3"#);
        has(r#"shardline_buffer_rows{shard="0"} 0"#);
        has(r#"shardline_buffer_rows{shard="1"} 12"#);
        has(r#"shardline_mesh_queue_depth{shard="1"} 3"#);
        has(r#"shardline_shard_job_queue_depth{shard="0"} 0"#);
        has(r#"shardline_wal_queue_bytes{shard="1"} 512"#);
        has(r#"shardline_wal_queue_depth{shard="1"} 1"#);
        has("shardline_query_queue_depth 4");
        has("shardline_query_log_queue_depth 9");
        has("shardline_query_log_dropped_total 2");
        has("shardline_catalog_databases 1");
        has("shardline_tokens 2");
        has("shardline_catalog_queue_depth 3");
        assert!(!text.contains("gone"), "{text}");
        assert_eq!(text.lines().last(), Some("# EOF"));
    }

    #[test]
    fn the_process_sample_reads_this_process() {
        let p = ProcessSample::read();
        assert!(p.resident_bytes > 0);
        assert!(p.open_fds > 0);
        assert!(p.threads >= 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(p.start_time_seconds > now - 86_400.0 && p.start_time_seconds <= now + 1.0);
    }
}
