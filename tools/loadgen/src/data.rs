//! The data sets the write mode sends: TSBS-shaped `cpu`, `devops` and `iot`, and a user's
//! `--spec` file.
//!
//! A data set is a fixed list of series (their line-protocol prefix, `measurement,tags `, built
//! once) and a field schema per series. Point `p` is series `p % S` at tick `p / S`, so the
//! first N points are N distinct (series, timestamp) pairs whatever N is: a server's row count
//! can be checked against what was sent. `iot` permutes ticks within blocks of eight per series
//! (a bijection, so points stay distinct) to send timestamps out of order. Writing a point
//! appends to a caller's buffer and allocates nothing.

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::rng::Rng;

/// How a field's values are drawn.
#[derive(Debug, Clone)]
pub enum FieldKind {
    /// `0..max`, written with the `i` suffix.
    Int {
        max: u64,
    },
    /// `0..max`, written with the `u` suffix.
    Uint {
        max: u64,
    },
    /// `0..max` with two decimals.
    Float {
        max: u64,
    },
    Bool,
    /// One of the choices, quoted (already escaped).
    Str(Vec<Box<str>>),
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    /// The escaped key followed by `=`.
    key_eq: Box<[u8]>,
    kind: FieldKind,
    /// Probability the field is present in a line; below 1 makes it sparse.
    presence: f64,
}

impl FieldDef {
    fn new(key: &str, kind: FieldKind, presence: f64) -> FieldDef {
        let mut key_eq = escape(key, b",= ");
        key_eq.push('=');
        FieldDef {
            key_eq: key_eq.into_bytes().into_boxed_slice(),
            kind,
            presence,
        }
    }
}

/// One measurement's field list.
#[derive(Debug, Clone)]
pub struct Schema {
    pub measurement: String,
    fields: Vec<FieldDef>,
}

#[derive(Debug)]
pub struct Dataset {
    pub name: String,
    /// `measurement,tag=value,... ` per series, in series order.
    prefixes: Vec<Box<[u8]>>,
    /// Index into `schemas` per series.
    schema_of: Vec<u16>,
    schemas: Vec<Schema>,
    /// Time between two points of one series.
    pub interval_ns: i64,
    out_of_order: bool,
}

