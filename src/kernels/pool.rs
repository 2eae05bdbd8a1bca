//! Max pooling with a backward for any kernel and stride.
//!
//! candle's max-pool backward only works when the kernel equals the stride (AlexNet, ResNet and
//! GoogLeNet pool 3 with stride 2) and the size is a multiple of it (otherwise its nearest
//! upsampling misplaces the gradient: 2/2 pooling of a 9-wide map), and, where it works, costs
//! several full-size passes (upsample, compare, multiply). [`max_pool2d`] computes the same
//! forward values and, when gradients are needed, a direct backward: each output's gradient
//! goes to the first position of the maximum in its window (PyTorch's choice), found by the
//! forward pass and kept, summed where windows overlap.

use super::cpu::{cpu_slice, with_cpu_f32, CHUNK};
use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Max pooling with a square `kernel` and `stride` (no padding; pad with -inf first), floor
/// mode, as candle's `max_pool2d_with_stride`, with a backward for any kernel and stride.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if !x.track_op() {
        if x.device().is_cpu()
            && x.dtype() == candle_core::DType::F32
            && h >= kernel
            && w >= kernel
            && kernel > 0
            && stride > 0
        {
            return forward_like_candle(x, kernel, stride);
        }
        Ok(x.max_pool2d_with_stride(kernel, stride)?)
    } else if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        Ok(x.apply_op1(MaxPool::new(kernel, stride))?)
    } else if kernel == stride && h % kernel == 0 && w % kernel == 0 {
        // candle's own backward (nearest upsampling of the gradient) is right only here.
        Ok(x.max_pool2d_with_stride(kernel, stride)?)
    } else {
        max_pool2d_composed(x, kernel, stride)
    }
}

/// candle's CPU max pool (no gradient), its values exactly, with the planes spread over rayon's
/// threads: candle's loop runs on one thread (3 % of an AlexNet recording, the other core
/// idle). Each window starts from its first element and takes a later one only when it is
/// larger (`largest < v`), in row-major order, as candle does: the same element wins (which
/// zero of +-0, a NaN only in the first position).
fn forward_like_candle(x: &Tensor, k: usize, s: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    forward_padded(x, k, s, (0, 0), ((h - k) / s + 1, (w - k) / s + 1))
}

/// Max pooling of the first `oh x ow` windows of `x` padded with -inf by `top` rows
/// and `left` columns (and as many on the other sides as the windows reach), without a
/// gradient: `forward_like_candle` of the padded tensor, with no padded copy made. A padded
/// cell is -inf, which never passes `largest < v`, so skipping it changes nothing except as a
/// window's first element, which starts the window at -inf as the padded tensor does.
///
/// Why: padding by concatenation copied every pooled activation twice (ResNet's stem pool:
/// 51 MB at batch 16), 1 % of an occlusion on ResNet-50.
pub(crate) fn max_pool2d_padded(
    x: &Tensor,
    k: usize,
    s: usize,
    (top, left): (usize, usize),
    (oh, ow): (usize, usize),
) -> Result<Option<Tensor>> {
    if x.track_op()
        || !x.device().is_cpu()
        || x.dtype() != candle_core::DType::F32
        || s == 0
        || k == 0
    {
        return Ok(None);
    }
    forward_padded(x, k, s, (top, left), (oh, ow)).map(Some)
}

