//! A short real training run on a subset of MNIST.

use lstm_datasets::{load_mnist, MnistOptions};
use lstm_tests::data_dir;
use lstm_train::{train, MnistConfig, MnistTask, SessionConfig};

/// 4,000 training images, 300 iterations of batch 32: chance is 10%; the run reaches
/// about 74% test accuracy on 1,000 test images, so 60% is a real threshold.
#[test]
fn short_run_learns_well_above_chance_and_is_reproducible() {
    let options = MnistOptions {
        validation_size: 1000,
        train_limit: Some(4000),
        test_limit: Some(1000),
    };
    let data = load_mnist(&data_dir().join("mnist"), &options).expect("MNIST in data/mnist");
    let cfg = MnistConfig {
        batch_size: 32,
        iters: Some(300),
        eval_every: 100,
        ..MnistConfig::default()
    };
    let session = SessionConfig {
        lr: 1.0,
        ..MnistConfig::session()
    };
    let run = |printed: &mut Vec<u8>| {
        let task = MnistTask::new(&data, &cfg, &session).expect("task");
        train(task, &session, serde_json::Value::Null, None, printed).expect("training")
    };
    let mut printed = Vec::new();
    let (report, _) = run(&mut printed);
    let test = report.test.expect("a finished run is tested");
    let text = String::from_utf8(printed).unwrap();
    assert!(text.contains("Iteration: 300. Loss: "), "{text}");
    assert!(text.contains("Test Loss: "), "{text}");
    assert_eq!(report.history.len(), 3);
    assert_eq!(test.count, 1000);
    assert!(test.accuracy >= 0.60, "test accuracy {}", test.accuracy);
    assert!(test.loss < 1.2, "test loss {}", test.loss);

    // Same seed, same numbers.
    let (again, _) = run(&mut Vec::new());
    assert_eq!(again.test, Some(test));
}

/// The book's cell model learns too (a shorter run: it is the slower path).
#[test]
fn cell_model_learns() {
    let options = MnistOptions {
        validation_size: 500,
        train_limit: Some(3000),
        test_limit: Some(500),
    };
    let data = load_mnist(&data_dir().join("mnist"), &options).expect("MNIST in data/mnist");
    let cfg = MnistConfig {
        book_cell: true,
        batch_size: 32,
        iters: Some(200),
        eval_every: 100,
        ..MnistConfig::default()
    };
    let session = SessionConfig {
        lr: 1.0,
        ..MnistConfig::session()
    };
    let task = MnistTask::new(&data, &cfg, &session).expect("task");
    let (report, _) = train(
        task,
        &session,
        serde_json::Value::Null,
        None,
        &mut Vec::new(),
    )
    .expect("training");
    let test = report.test.expect("a finished run is tested");
    assert!(test.accuracy >= 0.35, "test accuracy {}", test.accuracy);
}
