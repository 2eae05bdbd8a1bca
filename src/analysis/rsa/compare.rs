//! RDM comparisons with rsatoolbox 0.3.2's names and values (`rsatoolbox.rdm.compare`).
//!
//! Every comparison works on the upper-triangle vectors. A pair that is NaN in the RDMs (a
//! condition drawn twice by a bootstrap) is left out of every comparison, as rsatoolbox does.

use super::correlation::{kendall_counts, kendall_tau_b, rank};
use super::rdms::Rdms;
use crate::analysis::linalg;
use crate::{Error, Result};
use ndarray::Array2;

/// How two RDMs are compared (rsatoolbox's `method` of `compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Cosine similarity of the dissimilarity vectors (rsatoolbox's default).
    Cosine,
    /// Pearson correlation.
    Corr,
    /// Spearman's rank correlation (ties averaged).
    Spearman,
    /// Rank correlation without the tie correction of the denominator: `12 r'r / (n^3 - n)` on
    /// centred ranks (Nili et al. 2014's rho-a).
    RhoA,
    /// Kendall's tau-a: (concordant - discordant) / all pairs, the comparison that does not
    /// reward a model for predicting ties (Nili et al. 2014).
    TauA,
    /// Kendall's tau-b (`scipy.stats.kendalltau`).
    Kendall,
    /// Correlation after whitening for the dependence between distances that share a
    /// condition (Diedrichsen et al. 2021), with an identity pattern covariance.
    CorrCov,
    /// Cosine similarity after the same whitening.
    CosineCov,
}

impl Comparison {
    /// Every comparison, in rsatoolbox's order of documentation.
    pub const ALL: [Comparison; 8] = [
        Comparison::Cosine,
        Comparison::Corr,
        Comparison::Spearman,
        Comparison::RhoA,
        Comparison::TauA,
        Comparison::Kendall,
        Comparison::CorrCov,
        Comparison::CosineCov,
    ];

    /// Parse rsatoolbox's names: `cosine`, `corr`, `spearman`, `rho-a`, `tau-a`, `kendall`
    /// (or `tau-b`), `corr_cov`, `cosine_cov`.
    ///
    /// ```
    /// use neuroscope::analysis::rsa::Comparison;
    /// assert_eq!(Comparison::parse("rho-a")?, Comparison::RhoA);
    /// assert!(Comparison::parse("bures").is_err());
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "cosine" => Comparison::Cosine,
            "corr" => Comparison::Corr,
            "spearman" => Comparison::Spearman,
            "rho-a" => Comparison::RhoA,
            "tau-a" => Comparison::TauA,
            "kendall" | "tau-b" => Comparison::Kendall,
            "corr_cov" => Comparison::CorrCov,
            "cosine_cov" => Comparison::CosineCov,
            _ => {
                return Err(Error::UnknownName {
                    kind: "RDM comparison".into(),
                    name: s.into(),
                    valid: "cosine, corr, spearman, rho-a, tau-a, kendall, corr_cov, cosine_cov"
                        .into(),
                })
            }
        })
    }
    /// rsatoolbox's name.
    pub fn name(self) -> &'static str {
        match self {
            Comparison::Cosine => "cosine",
            Comparison::Corr => "corr",
            Comparison::Spearman => "spearman",
            Comparison::RhoA => "rho-a",
            Comparison::TauA => "tau-a",
            Comparison::Kendall => "kendall",
            Comparison::CorrCov => "corr_cov",
            Comparison::CosineCov => "cosine_cov",
        }
    }
    /// Whether the comparison removes the mean first (then a constant RDM is undefined).
    fn centres(self) -> bool {
        !matches!(self, Comparison::Cosine | Comparison::CosineCov)
    }
}

from_str_by_parse!(Comparison);

/// Compare every RDM of `a` with every RDM of `b` (rsatoolbox's `compare(rdm1, rdm2, method)`):
/// a `a.len() x b.len()` matrix.
///
/// Refused before any work: RDMs over different numbers of conditions, NaN at different pairs,
/// fewer than 2 pairs left, and a constant RDM where the comparison removes the mean (all but
/// the cosines) or an all-zero RDM for the cosines, where the value is undefined (rsatoolbox
/// silently returns 0 there).
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::rsa::{compare, Comparison, Rdms};
/// let a = Rdms::from_vectors(array![[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])?;
/// let b = Rdms::from_vectors(array![[1.0, 3.0, 2.0, 4.0, 6.0, 5.0]])?;
/// let r = compare(&a, &b, Comparison::TauA)?;
/// assert!((r[[0, 0]] - 11.0 / 15.0).abs() < 1e-12);   // 13 concordant, 2 discordant of 15
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn compare(a: &Rdms, b: &Rdms, method: Comparison) -> Result<Array2<f64>> {
    let (va, vb, keep) = aligned(a, b)?;
    for (which, v) in [("first", &va), ("second", &vb)] {
        for (i, row) in v.rows().into_iter().enumerate() {
            let first = row[0];
            if method.centres() && row.iter().all(|&x| x == first) {
                return Err(Error::InvalidArgument(format!(
                    "RDM {i} of the {which} set is constant, so its {} with another RDM is undefined; leave it out",
                    method.name()
                )));
            }
            if !method.centres() && row.iter().all(|&x| x == 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "RDM {i} of the {which} set is all zeros, so its {} with another RDM is undefined; leave it out",
                    method.name()
                )));
            }
        }
    }
    Ok(compare_aligned(va, vb, &keep, method))
}

