//! `lstm`: train and evaluate the LSTM chapter's models from the command line.

mod inspect;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lstm_core::{Backbone, Kernel, RecurrentKind};
use lstm_datasets::{
    load_mnist, prepare_stock, FitOn, Mnist, MnistOptions, StockFrame, StockOptions,
    ValidationSource,
};
use lstm_train::{
    read_classifier_checkpoint, read_regressor_checkpoint, resume_classifier, resume_regressor,
    train_classifier_with_context, train_regressor_with_context, write_predictions,
    ClassifierTrainConfig, LrSchedule, PredictionFigure, RegressionReport, RegressorTrainConfig,
    RunDir, Selection,
};
use serde::{Deserialize, Serialize};

use crate::output::{absolute, print};

/// Train and evaluate the LSTM chapter's models.
#[derive(Parser, Debug)]
#[command(name = "lstm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the row-by-row LSTM classifier on MNIST and evaluate it on the test set.
    Mnist(MnistArgs),
    /// Train the book's stock-price model (Volume from the day's prices) and plot its
    /// predictions.
    Stock(StockArgs),
    /// Evaluate a trained MNIST model (a run directory) on the test set.
    Evaluate(inspect::EvaluateArgs),
    /// Classify one handwritten digit image (PNG) with a trained MNIST model.
    Predict(inspect::PredictArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ModelArg {
    /// The book's from-scratch LstmCell, unrolled over the rows.
    Cell,
    /// The multi-layer Lstm with the fused kernel.
    Layer,
    /// A multi-layer GRU (nn.GRU), step by step: the book's GRU comparison.
    Gru,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum KernelArg {
    /// Fused CPU kernels with hand-written backward passes.
    Fused,
    /// Plain candle ops, step by step.
    Reference,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ValidateOn {
    /// Images held out of the training set (no leak).
    HeldOut,
    /// The test set, as the book does (leaks the test set into model selection).
    Test,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ScheduleArg {
    /// The same learning rate throughout (the book).
    Constant,
    /// A tenth of the learning rate for the last 10% of the iterations.
    StepDown,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum SourceArg {
    /// The four idx files in --data.
    Files,
    /// The Hugging Face Hub's ylecun/mnist through candle-datasets, cached in
    /// ~/.cache/huggingface (needs a binary built with the `hub` feature).
    Hub,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum SelectArg {
    /// Keep the weights with the best validation accuracy.
    Best,
    /// Keep the weights of the last iteration.
    Last,
}

#[derive(clap::Args, Debug)]
struct MnistArgs {
    /// Where MNIST comes from.
    #[arg(long, value_enum, default_value_t = SourceArg::Files)]
    source: SourceArg,
    /// Directory with the four MNIST idx files (raw or .gz), for --source files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Total training iterations (default: --epochs passes over the training split).
    #[arg(long)]
    iters: Option<usize>,
    /// Passes over the training split.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// SGD learning rate.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    lr: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = ScheduleArg::StepDown)]
    lr_schedule: ScheduleArg,
    /// LSTM hidden size.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Stacked LSTM layers (layer model only).
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// The book's cell loop, the fused LSTM layer, or a GRU layer.
    #[arg(long, value_enum, default_value_t = ModelArg::Layer)]
    model: ModelArg,
    /// Recurrence kernel.
    #[arg(long, value_enum, default_value_t = KernelArg::Fused)]
    kernel: KernelArg,
    /// Seed for the weights and the batch order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Validate every N iterations.
    #[arg(long, default_value_t = 500)]
    eval_every: usize,
    /// Where validation images come from.
    #[arg(long, value_enum, default_value_t = ValidateOn::HeldOut)]
    validate_on: ValidateOn,
    /// Which weights to keep and test at the end.
    #[arg(long, value_enum, default_value_t = SelectArg::Best)]
    select: SelectArg,
    /// Images held out of the training set for validation.
    #[arg(long, default_value_t = 5000)]
    validation_size: usize,
    /// Use only the first N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    test_limit: Option<usize>,
    /// SGD momentum (0: the book's plain SGD).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    momentum: f64,
    /// Write a checkpoint every N iterations (and at the end; 0: only at the end).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: usize,
    /// Stop after N iterations in all, with a checkpoint, to continue later with --resume.
    #[arg(long, value_name = "N")]
    stop_after: Option<usize>,
    /// Continue the run in DIR from its checkpoint, with the settings and data it was
    /// started with (other training flags are ignored).
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Run directory (default: runs/mnist-<timestamp>). It must be new or empty.
    #[arg(long)]
    out: Option<PathBuf>,
    /// If --out holds a previous run, move it aside to <out>.old-<timestamp> (it is
    /// never deleted) and start afresh.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum RegressorArg {
    /// nn.LSTM (the book's model).
    Lstm,
    /// nn.GRU.
    Gru,
    /// Bidirectional nn.LSTM.
    Bilstm,
}

impl RegressorArg {
    fn kind(self) -> RecurrentKind {
        match self {
            RegressorArg::Lstm => RecurrentKind::Lstm,
            RegressorArg::Gru => RecurrentKind::Gru,
            RegressorArg::Bilstm => RecurrentKind::BiLstm,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum FitOnArg {
    /// Only the training rows (no look-ahead into the test period).
    Train,
    /// Every row, as the book does (the test period leaks into the scaling).
    All,
}

#[derive(clap::Args, Debug)]
struct StockArgs {
    /// Daily price CSV (Date,Open,High,Low,Close,Adj Close,Volume).
    #[arg(long, default_value = "data/SBUX.csv")]
    data: PathBuf,
    /// Recurrent layer of the model.
    #[arg(long, value_enum, default_value_t = RegressorArg::Lstm, conflicts_with = "compare")]
    model: RegressorArg,
    /// Hidden size of the recurrent layer.
    #[arg(long, default_value_t = 2)]
    hidden: usize,
    /// Stacked recurrent layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Full-batch training epochs.
    #[arg(long, default_value_t = 1000)]
    epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    lr: f64,
    /// Seed of the weights.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Feature columns, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Open,High,Low,Close,Adj Close"
    )]
    features: Vec<String>,
    /// Target column.
    #[arg(long, default_value = "Volume")]
    target: String,
    /// Rows of the training period (the rest is the test period).
    #[arg(long, default_value_t = 200)]
    train_rows: usize,
    /// Rows of features per sample (1: each day's prices predict that day's volume).
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Rows the scalers are fitted on.
    #[arg(long, value_enum, default_value_t = FitOnArg::Train)]
    fit_scalers_on: FitOnArg,
    /// Print the loss every N epochs.
    #[arg(long, default_value_t = 100)]
    log_every: usize,
    /// Write a checkpoint every N epochs (and at the end; 0: only at the end).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// Stop after N epochs in all, with a checkpoint, to continue later with --resume.
    #[arg(long, value_name = "N")]
    stop_after: Option<usize>,
    /// Continue the run in DIR from its checkpoint, with the settings and data it was
    /// started with (other training flags are ignored).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "compare"])]
    resume: Option<PathBuf>,
    /// Run directory (default: runs/stock-<timestamp>). It must be new or empty.
    #[arg(long)]
    out: Option<PathBuf>,
    /// If --out holds a previous run, move it aside to <out>.old-<timestamp> (it is
    /// never deleted) and start afresh.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Train lstm, gru and bilstm with the same seed and compare them.
    #[arg(long)]
    compare: bool,
}

/// A failure, and whether it happened before training started (exit code 2) or during it.
pub(crate) struct Failure {
    message: String,
    before_training: bool,
}

pub(crate) fn setup<E: std::fmt::Display>(e: E) -> Failure {
    Failure {
        message: e.to_string(),
        before_training: true,
    }
}

/// How `lstm mnist` loaded its data, stored in the checkpoints so that `--resume` loads
/// the same images.
#[derive(Serialize, Deserialize, Debug)]
struct MnistDataJson {
    /// `files` or `hub`.
    source: String,
    /// The idx directory (for `files`).
    data: PathBuf,
    validation_size: usize,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
}

impl MnistDataJson {
    fn options(&self) -> MnistOptions {
        MnistOptions {
            validation_size: self.validation_size,
            train_limit: self.train_limit,
            test_limit: self.test_limit,
        }
    }

    fn source(&self) -> Result<SourceArg, Failure> {
        SourceArg::from_str(&self.source, true).map_err(|_| {
            setup(format!(
                "unknown data source {:?} in the checkpoint",
                self.source
            ))
        })
    }
}

fn run_mnist(args: MnistArgs) -> Result<(), Failure> {
    if let Some(dir) = &args.resume {
        return resume_mnist(dir, args.stop_after, !args.quiet);
    }
    let cfg = ClassifierTrainConfig {
        hidden: args.hidden,
        layers: args.layers,
        backbone: match args.model {
            ModelArg::Cell => Backbone::Cell,
            ModelArg::Layer => Backbone::Layer,
            ModelArg::Gru => Backbone::Gru,
        },
        kernel: match args.kernel {
            KernelArg::Fused => Kernel::Fused,
            KernelArg::Reference => Kernel::Reference,
        },
        lr: args.lr,
        momentum: args.momentum,
        lr_schedule: match args.lr_schedule {
            ScheduleArg::Constant => LrSchedule::Constant,
            ScheduleArg::StepDown => LrSchedule::StepDown,
        },
        batch_size: args.batch_size,
        epochs: args.epochs,
        iters: args.iters,
        seed: args.seed,
        eval_every: args.eval_every,
        validate_on: match args.validate_on {
            ValidateOn::HeldOut => ValidationSource::HeldOut,
            ValidateOn::Test => ValidationSource::Test,
        },
        select: match args.select {
            SelectArg::Best => Selection::Best,
            SelectArg::Last => Selection::Last,
        },
        checkpoint_every: args.checkpoint_every,
        stop_after: args.stop_after,
        progress: !args.quiet,
    };
    cfg.validate().map_err(setup)?;
    if args.model.is_cell() && args.layers != 1 {
        return Err(setup(
            "--model cell is the book's single cell; use --model layer for --layers > 1",
        ));
    }
    let validation_size = match cfg.validate_on {
        ValidationSource::HeldOut => args.validation_size,
        ValidationSource::Test => 0,
    };
    let data_json = MnistDataJson {
        source: args
            .source
            .to_possible_value()
            .map_or_else(|| "files".into(), |v| v.get_name().to_string()),
        data: absolute(&args.data)?,
        validation_size,
        train_limit: args.train_limit,
        test_limit: args.test_limit,
    };
    let data = load_mnist_from(args.source, &args.data, &data_json.options())?;
    cfg.total_iterations(data.train.len()).map_err(setup)?;
    let run_dir = new_run_dir(args.out.as_deref(), args.overwrite, "mnist")?;
    tracing::info!(
        train = data.train.len(),
        test = data.test.len(),
        dir = %run_dir.path().display(),
        "starting MNIST training"
    );
    let context = serde_json::to_value(&data_json).map_err(setup)?;
    let mut stdout = std::io::stdout();
    let (report, _) =
        train_classifier_with_context(&data, &cfg, context, Some(&run_dir), &mut stdout)
            .map_err(during)?;
    print_mnist_done(&report, &run_dir)
}

/// The directory of a new run: `out` (refused if it holds a previous run, unless
/// `overwrite` moves that aside) or `runs/<task>-<UTC time>`.
fn new_run_dir(out: Option<&Path>, overwrite: bool, task: &str) -> Result<RunDir, Failure> {
    match out {
        Some(path) if overwrite => {
            let (dir, moved) = RunDir::create_replacing(path).map_err(setup)?;
            if let Some(aside) = moved {
                output::note(&format!(
                    "note: moved the previous run in {} to {}",
                    path.display(),
                    aside.display()
                ));
            }
            Ok(dir)
        }
        Some(path) => RunDir::create(path).map_err(setup),
        None => RunDir::timestamped(Path::new("runs"), task).map_err(setup),
    }
}

/// The data options this command stored in a checkpoint's context, for `--resume`.
fn saved_data<T: serde::de::DeserializeOwned>(
    checkpoint: &Path,
    context: &serde_json::Value,
) -> Result<T, Failure> {
    serde_json::from_value(context.clone()).map_err(|e| {
        setup(format!(
            "{}: the checkpoint does not say which data it was trained on: {e}",
            checkpoint.display()
        ))
    })
}

/// `lstm mnist --resume DIR`.
fn resume_mnist(dir: &Path, stop_after: Option<usize>, progress: bool) -> Result<(), Failure> {
    // The lock first: a run that is still training is refused at once.
    let run_dir = RunDir::reopen(dir).map_err(setup)?;
    let checkpoint = read_classifier_checkpoint(dir).map_err(setup)?;
    let data_json: MnistDataJson = saved_data(&checkpoint.path, &checkpoint.progress.context)?;
    let data = load_mnist_from(data_json.source()?, &data_json.data, &data_json.options())?;
    checkpoint.sampler(data.train.len()).map_err(setup)?;
    let mut stdout = std::io::stdout();
    let (report, _) = resume_classifier(
        &data,
        &checkpoint,
        stop_after,
        progress,
        Some(&run_dir),
        &mut stdout,
    )
    .map_err(during)?;
    print_mnist_done(&report, &run_dir)
}

fn print_mnist_done(report: &lstm_train::TrainReport, run_dir: &RunDir) -> Result<(), Failure> {
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
    source: SourceArg,
    dir: &std::path::Path,
    options: &MnistOptions,
) -> Result<Mnist, Failure> {
    match source {
        SourceArg::Files => load_mnist(dir, options).map_err(setup),
        SourceArg::Hub => load_mnist_hub(options),
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

pub(crate) fn during<E: std::fmt::Display>(e: E) -> Failure {
    Failure {
        message: e.to_string(),
        before_training: false,
    }
}

fn run_stock(args: StockArgs) -> Result<(), Failure> {
    if let Some(dir) = &args.resume {
        return resume_stock(dir, args.stop_after, !args.quiet);
    }
    let kinds: Vec<RecurrentKind> = if args.compare {
        RecurrentKind::ALL.to_vec()
    } else {
        vec![args.model.kind()]
    };
    let configs: Vec<RegressorTrainConfig> = kinds
        .iter()
        .map(|&kind| RegressorTrainConfig {
            kind,
            hidden: args.hidden,
            layers: args.layers,
            lr: args.lr,
            epochs: args.epochs,
            log_every: args.log_every,
            seed: args.seed,
            target: args.target.clone(),
            checkpoint_every: args.checkpoint_every,
            stop_after: args.stop_after,
            progress: !args.quiet,
        })
        .collect();
    for cfg in &configs {
        cfg.validate().map_err(setup)?;
    }
    let features: Vec<String> = args.features.iter().map(|f| f.trim().to_string()).collect();
    if features.iter().any(String::is_empty) {
        return Err(setup(format!(
            "--features {:?}: empty column name (give comma-separated column names)",
            args.features.join(",")
        )));
    }
    let options = StockOptions {
        features,
        target: args.target.clone(),
        train_rows: args.train_rows,
        window: args.window,
        fit_scalers_on: match args.fit_scalers_on {
            FitOnArg::Train => FitOn::TrainOnly,
            FitOnArg::All => FitOn::All,
        },
    };
    let frame = StockFrame::read_csv(&args.data).map_err(setup)?;
    let data = prepare_stock(&frame, &options).map_err(setup)?;
    for cfg in &configs {
        cfg.check_model_size(options.features.len())
            .map_err(setup)?;
    }
    let run_dir = new_run_dir(args.out.as_deref(), args.overwrite, "stock")?;
    let model_dirs: Vec<RunDir> = if args.compare {
        kinds
            .iter()
            .map(|k| RunDir::create(run_dir.path().join(k.name())))
            .collect::<Result<_, _>>()
            .map_err(setup)?
    } else {
        vec![run_dir.clone()]
    };
    let data_json = DataJson {
        path: absolute(&args.data)?,
        rows: frame.len(),
        features: options.features.clone(),
        target: options.target.clone(),
        train_rows: options.train_rows,
        window: options.window,
        fit_scalers_on: match options.fit_scalers_on {
            FitOn::TrainOnly => "train",
            FitOn::All => "all",
        }
        .into(),
        train_samples: data.train_len(),
        test_samples: data.test_len(),
    };
    run_dir.write_json("data.json", &data_json).map_err(setup)?;
    tracing::info!(
        rows = frame.len(),
        train = data.train_len(),
        test = data.test_len(),
        dir = %run_dir.path().display(),
        "starting stock training"
    );

    let mut stdout = std::io::stdout();
    let mut reports: Vec<RegressionReport> = Vec::new();
    for (cfg, dir) in configs.iter().zip(&model_dirs) {
        if args.compare {
            print(format_args!("\n## {}\n", cfg.kind))?;
        }
        let context = serde_json::to_value(&data_json).map_err(setup)?;
        let report = train_regressor_with_context(&data, cfg, context, Some(dir), &mut stdout)
            .map_err(during)?;
        print(format_args!(
            "Trained {} epochs in {:.1} s; outputs in {}",
            report.epochs,
            report.train_seconds,
            dir.path().display()
        ))?;
        reports.push(report);
    }
    if args.compare {
        let table = comparison_table(&reports);
        print(format_args!("\n{table}"))?;
        run_dir
            .write_atomic("comparison.md", table.as_bytes())
            .map_err(during)?;
        let first = &reports[0];
        let figure = PredictionFigure {
            dates: first.dates(),
            actual: first.actual(),
            predictions: reports
                .iter()
                .map(|r| (format!("{} predicted", label(&r.model)), r.predicted()))
                .collect(),
            boundary: first.boundary(),
            y_label: format!("{} ({})", args.target, first.unit),
        };
        let path = write_predictions(&run_dir, "comparison.svg", &figure).map_err(during)?;
        print(format_args!(
            "Wrote {} and {}",
            path.display(),
            run_dir.file("comparison.md").display()
        ))?;
    }
    Ok(())
}

/// What `data.json` holds: where the data came from and how it was prepared (also kept
/// in the checkpoints, so that `--resume` prepares the same data).
#[derive(Serialize, Deserialize)]
struct DataJson {
    path: PathBuf,
    rows: usize,
    features: Vec<String>,
    target: String,
    train_rows: usize,
    window: usize,
    fit_scalers_on: String,
    train_samples: usize,
    test_samples: usize,
}

/// `lstm stock --resume DIR`.
fn resume_stock(dir: &Path, stop_after: Option<usize>, progress: bool) -> Result<(), Failure> {
    // The lock first: a run that is still training is refused at once.
    let run_dir = RunDir::reopen(dir).map_err(setup)?;
    let checkpoint = read_regressor_checkpoint(dir).map_err(setup)?;
    let saved: DataJson = saved_data(&checkpoint.path, &checkpoint.progress.context)?;
    let options = StockOptions {
        features: saved.features.clone(),
        target: saved.target.clone(),
        train_rows: saved.train_rows,
        window: saved.window,
        fit_scalers_on: if saved.fit_scalers_on == "all" {
            FitOn::All
        } else {
            FitOn::TrainOnly
        },
    };
    let frame = StockFrame::read_csv(&saved.path).map_err(setup)?;
    let data = prepare_stock(&frame, &options).map_err(setup)?;
    let mut stdout = std::io::stdout();
    let report = resume_regressor(
        &data,
        &checkpoint,
        stop_after,
        progress,
        Some(&run_dir),
        &mut stdout,
    )
    .map_err(during)?;
    print(format_args!(
        "Trained {} epochs in {:.1} s; outputs in {}",
        report.epochs,
        report.train_seconds,
        run_dir.path().display()
    ))
}

fn label(model: &str) -> &str {
    match model {
        "lstm" => "LSTM",
        "gru" => "GRU",
        "bilstm" => "BiLSTM",
        other => other,
    }
}

/// The markdown table of `--compare`.
fn comparison_table(reports: &[RegressionReport]) -> String {
    let epoch = reports.first().map_or(0, |r| r.last_logged_epoch);
    let unit = reports.first().map_or("shares", |r| r.unit.as_str());
    let mut table = format!(
        "| model | loss at epoch {epoch} | test MSE (scaled) | test MAE ({unit}) | test RMSE ({unit}) |\n\
         |---|---:|---:|---:|---:|\n"
    );
    for r in reports {
        table.push_str(&format!(
            "| {} | {:.5} | {:.5} | {} | {} |\n",
            r.model,
            r.loss_at_900,
            r.test_mse,
            lstm_train::regress::thousands(r.test_mae),
            lstm_train::regress::thousands(r.test_rmse),
        ));
    }
    table
}

impl ModelArg {
    fn is_cell(self) -> bool {
        matches!(self, ModelArg::Cell)
    }
}

fn main() -> ExitCode {
    lstm_core::configure_cpu_threads();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mnist(args) => run_mnist(args),
        Command::Stock(args) => run_stock(args),
        Command::Evaluate(args) => inspect::evaluate(args),
        Command::Predict(args) => inspect::predict(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            output::note(&format!("error: {}", f.message));
            ExitCode::from(if f.before_training { 2 } else { 1 })
        }
    }
}
