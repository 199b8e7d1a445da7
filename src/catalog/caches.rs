//! Cache definitions in the catalog: how a create request becomes a last-value or
//! distinct-value cache of a table, with defaults filled in and every column checked, and how
//! definitions are stored.
//!
//! Invariants:
//! - A definition names its columns by id, so a cache keeps working whatever happens to
//!   names; every id it holds is a column of its table with a type the cache allows.
//! - Cache names are unique per table and kind. Creating a cache whose name is taken is
//!   "already exists" when every setting matches (so retries are safe), a conflict otherwise.
//! - Cache ids are unique across the catalog's whole life (a recreated cache is a new one).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shardline_shards::cache::{DistinctCacheDef, LastCacheDef, MAX_LAST_COUNT};
use shardline_shards::schema::{ColumnType, TIME_COLUMN};

use super::{CatalogError, PColumn, PTable};

/// `count` when a request gives none.
pub const DEFAULT_LAST_COUNT: usize = 1;
/// `ttl` when a request gives none: 4 hours.
pub const DEFAULT_LAST_TTL_SECS: u64 = 4 * 3600;
/// `max_cardinality` when a request gives none.
pub const DEFAULT_MAX_CARDINALITY: usize = 100_000;
/// `max_age` when a request gives none: 1 day.
pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 3600;

/// Which of the two kinds a cache is (for messages and errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    Last,
    Distinct,
}

impl std::fmt::Display for CacheKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheKind::Last => "last cache",
            CacheKind::Distinct => "distinct cache",
        })
    }
}

/// A request to create a last-value cache; `None` takes the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCacheRequest {
    pub database: String,
    pub table: String,
    pub name: Option<String>,
    pub key_columns: Option<Vec<String>>,
    pub value_columns: Option<Vec<String>>,
    pub count: Option<u64>,
    pub ttl_secs: Option<u64>,
}

/// A request to create a distinct-value cache; `None` takes the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistinctCacheRequest {
    pub database: String,
    pub table: String,
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub max_cardinality: Option<u64>,
    pub max_age_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PLastCache {
    id: u64,
    name: String,
    key_columns: Vec<u32>,
    /// Absent: every non-key column, including later ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_columns: Option<Vec<u32>>,
    count: usize,
    ttl_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PDistinctCache {
    id: u64,
    name: String,
    columns: Vec<u32>,
    max_cardinality: usize,
    max_age_secs: u64,
}

impl PLastCache {
    pub(super) fn def(&self) -> LastCacheDef {
        LastCacheDef {
            id: self.id,
            name: Arc::from(self.name.as_str()),
            key_columns: self.key_columns.clone(),
            value_columns: self.value_columns.clone(),
            count: self.count,
            ttl_ns: secs_to_ns(self.ttl_secs),
        }
    }
}

impl PDistinctCache {
    pub(super) fn def(&self) -> DistinctCacheDef {
        DistinctCacheDef {
            id: self.id,
            name: Arc::from(self.name.as_str()),
            columns: self.columns.clone(),
            max_cardinality: self.max_cardinality,
            max_age_ns: secs_to_ns(self.max_age_secs),
        }
    }
}

fn secs_to_ns(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX)
}

fn invalid(kind: CacheKind, reason: impl Into<String>) -> CatalogError {
    CatalogError::InvalidCache {
        kind,
        reason: reason.into(),
    }
}

/// The column named `name` in `table`, if it may be a key or distinct column.
fn keyable_column(
    table: &PTable,
    kind: CacheKind,
    name: &str,
    allowed: &[ColumnType],
    what: &str,
) -> Result<u32, CatalogError> {
    let c = find_column(table, kind, name)?;
    let ty = ColumnType::from_name(&c.ty).unwrap_or(ColumnType::Time);
    if !allowed.contains(&ty) {
        return Err(invalid(
            kind,
            format!("column '{name}' is a {ty} column; {what}"),
        ));
    }
    Ok(c.id)
}

fn find_column<'t>(
    table: &'t PTable,
    kind: CacheKind,
    name: &str,
) -> Result<&'t PColumn, CatalogError> {
    table
        .columns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            invalid(
                kind,
                format!("column '{name}' not found in table '{}'", table.name),
            )
        })
}

fn no_repeats(kind: CacheKind, ids: &[u32], table: &PTable) -> Result<(), CatalogError> {
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(invalid(
                kind,
                format!(
                    "column '{}' is listed twice",
                    table.columns[*id as usize].name
                ),
            ));
        }
    }
    Ok(())
}

fn check_name(kind: CacheKind, name: &str) -> Result<(), CatalogError> {
    if name.is_empty() {
        return Err(invalid(kind, "a cache name cannot be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            kind,
            "a cache name cannot contain control characters",
        ));
    }
    Ok(())
}

/// The default name: `<table>_<columns>_last_cache` / `..._distinct_cache`.
fn default_name(table: &PTable, ids: &[u32], suffix: &str) -> String {
    let mut name = table.name.clone();
    for id in ids {
        name.push('_');
        name.push_str(&table.columns[*id as usize].name);
    }
    name.push('_');
    name.push_str(suffix);
    name
}

