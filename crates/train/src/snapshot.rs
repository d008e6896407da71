//! In-memory copies of a model's weights (best-so-far or last-good), and restoring them.

use candle_core::Tensor;
use candle_nn::VarMap;

use crate::error::Result;

/// Every variable's value at one point of a run, by name.
pub(crate) type Snapshot = Vec<(String, Tensor)>;

/// A copy of every variable's current value.
pub(crate) fn snapshot(varmap: &VarMap) -> Result<Snapshot> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    data.iter()
        .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
        .collect()
}

/// Every variable's current tensor, by name, without copying (for serialising at once).
pub(crate) fn current_tensors(varmap: &VarMap) -> Vec<(String, Tensor)> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    data.iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect()
}

/// Sets every variable back to a snapshot.
pub(crate) fn restore(varmap: &VarMap, weights: &[(String, Tensor)]) -> Result<()> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    for (name, value) in weights {
        if let Some(var) = data.get(name) {
            var.set(value)?;
        }
    }
    Ok(())
}

/// Whether every weight is a finite number.
pub(crate) fn all_finite(varmap: &VarMap) -> Result<bool> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    for var in data.values() {
        let sum = var.as_tensor().abs()?.sum_all()?.to_scalar::<f32>()?;
        if !sum.is_finite() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A progress bar over `total` steps named `unit` ("iterations", "epochs"), or a hidden
/// one when `show` is false.
pub(crate) fn progress_bar(show: bool, total: usize, unit: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressStyle};
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    let template = format!(
        "{{bar:30}} {{pos}}/{{len}} {unit} · {{msg}} · {{elapsed_precise}} elapsed, {{eta}} left"
    );
    let style =
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
