//! Multi-layer, optionally bidirectional LSTM over whole sequences, PyTorch-compatible.

use candle_core::{Tensor, Var};
use candle_nn::VarBuilder;

use crate::engine::{Family, RecurrentConfig, Stack};
use crate::error::{LstmError, Result};
use crate::{Kernel, LstmState, PackedBatch};

/// The shape of an [`Lstm`].
pub type LstmConfig = RecurrentConfig;

/// A multi-layer LSTM over `(batch, seq, features)` input, as PyTorch's
/// `nn.LSTM(batch_first=True)`.
///
/// Parameters are named and shaped as PyTorch's: `weight_ih_l{k}` `(4H, in)`,
/// `weight_hh_l{k}` `(4H, H)`, `bias_ih_l{k}`, `bias_hh_l{k}` `(4H)`, plus the same with
/// `_reverse` for the backward direction, so a PyTorch `state_dict` loads through a
/// [`VarBuilder`] unchanged. Gates are ordered i, f, g, o.
///
/// With [`LstmConfig::with_proj_size`]`(P)` it is PyTorch's projected LSTM
/// (`nn.LSTM(proj_size=P)`): `h = W_hr (o ⊙ tanh c)` with `weight_hr_l{k}` `(P, H)`, so
/// `h`, the outputs and `weight_hh_l{k}` `(4H, P)` are `P` wide while `c` stays `H`.
///
/// On the CPU in f32 each layer runs as one fused op (both directions at once); elsewhere,
/// or with [`Kernel::Reference`], step by step with candle ops.
#[derive(Clone, Debug)]
pub struct Lstm {
    stack: Stack,
}

/// `(h0, c0)` of an optional state.
fn split(state: Option<&LstmState>) -> (Option<&Tensor>, Option<&Tensor>) {
    (state.map(|s| &s.h), state.map(|s| &s.c))
}

