//! MNIST as tensors: the normalisation, the train / validation / test splits
//! ([`MnistSplit`], [`Mnist`], [`MnistOptions`]) and [`load_mnist`].

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::{read_idx_images, read_idx_labels, IdxImages};
use super::{IMAGE_SIDE, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::error::DatasetError;

/// Mean subtracted after scaling pixels to `[0, 1]`.
const PIXEL_MEAN: f32 = 0.5;
/// Standard deviation divided out after subtracting the mean.
const PIXEL_STD: f32 = 1.0;

/// The textbook's transform: `x / 255`, then `(x - 0.5) / 1.0`, giving `[-0.5, 0.5]`.
pub fn normalize_pixels(pixels: &[u8]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&p| (f32::from(p) / 255.0 - PIXEL_MEAN) / PIXEL_STD)
        .collect()
}

/// One split of MNIST as CPU tensors.
#[derive(Clone, Debug)]
pub struct MnistSplit {
    /// Normalised images, shape `(N, 28, 28)`, dtype `f32`.
    pub images: Tensor,
    /// Digit labels, shape `(N,)`, dtype `u32`.
    pub labels: Tensor,
}

impl MnistSplit {
    /// Builds a split from raw pixels (`N * 784` bytes) and `N` labels.
    fn from_raw(pixels: &[u8], labels: &[u8]) -> Result<Self, DatasetError> {
        let n = labels.len();
        let images = Tensor::from_vec(
            normalize_pixels(pixels),
            (n, IMAGE_SIDE, IMAGE_SIDE),
            &Device::Cpu,
        )?;
        let labels = Tensor::from_vec(
            labels.iter().map(|&l| u32::from(l)).collect::<Vec<u32>>(),
            n,
            &Device::Cpu,
        )?;
        Ok(Self { images, labels })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.elem_count()
    }

    /// Whether the split holds no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gathers the given rows: images `(B, 28, 28)` and labels `(B,)`.
    ///
    /// Any index `>= len()` is rejected with [`DatasetError::InvalidSplit`].
    pub fn batch(&self, indices: &[u32]) -> Result<(Tensor, Tensor), DatasetError> {
        let len = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= len) {
            return Err(DatasetError::InvalidSplit {
                message: format!("batch index {bad} is out of range for a split of {len} examples"),
            });
        }
        let ids = Tensor::from_slice(indices, indices.len(), self.labels.device())?;
        let images = self.images.index_select(&ids, 0)?;
        let labels = self.labels.index_select(&ids, 0)?;
        Ok((images, labels))
    }

    /// The first `n` examples (all of them when `n >= len()`).
    pub fn take(&self, n: usize) -> Result<MnistSplit, DatasetError> {
        let n = n.min(self.len());
        Ok(Self {
            images: self.images.narrow(0, 0, n)?,
            labels: self.labels.narrow(0, 0, n)?,
        })
    }
}

/// Which split to evaluate on during training.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValidationSource {
    /// The held-out tail of the training file ([`Mnist::validation`]).
    #[default]
    HeldOut,
    /// The test file ([`Mnist::test`]), as the textbook does.
    Test,
}

/// How to split and trim MNIST when loading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MnistOptions {
    /// Images taken from the end of the training file for validation (0 = none).
    pub validation_size: usize,
    /// Keep only the first N remaining training examples.
    pub train_limit: Option<usize>,
    /// Keep only the first N test examples.
    pub test_limit: Option<usize>,
}

impl Default for MnistOptions {
    /// 5000 validation images, no limits.
    fn default() -> Self {
        Self {
            validation_size: 5000,
            train_limit: None,
            test_limit: None,
        }
    }
}

/// MNIST loaded into CPU tensors.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// Training examples (the training file minus the validation tail).
    pub train: MnistSplit,
    /// The last `validation_size` images of the training file, if any.
    pub validation: Option<MnistSplit>,
    /// The test file.
    pub test: MnistSplit,
}

impl Mnist {
    /// The split selected by `source`; an error if `HeldOut` was requested but none was loaded.
    pub fn validation_split(&self, source: ValidationSource) -> Result<&MnistSplit, DatasetError> {
        match source {
            ValidationSource::Test => Ok(&self.test),
            ValidationSource::HeldOut => {
                self.validation
                    .as_ref()
                    .ok_or_else(|| DatasetError::InvalidSplit {
                        message: "no held-out validation split was loaded (validation_size = 0)"
                            .into(),
                    })
            }
        }
    }
}

