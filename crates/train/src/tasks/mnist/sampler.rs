//! The batch order's position as a checkpoint saves it.

use lstm_datasets::SamplerState;
use serde::{Deserialize, Serialize};

/// The batch order's position, as saved in a checkpoint.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SamplerSnapshot {
    /// Seed of the per-epoch permutations.
    pub seed: u64,
    /// Current epoch.
    pub epoch: u64,
    /// Indices of the current epoch already used.
    pub position: u64,
}

impl From<SamplerState> for SamplerSnapshot {
    fn from(s: SamplerState) -> Self {
        Self {
            seed: s.seed,
            epoch: s.epoch,
            position: s.position,
        }
    }
}

impl From<SamplerSnapshot> for SamplerState {
    fn from(s: SamplerSnapshot) -> Self {
        Self {
            seed: s.seed,
            epoch: s.epoch,
            position: s.position,
        }
    }
}
