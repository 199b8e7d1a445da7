//! InfluxQL's functions, as 1.x defines them: aggregates and selectors over the points of one
//! bucket of one series, transformations over a series, and the math functions over one value.
//!
//! Invariants: inputs are one series' non-null points in time order; selectors return the
//! selected points' own times, aggregates none (the caller gives them the bucket's time).

use std::collections::HashMap;

use super::values::V;
use super::InfluxQlError;

/// A point: its time and value.
pub type Point = (i64, V);

/// What a call computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One value per bucket, at the bucket's time.
    Aggregate,
    /// One (or, for top/bottom/sample, several) of the bucket's points, with its time.
    Selector,
    /// A new series from a series.
    Transform,
    /// A function of one value.
    Math,
}

pub fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "count" | "sum" | "mean" | "median" | "mode" | "spread" | "stddev" | "distinct"
        | "integral" => Kind::Aggregate,
        "first" | "last" | "min" | "max" | "percentile" | "top" | "bottom" | "sample" => {
            Kind::Selector
        }
        "derivative"
        | "non_negative_derivative"
        | "difference"
        | "non_negative_difference"
        | "moving_average"
        | "cumulative_sum"
        | "elapsed" => Kind::Transform,
        "abs" | "ceil" | "floor" | "round" | "sqrt" | "pow" | "ln" | "log" | "log2" | "log10"
        | "exp" | "sin" | "cos" | "tan" | "asin" | "acos" | "atan" | "atan2" => Kind::Math,
        _ => return None,
    })
}

fn unsupported(name: &str, v: &V) -> InfluxQlError {
    let ty = match v {
        V::S(_) => "*query.stringInterruptIterator",
        V::B(_) => "*query.booleanInterruptIterator",
        _ => "unknown",
    };
    InfluxQlError::Invalid(format!("unsupported {name} iterator type: {ty}"))
}

fn numeric<'a>(name: &str, points: &'a [Point]) -> Result<&'a [Point], InfluxQlError> {
    if let Some((_, v)) = points.iter().find(|(_, v)| !v.is_numeric()) {
        return Err(unsupported(name, v));
    }
    Ok(points)
}

