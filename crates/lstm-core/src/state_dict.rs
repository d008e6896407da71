//! Loading and saving parameters as safetensors state dicts under PyTorch's names.
//!
//! Every model of this crate names its parameters as PyTorch does (`weight_ih_l0`,
//! `weight_hh_l1_reverse`, `fc.weight`, …), so a `state_dict()` saved in Python with
//! `safetensors.torch.save_file` loads into the matching model here and a file saved here
//! loads into the matching `nn.Module` with `load_state_dict`.
//!
//! Loading is strict, as PyTorch's `load_state_dict(strict=True)`: every parameter the
//! model has must be in the file with the same shape, and the file may hold nothing
//! else. A mismatch is reported as a [`StateDictMismatch`] that lists what was expected
//! and what was found.
//!
//! ```no_run
//! use candle_core::{DType, Device};
//! use candle_nn::VarMap;
//! use lstm_core::{load_state_dict, seeded_var_builder, Lstm, LstmConfig};
//!
//! let varmap = VarMap::new();
//! let vb = seeded_var_builder(&varmap, 0, DType::F32, &Device::Cpu);
//! let lstm = Lstm::new(LstmConfig::new(28, 128).with_layers(2), vb)?;
//! load_state_dict(&varmap, "torch_lstm.safetensors".as_ref())?;
//! # Ok::<(), lstm_core::LstmError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::error::{LstmError, Result};
pub use crate::mismatch::{StateDictMismatch, TensorEntry};

/// The names and shapes of every variable in `varmap`, sorted by name.
pub fn expected_entries(varmap: &VarMap) -> Vec<TensorEntry> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut entries: Vec<TensorEntry> = data
        .iter()
        .map(|(name, var)| TensorEntry {
            name: name.clone(),
            shape: var.dims().to_vec(),
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Reads every tensor of a safetensors file onto the CPU.
///
/// Errors: [`LstmError::WeightsFile`] naming `path` when it cannot be read or is not a
/// complete safetensors file (e.g. truncated).
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bad = |message: String| LstmError::WeightsFile {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
        bad(format!(
            "not a complete safetensors file ({} bytes): {e}",
            bytes.len()
        ))
    })
}

