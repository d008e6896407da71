//! Replays the fuzzing regression corpus (`tests/fuzz-regressions/`) through the
//! byte-level entry points on every `cargo test`.
//!
//! Every file must give `Ok` or a typed error without panicking. By name:
//! a `crash-…` file (an input that once crashed a fuzz target) must give an
//! error that names the fake path it was parsed under: for idx files from
//! the parser its name says (`crash-images-…`, `crash-labels-…`, or both
//! parsers for any other `crash-…`); for stock files from
//! `StockFrame::from_csv_bytes` (`crash-parse-…`) or, for a file that parses,
//! from `prepare_stock` (`crash-prepare-…`). An `ok-…` file must parse; any
//! other file (an interesting corpus entry) may do either. See
//! `fuzz/README.md`.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use lstm_datasets::{parse_idx_images, parse_idx_labels, prepare_stock, StockFrame, StockOptions};

/// The fake path every input is parsed under; errors must name it.
const FAKE: &str = "fuzz-regressions/input";

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fuzz-regressions")
        .join(kind);
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no regression inputs", dir.display());
    files
}

/// Runs `f`, turning a panic into a test failure that names the input.
fn no_panic<T>(name: &str, what: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| panic!("{name}: {what} panicked instead of returning an error"))
}

/// Checks a parse result against what the file's name promises.
fn check<T, E: std::fmt::Display>(
    name: &str,
    what: &str,
    result: &Result<T, E>,
    expect_err: bool,
) -> bool {
    match result {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(FAKE),
                "{name}: {what}: error does not start with the path {FAKE:?}: {msg}"
            );
            true
        }
        Ok(_) => {
            assert!(!expect_err, "{name}: {what} accepted a known crash input");
            false
        }
    }
}

#[test]
fn idx_regressions() {
    let path = PathBuf::from(FAKE);
    let mut crashes = 0;
    for (name, bytes) in corpus("idx") {
        let images = no_panic(&name, "parse_idx_images", || {
            parse_idx_images(&path, bytes.clone())
        });
        let labels = no_panic(&name, "parse_idx_labels", || {
            parse_idx_labels(&path, bytes.clone())
        });
        if let Ok(images) = &images {
            assert_eq!(images.pixels.len(), images.count * 28 * 28, "{name}");
        }
        if let Ok(labels) = &labels {
            assert!(labels.iter().all(|&l| l <= 9), "{name}");
        }
        let crash = name.starts_with("crash-");
        let (images_crash, labels_crash) = if name.starts_with("crash-images-") {
            (true, false)
        } else if name.starts_with("crash-labels-") {
            (false, true)
        } else {
            (crash, crash)
        };
        check(&name, "parse_idx_images", &images, images_crash);
        check(&name, "parse_idx_labels", &labels, labels_crash);
        if name.starts_with("ok-") {
            assert!(
                images.is_ok() || labels.is_ok(),
                "{name}: neither parser accepted it: {:?} / {:?}",
                images.err().map(|e| e.to_string()),
                labels.err().map(|e| e.to_string())
            );
        }
        crashes += usize::from(crash);
    }
    eprintln!("idx: {crashes} known crash inputs replayed");
}

#[test]
fn stock_regressions() {
    let path = PathBuf::from(FAKE);
    let mut crashes = 0;
    for (name, bytes) in corpus("stock") {
        let frame = no_panic(&name, "StockFrame::from_csv_bytes", || {
            StockFrame::from_csv_bytes(&path, bytes.clone())
        });
        let parse_crash = name.starts_with("crash-parse-");
        let prepare_crash = name.starts_with("crash-prepare-");
        assert!(
            !name.starts_with("crash-") || parse_crash || prepare_crash,
            "{name}: name a stock crash input crash-parse-… or crash-prepare-…"
        );
        crashes += usize::from(parse_crash || prepare_crash);
        check(&name, "StockFrame::from_csv_bytes", &frame, parse_crash);
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                assert!(!name.starts_with("ok-"), "{name}: {e}");
                assert!(!prepare_crash, "{name}: should parse, got {e}");
                continue;
            }
        };
        assert_eq!(frame.path(), path.as_path(), "{name}");
        assert_eq!(frame.dates().len(), frame.len(), "{name}");
        // The fuzz target's options: the book's, and a split that fits a short file.
        let train_rows = (frame.len() / 2).max(1);
        let mut errors = 0;
        for opts in [
            StockOptions::default(),
            StockOptions::book(),
            StockOptions {
                train_rows,
                window: train_rows.min(2),
                ..StockOptions::default()
            },
        ] {
            let prepared = no_panic(&name, "prepare_stock", || prepare_stock(&frame, &opts));
            match prepared {
                Ok(d) => {
                    assert_eq!(d.dates.len(), frame.len(), "{name}");
                    assert!(
                        d.features_scaled.iter().flatten().all(|v| v.is_finite())
                            && d.target_scaled.iter().all(|v| v.is_finite()),
                        "{name}: prepare_stock returned non-finite scaled values"
                    );
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(FAKE), "{name}: {msg}");
                    errors += 1;
                }
            }
        }
        // A prepare crash must now fail even with the split that fits the file.
        if prepare_crash {
            assert_eq!(
                errors, 3,
                "{name}: prepare_stock accepted a known crash input"
            );
        }
    }
    eprintln!("stock: {crashes} known crash inputs replayed");
}

#[test]
fn png_regressions() {
    let path = PathBuf::from(FAKE);
    let mut crashes = 0;
    for (name, bytes) in corpus("png") {
        let digit = no_panic(&name, "digit_from_image_bytes", || {
            lstm_datasets::digit_from_image_bytes(&path, &bytes)
        });
        if let Ok(pixels) = &digit {
            assert_eq!(pixels.len(), 784, "{name}");
        }
        let crash = name.starts_with("crash-");
        check(&name, "digit_from_image_bytes", &digit, crash);
        if name.starts_with("ok-") {
            assert!(
                digit.is_ok(),
                "{name}: {:?}",
                digit.err().map(|e| e.to_string())
            );
        }
        crashes += usize::from(crash);
    }
    eprintln!("png: {crashes} known crash inputs replayed");
}
