//! The LSTM step as one kernel: the product of `[x_t | h_{t-1}]` with both weight
//! matrices, and the gates and the cell update on each tile while its sums are still in
//! registers (the GEMM's epilogue), with AVX-512 or AVX2 + FMA.
//!
//! Each direction's `[W_ih | W_hh]ᵀ` and `b_ih + b_hh` are packed once per call into
//! panels of one register's units (16 with AVX-512, 8 with AVX2, [`units`]): panel `u`
//! holds the four gates of its units as `I + H` rows of four registers (`[i | f | g |
//! o]`), then the biases. A tile of up to six batch rows (three with AVX2) starts its
//! accumulators (24 of the 32 registers; 12 of 16) from the biases, adds the input's and
//! then the previous state's products, and hands each row's four registers to the LSTM
//! cell ([`crate::kernels::cell`], the row kernels' own arithmetic on a register's lanes):
//! it writes `h_t`, `c_t` and, for a backward pass, the activations and `tanh(c_t)` where
//! the row kernels would have. The step's gates never go through memory as
//! pre-activations, and its two products and the bias pass become one.
//!
//! Used for LSTM layers without a projection, `H` a multiple of the panel's units, where
//! the steps split the batch rows between threads ([`runs_on_tiles`] and
//! [`super::pass::ForwardPass::new`]).

use super::buffers::{parallel_for, DirWeights, Shared};
use super::recurrence::{isa, state_width, Dims, Forward, Isa, Slots};
use crate::kernels::{LstmRows, Rows};

/// Units per panel with the instruction set `isa`: one register of each gate (`None`:
/// no tiles without AVX2 or AVX-512).
pub(crate) fn units(isa: Isa) -> Option<usize> {
    match isa {
        Isa::Avx512 => Some(16),
        Isa::Avx2 => Some(8),
        Isa::Baseline => None,
    }
}

/// Whether the steps of an LSTM layer of `h` units, `h` `p` wide, can run on the gate
/// tiles on this CPU: no projection, whole panels, AVX2 or AVX-512.
pub(crate) fn runs_on_tiles(h: usize, p: usize) -> bool {
    cfg!(target_arch = "x86_64") && p == h && units(isa()).is_some_and(|u| h.is_multiple_of(u))
}

/// Floats of one direction's panels, for `i` input features and `h` units: `4H` columns
/// of `I + H` weights and a bias, whatever the panels' width.
pub(crate) fn packed_len(i: usize, h: usize) -> usize {
    4 * h * (i + h + 1)
}

/// One direction's packed weights ([`pack`]).
#[derive(Clone, Copy)]
pub(crate) struct GatePanels {
    ptr: *const f32,
    i: usize,
    h: usize,
    /// Units per panel ([`units`]), and the instruction set of the kernels that read them.
    units: usize,
    isa: Isa,
}

// SAFETY: only read, while the buffer it points into is alive (one op call).
unsafe impl Send for GatePanels {}
unsafe impl Sync for GatePanels {}

impl GatePanels {
    /// Direction `dir`'s panels in `buf`, which [`pack`] filled for `i` inputs, `h` units.
    pub fn of(buf: &[f32], dir: usize, (i, h): (usize, usize)) -> Self {
        let len = packed_len(i, h);
        let isa = isa();
        Self {
            ptr: buf[dir * len..][..len].as_ptr(),
            i,
            h,
            units: units(isa).expect("gate tiles need AVX2 or AVX-512"),
            isa,
        }
    }

    /// Floats per panel row: the four gates of the panel's units.
    fn cols(self) -> usize {
        4 * self.units
    }

    /// Panel `u`: `I + H` rows, then the biases.
    fn panel(self, u: usize) -> *const f32 {
        self.ptr
            .wrapping_add(u * (self.i + self.h + 1) * self.cols())
    }
}

/// Packs every direction's `[W_ih | W_hh]ᵀ` and biases into `dst` (`D ·` [`packed_len`]
/// floats), one panel per parallel task.
pub(crate) fn pack(w: &[DirWeights], (i, h): (usize, usize), dst: &mut [f32]) {
    let width = units(isa()).expect("gate tiles need AVX2 or AVX-512");
    let (panels, cols) = (h / width, 4 * width);
    let len = (i + h + 1) * cols;
    assert!(
        dst.len() >= w.len() * panels * len,
        "gate panel buffer too short"
    );
    let out = Shared::new(dst);
    parallel_for(w.len() * panels, |job| {
        let (dw, u) = (w[job / panels], job % panels);
        // SAFETY: panel `job`'s floats belong to this task alone.
        let panel = unsafe { out.slice(job * len, len) };
        for col in 0..cols {
            // Gate block `col / width`, unit `width·u + col % width`: row n of the
            // parameters.
            let n = col / width * h + u * width + col % width;
            // SAFETY: row n < 4H of W_ih (I columns) and W_hh (H columns), element n of
            // the biases.
            unsafe {
                for kk in 0..i {
                    panel[kk * cols + col] = *dw.w_ih.ptr.add(n * dw.w_ih.rs + kk * dw.w_ih.cs);
                }
                for kk in 0..h {
                    panel[(i + kk) * cols + col] =
                        *dw.w_hh.ptr.add(n * dw.w_hh.rs + kk * dw.w_hh.cs);
                }
                panel[(i + h) * cols + col] = dw.b_ih.get(n) + dw.b_hh.get(n);
            }
        }
    });
}

