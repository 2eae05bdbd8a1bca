//! t-SNE (van der Maaten and Hinton 2008) with scikit-learn's parameters and defaults: exact,
//! Barnes-Hut (van der Maaten 2014), or FFT-accelerated interpolation (Linderman et al. 2019,
//! FIt-SNE / openTSNE) for large N; `Auto` picks as openTSNE does.
//!
//! Defaults (scikit-learn 1.9 and openTSNE): perplexity 30, early exaggeration 12 for 250
//! iterations (momentum 0.5), then 750 more (momentum 0.8), learning rate
//! `max(N / early_exaggeration / 4, 50)`, PCA initialisation scaled to standard deviation 1e-4,
//! gains with minimum 0.01, Barnes-Hut angle 0.5, affinities from the `3 * perplexity + 1` exact
//! nearest neighbours. The output uses the standard Cauchy kernel (one degree of freedom) in 2-D
//! and 3-D, as openTSNE.
//!
//! Determinism: every per-point sum (attractive and repulsive forces, the normalisation) is
//! computed by one task in a fixed order and the partial sums are added in index order, so the
//! same seed gives bit-identical embeddings at any thread count.

use super::super::neighbors::{self, NeighborSearch};
use super::super::{pca::Pca, to_f64_checked, Scalar};
use super::fft::FftRepulsion;
use crate::kernels::simd;
use crate::progress::Progress;
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};
use rayon::prelude::*;

#[cfg(feature = "cuda")]
#[path = "tsne_gpu.rs"]
mod gpu;

/// How the gradient is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsneMethod {
    /// O(N^2) per iteration, exact affinities over all points.
    Exact,
    /// Barnes-Hut space-partitioning tree, O(N log N) per iteration (scikit-learn's default).
    BarnesHut,
    /// FFT-accelerated interpolation (FIt-SNE, openTSNE's `fft`), O(N) per iteration plus a grid
    /// FFT; 2-D only (3-D falls back to Barnes-Hut, as openTSNE has no 3-D FFT either).
    Fft,
    /// openTSNE's rule: FFT from 10,000 points on (2-D), Barnes-Hut below (the default).
    Auto,
}

impl TsneMethod {
    /// The names [`TsneMethod::parse`] accepts (scikit-learn's `method`, openTSNE's
    /// `negative_gradient_method`).
    pub const NAMES: [&'static str; 4] = ["exact", "barnes_hut", "fft", "auto"];

    /// `exact`, `barnes_hut` (also `bh`), `fft` or `auto` (also through `str::parse`).
    ///
    /// ```
    /// use neuroscope::analysis::embed::TsneMethod;
    /// assert_eq!("barnes_hut".parse::<TsneMethod>()?, TsneMethod::BarnesHut);
    /// assert!(TsneMethod::parse("fast").unwrap_err().to_string().contains("barnes_hut"));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<TsneMethod> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "exact" => Ok(TsneMethod::Exact),
            "barnes_hut" | "bh" => Ok(TsneMethod::BarnesHut),
            "fft" => Ok(TsneMethod::Fft),
            "auto" => Ok(TsneMethod::Auto),
            _ => Err(Error::unknown(
                "t-SNE method",
                s,
                TsneMethod::NAMES.map(String::from).to_vec(),
            )),
        }
    }

    /// The method `Auto` resolves to for `n` points in `dims` dimensions.
    ///
    /// ```
    /// use neuroscope::analysis::embed::TsneMethod;
    /// assert_eq!(TsneMethod::Auto.resolve(20_000, 2), TsneMethod::Fft);
    /// assert_eq!(TsneMethod::Auto.resolve(5_000, 2), TsneMethod::BarnesHut);
    /// assert_eq!(TsneMethod::Fft.resolve(20_000, 3), TsneMethod::BarnesHut);
    /// ```
    pub fn resolve(self, n: usize, dims: usize) -> TsneMethod {
        match self {
            TsneMethod::Auto if dims == 2 && n >= AUTO_FFT_FROM => TsneMethod::Fft,
            TsneMethod::Auto => TsneMethod::BarnesHut,
            TsneMethod::Fft if dims != 2 => TsneMethod::BarnesHut,
            m => m,
        }
    }
}

from_str_by_parse!(TsneMethod);

/// Points from which `TsneMethod::Auto` picks the FFT method.
const AUTO_FFT_FROM: usize = 10_000;

/// How the embedding starts.
#[derive(Debug, Clone, PartialEq)]
pub enum TsneInit {
    /// First principal components, scaled to standard deviation 1e-4 (the default).
    Pca,
    /// Seeded Gaussian with standard deviation 1e-4.
    Random,
    /// Given coordinates (`N x dims`), used as they are.
    Given(Array2<f64>),
}

/// t-SNE parameters (builder); [`Tsne::fit`] returns a [`FittedTsne`].
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::embed::Tsne;
/// // two 5-D blobs of 40 points
/// let mut r = neuroscope::rng::Rng::new(0);
/// let x = Array2::from_shape_fn((80, 5), |(i, _)| (i / 40) as f64 * 10.0 + r.normal());
/// let t = Tsne::new().perplexity(10.0).max_iter(400).seed(1).fit(&x)?;
/// assert_eq!(t.embedding().dim(), (80, 2));
/// assert!(t.kl_divergence() < 1.0);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Tsne {
    dims: usize,
    perplexity: f64,
    early_exaggeration: f64,
    exaggeration_iter: usize,
    max_iter: usize,
    learning_rate: Option<f64>,
    theta: f64,
    method: TsneMethod,
    init: TsneInit,
    seed: u64,
    min_grad_norm: f64,
    progress: bool,
    report_every: usize,
    device: candle_core::Device,
    neighbor_search: NeighborSearch,
}

/// From this many samples [`NeighborSearch::Auto`] makes t-SNE search its `3 x perplexity`
/// neighbours by NN-descent: with 90 neighbours the exact search (float products) and
/// NN-descent took about as long at 30,000 Fashion-MNIST images (12-14 s against 11-13 s, 2
/// threads), and at 70,000 NN-descent took 26 s against 70 s.
pub const TSNE_NN_DESCENT_FROM: usize = 30_000;

