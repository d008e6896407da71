//! Hostile and unlucky runs (issue 11): run directories owned by one run, settings and
//! checkpoints checked before anything is allocated or resumed, counts that cannot wrap,
//! data paths that do not depend on the working directory.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use common::{lstm, lstm_limited, quick_mnist, rewrite_checkpoint, sbux, stderr, stdout, tmp};

/// Every file of a directory with its bytes, sorted by name (not the lock file, which
/// only holds the PID of the last process that looked).
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with(".lock"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn quick_stock(out: &Path, extra: &[&str]) -> std::process::Output {
    let (data, o) = (sbux(), out.display().to_string());
    let mut args = vec![
        "stock", "--data", &data, "--epochs", "20", "--lr", "1e-2", "--quiet", "--out", &o,
    ];
    args.extend_from_slice(extra);
    lstm(&args)
}

#[test]
fn a_finished_run_is_never_overwritten_and_overwrite_moves_it_aside() {
    let out = tmp("own-finished");
    let o = quick_stock(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = contents(&out);
    assert!(before.iter().any(|(n, _)| n == "config.json"));

    let o = quick_stock(&out, &["--seed", "7"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("already holds a run") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(contents(&out), before, "the finished run was changed");

    let o = quick_stock(&out, &["--seed", "7", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let aside = err
        .lines()
        .find_map(|l| l.split(" to ").nth(1))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no note of where the old run went: {err}"));
    assert_eq!(contents(&aside), before, "the moved run differs");
    assert_ne!(contents(&out), before);
    for d in [&out, &aside] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn a_live_run_refuses_a_second_writer_and_a_resume_naming_its_pid() {
    let out = tmp("own-live");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args(["stock", "--data", &sbux(), "--epochs", "1000000", "--quiet"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while !out.join("config.json").exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let config = std::fs::read(out.join("config.json")).expect("the live run's config.json");
    let pid = format!("PID {}", child.id());
    let o_s = out.display().to_string();
    for args in [
        vec!["stock", "--data", &sbux(), "--epochs", "5", "--out", &o_s],
        vec![
            "stock",
            "--data",
            &sbux(),
            "--epochs",
            "5",
            "--overwrite",
            "--out",
            &o_s,
        ],
        vec!["stock", "--resume", &o_s],
        vec!["mnist", "--resume", &o_s],
    ] {
        let o = lstm(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&pid), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(std::fs::read(out.join("config.json")).unwrap(), config);
    child.kill().expect("kill");
    child.wait().expect("wait");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn absurd_architecture_settings_fail_before_allocating() {
    let out = tmp("absurd");
    let o_s = out.display().to_string();
    let d = common::data();
    let csv = sbux();
    for (args, needle) in [
        (vec!["mnist", "--hidden", "50000"], "--hidden"),
        (vec!["mnist", "--hidden", "1000000000"], "--hidden"),
        (
            vec!["mnist", "--hidden", "18446744073709551615"],
            "--hidden",
        ),
        (vec!["mnist", "--layers", "1000000"], "--layers"),
        (
            vec!["mnist", "--hidden", "4096", "--layers", "16"],
            "parameters",
        ),
        (vec!["mnist", "--batch-size", "100000000"], "--batch-size"),
        (vec!["stock", "--hidden", "50000"], "--hidden"),
        (vec!["stock", "--layers", "1000000"], "--layers"),
        (vec!["stock", "--window", "100000000000"], "window"),
    ] {
        let mut full = args.clone();
        full.extend(["--out", &o_s]);
        full.extend(["--data", if full[0] == "mnist" { &d } else { &csv }]);
        let o = lstm_limited(1024, &full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!out.exists(), "{args:?} created the run directory");
    }

    // The same settings in a run's config.json and in a checkpoint name the file.
    let run = tmp("absurd-run");
    let o = quick_mnist(&run, &["--stop-after", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = run.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    for (hidden, needle) in [("1000000000", "over the limit"), ("0", "at least 1")] {
        std::fs::write(
            &config,
            text.replace("\"hidden\": 16", &format!("\"hidden\": {hidden}")),
        )
        .unwrap();
        let r = run.display().to_string();
        let o = lstm_limited(1024, &["predict", "--checkpoint", &r, "--image", &r]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&config.display().to_string()) && err.contains(needle),
            "{err}"
        );
    }
    rewrite_checkpoint(
        &run.join("checkpoint.safetensors"),
        |p| p["config"]["hidden"] = 1_000_000_000.into(),
        |_| {},
    );
    let o = lstm_limited(1024, &["mnist", "--resume", &run.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("checkpoint.safetensors") && stderr(&o).contains("over the limit"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&run).ok();
}

#[test]
fn epochs_that_overflow_the_iteration_count_are_an_error() {
    let out = tmp("epochs-wrap");
    let o_s = out.display().to_string();
    let d = common::data();
    for args in [
        vec![
            "mnist",
            "--data",
            &d,
            "--epochs",
            "9223372036854775808",
            "--out",
            &o_s,
        ],
        vec![
            "mnist",
            "--data",
            &d,
            "--epochs",
            "100000000",
            "--out",
            &o_s,
        ],
        vec!["stock", "--epochs", "9223372036854775808", "--out", &o_s],
    ] {
        let o = lstm(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--epochs") && stderr(&o).contains("limit"),
            "{}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty() && !out.exists(), "{args:?} trained");
    }
}

#[test]
fn forged_checkpoints_are_refused_naming_the_file() {
    let run = tmp("forged");
    let o = quick_mnist(&run, &["--stop-after", "20", "--select", "best"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let path = run.join("checkpoint.safetensors");
    let good = std::fs::read(&path).unwrap();
    let model = std::fs::read(run.join("model.safetensors")).unwrap();
    let nan = |t: &mut std::collections::HashMap<String, Tensor>| {
        let shape = t["best.fc.weight"].dims().to_vec();
        let values = vec![f32::NAN; shape.iter().product()];
        t.insert(
            "best.fc.weight".into(),
            Tensor::from_vec(values, shape, &Device::Cpu).unwrap(),
        );
    };
    type Edit = (
        Box<dyn Fn(&mut serde_json::Value)>,
        Box<dyn Fn(&mut std::collections::HashMap<String, Tensor>)>,
        &'static str,
    );
    let cases: Vec<Edit> = vec![
        (Box::new(|_| {}), Box::new(nan), "best.fc.weight holds NaN"),
        (
            Box::new(|p| {
                p["step"] = 17.into();
                p["total"] = 12.into()
            }),
            Box::new(|_| {}),
            "iteration 17 of a run of 12",
        ),
        (
            Box::new(|p| {
                p["step"] = 50.into();
                p["total"] = 40.into()
            }),
            Box::new(|_| {}),
            "iteration 50 of a run of 40",
        ),
        (
            Box::new(|p| p["state"]["sampler"]["position"] = 1_000_000_000u64.into()),
            Box::new(|_| {}),
            "batch order",
        ),
        (
            Box::new(|p| p["total"] = 41.into()),
            Box::new(|_| {}),
            "its settings and this data make 40",
        ),
        (
            Box::new(|p| p["state"]["history"][0]["iteration"] = 99.into()),
            Box::new(|_| {}),
            "validation at iteration 99",
        ),
        (
            Box::new(|p| p["config"]["validate_on"] = "held_out".into()),
            Box::new(|_| {}),
            "expected one of held-out, test",
        ),
    ];
    for (progress, tensors, needle) in cases {
        std::fs::write(&path, &good).unwrap();
        rewrite_checkpoint(&path, |p| progress(p), |t| tensors(t));
        let o = lstm(&["mnist", "--resume", &run.display().to_string(), "--quiet"]);
        assert_eq!(o.status.code(), Some(2), "{needle}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&path.display().to_string()) && err.contains(needle),
            "{needle}: {err}"
        );
        assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
    }
    std::fs::remove_dir_all(&run).ok();
}

#[test]
fn a_run_started_with_relative_data_resumes_from_another_directory() {
    let out = tmp("relative");
    let o = Command::new(env!("CARGO_BIN_EXE_lstm"))
        .current_dir(common::repo())
        .args([
            "stock",
            "--data",
            "data/SBUX.csv",
            "--epochs",
            "30",
            "--stop-after",
            "10",
        ])
        .args(["--lr", "1e-2", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_lstm"))
        .current_dir(std::env::temp_dir())
        .args(["stock", "--quiet", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Trained 30 epochs"), "{}", stdout(&o));
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("data.json")).unwrap()).unwrap();
    assert!(
        Path::new(data["path"].as_str().unwrap()).is_absolute(),
        "{data}"
    );
    std::fs::remove_dir_all(&out).ok();
}
