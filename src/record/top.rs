//! What does a unit respond to: the dataset images that excite each channel of a layer most
//! (and least), with the channel's activation map over each, in one pass over the dataset for
//! all channels and memory bounded by `2 k` maps per channel (issue 27's "top examples").

use crate::data::{batches, Compose, Dataset};
use crate::models::Model;
use crate::progress::Progress;
use crate::{Error, Result};
use candle_core::DType;
use ndarray::Array2;
use std::ops::Range;

/// How a channel's map is reduced to one score per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnitScore {
    /// The spatial mean (the channel objective of feature visualisation).
    #[default]
    Mean,
    /// The largest value (the neuron that fires most).
    Max,
}

/// One example of a unit: which image, its score, the channel's map over it (`h x w`).
#[derive(Clone, Debug)]
pub struct Example {
    /// The image's index in the dataset.
    pub index: usize,
    /// Its score for the channel.
    pub score: f32,
    /// The channel's activation map over the image.
    pub map: Array2<f32>,
}

/// The `k` highest and lowest scoring images of each channel.
#[derive(Clone, Debug)]
pub struct TopUnits {
    /// The layer.
    pub layer: String,
    /// The channels, in order.
    pub channels: Vec<usize>,
    /// Per channel, the highest scores first.
    pub top: Vec<Vec<Example>>,
    /// Per channel, the lowest scores first.
    pub bottom: Vec<Vec<Example>>,
    /// Every image's score, per channel (for histograms): `channels x images`.
    pub scores: Array2<f32>,
}

/// Settings of a top-examples pass (a builder; [`TopExamples::run`] does the pass).
///
/// ```
/// use neuroscope::record::{TopExamples, UnitScore};
/// use neuroscope::data::{embedded, Dataset};
/// let net = neuroscope::models::load("mnist_cnn", &neuroscope::models::Weights::Trained,
///     &neuroscope::device::Device::Cpu)?;
/// let ds = embedded::mnist().subset(200, 0)?;
/// let top = TopExamples::new("conv2").channels(0..4).k(5).score(UnitScore::Max).progress(false)
///     .run(&net, &ds, &neuroscope::models::default_transform("mnist_cnn"))?;
/// assert_eq!(top.top.len(), 4);
/// assert!(top.top[0].windows(2).all(|w| w[0].score >= w[1].score));
/// assert!(top.top[0][0].score >= top.bottom[0][0].score);
/// assert_eq!(top.top[0][0].map.dim(), (8, 8));                   // conv2's map
/// assert_eq!(top.scores.dim(), (4, 200));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TopExamples {
    layer: String,
    channels: Option<Range<usize>>,
    k: usize,
    score: UnitScore,
    batch_size: usize,
    progress: bool,
}

