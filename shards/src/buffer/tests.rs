use super::*;
use crate::ingest::Applier;
use crate::precision::Precision;
use crate::schema::{CatalogSnapshot, DbSchema, TableSchema};
use crate::wal::WalBatch;
use std::sync::Arc;

fn catalog() -> CatalogSnapshot {
    let cols = [
        ("host", ColumnType::Tag),
        ("region", ColumnType::Tag),
        ("time", ColumnType::Time),
        ("usage", ColumnType::Float),
        ("n", ColumnType::Int),
        ("msg", ColumnType::String),
        ("ok", ColumnType::Bool),
        ("big", ColumnType::UInt),
    ];
    let table = Arc::new(TableSchema::with_columns(0, "cpu", &cols));
    CatalogSnapshot::new(
        1,
        vec![Arc::new(DbSchema::new(0, Arc::from("db"), vec![table]))],
    )
}

fn apply(buf: &mut ShardBuffer, lines: &str) -> crate::ingest::ApplyStats {
    let cat = catalog();
    let batch = WalBatch {
        database_id: 0,
        precision: Precision::Second,
        default_time_ns: 77,
        line_count: lines.lines().count() as u32,
        lines,
    };
    Applier::default().apply(buf, &cat, &batch, |_| true)
}

#[test]
fn rows_land_in_columns_with_nulls_and_interned_series() {
    let cat = catalog();
    let mut buf = ShardBuffer::default();
    let stats = apply(
        &mut buf,
        "cpu,host=a,region=eu usage=1.5,n=3i 10\n\
         cpu,region=eu,host=a msg=\"hi \\\"there\\\"\",ok=true\n\
         cpu,host=b big=7u,usage=2 12\n",
    );
    assert_eq!((stats.applied, stats.skipped), (3, 0));
    let t = buf.table(0, 0).unwrap();
    assert_eq!(t.rows(), 3);
    assert_eq!(
        t.series_count(),
        2,
        "same tags in another order are one series"
    );
    assert_eq!(
        (0..3).map(|i| t.time().get(i)).collect::<Vec<_>>(),
        vec![10_000_000_000, 77, 12_000_000_000]
    );
    let schema = cat.databases[0].tables[0].clone();
    let col = |id: u32, row: usize| t.value(row, &schema.columns[id as usize]);
    assert_eq!(col(0, 0), Value::Tag("a"));
    assert_eq!(col(0, 2), Value::Tag("b"));
    assert_eq!(col(1, 2), Value::Null);
    assert_eq!(col(3, 0), Value::F64(1.5));
    assert_eq!(col(3, 1), Value::Null);
    assert_eq!(col(4, 0), Value::I64(3));
    assert_eq!(col(5, 1), Value::Str("hi \"there\""));
    assert_eq!(col(6, 1), Value::Bool(true));
    assert_eq!(col(7, 2), Value::U64(7));
    assert_eq!(col(2, 1), Value::I64(77), "time reads as a value too");
    for id in [3, 4, 5, 6, 7] {
        assert_eq!(t.column(id).unwrap().len(), 3, "column {id} has every row");
    }
}

#[test]
fn lines_that_do_not_fit_are_skipped_not_fatal() {
    let mut buf = ShardBuffer::default();
    let stats = apply(&mut buf, "cpu usage=1i\nnope v=1\ncpu usage=2\n");
    assert_eq!((stats.applied, stats.skipped), (1, 2));
}

#[test]
fn ownership_filter_splits_lines() {
    let cat = catalog();
    let lines = "cpu,host=a usage=1\ncpu,host=b usage=2\ncpu,host=c usage=3\ncpu,host=d usage=4\n";
    let batch = WalBatch {
        database_id: 0,
        precision: Precision::Nanosecond,
        default_time_ns: 0,
        line_count: 4,
        lines,
    };
    let mut total = 0;
    for shard in 0..2 {
        let mut buf = ShardBuffer::default();
        let s = Applier::default().apply(&mut buf, &cat, &batch, |h| {
            crate::series::owner_shard(h, 2) == shard
        });
        assert_eq!(s.applied + s.not_owned, 4);
        total += s.applied;
    }
    assert_eq!(total, 4, "every line is applied by exactly one shard");
}

