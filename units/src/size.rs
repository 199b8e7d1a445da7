//! Byte sizes: a whole number with an optional decimal or binary unit. See the crate
//! documentation for the rules.

const KB: u64 = 1_000;
const KIB: u64 = 1 << 10;

/// Every unit [`parse_size`] reads, lowercase (the comparison ignores case), with its bytes.
const UNITS: [(&str, u64); 13] = [
    ("b", 1),
    ("k", KB),
    ("kb", KB),
    ("m", KB * KB),
    ("mb", KB * KB),
    ("g", KB * KB * KB),
    ("gb", KB * KB * KB),
    ("t", KB * KB * KB * KB),
    ("tb", KB * KB * KB * KB),
    ("kib", KIB),
    ("mib", KIB * KIB),
    ("gib", KIB * KIB * KIB),
    ("tib", KIB * KIB * KIB * KIB),
];

/// The units [`format_size`] writes, largest first. Binary and decimal interleave
/// (TiB > TB > GiB > GB ...), so the first exact divisor gives the smallest number.
const FORMAT_UNITS: [(&str, u64); 8] = [
    ("TiB", KIB * KIB * KIB * KIB),
    ("TB", KB * KB * KB * KB),
    ("GiB", KIB * KIB * KIB),
    ("GB", KB * KB * KB),
    ("MiB", KIB * KIB),
    ("MB", KB * KB),
    ("KiB", KIB),
    ("KB", KB),
];

const UNIT_LIST: &str =
    "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), or none for bytes";

/// Why a text is not a size. Each message quotes the text and says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("no size given: write a number of bytes, or one with a unit, e.g. 64KiB or 10MB")]
    Empty,
    #[error("'{text}' has no number: write e.g. 1{text}")]
    MissingNumber { text: String },
    #[error(
        "'{text}' is not a size: write a number of bytes, or one with a unit, e.g. 64KiB or 10MB"
    )]
    NotASize { text: String },
    #[error("unknown size unit '{unit}' in '{text}': use {UNIT_LIST}")]
    UnknownUnit { text: String, unit: String },
    #[error("'{text}' is negative: a size is 0 or more bytes")]
    Negative { text: String },
    #[error("'{text}' has a fraction: sizes take whole numbers, so write it in a smaller unit, e.g. 1536MiB rather than 1.5GiB")]
    Fraction { text: String },
    #[error("'{text}' has a space in it: write the number and unit together, e.g. 10MiB")]
    Space { text: String },
    #[error("'{text}' is too large: a size is at most 18446744073709551615 bytes (2^64 - 1, just under 16 EiB)")]
    TooLarge { text: String },
}

/// Reads a size in bytes: a whole number with an optional unit, any letter case. No unit or
/// `B` is bytes; `K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB` are powers of 1000; `KiB`, `MiB`,
/// `GiB`, `TiB` are powers of 1024 (`10MiB` is 10,485,760 bytes, `10MB` 10,000,000).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let owned = || t.to_string();
    if t.is_empty() {
        return Err(SizeError::Empty);
    }
    if t.starts_with('-') {
        return Err(SizeError::Negative { text: owned() });
    }
    if t.contains(char::is_whitespace) {
        return Err(SizeError::Space { text: owned() });
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(digits_end);
    if unit.starts_with('.') {
        return Err(SizeError::Fraction { text: owned() });
    }
    let per_unit = if unit.is_empty() {
        Some(1)
    } else {
        UNITS
            .iter()
            .find(|(name, _)| unit.eq_ignore_ascii_case(name))
            .map(|&(_, bytes)| bytes)
    };
    let per_unit = match (digits.is_empty(), per_unit) {
        (false, Some(bytes)) => bytes,
        (true, Some(_)) => return Err(SizeError::MissingNumber { text: owned() }),
        (true, None) => return Err(SizeError::NotASize { text: owned() }),
        (false, None) => {
            return Err(SizeError::UnknownUnit {
                text: owned(),
                unit: unit.to_string(),
            })
        }
    };
    let too_large = || SizeError::TooLarge { text: owned() };
    // Only overflow fails to parse a run of ASCII digits.
    let n: u64 = digits.parse().map_err(|_| too_large())?;
    n.checked_mul(per_unit).ok_or_else(too_large)
}

