//! Convolution and linear layers as single operations with their own CPU backward (candle's
//! compositions cost extra full-size passes), with an [`Epilogue`] fused into the output
//! buffer. The arithmetic is in [`super::gemm`].

use super::cpu::{cpu_slice, is_cpu_f32, with_cpu_f32};
use super::elementwise::{channel_affine, relu};
use super::epilogue::Epilogue;
use crate::Result;
use candle_core::{CpuStorage, Layout, Shape, Tensor};
use rayon::prelude::*;

/// `x W^T + b` (`nn.Linear`) for an `N x in` input and an `out x in` weight. On the CPU in
/// f32 it is one operation with its own backward: the weight's gradient `g^T x` comes out of
/// one gemm already in the weight's `out x in` layout and the bias's as column sums, where
/// candle's `matmul(w.t())` + `broadcast_add` would compute the transposed gradient, transpose
/// it back through a strided addition and reduce a broadcast, each with its own zero-filled
/// accumulator (about twice the time of workflow 3's fully-connected backward). Other devices and
/// dtypes use candle's operations. Values agree with candle's to float rounding.
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    linear_fused(x, w, bias, &Epilogue::default())
}

/// [`linear`] followed by `epi` (a per-feature affine step, a ReLU), applied in the output
/// buffer on the CPU: one graph node instead of two or three. The same values and gradients,
/// bit for bit, as the separate operations.
pub fn linear_fused(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    epi: &Epilogue,
) -> Result<Tensor> {
    if x.rank() == 2
        && w.rank() == 2
        && is_cpu_f32(x)
        && is_cpu_f32(w)
        && bias.is_none_or(is_cpu_f32)
    {
        return apply_weighted(Linear, epi, x, w, bias);
    }
    let y = x.matmul(&w.t()?)?;
    apply_epilogue(
        epi,
        match bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        },
    )
}

struct Linear;

impl Linear {
    /// `(n, in, out)` of an `n x in` input and an `out x in` weight.
    fn dims(x: &[usize], w: &[usize]) -> candle_core::Result<(usize, usize, usize)> {
        match (x, w) {
            (&[n, i], &[o, wi]) if wi == i => Ok((n, i, o)),
            _ => candle_core::bail!("linear: input {x:?} does not fit weight {w:?} (out x in)"),
        }
    }

    /// One thread for small products (workflow 3's fc2), all of them for large ones; the gemm
    /// splits rows and columns of the output, never the sums, so the bits do not depend on it.
    fn par(m: usize, n: usize, k: usize) -> gemm::Parallelism {
        if m * n * k < 1 << 18 {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(super::gemm::threads())
        }
    }
}

impl WeightOp for Linear {
    const NAME: &'static str = "neuroscope-linear";

    fn forward(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        bias: Option<&[f32]>,
        epi: &Epilogue,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        use super::gemm::{mat, mat_t, sgemm};
        let (n, i, o) = Self::dims(l1.dims(), l2.dims())?;
        let x = cpu_slice(s1, l1, "linear")?;
        let w = cpu_slice(s2, l2, "linear")?;
        let mut y = match bias {
            Some(b) if b.len() != o => {
                candle_core::bail!("linear: bias length {} differs from {o} outputs", b.len());
            }
            // the bias in every row, on all threads and without a zero-filling pass first
            // SAFETY: each chunk is whole rows of `o` values (`chunk` is a multiple of `o`, as
            // is `len`), and each row is zipped with the `o` values of `b`: every element is
            // written.
            Some(b) => unsafe {
                super::cpu::par_uninit(n * o, o * 64, |_, rows| {
                    for row in rows.chunks_mut(o) {
                        for (d, &v) in row.iter_mut().zip(b) {
                            d.write(v);
                        }
                    }
                })
            },
            None => vec![0f32; n * o],
        };
        sgemm(
            (n, o, i),
            mat(x, i),
            mat_t(w, i),
            &mut y,
            o,
            bias.is_some(),
            Self::par(n, o, i),
        );
        epi.apply_cpu(&mut y, &[n, o]);
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        use super::gemm::{mat, mat_t, sgemm};
        let (n, i, o) = Self::dims(x.dims(), w.dims())?;
        // The gradient of `target` (m x i, when tracked): the output's gradient (read
        // transposed for the weight) times `other` (k x i).
        let grad_of = |target: &Tensor, other: &Tensor, m: usize, k: usize, transposed: bool| {
            if !target.track_op() {
                return Ok(None);
            }
            let v = with_cpu_f32(other, |b| {
                with_cpu_f32(grad, |g| {
                    let a = if transposed { mat_t(g, o) } else { mat(g, o) };
                    let mut out = vec![0f32; m * i];
                    sgemm(
                        (m, i, k),
                        a,
                        mat(b, i),
                        &mut out,
                        i,
                        false,
                        Self::par(m, i, k),
                    );
                    out
                })
            })??;
            Tensor::from_vec(v, target.shape(), target.device()).map(Some)
        };
        // x: g (n x o) W (o x i); W: g^T (o x n) x (n x i).
        Ok((grad_of(x, w, n, o, false)?, grad_of(w, x, o, n, true)?))
    }
}

