//! Reading idx files: raw and gzip alike, and every malformed file rejected with a typed
//! error naming it.

use super::*;
use crate::mnist::test_support::{gz, image_bytes, label_bytes, patterned_images};
use crate::test_support::TempDir;

#[test]
fn raw_and_gz_parse_identically() {
    let dir = TempDir::new("rawgz");
    let images = patterned_images(3);
    let labels = label_bytes(&[7, 0, 9]);
    let raw_i = read_idx_images(&dir.write("i.idx", &images)).unwrap();
    let gz_i = read_idx_images(&dir.write("i.idx.gz", &gz(&images))).unwrap();
    assert_eq!(raw_i, gz_i);
    assert_eq!((raw_i.count, raw_i.rows, raw_i.cols), (3, 28, 28));
    assert_eq!(raw_i.pixels.len(), 3 * 784);
    assert_eq!(raw_i.pixels[0], 255);
    assert_eq!(raw_i.pixels[1], 0);
    assert_eq!(raw_i.pixels[784 + 1], 10);
    assert_eq!(raw_i.pixels[2 * 784 + 5], 20);

    let raw_l = read_idx_labels(&dir.write("l.idx", &labels)).unwrap();
    let gz_l = read_idx_labels(&dir.write("l.idx.gz", &gz(&labels))).unwrap();
    assert_eq!(raw_l, vec![7, 0, 9]);
    assert_eq!(raw_l, gz_l);
}

#[test]
fn zero_count_is_accepted() {
    let dir = TempDir::new("zero");
    let images = read_idx_images(&dir.write("i", &image_bytes(0, 28, 28, |_| 0))).unwrap();
    assert_eq!((images.count, images.pixels.len()), (0, 0));
    assert_eq!(
        read_idx_labels(&dir.write("l", &label_bytes(&[]))).unwrap(),
        Vec::<u8>::new()
    );
}

#[test]
fn wrong_magic_is_bad_magic() {
    let dir = TempDir::new("magic");
    // A label file read as images, and vice versa.
    let path = dir.write("l", &label_bytes(&[1, 2]));
    match read_idx_images(&path) {
        Err(DatasetError::BadMagic {
            path: p,
            expected,
            found,
        }) => {
            assert_eq!(p, path);
            assert_eq!((expected, found), (2051, 2049));
        }
        other => panic!("expected BadMagic, got {other:?}"),
    }
    let path = dir.write("i", &patterned_images(1));
    let err = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::BadMagic {
                expected: 2049,
                found: 2051,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("0x00000803"), "{msg}");
}

