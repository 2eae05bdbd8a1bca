//! Networks whose every module has its PyTorch dotted name, so any layer's output can be
//! recorded in the same forward pass, without hooks.
//!
//! Candle has no forward hooks, and candle-transformers' CNNs return opaque closures, so
//! neuroscope owns its model graph: a tree of [`Layer`]s whose containers run their children
//! through a [`Ctx`]. The context knows the current dotted path (`features.3`,
//! `layer2.0.conv3`), keeps the outputs that were asked for, and lets the forward pass stop as
//! soon as the last requested layer has run (recording AlexNet's `features` never touches its
//! classifier). The recorded value is each module's own output: for a conv followed by an
//! in-place ReLU in torchvision, the conv's output, before the ReLU.
//!
//! ```
//! use neuroscope::models::{self, Weights};
//! use neuroscope::device::Device;
//! let net = models::load("mnist_cnn", &Weights::Random { seed: 0 }, &Device::Cpu)?;
//! let x = candle_core::Tensor::zeros((2, 1, 28, 28), candle_core::DType::F32, &Device::Cpu)?;
//! let acts = net.record(&x, &["conv1", "h5"])?;
//! assert_eq!(acts["conv1"].dims(), &[2, 20, 24, 24]);
//! assert_eq!(acts["h5"].dims(), &[2, 500]);
//! # Ok::<(), neuroscope::Error>(())
//! ```
//!
//! Your own network gets names, summaries and recording from the same blocks:
//!
//! ```
//! use neuroscope::models::{layers::*, Model, InputSpec};
//! use candle_nn::VarBuilder;
//! let build = |vb: VarBuilder| -> neuroscope::Result<Box<dyn Layer>> {
//!     let mut net = Sequential::new();
//!     net.push(Conv2d::new(vb.pp("0"), ConvSpec::new(1, 8, 3), InitScheme::TorchDefault)?);
//!     net.push(Activation::ReLU);
//!     net.push(Activation::Flatten);
//!     net.push(Linear::new(vb.pp("3"), 8 * 6 * 6, 10, InitScheme::TorchDefault)?);
//!     Ok(Box::new(net))
//! };
//! let net = Model::build("tiny", InputSpec::fixed(1, 8, 8), &neuroscope::models::Weights::Random { seed: 1 },
//!                        &neuroscope::device::Device::Cpu, build)?;
//! assert_eq!(net.layer_names(), vec!["0", "1", "2", "3"]);
//! assert_eq!(net.state_dict().len(), 4);
//! # Ok::<(), neuroscope::Error>(())
//! ```

pub mod alexnet;
pub mod cifar_cnn;
pub mod convnext;
pub mod efficientnet;
pub mod fashion_cnn;
pub mod googlenet;
pub mod layers;
pub mod mnist_cnn;
pub mod mobilenet_v2;
pub mod resnet;
pub mod summary;
pub mod trained;
pub mod vgg;
pub mod vit;
pub mod weights;

pub use layers::Layer;
pub use weights::Weights;

use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::{BTreeMap, HashSet};

/// The forward pass's companion: the current module path, what to record, and the mode.
pub struct Ctx {
    path: Vec<String>,
    wanted: Option<HashSet<String>>,
    outputs: BTreeMap<String, Tensor>,
    stop_early: bool,
    trace: Option<Vec<summary::Traced>>,
    /// Tensors added to named module outputs (zeros in practice): the gradient of a score with
    /// respect to such a probe is its gradient with respect to the module's output, which
    /// candle's backward does not keep for intermediate tensors (attribution's Grad-CAM).
    probes: BTreeMap<String, Tensor>,
    /// The probes applied so far (a probe on a functional output is never applied).
    probed: HashSet<String>,
    /// Training mode (batch norm uses batch statistics, dropout is active).
    pub train: bool,
    rng: Rng,
}

