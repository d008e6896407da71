//! [`StockFrame`]: a stock CSV read, checked cell by cell and kept as a polars frame.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use polars::prelude::{
    Column, CsvReadOptions, DataFrame, DataType, Int32Chunked, IntoColumn, SerReader,
};

use super::date::{format_date, parse_date};
use super::{DATE_COLUMN, NUMERIC_COLUMNS, VOLUME_COLUMN};
use crate::error::DatasetError;

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

#[cfg(test)]
mod tests;
