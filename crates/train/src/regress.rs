//! Training the chapter's stock-price regressor, as the book does: full-batch Adam on the
//! mean squared error of the scaled target, a line every 100 epochs, then predictions for
//! every row turned back into shares.
//!
//! ```text
//! for epoch in range(1000):
//!     outputs = model(X_train); loss = criterion(outputs, y_train)   # MSELoss
//!     loss.backward(); optimizer.step()                                # Adam(lr=1e-4)
//!     if epoch % 100 == 0: print("Epoch: %d, loss: %1.5f" % (epoch, loss.item()))
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{loss, VarMap};
use lstm_core::{seeded_var_builder, RecurrentKind, RegressorConfig, SequenceRegressor};
use lstm_datasets::StockDataset;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{read_checkpoint, save_checkpoint, Checkpoint, CHECKPOINT_FILE};
use crate::choice::{de_choice, ser_choice};
use crate::error::{divergence, is_divergent, IoContext, Result, TrainError};
use crate::limits::{
    check_parameters, check_range, recurrent_parameters, MAX_EPOCHS, MAX_HIDDEN, MAX_LAYERS,
};

/// Width of the regressor's `fc_1` layer.
const HEAD_WIDTH: u64 = 128;
use crate::optim::{Optimizer, OptimizerKind};
use crate::plot;
use crate::run_dir::RunDir;
use crate::snapshot::{all_finite, progress_bar, restore, snapshot};

/// Everything that defines a stock-price training run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegressorTrainConfig {
    /// LSTM, GRU or bidirectional LSTM.
    #[serde(serialize_with = "ser_choice", deserialize_with = "de_choice")]
    pub kind: RecurrentKind,
    /// Hidden size of the recurrent layer (2 in the book).
    pub hidden: usize,
    /// Stacked recurrent layers (1 in the book).
    pub layers: usize,
    /// Adam learning rate (1e-4 in the book).
    pub lr: f64,
    /// Full-batch epochs (1000 in the book).
    pub epochs: usize,
    /// Print (and report) the loss every this many epochs, from epoch 0 (100 in the book).
    pub log_every: usize,
    /// Seed of the weights.
    pub seed: u64,
    /// Name of the target column, for the plots and the printed units (`Volume` →
    /// shares).
    pub target: String,
    /// Write a checkpoint every this many epochs (and at the end); 0 = only at the end.
    /// Needs a run directory.
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Stop (with a checkpoint) once this many epochs are done, to resume later.
    #[serde(default, skip_serializing)]
    pub stop_after: Option<usize>,
    /// Show a progress bar.
    #[serde(default, skip_serializing)]
    pub progress: bool,
}

impl Default for RegressorTrainConfig {
    /// The book's run: an LSTM of hidden size 2, Adam at 1e-4, 1000 epochs, a line every
    /// 100.
    fn default() -> Self {
        Self {
            kind: RecurrentKind::Lstm,
            hidden: 2,
            layers: 1,
            lr: 1e-4,
            epochs: 1000,
            log_every: 100,
            seed: 42,
            target: "Volume".into(),
            checkpoint_every: 100,
            stop_after: None,
            progress: true,
        }
    }
}

