//! AlexNet as torchvision defines it (`torchvision.models.alexnet`, the "one weird trick"
//! variant with 64-192-384-256-256 channels).

use super::layers::{
    Activation::ReLU, AdaptiveAvgPool2d, Conv2d, ConvSpec, Dropout, InitScheme, Linear, Pool2d,
    Sequential,
};
use super::{InputSpec, Model, Weights};
use crate::Result;
use candle_core::Device;
use candle_nn::VarBuilder;

/// `features`: five convs (each followed by ReLU), three 3/2 max pools.
pub fn features(vb: VarBuilder) -> Result<Sequential> {
    let init = InitScheme::TorchDefault;
    let mut f = Sequential::new();
    f.push(Conv2d::new(
        vb.pp("0"),
        ConvSpec::new(3, 64, 11).stride(4).padding(2),
        init,
    )?);
    f.push(ReLU);
    f.push(Pool2d::max(3, 2));
    f.push(Conv2d::new(
        vb.pp("3"),
        ConvSpec::new(64, 192, 5).padding(2),
        init,
    )?);
    f.push(ReLU);
    f.push(Pool2d::max(3, 2));
    f.push(Conv2d::new(
        vb.pp("6"),
        ConvSpec::new(192, 384, 3).padding(1),
        init,
    )?);
    f.push(ReLU);
    f.push(Conv2d::new(
        vb.pp("8"),
        ConvSpec::new(384, 256, 3).padding(1),
        init,
    )?);
    f.push(ReLU);
    f.push(Conv2d::new(
        vb.pp("10"),
        ConvSpec::new(256, 256, 3).padding(1),
        init,
    )?);
    f.push(ReLU);
    f.push(Pool2d::max(3, 2));
    Ok(f)
}

/// `classifier`: dropout, 9216 -> 4096 -> 4096 -> `num_classes`.
pub fn classifier(vb: VarBuilder, num_classes: usize) -> Result<Sequential> {
    let init = InitScheme::TorchDefault;
    let mut c = Sequential::new();
    c.push(Dropout { p: 0.5 });
    c.push(Linear::new(vb.pp("1"), 256 * 6 * 6, 4096, init)?);
    c.push(ReLU);
    c.push(Dropout { p: 0.5 });
    c.push(Linear::new(vb.pp("4"), 4096, 4096, init)?);
    c.push(ReLU);
    c.push(Linear::new(vb.pp("6"), 4096, num_classes, init)?);
    Ok(c)
}

/// AlexNet with 1000 ImageNet classes. Any input of at least 63 x 63 runs (the adaptive
/// average pool makes the classifier's input 6 x 6); 224 x 224 is the usual size.
///
/// ```
/// use neuroscope::models::{alexnet::alexnet, Weights};
/// let net = alexnet(&Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// assert_eq!(net.layers().iter().filter(|l| l.kind == "Conv2d").count(), 5);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn alexnet(weights: &Weights, device: &Device) -> Result<Model> {
    Model::build(
        "alexnet",
        InputSpec::flexible(3, 63, 224),
        weights,
        device,
        |vb| {
            let mut net = Sequential::root("AlexNet").flatten_before("classifier");
            net.push_named("features", features(vb.pp("features"))?);
            net.push_named("avgpool", AdaptiveAvgPool2d { output: (6, 6) });
            net.push_named("classifier", classifier(vb.pp("classifier"), 1000)?);
            Ok(Box::new(net))
        },
    )
}
