//! Helpers shared by the test files: comparing tensors across devices and implementations,
//! running the command-line program. Each test file uses some of them.
#![allow(dead_code)]

use candle_core::{Device, Tensor};

/// max |a - b| / max |b|, both read on the CPU (either may live on a GPU).
pub fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_device(&Device::Cpu).unwrap();
    let b = b.to_device(&Device::Cpu).unwrap();
    let max = |t: &Tensor| {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    max(&(&a - &b).unwrap()) / max(&b).max(1e-12)
}

/// Runs the `neuroscope` binary with `args` (progress lines off): whether it succeeded, and its
/// standard output and error together.
#[cfg(feature = "cli")]
pub fn neuroscope(args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_neuroscope"))
        .args(args)
        .env("NEUROSCOPE_QUIET", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), text)
}
