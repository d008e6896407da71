//! `lstm evaluate`: the book's test line for a trained MNIST model (a run directory).

use lstm_datasets::MnistOptions;
use lstm_train::{evaluate as evaluate_split, load_classifier};

use crate::commands::mnist::load_mnist_from;
use crate::failure::{during, setup, Failure};
use crate::flags::EvaluateArgs;
use crate::output::print;

/// `lstm evaluate`: the book's test line for a saved model.
pub(crate) fn run(args: EvaluateArgs) -> Result<(), Failure> {
    if args.batch_size == 0 || args.batch_size > lstm_train::limits::MAX_BATCH {
        return Err(setup(format!(
            "--batch-size {} must be within 1..={}",
            args.batch_size,
            lstm_train::limits::MAX_BATCH
        )));
    }
    let (cfg, trained) =
        load_classifier(&args.checkpoint, args.weights.as_deref()).map_err(setup)?;
    let options = MnistOptions {
        validation_size: 0,
        train_limit: Some(1),
        test_limit: args.test_limit,
    };
    let data = load_mnist_from(args.source, &args.data, &options)?;
    let eval = evaluate_split(&trained.model, &data.test, args.batch_size).map_err(during)?;
    print(format_args!(
        "Model: {}, hidden {}, {} layer(s), from {}",
        if cfg.book_cell {
            "the book's LSTM cell"
        } else {
            cfg.family.name()
        },
        cfg.hidden,
        cfg.layers,
        args.checkpoint.display()
    ))?;
    print(format_args!(
        "Test Loss: {:.4} | Test Accuracy: {:.4} ({} images)",
        eval.loss, eval.accuracy, eval.count
    ))
}
