//! Sharing a block's remaining steps with a thread that has run out of work.
//!
//! The recurrence splits the batch rows into one block per thread, and each block runs
//! all its steps on one thread ([`super::tasks`]), forward and backward. On a machine shared with other
//! work the threads do not run alike: on a 2-vCPU cloud guest one block finished 8% of
//! the pass's time before the other, on average, and the threads took turns at being the
//! slow one. So a thread without a block takes the upper half of the rows of the block
//! with the most work left, from the first step its owner has not started, waits until
//! the owner has finished the step before it (whose states it reads), and runs them to
//! the end, itself open to the same.
//!
//! A block's [`Claim`] is one atomic word, the next step its owner starts and the end of
//! its rows: the owner marks each step started and reads its rows in one update, and a
//! thief halves the rows with a compare-and-swap on the same word, so a step is run for
//! a row by exactly one of them. The owner publishes each finished step (`done`).

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::tasks::Task;

/// The fewest rows either half of a split keeps (an AVX-512 tile; two AVX2 tiles).
const MIN_ROWS: usize = 8;

/// A running block: rows `task.rows.0..` from step `first` on, its row end in `claim`.
#[derive(Clone, Copy)]
pub(crate) struct Block<'a> {
    pub task: Task,
    pub first: usize,
    /// `None` for a block no thread may share (a layer of a wavefront, a lone task).
    pub claim: Option<&'a Claim>,
}

impl Block<'_> {
    /// A whole task, not shared.
    pub fn whole(task: Task) -> Self {
        Block {
            task,
            first: 0,
            claim: None,
        }
    }
}

/// The next step the owner starts (high 32 bits) and the end of its rows (low 32 bits).
pub(crate) struct Claim {
    word: AtomicU64,
    done: AtomicUsize,
    /// In lstm-core's tests: the owner pauses after each step ([`test_hook`]).
    #[cfg(test)]
    slow: bool,
}

/// A batch size that lstm-core's tests use to see blocks shared: in a pass over this many
/// rows, the owner of the first block of direction 0 pauses 200 µs after each step, and
/// [`test_hook::SHARED`] counts the blocks split off.
#[cfg(test)]
pub(crate) mod test_hook {
    use std::sync::atomic::AtomicUsize;

    /// The batch whose first block runs slowly.
    pub(crate) const SLOW_BATCH: usize = 77;

    /// Blocks split off in passes over [`SLOW_BATCH`] rows.
    pub(crate) static SHARED: AtomicUsize = AtomicUsize::new(0);
}

fn pack(step: usize, end: usize) -> u64 {
    ((step as u64) << 32) | end as u64
}

fn unpack(word: u64) -> (usize, usize) {
    ((word >> 32) as usize, (word & u64::from(u32::MAX)) as usize)
}

impl Claim {
    /// A block from step `first` on, whose earlier steps are not yet known to be written
    /// ([`Claim::ready`]).
    fn new(first: usize, end: usize) -> Self {
        Claim {
            word: AtomicU64::new(pack(first, end)),
            done: AtomicUsize::new(0),
            #[cfg(test)]
            slow: false,
        }
    }

    /// The owner starts `step`: the end of the rows it runs there (and from then on, until
    /// a thief lowers it at a later step).
    pub fn start(&self, step: usize) -> usize {
        let previous = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                Some(pack(step + 1, unpack(w).1))
            })
            .unwrap_or_else(|w| w);
        unpack(previous).1
    }

    /// The owner has written every state of `step`.
    pub fn finish(&self, step: usize) {
        self.done.store(step + 1, Ordering::Release);
        #[cfg(test)]
        if self.slow {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Takes the upper half of the rows from `r0` on for the steps not started, of `t`:
    /// `(first step, rows)`, or `None` when either half would keep fewer than
    /// [`MIN_ROWS`] rows or no step is left.
    fn split(&self, r0: usize, t: usize) -> Option<(usize, (usize, usize))> {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let (next, end) = unpack(word);
            if next >= t || end < r0 + 2 * MIN_ROWS {
                return None;
            }
            let mid = r0 + (end - r0) / 2;
            match self.word.compare_exchange_weak(
                word,
                pack(next, mid),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some((next, (mid, end))),
                Err(now) => word = now,
            }
        }
    }

    /// Rows times steps left, from `r0` on, of `t` steps.
    fn work_left(&self, r0: usize, t: usize) -> usize {
        let (next, end) = unpack(self.word.load(Ordering::Acquire));
        end.saturating_sub(r0) * t.saturating_sub(next)
    }

    /// The steps before `first` are written (by the owner of the block it was split
    /// from): a later thief of this block waits on this block alone.
    fn ready(&self, first: usize) {
        self.done.store(first, Ordering::Release);
    }

    /// Waits until the owner has finished the steps before `step`.
    fn wait_for(&self, step: usize) {
        while self.done.load(Ordering::Acquire) < step {
            spin_loop();
        }
    }
}

