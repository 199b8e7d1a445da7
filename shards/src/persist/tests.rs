use std::cell::RefCell;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::ingest::Applier;
use crate::precision::Precision;
use crate::schema::{ColumnType, DbSchema, TableSchema};
use crate::wal::WalBatch;

fn catalog() -> CatalogSnapshot {
    let cols = [
        ("host", ColumnType::Tag),
        ("dc", ColumnType::Tag),
        ("time", ColumnType::Time),
        ("usage", ColumnType::Float),
        ("n", ColumnType::Int),
        ("later", ColumnType::Int),
    ];
    let table = Arc::new(TableSchema::with_columns(0, "cpu", &cols));
    CatalogSnapshot::new(
        1,
        vec![Arc::new(DbSchema::new(0, Arc::from("db"), vec![table]))],
    )
}

fn buffer(lines: &str) -> ShardBuffer {
    let mut buf = ShardBuffer::default();
    let batch = WalBatch {
        database_id: 0,
        precision: Precision::Second,
        default_time_ns: 0,
        line_count: lines.lines().count() as u32,
        lines,
    };
    let stats = Applier::default().apply(&mut buf, &catalog(), &batch, |_| true);
    assert_eq!(stats.skipped, 0);
    buf
}

/// One-minute windows.
fn layout(index: usize, count: usize, epoch: u64) -> ShardLayout {
    ShardLayout {
        index,
        count,
        epoch,
        gen1_ns: 60_000_000_000,
    }
}

fn cover(wal_covered: u64) -> SnapshotCover {
    SnapshotCover {
        wal_covered,
        absorbed_epochs: vec![],
    }
}

fn read(storage: &Storage, f: &ParquetFile) -> RecordBatch {
    let bytes = storage.get(&f.location()).unwrap();
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[test]
fn snapshot_writes_sorted_deduplicated_files_per_window_then_the_manifest() {
    // Two 60 s windows; host b written out of order; (a, 10) written three times.
    let buf = buffer(
        "cpu,host=b usage=1,n=1i 70\n\
         cpu,host=a,dc=x usage=2 10\n\
         cpu,host=b usage=3 5\n\
         cpu,dc=x,host=a n=4i 10\n\
         cpu,host=a,dc=x usage=5 10\n\
         cpu,host=a,dc=x usage=6 20\n",
    );
    let storage = Storage::memory();
    let faults = RefCell::new(Vec::new());
    let layout = layout(1, 2, 3);
    let cover = SnapshotCover {
        wal_covered: 9,
        absorbed_epochs: vec![2],
    };
    let m = persist_buffer(
        &storage,
        &buf,
        &catalog(),
        Manifest::default(),
        &layout,
        &cover,
        &|p| faults.borrow_mut().push(p.to_string()),
    )
    .unwrap();
    assert_eq!(
        *faults.borrow(),
        [FAULT_AFTER_PARQUET, FAULT_AFTER_MANIFEST]
    );
    assert_eq!((m.version, m.wal_covered, m.next_file_id), (1, 9, 2));
    assert_eq!(m.absorbed_epochs, vec![2]);
    assert_eq!(Manifest::load(&storage, 1).unwrap(), m);
    let [first, second] = &m.files[..] else {
        panic!("two windows: {:?}", m.files)
    };
    assert_eq!(
        first.path, "db/cpu/1970-01-01/00-00/shard-1-0.parquet",
        "dated by the window's start"
    );
    assert_eq!(
        (first.row_count, first.min_time, first.max_time),
        (3, 5_000_000_000, 20_000_000_000)
    );
    assert_eq!((second.row_count, second.min_time), (1, 70_000_000_000));
    assert_eq!(
        (second.shard_count, second.shard_index, second.epoch),
        (2, 1, 3)
    );

    let b = read(&storage, first);
    let names: Vec<_> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["dc", "host", "later", "n", "usage", "time"]);
    // Sorted by series key (`cpu\0dc\0x\0host\0a` < `cpu\0host\0b`), then time.
    let host = b.column(1).as_string::<i32>();
    let time = b.column(5).as_primitive::<TimestampNanosecondType>();
    let usage = b.column(4).as_primitive::<Float64Type>();
    let n = b.column(3).as_primitive::<Int64Type>();
    assert_eq!(
        (0..3)
            .map(|i| (host.value(i), time.value(i) / 1_000_000_000))
            .collect::<Vec<_>>(),
        [("a", 10), ("a", 20), ("b", 5)]
    );
    // (a, 10): usage from the last write, n from the only write that had it.
    assert_eq!((usage.value(0), n.value(0)), (5.0, 4));
    assert!(b.column(2).is_null(0), "a column no row has is all null");
    assert_eq!(
        storage.get(&first.location()).unwrap().len() as u64,
        first.size_bytes
    );
}

