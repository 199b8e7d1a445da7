use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch};

use super::*;
use crate::ingest::Applier;
use crate::precision::Precision;
use crate::schema::{DbSchema, TableSchema};
use crate::wal::WalBatch;

const COLUMNS: [(&str, ColumnType); 7] = [
    ("time", ColumnType::Time),
    ("host", ColumnType::Tag),
    ("region", ColumnType::Tag),
    ("usage", ColumnType::Float),
    ("n", ColumnType::Int),
    ("msg", ColumnType::String),
    ("extra", ColumnType::Float),
];

fn last_def(
    id: u64,
    keys: &[u32],
    values: Option<Vec<u32>>,
    count: usize,
    ttl: i64,
) -> LastCacheDef {
    LastCacheDef {
        id,
        name: Arc::from(format!("lvc{id}")),
        key_columns: keys.to_vec(),
        value_columns: values,
        count,
        ttl_ns: ttl,
    }
}

fn distinct_def(id: u64, columns: &[u32], max: usize, age: i64) -> DistinctCacheDef {
    DistinctCacheDef {
        id,
        name: Arc::from(format!("dvc{id}")),
        columns: columns.to_vec(),
        max_cardinality: max,
        max_age_ns: age,
    }
}

/// A catalog of one database with table `cpu` (the first `ncols` of [`COLUMNS`]) and caches.
fn catalog(
    version: u64,
    ncols: usize,
    last: Vec<LastCacheDef>,
    distinct: Vec<DistinctCacheDef>,
) -> CatalogSnapshot {
    let mut t = TableSchema::with_columns(0, "cpu", &COLUMNS[..ncols]);
    t.last_caches = last.into_iter().map(Arc::new).collect();
    t.distinct_caches = distinct.into_iter().map(Arc::new).collect();
    CatalogSnapshot::new(
        version,
        vec![Arc::new(DbSchema::new(
            0,
            Arc::from("db"),
            vec![Arc::new(t)],
        ))],
    )
}

/// Applies lines (nanosecond timestamps) to the buffer.
fn apply(buf: &mut ShardBuffer, cat: &CatalogSnapshot, lines: &str) {
    let batch = WalBatch {
        database_id: 0,
        precision: Precision::Nanosecond,
        default_time_ns: 5,
        line_count: lines.lines().count() as u32,
        lines,
    };
    let stats = Applier::default().apply(buf, cat, &batch, |_| true);
    assert_eq!(stats.skipped, 0, "{lines}");
}

/// Applies lines and feeds the caches at `now`, as the shard does.
fn write(
    caches: &mut ShardCaches,
    buf: &mut ShardBuffer,
    cat: &CatalogSnapshot,
    lines: &str,
    now: i64,
) {
    caches.sync(cat, &[buf], now);
    apply(buf, cat, lines);
    let _ = caches.feed(cat, buf, now);
}

fn table(cat: &CatalogSnapshot) -> &TableSchema {
    &cat.databases[0].tables[0]
}

fn strings(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let c = b.column_by_name(name).unwrap().as_string::<i32>();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i).to_string()))
        .collect()
}

fn floats(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let c = b
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i)))
        .collect()
}

fn ints(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let c = b.column_by_name(name).unwrap().as_primitive::<Int64Type>();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i)))
        .collect()
}

fn times(b: &RecordBatch) -> Vec<i64> {
    let c = b
        .column_by_name("time")
        .unwrap()
        .as_primitive::<TimestampNanosecondType>();
    c.values().to_vec()
}

fn host_filter(hosts: &[&str]) -> KeyFilter {
    KeyFilter {
        position: 0,
        values: hosts.iter().map(|h| KeyValue::Str(Arc::from(*h))).collect(),
    }
}

const HOUR: i64 = 3_600_000_000_000;

