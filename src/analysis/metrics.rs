//! Scores: do clusters match labels (external), are clusters compact and separated (internal),
//! and is an embedding faithful to the data it came from.
//!
//! Every function follows scikit-learn's `sklearn.metrics` definition, including its special
//! cases (one cluster on both sides gives 1.0, and so on), and the parity tests check them to
//! 1e-9 against scikit-learn on the same labels. Labels may be any integer type (`usize` dataset
//! labels, `i64` cluster labels with -1 for noise); only equality matters.
//!
//! ```
//! use neuroscope::analysis::metrics::{adjusted_rand_score, normalized_mutual_info_score};
//! let truth = [0usize, 0, 1, 1, 2, 2];
//! let found = [5i64, 5, 3, 3, 3, -1];
//! let ari = adjusted_rand_score(&truth, &found)?;
//! assert!(ari > 0.0 && ari < 1.0);
//! assert_eq!(adjusted_rand_score(&truth, &truth)?, 1.0);
//! # Ok::<(), neuroscope::Error>(())
//! ```

use super::{neighbors, to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};

/// Label types the scores accept.
pub trait Label: Copy + Ord + std::fmt::Debug {}
impl<T: Copy + Ord + std::fmt::Debug> Label for T {}

/// Map labels to `0..k` in sorted order of their values; returns codes and `k`.
pub(crate) fn encode<L: Label>(labels: &[L]) -> (Vec<usize>, usize) {
    let mut uniq: Vec<L> = labels.to_vec();
    uniq.sort_unstable();
    uniq.dedup();
    let codes = labels
        .iter()
        .map(|l| uniq.binary_search(l).unwrap_or(0))
        .collect();
    (codes, uniq.len())
}

fn pair<A: Label, B: Label>(a: &[A], b: &[B]) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::Shape {
            what: "predicted labels".into(),
            expected: format!("{} entries (as many as the true labels)", a.len()),
            got: format!("{}", b.len()),
        });
    }
    if a.is_empty() {
        return Err(Error::InvalidArgument(
            "scores need at least one sample".into(),
        ));
    }
    Ok(())
}

/// Contingency matrix: entry `(i, j)` counts samples of true class `i` (sorted) assigned to
/// cluster `j` (sorted), as `sklearn.metrics.cluster.contingency_matrix`.
///
/// ```
/// let c = neuroscope::analysis::metrics::contingency_matrix(&[0, 0, 1], &[1, 2, 2])?;
/// assert_eq!(c, ndarray::array![[1, 1], [0, 1]]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn contingency_matrix<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
) -> Result<Array2<u64>> {
    pair(labels_true, labels_pred)?;
    let (a, ka) = encode(labels_true);
    let (b, kb) = encode(labels_pred);
    let mut c = Array2::<u64>::zeros((ka, kb));
    for (i, j) in a.into_iter().zip(b) {
        c[[i, j]] += 1;
    }
    Ok(c)
}

fn comb2(n: u64) -> f64 {
    (n as f64) * (n as f64 - 1.0) / 2.0
}

/// Adjusted Rand index (Hubert and Arabie 1985): 1 for identical partitions, about 0 for random
/// ones.
pub fn adjusted_rand_score<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
) -> Result<f64> {
    let c = contingency_matrix(labels_true, labels_pred)?;
    let n = labels_true.len() as i128;
    // scikit-learn's pair_confusion_matrix, in exact integers
    let a: Vec<i128> = c.rows().into_iter().map(|r| r.sum() as i128).collect();
    let b: Vec<i128> = c.columns().into_iter().map(|r| r.sum() as i128).collect();
    let sum_sq: i128 = c.iter().map(|&v| (v as i128) * (v as i128)).sum();
    let fp = c
        .indexed_iter()
        .map(|((_, j), &v)| v as i128 * b[j])
        .sum::<i128>()
        - sum_sq;
    let fn_ = c
        .indexed_iter()
        .map(|((i, _), &v)| v as i128 * a[i])
        .sum::<i128>()
        - sum_sq;
    let tp = sum_sq - n;
    let tn = n * n - fp - fn_ - sum_sq;
    if fn_ == 0 && fp == 0 {
        return Ok(1.0);
    }
    let num = 2.0 * (tp * tn - fn_ * fp) as f64;
    let den = ((tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn)) as f64;
    Ok(num / den)
}

