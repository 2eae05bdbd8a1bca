//! Benchmark: record AlexNet `features` and ResNet-50 `layer4` (spatial mean) for 256 images
//! of 3 x 224 x 224 on the CPU, batch 64. Peer: `bench/torch_record.py` (PyTorch with a
//! forward hook), run side by side by `bench/run_record.sh`.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench record`

use candle_core::{Device, Tensor};
use neuroscope::models::{load, Weights};
use neuroscope::record::{Recorder, Reduce};
use std::time::Instant;

fn main() -> neuroscope::Result<()> {
    std::env::set_var("NEUROSCOPE_QUIET", "1");
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let repeats: usize = std::env::var("REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let x = Tensor::randn(0f32, 1., (n, 3, 224, 224), &Device::Cpu)?;
    for (arch, layer) in [("alexnet", "features"), ("resnet50", "layer4")] {
        let net = load(arch, &Weights::Random { seed: 0 }, &Device::Cpu)?;
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let t0 = Instant::now();
            let rec = Recorder::new(&net)
                .layers(&[layer])
                .reduce(Reduce::SpatialMean)
                .batch_size(64)
                .progress(false)
                .run_tensor(&x)?;
            let dt = t0.elapsed().as_secs_f64();
            assert_eq!(rec.len(), n);
            eprintln!("neuroscope {arch} {layer}: {n} images in {dt:.2} s");
            best = best.min(dt);
        }
        println!(
            "{{\"impl\": \"neuroscope\", \"arch\": \"{arch}\", \"layer\": \"{layer}\", \"images\": {n}, \"best_s\": {best:.3}, \"threads\": {}}}",
            rayon::current_num_threads()
        );
    }
    Ok(())
}
