//! Project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! - `cargo xtask mnist [ARGS]`: build the `lstm` binary in release and train the book's
//!   MNIST model on `data/mnist` (extra arguments go to `lstm mnist`).
//! - `cargo xtask stock [ARGS]`: build the `lstm` binary in release and train the book's
//!   stock-price model on `data/SBUX.csv` (extra arguments go to `lstm stock`, e.g.
//!   `--compare` for the LSTM, GRU and bidirectional LSTM side by side).
//! - `cargo xtask gradflow [FLAGS]`: build the `gradflow` example of `lstm-train` in
//!   release and run it: `‖∂L/∂h_t‖` of a plain RNN and an LSTM on the adding problem
//!   (T = 100), before and after training, as a table and a log-scale plot.
//! - `cargo xtask bench [--quick]`: training and inference throughput of our paths, of
//!   candle-nn's LSTM and (when `python3` can import torch) of PyTorch, plus a scaling
//!   table with peak memory; writes `target/bench/report.md`.
//! - `cargo xtask ci`: what CI runs: format check, clippy, the test suite.

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
  bench [--quick] throughput tables (release build); PyTorch too when python3 has torch
                 (set LSTM_BENCH_PYTHON to choose the interpreter)
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
            run_cmd(cargo(&root).args([
                "build",
                "--release",
                "-p",
                "lstm-train",
                "--example",
                "gradflow",
            ]))?;
            let exe = target_dir(&root).join("release/examples/gradflow");
            run_cmd(Command::new(exe).current_dir(&root).args(&rest))
        }
        Some("bench") => bench(&root, rest.iter().any(|a| a == "--quick")),
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

/// One JSON line of `lstm-bench` or `scripts/bench_torch.py`, as a small map.
fn parse_line(line: &str) -> Option<Vec<(String, String)>> {
    let body = line.trim().strip_prefix('{')?.strip_suffix('}')?;
    Some(
        body.split(',')
            .filter_map(|kv| {
                let (k, v) = kv.split_once(':')?;
                Some((
                    k.trim().trim_matches('"').to_string(),
                    v.trim().trim_matches('"').to_string(),
                ))
            })
            .collect(),
    )
}

fn field<'a>(row: &'a [(String, String)], key: &str) -> &'a str {
    row.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("-")
}

fn num(row: &[(String, String)], key: &str) -> f64 {
    field(row, key).parse().unwrap_or(f64::NAN)
}

fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn bench(root: &Path, quick: bool) -> Result<()> {
    run_cmd(cargo(root).args(["build", "--release", "-p", "lstm-bench"]))?;
    let exe = target_dir(root).join("release").join("lstm-bench");
    let runs = if quick { "3" } else { "5" };
    let mut report = String::new();
    let model = capture(
        Command::new("sh").args(["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]),
    )
    .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let machine = format!("{}, {cpus} logical CPUs", model.trim());
    report.push_str(&format!("Machine: {machine}\n\n"));
    println!("{}", report.trim_end());

    // 1. The MNIST shape, every path, plus PyTorch when available.
    let ours = capture(Command::new(&exe).args(["compare", "--runs", runs]))?;
    let mut rows: Vec<Vec<(String, String)>> = ours.lines().filter_map(parse_line).collect();
    let python = std::env::var("LSTM_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_torch = Command::new(&python)
        .args(["-c", "import torch"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if has_torch {
        let torch = capture(
            Command::new(&python)
                .arg(root.join("scripts/bench_torch.py"))
                .args(["--runs", runs]),
        )?;
        rows.extend(torch.lines().filter_map(parse_line));
    } else {
        println!("(no PyTorch: `{python} -c 'import torch'` failed; set LSTM_BENCH_PYTHON)");
    }
    let reference = rows
        .iter()
        .find(|r| field(r, "path") == "torch-nn-lstm")
        .map(|r| (num(r, "train_ms"), num(r, "infer_ms")));
    let mut table = String::from(
        "| path | train ms/iter | train samples/s | infer ms | infer samples/s | train vs torch nn.LSTM | infer vs torch |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        let (rt, ri) = match reference {
            Some((t, i)) => (
                format!("{:.2}×", t / num(r, "train_ms")),
                format!("{:.2}×", i / num(r, "infer_ms")),
            ),
            None => ("-".into(), "-".into()),
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {rt} | {ri} |\n",
            field(r, "path"),
            field(r, "train_ms"),
            field(r, "train_samples_per_s"),
            field(r, "infer_ms"),
            field(r, "infer_samples_per_s"),
        ));
    }
    let heading = format!(
        "## MNIST shape: batch 100, 28 steps × 28 features, hidden 128 (median of {runs} runs)\n\n"
    );
    println!("\n{heading}{table}");
    report.push_str(&heading);
    report.push_str(&table);

    // 2. Scaling of the fused path, one process per row for its peak memory.
    let batches: &[usize] = if quick { &[1, 100] } else { &[1, 32, 100, 256] };
    let hiddens: &[usize] = if quick { &[128] } else { &[64, 128, 512] };
    let mut scaling = String::from(
        "| batch | hidden | seq | train ms/iter | train samples/s | infer ms | infer samples/s | peak RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for &seq in &[28usize, 100] {
        for &hidden in hiddens {
            for &batch in batches {
                let line = capture(Command::new(&exe).args([
                    "one",
                    "fused",
                    &batch.to_string(),
                    &hidden.to_string(),
                    &seq.to_string(),
                    "--runs",
                    if quick { "3" } else { runs },
                ]))?;
                let Some(r) = line.lines().find_map(parse_line) else {
                    bail!("lstm-bench printed no result: {line}");
                };
                let row = format!(
                    "| {batch} | {hidden} | {seq} | {} | {} | {} | {} | {} |\n",
                    field(&r, "train_ms"),
                    field(&r, "train_samples_per_s"),
                    field(&r, "infer_ms"),
                    field(&r, "infer_samples_per_s"),
                    field(&r, "peak_rss_mib"),
                );
                print!("{row}");
                scaling.push_str(&row);
            }
        }
    }
    report.push_str("\n## Scaling of the fused `Lstm` (training = forward + backward + SGD)\n\n");
    report.push_str(&scaling);
    let dir = target_dir(root).join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("report.md"), &report)?;
    println!("\nwrote {}", dir.join("report.md").display());
    Ok(())
}

fn target_dir(root: &Path) -> PathBuf {
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

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

/// Builds the `lstm` binary in release and returns its path.
fn build_cli(root: &Path) -> Result<PathBuf> {
    run_cmd(cargo(root).args(["build", "--release", "-p", "lstm-cli"]))?;
    Ok(target_dir(root).join("release").join("lstm"))
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
