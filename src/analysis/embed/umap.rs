//! UMAP (McInnes, Healy and Melville 2018) with umap-learn's defaults: 15 neighbours (the point
//! itself counted), min_dist 0.1, spread 1.0, the a/b curve fitted to them, fuzzy union of the
//! smoothed k-NN graph, spectral initialisation scaled to [0, 10], 500 epochs up to 10,000
//! points (200 beyond), 5 negative samples per positive one, learning rate 1 decaying linearly.
//! The neighbours are exact below 4,096 points and found by NN-descent from there, as in
//! umap-learn ([`Umap::neighbor_search`]).
//!
//! Determinism without giving up threads (umap-learn runs single-threaded when seeded): each
//! epoch reads the positions of the previous epoch and every point computes its own moves
//! (attraction along its edges, repulsion from negative samples drawn from a counter-based
//! generator keyed by seed, epoch and point), so the result is the same at any thread count.
//! Each point moves along its own edges only, which is umap-learn's `move_other=False` (the
//! setting of its `transform`); its fit moves both ends of every sampled edge at once. In
//! synchronous epochs moving both ends (weight 2 on the point's own edges, what `move_other`
//! amounts to on a symmetric graph) overshoots: both ends of a pair close the gap from the
//! same old positions, where umap-learn's second move sees the first. Measured against
//! umap-learn (BENCHMARKS.md), weight 2 lost 0.022 of 5-NN accuracy on 70,000 Fashion-MNIST
//! images and 0.004-0.006 of trustworthiness on 10,000 digits; weight 1 is within 0.01 of
//! umap-learn's on both measures on all four data sets.
//!
//! Speed: the powers in the gradients (`d^2b`, one per sample) are most of the work, so each
//! point gathers its samples first and takes the powers in one vector loop with a power
//! written in plain arithmetic (`pow.rs`: same bits with or without AVX2, unlike the C
//! library's `pow`); the random draws are a SplitMix64 stream per point and epoch, mapped to
//! an index by multiply-shift (no division).

use super::super::neighbors::{self, NeighborSearch};
use super::super::{to_f64_checked, Scalar};
use super::pow;
use crate::progress::Progress;
use crate::rng::mix64;
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};
use rayon::prelude::*;

/// Distance used to find neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UmapMetric {
    /// Euclidean distance.
    Euclidean,
    /// Cosine distance `1 - cos` (rows are normalised, then euclidean neighbours are found: the
    /// same order).
    Cosine,
}

impl UmapMetric {
    /// Parse `euclidean` or `cosine`.
    ///
    /// ```
    /// use neuroscope::analysis::embed::UmapMetric;
    /// assert_eq!(UmapMetric::parse("cosine")?, UmapMetric::Cosine);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "euclidean" => Ok(UmapMetric::Euclidean),
            "cosine" => Ok(UmapMetric::Cosine),
            _ => Err(Error::UnknownName {
                kind: "UMAP metric".into(),
                name: s.into(),
                valid: "euclidean, cosine".into(),
            }),
        }
    }
}

from_str_by_parse!(UmapMetric);

/// UMAP parameters (builder); [`Umap::fit`] returns a [`FittedUmap`].
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::embed::Umap;
/// let mut r = neuroscope::rng::Rng::new(0);
/// let x = Array2::from_shape_fn((120, 6), |(i, _)| (i / 40) as f64 * 8.0 + r.normal());
/// let u = Umap::new().seed(3).n_epochs(100).fit(&x)?;
/// assert_eq!(u.embedding().dim(), (120, 2));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Umap {
    n_neighbors: usize,
    dims: usize,
    min_dist: f64,
    spread: f64,
    metric: UmapMetric,
    n_epochs: Option<usize>,
    negative_sample_rate: usize,
    seed: u64,
    progress: bool,
    device: candle_core::Device,
    neighbor_search: NeighborSearch,
}

impl Default for Umap {
    fn default() -> Self {
        Self::new()
    }
}