#[test]
fn last_values_per_key_newest_wins_and_keys_are_lookups() {
    let cat = catalog(1, 6, vec![last_def(1, &[1, 2], None, 1, HOUR)], vec![]);
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=a,region=eu usage=1,n=1i 100\n\
         cpu,host=b,region=eu usage=2,n=2i 100\n\
         cpu,host=a,region=eu usage=3 200\n\
         cpu,host=a,region=eu usage=9,n=9i 150\n\
         cpu,host=a,region=eu n=4i 200\n",
        1_000,
    );
    let c = caches.last_cache(0, 0, 1).unwrap();
    let cols: Vec<_> = last::output_columns(c.def(), table(&cat))
        .into_iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(cols, ["host", "region", "msg", "n", "usage", "time"]);
    let b = c
        .query(table(&cat), &[host_filter(&["a"])], None, 1_000)
        .unwrap();
    // 150 is older than 200: ignored. The second row at 200 adds n and keeps usage.
    assert_eq!(strings(&b, "host"), [Some("a".into())]);
    assert_eq!(floats(&b, "usage"), [Some(3.0)]);
    assert_eq!(ints(&b, "n"), [Some(4)]);
    assert_eq!(strings(&b, "msg"), [None]);
    assert_eq!(times(&b), [200]);
    let all = c.query(table(&cat), &[], None, 1_000).unwrap();
    assert_eq!(all.num_rows(), 2);
    let region = KeyFilter {
        position: 1,
        values: vec![KeyValue::Str("eu".into())],
    };
    let b = c
        .query(
            table(&cat),
            &[region, host_filter(&["b", "zz"])],
            Some(&[0, 4]),
            1_000,
        )
        .unwrap();
    assert_eq!(b.num_columns(), 2);
    assert_eq!(strings(&b, "host"), [Some("b".into())]);
    assert_eq!(floats(&b, "usage"), [Some(2.0)]);
    let none = c
        .query(table(&cat), &[host_filter(&["nope"])], None, 1_000)
        .unwrap();
    assert_eq!(none.num_rows(), 0);
}

#[test]
fn count_keeps_the_newest_in_descending_time() {
    let cat = catalog(
        1,
        4,
        vec![last_def(1, &[1], Some(vec![3]), 3, HOUR)],
        vec![],
    );
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    // Out of order, and more than 3 per host.
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=a usage=2 20\ncpu,host=a usage=4 40\ncpu,host=a usage=1 10\n\
         cpu,host=a usage=3 30\ncpu,host=b usage=7 70\ncpu,host=a usage=5 50\n",
        1_000,
    );
    let c = caches.last_cache(0, 0, 1).unwrap();
    let b = c
        .query(table(&cat), &[host_filter(&["a"])], None, 1_000)
        .unwrap();
    assert_eq!(times(&b), [50, 40, 30]);
    assert_eq!(floats(&b, "usage"), [Some(5.0), Some(4.0), Some(3.0)]);
    let b = c.query(table(&cat), &[], None, 1_000).unwrap();
    assert_eq!(b.num_rows(), 4);
    assert_eq!(b.num_columns(), 3, "host, usage, time");
}

#[test]
fn ttl_counts_from_arrival_and_eviction_compacts() {
    let cat = catalog(1, 4, vec![last_def(1, &[1], None, 2, 100)], vec![]);
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    // Timestamps far in the past still arrive now.
    write(&mut caches, &mut buf, &cat, "cpu,host=a usage=1 1\n", 1_000);
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=a usage=2 2\ncpu,host=b usage=3 3\n",
        1_050,
    );
    let t = table(&cat);
    let q = |c: &ShardCaches, now| {
        c.last_cache(0, 0, 1)
            .unwrap()
            .query(t, &[], None, now)
            .unwrap()
    };
    assert_eq!(times(&q(&caches, 1_099)), [2, 1, 3]);
    assert_eq!(
        times(&q(&caches, 1_100)),
        [2, 3],
        "the first value is 100 old"
    );
    assert_eq!(q(&caches, 1_150).num_rows(), 0);
    caches.evict(1_100);
    assert_eq!(caches.last_cache(0, 0, 1).unwrap().entries(), 2);
    caches.evict(1_150);
    assert_eq!(caches.last_cache(0, 0, 1).unwrap().entries(), 0);
    // An emptied entry fills again.
    write(&mut caches, &mut buf, &cat, "cpu,host=a usage=8 8\n", 2_000);
    assert_eq!(floats(&q(&caches, 2_000), "usage"), [Some(8.0)]);
}

