//! Project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! - `cargo xtask mnist [ARGS]`: build the `lstm` binary in release and train the book's
//!   MNIST model on `data/mnist` (extra arguments go to `lstm mnist`).
//! - `cargo xtask stock [ARGS]`: build the `lstm` binary in release and train the book's
//!   stock-price model on `data/SBUX.csv` (extra arguments go to `lstm stock`, e.g.
//!   `--compare` for the LSTM, GRU and bidirectional LSTM side by side).
//! - `cargo xtask gradflow [FLAGS]`: build the `lstm` binary in release and run `lstm
//!   gradflow`: `‖∂L/∂h_t‖` of a plain RNN and an LSTM on the adding problem
//!   (T = 100), before and after training, as a table and a log-scale plot.
//! - `cargo xtask bench [--quick] [--runs N] [--only PATTERN,…]`: the scenario table (LSTM,
//!   GRU, bidirectional, 2-layer, streaming, rows of different lengths; training and
//!   inference) of two builds of ours (plain and `target-cpu=native`) side by side with
//!   PyTorch when `$LSTM_BENCH_PYTHON` or `python3` can import torch; writes
//!   `target/bench/report.md`. `--only` keeps the ids containing one of the patterns. `--scaling`: the MNIST-shape path
//!   comparison and the scaling table (batch × hidden × seq) of ours against PyTorch, with
//!   GFLOP/s and peak memory, instead (`target/bench/scaling.md`; `--quick` and `--runs`
//!   apply).
//! - `cargo xtask ci`: what CI runs: format check, clippy, the test suite.

mod bench;
mod lines;
mod machine;
mod scaling;
mod varlen;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <task> [args]

tasks:
  mnist [ARGS]   train the book's MNIST LSTM (release build; ARGS go to `lstm mnist`)
  stock [ARGS]   train the book's stock-price model on data/SBUX.csv (release build;
                 ARGS go to `lstm stock`, e.g. --compare, --model gru, --epochs 500)
  gradflow [FLAGS] gradient norms through time of a tanh RNN and an LSTM on the adding
                 problem, at init and trained: table + runs/gradflow-<time>/gradflow.svg
                 (release build; --seq-len, --hidden, --steps, --seed, --out, --help)
  bench [--quick] [--runs N] [--only PATTERN,...] [--scaling] [--isa avx2]
                 scenario table of ours (plain and native builds) against PyTorch when
                 python3 has torch (LSTM_BENCH_PYTHON chooses the interpreter), median of
                 5 alternating runs (3 with --quick): target/bench/report.md; --only
                 keeps the ids containing a pattern (e.g. --only packed-,padmean-;
                 ^P: the ids starting with P);
                 --scaling: MNIST-shape paths and the scaling table against PyTorch
                 (target/bench/scaling.md; --quick: 4 of its 24 rows);
                 --isa avx2: both sides capped at AVX2 + FMA (report-avx2.md)
  ci             cargo fmt --check, clippy -D warnings, and the test suite";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    match task.as_deref() {
        Some("mnist") => {
            let lstm = build_cli(&root)?;
            let mut cmd = Command::new(lstm);
            cmd.current_dir(&root).arg("mnist");
            if !rest
                .iter()
                .any(|a| a == "--data" || a.starts_with("--data="))
            {
                cmd.arg("--data").arg(root.join("data/mnist"));
            }
            run_cmd(cmd.args(&rest))
        }
        Some("stock") => {
            let lstm = build_cli(&root)?;
            let mut cmd = Command::new(lstm);
            cmd.current_dir(&root).arg("stock");
            if !rest
                .iter()
                .any(|a| a == "--data" || a.starts_with("--data="))
            {
                cmd.arg("--data").arg(root.join("data/SBUX.csv"));
            }
            run_cmd(cmd.args(&rest))
        }
        Some("gradflow") => {
            run_cmd(cargo(&root).args(["build", "--release", "-p", "lstm-cli"]))?;
            let exe = target_dir(&root).join("release/lstm");
            run_cmd(
                Command::new(exe)
                    .current_dir(&root)
                    .arg("gradflow")
                    .args(&rest),
            )
        }
        Some("bench") => {
            let quick = rest.iter().any(|a| a == "--quick");
            let runs = match rest.iter().position(|a| a == "--runs") {
                Some(i) => Some(rest.get(i + 1).context("--runs needs a value")?.parse()?),
                None => None,
            };
            let isa = bench::Isa::from_args(&rest)?;
            if rest.iter().any(|a| a == "--scaling") {
                scaling::run(&root, quick, runs, isa)
            } else {
                let only: Vec<String> = match rest.iter().position(|a| a == "--only") {
                    Some(i) => rest
                        .get(i + 1)
                        .context("--only needs a value")?
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(String::from)
                        .collect(),
                    None => Vec::new(),
                };
                bench::run(&root, quick, runs, &only, isa)
            }
        }
        Some("ci") => {
            run_cmd(cargo(&root).args(["fmt", "--all", "--check"]))?;
            run_cmd(cargo(&root).args([
                "clippy",
                "--release",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]))?;
            run_cmd(cargo(&root).args(["test", "--release", "--workspace", "--all-features"]))
        }
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `target/`).
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `cargo` (the one running this task), in the workspace root.
pub(crate) fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

/// Builds the `lstm` binary in release and returns its path.
fn build_cli(root: &Path) -> Result<PathBuf> {
    run_cmd(cargo(root).args(["build", "--release", "-p", "lstm-cli"]))?;
    Ok(target_dir(root).join("release").join("lstm"))
}

/// Runs `cmd`, failing unless it exits with success.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!(
            "{:?} failed with {status}",
            cmd.get_program().to_string_lossy()
        );
    }
    Ok(())
}