impl Default for Tsne {
    fn default() -> Self {
        Self::new()
    }
}

impl Tsne {
    /// scikit-learn's defaults (2 dimensions, perplexity 30, 1000 iterations); the gradient method
    /// is `Auto` (Barnes-Hut below 10,000 points, FFT interpolation from there, as openTSNE).
    pub fn new() -> Self {
        Tsne {
            dims: 2,
            perplexity: 30.0,
            early_exaggeration: 12.0,
            exaggeration_iter: 250,
            max_iter: 1000,
            learning_rate: None,
            theta: 0.5,
            method: TsneMethod::Auto,
            init: TsneInit::Pca,
            seed: 0,
            min_grad_norm: 1e-7,
            progress: false,
            report_every: 50,
            device: candle_core::Device::Cpu,
            neighbor_search: NeighborSearch::Auto,
        }
    }
    /// Output dimensions (2 or 3).
    pub fn dims(mut self, d: usize) -> Self {
        self.dims = d;
        self
    }
    /// Effective number of neighbours.
    pub fn perplexity(mut self, p: f64) -> Self {
        self.perplexity = p;
        self
    }
    /// Factor on the affinities during the first phase.
    pub fn early_exaggeration(mut self, e: f64) -> Self {
        self.early_exaggeration = e;
        self
    }
    /// Total iterations, the exaggeration phase included.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Step size (default: `max(N / early_exaggeration / 4, 50)`).
    pub fn learning_rate(mut self, lr: f64) -> Self {
        self.learning_rate = Some(lr);
        self
    }
    /// Barnes-Hut accuracy (0 = exact forces, larger = faster and rougher).
    pub fn theta(mut self, t: f64) -> Self {
        self.theta = t;
        self
    }
    /// Exact, Barnes-Hut, FFT interpolation or `Auto` (the default).
    pub fn method(mut self, m: TsneMethod) -> Self {
        self.method = m;
        self
    }
    /// Starting layout.
    pub fn init(mut self, i: TsneInit) -> Self {
        self.init = i;
        self
    }
    /// Where the optimisation runs: the CPU (the default) or a CUDA GPU (`cuda` feature).
    ///
    /// On a GPU every iteration computes the repulsion exactly, all N^2 pairs in one fused
    /// kernel (a few milliseconds at 70,000 points), instead of the CPU's Barnes-Hut or FFT
    /// approximation; [`Tsne::method`] then only picks the affinities (`Exact`: all pairs, on
    /// the CPU; otherwise the `3 x perplexity` nearest neighbours, found on the GPU as
    /// [`crate::analysis::neighbors::knn_on`] finds them, the same as the CPU's). The schedule,
    /// the defaults, the KL report and the seed's role are the CPU solver's; the same seed gives
    /// the same embedding on the same GPU, but not the CPU's bits (float arithmetic, exact
    /// repulsion). Metal is not supported: use the CPU.
    ///
    /// ```
    /// use neuroscope::analysis::embed::Tsne;
    /// let dev = neuroscope::device::parse("cpu")?; // or "cuda" in a `cuda` build
    /// let t = Tsne::new().device(&dev);
    /// # let _ = t;
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn device(mut self, device: &candle_core::Device) -> Self {
        self.device = device.clone();
        self
    }
    /// How the `3 x perplexity` nearest neighbours are found (Barnes-Hut and FFT):
    /// [`NeighborSearch::Auto`] (the default) searches exactly below
    /// [`TSNE_NN_DESCENT_FROM`] samples and on a CUDA device, and by NN-descent from there
    /// (openTSNE, too, uses approximate neighbours on large data: Annoy). NN-descent is seeded
    /// with [`seed`](Self::seed) and gives the same neighbours at any thread count.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use neuroscope::analysis::{embed::Tsne, neighbors::NeighborSearch};
    /// let mut r = neuroscope::rng::Rng::new(0);
    /// let x = Array2::from_shape_fn((200, 5), |(i, _)| (i / 100) as f64 * 8.0 + r.normal());
    /// let t = Tsne::new()
    ///     .perplexity(10.0)
    ///     .max_iter(250)
    ///     .neighbor_search(NeighborSearch::NnDescent)
    ///     .fit(&x)?;
    /// assert_eq!(t.neighbor_search(), NeighborSearch::NnDescent);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn neighbor_search(mut self, search: NeighborSearch) -> Self {
        self.neighbor_search = search;
        self
    }

    /// Seed (random initialisation; PCA initialisation is deterministic).
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Show a progress bar with the KL divergence.
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// Embed the rows of `x`.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<FittedTsne> {
        let mut x = to_f64_checked(x, "t-SNE input", 2)?;
        // Squared distances of values near 1e19 overflow the single-precision neighbour search
        // (the embedding came out with KL 0). t-SNE does not depend on the data's scale (each
        // point's bandwidth adapts to its perplexity), so such data is scaled by a power of two,
        // which is exact, into [-1, 1].
        let max_abs = x.iter().fold(0f64, |m, v| m.max(v.abs()));
        if max_abs > 1e15 {
            let scale = 2f64.powi(-(max_abs.log2().ceil() as i32));
            x.mapv_inplace(|v| v * scale);
        }
        let x = x;
        let n = x.nrows();
        if !(2..=3).contains(&self.dims) {
            return Err(Error::InvalidArgument(format!(
                "t-SNE dims must be 2 or 3, got {}",
                self.dims
            )));
        }
        if !(self.perplexity > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "perplexity must be positive, got {}",
                self.perplexity
            )));
        }
        if (n as f64) < 3.0 * self.perplexity + 1.0 + 1.0 {
            return Err(Error::InvalidArgument(format!(
                "t-SNE with perplexity {} needs more than 3 x perplexity + 1 = {} samples, got {n}; use perplexity <= {:.1}",
                self.perplexity,
                (3.0 * self.perplexity + 1.0) as usize,
                ((n as f64 - 2.0) / 3.0).max(1.0)
            )));
        }
        let method = self.method.resolve(n, self.dims);
        if self.device.is_metal() {
            return Err(Error::InvalidArgument(
                "t-SNE runs on the CPU or a CUDA GPU, not on Metal: use Tsne::device(&Device::Cpu)"
                    .into(),
            ));
        }
        let p = match method {
            TsneMethod::Exact => {
                crate::analysis::check_dense(n, "exact t-SNE")?;
                exact_affinities(&x, self.perplexity)?
            }
            _ => knn_affinities(
                &x,
                self.perplexity,
                &self.device,
                self.nn_search(n),
                self.seed,
            )?,
        };
        let y0 = self.initial(&x)?;
        let lr = self
            .learning_rate
            .unwrap_or_else(|| (n as f64 / self.early_exaggeration / 4.0).max(50.0));
        let fitted = match &self.device {
            #[cfg(feature = "cuda")]
            candle_core::Device::Cuda(dev) => gpu::optimize(dev, self, &p, y0, lr),
            #[cfg(not(feature = "cuda"))]
            candle_core::Device::Cuda(_) => Err(Error::InvalidArgument(
                "t-SNE on a CUDA device needs neuroscope built with the `cuda` feature".into(),
            )),
            _ => optimize(self, method, &p, y0, lr),
        };
        fitted.map(|mut f| {
            f.neighbor_search = match method {
                TsneMethod::Exact => NeighborSearch::Exact,
                _ => self.nn_search(n),
            };
            f
        })
    }

    /// [`Tsne::neighbor_search`] with `Auto` resolved for `n` samples.
    fn nn_search(&self, n: usize) -> NeighborSearch {
        self.neighbor_search
            .resolve(n, &self.device, TSNE_NN_DESCENT_FROM)
    }

    /// Iteration `it`'s exaggeration and momentum (the early-exaggeration phase, then the
    /// rest, as scikit-learn), and whether its KL divergence is reported; shared by the CPU and
    /// GPU solvers.
    fn schedule(&self, it: usize) -> (f64, f64, bool) {
        let report = (it + 1).is_multiple_of(self.report_every) || it + 1 == self.max_iter;
        if it < self.exaggeration_iter {
            (self.early_exaggeration, 0.5, report)
        } else {
            (1.0, 0.8, report)
        }
    }

    fn initial(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        let n = x.nrows();
        let d = self.dims;
        Ok(match &self.init {
            TsneInit::Given(y) => {
                if y.dim() != (n, d) {
                    return Err(Error::Shape {
                        what: "t-SNE initial layout".into(),
                        expected: format!("{n} x {d}"),
                        got: format!("{} x {}", y.nrows(), y.ncols()),
                    });
                }
                y.as_standard_layout().into_owned()
            }
            TsneInit::Random => {
                let mut r = crate::rng::Rng::new(self.seed);
                Array2::from_shape_fn((n, d), |_| r.normal() * 1e-4)
            }
            TsneInit::Pca => {
                if x.ncols() < d {
                    let mut r = crate::rng::Rng::new(self.seed);
                    return Ok(Array2::from_shape_fn((n, d), |_| r.normal() * 1e-4));
                }
                let y = Pca::new()
                    .n_components(d)
                    .seed(self.seed)
                    .fit_transform(x)?
                    .1;
                let c0 = y.column(0);
                let m = c0.mean().unwrap_or(0.0);
                let sd = (c0.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt();
                if sd > 0.0 {
                    y.mapv(|v| v / sd * 1e-4)
                } else {
                    y
                }
            }
        })
    }
}

