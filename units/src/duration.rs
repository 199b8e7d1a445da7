//! Durations: `0`, or terms like `1h30m` added up. See the crate documentation for the rules.

use std::fmt::Write as _;
use std::time::Duration;

const NS_PER_DAY: u128 = 86_400 * 1_000_000_000;

/// Every unit [`parse_duration`] reads, with its length in nanoseconds.
const UNITS: [(&str, u128); 12] = [
    ("ns", 1),
    ("us", 1_000),
    // MICRO SIGN (U+00B5) and GREEK SMALL LETTER MU (U+03BC): keyboards give either.
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", NS_PER_DAY),
    ("w", 7 * NS_PER_DAY),
    ("mo", 30 * NS_PER_DAY),
    ("y", 365 * NS_PER_DAY),
];

/// The units [`format_duration`] writes, largest first: exact ones only, so no `mo` or `y`.
const FORMAT_UNITS: [(&str, u128); 8] = [
    ("w", 7 * NS_PER_DAY),
    ("d", NS_PER_DAY),
    ("h", 3_600 * 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// The unit list as error messages give it.
const UNIT_LIST: &str = "ns, us, ms, s, m, h, d, w, mo (30 days), y (365 days)";

/// The longest duration [`parse_duration`] returns: `i64::MAX` nanoseconds, about 292 years.
/// Its nanoseconds fit the signed 64-bit timestamps the database keeps.
pub const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

const MAX_NS: u128 = i64::MAX as u128;

/// Why a text is not a duration. Each message quotes the text and says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("no duration given: write one with a unit, e.g. 10s, 250ms or 1h30m")]
    Empty,
    #[error("{}", missing_unit_message(.text, .number))]
    MissingUnit { text: String, number: String },
    #[error("'{unit}' in '{text}' has no number before it: write e.g. 1{unit}")]
    MissingNumber { text: String, unit: String },
    #[error("unknown duration unit '{unit}' in '{text}': {}", unit_hint(.unit))]
    UnknownUnit { text: String, unit: String },
    #[error("'{text}' is negative: a duration is 0 or longer")]
    Negative { text: String },
    #[error("'{text}' has a fraction: durations take whole numbers, so write e.g. 1h30m rather than 1.5h, or 1500ms rather than 1.5s")]
    Fraction { text: String },
    #[error("'{text}' has a space in it: write the terms together, e.g. 1h30m")]
    Space { text: String },
    #[error(
        "'{text}' has '{found}' where a number or a unit belongs: write e.g. 10s, 250ms or 1h30m"
    )]
    Unexpected { text: String, found: char },
    #[error("'{text}' is too long: a duration is at most about 292 years (15250w)")]
    TooLong { text: String },
}

fn missing_unit_message(text: &str, number: &str) -> String {
    let fix = format!(
        "add one, e.g. {number}s or {number}ms; only 0 may go without a unit. Units: {UNIT_LIST}"
    );
    if text == number {
        format!("'{text}' has no unit: {fix}")
    } else {
        format!("'{number}' at the end of '{text}' has no unit: {fix}")
    }
}

fn unit_hint(unit: &str) -> String {
    if unit.chars().any(char::is_uppercase) {
        format!("units are lowercase; use one of {UNIT_LIST}")
    } else {
        format!("use one of {UNIT_LIST}")
    }
}

fn unit_ns(unit: &str) -> Option<u128> {
    UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, ns)| ns)
}