impl Ctx {
    /// A context that records the modules named in `wanted` (all modules when `None`).
    pub fn new(wanted: Option<HashSet<String>>) -> Self {
        // Every forward pass starts here, however the network was built.
        crate::kernels::set_up_process();
        Ctx {
            path: Vec::new(),
            wanted,
            outputs: BTreeMap::new(),
            stop_early: false,
            trace: None,
            probes: BTreeMap::new(),
            probed: HashSet::new(),
            train: false,
            rng: Rng::new(0),
        }
    }

    /// Adds the probe of `full` (if any) to a module's output, then records it if asked.
    fn finish(&mut self, full: String, y: Tensor) -> Result<Tensor> {
        let y = match self.probes.get(&full) {
            Some(p) => {
                self.probed.insert(full.clone());
                y.add(p)?
            }
            None => y,
        };
        if self.wants(&full) {
            self.outputs.insert(full, y.clone());
        }
        Ok(y)
    }

    /// Runs `layer` as the child `name` of the current module and records its output if asked.
    pub fn run(&mut self, name: &str, layer: &dyn Layer, x: &Tensor) -> Result<Tensor> {
        self.path.push(name.to_string());
        let y = layer.forward(x, self);
        let full = self.path.join(".");
        self.path.pop();
        let y = y?;
        if let Some(trace) = &mut self.trace {
            trace.push(summary::Traced::new(&full, layer, &y));
        }
        self.finish(full, y)
    }

    /// `relu(layer(x))`, `layer` run as the child `name` (workflow 3's functional `F.relu`
    /// after a module). When that child's own output is neither recorded nor traced, the layer
    /// applies the ReLU in its own output buffer ([`Layer::forward_fused`]).
    pub fn run_relu(&mut self, name: &str, layer: &dyn Layer, x: &Tensor) -> Result<Tensor> {
        match self.fused(name, layer, x, &crate::kernels::Epilogue::relu())? {
            Some(y) => Ok(y),
            None => crate::kernels::relu(&self.run(name, layer, x)?),
        }
    }

    /// Runs `chain[0]` as [`run`](Self::run) does, fused with as many of the layers after it
    /// as it can apply in its own output buffer (a batch norm with fixed statistics, then a
    /// ReLU: [`crate::kernels::Epilogue`]) when the outputs in between are neither recorded nor traced;
    /// the last fused layer's output is recorded under its name as usual. Returns the output
    /// and how many layers of `chain` ran. Training and feature visualisation, which record
    /// little, save a pass per fused layer and candle's backward bookkeeping of the tensors
    /// in between; the values are the same, bit for bit.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use candle_nn::VarBuilder;
    /// use neuroscope::models::layers::{Activation, Conv2d, ConvSpec, InitScheme, Layer};
    /// use neuroscope::models::{Ctx, InputSpec, Model, Weights};
    /// #[derive(Debug)]
    /// struct Stem(Conv2d);
    /// impl Layer for Stem {
    ///     fn kind(&self) -> &'static str { "Stem" }
    ///     fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> neuroscope::Result<Tensor> {
    ///         ctx.run_chain(&[("conv", &self.0), ("relu", &Activation::ReLU)], x)
    ///     }
    ///     fn children(&self) -> Vec<(String, &dyn Layer)> {
    ///         vec![("conv".into(), &self.0), ("relu".into(), &Activation::ReLU)]
    ///     }
    /// }
    /// let build = |vb: VarBuilder| -> neuroscope::Result<Box<dyn Layer>> {
    ///     Ok(Box::new(Stem(Conv2d::new(vb.pp("conv"), ConvSpec::new(1, 4, 3), InitScheme::TorchDefault)?)))
    /// };
    /// let net = Model::build("stem", InputSpec::fixed(1, 6, 6), &Weights::Random { seed: 1 }, &Device::Cpu, build)?;
    /// let x = Tensor::randn(0f32, 1.0, (2, 1, 6, 6), &Device::Cpu)?;
    /// let fused = net.forward(&x)?;                       // conv and ReLU as one operation
    /// let rec = net.record(&x, &["conv", "relu"])?;       // both recorded: run one by one
    /// let v = |t: &Tensor| t.flatten_all().and_then(|t| t.to_vec1::<f32>());
    /// assert_eq!(v(&fused)?, v(&rec["relu"])?);
    /// assert!(v(&rec["conv"])?.iter().any(|&a| a < 0.0)); // the conv's own output, pre-ReLU
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn run_fusing(
        &mut self,
        chain: &[(&str, &dyn Layer)],
        x: &Tensor,
    ) -> Result<(Tensor, usize)> {
        let Some(&(name, head)) = chain.first() else {
            return Err(Error::InvalidArgument("run_fusing: empty chain".into()));
        };
        let mut epi = crate::kernels::Epilogue::default();
        let mut taken = 0;
        for (k, &(_, layer)) in chain.iter().enumerate().skip(1) {
            if self.trace.is_some() || self.wants(&self.child_path(chain[k - 1].0)) {
                break;
            }
            match layer.as_epilogue(self)? {
                Some(step) if epi.append(&step) => taken = k,
                _ => break,
            }
        }
        if taken > 0 {
            if let Some(y) = self.fused(name, head, x, &epi)? {
                let full = self.child_path(chain[taken].0);
                return Ok((self.finish(full, y)?, taken + 1));
            }
        }
        Ok((self.run(name, head, x)?, 1))
    }

