//! Why did the network say that: attribution maps with captum's definitions, defaults and
//! numbers (captum 0.9.0 is the reference; `tests/attribution.rs` compares against it).
//!
//! | captum | here | output |
//! |---|---|---|
//! | `Saliency(model).attribute(x, target, abs=True)` | [`Saliency`] | `N x C x H x W` |
//! | `NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", ...)` | [`SmoothGrad`] | `N x C x H x W` |
//! | `IntegratedGradients(model).attribute(x, baselines, target, n_steps=50, return_convergence_delta=True)` | [`IntegratedGradients`] | `N x C x H x W`, and the delta |
//! | `LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)` | [`LayerGradCam`] | `N x 1 x h x w` at the layer's resolution |
//! | `GuidedBackprop(model).attribute(x, target)` | [`GuidedBackprop`] | `N x C x H x W` |
//! | `GuidedGradCam(model, layer).attribute(x, target)` | [`GuidedGradCam`] | `N x C x H x W` |
//! | `Occlusion(model).attribute(x, sliding_window_shapes, strides, baselines, target)` | [`Occlusion`] | `N x C x H x W` |
//! | attention rollout (Abnar & Zuidema 2020; not in captum), vision transformers only | [`AttentionRollout`] | `N x 1 x g x g` at the patch grid |
//!
//! The target is the predicted class unless given ([`Target`]). Every method checks its
//! settings, the input's shape and the target before any forward pass, and works in batches
//! (`batch_size`: images, or perturbed copies, per forward pass).
//!
//! ```
//! use neuroscope::attribution::{IntegratedGradients, LayerGradCam, Saliency, Target};
//! use neuroscope::models::{load, Weights};
//! let net = load("mnist_cnn", &Weights::Trained, &candle_core::Device::Cpu)?;
//! let ds = neuroscope::data::embedded::mnist();
//! let x = neuroscope::data::batches(&*ds, &neuroscope::models::default_transform("mnist_cnn"), 2,
//!     &candle_core::Device::Cpu).next().unwrap()?.images;
//! let s = Saliency::new().attribute(&net, &x)?;                  // |d logit / d pixel|
//! assert_eq!(s.values.dims(), &[2, 1, 28, 28]);
//! let ig = IntegratedGradients::new().n_steps(16).attribute(&net, &x)?;
//! assert!(ig.delta.as_ref().unwrap().iter().all(|d| d.abs() < 0.1));   // completeness
//! let cam = LayerGradCam::new("conv2").target(Target::Class(7)).attribute(&net, &x)?;
//! assert_eq!(cam.values.dims(), &[2, 1, 8, 8]);                   // conv2's resolution
//! # Ok::<(), neuroscope::Error>(())
//! ```

mod rollout;
pub use rollout::AttentionRollout;

use crate::models::Model;
use crate::progress::Progress;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::BTreeMap;

/// Which output each image's attribution explains.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Target {
    /// Each image's own predicted class (the output's argmax).
    #[default]
    Predicted,
    /// The same class for every image.
    Class(usize),
    /// One class per image.
    PerImage(Vec<usize>),
}

/// An attribution for a batch of images.
#[derive(Clone, Debug)]
pub struct Attribution {
    /// The method's captum name (`Saliency`, `IntegratedGradients`, ...).
    pub method: &'static str,
    /// The attributions, on the CPU in f32: `N x C x H x W` like the input, or `N x 1 x h x w`
    /// for Grad-CAM.
    pub values: Tensor,
    /// The class each image's attribution explains.
    pub targets: Vec<usize>,
    /// Integrated gradients' convergence delta per image: the attributions' sum minus
    /// `f(x)[t] - f(baseline)[t]` (captum's `return_convergence_delta=True`).
    pub delta: Option<Vec<f32>>,
}

impl Attribution {
    /// This attribution over its images ([`figure`] with one row).
    pub fn overlay(&self, images: &Tensor, class_names: &[String]) -> Result<crate::plot::Figure> {
        figure(images, &[self], class_names)
    }

    /// The attributions resized to `height x width` by nearest-neighbour interpolation
    /// (captum's `LayerAttribution.interpolate`, its default mode): Grad-CAM at the input's size.
    ///
    /// ```
    /// use neuroscope::attribution::LayerGradCam;
    /// let net = neuroscope::models::load("mnist_cnn", &neuroscope::models::Weights::Trained,
    ///     &candle_core::Device::Cpu)?;
    /// let x = candle_core::Tensor::zeros((1, 1, 28, 28), candle_core::DType::F32, &candle_core::Device::Cpu)?;
    /// let cam = LayerGradCam::new("conv2").attribute(&net, &x)?.interpolate(28, 28)?;
    /// assert_eq!(cam.values.dims(), &[1, 1, 28, 28]);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn interpolate(&self, height: usize, width: usize) -> Result<Attribution> {
        let (n, c, h, w) = self.values.dims4()?;
        if height == 0 || width == 0 {
            return Err(Error::InvalidArgument(format!(
                "interpolate to {height} x {width}: give a positive size"
            )));
        }
        let v = self.values.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; n * c * height * width];
        // PyTorch's nearest: source index floor(dst * in / out).
        for p in 0..n * c {
            for y in 0..height {
                let sy = (y * h / height).min(h - 1);
                for x in 0..width {
                    let sx = (x * w / width).min(w - 1);
                    out[(p * height + y) * width + x] = v[(p * h + sy) * w + sx];
                }
            }
        }
        Ok(Attribution {
            values: Tensor::from_vec(out, (n, c, height, width), &Device::Cpu)?,
            ..self.clone()
        })
    }
}

