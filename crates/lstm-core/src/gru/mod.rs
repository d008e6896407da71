//! Gated recurrent units: one step ([`GruCell`]) and multi-layer, optionally bidirectional
//! sequences ([`Gru`]), PyTorch-compatible.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use crate::engine::{Family, RecurrentConfig, Stack};
use crate::error::{check_shape, LstmError, Result};
use crate::{Kernel, PackedBatch};

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
/// or with [`Kernel::Reference`], step by step with candle ops.
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

    /// Selects the recurrence kernel (the fused one by default).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.stack = self.stack.with_kernel(kernel);
        self
    }

    /// The configuration this model was built with.
    pub fn config(&self) -> &GruConfig {
        self.stack.config()
    }

    /// Runs the model.
    ///
    /// - `x`: `(B, T, input_size)`;
    /// - `h0`: optional initial state `(layers·D, B, H)`; zeros when `None`;
    /// - `train`: applies dropout between layers and keeps what the backward pass needs.
    ///
    /// Returns the last layer's outputs `(B, T, D·H)` and the final state `h_n`,
    /// `(layers·D, B, H)`, as PyTorch's `(output, h_n)`.
    pub fn forward(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let (out, h_n, _) = self.stack.forward(x, (h0, None), train)?;
        Ok((out, h_n))
    }

    /// Runs the model and returns only the final state `h_n`, `(layers·D, B, H)`: the
    /// numbers of [`Gru::forward`], without an output sequence for autograd.
    pub fn forward_final(&self, x: &Tensor, h0: Option<&Tensor>, train: bool) -> Result<Tensor> {
        Ok(self.stack.run(x, h0, None, train, true)?.h_n)
    }

    /// Runs rows of different lengths, as PyTorch's `nn.GRU` on
    /// `pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)` followed
    /// by `pad_packed_sequence`: returns the outputs `(B, T, D·H)`, zero past each row's
    /// length, and each row's final state `h_n` at its own last step (the reverse
    /// direction starts at each row's own end), rows in the batch's order.
    ///
    /// `h0` and `train` as [`Gru::forward`]. The fused op does no work on padding.
    pub fn forward_packed(
        &self,
        batch: &PackedBatch,
        h0: Option<&Tensor>,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let (out, h_n, _) = self.stack.forward_packed(batch, (h0, None), train)?;
        Ok((out, h_n))
    }

    /// [`Gru::forward_packed`]'s final state only, without an output sequence for
    /// autograd (as [`Gru::forward_final`]).
    pub fn forward_final_packed(
        &self,
        batch: &PackedBatch,
        h0: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        Ok(self.stack.run_packed(batch, (h0, None), train, true)?.h_n)
    }

    /// The hidden state of every step of the last layer, in time order, each `(B, H)`: for
    /// gradient-flow analysis (how `∂L/∂h_t` shrinks or grows with the distance to the loss).
    ///
    /// Arguments as [`Gru::forward`] in inference (no dropout); the model must be
    /// unidirectional. Each `h_t` is the tensor the recurrence continues from, not a copy.
    /// candle keeps gradients of variables only, so to read `∂L/∂h_t` use
    /// [`Gru::forward_steps_with_taps`].
    pub fn forward_steps(&self, x: &Tensor, h0: Option<&Tensor>) -> Result<Vec<Tensor>> {
        self.stack.last_layer_steps(x, (h0, None), None)
    }

    /// As [`Gru::forward_steps`], plus one zero variable `(B, H)` per step ("tap") added
    /// to the last layer's state: after `loss.backward()`, the gradient of `taps[t]` is the
    /// full `∂L/∂h_t`, through every later step included. The values are unchanged.
    pub fn forward_steps_with_taps(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
    ) -> Result<(Vec<Tensor>, Vec<Var>)> {
        self.stack.steps_with_taps(x, (h0, None))
    }
}

#[cfg(test)]
mod tests;