#[test]
fn truncated_data_is_truncated() {
    let dir = TempDir::new("trunc");
    let mut images = patterned_images(2);
    images.truncate(16 + 784 + 100);
    let path = dir.write("i", &images);
    let err = read_idx_images(&path).unwrap_err();
    match &err {
        DatasetError::Truncated {
            path: p,
            expected_bytes,
            found_bytes,
        } => {
            assert_eq!(p, &path);
            assert_eq!(
                (*expected_bytes, *found_bytes),
                (16 + 2 * 784, 16 + 784 + 100)
            );
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert!(err.to_string().starts_with(&path.display().to_string()));

    let mut labels = label_bytes(&[1, 2, 3]);
    labels.pop();
    let err = read_idx_labels(&dir.write("l", &labels)).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected_bytes: 11,
                found_bytes: 10,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_header_is_truncated() {
    let dir = TempDir::new("header");
    let images = patterned_images(1);
    let err = read_idx_images(&dir.write("i", &images[..10])).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected_bytes: 16,
                found_bytes: 10,
                ..
            }
        ),
        "{err:?}"
    );
    // Too short even for the magic number.
    let err = read_idx_images(&dir.write("i3", &images[..3])).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected_bytes: 16,
                found_bytes: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let labels = label_bytes(&[1]);
    let err = read_idx_labels(&dir.write("l", &labels[..5])).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected_bytes: 8,
                found_bytes: 5,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    let dir = TempDir::new("trail");
    let mut images = patterned_images(1);
    images.extend_from_slice(&[1, 2, 3]);
    let path = dir.write("i.gz", &gz(&images));
    match read_idx_images(&path) {
        Err(DatasetError::TrailingBytes { path: p, extra }) => {
            assert_eq!(p, path);
            assert_eq!(extra, 3);
        }
        other => panic!("expected TrailingBytes, got {other:?}"),
    }
    let mut labels = label_bytes(&[4]);
    labels.push(5);
    let err = read_idx_labels(&dir.write("l", &labels)).unwrap_err();
    assert!(
        matches!(err, DatasetError::TrailingBytes { extra: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn bad_dimensions_are_rejected() {
    let dir = TempDir::new("dims");
    let err = read_idx_images(&dir.write("a", &image_bytes(2, 27, 28, |_| 0))).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::BadDimensions {
                rows: 27,
                cols: 28,
                ..
            }
        ),
        "{err:?}"
    );
    let err = read_idx_images(&dir.write("b", &image_bytes(2, 0, 0, |_| 0))).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::BadDimensions {
                rows: 0,
                cols: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("0x0"), "{err}");
}

#[test]
fn label_out_of_range_names_index() {
    let dir = TempDir::new("label");
    let path = dir.write("train-labels-idx1-ubyte", &label_bytes(&[0, 9, 10, 3]));
    let err = read_idx_labels(&path).unwrap_err();
    match &err {
        DatasetError::LabelOutOfRange {
            path: p,
            index,
            label,
        } => {
            assert_eq!(p, &path);
            assert_eq!((*index, *label), (2, 10));
        }
        other => panic!("expected LabelOutOfRange, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "{}: label 10 at index 2 is out of range 0..=9",
            path.display()
        )
    );
}

#[test]
fn corrupt_gzip_is_gzip_error() {
    let dir = TempDir::new("gzip");
    // A valid 10-byte gzip header (deflate, no flags) followed by garbage.
    let mut bad = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
    bad.extend_from_slice(&[0xff; 64]);
    let path = dir.write("garbage.gz", &bad);
    match read_idx_images(&path) {
        Err(DatasetError::Gzip { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Gzip, got {other:?}"),
    }

    // A valid stream cut in half.
    let full = gz(&patterned_images(4));
    let path = dir.write("half.gz", &full[..full.len() / 2]);
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DatasetError::Gzip { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&path.display().to_string()));

    // Only the trailer is missing.
    let full = gz(&label_bytes(&[1, 2, 3]));
    let path = dir.write("notrailer.gz", &full[..full.len() - 8]);
    let err = read_idx_labels(&path).unwrap_err();
    assert!(matches!(err, DatasetError::Gzip { .. }), "{err:?}");
}

#[test]
fn gzip_size_hint_is_bounded_by_the_input() {
    // A real stream: the hint is its exact uncompressed size.
    let images = patterned_images(3);
    assert_eq!(gzip_size_hint(&gz(&images)), images.len());
    // 30 bytes whose trailer claims 4 GiB - 1: capped by deflate's ratio.
    let mut forged = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
    forged.extend_from_slice(&[0; 16]);
    forged.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(gzip_size_hint(&forged), 30 * MAX_DEFLATE_RATIO);
    // A large input is still capped at MAX_SIZE_HINT.
    let mut big = vec![0u8; 1 << 20];
    big[(1 << 20) - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(gzip_size_hint(&big), MAX_SIZE_HINT);
    assert_eq!(gzip_size_hint(&[0x1f, 0x8b]), 0);
    // The forged stream itself is a typed error naming the path.
    let err = parse_idx_images(Path::new("forged.gz"), forged).unwrap_err();
    assert!(err.to_string().starts_with("forged.gz: "), "{err}");
}

#[test]
fn empty_file_is_empty() {
    let dir = TempDir::new("empty");
    let path = dir.write("e", &[]);
    match read_idx_labels(&path) {
        Err(DatasetError::Empty { path: p }) => assert_eq!(p, path),
        other => panic!("expected Empty, got {other:?}"),
    }
    // A gzip stream of nothing is just as empty.
    let path = dir.write("e.gz", &gz(&[]));
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DatasetError::Empty { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: file is empty", path.display())
    );
}

#[test]
fn unreadable_file_is_io() {
    let dir = TempDir::new("io");
    let path = dir.0.join("nope");
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(&err, DatasetError::Io { path: p, source } if p == &path
            && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("{}: cannot read", path.display())));
}
