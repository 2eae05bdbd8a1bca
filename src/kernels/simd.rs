//! Vector loops that give the same bits with and without the vector unit: a map of a pure
//! `f64` function (UMAP's powers), the radius test of a row of fast distances (DBSCAN's
//! neighbourhoods), squared distances from rows to a few targets (k-means), t-SNE's attractive
//! force on a point of a 2-D embedding, 32-lane sums of squared differences and products in
//! single precision (NN-descent's distances), and GELU with its single-precision erf. Each has
//! a portable loop and the same loop compiled for AVX2, chosen at run time; the AVX2 versions
//! do the same operations in the same order (separate multiply and add, no fused
//! multiply-add), so results do not depend on the CPU.

use std::mem::MaybeUninit;

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

/// The radius test of one row of a distance search from dot products: pair `j` has the fast
/// squared distance `v = max(na + nb[j] - 2 dots[j], 0)` and the rounding band
/// `sl = slack_rel (na + nb[j]) + slack_abs`; bit `j % 32` of `inside[j / 32]` says
/// `v < eps2 - sl` (certainly within the radius), of `band[j / 32]` that `v` lies within `sl` of
/// `eps2` (the exact distance must decide). An AVX2 loop where the CPU has it, the same
/// operations in the same order (the bits cannot differ).
/// The dot products may be single precision (a float product's candidates, with a slack that
/// covers its rounding); the test itself runs in double precision.
#[allow(clippy::too_many_arguments)]
pub(crate) fn radius_masks<D: Copy + Into<f64>>(
    dots: &[D],
    nb: &[f64],
    na: f64,
    eps2: f64,
    (slack_rel, slack_abs): (f64, f64),
    inside: &mut [u32],
    band: &mut [u32],
) {
    let words = dots.len().div_ceil(32);
    assert!(
        nb.len() == dots.len() && inside.len() == words && band.len() == words,
        "simd::radius_masks: lengths differ"
    );
    let f = RadiusTest {
        na,
        eps2,
        slack_rel,
        slack_abs,
    };
    if let Some(avx2) = Avx2::detect() {
        avx2.radius_masks(dots, nb, f, inside, band);
        return;
    }
    radius_masks_portable(dots, nb, f, inside, band);
}

/// The constants of [`radius_masks`].
#[derive(Clone, Copy)]
struct RadiusTest {
    na: f64,
    eps2: f64,
    slack_rel: f64,
    slack_abs: f64,
}

#[inline(always)]
fn radius_masks_portable<D: Copy + Into<f64>>(
    dots: &[D],
    nb: &[f64],
    f: RadiusTest,
    inside: &mut [u32],
    band: &mut [u32],
) {
    for (((d, n), a), b) in dots
        .chunks(32)
        .zip(nb.chunks(32))
        .zip(inside.iter_mut())
        .zip(band.iter_mut())
    {
        let (mut wa, mut wb) = (0u32, 0u32);
        for (l, (&dot, &nb)) in d.iter().zip(n).enumerate() {
            let v = (f.na + nb - 2.0 * dot.into()).max(0.0);
            let sl = f.slack_rel * (f.na + nb) + f.slack_abs;
            let is_in = v < f.eps2 - sl;
            wa |= u32::from(is_in) << l;
            wb |= u32::from(!is_in && v <= f.eps2 + sl) << l;
        }
        *a = wa;
        *b = wb;
    }
}

/// [`radius_masks_portable`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn radius_masks_avx2<D: Copy + Into<f64>>(
    dots: &[D],
    nb: &[f64],
    f: RadiusTest,
    inside: &mut [u32],
    band: &mut [u32],
) {
    radius_masks_portable(dots, nb, f, inside, band)
}

/// Squared euclidean distances from each row of `rows` (row-major, `p` columns) to every target:
/// `out[r * targets.len() + t]`. Each pair is summed as `neighbors::sq_dist_slice` sums it (four
/// lane sums over chunks of four, then `(l0 + l1) + (l2 + l3) + tail`), so the bits are the same;
/// four pairs are interleaved so that their addition chains overlap instead of each waiting on
/// its own latency, compiled for AVX2 where the CPU has it (one register per pair).
pub(crate) fn sq_dists(rows: &[f64], p: usize, targets: &[&[f64]], out: &mut [f64]) {
    let n = rows.len().checked_div(p).unwrap_or(0);
    assert!(
        p > 0
            && rows.len() == n * p
            && out.len() == n * targets.len()
            && targets.iter().all(|t| t.len() == p),
        "simd::sq_dists: lengths differ"
    );
    if let Some(avx2) = Avx2::detect() {
        avx2.sq_dists(rows, p, targets, out);
        return;
    }
    sq_dists_portable(rows, p, targets, out);
}

