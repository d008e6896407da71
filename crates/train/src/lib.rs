//! # lstm-train
//!
//! Training loops, evaluation and run directories for the chapter's models.
//!
//! - [`classify`]: the MNIST classifier (cross-entropy, SGD), with the book's printed lines.
//! - [`regress`]: the stock-price regressor (MSE, full-batch Adam), with the book's printed
//!   lines, predictions in raw units and plots.
//! - [`gradflow`]: `‖∂L/∂h_t‖` over the steps of a plain RNN and an LSTM on the adding
//!   problem, at initialisation and after training (`cargo xtask gradflow`).
//! - [`plot`]: SVG figures (the book's "Time-Series Prediction", training losses per epoch
//!   or per iteration, other curves), written into run directories.
//! - [`run_dir`]: where runs write `config.json`, `metrics.csv`, weights and summaries,
//!   always atomically.
//! - [`limits`]: upper limits on settings, checked before anything is allocated;
//!   [`saved`]: loading a trained classifier from its run directory.
//! - [`checkpoint`] and [`optim`]: checkpoints with the optimizer state and the batch
//!   order, so a stopped run resumes bit for bit.
//! - [`tensorboard`]: TensorBoard event files of scalars (`tensorboard --logdir runs`).

pub mod checkpoint;
mod choice;
pub mod classify;
pub mod error;
pub mod gradflow;
pub mod limits;
pub mod optim;
pub mod plot;
mod progress_check;
pub mod regress;
pub mod run_dir;
pub mod saved;
mod snapshot;
pub mod tensorboard;

pub use checkpoint::{parse_checkpoint, read_checkpoint, Checkpoint, CHECKPOINT_FILE};
pub use classify::{
    build_classifier, evaluate, parse_classifier_checkpoint, predict_digit,
    read_classifier_checkpoint, resume_classifier, train_classifier, train_classifier_with_context,
    ClassifierCheckpoint, ClassifierProgress, ClassifierTrainConfig, EvalPoint, Evaluation,
    LrSchedule, Selection, TrainReport, TrainedClassifier,
};
pub use error::{Result, TrainError};
pub use gradflow::{run_gradflow, GradFlowConfig, GradFlowReport, ModelFlow};
pub use optim::{Optimizer, OptimizerKind};
pub use plot::{
    write_curves, write_predictions, Curve, Figure, PredictionFigure, PREDICTION_TITLE,
};
pub use regress::{
    build_regressor, read_regressor_checkpoint, resume_regressor, train_regressor,
    train_regressor_with_context, LossPoint, PredictionRow, RegressionReport, RegressorCheckpoint,
    RegressorProgress, RegressorTrainConfig, Split, TrainedRegressor,
};
pub use run_dir::RunDir;
pub use saved::{classifier_config_from_json, load_classifier};

/// A loss above this many times the run's first loss stops training as diverged
/// ([`TrainError::Exploded`]), even while it is still a finite number.
pub const DIVERGENCE_FACTOR: f64 = 1000.0;
