//! candle's CPU element-wise thread pool, set up once per process before neuroscope's first
//! candle operation (see `device::candle_pool` for why and what).

/// Pause instructions candle's element-wise workers spin before they sleep (candle: 25,000).
pub(crate) const SPIN_LIMIT: u32 = 100;

/// Sets `CANDLE_NUM_THREADS` (1 where rayon has at most 2 threads) and
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` unless the user set them; the first call only.
///
/// `std::env::set_var` is safe in this edition but races with other threads reading the
/// environment: the `Once` makes it happen once, before the first candle operation that
/// neuroscope runs (model loading, training, feature visualisation and forward passes call
/// this first); later calls cost an atomic load.
pub(crate) fn set_up_candle_pool() {
    const THREADS: &str = "CANDLE_NUM_THREADS";
    const SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(THREADS).is_none() && rayon::current_num_threads() <= 2 {
            std::env::set_var(THREADS, "1");
        }
        if std::env::var_os(SPIN).is_none() {
            std::env::set_var(SPIN, SPIN_LIMIT.to_string());
        }
    });
}
