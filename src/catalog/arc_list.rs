//! Serde for `Vec<Arc<T>>` as a plain list: the catalog shares entries between versions of
//! its state, and the file format does not see the sharing.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) fn serialize<T: Serialize, S: Serializer>(
    v: &[Arc<T>],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| &**x))
}

pub(crate) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<Arc<T>>, D::Error> {
    Ok(Vec::<T>::deserialize(d)?
        .into_iter()
        .map(Arc::new)
        .collect())
}
