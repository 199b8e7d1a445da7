//! One database as a DataFusion catalog: schema `iox` holds its tables, schema `system` its
//! `queries` and `parquet_files` tables; DataFusion adds `information_schema`.
//!
//! Invariants: a query sees the database's tables and columns as of the catalog snapshot it
//! started with; tables created later appear to later queries. Deleted tables are not
//! listed, not found, and their files are not in `system.parquet_files`. Rows older than the
//! table's retention period (its own, else the database's) are not read.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, MemTable, SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use object_store::ObjectStore;
use shardline_shards::persist::ParquetFile;
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
    pub fn new(
        db: Arc<DbSchema>,
        shards: ShardHandles,
        store: Arc<dyn ObjectStore>,
        log: Arc<QueryLog>,
    ) -> Self {
        DatabaseCatalog {
            system: Arc::new(SystemSchemaProvider {
                db: db.clone(),
                shards: shards.clone(),
                log,
            }),
            tables: Arc::new(TableSchemaProvider { db, shards, store }),
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
    store: Arc<dyn ObjectStore>,
}

#[async_trait]
impl SchemaProvider for TableSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.db.live_tables().map(|t| t.name.to_string()).collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.db.table(name).map(|t| {
            Arc::new(BufferTable::new(
                self.db.id,
                t.clone(),
                self.db.retention_for(t),
                self.shards.clone(),
                self.store.clone(),
            )) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.db.table(name).is_some()
    }
}

#[derive(Debug)]
struct SystemSchemaProvider {
    db: Arc<DbSchema>,
    shards: ShardHandles,
    log: Arc<QueryLog>,
}

const SYSTEM_TABLES: [&str; 2] = ["parquet_files", "queries"];

#[async_trait]
impl SchemaProvider for SystemSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        SYSTEM_TABLES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let (schema, batch) = match name {
            "queries" => (QueryLog::schema(), self.log.batch(&self.db.name)),
            "parquet_files" => {
                let files = self.shards.files(self.db.id).await?;
                parquet_files_batch(&self.db, files)?
            }
            _ => return Ok(None),
        };
        let table = MemTable::try_new(schema, vec![vec![batch]])?;
        Ok(Some(Arc::new(table)))
    }

    fn table_exist(&self, name: &str) -> bool {
        SYSTEM_TABLES.contains(&name)
    }
}

/// `system.parquet_files`: one row per file (table_name, path, size_bytes, row_count,
/// min_time, max_time in ns, as InfluxDB 3 Core lists them), ordered by table and time.
fn parquet_files_batch(
    db: &DbSchema,
    mut files: Vec<ParquetFile>,
) -> Result<(SchemaRef, RecordBatch), DataFusionError> {
    files.sort_by(|a, b| {
        (&a.table_name, a.min_time, &a.path).cmp(&(&b.table_name, b.min_time, &b.path))
    });
    // Files of deleted tables are not the database's any more (they await removal).
    files.retain(|f| {
        db.table_by_id(f.table_id)
            .is_some_and(|t| t.deleted_at_ns.is_none())
    });
    // A table's current name (the file records the name it had when written).
    let name = |f: &ParquetFile| {
        db.table_by_id(f.table_id)
            .map_or_else(|| f.table_name.clone(), |t| t.name.to_string())
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("row_count", DataType::Int64, false),
        Field::new("min_time", DataType::Int64, false),
        Field::new("max_time", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(files.iter().map(name))),
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|f| f.path.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|f| f.size_bytes as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|f| f.row_count as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|f| f.min_time),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|f| f.max_time),
            )),
        ],
    )?;
    Ok((schema, batch))
}
