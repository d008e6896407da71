//! The split of one call's recurrence into tasks: a direction and a block of batch rows,
//! each run on one thread ([`super::steps`]; an idle thread may take over part of a
//! block's rows for its remaining steps, [`super::steal`]).

use super::buffers::threads;

/// One unit of parallel work: direction `dir`, batch rows `rows.0..rows.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Task {
    pub dir: usize,
    pub rows: (usize, usize),
    /// Whether it is the only task (a small batch in one direction): its GEMMs may then
    /// use the other threads.
    pub alone: bool,
}

/// Splits the rows `0..b` of every direction into tasks, one per thread where possible.
///
/// `steps[d]` is how many steps direction `d` runs: the threads are shared out in
/// proportion (each direction with steps gets at least one block, a direction with none
/// gets no task), so a backward pass whose second direction runs one step gives the
/// first every thread. Blocks hold at least 8 rows. With `lengths` (rows sorted longest
/// first), the blocks hold equal numbers of steps instead of equal numbers of rows. The
/// tasks come longest first.
pub(crate) fn tasks(b: usize, steps: &[usize], lengths: Option<&[usize]>) -> Vec<Task> {
    let threads = threads();
    let total: usize = steps.iter().sum();
    let mut out = Vec::new();
    for (dir, &s) in steps.iter().enumerate().filter(|(_, &s)| s > 0) {
        let share = (threads * s + total / 2) / total;
        let blocks = share.min(b.div_ceil(8)).max(1);
        let bounds = row_bounds(b, blocks, lengths);
        out.extend(bounds.windows(2).map(|w| (s, dir, (w[0], w[1]))));
    }
    // Longest first, so that the threads finishing early pick up the short ones.
    out.sort_by_key(|&(s, dir, _)| (std::cmp::Reverse(s), dir));
    let alone = out.len() == 1;
    out.into_iter()
        .map(|(_, dir, rows)| Task { dir, rows, alone })
        .collect()
}

/// The bounds of `blocks` blocks of the rows `0..b`: equal numbers of rows, or with
/// `lengths` equal numbers of steps.
fn row_bounds(b: usize, blocks: usize, lengths: Option<&[usize]>) -> Vec<usize> {
    match lengths {
        Some(lengths) if blocks > 1 => {
            let total: usize = lengths.iter().sum();
            let mut bounds = vec![0];
            let mut acc = 0;
            for (r, &l) in lengths.iter().enumerate() {
                acc += l;
                if acc * blocks >= total * bounds.len() && r + 1 < b {
                    bounds.push(r + 1);
                }
            }
            bounds.push(b);
            bounds
        }
        _ => {
            let per = b.div_ceil(blocks).max(1);
            let mut bounds: Vec<usize> = (0..b).step_by(per).collect();
            bounds.push(b);
            bounds
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_cover_every_row_of_every_direction_with_steps_once() {
        for b in [1, 7, 8, 9, 64, 100, 257] {
            for steps in [&[5][..], &[5, 5], &[5, 1], &[0, 5]] {
                let lengths: Vec<usize> = (0..b).rev().map(|r| r % 13 + 1).collect();
                for ts in [tasks(b, steps, None), tasks(b, steps, Some(&lengths))] {
                    for (dir, &s) in steps.iter().enumerate() {
                        let mut covered = vec![0; b];
                        for t in ts.iter().filter(|t| t.dir == dir) {
                            for c in &mut covered[t.rows.0..t.rows.1] {
                                *c += 1;
                            }
                        }
                        let want = usize::from(s > 0);
                        assert!(covered.iter().all(|&c| c == want), "b {b} {steps:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_direction_with_few_steps_leaves_the_threads_to_the_other() {
        let threads = threads();
        let ts = tasks(100, &[28, 1], None);
        let first = ts.iter().filter(|t| t.dir == 0).count();
        assert_eq!(first, threads.min(13), "{ts:?}");
        assert_eq!(ts.iter().filter(|t| t.dir == 1).count(), 1);
        // The short direction's task comes last.
        assert_eq!(ts.last().map(|t| t.dir), Some(1));
        assert!(ts.iter().all(|t| !t.alone));
    }
}
