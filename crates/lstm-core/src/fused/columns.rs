//! Inference split by gate columns: every thread runs every batch row of every step, for
//! its own block of hidden units, with a barrier between steps.
//!
//! The row split of [`super::tasks`] has each thread read all of `W_hhᵀ` at every step.
//! At hidden 512 that is 4 MiB of panels, twice an Intel core's L2, so both cores fetch
//! it from the shared L3 at every step. Here thread `k` owns the units `u₀..u₁` and packs
//! only their columns of each gate, `[i_u | f_u | g_u | o_u]` (half of `W_ih` and of
//! `W_hh` at two threads), which stay in its own cache; the step's GEMMs fill a scratch
//! block of those columns for every row, and the row kernels run on the units'
//! sub-ranges (a family's step is element-wise across units). Only `h` crosses between
//! the cores: each step's recurrent product waits at a barrier until every thread has
//! written its units of `h_{t-1}`.
//!
//! Inference of one direction over full-length rows without a projection, on candle's
//! pool with at least two threads and the panel kernels, on cores with an L2 of 2 MiB or
//! more ([`runs_by_columns`]). With a smaller L2 (AMD Zen 3: 512 KiB, Zen 4: 1 MiB) a
//! thread's half of the panels does not stay in it either, and the row split, which needs
//! no barrier, ran faster.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::buffers::{recycle, take_buffer, Mat};
use super::layout::WeightLayout;
use super::panels::{self, Panels, NR};
use super::positions::Positions;
use super::recurrence::{isa, l2_cache_kib, state_width, Dims, Forward, Slots};
use super::steps::step_biases;
use crate::kernels::Rows;

/// The smallest hidden size inference splits by columns: below, the row split's panels
/// fit the caches well enough (at hidden 256 both splits ran alike on the Intel Xeon of
/// `docs/benchmarks.md`).
const COLUMNS_MIN_H: usize = 384;

/// The smallest L2 cache per core, in KiB, with which inference splits by columns. Where
/// a thread's half of the panels does not stay in L2, the row split ran faster:
/// - AMD Zen 3 (512 KiB): hidden 512 at 0.95–0.97 of the column split's time (batch 32,
///   100 and 256 × 28 or 100 steps; plain build, 8 alternating pairs each, best runs);
/// - AMD Zen 4 (1 MiB), both splits alternating in one process (10–16 rounds each):
///   the row split 1.4–3.7% faster at hidden 512 (batch 32, 64 and 100 × 28 or 100
///   steps), 1.0% at batch 256, 14.4% and 6.7% at hidden 384 (batch 64 and 100).
///
/// The Intel Xeon (2 MiB) keeps the column split it ran 1.18× faster with at batch 32
/// (hidden 512 and 1024). Zen 5 (1 MiB, not measured against the row split) follows Zen 4.
const COLUMNS_MIN_L2_KIB: usize = 2048;

/// Whether this CPU's L2 is large enough for the column split ([`COLUMNS_MIN_L2_KIB`]);
/// an L2 the CPU does not report counts as large enough. Always, in lstm-core's own tests,
/// so that they cover the column split on every machine.
fn l2_holds_columns() -> bool {
    cfg!(test) || l2_cache_kib().is_none_or(|kib| kib >= COLUMNS_MIN_L2_KIB)
}

/// Hidden units per block are a multiple of this (one AVX-512 vector).
const UNIT_ALIGN: usize = 16;

/// Whether the forward pass of this call runs by columns: inference (`train` false) of
/// one direction over full-length rows, `h` [`COLUMNS_MIN_H`] wide or more and not
/// projected, with the steps' weights in panels, candle's pool holding a worker and an
/// L2 of [`COLUMNS_MIN_L2_KIB`] or more.
pub(crate) fn runs_by_columns(dm: Dims, train: bool, layout: WeightLayout) -> bool {
    !train
        && layout == WeightLayout::Panels
        && dm.dirs == 1
        && dm.p == dm.h
        && dm.h >= COLUMNS_MIN_H
        && matches!(dm.pos, Positions::Padded { .. })
        && candle_core::utils::barrier_pool().n_workers() > 0
        && l2_holds_columns()
}

