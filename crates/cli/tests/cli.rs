//! The `lstm` binary as a user runs it: flags, exit codes, messages, outputs.

use std::path::PathBuf;
use std::process::{Command, Output};

fn lstm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run lstm")
}

fn data() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/mnist")
        .display()
        .to_string()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lstm-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_the_flags() {
    let o = lstm(&["mnist", "--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--data",
        "--iters",
        "--batch-size",
        "--lr",
        "--hidden",
        "--layers",
        "--model",
        "--seed",
        "--out",
        "--validate-on",
    ] {
        assert!(text.contains(flag), "help lacks {flag}:\n{text}");
    }
}

#[test]
fn bad_values_exit_2_before_training() {
    let out = tmp("bad");
    let out_s = out.display().to_string();
    let d = data();
    let cases: &[(&[&str], &str)] = &[
        (&["mnist", "--lr", "-0.1"], "learning rate"),
        (&["mnist", "--lr", "0"], "learning rate"),
        (&["mnist", "--batch-size", "0"], "batch size"),
        (&["mnist", "--hidden", "0"], "hidden"),
        (&["mnist", "--iters", "0"], "nothing to train"),
        (
            &["mnist", "--model", "cell", "--layers", "2"],
            "--model layer",
        ),
        (
            &["mnist", "--data", "/nonexistent/mnist"],
            "/nonexistent/mnist",
        ),
        (
            &["mnist", "--out", "/proc/forbidden/run"],
            "/proc/forbidden/run",
        ),
        (&["mnist", "--batch-size", "abc"], "invalid value"),
        (&["mnist", "--model", "transformer"], "invalid value"),
        (&["mnist", "--no-such-flag"], "unexpected argument"),
    ];
    for (args, needle) in cases {
        let mut full: Vec<&str> = args.to_vec();
        if !full.contains(&"--data") {
            full.extend(["--data", &d]);
        }
        if !full.contains(&"--out") {
            full.extend(["--out", &out_s]);
        }
        let o = lstm(&full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?} panicked");
    }
}

#[test]
fn corrupt_data_is_a_clear_error() {
    let dir = tmp("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let src = PathBuf::from(data());
    for f in [
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    // A gzip header followed by garbage.
    std::fs::write(
        dir.join("train-images-idx3-ubyte.gz"),
        [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5],
    )
    .unwrap();
    let o = lstm(&[
        "mnist",
        "--data",
        &dir.display().to_string(),
        "--out",
        &tmp("c-out").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_short_run_prints_book_lines_and_writes_its_run_directory() {
    let out = tmp("run");
    let o = lstm(&[
        "mnist",
        "--data",
        &data(),
        "--iters",
        "40",
        "--eval-every",
        "20",
        "--batch-size",
        "16",
        "--train-limit",
        "800",
        "--validation-size",
        "200",
        "--test-limit",
        "200",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Iteration: 20. Loss: "), "{text}");
    assert!(text.contains("Iteration: 40. Loss: "), "{text}");
    assert!(text.contains("Test Loss: "), "{text}");
    for f in [
        "config.json",
        "metrics.csv",
        "model.safetensors",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    let weights =
        candle_core::safetensors::load(out.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert_eq!(weights["lstm.weight_hh_l0"].dims(), &[512, 128]);
    assert_eq!(weights["fc.weight"].dims(), &[10, 128]);
}
