//! What a task is to the session: the [`Task`] trait, its [`Settings`], and the [`Unit`]
//! its steps are counted in.

use std::path::Path;

use candle_core::Tensor;
use candle_nn::VarMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{End, Io, SessionConfig, Step};
use crate::error::Result;
use crate::run_dir::RunDir;
use crate::snapshot::Snapshot;

/// Settings of a task: saved with the session's, and checked before a run starts (and
/// when read back from a checkpoint).
pub trait Settings: Clone + std::fmt::Debug + Serialize + DeserializeOwned {
    /// Rejects settings that cannot train; errors name the field.
    fn validate(&self) -> Result<()>;
}

/// What a task's step is: an iteration (shown from 1) or one of the book's epochs (shown
/// from 0: `Epoch: 0` is the loss before the first update).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A batch: `iteration 1` is the first.
    Iterations,
    /// A pass over the data: `epoch 0` is the first.
    Epochs,
}

impl Unit {
    /// `iteration` or `epoch`.
    pub fn singular(self) -> &'static str {
        match self {
            Unit::Iterations => "iteration",
            Unit::Epochs => "epoch",
        }
    }

    /// `iterations` or `epochs`.
    pub fn plural(self) -> &'static str {
        match self {
            Unit::Iterations => "iterations",
            Unit::Epochs => "epochs",
        }
    }

    /// The number step `index` (from 0) is shown with.
    pub fn label(self, index: usize) -> usize {
        match self {
            Unit::Iterations => index + 1,
            Unit::Epochs => index,
        }
    }
}

/// What differs between training tasks (MNIST, stock prices, the adding problem).
pub trait Task: Sized {
    /// The task's name, stored in its checkpoints (`mnist`, `stock`, `adding`).
    const NAME: &'static str;
    /// What one step is called and how it is numbered.
    const UNIT: Unit;
    /// The task's own settings (model and data), saved with the session's.
    type Config: Settings;
    /// What the task accumulates over the steps, saved in checkpoints.
    type State: Clone + std::fmt::Debug + Serialize + DeserializeOwned;
    /// What a finished (or stopped) run returns.
    type Report;

    /// What a checkpoint saves of the task: its settings and its state now.
    fn saved(&self) -> (&Self::Config, Self::State);
    /// The variables the session trains.
    fn varmap(&self) -> &VarMap;
    /// Steps of the whole run.
    fn total_steps(&self) -> usize;
    /// Writes the run's `config.json` (the session's and the task's settings).
    fn write_config(&self, session: &SessionConfig, dir: &RunDir) -> Result<()>;
    /// What is wrong with a state read from a checkpoint, `steps` steps into the run,
    /// that holds kept weights or not.
    fn check_state(
        &self,
        state: &Self::State,
        steps: usize,
        kept: bool,
    ) -> std::result::Result<(), String>;
    /// Continues from a checkpoint's state and kept weights (`path` names the file in
    /// errors).
    fn restore(&mut self, state: Self::State, kept: Option<Snapshot>, path: &Path) -> Result<()>;
    /// The loss of the step with index `index` (from 0), and the samples it used.
    fn loss(&mut self, index: usize) -> Result<(Tensor, usize)>;
    /// Whatever follows the update of `step` (validation, printed lines).
    fn after_step(&mut self, step: &Step, io: &mut Io) -> Result<()>;
    /// Weights kept besides the current ones (the best on validation), if any.
    fn kept(&self) -> Option<&Snapshot> {
        None
    }
    /// A label for the progress bar.
    fn label(&self) -> Option<&str> {
        None
    }
    /// The end of the run: the report and the task's files.
    fn finish(self, end: &End, io: &mut Io) -> Result<Self::Report>;
}