/// One pass's blocks: the tasks handed out in order, then the blocks split off them.
pub(crate) struct Board {
    /// Steps of each direction.
    steps: Vec<usize>,
    tasks: Vec<Task>,
    next_task: AtomicUsize,
    /// Every block so far with its claim (the tasks' first, in order).
    blocks: Mutex<Vec<(Task, Arc<Claim>)>>,
}

impl Board {
    /// The blocks of `tasks`, each running the steps of its direction (`steps[dir]`).
    pub fn new(tasks: Vec<Task>, steps: &[usize]) -> Self {
        let blocks = tasks
            .iter()
            .map(|&task| {
                #[cfg_attr(not(test), allow(unused_mut))]
                let mut claim = Claim::new(0, task.rows.1);
                #[cfg(test)]
                {
                    let b = tasks.iter().map(|t| t.rows.1).max();
                    claim.slow =
                        b == Some(test_hook::SLOW_BATCH) && task.rows.0 == 0 && task.dir == 0;
                }
                (task, Arc::new(claim))
            })
            .collect();
        Board {
            steps: steps.to_vec(),
            tasks,
            next_task: AtomicUsize::new(0),
            blocks: Mutex::new(blocks),
        }
    }

    /// Runs blocks on the calling thread until none is left to take or share.
    pub fn work(&self, run: impl Fn(Block<'_>)) {
        loop {
            let k = self.next_task.fetch_add(1, Ordering::Relaxed);
            let (task, claim, first) = match self.tasks.get(k) {
                Some(&task) => (task, self.claim(k), 0),
                None => match self.share() {
                    Some(found) => found,
                    None => return,
                },
            };
            run(Block {
                task,
                first,
                claim: Some(&claim),
            });
        }
    }

    fn claim(&self, k: usize) -> Arc<Claim> {
        let blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&blocks[k].1)
    }

