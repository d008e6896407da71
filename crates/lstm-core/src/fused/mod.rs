//! The fused CPU recurrence: one candle op per layer for every recurrent family, with a
//! hand-written backward pass.
//!
//! - [`sequence`] runs one layer (every direction) over a whole sequence: per step the
//!   input projection `x_t W_ihᵀ`, one GEMM `h W_hhᵀ` accumulated onto it and the
//!   family's vectorised gate kernel ([`crate::kernels`]). The batch is
//!   split into blocks of rows, one per thread, and with two directions each direction
//!   runs on its own threads; a block runs its whole recurrence on one thread, so steps
//!   need no synchronisation, except that a thread out of work takes over half the rows
//!   of the block with the most left, for the steps its owner has not started
//!   ([`steal`]). The backward pass is back-propagation through time in the same
//!   blocks, then the weight gradients as single GEMMs over all steps, their depth split
//!   by the same blocks where the partial sums are small ([`task_grads`]). Inference at
//!   large hidden sizes splits each step by gate columns instead ([`columns`]).
//!
//! Inference of stacked one-direction layers over a batch too small to split runs the
//! layers at once instead, each on its own thread, a step behind the one below
//! ([`wavefront`]).
//!
//! The ops are registered with candle's `apply_op*`, so autograd flows through them.

mod buffers;
mod columns;
mod gate_tiles;
mod layout;
mod link;
mod live;
mod matmul;
mod op;
mod panels;
mod pass;
mod positions;
mod recurrence;
mod steal;
mod steps;
mod task_grads;
mod tasks;
pub(crate) mod wavefront;
mod weight_grads;

use std::sync::Arc;

use candle_core::{DType, Result, Tensor};

use crate::engine::config::Family;
use crate::kernels::{GruRows, LstmRows, RnnRows, Rows};
use link::{FinalStatesOp, Link};
use op::{SequenceOp, WeightSource};

#[cfg(test)]
pub(crate) use buffers::threads;
pub(crate) use positions::PackedSteps;
pub(crate) use recurrence::{isa, Isa};
#[cfg(test)]
pub(crate) use steal::test_hook as steal_test_hook;

/// What [`sequence`] returns besides the final states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SequenceOutput {
    /// The hidden states of every step, `(B, T, D·H)`, and the final states.
    All,
    /// The final states only: the per-step states stay inside the op, so a model that
    /// reads only the last state (a classifier) moves no `(B, T, ·)` gradient through
    /// candle.
    Final,
}

impl SequenceOutput {
    /// [`SequenceOutput::Final`] when `final_only`, else [`SequenceOutput::All`].
    pub(crate) fn when_final(final_only: bool) -> Self {
        match final_only {
            true => SequenceOutput::Final,
            false => SequenceOutput::All,
        }
    }
}

/// The result of [`sequence`].
pub(crate) struct Sequence {
    /// `(B, T, D·H)` (packed: `(positions, D·H)`), with [`SequenceOutput::All`].
    pub out: Option<Tensor>,
    /// `(D, B, SW)`, laid out as the initial state: `h_n` (and for the LSTM `c_n`) of
    /// every direction.
    pub states: Tensor,
}

/// Runs one layer of `family` over `x (B, T, I)`, or with `packed` over rows of different
/// lengths packed time-major, `x (positions, I)` ([`PackedSteps`]).
///
/// - `params`: each direction's `[W_ih, W_hh, b_ih, b_hh]`, plus `W_hr (P, H)` for a
///   projected LSTM (1 direction, or 2 for a bidirectional layer, whose second direction
///   runs backwards in time). Training packs them into one operand so that autograd
///   reaches each; inference reads them where they are;
/// - `s0`: `(D, B, SW)`, the initial state (`[h0 | c0]` for the LSTM, `h0` `P` wide);
/// - `train`: keep what the backward pass needs (the result can be differentiated once);
///   inference keeps nothing.
pub(crate) fn sequence(
    family: Family,
    x: &Tensor,
    params: &[Vec<Tensor>],
    s0: &Tensor,
    (train, output): (bool, SequenceOutput),
    packed: Option<&Arc<PackedSteps>>,
) -> Result<Sequence> {
    let contiguous = params.iter().flatten().all(|p| p.is_contiguous());
    if train || !contiguous {
        let weights = pack_directions(params)?;
        let packed_steps = packed.cloned();
        let how = (params.len(), WeightSource::Packed, packed_steps);
        return dispatch(family, x, &weights, s0, how, (train, output));
    }
    let source = WeightSource::Separate(params.to_vec());
    let how = (params.len(), source, packed.cloned());
    dispatch(family, x, &params[0][0], s0, how, (train, output))
}

