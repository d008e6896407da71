//! The weight gradients of the fused op: single GEMMs over every step.

use super::buffers::{matmul, parallel_for, threads, Mat, Shared, PARALLEL_GEMM_MIN};
use super::live::{live_spans, span_positions, Span};
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
/// the positions of each direction's `live` steps ([`super::live`]; all of them unless a
/// direction's later steps carry no gradient), whose gradients are the only ones written.
pub(crate) fn weight_gradients(
    dm: Dims,
    gates: usize,
    (x, w): (&[f32], &[f32]),
    g: &WeightGrads<'_>,
    live: &[usize],
    (dw, dx): (&mut [f32], &mut [f32]),
) {
    let Dims { i, h, p, dirs, .. } = dm;
    let (gh, k) = (gates * h, dm.k());
    let dg = dirs * gh;
    // The first GEMM into dx overwrites its rows, which are zero outside the spans.
    let mut dx_written = false;
    for (d, &live) in live.iter().enumerate() {
        let spans = live_spans(dm, d, live);
        for (c, s) in spans.iter().enumerate() {
            let acc = c > 0;
            // The span's rows of a (N, width) buffer, from column `col`.
            let rows = |buf: &[f32], width: usize, col: usize| {
                Mat::rows(buf[s.start * width + col..].as_ptr(), s.step * width)
            };
            // SAFETY (all): d_in and d_rec are (N, D·G·H), read transposed for the
            // weights; x is (N, I); h_prev is (N, D·P); m (N, D·H); the span's positions
            // lie inside N; dw has D·G·H rows of K with W_ih at column 0 and W_hh at I,
            // then with a projection D·H rows with W_hrᵀ at column 0.
            unsafe {
                // dW_ih = d_inᵀ · x.
                let d_in = rows(g.d_in, dg, d * gh);
                let dst = dw[d * gh * k..].as_mut_ptr();
                matmul((gh, i, s.len), dst, k, acc, d_in.t(), rows(x, i, 0), true);
                // dW_hh = d_recᵀ · h_prev.
                let d_rec = rows(g.d_rec, dg, d * gh).t();
                let dst = dw[d * gh * k + i..].as_mut_ptr();
                let h_prev = rows(g.h_prev, dirs * p, d * p);
                matmul((gh, p, s.len), dst, k, acc, d_rec, h_prev, true);
                // dW_hrᵀ = mᵀ · dh.
                let (m, d_h) = g.proj;
                if !m.is_empty() {
                    let lhs = rows(m, dirs * h, d * h).t();
                    let dst = dw[(dg + d * h) * k..].as_mut_ptr();
                    let rhs = rows(d_h, dirs * p, d * p);
                    matmul((h, p, s.len), dst, k, acc, lhs, rhs, true);
                }
                // dx [+]= d_in · W_ih, summed over the directions.
                if !dx.is_empty() {
                    let dst = dx[s.start * i..].as_mut_ptr();
                    let w_ih = Mat::rows(w[d * gh * k..].as_ptr(), k);
                    matmul(
                        (s.len, i, gh),
                        dst,
                        s.step * i,
                        dx_written,
                        d_in,
                        w_ih,
                        true,
                    );
                }
            }
        }
        dx_written |= !spans.is_empty();
        // d b_ih = Σ d_in, d b_hh = Σ d_rec over the live positions.
        // (The LSTM's and the RNN's are one buffer, so their sums are one.)
        let cols = (dg, d * gh, gh);
        let sums = match std::ptr::eq(g.d_in, g.d_rec) {
            true => column_sums(&[g.d_in], cols, &spans).repeat(2),
            false => column_sums(&[g.d_in, g.d_rec], cols, &spans),
        };
        for (col, db) in [(i + p, &sums[..gh]), (i + p + 1, &sums[gh..])] {
            for (r, &v) in db.iter().enumerate() {
                dw[(d * gh + r) * k + col] = v;
            }
        }
    }
}

/// The sums of columns `col..col + width` of the rows at the positions of `spans` of each
/// `(N, ld)` matrix of `srcs`, one after the other: the rows are split into one block per
/// thread, whose partial sums are added at the end.
fn column_sums(
    srcs: &[&[f32]],
    (ld, col, width): (usize, usize, usize),
    spans: &[Span],
) -> Vec<f32> {
    let n: usize = spans.iter().map(|s| s.len).sum();
    let blocks = match n * width * srcs.len() >= PARALLEL_GEMM_MIN {
        true => threads().min(n),
        false => 1,
    };
    let per = n.div_ceil(blocks).max(1);
    let count = n.div_ceil(per);
    let len = srcs.len() * width;
    let mut partial = vec![0f32; count.max(1) * len];
    let out = Shared::new(&mut partial);
    parallel_for(count, |c| {
        // SAFETY: block c owns its own `len` partial sums.
        let acc = unsafe { out.slice(c * len, len) };
        for (acc, src) in acc.chunks_exact_mut(width).zip(srcs) {
            for pos in span_positions(spans, (c * per, (c + 1) * per)) {
                let row = &src[pos * ld + col..][..width];
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
