//! `lstm-bench peak [--threads N]`: the cores' f32 FMA peak, the physical ceiling the
//! scenario and scaling tables measure their GFLOP/s against besides PyTorch's 2048³
//! `torch.matmul`.
//!
//! MKL's SGEMM is not the limit on every CPU: on the AMD Zen 5 of `docs/benchmarks.md` it
//! ran at 225 GFLOP/s on 2 cores while both PyTorch's oneDNN LSTM and ours ran faster, and
//! these cores issue two 512-bit FMAs a cycle (about 530 GFLOP/s). Each of `N` threads
//! (2 by default, the benchmarks' count) runs 12 independent chains of vector FMAs (enough
//! to cover a 4-cycle latency on two pipes) in registers, with the widest instructions the
//! build may use: AVX-512 when lstm-core's `avx512` feature is on and the CPU has it, else
//! AVX2 + FMA, so `cargo xtask bench --isa avx2` measures the AVX2 peak.

use std::time::Instant;

use anyhow::{bail, Result};

/// The FMA peak of `threads` threads and the instruction set that reached it.
pub struct Peak {
    pub gflops: f64,
    pub isa: &'static str,
}

/// Vector FMAs per chain and thread in one timed round.
const ROUND: u64 = 60_000_000;

/// Measures the peak: 5 rounds of every thread running [`ROUND`] FMAs on each of its
/// chains at once; the fastest round counts.
pub fn fma_peak(threads: usize) -> Result<Peak> {
    if threads == 0 {
        bail!("peak: --threads must be positive");
    }
    let Some((lanes, isa, chains)) = widest() else {
        bail!("peak: this CPU has neither AVX-512 nor AVX2 + FMA");
    };
    let mut best = 0f64;
    for _ in 0..5 {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| s.spawn(move || chains(ROUND)))
                .collect();
            for h in handles {
                // The result keeps the loop from being optimised away.
                std::hint::black_box(h.join().expect("an FMA thread panicked"));
            }
        });
        let flop = 2.0 * lanes as f64 * CHAINS as f64 * ROUND as f64 * threads as f64;
        best = best.max(flop / t0.elapsed().as_secs_f64() / 1e9);
    }
    Ok(Peak { gflops: best, isa })
}

/// Independent FMA chains per thread.
const CHAINS: usize = 12;

/// `n` rounds of one FMA on each of [`CHAINS`] vector accumulators; the sum of their lanes.
type Chains = fn(u64) -> f32;

/// Lanes, name and chain function of the widest usable instruction set.
fn widest() -> Option<(usize, &'static str, Chains)> {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512") && is_x86_feature_detected!("avx512f") {
            return Some((16, "avx512", |n| unsafe { x86::chains_512(n) }));
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Some((8, "avx2", |n| unsafe { x86::chains_256(n) }));
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// `n` rounds of one FMA on each of [`CHAINS`] 512-bit accumulators.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn chains_512(n: u64) -> f32 {
        let (b, c) = (_mm512_set1_ps(black_box(0.999_99)), _mm512_set1_ps(1e-5));
        let mut acc = [_mm512_set1_ps(black_box(1.0)); CHAINS];
        for _ in 0..n {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, b, c);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a));
        _mm512_reduce_add_ps(sum)
    }

    /// As [`chains_512`] with 256-bit accumulators.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn chains_256(n: u64) -> f32 {
        let (b, c) = (_mm256_set1_ps(black_box(0.999_99)), _mm256_set1_ps(1e-5));
        let mut acc = [_mm256_set1_ps(black_box(1.0)); CHAINS];
        for _ in 0..n {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, b, c);
            }
        }
        let mut lanes = [0f32; 8];
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
        lanes.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chains_compute_what_they_are_given() {
        // a ← 0.99999·a + 1e-5 stays at its fixed point 1 (the factors come through
        // black_box, so that the compiler cannot see that): the lanes of the 12 chains
        // sum to 12·lanes.
        let Some((lanes, _, chains)) = widest() else {
            return; // no vector FMAs here: nothing to measure
        };
        let sum = chains(1000);
        let want = (CHAINS * lanes) as f32;
        assert!((sum - want).abs() < 1e-3 * want, "{sum} vs {want}");
        assert!(fma_peak(0).is_err());
    }
}
