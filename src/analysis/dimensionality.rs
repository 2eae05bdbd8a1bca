//! How many dimensions does a representation use? Three answers that disagree in instructive
//! ways: PCA components to a variance share (linear, global), the participation ratio (linear,
//! smooth, no threshold) and the TwoNN estimator (non-linear, local).
//!
//! ```
//! use ndarray::Array2;
//! use neuroscope::analysis::dimensionality::{participation_ratio, two_nn, components_for};
//! use neuroscope::rng::Rng;
//! // 400 points on a 2-D plane embedded in 10-D
//! let mut rng = Rng::new(1);
//! let z = Array2::from_shape_fn((400, 2), |_| rng.uniform());
//! let x = Array2::from_shape_fn((400, 10), |(i, j)| z[[i, 0]] * (j as f64 + 1.0) + z[[i, 1]] * ((j * j) as f64 * 0.1));
//! assert_eq!(components_for(&x, 0.99)?, 2);
//! assert!(participation_ratio(&x)? < 2.0);
//! let d = two_nn(&x)?;
//! assert!((d - 2.0).abs() < 0.3, "{d}");
//! # Ok::<(), neuroscope::Error>(())
//! ```

use super::{neighbors, pca::Pca, to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Ix2};

/// Number of principal components needed for the cumulative explained variance to exceed
/// `share` (scikit-learn's `PCA(n_components=share)` count).
pub fn components_for<S: Data<Elem = T>, T: Scalar>(
    x: &ArrayBase<S, Ix2>,
    share: f64,
) -> Result<usize> {
    if !(share > 0.0 && share < 1.0) {
        return Err(Error::InvalidArgument(format!(
            "variance share {share} must be strictly between 0 and 1"
        )));
    }
    let p = Pca::new().fit(x)?;
    Ok(p.n_components_for(share).unwrap_or(p.n_components()))
}

/// Participation ratio `(sum l)^2 / sum l^2` of the PCA eigenvalues `l` (Gao et al. 2017): 1 when
/// one direction holds all variance, the number of features when variance is isotropic.
pub fn participation_ratio<S: Data<Elem = T>, T: Scalar>(x: &ArrayBase<S, Ix2>) -> Result<f64> {
    let p = Pca::new().fit(x)?;
    participation_ratio_from(p.explained_variance().as_slice().unwrap_or(&[]))
}

/// Participation ratio from eigenvalues already computed.
///
/// ```
/// let pr = neuroscope::analysis::dimensionality::participation_ratio_from(&[1.0, 1.0, 1.0])?;
/// assert_eq!(pr, 3.0);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn participation_ratio_from(eigenvalues: &[f64]) -> Result<f64> {
    let s: f64 = eigenvalues.iter().sum();
    let s2: f64 = eigenvalues.iter().map(|v| v * v).sum();
    if s2 <= 0.0 {
        return Err(Error::InvalidArgument(
            "participation ratio of data with zero variance is undefined".into(),
        ));
    }
    Ok(s * s / s2)
}

/// TwoNN intrinsic dimension (Facco et al. 2017) with the usual 10% of the largest distance
/// ratios discarded: the slope through the origin of `-log(1 - F(mu))` against `log(mu)`, where
/// `mu = r2 / r1` are the ratios of second- to first-neighbour distances.
pub fn two_nn<S: Data<Elem = T>, T: Scalar>(x: &ArrayBase<S, Ix2>) -> Result<f64> {
    two_nn_with(x, 0.1)
}

/// [`two_nn`] with a chosen discard fraction (0 keeps all ratios).
pub fn two_nn_with<S: Data<Elem = T>, T: Scalar>(
    x: &ArrayBase<S, Ix2>,
    discard: f64,
) -> Result<f64> {
    if !(0.0..1.0).contains(&discard) {
        return Err(Error::InvalidArgument(format!(
            "discard fraction {discard} must be in [0, 1)"
        )));
    }
    let x = to_f64_checked(x, "TwoNN input", 3)?;
    let nn = neighbors::knn(&x, 2)?;
    let n = x.nrows();
    let mut mu = Vec::with_capacity(n);
    for i in 0..n {
        let (r1, r2) = (nn.distances[[i, 0]], nn.distances[[i, 1]]);
        if r1 <= 0.0 {
            return Err(Error::InvalidArgument(format!(
                "TwoNN: sample {i} has an exact duplicate (distance 0 to its nearest neighbour); remove duplicates first"
            )));
        }
        mu.push(r2 / r1);
    }
    mu.sort_by(|a, b| a.total_cmp(b));
    let keep = ((n as f64) * (1.0 - discard)).floor() as usize;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, &m) in mu.iter().take(keep).enumerate() {
        let f = i as f64 / n as f64;
        let xv = m.ln();
        let yv = -(1.0 - f).ln();
        sxy += xv * yv;
        sxx += xv * xv;
    }
    if sxx <= 0.0 {
        return Err(Error::InvalidArgument(
            "TwoNN: all distance ratios are 1 (points on a regular lattice?)".into(),
        ));
    }
    Ok(sxy / sxx)
}