/// Writes a size as [`parse_size`] reads it back exactly: in the largest unit, binary or
/// decimal, that divides it (`10MiB`, `10MB`, `1000KiB`), else in bytes (`1500B`, `0B`).
pub fn format_size(bytes: u64) -> String {
    if bytes != 0 {
        for (unit, size) in FORMAT_UNITS {
            if bytes.is_multiple_of(size) {
                return format!("{}{unit}", bytes / size);
            }
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_and_binary_units_in_any_case() {
        for (text, bytes) in [
            ("512", 512),
            ("0", 0),
            ("512B", 512),
            ("512b", 512),
            ("2k", 2_000),
            ("2KB", 2_000),
            ("2kb", 2_000),
            ("10MB", 10_000_000),
            ("10m", 10_000_000),
            ("1GB", 1_000_000_000),
            ("1TB", 1_000_000_000_000),
            ("64KiB", 64 << 10),
            ("64kib", 64 << 10),
            ("10MiB", 10 << 20),
            ("10MIB", 10 << 20),
            ("4GiB", 4 << 30),
            ("2TiB", 2 << 40),
            (" 10MiB\t", 10 << 20),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        // Each text, and what the error must be.
        type Expected = fn(&SizeError) -> bool;
        let cases: [(&str, Expected); 10] = [
            ("", |e| matches!(e, SizeError::Empty)),
            ("MiB", |e| matches!(e, SizeError::MissingNumber { .. })),
            ("ten", |e| matches!(e, SizeError::NotASize { .. })),
            ("1XB", |e| matches!(e, SizeError::UnknownUnit { .. })),
            ("10MiB5", |e| matches!(e, SizeError::UnknownUnit { .. })),
            ("1.5GiB", |e| matches!(e, SizeError::Fraction { .. })),
            (".5GiB", |e| matches!(e, SizeError::Fraction { .. })),
            ("-1MiB", |e| matches!(e, SizeError::Negative { .. })),
            ("10 MiB", |e| matches!(e, SizeError::Space { .. })),
            ("16EiB", |e| matches!(e, SizeError::UnknownUnit { .. })),
        ];
        for (text, expected) in cases {
            match parse_size(text) {
                Err(e) => assert!(expected(&e), "{text:?}: {e:?}"),
                Ok(n) => panic!("{text:?} parsed as {n}"),
            }
        }
    }

    #[test]
    fn the_largest_size_and_one_past_it() {
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        for big in [
            "18446744073709551616",
            "16777216TiB",
            "99999999999999999999999GB",
        ] {
            assert_eq!(
                parse_size(big),
                Err(SizeError::TooLarge { text: big.into() }),
                "{big}"
            );
        }
        assert_eq!(parse_size("16777215TiB"), Ok(16_777_215 << 40));
    }

    #[test]
    fn formatting() {
        for (bytes, text) in [
            (0, "0B"),
            (1, "1B"),
            (1_500, "1500B"),
            (2_000, "2KB"),
            (1 << 10, "1KiB"),
            (1_024_000, "1000KiB"),
            (10 << 20, "10MiB"),
            (10_000_000, "10MB"),
            (4 << 30, "4GiB"),
            (u64::MAX, "18446744073709551615B"),
        ] {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes));
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(bytes: u64) {
            prop_assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }

        #[test]
        fn unit_multiples_round_trip(n in 0u64..1_000_000, unit in 0..FORMAT_UNITS.len()) {
            let bytes = n * FORMAT_UNITS[unit].1;
            prop_assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
            prop_assert_eq!(parse_size(&format!("{n}{}", FORMAT_UNITS[unit].0)), Ok(bytes));
        }

        #[test]
        fn any_text_parses_or_errs_without_panicking(text in "\\PC{0,24}") {
            let _ = parse_size(&text);
        }
    }
}
