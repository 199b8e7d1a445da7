//! Timestamp precision: what unit a line's timestamp is written in, and its conversion to
//! nanoseconds. `Auto` guesses the unit from the magnitude, as InfluxDB 3 Core does.

/// The unit of the timestamps in a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Precision {
    Auto = 0,
    Nanosecond = 1,
    Microsecond = 2,
    Millisecond = 3,
    Second = 4,
    Minute = 5,
    Hour = 6,
}

/// Why a timestamp cannot be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {value} in {unit} is outside the range of nanosecond timestamps (about years 1677 to 2262)")]
pub struct TimestampOverflow {
    pub value: i64,
    pub unit: &'static str,
}

impl Precision {
    /// The WAL stores the precision as one byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Precision::Auto,
            1 => Precision::Nanosecond,
            2 => Precision::Microsecond,
            3 => Precision::Millisecond,
            4 => Precision::Second,
            5 => Precision::Minute,
            6 => Precision::Hour,
            _ => return None,
        })
    }

    fn multiplier(self) -> (i64, &'static str) {
        match self {
            Precision::Auto | Precision::Nanosecond => (1, "nanoseconds"),
            Precision::Microsecond => (1_000, "microseconds"),
            Precision::Millisecond => (1_000_000, "milliseconds"),
            Precision::Second => (1_000_000_000, "seconds"),
            Precision::Minute => (60_000_000_000, "minutes"),
            Precision::Hour => (3_600_000_000_000, "hours"),
        }
    }

    /// The unit `Auto` picks for `ts`: seconds below 5e9 (year 2128), milliseconds below 5e12,
    /// microseconds below 5e15, nanoseconds above.
    pub fn guess(ts: i64) -> Precision {
        let a = ts.unsigned_abs();
        if a < 5_000_000_000 {
            Precision::Second
        } else if a < 5_000_000_000_000 {
            Precision::Millisecond
        } else if a < 5_000_000_000_000_000 {
            Precision::Microsecond
        } else {
            Precision::Nanosecond
        }
    }

    /// Converts a timestamp written in this precision to nanoseconds.
    #[inline]
    pub fn to_nanos(self, ts: i64) -> Result<i64, TimestampOverflow> {
        let p = if self == Precision::Auto {
            Precision::guess(ts)
        } else {
            self
        };
        let (m, unit) = p.multiplier();
        ts.checked_mul(m)
            .ok_or(TimestampOverflow { value: ts, unit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Precision::Second.to_nanos(2).unwrap(), 2_000_000_000);
        assert_eq!(Precision::Hour.to_nanos(1).unwrap(), 3_600_000_000_000);
        assert_eq!(Precision::Millisecond.to_nanos(-3).unwrap(), -3_000_000);
        assert!(Precision::Second.to_nanos(i64::MAX / 10).is_err());
        for p in 0..=6 {
            assert_eq!(Precision::from_u8(p).unwrap() as u8, p);
        }
        assert_eq!(Precision::from_u8(7), None);
    }

    #[test]
    fn auto_guesses_by_magnitude() {
        assert_eq!(
            Precision::Auto.to_nanos(1_700_000_000).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            Precision::Auto.to_nanos(1_700_000_000_123).unwrap(),
            1_700_000_000_123_000_000
        );
        assert_eq!(
            Precision::Auto.to_nanos(1_700_000_000_123_456).unwrap(),
            1_700_000_000_123_456_000
        );
        assert_eq!(
            Precision::Auto.to_nanos(1_700_000_000_123_456_789).unwrap(),
            1_700_000_000_123_456_789
        );
    }
}
