//! RDM estimators with rsatoolbox 0.3.2's definitions (`rsatoolbox.rdm.calc_rdm`): squared
//! euclidean and Mahalanobis distances divided by the number of channels, correlation distance,
//! and the cross-validated Mahalanobis distance (crossnobis) over runs; measurements of one
//! condition averaged first, conditions in ascending order of their labels.

use super::rdms::{upper_triangle, Rdms};
use crate::analysis::{linalg, to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Axis, Data, Ix2};

/// How dissimilarities between condition patterns are measured (rsatoolbox's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdmMethod {
    /// Squared euclidean distance divided by the number of channels (rsatoolbox's
    /// `'euclidean'`, which it labels "squared euclidean"): comparable across layers of any width.
    Euclidean,
    /// `1 - r`, the Pearson correlation of the two patterns.
    Correlation,
    /// Squared Mahalanobis distance `(a - b)' P (a - b) / channels` with a noise precision `P`
    /// (given, or estimated from the residuals around the condition means); euclidean without one.
    Mahalanobis,
    /// Cross-validated Mahalanobis distance, leave one run out: an unbiased estimate whose
    /// expected value is 0 for two conditions that do not differ (needs 2+ runs).
    Crossnobis,
}

impl RdmMethod {
    /// Parse rsatoolbox's names: `euclidean`, `correlation`, `mahalanobis`, `crossnobis`.
    ///
    /// ```
    /// use neuroscope::analysis::rsa::RdmMethod;
    /// assert_eq!(RdmMethod::parse("crossnobis")?, RdmMethod::Crossnobis);
    /// assert!(RdmMethod::parse("poisson").is_err());
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "euclidean" => Ok(RdmMethod::Euclidean),
            "correlation" => Ok(RdmMethod::Correlation),
            "mahalanobis" => Ok(RdmMethod::Mahalanobis),
            "crossnobis" => Ok(RdmMethod::Crossnobis),
            _ => Err(Error::UnknownName {
                kind: "RDM method".into(),
                name: s.into(),
                valid: "euclidean, correlation, mahalanobis, crossnobis".into(),
            }),
        }
    }
    /// rsatoolbox's `dissimilarity_measure` for this method.
    pub fn measure(self) -> &'static str {
        match self {
            RdmMethod::Euclidean => "squared euclidean",
            RdmMethod::Correlation => "correlation",
            RdmMethod::Mahalanobis => "squared mahalanobis",
            RdmMethod::Crossnobis => "crossnobis",
        }
    }
}

from_str_by_parse!(RdmMethod);

/// How a noise covariance is estimated from residuals (rsatoolbox's `method` of
/// `prec_from_unbalanced`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shrinkage {
    /// Shrink toward the diagonal (Schäfer & Strimmer 2005); rsatoolbox's default.
    Diag,
    /// Shrink toward a multiple of the identity (Ledoit & Wolf 2004).
    Eye,
    /// The diagonal only: a univariate noise normaliser.
    DiagOnly,
    /// The sample covariance, no shrinkage (needs more residuals than channels).
    Full,
}

impl Shrinkage {
    /// Parse rsatoolbox's names: `shrinkage_diag`, `shrinkage_eye`, `diag`, `full`.
    ///
    /// ```
    /// use neuroscope::analysis::rsa::Shrinkage;
    /// assert_eq!(Shrinkage::parse("shrinkage_eye")?, Shrinkage::Eye);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "shrinkage_diag" => Ok(Shrinkage::Diag),
            "shrinkage_eye" => Ok(Shrinkage::Eye),
            "diag" => Ok(Shrinkage::DiagOnly),
            "full" => Ok(Shrinkage::Full),
            _ => Err(Error::UnknownName {
                kind: "noise estimate".into(),
                name: s.into(),
                valid: "shrinkage_diag, shrinkage_eye, diag, full".into(),
            }),
        }
    }
}

from_str_by_parse!(Shrinkage);

