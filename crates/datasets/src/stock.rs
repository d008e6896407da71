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

use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use polars::prelude::{
    Column, CsvReadOptions, DataFrame, DataType, Int32Chunked, IntoColumn, SerReader,
};

use crate::error::DatasetError;
use crate::scaler::{MinMaxScaler, StandardScaler};

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

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A validated stock CSV: a polars [`DataFrame`] whose `Date` column has
/// dtype [`DataType::Date`] and is strictly increasing.
///
/// The [`NUMERIC_COLUMNS`] present are `Float64` (finite, and `Volume`
/// non-negative); other columns stay `String`.
#[derive(Clone, Debug)]
pub struct StockFrame {
    path: PathBuf,
    frame: DataFrame,
}

/// `YYYY-MM-DD` → days since 1970-01-01 (proleptic Gregorian).
///
/// A time part after a space or `T` (`2019-12-11 00:00:00-05:00`) is ignored.
fn parse_date(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = b.get(r)?;
        if s.iter().all(u8::is_ascii_digit) {
            s.iter()
                .try_fold(0i64, |acc, &d| Some(acc * 10 + i64::from(d - b'0')))
        } else {
            None
        }
    };
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), None | Some(b' ') | Some(b'T')) {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

/// Days since 1970-01-01 → `YYYY-MM-DD` (Howard Hinnant's civil_from_days).
pub fn format_date(days: i32) -> String {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

impl StockFrame {
    /// Reads and validates a stock CSV with a header line (blank lines at the end
    /// are ignored).
    ///
    /// Errors, each naming `path`: [`DatasetError::Io`] (cannot read, e.g.
    /// missing), [`DatasetError::File`] (not a regular file, or over
    /// [`crate::csv_text::MAX_CSV_BYTES`]), [`DatasetError::Empty`] (no bytes, or
    /// only whitespace), [`DatasetError::NotUtf8Text`], [`DatasetError::WrongSeparator`],
    /// [`DatasetError::DuplicateColumn`],
    /// [`DatasetError::Csv`] (polars cannot parse the CSV, e.g. ragged rows),
    /// [`DatasetError::NoDataRows`] (header only), [`DatasetError::MissingColumn`]
    /// (no `Date`), [`DatasetError::BadDate`], [`DatasetError::DateOrder`]
    /// (a repeated or earlier date), and for the [`NUMERIC_COLUMNS`]
    /// [`DatasetError::BadNumber`] (empty or non-numeric cell),
    /// [`DatasetError::NonFinite`] (`NaN`, `inf`) and
    /// [`DatasetError::NegativeValue`] (negative `Volume`).
    pub fn read_csv(path: &Path) -> Result<Self, DatasetError> {
        let bytes = crate::files::read_capped(path, crate::csv_text::MAX_CSV_BYTES)
            .map_err(|e| e.at(path))?;
        Self::from_csv_bytes(path, bytes)
    }

    /// Parses and validates the bytes of a stock CSV with a header line,
    /// exactly as [`StockFrame::read_csv`] does, with the same errors except
    /// [`DatasetError::Io`].
    ///
    /// `path` only names the source in error messages (and is what
    /// [`StockFrame::path`] returns); nothing is read from it.
    pub fn from_csv_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, DatasetError> {
        let bytes = match bytes.strip_prefix(UTF8_BOM) {
            Some(rest) => rest.to_vec(),
            None => bytes,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(DatasetError::Empty {
                path: path.to_path_buf(),
            });
        }
        crate::csv_text::check_csv_text(path, &bytes)?;
        let bytes = crate::csv_text::without_trailing_blank_lines(bytes);
        let csv_error = |source| DatasetError::Csv {
            path: path.to_path_buf(),
            source,
        };
        // Every column as text (no inference), so each cell can be checked
        // here and reported with its row and column.
        let raw = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(Cursor::new(bytes))
            .finish()
            .map_err(csv_error)?;
        let height = raw.height();
        if height == 0 {
            return Err(DatasetError::NoDataRows {
                path: path.to_path_buf(),
            });
        }
        let available = column_names(&raw);
        if !available.iter().any(|c| c == DATE_COLUMN) {
            return Err(DatasetError::MissingColumn {
                path: path.to_path_buf(),
                column: DATE_COLUMN.into(),
                available,
            });
        }

        let mut columns = Vec::with_capacity(available.len());
        for name in &available {
            let cells = text_cells(path, &raw, name)?;
            let column = if name == DATE_COLUMN {
                let days = parse_dates(path, name, &cells)?;
                Int32Chunked::from_vec(name.as_str().into(), days)
                    .into_date()
                    .into_column()
            } else if NUMERIC_COLUMNS.contains(&name.as_str()) {
                Column::new(name.as_str().into(), parse_numbers(path, name, &cells)?)
            } else {
                raw.column(name).map_err(csv_error)?.clone()
            };
            columns.push(column);
        }
        let frame = DataFrame::new(height, columns).map_err(csv_error)?;
        Ok(Self {
            path: path.to_path_buf(),
            frame,
        })
    }

    /// The file this frame was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying polars frame (`Date` as [`DataType::Date`], the
    /// [`NUMERIC_COLUMNS`] as `Float64`, the rest as `String`).
    pub fn data_frame(&self) -> &DataFrame {
        &self.frame
    }

    /// Number of data rows (at least 1).
    pub fn len(&self) -> usize {
        self.frame.height()
    }

    /// Always `false`: a frame without data rows is rejected when reading.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column names in file order.
    pub fn columns(&self) -> Vec<String> {
        column_names(&self.frame)
    }

    /// The dates as days since 1970-01-01, strictly increasing.
    pub fn date_days(&self) -> Vec<i32> {
        self.frame
            .column(DATE_COLUMN)
            .and_then(|c| c.date().map(|d| d.physical().iter().flatten().collect()))
            .unwrap_or_default()
    }

    /// The dates as `YYYY-MM-DD` strings, strictly increasing.
    pub fn dates(&self) -> Vec<String> {
        self.date_days().into_iter().map(format_date).collect()
    }

    /// The values of a numeric column.
    ///
    /// A name not in the header gives [`DatasetError::MissingColumn`] listing
    /// the available columns. A column read as text (not one of the
    /// [`NUMERIC_COLUMNS`]) is parsed now, with the same checks as while
    /// reading ([`DatasetError::BadNumber`], [`DatasetError::NonFinite`]);
    /// asking for `Date` gives [`DatasetError::BadNumber`] for its first row.
    pub fn column(&self, name: &str) -> Result<Vec<f64>, DatasetError> {
        let column = self
            .frame
            .column(name)
            .map_err(|_| DatasetError::MissingColumn {
                path: self.path.clone(),
                column: name.into(),
                available: self.columns(),
            })?;
        let csv_error = |source| DatasetError::Csv {
            path: self.path.clone(),
            source,
        };
        match column.dtype() {
            DataType::Float64 => Ok(column
                .f64()
                .map_err(csv_error)?
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect()),
            DataType::String => {
                let cells = text_cells(&self.path, &self.frame, name)?;
                parse_numbers(&self.path, name, &cells)
            }
            _ => Err(DatasetError::BadNumber {
                path: self.path.clone(),
                row: 1,
                column: name.into(),
                value: self.dates().first().cloned().unwrap_or_default(),
            }),
        }
    }
}

/// Column names of `frame` in order.
fn column_names(frame: &DataFrame) -> Vec<String> {
    frame
        .get_column_names()
        .into_iter()
        .map(|n| n.to_string())
        .collect()
}

/// The cells of a text column, trimmed; a missing (null) cell is `""`.
fn text_cells(path: &Path, frame: &DataFrame, name: &str) -> Result<Vec<String>, DatasetError> {
    let csv_error = |source| DatasetError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let column = frame.column(name).map_err(csv_error)?;
    Ok(column
        .str()
        .map_err(csv_error)?
        .iter()
        .map(|cell| cell.unwrap_or("").trim().to_string())
        .collect())
}

/// Parses the `Date` cells and checks that they are strictly increasing.
fn parse_dates(path: &Path, column: &str, cells: &[String]) -> Result<Vec<i32>, DatasetError> {
    let mut days: Vec<i32> = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        let row = i + 1;
        let day = parse_date(cell).ok_or_else(|| DatasetError::BadDate {
            path: path.to_path_buf(),
            row,
            column: column.into(),
            value: cell.clone(),
        })?;
        if let Some(&previous) = days.last() {
            if day <= previous {
                return Err(DatasetError::DateOrder {
                    path: path.to_path_buf(),
                    row,
                    date: format_date(day),
                    previous: format_date(previous),
                });
            }
        }
        days.push(day);
    }
    Ok(days)
}

/// Parses the cells of a numeric column: finite, and non-negative for `Volume`.
fn parse_numbers(path: &Path, column: &str, cells: &[String]) -> Result<Vec<f64>, DatasetError> {
    cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let row = i + 1;
            let value: f64 = cell.parse().map_err(|_| DatasetError::BadNumber {
                path: path.to_path_buf(),
                row,
                column: column.into(),
                value: cell.clone(),
            })?;
            if !value.is_finite() {
                return Err(DatasetError::NonFinite {
                    path: path.to_path_buf(),
                    row,
                    column: column.into(),
                    value,
                });
            }
            if column == VOLUME_COLUMN && value < 0.0 {
                return Err(DatasetError::NegativeValue {
                    path: path.to_path_buf(),
                    row,
                    column: column.into(),
                    value,
                });
            }
            Ok(value)
        })
        .collect()
}

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
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SBUX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/SBUX.csv");

    /// A unique scratch directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "lstm-datasets-stock-{}-{tag}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create temp dir");
            Self(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, text).expect("write temp file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const HEADER: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n";

    /// A classic-layout CSV of `n` valid rows starting 2020-01-01.
    fn valid_csv(n: usize) -> String {
        let mut s = HEADER.to_string();
        for i in 0..n {
            let p = 100.0 + i as f64;
            s.push_str(&format!(
                "{},{p},{},{},{},{},{}\n",
                format_date(18_262 + i as i32),
                p + 1.0,
                p - 1.0,
                p + 0.5,
                p + 0.25,
                1000 + 10 * i
            ));
        }
        s
    }

    fn sbux() -> StockFrame {
        StockFrame::read_csv(Path::new(SBUX)).expect("read data/SBUX.csv")
    }

    /// Reads `text` from a temp file, returning the error and the file's path.
    fn read_err(tag: &str, text: &str) -> (DatasetError, String) {
        let dir = TempDir::new(tag);
        let path = dir.write("prices.csv", text);
        let err = StockFrame::read_csv(&path).expect_err("expected an error");
        let shown = path.display().to_string();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&shown),
            "message does not start with the path: {msg}"
        );
        (err, msg)
    }

    fn mean_std(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    fn to_rows(t: &Tensor) -> Vec<Vec<Vec<f32>>> {
        t.to_vec3::<f32>().expect("3-d f32 tensor")
    }

    #[test]
    fn date_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2019-12-11"), Some(18_241));
        assert_eq!(parse_date("2020-02-29"), Some(18_321));
        assert_eq!(parse_date("2019-12-11 00:00:00-05:00"), Some(18_241));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        for bad in [
            "2019-02-29",
            "2019-13-01",
            "2019-00-10",
            "2019-04-31",
            "2019/12/11",
            "2019-12-1",
            "2019-12-11x",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        for days in [-700_000, -1, 0, 18_241, 18_321, 2_932_896] {
            assert_eq!(parse_date(&format_date(days)), Some(days), "{days}");
        }
        assert_eq!(format_date(18_606), "2020-12-10");
    }

    #[test]
    fn reads_sbux() {
        let f = sbux();
        assert_eq!(f.len(), 253);
        assert!(!f.is_empty());
        assert_eq!(
            f.columns(),
            [
                "Date",
                "Open",
                "High",
                "Low",
                "Close",
                "Adj Close",
                "Volume"
            ]
        );
        let dates = f.dates();
        assert_eq!(dates.len(), 253);
        assert_eq!(dates[0], "2019-12-11");
        assert_eq!(dates[252], "2020-12-10");
        assert_eq!(f.date_days()[0], 18_241);
        let df = f.data_frame();
        assert_eq!(df.column("Date").unwrap().dtype(), &DataType::Date);
        assert_eq!(df.column("Volume").unwrap().dtype(), &DataType::Float64);
        let volume = f.column("Volume").unwrap();
        assert_eq!(volume[0], 4_921_900.0);
        assert_eq!(volume[252], 12_939_200.0);
        let open = f.column("Open").unwrap();
        assert_eq!(open[0], 86.260002);
        assert_eq!(f.column("Adj Close").unwrap()[252], 104.527336);
    }

    #[test]
    fn prepare_default_splits_200_53_and_scales_on_train() {
        let f = sbux();
        let d = prepare_stock(&f, &StockOptions::default()).unwrap();
        assert_eq!(d.train_x.dims(), &[200, 1, 5]);
        assert_eq!(d.train_y.dims(), &[200, 1]);
        assert_eq!(d.test_x.dims(), &[53, 1, 5]);
        assert_eq!(d.test_y.dims(), &[53, 1]);
        assert_eq!((d.train_len(), d.test_len()), (200, 53));
        assert_eq!(d.sample_dates.len(), 253);
        assert_eq!(d.train_dates().last().unwrap(), &d.dates[199]);
        assert_eq!(d.test_dates()[0], d.dates[200]);
        assert_eq!(d.target_raw[0], 4_921_900.0);

        for j in 0..5 {
            let col: Vec<f64> = d.features_scaled[..200].iter().map(|r| r[j]).collect();
            let (mean, std) = mean_std(&col);
            assert!(mean.abs() < 1e-9, "feature {j}: mean {mean}");
            assert!((std - 1.0).abs() < 1e-9, "feature {j}: std {std}");
        }
        let train_target = &d.target_scaled[..200];
        assert!(train_target.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(
            train_target.iter().copied().fold(f64::INFINITY, f64::min),
            0.0
        );
        assert_eq!(train_target.iter().copied().fold(0.0, f64::max), 1.0);
        // The scaler saw only the training rows.
        let train_volume = &d.target_raw[..200];
        assert_eq!(
            d.target_scaler.max[0],
            train_volume.iter().copied().fold(0.0, f64::max)
        );

        // Tensors hold the scaled values, row for row.
        let x = to_rows(&d.train_x);
        let y = d.train_y.to_vec2::<f32>().unwrap();
        assert_eq!(
            x[7][0],
            d.features_scaled[7]
                .iter()
                .map(|&v| v as f32)
                .collect::<Vec<_>>()
        );
        assert_eq!(y[7][0], d.target_scaled[7] as f32);
        let tx = to_rows(&d.test_x);
        let ty = d.test_y.to_vec2::<f32>().unwrap();
        assert_eq!(tx[0][0][4], d.features_scaled[200][4] as f32);
        assert_eq!(ty[52][0], d.target_scaled[252] as f32);
        // Inverse transform of the scaled target gives back the raw volume.
        let back = d
            .target_scaler
            .inverse_transform_column(&d.target_scaled)
            .unwrap();
        for (a, b) in back.iter().zip(&d.target_raw) {
            assert!((a - b).abs() <= 1e-9 * b, "{a} vs {b}");
        }
    }

    #[test]
    fn prepare_fit_on_all_reproduces_the_book() {
        let f = sbux();
        let d = prepare_stock(&f, &StockOptions::book()).unwrap();
        assert_eq!(d.train_x.dims(), &[200, 1, 5]);
        assert_eq!(d.test_x.dims(), &[53, 1, 5]);
        assert_eq!(d.target_scaled.len(), 253);
        assert!(d.target_scaled.iter().all(|v| (0.0..=1.0).contains(v)));
        let lo = d
            .target_scaled
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let hi = d
            .target_scaled
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((lo, hi), (0.0, 1.0));
        for j in 0..5 {
            let col: Vec<f64> = d.features_scaled.iter().map(|r| r[j]).collect();
            let (mean, std) = mean_std(&col);
            assert!(
                mean.abs() < 1e-9 && (std - 1.0).abs() < 1e-9,
                "{j}: {mean} {std}"
            );
        }
        // Fitting on all rows scales differently from fitting on the train rows.
        let t = prepare_stock(&f, &StockOptions::default()).unwrap();
        assert_ne!(d.feature_scaler, t.feature_scaler);
    }

    #[test]
    fn window_five_stacks_previous_rows() {
        let f = sbux();
        let opts = StockOptions {
            window: 5,
            short_history: ShortHistory::Drop,
            ..StockOptions::default()
        };
        let d = prepare_stock(&f, &opts).unwrap();
        assert_eq!(d.train_x.dims(), &[196, 5, 5]);
        assert_eq!(d.train_y.dims(), &[196, 1]);
        assert_eq!(d.test_x.dims(), &[53, 5, 5]);
        assert_eq!(d.sample_dates.len(), 249);
        assert_eq!(d.sample_dates[0], d.dates[4]);
        let x = to_rows(&d.train_x);
        let y = d.train_y.to_vec2::<f32>().unwrap();
        for (s, window) in x.iter().enumerate() {
            let r = s + 4;
            for (k, step) in window.iter().enumerate() {
                let want: Vec<f32> = d.features_scaled[r - 4 + k]
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                assert_eq!(step, &want, "sample {s}, step {k}");
            }
            assert_eq!(y[s][0], d.target_scaled[r] as f32);
        }
        // The first test sample predicts row 200 and reaches back into the train period.
        let tx = to_rows(&d.test_x);
        assert_eq!(tx[0][0][0], d.features_scaled[196][0] as f32);
        assert_eq!(tx[0][4][0], d.features_scaled[200][0] as f32);
        assert_eq!(d.test_dates()[0], d.dates[200]);
        assert_eq!(d.train_lengths, None);
    }

    /// Kept short histories: one sample per day, the first ones shorter than the window
    /// (their days first, then zeros), and the same full windows as dropping them after.
    #[test]
    fn kept_short_histories_give_every_row_a_sample() {
        let f = sbux();
        let d = prepare_stock(
            &f,
            &StockOptions {
                window: 5,
                ..StockOptions::default()
            },
        )
        .unwrap();
        assert_eq!(d.short_history, ShortHistory::Keep);
        assert_eq!(d.first_row(), 0);
        assert_eq!((d.train_len(), d.test_len()), (200, 53));
        assert_eq!(d.train_x.dims(), &[200, 5, 5]);
        assert_eq!(d.test_x.dims(), &[53, 5, 5]);
        assert_eq!(d.sample_dates, d.dates, "one sample per day");
        let lengths = d.train_lengths.clone().expect("lengths of the short rows");
        assert_eq!(lengths.len(), 200);
        assert_eq!(lengths[..6], [1, 2, 3, 4, 5, 5]);
        assert!(lengths[4..].iter().all(|&l| l == 5));
        let x = to_rows(&d.train_x);
        let y = d.train_y.to_vec2::<f32>().unwrap();
        for (r, (window, len)) in x.iter().zip(&lengths).enumerate() {
            let start = (r + 1).saturating_sub(5);
            for (k, step) in window.iter().enumerate() {
                let want: Vec<f32> = if k < *len {
                    d.features_scaled[start + k]
                        .iter()
                        .map(|&v| v as f32)
                        .collect()
                } else {
                    vec![0.0; 5]
                };
                assert_eq!(step, &want, "row {r}, step {k}");
            }
            assert_eq!(y[r][0], d.target_scaled[r] as f32, "row {r}");
        }
        // From row 4 on, the samples are those of dropping the short rows.
        let dropped = prepare_stock(
            &f,
            &StockOptions {
                window: 5,
                short_history: ShortHistory::Drop,
                ..StockOptions::default()
            },
        )
        .unwrap();
        assert_eq!(x[4..], to_rows(&dropped.train_x)[..]);
        assert_eq!(to_rows(&d.test_x), to_rows(&dropped.test_x));
        // At window 1 keeping changes nothing: no lengths, the same tensors.
        let one = prepare_stock(&f, &StockOptions::default()).unwrap();
        let one_drop = StockOptions {
            short_history: ShortHistory::Drop,
            ..StockOptions::default()
        };
        let one_dropped = prepare_stock(&f, &one_drop).unwrap();
        assert_eq!(one.train_lengths, None);
        assert_eq!(to_rows(&one.train_x), to_rows(&one_dropped.train_x));
        assert_eq!(one.sample_dates, one_dropped.sample_dates);
    }

    #[test]
    fn yfinance_layout_without_adj_close() {
        let dir = TempDir::new("yf");
        let path = dir.write(
            "yf.csv",
            "Date,Close,High,Low,Open,Volume\n\
             2024-01-02,10.5,11,10,10.25,100\n\
             2024-01-03,11.5,12,11,11.25,200\n\
             2024-01-04,12.5,13,12,12.25,300\n\
             2024-01-05,13.5,14,13,13.25,400\n",
        );
        let f = StockFrame::read_csv(&path).unwrap();
        assert_eq!(
            f.columns(),
            ["Date", "Close", "High", "Low", "Open", "Volume"]
        );
        // The default features include Adj Close, which this layout lacks.
        let err = prepare_stock(
            &f,
            &StockOptions {
                train_rows: 3,
                ..StockOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, DatasetError::MissingColumn { column, .. } if column == "Adj Close"),
            "{err:?}"
        );
        let opts = StockOptions {
            features: ["Open", "High", "Low", "Close"].map(String::from).to_vec(),
            train_rows: 3,
            ..StockOptions::default()
        };
        let d = prepare_stock(&f, &opts).unwrap();
        assert_eq!(d.train_x.dims(), &[3, 1, 4]);
        assert_eq!(d.test_x.dims(), &[1, 1, 4]);
        // Features follow the requested order, not the file's: Open first.
        assert_eq!(d.feature_scaler.mean, vec![11.25, 12.0, 11.0, 11.5]);
        assert_eq!(d.target_scaled, vec![0.0, 0.5, 1.0, 1.5]);
        assert_eq!(
            d.dates,
            ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
        );
    }

    #[test]
    fn extra_text_columns_are_parsed_on_demand() {
        let dir = TempDir::new("extra");
        let path = dir.write(
            "extra.csv",
            "Date,Volume,Dividends,Ticker\n2024-01-02,5,0.25,SBUX\n2024-01-03,6,x,SBUX\n",
        );
        let f = StockFrame::read_csv(&path).unwrap();
        assert_eq!(f.column("Volume").unwrap(), vec![5.0, 6.0]);
        let err = f.column("Dividends").unwrap_err();
        match &err {
            DatasetError::BadNumber {
                row, column, value, ..
            } => assert_eq!(
                (*row, column.as_str(), value.as_str()),
                (2, "Dividends", "x")
            ),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("data row 2 (line 3)"), "{err}");
        let err = f.column("Ticker").unwrap_err();
        assert!(matches!(&err, DatasetError::BadNumber { value, .. } if value == "SBUX"));
        let err = f.column("Nope").unwrap_err();
        match &err {
            DatasetError::MissingColumn {
                column, available, ..
            } => {
                assert_eq!(column, "Nope");
                assert_eq!(available, &["Date", "Volume", "Dividends", "Ticker"]);
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains("Date, Volume, Dividends, Ticker"), "{msg}");
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let dir = TempDir::new("crlf");
        let text = valid_csv(3).replace('\n', "\r\n");
        let path = dir.write("crlf.csv", &format!("\u{feff}{text}"));
        let f = StockFrame::read_csv(&path).unwrap();
        assert_eq!(f.columns()[0], "Date");
        assert_eq!(f.columns()[6], "Volume");
        assert_eq!(f.column("Volume").unwrap(), vec![1000.0, 1010.0, 1020.0]);
        assert_eq!(f.dates(), ["2020-01-01", "2020-01-02", "2020-01-03"]);
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = TempDir::new("missing");
        let path = dir.0.join("nope.csv");
        let err = StockFrame::read_csv(&path).unwrap_err();
        assert!(
            matches!(&err, DatasetError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn empty_and_header_only_files() {
        let (err, msg) = read_err("empty", "");
        assert!(matches!(err, DatasetError::Empty { .. }), "{err:?}");
        assert!(msg.ends_with("file is empty"), "{msg}");
        let (err, _) = read_err("blank", "\n\n");
        assert!(matches!(err, DatasetError::Empty { .. }), "{err:?}");
        let (err, msg) = read_err("header", HEADER);
        assert!(matches!(err, DatasetError::NoDataRows { .. }), "{err:?}");
        assert!(msg.contains("no data rows"), "{msg}");
    }

    #[test]
    fn missing_date_column_lists_available() {
        let (err, msg) = read_err("nodate", "Day,Open,Volume\n2020-01-01,1,2\n");
        match &err {
            DatasetError::MissingColumn {
                column, available, ..
            } => {
                assert_eq!(column, "Date");
                assert_eq!(available, &["Day", "Open", "Volume"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            msg.contains("\"Date\"") && msg.contains("Day, Open, Volume"),
            "{msg}"
        );
    }

    #[test]
    fn non_numeric_cell_names_row_and_column() {
        let text = valid_csv(5).replace("103,104,102", "103,abc,102");
        let (err, msg) = read_err("nonnum", &text);
        match &err {
            DatasetError::BadNumber {
                row, column, value, ..
            } => assert_eq!((*row, column.as_str(), value.as_str()), (4, "High", "abc")),
            other => panic!("{other:?}"),
        }
        assert!(msg.contains("data row 4 (line 5)"), "{msg}");
        assert!(msg.contains("\"High\"") && msg.contains("\"abc\""), "{msg}");

        // An empty cell is reported the same way.
        let text = valid_csv(3).replace(",1010\n", ",\n");
        let (err, _) = read_err("emptycell", &text);
        assert!(
            matches!(&err, DatasetError::BadNumber { row: 2, column, value, .. }
                if column == "Volume" && value.is_empty()),
            "{err:?}"
        );
    }

    #[test]
    fn nan_and_negative_volume() {
        let text = valid_csv(4).replace(",1020\n", ",NaN\n");
        let (err, msg) = read_err("nan", &text);
        assert!(
            matches!(&err, DatasetError::NonFinite { row: 3, column, value, .. }
                if column == "Volume" && value.is_nan()),
            "{err:?}"
        );
        assert!(
            msg.contains("data row 3 (line 4)") && msg.contains("NaN"),
            "{msg}"
        );
        let text = valid_csv(4).replace(",102,", ",inf,");
        let (err, _) = read_err("inf", &text);
        assert!(
            matches!(&err, DatasetError::NonFinite { row: 3, column, .. } if column == "Open"),
            "{err:?}"
        );

        let text = valid_csv(4).replace(",1010\n", ",-5\n");
        let (err, msg) = read_err("negvol", &text);
        assert!(
            matches!(&err, DatasetError::NegativeValue { row: 2, column, value, .. }
                if column == "Volume" && *value == -5.0),
            "{err:?}"
        );
        assert!(msg.contains("negative value -5"), "{msg}");
    }

    #[test]
    fn dates_must_parse_and_increase() {
        let text = valid_csv(4).replace("2020-01-03", "2020-01-02");
        let (err, msg) = read_err("dup", &text);
        assert!(
            matches!(&err, DatasetError::DateOrder { row: 3, date, previous, .. }
                if date == "2020-01-02" && previous == "2020-01-02"),
            "{err:?}"
        );
        assert!(
            msg.contains("data row 3 (line 4)") && msg.contains("repeats"),
            "{msg}"
        );

        let text = valid_csv(4).replace("2020-01-04", "2019-12-31");
        let (err, msg) = read_err("unsorted", &text);
        assert!(
            matches!(&err, DatasetError::DateOrder { row: 4, date, previous, .. }
                if date == "2019-12-31" && previous == "2020-01-03"),
            "{err:?}"
        );
        assert!(msg.contains("comes before"), "{msg}");

        let text = valid_csv(4).replace("2020-01-02", "2020-02-30");
        let (err, msg) = read_err("baddate", &text);
        assert!(
            matches!(&err, DatasetError::BadDate { row: 2, value, .. } if value == "2020-02-30"),
            "{err:?}"
        );
        assert!(
            msg.contains("data row 2 (line 3)") && msg.contains("2020-02-30"),
            "{msg}"
        );
    }

    #[test]
    fn ragged_rows_name_the_file() {
        // A short row reads as empty cells: the first missing one is reported.
        let text = format!("{}2020-02-01,1,2\n", valid_csv(3));
        let (err, msg) = read_err("short", &text);
        assert!(
            matches!(&err, DatasetError::BadNumber { row: 4, column, value, .. }
                if column == "Low" && value.is_empty()),
            "{err:?}"
        );
        assert!(msg.contains("data row 4 (line 5)"), "{msg}");
        // A long row is rejected by the CSV reader itself.
        let text = format!("{}2020-02-01,1,2,3,4,5,6,7,8\n", valid_csv(3));
        let (err, _) = read_err("long", &text);
        assert!(matches!(err, DatasetError::Csv { .. }), "{err:?}");
    }

    #[test]
    fn overflowing_columns_are_unscalable() {
        let dir = TempDir::new("overflow");
        // Every cell is finite, but the two 1e308 opens sum to +inf.
        let path = dir.write(
            "huge.csv",
            "Date,Open,High,Low,Close,Adj Close,Volume\n\
             2020-01-01,1e308,2,1,1.5,1.5,100\n\
             2020-01-02,1e308,2,1,1.5,1.5,200\n\
             2020-01-03,1,2,1,1.5,1.5,0\n\
             2020-01-04,1,2,1,1.5,1.5,5\n",
        );
        let f = StockFrame::read_csv(&path).unwrap();
        for fit_scalers_on in [FitOn::TrainOnly, FitOn::All] {
            let opts = StockOptions {
                train_rows: 2,
                fit_scalers_on,
                ..StockOptions::default()
            };
            let err = prepare_stock(&f, &opts).unwrap_err();
            match &err {
                DatasetError::Unscalable {
                    path: p,
                    row,
                    column,
                    value,
                    scaled,
                } => {
                    assert_eq!(p, &path);
                    assert_eq!((*row, column.as_str(), *value), (1, "Open", 1e308));
                    assert!(!scaled.is_finite(), "{scaled}");
                }
                other => panic!("{other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
            assert!(
                msg.contains("data row 1 (line 2), column \"Open\": 1e308 is too large to scale"),
                "{msg}"
            );
        }
        // Without the overflowing column the same file prepares fine.
        let opts = StockOptions {
            features: vec!["High".into(), "Low".into()],
            train_rows: 2,
            ..StockOptions::default()
        };
        let d = prepare_stock(&f, &opts).unwrap();
        assert!(d.features_scaled.iter().flatten().all(|v| v.is_finite()));
    }

    #[test]
    fn invalid_splits_name_the_file_and_counts() {
        let dir = TempDir::new("split");
        let path = dir.write("ten.csv", &valid_csv(10));
        let f = StockFrame::read_csv(&path).unwrap();
        let shown = path.display().to_string();
        let split_err = |opts: StockOptions| {
            let err = prepare_stock(&f, &opts).unwrap_err();
            assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains(&shown), "{msg}");
            msg
        };
        // The default 200 training rows do not fit in 10 rows.
        let msg = split_err(StockOptions::default());
        assert!(
            msg.contains("train_rows = 200") && msg.contains("10 data rows"),
            "{msg}"
        );
        let msg = split_err(StockOptions {
            train_rows: 10,
            ..StockOptions::default()
        });
        assert!(msg.contains("train_rows = 10"), "{msg}");
        let msg = split_err(StockOptions {
            train_rows: 0,
            ..StockOptions::default()
        });
        assert!(msg.contains("train_rows = 0"), "{msg}");
        let msg = split_err(StockOptions {
            train_rows: 6,
            window: 7,
            ..StockOptions::default()
        });
        assert!(
            msg.contains("window = 7") && msg.contains("train_rows = 6"),
            "{msg}"
        );
        let msg = split_err(StockOptions {
            train_rows: 6,
            window: 0,
            ..StockOptions::default()
        });
        assert!(msg.contains("window = 0"), "{msg}");
        let msg = split_err(StockOptions {
            train_rows: 6,
            features: vec![],
            ..StockOptions::default()
        });
        assert!(msg.contains("no feature"), "{msg}");

        // Window equal to train_rows leaves exactly one full training sample; keeping
        // the short histories adds the five before it.
        let full = StockOptions {
            train_rows: 6,
            window: 6,
            short_history: ShortHistory::Drop,
            ..StockOptions::default()
        };
        let d = prepare_stock(&f, &full).unwrap();
        assert_eq!(d.train_x.dims(), &[1, 6, 5]);
        assert_eq!(d.test_x.dims(), &[4, 6, 5]);
        let kept = StockOptions {
            short_history: ShortHistory::Keep,
            ..full
        };
        let d = prepare_stock(&f, &kept).unwrap();
        assert_eq!(d.train_x.dims(), &[6, 6, 5]);
        assert_eq!(d.train_lengths, Some(vec![1, 2, 3, 4, 5, 6]));
        for short_history in [ShortHistory::Keep, ShortHistory::Drop] {
            let msg = split_err(StockOptions {
                train_rows: 6,
                window: 7,
                short_history,
                ..StockOptions::default()
            });
            assert!(msg.contains("window = 7"), "{short_history:?}: {msg}");
        }

        let err = prepare_stock(
            &f,
            &StockOptions {
                train_rows: 6,
                target: "Turnover".into(),
                ..StockOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, DatasetError::MissingColumn { column, available, .. }
                if column == "Turnover" && available.len() == 7),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(&shown), "{err}");
    }
}
