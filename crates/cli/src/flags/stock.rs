//! `lstm stock`'s flags, and the settings and data options they make.

use std::path::PathBuf;

use clap::ValueEnum;
use lstm_core::{Family, Nonlinearity};
use lstm_datasets::{FitOn, ShortHistory, StockOptions};
use lstm_train::{SessionConfig, StockConfig, TargetUnit};
use serde::{Deserialize, Serialize};

use super::RunArgs;

/// `lstm stock --model`: the recurrent part, as the chapter names it.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StockModel {
    /// nn.LSTM: the book's model.
    Lstm,
    /// nn.GRU.
    Gru,
    /// Bidirectional nn.LSTM.
    Bilstm,
    /// Plain tanh nn.RNN.
    Rnn,
}

impl StockModel {
    /// The book's three models, compared by `--compare`.
    const BOOK: [StockModel; 3] = [StockModel::Lstm, StockModel::Gru, StockModel::Bilstm];

    /// The recurrent family, and whether both directions run.
    fn parts(self) -> (Family, bool) {
        match self {
            StockModel::Lstm => (Family::Lstm, false),
            StockModel::Gru => (Family::Gru, false),
            StockModel::Bilstm => (Family::Lstm, true),
            StockModel::Rnn => (Family::Rnn(Nonlinearity::Tanh), false),
        }
    }
}

/// Flags of `lstm stock`.
#[derive(clap::Args, Debug)]
pub(crate) struct StockArgs {
    /// Daily price CSV (Date,Open,High,Low,Close,Adj Close,Volume).
    #[arg(long, default_value = "data/SBUX.csv")]
    pub(crate) data: PathBuf,
    /// Recurrent layer of the model.
    #[arg(long, value_enum, default_value_t = StockModel::Lstm, conflicts_with = "compare")]
    model: StockModel,
    /// Hidden size of the recurrent layer.
    #[arg(long, default_value_t = 2)]
    hidden: usize,
    /// Stacked recurrent layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Full-batch training epochs.
    #[arg(long, default_value_t = 1000)]
    epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    lr: f64,
    /// Global gradient-norm clip before every update (default: none).
    #[arg(long, allow_negative_numbers = true)]
    clip: Option<f64>,
    /// Seed of the weights.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Feature columns, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Open,High,Low,Close,Adj Close"
    )]
    pub(crate) features: Vec<String>,
    /// Target column.
    #[arg(long, default_value = "Volume")]
    pub(crate) target: String,
    /// Rows of the training period (the rest is the test period).
    #[arg(long, default_value_t = 200)]
    train_rows: usize,
    /// Rows of features per sample (1: each day's prices predict that day's volume).
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// The first W-1 rows, with fewer than --window W earlier days: `keep` gives each a
    /// shorter sequence of the days it has (run as packed rows, padding never read), so
    /// every row gets a prediction; `drop` leaves them out, as before. Nothing differs at
    /// --window 1.
    #[arg(long, value_enum, default_value_t = ShortHistory::Keep)]
    short_history: ShortHistory,
    /// Rows the scalers are fitted on.
    #[arg(long, value_enum, default_value_t = FitOn::TrainOnly)]
    fit_scalers_on: FitOn,
    /// Print the loss every N epochs.
    #[arg(long, default_value_t = 100)]
    log_every: usize,
    /// Write a checkpoint every N epochs (and at the end; 0: only at the end).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// Where the run goes, stopping and resuming.
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Train lstm, gru and bilstm with the same seed and compare them.
    #[arg(long, conflicts_with = "resume")]
    pub(crate) compare: bool,
}

impl StockArgs {
    /// The models to train: the one of `--model`, or all three with `--compare`.
    pub(crate) fn models(&self) -> Vec<StockModel> {
        if self.compare {
            StockModel::BOOK.to_vec()
        } else {
            vec![self.model]
        }
    }

