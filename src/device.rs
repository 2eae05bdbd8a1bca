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

/// The processor this process runs on, as a notebook prints it in its first cell so that its
/// committed outputs say where they were made: model, vendor, the instruction sets the kernels
/// may use, the L1 data cache that matrix-product libraries size their blocks by, and the
/// thread count.
///
/// Why: the same seed gives the same bytes on every x86-64 CPU with AVX2 and FMA (README,
/// "Reproducibility"), but not across architectures (x86-64 and aarch64 round some library
/// functions differently), so a figure's provenance is part of the figure.
///
/// ```
/// let host = neuroscope::device::host();
/// println!("{host}");   // e.g. "AMD EPYC (AuthenticAMD; x86-64 AVX2 FMA AVX-512F; L1d 32 KB 8-way; 2 threads)"
/// assert!(host.threads >= 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The model name (`/proc/cpuinfo`'s "model name"; "unknown" where it cannot be read).
    pub model: String,
    /// The vendor (`GenuineIntel`, `AuthenticAMD`, ...; "unknown" where it cannot be read).
    pub vendor: String,
    /// The architecture and the instruction sets that matter here (`x86-64 AVX2 FMA AVX-512F`).
    pub isa: String,
    /// The L1 data cache as the kernel reports it (`32 KB 8-way`), if it does.
    pub l1d: Option<String>,
    /// Threads neuroscope's parallel kernels use.
    pub threads: usize,
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}; {}", self.model, self.vendor, self.isa)?;
        if let Some(l1) = &self.l1d {
            write!(f, "; L1d {l1}")?;
        }
        write!(
            f,
            "; {} thread{})",
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        )
    }
}

/// Describes the processor this process runs on (see [`Host`]).
///
/// ```
/// let host = neuroscope::device::host();
/// assert!(!host.isa.is_empty());
/// ```
pub fn host() -> Host {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let model = field("model name").unwrap_or_else(|| "unknown model".into());
    let vendor = field("vendor_id").unwrap_or_else(|| "unknown vendor".into());
    let sys = |f: &str| {
        std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu0/cache/index0/{f}"))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let l1d = match (
        sys("type").as_deref(),
        sys("size"),
        sys("ways_of_associativity"),
    ) {
        (Some("Data"), Some(size), Some(ways)) => {
            Some(format!("{} {ways}-way", size.replace('K', " KB")))
        }
        _ => None,
    };
    Host {
        model,
        vendor,
        isa: isa(),
        l1d,
        threads: rayon::current_num_threads(),
    }
}

#[cfg(target_arch = "x86_64")]
fn isa() -> String {
    let mut s = String::from("x86-64");
    for (on, name) in [
        (std::arch::is_x86_feature_detected!("avx2"), "AVX2"),
        (std::arch::is_x86_feature_detected!("fma"), "FMA"),
        (std::arch::is_x86_feature_detected!("avx512f"), "AVX-512F"),
    ] {
        if on {
            s.push(' ');
            s.push_str(name);
        }
    }
    s
}

#[cfg(not(target_arch = "x86_64"))]
fn isa() -> String {
    std::env::consts::ARCH.to_string()
}

