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
mod pow;
mod tsne;
mod umap;

pub use tsne::{FittedTsne, Tsne, TsneInit, TsneMethod};
pub use umap::{find_ab, FittedUmap, Umap, UmapMetric};

use super::{to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};

/// The inputs of a `transform` (placing new samples into an embedding of `n_ref` points) as
/// f64, checked: finite, the reference with the fitted row count, the new samples with the
/// reference's columns. `method` names the embedding in the messages.
fn transform_inputs<S, T, S2, T2>(
    method: &str,
    n_ref: usize,
    reference: &ArrayBase<S, Ix2>,
    new: &ArrayBase<S2, Ix2>,
) -> Result<(Array2<f64>, Array2<f64>)>
where
    S: Data<Elem = T>,
    T: Scalar,
    S2: Data<Elem = T2>,
    T2: Scalar,
{
    let reference = to_f64_checked(reference, &format!("{method} reference data"), 2)?;
    let new = to_f64_checked(new, &format!("{method} new data"), 1)?;
    if reference.nrows() != n_ref {
        return Err(Error::Shape {
            what: format!("{method} reference data (the samples the embedding was fitted on)"),
            expected: format!("{n_ref} rows"),
            got: format!("{} rows", reference.nrows()),
        });
    }
    if new.ncols() != reference.ncols() {
        return Err(Error::Shape {
            what: format!("{method} new data"),
            expected: format!("{} columns, as the reference data", reference.ncols()),
            got: format!("{} columns", new.ncols()),
        });
    }
    Ok((reference, new))
}
