//! Scalar kernels of the fused LSTM path, written so that LLVM vectorises them.
//!
//! The gate non-linearities dominate the element-wise cost of an LSTM step. `libm`'s
//! `expf` is not vectorised, so [`exp`] is a branch-free Cephes-style approximation
//! (relative error below 2e-7 over the whole f32 range) from which [`sigmoid`] and
//! [`tanh`] are built.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `1.5 · 2²³`: adding it rounds an `f32` of magnitude below 2²² to an integer, which then
/// sits in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x`, accurate to a few ulp, saturating outside `[-87.3, 88.3]`.
///
/// Branch-free and free of float-to-int conversions, so that loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    // n = round(x / ln 2), and its bits, by the magic-number trick.
    let t = x.mul_add(LOG2E, ROUND_MAGIC);
    let n = t - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4_f32;
    p = p.mul_add(r, 1.398_2e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let poly = (p * r).mul_add(r, r) + 1.0;
    // 2^n: the low bits of t hold n (two's complement); add the exponent bias and shift.
    let scale = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
    poly * scale
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x) = 1 - 2 / (1 + e^{2x})`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp(2.0 * x))
}

/// One row of the LSTM cell update, forward, in place.
///
/// `gates` holds the four gate pre-activations `[i | f | g | o]` (each `h` wide, already
/// `W_ih x + b_ih + W_hh h + b_hh`) and is overwritten with the activated gates, which the
/// backward pass needs. Computes the chapter's equations
///
/// ```text
/// i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
/// c' = f ⊙ c + i ⊙ g
/// h' = o ⊙ tanh(c')
/// ```
///
/// and writes `h'`, `c'` and `tanh(c')` (also kept for the backward pass).
#[inline(always)]
pub fn cell_forward_row(
    gates: &mut [f32],
    c_prev: &[f32],
    h_out: &mut [f32],
    c_out: &mut [f32],
    tanh_c: &mut [f32],
) {
    // Simple passes over one or two slices each, which LLVM vectorises reliably.
    let h = c_prev.len();
    let (ifg, go) = gates[..4 * h].split_at_mut(3 * h);
    let (if_, gg) = ifg.split_at_mut(2 * h);
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
    for (((c, &f), &cp), (&i, &g)) in c_out[..h]
        .iter_mut()
        .zip(gf)
        .zip(c_prev)
        .zip(gi.iter().zip(gg.iter()))
    {
        *c = f.mul_add(cp, i * g);
    }
    // h' = o ⊙ tanh(c')
    for ((tc, &c), (ho, &o)) in tanh_c[..h]
        .iter_mut()
        .zip(c_out[..h].iter())
        .zip(h_out[..h].iter_mut().zip(go.iter()))
    {
        *tc = tanh(c);
        *ho = o * *tc;
    }
}

