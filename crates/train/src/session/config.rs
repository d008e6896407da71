//! The settings every training session shares, whatever the task: seed, learning rate
//! and its schedule, optimizer, gradient clipping, checkpoints, where to stop, progress.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::optim::OptimizerKind;

/// How the learning rate changes over a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LrSchedule {
    /// The same rate throughout (the book).
    Constant,
    /// The rate for the first 90% of the steps, a tenth of it for the last 10%: SGD at
    /// lr 0.1 ends noisy, and the smaller final steps settle it.
    #[default]
    #[serde(alias = "stepdown")]
    StepDown,
}

impl LrSchedule {
    /// The learning rate at `step` (1-based) of `total`, from the base rate.
    pub fn rate(self, base: f64, step: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::StepDown if step * 10 > total * 9 => base * 0.1,
            LrSchedule::StepDown => base,
        }
    }
}

/// What one training session is run with, for every task (saved in `config.json` and
/// in checkpoints; `stop_after` and `progress` belong to one invocation and are not).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// Seed of the weights and of the data order.
    pub seed: u64,
    /// Base learning rate.
    pub lr: f64,
    /// How the learning rate changes over the run.
    pub lr_schedule: LrSchedule,
    /// The optimizer and its hyper-parameters.
    pub optimizer: OptimizerKind,
    /// Global gradient-norm clip applied before every update (`None`: no clipping).
    #[serde(default)]
    pub clip: Option<f64>,
    /// Write a checkpoint every this many steps (and at the end); 0 = only at the end.
    /// Needs a run directory.
    pub checkpoint_every: usize,
    /// Stop (with a checkpoint) once this many steps are done, to resume later.
    #[serde(default, skip_serializing)]
    pub stop_after: Option<usize>,
    /// Show a progress bar.
    #[serde(default, skip_serializing)]
    pub progress: bool,
}

impl SessionConfig {
    /// Plain SGD at `lr` with a constant rate, checkpoints every 500 steps.
    pub fn sgd(lr: f64) -> Self {
        Self {
            seed: 42,
            lr,
            lr_schedule: LrSchedule::Constant,
            optimizer: OptimizerKind::Sgd { momentum: 0.0 },
            clip: None,
            checkpoint_every: 500,
            stop_after: None,
            progress: false,
        }
    }

    /// Adam (PyTorch's defaults) at `lr` with a constant rate.
    pub fn adam(lr: f64) -> Self {
        Self {
            optimizer: OptimizerKind::adam(),
            ..Self::sgd(lr)
        }
    }

    /// Rejects settings that cannot train; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::setting(
                "lr",
                format!(
                    "the learning rate must be a positive number, got {}",
                    self.lr
                ),
            ));
        }
        if let Some(clip) = self.clip.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(TrainError::setting(
                "clip",
                format!("must be a positive number, got {clip}"),
            ));
        }
        if self.stop_after == Some(0) {
            return Err(TrainError::setting("stop_after", "must be at least 1"));
        }
        self.optimizer.validate()
    }

    /// The learning rate of `step` (1-based) of `total`.
    pub fn rate(&self, step: usize, total: usize) -> f64 {
        self.lr_schedule.rate(self.lr, step, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_down_schedule_drops_for_the_last_tenth() {
        let s = LrSchedule::StepDown;
        assert_eq!(s.rate(0.1, 1, 1000), 0.1);
        assert_eq!(s.rate(0.1, 900, 1000), 0.1);
        assert!((s.rate(0.1, 901, 1000) - 0.01).abs() < 1e-12);
        assert!((s.rate(0.1, 1000, 1000) - 0.01).abs() < 1e-12);
        assert_eq!(LrSchedule::Constant.rate(0.1, 1000, 1000), 0.1);
    }

    #[test]
    fn schedules_are_saved_with_the_command_line_spelling() {
        let json = serde_json::to_string(&LrSchedule::StepDown).unwrap();
        assert_eq!(json, "\"step-down\"");
        // Checkpoints of format 1 wrote "stepdown".
        let old: LrSchedule = serde_json::from_str("\"stepdown\"").unwrap();
        assert_eq!(old, LrSchedule::StepDown);
        let err = serde_json::from_str::<LrSchedule>("\"step_down\"").unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn bad_settings_name_their_field() {
        let base = SessionConfig::sgd(0.1);
        assert!(base.validate().is_ok());
        for (cfg, field) in [
            (
                SessionConfig {
                    lr: -0.1,
                    ..base.clone()
                },
                "lr",
            ),
            (
                SessionConfig {
                    lr: f64::NAN,
                    ..base.clone()
                },
                "lr",
            ),
            (
                SessionConfig {
                    clip: Some(0.0),
                    ..base.clone()
                },
                "clip",
            ),
            (
                SessionConfig {
                    stop_after: Some(0),
                    ..base.clone()
                },
                "stop_after",
            ),
            (
                SessionConfig {
                    optimizer: OptimizerKind::Sgd { momentum: 1.0 },
                    ..base.clone()
                },
                "momentum",
            ),
        ] {
            match cfg.validate().unwrap_err() {
                TrainError::Setting { field: f, .. } => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }
}
