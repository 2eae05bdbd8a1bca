//! HDBSCAN (Campello, Moulavi and Sander 2013) as scikit-learn's `HDBSCAN` with its defaults:
//! mutual-reachability distances from core distances (the `min_samples`-th neighbour, the point
//! itself counted), a minimum spanning tree (Prim, dense), the single-linkage tree, the condensed
//! tree at `min_cluster_size`, and excess-of-mass selection of the most stable clusters.

use crate::analysis::{neighbors, to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Ix2};
use std::collections::{BTreeMap, BTreeSet};

/// HDBSCAN parameters.
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::cluster::Hdbscan;
/// let x = Array2::from_shape_fn((40, 2), |(i, j)| if i < 20 { (i % 5) as f64 * 0.1 + j as f64 * 0.05 * (i / 5) as f64 } else { 10.0 + (i % 5) as f64 * 0.1 + j as f64 * 0.05 * (i / 5) as f64 });
/// let f = Hdbscan::new().fit(&x)?;
/// assert_eq!(f.n_clusters(), 2);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Hdbscan {
    min_cluster_size: usize,
    min_samples: Option<usize>,
    allow_single_cluster: bool,
}

impl Default for Hdbscan {
    fn default() -> Self {
        Self::new()
    }
}

impl Hdbscan {
    /// min_cluster_size 5, min_samples = min_cluster_size, no single cluster.
    pub fn new() -> Self {
        Hdbscan {
            min_cluster_size: 5,
            min_samples: None,
            allow_single_cluster: false,
        }
    }
    /// Smallest group that counts as a cluster.
    pub fn min_cluster_size(mut self, m: usize) -> Self {
        self.min_cluster_size = m;
        self
    }
    /// Neighbours (itself included) that define a point's core distance.
    pub fn min_samples(mut self, m: usize) -> Self {
        self.min_samples = Some(m);
        self
    }
    /// Allow the whole data set to be returned as one cluster.
    pub fn allow_single_cluster(mut self, allow: bool) -> Self {
        self.allow_single_cluster = allow;
        self
    }

    /// Cluster `x`.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<FittedHdbscan> {
        let x = to_f64_checked(x, "HDBSCAN input", 2)?;
        let n = x.nrows();
        let ms = self.min_samples.unwrap_or(self.min_cluster_size);
        if self.min_cluster_size < 2 {
            return Err(Error::InvalidArgument(format!(
                "HDBSCAN min_cluster_size must be at least 2, got {}",
                self.min_cluster_size
            )));
        }
        if ms < 1 || ms > n {
            // min_samples defaults to min_cluster_size: name the one the user set.
            let name = if self.min_samples.is_some() {
                "min_samples"
            } else {
                "min_cluster_size (and so min_samples, which defaults to it)"
            };
            return Err(Error::InvalidArgument(format!(
                "HDBSCAN {name}={ms} must be between 1 and n_samples = {n}"
            )));
        }
        // dense distances: HDBSCAN's MST is O(n^2) anyway
        crate::analysis::check_dense(n, "HDBSCAN")?;
        let d = neighbors::pairwise_distances(&x);
        let core: Vec<f64> = (0..n)
            .map(|i| {
                let mut row: Vec<f64> = d.row(i).to_vec();
                let k = ms - 1;
                row.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
                row[k]
            })
            .collect();
        // Prim's MST on mutual reachability
        let mut in_tree = vec![false; n];
        let mut best = vec![f64::INFINITY; n];
        let mut edges: Vec<(usize, usize, f64)> = Vec::with_capacity(n - 1);
        let mut current = 0usize;
        let mut from = vec![0usize; n];
        in_tree[0] = true;
        for _ in 0..n - 1 {
            let mut next = usize::MAX;
            let mut next_d = f64::INFINITY;
            for j in 0..n {
                if in_tree[j] {
                    continue;
                }
                let mr = d[[current, j]].max(core[current]).max(core[j]);
                if mr < best[j] {
                    best[j] = mr;
                    from[j] = current;
                }
                if best[j] < next_d || next == usize::MAX {
                    next_d = best[j];
                    next = j;
                }
            }
            edges.push((from[next], next, next_d));
            in_tree[next] = true;
            current = next;
        }
        edges.sort_by(|a, b| a.2.total_cmp(&b.2));
        let hierarchy = single_linkage(&edges, n);
        let condensed = condense(&hierarchy, n, self.min_cluster_size);
        let (labels, probabilities) = select(&condensed, n, self.allow_single_cluster);
        Ok(FittedHdbscan {
            labels,
            probabilities,
        })
    }
}

