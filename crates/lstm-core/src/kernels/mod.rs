//! The per-row kernels of the fused recurrent op: what one step of each recurrent family
//! computes for one batch row, forward and backward, on plain `f32` slices.
//!
//! A family is a [`Rows`] implementation ([`LstmRows`], [`GruRows`], [`RnnRows`]); the
//! time loop that calls it ([`crate::fused`]) is written once. The kernels are
//! `#[inline(always)]` so that the loop, compiled once per instruction set (AVX-512,
//! AVX2/FMA, baseline) and picked at run time, vectorises them with the best one.

mod gru;
mod lanes;
mod lstm;
pub mod math;
mod rnn;

pub(crate) use gru::GruRows;
pub(crate) use lanes::Lanes;
#[cfg(target_arch = "x86_64")]
pub(crate) use lanes::{F32x16, F32x8};
pub(crate) use lstm::{cell, denominators_of, LstmRows};
pub(crate) use math::tanh_of;
pub(crate) use rnn::RnnRows;

/// One recurrent family's step, for one batch row of hidden size `H`.
///
/// Slices, all of one row:
/// - `gates` (`GATES·H`): on entry to [`Rows::forward`] the gate pre-activations from the
///   input (`W_ih x + b_ih`, plus the recurrent part `W_hh h + b_hh` when the family is not
///   [`Rows::SPLIT`]); on exit the activations the backward pass needs. [`Rows::backward`]
///   overwrites them with the gradient of the input pre-activations.
/// - `hid` (`GATES·H`, [`Rows::SPLIT`] families only, else empty): the recurrent
///   pre-activations `W_hh h + b_hh`, kept apart.
/// - `saved` (`SAVED·H`): what the step keeps beside `h` (the LSTM's `c` comes first).
/// - `h_prev`, `c_prev` (`H`; `c_prev` empty without [`Rows::CELL`]): the previous state.
pub(crate) trait Rows: Copy + Send + Sync + 'static {
    /// Gate blocks per step: 4 (LSTM), 3 (GRU), 1 (RNN).
    const GATES: usize;
    /// Whether the state has a cell part `c` besides `h` (the LSTM).
    const CELL: bool;
    /// Whether the recurrent projection stays apart from the input one (the GRU, whose
    /// `n` gate multiplies `W_hn h + b_hn` by `r`).
    const SPLIT: bool;
    /// Floats per `H` each step saves beside `h`.
    const SAVED: usize;
    /// Whether the fused op's gate tiles (`fused/gate_tiles`) compute this family's step,
    /// products and cell in one kernel (the LSTM's).
    const TILES: bool = false;

    /// One step forward: writes `h` and `saved`, leaves the activations in `gates`.
    fn forward(
        self,
        gates: &mut [f32],
        hid: &[f32],
        h_prev: &[f32],
        c_prev: &[f32],
        h: &mut [f32],
        saved: &mut [f32],
    );

    /// One step forward without a backward pass to come: as [`Rows::forward`], but only
    /// `h` and what the next step reads from `saved` need be written (`gates` and the rest
    /// of `saved` may be left as they are).
    #[inline(always)]
    fn infer(
        self,
        gates: &mut [f32],
        hid: &[f32],
        h_prev: &[f32],
        c_prev: &[f32],
        h: &mut [f32],
        saved: &mut [f32],
    ) {
        self.forward(gates, hid, h_prev, c_prev, h, saved)
    }

    /// The kernel as the column split's blocks of units run it (`fused/columns.rs`):
    /// the same numbers, with its loops laid out as they run fastest there.
    fn in_blocks(self) -> Self {
        self
    }

    /// One step backward.
    ///
    /// - `dh`: the whole gradient reaching `h` (from the output and from the next step);
    /// - `dc`: with [`Rows::CELL`], the gradient reaching `c` on entry, that reaching
    ///   `c_prev` on exit;
    /// - `gates`: activations in, gradient of the input pre-activations out;
    /// - `d_hid`: with [`Rows::SPLIT`], receives the gradient of the recurrent
    ///   pre-activations (otherwise it equals `gates`' and the slice is empty);
    /// - `dh_prev`: with [`Rows::SPLIT`], receives the direct part of the gradient of
    ///   `h_prev` (the recurrent GEMM then adds `d_hid · W_hh`); untouched otherwise.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        self,
        dh: &[f32],
        dc: &mut [f32],
        gates: &mut [f32],
        d_hid: &mut [f32],
        saved: &[f32],
        h_prev: &[f32],
        c_prev: &[f32],
        dh_prev: &mut [f32],
    );
}