/// An aggregate or selector over one bucket's points. `arg` is its second argument where it
/// takes one (`percentile`'s rank, `top`'s count, `integral`'s unit).
pub fn reduce(name: &str, points: &[Point], arg: Option<&V>) -> Result<Vec<Point>, InfluxQlError> {
    let none = Ok(Vec::new());
    let at0 = |v: V| Ok(vec![(0, v)]);
    match name {
        "count" => at0(V::I(points.len() as i64)),
        _ if points.is_empty() => none,
        "sum" => {
            let points = numeric(name, points)?;
            if points.iter().all(|(_, v)| matches!(v, V::I(_))) {
                let s = points.iter().fold(0i64, |s, (_, v)| match v {
                    V::I(i) => s.wrapping_add(*i),
                    _ => s,
                });
                return at0(V::I(s));
            }
            if points.iter().all(|(_, v)| matches!(v, V::U(_))) {
                let s = points.iter().fold(0u64, |s, (_, v)| match v {
                    V::U(u) => s.wrapping_add(*u),
                    _ => s,
                });
                return at0(V::U(s));
            }
            at0(V::F(points.iter().filter_map(|(_, v)| v.as_f64()).sum()))
        }
        "mean" => {
            let points = numeric(name, points)?;
            let sum: f64 = points.iter().filter_map(|(_, v)| v.as_f64()).sum();
            at0(V::F(sum / points.len() as f64))
        }
        "median" => {
            let points = numeric(name, points)?;
            let mut xs: Vec<f64> = points.iter().filter_map(|(_, v)| v.as_f64()).collect();
            xs.sort_by(|a, b| a.total_cmp(b));
            let n = xs.len();
            let m = if n % 2 == 1 {
                xs[n / 2]
            } else {
                xs[n / 2 - 1] + (xs[n / 2] - xs[n / 2 - 1]) / 2.0
            };
            at0(V::F(m))
        }
        "mode" => {
            // The most frequent value; among equally frequent ones, the first seen.
            let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
            for (i, (_, v)) in points.iter().enumerate() {
                let e = counts.entry(format!("{v:?}")).or_insert((0, i));
                e.0 += 1;
            }
            let (_, &(_, first)) = counts
                .iter()
                .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
                .expect("points is not empty");
            at0(points[first].1.clone())
        }
        "spread" => {
            let points = numeric(name, points)?;
            let min = points.iter().min_by(|a, b| a.1.cmp_num(&b.1)).unwrap();
            let max = points.iter().max_by(|a, b| a.1.cmp_num(&b.1)).unwrap();
            at0(match (&min.1, &max.1) {
                (V::I(a), V::I(b)) => V::I(b - a),
                (V::U(a), V::U(b)) => V::U(b - a),
                (a, b) => V::F(b.as_f64().unwrap_or(0.0) - a.as_f64().unwrap_or(0.0)),
            })
        }
        "stddev" => {
            let points = numeric(name, points)?;
            if points.len() < 2 {
                return at0(V::Null);
            }
            let xs: Vec<f64> = points.iter().filter_map(|(_, v)| v.as_f64()).collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
            at0(V::F(var.sqrt()))
        }
        "distinct" => {
            let mut seen = std::collections::HashSet::new();
            Ok(points
                .iter()
                .filter(|(_, v)| seen.insert(format!("{v:?}")))
                .map(|(_, v)| (0, v.clone()))
                .collect())
        }
        "integral" => {
            let points = numeric(name, points)?;
            let unit = match arg {
                Some(V::I(d)) if *d > 0 => *d as f64,
                _ => 1e9,
            };
            let mut area = 0.0;
            for w in points.windows(2) {
                let (t0, v0) = (w[0].0, w[0].1.as_f64().unwrap_or(0.0));
                let (t1, v1) = (w[1].0, w[1].1.as_f64().unwrap_or(0.0));
                area += (v0 + v1) / 2.0 * (t1 - t0) as f64 / unit;
            }
            at0(V::F(area))
        }
        "first" => Ok(vec![points[0].clone()]),
        "last" => Ok(vec![points[points.len() - 1].clone()]),
        "min" | "max" => {
            // Booleans order false before true; strings are refused.
            let all_bool = points.iter().all(|(_, v)| matches!(v, V::B(_)));
            let points = if all_bool {
                points
            } else {
                numeric(name, points)?
            };
            // The earliest of equal values.
            let mut best = &points[0];
            for p in &points[1..] {
                let ord = p.1.cmp_num(&best.1);
                let better = if name == "min" {
                    ord.is_lt()
                } else {
                    ord.is_gt()
                };
                if better {
                    best = p;
                }
            }
            Ok(vec![best.clone()])
        }
        "percentile" => {
            let points = numeric(name, points)?;
            let p = arg.and_then(V::as_f64).unwrap_or(50.0);
            let mut sorted: Vec<&Point> = points.iter().collect();
            sorted.sort_by(|a, b| a.1.cmp_num(&b.1).then(a.0.cmp(&b.0)));
            let i = (sorted.len() as f64 * p / 100.0 + 0.5).floor() as i64 - 1;
            if i < 0 || i as usize >= sorted.len() {
                return none;
            }
            Ok(vec![sorted[i as usize].clone()])
        }
        "top" | "bottom" => {
            let points = numeric(name, points)?;
            let n = match arg {
                Some(V::I(n)) if *n > 0 => *n as usize,
                _ => 1,
            };
            let mut ranked: Vec<&Point> = points.iter().collect();
            ranked.sort_by(|a, b| {
                let by_value = a.1.cmp_num(&b.1);
                let by_value = if name == "top" {
                    by_value.reverse()
                } else {
                    by_value
                };
                by_value.then(a.0.cmp(&b.0))
            });
            ranked.truncate(n);
            ranked.sort_by_key(|p| p.0);
            Ok(ranked.into_iter().cloned().collect())
        }
        "sample" => {
            let n = match arg {
                Some(V::I(n)) if *n > 0 => *n as usize,
                _ => 1,
            };
            if points.len() <= n {
                return Ok(points.to_vec());
            }
            // Evenly spaced points stand in for 1.x's random sample (not reproducible there).
            let step = points.len() as f64 / n as f64;
            Ok((0..n)
                .map(|k| points[(k as f64 * step) as usize].clone())
                .collect())
        }
        other => Err(InfluxQlError::Invalid(format!(
            "undefined function {other}()"
        ))),
    }
}

