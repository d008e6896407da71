//! Checkpoints of format 1, written before every task ran in one session: each task had
//! its own progress layout, with the session's settings flat among the task's. A task
//! that can read them implements [`Format1`]; [`old_session`] reads the settings part,
//! which was the same for every task.

use serde::Deserialize;

use super::{LrSchedule, Progress, SessionConfig, Task};
use crate::optim::OptimizerKind;

/// A task whose checkpoints of format 1 (written before sessions were one loop) can be
/// read: it turns that format's progress JSON into a [`Progress`].
pub trait Format1: Task {
    /// The progress of format 1 as a [`Progress`], or what is wrong with it.
    fn upgrade(
        progress: serde_json::Value,
    ) -> std::result::Result<Progress<Self::Config, Self::State>, String>;
}

/// The session's settings as format 1 saved them, among the task's.
#[derive(Deserialize)]
struct OldSettings {
    lr: f64,
    /// Only MNIST runs had a schedule; stock runs were constant.
    #[serde(default = "constant")]
    lr_schedule: LrSchedule,
    seed: u64,
    #[serde(default)]
    checkpoint_every: usize,
}

fn constant() -> LrSchedule {
    LrSchedule::Constant
}

/// The session's settings of a format-1 checkpoint whose flat settings are `config` and
/// whose optimizer was `optimizer`.
pub(crate) fn old_session(
    config: &serde_json::Value,
    optimizer: OptimizerKind,
) -> Result<SessionConfig, String> {
    let old = OldSettings::deserialize(config).map_err(|e| e.to_string())?;
    Ok(SessionConfig {
        seed: old.seed,
        lr: old.lr,
        lr_schedule: old.lr_schedule,
        optimizer,
        clip: None,
        checkpoint_every: old.checkpoint_every,
        stop_after: None,
        progress: false,
    })
}
