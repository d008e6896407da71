//! Optimizers whose state can be saved in a checkpoint and restored exactly.
//!
//! candle-nn's `SGD` and `AdamW` keep their state private, so a resumed run could not
//! continue where it stopped. These follow PyTorch's `torch.optim.SGD` (with optional
//! momentum, no dampening) and `torch.optim.Adam` (no weight decay), and compute each
//! update with the same candle operations, in the same order, as candle-nn's
//! optimizers, so results match theirs bit for bit.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Which optimizer and its hyper-parameters, as saved in a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent; `momentum` 0 is plain SGD (the book).
    Sgd {
        /// Momentum factor (PyTorch's `momentum`, dampening 0).
        momentum: f64,
    },
    /// Adam (PyTorch's defaults apart from the learning rate).
    Adam {
        /// Decay of the first moment.
        beta1: f64,
        /// Decay of the second moment.
        beta2: f64,
        /// Added to the denominator.
        eps: f64,
    },
}

impl OptimizerKind {
    /// Rejects hyper-parameters that cannot train; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let unit = |field: &str, v: f64| {
            if v.is_finite() && (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(TrainError::setting(
                    field,
                    format!("must be in [0, 1), got {v}"),
                ))
            }
        };
        match *self {
            OptimizerKind::Sgd { momentum } => unit("momentum", momentum),
            OptimizerKind::Adam { beta1, beta2, eps } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if eps.is_finite() && eps > 0.0 {
                    Ok(())
                } else {
                    Err(TrainError::setting(
                        "eps",
                        format!("must be positive, got {eps}"),
                    ))
                }
            }
        }
    }

    /// Adam with betas (0.9, 0.999) and eps 1e-8, as `torch.optim.Adam`.
    pub fn adam() -> Self {
        Self::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// One trained variable and its optimizer state.
struct Slot {
    name: String,
    var: Var,
    /// SGD momentum buffer or Adam's first moment.
    first: Option<Tensor>,
    /// Adam's second moment.
    second: Option<Tensor>,
}

/// An optimizer over every variable of a [`VarMap`], with a saveable state.
pub struct Optimizer {
    kind: OptimizerKind,
    lr: f64,
    clip: Option<f64>,
    steps: u64,
    slots: Vec<Slot>,
}

/// Scales every gradient of `vars` so that their global norm is at most `max_norm`;
/// returns the norm before clipping. The norm is summed in f64.
pub fn clip_gradients(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += g
                .to_dtype(candle_core::DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / norm;
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Prefix of the optimizer's tensors in a checkpoint.
const FIRST: &str = "optimizer.first.";
const SECOND: &str = "optimizer.second.";

impl Optimizer {
    /// An optimizer of `kind` at learning rate `lr` over every variable of `varmap`.
    pub fn new(kind: OptimizerKind, varmap: &VarMap, lr: f64) -> Self {
        let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut slots: Vec<Slot> = data
            .iter()
            .map(|(name, var)| Slot {
                name: name.clone(),
                var: var.clone(),
                first: None,
                second: None,
            })
            .collect();
        slots.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            kind,
            lr,
            clip: None,
            steps: 0,
            slots,
        }
    }

    /// Scales the gradients of every step so that their global norm is at most `max_norm`
    /// (PyTorch's `clip_grad_norm_`), when given.
    pub fn with_clip(mut self, max_norm: Option<f64>) -> Self {
        self.clip = max_norm;
        self
    }

    /// The optimizer and its hyper-parameters.
    pub fn kind(&self) -> OptimizerKind {
        self.kind
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Changes the learning rate for the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Back-propagates `loss`, clips the gradients (see [`Optimizer::with_clip`]) and
    /// updates every variable.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let mut grads = loss.backward()?;
        if let Some(max_norm) = self.clip {
            let vars: Vec<Var> = self.slots.iter().map(|s| s.var.clone()).collect();
            clip_gradients(&mut grads, &vars, max_norm)?;
        }
        self.step(&grads)
    }

    /// Updates every variable that has a gradient in `grads`.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let lr = self.lr;
        match self.kind {
            OptimizerKind::Sgd { momentum } => {
                for slot in &mut self.slots {
                    let Some(g) = grads.get(slot.var.as_tensor()) else {
                        continue;
                    };
                    let direction = if momentum == 0.0 {
                        g.clone()
                    } else {
                        let buf = match &slot.first {
                            None => g.clone(),
                            Some(buf) => ((buf * momentum)? + g)?,
                        };
                        slot.first = Some(buf.clone());
                        buf
                    };
                    slot.var.set(&slot.var.sub(&(direction * lr)?)?)?;
                }
            }
            OptimizerKind::Adam { beta1, beta2, eps } => {
                let t = i32::try_from(self.steps).unwrap_or(i32::MAX);
                let scale_m = 1f64 / (1f64 - beta1.powi(t));
                let scale_v = 1f64 / (1f64 - beta2.powi(t));
                for slot in &mut self.slots {
                    let Some(g) = grads.get(slot.var.as_tensor()) else {
                        continue;
                    };
                    let zeros = || slot.var.as_tensor().zeros_like();
                    let m = slot.first.take().map_or_else(zeros, Ok)?;
                    let v = slot.second.take().map_or_else(zeros, Ok)?;
                    let next_m = ((m * beta1)? + (g * (1.0 - beta1))?)?;
                    let next_v = ((v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                    let m_hat = (&next_m * scale_m)?;
                    let v_hat = (&next_v * scale_v)?;
                    let adjusted = (m_hat / (v_hat.sqrt()? + eps)?)?;
                    let next = (slot.var.as_tensor() - (adjusted * lr)?)?;
                    slot.var.set(&next)?;
                    slot.first = Some(next_m);
                    slot.second = Some(next_v);
                }
            }
        }
        Ok(())
    }

    /// The state tensors (momentum buffers or Adam moments), named
    /// `optimizer.first.<param>` / `optimizer.second.<param>`; each is a copy.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for slot in &self.slots {
            if let Some(t) = &slot.first {
                out.push((format!("{FIRST}{}", slot.name), t.copy()?));
            }
            if let Some(t) = &slot.second {
                out.push((format!("{SECOND}{}", slot.name), t.copy()?));
            }
        }
        Ok(out)
    }

    /// Whether a checkpoint tensor name belongs to the optimizer.
    pub fn is_state_name(name: &str) -> bool {
        name.starts_with(FIRST) || name.starts_with(SECOND)
    }

    /// Restores the state saved by [`Optimizer::state_tensors`] after `steps` steps.
    ///
    /// Errors with [`TrainError::Checkpoint`] when a tensor names no variable or has
    /// another shape.
    pub fn load_state(
        &mut self,
        steps: u64,
        tensors: &HashMap<String, Tensor>,
        source: &std::path::Path,
    ) -> Result<()> {
        let bad = |message: String| TrainError::Checkpoint {
            path: source.to_path_buf(),
            message,
        };
        let index: HashMap<String, usize> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        for slot in &mut self.slots {
            slot.first = None;
            slot.second = None;
        }
        for (name, tensor) in tensors {
            let (param, first) = if let Some(p) = name.strip_prefix(FIRST) {
                (p, true)
            } else if let Some(p) = name.strip_prefix(SECOND) {
                (p, false)
            } else {
                continue;
            };
            let &i = index.get(param).ok_or_else(|| {
                bad(format!(
                    "optimizer state {name} belongs to no parameter of the model"
                ))
            })?;
            let slot = &mut self.slots[i];
            if tensor.dims() != slot.var.dims() {
                return Err(bad(format!(
                    "optimizer state {name}: expected shape {:?}, found {:?}",
                    slot.var.dims(),
                    tensor.dims()
                )));
            }
            let value = tensor.to_dtype(slot.var.dtype())?;
            if first {
                slot.first = Some(value);
            } else {
                slot.second = Some(value);
            }
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
