//! A minimal HTTP/1.1 client connection on monoio: one request at a time over a kept-alive
//! TCP stream (no pipelining), reconnecting when the server closes it.
//!
//! Responses are framed by `Content-Length`, `Transfer-Encoding: chunked` or the connection's
//! end; bodies are read and dropped, keeping only their first bytes (for error reports and
//! InfluxQL's in-body errors). The read buffer is reused across requests.

use std::io;
use std::net::SocketAddr;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::body::Request;

/// What came back.
#[derive(Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub body_len: u64,
    /// The body's first bytes, up to the `keep` asked for.
    pub head: Vec<u8>,
}

#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    rbuf: Vec<u8>,
}

const READ_CHUNK: usize = 64 * 1024;

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            rbuf: Vec::with_capacity(READ_CHUNK),
        }
    }

    /// Sends `request` and reads the whole response. On an error the connection is dropped
    /// (the next request reconnects); the request's buffer comes back either way.
    pub async fn exchange(
        &mut self,
        request: Request,
        keep: usize,
    ) -> (io::Result<Reply>, Request) {
        let Request {
            buf,
            start,
            lines,
            kind,
        } = request;
        if self.stream.is_none() {
            match TcpStream::connect_addr(self.addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    self.stream = Some(s);
                }
                Err(e) => {
                    return (
                        Err(e),
                        Request {
                            buf,
                            start,
                            lines,
                            kind,
                        },
                    )
                }
            }
        }
        let stream = self.stream.as_mut().expect("connected above");
        let (written, slice) = stream
            .write_all(monoio::buf::IoBuf::slice(buf, start..))
            .await;
        let request = Request {
            buf: slice.into_inner(),
            start,
            lines,
            kind,
        };
        if let Err(e) = written {
            self.stream = None;
            return (Err(e), request);
        }
        let result = self.read_response(keep).await;
        if result.is_err() {
            self.stream = None;
        }
        (result, request)
    }

    async fn fill(&mut self) -> io::Result<()> {
        let stream = self.stream.as_mut().expect("connected");
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        let buf = std::mem::take(&mut self.rbuf);
        let len = buf.len();
        let (read, slice) = stream.read(buf.slice_mut(len..)).await;
        self.rbuf = slice.into_inner();
        match read? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            _ => Ok(()),
        }
    }

    async fn read_response(&mut self, keep: usize) -> io::Result<Reply> {
        self.rbuf.clear();
        let (status, head_len, framing, close) = loop {
            if !self.rbuf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; 48];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&self.rbuf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = response.code.unwrap_or(0);
                        let (framing, close) = framing_of(status, response.headers)?;
                        break (status, n, framing, close);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad HTTP response: {e}"),
                        ))
                    }
                }
            }
            self.fill().await?;
        };
        let mut reply = Reply {
            status,
            body_len: 0,
            head: Vec::new(),
        };
        let mut pos = head_len;
        match framing {
            Framing::Empty => {}
            Framing::Length(mut remaining) => loop {
                let take = (self.rbuf.len() - pos).min(remaining as usize);
                reply.keep(&self.rbuf[pos..pos + take], keep);
                remaining -= take as u64;
                if remaining == 0 {
                    break;
                }
                self.rbuf.clear();
                pos = 0;
                self.fill().await?;
            },
            Framing::Chunked => loop {
                match httparse::parse_chunk_size(&self.rbuf[pos..]) {
                    Ok(httparse::Status::Complete((used, 0))) => {
                        pos += used;
                        // Trailer lines, then the blank line that ends the message.
                        loop {
                            match self.rbuf[pos..].windows(2).position(|w| w == b"\r\n") {
                                Some(0) => break,
                                Some(n) => pos += n + 2,
                                None => {
                                    self.compact(&mut pos);
                                    self.fill().await?;
                                }
                            }
                        }
                        break;
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        pos += used;
                        let mut remaining = size + 2; // the data and its CRLF
                        loop {
                            let take = (self.rbuf.len() - pos).min(remaining as usize);
                            let data = take.min(remaining.saturating_sub(2) as usize);
                            reply.keep(&self.rbuf[pos..pos + data], keep);
                            pos += take;
                            remaining -= take as u64;
                            if remaining == 0 {
                                break;
                            }
                            self.compact(&mut pos);
                            self.fill().await?;
                        }
                    }
                    Ok(httparse::Status::Partial) => {
                        self.compact(&mut pos);
                        self.fill().await?;
                    }
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "bad chunk size in response",
                        ))
                    }
                }
            },
            Framing::UntilClose => {
                reply.keep(&self.rbuf[pos..], keep);
                loop {
                    self.rbuf.clear();
                    match self.fill().await {
                        Ok(()) => reply.keep(&self.rbuf, keep),
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(e) => return Err(e),
                    }
                }
                self.stream = None;
            }
        }
        if close {
            self.stream = None;
        }
        Ok(reply)
    }

    /// Drops the consumed part of the read buffer so it does not grow with the body.
    fn compact(&mut self, pos: &mut usize) {
        self.rbuf.drain(..*pos);
        *pos = 0;
    }
}

impl Reply {
    fn keep(&mut self, data: &[u8], keep: usize) {
        self.body_len += data.len() as u64;
        let room = keep.saturating_sub(self.head.len());
        self.head.extend_from_slice(&data[..room.min(data.len())]);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

fn framing_of(status: u16, headers: &[httparse::Header<'_>]) -> io::Result<(Framing, bool)> {
    let mut framing = None;
    let mut close = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length in response")
                })?;
            framing.get_or_insert(Framing::Length(n));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
            {
                framing = Some(Framing::Chunked);
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close"));
        }
    }
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok((Framing::Empty, close));
    }
    Ok((framing.unwrap_or(Framing::UntilClose), close))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `responses` in order on one connection and returns what the client made of them.
    fn exchange_all(responses: Vec<&'static [u8]>) -> Vec<io::Result<Reply>> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let n = responses.len();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            for r in responses {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let k = s.read(&mut buf).unwrap();
                    got.extend_from_slice(&buf[..k]);
                }
                // Dribble the response out in small writes to exercise partial reads.
                for piece in r.chunks(5) {
                    s.write_all(piece).unwrap();
                    s.flush().unwrap();
                }
            }
        });
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let out = rt.block_on(async move {
            let mut conn = Conn::new(addr);
            let mut out = Vec::new();
            for _ in 0..n {
                let req = Request {
                    buf: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                    start: 0,
                    lines: 0,
                    kind: 0,
                };
                let (r, _) = conn.exchange(req, 8).await;
                out.push(r);
            }
            out
        });
        server.join().unwrap();
        out
    }

    #[test]
    fn reads_length_chunked_and_empty_bodies_on_one_connection() {
        let out = exchange_all(vec![
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ]);
        let got: Vec<(u16, u64, Vec<u8>)> = out
            .into_iter()
            .map(|r| r.map(|r| (r.status, r.body_len, r.head)).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                (204, 0, vec![]),
                (200, 11, b"hello wo".to_vec()),
                (400, 11, b"hello wo".to_vec()),
                (200, 0, vec![]),
            ]
        );
    }
}