/// 2-D convolution (`x.conv2d(w, padding, stride, 1, groups)`). On the CPU in f32 with one
/// group and a square kernel it runs on our im2col + gemm kernels in NCHW (`gemm.rs`:
/// forward, the input's gradient as `W^T g` + col2im for every stride, the kernel's gradient as
/// one gemm per image), with each gradient computed only when its operand is tracked (feature
/// visualisation needs no weight gradients). candle's CPU convolution copies the input to NHWC
/// on one thread and gathers its columns element by element, and its backward is a direct
/// transposed convolution: 3.4x slower for a training epoch of workflow 3's network, 2-4x for a
/// feature-visualisation step (BENCHMARKS.md). Other devices, dtypes and grouped convolutions
/// use candle's. Values agree with candle's to float rounding (the test below and the PyTorch
/// parity tests). The layers call [`conv2d_bias`] / [`conv2d_fused`]; this is the tests'.
#[cfg(test)]
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
    groups: usize,
) -> Result<Tensor> {
    conv2d_bias(x, w, None, padding, stride, groups)
}

/// [`conv2d`] followed by a per-channel bias (`nn.Conv2d` with `bias=True`), as one operation
/// when gradients are needed on the CPU: the bias is added in the output buffer and its gradient
/// is a sum over contiguous planes inside the convolution's backward. candle's broadcast add
/// would cost its backward two zero-filled accumulators, two additions and a strided reduction
/// of the full activation.
pub fn conv2d_bias(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    padding: usize,
    stride: usize,
    groups: usize,
) -> Result<Tensor> {
    conv2d_fused(x, w, bias, padding, stride, groups, &Epilogue::default())
}

/// [`conv2d_bias`] followed by `epi` (eval-mode batch norm's per-channel scale and shift, then
/// a ReLU), applied in the convolution's output buffer when the CPU kernel runs: one graph
/// node instead of up to three, so candle's backward also skips the zero-filled accumulator
/// and addition it spends on every intermediate tensor, and the steps' own passes. The same
/// values and gradients, bit for bit, as the separate operations.
pub fn conv2d_fused(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    padding: usize,
    stride: usize,
    groups: usize,
    epi: &Epilogue,
) -> Result<Tensor> {
    let (cout, wcin, k, k2) = w.dims4()?;
    let cpu = is_cpu_f32(x) && is_cpu_f32(w) && bias.is_none_or(is_cpu_f32);
    if groups == 1 && k == k2 && padding < k && cpu {
        return apply_weighted(Conv { padding, stride }, epi, x, w, bias);
    }
    // Depthwise (one input channel per output channel, as ConvNeXt's 7 x 7, MobileNetV2's and
    // EfficientNet's layers): candle runs one convolution per group, here one pass per plane.
    if groups > 1
        && wcin == 1
        && cout == groups
        && x.dim(1)? == groups
        && k == k2
        && padding < k
        && stride > 0
        && cpu
    {
        return apply_weighted(Depthwise { padding, stride }, epi, x, w, bias);
    }
    let y = x.conv2d(w, padding, stride, 1, groups)?;
    apply_epilogue(
        epi,
        match bias {
            Some(b) => y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?,
            None => y,
        },
    )
}

struct Conv {
    padding: usize,
    stride: usize,
}

impl Conv {
    fn geom(&self, x: &[usize], w: &[usize]) -> candle_core::Result<super::gemm::Geom> {
        let (&[n, cin, h, wd], &[cout, wcin, k, _]) = (x, w) else {
            candle_core::bail!("conv2d: expected 4-D input and kernel, got {x:?} and {w:?}");
        };
        if self.stride == 0 {
            candle_core::bail!("conv2d: stride must be at least 1");
        }
        if wcin != cin || h + 2 * self.padding < k || wd + 2 * self.padding < k {
            candle_core::bail!("conv2d: input {x:?} does not fit kernel {w:?}");
        }
        Ok(super::gemm::Geom {
            n,
            cin,
            h,
            w: wd,
            cout,
            k,
            p: self.padding,
            s: self.stride,
        })
    }
}

impl WeightOp for Conv {
    const NAME: &'static str = "neuroscope-conv2d";

    fn forward(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        bias: Option<&[f32]>,
        epi: &Epilogue,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geom(l1.dims(), l2.dims())?;
        let x = cpu_slice(s1, l1, "conv2d")?;
        let w = cpu_slice(s2, l2, "conv2d")?;
        if bias.is_some_and(|b| b.len() != g.cout) {
            candle_core::bail!("conv2d: bias length differs from {} channels", g.cout);
        }
        let (oh, ow) = g.out();
        // the epilogue on each image right after its products, while they are in the caches
        // (a separate pass over the whole output read it back from memory)
        let post = |yi: &mut [f32], par: gemm::Parallelism| {
            epi.apply_image(yi, oh * ow, !matches!(par, gemm::Parallelism::None))
        };
        let y = super::gemm::forward(x, w, bias, &g, &post);
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.cout, oh, ow))))
    }

    /// Gradients of the input and the kernel, each only when its operand is tracked: feature
    /// visualisation wants the input's gradient alone, training the weights' (and the input's
    /// only below the first layer).
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geom(x.dims(), w.dims())?;
        type Kernel = fn(&[f32], &[f32], &super::gemm::Geom) -> Vec<f32>;
        // The gradient of `target` (when tracked) from `other` and the output's gradient.
        let grad_of = |target: &Tensor, other: &Tensor, f: Kernel| {
            if !target.track_op() {
                return Ok(None);
            }
            let v = with_cpu_f32(other, |o| with_cpu_f32(grad, |gs| f(o, gs, &g)))??;
            Tensor::from_vec(v, target.shape(), target.device()).map(Some)
        };
        Ok((
            grad_of(x, w, super::gemm::grad_input)?,
            grad_of(w, x, super::gemm::grad_weight)?,
        ))
    }
}

