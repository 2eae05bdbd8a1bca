//! Helpers shared by the test files that compare tensors across devices and implementations.

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