fn forward_padded(
    x: &Tensor,
    k: usize,
    s: usize,
    (top, left): (usize, usize),
    (oh, ow): (usize, usize),
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    // the window's input rows (columns) inside the image, from its offset in the padded input
    // (empty for a window wholly in the padding), and whether its first one is
    let inside = |o: usize, pad: usize, len: usize| {
        let start = o * s;
        let end = (start + k).min(pad + len).saturating_sub(pad);
        let first = start.max(pad) - pad;
        (first.min(end)..end, start >= pad && start < pad + len)
    };
    let per = (CHUNK / (h * w).max(1)).max(1);
    let out = with_cpu_f32(x, |src| {
        // SAFETY: each chunk is `per` whole output planes (the last one fewer), and every
        // element of each is written below.
        unsafe {
            super::cpu::par_uninit(n * c * oh * ow, per * oh * ow, |t, dst| {
                for (j, o) in dst.chunks_mut(oh * ow).enumerate() {
                    let plane = &src[(t * per + j) * h * w..][..h * w];
                    for oy in 0..oh {
                        let (rows, first_row) = inside(oy, top, h);
                        // the windows wholly inside the image's columns, 16 at a time in
                        // vector registers where the CPU has AVX-512 (the same comparisons)
                        let (vlo, vhi) = if first_row && !rows.is_empty() {
                            interior(ow, left, w, k, s)
                        } else {
                            (0, 0)
                        };
                        let vectors = vhi > vlo && (s == 1 || s == 2) && vector();
                        #[cfg(target_arch = "x86_64")]
                        if vectors {
                            let out = &mut o[oy * ow + vlo..oy * ow + vhi];
                            let col0 = vlo * s - left;
                            // SAFETY (inside the enclosing `unsafe` block): `vector` found
                            // AVX-512F; the windows of outputs vlo..vhi read rows `rows` and
                            // columns col0 .. col0 + (vhi - vlo - 1) s + k <= w of the plane
                            // (`interior`).
                            pool_row_avx512(plane, w, rows.clone(), col0, k, s, out);
                        }
                        // the rest one window at a time
                        let done = if vectors { vlo..vhi } else { 0..0 };
                        for ox in (0..ow).filter(|ox| !done.contains(ox)) {
                            let (cols, first_col) = inside(ox, left, w);
                            let mut largest = if first_row && first_col {
                                plane[rows.start * w + cols.start]
                            } else {
                                f32::NEG_INFINITY
                            };
                            for iy in rows.clone() {
                                for &v in &plane[iy * w..][cols.clone()] {
                                    if largest < v {
                                        largest = v;
                                    }
                                }
                            }
                            o[oy * ow + ox].write(largest);
                        }
                    }
                }
            })
        }
    })?;
    Ok(Tensor::from_vec(out, (n, c, oh, ow), x.device())?)
}

/// Whether the AVX-512 row kernel runs ([`pool_row_avx512`]).
fn vector() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::gemm512::enabled()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The outputs `lo..hi` of a row of `ow` whose `k`-wide windows (stride `s`, `left` padded
/// columns) lie wholly inside the `w` columns of the image.
fn interior(ow: usize, left: usize, w: usize, k: usize, s: usize) -> (usize, usize) {
    if left + w < k {
        return (0, 0);
    }
    let lo = left.div_ceil(s);
    let hi = ((left + w - k) / s + 1).min(ow);
    (lo.min(hi), hi)
}

/// A mask of the first `n` of 16 lanes (all of them from 16 on).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_lanes(n: usize) -> std::arch::x86_64::__mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as u16
    }
}

/// The values at columns `ix`, `ix + s`, .. of `row` (stride `s` of 1 or 2) that lie among the
/// `need` from `ix` (at most 16 windows' worth), one per lane from the first; the lanes past
/// them are zero.
///
/// # Safety
/// AVX-512F; `ix + need <= row.len()`, `need <= 16 s`. Masked-off lanes read nothing.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load_every(row: &[f32], ix: usize, need: usize, s: usize) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let p = row.as_ptr();
    // SAFETY: columns ix .. ix + need lie in `row` (the contract); the loads' masks stop there.
    unsafe {
        let lo = _mm512_maskz_loadu_ps(first_lanes(need), p.add(ix));
        if s == 1 {
            return lo;
        }
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let hi = _mm512_maskz_loadu_ps(
            first_lanes(need.saturating_sub(16)),
            p.add(ix).wrapping_add(16),
        );
        _mm512_permutex2var_ps(lo, even, hi)
    }
}

