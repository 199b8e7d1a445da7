//! What a key column (last-value cache) or a cached column (distinct-value cache) holds for
//! one row: owned ([`KeyValue`], stored in a cache) or borrowed from the buffer ([`KeyRef`],
//! looked up without allocating). Both hash the same way, so a row finds its entry by hash
//! and comparison before anything is copied.

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use crate::buffer::Value;

/// A stored key value. Floats are never keys (the catalog refuses them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    Str(Arc<str>),
}

impl KeyValue {
    /// Bytes allocated for this value beyond its own size (a string's shared allocation).
    pub fn heap_bytes(&self) -> usize {
        match self {
            KeyValue::Str(s) => s.len() + 2 * size_of::<usize>(),
            _ => 0,
        }
    }
}

/// A key value borrowed from a buffered row or a query's predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    Str(&'a str),
}

impl<'a> KeyRef<'a> {
    /// The key value of a buffered value (a float, which cannot be a key, reads as null).
    pub fn of(v: Value<'a>) -> Self {
        match v {
            Value::Null | Value::F64(_) => KeyRef::Null,
            Value::Tag(s) | Value::Str(s) => KeyRef::Str(s),
            Value::I64(x) => KeyRef::I64(x),
            Value::U64(x) => KeyRef::U64(x),
            Value::Bool(x) => KeyRef::Bool(x),
        }
    }

    pub fn to_owned_key(self) -> KeyValue {
        match self {
            KeyRef::Null => KeyValue::Null,
            KeyRef::Bool(x) => KeyValue::Bool(x),
            KeyRef::I64(x) => KeyValue::I64(x),
            KeyRef::U64(x) => KeyValue::U64(x),
            KeyRef::Str(s) => KeyValue::Str(Arc::from(s)),
        }
    }

    fn hash_into(self, h: &mut Xxh3) {
        match self {
            KeyRef::Null => h.update(&[0]),
            KeyRef::Bool(x) => h.update(&[1, x as u8]),
            KeyRef::I64(x) => {
                h.update(&[2]);
                h.update(&x.to_le_bytes());
            }
            KeyRef::U64(x) => {
                h.update(&[3]);
                h.update(&x.to_le_bytes());
            }
            KeyRef::Str(s) => {
                h.update(&[4]);
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
    }
}

impl KeyValue {
    pub fn as_key_ref(&self) -> KeyRef<'_> {
        match self {
            KeyValue::Null => KeyRef::Null,
            KeyValue::Bool(x) => KeyRef::Bool(*x),
            KeyValue::I64(x) => KeyRef::I64(*x),
            KeyValue::U64(x) => KeyRef::U64(*x),
            KeyValue::Str(s) => KeyRef::Str(s),
        }
    }
}

/// The hash of a sequence of key values (one per key column, in order).
pub fn hash_keys<'a>(keys: impl IntoIterator<Item = KeyRef<'a>>) -> u64 {
    let mut h = Xxh3::new();
    for k in keys {
        k.hash_into(&mut h);
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_and_borrowed_keys_hash_alike_and_types_differ() {
        let owned = [KeyValue::Str("a".into()), KeyValue::I64(3), KeyValue::Null];
        let borrowed = [KeyRef::Str("a"), KeyRef::I64(3), KeyRef::Null];
        assert_eq!(
            hash_keys(owned.iter().map(KeyValue::as_key_ref)),
            hash_keys(borrowed)
        );
        assert_ne!(
            hash_keys([KeyRef::I64(1)]),
            hash_keys([KeyRef::U64(1)]),
            "the type is part of the hash"
        );
        // Length prefixes keep ("ab", "c") apart from ("a", "bc").
        assert_ne!(
            hash_keys([KeyRef::Str("ab"), KeyRef::Str("c")]),
            hash_keys([KeyRef::Str("a"), KeyRef::Str("bc")])
        );
        assert_eq!(KeyRef::of(Value::Tag("x")), KeyRef::Str("x"));
        assert_eq!(KeyRef::of(Value::F64(1.0)), KeyRef::Null);
    }
}
