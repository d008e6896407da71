//! `lstm-bench`: training and inference throughput of the LSTM paths.
//!
//! ```text
//! lstm-bench scenario ID [--warmup N] [--seconds S]   one scenario of the table in
//!                                        `scenarios.rs` and `packed.rs`, JSON on stdout
//!                                        (`cargo xtask bench`)
//! lstm-bench list                        the scenario ids
//! lstm-bench compare [--runs N]          MNIST shape: fused Lstm, LstmCell loop, candle-nn LSTM
//! lstm-bench one PATH B H T [--runs N]  one measurement of batch B, hidden H, T steps, JSON
//!                                        on stdout (the scaling table of `cargo xtask bench
//!                                        --scaling`, one process per row and run)
//! lstm-bench last-step B T H [--runs N]  candle's backward of `out.i((.., T - 1, ..))` alone,
//!                                        against the same head on a `(B, H)` tensor
//! lstm-bench peak [--threads N]          the f32 FMA peak of N threads (2), JSON on stdout
//! ```
//!
//! A training iteration is forward + cross-entropy + backward + SGD step of the MNIST
//! classifier shape (sequence of T steps of 28 features, hidden H, 10 classes); an
//! inference iteration is the forward pass alone. Each measurement is the median over
//! `runs` runs (after 2 warm-up iterations) of the mean time per iteration; a run is as
//! many iterations as fit in about 0.3 s (1 to 50; inference twice as many).
//! `scripts/bench_torch.py --one` runs the same workload in PyTorch.
//! Only `compare` calls `configure_cpu_threads()` first; `scenario` and `one` do not (they
//! measure what a program that only uses the model gets).

mod last_step;
mod packed;
mod peak;
mod scenarios;

use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{loss, Linear, Optimizer, VarBuilder, VarMap, RNN, SGD};
use lstm_core::{
    linear_torch, seeded_var_builder, ClassifierConfig, Family, Kernel, SequenceClassifier,
};

const FEATURES: usize = 28;
const CLASSES: usize = 10;

/// The paths we measure.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    /// `Lstm` with the fused kernel.
    Fused,
    /// The book's `LstmCell`, unrolled in Rust.
    Cell,
    /// `Lstm` stepped with plain candle ops.
    Reference,
    /// candle-nn's `rnn::LSTM`.
    CandleNn,
}

impl Path {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "fused" => Path::Fused,
            "cell" => Path::Cell,
            "reference" => Path::Reference,
            "candle-nn" => Path::CandleNn,
            _ => bail!("unknown path {s}: fused | cell | reference | candle-nn"),
        })
    }
    fn name(self) -> &'static str {
        match self {
            Path::Fused => "fused",
            Path::Cell => "cell",
            Path::Reference => "reference",
            Path::CandleNn => "candle-nn",
        }
    }
}

/// A model of one path with its variables.
enum Model {
    Ours(SequenceClassifier),
    CandleNn(candle_nn::LSTM, Linear),
}

impl Model {
    fn new(path: Path, hidden: usize, vm: &VarMap) -> Result<Self> {
        let vb = seeded_var_builder(vm, 1, DType::F32, &Device::Cpu);
        let ours = |book_cell, kernel| -> Result<Model> {
            let cfg = ClassifierConfig {
                hidden_size: hidden,
                book_cell,
                ..ClassifierConfig::mnist(Family::Lstm)
            };
            Ok(Model::Ours(
                SequenceClassifier::new(cfg, vb.clone())?.with_kernel(kernel),
            ))
        };
        match path {
            Path::Fused => ours(false, Kernel::Fused),
            Path::Reference => ours(false, Kernel::Reference),
            Path::Cell => ours(true, Kernel::Fused),
            Path::CandleNn => {
                let vb: VarBuilder = vb;
                let lstm = candle_nn::lstm(FEATURES, hidden, Default::default(), vb.pp("lstm"))?;
                let fc = linear_torch(hidden, CLASSES, vb.pp("fc"))?;
                Ok(Model::CandleNn(lstm, fc))
            }
        }
    }

    fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Model::Ours(m) => Ok(m.logits(x, train)?),
            Model::CandleNn(lstm, fc) => {
                let states = lstm.seq(x)?;
                let last = states.last().context("empty sequence")?;
                Ok(fc.forward(last.h())?)
            }
        }
    }
}