/// Symmetric sparse affinities (CSR): row `i` holds `(j, p_ij)`.
pub(crate) struct Affinities {
    pub(crate) indptr: Vec<usize>,
    pub(crate) indices: Vec<usize>,
    pub(crate) values: Vec<f64>,
}

/// Conditional probabilities for one point from squared distances by binary search on the
/// precision, as scikit-learn's `_binary_search_perplexity` (100 steps, tol 1e-5).
fn conditional(d2: &[f64], perplexity: f64, out: &mut [f64]) {
    let target = perplexity.ln();
    let (mut beta, mut lo, mut hi) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
    for _ in 0..100 {
        let mut sum = 0.0;
        for (o, &d) in out.iter_mut().zip(d2) {
            *o = (-d * beta).exp();
            sum += *o;
        }
        if sum == 0.0 {
            sum = 1e-8;
        }
        let mut sum_dp = 0.0;
        for (o, &d) in out.iter_mut().zip(d2) {
            *o /= sum;
            sum_dp += d * *o;
        }
        let entropy = sum.ln() + beta * sum_dp;
        let diff = entropy - target;
        if diff.abs() <= 1e-5 {
            break;
        }
        if diff > 0.0 {
            lo = beta;
            beta = if hi == f64::INFINITY {
                beta * 2.0
            } else {
                (beta + hi) / 2.0
            };
        } else {
            hi = beta;
            beta = if lo == f64::NEG_INFINITY {
                beta / 2.0
            } else {
                (beta + lo) / 2.0
            };
        }
    }
}

fn symmetrize(n: usize, rows: Vec<Vec<(usize, f64)>>) -> Affinities {
    // P + P^T, normalised to sum 1
    let mut all: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (i, row) in rows.iter().enumerate() {
        for &(j, v) in row {
            all[i].push((j, v));
            all[j].push((i, v));
        }
    }
    let mut indptr = vec![0];
    let mut indices = Vec::new();
    let mut values = Vec::new();
    let mut total = 0.0;
    for row in all.iter_mut() {
        row.sort_by_key(|a| a.0);
        let mut k = 0;
        while k < row.len() {
            let j = row[k].0;
            let mut v = 0.0;
            while k < row.len() && row[k].0 == j {
                v += row[k].1;
                k += 1;
            }
            indices.push(j);
            values.push(v);
            total += v;
        }
        indptr.push(indices.len());
    }
    let total = total.max(f64::EPSILON);
    values.iter_mut().for_each(|v| *v /= total);
    Affinities {
        indptr,
        indices,
        values,
    }
}

