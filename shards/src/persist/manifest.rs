//! A shard's manifest: which Parquet files it has written, and how much of its WAL they cover.
//!
//! Invariants:
//! - A manifest is written only after every file it names is durable, and a WAL segment is
//!   deleted only after a durable manifest covers it; so after a crash at any step every
//!   acknowledged point is in a listed file or in a WAL segment that replay will read, and
//!   no point is read from both (replay skips covered segments, unlisted files are never read).
//! - Manifests are versioned objects (`manifests/shard-<i>/<version>.json`), each written whole
//!   under a new name; loading takes the newest that parses. A torn newest version can exist
//!   only if its write never completed, and then nothing relied on it (no WAL was deleted).

use serde::{Deserialize, Serialize};

use object_store::path::Path;

use super::storage::Storage;
use super::tombstone::Tombstone;
use super::PersistError;

/// Versions kept besides the newest (older ones are deleted as new ones land).
const KEEP_OLD_VERSIONS: u64 = 2;

/// One Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetFile {
    /// Unique within the shard; the file is `shard-<index>-<id>.parquet`.
    pub id: u64,
    /// Object store path.
    pub path: String,
    pub database_id: u32,
    pub table_id: u32,
    pub table_name: String,
    pub size_bytes: u64,
    pub row_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    /// The shard layout it was written under: with `shard_count` shards, shard
    /// `shard_index` owned its series. Files of one layout and different indices share no
    /// series; files of different layouts may (queries check this with `Span::may_overlap`).
    pub shard_count: u32,
    pub shard_index: u32,
    /// The layout epoch (see the data directory's `layout.json`); with `id`, orders files for
    /// last-write-wins: a later (epoch, id) holds newer writes.
    pub epoch: u64,
    /// For a file compaction wrote: the id of its newest input, whose place in the
    /// last-write-wins order it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_id: Option<u64>,
    /// The newest segment of its shard's WAL whose rows it may hold: a deletion stamped with
    /// a later segment does not touch it (0 in files from before deletions existed, which
    /// every deletion covers).
    #[serde(default)]
    pub wal_max: u64,
    /// The newest tombstone of its manifest whose rows it was written without (see
    /// [`super::tombstone`]).
    #[serde(default)]
    pub deletes_applied: u64,
}

/// A file no manifest lists any more, to delete once no query can be reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Garbage {
    pub path: String,
    /// Wall-clock time (ns since the epoch) after which it may be deleted.
    pub delete_after_ns: i64,
}

/// The object store location of a stored path. Paths are stored already encoded (a table
/// named `a/b` is the segment `a%2Fb`), so they are parsed, not encoded again.
pub fn location(path: &str) -> Path {
    Path::parse(path).unwrap_or_else(|_| Path::from(path))
}

impl ParquetFile {
    pub fn location(&self) -> Path {
        location(&self.path)
    }

    /// Last-write-wins order key.
    pub fn order(&self) -> (u64, u64) {
        (self.epoch, self.sort_id.unwrap_or(self.id))
    }

    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        self.min_time <= max && self.max_time >= min
    }
}

/// What one shard has persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u64,
    /// Segments of this shard's WAL directory up to and including this one are in files.
    pub wal_covered: u64,
    /// Layout epochs whose old WAL this shard's files already hold its share of.
    pub absorbed_epochs: Vec<u64>,
    pub next_file_id: u64,
    pub files: Vec<ParquetFile>,
    /// Files replaced (by compaction) or expired, awaiting deletion.
    #[serde(default)]
    pub garbage: Vec<Garbage>,
    /// Deletions still hiding rows of listed files (see [`super::tombstone`]).
    #[serde(default)]
    pub tombstones: Vec<Tombstone>,
    /// The id of the newest tombstone ever recorded here (0: none); ids only grow.
    #[serde(default)]
    pub last_tombstone_id: u64,
}

fn prefix(shard: usize) -> Path {
    Path::from_iter(["manifests".to_string(), format!("shard-{shard}")])
}

fn version_path(shard: usize, version: u64) -> Path {
    prefix(shard).join(format!("{version:020}.json"))
}

impl Manifest {
    /// Records deletions made when the shard's WAL had reached segment `wal_covered` under
    /// layout `epoch`, giving each the next id.
    pub fn add_tombstones(&mut self, stones: Vec<Tombstone>, epoch: u64, wal_covered: u64) {
        for mut t in stones {
            self.last_tombstone_id += 1;
            t.id = self.last_tombstone_id;
            t.epoch = epoch;
            t.wal_covered = wal_covered;
            self.tombstones.push(t);
        }
    }