    /// Runs every layer of `chain` in order through [`run_fusing`](Self::run_fusing).
    pub fn run_chain(&mut self, chain: &[(&str, &dyn Layer)], x: &Tensor) -> Result<Tensor> {
        let (mut y, mut k) = (x.clone(), 0);
        while k < chain.len() {
            let (out, ran) = self.run_fusing(&chain[k..], &y)?;
            y = out;
            k += ran;
        }
        Ok(y)
    }

    /// `layer` and `epi` in one operation as the child `name`, unless the child's output is
    /// recorded or traced or the layer cannot fuse.
    fn fused(
        &mut self,
        name: &str,
        layer: &dyn Layer,
        x: &Tensor,
        epi: &crate::kernels::Epilogue,
    ) -> Result<Option<Tensor>> {
        if self.trace.is_some() || self.wants(&self.child_path(name)) {
            return Ok(None);
        }
        self.path.push(name.to_string());
        let y = layer.forward_fused(x, self, epi);
        self.path.pop();
        y
    }

    /// The full name of the current module's child `name`.
    fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path.join("."))
        }
    }

    /// Whether the output named `full` is to be recorded.
    fn wants(&self, full: &str) -> bool {
        self.wanted.as_ref().is_none_or(|w| w.contains(full))
    }

    /// Records a value that is not a module's output (a functional step such as the seed-3
    /// network's `F.relu`) under `name` relative to the current path.
    pub fn tap(&mut self, name: &str, y: &Tensor) {
        let full = self.child_path(name);
        if self.wants(&full) {
            self.outputs.insert(full, y.clone());
        }
    }

    /// True when early stopping is on and every requested output has been recorded:
    /// containers then skip the rest of the network.
    pub fn is_done(&self) -> bool {
        self.stop_early
            && self
                .wanted
                .as_ref()
                .is_some_and(|w| w.len() == self.outputs.len())
    }

    /// The generator for stochastic layers (dropout) in training mode.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Sets the training-mode seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = Rng::new(seed);
        self
    }
}

/// The input a model expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputSpec {
    /// Channels.
    pub channels: usize,
    /// A fixed height and width, or `None` when any size of at least `min_size` works.
    pub size: Option<(usize, usize)>,
    /// Smallest height/width that runs through the network.
    pub min_size: usize,
    /// The usual size (for summaries and docs).
    pub default_size: (usize, usize),
}

