//! Tensor operations whose candle versions lack a usable backward on the CPU.
//!
//! candle's max-pool backward only works when the kernel equals the stride (AlexNet, ResNet and
//! GoogLeNet pool 3 with stride 2) and the size is a multiple of it (otherwise its nearest
//! upsampling misplaces the gradient: 2/2 pooling of a 9-wide map), and, where it works, costs several full-size passes
//! (upsample, compare, multiply). [`max_pool2d`] computes the same forward values and, when
//! gradients are needed, a direct backward: each output's gradient goes to the first position of
//! the maximum in its window (PyTorch's choice), summed where windows overlap.

use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// `max(x, 0)` with PyTorch's gradient: candle's ReLU passes the gradient where the input is
/// exactly 0 (`x >= 0`), PyTorch's does not (`x > 0`). Exact zeros are common in networks
/// with zero biases (torchvision's VGG initialisation: a zero neighbourhood convolves to 0),
/// and the difference reached 3.5e-3 of VGG-13's input gradient. Untracked tensors take
/// candle's `relu` unchanged.
///
/// ```
/// use candle_core::{Device, Var};
/// let x = Var::from_vec(vec![-1f32, 0.0, 2.0], 3, &Device::Cpu)?;
/// let y = neuroscope::models::ops::relu(x.as_tensor())?;
/// assert_eq!(y.to_vec1::<f32>()?, vec![0.0, 0.0, 2.0]);
/// let g = y.sum_all()?.backward()?;
/// assert_eq!(g.get(x.as_tensor()).unwrap().to_vec1::<f32>()?, vec![0.0, 0.0, 1.0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(x.relu()?);
    }
    let mask = x.gt(0f64)?.to_dtype(x.dtype())?.detach();
    Ok(x.mul(&mask)?)
}

/// `min(max(x, 0), 6)` (MobileNetV2) with PyTorch's gradient: 1 strictly inside (0, 6), 0 at
/// and beyond the ends (candle's clamp gives half at the ends).
///
/// ```
/// use candle_core::{Device, Var};
/// let x = Var::from_vec(vec![-1f32, 0.0, 3.0, 6.0, 7.0], 5, &Device::Cpu)?;
/// let y = neuroscope::models::ops::relu6(x.as_tensor())?;
/// assert_eq!(y.to_vec1::<f32>()?, vec![0.0, 0.0, 3.0, 6.0, 6.0]);
/// let g = y.sum_all()?.backward()?;
/// assert_eq!(g.get(x.as_tensor()).unwrap().to_vec1::<f32>()?, vec![0.0, 0.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(x.clamp(0f32, 6f32)?);
    }
    let inside = x.gt(0f64)?.mul(&x.lt(6f64)?)?.to_dtype(x.dtype())?.detach();
    let top = (x.ge(6f64)?.to_dtype(x.dtype())?.detach() * 6.0)?;
    Ok(x.mul(&inside)?.add(&top)?)
}

/// Max pooling with a square `kernel` and `stride` (no padding; pad with -inf first), floor
/// mode, as candle's `max_pool2d_with_stride`, with a backward for any kernel and stride.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// let x = Var::from_vec((0..25).map(|v| v as f32).collect::<Vec<_>>(), (1, 1, 5, 5), &Device::Cpu)?;
/// let y = neuroscope::models::ops::max_pool2d(x.as_tensor(), 3, 2)?;   // AlexNet's pool
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![12.0, 14.0, 22.0, 24.0]);
/// let g = y.sum_all()?.backward()?;
/// let gx = g.get(x.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
/// assert_eq!(gx.iter().sum::<f32>(), 4.0);                // one unit per output
/// assert_eq!((gx[12], gx[24]), (1.0, 1.0));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if !x.track_op() {
        Ok(x.max_pool2d_with_stride(kernel, stride)?)
    } else if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        Ok(x.apply_op1(MaxPool { kernel, stride })?)
    } else if kernel == stride && h % kernel == 0 && w % kernel == 0 {
        // candle's own backward (nearest upsampling of the gradient) is right only here.
        Ok(x.max_pool2d_with_stride(kernel, stride)?)
    } else {
        max_pool2d_composed(x, kernel, stride)
    }
}

/// Max pooling as a composition of operations that have a backward on every device (CUDA,
/// Metal, other dtypes): max is separable, so rows are pooled, then columns, each as the
/// element-wise maximum of `kernel` strided views. A strided view `x[s*o + d]` is a reshape of
/// the axis into `(groups, stride)` followed by narrows. Where several positions of a window
/// tie, candle's `maximum` splits the gradient between them (the CPU op gives it to the first).
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// let x = Var::randn(0f32, 1.0, (2, 3, 13, 11), &Device::Cpu)?;
/// let a = neuroscope::models::ops::max_pool2d_composed(x.as_tensor(), 3, 2)?;
/// let b = neuroscope::models::ops::max_pool2d(x.as_tensor(), 3, 2)?;
/// assert_eq!(a.dims(), &[2, 3, 6, 5]);
/// assert_eq!(a.flatten_all()?.to_vec1::<f32>()?, b.flatten_all()?.to_vec1::<f32>()?);
/// let ga = a.sum_all()?.backward()?.get(x.as_tensor()).unwrap().clone();
/// let gb = b.sum_all()?.backward()?.get(x.as_tensor()).unwrap().clone();
/// let d = (ga - gb)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert_eq!(d, 0.0);   // random values: no ties
/// # Ok::<(), neuroscope::Error>(())
/// ```
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
}

