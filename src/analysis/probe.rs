//! Linear probes: where do the classes become linearly separable? A multinomial logistic
//! regression (scikit-learn's `LogisticRegression()`: L2, `C = 1`, L-BFGS, 100 iterations) is
//! trained on each layer's activations and scored on held-out stratified folds
//! (`StratifiedKFold(5)`, the same folds as scikit-learn's), giving one accuracy per layer.
//!
//! ```
//! use ndarray::Array2;
//! use neuroscope::analysis::probe::Probe;
//! // two classes that differ along the first feature
//! let y: Vec<usize> = (0..40).map(|i| i % 2).collect();
//! let x = Array2::from_shape_fn((40, 3), |(i, j)| if j == 0 { y[i] as f64 * 2.0 } else { ((i * 7 + j) % 5) as f64 });
//! let score = Probe::new().folds(5).score(&x, &y)?;
//! assert_eq!(score.mean(), 1.0);
//! # Ok::<(), neuroscope::Error>(())
//! ```

use super::{linalg, to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayBase, Axis, Data, Ix2};

/// scikit-learn's `StratifiedKFold(n_splits).split` without shuffling: the test fold of each
/// sample. Classes are taken in order of first appearance, each class's samples go to the folds
/// in blocks, and fold sizes per class follow scikit-learn's round-robin allocation, so the folds
/// are the very ones scikit-learn makes.
///
/// ```
/// let folds = neuroscope::analysis::probe::stratified_folds(&[0, 0, 1, 1, 0, 1], 3)?;
/// assert_eq!(folds, vec![0, 1, 0, 1, 2, 2]);
/// assert!(neuroscope::analysis::probe::stratified_folds(&[0, 1], 3).is_err());
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn stratified_folds(y: &[usize], n_splits: usize) -> Result<Vec<usize>> {
    if n_splits < 2 {
        return Err(Error::InvalidArgument(format!(
            "cross-validation needs at least 2 folds, got {n_splits}"
        )));
    }
    if y.len() < n_splits {
        return Err(Error::InvalidArgument(format!(
            "{} samples cannot be split into {n_splits} folds",
            y.len()
        )));
    }
    // classes in order of first appearance
    let mut order: Vec<usize> = Vec::new();
    for &c in y {
        if !order.contains(&c) {
            order.push(c);
        }
    }
    let enc: Vec<usize> = y
        .iter()
        .map(|c| order.iter().position(|o| o == c).unwrap_or(0))
        .collect();
    let k = order.len();
    let mut counts = vec![0usize; k];
    enc.iter().for_each(|&e| counts[e] += 1);
    if counts.iter().all(|&c| c < n_splits) {
        return Err(Error::InvalidArgument(format!(
            "{n_splits} folds is more than the number of samples of every class (largest: {}); use fewer folds",
            counts.iter().max().copied().unwrap_or(0)
        )));
    }
    let mut sorted = enc.clone();
    sorted.sort_unstable();
    // allocation[f][c]: samples of class c in test fold f
    let mut alloc = vec![vec![0usize; k]; n_splits];
    for (i, &c) in sorted.iter().enumerate() {
        alloc[i % n_splits][c] += 1;
    }
    let mut folds = vec![0usize; y.len()];
    for c in 0..k {
        let mut blocks = (0..n_splits).flat_map(|f| std::iter::repeat_n(f, alloc[f][c]));
        for (i, &e) in enc.iter().enumerate() {
            if e == c {
                folds[i] = blocks.next().unwrap_or(n_splits - 1);
            }
        }
    }
    Ok(folds)
}

/// Multinomial logistic regression with an L2 penalty (scikit-learn's `LogisticRegression()`
/// defaults: `C = 1`, `max_iter = 100`, `tol = 1e-4`, L-BFGS, unpenalised intercepts).
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::probe::LogisticRegression;
/// let x = array![[0.0, 1.0], [0.2, 0.9], [1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.1, 0.8]];
/// let y = [0, 0, 1, 1, 1, 0];
/// let model = LogisticRegression::new().c(10.0).fit(&x, &y)?;
/// assert_eq!(model.predict(&x)?, vec![0, 0, 1, 1, 1, 0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticRegression {
    c: f64,
    max_iter: usize,
    tol: f64,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        LogisticRegression::new()
    }
}

