//! Model comparison with inference, as rsatoolbox 0.3.2 does it (`rsatoolbox.inference`):
//! pooled data RDMs, leave-one-out noise ceilings, a seeded bootstrap over conditions, over data
//! RDMs (subjects) or both, and t-tests on the bootstrap variances.
//!
//! The bootstrap draws its own seeded numbers, so its samples are not NumPy's: the same seed gives
//! the same intervals here on every run, and intervals agree with rsatoolbox's in distribution.

use super::compare::{compare_unchecked, Comparison};
use super::correlation::rank;
use super::rdms::Rdms;
use crate::rng::Rng;
use crate::{Error, Result};
use ndarray::{Array1, Array2, Axis};

/// The one RDM that best represents a set under a comparison (rsatoolbox's `pool_rdm`): the
/// mean of the RDMs after the normalisation the comparison ignores (scale for cosines, scale
/// and offset for correlations, ranks for rank correlations).
///
/// ```
/// use neuroscope::analysis::rsa::{pool_rdm, Comparison, Rdms};
/// let r = Rdms::from_vectors(ndarray::array![[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])?;
/// let p = pool_rdm(&r, Comparison::Spearman);
/// assert_eq!(p.vector(0).to_vec(), vec![2.0, 2.0, 2.0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn pool_rdm(rdms: &Rdms, method: Comparison) -> Rdms {
    let v = rdms.vectors();
    let mut rows: Vec<Array1<f64>> = Vec::with_capacity(v.nrows());
    for row in v.rows() {
        let vals: Vec<f64> = row.iter().copied().filter(|x| !x.is_nan()).collect();
        let n = vals.len().max(1) as f64;
        let r = match method {
            Comparison::Cosine | Comparison::CosineCov => {
                let rms = (vals.iter().map(|x| x * x).sum::<f64>() / n).sqrt();
                row.mapv(|x| x / rms)
            }
            Comparison::Corr | Comparison::CorrCov => {
                let mean = vals.iter().sum::<f64>() / n;
                let sd = (vals.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
                row.mapv(|x| (x - mean) / sd)
            }
            _ => {
                // ranks of the non-NaN entries, NaN kept in place
                let ranks = rank(&vals);
                let mut it = ranks.into_iter();
                row.mapv(|x| {
                    if x.is_nan() {
                        f64::NAN
                    } else {
                        it.next().unwrap_or(f64::NAN)
                    }
                })
            }
        };
        rows.push(r);
    }
    // rsatoolbox's _nan_mean: the columns that are not NaN in the first RDM
    let m = v.ncols();
    let mut mean = Array1::from_elem(m, f64::NAN);
    for j in 0..m {
        if !rows[0][j].is_nan() {
            mean[j] = rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64;
        }
    }
    if matches!(method, Comparison::Corr | Comparison::CorrCov) {
        let min = mean
            .iter()
            .copied()
            .filter(|x| !x.is_nan())
            .fold(f64::INFINITY, f64::min);
        mean.mapv_inplace(|x| x - min);
    }
    Rdms::from_vectors(mean.insert_axis(Axis(0)))
        .and_then(|r| r.with_conditions(rdms.conditions()))
        .unwrap_or_else(|_| rdms.clone())
}

/// Lower and upper bound of the noise ceiling (rsatoolbox's `boot_noise_ceiling` on all data):
/// the mean comparison of each data RDM with the pooled RDM of the others (lower: no model can be
/// expected to beat what the other subjects predict) and with the pooled RDM of all (upper).
///
/// `groups[i]` is the subject of data RDM `i` (`None`: one subject per RDM); a subject drawn
/// several times by a bootstrap is left out as a whole.
///
/// ```
/// use neuroscope::analysis::rsa::{noise_ceiling, Comparison, Rdms};
/// let data = Rdms::from_vectors(ndarray::array![[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
///                                              [1.5, 2.0, 2.5, 4.5, 5.0, 7.0],
///                                              [1.0, 3.0, 2.0, 4.0, 6.5, 6.0]])?;
/// let (lower, upper) = noise_ceiling(&data, Comparison::Corr, None)?;
/// assert!(lower <= upper && upper <= 1.0);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn noise_ceiling(
    data: &Rdms,
    method: Comparison,
    groups: Option<&[usize]>,
) -> Result<(f64, f64)> {
    let own: Vec<usize> = (0..data.len()).collect();
    let groups = groups.unwrap_or(&own);
    crate::analysis::check_len("subject of each data RDM", groups.len(), data.len())?;
    let mut subjects = groups.to_vec();
    subjects.sort_unstable();
    subjects.dedup();
    if subjects.len() < 2 {
        return Err(Error::InvalidArgument(format!(
            "a noise ceiling needs data RDMs of at least 2 subjects (got {}): it compares each with the others",
            subjects.len()
        )));
    }
    Ok(noise_ceiling_unchecked(data, method, groups, &subjects))
}

