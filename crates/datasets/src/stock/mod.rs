//! Daily stock prices from a Yahoo-Finance-style CSV, scaled and windowed
//! into tensors for a sequence regressor.
//!
//! The book's example reads `SBUX.csv` (`Date,Open,High,Low,Close,Adj Close,Volume`),
//! standardises the five price columns, min-max scales `Volume` as the
//! target and trains on the first 200 rows. [`StockFrame::read_csv`] reads
//! and validates such a file into a polars [`DataFrame`]; [`prepare_stock`]
//! turns it into a [`StockDataset`] of `(N, window, F)` feature tensors and
//! `(N, 1)` targets. The first `window - 1` rows have fewer earlier days than the
//! window; [`ShortHistory`] keeps them (as shorter sequences, with their lengths, for a
//! model's packed path) or drops them.
//!
//! Validation happens once, while reading: every problem is reported as a
//! typed [`DatasetError`] whose message starts with the file's path and, for
//! a bad cell, names the 1-based data row (the header is line 1, so data row
//! `r` is line `r + 1`) and the column.

mod date;
mod frame;
mod prepare;
#[cfg(test)]
mod test_support;

// For the links of the module docs.
#[cfg(doc)]
use {crate::error::DatasetError, polars::prelude::DataFrame};

pub use date::format_date;
pub use frame::StockFrame;
pub use prepare::{prepare_stock, FitOn, ShortHistory, StockDataset, StockOptions};

/// Name of the date column, the frame's index.
pub const DATE_COLUMN: &str = "Date";

/// Columns parsed as `f64` (and checked) while reading, when present.
///
/// Any other column except [`DATE_COLUMN`] is kept as text and parsed, with
/// the same checks, when [`StockFrame::column`] asks for it.
pub const NUMERIC_COLUMNS: [&str; 6] = ["Open", "High", "Low", "Close", "Adj Close", "Volume"];

/// The traded volume: also checked to be non-negative.
pub const VOLUME_COLUMN: &str = "Volume";

/// The book's features: the five price columns of a classic Yahoo CSV.
pub const DEFAULT_FEATURES: [&str; 5] = ["Open", "High", "Low", "Close", "Adj Close"];

/// Most input values (samples × window × features) [`prepare_stock`] builds.
pub const MAX_SAMPLE_VALUES: usize = 64_000_000;
