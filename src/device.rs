//! Choosing where tensors live.
//!
//! A notebook should run unchanged on a laptop, a Mac and a GPU server, so [`best`] picks CUDA,
//! else Metal, else the CPU, and [`describe`] says in plain words which one it got. [`parse`]
//! takes the explicit choice a user writes (`"cpu"`, `"cuda"`, `"cuda:1"`, `"metal"`, `"auto"`).

use crate::{Error, Result};
pub use candle_core::Device;

/// The fastest device this build and machine offer: CUDA (GPU 0) if the crate was built with
/// the `cuda` feature and a GPU is present, else Metal (`metal` feature, Apple GPU), else CPU.
///
/// ```
/// let dev = neuroscope::device::best();
/// println!("running on {}", neuroscope::device::describe(&dev));
/// ```
pub fn best() -> Device {
    if candle_core::utils::cuda_is_available() {
        if let Ok(d) = Device::new_cuda(0) {
            return d;
        }
    }
    if candle_core::utils::metal_is_available() {
        if let Ok(d) = Device::new_metal(0) {
            return d;
        }
    }
    Device::Cpu
}

/// The device named by `name`: `auto` (same as [`best`]), `cpu`, `cuda`, `cuda:N`, `metal`,
/// `metal:N`. Asking for a device this build or machine lacks is an error that says which
/// feature to enable, never a silent fall-back to the CPU.
///
/// ```
/// let cpu = neuroscope::device::parse("cpu").unwrap();
/// assert!(cpu.is_cpu());
/// assert!(neuroscope::device::parse("tpu").is_err());
/// ```
pub fn parse(name: &str) -> Result<Device> {
    let lower = name.trim().to_ascii_lowercase();
    let (kind, ordinal) = match lower.split_once(':') {
        Some((k, n)) => {
            let n: usize = n.parse().map_err(|_| {
                Error::InvalidArgument(format!(
                    "device '{name}': the part after ':' must be a GPU number such as cuda:0"
                ))
            })?;
            (k.to_string(), n)
        }
        None => (lower.clone(), 0),
    };
    match kind.as_str() {
        "auto" => Ok(best()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::InvalidArgument(format!(
                    "device '{name}': this build has no CUDA support; rebuild with the `cuda` feature \
                     (neuroscope = {{ version = \"...\", features = [\"cuda\"] }}) on a machine with the CUDA toolkit"
                )));
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        "metal" | "mps" => {
            if !candle_core::utils::metal_is_available() {
                return Err(Error::InvalidArgument(format!(
                    "device '{name}': this build has no Metal support; rebuild with the `metal` feature on macOS"
                )));
            }
            Ok(Device::new_metal(ordinal)?)
        }
        _ => Err(Error::unknown(
            "device",
            name,
            ["auto", "cpu", "cuda", "cuda:N", "metal", "metal:N"],
        )),
    }
}

/// A human description of a device: `CPU (2 threads)`, `CUDA GPU 0`, `Metal GPU 0`.
///
/// ```
/// let s = neuroscope::device::describe(&neuroscope::device::Device::Cpu);
/// assert!(s.starts_with("CPU"));
/// ```
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => {
            let threads = rayon::current_num_threads();
            format!(
                "CPU ({threads} thread{})",
                if threads == 1 { "" } else { "s" }
            )
        }
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("CUDA GPU {gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("Metal GPU {gpu_id}"),
    }
}

/// The spin limit neuroscope gives candle's CPU element-wise pool unless the user set one.
pub const CANDLE_POOL_SPIN_LIMIT: u32 = 100;

/// Lowers how long candle's CPU worker threads spin between element-wise operations, unless
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` is already set; returns the limit now in the environment.
///
/// Why: candle runs element-wise operations on 64K+ values (the gradient sums of every backward
/// pass, for one) on its own thread pool, whose workers then spin for up to 25,000 pause
/// instructions waiting for the next operation. On a machine with few cores that spinning
/// worker holds a core that neuroscope's convolution and pooling kernels (on rayon's pool)
/// need: with the limit at [`CANDLE_POOL_SPIN_LIMIT`], one epoch of seed 3's training is
/// 10-13% faster on 2 cores (BENCHMARKS.md), and nothing measured got slower. Candle reads the
/// variable once, when its pool starts, so [`crate::models::load`], `Train::fit` and
/// `FeatVis::run` call this first; a program that runs its own large candle operations before
/// any of those can call it at the top of `main`. The numbers computed do not change, only the
/// waiting.
///
/// ```
/// let limit = neuroscope::device::tune_candle_cpu_pool();
/// assert_eq!(
///     std::env::var("CANDLE_BARRIER_POOL_SPIN_LIMIT").unwrap(),
///     limit.to_string()
/// );
/// ```
pub fn tune_candle_cpu_pool() -> u32 {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(VAR).is_none() {
            std::env::set_var(VAR, CANDLE_POOL_SPIN_LIMIT.to_string());
        }
    });
    std::env::var(VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000)
}
