//! t-SNE repulsion by FFT-accelerated interpolation (Linderman et al. 2019, "Fast
//! interpolation-based t-SNE", the method of FIt-SNE and openTSNE's `negative_gradient_method="fft"`).
//!
//! The repulsive force on point `i` and the normalisation need, for every `i`, sums over all `j` of
//! `q_ij^2 * c_j` with `q_ij = 1 / (1 + |y_i - y_j|^2)` and four charges
//! `c_j = (1, y_j1, y_j2, |y_j|^2)`. The embedding's bounding square is cut into `B x B` boxes with
//! three equispaced interpolation nodes per box and axis; each point spreads its charges onto the
//! nine nodes of its box with Lagrange weights, the node-to-node sums are one convolution of the
//! grid with the kernel `1 / (1 + r^2)^2` (a 2-D FFT of twice the grid's size), and the sums are
//! interpolated back to the points with the same weights. Cost per iteration: O(N) for spreading
//! and gathering plus O(M^2 log M) for the FFT with `M = 6 B`, `B = max(50, extent)`: the grid's
//! resolution follows openTSNE (`min_num_intervals = 50`, one interval per unit of extent, three
//! interpolation points).
//!
//! Determinism: the charges are spread in index order by one thread, each FFT row is one task,
//! and the gathered sums are added in index order, so the result does not depend on the thread
//! count.

