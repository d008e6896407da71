//! One layer's forward pass as the op ([`super::op::SequenceOp`]) and the wavefront
//! ([`super::wavefront`]) both run it: which steps each buffer keeps, the buffers, the
//! weights laid out for the step GEMMs, the recurrence, and the final states.

use super::buffers::{recycle, take_buffer, DirWeights, Mat, Shared};
use super::columns;
use super::gate_tiles;
use super::layout::{lay_out, LaidOut, StepWeights, WeightLayout};
use super::matmul::matmul;
use super::recurrence::{self, runs_split, state_width, Dims, Forward, Slots};
use super::wavefront::Wave;
use super::SequenceOutput;
use crate::kernels::Rows;

/// The buffers of one layer's forward pass and how its steps read the weights.
pub(crate) struct ForwardPass {
    /// Hidden states (the output sequence, or the last two steps', [`ForwardPass::slots`]).
    pub out: Vec<f32>,
    /// Gates: every step's for a backward pass, else the last two.
    pub gates: Vec<f32>,
    /// What each step saves beside `h` (with a cell, `c`).
    pub saved: Vec<f32>,
    /// With a projection, `m = o ⊙ tanh(c)`.
    pub proj: Vec<f32>,
    /// Which steps `out`, `saved` (and `proj`) and `gates` keep.
    pub slots: [Slots; 3],
    /// Whether each step projects its own input (else one GEMM projected every step's
    /// into `gates` first).
    steps_project: bool,
    /// Whether inference splits the steps by gate columns ([`columns`]).
    by_columns: bool,
    w_hh: LaidOut,
    w_ih: LaidOut,
    /// Each direction's weights packed for the LSTM's gate tiles ([`gate_tiles`]), where
    /// the steps run on them (then `w_hh` and `w_ih` stay as they are); else empty.
    gate_tiles: Vec<f32>,
}

impl ForwardPass {
    /// Sets up the pass of `dm` over `x` with the parameters `w`: `train` keeps what the
    /// backward pass needs, `output` says whether the sequence is wanted. In a wavefront
    /// (`in_wave`) the layer runs on one thread (no split by columns), and where its input
    /// arrives step by step (`input_by_step`, the layers above the first) its steps
    /// project it.
    pub fn new<R: Rows>(
        dm: Dims,
        x: &[f32],
        w: &[DirWeights],
        (train, output): (bool, SequenceOutput),
        (in_wave, input_by_step): (bool, bool),
    ) -> Self {
        let Dims { t, b, h, p, .. } = dm;
        let gh = R::GATES * h;
        // Inference keeps only the last two steps of what the next step reads (and of `h`
        // unless it is the output). Every position kept is written (with the sequence as
        // output the buffer becomes the output tensor).
        let saved_slots = if train { Slots::Every } else { Slots::LastTwo };
        let out_slots = match (train, output) {
            (false, SequenceOutput::Final) => Slots::LastTwo,
            _ => Slots::Every,
        };
        // Where the step GEMMs lay W_hh out, the steps project their own input (with W_ih
        // laid out alike), and inference then keeps only the last two steps' gates. Steps
        // of one or two rows 256 wide or more read the weights as they are: their input
        // projections run as one GEMM over every position first.
        let kind = StepWeights::forward_kind(t, b, p);
        let steps_project = input_by_step || kind != WeightLayout::AsIs;
        let gates_slots = if steps_project {
            saved_slots
        } else {
            Slots::Every
        };
        // Inference by columns packs each thread's share of the weights itself.
        let by_columns = !in_wave && columns::runs_by_columns(dm, train, kind);
        // An LSTM whose steps project their input and split the rows between threads runs
        // them on the gate tiles, which read their own packing of both weights (and in
        // inference keep no gates at all).
        let tiles = R::TILES
            && steps_project
            && !in_wave
            && !by_columns
            && gate_tiles::runs_on_tiles(h, p)
            && runs_split(dm);
        let mut gates = take_buffer(match tiles && !train {
            true => 0,
            false => gates_slots.len(dm, gh),
        });
        if !steps_project {
            input_projection::<R>(dm, x, w, &mut gates);
        }
        let mut tile_weights = take_buffer(if tiles {
            dm.dirs * gate_tiles::packed_len(dm.i, h)
        } else {
            0
        });
        if tiles {
            gate_tiles::pack(w, (dm.i, h), &mut tile_weights);
        }
        let laid = if by_columns || tiles {
            WeightLayout::AsIs
        } else {
            kind
        };
        Self {
            out: take_buffer(out_slots.len(dm, p)),
            gates,
            saved: take_buffer(saved_slots.len(dm, R::SAVED * h)),
            proj: take_buffer(if p != h { saved_slots.len(dm, h) } else { 0 }),
            slots: [out_slots, saved_slots, gates_slots],
            steps_project,
            by_columns,
            w_hh: lay_out(w, |d| d.w_hh, (p, gh), laid, true),
            w_ih: lay_out(w, |d| d.w_ih, (dm.i, gh), laid, true),
            gate_tiles: tile_weights,
        }
    }