    /// The tombstones hiding rows of `file`; `same_manifest`: `file` is one of this
    /// manifest's.
    pub fn covering(&self, file: &ParquetFile, same_manifest: bool) -> Vec<Tombstone> {
        self.tombstones
            .iter()
            .filter(|t| t.covers(file, same_manifest))
            .cloned()
            .collect()
    }

    /// Drops the tombstones that cover none of this manifest's files nor any of `others`'
    /// (manifests whose files this one's tombstones also apply to); returns how many went.
    pub fn drop_spent_tombstones(&mut self, others: &[&Manifest]) -> usize {
        let before = self.tombstones.len();
        let files = &self.files;
        self.tombstones.retain(|t| {
            files.iter().any(|f| t.covers(f, true))
                || others
                    .iter()
                    .any(|m| m.files.iter().any(|f| t.covers(f, false)))
        });
        before - self.tombstones.len()
    }

    /// The newest readable manifest of `shard` (the default, empty one if none exists).
    pub fn load(storage: &Storage, shard: usize) -> Result<Manifest, PersistError> {
        let mut versions: Vec<(u64, Path)> = storage
            .list(&prefix(shard))?
            .into_iter()
            .filter_map(|m| {
                let v = m.location.filename()?.strip_suffix(".json")?.parse().ok()?;
                Some((v, m.location))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        for (i, (version, path)) in versions.iter().enumerate() {
            let parsed = storage
                .get(path)
                .and_then(|b| serde_json::from_slice::<Manifest>(&b).map_err(PersistError::Json));
            match parsed {
                Ok(m) if m.version == *version => return Ok(m),
                Ok(_) | Err(_) if i + 1 < versions.len() => {
                    tracing::warn!(shard, version, "manifest version unreadable; using the previous one (its write never completed)");
                }
                Ok(_) => {
                    return Err(PersistError::Manifest {
                        shard,
                        reason: format!("version {version} names another version"),
                    })
                }
                Err(e) => {
                    return Err(PersistError::Manifest {
                        shard,
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(Manifest::default())
    }

    /// Writes this manifest as a new version (one past `self.version`), durably, and returns
    /// it; then removes versions older than the ones kept.
    pub fn save_next(mut self, storage: &Storage, shard: usize) -> Result<Manifest, PersistError> {
        self.version += 1;
        let bytes = serde_json::to_vec(&self).map_err(PersistError::Json)?;
        storage.put_durable(&version_path(shard, self.version), bytes.into())?;
        if self.version > KEEP_OLD_VERSIONS + 1 {
            let old = self.version - KEEP_OLD_VERSIONS - 1;
            for m in storage.list(&prefix(shard))? {
                let v: Option<u64> = m
                    .location
                    .filename()
                    .and_then(|f| f.strip_suffix(".json"))
                    .and_then(|f| f.parse().ok());
                if v.is_some_and(|v| v <= old) {
                    storage.delete(&m.location)?;
                }
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: u64) -> ParquetFile {
        ParquetFile {
            id,
            path: format!("db/t/shard-0-{id}.parquet"),
            database_id: 0,
            table_id: 1,
            table_name: "t".into(),
            size_bytes: 10,
            row_count: 2,
            min_time: 5,
            max_time: 9,
            shard_count: 2,
            shard_index: 0,
            epoch: 0,
            sort_id: None,
            wal_max: 0,
            deletes_applied: 0,
        }
    }

    #[test]
    fn versions_round_trip_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path().to_owned()).unwrap();
        assert_eq!(Manifest::load(&storage, 0).unwrap(), Manifest::default());
        let mut m = Manifest::default();
        for i in 0..6 {
            m.files.push(file(i));
            m.wal_covered = i;
            m = m.save_next(&storage, 0).unwrap();
        }
        assert_eq!(m.version, 6);
        let loaded = Manifest::load(&storage, 0).unwrap();
        assert_eq!(loaded, m);
        assert_eq!(storage.list(&prefix(0)).unwrap().len(), 3);
        assert_eq!(Manifest::load(&storage, 1).unwrap(), Manifest::default());
    }

    #[test]
    fn a_torn_newest_version_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path().to_owned()).unwrap();
        let m = Manifest {
            files: vec![file(1)],
            ..Manifest::default()
        }
        .save_next(&storage, 3)
        .unwrap();
        storage
            .put_durable(&version_path(3, 2), bytes::Bytes::from_static(b"{\"vers"))
            .unwrap();
        assert_eq!(Manifest::load(&storage, 3).unwrap(), m);
    }

    #[test]
    fn time_overlap_is_inclusive() {
        let f = file(1);
        assert!(f.overlaps(9, 20) && f.overlaps(0, 5) && !f.overlaps(10, 20));
    }
}
