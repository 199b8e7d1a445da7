//! Tokens, authentication schemes, the permission matrix, limits and the management CLI,
//! against a real server with authentication on.

use std::process::Command;

use base64::Engine;
use serde_json::Value;

use crate::harness::{http, json, run, Server, AUTH_ON, PATIENCE};

/// A request with an optional `Authorization` value; returns status and body.
fn call(
    s: &Server,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut req = http().request(method, &s.url(path));
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    let r = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap_or_default()),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// Creates the admin token on a fresh server.
pub(crate) fn admin(s: &Server) -> String {
    let (st, body) = call(s, "POST", "/api/v3/configure/token/admin", None, None);
    assert_eq!(st, 201, "{body}");
    json(&body)["token"].as_str().unwrap().to_string()
}

/// Creates a resource token; returns its text and id.
pub(crate) fn resource(
    s: &Server,
    admin: &str,
    name: &str,
    perms: Value,
    expiry_secs: Option<u64>,
) -> (String, u64) {
    let mut body = serde_json::json!({"token_name": name, "permissions": perms});
    if let Some(e) = expiry_secs {
        body["expiry_secs"] = e.into();
    }
    let (st, text) = call(
        s,
        "POST",
        "/api/v3/configure/token",
        Some(&bearer(admin)),
        Some(&body.to_string()),
    );
    assert_eq!(st, 201, "{text}");
    let v = json(&text);
    assert_eq!(v["name"], name);
    (
        v["token"].as_str().unwrap().to_string(),
        v["id"].as_u64().unwrap(),
    )
}

fn write_status(s: &Server, db: &str, auth: Option<&str>) -> u16 {
    call(
        s,
        "POST",
        &format!("/api/v3/write_lp?db={db}"),
        auth,
        Some("m,t=a v=1i 1"),
    )
    .0
}

fn query_status(s: &Server, db: &str, auth: Option<&str>) -> u16 {
    let body = serde_json::json!({"db": db, "q": "SELECT 1"}).to_string();
    call(s, "POST", "/api/v3/query_sql", auth, Some(&body)).0
}

#[test]
fn the_admin_token_is_created_once_and_regenerating_revokes_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), 1, &[AUTH_ON]);
    let (st, body) = call(&s, "GET", "/health", None, None);
    assert_eq!(st, 401, "{body}");
    assert!(json(&body)["error"]
        .as_str()
        .unwrap()
        .contains("missing credentials"));

    let (st, body) = call(&s, "POST", "/api/v3/configure/token/admin", None, None);
    assert_eq!(st, 201, "{body}");
    let v = json(&body);
    let first = v["token"].as_str().unwrap().to_string();
    assert!(
        first.starts_with("apiv3_") && first.len() >= 6 + 64,
        "{first}"
    );
    assert_eq!(v["name"], "_admin");
    assert_eq!(v["expiry"], Value::Null);
    assert_eq!(v["hash"].as_str().unwrap().len(), 128);

    let (st, body) = call(&s, "POST", "/api/v3/configure/token/admin", None, None);
    assert_eq!(st, 409, "{body}");
    assert!(body.contains("already exists"), "{body}");
    let (st, _) = call(
        &s,
        "POST",
        "/api/v3/configure/token/admin",
        Some(&bearer(&first)),
        None,
    );
    assert_eq!(st, 409);

    assert_eq!(
        call(&s, "GET", "/health", Some(&bearer(&first)), None).0,
        200
    );
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v3/configure/token/admin/regenerate",
            None,
            None
        )
        .0,
        401
    );
    let (st, body) = call(
        &s,
        "POST",
        "/api/v3/configure/token/admin/regenerate",
        Some(&bearer(&first)),
        None,
    );
    assert_eq!(st, 201, "{body}");
    let second = json(&body)["token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let (st, body) = call(
        &s,
        "GET",
        "/api/v3/configure/database",
        Some(&bearer(&first)),
        None,
    );
    assert_eq!(st, 401, "{body}");
    assert_eq!(
        call(
            &s,
            "GET",
            "/api/v3/configure/database",
            Some(&bearer(&second)),
            None
        )
        .0,
        200
    );

    // Named admin tokens are admins; names are unique.
    let named = r#"{"token_name":"ops","expiry_secs":3600}"#;
    let (st, body) = call(
        &s,
        "POST",
        "/api/v3/configure/token/named_admin",
        Some(&bearer(&second)),
        Some(named),
    );
    assert_eq!(st, 201, "{body}");
    let ops = json(&body)["token"].as_str().unwrap().to_string();
    assert!(json(&body)["expiry"].is_string());
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v3/configure/token/named_admin",
            Some(&bearer(&second)),
            Some(named)
        )
        .0,
        409
    );
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v3/configure/database",
            Some(&bearer(&ops)),
            Some(r#"{"db":"x"}"#)
        )
        .0,
        201
    );

    // Everything survives a restart.
    drop(s);
    let s = Server::start_in(dir.path(), 1, &[AUTH_ON]);
    assert_eq!(
        call(&s, "GET", "/health", Some(&bearer(&second)), None).0,
        200
    );
    assert_eq!(call(&s, "GET", "/health", Some(&bearer(&ops)), None).0, 200);
    assert_eq!(
        call(&s, "GET", "/health", Some(&bearer(&first)), None).0,
        401
    );
    assert_eq!(
        call(&s, "POST", "/api/v3/configure/token/admin", None, None).0,
        409
    );
}