    /// Splits the block with the most work left: its upper rows as a new block, once the
    /// owner has finished the step before the first one it hands over.
    fn share(&self) -> Option<(Task, Arc<Claim>, usize)> {
        let (task, claim, first, victim) = {
            let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            let (task, victim) = blocks
                .iter()
                .max_by_key(|(task, c)| c.work_left(task.rows.0, self.steps[task.dir]))
                .map(|(task, c)| (*task, Arc::clone(c)))?;
            let (first, rows) = victim.split(task.rows.0, self.steps[task.dir])?;
            let task = Task { rows, ..task };
            let claim = Arc::new(Claim::new(first, rows.1));
            blocks.push((task, Arc::clone(&claim)));
            #[cfg(test)]
            if blocks.iter().any(|(_, c)| c.slow) {
                test_hook::SHARED.fetch_add(1, Ordering::Relaxed);
            }
            (task, claim, first, victim)
        };
        victim.wait_for(first);
        claim.ready(first);
        Some((task, claim, first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_takes_the_upper_rows_from_the_first_step_not_started() {
        let c = Claim::new(0, 40);
        assert_eq!(c.start(0), 40);
        assert_eq!(c.start(1), 40);
        // Steps 0 and 1 started: the thief's half runs from step 2.
        assert_eq!(c.split(0, 10), Some((2, (20, 40))));
        assert_eq!(c.start(2), 20);
        assert_eq!(c.work_left(0, 10), 20 * 7);
        // The owner's 20 rows halve again, into 10 and 10, from step 3.
        assert_eq!(c.split(0, 10), Some((3, (10, 20))));
        // Its 10 cannot: a half would keep fewer than 8.
        assert_eq!(c.split(0, 10), None);
        // Nor can a block whose every step has started.
        let d = Claim::new(0, 64);
        for s in 0..5 {
            d.start(s);
        }
        assert_eq!(d.split(0, 5), None);
    }

    #[test]
    fn every_row_of_every_step_runs_exactly_once_however_blocks_are_shared() {
        // Two threads, one of them slow: the fast one shares the slow one's rows.
        let (b, t) = (64, 12);
        let tasks = vec![
            Task {
                dir: 0,
                rows: (0, 32),
                alone: false,
            },
            Task {
                dir: 0,
                rows: (32, 64),
                alone: false,
            },
        ];
        let board = Board::new(tasks, &[t]);
        let runs: Vec<AtomicUsize> = (0..b * t).map(|_| AtomicUsize::new(0)).collect();
        let shared = AtomicUsize::new(0);
        let slow_took_a_task = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for slow in [true, false] {
                let (board, runs, shared) = (&board, &runs, &shared);
                let slow_took_a_task = &slow_took_a_task;
                s.spawn(move || {
                    // The fast thread starts once the slow one holds a task.
                    while !slow && !slow_took_a_task.load(Ordering::Acquire) {
                        spin_loop();
                    }
                    board.work(|block| {
                        slow_took_a_task.store(true, Ordering::Release);
                        let claim = block.claim.expect("shared blocks have claims");
                        shared.fetch_add(usize::from(block.first > 0), Ordering::Relaxed);
                        for step in block.first..t {
                            let end = claim.start(step);
                            for r in block.task.rows.0..end {
                                runs[r * t + step].fetch_add(1, Ordering::Relaxed);
                            }
                            if slow {
                                std::thread::sleep(std::time::Duration::from_millis(2));
                            }
                            claim.finish(step);
                        }
                    })
                });
            }
        });
        assert!(runs.iter().all(|n| n.load(Ordering::Relaxed) == 1));
        assert!(shared.load(Ordering::Relaxed) >= 1, "no block was shared");
    }

    #[test]
    fn a_block_split_off_is_shared_only_once_the_steps_it_reads_are_written() {
        // One slow owner, three threads without a block of their own: they split the slow
        // block, then the blocks split off it (before their thieves have started). Every
        // row's step must run after the same row's step before.
        let (b, t) = (144, 10);
        let task = |rows| Task {
            dir: 0,
            rows,
            alone: false,
        };
        let board = Board::new(vec![task((0, 128)), task((128, 144))], &[t]);
        let runs: Vec<AtomicUsize> = (0..b * t).map(|_| AtomicUsize::new(0)).collect();
        let early = AtomicUsize::new(0);
        let slow_took_a_task = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for thread in 0..4 {
                let (board, runs, early) = (&board, &runs, &early);
                let slow_took_a_task = &slow_took_a_task;
                s.spawn(move || {
                    while thread > 0 && !slow_took_a_task.load(Ordering::Acquire) {
                        spin_loop();
                    }
                    board.work(|block| {
                        slow_took_a_task.store(true, Ordering::Release);
                        let claim = block.claim.expect("shared blocks have claims");
                        for step in block.first..t {
                            let end = claim.start(step);
                            // The slow owner's step takes time before its rows are written.
                            if thread == 0 {
                                std::thread::sleep(std::time::Duration::from_millis(2));
                            }
                            for r in block.task.rows.0..end {
                                let before = step.checked_sub(1).map(|s| r * t + s);
                                if before.is_some_and(|i| runs[i].load(Ordering::Acquire) == 0) {
                                    early.fetch_add(1, Ordering::Relaxed);
                                }
                                runs[r * t + step].fetch_add(1, Ordering::Release);
                            }
                            claim.finish(step);
                        }
                    })
                });
            }
        });
        assert!(runs.iter().all(|n| n.load(Ordering::Relaxed) == 1));
        assert_eq!(
            early.load(Ordering::Relaxed),
            0,
            "a step ran before the one it reads"
        );
    }
}
