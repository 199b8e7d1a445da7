//! The v1 requests of two of its biggest users, replayed byte for byte as their source builds
//! them: Telegraf's `outputs.influxdb` at start-up (a form-encoded `CREATE DATABASE` with no
//! `db`, by a token that may only write that database, then a gzipped write), and Grafana's
//! InfluxDB data source in InfluxQL mode with `httpMode: POST` (the URL carries `db` and
//! `epoch=ms`, the body the query). Grafana's GET mode is the shape of the requests in
//! `tests/v1/requests.txt`, whose answers are 1.6's (`v1_golden.rs`); POST mode must answer
//! the same bytes.

use std::io::Write;

use base64::Engine;

use crate::auth::{admin, resource};
use crate::harness::{http, Server, AUTH_ON};

/// Status line and body of a raw response.
fn split(response: &str) -> (&str, &str) {
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    (head.lines().next().unwrap(), body)
}

fn telegraf_request(addr: &str, token: &str, path: &str, ctype: &str, body: &[u8]) -> Vec<u8> {
    // Go's client: Host, User-Agent, Content-Length, the request's headers sorted, then the
    // transport's Accept-Encoding.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("telegraf:{token}"));
    let mut extra = String::new();
    if path.starts_with("/write") {
        extra.push_str("Content-Encoding: gzip\r\n");
    }
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Telegraf/1.32.2 Go/1.23.2\r\nContent-Length: {}\r\nAuthorization: Basic {basic}\r\n{extra}Content-Type: {ctype}\r\nAccept-Encoding: gzip\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[test]
fn telegraf_outputs_influxdb_start_up() {
    let s = Server::start_with(2, &[AUTH_ON]);
    let adm = admin(&s);
    let perms = |db: &str| serde_json::json!([{"resource_type": "db", "resource_identifier": [db], "actions": ["write"]}]);
    let (writer, _) = resource(&s, &adm, "telegraf", perms("telegraf"), None);
    let (other, _) = resource(&s, &adm, "other", perms("other"), None);
    // url.Values{"q": `CREATE DATABASE "telegraf"`}.Encode()
    let create = b"q=CREATE+DATABASE+%22telegraf%22";
    let form = "application/x-www-form-urlencoded";

    let answer = s.raw(&telegraf_request(&s.addr, &writer, "/query", form, create));
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 200 OK", "{answer}");
    assert_eq!(body, "{\"results\":[{\"statement_id\":0}]}\n");
    // Again at the next start: still fine.
    let answer = s.raw(&telegraf_request(&s.addr, &writer, "/query", form, create));
    assert_eq!(split(&answer).1, "{\"results\":[{\"statement_id\":0}]}\n");

    // A token for another database may not; Telegraf logs the error and writes anyway.
    let answer = s.raw(&telegraf_request(&s.addr, &other, "/query", form, create));
    let (status, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 403 Forbidden", "{answer}");
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("WRITE on telegraf"),
        "{body}"
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"cpu,host=h1 usage_idle=97.5,usage_user=1.25 1700000000000000000\ncpu,host=h2 usage_idle=88 1700000000000000000\n")
        .unwrap();
    let lines = gz.finish().unwrap();
    let write = telegraf_request(
        &s.addr,
        &writer,
        "/write?db=telegraf",
        "text/plain; charset=utf-8",
        &lines,
    );
    let answer = s.raw(&write);
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    let got = http()
        .get(&s.url("/query"))
        .query("db", "telegraf")
        .query("q", "SELECT * FROM cpu")
        .query("epoch", "s")
        .set("Authorization", &format!("Token {adm}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(
        got,
        "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"cpu\",\"columns\":[\"time\",\"host\",\"usage_idle\",\"usage_user\"],\"values\":[[1700000000,\"h1\",97.5,1.25],[1700000000,\"h2\",88,null]]}]}]}\n"
    );
}

#[test]
fn grafana_post_mode_answers_as_get_mode() {
    let s = Server::start(2);
    let data =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v1/data.lp"))
            .unwrap();
    let (status, body) = s.post("/write?db=v1&precision=ns", &data);
    assert_eq!(status, 204, "{body}");
    let queries = [
        "SELECT mean(\"usage\") FROM \"cpu\" WHERE time >= 1700000000000ms and time <= 1700000004999ms GROUP BY time(2s), \"host\"::tag fill(null)",
        "SHOW TAG VALUES FROM \"cpu\" WITH KEY = \"host\" WHERE \"region\" =~ /^us-east$/",
        "SELECT max(\"usage\") FROM \"cpu\" WHERE time >= 1700000000000ms and time <= 1700000004999ms GROUP BY time(2s) fill(0) tz('Europe/Berlin')",
    ];
    for q in queries {
        // Grafana's GET mode: everything in the URL.
        let get = http()
            .get(&s.url("/query"))
            .query("db", "v1")
            .query("epoch", "ms")
            .query("q", q)
            .set("User-Agent", "Grafana")
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        // POST mode: url.Values{"q": q}.Encode() as the body; db and epoch in the URL.
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", q)
            .finish();
        let head = format!(
            "POST /query?db=v1&epoch=ms HTTP/1.1\r\nHost: {}\r\nUser-Agent: Grafana\r\nContent-Length: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept-Encoding: gzip\r\n\r\n",
            s.addr,
            form.len()
        );
        let answer = s.raw(format!("{head}{form}").as_bytes());
        let (status, body) = split(&answer);
        assert_eq!(status, "HTTP/1.1 200 OK", "{q}: {answer}");
        assert_eq!(body, get, "{q}");
        assert!(get.contains("\"series\""), "{q}: {get}");
    }
}
