//! `lstm`: train and evaluate the LSTM chapter's models from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lstm_core::{Backbone, Kernel};
use lstm_datasets::{load_mnist, MnistOptions, ValidationSource};
use lstm_train::{train_classifier, ClassifierTrainConfig, LrSchedule, RunDir, Selection};

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
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ModelArg {
    /// The book's from-scratch LstmCell, unrolled over the rows.
    Cell,
    /// The multi-layer Lstm with the fused kernel.
    Layer,
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
enum SelectArg {
    /// Keep the weights with the best validation accuracy.
    Best,
    /// Keep the weights of the last iteration.
    Last,
}

#[derive(clap::Args, Debug)]
struct MnistArgs {
    /// Directory with the four MNIST idx files (raw or .gz).
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
    /// The book's cell loop or the fused layer.
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
    /// Run directory (default: runs/mnist-<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// A failure, and whether it happened before training started (exit code 2) or during it.
struct Failure {
    message: String,
    before_training: bool,
}

fn setup<E: std::fmt::Display>(e: E) -> Failure {
    Failure {
        message: e.to_string(),
        before_training: true,
    }
}

fn run_mnist(args: MnistArgs) -> Result<(), Failure> {
    let cfg = ClassifierTrainConfig {
        hidden: args.hidden,
        layers: args.layers,
        backbone: match args.model {
            ModelArg::Cell => Backbone::Cell,
            ModelArg::Layer => Backbone::Layer,
        },
        kernel: match args.kernel {
            KernelArg::Fused => Kernel::Fused,
            KernelArg::Reference => Kernel::Reference,
        },
        lr: args.lr,
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
    let options = MnistOptions {
        validation_size,
        train_limit: args.train_limit,
        test_limit: args.test_limit,
    };
    let data = load_mnist(&args.data, &options).map_err(setup)?;
    let run_dir = match &args.out {
        Some(path) => RunDir::create(path),
        None => RunDir::timestamped(std::path::Path::new("runs"), "mnist"),
    }
    .map_err(setup)?;
    tracing::info!(
        train = data.train.len(),
        test = data.test.len(),
        dir = %run_dir.path().display(),
        "starting MNIST training"
    );
    let mut stdout = std::io::stdout();
    let (report, _) =
        train_classifier(&data, &cfg, Some(&run_dir), &mut stdout).map_err(|e| Failure {
            message: e.to_string(),
            before_training: false,
        })?;
    println!(
        "Trained {} iterations in {:.1} s ({:.0} samples/s); outputs in {}",
        report.iterations,
        report.train_seconds,
        report.samples_per_second,
        run_dir.path().display()
    );
    Ok(())
}

impl ModelArg {
    fn is_cell(self) -> bool {
        matches!(self, ModelArg::Cell)
    }
}

fn main() -> ExitCode {
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(if f.before_training { 2 } else { 1 })
        }
    }
}