#[inline(always)]
fn sq_dists_portable(rows: &[f64], p: usize, targets: &[&[f64]], out: &mut [f64]) {
    if targets.is_empty() {
        return;
    }
    for (row, o) in rows
        .chunks_exact(p)
        .zip(out.chunks_exact_mut(targets.len()))
    {
        let mut t = 0;
        while t + 4 <= targets.len() {
            let g = [targets[t], targets[t + 1], targets[t + 2], targets[t + 3]];
            o[t..t + 4].copy_from_slice(&sq_dist_many(row, g));
            t += 4;
        }
        while t < targets.len() {
            o[t] = sq_dist_many(row, [targets[t]])[0];
            t += 1;
        }
    }
}

/// The squared distances from `a` to `J` slices of its length, interleaved (see [`sq_dists`]).
#[inline(always)]
fn sq_dist_many<const J: usize>(a: &[f64], b: [&[f64]; J]) -> [f64; J] {
    let p = a.len();
    let mut acc = [[0.0f64; 4]; J];
    for c in 0..p / 4 {
        let ac = &a[4 * c..4 * c + 4];
        for (acc, b) in acc.iter_mut().zip(&b) {
            let bc = &b[4 * c..4 * c + 4];
            for k in 0..4 {
                let d = ac[k] - bc[k];
                acc[k] += d * d;
            }
        }
    }
    std::array::from_fn(|j| {
        let mut tail = 0.0;
        for i in 4 * (p / 4)..p {
            let d = a[i] - b[j][i];
            tail += d * d;
        }
        let acc = &acc[j];
        (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
    })
}

/// [`sq_dists_portable`] in AVX2 registers: one register holds a pair's four lane sums, four
/// pairs side by side, each lane doing the portable code's operations in its order (separate
/// subtract, multiply and add; the lane sums reduced and the tail added in scalar code as there).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sq_dists_avx2(rows: &[f64], p: usize, targets: &[&[f64]], out: &mut [f64]) {
    let k = targets.len();
    if k == 0 {
        return;
    }
    for (row, o) in rows.chunks_exact(p).zip(out.chunks_exact_mut(k)) {
        let mut t = 0;
        while t + 4 <= k {
            // SAFETY: AVX2 is enabled in this function; every target has the row's length.
            let d = unsafe { sq_dists_group_avx2::<4>(row, &targets[t..t + 4]) };
            o[t..t + 4].copy_from_slice(&d);
            t += 4;
        }
        while t < k {
            // SAFETY: as above.
            o[t] = unsafe { sq_dists_group_avx2::<1>(row, &targets[t..t + 1]) }[0];
            t += 1;
        }
    }
}

/// The squared distances from `row` to `G` targets of its length, side by side in `G`
/// registers (`G` a constant, so that the accumulators stay in registers).
///
/// # Safety
/// The CPU must support AVX2; `targets` holds at least `G` slices of `row`'s length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn sq_dists_group_avx2<const G: usize>(row: &[f64], targets: &[&[f64]]) -> [f64; G] {
    use std::arch::x86_64::*;
    let p = row.len();
    let whole = p / 4;
    let mut acc = [_mm256_setzero_pd(); G];
    for c in 0..whole {
        // SAFETY: `4 c + 4 <= p`, the length of `row` and of every target (the caller's
        // contract), so each 4-lane unaligned load stays inside its slice.
        let a = unsafe { _mm256_loadu_pd(row.as_ptr().add(4 * c)) };
        for j in 0..G {
            // SAFETY: as above, for target `j < G`.
            let b = unsafe { _mm256_loadu_pd(targets[j].as_ptr().add(4 * c)) };
            let d = _mm256_sub_pd(a, b);
            acc[j] = _mm256_add_pd(acc[j], _mm256_mul_pd(d, d));
        }
    }
    std::array::from_fn(|j| {
        let mut lanes = [0.0f64; 4];
        // SAFETY: `lanes` holds exactly the 4 doubles stored.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), acc[j]) };
        let mut tail = 0.0;
        for i in 4 * whole..p {
            let d = row[i] - targets[j][i];
            tail += d * d;
        }
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
    })
}

/// t-SNE's attractive force on the point `(y0, y1)` of a 2-D embedding `ys` (`x0 y0 x1 y1 ...`)
/// from its neighbours `idx` with affinities `val`: the sum over the edges, in their order, of
/// `m (dx, dy)` with `(dx, dy)` the difference to the neighbour,
/// `m = (exag p) / ((1 + dx^2) + dy^2)`. The AVX2 loop computes four edges' `m dx`, `m dy` side
/// by side (the division, the loop's cost, four at a time) and adds them to the force one by
/// one in edge order, so the bits are the scalar loop's.
pub(crate) fn tsne_attraction_2d(
    (y0, y1): (f64, f64),
    ys: &[f64],
    idx: &[usize],
    val: &[f64],
    exag: f64,
) -> [f64; 2] {
    assert_eq!(
        idx.len(),
        val.len(),
        "simd::tsne_attraction_2d: lengths differ"
    );
    if let Some(avx2) = Avx2::detect() {
        return avx2.tsne_attraction_2d((y0, y1), ys, idx, val, exag);
    }
    tsne_attraction_2d_portable([0.0; 2], (y0, y1), ys, idx, val, exag)
}

