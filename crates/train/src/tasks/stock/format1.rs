//! Reading stock checkpoints of format 1 (one progress layout per task, before the one
//! session loop) as a [`Progress`].

use serde::Deserialize;

use super::{LossPoint, StockConfig, StockState, StockTask};
use crate::optim::OptimizerKind;
use crate::session::{old_session, Format1, Progress};

/// The progress of format 1.
#[derive(Deserialize)]
struct OldProgress {
    config: serde_json::Value,
    context: serde_json::Value,
    epoch: usize,
    all_losses: Vec<f64>,
    logged: Vec<LossPoint>,
    optimizer: OptimizerKind,
    optimizer_steps: u64,
    seconds: f64,
}

impl Format1 for StockTask<'_> {
    fn upgrade(progress: serde_json::Value) -> Result<Progress<StockConfig, StockState>, String> {
        let old: OldProgress = serde_json::from_value(progress).map_err(|e| e.to_string())?;
        let session = old_session(&old.config, old.optimizer)?;
        let config: StockConfig = serde_json::from_value(old.config).map_err(|e| e.to_string())?;
        Ok(Progress {
            session,
            total: config.epochs,
            config,
            context: old.context,
            step: old.epoch,
            optimizer_steps: old.optimizer_steps,
            // Format 1 did not count them: the full batch of every epoch.
            samples: 0,
            seconds: old.seconds,
            first_loss: old.all_losses.first().copied(),
            losses: old.all_losses,
            state: StockState { logged: old.logged },
        })
    }
}
