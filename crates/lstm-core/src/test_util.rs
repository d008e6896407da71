//! Helpers shared by the unit tests.

use candle_core::{DType, Tensor};

use crate::error::Result;
use crate::LstmState;

/// The largest absolute difference between two tensors of the same shape.
pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("diff")
}

/// A zero state for a model with `layers·directions` slots.
pub(crate) fn zero_state(
    slots: usize,
    batch: usize,
    hidden: usize,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<LstmState> {
    let z = Tensor::zeros((slots, batch, hidden), dtype, device)?;
    Ok(LstmState { h: z.clone(), c: z })
}