/// Finds `name`, or failing that `name.gz`, in `dir` (the uncompressed file wins).
fn find_file(dir: &Path, name: &str) -> Result<PathBuf, DatasetError> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DatasetError::MissingFile {
        dir: dir.to_path_buf(),
        name: name.to_string(),
    })
}

/// Reads an image/label file pair and checks that their counts agree.
fn read_pair(images_path: &Path, labels_path: &Path) -> Result<(IdxImages, Vec<u8>), DatasetError> {
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if images.count != labels.len() {
        return Err(DatasetError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.count,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    Ok((images, labels))
}

/// Loads the four canonical MNIST files (each as `name` or `name.gz`) from `dir`.
///
/// Validation is the last `validation_size` images of the training file and
/// train is the rest; `train_limit` and `test_limit` then keep the first N
/// examples of train and test. All tensors live on [`Device::Cpu`].
pub fn load_mnist(dir: &Path, opts: &MnistOptions) -> Result<Mnist, DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::MissingDir {
            dir: dir.to_path_buf(),
        });
    }
    // Locate everything before the (slow) decoding, so a missing file fails fast.
    let train_images_path = find_file(dir, TRAIN_IMAGES)?;
    let train_labels_path = find_file(dir, TRAIN_LABELS)?;
    let test_images_path = find_file(dir, TEST_IMAGES)?;
    let test_labels_path = find_file(dir, TEST_LABELS)?;

    let (train_images, train_labels) = read_pair(&train_images_path, &train_labels_path)?;
    let (test_images, test_labels) = read_pair(&test_images_path, &test_labels_path)?;
    Mnist::from_raw(
        (&train_images.pixels, &train_labels),
        (&test_images.pixels, &test_labels),
        opts,
        &train_images_path.display().to_string(),
    )
}

impl Mnist {
    /// Splits and trims raw MNIST, `(pixels, labels)` per file: `N * 784` pixel bytes
    /// (row-major 28x28 images, `0..=255`) and `N` labels (`0..=9`, checked by the caller).
    ///
    /// Validation is the last `validation_size` training images and train is the rest;
    /// `train_limit` and `test_limit` then keep the first N examples of train and test.
    /// `origin` names the training data in error messages. Every loader ends here, so
    /// they all split the same way.
    pub(crate) fn from_raw(
        (train_pixels, train_labels): (&[u8], &[u8]),
        (test_pixels, test_labels): (&[u8], &[u8]),
        opts: &MnistOptions,
        origin: &str,
    ) -> Result<Self, DatasetError> {
        let pixels_per_image = IMAGE_SIDE * IMAGE_SIDE;
        for (name, pixels, labels) in [
            ("training", train_pixels, train_labels),
            ("test", test_pixels, test_labels),
        ] {
            if pixels.len() != labels.len() * pixels_per_image {
                return Err(DatasetError::InvalidSplit {
                    message: format!(
                        "{origin}: {} {name} pixel bytes for {} labels (expected {} per image)",
                        pixels.len(),
                        labels.len(),
                        pixels_per_image
                    ),
                });
            }
        }
        let total = train_labels.len();
        if opts.validation_size > 0 && opts.validation_size >= total {
            return Err(DatasetError::InvalidSplit {
                message: format!(
                    "validation size {} must be smaller than the {total} training examples in {origin}",
                    opts.validation_size,
                ),
            });
        }
        let split_at = total - opts.validation_size;
        let train_n = opts.train_limit.map_or(split_at, |l| l.min(split_at));
        let train = MnistSplit::from_raw(
            &train_pixels[..train_n * pixels_per_image],
            &train_labels[..train_n],
        )?;
        let validation = if opts.validation_size == 0 {
            None
        } else {
            Some(MnistSplit::from_raw(
                &train_pixels[split_at * pixels_per_image..],
                &train_labels[split_at..],
            )?)
        };
        let test_n = opts
            .test_limit
            .map_or(test_labels.len(), |l| l.min(test_labels.len()));
        if test_n == 0 {
            return Err(DatasetError::InvalidSplit {
                message: format!(
                    "no test images to evaluate: the test set beside {origin} holds {} \
                     images and the test limit is {} (it must be at least 1)",
                    test_labels.len(),
                    opts.test_limit
                        .map_or_else(|| "not set".to_string(), |l| l.to_string()),
                ),
            });
        }
        let test = MnistSplit::from_raw(
            &test_pixels[..test_n * pixels_per_image],
            &test_labels[..test_n],
        )?;
        Ok(Self {
            train,
            validation,
            test,
        })
    }
}

#[cfg(test)]
mod tests;
