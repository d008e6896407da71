//! The plain (Elman) recurrent network, tanh or ReLU, PyTorch-compatible.

use candle_nn::VarBuilder;

use crate::engine::{Family, Nonlinearity, RecurrentConfig, Stack};
use crate::error::Result;

/// The shape of a [`Rnn`]: the same fields and builder as [`LstmConfig`](crate::LstmConfig).
pub type RnnConfig = RecurrentConfig;

/// A multi-layer RNN over `(batch, seq, features)` input, as PyTorch's
/// `nn.RNN(batch_first=True)`:
///
/// ```text
/// h' = act(W_ih x + b_ih + W_hh h + b_hh)      act = tanh (default) or ReLU
/// ```
///
/// Parameters are named and shaped as PyTorch's: `weight_ih_l{k}` `(H, in)`,
/// `weight_hh_l{k}` `(H, H)`, `bias_ih_l{k}`, `bias_hh_l{k}` `(H)`, plus the same with
/// `_reverse` for the backward direction, each initialised uniform in ±1/√H.
///
/// On the CPU in f32 each layer runs as one fused op (both directions at once); elsewhere,
/// or with [`Kernel::Reference`](crate::Kernel::Reference), step by step with candle ops.
///
/// The gradient of the loss with respect to each step's state, through
/// [`Rnn::forward_steps_with_taps`], vanishes going back in time:
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use candle_nn::VarMap;
/// use lstm_core::{seeded_var_builder, Rnn, RnnConfig};
///
/// let varmap = VarMap::new();
/// let vb = seeded_var_builder(&varmap, 0, DType::F32, &Device::Cpu);
/// let rnn = Rnn::new(RnnConfig::new(3, 8), vb)?;
/// let x = Tensor::randn(0f32, 1.0, (2, 20, 3), &Device::Cpu)?;
/// let (steps, taps) = rnn.forward_steps_with_taps(&x, None)?;
/// let loss = steps[19].sum_all()?; // the loss reads the last step only
/// let grads = loss.backward()?;
/// let norm = |t: usize| -> candle_core::Result<f32> {
///     grads.get(taps[t].as_tensor()).unwrap().sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()
/// };
/// assert!(norm(0)? < norm(19)?); // ‖∂L/∂h_t‖ decays going back in time
/// # Ok::<(), lstm_core::LstmError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Rnn {
    stack: Stack,
    nonlinearity: Nonlinearity,
}

impl Rnn {
    /// Builds a tanh RNN, reading or creating its parameters through `vb`.
    pub fn new(config: RnnConfig, vb: VarBuilder) -> Result<Self> {
        Self::new_with_nonlinearity(config, Nonlinearity::Tanh, vb)
    }

    /// Builds an RNN with the given non-linearity (`nn.RNN(nonlinearity=...)`).
    pub fn new_with_nonlinearity(
        config: RnnConfig,
        nonlinearity: Nonlinearity,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            stack: Stack::new(config, Family::Rnn(nonlinearity), vb)?,
            nonlinearity,
        })
    }

    /// The non-linearity.
    pub fn nonlinearity(&self) -> Nonlinearity {
        self.nonlinearity
    }
}

