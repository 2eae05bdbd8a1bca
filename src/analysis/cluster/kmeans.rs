//! k-means with greedy k-means++ seeding (Arthur and Vassilvitskii 2007, with scikit-learn's
//! `2 + ln k` local trials) and Lloyd iterations, scikit-learn's stopping rule (labels unchanged,
//! or squared centre shift below `tol` times the mean feature variance) and empty-cluster
//! relocation to the farthest points.
//!
//! Determinism: per-iteration sums are taken over fixed chunks of rows in a fixed order, so the
//! same seed gives the same centres at any thread count.

use crate::analysis::neighbors::sq_dist;
use crate::analysis::{to_f64_checked, Scalar};
use crate::kernels::simd::sq_dists;
use crate::rng::Rng;
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};
use rayon::prelude::*;

const CHUNK: usize = 512;

/// k-means parameters.
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::cluster::KMeans;
/// let x = array![[0.0], [0.2], [10.0], [10.2]];
/// let f = KMeans::new(2).seed(1).fit(&x)?;
/// assert!((f.inertia() - 0.04).abs() < 1e-12);
/// assert_eq!(f.predict(&array![[9.0]])?[0], f.labels()[2]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct KMeans {
    n_clusters: usize,
    max_iter: usize,
    tol: f64,
    n_init: usize,
    seed: u64,
}

impl KMeans {
    /// `k` clusters; 300 iterations, tol 1e-4, one k-means++ initialisation, seed 0.
    pub fn new(k: usize) -> Self {
        KMeans {
            n_clusters: k,
            max_iter: 300,
            tol: 1e-4,
            n_init: 1,
            seed: 0,
        }
    }
    /// Number of clusters.
    pub fn n_clusters(mut self, k: usize) -> Self {
        self.n_clusters = k;
        self
    }
    /// Iteration cap per run.
    pub fn max_iter(mut self, m: usize) -> Self {
        self.max_iter = m;
        self
    }
    /// Relative tolerance on the centre shift.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Independent initialisations; the lowest inertia wins.
    pub fn n_init(mut self, n: usize) -> Self {
        self.n_init = n.max(1);
        self
    }
    /// Seed of the initialisation.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    /// Cluster `x`.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<FittedKMeans> {
        let x = to_f64_checked(x, "k-means input", 1)?;
        let n = x.nrows();
        if self.n_clusters == 0 || self.n_clusters > n {
            return Err(Error::InvalidArgument(format!(
                "k-means n_clusters={} must be between 1 and n_samples = {n}",
                self.n_clusters
            )));
        }
        let p = x.ncols();
        let mean_var = {
            // each column's sum of squares over the rows in row order, read row by row
            let m = crate::analysis::column_means(&x);
            let mut ss = vec![0.0f64; p];
            for row in x.rows() {
                for ((s, v), m) in ss.iter_mut().zip(row).zip(&m) {
                    *s += (v - m).powi(2);
                }
            }
            ss.iter().map(|s| s / n as f64).sum::<f64>() / p as f64
        };
        let tol = mean_var * self.tol;
        let xs = row_major(&x)?;
        let mut rng = Rng::new(self.seed);
        let mut best: Option<FittedKMeans> = None;
        for _ in 0..self.n_init {
            let centers = plusplus(&x, xs, self.n_clusters, &mut rng);
            let run = lloyd(&x, xs, centers, self.max_iter, tol);
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        Ok(best.expect("n_init >= 1"))
    }
}

/// The samples as one row-major slice (what `to_f64_checked` returns), for the distance kernels.
fn row_major(x: &Array2<f64>) -> Result<&[f64]> {
    x.as_slice().ok_or_else(|| {
        Error::InvalidArgument("internal: k-means samples are not in row-major order".into())
    })
}