/// The methods by name, for the command line and configuration files.
///
/// ```
/// use neuroscope::attribution::Method;
/// assert_eq!("integrated-gradients".parse::<Method>()?, Method::IntegratedGradients);
/// assert!(Method::parse("lime").unwrap_err().to_string().contains("gradcam"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// [`Saliency`].
    Saliency,
    /// [`SmoothGrad`].
    SmoothGrad,
    /// [`IntegratedGradients`].
    IntegratedGradients,
    /// [`LayerGradCam`].
    GradCam,
    /// [`GuidedBackprop`].
    GuidedBackprop,
    /// [`GuidedGradCam`].
    GuidedGradCam,
    /// [`Occlusion`].
    Occlusion,
}

impl Method {
    /// The names [`Method::parse`] accepts.
    pub const NAMES: [&'static str; 5] = [
        "saliency",
        "smoothgrad",
        "integrated-gradients",
        "gradcam",
        "occlusion",
    ];

    /// `saliency`, `smoothgrad`, `integrated-gradients` (also `ig`), `gradcam` or `occlusion`
    /// (underscores and dashes alike).
    pub fn parse(s: &str) -> Result<Method> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "saliency" => Ok(Method::Saliency),
            "smoothgrad" => Ok(Method::SmoothGrad),
            "integrated-gradients" | "ig" => Ok(Method::IntegratedGradients),
            "gradcam" | "grad-cam" | "layer-gradcam" => Ok(Method::GradCam),
            "guided-backprop" | "guided-backpropagation" => Ok(Method::GuidedBackprop),
            "guided-gradcam" | "guided-grad-cam" => Ok(Method::GuidedGradCam),
            "occlusion" => Ok(Method::Occlusion),
            _ => Err(Error::unknown(
                "attribution method",
                s,
                Method::NAMES.map(String::from).to_vec(),
            )),
        }
    }
}

from_str_by_parse!(Method);

/// A grid of heatmaps over their images: one row per attribution (method), one column per
/// image, each captioned with the method and the explained class (named by `class_names` when
/// given). Each map is summed over channels, resized to the image (nearest, for Grad-CAM) and
/// blended over the image in grey: a sequential colour map (magma) for maps that are never
/// negative (saliency, SmoothGrad, Grad-CAM), a diverging one (blue - white - red, centred on
/// 0) for signed ones (integrated gradients, occlusion), with an opacity that grows with the
/// magnitude, so the image shows where the attribution is small. Each map is scaled by its own
/// largest magnitude; each row's colour bar shows that scale.
///
/// ```
/// use neuroscope::attribution::{figure, IntegratedGradients, Saliency};
/// use neuroscope::data::Dataset;
/// let net = neuroscope::models::load("mnist_cnn", &neuroscope::models::Weights::Trained,
///     &candle_core::Device::Cpu)?;
/// let ds = neuroscope::data::embedded::mnist();
/// let x = neuroscope::data::batches(&*ds, &neuroscope::models::default_transform("mnist_cnn"), 3,
///     &candle_core::Device::Cpu).next().unwrap()?.images;
/// let s = Saliency::new().attribute(&net, &x)?;
/// let ig = IntegratedGradients::new().n_steps(8).attribute(&net, &x)?;
/// let fig = figure(&x, &[&s, &ig], &ds.class_names())?;   // 2 rows x 3 images
/// assert!(fig.to_svg()?.contains("IntegratedGradients"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn figure(
    images: &Tensor,
    attributions: &[&Attribution],
    class_names: &[String],
) -> Result<crate::plot::Figure> {
    use crate::plot::{Colormap, Images};
    let (n, c, h, w) = images.dims4()?;
    if attributions.is_empty() {
        return Err(Error::InvalidArgument("no attribution to show".into()));
    }
    let img = images.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let mut tiles = Vec::new();
    let mut captions = Vec::new();
    let mut bars = Vec::new();
    for a in attributions {
        let (an, _, ah, aw) = a.values.dims4()?;
        if an != n {
            return Err(Error::Shape {
                what: format!("{} attributions", a.method),
                expected: format!("{n} (one per image)"),
                got: an.to_string(),
            });
        }
        let a = if (ah, aw) == (h, w) {
            (*a).clone()
        } else {
            a.interpolate(h, w)?
        };
        let maps = a.values.sum_keepdim(1)?.flatten_from(1)?.to_vec2::<f32>()?;
        let signed = maps.iter().flatten().any(|&v| v < 0.0);
        bars.push(if signed {
            (
                Colormap::RdBuR,
                (-1.0, 1.0),
                "/ largest |value|".to_string(),
            )
        } else {
            (Colormap::Magma, (0.0, 1.0), "/ largest value".to_string())
        });
        for i in 0..n {
            // The image in grey, stretched to [0, 1].
            let pix = img.get(i)?.flatten_all()?.to_vec1::<f32>()?;
            let grey: Vec<f32> = (0..h * w)
                .map(|k| (0..c).map(|ch| pix[ch * h * w + k]).sum::<f32>() / c as f32)
                .collect();
            let (lo, hi) = grey
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, u), &v| (l.min(v), u.max(v)));
            let span = (hi - lo).max(1e-12);
            let m = &maps[i];
            let peak = m.iter().fold(0f32, |p, &v| p.max(v.abs())).max(1e-30);
            let mut rgb = vec![0f32; 3 * h * w];
            for k in 0..h * w {
                let g = (grey[k] - lo) / span;
                let (t, strength) = if signed {
                    let u = m[k] / peak;
                    (0.5 + 0.5 * u as f64, u.abs())
                } else {
                    let u = (m[k] / peak).max(0.0);
                    (u as f64, u)
                };
                let cmap = if signed {
                    Colormap::RdBuR
                } else {
                    Colormap::Magma
                };
                let col = cmap.rgb(t);
                let alpha = 0.75 * strength.sqrt();
                for ch in 0..3 {
                    rgb[ch * h * w + k] = (1.0 - alpha) * g + alpha * col[ch] as f32 / 255.0;
                }
            }
            tiles.push(crate::data::Image::new(3, h, w, rgb)?);
            let class = class_names
                .get(a.targets[i])
                .cloned()
                .unwrap_or_else(|| a.targets[i].to_string());
            captions.push(format!("{}: {class}", a.method));
        }
    }
    let grid = Images::from_images(tiles)
        .captions(&captions)?
        .columns(n)
        .row_colorbars(bars);
    let side = (160 * n + 90).clamp(320, 1490) as u32;
    let rows = attributions.len() as u32;
    Ok(crate::plot::Figure::single(grid.into())
        .title("Attributions over their images (rows: methods)")
        .size(side, (side / n as u32) * rows + 90))
}