#[test]
fn compaction_keeps_live_entries_findable() {
    let cat = catalog(1, 4, vec![last_def(1, &[1], None, 1, 100)], vec![]);
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    let old: String = (0..3000)
        .map(|i| format!("cpu,host=h{i} usage={i} 1\n"))
        .collect();
    write(&mut caches, &mut buf, &cat, &old, 0);
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=h7 usage=0.5 2\ncpu,host=new usage=1 2\n",
        500,
    );
    caches.evict(550);
    let c = caches.last_cache(0, 0, 1).unwrap();
    assert_eq!(c.entries(), 2);
    let b = c
        .query(table(&cat), &[host_filter(&["h7", "new", "h8"])], None, 550)
        .unwrap();
    assert_eq!(strings(&b, "host"), [Some("h7".into()), Some("new".into())]);
    // Rows after compaction find their (renumbered) entries.
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=h7 usage=0.75 3\n",
        560,
    );
    let c = caches.last_cache(0, 0, 1).unwrap();
    let b = c
        .query(table(&cat), &[host_filter(&["h7"])], None, 560)
        .unwrap();
    assert_eq!(floats(&b, "usage"), [Some(0.75)]);
    assert_eq!(c.entries(), 2);
}

#[test]
fn created_caches_backfill_and_follow_the_catalog() {
    let plain = catalog(1, 4, vec![], vec![]);
    let mut caches = ShardCaches::default();
    let mut frozen = ShardBuffer::default();
    apply(
        &mut frozen,
        &plain,
        "cpu,host=a usage=1 10\ncpu,host=b usage=2 10\n",
    );
    let mut active = ShardBuffer::default();
    apply(&mut active, &plain, "cpu,host=a usage=3 20\n");
    caches.sync(&plain, &[&frozen, &active], 1_000);
    assert!(caches.is_empty());

    let with = catalog(
        2,
        4,
        vec![last_def(1, &[1], None, 1, 100)],
        vec![distinct_def(2, &[1], 10, 100)],
    );
    caches.sync(&with, &[&frozen, &active], 50);
    let t = table(&with);
    let q = |c: &ShardCaches, now| {
        c.last_cache(0, 0, 1)
            .unwrap()
            .query(t, &[], None, now)
            .unwrap()
    };
    let b = q(&caches, 105);
    assert_eq!(strings(&b, "host"), [Some("a".into()), Some("b".into())]);
    assert_eq!(floats(&b, "usage"), [Some(3.0), Some(2.0)]);
    // Backfilled rows arrive when the cache is made, whatever their timestamps.
    assert_eq!(q(&caches, 149).num_rows(), 2);
    assert_eq!(q(&caches, 150).num_rows(), 0);
    assert_eq!(caches.distinct_cache(0, 0, 2).unwrap().len(), 2);

    // Rows the active buffer gains later are fed once.
    apply(&mut active, &with, "cpu,host=c usage=4 30\n");
    caches.feed(&with, &active, 100);
    caches.feed(&with, &active, 100);
    assert_eq!(q(&caches, 105).num_rows(), 3);
    // A new active buffer (the old one frozen) is followed from its first row.
    let mut next = ShardBuffer::default();
    apply(&mut next, &with, "cpu,host=d usage=5 40\n");
    caches.feed(&with, &next, 100);
    assert_eq!(q(&caches, 105).num_rows(), 4);

    // Dropped from the catalog: gone.
    let without = catalog(3, 4, vec![], vec![distinct_def(2, &[1], 10, 100)]);
    caches.sync(&without, &[&next], 100);
    assert_eq!(
        caches.last_cache(0, 0, 1).unwrap_err(),
        CacheError::NotFound(1)
    );
    assert_eq!(caches.distinct_cache(0, 0, 2).unwrap().len(), 4);
}

