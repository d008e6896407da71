//! The definition every fused kernel is tested against: one direction of one layer, step
//! by step with plain candle ops. Also the path on devices the fused op does not cover.

use candle_core::{IndexOp, Tensor, Var};

use super::{DirectionWeights, Family, Nonlinearity};
use crate::error::Result;
use crate::LstmState;

/// One direction of one layer of a family.
pub(crate) struct Direction<'a> {
    family: Family,
    w: &'a DirectionWeights,
    reverse: bool,
    /// `(B, T)` u8, 1 at each row's real steps: a row's state holds still past its
    /// length and its outputs there are zero.
    mask: Option<&'a Tensor>,
}

/// What [`Direction::steps`] returns.
pub(crate) struct Steps {
    /// The hidden state of every step in time order, each `(B, H)` (zero past a row's
    /// length).
    pub steps: Vec<Tensor>,
    /// Each row's hidden state after its last step, `(B, H)`.
    pub h_n: Tensor,
    /// The same for the cell state, for the LSTM.
    pub c_n: Option<Tensor>,
}

impl<'a> Direction<'a> {
    pub fn new(family: Family, w: &'a DirectionWeights, reverse: bool) -> Self {
        Self {
            family,
            w,
            reverse,
            mask: None,
        }
    }

    /// Runs rows of different lengths, marked by `mask` `(B, T)` (padded steps are
    /// never read).
    pub fn with_mask(mut self, mask: Option<&'a Tensor>) -> Self {
        self.mask = mask;
        self
    }

    /// Runs `x (B, T, in)` from `h0 (B, H)` (and `c0` for the LSTM).
    ///
    /// With `taps` (one zero variable `(B, H)` per step, in time order) the state of step
    /// `t` is the computed one plus `taps[t]`, and the recurrence continues from that sum.
    pub fn steps(
        &self,
        x: &Tensor,
        h0: &Tensor,
        c0: Option<&Tensor>,
        taps: Option<&[Var]>,
    ) -> Result<Steps> {
        let (b, t, i) = x.dims3()?;
        // Padded steps are never read: zero them, so that nothing there (NaN included)
        // reaches the numbers or the gradients.
        let x = match self.mask {
            Some(m) => {
                let m = m.unsqueeze(2)?.broadcast_as(x.shape())?;
                m.where_cond(x, &x.zeros_like()?)?
            }
            None => x.clone(),
        };
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
        let zeros = h0.zeros_like()?;
        for step in 0..t {
            let ti = if self.reverse { t - 1 - step } else { step };
            let xt = xp.i((.., ti, ..))?;
            let keep_t = match self.mask {
                Some(m) => Some(m.i((.., ti))?.unsqueeze(1)?),
                None => None,
            };
            let keep = keep_t
                .as_ref()
                .map(|k| k.broadcast_as(h.shape()))
                .transpose()?;
            let h_next = match (self.family, &c) {
                (Family::Lstm, Some(c_prev)) => {
                    let gates = (xt + h.matmul(&w_hh_t)?)?;
                    let mut next = lstm_update(&gates, c_prev)?;
                    if let Some(w_hr) = &w.w_hr {
                        // A projected LSTM: h = W_hr (o ⊙ tanh c).
                        next.h = next.h.matmul(&w_hr.t()?)?;
                    }
                    c = Some(match &keep_t {
                        Some(k) => k
                            .broadcast_as(c_prev.shape())?
                            .where_cond(&next.c, c_prev)?,
                        None => next.c,
                    });
                    next.h
                }
                (Family::Gru, _) => {
                    let gh = h.matmul(&w_hh_t)?.broadcast_add(&w.b_hh)?;
                    gru_update(&xt, &gh, &h)?
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
            let h_next = match taps {
                Some(taps) => (h_next + taps[ti].as_tensor())?,
                None => h_next,
            };
            match &keep {
                Some(k) => {
                    h = k.where_cond(&h_next, &h)?;
                    states[ti] = Some(k.where_cond(&h_next, &zeros)?);
                }
                None => {
                    h = h_next;
                    states[ti] = Some(h.clone());
                }
            }
        }
        Ok(Steps {
            steps: states.into_iter().flatten().collect(),
            h_n: h,
            c_n: c,
        })
    }
}

/// The LSTM update from the gates `(B, 4H)` of one step (i, f, g, o) and `c`, with plain
/// candle ops: the definition the fused kernel is tested against.
pub(crate) fn lstm_update(gates: &Tensor, c: &Tensor) -> Result<LstmState> {
    let chunks = gates.chunk(4, 1)?;
    let i = candle_nn::ops::sigmoid(&chunks[0])?;
    let f = candle_nn::ops::sigmoid(&chunks[1])?;
    let g = chunks[2].tanh()?;
    let o = candle_nn::ops::sigmoid(&chunks[3])?;
    // c' = f ⊙ c + i ⊙ g
    let c_next = ((f * c)? + (i * g)?)?;
    // h' = o ⊙ tanh(c')
    let h_next = (o * c_next.tanh()?)?;
    Ok(LstmState {
        h: h_next,
        c: c_next,
    })
}

/// The GRU update from the input and hidden projections of one step.
///
/// `gi = W_i x + b_i` and `gh = W_h h + b_h` are `(B, 3H)`, gate blocks ordered r, z, n as
/// PyTorch's; `h` is `(B, H)`. Returns `h'`:
///
/// ```text
/// r  = σ(W_ir x + b_ir + W_hr h + b_hr)
/// z  = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 − z) ⊙ n + z ⊙ h
/// ```
pub(crate) fn gru_update(gi: &Tensor, gh: &Tensor, h: &Tensor) -> Result<Tensor> {
    let hidden = h.dim(1)?;
    let rz =
        candle_nn::ops::sigmoid(&(gi.narrow(1, 0, 2 * hidden)? + gh.narrow(1, 0, 2 * hidden)?)?)?;
    let r = rz.narrow(1, 0, hidden)?;
    let z = rz.narrow(1, hidden, hidden)?;
    let n =
        (gi.narrow(1, 2 * hidden, hidden)? + (r * gh.narrow(1, 2 * hidden, hidden)?)?)?.tanh()?;
    // (1 − z) ⊙ n + z ⊙ h, rearranged as n + z ⊙ (h − n) (one operation fewer).
    Ok((&n + (z * (h - &n)?)?)?)
}
