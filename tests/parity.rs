//! Every architecture against PyTorch: the same random torchvision weights, loaded from both
//! `.pth` and `.safetensors`, must give the same output at every named module.
//!
//! The reference files come from `scripts/make_parity_fixtures.py` (too large to commit).
//! Without them these tests say so and pass, unless `NEUROSCOPE_REQUIRE_PARITY=1` (set by
//! `.ci/run`), which turns a missing fixture into a failure.
//!
//! `NEUROSCOPE_TEST_DEVICE=cuda` runs the models on the GPU (a `--features cuda` build; see
//! `bench/cuda/run.sh`) against the same PyTorch references.

mod common;
use candle_core::{Device, Tensor};
use common::rel_err;
use neuroscope::models::{self, Weights};
use std::collections::HashMap;
use std::path::PathBuf;

fn dir() -> PathBuf {
    std::env::var_os("NEUROSCOPE_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated")
        })
}

/// The reference outputs, or None (after saying why) when the fixtures are absent.
fn reference(arch: &str) -> Option<HashMap<String, Tensor>> {
    let path = dir().join(format!("{arch}_outputs.safetensors"));
    if !path.is_file() {
        if std::env::var("NEUROSCOPE_REQUIRE_PARITY").is_ok_and(|v| v == "1") {
            panic!(
                "{} is missing: run scripts/make_parity_fixtures.py",
                path.display()
            );
        }
        eprintln!(
            "SKIPPED parity for {arch}: {} missing (run scripts/make_parity_fixtures.py)",
            path.display()
        );
        return None;
    }
    Some(candle_core::safetensors::load(&path, &Device::Cpu).unwrap())
}

/// The device the models run on: `NEUROSCOPE_TEST_DEVICE` (default the CPU).
fn device() -> Device {
    let name = std::env::var("NEUROSCOPE_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    neuroscope::device::parse(&name).unwrap_or_else(|e| panic!("NEUROSCOPE_TEST_DEVICE: {e}"))
}

fn check(arch: &str) {
    let Some(reference) = reference(arch) else {
        return;
    };
    let modules: Vec<String> = std::fs::read_to_string(dir().join(format!("{arch}_modules.txt")))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // The fixture script writes a .pth only for networks up to 30 M values (120 MB of f32);
    // those must have one, larger ones (AlexNet, VGG) are checked from .safetensors alone.
    let st_bytes = std::fs::metadata(dir().join(format!("{arch}.safetensors")))
        .unwrap()
        .len();
    let exts: &[&str] = if st_bytes < 150_000_000 {
        &["safetensors", "pth"]
    } else {
        &["safetensors"]
    };
    for ext in exts {
        let weights = Weights::File(dir().join(format!("{arch}.{ext}")));
        let net =
            models::load(arch, &weights, &device()).unwrap_or_else(|e| panic!("{arch}.{ext}: {e}"));
        // The same modules, in the same order, as PyTorch's named_modules().
        let ours: Vec<String> = net.layers().into_iter().map(|l| l.name).collect();
        assert_eq!(ours, modules, "{arch}: module names");
        let x = &reference["__input__"].to_device(&device()).unwrap();
        let outputs = net.record_all(x).unwrap();
        let mut worst = (0f32, String::new());
        for (name, want) in &reference {
            let got = match name.as_str() {
                "__input__" => continue,
                "__output__" => net.forward(x).unwrap(),
                _ => outputs
                    .get(name)
                    .unwrap_or_else(|| panic!("{arch}: {name} was not recorded"))
                    .clone(),
            };
            assert_eq!(got.dims(), want.dims(), "{arch}.{ext}: shape of {name}");
            let e = rel_err(&got, want);
            if e > worst.0 {
                worst = (e, name.clone());
            }
            assert!(
                e <= 1e-4,
                "{arch}.{ext}: {name} differs from PyTorch: max|diff|/max|ref| = {e:.2e}"
            );
        }
        eprintln!(
            "{arch}.{ext} on {}: {} outputs match; worst {:.2e} at {}",
            neuroscope::device::describe(&device()),
            reference.len() - 1,
            worst.0,
            worst.1
        );
    }
}

macro_rules! parity {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            check(stringify!($name));
        }
    )*};
}

parity!(
    mnist_cnn, cifar_cnn, alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn,
    vgg19_bn
);
parity!(
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    googlenet,
    mobilenet_v2
);

#[test]
fn checkpoint_with_state_dict_key_loads() {
    let path = dir().join("mnist_cnn_checkpoint.pth");
    if reference("mnist_cnn").is_none() {
        return;
    }
    let a = models::load("mnist_cnn", &Weights::File(path), &Device::Cpu).unwrap();
    let b = models::load(
        "mnist_cnn",
        &Weights::File(dir().join("mnist_cnn.pth")),
        &Device::Cpu,
    )
    .unwrap();
    let x = Tensor::randn(0f32, 1., (3, 1, 28, 28), &Device::Cpu).unwrap();
    assert_eq!(
        rel_err(&a.forward(&x).unwrap(), &b.forward(&x).unwrap()),
        0.0
    );
}

#[test]
fn weights_of_another_architecture_are_refused_with_a_key_report() {
    if reference("resnet18").is_none() {
        return;
    }
    let e = models::load(
        "resnet34",
        &Weights::File(dir().join("resnet18.safetensors")),
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Missing key(s)") && e.contains("layer1.2.conv1.weight"),
        "{e}"
    );
    let e = models::load(
        "alexnet",
        &Weights::File(dir().join("resnet18.pth")),
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Missing key(s)") && e.contains("features.0.weight"),
        "{e}"
    );
    assert!(
        e.contains("Unexpected key(s)") && e.contains("layer4.1.bn2.running_var"),
        "{e}"
    );
    let e = models::load(
        "resnet50",
        &Weights::File(dir().join("resnet18.safetensors")),
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("size mismatch for layer1.0.conv1.weight"), "{e}");
}
