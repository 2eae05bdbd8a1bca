//! Nearest neighbours and pairwise distances: exact ones, fast enough for tens of thousands of
//! points, and approximate ones by NN-descent ([`NnDescent`]) for more.
//!
//! Distances come from one matrix product per block of rows (`|a|^2 + |b|^2 - 2 a.b`, the trick
//! that makes brute force competitive with trees in 50+ dimensions; for [`knn`] in single
//! precision, on a CUDA GPU with [`knn_on`]) and every candidate near a decision boundary is then
//! recomputed directly, with a rounding bound proving that nothing was missed, so the neighbour
//! sets are the exact ones scikit-learn's tree searches return, not approximations. Ties are
//! broken by the lower index, so results never depend on thread count or device.
//!
//! The exact search's cost grows with the square of the sample count (100 s for 70,000 x 784 on
//! two cores); [`NnDescent`] finds ~99 % of the same neighbours of image data in a few seconds
//! there, seeded and independent of the thread count. UMAP picks between them as umap-learn does
//! ([`NeighborSearch`]).
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

mod descent;

pub use descent::{NnDescent, NnDescentStats};

use super::linalg;
use crate::kernels::simd;
use crate::{Error, Result};
use ndarray::{s, Array2, ArrayView1};
use rayon::prelude::*;

const BLOCK: usize = 256;

fn sq_norms(x: &ndarray::ArrayRef2<f64>) -> Vec<f64> {
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

/// The `k` nearest neighbours of every row (itself excluded), sorted by distance.
#[derive(Debug, Clone)]
pub struct Knn {
    /// `n x k` neighbour indices.
    pub indices: Array2<usize>,
    /// `n x k` euclidean distances, non-decreasing along each row.
    pub distances: Array2<f64>,
}

/// Which nearest-neighbour search an embedding uses (UMAP's [`Umap::neighbor_search`](
/// crate::analysis::embed::Umap::neighbor_search)).
///
/// ```
/// use neuroscope::analysis::neighbors::NeighborSearch;
/// assert_eq!(NeighborSearch::parse("nndescent")?, NeighborSearch::NnDescent);
/// let cpu = neuroscope::device::parse("cpu")?;
/// assert_eq!(NeighborSearch::Auto.resolve(1_000, &cpu, 4_096), NeighborSearch::Exact);
/// assert_eq!(NeighborSearch::Auto.resolve(70_000, &cpu, 4_096), NeighborSearch::NnDescent);
/// assert!(NeighborSearch::parse("annoy").is_err());
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NeighborSearch {
    /// The exact search below a size the method picks (UMAP: 4,096 samples, umap-learn's
    /// rule; t-SNE: 30,000), NN-descent from there; always exact on a CUDA device, whose
    /// brute-force products are fast at any size this crate meets.
    #[default]
    Auto,
    /// [`knn_on`]: the exact neighbours, on the embedding's device.
    Exact,
    /// [`NnDescent`] with the method's settings and the embedding's seed, on the CPU: ~99 % of
    /// the true neighbours of image data, in a fraction of the exact search's time at 10,000
    /// samples and more.
    NnDescent,
}

impl NeighborSearch {
    /// Reads `auto`, `exact` or `nndescent` (also `nn-descent`).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(NeighborSearch::Auto),
            "exact" => Ok(NeighborSearch::Exact),
            "nndescent" | "nn-descent" | "nn_descent" => Ok(NeighborSearch::NnDescent),
            _ => Err(Error::UnknownName {
                kind: "neighbour search".into(),
                name: s.into(),
                valid: "auto, exact, nndescent".into(),
            }),
        }
    }

    /// The search `Auto` stands for with `n` samples on `device` when the method switches to
    /// NN-descent at `nn_descent_from` samples (the others stand for themselves).
    pub fn resolve(self, n: usize, device: &candle_core::Device, nn_descent_from: usize) -> Self {
        match self {
            NeighborSearch::Auto if n < nn_descent_from || !device.is_cpu() => {
                NeighborSearch::Exact
            }
            NeighborSearch::Auto => NeighborSearch::NnDescent,
            s => s,
        }
    }
}

from_str_by_parse!(NeighborSearch);

/// Extra candidates per row beyond `k` in the float search, so that the exactness check rarely
/// fails.
pub(crate) const KNN_MARGIN: usize = 32;