/// Checks an input batch and resolves the targets (one forward pass when they are predicted).
fn prepare(model: &Model, x: &Tensor, target: &Target) -> Result<Vec<usize>> {
    if x.rank() != 4 {
        return Err(Error::Shape {
            what: "the images to attribute".into(),
            expected: "N x C x H x W".into(),
            got: format!("{:?}", x.dims()),
        });
    }
    let n = x.dim(0)?;
    if n == 0 {
        return Err(Error::InvalidArgument("no images to attribute".into()));
    }
    // One forward pass: all images when the targets are the predictions, else one image (the
    // input's shape is checked and the classes counted either way).
    let (classes, targets) = match target {
        Target::Predicted => {
            let y = model.forward(&x.detach())?.flatten_from(1)?;
            let predicted = y
                .argmax(1)?
                .to_dtype(DType::U32)?
                .to_vec1::<u32>()?
                .into_iter()
                .map(|t| t as usize)
                .collect();
            (y.dim(1)?, predicted)
        }
        _ => {
            let probe = model.forward(&x.narrow(0, 0, 1)?.detach())?;
            (probe.elem_count(), Vec::new())
        }
    };
    let targets = match target {
        Target::Predicted => targets,
        Target::Class(k) => vec![*k; n],
        Target::PerImage(v) => {
            if v.len() != n {
                return Err(Error::Shape {
                    what: "targets".into(),
                    expected: format!("{n} (one per image)"),
                    got: v.len().to_string(),
                });
            }
            v.clone()
        }
    };
    if let Some(&bad) = targets.iter().find(|&&t| t >= classes) {
        return Err(Error::InvalidArgument(format!(
            "target class {bad} is out of range: {} has {classes} outputs (0..{classes})",
            model.arch()
        )));
    }
    Ok(targets)
}

/// `sum_i y[i, targets[i]]` for a batch output `y` (`N x K`, or more axes flattened).
fn target_score(y: &Tensor, targets: &[usize]) -> Result<Tensor> {
    let y = y.flatten_from(1)?;
    let (n, k) = y.dims2()?;
    let mut mask = vec![0f32; n * k];
    for (i, &t) in targets.iter().enumerate() {
        mask[i * k + t] = 1.0;
    }
    let mask = Tensor::from_vec(mask, (n, k), y.device())?.to_dtype(y.dtype())?;
    Ok(y.mul(&mask)?.sum_all()?)
}

/// The per-image target outputs `y[i, targets[i]]` of a forward pass without gradients.
fn target_values(model: &Model, x: &Tensor, targets: &[usize]) -> Result<Vec<f32>> {
    let y = model
        .forward(&x.detach())?
        .flatten_from(1)?
        .to_dtype(DType::F32)?;
    let rows = y.to_vec2::<f32>()?;
    Ok(rows.iter().zip(targets).map(|(r, &t)| r[t]).collect())
}

/// The gradient of `sum_i y[i, targets[i]]` with respect to the input `x`.
fn input_gradient(model: &Model, x: &Tensor, targets: &[usize]) -> Result<Tensor> {
    let v = Var::from_tensor(&x.detach())?;
    let y = model.forward(v.as_tensor())?;
    let grads = target_score(&y, targets)?.backward()?;
    grads
        .get(v.as_tensor())
        .cloned()
        .ok_or_else(|| Error::InvalidArgument("internal: no gradient reached the input".into()))
}

