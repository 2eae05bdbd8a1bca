//! A small seeded random number generator that neuroscope owns.
//!
//! Reproducibility "to the byte" means the numbers behind a subset, a weight initialisation or a
//! t-SNE start must not change when a dependency bumps its version. `rand`'s `StdRng` reserves
//! the right to change its algorithm, so neuroscope uses xoshiro256++ (Blackman and Vigna),
//! seeded through SplitMix64, written out here in a few lines and frozen.

/// SplitMix64's output step for the input `x`: a fixed, well-mixed 64-bit hash. UMAP's negative
/// samples and NN-descent's random choices are hashes of (seed, point, step ...) through it, so
/// they do not depend on the order in which threads run.
#[inline]
pub(crate) fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ seeded with SplitMix64.
///
/// ```
/// use neuroscope::rng::Rng;
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let x = a.uniform();
/// assert!((0.0..1.0).contains(&x));
/// ```
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            let z = mix64(sm);
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform `f64` in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` without modulo bias (Lemire's method). `n` must be > 0.
    ///
    /// ```
    /// let mut r = neuroscope::rng::Rng::new(1);
    /// assert!(r.below(10) < 10);
    /// ```
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        let mut m = (self.next_u64() as u128) * (n as u128);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = (self.next_u64() as u128) * (n as u128);
            }
        }
        (m >> 64) as u64
    }

    /// A standard normal sample (Box-Muller; one of the pair is discarded so the stream stays
    /// simple to reproduce).
    ///
    /// ```
    /// let mut r = neuroscope::rng::Rng::new(3);
    /// assert!(r.normal().is_finite());
    /// ```
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // in (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Shuffles `items` in place (Fisher-Yates).
    ///
    /// ```
    /// let mut v: Vec<u32> = (0..10).collect();
    /// neuroscope::rng::Rng::new(0).shuffle(&mut v);
    /// v.sort();
    /// assert_eq!(v, (0..10).collect::<Vec<_>>());
    /// ```
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// `k` distinct indices from `0..n`, in random order (a partial Fisher-Yates shuffle).
    /// Returns `None` when `k > n`.
    ///
    /// ```
    /// let idx = neuroscope::rng::Rng::new(0).sample_indices(100, 5).unwrap();
    /// assert_eq!(idx.len(), 5);
    /// ```
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Option<Vec<usize>> {
        if k > n {
            return None;
        }
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + self.below((n - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(k);
        Some(all)
    }
}
