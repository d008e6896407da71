//! `lstm mnist`: train the chapter's classifier, or resume a stopped run.

use std::path::Path;

use lstm_datasets::{load_mnist, Mnist, MnistOptions};
use lstm_train::{read_session_checkpoint, train, MnistTask, RunDir, Settings, TrainReport};

use super::{new_run_dir, resume_hint, resume_in, saved_data};
use crate::failure::{during, setup, Failure};
use crate::flags::{DataSource, MnistArgs, MnistData, MnistModel};
use crate::output::{absolute, print};

/// `lstm mnist`.
pub(crate) fn run(args: MnistArgs) -> Result<(), Failure> {
    if let Some(dir) = &args.run.resume {
        return resume_run(dir, args.run.stop_after, !args.run.quiet);
    }
    let (cfg, session) = args.configs();
    if args.model == MnistModel::Cell && cfg.layers != 1 {
        return Err(setup(
            "--model cell is the book's single cell; use --model layer for --layers > 1",
        ));
    }
    cfg.validate().map_err(setup)?;
    session.validate().map_err(setup)?;
    let data_options = args.data_options(absolute(&args.data)?);
    let data = load_mnist_from(args.source, &args.data, &data_options.options())?;
    let task = MnistTask::new(&data, &cfg, &session).map_err(setup)?;
    let run_dir = new_run_dir(args.run.out.as_deref(), args.run.overwrite, "mnist")?;
    tracing::info!(
        train = data.train.len(),
        test = data.test.len(),
        dir = %run_dir.path().display(),
        "starting MNIST training"
    );
    let context = serde_json::to_value(&data_options).map_err(setup)?;
    let mut stdout = std::io::stdout();
    let (report, _) =
        train(task, &session, context, Some(&run_dir), &mut stdout).map_err(during)?;
    print_done(&report, &run_dir)
}

/// `lstm mnist --resume DIR`.
fn resume_run(dir: &Path, stop_after: Option<usize>, progress: bool) -> Result<(), Failure> {
    // The lock first: a run that is still training is refused at once.
    let run_dir = RunDir::reopen(dir).map_err(setup)?;
    let checkpoint = read_session_checkpoint::<MnistTask>(dir).map_err(setup)?;
    let saved = &checkpoint.progress;
    let data_options: MnistData = saved_data(&checkpoint.path, &saved.context)?;
    let data = load_mnist_from(
        data_options.source,
        &data_options.data,
        &data_options.options(),
    )?;
    let task = MnistTask::new(&data, &saved.config, &saved.session).map_err(setup)?;
    let (report, _) = resume_in(task, &checkpoint, stop_after, progress, &run_dir)?;
    print_done(&report, &run_dir)
}

fn print_done(report: &TrainReport, run_dir: &RunDir) -> Result<(), Failure> {
    if report.iterations < report.total_iterations {
        if let Some(hint) = resume_hint("mnist", report.checkpoint.as_deref()) {
            print(format_args!("{hint}"))?;
        }
    }
    print(format_args!(
        "Trained {} of {} iterations in {:.1} s ({:.0} samples/s); outputs in {}",
        report.iterations,
        report.total_iterations,
        report.train_seconds,
        report.samples_per_second,
        run_dir.path().display()
    ))
}

/// Loads MNIST from where `--source` says (`dir` is for `--source files`).
pub(crate) fn load_mnist_from(
    source: DataSource,
    dir: &Path,
    options: &MnistOptions,
) -> Result<Mnist, Failure> {
    match source {
        DataSource::Files => load_mnist(dir, options).map_err(setup),
        DataSource::Hub => load_mnist_hub(options),
    }
}

#[cfg(feature = "hub")]
fn load_mnist_hub(options: &MnistOptions) -> Result<Mnist, Failure> {
    lstm_datasets::load_mnist_from_hub(options).map_err(setup)
}

#[cfg(not(feature = "hub"))]
fn load_mnist_hub(_options: &MnistOptions) -> Result<Mnist, Failure> {
    Err(setup(
        "--source hub: this lstm binary was built without the `hub` feature; \
         rebuild it with `cargo build --release --features hub -p lstm-cli` \
         (or use --source files with --data)",
    ))
}