/// Rand index (unadjusted).
pub fn rand_score<A: Label, B: Label>(labels_true: &[A], labels_pred: &[B]) -> Result<f64> {
    let c = contingency_matrix(labels_true, labels_pred)?;
    let n = labels_true.len() as u64;
    if n < 2 {
        return Ok(1.0);
    }
    let a: Vec<u64> = c.rows().into_iter().map(|r| r.sum()).collect();
    let b: Vec<u64> = c.columns().into_iter().map(|r| r.sum()).collect();
    let same_both: f64 = c.iter().map(|&v| comb2(v)).sum();
    let same_a: f64 = a.iter().map(|&v| comb2(v)).sum();
    let same_b: f64 = b.iter().map(|&v| comb2(v)).sum();
    let total = comb2(n);
    Ok((total + 2.0 * same_both - same_a - same_b) / total)
}

fn entropy_of_counts(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 1.0;
    }
    let ls = (total as f64).ln();
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| (c as f64 / total as f64) * ((c as f64).ln() - ls))
        .sum::<f64>()
}

/// Shannon entropy (nats) of a labelling.
///
/// ```
/// let h = neuroscope::analysis::metrics::entropy(&[0, 1])?;
/// assert!((h - 2f64.ln()).abs() < 1e-15);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn entropy<L: Label>(labels: &[L]) -> Result<f64> {
    if labels.is_empty() {
        return Ok(1.0);
    }
    let (codes, k) = encode(labels);
    let mut counts = vec![0u64; k];
    codes.into_iter().for_each(|c| counts[c] += 1);
    Ok(entropy_of_counts(&counts))
}

fn mi_from(c: &Array2<u64>) -> f64 {
    let n: u64 = c.iter().sum();
    let a: Vec<u64> = c.rows().into_iter().map(|r| r.sum()).collect();
    let b: Vec<u64> = c.columns().into_iter().map(|r| r.sum()).collect();
    let ln_n = (n as f64).ln();
    let mut mi = 0.0;
    for ((i, j), &v) in c.indexed_iter() {
        if v == 0 {
            continue;
        }
        let p = v as f64 / n as f64;
        let outer = a[i] as f64 * b[j] as f64;
        let log_outer = -outer.ln() + 2.0 * ln_n;
        let term = p * ((v as f64).ln() - ln_n) + p * log_outer;
        if term.abs() >= f64::EPSILON {
            mi += term;
        }
    }
    mi.max(0.0)
}

/// Mutual information (nats) between two labellings.
pub fn mutual_info_score<A: Label, B: Label>(labels_true: &[A], labels_pred: &[B]) -> Result<f64> {
    Ok(mi_from(&contingency_matrix(labels_true, labels_pred)?))
}

/// Averaging of the two entropies that normalises mutual information (scikit-learn's
/// `average_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// min(H(U), H(V))
    Min,
    /// sqrt(H(U) H(V))
    Geometric,
    /// (H(U) + H(V)) / 2, scikit-learn's default.
    Arithmetic,
    /// max(H(U), H(V))
    Max,
}

fn generalized_mean(h1: f64, h2: f64, avg: Average) -> f64 {
    match avg {
        Average::Min => h1.min(h2),
        Average::Geometric => (h1 * h2).sqrt(),
        Average::Arithmetic => 0.5 * (h1 + h2),
        Average::Max => h1.max(h2),
    }
}

fn trivial<A: Label, B: Label>(a: &[A], b: &[B]) -> bool {
    let (_, ka) = encode(a);
    let (_, kb) = encode(b);
    (ka == kb && ka == 1) || (ka == 0 && kb == 0)
}

/// Normalised mutual information with arithmetic averaging (scikit-learn's default).
pub fn normalized_mutual_info_score<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
) -> Result<f64> {
    normalized_mutual_info_score_with(labels_true, labels_pred, Average::Arithmetic)
}

/// Normalised mutual information with a chosen averaging.
pub fn normalized_mutual_info_score_with<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
    avg: Average,
) -> Result<f64> {
    pair(labels_true, labels_pred)?;
    if trivial(labels_true, labels_pred) {
        return Ok(1.0);
    }
    let c = contingency_matrix(labels_true, labels_pred)?;
    let mi = mi_from(&c);
    if mi == 0.0 {
        return Ok(0.0);
    }
    let h1 = entropy(labels_true)?;
    let h2 = entropy(labels_pred)?;
    Ok(mi / generalized_mean(h1, h2, avg))
}