/// scipy-format single-linkage rows: (left, right, distance, size).
fn single_linkage(edges: &[(usize, usize, f64)], n: usize) -> Vec<(usize, usize, f64, usize)> {
    let mut parent: Vec<usize> = (0..2 * n - 1).collect();
    let mut size = vec![1usize; 2 * n - 1];
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut out = Vec::with_capacity(n - 1);
    for (k, &(a, b, dist)) in edges.iter().enumerate() {
        let ra = find(&mut parent, a);
        let rb = find(&mut parent, b);
        let new = n + k;
        size[new] = size[ra] + size[rb];
        out.push((ra, rb, dist, size[new]));
        parent[ra] = new;
        parent[rb] = new;
    }
    out
}

fn bfs(h: &[(usize, usize, f64, usize)], n: usize, root: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut queue = vec![root];
    while !queue.is_empty() {
        out.extend_from_slice(&queue);
        let mut next = Vec::new();
        for &q in &queue {
            if q >= n {
                let (l, r, _, _) = h[q - n];
                next.push(l);
                next.push(r);
            }
        }
        queue = next;
    }
    out
}

/// Condensed tree rows: (parent, child, lambda, child size).
fn condense(
    h: &[(usize, usize, f64, usize)],
    n: usize,
    mcs: usize,
) -> Vec<(usize, usize, f64, usize)> {
    let root = 2 * n - 2;
    let mut relabel = vec![0usize; root + 1];
    relabel[root] = n;
    let mut next_label = n + 1;
    let mut ignore = vec![false; root + 1];
    let mut out = Vec::new();
    let count = |c: usize| if c >= n { h[c - n].3 } else { 1 };
    for node in bfs(h, n, root) {
        if ignore[node] || node < n {
            continue;
        }
        let (l, r, dist, _) = h[node - n];
        let lam = if dist > 0.0 {
            1.0 / dist
        } else {
            f64::INFINITY
        };
        let (lc, rc) = (count(l), count(r));
        if lc >= mcs && rc >= mcs {
            relabel[l] = next_label;
            next_label += 1;
            out.push((relabel[node], relabel[l], lam, lc));
            relabel[r] = next_label;
            next_label += 1;
            out.push((relabel[node], relabel[r], lam, rc));
        } else {
            let here = relabel[node];
            let drop =
                |side: usize, out: &mut Vec<(usize, usize, f64, usize)>, ignore: &mut Vec<bool>| {
                    for sub in bfs(h, n, side) {
                        if sub < n {
                            out.push((here, sub, lam, 1));
                        }
                        ignore[sub] = true;
                    }
                };
            if lc < mcs && rc < mcs {
                drop(l, &mut out, &mut ignore);
                drop(r, &mut out, &mut ignore);
            } else if lc < mcs {
                relabel[r] = relabel[node];
                drop(l, &mut out, &mut ignore);
            } else {
                relabel[l] = relabel[node];
                drop(r, &mut out, &mut ignore);
            }
        }
    }
    out
}