/// A run of a step's batch rows as the tiles read and write them: each operand's first
/// row and the floats between its rows.
#[derive(Clone, Copy)]
pub(crate) struct StepRows {
    pub rows: usize,
    /// `x_t` (`I` floats a row), `h_{t-1}` and `c_{t-1}` (`H`).
    pub x: (*const f32, usize),
    pub h_prev: (*const f32, usize),
    pub c_prev: (*const f32, usize),
    /// Receives `h_t`.
    pub h: (*mut f32, usize),
    /// Receives `c_t`, and for a backward pass `tanh(c_t)` after it (`[c | tanh c]`).
    pub saved: (*mut f32, usize),
    /// For a backward pass, receives the activations `[i | f | g | o]` (`4H`).
    pub gates: Option<(*mut f32, usize)>,
}

/// Runs the step of `rows` on the panels `w`.
///
/// # Safety
/// Every operand must address its rows, the outputs must not overlap the inputs nor each
/// other, and the CPU must have the panels' instruction set ([`runs_on_tiles`]).
pub(crate) unsafe fn step(w: GatePanels, rows: StepRows) {
    #[cfg(target_arch = "x86_64")]
    match w.isa {
        Isa::Avx512 => x86::step_512(w, rows),
        Isa::Avx2 => x86::step_256(w, rows),
        Isa::Baseline => unreachable!("gate tiles need AVX2 or AVX-512"),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("gate tiles need x86-64 ({:p}, {})", w.ptr, rows.rows);
}

/// One step of an LSTM task's running rows `r0..end` (rows `r0..cont` continuing from the
/// step before, the rest starting from the initial state) at time `ti` (the step before:
/// `tp`), direction `dir`, on its panels: what the step loop of [`super::steps`] does
/// with the GEMMs and the row kernel, in one pass.
pub(super) fn forward_step(
    w: GatePanels,
    dm: Dims,
    io: &Forward<'_>,
    (r0, cont, end): (usize, usize, usize),
    (ti, tp, dir): (usize, usize, usize),
) {
    let Dims { b, h, .. } = dm;
    let (os, ss, gs) = (io.out_slots, io.saved_slots, io.gates_slots);
    // What a step saves (`[c | tanh c]`) and an initial state's row (`[h | c]`).
    let (sv, sw) = (LstmRows::SAVED * h, state_width::<LstmRows>(h, h));
    let train = ss == Slots::Every;
    let x_rs = dm.pos.row_stride() * dm.i;
    let run = |first: usize, last: usize, h_prev: (*const f32, usize), c_prev| StepRows {
        rows: last - first,
        x: (io.x.at(dm.pos.at(first, ti) * dm.i), x_rs),
        h_prev,
        c_prev,
        h: (
            io.out.at(os.at(dm, first, ti, dir, h)),
            os.row_stride(dm, h),
        ),
        saved: (
            io.saved.at(ss.at(dm, first, ti, dir, sv)),
            ss.row_stride(dm, sv),
        ),
        gates: train.then(|| {
            (
                io.gates.at(gs.at(dm, first, ti, dir, 4 * h)),
                gs.row_stride(dm, 4 * h),
            )
        }),
    };
    let continuing = (cont > r0).then(|| {
        let h_prev = (
            io.out.at(os.at(dm, r0, tp, dir, h)).cast_const(),
            os.row_stride(dm, h),
        );
        let c_prev = (
            io.saved.at(ss.at(dm, r0, tp, dir, sv)).cast_const(),
            ss.row_stride(dm, sv),
        );
        run(r0, cont, h_prev, c_prev)
    });
    let starting = (end > cont).then(|| {
        let s0 = io.s0[(dir * b + cont) * sw..].as_ptr();
        run(cont, end, (s0, sw), (s0.wrapping_add(h), sw))
    });
    for rows in continuing.into_iter().chain(starting) {
        // SAFETY: the rows' slots of this step and the step before (or of the initial
        // state), which only this task touches; the CPU has the panels' instruction
        // set (they exist only then).
        unsafe { step(w, rows) };
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;
