//! The one recurrent engine: a stack of layers × directions of any [`Family`], run
//! through the fused op ([`crate::fused`]) or step by step with candle ops
//! ([`Kernel::Reference`]). The fronts [`crate::Lstm`], [`crate::Gru`] and [`crate::Rnn`]
//! only name their state; layers, directions, dropout between layers, the initial state
//! and per-step taps are handled here, once.

pub(crate) mod config;
mod packed;
pub(crate) mod reference;
mod wavefront;

use std::sync::Arc;

use candle_core::{IndexOp, Tensor, Var, D};
use candle_nn::{Init, VarBuilder};

pub use config::{Family, Nonlinearity, RecurrentConfig};

use crate::error::{check_shape, LstmError, Result};
use crate::fused::{self, PackedSteps, SequenceOutput};
use crate::Kernel;

/// The parameters of one direction of one layer.
#[derive(Clone, Debug)]
pub(crate) struct DirectionWeights {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
    /// A projected LSTM's `W_hr (P, H)`.
    pub w_hr: Option<Tensor>,
}

impl DirectionWeights {
    /// Loads `weight_ih_l{k}{suffix}` and friends (and `weight_hr_l{k}{suffix}` with a
    /// projection), initialised uniform in ±1/√H.
    fn load(
        vb: &VarBuilder,
        (layer, suffix): (usize, &str),
        (input_size, config, gates): (usize, &RecurrentConfig, usize),
    ) -> Result<Self> {
        let (hidden, out) = (config.hidden_size, config.output_size());
        let k = 1.0 / (hidden as f64).sqrt();
        let init = Init::Uniform { lo: -k, up: k };
        let rows = gates * hidden;
        let name = |n: &str| format!("{n}_l{layer}{suffix}");
        let w_hr = match config.proj_size {
            0 => None,
            p => Some(vb.get_with_hints((p, hidden), &name("weight_hr"), init)?),
        };
        Ok(Self {
            w_ih: vb.get_with_hints((rows, input_size), &name("weight_ih"), init)?,
            w_hh: vb.get_with_hints((rows, out), &name("weight_hh"), init)?,
            b_ih: vb.get_with_hints(rows, &name("bias_ih"), init)?,
            b_hh: vb.get_with_hints(rows, &name("bias_hh"), init)?,
            w_hr,
        })
    }

    /// `[W_ih, W_hh, b_ih, b_hh(, W_hr)]`.
    fn params(&self) -> Vec<Tensor> {
        let base = [&self.w_ih, &self.w_hh, &self.b_ih, &self.b_hh];
        base.into_iter().chain(&self.w_hr).cloned().collect()
    }
}

/// What a stack returns: the last layer's outputs `(B, T, D·P)` (unless only the final
/// state was asked for) and the final states `(layers·D, B, P)` and `(layers·D, B, H)`
/// (`P` the output size, `H` without a projection).
pub(crate) struct StackOutput {
    pub out: Option<Tensor>,
    pub h_n: Tensor,
    /// The cell states, for a family with a cell.
    pub c_n: Option<Tensor>,
}

impl StackOutput {
    /// The output `out` and every layer's final states (`hs[l]` and, for a family with a
    /// cell, `cs[l]`, each `(D, B, ·)`) stacked layer after layer.
    fn stacked(out: Option<Tensor>, hs: &[Tensor], cs: &[Tensor]) -> Result<Self> {
        let c_n = match cs.is_empty() {
            true => None,
            false => Some(Tensor::cat(cs, 0)?),
        };
        Ok(Self {
            out,
            h_n: Tensor::cat(hs, 0)?,
            c_n,
        })
    }
}

