//! Request bodies for the write mode, made ahead of the senders.
//!
//! Generator threads fill complete HTTP requests (head and body in one buffer, the head written
//! in front of the body once its length is known) into a bounded queue; the senders only
//! write them out. Before the clock starts the queue is filled to `--pregen-mem` (or with the
//! whole run, when it fits), so generation is off the measured path for runs that fit and
//! runs ahead of it otherwise. A sender that finds the queue empty waits, and that wait is
//! counted as a generator stall in the report. Batch `b` holds points
//! `b * batch_lines ..`, so what a run sends is the same whatever the thread count.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::data::Dataset;
use crate::rng::Rng;

/// One request, ready to send: `buf[start..]`.
#[derive(Debug)]
pub struct Request {
    pub buf: Vec<u8>,
    pub start: usize,
    /// Lines in the body (0 for queries).
    pub lines: u32,
    /// Which query kind (0 for writes).
    pub kind: u16,
}

impl Request {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Everything needed to make batch `b`.
#[derive(Debug)]
pub struct BodyPlan {
    pub dataset: Arc<Dataset>,
    pub batch_lines: u64,
    /// Points in the run; `None` runs until the duration ends.
    pub total_points: Option<u64>,
    pub start_ns: i64,
    /// Nanoseconds per unit of the request's precision.
    pub divisor: i64,
    pub seed: u64,
    pub gzip: bool,
    /// `POST ... Content-Length: ` (the length follows).
    pub head_before_len: Vec<u8>,
    /// The rest of the head after the length, ending with the blank line.
    pub head_after_len: Vec<u8>,
}

impl BodyPlan {
    pub fn batches(&self) -> u64 {
        match self.total_points {
            Some(n) => n.div_ceil(self.batch_lines),
            None => u64::MAX,
        }
    }

    fn head_room(&self) -> usize {
        self.head_before_len.len() + 20 + self.head_after_len.len()
    }

    /// Fills `buf` with batch `b`; `scratch` holds the uncompressed lines when gzipping.
    pub fn fill(&self, batch: u64, mut buf: Vec<u8>, scratch: &mut Vec<u8>) -> Request {
        let first = batch * self.batch_lines;
        let last = match self.total_points {
            Some(n) => (first + self.batch_lines).min(n),
            None => first + self.batch_lines,
        };
        let room = self.head_room();
        buf.clear();
        buf.resize(room, 0);
        let mut rng = Rng::new(self.seed ^ batch.wrapping_mul(0xA24B_AED4_963E_E407));
        if self.gzip {
            scratch.clear();
            for p in first..last {
                self.dataset
                    .write_point(p, self.start_ns, self.divisor, &mut rng, scratch);
            }
            let mut enc = flate2::write::GzEncoder::new(&mut buf, flate2::Compression::fast());
            // Writing into a Vec cannot fail.
            enc.write_all(scratch)
                .and_then(|_| enc.finish())
                .expect("gzip into memory");
        } else {
            for p in first..last {
                self.dataset
                    .write_point(p, self.start_ns, self.divisor, &mut rng, &mut buf);
            }
        }
        let body_len = buf.len() - room;
        let mut digits = itoa::Buffer::new();
        let len = digits.format(body_len).as_bytes();
        let head_len = self.head_before_len.len() + len.len() + self.head_after_len.len();
        let start = room - head_len;
        let mut at = start;
        for part in [&self.head_before_len[..], len, &self.head_after_len[..]] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Request {
            buf,
            start,
            lines: (last - first) as u32,
            kind: 0,
        }
    }
}

/// What the generators did, for the report.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GeneratorReport {
    pub threads: usize,
    /// Requests made before the clock started.
    pub pregenerated_requests: usize,
    pub pregenerated_mib: f64,
    pub pregeneration_s: f64,
    /// True when the whole run was made before the clock started.
    pub whole_run_pregenerated: bool,
}

/// The senders' end of the queue.
#[derive(Debug, Clone)]
pub struct Feed {
    pub requests: flume::Receiver<Request>,
    pub recycle: flume::Sender<Vec<u8>>,
}

/// The generator threads; dropping every [`Feed`] clone stops them.
#[derive(Debug)]
pub struct Generators {
    pub feed: Feed,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    pub report: GeneratorReport,
}

