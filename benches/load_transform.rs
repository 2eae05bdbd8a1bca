//! Benchmark: decode the 10,000 embedded MNIST digits and turn them into `64 x 3 x 224 x 224`
//! candle tensors (resize 28 -> 224 bilinear, grey -> RGB, normalise), as seed 1 prepares its
//! inputs. Compare with `bench/torchvision_load.py` through `bench/run_load_transform.sh`.
//!
//! Run: `cargo bench --bench load_transform` (prints one JSON line per measurement).

use neuroscope::data::{batches, embedded, transforms::Compose, transforms::Normalize, Dataset};
use neuroscope::device::Device;
use std::time::Instant;

fn main() -> neuroscope::Result<()> {
    let repeats: usize = std::env::var("REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let t0 = Instant::now();
        // Decoding the gzip'd IDX bytes is part of "loading": do it inside the timer.
        let ds = neuroscope::data::files::from_bytes(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/data/mnist-10k-images-idx3-ubyte.gz"
            ))
            .unwrap(),
            "images",
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/data/mnist-10k-labels-idx1-ubyte.gz"
            ))
            .unwrap(),
            "labels",
            "mnist",
            embedded::MNIST_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )?
        .take(n);
        let tf = Compose::new()
            .resize(224, 224)
            .gray_to_rgb()
            .normalize(Normalize::half());
        let mut checksum = 0f64;
        for b in batches(&ds, &tf, 64, &Device::Cpu) {
            let b = b?;
            // Touch the tensor so nothing is optimised away.
            checksum += b
                .images
                .get(0)?
                .get(0)?
                .get(100)?
                .get(100)?
                .to_scalar::<f32>()? as f64;
        }
        let secs = t0.elapsed().as_secs_f64();
        best = best.min(secs);
        eprintln!("neuroscope: {n} images in {secs:.3} s (checksum {checksum:.4})");
    }
    println!(
        "{{\"impl\": \"neuroscope\", \"images\": {n}, \"best_s\": {best:.4}, \"threads\": {}}}",
        rayon::current_num_threads()
    );
    Ok(())
}
