//! The core of multi-head attention in forward passes that need no gradient (recording): the
//! scores, their softmax and the weighted values of every (image, head), read in place from the
//! in-projection's output and written where the next layer reads them.
//!
//! Why: ViT's attention ran as candle operations around two batched products: q, k and v copied
//! out of the in-projection's `tokens x 3 * features` output (three strided copies), q scaled
//! into a fourth tensor, k transposed into a fifth, both products' outputs zero-filled first, and
//! the weighted values transposed back to `tokens x features` (a sixth copy): six passes over
//! 4.8 million values per block at 32 images, with their zero fills about 10 % of a ViT-B/16
//! recording. Here q is scaled into a buffer of one head (in L2), the first product reads k
//! through its strides (transposed into a buffer where the gemm crate's small paths run) and
//! writes the scores into the probabilities' buffer for an in-place softmax, the second reads v
//! through its strides where the in-projection wrote it and writes each head's columns of the
//! out-projection's input directly, and nothing is zero-filled.
//!
//! Same bits: q is scaled as candle's affine map scales it (`v * scale + 0` in f32); each
//! product's elements are the same gemm chains as the chain's contiguous copies give (packing
//! moves values, a depth of 64 or 197 is one block either way, and k^T is gathered where the
//! sums would depend on its layout); each row's softmax is
//! [`super::norm::softmax_row_in_place`], the one-pass kernel's steps (`softmax_last`) on the
//! scores where the product wrote them. A test compares the bits with the candle chain of
//! `models::vit`.

use super::cpu::{is_cpu_f32, par_uninit, with_cpu_f32};
use super::gemm::{mat, mat_t, sgemm_raw};
use candle_core::Tensor;
use gemm::Parallelism;
use rayon::prelude::*;
use std::cell::RefCell;

/// The attention's shape: `n` images of `s` tokens, `h` heads of `hd` features each.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Heads {
    pub n: usize,
    pub s: usize,
    pub h: usize,
    pub hd: usize,
}

impl Heads {
    /// Features per token (`h * hd`).
    fn e(&self) -> usize {
        self.h * self.hd
    }

    /// Whether `qkv` is an untracked CPU f32 `n s x 3 e` in-projection output of this shape.
    fn fits(&self, qkv: &Tensor) -> bool {
        is_cpu_f32(qkv)
            && !qkv.track_op()
            && qkv.dims() == [self.n * self.s, 3 * self.e()]
            && self.n * self.s * self.hd > 0
    }

    /// Where head `j` of image `i` starts in the in-projection output, for part `part` (0 q,
    /// 1 k, 2 v): row `i s`, column `part e + j hd`.
    fn at(&self, i: usize, j: usize, part: usize) -> usize {
        i * self.s * 3 * self.e() + part * self.e() + j * self.hd
    }
}

