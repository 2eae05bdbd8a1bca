//! Approximate nearest neighbours by NN-descent (Dong, Charikar and Li, 2011), as pynndescent
//! runs it for umap-learn: a forest of random-projection trees proposes first neighbours, then
//! "a neighbour of a neighbour is likely a neighbour" is iterated until few lists change.
//!
//! Why it exists next to the exact [`knn`](super::knn): the exact search costs `N^2 x F`
//! multiply-adds, which is fine at 10,000 samples (2 s for 784 columns) but grows with the
//! square of N; NN-descent costs about `N x (candidates)^2 x F` per iteration and finds ~99 % of
//! the true neighbours of image data in a handful of iterations.
//!
//! Unlike pynndescent, the result does not depend on the number of threads: every random
//! choice (tree splits, candidate sampling, the filling of short lists) is a hash of the seed
//! and of the points involved, the candidate pairs of a block of points are evaluated in
//! parallel against a snapshot of the graph, and each list then merges its proposals as a set
//! (the `k` nearest of old and proposed, ties by the lower index), so the order in which
//! threads finish never matters.

use super::{sq_dist, Knn};
use crate::kernels::simd::{lane_sum, Avx2, LANES};
use crate::rng::mix64;
use crate::{Error, Result};
use ndarray::Array2;
use rayon::prelude::*;

/// An empty slot of a neighbour list.
const EMPTY: u32 = u32::MAX;
/// Points whose local joins are evaluated against one snapshot of the graph before their
/// proposals are merged (pynndescent's block size).
const BLOCK: usize = 16_384;
/// A split margin this close to zero sends the point to a random side (pynndescent's EPS).
const EPS: f32 = 1e-8;

/// NN-descent parameters: pynndescent's, as umap-learn sets them, by default.
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::neighbors::{knn, NnDescent};
/// let mut r = neuroscope::rng::Rng::new(0);
/// let x = Array2::from_shape_fn((2_000, 10), |_| r.normal());
/// let approx = NnDescent::new().seed(1).knn(&x, 10)?;
/// let exact = knn(&x, 10)?;
/// // the share of true neighbours found (recall)
/// let found: usize = (0..2_000)
///     .map(|i| approx.indices.row(i).iter().filter(|j| exact.indices.row(i).iter().any(|e| e == *j)).count())
///     .sum();
/// assert!(found as f64 / 20_000.0 > 0.95);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NnDescent {
    n_trees: Option<usize>,
    leaf_size: Option<usize>,
    n_iters: Option<usize>,
    max_candidates: usize,
    delta: f64,
    seed: u64,
    progress: bool,
}

impl Default for NnDescent {
    fn default() -> Self {
        Self::new()
    }
}

/// What a run of NN-descent did, for reports and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct NnDescentStats {
    /// Trees in the initial forest.
    pub n_trees: usize,
    /// NN-descent iterations run (after the forest).
    pub iterations: usize,
    /// List entries changed in each iteration (the run stops when this falls to
    /// `delta x k x N`).
    pub changes: Vec<usize>,
    /// Distances evaluated, forest included (an exact search evaluates `N (N - 1) / 2`).
    pub distance_evaluations: u64,
    /// Whether a stop request ([`crate::progress::request_stop`]) ended the iterations early;
    /// the lists are then the best found so far.
    pub interrupted: bool,
}

