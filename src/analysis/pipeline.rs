//! The chained analysis object: `reduce -> cluster -> score -> show`, per layer, remembering
//! every intermediate result so a notebook cell stays one line.

use super::cluster::Method;
use super::metrics;
use super::reducer::Reducer;
use crate::record::Recording;
use crate::{Error, Result};
use ndarray::Array2;
use std::collections::BTreeMap;

/// A reduced view of one layer.
#[derive(Debug, Clone)]
pub struct Embedding {
    /// Which method made it (`pca`, `isomap`, ...).
    pub method: String,
    /// `samples x dims` coordinates.
    pub coords: Array2<f64>,
}

/// Cluster labels of one layer.
#[derive(Debug, Clone)]
pub struct Clustering {
    /// Which method made them.
    pub method: String,
    /// Whether they were computed on the embedding (true) or the full data (false).
    pub on_embedding: bool,
    /// One label per sample, -1 for noise.
    pub labels: Vec<i64>,
}

/// One analysis over the layers of a recording (or one plain matrix), like interdim's pipeline.
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::{Analysis, cluster::{Method, KMeans}};
/// use neuroscope::analysis::Reducer;
/// // three well separated blobs in 5-D, 20 samples each
/// let x = Array2::from_shape_fn((60, 5), |(i, j)| (i / 20) as f64 * 10.0 + ((i * 7 + j * 3) % 5) as f64 * 0.1);
/// let labels: Vec<usize> = (0..60).map(|i| i / 20).collect();
/// let mut a = Analysis::from_matrix("blobs", x, Some(labels))?.seed(0);
/// a.reduce(Reducer::pca(2))?
///  .cluster(Method::KMeans(KMeans::new(3)))?
///  .score()?;
/// assert_eq!(a.score_of("blobs", "adjusted_rand"), Some(1.0));
/// assert!(a.to_html().contains("adjusted_rand"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Analysis {
    layers: Vec<String>,
    data: BTreeMap<String, Array2<f64>>,
    labels: Option<Vec<usize>>,
    class_names: Vec<String>,
    seed: u64,
    embeddings: BTreeMap<String, Embedding>,
    clusterings: BTreeMap<String, Clustering>,
    scores: BTreeMap<String, Vec<(String, f64)>>,
}

impl Analysis {
    /// Every layer of a recording (flattened to `samples x features`), with its labels.
    pub fn from_recording(rec: &Recording) -> Result<Self> {
        let mut data = BTreeMap::new();
        for l in &rec.layers {
            data.insert(l.clone(), rec.matrix(l)?.mapv(|v| v as f64));
        }
        Ok(Analysis {
            layers: rec.layers.clone(),
            data,
            labels: rec.labels.clone(),
            class_names: rec.class_names.clone(),
            seed: 0,
            embeddings: BTreeMap::new(),
            clusterings: BTreeMap::new(),
            scores: BTreeMap::new(),
        })
    }

    /// One named matrix (`samples x features`) with optional labels.
    pub fn from_matrix(name: &str, x: Array2<f64>, labels: Option<Vec<usize>>) -> Result<Self> {
        if let Some(l) = &labels {
            super::check_len("labels", l.len(), x.nrows())?;
        }
        Ok(Analysis {
            layers: vec![name.to_string()],
            data: BTreeMap::from([(name.to_string(), x)]),
            labels,
            class_names: Vec::new(),
            seed: 0,
            embeddings: BTreeMap::new(),
            clusterings: BTreeMap::new(),
            scores: BTreeMap::new(),
        })
    }

    /// Seed for every stochastic step that follows.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Restrict to these layers (in this order).
    pub fn layers(mut self, layers: &[&str]) -> Result<Self> {
        for l in layers {
            if !self.data.contains_key(*l) {
                return Err(Error::unknown("layer", l, self.layers.iter()));
            }
        }
        self.layers = layers.iter().map(|s| s.to_string()).collect();
        Ok(self)
    }

    /// Layer names in order.
    pub fn layer_names(&self) -> &[String] {
        &self.layers
    }

    /// Reduce every layer; later `cluster` calls use the embedding.
    pub fn reduce(&mut self, r: Reducer) -> Result<&mut Self> {
        for l in &self.layers {
            let coords = r
                .clone()
                .seed(self.seed)
                .fit(&self.data[l])
                .map_err(|e| annotate(l, e))?
                .into_embedding();
            self.embeddings.insert(
                l.clone(),
                Embedding {
                    method: r.name().into(),
                    coords,
                },
            );
        }
        Ok(self)
    }

    /// Set an embedding computed elsewhere (t-SNE, UMAP) for a layer.
    pub fn set_embedding(
        &mut self,
        layer: &str,
        method: &str,
        coords: Array2<f64>,
    ) -> Result<&mut Self> {
        let x = self
            .data
            .get(layer)
            .ok_or_else(|| Error::unknown("layer", layer, self.layers.iter()))?;
        super::check_len("embedding rows", coords.nrows(), x.nrows())?;
        self.embeddings.insert(
            layer.into(),
            Embedding {
                method: method.into(),
                coords,
            },
        );
        Ok(self)
    }

