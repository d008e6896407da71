//! Reading MNIST checkpoints of format 1 (one progress layout per task, before the one
//! session loop): their flat settings become the session's and the task's, their
//! progress a [`Progress`].

use serde::Deserialize;

use super::{MnistConfig, MnistState, MnistTask, SamplerSnapshot};
use crate::optim::OptimizerKind;
use crate::session::{old_session, Format1, Progress};
use crate::tasks::mnist::EvalPoint;

/// The progress of format 1.
#[derive(Deserialize)]
struct OldProgress {
    config: serde_json::Value,
    context: serde_json::Value,
    iteration: usize,
    total: usize,
    sampler: SamplerSnapshot,
    optimizer: OptimizerKind,
    optimizer_steps: u64,
    history: Vec<EvalPoint>,
    best: Option<(usize, f64)>,
    samples: usize,
    seconds: f64,
    #[serde(default)]
    first_loss: Option<f64>,
}

impl Format1 for MnistTask<'_> {
    fn upgrade(progress: serde_json::Value) -> Result<Progress<MnistConfig, MnistState>, String> {
        let old: OldProgress = serde_json::from_value(progress).map_err(|e| e.to_string())?;
        let session = old_session(&old.config, old.optimizer)?;
        let config: MnistConfig = serde_json::from_value(old.config).map_err(|e| e.to_string())?;
        Ok(Progress {
            session,
            config,
            context: old.context,
            step: old.iteration,
            total: old.total,
            optimizer_steps: old.optimizer_steps,
            samples: old.samples,
            seconds: old.seconds,
            first_loss: old.first_loss,
            // Format 1 kept the training loss at the validation points only.
            losses: Vec::new(),
            state: MnistState {
                sampler: old.sampler,
                history: old.history,
                best: old.best,
            },
        })
    }
}