impl Umap {
    /// umap-learn's defaults.
    pub fn new() -> Self {
        Umap {
            n_neighbors: 15,
            dims: 2,
            min_dist: 0.1,
            spread: 1.0,
            metric: UmapMetric::Euclidean,
            n_epochs: None,
            negative_sample_rate: 5,
            seed: 0,
            progress: false,
            device: candle_core::Device::Cpu,
            neighbor_search: NeighborSearch::Auto,
        }
    }
    /// Neighbours per point, itself included.
    pub fn n_neighbors(mut self, k: usize) -> Self {
        self.n_neighbors = k;
        self
    }
    /// Output dimensions.
    pub fn dims(mut self, d: usize) -> Self {
        self.dims = d;
        self
    }
    /// Smallest distance between embedded points.
    pub fn min_dist(mut self, d: f64) -> Self {
        self.min_dist = d;
        self
    }
    /// Scale of the embedded clusters.
    pub fn spread(mut self, s: f64) -> Self {
        self.spread = s;
        self
    }
    /// Input metric.
    pub fn metric(mut self, m: UmapMetric) -> Self {
        self.metric = m;
        self
    }
    /// Epochs (default 500 up to 10,000 points, else 200).
    pub fn n_epochs(mut self, e: usize) -> Self {
        self.n_epochs = Some(e);
        self
    }
    /// Seed of the initial noise and of the negative samples.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Show a progress bar.
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }
    /// Where the nearest neighbours are searched: the CPU (the default) or a CUDA GPU (`cuda`
    /// feature), see [`neighbors::knn_on`]. The neighbours, and so the embedding, are the same
    /// bit for bit; on large data the search is most of the time. The rest of UMAP (fuzzy set,
    /// spectral start, the seeded SGD) runs on the CPU.
    ///
    /// ```
    /// use neuroscope::analysis::embed::Umap;
    /// let dev = neuroscope::device::parse("cpu")?; // or "cuda" in a `cuda` build
    /// let u = Umap::new().device(&dev);
    /// # let _ = u;
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn device(mut self, device: &candle_core::Device) -> Self {
        self.device = device.clone();
        self
    }

    /// How the nearest neighbours are found: [`NeighborSearch::Auto`] (the default) is
    /// umap-learn's rule, exact below 4,096 samples and NN-descent from there (on a CUDA
    /// device always exact). NN-descent is seeded with [`seed`](Self::seed) and, unlike
    /// umap-learn's, gives the same neighbours at any thread count.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use neuroscope::analysis::{embed::Umap, neighbors::NeighborSearch};
    /// let mut r = neuroscope::rng::Rng::new(0);
    /// let x = Array2::from_shape_fn((300, 5), |(i, _)| (i / 100) as f64 * 8.0 + r.normal());
    /// let u = Umap::new().neighbor_search(NeighborSearch::NnDescent).n_epochs(50).fit(&x)?;
    /// assert_eq!(u.neighbor_search(), NeighborSearch::NnDescent);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn neighbor_search(mut self, search: NeighborSearch) -> Self {
        self.neighbor_search = search;
        self
    }

    /// Embed the rows of `x`.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<FittedUmap> {
        let mut x = to_f64_checked(x, "UMAP input", 3)?;
        let n = x.nrows();
        if self.n_neighbors < 2 || self.n_neighbors > n {
            return Err(Error::InvalidArgument(format!(
                "UMAP n_neighbors={} must be between 2 and n_samples = {n}",
                self.n_neighbors
            )));
        }
        if self.dims == 0 || self.dims >= n {
            return Err(Error::InvalidArgument(format!(
                "UMAP dims={} must be between 1 and n_samples - 1",
                self.dims
            )));
        }
        if !(self.min_dist >= 0.0 && self.spread > 0.0 && self.min_dist <= self.spread) {
            return Err(Error::InvalidArgument(format!(
                "UMAP needs 0 <= min_dist <= spread, spread > 0; got min_dist {} and spread {}",
                self.min_dist, self.spread
            )));
        }
        if self.metric == UmapMetric::Cosine {
            unit_rows(&mut x, "")?;
        }
        let k = self.n_neighbors - 1;
        let search = self
            .neighbor_search
            .resolve(n, &self.device, UMAP_NN_DESCENT_FROM);
        let nn = match search {
            NeighborSearch::NnDescent => {
                // a stop request ends the search early and is left for the epochs to honour
                neighbors::NnDescent::new()
                    .seed(self.seed)
                    .progress(self.progress)
                    .run(&x, k, false)?
                    .0
            }
            _ => neighbors::knn_on(&x, k, &self.device)?,
        };
        let dist = |d: f64| match self.metric {
            UmapMetric::Euclidean => d,
            UmapMetric::Cosine => 0.5 * d * d, // chord^2 / 2 = 1 - cos
        };
        // neighbour lists with the point itself first, as umap-learn's
        let knn_d: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                std::iter::once(0.0)
                    .chain(nn.distances.row(i).iter().map(|&d| dist(d)))
                    .collect()
            })
            .collect();
        let knn_i: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                std::iter::once(i)
                    .chain(nn.indices.row(i).iter().copied())
                    .collect()
            })
            .collect();
        let graph = fuzzy_simplicial_set(&knn_i, &knn_d, self.n_neighbors);
        let n_epochs = self.n_epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 });
        let (a, b) = find_ab(self.spread, self.min_dist);
        let mut y = spectral_init(&graph, self.dims, self.seed);
        let mut r = crate::rng::Rng::new(self.seed ^ 0x5eed);
        let mx = y
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        y.mapv_inplace(|v| v * 10.0 / mx + r.normal() * 1e-4);
        for mut col in y.columns_mut() {
            let (lo, hi) = col
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            let span = (hi - lo).max(f64::MIN_POSITIVE);
            col.mapv_inplace(|v| 10.0 * (v - lo) / span);
        }
        let (y, epochs_run) = optimize(
            &graph,
            y,
            a,
            b,
            n_epochs,
            self.negative_sample_rate,
            self.seed,
            self.progress,
        );
        Ok(FittedUmap {
            embedding: y,
            a,
            b,
            n_epochs: epochs_run,
            interrupted: epochs_run < n_epochs,
            graph_edges: graph.indices.len(),
            neighbor_search: search,
            params: self.clone(),
        })
    }
}

/// Scales every row to unit length (the cosine metric's neighbours are the euclidean ones of
/// the unit rows); a zero row has no direction and is refused.
fn unit_rows(x: &mut Array2<f64>, which: &str) -> Result<()> {
    for (i, mut row) in x.rows_mut().into_iter().enumerate() {
        let norm = row.dot(&row).sqrt();
        if norm == 0.0 {
            return Err(Error::InvalidArgument(format!(
                "UMAP cosine metric: {which}sample {i} is the zero vector"
            )));
        }
        row.mapv_inplace(|v| v / norm);
    }
    Ok(())
}

