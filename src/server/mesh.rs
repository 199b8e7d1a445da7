//! The shard-to-shard channel mesh: how large its queues are, how a shard takes messages off
//! them, and how deep they are.
//!
//! # Backpressure
//!
//! Every ordered pair of shards has one channel of [`MESH_CHANNEL_CAPACITY`] messages. A shard
//! takes a message off a peer's channel only when one of that peer's
//! [`MESH_HANDLERS_PER_PEER`] handler slots is free ([`serve`]); with every slot busy it stops
//! receiving, the channel fills, and the peer's send waits. So a shard that cannot keep up
//! slows down the shards forwarding to it, and what it holds for one peer is at most the
//! channel plus the slots, however fast the peer sends. (Spawning a task per message, as this
//! replaced, drained every channel at once into an unbounded set of tasks.)
//!
//! # Why it cannot deadlock
//!
//! A cycle of waits through the mesh needs a task that holds a handler slot (or is a receive
//! loop) and waits for a send on the mesh. There is none:
//! - a handler works on its own shard only: it writes to the shard's WAL and buffer, or reads
//!   its state, and answers on a reply channel made for that one answer (`flume::bounded(1)`),
//!   which never waits. What it may wait for — its WAL's group commit, room in the next WAL
//!   group, the snapshot gate, memory freed by a snapshot — depends on no other shard;
//! - a receive loop waits only for a free slot of its own and for the next message;
//! - the tasks that do wait on a full peer channel are the senders (a request's `dispatch`,
//!   `ask_peers`), and no handler or receive loop waits for them.
//!
//! So when shard A's requests wait on B's full channel while B's wait on A's, both channels
//! still drain: each shard's handlers finish, free their slots, and the receive loops take
//! the next messages, which lets the waiting sends in. Keep it so: a handler that sent on the
//! mesh (or waited on something that does) while holding its slot would make that cycle
//! possible once both directions fill.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::Senders;
use glommio::sync::Semaphore;

/// Messages that may wait in each shard-to-shard channel. A sender has at most one message
/// per request in flight to each owner (a request waits for all of its owners' answers), so
/// in practice the channels hold far fewer; this caps the rest (`ask_peers` from scrapes,
/// bursts of connections) without a sender ever waiting at ordinary loads.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// Messages from one peer a shard handles at once. Each slot is one task and waits about one
/// WAL group commit; a peer's concurrent requests beyond this many wait in the channel and
/// go in a later group. 64 is several times the connections one shard serves in the benches
/// and a Telegraf pool (8), so forwarded writes still share groups at those loads.
pub const MESH_HANDLERS_PER_PEER: usize = 64;

/// How long a shard that is stopping waits for the handlers of its peers' last messages. A
/// handler can wait without end only in a state shutdown does not resolve (memory over the
/// limit once the snapshot task has stopped); past this the shard stops anyway, as it does for
/// connections after its drain timeout, and those writes fail when the WAL closes.
const HANDLER_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How many messages are on their way to each shard over the mesh: sent or being sent and not
/// yet taken off its channels (a sender waiting for room counts too). Shared by every shard:
/// one relaxed atomic add on each side of a message.
#[derive(Debug)]
pub struct MeshDepths(Box<[AtomicUsize]>);

impl MeshDepths {
    pub fn new(shards: usize) -> Arc<Self> {
        Arc::new(MeshDepths(
            (0..shards).map(|_| AtomicUsize::new(0)).collect(),
        ))
    }

    /// Messages on their way to `shard`.
    pub fn depth(&self, shard: usize) -> usize {
        self.0.get(shard).map_or(0, |d| d.load(Ordering::Relaxed))
    }

