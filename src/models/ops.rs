//! Tensor operations whose candle versions lack a usable backward on the CPU.
//!
//! candle's max-pool backward only works when the kernel equals the stride (AlexNet, ResNet and
//! GoogLeNet pool 3 with stride 2) and the size is a multiple of it (otherwise its nearest
//! upsampling misplaces the gradient: 2/2 pooling of a 9-wide map), and, where it works, costs several full-size passes
//! (upsample, compare, multiply). [`max_pool2d`] computes the same forward values and, when
//! gradients are needed, a direct backward: each output's gradient goes to the first position of
//! the maximum in its window (PyTorch's choice), found by the forward pass and kept, summed where
//! windows overlap. [`linear`] and [`conv2d_bias`] are single operations with their own
//! backward on the CPU for the same reason: candle's compositions cost extra full-size passes.

use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// `max(x, 0)` with PyTorch's gradient: candle's ReLU passes the gradient where the input is
/// exactly 0 (`x >= 0`), PyTorch's does not (`x > 0`). Exact zeros are common in networks
/// with zero biases (torchvision's VGG initialisation: a zero neighbourhood convolves to 0),
/// and the difference reached 3.5e-3 of VGG-13's input gradient. On the CPU (f32) it is one
/// pass on rayon's threads, NaN passing through as in PyTorch; untracked tensors on other
/// devices take candle's `relu`.
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
    if is_cpu_f32(x) {
        // One pass on rayon's threads forward and, when tracked, one backward; the mask
        // product below costs candle's backward two products and two zero-filled accumulators
        // (it differentiates both operands), and candle's own ReLU runs on its element-wise
        // pool (see `device::tune_candle_cpu_pool`).
        return Ok(x.contiguous()?.apply_op1(Relu)?);
    }
    if !x.track_op() {
        return Ok(x.relu()?);
    }
    let mask = x.gt(0f64)?.to_dtype(x.dtype())?.detach();
    Ok(x.mul(&mask)?)
}

fn is_cpu_f32(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32
}

/// Elements per rayon task of the element-wise CPU ops: large enough that the scheduling cost
/// vanishes, small enough that both cores get work on a 64 x 20 x 24 x 24 activation.
const CHUNK: usize = 1 << 15;

/// Contiguous f32 values of a storage seen through `layout`.
fn cpu_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = storage else {
        candle_core::bail!("{op}: only f32");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: input must be contiguous");
    };
    Ok(&v[start..end])
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "neuroscope-relu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_slice(storage, layout, "relu")?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| {
                for (o, &v) in o.iter_mut().zip(x) {
                    *o = relu_value(v);
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // The backward of a fused epilogue that is a ReLU alone (the mask from the output).
        Epilogue::relu().grad_cpu(res, grad).map(Some)
    }
}

/// ReLU of one value; NaN passes through, as in PyTorch.
#[inline(always)]
fn relu_value(v: f32) -> f32 {
    if v > 0.0 || v.is_nan() {
        v
    } else {
        0.0
    }
}

/// `x * scale[c] + shift[c]` over the channels of an `N x C x H x W` tensor: batch
/// normalisation in eval mode as PyTorch's CPU kernel computes it
/// (`scale = weight / sqrt(var + eps)`, `shift = bias - mean * scale`). One pass forward and,
/// when the input is tracked, one backward (`grad * scale[c]`); candle's composition of
/// broadcast subtract, multiply and add costs three passes forward and about fifteen
/// backward, because its backward differentiates every operand of every product. The
/// constants are not differentiated: use it where the statistics and affine parameters are
/// fixed (eval mode, feature visualisation, recording).
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// let x = Var::from_vec(vec![1f32, 2.0, 3.0, 4.0], (1, 2, 1, 2), &Device::Cpu)?;
/// let y = neuroscope::models::ops::channel_affine(x.as_tensor(), &[2.0, -1.0], &[0.5, 0.0])?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![2.5, 4.5, -3.0, -4.0]);
/// let g = y.sum_all()?.backward()?;
/// let gx = g.get(x.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
/// assert_eq!(gx, vec![2.0, 2.0, -1.0, -1.0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn channel_affine(x: &Tensor, scale: &[f32], shift: &[f32]) -> Result<Tensor> {
    let (_, c, _, _) = x.dims4()?;
    if scale.len() != c || shift.len() != c {
        return Err(crate::Error::Shape {
            what: "channel_affine scale and shift".into(),
            expected: format!("{c} values each (the input's channels)"),
            got: format!("{} and {}", scale.len(), shift.len()),
        });
    }
    if is_cpu_f32(x) {
        return Ok(x.contiguous()?.apply_op1(ChannelAffine {
            scale: scale.to_vec(),
            shift: shift.to_vec(),
        })?);
    }
    let dev = x.device();
    let a = Tensor::from_slice(scale, (1, c, 1, 1), dev)?.to_dtype(x.dtype())?;
    let b = Tensor::from_slice(shift, (1, c, 1, 1), dev)?.to_dtype(x.dtype())?;
    Ok(x.broadcast_mul(&a)?.broadcast_add(&b)?)
}

