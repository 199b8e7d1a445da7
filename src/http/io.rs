//! Adapts glommio's TCP stream (futures-io traits) to hyper's I/O traits.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

/// Most bytes handed to one read: hyper's buffer tail is uninitialised and must be zeroed
/// before the socket may write into it as `&mut [u8]`, so reads are capped to bound that cost.
const MAX_READ_BYTES: usize = 64 << 10;

/// A glommio TCP stream, speaking hyper's `Read`/`Write`.
#[derive(Debug)]
pub struct HyperStream(pub glommio::net::TcpStream);

impl hyper::rt::Read for HyperStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: we only write initialised bytes into this slice (zeros, then what the socket
        // returns) and report exactly how many were filled via `advance`.
        let uninit = unsafe { buf.as_mut() };
        let n = uninit.len().min(MAX_READ_BYTES);
        let slice = &mut uninit[..n];
        for b in slice.iter_mut() {
            b.write(0);
        }
        // SAFETY: every byte of `slice` was initialised just above; MaybeUninit<u8> and u8 have
        // the same layout.
        let init: &mut [u8] =
            unsafe { &mut *(slice as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) };
        match Pin::new(&mut self.get_mut().0).poll_read(cx, init) {
            Poll::Ready(Ok(read)) => {
                // SAFETY: the socket filled `read` bytes of the initialised prefix.
                unsafe { buf.advance(read) };
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for HyperStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    /// Sends the head and body chunks hyper queues in one `sendmsg`. Without this hyper
    /// copies every body byte into one flat buffer first, which for a large query result
    /// costs more than sending it.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = &mut self.get_mut().0;
        // SAFETY: the descriptor belongs to `stream`, which is borrowed (so open) for as long
        // as `fd` is used, and `SockRef` never closes what it borrows.
        let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        match socket2::SockRef::from(&fd).send_vectored_with_flags(bufs, flags) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // glommio's own write retries and, if the socket is still full, wakes this
                // task when it can take bytes.
                let first = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &**b);
                Pin::new(stream).poll_write(cx, first)
            }
            r => Poll::Ready(r),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }
}
