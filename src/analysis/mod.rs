//! Analysis of recorded activations: PCA and dimensionality, RSA and CKA, clustering, scores and
//! other reductions.
//!
//! Every function takes an `ndarray` matrix with one row per sample (stimulus) and one column per
//! feature (unit), in `f32` or `f64`; results are `f64`, because the statistics the workflows compute
//! (variance ratios, correlations of correlations) lose digits in single precision. Names,
//! parameters and defaults follow scikit-learn and SciPy, so a notebook ported from Python reads
//! the same, and the parity tests (`tests/analysis.rs`) check the numbers against them.
//!
//! | question | module |
//! |---|---|
//! | how many dimensions does a layer use? | [`pca`], [`dimensionality`] |
//! | which stimuli does a layer treat alike, and which layers agree? | [`rsa`] |
//! | does a model RDM explain the data, beyond noise? (rsatoolbox) | [`rsa`] |
//! | how alike are two layers or two networks? (CKA) | [`cka`] |
//! | where do the classes become linearly separable? | [`probe`] |
//! | which groups form? | [`cluster`] |
//! | do the groups match the labels? is an embedding faithful? | [`metrics`] |
//! | other linear and non-linear maps | [`reduce`] |
//! | all of it chained over a recording | [`Analysis`] |
//!
//! Dense linear algebra (Gram matrices, symmetric eigendecompositions, SVD, QR) runs on
//! [`faer`]: pure Rust, so nothing to install, multi-threaded through rayon, and fast enough that
//! PCA of a 1000 x 9216 matrix beats scikit-learn on OpenBLAS (see `BENCHMARKS.md`).
//!
//! ```
//! use ndarray::array;
//! use neuroscope::analysis::pca::Pca;
//! let x = array![[1.0f32, 2.0], [3.0, 4.1], [5.0, 6.3], [7.0, 7.9]];
//! let pca = Pca::new().fit(&x)?;
//! assert!(pca.explained_variance_ratio()[0] > 0.99);
//! # Ok::<(), neuroscope::Error>(())
//! ```

pub mod cka;
pub mod cluster;
pub mod dimensionality;
pub mod embed;
pub(crate) mod linalg;
pub mod metrics;
pub mod neighbors;
mod params;
pub mod pca;
mod pipeline;
pub mod probe;
pub mod reduce;
mod reducer;
pub mod rsa;

#[doc(hidden)]
pub use pipeline::{Analysis, Clustering, Embedding};
pub use reducer::{FittedReducer, Reducer, REDUCERS};

use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};

/// The element types the analysis functions accept: `f32` (what recordings hold) and `f64`.
///
/// ```
/// use neuroscope::analysis::Scalar;
/// assert_eq!(Scalar::to_f64(1.5f32), 1.5);
/// ```
pub trait Scalar: Copy + Send + Sync + 'static {
    /// Widen to `f64`.
    fn to_f64(self) -> f64;
    /// Whether this is single precision: the randomized solvers (PCA's and TruncatedSVD's) then
    /// compute in float32, as scikit-learn does with float32 data.
    const SINGLE: bool = false;
}
impl Scalar for f32 {
    const SINGLE: bool = true;
    fn to_f64(self) -> f64 {
        self as f64
    }
}
impl Scalar for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}

/// Copy a matrix into a row-major `f64` array, refusing NaN and infinite values and matrices
/// smaller than `min_rows` x 1.
///
/// Every analysis entry point calls this first so that bad input fails with a message naming the
/// offending row and column rather than with a NaN result several steps later.
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::to_f64_checked;
/// assert!(to_f64_checked(&array![[1.0f32, f32::NAN]], "X", 1).is_err());
/// assert_eq!(to_f64_checked(&array![[1.0f32, 2.0]], "X", 1)?.dim(), (1, 2));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn to_f64_checked<S, T>(
    x: &ArrayBase<S, Ix2>,
    what: &str,
    min_rows: usize,
) -> Result<Array2<f64>>
where
    S: Data<Elem = T>,
    T: Scalar,
{
    let (n, p) = entry(x.dim(), what, min_rows)?;
    let out: Array2<f64> = match x.as_slice() {
        // contiguous row-major input (what recordings and .npy files give): convert in parallel
        Some(src) => {
            use rayon::prelude::*;
            let v: Vec<f64> = src
                .par_iter()
                .with_min_len(1 << 14)
                .map(|v| v.to_f64())
                .collect();
            Array2::from_shape_vec((n, p), v).expect("shape matches")
        }
        // strided or column-major views (a transpose, a slice): gather in row-major order
        None => Array2::from_shape_fn((n, p), |(i, j)| x[[i, j]].to_f64()),
    };
    let Some(values) = out.as_slice() else {
        return Err(Error::InvalidArgument(format!(
            "internal: the widened {what} is not in row-major order"
        )));
    };
    check_finite(values, what, p)?;
    Ok(out)
}

