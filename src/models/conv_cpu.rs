//! 2-D convolution on the CPU as im2col + gemm in NCHW, the way PyTorch's and Caffe's CPU
//! kernels compute it, for the forward pass and both gradients.
//!
//! Why not candle's `conv2d`: candle 0.11's CPU convolution first copies the whole input to
//! NHWC on one thread, gathers its im2col tiles element by element and scatters the result back
//! to NCHW, and its backward goes through further transposed copies. Here each image's columns
//! (`C_in k k x OH OW`) are built with row copies, one gemm writes the output in place (no
//! layout change), the kernel's gradient is one gemm per image accumulated in a fixed order,
//! and the input's gradient is `W^T g` scattered back (col2im) for every stride.
//!
//! Determinism: every output element is one gemm dot product whose order does not depend on
//! the thread count, and accumulations over images run in image order.

use gemm::Parallelism;
use rayon::prelude::*;

/// The shape of one convolution: `n x cin x h x w` input, `cout x cin x k x k` kernel, zero
/// padding `p`, stride `s`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub p: usize,
    pub s: usize,
}

impl Geom {
    pub fn out(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.p - self.k) / self.s + 1,
            (self.w + 2 * self.p - self.k) / self.s + 1,
        )
    }
    fn l(&self) -> usize {
        let (oh, ow) = self.out();
        oh * ow
    }
    fn kk(&self) -> usize {
        self.cin * self.k * self.k
    }
    /// A 1x1 kernel with stride 1 and no padding: the image itself is its column matrix.
    fn pointwise(&self) -> bool {
        self.k == 1 && self.s == 1 && self.p == 0
    }
    fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }
}

