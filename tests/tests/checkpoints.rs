//! Checkpoints: a stopped and resumed run ends bit for bit where an uninterrupted one
//! does; divergence keeps the last good checkpoint; bad checkpoints are clear errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use lstm_datasets::{load_mnist, prepare_stock, Mnist, MnistOptions, StockFrame, StockOptions};
use lstm_tests::data_dir;
use lstm_train::{
    build_classifier, read_classifier_checkpoint, read_regressor_checkpoint, resume_classifier,
    resume_regressor, train_classifier, train_regressor, ClassifierTrainConfig,
    RegressorTrainConfig, RunDir, Selection, TrainError, CHECKPOINT_FILE,
};

fn small_mnist() -> Mnist {
    let options = MnistOptions {
        validation_size: 200,
        train_limit: Some(600),
        test_limit: Some(200),
    };
    load_mnist(&data_dir().join("mnist"), &options).expect("MNIST in data/mnist")
}

fn temp_run(tag: &str) -> RunDir {
    let dir = std::env::temp_dir().join(format!("lstm-ckpt-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    RunDir::create(dir).expect("run dir")
}

fn values(varmap: &VarMap) -> HashMap<String, Vec<f32>> {
    varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(n, v)| {
            let t: &Tensor = v.as_tensor();
            (
                n.clone(),
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            )
        })
        .collect()
}

fn mnist_cfg(select: Selection) -> ClassifierTrainConfig {
    ClassifierTrainConfig {
        hidden: 24,
        lr: 0.3,
        momentum: 0.9,
        batch_size: 16,
        iters: Some(30),
        eval_every: 10,
        checkpoint_every: 10,
        select,
        progress: false,
        ..ClassifierTrainConfig::default()
    }
}

#[test]
fn an_mnist_run_stopped_and_resumed_ends_with_the_same_weights_bit_for_bit() {
    let data = small_mnist();
    for (select, stop) in [(Selection::Last, 17), (Selection::Best, 20)] {
        let cfg = mnist_cfg(select);
        let straight_dir = temp_run("straight");
        let (straight, straight_model) =
            train_classifier(&data, &cfg, Some(&straight_dir), &mut Vec::new()).expect("train");

        let dir = temp_run("stopped");
        let stopped_cfg = ClassifierTrainConfig {
            stop_after: Some(stop),
            ..cfg.clone()
        };
        let mut printed = Vec::new();
        let (partial, partial_model) =
            train_classifier(&data, &stopped_cfg, Some(&dir), &mut printed).expect("first part");
        let text = String::from_utf8(printed).unwrap();
        assert!(
            text.contains(&format!("Stopped after iteration {stop} of 30")),
            "{text}"
        );
        assert_eq!(partial.iterations, stop);
        assert!(partial.test.is_none());
        if select == Selection::Last {
            assert!(
                values(&partial_model.varmap) != values(&straight_model.varmap),
                "the first part alone must not reach the end"
            );
        }

        let checkpoint = read_classifier_checkpoint(dir.path()).expect("checkpoint");
        assert_eq!(checkpoint.progress.iteration, stop);
        assert!(
            !checkpoint.optimizer.is_empty(),
            "momentum buffers are saved"
        );
        let mut printed = Vec::new();
        let (resumed, resumed_model) =
            resume_classifier(&data, &checkpoint, None, false, Some(&dir), &mut printed)
                .expect("resume");
        let text = String::from_utf8(printed).unwrap();
        assert!(
            text.contains(&format!("at iteration {stop} of 30")),
            "{text}"
        );

        assert!(
            values(&resumed_model.varmap) == values(&straight_model.varmap),
            "{select:?}: resumed weights differ"
        );
        assert_eq!(resumed.history, straight.history);
        assert_eq!(resumed.selected_iteration, straight.selected_iteration);
        assert_eq!(resumed.test, straight.test);
        assert!(resumed.test.is_some());
        let last = read_classifier_checkpoint(dir.path()).expect("final checkpoint");
        assert_eq!(last.progress.iteration, 30);
        for d in [dir, straight_dir] {
            std::fs::remove_dir_all(d.path()).ok();
        }
    }
}

fn sbux() -> lstm_datasets::StockDataset {
    let frame = StockFrame::read_csv(&data_dir().join("SBUX.csv")).expect("SBUX.csv");
    prepare_stock(&frame, &StockOptions::default()).expect("prepare")
}

#[test]
fn a_stock_run_stopped_and_resumed_matches_an_uninterrupted_one() {
    let data = sbux();
    let cfg = RegressorTrainConfig {
        epochs: 60,
        lr: 1e-2,
        log_every: 10,
        checkpoint_every: 20,
        progress: false,
        ..RegressorTrainConfig::default()
    };
    let straight = train_regressor(&data, &cfg, None, &mut Vec::new()).expect("train");
    let dir = temp_run("stock");
    let stopped = RegressorTrainConfig {
        stop_after: Some(25),
        ..cfg.clone()
    };
    let partial = train_regressor(&data, &stopped, Some(&dir), &mut Vec::new()).expect("part");
    assert_eq!(partial.epochs, 25);
    let checkpoint = read_regressor_checkpoint(dir.path()).expect("checkpoint");
    assert_eq!(checkpoint.progress.epoch, 25);
    assert_eq!(checkpoint.optimizer.len(), 2 * checkpoint.weights.len());
    let resumed = resume_regressor(&data, &checkpoint, None, false, Some(&dir), &mut Vec::new())
        .expect("resume");
    assert_eq!(resumed.epochs, 60);
    assert_eq!(resumed.all_losses, straight.all_losses);
    assert_eq!(resumed.losses, straight.losses);
    assert_eq!(resumed.predicted(), straight.predicted());
    std::fs::remove_dir_all(dir.path()).ok();
}

#[test]
fn a_diverging_run_stops_naming_the_iteration_and_keeps_the_last_good_checkpoint() {
    let data = small_mnist();
    let dir = temp_run("diverge");
    let cfg = ClassifierTrainConfig {
        lr: 1e36,
        checkpoint_every: 1,
        ..mnist_cfg(Selection::Last)
    };
    let err = match train_classifier(&data, &cfg, Some(&dir), &mut Vec::new()) {
        Err(e) => e,
        Ok(_) => panic!("lr 1e36 must diverge"),
    };
    let (TrainError::Diverged { iteration, .. } | TrainError::Exploded { iteration, .. }) = &err
    else {
        panic!("{err:?}");
    };
    let text = err.to_string();
    assert!(
        text.contains(&format!("diverged at iteration {iteration}")),
        "{text}"
    );
    let checkpoint = read_classifier_checkpoint(dir.path()).expect("the last good checkpoint");
    assert!(checkpoint.progress.iteration < *iteration);
    assert!(
        text.contains(&format!("(iteration {})", checkpoint.progress.iteration)),
        "{text}"
    );
    // Its weights are finite and load into the model.
    let fresh = build_classifier(&cfg).expect("model");
    checkpoint
        .restore_weights(&fresh.varmap)
        .expect("finite weights");
    std::fs::remove_dir_all(dir.path()).ok();
}

#[test]
fn a_finite_but_exploding_loss_stops_the_run_too() {
    // lr 1e4 keeps the numbers finite (the LSTM saturates) but the loss leaves any
    // sensible range within a few iterations.
    let data = small_mnist();
    let cfg = ClassifierTrainConfig {
        lr: 1e4,
        ..mnist_cfg(Selection::Last)
    };
    let err = match train_classifier(&data, &cfg, None, &mut Vec::new()) {
        Err(e) => e,
        Ok(_) => panic!("lr 1e4 must be stopped"),
    };
    let TrainError::Exploded {
        iteration,
        loss,
        first,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(*iteration >= 2 && *iteration <= 30, "{err}");
    assert!(f64::from(*loss) > 1000.0 * first, "{err}");
    assert!(err.to_string().contains("smaller learning rate"), "{err}");

    let stock = sbux();
    let cfg = RegressorTrainConfig {
        lr: 1e4,
        epochs: 50,
        progress: false,
        ..RegressorTrainConfig::default()
    };
    let err = train_regressor(&stock, &cfg, None, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Exploded { .. } | TrainError::Diverged { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_foreign_and_misshapen_checkpoints_are_clear_errors() {
    let data = sbux();
    let dir = temp_run("foreign");
    let cfg = RegressorTrainConfig {
        epochs: 3,
        progress: false,
        ..RegressorTrainConfig::default()
    };
    train_regressor(&data, &cfg, Some(&dir), &mut Vec::new()).expect("train");
    let path: PathBuf = dir.file(CHECKPOINT_FILE);

    // Another kind of run.
    let err = read_classifier_checkpoint(&path).unwrap_err().to_string();
    assert!(
        err.contains("checkpoint of a `stock` run, not of a `mnist` run"),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");

    // Another shape: the stock checkpoint's weights into a model of hidden 3.
    let checkpoint = read_regressor_checkpoint(&path).expect("read");
    let other = lstm_train::build_regressor(
        &RegressorTrainConfig {
            hidden: 3,
            ..cfg.clone()
        },
        5,
    )
    .expect("model");
    let err = checkpoint
        .restore_weights(&other.varmap)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lstm.weight_hh_l0: expected [12, 3], found [8, 2]"),
        "{err}"
    );

    // A weights file is not a checkpoint.
    let err = read_regressor_checkpoint(&dir.file("model.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("it is a weights file, not a checkpoint"),
        "{err}"
    );

    // Truncated.
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 7, 100, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = read_regressor_checkpoint(&path).unwrap_err().to_string();
        assert!(
            err.contains("not a complete safetensors file"),
            "cut {cut}: {err}"
        );
    }
    // Missing.
    let err = read_regressor_checkpoint(Path::new("/nonexistent/run"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/run"), "{err}");
    std::fs::remove_dir_all(dir.path()).ok();
}
