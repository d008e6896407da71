//! Hostile and unlucky input files (issue 11): bounded memory on bombs, devices and huge
//! files, clean failures when standard output fails, and the ordinary files that used to
//! be rejected (a trailing blank line, a multi-member gzip, white ink on transparency).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{data, lstm, lstm_limited, quick_mnist, repo, sbux, stderr, stdout, tmp};
use flate2::write::GzEncoder;
use flate2::Compression;

/// A directory with copies of the four MNIST files.
fn mnist_copy(tag: &str) -> PathBuf {
    let dir = tmp(tag);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(data()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A trained run directory (once per test that needs one).
fn trained(tag: &str) -> PathBuf {
    let run = tmp(tag);
    let o = quick_mnist(&run, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    run
}

#[test]
fn a_gzip_bomb_inflates_no_further_than_its_header_says() {
    let dir = mnist_copy("bomb");
    // A label file announcing 3 labels, followed by 768 MiB of zeros, in one member.
    let path = dir.join("train-labels-idx1-ubyte.gz");
    std::fs::remove_file(&path).unwrap();
    // Best compression: with `fast`, some flate2 back ends (the one the `hub` feature
    // selects) write over 4 MiB for this.
    let mut enc = GzEncoder::new(std::fs::File::create(&path).unwrap(), Compression::best());
    enc.write_all(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    let zeros = vec![0u8; 8 << 20];
    for _ in 0..96 {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 4 << 20, "the bomb is {size} bytes");
    let (d, out) = (dir.display().to_string(), tmp("bomb-out"));
    let o = lstm_limited(
        600,
        &["mnist", "--data", &d, "--out", &out.display().to_string()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains("at least 1048576 unexpected trailing bytes"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn devices_directories_and_huge_files_fail_fast_naming_them() {
    let run = trained("huge-run");
    let r = run.display().to_string();
    let dir = tmp("huge");
    std::fs::create_dir_all(&dir).unwrap();
    // Sparse files: 3 GiB on paper, nothing on disk.
    let huge = |name: &str, head: &[u8]| -> String {
        let p = dir.join(name);
        std::fs::write(&p, head).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(3 << 30)
            .unwrap();
        p.display().to_string()
    };
    let mut png = Vec::new();
    image::GrayImage::new(28, 28)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (png, csv) = (huge("digit.png", &png), huge("prices.csv", b"Date,Open\n"));
    let (weights, checkpoint) = (
        huge("w.safetensors", b""),
        huge("checkpoint.safetensors", b""),
    );
    let config_dir = dir.join("cfg-run");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::os::unix::fs::symlink("/dev/zero", config_dir.join("config.json")).unwrap();
    let c = config_dir.display().to_string();
    let dir_s = dir.display().to_string();
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["predict", "--checkpoint", &r, "--image", "/dev/zero"],
            "/dev/zero",
            "is a device",
        ),
        (
            vec!["predict", "--checkpoint", &r, "--image", &png],
            &png,
            "over the limit",
        ),
        (
            vec!["stock", "--data", "/dev/zero"],
            "/dev/zero",
            "is a device",
        ),
        (vec!["stock", "--data", &csv], &csv, "over the limit"),
        (
            vec!["evaluate", "--checkpoint", &r, "--weights", &weights],
            &weights,
            "over the limit",
        ),
        (
            vec!["evaluate", "--checkpoint", &r, "--weights", "/dev/zero"],
            "/dev/zero",
            "is a device",
        ),
        (
            vec!["mnist", "--resume", &dir_s],
            &checkpoint,
            "over the limit",
        ),
        (
            vec!["predict", "--checkpoint", &c, "--image", &png],
            "config.json",
            "is a device",
        ),
    ];
    for (args, file, needle) in cases {
        let o = lstm_limited(1024, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(file) && err.contains(needle),
            "{args:?}: {err}"
        );
    }
    for d in [run, dir] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn predict_and_evaluate_fail_cleanly_when_standard_output_fails() {
    let run = trained("stdout-run");
    let r = run.display().to_string();
    let png = run.join("digit.png");
    image::GrayImage::new(28, 28).save(&png).unwrap();
    let p = png.display().to_string();
    let d = data();
    for args in [
        vec!["predict", "--checkpoint", &r, "--image", &p],
        vec![
            "evaluate",
            "--checkpoint",
            &r,
            "--data",
            &d,
            "--test-limit",
            "50",
        ],
    ] {
        // A full disk.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_lstm"))
            .args(&args)
            .stdout(full)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write to standard output"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        // A closed pipe (`| head -0`).
        let mut child = Command::new(env!("CARGO_BIN_EXE_lstm"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("Broken pipe") && !err.contains("panicked"),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&run).ok();
}

#[test]
fn a_trailing_blank_line_and_a_multi_member_gzip_are_ordinary_files() {
    let dir = mnist_copy("ordinary");
    let csv = dir.join("prices.csv");
    let text = std::fs::read_to_string(sbux()).unwrap();
    std::fs::write(&csv, format!("{}\n\n", text.trim_end())).unwrap();
    let out = tmp("ordinary-out");
    let o = lstm(&[
        "stock",
        "--data",
        &csv.display().to_string(),
        "--epochs",
        "3",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(&out).ok();

    // `cat a.gz b.gz`: the test labels in two gzip members.
    let labels = lstm_datasets::read_idx_labels(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let mut raw = vec![0, 0, 8, 1];
    raw.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    raw.extend_from_slice(&labels);
    let (a, b) = raw.split_at(5000);
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte.gz"),
        [gzip(a), gzip(b)].concat(),
    )
    .unwrap();
    let run = trained("ordinary-run");
    let o = lstm(&[
        "evaluate",
        "--checkpoint",
        &run.display().to_string(),
        "--data",
        &dir.display().to_string(),
        "--test-limit",
        "20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("(20 images)"), "{}", stdout(&o));
    for d in [dir, run] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn white_ink_on_transparency_predicts_like_the_gray_digit() {
    let run = trained("ink-run");
    let images =
        lstm_datasets::read_idx_images(&repo().join("data/mnist/t10k-images-idx3-ubyte.gz"))
            .unwrap();
    let digit = images.pixels[..784].to_vec();
    let gray = run.join("gray.png");
    image::GrayImage::from_raw(28, 28, digit.clone())
        .unwrap()
        .save(&gray)
        .unwrap();
    let ink = run.join("ink.png");
    image::RgbaImage::from_fn(28, 28, |x, y| {
        image::Rgba([255, 255, 255, digit[(y * 28 + x) as usize]])
    })
    .save(&ink)
    .unwrap();
    let blank = run.join("blank.png");
    image::GrayImage::new(28, 28).save(&blank).unwrap();
    let predict = |png: &Path| {
        let o = lstm(&[
            "predict",
            "--checkpoint",
            &run.display().to_string(),
            "--image",
            &png.display().to_string(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let (g, i, b) = (predict(&gray), predict(&ink), predict(&blank));
    assert_eq!(
        i, g,
        "white ink on transparency reads differently from the gray digit"
    );
    assert_ne!(i, b, "white ink on transparency reads as a blank image");
    std::fs::remove_dir_all(&run).ok();
}

#[test]
fn an_empty_test_set_is_an_error_not_a_zero_accuracy() {
    let run = trained("empty-test-run");
    let out = tmp("empty-test-out");
    let d = data();
    for args in [
        vec![
            "evaluate",
            "--checkpoint",
            &run.display().to_string(),
            "--data",
            &d,
            "--test-limit",
            "0",
        ],
        vec![
            "mnist",
            "--data",
            &d,
            "--test-limit",
            "0",
            "--iters",
            "5",
            "--out",
            &out.display().to_string(),
        ],
    ] {
        let o = lstm(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("no test images"), "{}", stderr(&o));
        assert!(!stdout(&o).contains("Test Accuracy"), "{}", stdout(&o));
    }
    assert!(!out.exists());
    std::fs::remove_dir_all(&run).ok();
}

#[test]
fn csv_mistakes_are_named_clearly() {
    let dir = tmp("csv-mistakes");
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(sbux()).unwrap();
    let header = text.lines().next().unwrap();
    let duplicated = text.replacen(header, &header.replace("Close,Adj Close", "Close,Close"), 1);
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dup.csv",
            duplicated.into_bytes(),
            "column \"Close\" appears more than once",
        ),
        (
            "tabs.csv",
            text.replace(',', "\t").into_bytes(),
            "separated by commas",
        ),
        ("utf16.csv", utf16, "UTF-16"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let p = path.display().to_string();
        let o = lstm(&[
            "stock",
            "--data",
            &p,
            "--features",
            "Open,Close",
            "--out",
            &dir.join("out").display().to_string(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&p) && err.contains(needle), "{name}: {err}");
        assert!(!err.contains('\0'), "{name}: NUL bytes in the message");
    }
    std::fs::remove_dir_all(&dir).ok();
}
