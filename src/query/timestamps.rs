//! Timestamps as JSON text, without chrono's formatter.
//!
//! Every JSON and JSONL result has a `time` column, and Arrow's JSON writer renders each
//! value through chrono's `Debug` formatting: in a 100,000-row lastpoint that one column
//! took a quarter of the encoding time. This encoder writes the same text directly.
//!
//! Invariant: the output is byte-for-byte what arrow-json writes for
//! `Timestamp(Nanosecond, None)` (chrono's `NaiveDateTime` `Debug`: `YYYY-MM-DDTHH:MM:SS`,
//! then `.mmm`, `.uuuuuu` or `.nnnnnnnnn`, whichever is the shortest exact one, or nothing).
//! Years outside 0..=9999, which chrono writes with a sign, are left to Arrow's encoder. The
//! tests hold the two equal.

use arrow::array::{Array, AsArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, FieldRef, TimeUnit, TimestampNanosecondType};
use arrow::error::ArrowError;
use arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder};

/// Nanoseconds since the epoch of 0000-01-01T00:00:00 and of 10000-01-01T00:00:00: the
/// range written here.
const FIRST_NS: i128 = -62_167_219_200 * NANOS_PER_SEC as i128;
const END_NS: i128 = 253_402_300_800 * NANOS_PER_SEC as i128;
const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Supplies [`TimestampEncoder`] for timezone-less nanosecond timestamps.
#[derive(Debug, Default)]
pub struct FastTimestamps;

impl EncoderFactory for FastTimestamps {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        if array.data_type() != &DataType::Timestamp(TimeUnit::Nanosecond, None) {
            return Ok(None);
        }
        let values = array.as_primitive::<TimestampNanosecondType>();
        let in_range = values
            .iter()
            .flatten()
            .all(|ns| (FIRST_NS..END_NS).contains(&(ns as i128)));
        if !in_range {
            return Ok(None);
        }
        let encoder = TimestampEncoder(values.clone());
        Ok(Some(NullableEncoder::new(
            Box::new(encoder),
            array.logical_nulls(),
        )))
    }
}

/// Writes one array's values; built only for arrays whose years are all in 0..=9999.
struct TimestampEncoder(TimestampNanosecondArray);

impl Encoder for TimestampEncoder {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        write_timestamp(self.0.value(idx), out);
        out.push(b'"');
    }
}

/// `ns` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS[.fraction]`; the year must be in
/// 0..=9999.
pub fn write_timestamp(ns: i64, out: &mut Vec<u8>) {
    let secs = ns.div_euclid(NANOS_PER_SEC);
    let nano = ns.rem_euclid(NANOS_PER_SEC) as u32;
    let days = secs.div_euclid(SECS_PER_DAY);
    let second_of_day = secs.rem_euclid(SECS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 29];
    digits(&mut text[0..4], year as u32);
    text[4] = b'-';
    digits(&mut text[5..7], month);
    text[7] = b'-';
    digits(&mut text[8..10], day);
    text[10] = b'T';
    digits(&mut text[11..13], second_of_day / 3600);
    text[13] = b':';
    digits(&mut text[14..16], second_of_day / 60 % 60);
    text[16] = b':';
    digits(&mut text[17..19], second_of_day % 60);
    let len = if nano == 0 {
        19
    } else if nano.is_multiple_of(1_000_000) {
        text[19] = b'.';
        digits(&mut text[20..23], nano / 1_000_000);
        23
    } else if nano.is_multiple_of(1_000) {
        text[19] = b'.';
        digits(&mut text[20..26], nano / 1_000);
        26
    } else {
        text[19] = b'.';
        digits(&mut text[20..29], nano);
        29
    };
    out.extend_from_slice(&text[..len]);
}

/// `value` in decimal, zero-padded to fill `slot`.
fn digits(slot: &mut [u8], mut value: u32) {
    for b in slot.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The proleptic Gregorian (year, month, day) of a day number counted from 1970-01-01.
/// Works in 400-year eras of 146,097 days, each starting on a March 1st so that the leap
/// day ends a year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn encode(values: Vec<Option<i64>>, fast: bool) -> String {
        let array = Arc::new(TimestampNanosecondArray::from(values));
        let fast = fast.then(|| Arc::new(FastTimestamps) as Arc<dyn EncoderFactory>);
        crate::query::json_lines_of("time", array, fast)
    }

    #[test]
    fn matches_arrows_encoder() {
        let day = SECS_PER_DAY * NANOS_PER_SEC;
        let mut values = vec![
            Some(0),
            None,
            Some(-1),
            Some(1),
            Some(1_000),
            Some(1_000_000),
            Some(NANOS_PER_SEC - 1),
            Some(60 * NANOS_PER_SEC),
            Some(951_782_400 * NANOS_PER_SEC),       // 2000-02-29
            Some(4_107_542_400 * NANOS_PER_SEC - 1), // 2100-02-28T23:59:59.999999999
            Some(1_795_000_000_123_456_000),
            Some((FIRST_NS) as i64),
            Some((END_NS - 1) as i64),
            Some(i64::MAX),
            Some(i64::MIN),
        ];
        // Every day of a few leap cycles around the epoch, at varied times of day.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for d in -800..800 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(Some(d * day + (x % day as u64) as i64));
        }
        // Random instants over the whole writable range.
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let span = (END_NS - FIRST_NS) as u128;
            let ns = FIRST_NS + ((x as u128 * 0x1_0000_0001) % span) as i128;
            let ns = ns as i64;
            // Round some to milli- and microseconds, which take the shorter fractions.
            let ns = match x % 4 {
                0 => ns - ns.rem_euclid(1_000_000),
                1 => ns - ns.rem_euclid(1_000),
                2 => ns - ns.rem_euclid(NANOS_PER_SEC),
                _ => ns,
            };
            values.push(Some(ns));
        }
        // One array per value too: an out-of-range value sends its whole array to Arrow.
        for v in &values[..16] {
            assert_eq!(encode(vec![*v], true), encode(vec![*v], false), "{v:?}");
        }
        let in_range: Vec<Option<i64>> = values
            .into_iter()
            .filter(|v| match v {
                Some(ns) => (FIRST_NS..END_NS).contains(&(*ns as i128)),
                None => true,
            })
            .collect();
        assert_eq!(encode(in_range.clone(), true), encode(in_range, false));
    }
}
