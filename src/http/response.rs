//! Building responses: JSON bodies, the error shapes of the v3 and v1/v2 APIs.

use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};

/// A body streamed as it is produced (query results).
pub type StreamedBody =
    StreamBody<futures::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>>>;
/// A whole body, or a streamed one.
pub type Body = Either<Full<Bytes>, StreamedBody>;
pub type HttpResponse = Response<Body>;

fn full(b: Bytes) -> Body {
    Either::Left(Full::new(b))
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(full(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// A body built at run time with its content type.
pub fn owned(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(full(Bytes::from(body)))
        .expect("static response parts are valid")
}

pub fn empty(status: StatusCode) -> HttpResponse {
    Response::builder()
        .status(status)
        .body(full(Bytes::new()))
        .expect("static response parts are valid")
}

pub fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(Bytes::from_static(body.as_bytes())))
        .expect("static response parts are valid")
}

/// The v3 error shape: `{"error": "..."}`.
pub fn v3_error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    json(status, &serde_json::json!({ "error": message.into() }))
}

/// The v1/v2 error shape: `{"code": "...", "message": "..."}`.
pub fn compat_error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    let code = match status {
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => "invalid",
        StatusCode::NOT_FOUND => "not found",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable entity",
        _ => "internal error",
    };
    json(
        status,
        &serde_json::json!({ "code": code, "message": message.into() }),
    )
}

/// 405 with the methods the path takes.
pub fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut r = v3_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; this endpoint accepts {allow}"),
    );
    r.headers_mut().insert(
        hyper::header::ALLOW,
        hyper::header::HeaderValue::from_static(allow),
    );
    r
}
