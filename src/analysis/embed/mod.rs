//! Non-linear embeddings for looking at representations: t-SNE and UMAP, seeded and
//! reproducible at any thread count.
//!
//! ```
//! use ndarray::Array2;
//! use neuroscope::analysis::{embed::{Tsne, Umap}, metrics};
//! let mut r = neuroscope::rng::Rng::new(0);
//! let x = Array2::from_shape_fn((90, 8), |(i, _)| (i / 30) as f64 * 6.0 + r.normal());
//! let labels: Vec<usize> = (0..90).map(|i| i / 30).collect();
//! let t = Tsne::new().perplexity(15.0).seed(0).fit(&x)?; // 1,000 iterations: converged
//! assert!(metrics::knn_accuracy(t.embedding(), &labels, 5)? > 0.95);
//! # Ok::<(), neuroscope::Error>(())
//! ```

mod fft;
mod tsne;
mod umap;

pub use tsne::{FittedTsne, Tsne, TsneInit, TsneMethod};
pub use umap::{find_ab, FittedUmap, Umap, UmapMetric};
