//! Element-wise CPU kernels with PyTorch's gradients: ReLU, ReLU6, a per-channel affine map
//! (batch norm in eval mode), addition and `relu(a + b)`, each one pass on rayon's threads.

use super::cpu::{cpu_slice, is_cpu_f32, relu_value, with_cpu_f32, CHUNK};
use super::epilogue::Epilogue;
use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// `max(x, 0)` with PyTorch's gradient: candle's ReLU passes the gradient where the input is
/// exactly 0 (`x >= 0`), PyTorch's does not (`x > 0`). Exact zeros are common in networks
/// with zero biases (torchvision's VGG initialisation: a zero neighbourhood convolves to 0),
/// and the difference reached 3.5e-3 of VGG-13's input gradient. On the CPU (f32) it is one
/// pass on rayon's threads, NaN passing through as in PyTorch; untracked tensors on other
/// devices take candle's `relu`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if is_cpu_f32(x) {
        // One pass on rayon's threads forward and, when tracked, one backward; the mask
        // product below costs candle's backward two products and two zero-filled accumulators
        // (it differentiates both operands), and candle's own ReLU runs on its element-wise
        // pool (see `device::candle_pool`).
        return Ok(x.contiguous()?.apply_op1(Relu)?);
    }
    if !x.track_op() {
        return Ok(x.relu()?);
    }
    let mask = x.gt(0f64)?.to_dtype(x.dtype())?.detach();
    Ok(x.mul(&mask)?)
}

/// GELU with the exact erf as candle's `gelu_erf` computes it on the CPU,
/// `(erff(x / sqrt 2) + 1) * 0.5 * x` with the `libm` crate's `erff` (the same function and
/// operations in the same order: the same bits), split over rayon's threads; `None` where
/// candle's must run (a gradient to track, another device or dtype).
///
/// Why: candle runs its element-wise operations on its own pool, which neuroscope keeps to
/// the calling thread on 2 cores (see `device::candle_pool`); GELU over ViT-B/16's MLP
/// activations (3,072 values per token) then left the other core idle for 4-6 % of a recording.
pub(crate) fn gelu_erf(x: &Tensor) -> Result<Option<Tensor>> {
    if !is_cpu_f32(x) || x.track_op() {
        return Ok(None);
    }
    let y = with_cpu_f32(x, |v| {
        // SAFETY: chunk `k` of the output is zipped with chunk `k` of the input, of the same
        // length, and `simd::gelu_erf` writes every element of its output.
        unsafe {
            super::cpu::par_uninit(v.len(), CHUNK, |k, o| {
                super::simd::gelu_erf(&v[k * CHUNK..][..o.len()], o)
            })
        }
    })?;
    Ok(Some(Tensor::from_vec(y, x.shape(), x.device())?))
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

/// `x * scale[c] + shift[c]` over the channels of an `N x C x H x W` tensor: batch
/// normalisation in eval mode as PyTorch's CPU kernel computes it
/// (`scale = weight / sqrt(var + eps)`, `shift = bias - mean * scale`). One pass forward and,
/// when the input is tracked, one backward (`grad * scale[c]`); candle's composition of
/// broadcast subtract, multiply and add costs three passes forward and about fifteen
/// backward, because its backward differentiates every operand of every product. The
/// constants are not differentiated: use it where the statistics and affine parameters are
/// fixed (eval mode, feature visualisation, recording).
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
/// see [`crate::device::candle_pool`]), a separate pass each; here it is one pass on
/// rayon's threads with the convolutions. Other devices take candle's addition and [`relu`].
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Add { relu: true }.apply(a, b)
}