/// Median of `runs` runs of the mean milliseconds per iteration.
fn measure(runs: usize, iters: usize, mut step: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..2 {
        step()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        for _ in 0..iters {
            step()?;
        }
        times.push(t0.elapsed().as_secs_f64() * 1e3 / iters as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

struct Measurement {
    train_ms: f64,
    infer_ms: f64,
}

fn bench(path: Path, batch: usize, hidden: usize, seq: usize, runs: usize) -> Result<Measurement> {
    let vm = VarMap::new();
    let model = Model::new(path, hidden, &vm)?;
    let mut sgd = SGD::new(vm.all_vars(), 0.01)?;
    let x = Tensor::randn(0f32, 0.3, (batch, seq, FEATURES), &Device::Cpu)?;
    let y = Tensor::from_vec(
        (0..batch as u32)
            .map(|i| i % CLASSES as u32)
            .collect::<Vec<_>>(),
        batch,
        &Device::Cpu,
    )?;
    // Aim for about 0.3 s per run.
    let t0 = Instant::now();
    let l = loss::cross_entropy(&model.logits(&x, true)?, &y)?;
    sgd.backward_step(&l)?;
    let one = t0.elapsed().as_secs_f64();
    let iters = ((0.3 / one) as usize).clamp(1, 50);
    let train_ms = measure(runs, iters, || {
        let l = loss::cross_entropy(&model.logits(&x, true)?, &y)?;
        let _ = l.to_scalar::<f32>()?;
        sgd.backward_step(&l)?;
        Ok(())
    })?;
    let infer_ms = measure(runs, iters * 2, || {
        let logits = model.logits(&x, false)?;
        let _ = logits.i((0, 0))?.to_scalar::<f32>()?;
        Ok(())
    })?;
    Ok(Measurement { train_ms, infer_ms })
}

/// Peak resident memory of this process, in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn arg_runs(args: &[String]) -> Result<usize> {
    arg_value(args, "--runs", 5)
}

fn arg_value<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match args.iter().position(|a| a == flag) {
        Some(i) => Ok(args
            .get(i + 1)
            .with_context(|| format!("{flag} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    if command == Some("compare") {
        lstm_core::configure_cpu_threads();
    }
    let runs = arg_runs(&args)?;
    match command {
        Some("scenario") => {
            let id = args.get(1).context("lstm-bench scenario ID")?;
            let s = scenarios::find(id)?;
            let warmup = arg_value(&args, "--warmup", 3usize)?;
            let seconds = arg_value(&args, "--seconds", 0.5f64)?;
            let t = scenarios::measure(&s, warmup, seconds)?;
            println!("{}", scenarios::json(&s, &t));
        }
        Some("list") => {
            for s in scenarios::all() {
                println!("{}", s.id);
            }
        }
        Some("compare") => {
            let (batch, hidden, seq) = (100, 128, 28);
            println!(
                "MNIST shape: batch {batch}, {seq} steps × {FEATURES} features, hidden {hidden}; \
                 median of {runs} runs; {} rayon threads",
                rayon_threads()
            );
            for path in [Path::Fused, Path::Cell, Path::Reference, Path::CandleNn] {
                let m = bench(path, batch, hidden, seq, runs)?;
                println!(
                    "{{\"path\":\"{}\",\"train_ms\":{:.3},\"train_samples_per_s\":{:.0},\"infer_ms\":{:.3},\"infer_samples_per_s\":{:.0}}}",
                    path.name(),
                    m.train_ms,
                    batch as f64 * 1e3 / m.train_ms,
                    m.infer_ms,
                    batch as f64 * 1e3 / m.infer_ms
                );
            }
        }
        Some("one") => {
            let get = |i: usize| -> Result<usize> {
                Ok(args.get(i).context("lstm-bench one PATH B H T")?.parse()?)
            };
            let path = Path::parse(args.get(1).context("lstm-bench one PATH B H T")?)?;
            let (batch, hidden, seq) = (get(2)?, get(3)?, get(4)?);
            let m = bench(path, batch, hidden, seq, runs)?;
            println!(
                "{{\"path\":\"{}\",\"batch\":{batch},\"hidden\":{hidden},\"seq\":{seq},\"input\":{FEATURES},\"train_ms\":{:.3},\"train_samples_per_s\":{:.0},\"infer_ms\":{:.3},\"infer_samples_per_s\":{:.0},\"peak_rss_mib\":{:.1},\"threads\":{}}}",
                path.name(),
                m.train_ms,
                batch as f64 * 1e3 / m.train_ms,
                m.infer_ms,
                batch as f64 * 1e3 / m.infer_ms,
                peak_rss_mib().unwrap_or(f64::NAN),
                candle_core::utils::get_num_threads()
            );
        }
        Some("last-step") => {
            let get = |i: usize| -> Result<usize> {
                Ok(args.get(i).context("lstm-bench last-step B T H")?.parse()?)
            };
            let (b, t, h) = (get(1)?, get(2)?, get(3)?);
            let m = last_step::measure_last_step(b, t, h, runs)?;
            println!(
                "{{\"batch\":{b},\"seq\":{t},\"hidden\":{h},\"narrow_ms\":{:.3},\"leaf_ms\":{:.3},\"extra_ms\":{:.3}}}",
                m.narrow_ms,
                m.leaf_ms,
                m.narrow_ms - m.leaf_ms
            );
        }
        Some("peak") => {
            let threads = arg_value(&args, "--threads", 2usize)?;
            let p = peak::fma_peak(threads)?;
            println!(
                "{{\"gflops\":{:.1},\"isa\":\"{}\",\"threads\":{threads}}}",
                p.gflops, p.isa
            );
        }
        _ => bail!(
            "usage: lstm-bench scenario ID [--warmup N] [--seconds S] | lstm-bench list | \
             lstm-bench compare [--runs N] | lstm-bench one PATH BATCH HIDDEN SEQ [--runs N] | \
             lstm-bench last-step B T H [--runs N] | lstm-bench peak [--threads N]"
        ),
    }
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