fn knn_affinities(
    x: &Array2<f64>,
    perplexity: f64,
    device: &candle_core::Device,
    search: NeighborSearch,
    seed: u64,
) -> Result<Affinities> {
    let n = x.nrows();
    let k = (n - 1).min((3.0 * perplexity + 1.0) as usize);
    let nn = match search {
        // Fewer trees and candidates than UMAP's settings: with 90 neighbours the forest's
        // leaves (256 points) already hold many of them, and the joins' cost grows with the
        // candidates squared. 70,000 Fashion-MNIST images, 2 threads: 4 trees and 20
        // candidates 26 s, 3 and 30 32 s (recall 0.9992), the exact search 70 s; at 30,000
        // images 4 and 20 gave recall 0.9987 in 11 s, UMAP's settings 17 s. A stop request is
        // left for the optimisation loop to honour.
        NeighborSearch::NnDescent => {
            neighbors::NnDescent::new()
                .seed(seed)
                .n_trees(4)
                .max_candidates(20)
                .run(x, k, false)?
                .0
        }
        _ => neighbors::knn_on(x, k, device)?,
    };
    let rows: Vec<Vec<(usize, f64)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let d2: Vec<f64> = nn.distances.row(i).iter().map(|d| d * d).collect();
            let mut p = vec![0.0; k];
            conditional(&d2, perplexity, &mut p);
            nn.indices.row(i).iter().copied().zip(p).collect()
        })
        .collect();
    Ok(symmetrize(n, rows))
}

fn exact_affinities(x: &Array2<f64>, perplexity: f64) -> Result<Affinities> {
    let n = x.nrows();
    let d = neighbors::pairwise_distances(x);
    let rows: Vec<Vec<(usize, f64)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            let d2: Vec<f64> = others.iter().map(|&j| d[[i, j]] * d[[i, j]]).collect();
            let mut p = vec![0.0; n - 1];
            conditional(&d2, perplexity, &mut p);
            others.into_iter().zip(p).collect()
        })
        .collect();
    Ok(symmetrize(n, rows))
}

// ------------------------------------------------------------------ Barnes-Hut tree

struct Node {
    center: [f64; 3],
    half: f64,
    com: [f64; 3],
    count: usize,
    children: Option<usize>, // index of the first of 2^d children
    point: Option<usize>,
}

struct Tree {
    d: usize,
    nodes: Vec<Node>,
}

impl Tree {
    fn child_of(&self, node: usize, p: [f64; 3]) -> usize {
        let c = &self.nodes[node];
        let mut idx = 0;
        for k in 0..self.d {
            if p[k] > c.center[k] {
                idx |= 1 << k;
            }
        }
        c.children.expect("internal node") + idx
    }

    /// Repulsive force on a point and its contribution to the normalisation.
    fn repulsion(
        &self,
        p: [f64; 3],
        i: usize,
        theta2: f64,
        out: &mut [f64; 3],
        stack: &mut Vec<usize>,
    ) -> f64 {
        let mut sum_q = 0.0;
        stack.clear();
        stack.push(0);
        while let Some(node) = stack.pop() {
            let nd = &self.nodes[node];
            if nd.count == 1 && nd.point == Some(i) {
                continue;
            }
            let mut diff = [0.0; 3];
            let mut d2 = 0.0;
            for k in 0..self.d {
                diff[k] = p[k] - nd.com[k];
                d2 += diff[k] * diff[k];
            }
            let width = 2.0 * nd.half;
            // descend into a node's children unless it is a leaf or far enough to summarise
            let descend = nd.children.filter(|_| !(width * width < theta2 * d2));
            if let Some(first) = descend {
                for c in (0..(1 << self.d)).rev() {
                    if self.nodes[first + c].count > 0 {
                        stack.push(first + c);
                    }
                }
            } else {
                // a leaf may hold duplicates of this very point: do not count it against itself
                let mut cnt = nd.count as f64;
                if nd.children.is_none() && nd.count > 1 && d2 == 0.0 {
                    cnt -= 1.0;
                }
                let q = 1.0 / (1.0 + d2);
                sum_q += cnt * q;
                let m = cnt * q * q;
                for k in 0..self.d {
                    out[k] += m * diff[k];
                }
            }
        }
        sum_q
    }
}

// ------------------------------------------------------------------ optimisation

/// What the iteration schedule leaves besides the embedding.
pub(super) struct Run {
    pub(super) kl: f64,
    pub(super) history: Vec<(usize, f64)>,
    pub(super) n_iter: usize,
    pub(super) interrupted: bool,
}

/// The optimisation loop shared by the CPU and GPU solvers: the schedule (exaggeration,
/// momentum), KL reports every `report_every` iterations and at the end, the progress bar, stop
/// requests (Ctrl-C in the CLI returns the current embedding) and the stopping rule on the
/// gradient norm. `step(exaggeration, momentum, report, advance)` takes one step (or, with
/// `advance` false, only evaluates at the current positions) and returns the gradient's squared
/// norm and, when `report`, the KL divergence.
pub(super) fn run_schedule(
    params: &Tsne,
    label: &str,
    mut step: impl FnMut(f64, f64, bool, bool) -> Result<(f64, Option<f64>)>,
) -> Result<Run> {
    let mut progress = params
        .progress
        .then(|| Progress::new(label, params.max_iter));
    let mut run = Run {
        kl: f64::NAN,
        history: Vec::new(),
        n_iter: 0,
        interrupted: false,
    };
    for it in 0..params.max_iter {
        if it > 0 && crate::progress::take_stop_request() {
            run.interrupted = true;
            break;
        }
        run.n_iter = it + 1;
        let (exag, momentum, report) = params.schedule(it);
        let (grad_sq, kl_now) = step(exag, momentum, report, true)?;
        if let Some(k) = kl_now {
            run.kl = k;
            run.history.push((it + 1, k));
            if let Some(pr) = progress.as_mut() {
                pr.set_message(format!("KL {k:.4}"));
            }
        }
        if let Some(pr) = progress.as_mut() {
            pr.inc(1);
        }
        if it >= params.exaggeration_iter && grad_sq.sqrt() < params.min_grad_norm {
            break;
        }
    }
    if let Some(pr) = progress.as_mut() {
        pr.finish();
    }
    if run.history.last().map(|h| h.0) != Some(run.n_iter) {
        run.kl = step(1.0, 0.0, true, false)?.1.unwrap_or(run.kl);
    }
    Ok(run)
}

