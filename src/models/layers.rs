//! Building blocks with PyTorch's names, parameters and numbers.
//!
//! Each block is a plain struct built from a candle [`VarBuilder`] whose prefix is the block's
//! dotted PyTorch name, so its parameters get torchvision's `state_dict()` keys. Each implements
//! [`Layer`]: a forward pass that reports named outputs to a [`Ctx`], its children (for
//! listings and summaries) and its own parameters.

use super::Ctx;
use crate::kernels::Epilogue;
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};
use candle_nn::{Init, VarBuilder};

/// A module of a network: PyTorch's `nn.Module` as far as inspection needs it.
pub trait Layer: Send + Sync + std::fmt::Debug {
    /// The PyTorch class name (`Conv2d`, `Sequential`, `Bottleneck`), as summaries print it.
    fn kind(&self) -> &'static str;
    /// The forward pass. Children are run through [`Ctx::run`], which records their outputs.
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor>;
    /// `forward(x)` followed by `epi` in one operation, for layers that can (conv and
    /// linear); `None` for the others. [`Ctx::run_fusing`] and [`Ctx::run_relu`] call it only
    /// when the layer's own output is not recorded.
    fn forward_fused(&self, x: &Tensor, ctx: &mut Ctx, epi: &Epilogue) -> Result<Option<Tensor>> {
        let _ = (x, ctx, epi);
        Ok(None)
    }
    /// This layer as a step that the layer before it may apply in its own output buffer
    /// (a ReLU; a batch norm with fixed statistics), or `None`.
    fn as_epilogue(&self, ctx: &Ctx) -> Result<Option<Epilogue>> {
        let _ = ctx;
        Ok(None)
    }
    /// Named sub-modules, in registration order.
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        Vec::new()
    }
    /// The module's own parameters and buffers (not its children's), with local names
    /// (`weight`, `bias`, `running_mean`...), in PyTorch's order.
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        Vec::new()
    }
    /// A one-line description of the hyper-parameters (PyTorch's `extra_repr`).
    fn describe(&self) -> String {
        String::new()
    }
}

/// PyTorch's default initialisation of conv and linear weights and biases
/// (`kaiming_uniform_(a=sqrt(5))`): uniform in `±1/sqrt(fan_in)`.
pub fn default_uniform(fan_in: usize) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

/// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, the conv init of torchvision's VGG
/// and ResNet: normal with std `sqrt(2 / fan_out)`.
pub fn kaiming_normal_fan_out(fan_out: usize) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: (2.0 / fan_out as f64).sqrt(),
    }
}

/// How a conv's or linear's parameters are initialised when no weights are loaded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InitScheme {
    /// PyTorch's default (uniform ±1/sqrt(fan_in) for weight and bias).
    TorchDefault,
    /// Conv: Kaiming normal, fan-out, bias 0 (VGG, ResNet, MobileNetV2).
    KaimingFanOut,
    /// Linear: normal with this std, bias 0 (VGG's 0.01, MobileNetV2's 0.01); conv: the same.
    Normal(f64),
    /// Linear: Xavier-uniform weight, bias normal with std 1e-6 (torchvision's ViT MLP blocks).
    Xavier,
    /// Weight and bias 0 (torchvision's ViT classification head).
    Zeros,
    /// Linear: uniform in `±1/sqrt(out_features)`, bias 0 (torchvision's EfficientNet head).
    UniformFanOut,
}

/// `weight` and, if present, `bias`, in PyTorch's order.
fn weight_and_bias(weight: &Tensor, bias: Option<&Tensor>) -> Vec<(&'static str, Tensor)> {
    std::iter::once(("weight", weight.clone()))
        .chain(bias.map(|b| ("bias", b.clone())))
        .collect()
}

/// A 2-D convolution (`nn.Conv2d`), square kernel.
#[derive(Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
}

/// Hyper-parameters of a [`Conv2d`].
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Groups (`in_channels` for depthwise).
    pub groups: usize,
    /// Whether there is a bias.
    pub bias: bool,
}

