//! Compiling the kernels with NVRTC and launching them: the GPU half of exact nearest
//! neighbours.

use crate::{Error, Result};
use candle_core::cuda_backend::cudarc::driver::{CudaFunction, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{cudarc, CudaDevice, WrapErr};
use candle_core::{Device, Storage, Tensor};
use ndarray::Array2;
use std::sync::OnceLock;

/// The kernels' source (CUDA C++ that also compiles as plain C++, see `emulation.rs`).
const SOURCE: &str = include_str!("kernels.cu");

const MODULE: &str = "neuroscope_analysis";
/// Threads per block of the per-point kernels.
pub(crate) const THREADS: u32 = 128;
/// Bytes of one block of the `N x B` product.
const KNN_BLOCK_BYTES: usize = 1 << 30;

/// The kernels as PTX, compiled once per process.
fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        cudarc::nvrtc::compile_ptx(SOURCE)
            .map(|p| p.to_src())
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| {
        Error::InvalidArgument(format!(
            "compiling neuroscope's CUDA kernels with NVRTC failed (is the CUDA toolkit's libnvrtc \
             on the library path?): {e}"
        ))
    })
}

/// One of the kernels, loaded on `dev`.
pub(crate) fn function(dev: &CudaDevice, name: &str) -> Result<CudaFunction> {
    Ok(dev
        .get_or_load_custom_func(name, MODULE, ptx()?)?
        .into_cuda_function())
}

/// One thread per item, `THREADS` per block.
pub(crate) fn grid(items: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((items as u32).div_ceil(THREADS).max(1), 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The GPU half of exact nearest neighbours: for every row of `x` (`n x dim`), the `kk`
/// rows with the smallest float distances (itself excluded), found from float products in
/// cuBLAS and a selection kernel; returns the candidates' indices and their approximate
/// squared distances, `n x kk` each, row-major. The CPU proves and refines them
/// (`analysis::neighbors`).
pub(crate) fn knn_candidates(
    dev: &CudaDevice,
    x: &Array2<f64>,
    kk: usize,
) -> Result<(Vec<i32>, Vec<f32>)> {
    let (n, dim) = x.dim();
    if n >= i32::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "nearest neighbours on the GPU handle fewer than 2^31 points, got {n}: use the CPU"
        )));
    }
    let device = Device::Cuda(dev.clone());
    let xs = x.as_standard_layout();
    let xf: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
    let norms: Vec<f32> = xs.rows().into_iter().map(|r| r.dot(&r) as f32).collect();
    let xt = Tensor::from_vec(xf, (n, dim), &device)?;
    let stream = dev.cuda_stream();
    let d_norms = stream.clone_htod(&norms).w()?;
    let select = function(dev, "knn_select")?;
    let b = (KNN_BLOCK_BYTES / (4 * n)).clamp(1, n);
    let mut cand = Vec::with_capacity(n * kk);
    let mut approx = Vec::with_capacity(n * kk);
    for start in (0..n).step_by(b) {
        let bb = b.min(n - start);
        let m = xt.matmul(&xt.narrow(0, start, bb)?.t()?)?.contiguous()?;
        let (storage, layout) = m.storage_and_layout();
        let Storage::Cuda(cs) = &*storage else {
            return Err(Error::InvalidArgument(
                "internal: the GPU product is not on the GPU".into(),
            ));
        };
        if layout.start_offset() != 0 || layout.dims() != [n, bb] {
            return Err(Error::InvalidArgument(
                "internal: unexpected layout of the GPU product".into(),
            ));
        }
        let ms = cs.as_cuda_slice::<f32>()?;
        let mut best_d = stream.alloc_zeros::<f32>(bb * kk).w()?;
        let mut best_i = stream.alloc_zeros::<i32>(bb * kk).w()?;
        let (n32, b32, s32, kk32) = (n as i32, bb as i32, start as i32, kk as i32);
        // SAFETY: `knn_select(products, norms, n, b, start, kk, best_d, best_i)` reads the
        // `n x bb` product (`ms`, contiguous from offset 0, checked above) and `n` norms, and
        // writes `bb * kk` distances and indices into buffers allocated with exactly that
        // length; each thread handles one of the `bb` columns and returns when its index is
        // `>= bb`. The argument types match the kernel's signature in `kernels.cu`.
        unsafe {
            stream
                .launch_builder(&select)
                .arg(ms)
                .arg(&d_norms)
                .arg(&n32)
                .arg(&b32)
                .arg(&s32)
                .arg(&kk32)
                .arg(&mut best_d)
                .arg(&mut best_i)
                .launch(grid(bb))
                .w()?;
        }
        approx.extend(stream.clone_dtoh(&best_d).w()?);
        cand.extend(stream.clone_dtoh(&best_i).w()?);
    }
    Ok((cand, approx))
}

/// Whether cuBLAS may compute float products in TF32 (candle told to, or, conservatively, the
/// environment may let cuBLAS choose): the candidates' distances are then less exact.
pub(crate) fn tf32_products() -> bool {
    candle_core::cuda_backend::gemm_reduced_precision_f32()
        || std::env::var("NVIDIA_TF32_OVERRIDE").is_ok_and(|v| v != "0")
}

#[cfg(test)]
mod tests {
    /// NVRTC needs no GPU: the kernels compile wherever the CUDA toolkit's libnvrtc is found
    /// (a `cuda` build here, with bench/cuda/cuda-env.sh, and on the GPU machine).
    #[test]
    fn kernels_compile_with_nvrtc() {
        let ptx = super::ptx().unwrap();
        for name in [
            "tsne_repulsion",
            "tsne_partial_sums",
            "tsne_final_sum",
            "tsne_step",
            "knn_select",
        ] {
            assert!(
                ptx.contains(&format!(".entry {name}(")),
                "{name} missing from the PTX"
            );
        }
    }
}
