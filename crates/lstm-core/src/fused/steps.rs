//! The time loop of one task (a direction and a block of batch rows), forward and
//! backward, for every family ([`Rows`]): the task runs its whole recurrence on one
//! thread, from its block's first step, over the rows its claim leaves it
//! ([`super::steal`]). Backward, what a row carries to the step before (`dh`, `dc`)
//! lies in its row of the initial state's gradient, where a thread taking it over finds it.
//!
//! Per step, forward: the input projection `x_t W_ihᵀ` of the running rows into the
//! step's gates (unless it came in done), the recurrent GEMM `h_{t-1} W_hhᵀ` added to
//! them (or, for a [`Rows::SPLIT`] family, into a scratch block pre-filled with `b_hh`),
//! the biases added to the gates, the family's row kernel, and with a projection the
//! GEMM `h = m W_hrᵀ`.
//! Backward: with a projection `dm = dh W_hr`, the row kernel, then the GEMM `dG_t W_hh`
//! for the gradient of `h_{t-1}`.

use super::buffers::{DirWeights, Mat};
use super::gate_tiles::{self, GatePanels};
use super::matmul::{step_matmul, Weights};
use super::recurrence::{at, state_width, Backward, Dims, Forward, Slots};
use super::steal::Block;
use super::tasks::Task;
use crate::kernels::Rows;

/// One recurrent GEMM `h_{t-1} W_hhᵀ` of a step, over rows whose previous states lie in
/// one strided block.
struct RecurrentGemm {
    /// The first row's previous state and the row stride.
    h_prev: Mat,
    /// The first row, counted from the task's first, and the number of rows.
    rows: (usize, usize),
}

/// The biases of the gate columns `cols` (indices into `G·H`), as the steps add them:
/// what goes onto the input projection (`b_ih`, plus `b_hh` unless it stays apart), and
/// for a [`Rows::SPLIT`] family `b_hh` itself, which the recurrent product starts from
/// (else empty).
pub(super) fn step_biases<R: Rows>(
    w: DirWeights,
    cols: impl Iterator<Item = usize> + Clone,
) -> (Vec<f32>, Vec<f32>) {
    // SAFETY: b_ih and b_hh have G·H elements, and the columns are below G·H.
    let input = cols
        .clone()
        .map(|n| unsafe { w.b_ih.get(n) + if R::SPLIT { 0.0 } else { w.b_hh.get(n) } })
        .collect();
    let recurrent = match R::SPLIT {
        true => cols.map(|n| unsafe { w.b_hh.get(n) }).collect(),
        false => Vec::new(),
    };
    (input, recurrent)
}