impl ConvSpec {
    /// `Conv2d(in, out, kernel)` with stride 1, no padding, one group, a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        ConvSpec {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: 0,
            groups: 1,
            bias: true,
        }
    }
    /// Sets the stride.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    /// Sets the padding.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    /// Sets the groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// Removes the bias.
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
}

impl Conv2d {
    /// Builds the conv, reading or initialising `weight` and `bias` under `vb`'s prefix.
    pub fn new(vb: VarBuilder, spec: ConvSpec, init: InitScheme) -> Result<Self> {
        let ConvSpec {
            in_channels,
            out_channels,
            kernel,
            groups,
            ..
        } = spec;
        let fan_in = in_channels / groups * kernel * kernel;
        let fan_out = out_channels / groups * kernel * kernel;
        let (w_init, b_init) = match init {
            InitScheme::KaimingFanOut => (kaiming_normal_fan_out(fan_out), Init::Const(0.0)),
            InitScheme::Normal(std) => (
                Init::Randn {
                    mean: 0.0,
                    stdev: std,
                },
                Init::Const(0.0),
            ),
            InitScheme::TorchDefault | InitScheme::Xavier | InitScheme::UniformFanOut => {
                (default_uniform(fan_in), default_uniform(fan_in))
            }
            InitScheme::Zeros => (Init::Const(0.0), Init::Const(0.0)),
        };
        let weight = vb.get_with_hints(
            (out_channels, in_channels / groups, kernel, kernel),
            "weight",
            w_init,
        )?;
        let bias = if spec.bias {
            Some(vb.get_with_hints(out_channels, "bias", b_init)?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel,
            stride: spec.stride,
            padding: spec.padding,
            groups,
        })
    }

    /// The kernel, `out x in/groups x k x k`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// An error naming the expected shape unless `x` is `N x in_channels x H x W`.
    fn check(&self, x: &Tensor) -> Result<()> {
        if x.rank() != 4 || x.dim(1)? != self.in_channels {
            return Err(Error::Shape {
                what: "input of Conv2d".into(),
                expected: format!("N x {} x H x W", self.in_channels),
                got: format!("{:?}", x.dims()),
            });
        }
        Ok(())
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "Conv2d"
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        self.check(x)?;
        crate::kernels::conv2d_bias(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.padding,
            self.stride,
            self.groups,
        )
    }
    fn forward_fused(&self, x: &Tensor, _ctx: &mut Ctx, epi: &Epilogue) -> Result<Option<Tensor>> {
        self.check(x)?;
        crate::kernels::conv2d_fused(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.padding,
            self.stride,
            self.groups,
            epi,
        )
        .map(Some)
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        weight_and_bias(&self.weight, self.bias.as_ref())
    }
    fn describe(&self) -> String {
        format!(
            "{}, {}, kernel_size=({k}, {k}), stride=({s}, {s}){}{}{}",
            self.in_channels,
            self.out_channels,
            if self.padding > 0 {
                format!(", padding=({p}, {p})", p = self.padding)
            } else {
                String::new()
            },
            if self.groups > 1 {
                format!(", groups={}", self.groups)
            } else {
                String::new()
            },
            if self.bias.is_none() {
                ", bias=False"
            } else {
                ""
            },
            k = self.kernel,
            s = self.stride,
        )
    }
}