/// One output row's windows wholly inside the image, 16 outputs per step: for each window
/// position in row-major order, the inputs of 16 windows side by side (stride 1: one load;
/// stride 2: the even lanes of two), each lane taking the new value only when `largest < v`
/// (an ordered comparison: false for a NaN on either side), the scalar loop's rule, so every
/// lane ends with the scalar loop's value bit for bit. The last step masks its loads and
/// stores to the outputs left.
///
/// # Safety
/// AVX-512F; rows `rows` of `plane` (`w` wide) exist, `out.len()` windows starting at column
/// `col0` (stride `s` of 1 or 2) end inside the row: `col0 + (out.len() - 1) s + k <= w`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pool_row_avx512(
    plane: &[f32],
    w: usize,
    rows: std::ops::Range<usize>,
    col0: usize,
    k: usize,
    s: usize,
    out: &mut [std::mem::MaybeUninit<f32>],
) {
    use std::arch::x86_64::*;
    for g in (0..out.len()).step_by(16) {
        let cnt = (out.len() - g).min(16);
        // the input values one window position of the group reads: `(cnt - 1) s + 1` of them
        let need = (cnt - 1) * s + 1;
        // SAFETY: columns ix .. ix + need of row iy exist: ix + need <= col0 + (g + cnt - 1) s
        // + k <= w (the contract).
        let load = |iy: usize, ix: usize| unsafe { load_every(&plane[iy * w..][..w], ix, need, s) };
        let c = col0 + g * s;
        let mut largest = load(rows.start, c);
        let mut first = true;
        for iy in rows.clone() {
            for dx in 0..k {
                if first {
                    first = false;
                    continue;
                }
                let v = load(iy, c + dx);
                let take = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(largest, v);
                largest = _mm512_mask_blend_ps(take, largest, v);
            }
        }
        // SAFETY: outputs g .. g + cnt lie in `out` (`MaybeUninit<f32>` has f32's layout).
        unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(g).cast(), first_lanes(cnt), largest) };
    }
}

/// Windows of `k x k` with stride 2 (2 x 2: the MNIST, CIFAR and VGG networks' pools; 3 x 3:
/// AlexNet's and ResNet's stem) for one output row `oy`, 16 outputs per step,
/// with the index of each window's winner for the backward ([`MaxPool::argmax`]'s rule and
/// order: the first maximum in row-major order, a NaN taking the place of any number): for each
/// window position in row-major order, the even lanes of the inputs it reads for 16 windows
/// side by side, compared with the best so far. The same values and indices as the scalar
/// loop, which ran one window at a time (7 % of training the MNIST CNN).
///
/// # Safety
/// AVX-512F; rows `2 oy .. 2 oy + k` of `plane` (`w` wide) exist, `2 (out.len() - 1) + k <= w`,
/// and `idx` is as long as `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn argmax_row_s2_avx512(
    plane: &[f32],
    w: usize,
    k: usize,
    oy: usize,
    out: &mut [f32],
    idx: &mut [u32],
) {
    use std::arch::x86_64::*;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let n = out.len().min(idx.len());
    for g in (0..n).step_by(16) {
        let cnt = (n - g).min(16);
        // the inputs one window position reads for the group: every other one of `need`
        let need = 2 * (cnt - 1) + 1;
        // SAFETY: columns ix .. ix + need of row iy exist: ix + need <= 2 g + k - 1 + 2 (cnt -
        // 1) + 1 <= 2 (out.len() - 1) + k <= w (the contract).
        let load = |iy: usize, ix: usize| unsafe { load_every(&plane[iy * w..][..w], ix, need, 2) };
        // each lane's window starts at 2 oy w + 2 (g + lane); indices are u32 bit patterns
        let first = _mm512_add_epi32(_mm512_set1_epi32((2 * oy * w + 2 * g) as i32), even);
        let (mut best, mut at) = (load(2 * oy, 2 * g), first);
        for dy in 0..k {
            for dx in 0..k {
                if dy == 0 && dx == 0 {
                    continue;
                }
                let v = load(2 * oy + dy, 2 * g + dx);
                // `v > best`, or `v` a NaN where `best` is not
                let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                    | (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v)
                        & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(best, best));
                best = _mm512_mask_blend_ps(take, best, v);
                let vi = _mm512_add_epi32(first, _mm512_set1_epi32((dy * w + dx) as i32));
                at = _mm512_mask_blend_epi32(take, at, vi);
            }
        }
        // SAFETY: outputs g .. g + cnt lie in `out` and `idx` (the loop's bound).
        unsafe {
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(g), first_lanes(cnt), best);
            _mm512_mask_storeu_epi32(idx.as_mut_ptr().add(g).cast(), first_lanes(cnt), at);
        }
    }
}