/// As [`sequence`] over full-length rows, with the parameters already packed: `weights`
/// is `(D·G·H, I + H + 2)`, each direction's `[W_ih | W_hh | b_ih | b_hh]`
/// ([`pack_weights`]) stacked.
pub(crate) fn sequence_with_weights(
    family: Family,
    x: &Tensor,
    weights: &Tensor,
    s0: &Tensor,
    directions: usize,
    train: bool,
    output: SequenceOutput,
) -> Result<Sequence> {
    let how = (directions, WeightSource::Packed, None);
    dispatch(family, x, weights, s0, how, (train, output))
}

/// Evaluates `$body` with `$rows` bound to the [`Rows`] of `$family` (each family's
/// generic code is its own instance).
macro_rules! with_rows {
    ($family:expr, |$rows:ident| $body:expr) => {
        match $family {
            Family::Lstm => {
                let $rows = LstmRows::default();
                $body
            }
            Family::Gru => {
                let $rows = GruRows;
                $body
            }
            Family::Rnn(nl) => {
                let $rows = RnnRows {
                    relu: nl == crate::Nonlinearity::Relu,
                };
                $body
            }
        }
    };
}

/// Directions, where the weights are, and the rows' lengths when they differ.
type How = (usize, WeightSource, Option<Arc<PackedSteps>>);

fn dispatch(
    family: Family,
    x: &Tensor,
    weights: &Tensor,
    s0: &Tensor,
    how: How,
    mode: (bool, SequenceOutput),
) -> Result<Sequence> {
    with_rows!(family, |rows| run(rows, x, weights, s0, how, mode))
}

fn run<R: Rows>(
    rows: R,
    x: &Tensor,
    weights: &Tensor,
    s0: &Tensor,
    (dirs, source, packed): How,
    (train, output): (bool, SequenceOutput),
) -> Result<Sequence> {
    let link = Arc::new(Link::default());
    let op = SequenceOp {
        rows,
        dirs,
        source,
        train,
        input_grad: x.track_op(),
        output,
        link: link.clone(),
        packed,
    };
    let res = x
        .contiguous()?
        .apply_op3(&weights.contiguous()?, &s0.contiguous()?, op)?;
    Ok(match output {
        SequenceOutput::Final => Sequence {
            out: None,
            states: res,
        },
        SequenceOutput::All => {
            let shape = s0.shape().clone();
            let states = res.apply_op1(FinalStatesOp { link, shape })?;
            Sequence {
                out: Some(res),
                states,
            }
        }
    })
}

/// Runs a stack of one-direction layers of `family` for inference in a wavefront
/// ([`wavefront`]): `layers[l]` holds layer `l`'s `[W_ih, W_hh, b_ih, b_hh(, W_hr)]`
/// (contiguous) and `s0[l]` its initial state `(1, B, SW)`. Returns the last layer's
/// sequence `(B, T, P)` (with [`SequenceOutput::All`]) and every layer's final states
/// `(1, B, SW)`, laid out as the initial state.
pub(crate) fn stack_inference(
    family: Family,
    x: &Tensor,
    layers: &[Vec<Tensor>],
    s0: &[Tensor],
    output: SequenceOutput,
) -> Result<(Option<Tensor>, Vec<Tensor>)> {
    with_rows!(family, |rows| wavefront::run(rows, x, layers, s0, output))
}

/// Packs every direction's parameters into the operand [`buffers::DirWeights::packed`]
/// reads: each direction's `[W_ih | W_hh | b_ih | b_hh]`, then each direction's `W_hrᵀ`
/// padded with zeros to the row length. Differentiable.
fn pack_directions(params: &[Vec<Tensor>]) -> Result<Tensor> {
    let mut rows = params
        .iter()
        .map(|p| pack_weights(&p[0], &p[1], &p[2], &p[3]))
        .collect::<Result<Vec<_>>>()?;
    let k = rows[0].dim(1)?;
    for w_hr in params.iter().filter_map(|p| p.get(4)) {
        let (proj, hidden) = w_hr.dims2()?;
        let pad = Tensor::zeros((hidden, k - proj), w_hr.dtype(), w_hr.device())?;
        rows.push(Tensor::cat(&[&w_hr.t()?, &pad], 1)?);
    }
    Tensor::cat(&rows, 0)
}

/// Packs one direction's parameters as `[W_ih | W_hh | b_ih | b_hh]`, `(G·H, I + H + 2)`.
/// Differentiable: gradients flow back to each part.
pub(crate) fn pack_weights(
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
) -> Result<Tensor> {
    Tensor::cat(&[w_ih, w_hh, &b_ih.unsqueeze(1)?, &b_hh.unsqueeze(1)?], 1)
}

/// Whether the fused kernels can run on tensors of this dtype and device.
pub(crate) fn supports(t: &Tensor) -> bool {
    t.dtype() == DType::F32 && t.device().is_cpu()
}