/// A fully connected layer (`nn.Linear`).
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// Builds `Linear(in_features, out_features)` with a bias.
    pub fn new(
        vb: VarBuilder,
        in_features: usize,
        out_features: usize,
        init: InitScheme,
    ) -> Result<Self> {
        let (w_init, b_init) = match init {
            InitScheme::Normal(std) => (
                Init::Randn {
                    mean: 0.0,
                    stdev: std,
                },
                Init::Const(0.0),
            ),
            InitScheme::Xavier => {
                let b = (6.0 / (in_features + out_features) as f64).sqrt();
                (
                    Init::Uniform { lo: -b, up: b },
                    Init::Randn {
                        mean: 0.0,
                        stdev: 1e-6,
                    },
                )
            }
            InitScheme::Zeros => (Init::Const(0.0), Init::Const(0.0)),
            InitScheme::UniformFanOut => (default_uniform(out_features), Init::Const(0.0)),
            _ => (default_uniform(in_features), default_uniform(in_features)),
        };
        Ok(Linear {
            weight: vb.get_with_hints((out_features, in_features), "weight", w_init)?,
            bias: Some(vb.get_with_hints(out_features, "bias", b_init)?),
            in_features,
            out_features,
        })
    }

    /// The weight, `out x in`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// An error naming the expected shape unless `x` is `... x in_features` (rank 2 or more).
    fn check(&self, x: &Tensor) -> Result<()> {
        if x.rank() < 2 || x.dim(D::Minus1)? != self.in_features {
            return Err(Error::Shape {
                what: "input of Linear".into(),
                expected: format!(
                    "N x {} (or N x ... x {})",
                    self.in_features, self.in_features
                ),
                got: format!("{:?}", x.dims()),
            });
        }
        Ok(())
    }

    /// `f` on `x` as a matrix of rows (`(*, in)` -> `(prod(*), in)`), reshaped back after:
    /// `nn.Linear` applies to the last axis of a tensor of any rank (transformer tokens).
    fn on_rows(&self, x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        if x.rank() == 2 {
            return f(x);
        }
        let mut dims = x.dims().to_vec();
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let y = f(&x.reshape((rows, self.in_features))?)?;
        if let Some(last) = dims.last_mut() {
            *last = self.out_features;
        }
        Ok(y.reshape(dims)?)
    }
}

impl Layer for Linear {
    fn kind(&self) -> &'static str {
        "Linear"
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        self.check(x)?;
        self.on_rows(x, |x| {
            crate::kernels::linear(x, &self.weight, self.bias.as_ref())
        })
    }
    fn forward_fused(&self, x: &Tensor, _ctx: &mut Ctx, epi: &Epilogue) -> Result<Option<Tensor>> {
        self.check(x)?;
        self.on_rows(x, |x| {
            crate::kernels::linear_fused(x, &self.weight, self.bias.as_ref(), epi)
        })
        .map(Some)
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        weight_and_bias(&self.weight, self.bias.as_ref())
    }
    fn describe(&self) -> String {
        format!(
            "in_features={}, out_features={}, bias=True",
            self.in_features, self.out_features
        )
    }
}

/// Batch normalisation over channels (`nn.BatchNorm2d`): running statistics in eval mode,
/// batch statistics in training mode, where each pass also updates the running statistics as
/// PyTorch does (momentum 0.1, the unbiased batch variance), in place.
#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
    eps: f64,
}

/// PyTorch's default `momentum` of batch norm's running averages.
const BN_MOMENTUM: f64 = 0.1;

impl BatchNorm2d {
    /// Builds `BatchNorm2d(channels)` (eps 1e-5): weight 1, bias 0, mean 0, var 1 when
    /// initialised.
    pub fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        Self::with_eps(vb, channels, 1e-5)
    }

    /// PyTorch's training-mode update of the buffers from a batch's `mean` and biased `var`
    /// over `n` values per channel: `running = (1 - momentum) * running + momentum * batch`,
    /// with the unbiased variance `var * n / (n - 1)`, and one more batch tracked. Written into
    /// the buffers in place: they are the network's state (saved in checkpoints, used in eval
    /// mode), as in PyTorch, where `model.train(); model(x)` updates them too.
    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize) -> Result<()> {
        let m = BN_MOMENTUM;
        let batch = |t: &Tensor, factor: f64| -> Result<Tensor> {
            let t = (t.detach().flatten_all()? * factor)?;
            Ok(t.to_dtype(self.running_mean.dtype())?)
        };
        let unbiased = if n > 1 {
            n as f64 / (n - 1) as f64
        } else {
            1.0
        };
        let new_mean = ((&self.running_mean * (1.0 - m))? + batch(mean, m)?)?;
        let new_var = ((&self.running_var * (1.0 - m))? + batch(var, m * unbiased)?)?;
        self.running_mean.slice_set(&new_mean, 0, 0)?;
        self.running_var.slice_set(&new_var, 0, 0)?;
        let tracked = self.num_batches_tracked.reshape(1)?;
        let next = (tracked.to_dtype(DType::F64)? + 1.0)?.to_dtype(tracked.dtype())?;
        tracked.slice_set(&next, 0, 0)?;
        Ok(())
    }

    /// Builds `BatchNorm2d(channels, eps=eps)` (GoogLeNet uses 0.001).
    pub fn with_eps(vb: VarBuilder, channels: usize, eps: f64) -> Result<Self> {
        Ok(BatchNorm2d {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            running_mean: vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?,
            running_var: vb.get_with_hints(channels, "running_var", Init::Const(1.0))?,
            num_batches_tracked: vb.get_with_hints_dtype(
                (),
                "num_batches_tracked",
                Init::Const(0.0),
                DType::I64,
            )?,
            eps,
        })
    }
}

