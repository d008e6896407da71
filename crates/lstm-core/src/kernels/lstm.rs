//! The LSTM step: gates i, f, g, o (PyTorch's order), state `(h, c)`.

use super::math::{sigmoid, tanh};
use super::Rows;

/// The LSTM family. Each step saves `[c' | tanh(c')]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LstmRows;

impl Rows for LstmRows {
    const GATES: usize = 4;
    const CELL: bool = true;
    const SPLIT: bool = false;
    const SAVED: usize = 2;

    /// The chapter's equations, on pre-activations `a = W_ih x + b_ih + W_hh h + b_hh`:
    ///
    /// ```text
    /// i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    /// c' = f ⊙ c + i ⊙ g
    /// h' = o ⊙ tanh(c')
    /// ```
    #[inline(always)]
    fn forward(
        self,
        gates: &mut [f32],
        _hid: &[f32],
        _h_prev: &[f32],
        c_prev: &[f32],
        h_out: &mut [f32],
        saved: &mut [f32],
    ) {
        // Simple passes over one or two slices each, which LLVM vectorises reliably.
        let h = c_prev.len();
        let (ifg, go) = gates[..4 * h].split_at_mut(3 * h);
        let (if_, gg) = ifg.split_at_mut(2 * h);
        let (c_out, tanh_c) = saved[..2 * h].split_at_mut(h);
        // i = σ(a_i), f = σ(a_f), o = σ(a_o), g = tanh(a_g)
        for v in if_.iter_mut() {
            *v = sigmoid(*v);
        }
        for v in go.iter_mut() {
            *v = sigmoid(*v);
        }
        for v in gg.iter_mut() {
            *v = tanh(*v);
        }
        let (gi, gf) = if_.split_at(h);
        // c' = f ⊙ c + i ⊙ g
        for (((c, &f), &cp), (&i, &g)) in c_out
            .iter_mut()
            .zip(gf)
            .zip(c_prev)
            .zip(gi.iter().zip(gg.iter()))
        {
            *c = f.mul_add(cp, i * g);
        }
        // h' = o ⊙ tanh(c')
        for ((tc, &c), (ho, &o)) in tanh_c
            .iter_mut()
            .zip(c_out.iter())
            .zip(h_out[..h].iter_mut().zip(go.iter()))
        {
            *tc = tanh(c);
            *ho = o * *tc;
        }
    }

    #[inline(always)]
    fn backward(
        self,
        dh: &[f32],
        dc: &mut [f32],
        gates: &mut [f32],
        _d_hid: &mut [f32],
        saved: &[f32],
        _h_prev: &[f32],
        c_prev: &[f32],
        _dh_prev: &mut [f32],
    ) {
        let h = c_prev.len();
        let (gi, rest) = gates[..4 * h].split_at_mut(h);
        let (gf, rest) = rest.split_at_mut(h);
        let (gg, go) = rest.split_at_mut(h);
        let (dh, dc, tanh_c, go) = (&dh[..h], &mut dc[..h], &saved[h..2 * h], &mut go[..h]);
        // dc += dh ⊙ o ⊙ (1 − tanh²(c'))   (through h' = o ⊙ tanh(c'))
        // d a_o = dh ⊙ tanh(c') ⊙ o(1 − o)
        for j in 0..h {
            let (o, tc) = (go[j], tanh_c[j]);
            dc[j] += dh[j] * o * (1.0 - tc * tc);
            go[j] = dh[j] * tc * o * (1.0 - o);
        }
        // Through c' = f ⊙ c + i ⊙ g:  d a_i = dc ⊙ g ⊙ i(1 − i),  d a_g = dc ⊙ i ⊙ (1 − g²)
        for ((i, g), &dc) in gi.iter_mut().zip(gg.iter_mut()).zip(dc.iter()) {
            let (iv, gv) = (*i, *g);
            *i = dc * gv * iv * (1.0 - iv);
            *g = dc * iv * (1.0 - gv * gv);
        }
        // d a_f = dc ⊙ c ⊙ f(1 − f);  dc_prev = dc ⊙ f
        for ((f, dc), &cp) in gf.iter_mut().zip(dc.iter_mut()).zip(&c_prev[..h]) {
            let fv = *f;
            *f = *dc * cp * fv * (1.0 - fv);
            *dc *= fv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_matches_finite_differences() {
        for (h, seed) in [(1, 0.0), (3, 1.0), (17, 2.5)] {
            super::super::check_finite_differences(LstmRows, h, seed);
        }
    }
}
