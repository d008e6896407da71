//! Checkpoints: one safetensors file per run holding the weights, the best weights so
//! far, the optimizer state and, in the file's metadata, the run's progress as JSON
//! (iteration, batch-order state, config, history).
//!
//! One file, written atomically (temporary file, fsync, rename), so a kill at any moment
//! leaves the previous checkpoint whole: there is never a weights file from one
//! iteration beside an optimizer file from another.
//!
//! Tensor names: the model's own (PyTorch's) names for the current weights, `best.<name>`
//! for the best weights kept by [`crate::tasks::mnist::Selection::Best`], `optimizer.first.<name>` and
//! `optimizer.second.<name>` for momentum buffers and Adam's moments.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::limits::MAX_CHECKPOINT_BYTES;
use crate::optim::Optimizer;
use crate::run_dir::RunDir;

/// File name of a run's checkpoint inside its run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// Metadata key holding the progress JSON.
const PROGRESS_KEY: &str = "lstm.checkpoint";
/// Version of the checkpoint layout: 2 since every task runs in one session (format 1
/// had one progress layout per task; [`read_checkpoint_with`] upgrades it).
const FORMAT: u32 = 2;
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
/// Progress of format 1 goes through `upgrade`.
///
/// Errors ([`TrainError::Checkpoint`], naming the file): missing, not a regular file,
/// over [`MAX_CHECKPOINT_BYTES`], truncated or not a safetensors file, no progress
/// metadata, an unknown layout version, written by another task (e.g. a stock checkpoint
/// given to the MNIST command), or best weights or optimizer state that are not finite
/// or do not match the weights.
pub fn read_checkpoint_with<P: DeserializeOwned>(
    path: &Path,
    task: &str,
    upgrade: impl Fn(serde_json::Value) -> std::result::Result<P, String>,
) -> Result<Checkpoint<P>> {
    let path = if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = read_bounded(&path, MAX_CHECKPOINT_BYTES)?;
    parse_checkpoint_with(&path, &bytes, task, upgrade)
}

/// Reads `path`, a regular file of at most `limit` bytes, as a checkpoint error naming it.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    lstm_datasets::read_capped(path, limit).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Every tensor of the safetensors file `bytes`, after checking that its header length
/// fits in the file; `path` names it in errors.
pub fn parse_safetensors(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let bad = |detail: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "not a complete safetensors file ({} bytes): {detail}",
            bytes.len()
        ),
    };
    let header = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| bad("too short for the header length".into()))?;
    if header > bytes.len() as u64 - 8 {
        return Err(bad(format!("its header claims {header} bytes")));
    }
    candle_core::safetensors::load_buffer(bytes, &candle_core::Device::Cpu)
        .map_err(|e| bad(e.to_string()))
}

/// [`read_checkpoint_with`] on the bytes of a checkpoint file; `path` names it in errors.
pub fn parse_checkpoint_with<P: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    task: &str,
    upgrade: impl Fn(serde_json::Value) -> std::result::Result<P, String>,
) -> Result<Checkpoint<P>> {
    let path = path.to_path_buf();
    let bad = |message: String| TrainError::Checkpoint {
        path: path.clone(),
        message,
    };
    let all = parse_safetensors(&path, bytes)?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| {
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
    if head.task != task {
        return Err(bad(format!(
            "this is a checkpoint of a `{}` run, not of a `{task}` run",
            head.task
        )));
    }
    let progress: P = match head.format {
        FORMAT => serde_json::from_value(head.progress).map_err(|e| e.to_string()),
        1 => upgrade(head.progress),
        other => {
            return Err(bad(format!(
                "checkpoint format {other} is not supported (this build reads formats 1 \
                 and {FORMAT})"
            )))
        }
    }
    .map_err(|e| bad(format!("unreadable progress: {e}")))?;
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
    check_companions(&weights, &best, &optimizer).map_err(bad)?;
    Ok(Checkpoint {
        path,
        task: head.task,
        progress,
        weights,
        best,
        optimizer,
    })
}

/// Checks the best weights (none, or one finite tensor per weight, of its shape) and the
/// optimizer state (finite), which are restored without going through the model's
/// strict loading.
fn check_companions(
    weights: &HashMap<String, Tensor>,
    best: &HashMap<String, Tensor>,
    optimizer: &HashMap<String, Tensor>,
) -> std::result::Result<(), String> {
    if !best.is_empty() {
        for (name, tensor) in weights {
            match best.get(name) {
                None => return Err(format!("the best weights lack {name}")),
                Some(b) if b.dims() != tensor.dims() => {
                    return Err(format!(
                        "best weights {name}: shape {:?}, but the weights have {:?}",
                        b.dims(),
                        tensor.dims()
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = best.keys().find(|n| !weights.contains_key(*n)) {
            return Err(format!("best weights {extra} belong to no weight"));
        }
    }
    let tensors = best
        .iter()
        .map(|(n, t)| (format!("{BEST}{n}"), t))
        .chain(optimizer.iter().map(|(n, t)| (n.clone(), t)));
    for (name, tensor) in tensors {
        let sum = tensor
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.abs()?.sum_all()?.to_scalar::<f32>())
            .map_err(|e| format!("tensor {name}: {e}"))?;
        if !sum.is_finite() {
            return Err(format!("tensor {name} holds NaN or infinite values"));
        }
    }
    Ok(())
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
