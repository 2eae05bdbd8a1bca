//! Principal component analysis with scikit-learn's meaning of every number.
//!
//! `explained_variance_ratio` is each component's share of the TOTAL variance of the data (the sum
//! of the column variances), whether one component or all of them were kept: the share a seed's
//! "components needed for 80%" question is about. (linfa-reduction normalises over the kept
//! components only and divides by the wrong count; that is why this module exists.)
//!
//! Solvers, picked by [`Solver::Auto`] from the shape as scikit-learn does:
//! - [`Solver::Full`]: exact. Eigendecomposition of the smaller of the sample Gram matrix
//!   `Xc Xc^T` and the feature cross-product `Xc^T Xc`; for activations (few stimuli, many units)
//!   that is an `n x n` problem no matter how wide the layer.
//! - [`Solver::Svd`]: exact, thin SVD of the centred data (slower, for ill-conditioned data whose
//!   smallest components matter to the last digit).
//! - [`Solver::Randomized`]: Halko et al.'s randomized SVD with power iterations, seeded, for a few
//!   components of a large matrix; as scikit-learn's: LU-normalised iterations, the wider side
//!   probed, float32 data kept in float32 (the final small SVD in float64).
//!
//! ```
//! use ndarray::Array2;
//! use neuroscope::analysis::pca::Pca;
//! let x = Array2::from_shape_fn((50, 8), |(i, j)| ((i * 7 + j * 3) % 11) as f64 + (j as f64) * (i as f64) * 0.1);
//! let pca = Pca::new().fit(&x)?;
//! let cum = pca.cumulative_variance_ratio();
//! assert!((cum[cum.len() - 1] - 1.0).abs() < 1e-12);     // all components: 100% of the variance
//! let k = pca.n_components_for(0.8).unwrap();             // components needed for 80%
//! assert!(cum[k - 1] > 0.8 && (k == 1 || cum[k - 2] <= 0.8));
//! let scores = pca.transform(&x)?;                         // 50 x 8 projection
//! assert_eq!(scores.dim(), (50, 8));
//! # Ok::<(), neuroscope::Error>(())
//! ```

use super::{center_columns, linalg, to_f64_checked, Scalar};
use crate::rng::Rng;
use crate::{Error, Result};
use ndarray::{s, Array1, Array2, ArrayBase, Axis, Data, Ix2};

/// How many components to keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NComponents {
    /// `min(n_samples, n_features)`: scikit-learn's `n_components=None`.
    All,
    /// Exactly this many.
    Count(usize),
    /// As many as needed for the cumulative ratio to exceed this share (scikit-learn's
    /// `n_components=0.8`).
    Variance(f64),
}

/// Which algorithm computes the decomposition (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// Randomized for a few components of a matrix larger than 500 in some direction, Full
    /// otherwise (scikit-learn's rule).
    Auto,
    /// Exact, through the eigendecomposition of the smaller Gram/covariance matrix.
    Full,
    /// Exact, through a thin SVD of the centred data.
    Svd,
    /// Randomized SVD (seeded).
    Randomized,
}

impl Solver {
    /// The names [`Solver::parse`] accepts (scikit-learn's `svd_solver`).
    pub const NAMES: [&'static str; 4] = ["auto", "full", "svd", "randomized"];

    /// `auto`, `full`, `svd` or `randomized` (also through `str::parse`).
    ///
    /// ```
    /// use neuroscope::analysis::pca::Solver;
    /// assert_eq!("randomized".parse::<Solver>()?, Solver::Randomized);
    /// assert!(Solver::parse("arpack").unwrap_err().to_string().contains("randomized"));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Solver> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Solver::Auto),
            "full" => Ok(Solver::Full),
            "svd" => Ok(Solver::Svd),
            "randomized" => Ok(Solver::Randomized),
            _ => Err(crate::Error::unknown(
                "PCA solver",
                s,
                Solver::NAMES.map(String::from).to_vec(),
            )),
        }
    }
}

from_str_by_parse!(Solver);

