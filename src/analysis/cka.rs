//! Centred kernel alignment: how similar two representations of the same samples are, invariant
//! to rotation and isotropic scaling (Kornblith et al. 2019).
//!
//! The plain (biased) estimator grows with the number of units relative to the number of
//! samples: two unrelated random layers of 4,096 units over 100 images give a CKA far above 0.
//! The unbiased estimator ([`Cka::unbiased`], the U-statistic HSIC of Song et al. 2012) removes
//! that; minibatch CKA ([`MinibatchCka`], Nguyen et al. 2021) averages the unbiased HSIC over
//! batches, so a dataset of any size is compared in bounded memory.
//!
//! ```
//! use ndarray::Array2;
//! use neuroscope::analysis::cka::Cka;
//! let mut rng = neuroscope::rng::Rng::new(7);
//! let x = Array2::from_shape_simple_fn((60, 500), || rng.normal());
//! let y = Array2::from_shape_simple_fn((60, 500), || rng.normal());   // unrelated to x
//! let biased = Cka::new().compute(&x, &y)?;
//! let unbiased = Cka::new().unbiased(true).compute(&x, &y)?;
//! assert!(unbiased.abs() < biased);   // the bias of unrelated wide layers is gone
//! # Ok::<(), neuroscope::Error>(())
//! ```

use super::{linalg, Scalar};
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};

fn center_gram(k: &mut Array2<f64>) {
    let n = k.nrows();
    let row_means: Vec<f64> = k.rows().into_iter().map(|r| r.sum() / n as f64).collect();
    let total: f64 = row_means.iter().sum::<f64>() / n as f64;
    for i in 0..n {
        for j in 0..n {
            k[[i, j]] += total - row_means[i] - row_means[j];
        }
    }
}

fn cka_from_grams(mut k: Array2<f64>, mut l: Array2<f64>) -> Result<f64> {
    center_gram(&mut k);
    center_gram(&mut l);
    let kl: f64 = k.iter().zip(l.iter()).map(|(a, b)| a * b).sum();
    let kk: f64 = k.iter().map(|a| a * a).sum();
    let ll: f64 = l.iter().map(|a| a * a).sum();
    if kk <= 0.0 || ll <= 0.0 {
        return Err(Error::InvalidArgument(
            "CKA of a representation with zero variance is undefined".into(),
        ));
    }
    Ok(kl / (kk.sqrt() * ll.sqrt()))
}

/// Linear CKA (Kornblith et al. 2019, eq. 4 with Gram matrices): 1 for representations equal up to
/// rotation and isotropic scaling, invariant to the number of units.
///
/// ```
/// use ndarray::array;
/// let x = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.5]];
/// let c = neuroscope::analysis::cka::cka_linear(&x, &x.mapv(|v| 3.0 * v))?;
/// assert!((c - 1.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn cka_linear<S1, S2, T1, T2>(x: &ArrayBase<S1, Ix2>, y: &ArrayBase<S2, Ix2>) -> Result<f64>
where
    S1: Data<Elem = T1>,
    S2: Data<Elem = T2>,
    T1: Scalar,
    T2: Scalar,
{
    Cka::new().compute(x, y)
}

/// RBF-kernel CKA with Kornblith et al.'s bandwidth: `sigma = threshold * sqrt(median squared
/// distance)`; their default threshold is 1.0.
///
/// ```
/// use ndarray::array;
/// let x = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.5]];
/// let c = neuroscope::analysis::cka::cka_rbf(&x, &x, 1.0)?;
/// assert!((c - 1.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn cka_rbf<S1, S2, T1, T2>(
    x: &ArrayBase<S1, Ix2>,
    y: &ArrayBase<S2, Ix2>,
    threshold: f64,
) -> Result<f64>
where
    S1: Data<Elem = T1>,
    S2: Data<Elem = T2>,
    T1: Scalar,
    T2: Scalar,
{
    Cka::new().kernel(Kernel::Rbf { threshold }).compute(x, y)
}