#[test]
fn every_scheme_authenticates_and_malformed_credentials_are_refused() {
    let s = Server::start_with(1, &[AUTH_ON]);
    let t = admin(&s);
    let basic = |user_pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    };
    let schemes = [
        bearer(&t),
        format!("Token {t}"),
        basic(&format!("anyone:{t}")),
        basic(&format!(":{t}")),
    ];
    for (i, auth) in schemes.iter().enumerate() {
        for (j, path) in [
            "/api/v3/write_lp?db=db",
            "/api/v2/write?bucket=db",
            "/write?db=db",
        ]
        .iter()
        .enumerate()
        {
            let line = format!("m v=1i {}", 100 + i * 3 + j);
            assert_eq!(
                call(&s, "POST", path, Some(auth), Some(&line)).0,
                204,
                "{auth} {path}"
            );
        }
    }
    // v1 endpoints also take ?p= (u ignored); others do not.
    assert_eq!(
        call(
            &s,
            "POST",
            &format!("/write?db=db&u=x&p={t}"),
            None,
            Some("m v=1i 4")
        )
        .0,
        204
    );
    assert_eq!(
        call(
            &s,
            "POST",
            &format!("/api/v3/write_lp?db=db&p={t}"),
            None,
            Some("m v=1i 5")
        )
        .0,
        401
    );

    for bad in [
        "Bearer",
        "Bearer  ",
        "Digest abc",
        &t,
        "Basic !!notbase64",
        &basic("no-colon"),
        &basic("user:"),
        &format!("token {t}"),
    ] {
        let (st, body) = call(
            &s,
            "POST",
            "/api/v3/write_lp?db=db",
            Some(bad),
            Some("m v=1i 6"),
        );
        assert_eq!(st, 400, "{bad}: {body}");
        assert!(
            json(&body)["error"].as_str().unwrap().contains("malformed"),
            "{body}"
        );
    }
    let (st, body) = call(
        &s,
        "POST",
        "/api/v2/write?bucket=db",
        None,
        Some("m v=1i 7"),
    );
    assert_eq!(st, 401);
    assert_eq!(
        json(&body)["code"],
        "unauthorized",
        "v2 error shape: {body}"
    );
    let (st, _) = call(
        &s,
        "POST",
        "/api/v3/write_lp?db=db",
        Some("Bearer apiv3_not-a-token"),
        Some("m v=1i 8"),
    );
    assert_eq!(st, 401);
    // Nothing the refused requests carried was written.
    let (st, body) = call(
        &s,
        "POST",
        "/api/v3/query_sql",
        Some(&bearer(&t)),
        Some(r#"{"db":"db","q":"SELECT count(*) AS n FROM m"}"#),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)[0]["n"], 13);
}

#[test]
fn the_permission_matrix_holds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_env(dir.path(), 2, &[AUTH_ON], &[("SHARDLINE_TEST_CLOCK", "1")]);
    let adm = admin(&s);
    let a = Some(bearer(&adm));
    for db in ["a", "b"] {
        assert_eq!(write_status(&s, db, a.as_deref()), 204);
    }
    let db_perm = |ids: &[&str], actions: &[&str]| serde_json::json!([{"resource_type":"db","resource_identifier":ids,"actions":actions}]);
    let (read_a, _) = resource(&s, &adm, "read-a", db_perm(&["a"], &["read"]), None);
    let (write_a, _) = resource(&s, &adm, "write-a", db_perm(&["a"], &["write"]), None);
    let (all, _) = resource(&s, &adm, "all", db_perm(&["*"], &["read", "write"]), None);
    let (system, _) = resource(
        &s,
        &adm,
        "system",
        serde_json::json!([{"resource_type":"system","resource_identifier":["*"],"actions":["read"]}]),
        None,
    );
    let (expiring, _) = resource(
        &s,
        &adm,
        "expiring",
        db_perm(&["a"], &["read", "write"]),
        Some(60),
    );
    let (deleted, deleted_id) = resource(
        &s,
        &adm,
        "deleted",
        db_perm(&["a"], &["read", "write"]),
        None,
    );
    let delete = || {
        let path = format!("/api/v3/configure/token?id={deleted_id}");
        call(&s, "DELETE", &path, a.as_deref(), None).0
    };
    assert_eq!(delete(), 204);
    assert_eq!(delete(), 404, "a deleted token is gone");
    assert_eq!(write_status(&s, "a", Some(&bearer(&expiring))), 204);
    let (st, body) = call(
        &s,
        "POST",
        "/api/v3/debug/clock?advance_secs=61",
        a.as_deref(),
        None,
    );
    assert_eq!(st, 200, "{body}");

    // token: (write a, write b, read a, read b, health, metrics, manage)
    let expect: [(&str, &str, [u16; 7]); 7] = [
        ("admin", &adm, [204, 204, 200, 200, 200, 200, 200]),
        ("read-a", &read_a, [403, 403, 200, 403, 403, 403, 403]),
        ("write-a", &write_a, [204, 403, 403, 403, 403, 403, 403]),
        ("all", &all, [204, 204, 200, 200, 403, 403, 403]),
        ("system", &system, [403, 403, 403, 403, 200, 200, 403]),
        ("expired", &expiring, [401, 401, 401, 401, 401, 401, 401]),
        ("deleted", &deleted, [401, 401, 401, 401, 401, 401, 401]),
    ];
    for (name, token, want) in expect {
        let auth = Some(bearer(token));
        let got = [
            write_status(&s, "a", auth.as_deref()),
            write_status(&s, "b", auth.as_deref()),
            query_status(&s, "a", auth.as_deref()),
            query_status(&s, "b", auth.as_deref()),
            call(&s, "GET", "/health", auth.as_deref(), None).0,
            call(&s, "GET", "/metrics", auth.as_deref(), None).0,
            call(
                &s,
                "GET",
                "/api/v3/configure/database",
                auth.as_deref(),
                None,
            )
            .0,
        ];
        assert_eq!(got, want, "{name}");
    }
    // The v1 scheme obeys the same grants; a 403 says what is missing.
    assert_eq!(
        call(
            &s,
            "POST",
            &format!("/write?db=b&p={write_a}"),
            None,
            Some("m v=1i 9")
        )
        .0,
        403
    );
    let (st, body) = call(
        &s,
        "POST",
        "/api/v3/write_lp?db=b",
        Some(&bearer(&write_a)),
        Some("m v=1i 9"),
    );
    assert_eq!(st, 403);
    assert!(body.contains("write to database 'b'"), "{body}");
    // GET query_sql with ?db= is checked too.
    assert_eq!(
        call(
            &s,
            "GET",
            "/api/v3/query_sql?db=b&q=SELECT%201",
            Some(&bearer(&read_a)),
            None
        )
        .0,
        403
    );
    assert_eq!(
        call(
            &s,
            "GET",
            "/api/v3/query_sql?db=a&q=SELECT%201",
            Some(&bearer(&read_a)),
            None
        )
        .0,
        200
    );
    // Only admins manage tokens.
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v3/configure/token",
            Some(&bearer(&all)),
            Some(r#"{"token_name":"x","permissions":[]}"#)
        )
        .0,
        403
    );
    // Bad resource-token requests are 400s naming the problem.
    let (st, body) = call(
        &s,
        "POST",
        "/api/v3/configure/token",
        a.as_deref(),
        Some(
            r#"{"token_name":"x","permissions":[{"resource_type":"bucket","resource_identifier":["a"],"actions":["read"]}]}"#,
        ),
    );
    assert_eq!(st, 400);
    assert!(body.contains("resource_type"), "{body}");
    let (st, body) = call(
        &s,
        "POST",
        "/api/v3/configure/token",
        a.as_deref(),
        Some(r#"{"token_name":"x"}"#),
    );
    assert_eq!(st, 400);
    assert!(body.contains("needs 'permissions'"), "{body}");
    let (st, body) = call(
        &s,
        "POST",
        "/api/v3/configure/token/named_admin",
        a.as_deref(),
        Some(r#"{"token_name":"x","permissions":[]}"#),
    );
    assert_eq!(st, 400);
    assert!(body.contains("takes no 'permissions'"), "{body}");
}

#[test]
fn no_token_text_is_kept_logged_or_listed() {
    let s = Server::start_with(1, &[AUTH_ON, "--log-filter", "debug,glommio=off"]);
    let adm = admin(&s);
    let (rt, _) = resource(
        &s,
        &adm,
        "r",
        serde_json::json!([{"resource_type":"db","resource_identifier":["d"],"actions":["read","write"]}]),
        None,
    );
    assert_eq!(write_status(&s, "d", Some(&bearer(&rt))), 204);
    assert_eq!(write_status(&s, "d", Some(&format!("Bearer {rt}x"))), 401);
    let (st, list) = call(
        &s,
        "GET",
        "/api/v3/configure/token",
        Some(&bearer(&adm)),
        None,
    );
    assert_eq!(st, 200);
    let names: Vec<_> = json(&list)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["_admin", "r"]);
    for secret in [&adm, &rt] {
        assert!(!list.contains(secret.as_str()));
        assert!(
            !list.contains(&secret["apiv3_".len()..20]),
            "listing leaks part of a token"
        );
    }
    let mut files = Vec::new();
    collect_files(&s.data_dir, &mut files);
    // The catalog's log (and any checkpoint) are among the files searched.
    assert!(files
        .iter()
        .any(|f| f.parent().is_some_and(|d| d.ends_with("catalog"))
            && f.extension().is_some_and(|e| e == "log")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for secret in [&adm, &rt] {
            let body = &secret["apiv3_".len()..];
            assert!(
                !bytes.windows(body.len()).any(|w| w == body.as_bytes()),
                "{} holds a token in clear text",
                f.display()
            );
        }
    }
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn admin_token_file_without_auth_and_disable_authz() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_shardline")).args([
            "create",
            "token",
            "--admin",
            "--offline",
        ]),
        PATIENCE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.path().join("admin.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let token = json(&String::from_utf8_lossy(&out.stdout))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let s = Server::start_in(
        &data,
        1,
        &[
            AUTH_ON,
            "--admin-token-file",
            file.to_str().unwrap(),
            "--disable-authz",
            "health,ping",
        ],
    );
    assert_eq!(call(&s, "GET", "/health", None, None).0, 200);
    assert_eq!(call(&s, "GET", "/ping", None, None).0, 204);
    assert_eq!(call(&s, "GET", "/metrics", None, None).0, 401);
    assert_eq!(write_status(&s, "d", None), 401);
    assert_eq!(write_status(&s, "d", Some(&bearer(&token))), 204);
    assert_eq!(
        call(&s, "POST", "/api/v3/configure/token/admin", None, None).0,
        409
    );
    drop(s);

    // A short or malformed token file stops start-up with a message saying what is wanted.
    let short = dir.path().join("short");
    std::fs::write(&short, "apiv3_tooshort").unwrap();
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_shardline"))
            .args(["serve", "--http-bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data2"))
            .arg("--admin-token-file")
            .arg(&short),
        PATIENCE,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("48 random bytes"));

    let scraped = Server::start_with(1, &[AUTH_ON, "--disable-authz", "metrics"]);
    assert_eq!(call(&scraped, "GET", "/metrics", None, None).0, 200);
    assert_eq!(call(&scraped, "GET", "/health", None, None).0, 401);
    drop(scraped);

    let open = Server::start_with(1, &[]);
    assert_eq!(write_status(&open, "d", None), 204);
    for (m, p) in [
        ("POST", "/api/v3/configure/token/admin"),
        ("POST", "/api/v3/configure/token"),
        ("DELETE", "/api/v3/configure/token?id=0"),
    ] {
        let (st, body) = call(&open, m, p, None, Some("{}"));
        assert_eq!(st, 405, "{p}");
        assert!(body.contains("--without-auth"), "{body}");
    }
}