/// The vectors of `a` and `b` without the pairs that are NaN in any RDM, and the mask of the
/// pairs kept.
fn aligned(a: &Rdms, b: &Rdms) -> Result<(Array2<f64>, Array2<f64>, Vec<bool>)> {
    if a.n_conditions() != b.n_conditions() {
        return Err(Error::Shape {
            what: "RDMs to compare".into(),
            expected: format!(
                "the same conditions: the first set compares {} conditions",
                a.n_conditions()
            ),
            got: format!("{} conditions", b.n_conditions()),
        });
    }
    // a pair is kept when no RDM of the set has NaN there (rows scanned contiguously)
    let keep = |r: &Rdms| -> Vec<bool> {
        let mut k = vec![true; r.vectors().ncols()];
        for row in r.vectors().rows() {
            k.iter_mut().zip(row).for_each(|(k, v)| *k &= !v.is_nan());
        }
        k
    };
    let (ka, kb) = (keep(a), keep(b));
    if ka != kb {
        return Err(Error::InvalidArgument(
            "the two RDM sets have NaN (missing pairs) at different positions".into(),
        ));
    }
    let kept = ka.iter().filter(|&&k| k).count();
    if kept < 2 {
        return Err(Error::InvalidArgument(format!(
            "only {kept} pair(s) left without NaN: a comparison needs at least 2"
        )));
    }
    let pick = |r: &Rdms| {
        if kept == ka.len() {
            return r.vectors().clone();
        }
        let mut out = Array2::zeros((r.len(), kept));
        for (mut o, row) in out.rows_mut().into_iter().zip(r.vectors().rows()) {
            let vals = row.iter().zip(&ka).filter(|(_, &k)| k).map(|(v, _)| *v);
            o.iter_mut().zip(vals).for_each(|(o, v)| *o = v);
        }
        out
    };
    Ok((pick(a), pick(b), ka))
}

/// [`compare`] without the checks for undefined values: constant vectors compare as 0, as in
/// rsatoolbox (what a bootstrap sample that happens to be constant must give).
pub(crate) fn compare_unchecked(a: &Rdms, b: &Rdms, method: Comparison) -> Array2<f64> {
    match aligned(a, b) {
        Ok((va, vb, keep)) => compare_aligned(va, vb, &keep, method),
        Err(_) => Array2::from_elem((a.len(), b.len()), f64::NAN),
    }
}

fn compare_aligned(
    va: Array2<f64>,
    vb: Array2<f64>,
    keep: &[bool],
    method: Comparison,
) -> Array2<f64> {
    let ranks = |v: &Array2<f64>| {
        use rayon::prelude::*;
        let rows: Vec<Vec<f64>> = v
            .rows()
            .into_iter()
            .map(|r| r.to_vec())
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|r| rank(&r))
            .collect();
        Array2::from_shape_fn(v.dim(), |(i, j)| rows[i][j])
    };
    match method {
        Comparison::Cosine => cosine(&va, &vb),
        Comparison::Corr => cosine(&centred(va), &centred(vb)),
        Comparison::Spearman => {
            let (ra, rb) = rayon::join(|| centred(ranks(&va)), || centred(ranks(&vb)));
            cosine(&ra, &rb)
        }
        Comparison::RhoA => {
            let (ra, rb) = rayon::join(|| centred(ranks(&va)), || centred(ranks(&vb)));
            let n = ra.ncols() as f64;
            linalg::matmul_nt(&ra, &rb).mapv(|v| v / (n * n * n - n) * 12.0)
        }
        Comparison::TauA => pairwise(&va, &vb, |x, y| {
            let c = kendall_counts(x, y);
            let tot = c.total as f64;
            let t = (tot - c.x_ties as f64 - c.y_ties as f64 + c.joint_ties as f64
                - 2.0 * c.discordant as f64)
                / tot;
            t.clamp(-1.0, 1.0)
        }),
        Comparison::Kendall => pairwise(&va, &vb, |x, y| kendall_tau_b(x, y).unwrap_or(f64::NAN)),
        Comparison::CorrCov => cosine(
            &cov_weighting(&centred(va), keep),
            &cov_weighting(&centred(vb), keep),
        ),
        Comparison::CosineCov => cosine(&cov_weighting(&va, keep), &cov_weighting(&vb, keep)),
    }
}