impl LogisticRegression {
    /// scikit-learn's defaults.
    pub fn new() -> LogisticRegression {
        LogisticRegression {
            c: 1.0,
            max_iter: 100,
            tol: 1e-4,
        }
    }
    /// Inverse regularisation strength (larger: weaker penalty).
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }
    /// Most L-BFGS iterations.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Stop when the largest gradient entry is below this.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    fn check(&self) -> Result<()> {
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "C must be a positive number, got {}",
                self.c
            )));
        }
        if self.max_iter == 0 || !(self.tol > 0.0) {
            return Err(Error::InvalidArgument(
                "max_iter must be at least 1 and tol positive".into(),
            ));
        }
        Ok(())
    }

    /// Fit to samples `x` (rows) and class labels `y` (2+ classes).
    pub fn fit<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
        y: &[usize],
    ) -> Result<FittedLogistic> {
        self.check()?;
        let x = to_f64_checked(x, "logistic regression samples", 2)?;
        super::check_len("labels", y.len(), x.nrows())?;
        let mut classes = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return Err(Error::InvalidArgument(format!(
                "logistic regression needs at least 2 classes; the labels hold only {:?}",
                classes
            )));
        }
        let target: Vec<usize> = y
            .iter()
            .map(|c| classes.binary_search(c).unwrap_or(0))
            .collect();
        Ok(self.fit_encoded(&x, &target, classes))
    }

    fn fit_encoded(&self, x: &Array2<f64>, y: &[usize], classes: Vec<usize>) -> FittedLogistic {
        let (n, p) = x.dim();
        let k = classes.len();
        let dim = k * (p + 1);
        let reg = 1.0 / (self.c * n as f64);
        // objective and gradient; parameters: k x p weights, then k intercepts
        let eval = |w: &[f64], grad: &mut [f64]| -> f64 {
            let wm = Array2::from_shape_fn((k, p), |(c, j)| w[c * p + j]);
            let mut z = linalg::matmul_nt(x, &wm);
            let mut loss = 0.0;
            for (i, mut row) in z.rows_mut().into_iter().enumerate() {
                row.iter_mut().zip(&w[k * p..]).for_each(|(v, b)| *v += b);
                let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
                let lse = m + s.ln();
                loss += lse - row[y[i]];
                row.mapv_inplace(|v| (v - lse).exp());
                row[y[i]] -= 1.0;
                row.mapv_inplace(|v| v / n as f64);
            }
            let gw = linalg::matmul_tn(&z, x);
            let gb = z.sum_axis(Axis(0));
            let mut pen = 0.0;
            for (j, g) in grad[..k * p].iter_mut().enumerate() {
                *g = gw.as_slice().map_or(0.0, |s| s[j]) + reg * w[j];
                pen += w[j] * w[j];
            }
            grad[k * p..].copy_from_slice(gb.as_slice().unwrap_or(&[]));
            loss / n as f64 + 0.5 * reg * pen
        };
        let (w, n_iter, converged) = lbfgs(dim, self.max_iter, self.tol, eval);
        FittedLogistic {
            coef: Array2::from_shape_fn((k, p), |(c, j)| w[c * p + j]),
            intercept: Array1::from(w[k * p..].to_vec()),
            classes,
            n_iter,
            converged,
        }
    }
}