fn noise_ceiling_unchecked(
    data: &Rdms,
    method: Comparison,
    groups: &[usize],
    subjects: &[usize],
) -> (f64, f64) {
    let all = pool_rdm(data, method);
    let (mut lo, mut hi) = (0.0, 0.0);
    for &s in subjects {
        let test: Vec<usize> = (0..data.len()).filter(|&i| groups[i] == s).collect();
        let train: Vec<usize> = (0..data.len()).filter(|&i| groups[i] != s).collect();
        let (Ok(test), Ok(train)) = (data.select(&test), data.select(&train)) else {
            return (f64::NAN, f64::NAN);
        };
        let pooled = pool_rdm(&train, method);
        lo += mean(&compare_unchecked(&pooled, &test, method));
        hi += mean(&compare_unchecked(&all, &test, method));
    }
    (lo / subjects.len() as f64, hi / subjects.len() as f64)
}

fn mean(a: &Array2<f64>) -> f64 {
    a.mean().unwrap_or(f64::NAN)
}

/// What a bootstrap resamples (rsatoolbox's `eval_bootstrap_pattern`, `eval_bootstrap_rdm` and
/// `eval_bootstrap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapOver {
    /// Conditions (stimuli): generalisation to new stimuli from the same population.
    Conditions,
    /// Data RDMs (subjects): generalisation to new subjects.
    Rdms,
    /// Both at once.
    Both,
}

/// A seeded bootstrap evaluation of model RDMs against data RDMs, set up once and run with
/// [`Bootstrap::fit`] (rsatoolbox's `eval_bootstrap_*` with 1,000 samples by default).
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::rsa::{Bootstrap, BootstrapOver, Comparison, Rdms};
/// // 8 conditions in two groups; data RDMs that follow the grouping, with noise
/// let group = |i: usize| i / 4;
/// let model = Array2::from_shape_fn((8, 8), |(i, j)| if i == j { 0.0 } else if group(i) == group(j) { 0.0 } else { 1.0 });
/// let data: Vec<Array2<f64>> = (0..3).map(|s| Array2::from_shape_fn((8, 8), |(i, j)| {
///     if i == j { 0.0 } else { model[[i, j]] + 0.3 * (((i + j) * (s + 3) % 7) as f64 / 7.0) }
/// })).collect();
/// let models = [("grouping", Rdms::from_matrices(&[model])?)];
/// let result = Bootstrap::new(Comparison::Corr).samples(200).seed(1)
///     .over(BootstrapOver::Conditions).fit(&models, &Rdms::from_matrices(&data)?)?;
/// let (lo, hi) = result.ci(0.95)[0];
/// assert!(lo < result.means()[0] && result.means()[0] < hi);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Bootstrap {
    method: Comparison,
    samples: usize,
    seed: u64,
    over: BootstrapOver,
}

impl Bootstrap {
    /// 1,000 samples over conditions, seed 0 (rsatoolbox's `N=1000`, `eval_bootstrap_pattern`).
    pub fn new(method: Comparison) -> Bootstrap {
        Bootstrap {
            method,
            samples: 1000,
            seed: 0,
            over: BootstrapOver::Conditions,
        }
    }
    /// Number of bootstrap samples.
    pub fn samples(mut self, n: usize) -> Self {
        self.samples = n;
        self
    }
    /// Seed of the resampling.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// What is resampled.
    pub fn over(mut self, over: BootstrapOver) -> Self {
        self.over = over;
        self
    }