/// Symmetric fuzzy graph in CSR form.
struct Graph {
    indptr: Vec<usize>,
    indices: Vec<usize>,
    weights: Vec<f64>,
}

/// `(sigma, rho)` of one neighbour list (the point itself first): rho is the distance to the
/// nearest other point (umap-learn's `local_connectivity = 1`).
fn smooth_knn(d: &[f64], k: usize, mean_all: f64) -> (f64, f64) {
    let rho = d.iter().copied().find(|&v| v > 0.0).unwrap_or(0.0);
    (smooth_sigma(d, k, mean_all, rho), rho)
}

/// umap-learn's `smooth_knn_dist` for one row once rho is chosen: the bandwidth at which the
/// memberships of `d[1..]` sum to `log2(k)`, floored at 1e-3 of the mean distance.
fn smooth_sigma(d: &[f64], k: usize, mean_all: f64, rho: f64) -> f64 {
    let target = (k as f64).log2();
    let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
    for _ in 0..64 {
        let mut psum = 0.0;
        for &dj in &d[1..] {
            let e = dj - rho;
            psum += if e > 0.0 { (-(e / mid)).exp() } else { 1.0 };
        }
        if (psum - target).abs() < 1e-5 {
            break;
        }
        if psum > target {
            hi = mid;
            mid = (lo + hi) / 2.0;
        } else {
            lo = mid;
            mid = if hi == f64::INFINITY {
                mid * 2.0
            } else {
                (lo + hi) / 2.0
            };
        }
    }
    let mean_i = d.iter().sum::<f64>() / d.len() as f64;
    let floor = if rho > 0.0 {
        1e-3 * mean_i
    } else {
        1e-3 * mean_all
    };
    mid.max(floor)
}

fn fuzzy_simplicial_set(knn_i: &[Vec<usize>], knn_d: &[Vec<f64>], k: usize) -> Graph {
    let n = knn_i.len();
    let mean_all = knn_d.iter().flatten().sum::<f64>() / (n * k) as f64;
    let mut rows: Vec<Vec<(usize, f64)>> = (0..n)
        .map(|i| {
            let (sigma, rho) = smooth_knn(&knn_d[i], k, mean_all);
            knn_i[i]
                .iter()
                .zip(&knn_d[i])
                .filter(|(&j, _)| j != i)
                .map(|(&j, &d)| {
                    (
                        j,
                        if d - rho <= 0.0 || sigma == 0.0 {
                            1.0
                        } else {
                            (-((d - rho) / sigma)).exp()
                        },
                    )
                })
                .collect()
        })
        .collect();
    // fuzzy union: w + w^T - w * w^T
    let mut trans: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (i, row) in rows.iter().enumerate() {
        for &(j, w) in row {
            trans[j].push((i, w));
        }
    }
    let mut indptr = vec![0];
    let mut indices = Vec::new();
    let mut weights = Vec::new();
    for i in 0..n {
        let mut m: Vec<(usize, f64, f64)> = rows[i].drain(..).map(|(j, w)| (j, w, 0.0)).collect();
        for &(j, w) in &trans[i] {
            match m.iter_mut().find(|e| e.0 == j) {
                Some(e) => e.2 = w,
                None => m.push((j, 0.0, w)),
            }
        }
        m.sort_by_key(|e| e.0);
        for (j, w1, w2) in m {
            let w = w1 + w2 - w1 * w2;
            if w > 0.0 {
                indices.push(j);
                weights.push(w);
            }
        }
        indptr.push(indices.len());
    }
    Graph {
        indptr,
        indices,
        weights,
    }
}

