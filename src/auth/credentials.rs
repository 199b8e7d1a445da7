//! Reading the credentials a request presents: the `Authorization` header (`Bearer`, `Token`
//! or `Basic` with the token as the password) and, for the v1 endpoints only, `?p=`.
//!
//! Invariants: never panics on any input; a header that is present but cannot be read is
//! `Malformed` (400), never treated as absent; the token text is never logged or echoed.

use base64::Engine;
use http::HeaderMap;

/// Why a request's credentials could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
}

/// The token a request presents, if any. `v1_query` is the query string of a v1 `/write` or
/// `/query` request (whose `p` parameter may carry the token; `u` is ignored).
pub fn presented(
    headers: &HeaderMap,
    v1_query: Option<&str>,
) -> Result<Option<String>, CredentialsError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(CredentialsError::Malformed(
                "more than one Authorization header",
            ));
        }
        let text = value
            .to_str()
            .map_err(|_| CredentialsError::Malformed("the header is not printable ASCII"))?;
        return from_header(text).map(Some);
    }
    if let Some(query) = v1_query {
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if k == "p" {
                if v.is_empty() {
                    return Err(CredentialsError::Malformed("the 'p' parameter is empty"));
                }
                return Ok(Some(v.into_owned()));
            }
        }
    }
    Ok(None)
}

/// Reads `Bearer T`, `Token T` or `Basic base64(user:T)`.
fn from_header(text: &str) -> Result<String, CredentialsError> {
    let (scheme, rest) = text.split_once(' ').ok_or(CredentialsError::Malformed(
        "expected 'Bearer <token>', 'Token <token>' or 'Basic <credentials>'",
    ))?;
    let credential = rest.trim_matches(' ');
    if credential.is_empty() {
        return Err(CredentialsError::Malformed(
            "the credential after the scheme is empty",
        ));
    }
    // `Token` is case-sensitive (the v2 convention); `Bearer` and `Basic` are HTTP schemes,
    // whose names are case-insensitive.
    let token = if scheme == "Token" || scheme.eq_ignore_ascii_case("bearer") {
        credential.to_string()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credential)
            .map_err(|_| CredentialsError::Malformed("Basic credentials are not valid base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| CredentialsError::Malformed("Basic credentials are not UTF-8"))?;
        let (_user, password) = decoded.split_once(':').ok_or(CredentialsError::Malformed(
            "Basic credentials must be 'user:token'",
        ))?;
        if password.is_empty() {
            return Err(CredentialsError::Malformed(
                "Basic credentials carry no token after ':'",
            ));
        }
        password.to_string()
    } else {
        return Err(CredentialsError::Malformed(
            "unknown scheme; use Bearer, Token or Basic",
        ));
    };
    if token.contains(' ') {
        return Err(CredentialsError::Malformed("a token contains no spaces"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_header(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(v).unwrap(),
        );
        h
    }

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn every_scheme_yields_the_token() {
        for h in [
            "Bearer apiv3_x",
            "bearer apiv3_x",
            "Token apiv3_x",
            &basic("me:apiv3_x"),
            &basic(":apiv3_x"),
        ] {
            assert_eq!(
                presented(&with_header(h), None),
                Ok(Some("apiv3_x".into())),
                "{h}"
            );
        }
    }

    #[test]
    fn query_p_counts_only_for_v1_and_only_without_a_header() {
        let none = HeaderMap::new();
        assert_eq!(
            presented(&none, Some("db=a&u=x&p=apiv3_q")),
            Ok(Some("apiv3_q".into()))
        );
        assert_eq!(presented(&none, None), Ok(None));
        assert_eq!(presented(&none, Some("db=a")), Ok(None));
        assert_eq!(
            presented(&with_header("Token apiv3_h"), Some("p=apiv3_q")),
            Ok(Some("apiv3_h".into()))
        );
        assert!(presented(&none, Some("p=")).is_err());
    }

    #[test]
    fn malformed_headers_are_errors_not_absent() {
        for h in [
            "Bearer",
            "Bearer ",
            "token apiv3_x",
            "Digest abc",
            "apiv3_x",
            "Basic !!!",
            &basic("no-colon"),
            &basic("u:"),
            "Bearer a b",
        ] {
            assert!(presented(&with_header(h), None).is_err(), "{h}");
        }
        let mut two = with_header("Bearer a");
        two.append(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer b"),
        );
        assert!(presented(&two, None).is_err());
        let mut binary = HeaderMap::new();
        binary.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert!(presented(&binary, None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_header_or_query(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80), q in ".{0,40}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                h.insert(http::header::AUTHORIZATION, v);
            }
            let _ = presented(&h, Some(&q));
        }
    }
}