#[inline(always)]
pub(super) fn forward_task<R: Rows>(rows: R, dm: Dims, block: Block<'_>, io: &Forward<'_>) {
    let Dims { b, t, h, p, .. } = dm;
    let (gh, sw, sv) = (R::GATES * h, state_width::<R>(h, p), R::SAVED * h);
    let Block { task, first, claim } = block;
    let Task {
        dir,
        rows: (r0, mut r1),
        alone,
    } = task;
    let bl = r1 - r0;
    let w = io.w[dir];
    // Where the steps' h (os) and what they save (ss) lie: every step, or the last two
    // (inference, which keeps nothing for a backward pass).
    let (os, ss, gs) = (io.out_slots, io.saved_slots, io.gates_slots);
    let train = ss == Slots::Every;
    let (bias, b_hh) = step_biases::<R>(w, 0..gh);
    let mut hid = vec![0f32; if R::SPLIT { bl * gh } else { 0 }];
    let w_hh_t = io.w_hh.forward(w.w_hh, dir, (p, gh));
    let w_ih_t = io.w_ih.map(|l| l.forward(w.w_ih, dir, (dm.i, gh)));
    let tiles = io
        .gate_tiles
        .filter(|_| R::TILES)
        .map(|buf| GatePanels::of(buf, dir, (dm.i, h)));
    for step in first..t {
        // In a wavefront: steps before this one are written, and this one's input must be.
        io.wave.publish(step);
        io.wave.wait(step + 1);
        // A block shared with another thread runs fewer rows from some step on.
        if let Some(c) = claim {
            r1 = c.start(step);
        }
        'step: {
            let ti = dm.time(dir, step);
            let (end, cont) = dm.running(dir, ti, (r0, r1));
            if end == r0 {
                break 'step;
            }
            let tp = dm.before(dir, ti);
            if let Some(w) = tiles {
                gate_tiles::forward_step(w, dm, io, (r0, cont, end), (ti, tp, dir));
                break 'step;
            }
            // Rows continuing from the step before, then rows starting from the initial state.
            let continuing = (cont > r0).then(|| RecurrentGemm {
                h_prev: Mat::rows(io.out.at(os.at(dm, r0, tp, dir, p)), os.row_stride(dm, p)),
                rows: (0, cont - r0),
            });
            let starting = (end > cont).then(|| RecurrentGemm {
                h_prev: Mat::rows(io.s0[(dir * b + cont) * sw..].as_ptr(), sw),
                rows: (cont - r0, end - cont),
            });
            if let Some(w_ih_t) = w_ih_t {
                // The gate columns the layer below projected (in a balanced wavefront).
                let fed = io.wave.fed.map_or(0, |f| f.cols);
                if let Some(f) = io.wave.fed {
                    for r in r0..end {
                        // SAFETY: row r of step ti in the block the layer below has written
                        // (it published the step), and this task's own row of the gates.
                        unsafe {
                            let src = f.buf.slice((ti * b + r) * f.cols, f.cols);
                            let dst = io.gates.slice(gs.at(dm, r, ti, dir, gh), f.cols);
                            dst.copy_from_slice(src);
                        }
                    }
                }
                // x_t W_ihᵀ of the running rows into the step's gates (the columns not fed),
                // while they are in cache for the recurrent GEMM and the row kernel.
                // SAFETY: x is (positions, I) and W_ihᵀ (I, G·H); the destination is this
                // task's rows of the step's gates.
                unsafe {
                    let x = Mat::rows(
                        io.x.at(dm.pos.at(r0, ti) * dm.i),
                        dm.pos.row_stride() * dm.i,
                    );
                    let dst = io.gates.at(gs.at(dm, r0, ti, dir, gh) + fed);
                    step_matmul(
                        (end - r0, gh - fed, dm.i),
                        dst,
                        gs.row_stride(dm, gh),
                        false,
                        x,
                        w_ih_t.skip_cols(fed),
                        alone,
                    );
                }
            }
            if R::SPLIT {
                for row in hid.chunks_exact_mut(gh).take(end - r0) {
                    row.copy_from_slice(&b_hh);
                }
            }
            for g in continuing.iter().chain(&starting) {
                // SAFETY: h_prev addresses the rows' states (s0 or the previous step's), W_hhᵀ
                // lies inside w_hh_t or the parameters, and the destination (a scratch block
                // or the step's gates of this task's rows) overlaps neither.
                unsafe {
                    let (dst, rs) = match R::SPLIT {
                        true => (hid[g.rows.0 * gh..].as_mut_ptr(), gh),
                        false => (
                            io.gates.at(gs.at(dm, r0 + g.rows.0, ti, dir, gh)),
                            gs.row_stride(dm, gh),
                        ),
                    };
                    step_matmul((g.rows.1, gh, p), dst, rs, true, g.h_prev, w_hh_t, alone);
                }
            }
            for r in r0..end {
                // SAFETY: each slice is this task's own row (r, ti, dir) or the previous
                // step's, which no other task touches; none of them overlap.
                unsafe {
                    let (h_prev, c_prev): (&[f32], &[f32]) = match r < cont {
                        false => {
                            let s = &io.s0[(dir * b + r) * sw..][..sw];
                            s.split_at(p)
                        }
                        true => (
                            io.out.slice(os.at(dm, r, tp, dir, p), p),
                            if R::CELL {
                                io.saved.slice(ss.at(dm, r, tp, dir, sv), h)
                            } else {
                                &[]
                            },
                        ),
                    };
                    let hid_row = if R::SPLIT {
                        &hid[(r - r0) * gh..][..gh]
                    } else {
                        &[]
                    };
                    // With a projection the kernel's output is `m`, projected below.
                    let h_out = match w.w_hr_t {
                        Some(_) => io.proj.slice(ss.at(dm, r, ti, dir, h), h),
                        None => io.out.slice(os.at(dm, r, ti, dir, h), h),
                    };
                    let gates = io.gates.slice(gs.at(dm, r, ti, dir, gh), gh);
                    for (g, &b) in gates.iter_mut().zip(&bias) {
                        *g += b;
                    }
                    let saved = io.saved.slice(ss.at(dm, r, ti, dir, sv), sv);
                    match train {
                        true => rows.forward(gates, hid_row, h_prev, c_prev, h_out, saved),
                        false => rows.infer(gates, hid_row, h_prev, c_prev, h_out, saved),
                    }
                }
            }
            if let Some(w_hr_t) = w.w_hr_t {
                // h = m W_hrᵀ for the running rows.
                // SAFETY: the step's m rows of this task (H wide) and its h rows (P wide).
                unsafe {
                    let m = Mat::rows(io.proj.at(ss.at(dm, r0, ti, dir, h)), ss.row_stride(dm, h));
                    let dst = io.out.at(os.at(dm, r0, ti, dir, p));
                    step_matmul(
                        (end - r0, p, h),
                        dst,
                        os.row_stride(dm, p),
                        false,
                        m,
                        Weights::Strided(w_hr_t),
                        false,
                    );
                }
            }
            if let Some(f) = io.wave.feed {
                // The first columns of the layer above's x_t W_ihᵀ, from the h just written,
                // before the step is published.
                // SAFETY: this step's h rows of the task (P wide), the layer above's W_ihᵀ
                // (P, G·H') of which the first f.cols columns are read, and this task's rows
                // of step ti in the feed block, which the layer above reads only once the
                // step is published.
                unsafe {
                    let h = Mat::rows(io.out.at(os.at(dm, r0, ti, dir, p)), os.row_stride(dm, p));
                    let dst = f.buf.at((ti * b + r0) * f.cols);
                    step_matmul(
                        (end - r0, f.cols, p),
                        dst,
                        f.cols,
                        false,
                        h,
                        f.w_ih_t,
                        false,
                    );
                }
            }
        }
        if let Some(c) = claim {
            c.finish(step);
        }
    }
    io.wave.publish(t);
}