impl Layer for BatchNorm2d {
    fn kind(&self) -> &'static str {
        "BatchNorm2d"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let c = self.weight.dim(0)?;
        let shape = (1, c, 1, 1);
        if let (
            true,
            Some(Epilogue {
                affine: Some((scale, shift)),
                ..
            }),
        ) = (x.device().is_cpu(), self.as_epilogue(ctx)?)
        {
            return crate::kernels::channel_affine(x, &scale, &shift);
        }
        let (mean, var) = if ctx.train {
            let mean = x.mean_keepdim((0, 2, 3))?;
            let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim((0, 2, 3))?;
            self.update_running(&mean, &var, x.elem_count() / c.max(1))?;
            (mean, var)
        } else {
            (
                self.running_mean.reshape(shape)?,
                self.running_var.reshape(shape)?,
            )
        };
        let inv = (var + self.eps)?.sqrt()?.recip()?;
        let scale = self.weight.reshape(shape)?.broadcast_mul(&inv)?;
        if !ctx.train {
            // Eval mode on other devices: the same scale and shift, two passes instead of three.
            let shift = self.bias.reshape(shape)?.sub(&mean.mul(&scale)?)?;
            return Ok(x.broadcast_mul(&scale)?.broadcast_add(&shift)?);
        }
        Ok(x.broadcast_sub(&mean)?
            .broadcast_mul(&scale)?
            .broadcast_add(&self.bias.reshape(shape)?)?)
    }
    /// Fixed statistics and parameters (eval mode, nothing trained, on the CPU): one
    /// per-channel scale and shift, computed as PyTorch's CPU kernel does
    /// (`scale = weight / sqrt(var + eps)` in f32).
    fn as_epilogue(&self, ctx: &Ctx) -> Result<Option<Epilogue>> {
        if ctx.train
            || self.weight.track_op()
            || self.bias.track_op()
            || !self.weight.device().is_cpu()
        {
            return Ok(None);
        }
        let [w, b, m, v] = [
            &self.weight,
            &self.bias,
            &self.running_mean,
            &self.running_var,
        ]
        .map(|t| t.to_dtype(DType::F32).and_then(|t| t.to_vec1::<f32>()));
        let (w, b, m, v) = (w?, b?, m?, v?);
        let eps = self.eps as f32;
        let scale: Vec<f32> = (0..w.len()).map(|i| w[i] / (v[i] + eps).sqrt()).collect();
        let shift: Vec<f32> = (0..w.len()).map(|i| b[i] - m[i] * scale[i]).collect();
        Ok(Some(Epilogue::affine(scale, shift)))
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        vec![
            ("weight", self.weight.clone()),
            ("bias", self.bias.clone()),
            ("running_mean", self.running_mean.clone()),
            ("running_var", self.running_var.clone()),
            ("num_batches_tracked", self.num_batches_tracked.clone()),
        ]
    }
    fn describe(&self) -> String {
        format!("{}, eps={:e}", self.weight.dims1().unwrap_or(0), self.eps)
    }
}

