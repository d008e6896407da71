//! MNIST from the Hugging Face Hub, through candle-datasets (the `hub` feature).
//!
//! [`load_mnist_from_hub`] calls candle-datasets' own loader,
//! [`candle_datasets::vision::mnist::load`], which asks hf-hub for the parquet
//! conversion of the dataset [`HUB_REPO`] (revision [`HUB_REVISION`], files
//! [`HUB_TRAIN_FILE`] and [`HUB_TEST_FILE`]; each row holds a PNG image and an
//! `int64` label). hf-hub looks in the local cache first and only goes to the network
//! for files it lacks, so once the files are cached the load works offline.
//!
//! The cache is hf-hub's: `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//! `~/.cache/huggingface/hub` (see [`hub_cache_dir`]); `$HF_ENDPOINT` replaces
//! `https://huggingface.co`. Inside it the files are
//! `datasets--ylecun--mnist/snapshots/<commit>/mnist/{train,test}/0000.parquet`,
//! with the commit read from `datasets--ylecun--mnist/refs/refs/convert/parquet`.
//!
//! The images come back as the same [`Mnist`] that [`crate::load_mnist`] builds from
//! idx files: the same normalisation, validation split and limits.

use std::path::PathBuf;

use candle_core::{DType, Tensor};

use crate::error::DatasetError;
use crate::mnist::{Mnist, MnistOptions, IMAGE_SIDE, NUM_CLASSES};

/// The Hub dataset candle-datasets loads MNIST from.
pub const HUB_REPO: &str = "ylecun/mnist";
/// The revision candle-datasets asks for: the Hub's parquet conversion of the dataset.
pub const HUB_REVISION: &str = "refs/convert/parquet";
/// The training split's file in [`HUB_REPO`] at [`HUB_REVISION`].
pub const HUB_TRAIN_FILE: &str = "mnist/train/0000.parquet";
/// The test split's file in [`HUB_REPO`] at [`HUB_REVISION`].
pub const HUB_TEST_FILE: &str = "mnist/test/0000.parquet";

/// The Hugging Face Hub cache hf-hub uses, from the environment (see the module docs).
pub fn hub_cache_dir() -> PathBuf {
    hf_hub::resolve_cache_dir()
}

/// Loads MNIST with candle-datasets from the Hugging Face Hub cache, downloading the
/// two parquet files first if they are not cached (see the module docs).
///
/// Validation is the last `validation_size` training images and train is the rest;
/// `train_limit` and `test_limit` keep the first N examples, as in [`crate::load_mnist`].
/// Every failure (no network and no cached copy, a corrupt cached file, content that
/// is not MNIST) is a [`DatasetError::Hub`] naming the cache directory; a panic inside
/// candle-datasets (it unwraps the PNG decoding) is caught and reported the same way.
pub fn load_mnist_from_hub(opts: &MnistOptions) -> Result<Mnist, DatasetError> {
    let cache_dir = hub_cache_dir();
    let hub_error = |cause: String| DatasetError::Hub {
        repo: HUB_REPO.to_string(),
        cache_dir: cache_dir.clone(),
        cause,
    };
    let dataset = match std::panic::catch_unwind(candle_datasets::vision::mnist::load) {
        Ok(Ok(dataset)) => dataset,
        Ok(Err(e)) => return Err(hub_error(e.to_string())),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            return Err(hub_error(format!("candle-datasets panicked: {what}")));
        }
    };
    let train_pixels =
        pixels(&dataset.train_images).map_err(|e| hub_error(format!("{HUB_TRAIN_FILE}: {e}")))?;
    let train_labels =
        labels(&dataset.train_labels).map_err(|e| hub_error(format!("{HUB_TRAIN_FILE}: {e}")))?;
    let test_pixels =
        pixels(&dataset.test_images).map_err(|e| hub_error(format!("{HUB_TEST_FILE}: {e}")))?;
    let test_labels =
        labels(&dataset.test_labels).map_err(|e| hub_error(format!("{HUB_TEST_FILE}: {e}")))?;
    Mnist::from_raw(
        (&train_pixels, &train_labels),
        (&test_pixels, &test_labels),
        opts,
        &format!("{HUB_REPO} {HUB_TRAIN_FILE}"),
    )
}

/// Back to `u8` pixels: candle-datasets gives `(N, 784)` `f32` values `p / 255`.
fn pixels(images: &Tensor) -> Result<Vec<u8>, String> {
    let per_image = IMAGE_SIDE * IMAGE_SIDE;
    match images.dims() {
        &[_, n] if n == per_image => {}
        dims => {
            return Err(format!(
                "images of shape {dims:?}, expected (N, {per_image})"
            ))
        }
    }
    let values = images
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| e.to_string())?;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if (0.0..=1.0).contains(&v) {
                // p / 255 in f32 rounds back to p exactly.
                Ok((v * 255.0).round() as u8)
            } else {
                Err(format!(
                    "pixel {} of image {} is {v}, expected a value in [0, 1]",
                    i % per_image,
                    i / per_image
                ))
            }
        })
        .collect()
}

/// The labels as `u8`, each checked to be a digit class.
fn labels(labels: &Tensor) -> Result<Vec<u8>, String> {
    let values = labels
        .flatten_all()
        .and_then(|t| t.to_vec1::<u8>())
        .map_err(|e| e.to_string())?;
    if let Some((index, &label)) = values
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= NUM_CLASSES)
    {
        return Err(format!(
            "label {label} at index {index} is out of range 0..=9"
        ));
    }
    Ok(values)
}
