//! The time loops of the fused op, written once for every family ([`Rows`]): one task
//! (a direction and a block of batch rows) runs its whole recurrence on one thread, so the
//! steps need no synchronisation.
//!
//! Per step, forward: one GEMM `h_{t-1} W_hhᵀ` accumulated into the step's gates (or, for
//! a [`Rows::SPLIT`] family, into a scratch row block pre-filled with `b_hh`), then the
//! family's row kernel. Backward: the row kernel, then one GEMM `dG_t W_hh` for the
//! gradient of `h_{t-1}`.
//!
//! The loops are compiled three times, for AVX-512, for AVX2 + FMA and for the baseline
//! instruction set, and the best one the CPU has is picked at run time, so a library user
//! gets vectorised kernels without `-C target-cpu=native`.

use super::buffers::{matmul, parallel_for, tasks, DirWeights, Mat, Shared, Task};
use super::positions::Positions;
use crate::kernels::Rows;

/// Sizes of one call: batch rows, steps (the longest row's), input features, hidden size,
/// directions, and where each row's steps lie.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims<'a> {
    pub b: usize,
    pub t: usize,
    pub i: usize,
    pub h: usize,
    pub dirs: usize,
    pub pos: Positions<'a>,
}

impl Dims<'_> {
    /// The number of `(row, time)` positions: `B·T`, or the sum of the lengths.
    pub fn n(&self) -> usize {
        self.pos.count()
    }

    /// Floats between consecutive rows of one step in a `(positions, D, width)` buffer.
    fn row_stride(&self, width: usize) -> usize {
        self.pos.row_stride() * self.dirs * width
    }

    /// The rows of `r0..r1` running at time `ti`, as `(end of active rows, end of the
    /// rows continuing from an earlier step)`: rows `r0..cont` read their previous state
    /// from the step before, rows `cont..end` start from the initial state (direction 1
    /// starts each row at its own last step).
    fn running(&self, dir: usize, ti: usize, (r0, r1): (usize, usize)) -> (usize, usize) {
        let end = r1.min(self.pos.active(ti)).max(r0);
        let cont = match dir {
            1 if ti + 1 < self.t => end.min(self.pos.active(ti + 1)).max(r0),
            1 => r0,
            _ if ti > 0 => end,
            _ => r0,
        };
        (end, cont)
    }

    /// The time step before `ti` in direction `dir`'s order.
    fn before(&self, dir: usize, ti: usize) -> usize {
        if dir == 1 {
            ti + 1
        } else {
            ti.wrapping_sub(1)
        }
    }

    /// Row length of the packed weights `[W_ih | W_hh | b_ih | b_hh]`.
    pub fn k(&self) -> usize {
        self.i + self.h + 2
    }

    /// The time index a direction processes at `step` (direction 1 runs backwards).
    fn time(&self, dir: usize, step: usize) -> usize {
        if dir == 1 {
            self.t - 1 - step
        } else {
            step
        }
    }
}

/// Offsets into the `(positions, D, width)` buffers: row `r`, time `t`, direction `d`.
#[inline(always)]
fn at(dm: Dims, r: usize, t: usize, d: usize, width: usize) -> usize {
    (dm.pos.at(r, t) * dm.dirs + d) * width
}

/// What the forward loops read and write.
pub(crate) struct Forward<'a> {
    /// Each direction's parameters.
    pub w: &'a [DirWeights],
    /// `W_hhᵀ` of every direction, `(D, H, G·H)` contiguous: the layout in which the
    /// GEMM reads it without re-packing it at every step (worth it from a few steps on;
    /// `None` reads `W_hh` from `w`).
    pub w_hh_t: Option<&'a [f32]>,
    /// Initial state `(D, B, S·H)`, `[h0 | c0]` for a family with a cell.
    pub s0: &'a [f32],
    /// Hidden states `(positions, D·H)`.
    pub out: Shared,
    /// Gates `(positions, D·G·H)`: input projections in, activations out.
    pub gates: Shared,
    /// What each step saves, `(positions, D·SAVED·H)`.
    pub saved: Shared,
}

/// What the backward loops read and write.
pub(crate) struct Backward<'a> {
    pub w: &'a [DirWeights],
    pub s0: &'a [f32],
    /// Hidden states of the forward pass `(positions, D·H)`.
    pub out: &'a [f32],
    pub saved: &'a [f32],
    /// Gradient of the hidden states `(positions, D·H)`, when the output was the sequence.
    pub d_out: Option<&'a [f32]>,
    /// Gradient of the final states `(S, D, B, H)`.
    pub d_final: &'a [f32],
    /// Activations in, gradients of the input pre-activations out.
    pub gates: Shared,
    /// Gradients of the recurrent pre-activations, [`Rows::SPLIT`] families only.
    pub d_hid: Shared,
    /// Receives `h_{t-1}` of every step `(positions, D·H)`, for the weight gradient.
    pub h_prev: Shared,
    /// Receives the gradient of the initial state `(D, B, S·H)`.
    pub d_s0: Shared,
}

