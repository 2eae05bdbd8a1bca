//! Activation maximisation (feature visualisation): optimise an input image so that a neuron,
//! a channel or a whole layer of a network fires as strongly as possible (workflow 5), plainly or
//! with Lucent's regularisations.
//!
//! ```no_run
//! use neuroscope::featvis::{FeatVis, Objective};
//! use neuroscope::models::{self, Weights};
//! let net = models::load("resnet50", &Weights::Pretrained, &candle_core::Device::Cpu)?;
//! // Workflow 5: channel 0 of layer2.0.conv3, 30 Adam steps from grey noise, lr 10.
//! let vis = FeatVis::new(Objective::channel("layer2.0.conv3", 0)).run(&net)?;
//! vis.figure().save("resnet_l2_c3_f0.png")?;
//! vis.activations_figure(0)?.save("resnet_l2_c3_f0_activations.png")?;
//! // The first 64 channels, optimised together in one batch, as an 8 x 8 grid.
//! let grid = FeatVis::channels("layer2.0.conv3", 0..64).run(&net)?;
//! // Lucent's regularised recipe: FFT parameterisation, decorrelated colour, transforms.
//! let nice = FeatVis::lucent(Objective::channel("layer2.0.conv3", 0)).run(&net)?;
//! # Ok::<(), neuroscope::Error>(())
//! ```
//!
//! Unlike workflow 5's code, the forward pass stops after the deepest layer an objective reads
//! (a layer objective on `layer2.0.conv3` never runs `layer3`, `layer4` or `fc`), and the
//! kept "best" image is the one whose loss was measured (the seed clones the image after the
//! optimiser step, one step later than the loss it records).

mod atlas;
mod objective;
mod param;
mod transform;

pub use atlas::Atlas;
pub use objective::Objective;
pub use param::Param;
pub use transform::{resize, Augment};

use crate::data::{Image, Normalize};
use crate::models::Model;
use crate::plot::{Colormap, Figure, Images, Lines, Scaling};
use crate::progress::Progress;
use crate::rng::Rng;
use crate::train::Optimizer;
use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// How the optimised image is normalised before the network.
#[derive(Clone, Debug, PartialEq)]
enum Norm {
    /// Fed as it is (workflow 5).
    None,
    /// With the statistics the network was trained on ([`crate::models::training_normalize`]):
    /// ImageNet's for torchvision's networks, Fashion-MNIST's for `fashion_cnn`, ...
    Model,
    /// With these.
    Given(Normalize),
}

/// Settings of one feature-visualisation run (workflow 5's `hook_visualise`, generalised).
///
/// Defaults are workflow 5's: raw pixels from grey 0.5 plus uniform noise of width 0.005, Adam
/// with lr 10, 30 steps, 128 x 128 pixels (or the model's fixed input size), no transforms,
/// no input normalisation, eval mode.
///
/// ```
/// use neuroscope::featvis::{FeatVis, Objective};
/// use neuroscope::models::{self, Weights};
/// let net = models::load("mnist_cnn", &Weights::Random { seed: 0 }, &candle_core::Device::Cpu)?;
/// let vis = FeatVis::new(Objective::channel("conv2", 3)).steps(5).lr(0.05).seed(1).run(&net)?;
/// let h = &vis.history[0];
/// assert_eq!(h.loss.len(), 5);
/// assert!(h.mean[4] > h.mean[0]);                   // the channel's mean activation rose
/// assert_eq!(vis.image(0)?.shape(), (1, 28, 28));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FeatVis {
    objectives: Vec<Objective>,
    steps: usize,
    lr: f64,
    size: Option<usize>,
    seed: u64,
    param: Param,
    transforms: Vec<Augment>,
    normalize: Norm,
    tv: f64,
    l2: f64,
    l2_constant: f64,
    progress: bool,
}