/// A `--spec` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub measurement: String,
    #[serde(default)]
    pub tags: Vec<SpecTag>,
    pub fields: Vec<SpecField>,
    /// Time between two points of one series, e.g. `10s` (default `10s`).
    pub interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecTag {
    pub name: String,
    pub cardinality: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecField {
    /// Defaults to `<type>_<n>`; with `count` > 1 the names get `_<n>` appended.
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub count: Option<u32>,
    /// Largest value (exclusive) for int, uint and float fields (default 100).
    pub max: Option<u64>,
    /// Choices for string fields (default `value_0` .. `value_9`).
    pub values: Option<Vec<String>>,
    /// Probability that the field is missing from a line (0 = always there).
    pub sparse: Option<f64>,
}

const PERMUTE8: [u64; 8] = [3, 7, 0, 5, 1, 6, 2, 4];

/// Most series a data set may have; each holds its prefix in memory.
pub const MAX_SERIES: u64 = 50_000_000;

impl Dataset {
    /// Series per tick: how many points share one timestamp.
    pub fn series(&self) -> u64 {
        self.prefixes.len() as u64
    }

    pub fn measurements(&self) -> Vec<String> {
        let mut names: Vec<String> = self.schemas.iter().map(|s| s.measurement.clone()).collect();
        names.dedup();
        names
    }

    /// The timestamp of `point`, in nanoseconds.
    pub fn timestamp_ns(&self, point: u64, start_ns: i64) -> i64 {
        let s = self.series();
        let (mut tick, slot) = (point / s, point % s);
        if self.out_of_order {
            tick = (tick & !7) | PERMUTE8[((tick + slot) & 7) as usize];
        }
        start_ns + tick as i64 * self.interval_ns
    }

    /// Appends the line of `point` (with its `\n`); `divisor` turns nanoseconds into the
    /// request's precision.
    #[inline]
    pub fn write_point(
        &self,
        point: u64,
        start_ns: i64,
        divisor: i64,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) {
        let slot = (point % self.series()) as usize;
        out.extend_from_slice(&self.prefixes[slot]);
        let schema = &self.schemas[self.schema_of[slot] as usize];
        let mut written = 0;
        for field in &schema.fields {
            if field.presence < 1.0 && !rng.chance(field.presence) {
                continue;
            }
            write_field(field, written > 0, rng, out);
            written += 1;
        }
        if written == 0 {
            // A line needs a field: a sparse schema that drew none writes its first.
            write_field(&schema.fields[0], false, rng, out);
        }
        out.push(b' ');
        let ts = self.timestamp_ns(point, start_ns) / divisor;
        out.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
        out.push(b'\n');
    }

    /// `cpu`: TSBS cpu-only, 10 tags and 10 integer fields per host.
    pub fn cpu(hosts: u64, seed: u64) -> Result<Dataset, String> {
        check_series(hosts)?;
        let schema = Schema {
            measurement: "cpu".into(),
            fields: CPU_FIELDS
                .iter()
                .map(|f| FieldDef::new(f, FieldKind::Int { max: 100 }, 1.0))
                .collect(),
        };
        let mut rng = Rng::new(seed);
        let prefixes = (0..hosts)
            .map(|h| prefix("cpu", &host_tags(&mut rng, h), ""))
            .collect();
        Ok(Dataset {
            name: "cpu".into(),
            prefixes,
            schema_of: vec![0; hosts as usize],
            schemas: vec![schema],
            interval_ns: 10_000_000_000,
            out_of_order: false,
        })
    }

    /// `devops`: TSBS devops, nine measurements per host.
    pub fn devops(hosts: u64, seed: u64) -> Result<Dataset, String> {
        check_series(hosts.saturating_mul(DEVOPS.len() as u64))?;
        let schemas: Vec<Schema> = DEVOPS
            .iter()
            .map(|(m, _, fields)| Schema {
                measurement: m.to_string(),
                fields: fields
                    .iter()
                    .map(|(name, float)| {
                        let kind = if *float {
                            FieldKind::Float { max: 100 }
                        } else {
                            FieldKind::Int { max: 1_000_000 }
                        };
                        FieldDef::new(name, kind, 1.0)
                    })
                    .collect(),
            })
            .collect();
        let mut rng = Rng::new(seed);
        let mut prefixes = Vec::with_capacity(hosts as usize * DEVOPS.len());
        let mut schema_of = Vec::with_capacity(prefixes.capacity());
        for h in 0..hosts {
            let tags = host_tags(&mut rng, h);
            for (i, (m, extra, _)) in DEVOPS.iter().enumerate() {
                prefixes.push(prefix(m, &tags, extra));
                schema_of.push(i as u16);
            }
        }
        Ok(Dataset {
            name: "devops".into(),
            prefixes,
            schema_of,
            schemas,
            interval_ns: 10_000_000_000,
            out_of_order: false,
        })
    }

    /// `iot`: TSBS iot trucks: float readings, diagnostics with strings and booleans, sparse
    /// fields, timestamps out of order.
    pub fn iot(trucks: u64, seed: u64) -> Result<Dataset, String> {
        check_series(trucks.saturating_mul(2))?;
        let readings = Schema {
            measurement: "readings".into(),
            fields: [
                ("latitude", 90),
                ("longitude", 180),
                ("elevation", 5000),
                ("velocity", 100),
                ("heading", 360),
                ("grade", 100),
                ("fuel_consumption", 50),
            ]
            .iter()
            .map(|(name, max)| FieldDef::new(name, FieldKind::Float { max: *max }, 0.9))
            .collect(),
        };
        let faults = ["none", "overheat", "low_oil", "brake_wear", "tire_pressure"];
        let diagnostics = Schema {
            measurement: "diagnostics".into(),
            fields: vec![
                FieldDef::new("load", FieldKind::Float { max: 5000 }, 0.9),
                FieldDef::new("fuel_state", FieldKind::Float { max: 1 }, 0.9),
                FieldDef::new("status", FieldKind::Int { max: 5 }, 1.0),
                FieldDef::new(
                    "fault",
                    FieldKind::Str(faults.iter().map(|f| (*f).into()).collect()),
                    0.5,
                ),
                FieldDef::new("engine_on", FieldKind::Bool, 1.0),
                FieldDef::new("moving", FieldKind::Bool, 0.8),
            ],
        };
        let mut rng = Rng::new(seed);
        let mut prefixes = Vec::with_capacity(trucks as usize * 2);
        for t in 0..trucks {
            let tags = format!(
                "name=truck_{t},fleet={},driver={},model={},device_version={}",
                pick(&mut rng, &["East", "West", "North", "South"]),
                pick(
                    &mut rng,
                    &["Albert", "Derek", "Rodney", "Trish", "Seth", "Andy"]
                ),
                pick(&mut rng, &["F-150", "G-2000", "H-2"]),
                pick(&mut rng, &["v1.0", "v1.5", "v2.0", "v2.3"]),
            );
            prefixes.push(prefix("readings", &tags, ""));
            prefixes.push(prefix("diagnostics", &tags, ""));
        }
        let schema_of = (0..trucks * 2).map(|i| (i % 2) as u16).collect();
        Ok(Dataset {
            name: "iot".into(),
            prefixes,
            schema_of,
            schemas: vec![readings, diagnostics],
            interval_ns: 10_000_000_000,
            out_of_order: true,
        })
    }

    /// A data set from a `--spec` file (JSON; see the README).
    pub fn from_spec_file(path: &Path) -> Result<Dataset, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read spec {}: {e}", path.display()))?;
        let spec: SpecFile = serde_json::from_str(&text)
            .map_err(|e| format!("invalid spec {}: {e}", path.display()))?;
        Dataset::from_spec(&spec)
    }

    pub fn from_spec(spec: &SpecFile) -> Result<Dataset, String> {
        if spec.measurement.is_empty() {
            return Err("spec: measurement must not be empty".into());
        }
        let mut series: u64 = 1;
        for tag in &spec.tags {
            if tag.cardinality == 0 || tag.name.is_empty() {
                return Err(format!(
                    "spec: tag '{}' needs a name and a cardinality of at least 1",
                    tag.name
                ));
            }
            series = series.saturating_mul(tag.cardinality);
        }
        check_series(series)?;
        let mut fields = Vec::new();
        for (i, f) in spec.fields.iter().enumerate() {
            let count = f.count.unwrap_or(1);
            let presence = 1.0 - f.sparse.unwrap_or(0.0);
            if !(0.0..=1.0).contains(&presence) {
                return Err(format!("spec: field {i}: sparse must be between 0 and 1"));
            }
            let max = f.max.unwrap_or(100).max(1);
            let kind = match f.kind.as_str() {
                "int" | "integer" => FieldKind::Int { max },
                "uint" | "unsigned" => FieldKind::Uint { max },
                "float" => FieldKind::Float { max },
                "bool" | "boolean" => FieldKind::Bool,
                "string" => {
                    let values = f
                        .values
                        .clone()
                        .unwrap_or_else(|| (0..10).map(|v| format!("value_{v}")).collect());
                    if values.is_empty() {
                        return Err(format!("spec: field {i}: values must not be empty"));
                    }
                    FieldKind::Str(
                        values
                            .iter()
                            .map(|v| escape(v, b"\"\\").into_boxed_str())
                            .collect(),
                    )
                }
                other => {
                    return Err(format!(
                        "spec: field {i}: unknown type '{other}' (int, uint, float, bool, string)"
                    ))
                }
            };
            let base = f.name.clone().unwrap_or_else(|| format!("{}_{i}", f.kind));
            for n in 0..count {
                let name = if count > 1 {
                    format!("{base}_{n}")
                } else {
                    base.clone()
                };
                fields.push(FieldDef::new(&name, kind.clone(), presence));
            }
        }
        if fields.is_empty() {
            return Err("spec: at least one field is needed".into());
        }
        let interval_ns = match &spec.interval {
            Some(text) => shardline_units::parse_duration(text)
                .map_err(|e| format!("spec: interval: {e}"))?
                .as_nanos() as i64,
            None => 10_000_000_000,
        };
        if interval_ns <= 0 {
            return Err("spec: interval must be positive".into());
        }
        let mut prefixes = Vec::with_capacity(series as usize);
        let mut tags = String::new();
        for s in 0..series {
            tags.clear();
            let mut rest = s;
            for tag in &spec.tags {
                let value = rest % tag.cardinality;
                rest /= tag.cardinality;
                if !tags.is_empty() {
                    tags.push(',');
                }
                let name = escape(&tag.name, b",= ");
                let _ = write!(tags, "{name}={name}_{value}");
            }
            prefixes.push(prefix(&spec.measurement, &tags, ""));
        }
        Ok(Dataset {
            name: format!("spec:{}", spec.measurement),
            prefixes,
            schema_of: vec![0; series as usize],
            schemas: vec![Schema {
                measurement: spec.measurement.clone(),
                fields,
            }],
            interval_ns,
            out_of_order: false,
        })
    }
}