/// Exact `k` nearest neighbours (euclidean) of every row of `x` among the other rows.
///
/// Candidates come from single-precision products (half the time of double precision, where
/// the products are most of the work: 10,000 x 784 or more), `k + 32` per row; their distances are
/// then recomputed in double precision and a rounding bound proves that no other point is
/// nearer (searching a row again directly where the float rounding leaves doubt). Ties are
/// broken by the lower index.
pub fn knn(x: &Array2<f64>, k: usize) -> Result<Knn> {
    let n = x.nrows();
    if k == 0 || k >= n {
        return Err(Error::InvalidArgument(format!(
            "k-nearest neighbours needs 1 <= k < n_samples; got k = {k} with {n} samples"
        )));
    }
    let kk = (k + KNN_MARGIN).min(n - 1);
    let xf = x.mapv(|v| v as f32);
    let norms: Vec<f32> = sq_norms(x).into_iter().map(|v| v as f32).collect();
    let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
    let parts: Vec<(Vec<i32>, Vec<f32>)> = starts
        .par_iter()
        .map(|&start| {
            let end = (start + BLOCK).min(n);
            let m = linalg::matmul_nt_seq_f32(&xf.slice(s![start..end, ..]).to_owned(), &xf);
            let mut cand = Vec::with_capacity((end - start) * kk);
            let mut approx = Vec::with_capacity((end - start) * kk);
            let mut row_d: Vec<(f32, u32)> = Vec::with_capacity(n);
            for (bi, row) in m.rows().into_iter().enumerate() {
                let i = start + bi;
                let nq = norms[i];
                row_d.clear();
                // the same float expression as the GPU's selection kernel
                row_d.extend(
                    row.iter()
                        .zip(&norms)
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .map(|(j, (&p, &nj))| ((nj + nq) - 2.0 * p, j as u32)),
                );
                let cmp = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
                if kk < row_d.len() {
                    row_d.select_nth_unstable_by(kk - 1, cmp);
                    row_d.truncate(kk);
                }
                row_d.sort_unstable_by(cmp);
                cand.extend(row_d.iter().map(|&(_, j)| j as i32));
                approx.extend(row_d.iter().map(|&(d, _)| d));
            }
            (cand, approx)
        })
        .collect();
    let (mut cand, mut approx) = (Vec::with_capacity(n * kk), Vec::with_capacity(n * kk));
    for (c, a) in parts {
        cand.extend(c);
        approx.extend(a);
    }
    Ok(knn_from_candidates(
        x,
        k,
        kk,
        &cand,
        &approx,
        float_distance_slack(x.ncols(), false),
    )?
    .0)
}

/// Exact `k` nearest neighbours on `device`: [`knn`] on the CPU; on a CUDA GPU (`cuda`
/// feature) the distance products run in float on the GPU and a selection kernel keeps `k + 32`
/// candidates per row, whose distances the CPU recomputes in double precision before proving
/// that no other point is nearer (a row where the proof fails is searched again on the CPU).
/// Either way the result is the same, bit for bit: what changes is the time (the products are
/// `N^2 x F` multiply-adds, most of a t-SNE or UMAP of large data on the CPU). Metal is not
/// supported (an error).
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::neighbors::{knn, knn_on};
/// let x = array![[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.5, 0.0]];
/// let dev = neuroscope::device::parse("cpu")?; // "cuda" in a `cuda` build with a GPU
/// assert_eq!(knn_on(&x, 1, &dev)?.indices, knn(&x, 1)?.indices);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn knn_on(x: &Array2<f64>, k: usize, device: &candle_core::Device) -> Result<Knn> {
    match device {
        candle_core::Device::Cpu => knn(x, k),
        #[cfg(feature = "cuda")]
        candle_core::Device::Cuda(dev) => Ok(knn_cuda(dev, x, k)?.0),
        #[cfg(not(feature = "cuda"))]
        candle_core::Device::Cuda(_) => Err(Error::InvalidArgument(
            "nearest neighbours on a CUDA device need neuroscope built with the `cuda` feature"
                .into(),
        )),
        candle_core::Device::Metal(_) => Err(Error::InvalidArgument(
            "nearest neighbours run on the CPU or a CUDA GPU, not on Metal: use Device::Cpu".into(),
        )),
    }
}