/// The input rows `ix = ox * s + kx - p` that fall inside `0..w`, as the range of `ox`.
fn valid(o: usize, k_off: usize, p: usize, s: usize, len: usize) -> (usize, usize) {
    // ox * s + k_off >= p  and  ox * s + k_off - p < len
    let lo = if k_off >= p {
        0
    } else {
        (p - k_off).div_ceil(s)
    };
    let hi = if len + p > k_off {
        ((len + p - k_off - 1) / s + 1).min(o)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Columns of one image: row `(ci, ky, kx)` holds the input value each output position reads
/// through that kernel tap (0 in the padding).
fn im2col(x: &[f32], g: &Geom, cols: &mut [f32]) {
    let (oh, ow) = g.out();
    let l = oh * ow;
    for ci in 0..g.cin {
        let plane = &x[ci * g.h * g.w..][..g.h * g.w];
        for ky in 0..g.k {
            let (ylo, yhi) = valid(oh, ky, g.p, g.s, g.h);
            for kx in 0..g.k {
                let row = &mut cols[((ci * g.k + ky) * g.k + kx) * l..][..l];
                let (xlo, xhi) = valid(ow, kx, g.p, g.s, g.w);
                row[..ylo * ow].fill(0.0);
                row[yhi * ow..].fill(0.0);
                for oy in ylo..yhi {
                    let iy = oy * g.s + ky - g.p;
                    let dst = &mut row[oy * ow..][..ow];
                    dst[..xlo].fill(0.0);
                    dst[xhi..].fill(0.0);
                    let src = &plane[iy * g.w..][..g.w];
                    if g.s == 1 {
                        let ix = xlo + kx - g.p;
                        dst[xlo..xhi].copy_from_slice(&src[ix..ix + (xhi - xlo)]);
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate().take(xhi).skip(xlo) {
                            *d = src[ox * g.s + kx - g.p];
                        }
                    }
                }
            }
        }
    }
}

/// Adds each column back onto the input positions it was read from (the adjoint of
/// [`im2col`]).
fn col2im(cols: &[f32], g: &Geom, ci: usize, plane: &mut [f32]) {
    let (oh, ow) = g.out();
    let l = oh * ow;
    for ky in 0..g.k {
        let (ylo, yhi) = valid(oh, ky, g.p, g.s, g.h);
        for kx in 0..g.k {
            let row = &cols[((ci * g.k + ky) * g.k + kx) * l..][..l];
            let (xlo, xhi) = valid(ow, kx, g.p, g.s, g.w);
            for oy in ylo..yhi {
                let iy = oy * g.s + ky - g.p;
                let dst = &mut plane[iy * g.w..][..g.w];
                let src = &row[oy * ow..][..ow];
                if g.s == 1 {
                    let ix = xlo + kx - g.p;
                    for (d, v) in dst[ix..ix + (xhi - xlo)].iter_mut().zip(&src[xlo..xhi]) {
                        *d += v;
                    }
                } else {
                    for (ox, v) in src.iter().enumerate().take(xhi).skip(xlo) {
                        dst[ox * g.s + kx - g.p] += v;
                    }
                }
            }
        }
    }
}

/// Row-major `c (m x n) = a (m x k) * b (k x n)`, adding to `c` when `acc`. `a_t` / `b_t` read
/// the stored matrix transposed (`a` stored `k x m`, `b` stored `n x k`).
#[allow(clippy::too_many_arguments)]
fn sgemm(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    c: &mut [f32],
    acc: bool,
    par: Parallelism,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let (a_rs, a_cs) = if a_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (b_rs, b_cs) = if b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    // SAFETY: the slices hold at least the m x k, k x n and m x n elements the strides address
    // (checked above); `c` is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            acc,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            if acc { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Whether to spread images over threads (each gemm on one thread) rather than run one image
/// at a time with a parallel gemm.
fn by_image(n: usize) -> bool {
    n >= threads()
}

/// `y = conv(x, w) (+ bias)`, `n x cout x oh x ow`.
pub(crate) fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    let (l, kk) = (g.l(), g.kk());
    let mut y = vec![0f32; g.n * g.cout * l];
    let one = |xi: &[f32], yi: &mut [f32], cols: &mut Vec<f32>, par: Parallelism| {
        let b: &[f32] = if g.pointwise() {
            xi
        } else {
            cols.resize(kk * l, 0.0);
            im2col(xi, g, cols);
            cols
        };
        sgemm((g.cout, l, kk), w, false, b, false, yi, false, par);
        if let Some(bias) = bias {
            for (plane, &bv) in yi.chunks_mut(l).zip(bias) {
                for v in plane {
                    *v += bv;
                }
            }
        }
    };
    if by_image(g.n) {
        y.par_chunks_mut(g.cout * l)
            .zip(x.par_chunks(g.in_len()))
            .for_each_init(Vec::new, |cols, (yi, xi)| {
                one(xi, yi, cols, Parallelism::None)
            });
    } else {
        let mut cols = Vec::new();
        for (yi, xi) in y.chunks_mut(g.cout * l).zip(x.chunks(g.in_len())) {
            one(xi, yi, &mut cols, Parallelism::Rayon(threads()));
        }
    }
    y
}

/// The kernel's gradient `sum_i grad_i cols_i^T`, `cout x cin x k x k`, accumulated image by
/// image in order.
pub(crate) fn grad_weight(x: &[f32], grad: &[f32], g: &Geom) -> Vec<f32> {
    let (l, kk) = (g.l(), g.kk());
    let mut gw = vec![0f32; g.cout * kk];
    let mut cols = Vec::new();
    let par = Parallelism::Rayon(threads());
    for (i, (xi, gi)) in x
        .chunks(g.in_len())
        .zip(grad.chunks(g.cout * l))
        .enumerate()
    {
        let b: &[f32] = if g.pointwise() {
            xi
        } else {
            cols.resize(kk * l, 0.0);
            im2col(xi, g, &mut cols);
            &cols
        };
        // (cout x l) * (l x kk): the columns read transposed.
        sgemm((g.cout, kk, l), gi, false, b, true, &mut gw, i > 0, par);
    }
    gw
}

/// The input's gradient: columns `W^T grad_i` scattered back onto each image.
pub(crate) fn grad_input(w: &[f32], grad: &[f32], g: &Geom) -> Vec<f32> {
    let (l, kk) = (g.l(), g.kk());
    let mut gx = vec![0f32; g.n * g.in_len()];
    let plane = g.h * g.w;
    if g.pointwise() {
        // The columns are the gradient itself: (cin x cout) * (cout x l).
        let par = if by_image(g.n) {
            Parallelism::None
        } else {
            Parallelism::Rayon(threads())
        };
        let one = |gxi: &mut [f32], gi: &[f32]| {
            sgemm((g.cin, l, g.cout), w, true, gi, false, gxi, false, par)
        };
        if by_image(g.n) {
            gx.par_chunks_mut(g.in_len())
                .zip(grad.par_chunks(g.cout * l))
                .for_each(|(gxi, gi)| one(gxi, gi));
        } else {
            for (gxi, gi) in gx.chunks_mut(g.in_len()).zip(grad.chunks(g.cout * l)) {
                one(gxi, gi);
            }
        }
        return gx;
    }
    if by_image(g.n) {
        gx.par_chunks_mut(g.in_len())
            .zip(grad.par_chunks(g.cout * l))
            .for_each_init(Vec::new, |cols: &mut Vec<f32>, (gxi, gi)| {
                cols.resize(kk * l, 0.0);
                sgemm(
                    (kk, l, g.cout),
                    w,
                    true,
                    gi,
                    false,
                    cols,
                    false,
                    Parallelism::None,
                );
                for (ci, p) in gxi.chunks_mut(plane).enumerate() {
                    col2im(cols, g, ci, p);
                }
            });
    } else {
        let mut cols = vec![0f32; kk * l];
        for (gxi, gi) in gx.chunks_mut(g.in_len()).zip(grad.chunks(g.cout * l)) {
            let par = Parallelism::Rayon(threads());
            sgemm((kk, l, g.cout), w, true, gi, false, &mut cols, false, par);
            gxi.par_chunks_mut(plane)
                .enumerate()
                .for_each(|(ci, p)| col2im(&cols, g, ci, p));
        }
    }
    gx
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut r = crate::rng::Rng::new(seed);
        (0..n).map(|_| r.uniform() as f32 * 2.0 - 1.0).collect()
    }

    /// Forward and both gradients against candle's convolution and its backward.
    #[test]
    fn matches_candle_for_paddings_strides_and_pointwise() {
        for &(n, cin, h, w, cout, k, p, s) in &[
            (2, 3, 9, 9, 4, 3, 1, 1),
            (1, 3, 9, 7, 4, 3, 1, 2),
            (3, 2, 12, 12, 5, 7, 3, 2),
            (2, 3, 16, 16, 2, 11, 2, 4),
            (2, 4, 8, 8, 6, 1, 0, 1),
            (1, 4, 8, 8, 6, 1, 0, 2),
            (2, 1, 28, 28, 3, 5, 0, 1),
            (1, 2, 5, 5, 2, 5, 2, 3),
        ] {
            let g = Geom {
                n,
                cin,
                h,
                w,
                cout,
                k,
                p,
                s,
            };
            let (x, wt) = (rand(n * cin * h * w, 1), rand(cout * cin * k * k, 2));
            let b = rand(cout, 3);
            let dev = Device::Cpu;
            let xt = candle_core::Var::from_vec(x.clone(), (n, cin, h, w), &dev).unwrap();
            let wv = candle_core::Var::from_vec(wt.clone(), (cout, cin, k, k), &dev).unwrap();
            let bt = Tensor::from_vec(b.clone(), (1, cout, 1, 1), &dev).unwrap();
            let yt = xt
                .conv2d(&wv, p, s, 1, 1)
                .unwrap()
                .broadcast_add(&bt)
                .unwrap();
            let ours = forward(&x, &wt, Some(&b), &g);
            let theirs = yt.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let (oh, ow) = g.out();
            assert_eq!(yt.dims(), &[n, cout, oh, ow]);
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (u, v) in a.iter().zip(b) {
                    assert!(
                        (u - v).abs() < 1e-4 * (1.0 + v.abs()),
                        "{what} {g:?}: {u} vs {v}"
                    );
                }
            };
            close(&ours, &theirs, "forward");
            let gy = rand(ours.len(), 4);
            let gyt = Tensor::from_vec(gy.clone(), yt.shape(), &dev).unwrap();
            let grads = (yt * gyt).unwrap().sum_all().unwrap().backward().unwrap();
            let grad_of = |v: &candle_core::Var| {
                let t = grads.get(v).unwrap().flatten_all().unwrap();
                t.to_vec1::<f32>().unwrap()
            };
            let (gx, gw) = (grad_of(&xt), grad_of(&wv));
            close(&grad_input(&wt, &gy, &g), &gx, "input gradient");
            close(&grad_weight(&x, &gy, &g), &gw, "kernel gradient");
        }
    }
}
