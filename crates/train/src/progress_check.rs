//! Checks on the progress a checkpoint claims, so a damaged or forged checkpoint is
//! refused with a message naming the file instead of resuming into nonsense: settings
//! within the limits, the iteration (or epoch) within the run, history and best points
//! within what was done, finite numbers.

use crate::checkpoint::Checkpoint;
use crate::classify::ClassifierProgress;
use crate::error::{Result, TrainError};
use crate::limits::MAX_ITERATIONS;
use crate::regress::RegressorProgress;

/// Turns a failed check into [`TrainError::Checkpoint`] naming the file.
fn refuse<P>(checkpoint: &Checkpoint<P>, message: String) -> TrainError {
    TrainError::Checkpoint {
        path: checkpoint.path.clone(),
        message,
    }
}

/// An error message unless `value` is finite and not negative.
fn non_negative(what: &str, value: f64) -> std::result::Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("{what} is {value}, not a finite number ≥ 0"))
    }
}

/// What is wrong with an MNIST run's progress, if anything.
fn classifier_problem(p: &ClassifierProgress, has_best: bool) -> std::result::Result<(), String> {
    p.config
        .validate()
        .map_err(|e| format!("the saved settings are not valid: {e}"))?;
    if p.total == 0 || p.total > MAX_ITERATIONS {
        return Err(format!(
            "the run's length of {} iterations is not within 1..={MAX_ITERATIONS}",
            p.total
        ));
    }
    if p.iteration > p.total {
        return Err(format!(
            "it claims iteration {} of a run of {} iterations",
            p.iteration, p.total
        ));
    }
    if let Some(point) = p.history.iter().find(|h| h.iteration > p.iteration) {
        return Err(format!(
            "its history has a validation at iteration {}, after the iteration {} it is at",
            point.iteration, p.iteration
        ));
    }
    match p.best {
        Some((iteration, _)) if iteration > p.iteration => {
            return Err(format!(
                "its best weights are from iteration {iteration}, after the iteration {} \
                 it is at",
                p.iteration
            ))
        }
        Some((_, accuracy)) if !(0.0..=1.0).contains(&accuracy) => {
            return Err(format!("its best accuracy {accuracy} is not within [0, 1]"))
        }
        Some(_) if !has_best => {
            return Err("it names a best iteration but holds no best weights".into())
        }
        _ => {}
    }
    non_negative("the training time", p.seconds)?;
    if let Some(first) = p.first_loss {
        non_negative("the first loss", first)?;
    }
    Ok(())
}

/// What is wrong with a stock run's progress, if anything.
fn regressor_problem(p: &RegressorProgress) -> std::result::Result<(), String> {
    p.config
        .validate()
        .map_err(|e| format!("the saved settings are not valid: {e}"))?;
    if p.epoch > p.config.epochs {
        return Err(format!(
            "it claims epoch {} of a run of {} epochs",
            p.epoch, p.config.epochs
        ));
    }
    if p.all_losses.len() != p.epoch {
        return Err(format!(
            "it holds {} losses for {} epochs done",
            p.all_losses.len(),
            p.epoch
        ));
    }
    if let Some(point) = p.logged.iter().find(|l| l.epoch >= p.epoch) {
        return Err(format!(
            "it logged epoch {}, beyond the {} epochs done",
            point.epoch, p.epoch
        ));
    }
    for loss in p.all_losses.iter().chain(p.logged.iter().map(|l| &l.loss)) {
        non_negative("a saved loss", *loss)?;
    }
    non_negative("the training time", p.seconds)
}

impl Checkpoint<ClassifierProgress> {
    /// Checks the progress of an MNIST checkpoint (see the module's documentation).
    pub fn check_progress(&self) -> Result<()> {
        classifier_problem(&self.progress, !self.best.is_empty()).map_err(|m| refuse(self, m))
    }
}

impl Checkpoint<RegressorProgress> {
    /// Checks the progress of a stock checkpoint (see the module's documentation).
    pub fn check_progress(&self) -> Result<()> {
        regressor_problem(&self.progress).map_err(|m| refuse(self, m))
    }
}
