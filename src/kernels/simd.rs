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

#[inline(always)]
fn gelu_erf_portable(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    // libm's erff (FreeBSD s_erff.c) on |t| < 0.84375, t = x / sqrt 2
    // (its constants by their bits, as its source gives them)
    const EFX: [f32; 5] = [
        f32::from_bits(0x3e03_75d4),
        f32::from_bits(0xbea6_6beb),
        f32::from_bits(0xbce9_528f),
        f32::from_bits(0xbbbd_1489),
        f32::from_bits(0xb7c7_56b1),
    ];
    const QQ: [f32; 5] = [
        f32::from_bits(0x3ecb_bbce),
        f32::from_bits(0x3d85_2a63),
        f32::from_bits(0x3ba6_8116),
        f32::from_bits(0x390a_ee49),
        f32::from_bits(0xb684_e21a),
    ];
    let mut xs = x.chunks_exact(8);
    let mut os = out.chunks_exact_mut(8);
    for (v, o) in (&mut xs).zip(&mut os) {
        let mut t = [0f32; 8];
        let mut first_range = [false; 8];
        for i in 0..8 {
            t[i] = v[i] * std::f32::consts::FRAC_1_SQRT_2;
            let ix = t[i].to_bits() & 0x7fff_ffff;
            first_range[i] = (0x3180_0000..0x3f58_0000).contains(&ix);
        }
        // every lane through the first range's formula (a value outside it gives a number
        // that is thrown away, never a trap), then `libm::erff` for the lanes outside it
        let mut y = [0f32; 8];
        for i in 0..8 {
            let z = t[i] * t[i];
            let r = EFX[0] + z * (EFX[1] + z * (EFX[2] + z * (EFX[3] + z * EFX[4])));
            let s = 1.0 + z * (QQ[0] + z * (QQ[1] + z * (QQ[2] + z * (QQ[3] + z * QQ[4]))));
            let q = r / s;
            let e = t[i] + t[i] * q;
            y[i] = (e + 1.) * 0.5 * v[i];
        }
        for i in 0..8 {
            o[i].write(if first_range[i] {
                y[i]
            } else {
                gelu_erf_one(v[i])
            });
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

/// [`gelu_erf_portable`] compiled for AVX2: the same operations in the same order.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gelu_erf_avx2(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    gelu_erf_portable(x, out)
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