/// How the rows of a batch end.
#[derive(Clone, Copy)]
enum Lengths<'a> {
    /// Every row has every step.
    Full,
    /// Rows of different lengths packed time-major, `(positions, ·)` (the fused op).
    Packed(&'a Arc<PackedSteps>),
    /// Rows of different lengths, padded `(B, T, ·)`, with the mask `(B, T)` of their
    /// real steps (the reference path).
    Masked(&'a Tensor),
}

/// Layers × directions of one family, with PyTorch's parameter names.
#[derive(Clone, Debug)]
pub(crate) struct Stack {
    config: RecurrentConfig,
    family: Family,
    /// `layers[k][d]`: layer `k`, direction `d`.
    layers: Vec<Vec<DirectionWeights>>,
    kernel: Kernel,
}

/// The labels of a family's arguments in shape errors.
fn labels(family: Family) -> [&'static str; 3] {
    match family {
        Family::Lstm => ["Lstm input", "Lstm h0", "Lstm c0"],
        Family::Gru => ["Gru input", "Gru h0", "Gru c0"],
        Family::Rnn(_) => ["Rnn input", "Rnn h0", "Rnn c0"],
    }
}

impl Stack {
    /// Builds the layers, reading or creating `weight_ih_l{k}[_reverse]` and friends.
    pub fn new(config: RecurrentConfig, family: Family, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        if config.proj_size > 0 && family != Family::Lstm {
            return Err(LstmError::Config(format!(
                "proj_size is for the LSTM only, not the {family}"
            )));
        }
        let suffixes: &[&str] = if config.bidirectional {
            &["", "_reverse"]
        } else {
            &[""]
        };
        let layers = (0..config.num_layers)
            .map(|layer| {
                let input = match layer {
                    0 => config.input_size,
                    _ => config.output_size() * suffixes.len(),
                };
                let sizes = (input, &config, family.gates());
                suffixes
                    .iter()
                    .map(|suffix| DirectionWeights::load(&vb, (layer, suffix), sizes))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            family,
            layers,
            kernel: Kernel::default(),
        })
    }

    /// Selects the kernel (the fused one by default).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// The shape this stack was built with.
    pub fn config(&self) -> &RecurrentConfig {
        &self.config
    }

    /// Checks `x (B, T, input_size)` with `T > 0` and the initial states against
    /// `(layers·D, B, P)` and `(layers·D, B, H)`.
    fn check(&self, x: &Tensor, h0: Option<&Tensor>, c0: Option<&Tensor>) -> Result<()> {
        let [input, h_label, c_label] = labels(self.family);
        let (b, t, _) = x.dims3()?;
        check_shape(input, x.dims(), &[b, t, self.config.input_size])?;
        if t == 0 {
            return Err(LstmError::Config(format!("{input} has no time steps")));
        }
        let cfg = &self.config;
        let slots = cfg.num_layers * cfg.directions();
        let widths = [cfg.output_size(), cfg.hidden_size];
        for ((label, state), width) in [(h_label, h0), (c_label, c0)].into_iter().zip(widths) {
            if let Some(s) = state {
                check_shape(label, s.dims(), &[slots, b, width])?;
            }
        }
        Ok(())
    }

    /// Runs every layer and direction.
    ///
    /// - `h0`, `c0`: optional initial states `(layers·D, B, H)` (`c0` for the LSTM only),
    ///   zeros when `None`;
    /// - `train`: dropout between layers, and keep what the backward pass needs;
    /// - `final_only`: the last layer returns its final state only (no output sequence
    ///   for autograd, which makes a model that reads only `h_n` cheaper to train).
    pub fn run(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        train: bool,
        final_only: bool,
    ) -> Result<StackOutput> {
        self.check(x, h0, c0)?;
        crate::memory::keep_freed_memory();
        let dropout = if train { self.config.dropout } else { 0.0 };
        let lengths = Lengths::Full;
        self.run_layers(
            &self.layers,
            x,
            (h0, c0),
            (dropout, train),
            final_only,
            lengths,
        )
    }

    /// [`Stack::run`] with the output sequence: `(out, h_n, c_n)`.
    pub fn forward(
        &self,
        x: &Tensor,
        (h0, c0): (Option<&Tensor>, Option<&Tensor>),
        train: bool,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let run = self.run(x, h0, c0, train, false)?;
        let out = run
            .out
            .ok_or_else(|| LstmError::Config("no output sequence".into()))?;
        Ok((out, run.h_n, run.c_n))
    }

    /// [`Stack::last_layer_steps`] with one zero tap per step (see there), returned with
    /// the steps.
    pub fn steps_with_taps(
        &self,
        x: &Tensor,
        start: (Option<&Tensor>, Option<&Tensor>),
    ) -> Result<(Vec<Tensor>, Vec<Var>)> {
        let taps = zero_taps(x, self.config.output_size())?;
        let steps = self.last_layer_steps(x, start, Some(&taps))?;
        Ok((steps, taps))
    }

    /// Runs `layers` with `dropout` between them, keeping what the backward pass needs
    /// when `save`.
    fn run_layers(
        &self,
        layers: &[Vec<DirectionWeights>],
        x: &Tensor,
        (h0, c0): (Option<&Tensor>, Option<&Tensor>),
        (dropout, save): (f32, bool),
        final_only: bool,
        lengths: Lengths<'_>,
    ) -> Result<StackOutput> {
        let dirs = self.config.directions();
        if !save && matches!(lengths, Lengths::Full) && self.runs_in_a_wavefront(layers, x) {
            return self.wavefront(layers, x, (h0, c0), final_only);
        }
        let (mut input, mut out) = (x.clone(), None);
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        for (layer, weights) in layers.iter().enumerate() {
            let last = layer + 1 == layers.len();
            let slot = |s: Option<&Tensor>| s.map(|s| s.narrow(0, layer * dirs, dirs)).transpose();
            let start = (slot(h0)?, slot(c0)?);
            let final_only = final_only && last;
            let (seq, h_n, c_n) = match lengths {
                Lengths::Packed(p) => {
                    self.fused_layer(weights, &input, start, (save, final_only), Some(p))?
                }
                Lengths::Masked(m) => {
                    self.reference_layer(weights, &input, start, final_only, Some(m))?
                }
                Lengths::Full if self.kernel == Kernel::Fused && fused::supports(&input) => {
                    self.fused_layer(weights, &input, start, (save, final_only), None)?
                }
                Lengths::Full => self.reference_layer(weights, &input, start, final_only, None)?,
            };
            hs.push(h_n);
            cs.extend(c_n);
            if let Some(seq) = seq {
                input = match dropout > 0.0 && !last {
                    true => candle_nn::ops::dropout(&seq, dropout)?,
                    false => seq,
                };
                out = Some(input.clone());
            }
        }
        StackOutput::stacked(if final_only { None } else { out }, &hs, &cs)
    }

    /// One layer through the fused op: `(sequence, h_n, c_n)`, states `(D, B, H)`; with
    /// `packed`, `x` and the sequence are packed.
    fn fused_layer(
        &self,
        weights: &[DirectionWeights],
        x: &Tensor,
        (h0, c0): (Option<Tensor>, Option<Tensor>),
        (train, final_only): (bool, bool),
        packed: Option<&Arc<PackedSteps>>,
    ) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
        let b = match packed {
            Some(p) => p.lengths.len(),
            None => x.dim(0)?,
        };
        let params: Vec<Vec<Tensor>> = weights.iter().map(|w| w.params()).collect();
        let s0 = self.initial_state(x, (b, weights.len()), (h0, c0))?;
        let mode = (train, SequenceOutput::when_final(final_only));
        let seq = fused::sequence(self.family, x, &params, &s0, mode, packed)?;
        let (h_n, c_n) = self.split_state(&seq.states)?;
        Ok((seq.out, h_n, c_n))
    }

    /// The fused op's final states, laid out as its initial state `(D, B, [h | c])`,
    /// split into `h_n` and (for a family with a cell) `c_n`, each `(D, B, ·)`.
    fn split_state(&self, states: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let (hidden, out) = (self.config.hidden_size, self.config.output_size());
        let c_n = self
            .family
            .has_cell()
            .then(|| states.narrow(2, out, hidden))
            .transpose()?;
        Ok((states.narrow(2, 0, out)?, c_n))
    }

    /// A layer's initial state as the fused op reads it, `(D, B, [h | c])`: the given `h0`
    /// and `c0` (each `(D, B, ·)`), zeros where they are `None`.
    fn initial_state(
        &self,
        x: &Tensor,
        (b, dirs): (usize, usize),
        (h0, c0): (Option<Tensor>, Option<Tensor>),
    ) -> Result<Tensor> {
        let (hidden, out) = (self.config.hidden_size, self.config.output_size());
        let zeros = |width| Tensor::zeros((dirs, b, width), x.dtype(), x.device());
        Ok(match (h0, self.family.has_cell()) {
            (None, false) => zeros(out)?,
            (Some(h), false) => h,
            (h, true) => {
                let h = h.map_or_else(|| zeros(out), Ok)?;
                let c = c0.map_or_else(|| zeros(hidden), Ok)?;
                Tensor::cat(&[h, c], 2)?
            }
        })
    }

    /// One layer step by step with candle ops: `(sequence, h_n, c_n)`; with `mask`
    /// `(B, T)`, each row stops at its last real step.
    fn reference_layer(
        &self,
        weights: &[DirectionWeights],
        x: &Tensor,
        (h0, c0): (Option<Tensor>, Option<Tensor>),
        final_only: bool,
        mask: Option<&Tensor>,
    ) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
        let b = x.dim(0)?;
        let (hidden, out) = (self.config.hidden_size, self.config.output_size());
        let zeros = |width| Tensor::zeros((b, width), x.dtype(), x.device());
        let (mut seqs, mut hs, mut cs) = (Vec::new(), Vec::new(), Vec::new());
        for (d, w) in weights.iter().enumerate() {
            let start =
                |s: &Option<Tensor>, width| s.as_ref().map_or_else(|| zeros(width), |s| s.i(d));
            let c_start = start(&c0, hidden)?;
            let c_start = self.family.has_cell().then_some(&c_start);
            let reverse = d == 1;
            let run = reference::Direction::new(self.family, w, reverse).with_mask(mask);
            let run = run.steps(x, &start(&h0, out)?, c_start, None)?;
            let steps = run.steps;
            hs.push(run.h_n);
            cs.extend(run.c_n);
            if !final_only {
                seqs.push(Tensor::stack(&steps, 1)?);
            }
        }
        let seq = match seqs.is_empty() {
            true => None,
            false => Some(Tensor::cat(&seqs, D::Minus1)?),
        };
        let c_n = match cs.is_empty() {
            true => None,
            false => Some(Tensor::stack(&cs, 0)?),
        };
        Ok((seq, Tensor::stack(&hs, 0)?, c_n))
    }

    /// The hidden state of every step of the last layer, in time order, each `(B, H)`, of
    /// a unidirectional stack: the layers below run without dropout (and can be
    /// differentiated), the last one step by step with candle ops. With `taps` (one zero variable `(B, H)` per step) the state
    /// of step `t` is the computed one plus `taps[t]`, and the recurrence continues from
    /// that sum, so the gradient of `taps[t]` is `∂L/∂h_t`.
    pub fn last_layer_steps(
        &self,
        x: &Tensor,
        (h0, c0): (Option<&Tensor>, Option<&Tensor>),
        taps: Option<&[Var]>,
    ) -> Result<Vec<Tensor>> {
        self.check(x, h0, c0)?;
        let name = labels(self.family)[0].split(' ').next().unwrap_or("model");
        if self.config.bidirectional {
            return Err(LstmError::Config(format!(
                "{name}: per-step states are for unidirectional models only"
            )));
        }
        let Some((last, below)) = self.layers.split_last() else {
            return Err(LstmError::Config(format!("{name} has no layers")));
        };
        let n = below.len();
        let input = match n {
            0 => x.clone(),
            _ => {
                let lower = |s: Option<&Tensor>| s.map(|s| s.narrow(0, 0, n)).transpose();
                let (h, c) = (lower(h0)?, lower(c0)?);
                let start = (h.as_ref(), c.as_ref());
                let run = self.run_layers(below, x, start, (0.0, true), false, Lengths::Full)?;
                run.out
                    .ok_or_else(|| LstmError::Config("no output sequence".into()))?
            }
        };
        let b = x.dim(0)?;
        let (hidden, out) = (self.config.hidden_size, self.config.output_size());
        let start = |s: Option<&Tensor>, width| match s {
            Some(s) => s.i(n),
            None => Tensor::zeros((b, width), x.dtype(), x.device()),
        };
        let c_start = start(c0, hidden)?;
        let c_start = self.family.has_cell().then_some(&c_start);
        let run = reference::Direction::new(self.family, &last[0], false);
        Ok(run.steps(&input, &start(h0, out)?, c_start, taps)?.steps)
    }
}

/// Per-step zero variables `(B, H)`, one per time step of `x`, to add to the hidden
/// states so that their gradients are `∂L/∂h_t` (candle keeps gradients of variables
/// only).
fn zero_taps(x: &Tensor, hidden: usize) -> Result<Vec<Var>> {
    let b = x.dim(0)?;
    (0..x.dim(1)?)
        .map(|_| Ok(Var::zeros((b, hidden), x.dtype(), x.device())?))
        .collect()
}

#[cfg(test)]
mod tests;