/// `nn.LayerNorm(dim, eps)` over the last axis, with a learned scale and shift: each token
/// (or each position's channels) normalised to mean 0 and variance 1. Built from plain tensor
/// operations so that gradients flow through it to the input.
#[derive(Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    dim: usize,
    eps: f64,
}

impl LayerNorm {
    /// `LayerNorm(dim, eps)`, weight 1 and bias 0 when initialised.
    pub fn new(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm {
            weight: vb.get_with_hints(dim, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", Init::Const(0.0))?,
            dim,
            eps,
        })
    }
}

impl LayerNorm {
    /// Normalise over `axis` (the last for `nn.LayerNorm`; 1 for the channels of an
    /// `N x C x H x W` map, ConvNeXt's `LayerNorm2d`, which then needs no permuted copies).
    pub fn normalize(&self, x: &Tensor, axis: usize) -> Result<Tensor> {
        if axis >= x.rank() || x.dim(axis)? != self.dim {
            return Err(Error::Shape {
                what: "input of LayerNorm".into(),
                expected: format!("{} features on axis {axis}", self.dim),
                got: format!("{:?}", x.dims()),
            });
        }
        // Recording: one pass, the same bits as the operations below.
        let fast = if axis + 1 == x.rank() {
            crate::kernels::layer_norm_last(x, &self.weight, &self.bias, self.eps)?
        } else if axis == 1 {
            crate::kernels::layer_norm_channels(x, &self.weight, &self.bias, self.eps)?
        } else {
            None
        };
        if let Some(y) = fast {
            return Ok(y);
        }
        let mean = x.mean_keepdim(axis)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(axis)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        // the affine parameters along `axis`: shape 1 x ... x dim x ... x 1
        let mut shape = vec![1usize; x.rank()];
        shape[axis] = self.dim;
        Ok(normed
            .broadcast_mul(&self.weight.reshape(shape.as_slice())?)?
            .broadcast_add(&self.bias.reshape(shape.as_slice())?)?)
    }
}

impl Layer for LayerNorm {
    fn kind(&self) -> &'static str {
        "LayerNorm"
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        self.normalize(x, x.rank().saturating_sub(1))
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        weight_and_bias(&self.weight, Some(&self.bias))
    }
    fn describe(&self) -> String {
        format!(
            "({},), eps={:e}, elementwise_affine=True",
            self.dim, self.eps
        )
    }
}

/// `StochasticDepth(p, "row")`: the identity in eval mode; in training mode each sample's
/// branch is dropped with probability `p` (seeded by the context) and the others scaled by
/// `1 / (1 - p)`.
///
/// ```
/// use neuroscope::models::{layers::{Layer, StochasticDepth}, Ctx};
/// let x = candle_core::Tensor::ones((64, 3), candle_core::DType::F32, &candle_core::Device::Cpu)?;
/// let sd = StochasticDepth { p: 0.5 };
/// assert_eq!(sd.forward(&x, &mut Ctx::new(None))?.sum_all()?.to_scalar::<f32>()?, 192.0); // eval
/// let mut ctx = Ctx::new(None).with_seed(3);
/// ctx.train = true;
/// let rows = sd.forward(&x, &mut ctx)?.sum(1)?.to_vec1::<f32>()?;
/// assert!(rows.iter().all(|&r| r == 0.0 || r == 6.0));          // dropped, or scaled by 2
/// assert!(rows.contains(&0.0) && rows.contains(&6.0));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug)]
pub struct StochasticDepth {
    /// Probability of dropping a sample's branch.
    pub p: f64,
}

