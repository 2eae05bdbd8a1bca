//! Clustering with scikit-learn's algorithms, parameter names and defaults.
//!
//! Every algorithm is a params struct with builder methods whose `fit` returns a fitted value
//! holding `labels()` (one `i64` per sample, `-1` for noise where the algorithm has a notion of
//! it). Seeded algorithms take `seed(u64)`; the same seed gives the same labels at any thread
//! count.
//!
//! | algorithm | type | defaults (as scikit-learn) |
//! |---|---|---|
//! | k-means (k-means++ init, Lloyd) | [`KMeans`] | 8 clusters, 300 iterations, tol 1e-4, 1 init |
//! | DBSCAN | [`Dbscan`] | eps 0.5, min_samples 5 |
//! | HDBSCAN (EOM selection) | [`Hdbscan`] | min_cluster_size 5, min_samples = min_cluster_size |
//! | OPTICS (xi extraction) | [`Optics`] | min_samples 5, xi 0.05, max_eps inf |
//! | agglomerative | [`Agglomerative`] | 2 clusters, ward linkage |
//! | Gaussian mixture (full covariance, EM) | [`GaussianMixture`] | 1 component, tol 1e-3, reg 1e-6, k-means init |
//!
//! ```
//! use ndarray::array;
//! use neuroscope::analysis::cluster::{Dbscan, KMeans};
//! let x = array![[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]];
//! let km = KMeans::new(2).seed(0).fit(&x)?;
//! assert_eq!(km.labels()[0], km.labels()[1]);
//! assert_ne!(km.labels()[0], km.labels()[3]);
//! let db = Dbscan::new().eps(0.5).min_samples(3).fit(&x)?;
//! assert_eq!(db.n_clusters(), 2);
//! # Ok::<(), neuroscope::Error>(())
//! ```

mod agglomerative;
mod dbscan;
mod gmm;
mod hdbscan;
mod kmeans;
mod optics;

pub use agglomerative::{Agglomerative, FittedAgglomerative, Linkage};
pub use dbscan::{Dbscan, FittedDbscan};
pub use gmm::{FittedGaussianMixture, GaussianMixture};
pub use hdbscan::{FittedHdbscan, Hdbscan};
pub use kmeans::{FittedKMeans, KMeans};
pub use optics::{FittedOptics, Optics};

/// Number of distinct non-noise labels.
///
/// ```
/// assert_eq!(neuroscope::analysis::cluster::count_clusters(&[0, 0, 1, -1]), 2);
/// ```
pub fn count_clusters(labels: &[i64]) -> usize {
    let mut l: Vec<i64> = labels.iter().copied().filter(|&v| v >= 0).collect();
    l.sort_unstable();
    l.dedup();
    l.len()
}

/// Renumber labels by order of first appearance (noise stays -1), so that equal partitions give
/// equal label vectors.
///
/// ```
/// assert_eq!(neuroscope::analysis::cluster::canonical_labels(&[3, 3, -1, 1, 3]), vec![0, 0, -1, 1, 0]);
/// ```
pub fn canonical_labels(labels: &[i64]) -> Vec<i64> {
    let mut map = std::collections::HashMap::new();
    labels
        .iter()
        .map(|&l| {
            if l < 0 {
                -1
            } else {
                let next = map.len() as i64;
                *map.entry(l).or_insert(next)
            }
        })
        .collect()
}

/// A clustering method chosen by name with its scikit-learn defaults (what the CLI and
/// [`crate::analysis::Analysis::cluster`] take).
///
/// ```
/// use neuroscope::analysis::cluster::Method;
/// let m = Method::parse("kmeans", &[("n_clusters", "3")])?;
/// assert!(matches!(m, Method::KMeans(_)));
/// assert!(Method::parse("spectral", &[]).is_err());
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub enum Method {
    /// k-means.
    KMeans(KMeans),
    /// DBSCAN.
    Dbscan(Dbscan),
    /// HDBSCAN.
    Hdbscan(Hdbscan),
    /// OPTICS.
    Optics(Optics),
    /// Agglomerative clustering.
    Agglomerative(Agglomerative),
    /// Gaussian mixture.
    GaussianMixture(GaussianMixture),
}

/// The method names [`Method::parse`] accepts.
pub const METHODS: &[&str] = &[
    "kmeans",
    "dbscan",
    "hdbscan",
    "optics",
    "agglomerative",
    "gmm",
];