fn check_series(series: u64) -> Result<(), String> {
    if series == 0 || series > MAX_SERIES {
        return Err(format!(
            "a data set needs between 1 and {MAX_SERIES} series, not {series}"
        ));
    }
    Ok(())
}

#[inline]
fn write_field(field: &FieldDef, comma: bool, rng: &mut Rng, out: &mut Vec<u8>) {
    if comma {
        out.push(b',');
    }
    out.extend_from_slice(&field.key_eq);
    let mut digits = itoa::Buffer::new();
    match &field.kind {
        FieldKind::Int { max } => {
            out.extend_from_slice(digits.format(rng.below(*max)).as_bytes());
            out.push(b'i');
        }
        FieldKind::Uint { max } => {
            out.extend_from_slice(digits.format(rng.below(*max)).as_bytes());
            out.push(b'u');
        }
        FieldKind::Float { max } => {
            let hundredths = rng.below(max * 100);
            out.extend_from_slice(digits.format(hundredths / 100).as_bytes());
            let frac = hundredths % 100;
            out.extend_from_slice(&[b'.', b'0' + (frac / 10) as u8, b'0' + (frac % 10) as u8]);
        }
        FieldKind::Bool => {
            out.extend_from_slice(if rng.below(2) == 0 { b"false" } else { b"true" })
        }
        FieldKind::Str(choices) => {
            out.push(b'"');
            out.extend_from_slice(choices[rng.below(choices.len() as u64) as usize].as_bytes());
            out.push(b'"');
        }
    }
}