/// Refuse a NaN or infinite value of a row-major matrix `p` wide, checked on every thread (a
/// sequential search was a tenth of k-means on 10,000 x 50 points); where there is one, the
/// first in row order is named, so the message does not depend on the threads.
fn check_finite<T: Scalar>(values: &[T], what: &str, p: usize) -> Result<()> {
    use rayon::prelude::*;
    let finite = values
        .par_chunks(1 << 14)
        .all(|c| c.iter().all(|v| v.to_f64().is_finite()));
    match (!finite)
        .then(|| values.iter().position(|v| !v.to_f64().is_finite()))
        .flatten()
    {
        Some(k) => Err(non_finite(what, k, p, values[k].to_f64())),
        None => Ok(()),
    }
}

/// What every analysis does first: keep freed blocks (its large temporaries, f64 copies and
/// Gram matrices, are then reused rather than faulted in afresh, as in network passes:
/// `device::freed_memory`) and check the shape.
fn entry((n, p): (usize, usize), what: &str, min_rows: usize) -> Result<(usize, usize)> {
    crate::kernels::keep_freed_memory();
    check_rows(n, p, what, min_rows)?;
    Ok((n, p))
}

/// The shape check of every analysis entry: at least `min_rows` samples and one feature.
pub(crate) fn check_rows(n: usize, p: usize, what: &str, min_rows: usize) -> Result<()> {
    if n < min_rows || p == 0 {
        return Err(Error::Shape {
            what: what.to_string(),
            expected: format!("at least {min_rows} rows (samples) and 1 column (feature)"),
            got: format!("{n} x {p}"),
        });
    }
    Ok(())
}

/// The error for the first non-finite value (flat row-major index `k` of a matrix `p` wide).
fn non_finite(what: &str, k: usize, p: usize, v: f64) -> Error {
    let (i, j) = (k / p, k % p);
    Error::InvalidArgument(format!(
        "{what} holds a non-finite value ({v}) at row {i}, column {j}; remove or impute \
         NaN/inf values first (recordings of diverged networks can hold them)"
    ))
}

/// Float32 data centred for the randomized solvers, which keep float32 data in float32 as
/// scikit-learn does: each difference from the float64 mean rounded once to float32, and the
/// data never widened as a whole (widening 1,000 x 9,216 activations took 22-45 ms, a quarter
/// to a half of their float32 randomized PCA).
pub(crate) struct Centered32 {
    /// `x - mean`, row-major, each value rounded once from the exact float64 difference.
    pub(crate) values: Vec<f32>,
    /// Column means, the same bits as [`column_means`] of the widened data.
    pub(crate) mean: Vec<f64>,
    /// Sum of the squared float64 differences (each row's in eight fixed lanes, then the rows
    /// in order: no sum depends on the thread count).
    pub(crate) total_ss: f64,
}

