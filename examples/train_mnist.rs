//! Workflow 3's training: `cargo run --release --example train_mnist -- [momentum] [epochs] [n_test]
//! [full]` prints the test accuracy and the time per epoch.
//!
//! Without `full` it trains on the embedded MNIST digits less `n_test` held out; with `full` on
//! the real 60,000 training images and tests on the 10,000 test images (found in
//! `$NEUROSCOPE_CACHE/mnist`; `bash scripts/fetch_mnist_full.sh` fetches them), timing the
//! training and the evaluation separately, as `bench/torch_train.py` does.
use neuroscope::data::{embedded, remote, Dataset};
use neuroscope::models::{self, Weights};
use neuroscope::train::{evaluate, split, Optimizer, Train};

fn main() -> neuroscope::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let momentum: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let epochs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let n_test: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let full = args.get(4).is_some_and(|s| s == "full");
    let device = neuroscope::device::Device::Cpu;
    let net = models::load("mnist_cnn", &Weights::Random { seed: 1 }, &device)?;
    let t = Train::new()
        .optimizer(Optimizer::sgd(momentum))
        .lr(0.01)
        .epochs(epochs)
        .batch_size(64)
        .seed(1);
    if full {
        let train = remote::by_name("mnist-train")?;
        let test = remote::by_name("mnist-test")?;
        let trained = t.fit(&net, &train, None::<&neuroscope::data::InMemory>)?;
        let t0 = std::time::Instant::now();
        let (_, acc) = evaluate(&trained.model, &test, 1000)?;
        let eval_s = t0.elapsed().as_secs_f64();
        for e in &trained.history().epochs {
            println!(
                "epoch {} train {} ({:.2} s, {} train samples)",
                e.epoch,
                e.train_loss,
                e.seconds,
                train.len()
            );
        }
        println!("test accuracy {acc:.4} on {} ({eval_s:.2} s)", test.len());
        return Ok(());
    }
    let (train, test) = split(embedded::mnist(), n_test, 0)?;
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
