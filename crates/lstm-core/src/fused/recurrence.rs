//! The recurrence of the fused op, written once for every family ([`Rows`]): the work is
//! split into tasks (a direction and a block of batch rows, [`super::steps`]), each of
//! which runs its whole recurrence on one thread, so the steps need no synchronisation.
//!
//! The loops are compiled three times, for AVX-512, for AVX2 + FMA and for the baseline
//! instruction set, and the best one the CPU has is picked at run time, so a library user
//! gets vectorised kernels without `-C target-cpu=native`.

use super::buffers::{parallel_for, threads, DirWeights, Shared};
use super::layout::StepWeights;
use super::positions::Positions;
use super::steal::{Block, Board};
use super::steps::{backward_task, forward_task};
use super::tasks::{tasks, Task};
use super::wavefront::Wave;
use crate::kernels::Rows;

/// Sizes of one call: batch rows, steps (the longest row's), input features, hidden size,
/// the size of `h` (the projection's `P`, else `H`), directions, and where each row's
/// steps lie.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims<'a> {
    pub b: usize,
    pub t: usize,
    pub i: usize,
    pub h: usize,
    pub p: usize,
    pub dirs: usize,
    pub pos: Positions<'a>,
}

impl Dims<'_> {
    /// One direction over `b` full-length rows of `t` steps of `i` features, `h` wide
    /// (`h` of `p` after a projection).
    pub fn one_direction(b: usize, t: usize, i: usize, (h, p): (usize, usize)) -> Self {
        Dims {
            b,
            t,
            i,
            h,
            p,
            dirs: 1,
            pos: Positions::Padded { b, t },
        }
    }

    /// The number of `(row, time)` positions: `B·T`, or the sum of the lengths.
    pub fn n(&self) -> usize {
        self.pos.count()
    }

    /// Floats between consecutive rows of one step in a `(positions, D, width)` buffer.
    pub fn row_stride(&self, width: usize) -> usize {
        self.pos.row_stride() * self.dirs * width
    }

    /// The rows of `r0..r1` running at time `ti`, as `(end of active rows, end of the
    /// rows continuing from an earlier step)`: rows `r0..cont` read their previous state
    /// from the step before, rows `cont..end` start from the initial state (direction 1
    /// starts each row at its own last step).
    pub fn running(&self, dir: usize, ti: usize, (r0, r1): (usize, usize)) -> (usize, usize) {
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
    pub fn before(&self, dir: usize, ti: usize) -> usize {
        if dir == 1 {
            ti + 1
        } else {
            ti.wrapping_sub(1)
        }
    }

    /// Row length of the packed weights `[W_ih | W_hh | b_ih | b_hh]`.
    pub fn k(&self) -> usize {
        self.i + self.p + 2
    }

    /// The time index a direction processes at `step` (direction 1 runs backwards).
    pub fn time(&self, dir: usize, step: usize) -> usize {
        if dir == 1 {
            self.t - 1 - step
        } else {
            step
        }
    }
}

/// Offsets into the `(positions, D, width)` buffers: row `r`, time `t`, direction `d`.
#[inline(always)]
pub(crate) fn at(dm: Dims, r: usize, t: usize, d: usize, width: usize) -> usize {
    (dm.pos.at(r, t) * dm.dirs + d) * width
}

/// Which steps a per-position buffer keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slots {
    /// Every position `(positions, D, width)`, for the backward pass or as the output.
    Every,
    /// Only the last two steps `(2, B, D, width)`, by the parity of the time index
    /// (inference: a step reads the one before it and nothing else).
    LastTwo,
}

impl Slots {
    /// The offset of row `r`, time `t`, direction `d`.
    #[inline(always)]
    pub fn at(self, dm: Dims, r: usize, t: usize, d: usize, width: usize) -> usize {
        match self {
            Slots::Every => at(dm, r, t, d, width),
            Slots::LastTwo => (((t & 1) * dm.b + r) * dm.dirs + d) * width,
        }
    }

    /// Floats between consecutive rows of one step.
    pub fn row_stride(self, dm: Dims, width: usize) -> usize {
        match self {
            Slots::Every => dm.row_stride(width),
            Slots::LastTwo => dm.dirs * width,
        }
    }

