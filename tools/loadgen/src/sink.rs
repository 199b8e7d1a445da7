//! A server that reads HTTP/1.1 requests and throws their bodies away, answering 204: the far
//! end for measuring the load generator's own ceiling, with no database in the way.
//!
//! One monoio runtime per thread, all accepting on one port (SO_REUSEPORT). Bodies framed by
//! `Content-Length` only; a chunked request gets 501 and the connection is closed.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

/// What the sink has taken in.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub requests: AtomicU64,
    pub body_bytes: AtomicU64,
}

#[derive(Debug)]
pub struct Sink {
    pub addr: SocketAddr,
    pub counters: Arc<SinkCounters>,
}

/// Starts the sink on `threads` threads (each pinned to one of `cpus`, if given) and returns
/// once it listens. The threads run until the process ends.
pub fn spawn(bind: SocketAddr, threads: usize, cpus: Option<Vec<usize>>) -> io::Result<Sink> {
    let first = std::net::TcpListener::bind(bind)?;
    let addr = first.local_addr()?;
    drop(first);
    let counters = Arc::new(SinkCounters::default());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    for t in 0..threads.max(1) {
        let (counters, ready_tx, cpus) = (counters.clone(), ready_tx.clone(), cpus.clone());
        std::thread::Builder::new()
            .name(format!("sink-{t}"))
            .spawn(move || {
                if let Some(cpus) = cpus {
                    if let Err(e) = crate::cpus::pin_current_thread(&[cpus[t % cpus.len()]]) {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                }
                let mut rt = match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match TcpListener::bind_with_config(
                        addr,
                        &ListenerOpts::new().reuse_port(true),
                    ) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while let Ok((stream, _)) = listener.accept().await {
                        monoio::spawn(serve(stream, counters.clone()));
                    }
                });
            })?;
    }
    drop(ready_tx);
    for _ in 0..threads.max(1) {
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("sink thread died"))??;
    }
    Ok(Sink { addr, counters })
}

async fn serve(mut stream: TcpStream, counters: Arc<SinkCounters>) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut len = 0usize; // bytes of `buf` not yet consumed, at its front
    loop {
        // Read until a complete head is in.
        let (head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 48];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[..len]) {
                Ok(httparse::Status::Complete(n)) => {
                    let mut body = Some(0u64);
                    for h in req.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            body = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok());
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            body = None;
                        }
                    }
                    break (n, body);
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return,
            }
            if len == buf.capacity() {
                buf.reserve(buf.capacity());
            }
            let (read, slice) = stream.read(std::mem::take(&mut buf).slice_mut(len..)).await;
            buf = slice.into_inner();
            match read {
                Ok(0) | Err(_) => return,
                Ok(n) => len += n,
            }
        };
        let Some(body_len) = body_len else {
            let _ = stream.write_all(&b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..]).await;
            return;
        };
        // Discard the body: what is buffered, then reads straight over the buffer.
        let mut remaining = body_len;
        let buffered = (len - head_len) as u64;
        let leftover_from = if buffered >= remaining {
            let end = head_len + remaining as usize;
            remaining = 0;
            end
        } else {
            remaining -= buffered;
            len
        };
        buf.copy_within(leftover_from..len, 0);
        len -= leftover_from;
        while remaining > 0 {
            buf.clear();
            let (read, b) = stream.read(buf).await;
            buf = b;
            let n = match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n as u64,
            };
            if n > remaining {
                // The start of the next request.
                let extra = (n - remaining) as usize;
                buf.copy_within(remaining as usize..n as usize, 0);
                len = extra;
                remaining = 0;
            } else {
                remaining -= n;
            }
        }
        buf.truncate(len);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters.body_bytes.fetch_add(body_len, Ordering::Relaxed);
        let (written, _) = stream
            .write_all(&b"HTTP/1.1 204 No Content\r\n\r\n"[..])
            .await;
        if written.is_err() {
            return;
        }
    }
}
