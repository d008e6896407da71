//! Shared helpers for the end-to-end tests in `tests/tests/`.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

/// The directory of the committed PyTorch fixtures.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The repository's `data/` directory.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// Loads a fixture file written by `fixtures/make_fixtures.py`.
pub fn load_fixture(name: &str) -> HashMap<String, Tensor> {
    let path = fixtures_dir().join(name);
    candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("cannot load fixture {}: {e}", path.display()))
}

/// A tensor of a fixture, by name.
pub fn get<'a>(fx: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    fx.get(name)
        .unwrap_or_else(|| panic!("fixture has no tensor {name}"))
}

/// A `VarMap` holding `names` of the fixture as trainable variables, renamed by `rename`.
pub fn varmap_from(
    fx: &HashMap<String, Tensor>,
    names: &[&str],
    rename: impl Fn(&str) -> String,
) -> VarMap {
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().expect("varmap lock");
        for name in names {
            let var = Var::from_tensor(get(fx, name)).expect("var");
            data.insert(rename(name), var);
        }
    }
    varmap
}

/// The largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("difference")
}

/// The names of a fixture's module parameters (`weight_*`, `bias_*`), sorted.
pub fn param_names(fx: &HashMap<String, Tensor>) -> Vec<String> {
    let mut names: Vec<String> = fx
        .keys()
        .filter(|k| k.starts_with("weight_") || k.starts_with("bias_"))
        .cloned()
        .collect();
    names.sort();
    names
}