struct ChannelAffine {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl CustomOp1 for ChannelAffine {
    fn name(&self) -> &'static str {
        "neuroscope-channel-affine"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = layout.shape().dims4()?;
        let x = cpu_slice(storage, layout, "channel_affine")?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(h * w)
            .zip(x.par_chunks(h * w))
            .enumerate()
            .for_each(|(p, (o, x))| {
                let (a, b) = (self.scale[p % c], self.shift[p % c]);
                for (o, &v) in o.iter_mut().zip(x) {
                    *o = v * a + b;
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // `grad * scale[c]`: the backward of a fused epilogue with this step alone.
        let epi = Epilogue::affine(self.scale.clone(), self.shift.clone());
        epi.grad_cpu(res, grad).map(Some)
    }
}

/// `relu(a + b)`: a residual connection and the ReLU after it (ResNet's blocks), the same
/// values as the addition followed by [`relu`] and, when `a` or `b` is tracked, the same
/// gradients (the ReLU's masked gradient, to each tracked operand).
///
/// Why one operation: on the CPU candle runs an addition or a ReLU of 64K+ values on its own
/// element-wise pool (or, on 2-core machines as neuroscope sets it up, on the calling thread;
/// see [`crate::device::tune_candle_cpu_pool`]), a separate pass each; here it is one pass on
/// rayon's threads with the convolutions. Other devices take candle's addition and [`relu`].
///
/// ```
/// use candle_core::{Device, Var};
/// let a = Var::from_vec(vec![-1f32, 0.5, 2.0], 3, &Device::Cpu)?;
/// let b = Var::from_vec(vec![0.5f32, -0.5, 1.0], 3, &Device::Cpu)?;
/// let y = neuroscope::models::ops::add_relu(a.as_tensor(), b.as_tensor())?;
/// assert_eq!(y.to_vec1::<f32>()?, vec![0.0, 0.0, 3.0]);
/// let g = y.sum_all()?.backward()?;
/// assert_eq!(g.get(a.as_tensor()).unwrap().to_vec1::<f32>()?, vec![0.0, 0.0, 1.0]);
/// assert_eq!(g.get(b.as_tensor()).unwrap().to_vec1::<f32>()?, vec![0.0, 0.0, 1.0]);
/// assert!(neuroscope::models::ops::add_relu(a.as_tensor(), &b.as_tensor().narrow(0, 0, 2)?).is_err());
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Add { relu: true }.apply(a, b)
}

/// `a + b` of two tensors of one shape (MobileNetV2's residual connections): the values and
/// gradients of candle's addition, on the CPU in one pass on rayon's threads, for the reason
/// [`add_relu`] gives.
///
/// ```
/// use candle_core::{Device, Var};
/// let a = Var::from_vec(vec![-1f32, 0.5], 2, &Device::Cpu)?;
/// let b = Var::from_vec(vec![0.5f32, -0.5], 2, &Device::Cpu)?;
/// let y = neuroscope::models::ops::add(a.as_tensor(), b.as_tensor())?;
/// assert_eq!(y.to_vec1::<f32>()?, vec![-0.5, 0.0]);
/// let g = y.sum_all()?.backward()?;
/// assert_eq!(g.get(b.as_tensor()).unwrap().to_vec1::<f32>()?, vec![1.0, 1.0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Add { relu: false }.apply(a, b)
}

/// The sum of two tensors of one shape, with a ReLU after it when `relu`.
struct Add {
    relu: bool,
}

impl Add {
    fn apply(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if a.shape() != b.shape() {
            return Err(crate::Error::Shape {
                what: "the operands of a residual addition".into(),
                expected: format!("the same shape for both ({:?})", a.dims()),
                got: format!("{:?}", b.dims()),
            });
        }
        if is_cpu_f32(a) && is_cpu_f32(b) {
            return Ok(a.contiguous()?.apply_op2(&b.contiguous()?, self)?);
        }
        let sum = (a + b)?;
        if self.relu {
            relu(&sum)
        } else {
            Ok(sum)
        }
    }
}

impl candle_core::CustomOp2 for Add {
    fn name(&self) -> &'static str {
        if self.relu {
            "neuroscope-add-relu"
        } else {
            "neuroscope-add"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let a = cpu_slice(s1, l1, "add")?;
        let b = cpu_slice(s2, l2, "add")?;
        let mut out = vec![0f32; a.len()];
        let relu = self.relu;
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(o, (a, b))| {
                for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                    *o = if relu { relu_value(x + y) } else { x + y };
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // The addition passes its output's gradient to both operands unchanged; the ReLU's is
        // masked first.
        let g = if self.relu {
            Epilogue::relu().grad_cpu(res, grad)?
        } else {
            grad.clone()
        };
        Ok((a.track_op().then(|| g.clone()), b.track_op().then_some(g)))
    }
}

/// A matrix product with broadcasting over leading dimensions (candle's `broadcast_matmul`),
/// whose sums on the CPU (f32) do not depend on the processor, forward and backward.
///
/// Why: candle's CPU matmul hands the whole depth to gemm, which blocks it by the L1 cache it
/// reads from the system (512 on a 32 KB 8-way L1, 1,024 on a 48 KB 12-way one), so a product
/// deeper than 512 (a feature-visualisation image above 512 px) rounded differently on
/// different CPUs. This one runs on the convolution's gemm wrapper, which fixes the blocks.
/// Other devices and dtypes use candle's.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// let a = Var::from_vec((0..6).map(|v| v as f32).collect(), (2, 3), &Device::Cpu)?;
/// let b = Var::from_vec((0..12).map(|v| v as f32).collect(), (2, 3, 2), &Device::Cpu)?;
/// let ours = neuroscope::models::ops::matmul(a.as_tensor(), b.as_tensor())?;
/// let theirs = a.as_tensor().broadcast_matmul(b.as_tensor())?;
/// assert_eq!(ours.to_vec3::<f32>()?, theirs.to_vec3::<f32>()?);
/// let g1 = ours.sqr()?.sum_all()?.backward()?;
/// let g2 = theirs.sqr()?.sum_all()?.backward()?;
/// for v in [&a, &b] {
///     let (x, y) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
///     assert_eq!(x.flatten_all()?.to_vec1::<f32>()?, y.flatten_all()?.to_vec1::<f32>()?);
/// }
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !(is_cpu_f32(a) && is_cpu_f32(b) && a.rank() >= 2 && b.rank() >= 2) {
        return Ok(a.broadcast_matmul(b)?);
    }
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k) = (a.dim(ra - 2)?, a.dim(ra - 1)?);
    let (k2, n) = (b.dim(rb - 2)?, b.dim(rb - 1)?);
    if k != k2 {
        return Err(crate::Error::Shape {
            what: "the operands of a matrix product".into(),
            expected: format!("a second operand with {k} rows (the first has {k} columns)"),
            got: format!("{:?} @ {:?}", a.dims(), b.dims()),
        });
    }
    // The broadcast batch shape, as candle's broadcast_matmul computes it.
    let batch = candle_core::Shape::from(&a.dims()[..ra - 2])
        .broadcast_shape_binary_op(&candle_core::Shape::from(&b.dims()[..rb - 2]), "matmul")?;
    let nb = batch.elem_count();
    // An operand without batch elements of its own (the feature-visualisation image's Fourier
    // bases, shared by every image and channel) is passed once with batch 1 and read for every
    // batch element, not copied `nb` times; other broadcasts are expanded.
    let operand = |t: &Tensor, r: usize, c: usize| -> candle_core::Result<Tensor> {
        if t.elem_count() == r * c {
            return t.contiguous()?.reshape((1, r, c));
        }
        let mut dims = batch.dims().to_vec();
        dims.extend([r, c]);
        t.broadcast_as(dims)?.contiguous()?.reshape((nb, r, c))
    };
    let y = operand(a, m, k)?.apply_op2(&operand(b, k, n)?, BatchMatmul)?;
    let mut dims = batch.dims().to_vec();
    dims.extend([m, n]);
    Ok(y.reshape(dims)?)
}

