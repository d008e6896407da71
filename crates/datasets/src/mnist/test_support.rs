//! Fixtures shared by the MNIST tests: idx files built in memory, gzipped, or written
//! out as a whole MNIST directory.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::{IMAGE_MAGIC, LABEL_MAGIC, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::test_support::TempDir;

pub(super) fn image_bytes(
    count: u32,
    rows: u32,
    cols: u32,
    pixel: impl Fn(usize) -> u8,
) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [IMAGE_MAGIC, count, rows, cols] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let n = count as usize * rows as usize * cols as usize;
    out.extend((0..n).map(pixel));
    out
}

/// Image `i` is filled with the value `i * 10`, except pixel 0 which is 255.
pub(super) fn patterned_images(count: u32) -> Vec<u8> {
    image_bytes(count, 28, 28, |k| {
        if k % 784 == 0 {
            255
        } else {
            ((k / 784) * 10) as u8
        }
    })
}

pub(super) fn label_bytes(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&LABEL_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

pub(super) fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip write");
    enc.finish().expect("gzip finish")
}

/// Writes a complete synthetic MNIST directory (train gzipped, test raw).
pub(super) fn write_mnist(dir: &TempDir, train_labels: &[u8], test_labels: &[u8]) {
    dir.write(
        &format!("{TRAIN_IMAGES}.gz"),
        &gz(&patterned_images(train_labels.len() as u32)),
    );
    dir.write(
        &format!("{TRAIN_LABELS}.gz"),
        &gz(&label_bytes(train_labels)),
    );
    dir.write(TEST_IMAGES, &patterned_images(test_labels.len() as u32));
    dir.write(TEST_LABELS, &label_bytes(test_labels));
}