fn optimize(
    params: &Tsne,
    method: TsneMethod,
    p: &Affinities,
    mut y: Array2<f64>,
    lr: f64,
) -> Result<FittedTsne> {
    let (n, d) = y.dim();
    let mut fft = FftRepulsion::new();
    let mut update = Array2::<f64>::zeros((n, d));
    let mut gains = Array2::<f64>::ones((n, d));
    let run = run_schedule(params, "t-SNE", |exag, momentum, report, advance| {
        let (grad, kl_now) = gradient(params, method, &mut fft, p, &y, exag, report);
        if !advance {
            return Ok((0.0, kl_now));
        }
        let mut gnorm = 0.0;
        for ((u, g), (gain, yv)) in update
            .iter_mut()
            .zip(grad.iter())
            .zip(gains.iter_mut().zip(y.iter_mut()))
        {
            if *u * *g < 0.0 {
                *gain += 0.2;
            } else {
                *gain *= 0.8;
            }
            if *gain < 0.01 {
                *gain = 0.01;
            }
            let gg = *g * *gain;
            *u = momentum * *u - lr * gg;
            *yv += *u;
            gnorm += g * g;
        }
        Ok((gnorm, kl_now))
    })?;
    Ok(FittedTsne {
        embedding: y,
        kl_divergence: run.kl,
        kl_history: run.history,
        n_iter: run.n_iter,
        interrupted: run.interrupted,
        neighbor_search: NeighborSearch::Exact, // set by `fit`
    })
}

/// Gradient (with sklearn's factor 4) and, when asked, the KL divergence of the un-exaggerated P.
fn gradient(
    params: &Tsne,
    method: TsneMethod,
    fft: &mut FftRepulsion,
    p: &Affinities,
    y: &Array2<f64>,
    exag: f64,
    want_kl: bool,
) -> (Array2<f64>, Option<f64>) {
    let (n, d) = y.dim();
    let ys = y.as_slice().expect("row-major");
    // repulsion: per point, then the normalisation summed in index order
    let (rep, sum_q): (Vec<[f64; 3]>, f64) = match method {
        TsneMethod::Fft => {
            let mut rep = vec![[0.0; 3]; n];
            let z = fft.repulsion(ys, &mut rep);
            (rep, z)
        }
        TsneMethod::BarnesHut | TsneMethod::Auto => {
            let tree = Tree::build_with(y);
            let theta2 = params.theta * params.theta;
            // visit points in the tree's depth-first order: neighbours in space walk the same
            // nodes one after another, which keeps them in cache
            let order = tree.leaf_order(n);
            let parts: Vec<([f64; 3], f64)> = order
                .par_iter()
                .with_min_len(64)
                .map_init(
                    || Vec::with_capacity(256),
                    |stack, &i| {
                        let mut pt = [0.0; 3];
                        pt[..d].copy_from_slice(&ys[i * d..i * d + d]);
                        let mut f = [0.0; 3];
                        let q = tree.repulsion(pt, i, theta2, &mut f, stack);
                        (f, q)
                    },
                )
                .collect();
            let mut rep = vec![[0.0; 3]; n];
            let mut qs = vec![0.0; n];
            for (&i, (f, q)) in order.iter().zip(parts) {
                rep[i] = f;
                qs[i] = q;
            }
            // the normalisation is summed in index order: independent of the visiting order
            (rep, qs.iter().sum())
        }
        TsneMethod::Exact => {
            let parts: Vec<([f64; 3], f64)> = (0..n)
                .into_par_iter()
                .with_min_len(16)
                .map(|i| {
                    let mut f = [0.0; 3];
                    let mut s = 0.0;
                    for j in 0..n {
                        if j == i {
                            continue;
                        }
                        let mut diff = [0.0; 3];
                        let mut d2 = 0.0;
                        for k in 0..d {
                            diff[k] = ys[i * d + k] - ys[j * d + k];
                            d2 += diff[k] * diff[k];
                        }
                        let q = 1.0 / (1.0 + d2);
                        s += q;
                        for k in 0..d {
                            f[k] += q * q * diff[k];
                        }
                    }
                    (f, s)
                })
                .collect();
            let s: f64 = parts.iter().map(|p| p.1).sum();
            (parts.into_iter().map(|p| p.0).collect(), s)
        }
    };
    let sum_q = sum_q.max(f64::MIN_POSITIVE);
    let attr: Vec<([f64; 3], f64)> = (0..n)
        .into_par_iter()
        .with_min_len(256)
        .map(|i| {
            let (start, end) = (p.indptr[i], p.indptr[i + 1]);
            let (idx, val) = (&p.indices[start..end], &p.values[start..end]);
            let mut f = [0.0; 3];
            let mut kl = 0.0;
            if d == 2 {
                // this loop is half of an FFT iteration's time: the kernel divides four edges at
                // a time and adds in edge order (the scalar loop's bits); the KL divergence,
                // asked for now and then, takes a second pass over the edges
                let (y0, y1) = (ys[2 * i], ys[2 * i + 1]);
                let f = simd::tsne_attraction_2d((y0, y1), ys, idx, val, exag);
                if want_kl {
                    for (&j, &pij) in idx.iter().zip(val) {
                        let (dx, dy) = (y0 - ys[2 * j], y1 - ys[2 * j + 1]);
                        let q = 1.0 / (1.0 + dx * dx + dy * dy);
                        if pij > 0.0 {
                            kl += pij * (pij / (q / sum_q).max(f64::MIN_POSITIVE)).ln();
                        }
                    }
                }
                return ([f[0], f[1], 0.0], kl);
            }
            for (&j, &pij) in idx.iter().zip(val) {
                let mut diff = [0.0; 3];
                let mut d2 = 0.0;
                for c in 0..d {
                    diff[c] = ys[i * d + c] - ys[j * d + c];
                    d2 += diff[c] * diff[c];
                }
                let q = 1.0 / (1.0 + d2);
                let m = exag * pij * q;
                for c in 0..d {
                    f[c] += m * diff[c];
                }
                if want_kl && pij > 0.0 {
                    kl += pij * (pij / (q / sum_q).max(f64::MIN_POSITIVE)).ln();
                }
            }
            (f, kl)
        })
        .collect();
    let mut grad = Array2::zeros((n, d));
    for i in 0..n {
        for c in 0..d {
            grad[[i, c]] = 4.0 * (attr[i].0[c] - rep[i][c] / sum_q);
        }
    }
    let kl = if want_kl {
        Some(attr.iter().map(|a| a.1).sum())
    } else {
        None
    };
    (grad, kl)
}

