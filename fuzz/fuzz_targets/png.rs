//! Fuzzes `lstm predict`'s image decoding on arbitrary bytes: the dimensions are read
//! and checked before decoding, so every input gives 784 MNIST-style pixels or a typed
//! error naming the fake path, never a panic or an allocation from an unchecked size.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lstm_datasets::digit_from_image_bytes;

const PATH: &str = "fuzz/digit.png";

fuzz_target!(|data: &[u8]| {
    match digit_from_image_bytes(Path::new(PATH), data) {
        Ok(pixels) => assert_eq!(pixels.len(), 28 * 28),
        Err(e) => assert!(e.to_string().starts_with(PATH), "{e}"),
    }
});
