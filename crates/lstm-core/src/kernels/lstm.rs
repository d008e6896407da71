//! The LSTM step: gates i, f, g, o (PyTorch's order), state `(h, c)`.

use super::lanes::Lanes;
use super::math::{exp_in_range, tanh};
use super::Rows;

/// `e^x` with `x` clamped to ±20, so that a product of four `1 + e^x` stays finite. The
/// gates lose nothing: σ(±20) and tanh(±10) are 0 or ±1 to within 2.1e-9.
#[inline(always)]
fn gate_exp<L: Lanes>(x: L) -> L {
    exp_in_range(x.clamp(-20.0, 20.0))
}

/// The four gates' denominators in place of their pre-activations: `1 + e^{-a}` for i, f
/// and o, and `1 + e^{2a}` for g (`tanh a = 1 − 2 / (1 + e^{2a})`).
///
/// The step runs in three loops over a row, this one, [`cell`] and `tanh(c')`, rather
/// than one: each unit's chain (exponentials, the shared division, `c'`, another
/// exponential and division) was too long for the out-of-order window to overlap many
/// units. On Zen 5 perf put most of the one loop's samples just after its divisions,
/// about 80 cycles per 16 units. With `tanh(c')` apart MNIST-shape inference ran 3.5%
/// faster, with the denominators apart too another 1.5–2% (7 pairs of runs); training
/// did not change. The column split's blocks keep the one loop ([`Rows::in_blocks`]).
///
/// One gate block at a time: four exponentials side by side in one loop need more than
/// the 16 AVX2 registers, and LLVM spilled and reloaded four of them per 8 units (a
/// fifth of the gate kernel's samples on Zen 3). Apart, MNIST-shape inference ran 1–2%
/// faster on Zen 3 (median of 20 paired measurements in one process).
#[inline(always)]
fn denominators(gi: &mut [f32], gf: &mut [f32], gg: &mut [f32], go: &mut [f32]) {
    for block in [gi, gf, go] {
        for a in block.iter_mut() {
            *a = 1.0 + gate_exp(-*a);
        }
    }
    for a in gg.iter_mut() {
        *a = 1.0 + gate_exp(2.0 * *a);
    }
}

/// One unit's [`denominators`] from its four pre-activations (or sixteen units', [`Lanes`]).
#[inline(always)]
pub(crate) fn denominators_of<L: Lanes>(a_i: L, a_f: L, a_g: L, a_o: L) -> (L, L, L, L) {
    let one = L::splat(1.0);
    (
        one + gate_exp(-a_i),
        one + gate_exp(-a_f),
        one + gate_exp(L::splat(2.0) * a_g),
        one + gate_exp(-a_o),
    )
}

/// One unit's activations `(i, f, g, o)` from its gates' [`denominators`], and
/// `c' = f c + i g` (or sixteen units', [`Lanes`]).
#[inline(always)]
pub(crate) fn cell<L: Lanes>(d_i: L, d_f: L, d_g: L, d_o: L, c_prev: L) -> ((L, L, L, L), L) {
    let s = L::splat;
    // The four gates share one division (their denominators' product's reciprocal), the
    // costliest instruction here.
    let (if_, go_) = (d_i * d_f, d_g * d_o);
    let r = s(1.0) / (if_ * go_);
    let (i, f) = (d_f * go_ * r, d_i * go_ * r);
    let (g, o) = (s(1.0) - s(2.0) * (d_o * if_ * r), d_g * if_ * r);
    // c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')
    ((i, f, g, o), f.mul_add(c_prev, i * g))
}

/// The gate blocks `[i | f | g | o]` of one row of `4H` gates.
#[inline(always)]
fn gate_blocks(gates: &mut [f32], h: usize) -> [&mut [f32]; 4] {
    let (gi, rest) = gates[..4 * h].split_at_mut(h);
    let (gf, rest) = rest.split_at_mut(h);
    let (gg, go) = rest.split_at_mut(h);
    [gi, gf, gg, &mut go[..h]]
}

/// The LSTM family. Each step saves `[c' | tanh(c')]`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LstmRows {
    /// Whether [`Rows::infer`] runs in one loop ([`Rows::in_blocks`]): in the column
    /// split's blocks (hidden ≥ 384) the three loops ran slower, 18.3 against 17.1 ms at
    /// batch 32 × hidden 512 × 100 steps on Zen 5 (4 and 5 pairs of runs; two loops:
    /// 25–27 ms).
    one_loop: bool,
}

impl Rows for LstmRows {
    const GATES: usize = 4;
    const CELL: bool = true;
    const SPLIT: bool = false;
    const SAVED: usize = 2;
    const TILES: bool = true;

    fn in_blocks(self) -> Self {
        Self { one_loop: true }
    }

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
        let h = c_prev.len();
        let [gi, gf, gg, go] = gate_blocks(gates, h);
        let (c_out, tanh_c) = saved[..2 * h].split_at_mut(h);
        let h_out = &mut h_out[..h];
        denominators(gi, gf, gg, go);
        for j in 0..h {
            let (gates, c) = cell(gi[j], gf[j], gg[j], go[j], c_prev[j]);
            (gi[j], gf[j], gg[j], go[j]) = gates;
            c_out[j] = c;
        }
        for j in 0..h {
            let tc = tanh(c_out[j]);
            (tanh_c[j], h_out[j]) = (tc, go[j] * tc);
        }
    }

    /// As [`Rows::forward`], writing only `c'` (the first `H` of `saved`) and `h'`: the
    /// activations and `tanh(c')` are for a backward pass, and not storing them saves
    /// five of the step's seven stores per unit.
    #[inline(always)]
    fn infer(
        self,
        gates: &mut [f32],
        _hid: &[f32],
        _h_prev: &[f32],
        c_prev: &[f32],
        h_out: &mut [f32],
        saved: &mut [f32],
    ) {
        let h = c_prev.len();
        let [gi, gf, gg, go] = gate_blocks(gates, h);
        let (c_out, h_out) = (&mut saved[..h], &mut h_out[..h]);
        if self.one_loop {
            for j in 0..h {
                let (d_i, d_f, d_g, d_o) = denominators_of(gi[j], gf[j], gg[j], go[j]);
                let ((_, _, _, o), c) = cell(d_i, d_f, d_g, d_o, c_prev[j]);
                (c_out[j], h_out[j]) = (c, o * tanh(c));
            }
            return;
        }
        denominators(gi, gf, gg, go);
        for j in 0..h {
            let ((_, _, _, o), c) = cell(gi[j], gf[j], gg[j], go[j], c_prev[j]);
            (c_out[j], go[j]) = (c, o);
        }
        for j in 0..h {
            h_out[j] = go[j] * tanh(c_out[j]);
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
        let [gi, gf, gg, go] = gate_blocks(gates, h);
        let (dh, dc, tanh_c) = (&dh[..h], &mut dc[..h], &saved[h..2 * h]);
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
            super::super::check_finite_differences(LstmRows::default(), h, seed);
        }
    }
}
