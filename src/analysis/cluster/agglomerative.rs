//! Agglomerative (hierarchical) clustering by the nearest-neighbour chain algorithm (Murtagh
//! 1983; Müllner 2011), which is what SciPy's `linkage` and so scikit-learn's
//! `AgglomerativeClustering` run for these linkages: O(n^2) time and a condensed distance matrix
//! of n(n-1)/2 doubles.

use crate::analysis::{neighbors, to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};

/// How the distance between two clusters is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// Minimum variance increase (scikit-learn's default).
    Ward,
    /// Mean pairwise distance (UPGMA).
    Average,
    /// Largest pairwise distance.
    Complete,
    /// Smallest pairwise distance.
    Single,
}

impl Linkage {
    /// Parse `ward`, `average`, `complete` or `single`.
    ///
    /// ```
    /// use neuroscope::analysis::cluster::Linkage;
    /// assert_eq!(Linkage::parse("average")?, Linkage::Average);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "ward" => Ok(Linkage::Ward),
            "average" => Ok(Linkage::Average),
            "complete" => Ok(Linkage::Complete),
            "single" => Ok(Linkage::Single),
            _ => Err(Error::UnknownName {
                kind: "linkage".into(),
                name: s.into(),
                valid: "ward, average, complete, single".into(),
            }),
        }
    }
}

from_str_by_parse!(Linkage);

/// Agglomerative clustering parameters.
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::cluster::{Agglomerative, Linkage};
/// let x = array![[0.0], [0.3], [5.0], [5.2], [20.0]];
/// let f = Agglomerative::new(3).linkage(Linkage::Average).fit(&x)?;
/// assert_eq!(f.labels(), &[0, 0, 1, 1, 2]);
/// assert_eq!(f.linkage_matrix().nrows(), 4);       // SciPy's Z: n - 1 merges
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Agglomerative {
    n_clusters: usize,
    linkage: Linkage,
}

impl Agglomerative {
    /// `k` clusters, ward linkage.
    pub fn new(k: usize) -> Self {
        Agglomerative {
            n_clusters: k,
            linkage: Linkage::Ward,
        }
    }
    /// Number of clusters to cut the tree into.
    pub fn n_clusters(mut self, k: usize) -> Self {
        self.n_clusters = k;
        self
    }
    /// The linkage.
    pub fn linkage(mut self, l: Linkage) -> Self {
        self.linkage = l;
        self
    }

    /// Build the tree on `x` and cut it.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<FittedAgglomerative> {
        let x = to_f64_checked(x, "agglomerative clustering input", 1)?;
        let n = x.nrows();
        if self.n_clusters == 0 || self.n_clusters > n {
            return Err(Error::InvalidArgument(format!(
                "n_clusters={} must be between 1 and n_samples = {n}",
                self.n_clusters
            )));
        }
        crate::analysis::check_dense(n, "agglomerative clustering")?;
        let z = if n > 1 {
            nn_chain(&x, self.linkage)
        } else {
            Array2::zeros((0, 4))
        };
        let labels = cut(&z, n, self.n_clusters);
        Ok(FittedAgglomerative { labels, z })
    }
}

