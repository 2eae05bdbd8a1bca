//! Recording what layers compute over a dataset: torch forward hooks plus the bookkeeping
//! every seed writes by hand (batches, labels, spatial means, unit subsampling, memory).
//!
//! ```
//! use neuroscope::data::{embedded, transforms::{Compose, Normalize}, Dataset};
//! use neuroscope::models::{load, Weights};
//! use neuroscope::record::{Recorder, Reduce};
//! let net = load("mnist_cnn", &Weights::Random { seed: 1 }, &neuroscope::device::Device::Cpu)?;
//! let ds = embedded::mnist().subset(100, 0)?;
//! let rec = Recorder::new(&net)
//!     .layers(&["conv1", "h5"])
//!     .reduce(Reduce::SpatialMean)
//!     .run(&ds, &Compose::new().normalize(Normalize::mnist()))?;
//! assert_eq!(rec.matrix("conv1")?.dim(), (100, 20));   // spatial mean of 20 channels
//! assert_eq!(rec.matrix("h5")?.dim(), (100, 500));     // no spatial dimensions to average
//! assert_eq!(rec.labels().unwrap().len(), 100);
//! # Ok::<(), neuroscope::Error>(())
//! ```

mod stream;
mod top;

pub use top::{Example, TopExamples, TopUnits, UnitScore};

use crate::data::{loader, Dataset, Transform};
use crate::models::Model;
use crate::progress::Progress;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use ndarray::{Array2, ArrayD, IxDyn};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Per layer, the shape kept for one sample after the reduction.
type LayerShapes = BTreeMap<String, Vec<usize>>;
/// Per layer, the flat indices of the units kept by unit subsampling.
type LayerUnits = BTreeMap<String, Vec<usize>>;

/// How a layer's output is reduced per sample before it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Keep the full output (`N x C x H x W`).
    None,
    /// Mean over the spatial dimensions (`N x C`), as workflow 1 does; outputs without spatial
    /// dimensions are kept as they are.
    SpatialMean,
    /// Flatten each sample (`N x (C*H*W)`).
    Flatten,
    /// The class token of a transformer's token output (`N x tokens x dim` -> `N x dim`, token
    /// 0, what the classifier reads); outputs that are not tokens are kept as they are.
    ClassToken,
    /// The mean over a transformer's tokens (`N x tokens x dim` -> `N x dim`), the analogue of
    /// the spatial mean; outputs that are not tokens are kept as they are.
    TokenMean,
    /// Flatten, then keep `n` units chosen at random with `seed` (the same units for every
    /// sample; workflow 2's `subsample=1000`). Layers with fewer units are kept whole.
    Subsample {
        /// Units to keep.
        n: usize,
        /// Seed of the choice.
        seed: u64,
    },
}

impl Reduce {
    /// Parses `none`, `mean`, `flatten`, `cls` (class token), `token_mean` (a subsample is
    /// given separately on the CLI).
    ///
    /// ```
    /// use neuroscope::record::Reduce;
    /// assert_eq!(Reduce::parse("cls")?, Reduce::ClassToken);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Reduce> {
        match s {
            "none" => Ok(Reduce::None),
            "mean" | "spatial_mean" => Ok(Reduce::SpatialMean),
            "flatten" => Ok(Reduce::Flatten),
            "cls" | "class_token" => Ok(Reduce::ClassToken),
            "token_mean" => Ok(Reduce::TokenMean),
            _ => Err(Error::unknown(
                "reduction",
                s,
                ["none", "mean", "flatten", "cls", "token_mean"],
            )),
        }
    }

    /// The kept per-sample shape for a per-sample output shape.
    fn kept_shape(&self, sample: &[usize]) -> Vec<usize> {
        let units: usize = sample.iter().product();
        match self {
            Reduce::None => sample.to_vec(),
            Reduce::SpatialMean if sample.len() >= 2 => vec![sample[0]],
            Reduce::SpatialMean => sample.to_vec(),
            Reduce::ClassToken | Reduce::TokenMean if sample.len() == 2 => vec![sample[1]],
            Reduce::ClassToken | Reduce::TokenMean => sample.to_vec(),
            Reduce::Flatten => vec![units],
            Reduce::Subsample { n, .. } => vec![units.min(*n)],
        }
    }
}

from_str_by_parse!(Reduce);

