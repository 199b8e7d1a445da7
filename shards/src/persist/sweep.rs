//! Finding the Parquet files no manifest lists: what a crash between writing a file and
//! writing the manifest that would list it leaves behind.
//!
//! Such a file is never read (queries read only listed files), so it is only wasted space.
//! A file is an orphan when it is named like the files shards write
//! (`shard-<i>-<id>.parquet`), no manifest as loaded at start-up lists it or holds it as
//! garbage, and it was last modified before the process started: files written since belong
//! to snapshots or compactions under way, whose manifests may not be written yet. Manifests
//! only ever drop files after start-up, never add old ones, so the start-up view is enough.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::ObjectMeta;

use super::manifest::Manifest;
use super::storage::Storage;
use super::PersistError;

/// Lists the store and deletes its orphans; returns how many there were.
pub fn sweep(
    storage: &Storage,
    manifests: &BTreeMap<usize, Manifest>,
    started: std::time::SystemTime,
) -> Result<usize, PersistError> {
    let listing = storage.list(&Path::default())?;
    let found = orphans(&listing, manifests, DateTime::<Utc>::from(started));
    for path in &found {
        storage.delete(path)?;
    }
    Ok(found.len())
}

/// The shard directory and file id a Parquet file's name gives, if it is one of ours.
fn parse_name(name: &str) -> Option<(usize, u64)> {
    let rest = name.strip_prefix("shard-")?.strip_suffix(".parquet")?;
    let (shard, id) = rest.split_once('-')?;
    Some((shard.parse().ok()?, id.parse().ok()?))
}

/// The orphans among `listing` (everything in the store), given every shard directory's
/// manifest as loaded at start-up (a directory without one lists nothing).
pub fn orphans(
    listing: &[ObjectMeta],
    manifests: &BTreeMap<usize, Manifest>,
    started: DateTime<Utc>,
) -> Vec<Path> {
    let known: HashSet<&str> = manifests
        .values()
        .flat_map(|m| {
            m.files
                .iter()
                .map(|f| f.path.as_str())
                .chain(m.garbage.iter().map(|g| g.path.as_str()))
        })
        .collect();
    listing
        .iter()
        .filter(|o| o.last_modified < started)
        .filter(|o| o.location.filename().and_then(parse_name).is_some())
        .filter(|o| !known.contains(o.location.as_ref()))
        .map(|o| o.location.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::manifest::Garbage;
    use crate::persist::ParquetFile;

    fn meta(path: &str, modified: i64) -> ObjectMeta {
        ObjectMeta {
            location: Path::parse(path).unwrap(),
            last_modified: DateTime::from_timestamp(modified, 0).unwrap(),
            size: 1,
            e_tag: None,
            version: None,
        }
    }

    fn listed(id: u64, path: &str) -> ParquetFile {
        ParquetFile {
            id,
            path: path.into(),
            database_id: 0,
            table_id: 0,
            table_name: "t".into(),
            size_bytes: 1,
            row_count: 1,
            min_time: 0,
            max_time: 0,
            shard_count: 1,
            shard_index: 0,
            epoch: 0,
            sort_id: None,
            wal_max: 0,
            deletes_applied: 0,
        }
    }

    #[test]
    fn only_old_unlisted_parquet_files_of_ours_are_orphans() {
        let mut manifests = BTreeMap::new();
        manifests.insert(
            0,
            Manifest {
                files: vec![listed(1, "db/t/2026-01-01/00-00/shard-0-1.parquet")],
                garbage: vec![Garbage {
                    path: "db/t/2026-01-01/00-00/shard-0-2.parquet".into(),
                    delete_after_ns: 0,
                }],
                ..Manifest::default()
            },
        );
        let listing = vec![
            meta("db/t/2026-01-01/00-00/shard-0-1.parquet", 10), // listed
            meta("db/t/2026-01-01/00-00/shard-0-2.parquet", 10), // garbage, deleted later
            meta("db/t/2026-01-01/00-00/shard-0-3.parquet", 10), // orphan
            meta("db/t/2026-01-01/00-10/shard-4-1.parquet", 10), // no manifest: orphan
            meta("db/t/2026-01-01/00-10/shard-0-9.parquet", 500), // written since start
            meta("manifests/shard-0/00000000000000000001.json", 10),
            meta("db/t/2026-01-01/00-00/notes.parquet", 10),
        ];
        let started = DateTime::from_timestamp(100, 0).unwrap();
        let got: Vec<String> = orphans(&listing, &manifests, started)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "db/t/2026-01-01/00-00/shard-0-3.parquet",
                "db/t/2026-01-01/00-10/shard-4-1.parquet"
            ]
        );
        assert_eq!(parse_name("shard-12-345.parquet"), Some((12, 345)));
        assert_eq!(parse_name("shard-x-1.parquet"), None);
    }
}