/// The largest image side [`FeatVis::run`] accepts, in pixels (larger sizes are refused before
/// anything is allocated; the memory estimate then refuses what this machine cannot hold).
///
/// ```
/// use neuroscope::featvis::{FeatVis, Objective, MAX_SIZE};
/// let net = neuroscope::models::load("alexnet", &neuroscope::models::Weights::Random { seed: 0 },
///     &neuroscope::device::Device::Cpu)?;
/// let err = FeatVis::new(Objective::channel("features.0", 0)).size(MAX_SIZE + 1).run(&net).unwrap_err();
/// assert!(err.to_string().contains("4096"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub const MAX_SIZE: usize = 4096;

/// Refuses an optimisation whose activations and gradients would not fit: every module's output
/// for one image at 64 px (or the model's fixed size) scaled by the area, times the images,
/// three times over (outputs, their gradients, the optimiser's and transforms' copies).
fn check_memory(model: &Model, n: usize, c: usize, h: usize, w: usize) -> Result<()> {
    let (ph, pw) = model.input_spec().size.unwrap_or((64, 64));
    let probe = Tensor::zeros((1, c, ph, pw), candle_core::DType::F32, model.device())?;
    // A network that cannot take the probe's size is left to the run itself to report.
    let Ok(outs) = model.record_all(&probe) else {
        return Ok(());
    };
    let per_image: usize = outs.values().map(|t| t.elem_count()).sum::<usize>() + c * ph * pw;
    let scale = (h * w) as f64 / (ph * pw) as f64;
    let bytes = (per_image as f64 * scale * n as f64 * 4.0 * 3.0) as u64;
    crate::device::check_memory(
        bytes,
        &format!(
            "optimising {n} image(s) of {h} x {w} px through {}",
            model.arch()
        ),
        "a smaller size, fewer images at once, or a layer closer to the input",
    )
}

impl FeatVis {
    /// One image for one objective, with workflow 5's settings.
    pub fn new(objective: Objective) -> FeatVis {
        FeatVis::each(vec![objective])
    }

    /// One image per objective, optimised together in one batch (each image's loss depends
    /// only on that image: the network runs in eval mode).
    pub fn each(objectives: Vec<Objective>) -> FeatVis {
        FeatVis {
            objectives,
            steps: 30,
            lr: 10.0,
            size: None,
            seed: 0,
            param: Param::default(),
            transforms: Vec::new(),
            normalize: Norm::None,
            tv: 0.0,
            l2: 0.0,
            l2_constant: 0.5,
            progress: true,
        }
    }

    /// One image per channel of `layer` in `channels` (workflow 5's grid of the first 64).
    ///
    /// ```
    /// let f = neuroscope::featvis::FeatVis::channels("layer2.0.conv3", 0..64);
    /// assert_eq!(f.objectives().len(), 64);
    /// ```
    pub fn channels(layer: &str, channels: std::ops::Range<usize>) -> FeatVis {
        FeatVis::each(channels.map(|c| Objective::channel(layer, c)).collect())
    }

    /// One image per class logit in `classes`, captioned by class index (name them with
    /// [`Visualization::captions`]). For small networks trained on dark-background images
    /// (MNIST, Fashion-MNIST), [`Preset::Mnist`] gives images a student recognises.
    ///
    /// ```
    /// let f = neuroscope::featvis::FeatVis::classes(0..10);
    /// assert_eq!(f.objectives()[1].to_string(), "class 1");
    /// ```
    pub fn classes(classes: std::ops::Range<usize>) -> FeatVis {
        FeatVis::each(classes.map(Objective::class).collect())
    }

    /// Lucent's `render_vis` defaults: FFT parameterisation with decorrelated colour, its
    /// standard transforms, upsampling to 224 px, ImageNet normalisation, Adam lr 0.05,
    /// 512 steps, 128 px.
    ///
    /// ```
    /// use neuroscope::featvis::{FeatVis, Objective};
    /// let f = FeatVis::lucent(Objective::channel("features.10", 0));
    /// assert_eq!((f.get_steps(), f.get_lr()), (512, 0.05));
    /// ```
    pub fn lucent(objective: Objective) -> FeatVis {
        FeatVis::new(objective).preset(Preset::Lucent)
    }

