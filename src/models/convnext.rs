//! ConvNeXt (`torchvision.models.ConvNeXt`): `convnext_tiny`, `convnext_small`,
//! `convnext_base`, with torchvision's module names.
//!
//! A ResNet modernised towards the vision transformers: a 4 x 4 "patchify" stem, stages of
//! `CNBlock`s (a 7 x 7 depthwise convolution, LayerNorm over channels, an MLP with GELU applied
//! at every position, a learned per-channel layer scale, a residual connection), and
//! LayerNorm + 2 x 2 convolutions between stages.

use super::layers::{
    Activation, AdaptiveAvgPool2d, Conv2d, ConvSpec, InitScheme, Layer, LayerNorm, Linear,
    Sequential, StochasticDepth,
};
use super::{Ctx, InputSpec, Model, Weights};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::{Init, VarBuilder};

/// torchvision's init of every conv and linear in ConvNeXt: `trunc_normal_(std=0.02)` (the
/// truncation at +-2 never applies at that std), zero bias.
const INIT: InitScheme = InitScheme::Normal(0.02);

/// `LayerNorm2d`: LayerNorm over the channels of an `N x C x H x W` map (at every position).
#[derive(Debug)]
pub struct LayerNorm2d(LayerNorm);

impl Layer for LayerNorm2d {
    fn kind(&self) -> &'static str {
        "LayerNorm2d"
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        self.0.normalize(x, 1)
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        self.0.parameters()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// torchvision's `Permute(dims)` module.
#[derive(Debug)]
pub struct Permute(pub [usize; 4]);

impl Layer for Permute {
    fn kind(&self) -> &'static str {
        "Permute"
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        if let Some(y) = crate::kernels::permute_channels(x, self.0)? {
            return Ok(y); // recording: the same copy on every thread
        }
        let [a, b, c, d] = self.0;
        Ok(x.permute((a, b, c, d))?.contiguous()?)
    }
}

/// torchvision's `CNBlock`: `x + stochastic_depth(layer_scale * block(x))`.
#[derive(Debug)]
pub struct CnBlock {
    block: Sequential,
    layer_scale: Tensor,
    stochastic_depth: StochasticDepth,
}

impl CnBlock {
    fn new(vb: VarBuilder, dim: usize, sd_prob: f64) -> Result<Self> {
        let vbb = vb.pp("block");
        let mut block = Sequential::new();
        block.push(Conv2d::new(
            vbb.pp("0"),
            ConvSpec::new(dim, dim, 7).padding(3).groups(dim),
            INIT,
        )?);
        block.push(Permute([0, 2, 3, 1]));
        block.push(LayerNorm::new(vbb.pp("2"), dim, 1e-6)?);
        block.push(Linear::new(vbb.pp("3"), dim, 4 * dim, INIT)?);
        block.push(Activation::Gelu);
        block.push(Linear::new(vbb.pp("5"), 4 * dim, dim, INIT)?);
        block.push(Permute([0, 3, 1, 2]));
        Ok(CnBlock {
            block,
            layer_scale: vb.get_with_hints((dim, 1, 1), "layer_scale", Init::Const(1e-6))?,
            stochastic_depth: StochasticDepth { p: sd_prob },
        })
    }
}

impl Layer for CnBlock {
    fn kind(&self) -> &'static str {
        "CNBlock"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let y = ctx.run("block", &self.block, x)?;
        if ctx.is_done() {
            return Ok(y);
        }
        let y = y.broadcast_mul(&self.layer_scale)?;
        let y = ctx.run("stochastic_depth", &self.stochastic_depth, &y)?;
        crate::kernels::add(&y, x)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![
            ("block".into(), &self.block),
            ("stochastic_depth".into(), &self.stochastic_depth),
        ]
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        vec![("layer_scale", self.layer_scale.clone())]
    }
}

/// The stage widths and depths of a variant, and its stochastic-depth rate.
fn setting(arch: &str) -> Result<([usize; 4], [usize; 4], f64)> {
    Ok(match arch {
        "convnext_tiny" => ([96, 192, 384, 768], [3, 3, 9, 3], 0.1),
        "convnext_small" => ([96, 192, 384, 768], [3, 3, 27, 3], 0.4),
        "convnext_base" => ([128, 256, 512, 1024], [3, 3, 27, 3], 0.5),
        _ => {
            return Err(Error::unknown(
                "ConvNeXt",
                arch,
                ["convnext_tiny", "convnext_small", "convnext_base"],
            ))
        }
    })
}

/// A ConvNeXt (`convnext_tiny`, `convnext_small` or `convnext_base`) for 1000 classes; inputs
/// of at least 32 x 32 (usually 224 x 224), initialised as torchvision does.
///
/// ```no_run
/// use neuroscope::models::{load, Weights};
/// let net = load("convnext_tiny", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// assert!(net.layer_names().contains(&"features.5.8.block.4".to_string()));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn convnext(arch: &str, weights: &Weights, device: &Device) -> Result<Model> {
    let (dims, depths, sd) = setting(arch)?;
    Model::build(
        arch,
        InputSpec::flexible(3, 32, 224),
        weights,
        device,
        |vb| {
            let vf = vb.pp("features");
            let mut features = Sequential::new();
            let mut stem = Sequential::root("Conv2dNormActivation");
            stem.push(Conv2d::new(
                vf.pp("0").pp("0"),
                ConvSpec::new(3, dims[0], 4).stride(4),
                INIT,
            )?);
            stem.push(LayerNorm2d(LayerNorm::new(
                vf.pp("0").pp("1"),
                dims[0],
                1e-6,
            )?));
            features.push(stem);
            let total: usize = depths.iter().sum();
            let mut block_id = 0;
            for (s, (&dim, &depth)) in dims.iter().zip(&depths).enumerate() {
                let at = features.len();
                let mut stage = Sequential::new();
                for b in 0..depth {
                    let p = sd * block_id as f64 / (total as f64 - 1.0);
                    stage.push(CnBlock::new(vf.pp(at).pp(b), dim, p)?);
                    block_id += 1;
                }
                features.push(stage);
                if s + 1 < dims.len() {
                    let at = features.len();
                    let mut down = Sequential::new();
                    down.push(LayerNorm2d(LayerNorm::new(vf.pp(at).pp("0"), dim, 1e-6)?));
                    down.push(Conv2d::new(
                        vf.pp(at).pp("1"),
                        ConvSpec::new(dim, dims[s + 1], 2).stride(2),
                        INIT,
                    )?);
                    features.push(down);
                }
            }
            let last = dims[3];
            let vc = vb.pp("classifier");
            let mut classifier = Sequential::new();
            classifier.push(LayerNorm2d(LayerNorm::new(vc.pp("0"), last, 1e-6)?));
            classifier.push(Activation::Flatten);
            classifier.push(Linear::new(vc.pp("2"), last, 1000, INIT)?);
            let mut net = Sequential::root("ConvNeXt");
            net.push_named("features", features);
            net.push_named("avgpool", AdaptiveAvgPool2d { output: (1, 1) });
            net.push_named("classifier", classifier);
            Ok(Box::new(net) as Box<dyn Layer>)
        },
    )
}
