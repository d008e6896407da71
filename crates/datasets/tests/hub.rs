//! `load_mnist_from_hub` against a fake Hugging Face cache, with no network.
//!
//! The test writes, under a temporary `$HF_HOME`, the files hf-hub would have cached
//! after downloading MNIST for candle-datasets — in hf-hub's layout:
//!
//! ```text
//! $HF_HOME/hub/datasets--ylecun--mnist/
//!   refs/refs/convert/parquet              the commit of the parquet conversion
//!   blobs/<etag>                           the parquet files' bytes
//!   snapshots/<commit>/mnist/train/0000.parquet -> ../../../../blobs/<etag>
//!   snapshots/<commit>/mnist/test/0000.parquet  -> ../../../../blobs/<etag>
//! ```
//!
//! Each parquet file has the Hub's MNIST schema (`image: {bytes, path}`, `label: int64`)
//! and holds a few PNG-encoded 28x28 digits with known pixels and labels.
//!
//! hf-hub 1.0 has no offline switch (it ignores `HF_HUB_OFFLINE`); candle-datasets asks
//! it for cached files first and only downloads what is missing. So that a missing file
//! can never reach the network, `HF_ENDPOINT` points at a closed local port.
//!
//! The environment is process-wide, so everything runs in one test function.

#![cfg(feature = "hub")]

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lstm_datasets::hub::{hub_cache_dir, HUB_REPO, HUB_REVISION, HUB_TEST_FILE, HUB_TRAIN_FILE};
use lstm_datasets::{load_mnist_from_hub, normalize_pixels, DatasetError, MnistOptions};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// The schema of `ylecun/mnist`'s parquet conversion.
const SCHEMA: &str = "
message schema {
  optional group image {
    optional binary bytes;
    optional binary path (STRING);
  }
  optional int64 label;
}";

/// A 28x28 digit with distinct, known pixels (including 0 and 255).
fn digit(seed: usize) -> Vec<u8> {
    (0..PIXELS)
        .map(|k| match k {
            0 => 0,
            1 => 255,
            _ => ((seed * 37 + k * 11) % 256) as u8,
        })
        .collect()
}

fn png(pixels: &[u8]) -> Vec<u8> {
    let img = image::GrayImage::from_raw(SIDE as u32, SIDE as u32, pixels.to_vec())
        .expect("28x28 buffer");
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// A parquet file of `(PNG image, label)` rows in the Hub's schema.
fn parquet_bytes(images: &[Vec<u8>], labels: &[i64]) -> Vec<u8> {
    let schema = Arc::new(parse_message_type(SCHEMA).expect("schema"));
    let props = Arc::new(WriterProperties::builder().build());
    let mut buf = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut buf, schema, props).expect("writer");
    let mut group = writer.next_row_group().expect("row group");
    let n = images.len();
    // image.bytes: present (definition level 2 = group and field both set).
    let mut col = group.next_column().expect("column").expect("image.bytes");
    let bytes: Vec<ByteArray> = images.iter().map(|i| ByteArray::from(png(i))).collect();
    col.typed::<ByteArrayType>()
        .write_batch(&bytes, Some(&vec![2; n]), None)
        .expect("write image.bytes");
    col.close().expect("close image.bytes");
    // image.path: null (definition level 1 = group set, field null), as on the Hub.
    let mut col = group.next_column().expect("column").expect("image.path");
    col.typed::<ByteArrayType>()
        .write_batch(&[], Some(&vec![1; n]), None)
        .expect("write image.path");
    col.close().expect("close image.path");
    let mut col = group.next_column().expect("column").expect("label");
    col.typed::<Int64Type>()
        .write_batch(labels, Some(&vec![1; n]), None)
        .expect("write label");
    col.close().expect("close label");
    assert!(group.next_column().expect("column").is_none());
    group.close().expect("close row group");
    writer.close().expect("close parquet");
    buf
}