/// Bytes of memory this process can still take: the smallest of the system's available memory
/// (`MemAvailable`), the room left under its cgroup's limit (`memory.max`), and the room left
/// under its address-space limit (`ulimit -v`). `None` where none of these can be read
/// (not Linux).
///
/// Why: a recording or an image that does not fit must be refused with an estimate before any
/// work starts, not discovered when the machine runs out of memory after minutes.
///
/// ```
/// if let Some(bytes) = neuroscope::device::available_memory() {
///     assert!(bytes > 0);
/// }
/// ```
pub fn available_memory() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let mut best: Option<u64> = None;
    let mut take = |v: u64| best = Some(best.map_or(v, |b| b.min(v)));
    if let Some(info) = read("/proc/meminfo") {
        if let Some(kb) = info
            .lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
        {
            take(kb * 1024);
        }
    }
    let num = |s: Option<String>| s.and_then(|v| v.trim().parse::<u64>().ok());
    if let (Some(max), Some(cur)) = (
        num(read("/sys/fs/cgroup/memory.max")),
        num(read("/sys/fs/cgroup/memory.current")),
    ) {
        take(max.saturating_sub(cur));
    }
    if let Some(limits) = read("/proc/self/limits") {
        let soft = limits
            .lines()
            .find(|l| l.starts_with("Max address space"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(limit) = soft {
            let used = read("/proc/self/status")
                .and_then(|st| {
                    st.lines()
                        .find(|l| l.starts_with("VmSize:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<u64>().ok())
                })
                .unwrap_or(0)
                * 1024;
            take(limit.saturating_sub(used));
        }
    }
    best
}

/// Refuses work that would need `bytes` when less memory is available (see
/// [`available_memory`]), with `what`, the estimate and `instead` (what to do) in the message.
/// Half of what is available is the most it lets one buffer take: the computation needs room
/// beside it.
///
/// ```
/// use neuroscope::device::check_memory;
/// assert!(check_memory(1024, "a small buffer", "").is_ok());
/// let err = check_memory(u64::MAX / 2, "recording everything", "record fewer layers").unwrap_err();
/// assert!(err.to_string().contains("record fewer layers"));
/// ```
pub fn check_memory(bytes: u64, what: &str, instead: &str) -> Result<()> {
    let mut limit = available_memory().map(|a| a / 2).unwrap_or(u64::MAX / 4);
    if bytes > limit && release_memory() {
        // The heap the earlier network passes kept (see `freed_memory`) counts as free.
        limit = available_memory().map(|a| a / 2).unwrap_or(limit);
    }
    if bytes > limit {
        let gb = |b: u64| b as f64 / (1u64 << 30) as f64;
        return Err(Error::InvalidArgument(format!(
            "{what} would need about {:.2} GB of memory; {:.2} GB is the most this machine can give \
             it (half of what is available now){}{instead}",
            gb(bytes),
            gb(limit),
            if instead.is_empty() { "" } else { ". Instead: " }
        )));
    }
    Ok(())
}

/// The spin limit neuroscope gives candle's CPU element-wise pool unless the user set one.
///
/// ```
/// assert_eq!(neuroscope::device::CANDLE_POOL_SPIN_LIMIT, 100);
/// ```
pub const CANDLE_POOL_SPIN_LIMIT: u32 = crate::kernels::threads::SPIN_LIMIT;

/// How candle's CPU element-wise pool is set up, as [`candle_pool`] reports it from the
/// environment (`CANDLE_NUM_THREADS`, `CANDLE_BARRIER_POOL_SPIN_LIMIT`).
///
/// ```
/// let pool = neuroscope::device::candle_pool();
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

/// How candle's CPU element-wise pool is set up for neuroscope's workloads, setting it up
/// first if nothing has yet (see below); a value the user set (`CANDLE_NUM_THREADS`,
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT`) stays.
///
/// Unless the user chose, on machines where neuroscope's own kernels run on at most 2 threads
/// candle's element-wise operations run on the calling thread; elsewhere its workers spin at
/// most [`CANDLE_POOL_SPIN_LIMIT`] pauses before they sleep.
///
/// Why: candle runs element-wise operations on 64K+ values (the gradient sums of every
/// backward pass, for one) on its own thread pool, whose workers then spin for up to 25,000
/// pause instructions waiting for the next operation, on a core that neuroscope's convolution
/// and pooling kernels (on rayon's pool) need; a sleeping worker instead costs a wake-up per
/// operation, which is most of the time of an operation this size. On 2 cores, against candle's
/// defaults (medians of side-by-side runs, BENCHMARKS.md): one epoch of workflow 3's training from
/// 1.03x to 0.90x PyTorch's time, a ResNet-50 feature-visualisation step from 1.18x to 0.75x
/// PyTorch's forward stopped at the layer. Candle reads these variables once, when its pool
/// starts, so loading a model, training, feature visualisation and forward passes set them up
/// (once per process) before their first candle operation; a program that runs its own large
/// candle operations before any of those can call this at the top of `main`. The numbers
/// computed do not change.
///
/// ```
/// let user_chose = std::env::var_os("CANDLE_NUM_THREADS").is_some();
/// let pool = neuroscope::device::candle_pool();
/// if !user_chose && rayon::current_num_threads() <= 2 {
///     assert_eq!(pool.threads, Some(1)); // candle's element-wise ops on the calling thread
/// }
/// // What candle reads when its pool starts:
/// assert_eq!(
///     std::env::var("CANDLE_BARRIER_POOL_SPIN_LIMIT").unwrap(),
///     pool.spin_limit.to_string()
/// );
/// ```
pub fn candle_pool() -> CandlePool {
    crate::kernels::threads::set_up_candle_pool();
    let read = |k: &str| std::env::var(k).ok();
    CandlePool {
        threads: read("CANDLE_NUM_THREADS")
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0),
        spin_limit: read("CANDLE_BARRIER_POOL_SPIN_LIMIT")
            .and_then(|v| v.parse().ok())
            .unwrap_or(25_000),
    }
}

/// What the process's allocator does with the large blocks that network passes free, as
/// [`freed_memory`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreedMemory {
    /// Kept in the heap for the next blocks, until [`release_memory`] or the process's end.
    Kept,
    /// The allocator was left as it is; why.
    LeftAsIs(&'static str),
}

/// Whether the process keeps the large blocks that network passes free, deciding it first if
/// nothing has yet (loading a model, a forward pass, training, feature visualisation and the
/// analyses that widen their input to double precision decide it, once per process).
///
/// Why: glibc gives every block above 32 MB back to the operating system when it is freed, and
/// a network pass frees such blocks by the hundred (activations, im2col columns, gradients);
/// each new one then costs page faults and zeroing in the kernel, 30 % of the time of
/// integrated gradients on ResNet-50. Keeping them made integrated gradients on ResNet-50 1.7x
/// and ViT-B/16 recording 1.3x faster on a 2-core Zen 4 machine (BENCHMARKS.md), with the same
/// numbers bit for bit. The price: the process holds the peak of its heap until
/// [`release_memory`]; [`check_memory`] releases it before it refuses work.
///
/// On Linux with glibc, unless `NEUROSCOPE_KEEP_FREED_MEMORY=0` or the user's own glibc malloc
/// tunables (`GLIBC_TUNABLES` with `glibc.malloc.`, `MALLOC_MMAP_MAX_`,
/// `MALLOC_TRIM_THRESHOLD_`) are set; elsewhere the allocator is left as it is.
///
/// ```
/// use neuroscope::device::{freed_memory, FreedMemory};
/// match freed_memory() {
///     FreedMemory::Kept => println!("freed blocks are reused; release_memory() returns them"),
///     FreedMemory::LeftAsIs(why) => println!("allocator untouched: {why}"),
/// }
/// ```
pub fn freed_memory() -> FreedMemory {
    match crate::kernels::keep_freed_memory() {
        None => FreedMemory::Kept,
        Some(why) => FreedMemory::LeftAsIs(why),
    }
}

/// Hands the free pages that the process's heap keeps back to the operating system (glibc's
/// `malloc_trim(0)`); `true` when some were. Call it after a large computation when the
/// notebook or program goes on with other work; the next network pass faults its blocks in
/// afresh, once.
///
/// ```
/// let returned = neuroscope::device::release_memory();
/// println!("pages returned to the system: {returned}");
/// ```
pub fn release_memory() -> bool {
    crate::kernels::release_freed_memory()
}