#[inline(always)]
pub(super) fn backward_task<R: Rows>(rows: R, dm: Dims, block: Block<'_>, io: &Backward<'_>) {
    let Dims { b, h, p, .. } = dm;
    let sw = state_width::<R>(h, p);
    let Block { task, first, claim } = block;
    let Task {
        dir,
        rows: (r0, mut r1),
        alone,
    } = task;
    let bl = r1 - r0;
    let w = io.w[dir];
    // What each row carries to the step before, `[dh_next | dc]`, lies in its row of
    // d_s0 (whose final value it is), so that a thread taking over rows finds it there.
    // SAFETY (all uses): rows (dir, r) of d_s0 for this block's rows, which at each step
    // only this block touches.
    let carried = |r: usize| unsafe { io.d_s0.slice((dir * b + r) * sw, sw) };
    // The whole gradient reaching each running row's h, and with a projection its m.
    let mut dh = vec![0f32; bl * p];
    let mut d_m = vec![0f32; if w.w_hr_t.is_some() { bl * h } else { 0 }];
    // The steps after the live ones carry no gradient ([`super::live`]); `k` counts the
    // steps run, last first.
    let live = io.live[dir];
    for k in first..live {
        let step = live - 1 - k;
        if let Some(c) = claim {
            r1 = c.start(k);
        }
        if k == 0 {
            // Each row's gradient starts at its own last step with that of the final
            // state; rows not yet running keep it untouched until they start.
            for r in r0..r1 {
                carried(r).copy_from_slice(&io.d_final[(dir * b + r) * sw..][..sw]);
            }
        }
        backward_step(
            rows,
            dm,
            (dir, step),
            (r0, r1, alone),
            io,
            (&mut dh, &mut d_m),
        );
        if let Some(c) = claim {
            c.finish(k);
        }
    }
}

