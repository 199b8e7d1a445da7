//! Reading a request body: size limits on the wire and after inflation, gzip (multi-member
//! included), UTF-8. The body is read into one vector and becomes the shared `Arc<String>`
//! without another copy.

use std::io::Read;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::HeaderMap;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(
        "request body is larger than the server's limit of {limit} bytes (--max-http-request-size)"
    )]
    TooLarge { limit: usize },
    #[error("request body is larger than the server's limit of {limit} bytes (--max-http-request-size) after gzip decompression")]
    TooLargeInflated { limit: usize },
    #[error("request body is not valid gzip: {0}")]
    Gzip(std::io::Error),
    #[error("unsupported Content-Encoding '{0}': send gzip or identity")]
    UnsupportedEncoding(String),
    #[error("request body is not valid UTF-8 (first invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("reading the request body failed: {0}")]
    Read(#[from] hyper::Error),
}

impl BodyError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> hyper::StatusCode {
        match self {
            BodyError::TooLarge { .. } | BodyError::TooLargeInflated { .. } => {
                hyper::StatusCode::PAYLOAD_TOO_LARGE
            }
            BodyError::UnsupportedEncoding(_) => hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => hyper::StatusCode::BAD_REQUEST,
        }
    }

    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            BodyError::TooLarge { .. } | BodyError::TooLargeInflated { .. }
        )
    }
}

enum Encoding {
    Identity,
    Gzip,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    match headers.get(hyper::header::CONTENT_ENCODING) {
        None => Ok(Encoding::Identity),
        Some(v) => {
            let s = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
            match s.as_str() {
                "" | "identity" => Ok(Encoding::Identity),
                "gzip" | "x-gzip" => Ok(Encoding::Gzip),
                _ => Err(BodyError::UnsupportedEncoding(s)),
            }
        }
    }
}

/// Checks what the headers announce before any of the body is read (so that an oversized
/// `Expect: 100-continue` upload is refused without being sent).
pub fn precheck(headers: &HeaderMap, limit: usize) -> Result<(), BodyError> {
    encoding(headers)?;
    let announced = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(())
}

/// Reads, inflates and validates the body into `buf` (and, for gzip, into the buffer that
/// `inflated` gives), which the caller provides so their memory can be reused across requests.
/// With gzip, the compressed bytes' buffer is handed back too.
pub async fn read(
    headers: &HeaderMap,
    body: &mut Incoming,
    limit: usize,
    mut buf: Vec<u8>,
    inflated: impl FnOnce() -> Vec<u8>,
) -> Result<(Arc<String>, Option<Vec<u8>>), BodyError> {
    precheck(headers, limit)?;
    let enc = encoding(headers)?;
    let announced = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    buf.clear();
    buf.reserve(announced.unwrap_or(64 << 10).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    let (raw, compressed) = match enc {
        Encoding::Identity => (buf, None),
        Encoding::Gzip => (inflate(&buf, limit, inflated())?, Some(buf)),
    };
    let text = String::from_utf8(raw)
        .map(Arc::new)
        .map_err(|e| BodyError::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
        })?;
    Ok((text, compressed))
}

/// Inflates every gzip member of `data` into `out`, refusing output beyond `limit` bytes.
pub fn inflate(data: &[u8], limit: usize, mut out: Vec<u8>) -> Result<Vec<u8>, BodyError> {
    out.clear();
    out.reserve((data.len() * 4).min(limit));
    let decoder = flate2::read::MultiGzDecoder::new(data);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(BodyError::Gzip)?;
    if out.len() > limit {
        return Err(BodyError::TooLargeInflated { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(s: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(s).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn multi_member_gzip_inflates_whole() {
        let mut data = gz(b"a v=1\n");
        data.extend(gz(b"b v=2\n"));
        assert_eq!(inflate(&data, 100, Vec::new()).unwrap(), b"a v=1\nb v=2\n");
    }

    #[test]
    fn inflation_limit_and_bad_gzip() {
        let data = gz(&[b'x'; 1000]);
        assert!(matches!(
            inflate(&data, 999, Vec::new()),
            Err(BodyError::TooLargeInflated { limit: 999 })
        ));
        assert_eq!(inflate(&data, 1000, Vec::new()).unwrap().len(), 1000);
        assert!(matches!(
            inflate(b"not gzip", 100, Vec::new()),
            Err(BodyError::Gzip(_))
        ));
    }
}