/// L-BFGS (10 corrections) with a backtracking Armijo line search, from zero; stops when the
/// largest gradient entry is at most `tol` (SciPy's `gtol`, as scikit-learn calls it) or after
/// `max_iter` iterations. Returns the parameters, iterations and whether it converged.
fn lbfgs(
    dim: usize,
    max_iter: usize,
    tol: f64,
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
) -> (Vec<f64>, usize, bool) {
    const M: usize = 10;
    let mut x = vec![0.0; dim];
    let mut g = vec![0.0; dim];
    let mut fx = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
    let gmax = |g: &[f64]| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for it in 0..max_iter {
        if gmax(&g) <= tol {
            return (x, it, true);
        }
        // two-loop recursion for the direction -H g
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            alpha[i] = rho * dot(&s_hist[i], &q);
            q.iter_mut()
                .zip(&y_hist[i])
                .for_each(|(a, b)| *a -= alpha[i] * b);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / gmax(&g).max(1.0),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            let beta = rho * dot(&y_hist[i], &q);
            q.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(a, b)| *a += (alpha[i] - beta) * b);
        }
        let d: Vec<f64> = q.iter().map(|v| -v).collect();
        let slope = dot(&g, &d);
        if slope >= 0.0 {
            s_hist.clear();
            y_hist.clear();
            continue;
        }
        let mut step = 1.0;
        let mut g_new = vec![0.0; dim];
        let mut accepted = None;
        for _ in 0..50 {
            let xn: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + step * b).collect();
            let fn_ = f(&xn, &mut g_new);
            if fn_.is_finite() && fn_ <= fx + 1e-4 * step * slope {
                accepted = Some((xn, fn_));
                break;
            }
            step *= 0.5;
        }
        let Some((xn, fn_)) = accepted else {
            return (x, it + 1, false);
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        if dot(&s, &yv) > 1e-12 {
            if s_hist.len() == M {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(yv);
        }
        let df = fx - fn_;
        x = xn;
        g.copy_from_slice(&g_new);
        fx = fn_;
        // SciPy's ftol test: relative reduction below 64 eps
        if df <= 64.0 * f64::EPSILON * fx.abs().max(fn_.abs()).max(1.0) {
            return (x, it + 1, gmax(&g) <= tol);
        }
    }
    let ok = gmax(&g) <= tol;
    (x, max_iter, ok)
}

/// A fitted logistic regression.
#[derive(Debug, Clone)]
pub struct FittedLogistic {
    coef: Array2<f64>,
    intercept: Array1<f64>,
    classes: Vec<usize>,
    n_iter: usize,
    converged: bool,
}

impl FittedLogistic {
    /// Weights, classes x features (scikit-learn's `coef_`).
    pub fn coef(&self) -> &Array2<f64> {
        &self.coef
    }
    /// Intercepts, one per class (`intercept_`, up to a constant shared by all classes).
    pub fn intercept(&self) -> &Array1<f64> {
        &self.intercept
    }
    /// The class labels, ascending (`classes_`).
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }
    /// L-BFGS iterations run (`n_iter_`).
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
    /// Whether the gradient reached the tolerance (scikit-learn warns when it did not).
    pub fn converged(&self) -> bool {
        self.converged
    }
    /// Class probabilities, samples x classes (`predict_proba`).
    pub fn predict_proba<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f64>> {
        let x = to_f64_checked(x, "samples to classify", 1)?;
        if x.ncols() != self.coef.ncols() {
            return Err(Error::Shape {
                what: "samples to classify".into(),
                expected: format!("{} features, as in training", self.coef.ncols()),
                got: format!("{} features", x.ncols()),
            });
        }
        let mut z = linalg::matmul_nt(&x, &self.coef);
        for mut row in z.rows_mut() {
            row += &self.intercept;
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            row.mapv_inplace(|v| (v - m).exp());
            let s = row.sum();
            row.mapv_inplace(|v| v / s);
        }
        Ok(z)
    }
    /// The most probable class of each sample (`predict`).
    pub fn predict<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Vec<usize>> {
        let p = self.predict_proba(x)?;
        Ok(p.rows()
            .into_iter()
            .map(|r| {
                let mut best = 0;
                for (j, &v) in r.iter().enumerate() {
                    if v > r[best] {
                        best = j;
                    }
                }
                self.classes[best]
            })
            .collect())
    }
    /// Accuracy on `x`, `y` (`score`).
    pub fn score<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
        y: &[usize],
    ) -> Result<f64> {
        let pred = self.predict(x)?;
        super::check_len("labels", y.len(), pred.len())?;
        Ok(pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64)
    }
}

/// A cross-validated linear probe, set up once: folds, the logistic regression's settings, and
/// whether features are standardised on each training fold first.
///
/// Standardising (scikit-learn's `make_pipeline(StandardScaler(), LogisticRegression())`) is on
/// by default: activations of different layers differ in scale by orders of magnitude, and
/// without it the same `C` means a different penalty per layer and L-BFGS stops far from the
/// optimum within 100 iterations (scikit-learn's ConvergenceWarning).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    folds: usize,
    model: LogisticRegression,
    standardize: bool,
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

/// Held-out accuracies of a probe, one per fold.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeScore {
    /// Accuracy on each test fold.
    pub fold_accuracies: Vec<f64>,
    /// Folds where L-BFGS stopped before the tolerance (scikit-learn's ConvergenceWarning).
    pub not_converged: usize,
}