/// One step of [`backward_task`] for rows `r0..r1` of direction `dir`: `dh`, `d_m` are
/// scratch rows.
#[inline(always)]
fn backward_step<R: Rows>(
    rows: R,
    dm: Dims,
    (dir, step): (usize, usize),
    (r0, r1, alone): (usize, usize, bool),
    io: &Backward<'_>,
    (dh, d_m): (&mut [f32], &mut [f32]),
) {
    let Dims { b, h, p, .. } = dm;
    let (gh, sw, sv) = (R::GATES * h, state_width::<R>(h, p), R::SAVED * h);
    let w = io.w[dir];
    let d_rec = if R::SPLIT { io.d_hid } else { io.gates };
    // SAFETY (all uses): as in backward_task.
    let carried = |r: usize| unsafe { io.d_s0.slice((dir * b + r) * sw, sw) };
    {
        let ti = dm.time(dir, step);
        let (end, cont) = dm.running(dir, ti, (r0, r1));
        if end == r0 {
            return;
        }
        let tp = dm.before(dir, ti);
        for r in r0..end {
            let j = (r - r0) * p;
            let (dh, next) = (&mut dh[j..j + p], &carried(r)[..p]);
            match io.d_out {
                Some(g) => {
                    let g = &g[at(dm, r, ti, dir, p)..][..p];
                    for ((d, &a), &n) in dh.iter_mut().zip(g).zip(next) {
                        *d = a + n;
                    }
                }
                None => dh.copy_from_slice(next),
            }
        }
        if let Some(w_hr_t) = w.w_hr_t {
            // dm = dh W_hr; dh is kept for the gradient of W_hr.
            // SAFETY: rows (r, ti, dir) of d_proj belong to this task alone; W_hr is the
            // transpose of the (H × P) view W_hrᵀ.
            unsafe {
                for r in r0..end {
                    let j = (r - r0) * p;
                    let dst = io.d_proj.slice(at(dm, r, ti, dir, p), p);
                    dst.copy_from_slice(&dh[j..j + p]);
                }
                let lhs = Mat::rows(dh.as_ptr(), p);
                let dst = d_m.as_mut_ptr();
                step_matmul(
                    (end - r0, h, p),
                    dst,
                    h,
                    false,
                    lhs,
                    Weights::Strided(w_hr_t.t()),
                    false,
                );
            }
        }
        for r in r0..end {
            let (j, jh) = ((r - r0) * p, (r - r0) * h);
            let (h_prev, c_prev): (&[f32], &[f32]) = match r < cont {
                false => io.s0[(dir * b + r) * sw..][..sw].split_at(p),
                true => (
                    &io.out[at(dm, r, tp, dir, p)..][..p],
                    if R::CELL {
                        &io.saved[at(dm, r, tp, dir, sv)..][..h]
                    } else {
                        &[]
                    },
                ),
            };
            let dh_row = match w.w_hr_t {
                Some(_) => &d_m[jh..jh + h],
                None => &dh[j..j + p],
            };
            // SAFETY: rows (r, ti, dir) of the shared buffers belong to this task alone.
            unsafe {
                io.h_prev
                    .slice(at(dm, r, ti, dir, dm.i + p) + dm.i, p)
                    .copy_from_slice(h_prev);
                let d_hid: &mut [f32] = if R::SPLIT {
                    io.d_hid.slice(at(dm, r, ti, dir, gh), gh)
                } else {
                    &mut []
                };
                let (dh_next, dc_row) = carried(r).split_at_mut(p);
                rows.backward(
                    dh_row,
                    dc_row,
                    io.gates.slice(at(dm, r, ti, dir, gh), gh),
                    d_hid,
                    &io.saved[at(dm, r, ti, dir, sv)..][..sv],
                    h_prev,
                    c_prev,
                    dh_next,
                );
            }
        }
        // dh_{t-1} [+]= dG_t · W_hh, for the running rows (a row that started at this step
        // keeps the gradient of its initial state).
        // SAFETY: the step's gradient rows of this task; W_hh.
        unsafe {
            let lhs = Mat::rows(d_rec.at(at(dm, r0, ti, dir, gh)), dm.row_stride(gh));
            let dst = io.d_s0.at((dir * b + r0) * sw);
            let w_hh = io.w_hh.backward(w.w_hh, dir, (p, gh));
            step_matmul((end - r0, p, gh), dst, sw, R::SPLIT, lhs, w_hh, alone);
        }
    }
}
