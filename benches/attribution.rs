//! Benchmark: integrated gradients (50 steps, zero baseline) and occlusion (window 3 x 56 x 56,
//! strides 3 x 28 x 28, 49 windows) of one 224 x 224 image through ResNet-50, random weights,
//! target class 0. Peer: captum 0.9.0 (`bench/torch_attribution.py`), side by side in
//! `bench/run_attribution.sh`. Both sides put 25 scaled images (IG) or 16 occluded images
//! (occlusion) through each pass; `OCC_BATCH` sets the occlusion batch on both sides (16).
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench attribution`; `REPEATS` (2), best kept;
//! `ONLY=occlusion` (or `integrated_gradients`) times one method.

use neuroscope::attribution::{IntegratedGradients, Occlusion, Target};
use neuroscope::models::{load, Weights};
use std::time::Instant;

mod common;
use common::env;

fn main() -> neuroscope::Result<()> {
    std::env::set_var("NEUROSCOPE_QUIET", "1");
    let repeats = env("REPEATS", 2);
    // `ONLY=occlusion` or `ONLY=integrated_gradients` runs one of the two (for profiling).
    let only = std::env::var("ONLY").unwrap_or_default();
    let runs = |method: &str| only.is_empty() || only == method;
    if !["occlusion", "integrated_gradients"].into_iter().any(runs) {
        return Err(neuroscope::Error::InvalidArgument(format!(
            "ONLY={only}: use occlusion or integrated_gradients (or leave it unset for both)"
        )));
    }
    let dev = candle_core::Device::Cpu;
    let net = load("resnet50", &Weights::Random { seed: 0 }, &dev)?;
    let x = candle_core::Tensor::randn(0f32, 1.0, (1, 3, 224, 224), &dev)?;
    let best = |f: &dyn Fn() -> neuroscope::Result<()>| -> neuroscope::Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let t = Instant::now();
            f()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    if runs("integrated_gradients") {
        let ig = best(&|| {
            IntegratedGradients::new()
                .n_steps(50)
                .batch_size(25)
                .target(Target::Class(0))
                .attribute(&net, &x)
                .map(|_| ())
        })?;
        println!(
        "{{\"arch\": \"resnet50\", \"method\": \"integrated_gradients\", \"seconds\": {ig:.3}}}"
    );
    }
    if runs("occlusion") {
        let occ_batch = env("OCC_BATCH", 16);
        let occ = best(&|| {
            Occlusion::new((3, 56, 56), (3, 28, 28))
                .batch_size(occ_batch)
                .target(Target::Class(0))
                .attribute(&net, &x)
                .map(|_| ())
        })?;
        println!("{{\"arch\": \"resnet50\", \"method\": \"occlusion\", \"batch\": {occ_batch}, \"seconds\": {occ:.3}}}");
    }
    Ok(())
}
