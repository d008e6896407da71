//! Checkpoints, `--resume`, `lstm evaluate` and `lstm predict` as a user runs them.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use common::{lstm, repo, stderr, stdout, tmp};

/// A short MNIST run's flags, writing into `out`.
fn mnist_args(out: &Path) -> Vec<String> {
    let data = repo().join("data/mnist").display().to_string();
    [
        "mnist",
        "--data",
        &data,
        "--iters",
        "300",
        "--eval-every",
        "100",
        "--batch-size",
        "16",
        "--lr",
        "0.5",
        "--train-limit",
        "2000",
        "--validation-size",
        "300",
        "--test-limit",
        "300",
        "--checkpoint-every",
        "7",
        "--select",
        "last",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn weights(path: &Path) -> HashMap<String, Vec<f32>> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// The last `Test Loss: … | Test Accuracy: …` numbers printed.
fn test_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("Test Loss: "))
        .unwrap_or_else(|| panic!("no test line in:\n{text}"));
    line.split(" (").next().unwrap().to_string()
}

#[test]
fn a_killed_mnist_run_resumes_to_the_uninterrupted_weights_then_evaluates_and_predicts() {
    let straight = tmp("ck-straight");
    let args = mnist_args(&straight);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = lstm(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let straight_text = stdout(&o);

    // Kill -9 as soon as the first checkpoint exists, then resume.
    let killed = tmp("ck-killed");
    let args = mnist_args(&killed);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let checkpoint = killed.join("checkpoint.safetensors");
    let started = Instant::now();
    while !checkpoint.exists() && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(checkpoint.exists(), "no checkpoint written");
    let o = lstm(&[
        "mnist",
        "--resume",
        &killed.display().to_string(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Resuming "), "{text}");
    assert!(text.contains("Trained 300 of 300 iterations"), "{text}");
    assert_eq!(test_line(&text), test_line(&straight_text));
    assert_eq!(
        weights(&killed.join("model.safetensors")),
        weights(&straight.join("model.safetensors")),
        "resumed weights differ from the uninterrupted run's"
    );

    // evaluate: the same test figures as the run printed.
    let o = lstm(&[
        "evaluate",
        "--checkpoint",
        &straight.display().to_string(),
        "--data",
        &repo().join("data/mnist").display().to_string(),
        "--test-limit",
        "300",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(test_line(&stdout(&o)), test_line(&straight_text));
    assert!(stdout(&o).contains("(300 images)"), "{}", stdout(&o));

    // predict: an MNIST test digit as a PNG, and the same digit as dark ink on white
    // paper, in colour, twice the size: the same answer.
    let images =
        lstm_datasets::read_idx_images(&repo().join("data/mnist/t10k-images-idx3-ubyte.gz"))
            .expect("test images");
    let digit: Vec<u8> = images.pixels[..784].to_vec();
    let plain = straight.join("digit.png");
    image::GrayImage::from_raw(28, 28, digit.clone())
        .unwrap()
        .save(&plain)
        .unwrap();
    let paper = straight.join("paper.png");
    image::RgbImage::from_fn(56, 56, |x, y| {
        let v = 255 - digit[(y / 2 * 28 + x / 2) as usize];
        image::Rgb([v, v, v.saturating_add(10)])
    })
    .save(&paper)
    .unwrap();
    let mut answers = Vec::new();
    for png in [&plain, &paper] {
        let o = lstm(&[
            "predict",
            "--checkpoint",
            &straight.display().to_string(),
            "--image",
            &png.display().to_string(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        let line = text
            .lines()
            .find(|l| l.starts_with("Predicted digit: "))
            .unwrap_or_else(|| panic!("{text}"))
            .to_string();
        answers.push(line[..18].to_string());
    }
    assert_eq!(
        answers[0], "Predicted digit: 7",
        "the first test image is a 7"
    );
    assert_eq!(answers[0], answers[1]);

    // A file that is not an image.
    let o = lstm(&[
        "predict",
        "--checkpoint",
        &straight.display().to_string(),
        "--image",
        &straight.join("config.json").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("config.json: "), "{}", stderr(&o));
    for d in [straight, killed] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// `--window 5` keeps the first four days as shorter sequences (the default): every day
/// is predicted, `data.json` says so, and a stopped run resumes with them to the same
/// losses; `--short-history drop` predicts from the fifth day, as before the flag.
#[test]
fn a_stock_run_with_short_histories_kept_resumes_with_them() {
    let sbux = repo().join("data/SBUX.csv").display().to_string();
    let run = |out: &Path, extra: &[&str]| {
        let out_s = out.display().to_string();
        let mut args = vec![
            "stock",
            "--data",
            &sbux,
            "--window",
            "5",
            "--epochs",
            "100",
            "--lr",
            "1e-2",
            "--log-every",
            "50",
            "--quiet",
            "--out",
            &out_s,
        ];
        args.extend(extra);
        lstm(&args)
    };
    let straight = tmp("stock-keep-straight");
    let o = run(&straight, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(straight.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["short_history"], "keep");
    assert_eq!(data["train_samples"], 200);
    let csv = std::fs::read_to_string(straight.join("predictions.csv")).unwrap();
    assert_eq!(csv.lines().count(), 254, "a prediction for every day");
    assert!(csv.lines().nth(1).unwrap().starts_with("2019-12-11,"));

    let stopped = tmp("stock-keep-stopped");
    let o = run(&stopped, &["--stop-after", "60"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lstm(&[
        "stock",
        "--resume",
        &stopped.display().to_string(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for file in ["losses.csv", "predictions.csv"] {
        assert_eq!(
            std::fs::read_to_string(stopped.join(file)).unwrap(),
            std::fs::read_to_string(straight.join(file)).unwrap(),
            "{file}"
        );
    }

    let dropped = tmp("stock-drop");
    let o = run(&dropped, &["--short-history", "drop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(dropped.join("predictions.csv")).unwrap();
    assert_eq!(csv.lines().count(), 250);
    assert!(
        csv.lines().nth(1).unwrap().starts_with("2019-12-17,"),
        "{csv}"
    );
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dropped.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["short_history"], "drop");
    for d in [&straight, &stopped, &dropped] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn a_stock_run_stopped_early_resumes_to_the_same_losses() {
    let sbux = repo().join("data/SBUX.csv").display().to_string();
    let run = |out: &Path, extra: &[&str]| {
        let out_s = out.display().to_string();
        let mut args = vec![
            "stock",
            "--data",
            &sbux,
            "--epochs",
            "200",
            "--lr",
            "1e-2",
            "--log-every",
            "50",
            "--quiet",
            "--out",
            &out_s,
        ];
        args.extend(extra);
        lstm(&args)
    };
    let straight = tmp("stock-straight");
    let o = run(&straight, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let straight_text = stdout(&o);
    let stopped = tmp("stock-stopped");
    let o = run(&stopped, &["--stop-after", "120"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Stopped after epoch 120 of 200\nTrain MSE")
            && stdout(&o).contains(&format!(
                "Resume with `lstm stock --resume {}`",
                stopped.display()
            )),
        "{}",
        stdout(&o)
    );
    let o = lstm(&[
        "stock",
        "--resume",
        &stopped.display().to_string(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed_text = stdout(&o);
    assert!(
        resumed_text.contains("Epoch: 150, loss: "),
        "{resumed_text}"
    );
    let losses = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("Epoch: ") || l.starts_with("Train MSE"))
            .map(str::to_string)
            .collect()
    };
    let tail: Vec<String> = losses(&straight_text)
        .into_iter()
        .filter(|l| {
            !l.starts_with("Epoch: 0,")
                && !l.starts_with("Epoch: 50,")
                && !l.starts_with("Epoch: 100,")
        })
        .collect();
    assert_eq!(losses(&resumed_text), tail);
    assert_eq!(
        std::fs::read_to_string(stopped.join("losses.csv")).unwrap(),
        std::fs::read_to_string(straight.join("losses.csv")).unwrap()
    );

    // The stock run's directory is not an MNIST checkpoint or model.
    let o = lstm(&["mnist", "--resume", &stopped.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("checkpoint of a `stock` run, not of a `mnist` run"),
        "{}",
        stderr(&o)
    );
    let o = lstm(&["evaluate", "--checkpoint", &stopped.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("config of a stock run"),
        "{}",
        stderr(&o)
    );
    for d in [straight, stopped] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn bad_checkpoint_flags_exit_2() {
    let missing = "/nonexistent/lstm-run";
    for args in [
        vec!["mnist", "--resume", missing],
        vec!["stock", "--resume", missing],
        vec!["evaluate", "--checkpoint", missing],
        vec!["predict", "--checkpoint", missing, "--image", "x.png"],
    ] {
        let o = lstm(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(missing), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}");
    }
    let o = lstm(&["mnist", "--resume", "a", "--out", "b"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let o = lstm(&["mnist", "--stop-after", "0", "--iters", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--stop-after"), "{}", stderr(&o));
    let o = lstm(&["mnist", "--momentum", "1.5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("momentum"), "{}", stderr(&o));
}