/// Bound on the rounding of a float squared distance `|a|^2 + |b|^2 - 2 a.b` (the GPU's: float
/// inputs, a float product over `dim` terms, float norms) against the exact one, as a factor of
/// `|a|^2 + |b|^2`. The product's error is at most `(2 u_in + dim u) sum |a_i b_i|` and
/// `sum |a_i b_i| <= (|a|^2 + |b|^2) / 2`; the norms and the two additions add a few `u`; 1.5
/// is a safety factor. `tf32`: the product rounds its inputs to TF32's 10 bits (`u_in = 2^-11`).
pub(crate) fn float_distance_slack(dim: usize, tf32: bool) -> f64 {
    let u = f64::powi(2.0, -24);
    let u_in = if tf32 { f64::powi(2.0, -11) } else { u };
    1.5 * (2.0 * u_in + (dim as f64 + 8.0) * u)
}

/// Exact `k` nearest neighbours of every row (itself excluded), the same result as [`knn`] by
/// the same route with the heavy half on the GPU (`kernels::cuda::knn_candidates`: float
/// products in cuBLAS, the selection of `k + 32` candidates per row in a kernel); the CPU then
/// proves the result and recomputes the distances ([`knn_from_candidates`]). Returns the
/// neighbours and the number of rows searched again directly.
#[cfg(feature = "cuda")]
fn knn_cuda(
    dev: &candle_core::cuda_backend::CudaDevice,
    x: &Array2<f64>,
    k: usize,
) -> Result<(Knn, usize)> {
    let (n, dim) = x.dim();
    if k == 0 || k >= n {
        return Err(Error::InvalidArgument(format!(
            "k-nearest neighbours needs 1 <= k < n_samples; got k = {k} with {n} samples"
        )));
    }
    let kk = (k + KNN_MARGIN).min(n - 1);
    let (cand, approx) = crate::kernels::cuda::knn_candidates(dev, x, kk)?;
    let slack = float_distance_slack(dim, crate::kernels::cuda::tf32_products());
    knn_from_candidates(x, k, kk, &cand, &approx, slack)
}

/// Finishes a nearest-neighbour search whose candidates came from a faster, rounded distance
/// (float products, on the CPU in [`knn`] or on the GPU in `analysis::cuda`): proves that no
/// other point can be among the `k` nearest, recomputes in double precision the distances of
/// the candidates that can, and keeps the `k` nearest (ties by the lower index). Row `i`'s `kk`
/// candidates are `cand[i * kk..]`, their rounded squared distances `approx[i * kk..]`
/// ascending, each within `slack * (|x_i|^2 + max |x_j|^2)` of the exact one, and every other
/// point's rounded distance is at least the last candidate's. A row whose proof fails (ties or
/// rounding at the boundary) is searched again directly; the second value counts those rows.
pub(crate) fn knn_from_candidates(
    x: &Array2<f64>,
    k: usize,
    kk: usize,
    cand: &[i32],
    approx: &[f32],
    slack: f64,
) -> Result<(Knn, usize)> {
    let n = x.nrows();
    if k == 0 || k > kk || kk >= n || cand.len() != n * kk || approx.len() != n * kk {
        return Err(Error::InvalidArgument(format!(
            "internal: nearest-neighbour candidates: k {k}, kk {kk}, n {n}, {} candidates",
            cand.len()
        )));
    }
    let norms = sq_norms(x);
    let nmax = norms.iter().copied().fold(0.0, f64::max);
    let cmp = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let rows: Vec<(Vec<(f64, usize)>, bool)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (ci, ai) = (&cand[i * kk..(i + 1) * kk], &approx[i * kk..(i + 1) * kk]);
            let s = slack * (norms[i] + nmax);
            let exact = |j: usize| (j < n && j != i).then(|| sq_dist(x.row(i), x.row(j)));
            if let Some(c) = proven_nearest(ci, ai, k, kk == n - 1, s, exact) {
                return (c, false);
            }
            let mut c: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (sq_dist(x.row(i), x.row(j)), j))
                .collect();
            c.select_nth_unstable_by(k - 1, cmp);
            c.truncate(k);
            c.sort_by(cmp);
            (c, true)
        })
        .collect();
    let mut indices = Array2::zeros((n, k));
    let mut distances = Array2::zeros((n, k));
    let mut again = 0;
    for (i, (row, redo)) in rows.into_iter().enumerate() {
        again += usize::from(redo);
        for (c, (d2, j)) in row.into_iter().enumerate() {
            indices[[i, c]] = j;
            distances[[i, c]] = d2.sqrt();
        }
    }
    Ok((Knn { indices, distances }, again))
}