impl NnDescent {
    /// umap-learn's settings: `min(64, 5 + round(sqrt(N) / 20))` trees, leaves of
    /// `max(60, min(256, 5 (k + 1)))` points, `max(5, round(log2 N))` iterations at most, 60
    /// candidates, stop when fewer than `0.001 k N` list entries change; seed 0.
    pub fn new() -> Self {
        NnDescent {
            n_trees: None,
            leaf_size: None,
            n_iters: None,
            max_candidates: 60,
            delta: 0.001,
            seed: 0,
            progress: false,
        }
    }
    /// Trees in the random-projection forest that gives the first lists.
    pub fn n_trees(mut self, t: usize) -> Self {
        self.n_trees = Some(t);
        self
    }
    /// Largest leaf of those trees (every pair in a leaf is compared).
    pub fn leaf_size(mut self, s: usize) -> Self {
        self.leaf_size = Some(s);
        self
    }
    /// Most NN-descent iterations.
    pub fn n_iters(mut self, n: usize) -> Self {
        self.n_iters = Some(n);
        self
    }
    /// Candidates per point and iteration (new and old ones each); more finds more neighbours
    /// and costs quadratically more.
    pub fn max_candidates(mut self, c: usize) -> Self {
        self.max_candidates = c;
        self
    }
    /// Stop when fewer than `delta x k x N` list entries changed in an iteration.
    pub fn delta(mut self, d: f64) -> Self {
        self.delta = d;
        self
    }
    /// Seed of every random choice.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Show a progress line per iteration.
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// Approximate `k` nearest neighbours (euclidean) of every row of `x` among the other
    /// rows, in the form of the exact [`knn`](super::knn): indices sorted by distance (ties by
    /// the lower index), distances recomputed in double precision. The same seed gives the
    /// same lists at any thread count.
    ///
    /// ```
    /// use ndarray::array;
    /// use neuroscope::analysis::neighbors::NnDescent;
    /// let x = array![[0.0], [1.0], [5.0], [5.5], [9.0]];
    /// let nn = NnDescent::new().knn(&x, 1)?; // tiny data: every pair is compared
    /// assert_eq!(nn.indices.column(0).to_vec(), vec![1, 0, 3, 2, 3]);
    /// assert!(NnDescent::new().knn(&x, 5).is_err()); // k must be < N
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn knn(&self, x: &Array2<f64>, k: usize) -> Result<Knn> {
        Ok(self.knn_with_stats(x, k)?.0)
    }

