//! The other reductions interdim offers besides PCA, t-SNE and UMAP: truncated SVD, FastICA, NMF,
//! random projections, Isomap and MDS (classical and SMACOF). Each follows scikit-learn's
//! algorithm and defaults; where scikit-learn draws random numbers our own seeded generator
//! draws them instead, so seeded results are reproducible but not bit-equal to scikit-learn's.
//!
//! ```
//! use ndarray::Array2;
//! use neuroscope::analysis::reduce::{TruncatedSvd, Isomap};
//! let x = Array2::from_shape_fn((60, 5), |(i, j)| ((i * (j + 3)) % 17) as f64 + i as f64 * 0.1);
//! let svd = TruncatedSvd::new(2).seed(0).fit(&x)?;
//! assert_eq!(svd.transform(&x)?.dim(), (60, 2));
//! let iso = Isomap::new().n_neighbors(8).fit_transform(&x)?;
//! assert_eq!(iso.dim(), (60, 2));
//! # Ok::<(), neuroscope::Error>(())
//! ```

use super::{center_columns, linalg, neighbors, to_f64_checked, Scalar};
use crate::rng::Rng;
use crate::{Error, Result};
use ndarray::{s, Array1, Array2, ArrayBase, Axis, Data, Ix2};
use rayon::prelude::*;