/// The forward recurrence by columns on every thread of candle's pool (see the module
/// documentation; `io.gates` is not used, each thread keeps its own).
pub(crate) fn forward<R: Rows>(rows: R, dm: Dims, io: &Forward<'_>) {
    let pool = candle_core::utils::barrier_pool();
    let threads = pool.n_workers() + 1;
    let barrier = SpinBarrier::new(threads);
    let per = dm.h.div_ceil(threads).next_multiple_of(UNIT_ALIGN);
    pool.execute(|tid| {
        // A thread that panics lets the others past the barrier, so that the pool's call
        // returns and hands the panic on instead of hanging.
        let _release = ReleaseOnPanic(&barrier);
        let u0 = (tid * per).min(dm.h);
        let block = Block {
            units: (u0, (u0 + per).min(dm.h)),
            barrier: &barrier,
        };
        block_dispatched(rows, dm, block, io);
    });
}

/// One thread's share: its hidden units, and the barrier all threads meet at before
/// each step's recurrent product.
#[derive(Clone, Copy)]
struct Block<'a> {
    units: (usize, usize),
    barrier: &'a SpinBarrier,
}

super::recurrence::dispatched!(block_dispatched, forward_block, Forward<'_>, Block<'_>);

/// The rows of `W (·, K)` (row-major, unit column stride) that hold the units
/// `u₀..u₁` of each of `gates` gate blocks `h` wide, in gate order.
fn gate_rows(gates: usize, h: usize, (u0, u1): (usize, usize)) -> Vec<usize> {
    (0..gates)
        .flat_map(|g| (u0..u1).map(move |u| g * h + u))
        .collect()
}

