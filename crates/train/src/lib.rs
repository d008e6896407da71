//! # lstm-train
//!
//! Training loops, evaluation and run directories for the chapter's models.
//!
//! - [`classify`]: the MNIST classifier (cross-entropy, SGD), with the book's printed lines.
//! - [`run_dir`]: where runs write `config.json`, `metrics.csv`, weights and summaries,
//!   always atomically.

pub mod classify;
pub mod error;
pub mod run_dir;

pub use classify::{
    build_classifier, evaluate, train_classifier, ClassifierTrainConfig, EvalPoint, Evaluation,
    LrSchedule, Selection, TrainReport, TrainedClassifier,
};
pub use error::{Result, TrainError};
pub use run_dir::RunDir;