impl InputSpec {
    /// Exactly `channels x height x width`.
    pub fn fixed(channels: usize, height: usize, width: usize) -> Self {
        InputSpec {
            channels,
            size: Some((height, width)),
            min_size: height.min(width),
            default_size: (height, width),
        }
    }
    /// Any size of at least `min_size`, usually `default` (224 x 224 for ImageNet networks).
    pub fn flexible(channels: usize, min_size: usize, default: usize) -> Self {
        InputSpec {
            channels,
            size: None,
            min_size,
            default_size: (default, default),
        }
    }
    fn expected(&self) -> String {
        match self.size {
            Some((h, w)) => format!("N x {} x {h} x {w}", self.channels),
            None => format!(
                "N x {} x H x W with H, W >= {} (usually {} x {})",
                self.channels, self.min_size, self.default_size.0, self.default_size.1
            ),
        }
    }
}

/// One module of a model, as [`Model::layers`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// Dotted PyTorch name (`features.0`, `layer2.0.conv3`).
    pub name: String,
    /// PyTorch class name (`Conv2d`).
    pub kind: String,
    /// Hyper-parameters, as PyTorch's repr shows them.
    pub describe: String,
    /// Depth in the module tree (top-level modules are 1).
    pub depth: usize,
    /// Number of parameters of this module and its children (buffers excluded).
    pub params: usize,
}

/// A network with named modules.
pub struct Model {
    arch: String,
    root: Box<dyn Layer>,
    input: InputSpec,
    taps: Vec<String>,
    device: Device,
    trained: Option<&'static trained::TrainedWeights>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({}, {} layers)", self.arch, self.layers().len())
    }
}

/// Every architecture [`load`] builds, by torchvision name (plus the seed networks).
pub const ARCHS: [&str; 29] = [
    "alexnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "googlenet",
    "mobilenet_v2",
    "vit_b_16",
    "vit_b_32",
    "vit_l_16",
    "convnext_tiny",
    "convnext_small",
    "convnext_base",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "mnist_cnn",
    "cifar_cnn",
    "fashion_cnn",
];

/// Builds architecture `arch` (one of [`ARCHS`]) with `weights` on `device`.
///
/// ```
/// use neuroscope::models::{load, Weights};
/// let err = load("alexnet2", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu).unwrap_err();
/// assert!(err.to_string().contains("resnet50"));
/// ```
pub fn load(arch: &str, weights: &Weights, device: &Device) -> Result<Model> {
    crate::kernels::set_up_process();
    match arch {
        "alexnet" => alexnet::alexnet(weights, device),
        "mnist_cnn" => mnist_cnn::mnist_cnn(weights, device),
        "cifar_cnn" => cifar_cnn::cifar_cnn(weights, device),
        "fashion_cnn" => fashion_cnn::fashion_cnn(weights, device),
        "googlenet" => googlenet::googlenet(weights, device),
        "mobilenet_v2" => mobilenet_v2::mobilenet_v2(weights, device),
        a if a.starts_with("vgg") => vgg::vgg(a, weights, device),
        a if a.starts_with("resnet") => resnet::resnet(a, weights, device),
        a if a.starts_with("vit_") => vit::vit(a, weights, device),
        a if a.starts_with("convnext_") => convnext::convnext(a, weights, device),
        a if a.starts_with("efficientnet_") => efficientnet::efficientnet(a, weights, device),
        _ => Err(Error::unknown("architecture", arch, ARCHS)),
    }
}

/// The usual preprocessing for feeding `arch` images of any size and channel count: resize to
/// the model's size, match its channels, normalise with its training statistics (ImageNet's for
/// the torchvision networks, MNIST's for `mnist_cnn`, (0.5, 0.5) for `cifar_cnn`).
///
/// ```
/// use neuroscope::data::{Image, Transform};
/// let tf = neuroscope::models::default_transform("alexnet");
/// let out = tf.apply(Image::new(1, 28, 28, vec![0.0; 784]).unwrap()).unwrap();
/// assert_eq!(out.shape(), (3, 224, 224));
/// ```
pub fn default_transform(arch: &str) -> crate::data::Compose {
    use crate::data::transforms::Compose;
    let norm = training_normalize(arch, 3);
    match arch {
        "mnist_cnn" | "fashion_cnn" => Compose::new().resize(28, 28).grayscale(1).normalize(norm),
        "cifar_cnn" => Compose::new().resize(32, 32).gray_to_rgb().normalize(norm),
        _ => Compose::new()
            .resize(224, 224)
            .gray_to_rgb()
            .normalize(norm),
    }
}

