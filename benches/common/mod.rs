//! Helpers shared by the benchmarks (each bench is its own crate; `mod common;` includes this).

/// A count from the environment (`N`, `STEPS`, ...), or `default` when unset or not a number.
#[allow(dead_code)] // not every bench reads one
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The best (smallest) wall time of `repeats` runs of `f`, and the last run's result.
#[allow(dead_code)] // not every bench times this way
pub fn best<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = None;
    let mut b = f64::INFINITY;
    for _ in 0..repeats {
        let t0 = std::time::Instant::now();
        let r = f();
        b = b.min(t0.elapsed().as_secs_f64());
        out = Some(r);
    }
    (b, out.expect("repeats >= 1"))
}