/// Expected mutual information under the permutation model (Vinh et al. 2010), as scikit-learn's
/// `expected_mutual_information`.
fn expected_mutual_information(c: &Array2<u64>) -> f64 {
    let n: u64 = c.iter().sum();
    let a: Vec<u64> = c.rows().into_iter().map(|r| r.sum()).collect();
    let b: Vec<u64> = c.columns().into_iter().map(|r| r.sum()).collect();
    // ln k! for k = 0..=n, summed once
    let mut lf = vec![0.0f64; n as usize + 2];
    for k in 1..lf.len() {
        lf[k] = lf[k - 1] + (k as f64).ln();
    }
    let nf = n as f64;
    let mut emi = 0.0;
    for &ai in &a {
        for &bj in &b {
            let start = 1.max((ai as i64) - (n as i64) + (bj as i64)) as u64;
            let end = ai.min(bj);
            for nij in start..=end {
                if nij == 0 {
                    continue;
                }
                let term1 = nij as f64 / nf;
                let term2 = nf.ln() + (nij as f64).ln() - (ai as f64).ln() - (bj as f64).ln();
                let gln = lf[ai as usize]
                    + lf[bj as usize]
                    + lf[(n - ai) as usize]
                    + lf[(n - bj) as usize]
                    - lf[nij as usize]
                    - lf[n as usize]
                    - lf[(ai - nij) as usize]
                    - lf[(bj - nij) as usize]
                    - lf[(n + nij - ai - bj) as usize];
                emi += term1 * term2 * gln.exp();
            }
        }
    }
    emi
}

/// Adjusted mutual information with arithmetic averaging (scikit-learn's default).
pub fn adjusted_mutual_info_score<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
) -> Result<f64> {
    adjusted_mutual_info_score_with(labels_true, labels_pred, Average::Arithmetic)
}

/// Adjusted mutual information with a chosen averaging.
pub fn adjusted_mutual_info_score_with<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
    avg: Average,
) -> Result<f64> {
    pair(labels_true, labels_pred)?;
    if trivial(labels_true, labels_pred) {
        return Ok(1.0);
    }
    let c = contingency_matrix(labels_true, labels_pred)?;
    let mi = mi_from(&c);
    let emi = expected_mutual_information(&c);
    let h1 = entropy(labels_true)?;
    let h2 = entropy(labels_pred)?;
    let normalizer = generalized_mean(h1, h2, avg);
    let mut denom = normalizer - emi;
    if denom < 0.0 {
        denom = denom.min(-f64::EPSILON);
    } else {
        denom = denom.max(f64::EPSILON);
    }
    Ok((mi - emi) / denom)
}

/// Homogeneity, completeness and V-measure (Rosenberg and Hirschberg 2007), `beta = 1`.
///
/// ```
/// let (h, c, v) = neuroscope::analysis::metrics::homogeneity_completeness_v_measure(&[0, 0, 1, 1], &[0, 0, 1, 2])?;
/// assert!((h - 1.0).abs() < 1e-12);
/// assert!(c < 1.0 && v < 1.0);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn homogeneity_completeness_v_measure<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
) -> Result<(f64, f64, f64)> {
    pair(labels_true, labels_pred)?;
    let hc = entropy(labels_true)?;
    let hk = entropy(labels_pred)?;
    let mi = mutual_info_score(labels_true, labels_pred)?;
    let h = if hc != 0.0 { mi / hc } else { 1.0 };
    let c = if hk != 0.0 { mi / hk } else { 1.0 };
    let v = if h + c == 0.0 {
        0.0
    } else {
        2.0 * h * c / (h + c)
    };
    Ok((h, c, v))
}

/// Homogeneity: each cluster holds one class.
pub fn homogeneity_score<A: Label, B: Label>(labels_true: &[A], labels_pred: &[B]) -> Result<f64> {
    Ok(homogeneity_completeness_v_measure(labels_true, labels_pred)?.0)
}
/// Completeness: each class is in one cluster.
pub fn completeness_score<A: Label, B: Label>(labels_true: &[A], labels_pred: &[B]) -> Result<f64> {
    Ok(homogeneity_completeness_v_measure(labels_true, labels_pred)?.1)
}
/// V-measure: harmonic mean of homogeneity and completeness.
pub fn v_measure_score<A: Label, B: Label>(labels_true: &[A], labels_pred: &[B]) -> Result<f64> {
    Ok(homogeneity_completeness_v_measure(labels_true, labels_pred)?.2)
}