    /// Sends `msg` to shard `to`, counted while on its way. Fails if the peer's channel is
    /// closed (it is stopping).
    pub async fn send<T: Send>(
        &self,
        senders: &Senders<T>,
        to: usize,
        msg: T,
    ) -> glommio::Result<(), T> {
        /// Uncounts the message if the send fails or is dropped before it completes.
        struct OnItsWay<'a> {
            depth: Option<&'a AtomicUsize>,
        }
        impl Drop for OnItsWay<'_> {
            fn drop(&mut self) {
                if let Some(d) = self.depth {
                    d.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        let depth = self.0.get(to);
        // Counted before the send, so the receiver's decrement can never come first.
        if let Some(d) = depth {
            d.fetch_add(1, Ordering::Relaxed);
        }
        let mut on_its_way = OnItsWay { depth };
        senders.send_to(to, msg).await?;
        on_its_way.depth = None;
        Ok(())
    }

    /// A message to `shard` was taken off its channel.
    fn taken(&self, shard: usize) {
        if let Some(d) = self.0.get(shard) {
            d.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Takes messages off one peer's channel and runs `handle` on each, at most `slots` at once
/// (see the module documentation), until the channel closes and every handler has finished
/// (or `drain` has passed since). `recv` yields the next message, `None` once the peer has
/// closed its end; `taken` is called as each message leaves the channel.
pub async fn serve<T, R, H, F>(
    slots: usize,
    drain: Duration,
    mut recv: impl FnMut() -> R,
    taken: impl Fn(),
    handle: H,
) where
    R: Future<Output = Option<T>>,
    H: Fn(T) -> F,
    F: Future<Output = ()> + 'static,
{
    let free = Rc::new(Semaphore::new(slots as u64));
    loop {
        // A slot first, then the message: with every slot busy the message stays queued, so
        // the channel's bound reaches the sender.
        let Ok(slot) = free.acquire_static_permit(1).await else {
            break;
        };
        let Some(msg) = recv().await else {
            break;
        };
        taken();
        let work = handle(msg);
        glommio::spawn_local(async move {
            work.await;
            drop(slot);
        })
        .detach();
    }
    // Shutdown waits on this loop to know that no forwarded write is still in flight.
    let finished =
        futures_lite::future::or(async { free.acquire(slots as u64).await.is_ok() }, async {
            glommio::timer::sleep(drain).await;
            false
        })
        .await;
    if !finished {
        let busy = slots as u64 - free.available();
        tracing::warn!(
            handlers = busy,
            "messages from a peer still being handled after the drain timeout; stopping anyway"
        );
    }
}

/// [`serve`] for a mesh channel from a peer: counts each message off `depths` as `shard`'s.
pub async fn serve_peer<T: Send + 'static, F>(
    rx: glommio::channels::shared_channel::ConnectedReceiver<T>,
    depths: Arc<MeshDepths>,
    shard: usize,
    handle: impl Fn(T) -> F,
) where
    F: Future<Output = ()> + 'static,
{
    let rx = Rc::new(rx);
    serve(
        MESH_HANDLERS_PER_PEER,
        HANDLER_DRAIN_TIMEOUT,
        || {
            let rx = rx.clone();
            async move { rx.recv().await }
        },
        || depths.taken(shard),
        handle,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn run<T>(f: impl Future<Output = T>) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .make()
            .expect("executor")
            .run(f)
    }

    #[test]
    fn busy_handlers_fill_the_channel_and_the_sender_waits_and_nothing_is_lost() {
        const SLOTS: usize = 3;
        const CAPACITY: usize = 5;
        const SENT: usize = 40;
        run(async {
            let (tx, rx) = glommio::channels::local_channel::new_bounded::<usize>(CAPACITY);
            let rx = Rc::new(rx);
            let release = Rc::new(Cell::new(false));
            let running = Rc::new(Cell::new(0usize));
            let most = Rc::new(Cell::new(0usize));
            let handled = Rc::new(std::cell::RefCell::new(Vec::new()));
            let taken = Rc::new(Cell::new(0usize));
            let server = {
                let (release, running, most, handled, taken) = (
                    release.clone(),
                    running.clone(),
                    most.clone(),
                    handled.clone(),
                    taken.clone(),
                );
                glommio::spawn_local(async move {
                    serve(
                        SLOTS,
                        Duration::from_secs(60),
                        || {
                            let rx = rx.clone();
                            async move { rx.recv().await }
                        },
                        || taken.set(taken.get() + 1),
                        |n| {
                            let (release, running, most, handled) = (
                                release.clone(),
                                running.clone(),
                                most.clone(),
                                handled.clone(),
                            );
                            async move {
                                running.set(running.get() + 1);
                                most.set(most.get().max(running.get()));
                                while !release.get() {
                                    glommio::timer::sleep(Duration::from_millis(1)).await;
                                }
                                handled.borrow_mut().push(n);
                                running.set(running.get() - 1);
                            }
                        },
                    )
                    .await
                })
            };
            let sender = {
                let sent = Rc::new(Cell::new(0usize));
                let s = sent.clone();
                let task = glommio::spawn_local(async move {
                    for n in 0..SENT {
                        tx.send(n).await.expect("open");
                        s.set(n + 1);
                    }
                });
                (task, sent)
            };
            glommio::timer::sleep(Duration::from_millis(30)).await;
            // Every slot is busy, the channel is full, and the sender waits on it.
            assert_eq!(running.get(), SLOTS);
            assert_eq!(taken.get(), SLOTS);
            assert_eq!(
                sender.1.get(),
                SLOTS + CAPACITY,
                "the sender went past the bound"
            );
            release.set(true);
            sender.0.await;
            server.await;
            assert!(most.get() <= SLOTS, "{} handlers at once", most.get());
            let mut got = handled.borrow().clone();
            got.sort_unstable();
            assert_eq!(got, (0..SENT).collect::<Vec<_>>());
        });
    }

    #[test]
    fn serving_ends_only_after_every_handler_has_finished() {
        run(async {
            let (tx, rx) = glommio::channels::local_channel::new_bounded::<u32>(8);
            let rx = Rc::new(rx);
            let done = Rc::new(Cell::new(0u32));
            for n in 0..4 {
                tx.send(n).await.expect("open");
            }
            drop(tx);
            let d = done.clone();
            serve(
                2,
                Duration::from_secs(60),
                || {
                    let rx = rx.clone();
                    async move { rx.recv().await }
                },
                || {},
                |_| {
                    let d = d.clone();
                    async move {
                        glommio::timer::sleep(Duration::from_millis(5)).await;
                        d.set(d.get() + 1);
                    }
                },
            )
            .await;
            assert_eq!(done.get(), 4);
        });
    }

    #[test]
    fn a_handler_that_never_ends_holds_shutdown_only_until_the_drain_timeout() {
        run(async {
            let (tx, rx) = glommio::channels::local_channel::new_bounded::<u32>(1);
            let rx = Rc::new(rx);
            tx.send(1).await.expect("open");
            drop(tx);
            let started = std::time::Instant::now();
            serve(
                1,
                Duration::from_millis(20),
                || {
                    let rx = rx.clone();
                    async move { rx.recv().await }
                },
                || {},
                |_| futures_lite::future::pending::<()>(),
            )
            .await;
            assert!(started.elapsed() < Duration::from_secs(5));
        });
    }
}