    /// The task's settings for `model`, and the session's.
    pub(crate) fn configs(&self, model: StockModel) -> (StockConfig, SessionConfig) {
        let (family, bidirectional) = model.parts();
        let task = StockConfig {
            family,
            bidirectional,
            hidden: self.hidden,
            layers: self.layers,
            epochs: self.epochs,
            log_every: self.log_every,
            target: self.target.clone(),
            unit: TargetUnit::of(&self.target),
        };
        let session = SessionConfig {
            seed: self.seed,
            lr: self.lr,
            clip: self.clip,
            checkpoint_every: self.checkpoint_every,
            stop_after: self.run.stop_after,
            progress: !self.run.quiet,
            ..StockConfig::session()
        };
        (task, session)
    }

    /// How the data is prepared, with `features` already checked.
    pub(crate) fn options(&self, features: Vec<String>) -> StockOptions {
        StockOptions {
            features,
            target: self.target.clone(),
            train_rows: self.train_rows,
            window: self.window,
            fit_scalers_on: self.fit_scalers_on,
            short_history: self.short_history,
        }
    }
}

/// What `data.json` holds: where the data came from and how it was prepared (also kept
/// in the checkpoints, so that `--resume` prepares the same data).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct StockData {
    /// The CSV, absolute.
    pub(crate) path: PathBuf,
    /// Its rows.
    pub(crate) rows: usize,
    /// Feature columns.
    pub(crate) features: Vec<String>,
    /// Target column.
    pub(crate) target: String,
    /// Rows of the training period.
    pub(crate) train_rows: usize,
    /// Rows per sample.
    pub(crate) window: usize,
    /// Rows the scalers are fitted on (`train` or `all`, as the flag).
    #[serde(with = "super::saved")]
    pub(crate) fit_scalers_on: FitOn,
    /// The rows with fewer earlier days than the window (`keep` or `drop`, as the flag);
    /// runs saved before the flag dropped them.
    #[serde(default = "dropped", with = "super::saved")]
    pub(crate) short_history: ShortHistory,
    /// Training samples.
    pub(crate) train_samples: usize,
    /// Test samples.
    pub(crate) test_samples: usize,
}

impl StockData {
    /// The options the data was prepared with.
    pub(crate) fn options(&self) -> StockOptions {
        StockOptions {
            features: self.features.clone(),
            target: self.target.clone(),
            train_rows: self.train_rows,
            window: self.window,
            fit_scalers_on: self.fit_scalers_on,
            short_history: self.short_history,
        }
    }
}

/// What runs saved before `--short-history` did with the first rows.
fn dropped() -> ShortHistory {
    ShortHistory::Drop
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(short_history: Option<&str>) -> serde_json::Value {
        let mut data = serde_json::json!({
            "path": "/data/SBUX.csv",
            "rows": 253,
            "features": ["Open"],
            "target": "Volume",
            "train_rows": 200,
            "window": 5,
            "fit_scalers_on": "train",
            "train_samples": 196,
            "test_samples": 53
        });
        if let Some(s) = short_history {
            data["short_history"] = s.into();
        }
        data
    }

    /// Runs saved before `--short-history` dropped the first rows, and resume so; the
    /// flag's value is saved under its name, and a typo is an error naming the values.
    #[test]
    fn short_history_is_saved_and_old_runs_read_as_dropped() {
        let old: StockData = serde_json::from_value(saved(None)).unwrap();
        assert_eq!(old.short_history, ShortHistory::Drop);
        assert_eq!(old.options().short_history, ShortHistory::Drop);
        let kept: StockData = serde_json::from_value(saved(Some("keep"))).unwrap();
        assert_eq!(kept.options().short_history, ShortHistory::Keep);
        assert_eq!(
            serde_json::to_value(&kept).unwrap()["short_history"],
            "keep"
        );
        let err = serde_json::from_value::<StockData>(saved(Some("some"))).unwrap_err();
        assert!(
            err.to_string().contains("expected one of keep, drop"),
            "{err}"
        );
    }
}