thread_local! {
    /// A task's scaled q (`s x hd`) and, where it is gathered, k^T (`hd x s`), kept from task
    /// to task.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `softmax(q k^T * scale)` per image and head, `n x h x s x s`, from the in-projection output
/// `qkv` (`n s x 3 e`: q, k, v side by side in each token's row, heads `hd` apart), as
/// `((q * scale) @ k^T).softmax(-1)` computes it; `None` where the candle operations must run
/// (another device or dtype, a gradient to track).
pub(crate) fn attention_probs(
    qkv: &Tensor,
    shape: Heads,
    scale: f64,
) -> crate::Result<Option<Tensor>> {
    if !shape.fits(qkv) {
        return Ok(None);
    }
    let Heads { n, s, h, hd } = shape;
    let ld = 3 * shape.e();
    // candle's affine map: the factor rounded to f32, `v * scale + 0`
    let scale = scale as f32;
    let in_place = super::gemm::layout_free(s, s, hd);
    let probs = with_cpu_f32(qkv, |src| {
        let fill = |task: usize, out: &mut [std::mem::MaybeUninit<f32>]| {
            let (i, j) = (task / h, task % h);
            SCRATCH.with(|scratch| {
                let (q, kt) = &mut *scratch.borrow_mut();
                q.clear();
                for t in 0..s {
                    let row = &src[shape.at(i, j, 0) + t * ld..][..hd];
                    q.extend(row.iter().map(|&v| v * scale + 0f32));
                }
                // k^T read in place (element (d, t) at t * ld + d) where the product's sums do
                // not depend on the layout; otherwise gathered into hd x s, the layout of the
                // candle chain (the gemm crate's small-product paths sum a transposed operand
                // in another order)
                let k_at = shape.at(i, j, 1);
                let kt = if in_place {
                    mat_t(&src[k_at..], ld)
                } else {
                    kt.resize(hd * s, 0.0);
                    for t in 0..s {
                        for (d, &v) in src[k_at + t * ld..][..hd].iter().enumerate() {
                            kt[d * s + t] = v;
                        }
                    }
                    mat(kt, s)
                };
                // the scores written into the task's chunk of the output, then each row's
                // softmax in place
                // SAFETY: the chunk holds s x s values (row stride s), all written by the
                // product (none read), and is not aliased by the operands (the task's q
                // buffer and the input).
                unsafe {
                    sgemm_raw(
                        (s, s, hd),
                        mat(q, hd),
                        kt,
                        out.as_mut_ptr().cast(),
                        s * s,
                        s,
                        false,
                        Parallelism::None,
                    )
                };
                // SAFETY: `MaybeUninit<f32>` has f32's layout, and the product above wrote
                // every value of the chunk.
                let out = unsafe { &mut *(out as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
                for row in out.chunks_exact_mut(s) {
                    super::norm::softmax_row_in_place(row);
                }
            })
        };
        // SAFETY: every task writes all s x s values of its chunk (the softmax of each row).
        unsafe { par_uninit(n * h * s * s, s * s, fill) }
    })?;
    Ok(Some(Tensor::from_vec(probs, (n, h, s, s), qkv.device())?))
}

/// The weighted values `probs @ v` per image and head, written token-major (`n x s x e`, head
/// `j`'s `hd` features at columns `j hd..`), as `(probs @ v).transpose(1, 2).reshape(n, s, e)`
/// computes them; `None` where the candle operations must run.
pub(crate) fn attention_values(
    probs: &Tensor,
    qkv: &Tensor,
    shape: Heads,
) -> crate::Result<Option<Tensor>> {
    let Heads { n, s, h, hd } = shape;
    if !shape.fits(qkv)
        || !is_cpu_f32(probs)
        || probs.track_op()
        || probs.dims() != [n, h, s, s]
        || !probs.is_contiguous()
    {
        return Ok(None);
    }
    let (e, ld) = (shape.e(), 3 * shape.e());
    let out = with_cpu_f32(qkv, |src| {
        with_cpu_f32(probs, |p| {
            // each image's `s x e` block, written by its heads side by side (disjoint columns)
            let mut out = Vec::<f32>::with_capacity(n * s * e);
            let dst = Out(out.as_mut_ptr());
            (0..n * h).into_par_iter().for_each(|task| {
                let (i, j) = (task / h, task % h);
                // SAFETY: the product writes rows i s .. (i + 1) s, columns j hd .. (j + 1) hd
                // of the n s x e capacity (row stride e), which no other task writes; all
                // n s x e values are written once every task has run (the heads cover e).
                unsafe {
                    let c = dst.at(i * s * e + j * hd);
                    sgemm_raw(
                        (s, hd, s),
                        mat(&p[task * s * s..][..s * s], s),
                        mat(&src[shape.at(i, j, 2)..], ld),
                        c,
                        n * s * e - (i * s * e + j * hd),
                        e,
                        false,
                        Parallelism::None,
                    )
                };
            });
            // SAFETY: every one of the n s x e values was written above (see the tasks).
            unsafe { out.set_len(n * s * e) };
            out
        })
    })??;
    Ok(Some(Tensor::from_vec(out, (n, s, e), qkv.device())?))
}

/// The output pointer the tasks of [`attention_values`] write through, each its own columns.
#[derive(Clone, Copy)]
struct Out(*mut f32);

impl Out {
    /// The value `off` places on (a method, so that closures capture the `Sync` wrapper).
    ///
    /// # Safety
    /// `off` stays inside the allocation.
    unsafe fn at(self, off: usize) -> *mut f32 {
        // SAFETY: the caller's.
        unsafe { self.0.add(off) }
    }
}

// SAFETY: the tasks write disjoint parts of the output (see `attention_values`), which the
// function owns for the whole parallel loop.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Result;
    use candle_core::{Device, D};

    /// The kernel's output, which must exist for an untracked CPU tensor.
    fn taken(y: Result<Option<Tensor>>) -> Result<Tensor> {
        y?.ok_or_else(|| crate::Error::InvalidArgument("the attention kernel declined".into()))
    }

    fn bits(t: &Tensor) -> Result<Vec<u32>> {
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        Ok(v.iter().map(|x| x.to_bits()).collect())
    }

    /// Both kernels give the bits of candle's own chain (the copies, the affine scale, candle's
    /// matmul and softmax operations) on ViT-B's head size with 197 tokens (ragged register
    /// tiles), on ViT-B/32's 50 tokens, and on a few tokens (the gemm crate's small paths,
    /// where reading k^T through its strides gave other bits: checked).
    #[test]
    fn attention_is_the_candle_chain_bit_for_bit() -> Result<()> {
        for (seed, shape) in [
            Heads {
                n: 2,
                s: 197,
                h: 2,
                hd: 64,
            },
            Heads {
                n: 3,
                s: 5,
                h: 3,
                hd: 4,
            },
            Heads {
                n: 1,
                s: 50,
                h: 1,
                hd: 24,
            },
        ]
        .into_iter()
        .enumerate()
        {
            let Heads { n, s, h, hd } = shape;
            let e = h * hd;
            let mut r = crate::rng::Rng::new(seed as u64);
            let v: Vec<f32> = (0..n * s * 3 * e)
                .map(|_| (r.uniform() as f32 - 0.5) * 6.0)
                .collect();
            let qkv = Tensor::from_vec(v, (n * s, 3 * e), &Device::Cpu)?;
            let scale = 1.0 / (hd as f64).sqrt();
            let split = |part: usize| -> Result<Tensor> {
                let t = qkv.reshape((n, s, 3, h, hd))?.permute((2, 0, 3, 1, 4))?;
                Ok(t.get(part)?.contiguous()?)
            };
            let q = (split(0)? * scale)?;
            let scores = q.matmul(&split(1)?.t()?.contiguous()?)?;
            let max = scores.max_keepdim(D::Minus1)?;
            let ex = scores.broadcast_sub(&max)?.exp()?;
            let theirs = ex.broadcast_div(&ex.sum_keepdim(D::Minus1)?)?;
            let ours = taken(attention_probs(&qkv, shape, scale))?;
            assert_eq!(ours.dims(), [n, h, s, s]);
            assert_eq!(bits(&ours)?, bits(&theirs)?, "{shape:?}: probabilities");
            let theirs = theirs
                .matmul(&split(2)?)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((n, s, e))?;
            let ours = taken(attention_values(&ours, &qkv, shape))?;
            assert_eq!(ours.dims(), [n, s, e]);
            assert_eq!(bits(&ours)?, bits(&theirs)?, "{shape:?}: values");
        }
        Ok(())
    }

    /// A gradient to track, or a shape that is not the in-projection's, leaves the work to
    /// candle's operations.
    #[test]
    fn declines_what_it_cannot_compute() -> Result<()> {
        let shape = Heads {
            n: 1,
            s: 4,
            h: 2,
            hd: 3,
        };
        let var = candle_core::Var::zeros((4, 18), candle_core::DType::F32, &Device::Cpu)?;
        let tracked = (var.as_tensor() * 2.0)?;
        assert!(attention_probs(&tracked, shape, 1.0)?.is_none());
        let wrong = Tensor::zeros((4, 17), candle_core::DType::F32, &Device::Cpu)?;
        assert!(attention_probs(&wrong, shape, 1.0)?.is_none());
        let qkv = Tensor::zeros((4, 18), candle_core::DType::F32, &Device::Cpu)?;
        let probs = taken(attention_probs(&qkv, shape, 1.0))?;
        assert!(attention_values(&probs.t()?, &qkv, shape)?.is_none());
        Ok(())
    }
}