/// Floats per batch row and direction of the state: `H`, or `2H` with a cell.
pub(crate) fn state_width<R: Rows>(h: usize) -> usize {
    if R::CELL {
        2 * h
    } else {
        h
    }
}

/// One recurrent GEMM `h_{t-1} W_hhᵀ` of a step, over rows whose previous states lie in
/// one strided block.
struct RecurrentGemm {
    /// The first row's previous state and the row stride.
    h_prev: Mat,
    /// The first row, counted from the task's first, and the number of rows.
    rows: (usize, usize),
}

#[inline(always)]
fn forward_task<R: Rows>(rows: R, dm: Dims, task: Task, io: &Forward<'_>) {
    let Dims { b, t, h, .. } = dm;
    let (gh, sw, sv) = (R::GATES * h, state_width::<R>(h), R::SAVED * h);
    let Task {
        dir,
        rows: (r0, r1),
    } = task;
    let bl = r1 - r0;
    let w = io.w[dir];
    let b_hh: Vec<f32> = match R::SPLIT {
        // SAFETY: b_hh has G·H elements.
        true => (0..gh).map(|n| unsafe { w.b_hh.get(n) }).collect(),
        false => Vec::new(),
    };
    let mut hid = vec![0f32; if R::SPLIT { bl * gh } else { 0 }];
    let w_hh_t = match io.w_hh_t {
        Some(wt) => Mat::rows(wt[dir * h * gh..].as_ptr(), gh),
        None => Mat::transposed(w.w_hh.ptr, w.w_hh.rs),
    };
    for step in 0..t {
        let ti = dm.time(dir, step);
        let (end, cont) = dm.running(dir, ti, (r0, r1));
        if end == r0 {
            continue;
        }
        let tp = dm.before(dir, ti);
        // Rows continuing from the step before, then rows starting from the initial state.
        let continuing = (cont > r0).then(|| RecurrentGemm {
            h_prev: Mat::rows(io.out.at(at(dm, r0, tp, dir, h)), dm.row_stride(h)),
            rows: (0, cont - r0),
        });
        let starting = (end > cont).then(|| RecurrentGemm {
            h_prev: Mat::rows(io.s0[(dir * b + cont) * sw..].as_ptr(), sw),
            rows: (cont - r0, end - cont),
        });
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
                        io.gates.at(at(dm, r0 + g.rows.0, ti, dir, gh)),
                        dm.row_stride(gh),
                    ),
                };
                matmul((g.rows.1, gh, h), dst, rs, true, g.h_prev, w_hh_t, false);
            }
        }
        for r in r0..end {
            // SAFETY: each slice is this task's own row (r, ti, dir) or the previous
            // step's, which no other task touches; none of them overlap.
            unsafe {
                let (h_prev, c_prev): (&[f32], &[f32]) = match r < cont {
                    false => {
                        let s = &io.s0[(dir * b + r) * sw..][..sw];
                        s.split_at(h)
                    }
                    true => (
                        io.out.slice(at(dm, r, tp, dir, h), h),
                        if R::CELL {
                            io.saved.slice(at(dm, r, tp, dir, sv), h)
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
                rows.forward(
                    io.gates.slice(at(dm, r, ti, dir, gh), gh),
                    hid_row,
                    h_prev,
                    c_prev,
                    io.out.slice(at(dm, r, ti, dir, h), h),
                    io.saved.slice(at(dm, r, ti, dir, sv), sv),
                );
            }
        }
    }
}

#[inline(always)]
fn backward_task<R: Rows>(rows: R, dm: Dims, task: Task, io: &Backward<'_>) {
    let Dims { b, t, h, dirs, .. } = dm;
    let (gh, sw, sv) = (R::GATES * h, state_width::<R>(h), R::SAVED * h);
    let Task {
        dir,
        rows: (r0, r1),
    } = task;
    let bl = r1 - r0;
    let w_hh = io.w[dir].w_hh;
    // Each row's gradient starts at its own last step with that of the final state; rows
    // not yet running keep it untouched until they start.
    let mut dh_next = vec![0f32; bl * h];
    let mut dc = vec![0f32; if R::CELL { bl * h } else { 0 }];
    for r in r0..r1 {
        let j = (r - r0) * h;
        dh_next[j..j + h].copy_from_slice(&io.d_final[(dir * b + r) * h..][..h]);
        if R::CELL {
            dc[j..j + h].copy_from_slice(&io.d_final[((dirs + dir) * b + r) * h..][..h]);
        }
    }
    let mut dh = vec![0f32; h];
    let d_rec = if R::SPLIT { io.d_hid } else { io.gates };
    for step in (0..t).rev() {
        let ti = dm.time(dir, step);
        let (end, cont) = dm.running(dir, ti, (r0, r1));
        if end == r0 {
            continue;
        }
        let tp = dm.before(dir, ti);
        for r in r0..end {
            let j = (r - r0) * h;
            match io.d_out {
                Some(g) => {
                    let g = &g[at(dm, r, ti, dir, h)..][..h];
                    for ((d, &a), &n) in dh.iter_mut().zip(g).zip(&dh_next[j..j + h]) {
                        *d = a + n;
                    }
                }
                None => dh.copy_from_slice(&dh_next[j..j + h]),
            }
            let (h_prev, c_prev): (&[f32], &[f32]) = match r < cont {
                false => io.s0[(dir * b + r) * sw..][..sw].split_at(h),
                true => (
                    &io.out[at(dm, r, tp, dir, h)..][..h],
                    if R::CELL {
                        &io.saved[at(dm, r, tp, dir, sv)..][..h]
                    } else {
                        &[]
                    },
                ),
            };
            // SAFETY: rows (r, ti, dir) of the shared buffers belong to this task alone.
            unsafe {
                io.h_prev
                    .slice(at(dm, r, ti, dir, h), h)
                    .copy_from_slice(h_prev);
                let d_hid: &mut [f32] = if R::SPLIT {
                    io.d_hid.slice(at(dm, r, ti, dir, gh), gh)
                } else {
                    &mut []
                };
                let dc_row: &mut [f32] = if R::CELL { &mut dc[j..j + h] } else { &mut [] };
                rows.backward(
                    &dh,
                    dc_row,
                    io.gates.slice(at(dm, r, ti, dir, gh), gh),
                    d_hid,
                    &io.saved[at(dm, r, ti, dir, sv)..][..sv],
                    h_prev,
                    c_prev,
                    &mut dh_next[j..j + h],
                );
            }
        }
        // dh_{t-1} [+]= dG_t · W_hh, for the running rows (a row that started at this step
        // keeps the gradient of its initial state).
        // SAFETY: the step's gradient rows of this task; W_hh.
        unsafe {
            let lhs = Mat::rows(d_rec.at(at(dm, r0, ti, dir, gh)), dm.row_stride(gh));
            matmul(
                (end - r0, h, gh),
                dh_next.as_mut_ptr(),
                h,
                R::SPLIT,
                lhs,
                w_hh,
                false,
            );
        }
    }
    for r in r0..r1 {
        let j = (r - r0) * h;
        // SAFETY: row (dir, r) of d_s0 belongs to this task alone.
        let ds = unsafe { io.d_s0.slice((dir * b + r) * sw, sw) };
        ds[..h].copy_from_slice(&dh_next[j..j + h]);
        if R::CELL {
            ds[h..].copy_from_slice(&dc[j..j + h]);
        }
    }
}

/// The instruction sets the loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    Baseline,
}