/// Sorted distinct labels and, for each measurement, the index of its label.
fn unique_inverse(labels: &[i64]) -> (Vec<i64>, Vec<usize>) {
    let mut u = labels.to_vec();
    u.sort_unstable();
    u.dedup();
    let inv = labels
        .iter()
        .map(|l| u.binary_search(l).unwrap_or(0))
        .collect();
    (u, inv)
}

/// Mean measurement per condition, rows in the order of `n_groups` group indices.
fn average_by(x: &Array2<f64>, group: &[usize], n_groups: usize, rows: &[usize]) -> Array2<f64> {
    let p = x.ncols();
    let mut sum = Array2::<f64>::zeros((n_groups, p));
    let mut count = vec![0usize; n_groups];
    for &r in rows {
        let g = group[r];
        count[g] += 1;
        sum.row_mut(g).zip_mut_with(&x.row(r), |s, v| *s += v);
    }
    for (g, mut row) in sum.rows_mut().into_iter().enumerate() {
        let c = count[g].max(1) as f64;
        row.mapv_inplace(|v| v / c);
    }
    sum
}

fn remove_row_means(x: &mut Array2<f64>) {
    for mut row in x.rows_mut() {
        let m = row.mean().unwrap_or(0.0);
        row.mapv_inplace(|v| v - m);
    }
}

/// Noise precision (inverse covariance) from the residuals of each measurement around its
/// condition's mean, with `n - conditions` degrees of freedom (rsatoolbox's
/// `prec_from_unbalanced`): the `noise` a Mahalanobis or crossnobis RDM whitens with.
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::rsa::{noise_precision, Shrinkage};
/// let x = Array2::from_shape_fn((12, 3), |(i, j)| ((i * 7 + j * 3) % 5) as f64 + (i % 3) as f64);
/// let conditions: Vec<i64> = (0..12).map(|i| (i % 3) as i64).collect();
/// let p = noise_precision(&x, &conditions, Shrinkage::Diag)?;
/// assert_eq!(p.dim(), (3, 3));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn noise_precision<S: Data<Elem = T>, T: Scalar>(
    x: &ArrayBase<S, Ix2>,
    conditions: &[i64],
    shrinkage: Shrinkage,
) -> Result<Array2<f64>> {
    let x = to_f64_checked(x, "measurements", 2)?;
    crate::analysis::check_len("condition labels", conditions.len(), x.nrows())?;
    let (u, inv) = unique_inverse(conditions);
    let n = x.nrows();
    if n <= u.len() {
        return Err(Error::InvalidArgument(format!(
            "estimating the noise needs repeated measurements: {n} measurements of {} conditions leave no residuals; pass a precision matrix instead",
            u.len()
        )));
    }
    let all: Vec<usize> = (0..n).collect();
    let means = average_by(&x, &inv, u.len(), &all);
    let mut res = x.clone();
    for (r, mut row) in res.rows_mut().into_iter().enumerate() {
        row.zip_mut_with(&means.row(inv[r]), |v, m| *v -= m);
    }
    let dof = (n - u.len()) as f64;
    let cov = covariance(res, dof, shrinkage);
    linalg::inverse(&cov).map_err(|e| {
        e.context(
            "the noise covariance (fewer residuals than channels? use Shrinkage::Diag or Eye)",
        )
    })
}

