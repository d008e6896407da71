//! The weight gradients split as the backward recurrence was: by its tasks.
//!
//! The backward steps of a task (a direction and a block of batch rows, [`super::tasks`])
//! write that block's gate gradients and `h_{t-1}` on one thread. Split by the gradient's
//! columns (or rows), each thread of the weight-gradient GEMM reads every position, half
//! of them written by the other thread, and the next forward pass writes those lines
//! again from the thread that owns them: on a 2-vCPU cloud guest whose vCPUs do not
//! always share a cache, that traffic crosses between caches. Split by tasks instead,
//! each task sums its own positions' products (the GEMM's depth, split) on the thread
//! that wrote them, and the partial sums of a direction's tasks are added at the end, a
//! `(G·H, I + P)` block per task.
//!
//! On AMD Zen 4 (2 vCPUs, in one process, both ways alternating, 30 pairs), an MNIST-shape
//! training step (batch 100, hidden 128) ran 10% faster while the host was in a phase
//! that slowed the forward pass by a third (its weight gradients 8% faster, the next
//! forward pass 23%), and 2.5% faster outside it (with the chunks of `serial_product`);
//! at 32 × 128 × 28 16%, at 100 × 64 × 28 10% (`docs/benchmarks.md`, seventh session).
//! Each task's products are [`serial_product`]'s, which read `dGᵀ` where it lies.

use super::buffers::{parallel_for, recycle, take_buffer, Mat, Shared};
use super::matmul::serial_product;
use super::positions::Positions;
use super::recurrence::Dims;
use super::tasks::{tasks, Task};
use super::weight_grads::{add_rows, WeightGrads};

/// The most floats of one task's partial sums of the weights' gradients (`G·H × (I +
/// P)`): 2 MiB. Past it, adding the partial sums costs more than the split saves: at
/// hidden 512 (4.4 MiB per task) the weight gradients of a 32 × 512 × 28 training step
/// ran 9% slower split by tasks, those of 100 × 512 × 28 2% slower; at the two-layer
/// hidden-256 model (1.3 and 2 MiB) 1.6% faster (Zen 4, in one process).
const PARTIAL_MAX: usize = 1 << 19;

/// The tasks to split the weight gradients by, where each direction's steps are all
/// live or none (so that a task's positions are its rows, whole), the rows are of full
/// length, there is no projection, a task's partial sums are at most [`PARTIAL_MAX`] and
/// there are at least two tasks; else `None`.
pub(super) fn grad_tasks(
    dm: Dims,
    gates: usize,
    live: &[usize],
    g: &WeightGrads<'_>,
) -> Option<Vec<Task>> {
    let full = live.iter().all(|&l| l == 0 || l == dm.t);
    let padded = matches!(dm.pos, Positions::Padded { .. });
    let small = gates * dm.h * (dm.i + dm.p) <= PARTIAL_MAX;
    if !full || !padded || !small || !g.proj.0.is_empty() {
        return None;
    }
    let ts = tasks(dm.b, live, None);
    (ts.len() > 1).then_some(ts)
}