impl Lstm {
    /// Builds the layers, reading or creating their parameters through `vb`.
    pub fn new(config: LstmConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            stack: Stack::new(config, Family::Lstm, vb)?,
        })
    }

    /// Selects the recurrence kernel (the fused one by default).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.stack = self.stack.with_kernel(kernel);
        self
    }

    /// The configuration this model was built with.
    pub fn config(&self) -> &LstmConfig {
        self.stack.config()
    }

    /// Runs the model.
    ///
    /// - `x`: `(B, T, input_size)`;
    /// - `state`: optional initial `(h0, c0)`, each `(layers·D, B, H)` (`h0` `P` wide
    ///   with a projection); zeros when `None`;
    /// - `train`: applies dropout between layers and keeps what the backward pass needs.
    ///
    /// Returns the last layer's outputs `(B, T, D·H)` and the final state `(h_n, c_n)`,
    /// each `(layers·D, B, H)` (with a projection, `P` in place of `H` for the outputs and
    /// `h_n`). Reading `out[:, -1]` costs no more than
    /// [`Lstm::forward_final`] beyond the output's own gradient.
    pub fn forward(
        &self,
        x: &Tensor,
        state: Option<&LstmState>,
        train: bool,
    ) -> Result<(Tensor, LstmState)> {
        let (out, h, c) = self.stack.forward(x, split(state), train)?;
        Ok((out, state_of(h, c)?))
    }

    /// Runs the model and returns only the final state `(h_n, c_n)`, each
    /// `(layers·D, B, H)`.
    ///
    /// Same numbers as [`Lstm::forward`], but the last layer never materialises its
    /// output sequence for autograd, which makes training a model that reads only the
    /// final state (a sequence classifier) cheaper.
    pub fn forward_final(
        &self,
        x: &Tensor,
        state: Option<&LstmState>,
        train: bool,
    ) -> Result<LstmState> {
        let (h0, c0) = split(state);
        let run = self.stack.run(x, h0, c0, train, true)?;
        state_of(run.h_n, run.c_n)
    }

    /// Runs rows of different lengths, as PyTorch's `nn.LSTM` on
    /// `pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)` followed
    /// by `pad_packed_sequence`: returns the outputs `(B, T, D·H)`, zero past each row's
    /// length, and each row's final state `(h_n, c_n)` at its own last step (the reverse
    /// direction starts at each row's own end), rows in the batch's order.
    ///
    /// `state` and `train` as [`Lstm::forward`]. The fused op does no work on padding.
    pub fn forward_packed(
        &self,
        batch: &PackedBatch,
        state: Option<&LstmState>,
        train: bool,
    ) -> Result<(Tensor, LstmState)> {
        let (out, h, c) = self.stack.forward_packed(batch, split(state), train)?;
        Ok((out, state_of(h, c)?))
    }

    /// [`Lstm::forward_packed`]'s final state only, without an output sequence for
    /// autograd (as [`Lstm::forward_final`]).
    pub fn forward_final_packed(
        &self,
        batch: &PackedBatch,
        state: Option<&LstmState>,
        train: bool,
    ) -> Result<LstmState> {
        let run = self.stack.run_packed(batch, split(state), train, true)?;
        state_of(run.h_n, run.c_n)
    }

    /// The hidden state of every step of the last layer, in time order, each `(B, H)`: for
    /// gradient-flow analysis (how `∂L/∂h_t` shrinks with the distance to the loss).
    ///
    /// Arguments as [`Lstm::forward`] in inference (no dropout); the model must be
    /// unidirectional. The layers below the last run as in [`Lstm::forward`]; the last one
    /// runs step by step with candle ops ([`Kernel::Reference`]), and each `h_t` is the
    /// tensor the recurrence continues from, not a copy. candle keeps gradients of
    /// variables only, so to read `∂L/∂h_t` use [`Lstm::forward_steps_with_taps`].
    pub fn forward_steps(&self, x: &Tensor, state: Option<&LstmState>) -> Result<Vec<Tensor>> {
        self.stack.last_layer_steps(x, split(state), None)
    }

    /// As [`Lstm::forward_steps`], plus one zero variable `(B, H)` per step ("tap") added
    /// to the last layer's hidden state: after `loss.backward()`, the gradient of
    /// `taps[t]` is the full `∂L/∂h_t`, through every later step (and so through the cell
    /// states `c_{t+1}, c_{t+2}, …` they feed) included. The values are unchanged.
    ///
    /// ```
    /// use candle_core::{DType, Device, Tensor};
    /// use candle_nn::VarMap;
    /// use lstm_core::{seeded_var_builder, Lstm, LstmConfig};
    ///
    /// let varmap = VarMap::new();
    /// let vb = seeded_var_builder(&varmap, 0, DType::F32, &Device::Cpu);
    /// let lstm = Lstm::new(LstmConfig::new(3, 8), vb)?;
    /// let x = Tensor::randn(0f32, 1.0, (2, 20, 3), &Device::Cpu)?;
    /// let (steps, taps) = lstm.forward_steps_with_taps(&x, None)?;
    /// let loss = steps[19].sum_all()?; // the loss reads the last step only
    /// let grads = loss.backward()?;
    /// let norm = |t: usize| -> candle_core::Result<f32> {
    ///     grads.get(taps[t].as_tensor()).unwrap().sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()
    /// };
    /// assert!(norm(0)? < norm(19)?); // ‖∂L/∂h_t‖ decays going back in time
    /// # Ok::<(), lstm_core::LstmError>(())
    /// ```
    pub fn forward_steps_with_taps(
        &self,
        x: &Tensor,
        state: Option<&LstmState>,
    ) -> Result<(Vec<Tensor>, Vec<Var>)> {
        self.stack.steps_with_taps(x, split(state))
    }
}

