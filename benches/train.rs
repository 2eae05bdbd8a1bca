//! Benchmark: one epoch of workflow 3's training (seed 3's MNIST CNN, SGD lr 0.01, momentum 0,
//! batch 64, seed 1) on the CPU. Peer: `bench/torch_train.py`, side by side in
//! `bench/run_train.sh`.
//!
//! Without `FULL=1`: the embedded 10,000 digits less one held out (9,999 training samples).
//! With `FULL=1`: LeCun's 60,000 training images, then the 10,000 test images evaluated in
//! batches of 1,000, timed apart (`scripts/fetch_mnist_full.sh` fetches them into
//! `$NEUROSCOPE_CACHE/mnist`). Prints one JSON line.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench train`.

use neuroscope::data::{embedded, remote, Dataset};
use neuroscope::models::{self, Weights};
use neuroscope::train::{evaluate, split, Optimizer, Train};

fn main() -> neuroscope::Result<()> {
    std::env::set_var("NEUROSCOPE_QUIET", "1");
    let full = std::env::var("FULL").is_ok_and(|v| v == "1");
    let net = models::load(
        "mnist_cnn",
        &Weights::Random { seed: 1 },
        &neuroscope::device::Device::Cpu,
    )?;
    let fit = Train::new()
        .optimizer(Optimizer::sgd(0.0))
        .lr(0.01)
        .epochs(1)
        .batch_size(64)
        .seed(1);
    let threads = rayon::current_num_threads();
    if full {
        let train = remote::by_name("mnist-train")?;
        let test = remote::by_name("mnist-test")?;
        let trained = fit.fit(&net, &train, None::<&neuroscope::data::InMemory>)?;
        let t0 = std::time::Instant::now();
        let (_, acc) = evaluate(&trained.model, &test, 1000)?;
        let eval = t0.elapsed().as_secs_f64();
        let e = &trained.history().epochs[0];
        println!(
            "{{\"peer\": \"neuroscope\", \"threads\": {threads}, \"samples\": {}, \"seconds\": {:.3}, \"eval_seconds\": {eval:.3}, \"test_accuracy\": {acc:.4}, \"train_loss\": {}}}",
            train.len(),
            e.seconds,
            e.train_loss
        );
        return Ok(());
    }
    let (train, test) = split(embedded::mnist(), 1, 0)?;
    let trained = fit.fit(&net, &train, Some(&test))?;
    let e = &trained.history().epochs[0];
    println!(
        "{{\"peer\": \"neuroscope\", \"threads\": {threads}, \"samples\": {}, \"seconds\": {:.3}, \"train_loss\": {}}}",
        train.len(),
        e.seconds,
        e.train_loss
    );
    Ok(())
}