/// `(Ba, m, k) @ (Bb, k, n)`, both contiguous, on `conv_cpu::sgemm`; a batch of 1 is shared
/// by every element of the other operand's batch.
struct BatchMatmul;

impl candle_core::CustomOp2 for BatchMatmul {
    fn name(&self) -> &'static str {
        "neuroscope-batch-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        use super::conv_cpu::{mat, sgemm};
        let (&[na, m, k], &[nb2, k2, n]) = (l1.dims(), l2.dims()) else {
            candle_core::bail!(
                "batch matmul: {:?} @ {:?} are not two 3-D operands",
                l1.dims(),
                l2.dims()
            );
        };
        if !(na == nb2 || na == 1 || nb2 == 1) || k != k2 {
            candle_core::bail!("batch matmul: {:?} @ {:?} do not fit", l1.dims(), l2.dims());
        }
        let nb = na.max(nb2);
        let a = cpu_slice(s1, l1, "batch matmul")?;
        let b = cpu_slice(s2, l2, "batch matmul")?;
        // Element i of an operand: its own, or its only one.
        let ia = |i: usize| if na == 1 { 0 } else { i };
        let ib = |i: usize| if nb2 == 1 { 0 } else { i };
        let mut out = vec![0f32; nb * m * n];
        if m * n > 0 {
            out.par_chunks_mut(m * n).enumerate().for_each(|(i, o)| {
                let (i, j) = (ia(i), ib(i));
                sgemm(
                    (m, n, k),
                    mat(&a[i * m * k..(i + 1) * m * k], k),
                    mat(&b[j * k * n..(j + 1) * k * n], n),
                    o,
                    n,
                    false,
                    gemm::Parallelism::None,
                )
            });
        }
        Ok((CpuStorage::F32(out), Shape::from((nb, m, n))))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // dA = G B^T, dB = A^T G, each again one pinned product per batch element; a shared
        // operand (batch 1) gets the sum over the batch.
        let t = |x: &Tensor| x.transpose(1, 2)?.contiguous();
        let g = grad.contiguous()?;
        let shared = |gx: Tensor, x: &Tensor| {
            if x.dim(0)? == 1 && gx.dim(0)? > 1 {
                gx.sum_keepdim(0)
            } else {
                Ok(gx)
            }
        };
        let ga = if a.track_op() {
            Some(shared(g.apply_op2(&t(b)?, BatchMatmul)?, a)?)
        } else {
            None
        };
        let gb = if b.track_op() {
            Some(shared(t(a)?.apply_op2(&g, BatchMatmul)?, b)?)
        } else {
            None
        };
        Ok((ga, gb))
    }
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
        Ok(x.apply_op1(MaxPool::new(kernel, stride))?)
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
    /// and `idx` (whole `oh x ow` planes).
    fn pool_planes<const K: usize>(
        &self,
        (h, w): (usize, usize),
        planes: &[f32],
        out: &mut [f32],
        idx: &mut [u32],
    ) {
        let (oh, ow) = self.out(h, w);
        for ((o, ix), plane) in out
            .chunks_mut(oh * ow)
            .zip(idx.chunks_mut(oh * ow))
            .zip(planes.chunks(h * w))
        {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (i, v) = self.argmax::<K>(plane, w, oy, ox);
                    o[oy * ow + ox] = v;
                    ix[oy * ow + ox] = i as u32;
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

/// `x W^T + b` (`nn.Linear`) for an `N x in` input and an `out x in` weight. On the CPU in
/// f32 it is one operation with its own backward: the weight's gradient `g^T x` comes out of
/// one gemm already in the weight's `out x in` layout and the bias's as column sums, where
/// candle's `matmul(w.t())` + `broadcast_add` would compute the transposed gradient, transpose
/// it back through a strided addition and reduce a broadcast, each with its own zero-filled
/// accumulator (about twice the time of seed 3's fully-connected backward). Other devices and
/// dtypes use candle's operations. Values agree with candle's to float rounding.
///
/// ```
/// use candle_core::{Device, Var};
/// let x = Var::randn(0f32, 1.0, (5, 7), &Device::Cpu)?;
/// let w = Var::randn(0f32, 1.0, (3, 7), &Device::Cpu)?;
/// let b = Var::randn(0f32, 1.0, 3, &Device::Cpu)?;
/// let ours = neuroscope::models::ops::linear(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()))?;
/// let theirs = x.as_tensor().matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())?;
/// let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert!(d < 1e-5, "{d}");
/// let g1 = ours.sqr()?.sum_all()?.backward()?;
/// let g2 = theirs.sqr()?.sum_all()?.backward()?;
/// for v in [&x, &w, &b] {
///     let (a, c) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
///     assert_eq!(a.dims(), c.dims());
///     let d = (a - c)?.abs()?.max_all()?.to_scalar::<f32>()?;
///     assert!(d < 1e-4, "{d}");
/// }
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    linear_fused(x, w, bias, &Epilogue::default())
}

/// [`linear`] followed by `epi` (a per-feature affine step, a ReLU), applied in the output
/// buffer on the CPU: one graph node instead of two or three. The same values and gradients,
/// bit for bit, as the separate operations.
///
/// ```
/// use candle_core::{Device, Var};
/// use neuroscope::models::ops::{self, Epilogue};
/// let x = Var::randn(0f32, 1.0, (5, 7), &Device::Cpu)?;
/// let w = Var::randn(0f32, 1.0, (3, 7), &Device::Cpu)?;
/// let fused = ops::linear_fused(x.as_tensor(), w.as_tensor(), None, &Epilogue::relu())?;
/// let apart = ops::relu(&ops::linear(x.as_tensor(), w.as_tensor(), None)?)?;
/// assert_eq!(fused.to_vec2::<f32>()?, apart.to_vec2::<f32>()?);
/// let (g1, g2) = (fused.sum_all()?.backward()?, apart.sum_all()?.backward()?);
/// let gw = |g: &candle_core::backprop::GradStore| g.get(w.as_tensor()).unwrap().to_vec2::<f32>();
/// assert_eq!(gw(&g1)?, gw(&g2)?);
/// # Ok::<(), neuroscope::Error>(())
/// ```
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
    epi.apply_tensor(match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
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

    /// One thread for small products (seed 3's fc2), all of them for large ones; the gemm
    /// splits rows and columns of the output, never the sums, so the bits do not depend on it.
    fn par(m: usize, n: usize, k: usize) -> gemm::Parallelism {
        if m * n * k < 1 << 18 {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(super::conv_cpu::threads())
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
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        use super::conv_cpu::{mat, mat_t, sgemm};
        let (n, i, o) = Self::dims(l1.dims(), l2.dims())?;
        let x = cpu_slice(s1, l1, "linear")?;
        let w = cpu_slice(s2, l2, "linear")?;
        let mut y = vec![0f32; n * o];
        if let Some(b) = bias {
            if b.len() != o {
                candle_core::bail!("linear: bias length {} differs from {o} outputs", b.len());
            }
            for row in y.chunks_mut(o) {
                row.copy_from_slice(b);
            }
        }
        sgemm(
            (n, o, i),
            mat(x, i),
            mat_t(w, i),
            &mut y,
            o,
            bias.is_some(),
            Self::par(n, o, i),
        );
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        use super::conv_cpu::{mat, mat_t, sgemm};
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
/// group and a square kernel it runs on our im2col + gemm kernels in NCHW (`conv_cpu`:
/// forward, the input's gradient as `W^T g` + col2im for every stride, the kernel's gradient as
/// one gemm per image), with each gradient computed only when its operand is tracked (feature
/// visualisation needs no weight gradients). candle's CPU convolution copies the input to NHWC
/// on one thread and gathers its columns element by element, and its backward is a direct
/// transposed convolution: 3.4x slower for a training epoch of seed 3's network, 2-4x for a
/// feature-visualisation step (BENCHMARKS.md). Other devices, dtypes and grouped convolutions
/// use candle's. Values agree with candle's to float rounding (the test below and the PyTorch
/// parity tests).
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
    conv2d_bias(x, w, None, padding, stride, groups)
}

/// [`conv2d`] followed by a per-channel bias (`nn.Conv2d` with `bias=True`), as one operation
/// when gradients are needed on the CPU: the bias is added in the output buffer and its gradient
/// is a sum over contiguous planes inside the convolution's backward. candle's broadcast add
/// would cost its backward two zero-filled accumulators, two additions and a strided reduction
/// of the full activation.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// let x = Var::randn(0f32, 1.0, (2, 3, 9, 9), &Device::Cpu)?;
/// let w = Var::randn(0f32, 1.0, (4, 3, 3, 3), &Device::Cpu)?;
/// let b = Var::randn(0f32, 1.0, 4, &Device::Cpu)?;
/// let ours = neuroscope::models::ops::conv2d_bias(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), 1, 2, 1)?;
/// let theirs = x.as_tensor().conv2d(w.as_tensor(), 1, 2, 1, 1)?
///     .broadcast_add(&b.as_tensor().reshape((1, 4, 1, 1))?)?;
/// let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert!(d < 1e-4, "{d}");    // the same sums in another order
/// let g1 = ours.sqr()?.sum_all()?.backward()?;
/// let g2 = theirs.sqr()?.sum_all()?.backward()?;
/// for v in [&x, &w, &b] {
///     let (a, c) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
///     let d = (a - c)?.abs()?.max_all()?.to_scalar::<f32>()?;
///     assert!(d < 1e-3, "{d}");
/// }
/// # Ok::<(), neuroscope::Error>(())
/// ```
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
///
/// ```
/// use candle_core::{Device, Var};
/// use neuroscope::models::ops::{self, Epilogue};
/// let x = Var::randn(0f32, 1.0, (2, 3, 9, 9), &Device::Cpu)?;
/// let w = Var::randn(0f32, 1.0, (4, 3, 3, 3), &Device::Cpu)?;
/// let b = Var::randn(0f32, 1.0, 4, &Device::Cpu)?;
/// let (scale, shift) = (vec![0.5f32, -2.0, 1.5, 0.1], vec![0.1f32, 0.2, -0.3, 0.0]);
/// let epi = Epilogue::affine(scale.clone(), shift.clone()).with_relu();
/// let (xt, wt, bt) = (x.as_tensor(), w.as_tensor(), Some(b.as_tensor()));
/// let fused = ops::conv2d_fused(xt, wt, bt, 1, 1, 1, &epi)?;
/// let conv = ops::conv2d_bias(xt, wt, bt, 1, 1, 1)?;
/// let apart = ops::relu(&ops::channel_affine(&conv, &scale, &shift)?)?;
/// let bits = |t: &candle_core::Tensor| -> candle_core::Result<Vec<u32>> {
///     Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v.to_bits()).collect())
/// };
/// assert_eq!(bits(&fused)?, bits(&apart)?);
/// let (g1, g2) = ((fused.sqr()?.sum_all()?).backward()?, (apart.sqr()?.sum_all()?).backward()?);
/// for v in [&x, &w, &b] {
///     let (a, c) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
///     assert_eq!(bits(a)?, bits(c)?);
/// }
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn conv2d_fused(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    padding: usize,
    stride: usize,
    groups: usize,
    epi: &Epilogue,
) -> Result<Tensor> {
    let (_, _, k, k2) = w.dims4()?;
    if groups == 1
        && k == k2
        && padding < k
        && is_cpu_f32(x)
        && is_cpu_f32(w)
        && bias.is_none_or(is_cpu_f32)
    {
        return apply_weighted(Conv { padding, stride }, epi, x, w, bias);
    }
    let y = x.conv2d(w, padding, stride, 1, groups)?;
    epi.apply_tensor(match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?,
        None => y,
    })
}

/// What a convolution or linear layer may apply in its own output buffer
/// ([`conv2d_fused`], [`linear_fused`]): a per-channel affine step (eval-mode batch norm,
/// as [`channel_affine`]), then a ReLU. The default does nothing.
///
/// ```
/// use neuroscope::models::ops::Epilogue;
/// assert!(Epilogue::default().is_empty());
/// let e = Epilogue::affine(vec![2.0], vec![0.5]).with_relu();
/// assert!(e.relu && e.affine.is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Epilogue {
    /// Per-channel `(scale, shift)`: `v * scale[c] + shift[c]`.
    pub affine: Option<(Vec<f32>, Vec<f32>)>,
    /// A ReLU after the affine step.
    pub relu: bool,
}

impl Epilogue {
    /// A ReLU alone.
    pub fn relu() -> Self {
        Epilogue {
            affine: None,
            relu: true,
        }
    }

    /// A per-channel scale and shift alone.
    pub fn affine(scale: Vec<f32>, shift: Vec<f32>) -> Self {
        Epilogue {
            affine: Some((scale, shift)),
            relu: false,
        }
    }

    /// The same, followed by a ReLU.
    pub fn with_relu(mut self) -> Self {
        self.relu = true;
        self
    }

    /// Appends `step` when the result is still an epilogue (an affine step first, at most one
    /// ReLU, each once) and says whether it did.
    ///
    /// ```
    /// use neuroscope::models::ops::Epilogue;
    /// let mut e = Epilogue::affine(vec![2.0], vec![0.0]);
    /// assert!(e.append(&Epilogue::relu()));
    /// assert!(!e.append(&Epilogue::relu()));                      // one ReLU
    /// assert!(!e.append(&Epilogue::affine(vec![1.0], vec![1.0]))); // no affine after it
    /// assert_eq!(e, Epilogue::affine(vec![2.0], vec![0.0]).with_relu());
    /// ```
    pub fn append(&mut self, step: &Epilogue) -> bool {
        let ok = match (&step.affine, step.relu) {
            (Some(_), _) => self.is_empty(),
            (None, relu) => !(relu && self.relu),
        };
        if ok {
            if step.affine.is_some() {
                self.affine = step.affine.clone();
            }
            self.relu |= step.relu;
        }
        ok
    }

    /// True when it does nothing.
    pub fn is_empty(&self) -> bool {
        self.affine.is_none() && !self.relu
    }

    /// The steps as separate tensor operations (devices and layouts the fused CPU kernel does
    /// not cover).
    fn apply_tensor(&self, y: Tensor) -> Result<Tensor> {
        let y = match &self.affine {
            Some((a, b)) if y.rank() == 4 => channel_affine(&y, a, b)?,
            Some((a, b)) => {
                let shape = (1, a.len());
                let a = Tensor::from_slice(a, shape, y.device())?.to_dtype(y.dtype())?;
                let b = Tensor::from_slice(b, shape, y.device())?.to_dtype(y.dtype())?;
                y.broadcast_mul(&a)?.broadcast_add(&b)?
            }
            None => y,
        };
        if self.relu {
            relu(&y)
        } else {
            Ok(y)
        }
    }

    fn check(&self, c: usize) -> candle_core::Result<()> {
        match &self.affine {
            Some((a, b)) if a.len() != c || b.len() != c => candle_core::bail!(
                "epilogue: {} scales and {} shifts for {c} channels",
                a.len(),
                b.len()
            ),
            _ => Ok(()),
        }
    }

    /// The steps in place on an `N x C x ...` output of shape `dims`.
    fn apply_cpu(&self, y: &mut [f32], dims: &[usize]) {
        let (c, plane) = channels_and_plane(dims);
        match &self.affine {
            None if self.relu => y
                .par_chunks_mut(CHUNK)
                .for_each(|y| y.iter_mut().for_each(|v| *v = relu_value(*v))),
            None => {}
            Some((a, b)) => y.par_chunks_mut(c * plane).for_each(|y| {
                for (ch, y) in y.chunks_mut(plane).enumerate() {
                    let (a, b) = (a[ch], b[ch]);
                    for v in y {
                        let t = *v * a + b;
                        *v = if self.relu { relu_value(t) } else { t };
                    }
                }
            }),
        }
    }

    /// The gradient reaching the input of the steps (the convolution's or linear layer's own
    /// output when fused; the input of the standalone ReLU and channel-affine ops), from their
    /// output `res` and its gradient: the steps' backwards in reverse order, each result added
    /// to zero as candle's accumulator of an intermediate tensor does (so that even the signs
    /// of zeros match the separate operations).
    fn grad_cpu(&self, res: &Tensor, grad: &Tensor) -> candle_core::Result<Tensor> {
        if self.is_empty() {
            return Ok(grad.clone());
        }
        let (c, plane) = channels_and_plane(res.dims());
        let gx = with_cpu_f32(res, |y| {
            with_cpu_f32(grad, |g| {
                let mut gx = vec![0f32; g.len()];
                gx.par_chunks_mut(c * plane)
                    .zip(y.par_chunks(c * plane).zip(g.par_chunks(c * plane)))
                    .for_each(|(o, (y, g))| {
                        for (ch, (o, (y, g))) in o
                            .chunks_mut(plane)
                            .zip(y.chunks(plane).zip(g.chunks(plane)))
                            .enumerate()
                        {
                            let a = self.affine.as_ref().map(|(a, _)| a[ch]);
                            for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                                let mut v = g;
                                if self.relu {
                                    let keep = 0u32.wrapping_sub((y > 0.0) as u32);
                                    v = 0.0 + f32::from_bits(v.to_bits() & keep);
                                }
                                if let Some(a) = a {
                                    v = 0.0 + v * a;
                                }
                                *o = v;
                            }
                        }
                    });
                gx
            })
        })??;
        Tensor::from_vec(gx, res.shape(), res.device())
    }
}