    /// Applies a preset's settings (objectives and seed kept).
    pub fn preset(mut self, preset: Preset) -> FeatVis {
        let objectives = std::mem::take(&mut self.objectives);
        let seed = self.seed;
        let mut f = FeatVis::each(objectives).seed(seed).progress(self.progress);
        if preset == Preset::Lucent {
            f.param = Param::fft();
            f.transforms = Augment::lucent();
            f.normalize = Norm::Model;
            f.lr = 0.05;
            f.steps = 512;
            f.size = Some(128);
        }
        if preset == Preset::Mnist {
            f.param = Param::Fft {
                sd: 0.01,
                decay_power: 2.0,
                decorrelate: false,
            };
            f.transforms = vec![
                Augment::Jitter(2),
                Augment::Rotate((-5..=5).map(|a| a as f32).collect()),
            ];
            f.normalize = Norm::Model;
            f.l2 = 2.0;
            f.l2_constant = 0.0;
            f.lr = 0.05;
            f.steps = 256;
        }
        f
    }

    /// Number of Adam steps (workflow 5: 30).
    pub fn steps(mut self, n: usize) -> Self {
        self.steps = n;
        self
    }

    /// Adam's learning rate (workflow 5: 10.0; Lucent: 0.05).
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Image height and width in pixels (default 128, or the model's fixed size).
    pub fn size(mut self, px: usize) -> Self {
        self.size = Some(px);
        self
    }

    /// Seed of the initial noise (image `i` of a batch uses `seed + i`, so it starts where a
    /// single run with `seed + i` does) and of the random transforms.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The image parameterisation.
    pub fn param(mut self, p: Param) -> Self {
        self.param = p;
        self
    }

    /// Random transforms applied before every forward pass (see [`Augment::lucent`]).
    pub fn transforms(mut self, t: Vec<Augment>) -> Self {
        self.transforms = t;
        self
    }

    /// Normalise the (transformed) image with these channel means and standard deviations
    /// before the network (`None`: feed it as it is, workflow 5's choice). The Lucent preset
    /// normalises with the statistics the network was trained on
    /// ([`models::training_normalize`](crate::models::training_normalize)): ImageNet's for
    /// torchvision's networks, Fashion-MNIST's for `fashion_cnn`.
    ///
    /// ```
    /// use neuroscope::data::Normalize;
    /// use neuroscope::featvis::{FeatVis, Objective};
    /// let net = neuroscope::models::load("fashion_cnn", &neuroscope::models::Weights::Trained,
    ///     &neuroscope::device::Device::Cpu)?;
    /// let vis = FeatVis::new(Objective::class(1)).normalize(Some(Normalize::fashion_mnist()))
    ///     .lr(0.05).steps(3).progress(false).run(&net)?;
    /// assert!(vis.history[0].mean[2] > vis.history[0].mean[0]);   // the Trouser logit rose
    /// // ImageNet's three channel statistics do not fit a one-channel network: refused.
    /// let err = FeatVis::new(Objective::class(1)).normalize(Some(Normalize::imagenet()))
    ///     .run(&net).unwrap_err();
    /// assert!(err.to_string().contains("3 means"), "{err}");
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn normalize(mut self, normalize: Option<Normalize>) -> Self {
        self.normalize = match normalize {
            Some(n) => Norm::Given(n),
            None => Norm::None,
        };
        self
    }

    /// The pixel value the L2 penalty pulls towards (Lucent's `L2(constant=...)`; default 0.5,
    /// mid-grey; 0 for images of light strokes on black, as [`Preset::Mnist`] sets it).
    ///
    /// ```
    /// let f = neuroscope::featvis::FeatVis::classes(0..2).l2(2.0).l2_constant(0.0);
    /// ```
    pub fn l2_constant(mut self, value: f64) -> Self {
        self.l2_constant = value;
        self
    }

    /// Weight of the total-variation penalty (sum of absolute neighbour differences).
    pub fn total_variation(mut self, weight: f64) -> Self {
        self.tv = weight;
        self
    }

    /// Weight of the L2 penalty `sqrt(sum((x - 0.5)^2))` that keeps pixels near grey.
    pub fn l2(mut self, weight: f64) -> Self {
        self.l2 = weight;
        self
    }

    /// Show a progress bar with the running loss (default on; `NEUROSCOPE_QUIET=1` hides it).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// The objectives, one per image.
    pub fn objectives(&self) -> &[Objective] {
        &self.objectives
    }

    /// The number of steps.
    pub fn get_steps(&self) -> usize {
        self.steps
    }

    /// The learning rate.
    pub fn get_lr(&self) -> f64 {
        self.lr
    }

    /// Runs the optimisation on `model` (always in eval mode).
    pub fn run(&self, model: &Model) -> Result<Visualization> {
        crate::kernels::set_up_process();
        // A copy of the network whose tensors this call numbers (evcxr: Model::for_gradients).
        let rebuilt = model.for_gradients()?;
        let model = rebuilt.as_ref().unwrap_or(model);
        let n = self.objectives.len();
        if n == 0 {
            return Err(Error::InvalidArgument(
                "no objective: give one with FeatVis::new or several with FeatVis::each".into(),
            ));
        }
        if self.steps == 0 {
            return Err(Error::InvalidArgument("steps must be at least 1".into()));
        }
        // A NaN, infinite, zero or negative rate would return the starting noise as the
        // "result" (or walk away from the objective): refused.
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "learning rate {}: give a positive finite number (workflow 5 uses 10, Lucent 0.05)",
                self.lr
            )));
        }
        let spec = model.input_spec();
        let c = spec.channels;
        let (h, w) = match (self.size, spec.size) {
            (Some(px), _) => (px, px),
            (None, Some(fixed)) => fixed,
            (None, None) => (128, 128),
        };
        if h == 0 || h > MAX_SIZE {
            return Err(Error::InvalidArgument(format!(
                "image size {h} px: give 1 to {MAX_SIZE} (workflow 5 uses 128, Lucent 224)"
            )));
        }
        check_memory(model, n, c, h, w)?;
        let normalize = match &self.normalize {
            Norm::None => None,
            Norm::Model => Some(crate::models::training_normalize(model.arch(), c)),
            Norm::Given(n) => Some(n.clone()),
        };
        if let Some(n) = &normalize {
            n.check(c).map_err(|e| {
                Error::InvalidArgument(format!(
                    "{e} ({} takes {c} channel(s); FeatVis::normalize(None) feeds the image as it is)",
                    model.arch()
                ))
            })?;
        }
        let mut names: Vec<String> = self.objectives.iter().flat_map(|o| o.layers()).collect();
        names.sort();
        names.dedup();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let needs_output = self.objectives.iter().any(Objective::needs_output);
        let device = model.device().clone();
        // The transforms' stream; the initial images draw from their own (see param::Image).
        let mut rng = Rng::new(self.seed ^ 0x7472_616e_7366_6f72);
        let image = param::Image::new(self.param, (n, c, h, w), &device, self.seed)?;
        let mut opt = crate::train::optim::State::new(Optimizer::adam(), self.lr);
        let norm = match &normalize {
            Some(nz) => {
                let per_channel =
                    |v: &[f32]| -> Vec<f32> { (0..c).map(|i| v[i.min(v.len() - 1)]).collect() };
                Some((
                    Tensor::from_vec(per_channel(&nz.mean), (1, c, 1, 1), &device)?,
                    Tensor::from_vec(per_channel(&nz.std), (1, c, 1, 1), &device)?,
                ))
            }
            None => None,
        };

        let mut history = vec![StepHistory::default(); n];
        let mut best_loss = vec![f32::INFINITY; n];
        let mut best_step = vec![0usize; n];
        let mut best: Vec<Option<Tensor>> = vec![None; n];
        let mut best_act: Vec<Option<Tensor>> = vec![None; n];
        let mut start = Vec::new();
        let mut end = Vec::new();
        let quiet = !self.progress || std::env::var("NEUROSCOPE_QUIET").is_ok_and(|v| v == "1");
        let mut bar =
            (!quiet).then(|| Progress::new(format!("featvis {}", self.label()), self.steps));
        let mut interrupted = false;
        for step in 0..self.steps {
            // A stop request (Ctrl-C in the CLI) ends the run with what it has: the best
            // image so far, the history of the steps done.
            if step > 0 && crate::progress::take_stop_request() {
                interrupted = true;
                break;
            }
            let img = image.image()?;
            let mut x = img.clone();
            for t in &self.transforms {
                x = t.apply(&x, &mut rng)?;
            }
            if let Some((fh, fw)) = spec.size {
                if x.dims()[2..] != [fh, fw] {
                    x = resize(&x, fh, fw)?;
                }
            }
            if let Some((m, s)) = &norm {
                x = x.broadcast_sub(m)?.broadcast_div(s)?;
            }
            let (acts, output) = if needs_output {
                let (y, acts) = model.forward_with(&x, &names)?;
                (acts, Some(y))
            } else {
                (model.record(&x, &names)?, None)
            };
            let mut losses = Vec::with_capacity(n);
            let mut targets = Vec::with_capacity(n);
            for (i, o) in self.objectives.iter().enumerate() {
                let (score, target) = o.evaluate(&acts, output.as_ref(), i)?;
                let mut loss = score.neg()?;
                if self.tv != 0.0 || self.l2 != 0.0 {
                    let xi = img.get(i)?;
                    if self.tv != 0.0 {
                        loss = (loss + (total_variation(&xi)? * self.tv)?)?;
                    }
                    if self.l2 != 0.0 {
                        let l2 = ((xi - self.l2_constant)?.sqr()?.sum_all()? + 1e-6)?.sqrt()?;
                        loss = (loss + (l2 * self.l2)?)?;
                    }
                }
                losses.push(loss);
                targets.push(target.detach());
            }
            let total = Tensor::stack(&losses, 0)?;
            let grads = total.sum_all()?.backward()?;
            let values: Vec<f32> = total.to_dtype(DType::F32)?.to_vec1()?;
            for i in 0..n {
                let t = targets[i]
                    .to_dtype(DType::F32)?
                    .to_device(&candle_core::Device::Cpu)?;
                let v = t.flatten_all()?.to_vec1::<f32>()?;
                history[i].push(values[i], &v);
                // The first step always counts (a NaN loss, from too large a learning rate, must
                // not leave no image), and a finite loss replaces a NaN one.
                let better = best[i].is_none()
                    || values[i] < best_loss[i]
                    || (best_loss[i].is_nan() && !values[i].is_nan());
                if better {
                    best_loss[i] = values[i];
                    best_step[i] = step;
                    best[i] = Some(img.get(i)?.detach().copy()?);
                    best_act[i] = Some(t.clone());
                }
                if step == 0 {
                    start.push(t.clone());
                    end.push(t);
                } else {
                    end[i] = t;
                }
            }
            if let Some(b) = &mut bar {
                b.inc(1);
                b.set_message(format!("loss {:.4}", values.iter().sum::<f32>() / n as f32));
            }
            opt.step(image.vars(), &grads)?;
        }
        if let Some(b) = &mut bar {
            b.finish();
        }
        // Every objective has a best image and activation: step 0 always sets them.
        let missing = || Error::InvalidArgument("internal: no step ran".into());
        let best: Vec<Tensor> = best
            .into_iter()
            .map(|b| b.ok_or_else(missing))
            .collect::<Result<_>>()?;
        Ok(Visualization {
            objectives: self.objectives.clone(),
            images: Tensor::stack(&best, 0)?.to_device(&candle_core::Device::Cpu)?,
            best_step,
            best_loss,
            best_activation: best_act
                .into_iter()
                .map(|b| b.ok_or_else(missing))
                .collect::<Result<_>>()?,
            history,
            start,
            end,
            interrupted,
            pixels: matches!(self.param, Param::Pixels { .. }),
            captions: None,
        })
    }

    fn label(&self) -> String {
        match self.objectives.as_slice() {
            [o] => o.to_string(),
            os => format!("{} objectives", os.len()),
        }
    }
}

