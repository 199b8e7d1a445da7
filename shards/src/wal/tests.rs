use super::*;
use crate::precision::Precision;
use std::collections::BTreeMap;
use std::io;

/// An in-memory segment store whose writes and syncs can be made to fail.
#[derive(Clone, Default)]
struct MemStore {
    files: Rc<RefCell<BTreeMap<u64, Vec<u8>>>>,
    fail_sync_after: Rc<Cell<Option<u32>>>,
    short_write: Rc<Cell<bool>>,
    syncs: Rc<Cell<u32>>,
    /// The new bytes of each group write (without the rewritten tail block).
    group_bytes: Rc<RefCell<Vec<usize>>>,
    /// While set, syncs wait: a group's write stays under way.
    hold_sync: Rc<Cell<bool>>,
}

struct MemFile {
    seq: u64,
    store: MemStore,
}

impl SegmentStore for MemStore {
    type File = MemFile;
    async fn create(&self, seq: u64) -> io::Result<MemFile> {
        let prev = self.files.borrow_mut().insert(seq, Vec::new());
        assert!(prev.is_none(), "segment {seq} created twice");
        Ok(MemFile {
            seq,
            store: self.clone(),
        })
    }
}

impl SegmentFile for MemFile {
    fn alignment(&self) -> usize {
        512
    }
    async fn write_at(&self, parts: &[&[u8]], pos: u64) -> io::Result<()> {
        assert_eq!(pos % 512, 0, "unaligned write");
        let new = parts.last().map_or(0, |p| p.len());
        self.store.group_bytes.borrow_mut().push(new);
        let mut data: Vec<u8> = parts.concat();
        if self.store.short_write.get() {
            data.truncate(data.len() / 2);
            let mut files = self.store.files.borrow_mut();
            let f = files.get_mut(&self.seq).unwrap();
            f.resize(pos as usize, 0);
            f.extend_from_slice(&data);
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "injected short write",
            ));
        }
        data.resize(data.len().div_ceil(512) * 512, 0);
        let mut files = self.store.files.borrow_mut();
        let f = files.get_mut(&self.seq).unwrap();
        f.resize(pos as usize, 0);
        f.extend_from_slice(&data);
        Ok(())
    }
    async fn sync(&self) -> io::Result<()> {
        while self.store.hold_sync.get() {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let n = self.store.syncs.get();
        self.store.syncs.set(n + 1);
        if let Some(limit) = self.store.fail_sync_after.get() {
            if n >= limit {
                return Err(io::Error::other("injected fdatasync failure"));
            }
        }
        Ok(())
    }
    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(256 << 10)
        .make()
        .expect("executor")
        .run(f)
}

fn append_line(
    wal: &Wal<MemStore>,
    durable: bool,
    line: &str,
) -> impl std::future::Future<Output = Result<(), WalError>> {
    let line = line.to_string();
    wal.append(durable, move |out| {
        encode_batch(out, 1, Precision::Nanosecond, 0, &line, [(0, line.len())])
    })
}

fn lines_in(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let (_, tail) = read_frames(data, |p| {
        out.push(decode_batch(p).unwrap().lines.trim_end().to_string())
    });
    assert_eq!(tail, Tail::Clean);
    out
}

#[test]
fn group_commit_covers_concurrent_appends_in_order() {
    let store = MemStore::default();
    let files = store.files.clone();
    let groups = run(async move {
        let wal = Wal::new(store, WalConfig::default(), 1);
        let committer = glommio::spawn_local(wal.clone().run_committer());
        let mut waits = Vec::new();
        for i in 0..100 {
            waits.push(glommio::spawn_local(append_line(
                &wal,
                true,
                &format!("m v={i}"),
            )));
        }
        for w in waits {
            w.await.unwrap();
        }
        wal.close();
        committer.await;
        wal.groups_committed()
    });
    let all = lines_in(&files.borrow()[&1]);
    assert_eq!(
        all,
        (0..100).map(|i| format!("m v={i}")).collect::<Vec<_>>()
    );
    assert!(groups < 100, "100 concurrent appends took {groups} groups");
}