/// Fowlkes-Mallows index: geometric mean of pairwise precision and recall.
pub fn fowlkes_mallows_score<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
) -> Result<f64> {
    let c = contingency_matrix(labels_true, labels_pred)?;
    let n = labels_true.len() as f64;
    let tk: f64 = c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() - n;
    let pk: f64 = c
        .rows()
        .into_iter()
        .map(|r| (r.sum() as f64).powi(2))
        .sum::<f64>()
        - n;
    let qk: f64 = c
        .columns()
        .into_iter()
        .map(|r| (r.sum() as f64).powi(2))
        .sum::<f64>()
        - n;
    Ok(if tk != 0.0 {
        (tk / pk).sqrt() * (tk / qk).sqrt()
    } else {
        0.0
    })
}

fn internal_setup<S: Data<Elem = T>, T: Scalar, L: Label>(
    x: &ArrayBase<S, Ix2>,
    labels: &[L],
    what: &str,
) -> Result<(Array2<f64>, Vec<usize>, usize)> {
    let x = to_f64_checked(x, what, 2)?;
    super::check_len("labels", labels.len(), x.nrows())?;
    let (codes, k) = encode(labels);
    if k < 2 || k > x.nrows() - 1 {
        return Err(Error::InvalidArgument(format!(
            "{what}: number of labels is {k}; valid values are 2 to n_samples - 1 = {} (inclusive)",
            x.nrows() - 1
        )));
    }
    Ok((x, codes, k))
}

/// Mean silhouette coefficient (euclidean). Samples alone in their cluster score 0, as in
/// scikit-learn.
///
/// ```
/// use ndarray::array;
/// let x = array![[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.0, 5.1]];
/// let s = neuroscope::analysis::metrics::silhouette_score(&x, &[0, 0, 1, 1])?;
/// assert!(s > 0.95);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn silhouette_score<S: Data<Elem = T>, T: Scalar, L: Label>(
    x: &ArrayBase<S, Ix2>,
    labels: &[L],
) -> Result<f64> {
    let s = silhouette_samples(x, labels)?;
    Ok(s.iter().sum::<f64>() / s.len() as f64)
}