/// Runs `f` over chunks of at most `per` images of `x` (with their targets) and concatenates.
fn batched(
    x: &Tensor,
    targets: &[usize],
    per: usize,
    mut f: impl FnMut(&Tensor, &[usize]) -> Result<Tensor>,
) -> Result<Tensor> {
    let n = x.dim(0)?;
    let mut parts = Vec::new();
    for start in (0..n).step_by(per.max(1)) {
        let m = per.max(1).min(n - start);
        parts
            .push(f(&x.narrow(0, start, m)?, &targets[start..start + m])?.to_device(&Device::Cpu)?);
    }
    Ok(Tensor::cat(&parts, 0)?.to_dtype(DType::F32)?)
}

fn check_batch(b: usize) -> Result<()> {
    if b == 0 {
        return Err(Error::InvalidArgument(
            "batch size 0: give at least 1".into(),
        ));
    }
    Ok(())
}

/// captum's `Saliency` with `abs=True`: the absolute gradient of the target output with
/// respect to every input value (Simonyan et al. 2014).
#[derive(Clone, Debug)]
pub struct Saliency {
    target: Target,
    abs: bool,
    batch_size: usize,
}

impl Default for Saliency {
    fn default() -> Self {
        Saliency::new()
    }
}

impl Saliency {
    /// Absolute gradients of the predicted class, 32 images per backward pass.
    pub fn new() -> Self {
        Saliency {
            target: Target::Predicted,
            abs: true,
            batch_size: 32,
        }
    }
    /// Which output to explain.
    pub fn target(mut self, t: Target) -> Self {
        self.target = t;
        self
    }
    /// Keep the gradient's sign (`abs=False`).
    pub fn abs(mut self, abs: bool) -> Self {
        self.abs = abs;
        self
    }
    /// Images per backward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// The saliency of every image of `x` (`N x C x H x W`, normalised as the network expects).
    pub fn attribute(&self, model: &Model, x: &Tensor) -> Result<Attribution> {
        self.gradients(model, x, false)
    }

    /// The input gradients, guided through every ReLU or not ([`GuidedBackprop`]).
    fn gradients(&self, model: &Model, x: &Tensor, guided: bool) -> Result<Attribution> {
        check_batch(self.batch_size)?;
        if guided {
            cpu_only(model, "guided backpropagation")?;
        }
        let targets = prepare(model, x, &self.target)?;
        let rebuilt = model.for_gradients()?;
        let model = rebuilt.as_ref().unwrap_or(model);
        let values = batched(x, &targets, self.batch_size, |xb, tb| {
            let g = if guided {
                crate::kernels::with_guided_relu(|| input_gradient(model, xb, tb))?
            } else {
                input_gradient(model, xb, tb)?
            };
            Ok(if self.abs { g.abs()? } else { g })
        })?;
        Ok(Attribution {
            method: if guided { "GuidedBackprop" } else { "Saliency" },
            values,
            targets,
            delta: None,
        })
    }
}

/// SmoothGrad: the mean saliency of `samples` noisy copies of each image, Gaussian noise of
/// standard deviation `stdevs` (captum's `NoiseTunnel(Saliency(model))` with
/// `nt_type="smoothgrad"`, `nt_samples=5`, `stdevs=1.0` by default; seeded here).
#[derive(Clone, Debug)]
pub struct SmoothGrad {
    saliency: Saliency,
    samples: usize,
    stdevs: f32,
    seed: u64,
}

impl Default for SmoothGrad {
    fn default() -> Self {
        SmoothGrad::new()
    }
}

impl SmoothGrad {
    /// captum's defaults: 5 samples, noise standard deviation 1.0, seed 0.
    pub fn new() -> Self {
        SmoothGrad {
            saliency: Saliency::new(),
            samples: 5,
            stdevs: 1.0,
            seed: 0,
        }
    }
    /// Which output to explain.
    pub fn target(mut self, t: Target) -> Self {
        self.saliency.target = t;
        self
    }
    /// Noisy copies per image (`nt_samples`).
    pub fn samples(mut self, n: usize) -> Self {
        self.samples = n;
        self
    }
    /// Standard deviation of the noise, in the input's units (`stdevs`).
    pub fn stdevs(mut self, s: f32) -> Self {
        self.stdevs = s;
        self
    }
    /// Seed of the noise.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Images per backward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.saliency.batch_size = n;
        self
    }
    /// The mean absolute gradient over the noisy copies.
    ///
    /// ```
    /// use neuroscope::attribution::SmoothGrad;
    /// let net = neuroscope::models::load("mnist_cnn", &neuroscope::models::Weights::Trained,
    ///     &candle_core::Device::Cpu)?;
    /// let x = candle_core::Tensor::zeros((1, 1, 28, 28), candle_core::DType::F32, &candle_core::Device::Cpu)?;
    /// let a = SmoothGrad::new().samples(4).stdevs(0.5).seed(3).attribute(&net, &x)?;
    /// let b = SmoothGrad::new().samples(4).stdevs(0.5).seed(3).attribute(&net, &x)?;
    /// assert_eq!(a.values.flatten_all()?.to_vec1::<f32>()?, b.values.flatten_all()?.to_vec1::<f32>()?);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn attribute(&self, model: &Model, x: &Tensor) -> Result<Attribution> {
        check_batch(self.saliency.batch_size)?;
        if self.samples == 0 {
            return Err(Error::InvalidArgument(
                "SmoothGrad with 0 samples: give at least 1".into(),
            ));
        }
        if !(self.stdevs.is_finite() && self.stdevs >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "noise standard deviation {}: give a finite number >= 0 (captum's default 1.0)",
                self.stdevs
            )));
        }
        let targets = prepare(model, x, &self.saliency.target)?;
        let rebuilt = model.for_gradients()?;
        let model = rebuilt.as_ref().unwrap_or(model);
        let mut rng = Rng::new(self.seed);
        let mut sum: Option<Tensor> = None;
        let mut bar = Progress::new("SmoothGrad", self.samples);
        for _ in 0..self.samples {
            let noise: Vec<f32> = (0..x.elem_count())
                .map(|_| (rng.normal() as f32) * self.stdevs)
                .collect();
            let noisy = (x.to_dtype(DType::F32)? + Tensor::from_vec(noise, x.dims(), x.device())?)?
                .to_dtype(x.dtype())?;
            let s = batched(&noisy, &targets, self.saliency.batch_size, |xb, tb| {
                Ok(input_gradient(model, xb, tb)?.abs()?)
            })?;
            sum = Some(match sum {
                Some(acc) => (acc + s)?,
                None => s,
            });
            bar.inc(1);
        }
        bar.finish();
        let values = (sum.ok_or_else(|| Error::InvalidArgument("internal: no sample".into()))?
            / self.samples as f64)?;
        Ok(Attribution {
            method: "SmoothGrad",
            values,
            targets,
            delta: None,
        })
    }
}

