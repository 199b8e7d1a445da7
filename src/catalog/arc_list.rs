//! Serde for a list of `Arc<T>` (a `Vec` or a persistent vector) as a plain list: the catalog
//! shares entries between versions of its state, and the file format does not see the
//! sharing.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) fn serialize<'a, T, C, S>(list: &'a C, s: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + 'a,
    &'a C: IntoIterator<Item = &'a Arc<T>>,
    S: Serializer,
{
    s.collect_seq(list.into_iter().map(|x| &**x))
}

pub(crate) fn deserialize<'de, T, C, D>(d: D) -> Result<C, D::Error>
where
    T: Deserialize<'de>,
    C: FromIterator<Arc<T>>,
    D: Deserializer<'de>,
{
    Ok(Vec::<T>::deserialize(d)?
        .into_iter()
        .map(Arc::new)
        .collect())
}
