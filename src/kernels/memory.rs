//! What the process's allocator does with the large blocks a network pass frees.
//!
//! Why: glibc's `malloc` serves every block above its mmap threshold (at most 32 MB) with a
//! fresh `mmap` and gives it back with `munmap` when it is freed. A network pass allocates and
//! frees such blocks by the hundred (activations, im2col columns, gradients: ResNet-50's
//! `layer1` output alone is 51 MB at batch 16), and each comes back as new pages the kernel
//! must fault in, zero and later unmap with a TLB shoot-down. `perf` put 30 % of integrated
//! gradients on ResNet-50 in the kernel, most of it there. Told to serve large blocks from its
//! heap and never to trim it (`mallopt(M_MMAP_MAX, 0)`, `mallopt(M_TRIM_THRESHOLD, -1)`), glibc
//! reuses the freed pages instead: on the 2-core Zen 4 machine of BENCHMARKS.md, integrated
//! gradients on ResNet-50 12.1 s -> 7.1 s, ViT-B/16 recording 23.2 s -> 18.0 s, ConvNeXt-T
//! 12.4 s -> 8.4 s, ResNet-50 4.6 s -> 3.9 s. PyTorch's oneDNN primitives keep their scratch
//! buffers the same way.
//!
//! Which blocks: every block of the main thread's heap, where a program, a notebook cell
//! (evcxr runs cells on its child process's main thread) and the command line run networks;
//! blocks under 64 MB of the other threads' heaps (glibc maps larger ones there whatever it is
//! told).
//!
//! The price: the process keeps the peak of its heap until [`release_freed_memory`] (or the
//! process's end) hands the free pages back, so `device::check_memory` releases them before it
//! refuses work. Numbers do not change: where a block lives has no effect on the arithmetic.
//!
//! Only glibc (Linux's usual C library) is told; elsewhere both functions do nothing. The user
//! keeps the last word: `NEUROSCOPE_KEEP_FREED_MEMORY=0`, or their own glibc malloc tunables
//! (`GLIBC_TUNABLES` with `glibc.malloc.`, `MALLOC_MMAP_MAX_`, `MALLOC_TRIM_THRESHOLD_`), leave
//! the allocator as it is.

/// Why the allocator was left as it is, or `None` when it keeps freed memory.
static DECISION: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();

/// Tells glibc to keep the blocks a network pass frees for the next ones (see the module's
/// documentation); the first call decides, once per process. `None` when freed memory is kept,
/// else why not.
pub(crate) fn keep_freed_memory() -> Option<&'static str> {
    *DECISION.get_or_init(decide)
}

fn decide() -> Option<&'static str> {
    let env = |k: &str| std::env::var(k).ok();
    if env("NEUROSCOPE_KEEP_FREED_MEMORY").is_some_and(|v| v.trim() == "0") {
        return Some("NEUROSCOPE_KEEP_FREED_MEMORY=0");
    }
    if env("GLIBC_TUNABLES").is_some_and(|v| v.contains("glibc.malloc."))
        || env("MALLOC_MMAP_MAX_").is_some()
        || env("MALLOC_TRIM_THRESHOLD_").is_some()
    {
        return Some("the user's own glibc malloc settings");
    }
    glibc::keep()
}

/// Hands the free pages of the heap back to the operating system (glibc's `malloc_trim(0)`);
/// `true` when some were. The next large blocks are then faulted in afresh.
pub(crate) fn release_freed_memory() -> bool {
    glibc::release()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::os::raw::c_int;

    /// glibc's `mallopt` parameters (`malloc.h`).
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_MAX: c_int = -4;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
    }

    pub(super) fn keep() -> Option<&'static str> {
        // SAFETY: `mallopt` takes the arena locks itself and only changes the parameters of
        // later allocations; blocks already mapped stay valid and are unmapped on free as
        // before. -1 for M_TRIM_THRESHOLD is glibc's documented "never trim", 0 for M_MMAP_MAX
        // "never mmap a block" (when the heap cannot grow, glibc still falls back to mmap).
        let ok = unsafe { mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, -1) == 1 };
        if ok {
            None
        } else {
            Some("glibc refused the settings")
        }
    }

    pub(super) fn release() -> bool {
        // SAFETY: `malloc_trim` takes the arena locks and only returns free pages; no block in
        // use is touched.
        unsafe { malloc_trim(0) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub(super) fn keep() -> Option<&'static str> {
        Some("not glibc: the C library's allocator is left as it is")
    }

    pub(super) fn release() -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// Minor page faults of the calling thread so far (`/proc/thread-self/stat`, field 10).
    fn minor_faults() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        rest.split_whitespace()
            .nth(7)
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    }

    /// A freed 40 MB block (above glibc's largest mmap threshold, 32 MB: by default each one
    /// is mapped afresh and every page faults) comes back without the kernel faulting its
    /// pages in again, and `release_freed_memory` hands free pages back. The test runs on a
    /// test harness's thread, whose heap holds blocks under 64 MB; the main thread's holds
    /// any size.
    #[test]
    fn a_freed_large_block_is_reused_without_page_faults() {
        if std::env::var_os("NEUROSCOPE_KEEP_FREED_MEMORY").is_some()
            || std::env::var_os("GLIBC_TUNABLES").is_some()
        {
            return; // the user's choice decides; nothing of ours to test
        }
        assert_eq!(super::keep_freed_memory(), None);
        let len = 10 << 20; // floats: 40 MB, 10,240 pages of 4 KB
        let touch = || {
            let v = vec![1f32; len];
            std::hint::black_box(v.iter().step_by(1024).sum::<f32>())
        };
        touch();
        // Another test's allocation may take the freed block in between: the best of three.
        let fewest = (0..3)
            .map(|_| {
                let before = minor_faults();
                touch();
                minor_faults().saturating_sub(before)
            })
            .min()
            .unwrap_or(u64::MAX);
        assert!(fewest < 1_000, "{fewest} page faults re-allocating 40 MB");
        assert!(super::release_freed_memory(), "nothing was released");
    }
}
