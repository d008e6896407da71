//! Scalar kernels of the fused LSTM path, written so that LLVM vectorises them.
//!
//! The gate non-linearities dominate the element-wise cost of an LSTM step. `libm`'s
//! `expf` is not vectorised, so [`exp`] is a branch-free Cephes-style approximation
//! (relative error below 2e-7 over the whole f32 range) from which [`sigmoid`] and
//! [`tanh`] are built.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `e^x`, accurate to a few ulp, saturating outside `[-87.3, 88.3]`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4_f32;
    p = p.mul_add(r, 1.398_2e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let poly = (p * r).mul_add(r, r) + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
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
    let h = c_prev.len();
    let (gi, rest) = gates[..4 * h].split_at_mut(h);
    let (gf, rest) = rest.split_at_mut(h);
    let (gg, go) = rest.split_at_mut(h);
    let (h_out, c_out, tanh_c) = (&mut h_out[..h], &mut c_out[..h], &mut tanh_c[..h]);
    for j in 0..h {
        let i = sigmoid(gi[j]);
        let f = sigmoid(gf[j]);
        let g = tanh(gg[j]);
        let o = sigmoid(go[j]);
        // c' = f ⊙ c + i ⊙ g
        let c = f * c_prev[j] + i * g;
        // h' = o ⊙ tanh(c')
        let tc = tanh(c);
        h_out[j] = o * tc;
        c_out[j] = c;
        tanh_c[j] = tc;
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
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
    let (dh_out, dh_next, dc_out) = (&dh_out[..h], &dh_next[..h], &dc_out[..h]);
    let (tanh_c, dc_next) = (&tanh_c[..h], &mut dc_next[..h]);
    for j in 0..h {
        let (i, f, g, o, tc) = (gi[j], gf[j], gg[j], go[j], tanh_c[j]);
        let dh = dh_out[j] + dh_next[j];
        let d_o = dh * tc;
        // Through h' = o ⊙ tanh(c'): dc' += dh ⊙ o ⊙ (1 - tanh²(c')).
        let dc = dc_out[j] + dc_next[j] + dh * o * (1.0 - tc * tc);
        // Through c' = f ⊙ c + i ⊙ g.
        let d_i = dc * g;
        let d_f = dc * c_prev[j];
        let d_g = dc * i;
        dc_next[j] = dc * f;
        // Through the activations: σ' = σ(1-σ), tanh' = 1 - tanh².
        gi[j] = d_i * i * (1.0 - i);
        gf[j] = d_f * f * (1.0 - f);
        gg[j] = d_g * (1.0 - g * g);
        go[j] = d_o * o * (1.0 - o);
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
