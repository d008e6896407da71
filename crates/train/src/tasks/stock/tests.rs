//! The stock task on the real data: settings, determinism, a short run that learns and
//! writes its files, divergence.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use lstm_core::Family;
use lstm_datasets::{prepare_stock, ShortHistory, StockDataset, StockFrame, StockOptions};

use super::*;
use crate::error::TrainError;
use crate::plot;
use crate::run_dir::RunDir;
use crate::session::train;

const SBUX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/SBUX.csv");

fn sbux() -> &'static StockDataset {
    static DATA: OnceLock<StockDataset> = OnceLock::new();
    DATA.get_or_init(|| {
        let frame = StockFrame::read_csv(Path::new(SBUX)).expect("read data/SBUX.csv");
        prepare_stock(&frame, &StockOptions::default()).expect("prepare")
    })
}

fn quiet(model: StockConfig, epochs: usize, lr: f64) -> (StockConfig, SessionConfig) {
    let cfg = StockConfig { epochs, ..model };
    (
        cfg,
        SessionConfig {
            lr,
            ..StockConfig::session()
        },
    )
}

fn fit(
    (cfg, session): &(StockConfig, SessionConfig),
    run_dir: Option<&RunDir>,
    out: &mut Vec<u8>,
) -> Result<RegressionReport> {
    let task = StockTask::new(sbux(), cfg, session)?;
    train(task, session, serde_json::Value::Null, run_dir, out)
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lstm-regress-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn bad_settings_are_rejected_before_training() {
    let (base, session) = quiet(StockConfig::default(), 1000, 1e-4);
    assert!(base.validate().is_ok());
    for (cfg, session, field) in [
        (
            base.clone(),
            SessionConfig {
                lr: -1.0,
                ..session.clone()
            },
            "lr",
        ),
        (
            base.clone(),
            SessionConfig {
                lr: 0.0,
                ..session.clone()
            },
            "lr",
        ),
        (
            base.clone(),
            SessionConfig {
                lr: f64::INFINITY,
                ..session.clone()
            },
            "lr",
        ),
        (
            StockConfig {
                epochs: 0,
                ..base.clone()
            },
            session.clone(),
            "epochs",
        ),
        (
            StockConfig {
                hidden: 0,
                ..base.clone()
            },
            session.clone(),
            "hidden",
        ),
        (
            StockConfig {
                layers: 0,
                ..base.clone()
            },
            session.clone(),
            "layers",
        ),
        (
            StockConfig {
                log_every: 0,
                ..base.clone()
            },
            session.clone(),
            "log_every",
        ),
    ] {
        let mut sink = Vec::new();
        let err = fit(&(cfg, session), None, &mut sink).unwrap_err();
        match &err {
            TrainError::Setting { field: f, .. } => assert_eq!(f, field, "{err}"),
            other => panic!("{other:?}"),
        }
        assert!(sink.is_empty(), "printed before rejecting");
    }
}

#[test]
fn same_seed_same_losses_other_seed_other_losses() -> Result<()> {
    for model in StockConfig::book_models() {
        let kind = model.model_name();
        let (cfg, session) = quiet(model, 40, 1e-2);
        let cfg = (
            StockConfig {
                log_every: 10,
                ..cfg
            },
            session,
        );
        let run = |cfg: &(StockConfig, SessionConfig)| -> Result<(Vec<f64>, String)> {
            let mut out = Vec::new();
            let r = fit(cfg, None, &mut out)?;
            Ok((r.all_losses, String::from_utf8(out).unwrap()))
        };
        let (a, text_a) = run(&cfg)?;
        let (b, text_b) = run(&cfg)?;
        assert_eq!(a.len(), 40);
        assert_eq!(a, b, "{kind}: same seed, different losses");
        assert_eq!(text_a, text_b);
        let (c, _) = run(&(
            cfg.0.clone(),
            SessionConfig {
                seed: 7,
                ..cfg.1.clone()
            },
        ))?;
        assert_ne!(a, c, "{kind}: the seed changes nothing");
    }
    Ok(())
}

/// The book's LSTM on the real data, shortened: 300 epochs at lr 1e-2 instead of
/// 1000 at 1e-4. Measured (seed 42): 0.01049 at epoch 200, down from 0.1567 at epoch
/// 0; seeds 0 to 3 give 0.0111 to 0.0123. Threshold 0.015, and the trained model must
/// beat predicting the training mean (MSE = the variance of the scaled target).
#[test]
fn a_short_real_run_learns_and_writes_its_outputs() -> Result<()> {
    let dir = temp_dir("short");
    let run = RunDir::create(&dir)?;
    let cfg = quiet(StockConfig::default(), 300, 1e-2);
    let mut out = Vec::new();
    let r = fit(&cfg, Some(&run), &mut out)?;
    let text = String::from_utf8(out).unwrap();
    for epoch in [0, 100, 200] {
        assert!(
            text.contains(&format!("Epoch: {epoch}, loss: 0.")),
            "{text}"
        );
    }
    assert!(!text.contains("Epoch: 300"), "{text}");
    assert!(
        text.contains("Test MAE: ") && text.contains(" shares"),
        "{text}"
    );

    assert_eq!(r.losses.len(), 3);
    assert_eq!(r.last_logged_epoch, 200);
    assert_eq!(r.loss_at_900, r.losses[2].loss);
    assert!(
        r.loss_at_900 < 0.015,
        "loss at epoch 200: {}",
        r.loss_at_900
    );
    let y: Vec<f32> = sbux().train_y.flatten_all()?.to_vec1()?;
    let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len() as f64;
    let variance = y
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / y.len() as f64;
    assert!(
        r.train_mse < 0.6 * variance,
        "{} vs variance {variance}",
        r.train_mse
    );
    assert!(r.loss_at_900 < r.losses[0].loss);
    for v in [
        r.train_mse,
        r.test_mse,
        r.test_mae,
        r.test_rmse,
        r.final_loss,
    ] {
        assert!(v.is_finite() && v > 0.0, "{r:?}");
    }
    assert!(r.test_rmse >= r.test_mae);
    // Shares: SBUX trades millions a day.
    assert!(r.test_mae > 1e5 && r.test_mae < 2e7, "{}", r.test_mae);
    assert_eq!(r.all_losses.len(), 300);

    check_run_files(&dir)?;
    check_events(&dir, &r.all_losses);
    std::fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

fn sbux_window(window: usize, short_history: ShortHistory) -> StockDataset {
    let frame = StockFrame::read_csv(Path::new(SBUX)).expect("read data/SBUX.csv");
    let opts = StockOptions {
        window,
        short_history,
        ..StockOptions::default()
    };
    prepare_stock(&frame, &opts).expect("prepare")
}

/// A window of 5 with the short histories kept: the first four rows run packed, each
/// predicted as its own days alone, and every one of the 253 days gets a prediction.
#[test]
fn kept_short_histories_run_packed_and_every_day_is_predicted() -> Result<()> {
    let data = sbux_window(5, ShortHistory::Keep);
    let trained = build_regressor(&StockConfig::default(), 5, 42)?;
    let inputs = TrainInputs::of(&data)?;
    assert!(matches!(inputs, TrainInputs::Packed(_)));
    let pred = inputs.predict(&trained.model, false)?;
    assert_eq!(pred.dims(), &[200, 1]);
    let pred = pred.to_vec2::<f32>()?;
    for (r, row) in pred.iter().enumerate().take(7) {
        let days = (r + 1).min(5);
        let alone = trained
            .model
            .forward(&data.train_x.narrow(0, r, 1)?.narrow(1, 0, days)?, false)?
            .to_vec2::<f32>()?;
        assert!((row[0] - alone[0][0]).abs() < 1e-5, "row {r}");
    }

    let (cfg, session) = quiet(StockConfig::default(), 300, 1e-2);
    let mut out = Vec::new();
    let task = StockTask::new(&data, &cfg, &session)?;
    let r = train(task, &session, serde_json::Value::Null, None, &mut out)?;
    eprintln!(
        "window 5, short histories kept: loss {:.5} at epoch 0, {:.5} at epoch 200; \
         train MSE {:.5}, test MSE {:.5}",
        r.losses[0].loss, r.loss_at_900, r.train_mse, r.test_mse
    );
    assert!(r.loss_at_900 < 0.02, "loss at epoch 200: {}", r.loss_at_900);
    assert!(r.loss_at_900 < 0.25 * r.losses[0].loss);
    assert_eq!(r.predictions.len(), 253);
    assert_eq!(r.boundary(), 200);
    assert_eq!(r.predictions[0].date, "2019-12-11");
    assert_eq!(r.predictions[0].actual, 4_921_900.0);
    assert!(r.predictions.iter().all(|p| p.predicted.is_finite()));

    // Dropping them instead: the first prediction is for the fifth day.
    let dropped = sbux_window(5, ShortHistory::Drop);
    let task = StockTask::new(&dropped, &cfg, &session)?;
    let r = train(task, &session, serde_json::Value::Null, None, &mut out)?;
    assert_eq!(r.predictions.len(), 249);
    assert_eq!(r.predictions[0].date, dropped.dates[4]);
    Ok(())
}

#[test]
fn a_huge_learning_rate_diverges_with_a_clear_error() {
    let cfg = quiet(
        StockConfig {
            family: Family::Gru,
            ..StockConfig::default()
        },
        200,
        1e12,
    );
    let mut out = Vec::new();
    let err = fit(&cfg, None, &mut out).unwrap_err();
    assert!(matches!(err, TrainError::Diverged { .. }), "{err:?}");
    assert!(err.to_string().contains("smaller learning rate"), "{err}");
}

/// The files of the 300-epoch run of [`a_short_real_run_learns_and_writes_its_outputs`].
fn check_run_files(dir: &Path) -> Result<()> {
    let csv = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "date,actual,predicted,split");
    assert_eq!(lines.len(), 254);
    assert_eq!(lines.iter().filter(|l| l.ends_with(",train")).count(), 200);
    assert_eq!(lines.iter().filter(|l| l.ends_with(",test")).count(), 53);
    assert!(lines[1].starts_with("2019-12-11,4921900,"), "{}", lines[1]);
    assert!(
        lines[253].starts_with("2020-12-10,12939200,"),
        "{}",
        lines[253]
    );
    let predicted: f64 = lines[253].split(',').nth(2).unwrap().parse().unwrap();
    assert!(predicted.is_finite() && predicted > 0.0);

    let losses = std::fs::read_to_string(dir.join("losses.csv")).unwrap();
    assert_eq!(losses.lines().count(), 301);
    let svg = std::fs::read_to_string(dir.join("prediction.svg")).unwrap();
    assert!(svg.contains(plot::PREDICTION_TITLE));
    assert!(svg.contains("stroke-dasharray"));
    assert!(svg.contains("2020-") && svg.contains("Volume (shares)"));
    assert!(std::fs::read_to_string(dir.join("loss.svg"))
        .unwrap()
        .contains("Epoch"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["last_logged_epoch"], 200);
    assert_eq!(summary["model"], "lstm");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["epochs"], 300);
    assert_eq!(config["data"]["test_samples"], 53);
    assert_eq!(config["data"]["short_history"], "keep");
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?;
    assert_eq!(weights["lstm.weight_ih_l0"].dims(), &[8, 5]);
    assert_eq!(weights["fc_1.weight"].dims(), &[128, 2]);
    assert_eq!(weights["fc.weight"].dims(), &[1, 128]);
    Ok(())
}

/// The run's TensorBoard events, read back with every record's CRCs checked: the
/// training loss of every epoch, at steps 1 to 300, and the learning rate.
fn check_events(dir: &Path, losses: &[f64]) {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("events.out.tfevents."))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let events = crate::tensorboard::read_events(&files[0]).expect("valid records");
    let loss: Vec<(i64, f32)> = events
        .iter()
        .flat_map(|e| {
            e.scalars
                .iter()
                .filter(|(tag, _)| tag == "train/loss")
                .map(move |(_, v)| (e.step, *v))
        })
        .collect();
    assert_eq!(loss.len(), losses.len());
    for (i, ((step, value), expected)) in loss.iter().zip(losses).enumerate() {
        assert_eq!(*step, i as i64 + 1);
        assert_eq!(*value, *expected as f32, "epoch {i}");
    }
    let lr = events
        .iter()
        .flat_map(|e| e.scalars.iter())
        .filter(|(tag, _)| tag == "train/learning_rate")
        .count();
    assert_eq!(lr, losses.len());
    // Where a Python with TensorBoard is named, TensorBoard's own reader agrees.
    if let Some(python) = std::env::var_os("LSTM_TENSORBOARD_PYTHON") {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_tensorboard.py");
        let expect =
            [1, 150, losses.len()].map(|step| format!("train/loss@{step}={}", losses[step - 1]));
        let out = std::process::Command::new(python)
            .arg(&script)
            .arg(dir)
            .args(&expect)
            .output()
            .expect("LSTM_TENSORBOARD_PYTHON runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