impl Layer for StochasticDepth {
    fn kind(&self) -> &'static str {
        "StochasticDepth"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if !ctx.train || self.p == 0.0 {
            return Ok(x.clone());
        }
        let n = x.dim(0)?;
        let keep = 1.0 - self.p;
        let rng = ctx.rng();
        let mask: Vec<f32> = (0..n)
            .map(|_| {
                if rng.uniform() < keep {
                    (1.0 / keep) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let mut shape = vec![1usize; x.rank()];
        shape[0] = n;
        let mask = Tensor::from_vec(mask, shape, x.device())?.to_dtype(x.dtype())?;
        Ok(x.broadcast_mul(&mask)?)
    }
    fn describe(&self) -> String {
        format!("p={}, mode=row", self.p)
    }
}

/// Element-wise activations without parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `nn.ReLU`
    ReLU,
    /// `nn.ReLU6` (MobileNetV2)
    ReLU6,
    /// `nn.LogSoftmax(dim=1)`
    LogSoftmax,
    /// `nn.Softmax(dim=1)`
    Softmax,
    /// `nn.Flatten()` (from dimension 1)
    Flatten,
    /// `nn.Identity`
    Identity,
    /// `nn.GELU()`: the exact form with the error function (PyTorch's default, not the tanh
    /// approximation).
    Gelu,
    /// `nn.SiLU()`: `x * sigmoid(x)` (EfficientNet).
    Silu,
    /// `nn.Sigmoid()`.
    Sigmoid,
}

impl Layer for Activation {
    fn kind(&self) -> &'static str {
        match self {
            Activation::ReLU => "ReLU",
            Activation::ReLU6 => "ReLU6",
            Activation::LogSoftmax => "LogSoftmax",
            Activation::Softmax => "Softmax",
            Activation::Flatten => "Flatten",
            Activation::Identity => "Identity",
            Activation::Gelu => "GELU",
            Activation::Silu => "SiLU",
            Activation::Sigmoid => "Sigmoid",
        }
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        Ok(match self {
            Activation::ReLU => crate::kernels::relu(x)?,
            Activation::ReLU6 => crate::kernels::relu6(x)?,
            Activation::LogSoftmax => candle_nn::ops::log_softmax(x, D::Minus1)?,
            Activation::Softmax => candle_nn::ops::softmax(x, D::Minus1)?,
            Activation::Flatten => x.flatten_from(1)?,
            Activation::Identity => x.clone(),
            Activation::Gelu => match crate::kernels::gelu_erf(x)? {
                Some(y) => y, // recording: on every thread, candle's bits
                None => x.gelu_erf()?,
            },
            Activation::Silu => x.silu()?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
        })
    }
    fn as_epilogue(&self, _ctx: &Ctx) -> Result<Option<Epilogue>> {
        Ok(matches!(self, Activation::ReLU).then(Epilogue::relu))
    }
}

