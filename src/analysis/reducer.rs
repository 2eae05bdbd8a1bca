//! One dispatch from a name to a dimensionality reduction, shared by the chained
//! [`Analysis`](super::Analysis) and the command line (`neuroscope embed --method NAME`):
//! [`Reducer`] holds a configured estimator, as [`cluster::Method`](super::cluster::Method)
//! does for clusterings, and [`Reducer::parse`] builds one from a name and scikit-learn's /
//! umap-learn's parameter names.

use super::embed::{FittedTsne, FittedUmap, Tsne, TsneMethod, Umap, UmapMetric};
use super::neighbors::NeighborSearch;
use super::pca::{FittedPca, Pca, Solver};
use super::reduce::{FastIca, Isomap, Mds, Nmf, ProjectionKind, RandomProjection, TruncatedSvd};
use super::Scalar;
use crate::{Error, Result};
use ndarray::{Array2, ArrayBase, Data, Ix2};

/// A configured reduction: the estimator with its parameters.
///
/// ```
/// use neuroscope::analysis::Reducer;
/// let r = Reducer::parse("umap", &[("n_neighbors", "30"), ("min_dist", "0.3")])?;
/// assert_eq!(r.name(), "umap");
/// let t: Reducer = "tsne".parse()?;               // the estimator's defaults
/// assert!(matches!(t, Reducer::Tsne(_)));
/// let err = Reducer::parse("tsne", &[("n_epochs", "10")]).unwrap_err();
/// assert!(err.to_string().contains("perplexity"), "{err}");   // names what tsne takes
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub enum Reducer {
    /// t-SNE (scikit-learn's and openTSNE's parameters).
    Tsne(Tsne),
    /// UMAP (umap-learn's).
    Umap(Umap),
    /// PCA.
    Pca(Pca),
    /// Truncated SVD.
    TruncatedSvd(TruncatedSvd),
    /// FastICA.
    FastIca(FastIca),
    /// NMF (non-negative data only).
    Nmf(Nmf),
    /// Gaussian random projection.
    RandomProjection(RandomProjection),
    /// Isomap.
    Isomap(Isomap),
    /// Metric MDS (SMACOF).
    Mds(Mds),
}

/// The names [`Reducer::parse`] accepts.
pub const REDUCERS: &[&str] = &[
    "tsne",
    "umap",
    "pca",
    "truncated_svd",
    "fast_ica",
    "nmf",
    "random_projection",
    "isomap",
    "mds",
];

impl Reducer {
    /// t-SNE to 2-D with this perplexity (scikit-learn's other defaults).
    pub fn tsne(perplexity: f64) -> Reducer {
        Reducer::Tsne(Tsne::new().perplexity(perplexity))
    }
    /// UMAP to 2-D with this many neighbours (umap-learn's other defaults).
    pub fn umap(n_neighbors: usize) -> Reducer {
        Reducer::Umap(Umap::new().n_neighbors(n_neighbors))
    }
    /// PCA to `k` components.
    pub fn pca(k: usize) -> Reducer {
        Reducer::Pca(Pca::new().n_components(k))
    }
    /// Truncated SVD to `k` components.
    pub fn truncated_svd(k: usize) -> Reducer {
        Reducer::TruncatedSvd(TruncatedSvd::new(k))
    }
    /// FastICA with `k` components.
    pub fn fast_ica(k: usize) -> Reducer {
        Reducer::FastIca(FastIca::new(k))
    }
    /// NMF with `k` components.
    pub fn nmf(k: usize) -> Reducer {
        Reducer::Nmf(Nmf::new(k))
    }
    /// Gaussian random projection to `k` dimensions.
    pub fn random_projection(k: usize) -> Reducer {
        Reducer::RandomProjection(RandomProjection::new(k, ProjectionKind::Gaussian))
    }
    /// Isomap to `k` dimensions with `n_neighbors`.
    pub fn isomap(k: usize, n_neighbors: usize) -> Reducer {
        Reducer::Isomap(Isomap::new().n_components(k).n_neighbors(n_neighbors))
    }
    /// Metric MDS to `k` dimensions.
    pub fn mds(k: usize) -> Reducer {
        Reducer::Mds(Mds::new().n_components(k))
    }