#[inline]
fn cidx(n: usize, i: usize, j: usize) -> usize {
    let (i, j) = if i < j { (i, j) } else { (j, i) };
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

fn nn_chain(x: &Array2<f64>, linkage: Linkage) -> Array2<f64> {
    let n = x.nrows();
    let mut d = vec![0.0f64; n * (n - 1) / 2];
    {
        let parts = neighbors::distance_rows(x, |start, block| {
            block
                .rows()
                .into_iter()
                .enumerate()
                .map(|(bi, row)| (start + bi, row.to_vec()))
                .collect::<Vec<_>>()
        });
        for (i, row) in parts.into_iter().flatten() {
            for j in i + 1..n {
                d[cidx(n, i, j)] = row[j];
            }
        }
    }
    let mut size = vec![1usize; n];
    let mut active = vec![true; n];
    let mut merges: Vec<(usize, usize, f64)> = Vec::with_capacity(n - 1);
    let mut chain: Vec<usize> = Vec::new();
    for _ in 0..n - 1 {
        if chain.is_empty() {
            chain.push(
                (0..n)
                    .find(|&i| active[i])
                    .expect("two active clusters remain"),
            );
        }
        let (x_, y_, dist) = loop {
            let x_ = *chain.last().expect("non-empty");
            let (mut y_, mut best) = if chain.len() >= 2 {
                let y = chain[chain.len() - 2];
                (y, d[cidx(n, x_, y)])
            } else {
                (usize::MAX, f64::INFINITY)
            };
            for i in 0..n {
                if !active[i] || i == x_ {
                    continue;
                }
                let v = d[cidx(n, x_, i)];
                if v < best {
                    best = v;
                    y_ = i;
                }
            }
            if chain.len() >= 2 && y_ == chain[chain.len() - 2] {
                break (x_, y_, best);
            }
            chain.push(y_);
        };
        chain.pop();
        chain.pop();
        let (a, b) = if x_ < y_ { (x_, y_) } else { (y_, x_) };
        merges.push((a, b, dist));
        // merged cluster lives in slot b
        let (sa, sb) = (size[a] as f64, size[b] as f64);
        active[a] = false;
        for i in 0..n {
            if !active[i] || i == b {
                continue;
            }
            let (da, db) = (d[cidx(n, a, i)], d[cidx(n, b, i)]);
            let si = size[i] as f64;
            d[cidx(n, b, i)] = match linkage {
                Linkage::Single => da.min(db),
                Linkage::Complete => da.max(db),
                Linkage::Average => (sa * da + sb * db) / (sa + sb),
                Linkage::Ward => (((sa + si) * da * da + (sb + si) * db * db - si * dist * dist)
                    / (sa + sb + si))
                    .max(0.0)
                    .sqrt(),
            };
        }
        size[b] += size[a];
    }
    // SciPy's linkage matrix: merges sorted by distance (stable), clusters renumbered n + i
    let mut order: Vec<usize> = (0..merges.len()).collect();
    order.sort_by(|&i, &j| merges[i].2.total_cmp(&merges[j].2));
    let mut parent: Vec<usize> = (0..2 * n - 1).collect();
    let mut node_of: Vec<usize> = (0..n).collect(); // representative point -> current node id
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut z = Array2::zeros((n - 1, 4));
    let mut sizes = vec![1usize; 2 * n - 1];
    for (k, &m) in order.iter().enumerate() {
        let (a, b, dist) = merges[m];
        let ra = find(&mut parent, a);
        let rb = find(&mut parent, b);
        let (na, nb) = (node_of[ra], node_of[rb]);
        let (lo, hi) = if na < nb { (na, nb) } else { (nb, na) };
        let new = n + k;
        sizes[new] = sizes[na] + sizes[nb];
        z[[k, 0]] = lo as f64;
        z[[k, 1]] = hi as f64;
        z[[k, 2]] = dist;
        z[[k, 3]] = sizes[new] as f64;
        parent[ra] = rb;
        node_of[rb] = new;
    }
    z
}

/// Cut a linkage matrix into `k` clusters: apply its first `n - k` merges; labels in order of
/// first appearance.
fn cut(z: &Array2<f64>, n: usize, k: usize) -> Vec<i64> {
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for m in 0..n - k {
        let (a, b) = (z[[m, 0]] as usize, z[[m, 1]] as usize);
        let new = n + m;
        let ra = find(&mut parent, a);
        let rb = find(&mut parent, b);
        parent[ra] = new;
        parent[rb] = new;
    }
    let roots: Vec<i64> = (0..n).map(|i| find(&mut parent, i) as i64).collect();
    super::canonical_labels(&roots)
}

/// Result of agglomerative clustering.
#[derive(Debug, Clone)]
pub struct FittedAgglomerative {
    labels: Vec<i64>,
    z: Array2<f64>,
}

impl FittedAgglomerative {
    /// Cluster of every sample.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }
    /// The full tree as SciPy's linkage matrix `Z` (`(n-1) x 4`: child, child, distance, size).
    pub fn linkage_matrix(&self) -> &Array2<f64> {
        &self.z
    }
    /// Labels for another number of clusters from the same tree (no refit).
    pub fn cut(&self, k: usize) -> Result<Vec<i64>> {
        let n = self.labels.len();
        if k == 0 || k > n {
            return Err(Error::InvalidArgument(format!(
                "k={k} must be between 1 and n_samples = {n}"
            )));
        }
        Ok(cut(&self.z, n, k))
    }
}
