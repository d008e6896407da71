//! Checkpoints: one safetensors file per run holding the weights, the best weights so
//! far, the optimizer state and, in the file's metadata, the run's progress as JSON
//! (iteration, batch-order state, config, history).
//!
//! One file, written atomically (temporary file, fsync, rename), so a kill at any moment
//! leaves the previous checkpoint whole: there is never a weights file from one
//! iteration beside an optimizer file from another.
//!
//! Tensor names: the model's own (PyTorch's) names for the current weights, `best.<name>`
//! for the best weights kept by [`crate::Selection::Best`], `optimizer.first.<name>` and
//! `optimizer.second.<name>` for momentum buffers and Adam's moments.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::optim::Optimizer;
use crate::run_dir::RunDir;

/// File name of a run's checkpoint inside its run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// Metadata key holding the progress JSON.
const PROGRESS_KEY: &str = "lstm.checkpoint";
/// Version of the checkpoint layout.
const FORMAT: u32 = 1;
/// Prefix of the best weights' tensors.
const BEST: &str = "best.";

/// The JSON stored in a checkpoint's metadata.
#[derive(Serialize, Deserialize)]
struct Envelope<P> {
    format: u32,
    task: String,
    progress: P,
}

/// A checkpoint read back from disk.
#[derive(Debug)]
pub struct Checkpoint<P> {
    /// The file it was read from.
    pub path: PathBuf,
    /// The task that wrote it (`mnist`, `stock`).
    pub task: String,
    /// The run's progress (iteration, sampler state, config, history…).
    pub progress: P,
    /// Current weights, by parameter name.
    pub weights: HashMap<String, Tensor>,
    /// Best weights so far, by parameter name (empty when none were kept).
    pub best: HashMap<String, Tensor>,
    /// Optimizer state tensors, under [`Optimizer::state_tensors`]' names.
    pub optimizer: HashMap<String, Tensor>,
}

/// Writes `dir/checkpoint.safetensors` atomically and returns its path.
pub(crate) fn save_checkpoint<P: Serialize>(
    dir: &RunDir,
    task: &str,
    progress: &P,
    varmap: &VarMap,
    best: Option<&[(String, Tensor)]>,
    optimizer: &Optimizer,
) -> Result<PathBuf> {
    let path = dir.file(CHECKPOINT_FILE);
    let mut tensors = crate::snapshot::current_tensors(varmap);
    if let Some(best) = best {
        tensors.extend(best.iter().map(|(n, t)| (format!("{BEST}{n}"), t.clone())));
    }
    tensors.extend(optimizer.state_tensors()?);
    let envelope = Envelope {
        format: FORMAT,
        task: task.to_string(),
        progress,
    };
    let json = serde_json::to_string(&envelope).map_err(|source| TrainError::Json {
        path: path.clone(),
        source,
    })?;
    let metadata = HashMap::from([(PROGRESS_KEY.to_string(), json)]);
    let bytes =
        safetensors::serialize(tensors, Some(metadata)).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            message: format!("cannot serialise: {e}"),
        })?;
    dir.write_atomic(CHECKPOINT_FILE, &bytes)
}

/// Reads a checkpoint written for `task`: a path to the file or to its run directory.
///
/// Errors ([`TrainError::Checkpoint`], naming the file): missing, truncated or not a
/// safetensors file, no progress metadata, another layout version, or written by another
/// task (e.g. a stock checkpoint given to the MNIST command).
pub fn read_checkpoint<P: DeserializeOwned>(path: &Path, task: &str) -> Result<Checkpoint<P>> {
    let path = if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    };
    let bad = |message: String| TrainError::Checkpoint {
        path: path.clone(),
        message,
    };
    let bytes = std::fs::read(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        bad(format!(
            "not a complete safetensors file ({} bytes): {e}",
            bytes.len()
        ))
    })?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(PROGRESS_KEY))
        .ok_or_else(|| {
            bad(
                "holds no run progress: it is a weights file, not a checkpoint (a run's \
                 checkpoint is <run dir>/checkpoint.safetensors)"
                    .into(),
            )
        })?;
    let head: Envelope<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| bad(format!("unreadable progress: {e}")))?;
    if head.format != FORMAT {
        return Err(bad(format!(
            "checkpoint format {} is not supported (this build reads format {FORMAT})",
            head.format
        )));
    }
    if head.task != task {
        return Err(bad(format!(
            "this is a checkpoint of a `{}` run, not of a `{task}` run",
            head.task
        )));
    }
    let progress: P = serde_json::from_value(head.progress)
        .map_err(|e| bad(format!("unreadable progress: {e}")))?;
    let all =
        candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu).map_err(|e| {
            bad(format!(
                "not a complete safetensors file ({} bytes): {e}",
                bytes.len()
            ))
        })?;
    let (mut weights, mut best, mut optimizer) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (name, tensor) in all {
        if Optimizer::is_state_name(&name) {
            optimizer.insert(name, tensor);
        } else if let Some(param) = name.strip_prefix(BEST) {
            best.insert(param.to_string(), tensor);
        } else {
            weights.insert(name, tensor);
        }
    }
    Ok(Checkpoint {
        path,
        task: head.task,
        progress,
        weights,
        best,
        optimizer,
    })
}

impl<P> Checkpoint<P> {
    /// Sets `varmap` to the checkpoint's current weights (strictly: a name or shape that
    /// differs is an error listing every difference, and nothing is changed).
    pub fn restore_weights(&self, varmap: &VarMap) -> Result<()> {
        Ok(lstm_core::assign_state_dict(
            varmap,
            &self.weights,
            &self.path,
        )?)
    }

    /// The best weights as a list, or `None` when the run kept none.
    pub(crate) fn best_snapshot(&self) -> Option<Vec<(String, Tensor)>> {
        if self.best.is_empty() {
            return None;
        }
        let mut best: Vec<(String, Tensor)> = self
            .best
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        best.sort_by(|a, b| a.0.cmp(&b.0));
        Some(best)
    }
}