    /// The buffer's length in floats.
    pub fn len(self, dm: Dims, width: usize) -> usize {
        match self {
            Slots::Every => dm.n() * dm.dirs * width,
            Slots::LastTwo => 2 * dm.b * dm.dirs * width,
        }
    }
}

/// What the forward loops read and write.
pub(crate) struct Forward<'a> {
    /// Each direction's parameters.
    pub w: &'a [DirWeights],
    /// How the step GEMMs read `W_hh`.
    pub w_hh: StepWeights<'a>,
    /// How the steps read `W_ih`, when each projects its own input `x_t W_ihᵀ` into its
    /// gates (`None`: the gates come in projected, by one GEMM over every position).
    pub w_ih: Option<StepWeights<'a>>,
    /// Initial state `(D, B, SW)` ([`state_width`]), `[h0 | c0]` for a family with a cell.
    pub s0: &'a [f32],
    /// Hidden states `(positions, D·P)` (or the last two steps', [`Forward::out_slots`]).
    pub out: Shared,
    /// Which steps `out` keeps.
    pub out_slots: Slots,
    /// Which steps `saved` and `proj` keep.
    pub saved_slots: Slots,
    /// Gates `(positions, D·G·H)` (or the last two steps', [`Forward::gates_slots`]):
    /// input projections in, activations out.
    pub gates: Shared,
    /// Which steps `gates` keeps: every step's, or when the steps project their input
    /// and keep nothing for a backward pass (inference), the last two.
    pub gates_slots: Slots,
    /// The input `(positions, I)`, read when the steps project it (only read).
    pub x: Shared,
    /// What each step saves, `(positions, D·SAVED·H)`.
    pub saved: Shared,
    /// With a projection, `m = o ⊙ tanh(c)` of every step `(positions, D·H)`.
    pub proj: Shared,
    /// Each direction's weights packed for the gate tiles ([`super::gate_tiles`]), when
    /// the steps run on them (an LSTM, [`super::pass::ForwardPass::new`] decides).
    pub gate_tiles: Option<&'a [f32]>,
    /// In a wavefront of layers ([`super::wavefront`]), when each step's input is ready
    /// and where the steps done are counted.
    pub wave: Wave<'a>,
}

/// What the backward loops read and write.
pub(crate) struct Backward<'a> {
    pub w: &'a [DirWeights],
    /// How the step GEMMs read `W_hh`.
    pub w_hh: StepWeights<'a>,
    pub s0: &'a [f32],
    /// Hidden states of the forward pass `(positions, D·P)`.
    pub out: &'a [f32],
    pub saved: &'a [f32],
    /// Gradient of the hidden states `(positions, D·P)`, when the output was the sequence.
    pub d_out: Option<&'a [f32]>,
    /// Gradient of the final states `(D, B, SW)`.
    pub d_final: &'a [f32],
    /// How many of each direction's steps carry a gradient ([`super::live`]): the loops
    /// run those and leave the other steps' gradients unwritten.
    pub live: &'a [usize],
    /// Activations in, gradients of the input pre-activations out.
    pub gates: Shared,
    /// Gradients of the recurrent pre-activations, [`Rows::SPLIT`] families only.
    pub d_hid: Shared,
    /// Receives `h_{t-1}` of every step in `(positions, D, I + P)`, from column `I` of
    /// each direction's slot ([`super::weight_grads::h_prev_len`]), for the weight gradient.
    pub h_prev: Shared,
    /// Receives the gradient of the initial state `(D, B, SW)`.
    pub d_s0: Shared,
    /// With a projection, receives the gradient of `h` at every step `(positions, D·P)`,
    /// for the gradient of `W_hr`.
    pub d_proj: Shared,
}

