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
