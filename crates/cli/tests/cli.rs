//! The `lstm` binary as a user runs it: flags, exit codes, messages, outputs.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{data, lstm, stderr, stdout, tmp};

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
            &["mnist", "--lr", "-0.1"],
            "invalid setting --lr: the learning rate",
        ),
        (
            &["mnist", "--batch-size", "0"],
            "--batch-size: batch size must be",
        ),
        (&["mnist", "--iters", "0"], "--iters: nothing to train"),
        (
            &["mnist", "--momentum", "1"],
            "--momentum: must be in [0, 1)",
        ),
        (
            &["mnist", "--clip", "0"],
            "--clip: must be a positive number",
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
    let out = tmp("c-out");
    let o = lstm(&[
        "mnist",
        "--data",
        &dir.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "no run directory when the data is corrupt");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn source_hub_exits_2_without_the_feature_or_without_network() {
    // Built without `hub`: the message says how to rebuild. Built with it (CI tests with
    // --all-features): an empty Hugging Face cache and a closed endpoint give the loader's
    // error naming the cache, with no network touched.
    let home = tmp("hf-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = tmp("hub-out");
    let o = Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args([
            "mnist", "--source", "hub", "--iters", "1", "--quiet", "--out",
        ])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .env("HF_HOME", &home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env("HF_ENDPOINT", "http://127.0.0.1:1")
        .output()
        .expect("run lstm");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    if cfg!(feature = "hub") {
        assert!(err.contains("ylecun/mnist"), "{err}");
        assert!(
            err.contains(&home.join("hub").display().to_string()),
            "{err}"
        );
    } else {
        assert!(err.contains("built without the `hub` feature"), "{err}");
        assert!(
            err.contains("cargo build --release --features hub -p lstm-cli"),
            "{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "no run directory before the data loads");
    let _ = std::fs::remove_dir_all(&home);
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
        "loss.svg",
        "accuracy.svg",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let accuracy = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    assert!(
        accuracy.contains("Validation accuracy"),
        "accuracy.svg has no title"
    );
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    let weights =
        candle_core::safetensors::load(out.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert_eq!(weights["lstm.weight_hh_l0"].dims(), &[512, 128]);
    assert_eq!(weights["fc.weight"].dims(), &[10, 128]);
    std::fs::remove_dir_all(&out).unwrap();
}

fn sbux() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/SBUX.csv")
        .display()
        .to_string()
}

#[test]
fn stock_help_lists_the_flags() {
    let o = lstm(&["stock", "--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--data",
        "--model",
        "--hidden",
        "--layers",
        "--epochs",
        "--lr",
        "--seed",
        "--features",
        "--target",
        "--train-rows",
        "--window",
        "--short-history",
        "--fit-scalers-on",
        "--out",
        "--quiet",
        "--compare",
    ] {
        assert!(text.contains(flag), "help lacks {flag}:\n{text}");
    }
}

#[test]
fn stock_bad_inputs_exit_2_naming_the_file() {
    let dir = tmp("stock-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let good = sbux();
    let text = std::fs::read_to_string(&good).unwrap();
    let header_only = dir.join("header-only.csv");
    std::fs::write(&header_only, format!("{}\n", text.lines().next().unwrap())).unwrap();
    // Data row 5 (line 6): Open is not a number.
    let bad_cell = dir.join("bad-cell.csv");
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 5 {
                let mut cells: Vec<&str> = line.split(',').collect();
                cells[1] = "abc";
                cells.join(",")
            } else {
                line.to_string()
            }
        })
        .collect();
    std::fs::write(&bad_cell, lines.join("\n")).unwrap();
    let (header_s, bad_s) = (
        header_only.display().to_string(),
        bad_cell.display().to_string(),
    );
    let out = dir.join("out");
    let out_s = out.display().to_string();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--data", "/nonexistent/prices.csv"],
            &["/nonexistent/prices.csv"],
        ),
        (&["--target", "Nope"], &[&good, "\"Nope\"", "Volume"]),
        (&["--features", "Open,Nope"], &[&good, "\"Nope\""]),
        (
            &["--data", &bad_s],
            &[&bad_s, "data row 5", "\"Open\"", "\"abc\""],
        ),
        (&["--data", &header_s], &[&header_s, "no data rows"]),
        (&["--window", "201"], &[&good, "window = 201"]),
        (
            &["--window", "0"],
            &[&good, "window = 0 must be at least 1"],
        ),
        (
            &["--window", "300", "--short-history", "drop"],
            &[&good, "window = 300"],
        ),
        (
            &["--short-history", "sometimes"],
            &["invalid value", "keep"],
        ),
        (&["--train-rows", "253"], &[&good, "train_rows = 253"]),
        (&["--lr", "-1"], &["learning rate", "-1"]),
        (&["--lr", "0"], &["learning rate"]),
        (&["--epochs", "0"], &["epochs"]),
        (&["--hidden", "0"], &["hidden"]),
        (
            &["--lr", "-1"],
            &["invalid setting --lr: the learning rate", "-1"],
        ),
        (&["--epochs", "0"], &["--epochs: epochs must be at least 1"]),
        (
            &["--log-every", "0"],
            &["--log-every: log every must be at least 1"],
        ),
        (&["--features", "Open,,Close"], &["empty column name"]),
        (&["--out", "/proc/forbidden/run"], &["/proc/forbidden/run"]),
        (&["--model", "transformer"], &["invalid value"]),
        (&["--compare", "--model", "gru"], &["cannot be used with"]),
    ];
    for (args, needles) in cases {
        let mut full = vec!["stock", "--quiet"];
        full.extend_from_slice(args);
        if !full.contains(&"--data") {
            full.extend(["--data", &good]);
        }
        if !full.contains(&"--out") {
            full.extend(["--out", &out_s]);
        }
        let o = lstm(&full);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for needle in *needles {
            assert!(err.contains(needle), "{args:?}: no {needle:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{args:?} panicked");
        assert!(o.stdout.is_empty(), "{args:?} printed before failing");
        assert!(!out.join("predictions.csv").exists(), "{args:?} trained");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_short_stock_run_prints_book_lines_and_writes_plots() {
    let out = tmp("stock-run");
    let o = lstm(&[
        "stock",
        "--data",
        &sbux(),
        "--epochs",
        "200",
        "--lr",
        "1e-2",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Epoch: 0, loss: "), "{text}");
    assert!(text.contains("Epoch: 100, loss: "), "{text}");
    assert!(!text.contains("Epoch: 200"), "{text}");
    assert!(text.contains("Test MSE (scaled): "), "{text}");
    assert!(
        text.contains("Test MAE: ") && text.contains(" shares"),
        "{text}"
    );
    for f in [
        "config.json",
        "data.json",
        "losses.csv",
        "predictions.csv",
        "model.safetensors",
        "summary.json",
        "prediction.svg",
        "loss.svg",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(csv.lines().count(), 254);
    assert_eq!(csv.lines().filter(|l| l.ends_with(",test")).count(), 53);
    let svg = std::fs::read_to_string(out.join("prediction.svg")).unwrap();
    assert!(svg.contains("Time-Series Prediction") && svg.contains("stroke-dasharray"));
    let weights =
        candle_core::safetensors::load(out.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert_eq!(weights["lstm.weight_hh_l0"].dims(), &[8, 2]);
    assert_eq!(weights["fc_1.weight"].dims(), &[128, 2]);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn stock_compare_trains_the_three_models_and_tabulates_them() {
    let out = tmp("stock-compare");
    let o = lstm(&[
        "stock",
        "--data",
        &sbux(),
        "--compare",
        "--epochs",
        "60",
        "--lr",
        "1e-2",
        "--log-every",
        "20",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("| model | loss at epoch 40 | test MSE (scaled) | test MAE (shares) | test RMSE (shares) |"),
        "{text}"
    );
    for model in ["lstm", "gru", "bilstm"] {
        assert!(text.contains(&format!("\n| {model} | 0.")), "{text}");
        assert!(out.join(model).join("predictions.csv").is_file(), "{model}");
        assert!(out.join(model).join("prediction.svg").is_file(), "{model}");
    }
    let weights = candle_core::safetensors::load(
        out.join("gru").join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(weights["gru.weight_ih_l0"].dims(), &[6, 5]);
    let svg = std::fs::read_to_string(out.join("comparison.svg")).unwrap();
    for label in [
        "LSTM predicted",
        "GRU predicted",
        "BiLSTM predicted",
        "Actual Data",
    ] {
        assert!(svg.contains(label), "comparison.svg lacks {label}");
    }
    assert!(out.join("comparison.md").is_file());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn gradflow_is_a_subcommand_with_its_table_files_and_checked_flags() {
    let out = tmp("gradflow");
    let out_s = out.display().to_string();
    let o = lstm(&[
        "gradflow",
        "--seq-len",
        "12",
        "--hidden",
        "8",
        "--steps",
        "10",
        "--batch-size",
        "8",
        "--out",
        &out_s,
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("| t | RNN init | RNN trained | LSTM init | LSTM trained |"),
        "{text}"
    );
    assert!(text.contains("| h_1 / h_12 |"), "{text}");
    for file in [
        "gradflow.svg",
        "gradflow.csv",
        "loss.svg",
        "table.md",
        "summary.json",
    ] {
        assert!(out.join(file).is_file(), "no {file}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["rnn"]["model"], "rnn");
    assert_eq!(summary["lstm"]["model"], "lstm");
    // The test MSE at initialisation and at the end (every 100 iterations between).
    assert_eq!(summary["lstm"]["history"].as_array().unwrap().len(), 2);
    // The same directory again is a previous run: refused, not overwritten.
    let o = lstm(&["gradflow", "--steps", "0", "--out", &out_s, "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already holds a run"), "{}", stderr(&o));
    for (args, needle) in [
        (
            &["--seq-len", "1"][..],
            "invalid setting --seq-len: must be at least 2",
        ),
        (&["--clip", "0"][..], "invalid setting --clip"),
        (&["--lr", "nan"][..], "invalid setting --lr"),
        (&["--forget-bias", "abc"][..], "neither a number nor `book`"),
        (&["--hidden", "0"][..], "invalid setting --hidden"),
    ] {
        let mut full = vec!["gradflow", "--quiet"];
        full.extend_from_slice(args);
        let o = lstm(&full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?} ran");
    }
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn gradflow_variable_length_says_so_and_measures_from_each_end() {
    let out = tmp("gradflow-varlen");
    let out_s = out.display().to_string();
    let o = lstm(&[
        "gradflow",
        "--variable-length",
        "--seq-len",
        "12",
        "--hidden",
        "8",
        "--steps",
        "10",
        "--batch-size",
        "8",
        "--out",
        &out_s,
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("T = 12 (lengths vary: each sequence 6–12 steps, run packed"),
        "{text}"
    );
    assert!(
        text.contains("| steps before the row's end | rows | RNN init | RNN trained |"),
        "{text}"
    );
    assert!(text.contains("\n| 0 | 256 | "), "{text}");
    assert!(text.contains("| h_(end−11) / h_end | "), "{text}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["variable_length"], true);
    assert_eq!(summary["reach"][11], 256);
    let csv = std::fs::read_to_string(out.join("gradflow.csv")).unwrap();
    assert!(csv.starts_with("steps_before_end,rows,"), "{csv}");
    // Without the flag the saved settings say fixed lengths.
    let fixed = tmp("gradflow-fixed");
    let o = lstm(&[
        "gradflow",
        "--seq-len",
        "6",
        "--steps",
        "0",
        "--out",
        &fixed.display().to_string(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("lengths vary"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixed.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["variable_length"], false);
    assert!(summary.get("reach").is_none());
    std::fs::remove_dir_all(&out).ok();
    std::fs::remove_dir_all(&fixed).ok();
}
