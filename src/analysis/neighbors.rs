//! Exact nearest neighbours and pairwise distances, fast enough for 10,000 points.
//!
//! Distances come from one matrix product per block of rows (`|a|^2 + |b|^2 - 2 a.b`, the trick
//! that makes brute force competitive with trees in 50+ dimensions) and every candidate near a
//! decision boundary is then recomputed directly, so the neighbour sets are the exact ones
//! scikit-learn's tree searches return, not approximations. Ties are broken by the lower index,
//! so results never depend on thread count.
//!
//! ```
//! use ndarray::array;
//! use neuroscope::analysis::neighbors::knn;
//! let x = array![[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.5, 0.0]];
//! let nn = knn(&x, 1)?;
//! assert_eq!(nn.indices.column(0).to_vec(), vec![1, 0, 3, 2]);
//! assert_eq!(nn.distances[[2, 0]], 0.5);
//! # Ok::<(), neuroscope::Error>(())
//! ```

use super::linalg;
use crate::{Error, Result};
use ndarray::{s, Array2, ArrayView1};
use rayon::prelude::*;

const BLOCK: usize = 256;

fn sq_norms(x: &Array2<f64>) -> Vec<f64> {
    x.rows().into_iter().map(|r| r.dot(&r)).collect()
}

/// Exact squared euclidean distance.
#[inline]
pub fn sq_dist(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    match (a.as_slice(), b.as_slice()) {
        (Some(a), Some(b)) => sq_dist_slice(a, b),
        _ => a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum(),
    }
}

/// Squared euclidean distance of two equal-length slices, four accumulators so the compiler
/// vectorises it (the order of additions is fixed, so results are reproducible).
#[inline]
pub fn sq_dist_slice(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        for k in 0..4 {
            let d = a[4 * c + k] - b[4 * c + k];
            acc[k] += d * d;
        }
    }
    let mut tail = 0.0;
    for i in 4 * chunks..a.len() {
        let d = a[i] - b[i];
        tail += d * d;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Visit blocks of rows with their approximate squared distances to all rows of `x`, in parallel;
/// results come back in block order.
fn blocks<R: Send>(x: &Array2<f64>, f: impl Fn(usize, &Array2<f64>, &[f64]) -> R + Sync) -> Vec<R> {
    let n = x.nrows();
    let norms = sq_norms(x);
    let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
    starts
        .par_iter()
        .map(|&start| {
            let end = (start + BLOCK).min(n);
            let xb = x.slice(s![start..end, ..]).to_owned();
            let mut d = linalg_block(&xb, x);
            for (bi, mut row) in d.rows_mut().into_iter().enumerate() {
                let na = norms[start + bi];
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (na + norms[j] - 2.0 * *v).max(0.0);
                }
            }
            f(start, &d, &norms)
        })
        .collect()
}

fn linalg_block(xb: &Array2<f64>, x: &Array2<f64>) -> Array2<f64> {
    // One block's products with every row; the outer loop is already parallel, so the product
    // itself runs on one thread (nested parallelism only adds overhead here).
    linalg::matmul_nt_seq(xb, x)
}

/// Slack under which a fast distance is recomputed exactly.
#[inline]
fn slack(na: f64, nb: f64) -> f64 {
    1e-9 * (na + nb) + 1e-300
}

/// The `k` nearest neighbours of every row (itself excluded), sorted by distance.
#[derive(Debug, Clone)]
pub struct Knn {
    /// `n x k` neighbour indices.
    pub indices: Array2<usize>,
    /// `n x k` euclidean distances, non-decreasing along each row.
    pub distances: Array2<f64>,
}