fn check_k(k: usize, max: usize, what: &str) -> Result<()> {
    if k == 0 || k > max {
        return Err(Error::InvalidArgument(format!(
            "{what} n_components={k} must be between 1 and {max}"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------- truncated SVD

/// Truncated SVD (latent semantic analysis): PCA without centring, randomized solver with 5
/// LU-normalised power iterations as scikit-learn's `TruncatedSVD` (float32 data decomposed in
/// float32).
///
/// ```
/// use ndarray::array;
/// let x = array![[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]];
/// let f = neuroscope::analysis::reduce::TruncatedSvd::new(2).fit(&x)?;
/// assert!(f.singular_values()[0] >= f.singular_values()[1]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TruncatedSvd {
    n_components: usize,
    n_iter: usize,
    seed: u64,
}

impl TruncatedSvd {
    /// `k` components, 5 power iterations, seed 0.
    pub fn new(k: usize) -> Self {
        TruncatedSvd {
            n_components: k,
            n_iter: 5,
            seed: 0,
        }
    }
    /// Number of components (scikit-learn's `n_components`).
    pub fn n_components(mut self, k: usize) -> Self {
        self.n_components = k;
        self
    }
    /// Seed of the random test matrix.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Power iterations.
    pub fn n_iter(mut self, n: usize) -> Self {
        self.n_iter = n;
        self
    }
    /// Fit to `x`.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<FittedTruncatedSvd> {
        let x = to_f64_checked(x, "TruncatedSVD input", 2)?;
        let (n, p) = x.dim();
        check_k(self.n_components, n.min(p), "TruncatedSVD")?;
        let (s, mut vt) =
            linalg::randomized_svd_as::<T>(&x, self.n_components, 10, self.n_iter, self.seed)?;
        linalg::flip_rows(&mut vt, None);
        let t = linalg::matmul_nt(&x, &vt);
        let var = |a: ndarray::ArrayView1<f64>| {
            let m = a.mean().unwrap_or(0.0);
            a.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / a.len() as f64
        };
        let ev: Array1<f64> = t.columns().into_iter().map(var).collect();
        let total: f64 = x.columns().into_iter().map(var).sum();
        let ratio = if total > 0.0 {
            ev.mapv(|v| v / total)
        } else {
            Array1::zeros(ev.len())
        };
        Ok(FittedTruncatedSvd {
            components: vt,
            singular_values: s,
            explained_variance: ev,
            explained_variance_ratio: ratio,
        })
    }
}

/// A fitted truncated SVD.
#[derive(Debug, Clone)]
pub struct FittedTruncatedSvd {
    components: Array2<f64>,
    singular_values: Array1<f64>,
    explained_variance: Array1<f64>,
    explained_variance_ratio: Array1<f64>,
}

impl FittedTruncatedSvd {
    /// Right singular vectors, one per row.
    pub fn components(&self) -> &Array2<f64> {
        &self.components
    }
    /// Singular values.
    pub fn singular_values(&self) -> &Array1<f64> {
        &self.singular_values
    }
    /// Variance of each projected coordinate.
    pub fn explained_variance(&self) -> &Array1<f64> {
        &self.explained_variance
    }
    /// Share of the total (uncentred-projection) variance, as scikit-learn.
    pub fn explained_variance_ratio(&self) -> &Array1<f64> {
        &self.explained_variance_ratio
    }
    /// Project `x`.
    pub fn transform<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f64>> {
        let x = to_f64_checked(x, "TruncatedSVD transform input", 1)?;
        if x.ncols() != self.components.ncols() {
            return Err(Error::Shape {
                what: "TruncatedSVD transform input".into(),
                expected: format!("N x {}", self.components.ncols()),
                got: format!("{} x {}", x.nrows(), x.ncols()),
            });
        }
        Ok(linalg::matmul_nt(&x, &self.components))
    }
}

// ---------------------------------------------------------------- FastICA

/// FastICA (Hyvärinen 1999), scikit-learn's defaults: parallel algorithm, logcosh contrast,
/// unit-variance whitening by SVD, 200 iterations, tol 1e-4, seeded Gaussian start.
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::reduce::FastIca;
/// // two sources (sine and square wave), mixed
/// let s = Array2::from_shape_fn((500, 2), |(i, j)| {
///     let t = i as f64 * 0.05;
///     if j == 0 { (2.0 * t).sin() } else { ((3.0 * t).sin()).signum() }
/// });
/// let x = Array2::from_shape_fn((500, 2), |(i, j)| if j == 0 { s[[i, 0]] + 0.5 * s[[i, 1]] } else { 0.3 * s[[i, 0]] + s[[i, 1]] });
/// let recovered = FastIca::new(2).seed(0).fit(&x)?.transform(&x)?;
/// let corr = |a: Vec<f64>, b: Vec<f64>| neuroscope::analysis::rsa::pearson(&a, &b).unwrap().abs();
/// let c0 = corr(recovered.column(0).to_vec(), s.column(0).to_vec()).max(corr(recovered.column(1).to_vec(), s.column(0).to_vec()));
/// assert!(c0 > 0.99, "{c0}");
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FastIca {
    n_components: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
}

impl FastIca {
    /// `k` components.
    pub fn new(k: usize) -> Self {
        FastIca {
            n_components: k,
            max_iter: 200,
            tol: 1e-4,
            seed: 0,
        }
    }
    /// Number of components (scikit-learn's `n_components`).
    pub fn n_components(mut self, k: usize) -> Self {
        self.n_components = k;
        self
    }
    /// Seed of the unmixing matrix's start.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Iteration cap.
    pub fn max_iter(mut self, m: usize) -> Self {
        self.max_iter = m;
        self
    }
    /// Fit to `x`.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<FittedFastIca> {
        let mut x = to_f64_checked(x, "FastICA input", 2)?;
        let (n, p) = x.dim();
        let k = self.n_components;
        check_k(k, n.min(p), "FastICA")?;
        let mean = Array1::from(center_columns(&mut x));
        // whitening from the eigendecomposition of Xc^T Xc (= SVD of Xc^T)
        let (w, u) = linalg::eigh_desc(&linalg::cross(&x))?;
        let mut kmat = Array2::zeros((k, p));
        for c in 0..k {
            let d = w[c].max(0.0).sqrt();
            if d <= 1e-12 * w[0].max(1e-300).sqrt() {
                return Err(Error::InvalidArgument(format!(
                    "FastICA: the data has rank < {k}; ask for fewer components"
                )));
            }
            let mut col = u.column(c).to_owned();
            if col[0] < 0.0 {
                col.mapv_inplace(|v| -v);
            }
            kmat.row_mut(c).assign(&(col / d));
        }
        let x1 = linalg::matmul_nt(&kmat, &x).mapv(|v| v * (n as f64).sqrt()); // k x n
        let mut rng = Rng::new(self.seed);
        let mut wm = sym_decorrelation(&Array2::from_shape_fn((k, k), |_| rng.normal()))?;
        let mut n_iter = 0;
        for it in 0..self.max_iter {
            n_iter = it + 1;
            let wx = linalg::matmul_nn(&wm, &x1); // k x n
            let gwx = wx.mapv(f64::tanh);
            let g_mean: Array1<f64> = gwx
                .rows()
                .into_iter()
                .map(|r| r.iter().map(|g| 1.0 - g * g).sum::<f64>() / n as f64)
                .collect();
            let mut w1 = linalg::matmul_nt(&gwx, &x1) / n as f64;
            for i in 0..k {
                for j in 0..k {
                    w1[[i, j]] -= g_mean[i] * wm[[i, j]];
                }
            }
            let w1 = sym_decorrelation(&w1)?;
            let lim = (0..k)
                .map(|i| ((w1.row(i).dot(&wm.row(i))).abs() - 1.0).abs())
                .fold(0.0, f64::max);
            wm = w1;
            if lim < self.tol {
                break;
            }
        }
        let mut components = linalg::matmul_nn(&wm, &kmat); // k x p
                                                            // unit-variance sources
        let s = linalg::matmul_nt(&x, &components); // n x k
        for c in 0..k {
            let col = s.column(c);
            let m = col.mean().unwrap_or(0.0);
            let sd = (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt();
            if sd > 0.0 {
                components.row_mut(c).mapv_inplace(|v| v / sd);
            }
        }
        Ok(FittedFastIca {
            components,
            mean,
            n_iter,
        })
    }
}

fn sym_decorrelation(w: &Array2<f64>) -> Result<Array2<f64>> {
    let (s, u) = linalg::eigh_desc(&linalg::gram(w))?;
    let k = w.nrows();
    let mut m = Array2::zeros((k, k));
    for i in 0..k {
        for j in 0..k {
            let mut acc = 0.0;
            for c in 0..k {
                acc += u[[i, c]] * u[[j, c]] / s[c].max(f64::MIN_POSITIVE).sqrt();
            }
            m[[i, j]] = acc;
        }
    }
    Ok(linalg::matmul_nn(&m, w))
}

/// A fitted FastICA.
#[derive(Debug, Clone)]
pub struct FittedFastIca {
    components: Array2<f64>,
    mean: Array1<f64>,
    n_iter: usize,
}

impl FittedFastIca {
    /// Unmixing matrix (`k x features`).
    pub fn components(&self) -> &Array2<f64> {
        &self.components
    }
    /// Iterations run.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
    /// Estimated sources of `x` (`N x k`).
    pub fn transform<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f64>> {
        let mut x = to_f64_checked(x, "FastICA transform input", 1)?;
        if x.ncols() != self.mean.len() {
            return Err(Error::Shape {
                what: "FastICA transform input".into(),
                expected: format!("N x {}", self.mean.len()),
                got: format!("{} x {}", x.nrows(), x.ncols()),
            });
        }
        x -= &self.mean.view().insert_axis(Axis(0));
        Ok(linalg::matmul_nt(&x, &self.components))
    }
}

// ---------------------------------------------------------------- NMF

/// Non-negative matrix factorisation `X ~ W H`, scikit-learn's defaults: NNDSVDa initialisation,
/// coordinate descent on the Frobenius loss, tol 1e-4, 200 iterations. Deterministic.
///
/// ```
/// use ndarray::Array2;
/// let x = Array2::from_shape_fn((20, 6), |(i, j)| ((i + 1) * (j % 3 + 1)) as f64 + (i % 4 * j) as f64);
/// let f = neuroscope::analysis::reduce::Nmf::new(2).fit(&x)?;
/// assert!(f.w().iter().all(|&v| v >= 0.0) && f.h().iter().all(|&v| v >= 0.0));
/// assert!(f.reconstruction_err() < 0.3 * x.iter().map(|v| v * v).sum::<f64>().sqrt());
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Nmf {
    n_components: usize,
    max_iter: usize,
    tol: f64,
}

impl Nmf {
    /// `k` components.
    pub fn new(k: usize) -> Self {
        Nmf {
            n_components: k,
            max_iter: 200,
            tol: 1e-4,
        }
    }
    /// Number of components (scikit-learn's `n_components`).
    pub fn n_components(mut self, k: usize) -> Self {
        self.n_components = k;
        self
    }
    /// Iteration cap.
    pub fn max_iter(mut self, m: usize) -> Self {
        self.max_iter = m;
        self
    }
    /// Fit to non-negative `x`.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<FittedNmf> {
        let x = to_f64_checked(x, "NMF input", 1)?;
        if let Some(((i, j), v)) = x.indexed_iter().find(|(_, &v)| v < 0.0) {
            return Err(Error::InvalidArgument(format!("NMF needs non-negative data; X[{i}, {j}] = {v} (shift or clip activations first, e.g. after ReLU)")));
        }
        let (n, p) = x.dim();
        let k = self.n_components;
        check_k(k, n.min(p), "NMF")?;
        let (mut w, mut h) = nndsvda(&x, k)?;
        let mut ht = h.t().to_owned();
        let xt = x.t().as_standard_layout().into_owned();
        let mut v0 = 0.0;
        let mut n_iter = 0;
        for it in 1..=self.max_iter {
            n_iter = it;
            let mut v = cd_update(&x, &mut w, &ht);
            v += cd_update(&xt, &mut ht, &w);
            if it == 1 {
                v0 = v;
            }
            if v0 == 0.0 || v / v0 <= self.tol {
                break;
            }
        }
        h = ht.t().to_owned();
        let r = &x - &linalg::matmul_nn(&w, &h);
        let err = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        Ok(FittedNmf {
            w,
            h,
            reconstruction_err: err,
            n_iter,
        })
    }
}

fn nndsvda(x: &Array2<f64>, k: usize) -> Result<(Array2<f64>, Array2<f64>)> {
    let (u, s, vt) = linalg::svd(x)?;
    let mut u = u.slice(s![.., ..k]).to_owned();
    let mut vt = vt.slice(s![..k, ..]).to_owned();
    linalg::flip_rows(&mut vt, Some(&mut u));
    let (n, p) = x.dim();
    let mut w = Array2::zeros((n, k));
    let mut h = Array2::zeros((k, p));
    w.column_mut(0)
        .assign(&u.column(0).mapv(|v| s[0].sqrt() * v.abs()));
    h.row_mut(0)
        .assign(&vt.row(0).mapv(|v| s[0].sqrt() * v.abs()));
    let norm = |a: &Array1<f64>| a.dot(a).sqrt();
    for j in 1..k {
        let (xv, yv) = (u.column(j).to_owned(), vt.row(j).to_owned());
        let (xp, yp) = (xv.mapv(|v| v.max(0.0)), yv.mapv(|v| v.max(0.0)));
        let (xn, yn) = (
            xv.mapv(|v| (v.min(0.0)).abs()),
            yv.mapv(|v| (v.min(0.0)).abs()),
        );
        let (xpn, ypn, xnn, ynn) = (norm(&xp), norm(&yp), norm(&xn), norm(&yn));
        let (mp, mn) = (xpn * ypn, xnn * ynn);
        let (uu, vv, sigma) = if mp > mn {
            (xp / xpn, yp / ypn, mp)
        } else {
            (xn / xnn, yn / ynn, mn)
        };
        let lbd = (s[j] * sigma).sqrt();
        w.column_mut(j).assign(&(uu * lbd));
        h.row_mut(j).assign(&(vv * lbd));
    }
    let avg = x.mean().unwrap_or(0.0);
    for v in w.iter_mut().chain(h.iter_mut()) {
        if *v < f64::EPSILON || v.is_nan() {
            *v = avg;
        }
    }
    Ok((w, h))
}

/// One sweep of scikit-learn's `_update_cdnmf_fast` over the columns of `w` (X ~ W Ht^T).
fn cd_update(x: &Array2<f64>, w: &mut Array2<f64>, ht: &Array2<f64>) -> f64 {
    let hht = linalg::matmul_tn(ht, ht);
    let xht = linalg::matmul_nn(x, ht);
    let k = ht.ncols();
    let n = w.nrows();
    let mut violation = 0.0;
    for t in 0..k {
        for i in 0..n {
            let mut grad = -xht[[i, t]];
            for r in 0..k {
                grad += hht[[t, r]] * w[[i, r]];
            }
            let pg = if w[[i, t]] == 0.0 {
                grad.min(0.0)
            } else {
                grad
            };
            violation += pg.abs();
            let hess = hht[[t, t]];
            if hess != 0.0 {
                w[[i, t]] = (w[[i, t]] - grad / hess).max(0.0);
            }
        }
    }
    violation
}

/// A fitted NMF.
#[derive(Debug, Clone)]
pub struct FittedNmf {
    w: Array2<f64>,
    h: Array2<f64>,
    reconstruction_err: f64,
    n_iter: usize,
}

impl FittedNmf {
    /// `N x k` activations of the parts.
    pub fn w(&self) -> &Array2<f64> {
        &self.w
    }
    /// `k x features` parts (scikit-learn's `components_`).
    pub fn h(&self) -> &Array2<f64> {
        &self.h
    }
    /// Frobenius norm of `X - W H`.
    pub fn reconstruction_err(&self) -> f64 {
        self.reconstruction_err
    }
    /// Iterations run.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
}

// ---------------------------------------------------------------- random projections

/// Smallest dimension that keeps pairwise distances within `1 +- eps` with high probability
/// (Johnson-Lindenstrauss, scikit-learn's `johnson_lindenstrauss_min_dim`).
///
/// ```
/// assert_eq!(neuroscope::analysis::reduce::johnson_lindenstrauss_min_dim(1000, 0.1), 5920);
/// ```
pub fn johnson_lindenstrauss_min_dim(n_samples: usize, eps: f64) -> usize {
    let denom = eps * eps / 2.0 - eps * eps * eps / 3.0;
    (4.0 * (n_samples as f64).ln() / denom) as usize
}

/// Kind of random projection matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProjectionKind {
    /// Dense N(0, 1/k) entries.
    Gaussian,
    /// Sparse +-sqrt(1/(density k)) entries with the given density (`None`: 1/sqrt(features),
    /// Li et al. 2006).
    Sparse(Option<f64>),
}

/// Random projection to `k` dimensions (seeded).
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::reduce::{RandomProjection, ProjectionKind};
/// let x = Array2::from_shape_fn((10, 500), |(i, j)| ((i * 31 + j * 17) % 23) as f64);
/// let y = RandomProjection::new(200, ProjectionKind::Sparse(None)).seed(1).fit_transform(&x)?;
/// assert_eq!(y.dim(), (10, 200));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RandomProjection {
    n_components: usize,
    kind: ProjectionKind,
    seed: u64,
}

