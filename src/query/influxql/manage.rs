//! The InfluxQL statements that change the catalog — `CREATE`/`DROP DATABASE`, `DROP
//! MEASUREMENT`, `CREATE`/`ALTER`/`DROP RETENTION POLICY` — as catalog changes.
//!
//! Retention policies map as InfluxDB 3 Core maps them: a database's own policy, `autogen`,
//! is its retention period (`INF`/`0s`: kept forever); any other policy `rp` of database `db`
//! is the database `db/rp`, with the policy's duration as its retention period (so data
//! written with `rp=rp` is kept that long). `DROP DATABASE db` drops its policies too. Errors
//! are 1.x's texts where 1.x has them; what 1.x makes idempotent (creating a database that
//! exists with the same duration, dropping one that does not exist) succeeds here too.

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
            // The database and the databases of its other retention policies (`name/rp`).
            let prefix = format!("{name}/");
            let mut doomed: Vec<String> = policy_databases(&catalog.snapshot(), name)
                .map(|(_, d)| format!("{prefix}{d}"))
                .collect();
            doomed.insert(0, name.clone());
            for db in doomed {
                match catalog.change(Change::DeleteDatabase { name: db }).await {
                    Ok(_) | Err(CatalogError::DatabaseNotFound(_)) => {}
                    Err(e) => return Err(failed(e)),
                }
            }
            done
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
            default,
            ..
        } => {
            exists(catalog, database)?;
            let ns = retention(*duration)?;
            if name == DEFAULT_POLICY {
                catalog
                    .change(set_retention(database, ns))
                    .await
                    .map_err(failed)?;
                return done;
            }
            if crate::catalog::is_own_policy(Some(name)) {
                return Err(InfluxQlError::Invalid(format!(
                    "retention policy name {name:?} is reserved: it means the database's own policy, autogen"
                )));
            }
            if *default {
                return Err(InfluxQlError::NotYet(format!(
                    "retention policy {name:?} cannot be the default: writes without a retention policy go to {database:?} itself (its policy autogen)"
                )));
            }
            let policy_db = crate::catalog::v1_database(database, Some(name));
            match catalog
                .snapshot()
                .database(&policy_db)
                .map(|d| d.retention_ns)
            {
                Some(current) if current == ns => done,
                Some(_) => Err(InfluxQlError::Invalid(
                    "retention policy already exists".into(),
                )),
                None => {
                    let change = Change::CreateDatabase {
                        name: policy_db,
                        retention_ns: ns,
                    };
                    match catalog.change(change).await {
                        Ok(_) | Err(CatalogError::DatabaseExists(_)) => done,
                        Err(e) => Err(failed(e)),
                    }
                }
            }
        }
        Statement::AlterRetentionPolicy {
            name,
            database,
            duration,
            default,
            ..
        } => {
            exists(catalog, database)?;
            let target = if name == DEFAULT_POLICY {
                Some(database.clone())
            } else if crate::catalog::is_own_policy(Some(name)) {
                None
            } else {
                Some(crate::catalog::v1_database(database, Some(name)))
                    .filter(|t| catalog.snapshot().database(t).is_some())
            };
            let Some(target) = target else {
                return Err(InfluxQlError::Invalid(format!(
                    "retention policy not found: {name}"
                )));
            };
            if *default && name != DEFAULT_POLICY {
                return Err(InfluxQlError::NotYet(format!(
                    "retention policy {name:?} cannot be the default: writes without a retention policy go to {database:?} itself (its policy autogen)"
                )));
            }
            if let Some(d) = duration {
                let ns = retention(*d)?;
                catalog
                    .change(set_retention(&target, ns))
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
            let change = Change::DeleteDatabase {
                name: crate::catalog::v1_database(database, Some(name)),
            };
            // 1.x: dropping a policy that does not exist succeeds.
            match catalog.change(change).await {
                Ok(_) | Err(CatalogError::DatabaseNotFound(_)) => done,
                Err(e) => Err(failed(e)),
            }
        }
        _ => Err(InfluxQlError::Invalid(
            "this statement does not change the catalog (this is a bug)".into(),
        )),
    }
}

/// The retention policies of `database` other than its own: `(retention, name)` of each live
/// database `database/name`, in the order they were made.
pub fn policy_databases<'a>(
    snapshot: &'a shardline_shards::schema::CatalogSnapshot,
    database: &str,
) -> impl Iterator<Item = (Option<i64>, &'a str)> + 'a {
    let prefix = format!("{database}/");
    snapshot
        .databases
        .iter()
        .filter(|d| d.deleted_at_ns.is_none())
        .filter_map(move |d| {
            let rp = d.name.strip_prefix(prefix.as_str())?;
            (!rp.contains('/')).then_some((d.retention_ns, rp))
        })
}

fn exists(catalog: &Catalog, database: &str) -> Result<(), InfluxQlError> {
    match catalog.snapshot().database(database) {
        Some(_) => Ok(()),
        None => Err(InfluxQlError::Invalid(format!(
            "database not found: {database}"
        ))),
    }
}
