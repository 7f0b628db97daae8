//! A tiny deterministic pseudo-random number generator.
//!
//! [`Rng`] implements splitmix64 (Steele, Lea, Flood 2014). It is fast, has a
//! 64-bit state, and gives the same sequence for the same seed on every
//! platform, which makes model fitting reproducible. It is **not**
//! cryptographically secure.

/// splitmix64 generator; the field is the internal state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    /// Creates a generator from a seed. Any seed (including 0) is fine.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Returns the next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a uniform integer in `0..n`, without modulo bias.
    ///
    /// # Panics
    /// Panics if `n == 0`.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below called with n = 0");
        let n = n as u64;
        // Largest multiple of n that fits: values at or above it are rejected
        // so every residue is equally likely.
        let limit = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < limit {
                return (x % n) as usize;
            }
        }
    }

    /// Returns a uniform `f64` in `[0, 1)` (53 random mantissa bits).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Shuffles `items` uniformly in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn matches_reference_splitmix64_sequence() {
        // Reference values of splitmix64 seeded with 0.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn same_seed_same_sequence_different_seed_differs() {
        let a: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..10).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..10).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::new(43);
            (0..10).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_in_range_and_covers_all_values() {
        let mut r = Rng::new(7);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            let v = r.below(6);
            assert!(v < 6);
            counts[v] += 1;
        }
        // Each bucket expects 10_000; allow a generous 5% deviation.
        for &c in &counts {
            assert!((9_500..=10_500).contains(&c), "counts {counts:?}");
        }
        assert_eq!(r.below(1), 0);
    }

    #[test]
    #[should_panic(expected = "n = 0")]
    fn below_zero_panics() {
        Rng::new(1).below(0);
    }

    #[test]
    fn unit_is_in_half_open_interval_with_mean_one_half() {
        let mut r = Rng::new(3);
        let mut sum = 0.0;
        let n = 100_000;
        for _ in 0..n {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            sum += u;
        }
        let mean = sum / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn shuffle_is_a_permutation_and_moves_things() {
        let mut r = Rng::new(11);
        let mut v: Vec<u32> = (0..100).collect();
        r.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<u32>>());
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>());
        // Empty and single-element slices are fine.
        r.shuffle::<u8>(&mut []);
        let mut one = [5];
        r.shuffle(&mut one);
        assert_eq!(one, [5]);
    }

    #[test]
    fn shuffle_puts_each_item_first_about_equally_often() {
        let mut r = Rng::new(99);
        let mut first = [0usize; 4];
        for _ in 0..40_000 {
            let mut v = [0usize, 1, 2, 3];
            r.shuffle(&mut v);
            first[v[0]] += 1;
        }
        for &c in &first {
            assert!((9_500..=10_500).contains(&c), "first {first:?}");
        }
    }
}