/// Adds a last-value cache to `table` (see the module's invariants for names).
pub(super) fn create_last(
    table: &mut PTable,
    req: &LastCacheRequest,
    next_id: &mut u64,
) -> Result<(), CatalogError> {
    let kind = CacheKind::Last;
    let keys: Vec<u32> = match &req.key_columns {
        Some(names) => names
            .iter()
            .map(|n| {
                keyable_column(
                    table,
                    kind,
                    n,
                    &[
                        ColumnType::Tag,
                        ColumnType::String,
                        ColumnType::Int,
                        ColumnType::UInt,
                        ColumnType::Bool,
                    ],
                    "key columns must be tags or string, integer, unsigned or boolean fields",
                )
            })
            .collect::<Result<_, _>>()?,
        None => table
            .columns
            .iter()
            .filter(|c| c.ty == ColumnType::Tag.name())
            .map(|c| c.id)
            .collect(),
    };
    no_repeats(kind, &keys, table)?;
    let values: Option<Vec<u32>> = match &req.value_columns {
        None => None,
        Some(names) => {
            let mut ids = Vec::with_capacity(names.len());
            for n in names {
                let c = find_column(table, kind, n)?;
                if keys.contains(&c.id) {
                    return Err(invalid(
                        kind,
                        format!("column '{n}' is a key column; it cannot also be a value column"),
                    ));
                }
                // `time` is always a value column; listing it changes nothing.
                if c.name != TIME_COLUMN {
                    ids.push(c.id);
                }
            }
            no_repeats(kind, &ids, table)?;
            Some(ids)
        }
    };
    let count = match req.count {
        None => DEFAULT_LAST_COUNT,
        Some(c) if (1..=MAX_LAST_COUNT as u64).contains(&c) => c as usize,
        Some(c) => {
            return Err(invalid(
                kind,
                format!("count must be between 1 and {MAX_LAST_COUNT}, not {c}"),
            ))
        }
    };
    let ttl_secs = match req.ttl_secs {
        None => DEFAULT_LAST_TTL_SECS,
        Some(0) => return Err(invalid(kind, "ttl must be at least 1 second")),
        Some(t) => t,
    };
    let name = match &req.name {
        Some(n) => n.clone(),
        None => default_name(table, &keys, "last_cache"),
    };
    check_name(kind, &name)?;
    let wanted = PLastCache {
        id: 0,
        name,
        key_columns: keys,
        value_columns: values,
        count,
        ttl_secs,
    };
    if let Some(existing) = table.last_caches.iter().find(|c| c.name == wanted.name) {
        return Err(CatalogError::CacheExists {
            kind,
            name: wanted.name.clone(),
            identical: PLastCache {
                id: 0,
                ..existing.clone()
            } == wanted,
        });
    }
    table.last_caches.push(PLastCache {
        id: take_id(next_id),
        ..wanted
    });
    Ok(())
}

/// Adds a distinct-value cache to `table` (see the module's invariants for names).
pub(super) fn create_distinct(
    table: &mut PTable,
    req: &DistinctCacheRequest,
    next_id: &mut u64,
) -> Result<(), CatalogError> {
    let kind = CacheKind::Distinct;
    if req.columns.is_empty() {
        return Err(invalid(kind, "give at least one column in 'columns'"));
    }
    let columns: Vec<u32> = req
        .columns
        .iter()
        .map(|n| {
            keyable_column(
                table,
                kind,
                n,
                &[ColumnType::Tag, ColumnType::String],
                "distinct caches hold tags and string fields",
            )
        })
        .collect::<Result<_, _>>()?;
    no_repeats(kind, &columns, table)?;
    let max_cardinality = match req.max_cardinality {
        None => DEFAULT_MAX_CARDINALITY,
        Some(0) => return Err(invalid(kind, "max_cardinality must be at least 1")),
        Some(m) => usize::try_from(m).unwrap_or(usize::MAX),
    };
    let max_age_secs = match req.max_age_secs {
        None => DEFAULT_MAX_AGE_SECS,
        Some(0) => return Err(invalid(kind, "max_age must be at least 1 second")),
        Some(a) => a,
    };
    let name = match &req.name {
        Some(n) => n.clone(),
        None => default_name(table, &columns, "distinct_cache"),
    };
    check_name(kind, &name)?;
    let wanted = PDistinctCache {
        id: 0,
        name,
        columns,
        max_cardinality,
        max_age_secs,
    };
    if let Some(existing) = table.distinct_caches.iter().find(|c| c.name == wanted.name) {
        return Err(CatalogError::CacheExists {
            kind,
            name: wanted.name.clone(),
            identical: PDistinctCache {
                id: 0,
                ..existing.clone()
            } == wanted,
        });
    }
    table.distinct_caches.push(PDistinctCache {
        id: take_id(next_id),
        ..wanted
    });
    Ok(())
}

fn take_id(next: &mut u64) -> u64 {
    let id = *next;
    *next += 1;
    id
}

/// Removes a cache from `table`.
pub(super) fn delete(
    table: &mut PTable,
    database: &str,
    kind: CacheKind,
    name: &str,
) -> Result<(), CatalogError> {
    let before = (table.last_caches.len(), table.distinct_caches.len());
    match kind {
        CacheKind::Last => table.last_caches.retain(|c| c.name != name),
        CacheKind::Distinct => table.distinct_caches.retain(|c| c.name != name),
    }
    if before == (table.last_caches.len(), table.distinct_caches.len()) {
        return Err(CatalogError::CacheNotFound {
            kind,
            database: database.to_string(),
            table: table.name.clone(),
            name: name.to_string(),
        });
    }
    Ok(())
}