    /// Cluster every layer, on its embedding when there is one, else on the full data.
    pub fn cluster(&mut self, m: Method) -> Result<&mut Self> {
        for l in &self.layers {
            let (x, on_embedding) = match self.embeddings.get(l) {
                Some(e) => (&e.coords, true),
                None => (&self.data[l], false),
            };
            let labels = m.fit_predict(x).map_err(|e| annotate(l, e))?;
            self.clusterings.insert(
                l.clone(),
                Clustering {
                    method: m.name().into(),
                    on_embedding,
                    labels,
                },
            );
        }
        Ok(self)
    }

    /// Score every layer: the external scores of its clusters against the labels (when both
    /// exist), silhouette of the clusters in the space they were found in, and trustworthiness
    /// (k = 5) and 5-NN accuracy of the embedding.
    pub fn score(&mut self) -> Result<&mut Self> {
        for l in &self.layers {
            let mut s: Vec<(String, f64)> = Vec::new();
            if let (Some(c), Some(truth)) = (self.clusterings.get(l), &self.labels) {
                for (name, v) in metrics::external_scores(truth, &c.labels)? {
                    s.push((name.into(), v));
                }
            }
            if let Some(c) = self.clusterings.get(l) {
                let x = if c.on_embedding {
                    &self.embeddings[l].coords
                } else {
                    &self.data[l]
                };
                let k = super::cluster::count_clusters(&c.labels);
                s.push(("n_clusters".into(), k as f64));
                if k >= 2 && k < c.labels.len() {
                    s.push((
                        "silhouette".into(),
                        metrics::silhouette_score(x, &c.labels)?,
                    ));
                }
            }
            if let Some(e) = self.embeddings.get(l) {
                let n = e.coords.nrows();
                if n > 10 {
                    s.push((
                        "trustworthiness".into(),
                        metrics::trustworthiness(&self.data[l], &e.coords, 5)?,
                    ));
                }
                if let Some(truth) = &self.labels {
                    if n > 5 {
                        s.push((
                            "knn_accuracy".into(),
                            metrics::knn_accuracy(&e.coords, truth, 5)?,
                        ));
                    }
                }
            }
            self.scores.insert(l.clone(), s);
        }
        Ok(self)
    }

    /// The data of a layer.
    pub fn data(&self, layer: &str) -> Option<&Array2<f64>> {
        self.data.get(layer)
    }
    /// The true labels, if any.
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }
    /// Class names, if known.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }
    /// The embedding of a layer, if reduced.
    pub fn embedding(&self, layer: &str) -> Option<&Embedding> {
        self.embeddings.get(layer)
    }
    /// The clustering of a layer, if clustered.
    pub fn clustering(&self, layer: &str) -> Option<&Clustering> {
        self.clusterings.get(layer)
    }
    /// All scores of a layer.
    pub fn scores(&self, layer: &str) -> Option<&[(String, f64)]> {
        self.scores.get(layer).map(|v| v.as_slice())
    }
    /// One score of one layer.
    pub fn score_of(&self, layer: &str, name: &str) -> Option<f64> {
        self.scores
            .get(layer)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Scores as an HTML table: one row per layer, one column per score.
    pub fn to_html(&self) -> String {
        let mut names: Vec<String> = Vec::new();
        for l in &self.layers {
            for (n, _) in self.scores.get(l).into_iter().flatten() {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
        let mut h = String::from("<table class=\"neuroscope-analysis\"><thead><tr><th>layer</th><th>embedding</th><th>clusters</th>");
        for n in &names {
            h.push_str(&format!("<th>{}</th>", crate::display::escape(n)));
        }
        h.push_str("</tr></thead><tbody>");
        for l in &self.layers {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td>",
                crate::display::escape(l),
                self.embeddings
                    .get(l)
                    .map(|e| format!("{} ({}-d)", e.method, e.coords.ncols()))
                    .unwrap_or_else(|| "-".into()),
                self.clusterings
                    .get(l)
                    .map(|c| c.method.clone())
                    .unwrap_or_else(|| "-".into())
            ));
            for n in &names {
                let v = self.score_of(l, n);
                let cell = match v {
                    Some(v) if n == "n_clusters" => format!("{v:.0}"),
                    Some(v) => format!("{v:.4}"),
                    None => "-".into(),
                };
                h.push_str(&format!("<td>{cell}</td>"));
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>");
        h
    }

    /// Renders the score table inline in evcxr.
    pub fn evcxr_display(&self) {
        crate::display::evcxr_emit("text/html", &self.to_html());
    }
}

fn annotate(layer: &str, e: Error) -> Error {
    e.context(&format!("layer {layer}"))
}