/// Built-in recipes.
///
/// ```
/// use neuroscope::featvis::Preset;
/// assert_eq!(Preset::parse("lucent").unwrap(), Preset::Lucent);
/// assert_eq!("mnist".parse::<Preset>().unwrap(), Preset::Mnist);
/// assert!(Preset::parse("fancy").unwrap_err().to_string().contains("plain, lucent, mnist"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Workflow 5: raw pixels, no regularisation, lr 10, 30 steps.
    Plain,
    /// Lucent's `render_vis` defaults.
    Lucent,
    /// For small networks trained on light strokes on black (MNIST, Fashion-MNIST): a Fourier
    /// image at the network's size with a strong low-frequency prior (decay 2, one channel),
    /// jitter 2 px and rotation by up to 5 degrees, an L2 penalty (weight 2) pulling pixels to
    /// black, the network's training normalisation, Adam lr 0.05, 256 steps. Lucent's recipe
    /// on such a network tiles strokes over the whole square; this one leaves the background
    /// dark, so a class image is one object (trousers for Fashion-MNIST's class 1).
    Mnist,
}

impl Preset {
    /// The names [`Preset::parse`] accepts.
    pub const NAMES: [&'static str; 3] = ["plain", "lucent", "mnist"];

    /// `plain`, `lucent` or `mnist` (also through `str::parse`).
    pub fn parse(s: &str) -> Result<Preset> {
        match s {
            "plain" => Ok(Preset::Plain),
            "lucent" => Ok(Preset::Lucent),
            "mnist" => Ok(Preset::Mnist),
            _ => Err(Error::unknown(
                "preset",
                s,
                Preset::NAMES.map(String::from).to_vec(),
            )),
        }
    }
}

from_str_by_parse!(Preset);

/// Lucent's total variation: the sum of absolute differences between neighbouring pixels.
fn total_variation(x: &Tensor) -> Result<Tensor> {
    let (_, h, w) = x.dims3()?;
    let dy = (x.narrow(1, 1, h - 1)? - x.narrow(1, 0, h - 1)?)?
        .abs()?
        .sum_all()?;
    let dx = (x.narrow(2, 1, w - 1)? - x.narrow(2, 0, w - 1)?)?
        .abs()?
        .sum_all()?;
    Ok((dy + dx)?)
}

/// Per-step statistics of one image's target activation (workflow 5's `history`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepHistory {
    /// The loss (negative objective plus penalties).
    pub loss: Vec<f32>,
    /// Mean of the target activation.
    pub mean: Vec<f32>,
    /// Its maximum.
    pub max: Vec<f32>,
    /// Its minimum.
    pub min: Vec<f32>,
}

