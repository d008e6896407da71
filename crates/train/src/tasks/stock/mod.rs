//! The chapter's stock-price regressor as a [`Task`], as the book trains it: full-batch
//! Adam on the mean squared error of the scaled target, a line every 100 epochs, then
//! predictions for every row turned back into shares.
//!
//! ```text
//! for epoch in range(1000):
//!     outputs = model(X_train); loss = criterion(outputs, y_train)   # MSELoss
//!     loss.backward(); optimizer.step()                                # Adam(lr=1e-4)
//!     if epoch % 100 == 0: print("Epoch: %d, loss: %1.5f" % (epoch, loss.item()))
//! ```

mod format1;
mod report;
mod saved;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{loss, VarMap};
use lstm_core::{seeded_var_builder, Family, PackedBatch, RegressorConfig, SequenceRegressor};
use lstm_datasets::{ShortHistory, StockDataset};
use serde::{Deserialize, Serialize};

pub use report::{thousands, LossPoint, PredictionRow, RegressionReport, Split};

use crate::choice::ser_choice;
use crate::error::Result;
use crate::limits::{
    check_parameters, check_range, recurrent_parameters, MAX_EPOCHS, MAX_HIDDEN, MAX_LAYERS,
};
use crate::run_dir::RunDir;
use crate::session::progress_non_negative as non_negative;
use crate::session::{End, Io, SessionConfig, Settings, Step, Task, Unit};
use crate::snapshot::Snapshot;

/// Width of the regressor's `fc_1` layer.
const HEAD_WIDTH: u64 = 128;

/// The unit of the target in raw values, for the printed errors and the plot's axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetUnit {
    /// Shares traded (the `Volume` column).
    #[default]
    Shares,
    /// Whatever unit the column has.
    RawUnits,
}

impl TargetUnit {
    /// The unit of the column `target`: shares for `Volume`.
    pub fn of(target: &str) -> Self {
        if target == "Volume" {
            TargetUnit::Shares
        } else {
            TargetUnit::RawUnits
        }
    }

    /// `shares` or `raw units`.
    pub fn name(self) -> &'static str {
        match self {
            TargetUnit::Shares => "shares",
            TargetUnit::RawUnits => "raw units",
        }
    }
}

/// The stock task's settings: the model and what is logged.
///
/// Read back, it also accepts the `kind` of earlier runs (`lstm`, `gru`, `bilstm`) in
/// place of `family` and `bidirectional`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "saved::SavedStockConfig")]
pub struct StockConfig {
    /// The recurrent family: the LSTM (the book), the GRU or a plain RNN.
    #[serde(serialize_with = "ser_choice")]
    pub family: Family,
    /// Both directions (the book's bidirectional LSTM).
    pub bidirectional: bool,
    /// Hidden size of the recurrent layer (2 in the book).
    pub hidden: usize,
    /// Stacked recurrent layers (1 in the book).
    pub layers: usize,
    /// Full-batch epochs (1000 in the book).
    pub epochs: usize,
    /// Print (and report) the loss every this many epochs, from epoch 0 (100 in the book).
    pub log_every: usize,
    /// Name of the target column, for the plots.
    pub target: String,
    /// Unit of the target in raw values.
    #[serde(default)]
    pub unit: TargetUnit,
}

impl Default for StockConfig {
    /// The book's model: an LSTM of hidden size 2, 1000 epochs, a line every 100.
    fn default() -> Self {
        Self {
            family: Family::Lstm,
            bidirectional: false,
            hidden: 2,
            layers: 1,
            epochs: 1000,
            log_every: 100,
            target: "Volume".into(),
            unit: TargetUnit::Shares,
        }
    }
}

impl StockConfig {
    /// The book's LSTM, its GRU and its bidirectional LSTM, in the chapter's order.
    pub fn book_models() -> [StockConfig; 3] {
        let lstm = StockConfig::default();
        [
            lstm.clone(),
            StockConfig {
                family: Family::Gru,
                ..lstm.clone()
            },
            StockConfig {
                bidirectional: true,
                ..lstm
            },
        ]
    }

