//! Where WAL segments are written: the storage seam of the log.
//!
//! The server writes through [`DmaStore`]: O_DIRECT files driven by glommio's io_uring, with
//! writes of whole blocks. Tests implement [`SegmentStore`] in memory to inject failures.

use std::io;
use std::path::PathBuf;

/// One open segment file.
#[allow(async_fn_in_trait)] // shards are single-threaded; these futures never cross threads
pub trait SegmentFile {
    /// Block size every write's offset and length must be a multiple of.
    fn alignment(&self) -> usize;
    /// Writes the concatenation of `parts` at `pos` (a multiple of the alignment), padded with
    /// zeros to a whole number of blocks.
    async fn write_at(&self, parts: &[&[u8]], pos: u64) -> io::Result<()>;
    /// Makes everything written so far durable (fdatasync).
    async fn sync(&self) -> io::Result<()>;
    async fn close(self) -> io::Result<()>;
}

/// Creates segment files.
#[allow(async_fn_in_trait)]
pub trait SegmentStore {
    type File: SegmentFile;
    /// Creates segment `seq`; fails if it exists.
    async fn create(&self, seq: u64) -> io::Result<Self::File>;
}

/// Segments as O_DIRECT files in one directory.
#[derive(Debug, Clone)]
pub struct DmaStore {
    dir: PathBuf,
}

impl DmaStore {
    /// Uses `dir`, creating it if needed.
    pub fn new(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(DmaStore { dir })
    }
}

/// A segment file opened with O_DIRECT.
#[derive(Debug)]
pub struct DmaSegment {
    file: glommio::io::DmaFile,
}

impl SegmentStore for DmaStore {
    type File = DmaSegment;

    async fn create(&self, seq: u64) -> io::Result<DmaSegment> {
        let path = self.dir.join(super::segment_file_name(seq));
        let file = glommio::io::OpenOptions::new()
            .write(true)
            .create_new(true)
            .dma_open(&path)
            .await
            .map_err(io::Error::from)?;
        // Make the new name durable before any record in it is acknowledged.
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(DmaSegment { file })
    }
}

impl SegmentFile for DmaSegment {
    fn alignment(&self) -> usize {
        self.file.alignment() as usize
    }

    async fn write_at(&self, parts: &[&[u8]], pos: u64) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let padded = self.file.align_up(len as u64) as usize;
        let mut buf = self.file.alloc_dma_buffer(padded);
        let dst = buf.as_bytes_mut();
        let mut at = 0;
        for p in parts {
            dst[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        dst[at..].fill(0);
        let written = self
            .file
            .write_at(buf, pos)
            .await
            .map_err(io::Error::from)?;
        if written != padded {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {padded} bytes"),
            ));
        }
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(io::Error::from)
    }

    async fn close(self) -> io::Result<()> {
        self.file.close().await.map_err(io::Error::from)
    }
}