/// The gradients of each direction's `[W_ih | W_hh | b_ih | b_hh]` into `dw` (`k` wide),
/// summed task by task ([`grad_tasks`]): the first task of a direction writes its rows of
/// `dw`, the others their own partial sums, which are then added to them. Directions
/// without live steps are left as they are (zero).
pub(super) fn by_tasks(
    dm: Dims,
    gates: usize,
    x: &[f32],
    g: WeightGrads<'_>,
    ts: &[Task],
    dw: &mut [f32],
) {
    let Dims { i, p, dirs, t, .. } = dm;
    let (gh, slot, k) = (gates * dm.h, i + p, dm.k());
    let one_gemm = std::ptr::eq(g.d_in, g.d_rec);
    // Each task's partial sums: (G·H, I + P) products, then G·H sums of d_in and of d_rec.
    let part = gh * slot + 2 * gh;
    // Each direction's tasks, in order: the first writes dw, the others partial sums.
    let of_dir: Vec<Vec<usize>> = (0..dirs)
        .map(|d| (0..ts.len()).filter(|&n| ts[n].dir == d).collect())
        .collect();
    let first = |n: usize| of_dir[ts[n].dir].first() == Some(&n);
    let mut scratch = take_buffer(ts.len() * part);
    let (parts, dw_all) = (Shared::new(&mut scratch), Shared::new(dw));
    let h_prev = Shared::new(g.h_prev);
    let width = dirs * slot;
    parallel_for(ts.len(), |n| {
        let Task { dir: d, rows, .. } = ts[n];
        let (p0, p1) = (rows.0 * t, rows.1 * t);
        // This task's positions of a (N, ld) buffer, from column `col`.
        let rows_of = |base: *const f32, ld: usize, col: usize| {
            Mat::rows(base.wrapping_add(p0 * ld + col), ld)
        };
        // SAFETY: this task alone writes its positions' slots of direction d, its own
        // partial sums, and (the first task of d) d's rows of dw; it reads its positions
        // of d_in, d_rec, x and of those slots, (N, ·) buffers.
        unsafe {
            if one_gemm && i > 0 {
                for pos in p0..p1 {
                    let s = h_prev.slice(pos * width + d * slot, i);
                    s.copy_from_slice(&x[pos * i..(pos + 1) * i]);
                }
            }
            let own = parts.slice(n * part, part);
            let (dst, ld) = match first(n) {
                true => (dw_all.at(d * gh * k), k),
                false => (own.as_mut_ptr(), slot),
            };
            let (len, h_all) = (p1 - p0, h_prev.at(0).cast_const());
            let d_in = rows_of(g.d_in.as_ptr(), dirs * gh, d * gh);
            if one_gemm {
                let s = rows_of(h_all, width, d * slot);
                serial_product((gh, slot, len), dst, ld, d_in.t(), s);
            } else {
                let x = rows_of(x.as_ptr(), i, 0);
                serial_product((gh, i, len), dst, ld, d_in.t(), x);
                let d_rec = rows_of(g.d_rec.as_ptr(), dirs * gh, d * gh);
                let h = rows_of(h_all, width, d * slot + i);
                serial_product((gh, p, len), dst.add(i), ld, d_rec.t(), h);
            }
            let (sum_in, sum_rec) = own[gh * slot..].split_at_mut(gh);
            sum_in.fill(0.0);
            add_rows(g.d_in, (dirs * gh, d * gh), p0..p1, sum_in);
            if !one_gemm {
                sum_rec.fill(0.0);
                add_rows(g.d_rec, (dirs * gh, d * gh), p0..p1, sum_rec);
            }
        }
    });
    // Add the other tasks' partial sums to each direction's rows; write the biases.
    const ROWS: usize = 16;
    let blocks = gh.div_ceil(ROWS);
    parallel_for(dirs * blocks, |c| {
        let (d, r0) = (c / blocks, c % blocks * ROWS);
        let mine = &of_dir[d];
        if mine.is_empty() {
            return;
        }
        // The partial sums, only read from here on.
        let read = |at: usize, len: usize| {
            // SAFETY: within the scratch buffer (Shared::at checks the start), which no
            // task writes any more.
            unsafe { std::slice::from_raw_parts(parts.at(at).cast_const(), len) }
        };
        for r in r0..(r0 + ROWS).min(gh) {
            // SAFETY: block c alone writes rows r0.. of direction d's dw.
            let row = unsafe { dw_all.slice((d * gh + r) * k, k) };
            for &n in &mine[1..] {
                let src = read(n * part + r * slot, slot);
                row[..slot].iter_mut().zip(src).for_each(|(a, v)| *a += v);
            }
            let sum = |which: usize| -> f32 {
                mine.iter()
                    .map(|&n| read(n * part + gh * slot + which * gh + r, 1)[0])
                    .sum()
            };
            let b_in = sum(0);
            let b_rec = if one_gemm { b_in } else { sum(1) };
            (row[slot], row[slot + 1]) = (b_in, b_rec);
        }
    });
    recycle(scratch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::buffers::threads;

    fn grads<'a>(d: &'a [f32], h_prev: &'a mut [f32], m: &'a [f32]) -> WeightGrads<'a> {
        WeightGrads {
            d_in: d,
            d_rec: d,
            h_prev,
            proj: (m, &[]),
        }
    }

    /// The split is by the backward's tasks where they own whole rows, and not past the
    /// partial sums' limit, with a projection or with only some steps live. (The engine's
    /// tests compare the gradients it gives with the reference's.)
    #[test]
    fn the_split_follows_the_tasks_where_they_own_whole_rows() {
        let mut h_prev = vec![0f32; 4];
        let mnist = Dims::one_direction(100, 28, 28, (128, 128));
        let ts = grad_tasks(mnist, 4, &[28], &grads(&[], &mut h_prev, &[]));
        if threads() < 2 {
            assert!(ts.is_none(), "one thread runs one task");
            return;
        }
        let ts = ts.expect("two tasks over 100 rows");
        assert_eq!(ts, tasks(100, &[28], None));
        assert!(ts.iter().all(|t| t.dir == 0) && ts.len() == threads().min(13));
        let g = grads(&[], &mut h_prev, &[]);
        assert!(grad_tasks(mnist, 4, &[27], &g).is_none(), "a step not live");
        assert!(
            grad_tasks(mnist, 4, &[0], &g).is_none(),
            "no step live: no task"
        );
        let wide = Dims::one_direction(32, 28, 28, (512, 512));
        assert!(
            grad_tasks(wide, 4, &[28], &g).is_none(),
            "4 MiB partial sums"
        );
        let rows_of_8 = Dims::one_direction(8, 28, 28, (128, 128));
        assert!(grad_tasks(rows_of_8, 4, &[28], &g).is_none(), "one task");
        let m = [0f32; 1];
        let projected = Dims::one_direction(100, 28, 28, (128, 64));
        let g = grads(&[], &mut h_prev, &m);
        assert!(
            grad_tasks(projected, 4, &[28], &g).is_none(),
            "a projection"
        );
    }
}