/// Fit `1 / (1 + a x^(2b))` to umap-learn's target curve by Levenberg-Marquardt (scipy's
/// `curve_fit` from `a = b = 1`).
///
/// ```
/// let (a, b) = neuroscope::analysis::embed::find_ab(1.0, 0.1);
/// assert!((a - 1.577).abs() < 0.01 && (b - 0.895).abs() < 0.01, "{a} {b}");
/// ```
pub fn find_ab(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| i as f64 * spread * 3.0 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| (1.0 / (1.0 + a * x.powf(2.0 * b)) - y).powi(2))
            .sum()
    };
    let mut lambda = 1e-3;
    let mut c = cost(a, b);
    for _ in 0..200 {
        let (mut jtj, mut jtr) = ([[0.0f64; 2]; 2], [0.0f64; 2]);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x == 0.0 {
                let r = 1.0 - y;
                let _ = r;
                continue;
            }
            let x2b = x.powf(2.0 * b);
            let den = 1.0 + a * x2b;
            let f = 1.0 / den;
            let r = f - y;
            let da = -x2b / (den * den);
            let db = -a * x2b * 2.0 * x.ln() / (den * den);
            jtj[0][0] += da * da;
            jtj[0][1] += da * db;
            jtj[1][1] += db * db;
            jtr[0] += da * r;
            jtr[1] += db * r;
        }
        jtj[1][0] = jtj[0][1];
        let m00 = jtj[0][0] * (1.0 + lambda);
        let m11 = jtj[1][1] * (1.0 + lambda);
        let det = m00 * m11 - jtj[0][1] * jtj[1][0];
        if det.abs() < 1e-300 {
            break;
        }
        let da = -(m11 * jtr[0] - jtj[0][1] * jtr[1]) / det;
        let db = -(-jtj[1][0] * jtr[0] + m00 * jtr[1]) / det;
        let (na, nb) = (a + da, b + db);
        let nc = cost(na, nb);
        if nc < c {
            a = na;
            b = nb;
            let done = (c - nc) / c.max(1e-300) < 1e-12;
            c = nc;
            lambda /= 10.0;
            if done {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    (a, b)
}

/// Leading non-trivial eigenvectors of the normalised graph Laplacian by subspace iteration on
/// `(I + D^-1/2 W D^-1/2) / 2` (seeded start, Rayleigh-Ritz every 10 steps).
fn spectral_init(g: &Graph, dims: usize, seed: u64) -> Array2<f64> {
    let n = g.indptr.len() - 1;
    let deg: Vec<f64> = (0..n)
        .map(|i| g.weights[g.indptr[i]..g.indptr[i + 1]].iter().sum::<f64>())
        .collect();
    let dinv: Vec<f64> = deg
        .iter()
        .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 })
        .collect();
    let m = (dims + 1 + 6).min(n);
    let mut r = crate::rng::Rng::new(seed ^ 0x59ec);
    let v = Array2::from_shape_fn((n, m), |_| r.normal());
    // One product with the lazy walk 0.5 (I + D^-1/2 W D^-1/2), written straight into the
    // output's rows (the same additions in the same order as a per-row buffer).
    let matvec = |v: &Array2<f64>| -> Array2<f64> {
        let v = v.as_standard_layout();
        let vs = v.as_slice().expect("standard layout");
        let mut out = Array2::<f64>::zeros((n, m));
        out.as_slice_mut()
            .expect("fresh array")
            .par_chunks_mut(m)
            .with_min_len(256)
            .enumerate()
            .for_each(|(i, o)| {
                for k in g.indptr[i]..g.indptr[i + 1] {
                    let j = g.indices[k];
                    let w = g.weights[k] * dinv[i] * dinv[j];
                    for (oc, vc) in o.iter_mut().zip(&vs[j * m..(j + 1) * m]) {
                        *oc += w * vc;
                    }
                }
                for (oc, vc) in o.iter_mut().zip(&vs[i * m..(i + 1) * m]) {
                    *oc = 0.5 * (*oc + vc);
                }
            });
        out
    };
    let ritz = if n >= CHEBYSHEV_FROM {
        chebyshev_top(&matvec, v, dims + 1)
    } else {
        subspace_iteration_top(&matvec, v, dims + 1)
    };
    // skip the trivial top vector (D^1/2 1); signs: largest-magnitude entry positive
    let mut out = Array2::zeros((n, dims));
    for c in 0..dims {
        let col = ritz.column(c + 1);
        let big = col
            .iter()
            .cloned()
            .fold(0.0f64, |a, v| if v.abs() > a.abs() { v } else { a });
        let s = if big < 0.0 { -1.0 } else { 1.0 };
        for i in 0..n {
            out[[i, c]] = s * col[i];
        }
    }
    out
}

/// From this many samples the spectral start uses [`chebyshev_top`]: on large graphs the top
/// eigenvalues of the walk crowd near 1 and subspace iteration needs thousands of products (on
/// 70,000 Fashion-MNIST images it had not converged after 500: 8.5 s). Below it the subspace
/// iteration stays, so small embeddings keep their bytes. (umap-learn also switches solvers by
/// size, ARPACK to LOBPCG.)
const CHEBYSHEV_FROM: usize = 4_096;

/// From this many samples [`NeighborSearch::Auto`] makes UMAP search by NN-descent
/// (umap-learn's rule).
const UMAP_NN_DESCENT_FROM: usize = 4_096;

/// Top `want` eigenvectors (Ritz vectors, descending) of the symmetric operator `matvec` by
/// subspace iteration from the block `v`, Rayleigh-Ritz every 10 steps, until the Ritz values
/// change by less than 1e-7 (at most 500 steps).
fn subspace_iteration_top(
    matvec: &(dyn Fn(&Array2<f64>) -> Array2<f64> + Sync),
    mut v: Array2<f64>,
    want: usize,
) -> Array2<f64> {
    let (n, m) = v.dim();
    let mut prev: Vec<f64> = vec![0.0; m];
    let mut ritz = Array2::<f64>::zeros((n, m));
    for it in 0..500 {
        v = super::super::linalg::orthonormalize(&matvec(&v));
        if it % 10 == 9 {
            if let Some((w, vecs)) = rayleigh_ritz(&v, &matvec(&v)) {
                ritz = vecs;
                let conv = w
                    .iter()
                    .zip(&prev)
                    .take(want)
                    .all(|(a, b)| (a - b).abs() < 1e-7);
                prev = w.to_vec();
                if conv {
                    break;
                }
            }
        }
    }
    ritz
}

/// Rayleigh-Ritz on the orthonormal block `v` given `av` (the operator applied to it): the Ritz
/// values, descending, and the Ritz vectors `v u`; `None` if the small eigenproblem fails.
fn rayleigh_ritz(v: &Array2<f64>, av: &Array2<f64>) -> Option<(ndarray::Array1<f64>, Array2<f64>)> {
    use super::super::linalg::{eigh_desc, matmul_nn, matmul_tn};
    let h = matmul_tn(v, av);
    let h = (&h + &h.t()) * 0.5;
    let (w, u) = eigh_desc(&h).ok()?;
    Some((w, matmul_nn(v, &u)))
}