/// k-means++ seeding of `x`, whose values are `xs` in row-major order.
fn plusplus(x: &Array2<f64>, xs: &[f64], k: usize, rng: &mut Rng) -> Array2<f64> {
    let (n, p) = x.dim();
    let row = |i: usize| &xs[i * p..(i + 1) * p];
    let trials = 2 + (k as f64).ln() as usize;
    let mut centers = Array2::zeros((k, p));
    let first = rng.below(n as u64) as usize;
    centers.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = (0..n)
        .into_par_iter()
        .with_min_len(CHUNK)
        .map(|i| sq_dist(x.row(i), x.row(first)))
        .collect();
    let mut pot: f64 = closest.iter().sum();
    let mut d = vec![0.0; n * trials];
    for c in 1..k {
        let mut cum = Vec::with_capacity(n);
        let mut acc = 0.0;
        for &d in &closest {
            acc += d;
            cum.push(acc);
        }
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let r = rng.uniform() * pot;
                cum.partition_point(|&v| v < r).min(n - 1)
            })
            .collect();
        // Every candidate's potential in one pass over the data (row i's distances to the
        // candidates side by side in `d[i * trials..]`), summed per candidate in row order.
        let targets: Vec<&[f64]> = candidates.iter().map(|&c| row(c)).collect();
        d.par_chunks_mut(trials * CHUNK)
            .enumerate()
            .for_each(|(b, out)| {
                let first = b * CHUNK;
                let rows = out.len() / trials;
                sq_dists(&xs[first * p..(first + rows) * p], p, &targets, out);
                for (o, &c) in out.chunks_exact_mut(trials).zip(&closest[first..]) {
                    o.iter_mut().for_each(|v| *v = c.min(*v));
                }
            });
        // Each candidate's potential, its values added in row order from -0.0 (what `Sum`
        // for f64 does), the candidates' chains side by side: one read of `d` instead of a
        // strided pass per candidate, each waiting on its own addition latency.
        let mut sums = vec![-0.0f64; trials];
        for row in d.chunks_exact(trials) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
        let mut best = (f64::INFINITY, 0usize);
        for (t, &s) in sums.iter().enumerate() {
            if s < best.0 {
                best = (s, t);
            }
        }
        centers.row_mut(c).assign(&x.row(candidates[best.1]));
        pot = best.0;
        closest = d.iter().skip(best.1).step_by(trials).copied().collect();
    }
    centers
}

/// The centres in row-major order whatever their layout (k x p values: a copy costs nothing).
fn center_rows(centers: &Array2<f64>) -> Vec<f64> {
    centers.iter().copied().collect()
}

/// The nearest of `targets` to each row of `block` (row-major, `p` columns) and its squared
/// distance; ties go to the lower centre.
fn assign_block(block: &[f64], p: usize, targets: &[&[f64]]) -> Vec<(usize, f64)> {
    let k = targets.len();
    let mut d = vec![0.0; block.len() / p * k];
    sq_dists(block, p, targets, &mut d);
    d.chunks_exact(k)
        .map(|d| {
            let mut best = (0, f64::INFINITY);
            for (c, &dc) in d.iter().enumerate() {
                if dc < best.1 {
                    best = (c, dc);
                }
            }
            best
        })
        .collect()
}

/// The nearest centre of each row of `xs` (row-major, `centers.ncols()` columns) and its squared
/// distance; ties go to the lower centre.
fn assign(xs: &[f64], centers: &Array2<f64>) -> Vec<(usize, f64)> {
    let p = centers.ncols();
    let cs = center_rows(centers);
    let targets: Vec<&[f64]> = cs.chunks_exact(p).collect();
    xs.par_chunks(p * CHUNK)
        .flat_map_iter(|block| assign_block(block, p, &targets))
        .collect()
}

/// One chunk of rows in a Lloyd iteration: each row's centre and squared distance, the chunk's
/// per-centre sums of its rows (`k x p`, row-major) and counts.
type ChunkSums = (Vec<(usize, f64)>, Vec<f64>, Vec<usize>);