/// One row of the proof behind [`knn_from_candidates`] and [`nearest_in`]: `cand` are `kk`
/// candidates with rounded squared distances `approx` (ascending, each within `s` of the exact
/// one; every point outside the candidates rounded to at least the last); `all`: the
/// candidates are every point. The k first candidates are exactly <= kth + s; a point outside
/// them is exactly >= last - s, so none can be among the k nearest if last - s > kth + s.
/// Among the candidates only those rounded to <= kth + 2 s can be, so only their distances are
/// computed (`exact`, None for a point to leave out). Returns the `k` nearest `(squared
/// distance, index)` sorted, ties by index, or None when the rounding leaves doubt.
fn proven_nearest(
    cand: &[i32],
    approx: &[f32],
    k: usize,
    all: bool,
    s: f64,
    exact: impl Fn(usize) -> Option<f64>,
) -> Option<Vec<(f64, usize)>> {
    let kk = cand.len();
    let (kth, last) = (approx[k - 1] as f64, approx[kk - 1] as f64);
    if !(kth.is_finite() && (all || (last.is_finite() && last - s > kth + s))) {
        return None;
    }
    let lim = kth + 2.0 * s;
    let mut c: Vec<(f64, usize)> = cand
        .iter()
        .zip(approx)
        .filter(|&(_, &a)| a as f64 <= lim)
        .filter_map(|(&j, _)| exact(j as usize).map(|d| (d, j as usize)))
        .collect();
    c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    c.dedup_by_key(|e| e.1);
    (c.len() >= k).then(|| {
        c.truncate(k);
        c
    })
}

