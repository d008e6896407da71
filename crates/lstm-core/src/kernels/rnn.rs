//! The plain (Elman) RNN step, `h' = act(W_ih x + b_ih + W_hh h + b_hh)`.

use super::math::tanh;
use super::Rows;

/// The RNN family with a tanh or a ReLU non-linearity (`nn.RNN`'s `nonlinearity`). The
/// activation `h'` itself is all the backward pass needs, so nothing else is saved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RnnRows {
    /// ReLU instead of tanh.
    pub relu: bool,
}

impl Rows for RnnRows {
    const GATES: usize = 1;
    const CELL: bool = false;
    const SPLIT: bool = false;
    const SAVED: usize = 0;

    #[inline(always)]
    fn forward(
        self,
        gates: &mut [f32],
        _hid: &[f32],
        h_prev: &[f32],
        _c_prev: &[f32],
        h_out: &mut [f32],
        _saved: &mut [f32],
    ) {
        let h = h_prev.len();
        let pre = &mut gates[..h];
        if self.relu {
            for v in pre.iter_mut() {
                *v = v.max(0.0);
            }
        } else {
            for v in pre.iter_mut() {
                *v = tanh(*v);
            }
        }
        h_out[..h].copy_from_slice(pre);
    }

    #[inline(always)]
    fn backward(
        self,
        dh: &[f32],
        _dc: &mut [f32],
        gates: &mut [f32],
        _d_hid: &mut [f32],
        _saved: &[f32],
        h_prev: &[f32],
        _c_prev: &[f32],
        _dh_prev: &mut [f32],
    ) {
        let h = h_prev.len();
        let (act, dh) = (&mut gates[..h], &dh[..h]);
        if self.relu {
            for (a, &d) in act.iter_mut().zip(dh) {
                *a = if *a > 0.0 { d } else { 0.0 };
            }
        } else {
            // tanh' = 1 − h'²
            for (a, &d) in act.iter_mut().zip(dh) {
                *a = d * (1.0 - *a * *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_matches_finite_differences() {
        for relu in [false, true] {
            for (h, seed) in [(1, 0.0), (3, 1.0), (17, 2.5)] {
                super::super::check_finite_differences(RnnRows { relu }, h, seed);
            }
        }
    }
}