/// `nn.Dropout(p)`: the identity in eval mode; in training mode a seeded mask from the
/// context's generator, scaled by `1/(1-p)`.
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    /// Probability of zeroing an element.
    pub p: f64,
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if !ctx.train || self.p == 0.0 {
            return Ok(x.clone());
        }
        let n = x.elem_count();
        let keep = 1.0 - self.p;
        let rng = ctx.rng();
        let mask: Vec<f32> = (0..n)
            .map(|_| {
                if rng.uniform() < keep {
                    (1.0 / keep) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        Ok(x.mul(&mask)?)
    }
    fn describe(&self) -> String {
        format!("p={}", self.p)
    }
}

/// Pads the last two dimensions with `-inf` (max pooling's padding).
fn pad_neg_inf(x: &Tensor, top: usize, bottom: usize, left: usize, right: usize) -> Result<Tensor> {
    let mut x = x.clone();
    for (dim, a, b) in [(2usize, top, bottom), (3usize, left, right)] {
        if a == 0 && b == 0 {
            continue;
        }
        let mut dims = x.dims().to_vec();
        let mut parts = Vec::new();
        if a > 0 {
            dims[dim] = a;
            parts.push(
                Tensor::full(f32::NEG_INFINITY, dims.clone(), x.device())?.to_dtype(x.dtype())?,
            );
        }
        parts.push(x.clone());
        if b > 0 {
            dims[dim] = b;
            parts.push(
                Tensor::full(f32::NEG_INFINITY, dims.clone(), x.device())?.to_dtype(x.dtype())?,
            );
        }
        x = Tensor::cat(&parts, dim)?;
    }
    Ok(x)
}

/// Output length of a pooling window along one axis (PyTorch's `pooling_output_shape`).
pub fn pool_out(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    ceil_mode: bool,
) -> usize {
    let span = input + 2 * padding;
    if span < kernel {
        return 0;
    }
    let mut out = if ceil_mode {
        (span - kernel).div_ceil(stride) + 1
    } else {
        (span - kernel) / stride + 1
    };
    // The last window must start inside the input or the left padding.
    if ceil_mode && (out - 1) * stride >= input + padding {
        out -= 1;
    }
    out
}

/// Max or average pooling with a square window (`nn.MaxPool2d`, `nn.AvgPool2d`), with
/// padding and `ceil_mode` as PyTorch defines them.
#[derive(Clone, Copy, Debug)]
pub struct Pool2d {
    /// Max (true) or average (false).
    pub max: bool,
    /// Window size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding on every side.
    pub padding: usize,
    /// Round the output size up rather than down.
    pub ceil_mode: bool,
}

impl Pool2d {
    /// `MaxPool2d(kernel, stride)`.
    pub fn max(kernel: usize, stride: usize) -> Self {
        Pool2d {
            max: true,
            kernel,
            stride,
            padding: 0,
            ceil_mode: false,
        }
    }
    /// `AvgPool2d(kernel, stride)`.
    pub fn avg(kernel: usize, stride: usize) -> Self {
        Pool2d {
            max: false,
            ..Pool2d::max(kernel, stride)
        }
    }
    /// Sets the padding.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    /// Sets `ceil_mode`.
    pub fn ceil(mut self) -> Self {
        self.ceil_mode = true;
        self
    }
}

impl Layer for Pool2d {
    fn kind(&self) -> &'static str {
        if self.max {
            "MaxPool2d"
        } else {
            "AvgPool2d"
        }
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (oh, ow) = (
            pool_out(h, k, s, p, self.ceil_mode),
            pool_out(w, k, s, p, self.ceil_mode),
        );
        if oh == 0 || ow == 0 {
            return Err(Error::Shape {
                what: format!("input of {}", self.kind()),
                expected: format!(
                    "height and width of at least {} (kernel {k}, padding {p})",
                    k.saturating_sub(2 * p)
                ),
                got: format!("{:?}; use a larger input image", x.dims()),
            });
        }
        // Extra cells on the bottom/right so that the window count is exactly (oh, ow).
        let extra_h = ((oh - 1) * s + k).saturating_sub(h + 2 * p);
        let extra_w = ((ow - 1) * s + k).saturating_sub(w + 2 * p);
        if self.max {
            if let Some(y) = crate::kernels::max_pool2d_padded(x, k, s, (p, p), (oh, ow))? {
                return Ok(y);
            }
            let xp = pad_neg_inf(x, p, p + extra_h, p, p + extra_w)?;
            let y = crate::kernels::max_pool2d(&xp, k, s)?;
            Ok(y.narrow(2, 0, oh)?.narrow(3, 0, ow)?)
        } else {
            if p > 0 || extra_h > 0 || extra_w > 0 {
                return Err(Error::InvalidArgument(
                    "AvgPool2d with padding or ceil_mode is not supported yet".into(),
                ));
            }
            Ok(x.avg_pool2d_with_stride(k, s)?)
        }
    }
    fn describe(&self) -> String {
        format!(
            "kernel_size={}, stride={}, padding={}{}",
            self.kernel,
            self.stride,
            self.padding,
            if self.ceil_mode {
                ", ceil_mode=True"
            } else {
                ""
            }
        )
    }
}

/// `nn.AdaptiveAvgPool2d((h, w))`: bin `i` averages rows `floor(i*H/h)` to `ceil((i+1)*H/h)`.
#[derive(Clone, Copy, Debug)]
pub struct AdaptiveAvgPool2d {
    /// Output `(height, width)`.
    pub output: (usize, usize),
}