#[test]
fn no_sync_appends_are_written_by_the_flush_interval() {
    let store = MemStore::default();
    let files = store.files.clone();
    run(async move {
        let cfg = WalConfig {
            flush_interval: Duration::from_millis(1),
            ..WalConfig::default()
        };
        let wal = Wal::new(store, cfg, 1);
        let _committer = glommio::spawn_local(wal.clone().run_committer()).detach();
        append_line(&wal, false, "m v=1").await.unwrap();
        // Wait (bounded) until the committer has written it without any durable append.
        for _ in 0..1000 {
            if wal.groups_committed() > 0 {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(wal.groups_committed(), 1);
    });
    assert_eq!(lines_in(&files.borrow()[&1]), vec!["m v=1"]);
}

#[test]
fn sync_failure_fails_the_group_and_stops_the_log() {
    let store = MemStore::default();
    store.fail_sync_after.set(Some(1));
    run(async move {
        let wal = Wal::new(store, WalConfig::default(), 1);
        let _c = glommio::spawn_local(wal.clone().run_committer()).detach();
        append_line(&wal, true, "m v=1").await.unwrap();
        let e = append_line(&wal, true, "m v=2").await.unwrap_err();
        assert!(e.to_string().contains("fdatasync"), "{e}");
        let e = append_line(&wal, true, "m v=3").await.unwrap_err();
        assert!(matches!(e, WalError::Failed(_)), "{e}");
    });
}

#[test]
fn short_write_is_an_error_and_replay_keeps_the_synced_prefix() {
    let store = MemStore::default();
    let files = store.files.clone();
    let short = store.short_write.clone();
    run(async move {
        let wal = Wal::new(store, WalConfig::default(), 1);
        let _c = glommio::spawn_local(wal.clone().run_committer()).detach();
        append_line(&wal, true, "m v=1").await.unwrap();
        short.set(true);
        let long = format!("m s=\"{}\"", "x".repeat(3000));
        assert!(append_line(&wal, true, &long).await.is_err());
    });
    let mut got = Vec::new();
    let (_, tail) = read_frames(&files.borrow()[&1], |p| {
        got.push(decode_batch(p).unwrap().lines.trim_end().to_string())
    });
    assert_eq!(got, vec!["m v=1"]);
    assert!(matches!(tail, Tail::Damaged { .. }));
}

#[test]
fn rotation_keeps_every_record_across_segments() {
    let store = MemStore::default();
    let files = store.files.clone();
    run(async move {
        let cfg = WalConfig {
            segment_bytes: 2048,
            ..WalConfig::default()
        };
        let wal = Wal::new(store, cfg, 5);
        let c = glommio::spawn_local(wal.clone().run_committer());
        for i in 0..200 {
            append_line(&wal, true, &format!("rotate v={i}"))
                .await
                .unwrap();
        }
        wal.close();
        c.await;
    });
    let files = files.borrow();
    assert!(
        files.len() > 3,
        "expected several segments, got {}",
        files.len()
    );
    assert_eq!(*files.keys().next().unwrap(), 5);
    let all: Vec<String> = files.values().flat_map(|d| lines_in(d)).collect();
    assert_eq!(
        all,
        (0..200)
            .map(|i| format!("rotate v={i}"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn dma_segments_replay_and_torn_tails_are_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    let d2 = wal_dir.clone();
    run(async move {
        let wal = Wal::new(DmaStore::new(d2).unwrap(), WalConfig::default(), 1);
        let c = glommio::spawn_local(wal.clone().run_committer());
        let mut waits = Vec::new();
        for i in 0..50 {
            let line = format!("disk,host=h{i} v={i}i {i}");
            waits.push(glommio::spawn_local(wal.append(true, move |out| {
                encode_batch(out, 3, Precision::Second, 9, &line, [(0, line.len())])
            })));
        }
        for w in waits {
            w.await.unwrap();
        }
        wal.close();
        c.await;
    });
    let segs = list_segments(&wal_dir).unwrap();
    assert_eq!(segs.len(), 1);
    let path = &segs[0].1;
    // Damage the tail: a frame header promising more bytes than exist.
    let clean_len = {
        let mut n = 0;
        let r = replay_segment(path, |_| n += 1).unwrap();
        assert_eq!((n, r.truncated.clone()), (50, None));
        r.good_bytes
    };
    let mut data = std::fs::read(path).unwrap();
    data.truncate(clean_len as usize);
    data.extend_from_slice(&100u32.to_le_bytes());
    data.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    std::fs::write(path, &data).unwrap();
    let mut lines = Vec::new();
    let r = replay_segment(path, |b| {
        assert_eq!(
            (b.database_id, b.precision, b.default_time_ns),
            (3, Precision::Second, 9)
        );
        lines.push(b.lines.to_string())
    })
    .unwrap();
    assert_eq!(lines.len(), 50);
    assert!(r.truncated.is_some());
    assert_eq!(std::fs::metadata(path).unwrap().len(), clean_len);
    // A second replay finds a clean file.
    assert_eq!(replay_segment(path, |_| {}).unwrap().truncated, None);
}

#[test]
fn no_sync_appends_wait_for_the_interval_but_a_durable_one_commits_at_once() {
    let store = MemStore::default();
    let files = store.files.clone();
    run(async move {
        let cfg = WalConfig {
            // Long enough that only the durable append can explain a commit.
            flush_interval: Duration::from_secs(3600),
            ..WalConfig::default()
        };
        let wal = Wal::new(store, cfg, 1);
        let _c = glommio::spawn_local(wal.clone().run_committer()).detach();
        for i in 0..5 {
            append_line(&wal, false, &format!("m v={i}")).await.unwrap();
        }
        // Give the committer (a task on this executor) time to act: with a one-hour interval,
        // nothing but a bug makes it commit now.
        glommio::timer::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            wal.groups_committed(),
            0,
            "no_sync appends alone wait for the interval"
        );
        append_line(&wal, true, "m v=5").await.unwrap();
        assert_eq!(
            wal.groups_committed(),
            1,
            "one group carries the no_sync appends and the durable one"
        );
    });
    assert_eq!(lines_in(&files.borrow()[&1]).len(), 6);
}

#[test]
fn dma_groups_of_many_chunks_and_odd_tails_replay_intact() {
    // Groups smaller than a block, larger than one DMA chunk, and larger than all chunks in
    // flight, each its own group, so partial tail blocks are rewritten between them.
    let sizes = [10usize, 300_000, 5, 1_100_000, 4095, 700_000, 1];
    let expected: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("big,i={i} s=\"{}\"", "x".repeat(*n)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    let (d, lines) = (wal_dir.clone(), expected.clone());
    run(async move {
        let wal = Wal::new(DmaStore::new(d).unwrap(), WalConfig::default(), 1);
        let c = glommio::spawn_local(wal.clone().run_committer());
        for line in lines {
            wal.append(true, move |out| {
                encode_batch(out, 1, Precision::Nanosecond, 0, &line, [(0, line.len())])
            })
            .await
            .unwrap();
        }
        assert_eq!(wal.groups_committed(), sizes.len() as u64);
        wal.close();
        c.await;
    });
    let mut got = Vec::new();
    for (_, path) in list_segments(&wal_dir).unwrap() {
        let r = replay_segment(&path, |b| {
            got.push(b.lines.trim_end_matches('\n').to_string())
        })
        .unwrap();
        assert_eq!(r.truncated, None);
    }
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!(g == e, "a record of {} bytes came back changed", e.len());
    }
}

#[test]
fn rotation_writes_pending_no_sync_data_and_splits_segments() {
    let store = MemStore::default();
    let files = store.files.clone();
    let covered = run(async move {
        let wal = Wal::new(store, WalConfig::default(), 5);
        let committer = glommio::spawn_local(wal.clone().run_committer());
        // Nothing written yet: the segment before the first holds "everything".
        assert_eq!(wal.rotate().await.unwrap(), 4);
        append_line(&wal, true, "m v=1").await.unwrap();
        append_line(&wal, false, "m v=2").await.unwrap();
        let first = wal.rotate().await.unwrap();
        // A second rotation with nothing new closes nothing.
        let again = wal.rotate().await.unwrap();
        append_line(&wal, true, "m v=3").await.unwrap();
        wal.close();
        committer.await;
        (first, again)
    });
    assert_eq!(covered, (5, 5));
    let files = files.borrow();
    assert_eq!(lines_in(&files[&5]), vec!["m v=1", "m v=2"]);
    assert_eq!(lines_in(&files[&6]), vec!["m v=3"]);
}

#[test]
fn covered_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    for seq in [3, 4, 7] {
        std::fs::write(dir.path().join(segment_file_name(seq)), b"").unwrap();
    }
    assert_eq!(delete_segments_through(dir.path(), 4).unwrap(), 2);
    let left: Vec<u64> = list_segments(dir.path())
        .unwrap()
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(left, vec![7]);
    assert_eq!(
        delete_segments_through(&dir.path().join("missing"), 9).unwrap(),
        0
    );
}

/// A frame of `line`, as [`append_line`] writes it.
fn frame_bytes(line: &str) -> usize {
    let mut out = Vec::new();
    encode_batch(
        &mut out,
        1,
        Precision::Nanosecond,
        0,
        line,
        [(0, line.len())],
    );
    out.len()
}

#[test]
fn a_group_never_exceeds_max_group_bytes() {
    const MAX: usize = 4096;
    let store = MemStore::default();
    let (files, groups) = (store.files.clone(), store.group_bytes.clone());
    // Frames of 30 to about 700 bytes, so groups end at odd places.
    let lines: Vec<String> = (0..300)
        .map(|i| format!("m,i={i} s=\"{}\"", "x".repeat((i * 37) % 650)))
        .collect();
    let total: usize = lines.iter().map(|l| frame_bytes(l)).sum();
    // The order the appends were made in: the order the log must keep.
    let order = Rc::new(RefCell::new(Vec::new()));
    let appended = order.clone();
    run(async move {
        let cfg = WalConfig {
            max_group_bytes: MAX,
            ..WalConfig::default()
        };
        let wal = Wal::new(store, cfg, 1);
        let committer = glommio::spawn_local(wal.clone().run_committer());
        let mut waits = Vec::new();
        // Every append at once: half of them wait for room first, as the shards do; the
        // others append straight away, which the cap must hold against too.
        for (i, line) in lines.into_iter().enumerate() {
            let (wal, appended) = (wal.clone(), appended.clone());
            waits.push(glommio::spawn_local(async move {
                if i % 2 == 0 {
                    wal.room().await;
                }
                appended.borrow_mut().push(line.clone());
                append_line(&wal, i % 3 != 0, &line).await
            }));
        }
        for w in waits {
            w.await.unwrap();
        }
        wal.close();
        committer.await;
    });
    let groups = groups.borrow();
    assert!(
        groups.iter().all(|&g| g <= MAX),
        "a group was larger than {MAX} bytes: {groups:?}"
    );
    assert_eq!(groups.iter().sum::<usize>(), total, "every byte once");
    assert!(groups.len() >= total / MAX, "{} groups", groups.len());
    // Nothing lost, nothing reordered.
    let got: Vec<String> = files.borrow().values().flat_map(|d| lines_in(d)).collect();
    let order = order.borrow();
    assert_eq!(got.len(), order.len());
    let differ = got.iter().zip(order.iter()).position(|(g, o)| g != o);
    assert_eq!(differ, None, "the log's order differs from the appends'");
}

#[test]
fn a_frame_larger_than_a_group_is_a_group_of_its_own() {
    let store = MemStore::default();
    let (files, groups) = (store.files.clone(), store.group_bytes.clone());
    let big = format!("m s=\"{}\"", "y".repeat(3000));
    let lines = ["m v=1".to_string(), big.clone(), "m v=2".to_string()];
    let sent = lines.clone();
    run(async move {
        let cfg = WalConfig {
            max_group_bytes: 1024,
            ..WalConfig::default()
        };
        let wal = Wal::new(store, cfg, 1);
        let committer = glommio::spawn_local(wal.clone().run_committer());
        let waits: Vec<_> = sent
            .iter()
            .map(|l| glommio::spawn_local(append_line(&wal, true, l)))
            .collect();
        for w in waits {
            w.await.unwrap();
        }
        wal.close();
        committer.await;
    });
    let groups = groups.borrow();
    assert!(groups.contains(&frame_bytes(&big)), "{groups:?}");
    assert!(groups.iter().all(|&g| g <= 1024 || g == frame_bytes(&big)));
    assert_eq!(lines_in(&files.borrow()[&1]), lines);
}

#[test]
fn a_full_group_makes_appenders_wait_for_the_next_and_loses_nothing() {
    use futures_lite::future::poll_once;
    const MAX: usize = 2048;
    let store = MemStore::default();
    let (files, hold) = (store.files.clone(), store.hold_sync.clone());
    let lines: Vec<String> = (0..400).map(|i| format!("m v={i}")).collect();
    let sent = lines.clone();
    run(async move {
        let cfg = WalConfig {
            max_group_bytes: MAX,
            ..WalConfig::default()
        };
        let wal = Wal::new(store, cfg, 1);
        let committer = glommio::spawn_local(wal.clone().run_committer());
        // The first group's sync hangs: nothing more is written meanwhile.
        hold.set(true);
        let first = glommio::spawn_local(append_line(&wal, true, "m v=first"));
        while wal.pending_bytes() > 0 {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let waits: Vec<_> = sent
            .into_iter()
            .map(|line| {
                let wal = wal.clone();
                glommio::spawn_local(async move {
                    wal.room().await;
                    append_line(&wal, true, &line).await
                })
            })
            .collect();
        // Let every appender run as far as it can.
        glommio::timer::sleep(Duration::from_millis(20)).await;
        // The next group filled up and every later appender waits for room instead of adding
        // to it: at most one frame past the cap is pending.
        assert!(
            wal.appends_waiting() > 300,
            "{} waiting",
            wal.appends_waiting()
        );
        assert!(
            wal.pending_bytes() < MAX + frame_bytes("m v=400"),
            "{} bytes pending",
            wal.pending_bytes()
        );
        assert!(
            poll_once(std::pin::pin!(wal.room())).await.is_none(),
            "room while the next group is full"
        );
        hold.set(false);
        first.await.unwrap();
        for w in waits {
            w.await.unwrap();
        }
        assert_eq!(wal.appends_waiting(), 0);
        wal.close();
        committer.await;
    });
    let got: Vec<String> = files.borrow().values().flat_map(|d| lines_in(d)).collect();
    assert_eq!(got.len(), lines.len() + 1, "every append written once");
    assert_eq!(got[0], "m v=first");
}

#[test]
fn a_rotation_ends_its_group_even_with_more_pending() {
    let store = MemStore::default();
    let (files, hold) = (store.files.clone(), store.hold_sync.clone());
    let covered = run(async move {
        let wal = Wal::new(store, WalConfig::default(), 1);
        let committer = glommio::spawn_local(wal.clone().run_committer());
        hold.set(true);
        let first = glommio::spawn_local(append_line(&wal, true, "m v=0"));
        while wal.pending_bytes() > 0 {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        // Queued behind the held group: one append, the rotation, then another.
        let a = append_line(&wal, true, "m v=1");
        let rotated = wal.rotate();
        let b = append_line(&wal, true, "m v=2");
        hold.set(false);
        first.await.unwrap();
        use futures_lite::future::zip;
        let (a, (covered, b)) = zip(a, zip(rotated, b)).await;
        a.unwrap();
        b.unwrap();
        let covered = covered.unwrap();
        wal.close();
        committer.await;
        covered
    });
    assert_eq!(covered, 1);
    let files = files.borrow();
    assert_eq!(lines_in(&files[&1]), vec!["m v=0", "m v=1"]);
    assert_eq!(lines_in(&files[&2]), vec!["m v=2"]);
}

#[test]
fn a_failed_group_fails_the_appends_left_for_later_groups_without_writing_them() {
    let store = MemStore::default();
    store.fail_sync_after.set(Some(0));
    let (groups, hold) = (store.group_bytes.clone(), store.hold_sync.clone());
    run(async move {
        let cfg = WalConfig {
            max_group_bytes: 256,
            ..WalConfig::default()
        };
        let wal = Wal::new(store, cfg, 1);
        let _c = glommio::spawn_local(wal.clone().run_committer()).detach();
        hold.set(true);
        let first = glommio::spawn_local(append_line(&wal, true, "m v=first"));
        while wal.pending_bytes() > 0 {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        // More than one group's worth queued behind the failing one.
        let later: Vec<_> = (0..20)
            .map(|i| glommio::spawn_local(append_line(&wal, true, &format!("m v={i}"))))
            .collect();
        hold.set(false);
        assert!(first.await.is_err());
        for w in later {
            assert!(w.await.is_err(), "an append after a failed group succeeded");
        }
        assert!(matches!(
            append_line(&wal, true, "m v=after").await,
            Err(WalError::Failed(_))
        ));
    });
    assert_eq!(
        groups.borrow().len(),
        1,
        "nothing is written after the failure"
    );
}
