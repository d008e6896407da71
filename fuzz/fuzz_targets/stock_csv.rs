//! Fuzzes the stock CSV loader on arbitrary bytes, then `prepare_stock` on
//! every frame that parses.
//!
//! Parsing must return `Ok` or a typed error naming the fake path, never
//! panic (in our code or in polars). A frame that parses is prepared with the
//! book's options and with small splits that fit a short fuzzed file, which
//! must also never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lstm_datasets::{prepare_stock, ShortHistory, StockFrame, StockOptions};

const PATH: &str = "fuzz/input.csv";

fuzz_target!(|data: &[u8]| {
    let frame = match StockFrame::from_csv_bytes(Path::new(PATH), data.to_vec()) {
        Ok(frame) => frame,
        Err(e) => {
            assert!(e.to_string().starts_with(PATH), "{e}");
            return;
        }
    };
    assert!(!frame.is_empty());
    assert_eq!(frame.dates().len(), frame.len());
    let rows = frame.len();
    let train_rows = (rows / 2).max(1);
    let numeric: Vec<String> = frame
        .columns()
        .into_iter()
        .filter(|c| c != "Date")
        .collect();
    let mut options = vec![
        StockOptions::default(),
        StockOptions::book(),
        StockOptions {
            train_rows,
            window: train_rows.min(2),
            ..StockOptions::default()
        },
        StockOptions {
            train_rows,
            window: train_rows.min(2),
            short_history: ShortHistory::Drop,
            ..StockOptions::default()
        },
    ];
    if let Some(target) = numeric.last() {
        options.push(StockOptions {
            features: numeric.clone(),
            target: target.clone(),
            train_rows,
            window: 1,
            ..StockOptions::book()
        });
    }
    for opts in &options {
        match prepare_stock(&frame, opts) {
            Ok(d) => {
                assert_eq!(d.dates.len(), rows);
                assert_eq!(d.train_len() + d.test_len(), rows - d.first_row());
                assert_eq!(d.sample_dates.len(), rows - d.first_row());
                // Finite input must scale to finite values, or be rejected.
                assert!(d.target_scaled.iter().all(|v| v.is_finite()));
                assert!(d.features_scaled.iter().flatten().all(|v| v.is_finite()));
            }
            Err(e) => assert!(
                e.to_string().contains(PATH) || e.to_string().starts_with("scaler"),
                "{e}"
            ),
        }
    }
});
