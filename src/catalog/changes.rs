//! The changes a caller can ask of the catalog, in the form the catalog log records them.
//!
//! Invariants: a change names what it touches by name (never by id), so it means the same
//! thing when the log is replayed onto the state it was first applied to; its serialized
//! form is part of the log format, so fields are only ever added with defaults.

use serde::{Deserialize, Serialize};
use shardline_shards::schema::ColumnType;

use super::caches::{CacheKind, DistinctCacheRequest, LastCacheRequest};
use super::tokens::TokenChange;

/// Columns to add to one table (created if missing), in the order to create them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableChange {
    pub name: String,
    #[serde(with = "column_list")]
    pub columns: Vec<(String, ColumnType)>,
}

/// Everything one write needs added to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SchemaChange {
    pub database: String,
    pub tables: Vec<TableChange>,
}

/// One change to the catalog. Retention periods are nanoseconds; `None` keeps data forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// What a write needs: created if missing, left alone where present.
    Schema(SchemaChange),
    CreateDatabase {
        name: String,
        retention_ns: Option<i64>,
    },
    SetDatabaseRetention {
        name: String,
        retention_ns: Option<i64>,
    },
    DeleteDatabase {
        name: String,
    },
    /// A table with its tags and fields, ahead of any write.
    CreateTable {
        database: String,
        table: String,
        #[serde(with = "column_list")]
        columns: Vec<(String, ColumnType)>,
        retention_ns: Option<i64>,
    },
    SetTableRetention {
        database: String,
        table: String,
        retention_ns: Option<i64>,
    },
    DeleteTable {
        database: String,
        table: String,
    },
    CreateLastCache(LastCacheRequest),
    CreateDistinctCache(DistinctCacheRequest),
    DeleteCache {
        kind: CacheKind,
        database: String,
        table: String,
        name: String,
    },
    Token(TokenChange),
}

/// `(name, type)` pairs as `[["host", "tag"], ...]`, types by the names the catalog file
/// uses for them.
mod column_list {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use shardline_shards::schema::ColumnType;

    pub(super) fn serialize<S: Serializer>(
        columns: &[(String, ColumnType)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(columns.iter().map(|(n, t)| (n, t.name())))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, ColumnType)>, D::Error> {
        let raw = Vec::<(String, String)>::deserialize(d)?;
        raw.into_iter()
            .map(|(n, t)| match ColumnType::from_name(&t) {
                Some(ty) => Ok((n, ty)),
                None => Err(D::Error::custom(format!(
                    "column '{n}' has unknown type '{t}'"
                ))),
            })
            .collect()
    }
}