    /// [`knn`](Self::knn) with a report of the work done.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use neuroscope::analysis::neighbors::NnDescent;
    /// let mut r = neuroscope::rng::Rng::new(0);
    /// let x = Array2::from_shape_fn((3_000, 8), |_| r.normal());
    /// let (_, stats) = NnDescent::new().knn_with_stats(&x, 10)?;
    /// assert!(stats.distance_evaluations < 3_000 * 2_999 / 2); // fewer than an exact search
    /// assert!(!stats.interrupted);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn knn_with_stats(&self, x: &Array2<f64>, k: usize) -> Result<(Knn, NnDescentStats)> {
        self.run(x, k, true)
    }

    /// The search; `consume_stop` says whether a stop request is taken here (standalone use)
    /// or left for the caller's next loop to honour too (UMAP's epochs).
    pub(crate) fn run(
        &self,
        x: &Array2<f64>,
        k: usize,
        consume_stop: bool,
    ) -> Result<(Knn, NnDescentStats)> {
        let n = x.nrows();
        if k == 0 || k >= n {
            return Err(Error::InvalidArgument(format!(
                "k-nearest neighbours needs 1 <= k < n_samples; got k = {k} with {n} samples"
            )));
        }
        if n >= EMPTY as usize {
            return Err(Error::InvalidArgument(format!(
                "NN-descent indexes samples with 32 bits; got {n} samples"
            )));
        }
        if let Some(bad) = x.iter().find(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "NN-descent input holds a non-finite value ({bad}); remove or impute it first"
            )));
        }
        if self.max_candidates == 0 || !(self.delta >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "NN-descent needs max_candidates >= 1 and delta >= 0; got {} and {}",
                self.max_candidates, self.delta
            )));
        }
        let data = Data::new(x);
        let n_trees = self
            .n_trees
            .unwrap_or_else(|| (5 + ((n as f64).sqrt() / 20.0).round() as usize).min(64));
        let leaf_size = self
            .leaf_size
            .unwrap_or_else(|| (5 * (k + 1)).clamp(60, 256))
            .max(2);
        let n_iters = self
            .n_iters
            .unwrap_or_else(|| ((n as f64).log2().round() as usize).max(5));
        let mut graph = Graph::new(n, k);
        let mut stats = NnDescentStats {
            n_trees,
            iterations: 0,
            changes: Vec::new(),
            distance_evaluations: 0,
            interrupted: false,
        };

        // 1. The forest: every pair in a leaf is a proposal; tree after tree, so each tree's
        // proposals are filtered by the lists the earlier trees left.
        let forest: Vec<Vec<Vec<u32>>> = (0..n_trees)
            .into_par_iter()
            .map(|t| rp_tree_leaves(&data, leaf_size, mix64(self.seed ^ mix64(t as u64 + 1))))
            .collect();
        for leaves in &forest {
            let thr = graph.thresholds();
            let proposals: Vec<Vec<Proposal>> = leaves
                .par_iter()
                .map(|leaf| {
                    let mut out = Vec::new();
                    for (a, &p) in leaf.iter().enumerate() {
                        for &q in &leaf[a + 1..] {
                            propose(&data, &thr, p, q, &mut out);
                        }
                    }
                    out
                })
                .collect();
            stats.distance_evaluations += leaves
                .iter()
                .map(|l| (l.len() * l.len().saturating_sub(1) / 2) as u64)
                .sum::<u64>();
            graph.apply(&proposals, &thr);
        }
        // Short lists (a point alone in small leaves) are filled with random points.
        stats.distance_evaluations += graph.fill_random(&data, self.seed);

        // 2. NN-descent iterations.
        let mut bar = self
            .progress
            .then(|| crate::progress::Progress::new("NN-descent", n_iters));
        let stop_at = self.delta * (k * n) as f64;
        for it in 0..n_iters {
            let stop = if consume_stop {
                crate::progress::take_stop_request()
            } else {
                crate::progress::stop_requested()
            };
            if stop {
                stats.interrupted = true;
                break;
            }
            let cands = graph.candidates(self.max_candidates, mix64(self.seed ^ (it as u64 + 1)));
            let mut changes = 0;
            for start in (0..n).step_by(BLOCK) {
                let end = (start + BLOCK).min(n);
                let thr = graph.thresholds();
                let (proposals, evaluated): (Vec<Vec<Proposal>>, Vec<u64>) = (start..end)
                    .into_par_iter()
                    .map(|p| {
                        let (new, old) = cands.of(p);
                        let mut out = Vec::new();
                        let mut evaluated = 0;
                        for (a, &u) in new.iter().enumerate() {
                            for &v in new[a + 1..].iter().chain(old).filter(|&&v| v != u) {
                                propose(&data, &thr, u, v, &mut out);
                                evaluated += 1;
                            }
                        }
                        (out, evaluated)
                    })
                    .unzip();
                stats.distance_evaluations += evaluated.iter().sum::<u64>();
                changes += graph.apply(&proposals, &thr);
            }
            stats.iterations += 1;
            stats.changes.push(changes);
            if let Some(b) = bar.as_mut() {
                b.set_message(format!("{changes} list entries changed"));
                b.inc(1);
            }
            if changes as f64 <= stop_at {
                break;
            }
        }
        if let Some(b) = bar.as_mut() {
            b.finish();
        }
        Ok((graph.into_knn(x), stats))
    }
}

/// The rows in single precision, padded with zeros to a multiple of 32 columns so that the
/// distance loop has no tail.
struct Data {
    x: Vec<f32>,
    dp: usize,
    avx2: Option<Avx2>,
}

impl Data {
    fn new(x: &Array2<f64>) -> Self {
        let dp = x.ncols().div_ceil(LANES).max(1) * LANES;
        let mut xf = vec![0.0f32; x.nrows() * dp];
        for (i, row) in x.rows().into_iter().enumerate() {
            for (o, &v) in xf[i * dp..].iter_mut().zip(row.iter()) {
                *o = v as f32;
            }
        }
        Data {
            x: xf,
            dp,
            avx2: Avx2::detect(),
        }
    }
    #[inline]
    fn row(&self, i: u32) -> &[f32] {
        let i = i as usize;
        &self.x[i * self.dp..(i + 1) * self.dp]
    }
    /// Squared euclidean distance in single precision. 32 running sums added in a fixed
    /// order, no fused multiply-add: the same bits with or without AVX2.
    #[inline]
    fn dist(&self, i: u32, j: u32) -> f32 {
        match self.avx2 {
            Some(avx2) => avx2.lane_sum::<true>(self.row(i), self.row(j)),
            None => lane_sum::<true>(self.row(i), self.row(j)),
        }
    }
    /// `h . x`, same arithmetic rules.
    #[inline]
    fn dot(&self, h: &[f32], x: &[f32]) -> f32 {
        match self.avx2 {
            Some(avx2) => avx2.lane_sum::<false>(h, x),
            None => lane_sum::<false>(h, x),
        }
    }
}