/// Stores `bytes` as hf-hub does: a blob, and a relative symlink to it in the snapshot.
fn cache_file(repo_dir: &Path, filename: &str, etag: &str, bytes: &[u8]) {
    let blobs = repo_dir.join("blobs");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(etag), bytes).unwrap();
    let pointer = repo_dir.join("snapshots").join(COMMIT).join(filename);
    let parent = pointer.parent().unwrap();
    fs::create_dir_all(parent).unwrap();
    // Up from snapshots/<commit>/mnist/train/ to the repo folder.
    let depth = Path::new(filename).components().count() - 1 + 2;
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.push("blobs");
    target.push(etag);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &pointer).unwrap();
    #[cfg(not(unix))]
    fs::copy(parent.join(&target), &pointer).unwrap();
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lstm-datasets-hub-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Points hf-hub at `hf_home` and nowhere else.
fn use_hf_home(hf_home: &Path) {
    for var in [
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_TOKEN",
        "HF_TOKEN_PATH",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("HF_HOME", hf_home);
    // A closed local port: a file missing from the cache fails fast, without network.
    std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:1");
}

fn f32s(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn u32s(t: &candle_core::Tensor) -> Vec<u32> {
    t.to_vec1().unwrap()
}

#[test]
fn loads_from_a_fake_cache_and_reports_a_missing_one() {
    let root = scratch();

    // 1. An empty cache and no network: a typed error naming the repo and the cache.
    let empty = root.join("empty");
    fs::create_dir_all(&empty).unwrap();
    use_hf_home(&empty);
    assert_eq!(hub_cache_dir(), empty.join("hub"));
    let err = load_mnist_from_hub(&MnistOptions::default()).unwrap_err();
    match &err {
        DatasetError::Hub {
            repo, cache_dir, ..
        } => {
            assert_eq!(repo, HUB_REPO);
            assert_eq!(cache_dir, &empty.join("hub"));
        }
        other => panic!("expected DatasetError::Hub, got {other:?}"),
    }
    let msg = err.to_string();
    eprintln!("empty cache: {msg}");
    assert!(
        msg.starts_with(&empty.join("hub").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains(HUB_REPO), "{msg}");

    // 2. A cache holding both splits.
    let home = root.join("home");
    let repo_dir = home.join("hub").join("datasets--ylecun--mnist");
    let ref_path = repo_dir.join("refs").join(HUB_REVISION);
    fs::create_dir_all(ref_path.parent().unwrap()).unwrap();
    fs::write(&ref_path, COMMIT).unwrap();
    let train_images: Vec<Vec<u8>> = (0..5).map(digit).collect();
    let train_labels: Vec<i64> = vec![3, 1, 4, 1, 5];
    let test_images: Vec<Vec<u8>> = (10..13).map(digit).collect();
    let test_labels: Vec<i64> = vec![9, 2, 6];
    cache_file(
        &repo_dir,
        HUB_TRAIN_FILE,
        "1111111111111111111111111111111111111111",
        &parquet_bytes(&train_images, &train_labels),
    );
    cache_file(
        &repo_dir,
        HUB_TEST_FILE,
        "2222222222222222222222222222222222222222",
        &parquet_bytes(&test_images, &test_labels),
    );
    use_hf_home(&home);

    let opts = MnistOptions {
        validation_size: 2,
        train_limit: None,
        test_limit: None,
    };
    let m = load_mnist_from_hub(&opts).expect("load from the fake cache");
    let val = m.validation.as_ref().expect("validation split");
    assert_eq!((m.train.len(), val.len(), m.test.len()), (3, 2, 3));
    assert_eq!(m.train.images.dims(), &[3, SIDE, SIDE]);
    assert_eq!(m.test.images.dims(), &[3, SIDE, SIDE]);

    let raw = |images: &[Vec<u8>]| normalize_pixels(&images.concat());
    assert_eq!(f32s(&m.train.images), raw(&train_images[..3]));
    assert_eq!(f32s(&val.images), raw(&train_images[3..]));
    assert_eq!(f32s(&m.test.images), raw(&test_images));
    assert_eq!(u32s(&m.train.labels), [3, 1, 4]);
    assert_eq!(u32s(&val.labels), [1, 5]);
    assert_eq!(u32s(&m.test.labels), [9, 2, 6]);
    // The book's normalisation: 0 -> -0.5, 255 -> 0.5.
    let first = f32s(&m.test.images);
    assert_eq!((first[0], first[1]), (-0.5, 0.5));

    // Limits and validation size behave as with idx files.
    let opts = MnistOptions {
        validation_size: 0,
        train_limit: Some(2),
        test_limit: Some(1),
    };
    let m = load_mnist_from_hub(&opts).unwrap();
    assert!(m.validation.is_none());
    assert_eq!((m.train.len(), m.test.len()), (2, 1));
    assert_eq!(u32s(&m.test.labels), [9]);
    let opts = MnistOptions {
        validation_size: 5,
        ..MnistOptions::default()
    };
    let err = load_mnist_from_hub(&opts).unwrap_err();
    assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");

    let _ = fs::remove_dir_all(&root);
}
