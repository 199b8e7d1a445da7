//! Resolving a parsed line's tag and field names to a table's column ids, checking types.
//!
//! Used twice per line: by the shard that receives a write (to validate it and to find the
//! catalog changes it needs) and by the shard that owns the series (to place values in columns).
//! Lines in one write usually share their shape (same keys, same types, same order), so the
//! resolver remembers the last shape per table and reuses its column ids after one comparison
//! of key bytes, instead of a hash lookup per field.

use crate::lp::{Field, Tag, TokenKind};
use crate::schema::{ColumnType, TableSchema, TIME_COLUMN};

/// Why a line does not fit a table's schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The column does not exist yet (a catalog change can add it).
    #[error("column '{name}' ({ty}) does not exist")]
    Missing { name: String, ty: ColumnType },
    #[error("invalid column type for column '{column}', expected {expected}, got {actual}")]
    TypeConflict {
        column: String,
        expected: ColumnType,
        actual: ColumnType,
    },
    #[error("column name '{0}' is reserved for the timestamp")]
    ReservedName(String),
}

/// Column ids of one line: tags first (in sorted tag order), then fields (in written order).
#[derive(Debug, Default)]
pub struct Resolver {
    table_id: Option<(u32, u32, usize)>, // (db id, table id, schema column count)
    shape: Vec<u8>,
    ids: Vec<u32>,
    scratch: Vec<u8>,
}

impl Resolver {
    /// Resolves the line's keys against `table`; on success `ids()` holds the column ids.
    #[inline]
    pub fn resolve(
        &mut self,
        db_id: u32,
        table: &TableSchema,
        tags: &[Tag<'_>],
        fields: &[Field<'_>],
    ) -> Result<&[u32], SchemaError> {
        self.scratch.clear();
        for t in tags {
            self.scratch.extend_from_slice(t.key.raw.as_bytes());
            self.scratch.push(0);
        }
        for f in fields {
            self.scratch.extend_from_slice(f.key.raw.as_bytes());
            self.scratch.push(1 + ColumnType::of_field(&f.value) as u8);
        }
        let key = (db_id, table.id, table.columns.len());
        if self.table_id == Some(key) && self.scratch == self.shape {
            return Ok(&self.ids);
        }
        self.table_id = None;
        self.ids.clear();
        for t in tags {
            let name = t.key.unescaped(TokenKind::Key);
            self.ids.push(lookup(table, &name, ColumnType::Tag)?);
        }
        for f in fields {
            let name = f.key.unescaped(TokenKind::Key);
            self.ids
                .push(lookup(table, &name, ColumnType::of_field(&f.value))?);
        }
        std::mem::swap(&mut self.shape, &mut self.scratch);
        self.table_id = Some(key);
        Ok(&self.ids)
    }

    /// Forgets the remembered shape (after the schema may have changed).
    pub fn reset(&mut self) {
        self.table_id = None;
    }
}

#[inline]
fn lookup(table: &TableSchema, name: &str, ty: ColumnType) -> Result<u32, SchemaError> {
    match table.column(name) {
        Some(c) if c.ty == ty => Ok(c.id),
        Some(c) if c.ty == ColumnType::Time => Err(SchemaError::ReservedName(name.to_string())),
        Some(c) => Err(SchemaError::TypeConflict {
            column: name.to_string(),
            expected: c.ty,
            actual: ty,
        }),
        None if name == TIME_COLUMN => Err(SchemaError::ReservedName(name.to_string())),
        None => Err(SchemaError::Missing {
            name: name.to_string(),
            ty,
        }),
    }
}