/// PCA parameters (builder); [`Pca::fit`] returns a [`FittedPca`].
///
/// ```
/// use neuroscope::analysis::pca::{Pca, Solver};
/// let params = Pca::new().n_components(10).solver(Solver::Randomized).seed(3);
/// assert_eq!(params.get_seed(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct Pca {
    n_components: NComponents,
    solver: Solver,
    seed: u64,
    n_oversamples: usize,
    n_iter: Option<usize>,
    whiten: bool,
}

impl Default for Pca {
    fn default() -> Self {
        Self::new()
    }
}

impl Pca {
    /// scikit-learn's defaults: all components, automatic solver, no whitening, seed 0.
    pub fn new() -> Self {
        Pca {
            n_components: NComponents::All,
            solver: Solver::Auto,
            seed: 0,
            n_oversamples: 10,
            n_iter: None,
            whiten: false,
        }
    }
    /// Keep `k` components.
    pub fn n_components(mut self, k: usize) -> Self {
        self.n_components = NComponents::Count(k);
        self
    }
    /// Keep as many components as needed to explain more than `share` (0..1) of the variance.
    pub fn variance(mut self, share: f64) -> Self {
        self.n_components = NComponents::Variance(share);
        self
    }
    /// Pick the solver.
    pub fn solver(mut self, solver: Solver) -> Self {
        self.solver = solver;
        self
    }
    /// Seed of the randomized solver (ignored by the exact ones).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// The seed.
    pub fn get_seed(&self) -> u64 {
        self.seed
    }
    /// Power iterations of the randomized solver (default: 7 for fewer than 10% of the
    /// components, else 4, as scikit-learn).
    pub fn n_iter(mut self, n: usize) -> Self {
        self.n_iter = Some(n);
        self
    }
    /// Divide projections by the component standard deviations (unit-variance scores).
    pub fn whiten(mut self, whiten: bool) -> Self {
        self.whiten = whiten;
        self
    }

    /// Fit to `x` (samples x features, at least 2 samples).
    ///
    /// As scikit-learn, the randomized solver keeps float32 data in float32 (its products and
    /// power iterations; the small final SVD is float64): the numbers then agree with a float64
    /// fit to about six digits, and the fit takes about half the time.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<FittedPca> {
        let (n, p) = x.dim();
        super::check_rows(n, p, "PCA input", 2)?;
        let m = n.min(p);
        let want = match self.n_components {
            NComponents::All => m,
            NComponents::Count(k) => {
                if k == 0 || k > m {
                    return Err(Error::InvalidArgument(format!(
                        "PCA n_components={k} must be between 1 and min(n_samples, n_features) = {m}"
                    )));
                }
                k
            }
            NComponents::Variance(f) => {
                if !(f > 0.0 && f < 1.0) {
                    return Err(Error::InvalidArgument(format!(
                        "PCA variance share {f} must be strictly between 0 and 1"
                    )));
                }
                m
            }
        };
        let solver = match self.solver {
            Solver::Auto => {
                if n.max(p) > 500
                    && want < m * 8 / 10
                    && matches!(self.n_components, NComponents::Count(_))
                {
                    Solver::Randomized
                } else {
                    Solver::Full
                }
            }
            s => s,
        };
        let iters = self
            .n_iter
            .unwrap_or(if (want as f64) < 0.1 * m as f64 { 7 } else { 4 });
        let (s_vals, mut vt, mean, total_ss) = if solver == Solver::Randomized && T::SINGLE {
            let c = super::centered_f32_checked(x, "PCA input", 2)?;
            let (s, vt) = linalg::randomized_svd(
                &c.values,
                (n, p),
                want,
                self.n_oversamples,
                iters,
                self.seed,
            )?;
            (s, vt, c.mean, c.total_ss)
        } else {
            let mut xc = to_f64_checked(x, "PCA input", 2)?;
            let mean = center_columns(&mut xc);
            let total_ss: f64 = xc.iter().map(|v| v * v).sum();
            let (s, vt) = match solver {
                Solver::Full | Solver::Auto => full_eigh(&xc, want)?,
                Solver::Svd => {
                    let (_, s, vt) = linalg::svd(&xc)?;
                    (
                        s.slice(s![..want]).to_owned(),
                        vt.slice(s![..want, ..]).to_owned(),
                    )
                }
                Solver::Randomized => {
                    linalg::randomized_svd_as::<T>(&xc, want, self.n_oversamples, iters, self.seed)?
                }
            };
            (s, vt, mean, total_ss)
        };
        let total_variance = total_ss / (n as f64 - 1.0);
        linalg::flip_rows(&mut vt, None);
        let ev = s_vals.mapv(|s| s * s / (n as f64 - 1.0));
        let ratio = if total_variance > 0.0 {
            ev.mapv(|v| v / total_variance)
        } else {
            Array1::zeros(ev.len())
        };
        let mut fitted = FittedPca {
            components: vt,
            explained_variance: ev,
            explained_variance_ratio: ratio,
            singular_values: s_vals,
            mean: Array1::from(mean),
            n_samples: n,
            total_variance,
            solver,
            whiten: self.whiten,
        };
        if let NComponents::Variance(f) = self.n_components {
            let k = fitted.n_components_for(f).unwrap_or(m);
            fitted.truncate(k);
        }
        Ok(fitted)
    }

    /// Fit and return the projection of `x` together with the fitted model.
    pub fn fit_transform<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<(FittedPca, Array2<f64>)> {
        let f = self.fit(x)?;
        let t = f.transform(x)?;
        Ok((f, t))
    }
}

