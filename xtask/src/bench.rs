//! `cargo xtask bench`: the scenario table of ours against PyTorch.
//!
//! Ours is `lstm-bench scenario ID` in two builds: the project's default (`-C
//! target-cpu=native` from `.cargo/config.toml`) and a plain one (`RUSTFLAGS=""`, as a
//! library user builds it) in `target/plain`. PyTorch is `scripts/bench_torch.py
//! --scenario ID` (2 threads). Every run starts one process per side and scenario; the
//! three sides alternate (their order rotates from scenario to scenario and run to run),
//! and the table gives the median over runs of each process's median iteration time.
//! The variable-length rows get a table of their own as well (`varlen.rs`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::lines::{capture, capture_row, field, num};
pub(crate) use crate::machine::{
    build_ours, ceiling, ceiling_lines, cpu_info, fma_peak, load_average, threads, torch_python,
    Ceilings, Isa,
};
use crate::target_dir;

/// The three things measured for every scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Plain,
    Native,
    Torch,
}

const SIDES: [Side; 3] = [Side::Plain, Side::Native, Side::Torch];

/// The FLOPs of one scenario row's iteration ([`recurrent_flops`] of its JSON fields).
fn flops(row: &[(String, String)]) -> f64 {
    let k = match field(row, "family") {
        "lstm" => 8.0,
        "gru" => 6.0,
        _ => 2.0,
    };
    let [steps, i, h, layers, dirs] =
        ["steps", "input", "hidden", "layers", "directions"].map(|key| num(row, key));
    let train = field(row, "train") == "true";
    recurrent_flops(k, steps, i, h, layers as usize, dirs, train)
}

/// FLOPs of one iteration's recurrent layers: `k·H·(I+H)` per real step (`steps`: `B·T`,
/// or the sum of the lengths of a packed row), layer and direction forward (`k` = 8 LSTM,
/// 6 GRU, 2 RNN; layers above the first read `dirs·H` features), times 3 when training
/// (backward ≈ 2× forward).
pub(crate) fn recurrent_flops(
    k: f64,
    steps: f64,
    input: f64,
    hidden: f64,
    layers: usize,
    dirs: f64,
    train: bool,
) -> f64 {
    let forward: f64 = (0..layers)
        .map(|l| {
            let i = if l == 0 { input } else { hidden * dirs };
            dirs * k * hidden * (i + hidden) * steps
        })
        .sum();
    if train {
        3.0 * forward
    } else {
        forward
    }
}

/// `G.G (S%, F% FMA)`: the GFLOP/s of `gflop` GFLOP in `ms` milliseconds, its share of
/// the matmul ceiling and of the FMA peak (each left out when NaN); `-` when `ms` is NaN.
pub(crate) fn rate(gflop: f64, ms: f64, c: Ceilings) -> String {
    if ms.is_nan() {
        return "-".to_string();
    }
    let g = gflop * 1e3 / ms;
    let mut shares = Vec::new();
    if !c.matmul.is_nan() {
        shares.push(format!("{:.0}%", 100.0 * g / c.matmul));
    }
    if !c.fma.is_nan() {
        shares.push(format!("{:.0}% FMA", 100.0 * g / c.fma));
    }
    match shares.is_empty() {
        true => format!("{g:.1}"),
        false => format!("{g:.1} ({})", shares.join(", ")),
    }
}

/// The median of `v` (the mean of the middle two for an even count; NaN when empty).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

const SHAPE: [&str; 11] = [
    "family",
    "batch",
    "seq",
    "steps",
    "packed",
    "lengths",
    "input",
    "hidden",
    "layers",
    "directions",
    "train",
];

/// Whether `--only` pattern `pattern` keeps scenario `id`: `^P` keeps the ids that start
/// with `P`, any other pattern the ids that contain it.
fn only_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_prefix('^') {
        Some(prefix) => id.starts_with(prefix),
        None => id.contains(pattern),
    }
}