    /// Evaluate each named model RDM (one RDM each) against the data RDMs.
    ///
    /// Checked before any work: at least 2 samples; every model one RDM over the data's
    /// conditions; 3+ conditions; 2+ data RDMs when resampling them. Progress shows for long
    /// runs, and a stop request (Ctrl-C in the command-line program) ends the run with the
    /// samples drawn so far.
    pub fn fit<N: AsRef<str>>(&self, models: &[(N, Rdms)], data: &Rdms) -> Result<ModelComparison> {
        if self.samples < 2 {
            return Err(Error::InvalidArgument(format!(
                "a bootstrap needs at least 2 samples, got {}",
                self.samples
            )));
        }
        if models.is_empty() {
            return Err(Error::InvalidArgument("give at least one model RDM".into()));
        }
        for (name, m) in models {
            if m.len() != 1 {
                return Err(Error::InvalidArgument(format!(
                    "model {} holds {} RDMs; a model is one RDM",
                    name.as_ref(),
                    m.len()
                )));
            }
            if m.n_conditions() != data.n_conditions() {
                return Err(Error::Shape {
                    what: format!("model RDM {}", name.as_ref()),
                    expected: format!("{} conditions, as the data RDMs", data.n_conditions()),
                    got: format!("{} conditions", m.n_conditions()),
                });
            }
        }
        let n_cond = data.n_conditions();
        if n_cond < 3 {
            return Err(Error::InvalidArgument(format!(
                "a bootstrap over conditions needs at least 3 conditions, the RDMs compare {n_cond}"
            )));
        }
        let n_rdm = data.len();
        if self.over != BootstrapOver::Conditions && n_rdm < 2 {
            return Err(Error::InvalidArgument(
                "a bootstrap over data RDMs (subjects) needs at least 2 of them; bootstrap over conditions instead".into(),
            ));
        }
        // Draw every sample's indices first, in order, so that the numbers do not depend on how
        // the work is split over threads.
        let mut rng = Rng::new(self.seed);
        let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..self.samples)
            .map(|_| {
                let rdm_idx = if self.over == BootstrapOver::Conditions {
                    (0..n_rdm).collect()
                } else {
                    (0..n_rdm)
                        .map(|_| rng.below(n_rdm as u64) as usize)
                        .collect()
                };
                let pat_idx = if self.over == BootstrapOver::Rdms {
                    (0..n_cond).collect()
                } else {
                    (0..n_cond)
                        .map(|_| rng.below(n_cond as u64) as usize)
                        .collect()
                };
                (rdm_idx, pat_idx)
            })
            .collect();
        let with_nc = n_rdm >= 2;
        let model_rdms: Vec<&Rdms> = models.iter().map(|(_, m)| m).collect();
        let mut progress = crate::progress::Progress::new("bootstrap", self.samples);
        let mut rows: Vec<(Vec<f64>, (f64, f64))> = Vec::with_capacity(self.samples);
        use rayon::prelude::*;
        for chunk in draws.chunks(64) {
            let done: Vec<(Vec<f64>, (f64, f64))> = chunk
                .par_iter()
                .map(|(rdm_idx, pat_idx)| {
                    self.one_sample(&model_rdms, data, rdm_idx, pat_idx, with_nc)
                })
                .collect();
            progress.inc(done.len());
            rows.extend(done);
            if crate::progress::take_stop_request() {
                break;
            }
        }
        progress.finish();
        let n = rows.len();
        let evaluations = Array2::from_shape_fn((n, models.len()), |(i, j)| rows[i].0[j]);
        let ceiling =
            Array2::from_shape_fn(
                (2, n),
                |(k, i)| {
                    if k == 0 {
                        rows[i].1 .0
                    } else {
                        rows[i].1 .1
                    }
                },
            );
        let (dof, n_pattern, n_rdm_corr) = match self.over {
            BootstrapOver::Conditions => (n_cond - 1, Some(n_cond), None),
            BootstrapOver::Rdms => (n_rdm - 1, None, Some(n_rdm)),
            BootstrapOver::Both => (n_rdm.min(n_cond) - 1, Some(n_cond), Some(n_rdm)),
        };
        Ok(ModelComparison::new(
            models.iter().map(|(n, _)| n.as_ref().to_string()).collect(),
            self.method,
            self.over,
            evaluations,
            ceiling,
            dof,
            n_pattern,
            n_rdm_corr,
        ))
    }

    fn one_sample(
        &self,
        models: &[&Rdms],
        data: &Rdms,
        rdm_idx: &[usize],
        pat_idx: &[usize],
        with_nc: bool,
    ) -> (Vec<f64>, (f64, f64)) {
        let nan = (vec![f64::NAN; models.len()], (f64::NAN, f64::NAN));
        let mut distinct = pat_idx.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 3 {
            return nan;
        }
        // Resampling conditions only keeps every data RDM: no copy of the set per sample.
        let sample = if self.over == BootstrapOver::Conditions {
            data.subsample_conditions(pat_idx)
        } else {
            data.select(rdm_idx)
                .and_then(|s| s.subsample_conditions(pat_idx))
        };
        let Ok(sample) = sample else {
            return nan;
        };
        let evals = models
            .iter()
            .map(|m| match m.subsample_conditions(pat_idx) {
                Ok(mp) => mean(&compare_unchecked(&mp, &sample, self.method)),
                Err(_) => f64::NAN,
            })
            .collect();
        let nc = if with_nc {
            let mut subjects = rdm_idx.to_vec();
            subjects.sort_unstable();
            subjects.dedup();
            if subjects.len() >= 2 {
                noise_ceiling_unchecked(&sample, self.method, rdm_idx, &subjects)
            } else {
                (f64::NAN, f64::NAN)
            }
        } else {
            (f64::NAN, f64::NAN)
        };
        (evals, nc)
    }
}