/// Silhouette coefficient of every sample.
pub fn silhouette_samples<S: Data<Elem = T>, T: Scalar, L: Label>(
    x: &ArrayBase<S, Ix2>,
    labels: &[L],
) -> Result<Vec<f64>> {
    let (x, codes, k) = internal_setup(x, labels, "silhouette")?;
    let mut sizes = vec![0usize; k];
    codes.iter().for_each(|&c| sizes[c] += 1);
    let parts = neighbors::distance_rows(&x, |start, d| {
        d.rows()
            .into_iter()
            .enumerate()
            .map(|(bi, row)| {
                let i = start + bi;
                let mut sums = vec![0.0; k];
                for (j, v) in row.iter().enumerate() {
                    sums[codes[j]] += v;
                }
                let own = codes[i];
                if sizes[own] <= 1 {
                    return 0.0;
                }
                let a = sums[own] / (sizes[own] - 1) as f64;
                let b = (0..k)
                    .filter(|&c| c != own)
                    .map(|c| sums[c] / sizes[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                let s = (b - a) / a.max(b);
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            })
            .collect::<Vec<f64>>()
    });
    Ok(parts.into_iter().flatten().collect())
}

fn centroids(x: &Array2<f64>, codes: &[usize], k: usize) -> (Array2<f64>, Vec<usize>) {
    let mut c = Array2::zeros((k, x.ncols()));
    let mut sizes = vec![0usize; k];
    for (row, &l) in x.rows().into_iter().zip(codes) {
        let mut cr = c.row_mut(l);
        cr += &row;
        sizes[l] += 1;
    }
    for (mut cr, &s) in c.rows_mut().into_iter().zip(&sizes) {
        cr.mapv_inplace(|v| v / s as f64);
    }
    (c, sizes)
}

/// Calinski-Harabasz score (variance ratio criterion): higher is better.
pub fn calinski_harabasz_score<S: Data<Elem = T>, T: Scalar, L: Label>(
    x: &ArrayBase<S, Ix2>,
    labels: &[L],
) -> Result<f64> {
    let (x, codes, k) = internal_setup(x, labels, "Calinski-Harabasz")?;
    let n = x.nrows();
    let mean = x.mean_axis(ndarray::Axis(0)).expect("n >= 2");
    let (c, sizes) = centroids(&x, &codes, k);
    let mut extra = 0.0;
    for (cr, &s) in c.rows().into_iter().zip(&sizes) {
        extra += s as f64
            * cr.iter()
                .zip(mean.iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>();
    }
    let mut intra = 0.0;
    for (row, &l) in x.rows().into_iter().zip(&codes) {
        intra += neighbors::sq_dist(row, c.row(l));
    }
    Ok(if intra == 0.0 {
        1.0
    } else {
        extra * (n - k) as f64 / (intra * (k - 1) as f64)
    })
}

/// Davies-Bouldin score: lower is better, 0 is the minimum.
pub fn davies_bouldin_score<S: Data<Elem = T>, T: Scalar, L: Label>(
    x: &ArrayBase<S, Ix2>,
    labels: &[L],
) -> Result<f64> {
    let (x, codes, k) = internal_setup(x, labels, "Davies-Bouldin")?;
    let (c, sizes) = centroids(&x, &codes, k);
    let mut intra = vec![0.0; k];
    for (row, &l) in x.rows().into_iter().zip(&codes) {
        intra[l] += neighbors::sq_dist(row, c.row(l)).sqrt();
    }
    for (v, &s) in intra.iter_mut().zip(&sizes) {
        *v /= s as f64;
    }
    let cd = neighbors::pairwise_distances(&c);
    if intra.iter().all(|&v| v.abs() < 1e-15) || cd.iter().all(|&v| v.abs() < 1e-15) {
        return Ok(0.0);
    }
    let mut total = 0.0;
    for i in 0..k {
        let mut best = f64::NEG_INFINITY;
        for j in 0..k {
            if i == j {
                continue;
            }
            let d = if cd[[i, j]] == 0.0 {
                f64::INFINITY
            } else {
                cd[[i, j]]
            };
            best = best.max((intra[i] + intra[j]) / d);
        }
        total += best;
    }
    Ok(total / k as f64)
}

/// Trustworthiness of an embedding (Venna and Kaski 2001; scikit-learn's
/// `sklearn.manifold.trustworthiness`, euclidean): 1 when every point's `k` nearest neighbours
/// in the embedding are also among its nearest in the original space; penalises by rank.
///
/// ```
/// use ndarray::Array2;
/// let x = Array2::from_shape_fn((30, 3), |(i, j)| (i * (j + 1)) as f64);
/// let t = neuroscope::analysis::metrics::trustworthiness(&x, &x, 5)?;
/// assert_eq!(t, 1.0);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn trustworthiness<S1, S2, T1, T2>(
    x: &ArrayBase<S1, Ix2>,
    embedded: &ArrayBase<S2, Ix2>,
    k: usize,
) -> Result<f64>
where
    S1: Data<Elem = T1>,
    S2: Data<Elem = T2>,
    T1: Scalar,
    T2: Scalar,
{
    let (x, e) = super::paired(
        x,
        embedded,
        "trustworthiness original data",
        "trustworthiness embedding",
        3,
    )?;
    let n = x.nrows();
    if k == 0 || 2 * k >= n {
        return Err(Error::InvalidArgument(format!(
            "trustworthiness needs 1 <= k < n_samples / 2 = {}; got k = {k}",
            n / 2
        )));
    }
    let en = neighbors::knn(&e, k)?;
    let penalties = neighbors::distance_rows(&x, |start, d| {
        let mut t = 0.0f64;
        for (bi, row) in d.rows().into_iter().enumerate() {
            let i = start + bi;
            for &j in en.indices.row(i).iter() {
                let dij = row[j];
                // rank of j among i's neighbours in the original space (1-based; ties by index)
                let r = (0..n)
                    .filter(|&m| m != i && (row[m] < dij || (row[m] == dij && m < j)))
                    .count()
                    + 1;
                if r > k {
                    t += (r - k) as f64;
                }
            }
        }
        t
    });
    let t: f64 = penalties.into_iter().sum();
    let (nf, kf) = (n as f64, k as f64);
    Ok(1.0 - t * (2.0 / (nf * kf * (2.0 * nf - 3.0 * kf - 1.0))))
}

/// Leave-one-out k-nearest-neighbour classification accuracy of `labels` in the space `x`
/// (euclidean, majority vote, ties to the smallest label as scikit-learn's
/// `KNeighborsClassifier`): how well classes separate in an embedding.
///
/// ```
/// use ndarray::array;
/// let x = array![[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]];
/// let acc = neuroscope::analysis::metrics::knn_accuracy(&x, &[0, 0, 0, 1, 1, 1], 2)?;
/// assert_eq!(acc, 1.0);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn knn_accuracy<S: Data<Elem = T>, T: Scalar, L: Label>(
    x: &ArrayBase<S, Ix2>,
    labels: &[L],
    k: usize,
) -> Result<f64> {
    let x = to_f64_checked(x, "k-NN accuracy input", 2)?;
    super::check_len("labels", labels.len(), x.nrows())?;
    let nn = neighbors::knn(&x, k)?;
    let (codes, kk) = encode(labels);
    let mut correct = 0usize;
    for i in 0..x.nrows() {
        let mut votes = vec![0usize; kk];
        for &j in nn.indices.row(i).iter() {
            votes[codes[j]] += 1;
        }
        let mut best = 0;
        for c in 1..kk {
            if votes[c] > votes[best] {
                best = c;
            }
        }
        if best == codes[i] {
            correct += 1;
        }
    }
    Ok(correct as f64 / x.nrows() as f64)
}

/// Every external score at once, for reports: `(name, value)` pairs.
///
/// ```
/// let all = neuroscope::analysis::metrics::external_scores(&[0, 0, 1, 1], &[1, 1, 0, 0])?;
/// assert!(all.iter().all(|(_, v)| (*v - 1.0).abs() < 1e-12));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn external_scores<A: Label, B: Label>(
    labels_true: &[A],
    labels_pred: &[B],
) -> Result<Vec<(&'static str, f64)>> {
    let (h, c, v) = homogeneity_completeness_v_measure(labels_true, labels_pred)?;
    Ok(vec![
        (
            "adjusted_rand",
            adjusted_rand_score(labels_true, labels_pred)?,
        ),
        (
            "adjusted_mutual_info",
            adjusted_mutual_info_score(labels_true, labels_pred)?,
        ),
        (
            "normalized_mutual_info",
            normalized_mutual_info_score(labels_true, labels_pred)?,
        ),
        ("homogeneity", h),
        ("completeness", c),
        ("v_measure", v),
        (
            "fowlkes_mallows",
            fowlkes_mallows_score(labels_true, labels_pred)?,
        ),
    ])
}