/// Max pooling as a composition of operations that have a backward on every device (CUDA,
/// Metal, other dtypes): max is separable, so rows are pooled, then columns, each as the
/// element-wise maximum of `kernel` strided views. A strided view `x[s*o + d]` is a reshape of
/// the axis into `(groups, stride)` followed by narrows. Where several positions of a window
/// tie, candle's `maximum` splits the gradient between them (the CPU op gives it to the first).
pub fn max_pool2d_composed(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let rows = pool_axis(x, 2, kernel, stride)?;
    pool_axis(&rows, 3, kernel, stride)
}

/// Max over windows of `kernel` with `stride` along one axis (floor mode).
fn pool_axis(x: &Tensor, axis: usize, k: usize, s: usize) -> Result<Tensor> {
    let len = x.dim(axis)?;
    if k == 0 || s == 0 {
        return Err(crate::Error::InvalidArgument(format!(
            "max_pool2d: kernel ({k}) and stride ({s}) must be at least 1"
        )));
    }
    if len < k {
        return Err(crate::Error::InvalidArgument(format!(
            "max_pool2d: size {len} is smaller than the kernel {k}"
        )));
    }
    let n = (len - k) / s + 1;
    // Groups of `s` consecutive positions; window o, offset d reads group o + d / s, slot d % s.
    let groups = n + (k - 1) / s;
    let need = groups * s;
    let x = if need <= len {
        x.narrow(axis, 0, need)?
    } else {
        let mut dims = x.dims().to_vec();
        dims[axis] = need - len;
        let fill = Tensor::full(f32::NEG_INFINITY, dims, x.device())?.to_dtype(x.dtype())?;
        Tensor::cat(&[x, &fill], axis)?
    };
    let mut dims = x.dims().to_vec();
    dims[axis] = groups;
    dims.insert(axis + 1, s);
    let x = x.reshape(dims)?;
    let mut out: Option<Tensor> = None;
    for d in 0..k {
        let view = x
            .narrow(axis, d / s, n)?
            .narrow(axis + 1, d % s, 1)?
            .squeeze(axis + 1)?;
        out = Some(match out {
            Some(o) => o.maximum(&view)?,
            None => view,
        });
    }
    out.ok_or_else(|| crate::Error::InvalidArgument("max_pool2d: kernel 0".into()))
}

struct MaxPool {
    kernel: usize,
    stride: usize,
    /// The position of each output's maximum within its plane, written by the forward pass
    /// and read by the backward (PyTorch's `max_pool2d_with_indices`): the backward then only
    /// scatters, instead of searching every window again.
    indices: std::sync::OnceLock<Vec<u32>>,
}

impl MaxPool {
    fn new(kernel: usize, stride: usize) -> Self {
        MaxPool {
            kernel,
            stride,
            indices: std::sync::OnceLock::new(),
        }
    }

