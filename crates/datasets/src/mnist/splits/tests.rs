//! Loading MNIST directories: missing files, mismatched counts, the splits and limits,
//! the normalisation, and the real data set.

use std::fs;

use super::*;
use crate::mnist::test_support::{patterned_images, write_mnist};
use crate::test_support::TempDir;

#[test]
fn missing_file_and_dir() {
    let dir = TempDir::new("missing");
    write_mnist(&dir, &[1, 2, 3], &[4, 5]);
    fs::remove_file(dir.0.join(TEST_LABELS)).unwrap();
    let err = load_mnist(&dir.0, &MnistOptions::default()).unwrap_err();
    match &err {
        DatasetError::MissingFile { dir: d, name } => {
            assert_eq!(d, &dir.0);
            assert_eq!(name, TEST_LABELS);
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with(&dir.0.display().to_string()), "{msg}");
    assert!(msg.contains("t10k-labels-idx1-ubyte.gz"), "{msg}");

    let gone = dir.0.join("does-not-exist");
    let err = load_mnist(&gone, &MnistOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DatasetError::MissingDir { dir: d } if d == &gone),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&gone.display().to_string()));
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn count_mismatch_via_load_mnist() {
    let dir = TempDir::new("count");
    write_mnist(&dir, &[1, 2, 3], &[4, 5]);
    // Test file: 3 images but only 2 labels.
    let images_path = dir.write(TEST_IMAGES, &patterned_images(3));
    let err = load_mnist(
        &dir.0,
        &MnistOptions {
            validation_size: 1,
            ..MnistOptions::default()
        },
    )
    .unwrap_err();
    match &err {
        DatasetError::CountMismatch {
            images_path: ip,
            images,
            labels_path,
            labels,
        } => {
            assert_eq!(ip, &images_path);
            assert_eq!(labels_path, &dir.0.join(TEST_LABELS));
            assert_eq!((*images, *labels), (3, 2));
        }
        other => panic!("expected CountMismatch, got {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with(&images_path.display().to_string()));
}

#[test]
fn load_mnist_splits_and_limits() {
    let dir = TempDir::new("split");
    let train_labels: Vec<u8> = (0..10).collect();
    write_mnist(&dir, &train_labels, &[9, 8, 7, 6]);
    let opts = MnistOptions {
        validation_size: 3,
        train_limit: Some(4),
        test_limit: Some(2),
    };
    let m = load_mnist(&dir.0, &opts).unwrap();
    assert_eq!(m.train.len(), 4);
    assert_eq!(m.train.labels.to_vec1::<u32>().unwrap(), vec![0, 1, 2, 3]);
    let val = m.validation.as_ref().expect("validation split");
    assert_eq!(val.labels.to_vec1::<u32>().unwrap(), vec![7, 8, 9]);
    assert_eq!(m.test.labels.to_vec1::<u32>().unwrap(), vec![9, 8]);
    assert_eq!(m.train.images.dims(), &[4, 28, 28]);
    assert_eq!(val.images.dims(), &[3, 28, 28]);
    assert_eq!(m.test.images.dtype(), candle_core::DType::F32);
    assert_eq!(m.test.labels.dtype(), candle_core::DType::U32);
    // Validation image 0 is training image 7: pixel 0 = 255, others 70.
    let v0 = val
        .images
        .get(0)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(v0[0], 0.5);
    assert!((v0[1] - (70.0 / 255.0 - 0.5)).abs() < 1e-6, "{}", v0[1]);
    assert!(!m.train.is_empty());

    let (bi, bl) = m.train.batch(&[3, 0, 3]).unwrap();
    assert_eq!(bi.dims(), &[3, 28, 28]);
    assert_eq!(bl.to_vec1::<u32>().unwrap(), vec![3, 0, 3]);
    let p = bi.get(0).unwrap().get(0).unwrap().to_vec1::<f32>().unwrap();
    assert!((p[1] - (30.0 / 255.0 - 0.5)).abs() < 1e-6, "{}", p[1]);
    let err = m.train.batch(&[4]).unwrap_err();
    assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");

    let t = m.test.take(1).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t.images.dims(), &[1, 28, 28]);
    assert_eq!(t.labels.to_vec1::<u32>().unwrap(), vec![9]);
    assert_eq!(m.test.take(100).unwrap().len(), 2);
    assert!(m.test.take(0).unwrap().is_empty());

    assert_eq!(
        m.validation_split(ValidationSource::HeldOut).unwrap().len(),
        3
    );
    assert_eq!(m.validation_split(ValidationSource::Test).unwrap().len(), 2);

    // No validation split, no limits.
    let m = load_mnist(
        &dir.0,
        &MnistOptions {
            validation_size: 0,
            ..MnistOptions::default()
        },
    )
    .unwrap();
    assert!(m.validation.is_none());
    assert_eq!((m.train.len(), m.test.len()), (10, 4));
    let err = m.validation_split(ValidationSource::HeldOut).unwrap_err();
    assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");
}

#[test]
fn validation_too_large_is_invalid_split() {
    let dir = TempDir::new("valsize");
    write_mnist(&dir, &[1, 2, 3], &[4]);
    for size in [3, 4] {
        let opts = MnistOptions {
            validation_size: size,
            ..MnistOptions::default()
        };
        let err = load_mnist(&dir.0, &opts).unwrap_err();
        assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");
    }
}

#[test]
fn normalize_matches_textbook() {
    assert_eq!(normalize_pixels(&[0, 255]), vec![-0.5, 0.5]);
    let mid = normalize_pixels(&[51])[0];
    assert!((mid - (0.2 - 0.5)).abs() < 1e-6, "{mid}");
    assert!(normalize_pixels(&[]).is_empty());
}

#[test]
fn real_mnist() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist"));
    let start = std::time::Instant::now();
    let m = load_mnist(dir, &MnistOptions::default()).unwrap();
    let elapsed = start.elapsed();
    let val = m.validation.as_ref().expect("validation split");
    assert_eq!(
        (m.train.len(), val.len(), m.test.len()),
        (55_000, 5_000, 10_000)
    );
    assert_eq!(m.train.images.dims(), &[55_000, 28, 28]);
    assert_eq!(val.images.dims(), &[5_000, 28, 28]);
    assert_eq!(m.test.images.dims(), &[10_000, 28, 28]);
    assert_eq!(
        m.train.labels.get(0).unwrap().to_scalar::<u32>().unwrap(),
        5
    );
    assert_eq!(m.test.labels.get(0).unwrap().to_scalar::<u32>().unwrap(), 7);
    for split in [&m.train, val, &m.test] {
        let min = split.images.flatten_all().unwrap().min(0).unwrap();
        let max = split.images.flatten_all().unwrap().max(0).unwrap();
        assert_eq!(min.to_scalar::<f32>().unwrap(), -0.5);
        assert_eq!(max.to_scalar::<f32>().unwrap(), 0.5);
        let labels = split.labels.to_vec1::<u32>().unwrap();
        assert!(labels.iter().all(|&l| l <= 9));
    }
    eprintln!("load_mnist took {elapsed:?}");
    // Typically ~0.5 s in release; the bound leaves room for a busy machine.
    assert!(elapsed.as_secs_f64() < 5.0, "load_mnist took {elapsed:?}");
}