impl RandomProjection {
    /// `k` output dimensions.
    pub fn new(k: usize, kind: ProjectionKind) -> Self {
        RandomProjection {
            n_components: k,
            kind,
            seed: 0,
        }
    }
    /// Number of components (scikit-learn's `n_components`).
    pub fn n_components(mut self, k: usize) -> Self {
        self.n_components = k;
        self
    }
    /// Seed of the matrix.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// The `k x features` projection matrix for `p` input features.
    pub fn matrix(&self, p: usize) -> Result<Array2<f64>> {
        let k = self.n_components;
        if k == 0 {
            return Err(Error::InvalidArgument(
                "random projection needs n_components >= 1".into(),
            ));
        }
        let mut rng = Rng::new(self.seed);
        Ok(match self.kind {
            ProjectionKind::Gaussian => {
                let sd = 1.0 / (k as f64).sqrt();
                Array2::from_shape_fn((k, p), |_| rng.normal() * sd)
            }
            ProjectionKind::Sparse(density) => {
                let d = density.unwrap_or(1.0 / (p as f64).sqrt());
                if !(d > 0.0 && d <= 1.0) {
                    return Err(Error::InvalidArgument(format!(
                        "density {d} must be in (0, 1]"
                    )));
                }
                let v = (1.0 / d).sqrt() / (k as f64).sqrt();
                Array2::from_shape_fn((k, p), |_| {
                    let u = rng.uniform();
                    if u < d / 2.0 {
                        -v
                    } else if u < d {
                        v
                    } else {
                        0.0
                    }
                })
            }
        })
    }
    /// Project `x`.
    pub fn fit_transform<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f64>> {
        let x = to_f64_checked(x, "random projection input", 1)?;
        Ok(linalg::matmul_nt(&x, &self.matrix(x.ncols())?))
    }
}