/// Gauss-Legendre quadrature on `[0, 1]` with `n` points: the nodes (ascending) and weights,
/// as captum's default `gausslegendre` rule computes them with numpy's `leggauss`.
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        // Newton's method on P_n from the usual first guess for the i-th largest root.
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { x } else { p1 };
            let pm = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (x * pn - pm) / (x * x - 1.0);
            let dx = pn / dp;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - x * x) * dp * dp);
        nodes[n - 1 - i] = x;
        nodes[i] = -x;
        weights[i] = w;
        weights[n - 1 - i] = w;
    }
    (
        nodes.iter().map(|x| 0.5 * (1.0 + x)).collect(),
        weights.iter().map(|w| 0.5 * w).collect(),
    )
}

/// captum's `IntegratedGradients` (Sundararajan et al. 2017): `(x - baseline)` times the
/// gradient averaged along the straight path from the baseline to `x`, by captum's default
/// Gauss-Legendre rule with `n_steps` points (50), and the convergence delta.
#[derive(Clone, Debug)]
pub struct IntegratedGradients {
    target: Target,
    n_steps: usize,
    baseline: Option<Tensor>,
    batch_size: usize,
}

impl Default for IntegratedGradients {
    fn default() -> Self {
        IntegratedGradients::new()
    }
}

impl IntegratedGradients {
    /// 50 steps from a zero baseline, 32 scaled images per backward pass.
    pub fn new() -> Self {
        IntegratedGradients {
            target: Target::Predicted,
            n_steps: 50,
            baseline: None,
            batch_size: 32,
        }
    }
    /// Which output to explain.
    pub fn target(mut self, t: Target) -> Self {
        self.target = t;
        self
    }
    /// Quadrature points along the path (captum's `n_steps`, 50).
    pub fn n_steps(mut self, n: usize) -> Self {
        self.n_steps = n;
        self
    }
    /// The baseline: one image (`C x H x W` or `1 x C x H x W`, for every image) or one per
    /// image (`N x C x H x W`); zeros when not given.
    pub fn baseline(mut self, b: Tensor) -> Self {
        self.baseline = Some(b);
        self
    }
    /// Scaled images per backward pass (captum's `internal_batch_size`).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// The attributions and the convergence delta of every image.
    pub fn attribute(&self, model: &Model, x: &Tensor) -> Result<Attribution> {
        check_batch(self.batch_size)?;
        if self.n_steps == 0 {
            return Err(Error::InvalidArgument(
                "n_steps 0: give at least 1 (captum's default 50)".into(),
            ));
        }
        let targets = prepare(model, x, &self.target)?;
        let (n, c, h, w) = x.dims4()?;
        let x = x.to_dtype(DType::F32)?;
        let base = match &self.baseline {
            None => x.zeros_like()?,
            Some(b) => {
                let b = b.to_dtype(DType::F32)?.to_device(x.device())?;
                let b = if b.rank() == 3 { b.unsqueeze(0)? } else { b };
                if b.dims() != [1, c, h, w] && b.dims() != [n, c, h, w] {
                    return Err(Error::Shape {
                        what: "the baseline".into(),
                        expected: format!(
                            "{c} x {h} x {w}, 1 x {c} x {h} x {w} or {n} x {c} x {h} x {w}"
                        ),
                        got: format!("{:?}", b.dims()),
                    });
                }
                b.broadcast_as((n, c, h, w))?.contiguous()?
            }
        };
        let rebuilt = model.for_gradients()?;
        let model = rebuilt.as_ref().unwrap_or(model);
        let (alphas, steps) = gauss_legendre(self.n_steps);
        let diff = (&x - &base)?;
        // Per image: the step-weighted gradient sum, accumulated step by step in path order.
        let mut total = Tensor::zeros((n, c, h, w), DType::F32, x.device())?;
        let per = (self.batch_size / n).max(1);
        let mut bar = Progress::new("integrated gradients", self.n_steps);
        for chunk in (0..self.n_steps).collect::<Vec<_>>().chunks(per) {
            let scaled: Vec<Tensor> = chunk
                .iter()
                .map(|&s| (&base + (&diff * alphas[s])?).map_err(Error::from))
                .collect::<Result<_>>()?;
            let xs = Tensor::cat(&scaled, 0)?;
            let ts: Vec<usize> = chunk.iter().flat_map(|_| targets.iter().copied()).collect();
            let g = input_gradient(model, &xs, &ts)?.to_dtype(DType::F32)?;
            for (j, &s) in chunk.iter().enumerate() {
                total = (total + (g.narrow(0, j * n, n)? * steps[s])?)?;
            }
            bar.inc(chunk.len());
        }
        bar.finish();
        let values = (&diff * &total)?;
        // Completeness: the attributions should sum to f(x)[t] - f(baseline)[t].
        let fx = target_values(model, &x, &targets)?;
        let fb = target_values(model, &base, &targets)?;
        let sums = values.flatten_from(1)?.sum(1)?.to_vec1::<f32>()?;
        let delta = sums
            .iter()
            .zip(fx.iter().zip(&fb))
            .map(|(s, (a, b))| s - (a - b))
            .collect();
        Ok(Attribution {
            method: "IntegratedGradients",
            values: values.to_device(&Device::Cpu)?,
            targets,
            delta: Some(delta),
        })
    }
}