impl StepHistory {
    fn push(&mut self, loss: f32, act: &[f32]) {
        self.loss.push(loss);
        self.mean
            .push(act.iter().sum::<f32>() / act.len().max(1) as f32);
        self.max
            .push(act.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        self.min
            .push(act.iter().copied().fold(f32::INFINITY, f32::min));
    }
}

/// The result: the best image per objective, the history and the activations.
#[derive(Clone, Debug)]
pub struct Visualization {
    /// The objectives, one per image.
    pub objectives: Vec<Objective>,
    /// The best (lowest-loss) image per objective, `N x C x H x W`, on the CPU, as fed to the
    /// transforms (raw pixels for `Param::Pixels`, in `(0, 1)` for `Param::Fft`).
    pub images: Tensor,
    /// The step (from 0) at which each best image was measured.
    pub best_step: Vec<usize>,
    /// Each best image's loss.
    pub best_loss: Vec<f32>,
    /// Each best image's target activation (a map, a layer, a unit).
    pub best_activation: Vec<Tensor>,
    /// Per-image history.
    pub history: Vec<StepHistory>,
    /// The target activation at the first step (workflow 5's `start_act`).
    pub start: Vec<Tensor>,
    /// The target activation at the last step run (workflow 5's `end_act`).
    pub end: Vec<Tensor>,
    /// Whether a stop request ([`crate::progress::request_stop`], Ctrl-C in the CLI) ended
    /// the run early; the history holds the steps that ran.
    pub interrupted: bool,
    pixels: bool,
    captions: Option<Vec<String>>,
}

impl Visualization {
    /// Best image `i` clamped to `[0, 1]` for display (workflow 5's `torch.clamp(image, 0, 1)`).
    pub fn image(&self, i: usize) -> Result<Image> {
        let n = self.objectives.len();
        if i >= n {
            return Err(Error::InvalidArgument(format!(
                "image {i} is out of range: there are {n} (0..{n})"
            )));
        }
        let t = self.images.get(i)?.clamp(0f32, 1f32)?;
        let (c, h, w) = t.dims3()?;
        Image::new(c, h, w, t.flatten_all()?.to_vec1()?)
    }

