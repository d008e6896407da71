//! The weight gradients of the fused op: single GEMMs over every step.

use super::buffers::{matmul, parallel_for, threads, Mat, Shared, PARALLEL_GEMM_MIN};
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
    // (The LSTM's and the RNN's are one buffer, so their sums are one.)
    let sums = match std::ptr::eq(g.d_in, g.d_rec) {
        true => column_sums(&[g.d_in], dg).repeat(2),
        false => column_sums(&[g.d_in, g.d_rec], dg),
    };
    for (col, db) in [(i + p, &sums[..dg]), (i + p + 1, &sums[dg..])] {
        for (r, &v) in db.iter().enumerate() {
            dw[r * k + col] = v;
        }
    }
}

/// The column sums of each `(N, width)` matrix of `srcs`, one after the other: the rows
/// are split into one block per thread, whose partial sums are added at the end.
fn column_sums(srcs: &[&[f32]], width: usize) -> Vec<f32> {
    let n = srcs[0].len() / width;
    let blocks = match n * width * srcs.len() >= PARALLEL_GEMM_MIN {
        true => threads().min(n),
        false => 1,
    };
    let per = n.div_ceil(blocks).max(1);
    let count = n.div_ceil(per);
    let len = srcs.len() * width;
    let mut partial = vec![0f32; count * len];
    let out = Shared::new(&mut partial);
    parallel_for(count, |c| {
        // SAFETY: block c owns its own `len` partial sums.
        let acc = unsafe { out.slice(c * len, len) };
        for (acc, src) in acc.chunks_exact_mut(width).zip(srcs) {
            for row in src[c * per * width..].chunks_exact(width).take(per) {
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
        }
    });
    let mut sums = partial[..len].to_vec();
    for block in partial.chunks_exact(len).skip(1) {
        for (s, v) in sums.iter_mut().zip(block) {
            *s += v;
        }
    }
    sums
}
