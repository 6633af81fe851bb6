//! The guests' pseudo-random numbers: one xorshift64* generator ([`Rng`]) and SplitMix64's
//! finaliser ([`mix`]), so that `garbage` and `soak` (and whatever comes next) draw the same
//! numbers from the same seeds. Deterministic by design: a run is reproducible from its seed.

/// SplitMix64's finaliser: a bijection on `u64` that spreads every input bit over the output.
pub const fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A xorshift64* generator.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from any `seed` (spread with [`mix`], never the all-zero state).
    pub const fn new(seed: u64) -> Self {
        Rng(mix(seed) | 1)
    }

    /// A generator that starts from exactly `state`, which must not be 0 (xorshift stays at
    /// 0 forever).
    pub const fn from_state(state: u64) -> Self {
        Rng(state)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent` % of the time.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
