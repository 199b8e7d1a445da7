//! The InfluxQL statements that change the catalog — `CREATE`/`DROP DATABASE`, `DROP
//! MEASUREMENT`, `CREATE`/`ALTER`/`DROP RETENTION POLICY` — as catalog changes.
//!
//! Retention policies map onto the database's retention period: every database has one
//! policy, `autogen`, whose duration is that period (`INF`/`0s`: kept forever). Errors are
//! 1.x's texts where 1.x has them; what 1.x makes idempotent (creating a database that exists
//! with the same duration, dropping one that does not exist) succeeds here too.

use shardline_influxql::ast::{Duration, Statement};

use super::{Answer, InfluxQlError};
use crate::catalog::{Catalog, CatalogError, Change};

/// The shortest retention 1.x accepts.
const MIN_RETENTION_NS: i64 = 3_600_000_000_000;
/// The one policy each database has.
pub const DEFAULT_POLICY: &str = "autogen";

/// Whether [`run`] is how `stmt` runs.
pub fn changes_catalog(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::CreateDatabase { .. }
            | Statement::DropDatabase(_)
            | Statement::DropMeasurement(_)
            | Statement::CreateRetentionPolicy { .. }
            | Statement::AlterRetentionPolicy { .. }
            | Statement::DropRetentionPolicy { .. }
    )
}

/// A policy's duration as a retention period (`None`: forever).
fn retention(d: Duration) -> Result<Option<i64>, InfluxQlError> {
    match d {
        Duration::Infinite | Duration::Nanos(0) => Ok(None),
        Duration::Nanos(ns) if ns < MIN_RETENTION_NS => Err(InfluxQlError::Invalid(
            "retention policy duration must be at least 1h0m0s".into(),
        )),
        Duration::Nanos(ns) => Ok(Some(ns)),
    }
}

fn only_autogen(name: &str) -> Result<(), InfluxQlError> {
    if name == DEFAULT_POLICY {
        Ok(())
    } else {
        Err(InfluxQlError::NotYet(format!(
            "retention policy {name:?}: each database here has one retention policy, \"autogen\" (its retention period); create another database for data kept for another time"
        )))
    }
}

fn failed(e: CatalogError) -> InfluxQlError {
    match e {
        CatalogError::DatabaseNotFound(name) => {
            InfluxQlError::Invalid(format!("database not found: {name}"))
        }
        other => InfluxQlError::Invalid(other.to_string()),
    }
}

/// Runs a statement for which [`changes_catalog`] holds; `default_db` is the request's `db`.
pub async fn run(
    catalog: &Catalog,
    stmt: &Statement,
    default_db: Option<&str>,
) -> Result<Answer, InfluxQlError> {
    let done = Ok(Answer::default());
    let set_retention = |name: &str, retention_ns| Change::SetDatabaseRetention {
        name: name.to_string(),
        retention_ns,
    };
    match stmt {
        Statement::CreateDatabase { name, policy } => {
            let policy = policy.clone().unwrap_or_default();
            if let Some(p) = &policy.name {
                only_autogen(p)?;
            }
            let wanted = policy.duration.map(retention).transpose()?;
            let existing = catalog.snapshot().database(name).map(|d| d.retention_ns);
            match existing {
                Some(current) if wanted.is_some_and(|w| w != current) => {
                    Err(InfluxQlError::Invalid(
                        "retention policy conflicts with an existing policy".into(),
                    ))
                }
                Some(_) => done,
                None => {
                    let change = Change::CreateDatabase {
                        name: name.clone(),
                        retention_ns: wanted.flatten(),
                    };
                    match catalog.change(change).await {
                        // Created meanwhile by another request: the same outcome.
                        Ok(_) | Err(CatalogError::DatabaseExists(_)) => done,
                        Err(e) => Err(failed(e)),
                    }
                }
            }
        }
        Statement::DropDatabase(name) => {
            match catalog
                .change(Change::DeleteDatabase { name: name.clone() })
                .await
            {
                Ok(_) | Err(CatalogError::DatabaseNotFound(_)) => done,
                Err(e) => Err(failed(e)),
            }
        }
        Statement::DropMeasurement(table) => {
            let database = default_db.unwrap_or_default().to_string();
            let change = Change::DeleteTable {
                database,
                table: table.clone(),
            };
            match catalog.change(change).await {
                Ok(_) | Err(CatalogError::TableNotFound { .. }) => done,
                Err(e) => Err(failed(e)),
            }
        }
        Statement::CreateRetentionPolicy {
            name,
            database,
            duration,
            ..
        } => {
            exists(catalog, database)?;
            only_autogen(name)?;
            let ns = retention(*duration)?;
            catalog
                .change(set_retention(database, ns))
                .await
                .map_err(failed)?;
            done
        }
        Statement::AlterRetentionPolicy {
            name,
            database,
            duration,
            ..
        } => {
            exists(catalog, database)?;
            if name != DEFAULT_POLICY {
                return Err(InfluxQlError::Invalid(format!(
                    "retention policy not found: {name}"
                )));
            }
            if let Some(d) = duration {
                let ns = retention(*d)?;
                catalog
                    .change(set_retention(database, ns))
                    .await
                    .map_err(failed)?;
            }
            done
        }
        Statement::DropRetentionPolicy { name, database } => {
            exists(catalog, database)?;
            if name == DEFAULT_POLICY {
                return Err(InfluxQlError::NotYet(
                    "the autogen retention policy is the database's own and cannot be dropped here; DROP DATABASE removes both".into(),
                ));
            }
            // 1.x: dropping a policy that does not exist succeeds.
            done
        }
        _ => Err(InfluxQlError::Invalid(
            "this statement does not change the catalog (this is a bug)".into(),
        )),
    }
}

fn exists(catalog: &Catalog, database: &str) -> Result<(), InfluxQlError> {
    match catalog.snapshot().database(database) {
        Some(_) => Ok(()),
        None => Err(InfluxQlError::Invalid(format!(
            "database not found: {database}"
        ))),
    }
}