/// captum's `LayerGradCam` (Selvaraju et al. 2017): the layer's channels weighted by the
/// spatial mean of the target's gradient with respect to them, summed over channels, with a
/// ReLU (`relu_attributions=True`, as in the paper), at the layer's resolution
/// ([`Attribution::interpolate`] for the input's). The layer is any module with a 4-D output,
/// by its PyTorch name.
#[derive(Clone, Debug)]
pub struct LayerGradCam {
    layer: String,
    target: Target,
    relu: bool,
    batch_size: usize,
}

impl LayerGradCam {
    /// Grad-CAM at `layer`, predicted class, ReLU on, 32 images per backward pass.
    pub fn new(layer: &str) -> Self {
        LayerGradCam {
            layer: layer.into(),
            target: Target::Predicted,
            relu: true,
            batch_size: 32,
        }
    }
    /// Which output to explain.
    pub fn target(mut self, t: Target) -> Self {
        self.target = t;
        self
    }
    /// Keep negative evidence (captum's default `relu_attributions=False`).
    pub fn relu_attributions(mut self, on: bool) -> Self {
        self.relu = on;
        self
    }
    /// Images per backward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// The class activation maps, `N x 1 x h x w`.
    pub fn attribute(&self, model: &Model, x: &Tensor) -> Result<Attribution> {
        check_batch(self.batch_size)?;
        // The layer first: an unknown or non-convolutional one is refused before any work.
        let shape = model
            .record(&x.narrow(0, 0, 1.min(x.dim(0)?))?.detach(), &[&self.layer])?
            .get(&self.layer)
            .map(|t| t.dims().to_vec())
            .unwrap_or_default();
        if shape.len() != 4 {
            return Err(Error::InvalidArgument(format!(
                "Grad-CAM needs a layer with a spatial map (N x C x h x w); {} of {} gives {:?}",
                self.layer,
                model.arch(),
                shape
            )));
        }
        let targets = prepare(model, x, &self.target)?;
        let rebuilt = model.for_gradients()?;
        let model = rebuilt.as_ref().unwrap_or(model);
        let values = batched(x, &targets, self.batch_size, |xb, tb| {
            let mut dims = shape.clone();
            dims[0] = xb.dim(0)?;
            let probe = Var::zeros(dims.as_slice(), DType::F32, xb.device())?;
            let probes =
                BTreeMap::from([(self.layer.clone(), probe.as_tensor().to_dtype(xb.dtype())?)]);
            let (y, acts) = model.forward_probed(&xb.detach(), probes)?;
            let grads = target_score(&y, tb)?.backward()?;
            let g = grads.get(probe.as_tensor()).cloned().ok_or_else(|| {
                Error::InvalidArgument("internal: no gradient at the layer".into())
            })?;
            let a = acts[&self.layer].detach().to_dtype(DType::F32)?;
            let weights = g.to_dtype(DType::F32)?.mean_keepdim(3)?.mean_keepdim(2)?;
            let cam = a.broadcast_mul(&weights)?.sum_keepdim(1)?;
            Ok(if self.relu { cam.relu()? } else { cam })
        })?;
        Ok(Attribution {
            method: "LayerGradCam",
            values,
            targets,
            delta: None,
        })
    }
}

/// captum's `GuidedBackprop` (Springenberg et al. 2015): the input gradient with every ReLU's
/// backward also dropping negative gradients. On the CPU (the guided ReLU is a CPU kernel).
#[derive(Clone, Debug)]
pub struct GuidedBackprop {
    saliency: Saliency,
}