mod snapshots {
    use super::*;
    use crate::buffer::snapshot::{SnapshotRequest, SERIES_DROP, SERIES_KEEP, SERIES_MERGE};
    use arrow_array::{Array, Float64Array, LargeStringArray};

    fn request() -> SnapshotRequest {
        SnapshotRequest {
            fields: vec![3, 5],
            tags: vec![0],
            time_min: i64::MIN,
            time_max: i64::MAX,
            tag_filters: Vec::new(),
        }
    }

    #[test]
    fn a_snapshot_holds_the_rows_so_far_and_no_later_ones() {
        let mut buf = ShardBuffer::default();
        apply(&mut buf, "cpu,host=a usage=1.5 1\ncpu,host=b msg=\"x\" 2\n");
        let snap = buf.table(0, 0).unwrap().snapshot(&request());
        apply(&mut buf, "cpu,host=c usage=9 3\n");
        assert_eq!(snap.chunks.len(), 1);
        let c = &snap.chunks[0];
        assert_eq!(c.len, 2);
        assert_eq!(c.time.as_ref(), &[1_000_000_000, 2_000_000_000]);
        let usage = c.fields[0].as_ref().unwrap();
        let usage = usage.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(usage.len(), 2);
        assert_eq!(usage.value(0), 1.5);
        assert!(usage.is_null(1));
        let msg = c.fields[1].as_ref().unwrap();
        let msg = msg.as_any().downcast_ref::<LargeStringArray>().unwrap();
        assert!(msg.is_null(0));
        assert_eq!(msg.value(1), "x");
        assert_eq!(&*snap.tags[0].series_codes, &[0, 1]);
        assert!(
            snap.series_state.is_none(),
            "no filter, no repeats: nothing to mask"
        );
    }

    #[test]
    fn chunks_outside_the_time_range_are_left_out_and_sealed_ones_shared() {
        let mut buf = ShardBuffer::default();
        let n = CHUNK_LEN * 2 + 10;
        let lines: String = (0..n)
            .map(|i| format!("cpu,host=a usage={i} {}\n", i + 1))
            .collect();
        apply(&mut buf, &lines);
        let t = buf.table(0, 0).unwrap();
        let mut req = request();
        req.time_min = (CHUNK_LEN as i64 + 5) * 1_000_000_000;
        req.time_max = (CHUNK_LEN as i64 + 6) * 1_000_000_000;
        let snap = t.snapshot(&req);
        assert_eq!(snap.chunks.len(), 1);
        assert_eq!(
            snap.chunks[0].time_min,
            (CHUNK_LEN as i64 + 1) * 1_000_000_000
        );
        let again = t.snapshot(&req);
        let ptr = |s: &crate::buffer::snapshot::TableSnapshot| {
            s.chunks[0].fields[0].as_ref().unwrap().to_data().buffers()[0].as_ptr()
        };
        assert_eq!(
            ptr(&snap),
            ptr(&again),
            "a sealed chunk is shared, not copied"
        );
    }

    #[test]
    fn a_snapshot_says_whether_its_rows_arrived_in_time_order() {
        let mut buf = ShardBuffer::default();
        // Equal times in a row and rows crossing a chunk boundary are still in order.
        let lines: String = (0..CHUNK_LEN + 10)
            .map(|i| format!("cpu,host=h{} usage=1 {}\n", i % 3, i / 2 + 1))
            .collect();
        apply(&mut buf, &lines);
        assert!(buf.table(0, 0).unwrap().snapshot(&request()).time_ordered);
        // A row earlier than the row before it, in another series, ends the order for good.
        apply(&mut buf, "cpu,host=z usage=1 2\n");
        let t = buf.table(0, 0).unwrap();
        assert!(!t.snapshot(&request()).time_ordered);
        apply(&mut buf, "cpu,host=z usage=1 999999\n");
        assert!(!buf.table(0, 0).unwrap().snapshot(&request()).time_ordered);
    }

