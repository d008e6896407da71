//! Fuzzes the MNIST idx parsers (gzip detection included) on arbitrary bytes.
//!
//! The same bytes go through both the image and the label parser: whatever
//! they are, each must return `Ok` or a typed error naming the fake path,
//! and never panic, overflow or allocate from an unchecked header count.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lstm_datasets::{parse_idx_images, parse_idx_labels};

const PATH: &str = "fuzz/input.idx";

fuzz_target!(|data: &[u8]| {
    let path = Path::new(PATH);
    match parse_idx_images(path, data.to_vec()) {
        Ok(images) => {
            assert_eq!((images.rows, images.cols), (28, 28));
            assert_eq!(images.pixels.len(), images.count * 28 * 28);
        }
        Err(e) => assert!(e.to_string().starts_with(PATH), "{e}"),
    }
    match parse_idx_labels(path, data.to_vec()) {
        Ok(labels) => assert!(labels.iter().all(|&l| l <= 9)),
        Err(e) => assert!(e.to_string().starts_with(PATH), "{e}"),
    }
});
