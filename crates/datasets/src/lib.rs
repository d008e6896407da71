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
//! - [`digit`] turns a PNG of one handwritten digit into MNIST-style pixels.
//! - [`batch`] shuffles example indices into mini-batches, reproducibly
//!   (per-epoch permutations depend only on seed and epoch) and resumably.
//! - [`files`] opens input files with their kind and size checked first;
//!   [`csv_text`] checks a CSV's text before polars reads it.
//! - [`error`] holds [`DatasetError`], whose messages name the offending file.
//! - `hub` (feature `hub`, off by default: it pulls hf-hub, parquet and image)
//!   loads MNIST from the Hugging Face Hub cache through candle-datasets into the
//!   same [`Mnist`] as [`load_mnist`].

pub mod batch;
pub mod csv_text;
pub mod digit;
pub mod error;
pub mod files;
#[cfg(feature = "hub")]
pub mod hub;
pub mod mnist;
pub mod scaler;
pub mod stock;
#[cfg(test)]
mod test_support;

pub use batch::{EpochSampler, SamplerState};
pub use digit::{digit_from_image_bytes, read_digit_image};
pub use error::DatasetError;
pub use files::{open_regular, read_capped, FileError};
#[cfg(feature = "hub")]
pub use hub::load_mnist_from_hub;
pub use mnist::{
    load_mnist, normalize_pixels, parse_idx_images, parse_idx_labels, read_idx_images,
    read_idx_labels, IdxImages, Mnist, MnistOptions, MnistSplit, ValidationSource,
};
pub use scaler::{MinMaxScaler, StandardScaler};
pub use stock::{prepare_stock, FitOn, ShortHistory, StockDataset, StockFrame, StockOptions};