#[test]
fn an_empty_buffer_writes_only_the_manifest() {
    let storage = Storage::memory();
    let layout = layout(0, 1, 0);
    let cover = cover(4);
    let m = persist_buffer(
        &storage,
        &ShardBuffer::default(),
        &catalog(),
        Manifest::default(),
        &layout,
        &cover,
        &|_| {},
    )
    .unwrap();
    assert!(m.files.is_empty());
    assert_eq!(m.wal_covered, 4);
}

fn meta(id: u64, rows: u64, min: i64, epoch: u64, index: u32) -> ParquetFile {
    ParquetFile {
        id,
        path: format!("f{id}"),
        database_id: 0,
        table_id: 0,
        table_name: "cpu".into(),
        size_bytes: 1,
        row_count: rows,
        min_time: min,
        max_time: min + 10,
        shard_count: 2,
        shard_index: index,
        epoch,
        sort_id: None,
        wal_max: 0,
        deletes_applied: 0,
    }
}

#[test]
fn compaction_merges_overlapping_groups_whole_and_adjacent_small_files_in_time_order() {
    let day = 86_400_000_000_000;
    let layout = layout(0, 2, 1);
    // meta(id, rows, min_time): each file spans [min, min + 10].
    let m = Manifest {
        files: vec![
            meta(1, 10, 0, 1, 0),                        // 0 ┐ overlap: one group
            meta(2, 10, 5, 1, 0),                        // 1 ┘
            meta(3, 10, 20, 1, 0),                       // 2 ┐ adjacent, overlap nothing
            meta(9, 10, 40, 1, 0),                       // 3 ┘
            meta(4, compact::SMALL_FILE_ROWS, 60, 1, 0), // 4: large, ends the run
            meta(5, 10, 80, 1, 0),                       // 5: alone after the large one
            meta(6, 10, day, 1, 0),                      // 6: another day
            meta(7, 10, 100, 0, 0),                      // 7: another epoch
            meta(8, 10, 120, 1, 1),                      // 8: another layout index
        ],
        ..Manifest::default()
    };
    assert_eq!(
        compact::plan(&m, &layout, u64::MAX),
        vec![vec![0, 1], vec![2, 3]]
    );
    // A budget below an overlapping group's rows leaves it alone.
    assert_eq!(compact::plan(&m, &layout, 15), Vec::<Vec<usize>>::new());
}

#[test]
fn compaction_merges_a_run_keeping_every_point_once_and_the_newest_values() {
    let storage = Storage::memory();
    let layout = layout(0, 1, 0);
    let cover = cover(0);
    let mut m = Manifest::default();
    for lines in [
        "cpu,host=a usage=1,n=1i 10\ncpu,host=b usage=2 70\n",
        "cpu,host=a usage=3 10\ncpu,host=c usage=4 20\n",
    ] {
        m = persist_buffer(
            &storage,
            &buffer(lines),
            &catalog(),
            m,
            &layout,
            &cover,
            &|_| {},
        )
        .unwrap();
    }
    assert_eq!(m.files.len(), 3);
    // The two files of the first window overlap (point a@10 is in both); b@70 overlaps nothing.
    let run = compact::plan(&m, &layout, u64::MAX);
    assert_eq!(run, vec![vec![0, 2]]);
    let cat = catalog();
    let table = &cat.databases[0].tables[0];
    let out = compact::compact_run(&storage, m, &run[0], table, "db", &layout, 99).unwrap();
    assert_eq!(out.files.len(), 2);
    assert_eq!(out.garbage.len(), 2);
    assert!(out.garbage.iter().all(|g| g.delete_after_ns == 99));
    let f = out.files.last().unwrap();
    assert_eq!(
        (f.row_count, f.min_time, f.max_time),
        (2, 10_000_000_000, 20_000_000_000)
    );
    assert_eq!(f.order(), (0, 2), "takes the place of its newest input");
    let b = read(&storage, f);
    let host = b.column(1).as_string::<i32>();
    let usage = b.column(4).as_primitive::<Float64Type>();
    let n = b.column(3).as_primitive::<Int64Type>();
    assert_eq!(
        (0..2)
            .map(|i| (host.value(i), usage.value(i)))
            .collect::<Vec<_>>(),
        [("a", 3.0), ("c", 4.0)]
    );
    assert_eq!(n.value(0), 1, "a field only the older write had is kept");
}

