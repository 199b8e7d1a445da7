//! The command-line client: `shardline query` and `shardline write` against a running server.
//!
//! Both speak the server's HTTP API (`/api/v3/query_sql`, `/api/v3/write_lp`), so they work
//! against InfluxDB 3 Core too. The token, when given, is sent as `Authorization: Bearer`.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Args;

/// Where the server is and who is asking.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "SHARDLINE_HOST", default_value = "http://127.0.0.1:8181")]
    pub host: String,

    /// Token sent as `Authorization: Bearer <token>`.
    #[arg(long, env = "SHARDLINE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// The database to query.
    #[arg(long, short = 'd', env = "SHARDLINE_DATABASE")]
    pub database: String,

    /// Output format: pretty, json, jsonl, csv or parquet.
    #[arg(long, default_value = "pretty")]
    pub format: String,

    /// The query's language: sql or influxql.
    #[arg(long, short = 'l', value_enum, default_value = "sql")]
    pub language: QueryLanguage,

    /// The query.
    pub query: String,
}

/// A query language the client can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryLanguage {
    Sql,
    Influxql,
}

#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// The database to write to (created on first write).
    #[arg(long, short = 'd', env = "SHARDLINE_DATABASE")]
    pub database: String,

    /// Timestamp precision: auto, nanosecond, microsecond, millisecond or second.
    #[arg(long, default_value = "auto")]
    pub precision: String,

    /// Line protocol file; `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot reach {host}: {reason}")]
    Transport { host: String, reason: String },
    #[error("the server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("{0}")]
    Usage(String),
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().build()
}

pub(crate) fn authorize(req: ureq::Request, server: &ServerArgs) -> ureq::Request {
    match &server.token {
        Some(t) => req.set("Authorization", &format!("Bearer {t}")),
        None => req,
    }
}

pub(crate) fn send(
    server: &ServerArgs,
    result: Result<ureq::Response, ureq::Error>,
) -> Result<ureq::Response, ClientError> {
    match result {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(status, r)) => Err(ClientError::Status {
            status,
            body: r.into_string().unwrap_or_default(),
        }),
        Err(e) => Err(ClientError::Transport {
            host: server.host.clone(),
            reason: e.to_string(),
        }),
    }
}

/// Runs a query and copies the result to standard output as it arrives.
pub fn query(args: &QueryArgs) -> Result<(), ClientError> {
    let endpoint = match args.language {
        QueryLanguage::Sql => "query_sql",
        QueryLanguage::Influxql => "query_influxql",
    };
    let url = format!(
        "{}/api/v3/{endpoint}",
        args.server.host.trim_end_matches('/')
    );
    let body = serde_json::json!({
        "db": args.database,
        "q": args.query,
        "format": args.format,
    });
    let req = authorize(agent().post(&url), &args.server).set("Content-Type", "application/json");
    let resp = send(&args.server, req.send_string(&body.to_string()))?;
    let mut reader = resp.into_reader();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    std::io::copy(&mut reader, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Writes a line-protocol file (or standard input).
pub fn write(args: &WriteArgs) -> Result<(), ClientError> {
    let mut body = Vec::new();
    match &args.file {
        Some(p) if p.as_os_str() != "-" => {
            body = std::fs::read(p)?;
        }
        _ => {
            std::io::stdin().read_to_end(&mut body)?;
        }
    }
    let url = format!("{}/api/v3/write_lp", args.server.host.trim_end_matches('/'));
    let req = authorize(agent().post(&url), &args.server)
        .query("db", &args.database)
        .query("precision", &args.precision)
        .set("Content-Type", "text/plain; charset=utf-8");
    send(&args.server, req.send_bytes(&body))?;
    Ok(())
}