impl Tree {
    /// Points in depth-first order of the tree.
    fn leaf_order(&self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        let mut stack = vec![0usize];
        while let Some(node) = stack.pop() {
            let nd = &self.nodes[node];
            if let Some(p) = nd.point {
                if !seen[p] {
                    seen[p] = true;
                    out.push(p);
                }
            }
            if let Some(first) = nd.children {
                for c in (0..(1usize << self.d)).rev() {
                    stack.push(first + c);
                }
            }
        }
        // duplicates sharing a leaf are not stored in it: add whatever is missing
        out.extend((0..n).filter(|&i| !seen[i]));
        out
    }

    fn build_with(y: &Array2<f64>) -> Tree {
        // insertion needs the positions of points already in a leaf: keep them alongside
        let (n, d) = y.dim();
        let mut t = Tree::build_empty(y);
        let pos: Vec<[f64; 3]> = (0..n)
            .map(|i| [y[[i, 0]], y[[i, 1]], if d == 3 { y[[i, 2]] } else { 0.0 }])
            .collect();
        for i in 0..n {
            t.insert_with(0, i, &pos, 0);
        }
        t
    }

    fn build_empty(y: &Array2<f64>) -> Tree {
        let (n, d) = y.dim();
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for i in 0..n {
            for k in 0..d {
                lo[k] = lo[k].min(y[[i, k]]);
                hi[k] = hi[k].max(y[[i, k]]);
            }
        }
        let mut center = [0.0; 3];
        let mut half = 0.0f64;
        for k in 0..d {
            center[k] = 0.5 * (lo[k] + hi[k]);
            half = half.max(0.5 * (hi[k] - lo[k]));
        }
        let half = half * (1.0 + 1e-5) + 1e-12;
        Tree {
            d,
            nodes: vec![Node {
                center,
                half,
                com: [0.0; 3],
                count: 0,
                children: None,
                point: None,
            }],
        }
    }

    fn insert_with(&mut self, node: usize, i: usize, pos: &[[f64; 3]], depth: usize) {
        let d = self.d;
        let p = pos[i];
        {
            let nd = &mut self.nodes[node];
            let c = nd.count as f64;
            for k in 0..d {
                nd.com[k] = (nd.com[k] * c + p[k]) / (c + 1.0);
            }
            nd.count += 1;
            if nd.count == 1 {
                nd.point = Some(i);
                return;
            }
        }
        if self.nodes[node].children.is_none() {
            let same = self.nodes[node].point.map(|o| pos[o] == p).unwrap_or(false);
            if depth > 48 || same {
                return; // duplicates share a leaf
            }
            let first = self.nodes.len();
            let (center, half) = (self.nodes[node].center, self.nodes[node].half);
            for c in 0..(1usize << d) {
                let mut cc = center;
                for k in 0..d {
                    cc[k] += if c & (1 << k) != 0 {
                        half / 2.0
                    } else {
                        -half / 2.0
                    };
                }
                self.nodes.push(Node {
                    center: cc,
                    half: half / 2.0,
                    com: [0.0; 3],
                    count: 0,
                    children: None,
                    point: None,
                });
            }
            self.nodes[node].children = Some(first);
            if let Some(old) = self.nodes[node].point.take() {
                let ch = self.child_of(node, pos[old]);
                self.insert_with(ch, old, pos, depth + 1);
            }
        }
        let ch = self.child_of(node, p);
        self.insert_with(ch, i, pos, depth + 1);
    }
}

/// A t-SNE embedding and its optimisation record.
#[derive(Debug, Clone)]
pub struct FittedTsne {
    embedding: Array2<f64>,
    kl_divergence: f64,
    kl_history: Vec<(usize, f64)>,
    n_iter: usize,
    interrupted: bool,
    neighbor_search: NeighborSearch,
}