/// Top `want` eigenvectors (Ritz vectors, descending) of `matvec`, the lazy walk (spectrum in
/// [0, 1]), by Chebyshev-filtered subspace iteration (Zhou and Saad, 2007): each round applies
/// the degree-10 Chebyshev polynomial that stays within [-1, 1] on [0, cut] (cut: the block's
/// smallest Ritz value) and grows fast above it, then Rayleigh-Ritz; until the top `want` Ritz
/// values change by less than 1e-9 between rounds (at most 100 rounds). Per product it
/// separates eigenvalues crowded near 1 about as a power of `exp(sqrt(gap))` instead of a power
/// of the plain ratio: on 70,000 Fashion-MNIST images the second and third eigenvalues (0.99946,
/// 0.99866) need ~20x fewer products than plain subspace iteration.
fn chebyshev_top(
    matvec: &(dyn Fn(&Array2<f64>) -> Array2<f64> + Sync),
    v: Array2<f64>,
    want: usize,
) -> Array2<f64> {
    const DEGREE: usize = 10;
    let mut x = super::super::linalg::orthonormalize(&v);
    let mut prev: Vec<f64> = vec![f64::INFINITY; want];
    let mut ritz = x.clone();
    for _ in 0..100 {
        let Some((w, vecs)) = rayleigh_ritz(&x, &matvec(&x)) else {
            break;
        };
        let conv = w
            .iter()
            .zip(&prev)
            .take(want)
            .all(|(a, b)| (a - b).abs() < 1e-9);
        prev = w.iter().take(want).copied().collect();
        ritz = vecs;
        if conv {
            break;
        }
        // damp [0, cut]: t -> (t - cut / 2) / (cut / 2) maps it onto [-1, 1]
        let half = 0.5 * w[w.len() - 1].clamp(1e-3, 1.0 - 1e-9);
        let step = |y: &Array2<f64>| (matvec(y) - y * half) / half;
        let mut y_prev = ritz.clone();
        let mut y = step(&ritz);
        for _ in 1..DEGREE {
            let y_next = step(&y) * 2.0 - &y_prev;
            y_prev = y;
            y = y_next;
        }
        x = super::super::linalg::orthonormalize(&y);
    }
    ritz
}

/// Gradient coefficient of the attraction along an edge at squared distance `d2 > 0`
/// (umap-learn's, for `1 / (1 + a d^2b)`: `-2ab d2^(b-1) / (1 + a d2^b)`); the fit and
/// `transform` share it, and [`pow::pow_pos`] makes it the same bits in the fit's vector loop.
#[inline(always)]
fn attraction(d2: f64, a: f64, b: f64) -> f64 {
    let p = pow::pow_pos(d2, b);
    -2.0 * a * b * (p / d2) / (a * p + 1.0)
}

/// Gradient coefficient of the repulsion from a negative sample at squared distance `d2 > 0`
/// (umap-learn's, with its 0.001 guard and gamma = 1).
#[inline(always)]
fn repulsion(d2: f64, a: f64, b: f64) -> f64 {
    2.0 * b / ((0.001 + d2) * (a * pow::pow_pos(d2, b) + 1.0))
}

/// [`attraction`] for [`pow::map`].
#[derive(Clone, Copy)]
struct Attraction {
    a: f64,
    b: f64,
}

impl pow::Elementwise for Attraction {
    #[inline(always)]
    fn at(&self, d2: f64) -> f64 {
        attraction(d2, self.a, self.b)
    }
}

/// [`repulsion`] for [`pow::map`].
#[derive(Clone, Copy)]
struct Repulsion {
    a: f64,
    b: f64,
}

impl pow::Elementwise for Repulsion {
    #[inline(always)]
    fn at(&self, d2: f64) -> f64 {
        repulsion(d2, self.a, self.b)
    }
}

/// The negative samples' random stream for one point in one epoch: SplitMix64 from a key
/// hashed from (seed, epoch, point), so no thread's schedule affects another's draws.
#[inline]
fn sample_key(seed: u64, epoch: usize, i: usize) -> u64 {
    mix64(seed ^ mix64(((epoch as u64) << 32) ^ i as u64))
}

/// The `ctr`-th draw of a stream, as an index below `n` (multiply-shift: no division).
#[inline(always)]
fn draw(key: u64, ctr: u64, n: usize) -> usize {
    let r = mix64(key.wrapping_add(ctr.wrapping_mul(0xD1B5_4A32_D192_ED03)));
    (((r >> 32) * n as u64) >> 32) as usize
}

/// One point's samples in one epoch, gathered before any power is taken so that the powers
/// run as one vector loop ([`pow::map`]).
#[derive(Default)]
struct Samples {
    /// attraction: the neighbour and the squared distance
    att: Vec<u32>,
    att_d2: Vec<f64>,
    /// repulsion: the negative sample and the squared distance
    rep: Vec<u32>,
    rep_d2: Vec<f64>,
    /// gradient coefficients
    coef: Vec<f64>,
}

/// What every point's step reads in one epoch of the fit.
struct Epoch<'a> {
    /// the positions at the start of the epoch, row-major
    ys: &'a [f64],
    g: &'a Graph,
    /// epochs per sample of each edge (negative when never sampled), and per negative sample
    eps: &'a [f64],
    epns: &'a [f64],
    d: usize,
    a: f64,
    b: f64,
    alpha: f64,
    epoch: usize,
    seed: u64,
}

