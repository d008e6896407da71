//! What the session hands a task: the step just done ([`Step`]), the end of the run
//! ([`End`]), and where text, the run directory and TensorBoard events go ([`Io`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::run_dir::RunDir;
use crate::tensorboard::EventWriter;

/// One finished step, as the task sees it in [`Task::after_step`].
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Steps done before this one.
    pub index: usize,
    /// Steps of the whole run.
    pub total: usize,
    /// The loss of this step, before its update.
    pub loss: f32,
}

impl Step {
    /// Whether this is the last step of the run.
    pub fn is_last(&self) -> bool {
        self.done() == self.total
    }

    /// Steps done with this one.
    pub fn done(&self) -> usize {
        self.index + 1
    }
}

/// How a session ended, for [`Task::finish`].
#[derive(Clone, Debug)]
pub struct End {
    /// Steps done.
    pub steps: usize,
    /// Steps of the whole run (more than `steps` when stopped by `stop_after`).
    pub total: usize,
    /// The training loss of every step whose loss was recorded, the last `losses.len()`
    /// steps (a checkpoint of format 1 did not keep them).
    pub losses: Vec<f64>,
    /// Wall time of training, summed over resumed sessions, in seconds.
    pub seconds: f64,
    /// Samples trained on, summed over resumed sessions.
    pub samples: usize,
    /// The last checkpoint written, if any.
    pub checkpoint: Option<PathBuf>,
}

impl End {
    /// Whether the run did all its steps.
    pub fn completed(&self) -> bool {
        self.steps == self.total
    }

    /// Training throughput.
    pub fn samples_per_second(&self) -> f64 {
        self.samples as f64 / self.seconds.max(1e-9)
    }

    /// The step number of `losses[0]` (from 1).
    pub fn first_loss_step(&self) -> usize {
        self.steps - self.losses.len() + 1
    }
}

/// Where a session's text, progress bar, run directory and TensorBoard events go.
pub struct Io<'a> {
    pub(super) out: &'a mut dyn Write,
    pub(super) bar: indicatif::ProgressBar,
    pub(super) run_dir: Option<&'a RunDir>,
    pub(super) events: Option<EventWriter>,
}

impl Io<'_> {
    /// Prints `text` as a line, above the progress bar.
    pub fn line(&mut self, text: &str) -> Result<()> {
        let out = &mut self.out;
        self.bar
            .suspend(|| writeln!(out, "{text}"))
            .at(Path::new("<stdout>"))
    }

    /// The run directory, if the run has one.
    pub fn run_dir(&self) -> Option<&RunDir> {
        self.run_dir
    }

    /// Records scalars at `step` in the run's TensorBoard events (none without a run
    /// directory).
    pub fn scalars(&mut self, step: usize, values: &[(&str, f64)]) -> Result<()> {
        match &mut self.events {
            Some(events) => events.add_scalars(step as u64, values),
            None => Ok(()),
        }
    }

    /// Sets the progress bar's message.
    pub fn message(&self, text: String) {
        self.bar.set_message(text);
    }
}