/// Packs `Wᵀ` restricted to the rows `rows` of `W (·, k)` into panels ([`panels::pack`]'s
/// layout): column `c` of the operand is row `rows[c]` of `W`. It goes through tiles of
/// 16 × 16: 16 rows of `W` read 16 contiguous floats each, written as 16 panel rows of 16
/// (a column at a time wrote every float to another cache line).
fn pack_rows(w: Mat, k: usize, rows: &[usize], dst: &mut [f32]) {
    const T: usize = 16;
    for (j, panel) in dst.chunks_exact_mut(k * NR).enumerate() {
        for c0 in (0..NR).step_by(T) {
            let picked = rows.get(j * NR + c0..).unwrap_or(&[]);
            let picked = &picked[..T.min(picked.len())];
            for k0 in (0..k).step_by(T) {
                let depth = T.min(k - k0);
                let mut tile = [[0f32; T]; T];
                for (row, &r) in tile.iter_mut().zip(picked) {
                    // SAFETY: row r of W has k elements at unit stride; k0 + depth <= k.
                    let src =
                        unsafe { std::slice::from_raw_parts(w.ptr.add(r * w.rs + k0), depth) };
                    row[..depth].copy_from_slice(src);
                }
                for kk in 0..depth {
                    let out = &mut panel[(k0 + kk) * NR + c0..][..T];
                    for (c, o) in out.iter_mut().enumerate() {
                        *o = tile[c][kk];
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn forward_block<R: Rows>(rows: R, dm: Dims, block: Block, io: &Forward<'_>) {
    // The row kernel with its loops laid out for blocks of units.
    let rows = rows.in_blocks();
    let Dims { b, t, i, h, p, .. } = dm;
    let (u0, u1) = block.units;
    let hu = u1 - u0;
    let cols = R::GATES * hu;
    let (sw, sv) = (state_width::<R>(h, p), R::SAVED * h);
    let (os, ss) = (io.out_slots, io.saved_slots);
    debug_assert_eq!(ss, Slots::LastTwo);
    let w = io.w[0];
    let picked = gate_rows(R::GATES, h, block.units);
    let (bias, b_hh) = step_biases::<R>(w, picked.iter().copied());
    let mut w_ih = take_buffer(panels::packed_len(i, cols));
    let mut w_hh = take_buffer(panels::packed_len(p, cols));
    pack_rows(w.w_ih, i, &picked, &mut w_ih);
    pack_rows(w.w_hh, p, &picked, &mut w_hh);
    let (w_ih_p, w_hh_p) = (
        Panels {
            ptr: w_ih.as_ptr(),
            k: i,
            isa: isa(),
        },
        Panels {
            ptr: w_hh.as_ptr(),
            k: p,
            isa: isa(),
        },
    );
    let mut gates = take_buffer(b * cols);
    let mut hid = take_buffer(if R::SPLIT { b * cols } else { 0 });
    let mut saved = vec![0f32; R::SAVED * hu];
    for ti in 0..t {
        // h_{t-1} of every row: the initial state, or what all threads wrote last step.
        let h_prev = match ti {
            0 => Mat::rows(io.s0.as_ptr(), sw),
            _ => Mat::rows(io.out.at(os.at(dm, 0, ti - 1, 0, p)), os.row_stride(dm, p)),
        };
        if hu > 0 {
            // SAFETY: x is (B, T, I), the scratch block this thread's (B × cols), and the
            // panels hold this block's columns of W_ihᵀ.
            unsafe {
                let x = Mat::rows(io.x.at(dm.pos.at(0, ti) * i), dm.pos.row_stride() * i);
                panels::matmul((b, cols, i), gates.as_mut_ptr(), cols, false, x, w_ih_p);
            }
            if R::SPLIT {
                for row in hid.chunks_exact_mut(cols) {
                    row.copy_from_slice(&b_hh);
                }
            }
        }
        // h_{t-1} is whole once every thread is done with step t - 1, which also ends
        // their reads of the slot this step writes (that of h_{t-2}). The input product
        // above needs neither, and runs while the slowest thread finishes.
        if ti > 0 {
            block.barrier.wait();
        }
        if hu > 0 {
            let dst = if R::SPLIT { &mut hid } else { &mut gates };
            // SAFETY: the previous states (B rows of P) are not written during this step,
            // the scratch block is this thread's (B × cols), and the panels hold this
            // block's columns of W_hhᵀ.
            unsafe { panels::matmul((b, cols, p), dst.as_mut_ptr(), cols, true, h_prev, w_hh_p) };
        }
        for r in 0..b {
            let g = &mut gates[r * cols..][..cols];
            for (g, &bv) in g.iter_mut().zip(&bias) {
                *g += bv;
            }
            let hid_row = if R::SPLIT {
                &hid[r * cols..][..cols]
            } else {
                &[]
            };
            // SAFETY: this thread's units of row r: of the previous step (read), of this
            // step's h and c (written by this thread alone); the slots of the two steps
            // differ.
            unsafe {
                let h_prev_row = std::slice::from_raw_parts(h_prev.ptr.add(r * h_prev.rs + u0), hu);
                let c_prev: &[f32] = match (R::CELL, ti) {
                    (false, _) => &[],
                    (true, 0) => &io.s0[r * sw + p + u0..][..hu],
                    (true, _) => io.saved.slice(ss.at(dm, r, ti - 1, 0, sv) + u0, hu),
                };
                let h_out = io.out.slice(os.at(dm, r, ti, 0, p) + u0, hu);
                rows.infer(g, hid_row, h_prev_row, c_prev, h_out, &mut saved);
                if R::CELL {
                    let c = io.saved.slice(ss.at(dm, r, ti, 0, sv) + u0, hu);
                    c.copy_from_slice(&saved[..hu]);
                }
            }
        }
    }
    for v in [w_ih, w_hh, gates, hid] {
        recycle(v);
    }
}

/// A barrier the threads of one [`forward`] meet at once per step, spinning (a step
/// takes microseconds), yielding after a while in case a thread was descheduled.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    /// Set when a thread panicked: every wait returns at once from then on.
    released: AtomicBool,
}

/// Releases the barrier for good when dropped during a panic.
struct ReleaseOnPanic<'a>(&'a SpinBarrier);

impl Drop for ReleaseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.released.store(true, Ordering::Release);
        }
    }
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        Self {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            released: AtomicBool::new(false),
        }
    }

    /// Returns once every thread has called it (as often as this one has), or at once
    /// after a thread panicked.
    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.released.load(Ordering::Acquire) {
                return;
            }
            spins = spins.saturating_add(1);
            match spins < 1 << 16 {
                true => spin_loop(),
                false => std::thread::yield_now(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The L2 an x86-64 CPU reports is a plausible size (64 KiB to 64 MiB per core).
    #[test]
    fn the_l2_cache_is_read_off_the_cpu() {
        let kib = l2_cache_kib();
        if cfg!(target_arch = "x86_64") {
            let kib = kib.expect("CPUID reports the L2");
            assert!((64..=65536).contains(&kib), "L2 of {kib} KiB");
        }
        assert_eq!(kib, l2_cache_kib(), "detected once");
    }

    #[test]
    fn a_thread_that_panics_lets_the_others_past_the_barrier() {
        let barrier = std::sync::Arc::new(SpinBarrier::new(2));
        let (done, finished) = std::sync::mpsc::channel();
        let waiting = barrier.clone();
        std::thread::spawn(move || {
            for _ in 0..3 {
                waiting.wait();
            }
            done.send(()).ok();
        });
        let panicking = std::thread::spawn(move || {
            let _release = ReleaseOnPanic(&barrier);
            barrier.wait();
            panic!("a step failed");
        });
        assert!(panicking.join().is_err());
        let wait = std::time::Duration::from_secs(20);
        assert!(
            finished.recv_timeout(wait).is_ok(),
            "the other thread still waits"
        );
    }

    #[test]
    fn a_block_packs_its_units_of_every_gate() {
        // W (G·H × K) = (3·5 × 4), units 1..3: rows 1, 2, 6, 7, 11, 12.
        assert_eq!(gate_rows(3, 5, (1, 3)), [1, 2, 6, 7, 11, 12]);
        // Two panels (51 columns), depths past one tile of 16, ragged everywhere.
        for (gates, h, k, units) in [
            (3, 5, 4, (1, 3)),
            (3, 30, 37, (7, 24)),
            (4, 16, 16, (0, 16)),
        ] {
            let w: Vec<f32> = (0..gates * h * k).map(|v| v as f32).collect();
            let rows = gate_rows(gates, h, units);
            let mut dst = vec![f32::NAN; panels::packed_len(k, rows.len())];
            pack_rows(Mat::rows(w.as_ptr(), k), k, &rows, &mut dst);
            for (j, panel) in dst.chunks_exact(k * NR).enumerate() {
                for kk in 0..k {
                    for c in 0..NR {
                        let want = rows.get(j * NR + c).map_or(0.0, |&r| w[r * k + kk]);
                        assert_eq!(panel[kk * NR + c], want, "panel {j} k {kk} column {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_barrier_holds_every_thread_until_all_arrive() {
        let (threads, rounds) = (3, 200);
        let barrier = SpinBarrier::new(threads);
        let counts: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
        std::thread::scope(|s| {
            for me in 0..threads {
                let (barrier, counts) = (&barrier, &counts);
                s.spawn(move || {
                    for round in 0..rounds {
                        counts[me].store(round + 1, Ordering::Relaxed);
                        barrier.wait();
                        // Past the barrier, every thread has finished this round.
                        for c in counts {
                            assert!(c.load(Ordering::Relaxed) > round);
                        }
                        barrier.wait();
                    }
                });
            }
        });
    }
}
