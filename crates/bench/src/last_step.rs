//! `lstm-bench last-step B T H`: what candle's backward of `out.i((.., T - 1, ..))` costs on
//! its own, the part of a `forward()` training step that a `forward_final()` step does not
//! have.
//!
//! Both sides run the same head (Linear(H → 10), summed) and its backward; one reads the
//! last step of a `(B, T, H)` variable, the other a `(B, H)` variable. candle's backward
//! of the narrow builds a zero `(B, T - 1, H)` pad, concatenates the gradient to it, and
//! adds the result to a zeroed `(B, T, H)` gradient: the difference of the two times.

use anyhow::Result;
use candle_core::{Device, IndexOp, Tensor, Var};

use crate::measure;

/// Times of one backward through the head: from the last step of a sequence, and from a
/// tensor of its own.
pub struct LastStep {
    pub narrow_ms: f64,
    pub leaf_ms: f64,
}

/// Measures both backward passes at batch `b`, `t` steps, width `h` (median of `runs`).
pub fn measure_last_step(b: usize, t: usize, h: usize, runs: usize) -> Result<LastStep> {
    anyhow::ensure!(
        b > 0 && t > 0 && h > 0,
        "last-step: B, T and H must be positive"
    );
    let dev = Device::Cpu;
    let seq = Var::randn(0f32, 1.0, (b, t, h), &dev)?;
    let last = Var::randn(0f32, 1.0, (b, h), &dev)?;
    let head = Tensor::randn(0f32, 1.0, (10, h), &dev)?;
    let step = |x: &Tensor, of: &Var| -> Result<()> {
        let grads = x.matmul(&head.t()?)?.sum_all()?.backward()?;
        anyhow::ensure!(
            grads.get(of).is_some(),
            "last-step: no gradient reached the input"
        );
        Ok(())
    };
    let iters = 50;
    let narrow_ms = measure(runs, iters, || step(&seq.i((.., t - 1, ..))?, &seq))?;
    let leaf_ms = measure(runs, iters, || step(last.as_tensor(), &last))?;
    Ok(LastStep { narrow_ms, leaf_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_run_and_empty_shapes_are_refused() {
        let m = measure_last_step(4, 3, 8, 1).unwrap();
        assert!(
            m.narrow_ms > 0.0 && m.leaf_ms > 0.0,
            "{}, {}",
            m.narrow_ms,
            m.leaf_ms
        );
        let err = measure_last_step(4, 0, 8, 1)
            .err()
            .expect("T = 0 must fail");
        assert!(err.to_string().contains("must be positive"), "{err}");
    }
}