/// Floats per batch row and direction of the state: `h` (`P` wide), then with a cell `c`
/// (`H` wide).
pub(crate) fn state_width<R: Rows>(h: usize, p: usize) -> usize {
    if R::CELL {
        p + h
    } else {
        p
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
        if cfg!(feature = "avx512")
            && is_x86_feature_detected!("avx512f")
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

/// The L2 cache of one core of this CPU in KiB, as CPUID leaf `0x8000_0006` reports it
/// (AMD and Intel both; detected once), or `None` where it does not.
pub(crate) fn l2_cache_kib() -> Option<usize> {
    static L2: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *L2.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::__cpuid;
            // The extended leaf is read only where the highest extended leaf reaches it.
            let kib = (__cpuid(0x8000_0000).eax >= 0x8000_0006)
                .then(|| (__cpuid(0x8000_0006).ecx >> 16) as usize);
            kib.filter(|&k| k > 0)
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    })
}

/// Defines a function `$name(rows, dims, task, io)` that runs `$generic` compiled for the
/// best instruction set.
macro_rules! dispatched {
    ($name:ident, $generic:ident, $io:ty, $task:ty) => {
        fn $name<R: Rows>(rows: R, dm: Dims, task: $task, io: &$io) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                unsafe fn avx512<R: Rows>(rows: R, dm: Dims, task: $task, io: &$io) {
                    $generic(rows, dm, task, io)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<R: Rows>(rows: R, dm: Dims, task: $task, io: &$io) {
                    $generic(rows, dm, task, io)
                }
                match $crate::fused::isa() {
                    // SAFETY: the CPU has these features (checked by `isa`).
                    $crate::fused::Isa::Avx512 => return unsafe { avx512(rows, dm, task, io) },
                    $crate::fused::Isa::Avx2 => return unsafe { avx2(rows, dm, task, io) },
                    $crate::fused::Isa::Baseline => {}
                }
            }
            $generic(rows, dm, task, io)
        }
    };
}
pub(super) use dispatched;

dispatched!(forward_dispatched, forward_task, Forward<'_>, Block<'_>);
dispatched!(backward_dispatched, backward_task, Backward<'_>, Block<'_>);

/// Runs `f` for every block of rows of directions running `steps` steps, in parallel
/// when there are several, an idle thread taking over part of a busy block
/// ([`super::steal`]).
fn for_blocks(dm: Dims, steps: &[usize], f: impl Fn(Block<'_>) + Sync) {
    let ts = tasks(dm.b, steps, lengths(dm));
    if ts.len() == 1 {
        return f(Block::whole(ts[0]));
    }
    let board = Board::new(ts, steps);
    parallel_for(threads(), |_| board.work(&f));
}

/// The rows' lengths, when they differ.
fn lengths<'a>(dm: Dims<'a>) -> Option<&'a [usize]> {
    match dm.pos {
        Positions::Packed(p) => Some(&p.lengths[..]),
        Positions::Padded { .. } => None,
    }
}

/// Whether the forward recurrence of `dm` runs each of its tasks on a thread of its own:
/// more than one task, or a single thread. (A task alone among several threads splits
/// its GEMMs between them instead.)
pub(crate) fn runs_split(dm: Dims) -> bool {
    tasks(dm.b, &vec![dm.t; dm.dirs], lengths(dm)).len() > 1 || threads() == 1
}

/// The forward recurrence of every direction and batch row.
pub(crate) fn forward<R: Rows>(rows: R, dm: Dims, io: &Forward<'_>) {
    let steps = vec![dm.t; dm.dirs];
    for_blocks(dm, &steps, |block| forward_dispatched(rows, dm, block, io));
}

/// The forward recurrence of one direction, every row as one task on the calling thread
/// (a layer of a wavefront, [`super::wavefront`]).
pub(crate) fn forward_alone<R: Rows>(rows: R, dm: Dims, io: &Forward<'_>) {
    let task = Task {
        dir: 0,
        rows: (0, dm.b),
        alone: false,
    };
    forward_dispatched(rows, dm, Block::whole(task), io);
}

/// Back-propagation through time for every direction and batch row, over each
/// direction's live steps.
pub(crate) fn backward<R: Rows>(rows: R, dm: Dims, io: &Backward<'_>) {
    for_blocks(dm, io.live, |block| {
        backward_dispatched(rows, dm, block, io)
    });
}
