//! `cargo xtask bench --scaling`: the MNIST-shape comparison of our paths (fused `Lstm`,
//! `LstmCell` loop, step-by-step reference, candle-nn's LSTM) with PyTorch's `nn.LSTM`
//! and the book's cell, then the scaling table of the fused `Lstm` against `nn.LSTM`.
//!
//! The comparison runs `lstm-bench compare` (the native build, which calls
//! `configure_cpu_threads()`) and `bench_torch.py` once each.
//!
//! The scaling table (batch {1, 32, 100, 256} × hidden {64, 128, 512} × seq {28, 100};
//! `--quick`: batch {1, 100} × hidden 128) is what a library user gets: `lstm-bench one
//! fused B H T` of the plain build (`RUSTFLAGS=""`, `target/plain`, no
//! `configure_cpu_threads()`), the headline build of the scenario table, against
//! `bench_torch.py --one` (2 threads), with the threads arranged as in `bench.rs`.
//! **Alternation:** every run starts, for each row, one process per side with `--runs 1`
//! (2 warm-up iterations, then one timed run of about 0.3 s each for training and
//! inference), ours and PyTorch one after the other, the side that goes first swapping
//! from row to row and run to run; the table gives the median over the runs (5, 3 with
//! `--quick`, or `--runs N`) of each side's processes. So a burst of other work on the
//! machine falls on both sides of a row instead of on one side's whole measurement, at the
//! cost of PyTorch's start-up (about 2 s) per process, which is not timed. Peak RSS is the
//! highest of our processes of a row (each runs that row alone).
//!
//! GFLOP/s count the LSTM layer only (`8·B·H·(I+H)·T` forward, training 3×; the Linear
//! head is left out), with their shares of the 2048³ `torch.matmul` ceiling (none without
//! PyTorch) and of the FMA peak (`lstm-bench peak`), both measured before and after the
//! runs. PyTorch / ours is marked ✓ at
//! 1.0× or more (the issue's target: no row below 1.0×), ✗ below.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::bench::{
    build_ours, ceiling, ceiling_lines, cpu_info, fma_peak, fmt_ms, load_average, median, rate,
    recurrent_flops, threads, torch_python, Ceilings, Isa,
};
use crate::lines::{capture, capture_row, field, num, parse_line};
use crate::target_dir;
use crate::varlen::judged;

/// PyTorch / ours at least this is a met target (✓).
const TARGET: f64 = 1.0;

/// One row of the scaling table: its shape and each side's figures, one per process in
/// the order they ran (NaN-free; empty where the side did not run).
#[derive(Debug, Default)]
struct Row {
    batch: usize,
    hidden: usize,
    seq: usize,
    input: usize,
    ours_train: Vec<f64>,
    ours_infer: Vec<f64>,
    torch_train: Vec<f64>,
    torch_infer: Vec<f64>,
    rss: Vec<f64>,
}

