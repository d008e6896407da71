//! Reading MNIST from idx files (raw or gzip-compressed) into candle tensors.
//!
//! The idx format is a big-endian header (magic number, then one `u32` per
//! dimension) followed by the raw `u8` data. Images use magic 2051
//! (`0x00000803`, dims `count, rows, cols`), labels use magic 2049
//! (`0x00000801`, dim `count`). Every check names the file it rejects.

mod idx;
mod splits;
#[cfg(test)]
mod test_support;

pub use idx::{parse_idx_images, parse_idx_labels, read_idx_images, read_idx_labels, IdxImages};
pub use splits::{load_mnist, normalize_pixels, Mnist, MnistOptions, MnistSplit, ValidationSource};

/// Magic number of an idx image file (`0x00000803`).
pub const IMAGE_MAGIC: u32 = 0x0000_0803;
/// Magic number of an idx label file (`0x00000801`).
pub const LABEL_MAGIC: u32 = 0x0000_0801;
/// Height and width of an MNIST image, in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Number of digit classes (labels are `0..=9`).
pub const NUM_CLASSES: usize = 10;

/// Canonical name of the training image file.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Canonical name of the training label file.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Canonical name of the test image file.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Canonical name of the test label file.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

pub use crate::error::{MAX_IDX_PAYLOAD, MAX_TRAILING_COUNT};