    /// A reduction by name with `(parameter, value)` overrides of its defaults, in the
    /// peers' names: every method takes `n_components`; tsne `perplexity, early_exaggeration,
    /// learning_rate, max_iter, method (exact, barnes_hut, fft, auto), neighbor_search, seed,
    /// device`; umap `n_neighbors, min_dist, spread, metric, n_epochs, neighbor_search, seed,
    /// device`; pca `solver (auto, full, svd, randomized), seed`; truncated_svd, fast_ica and
    /// random_projection `seed`; isomap `n_neighbors`.
    pub fn parse(name: &str, params: &[(&str, &str)]) -> Result<Reducer> {
        use super::params::{int, num};
        let unknown = |k: &str, valid: &str| super::params::unknown(name, k, valid);
        let mut r = match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "tsne" | "t_sne" => Reducer::Tsne(Tsne::new()),
            "umap" => Reducer::Umap(Umap::new()),
            "pca" => Reducer::Pca(Pca::new()),
            "truncated_svd" | "svd" => Reducer::truncated_svd(2),
            "fast_ica" | "ica" => Reducer::fast_ica(2),
            "nmf" => Reducer::nmf(2),
            "random_projection" => Reducer::random_projection(2),
            "isomap" => Reducer::Isomap(Isomap::new()),
            "mds" => Reducer::Mds(Mds::new()),
            _ => {
                return Err(Error::UnknownName {
                    kind: "reduction method".into(),
                    name: name.into(),
                    valid: REDUCERS.join(", "),
                })
            }
        };
        for &(k, v) in params {
            r = match (r, k) {
                (Reducer::Tsne(t), "n_components") => Reducer::Tsne(t.dims(int(k, v)?)),
                (Reducer::Tsne(t), "perplexity") => Reducer::Tsne(t.perplexity(num(k, v)?)),
                (Reducer::Tsne(t), "early_exaggeration") => {
                    Reducer::Tsne(t.early_exaggeration(num(k, v)?))
                }
                (Reducer::Tsne(t), "learning_rate") => Reducer::Tsne(t.learning_rate(num(k, v)?)),
                (Reducer::Tsne(t), "max_iter") => Reducer::Tsne(t.max_iter(int(k, v)?)),
                (Reducer::Tsne(t), "method") => Reducer::Tsne(t.method(v.parse::<TsneMethod>()?)),
                (Reducer::Tsne(t), "neighbor_search") => {
                    Reducer::Tsne(t.neighbor_search(v.parse::<NeighborSearch>()?))
                }
                (Reducer::Tsne(t), "seed") => Reducer::Tsne(t.seed(int(k, v)? as u64)),
                (Reducer::Tsne(t), "device") => Reducer::Tsne(t.device(&crate::device::parse(v)?)),
                (Reducer::Tsne(_), _) => {
                    return Err(unknown(
                        k,
                        "n_components, perplexity, early_exaggeration, learning_rate, max_iter, \
                         method, neighbor_search, seed, device",
                    ))
                }
                (Reducer::Umap(u), "n_components") => Reducer::Umap(u.dims(int(k, v)?)),
                (Reducer::Umap(u), "n_neighbors") => Reducer::Umap(u.n_neighbors(int(k, v)?)),
                (Reducer::Umap(u), "min_dist") => Reducer::Umap(u.min_dist(num(k, v)?)),
                (Reducer::Umap(u), "spread") => Reducer::Umap(u.spread(num(k, v)?)),
                (Reducer::Umap(u), "metric") => Reducer::Umap(u.metric(v.parse::<UmapMetric>()?)),
                (Reducer::Umap(u), "n_epochs") => Reducer::Umap(u.n_epochs(int(k, v)?)),
                (Reducer::Umap(u), "neighbor_search") => {
                    Reducer::Umap(u.neighbor_search(v.parse::<NeighborSearch>()?))
                }
                (Reducer::Umap(u), "seed") => Reducer::Umap(u.seed(int(k, v)? as u64)),
                (Reducer::Umap(u), "device") => Reducer::Umap(u.device(&crate::device::parse(v)?)),
                (Reducer::Umap(_), _) => {
                    return Err(unknown(
                        k,
                        "n_components, n_neighbors, min_dist, spread, metric, n_epochs, \
                         neighbor_search, seed, device",
                    ))
                }
                (Reducer::Pca(p), "n_components") => Reducer::Pca(p.n_components(int(k, v)?)),
                (Reducer::Pca(p), "solver") => Reducer::Pca(p.solver(v.parse::<Solver>()?)),
                (Reducer::Pca(p), "seed") => Reducer::Pca(p.seed(int(k, v)? as u64)),
                (Reducer::Pca(_), _) => return Err(unknown(k, "n_components, solver, seed")),
                (Reducer::TruncatedSvd(p), "n_components") => {
                    Reducer::TruncatedSvd(p.n_components(int(k, v)?))
                }
                (Reducer::TruncatedSvd(p), "seed") => {
                    Reducer::TruncatedSvd(p.seed(int(k, v)? as u64))
                }
                (Reducer::TruncatedSvd(_), _) => return Err(unknown(k, "n_components, seed")),
                (Reducer::FastIca(p), "n_components") => {
                    Reducer::FastIca(p.n_components(int(k, v)?))
                }
                (Reducer::FastIca(p), "seed") => Reducer::FastIca(p.seed(int(k, v)? as u64)),
                (Reducer::FastIca(_), _) => return Err(unknown(k, "n_components, seed")),
                (Reducer::Nmf(p), "n_components") => Reducer::Nmf(p.n_components(int(k, v)?)),
                (Reducer::Nmf(_), _) => return Err(unknown(k, "n_components")),
                (Reducer::RandomProjection(p), "n_components") => {
                    Reducer::RandomProjection(p.n_components(int(k, v)?))
                }
                (Reducer::RandomProjection(p), "seed") => {
                    Reducer::RandomProjection(p.seed(int(k, v)? as u64))
                }
                (Reducer::RandomProjection(_), _) => return Err(unknown(k, "n_components, seed")),
                (Reducer::Isomap(p), "n_components") => Reducer::Isomap(p.n_components(int(k, v)?)),
                (Reducer::Isomap(p), "n_neighbors") => Reducer::Isomap(p.n_neighbors(int(k, v)?)),
                (Reducer::Isomap(_), _) => return Err(unknown(k, "n_components, n_neighbors")),
                (Reducer::Mds(p), "n_components") => Reducer::Mds(p.n_components(int(k, v)?)),
                (Reducer::Mds(_), _) => return Err(unknown(k, "n_components")),
            };
        }
        Ok(r)
    }

    /// The method's short name.
    pub fn name(&self) -> &'static str {
        match self {
            Reducer::Tsne(_) => "tsne",
            Reducer::Umap(_) => "umap",
            Reducer::Pca(_) => "pca",
            Reducer::TruncatedSvd(_) => "truncated_svd",
            Reducer::FastIca(_) => "fast_ica",
            Reducer::Nmf(_) => "nmf",
            Reducer::RandomProjection(_) => "random_projection",
            Reducer::Isomap(..) => "isomap",
            Reducer::Mds(_) => "mds",
        }
    }

    /// The same reduction with this random seed (methods without randomness: unchanged).
    pub fn seed(self, seed: u64) -> Reducer {
        match self {
            Reducer::Tsne(t) => Reducer::Tsne(t.seed(seed)),
            Reducer::Umap(u) => Reducer::Umap(u.seed(seed)),
            Reducer::Pca(p) => Reducer::Pca(p.seed(seed)),
            Reducer::TruncatedSvd(p) => Reducer::TruncatedSvd(p.seed(seed)),
            Reducer::FastIca(p) => Reducer::FastIca(p.seed(seed)),
            Reducer::RandomProjection(p) => Reducer::RandomProjection(p.seed(seed)),
            r @ (Reducer::Nmf(_) | Reducer::Isomap(_) | Reducer::Mds(_)) => r,
        }
    }

    /// Fits the reduction to the rows of `x`.
    ///
    /// ```
    /// use neuroscope::analysis::Reducer;
    /// let x = ndarray::Array2::from_shape_fn((30, 4), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
    /// let fitted = Reducer::pca(2).fit(&x)?;
    /// assert_eq!(fitted.embedding().dim(), (30, 2));
    /// let placed = fitted.transform(&x, &x.slice(ndarray::s![..5, ..]).to_owned())?;
    /// assert_eq!(placed.dim(), (5, 2));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn fit<S: Data<Elem = T>, T: Scalar>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<FittedReducer> {
        let coords = |method: &'static str, embedding: Array2<f64>| FittedReducer::Coordinates {
            method,
            embedding,
        };
        Ok(match self {
            Reducer::Tsne(t) => FittedReducer::Tsne(t.fit(x)?),
            Reducer::Umap(u) => FittedReducer::Umap(u.fit(x)?),
            Reducer::Pca(p) => {
                let fitted = p.fit(x)?;
                let embedding = fitted.transform(x)?;
                FittedReducer::Pca(fitted, embedding)
            }
            Reducer::TruncatedSvd(p) => coords("truncated_svd", p.fit(x)?.transform(x)?),
            Reducer::FastIca(p) => coords("fast_ica", p.fit(x)?.transform(x)?),
            Reducer::Nmf(p) => coords("nmf", p.fit(x)?.w().clone()),
            Reducer::RandomProjection(p) => coords("random_projection", p.fit_transform(x)?),
            Reducer::Isomap(p) => coords("isomap", p.fit_transform(x)?),
            Reducer::Mds(p) => coords("mds", p.fit(x)?.embedding().clone()),
        })
    }
}