    /// Captions for [`figure`](Self::figure)'s images in place of the objectives' names
    /// (class names for [`FeatVis::classes`]); one per image.
    ///
    /// ```
    /// use neuroscope::featvis::FeatVis;
    /// let net = neuroscope::models::load("fashion_cnn", &neuroscope::models::Weights::Trained,
    ///     &neuroscope::device::Device::Cpu)?;
    /// let vis = FeatVis::classes(0..2).steps(1).progress(false).run(&net)?;
    /// let vis = vis.captions(vec!["T-shirt/top".into(), "Trouser".into()])?;
    /// assert!(vis.clone().captions(vec!["one".into()]).is_err());
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn captions(mut self, captions: Vec<String>) -> Result<Self> {
        if captions.len() != self.objectives.len() {
            return Err(Error::InvalidArgument(format!(
                "{} captions for {} images: give one per image",
                captions.len(),
                self.objectives.len()
            )));
        }
        self.captions = Some(captions);
        Ok(self)
    }

    /// All best images as a grid captioned by objective (8 columns for 64 images).
    pub fn figure(&self) -> Figure {
        let n = self.objectives.len();
        let images: Vec<Image> = (0..n).filter_map(|i| self.image(i).ok()).collect();
        let columns = (n as f64).sqrt().ceil().max(1.0) as usize;
        let layers: Vec<String> = {
            let mut l: Vec<String> = self.objectives.iter().flat_map(|o| o.layers()).collect();
            l.dedup();
            l
        };
        // "channel 3" alone only when every image reads the same layer (the title names it).
        let captions: Vec<String> = match &self.captions {
            Some(c) => c.clone(),
            None => self
                .objectives
                .iter()
                .map(|o| match o {
                    Objective::Channel { channel, .. } if n > 1 && layers.len() == 1 => {
                        format!("channel {channel}")
                    }
                    o => o.to_string(),
                })
                .collect(),
        };
        let title = if n == 1 {
            format!("Feature visualisation: {}", self.objectives[0])
        } else if layers.is_empty() {
            format!("Feature visualisation ({n} images)")
        } else {
            format!(
                "Feature visualisation: {} ({} images)",
                layers.join(", "),
                n
            )
        };
        // One title: the figure's (the grid drew the same text a second time below it).
        let grid = Images::from_images(images)
            .captions(&captions)
            .unwrap_or_else(|_| Images::new())
            .columns(columns);
        let side = (180 * columns).clamp(360, 1400) as u32;
        let rows = n.div_ceil(columns) as u32;
        Figure::single(grid.into())
            .title(title)
            .size(side, (side / columns as u32) * rows + 90)
    }

