//! Per-page bitmaps of VMOs (committed, dirty, awaiting clean).
//!
//! A plain `Vec<u64>` allocated zeroed, so creating the bitmap of a huge VMO costs no time and
//! no memory until pages are touched (the allocator hands out lazily zeroed pages); a 64 GiB
//! VMO's bitmap is 2 MiB that nobody writes until the VMO is used.

use std::ops::Range;

/// One bit per page.
#[derive(Clone, Debug, Default)]
pub struct PageBits {
    words: Vec<u64>,
    len: usize,
}

impl PageBits {
    /// `len` clear bits.
    pub fn with_capacity(len: usize) -> PageBits {
        PageBits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Whether bit `i` is set (`false` past the end).
    pub fn contains(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Sets bit `i` to `on` (ignored past the end).
    pub fn set(&mut self, i: usize, on: bool) {
        if i < self.len {
            let bit = 1 << (i % 64);
            if on {
                self.words[i / 64] |= bit;
            } else {
                self.words[i / 64] &= !bit;
            }
        }
    }

    /// Sets bit `i`.
    pub fn insert(&mut self, i: usize) {
        self.set(i, true);
    }

    /// Sets every bit of `range` (clipped to the length).
    pub fn insert_range(&mut self, range: Range<usize>) {
        self.fill(range, true);
    }

    /// Clears every bit of `range` (clipped to the length).
    pub fn remove_range(&mut self, range: Range<usize>) {
        self.fill(range, false);
    }

    /// Whether any bit of `range` is set.
    pub fn contains_any_in_range(&self, range: Range<usize>) -> bool {
        self.spans(range).any(|(w, mask)| self.words[w] & mask != 0)
    }

    /// The maximal runs of bits in `range` that are set and that `also` accepts, in order;
    /// stretches of 64 clear bits are skipped a word at a time.
    pub fn runs_where(
        &self,
        range: Range<usize>,
        also: impl Fn(usize) -> bool,
    ) -> Vec<Range<usize>> {
        let take = |i: usize| self.contains(i) && also(i);
        let (mut runs, mut i) = (Vec::new(), range.start);
        while i < range.end {
            let chunk_end = (i + 64).min(range.end);
            if !self.contains_any_in_range(i..chunk_end) {
                i = chunk_end;
                continue;
            }
            if !take(i) {
                i += 1;
                continue;
            }
            let start = i;
            while i < range.end && take(i) {
                i += 1;
            }
            runs.push(start..i);
        }
        runs
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    fn fill(&mut self, range: Range<usize>, on: bool) {
        for (w, mask) in self.spans(range) {
            if on {
                self.words[w] |= mask;
            } else {
                self.words[w] &= !mask;
            }
        }
    }

    /// The words `range` touches, each with the mask of its bits inside the range.
    fn spans(&self, range: Range<usize>) -> impl Iterator<Item = (usize, u64)> + use<> {
        let (start, end) = (range.start.min(self.len), range.end.min(self.len));
        let words = if start < end {
            start / 64..end.div_ceil(64)
        } else {
            0..0
        };
        words.map(move |w| {
            let lo = start.max(w * 64) - w * 64;
            let hi = end.min(w * 64 + 64) - w * 64;
            let mask = if hi - lo == 64 {
                !0
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            (w, mask)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_where_finds_maximal_accepted_runs() {
        let mut bits = PageBits::with_capacity(300);
        bits.insert_range(3..10);
        bits.insert_range(130..140);
        bits.insert(299);
        assert_eq!(
            bits.runs_where(0..300, |_| true),
            vec![3..10, 130..140, 299..300]
        );
        assert_eq!(
            bits.runs_where(5..135, |i| i != 7),
            vec![5..7, 8..10, 130..135]
        );
        assert!(bits.runs_where(10..130, |_| true).is_empty());
    }

    #[test]
    fn ranges_match_a_bool_model() {
        let mut bits = PageBits::with_capacity(300);
        let mut model = vec![false; 300];
        let ops = [
            (0, 1, true),
            (5, 200, true),
            (63, 65, false),
            (128, 300, false),
            (299, 400, true),
        ];
        for (a, b, on) in ops {
            if on {
                bits.insert_range(a..b);
            } else {
                bits.remove_range(a..b);
            }
            for m in model.iter_mut().take(b.min(300)).skip(a) {
                *m = on;
            }
            for (i, &m) in model.iter().enumerate() {
                assert_eq!(bits.contains(i), m, "bit {i} after {a}..{b}={on}");
            }
            assert_eq!(bits.count_ones(), model.iter().filter(|&&m| m).count());
            for (x, y) in [(0, 64), (60, 70), (128, 129), (250, 300), (0, 300)] {
                assert_eq!(
                    bits.contains_any_in_range(x..y),
                    model[x..y].iter().any(|&m| m)
                );
            }
        }
        assert!(!bits.contains(300), "past the end");
        bits.set(1000, true);
        assert!(!bits.contains(1000));
    }
}