/// The `k` nearest rows of `reference` to each row of `queries`, exact, as
/// `(squared distance, reference row)` sorted by distance, ties by row: what placing new samples
/// into a fitted t-SNE or UMAP starts from. As [`knn`]: `k + 32` candidates per query from
/// single-precision products, then their distances in double precision and a rounding bound
/// that proves no other reference row is nearer (a query where it cannot is searched directly),
/// so the result is that of a direct search, bit for bit, in a fraction of its time.
pub(crate) fn nearest_in(
    reference: &Array2<f64>,
    queries: &Array2<f64>,
    k: usize,
) -> Vec<Vec<(f64, usize)>> {
    let n_ref = reference.nrows();
    let k = k.min(n_ref);
    if k == 0 {
        return vec![Vec::new(); queries.nrows()];
    }
    let kk = (k + KNN_MARGIN).min(n_ref);
    let rf = reference.mapv(|v| v as f32);
    let ref_norms = sq_norms(reference);
    let rn: Vec<f32> = ref_norms.iter().map(|&v| v as f32).collect();
    let nmax = ref_norms.iter().copied().fold(0.0, f64::max);
    let slack = float_distance_slack(reference.ncols(), false);
    let cmp = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let fcmp = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let m = queries.nrows();
    let starts: Vec<usize> = (0..m).step_by(BLOCK).collect();
    starts
        .par_iter()
        .flat_map_iter(|&start| {
            let end = (start + BLOCK).min(m);
            let qb = queries.slice(s![start..end, ..]).mapv(|v| v as f32);
            let prod = linalg::matmul_nt_seq_f32(&qb, &rf);
            let mut row_d: Vec<(f32, u32)> = Vec::with_capacity(n_ref);
            (start..end)
                .map(|i| {
                    let q = queries.row(i);
                    let qn = q.dot(&q);
                    let nq = qn as f32;
                    // the same float expression as `knn`
                    row_d.clear();
                    row_d.extend(
                        prod.row(i - start)
                            .iter()
                            .zip(&rn)
                            .enumerate()
                            .map(|(j, (&p, &nj))| ((nj + nq) - 2.0 * p, j as u32)),
                    );
                    if kk < n_ref {
                        row_d.select_nth_unstable_by(kk - 1, fcmp);
                        row_d.truncate(kk);
                    }
                    row_d.sort_unstable_by(fcmp);
                    let cand: Vec<i32> = row_d.iter().map(|&(_, j)| j as i32).collect();
                    let approx: Vec<f32> = row_d.iter().map(|&(d, _)| d).collect();
                    let exact = |j: usize| Some(sq_dist(q, reference.row(j)));
                    let s = slack * (qn + nmax);
                    proven_nearest(&cand, &approx, k, kk == n_ref, s, exact).unwrap_or_else(|| {
                        let mut d: Vec<(f64, usize)> = (0..n_ref)
                            .map(|j| (sq_dist(q, reference.row(j)), j))
                            .collect();
                        if k < n_ref {
                            d.select_nth_unstable_by(k - 1, cmp);
                        }
                        d.truncate(k);
                        d.sort_by(cmp);
                        d
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// All rows within euclidean distance `eps` of each row (itself included, as scikit-learn's
/// `radius_neighbors`), in increasing index order: exactly the pairs whose double-precision
/// distance is at most `eps`, found from single-precision products (each pair once; those within
/// the products' rounding of `eps` are recomputed). Memory: the lists, plus one block of
/// 256 rows' products with the later rows per thread.
///
/// ```
/// use ndarray::array;
/// let x = array![[0.0], [0.5], [3.0]];
/// let nb = neuroscope::analysis::neighbors::radius_neighbors(&x, 0.6);
/// assert_eq!(nb, vec![vec![0, 1], vec![0, 1], vec![2]]);
/// ```
pub fn radius_neighbors(x: &Array2<f64>, eps: f64) -> Vec<Vec<usize>> {
    let n = x.nrows();
    let eps2 = eps * eps;
    let x = x.as_standard_layout();
    let norms = sq_norms(&x);
    // Each pair once: a block of rows against itself and every later row (the lower triangle is
    // the mirror image), the distance from a single-precision product and the exact norms and,
    // inside the product's rounding band (`float_distance_slack`), recomputed exactly: the
    // pairs are the exact search's. Half the products of the full matrix, one pass over each.
    let xf = x.mapv(|v| v as f32);
    let slack = (float_distance_slack(x.ncols(), false), 1e-300);
    let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
    let upper: Vec<Vec<Vec<usize>>> = starts
        .par_iter()
        .map(|&start| {
            let end = (start + BLOCK).min(n);
            let d = linalg::matmul_nt_rows_seq_f32(
                xf.slice(s![start..end, ..]),
                xf.slice(s![start.., ..]),
            );
            let later = &norms[start..];
            let words = later.len().div_ceil(32);
            let (mut inside, mut band) = (vec![0u32; words], vec![0u32; words]);
            d.chunks_exact(later.len())
                .enumerate()
                .map(|(bi, dots)| {
                    let i = start + bi;
                    let mut found = Vec::new();
                    simd::radius_masks(dots, later, norms[i], eps2, slack, &mut inside, &mut band);
                    for (w, (&a, &b)) in inside.iter().zip(&band).enumerate() {
                        // in ascending order: the certain pairs and the band's exact ones merged
                        let mut m = a | b;
                        while m != 0 {
                            let l = m.trailing_zeros();
                            let j = start + 32 * w + l as usize;
                            if a >> l & 1 == 1 || sq_dist(x.row(i), x.row(j)) <= eps2 {
                                found.push(j);
                            }
                            m &= m - 1;
                        }
                    }
                    found
                })
                .collect()
        })
        .collect();
    // Each row's list in ascending order: the earlier rows that found it (in their order), then
    // its own from its block's first row on.
    let mut neigh: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (&start, block) in starts.iter().zip(upper) {
        let end = start + block.len();
        for (bi, own) in block.into_iter().enumerate() {
            let i = start + bi;
            for &j in own.iter().filter(|&&j| j >= end) {
                neigh[j].push(i);
            }
            neigh[i].extend(own);
        }
    }
    neigh
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

/// The GPU's nearest neighbours (`knn_cuda`): its selection kernel run on the CPU
/// (`kernels::cuda::emulation`) over float products, then [`knn_from_candidates`].
#[cfg(test)]
mod tests {
    use super::*;

    /// k-means' interleaved distances (`simd::sq_dists`) are `sq_dist_slice`'s, bit for bit.
    #[test]
    fn interleaved_distances_are_sq_dist_slice_bits() {
        let mut r = crate::rng::Rng::new(4);
        // target counts around the kernel's groups of four (k-means' 10 centres, k-means++'s
        // 4 candidates), lengths with and without a tail
        for (p, n, k) in [
            (1, 6, 7),
            (2, 6, 7),
            (5, 19, 10),
            (50, 6, 7),
            (50, 17, 4),
            (7, 8, 1),
        ] {
            let rows: Vec<f64> = (0..n * p).map(|_| r.normal() * 2.0).collect();
            let tg: Vec<Vec<f64>> = (0..k)
                .map(|_| (0..p).map(|_| r.normal()).collect())
                .collect();
            let targets: Vec<&[f64]> = tg.iter().map(|t| t.as_slice()).collect();
            let mut d = vec![0.0; n * k];
            simd::sq_dists(&rows, p, &targets, &mut d);
            for (i, row) in rows.chunks_exact(p).enumerate() {
                for (t, tgt) in targets.iter().enumerate() {
                    assert_eq!(d[i * k + t].to_bits(), sq_dist_slice(row, tgt).to_bits());
                }
            }
        }
    }

    /// The symmetric radius search finds exactly the pairs within `eps` by the exact distance,
    /// each row's list ascending, across block boundaries.
    #[test]
    fn radius_neighbors_are_the_exact_pairs() {
        let mut r = crate::rng::Rng::new(9);
        let n = 2 * BLOCK + 37;
        let x = Array2::from_shape_fn((n, 3), |_| r.normal());
        let eps = 0.6;
        let got = radius_neighbors(&x, eps);
        for i in 0..n {
            let want: Vec<usize> = (0..n)
                .filter(|&j| sq_dist(x.row(i), x.row(j)) <= eps * eps)
                .collect();
            assert_eq!(got[i], want, "row {i}");
        }
        // a grid: every neighbour at exactly `eps` (the products' rounding band decides)
        let g = Array2::from_shape_fn((600, 2), |(i, c)| {
            if c == 0 {
                (i % 25) as f64 + 100.0
            } else {
                (i / 25) as f64 - 7.0
            }
        });
        let got = radius_neighbors(&g, 1.0);
        for i in 0..g.nrows() {
            let want: Vec<usize> = (0..g.nrows())
                .filter(|&j| sq_dist(g.row(i), g.row(j)) <= 1.0)
                .collect();
            assert_eq!(got[i], want, "grid row {i}");
            assert!(
                want.len() >= 3,
                "a grid point has itself and at least two neighbours"
            );
        }
    }

    /// The direct search `nearest_in` must reproduce: every distance in double precision,
    /// sorted, ties by row.
    fn direct(reference: &Array2<f64>, queries: &Array2<f64>, k: usize) -> Vec<Vec<(f64, usize)>> {
        queries
            .rows()
            .into_iter()
            .map(|q| {
                let mut d: Vec<(f64, usize)> = reference
                    .rows()
                    .into_iter()
                    .enumerate()
                    .map(|(j, r)| (sq_dist(q, r), j))
                    .collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                d.truncate(k);
                d
            })
            .collect()
    }

    #[test]
    fn nearest_in_is_the_direct_search_bit_for_bit() {
        let mut r = crate::rng::Rng::new(21);
        let cont_ref = Array2::from_shape_fn((700, 40), |_| r.normal());
        let cont_q = Array2::from_shape_fn((300, 40), |_| r.normal());
        // small integers: exact ties everywhere, and queries that are copies of reference rows
        let int_ref = Array2::from_shape_fn((500, 6), |_| (r.uniform() * 3.0).floor());
        let mut int_q = Array2::from_shape_fn((260, 6), |_| (r.uniform() * 3.0).floor());
        for i in 0..20 {
            int_q.row_mut(i).assign(&int_ref.row(7 * i));
        }
        for (reference, queries, k) in [
            (&cont_ref, &cont_q, 15),
            (&cont_ref, &cont_q, 25),
            (&int_ref, &int_q, 10),
            (&int_ref, &int_q, 490), // every candidate: kk = all reference rows
            (&int_ref, &int_q, 600), // more than there are: all of them
        ] {
            let fast = nearest_in(reference, queries, k);
            assert_eq!(fast, direct(reference, queries, k), "k = {k}");
        }
        assert!(nearest_in(&cont_ref, &cont_q, 0).iter().all(Vec::is_empty));
    }
}

#[cfg(test)]
mod gpu_kernel_tests {
    use super::*;
    use crate::kernels::cuda::emulation::{run, Args};

    /// What the GPU path computes before the CPU's check: candidates from float products, in
    /// blocks of `b` queries (as cuBLAS would give them, up to its summation order).
    /// The k nearest by definition: every distance in double precision, sorted, ties by index.
    fn brute(x: &Array2<f64>, k: usize) -> Array2<usize> {
        let n = x.nrows();
        let mut out = Array2::zeros((n, k));
        for i in 0..n {
            let mut d: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (sq_dist(x.row(i), x.row(j)), j))
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for c in 0..k {
                out[[i, c]] = d[c].1;
            }
        }
        out
    }

    fn gpu_candidates(x: &Array2<f64>, kk: usize, b: usize) -> Option<(Vec<i32>, Vec<f32>)> {
        let n = x.nrows();
        let xf = x.mapv(|v| v as f32);
        let norms: Vec<f32> = x.rows().into_iter().map(|r| r.dot(&r) as f32).collect();
        let (mut cand, mut approx) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(b) {
            let bb = b.min(n - start);
            let m = xf.dot(&xf.slice(s![start..start + bb, ..]).t());
            let args = Args::default()
                .f32s(m.as_slice()?)
                .f32s(&norms)
                .i32(n as i32)
                .i32(bb as i32)
                .i32(start as i32)
                .i32(kk as i32);
            let mut o = run("knn_select", args)?;
            approx.extend(o.f32s());
            cand.extend(o.i32s());
        }
        Some((cand, approx))
    }

    #[test]
    fn gpu_candidates_give_the_exact_neighbours() {
        let mut r = crate::rng::Rng::new(11);
        // continuous data, then small integers (many exact ties, duplicate rows)
        let cont = Array2::from_shape_fn((700, 40), |_| r.normal());
        let ints = Array2::from_shape_fn((500, 6), |_| (r.uniform() * 3.0).floor());
        for (x, k) in [(cont, 15), (ints, 10)] {
            let (n, dim) = x.dim();
            let kk = k + 32;
            let Some((cand, approx)) = gpu_candidates(&x, kk, 300) else {
                return;
            };
            // candidates come sorted, without the query, each row's within its block
            for i in 0..n {
                let row = &approx[i * kk..(i + 1) * kk];
                assert!(row.windows(2).all(|w| w[0] <= w[1]));
                assert!(!cand[i * kk..(i + 1) * kk].contains(&(i as i32)));
            }
            let cpu = knn(&x, k).unwrap();
            assert_eq!(cpu.indices, brute(&x, k));
            let (gpu, again) =
                knn_from_candidates(&x, k, kk, &cand, &approx, float_distance_slack(dim, false))
                    .unwrap();
            assert_eq!(gpu.indices, cpu.indices);
            assert_eq!(gpu.distances, cpu.distances);
            // with no float error the check passes for continuous data; ties at the k-th place
            // force a search again
            eprintln!("{n} x {dim}: {again} rows searched again");
            // a slack too large to prove anything: every row searched again, same answer
            let (all, again) = knn_from_candidates(&x, k, kk, &cand, &approx, 1e6).unwrap();
            assert_eq!(again, n);
            assert_eq!(all.indices, cpu.indices);
        }
    }

    #[test]
    fn gpu_candidates_of_every_other_point_need_no_check() {
        let mut r = crate::rng::Rng::new(12);
        let x = Array2::from_shape_fn((30, 3), |_| r.normal());
        let Some((cand, approx)) = gpu_candidates(&x, 29, 7) else {
            return;
        };
        let (gpu, again) = knn_from_candidates(&x, 5, 29, &cand, &approx, 1e6).unwrap();
        assert_eq!(again, 0);
        assert_eq!(gpu.indices, knn(&x, 5).unwrap().indices);
    }
}