fn rbf_kernel(x: &Array2<f64>, threshold: f64) -> Result<Array2<f64>> {
    let g = linalg::gram(x);
    let n = g.nrows();
    let mut d2 = Array2::zeros((n, n));
    for i in 0..n {
        for j in 0..n {
            d2[[i, j]] = -2.0 * g[[i, j]] + g[[i, i]] + g[[j, j]];
        }
    }
    let mut all: Vec<f64> = d2.iter().copied().collect();
    all.sort_by(|a, b| a.total_cmp(b));
    let m = all.len();
    let median = if m % 2 == 1 {
        all[m / 2]
    } else {
        0.5 * (all[m / 2 - 1] + all[m / 2])
    };
    if median <= 0.0 {
        return Err(Error::InvalidArgument(
            "RBF CKA: median squared distance is 0 (mostly duplicate stimuli)".into(),
        ));
    }
    let scale = 2.0 * threshold * threshold * median;
    Ok(d2.mapv(|v| (-v / scale).exp()))
}

/// CKA between every pair of layers (linear when `rbf_threshold` is `None`).
///
/// ```
/// use ndarray::array;
/// let a = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
/// let m = neuroscope::analysis::cka::cka_matrix(&[a.clone(), a], None)?;
/// assert!((m[[0, 1]] - 1.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn cka_matrix(layers: &[Array2<f64>], rbf_threshold: Option<f64>) -> Result<Array2<f64>> {
    let k = layers.len();
    let mut out = Array2::eye(k);
    for i in 0..k {
        for j in 0..i {
            let v = match rbf_threshold {
                None => cka_linear(&layers[i], &layers[j])?,
                Some(t) => cka_rbf(&layers[i], &layers[j], t)?,
            };
            out[[i, j]] = v;
            out[[j, i]] = v;
        }
    }
    Ok(out)
}

/// The kernel CKA compares representations with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kernel {
    /// `x . y` (Kornblith et al.'s linear CKA).
    Linear,
    /// Gaussian with bandwidth `threshold * sqrt(median squared distance)` (their default 1.0).
    Rbf {
        /// Multiple of the median distance.
        threshold: f64,
    },
}

impl Kernel {
    /// Parse `linear` or `rbf` (threshold 1.0).
    ///
    /// ```
    /// use neuroscope::analysis::cka::Kernel;
    /// assert_eq!(Kernel::parse("rbf")?, Kernel::Rbf { threshold: 1.0 });
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "linear" => Ok(Kernel::Linear),
            "rbf" => Ok(Kernel::Rbf { threshold: 1.0 }),
            _ => Err(Error::UnknownName {
                kind: "CKA kernel".into(),
                name: s.into(),
                valid: "linear, rbf".into(),
            }),
        }
    }
}

from_str_by_parse!(Kernel);

/// CKA set up once (kernel, estimator) and applied to pairs of representations or to every pair
/// of layers of two networks.
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::cka::{Cka, Kernel};
/// let x = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.5], [0.3, 0.2]];
/// let c = Cka::new().kernel(Kernel::Linear).unbiased(true).compute(&x, &x.mapv(|v| 2.0 * v))?;
/// assert!((c - 1.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cka {
    kernel: Kernel,
    unbiased: bool,
}

impl Default for Cka {
    fn default() -> Self {
        Cka::new()
    }
}