impl Method {
    /// A method by name, with `(parameter, value)` overrides of its defaults.
    ///
    /// Parameters: kmeans `n_clusters, seed, max_iter, n_init`; dbscan `eps, min_samples`;
    /// hdbscan `min_cluster_size, min_samples`; optics `min_samples, xi, max_eps`;
    /// agglomerative `n_clusters, linkage`; gmm `n_components, seed, max_iter`.
    pub fn parse(name: &str, params: &[(&str, &str)]) -> crate::Result<Self> {
        use super::params::{int, num};
        use crate::Error;
        let unknown = |k: &str, valid: &str| super::params::unknown(name, k, valid);
        let mut m = match name {
            "kmeans" | "k-means" => Method::KMeans(KMeans::new(8)),
            "dbscan" => Method::Dbscan(Dbscan::new()),
            "hdbscan" => Method::Hdbscan(Hdbscan::new()),
            "optics" => Method::Optics(Optics::new()),
            "agglomerative" | "ward" => Method::Agglomerative(Agglomerative::new(2)),
            "gmm" | "gaussian_mixture" => Method::GaussianMixture(GaussianMixture::new(1)),
            _ => {
                return Err(Error::UnknownName {
                    kind: "clustering method".into(),
                    name: name.into(),
                    valid: METHODS.join(", "),
                })
            }
        };
        for &(k, v) in params {
            m = match (m, k) {
                (Method::KMeans(p), "n_clusters") => Method::KMeans(p.n_clusters(int(k, v)?)),
                (Method::KMeans(p), "seed") => Method::KMeans(p.seed(int(k, v)? as u64)),
                (Method::KMeans(p), "max_iter") => Method::KMeans(p.max_iter(int(k, v)?)),
                (Method::KMeans(p), "n_init") => Method::KMeans(p.n_init(int(k, v)?)),
                (Method::KMeans(_), _) => {
                    return Err(unknown(k, "n_clusters, seed, max_iter, n_init"))
                }
                (Method::Dbscan(p), "eps") => Method::Dbscan(p.eps(num(k, v)?)),
                (Method::Dbscan(p), "min_samples") => Method::Dbscan(p.min_samples(int(k, v)?)),
                (Method::Dbscan(_), _) => return Err(unknown(k, "eps, min_samples")),
                (Method::Hdbscan(p), "min_cluster_size") => {
                    Method::Hdbscan(p.min_cluster_size(int(k, v)?))
                }
                (Method::Hdbscan(p), "min_samples") => Method::Hdbscan(p.min_samples(int(k, v)?)),
                (Method::Hdbscan(_), _) => return Err(unknown(k, "min_cluster_size, min_samples")),
                (Method::Optics(p), "min_samples") => Method::Optics(p.min_samples(int(k, v)?)),
                (Method::Optics(p), "xi") => Method::Optics(p.xi(num(k, v)?)),
                (Method::Optics(p), "max_eps") => Method::Optics(p.max_eps(num(k, v)?)),
                (Method::Optics(_), _) => return Err(unknown(k, "min_samples, xi, max_eps")),
                (Method::Agglomerative(p), "n_clusters") => {
                    Method::Agglomerative(p.n_clusters(int(k, v)?))
                }
                (Method::Agglomerative(p), "linkage") => {
                    Method::Agglomerative(p.linkage(Linkage::parse(v)?))
                }
                (Method::Agglomerative(_), _) => return Err(unknown(k, "n_clusters, linkage")),
                (Method::GaussianMixture(p), "n_components") => {
                    Method::GaussianMixture(p.n_components(int(k, v)?))
                }
                (Method::GaussianMixture(p), "seed") => {
                    Method::GaussianMixture(p.seed(int(k, v)? as u64))
                }
                (Method::GaussianMixture(p), "max_iter") => {
                    Method::GaussianMixture(p.max_iter(int(k, v)?))
                }
                (Method::GaussianMixture(_), _) => {
                    return Err(unknown(k, "n_components, seed, max_iter"))
                }
            };
        }
        Ok(m)
    }

    /// Fit and return the labels.
    pub fn fit_predict<S, T>(
        &self,
        x: &ndarray::ArrayBase<S, ndarray::Ix2>,
    ) -> crate::Result<Vec<i64>>
    where
        S: ndarray::Data<Elem = T>,
        T: super::Scalar,
    {
        Ok(match self {
            Method::KMeans(p) => p.fit(x)?.labels().to_vec(),
            Method::Dbscan(p) => p.fit(x)?.labels().to_vec(),
            Method::Hdbscan(p) => p.fit(x)?.labels().to_vec(),
            Method::Optics(p) => p.fit(x)?.labels().to_vec(),
            Method::Agglomerative(p) => p.fit(x)?.labels().to_vec(),
            Method::GaussianMixture(p) => p.fit(x)?.labels().to_vec(),
        })
    }

    /// The method's short name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::KMeans(_) => "kmeans",
            Method::Dbscan(_) => "dbscan",
            Method::Hdbscan(_) => "hdbscan",
            Method::Optics(_) => "optics",
            Method::Agglomerative(_) => "agglomerative",
            Method::GaussianMixture(_) => "gmm",
        }
    }
}
