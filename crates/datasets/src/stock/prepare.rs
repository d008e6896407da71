//! [`prepare_stock`]: a [`StockFrame`] scaled and cut into windowed samples, with its
//! options ([`StockOptions`], [`FitOn`], [`ShortHistory`]) and result ([`StockDataset`]).

use candle_core::{Device, Tensor};

use super::{StockFrame, DEFAULT_FEATURES, MAX_SAMPLE_VALUES, VOLUME_COLUMN};
use crate::error::DatasetError;
use crate::scaler::{MinMaxScaler, StandardScaler};

/// Which rows the scalers are fitted on.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FitOn {
    /// Only the training rows (`0..train_rows`): no look-ahead into the test period.
    #[default]
    #[cfg_attr(feature = "clap", value(name = "train"))]
    TrainOnly,
    /// Every row, as the book does: the test period leaks into the scaling.
    All,
}

/// What happens to the first `window - 1` rows, which have fewer earlier days than the
/// window (nothing differs at `window = 1`, the book's setting).
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShortHistory {
    /// Kept: row `r < window - 1` gets a sample of its `r + 1` days (the window's first
    /// `r + 1` steps, zeros after them) and the length `r + 1` in
    /// [`StockDataset::train_lengths`], so that every row gets a prediction.
    #[default]
    Keep,
    /// Dropped: the first sample predicts row `window - 1`, every window is full (the
    /// behaviour before short histories were kept).
    Drop,
}

/// How to turn a [`StockFrame`] into a [`StockDataset`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockOptions {
    /// Feature columns, in order (default: [`DEFAULT_FEATURES`]).
    pub features: Vec<String>,
    /// Target column (default `"Volume"`).
    pub target: String,
    /// Rows `0..train_rows` form the training period, the rest the test period
    /// (default 200).
    pub train_rows: usize,
    /// Rows of features per sample; the sample of row `r` covers rows
    /// `r - window + 1 ..= r` and predicts the target of row `r` (default 1).
    pub window: usize,
    /// Rows the scalers are fitted on (default [`FitOn::TrainOnly`]).
    pub fit_scalers_on: FitOn,
    /// Whether the first `window - 1` rows are kept as shorter samples (default
    /// [`ShortHistory::Keep`]).
    pub short_history: ShortHistory,
}

impl Default for StockOptions {
    /// The book's columns and split, without its leak: scalers fitted on the
    /// training rows only.
    fn default() -> Self {
        Self {
            features: DEFAULT_FEATURES.iter().map(|s| s.to_string()).collect(),
            target: VOLUME_COLUMN.into(),
            train_rows: 200,
            window: 1,
            fit_scalers_on: FitOn::TrainOnly,
            short_history: ShortHistory::Keep,
        }
    }
}

impl StockOptions {
    /// Exactly the book's setup: the defaults with scalers fitted on all rows.
    pub fn book() -> Self {
        Self {
            fit_scalers_on: FitOn::All,
            ..Self::default()
        }
    }
}

/// A stock frame scaled and cut into windows, ready for training.
#[derive(Clone, Debug)]
pub struct StockDataset {
    /// Date of every row, `YYYY-MM-DD`.
    pub dates: Vec<String>,
    /// Standardised features of every row, shape `(rows, F)`.
    pub features_scaled: Vec<Vec<f64>>,
    /// Min-max scaled target of every row.
    pub target_scaled: Vec<f64>,
    /// Raw target of every row.
    pub target_raw: Vec<f64>,
    /// Scaler of the features (one column per feature).
    pub feature_scaler: StandardScaler,
    /// Scaler of the target (one column); use its `inverse_transform_column`
    /// to turn predictions back into raw units.
    pub target_scaler: MinMaxScaler,
    /// Training inputs, shape `(N_train, window, F)`, `f32` on the CPU. With
    /// [`ShortHistory::Keep`] the first samples are shorter than the window: sample `k`
    /// holds its `train_lengths[k]` days first, then zeros.
    pub train_x: Tensor,
    /// The real steps of each training sample, when some are shorter than the window
    /// (kept short histories, `window > 1`): `1, 2, …, window - 1, window, window, …`.
    /// `None` when every window is full. The test samples are always full: they start
    /// at `train_rows >= window`.
    pub train_lengths: Option<Vec<usize>>,
    /// Training targets, shape `(N_train, 1)`, `f32`.
    pub train_y: Tensor,
    /// Test inputs, shape `(N_test, window, F)`, `f32`.
    pub test_x: Tensor,
    /// Test targets, shape `(N_test, 1)`, `f32`.
    pub test_y: Tensor,
    /// Rows of the training period (samples predicting rows `< train_rows` are training samples).
    pub train_rows: usize,
    /// Rows of features per sample.
    pub window: usize,
    /// Whether the rows with fewer earlier days than the window were kept.
    pub short_history: ShortHistory,
    /// Date of each sample (the row it predicts): the training samples, then the test samples.
    pub sample_dates: Vec<String>,
}

