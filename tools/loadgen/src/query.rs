//! The query mode's workload: a weighted mix of query kinds, each rendered afresh per request
//! with a random host and a random time window inside the data's span.
//!
//! Built in are the TSBS cpu-only shapes in SQL (for `/api/v3/query_sql`) and InfluxQL (for
//! `/query` and `/api/v3/query_influxql`). A `--queries FILE` (JSON: `[{"name", "weight",
//! "query"}]`) brings its own, with placeholders `{host}`, `{hosts:N}` (N distinct quoted
//! hostnames, comma-separated), `{start}` and `{end}` (nanoseconds since the epoch, a
//! `--window` apart).

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::body::Request;
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Sql,
    Influxql,
}

#[derive(Debug, Clone)]
enum Template {
    Builtin(Builtin),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    SingleGroupby {
        fields: usize,
        hosts: usize,
        hours: i64,
    },
    CpuMaxAll {
        hosts: usize,
    },
    DoubleGroupby {
        fields: usize,
    },
    HighCpu {
        one_host: bool,
    },
    Lastpoint,
    GroupbyOrderbyLimit,
}

/// The built-in kinds, by TSBS name.
pub const BUILTIN: [&str; 12] = [
    "single-groupby-1-1-1",
    "single-groupby-1-1-12",
    "single-groupby-5-1-1",
    "single-groupby-5-8-1",
    "cpu-max-all-1",
    "cpu-max-all-8",
    "double-groupby-1",
    "double-groupby-all",
    "high-cpu-1",
    "high-cpu-all",
    "lastpoint",
    "groupby-orderby-limit",
];

/// The mix when none is given: one of each shape, minus the scans of everything.
pub const DEFAULT_MIX: &str =
    "single-groupby-1-1-1,single-groupby-5-8-1,cpu-max-all-8,double-groupby-1,high-cpu-1,lastpoint,groupby-orderby-limit";

fn builtin(name: &str) -> Option<Builtin> {
    Some(match name {
        "single-groupby-1-1-1" => Builtin::SingleGroupby {
            fields: 1,
            hosts: 1,
            hours: 1,
        },
        "single-groupby-1-1-12" => Builtin::SingleGroupby {
            fields: 1,
            hosts: 1,
            hours: 12,
        },
        "single-groupby-5-1-1" => Builtin::SingleGroupby {
            fields: 5,
            hosts: 1,
            hours: 1,
        },
        "single-groupby-5-8-1" => Builtin::SingleGroupby {
            fields: 5,
            hosts: 8,
            hours: 1,
        },
        "cpu-max-all-1" => Builtin::CpuMaxAll { hosts: 1 },
        "cpu-max-all-8" => Builtin::CpuMaxAll { hosts: 8 },
        "double-groupby-1" => Builtin::DoubleGroupby { fields: 1 },
        "double-groupby-all" => Builtin::DoubleGroupby { fields: 10 },
        "high-cpu-1" => Builtin::HighCpu { one_host: true },
        "high-cpu-all" => Builtin::HighCpu { one_host: false },
        "lastpoint" => Builtin::Lastpoint,
        "groupby-orderby-limit" => Builtin::GroupbyOrderbyLimit,
        _ => return None,
    })
}

use crate::data::CPU_FIELDS as FIELDS;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    name: String,
    #[serde(default = "one")]
    weight: f64,
    query: String,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone)]
struct Kind {
    name: String,
    template: Template,
}

/// Everything needed to make one query request.
#[derive(Debug)]
pub struct QueryMix {
    kinds: Vec<Kind>,
    cumulative: Vec<f64>,
    lang: Lang,
    /// `GET /api/v3/query_sql?db=...&q=` (the query follows).
    path_before_query: String,
    /// The rest of the request line and the head.
    head_after_query: String,
    hosts: u64,
    start_ns: i64,
    span_ns: i64,
    window_ns: i64,
}

#[derive(Debug, Clone)]
pub struct MixOptions<'a> {
    pub lang: Lang,
    /// `name=weight,...` over the built-in kinds.
    pub mix: &'a str,
    pub file: Option<&'a Path>,
    pub hosts: u64,
    pub start_ns: i64,
    pub span_ns: i64,
    pub window_ns: i64,
    pub path_before_query: String,
    pub head_after_query: String,
}

