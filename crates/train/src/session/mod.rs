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
mod format1;
mod io;
mod progress;
mod task;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;

pub use config::{LrSchedule, SessionConfig};
pub(crate) use format1::old_session;
pub use format1::Format1;
pub use io::{End, Io, Step};
pub(crate) use progress::non_negative as progress_non_negative;
pub use progress::{
    parse_session_checkpoint, read_session_checkpoint, Progress, SessionCheckpoint,
};
pub use task::{Settings, Task, Unit};

use crate::checkpoint::{save_checkpoint, CHECKPOINT_FILE};
use crate::error::{divergence, is_divergent, IoContext, Result, TrainError};
use crate::optim::Optimizer;
use crate::run_dir::RunDir;
use crate::snapshot::{all_finite, progress_bar, restore, snapshot, Snapshot};
use crate::tensorboard::EventWriter;

/// File the last good weights are written to when a run diverges.
pub const LAST_GOOD_FILE: &str = "last-good.safetensors";

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
        T::UNIT.singular(),
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
    task: T,
    cfg: &SessionConfig,
    position: Position,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<T::Report> {
    let total = task.total_steps();
    let bar = progress_bar(cfg.progress, total, T::UNIT.plural());
    if let Some(label) = task.label() {
        bar.set_prefix(label.to_string());
    }
    bar.set_position(position.step as u64);
    bar.reset_eta();
    let io = Io {
        out,
        bar,
        run_dir,
        events: run_dir.map(|d| EventWriter::create(d.path())).transpose()?,
    };
    let mut session = Session {
        last_checkpoint: run_dir
            .map(|d| d.file(CHECKPOINT_FILE))
            .filter(|p| p.is_file())
            .map(|p| (position.step, p)),
        started: Instant::now(),
        samples_before: position.samples,
        seconds_before: position.seconds,
        last_good: None,
        total,
        task,
        cfg,
        s: position,
        io,
    };
    let stop_at = cfg.stop_after.map_or(total, |k| k.min(total));
    while session.s.step < stop_at {
        session.step()?;
        let done = session.s.step;
        let due = (cfg.checkpoint_every > 0 && done.is_multiple_of(cfg.checkpoint_every))
            || done == stop_at;
        if due && run_dir.is_some() {
            session.checkpoint()?;
        }
    }
    session.finish()
}

/// A session while it runs.
struct Session<'a, 'o, T: Task> {
    task: T,
    cfg: &'a SessionConfig,
    s: Position,
    io: Io<'o>,
    total: usize,
    started: Instant,
    samples_before: usize,
    seconds_before: f64,
    last_checkpoint: Option<(usize, PathBuf)>,
    last_good: Option<Snapshot>,
}

impl<T: Task> Session<'_, '_, T> {
    /// One step: the loss, the divergence check, the update, the task's after-step.
    fn step(&mut self) -> Result<()> {
        let index = self.s.step;
        let lr = self.cfg.rate(index + 1, self.total);
        let (loss, samples) = self.task.loss(index)?;
        let value = loss.to_scalar::<f32>()?;
        let first = *self.s.first_loss.get_or_insert(f64::from(value));
        if is_divergent(value, first) {
            return Err(self.diverged(index, value, Some(first)));
        }
        self.last_good = Some(snapshot(self.task.varmap())?);
        self.s.optimizer.set_learning_rate(lr);
        self.s.optimizer.backward_step(&loss)?;
        self.s.step = index + 1;
        self.s.samples += samples;
        self.s.losses.push(f64::from(value));
        self.io.bar.inc(1);
        let rate =
            (self.s.samples - self.samples_before) as f64 / self.started.elapsed().as_secs_f64();
        if self.s.step.is_multiple_of(20) || self.s.step == self.total {
            self.io
                .message(format!("loss {value:.4} · {rate:.0} samples/s"));
        }
        self.io.scalars(
            self.s.step,
            &[
                ("train/loss", f64::from(value)),
                ("train/learning_rate", lr),
                ("train/samples_per_second", rate),
            ],
        )?;
        let step = Step {
            index,
            total: self.total,
            loss: value,
        };
        self.task.after_step(&step, &mut self.io)
    }

    /// The divergence error of step `index`, after keeping the last good weights (or the
    /// error that keeping them met).
    fn diverged(&mut self, index: usize, loss: f32, first: Option<f64>) -> TrainError {
        self.io.bar.finish_and_clear();
        match keep_last_good(
            &self.task,
            self.last_good.as_deref(),
            self.io.run_dir,
            &self.last_checkpoint,
        ) {
            Ok(kept) => divergence(T::UNIT.singular(), T::UNIT.label(index), loss, first, kept),
            Err(e) => e,
        }
    }

    /// Checks that every weight is finite and writes the checkpoint.
    fn checkpoint(&mut self) -> Result<()> {
        let Some(dir) = self.io.run_dir else {
            return Ok(());
        };
        if !all_finite(self.task.varmap())? {
            return Err(self.diverged(self.s.step - 1, f32::NAN, None));
        }
        let (config, state) = self.task.saved();
        let progress = Progress {
            session: self.cfg.clone(),
            config: config.clone(),
            context: self.s.context.clone(),
            step: self.s.step,
            total: self.total,
            optimizer_steps: self.s.optimizer.steps(),
            samples: self.s.samples,
            seconds: self.seconds(),
            first_loss: self.s.first_loss,
            losses: self.s.losses.clone(),
            state,
        };
        let path = save_checkpoint(
            dir,
            T::NAME,
            &progress,
            self.task.varmap(),
            self.task.kept().map(Vec::as_slice),
            &self.s.optimizer,
        )?;
        self.last_checkpoint = Some((self.s.step, path));
        Ok(())
    }

    /// Training time so far, over every session of the run.
    fn seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    /// The end: the "stopped" line of a run stopped early, then the task's end.
    fn finish(mut self) -> Result<T::Report> {
        self.io.bar.finish_and_clear();
        let seconds = self.seconds();
        if self.s.step < self.total {
            self.io.line(&format!(
                "Stopped after {} {} of {}",
                T::UNIT.singular(),
                self.s.step,
                self.total
            ))?;
        }
        let end = End {
            steps: self.s.step,
            total: self.total,
            losses: self.s.losses,
            seconds,
            samples: self.s.samples,
            checkpoint: self.last_checkpoint.map(|(_, p)| p),
        };
        self.task.finish(&end, &mut self.io)
    }
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
            T::UNIT.singular()
        )),
        None => kept.push_str("; no checkpoint was written before it diverged"),
    }
    Ok(kept)
}
