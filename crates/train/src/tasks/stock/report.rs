//! What a stock run reports: the model's predictions in raw units for every sample, the
//! errors, the book's summary lines, and the run's files.

use std::path::PathBuf;

use candle_core::Tensor;
use candle_nn::VarMap;
use lstm_core::SequenceRegressor;
use lstm_datasets::StockDataset;
use serde::{Deserialize, Serialize};

use super::{StockConfig, TrainInputs};
use crate::error::Result;
use crate::plot;
use crate::run_dir::RunDir;
use crate::session::End;

/// The loss of one logged epoch.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct LossPoint {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean squared error on the training rows before that epoch's step (what the book
    /// prints).
    pub loss: f64,
}

/// Which period a sample belongs to.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Rows the model trained on.
    Train,
    /// Rows after the training period.
    Test,
}

impl Split {
    /// `train` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// The prediction for one sample, in raw units (shares for `Volume`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PredictionRow {
    /// The date whose target is predicted.
    pub date: String,
    /// The actual value.
    pub actual: f64,
    /// The model's prediction, inverse-transformed with the target scaler.
    pub predicted: f64,
    /// Training or test period.
    pub split: Split,
}

/// What a finished stock-price run reports.
#[derive(Clone, Debug, Serialize)]
pub struct RegressionReport {
    /// `lstm`, `gru` or `bilstm`.
    pub model: String,
    /// Epochs trained (fewer than configured when stopped by `stop_after`; the errors
    /// and predictions are then those of the weights so far).
    pub epochs: usize,
    /// The printed losses, every `log_every` epochs from epoch 0.
    pub losses: Vec<LossPoint>,
    /// The last printed epoch (900 for the book's 1000 epochs).
    pub last_logged_epoch: usize,
    /// The loss printed at the last logged epoch: the book's "loss at epoch 900".
    pub loss_at_900: f64,
    /// The loss of the last epoch, before its step.
    pub final_loss: f64,
    /// Mean squared error of the trained model on the training samples (scaled target).
    pub train_mse: f64,
    /// Mean squared error on the test samples (scaled target).
    pub test_mse: f64,
    /// Mean absolute error on the test samples, in raw units (shares).
    pub test_mae: f64,
    /// Root mean squared error on the test samples, in raw units (shares).
    pub test_rmse: f64,
    /// Unit of `test_mae` and `test_rmse`.
    pub unit: String,
    /// Wall time of the training loop, in seconds.
    pub train_seconds: f64,
    /// The loss of every epoch (in `losses.csv`).
    #[serde(skip)]
    pub all_losses: Vec<f64>,
    /// The prediction of every sample, in date order (in `predictions.csv`).
    #[serde(skip)]
    pub predictions: Vec<PredictionRow>,
    /// Where the outputs went.
    pub run_dir: Option<PathBuf>,
    /// The epochs of the whole run, when it stopped before them (`stop_after`).
    pub stopped_at: Option<usize>,
    /// The last checkpoint written (to resume a stopped run from).
    pub checkpoint: Option<PathBuf>,
}

impl RegressionReport {
    /// The predictions in raw units, in date order.
    pub fn predicted(&self) -> Vec<f64> {
        self.predictions.iter().map(|p| p.predicted).collect()
    }

    /// The actual values in raw units, in date order.
    pub fn actual(&self) -> Vec<f64> {
        self.predictions.iter().map(|p| p.actual).collect()
    }

    /// The dates of the predictions.
    pub fn dates(&self) -> Vec<String> {
        self.predictions.iter().map(|p| p.date.clone()).collect()
    }

    /// Index of the first test sample (where the plots draw the boundary).
    pub fn boundary(&self) -> usize {
        self.predictions
            .iter()
            .position(|p| p.split == Split::Test)
            .unwrap_or(self.predictions.len())
    }
}

/// `values` as one `f64` per element.
fn flat(values: &Tensor) -> Result<Vec<f64>> {
    Ok(values
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f64::from)
        .collect())
}

/// Mean squared error of `predicted` against `actual`.
fn mse(predicted: &[f64], actual: &[f64]) -> f64 {
    let sum: f64 = predicted
        .iter()
        .zip(actual)
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    sum / predicted.len().max(1) as f64
}

