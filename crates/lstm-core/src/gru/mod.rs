//! Gated recurrent units: one step ([`GruCell`]) and multi-layer, optionally bidirectional
//! sequences ([`Gru`]), PyTorch-compatible.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::engine::{Family, RecurrentConfig, Stack};
use crate::error::{check_shape, LstmError, Result};

/// One GRU cell, as PyTorch's `nn.GRUCell`.
///
/// Parameters are `weight_ih (3H, in)`, `weight_hh (3H, H)`, `bias_ih (3H)`, `bias_hh (3H)`,
/// gate blocks ordered r, z, n, every one initialised uniform in ±1/√H; a PyTorch
/// `GRUCell` state dict loads through a [`VarBuilder`] unchanged. The update:
///
/// ```text
/// r  = σ(W_ir x + b_ir + W_hr h + b_hr)
/// z  = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 − z) ⊙ n + z ⊙ h
/// ```
#[derive(Clone, Debug)]
pub struct GruCell {
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
    input_size: usize,
    hidden_size: usize,
}

impl GruCell {
    /// A cell for inputs of `input_size` features and a state of `hidden_size`.
    pub fn new(input_size: usize, hidden_size: usize, vb: VarBuilder) -> Result<Self> {
        if input_size == 0 || hidden_size == 0 {
            return Err(LstmError::Config(format!(
                "GruCell needs input and hidden sizes above 0, got {input_size} and {hidden_size}"
            )));
        }
        let k = 1.0 / (hidden_size as f64).sqrt();
        let init = Init::Uniform { lo: -k, up: k };
        let rows = 3 * hidden_size;
        Ok(Self {
            weight_ih: vb.get_with_hints((rows, input_size), "weight_ih", init)?,
            weight_hh: vb.get_with_hints((rows, hidden_size), "weight_hh", init)?,
            bias_ih: vb.get_with_hints(rows, "bias_ih", init)?,
            bias_hh: vb.get_with_hints(rows, "bias_hh", init)?,
            input_size,
            hidden_size,
        })
    }

    /// The hidden size `H`.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// A zero state `(batch, H)`.
    pub fn zero_state(&self, batch: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        Ok(Tensor::zeros((batch, self.hidden_size), dtype, device)?)
    }

    /// One step: `x (B, in)` and `h (B, H)` give the next `h (B, H)`.
    ///
    /// Works for any batch size, 1 included.
    pub fn step(&self, x: &Tensor, h: &Tensor) -> Result<Tensor> {
        let (batch, _) = x.dims2()?;
        check_shape("GruCell input", x.dims(), &[batch, self.input_size])?;
        check_shape("GruCell h", h.dims(), &[batch, self.hidden_size])?;
        let gi = x
            .matmul(&self.weight_ih.t()?)?
            .broadcast_add(&self.bias_ih)?;
        let gh = h
            .matmul(&self.weight_hh.t()?)?
            .broadcast_add(&self.bias_hh)?;
        crate::engine::reference::gru_update(&gi, &gh, h)
    }
}

/// The shape of a [`Gru`]: the same fields and builder as [`LstmConfig`](crate::LstmConfig).
pub type GruConfig = RecurrentConfig;

/// A multi-layer GRU over `(batch, seq, features)` input, as PyTorch's
/// `nn.GRU(batch_first=True)`.
///
/// Parameters are named and shaped as PyTorch's: `weight_ih_l{k}` `(3H, in)`,
/// `weight_hh_l{k}` `(3H, H)`, `bias_ih_l{k}`, `bias_hh_l{k}` `(3H)`, plus the same with
/// `_reverse` for the backward direction, so a PyTorch `state_dict` loads through a
/// [`VarBuilder`] unchanged. Gates are ordered r, z, n; the update is [`GruCell`]'s.
///
/// On the CPU in f32 each layer runs as one fused op (both directions at once); elsewhere,
/// or with [`Kernel::Reference`](crate::Kernel::Reference), step by step with candle ops.
#[derive(Clone, Debug)]
pub struct Gru {
    stack: Stack,
}

impl Gru {
    /// Builds the layers, reading or creating their parameters through `vb`.
    pub fn new(config: GruConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            stack: Stack::new(config, Family::Gru, vb)?,
        })
    }
}

single_state_front!(Gru, "nn.GRU");

#[cfg(test)]
mod tests;
