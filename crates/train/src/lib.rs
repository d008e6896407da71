//! # lstm-train
//!
//! Training, evaluation and run directories for the chapter's models.
//!
//! - [`session`]: one training loop for every task: [`train`] and [`resume`] a [`Task`]
//!   with a [`SessionConfig`] (optimizer, schedule, clipping, checkpoints, stop-after,
//!   divergence, the last good weights, TensorBoard events).
//! - [`tasks`]: the tasks: the MNIST classifier ([`MnistTask`], the book's printed lines,
//!   the best weights on validation), the stock-price regressor ([`StockTask`],
//!   predictions in raw units and plots), and the adding problem
//!   ([`tasks::adding::AddingTask`]).
//! - [`gradflow`]: `‖∂L/∂h_t‖` over the steps of a plain RNN and an LSTM on the adding
//!   problem, at initialisation and after training (`lstm gradflow`).
//! - [`plot`]: SVG figures (the book's "Time-Series Prediction", loss and accuracy curves).
//! - [`run_dir`]: where runs write `config.json`, `metrics.csv`, weights and summaries,
//!   always atomically.
//! - [`limits`]: upper limits on settings, checked before anything is allocated;
//!   [`saved`]: loading a trained classifier from its run directory.
//! - [`checkpoint`] and [`optim`]: checkpoints with the optimizer state and the data
//!   order, so a stopped run resumes bit for bit.
//! - [`tensorboard`]: TensorBoard event files of scalars (`tensorboard --logdir runs`).

pub mod checkpoint;
mod choice;
pub mod error;
pub mod gradflow;
pub mod limits;
pub mod optim;
pub mod plot;
pub mod run_dir;
pub mod saved;
pub mod session;
mod snapshot;
pub mod tasks;
pub mod tensorboard;

pub use checkpoint::{Checkpoint, CHECKPOINT_FILE};
pub use error::{Result, TrainError};
pub use gradflow::{run_gradflow, GradFlowConfig, GradFlowReport, ModelFlow};
pub use optim::{Optimizer, OptimizerKind};
pub use plot::{
    write_curves, write_predictions, Curve, Figure, PredictionFigure, PREDICTION_TITLE,
};
pub use run_dir::RunDir;
pub use saved::{classifier_config_from_json, load_classifier};
pub use session::{
    parse_session_checkpoint, read_session_checkpoint, resume, train, LrSchedule,
    SessionCheckpoint, SessionConfig, Settings, Task, Unit,
};
pub use tasks::mnist::{
    build_classifier, evaluate, predict_digit, EvalPoint, Evaluation, MnistConfig, MnistTask,
    Selection, TrainReport, TrainedClassifier,
};
pub use tasks::stock::{
    build_regressor, LossPoint, PredictionRow, RegressionReport, Split, StockConfig, StockTask,
    TargetUnit, TrainedRegressor,
};

/// A loss above this many times the run's first loss stops training as diverged
/// ([`TrainError::Exploded`]), even while it is still a finite number.
pub const DIVERGENCE_FACTOR: f64 = 1000.0;