/// Activations of several layers for the same samples.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// Layer names in the order they were asked for.
    pub(crate) layers: Vec<String>,
    /// One array per layer, first axis the sample.
    pub(crate) data: BTreeMap<String, ArrayD<f32>>,
    /// For subsampled layers, the kept unit indices into the flattened output.
    pub(crate) units: BTreeMap<String, Vec<usize>>,
    /// Class labels of the samples, when recorded from a dataset.
    pub(crate) labels: Option<Vec<usize>>,
    /// Class names, when recorded from a dataset.
    pub(crate) class_names: Vec<String>,
    /// Indices of the samples in the dataset.
    pub(crate) indices: Vec<usize>,
    /// The (transformed) input images, if asked for.
    pub(crate) images: Option<ArrayD<f32>>,
    /// Whether a stop request ([`crate::progress::request_stop`], Ctrl-C in the CLI) ended
    /// the recording early: it then holds the samples of the batches done, in order.
    pub(crate) interrupted: bool,
}

impl Recording {
    /// A recording built from arrays (one per layer, first axis the sample, the same number of
    /// samples in each), in the given layer order: for analyses of activations computed
    /// elsewhere.
    ///
    /// ```
    /// use neuroscope::record::Recording;
    /// let rec = Recording::from_layers(vec![
    ///     ("b".into(), ndarray::ArrayD::ones(vec![2, 4])),
    ///     ("a".into(), ndarray::ArrayD::zeros(vec![2, 3])),
    /// ])?
    /// .with_labels(vec![1, 0], vec!["zero".into(), "one".into()])?;
    /// assert_eq!(rec.layer_names(), ["b", "a"]);
    /// assert_eq!(rec.layer("a")?.shape(), &[2, 3]);
    /// assert_eq!(rec.labels(), Some(&[1, 0][..]));
    /// assert!(Recording::from_layers(vec![
    ///     ("a".into(), ndarray::ArrayD::zeros(vec![2, 3])),
    ///     ("b".into(), ndarray::ArrayD::zeros(vec![5, 3])),
    /// ]).is_err());
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn from_layers(layers: Vec<(String, ArrayD<f32>)>) -> Result<Recording> {
        let mut rec = Recording::default();
        for (name, a) in layers {
            let n = a.shape().first().copied().unwrap_or(0);
            if !rec.data.is_empty() && n != rec.len() {
                return Err(Error::Shape {
                    what: format!("layer {name}"),
                    expected: format!("{} samples (as the layers before it)", rec.len()),
                    got: format!("{n} samples"),
                });
            }
            if rec.data.insert(name.clone(), a).is_some() {
                return Err(Error::InvalidArgument(format!(
                    "layer {name} is given twice"
                )));
            }
            rec.layers.push(name);
        }
        rec.indices = (0..rec.len()).collect();
        Ok(rec)
    }

    /// The same recording with class labels (one per sample, each below the number of class
    /// names, when names are given).
    pub fn with_labels(
        mut self,
        labels: Vec<usize>,
        class_names: Vec<String>,
    ) -> Result<Recording> {
        if labels.len() != self.len() {
            return Err(Error::Shape {
                what: "labels".into(),
                expected: format!("{} (one per sample)", self.len()),
                got: labels.len().to_string(),
            });
        }
        if let Some(&bad) = labels
            .iter()
            .find(|&&l| !class_names.is_empty() && l >= class_names.len())
        {
            return Err(Error::InvalidArgument(format!(
                "label {bad} with {} class names",
                class_names.len()
            )));
        }
        self.labels = Some(labels);
        self.class_names = class_names;
        Ok(self)
    }