/// [`to_f64_checked`]'s checks, then the centred data in single precision (see [`Centered32`]).
pub(crate) fn centered_f32_checked<S, T>(
    x: &ArrayBase<S, Ix2>,
    what: &str,
    min_rows: usize,
) -> Result<Centered32>
where
    S: Data<Elem = T>,
    T: Scalar,
{
    use rayon::prelude::*;
    let (n, p) = entry(x.dim(), what, min_rows)?;
    let x = x.as_standard_layout();
    let Some(src) = x.as_slice() else {
        return Err(Error::InvalidArgument(format!(
            "internal: the {what} is not in row-major order"
        )));
    };
    check_finite(src, what, p)?;
    // each column's sum in row order, as column_means adds them, a block of columns per task
    const COLS: usize = 256;
    let mut mean = vec![0.0f64; p];
    mean.par_chunks_mut(COLS).enumerate().for_each(|(b, m)| {
        let cols = b * COLS..b * COLS + m.len();
        for row in src.chunks_exact(p) {
            for (a, v) in m.iter_mut().zip(&row[cols.clone()]) {
                *a += v.to_f64();
            }
        }
        m.iter_mut().for_each(|a| *a /= n as f64);
    });
    let mut values = vec![0f32; n * p];
    let mut row_ss = vec![0.0f64; n];
    values
        .par_chunks_mut(p)
        .zip(src.par_chunks(p))
        .zip(row_ss.par_iter_mut())
        .for_each(|((out, row), ss)| {
            let mut lanes = [0.0f64; 8];
            for (j, ((o, v), m)) in out.iter_mut().zip(row).zip(&mean).enumerate() {
                let d = v.to_f64() - m;
                lanes[j % 8] += d * d;
                *o = d as f32;
            }
            *ss = lanes.iter().sum();
        });
    let total_ss = row_ss.iter().sum();
    Ok(Centered32 {
        values,
        mean,
        total_ss,
    })
}

/// Two matrices over the same samples (same number of rows), both checked and widened.
pub(crate) fn paired<S1, S2, T1, T2>(
    x: &ArrayBase<S1, Ix2>,
    y: &ArrayBase<S2, Ix2>,
    what_x: &str,
    what_y: &str,
    min_rows: usize,
) -> Result<(Array2<f64>, Array2<f64>)>
where
    S1: Data<Elem = T1>,
    S2: Data<Elem = T2>,
    T1: Scalar,
    T2: Scalar,
{
    let x = to_f64_checked(x, what_x, min_rows)?;
    let y = to_f64_checked(y, what_y, min_rows)?;
    if x.nrows() != y.nrows() {
        return Err(Error::Shape {
            what: what_y.into(),
            expected: format!("{} rows (the same samples as the {what_x})", x.nrows()),
            got: format!("{} rows", y.nrows()),
        });
    }
    Ok((x, y))
}

/// Refuse algorithms that hold an `n x n` matrix when it would not fit comfortably in memory
/// (default limit 20,000 samples = 3.2 GB of doubles; `NEUROSCOPE_MAX_DENSE` changes it), with
/// a message that says what to do instead of letting the allocation abort the notebook kernel.
///
/// ```
/// assert!(neuroscope::analysis::check_dense(1000, "HDBSCAN").is_ok());
/// let e = neuroscope::analysis::check_dense(1_000_000, "HDBSCAN").unwrap_err().to_string();
/// assert!(e.contains("NEUROSCOPE_MAX_DENSE"));
/// ```
pub fn check_dense(n: usize, what: &str) -> Result<()> {
    let limit = std::env::var("NEUROSCOPE_MAX_DENSE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(20_000);
    if n > limit {
        return Err(Error::InvalidArgument(format!(
            "{what} keeps an {n} x {n} distance matrix ({:.1} GB); that is above the limit of {limit} samples. \
             Use a seeded subset (Dataset::subset), reduce first (PCA), pick a method without the \
             matrix (DBSCAN, k-means, UMAP), or raise NEUROSCOPE_MAX_DENSE if the memory is there",
            (n as f64) * (n as f64) * 8.0 / 1e9
        )));
    }
    Ok(())
}

/// Check that a label vector has `n` entries.
pub(crate) fn check_len(what: &str, got: usize, n: usize) -> Result<()> {
    if got != n {
        return Err(Error::Shape {
            what: what.into(),
            expected: format!("{n} entries (one per sample)"),
            got: format!("{got}"),
        });
    }
    Ok(())
}

/// Column means of a row-major matrix.
pub(crate) fn column_means(x: &Array2<f64>) -> Vec<f64> {
    let (n, p) = x.dim();
    let mut m = vec![0.0; p];
    for row in x.rows() {
        for (a, v) in m.iter_mut().zip(row.iter()) {
            *a += v;
        }
    }
    m.iter_mut().for_each(|a| *a /= n as f64);
    m
}

/// Subtract column means in place; returns the means.
pub(crate) fn center_columns(x: &mut Array2<f64>) -> Vec<f64> {
    let m = column_means(x);
    for mut row in x.rows_mut() {
        for (v, a) in row.iter_mut().zip(m.iter()) {
            *v -= a;
        }
    }
    m
}