impl Generators {
    /// Starts `threads` generators and returns once the queue holds `queue_bytes` of
    /// requests or the whole run.
    pub fn start(
        plan: Arc<BodyPlan>,
        threads: usize,
        cpus: Option<Vec<usize>>,
        queue_bytes: u64,
        min_queue: usize,
        most_needed: Option<u64>,
    ) -> Generators {
        let threads = threads.max(1);
        let began = Instant::now();
        // One request made up front tells the queue's length in requests.
        let sample = plan.fill(0, Vec::new(), &mut Vec::new());
        let per_request = sample.buf.len().max(1) as u64;
        // An open-loop run of known length needs no more than its schedule holds.
        let batches = plan.batches().min(most_needed.unwrap_or(u64::MAX));
        let capacity = ((queue_bytes / per_request) as usize).max(min_queue).max(2);
        let whole_run = batches <= capacity as u64;
        let capacity = if whole_run {
            batches as usize
        } else {
            capacity
        };
        let (tx, rx) = flume::bounded::<Request>(capacity);
        let (recycle_tx, recycle_rx) = flume::unbounded::<Vec<u8>>();
        let stop = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        let mut sample = Some(sample);
        for g in 0..threads {
            let (plan, tx, recycle_rx, stop, finished, cpus) = (
                plan.clone(),
                tx.clone(),
                recycle_rx.clone(),
                stop.clone(),
                finished.clone(),
                cpus.clone(),
            );
            let first = sample.take();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("loadgen-gen-{g}"))
                    .spawn(move || {
                        if let Some(cpus) = cpus {
                            let _ = crate::cpus::pin_current_thread(&cpus);
                        }
                        let mut scratch = Vec::new();
                        let mut batch = g as u64;
                        if let Some(first) = first {
                            // Generator 0's first batch is the sample.
                            if tx.send(first).is_err() {
                                finished.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            batch += threads as u64;
                        }
                        while batch < batches && !stop.load(Ordering::Relaxed) {
                            let buf = recycle_rx.try_recv().unwrap_or_default();
                            let request = plan.fill(batch, buf, &mut scratch);
                            if tx.send(request).is_err() {
                                break;
                            }
                            batch += threads as u64;
                        }
                        finished.fetch_add(1, Ordering::SeqCst);
                    })
                    .expect("spawn generator thread"),
            );
        }
        drop(tx);
        // Fill before the clock starts.
        while rx.len() < capacity && finished.load(Ordering::SeqCst) < threads {
            std::thread::sleep(Duration::from_millis(2));
        }
        let report = GeneratorReport {
            threads,
            pregenerated_requests: rx.len(),
            pregenerated_mib: (rx.len() as u64 * per_request) as f64 / (1 << 20) as f64,
            pregeneration_s: began.elapsed().as_secs_f64(),
            whole_run_pregenerated: whole_run,
        };
        Generators {
            feed: Feed {
                requests: rx,
                recycle: recycle_tx,
            },
            threads: handles,
            stop,
            report,
        }
    }

    /// Stops the generators; queued requests are dropped.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let Generators { feed, threads, .. } = self;
        // Emptying the queue unblocks a generator waiting to send.
        while feed.requests.try_recv().is_ok() {}
        drop(feed);
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(total: u64, gzip: bool) -> BodyPlan {
        BodyPlan {
            dataset: Arc::new(Dataset::cpu(10, 1).unwrap()),
            batch_lines: 7,
            total_points: Some(total),
            start_ns: 0,
            divisor: 1,
            seed: 3,
            gzip,
            head_before_len: b"POST /w HTTP/1.1\r\nContent-Length: ".to_vec(),
            head_after_len: b"\r\n\r\n".to_vec(),
        }
    }

    #[test]
    fn head_sits_right_before_the_body_and_states_its_length() {
        let p = plan(20, false);
        let r = p.fill(2, Vec::new(), &mut Vec::new());
        assert_eq!(r.lines, 6, "the last batch holds the remainder");
        let text = std::str::from_utf8(r.bytes()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head.rsplit_once(": ").unwrap().1.parse().unwrap();
        assert_eq!(len, body.len());
        assert_eq!(body.lines().count(), 6);
    }

    #[test]
    fn gzip_bodies_inflate_to_the_plain_ones() {
        let plain = plan(20, false).fill(1, Vec::new(), &mut Vec::new());
        let zipped = plan(20, true).fill(1, Vec::new(), &mut Vec::new());
        let split = |r: &Request| {
            let at = r.bytes().windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            r.bytes()[at..].to_vec()
        };
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&split(&zipped)[..]),
            &mut inflated,
        )
        .unwrap();
        assert_eq!(inflated, split(&plain));
    }

    #[test]
    fn generators_make_every_batch_once() {
        let p = Arc::new(plan(1000, false));
        let gens = Generators::start(p, 3, None, 1 << 20, 4, None);
        assert!(gens.report.whole_run_pregenerated);
        let mut lines = 0;
        while let Ok(r) = gens.feed.requests.recv() {
            lines += r.lines as u64;
        }
        assert_eq!(lines, 1000);
        gens.stop();
    }
}
