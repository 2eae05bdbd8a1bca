//! Seed 3's training on the embedded MNIST digits: `cargo run --release --example train_mnist
//! -- [momentum] [epochs] [n_test]` prints the test accuracy and the time per epoch.
use neuroscope::data::{embedded, Dataset};
use neuroscope::models::{self, Weights};
use neuroscope::train::{split, Optimizer, Train};

fn main() -> neuroscope::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let momentum: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let epochs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let n_test: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let device = neuroscope::device::Device::Cpu;
    let net = models::load("mnist_cnn", &Weights::Random { seed: 1 }, &device)?;
    let (train, test) = split(embedded::mnist(), n_test, 0)?;
    let t = Train::new()
        .optimizer(Optimizer::sgd(momentum))
        .lr(0.01)
        .epochs(epochs)
        .batch_size(64)
        .seed(1);
    let trained = t.fit(&net, &train, Some(&test))?;
    for e in &trained.history().epochs {
        println!(
            "epoch {} train {} test acc {:?} ({:.2} s, {} train samples)",
            e.epoch,
            e.train_loss,
            e.test_accuracy,
            e.seconds,
            train.len()
        );
    }
    Ok(())
}
