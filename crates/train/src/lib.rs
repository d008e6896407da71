//! # lstm-train
//!
//! Training loops, evaluation and run directories for the chapter's models.
//!
//! - [`classify`]: the MNIST classifier (cross-entropy, SGD), with the book's printed lines.
//! - [`regress`]: the stock-price regressor (MSE, full-batch Adam), with the book's printed
//!   lines, predictions in raw units and plots.
//! - [`plot`]: SVG figures (the book's "Time-Series Prediction", the loss per epoch).
//! - [`run_dir`]: where runs write `config.json`, `metrics.csv`, weights and summaries,
//!   always atomically.

pub mod classify;
pub mod error;
pub mod plot;
pub mod regress;
pub mod run_dir;
mod snapshot;

pub use classify::{
    build_classifier, evaluate, train_classifier, ClassifierTrainConfig, EvalPoint, Evaluation,
    LrSchedule, Selection, TrainReport, TrainedClassifier,
};
pub use error::{Result, TrainError};
pub use plot::{plot_losses, plot_predictions, plot_predictions_multi, PREDICTION_TITLE};
pub use regress::{
    build_regressor, train_regressor, LossPoint, PredictionRow, RegressionReport,
    RegressorTrainConfig, Split, TrainedRegressor,
};
pub use run_dir::RunDir;