// ---------------------------------------------------------------- Isomap

/// Isomap (Tenenbaum et al. 2000), scikit-learn's defaults: 5 neighbours, 2 components, geodesic
/// distances by Dijkstra on the symmetrised k-NN graph, kernel PCA of `-D^2 / 2`.
#[derive(Debug, Clone)]
pub struct Isomap {
    n_neighbors: usize,
    n_components: usize,
}

impl Default for Isomap {
    fn default() -> Self {
        Self::new()
    }
}

impl Isomap {
    /// 5 neighbours, 2 components.
    pub fn new() -> Self {
        Isomap {
            n_neighbors: 5,
            n_components: 2,
        }
    }
    /// Neighbours in the graph.
    pub fn n_neighbors(mut self, k: usize) -> Self {
        self.n_neighbors = k;
        self
    }
    /// Output dimensions.
    pub fn n_components(mut self, k: usize) -> Self {
        self.n_components = k;
        self
    }
    /// Embed `x`.
    pub fn fit_transform<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f64>> {
        let x = to_f64_checked(x, "Isomap input", 3)?;
        let n = x.nrows();
        check_k(self.n_components, n - 1, "Isomap")?;
        super::check_dense(n, "Isomap")?;
        let nn = neighbors::knn(&x, self.n_neighbors)?;
        let mut adj: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        for i in 0..n {
            for c in 0..self.n_neighbors {
                let (j, d) = (nn.indices[[i, c]], nn.distances[[i, c]]);
                adj[i].push((j, d));
                adj[j].push((i, d));
            }
        }
        let rows: Vec<Vec<f64>> = (0..n).into_par_iter().map(|s| dijkstra(&adj, s)).collect();
        if let Some(i) = rows[0].iter().position(|d| d.is_infinite()) {
            return Err(Error::InvalidArgument(format!(
                "Isomap: the {}-nearest-neighbour graph is disconnected (sample {i} is unreachable from sample 0); increase n_neighbors",
                self.n_neighbors
            )));
        }
        let mut g = Array2::from_shape_fn((n, n), |(i, j)| {
            -0.5 * (0.5 * (rows[i][j] + rows[j][i])).powi(2)
        });
        double_center(&mut g);
        let (w, v) = linalg::eigh_desc(&g)?;
        Ok(embed_from_eigen(&w, &v, self.n_components))
    }
}