fn select(ct: &[(usize, usize, f64, usize)], n: usize, allow_single: bool) -> (Vec<i64>, Vec<f64>) {
    let root = n;
    // stability
    let mut births: BTreeMap<usize, f64> = BTreeMap::new();
    for &(_, c, lam, _) in ct {
        births.insert(c, lam);
    }
    births.insert(root, 0.0);
    let mut stability: BTreeMap<usize, f64> = BTreeMap::new();
    for &(p, _, _, _) in ct {
        stability.insert(p, 0.0);
    }
    for &(p, _, lam, sz) in ct {
        *stability.get_mut(&p).expect("inserted") += (lam - births[&p]) * sz as f64;
    }
    let mut nodes: Vec<usize> = stability.keys().copied().collect();
    nodes.sort_unstable_by(|a, b| b.cmp(a));
    if !allow_single {
        nodes.pop(); // the root is the smallest id
    }
    let cluster_tree: Vec<(usize, usize, f64, usize)> =
        ct.iter().copied().filter(|r| r.3 > 1).collect();
    let mut is_cluster: BTreeMap<usize, bool> = nodes.iter().map(|&c| (c, true)).collect();
    for &node in &nodes {
        let sub: f64 = cluster_tree
            .iter()
            .filter(|r| r.0 == node)
            .map(|r| stability[&r.1])
            .sum();
        if sub > stability[&node] {
            is_cluster.insert(node, false);
            stability.insert(node, sub);
        } else {
            // deselect every descendant
            let mut queue = vec![node];
            while let Some(q) = queue.pop() {
                for r in cluster_tree.iter().filter(|r| r.0 == q) {
                    is_cluster.insert(r.1, false);
                    queue.push(r.1);
                }
            }
        }
    }
    let clusters: BTreeSet<usize> = is_cluster
        .iter()
        .filter(|(_, &v)| v)
        .map(|(&c, _)| c)
        .collect();
    let label_of: BTreeMap<usize, i64> = clusters
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i as i64))
        .collect();
    // labelling: union every parent/child edge whose child is not a selected cluster
    let max_parent = ct.iter().map(|r| r.0).max().unwrap_or(root);
    let mut parent: Vec<usize> = (0..=max_parent.max(root)).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    // rows come parents first, so linking the child's set under the parent's keeps every set
    // rooted at its topmost node (what scikit-learn's TreeUnionFind ends up with)
    for &(p, c, _, _) in ct {
        if !clusters.contains(&c) && c < parent.len() {
            let rp = find(&mut parent, p);
            let rc = find(&mut parent, c);
            if rp != rc {
                parent[rc] = rp;
            }
        }
    }
    let mut labels = vec![-1i64; n];
    for (i, l) in labels.iter_mut().enumerate() {
        let c = find(&mut parent, i);
        if c != root {
            *l = label_of.get(&c).copied().unwrap_or(-1);
        } else if clusters.len() == 1 && allow_single {
            let lam_i = ct.iter().find(|r| r.1 == i).map(|r| r.2).unwrap_or(0.0);
            let thr = ct
                .iter()
                .filter(|r| r.0 == c)
                .map(|r| r.2)
                .fold(f64::NEG_INFINITY, f64::max);
            if lam_i >= thr {
                *l = label_of.get(&c).copied().unwrap_or(-1);
            }
        }
    }
    // membership strength: lambda at which the point left, relative to its cluster's death
    let mut deaths: BTreeMap<usize, f64> = BTreeMap::new();
    for &(p, _, lam, _) in ct {
        let e = deaths.entry(p).or_insert(lam);
        *e = e.max(lam);
    }
    let cluster_of_label: Vec<usize> = clusters.iter().copied().collect();
    let mut probs = vec![0.0; n];
    for &(_, c, lam, _) in ct {
        if c >= root || labels[c] < 0 {
            continue;
        }
        let maxl = deaths
            .get(&cluster_of_label[labels[c] as usize])
            .copied()
            .unwrap_or(0.0);
        probs[c] = if maxl == 0.0 || lam.is_infinite() {
            1.0
        } else {
            lam.min(maxl) / maxl
        };
    }
    (labels, probs)
}

/// HDBSCAN result.
#[derive(Debug, Clone)]
pub struct FittedHdbscan {
    labels: Vec<i64>,
    probabilities: Vec<f64>,
}

impl FittedHdbscan {
    /// One label per sample, -1 for noise.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }
    /// Strength of each sample's membership in its cluster (0 for noise).
    pub fn probabilities(&self) -> &[f64] {
        &self.probabilities
    }
    /// Number of clusters (noise excluded).
    pub fn n_clusters(&self) -> usize {
        super::count_clusters(&self.labels)
    }
}
