//! The weight gradients of the fused op: single GEMMs over every step.

use super::buffers::{parallel_for, threads, Mat, Shared};
use super::live::{live_spans, span_positions, Span};
use super::matmul::{matmul, PARALLEL_GEMM_MIN};
use super::recurrence::Dims;
use super::task_grads::{by_tasks, grad_tasks};

/// What the weight gradients are computed from, each over all positions `N`.
pub(crate) struct WeightGrads<'a> {
    /// Gradients of the input pre-activations `(N, D·G·H)`.
    pub d_in: &'a [f32],
    /// Gradients of the recurrent pre-activations `(N, D·G·H)` (the same buffer as
    /// `d_in` unless the family keeps them apart).
    pub d_rec: &'a [f32],
    /// Slots `[x | h_{t-1}]` of every position and direction `(N, D, I + P)`
    /// ([`h_prev_len`]) with `h_{t-1}` written; [`weight_gradients`] writes the `x` part
    /// where it reads it (where `d_in` and `d_rec` are one buffer).
    pub h_prev: &'a mut [f32],
    /// With a projection, `m` `(N, D·H)` and the gradient of `h` `(N, D·P)`; empty
    /// otherwise.
    pub proj: (&'a [f32], &'a [f32]),
}

/// Floats of the buffer the backward steps write `h_{t-1}` into: `(N, D, I + P)`, each
/// direction's slot `[x | h_{t-1}]`, so that where the input and the recurrent
/// pre-activations share their gradient, `dW_ih` and `dW_hh` (side by side in the packed
/// weights) are one GEMM.
pub(crate) fn h_prev_len(dm: Dims) -> usize {
    dm.n() * dm.dirs * (dm.i + dm.p)
}

/// Writes the input `x (N, I)` into the first `I` columns of every slot of `h_prev`
/// ([`h_prev_len`]), in parallel blocks of positions.
fn with_inputs(dm: Dims, x: &[f32], h_prev: &mut [f32]) {
    let (i, width) = (dm.i, dm.dirs * (dm.i + dm.p));
    if i == 0 {
        return;
    }
    const BLOCK: usize = 256;
    let n = dm.n();
    let out = Shared::new(h_prev);
    parallel_for(n.div_ceil(BLOCK), |c| {
        let (p0, p1) = (c * BLOCK, ((c + 1) * BLOCK).min(n));
        // SAFETY: block c owns the rows of positions p0..p1.
        let rows = unsafe { out.slice(p0 * width, (p1 - p0) * width) };
        for (row, x) in rows
            .chunks_exact_mut(width)
            .zip(x[p0 * i..p1 * i].chunks_exact(i))
        {
            for slot in row.chunks_exact_mut(i + dm.p) {
                slot[..i].copy_from_slice(x);
            }
        }
    });
}

/// The gradients of the packed weights (`dw`, laid out as
/// [`super::buffers::DirWeights::packed`]) and of the input `(N, I)` (`dx`, skipped when
/// empty), reading the input `x` and the packed weights `w`. Each is a single GEMM over
/// the positions of each direction's `live` steps ([`super::live`]; all of them unless a
/// direction's later steps carry no gradient), whose gradients are the only ones written.
/// The weights' GEMMs are split over the threads as the backward recurrence's tasks were
/// ([`super::task_grads`]) where its tasks' positions are whole rows, else by columns or
/// rows of the gradient.
pub(crate) fn weight_gradients(
    dm: Dims,
    gates: usize,
    (x, w): (&[f32], &[f32]),
    g: WeightGrads<'_>,
    live: &[usize],
    (dw, dx): (&mut [f32], &mut [f32]),
) {
    let d_in = g.d_in;
    match grad_tasks(dm, gates, live, &g) {
        Some(ts) => by_tasks(dm, gates, x, g, &ts, dw),
        None => by_spans(dm, gates, x, g, live, dw),
    }
    if !dx.is_empty() {
        input_gradient(dm, gates, (d_in, w), live, dx);
    }
}

