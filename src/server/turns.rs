//! The order in which a shard's writes reach its buffer: the order they were appended to
//! its WAL.
//!
//! A write applies its rows in slices and lets other tasks (queries above all) run between
//! them, so two writes' slices could interleave; when both carry the same point, the one
//! applied last would then differ from the one a WAL replay applies last. A write takes a
//! [`Turn`] in the same step as its WAL append and applies only once every earlier turn is
//! over, so the buffer always sees writes in WAL order.
//!
//! Invariants:
//! - Turns are served in the order they were taken.
//! - A turn ends when its [`Turn`] is dropped, whether or not it was ever waited on
//!   (a write whose WAL append failed gives its turn up without applying).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

/// One shard's turn counter (single-threaded, like the shard).
#[derive(Debug, Default)]
pub struct Turns {
    next: Cell<u64>,
    /// The turn now allowed to apply.
    serving: Cell<u64>,
    /// Later turns that ended before theirs came.
    ended_early: RefCell<BTreeSet<u64>>,
    changed: event_listener::Event,
}

impl Turns {
    /// The next turn, behind every turn taken before.
    pub fn take(&self) -> Turn<'_> {
        let n = self.next.get();
        self.next.set(n + 1);
        Turn { turns: self, n }
    }

    fn end(&self, n: u64) {
        if n != self.serving.get() {
            self.ended_early.borrow_mut().insert(n);
            return;
        }
        let mut serving = n + 1;
        let mut early = self.ended_early.borrow_mut();
        while early.remove(&serving) {
            serving += 1;
        }
        self.serving.set(serving);
        self.changed.notify(usize::MAX);
    }
}

/// A place in the order; see the module documentation.
#[derive(Debug)]
pub struct Turn<'a> {
    turns: &'a Turns,
    n: u64,
}

impl Turn<'_> {
    /// Waits until every earlier turn has ended.
    pub async fn wait(&self) {
        loop {
            if self.turns.serving.get() == self.n {
                return;
            }
            let listener = self.turns.changed.listen();
            if self.turns.serving.get() == self.n {
                return;
            }
            listener.await;
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.turns.end(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};
    use std::pin::pin;

    #[test]
    fn turns_are_served_in_the_order_taken() {
        let turns = Turns::default();
        let a = turns.take();
        let b = turns.take();
        let c = turns.take();
        block_on(async {
            assert!(poll_once(pin!(b.wait())).await.is_none(), "b waits for a");
            assert!(poll_once(pin!(c.wait())).await.is_none(), "c waits for a");
            a.wait().await;
        });
        drop(a);
        block_on(async {
            b.wait().await;
            assert!(poll_once(pin!(c.wait())).await.is_none(), "c waits for b");
        });
        drop(b);
        block_on(c.wait());
    }

    #[test]
    fn a_turn_given_up_early_does_not_hold_up_the_ones_after() {
        let turns = Turns::default();
        let a = turns.take();
        let b = turns.take();
        let c = turns.take();
        drop(b); // its WAL append failed
        block_on(async {
            assert!(
                poll_once(pin!(c.wait())).await.is_none(),
                "c still waits for a"
            );
        });
        drop(a);
        block_on(c.wait());
        drop(c);
        let d = turns.take();
        block_on(d.wait());
    }
}