/// Exact PCA through the eigendecomposition of the smaller of `Xc Xc^T` and `Xc^T Xc`.
fn full_eigh(xc: &Array2<f64>, want: usize) -> Result<(Array1<f64>, Array2<f64>)> {
    let (n, p) = xc.dim();
    if p <= n {
        let (w, v) = linalg::eigh_desc(&linalg::cross(xc))?;
        let s = w.slice(s![..want]).mapv(|l| l.max(0.0).sqrt());
        let vt = v.slice(s![.., ..want]).t().to_owned();
        Ok((s, vt))
    } else {
        let (w, u) = linalg::eigh_desc(&linalg::gram(xc))?;
        let s = w.slice(s![..want]).mapv(|l| l.max(0.0).sqrt());
        let uk = u.slice(s![.., ..want]).to_owned();
        let mut vt = linalg::matmul_tn(&uk, xc); // want x p, rows = s_k v_k
        let tol = s.get(0).copied().unwrap_or(0.0) * (n.max(p) as f64) * f64::EPSILON * 16.0;
        let mut degenerate = Vec::new();
        for k in 0..want {
            if s[k] > tol && s[k] > 0.0 {
                vt.row_mut(k).mapv_inplace(|v| v / s[k]);
            } else {
                degenerate.push(k);
            }
        }
        complete_basis(&mut vt, &degenerate);
        Ok((s, vt))
    }
}

/// Replace the rows listed in `rows` by unit vectors orthogonal to all other rows (directions of
/// zero variance: any orthonormal completion is a valid set of components).
fn complete_basis(vt: &mut Array2<f64>, rows: &[usize]) {
    if rows.is_empty() {
        return;
    }
    let p = vt.ncols();
    let mut rng = Rng::new(0x9e37_79b9);
    for &k in rows {
        loop {
            let mut v = Array1::from_shape_fn(p, |_| rng.normal());
            for _ in 0..2 {
                for j in 0..vt.nrows() {
                    if j == k || (rows.contains(&j) && j > k) {
                        continue;
                    }
                    let d = vt.row(j).dot(&v);
                    v.scaled_add(-d, &vt.row(j));
                }
            }
            let norm = v.dot(&v).sqrt();
            if norm > 1e-8 {
                vt.row_mut(k).assign(&(v / norm));
                break;
            }
        }
    }
}

/// A fitted PCA: components, variances and the mean, like scikit-learn's fitted attributes.
#[derive(Debug, Clone)]
pub struct FittedPca {
    components: Array2<f64>,
    explained_variance: Array1<f64>,
    explained_variance_ratio: Array1<f64>,
    singular_values: Array1<f64>,
    mean: Array1<f64>,
    n_samples: usize,
    total_variance: f64,
    solver: Solver,
    whiten: bool,
}

