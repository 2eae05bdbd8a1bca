//! Tensor operations whose candle versions lack a usable backward on the CPU.
//!
//! candle's max-pool backward only works when the kernel equals the stride (AlexNet, ResNet and
//! GoogLeNet pool 3 with stride 2) and, where it works, costs several full-size passes
//! (upsample, compare, multiply). [`max_pool2d`] computes the same forward values and, when
//! gradients are needed, a direct backward: each output's gradient goes to the first position of
//! the maximum in its window (PyTorch's choice), summed where windows overlap.

use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

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
    if x.track_op() && x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        Ok(x.apply_op1(MaxPool { kernel, stride })?)
    } else {
        Ok(x.max_pool2d_with_stride(kernel, stride)?)
    }
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
/// CPU for stride 1 and one group: candle computes the input gradient with a direct transposed
/// convolution (4x the forward's time for seed 3's conv2); here it is the forward convolution
/// of the padded gradient with the flipped, transposed kernel, which runs on candle's
/// im2col + gemm path. The forward values are candle's own; the custom op costs a copy of
/// the input and of the output (a custom op sees storages, not tensors), small beside the
/// 4x it saves in the backward.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// let x = Var::randn(0f32, 1.0, (2, 3, 9, 9), &Device::Cpu)?;
/// let w = Var::randn(0f32, 1.0, (4, 3, 3, 3), &Device::Cpu)?;
/// let ours = neuroscope::models::ops::conv2d(x.as_tensor(), w.as_tensor(), 1, 1, 1)?;
/// let theirs = x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1)?;
/// let g1 = ours.sqr()?.sum_all()?.backward()?;
/// let g2 = theirs.sqr()?.sum_all()?.backward()?;
/// for v in [&x, &w] {
///     let d = (g1.get(v.as_tensor()).unwrap() - g2.get(v.as_tensor()).unwrap())?.abs()?.max_all()?;
///     assert!(d.to_scalar::<f32>()? < 1e-3);
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
        && stride == 1
        && groups == 1
        && k == k2
        && padding < k
        && x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
    {
        Ok(x.apply_op2(w, Conv { padding })?)
    } else {
        Ok(x.conv2d(w, padding, stride, 1, groups)?)
    }
}

struct Conv {
    padding: usize,
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
        let y = x.conv2d(&w, self.padding, 1, 1, 1)?;
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
        let need_x = x.track_op();
        let (x, w, grad) = (x.detach(), w.detach(), grad.detach().contiguous()?);
        let k = w.dim(2)?;
        let p = self.padding;
        // dL/dw = conv(x^T, grad^T) with the same padding, as candle does.
        let gw = x
            .transpose(0, 1)?
            .contiguous()?
            .conv2d(&grad.transpose(0, 1)?.contiguous()?, p, 1, 1, 1)?
            .transpose(0, 1)?
            .contiguous()?;
        // dL/dx = conv(grad, flip(w)^T) with padding k - 1 - p ("full" convolution).
        if !need_x {
            return Ok((None, Some(gw)));
        }
        let rev = Tensor::from_vec((0..k as u32).rev().collect::<Vec<u32>>(), k, w.device())?;
        let wf = w
            .index_select(&rev, 2)?
            .index_select(&rev, 3)?
            .transpose(0, 1)?
            .contiguous()?;
        let gx = grad.conv2d(&wf, k - 1 - p, 1, 1, 1)?;
        Ok((Some(gx), Some(gw)))
    }
}
