//! Drives a workload: `--threads` monoio runtimes (io_uring), each pinned to one of `--cpus`,
//! share `--connections` kept-alive connections, each sending one request at a time.
//!
//! Closed loop: a connection sends its next request as soon as the previous answer is in.
//! Open loop (`--rate`): each connection has its own schedule (the rate split evenly, phases
//! spread), sends at the intended time or at once when behind, and measures latency from the
//! intended time, so a stall of the server shows in the latency rather than thinning the load
//! (no coordinated omission). The main thread prints the progress line.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::body::{Feed, Request};
use crate::http::Conn;
use crate::query::QueryMix;
use crate::rng::Rng;
use crate::stats::{Progress, SharedStats, Stats};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub addr: SocketAddr,
    pub threads: usize,
    pub cpus: Option<Vec<usize>>,
    pub connections: usize,
    pub duration: Option<Duration>,
    /// Requests per second over all connections (open loop), or `None` (closed loop).
    pub request_rate: Option<f64>,
    pub progress: Option<Duration>,
    pub timeout: Duration,
    pub kinds: Vec<String>,
    /// Count a 2xx answer whose body starts with an `"error"` as failed (InfluxQL).
    pub body_errors: bool,
    /// "lines" or "queries", for the progress line.
    pub unit: &'static str,
}

/// Where a connection's requests come from.
#[derive(Debug, Clone)]
pub enum Work {
    Writes(Feed),
    Queries {
        mix: Arc<QueryMix>,
        remaining: Option<Arc<AtomicU64>>,
        seed: u64,
    },
}

#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    pub elapsed: Duration,
    /// CPU time (user + system) this process spent while the clock ran: senders and
    /// generators, not the pre-generation before it.
    pub cpu: Duration,
}

/// CPU time of this process so far.
pub fn process_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF needs nothing else.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct Ctx {
    cfg: RunConfig,
    t0: Instant,
    deadline: Option<Instant>,
    stats: SharedStats,
}

/// Runs `work` and returns the merged counts. `on_start` runs just before the clock starts
/// (the core-count benchmark samples the server's CPU time there).
pub fn run(cfg: &RunConfig, work: Work, on_start: &mut dyn FnMut()) -> io::Result<Outcome> {
    let threads = cfg.threads.clamp(1, cfg.connections.max(1));
    let per_thread: Vec<SharedStats> = (0..threads)
        .map(|_| Arc::new(Mutex::new(Stats::new(&cfg.kinds))))
        .collect();
    on_start();
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let deadline = cfg.duration.map(|d| t0 + d);
    let mut handles = Vec::new();
    for t in 0..threads {
        let conns: Vec<usize> = (0..cfg.connections).filter(|c| c % threads == t).collect();
        let (cfg, work, stats) = (cfg.clone(), work.clone(), per_thread[t].clone());
        let cpu = cfg.cpus.as_ref().map(|c| c[t % c.len()]);
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-io-{t}"))
                .spawn(move || -> io::Result<()> {
                    if let Some(cpu) = cpu {
                        crate::cpus::pin_current_thread(&[cpu]).map_err(|e| {
                            io::Error::new(e.kind(), format!("cannot pin to CPU {cpu}: {e}"))
                        })?;
                    }
                    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                        .enable_timer()
                        .with_entries(256)
                        .build()
                        .map_err(|e| {
                            io::Error::new(
                                e.kind(),
                                format!("cannot start an io_uring runtime: {e}"),
                            )
                        })?;
                    let ctx = Rc::new(Ctx {
                        cfg,
                        t0,
                        deadline,
                        stats,
                    });
                    rt.block_on(async move {
                        let mut tasks = Vec::new();
                        for c in conns {
                            tasks.push(monoio::spawn(connection(c, ctx.clone(), work.clone())));
                        }
                        for task in tasks {
                            task.await;
                        }
                    });
                    Ok(())
                })?,
        );
    }
    let progress = Progress::new(cfg.unit);
    let mut last = t0;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(5));
        if let Some(every) = cfg.progress {
            let now = Instant::now();
            if now - last >= every {
                progress.tick(now - t0, now - last, &per_thread);
                last = now;
            }
        }
    }
    let elapsed = t0.elapsed();
    let cpu = process_cpu().saturating_sub(cpu0);
    if cfg.progress.is_some() {
        progress.finish();
    }
    for h in handles {
        h.join()
            .map_err(|_| io::Error::other("a sender thread panicked"))??;
    }
    let mut total = Stats::new(&cfg.kinds);
    for s in &per_thread {
        total.merge(&s.lock().expect("stats lock"));
    }
    Ok(Outcome {
        stats: total,
        elapsed,
        cpu,
    })
}

