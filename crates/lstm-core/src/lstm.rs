//! Multi-layer, optionally bidirectional LSTM over whole sequences, PyTorch-compatible.

use candle_core::{DType, IndexOp, Tensor, Var, D};
use candle_nn::{Init, VarBuilder};

use crate::error::{check_shape, LstmError, Result};
use crate::fused::{self, SequenceOutput};
use crate::{recurrent, Kernel, LstmState};

/// The shape of a stack of recurrent layers: [`Lstm`], [`Gru`](crate::Gru) or
/// [`Rnn`](crate::Rnn) (as `LstmConfig`, `GruConfig`, `RnnConfig`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentConfig {
    /// Features per input step.
    pub input_size: usize,
    /// Size `H` of the hidden (and, for an LSTM, cell) state.
    pub hidden_size: usize,
    /// Stacked layers; layer `k > 0` reads the outputs of layer `k - 1`.
    pub num_layers: usize,
    /// Dropout on the outputs of every layer but the last, in training only.
    pub dropout: f32,
    /// Run a second direction from the last step to the first (`_reverse` parameters).
    pub bidirectional: bool,
}

/// The shape of an [`Lstm`].
pub type LstmConfig = RecurrentConfig;

impl RecurrentConfig {
    /// One unidirectional layer without dropout.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Self {
            input_size,
            hidden_size,
            num_layers: 1,
            dropout: 0.0,
            bidirectional: false,
        }
    }

    /// Sets the number of stacked layers.
    pub fn with_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets the dropout between layers.
    pub fn with_dropout(mut self, dropout: f32) -> Self {
        self.dropout = dropout;
        self
    }

    /// Makes the layers bidirectional.
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// Number of directions `D` (1 or 2).
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Checks that every size is usable.
    pub fn validate(&self) -> Result<()> {
        if self.input_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return Err(LstmError::Config(format!(
                "input size, hidden size and layers must all be above 0, got {self:?}"
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(LstmError::Config(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// The parameters of one direction of one layer.
#[derive(Clone, Debug)]
pub(crate) struct DirectionWeights {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
}

impl DirectionWeights {
    /// Loads `weight_ih_l{k}{suffix}` and friends, initialised uniform in ±1/√H.
    pub(crate) fn load(
        vb: &VarBuilder,
        layer: usize,
        suffix: &str,
        input_size: usize,
        hidden_size: usize,
        gates: usize,
    ) -> Result<Self> {
        let k = 1.0 / (hidden_size as f64).sqrt();
        let init = Init::Uniform { lo: -k, up: k };
        let rows = gates * hidden_size;
        let name = |n: &str| format!("{n}_l{layer}{suffix}");
        Ok(Self {
            w_ih: vb.get_with_hints((rows, input_size), &name("weight_ih"), init)?,
            w_hh: vb.get_with_hints((rows, hidden_size), &name("weight_hh"), init)?,
            b_ih: vb.get_with_hints(rows, &name("bias_ih"), init)?,
            b_hh: vb.get_with_hints(rows, &name("bias_hh"), init)?,
        })
    }

    /// `x W_ihᵀ + b_ih + b_hh` for every step at once: `(B, T, in)` → `(B, T, G·H)`.
    pub(crate) fn input_projection(&self, x: &Tensor, fold_hh_bias: bool) -> Result<Tensor> {
        let (b, t, i) = x.dims3()?;
        let rows = self.w_ih.dim(0)?;
        let bias = if fold_hh_bias {
            (&self.b_ih + &self.b_hh)?
        } else {
            self.b_ih.clone()
        };
        let xp = x
            .reshape((b * t, i))?
            .matmul(&self.w_ih.t()?)?
            .broadcast_add(&bias)?;
        Ok(xp.reshape((b, t, rows))?)
    }
}

/// Names of the parameter suffixes of each direction (`""` and `"_reverse"`).
pub(crate) fn direction_suffixes(bidirectional: bool) -> &'static [&'static str] {
    if bidirectional {
        &["", "_reverse"]
    } else {
        &[""]
    }
}

/// A multi-layer LSTM over `(batch, seq, features)` input, as PyTorch's
/// `nn.LSTM(batch_first=True)`.
///
/// Parameters are named and shaped as PyTorch's: `weight_ih_l{k}` `(4H, in)`,
/// `weight_hh_l{k}` `(4H, H)`, `bias_ih_l{k}`, `bias_hh_l{k}` `(4H)`, plus the same with
/// `_reverse` for the backward direction, so a PyTorch `state_dict` loads through a
/// [`VarBuilder`] unchanged. Gates are ordered i, f, g, o.
///
/// On the CPU in f32 the recurrence runs in the fused kernel of [`crate::fused`]; elsewhere,
/// or with [`Kernel::Reference`], it runs step by step with candle ops.
#[derive(Clone, Debug)]
pub struct Lstm {
    config: LstmConfig,
    /// `layers[k][d]`: layer `k`, direction `d`.
    layers: Vec<Vec<DirectionWeights>>,
    kernel: Kernel,
}

impl Lstm {
    /// Builds the layers, reading or creating their parameters through `vb`.
    pub fn new(config: LstmConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let dirs = config.directions();
        let layers = (0..config.num_layers)
            .map(|layer| {
                let input = if layer == 0 {
                    config.input_size
                } else {
                    config.hidden_size * dirs
                };
                direction_suffixes(config.bidirectional)
                    .iter()
                    .map(|suffix| {
                        DirectionWeights::load(&vb, layer, suffix, input, config.hidden_size, 4)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            layers,
            kernel: Kernel::default(),
        })
    }

    /// Selects the recurrence kernel (the fused one by default).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// The configuration this model was built with.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// Runs the model.
    ///
    /// - `x`: `(B, T, input_size)`;
    /// - `state`: optional initial `(h0, c0)`, each `(layers·D, B, H)`; zeros when `None`;
    /// - `train`: applies dropout between layers and keeps what the backward pass needs.
    ///
    /// Returns the last layer's outputs `(B, T, D·H)` and the final state `(h_n, c_n)`,
    /// each `(layers·D, B, H)`.
    pub fn forward(
        &self,
        x: &Tensor,
        state: Option<&LstmState>,
        train: bool,
    ) -> Result<(Tensor, LstmState)> {
        let (out, state) = self.run(x, state, train, false)?;
        let out = out.ok_or_else(|| LstmError::Config("no output sequence".into()))?;
        Ok((out, state))
    }

    /// Runs the model and returns only the final state `(h_n, c_n)`, each
    /// `(layers·D, B, H)`.
    ///
    /// Same numbers as [`Lstm::forward`], but the last layer never materialises its
    /// output sequence for autograd, which makes training a model that reads only the
    /// final state (a sequence classifier) markedly cheaper.
    pub fn forward_final(
        &self,
        x: &Tensor,
        state: Option<&LstmState>,
        train: bool,
    ) -> Result<LstmState> {
        Ok(self.run(x, state, train, true)?.1)
    }

    /// Checks `x` and `state`; returns the initial `(h0, c0)`, each `(layers·D, B, H)`.
    fn initial_state(&self, x: &Tensor, state: Option<&LstmState>) -> Result<(Tensor, Tensor)> {
        let cfg = &self.config;
        let (b, _) = recurrent::check_input("Lstm input", x, cfg.input_size)?;
        let state_shape = [cfg.num_layers * cfg.directions(), b, cfg.hidden_size];
        Ok(match state {
            Some(s) => {
                check_shape("Lstm h0", s.h.dims(), &state_shape)?;
                check_shape("Lstm c0", s.c.dims(), &state_shape)?;
                (s.h.clone(), s.c.clone())
            }
            None => {
                let z = Tensor::zeros(&state_shape, x.dtype(), x.device())?;
                (z.clone(), z)
            }
        })
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
        self.last_layer_steps(x, state, None)
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
        let b = x.dims3()?.0;
        let taps = recurrent::zero_taps(x, b, self.config.hidden_size)?;
        let steps = self.last_layer_steps(x, state, Some(&taps))?;
        Ok((steps, taps))
    }

    /// The per-step hidden states of the last layer (see [`Lstm::forward_steps`]).
    fn last_layer_steps(
        &self,
        x: &Tensor,
        state: Option<&LstmState>,
        taps: Option<&[Var]>,
    ) -> Result<Vec<Tensor>> {
        let cfg = &self.config;
        if cfg.bidirectional {
            return Err(LstmError::Config(
                "Lstm: per-step states are for unidirectional models only".into(),
            ));
        }
        let (h0, c0) = self.initial_state(x, state)?;
        let Some((last, below)) = self.layers.split_last() else {
            return Err(LstmError::Config("Lstm has no layers".into()));
        };
        let below_count = below.len();
        let input = if below.is_empty() {
            x.clone()
        } else {
            let lower = Lstm {
                config: RecurrentConfig {
                    num_layers: below_count,
                    ..*cfg
                },
                layers: below.to_vec(),
                kernel: self.kernel,
            };
            let lower_state = LstmState {
                h: h0.narrow(0, 0, below_count)?,
                c: c0.narrow(0, 0, below_count)?,
            };
            lower.forward(x, Some(&lower_state), false)?.0
        };
        let (h0, c0) = (h0.i(below_count)?, c0.i(below_count)?);
        Ok(reference_direction(&last[0], &input, &h0, &c0, false, taps)?.0)
    }

    fn run(
        &self,
        x: &Tensor,
        state: Option<&LstmState>,
        train: bool,
        final_only: bool,
    ) -> Result<(Option<Tensor>, LstmState)> {
        let cfg = &self.config;
        let dirs = cfg.directions();
        let (h0, c0) = self.initial_state(x, state)?;
        let mut input = x.clone();
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for (layer, weights) in self.layers.iter().enumerate() {
            let last_layer = layer + 1 == cfg.num_layers;
            let mut outputs = Vec::with_capacity(dirs);
            for (d, w) in weights.iter().enumerate() {
                let idx = layer * dirs + d;
                let (h0, c0) = (h0.i(idx)?, c0.i(idx)?);
                let reverse = d == 1;
                if final_only && last_layer {
                    let (hl, cl) = self.final_state(w, &input, &h0, &c0, reverse, train)?;
                    h_n.push(hl);
                    c_n.push(cl);
                    continue;
                }
                let (seq, hl, cl) = self.run_direction(w, &input, &h0, &c0, reverse, train)?;
                outputs.push(seq);
                h_n.push(hl);
                c_n.push(cl);
            }
            if outputs.is_empty() {
                break;
            }
            input = if dirs == 1 {
                outputs.remove(0)
            } else {
                Tensor::cat(&outputs, D::Minus1)?
            };
            if train && cfg.dropout > 0.0 && layer + 1 < cfg.num_layers {
                input = candle_nn::ops::dropout(&input, cfg.dropout)?;
            }
        }
        let state = LstmState {
            h: Tensor::stack(&h_n, 0)?,
            c: Tensor::stack(&c_n, 0)?,
        };
        Ok(((!final_only).then_some(input), state))
    }

    /// One direction through the fused kernel, or `None` when it does not apply (another
    /// kernel chosen, or a tensor that is not f32 on the CPU).
    fn fused(
        &self,
        w: &DirectionWeights,
        x: &Tensor,
        (h0, c0, reverse, train): (&Tensor, &Tensor, bool, bool),
        output: SequenceOutput,
    ) -> Result<Option<Tensor>> {
        if self.kernel != Kernel::Fused || !fused::supports(x) {
            return Ok(None);
        }
        let hc0 = Tensor::cat(&[h0, c0], 1)?;
        let packed = fused::pack_weights(&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh)?;
        Ok(Some(fused::lstm_sequence(
            x, &packed, &hc0, reverse, train, output,
        )?))
    }

    /// The final `h`, `c` of one direction of one layer.
    fn final_state(
        &self,
        w: &DirectionWeights,
        x: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        reverse: bool,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let h = self.config.hidden_size;
        let args = (h0, c0, reverse, train);
        if let Some(hc) = self.fused(w, x, args, SequenceOutput::Final)? {
            return Ok((hc.narrow(1, 0, h)?, hc.narrow(1, h, h)?));
        }
        let (_, hl, cl) = self.run_direction(w, x, h0, c0, reverse, train)?;
        Ok((hl, cl))
    }

    /// One direction of one layer: returns the outputs `(B, T, H)` and the final `h`, `c`.
    fn run_direction(
        &self,
        w: &DirectionWeights,
        x: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        reverse: bool,
        train: bool,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let h = self.config.hidden_size;
        let t = x.dim(1)?;
        let last = if reverse { 0 } else { t - 1 };
        if let Some(out) = self.fused(w, x, (h0, c0, reverse, train), SequenceOutput::All)? {
            return Ok((
                out.narrow(2, 0, h)?,
                out.i((.., last, ..h))?,
                out.i((.., last, h..))?,
            ));
        }
        let (outputs, cs) = reference_direction(w, x, h0, c0, reverse, None)?;
        let hs = outputs[last].clone();
        Ok((Tensor::stack(&outputs, 1)?, hs, cs))
    }
}

/// One direction of one layer step by step with plain candle ops ([`Kernel::Reference`]):
/// the hidden state of every step in time order, each `(B, H)`, and the final cell state.
///
/// With `taps` (one zero variable `(B, H)` per step, in time order) the hidden state of
/// step `t` is the computed one plus `taps[t]`, and the recurrence continues from that
/// sum, so the gradient of `taps[t]` is `∂L/∂h_t` (as [`recurrent::Direction`]).
fn reference_direction(
    w: &DirectionWeights,
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    reverse: bool,
    taps: Option<&[Var]>,
) -> Result<(Vec<Tensor>, Tensor)> {
    let t = x.dim(1)?;
    let xp = w.input_projection(x, true)?;
    let w_hh_t = w.w_hh.t()?;
    let (mut hs, mut cs) = (h0.clone(), c0.clone());
    let mut outputs = vec![None; t];
    for step in 0..t {
        let ti = if reverse { t - 1 - step } else { step };
        let gates = (xp.i((.., ti, ..))? + hs.matmul(&w_hh_t)?)?;
        let next = crate::cell::reference_update(&gates, &cs)?;
        hs = match taps {
            Some(taps) => (next.h + taps[ti].as_tensor())?,
            None => next.h,
        };
        cs = next.c;
        outputs[ti] = Some(hs.clone());
    }
    Ok((outputs.into_iter().flatten().collect(), cs))
}

/// A zero state for a model with `layers·directions` slots.
pub fn zero_state(
    slots: usize,
    batch: usize,
    hidden: usize,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<LstmState> {
    let z = Tensor::zeros((slots, batch, hidden), dtype, device)?;
    Ok(LstmState { h: z.clone(), c: z })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::seeded_var_builder;
    use candle_core::{Device, Var};
    use candle_nn::VarMap;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff")
    }

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

    /// The fused and the reference kernels give the same outputs, states and gradients
    /// for every parameter, over odd shapes.
    #[test]
    fn fused_matches_reference_on_random_shapes() -> Result<()> {
        let dev = Device::Cpu;
        let cases = [
            (1, 1, 1, 1, 1, false),
            (3, 7, 5, 9, 2, false),
            (2, 4, 3, 13, 2, true),
            (5, 1, 6, 33, 1, true),
            (70, 6, 8, 130, 1, false),
        ];
        for (b, t, i, h, layers, bi) in cases {
            let vm = VarMap::new();
            let vb = seeded_var_builder(&vm, 5, DType::F32, &dev);
            let cfg = LstmConfig::new(i, h)
                .with_layers(layers)
                .with_bidirectional(bi);
            let fused_model = Lstm::new(cfg, vb)?;
            let reference = fused_model.clone().with_kernel(Kernel::Reference);
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, t, i), &dev)?)?;
            let slots = layers * cfg.directions();
            let h0 = Var::from_tensor(&Tensor::randn(0f32, 0.5, (slots, b, h), &dev)?)?;
            let c0 = Var::from_tensor(&Tensor::randn(0f32, 0.5, (slots, b, h), &dev)?)?;
            let probe = Tensor::randn(0f32, 1.0, (b, t, cfg.directions() * h), &dev)?;
            let run =
                |m: &Lstm| -> Result<(Tensor, Tensor, Tensor, candle_core::backprop::GradStore)> {
                    let state = LstmState {
                        h: h0.as_tensor().clone(),
                        c: c0.as_tensor().clone(),
                    };
                    let (out, s) = m.forward(x.as_tensor(), Some(&state), true)?;
                    let loss = ((&out * &probe)?.sum_all()?
                        + s.h.sum_all()?
                        + (s.c.sqr()?.sum_all()? * 0.3)?)?;
                    let grads = loss.backward()?;
                    Ok((out, s.h, s.c, grads))
                };
            let (of, hf, cf, gf) = run(&fused_model)?;
            let (or, hr, cr, gr) = run(&reference)?;
            let case = format!("case b{b} t{t} i{i} h{h} l{layers} bi{bi}");
            assert!(max_diff(&of, &or) < 1e-5, "{case}: output");
            assert!(max_diff(&hf, &hr) < 1e-5, "{case}: h_n");
            assert!(max_diff(&cf, &cr) < 1e-5, "{case}: c_n");
            // The final-state-only path: same state, same gradients for every parameter.
            let final_grads = |m: &Lstm| -> Result<(LstmState, candle_core::backprop::GradStore)> {
                let state = LstmState {
                    h: h0.as_tensor().clone(),
                    c: c0.as_tensor().clone(),
                };
                let s = m.forward_final(x.as_tensor(), Some(&state), true)?;
                let loss = ((&s.h * 1.5)?.sum_all()? + s.c.sqr()?.sum_all()?)?;
                let grads = loss.backward()?;
                Ok((s, grads))
            };
            let (sf, gf2) = final_grads(&fused_model)?;
            let (sr, gr2) = final_grads(&reference)?;
            assert!(max_diff(&sf.h, &sr.h) < 1e-5, "{case}: final-only h");
            for var in vm.all_vars().iter().chain([&x, &h0, &c0]) {
                let a = gf2.get(var.as_tensor()).expect("final-only grad missing");
                let r = gr2.get(var.as_tensor()).expect("reference grad missing");
                assert!(
                    max_diff(a, r) < 1e-4,
                    "{case}: final-only grad {:?}",
                    var.dims()
                );
            }
            let fin = fused_model.forward_final(x.as_tensor(), None, false)?;
            let (_, full) = reference.forward(x.as_tensor(), None, false)?;
            assert!(max_diff(&fin.h, &full.h) < 1e-5, "{case}: final h");
            assert!(max_diff(&fin.c, &full.c) < 1e-5, "{case}: final c");
            let mut checked = 0;
            for var in vm.all_vars().iter().chain([&x, &h0, &c0]) {
                let a = gf.get(var.as_tensor()).expect("fused grad missing");
                let r = gr.get(var.as_tensor()).expect("reference grad missing");
                assert!(max_diff(a, r) < 1e-4, "{case}: grad {:?}", var.dims());
                assert!(
                    a.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0,
                    "{case}: zero grad"
                );
                checked += 1;
            }
            assert_eq!(checked, 4 * slots + 3);
        }
        Ok(())
    }
}