    fn out(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h.saturating_sub(self.kernel)) / self.stride + 1,
            (w.saturating_sub(self.kernel)) / self.stride + 1,
        )
    }

    /// Index (within its plane) and value of the first maximum of each window (the first NaN
    /// if there is one). Selects instead of branches: which position wins is unpredictable.
    /// Floor mode keeps every window inside the plane. `K` is the kernel size known at compile
    /// time (2 and 3, the pools of every model here), so that the window loops unroll; 0 reads
    /// it from `self`.
    #[inline(always)]
    fn argmax<const K: usize>(
        &self,
        plane: &[f32],
        w: usize,
        oy: usize,
        ox: usize,
    ) -> (usize, f32) {
        let (k, s) = (if K > 0 { K } else { self.kernel }, self.stride);
        let (y0, x0) = (oy * s, ox * s);
        let mut best = y0 * w + x0;
        let mut bv = f32::NEG_INFINITY;
        for y in y0..y0 + k {
            let row = &plane[y * w + x0..][..k];
            for (dx, &v) in row.iter().enumerate() {
                let take = v > bv || (v.is_nan() && !bv.is_nan());
                best = if take { y * w + x0 + dx } else { best };
                bv = if take { v } else { bv };
            }
        }
        (best, bv)
    }

    /// Maximum and its index for every window of `planes` (whole `h x w` planes), into `out`
    /// and `idx` (whole `oh x ow` planes): 2 x 2 and 3 x 3 windows with stride 2 sixteen at a
    /// time in AVX-512 registers where the CPU has them ([`argmax_row_s2_avx512`], the same
    /// values and indices), any other window one at a time.
    fn pool_planes<const K: usize>(
        &self,
        (h, w): (usize, usize),
        planes: &[f32],
        out: &mut [f32],
        idx: &mut [u32],
    ) {
        let (oh, ow) = self.out(h, w);
        #[cfg(target_arch = "x86_64")]
        let (k, vectors) = {
            let k = if K > 0 { K } else { self.kernel };
            (k, self.stride == 2 && (k == 2 || k == 3) && vector())
        };
        for ((o, ix), plane) in out
            .chunks_mut(oh * ow)
            .zip(idx.chunks_mut(oh * ow))
            .zip(planes.chunks(h * w))
        {
            for oy in 0..oh {
                let (o, ix) = (&mut o[oy * ow..][..ow], &mut ix[oy * ow..][..ow]);
                #[cfg(target_arch = "x86_64")]
                if vectors {
                    // SAFETY: `vector` found AVX-512F; rows 2 oy .. 2 oy + k <= h of the plane
                    // exist and 2 (ow - 1) + k <= w (floor mode); `o` and `ix` hold the row's
                    // `ow` outputs.
                    unsafe { argmax_row_s2_avx512(plane, w, k, oy, o, ix) };
                    continue;
                }
                for (ox, (o, ix)) in o.iter_mut().zip(ix.iter_mut()).enumerate() {
                    let (i, v) = self.argmax::<K>(plane, w, oy, ox);
                    *o = v;
                    *ix = i as u32;
                }
            }
        }
    }

    /// Planes per rayon task: about [`CHUNK`] input values, so that small maps (8 x 8 planes of
    /// a 64-image batch) do not pay the scheduling cost plane by plane.
    fn planes_per_task(h: usize, w: usize) -> usize {
        (CHUNK / (h * w).max(1)).max(1)
    }

    /// The input's gradient for `planes` planes of `h x w`: output `o` of plane `p` sends its
    /// gradient to position `argmax(p, o)` of that plane, summed where windows overlap.
    fn scatter(
        &self,
        (planes, h, w): (usize, usize, usize),
        g: &[f32],
        argmax: impl Fn(usize, usize) -> usize + Sync,
    ) -> Vec<f32> {
        let (oh, ow) = self.out(h, w);
        let (plane_in, plane_out) = (h * w, oh * ow);
        let per = Self::planes_per_task(h, w);
        let mut gx = vec![0f32; planes * plane_in];
        gx.par_chunks_mut(per * plane_in)
            .enumerate()
            .for_each(|(t, gp)| {
                for (j, gp) in gp.chunks_mut(plane_in).enumerate() {
                    let p = t * per + j;
                    for (o, &go) in g[p * plane_out..][..plane_out].iter().enumerate() {
                        gp[argmax(p, o)] += go;
                    }
                }
            });
        gx
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "neuroscope-max-pool2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        if h < self.kernel || w < self.kernel {
            candle_core::bail!(
                "max_pool2d: input {h}x{w} smaller than kernel {}",
                self.kernel
            );
        }
        if h * w > u32::MAX as usize {
            candle_core::bail!("max_pool2d: a {h}x{w} plane is too large");
        }
        let data = cpu_slice(storage, layout, "max_pool2d")?;
        let (oh, ow) = self.out(h, w);
        let (plane_in, plane_out) = (h * w, oh * ow);
        let per = Self::planes_per_task(h, w);
        let mut out = vec![0f32; n * c * plane_out];
        let mut idx = vec![0u32; n * c * plane_out];
        out.par_chunks_mut(per * plane_out)
            .zip(idx.par_chunks_mut(per * plane_out))
            .zip(data.par_chunks(per * plane_in))
            .for_each(|((o, ix), planes)| match self.kernel {
                2 => self.pool_planes::<2>((h, w), planes, o, ix),
                3 => self.pool_planes::<3>((h, w), planes, o, ix),
                _ => self.pool_planes::<0>((h, w), planes, o, ix),
            });
        // Kept for the backward; a second forward through the same op (none in candle) would
        // find the cell full and the backward would search the windows again.
        let _ = self.indices.set(idx);
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let (oh, ow) = self.out(h, w);
        let (plane_in, plane_out) = (h * w, oh * ow);
        let gx = match self.indices.get() {
            Some(idx) if idx.len() == n * c * plane_out => with_cpu_f32(grad_res, |g| {
                self.scatter((n * c, h, w), g, |p, o| idx[p * plane_out + o] as usize)
            })?,
            // No indices kept: search the windows again, reading both tensors in place.
            _ => with_cpu_f32(arg, |x| {
                with_cpu_f32(grad_res, |g| {
                    self.scatter((n * c, h, w), g, |p, o| {
                        self.argmax::<0>(&x[p * plane_in..][..plane_in], w, o / ow, o % ow)
                            .0
                    })
                })
            })??,
        };
        Ok(Some(Tensor::from_vec(gx, arg.shape(), arg.device())?))
    }
}