/// Reads a duration: `0`, or terms `<whole number><unit>` written together and added up
/// (`250us`, `10ms`, `30s`, `1h30m`, `7d`, `2w`, `1mo`, `1y`). Units are lowercase: `ns`, `us`
/// (or `µs`), `ms`, `s`, `m` (minutes), `h`, `d`, `w`, `mo` (30 days), `y` (365 days). A bare
/// number other than 0 is refused, and so is anything longer than [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let owned = || t.to_string();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    if t.starts_with('-') {
        return Err(DurationError::Negative { text: owned() });
    }
    if t.contains(char::is_whitespace) {
        return Err(DurationError::Space { text: owned() });
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        if t.bytes().all(|b| b == b'0') {
            return Ok(Duration::ZERO);
        }
        return Err(DurationError::MissingUnit {
            text: owned(),
            number: owned(),
        });
    }
    let too_long = || DurationError::TooLong { text: owned() };
    let mut total_ns: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after_digits) = rest.split_at(digits_end);
        let unit_end = after_digits
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after_digits.len());
        let (unit, after_unit) = after_digits.split_at(unit_end);
        if after_digits.starts_with('.') {
            return Err(DurationError::Fraction { text: owned() });
        }
        if digits.is_empty() || unit.is_empty() {
            return Err(match (digits.is_empty(), after_digits.chars().next()) {
                (false, None) => DurationError::MissingUnit {
                    text: owned(),
                    number: digits.to_string(),
                },
                (true, _) if !unit.is_empty() => DurationError::MissingNumber {
                    text: owned(),
                    unit: unit.to_string(),
                },
                (_, found) => DurationError::Unexpected {
                    text: owned(),
                    // Not empty here: the loop runs while `rest` is, and an empty
                    // `after_digits` with digits before it is the first arm.
                    found: found.unwrap_or('?'),
                },
            });
        }
        let per_unit = unit_ns(unit).ok_or_else(|| DurationError::UnknownUnit {
            text: owned(),
            unit: unit.to_string(),
        })?;
        // Only overflow fails to parse a run of ASCII digits.
        let n: u128 = digits.parse().map_err(|_| too_long())?;
        total_ns = n
            .checked_mul(per_unit)
            .and_then(|term| total_ns.checked_add(term))
            .filter(|&sum| sum <= MAX_NS)
            .ok_or_else(too_long)?;
        rest = after_unit;
    }
    let ns = u64::try_from(total_ns).map_err(|_| too_long())?;
    Ok(Duration::from_nanos(ns))
}

