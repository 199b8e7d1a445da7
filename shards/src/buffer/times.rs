//! Which times a series holds, kept so that a repeated point is known the moment it arrives.
//!
//! Readers must merge a point written twice (last write wins per field), and merging costs a
//! sort. Most series never repeat a point, but they do arrive out of order (backfills, clients
//! retrying, bodies posted in another order), so "time went backwards" says too little. This
//! keeps each series' times as a few sorted runs (patience sorting): a time larger than every
//! run's tail is new and appended in O(1); a smaller one is looked up by binary search in the
//! runs that span it, then appended to the run with the largest tail below it.
//!
//! Invariants: every run is strictly increasing; every time appended is in exactly one run;
//! so a time is repeated iff some run holds it. With more than [`MAX_RUNS`] runs (data in no
//! order at all) tracking stops and the series is treated as repeating (correct, only slower
//! to read).

/// Runs kept before giving up on a series.
const MAX_RUNS: usize = 32;

#[derive(Debug, Default)]
pub(crate) struct SeriesTimes {
    runs: Vec<Vec<i64>>,
    /// Index of the run with the largest tail.
    top: usize,
}

/// What noting a time found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noted {
    New,
    /// The time was there already, or tracking gave up: the series needs merging.
    Repeated,
}

impl SeriesTimes {
    #[inline]
    pub(crate) fn note(&mut self, t: i64) -> Noted {
        if let Some(top) = self.runs.get_mut(self.top) {
            if t > *top.last().expect("runs are never empty") {
                top.push(t);
                return Noted::New;
            }
        } else {
            self.runs.push(vec![t]);
            return Noted::New;
        }
        self.note_slow(t)
    }

    #[cold]
    fn note_slow(&mut self, t: i64) -> Noted {
        let mut best: Option<usize> = None;
        for (i, run) in self.runs.iter().enumerate() {
            let (first, last) = (run[0], *run.last().expect("runs are never empty"));
            if t >= first && t <= last && run.binary_search(&t).is_ok() {
                return Noted::Repeated;
            }
            if last < t && best.is_none_or(|b| *self.runs[b].last().expect("non-empty") < last) {
                best = Some(i);
            }
        }
        match best {
            Some(b) => self.runs[b].push(t),
            None if self.runs.len() >= MAX_RUNS => {
                *self = SeriesTimes::default();
                return Noted::Repeated;
            }
            None => self.runs.push(vec![t]),
        }
        Noted::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn interleaved_increasing_streams_are_new() {
        let mut s = SeriesTimes::default();
        for i in 0..100 {
            assert_eq!(s.note(i), Noted::New);
            assert_eq!(s.note(10_000 + i), Noted::New);
        }
        assert_eq!(s.runs.len(), 2);
        assert_eq!(s.note(50), Noted::Repeated);
        assert_eq!(s.note(10_050), Noted::Repeated);
        assert_eq!(s.note(5_000), Noted::New);
    }

    #[test]
    fn gives_up_on_data_in_no_order() {
        let mut s = SeriesTimes::default();
        let mut saw_give_up = false;
        for i in (0..1000).rev() {
            saw_give_up |= s.note(i) == Noted::Repeated;
        }
        assert!(saw_give_up, "a descending stream needs one run per point");
    }

    proptest! {
        /// Repeated is reported exactly for times seen before, until tracking gives up.
        #[test]
        fn matches_a_set(times in proptest::collection::vec(0i64..200, 0..300)) {
            let mut s = SeriesTimes::default();
            let mut seen = std::collections::HashSet::new();
            for t in times {
                let got = s.note(t);
                let gave_up = s.runs.is_empty();
                if gave_up {
                    prop_assert_eq!(got, Noted::Repeated);
                    break;
                }
                prop_assert_eq!(got == Noted::Repeated, !seen.insert(t), "time {}", t);
            }
        }
    }
}