/// The weight gradients of [`weight_gradients`] as one parallel GEMM per span of live
/// positions ([`live_spans`]).
fn by_spans(dm: Dims, gates: usize, x: &[f32], g: WeightGrads<'_>, live: &[usize], dw: &mut [f32]) {
    let Dims { i, h, p, dirs, .. } = dm;
    let (gh, k) = (gates * h, dm.k());
    let (dg, slot) = (dirs * gh, i + p);
    // Where d_in is d_rec, dW_ih and dW_hh are one GEMM over the slots [x | h_{t-1}].
    let one_gemm = std::ptr::eq(g.d_in, g.d_rec);
    if one_gemm {
        with_inputs(dm, x, g.h_prev);
    }
    let h_prev: &[f32] = g.h_prev;
    for (d, &live) in live.iter().enumerate() {
        let spans = live_spans(dm, d, live);
        for (c, s) in spans.iter().enumerate() {
            let acc = c > 0;
            // The span's rows of a (N, width) buffer, from column `col`.
            let rows = |buf: &[f32], width: usize, col: usize| {
                Mat::rows(buf[s.start * width + col..].as_ptr(), s.step * width)
            };
            // SAFETY (all): d_in and d_rec are (N, D·G·H), read transposed for the
            // weights; x is (N, I); h_prev is (N, D, I + P); m (N, D·H); the span's
            // positions lie inside N; dw has D·G·H rows of K with W_ih at column 0 and
            // W_hh at I, then with a projection D·H rows with W_hrᵀ at column 0.
            unsafe {
                let d_in = rows(g.d_in, dg, d * gh);
                let dst = dw[d * gh * k..].as_mut_ptr();
                if one_gemm {
                    // [dW_ih | dW_hh] = d_inᵀ · [x | h_prev].
                    let x_h = rows(h_prev, dirs * slot, d * slot);
                    matmul((gh, slot, s.len), dst, k, acc, d_in.t(), x_h, true);
                } else {
                    // dW_ih = d_inᵀ · x, dW_hh = d_recᵀ · h_prev.
                    matmul((gh, i, s.len), dst, k, acc, d_in.t(), rows(x, i, 0), true);
                    let d_rec = rows(g.d_rec, dg, d * gh).t();
                    let h = rows(h_prev, dirs * slot, d * slot + i);
                    matmul((gh, p, s.len), dst.add(i), k, acc, d_rec, h, true);
                }
                // dW_hrᵀ = mᵀ · dh.
                let (m, d_h) = g.proj;
                if !m.is_empty() {
                    let lhs = rows(m, dirs * h, d * h).t();
                    let dst = dw[(dg + d * h) * k..].as_mut_ptr();
                    let rhs = rows(d_h, dirs * p, d * p);
                    matmul((h, p, s.len), dst, k, acc, lhs, rhs, true);
                }
            }
        }
        // d b_ih = Σ d_in, d b_hh = Σ d_rec over the live positions.
        // (The LSTM's and the RNN's are one buffer, so their sums are one.)
        let cols = (dg, d * gh, gh);
        let sums = match one_gemm {
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

/// `dx = Σ_d d_in_d · W_ih_d` over the live positions of each direction (`dx` is zero
/// elsewhere), reading the packed weights `w`.
fn input_gradient(
    dm: Dims,
    gates: usize,
    (d_in, w): (&[f32], &[f32]),
    live: &[usize],
    dx: &mut [f32],
) {
    let (i, gh, k) = (dm.i, gates * dm.h, dm.k());
    let dg = dm.dirs * gh;
    // The first GEMM into dx overwrites its rows, which are zero outside the spans.
    let mut dx_written = false;
    for (d, &live) in live.iter().enumerate() {
        let spans = live_spans(dm, d, live);
        for s in &spans {
            // SAFETY: d_in is (N, D·G·H), the span's positions lie inside N, dx is
            // (N, I) and w holds direction d's W_ih at row d·G·H, column 0, rows K long.
            unsafe {
                let lhs = Mat::rows(d_in[s.start * dg + d * gh..].as_ptr(), s.step * dg);
                let dst = dx[s.start * i..].as_mut_ptr();
                let w_ih = Mat::rows(w[d * gh * k..].as_ptr(), k);
                matmul((s.len, i, gh), dst, s.step * i, dx_written, lhs, w_ih, true);
            }
        }
        dx_written |= !spans.is_empty();
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
            add_rows(
                src,
                (ld, col),
                span_positions(spans, (c * per, (c + 1) * per)),
                acc,
            );
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

/// `acc[c] += Σ src[pos · ld + col + c]` over `positions`, on the calling thread.
pub(super) fn add_rows(
    src: &[f32],
    (ld, col): (usize, usize),
    positions: impl Iterator<Item = usize>,
    acc: &mut [f32],
) {
    for pos in positions {
        let row = &src[pos * ld + col..][..acc.len()];
        acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_fills_the_first_columns_of_every_slot() {
        // Two directions, 3 rows × 2 steps (6 positions), 2 features, 3 wide: slots of 5.
        let dm = Dims {
            dirs: 2,
            ..Dims::one_direction(3, 2, 2, (3, 3))
        };
        let x: Vec<f32> = (0..dm.n() * 2).map(|v| v as f32).collect();
        let mut h_prev = vec![-1f32; h_prev_len(dm)];
        assert_eq!(h_prev.len(), 6 * 2 * 5);
        with_inputs(dm, &x, &mut h_prev);
        for (pos, row) in h_prev.chunks_exact(10).enumerate() {
            for slot in row.chunks_exact(5) {
                assert_eq!(slot[..2], x[pos * 2..pos * 2 + 2], "position {pos}");
                assert_eq!(slot[2..], [-1.0; 3], "h_{{t-1}} is left to the steps");
            }
        }
    }
}