fn dijkstra(adj: &[Vec<(usize, f64)>], s: usize) -> Vec<f64> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    /// A distance ordered by `total_cmp`, consistently for `Ord`, `PartialOrd` and `Eq`.
    struct D(f64);
    impl Ord for D {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            self.0.total_cmp(&o.0)
        }
    }
    impl PartialOrd for D {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl PartialEq for D {
        fn eq(&self, o: &Self) -> bool {
            self.cmp(o).is_eq()
        }
    }
    impl Eq for D {}
    let mut dist = vec![f64::INFINITY; adj.len()];
    dist[s] = 0.0;
    let mut heap = BinaryHeap::new();
    heap.push(Reverse((D(0.0), s)));
    while let Some(Reverse((D(d), u))) = heap.pop() {
        if d > dist[u] {
            continue;
        }
        for &(v, w) in &adj[u] {
            let nd = d + w;
            if nd < dist[v] {
                dist[v] = nd;
                heap.push(Reverse((D(nd), v)));
            }
        }
    }
    dist
}

fn double_center(g: &mut Array2<f64>) {
    let n = g.nrows();
    let rm: Vec<f64> = g.rows().into_iter().map(|r| r.sum() / n as f64).collect();
    let cm: Vec<f64> = g
        .columns()
        .into_iter()
        .map(|c| c.sum() / n as f64)
        .collect();
    let all = rm.iter().sum::<f64>() / n as f64;
    for i in 0..n {
        for j in 0..n {
            g[[i, j]] += all - rm[i] - cm[j];
        }
    }
}

