//! DBSCAN (Ester et al. 1996) with scikit-learn's semantics: a point is core when at least
//! `min_samples` points (itself included) lie within `eps`; clusters grow from core points in
//! index order, so border points reachable from two clusters join the first, exactly as
//! scikit-learn's `dbscan_inner`.

use crate::analysis::{neighbors, to_f64_checked, Scalar};
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Ix2};

/// DBSCAN parameters.
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::cluster::Dbscan;
/// let x = array![[0.0], [0.1], [0.2], [9.0]];
/// let f = Dbscan::new().eps(0.15).min_samples(2).fit(&x)?;
/// assert_eq!(f.labels(), &[0, 0, 0, -1]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dbscan {
    eps: f64,
    min_samples: usize,
}

impl Default for Dbscan {
    fn default() -> Self {
        Self::new()
    }
}

impl Dbscan {
    /// eps 0.5, min_samples 5.
    pub fn new() -> Self {
        Dbscan {
            eps: 0.5,
            min_samples: 5,
        }
    }
    /// Neighbourhood radius.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// Points (itself included) a core point needs within `eps`.
    pub fn min_samples(mut self, m: usize) -> Self {
        self.min_samples = m;
        self
    }
    /// Cluster `x` (samples x features).
    pub fn fit<S: Data<Elem = T>, T: Scalar>(&self, x: &ArrayBase<S, Ix2>) -> Result<FittedDbscan> {
        if !(self.eps > 0.0) || !self.eps.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "DBSCAN eps must be a positive finite number, got {}",
                self.eps
            )));
        }
        if self.min_samples == 0 {
            return Err(Error::InvalidArgument(
                "DBSCAN min_samples must be at least 1".into(),
            ));
        }
        let x = to_f64_checked(x, "DBSCAN input", 1)?;
        let n = x.nrows();
        let neigh = neighbors::radius_neighbors(&x, self.eps);
        let core: Vec<bool> = neigh.iter().map(|v| v.len() >= self.min_samples).collect();
        let mut labels = vec![-1i64; n];
        let mut label = 0i64;
        let mut stack = Vec::new();
        for start in 0..n {
            if labels[start] != -1 || !core[start] {
                continue;
            }
            let mut i = start;
            loop {
                if labels[i] == -1 {
                    labels[i] = label;
                    if core[i] {
                        for &v in &neigh[i] {
                            if labels[v] == -1 {
                                stack.push(v);
                            }
                        }
                    }
                }
                match stack.pop() {
                    Some(v) => i = v,
                    None => break,
                }
            }
            label += 1;
        }
        let core_sample_indices = (0..n).filter(|&i| core[i]).collect();
        Ok(FittedDbscan {
            labels,
            core_sample_indices,
        })
    }
}

/// DBSCAN result.
#[derive(Debug, Clone)]
pub struct FittedDbscan {
    labels: Vec<i64>,
    core_sample_indices: Vec<usize>,
}

impl FittedDbscan {
    /// One label per sample, -1 for noise.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }
    /// Indices of the core samples.
    pub fn core_sample_indices(&self) -> &[usize] {
        &self.core_sample_indices
    }
    /// Number of clusters found (noise excluded).
    pub fn n_clusters(&self) -> usize {
        super::count_clusters(&self.labels)
    }
}
