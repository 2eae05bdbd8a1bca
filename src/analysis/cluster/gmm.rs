//! Gaussian mixture with full covariances fitted by EM, as scikit-learn's `GaussianMixture`
//! defaults: responsibilities initialised from one seeded k-means run, `reg_covar` added to every
//! covariance diagonal, stop when the mean log-likelihood changes by less than `tol`.

use super::KMeans;
use crate::analysis::{to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayBase, Data, Ix2};
use rayon::prelude::*;

/// Gaussian mixture parameters.
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::cluster::GaussianMixture;
/// let x = Array2::from_shape_fn((40, 2), |(i, j)| (i / 20) as f64 * 8.0 + ((i * 13 + j * 7) % 10) as f64 * 0.2);
/// let f = GaussianMixture::new(2).seed(0).fit(&x)?;
/// assert!(f.converged());
/// assert_ne!(f.labels()[0], f.labels()[39]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GaussianMixture {
    n_components: usize,
    tol: f64,
    reg_covar: f64,
    max_iter: usize,
    seed: u64,
}

impl GaussianMixture {
    /// `k` components; tol 1e-3, reg_covar 1e-6, 100 iterations, seed 0.
    pub fn new(k: usize) -> Self {
        GaussianMixture {
            n_components: k,
            tol: 1e-3,
            reg_covar: 1e-6,
            max_iter: 100,
            seed: 0,
        }
    }
    /// Number of components.
    pub fn n_components(mut self, k: usize) -> Self {
        self.n_components = k;
        self
    }
    /// Convergence threshold on the mean log-likelihood.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Added to covariance diagonals (keeps them positive definite).
    pub fn reg_covar(mut self, r: f64) -> Self {
        self.reg_covar = r;
        self
    }
    /// EM iteration cap.
    pub fn max_iter(mut self, m: usize) -> Self {
        self.max_iter = m;
        self
    }
    /// Seed of the k-means initialisation.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    /// Fit to `x`.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<FittedGaussianMixture> {
        let x = to_f64_checked(x, "Gaussian mixture input", 2)?;
        let (n, _) = x.dim();
        let k = self.n_components;
        if k == 0 || k > n {
            return Err(Error::InvalidArgument(format!(
                "GaussianMixture n_components={k} must be between 1 and n_samples = {n}"
            )));
        }
        let km = KMeans::new(k).seed(self.seed).fit(&x)?;
        let mut resp = Array2::zeros((n, k));
        for (i, &l) in km.labels().iter().enumerate() {
            resp[[i, l as usize]] = 1.0;
        }
        let mut model = m_step(&x, &resp, self.reg_covar)?;
        let mut lower = f64::NEG_INFINITY;
        let mut converged = false;
        let mut n_iter = 0;
        for it in 1..=self.max_iter {
            n_iter = it;
            let prev = lower;
            let (lpn, log_resp) = e_step(&x, &model);
            model = m_step(&x, &log_resp.mapv(f64::exp), self.reg_covar)?;
            lower = lpn.mean().unwrap_or(0.0);
            if (lower - prev).abs() < self.tol {
                converged = true;
                break;
            }
        }
        let (_, log_resp) = e_step(&x, &model);
        let labels = log_resp
            .rows()
            .into_iter()
            .map(|r| argmax(r.as_slice().expect("row-major")) as i64)
            .collect();
        Ok(FittedGaussianMixture {
            model,
            labels,
            converged,
            n_iter,
            lower_bound: lower,
        })
    }
}

fn argmax(v: &[f64]) -> usize {
    let mut b = 0;
    for i in 1..v.len() {
        if v[i] > v[b] {
            b = i;
        }
    }
    b
}

#[derive(Debug, Clone)]
struct Model {
    weights: Array1<f64>,
    means: Array2<f64>,
    covariances: Vec<Array2<f64>>,
    /// lower Cholesky factors of the precisions, as scikit-learn's `precisions_cholesky_`
    prec_chol: Vec<Array2<f64>>,
}

/// Lower Cholesky factor of a symmetric positive-definite matrix.
fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let p = a.nrows();
    let mut l = Array2::zeros((p, p));
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[[i, i]] = s.sqrt();
            } else {
                l[[i, j]] = s / l[[j, j]];
            }
        }
    }
    Some(l)
}

/// `inv(L)^T` for lower-triangular `L` (an upper-triangular matrix).
fn inv_lower_t(l: &Array2<f64>) -> Array2<f64> {
    let p = l.nrows();
    let mut inv = Array2::zeros((p, p));
    for c in 0..p {
        for i in c..p {
            let mut s = if i == c { 1.0 } else { 0.0 };
            for k in c..i {
                s -= l[[i, k]] * inv[[k, c]];
            }
            inv[[i, c]] = s / l[[i, i]];
        }
    }
    inv.t().to_owned()
}