#[cfg(test)]
mod doc_examples {
    //! The examples of the functions above (crate-private, so rustdoc does not run them).

    #[test]
    fn max_pool2d() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let x = Var::from_vec(
            (0..25).map(|v| v as f32).collect::<Vec<_>>(),
            (1, 1, 5, 5),
            &Device::Cpu,
        )?;
        let y = super::max_pool2d(x.as_tensor(), 3, 2)?; // AlexNet's pool
        assert_eq!(
            y.flatten_all()?.to_vec1::<f32>()?,
            vec![12.0, 14.0, 22.0, 24.0]
        );
        let g = y.sum_all()?.backward()?;
        let gx = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(gx.iter().sum::<f32>(), 4.0); // one unit per output
        assert_eq!((gx[12], gx[24]), (1.0, 1.0));
        Ok(())
    }

    #[test]
    fn max_pool2d_composed() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let x = Var::randn(0f32, 1.0, (2, 3, 13, 11), &Device::Cpu)?;
        let a = super::max_pool2d_composed(x.as_tensor(), 3, 2)?;
        let b = super::max_pool2d(x.as_tensor(), 3, 2)?;
        assert_eq!(a.dims(), &[2, 3, 6, 5]);
        assert_eq!(
            a.flatten_all()?.to_vec1::<f32>()?,
            b.flatten_all()?.to_vec1::<f32>()?
        );
        let ga = a.sum_all()?.backward()?.get(x.as_tensor()).unwrap().clone();
        let gb = b.sum_all()?.backward()?.get(x.as_tensor()).unwrap().clone();
        let d = (ga - gb)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(d, 0.0); // random values: no ties
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Gradients to the input through max pools checked against finite differences.

    use candle_core::{Device, Tensor, Var};

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Distinct values 0.1 apart in a random order: a perturbation of 0.01 never changes which
    /// element of a window is the maximum, so max pooling is exactly linear around them.
    fn spaced(shape: (usize, usize, usize, usize), seed: u64) -> Vec<f32> {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let mut v: Vec<f32> = (0..n).map(|i| i as f32 * 0.1).collect();
        crate::rng::Rng::new(seed).shuffle(&mut v);
        v
    }

    /// The untracked CPU forward gives candle's values bit for bit: ties of +0 and -0 (the
    /// first wins), NaN first in a window (kept) or later (ignored), infinities, several kernels
    /// and strides and planes spread over tasks.
    /// Random values in (-2, 2) with zeros of both signs, NaNs and -inf among them: what
    /// decides which element of a window wins.
    fn with_specials(
        shape: (usize, usize, usize, usize),
        r: &mut crate::rng::Rng,
    ) -> candle_core::Result<Tensor> {
        let len = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..len)
            .map(|i| match i % 11 {
                0 => 0.0,
                1 => -0.0,
                2 if i % 3 == 0 => f32::NAN,
                3 if i % 5 == 0 => f32::NEG_INFINITY,
                _ => (r.uniform() * 4.0 - 2.0) as f32,
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu)
    }

    #[test]
    fn untracked_forward_is_candles() -> crate::Result<()> {
        let mut r = crate::rng::Rng::new(4);
        for &(shape, k, s) in &[
            ((2, 3, 13, 11), 3, 2),
            ((1, 5, 8, 8), 2, 2),
            ((3, 2, 9, 10), 3, 1),
            ((64, 4, 27, 27), 3, 2),
            ((1, 1, 5, 5), 5, 3),
            // rows of several 16-output vector steps (AlexNet's first pool: 55 -> 27)
            ((1, 3, 9, 55), 3, 2),
            ((1, 2, 4, 40), 3, 1),
        ] {
            let x = with_specials(shape, &mut r)?;
            let ours = super::max_pool2d(&x, k, s)?;
            let theirs = x.max_pool2d_with_stride(k, s)?;
            assert_eq!(ours.dims(), theirs.dims());
            let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ours), bits(&theirs), "{shape:?} k {k} s {s}");
        }
        Ok(())
    }

    /// The forward's windows (2 x 2 and 3 x 3 with stride 2 in AVX-512 rows where the CPU has
    /// them) give the scalar search's values and winner indices bit for bit, window by window:
    /// NaNs first or later in a window, -inf, zeros of both signs, odd sizes (a last row and
    /// column no window reads), rows of several 16-output steps, and a stride the rows do not
    /// take.
    #[test]
    fn planes_are_the_scalar_window_search() -> crate::Result<()> {
        let mut r = crate::rng::Rng::new(6);
        for (shape, k, s) in [
            ((2, 3, 24, 24), 2, 2),
            ((1, 2, 9, 37), 2, 2),
            ((1, 1, 2, 2), 2, 2),
            ((1, 2, 5, 65), 2, 2),
            ((2, 3, 13, 13), 3, 2),
            ((1, 2, 9, 66), 3, 2),
            ((1, 1, 3, 3), 3, 2),
            ((1, 2, 7, 35), 3, 2),
            ((1, 2, 9, 20), 3, 1),
        ] {
            let x = with_specials(shape, &mut r)?;
            let v = values(&x);
            let (_, _, h, w) = shape;
            let pool = super::MaxPool::new(k, s);
            let (oh, ow) = pool.out(h, w);
            for plane in v.chunks(h * w) {
                let (mut o, mut ix) = (vec![0f32; oh * ow], vec![0u32; oh * ow]);
                pool.pool_planes::<0>((h, w), plane, &mut o, &mut ix);
                for (j, (&o, &ix)) in o.iter().zip(&ix).enumerate() {
                    let (i, best) = pool.argmax::<0>(plane, w, j / ow, j % ow);
                    let at = format!("{shape:?} k {k} s {s} output {j}");
                    assert_eq!(o.to_bits(), best.to_bits(), "{at}");
                    assert_eq!(ix as usize, i, "{at}");
                }
            }
        }
        Ok(())
    }

    /// Padding inside the kernel gives candle's pool of the -inf-padded tensor bit for bit
    /// (the copy the layer made before), NaNs, -inf, signed zeros and windows that start or
    /// lie wholly in the padding included.
    #[test]
    fn padded_forward_is_candles_of_the_padded_tensor() -> crate::Result<()> {
        let mut r = crate::rng::Rng::new(5);
        // (shape, kernel, stride, padding, extra rows/columns at the bottom/right)
        for &(shape, k, s, p, extra) in &[
            ((2, 3, 13, 11), 3, 2, 1, 0),
            ((1, 2, 8, 8), 3, 2, 1, 1),
            ((3, 2, 9, 10), 3, 1, 1, 0),
            ((2, 4, 14, 14), 2, 2, 1, 0),
            ((1, 1, 5, 5), 5, 3, 2, 2),
            ((1, 2, 7, 6), 4, 3, 0, 2),
            // ResNet's stem pool and GoogLeNet's inception pools on rows of several vector steps
            ((1, 2, 9, 40), 3, 2, 1, 0),
            ((1, 2, 5, 37), 3, 1, 1, 0),
            ((1, 2, 9, 41), 3, 2, 0, 1),
        ] {
            let x = with_specials(shape, &mut r)?;
            let ninf = |dims: (usize, usize, usize, usize)| {
                Tensor::full(f32::NEG_INFINITY, dims, &Device::Cpu)
            };
            let (n, c, h, w) = shape;
            let xp = Tensor::cat(&[&ninf((n, c, p, w))?, &x, &ninf((n, c, p + extra, w))?], 2)?;
            let hp = h + 2 * p + extra;
            let xp = Tensor::cat(
                &[&ninf((n, c, hp, p))?, &xp, &ninf((n, c, hp, p + extra))?],
                3,
            )?;
            let theirs = xp.max_pool2d_with_stride(k, s)?;
            let (_, _, oh, ow) = theirs.dims4()?;
            let ours = super::max_pool2d_padded(&x, k, s, (p, p), (oh, ow))?
                .ok_or_else(|| crate::Error::InvalidArgument("not taken".into()))?;
            assert_eq!(ours.dims(), theirs.dims());
            let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ours), bits(&theirs), "{shape:?} k {k} s {s} p {p}");
        }
        Ok(())
    }

    #[test]
    fn pool_backward_matches_finite_differences() {
        let shape = (2, 3, 11, 9);
        let x0 = spaced(shape, 1);
        // A random weighting of the outputs, so each output's gradient differs.
        for (k, s) in [(3, 2), (3, 1), (2, 2), (5, 3)] {
            for composed in [false, true] {
                let pool = |x: &Tensor| {
                    if composed {
                        super::max_pool2d_composed(x, k, s).unwrap()
                    } else {
                        super::max_pool2d(x, k, s).unwrap()
                    }
                };
                let probe = pool(&Tensor::from_slice(&x0, shape, &Device::Cpu).unwrap());
                let mut rng = crate::rng::Rng::new(k as u64 * 10 + s as u64);
                let r: Vec<f32> = (0..probe.elem_count())
                    .map(|_| rng.normal() as f32)
                    .collect();
                let r = Tensor::from_vec(r, probe.shape(), &Device::Cpu).unwrap();
                let f = |x: &[f32]| -> f64 {
                    let t = Tensor::from_slice(x, shape, &Device::Cpu).unwrap();
                    // In f64: the pooled values are exact, the weighted sum must not round.
                    let y = pool(&t).to_dtype(candle_core::DType::F64).unwrap();
                    let r = r.to_dtype(candle_core::DType::F64).unwrap();
                    (y * &r)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap()
                };
                let xv = Var::from_slice(&x0, shape, &Device::Cpu).unwrap();
                let y = pool(xv.as_tensor());
                let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let g = values(g.get(xv.as_tensor()).unwrap());
                let eps = 0.01f32;
                for i in 0..x0.len() {
                    let (mut a, mut b) = (x0.clone(), x0.clone());
                    a[i] += eps;
                    b[i] -= eps;
                    let fd = (f(&a) - f(&b)) / (2.0 * eps as f64);
                    assert!(
                        (fd - g[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                        "k {k} s {s} composed {composed}: element {i}: finite difference {fd}, backward {}",
                        g[i]
                    );
                }
            }
        }
    }
}