    /// Workflow 5's history plot for image `i`: mean, max and min activation and the loss per step.
    pub fn history_figure(&self, i: usize) -> Result<Figure> {
        let h = self.history.get(i).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "image {i} is out of range: there are {}",
                self.history.len()
            ))
        })?;
        let pts = |v: &[f32]| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .map(|(s, &y)| (s as f64 + 1.0, y as f64))
                .collect()
        };
        let acts = Lines::new()
            .points("mean", &pts(&h.mean))
            .points("max", &pts(&h.max))
            .points("min", &pts(&h.min))
            .title("Target activation")
            .xlabel("iteration")
            .ylabel("activation");
        let loss = Lines::new()
            .points("loss", &pts(&h.loss))
            .title("Loss")
            .xlabel("iteration")
            .ylabel("loss (negative objective)");
        Ok(Figure::grid(vec![acts.into(), loss.into()], 2)
            .title(format!("Optimisation history: {}", self.objectives[i]))
            .size(1000, 380))
    }

    /// Workflow 5's `display_activations`: the target's map at the start and at the end, on one
    /// shared colour scale (a layer target shows its mean over channels).
    pub fn activations_figure(&self, i: usize) -> Result<Figure> {
        let (Some(s), Some(e)) = (self.start.get(i), self.end.get(i)) else {
            return Err(Error::InvalidArgument(format!(
                "image {i} is out of range: there are {}",
                self.start.len()
            )));
        };
        let as_map = |t: &Tensor| -> Result<Image> {
            let t = match t.rank() {
                0 => t.reshape((1, 1))?,
                1 => t.unsqueeze(0)?,
                2 => t.clone(),
                _ => t.flatten_to(t.rank() - 3)?.mean(0)?,
            };
            let (h, w) = t.dims2()?;
            Image::new(1, h, w, t.flatten_all()?.to_vec1()?)
        };
        let grid = Images::new()
            .push(as_map(s)?, "Start activations")
            .push(as_map(e)?, "End activations")
            .columns(2)
            .scaling(Scaling::Shared)
            .cmap(Colormap::Viridis)
            .title(format!("{}", self.objectives[i]));
        Ok(Figure::single(grid.into())
            .title(format!(
                "Activations before and after: {}",
                self.objectives[i]
            ))
            .size(700, 420))
    }

    /// The history as JSON (`[{"objective", "best_step", "best_loss", "loss", "mean", "max",
    /// "min"}]`), what the CLI's `--history` writes.
    pub fn history_json(&self) -> String {
        let items: Vec<serde_json::Value> = self
            .objectives
            .iter()
            .enumerate()
            .map(|(i, o)| {
                serde_json::json!({
                    "objective": o.to_string(),
                    "best_step": self.best_step[i],
                    "best_loss": self.best_loss[i],
                    "loss": self.history[i].loss,
                    "mean": self.history[i].mean,
                    "max": self.history[i].max,
                    "min": self.history[i].min,
                })
            })
            .collect();
        serde_json::to_string_pretty(&items).unwrap_or_default()
    }

    /// Saves the result: one objective and a `.png` path give the best image itself at its
    /// size (workflow 5's `optimized_image`); otherwise the captioned grid ([`figure`]) as `.svg`,
    /// `.png` or `.html`.
    ///
    /// [`figure`]: Visualization::figure
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if self.objectives.len() == 1 && png {
            crate::io::output::write_atomic(path, &self.image(0)?.to_png(1)?)
        } else {
            self.figure().save(path)
        }
    }

    /// Writes [`history_json`](Visualization::history_json) to `path`.
    pub fn save_history(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        crate::io::output::write_atomic(path, self.history_json().as_bytes())
    }

    /// True when the images are raw pixels (workflow 5), which may lie outside `[0, 1]`.
    pub fn is_raw_pixels(&self) -> bool {
        self.pixels
    }

    /// Renders the image grid inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        self.figure().evcxr_display()
    }
}