/// A transformation over a series (non-null points in time order). `arg` is its unit or
/// window where it takes one.
pub fn transform(
    name: &str,
    points: &[Point],
    arg: Option<&V>,
) -> Result<Vec<Point>, InfluxQlError> {
    let unit = |default: i64| match arg {
        Some(V::I(d)) if *d > 0 => *d,
        _ => default,
    };
    let mut out = Vec::new();
    match name {
        "derivative" | "non_negative_derivative" => {
            let unit = unit(1_000_000_000) as f64;
            let points = numeric(name, points)?;
            for w in points.windows(2) {
                let dt = (w[1].0 - w[0].0) as f64 / unit;
                if dt == 0.0 {
                    continue;
                }
                let dv = w[1].1.as_f64().unwrap_or(0.0) - w[0].1.as_f64().unwrap_or(0.0);
                let d = dv / dt;
                if name == "derivative" || d >= 0.0 {
                    out.push((w[1].0, V::F(d)));
                }
            }
        }
        "difference" | "non_negative_difference" => {
            let points = numeric(name, points)?;
            for w in points.windows(2) {
                let d = match (&w[0].1, &w[1].1) {
                    (V::I(a), V::I(b)) => V::I(b.wrapping_sub(*a)),
                    (a, b) => V::F(b.as_f64().unwrap_or(0.0) - a.as_f64().unwrap_or(0.0)),
                };
                let keep = name == "difference" || d.as_f64().is_some_and(|x| x >= 0.0);
                if keep {
                    out.push((w[1].0, d));
                }
            }
        }
        "moving_average" => {
            let points = numeric(name, points)?;
            let n = match arg {
                Some(V::I(n)) if *n > 0 => *n as usize,
                _ => 1,
            };
            for w in points.windows(n) {
                let s: f64 = w.iter().filter_map(|(_, v)| v.as_f64()).sum();
                out.push((w[n - 1].0, V::F(s / n as f64)));
            }
        }
        "cumulative_sum" => {
            let points = numeric(name, points)?;
            let ints = points.iter().all(|(_, v)| matches!(v, V::I(_)));
            let (mut si, mut sf) = (0i64, 0f64);
            for (t, v) in points {
                if ints {
                    if let V::I(i) = v {
                        si = si.wrapping_add(*i);
                    }
                    out.push((*t, V::I(si)));
                } else {
                    sf += v.as_f64().unwrap_or(0.0);
                    out.push((*t, V::F(sf)));
                }
            }
        }
        "elapsed" => {
            let unit = unit(1);
            for w in points.windows(2) {
                out.push((w[1].0, V::I((w[1].0 - w[0].0) / unit)));
            }
        }
        other => {
            return Err(InfluxQlError::Invalid(format!(
                "undefined function {other}()"
            )))
        }
    }
    Ok(out)
}

