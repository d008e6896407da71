//! What a session's checkpoint saves besides the tensors ([`Progress`]), reading it back
//! (this layout, format 2, and the tasks' layouts of format 1), and the checks on what a
//! checkpoint claims, so that a damaged or forged one is refused with a message naming
//! the file instead of resuming into nonsense.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::format1::Format1;
use super::{SessionConfig, Settings, Task, Unit};
use crate::checkpoint::{parse_checkpoint_with, read_checkpoint_with, Checkpoint};
use crate::error::{Result, TrainError};
use crate::limits::MAX_ITERATIONS;

/// The progress of a run, as saved in its checkpoint (format 2).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Progress<C, S> {
    /// The session's settings.
    pub session: SessionConfig,
    /// The task's settings.
    pub config: C,
    /// What the caller stored about the data (e.g. the command line's data options).
    pub context: serde_json::Value,
    /// Steps done.
    pub step: usize,
    /// Steps of the whole run.
    pub total: usize,
    /// Optimizer steps taken.
    pub optimizer_steps: u64,
    /// Samples trained on.
    pub samples: usize,
    /// Seconds spent training so far.
    pub seconds: f64,
    /// The loss of the first step, the reference of the divergence check.
    pub first_loss: Option<f64>,
    /// The training loss of the last `losses.len()` steps (all of them, unless the run
    /// began as a checkpoint of format 1).
    pub losses: Vec<f64>,
    /// The task's state.
    pub state: S,
}

/// The checkpoint of a session of task `T`.
pub type SessionCheckpoint<T> = Checkpoint<Progress<<T as Task>::Config, <T as Task>::State>>;

/// Reads the checkpoint of a run of `T` (`path` is the run directory or the file), of
/// format 2 or 1.
///
/// Errors ([`TrainError::Checkpoint`], naming the file): everything
/// [`crate::checkpoint::read_checkpoint_with`] refuses, and progress this build cannot
/// read.
pub fn read_session_checkpoint<T: Format1>(path: &Path) -> Result<SessionCheckpoint<T>> {
    let checkpoint = read_checkpoint_with(path, T::NAME, T::upgrade)?;
    check_alone::<T>(&checkpoint)?;
    Ok(checkpoint)
}

/// [`read_session_checkpoint`] on a checkpoint's bytes; `path` names them in errors.
pub fn parse_session_checkpoint<T: Format1>(
    path: &Path,
    bytes: &[u8],
) -> Result<SessionCheckpoint<T>> {
    let checkpoint = parse_checkpoint_with(path, bytes, T::NAME, T::upgrade)?;
    check_alone::<T>(&checkpoint)?;
    Ok(checkpoint)
}

/// The checks that need no data: the settings, the steps, the saved numbers.
fn check_alone<T: Task>(checkpoint: &SessionCheckpoint<T>) -> Result<()> {
    let p = &checkpoint.progress;
    problem(p, p.total, T::UNIT)
        .and_then(|()| {
            p.config
                .validate()
                .map_err(|e| format!("the saved settings are not valid: {e}"))
        })
        .map_err(|message| TrainError::Checkpoint {
            path: checkpoint.path.clone(),
            message,
        })
}

/// An error message unless `value` is finite and not negative.
pub(crate) fn non_negative(what: &str, value: f64) -> std::result::Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("{what} is {value}, not a finite number ≥ 0"))
    }
}

/// What is wrong with the session's part of a checkpoint's progress, if anything.
fn problem<C, S>(p: &Progress<C, S>, total: usize, unit: Unit) -> std::result::Result<(), String> {
    let (unit, units) = (unit.singular(), unit.plural());
    p.session
        .validate()
        .map_err(|e| format!("the saved settings are not valid: {e}"))?;
    if p.total == 0 || p.total > MAX_ITERATIONS {
        return Err(format!(
            "the run's length of {} {units} is not within 1..={MAX_ITERATIONS}",
            p.total
        ));
    }
    if p.step > p.total {
        return Err(format!(
            "it claims {unit} {} of a run of {} {units}",
            p.step, p.total
        ));
    }
    if p.total != total {
        return Err(format!(
            "it is a run of {} {units}, but its settings and this data make {total}: \
             the data differs from the run's",
            p.total
        ));
    }
    if p.losses.len() > p.step {
        return Err(format!(
            "it holds {} losses for {} {units} done",
            p.losses.len(),
            p.step
        ));
    }
    if p.optimizer_steps != p.step as u64 {
        return Err(format!(
            "it holds {} optimizer steps for {} {units} done",
            p.optimizer_steps, p.step
        ));
    }
    for loss in &p.losses {
        non_negative("a saved loss", *loss)?;
    }
    non_negative("the training time", p.seconds)?;
    if let Some(first) = p.first_loss {
        non_negative("the first loss", first)?;
    }
    Ok(())
}

/// Checks a checkpoint's progress against `task` (built from its settings and the data).
pub(crate) fn check<T: Task>(task: &T, checkpoint: &SessionCheckpoint<T>) -> Result<()> {
    let p = &checkpoint.progress;
    problem(p, task.total_steps(), T::UNIT)
        .and_then(|()| task.check_state(&p.state, p.step, !checkpoint.best.is_empty()))
        .map_err(|message| TrainError::Checkpoint {
            path: checkpoint.path.clone(),
            message,
        })
}
