//! # neuroscope
//!
//! Look inside vision networks from Rust and from evcxr Jupyter notebooks: load data, run a
//! network, record what its layers compute, analyse it, and show it, reproducibly to the byte.
//!
//! The modules follow the pipeline:
//!
//! | step | module |
//! |---|---|
//! | images and datasets, transforms, batching | [`data`] |
//! | training, predictions, checkpoints | [`train`] |
//! | PCA, RSA/CKA, clustering, scores, reductions | [`analysis`] |
//! | where tensors live (CPU, CUDA, Metal) | [`device`] |
//! | seeded randomness that never changes between versions | [`rng`] |
//! | figures (SVG/PNG, interactive scatter), inline in notebooks | [`plot`] |
//! | HTML reports and tables, inline in notebooks | [`display`] |
//! | the guided tour that `neuroscope tour` writes | [`tour`] |
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
// `!(x > 0.0)` is how this crate rejects NaN together with non-positive values; the
// `partial_cmp` spelling clippy suggests hides that.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// Numeric loops index several arrays in lockstep (`a[k] += m * b[k]` over k < d); iterator
// chains of three zips read worse and change nothing in the generated code.
#![allow(clippy::needless_range_loop)]

pub mod analysis;
pub mod data;
pub mod device;
pub mod display;
mod error;
pub mod featvis;
pub mod models;
pub mod plot;
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
