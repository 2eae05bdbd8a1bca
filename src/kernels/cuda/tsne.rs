//! t-SNE's optimisation state on a CUDA GPU and one iteration of it, as launches of the kernels
//! in `kernels.cu`. The schedule (exaggeration, momentum, stopping rule) is the analysis's
//! (`analysis::embed::tsne`), which drives [`TsneGpu::iterate`].
//!
//! Why this shape: on a GPU the exact O(N^2) repulsion, fused into one kernel that streams the
//! float embedding through each thread, costs a few milliseconds per iteration at 70,000 points
//! and has none of Barnes-Hut's or the FFT grid's approximation error, while the sparse
//! attractive forces and the gradient-descent update are one thread per point. The embedding
//! stays on the GPU for the whole optimisation; each iteration brings back one number (the
//! gradient norm, for the stopping rule) and, when asked, the KL divergence.

use super::launch::{function, grid};
use crate::{Error, Result};
use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaSlice, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};

/// Elements per partial sum of the two-stage reductions.
const CHUNK: usize = 64;

/// Sums `x` (length `n`) into `out[0]` in a fixed order.
struct Reducer {
    partial: CudaSlice<f64>,
    parts: usize,
    partial_fn: CudaFunction,
    final_fn: CudaFunction,
}

impl Reducer {
    fn sum(
        &mut self,
        dev: &CudaDevice,
        x: &CudaSlice<f64>,
        n: usize,
        out: &mut CudaSlice<f64>,
    ) -> Result<()> {
        let stream = dev.cuda_stream();
        let (n32, chunk32, parts32) = (n as i32, CHUNK as i32, self.parts as i32);
        // SAFETY: `tsne_partial_sums(x, n, chunk, parts, partial)` reads `n` values of `x`
        // (the caller's buffer holds `n`) and writes `parts = ceil(n / CHUNK)` partial sums
        // into `partial`, allocated with `parts` elements; threads past `parts` return.
        // `tsne_final_sum(partial, parts, out)` reads those and writes `out[0]` (`out` holds
        // at least one). Argument types match the kernels' signatures.
        unsafe {
            stream
                .launch_builder(&self.partial_fn)
                .arg(x)
                .arg(&n32)
                .arg(&chunk32)
                .arg(&parts32)
                .arg(&mut self.partial)
                .launch(grid(self.parts))
                .w()?;
            stream
                .launch_builder(&self.final_fn)
                .arg(&self.partial)
                .arg(&parts32)
                .arg(out)
                .launch(grid(1))
                .w()?;
        }
        Ok(())
    }
}

/// The affinities (CSR, `n` rows), the embedding (`n x d`, f64 and an f32 copy for the
/// repulsion) and the optimiser's buffers, on the GPU.
pub(crate) struct TsneGpu {
    dev: CudaDevice,
    n: usize,
    d: usize,
    lr: f64,
    rep_fn: CudaFunction,
    step_fn: CudaFunction,
    reducer: Reducer,
    indptr: CudaSlice<i32>,
    indices: CudaSlice<i32>,
    p: CudaSlice<f64>,
    y: CudaSlice<f64>,
    y_next: CudaSlice<f64>,
    yf: CudaSlice<f32>,
    rep: CudaSlice<f32>,
    sum_q: CudaSlice<f64>,
    z: CudaSlice<f64>,
    update: CudaSlice<f64>,
    gains: CudaSlice<f64>,
    grad_sq: CudaSlice<f64>,
    kl_terms: CudaSlice<f64>,
    scalar: CudaSlice<f64>,
}

