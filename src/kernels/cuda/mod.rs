//! neuroscope's own CUDA kernels (the `cuda` feature) and their launch code: the GPU half of
//! exact nearest neighbours and t-SNE's optimisation (`tsne.rs`). The analyses that use them
//! (`analysis::neighbors`, `analysis::embed::tsne`) hold no GPU code of their own.
//!
//! Why own kernels: candle offers the matrix product (cuBLAS) but no top-k selection and no
//! fused pairwise sums, and building those from candle's element-wise operations would write an
//! `N x N` matrix several times per t-SNE iteration (tens of gigabytes at 70,000 points). The
//! kernels (`kernels.cu`) are compiled once per process by NVRTC, which a `cuda` build of
//! candle already links, so nothing beyond candle's own requirements is needed to build.

#[cfg(test)]
pub(crate) mod emulation;
#[cfg(feature = "cuda")]
mod launch;
#[cfg(feature = "cuda")]
pub(crate) mod tsne;

#[cfg(feature = "cuda")]
pub(crate) use launch::{knn_candidates, tf32_products};