/// The leaves of one random-projection tree: a node splits by the hyperplane halfway between
/// two of its points (pynndescent's euclidean rule), a point on the plane goes to a random
/// side, and a split that leaves one side empty is replaced by a random halving. Every random
/// choice hashes the node's seed, so the tree does not depend on the order of work.
fn rp_tree_leaves(data: &Data, leaf_size: usize, seed: u64) -> Vec<Vec<u32>> {
    let n = data.x.len() / data.dp;
    let mut leaves = Vec::new();
    let mut stack: Vec<(Vec<u32>, u64, usize)> = vec![((0..n as u32).collect(), seed, 0)];
    let (mut h, mut m) = (vec![0.0f32; data.dp], vec![0.0f32; data.dp]);
    while let Some((points, s, depth)) = stack.pop() {
        if points.len() <= leaf_size || depth >= 200 {
            leaves.push(points);
            continue;
        }
        let size = points.len() as u64;
        let a = (mix64(s) % size) as usize;
        let mut b = (mix64(s ^ 0x5851_F42D_4C95_7F2D) % (size - 1)) as usize;
        if b >= a {
            b += 1;
        }
        let (pa, pb) = (data.row(points[a]), data.row(points[b]));
        for d in 0..data.dp {
            h[d] = pa[d] - pb[d];
            m[d] = 0.5 * (pa[d] + pb[d]);
        }
        // the margin h . (x - m), as h . x - h . m
        let offset = data.dot(&h, &m);
        let side = |p: u32| -> bool {
            let g = data.dot(&h, data.row(p)) - offset;
            if g.abs() < EPS {
                mix64(s ^ p as u64) & 1 == 0
            } else {
                g > 0.0
            }
        };
        let (mut left, mut right): (Vec<u32>, Vec<u32>) = points.iter().partition(|&&p| side(p));
        if left.is_empty() || right.is_empty() {
            // all on one side (duplicates): a random halving
            (left, right) = points
                .iter()
                .partition(|&&p| mix64(s ^ 0xA5A5 ^ p as u64) & 1 == 0);
            if left.is_empty() || right.is_empty() {
                let mut all = points;
                right = all.split_off(all.len() / 2);
                left = all;
            }
        }
        stack.push((right, mix64(s.wrapping_mul(2).wrapping_add(1)), depth + 1));
        stack.push((left, mix64(s.wrapping_mul(2)), depth + 1));
    }
    leaves
}

/// A proposed pair and its distance.
type Proposal = (u32, u32, f32);

/// Proposes the pair `(p, q)` when it would enter either list.
#[inline]
fn propose(data: &Data, thr: &[f32], p: u32, q: u32, out: &mut Vec<Proposal>) {
    let d = data.dist(p, q);
    if d <= thr[p as usize].max(thr[q as usize]) {
        out.push((p, q, d));
    }
}

/// One slot of a neighbour list.
#[derive(Clone, Copy)]
struct Entry {
    d: f32,
    j: u32,
    /// Not yet used as a candidate.
    new: bool,
}

/// `(d, j)` before `(d2, j2)`: distance, then the lower index.
#[inline]
fn before(d: f32, j: u32, d2: f32, j2: u32) -> bool {
    d < d2 || (d == d2 && j < j2)
}

/// The current lists, `k` slots per point, sorted by distance (ties by index).
struct Graph {
    n: usize,
    k: usize,
    e: Vec<Entry>,
}

/// Each point's sampled new and old candidates, `max` slots each.
struct Candidates {
    max: usize,
    new: Vec<u32>,
    n_new: Vec<u16>,
    old: Vec<u32>,
    n_old: Vec<u16>,
}

impl Candidates {
    fn of(&self, p: usize) -> (&[u32], &[u32]) {
        let s = p * self.max;
        (
            &self.new[s..s + self.n_new[p] as usize],
            &self.old[s..s + self.n_old[p] as usize],
        )
    }
}