impl Cka {
    /// Linear kernel, the plain (biased) estimator: Kornblith et al.'s defaults.
    pub fn new() -> Cka {
        Cka {
            kernel: Kernel::Linear,
            unbiased: false,
        }
    }
    /// The kernel.
    pub fn kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }
    /// Use the unbiased HSIC estimator (Song et al. 2012), as Kornblith et al.'s
    /// `debiased=True` and Nguyen et al.: needs 4+ samples.
    pub fn unbiased(mut self, on: bool) -> Self {
        self.unbiased = on;
        self
    }

    /// CKA between two representations of the same samples (rows).
    pub fn compute<S1, S2, T1, T2>(
        &self,
        x: &ArrayBase<S1, Ix2>,
        y: &ArrayBase<S2, Ix2>,
    ) -> Result<f64>
    where
        S1: Data<Elem = T1>,
        S2: Data<Elem = T2>,
        T1: Scalar,
        T2: Scalar,
    {
        if let Kernel::Rbf { threshold } = self.kernel {
            if !(threshold > 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "RBF CKA threshold must be positive, got {threshold}"
                )));
            }
        }
        let min_rows = if self.unbiased { 4 } else { 2 };
        let (x, y) = super::paired(
            x,
            y,
            "CKA first representation",
            "CKA second representation",
            min_rows,
        )?;
        match (self.kernel, self.unbiased) {
            (Kernel::Linear, false) => cka_from_grams(linalg::gram(&x), linalg::gram(&y)),
            (Kernel::Rbf { threshold }, false) => {
                cka_from_grams(rbf_kernel(&x, threshold)?, rbf_kernel(&y, threshold)?)
            }
            (Kernel::Linear, true) => {
                let (x, y) = (centred_columns(x), centred_columns(y));
                let (fx, fy) = (LinearStats::of(&x), LinearStats::of(&y));
                let xy = cross_norm2(&x, &y);
                ratio(
                    hsic1_linear(xy, &fx, &fy),
                    hsic1_linear(cross_norm2(&x, &x), &fx, &fx),
                    hsic1_linear(cross_norm2(&y, &y), &fy, &fy),
                )
            }
            (Kernel::Rbf { threshold }, true) => {
                let (k, l) = (rbf_kernel(&x, threshold)?, rbf_kernel(&y, threshold)?);
                ratio(hsic1_gram(&k, &l), hsic1_gram(&k, &k), hsic1_gram(&l, &l))
            }
        }
    }

    /// CKA of every layer of `a` with every layer of `b` (`a.len() x b.len()`), the layer x layer
    /// map between two networks; pass the same list twice for a network against itself.
    ///
    /// ```
    /// use ndarray::array;
    /// use neuroscope::analysis::cka::Cka;
    /// let l1 = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.5]];
    /// let l2 = l1.mapv(|v: f64| v * v);
    /// let m = Cka::new().matrix(&[l1.clone(), l2], &[l1])?;
    /// assert_eq!(m.dim(), (2, 1));
    /// assert!((m[[0, 0]] - 1.0).abs() < 1e-12);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn matrix(&self, a: &[Array2<f64>], b: &[Array2<f64>]) -> Result<Array2<f64>> {
        if a.is_empty() || b.is_empty() {
            return Err(Error::InvalidArgument(
                "a CKA matrix needs at least one layer on each side".into(),
            ));
        }
        let mut out = Array2::zeros((a.len(), b.len()));
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                out[[i, j]] = self
                    .compute(x, y)
                    .map_err(|e| e.context(&format!("layers {i} and {j}")))?;
            }
        }
        Ok(out)
    }
}

fn ratio(xy: f64, xx: f64, yy: f64) -> Result<f64> {
    if !(xx > 0.0 && yy > 0.0) {
        return Err(Error::InvalidArgument(
            "CKA of a representation with zero variance is undefined (its unbiased HSIC is not positive)".into(),
        ));
    }
    Ok(xy / (xx.sqrt() * yy.sqrt()))
}

fn centred_columns(mut x: Array2<f64>) -> Array2<f64> {
    if let Some(m) = x.mean_axis(ndarray::Axis(0)) {
        for mut row in x.rows_mut() {
            row -= &m;
        }
    }
    x
}

/// What the unbiased linear HSIC needs of one representation: the squared norm of each row
/// (the Gram diagonal), the column sums, and `X (X' 1) - diag`.
struct LinearStats {
    diag: Vec<f64>,
    ones_k_ones: f64,
    k_ones: Vec<f64>,
}

impl LinearStats {
    fn of(x: &Array2<f64>) -> LinearStats {
        let diag: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
        let col_sum = x.sum_axis(ndarray::Axis(0));
        let k_ones: Vec<f64> = x
            .rows()
            .into_iter()
            .zip(&diag)
            .map(|(r, d)| r.dot(&col_sum) - d)
            .collect();
        LinearStats {
            ones_k_ones: col_sum.dot(&col_sum) - diag.iter().sum::<f64>(),
            diag,
            k_ones,
        }
    }
}

/// `||X' Y||_F^2 = tr(K L)`, by whichever is cheaper: the p x q cross product or the n x n Grams.
fn cross_norm2(x: &Array2<f64>, y: &Array2<f64>) -> f64 {
    let (n, p, q) = (x.nrows(), x.ncols(), y.ncols());
    if p * q <= n * n {
        linalg::matmul_tn(x, y).iter().map(|v| v * v).sum()
    } else {
        let (k, l) = (linalg::matmul_nt(x, x), linalg::matmul_nt(y, y));
        k.iter().zip(l.iter()).map(|(a, b)| a * b).sum()
    }
}

