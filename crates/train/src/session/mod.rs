//! One training session for every task.
//!
//! A [`Task`] says what differs between tasks: its model and data, the loss of one step,
//! what happens after a step (the book's printed lines, validation, best weights) and
//! the end of the run (the report and its files). The session owns what is the same for
//! all of them, written once here:
//!
//! - the optimizer with its learning-rate schedule and gradient clipping
//!   ([`SessionConfig`]);
//! - the progress bar, `stop_after`, time and sample accounting;
//! - divergence (a loss that is NaN, infinite or over [`crate::DIVERGENCE_FACTOR`] times
//!   the first) and finiteness checks, and the last-good-weights policy: the weights
//!   before the step that diverged are restored, written to `last-good.safetensors` in
//!   the run directory, and named in the error; nothing else is touched;
//! - periodic atomic checkpoints, finding the last one, checking it, and resuming from it
//!   bit for bit ([`resume`]);
//! - the TensorBoard event file of the run directory (training loss, learning rate,
//!   samples/s; the task adds its validation scalars through [`Io::scalars`]).

pub mod config;
mod progress;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use candle_nn::VarMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use config::{LrSchedule, SessionConfig};
pub(crate) use progress::non_negative as progress_non_negative;
pub use progress::{
    parse_session_checkpoint, read_session_checkpoint, Format1, Progress, SessionCheckpoint,
};

use crate::checkpoint::{save_checkpoint, CHECKPOINT_FILE};
use crate::error::{divergence, is_divergent, IoContext, Result};
use crate::optim::Optimizer;
use crate::run_dir::RunDir;
use crate::snapshot::{all_finite, progress_bar, restore, snapshot, Snapshot};
use crate::tensorboard::EventWriter;

/// File the last good weights are written to when a run diverges.
pub const LAST_GOOD_FILE: &str = "last-good.safetensors";

/// What differs between training tasks (MNIST, stock prices, the adding problem).
pub trait Task: Sized {
    /// The task's name, stored in its checkpoints (`mnist`, `stock`, `adding`).
    const NAME: &'static str;
    /// What one step is called, singular and plural (`iteration(s)`, `epoch(s)`).
    const UNIT: (&'static str, &'static str);
    /// The number the first step is shown with: 1 for iterations, 0 for the book's
    /// epochs (`Epoch: 0` is the loss before the first update).
    const FIRST_STEP: usize;
    /// The task's own settings (model and data), saved with the session's.
    type Config: Clone + std::fmt::Debug + Serialize + DeserializeOwned;
    /// What the task accumulates over the steps, saved in checkpoints.
    type State: Clone + std::fmt::Debug + Serialize + DeserializeOwned;
    /// What a finished (or stopped) run returns.
    type Report;

    /// The task's settings.
    fn config(&self) -> &Self::Config;
    /// Rejects settings that cannot train (those read from a checkpoint, too).
    fn check_config(config: &Self::Config) -> Result<()>;
    /// Its state now.
    fn state(&self) -> &Self::State;
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

/// One finished step, as the task sees it in [`Task::after_step`].
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Steps done before this one.
    pub index: usize,
    /// Steps done with this one.
    pub done: usize,
    /// Steps of the whole run.
    pub total: usize,
    /// The loss of this step, before its update.
    pub loss: f32,
    /// The learning rate of its update.
    pub lr: f64,
}