/// Backslash-escapes the bytes line protocol treats as syntax in this position.
fn escape(text: &str, special: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && special.contains(&(c as u8)) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn prefix(measurement: &str, tags: &str, extra: &str) -> Box<[u8]> {
    let mut p = escape(measurement, b", ");
    for part in [tags, extra] {
        if !part.is_empty() {
            p.push(',');
            p.push_str(part);
        }
    }
    p.push(' ');
    p.into_bytes().into_boxed_slice()
}

fn pick<'a>(rng: &mut Rng, choices: &[&'a str]) -> &'a str {
    choices[rng.below(choices.len() as u64) as usize]
}

/// The TSBS cpu measurement's fields (the query mode's shapes use them too).
pub const CPU_FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// The TSBS host tags: hostname plus nine drawn per host.
fn host_tags(rng: &mut Rng, host: u64) -> String {
    const REGIONS: [(&str, &[&str]); 9] = [
        (
            "us-east-1",
            &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
        ),
        ("us-west-1", &["us-west-1a", "us-west-1b"]),
        ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
        ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
        ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
        ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
        ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
        ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
        ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
    ];
    let (region, dcs) = REGIONS[rng.below(REGIONS.len() as u64) as usize];
    format!(
        "hostname=host_{host},region={region},datacenter={},rack={},os={},arch={},team={},service={},service_version={},service_environment={}",
        pick(rng, dcs),
        rng.below(100),
        pick(rng, &["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"]),
        pick(rng, &["x64", "x86"]),
        pick(rng, &["SF", "NYC", "LON", "CHI"]),
        rng.below(20),
        rng.below(2),
        pick(rng, &["production", "staging", "test"]),
    )
}

