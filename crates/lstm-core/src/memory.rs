//! Keeping freed memory for the next training step.
//!
//! Every training step allocates the same few large buffers again: the op's `(B, T, D·H)`
//! output, the zeros and the concatenation candle's autograd builds for the gradient of
//! `out[:, -1]`, the saved activations. glibc's `malloc` gives memory freed at the top of
//! its heap back to the operating system once more than `M_TRIM_THRESHOLD` is free, and
//! serves allocations above `M_MMAP_THRESHOLD` with fresh mappings, so every step faults
//! its buffers in again and clears them page by page. Measured on the MNIST shape
//! (`lstm-bench scenario lstm-train-forward`, 2-core AMD EPYC): 11.8% of the cycles of a
//! `forward()` training step went to the kernel, against 1.1% for `forward_final()`,
//! which allocates less.
//!
//! [`keep_freed_memory`] raises both thresholds once, the first time a model runs: freed
//! buffers stay in the heap (up to [`TRIM_THRESHOLD`] of free memory at its top) and are
//! handed out again. A program that set `MALLOC_TRIM_THRESHOLD_` or
//! `MALLOC_MMAP_THRESHOLD_` itself keeps its settings; `LSTM_CORE_KEEP_MEMORY=0` turns
//! this off. Only glibc on Linux is concerned; elsewhere it does nothing.

use std::sync::OnceLock;

/// Free memory at the top of the heap kept instead of returned to the system.
pub const TRIM_THRESHOLD: usize = 256 << 20;
/// Allocations from this size up get their own mapping (32 MiB, the largest that
/// glibc's dynamic threshold ever reaches on 64-bit systems).
pub const MMAP_THRESHOLD: usize = 32 << 20;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::os::raw::c_int;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;

    /// Sets both thresholds; whether glibc took both.
    pub(super) fn set(trim: usize, mmap: usize) -> bool {
        let (Ok(trim), Ok(mmap)) = (c_int::try_from(trim), c_int::try_from(mmap)) else {
            return false;
        };
        // SAFETY: `mallopt` only changes the allocator's parameters; glibc documents it
        // as callable at any time, from any thread.
        unsafe { mallopt(M_TRIM_THRESHOLD, trim) == 1 && mallopt(M_MMAP_THRESHOLD, mmap) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    /// No glibc: nothing to set.
    pub(super) fn set(_trim: usize, _mmap: usize) -> bool {
        false
    }
}

/// Whether the thresholds should be left as they are: turned off, or set by the user.
fn left_alone(var: impl Fn(&str) -> Option<String>) -> bool {
    var("LSTM_CORE_KEEP_MEMORY").is_some_and(|v| v == "0")
        || var("MALLOC_TRIM_THRESHOLD_").is_some()
        || var("MALLOC_MMAP_THRESHOLD_").is_some()
}

/// Raises glibc's trim and mmap thresholds once per process (see the [module](self)
/// docs); returns whether they are raised. Called by the models; safe to call again.
pub fn keep_freed_memory() -> bool {
    static DONE: OnceLock<bool> = OnceLock::new();
    *DONE.get_or_init(|| {
        !left_alone(|name| std::env::var(name).ok()) && glibc::set(TRIM_THRESHOLD, MMAP_THRESHOLD)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_own_settings_and_the_switch_are_respected() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(!left_alone(env(&[])));
        assert!(!left_alone(env(&[("LSTM_CORE_KEEP_MEMORY", "1")])));
        assert!(left_alone(env(&[("LSTM_CORE_KEEP_MEMORY", "0")])));
        assert!(left_alone(env(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
        assert!(left_alone(env(&[("MALLOC_MMAP_THRESHOLD_", "65536")])));
    }

    #[test]
    fn glibc_takes_the_thresholds_once() {
        let first = keep_freed_memory();
        assert_eq!(keep_freed_memory(), first, "the answer does not change");
        if cfg!(all(target_os = "linux", target_env = "gnu"))
            && std::env::var_os("LSTM_CORE_KEEP_MEMORY").is_none()
            && std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none()
            && std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none()
        {
            assert!(first, "glibc refused the thresholds");
        }
        // Thresholds that do not fit glibc's `int` are refused, not wrapped.
        assert!(!glibc::set(usize::MAX, MMAP_THRESHOLD));
        assert!(glibc::set(TRIM_THRESHOLD, MMAP_THRESHOLD) || !cfg!(target_env = "gnu"));
    }
}
