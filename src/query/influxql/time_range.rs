//! The time range of a `WHERE` condition: every comparison of `time` with a constant is taken
//! out of the condition and narrows the range, as 1.x does (across `OR` too, one of its
//! quirks kept for compatibility); what is left is the row filter.
//!
//! Invariants: the range is inclusive at both ends; `min > max` means no rows; a constant is
//! reduced with `now()` fixed at the query's start, so every part of a query sees one now.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use shardline_influxql::ast::{BinaryOp, Expr};

use super::InfluxQlError;

/// The earliest and latest time 1.x accepts (its `MinTime + 1` and `MaxTime`).
pub const MIN_TIME: i64 = i64::MIN + 2;
pub const MAX_TIME: i64 = i64::MAX - 1;

/// Inclusive bounds, and whether each was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min: i64,
    pub max: i64,
    pub has_min: bool,
    pub has_max: bool,
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange {
            min: MIN_TIME,
            max: MAX_TIME,
            has_min: false,
            has_max: false,
        }
    }
}

impl TimeRange {
    fn at_least(&mut self, t: i64) {
        self.min = self.min.max(t);
        self.has_min = true;
    }

    fn at_most(&mut self, t: i64) {
        self.max = self.max.min(t);
        self.has_max = true;
    }

    pub fn is_empty(&self) -> bool {
        self.min > self.max
    }
}

/// Splits `cond` into its time range and the rest.
/// Time strings without an offset are read in `tz` (UTC without one).
pub fn split(
    cond: Option<&Expr>,
    now: i64,
    tz: Option<chrono_tz::Tz>,
) -> Result<(TimeRange, Option<Expr>), InfluxQlError> {
    let mut range = TimeRange::default();
    let rest = match cond {
        Some(c) => take_time(c, now, tz, &mut range)?,
        None => None,
    };
    Ok((range, rest))
}

fn is_time(e: &Expr) -> bool {
    matches!(e.unparen(), Expr::Var { name, .. } if name.eq_ignore_ascii_case("time"))
}

fn take_time(
    e: &Expr,
    now: i64,
    tz: Option<chrono_tz::Tz>,
    range: &mut TimeRange,
) -> Result<Option<Expr>, InfluxQlError> {
    match e {
        Expr::Paren(inner) => take_time(inner, now, tz, range),
        Expr::Binary { op, lhs, rhs } if matches!(op, BinaryOp::And | BinaryOp::Or) => {
            let l = take_time(lhs, now, tz, range)?;
            let r = take_time(rhs, now, tz, range)?;
            Ok(match (l, r) {
                (Some(l), Some(r)) => Some(Expr::binary(*op, l, r)),
                (one, None) | (None, one) => one,
            })
        }
        Expr::Binary { op, lhs, rhs } if op.is_comparison() && (is_time(lhs) || is_time(rhs)) => {
            // `time` on the right mirrors the operator.
            let (op, value) = if is_time(lhs) {
                (*op, rhs)
            } else {
                let mirrored = match op {
                    BinaryOp::Lt => BinaryOp::Gt,
                    BinaryOp::LtEq => BinaryOp::GtEq,
                    BinaryOp::Gt => BinaryOp::Lt,
                    BinaryOp::GtEq => BinaryOp::LtEq,
                    other => *other,
                };
                (mirrored, lhs)
            };
            let t = time_value(value, now, tz)?;
            if t > MAX_TIME {
                return Err(InfluxQlError::Invalid(format!(
                    "time {} overflows time literal",
                    rfc3339(t)
                )));
            }
            if t < MIN_TIME + 1 {
                return Err(InfluxQlError::Invalid(format!(
                    "time {} underflows time literal",
                    rfc3339(t)
                )));
            }
            match op {
                BinaryOp::Gt => range.at_least(t.saturating_add(1)),
                BinaryOp::GtEq => range.at_least(t),
                BinaryOp::Lt => range.at_most(t.saturating_sub(1)),
                BinaryOp::LtEq => range.at_most(t),
                BinaryOp::Eq => {
                    range.at_least(t);
                    range.at_most(t);
                }
                other => {
                    return Err(InfluxQlError::Invalid(format!(
                        "invalid time comparison operator: {}",
                        other.as_str()
                    )))
                }
            }
            Ok(None)
        }
        other => Ok(Some(other.clone())),
    }
}

