//! UTF-8 strings as JSON text, copied whole when they need no escaping.
//!
//! Arrow's JSON writer sends every string through serde_json's escaper, which walks it a
//! byte at a time against an escape table: in a 100,000-row lastpoint (ten tag columns)
//! that was the largest single cost of encoding. Tag values almost never hold a quote, a
//! backslash or a control character, so this encoder checks for one in a pass the compiler
//! vectorizes and, finding none, copies the bytes between quotes.
//!
//! Invariant: the output is byte-for-byte what arrow-json writes for `Utf8`; a string that
//! does need escaping goes through serde_json, as Arrow's does. The tests hold the two equal.

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{DataType, FieldRef};
use arrow::error::ArrowError;
use arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder};

/// Supplies [`StringEncoder`] for `Utf8` arrays.
#[derive(Debug, Default)]
pub struct FastStrings;

impl EncoderFactory for FastStrings {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        if array.data_type() != &DataType::Utf8 {
            return Ok(None);
        }
        let encoder = StringEncoder(array.as_string::<i32>().clone());
        Ok(Some(NullableEncoder::new(
            Box::new(encoder),
            array.logical_nulls(),
        )))
    }
}

struct StringEncoder(StringArray);

impl Encoder for StringEncoder {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        write_string(self.0.value(idx), out);
    }
}

/// `s` as a JSON string literal, quotes included.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    if needs_escape(s.as_bytes()) {
        // Writing into a Vec cannot fail.
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec");
        return;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Whether JSON needs any byte of `bytes` escaped: a quote, a backslash or a control
/// character below 0x20. Folds without stopping early so the loop vectorizes.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn encode(values: &[Option<String>], fast: bool) -> String {
        let array = Arc::new(StringArray::from(values.to_vec()));
        let fast = fast.then(|| Arc::new(FastStrings) as Arc<dyn EncoderFactory>);
        crate::query::json_lines_of("s", array, fast)
    }

    #[test]
    fn needs_escape_agrees_with_a_byte_at_a_time_check() {
        for b in 0..=255u8 {
            let slow = b < 0x20 || b == b'"' || b == b'\\';
            assert_eq!(needs_escape(&[b'a', b, b'z']), slow, "byte {b:#x}");
        }
        assert!(!needs_escape(b""));
    }

    #[test]
    fn matches_arrows_encoder() {
        let mut values: Vec<Option<String>> = [
            "",
            "host_1",
            "a\"b",
            "back\\slash",
            "tab\there",
            "nl\n",
            "\u{1}\u{1f}",
            "\u{7f}",
            "é ünï 東京 🦀",
            "</script>",
            "'single'",
        ]
        .iter()
        .map(|s| Some(s.to_string()))
        .collect();
        values.push(None);
        // Random strings over a small alphabet that is half characters JSON escapes.
        let alphabet = ['a', 'Z', '"', '\\', '\n', '\u{0}', '\u{1b}', 'é', '東', ' '];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((x >> (i * 2)) % alphabet.len() as u64) as usize])
                .collect();
            values.push(Some(s));
        }
        assert_eq!(encode(&values, true), encode(&values, false));
    }
}
