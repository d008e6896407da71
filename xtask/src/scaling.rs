//! `cargo xtask bench --scaling`: the MNIST-shape comparison of our paths (fused `Lstm`,
//! `LstmCell` loop, step-by-step reference, candle-nn's LSTM) with PyTorch's `nn.LSTM`
//! and the book's cell, and the scaling table of the fused `Lstm` with peak memory.
//! These run `lstm-bench compare` / `one`, which call `configure_cpu_threads()`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::lines::{capture, field, num, parse_line};
use crate::target_dir;

/// The MNIST-shape path comparison and the scaling table; writes `target/bench/scaling.md`.
pub fn run(root: &Path, quick: bool) -> Result<()> {
    let exe = crate::bench::build_ours(root, false)?;
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
    std::fs::write(dir.join("scaling.md"), &report)?;
    println!("\nwrote {}", dir.join("scaling.md").display());
    Ok(())
}
