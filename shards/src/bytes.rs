//! Small byte-string helpers for the hot path.

/// Equality of two short byte strings (keys, measurement names) without a `memcmp` call:
/// slice `==` calls into libc for every comparison, and the write path compares ~20 keys per
/// line. Lengths 4 to 16 compare two overlapping words; longer strings use `==`.
#[inline(always)]
pub fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => {
            let w =
                |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
            (w(a, 0) ^ w(b, 0)) | (w(a, n - 4) ^ w(b, n - 4)) == 0
        }
        8..=16 => {
            let w =
                |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
            (w(a, 0) ^ w(b, 0)) | (w(a, n - 8) ^ w(b, n - 8)) == 0
        }
        _ => a == b,
    }
}

/// A hasher for keys that are already uniform 64-bit hashes (series hashes): passes them
/// through instead of hashing them again with SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThroughHasher(u64);

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are expected; anything else is folded in, still correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// `BuildHasher` for [`PassThroughHasher`].
pub type PassThrough = std::hash::BuildHasherDefault<PassThroughHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn short_eq_is_equality(a in prop::collection::vec(0u8..4, 0..24), b in prop::collection::vec(0u8..4, 0..24)) {
            prop_assert_eq!(short_eq(&a, &b), a == b);
            prop_assert!(short_eq(&a, &a.clone()));
        }
    }
}
