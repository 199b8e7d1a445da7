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
    /// Each remembered key followed by a marker byte: 0 for a tag, 1 + type for a field.
    shape: Vec<u8>,
    ids: Vec<u32>,
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
        let key = (db_id, table.id, table.columns.len());
        if self.table_id == Some(key) && self.same_shape(tags, fields) {
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
        self.shape.clear();
        for t in tags {
            self.shape.extend_from_slice(t.key.raw.as_bytes());
            self.shape.push(0);
        }
        for f in fields {
            self.shape.extend_from_slice(f.key.raw.as_bytes());
            self.shape.push(1 + ColumnType::of_field(&f.value) as u8);
        }
        self.table_id = Some(key);
        Ok(&self.ids)
    }

    /// Whether the line's keys and field types are those remembered, compared in place.
    #[inline]
    fn same_shape(&self, tags: &[Tag<'_>], fields: &[Field<'_>]) -> bool {
        let mut rest = self.shape.as_slice();
        let mut next = |name: &[u8], marker: u8| -> bool {
            let n = name.len();
            if rest.len() > n && rest[n] == marker && crate::bytes::short_eq(&rest[..n], name) {
                rest = &rest[n + 1..];
                true
            } else {
                false
            }
        };
        tags.iter().all(|t| next(t.key.raw.as_bytes(), 0))
            && fields.iter().all(|f| {
                next(
                    f.key.raw.as_bytes(),
                    1 + ColumnType::of_field(&f.value) as u8,
                )
            })
            && rest.is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lp::LineParser;

    fn resolve(r: &mut Resolver, t: &TableSchema, line: &str) -> Result<Vec<u32>, SchemaError> {
        let mut p = LineParser::new(line);
        p.next_line().unwrap().unwrap();
        r.resolve(0, t, p.tags(), p.fields()).map(<[u32]>::to_vec)
    }

    #[test]
    fn the_remembered_shape_only_matches_the_same_keys_and_types() {
        let t = TableSchema::with_columns(
            0,
            "m",
            &[
                ("time", ColumnType::Time),
                ("h", ColumnType::Tag),
                ("a", ColumnType::Float),
                ("b", ColumnType::Int),
            ],
        );
        let mut r = Resolver::default();
        assert_eq!(
            resolve(&mut r, &t, "m,h=x a=1,b=2i").unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(
            resolve(&mut r, &t, "m,h=y a=5,b=7i").unwrap(),
            vec![1, 2, 3],
            "same shape"
        );
        assert_eq!(
            resolve(&mut r, &t, "m,h=y b=7i,a=5").unwrap(),
            vec![1, 3, 2],
            "field order differs"
        );
        assert!(
            matches!(
                resolve(&mut r, &t, "m,h=y b=7i,a=5i"),
                Err(SchemaError::TypeConflict { .. })
            ),
            "type differs"
        );
        assert!(
            matches!(resolve(&mut r, &t, "m,h=y a=1"), Ok(v) if v == vec![1, 2]),
            "fewer fields"
        );
        assert!(matches!(
            resolve(&mut r, &t, "m,h=y a=1,c=1"),
            Err(SchemaError::Missing { .. })
        ));
        assert!(
            matches!(
                resolve(&mut r, &t, "m a=1,h=1"),
                Err(SchemaError::TypeConflict { .. })
            ),
            "tag used as field"
        );
        assert!(matches!(
            resolve(&mut r, &t, "m time=1"),
            Err(SchemaError::ReservedName(_))
        ));
    }
}