/// Run a bootstrap with the defaults: [`Bootstrap::new`]`(method).seed(seed).fit(models, data)`.
pub fn bootstrap<N: AsRef<str>>(
    models: &[(N, Rdms)],
    data: &Rdms,
    method: Comparison,
    seed: u64,
) -> Result<ModelComparison> {
    Bootstrap::new(method).seed(seed).fit(models, data)
}

/// The outcome of a model comparison (rsatoolbox's `Result`): the bootstrap evaluations, the
/// noise ceiling, and tests and intervals from them.
#[derive(Debug, Clone)]
pub struct ModelComparison {
    models: Vec<String>,
    method: Comparison,
    over: BootstrapOver,
    /// `samples x models`; a row of NaN for a sample with fewer than 3 distinct conditions.
    evaluations: Array2<f64>,
    /// `2 x samples`: lower and upper noise ceiling per sample (NaN with one data RDM).
    ceiling: Array2<f64>,
    dof: usize,
    model_var: Vec<f64>,
    diff_var: Array2<f64>,
    nc_var: Vec<[f64; 2]>,
}

impl ModelComparison {
    #[allow(clippy::too_many_arguments)]
    fn new(
        models: Vec<String>,
        method: Comparison,
        over: BootstrapOver,
        evaluations: Array2<f64>,
        ceiling: Array2<f64>,
        dof: usize,
        n_pattern: Option<usize>,
        n_rdm: Option<usize>,
    ) -> ModelComparison {
        let k = models.len();
        let ok: Vec<usize> = (0..evaluations.nrows())
            .filter(|&i| evaluations[[i, 0]].is_finite())
            .collect();
        let with_nc =
            over != BootstrapOver::Rdms && ok.iter().all(|&i| ceiling[[0, i]].is_finite());
        // covariance of [evaluations, noise ceilings] over the usable samples (np.cov, ddof 1)
        let width = if with_nc { k + 2 } else { k };
        let col = |c: usize, i: usize| {
            if c < k {
                evaluations[[i, c]]
            } else {
                ceiling[[c - k, i]]
            }
        };
        let m = ok.len() as f64;
        let means: Vec<f64> = (0..width)
            .map(|c| ok.iter().map(|&i| col(c, i)).sum::<f64>() / m)
            .collect();
        let cov = Array2::from_shape_fn((width, width), |(a, b)| {
            ok.iter()
                .map(|&i| (col(a, i) - means[a]) * (col(b, i) - means[b]))
                .sum::<f64>()
                / (m - 1.0)
        });
        // rsatoolbox's _correct_1d: n / (n - 1) with n the smaller resampled count
        let n = match (n_pattern, n_rdm) {
            (Some(p), Some(r)) => p.min(r),
            (Some(p), None) => p,
            (None, Some(r)) => r,
            (None, None) => 0,
        } as f64;
        let corr = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let model_var: Vec<f64> = (0..k).map(|a| cov[[a, a]] * corr).collect();
        let diff_var = Array2::from_shape_fn((k, k), |(a, b)| {
            (cov[[a, a]] + cov[[b, b]] - 2.0 * cov[[a, b]]) * corr
        });
        let nc_var = (0..k)
            .map(|a| {
                if with_nc {
                    [0, 1]
                        .map(|c| (cov[[a, a]] - 2.0 * cov[[a, k + c]] + cov[[k + c, k + c]]) * corr)
                } else {
                    [model_var[a]; 2]
                }
            })
            .collect();
        ModelComparison {
            models,
            method,
            over,
            evaluations,
            ceiling,
            dof,
            model_var,
            diff_var,
            nc_var,
        }
    }

