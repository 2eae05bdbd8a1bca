//! t-SNE's optimisation on a CUDA GPU (the `cuda` feature), chosen with [`Tsne::device`]: the
//! CPU solver's schedule driving the GPU state of `kernels::cuda::tsne` (exact repulsion, one
//! thread per point; see there). The nearest neighbours for the affinities come from the GPU
//! too (exact, through `analysis::neighbors`); the perplexity search runs on the CPU as for
//! the CPU solver.

use super::{Affinities, FittedTsne, Tsne};
use crate::kernels::cuda::tsne::TsneGpu;
use crate::{Error, Result};
use candle_core::cuda_backend::CudaDevice;
use ndarray::Array2;

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
    let y_host = y0.as_standard_layout().into_owned();
    let y_slice = y_host
        .as_slice()
        .ok_or_else(|| Error::InvalidArgument("internal: t-SNE layout".into()))?;
    let mut gpu = TsneGpu::new(dev, (&p.indptr, &p.indices, &p.values), y_slice, d, lr)?;
    let iterate = |exag: f64, momentum: f64, want_kl: bool, advance: bool| {
        gpu.iterate(exag, momentum, want_kl, advance)
    };
    let run = super::run_schedule(params, "t-SNE (GPU)", iterate)?;
    let embedding = Array2::from_shape_vec((n, d), gpu.embedding()?)
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