    /// The recording restricted to `layers`, in that order (the RSA of chosen layers).
    ///
    /// ```
    /// use neuroscope::record::Recording;
    /// let rec = Recording::from_layers(vec![
    ///     ("a".into(), ndarray::ArrayD::zeros(vec![2, 3])),
    ///     ("b".into(), ndarray::ArrayD::ones(vec![2, 4])),
    /// ])?;
    /// assert_eq!(rec.select(&["b"])?.layer_names(), ["b"]);
    /// assert!(rec.select(&["c"]).unwrap_err().to_string().contains("a, b"));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn select(&self, layers: &[&str]) -> Result<Recording> {
        let mut out = self.clone();
        out.layers.clear();
        out.data.clear();
        out.units.clear();
        for &l in layers {
            let a = self.layer(l)?;
            out.data.insert(l.to_string(), a.clone());
            if let Some(u) = self.units.get(l) {
                out.units.insert(l.to_string(), u.clone());
            }
            out.layers.push(l.to_string());
        }
        Ok(out)
    }

    /// Layer names in the order they were asked for.
    pub fn layer_names(&self) -> &[String] {
        &self.layers
    }

    /// One layer's activations, first axis the sample (an unknown name lists the recorded ones).
    pub fn layer(&self, name: &str) -> Result<&ArrayD<f32>> {
        self.data
            .get(name)
            .ok_or_else(|| Error::unknown("recorded layer", name, self.layers.iter()))
    }

    /// For a subsampled layer, the kept unit indices into its flattened output.
    pub fn units(&self, layer: &str) -> Option<&[usize]> {
        self.units.get(layer).map(Vec::as_slice)
    }

    /// Class labels of the samples, when recorded from a dataset.
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }

    /// Class names, when recorded from a dataset.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Indices of the samples in the dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The (transformed) input images, when [`Recorder::keep_images`] asked for them.
    pub fn images(&self) -> Option<&ArrayD<f32>> {
        self.images.as_ref()
    }

    /// Whether a stop request ([`crate::progress::request_stop`], Ctrl-C in the CLI) ended
    /// the recording early: it then holds the samples of the batches done, in order.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// The activations of `layer` as a `samples x features` matrix (flattening every other axis).
    pub fn matrix(&self, layer: &str) -> Result<Array2<f32>> {
        let a = self.layer(layer)?;
        let n = a.shape()[0];
        let f = a.len() / n.max(1);
        Ok(a.view()
            .into_shape_with_order((n, f))
            .map_err(|e| Error::InvalidArgument(e.to_string()))?
            .to_owned())
    }

    /// A table of what was recorded: layer, shape, units kept, mean, share of positive values
    /// (the recording's inline display in a notebook).
    ///
    /// ```
    /// use neuroscope::{data::{embedded, Dataset}, models::{self, Weights}, record::{Recorder, Reduce}};
    /// let net = models::load("mnist_cnn", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
    /// let ds = embedded::mnist().subset(8, 0)?;
    /// let rec = Recorder::new(&net).layers(&["h1", "h6"]).reduce(Reduce::None).progress(false)
    ///     .run(&ds, &models::default_transform("mnist_cnn"))?;
    /// let html = rec.to_html();
    /// assert!(html.contains("8 x 20 x 24 x 24") && html.contains("h6"));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn to_html(&self) -> String {
        use crate::display::escape;
        let mut rows = String::new();
        for l in &self.layers {
            let Some(a) = self.data.get(l) else { continue };
            let shape: Vec<String> = a.shape().iter().map(|d| d.to_string()).collect();
            let n = a.len().max(1) as f64;
            let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n;
            let pos = a.iter().filter(|&&v| v > 0.0).count() as f64 / n;
            rows.push_str(&format!(
                "<tr><td style=\"text-align:left\"><code>{}</code></td><td>{}</td><td>{:.4}</td><td>{:.1}%</td></tr>",
                escape(l),
                shape.join(" x "),
                mean,
                100.0 * pos
            ));
        }
        format!(
            "<table class=\"ns-recording\" style=\"border-collapse:collapse;font:13px sans-serif\">\
             <caption style=\"font-weight:bold\">Recording: {} samples{}</caption>\
             <tr><th>layer</th><th>shape</th><th>mean</th><th>positive</th></tr>{rows}</table>",
            self.len(),
            if self.labels.is_some() { ", labelled" } else { "" }
        )
    }

    /// Renders the [`to_html`](Recording::to_html) table inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        crate::display::evcxr_emit("text/html", &self.to_html());
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.data.values().next().map_or(0, |a| a.shape()[0])
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Saves one `f32` tensor per layer, plus `labels` (int64) when present, as
    /// `.safetensors` (loadable with `safetensors.numpy.load_file`). The layer order and the
    /// class names go into the file's metadata (`layers`, `class_names`, JSON lists).
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        use crate::io::tensors::{Array, Tensors};
        let mut t = Tensors::default();
        for (k, a) in &self.data {
            t.insert(k.clone(), Array::F32(a.clone()));
        }
        if let Some(l) = &self.labels {
            t.insert(
                "labels",
                Array::I64(ndarray::Array1::from_iter(l.iter().map(|&x| x as i64)).into_dyn()),
            );
        }
        t.metadata
            .insert("layers".into(), crate::io::tensors::json_list(&self.layers));
        if !self.class_names.is_empty() {
            t.metadata.insert(
                "class_names".into(),
                crate::io::tensors::json_list(&self.class_names),
            );
        }
        t.save(path)
    }

    /// Reads a recording written by [`save_safetensors`](Self::save_safetensors) (or any
    /// safetensors file of per-layer arrays: without `layers` metadata, every tensor but
    /// `labels` is a layer, in name order).
    ///
    /// ```
    /// use neuroscope::record::Recording;
    /// let r = Recording::from_layers(vec![
    ///     ("b".into(), ndarray::ArrayD::ones(vec![2, 4])),
    ///     ("a".into(), ndarray::ArrayD::zeros(vec![2, 3])),
    /// ])?
    /// .with_labels(vec![1, 0], vec![])?;
    /// let path = std::env::temp_dir().join("neuroscope-doc-rec.safetensors");
    /// r.save_safetensors(&path)?;
    /// let back = Recording::load_safetensors(&path)?;
    /// assert_eq!(back.layer_names(), ["b", "a"]);
    /// assert_eq!(back.labels(), Some(&[1, 0][..]));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Recording> {
        let path = path.as_ref();
        let t = crate::io::tensors::Tensors::load(path)?;
        let layers: Vec<String> = match t.metadata.get("layers") {
            Some(s) => crate::io::tensors::parse_json_list(s).ok_or_else(|| {
                Error::format(path, "metadata `layers` is not a JSON list of strings")
            })?,
            None => t
                .names()
                .into_iter()
                .filter(|n| *n != "labels")
                .map(String::from)
                .collect(),
        };
        let mut rec = Recording {
            layers: layers.clone(),
            ..Default::default()
        };
        for l in &layers {
            let a = t.f64(l).map_err(|_| {
                Error::format(
                    path,
                    format!("layer {l} is listed in the metadata but not stored"),
                )
            })?;
            rec.data.insert(l.clone(), a.mapv(|v| v as f32));
        }
        if t.arrays.contains_key("labels") {
            let l = t.i64("labels")?;
            if l.iter().any(|&v| v < 0) {
                return Err(Error::format(path, "labels must be non-negative"));
            }
            rec.labels = Some(l.iter().map(|&v| v as usize).collect());
        }
        if let Some(c) = t.metadata.get("class_names") {
            rec.class_names = crate::io::tensors::parse_json_list(c).unwrap_or_default();
        }
        rec.indices = (0..rec.len()).collect();
        Ok(rec)
    }

    /// Saves `<layer>.npy` for every layer (dots kept in the name) and `labels.npy` into `dir`.
    pub fn save_npy(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for (k, a) in &self.data {
            crate::io::npy::write(dir.join(format!("{k}.npy")), a)?;
        }
        if let Some(l) = &self.labels {
            crate::io::npy::write_labels(dir.join("labels.npy"), l)?;
        }
        Ok(())
    }
}

