//! # neuroscope
//!
//! Look inside vision networks from Rust and from evcxr Jupyter notebooks: load data, run a
//! network, record what its layers compute, analyse it, and show it, reproducibly to the byte.
//!
//! Start with the [`prelude`] (`use neuroscope::prelude::*;`): the ~30 names a notebook needs.
//!
//! ## Module map
//!
//! The folders follow the pipeline, each stage using only those above it; the compute kernels
//! are a floor of their own beneath `models` and `analysis`.
//!
//! | step | module | folder |
//! |---|---|---|
//! | images and datasets, transforms, batching, downloads | [`data`] | `src/data/` |
//! | file formats: `.npy`, IDX, safetensors, atomic writes | [`io`] | `src/io/` |
//! | architectures (PyTorch names), weights, summaries | [`models`] | `src/models/` |
//! | recording layer activations, in memory or to disk | [`record`] | `src/record/` |
//! | PCA, reductions, t-SNE/UMAP, neighbours, clustering, scores, RSA/CKA | [`analysis`] | `src/analysis/` |
//! | figures (SVG/PNG, interactive scatter) | [`plot`] | `src/plot/` |
//! | HTML reports and tables, inline in notebooks | [`display`] | `src/display/` |
//! | training, predictions, checkpoints | [`train`] | `src/train/` |
//! | activation maximisation (feature visualisation) | [`featvis`] | `src/featvis/` |
//! | attribution maps: saliency, SmoothGrad, integrated gradients, Grad-CAM, occlusion | [`attribution`] | `src/attribution/` |
//! | the guided tour that `neuroscope tour` writes | [`tour`] | `src/tour.rs` |
//! | the ~30 names a notebook needs | [`prelude`] | `src/prelude.rs` |
//! | where tensors live (CPU, CUDA, Metal), the host, memory | [`device`] | `src/device.rs` |
//! | progress lines and stop requests | [`progress`] | `src/progress.rs` |
//! | seeded randomness that never changes between versions | [`rng`] | `src/rng.rs` |
//! | CPU, SIMD and CUDA kernels; all `unsafe` code (crate-private) | `kernels` | `src/kernels/` |
//! | the command-line program, one file per command family | | `src/bin/neuroscope/` |
//!
//! ```
//! use neuroscope::data::{embedded, transforms::{Compose, Normalize}, batches, Dataset};
//! let ds = embedded::fashion_mnist().subset(128, 0)?;            // 128 seeded random images
//! let tf = Compose::new().resize(224, 224).gray_to_rgb().normalize(Normalize::half());
//! let device = neuroscope::device::best();
//! for batch in batches(&ds, &tf, 64, &device) {
//!     let batch = batch?;
//!     assert_eq!(batch.images.dims(), &[64, 3, 224, 224]);
//! }
//! # Ok::<(), neuroscope::Error>(())
//! ```

#![warn(missing_docs)]
// Every `unsafe` block lives in `kernels`, which allows it for itself.
#![deny(unsafe_code)]
// `!(x > 0.0)` is how this crate rejects NaN together with non-positive values; the
// `partial_cmp` spelling clippy suggests hides that.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// Numeric loops index several arrays in lockstep (`a[k] += m * b[k]` over k < d); iterator
// chains of three zips read worse and change nothing in the generated code.
#![allow(clippy::needless_range_loop)]

/// `FromStr` through a type's own `parse(&str)`, so that its names and its error message (which
/// lists the valid names) are the same either way: `"umap".parse::<Reducer>()`, clap's
/// `value_parser`, `Preset::parse("lucent")`.
macro_rules! from_str_by_parse {
    ($($t:ty),+ $(,)?) => {$(
        impl std::str::FromStr for $t {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                <$t>::parse(s)
            }
        }
    )+};
}

pub mod analysis;
pub mod attribution;
pub mod data;
pub mod device;
pub mod display;
mod error;
pub mod featvis;
pub mod io;
mod kernels;
pub mod models;
pub mod plot;
pub mod prelude;
pub mod progress;
pub mod record;
pub mod rng;
pub mod tour;
pub mod train;

pub use error::{Error, Result, WeightsMismatch};

/// This crate's version. In an evcxr notebook `env!("CARGO_PKG_VERSION")` is the notebook's
/// own wrapper crate's version, not neuroscope's: print this instead.
///
/// ```
/// assert_eq!(neuroscope::VERSION.split('.').count(), 3);
/// ```
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The tensor library neuroscope is built on, re-exported so that a notebook uses the same
/// version without its own `:dep` line (`neuroscope::candle_core::Tensor`).
pub use candle_core;
/// The array library of recordings and analyses, re-exported for the same reason.
pub use ndarray;
