//! The catalog through the real server: changes acknowledged before a `kill -9` are there
//! after it, changes refused are not, and the log and checkpoints restart cleanly.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::harness::{http, Server};

fn live_tables(s: &Server, db: &str) -> BTreeSet<String> {
    s.select(
        db,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox'",
    )
    .into_iter()
    .map(|r| r["table_name"].as_str().unwrap().to_string())
    .collect()
}

#[test]
fn acknowledged_changes_survive_kill_9_and_refused_ones_never_appear() {
    // Checkpoints every 50 records, so the kill finds checkpoints and a log after them.
    let mut s = Server::start_with(2, &["--catalog-checkpoint-records", "50"]);
    let (status, body) = s.send(
        "POST",
        "/api/v3/configure/database",
        Some(r#"{"db": "cat"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let refused: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (addr, acked, refused, stop) =
            (s.addr.clone(), acked.clone(), refused.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let url = format!("http://{addr}/api/v3/configure/table");
            // Bounded: 1,000 tables per writer at most; the kill ends it sooner.
            for i in 0..1000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("t{w}_{i}");
                let body = format!(r#"{{"db": "cat", "table": "{name}", "tags": ["host"]}}"#);
                match http().post(&url).send_string(&body) {
                    Ok(r) if r.status() == 201 => {
                        acked.lock().unwrap().insert(name);
                    }
                    _ => break, // the server is gone
                }
                // Every tenth, one the catalog refuses: a tag named like the time column.
                if i % 10 == 0 {
                    let bad = format!("bad{w}_{i}");
                    let body = format!(r#"{{"db": "cat", "table": "{bad}", "tags": ["time"]}}"#);
                    match http().post(&url).send_string(&body) {
                        Err(ureq::Error::Status(400, _)) => {
                            refused.lock().unwrap().insert(bad);
                        }
                        Ok(r) => panic!("{bad} was accepted with status {}", r.status()),
                        Err(_) => break,
                    }
                }
            }
        }));
    }
    s.wait_until("600 acknowledged tables", || {
        let n = acked.lock().unwrap().len();
        if n >= 600 {
            Ok(())
        } else if writers.iter().all(|w| w.is_finished()) {
            panic!("the writers stopped after {n} acknowledged tables, before any kill")
        } else {
            Err(format!("{n} acknowledged"))
        }
    });
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    assert!(!refused.is_empty());
    let s2 = Server::start_in(&s.data_dir, 2, &["--catalog-checkpoint-records", "50"]);
    let tables = live_tables(&s2, "cat");
    let missing: Vec<_> = acked.difference(&tables).collect();
    assert!(missing.is_empty(), "acknowledged tables lost: {missing:?}");
    let present: Vec<_> = refused.intersection(&tables).collect();
    assert!(present.is_empty(), "refused tables present: {present:?}");
    let store = s2.data_dir.join("catalog");
    assert!(
        store.join("checkpoint.json").exists(),
        "no checkpoint was written"
    );
    // The restarted catalog goes on taking changes.
    let (status, body) = s2.send(
        "POST",
        "/api/v3/configure/table",
        Some(r#"{"db": "cat", "table": "after", "tags": ["host"]}"#),
    );
    assert_eq!(status, 201, "{body}");
}