impl Graph {
    fn new(n: usize, k: usize) -> Self {
        let empty = Entry {
            d: f32::INFINITY,
            j: EMPTY,
            new: false,
        };
        Graph {
            n,
            k,
            e: vec![empty; n * k],
        }
    }

    /// Each list's largest distance (infinite while it has empty slots).
    fn thresholds(&self) -> Vec<f32> {
        self.e.chunks(self.k).map(|r| r[self.k - 1].d).collect()
    }

    /// Merges proposals (made against `thr`) into the lists; returns how many list entries
    /// changed. Each list keeps the `k` nearest of its old entries and its proposals, so the
    /// result does not depend on the order of the proposals.
    fn apply(&mut self, proposals: &[Vec<Proposal>], thr: &[f32]) -> usize {
        // bucket by the list they go to, in proposal order (a counting sort)
        let mut start = vec![0usize; self.n + 1];
        for &(p, q, d) in proposals.iter().flatten() {
            if d <= thr[p as usize] {
                start[p as usize + 1] += 1;
            }
            if d <= thr[q as usize] {
                start[q as usize + 1] += 1;
            }
        }
        for i in 0..self.n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut to = vec![(0u32, 0.0f32); start[self.n]];
        for &(p, q, d) in proposals.iter().flatten() {
            if d <= thr[p as usize] {
                to[fill[p as usize]] = (q, d);
                fill[p as usize] += 1;
            }
            if d <= thr[q as usize] {
                to[fill[q as usize]] = (p, d);
                fill[q as usize] += 1;
            }
        }
        self.e
            .par_chunks_mut(self.k)
            .enumerate()
            .map(|(i, row)| merge_row(i as u32, row, &to[start[i]..start[i + 1]]))
            .sum()
    }

    /// Fills lists that still have empty slots with random other points.
    fn fill_random(&mut self, data: &Data, seed: u64) -> u64 {
        let n = self.n as u64;
        let k = self.k;
        self.e
            .par_chunks_mut(k)
            .enumerate()
            .map(|(i, row)| {
                let mut evaluated = 0;
                let mut attempt = 0u64;
                while row[k - 1].j == EMPTY && attempt < 64 * k as u64 {
                    let j = (mix64(seed ^ mix64(0xF111 ^ mix64(i as u64) ^ attempt)) % n) as u32;
                    attempt += 1;
                    if j as usize != i && !row.iter().any(|e| e.j == j) {
                        merge_row(i as u32, row, &[(j, data.dist(i as u32, j))]);
                        evaluated += 1;
                    }
                }
                evaluated
            })
            .sum()
    }