/// The scalar loop, continuing the running sums `f`.
#[inline(always)]
fn tsne_attraction_2d_portable(
    mut f: [f64; 2],
    (y0, y1): (f64, f64),
    ys: &[f64],
    idx: &[usize],
    val: &[f64],
    exag: f64,
) -> [f64; 2] {
    for (&j, &pij) in idx.iter().zip(val) {
        let (dx, dy) = (y0 - ys[2 * j], y1 - ys[2 * j + 1]);
        let q = 1.0 / (1.0 + dx * dx + dy * dy);
        let m = exag * pij * q;
        f[0] += m * dx;
        f[1] += m * dy;
    }
    f
}

/// [`tsne_attraction_2d_portable`] with four edges per AVX2 register (see
/// [`tsne_attraction_2d`]).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn tsne_attraction_2d_avx2(
    (y0, y1): (f64, f64),
    ys: &[f64],
    idx: &[usize],
    val: &[f64],
    exag: f64,
) -> [f64; 2] {
    use std::arch::x86_64::*;
    let (one, ex) = (_mm256_set1_pd(1.0), _mm256_set1_pd(exag));
    let (v0, v1) = (_mm256_set1_pd(y0), _mm256_set1_pd(y1));
    let mut f = [0.0; 2];
    let (ic, vc) = (idx.chunks_exact(4), val.chunks_exact(4));
    let (ir, vr) = (ic.remainder(), vc.remainder());
    for (j, p) in ic.zip(vc) {
        // the neighbours' coordinates, read with bounds checks (lane 0 is edge 0)
        let xj = _mm256_set_pd(ys[2 * j[3]], ys[2 * j[2]], ys[2 * j[1]], ys[2 * j[0]]);
        let yj = _mm256_set_pd(
            ys[2 * j[3] + 1],
            ys[2 * j[2] + 1],
            ys[2 * j[1] + 1],
            ys[2 * j[0] + 1],
        );
        let (dx, dy) = (_mm256_sub_pd(v0, xj), _mm256_sub_pd(v1, yj));
        let t = _mm256_add_pd(
            _mm256_add_pd(one, _mm256_mul_pd(dx, dx)),
            _mm256_mul_pd(dy, dy),
        );
        let q = _mm256_div_pd(one, t);
        let pv = _mm256_set_pd(p[3], p[2], p[1], p[0]);
        let m = _mm256_mul_pd(_mm256_mul_pd(ex, pv), q);
        let (mut mx, mut my) = ([0.0f64; 4], [0.0f64; 4]);
        // SAFETY: each array holds exactly the 4 doubles stored.
        unsafe {
            _mm256_storeu_pd(mx.as_mut_ptr(), _mm256_mul_pd(m, dx));
            _mm256_storeu_pd(my.as_mut_ptr(), _mm256_mul_pd(m, dy));
        }
        for e in 0..4 {
            f[0] += mx[e];
            f[1] += my[e];
        }
    }
    // the last edges continue the same running sums
    tsne_attraction_2d_portable(f, (y0, y1), ys, ir, vr, exag)
}

/// GELU with the exact erf, `out[i] = (erff(x[i] / sqrt 2) + 1) * 0.5 * x[i]`, with the `libm`
/// crate's `erff` (candle's): eight values at a time through erff's first-range rational
/// approximation (`2^-28 <= |t| < 0.84375`, where most of a network's pre-activations lie),
/// and `libm::erff` one value at a time for the lanes outside that range. The block path
/// is `erff`'s own operations in its order (multiplies, adds and a division, no fused
/// multiply-add), so the bits are `libm::erff`'s; compiled for AVX2 where the CPU has it.
/// Writes every element of `out` (the output of an uninitialised vector, `cpu::par_uninit`),
/// whose length must be `x`'s.
pub(crate) fn gelu_erf(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), out.len(), "simd::gelu_erf: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if super::gemm512::enabled() {
        // SAFETY: `enabled` found AVX-512F on this CPU.
        unsafe { gelu_erf_avx512(x, out) };
        return;
    }
    if let Some(avx2) = Avx2::detect() {
        avx2.gelu_erf(x, out);
        return;
    }
    gelu_erf_portable(x, out);
}

/// One GELU value, candle's formula.
#[inline(always)]
fn gelu_erf_one(v: f32) -> f32 {
    (libm::erff(v * std::f32::consts::FRAC_1_SQRT_2) + 1.) * 0.5 * v
}

/// Without AVX2: libm's erff for every value.
fn gelu_erf_portable(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(gelu_erf_one(v));
    }
}