impl ProbeScore {
    /// Mean accuracy over the folds (`cross_val_score(...).mean()`).
    pub fn mean(&self) -> f64 {
        self.fold_accuracies.iter().sum::<f64>() / self.fold_accuracies.len() as f64
    }
    /// Standard deviation over the folds (ddof 0, as NumPy's `std`).
    pub fn std(&self) -> f64 {
        let m = self.mean();
        (self
            .fold_accuracies
            .iter()
            .map(|a| (a - m) * (a - m))
            .sum::<f64>()
            / self.fold_accuracies.len() as f64)
            .sqrt()
    }
}

impl Probe {
    /// 5 stratified folds, `LogisticRegression::new()`, standardised features.
    pub fn new() -> Probe {
        Probe {
            folds: 5,
            model: LogisticRegression::new(),
            standardize: true,
        }
    }
    /// Number of stratified folds.
    pub fn folds(mut self, k: usize) -> Self {
        self.folds = k;
        self
    }
    /// The classifier's settings.
    pub fn model(mut self, model: LogisticRegression) -> Self {
        self.model = model;
        self
    }
    /// Standardise features on each training fold (default on).
    pub fn standardize(mut self, on: bool) -> Self {
        self.standardize = on;
        self
    }

    /// Cross-validated accuracy of a probe on `x` with labels `y`.
    pub fn score<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
        y: &[usize],
    ) -> Result<ProbeScore> {
        self.model.check()?;
        let x = to_f64_checked(x, "probe samples", 2)?;
        super::check_len("labels", y.len(), x.nrows())?;
        let folds = stratified_folds(y, self.folds)?;
        let results: Vec<Result<(f64, bool)>> = {
            use rayon::prelude::*;
            (0..self.folds)
                .into_par_iter()
                .map(|f| {
                    let train: Vec<usize> = (0..y.len()).filter(|&i| folds[i] != f).collect();
                    let test: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == f).collect();
                    let (mut xtr, mut xte) = (x.select(Axis(0), &train), x.select(Axis(0), &test));
                    if self.standardize {
                        standardize(&mut xtr, &mut xte);
                    }
                    let ytr: Vec<usize> = train.iter().map(|&i| y[i]).collect();
                    let yte: Vec<usize> = test.iter().map(|&i| y[i]).collect();
                    let m = self.model.fit(&xtr, &ytr)?;
                    Ok((m.score(&xte, &yte)?, m.converged()))
                })
                .collect()
        };
        let mut score = ProbeScore {
            fold_accuracies: Vec::new(),
            not_converged: 0,
        };
        for r in results {
            let (acc, ok) = r?;
            score.fold_accuracies.push(acc);
            score.not_converged += usize::from(!ok);
        }
        Ok(score)
    }

    /// A probe per layer (name, samples x features), all with the same labels and folds: the
    /// accuracy curve over depth.
    pub fn layers(
        &self,
        layers: &[(String, Array2<f32>)],
        y: &[usize],
    ) -> Result<Vec<(String, ProbeScore)>> {
        let mut progress = crate::progress::Progress::new("probes", layers.len());
        let mut out = Vec::new();
        for (name, x) in layers {
            let s = self
                .score(x, y)
                .map_err(|e| e.context(&format!("layer {name}")))?;
            out.push((name.clone(), s));
            progress.inc(1);
            if crate::progress::take_stop_request() {
                break;
            }
        }
        progress.finish();
        Ok(out)
    }
}

/// scikit-learn's `StandardScaler` fitted on `train` and applied to both (ddof 0; a constant
/// feature keeps scale 1).
fn standardize(train: &mut Array2<f64>, test: &mut Array2<f64>) {
    let n = train.nrows() as f64;
    let mean = train
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(train.ncols()));
    let mut sd = Array1::<f64>::zeros(train.ncols());
    for row in train.rows() {
        sd.iter_mut()
            .zip(row.iter().zip(&mean))
            .for_each(|(s, (v, m))| *s += (v - m) * (v - m));
    }
    sd.mapv_inplace(|v| {
        let s = (v / n).sqrt();
        if s < 10.0 * f64::EPSILON * 1.0f64.max(s) || s == 0.0 {
            1.0
        } else {
            s
        }
    });
    for m in [train, test] {
        for mut row in m.rows_mut() {
            row.zip_mut_with(&mean, |v, mu| *v -= mu);
            row.zip_mut_with(&sd, |v, s| *v /= s);
        }
    }
}