fn m_step(x: &Array2<f64>, resp: &Array2<f64>, reg: f64) -> Result<Model> {
    let (n, p) = x.dim();
    let k = resp.ncols();
    let nk: Array1<f64> = resp
        .sum_axis(ndarray::Axis(0))
        .mapv(|v| v + 10.0 * f64::EPSILON);
    let means =
        crate::analysis::linalg::matmul_tn(resp, x) / nk.view().insert_axis(ndarray::Axis(1));
    let mut covariances = Vec::with_capacity(k);
    let mut prec_chol = Vec::with_capacity(k);
    for c in 0..k {
        let mut diff = x.clone();
        diff -= &means.row(c).insert_axis(ndarray::Axis(0));
        let mut weighted = diff.clone();
        for (mut row, &r) in weighted.rows_mut().into_iter().zip(resp.column(c).iter()) {
            row.mapv_inplace(|v| v * r);
        }
        let mut cov = crate::analysis::linalg::matmul_tn(&weighted, &diff) / nk[c];
        for j in 0..p {
            cov[[j, j]] += reg;
        }
        let l = cholesky(&cov).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "Gaussian mixture component {c} has a singular covariance; increase reg_covar, reduce n_components, or scale the input"
            ))
        })?;
        prec_chol.push(inv_lower_t(&l));
        covariances.push(cov);
    }
    let weights = nk / n as f64;
    Ok(Model {
        weights,
        means,
        covariances,
        prec_chol,
    })
}

fn e_step(x: &Array2<f64>, m: &Model) -> (Array1<f64>, Array2<f64>) {
    let (n, p) = x.dim();
    let k = m.weights.len();
    let ln2pi = (2.0 * std::f64::consts::PI).ln();
    let cols: Vec<Vec<f64>> = (0..k)
        .into_par_iter()
        .map(|c| {
            let pc = &m.prec_chol[c];
            let log_det: f64 = (0..p).map(|j| pc[[j, j]].ln()).sum();
            let mut diff = x.clone();
            diff -= &m.means.row(c).insert_axis(ndarray::Axis(0));
            let y = crate::analysis::linalg::matmul_nn(&diff, pc);
            y.rows()
                .into_iter()
                .map(|r| -0.5 * (p as f64 * ln2pi + r.dot(&r)) + log_det + m.weights[c].ln())
                .collect()
        })
        .collect();
    let mut wlp = Array2::zeros((n, k));
    for (c, col) in cols.into_iter().enumerate() {
        for (i, v) in col.into_iter().enumerate() {
            wlp[[i, c]] = v;
        }
    }
    let mut lpn = Array1::zeros(n);
    for (i, mut row) in wlp.rows_mut().into_iter().enumerate() {
        let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        lpn[i] = s;
        row.mapv_inplace(|v| v - s);
    }
    (lpn, wlp)
}

/// A fitted Gaussian mixture.
#[derive(Debug, Clone)]
pub struct FittedGaussianMixture {
    model: Model,
    labels: Vec<i64>,
    converged: bool,
    n_iter: usize,
    lower_bound: f64,
}

impl FittedGaussianMixture {
    /// Most probable component of each training sample.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }
    /// Mixing weights.
    pub fn weights(&self) -> &Array1<f64> {
        &self.model.weights
    }
    /// Component means (`k x features`).
    pub fn means(&self) -> &Array2<f64> {
        &self.model.means
    }
    /// Component covariances.
    pub fn covariances(&self) -> &[Array2<f64>] {
        &self.model.covariances
    }
    /// Whether EM met `tol` before `max_iter`.
    pub fn converged(&self) -> bool {
        self.converged
    }
    /// EM iterations run.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
    /// Mean log-likelihood at the last iteration.
    pub fn lower_bound(&self) -> f64 {
        self.lower_bound
    }
    /// Posterior probability of each component for new samples (`N x k`).
    pub fn predict_proba<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f64>> {
        let x = to_f64_checked(x, "Gaussian mixture input", 1)?;
        if x.ncols() != self.model.means.ncols() {
            return Err(Error::Shape {
                what: "Gaussian mixture input".into(),
                expected: format!("N x {}", self.model.means.ncols()),
                got: format!("{} x {}", x.nrows(), x.ncols()),
            });
        }
        Ok(e_step(&x, &self.model).1.mapv(f64::exp))
    }
    /// Most probable component of new samples.
    pub fn predict<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<Vec<i64>> {
        let p = self.predict_proba(x)?;
        Ok(p.rows()
            .into_iter()
            .map(|r| argmax(&r.to_vec()) as i64)
            .collect())
    }
}