// libm's erff (FreeBSD s_erff.c) and expf (e_expf.c) constants, by the bits its source gives.
#[cfg(target_arch = "x86_64")]
mod libm_consts {
    pub(super) const ERF_EFX8: f32 = f32::from_bits(0x3f83_75d4);
    pub(super) const ERF_ERX: f32 = f32::from_bits(0x3f58_560b);
    pub(super) const ERF_PP: [f32; 5] = [
        f32::from_bits(0x3e03_75d4),
        f32::from_bits(0xbea6_6beb),
        f32::from_bits(0xbce9_528f),
        f32::from_bits(0xbbbd_1489),
        f32::from_bits(0xb7c7_56b1),
    ];
    pub(super) const ERF_QQ: [f32; 5] = [
        f32::from_bits(0x3ecb_bbce),
        f32::from_bits(0x3d85_2a63),
        f32::from_bits(0x3ba6_8116),
        f32::from_bits(0x390a_ee49),
        f32::from_bits(0xb684_e21a),
    ];
    pub(super) const ERF_PA: [f32; 7] = [
        f32::from_bits(0xbb1a_cdc6),
        f32::from_bits(0x3ed4_6805),
        f32::from_bits(0xbebe_9208),
        f32::from_bits(0x3ea2_fe54),
        f32::from_bits(0xbde3_1cc2),
        f32::from_bits(0x3d11_51b3),
        f32::from_bits(0xbb0d_f9c0),
    ];
    pub(super) const ERF_QA: [f32; 6] = [
        f32::from_bits(0x3dd9_f331),
        f32::from_bits(0x3f0a_5785),
        f32::from_bits(0x3d93_1ae7),
        f32::from_bits(0x3e01_3307),
        f32::from_bits(0x3c5f_6e13),
        f32::from_bits(0x3c44_5aa3),
    ];
    pub(super) const ERF_RA: [f32; 8] = [
        f32::from_bits(0xbc21_a093),
        f32::from_bits(0xbf31_a0b7),
        f32::from_bits(0xc128_f022),
        f32::from_bits(0xc279_8057),
        f32::from_bits(0xc322_658c),
        f32::from_bits(0xc338_9ae7),
        f32::from_bits(0xc2a2_932b),
        f32::from_bits(0xc11d_077e),
    ];
    pub(super) const ERF_SA: [f32; 8] = [
        f32::from_bits(0x419d_35ce),
        f32::from_bits(0x4309_a863),
        f32::from_bits(0x43d9_486f),
        f32::from_bits(0x4421_58c9),
        f32::from_bits(0x43d6_810b),
        f32::from_bits(0x42d9_451f),
        f32::from_bits(0x40d2_3f7c),
        f32::from_bits(0xbd77_7f97),
    ];
    pub(super) const ERF_RB: [f32; 7] = [
        f32::from_bits(0xbc21_a092),
        f32::from_bits(0xbf4c_9dd4),
        f32::from_bits(0xc18e_104b),
        f32::from_bits(0xc320_a2ea),
        f32::from_bits(0xc41f_6441),
        f32::from_bits(0xc480_230b),
        f32::from_bits(0xc3f1_c275),
    ];
    pub(super) const ERF_SB: [f32; 7] = [
        f32::from_bits(0x41f2_b459),
        f32::from_bits(0x43a2_e571),
        f32::from_bits(0x44c0_1759),
        f32::from_bits(0x4547_fdbb),
        f32::from_bits(0x451f_90ce),
        f32::from_bits(0x43ed_43a7),
        f32::from_bits(0xc1b3_8712),
    ];
    pub(super) const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
    pub(super) const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
    pub(super) const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
    pub(super) const EXP_P1: f32 = f32::from_bits(0x3e2a_aa8f);
    pub(super) const EXP_P2: f32 = f32::from_bits(0xbb35_5215);
}

/// libm's `expf` on 8 lanes, its operations in its order, for `|x| < 87.3` (below its
/// overflow and underflow tests; the caller keeps to that range).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn expf_avx2(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use libm_consts::*;
    use std::arch::x86_64::*;
    let f = _mm256_set1_ps;
    let bits = _mm256_castps_si256(x);
    let hx = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fff_ffff));
    let sign = _mm256_castsi256_ps(_mm256_and_si256(bits, _mm256_set1_epi32(i32::MIN)));
    let above = |c: u32| _mm256_cmpgt_epi32(hx, _mm256_set1_epi32(c as i32));
    // k: (x / ln 2 + 0.5 with x's sign) truncated above 1.5 ln 2, +-1 down to 0.5 ln 2, else 0
    let half = _mm256_or_ps(f(0.5), sign);
    let big = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(f(INV_LN2), x), half));
    let one = _mm256_castps_si256(_mm256_or_ps(f(1.0), sign));
    let pm1 = _mm256_cvtps_epi32(_mm256_castsi256_ps(one));
    let k = _mm256_blendv_epi8(
        _mm256_and_si256(pm1, above(0x3eb1_7218)),
        big,
        above(0x3f85_1592),
    );
    // with k = 0, hi = x - 0 and lo = 0: the bits of libm's k = 0 branch
    let kf = _mm256_cvtepi32_ps(k);
    let hi = _mm256_sub_ps(x, _mm256_mul_ps(kf, f(LN2_HI)));
    let lo = _mm256_mul_ps(kf, f(LN2_LO));
    let r = _mm256_sub_ps(hi, lo);
    let xx = _mm256_mul_ps(r, r);
    let c = _mm256_sub_ps(
        r,
        _mm256_mul_ps(xx, _mm256_add_ps(f(EXP_P1), _mm256_mul_ps(xx, f(EXP_P2)))),
    );
    let q = _mm256_div_ps(_mm256_mul_ps(r, c), _mm256_sub_ps(f(2.0), c));
    let y = _mm256_add_ps(f(1.0), _mm256_add_ps(_mm256_sub_ps(q, lo), hi));
    // scalbnf(y, k) for |k| <= 126: one exact multiply by 2^k
    let scale = _mm256_slli_epi32::<23>(_mm256_add_epi32(k, _mm256_set1_epi32(0x7f)));
    let y = _mm256_mul_ps(y, _mm256_castsi256_ps(scale));
    // |x| <= 2^-14: 1 + x
    _mm256_blendv_ps(
        _mm256_add_ps(f(1.0), x),
        y,
        _mm256_castsi256_ps(above(0x3900_0000)),
    )
}

