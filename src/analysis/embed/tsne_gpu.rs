//! t-SNE's optimisation on a CUDA GPU (the `cuda` feature), chosen with [`Tsne::device`].
//!
//! Why this shape: on a GPU the exact O(N^2) repulsion, fused into one kernel that streams the
//! float embedding through each thread, costs a few milliseconds per iteration at 70,000 points
//! and has none of Barnes-Hut's or the FFT grid's approximation error, while the sparse attractive
//! forces and the gradient-descent update are one thread per point. The embedding stays on the
//! GPU for the whole optimisation; each iteration brings back one number (the gradient norm, for
//! the stopping rule) and, every 50 iterations, the KL divergence. The nearest neighbours for the
//! affinities come from the GPU too (exact, `analysis::cuda::knn`); the perplexity search runs
//! on the CPU as for the CPU solver.
//!
//! The kernels are in `analysis/cuda_kernels.cu` (see [`crate::analysis::cuda`]).

use super::{Affinities, FittedTsne, Tsne};
use crate::analysis::cuda::{function, grid};
use crate::{Error, Result};
use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaSlice, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use ndarray::Array2;

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

/// The GPU counterpart of the CPU solver's `optimize`: same schedule (exaggeration, momentum,
/// gains, learning rate, stopping rule, KL every `report_every` iterations, stop requests).
pub(super) fn optimize(
    dev: &CudaDevice,
    params: &Tsne,
    p: &Affinities,
    y0: Array2<f64>,
    lr: f64,
) -> Result<FittedTsne> {
    let (n, d) = y0.dim();
    if n >= i32::MAX as usize || p.indices.len() >= i32::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "t-SNE on the GPU handles fewer than 2^31 points and affinities; got {n} points and {} \
             affinities: use the CPU (Device::Cpu)",
            p.indices.len()
        )));
    }
    let func = |name: &str| function(dev, name);
    let (rep_fn, step_fn) = (func("tsne_repulsion")?, func("tsne_step")?);
    let stream = dev.cuda_stream();
    let parts = n.div_ceil(CHUNK);
    let mut reducer = Reducer {
        partial: stream.alloc_zeros::<f64>(parts).w()?,
        parts,
        partial_fn: func("tsne_partial_sums")?,
        final_fn: func("tsne_final_sum")?,
    };

    let indptr: Vec<i32> = p.indptr.iter().map(|&v| v as i32).collect();
    let indices: Vec<i32> = p.indices.iter().map(|&v| v as i32).collect();
    let y_host = y0.as_standard_layout().into_owned();
    let y_slice = y_host
        .as_slice()
        .ok_or_else(|| Error::InvalidArgument("internal: t-SNE layout".into()))?;
    let yf_host: Vec<f32> = y_slice.iter().map(|&v| v as f32).collect();
    let d_indptr = stream.clone_htod(&indptr).w()?;
    let d_indices = stream.clone_htod(&indices).w()?;
    let d_p = stream.clone_htod(&p.values).w()?;
    let mut y = stream.clone_htod(y_slice).w()?;
    let mut y_next = stream.alloc_zeros::<f64>(n * d).w()?;
    let mut yf = stream.clone_htod(&yf_host).w()?;
    let mut rep = stream.alloc_zeros::<f32>(n * d).w()?;
    let mut sum_q = stream.alloc_zeros::<f64>(n).w()?;
    let mut z = stream.alloc_zeros::<f64>(1).w()?;
    let mut update = stream.alloc_zeros::<f64>(n * d).w()?;
    let mut gains = stream.clone_htod(&vec![1.0f64; n * d]).w()?;
    let mut grad_sq = stream.alloc_zeros::<f64>(n).w()?;
    let mut kl_terms = stream.alloc_zeros::<f64>(n).w()?;
    let mut scalar = stream.alloc_zeros::<f64>(1).w()?;
    let (n32, d32) = (n as i32, d as i32);

    // One iteration: repulsion, Z, step; `want_kl` also reduces the KL terms. Returns the
    // gradient's squared norm and the KL when asked.
    let iterate =
        |exag: f64, momentum: f64, want_kl: bool, advance: bool| -> Result<(f64, Option<f64>)> {
            let kl_flag = i32::from(want_kl);
            unsafe {
                stream
                    .launch_builder(&rep_fn)
                    .arg(&yf)
                    .arg(&n32)
                    .arg(&d32)
                    .arg(&mut rep)
                    .arg(&mut sum_q)
                    .launch(grid(n))
                    .w()?;
            }
            reducer.sum(dev, &sum_q, n, &mut z)?;
            // the closing KL-only evaluation must not move the points: a step with momentum and
            // learning rate 0 writes the same positions into the spare buffer, which is not kept
            // (it clears the momentum buffer, no longer used)
            let (m, l) = if advance { (momentum, lr) } else { (0.0, 0.0) };
            unsafe {
                stream
                    .launch_builder(&step_fn)
                    .arg(&d_indptr)
                    .arg(&d_indices)
                    .arg(&d_p)
                    .arg(&y)
                    .arg(&n32)
                    .arg(&d32)
                    .arg(&rep)
                    .arg(&z)
                    .arg(&exag)
                    .arg(&m)
                    .arg(&l)
                    .arg(&kl_flag)
                    .arg(&mut update)
                    .arg(&mut gains)
                    .arg(&mut y_next)
                    .arg(&mut yf)
                    .arg(&mut grad_sq)
                    .arg(&mut kl_terms)
                    .launch(grid(n))
                    .w()?;
            }
            reducer.sum(dev, &grad_sq, n, &mut scalar)?;
            let g2 = stream.clone_dtoh(&scalar).w()?[0];
            let kl_now = if want_kl {
                reducer.sum(dev, &kl_terms, n, &mut scalar)?;
                Some(stream.clone_dtoh(&scalar).w()?[0])
            } else {
                None
            };
            if advance {
                std::mem::swap(&mut y, &mut y_next);
            }
            Ok((g2, kl_now))
        };
    let run = super::run_schedule(params, "t-SNE (GPU)", iterate)?;
    let out = stream.clone_dtoh(&y).w()?;
    let embedding = Array2::from_shape_vec((n, d), out)
        .map_err(|e| Error::InvalidArgument(format!("internal: t-SNE result shape: {e}")))?;
    Ok(FittedTsne {
        embedding,
        kl_divergence: run.kl,
        kl_history: run.history,
        n_iter: run.n_iter,
        interrupted: run.interrupted,
        neighbor_search: crate::analysis::neighbors::NeighborSearch::Exact, // set by `fit`
    })
}