impl RegressorTrainConfig {
    /// Rejects settings that cannot train, before any work is done.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "learning rate must be a positive number, got {}",
                self.lr
            ));
        }
        check_range("epochs (--epochs)", self.epochs, MAX_EPOCHS)?;
        check_range("hidden size (--hidden)", self.hidden, MAX_HIDDEN)?;
        check_range("layers (--layers)", self.layers, MAX_LAYERS)?;
        if self.log_every == 0 {
            return bad("log interval must be at least 1".into());
        }
        if self.stop_after == Some(0) {
            return bad("--stop-after must be at least 1".into());
        }
        Ok(())
    }

    /// Rejects a model over [`crate::limits::MAX_PARAMETERS`] for `input_size`
    /// features, before it is built.
    pub fn check_model_size(&self, input_size: usize) -> Result<()> {
        let (gates, directions) = match self.kind {
            RecurrentKind::Lstm => (4, 1),
            RecurrentKind::Gru => (3, 1),
            RecurrentKind::BiLstm => (4, 2),
        };
        let hidden = self.hidden as u64;
        let head = hidden
            .checked_mul(directions)
            .and_then(|h| h.checked_mul(HEAD_WIDTH))
            .and_then(|n| n.checked_add(2 * HEAD_WIDTH + 1));
        let recurrent = recurrent_parameters(
            gates,
            input_size as u64,
            hidden,
            self.layers as u64,
            directions,
        );
        check_parameters(
            recurrent.zip(head).and_then(|(r, h)| r.checked_add(h)),
            &format!(
                "{} features, hidden {}, {} layers",
                input_size, self.hidden, self.layers
            ),
        )
    }

    /// The unit of the target in raw values: `shares` for `Volume`.
    pub fn unit(&self) -> &'static str {
        if self.target == "Volume" {
            "shares"
        } else {
            "raw units"
        }
    }
}

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

/// A regressor together with the variables it trains.
pub struct TrainedRegressor {
    /// The model.
    pub model: SequenceRegressor,
    /// Its parameters, by name.
    pub varmap: VarMap,
}

/// Builds the regressor of `cfg` for `input_size` features, with seeded weights.
pub fn build_regressor(cfg: &RegressorTrainConfig, input_size: usize) -> Result<TrainedRegressor> {
    check_range("hidden size (--hidden)", cfg.hidden, MAX_HIDDEN)?;
    check_range("layers (--layers)", cfg.layers, MAX_LAYERS)?;
    cfg.check_model_size(input_size)?;
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, cfg.seed, DType::F32, &Device::Cpu);
    let model = SequenceRegressor::new(
        RegressorConfig {
            input_size,
            hidden_size: cfg.hidden,
            num_layers: cfg.layers,
            kind: cfg.kind,
        },
        vb,
    )?;
    Ok(TrainedRegressor { model, varmap })
}

/// What `config.json` holds: the training settings and the shape of the data.
#[derive(Serialize)]
struct RunConfig<'a> {
    train: &'a RegressorTrainConfig,
    data: DataShape,
}

#[derive(Serialize)]
struct DataShape {
    rows: usize,
    train_rows: usize,
    window: usize,
    features: usize,
    train_samples: usize,
    test_samples: usize,
    first_date: Option<String>,
    last_date: Option<String>,
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

fn stdout_path() -> &'static Path {
    Path::new("<stdout>")
}

/// The progress of a stock run, as saved in its checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegressorProgress {
    /// The run's settings.
    pub config: RegressorTrainConfig,
    /// What the caller stored about the data (e.g. the command line's data options).
    pub context: serde_json::Value,
    /// Epochs done.
    pub epoch: usize,
    /// The loss of every epoch done.
    pub all_losses: Vec<f64>,
    /// The printed losses so far.
    pub logged: Vec<LossPoint>,
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerKind,
    /// Optimizer steps taken.
    pub optimizer_steps: u64,
    /// Seconds spent training so far.
    pub seconds: f64,
}

/// A stock checkpoint read back from disk.
pub type RegressorCheckpoint = Checkpoint<RegressorProgress>;

/// Task name stored in stock checkpoints.
pub const STOCK_TASK: &str = "stock";

/// Reads the checkpoint of a stock run (`path` is the run directory or the file).
pub fn read_regressor_checkpoint(path: &Path) -> Result<RegressorCheckpoint> {
    let checkpoint: RegressorCheckpoint = read_checkpoint(path, STOCK_TASK)?;
    checkpoint.check_progress()?;
    Ok(checkpoint)
}