/// `a + b` of two tensors of one shape (MobileNetV2's residual connections): the values and
/// gradients of candle's addition, on the CPU in one pass on rayon's threads, for the reason
/// [`add_relu`] gives.
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
        if a.len() != b.len() {
            candle_core::bail!("add: {} and {} values", a.len(), b.len());
        }
        let relu = self.relu;
        // SAFETY: chunk `k` covers values `k * CHUNK ..` of the output, and `a` and `b` hold
        // as many values as it (checked above): each element is written once.
        let out = unsafe {
            super::cpu::par_uninit(a.len(), CHUNK, |k, o| {
                let (a, b) = (&a[k * CHUNK..][..o.len()], &b[k * CHUNK..][..o.len()]);
                for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                    o.write(if relu { relu_value(x + y) } else { x + y });
                }
            })
        };
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

/// `min(max(x, 0), 6)` (MobileNetV2) with PyTorch's gradient: 1 strictly inside (0, 6), 0 at
/// and beyond the ends (candle's clamp gives half at the ends).
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(x.clamp(0f32, 6f32)?);
    }
    let inside = x.gt(0f64)?.mul(&x.lt(6f64)?)?.to_dtype(x.dtype())?.detach();
    let top = (x.ge(6f64)?.to_dtype(x.dtype())?.detach() * 6.0)?;
    Ok(x.mul(&inside)?.add(&top)?)
}

#[cfg(test)]
mod doc_examples {
    //! The examples of the functions above (crate-private, so rustdoc does not run them).