    /// The model's short name: `lstm`, `gru`, `rnn`, `bilstm`, `bigru`, ….
    pub fn model_name(&self) -> String {
        let family = crate::choice::Choice::word(self.family);
        if self.bidirectional {
            format!("bi{family}")
        } else {
            family
        }
    }

    /// The book's session: Adam at 1e-4, seed 42, a checkpoint every 100 epochs.
    pub fn session() -> SessionConfig {
        SessionConfig {
            checkpoint_every: 100,
            ..SessionConfig::adam(1e-4)
        }
    }

    /// Rejects a model over [`crate::limits::MAX_PARAMETERS`] for `input_size`
    /// features, before it is built.
    pub fn check_model_size(&self, input_size: usize) -> Result<()> {
        let gates = self.family.gates() as u64;
        let directions = if self.bidirectional { 2 } else { 1 };
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
}

impl Settings for StockConfig {
    /// Rejects settings that cannot train, before any work is done; errors name the field.
    fn validate(&self) -> Result<()> {
        check_range("epochs", self.epochs, MAX_EPOCHS)?;
        check_range("hidden", self.hidden, MAX_HIDDEN)?;
        check_range("layers", self.layers, MAX_LAYERS)?;
        check_range("log_every", self.log_every, usize::MAX)
    }
}

/// A regressor together with the variables it trains.
pub struct TrainedRegressor {
    /// The model.
    pub model: SequenceRegressor,
    /// Its parameters, by name.
    pub varmap: VarMap,
}

/// Builds the regressor of `cfg` for `input_size` features, with weights from `seed`.
pub fn build_regressor(
    cfg: &StockConfig,
    input_size: usize,
    seed: u64,
) -> Result<TrainedRegressor> {
    cfg.validate()?;
    cfg.check_model_size(input_size)?;
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let model = SequenceRegressor::new(
        RegressorConfig {
            input_size,
            hidden_size: cfg.hidden,
            num_layers: cfg.layers,
            family: cfg.family,
            bidirectional: cfg.bidirectional,
        },
        vb,
    )?;
    Ok(TrainedRegressor { model, varmap })
}

/// The training samples as the regressor reads them: one tensor when every window is
/// full, or rows of their own lengths ([`StockDataset::train_lengths`], kept short
/// histories) through the packed path, so that no padding is read.
pub(crate) enum TrainInputs {
    /// Every sample has `window` days.
    Full(Tensor),
    /// The first samples are shorter.
    Packed(PackedBatch),
}

impl TrainInputs {
    /// The training samples of `data`.
    pub(crate) fn of(data: &StockDataset) -> Result<Self> {
        Ok(match &data.train_lengths {
            Some(lengths) => TrainInputs::Packed(PackedBatch::new(&data.train_x, lengths)?),
            None => TrainInputs::Full(data.train_x.clone()),
        })
    }

    /// `model`'s predictions `(N_train, 1)`, in date order.
    pub(crate) fn predict(&self, model: &SequenceRegressor, train: bool) -> Result<Tensor> {
        Ok(match self {
            TrainInputs::Full(x) => model.forward(x, train)?,
            TrainInputs::Packed(batch) => model.forward_packed(batch, train)?,
        })
    }
}

/// `keep` or `drop`, as the `--short-history` flag.
pub fn short_history_name(short_history: ShortHistory) -> &'static str {
    match short_history {
        ShortHistory::Keep => "keep",
        ShortHistory::Drop => "drop",
    }
}

/// What a stock run accumulates besides the session's losses: the printed ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StockState {
    /// The printed losses so far.
    pub logged: Vec<LossPoint>,
}

/// The stock regressor's training, for [`crate::train`] and [`crate::resume`].
///
/// With a run directory it writes `config.json`, `losses.csv` (every epoch),
/// `predictions.csv` (`date,actual,predicted,split` in raw units), `model.safetensors`,
/// `summary.json`, `prediction.svg` (the book's figure) and `loss.svg`.
pub struct StockTask<'a> {
    data: &'a StockDataset,
    inputs: TrainInputs,
    config: StockConfig,
    trained: TrainedRegressor,
    state: StockState,
}