    #[test]
    fn tag_filters_and_repeated_points_mark_series() {
        let mut buf = ShardBuffer::default();
        apply(
            &mut buf,
            "cpu,host=a usage=1 1\ncpu,host=b usage=2 1\ncpu,host=c usage=3 5\ncpu,host=c usage=4 5\n",
        );
        let t = buf.table(0, 0).unwrap();
        let mut req = request();
        req.tag_filters = vec![(0, vec!["a".into(), "c".into(), "zzz".into()])];
        let snap = t.snapshot(&req);
        assert_eq!(
            snap.series_state.as_deref(),
            Some(&[SERIES_KEEP, SERIES_DROP, SERIES_MERGE][..])
        );
        assert!(snap.needs_merge());
        let none = t.snapshot(&SnapshotRequest {
            tag_filters: vec![(0, vec!["nope".into()])],
            ..request()
        });
        assert!(none.series_state.unwrap().iter().all(|&s| s == SERIES_DROP));
    }

    /// (chunk's first row, offsets) of each chunk of `snap`, as absolute row ids.
    fn selected_rows(
        buf: &ShardBuffer,
        snap: &crate::buffer::snapshot::TableSnapshot,
    ) -> Vec<usize> {
        let t = buf.table(0, 0).unwrap();
        snap.chunks
            .iter()
            .flat_map(|c| {
                // A chunk's position: its first time is unique in these tests.
                let first = (0..t.rows())
                    .find(|&r| t.time().get(r) == c.time[0])
                    .unwrap();
                let base = first - first % CHUNK_LEN;
                c.selected
                    .as_ref()
                    .expect("selective")
                    .iter()
                    .map(move |&o| base + o as usize)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn a_selective_tag_filter_names_exactly_the_rows_of_its_series() {
        let mut buf = ShardBuffer::default();
        // 80 hosts over three chunks and a bit; host h3 also arrives out of order (a second
        // run) and h5 repeats a point (merged into one run in row order).
        let n = 3 * CHUNK_LEN + 100;
        let mut lines: String = (0..n)
            .map(|i| format!("cpu,host=h{} usage=1 {}\n", i % 80, i + 1))
            .collect();
        lines.push_str("cpu,host=h3 usage=2 5\ncpu,host=h5 usage=2 6\ncpu,host=h3 usage=3 45\n");
        apply(&mut buf, &lines);
        let t = buf.table(0, 0).unwrap();
        let host_of = |r: usize| t.series_key(t.row_series().get(r)).to_vec();
        let key = |h: &str| {
            let mut k = b"cpu\0host\0".to_vec();
            k.extend_from_slice(h.as_bytes());
            k.push(0);
            k
        };
        assert_eq!(host_of(0), key("h0"), "series keys as this test reads them");
        let mut req = request();
        req.tag_filters = vec![(0, vec!["h3".into(), "h5".into()])];
        // Leave out the first chunk by time: its rows are not named.
        req.time_min = (CHUNK_LEN as i64 + 1) * 1_000_000_000;
        let snap = t.snapshot(&req);
        assert_eq!(snap.chunks.len(), 3);
        let expected: Vec<usize> = (CHUNK_LEN..t.rows())
            .filter(|&r| host_of(r) == key("h3") || host_of(r) == key("h5"))
            .collect();
        assert_eq!(selected_rows(&buf, &snap), expected);
        assert!(snap.needs_merge(), "h5 repeats a point");

        // A filter that passes most rows reads every row instead.
        let many: Vec<String> = (0..60).map(|h| format!("h{h}")).collect();
        req.tag_filters = vec![(0, many)];
        let snap = t.snapshot(&req);
        assert!(snap.chunks.iter().all(|c| c.selected.is_none()));
        // A filter no series passes leaves out every chunk.
        req.tag_filters = vec![(0, vec!["none".into()])];
        assert!(t.snapshot(&req).chunks.is_empty());
    }
}
