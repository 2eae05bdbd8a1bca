//! Clearing the upper halves of the vector registers after faer's matrix products.
//!
//! Why: on x86-64, faer 0.24 multiplies through `private-gemm-x86`, whose kernels are generated
//! assembly that returns with the upper parts of the YMM / ZMM registers still written (no
//! `vzeroupper`, which the compiler inserts at the end of every Rust function that uses them).
//! Until something clears that state, each legacy-SSE instruction on the thread (all of
//! neuroscope's scalar `f64` code, compiled for baseline x86-64, and libm) pays for merging
//! with the dirty upper bits. On an Intel Xeon with AVX-512 the 553,000 Gaussian draws of a
//! randomized PCA took 199 ms after a product and 15 ms before one; AMD Zen processors have no
//! such penalty, Intel client cores a smaller one. `vzeroupper` changes no value anyone reads
//! (the compiler emits it at every AVX function's return for this reason), so clearing the
//! state after each product costs a few cycles and changes no result.

/// Clears the dirty upper vector state of the calling thread.
#[inline]
pub(crate) fn clear_upper_here() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: `vzeroupper` needs AVX (checked above); it zeroes bits 128 and up of the
        // vector registers, which hold no live value between Rust statements (the ABI treats
        // them as clobbered by any call), and touches no memory.
        unsafe { std::arch::x86_64::_mm256_zeroupper() };
    }
}

/// Clears the dirty upper vector state of the calling thread and of every thread of the
/// current rayon pool, where a parallel product ran its kernels.
pub(crate) fn clear_upper_everywhere() {
    clear_upper_here();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        rayon::broadcast(|_| clear_upper_here());
    }
}

/// Whether the upper halves of the YMM registers are in use on this thread (bit 2 of
/// `XGETBV(1)`, the XINUSE bitmap); `None` where the processor cannot say. For tests only: a
/// processor may report the state in use when it is not, so a test first checks that
/// [`clear_upper_here`] reads back as clear.
#[cfg(test)]
pub(crate) fn upper_state_in_use() -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__cpuid_count, _xgetbv};
        if !std::arch::is_x86_feature_detected!("xsave") {
            return None;
        }
        // CPUID.(EAX=0DH, ECX=1):EAX bit 2 says XGETBV takes ECX = 1.
        if __cpuid_count(0xd, 1).eax & 4 == 0 {
            return None;
        }
        #[target_feature(enable = "xsave")]
        fn xinuse() -> u64 {
            // SAFETY: the caller checked XSAVE and XGETBV's ECX = 1 form above.
            unsafe { _xgetbv(1) }
        }
        // SAFETY: the `xsave` feature is present (checked above).
        Some(unsafe { xinuse() } & 4 != 0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}