/// Parse a score name as the CLI takes it and compute it on two labellings.
///
/// ```
/// let v = neuroscope::analysis::metrics::score_by_name("ari", &[0, 0, 1], &[0, 0, 1])?;
/// assert_eq!(v, 1.0);
/// assert!(neuroscope::analysis::metrics::score_by_name("accuracy!", &[0], &[0]).is_err());
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn score_by_name<A: Label, B: Label>(
    name: &str,
    labels_true: &[A],
    labels_pred: &[B],
) -> Result<f64> {
    match name {
        "ari" | "adjusted_rand" => adjusted_rand_score(labels_true, labels_pred),
        "rand" => rand_score(labels_true, labels_pred),
        "ami" | "adjusted_mutual_info" => adjusted_mutual_info_score(labels_true, labels_pred),
        "nmi" | "normalized_mutual_info" => normalized_mutual_info_score(labels_true, labels_pred),
        "mi" | "mutual_info" => mutual_info_score(labels_true, labels_pred),
        "homogeneity" => homogeneity_score(labels_true, labels_pred),
        "completeness" => completeness_score(labels_true, labels_pred),
        "v_measure" => v_measure_score(labels_true, labels_pred),
        "fowlkes_mallows" | "fmi" => fowlkes_mallows_score(labels_true, labels_pred),
        _ => Err(Error::UnknownName {
            kind: "label score".into(),
            name: name.into(),
            valid: "ari, rand, ami, nmi, mi, homogeneity, completeness, v_measure, fowlkes_mallows (silhouette, calinski_harabasz, davies_bouldin need the data: see metrics::*)".into(),
        }),
    }
}
