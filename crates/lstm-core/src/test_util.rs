//! Helpers shared by the unit tests.

use candle_core::{DType, Device, Shape, Tensor};

use crate::error::Result;
use crate::{LstmState, SplitMix64};

/// Normal samples of standard deviation `std` in `shape`, drawn from `rng`: test inputs
/// that are the same on every run (candle's own `randn` cannot be seeded).
pub(crate) fn seeded_randn<S: Into<Shape>>(
    rng: &mut SplitMix64,
    std: f32,
    shape: S,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let data: Vec<f32> = (0..shape.elem_count())
        .map(|_| std * rng.normal() as f32)
        .collect();
    Ok(Tensor::from_vec(data, shape, device)?)
}

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
