//! The project's one deterministic random number generator: xorshift64*, seeded through
//! splitmix64. The same seed gives the same draws on every platform and every run, which is what
//! the simulator (scenarios, benchmark corpora) and the learning code (reservoir samples, the
//! isolation forest, cross-validation folds) need. It is **not** cryptographically secure: keys,
//! tokens and passwords use the operating system's generator (`getrandom`).
//!
//! [`Rng::derive`] gives independent streams under one seed: each actor of a scenario draws from
//! its own, so adding or changing one actor does not reshuffle the others.

/// xorshift64*: small, fast, deterministic; good enough for synthetic data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

/// One splitmix64 step: a bijective mix of a 64-bit value.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over a string: a stable 64-bit hash for names.
pub fn fnv(s: &str) -> u64 {
    crate::hash::fnv1a(s.as_bytes())
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8] = b"0123456789abcdef";

impl Rng {
    /// A generator for a seed (any seed, zero included).
    pub fn new(seed: u64) -> Rng {
        Rng(splitmix64(seed) | 1)
    }

    /// An independent stream for `label` under the scenario `seed`.
    pub fn derive(seed: u64, label: &str) -> Rng {
        Rng::new(seed ^ splitmix64(fnv(label)))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Shuffles `items` uniformly in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// An item drawn with the given weights.
    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|i| i.1).sum();
        let mut x = self.below(total.max(1) as usize) as u32;
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Normally distributed (Box-Muller).
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Poisson distributed with mean `lambda`.
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 30.0 {
            return self.normal(lambda, lambda.sqrt()).round().max(0.0) as u32;
        }
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = self.unit();
        while p > limit {
            k += 1;
            p *= self.unit();
        }
        k
    }

    /// `n` lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        let mut bits = 0u64;
        for i in 0..n {
            if i % 16 == 0 {
                bits = self.next_u64();
            }
            s.push(char::from(HEX[(bits & 15) as usize]));
            bits >>= 4;
        }
        s
    }

    /// A random (version 4) UUID.
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        // 8-4-4-4-12 hex digits, version 4, variant 10xx.
        let mut s = String::with_capacity(36);
        let hi = (a & !0xf000) | 0x4000;
        let lo = (b & !(0xc << 60)) | (0x8 << 60);
        for (i, shift) in (0..16).rev().enumerate() {
            if i == 8 || i == 12 {
                s.push('-');
            }
            s.push(char::from(HEX[((hi >> (shift * 4)) & 15) as usize]));
        }
        for (i, shift) in (0..16).rev().enumerate() {
            if i == 0 || i == 4 {
                s.push('-');
            }
            s.push(char::from(HEX[((lo >> (shift * 4)) & 15) as usize]));
        }
        s
    }
}

/// `n` characters of the AWS id alphabet (upper-case letters and 2-7), stable for `label`.
pub fn aws_id(label: &str, n: usize) -> String {
    let mut s = String::with_capacity(n);
    let mut state = fnv(label);
    let mut bits = 0;
    for i in 0..n {
        if i % 12 == 0 {
            state = splitmix64(state);
            bits = state;
        }
        s.push(char::from(UPPER_ALNUM[(bits & 31) as usize]));
        bits >>= 5;
    }
    s
}

/// `n` lower-case hex digits, stable for `label`.
pub fn stable_hex(label: &str, n: usize) -> String {
    let mut s = String::with_capacity(n);
    let mut state = fnv(label);
    let mut bits = 0;
    for i in 0..n {
        if i % 16 == 0 {
            state = splitmix64(state);
            bits = state;
        }
        s.push(char::from(HEX[(bits & 15) as usize]));
        bits >>= 4;
    }
    s
}

/// A UUID-shaped id, stable for `label` (an object id, a tenant, a subscription).
pub fn stable_uuid(label: &str) -> String {
    let x = stable_hex(label, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::{Rng, splitmix64};

    #[test]
    fn the_seed_goes_through_splitmix64() {
        // splitmix64's reference value for 0; the state is odd (xorshift needs it non-zero).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(Rng::new(0).0, 0xE220_A839_7B1D_CDAF | 1);
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
