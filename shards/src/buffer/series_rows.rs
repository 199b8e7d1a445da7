//! The rows each series holds: an index from series to row ids, kept so that a query that
//! selects a few series reads only their rows, and so that a repeated point is known the
//! moment it arrives.
//!
//! Readers must merge a point written twice (last write wins per field), and merging costs a
//! sort. Most series never repeat a point, but they do arrive out of order (backfills, clients
//! retrying, bodies posted in another order), so "time went backwards" says too little. While
//! tracking, a series' rows are kept as a few runs in increasing time (patience sorting): a
//! time larger than every run's last is new and appended in O(1); a smaller one is looked up by
//! binary search in the runs that span it, then appended to the run with the largest last time
//! below it.
//!
//! Invariants:
//! - Every row of the series is in exactly one run, and each run's row ids increase (rows are
//!   appended in arrival order), so the rows in a range of row ids are found by binary search.
//! - While tracking, each run's times are strictly increasing, so a time is repeated iff some
//!   run holds it. Once a point repeats, or there would be more than [`MAX_RUNS`] runs (data in
//!   no order at all), tracking stops: the runs are merged into one run in row order, which
//!   keeps every later row, and the series counts as repeating (correct, only slower to read).
//! - Four bytes per row; the common append reads nothing but this struct.

use super::chunked::ChunkedVec;

/// Runs kept before giving up on tracking a series' times.
const MAX_RUNS: usize = 32;

#[derive(Debug)]
pub(crate) struct SeriesRows {
    /// While tracking, `runs[0]` has the largest last time: a run is only started by a time
    /// below every run's last, and another run only extended with a time below `runs[0]`'s.
    runs: Vec<Vec<u32>>,
    /// The time of the last row of `runs[0]`.
    top_time: i64,
    tracking: bool,
}

impl Default for SeriesRows {
    fn default() -> Self {
        SeriesRows {
            runs: Vec::new(),
            top_time: i64::MIN,
            tracking: true,
        }
    }
}

/// What appending a row found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noted {
    New,
    /// The series holds this time already, or tracking stopped: the series needs merging.
    Repeated,
}

impl SeriesRows {
    /// Appends row `row` at time `t`. `times` holds the time of every earlier row.
    #[inline]
    pub(crate) fn push(&mut self, row: u32, t: i64, times: &ChunkedVec<i64>) -> Noted {
        // The two common cases inline: the next point of a series in time order, and any row
        // of a series that stopped tracking (data replayed or written in no order keeps every
        // row on this path, so it must not be the cold one).
        match self.runs.first_mut() {
            Some(top) if !self.tracking => {
                top.push(row);
                return Noted::Repeated;
            }
            Some(top) if t > self.top_time => {
                top.push(row);
                self.top_time = t;
                return Noted::New;
            }
            Some(_) => {}
            None => {
                self.runs.push(vec![row]);
                self.top_time = t;
                return Noted::New;
            }
        }
        self.push_slow(row, t, times)
    }

    /// A tracking series' point that is not after its newest: find its run, or stop tracking.
    #[cold]
    fn push_slow(&mut self, row: u32, t: i64, times: &ChunkedVec<i64>) -> Noted {
        let time = |r: u32| times.get(r as usize);
        // The run with the largest last time below `t`, and that time.
        let mut best: Option<(usize, i64)> = None;
        for (i, run) in self.runs.iter().enumerate() {
            let first = time(run[0]);
            let last = time(*run.last().expect("runs are never empty"));
            if t >= first && t <= last && run.binary_search_by_key(&t, |&r| time(r)).is_ok() {
                return self.stop_tracking(row);
            }
            if last < t && best.is_none_or(|(_, b)| b < last) {
                best = Some((i, last));
            }
        }
        match best {
            Some((b, _)) => self.runs[b].push(row),
            None if self.runs.len() >= MAX_RUNS => return self.stop_tracking(row),
            None => self.runs.push(vec![row]),
        }
        Noted::New
    }

