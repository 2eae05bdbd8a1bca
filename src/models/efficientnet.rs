//! EfficientNet (`torchvision.models.EfficientNet`, version 1): `efficientnet_b0` to
//! `efficientnet_b3`, with torchvision's module names.
//!
//! MobileNetV2's inverted residual blocks (`MBConv`: expand 1x1, depthwise k x k, project 1x1)
//! with SiLU activations and a squeeze-and-excitation step that rescales each channel by a
//! gate computed from the whole map; width and depth grow together from b0 to b3.

use super::layers::{
    Activation, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvSpec, Dropout, InitScheme, Layer,
    Linear, Sequential, StochasticDepth,
};
use super::{Ctx, InputSpec, Model, Weights};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

/// torchvision's conv init here: Kaiming normal, fan-out, zero bias.
const INIT: InitScheme = InitScheme::KaimingFanOut;

/// torchvision's `_make_divisible(v, 8)`: the nearest multiple of 8, never more than 10 % below.
fn make_divisible(v: f64) -> usize {
    let mut n = (8usize).max(((v + 4.0) as usize) / 8 * 8);
    if (n as f64) < 0.9 * v {
        n += 8;
    }
    n
}

/// `Conv2dNormActivation`: conv (no bias), batch norm, SiLU unless `act` is false.
fn conv_bn(vb: VarBuilder, spec: ConvSpec, act: bool) -> Result<Sequential> {
    let mut s = Sequential::root("Conv2dNormActivation");
    let out = spec.out_channels;
    s.push(Conv2d::new(vb.pp("0"), spec.no_bias(), INIT)?);
    s.push(BatchNorm2d::new(vb.pp("1"), out)?);
    if act {
        s.push(Activation::Silu);
    }
    Ok(s)
}

/// torchvision's `SqueezeExcitation`: `x * sigmoid(fc2(silu(fc1(avgpool(x)))))`.
#[derive(Debug)]
pub struct SqueezeExcitation {
    avgpool: AdaptiveAvgPool2d,
    fc1: Conv2d,
    fc2: Conv2d,
    activation: Activation,
    scale_activation: Activation,
}

impl SqueezeExcitation {
    fn new(vb: VarBuilder, channels: usize, squeeze: usize) -> Result<Self> {
        Ok(SqueezeExcitation {
            avgpool: AdaptiveAvgPool2d { output: (1, 1) },
            fc1: Conv2d::new(vb.pp("fc1"), ConvSpec::new(channels, squeeze, 1), INIT)?,
            fc2: Conv2d::new(vb.pp("fc2"), ConvSpec::new(squeeze, channels, 1), INIT)?,
            activation: Activation::Silu,
            scale_activation: Activation::Sigmoid,
        })
    }
}

impl Layer for SqueezeExcitation {
    fn kind(&self) -> &'static str {
        "SqueezeExcitation"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let mut s = x.clone();
        for (name, layer) in [
            ("avgpool", &self.avgpool as &dyn Layer),
            ("fc1", &self.fc1),
            ("activation", &self.activation),
            ("fc2", &self.fc2),
            ("scale_activation", &self.scale_activation),
        ] {
            s = ctx.run(name, layer, &s)?;
            if ctx.is_done() {
                return Ok(s);
            }
        }
        Ok(x.broadcast_mul(&s)?)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        // registration order, as named_modules() lists them
        vec![
            ("avgpool".into(), &self.avgpool),
            ("fc1".into(), &self.fc1),
            ("fc2".into(), &self.fc2),
            ("activation".into(), &self.activation),
            ("scale_activation".into(), &self.scale_activation),
        ]
    }
}

/// torchvision's `MBConv`.
#[derive(Debug)]
pub struct MbConv {
    block: Sequential,
    stochastic_depth: StochasticDepth,
    residual: bool,
}

impl MbConv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        vb: VarBuilder,
        input: usize,
        output: usize,
        expand: usize,
        kernel: usize,
        stride: usize,
        sd_prob: f64,
    ) -> Result<Self> {
        let vbb = vb.pp("block");
        let expanded = make_divisible((input * expand) as f64);
        let mut block = Sequential::new();
        if expanded != input {
            block.push(conv_bn(
                vbb.pp(block.len()),
                ConvSpec::new(input, expanded, 1),
                true,
            )?);
        }
        let dw = ConvSpec::new(expanded, expanded, kernel)
            .stride(stride)
            .padding((kernel - 1) / 2)
            .groups(expanded);
        block.push(conv_bn(vbb.pp(block.len()), dw, true)?);
        block.push(SqueezeExcitation::new(
            vbb.pp(block.len()),
            expanded,
            (input / 4).max(1),
        )?);
        block.push(conv_bn(
            vbb.pp(block.len()),
            ConvSpec::new(expanded, output, 1),
            false,
        )?);
        Ok(MbConv {
            block,
            stochastic_depth: StochasticDepth { p: sd_prob },
            residual: stride == 1 && input == output,
        })
    }
}

