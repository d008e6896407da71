//! Multi-layer, optionally bidirectional LSTM over whole sequences, PyTorch-compatible.

use candle_core::{DType, IndexOp, Tensor, D};
use candle_nn::{Init, VarBuilder};

use crate::error::{check_shape, LstmError, Result};
use crate::fused::{self, SequenceOutput};
use crate::{Kernel, LstmState};

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

    fn run(
        &self,
        x: &Tensor,
        state: Option<&LstmState>,
        train: bool,
        final_only: bool,
    ) -> Result<(Option<Tensor>, LstmState)> {
        let cfg = &self.config;
        let (b, _t, _) = x.dims3()?;
        check_shape("Lstm input", x.dims(), &[b, x.dim(1)?, cfg.input_size])?;
        if x.dim(1)? == 0 {
            return Err(LstmError::Config("Lstm input has no time steps".into()));
        }
        let dirs = cfg.directions();
        let h = cfg.hidden_size;
        let state_shape = [cfg.num_layers * dirs, b, h];
        let (h0, c0) = match state {
            Some(s) => {
                check_shape("Lstm h0", s.h.dims(), &state_shape)?;
                check_shape("Lstm c0", s.c.dims(), &state_shape)?;
                (s.h.clone(), s.c.clone())
            }
            None => {
                let z = Tensor::zeros(&state_shape, x.dtype(), x.device())?;
                (z.clone(), z)
            }
        };
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
        let xp = w.input_projection(x, true)?;
        let w_hh_t = w.w_hh.t()?;
        let (mut hs, mut cs) = (h0.clone(), c0.clone());
        let mut outputs = vec![None; t];
        for step in 0..t {
            let ti = if reverse { t - 1 - step } else { step };
            let gates = (xp.i((.., ti, ..))? + hs.matmul(&w_hh_t)?)?;
            let next = crate::cell::reference_update(&gates, &cs)?;
            outputs[ti] = Some(next.h.clone());
            (hs, cs) = (next.h, next.c);
        }
        let outputs: Vec<Tensor> = outputs.into_iter().flatten().collect();
        Ok((Tensor::stack(&outputs, 1)?, hs, cs))
    }
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
