//! One module per command; what they share: the run directory of a new run, and the
//! data options a checkpoint stored for `--resume`.

pub(crate) mod evaluate;
pub(crate) mod gradflow;
pub(crate) mod mnist;
pub(crate) mod predict;
pub(crate) mod stock;

use std::path::Path;

use lstm_train::{resume, RunDir, SessionCheckpoint, Task, TrainError};

use crate::failure::{during, setup, Failure};
use crate::output;

/// The directory of a new run: `out` (refused if it holds a previous run, unless
/// `overwrite` moves that aside) or `runs/<task>-<UTC time>`.
pub(crate) fn new_run_dir(
    out: Option<&Path>,
    overwrite: bool,
    task: &str,
) -> Result<RunDir, Failure> {
    match out {
        Some(path) if overwrite => {
            let (dir, moved) = RunDir::create_replacing(path).map_err(setup)?;
            if let Some(aside) = moved {
                output::note(&format!(
                    "note: moved the previous run in {} to {}",
                    path.display(),
                    aside.display()
                ));
            }
            Ok(dir)
        }
        Some(path) => RunDir::create(path).map_err(setup),
        None => RunDir::timestamped(Path::new("runs"), task).map_err(setup),
    }
}

/// The data options this command stored in a checkpoint's context, for `--resume`.
pub(crate) fn saved_data<T: serde::de::DeserializeOwned>(
    checkpoint: &Path,
    context: &serde_json::Value,
) -> Result<T, Failure> {
    serde_json::from_value(context.clone()).map_err(|e| {
        setup(format!(
            "{}: the checkpoint does not say which data it was trained on: {e}",
            checkpoint.display()
        ))
    })
}

/// The line a stopped run ends with: how to continue it.
pub(crate) fn resume_hint(command: &str, checkpoint: Option<&Path>) -> Option<String> {
    let path = checkpoint?;
    Some(format!(
        "Resume with `lstm {command} --resume {}`",
        path.parent().unwrap_or(path).display()
    ))
}

/// Resumes `task` from `checkpoint` into `run_dir`, printing to standard output: a
/// checkpoint refused as it is read is a failure before training (exit code 2).
pub(crate) fn resume_in<T: Task>(
    task: T,
    checkpoint: &SessionCheckpoint<T>,
    stop_after: Option<usize>,
    progress: bool,
    run_dir: &RunDir,
) -> Result<T::Report, Failure> {
    let mut stdout = std::io::stdout();
    resume(
        task,
        checkpoint,
        stop_after,
        progress,
        Some(run_dir),
        &mut stdout,
    )
    .map_err(|e| match e {
        TrainError::Checkpoint { .. } => setup(e),
        e => during(e),
    })
}
