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
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{AdamW, Optimizer as _, ParamsAdamW, SGD};

    fn problem(seed: f32) -> Result<(VarMap, Tensor, Tensor)> {
        let varmap = VarMap::new();
        varmap.get(
            (3, 2),
            "w",
            candle_nn::Init::Const(0.0),
            DType::F32,
            &Device::Cpu,
        )?;
        varmap.data().lock().unwrap()["w"].set(&Tensor::new(
            &[[0.5f32, -0.2], [seed, 0.3], [0.0, 1.0]],
            &Device::Cpu,
        )?)?;
        let x = Tensor::new(&[[1f32, 2., 3.], [-1., 0.5, 2.]], &Device::Cpu)?;
        let y = Tensor::new(&[[1f32, 0.], [0., 1.]], &Device::Cpu)?;
        Ok((varmap, x, y))
    }

    fn loss(varmap: &VarMap, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let w = varmap.data().lock().unwrap()["w"].as_tensor().clone();
        Ok(candle_nn::loss::mse(&x.matmul(&w)?, y)?)
    }

    fn weights(varmap: &VarMap) -> Vec<f32> {
        varmap.data().lock().unwrap()["w"]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn plain_sgd_and_adam_match_candle_bit_for_bit() -> Result<()> {
        let (ours, x, y) = problem(0.1)?;
        let (theirs, ..) = problem(0.1)?;
        let mut a = Optimizer::new(OptimizerKind::Sgd { momentum: 0.0 }, &ours, 0.05);
        let mut b = SGD::new(theirs.all_vars(), 0.05)?;
        for _ in 0..5 {
            a.backward_step(&loss(&ours, &x, &y)?)?;
            b.backward_step(&loss(&theirs, &x, &y)?)?;
        }
        assert_eq!(weights(&ours), weights(&theirs));
        assert_ne!(weights(&ours), weights(&problem(0.1)?.0));

        let (ours, x, y) = problem(0.1)?;
        let (theirs, ..) = problem(0.1)?;
        let mut a = Optimizer::new(OptimizerKind::adam(), &ours, 0.01);
        let mut b = AdamW::new(
            theirs.all_vars(),
            ParamsAdamW {
                lr: 0.01,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        for _ in 0..5 {
            a.backward_step(&loss(&ours, &x, &y)?)?;
            b.backward_step(&loss(&theirs, &x, &y)?)?;
        }
        assert_eq!(weights(&ours), weights(&theirs));
        Ok(())
    }

    #[test]
    fn momentum_follows_pytorch() -> Result<()> {
        // d/dw of sum(w) is 1 everywhere: buf_1 = 1, buf_2 = 0.9 + 1 = 1.9.
        let varmap = VarMap::new();
        varmap.get(
            2,
            "w",
            candle_nn::Init::Const(0.0),
            DType::F32,
            &Device::Cpu,
        )?;
        let w = varmap.data().lock().unwrap()["w"].clone();
        let mut opt = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9 }, &varmap, 0.1);
        opt.backward_step(&w.as_tensor().sum_all()?)?;
        opt.backward_step(&w.as_tensor().sum_all()?)?;
        let got: Vec<f32> = w.as_tensor().to_vec1()?;
        for v in got {
            assert!((v - (-0.1 - 0.19)).abs() < 1e-6, "{v}");
        }
        Ok(())
    }

    #[test]
    fn saved_state_resumes_exactly() -> Result<()> {
        for kind in [OptimizerKind::Sgd { momentum: 0.9 }, OptimizerKind::adam()] {
            let (straight, x, y) = problem(0.7)?;
            let mut opt = Optimizer::new(kind, &straight, 0.02);
            for _ in 0..6 {
                opt.backward_step(&loss(&straight, &x, &y)?)?;
            }

            let (first, ..) = problem(0.7)?;
            let mut opt = Optimizer::new(kind, &first, 0.02);
            for _ in 0..3 {
                opt.backward_step(&loss(&first, &x, &y)?)?;
            }
            let state: HashMap<String, Tensor> = opt.state_tensors()?.into_iter().collect();
            assert_eq!(
                state.len(),
                if kind == OptimizerKind::adam() { 2 } else { 1 }
            );
            let (second, ..) = problem(0.0)?;
            second.data().lock().unwrap()["w"].set(&Tensor::from_vec(
                weights(&first),
                (3, 2),
                &Device::Cpu,
            )?)?;
            let mut resumed = Optimizer::new(kind, &second, 0.02);
            resumed.load_state(opt.steps(), &state, std::path::Path::new("ckpt"))?;
            for _ in 0..3 {
                resumed.backward_step(&loss(&second, &x, &y)?)?;
            }
            assert_eq!(weights(&straight), weights(&second), "{kind:?}");
        }
        Ok(())
    }

    #[test]
    fn clipping_scales_the_global_norm_down_to_the_limit_only() -> Result<()> {
        let (varmap, x, y) = problem(0.7)?;
        let vars = varmap.all_vars();
        let norm_of = |grads: &GradStore| -> Result<f64> {
            let mut total = 0f64;
            for v in &vars {
                let g = grads.get(v.as_tensor()).expect("a gradient");
                total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
            Ok(total.sqrt())
        };
        let mut grads = loss(&varmap, &x, &y)?.backward()?;
        let before = norm_of(&grads)?;
        assert!(before > 0.01, "{before}");
        let reported = clip_gradients(&mut grads, &vars, before / 4.0)?;
        assert!((reported - before).abs() < 1e-6 * before);
        assert!((norm_of(&grads)? - before / 4.0).abs() < 1e-5 * before);
        let mut grads = loss(&varmap, &x, &y)?.backward()?;
        clip_gradients(&mut grads, &vars, before * 2.0)?;
        assert!(
            (norm_of(&grads)? - before).abs() < 1e-6 * before,
            "changed below the limit"
        );
        assert!(OptimizerKind::Sgd { momentum: 1.0 }.validate().is_err());
        assert!(OptimizerKind::adam().validate().is_ok());
        Ok(())
    }

    #[test]
    fn state_for_an_unknown_parameter_is_rejected() -> Result<()> {
        let (varmap, ..) = problem(0.0)?;
        let mut opt = Optimizer::new(OptimizerKind::adam(), &varmap, 0.1);
        let t = Tensor::zeros((3, 2), DType::F32, &Device::Cpu)?;
        let err = opt
            .load_state(
                1,
                &HashMap::from([("optimizer.first.v".into(), t)]),
                "c".as_ref(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("optimizer.first.v belongs to no parameter"),
            "{err}"
        );
        let t = Tensor::zeros(4, DType::F32, &Device::Cpu)?;
        let err = opt
            .load_state(
                1,
                &HashMap::from([("optimizer.second.w".into(), t)]),
                "c".as_ref(),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected shape [3, 2], found [4]"), "{err}");
        Ok(())
    }
}