/// `y[i] += a * x[i]` (a multiply, then an add: the bits of the scalar loop), in 8-lane AVX
/// registers where the CPU has them, else as the compiler vectorises the baseline.
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, all `axpy_avx` requires; it is safe code otherwise.
        unsafe { axpy_avx(y, a, x) };
        return;
    }
    axpy_portable(y, a, x);
}

#[inline(always)]
fn axpy_portable(y: &mut [f32], a: f32, x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(o, v)| *o += a * v);
}

/// [`axpy_portable`] compiled for AVX (8 lanes; no fused multiply-add, which AVX lacks).
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn axpy_avx(y: &mut [f32], a: f32, x: &[f32]) {
    axpy_portable(y, a, x)
}

#[cfg(test)]
mod axpy_tests {
    use super::axpy;

    /// The depthwise rows' `y += a x` gives the scalar loop's bits on any CPU (no fused
    /// multiply-add), so depthwise convolutions do not depend on the instruction set.
    #[test]
    fn axpy_is_the_scalar_loop_bit_for_bit() {
        let mut r = crate::rng::Rng::new(5);
        for len in [0, 1, 7, 8, 56, 113] {
            let x: Vec<f32> = (0..len).map(|_| r.normal() as f32).collect();
            let y0: Vec<f32> = (0..len).map(|_| r.normal() as f32 * 3.0).collect();
            let (mut fast, mut slow) = (y0.clone(), y0.clone());
            axpy(&mut fast, 0.37, &x);
            for (o, v) in slow.iter_mut().zip(&x) {
                *o += 0.37 * v;
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&slow));
        }
    }
}

/// A stride-1 depthwise plane as one long row: the plane zero-padded into a row-major buffer
/// `wp = w + 2p` wide, the output computed at every `oy * wp + ox` (the columns `ox >= ow` are
/// thrown away), so that every kernel tap `(ky, kx)` reads the input at `o + ky * wp + kx`: one
/// contiguous stream for the whole plane. Blocks of 64 outputs stay in eight AVX registers
/// through all `k * k` taps (the row-by-row loop loaded and stored each output row `k * k`
/// times, and ConvNeXt's 14- and 7-wide rows left AVX mostly idle: 17 % of ConvNeXt-T's time).
///
/// The bits are those of the row-by-row loop: each output still adds its terms in `(ky, kx)`
/// order, multiply then add; the taps that fall on the padding add `w * 0 = +-0`, which leaves
/// any sum unchanged except `-0.0` (`-0 + +0 = +0`). A sum is `-0.0` only while the bias and
/// every term so far are `-0.0`, so [`Padded::exact_for`] sends a `-0.0` bias (and non-finite
/// weights, where `w * 0` is NaN) to the row-by-row loop.
struct Padded {
    h: usize,
    w: usize,
    k: usize,
    p: usize,
    oh: usize,
    ow: usize,
    /// Padded row width.
    wp: usize,
    /// Outputs computed per plane: `oh * wp` rounded up to whole blocks.
    len: usize,
}

/// Outputs per register block of [`Padded`]: eight 8-lane registers.
const BLOCK: usize = 64;

impl Padded {
    /// Whether padding taps leave this filter bank's sums bit-identical to skipping them.
    fn exact_for(w: &[f32], bias: Option<&[f32]>) -> bool {
        let negative_zero = |v: &f32| *v == 0.0 && v.is_sign_negative();
        w.iter().all(|v| v.is_finite()) && !bias.is_some_and(|b| b.iter().any(negative_zero))
    }

    fn new(h: usize, w: usize, k: usize, p: usize, oh: usize, ow: usize) -> Self {
        let wp = w + 2 * p;
        Padded {
            h,
            w,
            k,
            p,
            oh,
            ow,
            wp,
            len: (oh * wp).div_ceil(BLOCK) * BLOCK,
        }
    }

    /// One plane: `xin` (`h x w`), filter `f` (`k x k`), `bias`, two scratch buffers reused
    /// across the planes of this geometry (never another's), output `out` (`oh x ow`).
    fn plane(
        &self,
        xin: &[f32],
        f: &[f32],
        bias: f32,
        (xp, acc): (&mut Vec<f32>, &mut Vec<f32>),
        out: &mut [f32],
    ) {
        let (wp, p) = (self.wp, self.p);
        // the last block's taps read up to `len - 1 + (k - 1) * (wp + 1)`; the padding is
        // zeroed once per scratch buffer: each plane rewrites the same interior positions, and
        // the buffers serve planes of this one geometry only (one call's `for_each_init`)
        let need = self.len + (self.k - 1) * (wp + 1);
        if xp.len() != need {
            xp.clear();
            xp.resize(need, 0.0);
        }
        for (r, row) in xin.chunks_exact(self.w).take(self.h).enumerate() {
            xp[(r + p) * wp + p..][..self.w].copy_from_slice(row);
        }
        acc.clear();
        acc.resize(self.len, bias);
        taps(xp, f, self.k, wp, acc);
        for (o, a) in out
            .chunks_exact_mut(self.ow)
            .zip(acc.chunks(wp))
            .take(self.oh)
        {
            o.copy_from_slice(&a[..self.ow]);
        }
    }
}

