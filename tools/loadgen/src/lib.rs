//! `shardline-loadgen`: the bundled load generator.
//!
//! Writes line protocol (TSBS-shaped data sets or a spec file) or runs query mixes against
//! Shardline or any server speaking the InfluxDB v1/v2/v3 write API, closed loop or open loop at
//! a fixed rate, and reports throughput and latency percentiles. Also a body-discarding sink
//! (to measure the generator itself) and the core-count benchmark runner. Modules: [`data`]
//! (data sets), [`body`] (requests made ahead on generator threads), [`http`] (the client
//! connection), [`run`] (the senders), [`query`] (query mixes), [`stats`] (counts and report),
//! [`sink`], [`cores`], and the helpers [`cpus`] (CPU lists, pinning) and [`rng`] (seeded
//! random numbers). Durations and sizes on the command line are read by `shardline_units`,
//! with the same rules as the server's flags.

pub mod body;
pub mod cli;
pub mod cores;
pub mod cpus;
pub mod data;
pub mod http;
pub mod query;
pub mod rng;
pub mod run;
pub mod sink;
pub mod stats;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use cli::{Command, Endpoint, Precision, QueryArgs, QueryEndpoint, SinkArgs, Target, WriteArgs};
use stats::{KindReport, Latency, Report};

#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl From<String> for LoadgenError {
    fn from(s: String) -> Self {
        LoadgenError::Usage(s)
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> LoadgenError {
    let context = context.into();
    move |source| LoadgenError::Io { context, source }
}

/// Runs a parsed command line: exit 0 when every request succeeded, 1 when some failed, 2 on
/// a usage or start-up error.
pub fn main_with(cli: cli::Cli) -> ExitCode {
    let result = match cli.command {
        Command::Write(args) => write(&args).map(|r| r.failed_requests == 0),
        Command::Query(args) => query(&args).map(|r| r.failed_requests == 0),
        Command::Sink(args) => sink(&args).map(|_| true),
        Command::Cores(args) => cores::run(&args).map(|_| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The server's address and the `Host` header value, from `http://host:port`.
pub fn resolve(url: &str) -> Result<(SocketAddr, String), LoadgenError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        LoadgenError::Usage(format!("--url must start with http:// (got '{url}')"))
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if !rest[authority.len()..].trim_matches('/').is_empty() {
        return Err(LoadgenError::Usage(format!(
            "--url takes no path (got '{url}')"
        )));
    }
    let with_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(io_err(format!("cannot resolve {authority}")))?
        .next()
        .ok_or_else(|| LoadgenError::Usage(format!("{authority} has no address")))?;
    Ok((addr, authority.to_string()))
}

fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn base_config(
    t: &Target,
    default_duration: Option<Duration>,
    unit: &'static str,
) -> Result<run::RunConfig, LoadgenError> {
    let (addr, _) = resolve(&t.url)?;
    if t.connections == 0 || t.threads == 0 {
        return Err(LoadgenError::Usage(
            "--connections and --threads must be at least 1".into(),
        ));
    }
    Ok(run::RunConfig {
        addr,
        threads: t.threads,
        cpus: t.cpus.as_deref().map(cpus::parse_cpus).transpose()?,
        connections: t.connections,
        duration: t.duration.or(default_duration),
        request_rate: None,
        progress: (!t.progress.is_zero()).then_some(t.progress),
        timeout: t.timeout,
        kinds: vec![],
        body_errors: false,
        unit,
    })
}

fn auth_header(token: &Option<String>, scheme: &str) -> String {
    match token {
        Some(t) => format!("Authorization: {scheme} {t}\r\n"),
        None => String::new(),
    }
}

/// The write mode.
pub fn write(a: &WriteArgs) -> Result<Report, LoadgenError> {
    write_with(a, &mut || {}, &mut || {})
}

/// The write mode, with hooks run as the clock starts and stops.
pub fn write_with(
    a: &WriteArgs,
    on_start: &mut dyn FnMut(),
    on_end: &mut dyn FnMut(),
) -> Result<Report, LoadgenError> {
    let (_, host) = resolve(&a.target.url)?;
    let seed = a.seed;
    let dataset = match &a.spec {
        Some(path) => data::Dataset::from_spec_file(path)?,
        None => match a.data {
            cli::DataSet::Cpu => data::Dataset::cpu(a.hosts, seed)?,
            cli::DataSet::Devops => data::Dataset::devops(a.hosts, seed)?,
            cli::DataSet::Iot => data::Dataset::iot(a.hosts, seed)?,
        },
    };
    let divisor: i64 = match a.precision {
        Precision::Ns => 1,
        Precision::Us => 1_000,
        Precision::Ms => 1_000_000,
        Precision::S => 1_000_000_000,
    };
    if dataset.interval_ns % divisor != 0 {
        return Err(LoadgenError::Usage(format!(
            "the data set's interval ({} ns) is finer than --precision: points would collide",
            dataset.interval_ns
        )));
    }
    if a.batch_lines == 0 || a.lines == Some(0) {
        return Err(LoadgenError::Usage(
            "--batch-lines and --lines must be at least 1".into(),
        ));
    }
    let start_ns = cli::parse_start(&a.start)?;
    let db = encode(&a.target.db);
    let (path, scheme) = match a.endpoint {
        Endpoint::V3 => {
            let p = ["nanosecond", "microsecond", "millisecond", "second"][a.precision as usize];
            let sync = if a.no_sync { "&no_sync=true" } else { "" };
            (
                format!("/api/v3/write_lp?db={db}&precision={p}{sync}"),
                "Bearer",
            )
        }
        Endpoint::V2 => {
            let p = ["ns", "us", "ms", "s"][a.precision as usize];
            (
                format!(
                    "/api/v2/write?bucket={db}&org={}&precision={p}",
                    encode(&a.org)
                ),
                "Token",
            )
        }
        Endpoint::V1 => {
            let p = ["n", "u", "ms", "s"][a.precision as usize];
            (format!("/write?db={db}&precision={p}"), "Token")
        }
    };
    let mut cfg = base_config(
        &a.target,
        if a.lines.is_some() {
            None
        } else {
            Some(Duration::from_secs(10))
        },
        "lines",
    )?;
    cfg.kinds = vec![dataset.name.clone()];
    if let Some(rate) = a.rate {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(LoadgenError::Usage("--rate must be positive".into()));
        }
        cfg.request_rate = Some(rate / a.batch_lines as f64);
    }
    if a.create_db {
        create_database(cfg.addr, &host, &a.target)?;
    }
    let auth = auth_header(&a.target.token, scheme);
    let plan = Arc::new(body::BodyPlan {
        dataset: Arc::new(dataset),
        batch_lines: a.batch_lines,
        total_points: a.lines,
        start_ns,
        divisor,
        seed,
        gzip: a.gzip,
        head_before_len: format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: shardline-loadgen\r\nContent-Type: text/plain; charset=utf-8\r\n{auth}Content-Length: "
        )
        .into_bytes(),
        head_after_len: if a.gzip { b"\r\nContent-Encoding: gzip\r\n\r\n".to_vec() } else { b"\r\n\r\n".to_vec() },
    });
    let queue = a.pregen_mem;
    let gens = body::Generators::start(
        plan.clone(),
        a.gen_threads,
        cfg.cpus.clone(),
        queue,
        cfg.connections * 2,
        // Open loop for a set time: the schedule's requests (plus one per connection for the
        // rounding of each connection's share) are all it can send.
        cfg.request_rate
            .zip(cfg.duration)
            .map(|(rate, d)| (rate * d.as_secs_f64()).ceil() as u64 + cfg.connections as u64),
    );
    let gen_report = gens.report.clone();
    let outcome = run::run(&cfg, run::Work::Writes(gens.feed.clone()), on_start);
    on_end();
    gens.stop();
    let outcome = outcome.map_err(io_err("write run"))?;
    let workload = format!(
        "{} ({} series, {} lines/request{})",
        plan.dataset.name,
        plan.dataset.series(),
        a.batch_lines,
        if a.gzip { ", gzip" } else { "" }
    );
    let endpoint = format!("{:?}", a.endpoint).to_lowercase();
    let mut report = report(
        "write", &a.target, &cfg, endpoint, workload, outcome, a.rate,
    );
    report.generator = Some(gen_report);
    finish(report, &a.target)
}

fn create_database(addr: SocketAddr, host: &str, t: &Target) -> Result<(), LoadgenError> {
    use std::io::{Read, Write};
    let body = format!("q={}", encode(&format!("CREATE DATABASE \"{}\"", t.db)));
    let auth = auth_header(&t.token, "Token");
    let req = format!(
        "POST /query HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = std::net::TcpStream::connect(addr).map_err(io_err("CREATE DATABASE"))?;
    s.write_all(req.as_bytes())
        .map_err(io_err("CREATE DATABASE"))?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer.split(' ').nth(1).unwrap_or("");
    if !status.starts_with('2') {
        eprintln!(
            "note: CREATE DATABASE answered: {}",
            answer.lines().next().unwrap_or("nothing")
        );
    }
    Ok(())
}

/// The query mode.
pub fn query(a: &QueryArgs) -> Result<Report, LoadgenError> {
    let (_, host) = resolve(&a.target.url)?;
    let default = if a.count.is_some() {
        None
    } else {
        Some(Duration::from_secs(10))
    };
    let mut cfg = base_config(&a.target, default, "queries")?;
    let db = encode(&a.target.db);
    let format = a.format.name();
    let (path, scheme) = match (a.endpoint, a.lang) {
        (QueryEndpoint::V3, query::Lang::Sql) => (
            format!("/api/v3/query_sql?db={db}&format={format}&q="),
            "Bearer",
        ),
        (QueryEndpoint::V3, query::Lang::Influxql) => (
            format!("/api/v3/query_influxql?db={db}&format={format}&q="),
            "Bearer",
        ),
        (QueryEndpoint::V1, query::Lang::Influxql) => {
            (format!("/query?db={db}&epoch=ns&q="), "Token")
        }
        (QueryEndpoint::V1, query::Lang::Sql) => {
            return Err(LoadgenError::Usage(
                "the v1 /query endpoint takes InfluxQL: use --lang influxql".into(),
            ))
        }
    };
    cfg.body_errors = a.endpoint == QueryEndpoint::V1;
    // Parsed durations fit i64 nanoseconds (shardline_units::MAX_DURATION); the clamp is for
    // arguments built in code.
    let nanos = |d: Duration| d.as_nanos().min(i64::MAX as u128) as i64;
    let mix = query::QueryMix::new(query::MixOptions {
        lang: a.lang,
        mix: &a.mix,
        file: a.queries.as_deref(),
        hosts: a.hosts,
        start_ns: cli::parse_start(&a.start)?,
        span_ns: nanos(a.span),
        window_ns: nanos(a.window),
        path_before_query: format!("GET {path}"),
        head_after_query: format!(
            " HTTP/1.1\r\nHost: {host}\r\nUser-Agent: shardline-loadgen\r\n{}\r\n",
            auth_header(&a.target.token, scheme)
        ),
    })?;
    cfg.kinds = mix.names();
    if let Some(rate) = a.rate {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(LoadgenError::Usage("--rate must be positive".into()));
        }
        cfg.request_rate = Some(rate);
    }
    let work = run::Work::Queries {
        mix: Arc::new(mix),
        remaining: a.count.map(|n| Arc::new(AtomicU64::new(n))),
        seed: a.seed,
    };
    let outcome = run::run(&cfg, work, &mut || {}).map_err(io_err("query run"))?;
    let lang = format!("{:?}", a.lang).to_lowercase();
    let endpoint = format!("{:?}", a.endpoint).to_lowercase();
    let report = report("query", &a.target, &cfg, endpoint, lang, outcome, a.rate);
    finish(report, &a.target)
}

fn report(
    mode: &str,
    t: &Target,
    cfg: &run::RunConfig,
    endpoint: String,
    workload: String,
    outcome: run::Outcome,
    target_rate: Option<f64>,
) -> Report {
    let s = outcome.stats;
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    let mut all = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("histogram bounds");
    for k in &s.kinds {
        let _ = all.add(&k.latency);
    }
    let failed = s.kinds.iter().map(|k| k.failed).sum();
    Report {
        mode: mode.into(),
        url: t.url.clone(),
        db: t.db.clone(),
        endpoint,
        workload,
        threads: cfg.threads.min(cfg.connections),
        connections: cfg.connections,
        cpus: cfg.cpus.clone(),
        target_rate,
        elapsed_s: secs,
        requests: s.requests,
        requests_per_s: s.requests as f64 / secs,
        lines_accepted: s.lines_accepted,
        lines_rejected: s.lines_rejected,
        lines_per_s: s.lines_accepted as f64 / secs,
        bytes_sent: s.bytes_sent,
        mib_per_s: s.bytes_sent as f64 / secs / (1 << 20) as f64,
        loadgen_cpu_s: outcome.cpu.as_secs_f64(),
        lines_per_loadgen_cpu_s: s.lines_accepted as f64 / outcome.cpu.as_secs_f64().max(1e-9),
        status: s.status.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        transport_errors: s.transport_errors,
        failed_requests: failed,
        late_sends: s.late_sends,
        latency_ms: Latency::of(&all),
        kinds: s
            .kinds
            .iter()
            .map(|k| KindReport {
                name: k.name.clone(),
                ok: k.ok,
                failed: k.failed,
                latency_ms: Latency::of(&k.latency),
            })
            .collect(),
        generator: None,
        generator_stalls: s.generator_stalls,
        generator_stall_s: s.generator_stall.as_secs_f64(),
        error_samples: s.error_samples.clone(),
    }
}

fn finish(report: Report, t: &Target) -> Result<Report, LoadgenError> {
    report.print();
    if let Some(path) = &t.json {
        let text = serde_json::to_string_pretty(&report).expect("report serializes");
        std::fs::write(path, text).map_err(io_err(format!("cannot write {}", path.display())))?;
    }
    Ok(report)
}

/// The sink: serves until killed.
pub fn sink(a: &SinkArgs) -> Result<(), LoadgenError> {
    let bind: SocketAddr = a
        .bind
        .parse()
        .map_err(|_| LoadgenError::Usage(format!("invalid --bind '{}'", a.bind)))?;
    let cpus = a.cpus.as_deref().map(cpus::parse_cpus).transpose()?;
    let s =
        sink::spawn(bind, a.threads, cpus).map_err(io_err(format!("cannot serve on {bind}")))?;
    if let Some(f) = &a.port_file {
        std::fs::write(f, s.addr.to_string())
            .map_err(io_err(format!("cannot write {}", f.display())))?;
    }
    eprintln!(
        "sink listening on {} (answers 204, discards bodies)",
        s.addr
    );
    loop {
        std::thread::park();
    }
}