#[test]
fn names_the_object_store_must_encode_are_stored_encoded_and_read_back() {
    let table = Arc::new(TableSchema::with_columns(
        0,
        "we/ird %tbl",
        &[
            ("host", ColumnType::Tag),
            ("time", ColumnType::Time),
            ("v", ColumnType::Float),
        ],
    ));
    let cat = CatalogSnapshot::new(
        1,
        vec![Arc::new(DbSchema::new(0, Arc::from("db"), vec![table]))],
    );
    let lines = "we/ird\\ %tbl,host=a v=1 10\n";
    let mut buf = ShardBuffer::default();
    let batch = WalBatch {
        database_id: 0,
        precision: Precision::Second,
        default_time_ns: 0,
        line_count: 1,
        lines,
    };
    assert_eq!(
        Applier::default()
            .apply(&mut buf, &cat, &batch, |_| true)
            .applied,
        1
    );
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().to_owned()).unwrap();
    let layout = layout(0, 1, 0);
    let cover = cover(0);
    let m = persist_buffer(
        &storage,
        &buf,
        &cat,
        Manifest::default(),
        &layout,
        &cover,
        &|_| {},
    )
    .unwrap();
    let f = &m.files[0];
    assert_eq!(
        f.path,
        "db/we%2Fird %25tbl/1970-01-01/00-00/shard-0-0.parquet"
    );
    assert_eq!(read(&storage, f).num_rows(), 1);
}

#[test]
fn rows_of_a_deleted_table_are_not_persisted() {
    let buf = buffer("cpu,host=a usage=1 10\n");
    let deleted = {
        let mut db = CatalogSnapshot::clone(&catalog()).databases[0]
            .as_ref()
            .clone();
        let mut table = db.tables[0].as_ref().clone();
        table.deleted_at_ns = Some(1);
        db.tables[0] = Arc::new(table);
        CatalogSnapshot::new(2, vec![Arc::new(db)])
    };
    let storage = Storage::memory();
    let m = persist_buffer(
        &storage,
        &buf,
        &deleted,
        Manifest::default(),
        &layout(0, 1, 0),
        &cover(4),
        &|_| {},
    )
    .unwrap();
    assert!(m.files.is_empty(), "{:?}", m.files);
    // The WAL those rows came from is still covered: replay will not bring them back.
    assert_eq!(m.wal_covered, 4);
}

#[test]
fn compaction_leaves_out_deleted_rows_of_older_inputs_only_and_uncovers_the_result() {
    let storage = Storage::memory();
    let layout = layout(0, 1, 0);
    // Written before the deletion (WAL through segment 1): a@10, c@20.
    let m = persist_buffer(
        &storage,
        &buffer("cpu,host=a usage=1,n=1i 10\ncpu,host=c usage=2 20\n"),
        &catalog(),
        Manifest::default(),
        &layout,
        &cover(1),
        &|_| {},
    )
    .unwrap();
    let mut m = m;
    m.add_tombstones(
        vec![Tombstone {
            id: 0,
            database_id: 0,
            table_id: 0,
            min_time: 0,
            max_time: 15_000_000_000,
            predicate: TagPredicate::Equals {
                tag: "host".into(),
                value: "a".into(),
                negated: false,
            },
            epoch: 0,
            wal_covered: 0,
        }],
        0,
        1,
    );
    // Written after it (segment 2), at the deleted point: kept.
    let m = persist_buffer(
        &storage,
        &buffer("cpu,host=a usage=5 10\n"),
        &catalog(),
        m,
        &layout,
        &cover(2),
        &|_| {},
    )
    .unwrap();
    assert_eq!(m.covering(&m.files[0], true).len(), 1);
    assert!(m.covering(&m.files[1], true).is_empty());
    let cat = catalog();
    let table = &cat.databases[0].tables[0];
    let out = compact::compact_run(&storage, m, &[0, 1], table, "db", &layout, 99).unwrap();
    let f = out.files.last().unwrap();
    assert_eq!((f.wal_max, f.deletes_applied), (2, 1));
    assert!(
        !out.tombstones[0].covers(f, true),
        "applied: no longer covered"
    );
    let b = read(&storage, f);
    let host = b.column(1).as_string::<i32>();
    let usage = b.column(4).as_primitive::<Float64Type>();
    let n = b.column(3).as_primitive::<Int64Type>();
    assert_eq!(
        (0..b.num_rows())
            .map(|i| (host.value(i), usage.value(i)))
            .collect::<Vec<_>>(),
        [("a", 5.0), ("c", 2.0)]
    );
    assert!(
        n.is_null(0),
        "the deleted point's other fields went with it"
    );
}