/// Writes a duration as [`parse_duration`] reads it, largest units first and each unit once
/// (`1d12h`, `250us`, `0s`); reading the text back gives the same duration for anything up to
/// [`MAX_DURATION`]. Longer durations are written the same way but do not parse.
pub fn format_duration(d: Duration) -> String {
    let mut ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in FORMAT_UNITS {
        if ns >= size {
            // Writing to a String cannot fail.
            let _ = write!(out, "{}{unit}", ns / size);
            ns %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> Duration {
        match parse_duration(text) {
            Ok(d) => d,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn every_unit() {
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("250us"), Duration::from_micros(250));
        assert_eq!(ok("250µs"), Duration::from_micros(250));
        assert_eq!(ok("250\u{3bc}s"), Duration::from_micros(250));
        assert_eq!(ok("10ms"), Duration::from_millis(10));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3_600));
        assert_eq!(ok("7d"), Duration::from_secs(7 * 86_400));
        assert_eq!(ok("2w"), Duration::from_secs(14 * 86_400));
        assert_eq!(ok("1mo"), Duration::from_secs(30 * 86_400));
        assert_eq!(ok("1y"), Duration::from_secs(365 * 86_400));
    }

    #[test]
    fn sums_in_any_order_and_surrounding_space() {
        assert_eq!(ok("1h30m"), Duration::from_secs(5_400));
        assert_eq!(ok("30m1h"), Duration::from_secs(5_400));
        assert_eq!(ok("1m1ms1mo"), ok("30d1m1ms"));
        assert_eq!(ok("  10s\n"), Duration::from_secs(10));
        assert_eq!(ok("1s500ms"), Duration::from_millis(1_500));
    }

    #[test]
    fn zero_alone_needs_no_unit_and_nothing_else_goes_without() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("000"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        let e = parse_duration("30").unwrap_err();
        assert_eq!(
            e,
            DurationError::MissingUnit {
                text: "30".into(),
                number: "30".into()
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("30s or 30ms"), "{msg}");
        let msg = parse_duration("1h30").unwrap_err().to_string();
        assert!(msg.contains("'30' at the end of '1h30'"), "{msg}");
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        // Each text, and what the error must be.
        type Expected = fn(&DurationError) -> bool;
        let cases: [(&str, Expected); 12] = [
            ("", |e| matches!(e, DurationError::Empty)),
            ("   ", |e| matches!(e, DurationError::Empty)),
            ("h", |e| matches!(e, DurationError::MissingNumber { .. })),
            ("1hm", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("1x", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("1H", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("1.5h", |e| matches!(e, DurationError::Fraction { .. })),
            (".5s", |e| matches!(e, DurationError::Fraction { .. })),
            ("-1s", |e| matches!(e, DurationError::Negative { .. })),
            ("1h 30m", |e| matches!(e, DurationError::Space { .. })),
            ("+1s", |e| {
                matches!(e, DurationError::Unexpected { found: '+', .. })
            }),
            ("1h-30m", |e| {
                matches!(e, DurationError::Unexpected { found: '-', .. })
            }),
        ];
        for (text, expected) in cases {
            match parse_duration(text) {
                Err(e) => assert!(expected(&e), "{text:?}: {e:?}"),
                Ok(d) => panic!("{text:?} parsed as {d:?}"),
            }
        }
        let msg = parse_duration("1H").unwrap_err().to_string();
        assert!(msg.contains("lowercase"), "{msg}");
    }

    #[test]
    fn the_longest_duration_and_one_past_it() {
        assert_eq!(ok(&format_duration(MAX_DURATION)), MAX_DURATION);
        assert_eq!(
            format_duration(MAX_DURATION),
            "15250w1d23h47m16s854ms775us807ns"
        );
        assert_eq!(ok("9223372036854775807ns"), MAX_DURATION);
        for long in [
            "9223372036854775808ns",
            "15251w",
            "293y",
            "99999999999999999w",
            "999999999999999999999999999999999999999999999s",
            "15250w15250w",
        ] {
            assert_eq!(
                parse_duration(long),
                Err(DurationError::TooLong { text: long.into() }),
                "{long}"
            );
        }
    }

    #[test]
    fn formatting() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(36 * 3_600), "1d12h"),
            (Duration::from_secs(30 * 86_400), "4w2d"),
            (Duration::from_secs(7 * 86_400), "1w"),
            (Duration::from_micros(250), "250us"),
            (Duration::from_millis(1_500), "1s500ms"),
            (Duration::from_nanos(1), "1ns"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(ok(text), d);
        }
        // Longer than MAX_DURATION: still written, refused on reading.
        assert!(parse_duration(&format_duration(Duration::MAX)).is_err());
    }

    /// The sum of the terms, computed the plain way, for comparison with the parser.
    fn naive_ns(terms: &[(u32, usize)]) -> u128 {
        terms
            .iter()
            .map(|&(n, unit)| u128::from(n) * UNITS[unit].1)
            .sum()
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ns in 0..=i64::MAX as u64) {
            let d = Duration::from_nanos(ns);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn small_durations_round_trip(ns in 0u64..10_000_000_000_000) {
            let d = Duration::from_nanos(ns);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn a_sum_of_terms_is_their_total(
            terms in proptest::collection::vec((0u32..100_000, 0..UNITS.len()), 1..6)
        ) {
            let text: String = terms
                .iter()
                .map(|&(n, unit)| format!("{n}{}", UNITS[unit].0))
                .collect();
            let want = naive_ns(&terms);
            let got = parse_duration(&text);
            if want <= MAX_NS {
                prop_assert_eq!(got, Ok(Duration::from_nanos(want as u64)));
            } else {
                prop_assert_eq!(got, Err(DurationError::TooLong { text }));
            }
        }

        #[test]
        fn any_text_parses_or_errs_without_panicking(text in "\\PC{0,24}") {
            let _ = parse_duration(&text);
        }
    }
}