/// The row the first sample predicts: 0 when short histories are kept, else
/// `window - 1`.
fn first_sample_row(window: usize, short_history: ShortHistory) -> usize {
    match short_history {
        ShortHistory::Keep => 0,
        ShortHistory::Drop => window - 1,
    }
}

impl StockDataset {
    /// The row the first sample predicts: 0 with [`ShortHistory::Keep`] (every row has
    /// a sample), `window - 1` with [`ShortHistory::Drop`].
    pub fn first_row(&self) -> usize {
        first_sample_row(self.window, self.short_history)
    }

    /// Number of training samples: `train_rows - first_row()` (`train_rows` when short
    /// histories are kept, `train_rows - window + 1` when they are dropped).
    pub fn train_len(&self) -> usize {
        self.train_rows - self.first_row()
    }

    /// Number of test samples: `rows - train_rows`.
    pub fn test_len(&self) -> usize {
        self.dates.len() - self.train_rows
    }

    /// Dates of the training samples.
    pub fn train_dates(&self) -> &[String] {
        &self.sample_dates[..self.train_len()]
    }

    /// Dates of the test samples.
    pub fn test_dates(&self) -> &[String] {
        &self.sample_dates[self.train_len()..]
    }
}

/// Scales `frame`'s features and target and cuts them into samples.
///
/// The feature scaler ([`StandardScaler`]) and the target scaler
/// ([`MinMaxScaler`]) are fitted on the rows chosen by
/// [`StockOptions::fit_scalers_on`] and applied to every row. The sample of
/// row `r` (for `r >= window - 1`) holds the scaled features of rows
/// `r - window + 1 ..= r` and the scaled target of row `r`; it is a training
/// sample when `r < train_rows` and a test sample otherwise. With
/// [`ShortHistory::Keep`] the rows `r < window - 1` have samples too: rows `0..=r` (length
/// `r + 1`, zeros after them), their lengths in [`StockDataset::train_lengths`].
///
/// Errors: [`DatasetError::InvalidSplit`] (naming the file) when
/// `train_rows` is 0 or leaves no test row, when `window` is 0 or exceeds
/// `train_rows`, or when no feature is selected;
/// [`DatasetError::MissingColumn`] for an absent feature or target column;
/// [`DatasetError::Unscalable`] when a value scales to NaN or ±inf (a column
/// whose values, e.g. `1e308`, overflow the scaler's arithmetic).
pub fn prepare_stock(
    frame: &StockFrame,
    opts: &StockOptions,
) -> Result<StockDataset, DatasetError> {
    let path = frame.path().display();
    let rows = frame.len();
    let invalid = |message: String| DatasetError::InvalidSplit { message };
    if opts.train_rows == 0 || opts.train_rows >= rows {
        return Err(invalid(format!(
            "{path}: train_rows = {} must be at least 1 and below the {rows} data rows \
             (at least one row is needed for testing)",
            opts.train_rows
        )));
    }
    if opts.window == 0 || opts.window > opts.train_rows {
        return Err(invalid(format!(
            "{path}: window = {} must be at least 1 and at most train_rows = {} \
             ({rows} data rows in all)",
            opts.window, opts.train_rows
        )));
    }
    if opts.features.is_empty() {
        return Err(invalid(format!("{path}: no feature columns selected")));
    }
    let first_row = first_sample_row(opts.window, opts.short_history);
    let values = (rows - first_row)
        .checked_mul(opts.window)
        .and_then(|v| v.checked_mul(opts.features.len()));
    if values.is_none_or(|v| v > MAX_SAMPLE_VALUES) {
        return Err(invalid(format!(
            "{path}: window = {} over {rows} rows of {} features makes more than \
             {MAX_SAMPLE_VALUES} input values; use a smaller window",
            opts.window,
            opts.features.len()
        )));
    }

    let feature_columns = opts
        .features
        .iter()
        .map(|name| frame.column(name))
        .collect::<Result<Vec<_>, _>>()?;
    let target_raw = frame.column(&opts.target)?;
    let features_raw: Vec<Vec<f64>> = (0..rows)
        .map(|r| feature_columns.iter().map(|c| c[r]).collect())
        .collect();

    let fit_rows = match opts.fit_scalers_on {
        FitOn::TrainOnly => opts.train_rows,
        FitOn::All => rows,
    };
    let feature_scaler = StandardScaler::fit(&features_raw[..fit_rows])?;
    let target_scaler = MinMaxScaler::fit_column(&target_raw[..fit_rows])?;
    let features_scaled = feature_scaler.transform(&features_raw)?;
    let target_scaled = target_scaler.transform_column(&target_raw)?;
    // Finite cells can still scale to NaN or ±inf when a column's sum,
    // variance or range overflows f64 (e.g. two rows of 1e308): reject them
    // here rather than train on them. The stock_csv fuzz target checks this.
    let unscalable = |r: usize, column: &str, value: f64, scaled: f64| {
        (!scaled.is_finite()).then(|| DatasetError::Unscalable {
            path: frame.path().to_path_buf(),
            row: r + 1,
            column: column.into(),
            value,
            scaled,
        })
    };
    let scaled_rows = features_raw.iter().zip(&features_scaled);
    let scaled_targets = target_raw.iter().zip(&target_scaled);
    for (r, ((raw, scaled), (&t_raw, &t_scaled))) in scaled_rows.zip(scaled_targets).enumerate() {
        for ((name, &value), &s) in opts.features.iter().zip(raw).zip(scaled) {
            if let Some(e) = unscalable(r, name, value, s) {
                return Err(e);
            }
        }
        if let Some(e) = unscalable(r, &opts.target, t_raw, t_scaled) {
            return Err(e);
        }
    }

    let dates = frame.dates();
    let window = opts.window;
    let n_features = opts.features.len();
    let tensors = |sample_rows: std::ops::Range<usize>| -> Result<(Tensor, Tensor), DatasetError> {
        let n = sample_rows.len();
        let mut x = Vec::with_capacity(n * window * n_features);
        let mut y = Vec::with_capacity(n);
        for r in sample_rows {
            // A kept short history: its days first, zeros for the steps it lacks.
            let start = (r + 1).saturating_sub(window);
            for row in &features_scaled[start..=r] {
                x.extend(row.iter().map(|&v| v as f32));
            }
            x.resize(x.len() + (window - (r + 1 - start)) * n_features, 0.0);
            y.push(target_scaled[r] as f32);
        }
        Ok((
            Tensor::from_vec(x, (n, window, n_features), &Device::Cpu)?,
            Tensor::from_vec(y, (n, 1), &Device::Cpu)?,
        ))
    };
    let (train_x, train_y) = tensors(first_row..opts.train_rows)?;
    let (test_x, test_y) = tensors(opts.train_rows..rows)?;
    let train_lengths = (first_row < window - 1).then(|| {
        (first_row..opts.train_rows)
            .map(|r| (r + 1).min(window))
            .collect()
    });

    Ok(StockDataset {
        sample_dates: dates[first_row..].to_vec(),
        dates,
        features_scaled,
        target_scaled,
        target_raw,
        feature_scaler,
        target_scaler,
        train_x,
        train_y,
        train_lengths,
        test_x,
        test_y,
        train_rows: opts.train_rows,
        window,
        short_history: opts.short_history,
    })
}

#[cfg(test)]
mod tests;
