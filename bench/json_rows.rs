//! JSON encoding of a lastpoint answer: 100,000 TSBS cpu rows (ten tags, ten integer fields,
//! `time`) in the 8,192-row batches the server encodes, through the server's encoder
//! (`query::format::Encoder`, which writes rows with `query::json_rows`) and through Arrow's
//! stock JSON writer for reference.
//!
//!     cargo bench --bench json_rows

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardline::query::format::{Encoder, Format};

const ROWS: usize = 100_000;
const BATCH_ROWS: usize = 8_192;

/// Tag names and how many distinct values each has, as in TSBS cpu.
const TAGS: [(&str, usize); 10] = [
    ("arch", 2),
    ("datacenter", 30),
    ("hostname", ROWS),
    ("os", 3),
    ("rack", 100),
    ("region", 10),
    ("service", 20),
    ("service_environment", 3),
    ("service_version", 2),
    ("team", 4),
];
const FIELDS: [&str; 10] = [
    "usage_guest",
    "usage_guest_nice",
    "usage_idle",
    "usage_iowait",
    "usage_irq",
    "usage_nice",
    "usage_softirq",
    "usage_steal",
    "usage_system",
    "usage_user",
];

fn batches() -> (SchemaRef, Vec<RecordBatch>) {
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (name, distinct) in TAGS {
        fields.push(Field::new(name, DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from_iter_values(
            (0..ROWS).map(|i| format!("{name}_{}", i % distinct)),
        )));
    }
    for (k, name) in FIELDS.iter().enumerate() {
        fields.push(Field::new(*name, DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from_iter_values(
            (0..ROWS).map(|i| ((i * 31 + k * 17) % 100) as i64),
        )));
    }
    fields.push(Field::new(
        "time",
        DataType::Timestamp(TimeUnit::Nanosecond, None),
        false,
    ));
    columns.push(Arc::new(TimestampNanosecondArray::from_iter_values(
        (0..ROWS).map(|i| 1_795_000_000_000_000_000 + i as i64 * 1_234_567),
    )));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let all = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let batches = (0..ROWS)
        .step_by(BATCH_ROWS)
        .map(|start| all.slice(start, BATCH_ROWS.min(ROWS - start)))
        .collect();
    (schema, batches)
}

fn bench(c: &mut Criterion) {
    let (schema, batches) = batches();
    let mut g = c.benchmark_group("lastpoint_json_100k_rows");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);
    g.bench_function("server_encoder", |b| {
        b.iter(|| {
            let mut e = Encoder::new(Format::Json, &schema).unwrap();
            let mut bytes = e.begin().len();
            for batch in &batches {
                bytes += e.batch(batch).unwrap().len();
            }
            bytes += e.finish(&schema).unwrap().len();
            black_box(bytes)
        })
    });
    g.bench_function("arrow_json_writer", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            let mut w = arrow::json::ArrayWriter::new(&mut out);
            for batch in &batches {
                w.write(batch).unwrap();
            }
            w.finish().unwrap();
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