/// Runs the scenario table (the ids containing one of `only`, when given) and writes
/// `target/bench/report.md` (`report-avx2.md` with [`Isa::Avx2`]).
pub fn run(root: &Path, quick: bool, runs: Option<usize>, only: &[String], isa: Isa) -> Result<()> {
    let runs = runs.unwrap_or(if quick { 3 } else { 5 }).max(1);
    let (warmup, seconds) = if quick { ("2", "0.25") } else { ("2", "0.5") };
    let load_before = load_average();
    let mut head = String::new();
    let (model, flags) = cpu_info();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    writeln!(head, "CPU: {model}, {cpus} logical CPUs; flags: {flags}")?;

    writeln!(head, "{}", isa.line())?;
    let native = build_ours(root, false, isa)?;
    let plain = build_ours(root, true, isa)?;
    let (python, has_torch) = torch_python();
    let script = root.join("scripts/bench_torch.py");

    // Both sides use 2 threads: PyTorch by `torch.set_num_threads(2)`; ours by candle's
    // default (the physical cores), pinned with RAYON_NUM_THREADS only on a larger machine.
    let (pin, line) = threads(cpus);
    writeln!(head, "{line}")?;
    let mut torch_version = String::from("skipped");
    let mut ceilings = Vec::new();
    if has_torch {
        let (gflops, version) = ceiling(&python, &script, isa)?;
        torch_version = version;
        ceilings.push(gflops);
    }
    let (fma, fma_isa) = fma_peak(&plain)?;
    let mut fmas = vec![fma];
    let all: Vec<String> = capture(Command::new(&native).arg("list"))?
        .lines()
        .map(str::to_string)
        .collect();
    // --quick leaves out the heaviest rows (2-layer, variable lengths) unless --only names rows.
    let heavy = |id: &str| {
        id.contains("lstm2") && (id.starts_with("packed-") || id.starts_with("padmean-"))
    };
    let ids: Vec<String> = all
        .iter()
        .filter(|id| match only {
            [] => !(quick && heavy(id)),
            _ => only.iter().any(|o| only_matches(o, id)),
        })
        .cloned()
        .collect();
    if ids.is_empty() {
        bail!(
            "--only {}: no scenario id contains it ({})",
            only.join(","),
            all.join(" ")
        );
    }
    if !only.is_empty() {
        writeln!(
            head,
            "Rows: the ids matching {} (--only; ^P: starting with P)",
            only.join(" or ")
        )?;
    } else if quick {
        writeln!(
            head,
            "Rows: all but the 2-layer variable-length ones (--quick; --only chooses rows)"
        )?;
    }
    print!("{head}");
    if !has_torch {
        println!("PyTorch skipped: `{python} -c 'import torch'` failed (set LSTM_BENCH_PYTHON)");
    }

    let mut times: HashMap<(String, Side), Vec<f64>> = HashMap::new();
    let mut shapes: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut threads: HashMap<Side, String> = HashMap::new();
    let t0 = Instant::now();
    for run in 0..runs {
        for (k, id) in ids.iter().enumerate() {
            for j in 0..SIDES.len() {
                let side = SIDES[(run + k + j) % SIDES.len()];
                let mut cmd = match side {
                    Side::Torch if !has_torch => continue,
                    Side::Torch => {
                        let mut c = isa.torch(&python, &script);
                        c.args(["--scenario", id]);
                        c
                    }
                    Side::Plain | Side::Native => {
                        let mut c =
                            Command::new(if side == Side::Plain { &plain } else { &native });
                        c.args(["scenario", id]);
                        if pin {
                            c.env("RAYON_NUM_THREADS", "2");
                        }
                        c
                    }
                };
                let row = capture_row(cmd.args(["--warmup", warmup, "--seconds", seconds]))?;
                let shape = shapes.entry(id.clone()).or_insert_with(|| row.clone());
                for key in SHAPE {
                    if field(shape, key) != field(&row, key) {
                        bail!("{id}: {side:?} runs {key} = {}, the first side ran {}: the scenario tables of lstm-bench and bench_torch.py differ", field(&row, key), field(shape, key));
                    }
                }
                threads.insert(side, field(&row, "threads").to_string());
                times
                    .entry((id.clone(), side))
                    .or_default()
                    .push(num(&row, "ms"));
            }
        }
        eprintln!(
            "run {}/{runs} done ({:.0} s)",
            run + 1,
            t0.elapsed().as_secs_f64()
        );
    }
    if has_torch {
        ceilings.push(ceiling(&python, &script, isa)?.0);
    }
    fmas.push(fma_peak(&plain)?.0);
    let (peak, ceiling_line) = ceiling_lines(&ceilings, &fmas, &fma_isa);
    let load_after = load_average();

    let mut out = String::new();
    writeln!(out, "{head}PyTorch: {torch_version}")?;
    writeln!(out, "{ceiling_line}")?;
    writeln!(out, "Runs: {runs} per side, alternating process by process; each process: warm-up ({warmup} iterations and ≥ {seconds}/4 s), then iterations timed for ≈ {seconds} s, its median; below, the median over runs")?;
    writeln!(
        out,
        "Load average (1 min, other work on the machine): {load_before} before the runs, {load_after} after"
    )?;
    writeln!(
        out,
        "Threads reported: plain {}, native {}, PyTorch {}",
        side_threads(&threads, Side::Plain),
        side_threads(&threads, Side::Native),
        side_threads(&threads, Side::Torch)
    )?;
    writeln!(out, "FLOPs: recurrent layers only, 8·H·(I+H) per real step (B·T, or the sum of the lengths of a packed row) per LSTM layer-direction forward (GRU 6·), training ×3\n")?;
    out.push_str("| scenario | GFLOP/iter | plain ms | native ms | PyTorch ms | **PyTorch / plain** | PyTorch / native | plain / native time | plain GFLOP/s (ceiling, FMA peak) | native GFLOP/s (ceiling, FMA peak) | PyTorch GFLOP/s (ceiling, FMA peak) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut raw = String::from("\n| scenario | side | median ms | min ms | ms per run, in order |\n|---|---|---:|---:|---|\n");
    let mut best = String::from("\nBest run of each side (minimum over runs; less affected by other work on the machine):\n\n| scenario | plain ms | native ms | PyTorch ms | PyTorch / plain | PyTorch / native | plain / native time |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for id in &ids {
        let min = |side| {
            times
                .get(&(id.clone(), side))
                .map_or(f64::NAN, |v| v.iter().copied().fold(f64::NAN, f64::min))
        };
        let (p, n, t) = (min(Side::Plain), min(Side::Native), min(Side::Torch));
        writeln!(
            best,
            "| {id} | {} | {} | {} | {} | {} | {:.2} |",
            fmt_ms(p),
            fmt_ms(n),
            fmt_ms(t),
            ratio(t, p),
            ratio(t, n),
            p / n
        )?;
        let gflop = flops(&shapes[id]) / 1e9;
        let ms = |side| median(times.get(&(id.clone(), side)).map_or(&[][..], |v| v));
        let (p, n, t) = (ms(Side::Plain), ms(Side::Native), ms(Side::Torch));
        let rate = |ms: f64| rate(gflop, ms, peak);
        writeln!(
            out,
            "| {id} | {gflop:.3} | {} | {} | {} | **{}** | {} | {:.2} | {} | {} | {} |",
            fmt_ms(p),
            fmt_ms(n),
            fmt_ms(t),
            ratio(t, p),
            ratio(t, n),
            p / n,
            rate(p),
            rate(n),
            rate(t)
        )?;
        for side in SIDES {
            if let Some(v) = times.get(&(id.clone(), side)) {
                let list: Vec<String> = v.iter().map(|x| fmt_ms(*x)).collect();
                let min = v.iter().copied().fold(f64::NAN, f64::min);
                writeln!(
                    raw,
                    "| {id} | {side:?} | {} | {} | {} |",
                    fmt_ms(median(v)),
                    fmt_ms(min),
                    list.join(", ")
                )?;
            }
        }
    }
    out.push_str(&best);
    let median_of =
        |id: &str, side| median(times.get(&(id.to_string(), side)).map_or(&[][..], |v| v));
    let shape = |id: &str, key| shapes.get(id).map_or(f64::NAN, |row| num(row, key));
    out.push_str(&crate::varlen::table(
        &ids,
        median_of,
        |id| shape(id, "steps"),
        |id| shape(id, "seq"),
    ));
    if !has_torch {
        out.push_str("\nPyTorch skipped: no Python with torch (set LSTM_BENCH_PYTHON).\n");
    }
    println!("\n{out}");
    let dir = target_dir(root).join("bench");
    std::fs::create_dir_all(&dir)?;
    let report = format!("# Scenario benchmark\n\n{out}\n## Every run\n{raw}");
    let file = dir.join(format!("report{}.md", isa.suffix()));
    std::fs::write(&file, report)?;
    println!(
        "wrote {} ({:.0} s of runs)",
        file.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn side_threads(threads: &HashMap<Side, String>, side: Side) -> &str {
    threads.get(&side).map_or("-", String::as_str)
}

/// Milliseconds to 3 decimals below 10 ms, 2 above; `-` for NaN (not measured).
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms.is_nan() {
        "-".into()
    } else if ms < 10.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.2}")
    }
}