    #[test]
    fn relu() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let x = Var::from_vec(vec![-1f32, 0.0, 2.0], 3, &Device::Cpu)?;
        let y = super::relu(x.as_tensor())?;
        assert_eq!(y.to_vec1::<f32>()?, vec![0.0, 0.0, 2.0]);
        let g = y.sum_all()?.backward()?;
        assert_eq!(
            g.get(x.as_tensor()).unwrap().to_vec1::<f32>()?,
            vec![0.0, 0.0, 1.0]
        );
        Ok(())
    }

    #[test]
    fn channel_affine() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let x = Var::from_vec(vec![1f32, 2.0, 3.0, 4.0], (1, 2, 1, 2), &Device::Cpu)?;
        let y = super::channel_affine(x.as_tensor(), &[2.0, -1.0], &[0.5, 0.0])?;
        assert_eq!(
            y.flatten_all()?.to_vec1::<f32>()?,
            vec![2.5, 4.5, -3.0, -4.0]
        );
        let g = y.sum_all()?.backward()?;
        let gx = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(gx, vec![2.0, 2.0, -1.0, -1.0]);
        Ok(())
    }

    #[test]
    fn add_relu() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let a = Var::from_vec(vec![-1f32, 0.5, 2.0], 3, &Device::Cpu)?;
        let b = Var::from_vec(vec![0.5f32, -0.5, 1.0], 3, &Device::Cpu)?;
        let y = super::add_relu(a.as_tensor(), b.as_tensor())?;
        assert_eq!(y.to_vec1::<f32>()?, vec![0.0, 0.0, 3.0]);
        let g = y.sum_all()?.backward()?;
        assert_eq!(
            g.get(a.as_tensor()).unwrap().to_vec1::<f32>()?,
            vec![0.0, 0.0, 1.0]
        );
        assert_eq!(
            g.get(b.as_tensor()).unwrap().to_vec1::<f32>()?,
            vec![0.0, 0.0, 1.0]
        );
        assert!(super::add_relu(a.as_tensor(), &b.as_tensor().narrow(0, 0, 2)?).is_err());
        Ok(())
    }

    #[test]
    fn add() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let a = Var::from_vec(vec![-1f32, 0.5], 2, &Device::Cpu)?;
        let b = Var::from_vec(vec![0.5f32, -0.5], 2, &Device::Cpu)?;
        let y = super::add(a.as_tensor(), b.as_tensor())?;
        assert_eq!(y.to_vec1::<f32>()?, vec![-0.5, 0.0]);
        let g = y.sum_all()?.backward()?;
        assert_eq!(
            g.get(b.as_tensor()).unwrap().to_vec1::<f32>()?,
            vec![1.0, 1.0]
        );
        Ok(())
    }

    #[test]
    fn relu6() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let x = Var::from_vec(vec![-1f32, 0.0, 3.0, 6.0, 7.0], 5, &Device::Cpu)?;
        let y = super::relu6(x.as_tensor())?;
        assert_eq!(y.to_vec1::<f32>()?, vec![0.0, 0.0, 3.0, 6.0, 6.0]);
        let g = y.sum_all()?.backward()?;
        assert_eq!(
            g.get(x.as_tensor()).unwrap().to_vec1::<f32>()?,
            vec![0.0, 0.0, 1.0, 0.0, 0.0]
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Result;
    use candle_core::{Device, Tensor};

    /// The parallel GELU gives candle's `gelu_erf` bits everywhere: each of erf's ranges
    /// (|x| below 2^-28, 0.84375, 1.25, 1/0.35, 6, beyond), signed zeros, infinities and NaN,
    /// mixed in every block of eight and in whole blocks of the first range, and a sweep of
    /// x's bit patterns through every range (the vector path computes all ranges).
    #[test]
    fn gelu_erf_is_candles_bit_for_bit() -> Result<()> {
        let mut r = crate::rng::Rng::new(7);
        let mut v: Vec<f32> = (0..200_000)
            .map(|i| {
                let scale = [1e-9, 1e-3, 0.5, 1.0, 2.0, 4.0, 9.0, 100.0][i % 8];
                ((r.uniform() * 2.0 - 1.0) * scale) as f32
            })
            .collect();
        // runs of eight in erf's first range, the vector path (boundaries included: t = x /
        // sqrt 2 at 2^-28 and just under 0.84375, and one lane past it in a block)
        v.extend((0..100_000).map(|_| ((r.uniform() * 2.0 - 1.0) * 1.19) as f32));
        let edge = [2f32.powi(-28), 0.84375f32.next_down()].map(|t| t * std::f32::consts::SQRT_2);
        for k in 0..64 {
            let mut block = [0.5f32; 8];
            block[k % 8] = edge[k % 2] * if k % 3 == 0 { -1.0 } else { 1.0 };
            if k % 5 == 0 {
                block[(k + 3) % 8] = 1.25;
            }
            v.extend(block);
        }
        // a sweep of the bit patterns of x from 0.5 to 16 (t = x / sqrt 2 through every range
        // boundary: 0.84375, 1.25, 1/0.35 and 6), alternating signs, and each boundary of t
        // itself with its neighbours
        v.extend(
            (0x3f00_0000u32..0x4180_0000)
                .step_by(61)
                .enumerate()
                .map(|(i, b)| f32::from_bits(b | if i % 2 == 0 { 0 } else { 0x8000_0000 })),
        );
        for b in [0x3f58_0000u32, 0x3fa0_0000, 0x4036_db6d, 0x40c0_0000] {
            for d in -2i32..=2 {
                // the x nearest t * sqrt 2 whose x / sqrt 2 is exactly t, when one exists
                let t = f32::from_bits((b as i32 + d) as u32);
                let x0 = (t * std::f32::consts::SQRT_2).to_bits() as i32;
                let hit = (-8..=8)
                    .map(|e| f32::from_bits((x0 + e) as u32))
                    .find(|x| x * std::f32::consts::FRAC_1_SQRT_2 == t);
                v.extend(hit.into_iter().flat_map(|x| [x, -x]));
            }
        }
        v.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ]);
        let x = Tensor::from_vec(v.clone(), v.len(), &Device::Cpu)?;
        let ours = super::gelu_erf(&x)?
            .ok_or_else(|| crate::Error::InvalidArgument("gelu_erf declined".into()))?
            .to_vec1::<f32>()?;
        let theirs = x.gelu_erf()?.to_vec1::<f32>()?;
        for ((a, b), x) in ours.iter().zip(&theirs).zip(&v) {
            assert_eq!(a.to_bits(), b.to_bits(), "gelu({x})");
        }
        let tracked = candle_core::Var::from_tensor(&x)?;
        assert!(super::gelu_erf(tracked.as_tensor())?.is_none());
        Ok(())
    }
}