impl TopExamples {
    /// The 9 top and bottom images by spatial mean for every channel of `layer`, 64 images per
    /// forward pass.
    pub fn new(layer: &str) -> Self {
        TopExamples {
            layer: layer.into(),
            channels: None,
            k: 9,
            score: UnitScore::Mean,
            batch_size: 64,
            progress: true,
        }
    }
    /// Only these channels.
    pub fn channels(mut self, channels: Range<usize>) -> Self {
        self.channels = Some(channels);
        self
    }
    /// Images kept per channel and end.
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
    /// How a map becomes a score.
    pub fn score(mut self, s: UnitScore) -> Self {
        self.score = s;
        self
    }
    /// Images per forward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Show a progress line.
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// One pass over `dataset` (through `transform`). Ties keep the lower dataset index first,
    /// so the result does not depend on the batch size.
    pub fn run<D: Dataset + ?Sized>(
        &self,
        model: &Model,
        dataset: &D,
        transform: &Compose,
    ) -> Result<TopUnits> {
        if self.k == 0 || self.batch_size == 0 {
            return Err(Error::InvalidArgument(format!(
                "k {} and batch size {}: give at least 1 each",
                self.k, self.batch_size
            )));
        }
        let n = dataset.len();
        if n == 0 {
            return Err(Error::InvalidArgument("the dataset is empty".into()));
        }
        // The layer's shape from the first image: unknown layers and non-spatial ones refused.
        let first = batches(dataset, transform, 1, model.device())
            .next()
            .ok_or_else(|| Error::InvalidArgument("the dataset is empty".into()))??;
        let probe = model.record(&first.images, &[&self.layer])?;
        let dims = probe
            .get(&self.layer)
            .map(|t| t.dims().to_vec())
            .unwrap_or_default();
        if dims.len() != 4 {
            return Err(Error::InvalidArgument(format!(
                "top examples need a layer with channels and a map (N x C x h x w); {} of {} gives {:?}",
                self.layer,
                model.arch(),
                dims
            )));
        }
        let (c, h, w) = (dims[1], dims[2], dims[3]);
        let channels: Vec<usize> = match &self.channels {
            Some(r) if r.start >= r.end || r.end > c => {
                return Err(Error::InvalidArgument(format!(
                    "channels {}..{}: {} has {c} channels (0..{c})",
                    r.start, r.end, self.layer
                )))
            }
            Some(r) => r.clone().collect(),
            None => (0..c).collect(),
        };
        let mut top: Vec<Vec<Example>> = vec![Vec::new(); channels.len()];
        let mut bottom: Vec<Vec<Example>> = vec![Vec::new(); channels.len()];
        let mut scores = Array2::<f32>::zeros((channels.len(), n));
        let mut column = 0;
        let mut bar = self
            .progress
            .then(|| Progress::new(format!("top examples of {}", self.layer), n));
        // Keeps `list` sorted best first by `better`, at most k long; ties: lower index first.
        let keep =
            |list: &mut Vec<Example>, e: &Example, better: &dyn Fn(f32, f32) -> bool, k: usize| {
                let pos = list
                    .iter()
                    .position(|o| better(e.score, o.score))
                    .unwrap_or(list.len());
                if pos < k {
                    list.insert(pos, e.clone());
                    list.truncate(k);
                }
            };
        for batch in batches(dataset, transform, self.batch_size, model.device()) {
            let batch = batch?;
            let acts = model.record(&batch.images, &[&self.layer])?;
            let a = acts[&self.layer]
                .to_dtype(DType::F32)?
                .to_device(&candle_core::Device::Cpu)?;
            let v = a.flatten_all()?.to_vec1::<f32>()?;
            for (b, &index) in batch.indices.iter().enumerate() {
                for (ci, &ch) in channels.iter().enumerate() {
                    let map = &v[((b * c) + ch) * h * w..((b * c) + ch + 1) * h * w];
                    let score = match self.score {
                        UnitScore::Mean => {
                            map.iter().map(|&x| x as f64).sum::<f64>() as f32 / (h * w) as f32
                        }
                        UnitScore::Max => map.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)),
                    };
                    scores[[ci, column + b]] = score;
                    let enters = |list: &Vec<Example>, better: &dyn Fn(f32, f32) -> bool| {
                        list.len() < self.k || list.last().is_some_and(|l| better(score, l.score))
                    };
                    let gt = |a: f32, b: f32| a > b;
                    let lt = |a: f32, b: f32| a < b;
                    if enters(&top[ci], &gt) || enters(&bottom[ci], &lt) {
                        let e = Example {
                            index,
                            score,
                            map: Array2::from_shape_vec((h, w), map.to_vec())
                                .map_err(|e| Error::InvalidArgument(e.to_string()))?,
                        };
                        keep(&mut top[ci], &e, &gt, self.k);
                        keep(&mut bottom[ci], &e, &lt, self.k);
                    }
                }
            }
            column += batch.indices.len();
            if let Some(bar) = &mut bar {
                bar.inc(batch.indices.len());
            }
        }
        if let Some(bar) = &mut bar {
            bar.finish();
        }
        Ok(TopUnits {
            layer: self.layer.clone(),
            channels,
            top,
            bottom,
            scores,
        })
    }
}

impl TopUnits {
    /// One row per channel: its top `k` images, each captioned with its score, drawn from
    /// `dataset` (untransformed, as a person sees them).
    ///
    /// ```
    /// use neuroscope::record::TopExamples;
    /// use neuroscope::data::{embedded, Dataset};
    /// let net = neuroscope::models::load("mnist_cnn", &neuroscope::models::Weights::Trained,
    ///     &neuroscope::device::Device::Cpu)?;
    /// let ds = embedded::mnist().subset(100, 0)?;
    /// let top = TopExamples::new("conv1").channels(0..3).k(4).progress(false)
    ///     .run(&net, &ds, &neuroscope::models::default_transform("mnist_cnn"))?;
    /// assert!(top.figure(&ds)?.to_svg()?.contains("conv1"));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn figure<D: Dataset + ?Sized>(&self, dataset: &D) -> Result<crate::plot::Figure> {
        let k = self.top.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut images = Vec::new();
        let mut captions = Vec::new();
        for (ci, &ch) in self.channels.iter().enumerate() {
            for slot in 0..k {
                match self.top[ci].get(slot) {
                    Some(e) => {
                        images.push(dataset.get(e.index)?.0);
                        captions.push(format!("ch {ch}: {:.2}", e.score));
                    }
                    None => {
                        let (c, h, w) = dataset.get(0)?.0.shape();
                        images.push(crate::data::Image::new(c, h, w, vec![1.0; c * h * w])?);
                        captions.push(String::new());
                    }
                }
            }
        }
        let grid = crate::plot::Images::from_images(images)
            .captions(&captions)?
            .columns(k);
        let side = (110 * k).clamp(320, 1400) as u32;
        let rows = self.channels.len() as u32;
        Ok(crate::plot::Figure::single(grid.into())
            .title(format!(
                "{}: the images that excite each channel most (one row per channel)",
                self.layer
            ))
            .size(side, (side / k as u32) * rows + 90))
    }
}
