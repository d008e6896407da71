//! Fixtures shared by the stock tests: the book's SBUX file and small valid CSVs.

use std::path::Path;

use super::{format_date, StockFrame};

const SBUX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/SBUX.csv");

pub(super) const HEADER: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n";

/// A classic-layout CSV of `n` valid rows starting 2020-01-01.
pub(super) fn valid_csv(n: usize) -> String {
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

pub(super) fn sbux() -> StockFrame {
    StockFrame::read_csv(Path::new(SBUX)).expect("read data/SBUX.csv")
}
