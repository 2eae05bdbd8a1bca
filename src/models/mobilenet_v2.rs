//! MobileNetV2 (`torchvision.models.mobilenet_v2`, width 1.0): inverted residual blocks of
//! expand 1x1, depthwise 3x3 and project 1x1 convolutions.

use super::layers::{
    Activation, BatchNorm2d, Conv2d, ConvSpec, Dropout, InitScheme, Layer, Linear, Sequential,
};
use super::{Ctx, InputSpec, Model, Weights};
use crate::Result;
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

const INIT: InitScheme = InitScheme::KaimingFanOut;

/// torchvision's `Conv2dNormActivation`: conv (no bias), batch norm, ReLU6.
fn conv_bn_relu6(vb: VarBuilder, spec: ConvSpec) -> Result<Sequential> {
    let mut s = Sequential::root("Conv2dNormActivation");
    s.push(Conv2d::new(vb.pp("0"), spec.no_bias(), INIT)?);
    s.push(BatchNorm2d::new(vb.pp("1"), spec.out_channels)?);
    s.push(Activation::ReLU6);
    Ok(s)
}

/// An inverted residual block; the input is added back when shapes allow.
#[derive(Debug)]
pub struct InvertedResidual {
    conv: Sequential,
    residual: bool,
}

impl InvertedResidual {
    /// `InvertedResidual(inp, oup, stride, expand_ratio)`.
    pub fn new(
        vb: VarBuilder,
        inp: usize,
        oup: usize,
        stride: usize,
        expand: usize,
    ) -> Result<Self> {
        let hidden = inp * expand;
        let vc = vb.pp("conv");
        let mut conv = Sequential::new();
        if expand != 1 {
            conv.push(conv_bn_relu6(
                vc.pp(conv.len()),
                ConvSpec::new(inp, hidden, 1),
            )?);
        }
        let dw = ConvSpec::new(hidden, hidden, 3)
            .stride(stride)
            .padding(1)
            .groups(hidden);
        conv.push(conv_bn_relu6(vc.pp(conv.len()), dw)?);
        conv.push(Conv2d::new(
            vc.pp(conv.len()),
            ConvSpec::new(hidden, oup, 1).no_bias(),
            INIT,
        )?);
        conv.push(BatchNorm2d::new(vc.pp(conv.len()), oup)?);
        Ok(InvertedResidual {
            conv,
            residual: stride == 1 && inp == oup,
        })
    }
}

impl Layer for InvertedResidual {
    fn kind(&self) -> &'static str {
        "InvertedResidual"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let y = ctx.run("conv", &self.conv, x)?;
        Ok(if self.residual {
            crate::kernels::add(x, &y)?
        } else {
            y
        })
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![("conv".into(), &self.conv)]
    }
}

/// The root: features, a global average pool (a function, not a module), classifier.
#[derive(Debug)]
struct MobileNetV2 {
    features: Sequential,
    classifier: Sequential,
}

impl Layer for MobileNetV2 {
    fn kind(&self) -> &'static str {
        "MobileNetV2"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let x = ctx.run("features", &self.features, x)?;
        if ctx.is_done() {
            return Ok(x);
        }
        let x = x.mean((2, 3))?;
        ctx.run("classifier", &self.classifier, &x)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![
            ("features".into(), &self.features),
            ("classifier".into(), &self.classifier),
        ]
    }
}

/// MobileNetV2 for 1000 classes; inputs of at least 32 x 32 (usually 224 x 224).
///
/// ```no_run
/// let net = neuroscope::models::mobilenet_v2::mobilenet_v2(
///     &neuroscope::models::Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// assert!(net.layer_names().contains(&"features.17.conv.2".to_string()));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn mobilenet_v2(weights: &Weights, device: &Device) -> Result<Model> {
    const SETTINGS: [(usize, usize, usize, usize); 7] = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    Model::build(
        "mobilenet_v2",
        InputSpec::flexible(3, 32, 224),
        weights,
        device,
        |vb| {
            let vf = vb.pp("features");
            let mut features = Sequential::new();
            features.push(conv_bn_relu6(
                vf.pp("0"),
                ConvSpec::new(3, 32, 3).stride(2).padding(1),
            )?);
            let mut inp = 32;
            for (t, c, n, s) in SETTINGS {
                for i in 0..n {
                    let at = features.len();
                    features.push(InvertedResidual::new(
                        vf.pp(at),
                        inp,
                        c,
                        if i == 0 { s } else { 1 },
                        t,
                    )?);
                    inp = c;
                }
            }
            features.push(conv_bn_relu6(
                vf.pp(features.len()),
                ConvSpec::new(320, 1280, 1),
            )?);
            let mut classifier = Sequential::new();
            classifier.push(Dropout { p: 0.2 });
            classifier.push(Linear::new(
                vb.pp("classifier").pp("1"),
                1280,
                1000,
                InitScheme::Normal(0.01),
            )?);
            Ok(Box::new(MobileNetV2 {
                features,
                classifier,
            }))
        },
    )
}