impl Layer for MbConv {
    fn kind(&self) -> &'static str {
        "MBConv"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let y = ctx.run("block", &self.block, x)?;
        if !self.residual || ctx.is_done() {
            return Ok(y);
        }
        let y = ctx.run("stochastic_depth", &self.stochastic_depth, &y)?;
        crate::kernels::add(x, &y)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![
            ("block".into(), &self.block),
            ("stochastic_depth".into(), &self.stochastic_depth),
        ]
    }
}

/// Width multiplier, depth multiplier and dropout of a variant.
fn scaling(arch: &str) -> Result<(f64, f64, f64)> {
    Ok(match arch {
        "efficientnet_b0" => (1.0, 1.0, 0.2),
        "efficientnet_b1" => (1.0, 1.1, 0.2),
        "efficientnet_b2" => (1.1, 1.2, 0.3),
        "efficientnet_b3" => (1.2, 1.4, 0.3),
        _ => {
            return Err(Error::unknown(
                "EfficientNet",
                arch,
                [
                    "efficientnet_b0",
                    "efficientnet_b1",
                    "efficientnet_b2",
                    "efficientnet_b3",
                ],
            ))
        }
    })
}

/// An EfficientNet (`efficientnet_b0` to `efficientnet_b3`) for 1000 classes; inputs of at
/// least 32 x 32 (trained at 224 to 300 px), initialised as torchvision does.
///
/// ```no_run
/// use neuroscope::models::{load, Weights};
/// let net = load("efficientnet_b0", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// assert!(net.layer_names().contains(&"features.2.0.block.2.fc1".to_string()));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn efficientnet(arch: &str, weights: &Weights, device: &Device) -> Result<Model> {
    let (width, depth, dropout) = scaling(arch)?;
    // (expand ratio, kernel, stride, input channels, output channels, layers) of b0
    const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
        (1, 3, 1, 32, 16, 1),
        (6, 3, 2, 16, 24, 2),
        (6, 5, 2, 24, 40, 2),
        (6, 3, 2, 40, 80, 3),
        (6, 5, 1, 80, 112, 3),
        (6, 5, 2, 112, 192, 4),
        (6, 3, 1, 192, 320, 1),
    ];
    let ch = |c: usize| make_divisible(c as f64 * width);
    let layers = |n: usize| (n as f64 * depth).ceil() as usize;
    Model::build(
        arch,
        InputSpec::flexible(3, 32, 224),
        weights,
        device,
        |vb| {
            let vf = vb.pp("features");
            let mut features = Sequential::new();
            let stem = ch(STAGES[0].3);
            features.push(conv_bn(
                vf.pp("0"),
                ConvSpec::new(3, stem, 3).stride(2).padding(1),
                true,
            )?);
            let total: usize = STAGES.iter().map(|s| layers(s.5)).sum();
            let mut id = 0;
            for &(expand, kernel, stride, cin, cout, n) in &STAGES {
                let at = features.len();
                let (cin, cout) = (ch(cin), ch(cout));
                let mut stage = Sequential::new();
                for b in 0..layers(n) {
                    let sd = 0.2 * id as f64 / total as f64;
                    let (input, s) = if b == 0 { (cin, stride) } else { (cout, 1) };
                    stage.push(MbConv::new(
                        vf.pp(at).pp(b),
                        input,
                        cout,
                        expand,
                        kernel,
                        s,
                        sd,
                    )?);
                    id += 1;
                }
                features.push(stage);
            }
            let last_in = ch(STAGES[6].4);
            let last = 4 * last_in;
            let at = features.len();
            features.push(conv_bn(vf.pp(at), ConvSpec::new(last_in, last, 1), true)?);
            let mut classifier = Sequential::new();
            classifier.push(Dropout { p: dropout });
            classifier.push(Linear::new(
                vb.pp("classifier").pp("1"),
                last,
                1000,
                InitScheme::UniformFanOut,
            )?);
            let mut net = Sequential::root("EfficientNet").flatten_before("classifier");
            net.push_named("features", features);
            net.push_named("avgpool", AdaptiveAvgPool2d { output: (1, 1) });
            net.push_named("classifier", classifier);
            Ok(Box::new(net) as Box<dyn Layer>)
        },
    )
}
