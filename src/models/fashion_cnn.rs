//! A small VGG-style network for 1 x 28 x 28 images (Fashion-MNIST), deep enough that a
//! student sees a hierarchy: four convolutional stages (3 x 3 convolution, batch norm, ReLU;
//! max pooling after the first three), a global average pool and a 10-way linear classifier.
//! neuroscope trains it itself and ships the weights (`Weights::Trained`).
//!
//! In PyTorch:
//!
//! ```text
//! class FashionCNN(nn.Module):
//!     def __init__(self):
//!         super().__init__()
//!         def stage(cin, cout, pool):
//!             layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
//!             return layers + ([nn.MaxPool2d(2)] if pool else [])
//!         self.features = nn.Sequential(*stage(1, 32, True), *stage(32, 64, True),
//!                                       *stage(64, 128, True), *stage(128, 256, False))
//!         self.avgpool = nn.AdaptiveAvgPool2d(1)
//!         self.classifier = nn.Sequential(nn.Dropout(0.3), nn.Linear(256, 10))
//!     def forward(self, x):
//!         return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
//! ```

use super::layers::{
    Activation::ReLU, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvSpec, Dropout, InitScheme,
    Linear, Pool2d, Sequential,
};
use super::{InputSpec, Model, Weights};
use crate::Result;
use candle_core::Device;

/// Channels of the four stages; the first three end in a 2 x 2 max pool (28 -> 14 -> 7 -> 3).
pub const STAGES: [(usize, usize, bool); 4] = [
    (1, 32, true),
    (32, 64, true),
    (64, 128, true),
    (128, 256, false),
];

/// The network, with PyTorch's module names: `features.0` (conv) .. `features.14` (last ReLU),
/// `avgpool`, `classifier.0` (dropout), `classifier.1` (the 10-way linear layer).
///
/// ```
/// use neuroscope::models::{fashion_cnn::fashion_cnn, Weights};
/// let net = fashion_cnn(&Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// let n = net.summary()?.total_params;
/// assert_eq!(n, 391_370);
/// assert!(net.layer_names().contains(&"classifier.1".to_string()));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn fashion_cnn(weights: &Weights, device: &Device) -> Result<Model> {
    let init = InitScheme::TorchDefault;
    Model::build(
        "fashion_cnn",
        InputSpec::fixed(1, 28, 28),
        weights,
        device,
        |vb| {
            let vf = vb.pp("features");
            let mut features = Sequential::new();
            let mut i = 0;
            for (cin, cout, pool) in STAGES {
                features.push(Conv2d::new(
                    vf.pp(i.to_string()),
                    ConvSpec::new(cin, cout, 3).padding(1),
                    init,
                )?);
                features.push(BatchNorm2d::new(vf.pp((i + 1).to_string()), cout)?);
                features.push(ReLU);
                i += 3;
                if pool {
                    features.push(Pool2d::max(2, 2));
                    i += 1;
                }
            }
            let mut classifier = Sequential::new();
            classifier.push(Dropout { p: 0.3 });
            classifier.push(Linear::new(vb.pp("classifier").pp("1"), 256, 10, init)?);
            let mut net = Sequential::root("FashionCNN").flatten_before("classifier");
            net.push_named("features", features);
            net.push_named("avgpool", AdaptiveAvgPool2d { output: (1, 1) });
            net.push_named("classifier", classifier);
            Ok(Box::new(net))
        },
    )
}