/// `acc[o] += f[ky * k + kx] * xp[o + ky * wp + kx]` for every tap in `(ky, kx)` order, in
/// blocks of [`BLOCK`] outputs; `acc.len()` a multiple of `BLOCK` and `xp` long enough for the
/// last block's taps (the caller, [`Padded::plane`], sizes both; checked here).
fn taps(xp: &[f32], f: &[f32], k: usize, wp: usize, acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if acc.len().is_multiple_of(BLOCK)
        && f.len() == k * k
        && (acc.is_empty() || xp.len() >= acc.len() + (k - 1) * (wp + 1))
        && std::arch::is_x86_feature_detected!("avx")
    {
        // SAFETY: the CPU has AVX, and the tests above are the bounds `taps_avx` requires.
        unsafe { taps_avx(xp, f, k, wp, acc) };
        return;
    }
    for (ky, fr) in f.chunks(k).enumerate() {
        for (kx, &wv) in fr.iter().enumerate() {
            let src = &xp[ky * wp + kx..];
            acc.iter_mut().zip(src).for_each(|(a, v)| *a += wv * v);
        }
    }
}

/// [`taps`] with each block of 64 outputs held in eight AVX registers through all the taps.
///
/// # Safety
/// The CPU must support AVX; `acc.len()` is a multiple of [`BLOCK`], `f.len() == k * k`, and
/// `xp.len() >= acc.len() + (k - 1) * (wp + 1)` (the last read, `acc.len() - 1 + (k - 1) * wp +
/// (k - 1)`, is in bounds).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn taps_avx(xp: &[f32], f: &[f32], k: usize, wp: usize, acc: &mut [f32]) {
    use std::arch::x86_64::{_mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps};
    use std::arch::x86_64::{_mm256_setzero_ps, _mm256_storeu_ps};
    const V: usize = BLOCK / 8;
    for base in (0..acc.len()).step_by(BLOCK) {
        // SAFETY (this block): `base + BLOCK <= acc.len()`, so the loads and stores of `acc`
        // are in bounds; the loads of `xp` end at `base + BLOCK - 1 + ky * wp + kx <=
        // acc.len() - 1 + (k - 1) * (wp + 1) < xp.len()`; `f` has `k * k` entries.
        let dst = unsafe { acc.as_mut_ptr().add(base) };
        let mut r = [_mm256_setzero_ps(); V];
        for (j, v) in r.iter_mut().enumerate() {
            *v = unsafe { _mm256_loadu_ps(dst.add(8 * j)) };
        }
        for ky in 0..k {
            for kx in 0..k {
                let wv = _mm256_set1_ps(unsafe { *f.get_unchecked(ky * k + kx) });
                let src = unsafe { xp.as_ptr().add(base + ky * wp + kx) };
                for (j, v) in r.iter_mut().enumerate() {
                    // multiply, then add: no fused multiply-add, the portable loop's bits
                    let x = unsafe { _mm256_loadu_ps(src.add(8 * j)) };
                    *v = _mm256_add_ps(*v, _mm256_mul_ps(wv, x));
                }
            }
        }
        for (j, v) in r.iter().enumerate() {
            unsafe { _mm256_storeu_ps(dst.add(8 * j), *v) };
        }
    }
}

/// A depthwise convolution (`groups == channels`, one `k x k` filter per channel) directly on
/// the NCHW planes: every output sums its `k * k` terms in (row, column) order of the kernel,
/// and planes are independent, so the bits do not depend on the thread count.
struct Depthwise {
    padding: usize,
    stride: usize,
}

impl Depthwise {
    /// `(n, c, h, w, k, oh, ow)` of an input and a `c x 1 x k x k` kernel.
    fn geom(&self, x: &[usize], w: &[usize]) -> candle_core::Result<[usize; 7]> {
        let (&[n, c, h, wd], &[wc, 1, k, _]) = (x, w) else {
            candle_core::bail!(
                "depthwise conv2d: expected N x C x H x W and C x 1 x k x k, got {x:?} and {w:?}"
            );
        };
        if wc != c || h + 2 * self.padding < k || wd + 2 * self.padding < k {
            candle_core::bail!("depthwise conv2d: input {x:?} does not fit kernel {w:?}");
        }
        let (s, p) = (self.stride, self.padding);
        Ok([
            n,
            c,
            h,
            wd,
            k,
            (h + 2 * p - k) / s + 1,
            (wd + 2 * p - k) / s + 1,
        ])
    }

    /// For kernel offset `d` (row or column), the output indices `o` whose input index
    /// `o * s + d - p` lies in `0..len`, as a range.
    fn valid(&self, d: usize, len: usize, out: usize) -> std::ops::Range<usize> {
        let (s, p) = (self.stride, self.padding);
        let lo = p.saturating_sub(d).div_ceil(s);
        // o * s + d - p <= len - 1  <=>  o <= (len - 1 + p - d) / s
        let hi = if len + p > d {
            ((len - 1 + p - d) / s + 1).min(out)
        } else {
            0
        };
        lo..hi.max(lo)
    }
}