    #[cold]
    fn stop_tracking(&mut self, row: u32) -> Noted {
        let mut all: Vec<u32> = Vec::with_capacity(self.len() + 1);
        for run in self.runs.drain(..) {
            all.extend(run);
        }
        all.sort_unstable();
        all.push(row);
        self.runs.push(all);
        self.tracking = false;
        Noted::Repeated
    }

    /// The series holds some point more than once (or its times were not tracked).
    pub(crate) fn repeats(&self) -> bool {
        !self.tracking
    }

    pub(crate) fn len(&self) -> usize {
        self.runs.iter().map(Vec::len).sum()
    }

    /// Calls `each` with every row id in `[lo, hi)`: ascending within a run, runs one after
    /// another.
    pub(crate) fn rows_between(&self, lo: u32, hi: u32, mut each: impl FnMut(u32)) {
        for run in &self.runs {
            let start = run.partition_point(|&r| r < lo);
            for &r in run[start..].iter().take_while(|&&r| r < hi) {
                each(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Appends `t` as the next row, as the buffer does (the row's time is stored after).
    fn push(s: &mut SeriesRows, times: &mut ChunkedVec<i64>, t: i64) -> Noted {
        let row = times.len() as u32;
        let noted = s.push(row, t, times);
        times.push(t);
        noted
    }

    fn all_rows(s: &SeriesRows) -> Vec<u32> {
        let mut v = Vec::new();
        s.rows_between(0, u32::MAX, |r| v.push(r));
        v.sort_unstable();
        v
    }

    #[test]
    fn interleaved_increasing_streams_are_new() {
        let (mut s, mut times) = (SeriesRows::default(), ChunkedVec::default());
        for i in 0..100 {
            assert_eq!(push(&mut s, &mut times, i), Noted::New);
            assert_eq!(push(&mut s, &mut times, 10_000 + i), Noted::New);
        }
        assert_eq!(s.runs.len(), 2);
        assert_eq!(push(&mut s, &mut times, 5_000), Noted::New);
        assert_eq!(push(&mut s, &mut times, 50), Noted::Repeated);
        assert!(s.repeats());
        assert_eq!(push(&mut s, &mut times, 10_050), Noted::Repeated);
        assert_eq!(all_rows(&s), (0..times.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn gives_up_on_data_in_no_order_and_keeps_every_row() {
        let (mut s, mut times) = (SeriesRows::default(), ChunkedVec::default());
        let mut saw_give_up = false;
        for i in (0..1000).rev() {
            saw_give_up |= push(&mut s, &mut times, i) == Noted::Repeated;
        }
        assert!(saw_give_up, "a descending stream needs one run per point");
        assert_eq!(s.runs.len(), 1);
        assert_eq!(all_rows(&s), (0..1000).collect::<Vec<_>>());
    }

    proptest! {
        /// Repeated is reported exactly for times seen before, until tracking stops; the
        /// series always holds every row it was given, and a range of row ids finds exactly
        /// the rows in it.
        #[test]
        fn matches_a_set(
            times_in in proptest::collection::vec(0i64..200, 0..300),
            lo in 0u32..300,
            span in 0u32..300,
        ) {
            let (mut s, mut times) = (SeriesRows::default(), ChunkedVec::default());
            let mut seen = std::collections::HashSet::new();
            let mut tracking = true;
            for &t in &times_in {
                let got = push(&mut s, &mut times, t);
                let fresh = seen.insert(t);
                if tracking && s.repeats() {
                    tracking = false;
                    prop_assert_eq!(got, Noted::Repeated);
                } else if tracking {
                    prop_assert_eq!(got == Noted::Repeated, !fresh, "time {}", t);
                } else {
                    prop_assert_eq!(got, Noted::Repeated);
                }
            }
            prop_assert_eq!(s.len(), times_in.len());
            let hi = lo.saturating_add(span);
            let mut found = Vec::new();
            s.rows_between(lo, hi, |r| found.push(r));
            found.sort_unstable();
            let expected: Vec<u32> = (lo..hi.min(times_in.len() as u32)).collect();
            prop_assert_eq!(found, expected);
        }
    }
}