/// GELU (candle's `(erf(x / sqrt 2) + 1) * 0.5 * x`) on 8 lanes with libm's erff: every range
/// of its formula computed for all lanes, each lane keeping its own range's value, with libm's
/// operations in libm's order (no fused multiply-add), so the bits are libm's. `None` when a
/// lane is infinite or NaN (the caller takes libm's own function there).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gelu8_avx2(v: std::arch::x86_64::__m256) -> Option<std::arch::x86_64::__m256> {
    use libm_consts::*;
    use std::arch::x86_64::*;
    let f = _mm256_set1_ps;
    let (add, sub, mul, div) = (_mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps);
    // Horner's rule from the highest coefficient: c[0] + s (c[1] + s (...))
    let horner = |s: __m256, c: &[f32]| {
        let mut acc = f(c[c.len() - 1]);
        for &ci in c[..c.len() - 1].iter().rev() {
            acc = add(f(ci), mul(s, acc));
        }
        acc
    };
    let t = mul(v, f(std::f32::consts::FRAC_1_SQRT_2));
    let bits = _mm256_castps_si256(t);
    let ix = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fff_ffff));
    if _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(
        ix,
        _mm256_set1_epi32(0x7f7f_ffff),
    ))) != 0
    {
        return None;
    }
    let below = |c: u32| _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(c as i32), ix));
    let a = _mm256_castsi256_ps(ix);
    let sign = _mm256_castsi256_ps(_mm256_and_si256(bits, _mm256_set1_epi32(i32::MIN)));
    // each range's formula only when a lane of the block lies in it
    let any = |m: __m256| _mm256_movemask_ps(m) != 0;
    let is_near = below(0x3f58_0000);
    let is_mid = _mm256_andnot_ps(is_near, below(0x3fa0_0000));
    let is_far = _mm256_andnot_ps(below(0x3fa0_0000), below(0x40c0_0000));
    // |t| >= 6: 1 - 2^-120
    let mut y = f(1.0 - f32::from_bits(0x0380_0000));
    if any(is_far) {
        // 1.25 <= |t| < 6: 1 - erfc2, with |t| = 1.25 in the lanes outside (their value is
        // thrown away; this keeps both exponents inside expf_avx2's range)
        let x = _mm256_blendv_ps(f(1.25), a, is_far);
        let s = div(f(1.0), mul(x, x));
        let first = below(0x4036_db6d);
        // below 1/0.35 the RA/SA rational, above it RB/SB
        let rs_a = || (horner(s, &ERF_RA), add(f(1.0), mul(s, horner(s, &ERF_SA))));
        let rs_b = || (horner(s, &ERF_RB), add(f(1.0), mul(s, horner(s, &ERF_SB))));
        let (r, big_s) = match (
            any(_mm256_and_ps(is_far, first)),
            any(_mm256_andnot_ps(first, is_far)),
        ) {
            (true, false) => rs_a(),
            (false, true) => rs_b(),
            _ => {
                let ((ra, sa), (rb, sb)) = (rs_a(), rs_b());
                (
                    _mm256_blendv_ps(rb, ra, first),
                    _mm256_blendv_ps(sb, sa, first),
                )
            }
        };
        let zz = _mm256_castsi256_ps(_mm256_and_si256(
            _mm256_castps_si256(x),
            _mm256_set1_epi32(0xffff_e000u32 as i32),
        ));
        let e1 = sub(mul(_mm256_xor_ps(zz, f(-0.0)), zz), f(0.5625));
        let e2 = add(mul(sub(zz, x), add(zz, x)), div(r, big_s));
        let far = sub(f(1.0), div(mul(expf_avx2(e1), expf_avx2(e2)), x));
        y = _mm256_blendv_ps(y, far, is_far);
    }
    if any(is_mid) {
        // 0.84375 <= |t| < 1.25: 1 - erfc1, s = |t| - 1
        let s = sub(a, f(1.0));
        let p = horner(s, &ERF_PA);
        let q = add(f(1.0), mul(s, horner(s, &ERF_QA)));
        let mid = sub(f(1.0), sub(f(1.0 - ERF_ERX), div(p, q)));
        y = _mm256_blendv_ps(y, mid, is_mid);
    }
    // erf is odd: the sign of t (|t| >= 0.84375 here, never a zero)
    y = _mm256_or_ps(y, sign);
    if any(is_near) {
        // |t| < 0.84375: t + t (pp(z) / qq(z)), z = t^2; below 2^-28 the underflow guard
        let z = mul(t, t);
        let r = horner(z, &ERF_PP);
        let s = add(f(1.0), mul(z, horner(z, &ERF_QQ)));
        let near = add(t, mul(t, div(r, s)));
        let tiny = mul(f(0.125), add(mul(f(8.0), t), mul(f(ERF_EFX8), t)));
        y = _mm256_blendv_ps(y, _mm256_blendv_ps(near, tiny, below(0x3180_0000)), is_near);
    }
    Some(mul(mul(add(y, f(1.0)), f(0.5)), v))
}