/// Coordinates `v_k sqrt(w_k)` with each eigenvector's largest-magnitude entry made positive
/// (scikit-learn's `KernelPCA` convention).
fn embed_from_eigen(w: &Array1<f64>, v: &Array2<f64>, k: usize) -> Array2<f64> {
    let n = v.nrows();
    let mut out = Array2::zeros((n, k));
    for c in 0..k {
        let col = v.column(c);
        let mut best = 0;
        for i in 0..n {
            if col[i].abs() > col[best].abs() {
                best = i;
            }
        }
        let sign = if col[best] < 0.0 { -1.0 } else { 1.0 };
        let sw = w[c].max(0.0).sqrt();
        for i in 0..n {
            out[[i, c]] = sign * col[i] * sw;
        }
    }
    out
}

// ---------------------------------------------------------------- MDS

/// Multidimensional scaling: metric SMACOF (scikit-learn's `MDS(init="classical_mds")`, 300
/// iterations, eps 1e-6) started from classical (Torgerson) MDS, or classical MDS alone.
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::reduce::Mds;
/// let x = array![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 2.0, 0.1]];
/// let f = Mds::new().fit(&x)?;
/// assert_eq!(f.embedding().dim(), (4, 2));
/// assert!(f.stress() < 0.1);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Mds {
    n_components: usize,
    max_iter: usize,
    eps: f64,
    classical_only: bool,
}

