//! The data directory's shard layout across restarts: how many shards wrote what is on disk,
//! and what start-up must do when `--shards` changes.
//!
//! Invariants:
//! - `layout.json` names the shard count the WAL directories `shard-<i>/wal` were written
//!   under, and an epoch that grows by one at every change of count.
//! - When the count changes, every `shard-<i>/wal` is renamed to `shard-<i>/wal-epoch-<e>`
//!   (e = the old epoch) before the new layout is recorded; renames are atomic and the
//!   step is repeated until the new layout is durable, so a crash half-way is finished by
//!   the next start. Each shard then replays its share of the old epoch's lines until its
//!   manifest records the epoch as absorbed (its share is in its files); once every shard has
//!   absorbed an epoch, the old directories are deleted.
//! - Parquet files record the layout they were written under, so queries know which files
//!   may hold the same series (see `query::shards::Span::may_overlap`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use shardline_shards::persist::PersistError;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({reason}); it records the shard count the WAL was written with")]
    Damaged { path: PathBuf, reason: String },
    #[error("changing the shard count: {0}")]
    Manifest(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub shards: usize,
    pub epoch: u64,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LayoutError {
    let path = path.to_owned();
    move |source| LayoutError::Io { what, path, source }
}

/// Reads the recorded layout and moves to `shards` if it differs (see the module docs).
/// `covered(i)` is the last WAL segment of shard `i` its manifest has in Parquet: those
/// segments are deleted before the directory is moved aside, so old-layout directories hold
/// only lines no file has.
pub fn open(
    data_dir: &Path,
    shards: usize,
    covered: impl Fn(usize) -> Result<u64, PersistError>,
) -> Result<Layout, LayoutError> {
    let path = data_dir.join("layout.json");
    let recorded = match std::fs::read(&path) {
        Ok(b) => Some(
            serde_json::from_slice::<Layout>(&b).map_err(|e| LayoutError::Damaged {
                path: path.clone(),
                reason: e.to_string(),
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("reading", &path)(e)),
    };
    let layout = match recorded {
        Some(l) if l.shards == shards => return Ok(l),
        Some(old) => {
            for (i, dir) in shard_dirs(data_dir)? {
                let wal = dir.join("wal");
                if wal.is_dir() {
                    let through = covered(i).map_err(|e| LayoutError::Manifest(e.to_string()))?;
                    shardline_shards::wal::delete_segments_through(&wal, through)
                        .map_err(|e| LayoutError::Manifest(e.to_string()))?;
                    let to = dir.join(format!("wal-epoch-{}", old.epoch));
                    std::fs::rename(&wal, &to).map_err(io("renaming", &wal))?;
                    tracing::info!(shard = i, from = old.shards, to = shards, "shard count changed; this WAL is replayed under the new count until it is in Parquet");
                }
                sync_dir(&dir)?;
            }
            Layout {
                shards,
                epoch: old.epoch + 1,
            }
        }
        None => Layout { shards, epoch: 0 },
    };
    let tmp = data_dir.join("layout.json.tmp");
    let bytes = serde_json::to_vec(&layout).expect("layout serializes");
    std::fs::write(&tmp, bytes).map_err(io("writing", &tmp))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
    sync_dir(data_dir)?;
    Ok(layout)
}

fn sync_dir(dir: &Path) -> Result<(), LayoutError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", dir))
}

/// Every `<data>/shard-<i>` directory, by index.
pub fn shard_dirs(data_dir: &Path) -> Result<Vec<(usize, PathBuf)>, LayoutError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir).map_err(io("listing", data_dir))? {
        let entry = entry.map_err(io("listing", data_dir))?;
        let name = entry.file_name();
        if let Some(i) = name
            .to_str()
            .and_then(|n| n.strip_prefix("shard-"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            if entry.path().is_dir() {
                out.push((i, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// WAL directories of earlier layouts, by epoch: (shard index, directory).
pub fn old_wal_dirs(data_dir: &Path) -> Result<BTreeMap<u64, Vec<(usize, PathBuf)>>, LayoutError> {
    let mut out: BTreeMap<u64, Vec<(usize, PathBuf)>> = BTreeMap::new();
    for (i, dir) in shard_dirs(data_dir)? {
        for entry in std::fs::read_dir(&dir).map_err(io("listing", &dir))? {
            let entry = entry.map_err(io("listing", &dir))?;
            let epoch = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("wal-epoch-"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(e) = epoch {
                out.entry(e).or_default().push((i, entry.path()));
            }
        }
    }
    Ok(out)
}

/// Which shards have yet to absorb each old epoch; the last one to do so deletes its WAL.
#[derive(Debug)]
pub struct Absorption {
    pending: Mutex<BTreeMap<u64, EpochWait>>,
}

/// One old epoch: which shards still replay it, and its WAL directories.
#[derive(Debug)]
struct EpochWait {
    waiting: Vec<bool>,
    dirs: Vec<PathBuf>,
}

impl Absorption {
    /// `absorbed(shard, epoch)` says whether a shard's manifest already records the epoch.
    /// Epochs every shard has absorbed are deleted now.
    pub fn new(
        shards: usize,
        old: BTreeMap<u64, Vec<(usize, PathBuf)>>,
        absorbed: impl Fn(usize, u64) -> bool,
    ) -> Arc<Self> {
        let mut pending = BTreeMap::new();
        for (epoch, dirs) in old {
            let waiting: Vec<bool> = (0..shards).map(|s| !absorbed(s, epoch)).collect();
            let dirs: Vec<PathBuf> = dirs.into_iter().map(|d| d.1).collect();
            if waiting.iter().any(|w| *w) {
                pending.insert(epoch, EpochWait { waiting, dirs });
            } else {
                remove_dirs(epoch, &dirs);
            }
        }
        Arc::new(Absorption {
            pending: Mutex::new(pending),
        })
    }

    /// Old epochs `shard` still has to absorb.
    pub fn pending_for(&self, shard: usize) -> Vec<u64> {
        let p = self.pending.lock().expect("absorption lock");
        p.iter()
            .filter(|(_, w)| w.waiting.get(shard).copied().unwrap_or(false))
            .map(|(e, _)| *e)
            .collect()
    }

    /// Records that `shard`'s durable manifest absorbed `epochs`.
    pub fn absorbed(&self, shard: usize, epochs: &[u64]) {
        let mut done = Vec::new();
        {
            let mut p = self.pending.lock().expect("absorption lock");
            for e in epochs {
                if let Some(wait) = p.get_mut(e) {
                    if let Some(w) = wait.waiting.get_mut(shard) {
                        *w = false;
                    }
                    if wait.waiting.iter().all(|w| !*w) {
                        done.push((*e, p.remove(e).expect("present").dirs));
                    }
                }
            }
        }
        for (epoch, dirs) in done {
            remove_dirs(epoch, &dirs);
        }
    }
}

fn remove_dirs(epoch: u64, dirs: &[PathBuf]) {
    for d in dirs {
        match std::fs::remove_dir_all(d) {
            Ok(()) => {
                tracing::info!(epoch, dir = %d.display(), "old-layout WAL is in Parquet; deleted")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(epoch, dir = %d.display(), error = %e, "could not delete an old-layout WAL directory (it is replayed and skipped at every start until deleted)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_of_count_moves_the_wal_aside_once() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path();
        let none = |_| Ok(0);
        assert_eq!(
            open(data, 2, none).unwrap(),
            Layout {
                shards: 2,
                epoch: 0
            }
        );
        for i in 0..2 {
            std::fs::create_dir_all(data.join(format!("shard-{i}/wal"))).unwrap();
        }
        // Segment 1 of shard 0 is in Parquet already: it is not carried into the old epoch.
        std::fs::write(
            data.join("shard-0/wal")
                .join(shardline_shards::wal::segment_file_name(1)),
            b"",
        )
        .unwrap();
        std::fs::write(
            data.join("shard-0/wal")
                .join(shardline_shards::wal::segment_file_name(2)),
            b"",
        )
        .unwrap();
        assert_eq!(open(data, 2, none).unwrap().epoch, 0);
        assert_eq!(
            open(data, 3, |i| Ok(if i == 0 { 1 } else { 0 })).unwrap(),
            Layout {
                shards: 3,
                epoch: 1
            }
        );
        let kept: Vec<u64> =
            shardline_shards::wal::list_segments(&data.join("shard-0/wal-epoch-0"))
                .unwrap()
                .into_iter()
                .map(|s| s.0)
                .collect();
        assert_eq!(kept, vec![2]);
        let old = old_wal_dirs(data).unwrap();
        assert_eq!(old.keys().copied().collect::<Vec<_>>(), vec![0]);
        assert_eq!(old[&0].len(), 2);
        assert!(!data.join("shard-0/wal").exists());

        let abs = Absorption::new(3, old_wal_dirs(data).unwrap(), |s, _| s == 1);
        assert_eq!(abs.pending_for(0), vec![0]);
        assert!(abs.pending_for(1).is_empty());
        abs.absorbed(0, &[0]);
        assert!(data.join("shard-0/wal-epoch-0").exists());
        abs.absorbed(2, &[0]);
        assert!(!data.join("shard-0/wal-epoch-0").exists());
        assert!(!data.join("shard-1/wal-epoch-0").exists());
    }
}
