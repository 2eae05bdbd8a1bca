//! A broadcasting matrix product whose sums on the CPU do not depend on the processor.

use super::cpu::{cpu_slice, is_cpu_f32};
use crate::Result;
use candle_core::{CpuStorage, Layout, Shape, Tensor};
use rayon::prelude::*;

/// A matrix product with broadcasting over leading dimensions (candle's `broadcast_matmul`),
/// whose sums on the CPU (f32) do not depend on the processor, forward and backward.
///
/// Why: candle's CPU matmul hands the whole depth to gemm, which blocks it by the L1 cache it
/// reads from the system (512 on a 32 KB 8-way L1, 1,024 on a 48 KB 12-way one), so a product
/// deeper than 512 (a feature-visualisation image above 512 px) rounded differently on
/// different CPUs. This one runs on the convolution's gemm wrapper, which fixes the blocks.
/// Other devices and dtypes use candle's.
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

/// `(Ba, m, k) @ (Bb, k, n)`, both contiguous, on `gemm::sgemm`; a batch of 1 is shared
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
        use super::gemm::{mat, sgemm};
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

#[cfg(test)]
mod doc_examples {
    //! The examples of the functions above (crate-private, so rustdoc does not run them).

    #[test]
    fn matmul() -> crate::Result<()> {
        use candle_core::{Device, Var};
        let a = Var::from_vec((0..6).map(|v| v as f32).collect(), (2, 3), &Device::Cpu)?;
        let b = Var::from_vec((0..12).map(|v| v as f32).collect(), (2, 3, 2), &Device::Cpu)?;
        let ours = super::matmul(a.as_tensor(), b.as_tensor())?;
        let theirs = a.as_tensor().broadcast_matmul(b.as_tensor())?;
        assert_eq!(ours.to_vec3::<f32>()?, theirs.to_vec3::<f32>()?);
        let g1 = ours.sqr()?.sum_all()?.backward()?;
        let g2 = theirs.sqr()?.sum_all()?.backward()?;
        for v in [&a, &b] {
            let (x, y) = (
                g1.get(v.as_tensor()).unwrap(),
                g2.get(v.as_tensor()).unwrap(),
            );
            assert_eq!(
                x.flatten_all()?.to_vec1::<f32>()?,
                y.flatten_all()?.to_vec1::<f32>()?
            );
        }
        Ok(())
    }
}
