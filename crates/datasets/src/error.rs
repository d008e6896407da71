//! Errors raised while reading MNIST idx files and building batches.
//!
//! Every variant that concerns a file names it, and every message starts with
//! that path, so a failure can be traced to the offending file at a glance.

use std::path::PathBuf;

/// Largest idx data accepted (pixels or labels), whatever a header claims: 1 GiB, over
/// twenty times MNIST's training images.
pub const MAX_IDX_PAYLOAD: u64 = 1 << 30;
/// Trailing bytes counted past the announced data before the count stops ("at least").
pub const MAX_TRAILING_COUNT: u64 = 1 << 20;

/// Everything that can go wrong while loading or batching a data set.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file exists (or was expected to) but could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The path is not a regular file, or is larger than its kind of file may be.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it was not read.
        source: crate::files::FileError,
    },

    /// An idx header announces more data than any data set of this kind holds.
    #[error(
        "{}: the idx header announces {announced} bytes of data, over the limit of {limit}",
        path.display()
    )]
    IdxTooLarge {
        /// The offending file.
        path: PathBuf,
        /// Bytes of data the header's counts and dimensions multiply to.
        announced: u64,
        /// The most accepted ([`crate::mnist::MAX_IDX_PAYLOAD`]).
        limit: u64,
    },

    /// The data directory itself does not exist or is not a directory.
    #[error("{}: data directory does not exist or is not a directory", dir.display())]
    MissingDir {
        /// The directory that was searched.
        dir: PathBuf,
    },

    /// Neither `name` nor `name.gz` exists in `dir`.
    #[error("{}: neither {name} nor {name}.gz exists in this directory", dir.display())]
    MissingFile {
        /// The directory that was searched.
        dir: PathBuf,
        /// The canonical (uncompressed) file name that was looked for.
        name: String,
    },

    /// The file (or its decompressed content) is empty.
    #[error("{}: file is empty", path.display())]
    Empty {
        /// The empty file.
        path: PathBuf,
    },

    /// An image file (a digit for `lstm predict`) cannot be used.
    #[error("{}: {message}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// The file starts with the gzip magic but its stream is corrupt or truncated.
    #[error("{}: corrupt or truncated gzip stream: {source}", path.display())]
    Gzip {
        /// The gzip file.
        path: PathBuf,
        /// The decoder's error.
        source: std::io::Error,
    },

    /// The idx magic number is not the one expected for this kind of file.
    #[error(
        "{}: bad idx magic number 0x{found:08x}, expected 0x{expected:08x} \
         (images use 2051 = 0x00000803, labels use 2049 = 0x00000801)",
        path.display()
    )]
    BadMagic {
        /// The offending file.
        path: PathBuf,
        /// The magic number this reader expects.
        expected: u32,
        /// The magic number found in the file.
        found: u32,
    },

    /// The header, or the data the header announces, is shorter than required.
    #[error(
        "{}: truncated idx data: expected {expected_bytes} bytes, found {found_bytes}",
        path.display()
    )]
    Truncated {
        /// The offending file.
        path: PathBuf,
        /// Bytes needed (header plus the data the header announces).
        expected_bytes: u64,
        /// Bytes actually present (after decompression).
        found_bytes: u64,
    },

    /// The file holds more bytes than its header announces.
    #[error(
        "{}: {}{extra} unexpected trailing bytes after the idx data",
        path.display(),
        if *extra >= MAX_TRAILING_COUNT { "at least " } else { "" }
    )]
    TrailingBytes {
        /// The offending file.
        path: PathBuf,
        /// How many bytes follow the announced data (counted up to
        /// [`MAX_TRAILING_COUNT`]).
        extra: u64,
    },

    /// The image dimensions are not 28x28.
    #[error("{}: unsupported image dimensions {rows}x{cols}, expected 28x28", path.display())]
    BadDimensions {
        /// The offending file.
        path: PathBuf,
        /// Rows per image in the header.
        rows: usize,
        /// Columns per image in the header.
        cols: usize,
    },

    /// The image and label files hold different numbers of items.
    #[error(
        "{}: {images} images, but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Number of images in it.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Number of labels in it.
        labels: usize,
    },

    /// A label is not a digit class.
    #[error("{}: label {label} at index {index} is out of range 0..=9", path.display())]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// Index of the bad label (0-based).
        index: usize,
        /// The bad label value.
        label: u8,
    },

    /// A split, limit, batch size or index request cannot be satisfied.
    #[error("invalid split: {message}")]
    InvalidSplit {
        /// What is wrong.
        message: String,
    },

    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),

    /// A CSV file holds a header but no data rows.
    #[error("{}: no data rows after the header", path.display())]
    NoDataRows {
        /// The offending file.
        path: PathBuf,
    },

    /// A column that is required, or that was asked for, is not in the CSV header.
    #[error(
        "{}: missing column {column:?} (available columns: {})",
        path.display(),
        available.join(", ")
    )]
    MissingColumn {
        /// The offending file.
        path: PathBuf,
        /// The column that was looked for.
        column: String,
        /// The columns the header does hold, in file order.
        available: Vec<String>,
    },

    /// Two columns of a CSV header have the same name.
    #[error("{}: column {column:?} appears more than once in the header", path.display())]
    DuplicateColumn {
        /// The offending file.
        path: PathBuf,
        /// The repeated name.
        column: String,
    },

    /// A CSV holds NUL bytes: not UTF-8 text (UTF-16, or a binary file).
    #[error(
        "{}: holds NUL bytes, so it is not UTF-8 text (UTF-16 or a binary file?); \
         save it as a UTF-8 CSV",
        path.display()
    )]
    NotUtf8Text {
        /// The offending file.
        path: PathBuf,
    },

    /// A CSV header is a single column with another separator inside it.
    #[error(
        "{}: the header is one column containing {separator}: columns must be separated \
         by commas",
        path.display()
    )]
    WrongSeparator {
        /// The offending file.
        path: PathBuf,
        /// The separator found, in words ("tabs", "semicolons").
        separator: String,
    },

    /// A cell of a numeric column is empty or not a number.
    #[error(
        "{}: data row {row} (line {}), column {column:?}: {value:?} is not a number",
        path.display(),
        row + 1
    )]
    BadNumber {
        /// The offending file.
        path: PathBuf,
        /// 1-based data row (the header is line 1, so the row is on line `row + 1`).
        row: usize,
        /// The column of the cell.
        column: String,
        /// The cell's text (empty for an empty cell).
        value: String,
    },

    /// A numeric cell is NaN or infinite.
    #[error(
        "{}: data row {row} (line {}), column {column:?}: {value} is not a finite number",
        path.display(),
        row + 1
    )]
    NonFinite {
        /// The offending file.
        path: PathBuf,
        /// 1-based data row (on line `row + 1`).
        row: usize,
        /// The column of the cell.
        column: String,
        /// The value read (NaN or ±inf).
        value: f64,
    },

    /// A cell that must not be negative (a traded volume) is.
    #[error(
        "{}: data row {row} (line {}), column {column:?}: negative value {value}",
        path.display(),
        row + 1
    )]
    NegativeValue {
        /// The offending file.
        path: PathBuf,
        /// 1-based data row (on line `row + 1`).
        row: usize,
        /// The column of the cell.
        column: String,
        /// The negative value.
        value: f64,
    },

    /// A finite cell scales to NaN or ±inf: its column's values are so large
    /// that the scaler's mean, spread or range overflows `f64` (e.g. `1e308`).
    #[error(
        "{}: data row {row} (line {}), column {column:?}: {value:?} is too large to scale \
         (scaled to {scaled:?}: the column's mean, spread or range overflows f64)",
        path.display(),
        row + 1
    )]
    Unscalable {
        /// The offending file.
        path: PathBuf,
        /// 1-based data row (on line `row + 1`).
        row: usize,
        /// The column of the cell.
        column: String,
        /// The (finite) value read.
        value: f64,
        /// What scaling made of it (NaN or ±inf).
        scaled: f64,
    },

    /// A date cell is empty or not a valid `YYYY-MM-DD` date.
    #[error(
        "{}: data row {row} (line {}), column {column:?}: {value:?} is not a valid YYYY-MM-DD date",
        path.display(),
        row + 1
    )]
    BadDate {
        /// The offending file.
        path: PathBuf,
        /// 1-based data row (on line `row + 1`).
        row: usize,
        /// The date column.
        column: String,
        /// The cell's text.
        value: String,
    },

    /// The dates are not strictly increasing: a date repeats or goes back in time.
    #[error(
        "{}: data row {row} (line {}): date {date} {} {previous} of the row before; \
         dates must be strictly increasing",
        path.display(),
        row + 1,
        if date == previous { "repeats the date" } else { "comes before the date" }
    )]
    DateOrder {
        /// The offending file.
        path: PathBuf,
        /// 1-based data row of the offending date (on line `row + 1`).
        row: usize,
        /// The offending date, `YYYY-MM-DD`.
        date: String,
        /// The date of the row before, `YYYY-MM-DD`.
        previous: String,
    },

    /// The CSV reader (polars) rejected the file, e.g. ragged rows or bad quoting.
    #[error("{}: cannot parse as CSV: {source}", path.display())]
    Csv {
        /// The offending file.
        path: PathBuf,
        /// The reader's error.
        source: polars::error::PolarsError,
    },

    /// A scaler was fitted on unusable data or applied to data of the wrong width.
    #[error("scaler: {message}")]
    Scaler {
        /// What is wrong.
        message: String,
    },

    /// A data set could not be loaded from the Hugging Face Hub (the `hub` feature):
    /// its files are neither in the local cache nor downloadable (no network), a cached
    /// file is corrupt, or the content is not what the loader expects.
    #[error(
        "{}: cannot load Hugging Face dataset {repo} (from this cache, or the Hub when \
         files are missing): {cause}",
        cache_dir.display()
    )]
    Hub {
        /// The Hub repository, e.g. `ylecun/mnist`.
        repo: String,
        /// The local Hugging Face Hub cache that was searched (`HF_HUB_CACHE`,
        /// else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
        cache_dir: PathBuf,
        /// What went wrong, as the loader reported it.
        cause: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_path() {
        let e = DatasetError::LabelOutOfRange {
            path: PathBuf::from("data/mnist/train-labels-idx1-ubyte.gz"),
            index: 3,
            label: 12,
        };
        assert_eq!(
            e.to_string(),
            "data/mnist/train-labels-idx1-ubyte.gz: label 12 at index 3 is out of range 0..=9"
        );

        let e = DatasetError::BadMagic {
            path: PathBuf::from("x.idx"),
            expected: 2051,
            found: 0x0102_0304,
        };
        let s = e.to_string();
        assert!(s.starts_with("x.idx: "), "{s}");
        assert!(s.contains("0x01020304"), "{s}");
        assert!(s.contains("0x00000803"), "{s}");
        assert!(s.contains("2051") && s.contains("2049"), "{s}");

        let e = DatasetError::CountMismatch {
            images_path: PathBuf::from("a"),
            images: 3,
            labels_path: PathBuf::from("b"),
            labels: 2,
        };
        assert_eq!(e.to_string(), "a: 3 images, but b holds 2 labels");

        let e = DatasetError::MissingFile {
            dir: PathBuf::from("d"),
            name: "f".into(),
        };
        assert_eq!(
            e.to_string(),
            "d: neither f nor f.gz exists in this directory"
        );
    }
}
