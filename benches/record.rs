//! Benchmark: record a layer (spatial mean) for random 3 x 224 x 224 images. Defaults: the CPU,
//! 256 images, batch 64, AlexNet `features` and ResNet-50 `layer4`. Peer: `bench/torch_record.py`
//! (PyTorch with a forward hook), run side by side by `bench/run_record.sh` (CPU) and
//! `bench/cuda/run.sh` (GPU).
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench record`
//! Environment: `DEVICE` (cpu, cuda), `N` images, `BATCH`, `REPEATS`, `NETS`
//! (`arch:layer,...`, e.g. `alexnet:features,resnet50:layer4,vgg16:features`).

use candle_core::Tensor;
use neuroscope::models::{load, Weights};
use neuroscope::record::{Recorder, Reduce};
use std::time::Instant;

mod common;
use common::env;

fn main() -> neuroscope::Result<()> {
    std::env::set_var("NEUROSCOPE_QUIET", "1");
    let n = env("N", 256);
    let repeats = env("REPEATS", 2);
    let batch = env("BATCH", 64);
    let device = neuroscope::device::parse(&std::env::var("DEVICE").unwrap_or("cpu".into()))?;
    let nets = std::env::var("NETS").unwrap_or("alexnet:features,resnet50:layer4".into());
    // the images live on the CPU, as a data loader's would; the recorder moves each batch
    let x = Tensor::randn(0f32, 1., (n, 3, 224, 224), &candle_core::Device::Cpu)?;
    // INPUT_ON_DEVICE=1: the images already on the device (no host-to-device copy timed)
    let x = if std::env::var("INPUT_ON_DEVICE").is_ok_and(|v| v == "1") {
        x.to_device(&device)?
    } else {
        x
    };
    for spec in nets.split(',') {
        let (arch, layer) = spec.split_once(':').unwrap_or((spec, "features"));
        let net = load(arch, &Weights::Random { seed: 0 }, &device)?;
        let run = |x: &Tensor| {
            Recorder::new(&net)
                .layers(&[layer])
                // transformer tokens reduce as PyTorch's side does: the mean over the tokens
                .reduce(if arch.starts_with("vit_") {
                    Reduce::TokenMean
                } else {
                    Reduce::SpatialMean
                })
                .batch_size(batch)
                .progress(false)
                .run_tensor(x)
        };
        if device.is_cuda() {
            // first use compiles kernels and sizes cuBLAS workspaces: not part of throughput
            let t0 = Instant::now();
            run(&x.narrow(0, 0, batch.min(n))?)?;
            eprintln!(
                "neuroscope {arch}: warm-up {:.2} s",
                t0.elapsed().as_secs_f64()
            );
        }
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let t0 = Instant::now();
            let rec = run(&x)?;
            let dt = t0.elapsed().as_secs_f64();
            assert_eq!(rec.len(), n);
            eprintln!("neuroscope {arch} {layer}: {n} images in {dt:.2} s");
            best = best.min(dt);
        }
        // where the time goes: the bare forward pass over the same batches (no recording)
        let mut fwd_best = f64::INFINITY;
        for _ in 0..repeats {
            let t0 = Instant::now();
            for start in (0..n).step_by(batch) {
                let xb = x
                    .narrow(0, start, batch.min(n - start))?
                    .to_device(&device)?;
                let y = net.forward(&xb)?;
                // wait for the device: read one number back
                y.flatten_all()?.narrow(0, 0, 1)?.to_vec1::<f32>()?;
            }
            fwd_best = fwd_best.min(t0.elapsed().as_secs_f64());
        }
        eprintln!("neuroscope {arch}: forward only {fwd_best:.3} s");
        println!(
            "{{\"impl\": \"neuroscope\", \"arch\": \"{arch}\", \"layer\": \"{layer}\", \"device\": \"{}\", \"images\": {n}, \"batch\": {batch}, \"best_s\": {best:.3}, \"images_per_s\": {:.1}, \"forward_only_s\": {fwd_best:.3}, \"threads\": {}}}",
            neuroscope::device::describe(&device),
            n as f64 / best,
            rayon::current_num_threads()
        );
    }
    Ok(())
}
