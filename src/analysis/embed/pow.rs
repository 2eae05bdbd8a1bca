//! `x^b` for UMAP's gradients, in a form that vectorises and gives the same bits everywhere.
//!
//! Why not `f64::powf`: UMAP's optimisation spends more than half its time in it (one power per
//! edge sample and per negative sample, about 200 million on 10,000 points), it is a call into
//! the C library that the compiler cannot vectorise, and the C library may pick a different
//! code path (FMA or not) on another CPU. Here the power is `exp(b ln x)` written with plain
//! IEEE additions, multiplications and one division, with no fused multiply-add: the scalar
//! code, the SSE2 loop and the AVX2 loop give the same bits on any x86-64 or ARM machine.
//! Relative error below 1e-13 on the range UMAP uses (unit test against `powf`).

/// ln 2 split in two (fdlibm's constants, 6.93147180369123816490e-01 and
/// 1.90821492927058770002e-10): `n * LN2_HI` is exact for |n| < 2^20.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// 1.5 * 2^52: adding it rounds a float of magnitude below 2^51 to an integer, kept in the
/// low bits of the sum.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// Arguments are raised to this first (UMAP only asks for squared distances above zero).
const TINY: f64 = 1e-300;

/// `ln x` for `x > 0` (smaller arguments are taken as [`TINY`]).
#[inline(always)]
fn ln_pos(x: f64) -> f64 {
    let x = if x < TINY { TINY } else { x };
    let bits = x.to_bits();
    // the biased exponent as a float without an integer conversion (AVX2 has none for i64)
    let e =
        f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - (4_503_599_627_370_496.0 + 1023.0);
    let m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    // mantissa in [sqrt(1/2), sqrt(2)): |s| < 0.1716 below
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = if big { e + 1.0 } else { e };
    // ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^21/21), truncation below 1e-17
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    let ln_m = 2.0 * s + 2.0 * s * (s2 * p);
    e * LN2_HI + (e * LN2_LO + ln_m)
}

/// `e^y`, with `y` clamped to [-708, 709] (the normal range).
#[inline(always)]
fn exp_clamped(y: f64) -> f64 {
    let y = y.clamp(-708.0, 709.0);
    let t = y * std::f64::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    // |r| <= ln(2)/2; Taylor to r^13/13!, truncation below 2e-17
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // 2^n from n's bits in the low bits of t
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    p * f64::from_bits(n_bits.wrapping_add(1023) << 52)
}

/// `x^b` for `x > 0` and moderate `b` (UMAP's b is between about 0.5 and 2); arguments below
/// 1e-300 count as 1e-300, and results are kept within e^-708 and e^709.
#[inline(always)]
pub(super) fn pow_pos(x: f64, b: f64) -> f64 {
    exp_clamped(b * ln_pos(x))
}

pub(super) use crate::kernels::simd::{map, Elementwise};

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Vec<f64> {
        let mut v = vec![
            1e-300, 1e-200, 1e-30, 1e-9, 0.5, 1.0, 1.5, 2.0, 1e3, 1e9, 1e30,
        ];
        let mut r = crate::rng::Rng::new(3);
        v.extend((0..20_000).map(|_| (r.uniform() * 30.0 - 15.0).exp()));
        v
    }

    #[test]
    fn matches_powf() {
        for &b in &[0.5, 0.7915, 0.8951, 1.0, 1.3, 1.929, 2.0] {
            for &x in &args() {
                let (got, want) = (pow_pos(x, b), x.powf(b));
                if want < 1e-300 {
                    // below the normal range: clamped to e^-708, still tiny
                    assert!(got < 1e-300, "{x:e}^{b}: {got:e}");
                    continue;
                }
                assert!(
                    ((got - want) / want).abs() < 1e-13,
                    "{x:e}^{b}: {got:e} vs powf {want:e}"
                );
            }
        }
        assert_eq!(pow_pos(1.0, 0.9), 1.0);
        assert_eq!(pow_pos(0.0, 0.9), pow_pos(1e-300, 0.9));
    }

    #[test]
    fn batch_has_the_scalar_bits() {
        let x = args();
        #[derive(Clone, Copy)]
        struct Rep;
        impl Elementwise for Rep {
            #[inline(always)]
            fn at(&self, v: f64) -> f64 {
                let p = pow_pos(v, 0.8951);
                2.0 / ((0.001 + v) * (1.577 * p + 1.0))
            }
        }
        let f = Rep;
        let mut out = vec![0.0; x.len()];
        map(&x, &mut out, f);
        // (the AVX2 loop against the portable one: kernels::simd's test)
        for (&v, &o) in x.iter().zip(&out) {
            assert_eq!(o.to_bits(), f.at(v).to_bits());
        }
    }
}