fn rfc3339(t: i64) -> String {
    DateTime::from_timestamp_nanos(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The nanoseconds a constant compared with `time` stands for.
pub fn time_value(e: &Expr, now: i64, tz: Option<chrono_tz::Tz>) -> Result<i64, InfluxQlError> {
    match e {
        Expr::Paren(inner) => time_value(inner, now, tz),
        Expr::Integer(i) => Ok(*i),
        Expr::Unsigned(u) => Ok(i64::try_from(*u).unwrap_or(i64::MAX)),
        Expr::Float(f) => Ok(*f as i64),
        Expr::Duration(d) => Ok(*d),
        Expr::Str(s) => parse_time(s, tz),
        Expr::Call { name, args } if name == "now" && args.is_empty() => Ok(now),
        Expr::Binary { op, lhs, rhs } if matches!(op, BinaryOp::Add | BinaryOp::Sub) => {
            let l = time_value(lhs, now, tz)?;
            let r = time_value(rhs, now, tz)?;
            Ok(if *op == BinaryOp::Add {
                l.saturating_add(r)
            } else {
                l.saturating_sub(r)
            })
        }
        other => Err(InfluxQlError::Invalid(format!(
            "invalid operation: time and {} are not compatible",
            kind_name(other)
        ))),
    }
}

fn kind_name(e: &Expr) -> &'static str {
    match e {
        Expr::Str(_) => "*influxql.StringLiteral",
        Expr::Regex(_) => "*influxql.RegexLiteral",
        Expr::Bool(_) => "*influxql.BooleanLiteral",
        Expr::Var { .. } => "*influxql.VarRef",
        Expr::Call { .. } => "*influxql.Call",
        _ => "*influxql.BinaryExpr",
    }
}

/// A time string: RFC3339 (with its own offset), `YYYY-MM-DD HH:MM:SS[.f]` or `YYYY-MM-DD`
/// (in `tz`, else UTC).
pub fn parse_time(s: &str, tz: Option<chrono_tz::Tz>) -> Result<i64, InfluxQlError> {
    let looks_like_time = s.len() >= 10
        && s.as_bytes()[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !looks_like_time {
        return Err(InfluxQlError::Invalid(
            "invalid operation: time and *influxql.StringLiteral are not compatible".into(),
        ));
    }
    let invalid = || InfluxQlError::Invalid("invalid timestamp string".into());
    let nanos = |dt: NaiveDateTime| {
        let utc = match tz {
            None => dt.and_utc(),
            Some(tz) => {
                use chrono::TimeZone;
                tz.from_local_datetime(&dt)
                    .earliest()
                    .ok_or_else(invalid)?
                    .with_timezone(&chrono::Utc)
            }
        };
        utc.timestamp_nanos_opt().ok_or_else(invalid)
    };
    if s.len() == 10 {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| invalid())?;
        return nanos(d.and_hms_opt(0, 0, 0).ok_or_else(invalid)?);
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return nanos(dt);
    }
    let dt = DateTime::parse_from_rfc3339(s).map_err(|_| invalid())?;
    dt.timestamp_nanos_opt().ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_influxql::parse_expr;

    #[test]
    fn ranges_and_the_rest() {
        let e = parse_expr(
            "time >= '2024-01-01T00:00:00Z' AND host = 'a' AND time < '2024-01-01 00:00:10'",
        )
        .unwrap();
        let (r, rest) = split(Some(&e), 0, None).unwrap();
        assert_eq!(r.min, 1_704_067_200_000_000_000);
        assert_eq!(r.max, 1_704_067_209_999_999_999);
        assert_eq!(rest.unwrap().to_string(), "host = 'a'");
        let e = parse_expr("now() - 1h < time").unwrap();
        let (r, rest) = split(Some(&e), 3_600_000_000_001, None).unwrap();
        assert_eq!((r.min, r.has_max, rest), (2, false, None));
        let e = parse_expr("time > 10s AND time <= '2024-01-02'").unwrap();
        let (r, _) = split(Some(&e), 0, None).unwrap();
        assert_eq!(r.min, 10_000_000_001);
        assert_eq!(r.max, 1_704_153_600_000_000_000);
        assert!(split(Some(&parse_expr("time != 5").unwrap()), 0, None).is_err());
        assert!(split(Some(&parse_expr("time > 'today'").unwrap()), 0, None).is_err());
        assert!(split(Some(&parse_expr("time > '2024-13-01'").unwrap()), 0, None).is_err());
    }
}
