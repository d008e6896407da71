//! Plumbing shared by the stacked single-state models, [`crate::Gru`] and [`crate::Rnn`]:
//! parameter loading, the initial state, and the loop over layers and
//! directions. Only the recurrence of one direction differs between them.

use candle_core::{IndexOp, Tensor, Var, D};
use candle_nn::VarBuilder;

use crate::error::{check_shape, LstmError, Result};
use crate::lstm::{direction_suffixes, DirectionWeights};

/// Loads `layers[k][d]` (layer `k`, direction `d`) with `gates` gate blocks each, under
/// PyTorch's names (`weight_ih_l{k}`, …, `_reverse` for the backward direction).
pub(crate) fn load_layers(
    vb: &VarBuilder,
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    bidirectional: bool,
    gates: usize,
) -> Result<Vec<Vec<DirectionWeights>>> {
    let dirs = direction_suffixes(bidirectional);
    (0..num_layers)
        .map(|layer| {
            let input = if layer == 0 {
                input_size
            } else {
                hidden_size * dirs.len()
            };
            dirs.iter()
                .map(|suffix| DirectionWeights::load(vb, layer, suffix, input, hidden_size, gates))
                .collect::<Result<Vec<_>>>()
        })
        .collect()
}

/// Checks `x` against `(B, T, input_size)` with `T > 0` and returns `(B, T)`.
pub(crate) fn check_input(
    what: &'static str,
    x: &Tensor,
    input_size: usize,
) -> Result<(usize, usize)> {
    let (b, t, _) = x.dims3()?;
    check_shape(what, x.dims(), &[b, t, input_size])?;
    if t == 0 {
        return Err(LstmError::Config(format!("{what} has no time steps")));
    }
    Ok((b, t))
}

/// The initial state `(slots, B, H)`: `h0` after a shape check, or zeros.
pub(crate) fn initial_state(
    what: &'static str,
    h0: Option<&Tensor>,
    shape: [usize; 3],
    x: &Tensor,
) -> Result<Tensor> {
    match h0 {
        Some(h0) => {
            check_shape(what, h0.dims(), &shape)?;
            Ok(h0.clone())
        }
        None => Ok(Tensor::zeros(&shape, x.dtype(), x.device())?),
    }
}

/// Per-step zero variables `(B, H)`, one per time step, to add to the hidden states so
/// that their gradients are `∂L/∂h_t` (candle keeps gradients of variables only).
pub(crate) fn zero_taps(x: &Tensor, batch: usize, hidden: usize) -> Result<Vec<Var>> {
    (0..x.dim(1)?)
        .map(|_| Ok(Var::zeros((batch, hidden), x.dtype(), x.device())?))
        .collect()
}

/// One direction of one layer: `(w, x (B, T, in), h0 (B, H), reverse, taps)` → the hidden
/// states of every step in time order, each `(B, H)`; the last one run is the final state.
///
/// With `taps` (one zero variable `(B, H)` per step, in time order) the state of step `t`
/// is the computed one plus `taps[t]`, and the recurrence continues from that sum.
pub(crate) type Direction =
    fn(&DirectionWeights, &Tensor, &Tensor, bool, Option<&[Var]>) -> Result<Vec<Tensor>>;

/// Runs every layer and direction: returns the last layer's outputs `(B, T, D·H)` and the
/// final states `(layers·D, B, H)`. Dropout is applied between layers when `train`.
pub(crate) fn run_stacked(
    layers: &[Vec<DirectionWeights>],
    x: &Tensor,
    h0: &Tensor,
    dropout: f32,
    train: bool,
    direction: Direction,
) -> Result<(Tensor, Tensor)> {
    let t = x.dim(1)?;
    let mut input = x.clone();
    let mut h_n = Vec::with_capacity(h0.dim(0)?);
    for (layer, weights) in layers.iter().enumerate() {
        let dirs = weights.len();
        let mut outputs = Vec::with_capacity(dirs);
        for (d, w) in weights.iter().enumerate() {
            let reverse = d == 1;
            let steps = direction(w, &input, &h0.i(layer * dirs + d)?, reverse, None)?;
            h_n.push(steps[if reverse { 0 } else { t - 1 }].clone());
            outputs.push(Tensor::stack(&steps, 1)?);
        }
        input = if dirs == 1 {
            outputs.remove(0)
        } else {
            Tensor::cat(&outputs, D::Minus1)?
        };
        if train && dropout > 0.0 && layer + 1 < layers.len() {
            input = candle_nn::ops::dropout(&input, dropout)?;
        }
    }
    Ok((input, Tensor::stack(&h_n, 0)?))
}

/// The per-step hidden states of the last layer of a unidirectional model, each `(B, H)`.
///
/// The layers below run as in inference (no dropout). With `taps`, see [`Direction`].
pub(crate) fn last_layer_steps(
    kind: &str,
    layers: &[Vec<DirectionWeights>],
    x: &Tensor,
    h0: &Tensor,
    direction: Direction,
    taps: Option<&[Var]>,
) -> Result<Vec<Tensor>> {
    let Some((last, below)) = layers.split_last() else {
        return Err(LstmError::Config(format!("{kind} has no layers")));
    };
    if last.len() != 1 {
        return Err(LstmError::Config(format!(
            "{kind}: per-step states are for unidirectional models only"
        )));
    }
    let input = if below.is_empty() {
        x.clone()
    } else {
        run_stacked(
            below,
            x,
            &h0.narrow(0, 0, below.len())?,
            0.0,
            false,
            direction,
        )?
        .0
    };
    direction(&last[0], &input, &h0.i(below.len())?, false, taps)
}
