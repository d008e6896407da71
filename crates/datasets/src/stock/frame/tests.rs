//! Reading and checking stock CSVs: the real SBUX file, other layouts, and every
//! rejected input with the row and column it names.

use super::*;
use crate::stock::test_support::{sbux, valid_csv, HEADER};
use crate::test_support::TempDir;

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