/// A math function of one value (and a second for `pow`, `log`, `atan2`).
pub fn math(name: &str, x: &V, y: Option<&V>) -> V {
    let Some(a) = x.as_f64() else {
        return V::Null;
    };
    let b = y.and_then(V::as_f64);
    let r = match name {
        "abs" => match x {
            V::I(i) => return V::I(i.wrapping_abs()),
            V::U(_) => return x.clone(),
            _ => a.abs(),
        },
        "ceil" | "floor" | "round" if !matches!(x, V::F(_)) => return x.clone(),
        "ceil" => a.ceil(),
        "floor" => a.floor(),
        // Go rounds half away from zero, as Rust's `round` does.
        "round" => a.round(),
        "sqrt" => a.sqrt(),
        "pow" => a.powf(b.unwrap_or(f64::NAN)),
        "ln" => a.ln(),
        "log" => a.ln() / b.unwrap_or(f64::NAN).ln(),
        "log2" => a.log2(),
        "log10" => a.log10(),
        "exp" => a.exp(),
        "sin" => a.sin(),
        "cos" => a.cos(),
        "tan" => a.tan(),
        "asin" => a.asin(),
        "acos" => a.acos(),
        "atan" => a.atan(),
        "atan2" => a.atan2(b.unwrap_or(f64::NAN)),
        _ => return V::Null,
    };
    if r.is_finite() {
        V::F(r)
    } else {
        V::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(vals: &[(i64, f64)]) -> Vec<Point> {
        vals.iter().map(|&(t, v)| (t, V::F(v))).collect()
    }

    #[test]
    fn aggregates() {
        let p = pts(&[(1, 3.0), (2, 1.0), (3, 2.0), (4, 1.0)]);
        assert_eq!(reduce("count", &p, None).unwrap(), vec![(0, V::I(4))]);
        assert_eq!(reduce("mean", &p, None).unwrap(), vec![(0, V::F(1.75))]);
        assert_eq!(reduce("median", &p, None).unwrap(), vec![(0, V::F(1.5))]);
        assert_eq!(reduce("min", &p, None).unwrap(), vec![(2, V::F(1.0))]);
        assert_eq!(reduce("max", &p, None).unwrap(), vec![(1, V::F(3.0))]);
        assert_eq!(reduce("spread", &p, None).unwrap(), vec![(0, V::F(2.0))]);
        assert_eq!(reduce("mode", &p, None).unwrap(), vec![(0, V::F(1.0))]);
        assert_eq!(
            reduce("top", &p, Some(&V::I(2))).unwrap(),
            vec![(1, V::F(3.0)), (3, V::F(2.0))]
        );
        // Nearest rank: 4 * 50% = the 2nd smallest (of the equal values, the later).
        assert_eq!(
            reduce("percentile", &p, Some(&V::F(50.0))).unwrap(),
            vec![(4, V::F(1.0))]
        );
        assert!(reduce("mean", &[(1, V::S("x".into()))], None).is_err());
        assert_eq!(reduce("count", &[], None).unwrap(), vec![(0, V::I(0))]);
        assert!(reduce("mean", &[], None).unwrap().is_empty());
    }

    #[test]
    fn transformations() {
        let p = pts(&[(0, 1.0), (1_000_000_000, 3.0), (2_000_000_000, 2.0)]);
        assert_eq!(
            transform("derivative", &p, None).unwrap(),
            vec![(1_000_000_000, V::F(2.0)), (2_000_000_000, V::F(-1.0))]
        );
        assert_eq!(
            transform("non_negative_derivative", &p, None).unwrap(),
            vec![(1_000_000_000, V::F(2.0))]
        );
        assert_eq!(
            transform("cumulative_sum", &p, None).unwrap(),
            vec![
                (0, V::F(1.0)),
                (1_000_000_000, V::F(4.0)),
                (2_000_000_000, V::F(6.0))
            ]
        );
        assert_eq!(
            transform("elapsed", &p, Some(&V::I(1_000_000_000))).unwrap(),
            vec![(1_000_000_000, V::I(1)), (2_000_000_000, V::I(1))]
        );
    }
}
