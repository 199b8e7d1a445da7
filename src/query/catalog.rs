//! One database as a DataFusion catalog: schema `iox` holds its tables, schema `system` its
//! `queries` table; DataFusion adds `information_schema`.
//!
//! Invariant: a query sees the database's tables and columns as of the catalog snapshot it
//! started with; tables created later appear to later queries.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, MemTable, SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use shardline_shards::schema::DbSchema;

use super::log::QueryLog;
use super::shards::ShardHandles;
use super::table::BufferTable;

/// The schema user tables live in (InfluxDB 3's name for it).
pub const TABLE_SCHEMA: &str = "iox";
pub const SYSTEM_SCHEMA: &str = "system";
/// The catalog name every database is queried as.
pub const CATALOG_NAME: &str = "public";

#[derive(Debug)]
pub struct DatabaseCatalog {
    tables: Arc<TableSchemaProvider>,
    system: Arc<SystemSchemaProvider>,
}

impl DatabaseCatalog {
    pub fn new(db: Arc<DbSchema>, shards: ShardHandles, log: Arc<QueryLog>) -> Self {
        DatabaseCatalog {
            system: Arc::new(SystemSchemaProvider {
                database: db.name.to_string(),
                log,
            }),
            tables: Arc::new(TableSchemaProvider { db, shards }),
        }
    }
}

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec![TABLE_SCHEMA.to_string(), SYSTEM_SCHEMA.to_string()]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            TABLE_SCHEMA => Some(self.tables.clone()),
            SYSTEM_SCHEMA => Some(self.system.clone()),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct TableSchemaProvider {
    db: Arc<DbSchema>,
    shards: ShardHandles,
}

#[async_trait]
impl SchemaProvider for TableSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.db.tables.iter().map(|t| t.name.to_string()).collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.db.table(name).map(|t| {
            Arc::new(BufferTable::new(self.db.id, t.clone(), self.shards.clone()))
                as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.db.table(name).is_some()
    }
}

#[derive(Debug)]
struct SystemSchemaProvider {
    database: String,
    log: Arc<QueryLog>,
}

#[async_trait]
impl SchemaProvider for SystemSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        vec!["queries".to_string()]
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if name != "queries" {
            return Ok(None);
        }
        let batch = self.log.batch(&self.database);
        let table = MemTable::try_new(QueryLog::schema(), vec![vec![batch]])?;
        Ok(Some(Arc::new(table)))
    }

    fn table_exist(&self, name: &str) -> bool {
        name == "queries"
    }
}