impl Layer for AdaptiveAvgPool2d {
    fn kind(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (oh, ow) = self.output;
        if (h, w) == (oh, ow) {
            return Ok(x.clone());
        }
        if (oh, ow) == (1, 1) {
            return Ok(x.mean_keepdim((2, 3))?);
        }
        if h % oh == 0 && w % ow == 0 {
            return Ok(x.avg_pool2d_with_stride((h / oh, w / ow), (h / oh, w / ow))?);
        }
        let bins =
            |i: usize, out: usize, size: usize| (i * size / out, ((i + 1) * size).div_ceil(out));
        let mut rows = Vec::with_capacity(oh);
        for i in 0..oh {
            let (y0, y1) = bins(i, oh, h);
            let band = x.narrow(2, y0, y1 - y0)?;
            let mut cols = Vec::with_capacity(ow);
            for j in 0..ow {
                let (x0, x1) = bins(j, ow, w);
                cols.push(band.narrow(3, x0, x1 - x0)?.mean_keepdim((2, 3))?);
            }
            rows.push(Tensor::cat(&cols, 3)?);
        }
        Ok(Tensor::cat(&rows, 2)?)
    }
    fn describe(&self) -> String {
        format!("output_size=({}, {})", self.output.0, self.output.1)
    }
}

/// True for `nn.Sequential` and its subclasses (torchvision's `Conv2dNormActivation`, ViT's
/// `MLPBlock`), which torchsummary leaves out of its table.
pub fn is_sequential(kind: &str) -> bool {
    matches!(kind, "Sequential" | "Conv2dNormActivation" | "MLPBlock")
}

/// `nn.Sequential`: children named `0`, `1`, ... (or any names), run in order.
///
/// Also the root of most architectures: [`Sequential::root`] gives it the architecture's class
/// name, and [`Sequential::flatten_before`] flattens the input of one child, which is what
/// torchvision's `forward` does between `avgpool` and `classifier`.
#[derive(Debug)]
pub struct Sequential {
    kind: &'static str,
    layers: Vec<(String, Box<dyn Layer>)>,
    flatten_before: Option<String>,
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential {
            kind: "Sequential",
            layers: Vec::new(),
            flatten_before: None,
        }
    }
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequential::default()
    }
    /// An empty root module of class `kind` (`AlexNet`, `ResNet`).
    pub fn root(kind: &'static str) -> Self {
        Sequential {
            kind,
            ..Sequential::default()
        }
    }
    /// Flattens the input of the child `name` from dimension 1 (`torch.flatten(x, 1)`).
    pub fn flatten_before(mut self, name: &str) -> Self {
        self.flatten_before = Some(name.to_string());
        self
    }
    /// Appends a layer named by its position (`0`, `1`, ...), as `nn.Sequential(*layers)`.
    pub fn push(&mut self, layer: impl Layer + 'static) {
        let name = self.layers.len().to_string();
        self.layers.push((name, Box::new(layer)));
    }
    /// Appends a layer with an explicit name (`nn.Sequential(OrderedDict(...))`, or a
    /// root module's attribute).
    pub fn push_named(&mut self, name: impl Into<String>, layer: impl Layer + 'static) {
        self.layers.push((name.into(), Box::new(layer)));
    }
    /// Number of children.
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Layer for Sequential {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let mut x = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            if self.flatten_before.as_deref() == Some(self.layers[i].0.as_str()) {
                x = x.flatten_from(1)?;
            }
            // The layer and the two after it (up to the flatten), which it may fuse.
            let chain: Vec<(&str, &dyn Layer)> = self.layers[i..]
                .iter()
                .take(3)
                .enumerate()
                .take_while(|(k, (n, _))| *k == 0 || self.flatten_before.as_ref() != Some(n))
                .map(|(_, (n, l))| (n.as_str(), l.as_ref()))
                .collect();
            let (y, ran) = ctx.run_fusing(&chain, &x)?;
            x = y;
            i += ran;
            if ctx.is_done() {
                break;
            }
        }
        Ok(x)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        self.layers
            .iter()
            .map(|(n, l)| (n.clone(), l.as_ref() as &dyn Layer))
            .collect()
    }
}
