//! The definition every fused kernel is tested against: one direction of one layer, step
//! by step with plain candle ops. Also the path on devices the fused op does not cover.

use candle_core::{IndexOp, Tensor, Var};

use super::{DirectionWeights, Family, Nonlinearity};
use crate::error::Result;

/// One direction of one layer of a family.
pub(crate) struct Direction<'a> {
    family: Family,
    w: &'a DirectionWeights,
    reverse: bool,
}

impl<'a> Direction<'a> {
    pub fn new(family: Family, w: &'a DirectionWeights, reverse: bool) -> Self {
        Self { family, w, reverse }
    }

    /// Runs `x (B, T, in)` from `h0 (B, H)` (and `c0` for the LSTM): the hidden state of
    /// every step in time order, each `(B, H)`, and the final cell state.
    ///
    /// With `taps` (one zero variable `(B, H)` per step, in time order) the state of step
    /// `t` is the computed one plus `taps[t]`, and the recurrence continues from that sum.
    pub fn steps(
        &self,
        x: &Tensor,
        h0: &Tensor,
        c0: Option<&Tensor>,
        taps: Option<&[Var]>,
    ) -> Result<(Vec<Tensor>, Option<Tensor>)> {
        let (b, t, i) = x.dims3()?;
        let w = self.w;
        let rows = w.w_ih.dim(0)?;
        // The input projection of every step at once; the GRU keeps b_hh for its n gate.
        let bias = match self.family {
            Family::Gru => w.b_ih.clone(),
            _ => (&w.b_ih + &w.b_hh)?,
        };
        let xp = x
            .reshape((b * t, i))?
            .matmul(&w.w_ih.t()?)?
            .broadcast_add(&bias)?
            .reshape((b, t, rows))?;
        let w_hh_t = w.w_hh.t()?;
        let (mut h, mut c) = (h0.clone(), c0.cloned());
        let mut states = vec![None; t];
        for step in 0..t {
            let ti = if self.reverse { t - 1 - step } else { step };
            let xt = xp.i((.., ti, ..))?;
            h = match (self.family, &c) {
                (Family::Lstm, Some(c_prev)) => {
                    let gates = (xt + h.matmul(&w_hh_t)?)?;
                    let next = crate::cell::reference_update(&gates, c_prev)?;
                    c = Some(next.c);
                    next.h
                }
                (Family::Gru, _) => {
                    let gh = h.matmul(&w_hh_t)?.broadcast_add(&w.b_hh)?;
                    crate::gru::gru_update(&xt, &gh, &h)?
                }
                (Family::Rnn(nl), _) => {
                    // h' = act(W_ih x + b_ih + W_hh h + b_hh)
                    let pre = (xt + h.matmul(&w_hh_t)?)?;
                    match nl {
                        Nonlinearity::Tanh => pre.tanh()?,
                        Nonlinearity::Relu => pre.relu()?,
                    }
                }
                (Family::Lstm, None) => {
                    return Err(crate::LstmError::Config(
                        "an LSTM needs a cell state".into(),
                    ))
                }
            };
            if let Some(taps) = taps {
                h = (h + taps[ti].as_tensor())?;
            }
            states[ti] = Some(h.clone());
        }
        Ok((states.into_iter().flatten().collect(), c))
    }
}