single_state_front!(Rnn, "nn.RNN");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LstmError;
    use crate::init::seeded_var_builder;
    use crate::test_util::max_diff;
    use candle_core::IndexOp;
    use candle_core::{DType, Device, Tensor, Var};
    use candle_nn::VarMap;

    fn rnn(cfg: RnnConfig, seed: u64) -> Result<(Rnn, VarMap)> {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, seed, DType::F32, &Device::Cpu);
        Ok((Rnn::new(cfg, vb)?, vm))
    }

    fn param(vm: &VarMap, name: &str) -> Tensor {
        vm.data().lock().unwrap()[name].as_tensor().clone()
    }

    /// One step with plain tensors: `tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)`.
    fn step(vm: &VarMap, layer: usize, suffix: &str, x: &Tensor, h: &Tensor) -> Result<Tensor> {
        let p = |n: &str| param(vm, &format!("{n}_l{layer}{suffix}"));
        let pre = (x
            .matmul(&p("weight_ih").t()?)?
            .broadcast_add(&p("bias_ih"))?
            + h.matmul(&p("weight_hh").t()?)?
                .broadcast_add(&p("bias_hh"))?)?;
        Ok(pre.tanh()?)
    }

    #[test]
    fn parameter_names_follow_pytorch() -> Result<()> {
        let cfg = RnnConfig::new(3, 5).with_layers(2).with_bidirectional(true);
        let (_, vm) = rnn(cfg, 0)?;
        let data = vm.data().lock().unwrap();
        assert_eq!(data.len(), 16);
        for suffix in ["", "_reverse"] {
            let shape = |n: &str| data[&format!("{n}{suffix}")].dims().to_vec();
            assert_eq!(shape("weight_ih_l0"), [5, 3]);
            assert_eq!(shape("weight_hh_l0"), [5, 5]);
            assert_eq!(shape("bias_ih_l0"), [5]);
            assert_eq!(shape("bias_hh_l0"), [5]);
            assert_eq!(shape("weight_ih_l1"), [5, 10]);
            assert_eq!(shape("weight_hh_l1"), [5, 5]);
            assert_eq!(shape("bias_ih_l1"), [5]);
            assert_eq!(shape("bias_hh_l1"), [5]);
        }
        let bound = 1.0 / 5f32.sqrt();
        for var in data.values() {
            let v = var.as_tensor().abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(v <= bound, "max |w| = {v}");
        }
        Ok(())
    }

    #[test]
    fn bad_config_and_bad_shapes_are_errors() -> Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 0, DType::F32, &dev);
        for cfg in [
            RnnConfig::new(0, 4),
            RnnConfig::new(3, 0),
            RnnConfig::new(3, 4).with_layers(0),
            RnnConfig::new(3, 4).with_dropout(1.0),
            RnnConfig::new(3, 4).with_dropout(f32::NAN),
        ] {
            assert!(
                matches!(Rnn::new(cfg, vb.clone()), Err(LstmError::Config(_))),
                "{cfg:?}"
            );
        }
        let model = Rnn::new(RnnConfig::new(3, 4).with_layers(2), vb.pp("rnn"))?;
        let x = Tensor::zeros((2, 5, 4), DType::F32, &dev)?;
        assert!(matches!(
            model.forward(&x, None, false),
            Err(LstmError::Shape { .. })
        ));
        assert!(matches!(
            model.forward_steps(&x, None),
            Err(LstmError::Shape { .. })
        ));
        let x = Tensor::zeros((2, 0, 3), DType::F32, &dev)?;
        assert!(matches!(
            model.forward(&x, None, false),
            Err(LstmError::Config(_))
        ));
        let x = Tensor::zeros((2, 5, 3), DType::F32, &dev)?;
        for bad in [(1, 2, 4), (2, 3, 4), (2, 2, 5)] {
            let h0 = Tensor::zeros(bad, DType::F32, &dev)?;
            assert!(matches!(
                model.forward(&x, Some(&h0), false),
                Err(LstmError::Shape { .. })
            ));
        }
        let bidir = Rnn::new(RnnConfig::new(3, 4).with_bidirectional(true), vb.pp("bi"))?;
        assert!(matches!(
            bidir.forward_steps(&x, None),
            Err(LstmError::Config(_))
        ));
        Ok(())
    }

    /// The model against the equation unrolled by hand, both directions and two layers,
    /// with a batch of one.
    #[test]
    fn matches_the_equation_with_a_batch_of_one() -> Result<()> {
        let dev = Device::Cpu;
        let (t, i, h) = (4, 3, 5);
        let cfg = RnnConfig::new(i, h).with_layers(2).with_bidirectional(true);
        let (model, vm) = rnn(cfg, 7)?;
        let x = Tensor::randn(0f32, 1.0, (1, t, i), &dev)?;
        let h0 = Tensor::randn(0f32, 0.5, (4, 1, h), &dev)?;
        let (out, h_n) = model.forward(&x, Some(&h0), false)?;
        assert_eq!(out.dims(), &[1, t, 2 * h]);
        assert_eq!(h_n.dims(), &[4, 1, h]);
        let mut input = x.clone();
        for layer in 0..2 {
            let mut outs = Vec::new();
            for (d, suffix) in ["", "_reverse"].iter().enumerate() {
                let mut hs = vec![None; t];
                let mut state = h0.i(2 * layer + d)?;
                for s in 0..t {
                    let ti = if d == 1 { t - 1 - s } else { s };
                    state = step(&vm, layer, suffix, &input.i((.., ti, ..))?, &state)?;
                    hs[ti] = Some(state.clone());
                }
                assert!(max_diff(&h_n.i(2 * layer + d)?, &state) < 1e-6);
                let hs: Vec<Tensor> = hs.into_iter().flatten().collect();
                outs.push(Tensor::stack(&hs, 1)?);
            }
            input = Tensor::cat(&outs, 2)?;
        }
        assert!(max_diff(&out, &input) < 1e-6);
        Ok(())
    }

    #[test]
    fn dropout_only_in_training() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (4, 5, 3), &dev)?;
        let (plain, _) = rnn(RnnConfig::new(3, 8).with_layers(2), 2)?;
        let (dropped, _) = rnn(RnnConfig::new(3, 8).with_layers(2).with_dropout(0.5), 2)?;
        let (a, _) = plain.forward(&x, None, false)?;
        let (b, _) = dropped.forward(&x, None, false)?;
        assert_eq!(max_diff(&a, &b), 0.0);
        let (c, _) = dropped.forward(&x, None, true)?;
        assert!(max_diff(&a, &c) > 1e-3);
        Ok(())
    }

    /// The taps' gradients are `∂L/∂h_t`: for `L = Σ probe_t ⊙ h_t` they satisfy the
    /// backward recurrence `g_t = probe_t + ((1 − h_{t+1}²) ⊙ g_{t+1}) W_hh`.
    #[test]
    fn taps_give_per_step_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let (b, t, i, h) = (3, 6, 2, 4);
        let (model, vm) = rnn(RnnConfig::new(i, h).with_layers(2), 5)?;
        let x = Tensor::randn(0f32, 1.0, (b, t, i), &dev)?;
        let (out, _) = model.forward(&x, None, false)?;
        let plain = model.forward_steps(&x, None)?;
        assert!(max_diff(&Tensor::stack(&plain, 1)?, &out) < 1e-6);
        let (steps, taps) = model.forward_steps_with_taps(&x, None)?;
        let stacked = Tensor::stack(&steps, 1)?;
        assert!(max_diff(&stacked, &out) < 1e-6);
        let probe = Tensor::randn(0f32, 1.0, (b, t, h), &dev)?;
        let grads = (stacked * &probe)?.sum_all()?.backward()?;
        let g = |s: usize| {
            grads
                .get(taps[s].as_tensor())
                .expect("tap gradient")
                .clone()
        };
        let w_hh = param(&vm, "weight_hh_l1");
        assert!(max_diff(&g(t - 1), &probe.i((.., t - 1, ..))?) < 1e-6);
        for s in 0..t - 1 {
            let dtanh = steps[s + 1].sqr()?.affine(-1.0, 1.0)?;
            let expected = (probe.i((.., s, ..))? + (dtanh * g(s + 1))?.matmul(&w_hh)?)?;
            assert!(max_diff(&g(s), &expected) < 1e-5, "step {s}");
        }
        Ok(())
    }

    #[test]
    fn every_parameter_gets_a_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = RnnConfig::new(3, 4).with_layers(2).with_bidirectional(true);
        let (model, vm) = rnn(cfg, 8)?;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 3), &dev)?)?;
        let h0 = Var::from_tensor(&Tensor::randn(0f32, 0.5, (4, 2, 4), &dev)?)?;
        let (out, h_n) = model.forward(x.as_tensor(), Some(h0.as_tensor()), true)?;
        let loss = (out.sqr()?.sum_all()? + h_n.sum_all()?)?;
        let grads = loss.backward()?;
        for var in vm.all_vars().iter().chain([&x, &h0]) {
            let g = grads.get(var.as_tensor()).expect("gradient");
            assert_eq!(g.dims(), var.dims());
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        }
        Ok(())
    }
}