/// rsatoolbox's `_estimate_covariance`: demean the columns, then the chosen estimator.
fn covariance(mut m: Array2<f64>, dof: f64, shrinkage: Shrinkage) -> Array2<f64> {
    if let Some(col_means) = m.mean_axis(Axis(0)) {
        for mut row in m.rows_mut() {
            row -= &col_means;
        }
    }
    let (n, p) = m.dim();
    let nf = n as f64;
    let xtx = linalg::cross(&m); // sum over rows of outer products
    match shrinkage {
        Shrinkage::Full => xtx / dof,
        Shrinkage::DiagOnly => Array2::from_diag(&xtx.diag().mapv(|v| v / dof)),
        Shrinkage::Eye => {
            let sq = m.mapv(|v| v * v);
            let s2_sum = linalg::cross(&sq);
            let s = &xtx / nf;
            let b2_raw = (&s2_sum / nf - &s * &s).sum() / nf;
            let mean_var = s.diag().sum() / p as f64;
            let mut d2 = 0.0;
            for ((i, j), v) in s.indexed_iter() {
                let t = if i == j { v - mean_var } else { *v };
                d2 += t * t;
            }
            let b2 = b2_raw.min(d2);
            let mut out = s.mapv(|v| (d2 - b2) / d2 * v);
            for i in 0..p {
                out[[i, i]] += b2 / d2 * mean_var;
            }
            out * (nf / dof)
        }
        Shrinkage::Diag => {
            let sq = m.mapv(|v| v * v);
            let s2_sum = linalg::cross(&sq);
            let s = &xtx / dof;
            let var = s.diag().to_owned();
            let std = var.mapv(f64::sqrt);
            let (mut num, mut den) = (0.0, 0.0);
            for i in 0..p {
                for j in 0..p {
                    if i == j {
                        continue;
                    }
                    let s_mean = xtx[[i, j]] / std[i] / std[j] / (nf - 1.0);
                    let s2_mean = s2_sum[[i, j]] / var[i] / var[j] / (nf - 1.0);
                    num += nf / (dof * dof) * (s2_mean - s_mean * s_mean);
                    den += s_mean * s_mean;
                }
            }
            let lamb = (num / den).clamp(0.0, 1.0);
            let lamb = if lamb.is_nan() { 1.0 } else { lamb };
            Array2::from_shape_fn((p, p), |(i, j)| {
                if i == j {
                    s[[i, j]]
                } else {
                    s[[i, j]] * (1.0 - lamb)
                }
            })
        }
    }
}

/// RDM estimation with rsatoolbox's definitions (`rsatoolbox.rdm.calc_rdm`), set up once and
/// applied to a measurement matrix (rows are measurements, columns channels or units).
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::rsa::{CalcRdm, RdmMethod};
/// let x = array![[1.0, 2.0, 3.0], [2.0, 4.0, 6.5], [3.0, 1.0, 0.0]];
/// let rdm = CalcRdm::new(RdmMethod::Euclidean).compute(&x)?;
/// // squared distance / channels: (1 + 4 + 12.25) / 3
/// assert!((rdm.vector(0)[0] - 17.25 / 3.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CalcRdm {
    method: RdmMethod,
    conditions: Option<Vec<i64>>,
    runs: Option<Vec<i64>>,
    precision: Option<Array2<f64>>,
    noise: Option<Shrinkage>,
    remove_mean: bool,
}

impl CalcRdm {
    /// An estimator with rsatoolbox's defaults: one condition per measurement, identity noise.
    pub fn new(method: RdmMethod) -> CalcRdm {
        CalcRdm {
            method,
            conditions: None,
            runs: None,
            precision: None,
            noise: None,
            remove_mean: false,
        }
    }
    /// The condition of each measurement (rsatoolbox's `descriptor`): measurements of one
    /// condition are averaged, and the RDM's rows follow the labels in ascending order.
    pub fn conditions(mut self, labels: &[i64]) -> Self {
        self.conditions = Some(labels.to_vec());
        self
    }
    /// The run (partition) of each measurement (rsatoolbox's `cv_descriptor`), for crossnobis.
    pub fn runs(mut self, labels: &[i64]) -> Self {
        self.runs = Some(labels.to_vec());
        self
    }
    /// A noise precision matrix, channels x channels (rsatoolbox's `noise`).
    pub fn precision(mut self, precision: Array2<f64>) -> Self {
        self.precision = Some(precision);
        self
    }
    /// Estimate the noise precision from the residuals around the condition means
    /// ([`noise_precision`]) instead of giving one.
    pub fn estimate_noise(mut self, shrinkage: Shrinkage) -> Self {
        self.noise = Some(shrinkage);
        self
    }
    /// Subtract each pattern's mean over channels first (rsatoolbox's `remove_mean`; no effect
    /// on correlation distance).
    pub fn remove_mean(mut self, on: bool) -> Self {
        self.remove_mean = on;
        self
    }