/// One row of the LSTM cell update, backward, in place.
///
/// The gradient reaching `h'` is `dh_out + dh_next`; the one reaching `c'` is
/// `dc_out + dc_next`, where `*_out` come from the step's outputs and `*_next` from the
/// following step. `gates` holds the activations saved by [`cell_forward_row`] and is
/// overwritten with the gradient of the gate pre-activations; `dc_next` is overwritten
/// with the gradient of the previous cell state, `dc ⊙ f`.
#[inline(always)]
pub fn cell_backward_row(
    dh_out: &[f32],
    dh_next: &[f32],
    dc_out: &[f32],
    gates: &mut [f32],
    tanh_c: &[f32],
    c_prev: &[f32],
    dc_next: &mut [f32],
) {
    let h = c_prev.len();
    let (gi, rest) = gates[..4 * h].split_at_mut(h);
    let (gf, rest) = rest.split_at_mut(h);
    let (gg, go) = rest.split_at_mut(h);
    let (dh_out, dh_next, dc_out, tanh_c) =
        (&dh_out[..h], &dh_next[..h], &dc_out[..h], &tanh_c[..h]);
    // dc = dc_out + dc_next + dh ⊙ o ⊙ (1 − tanh²(c'))   (through h' = o ⊙ tanh(c'))
    // d a_o = dh ⊙ tanh(c') ⊙ o(1 − o)
    let (dc_next, go) = (&mut dc_next[..h], &mut go[..h]);
    for j in 0..h {
        let dh = dh_out[j] + dh_next[j];
        let (o, tc) = (go[j], tanh_c[j]);
        dc_next[j] = dc_out[j] + dc_next[j] + dh * o * (1.0 - tc * tc);
        go[j] = dh * tc * o * (1.0 - o);
    }
    // Through c' = f ⊙ c + i ⊙ g:  d a_i = dc ⊙ g ⊙ i(1 − i),  d a_g = dc ⊙ i ⊙ (1 − g²)
    for ((i, g), &dc) in gi.iter_mut().zip(gg.iter_mut()).zip(dc_next.iter()) {
        let (iv, gv) = (*i, *g);
        *i = dc * gv * iv * (1.0 - iv);
        *g = dc * iv * (1.0 - gv * gv);
    }
    // d a_f = dc ⊙ c ⊙ f(1 − f);  dc_prev = dc ⊙ f
    for ((f, dc), &cp) in gf.iter_mut().zip(dc_next.iter_mut()).zip(&c_prev[..h]) {
        let fv = *f;
        *f = *dc * cp * fv * (1.0 - fv);
        *dc *= fv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(-1000.0), (-87.3f32).exp().max(exp(-87.3)));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn sigmoid_and_tanh_match_std() {
        let mut x = -30.0f32;
        while x < 30.0 {
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((sigmoid(x) - s).abs() < 2e-7, "sigmoid({x})");
            assert!((tanh(x) - x.tanh()).abs() < 3e-7, "tanh({x})");
            x += 0.0071;
        }
        assert!(sigmoid(-200.0) < 1e-30);
        assert_eq!(sigmoid(200.0), 1.0);
        assert_eq!(tanh(200.0), 1.0);
        assert_eq!(tanh(-200.0), -1.0);
    }

    #[test]
    fn backward_row_matches_finite_differences() {
        let h = 3;
        let pre: Vec<f32> = (0..4 * h).map(|k| (k as f32 * 0.37).sin()).collect();
        let c_prev = [0.3f32, -0.8, 0.5];
        // Loss = Σ wh ⊙ h' + Σ wc ⊙ c'.
        let (wh, wc) = ([0.7f32, -1.1, 0.4], [0.2f32, 0.9, -0.6]);
        let forward = |pre: &[f32], c_prev: &[f32]| {
            let (mut gates, mut ho, mut co, mut tc) = (pre.to_vec(), [0.0; 3], [0.0; 3], [0.0; 3]);
            cell_forward_row(&mut gates, c_prev, &mut ho, &mut co, &mut tc);
            (gates, ho, co, tc)
        };
        let loss = |pre: &[f32], c_prev: &[f32]| -> f64 {
            let (_, ho, co, _) = forward(pre, c_prev);
            (0..h).map(|j| (wh[j] * ho[j] + wc[j] * co[j]) as f64).sum()
        };
        let (mut gates, _, _, tc) = forward(&pre, &c_prev);
        // Split the incoming gradients between the "out" and "next" arguments.
        let dh_next = [0.1f32, 0.2, -0.3];
        let dh_out: Vec<f32> = (0..h).map(|j| wh[j] - dh_next[j]).collect();
        let mut dc = [0.5f32, -0.25, 0.125];
        let dc_out: Vec<f32> = (0..h).map(|j| wc[j] - dc[j]).collect();
        cell_backward_row(
            &dh_out, &dh_next, &dc_out, &mut gates, &tc, &c_prev, &mut dc,
        );
        let eps = 1e-3f32;
        for k in 0..4 * h {
            let (mut p, mut m) = (pre.clone(), pre.clone());
            p[k] += eps;
            m[k] -= eps;
            let num = (loss(&p, &c_prev) - loss(&m, &c_prev)) / (2.0 * eps as f64);
            assert!(
                (num - gates[k] as f64).abs() < 1e-3,
                "d_pre[{k}]: {num} vs {}",
                gates[k]
            );
        }
        for k in 0..h {
            let (mut p, mut m) = (c_prev, c_prev);
            p[k] += eps;
            m[k] -= eps;
            let num = (loss(&pre, &p) - loss(&pre, &m)) / (2.0 * eps as f64);
            assert!((num - dc[k] as f64).abs() < 1e-3, "dc_prev[{k}]");
        }
    }
}
