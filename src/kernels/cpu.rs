//! Helpers shared by the CPU kernels: the f32 view of a storage, the task size.

use candle_core::{CpuStorage, Layout, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

pub(super) fn is_cpu_f32(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32
}

/// Elements per rayon task of the element-wise CPU ops: large enough that the scheduling cost
/// vanishes, small enough that both cores get work on a 64 x 20 x 24 x 24 activation.
pub(super) const CHUNK: usize = 1 << 15;

/// `len` values written on rayon's threads, `chunk` at a time (`fill(chunk index, chunk)`),
/// without first zero-filling them: `vec![0.0; len]` is a full write pass of its own (6 % of a
/// ConvNeXt-T recording, its MLP activations above all), because the heap reuses freed blocks
/// (`super::memory`) and `calloc` must clear them.
///
/// # Safety
/// `fill` must write every element of every chunk it is given.
pub(super) unsafe fn par_uninit(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut v = Vec::<f32>::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, c)| fill(i, c));
    // SAFETY: the chunks cover the first `len` slots of the capacity, and the caller's `fill`
    // wrote every element of each (a panic in `fill` drops `v` at length 0).
    unsafe { v.set_len(len) };
    v
}

/// Contiguous f32 values of a storage seen through `layout`.
pub(super) fn cpu_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = storage else {
        candle_core::bail!("{op}: only f32");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: input must be contiguous");
    };
    Ok(&v[start..end])
}

/// Channels (axis 1) and the size of each channel's plane (the axes after it) of an
/// `N x C x ...` shape; at least 1 each.
pub(super) fn channels_and_plane(dims: &[usize]) -> (usize, usize) {
    let c = dims.get(1).copied().unwrap_or(1).max(1);
    (c, dims.iter().skip(2).product::<usize>().max(1))
}

/// Runs `f` on the f32 values of a CPU tensor, in place when it is contiguous.
pub(super) fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("expected a CPU tensor");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("expected a contiguous tensor");
    };
    Ok(f(&cpu.as_slice::<f32>()?[start..end]))
}

/// ReLU of one value; NaN passes through, as in PyTorch.
#[inline(always)]
pub(super) fn relu_value(v: f32) -> f32 {
    if v > 0.0 || v.is_nan() {
        v
    } else {
        0.0
    }
}