#[test]
fn new_columns_join_a_cache_without_listed_values() {
    let cat = catalog(
        1,
        4,
        vec![
            last_def(1, &[1], None, 1, HOUR),
            last_def(2, &[1], Some(vec![3]), 1, HOUR),
        ],
        vec![],
    );
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=a usage=1 10\n",
        1_000,
    );
    let wider = catalog(
        2,
        7,
        cat.databases[0].tables[0]
            .last_caches
            .iter()
            .map(|d| (**d).clone())
            .collect(),
        vec![],
    );
    write(
        &mut caches,
        &mut buf,
        &wider,
        "cpu,host=a usage=2,extra=5 20\n",
        1_000,
    );
    let t = table(&wider);
    let b = caches
        .last_cache(0, 0, 1)
        .unwrap()
        .query(t, &[], None, 1_000)
        .unwrap();
    assert_eq!(floats(&b, "extra"), [Some(5.0)]);
    let b = caches
        .last_cache(0, 0, 2)
        .unwrap()
        .query(t, &[], None, 1_000)
        .unwrap();
    assert!(
        b.column_by_name("extra").is_none(),
        "listed value columns stay as listed"
    );
}

#[test]
fn keys_may_be_fields() {
    // Key on an int field: rows are looked up by value, not by series.
    let cat = catalog(
        1,
        5,
        vec![last_def(1, &[4], Some(vec![3]), 1, HOUR)],
        vec![],
    );
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=a usage=1,n=1i 10\ncpu,host=b usage=2,n=1i 20\ncpu,host=a usage=3,n=2i 30\ncpu,host=c usage=4 40\n",
        1_000,
    );
    let b = caches
        .last_cache(0, 0, 1)
        .unwrap()
        .query(table(&cat), &[], None, 1_000)
        .unwrap();
    assert_eq!(ints(&b, "n"), [Some(1), Some(2), None]);
    assert_eq!(floats(&b, "usage"), [Some(2.0), Some(3.0), Some(4.0)]);
}

#[test]
fn distinct_values_filter_cap_and_age() {
    let cat = catalog(1, 6, vec![], vec![distinct_def(1, &[2, 1], 3, 100)]);
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=a,region=eu usage=1 1\ncpu,host=b,region=eu usage=1 1\ncpu,host=a,region=eu usage=2 2\n\
         cpu,host=c,region=us usage=1 1\n",
        1_000,
    );
    let c = caches.distinct_cache(0, 0, 1).unwrap();
    let t = table(&cat);
    let b = c.query(t, &[], None, 1_000).unwrap();
    assert_eq!(
        strings(&b, "region"),
        [Some("eu".into()), Some("eu".into()), Some("us".into())]
    );
    assert_eq!(
        strings(&b, "host"),
        [Some("a".into()), Some("b".into()), Some("c".into())]
    );
    assert_eq!(b.schema().field(2).name(), distinct::LAST_SEEN_COLUMN);
    let us = KeyFilter {
        position: 0,
        values: vec![KeyValue::Str("us".into())],
    };
    let b = c.query(t, &[us], Some(&[1]), 1_000).unwrap();
    assert_eq!(strings(&b, "host"), [Some("c".into())]);
    // A fourth combination later: the cap keeps the 3 newest in answers...
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=d,region=us usage=1 1\n",
        1_010,
    );
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=a,region=eu usage=1 1\n",
        1_020,
    );
    let c = caches.distinct_cache(0, 0, 1).unwrap();
    let b = c.query(t, &[], Some(&[1]), 1_020).unwrap();
    assert_eq!(b.num_rows(), 3);
    assert_eq!(strings(&b, "host").len(), 3);
    // ...and combinations not seen for max_age leave.
    caches.evict(1_105);
    let c = caches.distinct_cache(0, 0, 1).unwrap();
    assert_eq!(
        c.len(),
        2,
        "only d (1_010) and a (1_020) were seen within 100"
    );
    let b = c.query(t, &[], Some(&[1]), 1_105).unwrap();
    assert_eq!(strings(&b, "host"), [Some("a".into()), Some("d".into())]);
}

