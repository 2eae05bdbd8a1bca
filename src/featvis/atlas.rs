//! A unit atlas: one self-contained HTML page for a layer with, per channel, its feature
//! visualisation, the dataset images that excite it most and least with the channel's map over
//! each, and a histogram of its scores over the dataset (Lucid's atlases, on any network).
//! No server, no network resources: the images are inside the page; the same seed gives the
//! same page.

use super::{FeatVis, Preset};
use crate::data::{Compose, Dataset, Image};
use crate::display::{base64, escape, Report};
use crate::models::Model;
use crate::plot::{Bars, Colormap};
use crate::record::{Example, TopExamples, TopUnits};
use crate::{Error, Result};
use std::ops::Range;

/// Settings of an atlas (a builder; [`Atlas::run`] makes the page).
///
/// ```
/// use neuroscope::featvis::Atlas;
/// use neuroscope::data::{embedded, Dataset};
/// let net = neuroscope::models::load("mnist_cnn", &neuroscope::models::Weights::Trained,
///     &neuroscope::device::Device::Cpu)?;
/// let ds = embedded::mnist().subset(60, 0)?;
/// let page = Atlas::new("conv2", 0..2).k(3).steps(8).progress(false)
///     .run(&net, &ds, &neuroscope::models::default_transform("mnist_cnn"))?;
/// let html = page.to_html();
/// assert_eq!(html.matches("class=\"ns-unit\"").count(), 2);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Atlas {
    layer: String,
    channels: Range<usize>,
    k: usize,
    seed: u64,
    steps: Option<usize>,
    progress: bool,
}

impl Atlas {
    /// The atlas of `channels` of `layer`: 6 top and bottom images each, seed 0.
    pub fn new(layer: &str, channels: Range<usize>) -> Self {
        Atlas {
            layer: layer.into(),
            channels,
            k: 6,
            seed: 0,
            steps: None,
            progress: true,
        }
    }
    /// Images shown per channel and end.
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
    /// Seed of the feature visualisations.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Optimisation steps of the feature visualisations [default: the preset's].
    pub fn steps(mut self, n: usize) -> Self {
        self.steps = Some(n);
        self
    }
    /// Show progress lines.
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Computes the page: one pass over `dataset` (through `transform`, the network's input),
    /// then the channels' feature visualisations in one batch (the `mnist` preset for
    /// one-channel networks, Lucent's otherwise).
    pub fn run<D: Dataset + ?Sized>(
        &self,
        model: &Model,
        dataset: &D,
        transform: &Compose,
    ) -> Result<Report> {
        if self.channels.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "channels {}..{}: give at least one",
                self.channels.start, self.channels.end
            )));
        }
        let top = TopExamples::new(&self.layer)
            .channels(self.channels.clone())
            .k(self.k)
            .progress(self.progress)
            .run(model, dataset, transform)?;
        let one_channel = model.input_spec().channels == 1;
        let mut fv = FeatVis::channels(&self.layer, self.channels.clone())
            .preset(if one_channel {
                Preset::Mnist
            } else {
                Preset::Lucent
            })
            .seed(self.seed)
            .progress(self.progress);
        if one_channel {
            fv = fv.l2(0.02);
        }
        if let Some(n) = self.steps {
            fv = fv.steps(n);
        }
        let vis = fv.run(model)?;
        let names = dataset.class_names();
        let mut page = Report::new(format!("Unit atlas: {} of {}", self.layer, model.arch()));
        page.paragraph(&format!(
            "{} channels of {} over {} images. Per channel: the image optimised to excite it \
             (feature visualisation, seed {}), the {} images that excite it most and least \
             (score: the spatial mean of its map), each with the channel's map over it (magma, \
             scaled by the channel's largest value), and the histogram of its scores.",
            top.channels.len(),
            self.layer,
            dataset.len(),
            self.seed,
            self.k
        ));
        page.raw(STYLE);
        for (ci, &ch) in top.channels.iter().enumerate() {
            page.raw(&unit_html(&top, ci, ch, &vis.image(ci)?, dataset, &names)?);
        }
        Ok(page)
    }
}