    /// Check the set-up against the data before any work: label lengths, at least two
    /// conditions, the precision's shape, two or more runs for crossnobis with every condition in
    /// every run.
    fn check(&self, n: usize, p: usize) -> Result<(Vec<i64>, Vec<usize>)> {
        let labels = match &self.conditions {
            Some(c) => {
                crate::analysis::check_len("condition labels", c.len(), n)?;
                c.clone()
            }
            None => (0..n as i64).collect(),
        };
        let (u, inv) = unique_inverse(&labels);
        if u.len() < 2 {
            return Err(Error::InvalidArgument(format!(
                "an RDM needs at least 2 conditions; the labels name {}",
                u.len()
            )));
        }
        if let Some(pr) = &self.precision {
            if pr.dim() != (p, p) {
                return Err(Error::Shape {
                    what: "noise precision".into(),
                    expected: format!("{p} x {p} (channels x channels)"),
                    got: format!("{} x {}", pr.nrows(), pr.ncols()),
                });
            }
            if pr.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument(
                    "the noise precision holds NaN or infinite values".into(),
                ));
            }
        }
        if self.precision.is_some() && self.noise.is_some() {
            return Err(Error::InvalidArgument(
                "give a noise precision or ask to estimate one, not both".into(),
            ));
        }
        if let Some(r) = &self.runs {
            crate::analysis::check_len("run labels", r.len(), n)?;
            if self.method != RdmMethod::Crossnobis {
                return Err(Error::InvalidArgument(format!(
                    "run labels are used by crossnobis only, not by {:?}; drop them or use crossnobis",
                    self.method
                )));
            }
        }
        if self.method == RdmMethod::Crossnobis {
            if self.conditions.is_none() {
                return Err(Error::InvalidArgument(
                    "crossnobis needs condition labels: each condition measured in several runs"
                        .into(),
                ));
            }
            let Some(runs) = &self.runs else {
                return Err(Error::InvalidArgument(
                    "crossnobis needs run labels (which run each measurement is from)".into(),
                ));
            };
            let (ru, rinv) = unique_inverse(runs);
            if ru.len() < 2 {
                return Err(Error::InvalidArgument(format!(
                    "crossnobis needs at least 2 runs to cross-validate; the run labels name {} ({:?})",
                    ru.len(),
                    ru
                )));
            }
            let mut seen = vec![vec![false; u.len()]; ru.len()];
            for (k, &c) in inv.iter().enumerate() {
                seen[rinv[k]][c] = true;
            }
            for (r, s) in seen.iter().enumerate() {
                if let Some(c) = s.iter().position(|&b| !b) {
                    return Err(Error::InvalidArgument(format!(
                        "condition {} has no measurement in run {}: crossnobis needs every condition in every run",
                        u[c], ru[r]
                    )));
                }
            }
        }
        if self.noise.is_some()
            && !matches!(self.method, RdmMethod::Mahalanobis | RdmMethod::Crossnobis)
        {
            return Err(Error::InvalidArgument(format!(
                "a noise estimate is used by mahalanobis and crossnobis only, not by {:?}",
                self.method
            )));
        }
        if self.noise.is_some() && self.conditions.is_none() {
            return Err(Error::InvalidArgument(
                "estimating the noise needs condition labels (repeated measurements of each condition); give them, or a precision matrix".into(),
            ));
        }
        Ok((u, inv))
    }

    /// Estimate the RDM of the measurements `x` (rows measurements, columns channels).
    pub fn compute<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<Rdms> {
        let x = to_f64_checked(x, "measurements", 2)?;
        let (n, p) = x.dim();
        let (u, inv) = self.check(n, p)?;
        crate::analysis::check_dense(u.len(), "an RDM")?;
        let precision = match (self.noise, &self.precision) {
            (Some(s), _) => Some(noise_precision(
                &x,
                self.conditions.as_deref().unwrap_or_default(),
                s,
            )?),
            (None, Some(pr)) => Some(pr.clone()),
            (None, None) => None,
        };
        let all: Vec<usize> = (0..n).collect();
        let averaged = || {
            let mut m = average_by(&x, &inv, u.len(), &all);
            if self.remove_mean {
                remove_row_means(&mut m);
            }
            m
        };
        let pf = p as f64;
        let vector = match self.method {
            RdmMethod::Euclidean => {
                let m = averaged();
                upper_triangle(&squared_distances(&linalg::gram(&m))) / pf
            }
            RdmMethod::Mahalanobis => {
                let m = averaged();
                let k = match &precision {
                    Some(pr) => linalg::matmul_nt(&linalg::matmul_nn(&m, pr), &m),
                    None => linalg::gram(&m),
                };
                upper_triangle(&squared_distances(&k)) / pf
            }
            RdmMethod::Correlation => {
                let mut m = average_by(&x, &inv, u.len(), &all);
                remove_row_means(&mut m);
                for (i, mut row) in m.rows_mut().into_iter().enumerate() {
                    let norm = row.dot(&row).sqrt();
                    if norm == 0.0 {
                        return Err(Error::InvalidArgument(format!(
                            "condition {} has a constant pattern, so its correlation distance is undefined; drop the condition or use euclidean",
                            u[i]
                        )));
                    }
                    row.mapv_inplace(|v| v / norm);
                }
                upper_triangle(&linalg::gram(&m)).mapv(|v| 1.0 - v)
            }
            RdmMethod::Crossnobis => {
                let runs = self.runs.as_deref().unwrap_or(&[]);
                let (ru, rinv) = unique_inverse(runs);
                let nc = u.len();
                // per-run sums and counts of each condition, in one pass; a training set's mean
                // is (all - this run) / (its count), rsatoolbox's average over the other runs
                let mut sums = vec![Array2::<f64>::zeros((nc, p)); ru.len()];
                let mut counts = vec![vec![0usize; nc]; ru.len()];
                for (r, row) in x.rows().into_iter().enumerate() {
                    let (f, c) = (rinv[r], inv[r]);
                    sums[f].row_mut(c).zip_mut_with(&row, |s, v| *s += v);
                    counts[f][c] += 1;
                }
                let total = sums
                    .iter()
                    .fold(Array2::<f64>::zeros((nc, p)), |acc, s| acc + s);
                let total_counts: Vec<usize> =
                    (0..nc).map(|c| counts.iter().map(|k| k[c]).sum()).collect();
                let mut sum = ndarray::Array1::<f64>::zeros(nc * (nc - 1) / 2);
                for fold in 0..ru.len() {
                    let mut a = &total - &sums[fold];
                    let mut b = sums[fold].clone();
                    for c in 0..nc {
                        let (kt, kf) = (total_counts[c] - counts[fold][c], counts[fold][c]);
                        a.row_mut(c).mapv_inplace(|v| v / kt as f64);
                        b.row_mut(c).mapv_inplace(|v| v / kf as f64);
                    }
                    if self.remove_mean {
                        remove_row_means(&mut a);
                        remove_row_means(&mut b);
                    }
                    let k = match &precision {
                        Some(pr) => linalg::matmul_nt(&linalg::matmul_nn(&a, pr), &b),
                        None => linalg::matmul_nt(&a, &b),
                    };
                    let mut kk = 0;
                    for i in 0..nc {
                        for j in i + 1..nc {
                            sum[kk] += (k[[i, i]] + k[[j, j]] - k[[i, j]] - k[[j, i]]) / pf;
                            kk += 1;
                        }
                    }
                }
                sum / ru.len() as f64
            }
        };
        let names: Vec<String> = u.iter().map(|l| l.to_string()).collect();
        Rdms::from_vectors(vector.insert_axis(Axis(0)))?
            .with_conditions(&names)
            .map(|r| r.with_measure(self.method.measure()))
    }
}

/// `k_ii + k_jj - 2 k_ij` for a kernel (Gram) matrix.
fn squared_distances(k: &Array2<f64>) -> Array2<f64> {
    let n = k.nrows();
    Array2::from_shape_fn((n, n), |(i, j)| k[[i, i]] + k[[j, j]] - 2.0 * k[[i, j]])
}