#[test]
fn garbage_credentials_never_authenticate_nor_break_the_server() {
    let s = Server::start_with(1, &[AUTH_ON]);
    let t = admin(&s);
    // A deterministic stream of hostile header values and `p` parameters.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pieces = [
        "Bearer ",
        "Token ",
        "Basic ",
        "bearer",
        "apiv3_",
        &t[..20],
        ":",
        "==",
        " ",
        "\t",
        "%00",
        "é",
        "Basic Og==",
        "Basic OmFwaXYzXw==",
    ];
    for _ in 0..300 {
        let mut v = String::new();
        for _ in 0..(next() % 5) {
            v.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        if v.contains(t.as_str()) {
            continue;
        }
        let req = format!(
            "POST /write?db=d&p={} HTTP/1.1\r\nHost: x\r\nAuthorization: {v}\r\nContent-Length: 9\r\nConnection: close\r\n\r\nm v=1i 1\n",
            urlencode(&v)
        );
        let resp = s.raw(req.as_bytes());
        let status: u16 = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        assert!(matches!(status, 400 | 401), "{v:?} got {resp}");
    }
    assert_eq!(call(&s, "GET", "/health", Some(&bearer(&t)), None).0, 200);
    let (_, body) = call(
        &s,
        "POST",
        "/api/v3/query_sql",
        Some(&bearer(&t)),
        Some(r#"{"db":"d","q":"SELECT 1"}"#),
    );
    assert!(
        body.contains("not found") || body.contains("error"),
        "nothing was written to d: {body}"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn limits_answer_422_naming_the_flag() {
    let s = Server::start_with(
        1,
        &[
            "--max-databases",
            "2",
            "--max-tables",
            "2",
            "--max-columns-per-table",
            "2",
        ],
    );
    assert_eq!(
        s.send(
            "POST",
            "/api/v3/configure/database",
            Some(r#"{"db":"one"}"#)
        )
        .0,
        201
    );
    assert_eq!(s.post("/api/v3/write_lp?db=two", b"t1 a=1i 1").0, 204);
    let (st, body) = s.send(
        "POST",
        "/api/v3/configure/database",
        Some(r#"{"db":"three"}"#),
    );
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("--max-databases"), "{body}");
    let (st, body) = s.post("/api/v3/write_lp?db=three", b"t a=1i 1");
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("--max-databases"), "{body}");
    // Tables count across databases: two has t1; one more fits, a third does not.
    assert_eq!(s.post("/api/v3/write_lp?db=one", b"t2 a=1i 1").0, 204);
    let (st, body) = s.post("/api/v3/write_lp?db=one", b"t3 a=1i 1");
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("--max-tables"), "{body}");
    // Columns: t1 has a; b fits, c does not (and nothing of that write lands).
    assert_eq!(s.post("/api/v3/write_lp?db=two", b"t1 b=1i 2").0, 204);
    let (st, body) = s.post("/api/v3/write_lp?db=two", b"t1 c=1i 3\nt1 a=5i 3");
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("--max-columns-per-table"), "{body}");
    assert_eq!(s.count("two", "t1"), 2);
    // Deleting frees room.
    assert_eq!(
        s.send("DELETE", "/api/v3/configure/database?db=one", None)
            .0,
        200
    );
    assert_eq!(
        s.send(
            "POST",
            "/api/v3/configure/database",
            Some(r#"{"db":"three"}"#)
        )
        .0,
        201
    );
}

#[test]
fn the_management_cli_speaks_to_the_server() {
    let s = Server::start_with(1, &[AUTH_ON]);
    let host = format!("http://{}", s.addr);
    let run = |args: &[&str], token: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_shardline"));
        c.args(args)
            .args(["--host", &host])
            .env_remove("SHARDLINE_TOKEN");
        if let Some(t) = token {
            c.env("SHARDLINE_TOKEN", t);
        }
        let out = run(&mut c, PATIENCE);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, token, err) = run(&["create", "token", "--admin"], None);
    assert!(ok, "{err}");
    assert!(err.contains("cannot show it again"), "{err}");
    let t = token.trim().to_string();
    assert!(t.starts_with("apiv3_"));
    let (ok, _, err) = run(&["show", "databases"], None);
    assert!(!ok && err.contains("401"), "{err}");

    for args in [
        &["create", "database", "fleet", "--retention-period", "7d"][..],
        &[
            "create",
            "table",
            "-d",
            "fleet",
            "cpu",
            "--tags",
            "host,region",
            "--fields",
            "usage:float64,up:bool",
        ],
        &["update", "database", "fleet", "--retention-period", "2d"],
        &[
            "create",
            "token",
            "--name",
            "reader",
            "--permission",
            "db:fleet:read",
            "--expiry",
            "1d",
        ],
    ] {
        let (ok, _, err) = run(args, Some(&t));
        assert!(ok, "{args:?}: {err}");
    }
    let (ok, out, err) = run(&["show", "databases", "--format", "json"], Some(&t));
    assert!(ok, "{err}");
    assert_eq!(
        json(&out),
        serde_json::json!([{"iox::database": "fleet", "retention_period": "2d"}])
    );
    let (ok, out, _) = run(&["show", "tokens"], Some(&t));
    assert!(ok);
    let tokens = json(&out);
    assert_eq!(tokens[1]["name"], "reader");
    assert_eq!(
        tokens[1]["permissions"][0]["actions"],
        serde_json::json!(["read"])
    );
    let (ok, _, err) = run(&["create", "database", "fleet"], Some(&t));
    assert!(!ok && err.contains("409"), "{err}");
    for args in [
        &["delete", "token", "--name", "reader"][..],
        &["delete", "table", "-d", "fleet", "cpu"],
        &["delete", "database", "fleet"],
    ] {
        let (ok, _, err) = run(args, Some(&t));
        assert!(ok, "{args:?}: {err}");
    }
    let (ok, out, _) = run(&["show", "databases", "--format", "json"], Some(&t));
    assert!(ok);
    assert_eq!(json(&out), serde_json::json!([]));
}