/// [`expf_avx2`] on 16 lanes: the same operations on each lane (AVX-512F; the bitwise
/// steps on integer registers, which AVX-512F has for all widths).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn expf_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use libm_consts::*;
    use std::arch::x86_64::*;
    let f = _mm512_set1_ps;
    let or = |a: __m512, b: __m512| {
        _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(a),
            _mm512_castps_si512(b),
        ))
    };
    let bits = _mm512_castps_si512(x);
    let hx = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
    let sign = _mm512_castsi512_ps(_mm512_and_si512(bits, _mm512_set1_epi32(i32::MIN)));
    let above = |c: u32| _mm512_cmpgt_epi32_mask(hx, _mm512_set1_epi32(c as i32));
    let half = or(f(0.5), sign);
    let big = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(f(INV_LN2), x), half));
    let pm1 = _mm512_cvtps_epi32(or(f(1.0), sign));
    let k = _mm512_mask_blend_epi32(
        above(0x3f85_1592),
        _mm512_maskz_mov_epi32(above(0x3eb1_7218), pm1),
        big,
    );
    let kf = _mm512_cvtepi32_ps(k);
    let hi = _mm512_sub_ps(x, _mm512_mul_ps(kf, f(LN2_HI)));
    let lo = _mm512_mul_ps(kf, f(LN2_LO));
    let r = _mm512_sub_ps(hi, lo);
    let xx = _mm512_mul_ps(r, r);
    let c = _mm512_sub_ps(
        r,
        _mm512_mul_ps(xx, _mm512_add_ps(f(EXP_P1), _mm512_mul_ps(xx, f(EXP_P2)))),
    );
    let q = _mm512_div_ps(_mm512_mul_ps(r, c), _mm512_sub_ps(f(2.0), c));
    let y = _mm512_add_ps(f(1.0), _mm512_add_ps(_mm512_sub_ps(q, lo), hi));
    let scale = _mm512_slli_epi32::<23>(_mm512_add_epi32(k, _mm512_set1_epi32(0x7f)));
    let y = _mm512_mul_ps(y, _mm512_castsi512_ps(scale));
    _mm512_mask_blend_ps(above(0x3900_0000), _mm512_add_ps(f(1.0), x), y)
}

