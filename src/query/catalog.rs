//! One database as a DataFusion catalog: schema `iox` holds its tables, schema `system` its
//! `queries`, `parquet_files`, `last_caches` and `distinct_caches` tables; DataFusion adds
//! `information_schema`.
//!
//! Invariants: a query sees the database's tables and columns as of the catalog snapshot it
//! started with; tables created later appear to later queries. Deleted tables are not
//! listed, not found, and their files are not in `system.parquet_files`. Rows older than the
//! table's retention period (its own, else the database's) are not read.

use std::sync::Arc;

use arrow::array::builder::{ListBuilder, StringBuilder, UInt32Builder};
use arrow::array::{Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, MemTable, SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use object_store::ObjectStore;
use shardline_shards::cache::{DistinctCacheDef, LastCacheDef};
use shardline_shards::persist::ParquetFile;
use shardline_shards::schema::{DbSchema, TableSchema};

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

const SYSTEM_TABLES: [&str; 4] = ["distinct_caches", "last_caches", "parquet_files", "queries"];

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
            "last_caches" => last_caches_batch(&self.db)?,
            "distinct_caches" => distinct_caches_batch(&self.db)?,
            _ => return Ok(None),
        };
        let table = MemTable::try_new(schema, vec![vec![batch]])?;
        Ok(Some(Arc::new(table)))
    }

    fn table_exist(&self, name: &str) -> bool {
        SYSTEM_TABLES.contains(&name)
    }
}

/// A list column per row, from each row's items.
fn list_of<T, B: arrow::array::ArrayBuilder>(
    rows: &[Option<Vec<T>>],
    values: B,
    mut push: impl FnMut(&mut B, &T),
) -> arrow::array::ListArray {
    let mut b = ListBuilder::new(values);
    for r in rows {
        match r {
            Some(items) => {
                for i in items {
                    push(b.values(), i);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    b.finish()
}

fn column_names(t: &TableSchema, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&i| t.columns[i as usize].name.to_string())
        .collect()
}

/// `system.last_caches`: one row per last-value cache of the database's live tables: table,
/// name, key column ids and names, value column ids and names (null when every non-key
/// column is cached), count, and ttl in seconds.
fn last_caches_batch(db: &DbSchema) -> Result<(SchemaRef, RecordBatch), DataFusionError> {
    let caches: Vec<(&TableSchema, &LastCacheDef)> = db
        .live_tables()
        .flat_map(|t| t.last_caches.iter().map(move |c| (&**t, &**c)))
        .collect();
    let ids = |f: &dyn Fn(&LastCacheDef) -> Option<Vec<u32>>| -> Vec<Option<Vec<u32>>> {
        caches.iter().map(|(_, c)| f(c)).collect()
    };
    let key_ids = ids(&|c| Some(c.key_columns.clone()));
    let value_ids = ids(&|c| c.value_columns.clone());
    let names = |rows: &[Option<Vec<u32>>]| -> Vec<Option<Vec<String>>> {
        rows.iter()
            .zip(&caches)
            .map(|(r, (t, _))| r.as_ref().map(|ids| column_names(t, ids)))
            .collect()
    };
    let item = |nullable| Arc::new(Field::new("item", DataType::UInt32, nullable));
    let name_item = || Arc::new(Field::new("item", DataType::Utf8, true));
    let schema = Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("key_column_ids", DataType::List(item(true)), true),
        Field::new("key_column_names", DataType::List(name_item()), true),
        Field::new("value_column_ids", DataType::List(item(true)), true),
        Field::new("value_column_names", DataType::List(name_item()), true),
        Field::new("count", DataType::UInt64, false),
        Field::new("ttl", DataType::UInt64, false),
    ]));
    let u32s =
        |rows: &[Option<Vec<u32>>]| list_of(rows, UInt32Builder::new(), |b, v| b.append_value(*v));
    let strs = |rows: &[Option<Vec<String>>]| {
        list_of(rows, StringBuilder::new(), |b, v| b.append_value(v))
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                caches.iter().map(|(t, _)| &*t.name),
            )),
            Arc::new(StringArray::from_iter_values(
                caches.iter().map(|(_, c)| &*c.name),
            )),
            Arc::new(u32s(&key_ids)),
            Arc::new(strs(&names(&key_ids))),
            Arc::new(u32s(&value_ids)),
            Arc::new(strs(&names(&value_ids))),
            Arc::new(UInt64Array::from_iter_values(
                caches.iter().map(|(_, c)| c.count as u64),
            )),
            Arc::new(UInt64Array::from_iter_values(
                caches
                    .iter()
                    .map(|(_, c)| (c.ttl_ns / 1_000_000_000) as u64),
            )),
        ],
    )?;
    Ok((schema, batch))
}

/// `system.distinct_caches`: one row per distinct-value cache of the database's live tables:
/// table, name, column ids and names, max_cardinality, and max age in seconds.
fn distinct_caches_batch(db: &DbSchema) -> Result<(SchemaRef, RecordBatch), DataFusionError> {
    let caches: Vec<(&TableSchema, &DistinctCacheDef)> = db
        .live_tables()
        .flat_map(|t| t.distinct_caches.iter().map(move |c| (&**t, &**c)))
        .collect();
    let ids: Vec<Option<Vec<u32>>> = caches
        .iter()
        .map(|(_, c)| Some(c.columns.clone()))
        .collect();
    let names: Vec<Option<Vec<String>>> = caches
        .iter()
        .map(|(t, c)| Some(column_names(t, &c.columns)))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new(
            "column_ids",
            DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
            true,
        ),
        Field::new(
            "column_names",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("max_cardinality", DataType::UInt64, false),
        Field::new("max_age_seconds", DataType::UInt64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                caches.iter().map(|(t, _)| &*t.name),
            )),
            Arc::new(StringArray::from_iter_values(
                caches.iter().map(|(_, c)| &*c.name),
            )),
            Arc::new(list_of(&ids, UInt32Builder::new(), |b, v| {
                b.append_value(*v)
            })),
            Arc::new(list_of(&names, StringBuilder::new(), |b, v| {
                b.append_value(v)
            })),
            Arc::new(UInt64Array::from_iter_values(
                caches.iter().map(|(_, c)| c.max_cardinality as u64),
            )),
            Arc::new(UInt64Array::from_iter_values(
                caches
                    .iter()
                    .map(|(_, c)| (c.max_age_ns / 1_000_000_000) as u64),
            )),
        ],
    )?;
    Ok((schema, batch))
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