    /// Model names, in the order given.
    pub fn models(&self) -> &[String] {
        &self.models
    }
    /// The comparison used.
    pub fn method(&self) -> Comparison {
        self.method
    }
    /// What was resampled.
    pub fn over(&self) -> BootstrapOver {
        self.over
    }
    /// `samples x models` evaluations (NaN rows: samples with fewer than 3 distinct conditions).
    pub fn evaluations(&self) -> &Array2<f64> {
        &self.evaluations
    }
    /// Degrees of freedom of the t-tests (conditions - 1, subjects - 1, or the smaller).
    pub fn dof(&self) -> usize {
        self.dof
    }
    fn usable(&self) -> Vec<usize> {
        (0..self.evaluations.nrows())
            .filter(|&i| self.evaluations[[i, 0]].is_finite())
            .collect()
    }
    /// Mean evaluation of each model over the usable samples (rsatoolbox's `get_means`).
    pub fn means(&self) -> Vec<f64> {
        let ok = self.usable();
        (0..self.models.len())
            .map(|j| ok.iter().map(|&i| self.evaluations[[i, j]]).sum::<f64>() / ok.len() as f64)
            .collect()
    }
    /// Standard error of each model's evaluation (`get_sem`).
    pub fn sem(&self) -> Vec<f64> {
        self.model_var.iter().map(|v| v.max(0.0).sqrt()).collect()
    }
    /// Lower and upper noise ceiling, averaged over the samples (NaN with a single data RDM).
    pub fn noise_ceiling(&self) -> (f64, f64) {
        let avg = |k: usize| {
            let v: Vec<f64> = self
                .ceiling
                .row(k)
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .collect();
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        (avg(0), avg(1))
    }
    /// Confidence interval per model from the t distribution with [`dof`](Self::dof) degrees of
    /// freedom and the bootstrap standard error (rsatoolbox's `get_ci(ci_percent)`, its default
    /// `test_type='t-test'`); `level` is 0.95 for a 95 % interval.
    pub fn ci(&self, level: f64) -> Vec<(f64, f64)> {
        let q = t_quantile(1.0 - (1.0 - level) / 2.0, self.dof as f64);
        self.means()
            .iter()
            .zip(self.sem())
            .map(|(m, s)| (m - q * s, m + q * s))
            .collect()
    }
    /// Percentile interval per model from the bootstrap samples (`get_ci(..., 'bootstrap')`).
    pub fn ci_percentile(&self, level: f64) -> Vec<(f64, f64)> {
        let cut = (1.0 - level) / 2.0;
        (0..self.models.len())
            .map(|j| {
                // rsatoolbox frames the samples with -inf and +inf before np.quantile
                let mut v: Vec<f64> = vec![f64::NEG_INFINITY, f64::INFINITY];
                v.extend(
                    self.evaluations
                        .column(j)
                        .iter()
                        .copied()
                        .filter(|x| x.is_finite()),
                );
                v.sort_by(f64::total_cmp);
                (quantile(&v, cut), quantile(&v, 1.0 - cut))
            })
            .collect()
    }
    /// Two-sided p-values of the pairwise differences between models, `models x models`, by
    /// t-test on the bootstrap variance of the differences (`test_pairwise()`); 1 on the diagonal.
    pub fn test_pairwise(&self) -> Array2<f64> {
        let m = self.means();
        let k = m.len();
        Array2::from_shape_fn((k, k), |(a, b)| {
            if a == b {
                return 1.0;
            }
            let t = (m[a] - m[b]) / self.diff_var[[a, b]].max(f64::EPSILON).sqrt();
            2.0 * (1.0 - t_cdf(t.abs(), self.dof as f64))
        })
    }
    /// One-sided p-values that each model's evaluation exceeds 0 (`test_zero()`).
    pub fn test_zero(&self) -> Vec<f64> {
        self.means()
            .iter()
            .zip(&self.model_var)
            .map(|(m, v)| 1.0 - t_cdf(m / v.max(f64::EPSILON).sqrt(), self.dof as f64))
            .collect()
    }
    /// Two-sided p-values that each model differs from the lower noise ceiling (`test_noise()`).
    pub fn test_noise(&self) -> Vec<f64> {
        let (lower, _) = self.noise_ceiling();
        self.means()
            .iter()
            .zip(&self.nc_var)
            .map(|(m, v)| {
                let t = (m - lower) / v[0].max(f64::EPSILON).sqrt();
                2.0 * (1.0 - t_cdf(t.abs(), self.dof as f64))
            })
            .collect()
    }
    /// A table like rsatoolbox's `Result.summary()`: evaluation +- SEM and the p-values against
    /// 0 and against the noise ceiling.
    pub fn summary(&self) -> String {
        let means = self.means();
        let sem = self.sem();
        let pz = self.test_zero();
        let pn = self.test_noise();
        let w = self
            .models
            .iter()
            .map(|m| m.len())
            .max()
            .unwrap_or(5)
            .max(5)
            + 1;
        let p = |x: f64| {
            if x.is_nan() {
                "-".to_string()
            } else if x < 0.001 {
                "< 0.001".to_string()
            } else {
                format!("{x:.3}")
            }
        };
        let mut s = format!(
            "Results of a bootstrap over {} ({} samples) of {}:\n\n{:w$}|   Eval ± SEM   | p (against 0) | p (against NC) |\n",
            match self.over {
                BootstrapOver::Conditions => "conditions",
                BootstrapOver::Rdms => "data RDMs",
                BootstrapOver::Both => "conditions and data RDMs",
            },
            self.evaluations.nrows(),
            self.method.name(),
            "Model"
        );
        s.push_str(&"-".repeat(w + 51));
        s.push('\n');
        for (i, m) in self.models.iter().enumerate() {
            s.push_str(&format!(
                "{m:w$}| {:6.3} ± {:5.3} | {:>13} | {:>14} |\n",
                means[i],
                sem[i],
                p(pz[i]),
                p(pn[i])
            ));
        }
        let (lo, hi) = self.noise_ceiling();
        if lo.is_finite() {
            s.push_str(&format!(
                "\nnoise ceiling: {lo:.3} (lower) to {hi:.3} (upper)\n"
            ));
        } else {
            s.push_str("\nno noise ceiling: it needs data RDMs of 2 or more subjects\n");
        }
        s.push_str("p-values are based on uncorrected t-tests\n");
        s
    }
}

/// `np.quantile` (linear interpolation) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    if lo == hi {
        return sorted[lo];
    }
    if sorted[lo] == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if sorted[hi] == f64::INFINITY {
        return f64::INFINITY;
    }
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

fn t_cdf(t: f64, dof: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    // statrs panics outside the finite range: NaN stays NaN, +-inf are the limits
    if t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    match StudentsT::new(0.0, 1.0, dof.max(1.0)) {
        Ok(d) => d.cdf(t),
        Err(_) => f64::NAN,
    }
}

fn t_quantile(p: f64, dof: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    match StudentsT::new(0.0, 1.0, dof.max(1.0)) {
        Ok(d) => d.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}
