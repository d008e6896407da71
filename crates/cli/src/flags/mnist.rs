//! `lstm mnist`'s flags, and the settings and data options they make.

use std::path::PathBuf;

use clap::ValueEnum;
use lstm_core::{Family, Kernel, Nonlinearity};
use lstm_datasets::{MnistOptions, ValidationSource};
use lstm_train::{LrSchedule, MnistConfig, OptimizerKind, Selection, SessionConfig};
use serde::{Deserialize, Serialize};

use super::RunArgs;

/// Where MNIST comes from.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataSource {
    /// The four idx files in --data.
    Files,
    /// The Hugging Face Hub's ylecun/mnist through candle-datasets, cached in
    /// ~/.cache/huggingface (needs a binary built with the `hub` feature).
    Hub,
}

/// `lstm mnist --model`: the classifier's recurrent part, as the chapter names it.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MnistModel {
    /// The book's from-scratch LSTM cell, unrolled over the rows in a loop.
    Cell,
    /// LSTM layers (nn.LSTM) in the fused kernel: the book's model.
    Layer,
    /// GRU layers (nn.GRU): the book's GRU comparison.
    Gru,
    /// Plain tanh RNN layers (nn.RNN).
    Rnn,
}

impl MnistModel {
    /// The recurrent family, and whether it is the book's cell.
    fn parts(self) -> (Family, bool) {
        match self {
            MnistModel::Cell => (Family::Lstm, true),
            MnistModel::Layer => (Family::Lstm, false),
            MnistModel::Gru => (Family::Gru, false),
            MnistModel::Rnn => (Family::Rnn(Nonlinearity::Tanh), false),
        }
    }
}

/// Flags of `lstm mnist`.
#[derive(clap::Args, Debug)]
pub(crate) struct MnistArgs {
    /// Where MNIST comes from.
    #[arg(long, value_enum, default_value_t = DataSource::Files)]
    pub(crate) source: DataSource,
    /// Directory with the four MNIST idx files (raw or .gz), for --source files.
    #[arg(long, default_value = "data/mnist")]
    pub(crate) data: PathBuf,
    /// Total training iterations (default: --epochs passes over the training split).
    #[arg(long)]
    iters: Option<usize>,
    /// Passes over the training split.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// SGD learning rate.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    lr: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = LrSchedule::StepDown)]
    lr_schedule: LrSchedule,
    /// Hidden size of the recurrent layer.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Stacked recurrent layers (layer and gru models).
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// The recurrent part of the model.
    #[arg(long, value_enum, default_value_t = MnistModel::Layer)]
    pub(crate) model: MnistModel,
    /// Recurrence kernel.
    #[arg(long, value_enum, default_value_t = Kernel::Fused)]
    kernel: Kernel,
    /// Seed for the weights and the batch order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Validate every N iterations.
    #[arg(long, default_value_t = 500)]
    eval_every: usize,
    /// Where validation images come from.
    #[arg(long, value_enum, default_value_t = ValidationSource::HeldOut)]
    validate_on: ValidationSource,
    /// Which weights to keep and test at the end.
    #[arg(long, value_enum, default_value_t = Selection::Best)]
    select: Selection,
    /// Images held out of the training set for validation.
    #[arg(long, default_value_t = 5000)]
    validation_size: usize,
    /// Use only the first N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    test_limit: Option<usize>,
    /// SGD momentum (0: the book's plain SGD).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    momentum: f64,
    /// Global gradient-norm clip before every update (default: none).
    #[arg(long, allow_negative_numbers = true)]
    clip: Option<f64>,
    /// Write a checkpoint every N iterations (and at the end; 0: only at the end).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: usize,
    /// Where the run goes, stopping and resuming.
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

impl MnistArgs {
    /// The task's and the session's settings.
    pub(crate) fn configs(&self) -> (MnistConfig, SessionConfig) {
        let (family, book_cell) = self.model.parts();
        let task = MnistConfig {
            hidden: self.hidden,
            layers: self.layers,
            family,
            book_cell,
            kernel: self.kernel,
            batch_size: self.batch_size,
            epochs: self.epochs,
            iters: self.iters,
            eval_every: self.eval_every,
            validate_on: self.validate_on,
            select: self.select,
        };
        let session = SessionConfig {
            seed: self.seed,
            lr: self.lr,
            lr_schedule: self.lr_schedule,
            optimizer: OptimizerKind::Sgd {
                momentum: self.momentum,
            },
            clip: self.clip,
            checkpoint_every: self.checkpoint_every,
            stop_after: self.run.stop_after,
            progress: !self.run.quiet,
        };
        (task, session)
    }

    /// How the data is loaded, to store in the checkpoints (`data` made absolute).
    pub(crate) fn data_options(&self, data: PathBuf) -> MnistData {
        MnistData {
            source: self.source,
            data,
            validation_size: match self.validate_on {
                ValidationSource::HeldOut => self.validation_size,
                ValidationSource::Test => 0,
            },
            train_limit: self.train_limit,
            test_limit: self.test_limit,
        }
    }
}

/// How `lstm mnist` loaded its data, stored in the checkpoints so that `--resume` loads
/// the same images.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct MnistData {
    /// `files` or `hub`.
    #[serde(with = "super::saved")]
    pub(crate) source: DataSource,
    /// The idx directory (for `files`).
    pub(crate) data: PathBuf,
    /// Images held out of the training file.
    pub(crate) validation_size: usize,
    /// Only the first N training images.
    pub(crate) train_limit: Option<usize>,
    /// Only the first N test images.
    pub(crate) test_limit: Option<usize>,
}

impl MnistData {
    /// The loader's options.
    pub(crate) fn options(&self) -> MnistOptions {
        MnistOptions {
            validation_size: self.validation_size,
            train_limit: self.train_limit,
            test_limit: self.test_limit,
        }
    }
}