    /// What the step loops read and write: this pass's buffers, the parameters `w`, the
    /// initial state `s0` and the input `x` (`(positions, I)`, only read).
    pub fn io<'a>(
        &'a mut self,
        w: &'a [DirWeights],
        s0: &'a [f32],
        x: Shared,
        wave: Wave<'a>,
    ) -> Forward<'a> {
        let [out_slots, saved_slots, gates_slots] = self.slots;
        Forward {
            w,
            w_hh: self.w_hh.view(),
            w_ih: self.steps_project.then(|| self.w_ih.view()),
            s0,
            out: Shared::new(&mut self.out),
            out_slots,
            saved_slots,
            gates: Shared::new(&mut self.gates),
            gates_slots,
            x,
            saved: Shared::new(&mut self.saved),
            proj: Shared::new(&mut self.proj),
            gate_tiles: (!self.gate_tiles.is_empty()).then_some(&self.gate_tiles[..]),
            wave,
        }
    }

    /// Runs the whole recurrence of `dm` (every thread; by columns where set up so).
    pub fn run<R: Rows>(&mut self, rows: R, dm: Dims, w: &[DirWeights], s0: &[f32], x: &[f32]) {
        let by_columns = self.by_columns;
        let io = self.io(w, s0, Shared::read_only(x), Wave::default());
        match by_columns {
            true => columns::forward(rows, dm, &io),
            false => recurrence::forward(rows, dm, &io),
        }
    }

    /// The final states `(D, B, SW)`, laid out as the initial state: `h` of each
    /// direction's last step (and `c`).
    pub fn final_states<R: Rows>(&self, dm: Dims) -> Vec<f32> {
        let Dims { b, h, p, dirs, .. } = dm;
        let [out_slots, saved_slots, _] = self.slots;
        let sw = state_width::<R>(h, p);
        let mut fin = vec![0f32; dirs * b * sw];
        for d in 0..dirs {
            for r in 0..b {
                // Each row ends at its own last step (direction 1 at time 0).
                let last = if d == 1 { 0 } else { dm.pos.len(r) - 1 };
                let row = &mut fin[(d * b + r) * sw..][..sw];
                row[..p].copy_from_slice(&self.out[out_slots.at(dm, r, last, d, p)..][..p]);
                if R::CELL {
                    let at = saved_slots.at(dm, r, last, d, R::SAVED * h);
                    row[p..].copy_from_slice(&self.saved[at..][..h]);
                }
            }
        }
        fin
    }

    /// Hands the laid-out weights back for reuse; the buffers stay.
    pub fn recycle_weights(&mut self) {
        std::mem::take(&mut self.w_hh).recycle();
        std::mem::take(&mut self.w_ih).recycle();
        recycle(std::mem::take(&mut self.gate_tiles));
    }

    /// Hands every buffer back for reuse but `out`, which it returns.
    pub fn into_out(mut self) -> Vec<f32> {
        self.recycle_weights();
        for v in [self.gates, self.saved, self.proj] {
            recycle(v);
        }
        self.out
    }
}

/// `gates = x W_ihᵀ` for every position and direction `(N, D·G·H)`, one GEMM per
/// direction split over the threads. The biases are added per step, by the time loop.
fn input_projection<R: Rows>(dm: Dims, x: &[f32], w: &[DirWeights], gates: &mut [f32]) {
    let Dims { i, h, dirs, .. } = dm;
    let (gh, n) = (R::GATES * h, dm.n());
    for (d, dw) in w.iter().enumerate() {
        // SAFETY: x is (N, I); W_ih (G·H, I) is read transposed; the destination is
        // direction d's columns of gates (N, D·G·H).
        unsafe {
            let w_ih_t = Mat::transposed(dw.w_ih.ptr, dw.w_ih.rs);
            let x = Mat::rows(x.as_ptr(), i);
            let dst = gates[d * gh..].as_mut_ptr();
            matmul((n, gh, i), dst, dirs * gh, false, x, w_ih_t, true);
        }
    }
}