impl std::str::FromStr for Reducer {
    type Err = Error;
    /// A reduction by name with its defaults ([`Reducer::parse`] without parameters).
    fn from_str(s: &str) -> Result<Reducer> {
        Reducer::parse(s, &[])
    }
}

/// A fitted reduction: its embedding of the training rows and, for t-SNE, UMAP and PCA, the
/// fitted model that places new rows ([`FittedReducer::transform`]).
#[derive(Debug, Clone)]
pub enum FittedReducer {
    /// t-SNE (openTSNE-style `transform`).
    Tsne(FittedTsne),
    /// UMAP (umap-learn's `transform`).
    Umap(FittedUmap),
    /// PCA and its projection of the training rows.
    Pca(FittedPca, Array2<f64>),
    /// A method that gives coordinates only.
    Coordinates {
        /// The method's name.
        method: &'static str,
        /// `samples x dims`.
        embedding: Array2<f64>,
    },
}

impl FittedReducer {
    /// `samples x dims` coordinates of the rows it was fitted on.
    pub fn embedding(&self) -> &Array2<f64> {
        match self {
            FittedReducer::Tsne(f) => f.embedding(),
            FittedReducer::Umap(f) => f.embedding(),
            FittedReducer::Pca(_, e) | FittedReducer::Coordinates { embedding: e, .. } => e,
        }
    }