/// [`gelu8_avx2`] on 16 lanes (AVX-512F): the same ranges, formulas and operations per lane,
/// so the same bits (libm's).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gelu16_avx512(v: std::arch::x86_64::__m512) -> Option<std::arch::x86_64::__m512> {
    use libm_consts::*;
    use std::arch::x86_64::*;
    let f = _mm512_set1_ps;
    let (add, sub, mul, div) = (_mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_div_ps);
    let bitwise = |a: __m512, b: __m512, op: fn(__m512i, __m512i) -> __m512i| {
        _mm512_castsi512_ps(op(_mm512_castps_si512(a), _mm512_castps_si512(b)))
    };
    let horner = |s: __m512, c: &[f32]| {
        let mut acc = f(c[c.len() - 1]);
        for &ci in c[..c.len() - 1].iter().rev() {
            acc = add(f(ci), mul(s, acc));
        }
        acc
    };
    let t = mul(v, f(std::f32::consts::FRAC_1_SQRT_2));
    let bits = _mm512_castps_si512(t);
    let ix = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
    if _mm512_cmpgt_epi32_mask(ix, _mm512_set1_epi32(0x7f7f_ffff)) != 0 {
        return None;
    }
    let below = |c: u32| _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32(c as i32));
    let a = _mm512_castsi512_ps(ix);
    let sign = _mm512_castsi512_ps(_mm512_and_si512(bits, _mm512_set1_epi32(i32::MIN)));
    let is_near = below(0x3f58_0000);
    let is_mid = !is_near & below(0x3fa0_0000);
    let is_far = !below(0x3fa0_0000) & below(0x40c0_0000);
    let mut y = f(1.0 - f32::from_bits(0x0380_0000));
    if is_far != 0 {
        let x = _mm512_mask_blend_ps(is_far, f(1.25), a);
        let s = div(f(1.0), mul(x, x));
        let first = below(0x4036_db6d);
        let rs_a = || (horner(s, &ERF_RA), add(f(1.0), mul(s, horner(s, &ERF_SA))));
        let rs_b = || (horner(s, &ERF_RB), add(f(1.0), mul(s, horner(s, &ERF_SB))));
        let (r, big_s) = match (is_far & first != 0, is_far & !first != 0) {
            (true, false) => rs_a(),
            (false, true) => rs_b(),
            _ => {
                let ((ra, sa), (rb, sb)) = (rs_a(), rs_b());
                (
                    _mm512_mask_blend_ps(first, rb, ra),
                    _mm512_mask_blend_ps(first, sb, sa),
                )
            }
        };
        let zz = _mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(x),
            _mm512_set1_epi32(0xffff_e000u32 as i32),
        ));
        let e1 = sub(mul(bitwise(zz, f(-0.0), _mm512_xor_si512), zz), f(0.5625));
        let e2 = add(mul(sub(zz, x), add(zz, x)), div(r, big_s));
        let far = sub(f(1.0), div(mul(expf_avx512(e1), expf_avx512(e2)), x));
        y = _mm512_mask_blend_ps(is_far, y, far);
    }
    if is_mid != 0 {
        let s = sub(a, f(1.0));
        let p = horner(s, &ERF_PA);
        let q = add(f(1.0), mul(s, horner(s, &ERF_QA)));
        let mid = sub(f(1.0), sub(f(1.0 - ERF_ERX), div(p, q)));
        y = _mm512_mask_blend_ps(is_mid, y, mid);
    }
    y = bitwise(y, sign, _mm512_or_si512);
    if is_near != 0 {
        let z = mul(t, t);
        let r = horner(z, &ERF_PP);
        let s = add(f(1.0), mul(z, horner(z, &ERF_QQ)));
        let near = add(t, mul(t, div(r, s)));
        let tiny = mul(f(0.125), add(mul(f(8.0), t), mul(f(ERF_EFX8), t)));
        y = _mm512_mask_blend_ps(
            is_near,
            y,
            _mm512_mask_blend_ps(below(0x3180_0000), near, tiny),
        );
    }
    Some(mul(mul(add(y, f(1.0)), f(0.5)), v))
}

/// [`gelu_erf`] on AVX-512F: 16 values at a time through [`gelu16_avx512`], libm's function
/// for a block with an infinity or NaN, the AVX2 loop for the last `len % 16` values.
///
/// # Safety
/// The CPU must support AVX-512F (and so AVX2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn gelu_erf_avx512(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    use std::arch::x86_64::*;
    let mut xs = x.chunks_exact(16);
    let mut os = out.chunks_exact_mut(16);
    for (v, o) in (&mut xs).zip(&mut os) {
        // SAFETY: `v` holds 16 values (`chunks_exact`).
        let y = gelu16_avx512(unsafe { _mm512_loadu_ps(v.as_ptr()) });
        match y {
            // SAFETY: `o` holds 16 values; `MaybeUninit<f32>` has f32's layout.
            Some(y) => unsafe { _mm512_storeu_ps(o.as_mut_ptr().cast(), y) },
            None => {
                for (o, &v) in o.iter_mut().zip(v) {
                    o.write(gelu_erf_one(v));
                }
            }
        }
    }
    // SAFETY: the caller's CPU has AVX2 (every AVX-512F CPU does).
    unsafe { gelu_erf_avx2(xs.remainder(), os.into_remainder()) };
}

