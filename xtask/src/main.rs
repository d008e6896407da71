//! Project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! - `cargo xtask mnist [ARGS]`: build the `lstm` binary in release and train the book's
//!   MNIST model on `data/mnist` (extra arguments go to `lstm mnist`).
//! - `cargo xtask ci`: what CI runs: format check, clippy, the test suite.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <task> [args]

tasks:
  mnist [ARGS]   train the book's MNIST LSTM (release build; ARGS go to `lstm mnist`)
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
        Some("ci") => {
            run_cmd(cargo(&root).args(["fmt", "--all", "--check"]))?;
            run_cmd(cargo(&root).args([
                "clippy",
                "--release",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))?;
            run_cmd(cargo(&root).args(["test", "--release", "--workspace"]))
        }
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

/// Builds the `lstm` binary in release and returns its path.
fn build_cli(root: &Path) -> Result<PathBuf> {
    run_cmd(cargo(root).args(["build", "--release", "-p", "lstm-cli"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release").join("lstm"))
}

fn run_cmd(cmd: &mut Command) -> Result<()> {
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
