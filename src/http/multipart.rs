//! The text fields of a `multipart/form-data` body (RFC 7578), which 1.x's `/query` reads
//! its parameters from as it reads a URL-encoded form. The body is already in memory and
//! bounded; every field, file parts included, is read as text.
//!
//! Invariants: never panics on any input; a body that is not a well-formed multipart form
//! is refused with a message saying what is wrong, never read in part.

use std::collections::HashMap;

/// The boundary of a `multipart/form-data; boundary=...` content type.
fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

/// The `name` of a part's `Content-Disposition: form-data; name="..."` header.
fn field_name(headers: &str) -> Option<String> {
    headers.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        v.split(';').skip(1).find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
        })
    })
}

/// Every named field of the form and its value (a later field of the same name wins).
pub fn fields(content_type: &str, body: &str) -> Result<HashMap<String, String>, String> {
    let boundary = boundary(content_type)
        .ok_or("a multipart/form-data body needs a boundary in its Content-Type")?;
    let delimiter = format!("--{boundary}");
    let start = body
        .find(&delimiter)
        .ok_or("the multipart body holds no part (its boundary never appears)")?;
    let mut rest = &body[start + delimiter.len()..];
    let next = format!("\r\n{delimiter}");
    let mut out = HashMap::new();
    loop {
        if rest.starts_with("--") {
            return Ok(out);
        }
        rest = rest
            .strip_prefix("\r\n")
            .ok_or("a multipart boundary must be followed by a line break or by '--'")?;
        let (headers, after) = rest
            .split_once("\r\n\r\n")
            .ok_or("a multipart part has no blank line after its headers")?;
        let end = after
            .find(&next)
            .ok_or("the multipart body ends inside a part (no closing boundary)")?;
        if let Some(name) = field_name(headers) {
            out.insert(name, after[..end].to_string());
        }
        rest = &after[end + next.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn form(boundary: &str, fields: &[(String, String)]) -> String {
        let mut out = String::from("preamble\r\n");
        for (k, v) in fields {
            out.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        out
    }

    #[test]
    fn reads_fields_as_curl_sends_them() {
        let ct = "multipart/form-data; boundary=------------------------abc123";
        let body = "--------------------------abc123\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nSELECT * FROM cpu; SHOW DATABASES\r\n--------------------------abc123\r\nContent-Disposition: form-data; name=\"db\"\r\n\r\nmydb\r\n--------------------------abc123--\r\n";
        let f = fields(ct, body).unwrap();
        assert_eq!(f["q"], "SELECT * FROM cpu; SHOW DATABASES");
        assert_eq!(f["db"], "mydb");
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let ct = "multipart/form-data; boundary=b";
        assert!(fields("multipart/form-data", "--b--").is_err());
        assert!(fields(ct, "no parts").is_err());
        assert!(fields(
            ct,
            "--b\r\nContent-Disposition: form-data; name=q\r\n\r\nunterminated"
        )
        .is_err());
        assert!(fields(ct, "--bX").is_err());
    }

    proptest! {
        #[test]
        fn written_forms_read_back(
            fields_in in proptest::collection::vec(("[a-z_]{1,8}", "[ -~\n]{0,40}"), 0..5),
        ) {
            let mut expected = HashMap::new();
            for (k, v) in &fields_in {
                expected.insert(k.clone(), v.clone());
            }
            let boundary = "XyZ-boundary-0123";
            let body = form(boundary, &fields_in);
            let got = fields(&format!("multipart/form-data; boundary=\"{boundary}\""), &body).unwrap();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn never_panics(body in "\\PC{0,200}", b in "[a-z-]{0,5}") {
            let _ = fields(&format!("multipart/form-data; boundary={b}"), &body);
        }
    }
}