fn state_of(h: Tensor, c: Option<Tensor>) -> Result<LstmState> {
    let c = c.ok_or_else(|| LstmError::Config("the LSTM has no cell state".into()))?;
    Ok(LstmState { h, c })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::seeded_var_builder;
    use crate::test_util::{max_diff, zero_state};
    use candle_core::IndexOp;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    #[test]
    fn parameter_names_follow_pytorch() -> Result<()> {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 0, DType::F32, &Device::Cpu);
        let cfg = LstmConfig::new(3, 5)
            .with_layers(2)
            .with_bidirectional(true);
        let _ = Lstm::new(cfg, vb)?;
        let data = vm.data().lock().unwrap();
        assert_eq!(data.len(), 16);
        assert_eq!(data["weight_ih_l0"].dims(), &[20, 3]);
        assert_eq!(data["weight_ih_l1_reverse"].dims(), &[20, 10]);
        assert_eq!(data["weight_hh_l1"].dims(), &[20, 5]);
        assert_eq!(data["bias_hh_l0_reverse"].dims(), &[20]);
        Ok(())
    }

    #[test]
    fn bad_config_and_bad_shapes_are_errors() -> Result<()> {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 0, DType::F32, &Device::Cpu);
        assert!(matches!(
            Lstm::new(LstmConfig::new(3, 0), vb.clone()),
            Err(LstmError::Config(_))
        ));
        assert!(matches!(
            Lstm::new(LstmConfig::new(3, 4).with_dropout(1.0), vb.clone()),
            Err(LstmError::Config(_))
        ));
        let lstm = Lstm::new(LstmConfig::new(3, 4), vb)?;
        let x = Tensor::zeros((2, 5, 4), DType::F32, &Device::Cpu)?;
        assert!(matches!(
            lstm.forward(&x, None, false),
            Err(LstmError::Shape { .. })
        ));
        let x = Tensor::zeros((2, 5, 3), DType::F32, &Device::Cpu)?;
        let bad = zero_state(1, 3, 4, DType::F32, &Device::Cpu)?;
        assert!(matches!(
            lstm.forward(&x, Some(&bad), false),
            Err(LstmError::Shape { .. })
        ));
        Ok(())
    }

    /// `forward_steps` are the output's steps (two layers, fused below); the taps'
    /// gradients are `∂L/∂h_t`, checked against the gradient of the initial state of a
    /// run over the steps after `t` that starts from `(h_t, c_t)`.
    #[test]
    fn forward_steps_and_taps_give_per_step_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let (b, t, i, h) = (3, 6, 2, 5);
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 4, DType::F32, &dev);
        let deep = Lstm::new(LstmConfig::new(i, h).with_layers(2), vb.pp("deep"))?;
        let x = Tensor::randn(0f32, 1.0, (b, t, i), &dev)?;
        let state = LstmState {
            h: Tensor::randn(0f32, 0.5, (2, b, h), &dev)?,
            c: Tensor::randn(0f32, 0.5, (2, b, h), &dev)?,
        };
        let (out, _) = deep.forward(&x, Some(&state), false)?;
        let steps = deep.forward_steps(&x, Some(&state))?;
        assert_eq!(steps.len(), t);
        assert!(max_diff(&Tensor::stack(&steps, 1)?, &out) < 1e-5);
        let (tapped, _) = deep.forward_steps_with_taps(&x, Some(&state))?;
        assert!(max_diff(&Tensor::stack(&tapped, 1)?, &out) < 1e-5);

        let one = Lstm::new(LstmConfig::new(i, h), vb.pp("one"))?;
        let (steps, taps) = one.forward_steps_with_taps(&x, None)?;
        let probe = Tensor::randn(0f32, 1.0, (b, t, h), &dev)?;
        let grads = (Tensor::stack(&steps, 1)? * &probe)?
            .sum_all()?
            .backward()?;
        let cells = {
            // c_t of every step, from the reference loop of the single-step runs.
            let mut s = zero_state(1, b, h, DType::F32, &dev)?;
            let mut cs = Vec::new();
            for step in 0..t {
                s = one.forward(&x.narrow(1, step, 1)?, Some(&s), false)?.1;
                cs.push(s.c.clone());
            }
            cs
        };
        for s in 0..t - 1 {
            let h_s = Var::from_tensor(&steps[s].unsqueeze(0)?.detach())?;
            let rest = x.narrow(1, s + 1, t - s - 1)?;
            let start = LstmState {
                h: h_s.as_tensor().clone(),
                c: cells[s].detach(),
            };
            let (later, _) = one.forward(&rest, Some(&start), true)?;
            let loss = ((h_s.as_tensor().squeeze(0)? * probe.i((.., s, ..))?)?.sum_all()?
                + (later * probe.narrow(1, s + 1, t - s - 1)?)?.sum_all()?)?;
            let expected = loss
                .backward()?
                .get(h_s.as_tensor())
                .expect("grad")
                .squeeze(0)?;
            let tap = grads.get(taps[s].as_tensor()).expect("tap gradient");
            assert!(max_diff(tap, &expected) < 1e-5, "step {s}");
        }
        let last = grads.get(taps[t - 1].as_tensor()).expect("tap gradient");
        assert!(max_diff(last, &probe.i((.., t - 1, ..))?) < 1e-6);

        let bidir = Lstm::new(LstmConfig::new(i, h).with_bidirectional(true), vb.pp("bi"))?;
        assert!(matches!(
            bidir.forward_steps(&x, None),
            Err(LstmError::Config(_))
        ));
        assert!(matches!(
            one.forward_steps(&Tensor::zeros((b, t, i + 1), DType::F32, &dev)?, None),
            Err(LstmError::Shape { .. })
        ));
        Ok(())
    }
}
