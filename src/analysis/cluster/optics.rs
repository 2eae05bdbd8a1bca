//! OPTICS (Ankerst et al. 1999) with scikit-learn's xi cluster extraction, predecessor
//! correction and its rounding of distances to 15 decimals (which decides ties in the ordering).

use crate::analysis::{neighbors, to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Ix2};

/// OPTICS parameters.
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::cluster::Optics;
/// let x = Array2::from_shape_fn((60, 2), |(i, j)| (i / 30) as f64 * 20.0 + ((i * 7 + j * 3) % 10) as f64 * 0.1);
/// let f = Optics::new().fit(&x)?;
/// assert_eq!(f.ordering().len(), 60);
/// assert!(f.reachability()[f.ordering()[0]].is_infinite());
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Optics {
    min_samples: usize,
    max_eps: f64,
    xi: f64,
    min_cluster_size: Option<usize>,
    predecessor_correction: bool,
}

impl Default for Optics {
    fn default() -> Self {
        Self::new()
    }
}

fn around15(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e15).round_ties_even() / 1e15
    } else {
        v
    }
}

impl Optics {
    /// min_samples 5, max_eps inf, xi 0.05, min_cluster_size = min_samples, predecessor
    /// correction on.
    pub fn new() -> Self {
        Optics {
            min_samples: 5,
            max_eps: f64::INFINITY,
            xi: 0.05,
            min_cluster_size: None,
            predecessor_correction: true,
        }
    }
    /// Neighbours (itself included) that define a core point.
    pub fn min_samples(mut self, m: usize) -> Self {
        self.min_samples = m;
        self
    }
    /// Largest neighbourhood radius considered.
    pub fn max_eps(mut self, e: f64) -> Self {
        self.max_eps = e;
        self
    }
    /// Minimum steepness of a cluster boundary in the reachability plot.
    pub fn xi(mut self, xi: f64) -> Self {
        self.xi = xi;
        self
    }
    /// Smallest cluster (default: min_samples).
    pub fn min_cluster_size(mut self, m: usize) -> Self {
        self.min_cluster_size = Some(m);
        self
    }

    /// Order `x` and extract clusters.
    pub fn fit<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<FittedOptics> {
        let x = to_f64_checked(x, "OPTICS input", 2)?;
        let n = x.nrows();
        if self.min_samples < 2 || self.min_samples > n {
            return Err(Error::InvalidArgument(format!(
                "OPTICS min_samples={} must be between 2 and n_samples = {n}",
                self.min_samples
            )));
        }
        if !(0.0..=1.0).contains(&self.xi) {
            return Err(Error::InvalidArgument(format!(
                "OPTICS xi={} must be in [0, 1]",
                self.xi
            )));
        }
        let mcs = self.min_cluster_size.unwrap_or(self.min_samples);
        if mcs < 2 || mcs > n {
            return Err(Error::InvalidArgument(format!(
                "OPTICS min_cluster_size={mcs} must be between 2 and n_samples = {n}"
            )));
        }
        let nn = neighbors::knn(&x, self.min_samples - 1)?;
        let core: Vec<f64> = (0..n)
            .map(|i| {
                let c = nn.distances[[i, self.min_samples - 2]];
                around15(if c > self.max_eps { f64::INFINITY } else { c })
            })
            .collect();
        let mut reach = vec![f64::INFINITY; n];
        let mut pred = vec![-1i64; n];
        let mut processed = vec![false; n];
        let mut ordering = Vec::with_capacity(n);
        for _ in 0..n {
            let mut point = usize::MAX;
            for i in 0..n {
                if !processed[i] && (point == usize::MAX || reach[i] < reach[point]) {
                    point = i;
                }
            }
            processed[point] = true;
            ordering.push(point);
            if core[point].is_finite() {
                let xp = x.row(point);
                for j in 0..n {
                    if processed[j] {
                        continue;
                    }
                    let d = neighbors::sq_dist(xp, x.row(j)).sqrt();
                    if d > self.max_eps {
                        continue;
                    }
                    let r = around15(d.max(core[point]));
                    if r < reach[j] {
                        reach[j] = r;
                        pred[j] = point as i64;
                    }
                }
            }
        }
        let rp: Vec<f64> = ordering.iter().map(|&i| reach[i]).collect();
        let pp: Vec<i64> = ordering.iter().map(|&i| pred[i]).collect();
        let clusters = xi_cluster(
            &rp,
            &pp,
            &ordering,
            self.xi,
            self.min_samples,
            mcs,
            self.predecessor_correction,
        );
        let mut lab = vec![-1i64; n];
        let mut label = 0;
        for &(s, e) in &clusters {
            if lab[s..=e].iter().all(|&l| l == -1) {
                lab[s..=e].iter_mut().for_each(|l| *l = label);
                label += 1;
            }
        }
        let mut labels = vec![-1i64; n];
        for (pos, &i) in ordering.iter().enumerate() {
            labels[i] = lab[pos];
        }
        Ok(FittedOptics {
            labels,
            ordering,
            reachability: reach,
            core_distances: core,
            predecessor: pred,
            clusters,
        })
    }
}

fn extend_region(steep: &[bool], xward: &[bool], start: usize, min_samples: usize) -> usize {
    let n = steep.len();
    let mut non_xward = 0;
    let mut end = start;
    let mut index = start;
    while index < n {
        if steep[index] {
            non_xward = 0;
            end = index;
        } else if !xward[index] {
            non_xward += 1;
            if non_xward > min_samples {
                break;
            }
        } else {
            return end;
        }
        index += 1;
    }
    end
}