impl QueryMix {
    pub fn new(o: MixOptions<'_>) -> Result<QueryMix, String> {
        let mut kinds = Vec::new();
        let mut weights = Vec::new();
        if let Some(path) = o.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let queries: Vec<FileQuery> = serde_json::from_str(&text)
                .map_err(|e| format!("invalid query file {}: {e}", path.display()))?;
            for q in queries {
                kinds.push(Kind {
                    name: q.name,
                    template: Template::Text(q.query),
                });
                weights.push(q.weight);
            }
        } else {
            let mix = if o.mix == "all" {
                BUILTIN.join(",")
            } else {
                o.mix.to_string()
            };
            for part in mix.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, weight) = match part.split_once('=') {
                    Some((n, w)) => (
                        n,
                        w.parse::<f64>()
                            .map_err(|_| format!("invalid weight in --mix '{part}'"))?,
                    ),
                    None => (part, 1.0),
                };
                let b = builtin(name).ok_or_else(|| {
                    format!(
                        "unknown query kind '{name}'; built in are: {}",
                        BUILTIN.join(", ")
                    )
                })?;
                kinds.push(Kind {
                    name: name.to_string(),
                    template: Template::Builtin(b),
                });
                weights.push(weight);
            }
        }
        if kinds.is_empty() {
            return Err("no queries to run".into());
        }
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0
        {
            return Err("query weights must be non-negative and not all zero".into());
        }
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        if o.hosts == 0 || o.span_ns <= 0 || o.window_ns <= 0 {
            return Err("--hosts, --span and --window must be positive".into());
        }
        Ok(QueryMix {
            kinds,
            cumulative,
            lang: o.lang,
            path_before_query: o.path_before_query,
            head_after_query: o.head_after_query,
            hosts: o.hosts,
            start_ns: o.start_ns,
            span_ns: o.span_ns,
            window_ns: o.window_ns,
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.kinds.iter().map(|k| k.name.clone()).collect()
    }

    /// Draws a kind and renders its query as a complete request.
    pub fn request(&self, rng: &mut Rng) -> Request {
        let total = *self.cumulative.last().expect("at least one kind");
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let kind = self
            .cumulative
            .iter()
            .position(|c| x < *c)
            .unwrap_or(self.kinds.len() - 1);
        let q = self.render(kind, rng);
        let mut text = String::with_capacity(
            self.path_before_query.len() + q.len() * 2 + self.head_after_query.len(),
        );
        text.push_str(&self.path_before_query);
        text.extend(form_urlencoded::byte_serialize(q.as_bytes()));
        text.push_str(&self.head_after_query);
        Request {
            buf: text.into_bytes(),
            start: 0,
            lines: 0,
            kind: kind as u16,
        }
    }

    fn host(&self, rng: &mut Rng) -> String {
        format!("host_{}", rng.below(self.hosts))
    }

    fn hosts(&self, rng: &mut Rng, n: usize) -> Vec<String> {
        let n = n.min(self.hosts as usize);
        let mut picked: Vec<u64> = Vec::with_capacity(n);
        while picked.len() < n {
            let h = rng.below(self.hosts);
            if !picked.contains(&h) {
                picked.push(h);
            }
        }
        picked.into_iter().map(|h| format!("host_{h}")).collect()
    }

    /// A random window of `len` inside the span (the whole span when shorter).
    fn window(&self, rng: &mut Rng, len: i64) -> (i64, i64) {
        let len = len.min(self.span_ns);
        let start = self.start_ns + rng.below((self.span_ns - len) as u64 + 1) as i64;
        (start, start + len)
    }

    pub fn render(&self, kind: usize, rng: &mut Rng) -> String {
        match &self.kinds[kind].template {
            Template::Text(t) => self.render_text(t, rng),
            Template::Builtin(b) => self.render_builtin(*b, rng),
        }
    }

    fn render_text(&self, template: &str, rng: &mut Rng) -> String {
        let (start, end) = self.window(rng, self.window_ns);
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let name = &rest[open + 1..open + close];
            match name {
                "host" => out.push_str(&self.host(rng)),
                "start" => {
                    let _ = write!(out, "{start}");
                }
                "end" => {
                    let _ = write!(out, "{end}");
                }
                _ => match name
                    .strip_prefix("hosts:")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    Some(n) => out.push_str(&quoted_list(&self.hosts(rng, n))),
                    None => out.push_str(&rest[open..open + close + 1]),
                },
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }

    fn render_builtin(&self, b: Builtin, rng: &mut Rng) -> String {
        const HOUR: i64 = 3_600_000_000_000;
        let sql = self.lang == Lang::Sql;
        let range = |(s, e): (i64, i64)| {
            if sql {
                format!("time >= to_timestamp_nanos({s}) AND time < to_timestamp_nanos({e})")
            } else {
                format!("time >= {s} AND time < {e}")
            }
        };
        let host_filter = |hosts: &[String]| {
            if sql {
                if hosts.len() == 1 {
                    format!("hostname = '{}'", hosts[0])
                } else {
                    format!("hostname IN ({})", quoted_list(hosts))
                }
            } else {
                let parts: Vec<String> =
                    hosts.iter().map(|h| format!("hostname = '{h}'")).collect();
                format!("({})", parts.join(" OR "))
            }
        };
        let aggs = |f: &str, n: usize| -> String {
            FIELDS[..n]
                .iter()
                .map(|c| format!("{f}({c})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match b {
            Builtin::SingleGroupby {
                fields,
                hosts,
                hours,
            } => {
                let h = self.hosts(rng, hosts);
                let w = range(self.window(rng, hours * HOUR));
                if sql {
                    format!(
                        "SELECT date_bin(INTERVAL '1 minute', time) AS minute, {} FROM cpu WHERE {} AND {w} GROUP BY minute ORDER BY minute",
                        aggs("max", fields),
                        host_filter(&h)
                    )
                } else {
                    format!(
                        "SELECT {} FROM cpu WHERE {} AND {w} GROUP BY time(1m)",
                        aggs("max", fields),
                        host_filter(&h)
                    )
                }
            }
            Builtin::CpuMaxAll { hosts } => {
                let h = self.hosts(rng, hosts);
                let w = range(self.window(rng, 8 * HOUR));
                if sql {
                    format!(
                        "SELECT date_bin(INTERVAL '1 hour', time) AS hour, {} FROM cpu WHERE {} AND {w} GROUP BY hour ORDER BY hour",
                        aggs("max", 10),
                        host_filter(&h)
                    )
                } else {
                    format!(
                        "SELECT {} FROM cpu WHERE {} AND {w} GROUP BY time(1h)",
                        aggs("max", 10),
                        host_filter(&h)
                    )
                }
            }
            Builtin::DoubleGroupby { fields } => {
                let w = range(self.window(rng, 12 * HOUR));
                if sql {
                    format!(
                        "SELECT date_bin(INTERVAL '1 hour', time) AS hour, hostname, {} FROM cpu WHERE {w} GROUP BY hour, hostname ORDER BY hostname, hour",
                        aggs("avg", fields)
                    )
                } else {
                    format!(
                        "SELECT {} FROM cpu WHERE {w} GROUP BY time(1h), hostname",
                        aggs("mean", fields)
                    )
                }
            }
            Builtin::HighCpu { one_host } => {
                let w = range(self.window(rng, 12 * HOUR));
                let hf = if one_host {
                    format!(" AND {}", host_filter(&self.hosts(rng, 1)))
                } else {
                    String::new()
                };
                format!("SELECT * FROM cpu WHERE usage_user > 90{hf} AND {w}")
            }
            Builtin::Lastpoint => {
                if sql {
                    "SELECT c.* FROM cpu c JOIN (SELECT hostname, max(time) AS t FROM cpu GROUP BY hostname) l \
                     ON c.hostname = l.hostname AND c.time = l.t"
                        .to_string()
                } else {
                    "SELECT * FROM cpu GROUP BY hostname ORDER BY time DESC LIMIT 1".to_string()
                }
            }
            Builtin::GroupbyOrderbyLimit => {
                let (_, end) = self.window(rng, 0);
                if sql {
                    format!(
                        "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(usage_user) FROM cpu \
                         WHERE time < to_timestamp_nanos({end}) GROUP BY minute ORDER BY minute DESC LIMIT 5"
                    )
                } else {
                    format!("SELECT max(usage_user) FROM cpu WHERE time < {end} GROUP BY time(1m) ORDER BY time DESC LIMIT 5")
                }
            }
        }
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(lang: Lang, mix: &str) -> QueryMix {
        QueryMix::new(MixOptions {
            lang,
            mix,
            file: None,
            hosts: 100,
            start_ns: 1_000,
            span_ns: 7_200_000_000_000,
            window_ns: 3_600_000_000_000,
            path_before_query: "GET /q?q=".into(),
            head_after_query: " HTTP/1.1\r\n\r\n".into(),
        })
        .unwrap()
    }

    #[test]
    fn every_builtin_renders_in_both_languages() {
        for lang in [Lang::Sql, Lang::Influxql] {
            let m = mix(lang, "all");
            let mut rng = Rng::new(1);
            for k in 0..BUILTIN.len() {
                let q = m.render(k, &mut rng);
                assert!(q.starts_with("SELECT") && q.contains("cpu"), "{q}");
            }
        }
    }

    #[test]
    fn weights_pick_kinds_in_proportion() {
        let m = mix(Lang::Sql, "lastpoint=3,high-cpu-1=1");
        let mut rng = Rng::new(2);
        let mut n = [0u32; 2];
        for _ in 0..4000 {
            n[m.request(&mut rng).kind as usize] += 1;
        }
        assert!((2800..3200).contains(&n[0]), "{n:?}");
    }

    #[test]
    fn placeholders_fill_in_and_unknown_ones_stay() {
        let m = mix(Lang::Sql, "lastpoint");
        let mut rng = Rng::new(3);
        let q = m.render_text("a {host} b {hosts:3} c {start}-{end} {other}", &mut rng);
        let parts: Vec<&str> = q.split(' ').collect();
        assert!(parts[1].starts_with("host_"));
        assert_eq!(q.matches("'host_").count(), 3);
        let (s, e) = parts[7].split_once('-').unwrap();
        assert_eq!(
            e.parse::<i64>().unwrap() - s.parse::<i64>().unwrap(),
            3_600_000_000_000
        );
        assert!(q.ends_with("{other}"));
        assert!(QueryMix::new(MixOptions {
            mix: "nope",
            ..opts()
        })
        .is_err());
    }

    fn opts() -> MixOptions<'static> {
        MixOptions {
            lang: Lang::Sql,
            mix: "lastpoint",
            file: None,
            hosts: 1,
            start_ns: 0,
            span_ns: 1,
            window_ns: 1,
            path_before_query: String::new(),
            head_after_query: String::new(),
        }
    }
}