fn lloyd(
    x: &Array2<f64>,
    xs: &[f64],
    mut centers: Array2<f64>,
    max_iter: usize,
    tol: f64,
) -> FittedKMeans {
    let (n, p) = x.dim();
    let k = centers.nrows();
    let mut labels: Vec<usize> = vec![usize::MAX; n];
    let mut n_iter = 0;
    let mut strict = false;
    for it in 0..max_iter {
        n_iter = it + 1;
        // Each chunk of rows assigned, then added to its chunk's sums while it is in the
        // caches (one read of the data per iteration, not two); chunked, ordered sums:
        // independent of the thread count.
        let cs = center_rows(&centers);
        let targets: Vec<&[f64]> = cs.chunks_exact(p).collect();
        let partial: Vec<ChunkSums> = xs
            .par_chunks(p * CHUNK)
            .map(|block| {
                let a = assign_block(block, p, &targets);
                let mut s = vec![0.0f64; k * p];
                let mut cnt = vec![0usize; k];
                for (row, &(l, _)) in block.chunks_exact(p).zip(&a) {
                    for (s, v) in s[l * p..(l + 1) * p].iter_mut().zip(row) {
                        *s += v;
                    }
                    cnt[l] += 1;
                }
                (a, s, cnt)
            })
            .collect();
        let mut a = Vec::with_capacity(n);
        let mut sums = Array2::zeros((k, p));
        let mut counts = vec![0usize; k];
        for (pa, s, c) in partial {
            a.extend(pa);
            sums.iter_mut().zip(&s).for_each(|(a, b)| *a += b);
            counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        }
        let mut new_labels: Vec<usize> = a.iter().map(|v| v.0).collect();
        let empty: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
        if !empty.is_empty() {
            let mut far: Vec<usize> = (0..n).collect();
            far.sort_by(|&i, &j| a[j].1.total_cmp(&a[i].1).then(i.cmp(&j)));
            for (e, &i) in empty.iter().zip(far.iter()) {
                let old = new_labels[i];
                if counts[old] <= 1 {
                    continue;
                }
                let mut r = sums.row_mut(old);
                r -= &x.row(i);
                counts[old] -= 1;
                sums.row_mut(*e).assign(&x.row(i));
                counts[*e] = 1;
                new_labels[i] = *e;
            }
        }
        let mut shift = 0.0;
        for c in 0..k {
            if counts[c] > 0 {
                let newc = sums.row(c).mapv(|v| v / counts[c] as f64);
                shift += sq_dist(newc.view(), centers.row(c));
                centers.row_mut(c).assign(&newc);
            }
        }
        if new_labels == labels {
            strict = true;
            break;
        }
        labels = new_labels;
        if shift <= tol {
            break;
        }
    }
    let a = assign(xs, &centers);
    if !strict {
        labels = a.iter().map(|v| v.0).collect();
    }
    let inertia = a.iter().map(|v| v.1).sum();
    FittedKMeans {
        centers,
        labels: labels.into_iter().map(|l| l as i64).collect(),
        inertia,
        n_iter,
    }
}

/// A fitted k-means model.
#[derive(Debug, Clone)]
pub struct FittedKMeans {
    centers: Array2<f64>,
    labels: Vec<i64>,
    inertia: f64,
    n_iter: usize,
}

impl FittedKMeans {
    /// Cluster of every training sample.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }
    /// Cluster centres (`k x features`).
    pub fn cluster_centers(&self) -> &Array2<f64> {
        &self.centers
    }
    /// Sum of squared distances of samples to their centre.
    pub fn inertia(&self) -> f64 {
        self.inertia
    }
    /// Lloyd iterations of the winning run.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
    /// Nearest centre of new samples.
    pub fn predict<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<Vec<i64>> {
        let x = to_f64_checked(x, "k-means predict input", 1)?;
        if x.ncols() != self.centers.ncols() {
            return Err(Error::Shape {
                what: "k-means predict input".into(),
                expected: format!("N x {}", self.centers.ncols()),
                got: format!("{} x {}", x.nrows(), x.ncols()),
            });
        }
        Ok(assign(row_major(&x)?, &self.centers)
            .into_iter()
            .map(|v| v.0 as i64)
            .collect())
    }
}