/// The scaled errors and the predictions of `model` for every sample of `data` (its
/// training samples read as `train`), in date order and raw units: `(train MSE, test
/// MSE, rows)`.
fn predictions(
    model: &SequenceRegressor,
    (data, train): (&StockDataset, &TrainInputs),
) -> Result<(f64, f64, Vec<PredictionRow>)> {
    let train_pred = flat(&train.predict(model, false)?)?;
    let test_pred = flat(&model.forward(&data.test_x, false)?)?;
    let train_mse = mse(&train_pred, &flat(&data.train_y)?);
    let test_mse = mse(&test_pred, &flat(&data.test_y)?);
    let scaled: Vec<f64> = train_pred.iter().chain(&test_pred).copied().collect();
    let predicted_raw = data.target_scaler.inverse_transform_column(&scaled)?;
    let first_row = data.first_row();
    let rows = predicted_raw
        .iter()
        .enumerate()
        .map(|(i, &predicted)| PredictionRow {
            date: data.sample_dates[i].clone(),
            actual: data.target_raw[first_row + i],
            predicted,
            split: if i < train_pred.len() {
                Split::Train
            } else {
                Split::Test
            },
        })
        .collect();
    Ok((train_mse, test_mse, rows))
}

/// Mean absolute and root mean squared error of the test rows, in raw units.
fn raw_errors(rows: &[PredictionRow]) -> (f64, f64) {
    let test: Vec<f64> = rows
        .iter()
        .filter(|p| p.split == Split::Test)
        .map(|p| p.predicted - p.actual)
        .collect();
    let n = test.len().max(1) as f64;
    let mae = test.iter().map(|d| d.abs()).sum::<f64>() / n;
    let rmse = (test.iter().map(|d| d * d).sum::<f64>() / n).sqrt();
    (mae, rmse)
}

/// The predictions of `model` for every sample of `data` (its training samples read as
/// the [`TrainInputs`]), the errors, and the report of a run of `cfg` that ended as
/// `end` with the printed `logged` losses.
pub(super) fn report(
    model: &SequenceRegressor,
    data: (&StockDataset, &TrainInputs),
    cfg: &StockConfig,
    end: &End,
    logged: Vec<LossPoint>,
) -> Result<RegressionReport> {
    let (train_mse, test_mse, predictions) = predictions(model, data)?;
    let (test_mae, test_rmse) = raw_errors(&predictions);
    let last = logged.last().copied().unwrap_or(LossPoint {
        epoch: 0,
        loss: f64::NAN,
    });
    let report = RegressionReport {
        model: cfg.model_name(),
        epochs: end.steps,
        losses: logged,
        last_logged_epoch: last.epoch,
        loss_at_900: last.loss,
        final_loss: end.losses.last().copied().unwrap_or(f64::NAN),
        train_mse,
        test_mse,
        test_mae,
        test_rmse,
        unit: cfg.unit.name().into(),
        train_seconds: end.seconds,
        all_losses: end.losses.clone(),
        predictions,
        run_dir: None,
        stopped_at: (!end.completed()).then_some(end.total),
        checkpoint: end.checkpoint.clone(),
    };
    Ok(report)
}

/// The book's summary lines: the errors, scaled and in raw units.
pub(super) fn summary(report: &RegressionReport) -> String {
    let unit = &report.unit;
    let test_days = report.predictions.len() - report.boundary();
    format!(
        "Train MSE (scaled): {:.5} | Test MSE (scaled): {:.5}\n\
         Test MAE: {} {unit} | Test RMSE: {} {unit} ({} test days)",
        report.train_mse,
        report.test_mse,
        thousands(report.test_mae),
        thousands(report.test_rmse),
        test_days,
    )
}

/// `12345678.9` → `12,345,679`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Writes the run's files (see [`super::StockTask`]).
pub(super) fn write_outputs(
    dir: &RunDir,
    cfg: &StockConfig,
    report: &RegressionReport,
    varmap: &VarMap,
) -> Result<()> {
    let mut losses = String::from("epoch,loss\n");
    for (epoch, loss) in report.all_losses.iter().enumerate() {
        losses.push_str(&format!("{epoch},{loss}\n"));
    }
    dir.write_atomic("losses.csv", losses.as_bytes())?;
    let mut csv = String::from("date,actual,predicted,split\n");
    for p in &report.predictions {
        csv.push_str(&format!(
            "{},{},{},{}\n",
            p.date,
            p.actual,
            p.predicted,
            p.split.as_str()
        ));
    }
    dir.write_atomic("predictions.csv", csv.as_bytes())?;
    dir.save_weights("model.safetensors", varmap)?;
    dir.write_json("summary.json", report)?;
    let figure = plot::PredictionFigure {
        dates: report.dates(),
        actual: report.actual(),
        predictions: vec![("Predicted Data".into(), report.predicted())],
        boundary: report.boundary(),
        y_label: format!("{} ({})", cfg.target, cfg.unit.name()),
    };
    plot::write_predictions(dir, "prediction.svg", &figure)?;
    plot::write_curves(
        dir,
        "loss.svg",
        &plot::epoch_loss_figure(&report.all_losses),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(12_345_678.9), "12,345,679");
        assert_eq!(thousands(-1_234.0), "-1,234");
    }
}
