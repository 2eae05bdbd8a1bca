//! Vector loops that give the same bits with and without the vector unit: a map of a pure
//! `f64` function (UMAP's powers), and 32-lane sums of squared differences and products in
//! single precision (NN-descent's distances). Each has a portable loop and the same loop
//! compiled for AVX2, chosen at run time; the AVX2 versions do the same operations in the same
//! order (separate multiply and add, no fused multiply-add), so results do not depend on the
//! CPU.

/// A pure function of one float, for [`map`]. A trait rather than a closure so that `at` is
/// always inlined into the AVX2 loop (a closure may be left as a scalar call per element).
pub(crate) trait Elementwise: Copy {
    /// The function's value at `x`.
    fn at(&self, x: f64) -> f64;
}

/// `out[i] = f.at(x[i])`: an AVX2 loop where the CPU has it (4 lanes, the same bits as the
/// scalar code; an AVX-512 build measured no faster), the baseline loop elsewhere.
#[inline]
pub(crate) fn map<F: Elementwise>(x: &[f64], out: &mut [f64], f: F) {
    assert_eq!(x.len(), out.len(), "simd::map: lengths differ");
    if let Some(avx2) = Avx2::detect() {
        avx2.map(x, out, f);
        return;
    }
    map_portable(x, out, f);
}

#[inline(always)]
fn map_portable<F: Elementwise>(x: &[f64], out: &mut [f64], f: F) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f.at(v);
    }
}

/// Proof that the CPU running this process has AVX2: only [`Avx2::detect`] makes one, so the
/// methods that run AVX2 code are safe to call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// `Some` when the CPU has AVX2 (never on other architectures).
    #[inline]
    pub(crate) fn detect() -> Option<Avx2> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some(Avx2(()));
        }
        None
    }

    /// [`map`]'s loop compiled for AVX2.
    #[inline]
    fn map<F: Elementwise>(self, x: &[f64], out: &mut [f64], f: F) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` exists only when `detect` found AVX2 on this CPU, which is all
        // `map_avx2`'s `target_feature` requires; the function itself is safe code.
        unsafe {
            map_avx2(x, out, f)
        }
        #[cfg(not(target_arch = "x86_64"))]
        map_portable(x, out, f)
    }

    /// [`lane_sum`] in four 8-lane registers.
    #[inline]
    pub(crate) fn lane_sum<const DIFF: bool>(self, a: &[f32], b: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` exists only when `detect` found AVX2 on this CPU; `lane_sum_avx2`
        // reads whole 32-lane chunks of the shorter slice only.
        unsafe {
            lane_sum_avx2::<DIFF>(a, b)
        }
        #[cfg(not(target_arch = "x86_64"))]
        lane_sum::<DIFF>(a, b)
    }
}

/// [`map_portable`] compiled for AVX2: the same operations in the same order, four at a time.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map_avx2<F: Elementwise>(x: &[f64], out: &mut [f64], f: F) {
    map_portable(x, out, f)
}

/// Slices are summed in chunks of this many lanes: four 8-lane sums side by side (one chain of
/// additions would wait on its own latency). Callers pad rows to a multiple of it.
pub(crate) const LANES: usize = 32;

/// Reduces the 32 lane sums in a fixed order: the four 8-lane sums pairwise, then the lanes.
#[inline(always)]
fn reduce32(acc: &[f32; LANES]) -> f32 {
    let v: [f32; 8] = std::array::from_fn(|l| (acc[l] + acc[8 + l]) + (acc[16 + l] + acc[24 + l]));
    ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
}

/// The 32-lane sum of `(a - b)^2` (`DIFF`) or of `a b` over whole 32-lane chunks of two
/// slices, portable.
pub(crate) fn lane_sum<const DIFF: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += if DIFF {
                (ca[l] - cb[l]) * (ca[l] - cb[l])
            } else {
                ca[l] * cb[l]
            };
        }
    }
    reduce32(&acc)
}

/// [`lane_sum`] in four 8-lane registers: each lane does the same operations in the same order
/// (separate multiply and add, no fused multiply-add), so the bits are the same.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lane_sum_avx2<const DIFF: bool>(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 4];
    // whole 32-lane chunks of the shorter slice, as the portable loop
    for c in 0..a.len().min(b.len()) / LANES {
        for (r, acc) in acc.iter_mut().enumerate() {
            let o = LANES * c + 8 * r;
            // SAFETY: `o + 8 <= LANES * (c + 1) <= min(a.len(), b.len())`, so both 8-float
            // unaligned loads stay inside the slices.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(o)),
                    _mm256_loadu_ps(b.as_ptr().add(o)),
                )
            };
            let p = if DIFF {
                let d = _mm256_sub_ps(x, y);
                _mm256_mul_ps(d, d)
            } else {
                _mm256_mul_ps(x, y)
            };
            *acc = _mm256_add_ps(*acc, p);
        }
    }
    let mut out = [0.0f32; LANES];
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: `8 * r + 8 <= LANES = out.len()` for r < 4.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * r), *acc) };
    }
    reduce32(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 and portable kernels give the same bits (no fused multiply-add, the same lane
    /// sums in the same order), so NN-descent's lists and UMAP's powers do not depend on the CPU.
    #[test]
    fn avx2_and_portable_kernels_agree_bit_for_bit() {
        let Some(avx2) = Avx2::detect() else { return };
        let mut r = crate::rng::Rng::new(1);
        for len in [32, 64, 800] {
            let a: Vec<f32> = (0..len).map(|_| r.normal() as f32 * 3.0).collect();
            let b: Vec<f32> = (0..len).map(|_| r.uniform() as f32).collect();
            assert_eq!(
                avx2.lane_sum::<true>(&a, &b).to_bits(),
                lane_sum::<true>(&a, &b).to_bits()
            );
            assert_eq!(
                avx2.lane_sum::<false>(&a, &b).to_bits(),
                lane_sum::<false>(&a, &b).to_bits()
            );
        }
        #[derive(Clone, Copy)]
        struct Cube;
        impl Elementwise for Cube {
            fn at(&self, v: f64) -> f64 {
                v * v * v - 0.5 * v
            }
        }
        let x: Vec<f64> = (0..1003).map(|_| r.normal() * 5.0).collect();
        let (mut fast, mut slow) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        avx2.map(&x, &mut fast, Cube);
        map_portable(&x, &mut slow, Cube);
        assert!(fast
            .iter()
            .zip(&slow)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