type DevopsMeasurement = (&'static str, &'static str, &'static [(&'static str, bool)]);

/// TSBS devops measurements: name, extra tags, fields (true: float).
const DEVOPS: [DevopsMeasurement; 9] = [
    (
        "cpu",
        "",
        &[
            ("usage_user", true),
            ("usage_system", true),
            ("usage_idle", true),
            ("usage_nice", true),
            ("usage_iowait", true),
            ("usage_irq", true),
            ("usage_softirq", true),
            ("usage_steal", true),
            ("usage_guest", true),
            ("usage_guest_nice", true),
        ],
    ),
    (
        "diskio",
        "serial=123-456-789",
        &[
            ("reads", false),
            ("writes", false),
            ("read_bytes", false),
            ("write_bytes", false),
            ("read_time", false),
            ("write_time", false),
            ("io_time", false),
        ],
    ),
    (
        "disk",
        "path=/dev/sda1,fstype=ext4",
        &[
            ("total", false),
            ("free", false),
            ("used", false),
            ("used_percent", true),
            ("inodes_total", false),
            ("inodes_free", false),
            ("inodes_used", false),
        ],
    ),
    (
        "kernel",
        "",
        &[
            ("boot_time", false),
            ("interrupts", false),
            ("context_switches", false),
            ("processes_forked", false),
            ("disk_pages_in", false),
            ("disk_pages_out", false),
        ],
    ),
    (
        "mem",
        "",
        &[
            ("total", false),
            ("available", false),
            ("used", false),
            ("free", false),
            ("cached", false),
            ("buffered", false),
            ("used_percent", true),
            ("available_percent", true),
            ("buffered_percent", true),
        ],
    ),
    (
        "net",
        "interface=eth0",
        &[
            ("bytes_sent", false),
            ("bytes_recv", false),
            ("packets_sent", false),
            ("packets_recv", false),
            ("err_in", false),
            ("err_out", false),
            ("drop_in", false),
            ("drop_out", false),
        ],
    ),
    (
        "nginx",
        "port=80,server=nginx_1",
        &[
            ("accepts", false),
            ("active", false),
            ("handled", false),
            ("reading", false),
            ("requests", false),
            ("waiting", false),
            ("writing", false),
        ],
    ),
    (
        "postgresl",
        "",
        &[
            ("numbackends", false),
            ("xact_commit", false),
            ("xact_rollback", false),
            ("blks_read", false),
            ("blks_hit", false),
            ("tup_returned", false),
            ("tup_fetched", false),
            ("tup_inserted", false),
            ("tup_updated", false),
            ("tup_deleted", false),
            ("conflicts", false),
            ("temp_files", false),
            ("temp_bytes", false),
            ("deadlocks", false),
            ("blk_read_time", false),
            ("blk_write_time", false),
        ],
    ),
    (
        "redis",
        "port=6379,server=redis_1",
        &[
            ("uptime_in_seconds", false),
            ("total_connections_received", false),
            ("expired_keys", false),
            ("evicted_keys", false),
            ("keyspace_hits", false),
            ("keyspace_misses", false),
            ("instantaneous_ops_per_sec", false),
            ("instantaneous_input_kbps", false),
            ("instantaneous_output_kbps", false),
            ("connected_clients", false),
            ("used_memory", false),
            ("used_memory_rss", false),
            ("used_memory_peak", false),
            ("used_memory_lua", false),
            ("rdb_changes_since_last_save", false),
            ("sync_full", false),
            ("sync_partial_ok", false),
            ("sync_partial_err", false),
            ("pubsub_channels", false),
            ("pubsub_patterns", false),
            ("latest_fork_usec", false),
            ("connected_slaves", false),
            ("master_repl_offset", false),
            ("mem_fragmentation_ratio", true),
        ],
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use shardline_shards::lp::{FieldValue, LineParser};

    use super::*;

    /// Parses `n` points of `d` with Shardline's own parser: every line must parse, and no two
    /// may share series and timestamp. Returns the distinct field value kinds seen.
    fn check(d: &Dataset, n: u64, divisor: i64) -> HashSet<&'static str> {
        let mut body = Vec::new();
        let mut rng = Rng::new(9);
        for p in 0..n {
            d.write_point(p, 1_700_000_000_000_000_000, divisor, &mut rng, &mut body);
        }
        let text = std::str::from_utf8(&body).unwrap();
        let mut parser = LineParser::new(text);
        let mut points = HashSet::new();
        let mut kinds = HashSet::new();
        let mut lines = 0;
        let mut last_ts = i64::MIN;
        let mut out_of_order = false;
        while let Some(line) = parser.next_line() {
            let line = line.unwrap_or_else(|e| panic!("{}: {e}", d.name));
            let ts = line.timestamp.expect("every line has a timestamp");
            out_of_order |= ts < last_ts;
            last_ts = ts;
            let mut key = line.measurement.raw.to_string();
            for t in parser.tags() {
                key.push_str(&format!(",{}={}", t.key.raw, t.value.raw));
            }
            assert!(
                points.insert((key, ts)),
                "{}: duplicate point at line {}",
                d.name,
                lines + 1
            );
            for f in parser.fields() {
                kinds.insert(match f.value {
                    FieldValue::F64(_) => "float",
                    FieldValue::I64(_) => "int",
                    FieldValue::U64(_) => "uint",
                    FieldValue::Bool(_) => "bool",
                    FieldValue::Str(_) => "string",
                });
            }
            lines += 1;
        }
        assert_eq!(lines, n, "{}", d.name);
        assert_eq!(
            out_of_order, d.out_of_order,
            "{}: out-of-order timestamps",
            d.name
        );
        kinds
    }

    #[test]
    fn builtin_data_sets_parse_with_shardlines_parser_and_points_are_distinct() {
        assert_eq!(
            check(&Dataset::cpu(50, 1).unwrap(), 5_003, 1),
            HashSet::from(["int"])
        );
        let devops = Dataset::devops(20, 1).unwrap();
        assert_eq!(devops.measurements().len(), 9);
        assert_eq!(
            check(&devops, 4_001, 1_000_000_000),
            HashSet::from(["int", "float"])
        );
        let iot = Dataset::iot(30, 1).unwrap();
        assert_eq!(
            check(&iot, 3_333, 1),
            HashSet::from(["float", "int", "string", "bool"])
        );
    }

    #[test]
    fn sparse_fields_are_sometimes_missing() {
        let iot = Dataset::iot(1, 1).unwrap();
        let mut rng = Rng::new(1);
        let mut lens = HashSet::new();
        for p in (0..200).step_by(2) {
            let mut line = Vec::new();
            iot.write_point(p, 0, 1, &mut rng, &mut line);
            lens.insert(line.iter().filter(|&&b| b == b',').count());
        }
        assert!(
            lens.len() > 2,
            "readings should vary in field count: {lens:?}"
        );
    }

    #[test]
    fn spec_files_build_every_series_and_escape_names() {
        let spec: SpecFile = serde_json::from_str(
            r#"{"measurement": "air quality", "interval": "1s",
                "tags": [{"name": "site", "cardinality": 3}, {"name": "sensor id", "cardinality": 4}],
                "fields": [{"name": "pm25", "type": "float"}, {"type": "int", "count": 2},
                           {"name": "state", "type": "string", "values": ["ok", "say \"hi\""], "sparse": 0.5},
                           {"name": "on", "type": "bool"}, {"name": "n", "type": "uint", "max": 7}]}"#,
        )
        .unwrap();
        let d = Dataset::from_spec(&spec).unwrap();
        assert_eq!(d.series(), 12);
        assert_eq!(check(&d, 1_000, 1_000_000_000).len(), 5);
        assert!(Dataset::from_spec(
            &serde_json::from_str(r#"{"measurement": "m", "fields": []}"#).unwrap()
        )
        .is_err());
        assert!(Dataset::from_spec(
            &serde_json::from_str(r#"{"measurement": "m", "fields": [{"type": "decimal"}]}"#)
                .unwrap()
        )
        .is_err());
    }
}
