//! SVG figures, drawn with [plotters]: the book's "Time-Series Prediction" figure
//! ([`PredictionFigure`]), and figures of x/y curves ([`Figure`]) such as the training
//! loss per epoch ([`epoch_loss_figure`]) or per iteration ([`training_loss_figure`]).
//!
//! A figure is plain data; its `svg` method renders it to a string (SVG needs no system
//! fonts: the text is left to whatever displays the file), and [`write_predictions`] and
//! [`write_curves`] write it into a run directory, atomically
//! ([`RunDir::write_atomic`]).
//!
//! Every figure shares one look (`style`): matplotlib's colours, the same caption,
//! margins, mesh and legend box.
//!
//! **Dashed lines.** plotters draws no dashed strokes in SVG (its `DashedLineSeries` is a
//! run of short segments), so a dashed line is drawn as one ordinary `<polyline>` in a
//! stand-in colour (its own colour with the lowest bit of blue flipped, which nothing
//! else uses) and the SVG text is then rewritten: each `stroke="<stand-in>"` becomes
//! `stroke="<colour>" stroke-dasharray="9,6"`, dashed by the viewer. The legend sample,
//! drawn with the same stroke, is dashed with it. Dashed curves and the prediction
//! figure's red train/test boundary both go through this one mechanism, and a colour can
//! be dashed in one curve and solid in another.

use std::path::PathBuf;

mod curves;
mod loss;
mod prediction;
mod style;

pub use curves::{Curve, Figure, Line};
pub use loss::{epoch_loss_figure, loss_window, training_loss_figure};
pub use prediction::{PredictionFigure, PREDICTION_TITLE};

use crate::error::{Result, TrainError};
use crate::run_dir::RunDir;

fn plot_error(what: &str, message: impl std::fmt::Display) -> TrainError {
    TrainError::Plot {
        what: what.to_string(),
        message: message.to_string(),
    }
}

/// Draws `figure` ([`Figure::svg`]) and writes it to `name` in `dir`, atomically; returns
/// its path.
pub fn write_curves(dir: &RunDir, name: &str, figure: &Figure) -> Result<PathBuf> {
    dir.write_atomic(name, figure.svg()?.as_bytes())
}

/// Draws `figure` ([`PredictionFigure::svg`]) and writes it to `name` in `dir`,
/// atomically; returns its path.
pub fn write_predictions(dir: &RunDir, name: &str, figure: &PredictionFigure) -> Result<PathBuf> {
    dir.write_atomic(name, figure.svg()?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_into_the_run_directory() -> Result<()> {
        let path = std::env::temp_dir().join(format!("lstm-plot-{}", std::process::id()));
        let dir = RunDir::create(&path)?;
        let figure = PredictionFigure {
            dates: vec!["2020-01-01".into(), "2020-01-02".into()],
            actual: vec![1.0, 2.0],
            predictions: vec![("lstm".into(), vec![1.5, 2.5])],
            boundary: 1,
            y_label: "y".into(),
        };
        let written = write_predictions(&dir, "prediction.svg", &figure)?;
        assert_eq!(written, dir.file("prediction.svg"));
        let svg = std::fs::read_to_string(&written).unwrap();
        assert!(svg.contains(PREDICTION_TITLE) && svg.contains("lstm"));
        let loss = write_curves(&dir, "loss.svg", &training_loss_figure(&[0.9, 0.5, 0.3]))?;
        assert!(std::fs::read_to_string(loss).unwrap().contains("Iteration"));
        let bad = Figure::new("t", "x", "y");
        assert!(write_curves(&dir, "bad.svg", &bad).is_err());
        assert!(!dir.file("bad.svg").exists());
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".lock", "loss.svg", "prediction.svg"],
            "no temporary files left"
        );
        drop(dir);
        std::fs::remove_dir_all(&path).unwrap();
        Ok(())
    }
}
