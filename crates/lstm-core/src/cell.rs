//! The chapter's LSTM cell, written from scratch.

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Init, Linear, VarBuilder};

use crate::error::{check_shape, LstmError, Result};
use crate::{fused, Kernel, LstmState};

/// One LSTM cell, as the chapter builds it: two linear layers producing the four gates.
///
/// ```text
/// gates        = x2h(x) + h2h(h)                 (B, 4H), split as i, f, g, o
/// i, f, o      = σ(gates_i), σ(gates_f), σ(gates_o)
/// g            = tanh(gates_g)
/// c'           = f ⊙ c + i ⊙ g
/// h'           = o ⊙ tanh(c')
/// ```
///
/// Parameters are `x2h.weight (4H, in)`, `x2h.bias`, `h2h.weight (4H, H)`, `h2h.bias`,
/// every one initialised uniform in ±1/√H as in the book. They map one to one onto
/// PyTorch's `nn.LSTMCell` (`weight_ih`, `bias_ih`, `weight_hh`, `bias_hh`).
#[derive(Clone, Debug)]
pub struct LstmCell {
    x2h: Linear,
    h2h: Linear,
    input_size: usize,
    hidden_size: usize,
    kernel: Kernel,
}

impl LstmCell {
    /// A cell for inputs of `input_size` features and a state of `hidden_size`.
    pub fn new(input_size: usize, hidden_size: usize, vb: VarBuilder) -> Result<Self> {
        if input_size == 0 || hidden_size == 0 {
            return Err(LstmError::Config(format!(
                "LstmCell needs input and hidden sizes above 0, got {input_size} and {hidden_size}"
            )));
        }
        let std = 1.0 / (hidden_size as f64).sqrt();
        let init = Init::Uniform { lo: -std, up: std };
        let linear = |name: &str, fan_in: usize| -> Result<Linear> {
            let vb = vb.pp(name);
            let w = vb.get_with_hints((4 * hidden_size, fan_in), "weight", init)?;
            let b = vb.get_with_hints(4 * hidden_size, "bias", init)?;
            Ok(Linear::new(w, Some(b)))
        };
        Ok(Self {
            x2h: linear("x2h", input_size)?,
            h2h: linear("h2h", hidden_size)?,
            input_size,
            hidden_size,
            kernel: Kernel::default(),
        })
    }

    /// Selects the kernel for the state update (the fused one by default).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// The hidden size `H`.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// A zero state `(h, c)`, each `(batch, H)`.
    pub fn zero_state(&self, batch: usize, dtype: DType, device: &Device) -> Result<LstmState> {
        let zeros = Tensor::zeros((batch, self.hidden_size), dtype, device)?;
        Ok(LstmState {
            h: zeros.clone(),
            c: zeros,
        })
    }

    /// One step: `x (B, in)` and the state `(h, c)`, each `(B, H)`, give the next state.
    ///
    /// Works for any batch size, 1 included.
    pub fn step(&self, x: &Tensor, state: &LstmState) -> Result<LstmState> {
        let (batch, _) = x.dims2()?;
        check_shape("LstmCell input", x.dims(), &[batch, self.input_size])?;
        check_shape("LstmCell h", state.h.dims(), &[batch, self.hidden_size])?;
        check_shape("LstmCell c", state.c.dims(), &[batch, self.hidden_size])?;
        if self.kernel == Kernel::Fused && fused::supports(x) {
            return self.fused_step(x, state, &self.packed_weights()?);
        }
        // gates = x2h(x) + h2h(h)
        let gates = (self.x2h.forward(x)? + self.h2h.forward(&state.h)?)?;
        crate::engine::reference::lstm_update(&gates, &state.c)
    }

    /// Runs the cell over a sequence `x (B, T, in)` from `state`, one step at a time as the
    /// book's model does, and returns the final state.
    ///
    /// With the fused kernel the four parameters are packed once for the whole sequence
    /// and each step is one fused op (both matmuls, the gates and the state update).
    pub fn unroll(&self, x: &Tensor, state: LstmState) -> Result<LstmState> {
        let (batch, steps, _) = x.dims3()?;
        check_shape("LstmCell input", x.dims(), &[batch, steps, self.input_size])?;
        check_shape("LstmCell h", state.h.dims(), &[batch, self.hidden_size])?;
        check_shape("LstmCell c", state.c.dims(), &[batch, self.hidden_size])?;
        let mut state = state;
        if self.kernel == Kernel::Fused && fused::supports(x) {
            let packed = self.packed_weights()?;
            for t in 0..steps {
                state = self.fused_step(&x.i((.., t, ..))?, &state, &packed)?;
            }
        } else {
            for t in 0..steps {
                state = self.step(&x.i((.., t, ..))?, &state)?;
            }
        }
        Ok(state)
    }