impl Epoch<'_> {
    /// Point `i`'s move from its due edges and their negative samples (`delta`, zeroed by the
    /// caller), advancing its edges' schedules. `D` is the width when it is a constant (0: read
    /// `self.d`).
    #[inline(always)]
    fn point<const D: usize>(
        &self,
        i: usize,
        delta: &mut [f64],
        next: &mut [f64],
        next_neg: &mut [f64],
        s: &mut Samples,
    ) {
        let d = if D > 0 { D } else { self.d };
        let ys = self.ys;
        let n = ys.len() / d;
        let cur = &ys[i * d..i * d + d];
        let sq = |j: usize| -> f64 {
            let other = &ys[j * d..j * d + d];
            let mut acc = 0.0;
            for c in 0..d {
                acc += (cur[c] - other[c]) * (cur[c] - other[c]);
            }
            acc
        };
        let e = self.epoch as f64;
        let key = sample_key(self.seed, self.epoch, i);
        let mut ctr = 0u64;
        s.att.clear();
        s.att_d2.clear();
        s.rep.clear();
        s.rep_d2.clear();
        let edges = self.g.indptr[i]..self.g.indptr[i + 1];
        for (k, (next, next_neg)) in edges.zip(next.iter_mut().zip(next_neg.iter_mut())) {
            if self.eps[k] <= 0.0 || *next > e {
                continue;
            }
            let j = self.g.indices[k];
            let d2 = sq(j);
            if d2 > 0.0 {
                s.att.push(j as u32);
                s.att_d2.push(d2);
            }
            let n_neg = (((e - *next_neg) / self.epns[k]) as i64).max(0) as usize;
            for _ in 0..n_neg {
                let t = draw(key, ctr, n);
                ctr += 1;
                if t == i {
                    continue;
                }
                let d2 = sq(t);
                if d2 > 0.0 {
                    s.rep.push(t as u32);
                    s.rep_d2.push(d2);
                }
            }
            *next += self.eps[k];
            *next_neg += n_neg as f64 * self.epns[k];
        }
        // the gradient coefficients, four at a time, then the clipped moves
        let (a, b, alpha) = (self.a, self.b, self.alpha);
        let mut local = [0.0f64; 4];
        let local_ok = D > 0 && D <= 4;
        let acc: &mut [f64] = if local_ok {
            &mut local[..d]
        } else {
            &mut *delta
        };
        // the point moves along its own edges only (see the module's notes)
        let mut add = |targets: &[u32], coef: &[f64]| {
            for (&j, &gc) in targets.iter().zip(coef) {
                let other = &ys[j as usize * d..j as usize * d + d];
                for c in 0..d {
                    acc[c] += (gc * (cur[c] - other[c])).clamp(-4.0, 4.0) * alpha;
                }
            }
        };
        s.coef.resize(s.att.len(), 0.0);
        pow::map(&s.att_d2, &mut s.coef, Attraction { a, b });
        add(&s.att, &s.coef);
        s.coef.resize(s.rep.len(), 0.0);
        pow::map(&s.rep_d2, &mut s.coef, Repulsion { a, b });
        add(&s.rep, &s.coef);
        if local_ok {
            delta.copy_from_slice(&local[..d]);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn optimize(
    g: &Graph,
    y: Array2<f64>,
    a: f64,
    b: f64,
    n_epochs: usize,
    neg_rate: usize,
    seed: u64,
    show: bool,
) -> (Array2<f64>, usize) {
    let (n, d) = y.dim();
    // the positions row-major, whatever the start's layout
    let mut ys: Vec<f64> = y.iter().copied().collect();
    let wmax = g.weights.iter().cloned().fold(0.0f64, f64::max);
    // umap-learn drops edges too weak to be sampled even once
    let eps: Vec<f64> = g
        .weights
        .iter()
        .map(|&w| {
            let s = n_epochs as f64 * w / wmax;
            if w < wmax / n_epochs as f64 || s <= 0.0 {
                -1.0
            } else {
                n_epochs as f64 / s
            }
        })
        .collect();
    let epns: Vec<f64> = eps.iter().map(|&e| e / neg_rate as f64).collect();
    let mut next = eps.clone();
    let mut next_neg = epns.clone();
    // each point's slice of the edge schedules: only that point reads and advances them
    let mut schedules: Vec<(&mut [f64], &mut [f64])> = Vec::with_capacity(n);
    {
        let (mut rest, mut rest_neg) = (&mut next[..], &mut next_neg[..]);
        for i in 0..n {
            let len = g.indptr[i + 1] - g.indptr[i];
            let (a, r) = std::mem::take(&mut rest).split_at_mut(len);
            let (b, r2) = std::mem::take(&mut rest_neg).split_at_mut(len);
            schedules.push((a, b));
            rest = r;
            rest_neg = r2;
        }
    }
    let mut moves = vec![0.0f64; n * d];
    let mut progress = if show {
        Some(Progress::new("UMAP", n_epochs))
    } else {
        None
    };
    let mut run = 0;
    for epoch in 0..n_epochs {
        // A stop request (Ctrl-C in the CLI) returns the current embedding.
        if epoch > 0 && crate::progress::take_stop_request() {
            break;
        }
        run = epoch + 1;
        let alpha = 1.0 - epoch as f64 / n_epochs as f64;
        let ep = Epoch {
            ys: &ys,
            g,
            eps: &eps,
            epns: &epns,
            d,
            a,
            b,
            alpha,
            epoch,
            seed,
        };
        // every point's move from the positions at the start of the epoch, and its own edges'
        // schedules, in place (no allocation per point)
        moves.fill(0.0);
        moves
            .par_chunks_mut(d)
            .zip(schedules.par_iter_mut())
            .with_min_len(128)
            .enumerate()
            .for_each_init(Samples::default, |s, (i, (delta, (next, next_neg)))| {
                // the common widths as constants: the distance and move loops unroll and the
                // move stays in registers
                match d {
                    2 => ep.point::<2>(i, delta, next, next_neg, s),
                    3 => ep.point::<3>(i, delta, next, next_neg, s),
                    _ => ep.point::<0>(i, delta, next, next_neg, s),
                }
            });
        for (v, m) in ys.iter_mut().zip(&moves) {
            *v += m;
        }
        if let Some(p) = progress.as_mut() {
            p.inc(1);
        }
    }
    if let Some(p) = progress.as_mut() {
        p.finish();
    }
    (Array2::from_shape_fn((n, d), |(i, c)| ys[i * d + c]), run)
}

/// A UMAP embedding.
#[derive(Debug, Clone)]
pub struct FittedUmap {
    embedding: Array2<f64>,
    a: f64,
    b: f64,
    n_epochs: usize,
    interrupted: bool,
    graph_edges: usize,
    neighbor_search: NeighborSearch,
    /// The parameters [`FittedUmap::transform`] reuses.
    params: Umap,
}

impl FittedUmap {
    /// `N x dims` coordinates.
    pub fn embedding(&self) -> &Array2<f64> {
        &self.embedding
    }
    /// Consume into the coordinates.
    pub fn into_embedding(self) -> Array2<f64> {
        self.embedding
    }
    /// The fitted curve parameters `(a, b)`.
    pub fn ab(&self) -> (f64, f64) {
        (self.a, self.b)
    }
    /// Epochs run.
    pub fn n_epochs(&self) -> usize {
        self.n_epochs
    }
    /// Whether a stop request ([`crate::progress::request_stop`], Ctrl-C in the CLI) ended
    /// the optimisation early (the embedding is the last epoch's).
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }
    /// Directed edges of the fuzzy graph.
    pub fn graph_edges(&self) -> usize {
        self.graph_edges
    }
    /// The neighbour search the fit used: [`NeighborSearch::Exact`] or
    /// [`NeighborSearch::NnDescent`] ([`NeighborSearch::Auto`] resolved).
    pub fn neighbor_search(&self) -> NeighborSearch {
        self.neighbor_search
    }

    /// Places new samples into this embedding without moving the existing points, as
    /// umap-learn's `UMAP.transform`: each new sample's `n_neighbors` nearest reference samples
    /// (exact, same metric), their fuzzy memberships (bandwidth as in the fit, with
    /// `local_connectivity` lowered to 0 as umap-learn does), a start at the membership-weighted
    /// mean of those neighbours' positions, then `n_epochs / 3` epochs (100 when the fit's
    /// epochs were left to the default, 30 beyond 10,000 new samples) of the same
    /// negative-sampling SGD from learning rate 0.25, moving only the new points, negative
    /// samples drawn from the reference points.
    ///
    /// Deterministic at any thread count: the new points do not interact, each one's random
    /// draws depend only on (seed, epoch, point, draw), and each applies its moves in a fixed
    /// order. `reference` is the data this embedding was fitted on (same rows, same order);
    /// `new` has the same columns. Why it matters: held-out samples, or the same stimuli
    /// through an untrained network, land where the fitted map puts their neighbours instead
    /// of in a fresh, differently arranged map.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use neuroscope::analysis::embed::Umap;
    /// let mut r = neuroscope::rng::Rng::new(1);
    /// let x = Array2::from_shape_fn((120, 4), |(i, _)| (i % 2) as f64 * 8.0 + r.normal());
    /// let fitted = Umap::new().seed(0).n_epochs(150).fit(&x)?;
    /// let new = x.slice(ndarray::s![..6, ..]).mapv(|v| v + 0.1);
    /// let y = fitted.transform(&x, &new)?;
    /// assert_eq!(y.dim(), (6, 2));
    /// // the first new sample is close to an even-numbered (class 0) reference sample
    /// let e = fitted.embedding();
    /// let nearest = (0..120)
    ///     .min_by(|&a, &b| {
    ///         let d = |j: usize| (0..2).map(|c| (e[[j, c]] - y[[0, c]]).powi(2)).sum::<f64>();
    ///         d(a).total_cmp(&d(b))
    ///     })
    ///     .unwrap();
    /// assert_eq!(nearest % 2, 0);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn transform<S, T, S2, T2>(
        &self,
        reference: &ArrayBase<S, Ix2>,
        new: &ArrayBase<S2, Ix2>,
    ) -> Result<Array2<f64>>
    where
        S: Data<Elem = T>,
        T: Scalar,
        S2: Data<Elem = T2>,
        T2: Scalar,
    {
        let params = &self.params;
        let (n_ref, dims) = self.embedding.dim();
        let (mut reference, mut new) = super::transform_inputs("UMAP", n_ref, reference, new)?;
        if params.metric == UmapMetric::Cosine {
            unit_rows(&mut reference, "reference ")?;
            unit_rows(&mut new, "new ")?;
        }
        let m = new.nrows();
        let k = params.n_neighbors.min(n_ref);
        let dist = |sq: f64| match params.metric {
            UmapMetric::Euclidean => sq.sqrt(),
            UmapMetric::Cosine => 0.5 * sq, // chord^2 / 2 = 1 - cos
        };
        // Nearest reference samples of each new one (exact; ties by index).
        let nn: Vec<Vec<(f64, usize)>> = neighbors::nearest_in(&reference, &new, k)
            .into_iter()
            .map(|row| row.into_iter().map(|(sq, j)| (dist(sq), j)).collect())
            .collect();
        // Memberships: umap-learn lowers local_connectivity by one for new points, so rho = 0,
        // and (as there) the bandwidth search sums over all but the nearest neighbour.
        let mean_all = nn.iter().flatten().map(|c| c.0).sum::<f64>() / (m * k) as f64;
        let w: Vec<Vec<f64>> = nn
            .par_iter()
            .map(|row| {
                let d: Vec<f64> = row.iter().map(|c| c.0).collect();
                let sigma = smooth_sigma(&d, k, mean_all, 0.0);
                d.iter()
                    .map(|&dj| {
                        if dj <= 0.0 || sigma == 0.0 {
                            1.0
                        } else {
                            (-(dj / sigma)).exp()
                        }
                    })
                    .collect()
            })
            .collect();
        // Start: the membership-weighted mean of the neighbours' positions.
        let y_ref = &self.embedding;
        let mut y = Array2::<f64>::zeros((m, dims));
        for (i, (row, wi)) in nn.iter().zip(&w).enumerate() {
            let total: f64 = wi.iter().sum();
            for (&(_, j), &wj) in row.iter().zip(wi) {
                for c in 0..dims {
                    y[[i, c]] += wj / total * y_ref[[j, c]];
                }
            }
        }
        let n_epochs = match params.n_epochs {
            None if m <= 10_000 => 100,
            None => 30,
            Some(e) => (e / 3).max(1),
        };
        // Edges too weak to be sampled once are dropped; the rest are sampled every
        // wmax / w epochs, negative samples `negative_sample_rate` times as often.
        let wmax = w.iter().flatten().cloned().fold(0.0f64, f64::max);
        let neg_rate = params.negative_sample_rate as f64;
        let (a, b) = (self.a, self.b);
        let clip = |v: f64| v.clamp(-4.0, 4.0);
        // a random stream apart from the fit's
        let seed = params.seed ^ 0x7472_616e_7366_6f72;
        // per point: (neighbour, epochs per sample, next sample, next negative samples)
        let mut edges: Vec<Vec<(usize, f64, f64, f64)>> = nn
            .iter()
            .zip(&w)
            .map(|(row, wi)| {
                row.iter()
                    .zip(wi)
                    .filter(|&(_, &wj)| wj >= wmax / n_epochs as f64 && wj > 0.0)
                    .map(|(&(_, j), &wj)| {
                        let eps = wmax / wj;
                        (j, eps, eps, eps / neg_rate)
                    })
                    .collect()
            })
            .collect();
        let mut progress = params
            .progress
            .then(|| Progress::new("UMAP transform", n_epochs));
        for epoch in 0..n_epochs {
            if epoch > 0 && crate::progress::take_stop_request() {
                break;
            }
            let alpha = 0.25 * (1.0 - epoch as f64 / n_epochs as f64);
            let e = epoch as f64;
            let ys = y
                .as_slice_mut()
                .ok_or_else(|| Error::InvalidArgument("internal: UMAP layout".into()))?;
            ys.par_chunks_mut(dims)
                .zip(edges.par_iter_mut())
                .enumerate()
                .with_min_len(64)
                .for_each(|(i, (cur, edges_i))| {
                    let key = sample_key(seed, epoch, i);
                    let mut ctr = 0u64;
                    for (j, eps, next, next_neg) in edges_i.iter_mut() {
                        if *next > e {
                            continue;
                        }
                        let other = y_ref.row(*j);
                        let d2: f64 = (0..dims).map(|c| (cur[c] - other[c]).powi(2)).sum();
                        if d2 > 0.0 {
                            let gc = attraction(d2, a, b);
                            for c in 0..dims {
                                cur[c] += clip(gc * (cur[c] - other[c])) * alpha;
                            }
                        }
                        *next += *eps;
                        let epns = *eps / neg_rate;
                        let n_neg = (((e - *next_neg) / epns) as i64).max(0) as usize;
                        for _ in 0..n_neg {
                            let other = y_ref.row(draw(key, ctr, n_ref));
                            ctr += 1;
                            let d2: f64 = (0..dims).map(|c| (cur[c] - other[c]).powi(2)).sum();
                            if d2 > 0.0 {
                                let gc = repulsion(d2, a, b);
                                for c in 0..dims {
                                    cur[c] += clip(gc * (cur[c] - other[c])) * alpha;
                                }
                            }
                        }
                        *next_neg += n_neg as f64 * epns;
                    }
                });
            if let Some(p) = progress.as_mut() {
                p.inc(1);
            }
        }
        if let Some(p) = progress.as_mut() {
            p.finish();
        }
        Ok(y)
    }
}