impl FittedTsne {
    /// `N x dims` coordinates.
    pub fn embedding(&self) -> &Array2<f64> {
        &self.embedding
    }
    /// Consume into the coordinates.
    pub fn into_embedding(self) -> Array2<f64> {
        self.embedding
    }
    /// KL divergence at the end (Barnes-Hut and FFT: with their approximate normalisation).
    pub fn kl_divergence(&self) -> f64 {
        self.kl_divergence
    }
    /// `(iteration, KL)` every 50 iterations (during exaggeration the KL of the exaggerated
    /// gradient's P, as scikit-learn reports it).
    pub fn kl_history(&self) -> &[(usize, f64)] {
        &self.kl_history
    }
    /// Iterations run.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
    /// Whether a stop request ([`crate::progress::request_stop`], Ctrl-C in the CLI) ended
    /// the optimisation before `max_iter` (the embedding is the last iterate).
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }
    /// How the neighbours were found: [`NeighborSearch::Exact`] or
    /// [`NeighborSearch::NnDescent`] ([`NeighborSearch::Auto`] resolved; the exact method
    /// uses all pairs, reported as exact).
    ///
    /// ```
    /// use ndarray::Array2;
    /// use neuroscope::analysis::{embed::Tsne, neighbors::NeighborSearch};
    /// let x = Array2::from_shape_fn((60, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
    /// let t = Tsne::new().perplexity(5.0).max_iter(250).fit(&x)?;
    /// assert_eq!(t.neighbor_search(), NeighborSearch::Exact); // small data: exact
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn neighbor_search(&self) -> NeighborSearch {
        self.neighbor_search
    }

    /// Places new samples into this embedding without moving the existing points, as
    /// openTSNE's `TSNEEmbedding.transform` does with its defaults: affinities of each new
    /// sample to its `3 x 5` nearest reference samples at perplexity 5 (rows summing to 1), a
    /// start at the median position of its 25 nearest reference samples, then 250 steps of
    /// gradient descent (learning rate 0.1, momentum 0.8, gains, each point's gradient clipped
    /// to norm 0.25) against the fixed reference points, repulsion by Barnes-Hut (angle 0.5).
    /// Deterministic: no random numbers, per-point sums in a fixed order.
    ///
    /// `reference` is the data this embedding was fitted on (same rows, same order); `new`
    /// has the same columns. Why it matters: held-out samples, or a second condition, land
    /// where the first embedding puts their neighbours instead of in a fresh, differently
    /// rotated map.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use neuroscope::analysis::embed::Tsne;
    /// let mut r = neuroscope::rng::Rng::new(1);
    /// let x = Array2::from_shape_fn((120, 4), |(i, _)| (i % 2) as f64 * 8.0 + r.normal());
    /// let fitted = Tsne::new().perplexity(10.0).max_iter(300).seed(0).progress(false).fit(&x)?;
    /// let new = x.slice(ndarray::s![..6, ..]).mapv(|v| v + 0.1);
    /// let y = fitted.transform(&x, &new)?;
    /// assert_eq!(y.dim(), (6, 2));
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
        let (n_ref, dims) = self.embedding.dim();
        let (reference, new) = super::transform_inputs("t-SNE", n_ref, reference, new)?;
        let (perplexity, k_init, lr, momentum, max_grad, n_iter) = (5.0, 25, 0.1, 0.8, 0.25, 250);
        let k = n_ref.min((3.0 * perplexity) as usize);
        let k_nn = k.max(k_init.min(n_ref));
        // Nearest reference samples of each new one (exact; ties by index).
        let nn = neighbors::nearest_in(&reference, &new, k_nn);
        let y_ref = &self.embedding;
        let m = new.nrows();
        // Affinities (rows sum to 1) and the median start.
        let p: Vec<Vec<(usize, f64)>> = nn
            .par_iter()
            .map(|cand| {
                let d2: Vec<f64> = cand[..k].iter().map(|c| c.0).collect();
                let mut pr = vec![0.0; k];
                conditional(&d2, perplexity, &mut pr);
                cand[..k].iter().map(|c| c.1).zip(pr).collect()
            })
            .collect();
        let mut y = Array2::<f64>::zeros((m, dims));
        for (i, cand) in nn.iter().enumerate() {
            for c in 0..dims {
                let mut v: Vec<f64> = cand[..k_init.min(cand.len())]
                    .iter()
                    .map(|&(_, j)| y_ref[[j, c]])
                    .collect();
                v.sort_by(f64::total_cmp);
                let h = v.len() / 2;
                y[[i, c]] = if v.len() % 2 == 1 {
                    v[h]
                } else {
                    (v[h - 1] + v[h]) / 2.0
                };
            }
        }
        // Gradient descent on the new points only; the reference tree never changes.
        let tree = Tree::build_with(y_ref);
        let theta2 = 0.25;
        let mut update = Array2::<f64>::zeros((m, dims));
        let mut gains = Array2::<f64>::ones((m, dims));
        for _ in 0..n_iter {
            let ys = y.as_slice().ok_or_else(|| internal("embedding layout"))?;
            let parts: Vec<([f64; 3], [f64; 3], f64)> = (0..m)
                .into_par_iter()
                .map_init(Vec::new, |stack, i| {
                    let mut pt = [0.0; 3];
                    pt[..dims].copy_from_slice(&ys[i * dims..][..dims]);
                    let mut attr = [0.0; 3];
                    for &(j, pij) in &p[i] {
                        let mut diff = [0.0; 3];
                        let mut d2 = 0.0;
                        for c in 0..dims {
                            diff[c] = pt[c] - y_ref[[j, c]];
                            d2 += diff[c] * diff[c];
                        }
                        let w = pij / (1.0 + d2);
                        for c in 0..dims {
                            attr[c] += w * diff[c];
                        }
                    }
                    let mut rep = [0.0; 3];
                    let q = tree.repulsion(pt, usize::MAX, theta2, &mut rep, stack);
                    (attr, rep, q)
                })
                .collect();
            let z: f64 = parts
                .iter()
                .map(|t| t.2)
                .sum::<f64>()
                .max(f64::MIN_POSITIVE);
            for (i, (attr, rep, _)) in parts.into_iter().enumerate() {
                let mut g = [0.0; 3];
                for c in 0..dims {
                    g[c] = attr[c] - rep[c] / z;
                }
                let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
                if norm > max_grad {
                    g.iter_mut().for_each(|v| *v *= max_grad / norm);
                }
                for c in 0..dims {
                    let (u, gain) = (&mut update[[i, c]], &mut gains[[i, c]]);
                    if *u * g[c] < 0.0 {
                        *gain += 0.2;
                    } else {
                        *gain = (*gain * 0.8).max(0.01);
                    }
                    *u = momentum * *u - lr * *gain * g[c];
                    y[[i, c]] += *u;
                }
            }
        }
        Ok(y)
    }
}

fn internal(what: &str) -> Error {
    Error::InvalidArgument(format!("internal: unexpected {what}"))
}

/// The GPU solver's kernels, run on the CPU (`kernels::cuda::emulation`), against this solver.
#[cfg(test)]
mod gpu_kernel_tests {
    use super::*;
    use crate::kernels::cuda::emulation::{run, Args};

    /// Three seeded Gaussian blobs in 20-D, apart enough that the embedding's quality does not
    /// hinge on rounding (with overlapping blobs a 1e-6 change of the start moves the CPU's own
    /// trustworthiness by 0.03).
    fn blobs(per: usize) -> Array2<f64> {
        let mut r = crate::rng::Rng::new(7);
        Array2::from_shape_fn((3 * per, 20), |(i, c)| {
            let centre = if c == i / per { 8.0 } else { 0.0 };
            centre + r.normal()
        })
    }

