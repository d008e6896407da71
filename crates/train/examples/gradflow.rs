//! `gradflow`: ‖∂L/∂h_t‖ over the steps of a plain RNN and an LSTM on the adding problem,
//! at initialisation and after training (see `lstm_train::gradflow`). Run it with
//! `cargo xtask gradflow [FLAGS]`, which builds it in release.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use lstm_train::gradflow::{run_gradflow, table_steps, GradFlowConfig};
use lstm_train::RunDir;

const USAGE: &str = "usage: gradflow [FLAGS]

Trains a plain tanh RNN and an LSTM of the same size on the adding problem and prints
the mean ‖∂L/∂h_t‖ of every model at initialisation and after training.

flags (defaults in brackets):
  --seq-len T        steps per sequence [100]
  --hidden H         hidden size of both models [64]
  --steps N          training iterations per model [3000]
  --batch-size B     sequences per batch [32]
  --lr LR            Adam learning rate [0.003]
  --clip C           global gradient-norm clip [1.0]
  --forget-bias F    the LSTM's initial forget-gate bias, or `book` for the book's
                     uniform initialisation [1.0]
  --seed S           seed of the weights and the data [42]
  --out DIR          output directory [runs/gradflow-<UTC time>]
  --quiet            no progress bar";

fn main() -> ExitCode {
    lstm_core::configure_cpu_threads();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("gradflow: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("gradflow: {message}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    /// A bad flag or value: exit code 2.
    Usage(String),
    /// The run itself failed.
    Run(String),
}

impl From<lstm_train::TrainError> for Failure {
    fn from(e: lstm_train::TrainError) -> Self {
        match e {
            lstm_train::TrainError::Config(m) => Failure::Usage(m),
            other => Failure::Run(other.to_string()),
        }
    }
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, Failure> {
    value
        .parse()
        .map_err(|_| Failure::Usage(format!("{flag}: cannot read {value:?}")))
}

fn run() -> Result<(), Failure> {
    let mut cfg = GradFlowConfig {
        progress: true,
        ..Default::default()
    };
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--quiet" => {
                cfg.progress = false;
                continue;
            }
            _ => {}
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(Failure::Usage(format!("{flag} needs a value"))),
        };
        match flag.as_str() {
            "--seq-len" => cfg.seq_len = parse(&flag, &value)?,
            "--hidden" => cfg.hidden = parse(&flag, &value)?,
            "--steps" => cfg.steps = parse(&flag, &value)?,
            "--batch-size" => cfg.batch_size = parse(&flag, &value)?,
            "--lr" => cfg.lr = parse(&flag, &value)?,
            "--clip" => cfg.clip = parse(&flag, &value)?,
            "--forget-bias" if value == "book" => cfg.forget_bias = None,
            "--forget-bias" => cfg.forget_bias = Some(parse(&flag, &value)?),
            "--seed" => cfg.seed = parse(&flag, &value)?,
            "--out" => out = Some(PathBuf::from(value)),
            _ => return Err(Failure::Usage(format!("unknown flag {flag}"))),
        }
    }
    cfg.validate()?;
    let dir = match out {
        Some(path) => RunDir::create(path)?,
        None => RunDir::timestamped(std::path::Path::new("runs"), "gradflow")?,
    };
    let forget = cfg
        .forget_bias
        .map_or("the book's uniform init".to_string(), |f| format!("{f}"));
    println!(
        "Adding problem, T = {}: tanh RNN and LSTM, hidden {}, {} iterations each of batch {}, \
         Adam lr {}, clip {}, LSTM forget-gate bias {forget}, seed {}",
        cfg.seq_len, cfg.hidden, cfg.steps, cfg.batch_size, cfg.lr, cfg.clip, cfg.seed
    );
    let started = Instant::now();
    let report = run_gradflow(&cfg)?;
    let wall = started.elapsed().as_secs_f64();
    println!(
        "\nMean ‖∂L/∂h_t‖ over {} probe sequences (L reads the final state, t = {}):\n",
        cfg.probe_size, cfg.seq_len
    );
    print!("{}", report.table(&table_steps(cfg.seq_len)));
    println!("\nTest metrics on {} sequences:\n", cfg.eval_size);
    print!("{}", report.metrics_table());
    report.write(&dir)?;
    println!(
        "\nWall time {wall:.1} s. Wrote {} (gradflow.svg, gradflow.csv, loss.svg, table.md, summary.json)",
        dir.path().display()
    );
    Ok(())
}