fn pairwise(a: &Array2<f64>, b: &Array2<f64>, f: impl Fn(&[f64], &[f64]) -> f64) -> Array2<f64> {
    let ra: Vec<Vec<f64>> = a.rows().into_iter().map(|r| r.to_vec()).collect();
    let rb: Vec<Vec<f64>> = b.rows().into_iter().map(|r| r.to_vec()).collect();
    Array2::from_shape_fn((ra.len(), rb.len()), |(i, j)| f(&ra[i], &rb[j]))
}

fn centred(mut v: Array2<f64>) -> Array2<f64> {
    for mut row in v.rows_mut() {
        let m = row.mean().unwrap_or(0.0);
        row.mapv_inplace(|x| x - m);
    }
    v
}

/// rsatoolbox's `_cosine`: 0 where either vector has zero length.
fn cosine(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    let na: Vec<f64> = a.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
    let nb: Vec<f64> = b.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
    let mut c = if a.nrows() * b.nrows() == 1 {
        Array2::from_elem((1, 1), a.row(0).dot(&b.row(0)))
    } else {
        linalg::matmul_nt(a, b)
    };
    for ((i, j), v) in c.indexed_iter_mut() {
        *v = if na[i] > 0.0 && nb[j] > 0.0 {
            *v / na[i] / nb[j]
        } else {
            0.0
        };
    }
    c
}

/// rsatoolbox's `_cov_weighting` with an identity pattern covariance: the RDM as a centred
/// second-moment matrix (`-D/2`, double-centred), off-diagonal entries weighted by sqrt(2), so
/// that a plain cosine of the results is the whitened comparison. `keep` marks the pairs (of the
/// full upper triangle) that `v`'s columns hold.
fn cov_weighting(v: &Array2<f64>, keep: &[bool]) -> Array2<f64> {
    let n_cond = super::rdms::conditions_for_pairs(keep.len()).unwrap_or(2);
    let n_dist = v.ncols();
    // row and column condition of each kept pair
    let mut pairs = Vec::with_capacity(n_dist);
    let mut k = 0;
    for i in 0..n_cond {
        for j in i + 1..n_cond {
            if keep[k] {
                pairs.push((i, j));
            }
            k += 1;
        }
    }
    let width = n_dist + n_cond;
    let mut out = Array2::<f64>::zeros((v.nrows(), width));
    let all_kept = keep.iter().all(|&b| b);
    let system = (!all_kept).then(|| {
        // sumI' diag(weights) sumI, with the diagonal rows halved (rsatoolbox's NaN branch)
        let mut m = Array2::<f64>::zeros((n_cond, n_cond));
        for &(i, j) in &pairs {
            // row e = e_i + e_j, weight 1/2
            for (a, b) in [(i, i), (i, j), (j, i), (j, j)] {
                m[[a, b]] += 0.5;
            }
        }
        for c in 0..n_cond {
            // diagonal row = e_c (2 e_c halved), weight 1
            m[[c, c]] += 1.0;
        }
        linalg::inverse(&m).unwrap_or_else(|_| Array2::from_elem((n_cond, n_cond), f64::NAN))
    });
    for (r, src) in v.rows().into_iter().enumerate() {
        let mut w = vec![0.0; width];
        for (e, &x) in src.iter().enumerate() {
            w[e] = -0.5 * x;
        }
        match &system {
            None => {
                // double centring: subtract row and column means of -D/2, add the grand mean
                let mut m = vec![0.0; n_cond];
                for (e, &(i, j)) in pairs.iter().enumerate() {
                    m[i] += w[e];
                    m[j] += w[e];
                }
                m.iter_mut().for_each(|x| *x /= n_cond as f64);
                let mm = w.iter().map(|x| x * 2.0).sum::<f64>() / (n_cond * n_cond) as f64;
                for (e, &(i, j)) in pairs.iter().enumerate() {
                    w[e] = w[e] - (m[i] + m[j]) + mm;
                }
                for c in 0..n_cond {
                    w[n_dist + c] = w[n_dist + c] - 2.0 * m[c] + mm;
                }
            }
            Some(inv) => {
                // w - (w sumI) inv(M) (diag sumI)'
                let mut s = vec![0.0; n_cond];
                for (e, &(i, j)) in pairs.iter().enumerate() {
                    s[i] += w[e];
                    s[j] += w[e];
                }
                for c in 0..n_cond {
                    s[c] += w[n_dist + c];
                }
                let y: Vec<f64> = (0..n_cond)
                    .map(|b| (0..n_cond).map(|a| s[a] * inv[[a, b]]).sum())
                    .collect();
                for (e, &(i, j)) in pairs.iter().enumerate() {
                    w[e] -= 0.5 * (y[i] + y[j]);
                }
                for c in 0..n_cond {
                    w[n_dist + c] -= y[c];
                }
            }
        }
        let s2 = std::f64::consts::SQRT_2;
        for (e, x) in w.iter().enumerate() {
            out[[r, e]] = if e < n_dist { x * s2 } else { *x };
        }
    }
    out
}