    /// Data, the CPU's affinities and start, and the CPU solver's result with exact repulsion.
    fn setup(
        per: usize,
        params: &Tsne,
        lr: f64,
    ) -> (Array2<f64>, Affinities, Array2<f64>, FittedTsne) {
        let x = blobs(per);
        let p = knn_affinities(
            &x,
            30.0,
            &candle_core::Device::Cpu,
            NeighborSearch::Exact,
            0,
        )
        .unwrap();
        let y0 = params.initial(&x).unwrap();
        let cpu = optimize(params, TsneMethod::Exact, &p, y0.clone(), lr).unwrap();
        (x, p, y0, cpu)
    }

    fn csr(p: &Affinities) -> (Vec<i32>, Vec<i32>) {
        (
            p.indptr.iter().map(|&v| v as i32).collect(),
            p.indices.iter().map(|&v| v as i32).collect(),
        )
    }

    /// One iteration as the GPU solver launches it; returns (gradient norm^2, KL, Z).
    #[allow(clippy::too_many_arguments)]
    fn iteration(
        p: &Affinities,
        y: &mut Vec<f64>,
        update: &mut Vec<f64>,
        gains: &mut Vec<f64>,
        d: usize,
        exag: f64,
        momentum: f64,
        lr: f64,
    ) -> Option<(f64, f64, f64)> {
        let (indptr, indices) = csr(p);
        let n = y.len() / d;
        let args = Args::default()
            .i32s(&indptr)
            .i32s(&indices)
            .f64s(&p.values)
            .f64s(y)
            .i32(n as i32)
            .i32(d as i32)
            .f64(exag)
            .f64(momentum)
            .f64(lr)
            .i32(1)
            .f64s(update)
            .f64s(gains);
        let mut o = run("iteration", args)?;
        *y = o.f64s();
        *update = o.f64s();
        *gains = o.f64s();
        Some((o.f64s()[0], o.f64s()[0], o.f64s()[0]))
    }

    #[test]
    fn repulsion_kernel_is_the_exact_double_sum() {
        let mut r = crate::rng::Rng::new(3);
        for d in [2usize, 3] {
            // more points than one float tile (1,024), coordinates spread as late in t-SNE
            let n = 1500;
            let y: Vec<f32> = (0..n * d).map(|_| (r.normal() * 20.0) as f32).collect();
            let Some(mut o) = run(
                "repulsion",
                Args::default().f32s(&y).i32(n as i32).i32(d as i32),
            ) else {
                return;
            };
            let (rep, sq) = (o.f32s(), o.f64s());
            let (mut worst_f, mut worst_q, mut scale) = (0.0f64, 0.0f64, 0.0f64);
            for i in 0..n {
                let (mut f, mut s) = ([0.0f64; 3], 0.0);
                for j in (0..n).filter(|&j| j != i) {
                    let diff: Vec<f64> = (0..d)
                        .map(|c| y[i * d + c] as f64 - y[j * d + c] as f64)
                        .collect();
                    let q = 1.0 / (1.0 + diff.iter().map(|v| v * v).sum::<f64>());
                    s += q;
                    for c in 0..d {
                        f[c] += q * q * diff[c];
                    }
                }
                for c in 0..d {
                    worst_f = worst_f.max((rep[i * d + c] as f64 - f[c]).abs());
                    scale = scale.max(f[c].abs());
                }
                worst_q = worst_q.max((sq[i] - s).abs() / s);
            }
            assert!(
                worst_f <= 1e-5 * scale,
                "{d}-D force error {worst_f} of {scale}"
            );
            assert!(worst_q <= 1e-5, "{d}-D normalisation error {worst_q}");
        }
    }

    #[test]
    fn one_gpu_iteration_is_the_cpu_step() {
        let lr = 200.0;
        let (_, p, y0, cpu) = setup(100, &Tsne::new().max_iter(1), lr);
        let mut y = y0.iter().copied().collect::<Vec<_>>();
        let (mut update, mut gains) = (vec![0.0; y.len()], vec![1.0; y.len()]);
        if iteration(&p, &mut y, &mut update, &mut gains, 2, 12.0, 0.5, lr).is_none() {
            return;
        }
        let step_cpu = cpu.embedding() - &y0;
        let worst = cpu
            .embedding()
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let scale = step_cpu.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        assert!(worst <= 1e-4 * scale, "step differs by {worst} of {scale}");
    }

    #[test]
    fn gpu_kernels_optimise_as_well_as_the_cpu() {
        let (lr, params) = (200.0, Tsne::new().max_iter(500));
        let (x, p, y0, cpu) = setup(150, &params, lr);
        let (n, d) = (x.nrows(), 2);
        let mut y = y0.iter().copied().collect::<Vec<_>>();
        let (mut update, mut gains) = (vec![0.0; y.len()], vec![1.0; y.len()]);
        let mut kl = f64::NAN;
        for it in 0..500 {
            let (exag, momentum, _) = params.schedule(it);
            match iteration(&p, &mut y, &mut update, &mut gains, d, exag, momentum, lr) {
                Some(out) => kl = out.1,
                None => return,
            }
        }
        let gpu = Array2::from_shape_vec((n, d), y).unwrap();
        let t_cpu = crate::analysis::metrics::trustworthiness(&x, cpu.embedding(), 10).unwrap();
        let t_gpu = crate::analysis::metrics::trustworthiness(&x, &gpu, 10).unwrap();
        assert!(
            (t_cpu - t_gpu).abs() <= 0.01,
            "trustworthiness {t_gpu} vs {t_cpu}"
        );
        // the KL of the last iteration's positions (before its step), as the CPU's last report
        let kl_cpu = cpu.kl_divergence();
        assert!(
            (kl - kl_cpu).abs() <= 0.02 * kl_cpu,
            "KL {kl} vs the CPU's {kl_cpu}"
        );
    }
}