impl Default for GuidedBackprop {
    fn default() -> Self {
        GuidedBackprop::new()
    }
}

impl GuidedBackprop {
    /// The predicted class, 32 images per backward pass.
    pub fn new() -> Self {
        GuidedBackprop {
            saliency: Saliency::new().abs(false),
        }
    }
    /// Which output to explain.
    pub fn target(mut self, t: Target) -> Self {
        self.saliency.target = t;
        self
    }
    /// Images per backward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.saliency.batch_size = n;
        self
    }
    /// The guided gradients, `N x C x H x W` (signed).
    pub fn attribute(&self, model: &Model, x: &Tensor) -> Result<Attribution> {
        self.saliency.gradients(model, x, true)
    }
}

fn cpu_only(model: &Model, what: &str) -> Result<()> {
    if !model.device().is_cpu() {
        return Err(Error::InvalidArgument(format!(
            "{what} runs on the CPU (its guided ReLU is a CPU kernel): load the model with Device::Cpu"
        )));
    }
    Ok(())
}

/// captum's `GuidedGradCam` (Selvaraju et al. 2017): guided backpropagation times the layer's
/// Grad-CAM (ReLU on) resized to the input by nearest-neighbour interpolation, `N x C x H x W`.
/// On the CPU.
///
/// ```
/// use neuroscope::attribution::{GuidedGradCam, Target};
/// let net = neuroscope::models::load("mnist_cnn", &neuroscope::models::Weights::Trained,
///     &candle_core::Device::Cpu)?;
/// let x = candle_core::Tensor::randn(0f32, 1.0, (2, 1, 28, 28), &candle_core::Device::Cpu)?;
/// let g = GuidedGradCam::new("conv2").target(Target::Class(3)).attribute(&net, &x)?;
/// assert_eq!(g.values.dims(), &[2, 1, 28, 28]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct GuidedGradCam {
    cam: LayerGradCam,
}

impl GuidedGradCam {
    /// Guided Grad-CAM at `layer` (a module with a spatial map), predicted class.
    pub fn new(layer: &str) -> Self {
        GuidedGradCam {
            cam: LayerGradCam::new(layer),
        }
    }
    /// Which output to explain.
    pub fn target(mut self, t: Target) -> Self {
        self.cam.target = t;
        self
    }
    /// Images per backward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.cam.batch_size = n;
        self
    }
    /// Guided backpropagation times the upsampled class activation map.
    pub fn attribute(&self, model: &Model, x: &Tensor) -> Result<Attribution> {
        cpu_only(model, "guided Grad-CAM")?;
        let cam = self
            .cam
            .clone()
            .relu_attributions(true)
            .attribute(model, x)?;
        let targets = cam.targets.clone();
        let (_, _, h, w) = x.dims4()?;
        let cam = cam.interpolate(h, w)?;
        let gb = GuidedBackprop::new()
            .target(Target::PerImage(targets.clone()))
            .batch_size(self.cam.batch_size)
            .attribute(model, x)?;
        Ok(Attribution {
            method: "GuidedGradCam",
            values: gb.values.broadcast_mul(&cam.values)?,
            targets,
            delta: None,
        })
    }
}

/// captum's `Occlusion` (Zeiler and Fergus 2014): slide a window over the input, replace what
/// it covers by the baseline, and attribute to every covered value the drop of the target
/// output, averaged over the windows that cover it. Windows and strides are over
/// `(channels, height, width)`, as captum's `sliding_window_shapes` and `strides`; windows
/// past the edge are cut there, as captum's are.
#[derive(Clone, Debug)]
pub struct Occlusion {
    window: (usize, usize, usize),
    strides: (usize, usize, usize),
    baseline: f32,
    target: Target,
    batch_size: usize,
}