impl Step {
    /// Whether this is the last step of the run.
    pub fn is_last(&self) -> bool {
        self.done == self.total
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
    out: &'a mut dyn Write,
    bar: indicatif::ProgressBar,
    run_dir: Option<&'a RunDir>,
    events: Option<EventWriter>,
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

/// Where a run stands besides its weights: what [`Progress`] saves, live.
struct Position {
    step: usize,
    optimizer: Optimizer,
    samples: usize,
    seconds: f64,
    first_loss: Option<f64>,
    losses: Vec<f64>,
    context: serde_json::Value,
}

/// Trains `task` from its first step with the `session` settings, printing to `out` and
/// writing into `run_dir` when one is given (`config.json`, checkpoints, TensorBoard
/// events, and the task's files). `context` is stored in the checkpoints for the
/// caller (e.g. how the data was loaded, to load it again on resume).
///
/// Errors: [`crate::TrainError::Setting`] for bad settings (before anything is printed
/// or written), [`crate::TrainError::Diverged`] / [`crate::TrainError::Exploded`] when the
/// loss diverges (the last checkpoint stays as it was).
pub fn train<T: Task>(
    task: T,
    session: &SessionConfig,
    context: serde_json::Value,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<T::Report> {
    session.validate()?;
    if let Some(dir) = run_dir {
        task.write_config(session, dir)?;
    }
    let optimizer =
        Optimizer::new(session.optimizer, task.varmap(), session.lr).with_clip(session.clip);
    let start = Position {
        step: 0,
        optimizer,
        samples: 0,
        seconds: 0.0,
        first_loss: None,
        losses: Vec::new(),
        context,
    };
    run(task, session, start, run_dir, out)
}

/// Continues the run saved in `checkpoint` with `task` (built from the checkpoint's
/// settings and the same data) to its end, or to `stop_after`, writing into `run_dir`
/// (normally the directory the checkpoint came from).
///
/// The weights, optimizer state, data order, schedule and history continue exactly where
/// they stopped, so the run ends with the same weights, bit for bit, as one that was never
/// interrupted. `stop_after` and `progress` replace the saved ones.
pub fn resume<T: Task>(
    mut task: T,
    checkpoint: &SessionCheckpoint<T>,
    stop_after: Option<usize>,
    progress: bool,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<T::Report> {
    let saved = &checkpoint.progress;
    let session = SessionConfig {
        stop_after,
        progress,
        ..saved.session.clone()
    };
    session.validate()?;
    progress::check(&task, checkpoint)?;
    checkpoint.restore_weights(task.varmap())?;
    task.restore(
        saved.state.clone(),
        checkpoint.best_snapshot(),
        &checkpoint.path,
    )?;
    let mut optimizer =
        Optimizer::new(session.optimizer, task.varmap(), session.lr).with_clip(session.clip);
    optimizer.load_state(
        saved.optimizer_steps,
        &checkpoint.optimizer,
        &checkpoint.path,
    )?;
    writeln!(
        out,
        "Resuming {} at {} {} of {}",
        checkpoint.path.display(),
        T::UNIT.0,
        saved.step,
        saved.total
    )
    .at(Path::new("<stdout>"))?;
    let start = Position {
        step: saved.step,
        optimizer,
        samples: saved.samples,
        seconds: saved.seconds,
        first_loss: saved.first_loss,
        losses: saved.losses.clone(),
        context: saved.context.clone(),
    };
    run(task, &session, start, run_dir, out)
}

/// The loop shared by fresh and resumed runs.
fn run<T: Task>(
    mut task: T,
    cfg: &SessionConfig,
    mut s: Position,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<T::Report> {
    let total = task.total_steps();
    let stop_at = cfg.stop_after.map_or(total, |k| k.min(total));
    let bar = progress_bar(cfg.progress, total, T::UNIT.1);
    if let Some(label) = task.label() {
        bar.set_prefix(label.to_string());
    }
    bar.set_position(s.step as u64);
    bar.reset_eta();
    let events = run_dir.map(|d| EventWriter::create(d.path())).transpose()?;
    let mut io = Io {
        out,
        bar,
        run_dir,
        events,
    };
    let started = Instant::now();
    let (session_samples, seconds_before) = (s.samples, s.seconds);
    let mut last_checkpoint: Option<(usize, PathBuf)> = run_dir
        .map(|d| d.file(CHECKPOINT_FILE))
        .filter(|p| p.is_file())
        .map(|p| (s.step, p));
    let mut last_good: Option<Snapshot> = None;
    while s.step < stop_at {
        let index = s.step;
        let lr = cfg.rate(index + 1, total);
        let (loss, samples) = task.loss(index)?;
        let value = loss.to_scalar::<f32>()?;
        let first = *s.first_loss.get_or_insert(f64::from(value));
        if is_divergent(value, first) {
            io.bar.finish_and_clear();
            let kept = keep_last_good(&task, last_good.as_deref(), run_dir, &last_checkpoint)?;
            return Err(divergence(
                T::UNIT.0,
                index + T::FIRST_STEP,
                value,
                Some(first),
                kept,
            ));
        }
        last_good = Some(snapshot(task.varmap())?);
        s.optimizer.set_learning_rate(lr);
        s.optimizer.backward_step(&loss)?;
        s.step = index + 1;
        s.samples += samples;
        s.losses.push(f64::from(value));
        io.bar.inc(1);
        let rate = (s.samples - session_samples) as f64 / started.elapsed().as_secs_f64();
        if s.step.is_multiple_of(20) || s.step == total {
            io.message(format!("loss {value:.4} · {rate:.0} samples/s"));
        }
        io.scalars(
            s.step,
            &[
                ("train/loss", f64::from(value)),
                ("train/learning_rate", lr),
                ("train/samples_per_second", rate),
            ],
        )?;
        let step = Step {
            index,
            done: s.step,
            total,
            loss: value,
            lr,
        };
        task.after_step(&step, &mut io)?;
        let due = (cfg.checkpoint_every > 0 && s.step.is_multiple_of(cfg.checkpoint_every))
            || s.step == stop_at;
        if let (true, Some(dir)) = (due, run_dir) {
            if !all_finite(task.varmap())? {
                io.bar.finish_and_clear();
                let kept = keep_last_good(&task, last_good.as_deref(), run_dir, &last_checkpoint)?;
                return Err(divergence(
                    T::UNIT.0,
                    index + T::FIRST_STEP,
                    f32::NAN,
                    None,
                    kept,
                ));
            }
            let seconds = seconds_before + started.elapsed().as_secs_f64();
            let progress = Progress {
                session: cfg.clone(),
                config: task.config().clone(),
                context: s.context.clone(),
                step: s.step,
                total,
                optimizer_steps: s.optimizer.steps(),
                samples: s.samples,
                seconds,
                first_loss: s.first_loss,
                losses: s.losses.clone(),
                state: task.state().clone(),
            };
            let path = save_checkpoint(
                dir,
                T::NAME,
                &progress,
                task.varmap(),
                task.kept().map(Vec::as_slice),
                &s.optimizer,
            )?;
            last_checkpoint = Some((s.step, path));
        }
    }
    io.bar.finish_and_clear();
    let seconds = seconds_before + started.elapsed().as_secs_f64();
    if s.step < total {
        io.line(&format!(
            "Stopped after {} {} of {total}",
            T::UNIT.0,
            s.step
        ))?;
    }
    let end = End {
        steps: s.step,
        total,
        losses: s.losses,
        seconds,
        samples: s.samples,
        checkpoint: last_checkpoint.map(|(_, p)| p),
    };
    task.finish(&end, &mut io)
}

/// After a divergence: restores the weights from before the step that diverged and, with
/// a run directory, writes them to [`LAST_GOOD_FILE`]; says where they and the last
/// checkpoint are.
fn keep_last_good<T: Task>(
    task: &T,
    last_good: Option<&[(String, Tensor)]>,
    run_dir: Option<&RunDir>,
    last_checkpoint: &Option<(usize, PathBuf)>,
) -> Result<String> {
    let mut kept = match (last_good, run_dir) {
        (Some(weights), Some(dir)) => {
            restore(task.varmap(), weights)?;
            dir.save_weights(LAST_GOOD_FILE, task.varmap())?
                .display()
                .to_string()
        }
        (Some(weights), None) => {
            restore(task.varmap(), weights)?;
            "in memory".into()
        }
        (None, _) => "none (the first step diverged: the initial weights give it)".into(),
    };
    match last_checkpoint {
        Some((at, path)) => kept.push_str(&format!(
            "; the last checkpoint is {} ({} {at})",
            path.display(),
            T::UNIT.0
        )),
        None => kept.push_str("; no checkpoint was written before it diverged"),
    }
    Ok(kept)
}
