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

/// The shape of a fixture's recurrent module with `input` features: `H` from `c0` (an
/// LSTM) or `h0`, and a projection when `h0` is narrower than `c0`.
pub fn recurrent_config(fx: &HashMap<String, Tensor>, input: usize) -> lstm_core::RecurrentConfig {
    let h = get(fx, "h0").dim(2).expect("h0 dims");
    let hidden = fx.get("c0").map_or(h, |c| c.dim(2).expect("c0 dims"));
    let cfg = lstm_core::RecurrentConfig::new(input, hidden);
    match h == hidden {
        true => cfg,
        false => cfg.with_proj_size(h),
    }
}

/// Forward values must agree with PyTorch's to this (max absolute difference).
pub const FORWARD_TOL: f32 = 1e-5;
/// Gradients must agree with PyTorch's to this.
pub const GRAD_TOL: f32 = 1e-4;

/// Checks a recurrent model's run against a fixture of `make_fixtures.py`:
///
/// - every output (`out`, `h_n`, `c_n`) to [`FORWARD_TOL`];
/// - the loss `Σ out ⊙ probe_out + Σ h_n ⊙ probe_h [+ Σ c_n ⊙ probe_c]` to 1e-4;
/// - the gradients of `inputs` (the variables the run read: `x`, `h0`, `c0`) and of every
///   variable of `varmap` (named as the fixture's parameters) to [`GRAD_TOL`].
///
/// Returns the largest forward and gradient differences.
pub fn check_run(
    fx: &HashMap<String, Tensor>,
    tag: &str,
    outputs: &[(&str, &Tensor)],
    inputs: &[(&str, &Var)],
    varmap: &VarMap,
) -> (f32, f32) {
    let mut worst_forward = 0f32;
    let mut loss = Tensor::zeros((), candle_core::DType::F32, &Device::Cpu).expect("zero");
    for &(name, ours) in outputs {
        let diff = max_abs_diff(ours, get(fx, name));
        assert!(diff <= FORWARD_TOL, "{tag}: {name} differs by {diff}");
        worst_forward = worst_forward.max(diff);
        let probe = match name {
            "out" => "probe_out",
            "h_n" => "probe_h",
            "c_n" => "probe_c",
            other => panic!("{tag}: no probe for {other}"),
        };
        let term = (ours * get(fx, probe)).and_then(|t| t.sum_all());
        loss = (loss + term.expect("loss term")).expect("loss");
    }
    let loss_diff = max_abs_diff(&loss.reshape(1).expect("loss"), get(fx, "loss"));
    assert!(loss_diff <= 1e-4, "{tag}: loss differs by {loss_diff}");
    let grads = loss.backward().expect("backward");
    let data = varmap.data().lock().expect("varmap lock");
    let params = param_names(fx);
    assert_eq!(data.len(), params.len(), "{tag}: every parameter used");
    let mut worst_grad = 0f32;
    let leaves = inputs
        .iter()
        .copied()
        .chain(params.iter().map(|n| (n.as_str(), &data[n])));
    for (name, var) in leaves {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{tag}: no gradient for {name}"));
        let diff = max_abs_diff(g, get(fx, &format!("grad.{name}")));
        assert!(diff <= GRAD_TOL, "{tag}: grad {name} differs by {diff}");
        worst_grad = worst_grad.max(diff);
    }
    eprintln!("{tag}: forward max |Δ| {worst_forward:.2e}, gradients {worst_grad:.2e}");
    (worst_forward, worst_grad)
}
