//! The CIFAR-10 network of workflow 4: two conv blocks with batch norm, three linear layers with
//! dropout, in the seed's `block1`, `block2`, `fc_layers` sequentials.

use super::layers::{
    Activation::ReLU, BatchNorm2d, Conv2d, ConvSpec, Dropout, InitScheme, Linear, Pool2d,
    Sequential,
};
use super::{InputSpec, Model, Weights};
use crate::Result;
use candle_core::Device;
use candle_nn::VarBuilder;

fn block(vb: VarBuilder, cin: usize, cout: usize) -> Result<Sequential> {
    let mut b = Sequential::new();
    b.push(Conv2d::new(
        vb.pp("0"),
        ConvSpec::new(cin, cout, 5),
        InitScheme::TorchDefault,
    )?);
    b.push(BatchNorm2d::new(vb.pp("1"), cout)?);
    b.push(ReLU);
    b.push(Pool2d::max(2, 2));
    Ok(b)
}

/// The seed-4 network for 3 x 32 x 32 inputs; outputs 10 logits.
///
/// ```
/// use neuroscope::models::{cifar_cnn::cifar_cnn, Weights};
/// let net = cifar_cnn(&Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// assert!(net.layer_names().contains(&"block1.0".to_string()));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn cifar_cnn(weights: &Weights, device: &Device) -> Result<Model> {
    let init = InitScheme::TorchDefault;
    Model::build(
        "cifar_cnn",
        InputSpec::fixed(3, 32, 32),
        weights,
        device,
        |vb| {
            let mut net = Sequential::root("CNN").flatten_before("fc_layers");
            net.push_named("block1", block(vb.pp("block1"), 3, 64)?);
            net.push_named("block2", block(vb.pp("block2"), 64, 32)?);
            let vf = vb.pp("fc_layers");
            let mut fc = Sequential::new();
            fc.push(Linear::new(vf.pp("0"), 32 * 5 * 5, 64, init)?);
            fc.push(ReLU);
            fc.push(Dropout { p: 0.2 });
            fc.push(Linear::new(vf.pp("3"), 64, 32, init)?);
            fc.push(ReLU);
            fc.push(Dropout { p: 0.2 });
            fc.push(Linear::new(vf.pp("6"), 32, 10, init)?);
            net.push_named("fc_layers", fc);
            Ok(Box::new(net))
        },
    )
}