impl Occlusion {
    /// A window of `window` values, moved by `strides`, filled with 0 (captum's default
    /// baseline); 32 occluded images per forward pass.
    ///
    /// ```
    /// use neuroscope::attribution::{Occlusion, Target};
    /// let net = neuroscope::models::load("mnist_cnn", &neuroscope::models::Weights::Trained,
    ///     &candle_core::Device::Cpu)?;
    /// let x = candle_core::Tensor::ones((1, 1, 28, 28), candle_core::DType::F32, &candle_core::Device::Cpu)?;
    /// let a = Occlusion::new((1, 8, 8), (1, 4, 4)).target(Target::Class(3)).attribute(&net, &x)?;
    /// assert_eq!(a.values.dims(), &[1, 1, 28, 28]);
    /// let err = Occlusion::new((1, 40, 40), (1, 4, 4)).attribute(&net, &x).unwrap_err();
    /// assert!(err.to_string().contains("larger than the image"), "{err}");
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn new(window: (usize, usize, usize), strides: (usize, usize, usize)) -> Self {
        Occlusion {
            window,
            strides,
            baseline: 0.0,
            target: Target::Predicted,
            batch_size: 32,
        }
    }
    /// The value that fills the window.
    pub fn baseline(mut self, v: f32) -> Self {
        self.baseline = v;
        self
    }
    /// Which output to explain.
    pub fn target(mut self, t: Target) -> Self {
        self.target = t;
        self
    }
    /// Occluded images per forward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// The occlusion attributions, `N x C x H x W`.
    pub fn attribute(&self, model: &Model, x: &Tensor) -> Result<Attribution> {
        check_batch(self.batch_size)?;
        let (n, c, h, w) = match x.dims() {
            &[n, c, h, w] => (n, c, h, w),
            d => {
                return Err(Error::Shape {
                    what: "the images to attribute".into(),
                    expected: "N x C x H x W".into(),
                    got: format!("{d:?}"),
                })
            }
        };
        let dims = [c, h, w];
        let win = [self.window.0, self.window.1, self.window.2];
        let stride = [self.strides.0, self.strides.1, self.strides.2];
        let mut shifts = [0usize; 3];
        for d in 0..3 {
            if win[d] == 0 || stride[d] == 0 {
                return Err(Error::InvalidArgument(format!(
                    "occlusion window {:?} and strides {:?}: every size must be at least 1",
                    self.window, self.strides
                )));
            }
            if win[d] > dims[d] {
                return Err(Error::InvalidArgument(format!(
                    "the occlusion window {:?} is larger than the image ({c} x {h} x {w})",
                    self.window
                )));
            }
            if win[d] < dims[d] && stride[d] > win[d] {
                return Err(Error::InvalidArgument(format!(
                    "stride {} is larger than the window's {} in dimension {d}: values between \
                     windows would never be occluded",
                    stride[d], win[d]
                )));
            }
            shifts[d] = (dims[d] - win[d]).div_ceil(stride[d]) + 1;
        }
        let targets = prepare(model, x, &self.target)?;
        let xv = x
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let plane = c * h * w;
        let base_out = target_values(model, x, &targets)?;
        let positions: Vec<[usize; 3]> = (0..shifts[0])
            .flat_map(|a| (0..shifts[1]).flat_map(move |b| (0..shifts[2]).map(move |e| [a, b, e])))
            .collect();
        let region = |p: &[usize; 3], d: usize| {
            let lo = p[d] * stride[d];
            lo..(lo + win[d]).min(dims[d])
        };
        let mut total = vec![0f32; n * plane];
        let mut count = vec![0f32; plane];
        for p in &positions {
            for ci in region(p, 0) {
                for yi in region(p, 1) {
                    for xi in region(p, 2) {
                        count[(ci * h + yi) * w + xi] += 1.0;
                    }
                }
            }
        }
        let per = (self.batch_size / n).max(1);
        let mut bar = Progress::new("occlusion", positions.len());
        for chunk in positions.chunks(per) {
            let mut batch = Vec::with_capacity(chunk.len() * n * plane);
            for p in chunk {
                let mut img = xv.clone();
                for i in 0..n {
                    for ci in region(p, 0) {
                        for yi in region(p, 1) {
                            for xi in region(p, 2) {
                                img[i * plane + (ci * h + yi) * w + xi] = self.baseline;
                            }
                        }
                    }
                }
                batch.extend(img);
            }
            let xb = Tensor::from_vec(batch, (chunk.len() * n, c, h, w), &Device::Cpu)?
                .to_device(x.device())?
                .to_dtype(x.dtype())?;
            let ts: Vec<usize> = chunk.iter().flat_map(|_| targets.iter().copied()).collect();
            let out = target_values(model, &xb, &ts)?;
            for (j, p) in chunk.iter().enumerate() {
                for i in 0..n {
                    let drop = base_out[i] - out[j * n + i];
                    for ci in region(p, 0) {
                        for yi in region(p, 1) {
                            for xi in region(p, 2) {
                                total[i * plane + (ci * h + yi) * w + xi] += drop;
                            }
                        }
                    }
                }
            }
            bar.inc(chunk.len());
        }
        bar.finish();
        for i in 0..n {
            for k in 0..plane {
                total[i * plane + k] /= count[k];
            }
        }
        Ok(Attribution {
            method: "Occlusion",
            values: Tensor::from_vec(total, (n, c, h, w), &Device::Cpu)?,
            targets,
            delta: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gauss_legendre_matches_numpy() {
        // numpy.polynomial.legendre.leggauss(2) and (3), scaled to [0, 1] as captum does.
        let (a, w) = super::gauss_legendre(2);
        let r = 0.5 / 3f64.sqrt();
        assert!((a[0] - (0.5 - r)).abs() < 1e-15 && (a[1] - (0.5 + r)).abs() < 1e-15);
        assert!((w[0] - 0.5).abs() < 1e-15 && (w[1] - 0.5).abs() < 1e-15);
        let (a, w) = super::gauss_legendre(3);
        assert!((a[1] - 0.5).abs() < 1e-15 && (w[1] - 4.0 / 9.0).abs() < 1e-15);
        for n in [1, 7, 50] {
            let (a, w) = super::gauss_legendre(n);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-13, "{n}");
            assert!(a.windows(2).all(|p| p[0] < p[1]) && a[0] > 0.0 && a[n - 1] < 1.0);
            // exact for x^k, k < 2n: the integral of x^3 over [0, 1] is 1/4
            let m3: f64 = a.iter().zip(&w).map(|(x, w)| w * x.powi(3)).sum();
            if n >= 2 {
                assert!((m3 - 0.25).abs() < 1e-13, "{n}: {m3}");
            }
        }
    }
}