/// The input statistics `arch` was trained with: MNIST's for `mnist_cnn`, Fashion-MNIST's for
/// `fashion_cnn`, (0.5, 0.5) for `cifar_cnn`, ImageNet's for torchvision's networks; for an
/// unknown network, ImageNet's when it takes 3 channels and (0, 1) (none) otherwise.
/// Feature visualisation's Lucent preset normalises its images with it.
///
/// ```
/// use neuroscope::{data::Normalize, models::training_normalize};
/// assert_eq!(training_normalize("fashion_cnn", 1), Normalize::fashion_mnist());
/// assert_eq!(training_normalize("resnet50", 3), Normalize::imagenet());
/// assert_eq!(training_normalize("my_net", 1), Normalize::new(&[0.0], &[1.0]));
/// ```
pub fn training_normalize(arch: &str, channels: usize) -> crate::data::Normalize {
    use crate::data::transforms::Normalize;
    match arch {
        "mnist_cnn" => Normalize::mnist(),
        "fashion_cnn" => Normalize::fashion_mnist(),
        "cifar_cnn" => Normalize::half(),
        _ if ARCHS.contains(&arch) || channels == 3 => Normalize::imagenet(),
        _ => Normalize::new(&[0.0], &[1.0]),
    }
}

impl Model {
    /// Builds a model from a function that constructs its root module from a `VarBuilder`
    /// (whose prefix is empty: children use `vb.pp("features")` and so on). Fails with
    /// PyTorch's load report when `weights` do not fit.
    pub fn build(
        arch: &str,
        input: InputSpec,
        weights: &Weights,
        device: &Device,
        f: impl FnOnce(VarBuilder<'static>) -> Result<Box<dyn Layer>>,
    ) -> Result<Model> {
        let (builder, vb) = weights::Builder::new(arch, weights, device)?;
        let root = f(vb)?;
        builder.finish(arch)?;
        Ok(Model {
            arch: arch.to_string(),
            root,
            input,
            taps: Vec::new(),
            device: device.clone(),
            trained: match weights {
                Weights::Trained => trained::find(arch),
                _ => None,
            },
        })
    }

    /// Declares names the forward pass records with [`Ctx::tap`] (functional steps that are
    /// no module, such as the seed-3 network's `h1`..`h6`), so they can be asked for.
    pub fn with_taps(mut self, taps: &[&str]) -> Self {
        self.taps.extend(taps.iter().map(|t| t.to_string()));
        self
    }

    /// The shipped weights this model was built with ([`Weights::Trained`]): what trained
    /// them and their test accuracy; `None` for other weights.
    pub fn trained(&self) -> Option<&'static trained::TrainedWeights> {
        self.trained
    }

