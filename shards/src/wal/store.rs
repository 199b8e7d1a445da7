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

/// Bytes per DMA write. A group is written as chunks of this size, at most
/// [`MAX_CHUNKS_IN_FLIGHT`] at a time, so every buffer comes from the executor's registered
/// io_uring memory and is recycled there: allocating one buffer the size of a whole group
/// (megabytes, page-aligned) took fresh pages from the OS on every commit.
pub(crate) const DMA_CHUNK_BYTES: usize = 256 << 10;
/// Chunks written concurrently.
pub(crate) const MAX_CHUNKS_IN_FLIGHT: usize = 3;
/// Registered memory the chunks in flight need (the executor's `io_memory` must cover it).
pub const DMA_MEMORY_BYTES: usize = DMA_CHUNK_BYTES * MAX_CHUNKS_IN_FLIGHT;

/// A segment file opened with O_DIRECT.
#[derive(Debug)]
pub struct DmaSegment {
    file: std::rc::Rc<glommio::io::DmaFile>,
}

/// Copies bytes `from..from + dst.len()` of the concatenation of `parts` into `dst`, with
/// zeros past the end of the parts.
fn copy_parts(parts: &[&[u8]], mut from: usize, dst: &mut [u8]) {
    let mut at = 0;
    for p in parts {
        if from >= p.len() {
            from -= p.len();
            continue;
        }
        let n = (p.len() - from).min(dst.len() - at);
        dst[at..at + n].copy_from_slice(&p[from..from + n]);
        at += n;
        from = 0;
        if at == dst.len() {
            return;
        }
    }
    dst[at..].fill(0);
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
        Ok(DmaSegment {
            file: std::rc::Rc::new(file),
        })
    }
}

impl SegmentFile for DmaSegment {
    fn alignment(&self) -> usize {
        self.file.alignment() as usize
    }

    async fn write_at(&self, parts: &[&[u8]], pos: u64) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let padded = self.file.align_up(len as u64) as usize;
        let mut in_flight = std::collections::VecDeque::with_capacity(MAX_CHUNKS_IN_FLIGHT);
        let mut off = 0;
        while off < padded {
            let n = DMA_CHUNK_BYTES.min(padded - off);
            let mut buf = self.file.alloc_dma_buffer(n);
            copy_parts(parts, off, buf.as_bytes_mut());
            let file = self.file.clone();
            let at = pos + off as u64;
            in_flight.push_back(glommio::spawn_local(async move {
                (file.write_at(buf, at).await, n)
            }));
            off += n;
            if in_flight.len() == MAX_CHUNKS_IN_FLIGHT {
                finish_chunk(in_flight.pop_front().expect("non-empty").await)?;
            }
        }
        while let Some(t) = in_flight.pop_front() {
            finish_chunk(t.await)?;
        }
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(io::Error::from)
    }

    async fn close(self) -> io::Result<()> {
        match std::rc::Rc::try_unwrap(self.file) {
            Ok(f) => f.close().await.map_err(io::Error::from),
            // A chunk task still holds the file (only after a failed write); dropping closes it.
            Err(_) => Ok(()),
        }
    }
}

fn finish_chunk((written, expected): (glommio::Result<usize, ()>, usize)) -> io::Result<()> {
    let written = written.map_err(io::Error::from)?;
    if written != expected {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {expected} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::copy_parts;

    #[test]
    fn copy_parts_spans_parts_and_pads() {
        let parts: [&[u8]; 2] = [b"abc", b"defgh"];
        let mut d = [9u8; 4];
        copy_parts(&parts, 2, &mut d);
        assert_eq!(&d, b"cdef");
        let mut d = [9u8; 6];
        copy_parts(&parts, 5, &mut d);
        assert_eq!(&d, b"fgh\0\0\0");
        let mut d = [9u8; 3];
        copy_parts(&parts, 20, &mut d);
        assert_eq!(d, [0, 0, 0]);
    }
}
