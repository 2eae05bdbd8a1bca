//! `exp(x - shift)` for a row of floats with the bits of glibc's `expf`, eight at a time.
//!
//! Why: softmax (a ViT's attention probabilities, every classifier's output) must keep
//! candle's bits, and candle's `exp` is `f32::exp`, which on x86-64 Linux is glibc's `expf`:
//! one call per value, 3.7 % of a ViT-B/16 recording. Since glibc 2.27 that function (ARM's
//! optimized-routines algorithm, `sysdeps/ieee754/flt-32/e_expf.c`) works in double precision
//! with a 32-entry table, and on a CPU with FMA glibc runs its FMA build (`__expf_fma`), whose
//! machine code fuses four multiply-adds. [`exp_shifted`] does those operations, fused where
//! that build fuses them, on 4 doubles per register, so each value is the one `f32::exp` gives
//! there; values at or beyond +-88 (glibc's special cases) and NaN go to `f32::exp` itself. A
//! test compares the two over a sweep of bit patterns and compares the vector code with a
//! scalar transcription, so a glibc whose `expf` changed would be caught.
//!
//! Elsewhere (no AVX2 and FMA, another C library, another architecture) every value goes to
//! `f32::exp`, as before.

/// glibc's `__exp2f_data` for `expf` (N = 32), by the bits of its source (and of the
/// library's read-only data: `objdump` of `__expf_fma` in Debian's glibc 2.36).
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
mod consts {
    /// `N / ln 2`.
    pub(super) const INV_LN2_N: f64 = f64::from_bits(0x4047_1547_652b_82fe);
    /// `0x1.8p52`: adding it rounds to an integer held in the low mantissa bits.
    pub(super) const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000);
    /// The cubic's coefficients, highest degree first.
    pub(super) const C: [f64; 3] = [
        f64::from_bits(0x3ebc_6af8_4b91_2394),
        f64::from_bits(0x3f2e_bfce_50fa_c4f3),
        f64::from_bits(0x3f96_2e42_ff0c_52d6),
    ];
    /// `2^(i / N)` with `i << 47` subtracted from its bits.
    pub(super) const T: [u64; 32] = [
        0x3ff0000000000000,
        0x3fefd9b0d3158574,
        0x3fefb5586cf9890f,
        0x3fef9301d0125b51,
        0x3fef72b83c7d517b,
        0x3fef54873168b9aa,
        0x3fef387a6e756238,
        0x3fef1e9df51fdee1,
        0x3fef06fe0a31b715,
        0x3feef1a7373aa9cb,
        0x3feedea64c123422,
        0x3feece086061892d,
        0x3feebfdad5362a27,
        0x3feeb42b569d4f82,
        0x3feeab07dd485429,
        0x3feea47eb03a5585,
        0x3feea09e667f3bcd,
        0x3fee9f75e8ec5f74,
        0x3feea11473eb0187,
        0x3feea589994cce13,
        0x3feeace5422aa0db,
        0x3feeb737b0cdc5e5,
        0x3feec49182a3f090,
        0x3feed503b23e255d,
        0x3feee89f995ad3ad,
        0x3feeff76f2fb5e47,
        0x3fef199bdd85529c,
        0x3fef3720dcef9069,
        0x3fef5818dcfba487,
        0x3fef7c97337b9b5f,
        0x3fefa4afa2a490da,
        0x3fefd0765b6e4540,
    ];
    /// Bits 20-30 of a float from which glibc takes its special-case path (`|x| >= 88`).
    pub(super) const SPECIAL_TOP: u32 = 0x42b;
}

/// `out[i] = (row[i] - shift).exp()`, bit for bit, on all platforms; eight at a time where
/// glibc's FMA `expf` is what `f32::exp` calls (see the module).
pub(crate) fn exp_shifted(row: &[f32], shift: f32, out: &mut [f32]) {
    assert_eq!(row.len(), out.len(), "exp_shifted: lengths differ");
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA were detected just above; `row` and `out` hold `row.len()`
        // values each and do not overlap (a shared and an exclusive borrow).
        unsafe { exp_shifted_avx2(row.as_ptr(), out.as_mut_ptr(), row.len(), shift) };
        return;
    }
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (v - shift).exp();
    }
}

/// [`exp_shifted`] in place: `v[i] = (v[i] - shift).exp()`, the same bits.
pub(crate) fn exp_shifted_in_place(v: &mut [f32], shift: f32) {
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA were detected just above; `v` holds `v.len()` values, and the
        // loop reads each block of eight before it writes that block.
        unsafe { exp_shifted_avx2(v.as_ptr(), v.as_mut_ptr(), v.len(), shift) };
        return;
    }
    for o in v.iter_mut() {
        *o = (*o - shift).exp();
    }
}

/// glibc's `expf` main path, transcribed in scalar code with its fused multiply-adds: the
/// reference the vector code is tested against (valid where `|x| < 88` and not NaN).
#[cfg(all(test, target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
fn expf_main_path(x: f32) -> f32 {
    use consts::*;
    let xd = x as f64;
    let kd = INV_LN2_N.mul_add(xd, SHIFT);
    let ki = kd.to_bits();
    let kd = kd - SHIFT;
    let r = INV_LN2_N.mul_add(xd, -kd);
    let s = f64::from_bits(T[(ki % 32) as usize].wrapping_add(ki << 47));
    let z = r.mul_add(C[0], C[1]);
    let r2 = r * r;
    let y = r.mul_add(C[2], 1.0);
    let y = z.mul_add(r2, y);
    (y * s) as f32
}