impl MaxPool {
    fn out(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h.saturating_sub(self.kernel)) / self.stride + 1,
            (w.saturating_sub(self.kernel)) / self.stride + 1,
        )
    }

    /// Index (within its plane) of the first maximum of each window.
    fn argmax(&self, plane: &[f32], h: usize, w: usize, oy: usize, ox: usize) -> usize {
        let (k, s) = (self.kernel, self.stride);
        let mut best = (oy * s) * w + ox * s;
        let mut bv = f32::NEG_INFINITY;
        for dy in 0..k {
            let y = oy * s + dy;
            if y >= h {
                break;
            }
            for dx in 0..k {
                let x = ox * s + dx;
                if x >= w {
                    break;
                }
                let v = plane[y * w + x];
                if v > bv || v.is_nan() {
                    bv = v;
                    best = y * w + x;
                    if v.is_nan() {
                        return best;
                    }
                }
            }
        }
        best
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
        let data = match storage {
            CpuStorage::F32(v) => v,
            _ => candle_core::bail!("max_pool2d: only f32"),
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("max_pool2d: input must be contiguous");
        };
        let data = &data[start..end];
        let (oh, ow) = self.out(h, w);
        let mut out = vec![0f32; n * c * oh * ow];
        out.par_chunks_mut(oh * ow)
            .zip(data.par_chunks(h * w))
            .for_each(|(o, plane)| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        o[oy * ow + ox] = plane[self.argmax(plane, h, w, oy, ox)];
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (_, _, h, w) = arg.dims4()?;
        let (oh, ow) = self.out(h, w);
        // Read both tensors in place (no copies of the activation).
        let gx = with_cpu_f32(arg, |x| {
            with_cpu_f32(grad_res, |g| {
                let mut gx = vec![0f32; x.len()];
                gx.par_chunks_mut(h * w)
                    .zip(x.par_chunks(h * w))
                    .zip(g.par_chunks(oh * ow))
                    .for_each(|((gp, plane), go)| {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                gp[self.argmax(plane, h, w, oy, ox)] += go[oy * ow + ox];
                            }
                        }
                    });
                gx
            })
        })??;
        Ok(Some(Tensor::from_vec(gx, arg.shape(), arg.device())?))
    }
}

/// 2-D convolution (`x.conv2d(w, padding, stride, 1, groups)`), with a faster backward on the
/// CPU for one group: candle computes the input gradient with a direct transposed convolution
/// (4x the forward's time for seed 3's conv2) and always computes the kernel's gradient too;
/// here the input gradient is, for stride 1, the forward convolution of the padded gradient
/// with the flipped, transposed kernel (candle's im2col + gemm path) and, for larger strides,
/// one gemm and a col2im scatter ([`col2im_grad`]), and each gradient is computed only when its operand is tracked (feature visualisation
/// needs no weight gradients). The forward values are candle's own; the custom op costs a copy
/// of the input and of the output (a custom op sees storages, not tensors).
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// // (3, 2, 12) and (2, 4, 64) leave rows the stride never reaches (AlexNet's and ResNet's first convs).
/// for (pad, stride, size) in [(1, 1, 9), (1, 2, 9), (3, 2, 12), (0, 2, 10), (2, 4, 16), (1, 2, 8)] {
///     let x = Var::randn(0f32, 1.0, (2, 3, size, size), &Device::Cpu)?;
///     let k = match pad { 3 => 7, 2 => 11, _ => 3 };
///     let w = Var::randn(0f32, 1.0, (4, 3, k, k), &Device::Cpu)?;
///     let ours = neuroscope::models::ops::conv2d(x.as_tensor(), w.as_tensor(), pad, stride, 1)?;
///     let theirs = x.as_tensor().conv2d(w.as_tensor(), pad, stride, 1, 1)?;
///     let g1 = ours.sqr()?.sum_all()?.backward()?;
///     let g2 = theirs.sqr()?.sum_all()?.backward()?;
///     for v in [&x, &w] {
///         let (a, b) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
///         assert_eq!(a.dims(), b.dims());
///         let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
///         assert!(d < 1e-3, "pad {pad} stride {stride}: {d}");
///     }
/// }
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
    groups: usize,
) -> Result<Tensor> {
    let (_, _, k, k2) = w.dims4()?;
    let tracked = x.track_op() || w.track_op();
    if tracked
        && groups == 1
        && k == k2
        && padding < k
        && x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
    {
        Ok(x.apply_op2(w, Conv { padding, stride })?)
    } else {
        Ok(x.conv2d(w, padding, stride, 1, groups)?)
    }
}

struct Conv {
    padding: usize,
    stride: usize,
}