impl WeightOp for Depthwise {
    const NAME: &'static str = "neuroscope-depthwise-conv2d";

    fn forward(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        bias: Option<&[f32]>,
        epi: &Epilogue,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [n, c, h, wd, k, oh, ow] = self.geom(l1.dims(), l2.dims())?;
        let x = cpu_slice(s1, l1, "depthwise conv2d")?;
        let w = cpu_slice(s2, l2, "depthwise conv2d")?;
        if bias.is_some_and(|b| b.len() != c) {
            candle_core::bail!("depthwise conv2d: bias length differs from {c} channels");
        }
        let (s, p) = (self.stride, self.padding);
        let mut y = vec![0f32; n * c * oh * ow];
        if s == 1 && Padded::exact_for(w, bias) {
            let geom = Padded::new(h, wd, k, p, oh, ow);
            y.par_chunks_mut(oh * ow).enumerate().for_each_init(
                || (Vec::new(), Vec::new()),
                |(xp, acc), (plane, out)| {
                    let ch = plane % c;
                    geom.plane(
                        &x[plane * h * wd..][..h * wd],
                        &w[ch * k * k..][..k * k],
                        bias.map_or(0.0, |b| b[ch]),
                        (xp, acc),
                        out,
                    )
                },
            );
            epi.apply_cpu(&mut y, &[n, c, oh, ow]);
            return Ok((CpuStorage::F32(y), Shape::from((n, c, oh, ow))));
        }
        y.par_chunks_mut(oh * ow)
            .enumerate()
            .for_each(|(plane, out)| {
                let ch = plane % c;
                let xin = &x[plane * h * wd..][..h * wd];
                let f = &w[ch * k * k..][..k * k];
                out.fill(bias.map_or(0.0, |b| b[ch]));
                for ky in 0..k {
                    for oy in self.valid(ky, h, oh) {
                        let row = &xin[(oy * s + ky - p) * wd..][..wd];
                        let orow = &mut out[oy * ow..][..ow];
                        for kx in 0..k {
                            let wv = f[ky * k + kx];
                            let r = self.valid(kx, wd, ow);
                            if r.is_empty() {
                                continue;
                            }
                            if s == 1 {
                                // contiguous: the compiler vectorises along the output row
                                let src = &row[r.start + kx - p..][..r.len()];
                                axpy(&mut orow[r], wv, src);
                            } else {
                                let src = row[r.start * s + kx - p..].iter().step_by(s);
                                orow[r].iter_mut().zip(src).for_each(|(o, v)| *o += wv * v);
                            }
                        }
                    }
                }
            });
        epi.apply_cpu(&mut y, &[n, c, oh, ow]);
        Ok((CpuStorage::F32(y), Shape::from((n, c, oh, ow))))
    }

    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let [n, c, h, wd, k, oh, ow] = self.geom(x.dims(), w.dims())?;
        let (s, p) = (self.stride, self.padding);
        let gx = if x.track_op() {
            let v = with_cpu_f32(w, |wv| {
                with_cpu_f32(grad, |g| {
                    let mut gx = vec![0f32; n * c * h * wd];
                    gx.par_chunks_mut(h * wd)
                        .enumerate()
                        .for_each(|(plane, out)| {
                            let ch = plane % c;
                            let gp = &g[plane * oh * ow..][..oh * ow];
                            let f = &wv[ch * k * k..][..k * k];
                            for ky in 0..k {
                                for oy in self.valid(ky, h, oh) {
                                    let grow = &gp[oy * ow..][..ow];
                                    let irow = &mut out[(oy * s + ky - p) * wd..][..wd];
                                    for kx in 0..k {
                                        let wk = f[ky * k + kx];
                                        let r = self.valid(kx, wd, ow);
                                        if r.is_empty() {
                                            continue;
                                        }
                                        if s == 1 {
                                            let dst = &mut irow[r.start + kx - p..][..r.len()];
                                            axpy(dst, wk, &grow[r]);
                                        } else {
                                            let dst =
                                                irow[r.start * s + kx - p..].iter_mut().step_by(s);
                                            dst.zip(&grow[r]).for_each(|(i, g)| *i += wk * g);
                                        }
                                    }
                                }
                            }
                        });
                    gx
                })
            })??;
            Some(Tensor::from_vec(v, x.shape(), x.device())?)
        } else {
            None
        };
        let gw = if w.track_op() {
            let v = with_cpu_f32(x, |xv| {
                with_cpu_f32(grad, |g| {
                    let mut gw = vec![0f32; c * k * k];
                    gw.par_chunks_mut(k * k).enumerate().for_each(|(ch, out)| {
                        for i in 0..n {
                            let plane = i * c + ch;
                            let xin = &xv[plane * h * wd..][..h * wd];
                            let gp = &g[plane * oh * ow..][..oh * ow];
                            for ky in 0..k {
                                for kx in 0..k {
                                    let mut acc = 0f32;
                                    let r = self.valid(kx, wd, ow);
                                    if r.is_empty() {
                                        continue;
                                    }
                                    for oy in self.valid(ky, h, oh) {
                                        let row = &xin[(oy * s + ky - p) * wd..][..wd];
                                        let grow = &gp[oy * ow..][..ow];
                                        let src = row[r.start * s + kx - p..].iter().step_by(s);
                                        for (g, v) in grow[r.clone()].iter().zip(src) {
                                            acc += g * v;
                                        }
                                    }
                                    out[ky * k + kx] += acc;
                                }
                            }
                        }
                    });
                    gw
                })
            })??;
            Some(Tensor::from_vec(v, w.shape(), w.device())?)
        } else {
            None
        };
        Ok((gx, gw))
    }
}

