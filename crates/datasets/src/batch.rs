//! Seeded, resumable shuffling of example indices into mini-batches.
//!
//! The permutation of epoch `e` depends only on `(seed, e)`: a
//! [`ChaCha8Rng`] seeded with `seed` and switched to stream `e` shuffles the
//! identity order. A [`SamplerState`] (seed, epoch, position) is therefore
//! enough to resume a run exactly where it stopped.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::DatasetError;

/// Everything needed to resume an [`EpochSampler`] exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerState {
    /// Seed of the per-epoch permutations.
    pub seed: u64,
    /// Epoch of the current permutation (0-based).
    pub epoch: u64,
    /// Number of indices of the current epoch already handed out.
    pub position: u64,
}

/// Hands out shuffled index batches epoch after epoch, like PyTorch's
/// `DataLoader(shuffle=True, drop_last=False)` but reproducible and resumable.
#[derive(Clone, Debug)]
pub struct EpochSampler {
    len: usize,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    position: usize,
    order: Vec<u32>,
}

/// Fills `order` with the permutation of `0..order.len()` for `(seed, epoch)`.
fn permute(order: &mut [u32], seed: u64, epoch: u64) {
    for (slot, i) in order.iter_mut().zip(0u32..) {
        *slot = i;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    order.shuffle(&mut rng);
}

impl EpochSampler {
    /// A sampler over `0..len` in batches of `batch_size`, starting at epoch 0.
    ///
    /// `len == 0`, `batch_size == 0` and `len > u32::MAX` are rejected with
    /// [`DatasetError::InvalidSplit`].
    pub fn new(len: usize, batch_size: usize, seed: u64) -> Result<Self, DatasetError> {
        Self::from_state(
            len,
            batch_size,
            SamplerState {
                seed,
                epoch: 0,
                position: 0,
            },
        )
    }

    /// Resumes a sampler from a state saved with [`EpochSampler::state`].
    ///
    /// `len` and `batch_size` must be those of the original run for the
    /// remaining batches to match; `state.position` must not exceed `len`.
    pub fn from_state(
        len: usize,
        batch_size: usize,
        state: SamplerState,
    ) -> Result<Self, DatasetError> {
        if len == 0 {
            return Err(DatasetError::InvalidSplit {
                message: "cannot sample batches from an empty split".into(),
            });
        }
        if batch_size == 0 {
            return Err(DatasetError::InvalidSplit {
                message: "batch size must be at least 1".into(),
            });
        }
        if u32::try_from(len).is_err() {
            return Err(DatasetError::InvalidSplit {
                message: format!("split of {len} examples is too large for u32 indices"),
            });
        }
        let position = usize::try_from(state.position)
            .ok()
            .filter(|&p| p <= len)
            .ok_or_else(|| DatasetError::InvalidSplit {
                message: format!(
                    "sampler position {} is beyond the {len} examples of an epoch",
                    state.position
                ),
            })?;
        let mut order = vec![0u32; len];
        permute(&mut order, state.seed, state.epoch);
        Ok(Self {
            len,
            batch_size,
            seed: state.seed,
            epoch: state.epoch,
            position,
            order,
        })
    }

    /// The next batch of indices.
    ///
    /// The last batch of an epoch may be smaller than `batch_size`; the call
    /// after it starts the next epoch with a fresh permutation.
    pub fn next_batch(&mut self) -> &[u32] {
        if self.position >= self.len {
            self.epoch = self.epoch.wrapping_add(1);
            self.position = 0;
            permute(&mut self.order, self.seed, self.epoch);
        }
        let start = self.position;
        let end = start.saturating_add(self.batch_size).min(self.len);
        self.position = end;
        self.order.get(start..end).unwrap_or(&[])
    }

    /// The epoch (0-based) of the batch last returned, or of the next one if
    /// the current epoch is not finished yet.
    pub fn epoch(&self) -> usize {
        usize::try_from(self.epoch).unwrap_or(usize::MAX)
    }

    /// Batches per epoch, counting a final partial batch: `ceil(len / batch_size)`.
    pub fn batches_per_epoch(&self) -> usize {
        self.len.div_ceil(self.batch_size)
    }

    /// Whether every index of the current epoch has been handed out.
    pub fn epoch_finished(&self) -> bool {
        self.position >= self.len
    }

    /// Number of examples sampled from.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a sampler over no examples cannot be built.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The (maximum) batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The state to save for resuming with [`EpochSampler::from_state`].
    pub fn state(&self) -> SamplerState {
        SamplerState {
            seed: self.seed,
            epoch: self.epoch,
            position: self.position as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(s: &mut EpochSampler, n: usize) -> Vec<Vec<u32>> {
        (0..n).map(|_| s.next_batch().to_vec()).collect()
    }

    #[test]
    fn last_batch_is_smaller_then_next_epoch() {
        let mut s = EpochSampler::new(10, 4, 7).unwrap();
        assert_eq!(s.batches_per_epoch(), 3);
        let sizes: Vec<(usize, usize)> = (0..6)
            .map(|_| {
                let n = s.next_batch().len();
                (s.epoch(), n)
            })
            .collect();
        assert_eq!(sizes, vec![(0, 4), (0, 4), (0, 2), (1, 4), (1, 4), (1, 2)]);
        assert!(s.epoch_finished());
        assert_eq!(
            s.state(),
            SamplerState {
                seed: 7,
                epoch: 1,
                position: 10
            }
        );
    }

    #[test]
    fn batches_per_epoch_is_ceil() {
        let bpe = |len, bs| EpochSampler::new(len, bs, 0).unwrap().batches_per_epoch();
        assert_eq!(bpe(10, 4), 3);
        assert_eq!(bpe(8, 4), 2);
        assert_eq!(bpe(3, 10), 1);
        assert_eq!(bpe(55_000, 64), 860);
    }

    #[test]
    fn every_index_once_per_epoch() {
        let mut s = EpochSampler::new(103, 10, 1).unwrap();
        let mut previous: Option<Vec<u32>> = None;
        for epoch in 0..3 {
            let all: Vec<u32> = batches(&mut s, 11).concat();
            assert_eq!(s.epoch(), epoch);
            let mut sorted = all.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..103).collect::<Vec<u32>>());
            assert_ne!(all, sorted, "epoch {epoch} was not shuffled");
            if let Some(prev) = &previous {
                assert_ne!(prev, &all, "epochs share a permutation");
            }
            previous = Some(all);
        }
    }

    #[test]
    fn same_seed_same_batches_different_seed_different() {
        let mut a = EpochSampler::new(100, 32, 42).unwrap();
        let mut b = EpochSampler::new(100, 32, 42).unwrap();
        let mut c = EpochSampler::new(100, 32, 43).unwrap();
        let ba = batches(&mut a, 12);
        assert_eq!(ba, batches(&mut b, 12));
        assert_ne!(ba, batches(&mut c, 12));
    }

    #[test]
    fn permutation_is_pinned() {
        // Guards reproducibility against changes in rand / rand_chacha.
        let mut s = EpochSampler::new(10, 10, 42).unwrap();
        assert_eq!(s.next_batch(), PINNED_SEED42_EPOCH0);
        assert_eq!(s.next_batch(), PINNED_SEED42_EPOCH1);
    }

    const PINNED_SEED42_EPOCH0: &[u32] = &[7, 1, 5, 4, 6, 9, 3, 8, 2, 0];
    const PINNED_SEED42_EPOCH1: &[u32] = &[8, 9, 5, 3, 2, 1, 0, 7, 6, 4];

    #[test]
    fn permutation_depends_only_on_seed_and_epoch() {
        let mut run = EpochSampler::new(50, 8, 9).unwrap();
        let _ = batches(&mut run, 2 * 7);
        let third: Vec<Vec<u32>> = batches(&mut run, 7);
        assert_eq!(run.epoch(), 2);
        let mut jump = EpochSampler::from_state(
            50,
            8,
            SamplerState {
                seed: 9,
                epoch: 2,
                position: 0,
            },
        )
        .unwrap();
        assert_eq!(third, batches(&mut jump, 7));
    }

    #[test]
    fn resume_mid_epoch_reproduces_remaining_batches() {
        let mut a = EpochSampler::new(10, 4, 123).unwrap();
        let _ = batches(&mut a, 4); // epoch 0 done, one batch into epoch 1
        let state = a.state();
        assert_eq!(
            state,
            SamplerState {
                seed: 123,
                epoch: 1,
                position: 4
            }
        );
        let mut b = EpochSampler::from_state(10, 4, state).unwrap();
        assert_eq!(b.epoch(), 1);
        let rest_a = batches(&mut a, 8);
        assert_eq!(rest_a, batches(&mut b, 8));
        assert_eq!(rest_a[0].len(), 4);
        assert_eq!(rest_a[1].len(), 2);
        assert_eq!(a.state(), b.state());

        // Resuming exactly at an epoch boundary.
        let mut c = EpochSampler::new(10, 4, 5).unwrap();
        let _ = batches(&mut c, 3);
        let mut d = EpochSampler::from_state(10, 4, c.state()).unwrap();
        assert_eq!(batches(&mut c, 5), batches(&mut d, 5));
    }

    #[test]
    fn invalid_arguments_are_rejected() {
        for (len, bs) in [(0, 4), (10, 0)] {
            let err = EpochSampler::new(len, bs, 0).unwrap_err();
            assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");
        }
        let err = EpochSampler::from_state(
            10,
            4,
            SamplerState {
                seed: 0,
                epoch: 0,
                position: 11,
            },
        )
        .unwrap_err();
        assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");
        assert!(err.to_string().contains("position 11"), "{err}");
    }
}