/// `a / b` as `x.xx×`; `-` when either is NaN.
pub(crate) fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() {
        "-".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::parse_line;

    #[test]
    fn only_patterns_match_by_prefix_or_substring() {
        assert!(only_matches("^lstm-", "lstm-infer"));
        assert!(!only_matches("^lstm-", "packed-lstm-infer"));
        assert!(only_matches("lstm-infer", "packed-lstm-infer"));
        assert!(!only_matches("gru", "lstm-infer"));
    }

    #[test]
    fn flops_count_every_layer_and_direction() {
        let row = |s: &str| parse_line(s).unwrap();
        // 2 layers, 64 → 256, 6400 steps: 8·256·(64+256)·6400 + 8·256·(256+256)·6400, ×3.
        let lstm2 = r#"{"family":"lstm","steps":6400,"input":64,"hidden":256,"layers":2,"directions":1,"train":true}"#;
        assert_eq!(flops(&row(lstm2)), 32_715_571_200.0);
        // Both directions; the second layer reads 2·256 features.
        let bi = lstm2.replace("\"directions\":1", "\"directions\":2");
        assert_eq!(flops(&row(&bi.replace("true", "false"))), 28_521_267_200.0);
        let gru = r#"{"family":"gru","steps":10,"input":1,"hidden":1,"layers":1,"directions":1,"train":false}"#;
        assert_eq!(flops(&row(gru)), 120.0);
    }
}