/// Channels (axis 1) and the size of each channel's plane (the axes after it) of an
/// `N x C x ...` shape; at least 1 each.
fn channels_and_plane(dims: &[usize]) -> (usize, usize) {
    let c = dims.get(1).copied().unwrap_or(1).max(1);
    (c, dims.iter().skip(2).product::<usize>().max(1))
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

impl Conv {
    fn geom(&self, x: &[usize], w: &[usize]) -> candle_core::Result<super::conv_cpu::Geom> {
        let (&[n, cin, h, wd], &[cout, wcin, k, _]) = (x, w) else {
            candle_core::bail!("conv2d: expected 4-D input and kernel, got {x:?} and {w:?}");
        };
        if self.stride == 0 {
            candle_core::bail!("conv2d: stride must be at least 1");
        }
        if wcin != cin || h + 2 * self.padding < k || wd + 2 * self.padding < k {
            candle_core::bail!("conv2d: input {x:?} does not fit kernel {w:?}");
        }
        Ok(super::conv_cpu::Geom {
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
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geom(l1.dims(), l2.dims())?;
        let x = cpu_slice(s1, l1, "conv2d")?;
        let w = cpu_slice(s2, l2, "conv2d")?;
        if bias.is_some_and(|b| b.len() != g.cout) {
            candle_core::bail!("conv2d: bias length differs from {} channels", g.cout);
        }
        let y = super::conv_cpu::forward(x, w, bias, &g);
        let (oh, ow) = g.out();
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
        type Kernel = fn(&[f32], &[f32], &super::conv_cpu::Geom) -> Vec<f32>;
        // The gradient of `target` (when tracked) from `other` and the output's gradient.
        let grad_of = |target: &Tensor, other: &Tensor, f: Kernel| {
            if !target.track_op() {
                return Ok(None);
            }
            let v = with_cpu_f32(other, |o| with_cpu_f32(grad, |gs| f(o, gs, &g)))??;
            Tensor::from_vec(v, target.shape(), target.device()).map(Some)
        };
        Ok((
            grad_of(x, w, super::conv_cpu::grad_input)?,
            grad_of(w, x, super::conv_cpu::grad_weight)?,
        ))
    }
}

/// An operation of an input and a weight (`f(x, w)`, plus a bias per output channel when one
/// is given) with its own CPU kernels: [`conv2d_bias`] and [`linear`]. One wrapper gives both
/// candle's two- and three-operand custom-op interfaces, so a bias never costs a broadcast node.
trait WeightOp: Send + Sync + 'static {
    const NAME: &'static str;
    /// The output (bias included when given) from contiguous f32 operands.
    fn forward(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<&[f32]>,
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
        let (mut y, shape) = self.op.forward(x, w, bias)?;
        self.epi.check(channels_and_plane(shape.dims()).0)?;
        if let CpuStorage::F32(v) = &mut y {
            self.epi.apply_cpu(v, shape.dims());
        }
        Ok((y, shape))
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