/// Exact `k` nearest neighbours (euclidean) of every row of `x` among the other rows.
pub fn knn(x: &Array2<f64>, k: usize) -> Result<Knn> {
    let n = x.nrows();
    if k == 0 || k >= n {
        return Err(Error::InvalidArgument(format!(
            "k-nearest neighbours needs 1 <= k < n_samples; got k = {k} with {n} samples"
        )));
    }
    let nmax = sq_norms(x).into_iter().fold(0.0, f64::max);
    let parts = blocks(x, |start, d, norms| {
        let mut out = Vec::with_capacity(d.nrows());
        let mut order: Vec<usize> = Vec::with_capacity(n);
        for (bi, row) in d.rows().into_iter().enumerate() {
            let i = start + bi;
            order.clear();
            order.extend((0..n).filter(|&j| j != i));
            let kth = {
                order.select_nth_unstable_by(k - 1, |&a, &b| {
                    row[a].total_cmp(&row[b]).then(a.cmp(&b))
                });
                row[order[k - 1]]
            };
            let lim = kth + slack(norms[i], nmax);
            let mut cand: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i && row[j] <= lim)
                .map(|j| (sq_dist(x.row(i), x.row(j)), j))
                .collect();
            cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            cand.truncate(k);
            out.push(cand);
        }
        out
    });
    let mut indices = Array2::zeros((n, k));
    let mut distances = Array2::zeros((n, k));
    for (i, cand) in parts.into_iter().flatten().enumerate() {
        for (c, (d2, j)) in cand.into_iter().enumerate() {
            indices[[i, c]] = j;
            distances[[i, c]] = d2.sqrt();
        }
    }
    Ok(Knn { indices, distances })
}

/// All rows within euclidean distance `eps` of each row (itself included, as scikit-learn's
/// `radius_neighbors`), in increasing index order.
pub fn radius_neighbors(x: &Array2<f64>, eps: f64) -> Vec<Vec<usize>> {
    let eps2 = eps * eps;
    blocks(x, |start, d, norms| {
        d.rows()
            .into_iter()
            .enumerate()
            .map(|(bi, row)| {
                let i = start + bi;
                (0..row.len())
                    .filter(|&j| {
                        let v = row[j];
                        if v > eps2 + slack(norms[i], norms[j]) {
                            false
                        } else if v < eps2 - slack(norms[i], norms[j]) {
                            true
                        } else {
                            sq_dist(x.row(i), x.row(j)) <= eps2
                        }
                    })
                    .collect()
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Euclidean distances from every row to all rows, block by block (in parallel), with close
/// pairs recomputed exactly; `f(first_row, block)` gets `block.nrows()` rows of `n` distances.
pub(crate) fn distance_rows<R: Send>(
    x: &Array2<f64>,
    f: impl Fn(usize, &Array2<f64>) -> R + Sync,
) -> Vec<R> {
    let n = x.nrows();
    blocks(x, |start, d, norms| {
        let mut d = d.clone();
        for (bi, mut row) in d.rows_mut().into_iter().enumerate() {
            let i = start + bi;
            for j in 0..n {
                if i == j {
                    row[j] = 0.0;
                } else if row[j] < 1e-6 * (norms[i] + norms[j]) {
                    row[j] = sq_dist(x.row(i), x.row(j)).sqrt();
                } else {
                    row[j] = row[j].sqrt();
                }
            }
        }
        f(start, &d)
    })
}

/// Full matrix of euclidean distances between rows (exact: close pairs are recomputed).
///
/// ```
/// use ndarray::array;
/// let d = neuroscope::analysis::neighbors::pairwise_distances(&array![[0.0, 0.0], [3.0, 4.0]]);
/// assert_eq!(d[[0, 1]], 5.0);
/// ```
pub fn pairwise_distances(x: &Array2<f64>) -> Array2<f64> {
    let n = x.nrows();
    let rows = distance_rows(x, |_, d| d.clone());
    let mut out = Array2::zeros((n, n));
    let mut at = 0;
    for b in rows {
        let r = b.nrows();
        out.slice_mut(s![at..at + r, ..]).assign(&b);
        at += r;
    }
    // exact symmetry
    for i in 0..n {
        for j in 0..i {
            let v = out[[i, j]];
            out[[j, i]] = v;
        }
    }
    out
}
