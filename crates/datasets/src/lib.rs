//! Data for the LSTM chapter: MNIST idx files, stock prices and seeded batching.
//!
//! - [`mnist`] reads the four canonical MNIST idx files (raw or `.gz`),
//!   validates them and turns them into normalised CPU tensors split into
//!   train / validation / test.
//! - [`stock`] reads a Yahoo-Finance-style price CSV (with polars) into a
//!   validated [`StockFrame`] and scales and windows it into a
//!   [`StockDataset`] for sequence regression.
//! - [`scaler`] holds scikit-learn-compatible [`StandardScaler`] and
//!   [`MinMaxScaler`].
//! - [`batch`] shuffles example indices into mini-batches, reproducibly
//!   (per-epoch permutations depend only on seed and epoch) and resumably.
//! - [`error`] holds [`DatasetError`], whose messages name the offending file.

pub mod batch;
pub mod error;
pub mod mnist;
pub mod scaler;
pub mod stock;

pub use batch::{EpochSampler, SamplerState};
pub use error::DatasetError;
pub use mnist::{
    load_mnist, normalize_pixels, parse_idx_images, parse_idx_labels, read_idx_images,
    read_idx_labels, IdxImages, Mnist, MnistOptions, MnistSplit, ValidationSource,
};
pub use scaler::{MinMaxScaler, StandardScaler};
pub use stock::{prepare_stock, FitOn, StockDataset, StockFrame, StockOptions};
