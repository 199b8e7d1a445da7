//! Finding the next structural byte inside a line, 16 bytes at a time.
//!
//! The basic idea: tokens end at a space, comma, equals sign or backslash, or at a control
//! byte (which is either an error or the line's end). Instead of branching on each byte, we
//! load 16 bytes, compare them against each structural byte at once, and take the first set
//! bit of the combined mask. Line-protocol tokens are short (TSBS averages 6 bytes), so one
//! load usually finds the end of the token.
//!
//! Options tried and rejected: a 256-entry class table with a `match` per byte compiled to an
//! indirect jump per byte (367 MiB/s on TSBS bodies); `memchr3` per token cannot test five
//! byte values and pays its setup on every short token.
//!
//! The SIMD path is SSE2, part of the x86_64 baseline, so no runtime detection is needed. On
//! other targets, and for the last few bytes of a body, the scalar twin [`find_scalar`] runs;
//! tests hold the two to the same answers.

/// Which bytes end the token being scanned (besides control bytes and DEL, which always do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stops {
    /// Measurements and tag values: space, comma, backslash.
    NameOrTagValue,
    /// Keys: space, comma, equals, backslash.
    Key,
    /// Unquoted field values: space, comma (and control bytes).
    FieldValue,
}

#[inline(always)]
fn is_stop(b: u8, stops: Stops) -> bool {
    b < 0x20
        || b == 0x7f
        || b == b' '
        || b == b','
        || match stops {
            Stops::NameOrTagValue => b == b'\\',
            Stops::Key => b == b'\\' || b == b'=',
            Stops::FieldValue => false,
        }
}

/// The first index `i` in `from..end` with `bytes[i]` a stop byte, or `end`.
#[inline]
pub(crate) fn find_scalar(bytes: &[u8], from: usize, end: usize, stops: Stops) -> usize {
    let mut p = from;
    while p < end && !is_stop(bytes[p], stops) {
        p += 1;
    }
    p
}

/// As [`find_scalar`], using SSE2 where 16 bytes can be loaded.
#[inline(always)]
pub(crate) fn find(bytes: &[u8], from: usize, end: usize, stops: Stops) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let mut p = from;
        // The loads may read past `end` (but never past the body): bits beyond `end` are
        // ignored by clamping the answer.
        while p < end && p + 16 <= bytes.len() {
            // SAFETY: p + 16 <= bytes.len(), so the 16-byte unaligned load is in bounds.
            let mask = unsafe { sse2::stop_mask(bytes.as_ptr().add(p), stops) };
            if mask != 0 {
                return (p + mask.trailing_zeros() as usize).min(end);
            }
            p += 16;
        }
        find_scalar(bytes, p.min(end), end, stops)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        find_scalar(bytes, from, end, stops)
    }
}

/// Bitmasks of bytes `from..min(from + 64, end)`: bit i of `structural` is set when byte
/// `from + i` is a space, comma or equals sign; `special` when it is a quote, backslash,
/// control byte or DEL (bytes the whole-line fast path leaves to the general parser).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LineMasks {
    pub(crate) structural: u64,
    pub(crate) special: u64,
}

/// Scalar twin of [`classify64`].
pub(crate) fn classify64_scalar(bytes: &[u8], from: usize, end: usize) -> LineMasks {
    let mut m = LineMasks {
        structural: 0,
        special: 0,
    };
    for (i, &b) in bytes[from..end.min(from + 64)].iter().enumerate() {
        if matches!(b, b' ' | b',' | b'=') {
            m.structural |= 1 << i;
        }
        if matches!(b, b'"' | b'\\' | 0x7f) || b < 0x20 {
            m.special |= 1 << i;
        }
    }
    m
}

