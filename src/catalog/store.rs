//! Where the catalog's files live, behind a trait so tests can fail any step: the checkpoint
//! (replaced atomically) and the log segments (appended and fsynced).
//!
//! Layout under `<data-dir>/catalog/`:
//! - `checkpoint.json`: the whole state after record `seq`; first line
//!   `shardline-catalog-checkpoint v1 seq=<seq> crc32c=<hex>`, then the JSON it checksums.
//!   Written as `checkpoint.json.tmp`, fsynced, renamed over, directory fsynced.
//! - `log-<first seq, 20 digits>.log`: records ([`super::log`]) with consecutive sequence
//!   numbers from the one in the name. Only the newest segment is ever appended to.
//!
//! Invariants: every operation either completes or reports an error; nothing here retries or
//! hides a failure, so the writer decides what a failed step means.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The checkpoint's name; the temporary file beside it adds `.tmp`.
pub(crate) const CHECKPOINT: &str = "checkpoint.json";
const CHECKPOINT_TMP: &str = "checkpoint.json.tmp";

/// The name of the segment whose first record has sequence number `first`.
pub(crate) fn segment_name(first: u64) -> String {
    format!("log-{first:020}.log")
}

fn segment_seq(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("log-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The file operations the catalog needs. `Send + Sync`: the writer appends while the
/// checkpointer replaces the checkpoint on its own thread.
pub trait CatalogStore: Send + Sync + std::fmt::Debug {
    /// Where the files are (for messages).
    fn location(&self) -> &Path;
    /// Creates the directory if it is missing.
    fn prepare(&self) -> io::Result<()>;
    /// The checkpoint's bytes, `None` when there is none yet.
    fn read_checkpoint(&self) -> io::Result<Option<Vec<u8>>>;
    /// Replaces the checkpoint with `bytes` atomically: after a crash at any point the old
    /// one or the new one is there, whole.
    fn write_checkpoint(&self, bytes: &[u8]) -> io::Result<()>;
    /// The first sequence numbers of the log segments, ascending.
    fn segments(&self) -> io::Result<Vec<u64>>;
    fn read_segment(&self, first: u64) -> io::Result<Vec<u8>>;
    /// Opens a segment for appending after its first `len` bytes (created empty, and the
    /// directory fsynced, when `len` is 0 and it does not exist); bytes past `len` are cut
    /// off and the cut is fsynced.
    fn open_segment(&self, first: u64, len: u64) -> io::Result<Box<dyn SegmentFile>>;
    fn remove_segment(&self, first: u64) -> io::Result<()>;
}

/// An open log segment.
pub trait SegmentFile: Send + std::fmt::Debug {
    /// Writes all of `bytes` at the end, then fsyncs (data only: the length is data).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Cuts the file back to `len` bytes and fsyncs.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// One step of a file operation, where [`FaultHook`] may make it fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    CheckpointWrite,
    CheckpointSync,
    CheckpointRename,
    DirSync,
    SegmentCreate,
    SegmentWrite,
    SegmentSync,
    SegmentTruncate,
    SegmentRemove,
}

/// Decides, before each step, whether it fails (tests of every failure path). A failed write
/// step first writes half of its bytes, as a crash or a full disk may leave them.
pub trait FaultHook: Send + Sync + std::fmt::Debug {
    fn before(&self, step: Step) -> io::Result<()>;
}

/// The store on the local filesystem.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    faults: Option<Arc<dyn FaultHook>>,
}

impl FileStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            dir: dir.into(),
            faults: None,
        }
    }

    /// A store whose steps `hook` may fail.
    pub fn with_faults(dir: impl Into<PathBuf>, hook: Arc<dyn FaultHook>) -> Self {
        FileStore {
            dir: dir.into(),
            faults: Some(hook),
        }
    }

    fn step(&self, step: Step) -> io::Result<()> {
        match &self.faults {
            Some(h) => h.before(step),
            None => Ok(()),
        }
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.step(Step::DirSync)?;
        File::open(&self.dir)?.sync_all()
    }
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl CatalogStore for FileStore {
    fn location(&self) -> &Path {
        &self.dir
    }

    fn prepare(&self) -> io::Result<()> {
        if !self.dir.exists() {
            std::fs::create_dir_all(&self.dir)?;
            if let Some(parent) = self.dir.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(())
    }

    fn read_checkpoint(&self) -> io::Result<Option<Vec<u8>>> {
        read_optional(&self.dir.join(CHECKPOINT))
    }

    fn write_checkpoint(&self, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.dir.join(CHECKPOINT_TMP);
        {
            let mut f = File::create(&tmp)?;
            if let Err(e) = self.step(Step::CheckpointWrite) {
                f.write_all(&bytes[..bytes.len() / 2])?;
                return Err(e);
            }
            f.write_all(bytes)?;
            self.step(Step::CheckpointSync)?;
            f.sync_all()?;
        }
        self.step(Step::CheckpointRename)?;
        std::fs::rename(&tmp, self.dir.join(CHECKPOINT))?;
        self.sync_dir()
    }

    fn segments(&self) -> io::Result<Vec<u64>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(seq) = name.to_str().and_then(segment_seq) {
                out.push(seq);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn read_segment(&self, first: u64) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(segment_name(first)))
    }

    fn open_segment(&self, first: u64, len: u64) -> io::Result<Box<dyn SegmentFile>> {
        let path = self.dir.join(segment_name(first));
        let existed = path.exists();
        if !existed {
            self.step(Step::SegmentCreate)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        if !existed {
            self.sync_dir()?;
        }
        let mut seg = LocalSegment {
            file,
            len,
            store: self.clone(),
        };
        if seg.file.metadata()?.len() != len {
            seg.truncate(len)?;
        }
        Ok(Box::new(seg))
    }

    fn remove_segment(&self, first: u64) -> io::Result<()> {
        self.step(Step::SegmentRemove)?;
        std::fs::remove_file(self.dir.join(segment_name(first)))?;
        self.sync_dir()
    }
}

#[derive(Debug)]
struct LocalSegment {
    file: File,
    /// Where the next append goes (the file is never read through this handle).
    len: u64,
    store: FileStore,
}

impl SegmentFile for LocalSegment {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if let Err(e) = self.store.step(Step::SegmentWrite) {
            self.file
                .write_all_at(&bytes[..bytes.len() / 2], self.len)?;
            return Err(e);
        }
        self.file.write_all_at(bytes, self.len)?;
        self.store.step(Step::SegmentSync)?;
        self.file.sync_data()?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.store.step(Step::SegmentTruncate)?;
        self.file.set_len(len)?;
        self.file.sync_all()?;
        self.len = len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_and_parse() {
        assert_eq!(segment_name(7), "log-00000000000000000007.log");
        assert_eq!(segment_seq(&segment_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "log-7.log",
            "log-0000000000000000000x.log",
            "checkpoint.json",
            "log-.log",
        ] {
            assert_eq!(segment_seq(bad), None, "{bad}");
        }
    }

    #[test]
    fn appends_truncates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("catalog"));
        store.prepare().unwrap();
        let mut seg = store.open_segment(1, 0).unwrap();
        seg.append(b"abc").unwrap();
        seg.append(b"def").unwrap();
        seg.truncate(4).unwrap();
        seg.append(b"x").unwrap();
        assert_eq!(store.read_segment(1).unwrap(), b"abcdx");
        drop(seg);
        let mut seg = store.open_segment(1, 2).unwrap();
        seg.append(b"!").unwrap();
        assert_eq!(store.read_segment(1).unwrap(), b"ab!");
        assert_eq!(store.segments().unwrap(), vec![1]);
        store.write_checkpoint(b"one").unwrap();
        store.write_checkpoint(b"two").unwrap();
        assert_eq!(
            store.read_checkpoint().unwrap().as_deref(),
            Some(&b"two"[..])
        );
        store.remove_segment(1).unwrap();
        assert!(store.segments().unwrap().is_empty());
    }
}