/// The best instruction set of this CPU (detected once; `std` caches the answer).
pub(crate) fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("fma")
        {
            return Isa::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

/// Defines a function that runs `$generic` compiled for the best instruction set.
macro_rules! dispatched {
    ($name:ident, $generic:ident, $io:ty) => {
        fn $name<R: Rows>(rows: R, dm: Dims, task: Task, io: &$io) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                unsafe fn avx512<R: Rows>(rows: R, dm: Dims, task: Task, io: &$io) {
                    $generic(rows, dm, task, io)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<R: Rows>(rows: R, dm: Dims, task: Task, io: &$io) {
                    $generic(rows, dm, task, io)
                }
                match isa() {
                    // SAFETY: the CPU has these features (checked by `isa`).
                    Isa::Avx512 => return unsafe { avx512(rows, dm, task, io) },
                    Isa::Avx2 => return unsafe { avx2(rows, dm, task, io) },
                    Isa::Baseline => {}
                }
            }
            $generic(rows, dm, task, io)
        }
    };
}

dispatched!(forward_dispatched, forward_task, Forward<'_>);
dispatched!(backward_dispatched, backward_task, Backward<'_>);

/// Runs `f` for every task, in parallel when there are several.
fn for_tasks(dm: Dims, f: impl Fn(Task) + Sync) {
    let lengths = match dm.pos {
        Positions::Packed(p) => Some(&p.lengths[..]),
        Positions::Padded { .. } => None,
    };
    let ts = tasks(dm.b, dm.dirs, lengths);
    parallel_for(ts.len(), |k| f(ts[k]));
}

/// The forward recurrence of every direction and batch row.
pub(crate) fn forward<R: Rows>(rows: R, dm: Dims, io: &Forward<'_>) {
    for_tasks(dm, |task| forward_dispatched(rows, dm, task, io));
}

/// Back-propagation through time for every direction and batch row.
pub(crate) fn backward<R: Rows>(rows: R, dm: Dims, io: &Backward<'_>) {
    for_tasks(dm, |task| backward_dispatched(rows, dm, task, io));
}
