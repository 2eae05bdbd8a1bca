//! Benchmark: milliseconds per iteration of workflow 5's activation maximisation (grey noise, Adam
//! lr 10, minus the channel's mean), for ResNet-50 `layer2.0.conv3` channel 0 at 128 px and
//! AlexNet `features.10` channel 0 at 224 px, random weights. Peer: `bench/torch_featvis.py`,
//! run side by side by `bench/run_featvis.sh`.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench featvis`
//! Environment: `DEVICE` (cpu, cuda), `STEPS` (20) timed iterations after `WARMUP` (3), `ARCH`
//! (resnet50 or alexnet: only that one).
//!
//! The time per iteration is (time of WARMUP + STEPS steps - time of WARMUP steps) / STEPS, so
//! that the set-up (initial image, first-use allocations, CUDA kernel compilation) is not in it;
//! an untimed run of WARMUP steps comes before both.

use neuroscope::featvis::{FeatVis, Objective};
use neuroscope::models::{load, Weights};
use std::time::Instant;

mod common;
use common::env;

fn main() -> neuroscope::Result<()> {
    std::env::set_var("NEUROSCOPE_QUIET", "1");
    let steps = env("STEPS", 20);
    let warmup = env("WARMUP", 3);
    let device = neuroscope::device::parse(&std::env::var("DEVICE").unwrap_or("cpu".into()))?;
    for (arch, layer, px) in [
        ("resnet50", "layer2.0.conv3", 128),
        ("alexnet", "features.10", 224),
    ] {
        if std::env::var("ARCH").is_ok_and(|a| a != arch) {
            continue;
        }
        let net = load(arch, &Weights::Random { seed: 0 }, &device)?;
        let vis = |n: usize| {
            FeatVis::new(Objective::channel(layer, 0))
                .size(px)
                .steps(n)
                .seed(0)
        };
        let time = |n: usize| -> neuroscope::Result<(f64, f32)> {
            let t0 = Instant::now();
            let v = vis(n).run(&net)?;
            Ok((t0.elapsed().as_secs_f64(), v.best_loss[0]))
        };
        // An untimed run first: the first run of a network in a process pays for first-use
        // costs (memory faulted in, lazily built state) that made the difference below
        // negative once (AlexNet: -18 ms per step).
        time(warmup)?;
        let (t_warm, _) = time(warmup)?;
        let (t_all, best) = time(warmup + steps)?;
        let ms = (t_all - t_warm) / steps as f64 * 1e3;
        println!(
            "{{\"peer\": \"neuroscope\", \"device\": \"{}\", \"arch\": \"{arch}\", \"layer\": \"{layer}\", \"px\": {px}, \"ms_per_iter\": {ms:.2}, \"final_loss\": {best:.4}}}",
            std::env::var("DEVICE").unwrap_or("cpu".into())
        );
    }
    Ok(())
}
