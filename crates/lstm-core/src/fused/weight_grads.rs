//! The weight gradients of the fused op: single GEMMs over every step.

use super::buffers::{matmul, Mat};
use super::recurrence::Dims;

/// The gradients of the packed weights and of the input from the gate gradients of every
/// step: `d_in` of the input pre-activations and `d_rec` of the recurrent ones (the same
/// buffer unless the family keeps them apart), each `(N, D·G·H)`. Each is a single GEMM
/// over all steps.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_gradients(
    dm: Dims,
    gates: usize,
    x: &[f32],
    w: &[f32],
    d_in: &[f32],
    d_rec: &[f32],
    h_prev: &[f32],
    dw: &mut [f32],
    dx: &mut [f32],
) {
    let Dims { i, h, dirs, .. } = dm;
    let (gh, k, n) = (gates * h, dm.k(), dm.n());
    let dg = dirs * gh;
    // SAFETY (all): d_in and d_rec are (N, D·G·H), read transposed for the weights; x is
    // (N, I); h_prev is (N, D·H); dw is (D·G·H, K) with W_ih at column 0 and W_hh at I.
    unsafe {
        // dW_ih = d_inᵀ · x, every direction at once.
        let lhs = Mat::transposed(d_in.as_ptr(), dg);
        matmul(
            (dg, i, n),
            dw.as_mut_ptr(),
            k,
            false,
            lhs,
            Mat::rows(x.as_ptr(), i),
            true,
        );
        // dW_hh = d_recᵀ · h_prev, per direction.
        for d in 0..dirs {
            let lhs = Mat::transposed(d_rec[d * gh..].as_ptr(), dg);
            let rhs = Mat::rows(h_prev[d * h..].as_ptr(), dirs * h);
            matmul(
                (gh, h, n),
                dw[d * gh * k + i..].as_mut_ptr(),
                k,
                false,
                lhs,
                rhs,
                true,
            );
        }
        if !dx.is_empty() {
            // dx = d_in · W_ih, summed over the directions by the GEMM.
            let lhs = Mat::rows(d_in.as_ptr(), dg);
            matmul(
                (n, i, dg),
                dx.as_mut_ptr(),
                i,
                false,
                lhs,
                Mat::rows(w.as_ptr(), k),
                true,
            );
        }
    }
    // d b_ih = Σ_rows d_in, d b_hh = Σ_rows d_rec.
    for (col, src) in [(i + h, d_in), (i + h + 1, d_rec)] {
        let mut db = vec![0f32; dg];
        for row in src.chunks_exact(dg) {
            for (acc, v) in db.iter_mut().zip(row) {
                *acc += v;
            }
        }
        for (n, v) in db.into_iter().enumerate() {
            dw[n * k + col] = v;
        }
    }
}
