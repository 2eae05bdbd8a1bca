//! Helpers shared by the benchmarks (each bench is its own crate; `mod common;` includes this).

/// A count from the environment (`N`, `STEPS`, ...), or `default` when unset or not a number.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