    /// pynndescent's candidate sampling: for every point, its list's entries and the points
    /// whose lists hold it, split into new (not yet joined) and old, each cut to `max` by a
    /// random priority (a hash of the seed and the pair, so the same pair has the same priority
    /// from both ends); the new ones chosen become old in the point's own list.
    fn candidates(&mut self, max: usize, seed: u64) -> Candidates {
        let (n, k) = (self.n, self.k);
        // reverse lists: who holds me, and with which flag
        let mut start = vec![0usize; n + 1];
        for e in &self.e {
            if e.j != EMPTY {
                start[e.j as usize + 1] += 1;
            }
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut rev = vec![(0u32, false); start[n]];
        for (i, row) in self.e.chunks(k).enumerate() {
            for e in row.iter().filter(|e| e.j != EMPTY) {
                rev[fill[e.j as usize]] = (i as u32, e.new);
                fill[e.j as usize] += 1;
            }
        }
        let mut c = Candidates {
            max,
            new: vec![0; n * max],
            n_new: vec![0; n],
            old: vec![0; n * max],
            n_old: vec![0; n],
        };
        let max16 = max.min(u16::MAX as usize);
        self.e
            .par_chunks_mut(k)
            .zip(c.new.par_chunks_mut(max))
            .zip(c.old.par_chunks_mut(max))
            .zip(c.n_new.par_iter_mut().zip(c.n_old.par_iter_mut()))
            .enumerate()
            .for_each(|(i, (((row, new), old), (n_new, n_old)))| {
                let prio = |j: u32| {
                    let (a, b) = if (i as u32) < j {
                        (i as u32, j)
                    } else {
                        (j, i as u32)
                    };
                    mix64(seed ^ mix64(((a as u64) << 32) | b as u64))
                };
                // (priority, point, new?) for every forward and reverse entry
                let mut all: Vec<(u64, u32, bool)> = row
                    .iter()
                    .filter(|e| e.j != EMPTY)
                    .map(|e| (prio(e.j), e.j, e.new))
                    .chain(
                        rev[start[i]..start[i + 1]]
                            .iter()
                            .map(|&(j, f)| (prio(j), j, f)),
                    )
                    .collect();
                // a point met twice (both ends hold each other) is new if either entry is
                all.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)));
                all.dedup_by_key(|t| t.1);
                all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
                let mut nn = 0;
                let mut no = 0;
                for &(_, j, f) in &all {
                    if f && nn < max16 {
                        new[nn] = j;
                        nn += 1;
                    } else if !f && no < max16 {
                        old[no] = j;
                        no += 1;
                    }
                }
                *n_new = nn as u16;
                *n_old = no as u16;
                for e in row.iter_mut() {
                    if e.new && new[..nn].contains(&e.j) {
                        e.new = false;
                    }
                }
            });
        c
    }

    /// The lists as a [`Knn`]: distances recomputed in double precision from `x`, rows sorted
    /// by them (ties by index).
    fn into_knn(self, x: &Array2<f64>) -> Knn {
        let (n, k) = (self.n, self.k);
        let rows: Vec<Vec<(f64, usize)>> = self
            .e
            .par_chunks(k)
            .enumerate()
            .map(|(i, row)| {
                let mut r: Vec<(f64, usize)> = row
                    .iter()
                    .map(|e| {
                        let j = e.j as usize;
                        (sq_dist(x.row(i), x.row(j)).sqrt(), j)
                    })
                    .collect();
                r.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                r
            })
            .collect();
        let mut indices = Array2::zeros((n, k));
        let mut distances = Array2::zeros((n, k));
        for (i, r) in rows.iter().enumerate() {
            for (s, &(d, j)) in r.iter().enumerate() {
                indices[[i, s]] = j;
                distances[[i, s]] = d;
            }
        }
        Knn { indices, distances }
    }
}

/// Merges `(j, d)` proposals into one sorted list; returns how many entries are new to it.
fn merge_row(i: u32, row: &mut [Entry], ups: &[(u32, f32)]) -> usize {
    let k = row.len();
    let mut had: Option<Vec<u32>> = None;
    for &(j, d) in ups {
        let w = row[k - 1];
        if j == i || !before(d, j, w.d, w.j) || row.iter().any(|e| e.j == j) {
            continue;
        }
        had.get_or_insert_with(|| row.iter().map(|e| e.j).collect());
        let mut p = k - 1;
        while p > 0 && before(d, j, row[p - 1].d, row[p - 1].j) {
            row[p] = row[p - 1];
            p -= 1;
        }
        row[p] = Entry { d, j, new: true };
    }
    match had {
        None => 0,
        Some(had) => row.iter().filter(|e| !had.contains(&e.j)).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_the_k_nearest_whatever_the_order() {
        let mut g = Graph::new(1, 3);
        let ups = [(4, 2.0), (7, 1.0), (2, 2.0), (9, 0.5), (7, 1.0), (0, 3.0)];
        let mut rev = ups;
        rev.reverse();
        let mut h = Graph::new(1, 3);
        assert_eq!(merge_row(0, &mut g.e, &ups[..]), 3);
        merge_row(0, &mut h.e, &rev[..]);
        let ids = |g: &Graph| g.e.iter().map(|e| e.j).collect::<Vec<_>>();
        // 9 (0.5), 7 (1.0), then the tie at 2.0 goes to the lower index; itself (0) is skipped
        assert_eq!(ids(&g), vec![9, 7, 2]);
        assert_eq!(ids(&g), ids(&h));
        assert_eq!(merge_row(0, &mut g.e, &[(5, 9.0)]), 0);
    }
}