/// [`exp_shifted`] on 8 floats a step (two registers of 4 doubles); a step with a lane on
/// glibc's special path, and the tail, go through `f32::exp`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `row` must be readable and `out` writable for `len`
/// values; they may be the same address (in place), not otherwise overlap.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_shifted_avx2(row: *const f32, out: *mut f32, len: usize, shift: f32) {
    use consts::*;
    use std::arch::x86_64::*;
    let n = len / 8 * 8;
    // each value is read (`at`) before its own slot is written (`put`)
    // SAFETY (both): the caller's; i < len.
    let at = |i: usize| unsafe { *row.add(i) };
    let put = |i: usize, v: f32| unsafe { *out.add(i) = v };
    let sh = _mm256_set1_ps(shift);
    let top = _mm256_set1_epi32(SPECIAL_TOP as i32 - 1);
    let half = |xd: __m256d| -> __m128 {
        let kd = _mm256_fmadd_pd(_mm256_set1_pd(INV_LN2_N), xd, _mm256_set1_pd(SHIFT));
        let ki = _mm256_castpd_si256(kd);
        let kd = _mm256_sub_pd(kd, _mm256_set1_pd(SHIFT));
        let r = _mm256_fmsub_pd(_mm256_set1_pd(INV_LN2_N), xd, kd);
        let idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
        // SAFETY: every index is in 0..32, the table's length.
        let t = unsafe { _mm256_i64gather_epi64::<8>(T.as_ptr().cast(), idx) };
        let s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64::<47>(ki)));
        let z = _mm256_fmadd_pd(r, _mm256_set1_pd(C[0]), _mm256_set1_pd(C[1]));
        let r2 = _mm256_mul_pd(r, r);
        let y = _mm256_fmadd_pd(r, _mm256_set1_pd(C[2]), _mm256_set1_pd(1.0));
        let y = _mm256_fmadd_pd(z, r2, y);
        _mm256_cvtpd_ps(_mm256_mul_pd(y, s))
    };
    for i in (0..n).step_by(8) {
        // SAFETY: `i + 8 <= n <= len`.
        let x = _mm256_sub_ps(unsafe { _mm256_loadu_ps(row.add(i)) }, sh);
        // bits 20-30 (the exponent and the mantissa's top three bits), as glibc tests them
        let abstop = _mm256_and_si256(
            _mm256_srli_epi32::<20>(_mm256_castps_si256(x)),
            _mm256_set1_epi32(0x7ff),
        );
        if _mm256_movemask_epi8(_mm256_cmpgt_epi32(abstop, top)) != 0 {
            for j in i..i + 8 {
                put(j, (at(j) - shift).exp());
            }
            continue;
        }
        let lo = half(_mm256_cvtps_pd(_mm256_castps256_ps128(x)));
        let hi = half(_mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)));
        let y = _mm256_set_m128(hi, lo);
        // SAFETY: as for the load.
        unsafe { _mm256_storeu_ps(out.add(i), y) };
    }
    for j in n..len {
        put(j, (at(j) - shift).exp());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Float bit patterns from `lo` to `hi` (as `f32`s) every `step`, plus the edges.
    fn sweep(lo: f32, hi: f32, step: u32) -> Vec<f32> {
        let (a, b) = (lo.to_bits(), hi.to_bits());
        let (a, b) = (a.min(b), a.max(b));
        let mut v: Vec<f32> = (a..=b).step_by(step as usize).map(f32::from_bits).collect();
        v.extend([
            lo, hi, -0.0, 0.0, 87.99, -87.99, 88.0, -88.0, -103.5, -104.0,
        ]);
        v.extend([
            f32::NEG_INFINITY,
            f32::INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ]);
        v
    }

    /// The vector code equals `f32::exp` (here glibc's `expf`) bit for bit: negative values
    /// down to -110 (a softmax's range, glibc's underflow cases included), positive ones up
    /// to overflow, and the specials; in place as into another buffer.
    #[test]
    fn equals_f32_exp_bit_for_bit() {
        let mut xs = sweep(-0.0, -110.0, 97);
        xs.extend(sweep(0.0, 90.0, 89));
        for shift in [0.0f32, 3.25, -1.5] {
            let mut out = vec![0.0f32; xs.len()];
            exp_shifted(&xs, shift, &mut out);
            // in place: the same bits
            let mut inplace = xs.clone();
            exp_shifted_in_place(&mut inplace, shift);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&inplace), bits(&out), "in place, shift {shift}");
            for (&x, &y) in xs.iter().zip(&out) {
                let want = (x - shift).exp();
                assert!(
                    y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                    "exp({x} - {shift}): {y:e} ({:#x}), f32::exp gives {want:e} ({:#x})",
                    y.to_bits(),
                    want.to_bits()
                );
            }
        }
    }

    /// Not vacuous where the vector code runs: it is glibc's algorithm (the scalar
    /// transcription), which differs from a plain `(x as f64).exp() as f32` somewhere.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    fn vector_code_is_glibcs_algorithm() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            eprintln!("SKIPPED: no AVX2 and FMA, the vector code does not run here");
            return;
        }
        let xs = sweep(-0.0, -87.0, 101);
        let mut out = vec![0.0f32; xs.len()];
        exp_shifted(&xs, 0.0, &mut out);
        let mut other = 0;
        for (&x, &y) in xs.iter().zip(&out) {
            if x.is_finite() && x.abs() < 87.5 {
                assert_eq!(y.to_bits(), expf_main_path(x).to_bits(), "exp({x})");
                other += usize::from(((x as f64).exp() as f32).to_bits() != y.to_bits());
            }
        }
        // a double-precision exp rounded once is correctly rounded almost always; glibc's
        // 0.502-ulp algorithm is not, on a few of these 10 million values
        assert!(other > 0, "the sweep cannot tell the algorithms apart");
    }
}
