//! Thread-pool settings for binaries that train on the CPU.

/// Optional: call first thing in `main`, before any tensor work. The fused kernels need
/// no setup to run at full speed (they share candle's own CPU thread pool instead of
/// starting a second one); this only sets `RAYON_NUM_THREADS` to the number of available
/// cores when the user has not, because candle asks for the thread count on every
/// matmul, and without the variable that question parses `/proc/cpuinfo` each time
/// (candle 0.11 through `num_cpus::get_physical`): about 50 µs per call on a 2-vCPU
/// guest, more with more CPUs.
///
/// Returns the number of rayon threads.
pub fn configure_cpu_threads() -> usize {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    rayon::current_num_threads()
}
