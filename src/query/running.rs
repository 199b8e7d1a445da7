//! The v1 queries running now, for InfluxQL's `SHOW QUERIES` and `KILL QUERY`: each is
//! registered under its query-log id while it runs, with a flag that `KILL QUERY` raises and
//! the query watches between and inside its statements.
//!
//! Invariants:
//! - An entry lives exactly as long as its [`Registration`]: dropping it (the query ended,
//!   failed or was cancelled) removes it.
//! - The map holds only running queries, so its size is bounded by how many may run at once
//!   (the coordinator's permits); the lock is held for an insert, a removal or a copy of
//!   the list, never across an await, and never by a shard's thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A running query as `SHOW QUERIES` lists it.
#[derive(Debug, Clone)]
pub struct RunningQuery {
    pub id: u64,
    pub database: String,
    pub text: String,
    pub elapsed: Duration,
}

#[derive(Debug)]
struct Entry {
    database: String,
    text: String,
    started: Instant,
    kill: Arc<KillFlag>,
}

#[derive(Debug, Default)]
struct KillFlag {
    raised: AtomicBool,
    notify: Notify,
}

/// The registry.
#[derive(Debug, Default)]
pub struct RunningQueries {
    entries: Mutex<BTreeMap<u64, Entry>>,
}

/// A query's place in the registry; removes it when dropped.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<RunningQueries>,
    id: u64,
    kill: Arc<KillFlag>,
}

impl RunningQueries {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers query `id` (its query-log id) until the returned value is dropped.
    pub fn register(self: &Arc<Self>, id: u64, database: &str, text: &str) -> Registration {
        let kill = Arc::new(KillFlag::default());
        self.lock().insert(
            id,
            Entry {
                database: database.to_string(),
                text: text.to_string(),
                started: Instant::now(),
                kill: kill.clone(),
            },
        );
        Registration {
            registry: self.clone(),
            id,
            kill,
        }
    }

    /// The running queries, oldest first.
    pub fn list(&self) -> Vec<RunningQuery> {
        self.lock()
            .iter()
            .map(|(id, e)| RunningQuery {
                id: *id,
                database: e.database.clone(),
                text: e.text.clone(),
                elapsed: e.started.elapsed(),
            })
            .collect()
    }

    /// Asks query `id` to stop; whether it was running.
    pub fn kill(&self, id: u64) -> bool {
        match self.lock().get(&id) {
            Some(e) => {
                e.kill.raised.store(true, Ordering::Release);
                e.kill.notify.notify_waiters();
                true
            }
            None => false,
        }
    }
}

impl Registration {
    /// Whether `KILL QUERY` has named this query.
    pub fn killed(&self) -> bool {
        self.kill.raised.load(Ordering::Acquire)
    }

    /// Completes when `KILL QUERY` names this query.
    pub async fn until_killed(&self) {
        loop {
            let notified = self.kill.notify.notified();
            if self.killed() {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn register_list_kill_and_leave() {
        let registry = Arc::new(RunningQueries::default());
        let a = registry.register(7, "db", "SELECT 1");
        let b = registry.register(9, "other", "SHOW QUERIES");
        let ids: Vec<u64> = registry.list().iter().map(|q| q.id).collect();
        assert_eq!(ids, [7, 9]);
        assert!(!a.killed());
        let waiter = tokio::spawn(async move {
            a.until_killed().await;
            a.killed()
        });
        tokio::task::yield_now().await;
        assert!(registry.kill(7));
        assert!(waiter.await.unwrap());
        // Dropped with the task: gone from the list.
        assert_eq!(registry.list().len(), 1);
        assert!(!registry.kill(7));
        drop(b);
        assert!(registry.list().is_empty());
    }

    #[tokio::test]
    async fn a_kill_before_the_wait_is_not_missed() {
        let registry = Arc::new(RunningQueries::default());
        let a = registry.register(1, "db", "q");
        registry.kill(1);
        a.until_killed().await;
    }
}