struct Sda {
    start: usize,
    end: usize,
    mib: f64,
}

fn update_sdas(sdas: Vec<Sda>, mib: f64, xic: f64, r: &[f64]) -> Vec<Sda> {
    if mib.is_infinite() {
        return Vec::new();
    }
    sdas.into_iter()
        .filter(|s| mib <= r[s.start] * xic)
        .map(|mut s| {
            s.mib = s.mib.max(mib);
            s
        })
        .collect()
}

fn correct_predecessor(
    r: &[f64],
    pred: &[i64],
    ordering: &[usize],
    s: usize,
    mut e: usize,
) -> Option<(usize, usize)> {
    while s < e {
        if r[s] > r[e] {
            return Some((s, e));
        }
        let pe = pred[e];
        if (s..e).any(|i| pe == ordering[i] as i64) {
            return Some((s, e));
        }
        e -= 1;
    }
    None
}

fn xi_cluster(
    rp: &[f64],
    pred: &[i64],
    ordering: &[usize],
    xi: f64,
    min_samples: usize,
    mcs: usize,
    correction: bool,
) -> Vec<(usize, usize)> {
    let n = rp.len();
    let mut r = rp.to_vec();
    r.push(f64::INFINITY);
    let xic = 1.0 - xi;
    let ratio: Vec<f64> = (0..n).map(|i| r[i] / r[i + 1]).collect();
    let steep_up: Vec<bool> = ratio.iter().map(|&v| v <= xic).collect();
    let steep_down: Vec<bool> = ratio.iter().map(|&v| v >= 1.0 / xic).collect();
    let down: Vec<bool> = ratio.iter().map(|&v| v > 1.0).collect();
    let up: Vec<bool> = ratio.iter().map(|&v| v < 1.0).collect();
    let mut sdas: Vec<Sda> = Vec::new();
    let mut clusters = Vec::new();
    let mut index = 0usize;
    let mut mib = 0.0f64;
    for steep_index in (0..n).filter(|&i| steep_up[i] || steep_down[i]) {
        if steep_index < index {
            continue;
        }
        mib = r[index..=steep_index].iter().copied().fold(mib, f64::max);
        if steep_down[steep_index] {
            sdas = update_sdas(sdas, mib, xic, &r);
            let d_end = extend_region(&steep_down, &up, steep_index, min_samples);
            sdas.push(Sda {
                start: steep_index,
                end: d_end,
                mib: 0.0,
            });
            index = d_end + 1;
            mib = r[index];
        } else {
            sdas = update_sdas(sdas, mib, xic, &r);
            let u_start = steep_index;
            let u_end = extend_region(&steep_up, &down, u_start, min_samples);
            index = u_end + 1;
            mib = r[index];
            let mut u_clusters = Vec::new();
            for d in &sdas {
                let mut c_start = d.start;
                let mut c_end = u_end;
                if r[c_end + 1] * xic < d.mib {
                    continue;
                }
                let d_max = r[d.start];
                if d_max * xic >= r[c_end + 1] {
                    while r[c_start + 1] > r[c_end + 1] && c_start < d.end {
                        c_start += 1;
                    }
                } else if r[c_end + 1] * xic >= d_max {
                    while r[c_end - 1] > d_max && c_end > u_start {
                        c_end -= 1;
                    }
                }
                if correction {
                    match correct_predecessor(&r, pred, ordering, c_start, c_end) {
                        Some((s, e)) => {
                            c_start = s;
                            c_end = e;
                        }
                        None => continue,
                    }
                }
                if c_end + 1 - c_start < mcs || c_start > d.end || c_end < u_start {
                    continue;
                }
                u_clusters.push((c_start, c_end));
            }
            u_clusters.reverse();
            clusters.extend(u_clusters);
        }
    }
    clusters
}

/// OPTICS result: the ordering and reachability plot, and the xi clusters.
#[derive(Debug, Clone)]
pub struct FittedOptics {
    labels: Vec<i64>,
    ordering: Vec<usize>,
    reachability: Vec<f64>,
    core_distances: Vec<f64>,
    predecessor: Vec<i64>,
    clusters: Vec<(usize, usize)>,
}

impl FittedOptics {
    /// One label per sample, -1 for noise.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }
    /// The cluster ordering of the samples.
    pub fn ordering(&self) -> &[usize] {
        &self.ordering
    }
    /// Reachability distance of every sample (index by sample, plot in `ordering`).
    pub fn reachability(&self) -> &[f64] {
        &self.reachability
    }
    /// Core distance of every sample.
    pub fn core_distances(&self) -> &[f64] {
        &self.core_distances
    }
    /// The sample each was reached from (-1 for the first of each component).
    pub fn predecessor(&self) -> &[i64] {
        &self.predecessor
    }
    /// Clusters as `(start, end)` ranges of the ordering, inner clusters first.
    pub fn cluster_hierarchy(&self) -> &[(usize, usize)] {
        &self.clusters
    }
    /// DBSCAN-equivalent labels at radius `eps` from the same ordering (scikit-learn's
    /// `cluster_optics_dbscan`).
    pub fn dbscan_labels(&self, eps: f64) -> Vec<i64> {
        let n = self.labels.len();
        let mut labels = vec![0i64; n];
        let mut cum = -1i64;
        for &i in &self.ordering {
            if self.reachability[i] > eps && self.core_distances[i] <= eps {
                cum += 1;
            }
            labels[i] = cum;
        }
        for i in 0..n {
            if self.reachability[i] > eps && self.core_distances[i] > eps {
                labels[i] = -1;
            }
        }
        labels
    }
}