impl<'a> StockTask<'a> {
    /// The task of `config` on `data`, its weights drawn from `session`'s seed.
    pub fn new(
        data: &'a StockDataset,
        config: &StockConfig,
        session: &SessionConfig,
    ) -> Result<Self> {
        let (_, _, features) = data.train_x.dims3()?;
        Ok(Self {
            data,
            inputs: TrainInputs::of(data)?,
            config: config.clone(),
            trained: build_regressor(config, features, session.seed)?,
            state: StockState::default(),
        })
    }
}

#[derive(Serialize)]
struct DataShape {
    rows: usize,
    train_rows: usize,
    window: usize,
    short_history: &'static str,
    features: usize,
    train_samples: usize,
    test_samples: usize,
    first_date: Option<String>,
    last_date: Option<String>,
}

impl Task for StockTask<'_> {
    const NAME: &'static str = "stock";
    const UNIT: Unit = Unit::Epochs;
    type Config = StockConfig;
    type State = StockState;
    type Report = RegressionReport;

    fn saved(&self) -> (&StockConfig, StockState) {
        (&self.config, self.state.clone())
    }

    fn varmap(&self) -> &VarMap {
        &self.trained.varmap
    }

    fn total_steps(&self) -> usize {
        self.config.epochs
    }

    fn write_config(&self, session: &SessionConfig, dir: &RunDir) -> Result<()> {
        #[derive(Serialize)]
        struct Train<'a> {
            #[serde(flatten)]
            session: &'a SessionConfig,
            #[serde(flatten)]
            task: &'a StockConfig,
        }
        #[derive(Serialize)]
        struct RunConfig<'a> {
            train: Train<'a>,
            data: DataShape,
        }
        let data = self.data;
        let (_, _, features) = data.train_x.dims3()?;
        let shape = DataShape {
            rows: data.dates.len(),
            train_rows: data.train_rows,
            window: data.window,
            short_history: short_history_name(data.short_history),
            features,
            train_samples: data.train_len(),
            test_samples: data.test_len(),
            first_date: data.dates.first().cloned(),
            last_date: data.dates.last().cloned(),
        };
        let train = Train {
            session,
            task: &self.config,
        };
        dir.write_json("config.json", &RunConfig { train, data: shape })?;
        Ok(())
    }

    fn check_state(
        &self,
        s: &StockState,
        steps: usize,
        _kept: bool,
    ) -> std::result::Result<(), String> {
        if let Some(point) = s.logged.iter().find(|l| l.epoch >= steps) {
            return Err(format!(
                "it logged epoch {}, beyond the {steps} epochs done",
                point.epoch
            ));
        }
        for point in &s.logged {
            non_negative("a saved loss", point.loss)?;
        }
        Ok(())
    }

    fn restore(&mut self, state: StockState, _kept: Option<Snapshot>, _path: &Path) -> Result<()> {
        self.state = state;
        Ok(())
    }

    fn loss(&mut self, _index: usize) -> Result<(Tensor, usize)> {
        let outputs = self.inputs.predict(&self.trained.model, true)?;
        let loss = loss::mse(&outputs, &self.data.train_y)?;
        Ok((loss, self.data.train_len()))
    }

    fn after_step(&mut self, step: &Step, io: &mut Io) -> Result<()> {
        let epoch = step.index;
        if epoch.is_multiple_of(self.config.log_every) {
            io.line(&format!("Epoch: {epoch}, loss: {:.5}", step.loss))?;
            self.state.logged.push(LossPoint {
                epoch,
                loss: f64::from(step.loss),
            });
        }
        Ok(())
    }

    fn finish(self, end: &End, io: &mut Io) -> Result<RegressionReport> {
        let mut report = report::report(
            &self.trained.model,
            (self.data, &self.inputs),
            &self.config,
            end,
            self.state.logged,
        )?;
        io.line(&report::summary(&report))?;
        if let Some(dir) = io.run_dir() {
            report.run_dir = Some(dir.path().to_path_buf());
            report::write_outputs(dir, &self.config, &report, &self.trained.varmap)?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