/// As [`classify64_scalar`], 16 bytes per SSE2 step where 64 bytes can be loaded.
#[inline(always)]
pub(crate) fn classify64(bytes: &[u8], from: usize, end: usize) -> LineMasks {
    #[cfg(target_arch = "x86_64")]
    {
        if from + 64 <= bytes.len() {
            let mut m = LineMasks {
                structural: 0,
                special: 0,
            };
            for k in 0..4 {
                // SAFETY: from + 64 <= bytes.len(), so each 16-byte load at from + 16k is in bounds.
                let (s, x) = unsafe { sse2::classify16(bytes.as_ptr().add(from + 16 * k)) };
                m.structural |= (s as u64) << (16 * k);
                m.special |= (x as u64) << (16 * k);
            }
            let n = end.saturating_sub(from);
            if n < 64 {
                let keep = (1u64 << n) - 1;
                m.structural &= keep;
                m.special &= keep;
            }
            return m;
        }
    }
    classify64_scalar(bytes, from, end)
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::Stops;
    use std::arch::x86_64::*;

    /// Bit i is set when byte i of the 16 at `ptr` is a stop byte.
    ///
    /// # Safety
    /// `ptr` must be valid for reading 16 bytes.
    #[inline(always)]
    pub(super) unsafe fn stop_mask(ptr: *const u8, stops: Stops) -> u32 {
        // SAFETY: the caller guarantees 16 readable bytes; SSE2 is always present on x86_64.
        unsafe {
            let v = _mm_loadu_si128(ptr as *const __m128i);
            // Control bytes: v <= 0x1f unsigned, i.e. max(v, 0x1f) == 0x1f.
            let ctrl = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
            let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
            let space = _mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8));
            let comma = _mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8));
            let mut m = _mm_or_si128(_mm_or_si128(ctrl, del), _mm_or_si128(space, comma));
            match stops {
                Stops::FieldValue => {}
                Stops::NameOrTagValue => {
                    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)));
                }
                Stops::Key => {
                    let bs = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                    let eq = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'=' as i8));
                    m = _mm_or_si128(m, _mm_or_si128(bs, eq));
                }
            }
            _mm_movemask_epi8(m) as u32
        }
    }

    /// (structural, special) masks of the 16 bytes at `ptr`; see `LineMasks`.
    ///
    /// # Safety
    /// `ptr` must be valid for reading 16 bytes.
    #[inline(always)]
    pub(super) unsafe fn classify16(ptr: *const u8) -> (u32, u32) {
        // SAFETY: the caller guarantees 16 readable bytes; SSE2 is always present on x86_64.
        unsafe {
            let v = _mm_loadu_si128(ptr as *const __m128i);
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            let structural = _mm_or_si128(_mm_or_si128(eq(b' '), eq(b',')), eq(b'='));
            let ctrl = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
            let special = _mm_or_si128(
                _mm_or_si128(eq(b'"'), eq(b'\\')),
                _mm_or_si128(ctrl, eq(0x7f)),
            );
            (
                _mm_movemask_epi8(structural) as u32,
                _mm_movemask_epi8(special) as u32,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Stops; 3] = [Stops::NameOrTagValue, Stops::Key, Stops::FieldValue];

    #[test]
    fn edge_positions_around_block_boundaries() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65] {
            for stop_at in 0..=len {
                for &special in &[b' ', b',', b'=', b'\\', b'\n', 0x7f, 0x00] {
                    let mut v = vec![b'a'; len];
                    if stop_at < len {
                        v[stop_at] = special;
                    }
                    for stops in ALL {
                        for end in [len, len.saturating_sub(1), stop_at.min(len)] {
                            assert_eq!(
                                find(&v, 0, end, stops),
                                find_scalar(&v, 0, end, stops),
                                "len {len} at {stop_at} byte {special:#x} end {end} {stops:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn classify_matches_scalar(bytes in prop::collection::vec(prop_oneof![Just(b' '), Just(b','), Just(b'='), Just(b'"'), Just(b'\\'), Just(b'\n'), Just(0x7fu8), 0x80u8..=0xff, b'a'..=b'z'], 0..200), from in 0usize..200, back in 0usize..80) {
            let from = from.min(bytes.len());
            let end = bytes.len().saturating_sub(back).max(from);
            prop_assert_eq!(classify64(&bytes, from, end), classify64_scalar(&bytes, from, end));
        }

        #[test]
        fn simd_matches_scalar(bytes in prop::collection::vec(prop_oneof![Just(b' '), Just(b','), Just(b'='), Just(b'\\'), Just(b'\n'), Just(0x7fu8), 0x80u8..=0xff, b'a'..=b'z'], 0..100), from in 0usize..100, back in 0usize..20) {
            let from = from.min(bytes.len());
            let end = bytes.len().saturating_sub(back).max(from);
            for stops in ALL {
                prop_assert_eq!(find(&bytes, from, end, stops), find_scalar(&bytes, from, end, stops));
            }
        }
    }
}