    /// The coordinates, consuming the result.
    pub fn into_embedding(self) -> Array2<f64> {
        match self {
            FittedReducer::Tsne(f) => f.into_embedding(),
            FittedReducer::Umap(f) => f.into_embedding(),
            FittedReducer::Pca(_, e) | FittedReducer::Coordinates { embedding: e, .. } => e,
        }
    }

    /// Places `new` rows into the embedding without moving it (`x` is the data it was fitted
    /// on, which t-SNE and UMAP need): openTSNE's `transform`, umap-learn's, PCA's projection.
    /// Other methods have none and say so.
    pub fn transform<S, T, S2, T2>(
        &self,
        x: &ArrayBase<S, Ix2>,
        new: &ArrayBase<S2, Ix2>,
    ) -> Result<Array2<f64>>
    where
        S: Data<Elem = T>,
        T: Scalar,
        S2: Data<Elem = T2>,
        T2: Scalar,
    {
        match self {
            FittedReducer::Tsne(f) => f.transform(x, new),
            FittedReducer::Umap(f) => f.transform(x, new),
            FittedReducer::Pca(f, _) => f.transform(new),
            FittedReducer::Coordinates { method, .. } => Err(Error::InvalidArgument(format!(
                "{method} cannot place new samples into a fitted embedding; tsne, umap and pca can"
            ))),
        }
    }

    /// Whether a stop request ended the optimisation early (t-SNE, UMAP).
    pub fn interrupted(&self) -> bool {
        match self {
            FittedReducer::Tsne(f) => f.interrupted(),
            FittedReducer::Umap(f) => f.interrupted(),
            _ => false,
        }
    }

    /// How the nearest neighbours were found (t-SNE, UMAP).
    pub fn neighbor_search(&self) -> Option<NeighborSearch> {
        match self {
            FittedReducer::Tsne(f) => Some(f.neighbor_search()),
            FittedReducer::Umap(f) => Some(f.neighbor_search()),
            _ => None,
        }
    }
}
