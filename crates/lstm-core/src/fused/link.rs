//! Memory shared by a [`super::op::SequenceOp`] and its [`FinalStatesOp`]: what a training
//! forward pass keeps for its backward pass, and the final states with their gradient.
//! With the sequence as the op's output, [`FinalStatesOp`] hands out the final states it
//! computed on the way and passes their gradient back through this memory, so candle's
//! graph sees one sequence tensor and a small states tensor.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

/// What a training forward pass keeps for its backward pass.
pub(crate) struct Saved {
    /// Gate activations `(positions, D·G·H)`.
    pub gates: Vec<f32>,
    /// What each step saves beside `h`, `(positions, D·SAVED·H)`.
    pub saved: Vec<f32>,
    /// With a projection, `m` of every step `(positions, D·H)`.
    pub proj: Vec<f32>,
    /// The hidden states, when the op's output is the final states only.
    pub out: Option<Vec<f32>>,
}

/// Memory shared by a [`super::op::SequenceOp`] and its [`FinalStatesOp`].
#[derive(Default)]
pub(crate) struct Link {
    pub saved: Mutex<Option<Saved>>,
    /// The final states `(D, B, SW)` of the last forward pass.
    pub final_states: Mutex<Option<Vec<f32>>>,
    /// The gradient of the final states, left by [`FinalStatesOp`]'s backward pass.
    pub final_grad: Mutex<Option<Vec<f32>>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The final states `(D, B, SW)` of a [`super::op::SequenceOp`] whose output is the sequence,
/// applied to that output so that autograd orders the two: this op's backward pass runs
/// first and leaves the states' gradient for the sequence op's.
pub(crate) struct FinalStatesOp {
    pub link: Arc<Link>,
    pub shape: Shape,
}

impl CustomOp1 for FinalStatesOp {
    fn name(&self) -> &'static str {
        "fused-recurrence-final-states"
    }

    fn cpu_fwd(&self, _s: &CpuStorage, _l: &Layout) -> Result<(CpuStorage, Shape)> {
        match lock(&self.link.final_states).take() {
            Some(fin) => Ok((CpuStorage::F32(fin), self.shape.clone())),
            None => candle_core::bail!("fused recurrence: the final states were already taken"),
        }
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let g = grad_res.flatten_all()?.to_vec1::<f32>()?;
        let mut slot = lock(&self.link.final_grad);
        match slot.as_mut() {
            Some(acc) => acc.iter_mut().zip(&g).for_each(|(a, v)| *a += v),
            None => *slot = Some(g),
        }
        // The sequence itself gets nothing from here; candle needs a gradient tensor all
        // the same, and a broadcast zero allocates nothing.
        let zero = Tensor::zeros(1, arg.dtype(), arg.device())?;
        Ok(Some(zero.broadcast_as(arg.shape())?))
    }
}