/// Sets every variable of `varmap` from `tensors` (strictly: same names, same shapes,
/// nothing extra). `source` names the origin in errors.
///
/// Tensors of another float dtype are converted to the variable's dtype. Errors:
/// [`LstmError::StateDict`] listing every difference, [`LstmError::WeightsFile`] when a
/// tensor holds NaN or infinity. Nothing is changed unless everything matches.
pub fn assign_state_dict(
    varmap: &VarMap,
    tensors: &HashMap<String, Tensor>,
    source: &Path,
) -> Result<()> {
    let expected = expected_entries(varmap);
    let mut found: Vec<TensorEntry> = tensors
        .iter()
        .map(|(name, t)| TensorEntry {
            name: name.clone(),
            shape: t.dims().to_vec(),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let mismatch = StateDictMismatch::between(&expected, &found);
    if !mismatch.is_empty() {
        return Err(LstmError::StateDict {
            path: source.to_path_buf(),
            mismatch: Box::new(mismatch),
        });
    }
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut converted = Vec::with_capacity(data.len());
    for (name, var) in data.iter() {
        let value = tensors[name].to_dtype(var.dtype())?;
        let finite = value
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .all(|v| v.is_finite());
        if !finite {
            return Err(LstmError::WeightsFile {
                path: source.to_path_buf(),
                message: format!("tensor {name} holds NaN or infinite values"),
            });
        }
        converted.push((var, value));
    }
    for (var, value) in converted {
        var.set(&value)?;
    }
    Ok(())
}

/// Loads a safetensors state dict (ours or PyTorch's) into the variables of `varmap`.
///
/// See [`assign_state_dict`] for the rules and errors, plus [`read_safetensors`]'s.
pub fn load_state_dict(varmap: &VarMap, path: &Path) -> Result<()> {
    let tensors = read_safetensors(path)?;
    assign_state_dict(varmap, &tensors, path)
}

/// Saves every variable of `varmap` to `path` as safetensors, under the names PyTorch's
/// matching module uses (not atomic; see `lstm-train`'s run directories for that).
pub fn save_state_dict(varmap: &VarMap, path: &Path) -> Result<()> {
    varmap.save(path).map_err(|e| LstmError::WeightsFile {
        path: PathBuf::from(path),
        message: format!("cannot write: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{seeded_var_builder, Lstm, LstmConfig};
    use candle_core::DType;

    fn lstm_varmap(hidden: usize, layers: usize) -> Result<VarMap> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 1, DType::F32, &Device::Cpu);
        Lstm::new(LstmConfig::new(3, hidden).with_layers(layers), vb)?;
        Ok(varmap)
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("lstm-core-sd-{}-{name}", std::process::id()))
    }

    #[test]
    fn save_then_load_round_trips_exactly() -> Result<()> {
        let a = lstm_varmap(4, 2)?;
        let path = temp("roundtrip.safetensors");
        save_state_dict(&a, &path)?;
        let b = VarMap::new();
        let vb = seeded_var_builder(&b, 99, DType::F32, &Device::Cpu);
        Lstm::new(LstmConfig::new(3, 4).with_layers(2), vb)?;
        load_state_dict(&b, &path)?;
        let (da, db) = (a.data().lock().unwrap(), b.data().lock().unwrap());
        for (name, var) in da.iter() {
            let x = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let y = db[name].as_tensor().flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(x, y, "{name}");
        }
        std::fs::remove_file(path).ok();
        Ok(())
    }

    #[test]
    fn another_shape_lists_expected_and_found() -> Result<()> {
        let small = lstm_varmap(4, 1)?;
        let path = temp("shape.safetensors");
        save_state_dict(&small, &path)?;
        let big = lstm_varmap(5, 2)?;
        let err = load_state_dict(&big, &path).unwrap_err();
        let LstmError::StateDict { mismatch, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(mismatch.missing.len(), 4, "{err}");
        assert_eq!(mismatch.missing[0].name, "bias_hh_l1");
        assert!(mismatch.unexpected.is_empty());
        assert!(mismatch.wrong_shape.contains(&(
            "weight_ih_l0".to_string(),
            vec![20, 3],
            vec![16, 3]
        )));
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains("weight_hh_l0: expected [20, 5], found [16, 4]"),
            "{text}"
        );
        assert!(text.contains("bias_ih_l1 [20]"), "{text}");
        std::fs::remove_file(path).ok();
        Ok(())
    }

    #[test]
    fn extra_tensors_truncation_and_nan_are_errors() -> Result<()> {
        let a = lstm_varmap(4, 1)?;
        let path = temp("extra.safetensors");
        let mut tensors: HashMap<String, Tensor> = a
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        tensors.insert(
            "fc.weight".into(),
            Tensor::zeros((2, 4), DType::F32, &Device::Cpu)?,
        );
        candle_core::safetensors::save(&tensors, &path)?;
        let err = load_state_dict(&a, &path).unwrap_err().to_string();
        assert!(err.contains("unexpected in the file"), "{err}");
        assert!(err.contains("fc.weight [2, 4]"), "{err}");

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_state_dict(&a, &path).unwrap_err().to_string();
        assert!(err.contains("not a complete safetensors file"), "{err}");

        tensors.remove("fc.weight");
        tensors.insert(
            "bias_hh_l0".into(),
            Tensor::new(&[f32::NAN; 16], &Device::Cpu)?,
        );
        candle_core::safetensors::save(&tensors, &path)?;
        let before = a.data().lock().unwrap()["weight_ih_l0"]
            .as_tensor()
            .flatten_all()?
            .to_vec1::<f32>()?;
        let err = load_state_dict(&a, &path).unwrap_err().to_string();
        assert!(err.contains("bias_hh_l0 holds NaN"), "{err}");
        let after = a.data().lock().unwrap()["weight_ih_l0"]
            .as_tensor()
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(before, after, "a failed load must change nothing");

        let err = load_state_dict(&a, Path::new("/nonexistent/w.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/w.safetensors: cannot read"),
            "{err}"
        );
        std::fs::remove_file(path).ok();
        Ok(())
    }
}