impl FittedPca {
    fn truncate(&mut self, k: usize) {
        self.components = self.components.slice(s![..k, ..]).to_owned();
        self.explained_variance = self.explained_variance.slice(s![..k]).to_owned();
        self.explained_variance_ratio = self.explained_variance_ratio.slice(s![..k]).to_owned();
        self.singular_values = self.singular_values.slice(s![..k]).to_owned();
    }
    /// Principal axes, one per row (`n_components x n_features`), sign-normalised as
    /// scikit-learn's `svd_flip` (largest-magnitude entry positive).
    pub fn components(&self) -> &Array2<f64> {
        &self.components
    }
    /// Variance along each component (`S^2 / (n - 1)`).
    pub fn explained_variance(&self) -> &Array1<f64> {
        &self.explained_variance
    }
    /// Each component's share of the total variance of the data.
    pub fn explained_variance_ratio(&self) -> &Array1<f64> {
        &self.explained_variance_ratio
    }
    /// Running sum of [`explained_variance_ratio`](Self::explained_variance_ratio).
    pub fn cumulative_variance_ratio(&self) -> Array1<f64> {
        let mut acc = 0.0;
        self.explained_variance_ratio.mapv(|v| {
            acc += v;
            acc
        })
    }
    /// The number of components needed for the cumulative ratio to exceed `share` (as
    /// scikit-learn's `n_components=share`); `None` if the kept components do not reach it.
    ///
    /// Workflow 2 computes `np.argwhere(cum > .8).min()`, a 0-based index: that is this number
    /// minus one.
    pub fn n_components_for(&self, share: f64) -> Option<usize> {
        self.cumulative_variance_ratio()
            .iter()
            .position(|&c| c > share)
            .map(|i| i + 1)
    }
    /// Singular values of the centred data.
    pub fn singular_values(&self) -> &Array1<f64> {
        &self.singular_values
    }
    /// Per-feature mean that was subtracted.
    pub fn mean(&self) -> &Array1<f64> {
        &self.mean
    }
    /// Samples the model was fitted on.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }
    /// Sum of the column variances of the data (ddof = 1).
    pub fn total_variance(&self) -> f64 {
        self.total_variance
    }
    /// The solver that ran (what [`Solver::Auto`] resolved to).
    pub fn solver(&self) -> Solver {
        self.solver
    }
    /// Number of kept components.
    pub fn n_components(&self) -> usize {
        self.components.nrows()
    }
    /// Project `x` onto the components (`(x - mean) V^T`, divided by the component standard
    /// deviations when whitening).
    pub fn transform<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f64>> {
        let mut xc = to_f64_checked(x, "PCA transform input", 1)?;
        if xc.ncols() != self.mean.len() {
            return Err(Error::Shape {
                what: "PCA transform input".into(),
                expected: format!(
                    "N x {} (the features the model was fitted on)",
                    self.mean.len()
                ),
                got: format!("{} x {}", xc.nrows(), xc.ncols()),
            });
        }
        xc -= &self.mean.view().insert_axis(Axis(0));
        let mut t = linalg::matmul_nt(&xc, &self.components);
        if self.whiten {
            for (mut col, ev) in t
                .columns_mut()
                .into_iter()
                .zip(self.explained_variance.iter())
            {
                let sd = ev.sqrt();
                if sd > 0.0 {
                    col.mapv_inplace(|v| v / sd);
                }
            }
        }
        Ok(t)
    }
    /// Map projections back to feature space.
    pub fn inverse_transform(&self, t: &Array2<f64>) -> Result<Array2<f64>> {
        if t.ncols() != self.n_components() {
            return Err(Error::Shape {
                what: "PCA scores".into(),
                expected: format!("N x {}", self.n_components()),
                got: format!("{} x {}", t.nrows(), t.ncols()),
            });
        }
        let mut t = t.clone();
        if self.whiten {
            for (mut col, ev) in t
                .columns_mut()
                .into_iter()
                .zip(self.explained_variance.iter())
            {
                let sd = ev.sqrt();
                col.mapv_inplace(|v| v * sd);
            }
        }
        let mut x = linalg::matmul_nn(&t, &self.components);
        x += &self.mean.view().insert_axis(Axis(0));
        Ok(x)
    }
}