    /// The architecture's name.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// The input the model expects.
    pub fn input_spec(&self) -> InputSpec {
        self.input
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The root module.
    pub fn root(&self) -> &dyn Layer {
        self.root.as_ref()
    }

    /// Every module in PyTorch's `named_modules()` order (the root excluded), with its type
    /// and parameter count: workflow 5's `view_available_layers`.
    pub fn layers(&self) -> Vec<LayerInfo> {
        let mut out = Vec::new();
        fn walk(prefix: &str, layer: &dyn Layer, depth: usize, out: &mut Vec<LayerInfo>) -> usize {
            let own: usize = layer
                .parameters()
                .iter()
                .filter(|(n, _)| {
                    !matches!(*n, "running_mean" | "running_var" | "num_batches_tracked")
                })
                .map(|(_, t)| t.elem_count())
                .sum();
            let slot = out.len();
            if !prefix.is_empty() {
                out.push(LayerInfo {
                    name: prefix.to_string(),
                    kind: layer.kind().to_string(),
                    describe: layer.describe(),
                    depth,
                    params: 0,
                });
            }
            let mut total = own;
            for (name, child) in layer.children() {
                let full = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}.{name}")
                };
                total += walk(&full, child, depth + 1, out);
            }
            if !prefix.is_empty() {
                out[slot].params = total;
            }
            total
        }
        walk("", self.root.as_ref(), 0, &mut out);
        out
    }

    /// The names of [`layers`](Model::layers), then the taps.
    pub fn layer_names(&self) -> Vec<String> {
        self.layers()
            .into_iter()
            .map(|l| l.name)
            .chain(self.taps.iter().cloned())
            .collect()
    }

    /// The state dict, in PyTorch's order, with torchvision's key names.
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        fn walk(prefix: &str, layer: &dyn Layer, out: &mut Vec<(String, Tensor)>) {
            for (n, t) in layer.parameters() {
                out.push((
                    if prefix.is_empty() {
                        n.to_string()
                    } else {
                        format!("{prefix}.{n}")
                    },
                    t,
                ));
            }
            for (name, child) in layer.children() {
                let full = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}.{name}")
                };
                walk(&full, child, out);
            }
        }
        walk("", self.root.as_ref(), &mut out);
        out
    }

    /// Saves the state dict as `.safetensors`.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        weights::save_safetensors(&self.state_dict(), path)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let bad = || Error::Shape {
            what: format!("input of {}", self.arch),
            expected: self.input.expected(),
            got: x
                .dims()
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(" x "),
        };
        let &[_, c, h, w] = x.dims() else {
            return Err(bad());
        };
        let ok = c == self.input.channels
            && match self.input.size {
                Some(s) => s == (h, w),
                None => h >= self.input.min_size && w >= self.input.min_size,
            };
        if ok {
            Ok(())
        } else {
            Err(bad())
        }
    }

    /// Checks names against the model, or lists the valid names.
    fn resolve(&self, names: &[&str]) -> Result<HashSet<String>> {
        let valid: HashSet<String> = self.layer_names().into_iter().collect();
        names
            .iter()
            .map(|&n| {
                if valid.contains(n) {
                    Ok(n.to_string())
                } else {
                    Err(Error::unknown("layer", n, self.layer_names()))
                }
            })
            .collect()
    }

    /// The network's output (eval mode).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let mut ctx = Ctx::new(Some(HashSet::new()));
        self.root.forward(x, &mut ctx)
    }

    /// The output and the outputs of the named modules, in one pass (eval mode).
    pub fn forward_with(
        &self,
        x: &Tensor,
        names: &[&str],
    ) -> Result<(Tensor, BTreeMap<String, Tensor>)> {
        self.run(x, names, false, false)
    }

    /// For a backward pass: a built-in network rebuilt from copies of its weights (`None`
    /// for a network built elsewhere, which is used as it is).
    ///
    /// Why: in evcxr every cell is its own library with its own copy of candle's statics, so
    /// tensor ids restart at 1 in each cell. A network built in an earlier cell holds weights
    /// numbered by that cell's counter, while a backward pass's image and activations are
    /// numbered by this cell's, and candle's backward (which keys gradients by id) then confuses
    /// two tensors: "shape mismatch in sub" 64 channels into workflow 5's notebook, or silently
    /// different gradients. Copies numbered by the current counter make every tensor of the
    /// pass come from one counter; ResNet-50's 100 MB copy takes 10-60 ms on 2 cores.
    pub(crate) fn for_gradients(&self) -> Result<Option<Model>> {
        if !ARCHS.contains(&self.arch()) {
            return Ok(None);
        }
        let copies = self
            .state_dict()
            .into_iter()
            .map(|(k, t)| Ok((k, t.copy()?)))
            .collect::<Result<_>>()?;
        Ok(Some(load(
            self.arch(),
            &Weights::Tensors(copies),
            self.device(),
        )?))
    }

    /// The output, with `probes` added to the named modules' outputs (each probe has its
    /// module's output shape; a probed module is never fused with the layers after it), and
    /// the probed outputs themselves. The gradient of a function of the output with respect
    /// to a zero probe is its gradient with respect to that module's output.
    pub(crate) fn forward_probed(
        &self,
        x: &Tensor,
        probes: BTreeMap<String, Tensor>,
    ) -> Result<(Tensor, BTreeMap<String, Tensor>)> {
        self.check_input(x)?;
        let names: Vec<&str> = probes.keys().map(String::as_str).collect();
        let mut ctx = Ctx::new(Some(self.resolve(&names)?));
        ctx.probes = probes;
        let y = self.root.forward(x, &mut ctx)?;
        let missing: Vec<&String> = ctx
            .probes
            .keys()
            .filter(|k| !ctx.probed.contains(*k))
            .collect();
        if !missing.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} of {} is a functional output (a tap), not a module's: gradients at it are not \
                 available; choose a module (`neuroscope layers --arch {}`)",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.arch,
                self.arch
            )));
        }
        Ok((y, ctx.outputs))
    }

    /// The outputs of the named modules; the pass stops after the last of them.
    pub fn record(&self, x: &Tensor, names: &[&str]) -> Result<BTreeMap<String, Tensor>> {
        Ok(self.run(x, names, true, false)?.1)
    }

    /// The output in training mode (batch statistics, dropout seeded by `seed`). As in
    /// PyTorch, each call also updates the batch norms' running statistics (in place).
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// let net = neuroscope::models::load("resnet18", &neuroscope::models::Weights::Random { seed: 0 }, &Device::Cpu)?;
    /// let x = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu)?;
    /// let mean = |net: &neuroscope::models::Model| -> candle_core::Result<f32> {
    ///     let sd = net.state_dict();
    ///     let t = &sd.iter().find(|(k, _)| k == "bn1.running_mean").unwrap().1;
    ///     t.abs()?.sum_all()?.to_scalar::<f32>()
    /// };
    /// assert_eq!(mean(&net)?, 0.0);
    /// net.forward_train(&x, 0)?;
    /// assert!(mean(&net)? > 0.0);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn forward_train(&self, x: &Tensor, seed: u64) -> Result<Tensor> {
        self.check_input(x)?;
        let mut ctx = Ctx::new(Some(HashSet::new())).with_seed(seed);
        ctx.train = true;
        self.root.forward(x, &mut ctx)
    }

    fn run(
        &self,
        x: &Tensor,
        names: &[&str],
        stop_early: bool,
        train: bool,
    ) -> Result<(Tensor, BTreeMap<String, Tensor>)> {
        self.check_input(x)?;
        let mut ctx = Ctx::new(Some(self.resolve(names)?));
        ctx.stop_early = stop_early;
        ctx.train = train;
        let y = self.root.forward(x, &mut ctx)?;
        Ok((y, ctx.outputs))
    }

    /// Runs `x` and returns every module call in execution order (a module called several
    /// times appears several times), as torchsummary's hooks see them.
    pub(crate) fn trace(&self, x: &Tensor) -> Result<Vec<summary::Traced>> {
        self.check_input(x)?;
        let mut ctx = Ctx::new(Some(HashSet::new()));
        ctx.trace = Some(Vec::new());
        self.root.forward(x, &mut ctx)?;
        Ok(ctx.trace.unwrap_or_default())
    }

    /// Every module's output for `x` (eval mode), keyed by name: what the parity tests compare.
    pub fn record_all(&self, x: &Tensor) -> Result<BTreeMap<String, Tensor>> {
        self.check_input(x)?;
        let mut ctx = Ctx::new(None);
        self.root.forward(x, &mut ctx)?;
        Ok(ctx.outputs)
    }
}