/// Records chosen layers over a dataset or a tensor, batch by batch (a builder).
#[derive(Debug)]
pub struct Recorder<'m> {
    model: &'m Model,
    layers: Vec<String>,
    reduce: Reduce,
    per_layer: HashMap<String, Reduce>,
    batch_size: usize,
    keep_images: bool,
    budget_bytes: Option<u64>,
    progress: bool,
    /// Chosen by [`Recorder::all_layers`]: leave out the modules the forward pass never runs.
    skip_idle: bool,
}

impl<'m> Recorder<'m> {
    /// A recorder for `model`; choose layers with [`layers`](Recorder::layers).
    pub fn new(model: &'m Model) -> Self {
        Recorder {
            model,
            layers: Vec::new(),
            reduce: Reduce::None,
            per_layer: HashMap::new(),
            batch_size: 64,
            keep_images: false,
            budget_bytes: None,
            progress: true,
            skip_idle: false,
        }
    }
    /// The layers to record (module names or taps; `Model::layer_names` lists them).
    pub fn layers(mut self, layers: &[&str]) -> Self {
        self.layers = layers.iter().map(|s| s.to_string()).collect();
        self.skip_idle = false;
        self
    }
    /// Every module of the model, in PyTorch's `named_modules()` order (the root excluded),
    /// containers included (`features`, ResNet's `layer1`..`layer4` and their blocks), as the
    /// README and thingsvision's "all modules" promise; a container's output is its last
    /// child's, so use [`layers`](Self::layers) to leave them out. Modules that the forward
    /// pass never runs are left out, as PyTorch's hooks on them never fire: EfficientNet's
    /// first blocks, for one, have a `stochastic_depth` but no residual connection to apply it
    /// to (asked for by name, such a module is an error that says so).
    ///
    /// ```
    /// use neuroscope::{models::{self, Weights}, record::Recorder};
    /// let net = models::load("resnet18", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
    /// let x = candle_core::Tensor::zeros((1, 3, 64, 64), candle_core::DType::F32, &candle_core::Device::Cpu)?;
    /// let rec = Recorder::new(&net).all_layers().reduce(neuroscope::record::Reduce::SpatialMean)
    ///     .progress(false).run_tensor(&x)?;
    /// assert!(rec.matrix("layer1").is_ok() && rec.matrix("layer1.0.conv1").is_ok());
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn all_layers(mut self) -> Self {
        self.layers = self.model.layers().into_iter().map(|l| l.name).collect();
        self.skip_idle = true;
        self
    }
    /// The reduction for every layer (default: none).
    pub fn reduce(mut self, r: Reduce) -> Self {
        self.reduce = r;
        self
    }
    /// A different reduction for one layer.
    pub fn reduce_layer(mut self, layer: &str, r: Reduce) -> Self {
        self.per_layer.insert(layer.to_string(), r);
        self
    }
    /// Samples per forward pass (default 64).
    pub fn batch_size(mut self, b: usize) -> Self {
        self.batch_size = b; // 0 is refused when the recording starts
        self
    }
    /// Keep the transformed input images too (workflow 1's interactive scatter shows them).
    pub fn keep_images(mut self, keep: bool) -> Self {
        self.keep_images = keep;
        self
    }
    /// Refuse to start when the recording would need more than `mb` megabytes.
    pub fn memory_budget_mb(mut self, mb: u64) -> Self {
        self.budget_bytes = Some(mb * 1024 * 1024);
        self
    }
    /// Show a progress line on stderr (default on; `NEUROSCOPE_QUIET` silences it).
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    fn reduce_for(&self, layer: &str) -> Reduce {
        self.per_layer.get(layer).copied().unwrap_or(self.reduce)
    }

