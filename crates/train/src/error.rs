//! The error type of the training crate.

use std::path::PathBuf;

/// Everything that can stop a training or evaluation run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The data could not be loaded.
    #[error(transparent)]
    Dataset(#[from] lstm_datasets::DatasetError),
    /// The model could not be built or run.
    #[error(transparent)]
    Model(#[from] lstm_core::LstmError),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A setting is out of range; `field` names it as in the configuration structs
    /// (`batch_size`, `lr`), which a command line maps to its flags.
    #[error("invalid setting `{field}`: {message}")]
    Setting {
        /// The configuration field.
        field: String,
        /// What is wrong with its value.
        message: String,
    },
    /// Settings that cannot train together, or a run that cannot be done (no field alone
    /// is wrong).
    #[error("invalid settings: {0}")]
    Config(String),
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at {unit} {iteration}: loss is {loss} (try a smaller learning \
         rate); last good weights: {kept}"
    )]
    Diverged {
        /// What a step is called (`iteration`, `epoch`).
        unit: &'static str,
        /// The step whose loss was not finite.
        iteration: usize,
        /// The loss value.
        loss: f32,
        /// Where the last good weights are.
        kept: String,
    },
    /// The loss grew beyond [`crate::DIVERGENCE_FACTOR`] times the run's first loss: the
    /// run is diverging although the numbers are still finite (e.g. `--lr 1e4`).
    #[error(
        "training diverged at {unit} {iteration}: loss {loss} is over {factor}× the first \
         {unit}'s loss {first:.4} (try a smaller learning rate); last good weights: {kept}"
    )]
    Exploded {
        /// What a step is called (`iteration`, `epoch`).
        unit: &'static str,
        /// The step whose loss exploded.
        iteration: usize,
        /// Its loss.
        loss: f32,
        /// The loss of the run's first iteration.
        first: f64,
        /// The factor that was exceeded.
        factor: f64,
        /// Where the last good weights are.
        kept: String,
    },
    /// A JSON file could not be written or read.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse or write error.
        source: serde_json::Error,
    },
    /// A checkpoint cannot be read or does not fit the run.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Another process holds the run directory's lock.
    #[error(
        "{}: in use by another running lstm process ({}); wait for it to finish, or \
         choose another directory",
        path.display(),
        pid.map_or_else(|| "PID unknown".to_string(), |p| format!("PID {p}"))
    )]
    RunDirInUse {
        /// The run directory.
        path: PathBuf,
        /// The holder's process id, as written in its lock file.
        pid: Option<u32>,
    },
    /// A new run's directory already holds files (a previous run).
    #[error(
        "{}: already holds a run ({})",
        path.display(),
        entries.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
            + if entries.len() > 4 { ", …" } else { "" }
    )]
    RunDirNotEmpty {
        /// The run directory.
        path: PathBuf,
        /// What it holds.
        entries: Vec<String>,
    },
    /// A plot could not be drawn or its data is unusable.
    #[error("cannot draw the {what}: {message}")]
    Plot {
        /// Which plot.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// The divergence error at `iteration`: [`TrainError::Exploded`] when the loss is finite
/// but over [`crate::DIVERGENCE_FACTOR`] times `first` (the run's first loss),
/// [`TrainError::Diverged`] otherwise. `kept` says where the last good weights are.
pub(crate) fn divergence(
    unit: &'static str,
    iteration: usize,
    loss: f32,
    first: Option<f64>,
    kept: String,
) -> TrainError {
    match first {
        Some(first) if loss.is_finite() => TrainError::Exploded {
            unit,
            iteration,
            loss,
            first,
            factor: crate::DIVERGENCE_FACTOR,
            kept,
        },
        _ => TrainError::Diverged {
            unit,
            iteration,
            loss,
            kept,
        },
    }
}

/// Whether `loss` ends a run whose first loss was `first`: NaN, infinite, or over
/// [`crate::DIVERGENCE_FACTOR`] times `first`.
pub(crate) fn is_divergent(loss: f32, first: f64) -> bool {
    !loss.is_finite() || f64::from(loss) > crate::DIVERGENCE_FACTOR * first
}

impl TrainError {
    /// [`TrainError::Setting`] for `field`.
    pub fn setting(field: &str, message: impl Into<String>) -> Self {
        TrainError::Setting {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// `Result` with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;

/// Attaches a path to an I/O result.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
