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
            Device::new_cuda(ordinal).map_err(|e| {
                // candle's message can carry a backtrace: keep its first line
                let why = e.to_string();
                Error::InvalidArgument(format!(
                    "device '{name}': CUDA GPU {ordinal} could not be opened ({}); check \
                     `nvidia-smi`, or use the CPU",
                    why.lines().next().unwrap_or("no reason given")
                ))
            })
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
///
/// ```
/// assert_eq!(neuroscope::device::CANDLE_POOL_SPIN_LIMIT, 100);
/// ```
pub const CANDLE_POOL_SPIN_LIMIT: u32 = 100;

/// How candle's CPU element-wise pool is set up, as [`tune_candle_cpu_pool`] left the
/// environment (`CANDLE_NUM_THREADS`, `CANDLE_BARRIER_POOL_SPIN_LIMIT`).
///
/// ```
/// let pool = neuroscope::device::tune_candle_cpu_pool();
/// println!("{pool:?}");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CandlePool {
    /// Threads for candle's element-wise operations, the caller's included; `None`: candle's
    /// default (`RAYON_NUM_THREADS`, else the physical cores).
    pub threads: Option<usize>,
    /// Pause instructions a worker spins before it sleeps (candle's default 25,000).
    pub spin_limit: u32,
}

/// Sets up candle's CPU element-wise pool for neuroscope's workloads, unless the user chose
/// (`CANDLE_NUM_THREADS`, `CANDLE_BARRIER_POOL_SPIN_LIMIT`): on machines where neuroscope's own
/// kernels run on at most 2 threads, candle's element-wise operations run on the calling
/// thread; elsewhere its workers spin at most [`CANDLE_POOL_SPIN_LIMIT`] pauses before they
/// sleep. Returns what is now set.
///
/// Why: candle runs element-wise operations on 64K+ values (the gradient sums of every
/// backward pass, for one) on its own thread pool, whose workers then spin for up to 25,000
/// pause instructions waiting for the next operation, on a core that neuroscope's convolution
/// and pooling kernels (on rayon's pool) need; a sleeping worker instead costs a wake-up per
/// operation, which is most of the time of an operation this size. On 2 cores, against candle's
/// defaults (medians of side-by-side runs, BENCHMARKS.md): one epoch of seed 3's training from
/// 1.03x to 0.90x PyTorch's time, a ResNet-50 feature-visualisation step from 1.18x to 0.75x
/// PyTorch's forward stopped at the layer. With more cores the parallel element-wise
/// operations are kept (with the short spin), as large batches need them. Candle reads these
/// variables once, when its pool starts, so [`crate::models::load`], `Train::fit`,
/// `FeatVis::run` and every forward pass (`models::Ctx::new`) call this first; a program that
/// runs its own large candle operations before any of those can call it at the top of `main`.
/// The numbers computed do not change.
///
/// It sets these process environment variables once, before the first candle operation that
/// neuroscope runs; a value already there is the user's choice and stays.
///
/// ```
/// let user_chose = std::env::var_os("CANDLE_NUM_THREADS").is_some();
/// let pool = neuroscope::device::tune_candle_cpu_pool();
/// if !user_chose && rayon::current_num_threads() <= 2 {
///     assert_eq!(pool.threads, Some(1)); // candle's element-wise ops on the calling thread
/// }
/// // What candle reads when its pool starts:
/// assert_eq!(
///     std::env::var("CANDLE_BARRIER_POOL_SPIN_LIMIT").unwrap(),
///     pool.spin_limit.to_string()
/// );
/// ```
pub fn tune_candle_cpu_pool() -> CandlePool {
    const THREADS: &str = "CANDLE_NUM_THREADS";
    const SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(THREADS).is_none() && rayon::current_num_threads() <= 2 {
            std::env::set_var(THREADS, "1");
        }
        if std::env::var_os(SPIN).is_none() {
            std::env::set_var(SPIN, CANDLE_POOL_SPIN_LIMIT.to_string());
        }
    });
    let read = |k: &str| std::env::var(k).ok();
    CandlePool {
        threads: read(THREADS)
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0),
        spin_limit: read(SPIN).and_then(|v| v.parse().ok()).unwrap_or(25_000),
    }
}