    /// The layers to record, their kept shapes from one sample, the unit choice, and the
    /// memory check.
    fn plan(&self, sample: &Tensor, n: usize) -> Result<(Vec<String>, LayerShapes, LayerUnits)> {
        if self.batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch size 0: give at least 1 sample per forward pass".into(),
            ));
        }
        if n == 0 {
            return Err(Error::InvalidArgument(
                "nothing to record: the input has 0 samples".into(),
            ));
        }
        for name in &self.layers {
            if let Reduce::Subsample { n: 0, .. } = self.reduce_for(name) {
                return Err(Error::InvalidArgument(format!(
                    "subsample 0 units of {name} would record nothing: keep at least 1"
                )));
            }
        }
        if self.layers.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "no layers chosen; pick some of: {}",
                self.model.layer_names().join(", ")
            )));
        }
        let valid = self.model.layer_names();
        if let Some(bad) = self.layers.iter().find(|l| !valid.contains(l)) {
            return Err(Error::unknown("layer", bad, &valid));
        }
        // images may come from the CPU for a model on a GPU, as every batch does
        let sample = sample.to_device(self.model.device())?;
        // One pass over every module: the recorded layers' shapes, and the widest output for
        // the memory estimate of a batch.
        let outs = self.model.record_all(&sample)?;
        let layers: Vec<String> = if self.skip_idle {
            let ran = self.layers.iter().filter(|l| outs.contains_key(*l));
            ran.cloned().collect()
        } else {
            self.layers.clone()
        };
        let out = |name: &str| {
            outs.get(name).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "layer {name} produced no output for a sample: the network has this module \
                     but its forward pass does not run it (a PyTorch hook on it would never \
                     fire); leave it out"
                ))
            })
        };
        let mut shapes = BTreeMap::new();
        let mut units = BTreeMap::new();
        let mut bytes = 0u64;
        for name in &layers {
            let per_sample = &out(name)?.dims()[1..];
            let r = self.reduce_for(name);
            let kept = r.kept_shape(per_sample);
            if let Reduce::Subsample { n: k, seed } = r {
                let total: usize = per_sample.iter().product();
                if k < total {
                    let mut idx = Rng::new(seed).sample_indices(total, k).unwrap_or_default();
                    idx.sort_unstable();
                    units.insert(name.clone(), idx);
                }
            }
            bytes += kept.iter().product::<usize>() as u64 * n as u64 * 4;
            shapes.insert(name.clone(), kept);
        }
        let per_layer_mb = || {
            shapes
                .iter()
                .map(|(k, s): (&String, &Vec<usize>)| {
                    format!(
                        "{k}: {:.1} MB",
                        (s.iter().product::<usize>() * n * 4) as f64 / 1048576.0
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        // One forward pass of a batch holds the recorded outputs plus a few live
        // activations at a time; the largest module output, six times over, per sample in the
        // batch, bounds that (a huge --batch-size is refused here, not by the allocator).
        let widest = outs.values().map(|t| t.elem_count()).max().unwrap_or(0);
        let recorded = layers
            .iter()
            .map(|l| out(l).map(|t| t.elem_count()))
            .sum::<Result<usize>>()?;
        let batch_bytes = (self.batch_size.min(n) * (6 * widest + recorded) * 4) as u64;
        if self.budget_bytes.is_none() {
            // No budget given: what the machine can hold (issue: `--layers all --reduce none`
            // on ResNet-50 used to reserve 275 GB and grow until the machine ran out).
            // Twice the buffers: the arrays are copied once more when a recording is saved.
            // The recording first: when both are too large, it is the one to change.
            crate::device::check_memory(
                2 * bytes,
                &format!("recording {n} samples ({})", per_layer_mb()),
                "reduce each layer (Reduce::SpatialMean, --reduce mean; Reduce::Subsample, \
                 --subsample N), record fewer layers or fewer samples, or stream the recording \
                 to disk in shards (Recorder::run_to_disk, --shard-samples N)",
            )?;
            crate::device::check_memory(
                batch_bytes,
                &format!(
                    "a forward pass over batches of {} samples through {}",
                    self.batch_size.min(n),
                    self.model.arch()
                ),
                "a smaller batch size (--batch-size)",
            )?;
        }
        if let Some(budget) = self.budget_bytes {
            if bytes > budget {
                let per_layer: Vec<String> = shapes
                    .iter()
                    .map(|(k, s)| {
                        format!(
                            "{k}: {:.1} MB",
                            (s.iter().product::<usize>() * n * 4) as f64 / 1048576.0
                        )
                    })
                    .collect();
                return Err(Error::InvalidArgument(format!(
                    "recording {n} samples would take {:.1} MB, over the budget of {:.1} MB ({}); \
                     use Reduce::SpatialMean or Reduce::Subsample, fewer layers or fewer samples",
                    bytes as f64 / 1048576.0,
                    budget as f64 / 1048576.0,
                    per_layer.join(", ")
                )));
            }
        }
        Ok((layers, shapes, units))
    }

    fn reduce_batch(&self, name: &str, t: &Tensor, units: Option<&Vec<usize>>) -> Result<Vec<f32>> {
        let t = match self.reduce_for(name) {
            Reduce::SpatialMean if t.rank() >= 3 => t.flatten_from(2)?.mean(2)?,
            Reduce::ClassToken if t.rank() == 3 => t.narrow(1, 0, 1)?.squeeze(1)?,
            Reduce::TokenMean if t.rank() == 3 => t.mean(1)?,
            _ => t.clone(),
        };
        let flat: Vec<f32> = t.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        Ok(match units {
            Some(idx) => {
                let per = flat.len() / t.dim(0)?;
                flat.chunks(per)
                    .flat_map(|row| idx.iter().map(move |&i| row[i]))
                    .collect()
            }
            None => flat,
        })
    }

    /// Runs one batch and appends each layer's reduced output to its buffer.
    fn record_batch(
        &self,
        x: &Tensor,
        names: &[&str],
        units: &BTreeMap<String, Vec<usize>>,
        buffers: &mut BTreeMap<String, Vec<f32>>,
    ) -> Result<()> {
        let outs = self.model.record(x, names)?;
        for &name in names {
            let missing =
                || Error::InvalidArgument(format!("layer {name} produced no output in this batch"));
            let out = outs.get(name).ok_or_else(missing)?;
            let v = self.reduce_batch(name, out, units.get(name))?;
            buffers.get_mut(name).ok_or_else(missing)?.extend(v);
        }
        Ok(())
    }

    /// Records over `dataset`, each sample passed through `transform`.
    pub fn run<D: Dataset + ?Sized>(
        &self,
        dataset: &D,
        transform: &dyn Transform,
    ) -> Result<Recording> {
        let n = dataset.len();
        if n == 0 {
            return Err(Error::InvalidArgument(format!(
                "{} has no samples",
                dataset.name()
            )));
        }
        let first = loader::make_batch(dataset, transform, [0], self.model.device())?;
        let (layers, shapes, units) = self.plan(&first.images, n)?;
        let mut buffers: BTreeMap<String, Vec<f32>> = shapes
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    Vec::with_capacity(n * s.iter().product::<usize>()),
                )
            })
            .collect();
        let mut images: Vec<f32> = Vec::new();
        let mut labels = Vec::with_capacity(n);
        let mut indices = Vec::with_capacity(n);
        let mut progress = self.progress.then(|| {
            Progress::new(
                format!("recording {} [{}]", self.model.arch(), layers.join(", ")),
                n,
            )
        });
        let names: Vec<&str> = layers.iter().map(String::as_str).collect();
        for batch in loader::batches(dataset, transform, self.batch_size, self.model.device()) {
            let batch = batch?;
            self.record_batch(&batch.images, &names, &units, &mut buffers)?;
            if self.keep_images {
                images.extend(
                    batch
                        .images
                        .to_device(&Device::Cpu)?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                );
            }
            if let Some(p) = progress.as_mut() {
                p.inc(batch.labels.len());
            }
            labels.extend(batch.labels);
            indices.extend(batch.indices);
            if labels.len() < n && crate::progress::take_stop_request() {
                break;
            }
        }
        if let Some(p) = progress.as_mut() {
            p.finish();
        }
        // A stop request keeps the samples of the batches done.
        let done = labels.len();
        let mut rec = assemble(layers, shapes, buffers, units, done)?;
        rec.interrupted = done < n;
        if self.keep_images {
            let mut dims = vec![done];
            dims.extend_from_slice(&first.images.dims()[1..]);
            rec.images = Some(
                ArrayD::from_shape_vec(IxDyn(&dims), images)
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?,
            );
        }
        rec.labels = Some(labels);
        rec.class_names = dataset.class_names();
        rec.indices = indices;
        Ok(rec)
    }

    /// Records over an `N x C x H x W` tensor (already transformed).
    pub fn run_tensor(&self, x: &Tensor) -> Result<Recording> {
        let n = x.dim(0)?;
        let (layers, shapes, units) = self.plan(&x.narrow(0, 0, 1.min(n))?, n)?;
        let mut buffers: BTreeMap<String, Vec<f32>> =
            shapes.keys().map(|k| (k.clone(), Vec::new())).collect();
        let names: Vec<&str> = layers.iter().map(String::as_str).collect();
        let mut progress = self
            .progress
            .then(|| Progress::new(format!("recording {}", self.model.arch()), n));
        let mut done = 0;
        while done < n {
            if done > 0 && crate::progress::take_stop_request() {
                break;
            }
            let len = self.batch_size.min(n - done);
            let xb = x.narrow(0, done, len)?.to_device(self.model.device())?;
            self.record_batch(&xb, &names, &units, &mut buffers)?;
            if let Some(p) = progress.as_mut() {
                p.inc(len);
            }
            done += len;
        }
        if let Some(p) = progress.as_mut() {
            p.finish();
        }
        let mut rec = assemble(layers, shapes, buffers, units, done)?;
        rec.interrupted = done < n;
        rec.indices = (0..done).collect();
        Ok(rec)
    }
}

/// The recording of `n` samples from the per-layer buffers.
fn assemble(
    layers: Vec<String>,
    shapes: LayerShapes,
    mut buffers: BTreeMap<String, Vec<f32>>,
    units: LayerUnits,
    n: usize,
) -> Result<Recording> {
    let mut data = BTreeMap::new();
    for (name, s) in shapes {
        let mut dims = vec![n];
        dims.extend(s);
        let v = buffers.remove(&name).unwrap_or_default();
        data.insert(
            name,
            ArrayD::from_shape_vec(IxDyn(&dims), v)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?,
        );
    }
    Ok(Recording {
        layers,
        data,
        units,
        ..Recording::default()
    })
}