use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Interpolation nodes per box and axis (openTSNE's `n_interpolation_points`).
const P: usize = 3;
/// Fewest boxes per axis (openTSNE's `min_num_intervals`).
const MIN_BOXES: usize = 50;

/// FFT plans and grids, reused across iterations (the grid size changes only as the embedding
/// grows, and fresh multi-megabyte buffers would cost more in page faults than the FFTs).
pub(crate) struct FftRepulsion {
    planner: FftPlanner<f64>,
    /// Charge grids `1 + i y1` and `y2 + i |y|^2`, then their potentials.
    a: Vec<Complex64>,
    b: Vec<Complex64>,
    /// The kernel's spectrum (real: the kernel is even in both axes).
    k: Vec<f64>,
    /// Complex work grid for the kernel and for transposes.
    work: Vec<Complex64>,
}

impl FftRepulsion {
    pub(crate) fn new() -> Self {
        FftRepulsion {
            planner: FftPlanner::new(),
            a: Vec::new(),
            b: Vec::new(),
            k: Vec::new(),
            work: Vec::new(),
        }
    }

    /// For a 2-D embedding `y` (row-major, `n x 2`): the unnormalised repulsive forces
    /// `sum_j q_ij^2 (y_i - y_j)` into `rep` and the normalisation `Z = sum_{i != j} q_ij`.
    pub(crate) fn repulsion(&mut self, y: &[f64], rep: &mut [[f64; 3]]) -> f64 {
        let n = y.len() / 2;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in y {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let extent = (hi - lo).max(1e-12);
        let boxes = n_boxes(extent);
        let width = extent / boxes as f64;
        let g = boxes * P; // interpolation nodes per axis
        let m = smooth_at_least(2 * g - 1); // circulant length: no wrap-around for offsets < g

        // Lagrange weights of each point in its box, per axis, and the box's first node
        let nodes: [f64; P] = std::array::from_fn(|k| (k as f64 + 0.5) / P as f64);
        let weights = |t: f64| -> [f64; P] {
            std::array::from_fn(|k| {
                let mut w = 1.0;
                for (j, &s) in nodes.iter().enumerate() {
                    if j != k {
                        w *= (t - s) / (nodes[k] - s);
                    }
                }
                w
            })
        };
        let locate = |v: f64| -> (usize, [f64; P]) {
            let u = (v - lo) / width;
            let b = (u.floor().max(0.0) as usize).min(boxes - 1);
            (b * P, weights(u - b as f64))
        };
        // per point and axis: the first interpolation node of its box and the node weights
        type Located = (usize, [f64; P]);
        let located: Vec<(Located, Located)> = (0..n)
            .into_par_iter()
            .with_min_len(1024)
            .map(|i| (locate(y[2 * i]), locate(y[2 * i + 1])))
            .collect();

        let zero = Complex64::new(0.0, 0.0);
        // every entry of the work grid and of k is written before it is read
        self.work.resize(m * m, zero);
        self.k.resize(m * m, 0.0);
        let fwd = self.planner.plan_fft_forward(m);
        let inv = self.planner.plan_fft_inverse(m);

        // the kernel on the circulant grid, even in both axes: offset u stands for u (u <= m/2)
        // or u - m; offsets between g and m - g are never paired with a charge
        let h = width / P as f64;
        let half = m / 2;
        let off = |u: usize| -> f64 {
            if u <= half {
                u as f64 * h
            } else {
                (u as f64 - m as f64) * h
            }
        };
        let work = &mut self.work;
        work[..(half + 1) * m]
            .par_chunks_mut(m)
            .enumerate()
            .for_each(|(u, row)| {
                let dx = off(u);
                for (v, c) in row.iter_mut().enumerate() {
                    let dy = off(v);
                    let q = 1.0 / (1.0 + dx * dx + dy * dy);
                    *c = Complex64::new(q * q, 0.0);
                }
            });
        // its spectrum: rows u and m - u are equal, so are their transforms (both passes)
        rows_fft(&mut work[..(half + 1) * m], m, &fwd);
        mirror_rows(work, m);
        // the charge grid `a` serves as the transpose target before it takes its charges
        let t = &mut self.a;
        t.resize(m * m, zero);
        transpose_into(work, m, m, m, t, m);
        rows_fft(&mut t[..(half + 1) * m], m, &fwd);
        mirror_rows(t, m);
        let scale = 1.0 / (m * m) as f64;
        self.k
            .par_iter_mut()
            .zip(t.par_iter())
            .with_min_len(4096)
            .for_each(|(k, c)| *k = c.re * scale);
        for buf in [&mut self.a, &mut self.b] {
            buf.clear();
            buf.resize(g * m, zero);
        }

        // spread the four charges, packed as two complex grids (1 + i y1, y2 + i |y|^2)
        let (a, b) = (&mut self.a, &mut self.b);
        for (i, &((gx, wx), (gy, wy))) in located.iter().enumerate() {
            let (y1, y2) = (y[2 * i], y[2 * i + 1]);
            let ca = Complex64::new(1.0, y1);
            let cb = Complex64::new(y2, y1 * y1 + y2 * y2);
            for (kx, &wxk) in wx.iter().enumerate() {
                let row = (gx + kx) * m + gy;
                for (ky, &wyk) in wy.iter().enumerate() {
                    let w = wxk * wyk;
                    a[row + ky] += ca * w;
                    b[row + ky] += cb * w;
                }
            }
        }

        // convolve: rows first (only the first g rows hold charges), then the columns, laid out
        // as rows of the work grid with zero padding, forward, times the kernel's spectrum
        // (symmetric, so its row c is column c), inverse; then rows again
        for buf in [&mut self.a, &mut self.b] {
            rows_fft(buf, m, &fwd);
            transpose_into(buf, g, m, m, &mut self.work, m);
            rows_fft(&mut self.work, m, &fwd);
            self.work
                .par_chunks_mut(m)
                .zip(self.k.par_chunks(m))
                .for_each(|(row, kr)| row.iter_mut().zip(kr).for_each(|(c, &kk)| *c *= kk));
            rows_fft(&mut self.work, m, &inv);
            transpose_into(&self.work, m, m, g, buf, m);
            rows_fft(buf, m, &inv);
        }
        // gather the four potentials at each point
        let (a, b) = (&self.a, &self.b);
        let parts: Vec<([f64; 2], f64)> = located
            .par_iter()
            .enumerate()
            .with_min_len(1024)
            .map(|(i, &((gx, wx), (gy, wy)))| {
                let mut pa = zero;
                let mut pb = zero;
                for (kx, &wxk) in wx.iter().enumerate() {
                    let row = (gx + kx) * m + gy;
                    for (ky, &wyk) in wy.iter().enumerate() {
                        let w = wxk * wyk;
                        pa += a[row + ky] * w;
                        pb += b[row + ky] * w;
                    }
                }
                let (phi0, phi1, phi2, phi3) = (pa.re, pa.im, pb.re, pb.im);
                let (y1, y2) = (y[2 * i], y[2 * i + 1]);
                let z = (1.0 + y1 * y1 + y2 * y2) * phi0 - 2.0 * (y1 * phi1 + y2 * phi2) + phi3;
                ([y1 * phi0 - phi1, y2 * phi0 - phi2], z)
            })
            .collect();
        let mut z = 0.0;
        for (r, (f, zi)) in rep.iter_mut().zip(parts) {
            r[0] = f[0];
            r[1] = f[1];
            r[2] = 0.0;
            z += zi;
        }
        // every point's own term q_ii = 1 is in the sums
        z - n as f64
    }
}

/// In-place FFT of every length-`m` row of `buf`, bands of rows in parallel (each row is one
/// task's work, so the result does not depend on the thread count).
fn rows_fft(buf: &mut [Complex64], m: usize, plan: &Arc<dyn Fft<f64>>) {
    let scratch_len = plan.get_inplace_scratch_len();
    buf.par_chunks_mut(m * 4).for_each_init(
        || vec![Complex64::new(0.0, 0.0); scratch_len],
        |scratch, chunk| plan.process_with_scratch(chunk, scratch),
    );
}

/// Row `m - u` := row `u` for `u` in `1..(m+1)/2` (the rows of an even function's transform).
fn mirror_rows(buf: &mut [Complex64], m: usize) {
    let half = m / 2;
    let (top, bottom) = buf.split_at_mut((half + 1) * m);
    bottom.par_chunks_mut(m).enumerate().for_each(|(r, row)| {
        let u = m - (half + 1 + r);
        row.copy_from_slice(&top[u * m..u * m + m]);
    });
}

/// `dst[c][r] := src[r][c]` for the first `cols` columns of the `rows`-row grid `src` (row stride
/// `src_stride`) into `dst` with row stride `stride >= rows`, the rest of each `dst` row set to
/// zero (blocked, bands of `dst` rows in parallel).
fn transpose_into(
    src: &[Complex64],
    rows: usize,
    src_stride: usize,
    cols: usize,
    dst: &mut [Complex64],
    stride: usize,
) {
    const T: usize = 16;
    let zero = Complex64::new(0.0, 0.0);
    dst[..cols * stride]
        .par_chunks_mut(stride * T)
        .enumerate()
        .for_each(|(bi, chunk)| {
            let c0 = bi * T;
            let cn = chunk.len() / stride;
            for r0 in (0..rows).step_by(T) {
                for r in r0..(r0 + T).min(rows) {
                    let s = &src[r * src_stride + c0..r * src_stride + c0 + cn];
                    for (j, &v) in s.iter().enumerate() {
                        chunk[j * stride + r] = v;
                    }
                }
            }
            for j in 0..cn {
                chunk[j * stride + rows..(j + 1) * stride].fill(zero);
            }
        });
}

/// Boxes per axis for an embedding of the given extent: one per unit, at least 50, rounded up to
/// openTSNE's list of sizes below 200 (so the two use the same grid).
fn n_boxes(extent: f64) -> usize {
    const ALLOWED: [usize; 20] = [
        25, 36, 50, 55, 60, 65, 70, 75, 80, 85, 90, 96, 100, 110, 120, 130, 140, 150, 175, 200,
    ];
    let b = (extent.max(0.0) as usize).max(MIN_BOXES);
    ALLOWED.iter().copied().find(|&a| b < a).unwrap_or(b)
}

/// The smallest number >= `n` whose prime factors are all 2, 3, 5 or 7 (fast FFT lengths).
fn smooth_at_least(n: usize) -> usize {
    let mut k = n.max(1);
    loop {
        let mut r = k;
        for p in [2, 3, 5, 7] {
            while r.is_multiple_of(p) {
                r /= p;
            }
        }
        if r == 1 {
            return k;
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative errors of Z and of the largest force against the direct O(N^2) sums.
    fn errors(scale: f64) -> (f64, f64) {
        let mut r = crate::rng::Rng::new(3);
        let n = 600;
        let y: Vec<f64> = (0..2 * n).map(|_| r.normal() * scale).collect();
        let mut rep = vec![[0.0; 3]; n];
        // a first call on another layout: grids and plans are reused, so nothing may leak
        let mut fft = FftRepulsion::new();
        let other: Vec<f64> = y.iter().map(|v| v * 3.7 + 1.0).collect();
        fft.repulsion(&other, &mut rep);
        let z = fft.repulsion(&y, &mut rep);
        let mut z_ref = 0.0;
        let mut max_err: f64 = 0.0;
        let mut max_f: f64 = 0.0;
        for i in 0..n {
            let mut f = [0.0; 2];
            for j in 0..n {
                if i == j {
                    continue;
                }
                let (dx, dy) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                let q = 1.0 / (1.0 + dx * dx + dy * dy);
                z_ref += q;
                f[0] += q * q * dx;
                f[1] += q * q * dy;
            }
            for c in 0..2 {
                max_err = max_err.max((f[c] - rep[i][c]).abs());
                max_f = max_f.max(f[c].abs());
            }
        }
        ((z - z_ref).abs() / z_ref, max_err / max_f)
    }

    #[test]
    fn matches_the_direct_sums() {
        // a fine grid relative to the spread (width 0.1): near exact
        let (ez, ef) = errors(0.3);
        assert!(
            ez < 1e-5 && ef < 1e-3,
            "tiny layout: Z {ez:e}, force {ef:e}"
        );
        let (ez, ef) = errors(1.0);
        assert!(ez < 1e-5 && ef < 1e-3, "fine grid: Z {ez:e}, force {ef:e}");
        // openTSNE's coarsest resolution (one box per unit): the interpolation error it accepts
        let (ez, ef) = errors(8.0);
        eprintln!("coarse grid: Z {ez:e}, force {ef:e}");
        assert!(ez < 1e-2 && ef < 0.1, "coarse grid: Z {ez:e}, force {ef:e}");
    }

    #[test]
    fn smooth_lengths() {
        assert_eq!(smooth_at_least(50), 50);
        assert_eq!(smooth_at_least(11), 12);
        assert_eq!(smooth_at_least(97), 98);
    }
}