/// [`gelu_erf`] on AVX2: 8 values at a time through [`gelu8_avx2`], libm's function for a
/// block with an infinity or NaN and for the last `len % 8` values.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gelu_erf_avx2(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    use std::arch::x86_64::*;
    let mut xs = x.chunks_exact(8);
    let mut os = out.chunks_exact_mut(8);
    for (v, o) in (&mut xs).zip(&mut os) {
        // SAFETY: `v` holds 8 values (`chunks_exact`).
        let y = gelu8_avx2(unsafe { _mm256_loadu_ps(v.as_ptr()) });
        match y {
            // SAFETY: `o` holds 8 values; `MaybeUninit<f32>` has f32's layout.
            Some(y) => unsafe { _mm256_storeu_ps(o.as_mut_ptr().cast(), y) },
            None => {
                for (o, &v) in o.iter_mut().zip(v) {
                    o.write(gelu_erf_one(v));
                }
            }
        }
    }
    for (o, &v) in os.into_remainder().iter_mut().zip(xs.remainder()) {
        o.write(gelu_erf_one(v));
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

    /// [`radius_masks`]'s loop compiled for AVX2.
    #[inline]
    fn radius_masks<D: Copy + Into<f64>>(
        self,
        dots: &[D],
        nb: &[f64],
        f: RadiusTest,
        inside: &mut [u32],
        band: &mut [u32],
    ) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` exists only when `detect` found AVX2 on this CPU, which is all
        // `radius_masks_avx2`'s `target_feature` requires; the function itself is safe code.
        unsafe {
            radius_masks_avx2(dots, nb, f, inside, band)
        }
        #[cfg(not(target_arch = "x86_64"))]
        radius_masks_portable(dots, nb, f, inside, band)
    }

    /// [`sq_dists`]'s loop compiled for AVX2.
    #[inline]
    fn sq_dists(self, rows: &[f64], p: usize, targets: &[&[f64]], out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` exists only when `detect` found AVX2 on this CPU, which is all
        // `sq_dists_avx2`'s `target_feature` requires; the function itself is safe code.
        unsafe {
            sq_dists_avx2(rows, p, targets, out)
        }
        #[cfg(not(target_arch = "x86_64"))]
        sq_dists_portable(rows, p, targets, out)
    }

    /// [`tsne_attraction_2d`]'s AVX2 loop.
    #[inline]
    fn tsne_attraction_2d(
        self,
        y: (f64, f64),
        ys: &[f64],
        idx: &[usize],
        val: &[f64],
        exag: f64,
    ) -> [f64; 2] {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` exists only when `detect` found AVX2 on this CPU, which is all
        // `tsne_attraction_2d_avx2` requires; its loads are bounds-checked or into local arrays.
        unsafe {
            tsne_attraction_2d_avx2(y, ys, idx, val, exag)
        }
        #[cfg(not(target_arch = "x86_64"))]
        tsne_attraction_2d_portable([0.0; 2], y, ys, idx, val, exag)
    }

    /// [`gelu_erf`]'s loop compiled for AVX2.
    #[inline]
    fn gelu_erf(self, x: &[f32], out: &mut [MaybeUninit<f32>]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` exists only when `detect` found AVX2 on this CPU, which is all
        // `gelu_erf_avx2`'s `target_feature` requires; the function itself is safe code.
        unsafe {
            gelu_erf_avx2(x, out)
        }
        #[cfg(not(target_arch = "x86_64"))]
        gelu_erf_portable(x, out)
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
        for p in [1, 3, 4, 50, 51] {
            let rows: Vec<f64> = (0..7 * p).map(|_| r.normal() * 3.0).collect();
            let tg: Vec<Vec<f64>> = (0..9)
                .map(|_| (0..p).map(|_| r.normal()).collect())
                .collect();
            for k in 0..=9 {
                let targets: Vec<&[f64]> = tg[..k].iter().map(|t| t.as_slice()).collect();
                let (mut fast, mut slow) = (vec![0.0; 7 * k], vec![0.0; 7 * k]);
                avx2.sq_dists(&rows, p, &targets, &mut fast);
                sq_dists_portable(&rows, p, &targets, &mut slow);
                assert!(fast
                    .iter()
                    .zip(&slow)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
        let ys: Vec<f64> = (0..2 * 300).map(|_| r.normal() * 20.0).collect();
        for len in [0, 3, 4, 9, 150] {
            let idx: Vec<usize> = (0..len).map(|_| r.below(300) as usize).collect();
            let val: Vec<f64> = (0..len).map(|_| r.uniform() * 1e-3).collect();
            let y = (ys[10], ys[11]);
            let fast = avx2.tsne_attraction_2d(y, &ys, &idx, &val, 12.0);
            let slow = tsne_attraction_2d_portable([0.0; 2], y, &ys, &idx, &val, 12.0);
            assert_eq!(fast.map(f64::to_bits), slow.map(f64::to_bits));
        }
        let n: usize = 1001;
        let dots: Vec<f64> = (0..n).map(|_| r.normal() * 4.0).collect();
        let nb: Vec<f64> = (0..n).map(|_| r.uniform() * 10.0).collect();
        let words = n.div_ceil(32);
        let (mut fa, mut fb, mut sa, mut sb) = (
            vec![0u32; words],
            vec![0u32; words],
            vec![0u32; words],
            vec![0u32; words],
        );
        let t = RadiusTest {
            na: 3.0,
            eps2: 9.0,
            slack_rel: 0.05,
            slack_abs: 1e-300,
        };
        avx2.radius_masks(&dots, &nb, t, &mut fa, &mut fb);
        radius_masks_portable(&dots, &nb, t, &mut sa, &mut sb);
        assert_eq!((&fa, &fb), (&sa, &sb));
        assert!(fa.iter().any(|&w| w != 0) && fb.iter().any(|&w| w != 0));
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