/// Runs `f` on the f32 values of a CPU tensor, in place when it is contiguous.
fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("expected a CPU tensor");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("expected a contiguous tensor");
    };
    Ok(f(&cpu.as_slice::<f32>()?[start..end]))
}

fn cpu_tensor(storage: &CpuStorage, layout: &Layout) -> candle_core::Result<Tensor> {
    let CpuStorage::F32(v) = storage else {
        candle_core::bail!("conv2d: only f32");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("conv2d: inputs must be contiguous");
    };
    Tensor::from_slice(&v[start..end], layout.shape(), &candle_core::Device::Cpu)
}

impl candle_core::CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "neuroscope-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_tensor(s1, l1)?;
        let w = cpu_tensor(s2, l2)?;
        let y = x.conv2d(&w, self.padding, self.stride, 1, 1)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1()?), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // Only what is needed: feature visualisation wants the input's gradient alone, training
        // the weights' (and the input's only below the first layer).
        let (need_x, need_w) = (x.track_op(), w.track_op());
        let (x, w, grad) = (x.detach(), w.detach(), grad.detach().contiguous()?);
        let (_, _, h, wd) = x.dims4()?;
        let k = w.dim(2)?;
        let (p, s) = (self.padding, self.stride);
        // dL/dw = conv(x^T, grad^T) with the stride as dilation, as candle does.
        let gw = if need_w {
            let gw = x
                .transpose(0, 1)?
                .contiguous()?
                .conv2d(&grad.transpose(0, 1)?.contiguous()?, p, 1, s, 1)?
                .transpose(0, 1)?;
            Some(gw.narrow(2, 0, k)?.narrow(3, 0, k)?.contiguous()?)
        } else {
            None
        };
        if !need_x {
            return Ok((None, gw));
        }
        if s > 1 {
            return Ok((Some(col2im_grad(&grad, &w, (h, wd), p, s)?), gw));
        }
        // Stride 1: dL/dx = conv(grad, flip(w)^T) with padding k - 1 - p, a "full"
        // convolution on candle's im2col + gemm path, exactly H x W.
        let rev = Tensor::from_vec((0..k as u32).rev().collect::<Vec<u32>>(), k, w.device())?;
        let wf = w
            .index_select(&rev, 2)?
            .index_select(&rev, 3)?
            .transpose(0, 1)?
            .contiguous()?;
        let gx = grad.conv2d(&wf, k - 1 - p, 1, 1, 1)?;
        debug_assert_eq!((gx.dim(2)?, gx.dim(3)?), (h, wd));
        Ok((Some(gx), gw))
    }
}

/// The input gradient of a strided convolution as PyTorch's CPU backward computes it: the
/// columns `W^T g` (one gemm, `C_in k k x OH OW` per image) scattered back onto the input
/// (col2im). The stride-1 route (a full convolution of the gradient) would first have to
/// dilate the gradient with `s - 1` zeros between values: for AlexNet's first layer (11 x 11, stride
/// 4) that is 16x the work and a 1.5 GB im2col buffer at 224 px, which made a feature
/// visualisation step 30x slower than PyTorch's. Images are processed in chunks that keep
/// the columns under about 64 M values.
fn col2im_grad(
    grad: &Tensor,
    w: &Tensor,
    (h, wd): (usize, usize),
    p: usize,
    s: usize,
) -> candle_core::Result<Tensor> {
    let (n, cout, oh, ow) = grad.dims4()?;
    let (_, cin, k, _) = w.dims4()?;
    let (kk, l) = (cin * k * k, oh * ow);
    let wt = w.reshape((cout, kk))?.t()?.contiguous()?; // (kk, cout)
    let chunk = (64_000_000 / (kk * l).max(1)).clamp(1, n);
    let mut out = vec![0f32; n * cin * h * wd];
    for start in (0..n).step_by(chunk) {
        let m = chunk.min(n - start);
        let g = grad.narrow(0, start, m)?.reshape((m, cout, l))?;
        let cols = wt.broadcast_matmul(&g)?.contiguous()?; // (m, kk, l)
        let part = &mut out[start * cin * h * wd..(start + m) * cin * h * wd];
        with_cpu_f32(&cols, |c| {
            part.par_chunks_mut(h * wd)
                .enumerate()
                .for_each(|(plane_index, plane)| {
                    let (b, ci) = (plane_index / cin, plane_index % cin);
                    for ky in 0..k {
                        for kx in 0..k {
                            let row = &c[(b * kk + (ci * k + ky) * k + kx) * l..][..l];
                            for oy in 0..oh {
                                let iy = (oy * s + ky) as isize - p as isize;
                                if iy < 0 || iy >= h as isize {
                                    continue;
                                }
                                let dst = &mut plane[iy as usize * wd..][..wd];
                                let src = &row[oy * ow..][..ow];
                                for (ox, v) in src.iter().enumerate() {
                                    let ix = (ox * s + kx) as isize - p as isize;
                                    if ix >= 0 && ix < wd as isize {
                                        dst[ix as usize] += v;
                                    }
                                }
                            }
                        }
                    }
                });
        })?;
    }
    Tensor::from_vec(out, (n, cin, h, wd), grad.device())
}