#[test]
fn distinct_cache_prunes_past_its_cardinality() {
    let cat = catalog(1, 4, vec![], vec![distinct_def(1, &[1], 8, HOUR)]);
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    for i in 0..20 {
        write(
            &mut caches,
            &mut buf,
            &cat,
            &format!("cpu,host=h{i:02} usage=1 1\n"),
            i,
        );
    }
    let c = caches.distinct_cache(0, 0, 1).unwrap();
    assert!(c.len() <= 8 + 1, "held {}", c.len());
    let b = c.query(table(&cat), &[], None, 20).unwrap();
    let hosts = strings(&b, "host");
    assert_eq!(hosts.len(), 8);
    assert!(
        hosts.iter().all(|h| h.as_deref().unwrap() >= "h12"),
        "{hosts:?}"
    );
}

#[test]
fn a_memory_limit_drops_the_entries_fed_longest_ago() {
    let cat = catalog(
        1,
        6,
        vec![last_def(1, &[1], None, 2, i64::MAX)],
        vec![distinct_def(2, &[1, 2], 1_000_000, i64::MAX)],
    );
    let batch = |from: usize, to: usize| -> String {
        (from..to)
            .map(|i| {
                format!(
                    "cpu,host=host-{i:06},region=r{} usage={i},msg=\"m{i}\" {i}\n",
                    i % 7
                )
            })
            .collect()
    };
    // The same rows without a limit, to size one.
    let mut unbounded = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    for b in 0..10 {
        write(
            &mut unbounded,
            &mut buf,
            &cat,
            &batch(b * 1000, (b + 1) * 1000),
            b as i64 * 10,
        );
    }
    let full = unbounded.memory_bytes();
    assert!(full > 1000 * 100, "{full}");
    assert_eq!(
        unbounded.enforce_memory_limit(),
        None,
        "no limit, nothing dropped"
    );

    let limit = full / 2;
    let mut caches = ShardCaches::with_memory_limit(Some(limit));
    let mut buf = ShardBuffer::default();
    let mut sheds = Vec::new();
    for b in 0..10 {
        caches.sync(&cat, &[&buf], b as i64 * 10);
        apply(&mut buf, &cat, &batch(b * 1000, (b + 1) * 1000));
        sheds.extend(caches.feed(&cat, &buf, b as i64 * 10));
        // Between measures growth is bounded by the headroom a shed leaves.
        let now = caches.memory_bytes();
        assert!(
            now <= limit + limit / 4,
            "batch {b}: {now} > {limit} + 1/4; {sheds:?}"
        );
    }
    assert!(!sheds.is_empty(), "the limit was reached while feeding");
    for shed in &sheds {
        assert_eq!(shed.limit, limit);
        assert!(
            shed.bytes_after <= limit && shed.bytes_after < shed.bytes_before,
            "{shed:?}"
        );
        assert!(shed.entries > 0);
    }
    if let Some(shed) = caches.evict(100) {
        assert!(shed.bytes_after <= limit);
    }
    assert!(caches.memory_bytes() <= limit);
    // The newest hosts are all there, the first ones went, and what is left answers right.
    let t = table(&cat);
    let lvc = caches.last_cache(0, 0, 1).unwrap();
    let newest = lvc
        .query(
            t,
            &[host_filter(&["host-009999", "host-009000", "host-000000"])],
            None,
            100,
        )
        .unwrap();
    assert_eq!(
        strings(&newest, "host"),
        [Some("host-009000".into()), Some("host-009999".into())]
    );
    assert_eq!(floats(&newest, "usage"), [Some(9000.0), Some(9999.0)]);
    let kept = lvc.entries();
    assert!((1000..10_000).contains(&kept), "{kept}");
    let all = lvc.query(t, &[], None, 100).unwrap();
    assert_eq!(all.num_rows(), kept);
    let dvc = caches.distinct_cache(0, 0, 2).unwrap();
    assert!((1000..10_000).contains(&dvc.len()), "{}", dvc.len());
    // Rows after a shed find their renumbered entries.
    write(
        &mut caches,
        &mut buf,
        &cat,
        "cpu,host=host-009999,region=r3 usage=0.5 20000\n",
        200,
    );
    let b = caches
        .last_cache(0, 0, 1)
        .unwrap()
        .query(t, &[host_filter(&["host-009999"])], None, 200)
        .unwrap();
    assert_eq!(floats(&b, "usage"), [Some(0.5), Some(9999.0)]);
}