    /// `[W_x2h | W_h2h | b_x2h | b_h2h]`, the layout of the fused kernel.
    fn packed_weights(&self) -> Result<Tensor> {
        let bias = |l: &Linear| {
            l.bias()
                .cloned()
                .ok_or_else(|| LstmError::Config("LstmCell layers have biases".into()))
        };
        Ok(fused::pack_weights(
            self.x2h.weight(),
            self.h2h.weight(),
            &bias(&self.x2h)?,
            &bias(&self.h2h)?,
        )?)
    }

    /// One step through the fused kernel: the sequence op over a single step.
    fn fused_step(&self, x: &Tensor, state: &LstmState, packed: &Tensor) -> Result<LstmState> {
        let s0 = Tensor::cat(&[&state.h, &state.c], 1)?.unsqueeze(0)?;
        let seq = fused::sequence_with_weights(
            crate::Family::Lstm,
            &x.unsqueeze(1)?,
            packed,
            &s0,
            1,
            true,
            fused::SequenceOutput::Final,
        )?;
        // (1, B, [h | c]) → h, c
        let hidden = state.h.dim(1)?;
        let states = seq.states.i(0)?;
        Ok(LstmState {
            h: states.narrow(1, 0, hidden)?,
            c: states.narrow(1, hidden, hidden)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::seeded_var_builder;
    use candle_nn::VarMap;

    fn cell(input: usize, hidden: usize) -> Result<(LstmCell, VarMap)> {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 11, DType::F32, &Device::Cpu);
        Ok((LstmCell::new(input, hidden, vb)?, vm))
    }

    #[test]
    fn parameters_are_named_shaped_and_bounded_as_the_book() -> Result<()> {
        let (_, vm) = cell(28, 16)?;
        let data = vm.data().lock().unwrap();
        let mut names: Vec<_> = data.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["h2h.bias", "h2h.weight", "x2h.bias", "x2h.weight"]);
        assert_eq!(data["x2h.weight"].dims(), &[64, 28]);
        assert_eq!(data["h2h.weight"].dims(), &[64, 16]);
        let bound = 0.25f32;
        for var in data.values() {
            let v = var.as_tensor().abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(v <= bound && v > 0.2, "max |w| = {v}");
        }
        Ok(())
    }

    #[test]
    fn batch_of_one_works() -> Result<()> {
        let (cell, _) = cell(5, 7)?;
        let x = Tensor::ones((1, 5), DType::F32, &Device::Cpu)?;
        let s = cell.step(&x, &cell.zero_state(1, DType::F32, &Device::Cpu)?)?;
        assert_eq!(s.h.dims(), &[1, 7]);
        assert_eq!(s.c.dims(), &[1, 7]);
        Ok(())
    }

    #[test]
    fn fused_and_reference_steps_agree_with_gradients() -> Result<()> {
        let dev = Device::Cpu;
        for (b, i, h, t) in [(1, 2, 3, 1), (4, 5, 17, 3), (9, 28, 64, 4)] {
            let (fused_cell, vm) = cell(i, h)?;
            let reference = fused_cell.clone().with_kernel(Kernel::Reference);
            let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, t, i), &dev)?)?;
            let h0 = candle_core::Var::from_tensor(&Tensor::randn(0f32, 0.5, (b, h), &dev)?)?;
            let c0 = candle_core::Var::from_tensor(&Tensor::randn(0f32, 0.5, (b, h), &dev)?)?;
            let w = Tensor::randn(0f32, 1.0, (b, h), &dev)?;
            let run = |m: &LstmCell, unrolled: bool| -> Result<(Tensor, Vec<Tensor>)> {
                let start = LstmState {
                    h: h0.as_tensor().clone(),
                    c: c0.as_tensor().clone(),
                };
                let s = if unrolled {
                    m.unroll(x.as_tensor(), start)?
                } else {
                    let mut s = start;
                    for step in 0..t {
                        s = m.step(&x.as_tensor().i((.., step, ..))?, &s)?;
                    }
                    s
                };
                let loss = ((s.h * &w)?.sum_all()? + (s.c.sqr()?.sum_all()? * 0.5)?)?;
                let grads = loss.backward()?;
                let mut gs = Vec::new();
                for var in vm.all_vars().iter().chain([&x, &h0, &c0]) {
                    gs.push(grads.get(var.as_tensor()).expect("gradient").clone());
                }
                Ok((loss, gs))
            };
            let (lr, gr) = run(&reference, false)?;
            for (m, unrolled) in [(&fused_cell, true), (&fused_cell, false)] {
                let (lf, gf) = run(m, unrolled)?;
                let d = (&lf - &lr)?.abs()?.to_scalar::<f32>()?;
                assert!(d < 1e-4, "loss differs by {d}");
                assert_eq!(gf.len(), 7);
                for (a, r) in gf.iter().zip(&gr) {
                    let d = (a - r)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                    assert!(d < 1e-5, "gradient {:?} differs by {d}", a.dims());
                }
            }
        }
        Ok(())
    }
}
