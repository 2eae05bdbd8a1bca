//! The GPU path against the CPU path: every architecture's every named layer, the recorder and
//! gradients to the input must agree on a CUDA device with what the CPU computes (and the CPU is
//! held to PyTorch by tests/parity.rs).
//!
//! These tests need a build with `--features cuda` and a GPU. Without either they say
//! `SKIPPED` and pass, unless `NEUROSCOPE_REQUIRE_CUDA=1`, which turns a missing device into a
//! failure (set it on the GPU machine, see `bench/cuda/run.sh`).

mod common;
use candle_core::{Device, Tensor, Var};
use common::rel_err;
use neuroscope::models::{self, Weights};
use neuroscope::record::{Recorder, Reduce};

/// The CUDA device, or None (after saying why).
fn gpu() -> Option<Device> {
    match neuroscope::device::parse("cuda") {
        Ok(d) if d.is_cuda() => Some(d),
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                Ok(_) => "not a CUDA device".into(),
            };
            if std::env::var("NEUROSCOPE_REQUIRE_CUDA").is_ok_and(|v| v == "1") {
                panic!("NEUROSCOPE_REQUIRE_CUDA=1 but no CUDA device: {why}");
            }
            eprintln!("SKIPPED (no CUDA device: {why})");
            None
        }
    }
}

/// The same random weights on the CPU and on the GPU (through a file, so the GPU model is
/// exactly what a user loading a checkpoint gets).
fn pair(arch: &str, gpu: &Device) -> (models::Model, models::Model) {
    let cpu = models::load(arch, &Weights::Random { seed: 0 }, &Device::Cpu).unwrap();
    let path = std::env::temp_dir().join(format!("neuroscope-cuda-{arch}.safetensors"));
    cpu.save(&path).unwrap();
    let dev = models::load(arch, &Weights::File(path.clone()), gpu).unwrap();
    let _ = std::fs::remove_file(path);
    (cpu, dev)
}

fn input(arch: &str, n: usize) -> Tensor {
    let spec = models::load(arch, &Weights::Random { seed: 0 }, &Device::Cpu)
        .unwrap()
        .input_spec();
    let (c, (h, w)) = (spec.channels, spec.default_size);
    Tensor::randn(0f32, 1., (n, c, h, w), &Device::Cpu).unwrap()
}

fn every_layer(arch: &str) {
    let Some(gpu) = gpu() else { return };
    let (cpu, dev) = pair(arch, &gpu);
    let x = input(arch, 2);
    let want = cpu.record_all(&x).unwrap();
    let got = dev.record_all(&x.to_device(&gpu).unwrap()).unwrap();
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{arch}: the same layers"
    );
    let mut worst = (0f32, String::new());
    for (name, w) in &want {
        let g = &got[name];
        assert_eq!(g.dims(), w.dims(), "{arch}: shape of {name}");
        assert!(g.device().is_cuda(), "{arch}: {name} left the GPU");
        let e = rel_err(g, w);
        if e > worst.0 {
            worst = (e, name.clone());
        }
        assert!(e <= 1e-4, "{arch}: {name} differs on CUDA: {e:.2e}");
    }
    eprintln!(
        "{arch}: {} layers match on CUDA; worst {:.2e} at {}",
        want.len(),
        worst.0,
        worst.1
    );
}

macro_rules! on_cuda {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            every_layer(stringify!($name));
        }
    )*};
}

on_cuda!(
    mnist_cnn,
    cifar_cnn,
    alexnet,
    vgg16,
    vgg16_bn,
    resnet18,
    resnet50,
    googlenet,
    mobilenet_v2
);

#[test]
fn recorder_runs_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    let (cpu, dev) = pair("alexnet", &gpu);
    let x = input("alexnet", 6);
    let rec = |m: &models::Model, x: &Tensor| {
        Recorder::new(m)
            .layers(&["features", "classifier.4"])
            .reduce(Reduce::SpatialMean)
            .batch_size(4)
            .progress(false)
            .run_tensor(x)
            .unwrap()
    };
    let want = rec(&cpu, &x);
    // images on the CPU, as a data loader gives them: the recorder moves every batch
    let got = rec(&dev, &x);
    for layer in ["features", "classifier.4"] {
        let (w, g) = (want.matrix(layer).unwrap(), got.matrix(layer).unwrap());
        assert_eq!(w.dim(), g.dim());
        let scale = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        let diff = w
            .iter()
            .zip(g.iter())
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff / scale <= 1e-4, "{layer}: {:.2e}", diff / scale);
    }
}