/// An operation of an input and a weight (`f(x, w)`, plus a bias per output channel when one
/// is given) with its own CPU kernels: [`conv2d_bias`] and [`linear`]. One wrapper gives both
/// candle's two- and three-operand custom-op interfaces, so a bias never costs a broadcast node.
trait WeightOp: Send + Sync + 'static {
    const NAME: &'static str;
    /// The output (bias included when given) from contiguous f32 operands, `epi` applied
    /// (checked against the weight's output channels by the caller).
    fn forward(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<&[f32]>,
        epi: &Epilogue,
    ) -> candle_core::Result<(CpuStorage, Shape)>;
    /// The gradients of the input and the weight, each only when that operand is tracked.
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)>;
}

/// A [`WeightOp`] as candle's two- and three-operand custom op, followed by an [`Epilogue`]
/// in its output buffer (whose backward then comes first).
struct Weighted<T> {
    op: T,
    epi: Epilogue,
}

impl<T: WeightOp> Weighted<T> {
    fn forward(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<&[f32]>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        // the output's channels are the weight's first axis (conv, depthwise and linear)
        self.epi.check(w.1.dims().first().copied().unwrap_or(1))?;
        self.op.forward(x, w, bias, &self.epi)
    }
}

/// Runs `op` then `epi` on `x` and `w` (and `bias`), recording a backward only when an
/// operand is tracked.
fn apply_weighted<T: WeightOp>(
    op: T,
    epi: &Epilogue,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let tracked = x.track_op() || w.track_op() || bias.is_some_and(|b| b.track_op());
    let epi = epi.clone();
    let (x, w, op) = (x.contiguous()?, w.contiguous()?, Weighted { op, epi });
    Ok(match (bias, tracked) {
        (Some(b), true) => x.apply_op3(&w, &b.contiguous()?, op)?,
        (Some(b), false) => x.apply_op3_no_bwd(&w, &b.contiguous()?, &op)?,
        (None, true) => x.apply_op2(&w, op)?,
        (None, false) => x.apply_op2_no_bwd(&w, &op)?,
    })
}

/// The bias's gradient: `grad` (`N x C x ...`) summed over everything but axis 1, channel by
/// channel, images in order and positions in order within each (the same bits at any thread
/// count; for an `N x C` gradient these are the column sums, rows in order).
fn bias_grad(grad: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let (n, c) = (grad.dim(0)?, grad.dim(1)?);
    let plane = grad.elem_count() / (n * c).max(1);
    let gb = with_cpu_f32(grad, |g| {
        (0..c)
            .into_par_iter()
            .map(|ch| {
                (0..n)
                    .map(|i| g[(i * c + ch) * plane..][..plane].iter().sum::<f32>())
                    .sum::<f32>()
            })
            .collect::<Vec<f32>>()
    })?;
    Tensor::from_vec(gb, c, b.device())
}

impl<T: WeightOp> candle_core::CustomOp2 for Weighted<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        self.op.backward(x, w, &self.epi.grad_cpu(res, grad)?)
    }
}

impl<T: WeightOp> candle_core::CustomOp3 for Weighted<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let bias = cpu_slice(s3, l3, T::NAME)?;
        self.forward((s1, l1), (s2, l2), Some(bias))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = self.epi.grad_cpu(res, grad)?;
        let (gx, gw) = self.op.backward(x, w, &grad)?;
        let gb = if b.track_op() {
            Some(bias_grad(&grad, b)?)
        } else {
            None
        };
        Ok((gx, gw, gb))
    }
}

/// The steps as separate tensor operations (devices and layouts the fused CPU kernel does
/// not cover).
fn apply_epilogue(epi: &Epilogue, y: Tensor) -> Result<Tensor> {
    let y = match &epi.affine {
        Some((a, b)) if y.rank() == 4 => channel_affine(&y, a, b)?,
        Some((a, b)) => {
            let shape = (1, a.len());
            let a = Tensor::from_slice(a, shape, y.device())?.to_dtype(y.dtype())?;
            let b = Tensor::from_slice(b, shape, y.device())?.to_dtype(y.dtype())?;
            y.broadcast_mul(&a)?.broadcast_add(&b)?
        }
        None => y,
    };
    if epi.relu {
        relu(&y)
    } else {
        Ok(y)
    }
}

#[cfg(test)]
mod doc_examples {
    //! The examples of the functions above (crate-private, so rustdoc does not run them).