/// Song et al.'s unbiased HSIC for linear kernels from `tr(K L)` and the per-representation
/// statistics, in O(n p) beyond the product.
fn hsic1_linear(tr_kl: f64, x: &LinearStats, y: &LinearStats) -> f64 {
    let n = x.diag.len() as f64;
    let tr = tr_kl - x.diag.iter().zip(&y.diag).map(|(a, b)| a * b).sum::<f64>();
    let k1l1: f64 = x.k_ones.iter().zip(&y.k_ones).map(|(a, b)| a * b).sum();
    (tr + x.ones_k_ones * y.ones_k_ones / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * k1l1)
        / (n * (n - 3.0))
}

/// Song et al.'s unbiased HSIC of two Gram matrices (zero diagonals taken internally).
fn hsic1_gram(k: &Array2<f64>, l: &Array2<f64>) -> f64 {
    let n = k.nrows();
    let nf = n as f64;
    let off = |m: &Array2<f64>, i: usize, j: usize| if i == j { 0.0 } else { m[[i, j]] };
    let mut tr = 0.0;
    let (mut sk, mut sl) = (0.0, 0.0);
    let mut k1 = vec![0.0; n];
    let mut l1 = vec![0.0; n];
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (off(k, i, j), off(l, i, j));
            tr += a * b;
            k1[i] += a;
            l1[i] += b;
        }
        sk += k1[i];
        sl += l1[i];
    }
    let k1l1: f64 = k1.iter().zip(&l1).map(|(a, b)| a * b).sum();
    (tr + sk * sl / ((nf - 1.0) * (nf - 2.0)) - 2.0 / (nf - 2.0) * k1l1) / (nf * (nf - 3.0))
}

/// Minibatch linear CKA (Nguyen et al. 2021): the unbiased HSIC averaged over batches of the
/// same samples, so that a dataset of any size is compared batch by batch in bounded memory
/// (feed it the batches a recording produces).
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::cka::{Cka, MinibatchCka};
/// let x = Array2::from_shape_fn((400, 20), |(i, j)| (((i * 31 + j * 17) % 97) as f64).sin());
/// let y = x.mapv(|v| 3.0 * v + 1.0);
/// let mut m = MinibatchCka::new();
/// for start in (0..400).step_by(100) {
///     let b = ndarray::s![start..start + 100, ..];
///     m.update(&x.slice(b), &y.slice(b))?;
/// }
/// assert!((m.value()? - 1.0).abs() < 1e-9);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MinibatchCka {
    xy: f64,
    xx: f64,
    yy: f64,
    batches: usize,
}

impl MinibatchCka {
    /// No batches yet.
    pub fn new() -> MinibatchCka {
        MinibatchCka::default()
    }
    /// Add one batch (the same samples in both, 4 or more).
    pub fn update<S1, S2, T1, T2>(
        &mut self,
        x: &ArrayBase<S1, Ix2>,
        y: &ArrayBase<S2, Ix2>,
    ) -> Result<()>
    where
        S1: Data<Elem = T1>,
        S2: Data<Elem = T2>,
        T1: Scalar,
        T2: Scalar,
    {
        let (x, y) = super::paired(x, y, "CKA first batch", "CKA second batch", 4)?;
        let (x, y) = (centred_columns(x), centred_columns(y));
        let (fx, fy) = (LinearStats::of(&x), LinearStats::of(&y));
        self.xy += hsic1_linear(cross_norm2(&x, &y), &fx, &fy);
        self.xx += hsic1_linear(cross_norm2(&x, &x), &fx, &fx);
        self.yy += hsic1_linear(cross_norm2(&y, &y), &fy, &fy);
        self.batches += 1;
        Ok(())
    }
    /// How many batches were added.
    pub fn batches(&self) -> usize {
        self.batches
    }
    /// The minibatch CKA over the batches so far.
    pub fn value(&self) -> Result<f64> {
        if self.batches == 0 {
            return Err(Error::InvalidArgument(
                "minibatch CKA: add at least one batch first".into(),
            ));
        }
        ratio(self.xy, self.xx, self.yy)
    }
}
