//! ResNet-18/34/50/101/152 (`torchvision.models.resnet*`, v1.5: the stride sits on the 3x3
//! conv of a bottleneck).

use super::layers::{
    Activation::ReLU, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvSpec, InitScheme, Layer, Linear,
    Pool2d, Sequential,
};
use super::{Ctx, InputSpec, Model, Weights};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

const INIT: InitScheme = InitScheme::KaimingFanOut;

/// A residual block: `BasicBlock` (two 3x3 convs) or `Bottleneck` (1x1, 3x3, 1x1).
#[derive(Debug)]
pub struct Block {
    bottleneck: bool,
    convs: Vec<(Conv2d, BatchNorm2d)>,
    downsample: Option<Sequential>,
}

impl Block {
    /// Builds a block taking `inplanes` channels to `planes * expansion`.
    pub fn new(
        vb: VarBuilder,
        bottleneck: bool,
        inplanes: usize,
        planes: usize,
        stride: usize,
    ) -> Result<Self> {
        let expansion = if bottleneck { 4 } else { 1 };
        let specs = if bottleneck {
            vec![
                ConvSpec::new(inplanes, planes, 1).no_bias(),
                ConvSpec::new(planes, planes, 3)
                    .stride(stride)
                    .padding(1)
                    .no_bias(),
                ConvSpec::new(planes, planes * 4, 1).no_bias(),
            ]
        } else {
            vec![
                ConvSpec::new(inplanes, planes, 3)
                    .stride(stride)
                    .padding(1)
                    .no_bias(),
                ConvSpec::new(planes, planes, 3).padding(1).no_bias(),
            ]
        };
        let convs = specs
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let conv = Conv2d::new(vb.pp(format!("conv{}", i + 1)), s, INIT)?;
                let bn = BatchNorm2d::new(vb.pp(format!("bn{}", i + 1)), s.out_channels)?;
                Ok((conv, bn))
            })
            .collect::<Result<Vec<_>>>()?;
        let downsample = if stride != 1 || inplanes != planes * expansion {
            let vd = vb.pp("downsample");
            let mut d = Sequential::new();
            d.push(Conv2d::new(
                vd.pp("0"),
                ConvSpec::new(inplanes, planes * expansion, 1)
                    .stride(stride)
                    .no_bias(),
                INIT,
            )?);
            d.push(BatchNorm2d::new(vd.pp("1"), planes * expansion)?);
            Some(d)
        } else {
            None
        };
        Ok(Block {
            bottleneck,
            convs,
            downsample,
        })
    }
}

/// The block's closing `relu(out + identity)` as one operation ([`crate::kernels::add_relu`]),
/// run as the block's `relu` module so that it is recorded under that name as before.
#[derive(Debug)]
struct ResidualReLU<'a>(&'a Tensor);

impl Layer for ResidualReLU<'_> {
    fn kind(&self) -> &'static str {
        ReLU.kind()
    }
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        crate::kernels::add_relu(x, self.0)
    }
}

impl Layer for Block {
    fn kind(&self) -> &'static str {
        if self.bottleneck {
            "Bottleneck"
        } else {
            "BasicBlock"
        }
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let last = self.convs.len() - 1;
        let mut y = x.clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            let (cn, bnn) = (format!("conv{}", i + 1), format!("bn{}", i + 1));
            // torchvision reuses one `relu` module; like a hook, the last call's output wins.
            let chain: [(&str, &dyn Layer); 3] = [(&cn, conv), (&bnn, bn), ("relu", &ReLU)];
            let chain = if i < last { &chain[..] } else { &chain[..2] };
            y = ctx.run_chain(chain, &y)?;
            if ctx.is_done() {
                // The requested output is inside this block: the rest would be thrown away.
                return Ok(y);
            }
        }
        let identity = match &self.downsample {
            Some(d) => ctx.run("downsample", d, x)?,
            None => x.clone(),
        };
        ctx.run("relu", &ResidualReLU(&identity), &y)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        // PyTorch's registration order: conv1, bn1, (relu,) conv2, bn2, [conv3, bn3,] (relu,) downsample.
        let mut c: Vec<(String, &dyn Layer)> = Vec::new();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            c.push((format!("conv{}", i + 1), conv));
            c.push((format!("bn{}", i + 1), bn));
            if !self.bottleneck && i == 0 {
                c.push(("relu".into(), &ReLU));
            }
        }
        if self.bottleneck {
            c.push(("relu".into(), &ReLU));
        }
        if let Some(d) = &self.downsample {
            c.push(("downsample".into(), d));
        }
        c
    }
}

/// ResNet by torchvision name (`resnet18` .. `resnet152`). Inputs of at least 32 x 32 run;
/// 224 x 224 is the usual size.
///
/// ```
/// use neuroscope::models::{resnet::resnet, Weights};
/// let net = resnet("resnet18", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// assert!(net.layer_names().contains(&"layer2.0.downsample.0".to_string()));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn resnet(arch: &str, weights: &Weights, device: &Device) -> Result<Model> {
    let (bottleneck, blocks): (bool, [usize; 4]) = match arch {
        "resnet18" => (false, [2, 2, 2, 2]),
        "resnet34" => (false, [3, 4, 6, 3]),
        "resnet50" => (true, [3, 4, 6, 3]),
        "resnet101" => (true, [3, 4, 23, 3]),
        "resnet152" => (true, [3, 8, 36, 3]),
        _ => return Err(Error::unknown("architecture", arch, super::ARCHS)),
    };
    let expansion = if bottleneck { 4 } else { 1 };
    Model::build(
        arch,
        InputSpec::flexible(3, 32, 224),
        weights,
        device,
        |vb| {
            let mut net = Sequential::root("ResNet").flatten_before("fc");
            net.push_named(
                "conv1",
                Conv2d::new(
                    vb.pp("conv1"),
                    ConvSpec::new(3, 64, 7).stride(2).padding(3).no_bias(),
                    INIT,
                )?,
            );
            net.push_named("bn1", BatchNorm2d::new(vb.pp("bn1"), 64)?);
            net.push_named("relu", ReLU);
            net.push_named("maxpool", Pool2d::max(3, 2).padding(1));
            let mut inplanes = 64;
            for (i, (&n, planes)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
                let name = format!("layer{}", i + 1);
                let vl = vb.pp(&name);
                let mut layer = Sequential::new();
                for b in 0..n {
                    let stride = if b == 0 && i > 0 { 2 } else { 1 };
                    layer.push(Block::new(vl.pp(b), bottleneck, inplanes, planes, stride)?);
                    inplanes = planes * expansion;
                }
                net.push_named(name, layer);
            }
            net.push_named("avgpool", AdaptiveAvgPool2d { output: (1, 1) });
            net.push_named(
                "fc",
                Linear::new(vb.pp("fc"), 512 * expansion, 1000, InitScheme::TorchDefault)?,
            );
            Ok(Box::new(net))
        },
    )
}