impl Default for Mds {
    fn default() -> Self {
        Self::new()
    }
}

impl Mds {
    /// 2 components, SMACOF from classical MDS.
    pub fn new() -> Self {
        Mds {
            n_components: 2,
            max_iter: 300,
            eps: 1e-6,
            classical_only: false,
        }
    }
    /// Output dimensions.
    pub fn n_components(mut self, k: usize) -> Self {
        self.n_components = k;
        self
    }
    /// Stop after classical MDS (no SMACOF refinement).
    pub fn classical(mut self, yes: bool) -> Self {
        self.classical_only = yes;
        self
    }
    /// Embed the rows of `x` (euclidean dissimilarities).
    pub fn fit<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<FittedMds> {
        let x = to_f64_checked(x, "MDS input", 2)?;
        super::check_dense(x.nrows(), "MDS")?;
        self.fit_dissimilarities(&neighbors::pairwise_distances(&x))
    }
    /// Embed from a precomputed symmetric dissimilarity matrix (an RDM, say).
    pub fn fit_dissimilarities(&self, d: &Array2<f64>) -> Result<FittedMds> {
        let n = d.nrows();
        if d.ncols() != n || n < 2 {
            return Err(Error::Shape {
                what: "dissimilarity matrix".into(),
                expected: "square n x n, n >= 2".into(),
                got: format!("{} x {}", d.nrows(), d.ncols()),
            });
        }
        if d.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(
                "dissimilarity matrix holds NaN or infinite values".into(),
            ));
        }
        check_k(self.n_components, n, "MDS")?;
        let mut b = d.mapv(|v| -0.5 * v * v);
        double_center(&mut b);
        let (w, v) = linalg::eigh_desc(&b)?;
        let mut xe = embed_from_eigen(&w, &v, self.n_components);
        let mut dist = neighbors::pairwise_distances(&xe);
        let stress_of = |dist: &Array2<f64>| {
            dist.iter()
                .zip(d.iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                / 2.0
        };
        let mut stress = stress_of(&dist);
        let mut n_iter = 0;
        if !self.classical_only {
            let mut old: Option<f64> = None;
            for it in 0..self.max_iter {
                n_iter = it + 1;
                let mut bm = Array2::zeros((n, n));
                for i in 0..n {
                    let mut rs = 0.0;
                    for j in 0..n {
                        let dd = if dist[[i, j]] == 0.0 {
                            1e-5
                        } else {
                            dist[[i, j]]
                        };
                        let r = d[[i, j]] / dd;
                        bm[[i, j]] = -r;
                        rs += r;
                    }
                    bm[[i, i]] += rs;
                }
                xe = linalg::matmul_nn(&bm, &xe) / n as f64;
                dist = neighbors::pairwise_distances(&xe);
                stress = stress_of(&dist);
                if let Some(o) = old {
                    let ssd: f64 = dist.iter().map(|v| v * v).sum();
                    if (o - stress) / (ssd / 2.0) < self.eps {
                        break;
                    }
                }
                old = Some(stress);
            }
        }
        Ok(FittedMds {
            embedding: xe,
            stress,
            n_iter,
        })
    }
}

/// A fitted MDS embedding.
#[derive(Debug, Clone)]
pub struct FittedMds {
    embedding: Array2<f64>,
    stress: f64,
    n_iter: usize,
}

impl FittedMds {
    /// `N x k` coordinates.
    pub fn embedding(&self) -> &Array2<f64> {
        &self.embedding
    }
    /// Raw stress: half the sum of squared differences between embedded distances and the
    /// dissimilarities (scikit-learn's `stress_` for metric MDS).
    pub fn stress(&self) -> f64 {
        self.stress
    }
    /// SMACOF iterations run (0 for classical only).
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
}
