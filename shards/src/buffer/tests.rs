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