#[test]
fn input_gradients_agree() {
    let Some(gpu) = gpu() else { return };
    // mnist_cnn pools 2/2 (candle's pool backward covers it); the 3/2 pools of AlexNet and
    // ResNet get their own backward with the activation-maximisation work
    let (cpu, dev) = pair("mnist_cnn", &gpu);
    let x = input("mnist_cnn", 3);
    let grad = |m: &models::Model, dev: &Device| {
        let v = Var::from_tensor(&x.to_device(dev).unwrap()).unwrap();
        let y = m.forward(v.as_tensor()).unwrap();
        let loss = y.sqr().unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        g.get(v.as_tensor()).unwrap().clone()
    };
    let want = grad(&cpu, &Device::Cpu);
    let got = grad(&dev, &gpu);
    let e = rel_err(&got, &want);
    assert!(e <= 1e-4, "input gradient differs on CUDA: {e:.2e}");
}

/// Three seeded Gaussian blobs in 20-D, apart enough that the embedding's quality does not hinge
/// on rounding.
fn blobs(per: usize) -> ndarray::Array2<f64> {
    let mut r = neuroscope::rng::Rng::new(7);
    ndarray::Array2::from_shape_fn((3 * per, 20), |(i, c)| {
        let centre = if c == i / per { 8.0 } else { 0.0 };
        centre + r.normal()
    })
}

/// t-SNE on the GPU (exact nearest neighbours and exact repulsion in neuroscope's kernels)
/// against the CPU solver: the same quality, and the same bits twice on the same GPU.
#[test]
fn tsne_on_the_gpu_matches_the_cpu() {
    use neuroscope::analysis::embed::Tsne;
    use neuroscope::analysis::metrics::trustworthiness;
    let Some(gpu) = gpu() else { return };
    let x = blobs(400);
    for dims in [2, 3] {
        let params = Tsne::new().dims(dims).seed(0);
        let cpu = params.clone().fit(&x).unwrap();
        let dev = params.clone().device(&gpu).fit(&x).unwrap();
        let again = params.clone().device(&gpu).fit(&x).unwrap();
        assert_eq!(
            dev.embedding(),
            again.embedding(),
            "{dims}-D: not reproducible"
        );
        let (t_cpu, t_gpu) = (
            trustworthiness(&x, cpu.embedding(), 10).unwrap(),
            trustworthiness(&x, dev.embedding(), 10).unwrap(),
        );
        eprintln!(
            "{dims}-D: trustworthiness CPU {t_cpu:.4} GPU {t_gpu:.4}; KL CPU {:.4} GPU {:.4}",
            cpu.kl_divergence(),
            dev.kl_divergence()
        );
        assert!((t_cpu - t_gpu).abs() <= 0.01);
        assert!((cpu.kl_divergence() - dev.kl_divergence()).abs() <= 0.05 * cpu.kl_divergence());
        assert_eq!(dev.kl_history().len(), cpu.kl_history().len());
    }
}

/// The GPU's exact nearest neighbours are the CPU's, so the affinities are the same and so is
/// the first iteration, up to float rounding.
#[test]
fn tsne_first_gpu_step_is_the_cpu_step() {
    use neuroscope::analysis::embed::{Tsne, TsneMethod};
    let Some(gpu) = gpu() else { return };
    let x = blobs(300);
    let one = Tsne::new().max_iter(1).seed(0);
    let y0 = Tsne::new()
        .max_iter(0)
        .seed(0)
        .fit(&x)
        .unwrap()
        .into_embedding();
    // Barnes-Hut at angle 0 is the exact repulsion, over the same nearest-neighbour affinities
    let cpu = one
        .clone()
        .method(TsneMethod::BarnesHut)
        .theta(0.0)
        .fit(&x)
        .unwrap();
    let dev = one.device(&gpu).fit(&x).unwrap();
    let step = cpu.embedding() - &y0;
    let scale = step.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = (cpu.embedding() - dev.embedding())
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(worst <= 1e-4 * scale, "step differs by {worst} of {scale}");
}

/// The GPU's exact nearest neighbours are the CPU's, bit for bit, and so is a UMAP that uses them.
#[test]
fn nearest_neighbours_and_umap_on_the_gpu_are_the_cpus() {
    use neuroscope::analysis::embed::{Umap, UmapMetric};
    use neuroscope::analysis::neighbors::{knn, knn_on};
    let Some(gpu) = gpu() else { return };
    let x = blobs(400);
    let cpu = knn(&x, 30).unwrap();
    let dev = knn_on(&x, 30, &gpu).unwrap();
    assert_eq!(cpu.indices, dev.indices);
    assert_eq!(cpu.distances, dev.distances);
    // small integers: exact ties and duplicate rows, where the float check must fall back
    let mut r = neuroscope::rng::Rng::new(5);
    let ints = ndarray::Array2::from_shape_fn((900, 6), |_| (r.uniform() * 3.0).floor());
    assert_eq!(
        knn(&ints, 12).unwrap().indices,
        knn_on(&ints, 12, &gpu).unwrap().indices
    );
    for metric in [UmapMetric::Euclidean, UmapMetric::Cosine] {
        let u = Umap::new().metric(metric).n_epochs(50).seed(1);
        let a = u.clone().fit(&x).unwrap();
        let b = u.device(&gpu).fit(&x).unwrap();
        assert_eq!(a.embedding(), b.embedding(), "{metric:?}");
    }
}
