//! The small MNIST network of workflow 3 (PyTorch's classic `mnist_cnn.py`): two 5x5 convs, two
//! linear layers, log-softmax, with the seed's taps `h1`..`h6`.

use super::layers::{Activation, Conv2d, ConvSpec, InitScheme, Layer, Linear};
use super::{Ctx, InputSpec, Model, Weights};
use crate::Result;
use candle_core::{Device, Tensor};

/// The seed's extraction points, in order: after the first ReLU (`h1`), the first pooling
/// (`h2`), the second ReLU (`h3`), the second pooling (`h4`), the third ReLU (`h5`), and the
/// output (`h6`, the log-probabilities).
pub const TAPS: [&str; 6] = ["h1", "h2", "h3", "h4", "h5", "h6"];

/// `conv1` 1->20 5x5, `conv2` 20->50 5x5, `fc1` 800->500, `fc2` 500->10.
#[derive(Debug)]
pub struct MnistCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
}

impl Layer for MnistCnn {
    fn kind(&self) -> &'static str {
        "Net"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let x = ctx.run_relu("conv1", &self.conv1, x)?;
        ctx.tap("h1", &x);
        let x = crate::kernels::max_pool2d(&x, 2, 2)?;
        ctx.tap("h2", &x);
        let x = ctx.run_relu("conv2", &self.conv2, &x)?;
        ctx.tap("h3", &x);
        let x = crate::kernels::max_pool2d(&x, 2, 2)?;
        ctx.tap("h4", &x);
        let x = ctx.run_relu("fc1", &self.fc1, &x.flatten_from(1)?)?;
        ctx.tap("h5", &x);
        let x = ctx.run("fc2", &self.fc2, &x)?;
        let x = Activation::LogSoftmax.forward(&x, ctx)?;
        ctx.tap("h6", &x);
        Ok(x)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![
            ("conv1".into(), &self.conv1),
            ("conv2".into(), &self.conv2),
            ("fc1".into(), &self.fc1),
            ("fc2".into(), &self.fc2),
        ]
    }
}

/// The seed-3 network for 1 x 28 x 28 inputs (normalised with MNIST's mean and std).
///
/// ```
/// use neuroscope::models::{mnist_cnn::mnist_cnn, Weights};
/// let net = mnist_cnn(&Weights::Random { seed: 1 }, &neuroscope::device::Device::Cpu)?;
/// let n: usize = net.state_dict().iter().map(|(_, t)| t.elem_count()).sum();
/// assert_eq!(n, 431_080);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn mnist_cnn(weights: &Weights, device: &Device) -> Result<Model> {
    let init = InitScheme::TorchDefault;
    let model = Model::build(
        "mnist_cnn",
        InputSpec::fixed(1, 28, 28),
        weights,
        device,
        |vb| {
            Ok(Box::new(MnistCnn {
                conv1: Conv2d::new(vb.pp("conv1"), ConvSpec::new(1, 20, 5), init)?,
                conv2: Conv2d::new(vb.pp("conv2"), ConvSpec::new(20, 50, 5), init)?,
                fc1: Linear::new(vb.pp("fc1"), 4 * 4 * 50, 500, init)?,
                fc2: Linear::new(vb.pp("fc2"), 500, 10, init)?,
            }))
        },
    )?;
    Ok(model.with_taps(&TAPS))
}