const STYLE: &str = "<style>.ns-unit{border-top:1px solid #ccc;padding:8px 0}\
.ns-row{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-end}\
.ns-row figure{margin:0;font:11px sans-serif;text-align:center}\
.ns-row img{image-rendering:pixelated;display:block}</style>";

fn img_tag(image: &Image, side: usize, alt: &str) -> Result<String> {
    let scale = (side / image.shape().1.max(1)).max(1);
    Ok(format!(
        "<img src=\"data:image/png;base64,{}\" width=\"{side}\" height=\"{side}\" alt=\"{}\">",
        base64(&image.to_png(scale)?),
        escape(alt)
    ))
}

/// The image in grey with the channel's map over it (nearest, magma, opacity by strength).
fn overlay(image: &Image, e: &Example, peak: f32) -> Result<Image> {
    let (c, h, w) = image.shape();
    let (mh, mw) = e.map.dim();
    let data = image.data();
    let mut rgb = vec![0f32; 3 * h * w];
    for y in 0..h {
        for x in 0..w {
            let k = y * w + x;
            let g = (0..c).map(|ch| data[ch * h * w + k]).sum::<f32>() / c as f32;
            let v = (e.map[[(y * mh / h).min(mh - 1), (x * mw / w).min(mw - 1)]] / peak.max(1e-30))
                .clamp(0.0, 1.0);
            let col = Colormap::Magma.rgb(v as f64);
            let alpha = 0.7 * v.sqrt();
            for ch in 0..3 {
                rgb[ch * h * w + k] =
                    (1.0 - alpha) * g.clamp(0.0, 1.0) + alpha * col[ch] as f32 / 255.0;
            }
        }
    }
    Image::new(3, h, w, rgb)
}

fn unit_html<D: Dataset + ?Sized>(
    top: &TopUnits,
    ci: usize,
    ch: usize,
    vis: &Image,
    dataset: &D,
    names: &[String],
) -> Result<String> {
    let peak = top.top[ci]
        .iter()
        .map(|e| e.map.iter().fold(0f32, |m, &v| m.max(v)))
        .fold(0f32, f32::max);
    let mut h = format!("<section class=\"ns-unit\" data-channel=\"{ch}\"><h3>channel {ch}</h3><div class=\"ns-row\">");
    h.push_str(&format!(
        "<figure>{}<figcaption>visualisation</figcaption></figure>",
        img_tag(vis, 112, &format!("channel {ch} visualisation"))?
    ));
    for (label, list) in [("top", &top.top[ci]), ("bottom", &top.bottom[ci])] {
        for e in list {
            let (img, class) = dataset.get(e.index)?;
            let name = names
                .get(class)
                .cloned()
                .unwrap_or_else(|| class.to_string());
            h.push_str(&format!(
                "<figure class=\"ns-{label}\">{}<figcaption>{label} {:.2}<br>{}</figcaption></figure>",
                img_tag(&overlay(&img, e, peak)?, 84, &format!("{label} example {}", e.index))?,
                e.score,
                escape(&name)
            ));
        }
    }
    // 20 bins between the smallest and the largest score.
    let scores: Vec<f32> = top.scores.row(ci).to_vec();
    let (lo, hi) = scores
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, u), &v| (l.min(v), u.max(v)));
    let bins = 20;
    let width = ((hi - lo) / bins as f32).max(1e-12);
    let mut counts = vec![0f64; bins];
    for &s in &scores {
        counts[(((s - lo) / width) as usize).min(bins - 1)] += 1.0;
    }
    let labels: Vec<String> = (0..bins)
        .map(|b| {
            if b % 5 == 0 {
                format!("{:.2}", lo + b as f32 * width)
            } else {
                String::new()
            }
        })
        .collect();
    let hist = Bars::new(&counts)
        .names(&labels)?
        .title(format!("scores of channel {ch}"))
        .figure()
        .size(320, 200)
        .to_svg()?;
    h.push_str(&format!(
        "<figure class=\"ns-hist\">{hist}</figure></div></section>"
    ));
    Ok(h)
}
