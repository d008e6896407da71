//! What an MNIST run reports and writes: the report, `metrics.csv`, the validation
//! curves and the training loss per iteration.

use std::path::PathBuf;

use serde::Serialize;

use super::{EvalPoint, Evaluation};
use crate::error::Result;
use crate::plot::{self, Curve, Figure};
use crate::run_dir::RunDir;
use crate::session::End;

/// What a finished MNIST run reports.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    /// Iterations done (fewer than `total_iterations` when stopped by `stop_after`).
    pub iterations: usize,
    /// Iterations the run is configured for.
    pub total_iterations: usize,
    /// Validation points, every `eval_every` iterations.
    pub history: Vec<EvalPoint>,
    /// The iteration whose weights were kept (see [`super::Selection`]).
    pub selected_iteration: usize,
    /// The kept model on the test set (`None` when the run stopped early to resume later).
    pub test: Option<Evaluation>,
    /// Wall time of the training loop, in seconds (summed over resumed sessions).
    pub train_seconds: f64,
    /// Training throughput.
    pub samples_per_second: f64,
    /// Where the outputs went.
    pub run_dir: Option<PathBuf>,
    /// The last checkpoint written (to resume a stopped run from).
    pub checkpoint: Option<PathBuf>,
}

/// `metrics.csv` from the validation points.
pub(super) fn metrics_csv(history: &[EvalPoint]) -> String {
    let mut text = String::from("iteration,train_loss,val_loss,val_accuracy\n");
    for p in history {
        text.push_str(&format!(
            "{},{},{},{}\n",
            p.iteration, p.train_loss, p.validation.loss, p.validation.accuracy
        ));
    }
    text
}

/// `loss.svg` (validation loss, log scale) and `accuracy.svg` (validation accuracy, %)
/// over the iterations of a run.
pub(super) fn write_curves(dir: &RunDir, history: &[EvalPoint]) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    let at = |f: &dyn Fn(&EvalPoint) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|p| (p.iteration as f64, f(p))).collect()
    };
    let loss = Figure::new("Validation loss (cross-entropy)", "Iteration", "Loss")
        .with_log_y()
        .with_curve(Curve::new("", at(&|p| p.validation.loss), 0));
    plot::write_curves(dir, "loss.svg", &loss)?;
    let accuracy = Figure::new("Validation accuracy", "Iteration", "Accuracy (%)")
        .with_curve(Curve::new("", at(&|p| 100.0 * p.validation.accuracy), 0));
    plot::write_curves(dir, "accuracy.svg", &accuracy)?;
    Ok(())
}

/// `train_loss.svg`: the training loss of every iteration, and its moving average.
pub(super) fn write_training_loss(dir: &RunDir, end: &End) -> Result<()> {
    if end.losses.is_empty() {
        return Ok(());
    }
    let mut figure = plot::training_loss_figure(&end.losses);
    let offset = (end.first_loss_step() - 1) as f64;
    for curve in &mut figure.curves {
        for point in &mut curve.points {
            point.0 += offset;
        }
    }
    plot::write_curves(dir, "train_loss.svg", &figure)?;
    Ok(())
}
