//! Thread-pool settings for binaries that train on the CPU.

/// Call first thing in `main`, before any tensor work, in a binary that trains with this
/// crate on the CPU. It sets two environment variables when the user has not:
///
/// - `RAYON_NUM_THREADS` to the number of available cores. candle asks for the thread
///   count on every matmul, and without the variable that question reads the cgroup files
///   under `/sys` each time.
/// - `CANDLE_NUM_THREADS=1`, which keeps candle's own spinning element-wise pool off. The
///   heavy work here (GEMMs, the fused LSTM kernels) runs on rayon's pool; on a machine
///   with few cores the two pools otherwise fight for them, and the cell loop's backward
///   pass ran 3× slower (measured on 2 cores).
///
/// Returns the number of rayon threads.
pub fn configure_cpu_threads() -> usize {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    rayon::current_num_threads()
}