/// The MNIST-shape path comparison and the scaling table; writes `target/bench/scaling.md`
/// (`scaling-avx2.md` with [`Isa::Avx2`]).
pub fn run(root: &Path, quick: bool, runs: Option<usize>, isa: Isa) -> Result<()> {
    let runs = runs.unwrap_or(if quick { 3 } else { 5 }).max(1);
    let native = build_ours(root, false, isa)?;
    let plain = build_ours(root, true, isa)?;
    let (python, has_torch) = torch_python();
    let script = root.join("scripts/bench_torch.py");
    let (model, flags) = cpu_info();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut report = format!(
        "Machine: {model}, {cpus} logical CPUs; flags: {flags}\n{}\n\n",
        isa.line()
    );
    println!("{}", report.trim_end());
    if !has_torch {
        println!("(no PyTorch: `{python} -c 'import torch'` failed; set LSTM_BENCH_PYTHON)");
    }

    // 1. The MNIST shape, every path, plus PyTorch when available.
    let r = runs.to_string();
    let ours = capture(Command::new(&native).args(["compare", "--runs", &r]))?;
    let mut rows: Vec<Vec<(String, String)>> = ours.lines().filter_map(parse_line).collect();
    if has_torch {
        let torch = capture(isa.torch(&python, &script).args(["--runs", &r]))?;
        rows.extend(torch.lines().filter_map(parse_line));
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
        "## MNIST shape: batch 100, 28 steps × 28 features, hidden 128 (native build, median of {runs} runs)\n\n"
    );
    println!("\n{heading}{table}");
    report.push_str(&heading);
    report.push_str(&table);

    // 2. Scaling of the fused path against nn.LSTM, one process per side, row and run.
    let batches: &[usize] = if quick { &[1, 100] } else { &[1, 32, 100, 256] };
    let hiddens: &[usize] = if quick { &[128] } else { &[64, 128, 512] };
    let mut table: Vec<Row> = Vec::new();
    for &seq in &[28usize, 100] {
        for &hidden in hiddens {
            for &batch in batches {
                table.push(Row {
                    batch,
                    hidden,
                    seq,
                    ..Row::default()
                });
            }
        }
    }
    let (pin, threads_line) = threads(cpus);
    let load_before = load_average();
    let mut ceilings = Vec::new();
    let mut torch_version = String::from("skipped");
    if has_torch {
        let (gflops, version) = ceiling(&python, &script, isa)?;
        ceilings.push(gflops);
        torch_version = version;
    }
    let (fma, fma_isa) = fma_peak(&plain)?;
    let mut fmas = vec![fma];
    let t0 = Instant::now();
    for run in 0..runs {
        for (k, row) in table.iter_mut().enumerate() {
            for j in 0..2 {
                let torch = (run + k + j) % 2 == 1;
                if torch && !has_torch {
                    continue;
                }
                let [b, h, t] = [row.batch, row.hidden, row.seq].map(|n| n.to_string());
                let mut cmd = if torch {
                    let mut c = isa.torch(&python, &script);
                    c.arg("--one");
                    c.args(["--batch", &b, "--hidden", &h, "--seq", &t]);
                    c
                } else {
                    let mut c = Command::new(&plain);
                    c.args(["one", "fused", &b, &h, &t]);
                    if pin {
                        c.env("RAYON_NUM_THREADS", "2");
                    }
                    c
                };
                let line = capture_row(cmd.args(["--runs", "1"]))?;
                record(row, &line, torch)?;
            }
        }
        eprintln!(
            "scaling run {}/{runs} done ({:.0} s)",
            run + 1,
            t0.elapsed().as_secs_f64()
        );
    }
    if has_torch {
        ceilings.push(ceiling(&python, &script, isa)?.0);
    }
    fmas.push(fma_peak(&plain)?.0);
    let (peak, ceiling_line) = ceiling_lines(&ceilings, &fmas, &fma_isa);

    let mut out = String::from("\n## Scaling of the fused `Lstm` against PyTorch's `nn.LSTM` (training = forward + cross-entropy + backward + SGD; inference = forward)\n\n");
    writeln!(out, "Ours: `lstm-bench one fused B H T`, plain build (RUSTFLAGS=\"\", as a library user builds it; no configure_cpu_threads()). PyTorch {torch_version}: `bench_torch.py --one`, nn.LSTM(28, H, batch_first=True) → last step → Linear")?;
    writeln!(out, "{threads_line}")?;
    writeln!(out, "{ceiling_line}")?;
    writeln!(out, "Runs: {runs} per side, one process each (`--runs 1`: 2 warm-up iterations, one timed run of ≈ 0.3 s), ours and PyTorch alternating process by process; below, the median over runs; peak RSS the highest of our processes")?;
    writeln!(
        out,
        "Load average (1 min, other work on the machine): {load_before} before the runs, {} after",
        load_average()
    )?;
    writeln!(out, "FLOPs: the LSTM layer only, 8·B·H·(I+H)·T forward (I = 28), training ×3; PyTorch / ours ✓ at ≥ {TARGET:.1}× (the target), ✗ below\n")?;
    out.push_str(HEADER);
    let mut raw = String::from("\n## Every run (ms per process, in order)\n\n| batch | hidden | seq | ours train | PyTorch train | ours infer | PyTorch infer |\n|---:|---:|---:|---|---|---|---|\n");
    for row in &table {
        writeln!(out, "{}", table_row(row, peak))?;
        let list = |v: &[f64]| v.iter().map(|x| fmt_ms(*x)).collect::<Vec<_>>().join(", ");
        writeln!(
            raw,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.batch,
            row.hidden,
            row.seq,
            list(&row.ours_train),
            list(&row.torch_train),
            list(&row.ours_infer),
            list(&row.torch_infer)
        )?;
    }
    if !has_torch {
        out.push_str("\nPyTorch skipped: no Python with torch (set LSTM_BENCH_PYTHON).\n");
    }
    println!("{out}");
    report.push_str(&out);
    report.push_str(&raw);
    let dir = target_dir(root).join("bench");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("scaling{}.md", isa.suffix()));
    std::fs::write(&file, &report)?;
    println!(
        "wrote {} ({:.0} s of scaling runs)",
        file.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The scaling table's header.
const HEADER: &str = "| batch | hidden | seq | ours train ms | PyTorch train ms | **PyTorch / ours, train** | train GFLOP/s (share of ceiling, of FMA peak) | ours infer ms | PyTorch infer ms | **PyTorch / ours, infer** | infer GFLOP/s (shares) | peak RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";

/// Adds one process's JSON line to `row`, failing when its shape is not the row's (or, for
/// the second side, not the first side's input width).
fn record(row: &mut Row, line: &[(String, String)], torch: bool) -> Result<()> {
    let side = if torch {
        "bench_torch.py --one"
    } else {
        "lstm-bench one"
    };
    for (key, want) in [
        ("batch", row.batch),
        ("hidden", row.hidden),
        ("seq", row.seq),
    ] {
        if num(line, key) != want as f64 {
            bail!("{side} ran {key} = {}, not {want}", field(line, key));
        }
    }
    let input = num(line, "input");
    if input.is_nan() || input < 1.0 || (row.input != 0 && input != row.input as f64) {
        bail!(
            "{side} ran input = {}, the other side {}: lstm-bench one and bench_torch.py --one differ",
            field(line, "input"),
            row.input
        );
    }
    row.input = input as usize;
    let (train, infer) = (num(line, "train_ms"), num(line, "infer_ms"));
    if train.is_nan() || infer.is_nan() {
        bail!("{side} printed no train_ms/infer_ms");
    }
    if torch {
        row.torch_train.push(train);
        row.torch_infer.push(infer);
    } else {
        row.ours_train.push(train);
        row.ours_infer.push(infer);
        row.rss.push(num(line, "peak_rss_mib"));
    }
    Ok(())
}

/// The table line of `row`: medians over its processes, PyTorch / ours marked against
/// [`TARGET`], our GFLOP/s with their shares of the ceilings `peak` (NaN: no share), and
/// `-` for what was not measured.
fn table_row(row: &Row, peak: Ceilings) -> String {
    let (ot, oi) = (median(&row.ours_train), median(&row.ours_infer));
    let (tt, ti) = (median(&row.torch_train), median(&row.torch_infer));
    let steps = (row.batch * row.seq) as f64;
    let (i, h) = (row.input as f64, row.hidden as f64);
    let gflop = |train| recurrent_flops(8.0, steps, i, h, 1, 1.0, train) / 1e9;
    let rss = row.rss.iter().copied().fold(f64::NAN, f64::max);
    let rss = if rss.is_nan() {
        "-".to_string()
    } else {
        format!("{rss:.1}")
    };
    format!(
        "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} | **{}** | {} | {rss} |",
        row.batch,
        row.hidden,
        row.seq,
        fmt_ms(ot),
        fmt_ms(tt),
        judged(tt / ot, tt / ot >= TARGET),
        rate(gflop(true), ot, peak),
        fmt_ms(oi),
        fmt_ms(ti),
        judged(ti / oi, ti / oi >= TARGET),
        rate(gflop(false), oi, peak),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            batch: 100,
            hidden: 128,
            seq: 28,
            input: 28,
            // Medians: ours 20 ms train, 8 ms infer; PyTorch 25 and 6.
            ours_train: vec![20.0, 30.0, 10.0],
            ours_infer: vec![8.0, 9.0, 1.0],
            torch_train: vec![25.0, 24.0, 26.0],
            torch_infer: vec![6.0, 5.0, 7.0],
            rss: vec![26.5, 27.0, 26.8],
        }
    }

    const NO_CEILINGS: Ceilings = Ceilings {
        matmul: f64::NAN,
        fma: f64::NAN,
    };

    #[test]
    fn a_row_gives_medians_marked_ratios_and_gflops() {
        // Forward: 8·100·128·(28+128)·28 = 0.4473 GFLOP; training 1.3418 GFLOP.
        // Training: 1.3418 GFLOP in 20 ms = 67.1 GFLOP/s, 34% of 200 and 13% of 500;
        // inference 55.9, 28% and 11%.
        let peak = Ceilings {
            matmul: 200.0,
            fma: 500.0,
        };
        let line = table_row(&row(), peak);
        assert_eq!(
            line,
            "| 100 | 128 | 28 | 20.00 | 25.00 | **1.25× ✓** | 67.1 (34%, 13% FMA) | 8.000 | 6.000 | **0.75× ✗** | 55.9 (28%, 11% FMA) | 27.0 |"
        );
    }

    #[test]
    fn without_torch_the_torch_columns_are_dashes_and_no_share() {
        let mut r = row();
        r.torch_train.clear();
        r.torch_infer.clear();
        let line = table_row(&r, NO_CEILINGS);
        assert_eq!(
            line,
            "| 100 | 128 | 28 | 20.00 | - | **-** | 67.1 | 8.000 | - | **-** | 55.9 | 27.0 |"
        );
        assert_eq!(
            line.matches('|').count(),
            HEADER.lines().next().unwrap().matches('|').count()
        );
    }

    #[test]
    fn exactly_the_target_is_met() {
        let mut r = row();
        r.torch_train = vec![20.0];
        assert!(table_row(&r, NO_CEILINGS).contains("**1.00× ✓**"));
    }

    #[test]
    fn record_checks_the_shape_and_files_by_side() {
        let line = |s: &str| parse_line(s).unwrap();
        let mut r = Row {
            batch: 1,
            hidden: 64,
            seq: 28,
            ..Row::default()
        };
        let ours = r#"{"path":"fused","batch":1,"hidden":64,"seq":28,"input":28,"train_ms":0.5,"infer_ms":0.2,"peak_rss_mib":6.1}"#;
        record(&mut r, &line(ours), false).unwrap();
        let torch = r#"{"path": "torch-nn-lstm", "batch": 1, "hidden": 64, "seq": 28, "input": 28, "train_ms": 0.7, "infer_ms": 0.3, "peak_rss_mib": 700.0}"#;
        record(&mut r, &line(torch), true).unwrap();
        assert_eq!((r.ours_train[0], r.torch_train[0]), (0.5, 0.7));
        assert_eq!((r.ours_infer[0], r.torch_infer[0]), (0.2, 0.3));
        assert_eq!(r.rss, vec![6.1]);
        assert!(record(
            &mut r,
            &line(&torch.replace("\"seq\": 28", "\"seq\": 100")),
            true
        )
        .is_err());
        assert!(record(
            &mut r,
            &line(&torch.replace("\"input\": 28", "\"input\": 64")),
            true
        )
        .is_err());
        assert!(record(&mut r, &line(&ours.replace("\"train_ms\":0.5,", "")), false).is_err());
    }

    #[test]
    fn the_ceilings_are_the_higher_of_before_and_after() {
        let (peak, lines) = ceiling_lines(&[150.0, 180.5], &[500.0, 520.0], "avx512");
        assert_eq!((peak.matmul, peak.fma), (180.5, 520.0));
        assert!(
            lines.contains("150.0 GFLOP/s before the runs, 180.5 after"),
            "{lines}"
        );
        assert!(lines.contains("independent avx512 FMAs: 500.0"), "{lines}");
        assert_eq!(rate(1.0, 10.0, peak), "100.0 (55%, 19% FMA)");
        let (peak, lines) = ceiling_lines(&[], &[500.0, 520.0], "avx2");
        assert!(peak.matmul.is_nan());
        assert!(lines.contains("Ceiling: not measured"), "{lines}");
        assert_eq!(rate(1.0, 10.0, peak), "100.0 (19% FMA)");
        assert_eq!(rate(1.0, f64::NAN, peak), "-");
    }
}