    #[test]
    fn linear() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let x = Var::randn(0f32, 1.0, (5, 7), &Device::Cpu)?;
        let w = Var::randn(0f32, 1.0, (3, 7), &Device::Cpu)?;
        let b = Var::randn(0f32, 1.0, 3, &Device::Cpu)?;
        let ours = super::linear(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()))?;
        let theirs = x
            .as_tensor()
            .matmul(&w.as_tensor().t()?)?
            .broadcast_add(b.as_tensor())?;
        let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "{d}");
        let g1 = ours.sqr()?.sum_all()?.backward()?;
        let g2 = theirs.sqr()?.sum_all()?.backward()?;
        for v in [&x, &w, &b] {
            let (a, c) = (
                g1.get(v.as_tensor()).unwrap(),
                g2.get(v.as_tensor()).unwrap(),
            );
            assert_eq!(a.dims(), c.dims());
            let d = (a - c)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-4, "{d}");
        }
        Ok(())
    }

    #[test]
    fn linear_fused() -> crate::Result<()> {
        use crate::kernels::{self as ops, Epilogue};
        use candle_core::{Device, Var};
        let x = Var::randn(0f32, 1.0, (5, 7), &Device::Cpu)?;
        let w = Var::randn(0f32, 1.0, (3, 7), &Device::Cpu)?;
        let fused = ops::linear_fused(x.as_tensor(), w.as_tensor(), None, &Epilogue::relu())?;
        let apart = ops::relu(&ops::linear(x.as_tensor(), w.as_tensor(), None)?)?;
        assert_eq!(fused.to_vec2::<f32>()?, apart.to_vec2::<f32>()?);
        let (g1, g2) = (fused.sum_all()?.backward()?, apart.sum_all()?.backward()?);
        let gw =
            |g: &candle_core::backprop::GradStore| g.get(w.as_tensor()).unwrap().to_vec2::<f32>();
        assert_eq!(gw(&g1)?, gw(&g2)?);
        Ok(())
    }

    #[test]
    fn conv2d() -> crate::Result<()> {
        use candle_core::{Device, Var};
        // (3, 2, 12) and (2, 4, 64) leave rows the stride never reaches (AlexNet's and ResNet's first convs).
        for (pad, stride, size) in [
            (1, 1, 9),
            (1, 2, 9),
            (3, 2, 12),
            (0, 2, 10),
            (2, 4, 16),
            (1, 2, 8),
        ] {
            let x = Var::randn(0f32, 1.0, (2, 3, size, size), &Device::Cpu)?;
            let k = match pad {
                3 => 7,
                2 => 11,
                _ => 3,
            };
            let w = Var::randn(0f32, 1.0, (4, 3, k, k), &Device::Cpu)?;
            let ours = super::conv2d(x.as_tensor(), w.as_tensor(), pad, stride, 1)?;
            let theirs = x.as_tensor().conv2d(w.as_tensor(), pad, stride, 1, 1)?;
            let g1 = ours.sqr()?.sum_all()?.backward()?;
            let g2 = theirs.sqr()?.sum_all()?.backward()?;
            for v in [&x, &w] {
                let (a, b) = (
                    g1.get(v.as_tensor()).unwrap(),
                    g2.get(v.as_tensor()).unwrap(),
                );
                assert_eq!(a.dims(), b.dims());
                let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(d < 1e-3, "pad {pad} stride {stride}: {d}");
            }
        }
        Ok(())
    }

    #[test]
    fn depthwise_conv2d() -> crate::Result<()> {
        use candle_core::{Device, Var};
        // ConvNeXt's 7 x 7 / pad 3, MobileNet's 3 x 3 / stride 2, EfficientNet's 5 x 5 / stride
        // 2, and sizes the stride does not divide; against candle's per-group convolution.
        // (7, 3, 1, 2): a map smaller than the kernel reaches, ConvNeXt's last stage at 64 px.
        for (k, pad, stride, size) in [
            (7, 3, 1, 9),
            (3, 1, 2, 9),
            (5, 2, 2, 10),
            (3, 1, 1, 4),
            (3, 0, 2, 8),
            (7, 3, 1, 2),
            (5, 2, 2, 3),
        ] {
            let x = Var::randn(0f32, 1.0, (2, 5, size, size), &Device::Cpu)?;
            let w = Var::randn(0f32, 1.0, (5, 1, k, k), &Device::Cpu)?;
            let b = Var::randn(0f32, 1.0, 5, &Device::Cpu)?;
            let ours = super::conv2d_bias(
                x.as_tensor(),
                w.as_tensor(),
                Some(b.as_tensor()),
                pad,
                stride,
                5,
            )?;
            let theirs = x
                .as_tensor()
                .conv2d(w.as_tensor(), pad, stride, 1, 5)?
                .broadcast_add(&b.as_tensor().reshape((1, 5, 1, 1))?)?;
            assert_eq!(ours.dims(), theirs.dims());
            let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-4, "k {k} pad {pad} stride {stride}: {d}");
            let g1 = ours.sqr()?.sum_all()?.backward()?;
            let g2 = theirs.sqr()?.sum_all()?.backward()?;
            for v in [&x, &w, &b] {
                let (a, c) = (
                    g1.get(v.as_tensor()).unwrap(),
                    g2.get(v.as_tensor()).unwrap(),
                );
                assert_eq!(a.dims(), c.dims());
                let d = (a - c)?.abs()?.max_all()?.to_scalar::<f32>()?;
                let scale = c.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
                assert!(
                    d < 1e-4 * scale,
                    "k {k} pad {pad} stride {stride} gradient: {d}"
                );
            }
        }
        Ok(())
    }

    /// The stride-1 depthwise kernel over a padded plane gives the bits of the direct loop
    /// (every output's terms in `(ky, kx)` order, padding skipped), including a `-0.0` bias over
    /// `-0.0` products, where adding the padding's `+0` would have turned the sum to `+0.0`.
    #[test]
    fn padded_depthwise_is_the_direct_loop_bit_for_bit() -> crate::Result<()> {
        use candle_core::{Device, Tensor};
        let direct = |x: &[f32], w: &[f32], b: &[f32], [n, c, h, k, p]: [usize; 5]| {
            let o = h + 2 * p - k + 1;
            let mut y = vec![0f32; n * c * o * o];
            for (plane, out) in y.chunks_mut(o * o).enumerate() {
                let ch = plane % c;
                for oy in 0..o {
                    for ox in 0..o {
                        let mut a = b[ch];
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) = (oy + ky, ox + kx);
                                if iy < p || ix < p || iy - p >= h || ix - p >= h {
                                    continue;
                                }
                                let v = x[(plane * h + iy - p) * h + ix - p];
                                a += w[(ch * k + ky) * k + kx] * v;
                            }
                        }
                        out[oy * o + ox] = a;
                    }
                }
            }
            y
        };
        let mut r = crate::rng::Rng::new(11);
        for (k, p, h) in [
            (7, 3, 56),
            (7, 3, 14),
            (7, 3, 7),
            (7, 3, 2),
            (3, 1, 9),
            (5, 2, 13),
            (3, 0, 5),
        ] {
            let (n, c) = (2, 3);
            let mut x: Vec<f32> = (0..n * c * h * h).map(|_| r.normal() as f32).collect();
            let mut w: Vec<f32> = (0..c * k * k).map(|_| r.normal() as f32).collect();
            let mut b: Vec<f32> = (0..c).map(|_| r.normal() as f32).collect();
            for neg_zero in [false, true] {
                if neg_zero {
                    // image 0, channel 0: bias -0.0, positive weights, inputs -0.0, so every
                    // product and the direct loop's sums are -0.0
                    b[0] = -0.0;
                    w[..k * k].iter_mut().for_each(|v| *v = v.abs());
                    x[..h * h].fill(-0.0);
                }
                let xt = Tensor::from_slice(&x, (n, c, h, h), &Device::Cpu)?;
                let wt = Tensor::from_slice(&w, (c, 1, k, k), &Device::Cpu)?;
                let bt = Tensor::from_slice(&b, c, &Device::Cpu)?;
                let ours = super::conv2d_bias(&xt, &wt, Some(&bt), p, 1, c)?;
                let ours = ours.flatten_all()?.to_vec1::<f32>()?;
                let want = direct(&x, &w, &b, [n, c, h, k, p]);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&ours),
                    bits(&want),
                    "k {k} pad {p} size {h} -0 {neg_zero}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn conv2d_bias() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let x = Var::randn(0f32, 1.0, (2, 3, 9, 9), &Device::Cpu)?;
        let w = Var::randn(0f32, 1.0, (4, 3, 3, 3), &Device::Cpu)?;
        let b = Var::randn(0f32, 1.0, 4, &Device::Cpu)?;
        let ours = super::conv2d_bias(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), 1, 2, 1)?;
        let theirs = x
            .as_tensor()
            .conv2d(w.as_tensor(), 1, 2, 1, 1)?
            .broadcast_add(&b.as_tensor().reshape((1, 4, 1, 1))?)?;
        let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-4, "{d}"); // the same sums in another order
        let g1 = ours.sqr()?.sum_all()?.backward()?;
        let g2 = theirs.sqr()?.sum_all()?.backward()?;
        for v in [&x, &w, &b] {
            let (a, c) = (
                g1.get(v.as_tensor()).unwrap(),
                g2.get(v.as_tensor()).unwrap(),
            );
            let d = (a - c)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-3, "{d}");
        }
        Ok(())
    }

    #[test]
    fn conv2d_fused() -> crate::Result<()> {
        use crate::kernels::{self as ops, Epilogue};
        use candle_core::{Device, Var};
        let x = Var::randn(0f32, 1.0, (2, 3, 9, 9), &Device::Cpu)?;
        let w = Var::randn(0f32, 1.0, (4, 3, 3, 3), &Device::Cpu)?;
        let b = Var::randn(0f32, 1.0, 4, &Device::Cpu)?;
        let (scale, shift) = (vec![0.5f32, -2.0, 1.5, 0.1], vec![0.1f32, 0.2, -0.3, 0.0]);
        let epi = Epilogue::affine(scale.clone(), shift.clone()).with_relu();
        let (xt, wt, bt) = (x.as_tensor(), w.as_tensor(), Some(b.as_tensor()));
        let fused = ops::conv2d_fused(xt, wt, bt, 1, 1, 1, &epi)?;
        let conv = ops::conv2d_bias(xt, wt, bt, 1, 1, 1)?;
        let apart = ops::relu(&ops::channel_affine(&conv, &scale, &shift)?)?;
        let bits = |t: &candle_core::Tensor| -> candle_core::Result<Vec<u32>> {
            Ok(t.flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .map(|v| v.to_bits())
                .collect())
        };
        assert_eq!(bits(&fused)?, bits(&apart)?);
        let (g1, g2) = (
            (fused.sqr()?.sum_all()?).backward()?,
            (apart.sqr()?.sum_all()?).backward()?,
        );
        for v in [&x, &w, &b] {
            let (a, c) = (
                g1.get(v.as_tensor()).unwrap(),
                g2.get(v.as_tensor()).unwrap(),
            );
            assert_eq!(bits(a)?, bits(c)?);
        }
        Ok(())
    }
}