/// Checks a family's [`Rows::backward`] against central finite differences of
/// [`Rows::forward`], for every input of the step, on a loss `Σ wh ⊙ h' + Σ wc ⊙ c'`.
#[cfg(test)]
pub(crate) fn check_finite_differences<R: Rows>(rows: R, h: usize, seed: f32) {
    let g = R::GATES * h;
    let value = |k: usize, scale: f32| {
        // Deterministic values away from 0 (ReLU's kink).
        let v = ((k as f32 + seed) * 0.737).sin() * scale;
        if v.abs() < 0.05 {
            v + 0.1
        } else {
            v
        }
    };
    let pre: Vec<f32> = (0..g).map(|k| value(k, 1.5)).collect();
    let hid: Vec<f32> = if R::SPLIT {
        (0..g).map(|k| value(k + 100, 1.2)).collect()
    } else {
        Vec::new()
    };
    let h_prev: Vec<f32> = (0..h).map(|k| value(k + 200, 0.8)).collect();
    let c_prev: Vec<f32> = if R::CELL {
        (0..h).map(|k| value(k + 300, 0.9)).collect()
    } else {
        Vec::new()
    };
    let wh: Vec<f32> = (0..h).map(|k| value(k + 400, 1.0)).collect();
    let wc: Vec<f32> = (0..h).map(|k| value(k + 500, 1.0)).collect();
    let forward = |pre: &[f32], hid: &[f32], h_prev: &[f32], c_prev: &[f32]| {
        let (mut gates, mut out, mut saved) =
            (pre.to_vec(), vec![0f32; h], vec![0f32; R::SAVED * h]);
        rows.forward(&mut gates, hid, h_prev, c_prev, &mut out, &mut saved);
        (gates, out, saved)
    };
    let loss = |pre: &[f32], hid: &[f32], h_prev: &[f32], c_prev: &[f32]| -> f64 {
        let (_, out, saved) = forward(pre, hid, h_prev, c_prev);
        let mut l: f64 = (0..h).map(|j| (wh[j] * out[j]) as f64).sum();
        if R::CELL {
            l += (0..h).map(|j| (wc[j] * saved[j]) as f64).sum::<f64>();
        }
        l
    };
    let (mut gates, _, saved) = forward(&pre, &hid, &h_prev, &c_prev);
    let mut dc = if R::CELL { wc.clone() } else { Vec::new() };
    let mut d_hid = vec![0f32; if R::SPLIT { g } else { 0 }];
    let mut dh_prev = vec![0f32; h];
    rows.backward(
        &wh,
        &mut dc,
        &mut gates,
        &mut d_hid,
        &saved,
        &h_prev,
        &c_prev,
        &mut dh_prev,
    );
    let eps = 1e-3f32;
    let numeric = |which: usize, k: usize| -> f64 {
        let mut args = [pre.clone(), hid.clone(), h_prev.clone(), c_prev.clone()];
        args[which][k] += eps;
        let plus = loss(&args[0], &args[1], &args[2], &args[3]);
        args[which][k] -= 2.0 * eps;
        let minus = loss(&args[0], &args[1], &args[2], &args[3]);
        (plus - minus) / (2.0 * eps as f64)
    };
    let close = |what: &str, k: usize, num: f64, analytic: f32| {
        assert!(
            (num - analytic as f64).abs() < 2e-3,
            "{what}[{k}]: finite difference {num}, backward {analytic}"
        );
    };
    for k in 0..g {
        close("d input pre-activation", k, numeric(0, k), gates[k]);
        if R::SPLIT {
            close("d recurrent pre-activation", k, numeric(1, k), d_hid[k]);
        }
    }
    for k in 0..h {
        // Without SPLIT, h_prev reaches the step through the pre-activations only.
        close("d h_prev (direct)", k, numeric(2, k), dh_prev[k]);
        if R::CELL {
            close("d c_prev", k, numeric(3, k), dc[k]);
        }
    }
}