impl TsneGpu {
    /// Uploads the affinities `(indptr, indices, values)` of `n` points and the starting
    /// embedding `y0` (`n x d`, row-major); `lr` is the learning rate of every step.
    pub(crate) fn new(
        dev: &CudaDevice,
        (indptr, indices, values): (&[usize], &[usize], &[f64]),
        y0: &[f64],
        d: usize,
        lr: f64,
    ) -> Result<TsneGpu> {
        let n = indptr.len().saturating_sub(1);
        if n >= i32::MAX as usize || indices.len() >= i32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "t-SNE on the GPU handles fewer than 2^31 points and affinities; got {n} points \
                 and {} affinities: use the CPU (Device::Cpu)",
                indices.len()
            )));
        }
        if y0.len() != n * d
            || indices.len() != values.len()
            || indptr.last() != Some(&indices.len())
        {
            return Err(Error::InvalidArgument(
                "internal: t-SNE's affinities and embedding do not fit together".into(),
            ));
        }
        if let Some(bad) = indices.iter().find(|&&j| j >= n) {
            return Err(Error::InvalidArgument(format!(
                "internal: t-SNE affinity to point {bad} of {n}"
            )));
        }
        let func = |name: &str| function(dev, name);
        let stream = dev.cuda_stream();
        let parts = n.div_ceil(CHUNK);
        let reducer = Reducer {
            partial: stream.alloc_zeros::<f64>(parts.max(1)).w()?,
            parts,
            partial_fn: func("tsne_partial_sums")?,
            final_fn: func("tsne_final_sum")?,
        };
        let to_i32 = |v: &[usize]| -> Vec<i32> { v.iter().map(|&x| x as i32).collect() };
        let yf: Vec<f32> = y0.iter().map(|&v| v as f32).collect();
        Ok(TsneGpu {
            dev: dev.clone(),
            n,
            d,
            lr,
            rep_fn: func("tsne_repulsion")?,
            step_fn: func("tsne_step")?,
            reducer,
            indptr: stream.clone_htod(&to_i32(indptr)).w()?,
            indices: stream.clone_htod(&to_i32(indices)).w()?,
            p: stream.clone_htod(values).w()?,
            y: stream.clone_htod(y0).w()?,
            y_next: stream.alloc_zeros::<f64>(n * d).w()?,
            yf: stream.clone_htod(&yf).w()?,
            rep: stream.alloc_zeros::<f32>(n * d).w()?,
            sum_q: stream.alloc_zeros::<f64>(n).w()?,
            z: stream.alloc_zeros::<f64>(1).w()?,
            update: stream.alloc_zeros::<f64>(n * d).w()?,
            gains: stream.clone_htod(&vec![1.0f64; n * d]).w()?,
            grad_sq: stream.alloc_zeros::<f64>(n).w()?,
            kl_terms: stream.alloc_zeros::<f64>(n).w()?,
            scalar: stream.alloc_zeros::<f64>(1).w()?,
        })
    }

    /// One iteration: repulsion, Z, step; `want_kl` also reduces the KL terms. Returns the
    /// gradient's squared norm and the KL when asked. With `advance` false the points do not
    /// move (the closing KL-only evaluation).
    pub(crate) fn iterate(
        &mut self,
        exag: f64,
        momentum: f64,
        want_kl: bool,
        advance: bool,
    ) -> Result<(f64, Option<f64>)> {
        let stream = self.dev.cuda_stream();
        let (n32, d32) = (self.n as i32, self.d as i32);
        let kl_flag = i32::from(want_kl);
        // SAFETY: `tsne_repulsion(yf, n, d, rep, sum_q)`: each thread `i < n` reads the `n x d`
        // float embedding and writes row `i` of `rep` (`n x d`) and `sum_q[i]` (`n`); every
        // buffer was allocated with those lengths in `new`. Types match `kernels.cu`.
        unsafe {
            stream
                .launch_builder(&self.rep_fn)
                .arg(&self.yf)
                .arg(&n32)
                .arg(&d32)
                .arg(&mut self.rep)
                .arg(&mut self.sum_q)
                .launch(grid(self.n))
                .w()?;
        }
        self.reducer
            .sum(&self.dev, &self.sum_q, self.n, &mut self.z)?;
        // the closing KL-only evaluation must not move the points: a step with momentum and
        // learning rate 0 writes the same positions into the spare buffer, which is not kept
        // (it clears the momentum buffer, no longer used)
        let (m, l) = if advance {
            (momentum, self.lr)
        } else {
            (0.0, 0.0)
        };
        // SAFETY: `tsne_step` reads the CSR affinities (`indptr` n + 1, `indices` and `p` of
        // equal length, every index < n: checked in `new`), `y` and `rep` (`n x d`) and `z`
        // (1), and thread `i < n` writes row `i` of `update`, `gains`, `y_next`, `yf` (`n x d`)
        // and `grad_sq[i]`, `kl_terms[i]` (`n`). Types match `kernels.cu`.
        unsafe {
            stream
                .launch_builder(&self.step_fn)
                .arg(&self.indptr)
                .arg(&self.indices)
                .arg(&self.p)
                .arg(&self.y)
                .arg(&n32)
                .arg(&d32)
                .arg(&self.rep)
                .arg(&self.z)
                .arg(&exag)
                .arg(&m)
                .arg(&l)
                .arg(&kl_flag)
                .arg(&mut self.update)
                .arg(&mut self.gains)
                .arg(&mut self.y_next)
                .arg(&mut self.yf)
                .arg(&mut self.grad_sq)
                .arg(&mut self.kl_terms)
                .launch(grid(self.n))
                .w()?;
        }
        self.reducer
            .sum(&self.dev, &self.grad_sq, self.n, &mut self.scalar)?;
        let g2 = stream.clone_dtoh(&self.scalar).w()?[0];
        let kl_now = if want_kl {
            self.reducer
                .sum(&self.dev, &self.kl_terms, self.n, &mut self.scalar)?;
            Some(stream.clone_dtoh(&self.scalar).w()?[0])
        } else {
            None
        };
        if advance {
            std::mem::swap(&mut self.y, &mut self.y_next);
        }
        Ok((g2, kl_now))
    }

    /// The current embedding, `n x d` row-major.
    pub(crate) fn embedding(&self) -> Result<Vec<f64>> {
        Ok(self.dev.cuda_stream().clone_dtoh(&self.y).w()?)
    }
}
