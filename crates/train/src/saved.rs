//! Loading a trained MNIST classifier from its run directory (`lstm evaluate`, `lstm
//! predict`): `config.json` and the weights are read with their size and kind checked
//! first, and the settings are validated against the limits before the model is built.

use std::ffi::OsStr;
use std::path::Path;

use crate::checkpoint::{parse_safetensors, read_bounded, CHECKPOINT_FILE};
use crate::error::{Result, TrainError};
use crate::limits::{MAX_CONFIG_BYTES, MAX_WEIGHTS_BYTES};
use crate::session::Settings;
use crate::tasks::mnist::{build_classifier, MnistConfig, MnistTask, TrainedClassifier};

/// Parses and validates the `config.json` of an `lstm mnist` run; `path` names it in
/// errors (not JSON, a stock run's config, not an MNIST run's settings, or settings
/// out of range, e.g. hidden 0 or 10⁹).
pub fn classifier_config_from_json(path: &Path, bytes: &[u8]) -> Result<MnistConfig> {
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    if value.get("train").is_some() {
        return Err(bad(
            "this is the config of a stock run; only MNIST runs can be evaluated here".into(),
        ));
    }
    let cfg: MnistConfig = serde_json::from_value(value)
        .map_err(|e| bad(format!("not an MNIST run's settings: {e}")))?;
    cfg.validate().map_err(|e| bad(e.to_string()))?;
    Ok(cfg)
}

/// Loads a trained classifier from a run directory of `lstm mnist`: the architecture from
/// its `config.json`, the parameters from its `model.safetensors`.
///
/// `path` may also be a file inside a run directory: a weights file (for example a
/// PyTorch `state_dict` saved with safetensors, under the same names) or the run's
/// `checkpoint.safetensors`; `weights` overrides the weights file. Errors name the file:
/// a missing, oversized or unreadable `config.json` (or one of a stock run, or with
/// settings out of range), and weights whose names or shapes differ from the model
/// (listing every difference).
pub fn load_classifier(
    path: &Path,
    weights: Option<&Path>,
) -> Result<(MnistConfig, TrainedClassifier)> {
    let (dir, default_weights) = if path.is_dir() {
        (path.to_path_buf(), path.join("model.safetensors"))
    } else {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (dir.to_path_buf(), path.to_path_buf())
    };
    if !path.exists() {
        return Err(TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: "no such run directory or weights file".into(),
        });
    }
    let weights = weights.map_or(default_weights, Path::to_path_buf);
    let config_path = dir.join("config.json");
    let text = lstm_datasets::read_capped(&config_path, MAX_CONFIG_BYTES).map_err(|e| {
        TrainError::Checkpoint {
            path: config_path.clone(),
            message: format!(
                "the run's settings: {e} (an MNIST run directory holds config.json \
                 beside model.safetensors)"
            ),
        }
    })?;
    let cfg = classifier_config_from_json(&config_path, &text)?;
    // The seed does not matter: every weight is loaded.
    let trained = build_classifier(&cfg, 0)?;
    if weights.file_name() == Some(OsStr::new(CHECKPOINT_FILE)) {
        crate::session::read_session_checkpoint::<MnistTask>(&weights)?
            .restore_weights(&trained.varmap)?;
    } else {
        load_weights(&trained, &weights)?;
    }
    Ok((cfg, trained))
}

/// Loads a safetensors weights file (ours or PyTorch's) into `trained`, strictly.
fn load_weights(trained: &TrainedClassifier, path: &Path) -> Result<()> {
    let bytes = read_bounded(path, MAX_WEIGHTS_BYTES)?;
    let tensors = parse_safetensors(path, &bytes)?;
    Ok(lstm_core::assign_state_dict(
        &trained.varmap,
        &tensors,
        path,
    )?)
}
