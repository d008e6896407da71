//! The weight gradients of the fused op: single GEMMs over every step.

use super::buffers::{matmul, Mat};
use super::recurrence::Dims;

/// What the weight gradients are computed from, each over all positions `N`.
pub(crate) struct WeightGrads<'a> {
    /// Gradients of the input pre-activations `(N, D·G·H)`.
    pub d_in: &'a [f32],
    /// Gradients of the recurrent pre-activations `(N, D·G·H)` (the same buffer as
    /// `d_in` unless the family keeps them apart).
    pub d_rec: &'a [f32],
    /// `h_{t-1}` of every position `(N, D·P)`.
    pub h_prev: &'a [f32],
    /// With a projection, `m` `(N, D·H)` and the gradient of `h` `(N, D·P)`; empty
    /// otherwise.
    pub proj: (&'a [f32], &'a [f32]),
}

/// The gradients of the packed weights (`dw`, laid out as
/// [`super::buffers::DirWeights::packed`]) and of the input `(N, I)` (`dx`, skipped when
/// empty), reading the input `x` and the packed weights `w`. Each is a single GEMM over
/// all positions.
pub(crate) fn weight_gradients(
    dm: Dims,
    gates: usize,
    (x, w): (&[f32], &[f32]),
    g: &WeightGrads<'_>,
    (dw, dx): (&mut [f32], &mut [f32]),
) {
    let Dims { i, h, p, dirs, .. } = dm;
    let (gh, k, n) = (gates * h, dm.k(), dm.n());
    let dg = dirs * gh;
    // SAFETY (all): d_in and d_rec are (N, D·G·H), read transposed for the weights; x is
    // (N, I); h_prev is (N, D·P); m (N, D·H); dw has D·G·H rows of K with W_ih at column
    // 0 and W_hh at I, then with a projection D·H rows with W_hrᵀ at column 0.
    unsafe {
        // dW_ih = d_inᵀ · x, every direction at once.
        let lhs = Mat::transposed(g.d_in.as_ptr(), dg);
        let x_rows = Mat::rows(x.as_ptr(), i);
        matmul((dg, i, n), dw.as_mut_ptr(), k, false, lhs, x_rows, true);
        for d in 0..dirs {
            // dW_hh = d_recᵀ · h_prev, per direction.
            let lhs = Mat::transposed(g.d_rec[d * gh..].as_ptr(), dg);
            let rhs = Mat::rows(g.h_prev[d * p..].as_ptr(), dirs * p);
            let dst = dw[d * gh * k + i..].as_mut_ptr();
            matmul((gh, p, n), dst, k, false, lhs, rhs, true);
            // dW_hrᵀ = mᵀ · dh, per direction.
            let (m, d_h) = g.proj;
            if !m.is_empty() {
                let lhs = Mat::transposed(m[d * h..].as_ptr(), dirs * h);
                let rhs = Mat::rows(d_h[d * p..].as_ptr(), dirs * p);
                let dst = dw[(dg + d * h) * k..].as_mut_ptr();
                matmul((h, p, n), dst, k, false, lhs, rhs, true);
            }
        }
        if !dx.is_empty() {
            // dx = d_in · W_ih, summed over the directions by the GEMM.
            let lhs = Mat::rows(g.d_in.as_ptr(), dg);
            let w_ih = Mat::rows(w.as_ptr(), k);
            matmul((n, i, dg), dx.as_mut_ptr(), i, false, lhs, w_ih, true);
        }
    }
    // d b_ih = Σ_rows d_in, d b_hh = Σ_rows d_rec.
    for (col, src) in [(i + p, g.d_in), (i + p + 1, g.d_rec)] {
        let mut db = vec![0f32; dg];
        for row in src.chunks_exact(dg) {
            for (acc, v) in db.iter_mut().zip(row) {
                *acc += v;
            }
        }
        for (r, v) in db.into_iter().enumerate() {
            dw[r * k + col] = v;
        }
    }
}
