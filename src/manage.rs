//! The management commands: `shardline create|delete|show|update ...`, each one HTTP request
//! to a running server's `/api/v3/configure/*` endpoints (so they work against InfluxDB 3
//! Core as well), authorized with `--token` / `SHARDLINE_TOKEN`.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::client::{ClientError, ServerArgs};

#[derive(Debug, Subcommand)]
pub enum Create {
    /// Create a database.
    Database {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        /// How long rows are kept, e.g. 30d (default: forever).
        #[arg(long)]
        retention_period: Option<String>,
    },
    /// Create a table with its tags and fields ahead of any write.
    Table {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, short = 'd')]
        database: String,
        name: String,
        /// Tag columns, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Field columns as name:type (int64, uint64, float64, bool, utf8), comma-separated.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        #[arg(long)]
        retention_period: Option<String>,
    },
    /// Create a token: the admin token (`--admin`), a named admin token (`--admin --name`),
    /// or a resource token (`--name` with `--permission`).
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// An admin token: `_admin` without --name, a named admin token with it.
    #[arg(long)]
    admin: bool,
    /// Replace the `_admin` token (authorized by the current one); the old one stops working.
    #[arg(long, requires = "admin")]
    regenerate: bool,
    /// Print a new admin token without contacting a server, for `serve --admin-token-file`.
    #[arg(long, requires = "admin")]
    offline: bool,
    /// The token's name (named admin and resource tokens).
    #[arg(long)]
    name: Option<String>,
    /// `db:NAME[,NAME..]:read[,write]`, `db:*:read,write` or `system:*:read`; repeatable.
    #[arg(long = "permission")]
    permissions: Vec<String>,
    /// The token expires after this long, e.g. 12h, 30d or 1y.
    #[arg(long, value_parser = shardline_units::parse_duration)]
    expiry: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Delete {
    /// Delete a database (at once hidden; its name can be reused).
    Database {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Delete a table.
    Table {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, short = 'd')]
        database: String,
        name: String,
    },
    /// Delete a token by id or name.
    Token {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, conflicts_with = "name", required_unless_present = "name")]
        id: Option<u64>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Show {
    /// List databases.
    Databases {
        #[command(flatten)]
        server: ServerArgs,
        /// pretty, json, jsonl, csv or parquet.
        #[arg(long, default_value = "pretty")]
        format: String,
        #[arg(long)]
        show_deleted: bool,
    },
    /// List tokens (names, grants, dates; never their text).
    Tokens {
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum Update {
    /// Change a database's retention period (`none` keeps rows forever).
    Database {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        #[arg(long)]
        retention_period: String,
    },
}

fn url(server: &ServerArgs, path: &str) -> String {
    format!("{}{path}", server.host.trim_end_matches('/'))
}

fn json_body(
    server: &ServerArgs,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<String, ClientError> {
    let req = crate::client::authorize(
        crate::client::agent().request(method, &url(server, path)),
        server,
    )
    .set("Content-Type", "application/json");
    let resp = crate::client::send(server, req.send_string(&body.to_string()))?;
    Ok(resp.into_string()?)
}

fn no_body(
    server: &ServerArgs,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Result<String, ClientError> {
    let mut req = crate::client::authorize(
        crate::client::agent().request(method, &url(server, path)),
        server,
    );
    for (k, v) in query {
        req = req.query(k, v);
    }
    let resp = crate::client::send(server, req.call())?;
    Ok(resp.into_string()?)
}

pub fn create(cmd: Create) -> Result<(), ClientError> {
    match cmd {
        Create::Database {
            server,
            name,
            retention_period,
        } => {
            let mut body = json!({ "db": name });
            if let Some(r) = retention_period {
                body["retention_period"] = json!(r);
            }
            json_body(&server, "POST", "/api/v3/configure/database", body)?;
            println!("database '{name}' created");
        }
        Create::Table {
            server,
            database,
            name,
            tags,
            fields,
            retention_period,
        } => {
            let mut field_list = Vec::new();
            for f in &fields {
                let (n, t) = f.split_once(':').ok_or_else(|| {
                    ClientError::Usage(format!(
                        "field '{f}' needs a type: name:int64|uint64|float64|bool|utf8"
                    ))
                })?;
                field_list.push(json!({ "name": n, "type": t }));
            }
            let mut body =
                json!({ "db": database, "table": name, "tags": tags, "fields": field_list });
            if let Some(r) = retention_period {
                body["retention_period"] = json!(r);
            }
            json_body(&server, "POST", "/api/v3/configure/table", body)?;
            println!("table '{name}' created in database '{database}'");
        }
        Create::Token(t) => create_token(t)?,
    }
    Ok(())
}

fn create_token(t: TokenArgs) -> Result<(), ClientError> {
    if t.offline {
        let token = crate::auth::generate_token()
            .map_err(|e| ClientError::Usage(format!("the OS random source failed: {e}")))?;
        println!(
            "{}",
            json!({ "token": token, "name": crate::auth::ADMIN_TOKEN_NAME })
        );
        return Ok(());
    }
    let expiry_secs = t.expiry.map(|d| d.as_secs().max(1));
    let answer = match (t.admin, &t.name) {
        (true, None) => {
            let path = if t.regenerate {
                "/api/v3/configure/token/admin/regenerate"
            } else {
                "/api/v3/configure/token/admin"
            };
            no_body(&t.server, "POST", path, &[])?
        }
        (true, Some(name)) => {
            let mut body = json!({ "token_name": name });
            if let Some(s) = expiry_secs {
                body["expiry_secs"] = json!(s);
            }
            json_body(
                &t.server,
                "POST",
                "/api/v3/configure/token/named_admin",
                body,
            )?
        }
        (false, Some(name)) => {
            if t.permissions.is_empty() {
                return Err(ClientError::Usage(
                    "a resource token needs at least one --permission, e.g. db:mydb:read,write"
                        .into(),
                ));
            }
            let permissions = t
                .permissions
                .iter()
                .map(|p| permission(p))
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = json!({ "token_name": name, "permissions": permissions });
            if let Some(s) = expiry_secs {
                body["expiry_secs"] = json!(s);
            }
            json_body(&t.server, "POST", "/api/v3/configure/token", body)?
        }
        (false, None) => {
            return Err(ClientError::Usage(
                "give --admin, or --name with --permission for a resource token".into(),
            ))
        }
    };
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or(json!({}));
    match v.get("token").and_then(|t| t.as_str()) {
        Some(token) => {
            println!("{token}");
            eprintln!(
                "token '{}' (id {}) created; store it now: the server keeps only its hash and cannot show it again",
                v["name"].as_str().unwrap_or(""),
                v["id"]
            );
        }
        None => println!("{answer}"),
    }
    Ok(())
}

/// `db:a,b:read,write` → a `ResourceTokenObject` permission.
fn permission(spec: &str) -> Result<serde_json::Value, ClientError> {
    let mut parts = spec.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(ty), Some(ids), Some(actions)) if !ids.is_empty() && !actions.is_empty() => Ok(json!({
            "resource_type": ty,
            "resource_identifier": ids.split(',').collect::<Vec<_>>(),
            "actions": actions.split(',').collect::<Vec<_>>(),
        })),
        _ => Err(ClientError::Usage(format!(
            "permission '{spec}' must look like db:NAME[,NAME]:read[,write], db:*:read or system:*:read"
        ))),
    }
}

pub fn delete(cmd: Delete) -> Result<(), ClientError> {
    match cmd {
        Delete::Database { server, name } => {
            no_body(
                &server,
                "DELETE",
                "/api/v3/configure/database",
                &[("db", &name)],
            )?;
            println!("database '{name}' deleted");
        }
        Delete::Table {
            server,
            database,
            name,
        } => {
            no_body(
                &server,
                "DELETE",
                "/api/v3/configure/table",
                &[("db", &database), ("table", &name)],
            )?;
            println!("table '{name}' deleted from database '{database}'");
        }
        Delete::Token { server, id, name } => {
            match (id, name) {
                (Some(id), _) => no_body(
                    &server,
                    "DELETE",
                    "/api/v3/configure/token",
                    &[("id", &id.to_string())],
                )?,
                (None, Some(n)) => no_body(
                    &server,
                    "DELETE",
                    "/api/v3/configure/token",
                    &[("token_name", &n)],
                )?,
                (None, None) => return Err(ClientError::Usage("give --id or --name".into())),
            };
            println!("token deleted");
        }
    }
    Ok(())
}

pub fn show(cmd: Show) -> Result<(), ClientError> {
    let out = match cmd {
        Show::Databases {
            server,
            format,
            show_deleted,
        } => {
            let mut q = vec![("format", format.as_str())];
            if show_deleted {
                q.push(("show_deleted", "true"));
            }
            no_body(&server, "GET", "/api/v3/configure/database", &q)?
        }
        Show::Tokens { server } => {
            let text = no_body(&server, "GET", "/api/v3/configure/token", &[])?;
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(json!(text));
            serde_json::to_string_pretty(&v).unwrap_or(text)
        }
    };
    print!("{out}");
    if !out.ends_with('\n') {
        println!();
    }
    Ok(())
}

pub fn update(cmd: Update) -> Result<(), ClientError> {
    match cmd {
        Update::Database {
            server,
            name,
            retention_period,
        } => {
            json_body(
                &server,
                "PUT",
                "/api/v3/configure/database",
                json!({ "db": name, "retention_period": retention_period }),
            )?;
            println!("database '{name}' updated");
        }
    }
    Ok(())
}
