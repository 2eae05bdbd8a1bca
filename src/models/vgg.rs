//! VGG-11/13/16/19, with and without batch norm (`torchvision.models.vgg*`).

use super::layers::{
    Activation::ReLU, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvSpec, Dropout, InitScheme,
    Linear, Pool2d, Sequential,
};
use super::{InputSpec, Model, Weights};
use crate::{Error, Result};
use candle_core::Device;
use candle_nn::VarBuilder;

/// The channel plans of torchvision's configurations A, B, D, E; 0 is a 2 x 2 max pool.
fn plan(depth: usize) -> Option<&'static [usize]> {
    Some(match depth {
        11 => &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        13 => &[
            64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
        ],
        16 => &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
        ],
        19 => &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512,
            512, 0,
        ],
        _ => return None,
    })
}

/// `features` for a plan: conv 3x3 (+ batch norm) + ReLU, max pools between stages.
pub fn features(vb: VarBuilder, depth: usize, batch_norm: bool) -> Result<Sequential> {
    let plan = plan(depth).ok_or_else(|| {
        Error::InvalidArgument(format!("VGG depth {depth}: use 11, 13, 16 or 19"))
    })?;
    let mut f = Sequential::new();
    let mut channels = 3;
    for &v in plan {
        if v == 0 {
            f.push(Pool2d::max(2, 2));
            continue;
        }
        let at = f.len();
        f.push(Conv2d::new(
            vb.pp(at),
            ConvSpec::new(channels, v, 3).padding(1),
            InitScheme::KaimingFanOut,
        )?);
        if batch_norm {
            f.push(BatchNorm2d::new(vb.pp(at + 1), v)?);
        }
        f.push(ReLU);
        channels = v;
    }
    Ok(f)
}

/// VGG by torchvision name: `vgg11` .. `vgg19`, `vgg11_bn` .. `vgg19_bn`. Inputs of at least
/// 32 x 32 run; 224 x 224 is the usual size.
///
/// ```no_run
/// use neuroscope::models::{vgg::vgg, Weights};
/// let net = vgg("vgg16_bn", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn vgg(arch: &str, weights: &Weights, device: &Device) -> Result<Model> {
    let (depth, bn) = match arch.strip_prefix("vgg").map(|r| (r.strip_suffix("_bn"), r)) {
        Some((Some(d), _)) => (d, true),
        Some((None, d)) => (d, false),
        None => ("", false),
    };
    let depth: usize = depth
        .parse()
        .ok()
        .filter(|d| plan(*d).is_some())
        .ok_or_else(|| Error::unknown("architecture", arch, super::ARCHS))?;
    Model::build(
        arch,
        InputSpec::flexible(3, 32, 224),
        weights,
        device,
        |vb| {
            let mut net = Sequential::root("VGG").flatten_before("classifier");
            net.push_named("features", features(vb.pp("features"), depth, bn)?);
            net.push_named("avgpool", AdaptiveAvgPool2d { output: (7, 7) });
            let vc = vb.pp("classifier");
            let mut c = Sequential::new();
            c.push(Linear::new(
                vc.pp("0"),
                512 * 7 * 7,
                4096,
                InitScheme::Normal(0.01),
            )?);
            c.push(ReLU);
            c.push(Dropout { p: 0.5 });
            c.push(Linear::new(
                vc.pp("3"),
                4096,
                4096,
                InitScheme::Normal(0.01),
            )?);
            c.push(ReLU);
            c.push(Dropout { p: 0.5 });
            c.push(Linear::new(
                vc.pp("6"),
                4096,
                1000,
                InitScheme::Normal(0.01),
            )?);
            net.push_named("classifier", c);
            Ok(Box::new(net))
        },
    )
}