/// Trains the regressor of `cfg` on `data`'s training samples, printing the book's
/// `Epoch: N, loss: L` lines to `out`, then predicts every sample and reports the errors.
///
/// With a `run_dir` it writes `config.json`, `losses.csv` (every epoch),
/// `predictions.csv` (`date,actual,predicted,split` in raw units), `model.safetensors`,
/// `summary.json`, `prediction.svg` (the book's figure), `loss.svg` and
/// `checkpoint.safetensors` (every `checkpoint_every` epochs and at the end).
///
/// Errors: [`TrainError::Config`] for settings [`RegressorTrainConfig::validate`] rejects;
/// [`TrainError::Diverged`] when the loss becomes NaN or infinite (the weights of the
/// last finite loss are restored and, with a run directory, saved; the last checkpoint
/// stays).
pub fn train_regressor(
    data: &StockDataset,
    cfg: &RegressorTrainConfig,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<RegressionReport> {
    train_regressor_with_context(data, cfg, serde_json::Value::Null, run_dir, out)
}

/// [`train_regressor`] storing `context` in the checkpoints.
pub fn train_regressor_with_context(
    data: &StockDataset,
    cfg: &RegressorTrainConfig,
    context: serde_json::Value,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<RegressionReport> {
    cfg.validate()?;
    let (_, _, n_features) = data.train_x.dims3()?;
    let trained = build_regressor(cfg, n_features)?;
    if let Some(dir) = run_dir {
        write_config(dir, cfg, data)?;
    }
    let optimizer = Optimizer::new(OptimizerKind::adam(), &trained.varmap, cfg.lr);
    let session = RegressorSession {
        epoch: 0,
        all_losses: Vec::with_capacity(cfg.epochs),
        logged: Vec::new(),
        optimizer,
        seconds: 0.0,
        context,
    };
    run_regressor(data, cfg, trained, session, run_dir, out)
}

/// Continues the stock run saved in `checkpoint` to its end (or to `stop_after`), with
/// the same weights, Adam moments and losses as if it had never stopped.
pub fn resume_regressor(
    data: &StockDataset,
    checkpoint: &RegressorCheckpoint,
    stop_after: Option<usize>,
    progress: bool,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<RegressionReport> {
    let saved = &checkpoint.progress;
    let cfg = RegressorTrainConfig {
        stop_after,
        progress,
        ..saved.config.clone()
    };
    cfg.validate()?;
    checkpoint.check_progress()?;
    let (_, _, n_features) = data.train_x.dims3()?;
    let trained = build_regressor(&cfg, n_features)?;
    checkpoint.restore_weights(&trained.varmap)?;
    let mut optimizer = Optimizer::new(saved.optimizer, &trained.varmap, cfg.lr);
    optimizer.load_state(
        saved.optimizer_steps,
        &checkpoint.optimizer,
        &checkpoint.path,
    )?;
    writeln!(
        out,
        "Resuming {} at epoch {} of {}",
        checkpoint.path.display(),
        saved.epoch,
        cfg.epochs
    )
    .at(stdout_path())?;
    let session = RegressorSession {
        epoch: saved.epoch,
        all_losses: saved.all_losses.clone(),
        logged: saved.logged.clone(),
        optimizer,
        seconds: saved.seconds,
        context: saved.context.clone(),
    };
    run_regressor(data, &cfg, trained, session, run_dir, out)
}

/// Writes `config.json`: the settings and the shape of the data.
fn write_config(dir: &RunDir, cfg: &RegressorTrainConfig, data: &StockDataset) -> Result<()> {
    let (_, _, features) = data.train_x.dims3()?;
    let shape = DataShape {
        rows: data.dates.len(),
        train_rows: data.train_rows,
        window: data.window,
        features,
        train_samples: data.train_len(),
        test_samples: data.test_len(),
        first_date: data.dates.first().cloned(),
        last_date: data.dates.last().cloned(),
    };
    dir.write_json(
        "config.json",
        &RunConfig {
            train: cfg,
            data: shape,
        },
    )?;
    Ok(())
}

/// Where a stock run stands, besides its weights.
struct RegressorSession {
    epoch: usize,
    all_losses: Vec<f64>,
    logged: Vec<LossPoint>,
    optimizer: Optimizer,
    seconds: f64,
    context: serde_json::Value,
}

/// The training loop shared by fresh and resumed stock runs, then the predictions.
fn run_regressor(
    data: &StockDataset,
    cfg: &RegressorTrainConfig,
    trained: TrainedRegressor,
    mut s: RegressorSession,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<RegressionReport> {
    let stop_at = cfg.stop_after.map_or(cfg.epochs, |k| k.min(cfg.epochs));
    let bar = progress_bar(cfg.progress, cfg.epochs, "epochs");
    bar.set_position(s.epoch as u64);
    let mut last_good: Option<Vec<(String, Tensor)>> = None;
    let mut last_checkpoint: Option<(usize, PathBuf)> = run_dir
        .map(|d| d.file(CHECKPOINT_FILE))
        .filter(|p| p.is_file())
        .map(|p| (s.epoch, p));
    let started = Instant::now();
    while s.epoch < stop_at {
        let epoch = s.epoch;
        let outputs = trained.model.forward(&data.train_x, true)?;
        let loss = loss::mse(&outputs, &data.train_y)?;
        let value = loss.to_scalar::<f32>()?;
        let first = s.all_losses.first().copied().unwrap_or(f64::from(value));
        if is_divergent(value, first) {
            bar.finish_and_clear();
            let kept = keep_last_good(
                &trained.varmap,
                last_good.as_deref(),
                run_dir,
                &last_checkpoint,
            )?;
            return Err(divergence(epoch, value, Some(first), kept));
        }
        last_good = Some(snapshot(&trained.varmap)?);
        s.optimizer.backward_step(&loss)?;
        s.all_losses.push(f64::from(value));
        s.epoch = epoch + 1;
        if epoch.is_multiple_of(cfg.log_every) {
            let line = format!("Epoch: {epoch}, loss: {value:.5}");
            bar.suspend(|| writeln!(out, "{line}")).at(stdout_path())?;
            s.logged.push(LossPoint {
                epoch,
                loss: f64::from(value),
            });
        }
        bar.inc(1);
        if epoch.is_multiple_of(50) {
            bar.set_message(format!("loss {value:.5}"));
        }
        let due = (cfg.checkpoint_every > 0 && s.epoch.is_multiple_of(cfg.checkpoint_every))
            || s.epoch == stop_at;
        if let (true, Some(dir)) = (due, run_dir) {
            if !all_finite(&trained.varmap)? {
                bar.finish_and_clear();
                let kept = keep_last_good(
                    &trained.varmap,
                    last_good.as_deref(),
                    run_dir,
                    &last_checkpoint,
                )?;
                return Err(divergence(s.epoch, f32::NAN, None, kept));
            }
            let progress = RegressorProgress {
                config: cfg.clone(),
                context: s.context.clone(),
                epoch: s.epoch,
                all_losses: s.all_losses.clone(),
                logged: s.logged.clone(),
                optimizer: s.optimizer.kind(),
                optimizer_steps: s.optimizer.steps(),
                seconds: s.seconds + started.elapsed().as_secs_f64(),
            };
            let path = save_checkpoint(
                dir,
                STOCK_TASK,
                &progress,
                &trained.varmap,
                None,
                &s.optimizer,
            )?;
            last_checkpoint = Some((s.epoch, path));
        }
    }
    bar.finish_and_clear();
    let train_seconds = s.seconds + started.elapsed().as_secs_f64();
    if s.epoch < cfg.epochs {
        let resume = match &last_checkpoint {
            Some((_, path)) => format!(
                "; resume with `lstm stock --resume {}`",
                path.parent().unwrap_or(path).display()
            ),
            None => String::new(),
        };
        writeln!(
            out,
            "Stopped after epoch {} of {}{resume}",
            s.epoch, cfg.epochs
        )
        .at(stdout_path())?;
    }
    let logged = s.logged;
    let all_losses = s.all_losses;

    // Predictions for every sample, in date order, scaled and in raw units.
    let predict = |x: &Tensor| -> Result<Vec<f64>> {
        let y = trained.model.forward(x, false)?;
        Ok(y.flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect())
    };
    let scaled_of = |y: &Tensor| -> Result<Vec<f64>> {
        Ok(y.flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect())
    };
    let train_pred = predict(&data.train_x)?;
    let test_pred = predict(&data.test_x)?;
    let train_true = scaled_of(&data.train_y)?;
    let test_true = scaled_of(&data.test_y)?;
    let mse = |p: &[f64], t: &[f64]| -> f64 {
        p.iter().zip(t).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / p.len().max(1) as f64
    };
    let train_mse = mse(&train_pred, &train_true);
    let test_mse = mse(&test_pred, &test_true);

    let scaled: Vec<f64> = train_pred.iter().chain(&test_pred).copied().collect();
    let predicted_raw = data.target_scaler.inverse_transform_column(&scaled)?;
    let first_row = data.window - 1;
    let predictions: Vec<PredictionRow> = predicted_raw
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
    let test_rows = &predictions[train_pred.len()..];
    let test_days = test_rows.len();
    let n_test = test_days.max(1) as f64;
    let test_mae = test_rows
        .iter()
        .map(|p| (p.predicted - p.actual).abs())
        .sum::<f64>()
        / n_test;
    let test_rmse = (test_rows
        .iter()
        .map(|p| (p.predicted - p.actual).powi(2))
        .sum::<f64>()
        / n_test)
        .sqrt();

    let last = *logged.last().expect("epoch 0 is always logged");
    let report = RegressionReport {
        model: cfg.kind.name().into(),
        epochs: all_losses.len(),
        losses: logged,
        last_logged_epoch: last.epoch,
        loss_at_900: last.loss,
        final_loss: *all_losses.last().expect("at least one epoch"),
        train_mse,
        test_mse,
        test_mae,
        test_rmse,
        unit: cfg.unit().into(),
        train_seconds,
        all_losses,
        predictions,
        run_dir: run_dir.map(|d| d.path().to_path_buf()),
    };
    let unit = cfg.unit();
    writeln!(
        out,
        "Train MSE (scaled): {:.5} | Test MSE (scaled): {:.5}\n\
         Test MAE: {} {unit} | Test RMSE: {} {unit} ({} test days)",
        report.train_mse,
        report.test_mse,
        thousands(report.test_mae),
        thousands(report.test_rmse),
        test_days,
    )
    .at(stdout_path())?;
    if let Some(dir) = run_dir {
        write_outputs(dir, cfg, &report, &trained.varmap)?;
    }
    Ok(report)
}

/// After a divergence: restores the weights of the last finite loss (saving them as
/// `model.safetensors` with a run directory) and says where they and the last checkpoint
/// are.
fn keep_last_good(
    varmap: &VarMap,
    last_good: Option<&[(String, Tensor)]>,
    run_dir: Option<&RunDir>,
    last_checkpoint: &Option<(usize, PathBuf)>,
) -> Result<String> {
    let mut kept = match (last_good, run_dir) {
        (Some(weights), Some(dir)) => {
            restore(varmap, weights)?;
            dir.save_weights("model.safetensors", varmap)?
                .display()
                .to_string()
        }
        (Some(weights), None) => {
            restore(varmap, weights)?;
            "memory".into()
        }
        (None, _) => "nowhere (the initial weights already give it)".into(),
    };
    if let Some((at, path)) = last_checkpoint {
        kept.push_str(&format!(
            "; the last checkpoint is {} (epoch {at})",
            path.display()
        ));
    }
    Ok(kept)
}

/// Writes the run's files (see [`train_regressor`]).
fn write_outputs(
    dir: &RunDir,
    cfg: &RegressorTrainConfig,
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
    let y_label = format!("{} ({})", cfg.target, cfg.unit());
    let figure = plot::PredictionFigure {
        dates: report.dates(),
        actual: report.actual(),
        predictions: vec![("Predicted Data".into(), report.predicted())],
        boundary: report.boundary(),
        y_label,
    };
    plot::write_predictions(dir, "prediction.svg", &figure)?;
    let loss = plot::epoch_loss_figure(&report.all_losses);
    plot::write_curves(dir, "loss.svg", &loss)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lstm_datasets::{prepare_stock, StockFrame, StockOptions};
    use std::sync::OnceLock;

    const SBUX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/SBUX.csv");

    fn sbux() -> &'static StockDataset {
        static DATA: OnceLock<StockDataset> = OnceLock::new();
        DATA.get_or_init(|| {
            let frame = StockFrame::read_csv(Path::new(SBUX)).expect("read data/SBUX.csv");
            prepare_stock(&frame, &StockOptions::default()).expect("prepare")
        })
    }

    fn quiet(kind: RecurrentKind, epochs: usize, lr: f64) -> RegressorTrainConfig {
        RegressorTrainConfig {
            kind,
            epochs,
            lr,
            progress: false,
            ..RegressorTrainConfig::default()
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lstm-regress-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn bad_settings_are_rejected_before_training() {
        let base = RegressorTrainConfig::default();
        assert!(base.validate().is_ok());
        for (cfg, needle) in [
            (
                RegressorTrainConfig {
                    lr: -1.0,
                    ..base.clone()
                },
                "learning rate",
            ),
            (
                RegressorTrainConfig {
                    lr: 0.0,
                    ..base.clone()
                },
                "learning rate",
            ),
            (
                RegressorTrainConfig {
                    lr: f64::INFINITY,
                    ..base.clone()
                },
                "learning rate",
            ),
            (
                RegressorTrainConfig {
                    epochs: 0,
                    ..base.clone()
                },
                "epochs",
            ),
            (
                RegressorTrainConfig {
                    hidden: 0,
                    ..base.clone()
                },
                "hidden",
            ),
            (
                RegressorTrainConfig {
                    layers: 0,
                    ..base.clone()
                },
                "layers",
            ),
            (
                RegressorTrainConfig {
                    log_every: 0,
                    ..base.clone()
                },
                "log interval",
            ),
        ] {
            let err = cfg.validate().unwrap_err();
            assert!(matches!(err, TrainError::Config(_)), "{err:?}");
            assert!(err.to_string().contains(needle), "{err}");
            let mut sink = Vec::new();
            assert!(train_regressor(sbux(), &cfg, None, &mut sink).is_err());
            assert!(sink.is_empty(), "printed before rejecting");
        }
    }

    #[test]
    fn same_seed_same_losses_other_seed_other_losses() -> Result<()> {
        for kind in RecurrentKind::ALL {
            let cfg = RegressorTrainConfig {
                log_every: 10,
                ..quiet(kind, 40, 1e-2)
            };
            let run = |cfg: &RegressorTrainConfig| -> Result<(Vec<f64>, String)> {
                let mut out = Vec::new();
                let r = train_regressor(sbux(), cfg, None, &mut out)?;
                Ok((r.all_losses, String::from_utf8(out).unwrap()))
            };
            let (a, text_a) = run(&cfg)?;
            let (b, text_b) = run(&cfg)?;
            assert_eq!(a.len(), 40);
            assert_eq!(a, b, "{kind}: same seed, different losses");
            assert_eq!(text_a, text_b);
            let (c, _) = run(&RegressorTrainConfig { seed: 7, ..cfg })?;
            assert_ne!(a, c, "{kind}: the seed changes nothing");
        }
        Ok(())
    }

    /// The book's LSTM on the real data, shortened: 300 epochs at lr 1e-2 instead of
    /// 1000 at 1e-4. Measured (seed 42): 0.01049 at epoch 200, down from 0.1567 at epoch
    /// 0; seeds 0 to 3 give 0.0111 to 0.0123. Threshold 0.015, and the trained model must
    /// beat predicting the training mean (MSE = the variance of the scaled target).
    #[test]
    fn a_short_real_run_learns_and_writes_its_outputs() -> Result<()> {
        let dir = temp_dir("short");
        let run = RunDir::create(&dir)?;
        let cfg = quiet(RecurrentKind::Lstm, 300, 1e-2);
        let mut out = Vec::new();
        let r = train_regressor(sbux(), &cfg, Some(&run), &mut out)?;
        let text = String::from_utf8(out).unwrap();
        for epoch in [0, 100, 200] {
            assert!(
                text.contains(&format!("Epoch: {epoch}, loss: 0.")),
                "{text}"
            );
        }
        assert!(!text.contains("Epoch: 300"), "{text}");
        assert!(
            text.contains("Test MAE: ") && text.contains(" shares"),
            "{text}"
        );

        assert_eq!(r.losses.len(), 3);
        assert_eq!(r.last_logged_epoch, 200);
        assert_eq!(r.loss_at_900, r.losses[2].loss);
        assert!(
            r.loss_at_900 < 0.015,
            "loss at epoch 200: {}",
            r.loss_at_900
        );
        let y: Vec<f32> = sbux().train_y.flatten_all()?.to_vec1()?;
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len() as f64;
        let variance = y
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / y.len() as f64;
        assert!(
            r.train_mse < 0.6 * variance,
            "{} vs variance {variance}",
            r.train_mse
        );
        assert!(r.loss_at_900 < r.losses[0].loss);
        for v in [
            r.train_mse,
            r.test_mse,
            r.test_mae,
            r.test_rmse,
            r.final_loss,
        ] {
            assert!(v.is_finite() && v > 0.0, "{r:?}");
        }
        assert!(r.test_rmse >= r.test_mae);
        // Shares: SBUX trades millions a day.
        assert!(r.test_mae > 1e5 && r.test_mae < 2e7, "{}", r.test_mae);
        assert_eq!(r.all_losses.len(), 300);

        let csv = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "date,actual,predicted,split");
        assert_eq!(lines.len(), 254);
        assert_eq!(lines.iter().filter(|l| l.ends_with(",train")).count(), 200);
        assert_eq!(lines.iter().filter(|l| l.ends_with(",test")).count(), 53);
        assert!(lines[1].starts_with("2019-12-11,4921900,"), "{}", lines[1]);
        assert!(
            lines[253].starts_with("2020-12-10,12939200,"),
            "{}",
            lines[253]
        );
        let predicted: f64 = lines[253].split(',').nth(2).unwrap().parse().unwrap();
        assert!(predicted.is_finite() && predicted > 0.0);

        let losses = std::fs::read_to_string(dir.join("losses.csv")).unwrap();
        assert_eq!(losses.lines().count(), 301);
        let svg = std::fs::read_to_string(dir.join("prediction.svg")).unwrap();
        assert!(svg.contains(plot::PREDICTION_TITLE));
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("2020-") && svg.contains("Volume (shares)"));
        assert!(std::fs::read_to_string(dir.join("loss.svg"))
            .unwrap()
            .contains("Epoch"));
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["last_logged_epoch"], 200);
        assert_eq!(summary["model"], "lstm");
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["train"]["epochs"], 300);
        assert_eq!(config["data"]["test_samples"], 53);
        let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?;
        assert_eq!(weights["lstm.weight_ih_l0"].dims(), &[8, 5]);
        assert_eq!(weights["fc_1.weight"].dims(), &[128, 2]);
        assert_eq!(weights["fc.weight"].dims(), &[1, 128]);
        std::fs::remove_dir_all(&dir).unwrap();
        Ok(())
    }

    #[test]
    fn a_huge_learning_rate_diverges_with_a_clear_error() {
        let cfg = quiet(RecurrentKind::Gru, 200, 1e12);
        let mut out = Vec::new();
        let err = train_regressor(sbux(), &cfg, None, &mut out).unwrap_err();
        assert!(matches!(err, TrainError::Diverged { .. }), "{err:?}");
        assert!(err.to_string().contains("smaller learning rate"), "{err}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(12_345_678.9), "12,345,679");
        assert_eq!(thousands(-1_234.0), "-1,234");
    }
}