async fn next_request(work: &mut Work, rng: &mut Rng, stats: &SharedStats) -> Option<Request> {
    match work {
        Work::Writes(feed) => match feed.requests.try_recv() {
            Ok(r) => Some(r),
            Err(flume::TryRecvError::Disconnected) => None,
            Err(flume::TryRecvError::Empty) => {
                let waited = Instant::now();
                let r = feed.requests.recv_async().await.ok();
                if r.is_some() {
                    let mut s = stats.lock().expect("stats lock");
                    s.generator_stalls += 1;
                    s.generator_stall += waited.elapsed();
                }
                r
            }
        },
        Work::Queries { mix, remaining, .. } => {
            if let Some(left) = remaining {
                if left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_err()
                {
                    return None;
                }
            }
            Some(mix.request(rng))
        }
    }
}

async fn connection(index: usize, ctx: Rc<Ctx>, mut work: Work) {
    let cfg = &ctx.cfg;
    let mut conn = Conn::new(cfg.addr);
    let mut rng = Rng::new(match &work {
        Work::Queries { seed, .. } => seed ^ (index as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
        Work::Writes(_) => index as u64,
    });
    let period = cfg.request_rate.map(|r| cfg.connections as f64 / r);
    let keep = if cfg.body_errors { 256 } else { 512 };
    let mut k = 0u64;
    loop {
        let now = Instant::now();
        let intended = match period {
            Some(p) => {
                let offset = p * (k as f64 + index as f64 / cfg.connections as f64);
                k += 1;
                let t = ctx.t0 + Duration::from_secs_f64(offset);
                if ctx.deadline.is_some_and(|d| t >= d) {
                    break;
                }
                if t > now {
                    monoio::time::sleep_until(monoio::time::Instant::from_std(t)).await;
                }
                Some(t)
            }
            None => {
                if ctx.deadline.is_some_and(|d| now >= d) {
                    break;
                }
                None
            }
        };
        let Some(request) = next_request(&mut work, &mut rng, &ctx.stats).await else {
            break;
        };
        let sent = Instant::now();
        let from = intended.unwrap_or(sent);
        let (bytes, lines, kind) = (request.bytes().len(), request.lines, request.kind);
        let (status, error, back) =
            match monoio::time::timeout(cfg.timeout, conn.exchange(request, keep)).await {
                Ok((Ok(reply), back)) => {
                    let body_error =
                        cfg.body_errors && reply.head.windows(8).any(|w| w == b"\"error\":");
                    let error = if !(200..300).contains(&reply.status) || body_error {
                        Some(format!(
                            "HTTP {}: {}",
                            reply.status,
                            String::from_utf8_lossy(&reply.head).trim()
                        ))
                    } else {
                        None
                    };
                    (Some(reply.status), error, Some(back))
                }
                Ok((Err(e), back)) => (None, Some(format!("transport: {e}")), Some(back)),
                Err(_) => {
                    conn = Conn::new(cfg.addr);
                    (
                        None,
                        Some(format!("transport: no answer within {:?}", cfg.timeout)),
                        None,
                    )
                }
            };
        let done = Instant::now();
        {
            let mut s = ctx.stats.lock().expect("stats lock");
            if intended.is_some() && sent.duration_since(from) > Duration::from_millis(1) {
                s.late_sends += 1;
            }
            s.record(kind, status, lines, bytes, done.duration_since(from), error);
        }
        if let (Work::Writes(feed), Some(back)) = (&work, back) {
            let _ = feed.recycle.send(back.buf);
        }
    }
}