/// A batch as the shard reads a file for its caches: `(host, usage, n, time)` rows.
fn file_batch(t: &TableSchema, rows: &[(&str, Option<f64>, Option<i64>, i64)]) -> RecordBatch {
    use arrow_array::{Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
    let ids: Vec<u32> = ["host", "usage", "n"]
        .iter()
        .map(|n| t.column(n).unwrap().id)
        .collect();
    let schema = files::read_schema(t, &ids);
    assert_eq!(
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["host", "usage", "n", "time"]
    );
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.3),
            )),
        ],
    )
    .unwrap()
}

#[test]
fn file_rows_fill_in_without_replacing_newer_writes() {
    let cat = catalog(
        1,
        6,
        vec![last_def(1, &[1], None, 2, 1_000)],
        vec![distinct_def(2, &[1], 10, 500)],
    );
    let t = table(&cat);
    let mut caches = ShardCaches::default();
    let mut buf = ShardBuffer::default();
    apply(
        &mut buf,
        &cat,
        "cpu,host=a usage=5 2000\ncpu,host=a usage=6 2100\n",
    );
    let backfills = caches.sync(&cat, &[&buf], 2_500);
    assert_eq!(
        backfills,
        [FileBackfill {
            database: 0,
            table: 0,
            last: vec![1],
            distinct: vec![2],
            columns: vec![1, 2, 3, 4, 5],
            since_ns: 1_500,
        }]
    );
    // Synced again at the same catalog version: nothing new to backfill.
    assert!(caches.sync(&cat, &[&buf], 2_600).is_empty());

    let file = file_batch(
        t,
        &[
            // host a: the same point as the buffer's newest (fills only n), and an older one
            // that is not among the 2 newest.
            ("a", Some(60.0), Some(7), 2100),
            ("a", Some(1.0), Some(1), 1900),
            // host b: only in the file; its row at 1400 is past the lvc's ttl and the
            // dvc's max age (arrival taken as its time), the one at 1800 past the dvc's only.
            ("b", Some(2.0), None, 1800),
            ("b", Some(3.0), None, 1400),
            // host c: too old for either cache.
            ("c", Some(4.0), None, 1000),
        ],
    );
    let (live, shed) = caches
        .feed_file(&cat, &backfills[0], &file, 0..file.num_rows(), 2_500)
        .unwrap();
    assert!(live);
    assert_eq!(shed, None);
    let b = caches
        .last_cache(0, 0, 1)
        .unwrap()
        .query(t, &[], None, 2_500)
        .unwrap();
    assert_eq!(
        strings(&b, "host"),
        [Some("a".into()), Some("a".into()), Some("b".into())]
    );
    assert_eq!(times(&b), [2100, 2000, 1800]);
    assert_eq!(floats(&b, "usage"), [Some(6.0), Some(5.0), Some(2.0)]);
    assert_eq!(ints(&b, "n"), [Some(7), None, None]);
    // File rows arrive at the backfill: they expire a ttl after it.
    assert_eq!(
        caches
            .last_cache(0, 0, 1)
            .unwrap()
            .query(t, &[], None, 3_500)
            .unwrap()
            .num_rows(),
        0
    );
    let d = caches
        .distinct_cache(0, 0, 2)
        .unwrap()
        .query(t, &[], None, 2_500)
        .unwrap();
    assert_eq!(strings(&d, "host"), [Some("a".into())]);

    // A backfill for caches that have since gone reports it, and feeds nothing.
    let gone = catalog(2, 6, vec![], vec![]);
    caches.sync(&gone, &[&buf], 2_600);
    let (live, _) = caches
        .feed_file(&gone, &backfills[0], &file, 0..file.num_rows(), 2_600)
        .unwrap();
    assert!(!live);
}
